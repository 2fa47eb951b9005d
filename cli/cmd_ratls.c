/* cvm cert ratls make|show|verify (placeholder until issue 10's CLI lands). */
#include "cli.h"

int cmd_ratls_make(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("cert ratls make", "not implemented yet");
	return CLI_EXIT_ERROR;
}

int cmd_ratls_show(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("cert ratls show", "not implemented yet");
	return CLI_EXIT_ERROR;
}

int cmd_ratls_verify(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("cert ratls verify", "not implemented yet");
	return CLI_EXIT_ERROR;
}

/* cvm cert acme (placeholder until issue 10's ACME client lands). */
#include "cli.h"

int cmd_cert_acme(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("cert acme", "not implemented yet");
	return CLI_EXIT_ERROR;
}

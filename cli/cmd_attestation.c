/* cvm attestation show|verify (placeholder until issue 10's CLI lands). */
#include "cli.h"

int cmd_attestation(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("attestation", "not implemented yet");
	return CLI_EXIT_ERROR;
}

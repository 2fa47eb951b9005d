/* cvm cert ratls fetch (placeholder until issue 10's attested TLS lands). */
#include "cli.h"

int cmd_ratls_fetch(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_err("cert ratls fetch", "not implemented yet");
	return CLI_EXIT_ERROR;
}

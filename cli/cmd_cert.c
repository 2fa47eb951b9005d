/* cvm cert: certificates for attested TLS.
 *
 *   cvm cert ratls make|show|verify|fetch ...   RA-TLS certificates (cmd_ratls.c, cmd_fetch.c)
 *   cvm cert acme ...                           ACME v2 certificates (cmd_acme.c)
 *
 * See docs/cli/cvm-cert.md. */
#include <stdio.h>

#include "cli.h"

static void ratls_usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: %s cert ratls make|show|verify|fetch [ARGS]\n"
	    "  make     make a key and an RA-TLS certificate from the local TEE or the simulator\n"
	    "  show     decode a certificate's RA-TLS extensions\n"
	    "  verify   verify a certificate's evidence, binding, event log and chain\n"
	    "  fetch    connect to HOST:PORT, verify the peer and check fresh, connection-bound evidence\n",
	    CLI_PROG);
}

static int cert_ratls(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"make", cmd_ratls_make},
	    {"show", cmd_ratls_show},
	    {"verify", cmd_ratls_verify},
	    {"fetch", cmd_ratls_fetch},
	};

	return cli_dispatch("cert ratls", subs, sizeof(subs) / sizeof(subs[0]), ratls_usage, argc, argv);
}

static void cert_usage(FILE *f)
{
	fprintf(f,
	        "usage: %s cert ratls|acme [ARGS]\n"
	        "  ratls    RA-TLS certificates: make, show, verify, fetch\n"
	        "  acme     certificates from an ACME v2 CA (RFC 8555): issue, renew, revoke\n",
	        CLI_PROG);
}

int cmd_cert(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"ratls", cert_ratls},
	    {"acme", cmd_cert_acme},
	};

	return cli_dispatch("cert", subs, sizeof(subs) / sizeof(subs[0]), cert_usage, argc, argv);
}

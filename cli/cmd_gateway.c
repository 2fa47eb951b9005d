/* cvm gateway: the ingress gateway (cvm-gatewayd; dstack spec §7), seen from
 * the command line.
 *
 *   cvm gateway route NAME [--base-domain DOMAIN]... [--json]
 *       how the gateway routes a TLS server name: to an app (id, port, TLS
 *       passthrough or h2) under one of its base domains, or as a custom
 *       domain through a TXT record (the names it would look up)
 *
 * Subcommands are a table (cmd_gateway below): a new one is a function and
 * a row. See docs/cli/cvm-gateway.md. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/err.h>
#include <cvmkit/ingress.h>

#include "cli.h"
#include "output.h"

#define CMD_ROUTE "gateway route"
/* A gateway serves a handful of wildcard domains; more on one command line
 * is a mistake. */
#define BASE_DOMAINS_MAX 16

enum {
	OPT_BASE_DOMAIN = 0x200,
};

static void usage_route(FILE *f)
{
	fprintf(f,
	        "usage: %s gateway route NAME [--base-domain DOMAIN]... [--json]\n"
	        "  Shows how cvm-gatewayd routes a TLS server name (SNI), as dstack's gateway does.\n"
	        "  NAME under a base domain is <id>[-[port][s|g]].<base>: the app or instance <id>,\n"
	        "  port (default 80; 443 with s), s = TLS passed through to the app, g = the gateway\n"
	        "  terminates TLS and offers h2 only. Any other name is a custom domain: its app is\n"
	        "  named by the TXT record \"<app_id>:<port>\" that the shown names hold.\n"
	        "  --base-domain DOMAIN  a wildcard domain of the gateway (repeatable, up to %d;\n"
	        "                        none: every name is a custom domain)\n"
	        "  --json                one JSON object: name, ok, kind, app_id, port, is_tls,\n"
	        "                        is_h2, base, txt_names, error\n"
	        "Exit: 0 routable, 1 the name is refused (the message says why), 2 usage.\n",
	        CLI_PROG, BASE_DOMAINS_MAX);
}

static void gateway_usage(FILE *f)
{
	fprintf(f,
	        "usage: %s gateway route [ARGS]\n"
	        "  route   show how a TLS server name is routed: app, port, TLS mode, or TXT lookup\n",
	        CLI_PROG);
}

static const char *kind_name(enum cvm_ingress_kind k)
{
	switch (k) {
	case CVM_INGRESS_APP:
		return "app";
	case CVM_INGRESS_CUSTOM:
		return "custom";
	default:
		return NULL;
	}
}

static int route_json(const struct cvm_ingress_route *rt, const char *shown, bool ok, const char *error,
                      char txt[2][CVM_INGRESS_NAME_MAX + 32], bool has_txt)
{
	json_t *o = json_object(), *names = NULL;
	bool app = ok && rt->kind == CVM_INGRESS_APP;
	int rc = -1;

	if (o == NULL)
		return -1;
	if (out_jset_str(o, "name", shown) != 0 || out_jset(o, "ok", json_boolean(ok)) != 0 ||
	    out_jset_str(o, "kind", kind_name(rt->kind)) != 0 ||
	    out_jset_str(o, "app_id", app ? rt->dst.id : NULL) != 0 ||
	    out_jset(o, "port", app ? json_integer(rt->dst.port) : json_null()) != 0 ||
	    out_jset(o, "is_tls", app ? json_boolean(rt->dst.is_tls) : json_null()) != 0 ||
	    out_jset(o, "is_h2", app ? json_boolean(rt->dst.is_h2) : json_null()) != 0 ||
	    out_jset_str(o, "base", rt->kind == CVM_INGRESS_APP ? rt->base : NULL) != 0 ||
	    out_jset_str(o, "error", error) != 0)
		goto out;
	if (has_txt) {
		names = json_array();
		if (names == NULL)
			goto out;
		for (size_t i = 0; i < 2; i++)
			if (json_array_append_new(names, json_string(txt[i])) != 0)
				goto out;
		if (out_jset(o, "txt_names", names) != 0) {
			names = NULL; /* out_jset takes it, even when it fails */
			goto out;
		}
		names = NULL; /* transferred */
	} else if (out_jset(o, "txt_names", json_null()) != 0) {
		goto out;
	}
	rc = out_json_print(o);
out:
	json_decref(names);
	json_decref(o);
	return rc;
}

static int gateway_route(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"base-domain", required_argument, NULL, OPT_BASE_DOMAIN},
	    CLI_COMMON_LONGOPTS,
	};
	const char *bases[BASE_DOMAINS_MAX];
	char txt[2][CVM_INGRESS_NAME_MAX + 32];
	char shown[CVM_INGRESS_NAME_MAX + 8];
	struct cvm_ingress_route rt;
	size_t n_base = 0;
	const char *why = NULL, *name;
	bool has_txt = false, ok;
	int c, r;

	optind = 0; /* glibc: a fresh scan, permuting (main scanned with "+") */
	while ((c = getopt_long(argc, argv, ":hvq", longopts, NULL)) != -1) {
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_BASE_DOMAIN: {
			const char *b = optarg, *bwhy = NULL;
			size_t blen;

			if (n_base == BASE_DOMAINS_MAX) {
				cli_err(CMD_ROUTE, "more than %d --base-domain options", BASE_DOMAINS_MAX);
				return CLI_EXIT_USAGE;
			}
			/* the same forms the library matches: "*." and a final '.' are ignored */
			if (strncmp(b, "*.", 2) == 0)
				b += 2;
			blen = strlen(b);
			if (blen > 0 && b[blen - 1] == '.')
				blen--;
			if (cvm_ingress_name_check(b, blen, &bwhy) != CVM_OK) {
				out_sanitize(optarg, shown, sizeof(shown));
				cli_err(CMD_ROUTE, "--base-domain '%s' is not a domain name: %s", shown,
				        bwhy);
				return CLI_EXIT_USAGE;
			}
			bases[n_base++] = optarg;
			break;
		}
		case 'h':
			usage_route(stdout);
			return CLI_EXIT_OK;
		default:
			cli_bad_option(CMD_ROUTE, c, argv, "cvm gateway route --help");
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cli_err(CMD_ROUTE, "one NAME expected (a TLS server name, e.g. myapp-8080.example.com)");
		usage_route(stderr);
		return CLI_EXIT_USAGE;
	}
	name = argv[optind];
	out_sanitize(name, shown, sizeof(shown));
	r = cvm_ingress_route(name, strlen(name), bases, n_base, &rt, &why);
	ok = r == CVM_OK;
	if (r != CVM_OK && r != CVM_E_FORMAT) {
		cli_err(CMD_ROUTE, "%s", cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	if (ok && rt.kind == CVM_INGRESS_CUSTOM) {
		r = cvm_ingress_txt_names(rt.name, NULL, txt);
		if (r != CVM_OK) {
			cli_err(CMD_ROUTE, "the TXT names of '%s': %s", shown, cvm_strerror(r));
			return CLI_EXIT_ERROR;
		}
		has_txt = true;
	}
	if (ok && rt.name[0] != '\0')
		out_sanitize(rt.name, shown, sizeof(shown));
	if (cli_opts.json) {
		if (route_json(&rt, shown, ok, ok ? NULL : why, txt, has_txt) != 0) {
			cli_err(CMD_ROUTE, "out of memory");
			return CLI_EXIT_ERROR;
		}
		return ok ? CLI_EXIT_OK : CLI_EXIT_ERROR;
	}
	if (!ok) {
		if (rt.kind == CVM_INGRESS_APP)
			cli_err(CMD_ROUTE, "'%s' is not routable: its label under %s: %s", shown, rt.base,
			        why);
		else
			cli_err(CMD_ROUTE, "'%s' is not routable: %s", shown, why);
		return CLI_EXIT_ERROR;
	}
	printf("name:    %s\n", shown);
	if (rt.kind == CVM_INGRESS_APP) {
		printf("kind:    app (under base domain %s)\n", rt.base);
		printf("app_id:  %s\n", rt.dst.id);
		printf("port:    %u\n", (unsigned)rt.dst.port);
		printf("is_tls:  %s\n", rt.dst.is_tls ? "true (TLS passed through to the app)" : "false");
		printf("is_h2:   %s\n", rt.dst.is_h2 ? "true (the gateway offers ALPN h2 only)" : "false");
		if (!cli_opts.quiet && rt.dst.is_tls)
			printf("route:   TCP passthrough to %s:%u (the app terminates TLS)\n", rt.dst.id,
			       (unsigned)rt.dst.port);
		else if (!cli_opts.quiet)
			printf("route:   the gateway terminates TLS%s, then plain TCP to %s:%u\n",
			       rt.dst.is_h2 ? " (ALPN h2)" : "", rt.dst.id, (unsigned)rt.dst.port);
	} else {
		printf("kind:    custom (not under a base domain)\n");
		printf("txt:     %s\n", txt[0]);
		printf("txt:     %s (if the first has none)\n", txt[1]);
		if (!cli_opts.quiet)
			printf("route:   the TXT value \"<app_id>:<port>\" names the app; TLS is passed "
			       "through\n");
	}
	return CLI_EXIT_OK;
}

int cmd_gateway(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"route", gateway_route},
	};

	return cli_dispatch("gateway", subs, sizeof(subs) / sizeof(subs[0]), gateway_usage, argc, argv);
}

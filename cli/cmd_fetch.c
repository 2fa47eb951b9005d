/* cvm cert ratls fetch HOST:PORT: connect over TLS 1.3, verify the server's
 * RA-TLS certificate in the handshake (lib/tls's verify callback), then ask,
 * on the same connection, for fresh evidence bound to this connection's TLS
 * exporter (POST /FreshAttest, include/cvmkit/tls.h) and check it with
 * cvm_ratls_check_fresh. A relay that terminates TLS (with the server's
 * own certificate and key) passes the handshake but not the fresh check.
 * Exit codes: 0 accepted, 1 could not do the job (connection, files), 2
 * usage, 3 rejected (the handshake's check or the fresh check). See
 * docs/attested-tls.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/amd.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/policy.h>
#include <cvmkit/random.h>
#include <cvmkit/ratls.h>
#include <cvmkit/report.h>
#include <cvmkit/tee.h>
#include <cvmkit/tls.h>

#include "cli.h"
#include "net.h"
#include "output.h"
#include "ratls_opts.h"

#define CMD "cert ratls fetch"
#define FETCH_CA_MAX 8
#define FETCH_TIMEOUT_S 30
/* The answer: headers, and a JSON string of the hex of at most CVM_VA_MAX. */
#define FETCH_REPLY_MAX (CVM_TLS_REPLY_HEADERS_MAX + 2 * CVM_VA_MAX + 64)

struct fetch {
	const char *target; /* HOST:PORT as given */
	char host[256];
	char port[8];
	const char *collateral, *policy;
	const char *root[2]; /* Intel's root CA and/or AMD's ARK, in any order */
	size_t root_count;
	const char *ca[FETCH_CA_MAX];
	size_t ca_count;
	int64_t at;
	bool at_set, require_agent_key, allow_legacy_ca;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s cert ratls fetch HOST:PORT [--collateral DIR] [--root CERT]... [--ca CERT]...\n"
	        "                             [--policy FILE] [--at T] [--require-agent-key] "
	        "[--allow-legacy-ca]\n"
	        "                             [--json]\n"
	        "  Connects over TLS 1.3, verifies the server's RA-TLS certificate, then checks fresh\n"
	        "  evidence bound to this very TLS connection (a relay cannot pass this check).\n"
	        "  --collateral DIR     tdx/ (Intel collateral) and/or snp/ (AMD chain) under DIR\n"
	        "                       (the simulator's DIR/collateral); else the certificate's own\n"
	        "  --root CERT          a vendor root to anchor in: Intel's root CA and/or AMD's ARK\n"
	        "                       (give both for both kinds); default: Intel's and AMD's own\n"
	        "  --ca CERT            the certificate chain must end in this CA (repeatable)\n"
	        "  --policy FILE        appraisal policy (docs/policy.md); default: the strict defaults\n"
	        "  --at T               Unix time for the collateral and the fresh evidence (default now)\n"
	        "  --require-agent-key  the certificate key must be the one cvm-agentd recorded in RTMR3\n"
	        "  --allow-legacy-ca    accept CA certificates without keyCertSign (dstack before 0.5.8)\n"
	        "Exit: 0 accepted, 1 error, 2 usage, 3 rejected.\n",
	        CLI_PROG);
}

static bool split_target(const char *t, struct fetch *f)
{
	const char *colon = strrchr(t, ':');
	const char *h = t;
	size_t hl;

	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= sizeof(f->port))
		return false;
	hl = (size_t)(colon - t);
	if (hl >= 2 && t[0] == '[' && t[hl - 1] == ']') { /* [v6]:port */
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(f->host))
		return false;
	for (const char *p = colon + 1; *p != '\0'; p++)
		if (*p < '0' || *p > '9')
			return false;
	memcpy(f->host, h, hl);
	f->host[hl] = '\0';
	(void)snprintf(f->port, sizeof(f->port), "%s", colon + 1);
	return true;
}

/* make_verifier builds the verifier from the options; prints why not. */
static int make_verifier(const struct fetch *f, struct cvm_ratls_verifier **out)
{
	struct cli_ratls_opts o;

	memset(&o, 0, sizeof(o));
	o.cmd = CMD;
	o.collateral = f->collateral;
	o.policy = f->policy;
	o.root_count = f->root_count;
	for (size_t i = 0; i < f->root_count && i < 2; i++)
		o.root[i] = f->root[i];
	o.ca_count = f->ca_count;
	for (size_t i = 0; i < f->ca_count && i < CLI_RATLS_CA_MAX; i++)
		o.ca[i] = f->ca[i];
	o.at = f->at;
	o.require_agent_key = f->require_agent_key;
	o.allow_legacy_ca = f->allow_legacy_ca;
	return cli_ratls_verifier(&o, out);
}

static bool is_ip_literal(const char *host)
{
	uint8_t a[16];

	return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static int dial(const struct fetch *f)
{
	return cli_net_dial(CMD, f->host, f->port, f->target, NULL, FETCH_TIMEOUT_S);
}

/* parse_reply finds the VersionedAttestation in an HTTP/1.1 answer: status
 * 200, headers, then {"attestation": "<hex>"}. `why` says what was wrong. */
static int parse_reply(int status, const uint8_t *body, size_t len, uint8_t **va, size_t *va_len, char *why,
                       size_t why_len)
{
	json_t *o = NULL, *a;
	json_error_t jerr;
	uint8_t *out = NULL;
	int r;

	*va = NULL;
	*va_len = 0;
	if (status != 200) {
		(void)snprintf(why, why_len,
		               "the server answered HTTP %d, not 200 (does it serve POST /FreshAttest?)",
		               status);
		return CVM_E_FORMAT;
	}
	o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	a = o != NULL ? json_object_get(o, "attestation") : NULL;
	if (!json_is_string(a) || json_string_length(a) == 0 || json_string_length(a) % 2 != 0 ||
	    json_string_length(a) / 2 > CVM_VA_MAX) {
		(void)snprintf(why, why_len,
		               "the answer is not {\"attestation\": \"<hex>\"} of at most %zu bytes",
		               CVM_VA_MAX);
		r = CVM_E_FORMAT;
		goto out;
	}
	out = malloc(json_string_length(a) / 2);
	if (out == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = cvm_hex_decode_exact(json_string_value(a), json_string_length(a), out, json_string_length(a) / 2);
	if (r != CVM_OK) {
		(void)snprintf(why, why_len, "the attestation is not hex");
		goto out;
	}
	*va_len = json_string_length(a) / 2;
	*va = out;
	out = NULL;
out:
	free(out);
	json_decref(o);
	return r;
}

static void print_text(const struct fetch *f, const struct cvm_ratls_verdict *hv,
                       const struct cvm_ratls_verdict *fv)
{
	if (hv->simulated || fv->simulated)
		printf("%s\n", CVM_TEE_SIMULATED_BANNER);
	printf("peer: %s\n", f->target);
	printf("certificate: %s profile, %s evidence%s%s\n", cvm_ratls_profile_name(hv->profile),
	       cvm_ratls_tee_name(hv->tee), hv->chain_verified ? ", chain verified" : "",
	       hv->system_key ? ", the agent's key" : "");
	printf("fresh evidence: bound to this TLS connection\n");
	if (fv->tee == CVM_RATLS_TEE_TDX) {
		const struct cvm_tdx_report *td = &fv->dcap.quote.body.td;

		out_field_hex(stdout, "  ", "mr_td", td->mr_td, sizeof(td->mr_td));
		out_field_hex(stdout, "  ", "mr_config_id", td->mr_config_id, sizeof(td->mr_config_id));
		for (size_t i = 0; i < 4; i++) {
			char name[16];

			(void)snprintf(name, sizeof(name), "rtmr%zu", i);
			out_field_hex(stdout, "  ", name, td->rtmr[i], sizeof(td->rtmr[i]));
		}
	} else if (fv->tee == CVM_RATLS_TEE_SNP) {
		const struct cvm_snp_report *s = &fv->amd.report;

		out_field_hex(stdout, "  ", "measurement", s->measurement, sizeof(s->measurement));
		out_field_hex(stdout, "  ", "host_data", s->host_data, sizeof(s->host_data));
		out_field_hex(stdout, "  ", "chip_id", s->chip_id, sizeof(s->chip_id));
	}
	out_verdict_text(true, "", NULL);
}

static int print_json(const struct fetch *f, const struct cvm_ratls_verdict *hv,
                      const struct cvm_ratls_verdict *fv, const struct cvm_report *rep)
{
	json_t *o = json_object();
	int bad = o == NULL;

	if (o != NULL) {
		bad |= out_jset_str(o, "peer", f->target);
		bad |= out_jset(o, "simulated", json_boolean(hv->simulated || fv->simulated));
		bad |= out_jset_str(o, "profile", cvm_ratls_profile_name(hv->profile));
		bad |= out_jset_str(o, "tee", cvm_ratls_tee_name(hv->tee));
		bad |= out_jset(o, "chain_verified", json_boolean(hv->chain_verified));
		bad |= out_jset(o, "system_key", json_boolean(hv->system_key));
		bad |= out_jset(o, "fresh", json_true());
		if (fv->tee == CVM_RATLS_TEE_TDX) {
			const struct cvm_tdx_report *td = &fv->dcap.quote.body.td;
			json_t *rt = json_array();

			bad |= out_jset_hex(o, "mr_td", td->mr_td, sizeof(td->mr_td));
			bad |= out_jset_hex(o, "mr_config_id", td->mr_config_id, sizeof(td->mr_config_id));
			for (size_t i = 0; rt != NULL && i < 4; i++)
				bad |=
				    json_array_append_new(rt, out_json_hex(td->rtmr[i], sizeof(td->rtmr[i])));
			bad |= out_jset(o, "rtmr", rt);
		} else if (fv->tee == CVM_RATLS_TEE_SNP) {
			bad |= out_jset_hex(o, "measurement", fv->amd.report.measurement,
			                    sizeof(fv->amd.report.measurement));
			bad |= out_jset_hex(o, "host_data", fv->amd.report.host_data,
			                    sizeof(fv->amd.report.host_data));
		}
		bad |= out_verdict_json(o, true, "", rep);
		if (!bad)
			bad |= out_json_print(o);
	}
	json_decref(o);
	return bad ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static int reject_json(const struct fetch *f, const char *reason)
{
	json_t *o = json_object();
	int bad = o == NULL;

	if (o != NULL) {
		bad |= out_jset_str(o, "peer", f->target);
		bad |= out_verdict_json(o, false, reason, NULL);
		if (!bad)
			bad |= out_json_print(o);
	}
	json_decref(o);
	return bad ? CLI_EXIT_ERROR : CLI_EXIT_REJECTED;
}

/* reject prints the one line (and, with --json, the object) of a rejection. */
static int reject(const struct fetch *f, const char *line)
{
	cli_err(CMD, "%s", line);
	if (cli_opts.json)
		return reject_json(f, line);
	return CLI_EXIT_REJECTED;
}

static int fetch(const struct fetch *f, struct cvm_ratls_verifier *v)
{
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	X509 *peer = NULL;
	unsigned char *leaf = NULL;
	uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN], bound[CVM_TLS_FRESH_BOUND_LEN], *reply = NULL, *va = NULL;
	size_t reply_len = 0, va_len = 0;
	char hex[2 * CVM_TLS_FRESH_NONCE_LEN + 1], body[128], why[512] = "", reason[1024];
	struct cvm_ratls_verdict hv, fv;
	const struct cvm_ratls_verdict *pv;
	struct cvm_report *rep = NULL;
	int fd = -1, leaf_len, r, status = 0, rc = CLI_EXIT_ERROR;

	r = cvm_tls_client_ctx_new(v, NULL, NULL, &ctx);
	if (r != CVM_OK) {
		cli_err(CMD, "cannot make the TLS context: %s", cvm_strerror(r));
		goto out;
	}
	fd = dial(f);
	if (fd < 0)
		goto out;
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		cli_err(CMD, "out of memory");
		goto out;
	}
	/* SNI carries host names only (RFC 6066 §3), never an address. */
	if (!is_ip_literal(f->host)) {
		char sni[sizeof(f->host)]; /* the macro takes a non-const pointer */

		(void)snprintf(sni, sizeof(sni), "%s", f->host);
		(void)SSL_set_tlsext_host_name(ssl, sni);
	}
	if (SSL_connect(ssl) != 1) {
		const char *pe = cvm_tls_peer_error(ssl);
		unsigned long e = ERR_peek_error();

		if (pe != NULL) {
			(void)snprintf(reason, sizeof(reason), "%s: %s", f->target, pe);
			rc = reject(f, reason);
		} else {
			cli_err(CMD, "TLS 1.3 handshake with %s failed: %s", f->target,
			        e != 0 ? ERR_reason_error_string(e) : "the connection closed");
		}
		ERR_clear_error();
		goto out;
	}
	pv = cvm_tls_peer_verdict(ssl);
	if (pv == NULL) { /* the callback accepted, so this cannot happen */
		cli_err(CMD, "internal error: no verdict after the handshake");
		goto out;
	}
	hv = *pv;

	/* The fresh, connection-bound attestation. */
	r = cvm_random_bytes(nonce, sizeof(nonce));
	if (r == CVM_OK)
		r = cvm_tls_fresh_nonce(ssl, nonce, bound);
	if (r != CVM_OK) {
		cli_err(CMD, "cannot compute the connection binding: %s", cvm_strerror(r));
		goto out;
	}
	cvm_hex_encode(nonce, sizeof(nonce), hex);
	(void)snprintf(body, sizeof(body), "{\"nonce\": \"%s\"}", hex);
	if (!cvm_tls_post_json(ssl, f->host, "/FreshAttest", body)) {
		cli_err(CMD, "cannot send the fresh-attestation request to %s", f->target);
		ERR_clear_error();
		goto out;
	}
	r = cvm_tls_read_reply(ssl, FETCH_REPLY_MAX, &status, &reply, &reply_len);
	if (r != CVM_OK) {
		cli_err(CMD, "cannot read the fresh-attestation answer from %s: %s", f->target,
		        cvm_strerror(r));
		goto out;
	}
	r = parse_reply(status, reply, reply_len, &va, &va_len, why, sizeof(why));
	if (r != CVM_OK) {
		cli_err(CMD, "%s: %s", f->target, why);
		goto out;
	}
	peer = SSL_get1_peer_certificate(ssl);
	leaf_len = peer != NULL ? i2d_X509(peer, &leaf) : -1;
	if (leaf_len <= 0) {
		cli_err(CMD, "cannot read the peer's certificate");
		goto out;
	}
	rep = malloc(sizeof(*rep));
	if (rep == NULL) {
		cli_err(CMD, "out of memory");
		goto out;
	}
	cvm_report_init(rep);
	r = cvm_ratls_check_fresh(v, leaf, (size_t)leaf_len, va, va_len, bound, f->at, &fv, rep);
	if (r == CVM_E_MISMATCH) {
		(void)snprintf(
		    reason, sizeof(reason),
		    "the fresh evidence is bound to another TLS connection: something between you and %s "
		    "terminates TLS (a relay); do not trust this connection",
		    f->target);
		rc = reject(f, reason);
		goto out;
	}
	if (r != CVM_OK) {
		out_verdict_reason(rep, r, why, sizeof(why));
		(void)snprintf(reason, sizeof(reason), "the fresh evidence of %s was rejected: %s", f->target,
		               why);
		rc = reject(f, reason);
		goto out;
	}
	rc = cli_opts.json ? print_json(f, &hv, &fv, rep) : (print_text(f, &hv, &fv), CLI_EXIT_OK);
out:
	free(rep);
	OPENSSL_free(leaf);
	X509_free(peer);
	free(va);
	free(reply);
	cli_net_close(ssl, ctx, fd);
	return rc;
}

int cmd_ratls_fetch(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"collateral", required_argument, NULL, 'c'}, {"root", required_argument, NULL, 'r'},
	    {"ca", required_argument, NULL, 'a'},         {"policy", required_argument, NULL, 'p'},
	    {"at", required_argument, NULL, 't'},         {"require-agent-key", no_argument, NULL, 'K'},
	    {"allow-legacy-ca", no_argument, NULL, 'L'},  CLI_COMMON_LONGOPTS,
	};
	struct cvm_ratls_verifier *v = NULL;
	struct fetch f;
	int c, rc;

	memset(&f, 0, sizeof(f));
	opterr = 0;
	optind = 0; /* a full reset: main() parsed the common options before */
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case 'c':
			f.collateral = optarg;
			break;
		case 'r':
			if (f.root_count == 2) {
				cli_err(CMD, "at most two --root (an Intel root CA and an AMD ARK)");
				return CLI_EXIT_USAGE;
			}
			f.root[f.root_count++] = optarg;
			break;
		case 'a':
			if (f.ca_count == FETCH_CA_MAX) {
				cli_err(CMD, "at most %d --ca", FETCH_CA_MAX);
				return CLI_EXIT_USAGE;
			}
			f.ca[f.ca_count++] = optarg;
			break;
		case 'p':
			f.policy = optarg;
			break;
		case 't':
			if (!cli_parse_time(optarg, &f.at)) {
				cli_err(CMD, "--at wants Unix seconds, not '%s'", optarg);
				return CLI_EXIT_USAGE;
			}
			f.at_set = true;
			break;
		case 'K':
			f.require_agent_key = true;
			break;
		case 'L':
			f.allow_legacy_ca = true;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			cli_bad_option(CMD, c, argv, "cvm cert ratls fetch --help");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		cli_err(CMD, "expected one HOST:PORT");
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	f.target = argv[optind];
	if (!split_target(f.target, &f)) {
		cli_err(CMD, "'%s' is not HOST:PORT", f.target);
		return CLI_EXIT_USAGE;
	}
	if (!f.at_set)
		f.at = (int64_t)time(NULL);
	cli_apply_verbosity();
	rc = make_verifier(&f, &v);
	if (rc == CLI_EXIT_OK)
		rc = fetch(&f, v);
	cvm_ratls_verifier_free(v);
	return rc;
}

/* `cvm kms meta` and `cvm kms app-key`: a client of cvm-kmsd (or dstack's
 * KMS) over TLS 1.3 that checks the KMS's RA-TLS certificate, and, for
 * app-key, presents a CVM's RA-TLS client certificate (mutual RA-TLS), as
 * a simulated CVM or an operator's check would (docs/cli/cvm-kms.md). */
#include <errno.h>
#include <getopt.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cvmkit/crypto.h>
#include <cvmkit/csr.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/secret.h>
#include <cvmkit/tls.h>

#include "cli.h"
#include "net.h"
#include "ratls_opts.h"

#define KMS_TIMEOUT_S 30
#define KMS_REPLY_MAX ((size_t)1024 * 1024)
#define KMS_PEM_MAX ((size_t)256 * 1024)

struct kms_client {
	const char *cmd;
	const char *sub;    /* "meta", "app-key", "sign-cert" */
	const char *target; /* the one being tried */
	const char *const *targets;
	size_t target_count;
	char host[256], port[8];
	const char *cert, *key;
	const char *epoch;   /* app-key --epoch N, or NULL */
	const char *agent;   /* sign-cert: the guest agent, unix:/path */
	const char *subject; /* sign-cert: the certificate's CN */
	const char *out_key; /* sign-cert: where the new key goes */
	char *body;          /* the request body (NULL: "{}" or the epoch) */
	struct cli_ratls_opts vo;
};

static void client_usage(FILE *f, const char *sub)
{
	bool app = strcmp(sub, "app-key") == 0, sign = strcmp(sub, "sign-cert") == 0;

	(void)fprintf(
	    f,
	    "usage: %s kms %s HOST:PORT... [--collateral DIR] [--root CERT]... [--ca CERT]...\n"
	    "                [--policy FILE]%s\n"
	    "  Connects to a KMS over TLS 1.3 (the first of the list that answers, as a CVM's\n"
	    "  kms_urls) and verifies its RA-TLS certificate (the KMS's\n"
	    "  own evidence; --ca pins its root CA), then %s.\n"
	    "  --collateral DIR  tdx/ and/or snp/ collateral for the KMS's evidence\n"
	    "  --root CERT       the vendor root(s) it chains to (default Intel's and AMD's)\n"
	    "  --ca CERT         the KMS's certificate chain must end in this CA\n"
	    "  --policy FILE     appraisal policy for the KMS's evidence\n"
	    "%s"
	    "Exit: 0 answered, 1 error, 2 usage, 3 the KMS or the request was refused.\n",
	    CLI_PROG, sub,
	    app    ? " --cert CHAIN --key KEY"
	    : sign ? " --agent unix:PATH --out-key FILE [--subject CN]"
	           : "",
	    app    ? "asks for the app keys of the CVM whose RA-TLS certificate is given (GetAppKey)\n"
	             "  and prints the answer as JSON: it holds secrets"
	    : sign ? "makes a P-256 key, has the guest agent attest it, sends a SignCert CSR for it\n"
	             "  and prints the answer (the certificate chain: leaf, App CA, root CA) as JSON"
	           : "prints its public metadata (GetMeta) as JSON",
	    app    ? "  --cert CHAIN      the CVM's RA-TLS certificate chain (PEM, leaf first)\n"
	             "  --key KEY         its private key (PEM, mode 0600)\n"
	             "  --epoch N         the keys of key epoch N (default: the current epoch)\n"
	    : sign ? "  --agent unix:PATH the guest agent's dstack socket (it attests the new key)\n"
	             "  --out-key FILE    where the new key goes (PEM, mode 0600)\n"
	             "  --subject CN      the certificate's common name (default cvm-app)\n"
	           : "");
}

static bool split_target(struct kms_client *c)
{
	const char *colon = strrchr(c->target, ':');
	size_t hl;

	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) >= sizeof(c->port))
		return false;
	hl = (size_t)(colon - c->target);
	if (hl == 0 || hl >= sizeof(c->host))
		return false;
	memcpy(c->host, c->target, hl);
	c->host[hl] = '\0';
	(void)snprintf(c->port, sizeof(c->port), "%s", colon + 1);
	return true;
}

static int parse(int argc, char **argv, struct kms_client *c, bool need_cert)
{
	static const struct option opts[] = {
	    {"collateral", required_argument, NULL, 'C'},
	    {"root", required_argument, NULL, 'r'},
	    {"ca", required_argument, NULL, 'a'},
	    {"policy", required_argument, NULL, 'p'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"epoch", required_argument, NULL, 'e'},
	    {"agent", required_argument, NULL, 'A'},
	    {"subject", required_argument, NULL, 'S'},
	    {"out-key", required_argument, NULL, 'O'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'C':
			c->vo.collateral = optarg;
			break;
		case 'r':
			if (c->vo.root_count == 2) {
				cli_err(c->cmd, "at most two --root (Intel's and AMD's)");
				return CLI_EXIT_USAGE;
			}
			c->vo.root[c->vo.root_count++] = optarg;
			break;
		case 'a':
			if (c->vo.ca_count == CLI_RATLS_CA_MAX) {
				cli_err(c->cmd, "at most %d --ca", CLI_RATLS_CA_MAX);
				return CLI_EXIT_USAGE;
			}
			c->vo.ca[c->vo.ca_count++] = optarg;
			break;
		case 'p':
			c->vo.policy = optarg;
			break;
		case 'c':
			c->cert = optarg;
			break;
		case 'k':
			c->key = optarg;
			break;
		case 'A':
			c->agent = optarg;
			break;
		case 'S':
			c->subject = optarg;
			break;
		case 'O':
			c->out_key = optarg;
			break;
		case 'e':
			if (!need_cert || optarg[0] < '0' || optarg[0] > '9' || strlen(optarg) > 7 ||
			    strspn(optarg, "0123456789") != strlen(optarg)) {
				cli_err(c->cmd, "--epoch takes an epoch number (app-key only)");
				return CLI_EXIT_USAGE;
			}
			c->epoch = optarg;
			break;
		case 'h':
			client_usage(stdout, c->sub);
			return -1;
		default:
			client_usage(stderr, c->sub);
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc || (need_cert && (c->cert == NULL || c->key == NULL))) {
		client_usage(stderr, c->sub);
		return CLI_EXIT_USAGE;
	}
	c->targets = (const char *const *)(argv + optind);
	c->target_count = (size_t)(argc - optind);
	return CLI_EXIT_OK;
}

/* ask runs `method` against one target over `ctx` and prints the answer.
 * *next is set when another KMS of the list should be tried: this one did
 * not answer (connection, TLS handshake without a verdict, 5xx). A
 * refusal (4xx, or its RA-TLS certificate rejected) is an answer. */
static int ask(struct kms_client *c, SSL_CTX *ctx, const char *target, const char *method, const char *body,
               bool *next)
{
	uint8_t *reply = NULL;
	size_t reply_len = 0;
	char path[64];
	SSL *ssl = NULL;
	int fd = -1, r, status = 0, rc = CLI_EXIT_ERROR;

	*next = true;
	c->target = target;
	if (!split_target(c)) {
		cli_err(c->cmd, "'%s' is not HOST:PORT", target);
		*next = false;
		return CLI_EXIT_USAGE;
	}
	fd = cli_net_dial(c->cmd, c->host, c->port, c->target, "", KMS_TIMEOUT_S);
	if (fd < 0)
		goto out;
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1)
		goto out;
	if (SSL_connect(ssl) != 1) {
		const char *pe = cvm_tls_peer_error(ssl);

		cli_err(c->cmd, "TLS with %s failed: %s", c->target,
		        pe != NULL ? pe
		                   : "the handshake did not complete (the KMS refused our certificate?)");
		if (pe != NULL) {
			rc = CLI_EXIT_REJECTED;
			*next = false;
		}
		goto out;
	}
	(void)snprintf(path, sizeof(path), "/prpc/KMS.%s?json", method);
	if (!cvm_tls_post_json(ssl, c->host, path, body)) {
		cli_err(c->cmd, "cannot send the request to %s", c->target);
		goto out;
	}
	r = cvm_tls_read_reply(ssl, KMS_REPLY_MAX, &status, &reply, &reply_len);
	if (r != CVM_OK) {
		cli_err(c->cmd, "cannot read the answer of %s: %s", c->target, cvm_strerror(r));
		goto out;
	}
	if (status != 200) {
		cli_err(c->cmd, "%s refused %s (HTTP %d): %.*s", c->target, method, status, (int)reply_len,
		        (const char *)reply);
		if (status >= 400 && status < 500) {
			rc = CLI_EXIT_REJECTED;
			*next = false;
		}
		goto out;
	}
	*next = false;
	(void)fwrite(reply, 1, reply_len, stdout);
	(void)fputc('\n', stdout);
	rc = CLI_EXIT_OK;
out:
	if (reply != NULL)
		cvm_freezero(reply, reply_len);
	cli_net_close(ssl, NULL, fd);
	ERR_clear_error();
	return rc;
}

/* call checks the KMS list in order (as a CVM's kms_urls): the first that
 * answers decides. */
static int call(struct kms_client *c, const char *method)
{
	struct cvm_ratls_verifier *v = NULL;
	struct cvm_p256_keypair *kp = NULL;
	struct cvm_secret *key = NULL;
	uint8_t *chain = NULL;
	size_t chain_len = 0;
	char err[256] = "", body[64] = "{}";
	SSL_CTX *ctx = NULL;
	bool next = true;
	int r, rc;

	rc = cli_ratls_verifier(&c->vo, &v);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = CLI_EXIT_ERROR;
	if (c->cert != NULL) {
		r = cvm_file_read(c->cert, KMS_PEM_MAX, &chain, &chain_len);
		if (r != CVM_OK) {
			cli_err(c->cmd, "cannot read --cert %s", c->cert);
			goto out;
		}
		r = cvm_file_read_key(AT_FDCWD, c->key, KMS_PEM_MAX, &key, err, sizeof(err));
		if (r == CVM_OK)
			r = cvm_p256_keypair_from_pem((const char *)key->p, key->len, &kp);
		if (r != CVM_OK) {
			cli_err(c->cmd, "--key %s: %s", c->key, err[0] != '\0' ? err : cvm_strerror(r));
			goto out;
		}
		/* the chain as text */
		{
			uint8_t *t = realloc(chain, chain_len + 1);

			if (t == NULL)
				goto out;
			chain = t;
			chain[chain_len] = '\0';
		}
	}
	r = cvm_tls_client_ctx_new(v, (const char *)chain, kp, &ctx);
	if (r != CVM_OK) {
		cli_err(c->cmd, "cannot make the TLS context: %s", cvm_strerror(r));
		goto out;
	}
	if (c->epoch != NULL)
		(void)snprintf(body, sizeof(body), "{\"epoch\": %s}", c->epoch);
	for (size_t i = 0; i < c->target_count && next; i++) {
		rc = ask(c, ctx, c->targets[i], method, c->body != NULL ? c->body : body, &next);
		if (next && i + 1 < c->target_count)
			cli_err(c->cmd, "trying the next KMS, %s", c->targets[i + 1]);
	}
out:
	SSL_CTX_free(ctx);
	free(chain);
	cvm_p256_keypair_free(kp);
	cvm_secret_free(key);
	cvm_ratls_verifier_free(v);
	ERR_clear_error();
	return rc;
}

/* client_init sets up `c` for the subcommand `sub` and reads the command
 * line; returns -1 after --help, else a CLI_EXIT_* code. */
static int client_init(struct kms_client *c, const char *cmd, const char *sub, bool need_cert, int argc,
                       char **argv)
{
	memset(c, 0, sizeof(*c));
	c->cmd = cmd;
	c->sub = sub;
	c->vo.cmd = cmd;
	c->vo.at = (int64_t)time(NULL);
	return parse(argc, argv, c, need_cert);
}

int cli_kms_meta(int argc, char **argv)
{
	struct kms_client c;
	int rc = client_init(&c, "kms meta", "meta", false, argc, argv);

	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	return call(&c, "GetMeta");
}

int cli_kms_app_key(int argc, char **argv)
{
	struct kms_client c;
	int rc = client_init(&c, "kms app-key", "app-key", true, argc, argv);

	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	return call(&c, "GetAppKey");
}

/* agent_attest asks the guest agent at unix:PATH for a VersionedAttestation
 * over `rd` (dstack's Attest). Returns a CLI_EXIT_* code. */
static int agent_attest(const char *cmd, const char *agent, const uint8_t rd[64], uint8_t **va,
                        size_t *va_len)
{
	struct sockaddr_un sa;
	char hex[129], req[512], body_out[160], *buf = NULL, *body;
	json_error_t jerr;
	json_t *o = NULL;
	const char *att;
	size_t len = 0, cap = (size_t)4 * 1024 * 1024;
	int fd = -1, n, rc = CLI_EXIT_ERROR;

	*va = NULL;
	*va_len = 0;
	if (strncmp(agent, "unix:", 5) != 0 || strlen(agent + 5) >= sizeof(sa.sun_path)) {
		cli_err(cmd, "--agent takes unix:/path (the guest agent's dstack socket)");
		return CLI_EXIT_USAGE;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, agent + 5, strlen(agent + 5));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		cli_err(cmd, "cannot connect to the guest agent at %s: %s", agent + 5, strerror(errno));
		goto out;
	}
	cvm_hex_encode(rd, 64, hex);
	(void)snprintf(body_out, sizeof(body_out), "{\"report_data\":\"%s\"}", hex);
	n = snprintf(req, sizeof(req),
	             "POST /Attest HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
	             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	             strlen(body_out), body_out);
	if (n <= 0 || write(fd, req, (size_t)n) != n) {
		cli_err(cmd, "cannot ask the guest agent");
		goto out;
	}
	buf = malloc(cap + 1);
	if (buf == NULL)
		goto out;
	for (;;) {
		ssize_t got = read(fd, buf + len, cap - len);

		if (got <= 0)
			break;
		len += (size_t)got;
		if (len == cap) {
			cli_err(cmd, "the guest agent's answer is over %zu bytes", cap);
			goto out;
		}
	}
	buf[len] = '\0';
	body = strstr(buf, "\r\n\r\n");
	if (len < 12 || strncmp(buf, "HTTP/1.1 200", 12) != 0 || body == NULL) {
		cli_err(cmd, "the guest agent refused Attest: %.200s", body != NULL ? body + 4 : buf);
		goto out;
	}
	o = json_loads(body + 4, 0, &jerr);
	att = json_string_value(json_object_get(o, "attestation"));
	if (att == NULL || strlen(att) % 2 != 0 || strlen(att) == 0) {
		cli_err(cmd, "the guest agent's answer has no attestation");
		goto out;
	}
	*va_len = strlen(att) / 2;
	*va = malloc(*va_len);
	if (*va == NULL || cvm_hex_decode_exact(att, strlen(att), *va, *va_len) != CVM_OK) {
		free(*va);
		*va = NULL;
		*va_len = 0;
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	json_decref(o);
	free(buf);
	if (fd >= 0)
		(void)close(fd);
	return rc;
}

int cli_kms_sign_cert(int argc, char **argv)
{
	struct kms_client c;
	struct cvm_p256_keypair *kp = NULL;
	struct cvm_secret *pem = NULL;
	struct cvm_csr_params p;
	uint8_t rd[64], *va = NULL, *csr = NULL, *sig = NULL;
	size_t va_len = 0, csr_len = 0, sig_len = 0, body_len;
	char *csr_hex = NULL, *sig_hex = NULL;
	int rc, r;

	rc = client_init(&c, "kms sign-cert", "sign-cert", false, argc, argv);
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	if (c.agent == NULL || c.out_key == NULL) {
		cli_err(c.cmd, "--agent unix:PATH and --out-key FILE are required");
		return CLI_EXIT_USAGE;
	}
	rc = CLI_EXIT_ERROR;
	r = cvm_p256_keypair_generate(&kp);
	if (r == CVM_OK)
		r = cvm_ratls_report_data(CVM_RATLS_PROFILE_DSTACK, kp, NULL, rd);
	if (r != CVM_OK) {
		cli_err(c.cmd, "cannot make the key: %s", cvm_strerror(r));
		goto out;
	}
	rc = agent_attest(c.cmd, c.agent, rd, &va, &va_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	memset(&p, 0, sizeof(p));
	p.subject = c.subject != NULL ? c.subject : "cvm-app";
	p.usage_server_auth = true;
	p.usage_client_auth = true;
	p.ext_quote = true;
	r = cvm_csr_make_signed(&p, kp, va, va_len, &csr, &csr_len, &sig, &sig_len);
	if (r != CVM_OK) {
		cli_err(c.cmd, "cannot make the CSR: %s", cvm_strerror(r));
		goto out;
	}
	csr_hex = cvm_hex_encode_new(csr, csr_len);
	sig_hex = cvm_hex_encode_new(sig, sig_len);
	body_len = csr_hex != NULL && sig_hex != NULL ? strlen(csr_hex) + strlen(sig_hex) + 64 : 0;
	c.body = body_len != 0 ? malloc(body_len) : NULL;
	if (c.body == NULL)
		goto out;
	(void)snprintf(c.body, body_len, "{\"api_version\": 2, \"csr\": \"%s\", \"signature\": \"%s\"}",
	               csr_hex, sig_hex);
	r = cvm_p256_keypair_pkcs8_pem(kp, &pem);
	if (r == CVM_OK)
		r = cvm_file_write(c.out_key, pem->p, pem->len, 0600);
	if (r != CVM_OK) {
		cli_err(c.cmd, "cannot write --out-key %s", c.out_key);
		goto out;
	}
	rc = call(&c, "SignCert");
out:
	free(c.body);
	free(csr_hex);
	free(sig_hex);
	free(csr);
	free(sig);
	free(va);
	cvm_secret_free(pem);
	cvm_p256_keypair_free(kp);
	return rc;
}

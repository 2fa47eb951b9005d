/* `cvm kms meta` and `cvm kms app-key`: a client of cvm-kmsd (or dstack's
 * KMS) over TLS 1.3 that checks the KMS's RA-TLS certificate, and, for
 * app-key, presents a CVM's RA-TLS client certificate (mutual RA-TLS), as
 * a simulated CVM or an operator's check would (docs/cli/cvm-kms.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cvmkit/crypto.h>
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
	const char *target; /* the one being tried */
	const char *const *targets;
	size_t target_count;
	char host[256], port[8];
	const char *cert, *key;
	const char *epoch; /* app-key --epoch N, or NULL */
	struct cli_ratls_opts vo;
};

static void client_usage(FILE *f, const char *sub)
{
	(void)fprintf(f,
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
	              CLI_PROG, sub, strcmp(sub, "app-key") == 0 ? " --cert CHAIN --key KEY" : "",
	              strcmp(sub, "app-key") == 0
	                  ? "asks for the app keys of the CVM whose RA-TLS certificate is given (GetAppKey)\n"
	                    "  and prints the answer as JSON: it holds secrets"
	                  : "prints its public metadata (GetMeta) as JSON",
	              strcmp(sub, "app-key") == 0
	                  ? "  --cert CHAIN      the CVM's RA-TLS certificate chain (PEM, leaf first)\n"
	                    "  --key KEY         its private key (PEM, mode 0600)\n"
	                    "  --epoch N         the keys of key epoch N (default: the current epoch)\n"
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
		case 'e':
			if (!need_cert || optarg[0] < '0' || optarg[0] > '9' || strlen(optarg) > 7 ||
			    strspn(optarg, "0123456789") != strlen(optarg)) {
				cli_err(c->cmd, "--epoch takes an epoch number (app-key only)");
				return CLI_EXIT_USAGE;
			}
			c->epoch = optarg;
			break;
		case 'h':
			client_usage(stdout, need_cert ? "app-key" : "meta");
			return -1;
		default:
			client_usage(stderr, need_cert ? "app-key" : "meta");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind >= argc || (need_cert && (c->cert == NULL || c->key == NULL))) {
		client_usage(stderr, need_cert ? "app-key" : "meta");
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
	if (!cli_net_post_json(ssl, c->host, path, body)) {
		cli_err(c->cmd, "cannot send the request to %s", c->target);
		goto out;
	}
	r = cli_net_read_reply(ssl, KMS_REPLY_MAX, &status, &reply, &reply_len);
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
		rc = ask(c, ctx, c->targets[i], method, body, &next);
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

int cli_kms_meta(int argc, char **argv)
{
	struct kms_client c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.cmd = "kms meta";
	c.vo.cmd = c.cmd;
	c.vo.at = (int64_t)time(NULL);
	rc = parse(argc, argv, &c, false);
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	return call(&c, "GetMeta");
}

int cli_kms_app_key(int argc, char **argv)
{
	struct kms_client c;
	int rc;

	memset(&c, 0, sizeof(c));
	c.cmd = "kms app-key";
	c.vo.cmd = c.cmd;
	c.vo.at = (int64_t)time(NULL);
	rc = parse(argc, argv, &c, true);
	if (rc != CLI_EXIT_OK)
		return rc < 0 ? CLI_EXIT_OK : rc;
	return call(&c, "GetAppKey");
}

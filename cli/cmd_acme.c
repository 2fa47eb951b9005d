/* cvm cert acme: certificates from an ACME v2 CA (RFC 8555).
 *
 *   cvm cert acme issue  --directory URL --domain D... --account-key FILE --key-out FILE --cert-out FILE
 *                        (--http-01 [--http-port N] [--http-address A] | --dns-01-hook SCRIPT) ...
 *   cvm cert acme renew  (the same) --cert FILE [--force] [--days N | --renew-part N/D]
 *   cvm cert acme revoke --directory URL --account-key FILE --cert FILE [--reason N]
 *
 * The certificate key is made here, written once (0600), and only its CSR
 * goes to the CA. http-01 is answered by a small libevent HTTP server that
 * runs only while the CA validates; dns-01 by a hook script. See
 * docs/cli/cvm-cert-acme.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <jansson.h>

#include <cvmkit/acme.h>
#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/secret.h>

#include "cli.h"

#define CMD_ISSUE "cert acme issue"
#define CMD_RENEW "cert acme renew"
#define CMD_REVOKE "cert acme revoke"
#define KEY_FILE_MAX ((size_t)16 * 1024)
#define CHAIN_FILE_MAX ((size_t)256 * 1024)
#define HOOK_TIMEOUT_S 120
#define CHALLENGE_PREFIX "/.well-known/acme-challenge/"

enum {
	OPT_DIRECTORY = 0x200,
	OPT_DOMAIN,
	OPT_EMAIL,
	OPT_ACCOUNT_KEY,
	OPT_KEY_OUT,
	OPT_CERT_OUT,
	OPT_HTTP01,
	OPT_HTTP_PORT,
	OPT_HTTP_ADDRESS,
	OPT_DNS_HOOK,
	OPT_CA_BUNDLE,
	OPT_TIMEOUT,
	OPT_INSECURE_HTTP,
	OPT_CERT,
	OPT_FORCE,
	OPT_DAYS,
	OPT_RENEW_PART,
	OPT_REASON,
};

struct acme_opts {
	const char *directory, *email, *account_key, *key_out, *cert_out, *http_address, *dns_hook,
	    *ca_bundle, *cert;
	const char *domains[CVM_ACME_NAMES_MAX];
	size_t domain_count;
	bool http01, force, insecure_http;
	unsigned http_port, timeout_s, part_num, part_den;
	int64_t days;
	int reason;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: %s cert acme issue|renew|revoke [OPTIONS]\n"
	        "  issue   --directory URL --domain NAME [--domain NAME]... --account-key FILE\n"
	        "          --key-out FILE --cert-out FILE [--email ADDR]\n"
	        "          (--http-01 [--http-port N] [--http-address ADDR] | --dns-01-hook SCRIPT)\n"
	        "          [--ca-bundle FILE] [--timeout SECONDS]\n"
	        "  renew   the options of issue, and --cert FILE [--force] [--days N | --renew-part N/D]\n"
	        "          (renews only when due: less than 1/3 of the lifetime left by default)\n"
	        "  revoke  --directory URL --account-key FILE --cert FILE [--reason N] [--ca-bundle FILE]\n"
	        "  --allow-insecure-http  TESTS ONLY: accept http:// ACME URLs\n"
	        "See docs/cli/cvm-cert-acme.md.\n",
	        CLI_PROG);
}

/* clang-format off */
static const struct option longopts[] = {
	{"directory", required_argument, NULL, OPT_DIRECTORY},
	{"domain", required_argument, NULL, OPT_DOMAIN},
	{"email", required_argument, NULL, OPT_EMAIL},
	{"account-key", required_argument, NULL, OPT_ACCOUNT_KEY},
	{"key-out", required_argument, NULL, OPT_KEY_OUT},
	{"cert-out", required_argument, NULL, OPT_CERT_OUT},
	{"http-01", no_argument, NULL, OPT_HTTP01},
	{"http-port", required_argument, NULL, OPT_HTTP_PORT},
	{"http-address", required_argument, NULL, OPT_HTTP_ADDRESS},
	{"dns-01-hook", required_argument, NULL, OPT_DNS_HOOK},
	{"ca-bundle", required_argument, NULL, OPT_CA_BUNDLE},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"allow-insecure-http", no_argument, NULL, OPT_INSECURE_HTTP},
	{"cert", required_argument, NULL, OPT_CERT},
	{"force", no_argument, NULL, OPT_FORCE},
	{"days", required_argument, NULL, OPT_DAYS},
	{"renew-part", required_argument, NULL, OPT_RENEW_PART},
	{"reason", required_argument, NULL, OPT_REASON},
	CLI_COMMON_LONGOPTS,
};
/* clang-format on */

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;

	if (s[0] == '\0')
		return false;
	for (size_t i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

static bool parse_part(const char *s, unsigned *num, unsigned *den)
{
	const char *slash = strchr(s, '/');
	char a[16];
	unsigned long n, d;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(a))
		return false;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = '\0';
	if (!parse_uint(a, 1000, &n) || !parse_uint(slash + 1, 1000, &d) || n == 0 || d == 0 || n >= d)
		return false;
	*num = (unsigned)n;
	*den = (unsigned)d;
	return true;
}

/* parse_opts reads the options of `cmd`; it returns -1 to go on, or an exit code. */
static int parse_opts(const char *cmd, int argc, char **argv, struct acme_opts *o)
{
	unsigned long v;
	int c;

	memset(o, 0, sizeof(*o));
	o->http_port = 80;
	o->http_address = "0.0.0.0";
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_DIRECTORY:
			o->directory = optarg;
			break;
		case OPT_DOMAIN:
			if (o->domain_count == CVM_ACME_NAMES_MAX) {
				cli_err(cmd, "at most %d --domain names", CVM_ACME_NAMES_MAX);
				return CLI_EXIT_USAGE;
			}
			if (!cvm_dns_name_ok(optarg)) {
				cli_err(cmd, "--domain '%s' is not a DNS name (letters, digits, '-', dots)",
				        optarg);
				return CLI_EXIT_USAGE;
			}
			o->domains[o->domain_count++] = optarg;
			break;
		case OPT_EMAIL:
			o->email = optarg;
			break;
		case OPT_ACCOUNT_KEY:
			o->account_key = optarg;
			break;
		case OPT_KEY_OUT:
			o->key_out = optarg;
			break;
		case OPT_CERT_OUT:
			o->cert_out = optarg;
			break;
		case OPT_HTTP01:
			o->http01 = true;
			break;
		case OPT_HTTP_PORT:
			if (!parse_uint(optarg, 65535, &v) || v == 0) {
				cli_err(cmd, "--http-port '%s' is not a port number (1..65535)", optarg);
				return CLI_EXIT_USAGE;
			}
			o->http_port = (unsigned)v;
			break;
		case OPT_HTTP_ADDRESS:
			o->http_address = optarg;
			break;
		case OPT_DNS_HOOK:
			o->dns_hook = optarg;
			break;
		case OPT_CA_BUNDLE:
			o->ca_bundle = optarg;
			break;
		case OPT_TIMEOUT:
			if (!parse_uint(optarg, 86400, &v) || v == 0) {
				cli_err(cmd, "--timeout '%s' is not a number of seconds (1..86400)", optarg);
				return CLI_EXIT_USAGE;
			}
			o->timeout_s = (unsigned)v;
			break;
		case OPT_INSECURE_HTTP:
			o->insecure_http = true;
			break;
		case OPT_CERT:
			o->cert = optarg;
			break;
		case OPT_FORCE:
			o->force = true;
			break;
		case OPT_DAYS:
			if (!parse_uint(optarg, 36500, &v) || v == 0) {
				cli_err(cmd, "--days '%s' is not a number of days (1..36500)", optarg);
				return CLI_EXIT_USAGE;
			}
			o->days = (int64_t)v;
			break;
		case OPT_RENEW_PART:
			if (!parse_part(optarg, &o->part_num, &o->part_den)) {
				cli_err(cmd, "--renew-part '%s' is not a fraction N/D with 0 < N < D <= 1000",
				        optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case OPT_REASON:
			if (!parse_uint(optarg, 10, &v) || v == 7) {
				cli_err(cmd, "--reason '%s' is not an RFC 5280 reason code (0..10, not 7)",
				        optarg);
				return CLI_EXIT_USAGE;
			}
			o->reason = (int)v;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			cli_bad_option(cmd, c, argv, "cvm cert acme --help");
			return CLI_EXIT_USAGE;
		}
	}
	cli_apply_verbosity();
	if (optind != argc) {
		cli_err(cmd, "unexpected argument '%s'; see 'cvm cert acme --help'", argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (o->directory == NULL || o->account_key == NULL) {
		cli_err(cmd, "--directory and --account-key are required");
		return CLI_EXIT_USAGE;
	}
	return -1;
}

static int check_issue_opts(const char *cmd, const struct acme_opts *o)
{
	if (o->domain_count == 0 || o->key_out == NULL || o->cert_out == NULL) {
		cli_err(cmd, "--domain, --key-out and --cert-out are required");
		return CLI_EXIT_USAGE;
	}
	if (o->http01 == (o->dns_hook != NULL)) {
		cli_err(cmd, "choose one challenge: --http-01 or --dns-01-hook SCRIPT");
		return CLI_EXIT_USAGE;
	}
	if (o->days != 0 && o->part_den != 0) {
		cli_err(cmd, "--days and --renew-part exclude each other");
		return CLI_EXIT_USAGE;
	}
	return -1;
}

/* -- Keys -- */

/* open_parent opens the folder of `path` and points *base at its last
 * component (the key-file functions take a name inside a folder). */
static int open_parent(const char *cmd, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	int fd;

	*base = path;
	if (slash == NULL)
		return AT_FDCWD;
	if (slash[1] == '\0' || (size_t)(slash - path) >= sizeof(dir)) {
		cli_err(cmd, "'%s' does not name a file", path);
		return -1;
	}
	if (slash == path) {
		dir[0] = '/';
		dir[1] = '\0';
	} else {
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		cli_err(cmd, "cannot open the folder '%s': %s", dir, strerror(errno));
		return -1;
	}
	*base = slash + 1;
	return fd;
}

static void close_parent(int fd)
{
	if (fd >= 0)
		(void)close(fd);
}

static int read_keypair(const char *cmd, const char *what, const char *path, struct cvm_p256_keypair **out)
{
	struct cvm_secret *s = NULL;
	const char *base;
	char err[256];
	int dfd, r;

	dfd = open_parent(cmd, path, &base);
	if (dfd == -1)
		return CLI_EXIT_ERROR;
	r = cvm_file_read_key(dfd, base, KEY_FILE_MAX, &s, err, sizeof(err));
	close_parent(dfd);
	if (r != CVM_OK) {
		cli_err(cmd, "cannot read the %s: %s", what, err);
		return CLI_EXIT_ERROR;
	}
	r = cvm_p256_keypair_from_pem((const char *)s->p, s->len, out);
	cvm_secret_free(s);
	if (r != CVM_OK) {
		cli_err(cmd, "the %s '%s' is not a P-256 private key in PEM (%s)", what, path,
		        cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

/* write_new_key writes `kp` as a new 0600 PKCS#8 PEM key file at `path`,
 * which must not exist. */
static int write_new_key(const char *cmd, const char *what, const char *path,
                         const struct cvm_p256_keypair *kp)
{
	struct cvm_secret *pem = NULL;
	bool created = false;
	const char *base;
	char err[256];
	int dfd, r;

	dfd = open_parent(cmd, path, &base);
	if (dfd == -1)
		return CLI_EXIT_ERROR;
	r = cvm_p256_keypair_pkcs8_pem(kp, &pem);
	if (r != CVM_OK) {
		close_parent(dfd);
		cli_err(cmd, "cannot encode the %s (%s)", what, cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	r = cvm_file_create_key(dfd, base, pem->p, pem->len, &created, err, sizeof(err));
	close_parent(dfd);
	cvm_secret_free(pem);
	if (r != CVM_OK) {
		cli_err(cmd, "cannot write the %s: %s", what, err);
		return CLI_EXIT_ERROR;
	}
	if (!created) {
		cli_err(cmd,
		        "the %s '%s' appeared while cvm was writing it: another process made it; nothing "
		        "replaced",
		        what, path);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

/* account_key reads the account key, or (when `may_create`) makes one at
 * `path` when nothing is there yet. */
static int account_key(const char *cmd, const char *path, bool may_create, struct cvm_p256_keypair **out)
{
	struct cvm_p256_keypair *kp = NULL;
	struct stat st;
	int rc;

	*out = NULL;
	if (lstat(path, &st) == 0 || errno != ENOENT || !may_create)
		return read_keypair(cmd, "account key", path, out);
	if (cvm_p256_keypair_generate(&kp) != CVM_OK) {
		cli_err(cmd, "cannot make an account key");
		return CLI_EXIT_ERROR;
	}
	rc = write_new_key(cmd, "account key", path, kp);
	if (rc != CLI_EXIT_OK) {
		cvm_p256_keypair_free(kp);
		return rc;
	}
	if (!cli_opts.quiet)
		fprintf(stderr, "%s %s: made a new account key '%s' (0600)\n", CLI_PROG, cmd, path);
	*out = kp;
	return CLI_EXIT_OK;
}

/* -- http-01: a small HTTP server, run by a thread while the CA validates -- */

struct http01_entry {
	char *token;
	char *keyauth;
};

struct http01 {
	const char *cmd;
	const char *address;
	unsigned port;
	pthread_mutex_t mu;
	struct http01_entry entries[CVM_ACME_NAMES_MAX];
	size_t count;
	bool running;
	struct event_base *base;
	struct evhttp *http;
	struct event *stop_ev;
	int stop_fd[2];
	pthread_t thread;
};

static void http01_request(struct evhttp_request *req, void *ctx)
{
	struct http01 *h = ctx;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	const char *token;
	bool found = false;

	if (path == NULL || strncmp(path, CHALLENGE_PREFIX, strlen(CHALLENGE_PREFIX)) != 0) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	token = path + strlen(CHALLENGE_PREFIX);
	(void)pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < h->count && !found; i++) {
		if (strcmp(h->entries[i].token, token) == 0) {
			found = evbuffer_add(out, h->entries[i].keyauth, strlen(h->entries[i].keyauth)) == 0;
		}
	}
	(void)pthread_mutex_unlock(&h->mu);
	if (!found) {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
		return;
	}
	(void)evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
	evhttp_send_reply(req, HTTP_OK, "OK", out);
}

static void http01_stop_cb(evutil_socket_t fd, short what, void *ctx)
{
	struct http01 *h = ctx;

	(void)fd;
	(void)what;
	(void)event_base_loopbreak(h->base);
}

static void *http01_thread(void *ctx)
{
	struct http01 *h = ctx;

	(void)event_base_dispatch(h->base);
	return NULL;
}

static void http01_free_loop(struct http01 *h)
{
	if (h->stop_ev != NULL)
		event_free(h->stop_ev);
	if (h->http != NULL)
		evhttp_free(h->http);
	if (h->base != NULL)
		event_base_free(h->base);
	if (h->stop_fd[0] >= 0)
		(void)close(h->stop_fd[0]);
	if (h->stop_fd[1] >= 0)
		(void)close(h->stop_fd[1]);
	h->stop_ev = NULL;
	h->http = NULL;
	h->base = NULL;
	h->stop_fd[0] = h->stop_fd[1] = -1;
}

static int http01_start(struct http01 *h)
{
	struct sigaction sa;

	/* A validator that hangs up early must not kill cvm with SIGPIPE. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	(void)sigaction(SIGPIPE, &sa, NULL);
	h->base = event_base_new();
	if (h->base == NULL || pipe2(h->stop_fd, O_CLOEXEC) != 0) {
		cli_err(h->cmd, "cannot start the http-01 server: %s", strerror(errno));
		goto fail;
	}
	h->http = evhttp_new(h->base);
	h->stop_ev = event_new(h->base, h->stop_fd[0], EV_READ, http01_stop_cb, h);
	if (h->http == NULL || h->stop_ev == NULL || event_add(h->stop_ev, NULL) != 0) {
		cli_err(h->cmd, "cannot start the http-01 server: out of memory");
		goto fail;
	}
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(h->http, 8192);
	evhttp_set_max_body_size(h->http, 1024);
	evhttp_set_timeout(h->http, 10);
	evhttp_set_gencb(h->http, http01_request, h);
	if (evhttp_bind_socket(h->http, h->address, (uint16_t)h->port) != 0) {
		cli_err(h->cmd,
		        "cannot listen on %s port %u for http-01 (%s): the port must be free, and below "
		        "1024 it needs root or CAP_NET_BIND_SERVICE",
		        h->address, h->port, strerror(errno));
		goto fail;
	}
	if (pthread_create(&h->thread, NULL, http01_thread, h) != 0) {
		cli_err(h->cmd, "cannot start the http-01 server's thread");
		goto fail;
	}
	h->running = true;
	if (!cli_opts.quiet)
		fprintf(stderr, "%s %s: serving http-01 challenges on %s port %u\n", CLI_PROG, h->cmd,
		        h->address, h->port);
	return 0;
fail:
	http01_free_loop(h);
	return -1;
}

static void http01_stop(struct http01 *h)
{
	if (h->running) {
		const char b = 1;

		while (write(h->stop_fd[1], &b, 1) < 0 && errno == EINTR)
			;
		(void)pthread_join(h->thread, NULL);
		h->running = false;
		if (!cli_opts.quiet)
			fprintf(stderr, "%s %s: http-01 server stopped\n", CLI_PROG, h->cmd);
	}
	http01_free_loop(h);
	for (size_t i = 0; i < h->count; i++) {
		free(h->entries[i].token);
		free(h->entries[i].keyauth);
	}
	h->count = 0;
}

static int http01_present(void *ctx, const char *domain, const char *token, const char *value)
{
	struct http01 *h = ctx;
	struct http01_entry e = {strdup(token), strdup(value)};
	int r = 0;

	(void)domain;
	if (e.token == NULL || e.keyauth == NULL) {
		free(e.token);
		free(e.keyauth);
		return -1;
	}
	(void)pthread_mutex_lock(&h->mu);
	if (h->count == CVM_ACME_NAMES_MAX) {
		r = -1;
	} else {
		h->entries[h->count++] = e;
		e.token = e.keyauth = NULL;
	}
	(void)pthread_mutex_unlock(&h->mu);
	free(e.token);
	free(e.keyauth);
	if (r == 0 && !h->running)
		r = http01_start(h);
	return r;
}

static void http01_cleanup(void *ctx, const char *domain, const char *token, const char *value)
{
	struct http01 *h = ctx;

	(void)domain;
	(void)value;
	(void)pthread_mutex_lock(&h->mu);
	for (size_t i = 0; i < h->count; i++) {
		if (strcmp(h->entries[i].token, token) == 0) {
			free(h->entries[i].token);
			free(h->entries[i].keyauth);
			h->entries[i] = h->entries[h->count - 1];
			h->count--;
			break;
		}
	}
	(void)pthread_mutex_unlock(&h->mu);
}

/* -- dns-01: a hook script -- */

struct dns_hook {
	const char *cmd;
	const char *script;
};

/* run_hook runs `script action domain value`, its output on stderr, for
 * at most HOOK_TIMEOUT_S seconds; 0 when it exits 0. */
static int run_hook(const struct dns_hook *d, const char *action, const char *domain, const char *value)
{
	int status = 0;
	pid_t pid, w;

	pid = fork();
	if (pid < 0) {
		cli_err(d->cmd, "cannot run the dns-01 hook: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		/* execv wants writable strings: the child's own copies. */
		char *const args[] = {strdup(d->script), strdup(action), strdup(domain), strdup(value), NULL};

		(void)dup2(STDERR_FILENO, STDOUT_FILENO);
		if (args[0] != NULL && args[1] != NULL && args[2] != NULL && args[3] != NULL)
			execv(d->script, args);
		fprintf(stderr, "%s %s: cannot run the dns-01 hook '%s': %s\n", CLI_PROG, d->cmd, d->script,
		        strerror(errno));
		_exit(127);
	}
	for (int ticks = 0;; ticks++) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			cli_err(d->cmd, "lost the dns-01 hook: %s", strerror(errno));
			return -1;
		}
		if (ticks >= HOOK_TIMEOUT_S * 20) {
			(void)kill(pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			cli_err(d->cmd, "the dns-01 hook '%s %s %s' ran longer than %d s and was killed",
			        d->script, action, domain, HOOK_TIMEOUT_S);
			return -1;
		}
		(void)nanosleep(&(struct timespec){0, 50L * 1000 * 1000}, NULL);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		cli_err(d->cmd, "the dns-01 hook '%s %s %s' failed (%s %d)", d->script, action, domain,
		        WIFEXITED(status) ? "exit status" : "signal",
		        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		return -1;
	}
	return 0;
}

static int dns_present(void *ctx, const char *domain, const char *token, const char *value)
{
	(void)token;
	return run_hook(ctx, "present", domain, value);
}

static void dns_cleanup(void *ctx, const char *domain, const char *token, const char *value)
{
	(void)token;
	(void)run_hook(ctx, "cleanup", domain, value);
}

/* -- The client -- */

static void on_progress(void *ctx, const char *line)
{
	const char *cmd = ctx;

	if (!cli_opts.quiet)
		fprintf(stderr, "%s %s: %s\n", CLI_PROG, cmd, line);
}

static int open_client(const char *cmd, const struct acme_opts *o, const struct cvm_p256_keypair *akey,
                       bool only_existing, struct cvm_acme_client **out)
{
	struct cvm_acme_config cfg;
	int r;

	memset(&cfg, 0, sizeof(cfg));
	cfg.directory_url = o->directory;
	cfg.ca_bundle = o->ca_bundle;
	cfg.allow_insecure_http = o->insecure_http;
	cfg.poll_timeout_s = o->timeout_s;
	cfg.progress = on_progress;
	cfg.progress_ctx = (void *)(uintptr_t)cmd;
	r = cvm_acme_client_new(&cfg, akey, out);
	if (r == CVM_E_INVAL) {
		cli_err(
		    cmd,
		    "--directory '%s' is not an https URL (http only with --allow-insecure-http, for tests)",
		    o->directory);
		return CLI_EXIT_USAGE;
	}
	if (r != CVM_OK) {
		cli_err(cmd, "cannot start the ACME client (%s)", cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	r = cvm_acme_account(*out, only_existing ? NULL : o->email, only_existing);
	if (r != CVM_OK) {
		cli_err(cmd, "%s", cvm_acme_client_error(*out));
		cvm_acme_client_free(*out);
		*out = NULL;
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(buf, len, "%" PRId64, t);
}

static void print_cert(const char *cmd, const char *verb, const struct acme_opts *o, const char *pem,
                       size_t len)
{
	struct cvm_cert **certs = NULL;
	size_t count = 0;
	char serial[2 * CVM_CERT_SERIAL_MAX + 4] = "?";
	char until[32];
	int64_t na = 0;

	if (cvm_certs_parse_pem((const uint8_t *)pem, len, &certs, &count) == CVM_OK) {
		cvm_cert_serial(certs[0], serial, sizeof(serial));
		na = cvm_cert_not_after(certs[0]);
		cvm_certs_free(certs, count);
	}
	if (cli_opts.json) {
		json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:I}", "action", verb, "cert", o->cert_out, "key",
		                      o->key_out, "serial", serial, "not_after", (json_int_t)na);
		char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

		if (text != NULL)
			printf("%s\n", text);
		else
			cli_err(cmd, "out of memory");
		free(text);
		json_decref(j);
		return;
	}
	fmt_time(na, until, sizeof(until));
	printf("%s: certificate %s for %zu name(s), serial %s, valid until %s\n", verb, o->cert_out,
	       o->domain_count, serial, until);
	printf("key: %s (0600, made here; only its CSR went to the CA)\n", o->key_out);
}

/* issue_with runs an order with `ck` and writes the chain to cert_out;
 * the key file is written by the caller's `write_key` step first. */
static int order_cert(const char *cmd, const struct acme_opts *o, struct cvm_acme_client *c,
                      const struct cvm_p256_keypair *ck, char **chain, size_t *chain_len)
{
	struct http01 h;
	struct dns_hook d = {cmd, o->dns_hook};
	struct cvm_acme_solver s;
	int r;

	memset(&h, 0, sizeof(h));
	h.cmd = cmd;
	h.address = o->http_address;
	h.port = o->http_port;
	h.stop_fd[0] = h.stop_fd[1] = -1;
	(void)pthread_mutex_init(&h.mu, NULL);
	memset(&s, 0, sizeof(s));
	if (o->http01) {
		s.type = CVM_ACME_HTTP_01;
		s.present = http01_present;
		s.cleanup = http01_cleanup;
		s.ctx = &h;
	} else {
		s.type = CVM_ACME_DNS_01;
		s.present = dns_present;
		s.cleanup = dns_cleanup;
		s.ctx = &d;
	}
	r = cvm_acme_issue(c, o->domains, o->domain_count, &s, ck, chain, chain_len);
	http01_stop(&h);
	(void)pthread_mutex_destroy(&h.mu);
	if (r != CVM_OK) {
		cli_err(cmd, "%s", cvm_acme_client_error(c));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static int write_cert(const char *cmd, const char *path, const char *pem, size_t len)
{
	if (cvm_file_write(path, pem, len, 0644) != CVM_OK) {
		cli_err(cmd, "cannot write the certificate '%s': %s", path, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static int acme_issue(int argc, char **argv)
{
	struct acme_opts o;
	struct cvm_p256_keypair *akey = NULL, *ck = NULL;
	struct cvm_acme_client *c = NULL;
	struct stat st;
	char *chain = NULL;
	size_t chain_len = 0;
	int rc;

	rc = parse_opts(CMD_ISSUE, argc, argv, &o);
	if (rc >= 0)
		return rc;
	rc = check_issue_opts(CMD_ISSUE, &o);
	if (rc >= 0)
		return rc;
	if (o.cert != NULL || o.force || o.days != 0 || o.part_den != 0 || o.reason != 0) {
		cli_err(CMD_ISSUE,
		        "--cert, --force, --days, --renew-part and --reason belong to renew or revoke");
		return CLI_EXIT_USAGE;
	}
	if (lstat(o.key_out, &st) == 0 || errno != ENOENT) {
		cli_err(CMD_ISSUE,
		        "--key-out '%s' exists: a key file is written once; use renew, or another path",
		        o.key_out);
		return CLI_EXIT_ERROR;
	}
	rc = account_key(CMD_ISSUE, o.account_key, true, &akey);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = open_client(CMD_ISSUE, &o, akey, false, &c);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	if (cvm_p256_keypair_generate(&ck) != CVM_OK) {
		cli_err(CMD_ISSUE, "cannot make the certificate key");
		goto out;
	}
	rc = order_cert(CMD_ISSUE, &o, c, ck, &chain, &chain_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = write_new_key(CMD_ISSUE, "certificate key (--key-out)", o.key_out, ck);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = write_cert(CMD_ISSUE, o.cert_out, chain, chain_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	print_cert(CMD_ISSUE, "issued", &o, chain, chain_len);
out:
	free(chain);
	cvm_acme_client_free(c);
	cvm_p256_keypair_free(ck);
	cvm_p256_keypair_free(akey);
	return rc;
}

/* load_leaf reads the first certificate of a PEM chain (or a DER file). */
static int load_leaf(const char *cmd, const char *path, struct cvm_cert **leaf)
{
	struct cvm_cert **certs = NULL;
	size_t count = 0;
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	*leaf = NULL;
	rc = cli_read_file(cmd, "--cert", path, CHAIN_FILE_MAX, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (cvm_certs_parse_pem(buf, len, &certs, &count) == CVM_OK) {
		*leaf = certs[0];
		certs[0] = NULL;
		cvm_certs_free(certs, count);
	} else if (cvm_cert_parse(buf, len, leaf) != CVM_OK) {
		cli_err(cmd, "--cert '%s' is neither a PEM certificate chain nor a DER certificate", path);
		rc = CLI_EXIT_ERROR;
	}
	free(buf);
	return rc;
}

static int acme_renew(int argc, char **argv)
{
	struct acme_opts o;
	struct cvm_p256_keypair *akey = NULL, *ck = NULL;
	struct cvm_acme_client *c = NULL;
	struct cvm_cert *old = NULL;
	char *chain = NULL, *tmp_key = NULL;
	size_t chain_len = 0;
	char nb_s[32], na_s[32];
	int64_t nb, na, now = (int64_t)time(NULL);
	int rc;

	rc = parse_opts(CMD_RENEW, argc, argv, &o);
	if (rc >= 0)
		return rc;
	rc = check_issue_opts(CMD_RENEW, &o);
	if (rc >= 0)
		return rc;
	if (o.cert == NULL) {
		cli_err(CMD_RENEW, "--cert FILE (the certificate to renew) is required");
		return CLI_EXIT_USAGE;
	}
	rc = load_leaf(CMD_RENEW, o.cert, &old);
	if (rc != CLI_EXIT_OK)
		return rc;
	nb = cvm_cert_not_before(old);
	na = cvm_cert_not_after(old);
	cvm_cert_free(old);
	fmt_time(na, na_s, sizeof(na_s));
	if (!o.force && !cvm_acme_renewal_due(nb, na, now, o.days * 86400, o.part_num, o.part_den)) {
		if (o.days != 0)
			(void)snprintf(nb_s, sizeof(nb_s), "%" PRId64 " days", o.days);
		else
			(void)snprintf(nb_s, sizeof(nb_s), "%u/%u of its lifetime",
			               o.part_den ? o.part_num : 1, o.part_den ? o.part_den : 3);
		if (cli_opts.json)
			printf("{\"action\":\"none\",\"due\":false,\"not_after\":%" PRId64 "}\n", na);
		else
			printf(
			    "not due: '%s' is valid until %s, and renewal starts when less than %s remains; "
			    "nothing done (--force renews now)\n",
			    o.cert, na_s, nb_s);
		return CLI_EXIT_OK;
	}
	tmp_key = malloc(strlen(o.key_out) + sizeof(".renew"));
	if (tmp_key == NULL) {
		cli_err(CMD_RENEW, "out of memory");
		return CLI_EXIT_ERROR;
	}
	(void)snprintf(tmp_key, strlen(o.key_out) + sizeof(".renew"), "%s.renew", o.key_out);
	rc = account_key(CMD_RENEW, o.account_key, true, &akey);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = open_client(CMD_RENEW, &o, akey, false, &c);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	if (cvm_p256_keypair_generate(&ck) != CVM_OK) {
		cli_err(CMD_RENEW, "cannot make the certificate key");
		goto out;
	}
	rc = order_cert(CMD_RENEW, &o, c, ck, &chain, &chain_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	/* The new key goes in beside the old one, then over it: a reader sees
	 * the old key or the new one, never part of either. */
	rc = write_new_key(CMD_RENEW, "new certificate key", tmp_key, ck);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (rename(tmp_key, o.key_out) != 0) {
		cli_err(CMD_RENEW, "cannot move the new key '%s' to '%s': %s", tmp_key, o.key_out,
		        strerror(errno));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	rc = write_cert(CMD_RENEW, o.cert_out, chain, chain_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	print_cert(CMD_RENEW, "renewed", &o, chain, chain_len);
out:
	free(tmp_key);
	free(chain);
	cvm_acme_client_free(c);
	cvm_p256_keypair_free(ck);
	cvm_p256_keypair_free(akey);
	return rc;
}

static int acme_revoke(int argc, char **argv)
{
	struct acme_opts o;
	struct cvm_p256_keypair *akey = NULL;
	struct cvm_acme_client *c = NULL;
	struct cvm_cert *leaf = NULL;
	const uint8_t *der;
	size_t der_len;
	char serial[2 * CVM_CERT_SERIAL_MAX + 4];
	int rc;

	rc = parse_opts(CMD_REVOKE, argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (o.cert == NULL) {
		cli_err(CMD_REVOKE, "--cert FILE (the certificate to revoke) is required");
		return CLI_EXIT_USAGE;
	}
	rc = load_leaf(CMD_REVOKE, o.cert, &leaf);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = account_key(CMD_REVOKE, o.account_key, false, &akey);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = open_client(CMD_REVOKE, &o, akey, true, &c);
	if (rc != CLI_EXIT_OK)
		goto out;
	cvm_cert_der(leaf, &der, &der_len);
	if (cvm_acme_revoke(c, der, der_len, o.reason) != CVM_OK) {
		cli_err(CMD_REVOKE, "%s", cvm_acme_client_error(c));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	cvm_cert_serial(leaf, serial, sizeof(serial));
	if (cli_opts.json)
		printf("{\"action\":\"revoked\",\"serial\":\"%s\",\"reason\":%d}\n", serial, o.reason);
	else
		printf("revoked: certificate %s (serial %s, reason %d)\n", o.cert, serial, o.reason);
out:
	cvm_cert_free(leaf);
	cvm_acme_client_free(c);
	cvm_p256_keypair_free(akey);
	return rc;
}

int cmd_cert_acme(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"issue", acme_issue},
	    {"renew", acme_renew},
	    {"revoke", acme_revoke},
	};

	return cli_dispatch("cert acme", subs, sizeof(subs) / sizeof(subs[0]), usage, argc, argv);
}

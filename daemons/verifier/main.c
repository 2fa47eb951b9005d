/* cvm-verifierd: the verification service (docs/daemons/cvm-verifierd.md).
 *
 * The sequence of every cvmkit daemon: arguments and config file; logging;
 * listeners; privilege drop; serve. Serving is prefork: the parent opens
 * the listening sockets and the shared metrics page, checks once that a
 * worker's state can be made (so a bad config fails at start, not in a
 * restart loop), forks `workers` processes that all accept on the same
 * sockets, and supervises them: a worker that dies is restarted, SIGTERM
 * or SIGINT is forwarded and the parent exits once all workers have.
 *
 * --verify FILE answers one dstack POST /verify body without any listener. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include <cvmkit/file.h>

#include "conf.h"
#include "daemon.h"
#include "httpd.h"
#include "verifier.h"

#ifndef CVM_VERSION_STRING
#define CVM_VERSION_STRING "0.1.0"
#endif

#define PROG "cvm-verifierd"
#define DEFAULT_CONFIG "/etc/cvmkit/verifierd.conf"
#define DEFAULT_CACHE "/var/cache/cvmkit/collateral"
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define WORKERS_MAX VD_WORKERS_MAX
#define VERIFY_BODY_MAX ((size_t)64 * 1024 * 1024)
/* how long workers get to finish after SIGTERM before SIGKILL */
#define STOP_GRACE_S 10

#define STR_MAX 512

/* The configuration's storage; struct vd_config points into it. */
struct settings {
	char config_file[STR_MAX];
	char listen[STR_MAX]; /* comma-separated addresses */
	char cache_dir[STR_MAX];
	char pccs_url[STR_MAX];
	char kds_url[STR_MAX];
	char policy[STR_MAX];
	char intel_root[STR_MAX];
	char amd_root[STR_MAX];
	char user[64];
	char log_level[16];
	char port_file[STR_MAX];
	char verify_file[STR_MAX];
	char import_path[STR_MAX];
	uint64_t workers;
	uint64_t at;
	uint64_t max_inflight;
	uint64_t upstream_timeout_ms, upstream_retries;
	uint64_t refresh_check, refresh_after;
	bool offline;
	uint64_t max_body, timeout, header_timeout, body_timeout, reply_timeout;
	uint64_t max_connections, max_connections_per_peer, max_buffered, max_buffered_per_peer;
	unsigned mode;
};

static void usage(FILE *f)
{
	(void)fprintf(
	    f, "usage: " PROG " [-c FILE] [options]\n"
	       "       " PROG " --verify FILE|- [options]\n"
	       "\n"
	       "  -c, --config FILE   INI config (default " DEFAULT_CONFIG " when it exists)\n"
	       "  --listen ADDR       HOST:PORT or unix:/path; repeat for more (default " DEFAULT_LISTEN ")\n"
	       "  --cache DIR         collateral cache directory (default " DEFAULT_CACHE ")\n"
	       "  --workers N         worker processes (default: online CPUs)\n"
	       "  --at UNIX           verify at this fixed time (replaying old evidence)\n"
	       "  --verify FILE       answer one dstack POST /verify body (- reads stdin), print\n"
	       "                      the JSON answer; exit 0 valid, 3 not valid, 1 error\n"
	       "  --import PATH       verify a collateral bundle or folder (at --at, or now) and\n"
	       "                      store it in the cache, then exit (seeding an air-gapped\n"
	       "                      verifier)\n"
	       "  --port-file FILE    write the first TCP port bound (useful with port 0)\n"
	       "  --user USER         drop privileges to USER once listening\n"
	       "  --log-level LEVEL   error, warn, info (default) or debug\n"
	       "  -v, --verbose       --log-level debug\n"
	       "  -h, --help          this text\n"
	       "  --version           print the version\n");
}

enum {
	OPT_LISTEN = 0x100,
	OPT_CACHE,
	OPT_WORKERS,
	OPT_AT,
	OPT_VERIFY,
	OPT_IMPORT,
	OPT_PORT_FILE,
	OPT_USER,
	OPT_LOG_LEVEL,
	OPT_VERSION,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"cache", required_argument, NULL, OPT_CACHE},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"at", required_argument, NULL, OPT_AT},
    {"verify", required_argument, NULL, OPT_VERIFY},
    {"import", required_argument, NULL, OPT_IMPORT},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"user", required_argument, NULL, OPT_USER},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

#define KEY(sec, name, type, field)                                \
	{                                                          \
		sec, name, type, &s->field, sizeof(s->field), 0, 0 \
	}
#define NUM(sec, name, field, min, max)                             \
	{                                                           \
		sec, name, CVM_CONF_U64, &s->field, 0, (min), (max) \
	}

static int load_config(struct settings *s, char *err, size_t err_len)
{
	const struct cvm_conf_key keys[] = {
	    KEY("verifierd", "listen", CVM_CONF_STR, listen),
	    KEY("verifierd", "mode", CVM_CONF_MODE, mode),
	    NUM("verifierd", "workers", workers, 1, WORKERS_MAX),
	    NUM("verifierd", "max_inflight", max_inflight, 0, 1u << 20),
	    KEY("verifierd", "user", CVM_CONF_STR, user),
	    KEY("verifierd", "log_level", CVM_CONF_STR, log_level),
	    KEY("verifierd", "port_file", CVM_CONF_STR, port_file),
	    KEY("cache", "dir", CVM_CONF_STR, cache_dir),
	    KEY("upstream", "pccs_url", CVM_CONF_STR, pccs_url),
	    KEY("upstream", "kds_url", CVM_CONF_STR, kds_url),
	    KEY("upstream", "offline", CVM_CONF_BOOL, offline),
	    NUM("upstream", "timeout_ms", upstream_timeout_ms, 100, 600000),
	    NUM("upstream", "retries", upstream_retries, 1, 10),
	    NUM("upstream", "refresh_check", refresh_check, 0, 86400),
	    NUM("upstream", "refresh_after", refresh_after, 60, (uint64_t)30 * 86400),
	    KEY("verify", "policy", CVM_CONF_STR, policy),
	    NUM("verify", "at", at, 1, (uint64_t)INT64_MAX),
	    KEY("trust", "intel_root", CVM_CONF_STR, intel_root),
	    KEY("trust", "amd_root", CVM_CONF_STR, amd_root),
	    NUM("http", "max_body", max_body, 1024, VERIFY_BODY_MAX),
	    NUM("http", "timeout", timeout, 1, CVM_HTTPD_TIMEOUT_MAX),
	    NUM("http", "header_timeout", header_timeout, 1, CVM_HTTPD_TIMEOUT_MAX),
	    NUM("http", "body_timeout", body_timeout, 1, CVM_HTTPD_TIMEOUT_MAX),
	    NUM("http", "reply_timeout", reply_timeout, 1, CVM_HTTPD_TIMEOUT_MAX),
	    NUM("http", "max_connections", max_connections, 1, CVM_HTTPD_CONNECTIONS_MAX),
	    NUM("http", "max_connections_per_peer", max_connections_per_peer, 1, CVM_HTTPD_CONNECTIONS_MAX),
	    NUM("http", "max_buffered", max_buffered, 65536, CVM_HTTPD_BUFFERED_MAX),
	    NUM("http", "max_buffered_per_peer", max_buffered_per_peer, 65536, CVM_HTTPD_BUFFERED_MAX),
	};

	return cvm_conf_load(s->config_file, keys, sizeof(keys) / sizeof(keys[0]), err, err_len);
}

static int set_str(char *dst, size_t cap, const char *v, const char *opt)
{
	if (strlen(v) >= cap) {
		(void)fprintf(stderr, PROG ": %s: value too long\n", opt);
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

#define SET(field, opt) set_str(s->field, sizeof(s->field), optarg, opt)

/* parse_args reads the command line over the config. It runs twice: first
 * only for -c (and -h, --version), then for everything else. --listen
 * given on the command line replaces the config's list. */
static int parse_args(int argc, char **argv, struct settings *s, bool first)
{
	bool listen_given = false;
	int opt, e = 0;
	uint64_t n;

	optind = 1;
	opterr = first ? 1 : 0;
	while ((opt = getopt_long(argc, argv, "c:vh", long_opts, NULL)) != -1) {
		if (first) {
			switch (opt) {
			case 'c':
				e = SET(config_file, "--config");
				break;
			case 'h':
				usage(stdout);
				exit(0);
			case OPT_VERSION:
				(void)printf(PROG " " CVM_VERSION_STRING "\n");
				exit(0);
			case '?':
				usage(stderr);
				return 2;
			default:
				break;
			}
			if (e != 0)
				return 2;
			continue;
		}
		switch (opt) {
		case OPT_LISTEN: {
			size_t l = listen_given ? strlen(s->listen) : 0;

			if (l + strlen(optarg) + 2 > sizeof(s->listen)) {
				(void)fprintf(stderr, PROG ": --listen: too many addresses\n");
				return 2;
			}
			(void)snprintf(s->listen + l, sizeof(s->listen) - l, "%s%s", l != 0 ? "," : "",
			               optarg);
			listen_given = true;
			break;
		}
		case OPT_CACHE:
			e = SET(cache_dir, "--cache");
			break;
		case OPT_WORKERS:
			e = cvm_parse_u64(optarg, 1, WORKERS_MAX, &s->workers) == CVM_OK ? 0 : -1;
			if (e != 0)
				(void)fprintf(stderr, PROG ": --workers: a number 1..%u\n", WORKERS_MAX);
			break;
		case OPT_AT:
			e = cvm_parse_u64(optarg, 1, (uint64_t)INT64_MAX, &n) == CVM_OK ? 0 : -1;
			if (e != 0)
				(void)fprintf(stderr, PROG ": --at: a Unix time in seconds\n");
			s->at = n;
			break;
		case OPT_VERIFY:
			e = SET(verify_file, "--verify");
			break;
		case OPT_IMPORT:
			e = SET(import_path, "--import");
			break;
		case OPT_PORT_FILE:
			e = SET(port_file, "--port-file");
			break;
		case OPT_USER:
			e = SET(user, "--user");
			break;
		case OPT_LOG_LEVEL:
			e = SET(log_level, "--log-level");
			break;
		case 'v':
			(void)snprintf(s->log_level, sizeof(s->log_level), "debug");
			break;
		default:
			break;
		}
		if (e != 0)
			return 2;
	}
	if (optind != argc) {
		(void)fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

/* config_fill points `cfg` into `s`; returns false (with a message) when
 * the listen list is too long. */
static bool config_fill(struct settings *s, struct vd_config *cfg)
{
	char *save = NULL, *tok;

	memset(cfg, 0, sizeof(*cfg));
	cfg->config_path = s->config_file;
	cfg->workers = (unsigned)s->workers;
	cfg->cache_dir = s->cache_dir;
	cfg->intel_url = s->pccs_url;
	cfg->amd_url = s->kds_url;
	cfg->policy_path = s->policy;
	cfg->intel_root = s->intel_root;
	cfg->amd_root = s->amd_root;
	cfg->at = (int64_t)s->at;
	cfg->offline = s->offline;
	cfg->upstream_timeout_ms = (unsigned)s->upstream_timeout_ms;
	cfg->upstream_retries = (unsigned)s->upstream_retries;
	cfg->refresh_check_s = (unsigned)s->refresh_check;
	cfg->refresh_after_s = (unsigned)s->refresh_after;
	cfg->user = s->user;
	cfg->max_inflight = (unsigned)s->max_inflight;
	cfg->http.name = "verifier";
	cfg->http.max_body = (size_t)s->max_body;
	cfg->http.timeout_s = (unsigned)s->timeout;
	cfg->http.header_timeout_s = (unsigned)s->header_timeout;
	cfg->http.body_timeout_s = (unsigned)s->body_timeout;
	cfg->http.reply_timeout_s = (unsigned)s->reply_timeout;
	cfg->http.max_connections = (unsigned)s->max_connections;
	cfg->http.max_connections_per_peer = (unsigned)s->max_connections_per_peer;
	cfg->http.max_buffered = (size_t)s->max_buffered;
	cfg->http.max_buffered_per_peer = (size_t)s->max_buffered_per_peer;
	for (tok = strtok_r(s->listen, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		if (cfg->listen_count == CVM_HTTPD_LISTENERS_MAX) {
			(void)fprintf(stderr, PROG ": at most %u listen addresses\n",
			              (unsigned)CVM_HTTPD_LISTENERS_MAX);
			return false;
		}
		cfg->listen[cfg->listen_count++] = tok;
	}
	return true;
}

/* run_verify answers one dstack POST /verify body from a file. */
static int run_verify(const struct vd_config *cfg, const char *path)
{
	struct vd_ctx ctx;
	struct cvm_http_resp resp;
	uint8_t *body = NULL;
	size_t len = 0;
	char err[512];
	json_t *o = NULL;
	int r, rc = 1;

	memset(&resp, 0, sizeof(resp));
	if (strcmp(path, "-") == 0)
		r = cvm_file_read("/dev/stdin", VERIFY_BODY_MAX, &body, &len);
	else
		r = cvm_file_read(path, VERIFY_BODY_MAX, &body, &len);
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot read %s: %s\n", path,
		              r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return 1;
	}
	err[0] = '\0';
	r = vd_ctx_open(&ctx, cfg, NULL, err, sizeof(err));
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	vd_dstack_verify(&ctx, body, len, &resp);
	vd_ctx_close(&ctx);
	if (resp.body == NULL) {
		(void)fprintf(stderr, PROG ": no answer (out of memory)\n");
		goto out;
	}
	(void)fwrite(resp.body, 1, resp.body_len, stdout);
	(void)fputc('\n', stdout);
	if (resp.status != 200) {
		(void)fprintf(stderr, PROG ": the request was refused (%d): %s\n", resp.status, resp.err);
		goto out;
	}
	o = json_loadb(resp.body, resp.body_len, 0, NULL);
	if (!json_is_boolean(json_object_get(o, "is_valid"))) {
		(void)fprintf(stderr, PROG ": the answer has no is_valid\n");
		goto out;
	}
	rc = json_is_true(json_object_get(o, "is_valid")) ? 0 : 3;
out:
	json_decref(o);
	cvm_http_resp_cleanup(&resp);
	free(body);
	return rc;
}

/* run_import verifies a bundle or collateral folder and stores it. */
static int run_import(const struct vd_config *cfg, const char *path)
{
	struct vd_ctx ctx;
	size_t count = 0;
	char err[512];
	int r;

	err[0] = '\0';
	r = vd_ctx_open(&ctx, cfg, NULL, err, sizeof(err));
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	r = cvm_cache_import(ctx.cache, path, vd_now(&ctx), &count, err, sizeof(err));
	vd_ctx_close(&ctx);
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot import %s: %s\n", path,
		              err[0] != '\0' ? err : cvm_strerror(r));
		return 1;
	}
	(void)printf("imported %zu item(s) from %s into %s\n", count, path, cfg->cache_dir);
	return 0;
}

struct gate {
	struct vd_metrics *metrics;
	unsigned index, workers;
};

static bool share_gate(void *ctx, unsigned open)
{
	const struct gate *g = ctx;

	return vd_metrics_share(g->metrics, g->index, g->workers, open);
}

/* worker_base makes a worker's event base. With epoll's change list, a
 * connection's read-off/write-on and write-off/read-on around each answer
 * are one epoll_ctl each instead of two. (libevent warns that the change
 * list may give spurious events for fds cloned by dup(): the only ones here
 * are the listening sockets, where a spurious event is an accept that finds
 * nothing, which evconnlistener handles.) */
static struct event_base *worker_base(void)
{
	struct event_config *ec = event_config_new();
	struct event_base *base;

	if (ec == NULL)
		return NULL;
	(void)event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(ec);
	event_config_free(ec);
	return base;
}

/* worker_main serves on the inherited sockets until SIGTERM; it is worker
 * `index` of cfg->workers. */
static int worker_main(const struct vd_config *cfg, struct vd_metrics *metrics, const int *fds, size_t nfds,
                       unsigned index)
{
	struct gate gate = {metrics, index, cfg->workers};
	struct event_base *base = NULL;
	struct cvm_daemon_signals *sigs = NULL;
	struct cvm_httpd *h = NULL;
	struct vd_ctx ctx;
	char err[512], k[CVM_KV_MAX];
	int rc = 1;

	memset(&ctx, 0, sizeof(ctx));
	/* a worker never outlives its supervisor */
	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (vd_ctx_open(&ctx, cfg, metrics, err, sizeof(err)) != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "worker_failed", "error=%s", cvm_kv(err, k));
		goto out;
	}
	base = worker_base();
	if (base == NULL || cvm_daemon_signals_new(base, &sigs) != CVM_OK)
		goto out;
	if (cvm_httpd_new(base, &cfg->http, vd_handle, &ctx, &h) != CVM_OK)
		goto out;
	/* all workers accept on the same sockets: share the connections */
	if (cfg->workers > 1 && cvm_httpd_set_accept_gate(h, share_gate, &gate) != CVM_OK)
		goto out;
	for (size_t i = 0; i < nfds; i++) {
		int fd = dup(fds[i]);

		if (fd < 0 || cvm_httpd_listen_fd(h, fd) != CVM_OK) {
			cvm_daemon_log(CVM_LOG_ERROR, "worker_failed",
			               "error=\"cannot accept on a listener\"");
			goto out;
		}
	}
	cvm_daemon_log(CVM_LOG_INFO, "worker_start", "pid=%ld", (long)getpid());
	if (event_base_dispatch(base) < 0)
		goto out;
	rc = 0;
out:
	cvm_httpd_free(h);
	cvm_daemon_signals_free(sigs);
	if (base != NULL)
		event_base_free(base);
	vd_ctx_close(&ctx);
	return rc;
}

/* refresher_main keeps the cache's items current until SIGTERM: a pass at
 * start, then one every refresh_check seconds. The workers' handles then
 * never wait on an upstream for an item they may still use; an item whose
 * refresh fails keeps serving (stale, with the reason) until it expires. */
static int refresher_main(const struct vd_config *cfg, struct vd_metrics *metrics)
{
	struct vd_config mine = *cfg;
	struct vd_ctx ctx;
	struct timespec every = {(time_t)cfg->refresh_check_s, 0};
	sigset_t set;
	siginfo_t si;
	char err[512], k[CVM_KV_MAX];
	int sig;

	(void)prctl(PR_SET_PDEATHSIG, SIGTERM);
	(void)sigemptyset(&set);
	(void)sigaddset(&set, SIGTERM);
	(void)sigaddset(&set, SIGINT);
	(void)sigprocmask(SIG_BLOCK, &set, NULL);
	mine.refresher = true;
	err[0] = '\0';
	if (vd_ctx_open(&ctx, &mine, metrics, err, sizeof(err)) != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "refresher_failed", "error=%s", cvm_kv(err, k));
		return 1;
	}
	cvm_daemon_log(CVM_LOG_INFO, "refresher_start", "pid=%ld every_s=%u", (long)getpid(),
	               cfg->refresh_check_s);
	for (;;) {
		struct cvm_cache_refresh st;
		int64_t t0 = vd_now_us();
		int r;

		err[0] = '\0';
		r = cvm_cache_refresh_due(ctx.cache, vd_now(&ctx), &st, err, sizeof(err));
		vd_metrics_refresh(metrics, &st, (int64_t)time(NULL));
		if (r != CVM_OK || st.failed > 0)
			cvm_daemon_log(
			    CVM_LOG_WARN, "refresh",
			    "items=%zu due=%zu refreshed=%zu failed=%zu skipped=%zu ms=%lld error=%s",
			    st.items, st.due, st.refreshed, st.failed, st.skipped,
			    (long long)((vd_now_us() - t0) / 1000), cvm_kv(err, k));
		else if (st.due > 0)
			cvm_daemon_log(CVM_LOG_INFO, "refresh",
			               "items=%zu due=%zu refreshed=%zu failed=0 skipped=%zu ms=%lld",
			               st.items, st.due, st.refreshed, st.skipped,
			               (long long)((vd_now_us() - t0) / 1000));
		sig = sigtimedwait(&set, &si, &every);
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	vd_ctx_close(&ctx);
	return 0;
}

struct worker {
	pid_t pid;
	time_t started;
};

/* spawn starts worker `index`, or the refresher when index is
 * cfg->workers. */
static pid_t spawn(const struct vd_config *cfg, struct vd_metrics *m, const int *fds, size_t nfds,
                   const sigset_t *old, unsigned index)
{
	pid_t pid;

	if (index < cfg->workers)
		vd_metrics_worker_gone(m, index); /* a new worker has no connections */
	pid = fork();
	if (pid != 0)
		return pid;
	(void)sigprocmask(SIG_SETMASK, old, NULL);
	if (index == cfg->workers) {
		for (size_t i = 0; i < nfds; i++)
			(void)close(fds[i]); /* it serves nothing */
		_exit(refresher_main(cfg, m));
	}
	_exit(worker_main(cfg, m, fds, nfds, index));
}

/* supervise runs the workers until SIGTERM or SIGINT. */
static int supervise(const struct vd_config *cfg, struct vd_metrics *m, const int *fds, size_t nfds)
{
	struct worker w[WORKERS_MAX + 1]; /* the workers, then the refresher */
	sigset_t set, old;
	siginfo_t si;
	struct timespec tick = {1, 0};
	unsigned n = cfg->workers + (vd_has_refresher(cfg) ? 1 : 0), alive = 0;
	bool stopping = false;
	time_t stop_at = 0;
	int sig, rc = 0;

	memset(w, 0, sizeof(w));
	(void)sigemptyset(&set);
	(void)sigaddset(&set, SIGCHLD);
	(void)sigaddset(&set, SIGTERM);
	(void)sigaddset(&set, SIGINT);
	(void)sigaddset(&set, SIGHUP);
	(void)sigprocmask(SIG_BLOCK, &set, &old);
	for (unsigned i = 0; i < n; i++) {
		w[i].pid = spawn(cfg, m, fds, nfds, &old, i);
		w[i].started = time(NULL);
		if (w[i].pid < 0) {
			cvm_daemon_log(CVM_LOG_ERROR, "fork_failed", "errno=%d", errno);
			stopping = true;
			rc = 1;
			break;
		}
		alive++;
	}
	cvm_daemon_log(CVM_LOG_INFO, "start", "version=%s workers=%u refresher=%s", CVM_VERSION_STRING,
	               cfg->workers, n > cfg->workers ? "yes" : "no");
	while (alive > 0) {
		if (stopping && stop_at == 0) {
			for (unsigned i = 0; i < n; i++)
				if (w[i].pid > 0)
					(void)kill(w[i].pid, SIGTERM);
			stop_at = time(NULL) + STOP_GRACE_S;
		}
		if (stopping && time(NULL) > stop_at) {
			for (unsigned i = 0; i < n; i++)
				if (w[i].pid > 0)
					(void)kill(w[i].pid, SIGKILL);
		}
		sig = sigtimedwait(&set, &si, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			cvm_daemon_log(CVM_LOG_INFO, "signal", "signal=%s action=stop",
			               sig == SIGTERM ? "TERM" : "INT");
			stopping = true;
			continue;
		}
		/* SIGCHLD, SIGHUP (nothing to reload yet) or the tick: reap */
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);

			if (pid <= 0)
				break;
			for (unsigned i = 0; i < n; i++) {
				if (w[i].pid != pid)
					continue;
				alive--;
				w[i].pid = 0;
				if (stopping)
					break;
				cvm_daemon_log(CVM_LOG_WARN,
				               i < cfg->workers ? "worker_died" : "refresher_died",
				               "pid=%ld %s=%d action=restart", (long)pid,
				               WIFSIGNALED(status) ? "signal" : "exit",
				               WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
				/* a worker that cannot even start would spin: pace restarts */
				if (time(NULL) - w[i].started < 1)
					(void)nanosleep(&(struct timespec){0, 500000000}, NULL);
				w[i].pid = spawn(cfg, m, fds, nfds, &old, i);
				w[i].started = time(NULL);
				if (w[i].pid > 0) {
					alive++;
					vd_metrics_worker_restart(m);
				}
				break;
			}
		}
	}
	cvm_daemon_log(CVM_LOG_INFO, "stop", "%s", "");
	(void)sigprocmask(SIG_SETMASK, &old, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	static struct settings s;
	struct vd_config cfg;
	struct vd_metrics *metrics = NULL;
	struct cvm_addr addrs[CVM_HTTPD_LISTENERS_MAX];
	int fds[CVM_HTTPD_LISTENERS_MAX];
	size_t nfds = 0;
	enum cvm_log_level level;
	uint16_t port = 0;
	bool port_known = false;
	char err[512], k[CVM_KV_MAX];
	long cpus;
	int r, rc = 1;

	memset(&s, 0, sizeof(s));
	s.mode = 0660;
	s.refresh_check = 300;
	r = parse_args(argc, argv, &s, true);
	if (r != 0)
		return r;
	if (s.config_file[0] == '\0' && access(DEFAULT_CONFIG, F_OK) == 0)
		(void)snprintf(s.config_file, sizeof(s.config_file), "%s", DEFAULT_CONFIG);
	if (s.config_file[0] != '\0') {
		r = load_config(&s, err, sizeof(err));
		if (r != CVM_OK) {
			(void)fprintf(stderr, PROG ": %s: %s\n", s.config_file, err);
			return 1;
		}
	}
	r = parse_args(argc, argv, &s, false);
	if (r != 0) {
		usage(stderr);
		return r;
	}
	if (s.listen[0] == '\0')
		(void)snprintf(s.listen, sizeof(s.listen), "%s", DEFAULT_LISTEN);
	if (s.cache_dir[0] == '\0')
		(void)snprintf(s.cache_dir, sizeof(s.cache_dir), "%s", DEFAULT_CACHE);
	if (s.log_level[0] == '\0')
		(void)snprintf(s.log_level, sizeof(s.log_level), "info");
	if (s.workers == 0) {
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		s.workers = cpus > 0 ? (uint64_t)cpus : 1;
		if (s.workers > WORKERS_MAX)
			s.workers = WORKERS_MAX;
	}
	if (!config_fill(&s, &cfg))
		return 2;
	if (cvm_httpd_opts_check(&cfg.http, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s\n", err);
		return 1;
	}
	if (cvm_daemon_log_level_parse(s.log_level, &level) != CVM_OK) {
		(void)fprintf(stderr, PROG ": log level '%s': use error, warn, info or debug\n", s.log_level);
		return 2;
	}
	cvm_daemon_log_init(PROG, level);
	if (cfg.at != 0)
		cvm_daemon_log(
		    CVM_LOG_WARN, "fixed_time",
		    "at=%lld note=\"every verdict uses this fixed time, not the clock: for replaying old "
		    "evidence only\"",
		    (long long)cfg.at);
	if (s.verify_file[0] != '\0' && s.import_path[0] != '\0') {
		(void)fprintf(stderr, PROG ": --verify and --import do not go together\n");
		return 2;
	}
	if (s.import_path[0] != '\0' || s.verify_file[0] != '\0')
		cfg.refresh_check_s = 0; /* one-shot modes fetch inline */
	if (s.import_path[0] != '\0')
		return run_import(&cfg, s.import_path);
	if (s.verify_file[0] != '\0')
		return run_verify(&cfg, s.verify_file);

	/* A worker's state must be makeable: check it once here. */
	{
		struct vd_ctx probe;

		err[0] = '\0';
		if (vd_ctx_open(&probe, &cfg, NULL, err, sizeof(err)) != CVM_OK) {
			cvm_daemon_log(CVM_LOG_ERROR, "start_failed", "error=%s", cvm_kv(err, k));
			(void)fprintf(stderr, PROG ": %s\n", err);
			return 1;
		}
		vd_ctx_close(&probe);
	}
	metrics = vd_metrics_new();
	if (metrics == NULL) {
		(void)fprintf(stderr, PROG ": cannot map the shared counters: %s\n", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < cfg.listen_count; i++) {
		uint16_t p = 0;

		if (cvm_addr_parse(cfg.listen[i], &addrs[i]) != CVM_OK) {
			(void)fprintf(stderr, PROG ": listen: '%s' is not HOST:PORT or unix:/path\n",
			              cfg.listen[i]);
			goto out;
		}
		r = cvm_httpd_socket_open(&addrs[i], s.mode, &p);
		if (r < 0) {
			(void)fprintf(stderr, PROG ": cannot listen on %s: %s\n", cfg.listen[i],
			              r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
			goto out;
		}
		fds[nfds++] = r;
		if (addrs[i].kind == CVM_ADDR_TCP && !port_known) {
			port = p;
			port_known = true;
		}
		cvm_daemon_log(CVM_LOG_INFO, "listen", "addr=%s port=%u", cvm_kv(cfg.listen[i], k), p);
	}
	if (s.port_file[0] != '\0') {
		char text[16];
		int n = snprintf(text, sizeof(text), "%u\n", port);

		if (cvm_file_write(s.port_file, text, (size_t)n, 0644) != CVM_OK) {
			(void)fprintf(stderr, PROG ": cannot write %s: %s\n", s.port_file, strerror(errno));
			goto out;
		}
	}
	r = cvm_daemon_drop_privileges(cfg.user);
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot switch to user '%s': %s\n", cfg.user,
		              r == CVM_E_SYSTEM ? strerror(errno) : "no such user");
		goto out;
	}
	(void)signal(SIGPIPE, SIG_IGN);
	rc = supervise(&cfg, metrics, fds, nfds);
out:
	for (size_t i = 0; i < nfds; i++) {
		(void)close(fds[i]);
		if (addrs[i].kind == CVM_ADDR_UNIX)
			(void)unlink(addrs[i].path);
	}
	vd_metrics_free(metrics);
	return rc;
}

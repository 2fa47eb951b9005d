#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "daemon.h"

static const char *log_daemon = "cvmkit";
static enum cvm_log_level log_max = CVM_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void lib_log(enum cvm_log_level level, const char *func, const char *msg, void *ctx)
{
	char f[CVM_KV_MAX], m[CVM_KV_MAX];

	(void)ctx;
	cvm_daemon_log(level, "lib", "func=%s msg=%s", cvm_kv(func, f), cvm_kv(msg, m));
}

void cvm_daemon_log_init(const char *daemon, enum cvm_log_level max_level)
{
	log_daemon = daemon;
	log_max = max_level;
	cvm_log_set_handler(lib_log, max_level, NULL);
}

int cvm_daemon_log_level_parse(const char *s, enum cvm_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum cvm_log_level)i;
			return CVM_OK;
		}
	}
	return CVM_E_INVAL;
}

bool cvm_daemon_log_enabled(enum cvm_log_level level)
{
	return level <= log_max;
}

static void log_line(enum cvm_log_level level, const char *event, const char *fmt, va_list ap)
{
	char line[4096];
	struct timespec ts;
	struct tm tm;
	int n, m;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	(void)gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
	             "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ daemon=%s level=%s event=%s", tm.tm_year + 1900,
	             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
	             log_daemon, (unsigned)level < 4 ? level_names[level] : "log", event);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	if (fmt != NULL && fmt[0] != '\0') {
		line[n++] = ' ';
		m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
		if (m < 0)
			return;
	}
	/* One write per line, so lines from concurrent writers do not interleave. */
	(void)fprintf(stderr, "%s\n", line);
}

void cvm_daemon_log(enum cvm_log_level level, const char *event, const char *fmt, ...)
{
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	log_line(level, event, fmt, ap);
	va_end(ap);
}

/* Token bucket for lines that clients can provoke. */
#define LIMIT_BURST 50.0
#define LIMIT_RATE 20.0

/* The bucket is shared by threads (cvm-gatewayd's workers log through it). */
static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static double limit_tokens = LIMIT_BURST;
static struct timespec limit_last;
static unsigned long limit_dropped;

void cvm_daemon_log_limited(enum cvm_log_level level, const char *event, const char *fmt, ...)
{
	struct timespec now;
	unsigned long dropped;
	double dt;
	va_list ap;

	if (level > log_max)
		return;
	(void)pthread_mutex_lock(&limit_lock);
	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	if (limit_last.tv_sec != 0 || limit_last.tv_nsec != 0) {
		dt = (double)(now.tv_sec - limit_last.tv_sec) +
		     (double)(now.tv_nsec - limit_last.tv_nsec) / 1e9;
		limit_tokens += dt * LIMIT_RATE;
		if (limit_tokens > LIMIT_BURST)
			limit_tokens = LIMIT_BURST;
	}
	limit_last = now;
	if (limit_tokens < 1.0) {
		limit_dropped++;
		(void)pthread_mutex_unlock(&limit_lock);
		return;
	}
	limit_tokens -= 1.0;
	dropped = limit_dropped;
	limit_dropped = 0;
	(void)pthread_mutex_unlock(&limit_lock);
	if (dropped != 0)
		cvm_daemon_log(CVM_LOG_WARN, "log_suppressed", "count=%lu", dropped);
	va_start(ap, fmt);
	log_line(level, event, fmt, ap);
	va_end(ap);
}

static bool kv_bare(unsigned char c)
{
	return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
}

const char *cvm_kvn(const void *s, size_t len, char buf[CVM_KV_MAX])
{
	const unsigned char *p = s;
	static const char hex[] = "0123456789abcdef";
	size_t n = len > 200 ? 200 : len, j = 0;
	bool bare = n != 0;

	if (s == NULL) {
		buf[0] = '-';
		buf[1] = '\0';
		return buf;
	}
	for (size_t i = 0; i < n; i++)
		bare = bare && kv_bare(p[i]);
	if (bare && n == len) {
		memcpy(buf, p, n);
		buf[n] = '\0';
		return buf;
	}
	buf[j++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];

		if (c == '"' || c == '\\') {
			buf[j++] = '\\';
			buf[j++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			buf[j++] = '\\';
			buf[j++] = 'x';
			buf[j++] = hex[c >> 4];
			buf[j++] = hex[c & 0xf];
		} else {
			buf[j++] = (char)c;
		}
	}
	if (n < len) {
		memcpy(buf + j, "...", 3);
		j += 3;
	}
	buf[j++] = '"';
	buf[j] = '\0';
	return buf;
}

const char *cvm_kv(const char *s, char buf[CVM_KV_MAX])
{
	return cvm_kvn(s, s == NULL ? 0 : strnlen(s, 201), buf);
}

int cvm_daemon_harden(void)
{
	struct rlimit rl = {0, 0};

	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return CVM_E_SYSTEM;
	if (setrlimit(RLIMIT_CORE, &rl) != 0)
		return CVM_E_SYSTEM;
	return CVM_OK;
}

int cvm_daemon_drop_privileges(const char *user)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int e;

	if (user == NULL || user[0] == '\0')
		return CVM_OK;
	e = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (e != 0 || res == NULL)
		return CVM_E_INVAL;
	if (setgroups(1, &pw.pw_gid) != 0)
		return CVM_E_SYSTEM;
	if (setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) != 0)
		return CVM_E_SYSTEM;
	if (setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) != 0)
		return CVM_E_SYSTEM;
	/* Paranoia (OpenSSH permanently_set_uid): root must be gone for good. */
	if (pw.pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		errno = EPERM;
		return CVM_E_SYSTEM;
	}
	/* A uid change resets the dumpable flag to fs.suid_dumpable. */
	return cvm_daemon_harden();
}

int cvm_addr_parse(const char *s, struct cvm_addr *out)
{
	const char *host, *port, *colon;
	size_t host_len, len;
	uint64_t p;
	int r;

	memset(out, 0, sizeof(*out));
	if (s == NULL)
		return CVM_E_FORMAT;
	len = strlen(s);
	if (strncmp(s, "unix:", 5) == 0) {
		if (len - 5 == 0 || s[5] != '/')
			return CVM_E_FORMAT;
		if (len - 5 >= sizeof(out->path))
			return CVM_E_TOO_LARGE;
		out->kind = CVM_ADDR_UNIX;
		memcpy(out->path, s + 5, len - 5 + 1);
		return CVM_OK;
	}
	host = strncmp(s, "tcp:", 4) == 0 ? s + 4 : s;
	if (host[0] == '[') {
		const char *end = strchr(host, ']');

		if (end == NULL || end[1] != ':')
			return CVM_E_FORMAT;
		host_len = (size_t)(end - host - 1);
		port = end + 2;
		host++;
	} else {
		colon = strrchr(host, ':');
		if (colon == NULL)
			return CVM_E_FORMAT;
		host_len = (size_t)(colon - host);
		port = colon + 1;
		if (memchr(host, ':', host_len) != NULL)
			return CVM_E_FORMAT; /* a bare IPv6 address needs brackets */
	}
	if (host_len == 0)
		return CVM_E_FORMAT;
	if (host_len >= sizeof(out->host))
		return CVM_E_TOO_LARGE;
	r = cvm_parse_u64(port, 0, 65535, &p);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < host_len; i++) {
		char c = host[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '.' || c == ':' || c == '-'))
			return CVM_E_FORMAT;
	}
	out->kind = CVM_ADDR_TCP;
	memcpy(out->host, host, host_len);
	out->host[host_len] = '\0';
	out->port = (uint16_t)p;
	return CVM_OK;
}

bool cvm_addr_is_loopback(const struct cvm_addr *a)
{
	if (a->kind == CVM_ADDR_UNIX)
		return true;
	return strncmp(a->host, "127.", 4) == 0 || strcmp(a->host, "::1") == 0 ||
	       strcmp(a->host, "localhost") == 0;
}

int cvm_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	*out = 0;
	if (s == NULL || s[0] == '\0' || strlen(s) > 20)
		return CVM_E_FORMAT;
	for (const char *p = s; *p != '\0'; p++) {
		unsigned d;

		if (*p < '0' || *p > '9')
			return CVM_E_FORMAT;
		d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return CVM_E_FORMAT;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return CVM_E_FORMAT;
	*out = v;
	return CVM_OK;
}

int cvm_parse_mode(const char *s, unsigned *out)
{
	unsigned v = 0;

	*out = 0;
	if (s == NULL || s[0] == '\0' || strlen(s) > 4)
		return CVM_E_FORMAT;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '7')
			return CVM_E_FORMAT;
		v = v * 8 + (unsigned)(*p - '0');
	}
	if (v > 0777)
		return CVM_E_FORMAT;
	*out = v;
	return CVM_OK;
}

int cvm_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	*out = false;
	for (size_t i = 0; i < 4; i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return CVM_OK;
		}
		if (strcmp(s, no[i]) == 0)
			return CVM_OK;
	}
	return CVM_E_FORMAT;
}

struct cvm_daemon_signals {
	struct event_base *base;
	struct event *ev[2];
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct cvm_daemon_signals *s = arg;

	(void)what;
	cvm_daemon_log(CVM_LOG_INFO, "signal", "signal=%s action=stop", sig == SIGTERM ? "TERM" : "INT");
	(void)event_base_loopexit(s->base, NULL);
}

int cvm_daemon_signals_new(struct event_base *base, struct cvm_daemon_signals **out)
{
	static const int sigs[2] = {SIGINT, SIGTERM};
	struct cvm_daemon_signals *s;
	struct sigaction sa;

	*out = NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) != 0)
		return CVM_E_SYSTEM;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CVM_E_NOMEM;
	s->base = base;
	for (size_t i = 0; i < 2; i++) {
		s->ev[i] = evsignal_new(base, sigs[i], on_signal, s);
		if (s->ev[i] == NULL || evsignal_add(s->ev[i], NULL) != 0) {
			cvm_daemon_signals_free(s);
			return CVM_E_NOMEM;
		}
	}
	*out = s;
	return CVM_OK;
}

void cvm_daemon_signals_free(struct cvm_daemon_signals *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < 2; i++) {
		if (s->ev[i] != NULL)
			event_free(s->ev[i]);
	}
	free(s);
}

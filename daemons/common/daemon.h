/* Daemon lifecycle shared by every cvmkit daemon: key=value logging to
 * stderr, hardening, privilege dropping and listen-address parsing.
 *
 * A daemon's main() runs the same sequence every time (STYLE.md, "Daemon
 * structure"): parse arguments and config; cvm_daemon_log_init; open
 * listeners; cvm_daemon_drop_privileges; run the event loop. Daemons that
 * hold keys call cvm_daemon_harden first. */
#ifndef CVM_DAEMON_H
#define CVM_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/err.h>
#include <cvmkit/log.h>

/* cvm_daemon_log_init names the daemon in log lines (`daemon` must outlive
 * the process), sets the level below which lines are dropped, and routes the
 * library's own messages into the same stream as `event=lib` lines. */
void cvm_daemon_log_init(const char *daemon, enum cvm_log_level max_level);
/* cvm_daemon_log_level_parse reads "error", "warn", "info" or "debug".
 * Returns 0 or CVM_E_INVAL. */
CVM_MUST_CHECK int cvm_daemon_log_level_parse(const char *s, enum cvm_log_level *out);
/* cvm_daemon_log_enabled is true when a line at `level` would be written. */
bool cvm_daemon_log_enabled(enum cvm_log_level level);

/* cvm_daemon_log writes one line to stderr:
 *   ts=<UTC RFC 3339> level=<level> event=<event> <fields>
 * `fmt` formats the remaining key=value fields; it must quote any value
 * that is not from the daemon itself with cvm_kv (below). */
void cvm_daemon_log(enum cvm_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* cvm_daemon_log_limited is cvm_daemon_log under a rate limit shared by all
 * callers (for lines a client can provoke, such as rejected requests): at
 * most a burst of 50 lines, refilled at 20 lines per second. Dropped lines
 * are counted and reported by the next line that passes as
 * `event=log_suppressed count=N`. */
void cvm_daemon_log_limited(enum cvm_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* CVM_KV_MAX is the room cvm_kv needs: a value is cut to 200 input bytes,
 * each of which may become a 4-byte escape, plus quotes and NUL. */
#define CVM_KV_MAX 808

/* cvm_kv writes `s` (NULL: "-") into `buf` as a log value: bare when it is
 * made only of printable ASCII without spaces, quotes, backslashes or '=';
 * otherwise in double quotes with \" \\ and \xHH escapes. Values longer than
 * 200 bytes are cut and end in "...". Returns `buf`. */
const char *cvm_kv(const char *s, char buf[CVM_KV_MAX]);
/* cvm_kvn is cvm_kv over `len` bytes that need not be NUL-terminated. */
const char *cvm_kvn(const void *s, size_t len, char buf[CVM_KV_MAX]);

/* cvm_daemon_harden makes the process non-dumpable (no core files, no
 * ptrace by other users) and sets RLIMIT_CORE to 0. Daemons holding keys
 * call it first thing, and cvm_daemon_drop_privileges calls it again (a uid
 * change resets the dumpable flag). Returns 0 or CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_daemon_harden(void);

/* cvm_daemon_drop_privileges switches to `user` (its uid, primary gid and
 * no supplementary groups) and checks that root cannot be regained. NULL or
 * "" keeps the current identity. Returns 0, CVM_E_INVAL (unknown user) or
 * CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_daemon_drop_privileges(const char *user);

struct event_base;
struct cvm_daemon_signals;

/* cvm_daemon_signals_new ignores SIGPIPE (a client that goes away must not
 * kill the daemon) and makes SIGINT and SIGTERM end `base`'s loop after the
 * current callback, with an event=signal log line. Free with
 * cvm_daemon_signals_free after the loop. Returns 0 or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_daemon_signals_new(struct event_base *base, struct cvm_daemon_signals **out);
void cvm_daemon_signals_free(struct cvm_daemon_signals *s);

/* A listen address: "unix:/path" (a unix stream socket) or "tcp:HOST:PORT",
 * "HOST:PORT", "[V6]:PORT" (TCP; port 0 picks a free port). */
enum cvm_addr_kind { CVM_ADDR_UNIX = 1, CVM_ADDR_TCP = 2 };

#define CVM_ADDR_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */
#define CVM_ADDR_HOST_MAX 64

struct cvm_addr {
	enum cvm_addr_kind kind;
	char path[CVM_ADDR_PATH_MAX]; /* unix: NUL-terminated */
	char host[CVM_ADDR_HOST_MAX]; /* tcp: numeric or "localhost" */
	uint16_t port;
};

/* cvm_addr_parse reads `s` into `out`. Returns 0, CVM_E_FORMAT or
 * CVM_E_TOO_LARGE (a path or host that does not fit). It resolves nothing. */
CVM_MUST_CHECK int cvm_addr_parse(const char *s, struct cvm_addr *out);
/* cvm_addr_is_loopback is true for unix sockets and for TCP addresses in
 * 127.0.0.0/8, ::1 or "localhost". */
bool cvm_addr_is_loopback(const struct cvm_addr *a);

/* cvm_parse_u64 reads a decimal number in [min, max] (no sign, no spaces).
 * cvm_parse_mode reads an octal file mode of at most 0777. Both return 0 or
 * CVM_E_FORMAT. */
CVM_MUST_CHECK int cvm_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
CVM_MUST_CHECK int cvm_parse_mode(const char *s, unsigned *out);
/* cvm_parse_bool reads true/false, yes/no, on/off, 1/0. */
CVM_MUST_CHECK int cvm_parse_bool(const char *s, bool *out);

#endif

/* The guest's boot hooks ([boot] in the agent's config; docs/vm.md): the
 * agent, once it has the app's keys and recorded the key provider, runs the
 * storage hook (which opens or makes the encrypted data disk with the disk
 * key and prints its file system's name), records storage-fs with that
 * name and then system-ready, as dstack's boot does (spec §5.2). Once the
 * agent serves, it starts the app hook (which starts the app) and leaves
 * it running. A hook that fails or outlives [boot] hook_timeout is a
 * boot-error: its stderr's tail goes to the log and to the host channel
 * ([boot] channel), and no system-ready is recorded.
 *
 * A hook runs as its own process group with stdin /dev/null, its argument
 * the disk key file, and the environment CVM_DISK_KEY_FILE, CVM_ENV_FILE
 * and CVM_BOOT_CHANNEL. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <cvmkit/encoding.h>

#include "agent.h"

#define BOOT_FS_NAME_MAX 32
#define BOOT_TAIL_MAX 512

struct hook_result {
	char out[BOOT_FS_NAME_MAX + 2]; /* stdout's first bytes */
	size_t out_len;
	char tail[BOOT_TAIL_MAX + 1]; /* stderr's last bytes, NUL-terminated */
	size_t tail_len;
	bool timed_out;
	int status; /* waitpid's */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* tail_add keeps the last BOOT_TAIL_MAX bytes of what the hook wrote. */
static void tail_add(struct hook_result *h, const char *buf, size_t n)
{
	if (n >= BOOT_TAIL_MAX) {
		memcpy(h->tail, buf + n - BOOT_TAIL_MAX, BOOT_TAIL_MAX);
		h->tail_len = BOOT_TAIL_MAX;
	} else {
		size_t keep = h->tail_len + n > BOOT_TAIL_MAX ? BOOT_TAIL_MAX - n : h->tail_len;

		memmove(h->tail, h->tail + h->tail_len - keep, keep);
		memcpy(h->tail + keep, buf, n);
		h->tail_len = keep + n;
	}
	h->tail[h->tail_len] = '\0';
}

__attribute__((noreturn)) static void hook_child(const struct agent *a, const char *hook, int out_w,
                                                 int err_w)
{
	char *argv[3];
	int fd;

	(void)setpgid(0, 0);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0 || dup2(out_w, STDOUT_FILENO) < 0 ||
	    dup2(err_w, STDERR_FILENO) < 0)
		_exit(126);
	/* nothing of the agent's (sockets, the TEE, the log's lock) for the hook */
	(void)close_range(3, ~0U, 0);
	if (setenv("CVM_DISK_KEY_FILE", a->cfg.kms_disk_key_file, 1) != 0 ||
	    setenv("CVM_ENV_FILE", a->cfg.kms_env_file, 1) != 0 ||
	    setenv("CVM_BOOT_CHANNEL", a->cfg.boot_channel, 1) != 0)
		_exit(126);
	argv[0] = strdup(hook);
	argv[1] = strdup(a->cfg.kms_disk_key_file);
	argv[2] = NULL;
	if (argv[0] == NULL || argv[1] == NULL)
		_exit(126);
	execv(argv[0], argv);
	(void)fprintf(stderr, "cannot run %s: %s\n", hook, strerror(errno));
	_exit(127);
}

/* run_hook runs `hook` to its end or for at most the timeout (then kills
 * its process group) and fills h. Returns 0 when it could be run. */
static int run_hook(const struct agent *a, const char *hook, struct hook_result *h)
{
	int out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
	int64_t deadline = now_ms() + (int64_t)a->cfg.boot_hook_timeout * 1000;
	bool out_open = true, err_open = true;
	pid_t pid;
	int r = CVM_E_SYSTEM;

	memset(h, 0, sizeof(*h));
	if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0)
		goto out;
	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0)
		hook_child(a, hook, out_p[1], err_p[1]);
	(void)setpgid(pid, pid); /* also here: no race with the kill below */
	(void)close(out_p[1]);
	(void)close(err_p[1]);
	out_p[1] = err_p[1] = -1;
	while (out_open || err_open) {
		struct pollfd pf[2] = {{out_open ? out_p[0] : -1, POLLIN, 0},
		                       {err_open ? err_p[0] : -1, POLLIN, 0}};
		int64_t left = deadline - now_ms();
		char buf[1024];
		ssize_t n;

		if (left <= 0) {
			h->timed_out = true;
			break;
		}
		if (poll(pf, 2, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
			break;
		if (out_open && (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			n = read(out_p[0], buf, sizeof(buf));
			if (n <= 0 && !(n < 0 && errno == EINTR)) {
				out_open = false;
			} else if (n > 0) {
				size_t room = sizeof(h->out) - 1 - h->out_len;
				size_t take = (size_t)n < room ? (size_t)n : room;

				memcpy(h->out + h->out_len, buf, take);
				h->out_len += take;
			}
		}
		if (err_open && (pf[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
			n = read(err_p[0], buf, sizeof(buf));
			if (n <= 0 && !(n < 0 && errno == EINTR))
				err_open = false;
			else if (n > 0)
				tail_add(h, buf, (size_t)n);
		}
	}
	if (h->timed_out)
		(void)kill(-pid, SIGKILL);
	while (waitpid(pid, &h->status, 0) < 0) {
		if (errno != EINTR)
			goto out;
	}
	/* a timed-out hook's children may hold the pipes: they are killed too */
	if (h->timed_out)
		(void)kill(-pid, SIGKILL);
	r = CVM_OK;
out:
	for (int i = 0; i < 2; i++) {
		if (out_p[i] >= 0)
			(void)close(out_p[i]);
		if (err_p[i] >= 0)
			(void)close(err_p[i]);
	}
	return r;
}

/* printable replaces what is not printable ASCII (the hook's bytes are
 * untrusted text) with '?' and newlines with "; ". */
static void printable(const char *in, char *out, size_t cap)
{
	size_t j = 0;

	for (size_t i = 0; in[i] != '\0' && j + 3 < cap; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '\n') {
			if (j > 0 && in[i + 1] != '\0') {
				out[j++] = ';';
				out[j++] = ' ';
			}
		} else {
			out[j++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
		}
	}
	out[j] = '\0';
}

/* channel_write appends the object {"event":event,"payload":payload} as
 * one line; it takes `payload`. */
static void channel_write(const struct agent *a, const char *event, json_t *payload)
{
	json_t *o;
	char *line;
	int fd;

	if (a->cfg.boot_channel[0] == '\0' || payload == NULL) {
		json_decref(payload);
		return;
	}
	o = json_pack("{s:s,s:o}", "event", event, "payload", payload);
	line = o == NULL ? NULL : json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line == NULL)
		return;
	/* non-blocking: a host that does not read the port must not stop the boot */
	fd = open(a->cfg.boot_channel, O_WRONLY | O_APPEND | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		size_t n = strlen(line);

		line[n] = '\n';
		if (write(fd, line, n + 1) != (ssize_t)(n + 1))
			cvm_daemon_log(CVM_LOG_WARN, "boot_channel", "path=%s error=%s", a->cfg.boot_channel,
			               strerror(errno));
		line[n] = '\0';
		(void)close(fd);
	} else {
		cvm_daemon_log(CVM_LOG_WARN, "boot_channel", "path=%s error=%s", a->cfg.boot_channel,
		               strerror(errno));
	}
	free(line);
}

void agent_boot_report(const struct agent *a, const char *event, const char *payload)
{
	channel_write(a, event, json_string(payload));
}

/* hex_of sets key in o to the hex of the payload of the runtime event
 * `name`, when there is one. */
static void hex_of(const struct agent *a, json_t *o, const char *key, const char *name)
{
	const struct agent_event *e = agent_find_event(a, name);
	char *hex;

	if (e == NULL || e->payload_len == 0)
		return;
	hex = cvm_hex_encode_new(e->payload, e->payload_len);
	if (hex != NULL)
		(void)json_object_set_new(o, key, json_string(hex));
	free(hex);
}

void agent_boot_instance_info(const struct agent *a)
{
	json_t *o;

	if (!a->boot_storage_done)
		return;
	o = json_object();
	if (o == NULL)
		return;
	hex_of(a, o, "app_id", "app-id");
	hex_of(a, o, "instance_id", "instance-id");
	hex_of(a, o, "compose_hash", "compose-hash");
	if (a->has_instance_seed && !a->no_instance_id) {
		char *seed = cvm_hex_encode_new(a->instance_seed, sizeof(a->instance_seed));

		if (seed != NULL)
			(void)json_object_set_new(o, "instance_id_seed", json_string(seed));
		free(seed);
	}
	(void)json_object_set_new(o, "app_name", json_string(a->app_name != NULL ? a->app_name : ""));
	channel_write(a, "instance-info", o);
}

/* hook_failed describes a failed run in err, logs it and reports it. */
static int hook_failed(const struct agent *a, const char *what, const char *hook, const struct hook_result *h,
                       char *err, size_t err_len)
{
	char tail[BOOT_TAIL_MAX * 2 + 4], k[CVM_KV_MAX];

	printable(h->tail, tail, sizeof(tail));
	if (h->timed_out)
		(void)snprintf(err, err_len,
		               "the %s hook %s did not end within %llu s ([boot] hook_timeout): %s", what,
		               hook, (unsigned long long)a->cfg.boot_hook_timeout, tail);
	else if (WIFSIGNALED(h->status))
		(void)snprintf(err, err_len, "the %s hook %s was killed by signal %d: %s", what, hook,
		               WTERMSIG(h->status), tail);
	else
		(void)snprintf(err, err_len, "the %s hook %s failed with exit status %d: %s", what, hook,
		               WEXITSTATUS(h->status), tail);
	cvm_daemon_log(CVM_LOG_ERROR, "boot_hook_failed", "hook=%s error=%s", what, cvm_kv(err, k));
	agent_boot_report(a, "boot-error", err);
	return CVM_E_POLICY;
}

int agent_boot_storage(struct agent *a, bool locked, char *err, size_t err_len)
{
	struct hook_result h;
	char fs[BOOT_FS_NAME_MAX + 1];
	size_t n = 0;
	int r;

	if (a->cfg.boot_storage_hook[0] == '\0')
		return CVM_OK;
	if (a->cfg.kms_disk_key_file[0] == '\0') {
		(void)snprintf(err, err_len,
		               "[boot] storage_hook needs the disk key: set [kms] disk_key_file (a file on a "
		               "tmpfs, e.g. /run/cvmkit/disk.key)");
		return CVM_E_INVAL;
	}
	agent_boot_report(a, "boot-progress", "storage: opening the data disk");
	r = run_hook(a, a->cfg.boot_storage_hook, &h);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot run the storage hook %s: %s", a->cfg.boot_storage_hook,
		               strerror(errno));
		agent_boot_report(a, "boot-error", err);
		return r;
	}
	if (h.timed_out || !WIFEXITED(h.status) || WEXITSTATUS(h.status) != 0)
		return hook_failed(a, "storage", a->cfg.boot_storage_hook, &h, err, err_len);
	/* its answer: one word, the file system's name ("ext4"), a newline */
	while (n < h.out_len && n < BOOT_FS_NAME_MAX &&
	       ((h.out[n] >= 'a' && h.out[n] <= 'z') || (h.out[n] >= '0' && h.out[n] <= '9')))
		n++;
	if (n == 0 || (n < h.out_len && !(h.out[n] == '\n' && n + 1 == h.out_len))) {
		(void)snprintf(err, err_len,
		               "the storage hook %s printed no file system name (one word of a-z, 0-9, at "
		               "most %d characters, then a newline)",
		               a->cfg.boot_storage_hook, BOOT_FS_NAME_MAX);
		agent_boot_report(a, "boot-error", err);
		return CVM_E_FORMAT;
	}
	memcpy(fs, h.out, n);
	fs[n] = '\0';
	if (locked)
		r = agent_emit_event_locked(a, "storage-fs", (const uint8_t *)fs, n, err, err_len);
	else
		r = agent_emit_event(a, "storage-fs", 10, (const uint8_t *)fs, n, NULL, err, err_len);
	if (r != CVM_OK)
		return r;
	cvm_daemon_log(CVM_LOG_INFO, "boot_storage", "fs=%s", fs);
	agent_boot_report(a, "boot-progress", "storage: ready");
	return CVM_OK;
}

int agent_boot_app(struct agent *a)
{
	pid_t pid;
	int status = 0;

	if (a->cfg.boot_app_hook[0] == '\0' || !a->boot_storage_done)
		return CVM_OK;
	/* A child that makes a watcher and ends: the watcher runs the hook
	 * (with the timeout: the hook starts the app and leaves its supervisor
	 * in the background), reports its failure, and is nobody's child to
	 * wait for. */
	pid = fork();
	if (pid < 0)
		return CVM_E_SYSTEM;
	if (pid == 0) {
		struct hook_result h;
		char err[1024];
		pid_t w;

		(void)setsid();
		/* the watcher may outlive the agent: it must not hold its listeners */
		(void)close_range(3, ~0U, 0);
		w = fork();
		if (w != 0)
			_exit(w < 0 ? 1 : 0);
		agent_boot_report(a, "boot-progress", "app: starting");
		if (run_hook(a, a->cfg.boot_app_hook, &h) != CVM_OK) {
			(void)snprintf(err, sizeof(err), "cannot run the app hook %s: %s",
			               a->cfg.boot_app_hook, strerror(errno));
			agent_boot_report(a, "boot-error", err);
			_exit(1);
		}
		if (h.timed_out || !WIFEXITED(h.status) || WEXITSTATUS(h.status) != 0) {
			(void)hook_failed(a, "app", a->cfg.boot_app_hook, &h, err, sizeof(err));
			_exit(1);
		}
		cvm_daemon_log(CVM_LOG_INFO, "boot_app", "hook=%s status=0", a->cfg.boot_app_hook);
		_exit(0);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return CVM_E_SYSTEM;
	}
	cvm_daemon_log(CVM_LOG_INFO, "boot_app", "hook=%s started=%s", a->cfg.boot_app_hook,
	               WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "yes" : "no");
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? CVM_OK : CVM_E_SYSTEM;
}

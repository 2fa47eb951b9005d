/* The runtime event log: dstack's JSON-lines file ({"event": name,
 * "payload": base64} per line, spec §5.3) and the events in memory.
 *
 * Every change happens under an exclusive flock(2) on "<log>.lock", held
 * across the append and the RTMR3 extension (agent.c), so the log and the
 * register never disagree for a reader that takes the shared lock: that is
 * the race dstack fixed in PR #706. The file is the truth; the memory copy
 * is reloaded whenever the file's identity or size changed since it was
 * read, so another process that writes the log under the same lock (a
 * future `cvm` command) is seen. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/file.h>

#include "agent.h"

static void events_free(struct agent_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ev[i].name);
		free(ev[i].payload);
	}
	free(ev);
}

static void rtlog_clear(struct agent_rtlog *l)
{
	events_free(l->ev, l->count);
	l->ev = NULL;
	l->count = l->cap = 0;
	l->payload_total = 0;
}

/* push copies one event into the list. */
static int push(struct agent_rtlog *l, const char *name, size_t name_len, const uint8_t *payload,
                size_t payload_len, const uint8_t digest[48])
{
	struct agent_event *e;

	if (l->count == AGENT_RUNTIME_EVENTS_MAX ||
	    payload_len > AGENT_RUNTIME_PAYLOAD_TOTAL - l->payload_total)
		return CVM_E_TOO_LARGE;
	if (l->count == l->cap) {
		size_t ncap = l->cap == 0 ? 16 : l->cap * 2;
		struct agent_event *n = calloc(ncap, sizeof(*n));

		if (n == NULL)
			return CVM_E_NOMEM;
		if (l->count != 0)
			memcpy(n, l->ev, l->count * sizeof(*n));
		free(l->ev);
		l->ev = n;
		l->cap = ncap;
	}
	e = &l->ev[l->count];
	memset(e, 0, sizeof(*e));
	e->imr = CVM_EVL_DSTACK_REG;
	e->type = CVM_EV_DSTACK_RUNTIME;
	memcpy(e->digest, digest, 48);
	e->name = strndup(name, name_len);
	e->payload = malloc(payload_len != 0 ? payload_len : 1);
	if (e->name == NULL || e->payload == NULL) {
		free(e->name);
		free(e->payload);
		return CVM_E_NOMEM;
	}
	if (payload_len != 0)
		memcpy(e->payload, payload, payload_len);
	e->payload_len = payload_len;
	l->payload_total += payload_len;
	l->count++;
	return CVM_OK;
}

/* reload reads the whole log again. */
static int reload(struct agent_rtlog *l, const struct stat *st)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	uint8_t *buf = NULL;
	size_t len = 0;
	bool has;
	int r;

	rtlog_clear(l);
	l->generation++;
	r = cvm_file_read(l->path, AGENT_RUNTIME_LOG_MAX, &buf, &len);
	if (r != CVM_OK)
		goto out;
	if (len == 0)
		goto done;
	r = cvm_evl_parser_new_mem(buf, len, CVM_EVL_DSTACK, &p);
	if (r != CVM_OK)
		goto out;
	for (;;) {
		uint8_t digest[48];

		r = cvm_evl_parser_next(p, &ev, &has);
		if (r != CVM_OK || !has)
			break;
		r = cvm_evl_dstack_digest(ev.name, ev.data.p, ev.data.len, ev.dstack_version, digest);
		if (r != CVM_OK)
			break;
		r = push(l, ev.name, strlen(ev.name), ev.data.p, ev.data.len, digest);
		if (r != CVM_OK)
			break;
	}
	if (r != CVM_OK)
		goto out;
done:
	l->dev = st->st_dev;
	l->ino = st->st_ino;
	l->size = st->st_size;
out:
	if (r != CVM_OK) {
		rtlog_clear(l);
		l->size = -1; /* read again next time */
	}
	cvm_evl_parser_free(p);
	free(buf);
	return r;
}

int agent_rtlog_lock(struct agent_rtlog *l, int how)
{
	struct stat st;
	int r;

	while (flock(l->lock_fd, how) != 0) {
		if (errno != EINTR)
			return CVM_E_SYSTEM;
	}
	if (stat(l->path, &st) != 0) {
		r = CVM_E_SYSTEM;
		goto fail;
	}
	if (st.st_dev == l->dev && st.st_ino == l->ino && st.st_size == l->size)
		return CVM_OK;
	r = reload(l, &st);
	if (r == CVM_OK)
		return CVM_OK;
fail:
	agent_rtlog_unlock(l);
	return r;
}

void agent_rtlog_unlock(struct agent_rtlog *l)
{
	int saved = errno;

	(void)flock(l->lock_fd, LOCK_UN);
	errno = saved;
}

int agent_rtlog_open(struct agent_rtlog *l, const char *path, char *err, size_t err_len)
{
	char dir[AGENT_PATH_MAX + 8], lock[AGENT_PATH_MAX + 8];
	char *slash;
	int fd, r;

	memset(l, 0, sizeof(*l));
	l->lock_fd = -1;
	l->size = -1;
	if (strlen(path) >= sizeof(l->path)) {
		(void)snprintf(err, err_len, "runtime log path too long");
		return CVM_E_TOO_LARGE;
	}
	memcpy(l->path, path, strlen(path) + 1);
	(void)snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			(void)snprintf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
			return CVM_E_SYSTEM;
		}
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		(void)snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
		return CVM_E_SYSTEM;
	}
	(void)close(fd);
	(void)snprintf(lock, sizeof(lock), "%s.lock", path);
	l->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (l->lock_fd < 0) {
		(void)snprintf(err, err_len, "cannot open %s: %s", lock, strerror(errno));
		return CVM_E_SYSTEM;
	}
	r = agent_rtlog_lock(l, LOCK_SH);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read the runtime event log %s: %s", path,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return r;
	}
	agent_rtlog_unlock(l);
	return CVM_OK;
}

void agent_rtlog_close(struct agent_rtlog *l)
{
	rtlog_clear(l);
	if (l->lock_fd >= 0)
		(void)close(l->lock_fd);
	l->lock_fd = -1;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return CVM_E_SYSTEM;
		}
		p += w;
		n -= (size_t)w;
	}
	return CVM_OK;
}

int agent_rtlog_append(struct agent_rtlog *l, const char *name, const uint8_t *payload, size_t payload_len,
                       const uint8_t digest[48], off_t *undo_size)
{
	json_t *o = NULL;
	char *b64 = NULL, *line = NULL;
	struct stat st;
	size_t n;
	int fd = -1, r;

	*undo_size = -1;
	r = push(l, name, strlen(name), payload, payload_len, digest);
	if (r != CVM_OK)
		return r;
	b64 = cvm_base64_encode_new(payload, payload_len);
	o = b64 == NULL ? NULL : json_pack("{s:s,s:s}", "event", name, "payload", b64);
	line = o == NULL ? NULL : json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	if (line == NULL) {
		r = CVM_E_NOMEM;
		goto fail;
	}
	n = strlen(line);
	line[n] = '\n'; /* replaces the NUL; write n + 1 bytes */
	fd = open(l->path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) != 0) {
		r = CVM_E_SYSTEM;
		goto fail;
	}
	if ((size_t)st.st_size + n + 1 > AGENT_RUNTIME_LOG_MAX) {
		r = CVM_E_TOO_LARGE;
		goto fail;
	}
	*undo_size = st.st_size;
	r = write_all(fd, line, n + 1);
	if (r == CVM_OK && fdatasync(fd) != 0)
		r = CVM_E_SYSTEM;
	if (r != CVM_OK) {
		int saved = errno;

		/* A line cut short by a failed write would break every later read. */
		if (ftruncate(fd, st.st_size) != 0)
			l->size = -1;
		errno = saved;
		*undo_size = -1;
		goto fail;
	}
	l->size = st.st_size + (off_t)n + 1;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->generation++;
	r = CVM_OK;
	goto out;
fail:
	l->count--;
	l->payload_total -= l->ev[l->count].payload_len;
	free(l->ev[l->count].name);
	free(l->ev[l->count].payload);
out:
	if (fd >= 0)
		(void)close(fd);
	free(line);
	free(b64);
	json_decref(o);
	return r;
}

void agent_rtlog_undo(struct agent_rtlog *l, off_t size)
{
	if (size >= 0 && truncate(l->path, size) == 0)
		l->size = size;
	else
		l->size = -1; /* unknown: reload on the next lock */
	if (l->count != 0) {
		l->count--;
		l->payload_total -= l->ev[l->count].payload_len;
		free(l->ev[l->count].name);
		free(l->ev[l->count].payload);
	}
	l->generation++;
}

void agent_rtlog_replay(const struct agent_rtlog *l, uint8_t out[48])
{
	uint8_t cat[96];

	memset(out, 0, 48);
	for (size_t i = 0; i < l->count; i++) {
		memcpy(cat, out, 48);
		memcpy(cat + 48, l->ev[i].digest, 48);
		cvm_sha384(cat, sizeof(cat), out);
	}
}

/* The host channel of every VM (vmm.h; the line format is docs/vm.md's "The
 * host channel"). QEMU is the socket's server (guest.sock, server=on,
 * wait=off); cvm-vmmd connects as its one client and reads what the guest
 * writes to /dev/virtio-ports/org.cvmkit.host.0. Everything on it comes from
 * the guest, which the host does not trust and which may be anything: lines
 * are capped (VMM_CHANNEL_LINE_MAX; a longer one closes the connection),
 * parsed by jansson, and only printable text of bounded length is stored.
 * Lines written while nobody is connected are lost (the guest writes
 * without blocking), so the daemon connects right after starting QEMU and
 * reconnects every VMM_CHANNEL_RETRY_S while the VM runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>

#include "daemon.h"
#include "vmm.h"

#define VMM_CHANNEL_RETRY_S 2
/* Each line the daemon handles is a database transaction: a guest may have
 * at most this many handled per second (more are dropped, and said so once
 * a second), so that it cannot keep the daemon writing. The guest image
 * writes a few lines a boot and a health line every 10 s. */
#define VMM_CHANNEL_LINES_PER_S 20

struct vmm_chan {
	struct vmm_chan *next;
	struct vmm *v;
	char id[VMM_ID_LEN + 1];
	struct bufferevent *bev;
	struct event *retry;
	unsigned lines;
	time_t window;           /* the second the count below is for */
	unsigned window_lines;   /* lines handled in it */
	unsigned window_dropped; /* lines dropped in it */
};

/* printable copies `len` bytes of `s` into `out` as printable ASCII
 * (anything else becomes '?'), cut to `out_len`. */
static void printable(const char *s, size_t len, char *out, size_t out_len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < out_len; i++) {
		unsigned char c = (unsigned char)s[i];

		out[n++] = (char)(c >= 0x20 && c < 0x7f ? c : '?');
	}
	out[n] = '\0';
}

/* hex40 is true for 40 lowercase or uppercase hex digits. */
static bool hex40(const char *s)
{
	uint8_t b[20];

	return s != NULL && strlen(s) == 40 && cvm_hex_decode_exact(s, 40, b, sizeof(b)) == CVM_OK;
}

/* keep_instance writes the instance id seed the guest reported into the
 * VM's shared/.instance_info (dstack keeps it there for the next boot: the
 * same seed gives the same instance id, hence, with a KMS, the same disk
 * key). The app id stays the one fixed at CreateVm; anything malformed is
 * dropped. */
static void keep_instance(struct vmm *v, const char *id, const char *seed, const char *instance_id)
{
	struct vmm_vm vm;
	char path[VMM_PATH_MAX + 48], text[256];
	int n;

	if (!hex40(seed) || !hex40(instance_id) || vmm_db_get(v->db, id, &vm) != CVM_OK || !hex40(vm.app_id))
		return;
	n = snprintf(text, sizeof(text),
	             "{\"app_id\":\"%s\",\"instance_id_seed\":\"%s\",\"instance_id\":\"%s\"}", vm.app_id,
	             seed, instance_id);
	vmm_work_path(v->conf, id, "shared/.instance_info", path, sizeof(path));
	if (n > 0 && (size_t)n < sizeof(text) && cvm_file_write(path, text, (size_t)n, 0644) == CVM_OK)
		cvm_daemon_log(CVM_LOG_INFO, "instance_info_kept", "id=%s", id);
	else
		cvm_daemon_log(CVM_LOG_WARN, "instance_info_kept", "id=%s msg=\"cannot write %s\"", id, path);
}

void vmm_channel_line(struct vmm *v, const char *id, const char *line, size_t len)
{
	json_error_t je;
	json_t *j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	const char *event = json_string_value(json_object_get(j, "event"));
	json_t *payload = json_object_get(j, "payload");
	char text[VMM_PROGRESS_MAX], err[256];

	if (event == NULL) {
		cvm_daemon_log(CVM_LOG_WARN, "guest_channel",
		               "id=%s msg=\"a line that is not an event: ignored\"", id);
		json_decref(j);
		return;
	}
	if (strcmp(event, "boot-progress") == 0 && json_is_string(payload)) {
		printable(json_string_value(payload), json_string_length(payload), text, sizeof(text));
		if (vmm_db_set_progress(v->db, id, text, NULL) != CVM_OK)
			cvm_daemon_log(CVM_LOG_WARN, "guest_channel",
			               "id=%s msg=\"cannot record the progress\"", id);
	} else if (strcmp(event, "boot-error") == 0 && json_is_string(payload)) {
		printable(json_string_value(payload), json_string_length(payload), err, sizeof(err));
		cvm_daemon_log(CVM_LOG_WARN, "guest_boot_error", "id=%s error=\"%s\"", id, err);
		if (vmm_db_set_progress(v->db, id, "boot failed", err) != CVM_OK)
			cvm_daemon_log(CVM_LOG_WARN, "guest_channel", "id=%s msg=\"cannot record the error\"",
			               id);
	} else if (strcmp(event, "instance-info") == 0 && json_is_object(payload)) {
		char app[48], inst[48];
		const char *a = json_string_value(json_object_get(payload, "app_id"));
		const char *i = json_string_value(json_object_get(payload, "instance_id"));

		printable(a != NULL ? a : "", a != NULL ? strlen(a) : 0, app, sizeof(app));
		printable(i != NULL ? i : "", i != NULL ? strlen(i) : 0, inst, sizeof(inst));
		cvm_daemon_log(CVM_LOG_INFO, "guest_instance_info", "id=%s app_id=%s instance_id=%s", id, app,
		               inst);
		keep_instance(v, id, json_string_value(json_object_get(payload, "instance_id_seed")), i);
	}
	/* other events: a newer guest's; ignored */
	json_decref(j);
}

static struct vmm_chan *find(struct vmm *v, const char *id)
{
	for (struct vmm_chan *c = v->chans; c != NULL; c = c->next)
		if (strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

static void chan_free(struct vmm *v, struct vmm_chan *c)
{
	for (struct vmm_chan **p = &v->chans; *p != NULL; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->retry != NULL)
		event_free(c->retry);
	free(c);
}

static void chan_connect(struct vmm_chan *c);

/* drop closes the connection and, while the VM runs, tries again later. */
static void drop(struct vmm_chan *c)
{
	struct timeval tv = {VMM_CHANNEL_RETRY_S, 0};
	struct vmm_vm vm;

	if (c->bev != NULL) {
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (vmm_db_get(c->v->db, c->id, &vm) == CVM_OK)
		vmm_vm_refresh(c->v, &vm); /* a QEMU that died is marked stopped */
	else
		vm.state[0] = '\0';
	if (strcmp(vm.state, VMM_ST_RUNNING) != 0 && strcmp(vm.state, VMM_ST_STARTING) != 0) {
		chan_free(c->v, c);
		return;
	}
	(void)event_add(c->retry, &tv);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct vmm_chan *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line;

	while ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) != NULL) {
		time_t now = time(NULL);

		if (now != c->window) {
			if (c->window_dropped != 0)
				cvm_daemon_log(CVM_LOG_WARN, "guest_channel",
				               "id=%s dropped=%u msg=\"over %d lines a second: dropped\"",
				               c->id, c->window_dropped, VMM_CHANNEL_LINES_PER_S);
			c->window = now;
			c->window_lines = c->window_dropped = 0;
		}
		if (n <= VMM_CHANNEL_LINE_MAX && c->window_lines < VMM_CHANNEL_LINES_PER_S) {
			c->lines++;
			c->window_lines++;
			vmm_channel_line(c->v, c->id, line, n);
		} else {
			c->window_dropped++;
		}
		free(line);
	}
	if (evbuffer_get_length(in) > VMM_CHANNEL_LINE_MAX) {
		cvm_daemon_log(CVM_LOG_WARN, "guest_channel",
		               "id=%s msg=\"a line over %d bytes: the connection is closed\"", c->id,
		               VMM_CHANNEL_LINE_MAX);
		drop(c);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct vmm_chan *c = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	drop(c);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	chan_connect(arg);
}

static void chan_connect(struct vmm_chan *c)
{
	struct sockaddr_un sa;
	char path[VMM_PATH_MAX];
	int fd;

	vmm_work_path(c->v->conf, c->id, "guest.sock", path, sizeof(path));
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		cvm_daemon_log(CVM_LOG_WARN, "guest_channel", "id=%s msg=\"%s is too long for a socket\"",
		               c->id, path);
		chan_free(c->v, c);
		return;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* a unix socket connects at once or fails at once: no pending state */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, (socklen_t)sizeof(sa)) != 0) {
		if (fd >= 0)
			(void)close(fd);
		drop(c);
		return;
	}
	c->bev = bufferevent_socket_new(c->v->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		(void)close(fd);
		drop(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, (size_t)VMM_CHANNEL_LINE_MAX * 2);
	if (bufferevent_enable(c->bev, EV_READ) != 0)
		drop(c);
}

void vmm_channel_open(struct vmm *v, const char *id)
{
	struct vmm_chan *c;

	if (v->base == NULL)
		return;
	vmm_channel_close(v, id);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->v = v;
	(void)snprintf(c->id, sizeof(c->id), "%s", id);
	c->retry = evtimer_new(v->base, on_retry, c);
	if (c->retry == NULL) {
		free(c);
		return;
	}
	c->next = v->chans;
	v->chans = c;
	chan_connect(c);
}

void vmm_channel_close(struct vmm *v, const char *id)
{
	struct vmm_chan *c = find(v, id);

	if (c != NULL)
		chan_free(v, c);
}

void vmm_channel_close_all(struct vmm *v)
{
	while (v->chans != NULL)
		chan_free(v, v->chans);
}

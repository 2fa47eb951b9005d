/* The data path: worker threads, each with its own epoll loop and its own
 * SO_REUSEPORT listener, so that nothing but the routing table's read lock
 * and a few atomic counters is shared on the way of a connection.
 *
 * A connection goes through:
 *   PROXY   (optional) the PROXY header the load balancer in front sends;
 *   HELLO   the ClientHello is peeked (MSG_PEEK: nothing is consumed, so a
 *           passthrough connection forwards it untouched) and its server name
 *           routed (lib/ingress);
 *   CONNECT the app's instances are dialled at once, the first to answer
 *           wins; meanwhile, for a terminated name, the TLS handshake runs;
 *   RELAY   plaintext between SSL_read/SSL_write and the backend socket, or,
 *           for passthrough, splice(2) through a pipe each way (the bytes
 *           never enter user space).
 * Sockets are registered once, edge-triggered, for both directions; the
 * connection remembers which sides are ready, so the loop makes no
 * epoll_ctl call per read or write. Deadlines (handshake, connect, idle,
 * total) are checked by a sweep twice a second. Every cap (all connections,
 * per client address, per app) is checked before any work is done for the
 * connection. A connection closed while events for it are still in the
 * batch is freed after the batch. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <ares.h>
#include <arpa/nameser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cvmkit/err.h>
#include <cvmkit/ingress.h>

#include "daemon.h"
#include "gw.h"

#define BUF_LEN ((size_t)16384)
#define PEEK_LEN ((size_t)2 * (CVM_CLIENTHELLO_MAX + 5) + 64)
#define PROXY_HDR_MAX ((size_t)4096)
#define PIPE_CHUNK ((size_t)65536) /* the kernel's default pipe size */
#define PIPE_BULK ((size_t)262144)
#define PIPE_GROW_AFTER (1024ull * 1024)
#define ACCEPT_BATCH 64
#define SWEEP_MS 500
#define IP_SHARDS 64u

enum ep_kind { EP_LISTEN = 1, EP_WAKE, EP_CLIENT, EP_BACKEND, EP_PENDING, EP_DNS };
enum st { ST_PROXY = 1, ST_HELLO, ST_DNS, ST_CONNECT, ST_RELAY };
enum mode { M_NONE = 0, M_TERM, M_PASS, M_PAGE };

struct conn;
struct ep {
	struct conn *c;
	uint8_t kind;
	uint8_t idx; /* EP_PENDING: which dial */
};

/* per-address connection counts, shared by the workers */
struct ip_ent {
	uint8_t addr[16];
	uint8_t fam;
	unsigned count;
	struct ip_ent *next;
};
struct ip_shard {
	pthread_mutex_t lock;
	struct ip_ent *head;
};

struct worker;
struct dns_query;

#define DNS_FDS_MAX 16
#define DNS_CACHE_BUCKETS 1024u
#define DNS_CACHE_MAX 4096u
#define DNS_NEGATIVE_TTL_MS 10000u

/* a c-ares socket in the worker's epoll (level-triggered, as c-ares wants) */
struct dns_fd {
	struct ep e;
	int fd;
	bool used;
};

/* a custom domain's answer, kept [dns] cache_ttl seconds (10 s when there
 * was none), so that DNS is asked once per name, not once per connection */
struct dns_entry {
	char name[CVM_INGRESS_NAME_MAX + 1];
	bool found;
	struct cvm_ingress_dst dst;
	uint64_t expires;
	struct dns_entry *next;
};

struct conn {
	struct ep ep_c, ep_b, ep_p[GW_TOP_N_MAX];
	struct worker *w;
	int cfd, bfd;
	int pfd[GW_TOP_N_MAX];
	struct gw_pick picks[GW_TOP_N_MAX];
	uint8_t n_pend, n_picks;
	uint8_t state, mode;
	bool c_rd, c_wr, b_rd, b_wr;
	bool hs_wants_write, c_drained, c_hup, b_hup, c_eof, b_eof, b_shut, c_shut, hs_done, dead,
	    counted_app, h2, read_wants_write, lingering;
	SSL *ssl;
	uint8_t *c2b, *b2c;
	size_t c2b_off, c2b_len, b2c_off, b2c_len;
	int pc2b[2], pb2c[2];
	size_t pc2b_n, pb2c_n;
	size_t chunk_c2b, chunk_b2c; /* bytes per splice: the pipe's size */
	unsigned long long moved_c2b, moved_b2c;
	struct gw_app *app;
	struct dns_query *dq; /* ST_DNS: the lookup in flight */
	struct ip_ent *ip;
	struct ip_shard *ip_shard;
	struct sockaddr_storage peer, local;
	socklen_t peer_len, local_len;
	bool send_proxy;
	uint64_t hs_deadline, conn_deadline, total_deadline, linger_deadline, last_io;
	struct conn *prev, *next;
};

struct worker {
	struct gw_proxy *p;
	pthread_t th;
	int ep, wake;
	struct ep ep_l, ep_w;
	struct conn *head; /* every live connection */
	struct conn *dead; /* closed in this batch, freed after it */
	unsigned active;
	uint8_t *peek;
	uint8_t **bufs; /* free relay buffers */
	size_t n_bufs;
	bool started, listening;
	uint64_t drain_deadline;
	ares_channel dns; /* NULL: custom domains are off */
	struct dns_fd dns_fds[DNS_FDS_MAX];
};

/* a TXT lookup: outlives its connection when that closes first */
struct dns_query {
	struct conn *c;
	struct worker *w;
	int step; /* 0: <prefix>.<name>, 1: <prefix>-wildcard.<parent> */
	char name[CVM_INGRESS_NAME_MAX + 1];
	char names[2][CVM_INGRESS_NAME_MAX + 32];
};

struct gw_proxy {
	struct gw_ctx *g;
	struct worker *w;
	size_t n_w;
	int lfd; /* one listener, in every worker's epoll with EPOLLEXCLUSIVE */
	atomic_bool stop;
	atomic_bool drain;
	atomic_uint active;
	struct ip_shard ips[IP_SHARDS];
	/* the custom domains' answers, shared by the workers */
	pthread_mutex_t dns_lock;
	struct dns_entry *dns_cache[DNS_CACHE_BUCKETS];
	size_t dns_cached;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* --- per-address caps --- */

static void ip_key(const struct sockaddr_storage *ss, uint8_t key[16], uint8_t *fam)
{
	memset(key, 0, 16);
	if (ss->ss_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)ss)->sin_addr, 4);
		*fam = 4;
	} else if (ss->ss_family == AF_INET6) {
		memcpy(key, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
		*fam = 6;
	} else {
		*fam = 0;
	}
}

/* ip_take counts one more connection from c's peer; false when that
 * address is at its cap. */
static bool ip_take(struct gw_proxy *p, struct conn *c, unsigned cap)
{
	uint8_t key[16], fam;
	uint32_t h = 2166136261u;
	struct ip_shard *s;
	struct ip_ent *e;
	bool ok = true;

	ip_key(&c->peer, key, &fam);
	for (size_t i = 0; i < 16; i++)
		h = (h ^ key[i]) * 16777619u;
	s = &p->ips[h % IP_SHARDS];
	(void)pthread_mutex_lock(&s->lock);
	for (e = s->head; e != NULL; e = e->next)
		if (e->fam == fam && memcmp(e->addr, key, 16) == 0)
			break;
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL) {
			ok = false;
			goto out;
		}
		memcpy(e->addr, key, 16);
		e->fam = fam;
		e->next = s->head;
		s->head = e;
	}
	if (e->count >= cap) {
		ok = false;
		goto out;
	}
	e->count++;
	c->ip = e;
	c->ip_shard = s;
out:
	(void)pthread_mutex_unlock(&s->lock);
	return ok;
}

static void ip_release(struct conn *c)
{
	struct ip_shard *s = c->ip_shard;
	struct ip_ent **pp;

	if (c->ip == NULL)
		return;
	(void)pthread_mutex_lock(&s->lock);
	if (--c->ip->count == 0) {
		for (pp = &s->head; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == c->ip) {
				*pp = c->ip->next;
				free(c->ip);
				break;
			}
		}
	}
	(void)pthread_mutex_unlock(&s->lock);
	c->ip = NULL;
}

/* --- buffers --- */

static uint8_t *buf_get(struct worker *w)
{
	if (w->n_bufs > 0)
		return w->bufs[--w->n_bufs];
	return malloc(BUF_LEN);
}

static void buf_put(struct worker *w, uint8_t *b)
{
	if (b == NULL)
		return;
	if (w->n_bufs < 256) {
		w->bufs[w->n_bufs++] = b;
		return;
	}
	free(b);
}

/* --- lifecycle --- */

static void peer_str(const struct conn *c, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	if (c->peer.ss_family == AF_INET)
		(void)inet_ntop(AF_INET, &((const struct sockaddr_in *)&c->peer)->sin_addr, a, sizeof(a));
	else if (c->peer.ss_family == AF_INET6)
		(void)inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&c->peer)->sin6_addr, a, sizeof(a));
	(void)snprintf(out, len, "%s", a);
}

static void conn_close(struct conn *c)
{
	struct worker *w = c->w;
	struct gw_ctx *g = w->p->g;

	if (c->dead)
		return;
	c->dead = true;
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->cfd >= 0)
		(void)close(c->cfd);
	if (c->bfd >= 0)
		(void)close(c->bfd);
	for (size_t i = 0; i < c->n_picks; i++)
		if (c->pfd[i] >= 0)
			(void)close(c->pfd[i]);
	for (int i = 0; i < 2; i++) {
		if (c->pc2b[i] >= 0)
			(void)close(c->pc2b[i]);
		if (c->pb2c[i] >= 0)
			(void)close(c->pb2c[i]);
	}
	buf_put(w, c->c2b);
	buf_put(w, c->b2c);
	c->c2b = c->b2c = NULL;
	if (c->dq != NULL) { /* its answer will find no connection */
		c->dq->c = NULL;
		c->dq = NULL;
	}
	if (c->app != NULL) {
		if (c->counted_app)
			atomic_fetch_sub(&c->app->conns, 1);
		gw_routes_app_put(g->routes, c->app);
		c->app = NULL;
	}
	ip_release(c);
	atomic_fetch_sub(&g->conns_total, 1);
	atomic_fetch_sub(&w->p->active, 1);
	w->active--;
	/* unlink from the live list, onto the dead one */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = NULL;
	c->next = w->dead;
	w->dead = c;
}

static void fail(struct conn *c, enum gw_counter why, const char *event, const char *detail)
{
	char peer[INET6_ADDRSTRLEN + 1], kv[CVM_KV_MAX];

	gw_count(c->w->p->g, why, 1);
	if (event != NULL) {
		peer_str(c, peer, sizeof(peer));
		cvm_daemon_log_limited(CVM_LOG_INFO, event, "peer=%s detail=%s", peer, cvm_kv(detail, kv));
	}
	conn_close(c);
}

static int add_fd(struct worker *w, int fd, struct ep *e, uint32_t events)
{
	struct epoll_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = e;
	return epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev);
}

static void set_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* --- the client socket's BIO ---
 *
 * OpenSSL's socket BIO, plus one thing it cannot say: whether the last
 * read emptied the socket (it returned fewer bytes than asked, or
 * EAGAIN). With read-ahead on, one read takes all the records there are;
 * when the socket is known empty and the SSL holds nothing, the relay
 * stops reading without the extra read that would return EAGAIN (the next
 * bytes raise a new edge). */

static BIO_METHOD *sock_meth;
static pthread_once_t sock_meth_once = PTHREAD_ONCE_INIT;

static int sbio_read(BIO *b, char *buf, int len)
{
	struct conn *c = BIO_get_data(b);
	ssize_t n = recv(c->cfd, buf, (size_t)len, 0);

	BIO_clear_retry_flags(b);
	if (n > 0) {
		if (n < len)
			c->c_drained = true;
		return (int)n;
	}
	if (n == 0)
		return 0;
	if (errno == EAGAIN || errno == EINTR) {
		c->c_drained = true;
		BIO_set_retry_read(b);
	}
	return -1;
}

static int sbio_write(BIO *b, const char *buf, int len)
{
	struct conn *c = BIO_get_data(b);
	ssize_t n = send(c->cfd, buf, (size_t)len, MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EINTR)
		BIO_set_retry_write(b);
	return -1;
}

static long sbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static void sock_meth_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "cvm-gatewayd socket");

	if (m == NULL || BIO_meth_set_read(m, sbio_read) != 1 || BIO_meth_set_write(m, sbio_write) != 1 ||
	    BIO_meth_set_ctrl(m, sbio_ctrl) != 1) {
		BIO_meth_free(m);
		return;
	}
	sock_meth = m;
}

static bool ssl_attach(struct conn *c)
{
	BIO *b;

	(void)pthread_once(&sock_meth_once, sock_meth_make);
	if (sock_meth == NULL || (b = BIO_new(sock_meth)) == NULL)
		return false;
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	SSL_set_bio(c->ssl, b, b); /* the SSL owns the BIO */
	return true;
}

/* --- states --- */

static void conn_run(struct conn *c);

static void start_dials(struct conn *c)
{
	struct worker *w = c->w;
	uint64_t now = now_ms();

	for (size_t i = 0; i < c->n_picks; i++) {
		const struct gw_pick *pk = &c->picks[i];
		int fd = socket(pk->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		c->pfd[i] = -1;
		if (fd < 0)
			continue;
		set_nodelay(fd);
		if (connect(fd, (const struct sockaddr *)&pk->addr, pk->addr_len) != 0 &&
		    errno != EINPROGRESS) {
			(void)close(fd);
			continue;
		}
		c->ep_p[i].c = c;
		c->ep_p[i].kind = EP_PENDING;
		c->ep_p[i].idx = (uint8_t)i;
		if (add_fd(w, fd, &c->ep_p[i], EPOLLOUT | EPOLLET) != 0) {
			(void)close(fd);
			continue;
		}
		c->pfd[i] = fd;
		c->n_pend++;
	}
	c->conn_deadline = now + w->p->g->conf->connect_timeout_s * 1000u;
}

/* dial_done handles a pending dial that became writable: the first one
 * that connected is the backend; the others are closed. */
static void dial_done(struct conn *c, size_t i)
{
	int fd = c->pfd[i], err = 0;
	socklen_t len = sizeof(err);
	struct epoll_event ev;

	if (fd < 0 || c->bfd >= 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
		(void)close(fd);
		c->pfd[i] = -1;
		c->n_pend--;
		if (c->n_pend == 0)
			fail(c, GW_C_CONNECT_FAILED, "backend_unreachable", strerror(err != 0 ? err : errno));
		return;
	}
	c->bfd = fd;
	c->pfd[i] = -1;
	c->send_proxy = c->picks[i].send_proxy;
	for (size_t k = 0; k < c->n_picks; k++) {
		if (c->pfd[k] >= 0) {
			(void)close(c->pfd[k]);
			c->pfd[k] = -1;
		}
	}
	c->n_pend = 0;
	c->ep_b.c = c;
	c->ep_b.kind = EP_BACKEND;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.ptr = &c->ep_b;
	if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, fd, &ev) != 0) {
		fail(c, GW_C_CONNECT_FAILED, "backend_unreachable", "epoll_ctl");
		return;
	}
	c->b_rd = true;
	c->b_wr = true;
	c->conn_deadline = 0;
}

static void page(struct conn *c, int status, const char *reason, const char *text)
{
	int n;

	c->b2c = buf_get(c->w);
	if (c->b2c == NULL) {
		conn_close(c);
		return;
	}
	n = snprintf((char *)c->b2c, BUF_LEN,
	             "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: "
	             "close\r\n\r\n%s",
	             status, reason, strlen(text), text);
	c->b2c_len = n > 0 && (size_t)n < BUF_LEN ? (size_t)n : 0;
	c->b2c_off = 0;
	c->b_eof = true;
}

static bool route_dst(struct conn *c, const struct cvm_ingress_route *rtp);

/* --- custom domains: the TXT record names the app (c-ares) --- */

static uint32_t dns_hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h % DNS_CACHE_BUCKETS;
}

/* dns_cache_get copies the live entry for `name` into *out. */
static bool dns_cache_get(struct gw_proxy *p, const char *name, uint64_t now, struct dns_entry *out)
{
	bool hit = false;

	(void)pthread_mutex_lock(&p->dns_lock);
	for (const struct dns_entry *e = p->dns_cache[dns_hash(name)]; e != NULL; e = e->next) {
		if (strcmp(e->name, name) == 0) {
			hit = now < e->expires;
			if (hit)
				*out = *e;
			break;
		}
	}
	(void)pthread_mutex_unlock(&p->dns_lock);
	return hit;
}

/* dns_cache_clear empties the cache; the caller holds dns_lock (or is the
 * last user). */
static void dns_cache_clear(struct gw_proxy *p)
{
	for (size_t b = 0; b < DNS_CACHE_BUCKETS; b++) {
		while (p->dns_cache[b] != NULL) {
			struct dns_entry *e = p->dns_cache[b];

			p->dns_cache[b] = e->next;
			free(e);
		}
	}
	p->dns_cached = 0;
}

static void dns_cache_put(struct gw_proxy *p, const char *name, bool found, const struct cvm_ingress_dst *dst)
{
	uint32_t h = dns_hash(name);
	uint64_t ttl = found ? p->g->conf->dns_cache_ttl_s * 1000u : DNS_NEGATIVE_TTL_MS;
	struct dns_entry *e;

	(void)pthread_mutex_lock(&p->dns_lock);
	for (e = p->dns_cache[h]; e != NULL; e = e->next)
		if (strcmp(e->name, name) == 0)
			break;
	if (e == NULL) {
		if (p->dns_cached >= DNS_CACHE_MAX)
			dns_cache_clear(p); /* rare: start over rather than grow */
		e = calloc(1, sizeof(*e));
		if (e != NULL) {
			(void)snprintf(e->name, sizeof(e->name), "%s", name);
			e->next = p->dns_cache[h];
			p->dns_cache[h] = e;
			p->dns_cached++;
		}
	}
	if (e != NULL) {
		e->found = found;
		if (found)
			e->dst = *dst;
		e->expires = now_ms() + ttl;
	}
	(void)pthread_mutex_unlock(&p->dns_lock);
}

static bool dns_route(struct conn *c, const char *name, bool found, const struct cvm_ingress_dst *dst)
{
	struct cvm_ingress_route rt;

	if (!found) {
		fail(c, GW_C_BAD_NAME, "no_app_address", name);
		return false;
	}
	memset(&rt, 0, sizeof(rt));
	rt.kind = CVM_INGRESS_APP;
	rt.dst = *dst;
	rt.dst.is_tls = true; /* a custom domain's app terminates its own TLS */
	rt.dst.is_h2 = false;
	(void)snprintf(rt.name, sizeof(rt.name), "%s", name);
	gw_count(c->w->p->g, GW_C_CUSTOM_DOMAIN, 1);
	return route_dst(c, &rt);
}

static void dns_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_query *q = arg;
	struct worker *w = q->w;
	struct cvm_ingress_dst dst;
	bool found = false;
	struct conn *c;

	(void)timeouts;
	if (status == ARES_SUCCESS) {
		struct ares_txt_reply *txt = NULL;

		if (ares_parse_txt_reply(abuf, alen, &txt) == ARES_SUCCESS) {
			for (const struct ares_txt_reply *t = txt; t != NULL && !found; t = t->next) {
				const char *why = NULL;

				found = cvm_ingress_parse_txt((const char *)t->txt, t->length, &dst, &why) ==
				        CVM_OK;
			}
			ares_free_data(txt);
		}
	}
	if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
		if (q->c != NULL)
			q->c->dq = NULL;
		free(q);
		return;
	}
	if (!found && q->step == 0) { /* then the parent's wildcard record */
		q->step = 1;
		ares_query(w->dns, q->names[1], ns_c_in, ns_t_txt, dns_answer, q);
		return;
	}
	dns_cache_put(w->p, q->name, found, &dst);
	c = q->c;
	if (c == NULL || c->dead) {
		free(q);
		return;
	}
	c->dq = NULL;
	if (dns_route(c, q->name, found, &dst))
		conn_run(c);
	free(q);
}

static bool dns_start(struct conn *c, const char *name)
{
	struct worker *w = c->w;
	struct dns_entry e;
	struct dns_query *q;

	if (dns_cache_get(w->p, name, now_ms(), &e))
		return dns_route(c, name, e.found, &e.dst);
	q = calloc(1, sizeof(*q));
	if (q == NULL || cvm_ingress_txt_names(name, w->p->g->conf->dns_prefix, q->names) != CVM_OK) {
		free(q);
		fail(c, GW_C_BAD_NAME, "unknown_domain", name);
		return false;
	}
	q->c = c;
	q->w = w;
	(void)snprintf(q->name, sizeof(q->name), "%s", name);
	c->dq = q;
	c->state = ST_DNS;
	gw_count(w->p->g, GW_C_DNS_LOOKUPS, 1);
	/* The answer continues the connection (dns_answer); it may come at
	 * once, from inside ares_query. */
	ares_query(w->dns, q->names[0], ns_c_in, ns_t_txt, dns_answer, q);
	return false;
}

static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct worker *w = data;
	struct dns_fd *slot = NULL, *free_slot = NULL;
	struct epoll_event ev;

	for (size_t i = 0; i < DNS_FDS_MAX; i++) {
		if (w->dns_fds[i].used && w->dns_fds[i].fd == fd)
			slot = &w->dns_fds[i];
		else if (!w->dns_fds[i].used && free_slot == NULL)
			free_slot = &w->dns_fds[i];
	}
	if (!readable && !writable) {
		if (slot != NULL) {
			(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, fd, NULL);
			slot->used = false;
		}
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
	if (slot != NULL) {
		ev.data.ptr = &slot->e;
		(void)epoll_ctl(w->ep, EPOLL_CTL_MOD, fd, &ev);
		return;
	}
	if (free_slot == NULL) /* more sockets than servers: c-ares times the query out */
		return;
	free_slot->used = true;
	free_slot->fd = fd;
	free_slot->e.kind = EP_DNS;
	free_slot->e.idx = (uint8_t)(free_slot - w->dns_fds);
	ev.data.ptr = &free_slot->e;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		free_slot->used = false;
}

static void dns_event(struct worker *w, const struct ep *e, uint32_t events)
{
	int fd = w->dns_fds[e->idx].fd;

	ares_process_fd(w->dns, (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) ? fd : ARES_SOCKET_BAD,
	                (events & EPOLLOUT) ? fd : ARES_SOCKET_BAD);
}

static int dns_init(struct worker *w, char *err, size_t err_len)
{
	const struct gw_conf *cf = w->p->g->conf;
	struct ares_options o;
	int r;

	memset(&o, 0, sizeof(o));
	o.sock_state_cb = dns_sock_state;
	o.sock_state_cb_data = w;
	o.timeout = 2000; /* ms, with ARES_OPT_TIMEOUTMS */
	o.tries = 2;
	r = ares_init_options(&w->dns, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
	if (r == ARES_SUCCESS && cf->dns_servers[0] != '\0')
		r = ares_set_servers_ports_csv(w->dns, cf->dns_servers);
	if (r != ARES_SUCCESS) {
		(void)snprintf(err, err_len, "the DNS resolver ([dns] servers '%s'): %s", cf->dns_servers,
		               ares_strerror(r));
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}

/* --- routing --- */

static bool route(struct conn *c, const struct cvm_clienthello *hello)
{
	struct worker *w = c->w;
	struct gw_ctx *g = w->p->g;
	struct gw_conf *cf = g->conf;
	struct cvm_ingress_route rt;
	const char *why = NULL;
	int r;

	if (!hello->has_sni) {
		fail(c, GW_C_BAD_HELLO, "no_sni", "the ClientHello names no server");
		return false;
	}
	r = cvm_ingress_route(hello->sni, hello->sni_len, cf->base_domain_ptrs, cf->n_base_domains, &rt,
	                      &why);
	if (r != CVM_OK) {
		fail(c, GW_C_BAD_NAME, "bad_name", why != NULL ? why : "the server name does not route");
		return false;
	}
	if (rt.kind != CVM_INGRESS_APP) {
		/* A custom domain: its TXT record names the app (passthrough). */
		if (w->dns == NULL) {
			fail(c, GW_C_BAD_NAME, "unknown_domain", rt.name);
			return false;
		}
		return dns_start(c, rt.name);
	}
	return route_dst(c, &rt);
}

static bool route_dst(struct conn *c, const struct cvm_ingress_route *rtp)
{
	struct worker *w = c->w;
	struct gw_ctx *g = w->p->g;
	struct gw_conf *cf = g->conf;
	const struct cvm_ingress_route rt = *rtp;

	c->h2 = rt.dst.is_h2;
	c->mode = rt.dst.is_tls ? M_PASS : M_TERM;
	if (c->mode == M_TERM && (strcmp(rt.dst.id, "health") == 0 || strcmp(rt.dst.id, "gateway") == 0)) {
		c->mode = M_PAGE;
	} else {
		c->n_picks = (uint8_t)gw_routes_pick(g->routes, rt.dst.id, rt.dst.port, (int64_t)time(NULL),
		                                     c->picks, (size_t)cf->connect_top_n, &c->app);
		if (c->app != NULL) {
			if (atomic_fetch_add(&c->app->conns, 1) >= cf->max_connections_per_app) {
				atomic_fetch_sub(&c->app->conns, 1);
				fail(c, GW_C_REFUSED_PER_APP, "app_at_cap", rt.dst.id);
				return false;
			}
			c->counted_app = true;
		}
		if (c->n_picks == 0) {
			if (c->mode == M_PASS || c->h2) {
				fail(c, GW_C_NO_BACKEND, "no_backend", rt.dst.id);
				return false;
			}
			gw_count(g, GW_C_NO_BACKEND, 1);
			c->mode = M_PAGE; /* a terminated HTTP/1.1 name gets a 503 that says why */
		} else {
			start_dials(c);
			if (c->n_pend == 0) {
				fail(c, GW_C_CONNECT_FAILED, "backend_unreachable", "no dial could start");
				return false;
			}
		}
	}
	if (c->mode == M_PASS) {
		gw_count(g, GW_C_PASSTHROUGH, 1);
	} else {
		c->ssl = gw_tls_new_ssl(g->tls, c->h2);
		if (c->ssl == NULL || !ssl_attach(c)) {
			fail(c, GW_C_TLS_FAILED, "tls_failed", "cannot make the TLS session");
			return false;
		}
		SSL_set_accept_state(c->ssl);
		if (c->mode == M_PAGE) {
			if (c->n_picks == 0 && strcmp(rt.dst.id, "health") != 0 &&
			    strcmp(rt.dst.id, "gateway") != 0)
				page(c, 503, "Service Unavailable",
				     "cvm-gatewayd: no instance of this app is registered and healthy\n");
			else
				page(c, 200, "OK", "ok\n");
			if (c->dead)
				return false;
		}
	}
	c->state = ST_CONNECT;
	return true;
}

static bool do_proxy_header(struct conn *c)
{
	struct cvm_proxy_hdr h;
	size_t used = 0;
	ssize_t n;
	int r;

	n = recv(c->cfd, c->w->peek, PROXY_HDR_MAX, MSG_PEEK);
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		conn_close(c);
		return false;
	}
	if (n < 0) {
		c->c_rd = false;
		return false;
	}
	r = cvm_proxy_parse(c->w->peek, (size_t)n, &h, &used);
	if (r == CVM_E_TRUNCATED && (size_t)n < PROXY_HDR_MAX && !c->c_hup) {
		c->c_rd = false;
		return false;
	}
	if (r != CVM_OK) {
		fail(c, GW_C_BAD_HELLO, "bad_proxy_header",
		     "the connection does not start with a PROXY header");
		return false;
	}
	if (recv(c->cfd, c->w->peek, used, 0) != (ssize_t)used) {
		conn_close(c);
		return false;
	}
	if (h.family == AF_INET || h.family == AF_INET6) {
		c->peer = h.src;
		c->peer_len = h.family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		c->local = h.dst;
		c->local_len = c->peer_len;
	}
	c->state = ST_HELLO;
	return true;
}

static bool do_hello(struct conn *c)
{
	struct cvm_clienthello hello;
	ssize_t n;
	int r;

	n = recv(c->cfd, c->w->peek, PEEK_LEN, MSG_PEEK);
	if (n == 0 || (n < 0 && errno != EAGAIN)) {
		conn_close(c);
		return false;
	}
	if (n < 0) {
		c->c_rd = false;
		return false;
	}
	r = cvm_clienthello_parse(c->w->peek, (size_t)n, &hello, NULL);
	if (r == CVM_E_TRUNCATED && c->c_hup) { /* the client left mid-hello */
		conn_close(c);
		return false;
	}
	if (r == CVM_E_TRUNCATED && (size_t)n < PEEK_LEN) {
		c->c_rd = false; /* the next bytes are a new edge */
		return false;
	}
	if (r != CVM_OK) {
		fail(c, GW_C_BAD_HELLO, "bad_client_hello",
		     r == CVM_E_TOO_LARGE ? "the ClientHello is too large" : "the connection is not TLS");
		return false;
	}
	return route(c, &hello);
}

static bool start_relay(struct conn *c)
{
	if (c->mode == M_PASS) {
		if (pipe2(c->pc2b, O_NONBLOCK | O_CLOEXEC) != 0 ||
		    pipe2(c->pb2c, O_NONBLOCK | O_CLOEXEC) != 0) {
			fail(c, GW_C_CONNECT_FAILED, "resource", "cannot make a pipe");
			return false;
		}
		c->chunk_c2b = c->chunk_b2c = PIPE_CHUNK;
	} else {
		if (c->c2b == NULL)
			c->c2b = buf_get(c->w);
		if (c->b2c == NULL)
			c->b2c = buf_get(c->w);
		if (c->c2b == NULL || c->b2c == NULL) {
			conn_close(c);
			return false;
		}
	}
	if (c->send_proxy && c->bfd >= 0) {
		struct cvm_proxy_hdr h;
		uint8_t hdr[128];
		size_t len = 0;

		if (c->local_len == 0) { /* not from a PROXY header: the socket's */
			c->local_len = sizeof(c->local);
			(void)getsockname(c->cfd, (struct sockaddr *)&c->local, &c->local_len);
		}
		memset(&h, 0, sizeof(h));
		h.family = c->peer.ss_family;
		h.src = c->peer;
		h.dst = c->local;
		if (cvm_proxy_build(&h, 2, hdr, sizeof(hdr), &len) != CVM_OK ||
		    send(c->bfd, hdr, len, MSG_NOSIGNAL) != (ssize_t)len) {
			fail(c, GW_C_CONNECT_FAILED, "backend_unreachable", "cannot send the PROXY header");
			return false;
		}
	}
	c->state = ST_RELAY;
	c->last_io = now_ms();
	return true;
}

/* relay_term moves plaintext between the TLS session and the backend.
 * Returns false once the connection is closed. */
static bool relay_term(struct conn *c)
{
	struct gw_ctx *g = c->w->p->g;
	bool progress = true;

	while (progress && !c->dead) {
		progress = false;
		/* client -> backend */
		if (c->c2b_len > 0 && c->b_wr && c->bfd >= 0) {
			ssize_t n = send(c->bfd, c->c2b + c->c2b_off, c->c2b_len, MSG_NOSIGNAL);

			if (n > 0) {
				c->c2b_off += (size_t)n;
				c->c2b_len -= (size_t)n;
				progress = true;
			} else if (n < 0 && errno == EAGAIN) {
				c->b_wr = false;
			} else {
				conn_close(c);
				return false;
			}
		}
		if (c->c2b_len == 0 && !c->c_eof && c->c_rd) {
			int n;

			ERR_clear_error();
			c->c_drained = false;
			n = SSL_read(c->ssl, c->c2b, (int)BUF_LEN);
			if (n > 0) {
				if (c->c_drained && !c->c_hup && SSL_has_pending(c->ssl) == 0)
					c->c_rd = false;
				c->c2b_off = 0;
				/* no backend (a page, or the app is gone): read and drop,
				 * so that closing sends no reset over the answer */
				c->c2b_len = c->bfd >= 0 && !c->lingering ? (size_t)n : 0;
				gw_count(g, GW_C_BYTES_IN, (unsigned long long)n);
				progress = true;
			} else {
				int e = SSL_get_error(c->ssl, n);

				if (e == SSL_ERROR_WANT_READ) {
					c->c_rd = false;
				} else if (e == SSL_ERROR_WANT_WRITE) {
					c->c_rd = false;
					c->read_wants_write = true;
				} else if (e == SSL_ERROR_ZERO_RETURN) {
					/* close_notify, or a TCP close without it
					 * (SSL_OP_IGNORE_UNEXPECTED_EOF) */
					c->c_eof = true;
					progress = true;
				} else {
					conn_close(c);
					return false;
				}
			}
		}
		if (c->c_eof && c->c2b_len == 0 && !c->b_shut && c->bfd >= 0) {
			(void)shutdown(c->bfd, SHUT_WR);
			c->b_shut = true;
		}
		/* backend -> client */
		if (c->b2c_len > 0 && c->c_wr) {
			int n;

			ERR_clear_error();
			n = SSL_write(c->ssl, c->b2c + c->b2c_off, (int)c->b2c_len);
			if (n > 0) {
				c->b2c_off += (size_t)n;
				c->b2c_len -= (size_t)n;
				gw_count(g, GW_C_BYTES_OUT, (unsigned long long)n);
				progress = true;
			} else {
				int e = SSL_get_error(c->ssl, n);

				if (e == SSL_ERROR_WANT_WRITE) {
					c->c_wr = false;
				} else if (e != SSL_ERROR_WANT_READ) {
					conn_close(c);
					return false;
				}
			}
		}
		if (c->b2c_len == 0 && !c->b_eof && c->b_rd && c->bfd >= 0) {
			ssize_t n = recv(c->bfd, c->b2c, BUF_LEN, 0);

			if (n > 0) {
				if ((size_t)n < BUF_LEN && !c->b_hup)
					c->b_rd = false; /* drained: the next bytes are a new edge */
				c->b2c_off = 0;
				c->b2c_len = (size_t)n;
				progress = true;
			} else if (n == 0) {
				c->b_eof = true;
				progress = true;
			} else if (errno == EAGAIN) {
				c->b_rd = false;
			} else {
				conn_close(c);
				return false;
			}
		}
		/* The app closed and everything it sent is out: end the TLS
		 * session (close_notify), half-close, and linger until the
		 * client closes (or 2 s): closing with its unread bytes in the
		 * socket would send a reset that can destroy the answer. */
		if (c->b_eof && c->b2c_len == 0 && !c->lingering) {
			ERR_clear_error();
			(void)SSL_shutdown(c->ssl);
			(void)shutdown(c->cfd, SHUT_WR);
			c->lingering = true;
			c->linger_deadline = now_ms() + 2000u;
			if (c->bfd >= 0) {
				(void)close(c->bfd);
				c->bfd = -1;
			}
			progress = true;
		}
		if (c->lingering && c->c_eof) {
			conn_close(c);
			return false;
		}
	}
	if (progress || c->c2b_len + c->b2c_len > 0)
		c->last_io = now_ms();
	return true;
}

/* pump splices one direction: from `in` through the pipe to `out`. */
static int pump(struct conn *c, int in, int out, int pipe_fd[2], size_t chunk, size_t *in_pipe, bool *in_rd,
                bool *out_wr, bool *eof, unsigned long long *moved)
{
	bool progress = false;

	for (;;) {
		if (*in_pipe > 0) {
			ssize_t n;

			if (!*out_wr)
				break;
			n = splice(pipe_fd[0], NULL, out, NULL, *in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				*in_pipe -= (size_t)n;
				progress = true;
				continue;
			}
			if (n < 0 && errno == EAGAIN) {
				*out_wr = false;
				break;
			}
			return -1;
		}
		if (*eof || !*in_rd)
			break;
		ssize_t n = splice(in, NULL, pipe_fd[1], NULL, chunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);

		if (n > 0) {
			*in_pipe += (size_t)n;
			*moved += (unsigned long long)n;
			progress = true;
		} else if (n == 0) {
			*eof = true;
			progress = true;
		} else if (errno == EAGAIN) {
			*in_rd = false;
		} else {
			return -1;
		}
	}
	(void)c;
	return progress ? 1 : 0;
}

static bool relay_pass(struct conn *c)
{
	struct gw_ctx *g = c->w->p->g;
	unsigned long long in = 0, out = 0;
	int a, b;

	a = pump(c, c->cfd, c->bfd, c->pc2b, c->chunk_c2b, &c->pc2b_n, &c->c_rd, &c->b_wr, &c->c_eof, &in);
	b = pump(c, c->bfd, c->cfd, c->pb2c, c->chunk_b2c, &c->pb2c_n, &c->b_rd, &c->c_wr, &c->b_eof, &out);
	if (a < 0 || b < 0) {
		conn_close(c);
		return false;
	}
	/* A bulk transfer gets a larger pipe (fewer splices and wake-ups);
	 * most connections never move enough to need one, so the kernel's
	 * per-user pipe budget is not spent on them. */
	c->moved_c2b += in;
	c->moved_b2c += out;
	if (c->chunk_c2b == PIPE_CHUNK && c->moved_c2b > PIPE_GROW_AFTER &&
	    fcntl(c->pc2b[1], F_SETPIPE_SZ, (int)PIPE_BULK) >= (int)PIPE_BULK)
		c->chunk_c2b = PIPE_BULK;
	if (c->chunk_b2c == PIPE_CHUNK && c->moved_b2c > PIPE_GROW_AFTER &&
	    fcntl(c->pb2c[1], F_SETPIPE_SZ, (int)PIPE_BULK) >= (int)PIPE_BULK)
		c->chunk_b2c = PIPE_BULK;
	if (in > 0)
		gw_count(g, GW_C_BYTES_IN, in);
	if (out > 0)
		gw_count(g, GW_C_BYTES_OUT, out);
	if (c->c_eof && c->pc2b_n == 0 && !c->b_shut) {
		(void)shutdown(c->bfd, SHUT_WR);
		c->b_shut = true;
	}
	if (c->b_eof && c->pb2c_n == 0) {
		/* The app is done: half-close towards the client; when the client
		 * is done too, the connection ends. */
		if (!c->c_shut) {
			(void)shutdown(c->cfd, SHUT_WR);
			c->c_shut = true;
		}
		if (c->c_eof) {
			conn_close(c);
			return false;
		}
	}
	if (a > 0 || b > 0)
		c->last_io = now_ms();
	return true;
}

static void conn_run(struct conn *c)
{
	if (c->dead)
		return;
	if (c->state == ST_PROXY && !(c->c_rd && do_proxy_header(c)))
		return;
	if (c->state == ST_HELLO && !(c->c_rd && do_hello(c)))
		return;
	if (c->state == ST_CONNECT) {
		if (c->ssl != NULL && !c->hs_done) {
			int r;

			/* Only when the handshake can move: an event that says the
			 * socket is writable (or the backend connected) is no reason
			 * to try a read that returns EAGAIN. */
			if (!c->c_rd && !(c->hs_wants_write && c->c_wr))
				return;
			c->hs_wants_write = false;
			ERR_clear_error();
			r = SSL_do_handshake(c->ssl);
			if (r == 1) {
				c->hs_done = true;
				/* From now on read every record there is in one read
				 * (the BIO above tells when that emptied the socket).
				 * Not during the handshake: there it halved the rate of
				 * new connections. */
				SSL_set_read_ahead(c->ssl, 1);
				c->hs_deadline = 0;
				gw_count(c->w->p->g, GW_C_TERMINATED, 1);
			} else {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_READ) {
					c->c_rd = false;
				} else if (e == SSL_ERROR_WANT_WRITE) {
					c->c_wr = false;
					c->hs_wants_write = true;
				} else
					fail(c, GW_C_TLS_FAILED, NULL, NULL);
				return;
			}
		}
		if (c->mode == M_PASS)
			c->hs_deadline = 0; /* the app's handshake is the app's */
		if (c->mode != M_PAGE && c->bfd < 0)
			return;
		if (!start_relay(c))
			return;
	}
	if (c->state == ST_RELAY) {
		if (c->mode == M_PASS)
			(void)relay_pass(c);
		else
			(void)relay_term(c);
	}
}

static void on_event(struct ep *e, uint32_t ev)
{
	struct conn *c = e->c;

	if (c->dead)
		return;
	switch (e->kind) {
	case EP_CLIENT:
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			c->c_rd = true;
		if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			c->c_hup = true; /* a peek still sees the bytes before the FIN */
		if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
			c->c_wr = true;
			if (c->read_wants_write) {
				c->read_wants_write = false;
				c->c_rd = true;
			}
		}
		break;
	case EP_BACKEND:
		if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			c->b_rd = true;
		if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			c->b_hup = true; /* read on to the end: no edge will come for it */
		if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
			c->b_wr = true;
		break;
	case EP_PENDING:
		dial_done(c, e->idx);
		if (c->dead)
			return;
		break;
	default:
		return;
	}
	conn_run(c);
}

static void do_accept(struct worker *w)
{
	struct gw_proxy *p = w->p;
	struct gw_ctx *g = p->g;
	struct gw_conf *cf = g->conf;

	for (int k = 0; k < ACCEPT_BATCH; k++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		struct conn *c;
		int fd = accept4(p->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED &&
			    !atomic_load(&p->drain))
				cvm_daemon_log_limited(CVM_LOG_WARN, "accept_failed", "errno=%d error=\"%s\"",
				                       errno, strerror(errno));
			return;
		}
		gw_count(g, GW_C_ACCEPTED, 1);
		if (atomic_fetch_add(&g->conns_total, 1) >= cf->max_connections) {
			atomic_fetch_sub(&g->conns_total, 1);
			gw_count(g, GW_C_REFUSED_CAP, 1);
			cvm_daemon_log_limited(CVM_LOG_WARN, "connection_refused",
			                       "reason=max_connections cap=%llu",
			                       (unsigned long long)cf->max_connections);
			(void)close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			atomic_fetch_sub(&g->conns_total, 1);
			(void)close(fd);
			continue;
		}
		c->w = w;
		c->cfd = fd;
		c->bfd = -1;
		c->pc2b[0] = c->pc2b[1] = c->pb2c[0] = c->pb2c[1] = -1;
		c->peer = ss;
		c->peer_len = sl;
		c->state = cf->proxy_protocol_in ? ST_PROXY : ST_HELLO;
		c->hs_deadline = now_ms() + cf->handshake_timeout_s * 1000u;
		c->total_deadline = now_ms() + cf->total_timeout_s * 1000u;
		c->next = w->head;
		if (w->head != NULL)
			w->head->prev = c;
		w->head = c;
		w->active++;
		atomic_fetch_add(&p->active, 1);
		/* The address cap counts the peer the socket shows; behind a load
		 * balancer speaking PROXY, that is the balancer (its own cap
		 * applies to its clients). */
		if (!ip_take(p, c, (unsigned)cf->max_connections_per_ip)) {
			char peer[INET6_ADDRSTRLEN + 1];

			peer_str(c, peer, sizeof(peer));
			cvm_daemon_log_limited(CVM_LOG_WARN, "connection_refused",
			                       "reason=max_connections_per_ip peer=%s cap=%llu", peer,
			                       (unsigned long long)cf->max_connections_per_ip);
			gw_count(g, GW_C_REFUSED_PER_IP, 1);
			conn_close(c);
			continue;
		}
		set_nodelay(fd);
		c->ep_c.c = c;
		c->ep_c.kind = EP_CLIENT;
		if (add_fd(w, fd, &c->ep_c, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) != 0) {
			conn_close(c);
			continue;
		}
		/* Edge-triggered: the ClientHello may already be there. */
		c->c_rd = true;
		c->c_wr = true;
		conn_run(c);
	}
}

static void sweep(struct worker *w, uint64_t now)
{
	struct gw_conf *cf = w->p->g->conf;
	uint64_t idle = cf->idle_timeout_s * 1000u;

	for (struct conn *c = w->head, *next; c != NULL; c = next) {
		next = c->next;
		if (c->hs_deadline != 0 && now >= c->hs_deadline)
			fail(c, GW_C_TIMEOUT_HANDSHAKE, "deadline", "handshake");
		else if (c->conn_deadline != 0 && now >= c->conn_deadline)
			fail(c, GW_C_TIMEOUT_CONNECT, "deadline", "connect");
		else if (now >= c->total_deadline)
			fail(c, GW_C_TIMEOUT_TOTAL, "deadline", "total");
		else if (c->state == ST_RELAY && now - c->last_io >= idle && c->linger_deadline == 0)
			fail(c, GW_C_TIMEOUT_IDLE, NULL, NULL);
		else if ((c->linger_deadline != 0 && now >= c->linger_deadline) ||
		         (w->drain_deadline != 0 && now >= w->drain_deadline))
			conn_close(c); /* a linger or a drain ended: nothing to count */
	}
}

static void free_dead(struct worker *w)
{
	while (w->dead != NULL) {
		struct conn *c = w->dead;

		w->dead = c->next;
		free(c);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct gw_proxy *p = w->p;
	struct epoll_event evs[256];
	bool first[256];
	uint64_t last_sweep = now_ms();

	for (;;) {
		int n = epoll_wait(w->ep, evs, 256, SWEEP_MS);
		uint64_t now;

		if (n < 0 && errno != EINTR)
			break;
		/* Two passes: first the connections that relay (a request or an
		 * answer waits: latency), then new connections and handshakes
		 * (each costs a signature: throughput). Under a flood of new
		 * connections the established ones are not served behind it. */
		/* Each event is classified once, before either pass: one handled
		 * in the first pass may move another's connection to RELAY, and
		 * with edge-triggered events none may be skipped. */
		for (int i = 0; i < n; i++) {
			const struct ep *e = evs[i].data.ptr;

			first[i] = (e->kind == EP_CLIENT || e->kind == EP_BACKEND) && e->c->state == ST_RELAY;
		}
		for (int pass = 0; pass < 2; pass++) {
			for (int i = 0; i < n; i++) {
				struct ep *e = evs[i].data.ptr;

				if (first[i] != (pass == 0))
					continue;
				if (e->kind == EP_LISTEN) {
					do_accept(w);
				} else if (e->kind == EP_DNS) {
					dns_event(w, e, evs[i].events);
				} else if (e->kind == EP_WAKE) {
					uint64_t v;
					ssize_t got = read(w->wake, &v, sizeof(v));

					(void)got; /* only the wake-up matters */
				} else {
					on_event(e, evs[i].events);
				}
			}
		}
		free_dead(w);
		if (atomic_load(&p->stop))
			break;
		if (atomic_load(&p->drain) && w->listening) {
			(void)epoll_ctl(w->ep, EPOLL_CTL_DEL, p->lfd, NULL);
			w->listening = false;
			w->drain_deadline = now_ms() + p->g->conf->drain_timeout_s * 1000u;
		}
		now = now_ms();
		if (now - last_sweep >= SWEEP_MS) {
			if (w->dns != NULL) /* c-ares's own timeouts and retries */
				ares_process_fd(w->dns, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
			sweep(w, now);
			free_dead(w);
			last_sweep = now;
		}
	}
	while (w->head != NULL)
		conn_close(w->head);
	free_dead(w);
	return NULL;
}

static int listen_one(const struct cvm_addr *a, uint16_t port, int defer_s, int *out, char *err,
                      size_t err_len)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, a->host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
		((struct sockaddr_in *)&ss)->sin_family = AF_INET;
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
		sl = sizeof(struct sockaddr_in);
	} else if (inet_pton(AF_INET6, a->host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
		sl = sizeof(struct sockaddr_in6);
	} else {
		(void)snprintf(err, err_len, "[gateway] listen: '%s' is not a numeric IP address", a->host);
		return CVM_E_FORMAT;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) != 0 || listen(fd, 4096) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof(defer_s)) != 0) {
		(void)snprintf(err, err_len, "cannot listen on %s:%u: %s", a->host, (unsigned)port,
		               strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		return CVM_E_SYSTEM;
	}
	*out = fd;
	return CVM_OK;
}

static unsigned worker_count(const struct gw_conf *c)
{
	long n;

	if (c->workers > 0)
		return (unsigned)c->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if ((unsigned long)n > GW_WORKERS_MAX)
		n = GW_WORKERS_MAX;
	return (unsigned)n;
}

int gw_proxy_start(struct gw_ctx *g, struct gw_proxy **out, uint16_t *port, char *err, size_t err_len)
{
	struct gw_proxy *p;
	struct cvm_addr a;
	unsigned n = worker_count(g->conf);
	int r;

	*out = NULL;
	if (g->conf->dns_custom_domains && ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
		(void)snprintf(err, err_len, "cannot start c-ares (custom domains)");
		return CVM_E_SYSTEM;
	}
	if (cvm_addr_parse(g->conf->listen, &a) != CVM_OK || a.kind != CVM_ADDR_TCP) {
		(void)snprintf(err, err_len, "[gateway] listen: '%s' is not HOST:PORT", g->conf->listen);
		return CVM_E_FORMAT;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return CVM_E_NOMEM;
	p->g = g;
	for (size_t i = 0; i < IP_SHARDS; i++)
		(void)pthread_mutex_init(&p->ips[i].lock, NULL);
	(void)pthread_mutex_init(&p->dns_lock, NULL);
	p->w = calloc(n, sizeof(*p->w));
	if (p->w == NULL) {
		free(p);
		return CVM_E_NOMEM;
	}
	p->n_w = n;
	p->lfd = -1;
	for (size_t i = 0; i < n; i++)
		p->w[i].ep = p->w[i].wake = -1;
	/* One listener shared by the workers: with EPOLLEXCLUSIVE the kernel
	 * wakes one worker that waits, so a new connection goes to a worker
	 * that is idle rather than to the one a hash of its address picks
	 * (SO_REUSEPORT's way), which keeps handshake latency even under load.
	 * SO_REUSEPORT is still set so that a new gateway can bind the port
	 * while this one drains. */
	/* TCP_DEFER_ACCEPT: a connection is handed over once its first bytes
	 * (the ClientHello) are there, so no worker wakes for a peer that has
	 * sent nothing, and the hello is parsed at accept time. */
	r = listen_one(&a, a.port, (int)g->conf->handshake_timeout_s, &p->lfd, err, err_len);
	if (r != CVM_OK)
		goto fail;
	*port = a.port;
	if (*port == 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		(void)getsockname(p->lfd, (struct sockaddr *)&ss, &sl);
		*port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
		                                      : ((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	for (size_t i = 0; i < n; i++) {
		struct worker *w = &p->w[i];

		w->p = p;
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		w->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		w->peek = malloc(PEEK_LEN);
		w->bufs = calloc(256, sizeof(*w->bufs));
		w->ep_l.kind = EP_LISTEN;
		w->ep_w.kind = EP_WAKE;
		if (g->conf->dns_custom_domains && w->ep >= 0) {
			r = dns_init(w, err, err_len);
			if (r != CVM_OK)
				goto fail;
		}
		if (w->ep < 0 || w->wake < 0 || w->peek == NULL || w->bufs == NULL ||
		    add_fd(w, p->lfd, &w->ep_l, EPOLLIN | EPOLLEXCLUSIVE) != 0 ||
		    add_fd(w, w->wake, &w->ep_w, EPOLLIN) != 0) {
			(void)snprintf(err, err_len, "cannot set up worker %zu: %s", i, strerror(errno));
			r = CVM_E_SYSTEM;
			goto fail;
		}
		w->listening = true;
	}
	for (size_t i = 0; i < n; i++) {
		if (pthread_create(&p->w[i].th, NULL, worker_main, &p->w[i]) != 0) {
			(void)snprintf(err, err_len, "cannot start worker %zu", i);
			r = CVM_E_SYSTEM;
			goto fail;
		}
		p->w[i].started = true;
	}
	*out = p;
	return CVM_OK;
fail:
	gw_proxy_stop(p);
	return r;
}

static void wake_all(struct gw_proxy *p)
{
	uint64_t one = 1;

	for (size_t i = 0; i < p->n_w; i++)
		if (p->w[i].wake >= 0)
			if (write(p->w[i].wake, &one, sizeof(one)) < 0)
				continue; /* the counter is full: the worker wakes anyway */
}

void gw_proxy_drain(struct gw_proxy *p)
{
	atomic_store(&p->drain, true);
	/* No new connection from now on (the kernel refuses them); the
	 * workers take the listener out of their loops, and gw_proxy_stop
	 * closes it. */
	(void)shutdown(p->lfd, SHUT_RDWR);
	wake_all(p);
}

unsigned gw_proxy_active(struct gw_proxy *p)
{
	return atomic_load(&p->active);
}

void gw_proxy_stop(struct gw_proxy *p)
{
	if (p == NULL)
		return;
	atomic_store(&p->stop, true);
	wake_all(p);
	for (size_t i = 0; i < p->n_w; i++) {
		struct worker *w = &p->w[i];

		if (w->started)
			(void)pthread_join(w->th, NULL);
		if (w->ep >= 0)
			(void)close(w->ep);
		if (w->wake >= 0)
			(void)close(w->wake);
		if (w->dns != NULL) /* after the connections: pending answers find none */
			ares_destroy(w->dns);
		free(w->peek);
		for (size_t k = 0; k < w->n_bufs; k++)
			free(w->bufs[k]);
		free(w->bufs);
	}
	if (p->lfd >= 0)
		(void)close(p->lfd);
	dns_cache_clear(p);
	(void)pthread_mutex_destroy(&p->dns_lock);
	for (size_t i = 0; i < IP_SHARDS; i++) {
		struct ip_ent *e = p->ips[i].head;

		while (e != NULL) {
			struct ip_ent *next = e->next;

			free(e);
			e = next;
		}
		(void)pthread_mutex_destroy(&p->ips[i].lock);
	}
	free(p->w);
	free(p);
}

/* The routing table: instance id -> instance, app id -> its instances.
 *
 * Workers read it on every new connection (gw_routes_pick, under the read
 * lock, copying addresses out); the control plane writes it (registration,
 * the cluster's watch, health updates). An app's record is reference
 * counted so that a connection can keep counting against its app's limit
 * after the app's last instance went away. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/err.h>
#include <cvmkit/file.h>

#include "gw.h"

#define BUCKETS 4096u /* a power of two */

struct app_ent {
	struct gw_app pub; /* first: gw_app pointers are app_ent pointers */
	struct gw_inst **insts;
	size_t n, cap;
	bool in_table;
};

struct gw_routes {
	pthread_rwlock_t lock;
	struct gw_inst *inst_tab[BUCKETS];
	struct gw_app *app_tab[BUCKETS];
	size_t n_inst, n_app;
	int64_t stale_s; /* an app's instance is eligible while its handshake is younger */
};

static uint32_t hash_id(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (uint8_t)*s;
		h *= 16777619u;
	}
	return h & (BUCKETS - 1);
}

int gw_routes_new(int64_t stale_s, struct gw_routes **out)
{
	struct gw_routes *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (r == NULL)
		return CVM_E_NOMEM;
	r->stale_s = stale_s;
	if (pthread_rwlock_init(&r->lock, NULL) != 0) {
		free(r);
		return CVM_E_SYSTEM;
	}
	*out = r;
	return CVM_OK;
}

static void app_unref(struct gw_app *a)
{
	struct app_ent *e = (struct app_ent *)a;

	if (atomic_fetch_sub(&a->refs, 1) == 1) {
		free(e->insts);
		free(e);
	}
}

void gw_routes_free(struct gw_routes *r)
{
	if (r == NULL)
		return;
	for (size_t b = 0; b < BUCKETS; b++) {
		struct gw_inst *i = r->inst_tab[b];

		while (i != NULL) {
			struct gw_inst *next = i->next;

			free(i);
			i = next;
		}
		struct gw_app *a = r->app_tab[b];

		while (a != NULL) {
			struct gw_app *next = a->next;

			((struct app_ent *)a)->in_table = false;
			app_unref(a);
			a = next;
		}
	}
	(void)pthread_rwlock_destroy(&r->lock);
	free(r);
}

static struct gw_inst *find_inst(struct gw_routes *r, const char *id, struct gw_inst ***link)
{
	struct gw_inst **p = &r->inst_tab[hash_id(id)];

	for (; *p != NULL; p = &(*p)->next) {
		if (strcmp((*p)->id, id) == 0) {
			if (link != NULL)
				*link = p;
			return *p;
		}
	}
	return NULL;
}

static struct app_ent *find_app(struct gw_routes *r, const char *id, struct gw_app ***link)
{
	struct gw_app **p = &r->app_tab[hash_id(id)];

	for (; *p != NULL; p = &(*p)->next) {
		if (strcmp((*p)->id, id) == 0) {
			if (link != NULL)
				*link = p;
			return (struct app_ent *)*p;
		}
	}
	return NULL;
}

static void app_detach(struct gw_routes *r, struct app_ent *a, struct gw_inst *inst)
{
	struct gw_app **link = NULL;

	for (size_t k = 0; k < a->n; k++) {
		if (a->insts[k] == inst) {
			a->insts[k] = a->insts[a->n - 1];
			a->n--;
			break;
		}
	}
	if (a->n == 0 && find_app(r, a->pub.id, &link) == a) {
		*link = a->pub.next;
		a->pub.next = NULL;
		a->in_table = false;
		r->n_app--;
		app_unref(&a->pub);
	}
}

int gw_routes_put(struct gw_routes *r, const struct gw_inst *src)
{
	struct gw_inst *inst, *old, **link = NULL;
	struct app_ent *a;
	int rc = CVM_OK;

	inst = malloc(sizeof(*inst));
	if (inst == NULL)
		return CVM_E_NOMEM;
	*inst = *src;
	inst->next = NULL;
	(void)pthread_rwlock_wrlock(&r->lock);
	old = find_inst(r, inst->id, &link);
	if (old != NULL) {
		*link = old->next;
		r->n_inst--;
		app_detach(r, (struct app_ent *)old->app, old);
		free(old);
	}
	a = find_app(r, inst->app_id, NULL);
	if (a == NULL) {
		uint32_t h = hash_id(inst->app_id);

		a = calloc(1, sizeof(*a));
		if (a == NULL) {
			rc = CVM_E_NOMEM;
			goto out;
		}
		(void)snprintf(a->pub.id, sizeof(a->pub.id), "%s", inst->app_id);
		atomic_init(&a->pub.refs, 1); /* the table's */
		atomic_init(&a->pub.conns, 0);
		a->pub.next = r->app_tab[h];
		r->app_tab[h] = &a->pub;
		a->in_table = true;
		r->n_app++;
	}
	if (a->n == a->cap) {
		size_t cap = a->cap == 0 ? 4 : a->cap * 2;
		struct gw_inst **v = realloc(a->insts, cap * sizeof(struct gw_inst *));

		if (v == NULL) {
			if (a->n == 0)
				app_detach(r, a, NULL);
			rc = CVM_E_NOMEM;
			goto out;
		}
		a->insts = v;
		a->cap = cap;
	}
	a->insts[a->n++] = inst;
	inst->app = &a->pub;
	{
		uint32_t h = hash_id(inst->id);

		inst->next = r->inst_tab[h];
		r->inst_tab[h] = inst;
		r->n_inst++;
	}
	inst = NULL; /* transferred */
out:
	(void)pthread_rwlock_unlock(&r->lock);
	free(inst);
	return rc;
}

int gw_routes_remove(struct gw_routes *r, const char *instance_id)
{
	struct gw_inst *old, **link = NULL;

	(void)pthread_rwlock_wrlock(&r->lock);
	old = find_inst(r, instance_id, &link);
	if (old != NULL) {
		*link = old->next;
		r->n_inst--;
		app_detach(r, (struct app_ent *)old->app, old);
	}
	(void)pthread_rwlock_unlock(&r->lock);
	if (old == NULL)
		return CVM_E_NOT_FOUND;
	free(old);
	return CVM_OK;
}

static bool eligible(const struct gw_inst *i, int64_t now, int64_t stale)
{
	return i->is_static || (i->last_handshake > 0 && now - i->last_handshake < stale);
}

static void fill_pick(struct gw_pick *p, const struct gw_inst *i, uint16_t port)
{
	p->addr = i->addr;
	p->addr_len = i->addr_len;
	p->send_proxy = i->send_proxy;
	if (p->addr.ss_family == AF_INET)
		((struct sockaddr_in *)&p->addr)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&p->addr)->sin6_port = htons(port);
}

size_t gw_routes_pick(struct gw_routes *r, const char *id, uint16_t port, int64_t now, struct gw_pick *out,
                      size_t max, struct gw_app **app_out)
{
	const struct gw_inst *best[GW_TOP_N_MAX];
	struct gw_inst *inst;
	struct app_ent *a;
	size_t n = 0;

	*app_out = NULL;
	if (max > GW_TOP_N_MAX)
		max = GW_TOP_N_MAX;
	(void)pthread_rwlock_rdlock(&r->lock);
	inst = find_inst(r, id, NULL);
	if (inst != NULL) {
		/* An instance asked by its id gets the connection even when its
		 * handshake is old: the client chose it. It still needs one. */
		if (inst->is_static || inst->last_handshake > 0) {
			fill_pick(&out[0], inst, port);
			n = 1;
			*app_out = inst->app;
		}
	} else if ((a = find_app(r, id, NULL)) != NULL) {
		for (size_t k = 0; k < a->n; k++) {
			const struct gw_inst *c = a->insts[k];
			size_t pos;

			if (!eligible(c, now, r->stale_s))
				continue;
			/* insertion into the top `max`, most recent handshake first */
			pos = n;
			while (pos > 0 && best[pos - 1]->last_handshake < c->last_handshake)
				pos--;
			if (pos >= max)
				continue;
			if (n < max)
				n++;
			memmove(&best[pos + 1], &best[pos], (n - 1 - pos) * sizeof(const struct gw_inst *));
			best[pos] = c;
		}
		for (size_t k = 0; k < n; k++)
			fill_pick(&out[k], best[k], port);
		if (n > 0)
			*app_out = &a->pub;
	}
	if (*app_out != NULL)
		atomic_fetch_add(&(*app_out)->refs, 1);
	(void)pthread_rwlock_unlock(&r->lock);
	return n;
}

void gw_routes_app_put(struct gw_routes *r, struct gw_app *app)
{
	(void)r;
	if (app != NULL)
		app_unref(app);
}

size_t gw_routes_count(struct gw_routes *r, size_t *apps)
{
	size_t n;

	(void)pthread_rwlock_rdlock(&r->lock);
	n = r->n_inst;
	if (apps != NULL)
		*apps = r->n_app;
	(void)pthread_rwlock_unlock(&r->lock);
	return n;
}

/* id_ok: what the ingress parser can produce as an id (lower case). */
static bool id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > GW_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i])))
			return false;
	return true;
}

int gw_routes_load_dev(struct gw_routes *r, const char *path, char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	size_t len = 0, i;
	json_t *root, *e;
	json_error_t je;
	int rc;

	rc = cvm_file_read(path, (size_t)4 * 1024 * 1024, &buf, &len);
	if (rc != CVM_OK) {
		(void)snprintf(err, err_len, "[dev] instances: cannot read %s: %s", path,
		               rc == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(rc));
		return rc;
	}
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	free(buf);
	if (root == NULL || !json_is_array(root)) {
		(void)snprintf(err, err_len, "[dev] instances: %s is not a JSON array (line %d: %s)", path,
		               je.line, je.text);
		json_decref(root);
		return CVM_E_FORMAT;
	}
	json_array_foreach(root, i, e)
	{
		struct gw_inst inst;
		const char *iid = json_string_value(json_object_get(e, "instance_id"));
		const char *aid = json_string_value(json_object_get(e, "app_id"));
		const char *ip = json_string_value(json_object_get(e, "address"));
		json_t *pp = json_object_get(e, "proxy_protocol");
		struct sockaddr_in *s4 = (struct sockaddr_in *)&inst.addr;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&inst.addr;

		memset(&inst, 0, sizeof(inst));
		if (iid == NULL || aid == NULL || ip == NULL || !id_ok(iid) || !id_ok(aid) ||
		    (pp != NULL && !json_is_boolean(pp))) {
			(void)snprintf(
			    err, err_len,
			    "[dev] instances: entry %zu needs instance_id and app_id (lower-case "
			    "letters and digits, at most %d), address (an IP) and an optional boolean "
			    "proxy_protocol",
			    i, GW_ID_MAX);
			rc = CVM_E_FORMAT;
			break;
		}
		if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
			s4->sin_family = AF_INET;
			inst.addr_len = sizeof(*s4);
		} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
			s6->sin6_family = AF_INET6;
			inst.addr_len = sizeof(*s6);
		} else {
			(void)snprintf(err, err_len, "[dev] instances: entry %zu: '%s' is not an IP address",
			               i, ip);
			rc = CVM_E_FORMAT;
			break;
		}
		(void)snprintf(inst.id, sizeof(inst.id), "%s", iid);
		(void)snprintf(inst.app_id, sizeof(inst.app_id), "%s", aid);
		inst.is_static = true;
		inst.send_proxy = json_is_true(pp);
		rc = gw_routes_put(r, &inst);
		if (rc != CVM_OK) {
			(void)snprintf(err, err_len, "[dev] instances: %s", cvm_strerror(rc));
			break;
		}
	}
	json_decref(root);
	return rc;
}

json_t *gw_routes_json(struct gw_routes *r)
{
	json_t *arr = json_array();

	if (arr == NULL)
		return NULL;
	(void)pthread_rwlock_rdlock(&r->lock);
	for (size_t b = 0; b < BUCKETS; b++) {
		for (const struct gw_inst *i = r->inst_tab[b]; i != NULL; i = i->next) {
			char a[INET6_ADDRSTRLEN] = "";
			const void *src =
			    i->addr.ss_family == AF_INET
			        ? (const void *)&((const struct sockaddr_in *)&i->addr)->sin_addr
			        : (const void *)&((const struct sockaddr_in6 *)&i->addr)->sin6_addr;

			char key[CVM_WG_KEY_B64_LEN + 1] = "";

			(void)inet_ntop(i->addr.ss_family, src, a, sizeof(a));
			if (i->has_wg_key)
				cvm_wg_key_to_base64(i->wg_key, key);
			if (json_array_append_new(
			        arr, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:b, s:b, s:I}", "instance_id",
			                       i->id, "app_id", i->app_id, "address", a, "wg_public_key", key,
			                       "reg_time", (json_int_t)i->reg_time, "last_handshake",
			                       (json_int_t)i->last_handshake, "static", i->is_static,
			                       "proxy_protocol", i->send_proxy, "app_connections",
			                       (json_int_t)atomic_load(&i->app->conns))) != 0)
				break;
		}
	}
	(void)pthread_rwlock_unlock(&r->lock);
	return arr;
}

bool gw_routes_get(struct gw_routes *r, const char *id, struct gw_inst *out)
{
	const struct gw_inst *i;

	(void)pthread_rwlock_rdlock(&r->lock);
	i = find_inst(r, id, NULL);
	if (i != NULL) {
		*out = *i;
		out->app = NULL;
		out->next = NULL;
	}
	(void)pthread_rwlock_unlock(&r->lock);
	return i != NULL;
}

bool gw_routes_by_key(struct gw_routes *r, const uint8_t key[CVM_WG_KEY_LEN], char id_out[GW_ID_MAX + 1])
{
	bool found = false;

	(void)pthread_rwlock_rdlock(&r->lock);
	for (size_t b = 0; b < BUCKETS && !found; b++) {
		for (const struct gw_inst *i = r->inst_tab[b]; i != NULL; i = i->next) {
			if (i->has_wg_key && memcmp(i->wg_key, key, CVM_WG_KEY_LEN) == 0) {
				(void)snprintf(id_out, GW_ID_MAX + 1, "%s", i->id);
				found = true;
				break;
			}
		}
	}
	(void)pthread_rwlock_unlock(&r->lock);
	return found;
}

size_t gw_routes_app_count(struct gw_routes *r, const char *app_id)
{
	const struct app_ent *a;
	size_t n = 0;

	(void)pthread_rwlock_rdlock(&r->lock);
	a = find_app(r, app_id, NULL);
	if (a != NULL)
		n = a->n;
	(void)pthread_rwlock_unlock(&r->lock);
	return n;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(((const struct cvm_wg_peer *)a)->public_key,
	              ((const struct cvm_wg_peer *)b)->public_key, CVM_WG_KEY_LEN);
}

void gw_routes_set_handshakes(struct gw_routes *r, const struct cvm_wg_device *d)
{
	/* The peers sorted by key, then one binary search per instance. */
	qsort(d->peers, d->peer_count, sizeof(d->peers[0]), key_cmp);
	(void)pthread_rwlock_wrlock(&r->lock);
	for (size_t b = 0; b < BUCKETS; b++) {
		for (struct gw_inst *i = r->inst_tab[b]; i != NULL; i = i->next) {
			struct cvm_wg_peer probe;
			const struct cvm_wg_peer *p;

			if (!i->has_wg_key)
				continue;
			memcpy(probe.public_key, i->wg_key, CVM_WG_KEY_LEN);
			p = bsearch(&probe, d->peers, d->peer_count, sizeof(d->peers[0]), key_cmp);
			i->last_handshake = p != NULL ? p->last_handshake_sec : 0;
		}
	}
	(void)pthread_rwlock_unlock(&r->lock);
}

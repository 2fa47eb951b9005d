/* cvm-vmmd's state: one SQLite database (run_dir/vmm.db, WAL), one row per
 * VM, every change in a transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "vmm.h"

struct vmm_db {
	sqlite3 *h;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS vms ("
    " id TEXT PRIMARY KEY,"
    " name TEXT NOT NULL UNIQUE,"
    " state TEXT NOT NULL,"
    " config TEXT NOT NULL,"
    " compose_hash TEXT NOT NULL DEFAULT '',"
    " app_id TEXT NOT NULL DEFAULT '',"
    " cid INTEGER NOT NULL UNIQUE,"
    " ports TEXT NOT NULL DEFAULT '[]',"
    " pid INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL,"
    " updated INTEGER NOT NULL,"
    " started INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT NOT NULL DEFAULT '',"
    " boot_progress TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    /* what each start went through, with the time (deploy -v) */
    "CREATE TABLE IF NOT EXISTS progress (vm_id TEXT NOT NULL, at_ms INTEGER NOT NULL,"
    " text TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS progress_vm ON progress (vm_id, at_ms);"
    "INSERT OR IGNORE INTO meta VALUES ('schema', 'cvm-vmmd 1');";

static void db_err(struct vmm_db *db, const char *what, char *err, size_t err_len)
{
	if (err != NULL)
		(void)snprintf(err, err_len, "%s: %s", what, sqlite3_errmsg(db->h));
}

int vmm_db_open(const char *path, struct vmm_db **out, char *err, size_t err_len)
{
	struct vmm_db *db;
	sqlite3_stmt *st = NULL;
	int r = CVM_E_SYSTEM;

	*out = NULL;
	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return CVM_E_NOMEM;
	if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		db_err(db, path, err, err_len);
		goto out;
	}
	(void)sqlite3_busy_timeout(db->h, 5000);
	if (sqlite3_exec(db->h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
	                 NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db->h, schema, NULL, NULL, NULL) != SQLITE_OK) {
		db_err(db, path, err, err_len);
		goto out;
	}
	if (sqlite3_prepare_v2(db->h, "SELECT value FROM meta WHERE key='schema'", -1, &st, NULL) !=
	        SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		db_err(db, path, err, err_len);
		goto out;
	}
	if (strcmp((const char *)sqlite3_column_text(st, 0), "cvm-vmmd 1") != 0) {
		(void)snprintf(err, err_len, "%s is not a cvm-vmmd database of schema 1", path);
		r = CVM_E_FORMAT;
		goto out;
	}
	*out = db;
	db = NULL;
	r = CVM_OK;
out:
	sqlite3_finalize(st);
	vmm_db_close(db);
	return r;
}

void vmm_db_close(struct vmm_db *db)
{
	if (db == NULL)
		return;
	(void)sqlite3_close(db->h);
	free(db);
}

static int begin(struct vmm_db *db)
{
	return sqlite3_exec(db->h, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? CVM_OK : CVM_E_SYSTEM;
}

static int commit(struct vmm_db *db)
{
	if (sqlite3_exec(db->h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return CVM_OK;
	(void)sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
	return CVM_E_SYSTEM;
}

static void rollback(struct vmm_db *db)
{
	(void)sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

/* ---- the config JSON ---------------------------------------------------- */

static json_t *str_list(const char (*a)[VMM_URL_MAX], size_t n)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr != NULL && i < n; i++) {
		if (json_array_append_new(arr, json_string(a[i])) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

json_t *vmm_spec_to_json(const struct vmm_spec *s)
{
	json_t *ports = json_array(), *imgs, *o;

	for (size_t i = 0; ports != NULL && i < s->port_count; i++) {
		const struct vmm_port *p = &s->ports[i];

		if (json_array_append_new(ports,
		                          json_pack("{s:s,s:i,s:i,s:s}", "protocol", p->protocol, "host_port",
		                                    (int)p->host_port, "vm_port", (int)p->vm_port,
		                                    "host_address", p->host_address)) != 0) {
			json_decref(ports);
			return NULL;
		}
	}
	if (ports == NULL)
		return NULL;
	imgs = json_array();
	for (size_t i = 0; imgs != NULL && i < s->app_image_count; i++) {
		if (json_array_append_new(imgs, json_string(s->app_images[i])) != 0) {
			json_decref(imgs);
			imgs = NULL;
		}
	}
	if (imgs == NULL) {
		json_decref(ports);
		return NULL;
	}
	o = json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:s,s:o*,s:o*,s:b}", "name", s->name, "image", s->image,
	              "vcpu", (json_int_t)s->vcpu, "memory", (json_int_t)s->memory_mb, "disk_size",
	              (json_int_t)s->disk_gb, "ports", ports, "app_id", s->app_id, "kms_urls",
	              str_list(s->kms_urls, s->kms_url_count), "gateway_urls",
	              str_list(s->gateway_urls, s->gateway_url_count), "stopped", s->stopped);
	if (o != NULL && json_object_set_new(o, "app_images", imgs) != 0) {
		json_decref(o);
		return NULL;
	}
	if (o == NULL)
		json_decref(imgs);
	return o;
}

static int copy_str(const json_t *j, const char *key, char *dst, size_t cap)
{
	const json_t *v = json_object_get(j, key);

	if (!json_is_string(v) || json_string_length(v) >= cap)
		return CVM_E_FORMAT;
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return CVM_OK;
}

static int copy_list(const json_t *j, const char *key, char (*dst)[VMM_URL_MAX], size_t *n)
{
	const json_t *a = json_object_get(j, key), *e;
	size_t i;

	*n = 0;
	if (a == NULL)
		return CVM_OK;
	if (!json_is_array(a) || json_array_size(a) > VMM_URLS_MAX)
		return CVM_E_FORMAT;
	json_array_foreach(a, i, e)
	{
		if (!json_is_string(e) || json_string_length(e) >= VMM_URL_MAX)
			return CVM_E_FORMAT;
		memcpy(dst[i], json_string_value(e), json_string_length(e) + 1);
		(*n)++;
	}
	return CVM_OK;
}

static int get_u32(const json_t *j, const char *key, uint32_t *out)
{
	const json_t *v = json_object_get(j, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 0xffffffffll)
		return CVM_E_FORMAT;
	*out = (uint32_t)json_integer_value(v);
	return CVM_OK;
}

int vmm_spec_from_json(const json_t *j, struct vmm_spec *s)
{
	const json_t *ports, *imgs, *p;
	size_t i;
	uint32_t hp, vp;

	memset(s, 0, sizeof(*s));
	if (!json_is_object(j) || copy_str(j, "name", s->name, sizeof(s->name)) != CVM_OK ||
	    copy_str(j, "image", s->image, sizeof(s->image)) != CVM_OK ||
	    copy_str(j, "app_id", s->app_id, sizeof(s->app_id)) != CVM_OK ||
	    get_u32(j, "vcpu", &s->vcpu) != CVM_OK || get_u32(j, "memory", &s->memory_mb) != CVM_OK ||
	    get_u32(j, "disk_size", &s->disk_gb) != CVM_OK ||
	    copy_list(j, "kms_urls", s->kms_urls, &s->kms_url_count) != CVM_OK ||
	    copy_list(j, "gateway_urls", s->gateway_urls, &s->gateway_url_count) != CVM_OK)
		return CVM_E_FORMAT;
	s->stopped = json_is_true(json_object_get(j, "stopped"));
	imgs = json_object_get(j, "app_images"); /* absent in rows of older versions */
	if (imgs != NULL && (!json_is_array(imgs) || json_array_size(imgs) > VMM_APP_IMAGES_MAX))
		return CVM_E_FORMAT;
	json_array_foreach(imgs, i, p)
	{
		if (!json_is_string(p) || json_string_length(p) > VMM_NAME_MAX)
			return CVM_E_FORMAT;
		memcpy(s->app_images[i], json_string_value(p), json_string_length(p) + 1);
		s->app_image_count++;
	}
	ports = json_object_get(j, "ports");
	if (!json_is_array(ports) || json_array_size(ports) > VMM_PORTS_MAX)
		return CVM_E_FORMAT;
	json_array_foreach(ports, i, p)
	{
		struct vmm_port *d = &s->ports[i];

		if (copy_str(p, "protocol", d->protocol, sizeof(d->protocol)) != CVM_OK ||
		    copy_str(p, "host_address", d->host_address, sizeof(d->host_address)) != CVM_OK ||
		    get_u32(p, "host_port", &hp) != CVM_OK || get_u32(p, "vm_port", &vp) != CVM_OK ||
		    hp > 65535 || vp > 65535)
			return CVM_E_FORMAT;
		d->host_port = (uint16_t)hp;
		d->vm_port = (uint16_t)vp;
		s->port_count++;
	}
	return CVM_OK;
}

/* ---- rows ---------------------------------------------------------------- */

#define COLS                                                                                               \
	"id, name, state, config, compose_hash, app_id, cid, pid, created, updated, started, last_error, " \
	"boot_progress"

static void col_str(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	(void)snprintf(dst, cap, "%s", t != NULL ? (const char *)t : "");
}

static int row_read(sqlite3_stmt *st, struct vmm_vm *vm)
{
	const unsigned char *cfg;
	json_t *j;
	int r;

	memset(vm, 0, sizeof(*vm));
	col_str(st, 0, vm->id, sizeof(vm->id));
	col_str(st, 1, vm->name, sizeof(vm->name));
	col_str(st, 2, vm->state, sizeof(vm->state));
	cfg = sqlite3_column_text(st, 3);
	col_str(st, 4, vm->compose_hash, sizeof(vm->compose_hash));
	col_str(st, 5, vm->app_id, sizeof(vm->app_id));
	vm->cid = (uint32_t)sqlite3_column_int64(st, 6);
	vm->pid = sqlite3_column_int64(st, 7);
	vm->created = sqlite3_column_int64(st, 8);
	vm->updated = sqlite3_column_int64(st, 9);
	vm->started = sqlite3_column_int64(st, 10);
	col_str(st, 11, vm->last_error, sizeof(vm->last_error));
	col_str(st, 12, vm->boot_progress, sizeof(vm->boot_progress));
	j = json_loads(cfg != NULL ? (const char *)cfg : "", 0, NULL);
	r = vmm_spec_from_json(j, &vm->spec);
	json_decref(j);
	return r;
}

int vmm_db_list(struct vmm_db *db, struct vmm_vm **out, size_t *count)
{
	sqlite3_stmt *st = NULL;
	struct vmm_vm *a = NULL, *na;
	size_t n = 0, cap = 0;
	int r = CVM_E_SYSTEM, s;

	*out = NULL;
	*count = 0;
	if (sqlite3_prepare_v2(db->h, "SELECT " COLS " FROM vms ORDER BY created, rowid", -1, &st, NULL) !=
	    SQLITE_OK)
		goto out;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			na = reallocarray(a, cap, sizeof(*a));
			if (na == NULL) {
				r = CVM_E_NOMEM;
				goto out;
			}
			a = na;
		}
		if (row_read(st, &a[n]) != CVM_OK) {
			r = CVM_E_FORMAT;
			goto out;
		}
		n++;
	}
	if (s != SQLITE_DONE)
		goto out;
	*out = a;
	*count = n;
	a = NULL;
	r = CVM_OK;
out:
	sqlite3_finalize(st);
	free(a);
	return r;
}

int vmm_db_get(struct vmm_db *db, const char *id_or_name, struct vmm_vm *out)
{
	sqlite3_stmt *st = NULL;
	int r = CVM_E_SYSTEM, s;

	if (sqlite3_prepare_v2(db->h,
	                       "SELECT " COLS " FROM vms WHERE id = ?1 UNION ALL SELECT " COLS
	                       " FROM vms WHERE name = ?1 AND id <> ?1 LIMIT 1",
	                       -1, &st, NULL) != SQLITE_OK)
		goto out;
	(void)sqlite3_bind_text(st, 1, id_or_name, -1, SQLITE_TRANSIENT);
	s = sqlite3_step(st);
	if (s == SQLITE_DONE)
		r = CVM_E_INVAL;
	else if (s == SQLITE_ROW)
		r = row_read(st, out);
out:
	sqlite3_finalize(st);
	return r;
}

/* port_conflict says whether `spec`'s host ports collide with another VM's
 * (same protocol and port; addresses are not told apart, since 0.0.0.0
 * covers every address). */
static int port_conflict(struct vmm_db *db, const char *self_id, const struct vmm_spec *spec, char *err,
                         size_t err_len)
{
	struct vmm_vm *all = NULL;
	size_t n = 0;
	int r;

	r = vmm_db_list(db, &all, &n);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < n && r == CVM_OK; i++) {
		if (strcmp(all[i].id, self_id) == 0)
			continue;
		for (size_t a = 0; a < spec->port_count && r == CVM_OK; a++) {
			for (size_t b = 0; b < all[i].spec.port_count; b++) {
				const struct vmm_port *x = &spec->ports[a], *y = &all[i].spec.ports[b];

				if (x->host_port == y->host_port && strcmp(x->protocol, y->protocol) == 0) {
					(void)snprintf(
					    err, err_len,
					    "host port %s:%u is already mapped by VM %s (%s); pick another "
					    "port",
					    x->protocol, (unsigned)x->host_port, all[i].name, all[i].id);
					r = CVM_E_POLICY;
					break;
				}
			}
		}
	}
	free(all);
	return r;
}

static int name_taken(struct vmm_db *db, const struct vmm_vm *vm, bool *taken)
{
	sqlite3_stmt *st = NULL;
	int s;

	*taken = false;
	if (sqlite3_prepare_v2(db->h, "SELECT 1 FROM vms WHERE name = ?1 OR id = ?1 OR name = ?2", -1, &st,
	                       NULL) != SQLITE_OK)
		return CVM_E_SYSTEM;
	(void)sqlite3_bind_text(st, 1, vm->name, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_text(st, 2, vm->id, -1, SQLITE_TRANSIENT);
	s = sqlite3_step(st);
	sqlite3_finalize(st);
	if (s == SQLITE_ROW)
		*taken = true;
	return s == SQLITE_ROW || s == SQLITE_DONE ? CVM_OK : CVM_E_SYSTEM;
}

static int free_cid(struct vmm_db *db, uint32_t start, uint32_t pool, uint32_t *out)
{
	sqlite3_stmt *st = NULL;
	uint64_t want = start;
	int s, r = CVM_E_SYSTEM;

	if (sqlite3_prepare_v2(db->h, "SELECT cid FROM vms WHERE cid >= ?1 AND cid < ?2 ORDER BY cid", -1,
	                       &st, NULL) != SQLITE_OK)
		return CVM_E_SYSTEM;
	(void)sqlite3_bind_int64(st, 1, start);
	(void)sqlite3_bind_int64(st, 2, (sqlite3_int64)start + pool);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t c = (uint64_t)sqlite3_column_int64(st, 0);

		if (c > want)
			break;
		want = c + 1;
	}
	if (s == SQLITE_ROW || s == SQLITE_DONE) {
		r = want < (uint64_t)start + pool ? CVM_OK : CVM_E_POLICY;
		*out = (uint32_t)want;
	}
	sqlite3_finalize(st);
	return r;
}

/* bind_config binds the config JSON at `idx` and its ports (the column
 * that lets an operator see the host's mappings with the sqlite3 tool) at
 * idx + 1. */
static int bind_config(sqlite3_stmt *st, int idx, const struct vmm_spec *spec)
{
	json_t *j = vmm_spec_to_json(spec);
	char *text, *ports;

	if (j == NULL)
		return CVM_E_NOMEM;
	text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	ports = json_dumps(json_object_get(j, "ports"), JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(j);
	if (text == NULL || ports == NULL) {
		free(text);
		free(ports);
		return CVM_E_NOMEM;
	}
	(void)sqlite3_bind_text(st, idx, text, -1, free);
	(void)sqlite3_bind_text(st, idx + 1, ports, -1, free);
	return CVM_OK;
}

int vmm_db_insert(struct vmm_db *db, struct vmm_vm *vm, uint32_t cid_start, uint32_t pool_size, char *err,
                  size_t err_len)
{
	sqlite3_stmt *st = NULL;
	bool taken;
	int r;

	r = begin(db);
	if (r != CVM_OK) {
		db_err(db, "cannot begin a transaction", err, err_len);
		return r;
	}
	r = name_taken(db, vm, &taken);
	if (r == CVM_OK && taken) {
		(void)snprintf(err, err_len, "a VM named %s already exists; pick another name or remove it",
		               vm->name);
		r = CVM_E_POLICY;
	}
	if (r == CVM_OK)
		r = port_conflict(db, vm->id, &vm->spec, err, err_len);
	if (r == CVM_OK) {
		r = free_cid(db, cid_start, pool_size, &vm->cid);
		if (r == CVM_E_POLICY)
			(void)snprintf(
			    err, err_len,
			    "the vsock CID pool is exhausted (%u VMs; [cvm] cid_pool_size): remove a VM "
			    "first",
			    pool_size);
	}
	if (r != CVM_OK)
		goto fail;
	vm->created = vm->updated = (int64_t)time(NULL);
	if (sqlite3_prepare_v2(db->h,
	                       "INSERT INTO vms (id, name, state, config, ports, compose_hash, app_id, cid, "
	                       "pid, created, updated) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?9)",
	                       -1, &st, NULL) != SQLITE_OK) {
		r = CVM_E_SYSTEM;
		goto fail;
	}
	(void)sqlite3_bind_text(st, 1, vm->id, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_text(st, 2, vm->name, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_text(st, 3, vm->state, -1, SQLITE_TRANSIENT);
	r = bind_config(st, 4, &vm->spec);
	if (r != CVM_OK)
		goto fail;
	(void)sqlite3_bind_text(st, 6, vm->compose_hash, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_text(st, 7, vm->app_id, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_int64(st, 8, vm->cid);
	(void)sqlite3_bind_int64(st, 9, vm->created);
	if (sqlite3_step(st) != SQLITE_DONE) {
		db_err(db, "cannot record the VM", err, err_len);
		r = CVM_E_SYSTEM;
		goto fail;
	}
	sqlite3_finalize(st);
	return commit(db);
fail:
	sqlite3_finalize(st);
	rollback(db);
	return r;
}

static int exec_one(struct vmm_db *db, sqlite3_stmt *st)
{
	int s = sqlite3_step(st);

	sqlite3_finalize(st);
	if (s != SQLITE_DONE) {
		rollback(db);
		return CVM_E_SYSTEM;
	}
	if (sqlite3_changes(db->h) != 1) {
		rollback(db);
		return CVM_E_INVAL;
	}
	return commit(db);
}

int vmm_db_set_state(struct vmm_db *db, const char *id, const char *state, int64_t pid, int64_t started,
                     const char *last_error)
{
	sqlite3_stmt *st = NULL;

	if (begin(db) != CVM_OK)
		return CVM_E_SYSTEM;
	if (sqlite3_prepare_v2(db->h,
	                       "UPDATE vms SET state = ?2, pid = ?3, started = ?4, updated = ?5, "
	                       "last_error = COALESCE(?6, last_error) WHERE id = ?1",
	                       -1, &st, NULL) != SQLITE_OK) {
		rollback(db);
		return CVM_E_SYSTEM;
	}
	(void)sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_text(st, 2, state, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_int64(st, 3, pid);
	(void)sqlite3_bind_int64(st, 4, started);
	(void)sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	if (last_error != NULL)
		(void)sqlite3_bind_text(st, 6, last_error, -1, SQLITE_TRANSIENT);
	else
		(void)sqlite3_bind_null(st, 6);
	return exec_one(db, st);
}

/* history_add appends to the VM's progress history (in the caller's
 * transaction), keeping its last VMM_HISTORY_MAX entries. */
static int history_add(struct vmm_db *db, const char *id, const char *text)
{
	struct timespec ts;
	sqlite3_stmt *st = NULL;
	int s;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	if (sqlite3_prepare_v2(db->h, "INSERT INTO progress VALUES (?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK)
		return CVM_E_SYSTEM;
	(void)sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_int64(st, 2, (sqlite3_int64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	(void)sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
	s = sqlite3_step(st);
	sqlite3_finalize(st);
	if (s != SQLITE_DONE)
		return CVM_E_SYSTEM;
	if (sqlite3_prepare_v2(db->h,
	                       "DELETE FROM progress WHERE vm_id = ?1 AND rowid NOT IN (SELECT rowid FROM "
	                       "progress WHERE vm_id = ?1 ORDER BY at_ms DESC, rowid DESC LIMIT ?2)",
	                       -1, &st, NULL) != SQLITE_OK)
		return CVM_E_SYSTEM;
	(void)sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_int(st, 2, VMM_HISTORY_MAX);
	s = sqlite3_step(st);
	sqlite3_finalize(st);
	return s == SQLITE_DONE ? CVM_OK : CVM_E_SYSTEM;
}

int vmm_db_history(struct vmm_db *db, const char *id, json_t **out)
{
	sqlite3_stmt *st = NULL;
	json_t *a = json_array();
	int s;

	*out = NULL;
	if (a == NULL)
		return CVM_E_NOMEM;
	if (sqlite3_prepare_v2(db->h,
	                       "SELECT at_ms, text FROM progress WHERE vm_id = ?1 ORDER BY at_ms, rowid", -1,
	                       &st, NULL) != SQLITE_OK) {
		json_decref(a);
		return CVM_E_SYSTEM;
	}
	(void)sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(st, 1);

		if (json_array_append_new(a, json_pack("{s:I,s:s}", "at_ms",
		                                       (json_int_t)sqlite3_column_int64(st, 0), "progress",
		                                       t != NULL ? (const char *)t : "")) != 0) {
			s = SQLITE_NOMEM;
			break;
		}
	}
	sqlite3_finalize(st);
	if (s != SQLITE_DONE) {
		json_decref(a);
		return CVM_E_SYSTEM;
	}
	*out = a;
	return CVM_OK;
}

int vmm_db_set_progress(struct vmm_db *db, const char *id, const char *progress, const char *error)
{
	sqlite3_stmt *st = NULL;

	if (begin(db) != CVM_OK)
		return CVM_E_SYSTEM;
	if ((progress != NULL && history_add(db, id, progress) != CVM_OK) ||
	    (error != NULL && error[0] != '\0' && history_add(db, id, "error") != CVM_OK)) {
		rollback(db);
		return CVM_E_SYSTEM;
	}
	if (sqlite3_prepare_v2(db->h,
	                       "UPDATE vms SET boot_progress = COALESCE(?2, boot_progress), "
	                       "last_error = COALESCE(?3, last_error), updated = ?4 WHERE id = ?1",
	                       -1, &st, NULL) != SQLITE_OK) {
		rollback(db);
		return CVM_E_SYSTEM;
	}
	(void)sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (progress != NULL)
		(void)sqlite3_bind_text(st, 2, progress, -1, SQLITE_TRANSIENT);
	else
		(void)sqlite3_bind_null(st, 2);
	if (error != NULL)
		(void)sqlite3_bind_text(st, 3, error, -1, SQLITE_TRANSIENT);
	else
		(void)sqlite3_bind_null(st, 3);
	(void)sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	return exec_one(db, st);
}

int vmm_db_set_spec(struct vmm_db *db, const struct vmm_vm *vm, char *err, size_t err_len)
{
	sqlite3_stmt *st = NULL;
	int r;

	if (begin(db) != CVM_OK)
		return CVM_E_SYSTEM;
	r = port_conflict(db, vm->id, &vm->spec, err, err_len);
	if (r != CVM_OK) {
		rollback(db);
		return r;
	}
	if (sqlite3_prepare_v2(
	        db->h,
	        "UPDATE vms SET config = ?2, ports = ?3, compose_hash = ?4, app_id = ?5, updated = ?6 "
	        "WHERE id = ?1",
	        -1, &st, NULL) != SQLITE_OK) {
		rollback(db);
		return CVM_E_SYSTEM;
	}
	(void)sqlite3_bind_text(st, 1, vm->id, -1, SQLITE_TRANSIENT);
	r = bind_config(st, 2, &vm->spec);
	if (r != CVM_OK) {
		sqlite3_finalize(st);
		rollback(db);
		return r;
	}
	(void)sqlite3_bind_text(st, 4, vm->compose_hash, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_text(st, 5, vm->app_id, -1, SQLITE_TRANSIENT);
	(void)sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
	return exec_one(db, st);
}

int vmm_db_delete(struct vmm_db *db, const char *id)
{
	sqlite3_stmt *st = NULL;

	if (begin(db) != CVM_OK)
		return CVM_E_SYSTEM;
	if (sqlite3_prepare_v2(db->h, "DELETE FROM progress WHERE vm_id = ?1", -1, &st, NULL) != SQLITE_OK) {
		rollback(db);
		return CVM_E_SYSTEM;
	}
	(void)sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_finalize(st);
		rollback(db);
		return CVM_E_SYSTEM;
	}
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db->h, "DELETE FROM vms WHERE id = ?1", -1, &st, NULL) != SQLITE_OK) {
		rollback(db);
		return CVM_E_SYSTEM;
	}
	(void)sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
	return exec_one(db, st);
}

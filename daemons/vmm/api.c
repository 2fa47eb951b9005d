/* cvm-vmmd's HTTP surface: dstack's Vmm service at /prpc/<Method> (JSON;
 * the prefixes "Teepod." and "Vmm." are trimmed as upstream does), and
 * GET /logs?id=&lines=N[&follow=1] (the VM's serial log; with follow, a
 * chunked stream of what the log gains, until the client goes or the VM is
 * removed). Every request needs a token
 * when [auth] tokens is set. Unknown JSON keys are refused by name. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/random.h>
#include <cvmkit/secret.h>

#include "daemon.h"
#include "rpc.h"
#include "vmm.h"
#include "webui.h"

#ifndef CVM_VERSION_STRING
#define CVM_VERSION_STRING "0.1.0"
#endif

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define LOG_MAX ((size_t)1024 * 1024) /* bytes of serial log a /logs answer holds */

/* ---- request checks ------------------------------------------------------- */

/* keys_known refuses a key of `o` that is not in `known`. */
static int keys_known(json_t *o, const char *const *known, size_t n, const char *what, char *err,
                      size_t err_len)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v)
	{
		bool ok = false;

		for (size_t i = 0; i < n && !ok; i++)
			ok = strcmp(k, known[i]) == 0;
		if (!ok) {
			(void)snprintf(err, err_len, "unknown field %.64s in %s", k, what);
			return CVM_E_FORMAT;
		}
		(void)v;
	}
	return CVM_OK;
}

static bool is_default(const json_t *v)
{
	return v == NULL || json_is_null(v) || json_is_false(v) ||
	       (json_is_string(v) && json_string_length(v) == 0) ||
	       (json_is_array(v) && json_array_size(v) == 0) ||
	       (json_is_object(v) && json_object_size(v) == 0) ||
	       (json_is_integer(v) && json_integer_value(v) == 0);
}

static int get_str(const json_t *o, const char *key, size_t max, const char **out, size_t *len, char *err,
                   size_t err_len)
{
	const json_t *v = json_object_get(o, key);

	*out = "";
	*len = 0;
	if (v == NULL || json_is_null(v))
		return CVM_OK;
	if (!json_is_string(v)) {
		(void)snprintf(err, err_len, "field %s must be a string", key);
		return CVM_E_FORMAT;
	}
	if (json_string_length(v) > max) {
		(void)snprintf(err, err_len, "field %s is too long (at most %zu bytes)", key, max);
		return CVM_E_TOO_LARGE;
	}
	if (memchr(json_string_value(v), '\0', json_string_length(v)) != NULL) {
		(void)snprintf(err, err_len, "field %s must not contain NUL", key);
		return CVM_E_FORMAT;
	}
	*out = json_string_value(v);
	*len = json_string_length(v);
	return CVM_OK;
}

static int get_uint(const json_t *o, const char *key, uint64_t max, bool *present, uint32_t *out, char *err,
                    size_t err_len)
{
	const json_t *v = json_object_get(o, key);

	*present = false;
	*out = 0;
	if (v == NULL || json_is_null(v))
		return CVM_OK;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max) {
		(void)snprintf(err, err_len, "field %s must be an integer from 0 to %llu", key,
		               (unsigned long long)max);
		return CVM_E_FORMAT;
	}
	*present = true;
	*out = (uint32_t)json_integer_value(v);
	return CVM_OK;
}

static bool vm_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > VMM_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int check_resources(const struct vmm_conf *c, uint32_t vcpu, uint32_t mem, uint32_t disk, char *err,
                           size_t err_len)
{
	if (vcpu == 0 || vcpu > c->max_vcpu) {
		(void)snprintf(err, err_len, "vcpu must be from 1 to %llu ([cvm] max_vcpu), not %u",
		               (unsigned long long)c->max_vcpu, (unsigned)vcpu);
		return CVM_E_POLICY;
	}
	if (mem == 0 || mem > c->max_memory_mb) {
		(void)snprintf(err, err_len, "memory must be from 1 to %llu MB ([cvm] max_memory_mb), not %u",
		               (unsigned long long)c->max_memory_mb, (unsigned)mem);
		return CVM_E_POLICY;
	}
	if (disk == 0 || disk > c->max_disk_gb) {
		(void)snprintf(err, err_len,
		               "disk_size must be from 1 to %llu GB ([cvm] max_disk_gb), not %u",
		               (unsigned long long)c->max_disk_gb, (unsigned)disk);
		return CVM_E_POLICY;
	}
	return CVM_OK;
}

static int parse_urls(const json_t *o, const char *key, char (*dst)[VMM_URL_MAX], size_t *n, char *err,
                      size_t err_len)
{
	const json_t *a = json_object_get(o, key), *e;
	size_t i;

	*n = 0;
	if (a == NULL || json_is_null(a))
		return CVM_OK;
	if (!json_is_array(a) || json_array_size(a) > VMM_URLS_MAX) {
		(void)snprintf(err, err_len, "field %s must be an array of at most %d URLs", key,
		               VMM_URLS_MAX);
		return CVM_E_FORMAT;
	}
	json_array_foreach(a, i, e)
	{
		if (!json_is_string(e) || json_string_length(e) == 0 ||
		    json_string_length(e) >= VMM_URL_MAX ||
		    strlen(json_string_value(e)) != json_string_length(e)) {
			(void)snprintf(err, err_len,
			               "field %s: each URL is a non-empty string under %d bytes", key,
			               VMM_URL_MAX);
			return CVM_E_FORMAT;
		}
		memcpy(dst[i], json_string_value(e), json_string_length(e) + 1);
		(*n)++;
	}
	return CVM_OK;
}

/* parse_app_images reads app_images (cvmkit): names of docker image
 * tarballs ("name.tar") in [vmm] app_image_dir, which the VM's share gets
 * and the guest loads before compose up (there is no registry here). */
static int parse_app_images(const json_t *o, struct vmm_spec *s, char *err, size_t err_len)
{
	const json_t *a = json_object_get(o, "app_images"), *e;
	size_t i;

	s->app_image_count = 0;
	if (a == NULL || json_is_null(a))
		return CVM_OK;
	if (!json_is_array(a) || json_array_size(a) > VMM_APP_IMAGES_MAX) {
		(void)snprintf(err, err_len, "field app_images must be an array of at most %d file names",
		               VMM_APP_IMAGES_MAX);
		return CVM_E_FORMAT;
	}
	json_array_foreach(a, i, e)
	{
		const char *name = json_string_value(e);
		size_t n = json_string_length(e);

		if (name == NULL || strlen(name) != n || !vmm_image_name_ok(name) || n < 5 ||
		    strcmp(name + n - 4, ".tar") != 0) {
			(void)snprintf(
			    err, err_len,
			    "app_images[%zu] must be the file name of a docker-save tarball in [vmm] "
			    "app_image_dir: NAME.tar, letters, digits, '.', '_' or '-'",
			    i);
			return CVM_E_FORMAT;
		}
		for (size_t k = 0; k < i; k++) {
			if (strcmp(s->app_images[k], name) == 0) {
				(void)snprintf(err, err_len, "app_images: %s is given twice", name);
				return CVM_E_FORMAT;
			}
		}
		memcpy(s->app_images[i], name, n + 1);
		s->app_image_count++;
	}
	return CVM_OK;
}

static int parse_ports(const struct vmm_conf *c, const json_t *o, struct vmm_spec *s, char *err,
                       size_t err_len)
{
	static const char *const known[] = {"protocol", "host_port", "vm_port", "host_address", "nic_index"};
	const json_t *a = json_object_get(o, "ports");
	json_t *p;
	size_t i;
	int r;

	s->port_count = 0;
	if (a == NULL || json_is_null(a))
		return CVM_OK;
	if (!json_is_array(a) || json_array_size(a) > VMM_PORTS_MAX) {
		(void)snprintf(err, err_len, "field ports must be an array of at most %d mappings",
		               VMM_PORTS_MAX);
		return CVM_E_FORMAT;
	}
	json_array_foreach(a, i, p)
	{
		struct vmm_port *d = &s->ports[i];
		const char *proto, *addr;
		size_t pl, al;
		uint32_t hp, vp, nic;
		bool has_hp, has_vp, has_nic;

		if (!json_is_object(p)) {
			(void)snprintf(err, err_len, "ports[%zu] must be an object", i);
			return CVM_E_FORMAT;
		}
		r = keys_known(p, known, COUNT(known), "a port mapping", err, err_len);
		if (r == CVM_OK)
			r = get_str(p, "protocol", 8, &proto, &pl, err, err_len);
		if (r == CVM_OK)
			r = get_str(p, "host_address", sizeof(d->host_address) - 1, &addr, &al, err, err_len);
		if (r == CVM_OK)
			r = get_uint(p, "host_port", 65535, &has_hp, &hp, err, err_len);
		if (r == CVM_OK)
			r = get_uint(p, "vm_port", 65535, &has_vp, &vp, err, err_len);
		if (r == CVM_OK)
			r = get_uint(p, "nic_index", 0, &has_nic, &nic, err, err_len);
		if (r != CVM_OK)
			return r;
		if (pl == 0)
			proto = "tcp";
		if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0) {
			(void)snprintf(err, err_len, "ports[%zu]: protocol must be tcp or udp", i);
			return CVM_E_FORMAT;
		}
		if (hp < c->port_from || hp > c->port_to) {
			(void)snprintf(err, err_len,
			               "ports[%zu]: host port %u is outside [cvm] port_range %u-%u", i,
			               (unsigned)hp, (unsigned)c->port_from, (unsigned)c->port_to);
			return CVM_E_POLICY;
		}
		if (vp == 0) {
			(void)snprintf(err, err_len, "ports[%zu]: vm_port must be from 1 to 65535", i);
			return CVM_E_FORMAT;
		}
		for (size_t k = 0; k < al; k++) {
			if (strchr("0123456789.", addr[k]) == NULL) {
				(void)snprintf(err, err_len,
				               "ports[%zu]: host_address must be a numeric IPv4 address", i);
				return CVM_E_FORMAT;
			}
		}
		for (size_t k = 0; k < i; k++) {
			if (s->ports[k].host_port == hp && strcmp(s->ports[k].protocol, proto) == 0) {
				(void)snprintf(err, err_len, "ports: host port %s:%u is given twice", proto,
				               (unsigned)hp);
				return CVM_E_POLICY;
			}
		}
		(void)snprintf(d->protocol, sizeof(d->protocol), "%s", proto);
		memcpy(d->host_address, addr, al + 1);
		d->host_port = (uint16_t)hp;
		d->vm_port = (uint16_t)vp;
		s->port_count++;
	}
	return CVM_OK;
}

int vmm_parse_create(const struct vmm_conf *c, json_t *args, struct vmm_spec *spec, struct vmm_files *f,
                     uint8_t **env_owned, char *err, size_t err_len)
{
	static const char *const known[] = {
	    "name",     "image",         "compose_file",  "vcpu",        "memory",    "disk_size",
	    "ports",    "encrypted_env", "app_id",        "user_config", "hugepages", "pin_numa",
	    "gpus",     "kms_urls",      "gateway_urls",  "stopped",     "no_tee",    "networking",
	    "networks", "simulated_tee", "disk_prealloc", "app_images"};
	static const char *const unsupported[] = {"hugepages",  "pin_numa", "gpus",          "no_tee",
	                                          "networking", "networks", "simulated_tee", "disk_prealloc"};
	const char *s, *hex;
	size_t n, hex_len;
	bool present;
	int r;

	memset(spec, 0, sizeof(*spec));
	memset(f, 0, sizeof(*f));
	*env_owned = NULL;
	if (!json_is_object(args)) {
		(void)snprintf(err, err_len, "the request must be a JSON object");
		return CVM_E_FORMAT;
	}
	r = keys_known(args, known, COUNT(known), "VmConfiguration", err, err_len);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < COUNT(unsupported); i++) {
		if (!is_default(json_object_get(args, unsupported[i]))) {
			(void)snprintf(err, err_len, "field %s is not supported by cvm-vmmd; leave it out",
			               unsupported[i]);
			return CVM_E_UNSUPPORTED;
		}
	}
	r = get_str(args, "name", VMM_NAME_MAX, &s, &n, err, err_len);
	if (r != CVM_OK)
		return r;
	if (!vm_name_ok(s, n)) {
		(void)snprintf(
		    err, err_len,
		    "name must be 1-%d letters, digits, '.', '_' or '-', not starting with '.' or '-'",
		    VMM_NAME_MAX);
		return CVM_E_FORMAT;
	}
	memcpy(spec->name, s, n + 1);
	r = get_str(args, "image", VMM_NAME_MAX, &s, &n, err, err_len);
	if (r != CVM_OK)
		return r;
	if (!vmm_image_name_ok(s)) {
		(void)snprintf(err, err_len,
		               "image must name an image of ListImages (1-%d letters, digits, '.', '_' or "
		               "'-', not starting with '.')",
		               VMM_NAME_MAX);
		return CVM_E_FORMAT;
	}
	memcpy(spec->image, s, n + 1);
	r = get_uint(args, "vcpu", 0xffffffffu, &present, &spec->vcpu, err, err_len);
	if (r == CVM_OK)
		r = get_uint(args, "memory", 0xffffffffu, &present, &spec->memory_mb, err, err_len);
	if (r == CVM_OK)
		r = get_uint(args, "disk_size", 0xffffffffu, &present, &spec->disk_gb, err, err_len);
	if (r == CVM_OK)
		r = check_resources(c, spec->vcpu, spec->memory_mb, spec->disk_gb, err, err_len);
	if (r == CVM_OK)
		r = parse_ports(c, args, spec, err, err_len);
	if (r == CVM_OK)
		r = parse_urls(args, "kms_urls", spec->kms_urls, &spec->kms_url_count, err, err_len);
	if (r == CVM_OK)
		r = parse_urls(args, "gateway_urls", spec->gateway_urls, &spec->gateway_url_count, err,
		               err_len);
	if (r == CVM_OK)
		r = parse_app_images(args, spec, err, err_len);
	if (r == CVM_OK)
		r = get_str(args, "app_id", 42, &s, &n, err, err_len);
	if (r != CVM_OK)
		return r;
	if (n >= 2 && s[0] == '0' && s[1] == 'x') {
		s += 2;
		n -= 2;
	}
	if (n != 0) {
		uint8_t id[20];

		if (n != 40 || cvm_hex_decode_exact(s, n, id, sizeof(id)) != CVM_OK) {
			(void)snprintf(err, err_len, "app_id must be 20 bytes of hex (40 digits)");
			return CVM_E_FORMAT;
		}
		for (size_t i = 0; i < 40; i++)
			spec->app_id[i] = (char)(s[i] >= 'A' && s[i] <= 'F' ? s[i] - 'A' + 'a' : s[i]);
		spec->app_id[40] = '\0';
	}
	spec->stopped = json_is_true(json_object_get(args, "stopped"));
	if (json_object_get(args, "stopped") != NULL && !json_is_boolean(json_object_get(args, "stopped")) &&
	    !json_is_null(json_object_get(args, "stopped"))) {
		(void)snprintf(err, err_len, "field stopped must be a boolean");
		return CVM_E_FORMAT;
	}
	r = get_str(args, "compose_file", (size_t)256 * 1024, &s, &n, err, err_len);
	if (r != CVM_OK)
		return r;
	f->compose = (const uint8_t *)s;
	f->compose_len = n;
	r = get_str(args, "user_config", VMM_USER_CONFIG_MAX, &s, &n, err, err_len);
	if (r != CVM_OK)
		return r;
	f->user_config = s;
	f->user_config_len = n;
	r = get_str(args, "encrypted_env", VMM_ENV_MAX * 2 + 2, &hex, &hex_len, err, err_len);
	if (r != CVM_OK)
		return r;
	while (hex_len >= 2 && hex[0] == '0' && hex[1] == 'x') {
		hex += 2;
		hex_len -= 2;
	}
	if (hex_len != 0) {
		uint8_t *env = malloc(hex_len / 2 + 1);
		size_t env_len = 0;

		if (env == NULL)
			return CVM_E_NOMEM;
		if (hex_len % 2 != 0 ||
		    cvm_hex_decode(hex, hex_len, env, hex_len / 2 + 1, &env_len) != CVM_OK) {
			free(env);
			(void)snprintf(err, err_len, "encrypted_env must be hex");
			return CVM_E_FORMAT;
		}
		*env_owned = env;
		f->env = env;
		f->env_len = env_len;
	}
	return CVM_OK;
}

/* ---- replies -------------------------------------------------------------- */

static void uptime(int64_t started, char *out, size_t cap)
{
	int64_t s = started > 0 ? (int64_t)time(NULL) - started : 0;

	if (started <= 0)
		(void)snprintf(out, cap, "%s", "");
	else if (s < 60)
		(void)snprintf(out, cap, "%llds", (long long)s);
	else if (s < 3600)
		(void)snprintf(out, cap, "%lldm %llds", (long long)s / 60, (long long)s % 60);
	else
		(void)snprintf(out, cap, "%lldh %lldm", (long long)s / 3600, (long long)(s % 3600) / 60);
}

static json_t *vm_info(struct vmm *v, struct vmm_vm *vm, bool brief)
{
	char up[48];
	json_t *o, *cfg = NULL;

	vmm_vm_refresh(v, vm);
	uptime(strcmp(vm->state, VMM_ST_RUNNING) == 0 ? vm->started : 0, up, sizeof(up));
	if (!brief)
		cfg = vmm_spec_to_json(&vm->spec);
	o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:I,s:I,s:s,s:I}", "id", vm->id, "name",
	              vm->name, "status", vm->state, "uptime", up, "app_id", vm->app_id, "boot_progress",
	              vm->boot_progress, "boot_error", vm->last_error, "shutdown_progress", "",
	              "image_version", "", "running", strcmp(vm->state, VMM_ST_RUNNING) == 0, "cid",
	              (json_int_t)vm->cid, "pid", (json_int_t)vm->pid, "compose_hash", vm->compose_hash,
	              "created", (json_int_t)vm->created);
	if (o == NULL) {
		json_decref(cfg);
		return NULL;
	}
	if (cfg != NULL && json_object_set_new(o, "configuration", cfg) != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- methods -------------------------------------------------------------- */

static int fail_r(struct cvm_rpc_call *call, int r, const char *err)
{
	int status = r == CVM_E_NOMEM || r == CVM_E_SYSTEM || r == CVM_E_INTERNAL ? 500 : 400;

	return cvm_rpc_fail(call, status, r != CVM_OK ? r : CVM_E_INTERNAL, "%s", err);
}

static int new_uuid(char out[VMM_ID_LEN + 1])
{
	uint8_t b[16];
	char h[33];

	if (cvm_random_bytes(b, sizeof(b)) != CVM_OK)
		return CVM_E_CRYPTO;
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	cvm_hex_encode(b, sizeof(b), h);
	(void)snprintf(out, VMM_ID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12, h + 16, h + 20);
	return CVM_OK;
}

static int m_create(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct vmm *v = ctx;
	struct vmm_vm vm;
	struct vmm_files f;
	struct vmm_image img;
	uint8_t *env = NULL, hash[32];
	char err[CVM_HTTPD_ERR_MAX] = "";
	int r;

	memset(&vm, 0, sizeof(vm));
	r = vmm_parse_create(v->conf, call->args, &vm.spec, &f, &env, err, sizeof(err));
	if (r == CVM_OK)
		r = vmm_compose_check(f.compose, f.compose_len, hash, err, sizeof(err));
	if (r == CVM_OK)
		r = vmm_image_load(v->conf->image_dir, vm.spec.image, &img, err, sizeof(err));
	if (r != CVM_OK) {
		free(env);
		return fail_r(call, r, err);
	}
	if (new_uuid(vm.id) != CVM_OK) {
		free(env);
		return cvm_rpc_fail(call, 500, CVM_E_CRYPTO, "no randomness for the VM id");
	}
	(void)snprintf(vm.name, sizeof(vm.name), "%s", vm.spec.name);
	(void)snprintf(vm.state, sizeof(vm.state), "%s", VMM_ST_CREATING);
	cvm_hex_encode(hash, 32, vm.compose_hash);
	if (vm.spec.app_id[0] != '\0')
		(void)snprintf(vm.app_id, sizeof(vm.app_id), "%s", vm.spec.app_id);
	else
		cvm_hex_encode(hash, 20, vm.app_id);
	r = vmm_db_insert(v->db, &vm, (uint32_t)v->conf->cid_start, (uint32_t)v->conf->cid_pool_size, err,
	                  sizeof(err));
	if (r != CVM_OK) {
		free(env);
		return fail_r(call, r, err[0] != '\0' ? err : "cannot record the VM");
	}
	vmm_pause_point("create_insert");
	r = vmm_work_create(v, &vm, &f, err, sizeof(err));
	free(env);
	if (r != CVM_OK) {
		char tmp[VMM_PATH_MAX + 64];

		(void)snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", v->conf->run_dir, vm.id);
		if (vmm_rmtree(tmp) != CVM_OK || vmm_db_delete(v->db, vm.id) != CVM_OK)
			cvm_daemon_log(CVM_LOG_WARN, "create_undo", "id=%s msg=\"left for the next start\"",
			               vm.id);
		return fail_r(call, r, err);
	}
	r = vmm_db_set_state(v->db, vm.id, VMM_ST_STOPPED, 0, 0, NULL);
	if (r != CVM_OK)
		return fail_r(call, r, "cannot record the VM's state");
	(void)snprintf(vm.state, sizeof(vm.state), "%s", VMM_ST_STOPPED);
	vmm_pause_point("create_done");
	cvm_daemon_log(CVM_LOG_INFO, "vm_created", "id=%s name=%s cid=%u", vm.id, vm.name, (unsigned)vm.cid);
	if (!vm.spec.stopped) {
		r = vmm_vm_start(v, &vm, err, sizeof(err));
		if (r != CVM_OK)
			cvm_daemon_log(CVM_LOG_WARN, "vm_start_failed", "id=%s reason=\"%.200s\"", vm.id,
			               err);
	}
	*out = json_pack("{s:s}", "id", vm.id);
	return *out != NULL ? CVM_OK : fail_r(call, CVM_E_NOMEM, "out of memory");
}

/* find_vm reads the `id` field (a VM id or name) and loads the VM. */
static int find_vm(struct vmm *v, struct cvm_rpc_call *call, const char *const *known, size_t n,
                   struct vmm_vm *vm)
{
	char err[256];
	const char *id;
	size_t len;
	int r;

	r = keys_known(call->args, known, n, call->method, err, sizeof(err));
	if (r == CVM_OK)
		r = get_str(call->args, "id", 128, &id, &len, err, sizeof(err));
	if (r != CVM_OK)
		return fail_r(call, r, err);
	if (len == 0)
		return cvm_rpc_fail(call, 400, CVM_E_FORMAT, "field id is missing: give a VM id or name");
	r = vmm_db_get(v->db, id, vm);
	if (r == CVM_E_INVAL)
		return cvm_rpc_fail(call, 404, r, "no VM %.128s (see Status)", id);
	if (r != CVM_OK)
		return cvm_rpc_fail(call, 500, r, "cannot read the VM database");
	return CVM_OK;
}

static const char *const id_only[] = {"id"};

static int m_start(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct vmm *v = ctx;
	struct vmm_vm vm;
	char err[CVM_HTTPD_ERR_MAX] = "";
	int r;

	r = find_vm(v, call, id_only, 1, &vm);
	if (r != CVM_OK)
		return r;
	vmm_vm_refresh(v, &vm);
	if (strcmp(vm.state, VMM_ST_STOPPED) != 0 && strcmp(vm.state, VMM_ST_FAILED) != 0)
		return cvm_rpc_fail(call, 409, CVM_E_POLICY, "VM %s is %s; only a stopped VM can start",
		                    vm.name, vm.state);
	r = vmm_vm_start(v, &vm, err, sizeof(err));
	if (r != CVM_OK)
		return fail_r(call, r, err);
	*out = NULL;
	return CVM_OK;
}

static int stop_common(void *ctx, struct cvm_rpc_call *call, bool force)
{
	struct vmm *v = ctx;
	struct vmm_vm vm;
	char err[CVM_HTTPD_ERR_MAX] = "";
	int r;

	r = find_vm(v, call, id_only, 1, &vm);
	if (r != CVM_OK)
		return r;
	r = vmm_vm_stop(v, &vm, force, err, sizeof(err));
	if (r == CVM_E_POLICY)
		return cvm_rpc_fail(call, 409, r, "%s", err);
	return r != CVM_OK ? fail_r(call, r, err) : CVM_OK;
}

static int m_stop(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	*out = NULL;
	return stop_common(ctx, call, true);
}

static int m_shutdown(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	*out = NULL;
	return stop_common(ctx, call, false);
}

static int m_remove(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct vmm *v = ctx;
	struct vmm_vm vm;
	char wd[VMM_PATH_MAX];
	int r;

	*out = NULL;
	r = find_vm(v, call, id_only, 1, &vm);
	if (r != CVM_OK)
		return r;
	vmm_vm_refresh(v, &vm);
	if (strcmp(vm.state, VMM_ST_RUNNING) == 0 || strcmp(vm.state, VMM_ST_STARTING) == 0 ||
	    strcmp(vm.state, VMM_ST_STOPPING) == 0)
		return cvm_rpc_fail(call, 409, CVM_E_POLICY, "VM %s is %s: stop it first (StopVm)", vm.name,
		                    vm.state);
	vmm_channel_close(v, vm.id);
	r = vmm_db_set_state(v->db, vm.id, VMM_ST_REMOVING, 0, 0, NULL);
	if (r != CVM_OK)
		return cvm_rpc_fail(call, 500, r, "cannot record the VM's state");
	vmm_pause_point("remove_mark");
	vmm_work_path(v->conf, vm.id, NULL, wd, sizeof(wd));
	r = vmm_work_remove(v, vm.id);
	if (r != CVM_OK)
		return cvm_rpc_fail(call, 500, r, "cannot remove %s: %s", wd, strerror(errno));
	r = vmm_db_delete(v->db, vm.id);
	if (r != CVM_OK)
		return cvm_rpc_fail(call, 500, r, "cannot delete the VM's record");
	cvm_daemon_log(CVM_LOG_INFO, "vm_removed", "id=%s", vm.id);
	return CVM_OK;
}

static int m_upgrade(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	static const char *const known[] = {"id",
	                                    "compose_file",
	                                    "encrypted_env",
	                                    "user_config",
	                                    "update_ports",
	                                    "ports",
	                                    "update_kms_urls",
	                                    "kms_urls",
	                                    "update_gateway_urls",
	                                    "gateway_urls",
	                                    "gpus",
	                                    "vcpu",
	                                    "memory",
	                                    "disk_size",
	                                    "image",
	                                    "no_tee",
	                                    "update_networking",
	                                    "networks"};
	static const char *const unsupported[] = {
	    "gpus", "vcpu", "memory", "disk_size", "image", "no_tee", "update_networking", "networks"};
	struct vmm *v = ctx;
	struct vmm_vm vm;
	struct vmm_files f;
	uint8_t hash[32], *env = NULL;
	size_t env_len = 0, n;
	const char *s;
	char err[CVM_HTTPD_ERR_MAX] = "";
	int r;

	r = find_vm(v, call, known, COUNT(known), &vm);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < COUNT(unsupported); i++) {
		if (!is_default(json_object_get(call->args, unsupported[i])))
			return cvm_rpc_fail(
			    call, 400, CVM_E_UNSUPPORTED,
			    "field %s is not supported by UpgradeApp; use ResizeVm for resources",
			    unsupported[i]);
	}
	vmm_vm_refresh(v, &vm);
	if (strcmp(vm.state, VMM_ST_STOPPED) != 0 && strcmp(vm.state, VMM_ST_FAILED) != 0)
		return cvm_rpc_fail(call, 409, CVM_E_POLICY, "VM %s is %s: stop it before upgrading it",
		                    vm.name, vm.state);
	memset(&f, 0, sizeof(f));
	r = get_str(call->args, "compose_file", (size_t)256 * 1024, &s, &n, err, sizeof(err));
	if (r == CVM_OK && n != 0) {
		r = vmm_compose_check((const uint8_t *)s, n, hash, err, sizeof(err));
		f.compose = (const uint8_t *)s;
		f.compose_len = n;
	}
	if (r == CVM_OK)
		r = get_str(call->args, "user_config", VMM_USER_CONFIG_MAX, &s, &n, err, sizeof(err));
	if (r == CVM_OK && n != 0) {
		f.user_config = s;
		f.user_config_len = n;
	}
	if (r == CVM_OK)
		r = cvm_rpc_hex_new(call, "encrypted_env", VMM_ENV_MAX, &env, &env_len);
	if (r != CVM_OK)
		return call->err[0] != '\0' ? r : fail_r(call, r, err);
	f.env = env;
	f.env_len = env_len;
	if (json_is_true(json_object_get(call->args, "update_ports")))
		r = parse_ports(v->conf, call->args, &vm.spec, err, sizeof(err));
	if (r == CVM_OK && json_is_true(json_object_get(call->args, "update_kms_urls")))
		r = parse_urls(call->args, "kms_urls", vm.spec.kms_urls, &vm.spec.kms_url_count, err,
		               sizeof(err));
	if (r == CVM_OK && json_is_true(json_object_get(call->args, "update_gateway_urls")))
		r = parse_urls(call->args, "gateway_urls", vm.spec.gateway_urls, &vm.spec.gateway_url_count,
		               err, sizeof(err));
	/* The app id stays what it was at CreateVm (given, or the first
	 * compose's hash): an upgraded app keeps its identity, hence its keys
	 * and its data disk; the KMS decides whether the new compose hash may
	 * have them. */
	if (r == CVM_OK && f.compose != NULL)
		cvm_hex_encode(hash, 32, vm.compose_hash);
	if (r == CVM_OK)
		r = vmm_db_set_spec(v->db, &vm, err, sizeof(err));
	if (r == CVM_OK)
		r = vmm_work_write_shared(v, &vm, &f, err, sizeof(err));
	free(env);
	if (r != CVM_OK)
		return fail_r(call, r, err);
	*out = json_pack("{s:s}", "id", vm.id);
	return CVM_OK;
}

static int m_resize(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	static const char *const known[] = {"id", "vcpu", "memory", "disk_size", "image"};
	struct vmm *v = ctx;
	struct vmm_vm vm;
	struct vmm_image img;
	uint32_t vcpu, mem, disk;
	bool has_vcpu, has_mem, has_disk;
	const char *image;
	size_t n;
	char err[CVM_HTTPD_ERR_MAX] = "";
	int r;

	*out = NULL;
	r = find_vm(v, call, known, COUNT(known), &vm);
	if (r != CVM_OK)
		return r;
	vmm_vm_refresh(v, &vm);
	if (strcmp(vm.state, VMM_ST_STOPPED) != 0 && strcmp(vm.state, VMM_ST_FAILED) != 0)
		return cvm_rpc_fail(call, 409, CVM_E_POLICY, "VM %s is %s: stop it before resizing it",
		                    vm.name, vm.state);
	r = get_uint(call->args, "vcpu", 0xffffffffu, &has_vcpu, &vcpu, err, sizeof(err));
	if (r == CVM_OK)
		r = get_uint(call->args, "memory", 0xffffffffu, &has_mem, &mem, err, sizeof(err));
	if (r == CVM_OK)
		r = get_uint(call->args, "disk_size", 0xffffffffu, &has_disk, &disk, err, sizeof(err));
	if (r == CVM_OK)
		r = get_str(call->args, "image", VMM_NAME_MAX, &image, &n, err, sizeof(err));
	if (r == CVM_OK && n != 0)
		r = vmm_image_load(v->conf->image_dir, image, &img, err, sizeof(err));
	if (r != CVM_OK)
		return fail_r(call, r, err);
	if (has_disk && disk < vm.spec.disk_gb)
		return cvm_rpc_fail(call, 400, CVM_E_POLICY, "disk_size cannot shrink (%u GB now)",
		                    (unsigned)vm.spec.disk_gb);
	r = check_resources(v->conf, has_vcpu ? vcpu : vm.spec.vcpu, has_mem ? mem : vm.spec.memory_mb,
	                    has_disk ? disk : vm.spec.disk_gb, err, sizeof(err));
	if (r != CVM_OK)
		return fail_r(call, r, err);
	if (has_vcpu)
		vm.spec.vcpu = vcpu;
	if (has_mem)
		vm.spec.memory_mb = mem;
	if (n != 0)
		(void)snprintf(vm.spec.image, sizeof(vm.spec.image), "%s", image);
	if (has_disk && disk != vm.spec.disk_gb) {
		char disk_path[VMM_PATH_MAX], size[32];

		vmm_work_path(v->conf, vm.id, "hda.img", disk_path, sizeof(disk_path));
		(void)snprintf(size, sizeof(size), "%uG", (unsigned)disk);
		{
			char *argv[] = {v->conf->qemu_img, "resize", "-q", disk_path, size, NULL};
			pid_t pid = fork();
			int status = 1;

			if (pid == 0) {
				closefrom(3);
				execv(argv[0], argv);
				_exit(127);
			}
			if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
			    WEXITSTATUS(status) != 0)
				return cvm_rpc_fail(call, 500, CVM_E_SYSTEM, "qemu-img resize %s failed",
				                    disk_path);
		}
		vm.spec.disk_gb = disk;
	}
	r = vmm_db_set_spec(v->db, &vm, err, sizeof(err));
	if (r == CVM_OK) {
		struct vmm_files f;

		memset(&f, 0, sizeof(f));
		r = vmm_work_write_shared(v, &vm, &f, err, sizeof(err));
	}
	return r != CVM_OK ? fail_r(call, r, err) : CVM_OK;
}

static int m_status(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	static const char *const known[] = {"ids", "brief", "keyword", "page", "page_size", "status"};
	struct vmm *v = ctx;
	struct vmm_vm *all = NULL;
	size_t n = 0, total = 0;
	const char **ids = NULL, *kw, *st;
	size_t nids = 0, kwl, stl;
	bool brief;
	json_t *vms, *o;
	char err[256];
	int r;

	r = keys_known(call->args, known, COUNT(known), "Status", err, sizeof(err));
	if (r != CVM_OK)
		return fail_r(call, r, err);
	r = cvm_rpc_str_array(call, "ids", 1024, 128, &ids, &nids);
	if (r == CVM_OK)
		r = cvm_rpc_bool(call, "brief", &brief);
	if (r == CVM_OK)
		r = cvm_rpc_str(call, "keyword", 128, &kw, &kwl);
	if (r == CVM_OK)
		r = cvm_rpc_str(call, "status", 16, &st, &stl);
	if (r != CVM_OK) {
		free(ids);
		return r;
	}
	r = vmm_db_list(v->db, &all, &n);
	if (r != CVM_OK) {
		free(ids);
		return cvm_rpc_fail(call, 500, r, "cannot read the VM database");
	}
	vms = json_array();
	for (size_t i = 0; vms != NULL && i < n; i++) {
		bool want = nids == 0;

		for (size_t k = 0; k < nids && !want; k++)
			want = strcmp(ids[k], all[i].id) == 0 || strcmp(ids[k], all[i].name) == 0;
		if (want && kwl != 0)
			want = strstr(all[i].name, kw) != NULL || strstr(all[i].id, kw) != NULL;
		if (!want)
			continue;
		o = vm_info(v, &all[i], brief);
		if (stl != 0 && strcmp(all[i].state, st) != 0) {
			json_decref(o);
			continue;
		}
		if (o == NULL || json_array_append_new(vms, o) != 0) {
			json_decref(vms);
			vms = NULL;
		}
		total++;
	}
	free(all);
	free(ids);
	if (vms == NULL)
		return cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory");
	*out =
	    json_pack("{s:o,s:b,s:I}", "vms", vms, "port_mapping_enabled", true, "total", (json_int_t)total);
	return *out != NULL ? CVM_OK : cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory");
}

/* extra_info adds what only GetInfo gives (cvmkit): the progress history
 * of the VM's starts (cvm vm deploy -v times its phases with it) and, for
 * a dev VM, the launch measurement its simulated TEE carries. */
static void extra_info(struct vmm *v, const struct vmm_vm *vm, json_t *info)
{
	char path[VMM_PATH_MAX + 32];
	uint8_t *buf = NULL;
	size_t len = 0;
	json_t *h = NULL, *m;

	if (vmm_db_history(v->db, vm->id, &h) == CVM_OK)
		(void)json_object_set_new(info, "boot_history", h);
	vmm_work_path(v->conf, vm->id, "measurement.json", path, sizeof(path));
	if (cvm_file_read(path, (size_t)64 * 1024, &buf, &len) == CVM_OK) {
		m = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
		if (json_is_object(m))
			(void)json_object_set_new(info, "measurement", m);
		else
			json_decref(m);
		free(buf);
	}
}

static int m_info(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct vmm *v = ctx;
	struct vmm_vm vm;
	json_t *info;
	int r;

	r = find_vm(v, call, id_only, 1, &vm);
	if (r == CVM_E_INVAL) {
		*out = json_pack("{s:b}", "found", false);
		return CVM_OK;
	}
	if (r != CVM_OK)
		return r;
	info = vm_info(v, &vm, false);
	if (info != NULL)
		extra_info(v, &vm, info);
	*out = json_pack("{s:b,s:o}", "found", true, "info", info);
	return *out != NULL ? CVM_OK : cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory");
}

static int m_version(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	(void)ctx;
	(void)call;
	*out = json_pack("{s:s,s:s}", "version", CVM_VERSION_STRING, "rev", "");
	return CVM_OK;
}

static int m_meta(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct vmm *v = ctx;
	const struct vmm_conf *c = v->conf;
	json_t *kms = json_array(), *gw = json_array();

	(void)call;
	for (size_t i = 0; i < c->kms_url_count; i++)
		(void)json_array_append_new(kms, json_string(c->kms_urls[i]));
	for (size_t i = 0; i < c->gateway_url_count; i++)
		(void)json_array_append_new(gw, json_string(c->gateway_urls[i]));
	*out = json_pack("{s:{s:s,s:o},s:{s:s,s:s,s:i,s:i,s:o},s:{s:I,s:I,s:I},s:s,s:{s:I,s:I}}", "kms",
	                 "url", c->kms_url_count != 0 ? c->kms_urls[0] : "", "urls", kms, "gateway", "url",
	                 c->gateway_url_count != 0 ? c->gateway_urls[0] : "", "base_domain", "", "port", 0,
	                 "agent_port", 0, "urls", gw, "resources", "max_cvm_number",
	                 (json_int_t)c->cid_pool_size, "max_allocable_vcpu", (json_int_t)c->max_vcpu,
	                 "max_allocable_memory_in_mb", (json_int_t)c->max_memory_mb, "platform",
	                 vmm_platform_name(c->platform), "port_range", "from", (json_int_t)c->port_from, "to",
	                 (json_int_t)c->port_to);
	return *out != NULL ? CVM_OK : cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory");
}

static int m_compose_hash(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	uint8_t hash[32];
	char hex[65], err[256];
	const char *s;
	size_t n;
	int r;

	(void)ctx;
	r = get_str(call->args, "compose_file", (size_t)256 * 1024, &s, &n, err, sizeof(err));
	if (r == CVM_OK)
		r = vmm_compose_check((const uint8_t *)s, n, hash, err, sizeof(err));
	if (r != CVM_OK)
		return fail_r(call, r, err);
	cvm_hex_encode(hash, 32, hex);
	*out = json_pack("{s:s}", "hash", hex);
	return CVM_OK;
}

/* GetAppEnvEncryptPubKey {app_id}: the KMS's signed answer, passed on
 * (kmsproxy.c); the caller checks the signature. */
static int m_env_pubkey(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct vmm *v = ctx;
	char err[VMM_KMS_URLS_ERR + 64], hex[41];
	uint8_t id[20];
	const char *s;
	size_t n;
	int r;

	r = get_str(call->args, "app_id", 64, &s, &n, err, sizeof(err));
	if (r == CVM_OK && n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
	}
	if (r == CVM_OK && cvm_hex_decode_exact(s, n, id, sizeof(id)) != CVM_OK) {
		(void)snprintf(err, sizeof(err), "app_id must be 20 bytes of hex (40 digits)");
		r = CVM_E_FORMAT;
	}
	if (r != CVM_OK)
		return fail_r(call, r, err);
	cvm_hex_encode(id, sizeof(id), hex);
	r = vmm_kms_env_pubkey(v->conf, hex, out, err, sizeof(err));
	if (r != CVM_OK)
		return cvm_rpc_fail(call, r == CVM_E_INVAL ? 400 : 502, r, "%s", err);
	return CVM_OK;
}

static int m_images(void *ctx, struct cvm_rpc_call *call, json_t **out)
{
	struct vmm *v = ctx;
	json_t *arr = json_array();
	struct dirent **names = NULL;
	int n;

	n = scandir(v->conf->image_dir, &names, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		struct vmm_image img;
		char err[256];

		if (vmm_image_name_ok(names[i]->d_name) &&
		    vmm_image_load(v->conf->image_dir, names[i]->d_name, &img, err, sizeof(err)) == CVM_OK)
			(void)json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:b}", "name", img.name,
			                                           "description", "", "version", img.version,
			                                           "is_dev", img.is_dev));
		free(names[i]);
	}
	free(names);
	*out = json_pack("{s:o}", "images", arr);
	return *out != NULL ? CVM_OK : cvm_rpc_fail(call, 500, CVM_E_NOMEM, "out of memory");
}

static const struct cvm_rpc_method methods[] = {
    {"CreateVm", m_create},
    {"StartVm", m_start},
    {"StopVm", m_stop},
    {"ShutdownVm", m_shutdown},
    {"RemoveVm", m_remove},
    {"UpgradeApp", m_upgrade},
    {"UpdateVm", m_upgrade},
    {"ResizeVm", m_resize},
    {"Status", m_status},
    {"GetInfo", m_info},
    {"Version", m_version},
    {"GetMeta", m_meta},
    {"GetComposeHash", m_compose_hash},
    {"ListImages", m_images},
    {"GetAppEnvEncryptPubKey", m_env_pubkey},
};

static const struct cvm_rpc_mount mounts[] = {
    {"/prpc/", "Teepod.", methods, COUNT(methods), 0},
};

/* ---- auth and logs -------------------------------------------------------- */

static bool token_match(const struct vmm_conf *c, const char *t, size_t n)
{
	bool ok = false;

	for (size_t i = 0; i < c->token_count; i++) {
		size_t tl = strlen(c->tokens[i]);

		ok |= tl == n && cvm_ct_equal(c->tokens[i], t, n);
	}
	return ok;
}

bool vmm_auth_ok(const struct vmm_conf *c, struct cvm_http_req *req)
{
	const struct evkeyvalq *h;
	const char *v;

	if (c->token_count == 0)
		return true;
	if (req->er != NULL) {
		h = evhttp_request_get_input_headers(req->er);
		v = evhttp_find_header(h, "Authorization");
		if (v != NULL && strncmp(v, "Bearer ", 7) == 0 && token_match(c, v + 7, strlen(v + 7)))
			return true;
		v = evhttp_find_header(h, "X-Admin-Token");
		if (v != NULL && token_match(c, v, strlen(v)))
			return true;
	}
	if (req->method == CVM_HTTP_GET && req->query != NULL) {
		struct evkeyvalq q;
		bool ok = false;

		memset(&q, 0, sizeof(q));
		if (evhttp_parse_query_str(req->query, &q) == 0) {
			v = evhttp_find_header(&q, "token");
			ok = v != NULL && token_match(c, v, strlen(v));
		}
		evhttp_clear_headers(&q);
		return ok;
	}
	return false;
}

/* A follower of a VM's serial log (GET /logs?follow=1). */
struct log_follow {
	struct vmm *v;
	char id[VMM_ID_LEN + 1];
	char path[VMM_PATH_MAX + 32];
	int fd;
	ino_t ino;
	off_t pos;
};

#define FOLLOW_CHUNK ((size_t)64 * 1024)

static void follow_done(void *ctx)
{
	struct log_follow *lf = ctx;

	if (lf->fd >= 0)
		(void)close(lf->fd);
	free(lf);
}

/* follow_more appends what the log gained; it ends when the VM is removed.
 * A log that was replaced or truncated is read again from its start. */
static bool follow_more(void *ctx, struct evbuffer *out)
{
	struct log_follow *lf = ctx;
	struct vmm_vm vm;
	struct stat st;
	uint8_t buf[8192];
	size_t sent = 0;

	if (vmm_db_get(lf->v->db, lf->id, &vm) != CVM_OK)
		return false;
	if (stat(lf->path, &st) != 0)
		return true; /* not written yet */
	if (lf->fd < 0 || st.st_ino != lf->ino || st.st_size < lf->pos) {
		if (lf->fd >= 0)
			(void)close(lf->fd);
		lf->fd = open(lf->path, O_RDONLY | O_CLOEXEC);
		if (lf->fd < 0)
			return true;
		if (st.st_ino != lf->ino || st.st_size < lf->pos)
			lf->pos = 0;
		lf->ino = st.st_ino;
	}
	while (sent < FOLLOW_CHUNK) {
		ssize_t n = pread(lf->fd, buf, sizeof(buf), lf->pos);

		if (n <= 0)
			break;
		if (evbuffer_add(out, buf, (size_t)n) != 0)
			return false;
		lf->pos += n;
		sent += (size_t)n;
	}
	return true;
}

static void logs(struct vmm *v, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	struct evkeyvalq q;
	struct vmm_vm vm;
	const char *id, *lines_s, *follow;
	uint64_t lines = 200;
	char path[VMM_PATH_MAX + 32];
	uint8_t *buf = NULL;
	size_t len = 0, start;
	long from = 0;
	bool following = false;
	struct stat st;
	FILE *f;
	long size;

	memset(&q, 0, sizeof(q));
	if (req->query == NULL || evhttp_parse_query_str(req->query, &q) != 0) {
		cvm_http_resp_error(resp, 400, "give ?id=<VM id or name>[&lines=N][&follow=1]");
		goto out;
	}
	id = evhttp_find_header(&q, "id");
	lines_s = evhttp_find_header(&q, "lines");
	follow = evhttp_find_header(&q, "follow");
	if (id == NULL || vmm_db_get(v->db, id, &vm) != CVM_OK) {
		cvm_http_resp_error(resp, 404, "no such VM; give ?id=<VM id or name>");
		goto out;
	}
	if (lines_s != NULL && cvm_parse_u64(lines_s, 1, 100000, &lines) != CVM_OK) {
		cvm_http_resp_error(resp, 400, "lines must be a number from 1 to 100000");
		goto out;
	}
	if (follow != NULL && strcmp(follow, "1") != 0 && strcmp(follow, "true") != 0 &&
	    strcmp(follow, "0") != 0 && strcmp(follow, "false") != 0) {
		cvm_http_resp_error(resp, 400, "follow must be 1, true, 0 or false");
		goto out;
	}
	following = follow != NULL && (strcmp(follow, "1") == 0 || strcmp(follow, "true") == 0);
	vmm_work_path(v->conf, vm.id, "serial.log", path, sizeof(path));
	buf = malloc(LOG_MAX);
	if (buf == NULL) {
		cvm_http_resp_error(resp, 500, "out of memory");
		goto out;
	}
	memset(&st, 0, sizeof(st));
	f = fopen(path, "rb");
	/* the tail: at most LOG_MAX bytes from the end, then the last N lines */
	if (f != NULL && fstat(fileno(f), &st) == 0 && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0) {
		from = size > (long)LOG_MAX ? size - (long)LOG_MAX : 0;
		if (fseek(f, from, SEEK_SET) == 0)
			len = fread(buf, 1, LOG_MAX, f);
	}
	if (f != NULL)
		(void)fclose(f);
	start = len;
	for (uint64_t nl = 0; start > 0; start--) {
		if (buf[start - 1] == '\n' && start != len && ++nl == lines)
			break;
	}
	if (following) {
		struct log_follow *lf = calloc(1, sizeof(*lf));

		if (lf == NULL) {
			cvm_http_resp_error(resp, 500, "out of memory");
			goto out;
		}
		lf->v = v;
		lf->fd = -1;
		lf->ino = st.st_ino;
		lf->pos = (off_t)from + (off_t)start;
		(void)snprintf(lf->id, sizeof(lf->id), "%s", vm.id);
		(void)snprintf(lf->path, sizeof(lf->path), "%s", path);
		cvm_http_resp_stream(resp, "text/plain; charset=utf-8", 500, follow_more, follow_done, lf);
		goto out;
	}
	cvm_http_resp_bytes(resp, 200, "text/plain; charset=utf-8", buf + start, len - start);
out:
	free(buf);
	evhttp_clear_headers(&q);
}

/* strip_token removes the token=... pairs from a query string, in place. */
static void strip_token(char *q)
{
	char *w = q, *r = q;

	while (*r != '\0') {
		size_t seg = strcspn(r, "&");

		if (!(strncmp(r, "token=", 6) == 0 || (seg == 5 && strncmp(r, "token", 5) == 0))) {
			if (w != q)
				*w++ = '&';
			memmove(w, r, seg);
			w += seg;
		}
		r += seg;
		if (*r == '&')
			r++;
	}
	*w = '\0';
}

void vmm_handle(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	struct vmm *v = ctx;
	const struct cvm_rpc_api api = {"vmm", mounts, COUNT(mounts), v};
	char path[CVM_RPC_METHOD_MAX + 16], *q = NULL;
	const char *p = req->path, *query = req->query;

	/* The page's static files need no token: the page asks for it and
	 * sends it with every call. */
	if (vmm_webui_handle(v->conf->webui_dir, req, resp))
		return;
	if (!vmm_auth_ok(v->conf, req)) {
		cvm_http_resp_error(resp, 401,
		                    "a token is required: Authorization: Bearer <token>, X-Admin-Token, or "
		                    "?token= on GET");
		return;
	}
	if (strcmp(p, "/logs") == 0) {
		if (req->method != CVM_HTTP_GET) {
			resp->allow = "GET";
			cvm_http_resp_error(resp, 405, "use GET /logs?id=<VM>");
			return;
		}
		logs(v, req, resp);
		return;
	}
	/* ?token= authenticates a GET; it is no field of the method's message */
	if (req->method == CVM_HTTP_GET && req->query != NULL) {
		q = strdup(req->query);
		if (q == NULL) {
			cvm_http_resp_error(resp, 500, "out of memory");
			return;
		}
		strip_token(q);
		req->query = q;
	}
	/* upstream's clients send Vmm.<Method> as well as Teepod.<Method> */
	if (strncmp(p, "/prpc/Vmm.", 10) == 0 && strlen(p) < sizeof(path) - 8) {
		(void)snprintf(path, sizeof(path), "/prpc/%s", p + 10);
		req->path = path;
	}
	cvm_rpc_handle(&api, req, resp);
	req->path = p;
	req->query = query;
	free(q);
}

/* The agent's state: the TEE, the app's keys and identity, the boot event
 * log (CCEL) and the runtime event log with RTMR3. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/file.h>
#include <cvmkit/quote.h>
#include <cvmkit/random.h>
#include <cvmkit/secret.h>

#include "agent.h"
#include "daemon.h"

/* The app-compose.json the simulator serves when none is given: a
 * placeholder app, so that Info has an identity to report. */
static const char default_compose[] =
    "{\"manifest_version\":2,\"name\":\"cvmkit-simulated-app\",\"runner\":\"docker-compose\","
    "\"docker_compose_file\":\"\",\"kms_enabled\":false,\"gateway_enabled\":false,"
    "\"local_key_provider_enabled\":false,\"key_provider\":\"none\",\"public_logs\":false,"
    "\"public_sysinfo\":false,\"public_tcbinfo\":true,\"no_instance_id\":false}";

void agent_config_defaults(struct agent_config *c)
{
	memset(c, 0, sizeof(*c));
	(void)snprintf(c->log_level, sizeof(c->log_level), "info");
	(void)snprintf(c->platform, sizeof(c->platform), "tdx");
	c->measure_app = true;
	c->max_body = CVM_HTTPD_BODY_MAX_DEFAULT;
	c->timeout = CVM_HTTPD_TIMEOUT_DEFAULT;
	c->dstack_mode = 0666;
	c->tappd_mode = 0666;
	c->caller_events_max = AGENT_CALLER_EVENTS_DEFAULT;
	c->caller_payload_max = AGENT_CALLER_PAYLOAD_DEFAULT;
	c->tls_lifetime_hours = AGENT_TLS_LIFETIME_HOURS_DEFAULT;
	c->cert_lifetime_hours = AGENT_CERT_LIFETIME_HOURS_DEFAULT;
	c->tls_max_connections = AGENT_TLS_CONNECTIONS_DEFAULT;
	c->tls_max_connections_per_peer = AGENT_TLS_CONNECTIONS_PER_PEER_DEFAULT;
	c->tls_max_body = AGENT_TLS_BODY_DEFAULT;
	c->tls_max_headers = AGENT_TLS_HEADERS_DEFAULT;
	c->tls_handshake_timeout = AGENT_TLS_HANDSHAKE_TIMEOUT_DEFAULT;
	c->cosmian_api = true;
	c->kms_timeout = AGENT_KMS_TIMEOUT_DEFAULT;
	c->boot_hook_timeout = AGENT_BOOT_HOOK_TIMEOUT_DEFAULT;
}

static int path_join(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? CVM_E_TOO_LARGE : CVM_OK;
}

static int read_text(const char *path, size_t max, char **out, size_t *out_len, char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	*out_len = 0;
	r = cvm_file_read(path, max, &buf, &len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read %s: %s", path,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return r;
	}
	if (memchr(buf, '\0', len) != NULL) {
		free(buf);
		(void)snprintf(err, err_len, "%s contains a NUL byte", path);
		return CVM_E_FORMAT;
	}
	*out = (char *)buf;
	*out_len = len;
	return CVM_OK;
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

/* sim_state_dir makes DIR/agent in the simulator folder, where the agent
 * keeps its own state (seed, runtime log) by default. */
static int sim_state_dir(struct agent *a, char *out, size_t cap, char *err, size_t err_len)
{
	int r = path_join(out, cap, a->cfg.simulator, "agent");

	if (r != CVM_OK)
		return r;
	if (mkdir(out, 0700) != 0 && errno != EEXIST) {
		(void)snprintf(err, err_len, "cannot create %s: %s", out, strerror(errno));
		return CVM_E_SYSTEM;
	}
	return CVM_OK;
}

static int open_keys(struct agent *a, char *err, size_t err_len)
{
	char dir[AGENT_PATH_MAX];
	int r;

	if (a->cfg.appkeys[0] != '\0') {
		r = cvm_appkeys_load(a->cfg.appkeys, &a->keys, err, err_len);
		return r;
	}
	if (a->cfg.key_state[0] == '\0' && a->cfg.simulator[0] != '\0') {
		r = sim_state_dir(a, dir, sizeof(dir), err, err_len);
		if (r != CVM_OK)
			return r;
		memcpy(a->cfg.key_state, dir, sizeof(a->cfg.key_state));
	}
	if (a->cfg.key_state[0] == '\0') {
		(void)snprintf(err, err_len,
		               "no app keys: set appkeys (a dstack .appkeys.json) or key_state");
		return CVM_E_INVAL;
	}
	return cvm_appkeys_local_open(a->cfg.key_state, &a->keys, err, err_len);
}

static int open_compose(struct agent *a, char *err, size_t err_len)
{
	json_t *o = NULL, *v;
	json_error_t jerr;
	int r;

	if (a->cfg.app_compose[0] == '\0' && a->cfg.simulator[0] != '\0') {
		char p[AGENT_PATH_MAX];

		if (path_join(p, sizeof(p), a->cfg.simulator, "app-compose.json") == CVM_OK && file_exists(p))
			memcpy(a->cfg.app_compose, p, sizeof(p));
	}
	if (a->cfg.app_compose[0] != '\0') {
		r = read_text(a->cfg.app_compose, AGENT_APP_COMPOSE_MAX, &a->app_compose, &a->app_compose_len,
		              err, err_len);
		if (r != CVM_OK)
			return r;
	} else if (a->cfg.simulator[0] != '\0') {
		a->app_compose = strdup(default_compose);
		if (a->app_compose == NULL)
			return CVM_E_NOMEM;
		a->app_compose_len = strlen(default_compose);
	} else {
		(void)snprintf(err, err_len, "no app-compose.json: set app_compose");
		return CVM_E_INVAL;
	}
	o = json_loadb(a->app_compose, a->app_compose_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o)) {
		(void)snprintf(err, err_len, "app-compose.json is not a JSON object (line %d: %s)", jerr.line,
		               jerr.text);
		r = CVM_E_FORMAT;
		goto out;
	}
	v = json_object_get(o, "name");
	a->app_name = strdup(json_is_string(v) ? json_string_value(v) : "");
	a->no_instance_id = json_is_true(json_object_get(o, "no_instance_id"));
	a->public_tcbinfo = json_is_true(json_object_get(o, "public_tcbinfo"));
	r = a->app_name == NULL ? CVM_E_NOMEM : CVM_OK;
out:
	json_decref(o);
	return r;
}

static int open_sys_config(struct agent *a, char *err, size_t err_len)
{
	char *text = NULL;
	size_t len = 0;
	json_t *o = NULL, *vm = NULL, *v;
	json_error_t jerr;
	uint8_t hash[32];
	int r = CVM_OK;

	if (a->cfg.sys_config[0] == '\0' && a->cfg.simulator[0] != '\0') {
		char p[AGENT_PATH_MAX];

		if (path_join(p, sizeof(p), a->cfg.simulator, "sys-config.json") == CVM_OK && file_exists(p))
			memcpy(a->cfg.sys_config, p, sizeof(p));
	}
	if (a->cfg.sys_config[0] != '\0') {
		r = read_text(a->cfg.sys_config, AGENT_SYS_CONFIG_MAX, &text, &len, err, err_len);
		if (r != CVM_OK)
			return r;
		o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
		v = json_object_get(o, "vm_config");
		if (!json_is_object(o) || (v != NULL && !json_is_string(v))) {
			(void)snprintf(err, err_len, "%s: not a sys-config object with a vm_config string",
			               a->cfg.sys_config);
			r = CVM_E_FORMAT;
			goto out;
		}
		a->vm_config = strdup(v != NULL ? json_string_value(v) : "");
		a->sys_config_text = text; /* agent_kms_settle reads kms_urls */
		text = NULL;
	} else {
		a->vm_config = strdup("");
	}
	if (a->vm_config == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	/* os_image_hash as the host claims it (dstack takes it from vm_config). */
	vm = json_loads(a->vm_config, 0, &jerr);
	v = json_object_get(vm, "os_image_hash");
	if (json_is_string(v) && json_string_length(v) == 64 &&
	    cvm_hex_decode_exact(json_string_value(v), 64, hash, sizeof(hash)) == CVM_OK)
		cvm_hex_encode(hash, sizeof(hash), a->os_image_hash); /* lowercase */
out:
	json_decref(vm);
	json_decref(o);
	free(text);
	return r;
}

/* open_instance_info reads dstack's .instance_info, when given (or in the
 * simulator folder as instance_info.json): {"app_id": "<40 hex>"} is the
 * app id the host names (a KMS deployment's DstackApp contract address).
 * Other members (the guest's own copy keeps its instance id there) are
 * ignored; a malformed app_id is an error, never a silent fallback. */
static int open_instance_info(struct agent *a, char *err, size_t err_len)
{
	json_t *o = NULL, *v;
	json_error_t jerr;
	char *text = NULL;
	size_t len = 0;
	const char *h;
	int r;

	if (a->cfg.instance_info[0] == '\0' && a->cfg.simulator[0] != '\0') {
		char p[AGENT_PATH_MAX];

		if (path_join(p, sizeof(p), a->cfg.simulator, "instance_info.json") == CVM_OK &&
		    file_exists(p))
			memcpy(a->cfg.instance_info, p, sizeof(p));
	}
	if (a->cfg.instance_info[0] == '\0')
		return CVM_OK;
	r = read_text(a->cfg.instance_info, (size_t)64 * 1024, &text, &len, err, err_len);
	if (r != CVM_OK)
		return r;
	o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	v = json_object_get(o, "app_id");
	h = json_string_value(v);
	if (h != NULL && (h[0] == '0' && (h[1] == 'x' || h[1] == 'X')))
		h += 2;
	if (!json_is_object(o) || (v != NULL && (h == NULL || strlen(h) != 40 ||
	                                         cvm_hex_decode_exact(h, 40, a->app_id, 20) != CVM_OK))) {
		(void)snprintf(err, err_len, "%s: not an object whose app_id is 20 bytes of hex",
		               a->cfg.instance_info);
		r = CVM_E_FORMAT;
	} else {
		a->has_app_id = v != NULL;
	}
	/* the seed an earlier boot reported (instance-info on the host
	 * channel; the host keeps it here): the same instance id, hence the
	 * same keys and data disk (measure_app) */
	h = r == CVM_OK ? json_string_value(json_object_get(o, "instance_id_seed")) : NULL;
	if (h != NULL) {
		if (strlen(h) != (size_t)2 * CVM_INSTANCE_ID_LEN ||
		    cvm_hex_decode_exact(h, strlen(h), a->instance_seed, sizeof(a->instance_seed)) !=
		        CVM_OK) {
			(void)snprintf(err, err_len, "%s: instance_id_seed is not %d bytes of hex",
			               a->cfg.instance_info, CVM_INSTANCE_ID_LEN);
			r = CVM_E_FORMAT;
		} else {
			a->has_instance_seed = true;
		}
	}
	json_decref(o);
	free(text);
	return r;
}

/* read_dmi reads a one-line /sys/class/dmi/id file as printable text. */
static void read_dmi(const char *name, char *out, size_t cap)
{
	char path[128];
	uint8_t *buf = NULL;
	size_t len = 0, j = 0;

	out[0] = '\0';
	(void)snprintf(path, sizeof(path), "/sys/class/dmi/id/%s", name);
	if (cvm_file_read(path, 256, &buf, &len) != CVM_OK)
		return;
	for (size_t i = 0; i < len && j + 1 < cap && buf[i] != '\n'; i++) {
		char c = '?';

		if (buf[i] >= 0x20 && buf[i] < 0x7f)
			c = (char)buf[i];
		out[j++] = c;
	}
	out[j] = '\0';
	free(buf);
}

/* open_ccel reads the boot-time event log (TDX CCEL): RTMR0..2 events, as
 * dstack's read_event_log converts them (imr = MR index - 1). */
static int open_ccel(struct agent *a, char *err, size_t err_len)
{
	const char *path = a->cfg.ccel;
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	uint8_t *buf = NULL;
	size_t len = 0;
	bool has;
	int r;

	char sim_log[AGENT_PATH_MAX];

	if (path[0] == '\0' && a->cfg.simulator[0] != '\0' && a->tee_info.platform == CVM_TEE_PLATFORM_TDX) {
		/* a launched simulated TEE (cvm-vmmd's dev VMs) carries the boot
		 * log of what its RTMR0..2 were set to; a bare one has none and
		 * its RTMR0..2 stay zero */
		if (path_join(sim_log, sizeof(sim_log), a->cfg.simulator, "ccel.bin") != CVM_OK ||
		    !file_exists(sim_log))
			return CVM_OK;
		path = sim_log;
	}
	if (path[0] == '\0') {
		if (a->cfg.simulator[0] != '\0' || a->tee_info.platform != CVM_TEE_PLATFORM_TDX)
			return CVM_OK;
		path = "/sys/firmware/acpi/tables/data/CCEL";
		if (!file_exists(path)) {
			cvm_daemon_log(CVM_LOG_WARN, "ccel_missing", "path=%s boot_events=0", path);
			return CVM_OK;
		}
	}
	r = cvm_file_read(path, AGENT_CCEL_MAX, &buf, &len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read the CCEL %s: %s", path,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return r;
	}
	r = cvm_evl_parser_new_mem(buf, len, CVM_EVL_CCEL, &p);
	if (r != CVM_OK)
		goto out;
	a->boot = calloc(AGENT_BOOT_EVENTS_MAX, sizeof(*a->boot));
	if (a->boot == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (;;) {
		const struct cvm_evl_digest *d = NULL;
		struct agent_event *e;

		r = cvm_evl_parser_next(p, &ev, &has);
		if (r != CVM_OK || !has)
			break;
		if (ev.is_header || ev.type == CVM_EV_NO_ACTION || ev.reg == 0 || ev.reg > 4)
			continue;
		for (size_t i = 0; i < ev.digest_count; i++) {
			if (ev.digests[i].alg == CVM_DIGEST_SHA384 && ev.digests[i].len == 48)
				d = &ev.digests[i];
		}
		if (d == NULL)
			continue;
		if (a->boot_count == AGENT_BOOT_EVENTS_MAX) {
			r = CVM_E_TOO_LARGE;
			break;
		}
		e = &a->boot[a->boot_count];
		e->imr = ev.reg - 1;
		e->type = ev.type;
		memcpy(e->digest, d->p, 48);
		e->name = strdup("");
		e->payload = malloc(ev.data.len != 0 ? ev.data.len : 1);
		if (e->name == NULL || e->payload == NULL) {
			free(e->name);
			free(e->payload);
			r = CVM_E_NOMEM;
			break;
		}
		if (ev.data.len != 0)
			memcpy(e->payload, ev.data.p, ev.data.len);
		e->payload_len = ev.data.len;
		a->boot_count++;
	}
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot parse the CCEL %s: %s", path,
		               p != NULL ? cvm_evl_parser_err(p) : cvm_strerror(r));
out:
	cvm_evl_parser_free(p);
	free(buf);
	return r;
}

/* fixed_registers keeps the TD's MRCONFIGID, MROWNER and MROWNERCONFIG,
 * which never change, from one quote (they enter mr_aggregated). */
static int fixed_registers(struct agent *a, char *err, size_t err_len)
{
	struct cvm_tee_evidence ev;
	struct cvm_quote q;
	uint8_t rd[64];
	int r;

	if (a->tee_info.platform != CVM_TEE_PLATFORM_TDX)
		return CVM_OK;
	memset(rd, 0, sizeof(rd));
	memset(&ev, 0, sizeof(ev));
	r = cvm_tee_quote(a->tee, rd, &ev);
	if (r == CVM_OK)
		r = cvm_quote_parse(ev.data, ev.data_len, &q);
	if (r == CVM_OK && q.tee != CVM_TEE_TDX)
		r = CVM_E_FORMAT;
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "the TEE cannot make a quote: %s", cvm_strerror(r));
		goto out;
	}
	memcpy(a->mr_config_id, q.body.td.mr_config_id, 48);
	memcpy(a->mr_owner, q.body.td.mr_owner, 48);
	memcpy(a->mr_owner_config, q.body.td.mr_owner_config, 48);
out:
	cvm_tee_evidence_cleanup(&ev);
	return r;
}

/* measure_app extends RTMR3 with the app's identity on a fresh log, as
 * dstack's boot tool does (spec §5.2), when nothing else did. */
static int measure_app(struct agent *a, char *err, size_t err_len)
{
	uint8_t compose_hash[32], app_id[CVM_APP_ID_LEN], seed[CVM_INSTANCE_ID_LEN],
	    instance_id[CVM_INSTANCE_ID_LEN];
	const char *kp;
	char *id_hex = NULL, *kp_json = NULL;
	json_t *o = NULL;
	int r;

	cvm_sha256(a->app_compose, a->app_compose_len, compose_hash);
	if (a->has_app_id)
		memcpy(app_id, a->app_id, sizeof(app_id));
	else
		cvm_kdf_app_id_from_compose_hash(compose_hash, app_id);
	/* dstack's rule (spec §4.3): a new seed each boot, unless the data
	 * disk outlives the boot (a key provider whose keys persist) and an
	 * earlier boot's seed is given */
	if (a->has_instance_seed &&
	    (a->kms_mode || (a->keys != NULL && a->keys->key_provider != CVM_KEY_PROVIDER_NONE))) {
		memcpy(seed, a->instance_seed, sizeof(seed));
	} else {
		r = cvm_random_bytes(seed, sizeof(seed));
		if (r != CVM_OK)
			return r;
		memcpy(a->instance_seed, seed, sizeof(seed));
	}
	a->has_instance_seed = true; /* this boot's, for the host (instance-info) */
	cvm_kdf_instance_id(seed, app_id, NULL, instance_id);
	r = agent_emit_event(a, "system-preparing", 16, NULL, 0, NULL, err, err_len);
	if (r == CVM_OK)
		r = agent_emit_event(a, "app-id", 6, app_id, sizeof(app_id), NULL, err, err_len);
	if (r == CVM_OK)
		r = agent_emit_event(a, "compose-hash", 12, compose_hash, sizeof(compose_hash), NULL, err,
		                     err_len);
	if (r == CVM_OK)
		r = agent_emit_event(a, "instance-id", 11, instance_id,
		                     a->no_instance_id ? 0 : sizeof(instance_id), NULL, err, err_len);
	if (r == CVM_OK)
		r = agent_emit_event(a, "boot-mr-done", 12, NULL, 0, NULL, err, err_len);
	if (r != CVM_OK || a->kms_mode) {
		/* KMS: the rest once the KMS answered (agent_kms_open) */
		a->kms_measure = r == CVM_OK;
		if (r == CVM_OK)
			cvm_daemon_log(CVM_LOG_INFO, "measure_app", "events=5 app_name=%s rest=after_kms",
			               a->app_name);
		return r;
	}
	kp = cvm_key_provider_name(a->keys->key_provider);
	id_hex = cvm_hex_encode_new(a->keys->key_provider_id != NULL ? a->keys->key_provider_id
	                                                             : (const uint8_t *)"",
	                            a->keys->key_provider_id_len);
	o = id_hex == NULL ? NULL : json_pack("{s:s,s:s}", "name", kp != NULL ? kp : "none", "id", id_hex);
	kp_json = o == NULL ? NULL : json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	if (kp_json == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = agent_emit_event(a, "key-provider", 12, (const uint8_t *)kp_json, strlen(kp_json), NULL, err,
	                     err_len);
	/* the data disk before system-ready (spec §5.2): its key first */
	if (r == CVM_OK && a->cfg.boot_storage_hook[0] != '\0')
		r = agent_kms_write_disk_key(a, err, err_len);
	/* keys given by the host (appkeys, dev mode) may carry the env key */
	if (r == CVM_OK && a->cfg.boot_storage_hook[0] != '\0')
		r = agent_kms_write_env(a, err, err_len);
	if (r == CVM_OK)
		r = agent_boot_storage(a, false, err, err_len);
	if (r == CVM_OK)
		r = agent_emit_event(a, "system-ready", 12, NULL, 0, NULL, err, err_len);
	if (r == CVM_OK) {
		a->boot_storage_done = a->cfg.boot_storage_hook[0] != '\0';
		cvm_daemon_log(CVM_LOG_INFO, "measure_app", "events=%zu app_name=%s", a->rt.count,
		               a->app_name);
	}
out:
	free(kp_json);
	free(id_hex);
	json_decref(o);
	return r;
}

static int open_runtime_log(struct agent *a, char *err, size_t err_len)
{
	struct cvm_tee_measurements m;
	uint8_t replay[48], zero[48];
	char hex1[97], hex2[97];
	int r;

	if (a->cfg.runtime_log[0] == '\0') {
		if (a->cfg.simulator[0] != '\0') {
			char dir[AGENT_PATH_MAX];

			r = sim_state_dir(a, dir, sizeof(dir), err, err_len);
			if (r == CVM_OK)
				r = path_join(a->cfg.runtime_log, sizeof(a->cfg.runtime_log), dir,
				              "runtime_events.log");
			if (r != CVM_OK)
				return r;
		} else {
			(void)snprintf(a->cfg.runtime_log, sizeof(a->cfg.runtime_log),
			               "/run/log/dstack/runtime_events.log");
		}
	}
	r = agent_rtlog_open(&a->rt, a->cfg.runtime_log, err, err_len);
	if (r != CVM_OK)
		return r;
	if (a->tee_info.platform != CVM_TEE_PLATFORM_TDX)
		return CVM_OK;
	r = agent_rtlog_lock(&a->rt, LOCK_SH);
	if (r != CVM_OK)
		return r;
	r = cvm_tee_measurements(a->tee, &m);
	agent_rtlog_replay(&a->rt, replay);
	agent_rtlog_unlock(&a->rt);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read the TEE's registers: %s", cvm_strerror(r));
		return r;
	}
	memset(zero, 0, sizeof(zero));
	if (a->rt.count == 0 && memcmp(m.rtmr[3], zero, 48) == 0 && a->cfg.measure_app)
		return measure_app(a, err, err_len);
	if (memcmp(m.rtmr[3], replay, 48) != 0) {
		cvm_hex_encode(m.rtmr[3], 48, hex1);
		cvm_hex_encode(replay, 48, hex2);
		/* Quotes will not verify against this log; say so loudly, but keep
		 * serving (keys and the rest of the API still work). */
		cvm_daemon_log(CVM_LOG_ERROR, "rtmr3_mismatch", "log=%s events=%zu rtmr3=%s replayed=%s",
		               a->cfg.runtime_log, a->rt.count, hex1, hex2);
	}
	return CVM_OK;
}

/* ---- who may ask for raw report data (SEV-SNP) ------------------------------- */

/* parse_raw_uids reads raw_report_data_uids: "" (root and the agent's own
 * uid, as it runs after dropping privileges), "none", or uids and user
 * names separated by commas or spaces. */
static int parse_raw_uids(struct agent *a, char *err, size_t err_len)
{
	char text[AGENT_TEXT_MAX], *save = NULL, *tok;

	a->raw_uid_count = 0;
	a->raw_uids_default = a->cfg.raw_report_data_uids[0] == '\0';
	if (a->raw_uids_default || strcmp(a->cfg.raw_report_data_uids, "none") == 0)
		return CVM_OK;
	(void)snprintf(text, sizeof(text), "%s", a->cfg.raw_report_data_uids);
	for (tok = strtok_r(text, ", ", &save); tok != NULL; tok = strtok_r(NULL, ", ", &save)) {
		char *end = NULL;
		unsigned long v;

		if (a->raw_uid_count == AGENT_RAW_UIDS_MAX) {
			(void)snprintf(err, err_len, "raw_report_data_uids: more than %u entries",
			               AGENT_RAW_UIDS_MAX);
			return CVM_E_INVAL;
		}
		errno = 0;
		v = strtoul(tok, &end, 10);
		if (tok[0] >= '0' && tok[0] <= '9' && errno == 0 && *end == '\0' &&
		    v <= (unsigned long)UINT32_MAX - 1) {
			a->raw_uids[a->raw_uid_count++] = (uid_t)v;
			continue;
		}
		{
			struct passwd pw, *res = NULL;
			char buf[1024];

			if (getpwnam_r(tok, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
				(void)snprintf(
				    err, err_len,
				    "raw_report_data_uids: '%.40s' is neither a uid nor a user name", tok);
				return CVM_E_INVAL;
			}
			a->raw_uids[a->raw_uid_count++] = pw.pw_uid;
		}
	}
	if (a->raw_uid_count == 0) {
		(void)snprintf(err, err_len, "raw_report_data_uids: empty list (use none to allow nobody)");
		return CVM_E_INVAL;
	}
	return CVM_OK;
}

int agent_open(struct agent *a, char *err, size_t err_len)
{
	int r;

	a->rt.lock_fd = -1;
	if (a->cfg.simulator[0] != '\0') {
		enum cvm_tee_platform p = CVM_TEE_PLATFORM_TDX;

		if (strcmp(a->cfg.platform, "snp") == 0)
			p = CVM_TEE_PLATFORM_SNP;
		else if (strcmp(a->cfg.platform, "tdx") != 0) {
			(void)snprintf(err, err_len, "platform must be tdx or snp");
			return CVM_E_INVAL;
		}
		r = cvm_tee_open_sim(a->cfg.simulator, p, &a->tee);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "cannot open the simulator %s: %s", a->cfg.simulator,
			               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
			return r;
		}
	} else {
		r = cvm_tee_detect(NULL, &a->tee);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "no TEE found (%s); for development use --simulator DIR",
			               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
			return r;
		}
	}
	cvm_tee_info(a->tee, &a->tee_info);
	a->getkey_flags = a->cfg.separate_curves ? CVM_GETKEY_SEPARATE_CURVES : 0;
	r = open_compose(a, err, err_len);
	if (r != CVM_OK)
		return r;
	r = open_sys_config(a, err, err_len);
	if (r == CVM_OK)
		r = open_instance_info(a, err, err_len);
	if (r != CVM_OK)
		return r;
	/* the keys: from a KMS once the agent's identity is recorded
	 * (agent_kms_open, below), else from the local provider now */
	r = agent_kms_settle(a, err, err_len);
	if (r == CVM_OK && !a->kms_mode)
		r = open_keys(a, err, err_len);
	if (r != CVM_OK)
		return r;
	if (a->cfg.simulator[0] != '\0') {
		(void)snprintf(a->cloud_vendor, sizeof(a->cloud_vendor), "cvmkit");
		(void)snprintf(a->cloud_product, sizeof(a->cloud_product), "simulator");
	} else {
		read_dmi("sys_vendor", a->cloud_vendor, sizeof(a->cloud_vendor));
		read_dmi("product_name", a->cloud_product, sizeof(a->cloud_product));
	}
	r = open_ccel(a, err, err_len);
	if (r != CVM_OK)
		return r;
	r = fixed_registers(a, err, err_len);
	if (r != CVM_OK)
		return r;
	r = open_runtime_log(a, err, err_len);
	if (r != CVM_OK)
		return r;
	r = parse_raw_uids(a, err, err_len);
	if (r != CVM_OK)
		return r;
	r = agent_identity_open(a, err, err_len);
	if (r != CVM_OK)
		return r;
	r = agent_evidence_open(a, err, err_len);
	if (r != CVM_OK)
		return r;
	/* Before any request is served, so before any app can emit an event. */
	r = agent_record_system_events(a, err, err_len);
	if (r != CVM_OK)
		return r;
	return agent_kms_open(a, err, err_len);
}

void agent_close(struct agent *a)
{
	for (size_t i = 0; i < a->boot_count; i++) {
		free(a->boot[i].name);
		free(a->boot[i].payload);
	}
	free(a->boot);
	a->boot = NULL;
	a->boot_count = 0;
	if (a->rt.lock_fd >= 0 || a->rt.ev != NULL)
		agent_rtlog_close(&a->rt);
	free(a->quote_log);
	a->quote_log = NULL;
	free(a->app_compose);
	a->app_compose = NULL;
	free(a->app_name);
	a->app_name = NULL;
	free(a->vm_config);
	a->vm_config = NULL;
	free(a->sys_config_text);
	a->sys_config_text = NULL;
	agent_kms_close(a);
	cvm_appkeys_free(a->keys);
	a->keys = NULL;
	cvm_p256_keypair_free(a->identity);
	a->identity = NULL;
	cvm_tee_free(a->tee);
	a->tee = NULL;
}

int agent_quote(struct agent *a, const uint8_t report_data[64], struct cvm_tee_evidence *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	r = agent_rtlog_lock(&a->rt, LOCK_SH);
	if (r != CVM_OK)
		return r;
	r = cvm_tee_quote(a->tee, report_data, out);
	agent_rtlog_unlock(&a->rt);
	return r;
}

static bool name_ok(const char *name, size_t len)
{
	if (len == 0 || len > AGENT_EVENT_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		/* ':' separates name and payload in the digest (spec §5.3): a name
		 * holding one could collide with another (name, payload) pair. */
		if (name[i] < 0x20 || name[i] > 0x7e || name[i] == ':')
			return false;
	}
	return true;
}

/* quota_of finds the caller's budget: its uid's own (made on first use), or
 * the one the callers without a uid of their own share. */
static struct agent_quota *quota_of(struct agent *a, const struct agent_caller *caller)
{
	struct agent_quota *q;

	if (!caller->has_uid)
		return &a->quota_shared;
	for (size_t i = 0; i < a->quota_count; i++) {
		if (a->quota[i].uid == caller->uid)
			return &a->quota[i];
	}
	if (a->quota_count == AGENT_CALLERS_MAX)
		return &a->quota_shared;
	q = &a->quota[a->quota_count++];
	memset(q, 0, sizeof(*q));
	q->has_uid = true;
	q->uid = caller->uid;
	return q;
}

/* quota_who starts the message that a budget is used up. */
static void quota_who(const struct agent_quota *q, char *out, size_t cap)
{
	if (q->has_uid)
		(void)snprintf(out, cap, "uid %lu has used up its share", (unsigned long)q->uid);
	else
		(void)snprintf(out, cap,
		               "the callers without a uid of their own (TCP, or beyond %u uids) have used up "
		               "their common share",
		               AGENT_CALLERS_MAX);
}

/* What only a caller (not the agent) is held to: the system's names, its
 * share, and the room kept for the system (checked under the log's lock,
 * when the count is current). */
static int caller_name_check(const char *name, char *err, size_t err_len)
{
	static const char prefix[] = CVM_EVIDENCE_SYSTEM_PREFIX;

	if (!cvm_evidence_is_system_event(name, strlen(name)))
		return CVM_OK;
	if (strncasecmp(name, prefix, sizeof(prefix) - 1) == 0)
		(void)snprintf(
		    err, err_len,
		    "event names starting with '%s' are reserved for the system: the agent records "
		    "its identity key and the TPM's attestation key there",
		    prefix);
	else
		(void)snprintf(err, err_len, "event name %s is reserved for boot measurements", name);
	return CVM_E_POLICY;
}

static int caller_share_check(const struct agent *a, const struct agent_quota *q, size_t payload_len,
                              char *err, size_t err_len)
{
	char who[128];

	quota_who(q, who, sizeof(who));
	if (q->events >= a->cfg.caller_events_max) {
		(void)snprintf(err, err_len,
		               "%s of the runtime event log: %zu events (caller_events_max = %llu)", who,
		               q->events, (unsigned long long)a->cfg.caller_events_max);
		return CVM_E_TOO_LARGE;
	}
	if (payload_len > a->cfg.caller_payload_max - q->payload) {
		(void)snprintf(err, err_len,
		               "%s of the runtime event log: %zu payload bytes, %zu more asked "
		               "(caller_payload_max = %llu)",
		               who, q->payload, payload_len, (unsigned long long)a->cfg.caller_payload_max);
		return CVM_E_TOO_LARGE;
	}
	return CVM_OK;
}

static int app_room_check(const struct agent *a, size_t payload_len, char *err, size_t err_len)
{
	if (a->rt.count >= AGENT_APP_EVENTS_MAX) {
		(void)snprintf(err, err_len,
		               "the runtime event log has no room left for app events: %zu of %u events are "
		               "used, and the last %u are kept for system events",
		               a->rt.count, AGENT_RUNTIME_EVENTS_MAX, AGENT_SYSTEM_EVENTS_RESERVED);
		return CVM_E_TOO_LARGE;
	}
	if (a->rt.payload_total > AGENT_APP_PAYLOAD_MAX ||
	    payload_len > AGENT_APP_PAYLOAD_MAX - a->rt.payload_total) {
		(void)snprintf(
		    err, err_len,
		    "the runtime event log has no room left for app events: %zu of %zu payload bytes "
		    "are used, %zu more asked, and the last %zu are kept for system events",
		    a->rt.payload_total, AGENT_RUNTIME_PAYLOAD_TOTAL, payload_len,
		    AGENT_SYSTEM_PAYLOAD_RESERVED);
		return CVM_E_TOO_LARGE;
	}
	return CVM_OK;
}

int agent_emit_event_locked(struct agent *a, const char *name, const uint8_t *payload, size_t payload_len,
                            char *err, size_t err_len)
{
	uint8_t digest[48];
	off_t undo = -1;
	int r;

	r = cvm_evl_dstack_digest(name, payload, payload_len, 1, digest);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot compute the event digest: %s", cvm_strerror(r));
		return r;
	}
	r = agent_rtlog_append(&a->rt, name, payload, payload_len, digest, &undo);
	if (r != CVM_OK) {
		if (r == CVM_E_TOO_LARGE)
			(void)snprintf(err, err_len,
			               "the runtime event log is full (%u events, %zu payload bytes)",
			               AGENT_RUNTIME_EVENTS_MAX, AGENT_RUNTIME_PAYLOAD_TOTAL);
		else
			(void)snprintf(err, err_len, "cannot append to the runtime event log: %s",
			               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return r;
	}
	r = cvm_tee_extend(a->tee, 3, digest);
	if (r != CVM_OK) {
		agent_rtlog_undo(&a->rt, undo);
		(void)snprintf(err, err_len, "cannot extend RTMR3: %s", cvm_strerror(r));
	}
	return r;
}

int agent_emit_event(struct agent *a, const char *name, size_t name_len, const uint8_t *payload,
                     size_t payload_len, const struct agent_caller *caller, char *err, size_t err_len)
{
	struct agent_quota *q = NULL;
	char *copy = NULL;
	int r;

	if (!name_ok(name, name_len)) {
		(void)snprintf(
		    err, err_len,
		    "invalid event name: 1 to %u printable ASCII characters, no ':' (it separates name and "
		    "payload in the digest)",
		    AGENT_EVENT_NAME_MAX);
		return CVM_E_INVAL;
	}
	if (payload_len > AGENT_EVENT_PAYLOAD_MAX) {
		(void)snprintf(err, err_len, "event payload too large (at most %zu bytes)",
		               AGENT_EVENT_PAYLOAD_MAX);
		return CVM_E_TOO_LARGE;
	}
	copy = strndup(name, name_len);
	if (copy == NULL)
		return CVM_E_NOMEM;
	if (caller != NULL) {
		r = caller_name_check(copy, err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	if (a->tee_info.platform != CVM_TEE_PLATFORM_TDX) {
		(void)snprintf(err, err_len, "EmitEvent needs RTMR3: this TEE is not TDX");
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	if (caller != NULL) {
		q = quota_of(a, caller);
		r = caller_share_check(a, q, payload_len, err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	r = agent_rtlog_lock(&a->rt, LOCK_EX);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot lock the runtime event log: %s", cvm_strerror(r));
		goto out;
	}
	r = q != NULL ? app_room_check(a, payload_len, err, err_len) : CVM_OK;
	if (r == CVM_OK)
		r = agent_emit_event_locked(a, copy, payload, payload_len, err, err_len);
	agent_rtlog_unlock(&a->rt);
	if (r == CVM_OK) {
		char k[CVM_KV_MAX], who[32] = "agent";

		if (q != NULL) {
			q->events++;
			q->payload += payload_len;
			if (q->has_uid)
				(void)snprintf(who, sizeof(who), "uid:%lu", (unsigned long)q->uid);
			else
				(void)snprintf(who, sizeof(who), "shared");
		}
		cvm_daemon_log(CVM_LOG_INFO, "emit_event", "name=%s payload_len=%zu events=%zu caller=%s",
		               cvm_kv(copy, k), payload_len, a->rt.count, who);
	}
out:
	free(copy);
	return r;
}

size_t agent_system_boundary(const struct agent *a)
{
	for (size_t i = 0; i < a->rt.count; i++) {
		if (!cvm_evidence_is_system_event(a->rt.ev[i].name, strlen(a->rt.ev[i].name)))
			return i;
	}
	return a->rt.count;
}

bool agent_raw_report_data_allowed(const struct agent *a, const struct agent_caller *caller)
{
	if (!caller->has_uid)
		return false;
	if (a->raw_uids_default)
		return caller->uid == 0 || caller->uid == getuid();
	for (size_t i = 0; i < a->raw_uid_count; i++) {
		if (a->raw_uids[i] == caller->uid)
			return true;
	}
	return false;
}

int agent_caller_report_data(const struct agent *a, const struct agent_caller *caller, uint8_t rd[64])
{
	uint8_t in[64];
	int r;

	if (a->tee_info.platform == CVM_TEE_PLATFORM_TDX || agent_raw_report_data_allowed(a, caller))
		return CVM_OK;
	memcpy(in, rd, sizeof(in));
	r = cvm_evidence_caller_report_data(in, rd);
	return r;
}

const struct agent_event *agent_find_event(const struct agent *a, const char *name)
{
	for (size_t i = 0; i < a->rt.count; i++) {
		if (strcmp(a->rt.ev[i].name, "system-ready") == 0)
			break;
		if (strcmp(a->rt.ev[i].name, name) == 0)
			return &a->rt.ev[i];
	}
	return NULL;
}

/* Appraisal policy: the strict defaults and the policy file (JSON, see
 * docs/policy.md). appraise.c applies a policy to an authentic verdict.
 *
 * A policy file only ever states what a relying party accepts. Unknown keys
 * are errors, so that a misspelt key ("alow_debug") can never leave a check
 * at a value the author did not mean. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/report.h>

#include "core/core_lib.h"

#include "verify_int.h"

/* ---- defaults ---------------------------------------------------------- */

void cvm_policy_init(struct cvm_policy *p)
{
	memset(p, 0, sizeof(*p));
	p->accepted_tcb_statuses = 1u << CVM_TCB_UP_TO_DATE;
	p->accepted_advisory_count = 0;
	p->accept_any_advisory = false;
	p->allow_debug = false;
	p->require_sept_ve_disable = true;
	p->require_zero_mr_service_td = true;
	p->allow_reserved_attributes = false;
	p->snp.allow_smt = true;
	p->snp.vmpl = 0;
	p->snp.require_crl = true;
}

/* ---- policy file ------------------------------------------------------- */

#define KEY_SHOWN_MAX 64

/* set_err writes one sentence into `err` and evaluates to CVM_E_FORMAT, so
 * that callers can write `return set_err(...)` (core's cvm_err_set). */
#define set_err(err, err_len, ...) cvm_err_set((err), (err_len), CVM_E_FORMAT, __VA_ARGS__)

/* show_str copies an untrusted string for an error message: printable ASCII
 * only, other bytes as '?', at most KEY_SHOWN_MAX characters. */
static void show_str(const char *s, size_t len, char out[KEY_SHOWN_MAX + 4])
{
	size_t n = len < KEY_SHOWN_MAX ? len : KEY_SHOWN_MAX;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '"')
			out[i] = (char)c;
		else
			out[i] = '?';
	}
	if (len > n) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number with a fraction or exponent";
	case JSON_TRUE:
		return "true";
	case JSON_FALSE:
		return "false";
	case JSON_NULL:
		return "null";
	}
	return "an unknown JSON value";
}

struct perr {
	char *buf;
	size_t len;
};

static int get_bool(const json_t *v, const char *key, bool *out, struct perr *e)
{
	if (!json_is_boolean(v))
		return set_err(e->buf, e->len, "%s: expected true or false, got %s", key, json_kind(v));
	*out = json_is_true(v);
	return CVM_OK;
}

static int get_u16(const json_t *v, const char *key, uint16_t *out, struct perr *e)
{
	json_int_t n;

	if (!json_is_integer(v))
		return set_err(e->buf, e->len, "%s: expected an integer from 0 to 65535, got %s", key,
		               json_kind(v));
	n = json_integer_value(v);
	if (n < 0 || n > 65535)
		return set_err(e->buf, e->len,
		               "%s: expected an integer from 0 to 65535, got %" JSON_INTEGER_FORMAT, key, n);
	*out = (uint16_t)n;
	return CVM_OK;
}

static int get_uint(const json_t *v, const char *key, json_int_t max, json_int_t *out, struct perr *e)
{
	json_int_t n;

	if (!json_is_integer(v))
		return set_err(e->buf, e->len,
		               "%s: expected an integer from 0 to %" JSON_INTEGER_FORMAT ", got %s", key, max,
		               json_kind(v));
	n = json_integer_value(v);
	if (n < 0 || n > max)
		return set_err(e->buf, e->len,
		               "%s: expected an integer from 0 to %" JSON_INTEGER_FORMAT
		               ", got %" JSON_INTEGER_FORMAT,
		               key, max, n);
	*out = n;
	return CVM_OK;
}

/* get_hex decodes exactly `n` bytes written as 2*n hex digits. */
static int get_hex(const json_t *v, const char *key, uint8_t *out, size_t n, bool *set, struct perr *e)
{
	const char *s;
	size_t len;

	if (!json_is_string(v))
		return set_err(e->buf, e->len, "%s: expected a string of %zu hex digits (%zu bytes), got %s",
		               key, 2 * n, n, json_kind(v));
	s = json_string_value(v);
	len = json_string_length(v);
	if (len != 2 * n)
		return set_err(e->buf, e->len, "%s: expected %zu hex digits (%zu bytes), got %zu", key, 2 * n,
		               n, len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');

		if (!ok)
			return set_err(e->buf, e->len,
			               "%s: expected %zu hex digits (%zu bytes), got a non-hex character at "
			               "position %zu",
			               key, 2 * n, n, i + 1);
	}
	if (cvm_hex_decode_exact(s, len, out, n) != CVM_OK)
		return set_err(e->buf, e->len, "%s: expected %zu hex digits (%zu bytes)", key, 2 * n, n);
	*set = true;
	return CVM_OK;
}

static int get_statuses(const json_t *v, struct cvm_policy *p, struct perr *e)
{
	const char *key = "accepted_tcb_statuses";
	uint32_t mask = 0;
	size_t i;
	json_t *it;

	if (!json_is_array(v))
		return set_err(e->buf, e->len, "%s: expected an array of TCB status names, got %s", key,
		               json_kind(v));
	if (json_array_size(v) == 0)
		return set_err(
		    e->buf, e->len,
		    "%s: expected at least one TCB status (an empty list would reject every quote)", key);
	json_array_foreach(v, i, it)
	{
		enum cvm_tcb_status found = CVM_TCB_NONE;
		char shown[KEY_SHOWN_MAX + 4];
		const char *s;
		size_t len;

		if (!json_is_string(it))
			return set_err(e->buf, e->len, "%s[%zu]: expected a TCB status name, got %s", key, i,
			               json_kind(it));
		s = json_string_value(it);
		len = json_string_length(it);
		for (int st = CVM_TCB_UP_TO_DATE; st < CVM_TCB_STATUS_COUNT; st++) {
			const char *name = cvm_tcb_status_name((enum cvm_tcb_status)st);

			if (strlen(name) == len && memcmp(name, s, len) == 0) {
				found = (enum cvm_tcb_status)st;
				break;
			}
		}
		show_str(s, len, shown);
		if (found == CVM_TCB_NONE)
			return set_err(
			    e->buf, e->len,
			    "%s[%zu]: unknown TCB status \"%s\"; expected one of UpToDate, "
			    "SWHardeningNeeded, ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, "
			    "OutOfDate, OutOfDateConfigurationNeeded (Intel's names, case matters)",
			    key, i, shown);
		if (found == CVM_TCB_REVOKED)
			return set_err(
			    e->buf, e->len,
			    "%s[%zu]: \"Revoked\" cannot be accepted: Intel's rules reject a revoked TCB "
			    "before any policy applies",
			    key, i);
		mask |= 1u << found;
	}
	p->accepted_tcb_statuses = mask;
	return CVM_OK;
}

static bool advisory_id_ok(const char *s, size_t len)
{
	if (len == 0 || len >= CVM_ADVISORY_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          c == '-' || c == '_' || c == '.';

		if (!ok)
			return false;
	}
	return true;
}

static int get_advisories(const json_t *v, struct cvm_policy *p, struct perr *e)
{
	const char *key = "accepted_advisory_ids";
	size_t i;
	json_t *it;

	if (!json_is_array(v))
		return set_err(e->buf, e->len, "%s: expected an array of advisory IDs (or [\"*\"]), got %s",
		               key, json_kind(v));
	/* The list in the file replaces the one already in the policy. */
	p->accepted_advisory_count = 0;
	p->accept_any_advisory = false;
	memset(p->accepted_advisories, 0, sizeof(p->accepted_advisories));
	json_array_foreach(v, i, it)
	{
		char shown[KEY_SHOWN_MAX + 4];
		const char *s;
		size_t len;
		bool dup = false;

		if (!json_is_string(it))
			return set_err(e->buf, e->len, "%s[%zu]: expected an advisory ID string, got %s", key,
			               i, json_kind(it));
		s = json_string_value(it);
		len = json_string_length(it);
		if (len == 1 && s[0] == '*') {
			if (json_array_size(v) != 1)
				return set_err(
				    e->buf, e->len,
				    "%s[%zu]: \"*\" accepts every advisory and must be the only entry", key,
				    i);
			p->accept_any_advisory = true;
			continue;
		}
		if (!advisory_id_ok(s, len)) {
			show_str(s, len, shown);
			return set_err(
			    e->buf, e->len,
			    "%s[%zu]: expected an advisory ID such as \"INTEL-SA-00334\" (letters, digits "
			    "and '-', at most %u characters), got \"%s\"",
			    key, i, (unsigned)CVM_ADVISORY_ID_MAX - 1u, shown);
		}
		for (size_t j = 0; j < p->accepted_advisory_count; j++) {
			if (strlen(p->accepted_advisories[j]) == len &&
			    memcmp(p->accepted_advisories[j], s, len) == 0)
				dup = true;
		}
		if (dup)
			continue;
		if (p->accepted_advisory_count == CVM_POLICY_ADVISORIES_MAX)
			return set_err(e->buf, e->len, "%s: more than %u advisory IDs", key,
			               (unsigned)CVM_POLICY_ADVISORIES_MAX);
		memcpy(p->accepted_advisories[p->accepted_advisory_count], s, len);
		p->accepted_advisories[p->accepted_advisory_count][len] = '\0';
		p->accepted_advisory_count++;
	}
	return CVM_OK;
}

static int unknown_key(const char *section, const char *k, const char *known, struct perr *e)
{
	char shown[KEY_SHOWN_MAX + 4];

	show_str(k, strlen(k), shown);
	return set_err(e->buf, e->len, "%s%s%s: unknown key (known keys: %s)", section, section[0] ? "." : "",
	               shown, known);
}

static int get_tdx(json_t *v, struct cvm_policy *p, struct perr *e)
{
	static const char *const rtmr_keys[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
	const char *k;
	json_t *val;
	int r;

	if (!json_is_object(v))
		return set_err(e->buf, e->len, "tdx: expected an object, got %s", json_kind(v));
	json_object_foreach(v, k, val)
	{
		char path[48];
		struct cvm_expect48 *m = NULL;

		(void)snprintf(path, sizeof(path), "tdx.%.40s", k);
		if (strcmp(k, "require_sept_ve_disable") == 0) {
			r = get_bool(val, path, &p->require_sept_ve_disable, e);
		} else if (strcmp(k, "require_zero_mr_service_td") == 0) {
			r = get_bool(val, path, &p->require_zero_mr_service_td, e);
		} else if (strcmp(k, "allow_reserved_attributes") == 0) {
			r = get_bool(val, path, &p->allow_reserved_attributes, e);
		} else {
			if (strcmp(k, "mr_td") == 0)
				m = &p->mr_td;
			else if (strcmp(k, "mr_config_id") == 0)
				m = &p->mr_config_id;
			else if (strcmp(k, "mr_owner") == 0)
				m = &p->mr_owner;
			else if (strcmp(k, "mr_owner_config") == 0)
				m = &p->mr_owner_config;
			else if (strcmp(k, "mr_seam") == 0)
				m = &p->mr_seam;
			for (size_t i = 0; i < 4 && m == NULL; i++) {
				if (strcmp(k, rtmr_keys[i]) == 0)
					m = &p->rtmr[i];
			}
			if (m == NULL)
				return unknown_key(
				    "tdx", k,
				    "require_sept_ve_disable, require_zero_mr_service_td, "
				    "allow_reserved_attributes, mr_td, mr_config_id, mr_owner, "
				    "mr_owner_config, mr_seam, rtmr0, rtmr1, rtmr2, rtmr3",
				    e);
			r = get_hex(val, path, m->v, sizeof(m->v), &m->set, e);
		}
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

static int get_sgx(json_t *v, struct cvm_policy *p, struct perr *e)
{
	const char *k;
	json_t *val;
	int r;

	if (!json_is_object(v))
		return set_err(e->buf, e->len, "sgx: expected an object, got %s", json_kind(v));
	json_object_foreach(v, k, val)
	{
		if (strcmp(k, "mr_enclave") == 0) {
			r = get_hex(val, "sgx.mr_enclave", p->mr_enclave.v, sizeof(p->mr_enclave.v),
			            &p->mr_enclave.set, e);
		} else if (strcmp(k, "mr_signer") == 0) {
			r = get_hex(val, "sgx.mr_signer", p->mr_signer.v, sizeof(p->mr_signer.v),
			            &p->mr_signer.set, e);
		} else if (strcmp(k, "isv_prod_id") == 0) {
			r = get_u16(val, "sgx.isv_prod_id", &p->isv_prod_id, e);
			if (r == CVM_OK)
				p->isv_prod_id_set = true;
		} else if (strcmp(k, "isv_svn_min") == 0) {
			r = get_u16(val, "sgx.isv_svn_min", &p->isv_svn_min, e);
		} else {
			return unknown_key("sgx", k, "mr_enclave, mr_signer, isv_prod_id, isv_svn_min", e);
		}
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

static int get_min_tcb(json_t *v, struct cvm_policy_snp *snp, struct perr *e)
{
	const char *k;
	json_t *val;
	json_int_t n = 0;
	int r;

	if (!json_is_object(v))
		return set_err(e->buf, e->len, "snp.min_tcb: expected an object, got %s", json_kind(v));
	json_object_foreach(v, k, val)
	{
		struct cvm_min8 *m = NULL;
		char path[48];

		if (strcmp(k, "bootloader") == 0)
			m = &snp->min_bootloader;
		else if (strcmp(k, "tee") == 0)
			m = &snp->min_tee;
		else if (strcmp(k, "snp") == 0)
			m = &snp->min_snp;
		else if (strcmp(k, "microcode") == 0)
			m = &snp->min_microcode;
		else if (strcmp(k, "fmc") == 0)
			m = &snp->min_fmc;
		if (m == NULL)
			return unknown_key("snp.min_tcb", k, "bootloader, tee, snp, microcode, fmc", e);
		(void)snprintf(path, sizeof(path), "snp.min_tcb.%.24s", k);
		r = get_uint(val, path, 255, &n, e);
		if (r != CVM_OK)
			return r;
		m->set = true;
		m->v = (uint8_t)n;
	}
	return CVM_OK;
}

static int get_snp(json_t *v, struct cvm_policy *p, struct perr *e)
{
	struct cvm_policy_snp *snp = &p->snp;
	const char *k;
	json_t *val;
	json_int_t n = 0;
	int r;

	if (!json_is_object(v))
		return set_err(e->buf, e->len, "snp: expected an object, got %s", json_kind(v));
	json_object_foreach(v, k, val)
	{
		if (strcmp(k, "allow_debug") == 0) {
			r = get_bool(val, "snp.allow_debug", &snp->allow_debug, e);
			snp->allow_debug_set = r == CVM_OK;
		} else if (strcmp(k, "allow_migration_agent") == 0) {
			r = get_bool(val, "snp.allow_migration_agent", &snp->allow_migration_agent, e);
		} else if (strcmp(k, "allow_smt") == 0) {
			r = get_bool(val, "snp.allow_smt", &snp->allow_smt, e);
		} else if (strcmp(k, "require_crl") == 0) {
			r = get_bool(val, "snp.require_crl", &snp->require_crl, e);
		} else if (strcmp(k, "vmpl") == 0) {
			if (json_is_string(val) && strcmp(json_string_value(val), "any") == 0) {
				snp->vmpl_any = true;
				r = CVM_OK;
			} else {
				r = get_uint(val, "snp.vmpl", 3, &n, e);
				if (r == CVM_OK) {
					snp->vmpl_any = false;
					snp->vmpl = (uint32_t)n;
				} else if (!json_is_integer(val)) {
					r = set_err(
					    e->buf, e->len,
					    "snp.vmpl: expected an integer from 0 to 3 or \"any\", got %s",
					    json_kind(val));
				}
			}
		} else if (strcmp(k, "min_tcb") == 0) {
			r = get_min_tcb(val, snp, e);
		} else if (strcmp(k, "min_guest_svn") == 0) {
			r = get_uint(val, "snp.min_guest_svn", 0xffffffff, &n, e);
			if (r == CVM_OK)
				snp->min_guest_svn = (uint32_t)n;
		} else if (strcmp(k, "measurement") == 0) {
			r = get_hex(val, "snp.measurement", snp->measurement.v, sizeof(snp->measurement.v),
			            &snp->measurement.set, e);
		} else if (strcmp(k, "host_data") == 0) {
			r = get_hex(val, "snp.host_data", snp->host_data.v, sizeof(snp->host_data.v),
			            &snp->host_data.set, e);
		} else if (strcmp(k, "report_data") == 0) {
			r = get_hex(val, "snp.report_data", snp->report_data.v, sizeof(snp->report_data.v),
			            &snp->report_data.set, e);
		} else if (strcmp(k, "id_key_digest") == 0) {
			r = get_hex(val, "snp.id_key_digest", snp->id_key_digest.v,
			            sizeof(snp->id_key_digest.v), &snp->id_key_digest.set, e);
		} else if (strcmp(k, "author_key_digest") == 0) {
			r = get_hex(val, "snp.author_key_digest", snp->author_key_digest.v,
			            sizeof(snp->author_key_digest.v), &snp->author_key_digest.set, e);
		} else if (strcmp(k, "family_id") == 0) {
			r = get_hex(val, "snp.family_id", snp->family_id.v, sizeof(snp->family_id.v),
			            &snp->family_id.set, e);
		} else if (strcmp(k, "image_id") == 0) {
			r = get_hex(val, "snp.image_id", snp->image_id.v, sizeof(snp->image_id.v),
			            &snp->image_id.set, e);
		} else {
			return unknown_key(
			    "snp", k,
			    "require_crl, allow_debug, allow_migration_agent, allow_smt, vmpl, min_tcb, "
			    "min_guest_svn, measurement, host_data, report_data, id_key_digest, "
			    "author_key_digest, family_id, image_id",
			    e);
		}
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

/* policy_snp_expectation names the first SNP-only expected value, or NULL (the
 * SNP booleans and the VMPL are settings, not expectations). */
const char *policy_snp_expectation(const struct cvm_policy *p)
{
	const struct cvm_policy_snp *s = &p->snp;

	if (s->measurement.set)
		return "snp.measurement";
	if (s->host_data.set)
		return "snp.host_data";
	if (s->report_data.set)
		return "snp.report_data";
	if (s->id_key_digest.set)
		return "snp.id_key_digest";
	if (s->author_key_digest.set)
		return "snp.author_key_digest";
	if (s->family_id.set)
		return "snp.family_id";
	if (s->image_id.set)
		return "snp.image_id";
	if (s->min_bootloader.set || s->min_tee.set || s->min_snp.set || s->min_microcode.set ||
	    s->min_fmc.set)
		return "snp.min_tcb";
	if (s->min_guest_svn != 0)
		return "snp.min_guest_svn";
	return NULL;
}

/* policy_tdx_expectation names the first TDX-only expected value, or NULL. */
const char *policy_tdx_expectation(const struct cvm_policy *p)
{
	static const char *const rtmr_names[4] = {"tdx.rtmr0", "tdx.rtmr1", "tdx.rtmr2", "tdx.rtmr3"};

	if (p->mr_td.set)
		return "tdx.mr_td";
	if (p->mr_config_id.set)
		return "tdx.mr_config_id";
	if (p->mr_owner.set)
		return "tdx.mr_owner";
	if (p->mr_owner_config.set)
		return "tdx.mr_owner_config";
	if (p->mr_seam.set)
		return "tdx.mr_seam";
	for (size_t i = 0; i < 4; i++) {
		if (p->rtmr[i].set)
			return rtmr_names[i];
	}
	return NULL;
}

/* policy_sgx_expectation names the first SGX-only expected value, or NULL. */
const char *policy_sgx_expectation(const struct cvm_policy *p)
{
	if (p->mr_enclave.set)
		return "sgx.mr_enclave";
	if (p->mr_signer.set)
		return "sgx.mr_signer";
	if (p->isv_prod_id_set)
		return "sgx.isv_prod_id";
	if (p->isv_svn_min != 0)
		return "sgx.isv_svn_min";
	return NULL;
}

static int parse_root(json_t *root, struct cvm_policy *p, struct perr *e)
{
	const char *k;
	const char *t, *s, *a;
	json_t *val;
	int r;

	if (!json_is_object(root))
		return set_err(e->buf, e->len, "expected a JSON object at the top level, got %s",
		               json_kind(root));
	json_object_foreach(root, k, val)
	{
		if (strcmp(k, "accepted_tcb_statuses") == 0)
			r = get_statuses(val, p, e);
		else if (strcmp(k, "accepted_advisory_ids") == 0)
			r = get_advisories(val, p, e);
		else if (strcmp(k, "allow_debug") == 0)
			r = get_bool(val, "allow_debug", &p->allow_debug, e);
		else if (strcmp(k, "tdx") == 0)
			r = get_tdx(val, p, e);
		else if (strcmp(k, "sgx") == 0)
			r = get_sgx(val, p, e);
		else if (strcmp(k, "snp") == 0)
			r = get_snp(val, p, e);
		else if (strcmp(k, "report_data") == 0)
			r = get_hex(val, "report_data", p->report_data.v, sizeof(p->report_data.v),
			            &p->report_data.set, e);
		else
			return unknown_key(
			    "", k,
			    "accepted_tcb_statuses, accepted_advisory_ids, allow_debug, tdx, sgx, snp, "
			    "report_data",
			    e);
		if (r != CVM_OK)
			return r;
	}
	t = policy_tdx_expectation(p);
	s = policy_sgx_expectation(p);
	a = policy_snp_expectation(p);
	if (t != NULL && s != NULL)
		return set_err(
		    e->buf, e->len,
		    "%s and %s: the policy expects both a TDX and an SGX measurement, which no quote "
		    "can match; write one policy per TEE",
		    t, s);
	if (a != NULL && (t != NULL || s != NULL))
		return set_err(
		    e->buf, e->len,
		    "%s and %s: the policy expects both an SEV-SNP and %s value, which no evidence "
		    "can match; write one policy per TEE",
		    t != NULL ? t : s, a, t != NULL ? "a TDX" : "an SGX");
	return CVM_OK;
}

int cvm_policy_parse_json(const char *json, size_t len, struct cvm_policy *p, char *err, size_t err_len)
{
	struct cvm_policy *tmp = NULL;
	struct perr e = {err, err_len};
	json_error_t jerr;
	json_t *root = NULL;
	int r;

	if (err != NULL && err_len != 0)
		err[0] = '\0';
	if (json == NULL || p == NULL) {
		(void)set_err(err, err_len, "no policy text given");
		return CVM_E_INVAL;
	}
	if (len > (size_t)CVM_POLICY_JSON_MAX) {
		(void)set_err(err, err_len, "the policy is %zu bytes, larger than the limit of %zu bytes",
		              len, (size_t)CVM_POLICY_JSON_MAX);
		return CVM_E_TOO_LARGE;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		r = set_err(err, err_len, "invalid JSON at line %d, column %d: %s", jerr.line, jerr.column,
		            jerr.text);
		goto out;
	}
	/* Parse into a copy, so a policy with an error leaves `p` as it was. */
	tmp = malloc(sizeof(*tmp));
	if (tmp == NULL) {
		r = CVM_E_NOMEM;
		(void)set_err(err, err_len, "out of memory");
		goto out;
	}
	memcpy(tmp, p, sizeof(*tmp));
	r = parse_root(root, tmp, &e);
	if (r != CVM_OK)
		goto out;
	memcpy(p, tmp, sizeof(*p));
out:
	free(tmp);
	json_decref(root);
	return r;
}

int cvm_policy_load_file(const char *path, struct cvm_policy *p, char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	if (err != NULL && err_len != 0)
		err[0] = '\0';
	r = cvm_file_read(path, (size_t)CVM_POLICY_JSON_MAX, &buf, &len);
	if (r == CVM_E_TOO_LARGE) {
		(void)set_err(err, err_len, "the policy file is larger than the limit of %zu bytes",
		              (size_t)CVM_POLICY_JSON_MAX);
		goto out;
	}
	if (r == CVM_E_SYSTEM) {
		int saved = errno;

		(void)set_err(err, err_len, "cannot read the policy file: %s", strerror(saved));
		errno = saved;
		goto out;
	}
	if (r != CVM_OK) {
		(void)set_err(err, err_len, "cannot read the policy file: %s", cvm_strerror(r));
		goto out;
	}
	r = cvm_policy_parse_json((const char *)buf, len, p, err, err_len);
out:
	free(buf);
	return r;
}

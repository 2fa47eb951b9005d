/* Appraisal policy: the strict defaults, the policy file (JSON, see
 * docs/policy.md) and the appraisal of an authentic DCAP verdict.
 *
 * A policy file only ever states what a relying party accepts. Unknown keys
 * are errors, so that a misspelt key ("alow_debug") can never leave a check
 * at a value the author did not mean. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/report.h>

/* ---- bounded text ---------------------------------------------------- */

/* struct text appends to a fixed buffer; a text that did not fit ends in
 * "...", so a reader knows something is missing. */
struct text {
	char *buf;
	size_t cap;
	size_t len;
};

static void text_init(struct text *t, char *buf, size_t cap)
{
	t->buf = buf;
	t->cap = cap;
	t->len = 0;
	if (cap != 0)
		buf[0] = '\0';
}

__attribute__((format(printf, 2, 3))) static void text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->cap == 0 || t->len >= t->cap - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= t->cap - t->len) {
		t->len = t->cap - 1;
		if (t->cap > 4)
			memcpy(t->buf + t->cap - 4, "...", 4);
		return;
	}
	t->len += (size_t)n;
}

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
}

/* ---- policy file ------------------------------------------------------- */

#define KEY_SHOWN_MAX 64

/* set_err writes one sentence into `err`; it returns CVM_E_FORMAT so that
 * callers can write `return set_err(...)`. */
__attribute__((format(printf, 3, 4))) static int set_err(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_len == 0)
		return CVM_E_FORMAT;
	va_start(ap, fmt);
	(void)vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
	return CVM_E_FORMAT;
}

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

/* tdx_expectation names the first TDX-only expected value, or NULL. */
static const char *tdx_expectation(const struct cvm_policy *p)
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

/* sgx_expectation names the first SGX-only expected value, or NULL. */
static const char *sgx_expectation(const struct cvm_policy *p)
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
	const char *t, *s;
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
		else if (strcmp(k, "report_data") == 0)
			r = get_hex(val, "report_data", p->report_data.v, sizeof(p->report_data.v),
			            &p->report_data.set, e);
		else
			return unknown_key(
			    "", k,
			    "accepted_tcb_statuses, accepted_advisory_ids, allow_debug, tdx, sgx, "
			    "report_data",
			    e);
		if (r != CVM_OK)
			return r;
	}
	t = tdx_expectation(p);
	s = sgx_expectation(p);
	if (t != NULL && s != NULL)
		return set_err(
		    e->buf, e->len,
		    "%s and %s: the policy expects both a TDX and an SGX measurement, which no quote "
		    "can match; write one policy per TEE",
		    t, s);
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

/* ---- appraisal --------------------------------------------------------- */

static void statuses_text(uint32_t mask, struct text *t)
{
	bool first = true;

	for (int st = CVM_TCB_UP_TO_DATE; st < CVM_TCB_STATUS_COUNT; st++) {
		if ((mask & (1u << st)) == 0)
			continue;
		text_add(t, "%s%s", first ? "" : ", ", cvm_tcb_status_name((enum cvm_tcb_status)st));
		first = false;
	}
	if (first)
		text_add(t, "none");
}

static bool advisory_accepted(const struct cvm_policy *p, const char *id)
{
	for (size_t i = 0; i < p->accepted_advisory_count && i < CVM_POLICY_ADVISORIES_MAX; i++) {
		if (strncmp(p->accepted_advisories[i], id, CVM_ADVISORY_ID_MAX) == 0)
			return true;
	}
	return false;
}

static bool check_tcb_status(const struct cvm_policy *p, const struct cvm_dcap_result *res,
                             struct cvm_report *rep)
{
	char acc[CVM_REPORT_DETAIL_MAX];
	struct text t;
	enum cvm_tcb_status st = res->tcb_status;

	text_init(&t, acc, sizeof(acc));
	statuses_text(p->accepted_tcb_statuses, &t);
	if (st == CVM_TCB_NONE || (int)st < 0 || st >= CVM_TCB_STATUS_COUNT) {
		cvm_report_add(rep, "policy.tcb_status", false,
		               "no TCB level matched, so there is no status to accept (accepted: %s)", acc);
		return false;
	}
	if (st == CVM_TCB_REVOKED || (p->accepted_tcb_statuses & (1u << st)) == 0) {
		cvm_report_add(rep, "policy.tcb_status", false,
		               "TCB status %s is not accepted (accepted: %s)", cvm_tcb_status_name(st), acc);
		return false;
	}
	cvm_report_add(rep, "policy.tcb_status", true, "TCB status %s is accepted", cvm_tcb_status_name(st));
	return true;
}

static bool check_advisories(const struct cvm_policy *p, const struct cvm_dcap_result *res,
                             struct cvm_report *rep)
{
	char buf[CVM_REPORT_DETAIL_MAX];
	struct text t;
	size_t n = res->advisory_count < CVM_ADVISORIES_MAX ? res->advisory_count : CVM_ADVISORIES_MAX;
	size_t bad = 0;

	text_init(&t, buf, sizeof(buf));
	if (n == 0) {
		cvm_report_add(rep, "policy.advisories", true, "no advisories");
		return true;
	}
	if (p->accept_any_advisory) {
		for (size_t i = 0; i < n; i++)
			text_add(&t, "%s%.*s", i ? ", " : "", CVM_ADVISORY_ID_MAX, res->advisory_ids[i]);
		cvm_report_add(rep, "policy.advisories", true, "%zu advisor%s accepted by \"*\": %s", n,
		               n == 1 ? "y" : "ies", buf);
		return true;
	}
	for (size_t i = 0; i < n; i++) {
		if (advisory_accepted(p, res->advisory_ids[i]))
			continue;
		text_add(&t, "%s%.*s", bad ? ", " : "", CVM_ADVISORY_ID_MAX, res->advisory_ids[i]);
		bad++;
	}
	if (bad != 0) {
		cvm_report_add(rep, "policy.advisories", false, "%zu of %zu advisor%s not accepted: %s", bad,
		               n, n == 1 ? "y is" : "ies are", buf);
		return false;
	}
	cvm_report_add(rep, "policy.advisories", true, "all %zu advisor%s accepted", n,
	               n == 1 ? "y is" : "ies are");
	return true;
}

static bool check_debug(const struct cvm_policy *p, const struct cvm_quote *q, struct cvm_report *rep)
{
	bool is_debug;
	char what[64];

	if (q->tee == CVM_TEE_TDX) {
		uint64_t a = cvm_td_attributes(&q->body.td);

		is_debug = (a & CVM_TD_ATTR_DEBUG) != 0;
		(void)snprintf(what, sizeof(what), "TD DEBUG attribute (td_attributes 0x%016" PRIx64 ")", a);
	} else {
		is_debug = (q->body.sgx.attributes[0] & CVM_SGX_ATTR_DEBUG) != 0;
		(void)snprintf(what, sizeof(what), "SGX DEBUG attribute (attributes[0] 0x%02x)",
		               q->body.sgx.attributes[0]);
	}
	if (!is_debug) {
		cvm_report_add(rep, "policy.debug", true, "%s is clear", what);
		return true;
	}
	if (p->allow_debug) {
		cvm_report_add(rep, "policy.debug", true, "%s is set; allowed by allow_debug", what);
		return true;
	}
	cvm_report_add(rep, "policy.debug", false,
	               "%s is set: a debug %s offers no confidentiality and the policy does not allow debug",
	               what, q->tee == CVM_TEE_TDX ? "TD" : "enclave");
	return false;
}

static bool check_tdx_attributes(const struct cvm_policy *p, const struct cvm_tdx_report *td,
                                 struct cvm_report *rep)
{
	uint64_t a = cvm_td_attributes(td);
	uint64_t reserved = a & CVM_TD_ATTR_RESERVED;
	bool ok = true;

	if ((a & CVM_TD_ATTR_SEPT_VE_DISABLE) != 0) {
		cvm_report_add(rep, "policy.sept_ve_disable", true, "SEPT_VE_DISABLE (bit 28) is set");
	} else if (!p->require_sept_ve_disable) {
		cvm_report_add(rep, "policy.sept_ve_disable", true,
		               "SEPT_VE_DISABLE (bit 28) is clear; not required by the policy");
	} else {
		cvm_report_add(rep, "policy.sept_ve_disable", false,
		               "SEPT_VE_DISABLE (bit 28) is clear in td_attributes 0x%016" PRIx64
		               ": the TD may receive #VE on EPT violations, and the policy requires the bit",
		               a);
		ok = false;
	}
	if (reserved == 0) {
		cvm_report_add(rep, "policy.reserved_attributes", true,
		               "no reserved TD attribute bit is set");
	} else if (p->allow_reserved_attributes) {
		cvm_report_add(rep, "policy.reserved_attributes", true,
		               "reserved TD attribute bits 0x%016" PRIx64 " are set; allowed by the policy",
		               reserved);
	} else {
		cvm_report_add(rep, "policy.reserved_attributes", false,
		               "reserved TD attribute bits 0x%016" PRIx64
		               " are set in td_attributes 0x%016" PRIx64
		               ", and the policy does not allow them",
		               reserved, a);
		ok = false;
	}
	if (td->is_td15) {
		bool zero = true;

		for (size_t i = 0; i < sizeof(td->mr_service_td); i++) {
			if (td->mr_service_td[i] != 0)
				zero = false;
		}
		if (zero) {
			cvm_report_add(rep, "policy.mr_service_td", true,
			               "MR_SERVICE_TD is zero (no service TD bound)");
		} else if (!p->require_zero_mr_service_td) {
			cvm_report_add(rep, "policy.mr_service_td", true,
			               "MR_SERVICE_TD is non-zero; allowed by the policy");
		} else {
			char hex[2 * sizeof(td->mr_service_td) + 1];

			cvm_hex_encode(td->mr_service_td, sizeof(td->mr_service_td), hex);
			cvm_report_add(
			    rep, "policy.mr_service_td", false,
			    "MR_SERVICE_TD is non-zero (%s): a service TD is bound to this TD, and the "
			    "policy requires none",
			    hex);
			ok = false;
		}
	}
	return ok;
}

/* check_value compares one measurement with its expected value. */
static bool check_value(const char *name, const char *label, const uint8_t *want, const uint8_t *got,
                        size_t n, struct cvm_report *rep)
{
	char w[2 * 64 + 1], g[2 * 64 + 1];

	if (n > 64) {
		cvm_report_add(rep, name, false, "%s: %zu bytes is longer than any measurement", label, n);
		return false;
	}
	cvm_hex_encode(got, n, g);
	if (memcmp(want, got, n) == 0) {
		cvm_report_add(rep, name, true, "%s matches %s", label, g);
		return true;
	}
	cvm_hex_encode(want, n, w);
	cvm_report_add(rep, name, false, "%s mismatch: expected %s, got %s", label, w, g);
	return false;
}

static bool check_tdx_measurements(const struct cvm_policy *p, const struct cvm_tdx_report *td,
                                   struct cvm_report *rep)
{
	static const char *const rtmr_steps[4] = {"policy.rtmr0", "policy.rtmr1", "policy.rtmr2",
	                                          "policy.rtmr3"};
	static const char *const rtmr_labels[4] = {"RTMR0", "RTMR1", "RTMR2", "RTMR3"};
	bool ok = true;

	if (p->mr_td.set)
		ok &= check_value("policy.mr_td", "MRTD", p->mr_td.v, td->mr_td, sizeof(td->mr_td), rep);
	if (p->mr_config_id.set)
		ok &= check_value("policy.mr_config_id", "MRCONFIGID", p->mr_config_id.v, td->mr_config_id,
		                  sizeof(td->mr_config_id), rep);
	if (p->mr_owner.set)
		ok &= check_value("policy.mr_owner", "MROWNER", p->mr_owner.v, td->mr_owner,
		                  sizeof(td->mr_owner), rep);
	if (p->mr_owner_config.set)
		ok &= check_value("policy.mr_owner_config", "MROWNERCONFIG", p->mr_owner_config.v,
		                  td->mr_owner_config, sizeof(td->mr_owner_config), rep);
	if (p->mr_seam.set)
		ok &= check_value("policy.mr_seam", "MRSEAM", p->mr_seam.v, td->mr_seam, sizeof(td->mr_seam),
		                  rep);
	for (size_t i = 0; i < 4; i++) {
		if (p->rtmr[i].set)
			ok &= check_value(rtmr_steps[i], rtmr_labels[i], p->rtmr[i].v, td->rtmr[i],
			                  sizeof(td->rtmr[i]), rep);
	}
	return ok;
}

static bool check_sgx_measurements(const struct cvm_policy *p, const struct cvm_sgx_report *s,
                                   struct cvm_report *rep)
{
	bool ok = true;

	if (p->mr_enclave.set)
		ok &= check_value("policy.mr_enclave", "MRENCLAVE", p->mr_enclave.v, s->mr_enclave,
		                  sizeof(s->mr_enclave), rep);
	if (p->mr_signer.set)
		ok &= check_value("policy.mr_signer", "MRSIGNER", p->mr_signer.v, s->mr_signer,
		                  sizeof(s->mr_signer), rep);
	if (p->isv_prod_id_set) {
		if (s->isv_prod_id == p->isv_prod_id) {
			cvm_report_add(rep, "policy.isv_prod_id", true, "ISVPRODID %u matches",
			               s->isv_prod_id);
		} else {
			cvm_report_add(rep, "policy.isv_prod_id", false,
			               "ISVPRODID mismatch: expected %u, got %u", p->isv_prod_id,
			               s->isv_prod_id);
			ok = false;
		}
	}
	if (p->isv_svn_min != 0) {
		if (s->isv_svn >= p->isv_svn_min) {
			cvm_report_add(rep, "policy.isv_svn", true, "ISVSVN %u is at least %u", s->isv_svn,
			               p->isv_svn_min);
		} else {
			cvm_report_add(rep, "policy.isv_svn", false, "ISVSVN %u is below the minimum %u",
			               s->isv_svn, p->isv_svn_min);
			ok = false;
		}
	}
	return ok;
}

int cvm_policy_appraise_quote(const struct cvm_policy *p, const struct cvm_dcap_result *res,
                              struct cvm_report *rep)
{
	const struct cvm_quote *q;
	const char *other;
	bool ok = true;

	if (p == NULL || res == NULL) {
		cvm_report_add(rep, "policy", false, "no policy or no verdict to appraise");
		return CVM_E_INVAL;
	}
	q = &res->quote;
	/* Fail closed: a policy only ever appraises evidence already found
	 * authentic by the vendor's rules. */
	if (!res->authentic) {
		cvm_report_add(rep, "policy.authentic", false,
		               "the quote was not verified as authentic, so no policy can accept it");
		return CVM_E_POLICY;
	}
	if (q->tee == CVM_TEE_TDX && q->body_type != CVM_BODY_TD10 && q->body_type != CVM_BODY_TD15) {
		cvm_report_add(rep, "policy.tee", false, "TDX quote without a TD report body");
		return CVM_E_POLICY;
	}
	if (q->tee == CVM_TEE_SGX && q->body_type != CVM_BODY_SGX) {
		cvm_report_add(rep, "policy.tee", false, "SGX quote without an enclave report body");
		return CVM_E_POLICY;
	}
	if (q->tee != CVM_TEE_TDX && q->tee != CVM_TEE_SGX) {
		cvm_report_add(rep, "policy.tee", false, "the quote is from an unknown TEE");
		return CVM_E_POLICY;
	}
	other = q->tee == CVM_TEE_TDX ? sgx_expectation(p) : tdx_expectation(p);
	if (other != NULL) {
		cvm_report_add(
		    rep, "policy.tee", false,
		    "the policy sets %s, which only an %s quote can match, but this quote is from %s", other,
		    q->tee == CVM_TEE_TDX ? "SGX" : "TDX",
		    q->tee == CVM_TEE_TDX ? "a TDX TD" : "an SGX enclave");
		ok = false;
	}
	/* The attribute checks come first: a debug TEE or a TD without
	 * SEPT_VE_DISABLE is unacceptable whatever its TCB, so the first
	 * failure a person reads is the most fundamental one. */
	ok &= check_debug(p, q, rep);
	if (q->tee == CVM_TEE_TDX)
		ok &= check_tdx_attributes(p, &q->body.td, rep);
	ok &= check_tcb_status(p, res, rep);
	ok &= check_advisories(p, res, rep);
	if (q->tee == CVM_TEE_TDX)
		ok &= check_tdx_measurements(p, &q->body.td, rep);
	else
		ok &= check_sgx_measurements(p, &q->body.sgx, rep);
	if (p->report_data.set) {
		const uint8_t *rd = q->tee == CVM_TEE_TDX ? q->body.td.report_data : q->body.sgx.report_data;

		ok &= check_value("policy.report_data", "REPORTDATA", p->report_data.v, rd, 64, rep);
	}
	return ok ? CVM_OK : CVM_E_POLICY;
}

/* cvmkit's own verify call, POST /cvmkit/v1/verify (verifier.h).
 *
 * The body is a raw DCAP quote or SEV-SNP report (application/octet-stream)
 * or JSON {"quote": hex} / {"report": hex} with optional "policy" (a policy
 * object as docs/policy.md describes; default: the configured one) and
 * "product" (an SNP report's product when the report does not name it).
 * The answer (200 for every verdict, accepted or not):
 *   {"ok", "tee", "tcb_status", "advisory_ids", "measurements", "steps",
 *    "trust_anchor", "collateral": {"source", "age_seconds", "stale",
 *    "expires", "upstream_error"}, "reason"}
 * 400 for a body that is neither; 503 when the collateral the evidence needs
 * cannot be had or used (not cached and no upstream, the upstream failed,
 * expired), so that "rejected" never stands for "could not check". Evidence
 * that does not parse far enough to name its collateral is rejected.
 *
 * This is the hot path: the collateral comes verified from the handle's
 * warm set (cvm_cache_dcap_warm, cvm_cache_amd_warm); per request only the
 * evidence's own signatures and the policy are checked.
 *
 * An evidence bundle (include/cvmkit/evidence.h, what cvm-agentd's
 * GetEvidence answers) comes as JSON {"evidence": {...}, "nonce": hex} with
 * optional "policy", "product", "require_tpm" and "require_ima". Its TEE
 * quote or report names the collateral, which comes from the cache
 * (cvm_cache_dcap, cvm_cache_amd: assembled per request, since
 * cvm_evidence_verify checks the collateral itself against the configured
 * anchor), and cvm_evidence_verify checks the whole bundle against the
 * nonce. The answer is the quote's plus an "evidence" object (the bundle's
 * binding, TPM, IMA and PCR results). A bundle that does not parse is
 * rejected (step evidence.parse), like a quote that does not parse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/evidence.h>
#include <cvmkit/tee.h>
#include <cvmkit/verify.h>

#include "verifier.h"

static const char *const raw_params[] = {"product", NULL};

/* struct request is a decoded body. */
struct request {
	const uint8_t *evidence; /* the request's body (raw) or `owned` (JSON hex) */
	uint8_t *owned;
	size_t len;
	bool is_snp;
	uint8_t *vlek; /* {"vlek": hex}: the VLEK of a VLEK-signed report (DER or PEM) */
	size_t vlek_len;
	bool has_policy;
	struct cvm_policy policy;
	enum cvm_snp_product product;
	/* {"evidence": ...}: the parsed bundle, or why it does not parse */
	bool is_bundle;
	struct cvm_evidence *ev;
	int ev_r;
	char ev_err[256];
	uint8_t nonce[CVM_EVIDENCE_NONCE_MAX];
	size_t nonce_len;
	bool require_tpm, require_ima;
};

/* looks_like_snp tells a report from a quote by the fixed header: an SNP
 * report starts with a 32-bit version (2..5), a quote with a 16-bit
 * version (3..5) and a 16-bit attestation key type (2 or 3, never 0). */
static bool looks_like_snp(const uint8_t *b, size_t len)
{
	struct cvm_rd r;
	uint32_t v;

	cvm_rd_init(&r, b, len);
	return len == CVM_SNP_REPORT_LEN && cvm_rd_u32le(&r, &v) && v >= 2 && v <= 5;
}

static int decode_hex_field(const json_t *v, const char *name, uint8_t **out, size_t *out_len, char *err,
                            size_t err_len)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	uint8_t *b;

	if (s == NULL || n == 0 || n % 2 != 0 || n / 2 > CVM_QUOTE_MAX) {
		(void)snprintf(err, err_len, "\"%s\" must be a non-empty hex string of at most %zu bytes",
		               name, CVM_QUOTE_MAX);
		return CVM_E_FORMAT;
	}
	b = malloc(n / 2);
	if (b == NULL)
		return CVM_E_NOMEM;
	if (cvm_hex_decode_exact(s, n, b, n / 2) != CVM_OK) {
		free(b);
		(void)snprintf(err, err_len, "\"%s\" is not hex", name);
		return CVM_E_FORMAT;
	}
	*out = b;
	*out_len = n / 2;
	return CVM_OK;
}

static bool known_key(const char *key)
{
	static const char *const keys[] = {"quote",   "report",      "evidence",    "nonce", "policy",
	                                   "product", "require_tpm", "require_ima", "vlek"};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i]) == 0)
			return true;
	}
	return false;
}

static int parse_flag(const json_t *o, const char *name, bool *out, char *err, size_t err_len)
{
	const json_t *v = json_object_get(o, name);

	if (v == NULL)
		return CVM_OK;
	if (!json_is_boolean(v)) {
		(void)snprintf(err, err_len, "\"%s\" must be true or false", name);
		return CVM_E_FORMAT;
	}
	*out = json_is_true(v);
	return CVM_OK;
}

/* parse_bundle reads "evidence", "nonce" and the require_* flags. A bundle
 * that cvm_evidence_parse refuses is no request error: it is the evidence
 * at fault, rejected with the parser's reason (rq->ev_r, rq->ev_err). */
static int parse_bundle(const json_t *o, struct request *rq, char *err, size_t err_len)
{
	const json_t *v = json_object_get(o, "nonce");
	char *text;
	int r;

	/* cvm_hex_decode refuses more than sizeof(rq->nonce) bytes */
	if (!json_is_string(v) ||
	    cvm_hex_decode(json_string_value(v), json_string_length(v), rq->nonce, sizeof(rq->nonce),
	                   &rq->nonce_len) != CVM_OK ||
	    rq->nonce_len < CVM_EVIDENCE_NONCE_MIN) {
		(void)snprintf(err, err_len,
		               "\"nonce\" is required with \"evidence\": the nonce the bundle answers, %u "
		               "to %u bytes as hex",
		               CVM_EVIDENCE_NONCE_MIN, CVM_EVIDENCE_NONCE_MAX);
		return CVM_E_FORMAT;
	}
	if (parse_flag(o, "require_tpm", &rq->require_tpm, err, err_len) != CVM_OK ||
	    parse_flag(o, "require_ima", &rq->require_ima, err, err_len) != CVM_OK)
		return CVM_E_FORMAT;
	v = json_object_get(o, "evidence");
	if (!json_is_object(v)) {
		(void)snprintf(err, err_len,
		               "\"evidence\" must be an object: the bundle as cvm-agentd's GetEvidence "
		               "answers it");
		return CVM_E_FORMAT;
	}
	/* the bundle's parser reads text; the body's size bounds it */
	text = json_dumps(v, JSON_COMPACT);
	if (text == NULL)
		return CVM_E_NOMEM;
	rq->ev_r =
	    cvm_evidence_parse((const uint8_t *)text, strlen(text), &rq->ev, rq->ev_err, sizeof(rq->ev_err));
	free(text);
	r = rq->ev_r == CVM_E_NOMEM ? CVM_E_NOMEM : CVM_OK;
	return r;
}

static int parse_json(const struct cvm_http_req *req, struct request *rq, char *err, size_t err_len)
{
	json_error_t je;
	json_t *o, *v;
	const char *key;
	int r = CVM_E_FORMAT;

	o = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL || !json_is_object(o)) {
		(void)snprintf(err, err_len, "the body is not a JSON object: %s",
		               o == NULL ? je.text : "not an object");
		goto out;
	}
	json_object_foreach(o, key, v)
	{
		if (!known_key(key)) {
			(void)snprintf(err, err_len,
			               "unknown key in the request (known: quote, report, evidence, nonce, "
			               "policy, product, require_tpm, require_ima, vlek)");
			goto out;
		}
	}
	if ((json_object_get(o, "quote") != NULL) + (json_object_get(o, "report") != NULL) +
	        (json_object_get(o, "evidence") != NULL) !=
	    1) {
		(void)snprintf(err, err_len, "give exactly one of \"quote\", \"report\" and \"evidence\"");
		goto out;
	}
	rq->is_bundle = json_object_get(o, "evidence") != NULL;
	if (rq->is_bundle) {
		r = parse_bundle(o, rq, err, err_len);
		if (r != CVM_OK)
			goto out;
	} else {
		/* a nonce that were accepted but not checked would mislead: for a
		 * bare quote or report the policy's report_data is the check */
		if (json_object_get(o, "nonce") != NULL || json_object_get(o, "require_tpm") != NULL ||
		    json_object_get(o, "require_ima") != NULL) {
			(void)snprintf(err, err_len,
			               "\"nonce\", \"require_tpm\" and \"require_ima\" go with \"evidence\" "
			               "only (for a quote or report, an expected nonce goes into the policy "
			               "as report_data)");
			goto out;
		}
		rq->is_snp = json_object_get(o, "report") != NULL;
		r = decode_hex_field(json_object_get(o, rq->is_snp ? "report" : "quote"),
		                     rq->is_snp ? "report" : "quote", &rq->owned, &rq->len, err, err_len);
		rq->evidence = rq->owned;
		if (r != CVM_OK)
			goto out;
	}
	if (json_object_get(o, "vlek") != NULL) {
		/* the VLEK is provisioned to the cloud provider, not served by
		 * chip: a VLEK-signed report comes with it */
		if (!rq->is_snp || rq->is_bundle) {
			(void)snprintf(err, err_len, "\"vlek\" goes with \"report\" only");
			r = CVM_E_FORMAT;
			goto out;
		}
		r = decode_hex_field(json_object_get(o, "vlek"), "vlek", &rq->vlek, &rq->vlek_len, err,
		                     err_len);
		if (r != CVM_OK)
			goto out;
	}
	r = CVM_E_FORMAT;
	v = json_object_get(o, "product");
	if (v != NULL) {
		if (json_is_string(v))
			rq->product = cvm_snp_product_parse(json_string_value(v), json_string_length(v));
		if (rq->product == CVM_SNP_PRODUCT_UNKNOWN) {
			(void)snprintf(err, err_len, "\"product\" must be Milan, Genoa or Turin");
			goto out;
		}
	}
	v = json_object_get(o, "policy");
	if (v != NULL) {
		char *text;
		char perr[256];

		if (!json_is_object(v)) {
			(void)snprintf(err, err_len, "\"policy\" must be an object (docs/policy.md)");
			goto out;
		}
		text = json_dumps(v, JSON_COMPACT);
		if (text == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		cvm_policy_init(&rq->policy);
		r = cvm_policy_parse_json(text, strlen(text), &rq->policy, perr, sizeof(perr));
		free(text);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "\"policy\": %s", perr);
			r = CVM_E_FORMAT;
			goto out;
		}
		rq->has_policy = true;
	}
	r = CVM_OK;
out:
	json_decref(o);
	return r;
}

static int parse_request(const struct cvm_http_req *req, struct request *rq, char *err, size_t err_len)
{
	const char *ct = req->content_type != NULL ? req->content_type : "";

	memset(rq, 0, sizeof(*rq));
	if (req->body_len == 0) {
		(void)snprintf(err, err_len,
		               "empty body: send a quote or report (application/octet-stream) or JSON");
		return CVM_E_FORMAT;
	}
	if (strncmp(ct, "application/octet-stream", strlen("application/octet-stream")) == 0) {
		char prod[16];
		int q;

		if (req->body_len > CVM_QUOTE_MAX) {
			(void)snprintf(err, err_len, "the evidence is larger than %zu bytes", CVM_QUOTE_MAX);
			return CVM_E_TOO_LARGE;
		}
		if (!vd_query_only(req->query, raw_params)) {
			(void)snprintf(err, err_len, "unknown query parameter (known: product)");
			return CVM_E_FORMAT;
		}
		/* an SNP report before version 3 does not name its product */
		q = vd_query_get(req->query, "product", prod, sizeof(prod));
		if (q == 1)
			rq->product = cvm_snp_product_parse(prod, strlen(prod));
		if (q < 0 || (q == 1 && rq->product == CVM_SNP_PRODUCT_UNKNOWN)) {
			(void)snprintf(err, err_len,
			               "query parameter 'product' must be Milan, Genoa or Turin");
			return CVM_E_FORMAT;
		}
		rq->evidence = req->body; /* borrowed: the hot path copies nothing */
		rq->len = req->body_len;
		rq->is_snp = looks_like_snp(rq->evidence, rq->len);
		return CVM_OK;
	}
	if (req->query != NULL && req->query[0] != '\0') {
		(void)snprintf(err, err_len,
		               "a JSON request takes no query parameters (\"product\" goes in the body)");
		return CVM_E_FORMAT;
	}
	return parse_json(req, rq, err, err_len);
}

static int set_hex(json_t *o, const char *key, const uint8_t *b, size_t n)
{
	char *h = cvm_hex_encode_new(b, n);
	int r;

	if (h == NULL)
		return -1;
	r = json_object_set_new(o, key, json_string(h));
	free(h);
	return r;
}

static json_t *measurements_dcap(const struct cvm_dcap_result *res)
{
	json_t *m = json_object();
	const struct cvm_quote *q = &res->quote;

	if (m == NULL)
		return NULL;
	if (q->tee == CVM_TEE_TDX) {
		const struct cvm_tdx_report *t = &q->body.td;
		static const char *const rt[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};

		(void)set_hex(m, "mr_td", t->mr_td, sizeof(t->mr_td));
		for (size_t i = 0; i < 4; i++)
			(void)set_hex(m, rt[i], t->rtmr[i], sizeof(t->rtmr[i]));
		(void)set_hex(m, "mr_config_id", t->mr_config_id, sizeof(t->mr_config_id));
		(void)set_hex(m, "mr_owner", t->mr_owner, sizeof(t->mr_owner));
		(void)set_hex(m, "mr_owner_config", t->mr_owner_config, sizeof(t->mr_owner_config));
		(void)set_hex(m, "mr_seam", t->mr_seam, sizeof(t->mr_seam));
		(void)set_hex(m, "td_attributes", t->td_attributes, sizeof(t->td_attributes));
		(void)set_hex(m, "report_data", t->report_data, sizeof(t->report_data));
	} else {
		const struct cvm_sgx_report *s = &q->body.sgx;

		(void)set_hex(m, "mr_enclave", s->mr_enclave, sizeof(s->mr_enclave));
		(void)set_hex(m, "mr_signer", s->mr_signer, sizeof(s->mr_signer));
		(void)json_object_set_new(m, "isv_prod_id", json_integer(s->isv_prod_id));
		(void)json_object_set_new(m, "isv_svn", json_integer(s->isv_svn));
		(void)set_hex(m, "attributes", s->attributes, sizeof(s->attributes));
		(void)set_hex(m, "report_data", s->report_data, sizeof(s->report_data));
	}
	return m;
}

static json_t *measurements_snp(const struct cvm_amd_result *res)
{
	json_t *m = json_object();
	const struct cvm_snp_report *r = &res->report;

	if (m == NULL)
		return NULL;
	if (!res->parsed)
		return m;
	(void)set_hex(m, "measurement", r->measurement, sizeof(r->measurement));
	(void)set_hex(m, "host_data", r->host_data, sizeof(r->host_data));
	(void)set_hex(m, "id_key_digest", r->id_key_digest, sizeof(r->id_key_digest));
	(void)set_hex(m, "author_key_digest", r->author_key_digest, sizeof(r->author_key_digest));
	(void)set_hex(m, "report_data", r->report_data, sizeof(r->report_data));
	(void)json_object_set_new(m, "guest_svn", json_integer(r->guest_svn));
	(void)json_object_set_new(m, "vmpl", json_integer(r->vmpl));
	(void)json_object_set_new(m, "policy", json_integer((json_int_t)r->policy));
	return m;
}

static json_t *steps_json(const struct cvm_report *rep)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < rep->count && i < CVM_REPORT_STEPS_MAX; i++)
		(void)json_array_append_new(a, json_pack("{s:s, s:b, s:s}", "name", rep->steps[i].name, "ok",
		                                         rep->steps[i].ok, "detail", rep->steps[i].detail));
	return a;
}

static json_t *collateral_json(const struct cvm_cache_info *info, int64_t now)
{
	return json_pack("{s:s, s:I, s:b, s:I, s:I, s:s?}", "source", cvm_cache_source_name(info->source),
	                 "age_seconds", (json_int_t)info->age_s, "stale",
	                 info->source == CVM_CACHE_FROM_STALE, "expires", (json_int_t)info->expires,
	                 "expires_in", (json_int_t)(info->expires - now), "upstream_error",
	                 info->upstream_err[0] != '\0' ? info->upstream_err : NULL);
}

/* ---- the answer, written directly ---------------------------------------
 * The quote and report answers are the hot path's output: written with the
 * bounded writer rather than built as a jansson tree and dumped (that was a
 * third of a worker's time per request). Same shape and order as the
 * jansson answers of the other paths; strings are escaped to ASCII. */

#define ANSWER_MAX ((size_t)1024 * 1024)

/* j_str writes `s` as a JSON string: runs of plain characters in one
 * append each (a call per byte was a fifth of a worker's time). */
static void j_str(struct cvm_wr *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s, *run = p;

	cvm_wr_u8(w, '"');
	for (;; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\')
			continue;
		cvm_wr_bytes(w, run, (size_t)(p - run));
		if (*p == '\0')
			break;
		if (*p == '"' || *p == '\\') {
			char e[2] = {'\\', (char)*p};

			cvm_wr_bytes(w, e, sizeof(e));
		} else {
			char e[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};

			cvm_wr_bytes(w, e, sizeof(e));
		}
		run = p + 1;
	}
	cvm_wr_u8(w, '"');
}

/* j_key writes `,"key":` (no comma before the first member); keys are
 * the literals of this file, plain ASCII. */
static void j_key(struct cvm_wr *w, bool *first, const char *key)
{
	size_t n = strlen(key), comma = *first ? 0 : 1;
	uint8_t *d = cvm_wr_reserve(w, comma + n + 3);

	*first = false;
	if (d == NULL)
		return;
	if (comma != 0)
		*d++ = ',';
	*d++ = '"';
	memcpy(d, key, n); /* NOLINT(bugprone-not-null-terminated-result): JSON text, no NUL */
	d[n] = '"';
	d[n + 1] = ':';
}

static void j_hex(struct cvm_wr *w, bool *first, const char *key, const uint8_t *b, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t *d;

	j_key(w, first, key);
	d = cvm_wr_reserve(w, 2 * n + 2);
	if (d == NULL)
		return;
	*d++ = '"';
	for (size_t i = 0; i < n; i++) {
		*d++ = (uint8_t)hex[b[i] >> 4];
		*d++ = (uint8_t)hex[b[i] & 15];
	}
	*d = '"';
}

static void j_int(struct cvm_wr *w, bool *first, const char *key, long long v)
{
	char digits[24];
	size_t i = sizeof(digits);
	/* the magnitude as unsigned: -LLONG_MIN does not fit a long long */
	unsigned long long m = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	j_key(w, first, key);
	do {
		digits[--i] = (char)('0' + m % 10);
		m /= 10;
	} while (m != 0);
	if (v < 0)
		digits[--i] = '-';
	cvm_wr_bytes(w, digits + i, sizeof(digits) - i);
}

static void j_bool(struct cvm_wr *w, bool *first, const char *key, bool v)
{
	j_key(w, first, key);
	cvm_wr_str(w, v ? "true" : "false");
}

/* j_strkey writes a string member, or null for NULL. */
static void j_strkey(struct cvm_wr *w, bool *first, const char *key, const char *v)
{
	j_key(w, first, key);
	if (v == NULL)
		cvm_wr_str(w, "null");
	else
		j_str(w, v);
}

static void j_measurements_dcap(struct cvm_wr *w, const struct cvm_dcap_result *res)
{
	const struct cvm_quote *q = &res->quote;
	bool f = true;

	cvm_wr_u8(w, '{');
	if (q->tee == CVM_TEE_TDX) {
		const struct cvm_tdx_report *t = &q->body.td;
		static const char *const rt[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};

		j_hex(w, &f, "mr_td", t->mr_td, sizeof(t->mr_td));
		for (size_t i = 0; i < 4; i++)
			j_hex(w, &f, rt[i], t->rtmr[i], sizeof(t->rtmr[i]));
		j_hex(w, &f, "mr_config_id", t->mr_config_id, sizeof(t->mr_config_id));
		j_hex(w, &f, "mr_owner", t->mr_owner, sizeof(t->mr_owner));
		j_hex(w, &f, "mr_owner_config", t->mr_owner_config, sizeof(t->mr_owner_config));
		j_hex(w, &f, "mr_seam", t->mr_seam, sizeof(t->mr_seam));
		j_hex(w, &f, "td_attributes", t->td_attributes, sizeof(t->td_attributes));
		j_hex(w, &f, "report_data", t->report_data, sizeof(t->report_data));
	} else {
		const struct cvm_sgx_report *sg = &q->body.sgx;

		j_hex(w, &f, "mr_enclave", sg->mr_enclave, sizeof(sg->mr_enclave));
		j_hex(w, &f, "mr_signer", sg->mr_signer, sizeof(sg->mr_signer));
		j_int(w, &f, "isv_prod_id", sg->isv_prod_id);
		j_int(w, &f, "isv_svn", sg->isv_svn);
		j_hex(w, &f, "attributes", sg->attributes, sizeof(sg->attributes));
		j_hex(w, &f, "report_data", sg->report_data, sizeof(sg->report_data));
	}
	cvm_wr_u8(w, '}');
}

static void j_measurements_snp(struct cvm_wr *w, const struct cvm_amd_result *res)
{
	const struct cvm_snp_report *r = &res->report;
	bool f = true;

	cvm_wr_u8(w, '{');
	if (res->parsed) {
		j_hex(w, &f, "measurement", r->measurement, sizeof(r->measurement));
		j_hex(w, &f, "host_data", r->host_data, sizeof(r->host_data));
		j_hex(w, &f, "id_key_digest", r->id_key_digest, sizeof(r->id_key_digest));
		j_hex(w, &f, "author_key_digest", r->author_key_digest, sizeof(r->author_key_digest));
		j_hex(w, &f, "report_data", r->report_data, sizeof(r->report_data));
		j_int(w, &f, "guest_svn", r->guest_svn);
		j_int(w, &f, "vmpl", r->vmpl);
		j_int(w, &f, "policy", (long long)r->policy);
	}
	cvm_wr_u8(w, '}');
}

/* struct answer is what the quote and report answers hold. */
struct answer {
	bool ok;
	const char *tee;
	const char *tcb_status; /* NULL: null */
	const struct cvm_dcap_result *dres;
	const struct cvm_amd_result *ares; /* non-NULL: an SEV-SNP answer */
	bool measured;                     /* dres holds a parsed quote */
	const struct cvm_report *rep;
	const char *anchor;
	const struct cvm_cache_info *info;
	int64_t now;
	const char *reason; /* NULL: null */
};

static void answer_write(const struct answer *a, struct cvm_http_resp *resp)
{
	struct cvm_wr w;
	uint8_t *buf = NULL;
	size_t len = 0;
	bool f = true, g;

	cvm_wr_init(&w, ANSWER_MAX);
	cvm_wr_u8(&w, '{');
	j_bool(&w, &f, "ok", a->ok);
	j_strkey(&w, &f, "tee", a->tee);
	j_strkey(&w, &f, "tcb_status", a->tcb_status);
	j_key(&w, &f, "advisory_ids");
	cvm_wr_u8(&w, '[');
	for (size_t i = 0; a->ares == NULL && i < a->dres->advisory_count && i < CVM_ADVISORIES_MAX; i++) {
		if (i > 0)
			cvm_wr_u8(&w, ',');
		j_str(&w, a->dres->advisory_ids[i]);
	}
	cvm_wr_u8(&w, ']');
	j_key(&w, &f, "measurements");
	if (a->ares != NULL)
		j_measurements_snp(&w, a->ares);
	else if (a->measured)
		j_measurements_dcap(&w, a->dres);
	else
		cvm_wr_str(&w, "{}");
	j_key(&w, &f, "steps");
	cvm_wr_u8(&w, '[');
	for (size_t i = 0; i < a->rep->count && i < CVM_REPORT_STEPS_MAX; i++) {
		g = true;
		cvm_wr_str(&w, i > 0 ? ",{" : "{");
		j_strkey(&w, &g, "name", a->rep->steps[i].name);
		j_bool(&w, &g, "ok", a->rep->steps[i].ok);
		j_strkey(&w, &g, "detail", a->rep->steps[i].detail);
		cvm_wr_u8(&w, '}');
	}
	cvm_wr_u8(&w, ']');
	j_strkey(&w, &f, "trust_anchor", a->anchor);
	j_key(&w, &f, "collateral");
	g = true;
	cvm_wr_u8(&w, '{');
	j_strkey(&w, &g, "source", cvm_cache_source_name(a->info->source));
	j_int(&w, &g, "age_seconds", (long long)a->info->age_s);
	j_bool(&w, &g, "stale", a->info->source == CVM_CACHE_FROM_STALE);
	j_int(&w, &g, "expires", (long long)a->info->expires);
	j_int(&w, &g, "expires_in", (long long)(a->info->expires - a->now));
	j_strkey(&w, &g, "upstream_error", a->info->upstream_err[0] != '\0' ? a->info->upstream_err : NULL);
	cvm_wr_u8(&w, '}');
	j_strkey(&w, &f, "reason", a->reason);
	cvm_wr_u8(&w, '}');
	if (cvm_wr_finish(&w, &buf, &len) != CVM_OK) {
		cvm_http_resp_error(resp, 500, "cannot build the answer");
		return;
	}
	cvm_http_resp_bytes(resp, 200, NULL, buf, len);
	free(buf);
}

/* evidence_error is true for the errors of the collateral lookup that are
 * the evidence's fault (it does not parse far enough to name its
 * collateral); any other failure there means the collateral could not be
 * had or used, which is no verdict on the evidence. */
static bool evidence_error(int r)
{
	return r == CVM_E_FORMAT || r == CVM_E_TRUNCATED || r == CVM_E_TOO_LARGE || r == CVM_E_UNSUPPORTED;
}

/* quote_tee names the TEE of a quote by its header's TEE type (offset 4),
 * for answers about quotes that did not parse further. */
static const char *quote_tee(const uint8_t *q, size_t len)
{
	struct cvm_rd r;
	uint32_t tee_type;

	cvm_rd_init(&r, q, len);
	if (!cvm_rd_skip(&r, 4) || !cvm_rd_u32le(&r, &tee_type))
		return "unknown";
	return tee_type == 0 ? "sgx" : tee_type == 0x81 ? "tdx" : "unknown";
}

/* ---- evidence bundles -------------------------------------------------- */

/* pcrs_json writes the PCR values a verified TPM quote covers:
 * {"sha256": {"0": hex, ...}, ...}. */
static json_t *pcrs_json(const struct cvm_tpm_pcrs *p)
{
	json_t *o = json_object();

	for (size_t b = 0; o != NULL && p != NULL && b < p->count && b < CVM_TPM_BANKS_MAX; b++) {
		const struct cvm_tpm_pcr_bank *bank = &p->banks[b];
		size_t dlen = cvm_digest_len(bank->alg);
		json_t *vals = json_object();
		char idx[4];

		for (unsigned i = 0; vals != NULL && dlen != 0 && i < CVM_TPM_PCR_COUNT; i++) {
			if ((bank->valid & (1u << i)) == 0)
				continue;
			(void)snprintf(idx, sizeof(idx), "%u", i);
			(void)set_hex(vals, idx, bank->values[i], dlen);
		}
		if (vals == NULL || json_object_set_new(o, cvm_digest_name(bank->alg), vals) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

static json_t *tpm_json(const struct cvm_evidence *ev, const struct cvm_evidence_result *res)
{
	const struct cvm_tpm_attest *a = &res->tpm.attest;
	char sel[256];
	json_t *o;

	if (!res->has_tpm)
		return json_null();
	o = json_pack("{s:b, s:b, s:I, s:I, s:I}", "verified", res->tpm_verified, "ak_recorded",
	              res->ak_recorded, "reset_count", (json_int_t)a->reset_count, "restart_count",
	              (json_int_t)a->restart_count, "clock", (json_int_t)a->clock);
	if (o == NULL)
		return NULL;
	if (res->ak_name_len != 0)
		(void)set_hex(o, "ak_name", res->ak_name, res->ak_name_len);
	else
		(void)json_object_set_new(o, "ak_name", json_null());
	if (a->magic != 0) {
		cvm_tpm_pcr_sel_format(&a->pcr_sel, sel, sizeof(sel));
		(void)json_object_set_new(o, "pcr_selection", json_string(sel));
	} else {
		(void)json_object_set_new(o, "pcr_selection", json_null());
	}
	/* the bundle's PCR values only once the quote's digest covered them */
	(void)json_object_set_new(o, "pcrs",
	                          res->tpm_verified ? pcrs_json(cvm_evidence_pcrs(ev)) : json_null());
	return o;
}

static json_t *ima_json(const struct cvm_evidence_result *res)
{
	if (!res->has_ima)
		return json_null();
	return json_pack("{s:b, s:s?, s:I, s:I}", "verified", res->ima_verified, "bank",
	                 res->ima_bank != 0 ? cvm_digest_name(res->ima_bank) : NULL, "quoted_entries",
	                 (json_int_t)res->ima_quoted_entries, "total_entries",
	                 (json_int_t)res->ima_total_entries);
}

static json_t *bundle_json(const struct cvm_evidence *ev, const struct cvm_evidence_result *res,
                           bool simulated)
{
	if (ev == NULL)
		return json_pack("{s:b, s:b, s:b, s:I, s:b, s:n, s:n}", "simulated", simulated,
		                 "tee_verified", false, "bound", false, "event_count", (json_int_t)0,
		                 "rtmrs_replayed", false, "tpm", "ima");
	return json_pack("{s:b, s:b, s:b, s:I, s:b, s:o, s:o}", "simulated", simulated, "tee_verified",
	                 res->tee_verified, "bound", res->bound, "event_count", (json_int_t)res->event_count,
	                 "rtmrs_replayed", res->rtmrs_replayed, "tpm", tpm_json(ev, res), "ima",
	                 ima_json(res));
}

/* bundle_verify answers a request with an evidence bundle. */
static void bundle_verify(struct vd_ctx *ctx, const struct request *rq, const struct cvm_policy *policy,
                          struct cvm_report *rep, struct cvm_http_resp *resp)
{
	static struct cvm_evidence_result res; /* large; one handler runs at a time per worker */
	struct cvm_dcap_collateral *dcap = NULL;
	struct cvm_amd_collateral *amd = NULL;
	struct cvm_evidence_opts opts;
	struct cvm_cache_info info;
	const uint8_t *tee_bytes = NULL, *root = NULL;
	size_t tee_len = 0, root_len = 0;
	const char *tee = "unknown";
	char err[512], anchor[CVM_VD_ANCHOR_MAX];
	int64_t now = vd_now(ctx), t0;
	bool snp = false, simulated = false;
	json_t *o = NULL, *meas = NULL, *adv = NULL;
	int r = CVM_OK, vr;

	err[0] = '\0';
	memset(&res, 0, sizeof(res));
	memset(&info, 0, sizeof(info));
	memset(&opts, 0, sizeof(opts));
	if (rq->ev == NULL) {
		cvm_report_add(rep, "evidence.parse", false, "the bundle does not parse: %s",
		               rq->ev_err[0] != '\0' ? rq->ev_err : cvm_strerror(rq->ev_r));
		vr = rq->ev_r;
		goto answer;
	}
	snp = cvm_evidence_platform(rq->ev) == CVM_EVIDENCE_SNP;
	tee = snp ? "snp" : "tdx";
	root = snp ? ctx->amd_root : ctx->intel_root;
	root_len = snp ? ctx->amd_root_len : ctx->intel_root_len;
	cvm_evidence_tee(rq->ev, &tee_bytes, &tee_len);
	t0 = vd_now_us();
	if (snp)
		r = cvm_cache_amd(ctx->cache, tee_bytes, tee_len, rq->product, NULL, 0, now, 0, &amd, &info,
		                  err, sizeof(err));
	else
		r = cvm_cache_dcap(ctx->cache, tee_bytes, tee_len, now, 0, &dcap, &info, err, sizeof(err));
	vd_metrics_cache(ctx, CVM_CACHE_NONE, tee, r, &info, vd_now_us() - t0);
	if (r != CVM_OK && !evidence_error(r)) {
		vd_metrics_verification(ctx, VD_API_CVMKIT, VD_ERROR);
		cvm_http_resp_error(resp, 503,
		                    "the collateral for this bundle's %s cannot be had or used: %s",
		                    snp ? "report" : "quote", err[0] != '\0' ? err : cvm_strerror(r));
		goto out;
	}
	if (r != CVM_OK) {
		/* a quote or report that cannot name its collateral */
		cvm_report_add(rep, "collateral", false, "%s", err[0] != '\0' ? err : cvm_strerror(r));
		vr = r;
		goto answer;
	}
	opts.nonce = rq->nonce;
	opts.nonce_len = rq->nonce_len;
	opts.dcap = dcap;
	opts.amd = amd;
	opts.root_der = root;
	opts.root_der_len = root_len;
	opts.at = now;
	opts.policy = policy;
	opts.require_tpm = rq->require_tpm;
	opts.require_ima = rq->require_ima;
	vr = cvm_evidence_verify(rq->ev, &opts, rep, &res);
answer:
	if (vr == CVM_E_NOMEM) {
		vd_metrics_verification(ctx, VD_API_CVMKIT, VD_ERROR);
		cvm_http_resp_error(resp, 500, "out of memory");
		goto out;
	}
	vd_metrics_verification(ctx, VD_API_CVMKIT, vr == CVM_OK ? VD_OK : VD_REJECTED);
	/* simulated evidence is labelled, whatever the verdict */
	simulated = (rq->ev != NULL && cvm_evidence_claims_simulated(rq->ev)) ||
	            (root != NULL && cvm_tee_is_simulated_root(root, root_len));
	if (info.anchor[0] != '\0')
		(void)snprintf(anchor, sizeof(anchor), "%s", info.anchor);
	else
		vd_anchor_name(ctx, tee, anchor, sizeof(anchor));
	adv = json_array();
	for (size_t i = 0; adv != NULL && !snp && i < res.dcap.advisory_count && i < CVM_ADVISORIES_MAX; i++)
		(void)json_array_append_new(adv, json_string(res.dcap.advisory_ids[i]));
	if (snp)
		meas = measurements_snp(&res.amd);
	else
		meas = res.dcap.quote.tee == CVM_TEE_TDX ? measurements_dcap(&res.dcap) : json_object();
	o = json_pack(
	    "{s:b, s:s, s:s?, s:o, s:o, s:o, s:s, s:o, s:s?, s:o}", "ok", vr == CVM_OK, "tee", tee,
	    "tcb_status",
	    snp || res.dcap.tcb_status == CVM_TCB_NONE ? NULL : cvm_tcb_status_name(res.dcap.tcb_status),
	    "advisory_ids", adv, "measurements", meas, "steps", steps_json(rep), "trust_anchor", anchor,
	    "collateral", collateral_json(&info, now), "reason",
	    vr == CVM_OK ? NULL
	                 : (cvm_report_reason(rep) != NULL ? cvm_report_reason(rep) : cvm_strerror(vr)),
	    "evidence", bundle_json(rq->ev, &res, simulated));
	adv = NULL; /* transferred (json_pack "o" steals, also on failure) */
	meas = NULL;
	if (o == NULL) {
		cvm_http_resp_error(resp, 500, "cannot build the answer");
		goto out;
	}
	cvm_http_resp_json(resp, 200, o);
out:
	json_decref(o);
	cvm_dcap_collateral_free(dcap);
	cvm_amd_collateral_free(amd);
}

void vd_cvmkit_verify(struct vd_ctx *ctx, const struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	static struct cvm_report rep; /* large; one handler runs at a time per worker */
	struct request rq;
	struct cvm_cache_info info;
	struct cvm_dcap_result dres;
	struct cvm_amd_result ares;
	const struct cvm_policy *policy;
	const char *tee = "unknown";
	char err[512], anchor[CVM_VD_ANCHOR_MAX];
	int64_t now = vd_now(ctx), t0;
	int r, vr;

	err[0] = '\0';
	memset(&info, 0, sizeof(info));
	memset(&dres, 0, sizeof(dres));
	memset(&ares, 0, sizeof(ares));
	cvm_report_init(&rep);
	r = parse_request(req, &rq, err, sizeof(err));
	if (r != CVM_OK) {
		vd_metrics_verification(ctx, VD_API_CVMKIT, VD_ERROR);
		if (r == CVM_E_NOMEM)
			cvm_http_resp_error(resp, 500, "out of memory");
		else
			cvm_http_resp_error(resp, r == CVM_E_TOO_LARGE ? 413 : 400, "%s", err);
		goto out;
	}
	policy = rq.has_policy ? &rq.policy : &ctx->policy;
	if (rq.is_bundle) {
		bundle_verify(ctx, &rq, policy, &rep, resp);
		goto out;
	}
	t0 = vd_now_us();
	if (rq.is_snp && rq.vlek != NULL) {
		struct cvm_amd_collateral *amd = NULL;

		/* a VLEK-signed report: the ASVK chain and CRL from the cache,
		 * the VLEK from the request; verified whole (no warm path) */
		tee = "snp";
		r = cvm_cache_amd(ctx->cache, rq.evidence, rq.len, rq.product, rq.vlek, rq.vlek_len, now, 0,
		                  &amd, &info, err, sizeof(err));
		vd_metrics_cache(ctx, CVM_CACHE_NONE, tee, r, &info, vd_now_us() - t0);
		vr = r == CVM_OK ? cvm_verify_snp_report(rq.evidence, rq.len, amd, ctx->amd_root,
		                                         ctx->amd_root_len, now, policy, &rep, &ares)
		                 : r;
		cvm_amd_collateral_free(amd);
	} else if (rq.is_snp) {
		struct cvm_amd_verified *av = NULL;

		tee = "snp";
		r = cvm_cache_amd_warm(ctx->cache, rq.evidence, rq.len, rq.product, now, &av, &info, &rep,
		                       err, sizeof(err));
		vd_metrics_cache(ctx, CVM_CACHE_NONE, tee, r, &info, vd_now_us() - t0);
		vr = r == CVM_OK
		         ? cvm_verify_snp_report_warm(av, rq.evidence, rq.len, now, policy, &rep, &ares)
		         : r;
		if (r == CVM_E_NOT_FOUND) {
			struct cvm_cache_need need;
			char e2[64];

			if (cvm_cache_need_report(rq.evidence, rq.len, rq.product, &need, e2, sizeof(e2)) ==
			        CVM_OK &&
			    need.keys[0].kind != CVM_CACHE_VCEK)
				(void)snprintf(
				    err, sizeof(err),
				    "the report is signed by a VLEK, which no KDS serves by chip: send "
				    "it with the report, as \"vlek\" (hex of its DER or PEM) in the "
				    "JSON form");
		}
	} else {
		struct cvm_dcap_verified *dv = NULL;

		r = cvm_cache_dcap_warm(ctx->cache, rq.evidence, rq.len, now, &dv, &info, &rep, err,
		                        sizeof(err));
		vd_metrics_cache(ctx, CVM_CACHE_NONE, "dcap", r, &info, vd_now_us() - t0);
		vr = r == CVM_OK ? cvm_verify_quote_warm(dv, rq.evidence, rq.len, now, policy, &rep, &dres)
		                 : r;
		tee = quote_tee(rq.evidence, rq.len);
	}
	if (r != CVM_OK && !evidence_error(r)) {
		vd_metrics_verification(ctx, VD_API_CVMKIT, VD_ERROR);
		cvm_http_resp_error(resp, 503, "the collateral for this %s cannot be had or used: %s",
		                    rq.is_snp ? "report" : "quote", err[0] != '\0' ? err : cvm_strerror(r));
		goto out;
	}
	/* evidence that cannot name its collateral: the lookup's reason is the
	 * failed step */
	if (r != CVM_OK)
		cvm_report_add(&rep, "collateral", false, "%s", err[0] != '\0' ? err : cvm_strerror(r));
	vd_metrics_verification(ctx, VD_API_CVMKIT, vr == CVM_OK ? VD_OK : VD_REJECTED);
	if (info.anchor[0] != '\0')
		(void)snprintf(anchor, sizeof(anchor), "%s", info.anchor);
	else
		vd_anchor_name(ctx, tee, anchor, sizeof(anchor));
	{
		struct answer a = {
		    .ok = vr == CVM_OK,
		    .tee = tee,
		    /* none without a matching TCB level; SEV-SNP has no such status */
		    .tcb_status = rq.is_snp || dres.tcb_status == CVM_TCB_NONE
		                      ? NULL
		                      : cvm_tcb_status_name(dres.tcb_status),
		    .dres = &dres,
		    .ares = rq.is_snp ? &ares : NULL,
		    .measured = r == CVM_OK,
		    .rep = &rep,
		    .anchor = anchor,
		    .info = &info,
		    .now = now,
		    .reason = vr == CVM_OK ? NULL
		                           : (cvm_report_reason(&rep) != NULL
		                                  ? cvm_report_reason(&rep)
		                                  : (err[0] != '\0' ? err : cvm_strerror(vr))),
		};

		answer_write(&a, resp);
	}
out:
	free(rq.owned);
	free(rq.vlek);
	cvm_evidence_free(rq.ev);
}

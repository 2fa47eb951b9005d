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
 * evidence's own signatures and the policy are checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/verify.h>

#include "verifier.h"

static const char *const raw_params[] = {"product", NULL};

/* struct request is a decoded body. */
struct request {
	const uint8_t *evidence; /* the request's body (raw) or `owned` (JSON hex) */
	uint8_t *owned;
	size_t len;
	bool is_snp;
	bool has_policy;
	struct cvm_policy policy;
	enum cvm_snp_product product;
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
		/* no "nonce": a nonce that were accepted but not checked would
		 * mislead; the policy's report_data is the check */
		if (strcmp(key, "quote") != 0 && strcmp(key, "report") != 0 && strcmp(key, "policy") != 0 &&
		    strcmp(key, "product") != 0) {
			(void)snprintf(
			    err, err_len,
			    "unknown key in the request (known: quote, report, policy, product; an "
			    "expected nonce goes into the policy as report_data)");
			goto out;
		}
	}
	if ((json_object_get(o, "quote") != NULL) == (json_object_get(o, "report") != NULL)) {
		(void)snprintf(err, err_len, "give exactly one of \"quote\" and \"report\"");
		goto out;
	}
	rq->is_snp = json_object_get(o, "report") != NULL;
	r = decode_hex_field(json_object_get(o, rq->is_snp ? "report" : "quote"),
	                     rq->is_snp ? "report" : "quote", &rq->owned, &rq->len, err, err_len);
	rq->evidence = rq->owned;
	if (r != CVM_OK)
		goto out;
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
	json_t *o = NULL, *meas = NULL, *adv = NULL;
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
	t0 = vd_now_us();
	if (rq.is_snp) {
		struct cvm_amd_verified *av = NULL;

		tee = "snp";
		r = cvm_cache_amd_warm(ctx->cache, rq.evidence, rq.len, rq.product, now, &av, &info, &rep,
		                       err, sizeof(err));
		vd_metrics_cache(ctx, CVM_CACHE_NONE, tee, r, &info, vd_now_us() - t0);
		vr = r == CVM_OK
		         ? cvm_verify_snp_report_warm(av, rq.evidence, rq.len, now, policy, &rep, &ares)
		         : r;
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
	adv = json_array();
	for (size_t i = 0; adv != NULL && !rq.is_snp && i < dres.advisory_count && i < CVM_ADVISORIES_MAX;
	     i++)
		(void)json_array_append_new(adv, json_string(dres.advisory_ids[i]));
	meas = rq.is_snp ? measurements_snp(&ares) : (r == CVM_OK ? measurements_dcap(&dres) : json_object());
	o = json_pack(
	    "{s:b, s:s, s:s?, s:o, s:o, s:o, s:s, s:o, s:s?}", "ok", vr == CVM_OK, "tee", tee, "tcb_status",
	    /* none without a matching TCB level; SEV-SNP has no such status */
	    rq.is_snp || dres.tcb_status == CVM_TCB_NONE ? NULL : cvm_tcb_status_name(dres.tcb_status),
	    "advisory_ids", adv, "measurements", meas, "steps", steps_json(&rep), "trust_anchor", anchor,
	    "collateral", collateral_json(&info, now), "reason",
	    vr == CVM_OK ? NULL
	                 : (cvm_report_reason(&rep) != NULL ? cvm_report_reason(&rep)
	                                                    : (err[0] != '\0' ? err : cvm_strerror(vr))));
	adv = NULL; /* transferred (json_pack "o" steals, also on failure) */
	meas = NULL;
	if (o == NULL) {
		cvm_http_resp_error(resp, 500, "cannot build the answer");
		goto out;
	}
	cvm_http_resp_json(resp, 200, o);
out:
	json_decref(o);
	free(rq.owned);
}

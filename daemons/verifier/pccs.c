/* The PCCS-compatible read API (verifier.h): Intel's PCS/PCCS API v4 paths,
 * answered from the collateral cache (fetched through lib/collateral when
 * missing and an upstream is configured).
 *
 *   GET /{sgx,tdx}/certification/v4/tcb?fmspc=HEX12[&update=early|standard]
 *   GET /{sgx,tdx}/certification/v4/qe/identity[?update=...]
 *   GET /sgx/certification/v4/qve/identity[?update=...]
 *   GET /sgx/certification/v4/pckcrl?ca=processor|platform[&encoding=der|pem]
 *   GET /sgx/certification/v4/rootcacrl
 *   GET /sgx/certification/v4/pckcert?encrypted_ppid=&cpusvn=&pcesvn=&pceid=
 *   POST /sgx/certification/v4/pckcert  {"platformManifest","cpusvn","pcesvn","pceid"}
 *   POST /sgx/certification/v4/pckcerts {"platformManifest","pceid"}
 *   GET /sgx/certification/v4/pckcerts?encrypted_ppid=&pceid=
 *
 * The pckcerts answers are the vendor's array as cached (every certificate
 * verified when it was stored); POST pckcert picks one certificate from the
 * platform's pckcerts for the raw TCB as Intel's PCK certificate selection
 * does (cvm_cache_pck_select, ordered by the FMSPC's TCB info), as the PCS
 * answers that request.
 *
 * Bodies are the vendor's bytes as cached; issuer chains go back into their
 * headers URL-encoded, as the PCS sends them. Every answer carries a
 * Request-ID. A parameter that is missing, unknown, repeated or malformed
 * is a 400; an FMSPC or platform the vendor has nothing for is a 404. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/random.h>

#include "verifier.h"

#define CT_JSON "application/json"
#define CT_PEM "application/x-pem-file"
#define CT_CRL "application/pkix-crl"

/* url_encode writes `s` percent-encoded as JavaScript's encodeURIComponent
 * does (what Intel's services send) into a new string. */
static char *url_encode(const char *s, size_t len)
{
	static const char keep[] = "-_.!~*'()";
	char *out, *o;

	if (len > CVM_HTTP_RESP_HEADER_VALUE_MAX / 3)
		return NULL;
	out = malloc(len * 3 + 1);
	if (out == NULL)
		return NULL;
	o = out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (c != '\0' && strchr(keep, c) != NULL)) {
			*o++ = (char)c;
		} else {
			(void)snprintf(o, 4, "%%%02X", c);
			o += 3;
		}
	}
	*o = '\0';
	return out;
}

void vd_request_id(struct cvm_http_resp *resp)
{
	uint8_t id[16];
	char hex[33];

	if (cvm_random_bytes(id, sizeof(id)) != CVM_OK)
		memset(id, 0, sizeof(id));
	cvm_hex_encode(id, sizeof(id), hex);
	/* only on a reply too large for one more header: nothing to do */
	if (cvm_http_resp_header(resp, "Request-ID", hex) != CVM_OK)
		return;
}

/* chain_header adds `name` with the item's issuer chain URL-encoded. */
static bool chain_header(struct cvm_http_resp *resp, const char *name, const struct cvm_cache_item *it)
{
	char *enc;
	int r;

	if (it->issuer_chain == NULL || it->issuer_chain_len == 0)
		return true;
	enc = url_encode(it->issuer_chain, it->issuer_chain_len);
	if (enc == NULL) {
		cvm_http_resp_error(resp, 500, "cannot encode the issuer chain");
		return false;
	}
	r = cvm_http_resp_header(resp, name, enc);
	free(enc);
	if (r != CVM_OK) {
		cvm_http_resp_error(resp, 500, "cannot send the issuer chain header: %s", cvm_strerror(r));
		return false;
	}
	return true;
}

static void answer_error(struct cvm_http_resp *resp, const char *name, int r, const char *err);

/* get_item looks the key up; on failure it sets the error answer: 404 when
 * the vendor has nothing (or nothing is cached and there is no upstream),
 * 503 when the upstream failed or the item expired, 502 when what came
 * back did not verify. */
static struct cvm_cache_item *get_item(struct vd_ctx *ctx, const struct cvm_cache_key *k, enum vd_api api,
                                       struct cvm_http_resp *resp)
{
	struct cvm_cache_item *it = NULL;
	struct cvm_cache_info info;
	char name[160], err[256];
	int64_t t0 = vd_now_us();
	int r;

	memset(&info, 0, sizeof(info));
	err[0] = '\0';
	if (cvm_cache_key_name(k, name, sizeof(name)) != CVM_OK)
		(void)snprintf(name, sizeof(name), "the item");
	r = cvm_cache_get(ctx->cache, k, vd_now(ctx), 0, &it, &info, err, sizeof(err));
	vd_metrics_cache(ctx, k->kind, NULL, r, &info, vd_now_us() - t0);
	if (r == CVM_OK && it != NULL) {
		vd_metrics_verification(ctx, api, VD_OK);
		return it;
	}
	cvm_cache_item_free(it);
	vd_metrics_verification(ctx, api, VD_ERROR);
	answer_error(resp, name, r, err);
	return NULL;
}

/* answer_error sets the error answer of a failed cache lookup. */
static void answer_error(struct cvm_http_resp *resp, const char *name, int r, const char *err)
{
	if (r == CVM_E_NOT_FOUND)
		cvm_http_resp_error(resp, 404, "%s: not found: %s", name,
		                    err[0] != '\0' ? err : cvm_strerror(r));
	else if (r == CVM_E_UPSTREAM || r == CVM_E_EXPIRED || r == CVM_E_UNSUPPORTED || r == CVM_E_SYSTEM ||
	         r == CVM_E_NOMEM)
		cvm_http_resp_error(resp, 503, "%s: not available: %s", name,
		                    err[0] != '\0' ? err : cvm_strerror(r));
	else
		cvm_http_resp_error(resp, 502, "%s: did not verify: %s", name,
		                    err[0] != '\0' ? err : cvm_strerror(r));
}

/* param reads a required (or optional) parameter; false: a 400 is set. */
static bool param(const struct cvm_http_req *req, const char *name, bool required, char *buf, size_t cap,
                  struct cvm_http_resp *resp)
{
	int r = vd_query_get(req->query, name, buf, cap);

	if (r < 0) {
		cvm_http_resp_error(resp, 400, "query parameter '%s' is malformed, repeated or too long",
		                    name);
		return false;
	}
	if (r == 0 && required) {
		cvm_http_resp_error(resp, 400, "query parameter '%s' is missing", name);
		return false;
	}
	return true;
}

static bool hex_param(const struct cvm_http_req *req, const char *name, uint8_t *out, size_t out_len,
                      struct cvm_http_resp *resp)
{
	char buf[2 * CVM_CACHE_PPID_MAX + 2];

	if (!param(req, name, true, buf, sizeof(buf), resp))
		return false;
	if (strlen(buf) != 2 * out_len || cvm_hex_decode_exact(buf, strlen(buf), out, out_len) != CVM_OK) {
		cvm_http_resp_error(resp, 400, "query parameter '%s' must be %zu hex digits", name,
		                    2 * out_len);
		return false;
	}
	return true;
}

static bool update_param(const struct cvm_http_req *req, struct cvm_cache_key *k, struct cvm_http_resp *resp)
{
	char v[16];

	if (!param(req, "update", false, v, sizeof(v), resp))
		return false;
	if (v[0] == '\0' || strcmp(v, "standard") == 0)
		k->update = CVM_CACHE_STANDARD;
	else if (strcmp(v, "early") == 0)
		k->update = CVM_CACHE_EARLY;
	else {
		cvm_http_resp_error(resp, 400, "query parameter 'update' must be 'early' or 'standard'");
		return false;
	}
	return true;
}

static bool only(const struct cvm_http_req *req, const char *const *names, struct cvm_http_resp *resp)
{
	if (vd_query_only(req->query, names))
		return true;
	cvm_http_resp_error(resp, 400, "unknown query parameter for this resource");
	return false;
}

static void json_item(struct cvm_http_resp *resp, const struct cvm_cache_item *it, const char *chain_name,
                      const char *chain_name2)
{
	cvm_http_resp_bytes(resp, 200, CT_JSON, it->body, it->body_len);
	if (resp->status != 200)
		return;
	if (!chain_header(resp, chain_name, it))
		return;
	if (chain_name2 != NULL)
		(void)chain_header(resp, chain_name2, it);
}

static const char *const q_tcb[] = {"fmspc", "update", NULL};
static const char *const q_update[] = {"update", NULL};
static const char *const q_crl[] = {"ca", "encoding", NULL};
static const char *const q_none[] = {NULL};
static const char *const q_pckcert[] = {"encrypted_ppid", "cpusvn", "pcesvn", "pceid", NULL};
static const char *const q_pckcerts[] = {"encrypted_ppid", "pceid", NULL};

/* The largest POST pckcert(s) body: the manifest in hex and the rest. */
#define PCK_BODY_MAX (2 * CVM_CACHE_MANIFEST_MAX + 512)

/* struct pck_req is a POST pckcert(s) body, decoded. */
struct pck_req {
	uint8_t *manifest;
	size_t manifest_len;
	uint8_t pceid[2];
	uint8_t cpusvn[16];
	uint16_t pcesvn;
};

static bool hex_member(json_t *o, const char *name, uint8_t *out, size_t out_len)
{
	json_t *v = json_object_get(o, name);

	return json_is_string(v) && json_string_length(v) == 2 * out_len &&
	       cvm_hex_decode_exact(json_string_value(v), json_string_length(v), out, out_len) == CVM_OK;
}

/* pck_body decodes {"platformManifest": HEX, "pceid": HEX} (and, for
 * `single`, "cpusvn" and "pcesvn", as Intel's PCS takes them); false: a
 * 400 is set. */
static bool pck_body(const struct cvm_http_req *req, bool single, struct pck_req *pr,
                     struct cvm_http_resp *resp)
{
	json_t *o = NULL, *m;
	json_error_t jerr;
	uint8_t svn[2] = {0, 0};
	bool ok = false;

	memset(pr, 0, sizeof(*pr));
	if (req->body_len == 0 || req->body_len > PCK_BODY_MAX) {
		cvm_http_resp_error(resp, 400,
		                    "the body must be JSON {\"platformManifest\": HEX, \"pceid\": HEX%s} of "
		                    "at most %zu bytes",
		                    single ? ", \"cpusvn\": HEX, \"pcesvn\": HEX" : "", (size_t)PCK_BODY_MAX);
		return false;
	}
	o = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	m = json_object_get(o, "platformManifest");
	if (!json_is_object(o) || json_object_size(o) != (single ? 4u : 2u) || !json_is_string(m) ||
	    json_string_length(m) == 0 || json_string_length(m) % 2 != 0 ||
	    json_string_length(m) > 2 * CVM_CACHE_MANIFEST_MAX || !hex_member(o, "pceid", pr->pceid, 2) ||
	    (single && (!hex_member(o, "cpusvn", pr->cpusvn, 16) || !hex_member(o, "pcesvn", svn, 2)))) {
		cvm_http_resp_error(resp, 400,
		                    "the body must be JSON {\"platformManifest\": HEX (at most %zu bytes), "
		                    "\"pceid\": 4 hex digits%s} and nothing else",
		                    CVM_CACHE_MANIFEST_MAX,
		                    single ? ", \"cpusvn\": 32 hex digits, \"pcesvn\": 4 hex digits" : "");
		goto out;
	}
	pr->manifest_len = json_string_length(m) / 2;
	pr->manifest = malloc(pr->manifest_len);
	if (pr->manifest == NULL) {
		cvm_http_resp_error(resp, 500, "out of memory");
		goto out;
	}
	if (cvm_hex_decode_exact(json_string_value(m), json_string_length(m), pr->manifest,
	                         pr->manifest_len) != CVM_OK) {
		cvm_http_resp_error(resp, 400, "platformManifest is not hex");
		goto out;
	}
	/* Intel: the PCE SVN is little-endian, as the QPL sends its bytes */
	pr->pcesvn = (uint16_t)(svn[0] | (svn[1] << 8));
	ok = true;
out:
	if (!ok) {
		free(pr->manifest);
		pr->manifest = NULL;
	}
	json_decref(o);
	return ok;
}

/* get_pck_certs gets the platform's pckcerts item; on failure the error
 * answer is set. */
static struct cvm_cache_item *get_pck_certs(struct vd_ctx *ctx, const uint8_t *manifest, size_t manifest_len,
                                            const uint8_t *ppid, const uint8_t pceid[2],
                                            struct cvm_http_resp *resp)
{
	struct cvm_cache_item *it = NULL;
	struct cvm_cache_info info;
	struct cvm_cache_key k;
	char name[160], err[256];
	int64_t t0 = vd_now_us();
	int r;

	memset(&info, 0, sizeof(info));
	err[0] = '\0';
	r = cvm_cache_pck_certs(ctx->cache, manifest, manifest_len, ppid,
	                        ppid != NULL ? CVM_CACHE_PPID_MAX : 0, pceid, vd_now(ctx), 0, &k, &it, &info,
	                        err, sizeof(err));
	vd_metrics_cache(ctx, CVM_CACHE_PCK_CERTS, NULL, r, &info, vd_now_us() - t0);
	if (r == CVM_OK && it != NULL) {
		vd_metrics_verification(ctx, VD_API_PCCS, VD_OK);
		return it;
	}
	cvm_cache_item_free(it);
	vd_metrics_verification(ctx, VD_API_PCCS, VD_ERROR);
	if (cvm_cache_key_name(&k, name, sizeof(name)) != CVM_OK)
		(void)snprintf(name, sizeof(name), "the platform's PCK certificates");
	answer_error(resp, name, r, err);
	return NULL;
}

/* pck_headers adds the headers of a PCK certificate answer (`tcbm`: NULL
 * for a pckcerts answer, which has none). */
static void pck_headers(struct cvm_http_resp *resp, const struct cvm_cache_item *it, const char *tcbm)
{
	if (resp->status == 200 && chain_header(resp, "SGX-PCK-Certificate-Issuer-Chain", it) &&
	    ((tcbm != NULL && cvm_http_resp_header(resp, "SGX-TCBm", tcbm) != CVM_OK) ||
	     cvm_http_resp_header(resp, "SGX-FMSPC", it->fmspc) != CVM_OK ||
	     cvm_http_resp_header(resp, "SGX-PCK-Certificate-CA-Type", it->ca_type) != CVM_OK))
		cvm_http_resp_error(resp, 500, "the cached PCK certificate's headers are not printable");
}

/* pck_select answers POST pckcert: the platform's certificate for the raw
 * TCB, picked from its pckcerts by the order of its FMSPC's TCB info. */
static void pck_select(struct vd_ctx *ctx, const struct cvm_cache_item *certs, const struct pck_req *pr,
                       struct cvm_http_resp *resp)
{
	struct cvm_cache_item *tcb = NULL;
	struct cvm_tcb_info *ti = NULL;
	struct cvm_cache_pck_choice ch;
	struct cvm_cache_key k;
	struct cvm_rd span;
	uint8_t sig[64];
	char err[512] = "";
	int r;

	memset(&ch, 0, sizeof(ch));
	cvm_cache_key_init(&k, CVM_CACHE_TCB_INFO);
	if (cvm_hex_decode_exact(certs->fmspc, strlen(certs->fmspc), k.fmspc, sizeof(k.fmspc)) != CVM_OK) {
		cvm_http_resp_error(resp, 500, "the cached PCK certificates have no FMSPC");
		return;
	}
	/* the SGX TCB info of the FMSPC, else its TDX one: both order the SGX
	 * TCB levels the certificates were issued for */
	k.tee = CVM_CACHE_SGX;
	tcb = get_item(ctx, &k, VD_API_PCCS, resp);
	if (tcb == NULL) {
		k.tee = CVM_CACHE_TDX;
		cvm_http_resp_cleanup(resp);
		tcb = get_item(ctx, &k, VD_API_PCCS, resp);
		if (tcb == NULL)
			return;
	}
	r = cvm_tcb_info_parse(tcb->body, tcb->body_len, &ti, &span, sig);
	if (r == CVM_OK)
		r = cvm_cache_pck_select(certs->body, certs->body_len, ti, pr->cpusvn, pr->pcesvn, &ch, err,
		                         sizeof(err));
	if (r == CVM_E_NOT_FOUND)
		cvm_http_resp_error(resp, 404, "%s", err);
	else if (r != CVM_OK)
		cvm_http_resp_error(resp, 500, "cannot select the PCK certificate: %s",
		                    err[0] != '\0' ? err : cvm_strerror(r));
	else {
		cvm_http_resp_bytes(resp, 200, CT_PEM, ch.pem, ch.pem_len);
		pck_headers(resp, certs, ch.tcbm);
	}
	cvm_cache_pck_choice_cleanup(&ch);
	cvm_tcb_info_free(ti);
	cvm_cache_item_free(tcb);
}

/* pck_route answers pckcert and pckcerts: GET by encrypted PPID (pckcert:
 * the cached certificate of that query), POST by platform manifest. */
static void pck_route(struct vd_ctx *ctx, const struct cvm_http_req *req, bool single,
                      struct cvm_http_resp *resp)
{
	struct cvm_cache_item *it = NULL;
	struct pck_req pr;
	uint8_t ppid[CVM_CACHE_PPID_MAX], pceid[2];
	char hex[2 * CVM_CACHE_PPID_MAX + 2];

	if (req->method == CVM_HTTP_POST) {
		if (!only(req, q_none, resp) || !pck_body(req, single, &pr, resp))
			return;
		it = get_pck_certs(ctx, pr.manifest, pr.manifest_len, NULL, pr.pceid, resp);
		if (it != NULL && single)
			pck_select(ctx, it, &pr, resp);
		else if (it != NULL) {
			cvm_http_resp_bytes(resp, 200, CT_JSON, it->body, it->body_len);
			pck_headers(resp, it, NULL);
		}
		free(pr.manifest);
		cvm_cache_item_free(it);
		return;
	}
	/* GET pckcerts?encrypted_ppid=&pceid= (GET pckcert: pccs_route) */
	if (!only(req, q_pckcerts, resp) || !param(req, "encrypted_ppid", true, hex, sizeof(hex), resp))
		return;
	if (strlen(hex) != (size_t)2 * CVM_CACHE_PPID_MAX ||
	    cvm_hex_decode_exact(hex, strlen(hex), ppid, sizeof(ppid)) != CVM_OK) {
		cvm_http_resp_error(resp, 400, "query parameter 'encrypted_ppid' must be %u hex digits",
		                    2 * (unsigned)CVM_CACHE_PPID_MAX);
		return;
	}
	if (!hex_param(req, "pceid", pceid, sizeof(pceid), resp))
		return;
	it = get_pck_certs(ctx, NULL, 0, ppid, pceid, resp);
	if (it == NULL)
		return;
	cvm_http_resp_bytes(resp, 200, CT_JSON, it->body, it->body_len);
	pck_headers(resp, it, NULL);
	cvm_cache_item_free(it);
}

/* crl_answer sends a DER CRL as asked: DER, PEM, or (no encoding given:
 * the PCCS's legacy answer that Intel's QPL reads) hex text. */
static void crl_answer(struct cvm_http_resp *resp, const struct cvm_cache_item *it, const char *encoding)
{
	char *text = NULL;

	if (strcmp(encoding, "der") == 0) {
		cvm_http_resp_bytes(resp, 200, CT_CRL, it->body, it->body_len);
		return;
	}
	if (strcmp(encoding, "pem") == 0) {
		char *b64 = cvm_base64_encode_new(it->body, it->body_len);
		size_t n, o = 0, cap;

		if (b64 == NULL)
			goto oom;
		n = strlen(b64);
		cap = n + n / 64 + 64;
		text = malloc(cap);
		if (text == NULL) {
			free(b64);
			goto oom;
		}
		o += (size_t)snprintf(text, cap, "-----BEGIN X509 CRL-----\n");
		for (size_t i = 0; i < n; i += 64) {
			size_t l = n - i < 64 ? n - i : 64;

			memcpy(text + o, b64 + i, l);
			o += l;
			text[o++] = '\n';
		}
		o += (size_t)snprintf(text + o, cap - o, "-----END X509 CRL-----\n");
		free(b64);
		cvm_http_resp_bytes(resp, 200, CT_PEM, text, o);
		free(text);
		return;
	}
	text = cvm_hex_encode_new(it->body, it->body_len);
	if (text == NULL)
		goto oom;
	cvm_http_resp_bytes(resp, 200, CT_CRL, text, strlen(text));
	free(text);
	return;
oom:
	cvm_http_resp_error(resp, 500, "out of memory");
}

static void pccs_route(struct vd_ctx *ctx, const struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	struct cvm_cache_key k;
	struct cvm_cache_item *it = NULL;
	bool tdx = strncmp(req->path, "/tdx/", 5) == 0;
	const char *res = req->path + strlen("/sgx/certification/v4/");
	char v[16];

	if (strcmp(res, "tcb") == 0) {
		cvm_cache_key_init(&k, CVM_CACHE_TCB_INFO);
		k.tee = tdx ? CVM_CACHE_TDX : CVM_CACHE_SGX;
		if (!only(req, q_tcb, resp) || !hex_param(req, "fmspc", k.fmspc, sizeof(k.fmspc), resp) ||
		    !update_param(req, &k, resp))
			return;
		it = get_item(ctx, &k, VD_API_PCCS, resp);
		if (it != NULL)
			json_item(resp, it, "TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain");
	} else if (strcmp(res, "qe/identity") == 0 || (!tdx && strcmp(res, "qve/identity") == 0)) {
		cvm_cache_key_init(&k, res[1] == 'e' ? CVM_CACHE_QE_ID : CVM_CACHE_QVE_ID);
		k.tee = tdx ? CVM_CACHE_TDX : CVM_CACHE_SGX;
		if (k.kind == CVM_CACHE_QVE_ID)
			k.tee = CVM_CACHE_SGX;
		if (!only(req, q_update, resp) || !update_param(req, &k, resp))
			return;
		it = get_item(ctx, &k, VD_API_PCCS, resp);
		if (it != NULL)
			json_item(resp, it, "SGX-Enclave-Identity-Issuer-Chain", NULL);
	} else if (!tdx && strcmp(res, "pckcrl") == 0) {
		cvm_cache_key_init(&k, CVM_CACHE_PCK_CRL);
		if (!only(req, q_crl, resp) || !param(req, "ca", true, v, sizeof(v), resp))
			return;
		if (strcmp(v, "processor") == 0)
			k.ca = CVM_CACHE_CA_PROCESSOR;
		else if (strcmp(v, "platform") == 0)
			k.ca = CVM_CACHE_CA_PLATFORM;
		else {
			cvm_http_resp_error(resp, 400,
			                    "query parameter 'ca' must be 'processor' or 'platform'");
			return;
		}
		if (!param(req, "encoding", false, v, sizeof(v), resp))
			return;
		if (v[0] != '\0' && strcmp(v, "der") != 0 && strcmp(v, "pem") != 0) {
			cvm_http_resp_error(resp, 400, "query parameter 'encoding' must be 'der' or 'pem'");
			return;
		}
		it = get_item(ctx, &k, VD_API_PCCS, resp);
		if (it != NULL) {
			crl_answer(resp, it, v);
			if (resp->status == 200)
				(void)chain_header(resp, "SGX-PCK-CRL-Issuer-Chain", it);
		}
	} else if (!tdx && strcmp(res, "rootcacrl") == 0) {
		cvm_cache_key_init(&k, CVM_CACHE_ROOT_CRL);
		if (!only(req, q_none, resp))
			return;
		it = get_item(ctx, &k, VD_API_PCCS, resp);
		if (it != NULL)
			crl_answer(resp, it, "");
	} else if (!tdx && (strcmp(res, "pckcerts") == 0 ||
	                    (strcmp(res, "pckcert") == 0 && req->method == CVM_HTTP_POST))) {
		pck_route(ctx, req, res[7] == '\0', resp);
		return;
	} else if (!tdx && strcmp(res, "pckcert") == 0) {
		uint8_t svn[2];
		char ppid[2 * CVM_CACHE_PPID_MAX + 2];

		cvm_cache_key_init(&k, CVM_CACHE_PCK_CERT);
		if (!only(req, q_pckcert, resp) ||
		    !param(req, "encrypted_ppid", true, ppid, sizeof(ppid), resp))
			return;
		if (strlen(ppid) != (size_t)2 * CVM_CACHE_PPID_MAX ||
		    cvm_hex_decode_exact(ppid, strlen(ppid), k.enc_ppid, CVM_CACHE_PPID_MAX) != CVM_OK) {
			cvm_http_resp_error(resp, 400,
			                    "query parameter 'encrypted_ppid' must be %u hex digits",
			                    2 * (unsigned)CVM_CACHE_PPID_MAX);
			return;
		}
		k.enc_ppid_len = CVM_CACHE_PPID_MAX;
		if (!hex_param(req, "cpusvn", k.cpusvn, sizeof(k.cpusvn), resp) ||
		    !hex_param(req, "pcesvn", svn, sizeof(svn), resp) ||
		    !hex_param(req, "pceid", k.pceid, sizeof(k.pceid), resp))
			return;
		/* Intel: the PCE SVN is little-endian, as the QPL sends its bytes */
		k.pcesvn = (uint16_t)(svn[0] | (svn[1] << 8));
		it = get_item(ctx, &k, VD_API_PCCS, resp);
		if (it == NULL)
			return;
		cvm_http_resp_bytes(resp, 200, CT_PEM, it->body, it->body_len);
		pck_headers(resp, it, it->tcbm);
	} else {
		cvm_http_resp_error(resp, 404, "no such PCCS resource; see docs/daemons/cvm-verifierd.md");
		return;
	}
	cvm_cache_item_free(it);
}

void vd_pccs_handle(struct vd_ctx *ctx, const struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	const char *res = req->path + strlen("/sgx/certification/v4/");
	bool pck = strncmp(req->path, "/sgx/", 5) == 0 &&
	           (strcmp(res, "pckcert") == 0 || strcmp(res, "pckcerts") == 0);

	/* GET (HEAD) everywhere; POST too where the PCS takes a platform
	 * manifest */
	if (req->method != CVM_HTTP_GET && req->method != CVM_HTTP_HEAD &&
	    !(pck && req->method == CVM_HTTP_POST)) {
		resp->allow = pck ? "GET, HEAD, POST" : "GET, HEAD";
		cvm_http_resp_error(resp, 405, "%s is not allowed here; use %s", req->method_name,
		                    pck ? "GET or POST" : "GET");
	} else {
		pccs_route(ctx, req, resp);
	}
	vd_request_id(resp);
}

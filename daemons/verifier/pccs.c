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
 *
 * Bodies are the vendor's bytes as cached; issuer chains go back into their
 * headers URL-encoded, as the PCS sends them. Every answer carries a
 * Request-ID. A parameter that is missing, unknown, repeated or malformed
 * is a 400; an FMSPC or platform the vendor has nothing for is a 404. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	return NULL;
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
		if (resp->status == 200 && chain_header(resp, "SGX-PCK-Certificate-Issuer-Chain", it) &&
		    (cvm_http_resp_header(resp, "SGX-TCBm", it->tcbm) != CVM_OK ||
		     cvm_http_resp_header(resp, "SGX-FMSPC", it->fmspc) != CVM_OK ||
		     cvm_http_resp_header(resp, "SGX-PCK-Certificate-CA-Type", it->ca_type) != CVM_OK))
			cvm_http_resp_error(resp, 500,
			                    "the cached PCK certificate's headers are not printable");
	} else {
		cvm_http_resp_error(resp, 404, "no such PCCS resource; see docs/daemons/cvm-verifierd.md");
		return;
	}
	cvm_cache_item_free(it);
}

void vd_pccs_handle(struct vd_ctx *ctx, const struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	pccs_route(ctx, req, resp);
	vd_request_id(resp);
}

/* The AMD-KDS-compatible read API (verifier.h), answered from the
 * collateral cache as AMD's Key Distribution Service answers:
 *
 *   GET /vcek/v1/{product}/{hwid}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=[&fmcSPL=]
 *       the VCEK, DER (hwid: 128 hex digits; 16 on Turin, where fmcSPL is
 *       required; a Turin hwid of 128 digits whose last 112 are zero is the
 *       report's whole chip ID field and is accepted)
 *   GET /{vcek,vlek}/v1/{product}/cert_chain   ASK (or ASVK) then ARK, PEM
 *   GET /{vcek,vlek}/v1/{product}/crl          the ARK-signed CRL, DER
 *
 * {product} is Milan, Genoa or Turin. Any other path, or a parameter that
 * is missing, unknown, repeated or out of range, is a 400 or 404, as KDS
 * answers. */
#include <stdio.h>
#include <string.h>

#include <cvmkit/encoding.h>

#include "daemon.h"
#include "verifier.h"

#define CT_DER "application/x-x509-ca-cert"
#define CT_PEM "application/x-pem-file"
#define CT_CRL "application/pkix-crl"

#define SEGMENT_MAX 160

static const char *const q_vcek[] = {"blSPL", "teeSPL", "snpSPL", "ucodeSPL", "fmcSPL", NULL};
static const char *const q_none[] = {NULL};

/* spl reads one SPL parameter, a decimal number 0..255. Returns 1 when
 * read, 0 when absent, -1 (400 set) when malformed. */
static int spl(const struct cvm_http_req *req, const char *name, uint8_t *out, struct cvm_http_resp *resp)
{
	char v[8];
	uint64_t n;
	int r = vd_query_get(req->query, name, v, sizeof(v));

	if (r == 0)
		return 0;
	if (r < 0 || cvm_parse_u64(v, 0, 255, &n) != CVM_OK) {
		cvm_http_resp_error(resp, 400, "query parameter '%s' must be a decimal number 0..255", name);
		return -1;
	}
	*out = (uint8_t)n;
	return 1;
}

static void answer(struct vd_ctx *ctx, const struct cvm_cache_key *k, const char *ct,
                   struct cvm_http_resp *resp)
{
	struct cvm_cache_item *it = NULL;
	struct cvm_cache_info info;
	char err[256], name[200];
	int64_t t0 = vd_now_us();
	int r;

	memset(&info, 0, sizeof(info));
	err[0] = '\0';
	if (cvm_cache_key_name(k, name, sizeof(name)) != CVM_OK)
		(void)snprintf(name, sizeof(name), "the item");
	r = cvm_cache_get(ctx->cache, k, vd_now(ctx), 0, &it, &info, err, sizeof(err));
	vd_metrics_cache(ctx, k->kind, NULL, r, &info, vd_now_us() - t0);
	if (r == CVM_OK && it != NULL) {
		vd_metrics_verification(ctx, VD_API_KDS, VD_OK);
		cvm_http_resp_bytes(resp, 200, ct, it->body, it->body_len);
		cvm_cache_item_free(it);
		return;
	}
	cvm_cache_item_free(it);
	vd_metrics_verification(ctx, VD_API_KDS, VD_ERROR);
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

/* segment copies the next path segment of *p (up to '/' or the end). */
static bool segment(const char **p, char *buf, size_t cap)
{
	const char *s = *p;
	const char *slash = strchr(s, '/');
	size_t n = slash != NULL ? (size_t)(slash - s) : strlen(s);

	if (n == 0 || n >= cap)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	*p = slash != NULL ? slash + 1 : s + n;
	return true;
}

void vd_kds_handle(struct vd_ctx *ctx, const struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	bool vlek = strncmp(req->path, "/vlek/", 6) == 0;
	const char *p = req->path + strlen("/vcek/v1/");
	char prod[SEGMENT_MAX], what[SEGMENT_MAX];
	struct cvm_cache_key k;
	enum cvm_snp_product product;

	if (!segment(&p, prod, sizeof(prod)) || !segment(&p, what, sizeof(what)) || *p != '\0') {
		cvm_http_resp_error(resp, 404, "no such KDS resource: use /%s/v1/{Milan|Genoa|Turin}/...",
		                    vlek ? "vlek" : "vcek");
		return;
	}
	/* KDS names products exactly; a stepping suffix is no product path */
	product = cvm_snp_product_parse(prod, strlen(prod));
	if (product == CVM_SNP_PRODUCT_UNKNOWN || strcmp(prod, cvm_snp_product_name(product)) != 0) {
		cvm_http_resp_error(resp, 404, "unknown product '%s': use Milan, Genoa or Turin", prod);
		return;
	}
	if (strcmp(what, "cert_chain") == 0 || strcmp(what, "crl") == 0) {
		if (!vd_query_only(req->query, q_none)) {
			cvm_http_resp_error(resp, 400, "this resource takes no query parameters");
			return;
		}
		cvm_cache_key_init(&k, what[0] == 'c' && what[1] == 'e' ? CVM_CACHE_AMD_CHAIN
		                                                        : CVM_CACHE_AMD_CRL);
		k.product = product;
		k.signer = vlek ? CVM_SNP_SIGNER_VLEK : CVM_SNP_SIGNER_VCEK;
		answer(ctx, &k, k.kind == CVM_CACHE_AMD_CHAIN ? CT_PEM : CT_CRL, resp);
		return;
	}
	if (vlek) {
		/* a VLEK is provisioned to the cloud provider, never served by hwid */
		cvm_http_resp_error(resp, 404,
		                    "KDS serves no VLEK by chip: /vlek/v1/{product}/cert_chain or crl");
		return;
	}
	{
		struct cvm_snp_tcb t;
		size_t want = product == CVM_SNP_PRODUCT_TURIN ? 8 : 64;
		int got;

		cvm_cache_key_init(&k, CVM_CACHE_VCEK);
		k.product = product;
		/* Turin's chip ID is 8 bytes in the report's 64-byte field; some
		 * clients send the whole field: accept it when the rest is zero */
		if (product == CVM_SNP_PRODUCT_TURIN && strlen(what) == 128 &&
		    strspn(what + 16, "0") == 128 - 16)
			what[16] = '\0';
		if (strlen(what) != 2 * want ||
		    cvm_hex_decode_exact(what, strlen(what), k.hwid, want) != CVM_OK) {
			cvm_http_resp_error(resp, 400, "the chip ID must be %zu hex digits for %s", 2 * want,
			                    prod);
			return;
		}
		k.hwid_len = want;
		if (!vd_query_only(req->query, q_vcek)) {
			cvm_http_resp_error(resp, 400,
			                    "unknown query parameter: the VCEK takes blSPL, teeSPL, "
			                    "snpSPL, ucodeSPL (and fmcSPL on Turin)");
			return;
		}
		memset(&t, 0, sizeof(t));
		if (spl(req, "blSPL", &t.bootloader, resp) != 1 || spl(req, "teeSPL", &t.tee, resp) != 1 ||
		    spl(req, "snpSPL", &t.snp, resp) != 1 || spl(req, "ucodeSPL", &t.microcode, resp) != 1) {
			if (resp->status == 0)
				cvm_http_resp_error(resp, 400,
				                    "blSPL, teeSPL, snpSPL and ucodeSPL are all required");
			return;
		}
		got = spl(req, "fmcSPL", &t.fmc, resp);
		if (got < 0)
			return;
		if ((product == CVM_SNP_PRODUCT_TURIN) != (got == 1)) {
			cvm_http_resp_error(resp, 400, "fmcSPL is %s for %s",
			                    got == 1 ? "not accepted" : "required", prod);
			return;
		}
		t.has_fmc = got == 1;
		k.tcb = cvm_snp_tcb_encode(&t, product);
		answer(ctx, &k, CT_DER, resp);
	}
}

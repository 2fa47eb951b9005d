/* Cosmian VM's read endpoints on the TLS listener, for the clients that
 * already speak them (docs/daemons/cvm-agentd.md "Cosmian VM's endpoints"):
 *
 *   GET /quote/tee?nonce=B64   the raw TDX quote over nonce || SHA-256(this
 *                              listener's certificate, DER), as a JSON array
 *                              of byte values; the nonce is 32 bytes
 *   GET /quote/tpm?nonce=B64   a TPM quote of PCR 10 (SHA-256 bank) by the AK
 *                              with the nonce (1 to 64 bytes) as qualifying
 *                              data: {"pcr_value_hash_method": "Sha256",
 *                              "quote", "signature", "public_key"}, base64
 *                              without padding of TPMS_ATTEST, TPMT_SIGNATURE
 *                              and TPMT_PUBLIC
 *   GET /ima/ascii             the kernel's ascii list, as a JSON string
 *   GET /ima/binary            the binary list, as a JSON array of bytes
 *
 * The shapes are Cosmian's (../specs: cosmian_vm.md §2.4); the weak points of
 * the protocol stay the client's to close: these endpoints bind nothing but
 * what Cosmian's client checks. cvmkit's own client (cvm verify) uses
 * GetEvidence, whose bundle binds the nonce, the AK and the TPM quote in the
 * TEE quote. Nothing here is served on SEV-SNP: the agent never puts a
 * caller's raw report data into an SNP report (include/cvmkit/evidence.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>

#include "agent.h"
#include "daemon.h"

#define COSMIAN_TEE_NONCE_LEN 32u
#define COSMIAN_TPM_NONCE_MAX 64u
#define COSMIAN_IMA_PCR 10u
#define COSMIAN_NONCE_B64_MAX 256u /* the nonce parameter, percent-decoded */
/* The kernel's ascii list is about twice its binary list. */
#define COSMIAN_IMA_ASCII_MAX (2 * AGENT_IMA_LOG_MAX)

static const char text_plain[] = "text/plain; charset=utf-8";

/* fail answers `status` with the message as text/plain, as Cosmian's agent
 * does for its errors, and logs it. */
static bool fail(struct cvm_http_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(struct cvm_http_resp *resp, int status, const char *fmt, ...)
{
	char msg[CVM_HTTPD_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cvm_http_resp_bytes(resp, status, text_plain, msg, strlen(msg));
	(void)snprintf(resp->err, sizeof(resp->err), "%s", msg);
	return true;
}

/* query_nonce finds the one `nonce` parameter of the query, percent-decodes
 * it and decodes its base64 (standard alphabet, padding optional, as
 * Cosmian's client sends it without) into a new buffer of at most `max`
 * bytes. Returns 0, CVM_E_FORMAT (absent, twice, bad encoding) or
 * CVM_E_TOO_LARGE. */
static int query_nonce(const char *query, size_t max, uint8_t **out, size_t *out_len)
{
	const char *p = query, *val = NULL;
	size_t val_len = 0;
	char raw[COSMIAN_NONCE_B64_MAX * 3 + 1], *dec;
	size_t dec_len = 0;
	int r;

	*out = NULL;
	*out_len = 0;
	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

		if (len >= 6 && memcmp(p, "nonce=", 6) == 0) {
			if (val != NULL)
				return CVM_E_FORMAT; /* given twice */
			val = p + 6;
			val_len = len - 6;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	if (val == NULL || val_len == 0)
		return CVM_E_FORMAT;
	if (val_len >= sizeof(raw))
		return CVM_E_TOO_LARGE;
	memcpy(raw, val, val_len);
	raw[val_len] = '\0';
	/* '+' is base64's, not a space: decode_plus is off */
	dec = evhttp_uridecode(raw, 0, &dec_len);
	if (dec == NULL)
		return CVM_E_NOMEM;
	if (dec_len != strlen(dec)) {
		free(dec);
		return CVM_E_FORMAT; /* an encoded NUL */
	}
	r = cvm_base64_decode(dec, dec_len, max, out, out_len);
	free(dec);
	return r;
}

/* take_body answers 200 with `buf` (malloc'd, `len` bytes, JSON), which the
 * response then owns. */
static void take_body(struct cvm_http_resp *resp, char *buf, size_t len)
{
	cvm_http_resp_cleanup(resp);
	resp->status = 200;
	resp->body = buf;
	resp->body_len = len;
}

/* byte_array answers `p` as a JSON array of its byte values, "[1,2,255]",
 * written here rather than as len jansson integers. */
static bool byte_array(struct cvm_http_resp *resp, const uint8_t *p, size_t len)
{
	size_t cap = 4 * len + 3, o = 0;
	char *buf = malloc(cap);

	if (buf == NULL)
		return fail(resp, 500, "out of memory");
	buf[o++] = '[';
	for (size_t i = 0; i < len; i++) {
		unsigned v = p[i];

		if (i != 0)
			buf[o++] = ',';
		if (v >= 100)
			buf[o++] = (char)('0' + v / 100);
		if (v >= 10)
			buf[o++] = (char)('0' + v / 10 % 10);
		buf[o++] = (char)('0' + v % 10);
	}
	buf[o++] = ']';
	take_body(resp, buf, o);
	return true;
}

static bool quote_tee(struct agent *a, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	struct cvm_tee_evidence ev;
	uint8_t rd[64], *nonce = NULL, *der = NULL;
	size_t nonce_len = 0;
	X509 *cert;
	int der_len, r;

	if (a->tee_info.platform != CVM_TEE_PLATFORM_TDX)
		return fail(resp, 501,
		            "GET /quote/tee is served on TDX only: on SEV-SNP the agent never puts a "
		            "caller's raw report data into a report; use GetEvidence");
	r = query_nonce(req->query, COSMIAN_TEE_NONCE_LEN, &nonce, &nonce_len);
	if (r == CVM_E_NOMEM)
		return fail(resp, 500, "out of memory");
	if (r != CVM_OK || nonce_len != COSMIAN_TEE_NONCE_LEN) {
		free(nonce);
		return fail(resp, 400,
		            "Nonce should be a 32 bytes string (base64, standard alphabet, in the query "
		            "parameter nonce)");
	}
	memcpy(rd, nonce, COSMIAN_TEE_NONCE_LEN);
	free(nonce);
	/* the certificate this connection was served (a renewal does not
	 * change an open connection's) */
	cert = req->tls != NULL ? SSL_get_certificate(req->tls) : NULL;
	der_len = cert != NULL ? i2d_X509(cert, &der) : -1;
	if (der_len <= 0)
		return fail(resp, 500, "cannot read this connection's certificate");
	cvm_sha256(der, (size_t)der_len, rd + COSMIAN_TEE_NONCE_LEN);
	OPENSSL_free(der);
	r = agent_quote(a, rd, &ev);
	if (r != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "quote_failed", "api=cosmian error=%s", cvm_strerror(r));
		return fail(resp, 500, "the TEE gave no quote: %s",
		            r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
	}
	(void)byte_array(resp, ev.data, ev.data_len);
	cvm_tee_evidence_cleanup(&ev);
	return true;
}

/* b64_set adds `key`: base64 of `p` without its padding, as Cosmian's
 * STANDARD_NO_PAD. */
static int b64_set(json_t *o, const char *key, const uint8_t *p, size_t len)
{
	char *s = cvm_base64_encode_new(p, len);
	size_t n;
	int r;

	if (s == NULL)
		return CVM_E_NOMEM;
	n = strlen(s);
	while (n > 0 && s[n - 1] == '=')
		s[--n] = '\0';
	r = cvm_json_set(o, key, json_string(s));
	free(s);
	return r;
}

static bool quote_tpm(struct agent *a, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	struct agent_tpm_raw q;
	uint8_t *nonce = NULL;
	size_t nonce_len = 0;
	char err[512];
	json_t *o;
	int r;

	if (!a->has_tpm)
		return fail(resp, 500,
		            "The agent is not configured to support TPM (start cvm-agentd with --tpm)");
	r = query_nonce(req->query, COSMIAN_TPM_NONCE_MAX, &nonce, &nonce_len);
	if (r == CVM_E_TOO_LARGE)
		return fail(resp, 500, "Nonce too long (> %u bytes)", COSMIAN_TPM_NONCE_MAX);
	if (r == CVM_E_NOMEM)
		return fail(resp, 500, "out of memory");
	if (r != CVM_OK || nonce_len == 0) {
		free(nonce);
		return fail(resp, 400, "nonce: expected 1 to %u bytes in base64 (query parameter nonce)",
		            COSMIAN_TPM_NONCE_MAX);
	}
	err[0] = '\0';
	r = agent_tpm_quote_raw(a, COSMIAN_IMA_PCR, nonce, nonce_len, &q, err, sizeof(err));
	free(nonce);
	if (r != CVM_OK) {
		char k[CVM_KV_MAX];

		cvm_daemon_log(CVM_LOG_ERROR, "tpm_quote_failed", "api=cosmian error=%s", cvm_kv(err, k));
		return fail(resp, 500, "%s", err);
	}
	o = json_object();
	/* Cosmian's field order; TPMT_PUBLIC is the TPM2B_PUBLIC without its size */
	if (o == NULL || cvm_json_set(o, "pcr_value_hash_method", json_string("Sha256")) != CVM_OK ||
	    b64_set(o, "quote", q.attest, q.attest_len) != CVM_OK ||
	    b64_set(o, "signature", q.sig, q.sig_len) != CVM_OK ||
	    b64_set(o, "public_key", q.ak_pub + 2, q.ak_pub_len - 2) != CVM_OK)
		(void)fail(resp, 500, "out of memory");
	else
		cvm_http_resp_json(resp, 200, o);
	json_decref(o);
	agent_tpm_raw_cleanup(&q);
	return true;
}

/* ima_ascii_path is the kernel's ascii list beside the binary one the
 * agent serves (securityfs holds both). */
static bool ima_ascii_path(const struct agent *a, char *out, size_t cap)
{
	const char *slash = strrchr(a->ima_path, '/');
	size_t dir = slash != NULL ? (size_t)(slash - a->ima_path) + 1 : 0;

	return snprintf(out, cap, "%.*sascii_runtime_measurements", (int)dir, a->ima_path) < (int)cap;
}

static bool ima_list(struct agent *a, bool ascii, struct cvm_http_resp *resp)
{
	char path[AGENT_PATH_MAX + 32];
	uint8_t *buf = NULL;
	size_t len = 0;
	json_t *s;
	int r;

	if (a->ima_path[0] == '\0')
		return fail(resp, 500,
		            "the agent serves no IMA list (start cvm-agentd with --ima, or on a "
		            "kernel with IMA)");
	if (!ascii)
		(void)snprintf(path, sizeof(path), "%s", a->ima_path);
	else if (!ima_ascii_path(a, path, sizeof(path)))
		return fail(resp, 500, "the IMA list's path is too long");
	r = cvm_file_read(path, ascii ? COSMIAN_IMA_ASCII_MAX : AGENT_IMA_LOG_MAX, &buf, &len);
	if (r == CVM_E_TOO_LARGE)
		return fail(resp, 500, "the IMA list %s is larger than %zu bytes", path,
		            ascii ? COSMIAN_IMA_ASCII_MAX : AGENT_IMA_LOG_MAX);
	if (r != CVM_OK)
		return fail(resp, 500, "cannot read the IMA list %s: %s", path,
		            r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
	if (!ascii) {
		(void)byte_array(resp, buf, len);
		free(buf);
		return true;
	}
	s = json_stringn((const char *)buf, len);
	free(buf);
	if (s == NULL)
		return fail(resp, 500, "the ascii IMA list %s is not UTF-8 text (GET /ima/binary serves it)",
		            path);
	cvm_http_resp_json(resp, 200, s);
	json_decref(s);
	return true;
}

bool agent_cosmian_serve(struct agent *a, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	static const char *const paths[] = {"/quote/tee", "/quote/tpm", "/ima/ascii", "/ima/binary"};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (strcmp(req->path, paths[i]) == 0)
			break;
	}
	if (i == sizeof(paths) / sizeof(paths[0]))
		return false;
	if (!a->cfg.cosmian_api)
		return fail(resp, 404, "%s: Cosmian VM's endpoints are off ([tls] cosmian_api)", paths[i]);
	if (req->method != CVM_HTTP_GET) {
		(void)fail(resp, 405, "%s answers GET only", paths[i]);
		resp->allow = "GET";
		return true;
	}
	switch (i) {
	case 0:
		return quote_tee(a, req, resp);
	case 1:
		return quote_tpm(a, req, resp);
	default:
		return ima_list(a, i == 2, resp);
	}
}

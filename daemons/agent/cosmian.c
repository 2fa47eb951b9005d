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
 *   GET /snapshot              Cosmian's snapshot of this VM (202 null while
 *                              its file walk, walk.c, runs); DELETE drops it
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
#include <cvmkit/ima.h>
#include <cvmkit/quote.h>
#include <cvmkit/snp.h>
#include <cvmkit/tpm.h>

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

/* ---- GET and DELETE /snapshot ---------------------------------------------- */

static int hex_set(json_t *o, const char *key, const uint8_t *p, size_t n)
{
	return cvm_json_set(o, key, cvm_json_hex(p, n));
}

/* tee_policy is Cosmian's TeePolicy of a fresh quote over zero report data:
 * every field copied from it ({"Tdx": {header, body}} or {"Sev": {...}}). */
static json_t *tee_policy(struct agent *a, char *err, size_t err_len)
{
	static const uint8_t zero[64];
	struct cvm_tee_evidence ev;
	json_t *o = json_object(), *pol = json_object(), *h = NULL, *b = NULL;
	int r = o == NULL || pol == NULL ? CVM_E_NOMEM : CVM_OK;

	memset(&ev, 0, sizeof(ev));
	if (r == CVM_OK)
		r = agent_quote(a, zero, &ev);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "the TEE gave no quote: %s", cvm_strerror(r));
		goto fail;
	}
	if (a->tee_info.platform == CVM_TEE_PLATFORM_TDX) {
		struct cvm_quote q;
		const struct cvm_tdx_report *td = &q.body.td;
		uint64_t xfam = 0;

		if (cvm_quote_parse(ev.data, ev.data_len, &q) != CVM_OK || q.tee != CVM_TEE_TDX) {
			(void)snprintf(err, err_len, "the TEE's quote does not parse as a TDX quote");
			goto fail;
		}
		for (int i = 7; i >= 0; i--)
			xfam = xfam << 8 | td->xfam[i];
		h = json_object();
		b = json_object();
		r = h == NULL || b == NULL ? CVM_E_NOMEM : CVM_OK;
		r |= cvm_json_set(h, "minimum_qe_svn", json_integer(q.qe_svn));
		r |= cvm_json_set(h, "minimum_pce_svn", json_integer(q.pce_svn));
		r |= hex_set(h, "qe_vendor_id", q.qe_vendor_id, sizeof(q.qe_vendor_id));
		r |= hex_set(b, "minimum_tee_tcb_svn", td->tee_tcb_svn, sizeof(td->tee_tcb_svn));
		r |= hex_set(b, "mr_seam", td->mr_seam, sizeof(td->mr_seam));
		r |= hex_set(b, "td_attributes", td->td_attributes, sizeof(td->td_attributes));
		r |= cvm_json_set(b, "xfam", json_integer((json_int_t)xfam));
		r |= hex_set(b, "mr_td", td->mr_td, sizeof(td->mr_td));
		r |= hex_set(b, "mr_config_id", td->mr_config_id, sizeof(td->mr_config_id));
		r |= hex_set(b, "mr_owner", td->mr_owner, sizeof(td->mr_owner));
		r |= hex_set(b, "mr_owner_config", td->mr_owner_config, sizeof(td->mr_owner_config));
		r |= hex_set(b, "report_data", td->report_data, sizeof(td->report_data));
		r |= cvm_json_set(pol, "header", h);
		h = NULL;
		r |= cvm_json_set(pol, "body", b);
		b = NULL;
		r |= cvm_json_set(o, "Tdx", pol);
	} else {
		struct cvm_snp_report rep;

		if (cvm_snp_report_parse(ev.data, ev.data_len, &rep) != CVM_OK) {
			(void)snprintf(err, err_len, "the TEE's report does not parse as an SEV-SNP report");
			goto fail;
		}
		r |= hex_set(pol, "measurement", rep.measurement, sizeof(rep.measurement));
		r |= hex_set(pol, "report_data", rep.report_data, sizeof(rep.report_data));
		r |= hex_set(pol, "family_id", rep.family_id, sizeof(rep.family_id));
		r |= hex_set(pol, "image_id", rep.image_id, sizeof(rep.image_id));
		r |= cvm_json_set(pol, "guest_svn", json_integer(rep.guest_svn));
		r |= hex_set(pol, "id_key_digest", rep.id_key_digest, sizeof(rep.id_key_digest));
		r |= hex_set(pol, "author_key_digest", rep.author_key_digest, sizeof(rep.author_key_digest));
		r |= cvm_json_set(pol, "policy", json_integer((json_int_t)rep.policy));
		r |= hex_set(pol, "report_id", rep.report_id, sizeof(rep.report_id));
		r |= hex_set(pol, "report_id_ma", rep.report_id_ma, sizeof(rep.report_id_ma));
		r |= cvm_json_set(o, "Sev", pol);
	}
	pol = NULL; /* moved into o, or released by cvm_json_set */
	cvm_tee_evidence_cleanup(&ev);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "out of memory");
		json_decref(o);
		return NULL;
	}
	return o;
fail:
	cvm_tee_evidence_cleanup(&ev);
	json_decref(h);
	json_decref(b);
	json_decref(pol);
	json_decref(o);
	return NULL;
}

/* tpm_policy is {"reset_count", "restart_count"} from the clock of a TPM
 * quote (qualifying data 16 x 0xff, as Cosmian's agent asks it). */
static json_t *tpm_policy(struct agent *a, char *err, size_t err_len)
{
	uint8_t qdata[16];
	struct agent_tpm_raw q;
	struct cvm_tpm_attest at;
	json_t *o = NULL;

	memset(qdata, 0xff, sizeof(qdata));
	if (agent_tpm_quote_raw(a, COSMIAN_IMA_PCR, qdata, sizeof(qdata), &q, err, err_len) != CVM_OK)
		return NULL;
	if (cvm_tpm_attest_parse(q.attest, q.attest_len, &at) != CVM_OK)
		(void)snprintf(err, err_len, "the TPM's quote does not parse");
	else
		o = json_pack("{s:I, s:I}", "reset_count", (json_int_t)at.reset_count, "restart_count",
		              (json_int_t)at.restart_count);
	agent_tpm_raw_cleanup(&q);
	return o;
}

static int cmp_pair(const void *x, const void *y)
{
	json_t *const *a = x, *const *b = y;
	int c = strcmp(json_string_value(json_array_get(*a, 0)), json_string_value(json_array_get(*b, 0)));

	return c != 0 ? c
	              : strcmp(json_string_value(json_array_get(*a, 1)),
	                       json_string_value(json_array_get(*b, 1)));
}

/* ima_pairs appends the (name, hex digest) pairs of the IMA list's entries
 * that carry a file digest. */
static int ima_pairs(struct agent *a, json_t *arr, char *err, size_t err_len)
{
	struct cvm_ima_reader *rd = NULL;
	struct cvm_ima_entry e;
	uint8_t *buf = NULL;
	size_t len = 0;
	bool more = true;
	int r;

	if (a->ima_path[0] == '\0')
		return CVM_OK;
	r = cvm_file_read(a->ima_path, AGENT_IMA_LOG_MAX, &buf, &len);
	if (r == CVM_OK)
		r = cvm_ima_reader_new_mem(buf, len, CVM_IMA_FORMAT_BINARY, &rd);
	while (r == CVM_OK && (r = cvm_ima_reader_next(rd, &e, &more)) == CVM_OK && more) {
		char hex[2 * CVM_DIGEST_MAX + 1], *name;
		json_t *pair, *p;

		if (e.digest.len == 0 || e.digest.len > CVM_DIGEST_MAX || e.name.len == 0)
			continue;
		cvm_hex_encode(e.digest.p, e.digest.len, hex);
		name = strndup((const char *)e.name.p, e.name.len);
		p = name != NULL ? json_stringn(name, e.name.len) : NULL;
		free(name);
		if (p == NULL)
			continue; /* a name that is not UTF-8: Cosmian's agent cannot hold it either */
		pair = json_pack("[o, s]", p, hex);
		if (pair == NULL || json_array_append_new(arr, pair) != 0)
			r = CVM_E_NOMEM;
	}
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot read the IMA list %s: %s", a->ima_path, cvm_strerror(r));
	cvm_ima_reader_free(rd);
	free(buf);
	return r;
}

/* filehashes is the set of the IMA list's pairs and the walk's, sorted and
 * each once. */
static json_t *filehashes(struct agent *a, json_t *walk, char *err, size_t err_len)
{
	json_t *all = json_array(), *out = json_array(), **v = NULL, *p;
	size_t n, i, k = 0;

	if (all == NULL || out == NULL || json_array_extend(all, walk) != 0)
		goto nomem;
	if (ima_pairs(a, all, err, err_len) != CVM_OK)
		goto fail;
	n = json_array_size(all);
	v = calloc(n + 1, sizeof(json_t *));
	if (v == NULL)
		goto nomem;
	json_array_foreach(all, i, p) v[k++] = p;
	qsort(v, k, sizeof(json_t *), cmp_pair);
	for (i = 0; i < k; i++) {
		if (i > 0 && cmp_pair(&v[i - 1], &v[i]) == 0)
			continue;
		if (json_array_append(out, v[i]) != 0)
			goto nomem;
	}
	free(v);
	json_decref(all);
	return out;
nomem:
	(void)snprintf(err, err_len, "out of memory");
fail:
	free(v);
	json_decref(all);
	json_decref(out);
	return NULL;
}

static bool snapshot_get(struct agent *a, struct cvm_http_resp *resp)
{
	char err[512] = "";
	const char *state = "idle";
	json_t *walk = json_array(), *doc = NULL, *tee = NULL, *tpm = NULL, *fh = NULL;
	bool already = false;
	int r;

	if (walk == NULL || agent_walk_pairs(a, walk, &state, err, sizeof(err)) != CVM_OK) {
		json_decref(walk);
		return fail(resp, 500, "out of memory");
	}
	if (strcmp(state, "idle") == 0) {
		/* none yet: it is ordered now, as Cosmian's agent does */
		r = agent_walk_start(a, &already, err, sizeof(err));
		json_decref(walk);
		if (r != CVM_OK)
			return fail(resp, 500, "cannot start the snapshot's file walk: %s", err);
		cvm_http_resp_json(resp, 202, NULL);
		return true;
	}
	if (strcmp(state, "running") == 0) {
		json_decref(walk);
		cvm_http_resp_json(resp, 202, NULL);
		return true;
	}
	if (strcmp(state, "failed") == 0) {
		json_decref(walk);
		return fail(resp, 500,
		            "the snapshot's file walk failed: %s (DELETE /snapshot, then ask again)", err);
	}
	tee = tee_policy(a, err, sizeof(err));
	if (tee != NULL && a->has_tpm) {
		tpm = tpm_policy(a, err, sizeof(err));
		if (tpm != NULL)
			fh = filehashes(a, walk, err, sizeof(err));
	}
	json_decref(walk);
	if (tee == NULL || (a->has_tpm && (tpm == NULL || fh == NULL))) {
		json_decref(tee);
		json_decref(tpm);
		return fail(resp, 500, "cannot make the snapshot: %s", err);
	}
	/* Cosmian's field order; without a TPM, both TPM fields are null */
	doc = json_pack("{s:n, s:o, s:o, s:o}", "cloud_type", "tee_policy", tee, "tpm_policy",
	                tpm != NULL ? tpm : json_null(), "filehashes", fh != NULL ? fh : json_null());
	if (doc == NULL)
		return fail(resp, 500, "out of memory");
	cvm_http_resp_json(resp, 200, doc);
	json_decref(doc);
	return true;
}

static bool snapshot_delete(struct agent *a, struct cvm_http_resp *resp)
{
	if (agent_walk_clear(a) != CVM_OK)
		return fail(resp, 409,
		            "A snapshot is currently processing (hold on before processing other actions)");
	cvm_http_resp_json(resp, 200, NULL);
	return true;
}

bool agent_cosmian_serve(struct agent *a, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	static const char *const paths[] = {"/quote/tee", "/quote/tpm", "/ima/ascii", "/ima/binary",
	                                    "/snapshot"};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (strcmp(req->path, paths[i]) == 0)
			break;
	}
	if (i == sizeof(paths) / sizeof(paths[0]))
		return false;
	if (!a->cfg.cosmian_api)
		return fail(resp, 404, "%s: Cosmian VM's endpoints are off ([tls] cosmian_api)", paths[i]);
	if (i == 4 && req->method == CVM_HTTP_OTHER && req->method_name != NULL &&
	    strcmp(req->method_name, "DELETE") == 0)
		return snapshot_delete(a, resp);
	if (req->method != CVM_HTTP_GET) {
		(void)fail(resp, 405, "%s answers GET only", paths[i]);
		resp->allow = i == 4 ? "GET, DELETE" : "GET";
		return true;
	}
	switch (i) {
	case 0:
		return quote_tee(a, req, resp);
	case 1:
		return quote_tpm(a, req, resp);
	case 4:
		return snapshot_get(a, resp);
	default:
		return ima_list(a, i == 2, resp);
	}
}

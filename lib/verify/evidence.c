/* cvmkit's evidence bundle (include/cvmkit/evidence.h): the nonce binding
 * rules, the bundle parser and the verifier of the whole bundle. The parts
 * are verified by their own modules (DCAP, AMD, TPM, IMA); this file only
 * decides what each must be checked against and that they agree. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/evidence.h>
#include <cvmkit/ima.h>
#include <cvmkit/quote.h>
#include <cvmkit/verify.h>

/* ---- the binding ------------------------------------------------------- */

static bool nonce_len_ok(size_t n)
{
	return n >= CVM_EVIDENCE_NONCE_MIN && n <= CVM_EVIDENCE_NONCE_MAX;
}

int cvm_evidence_report_data(const uint8_t *nonce, size_t nonce_len, const uint8_t *ak_name,
                             size_t ak_name_len, uint8_t out[64])
{
	static const char label[] = CVM_EVIDENCE_RD_LABEL;
	uint8_t buf[sizeof(label) + 1 + CVM_EVIDENCE_NONCE_MAX + 2 + CVM_TPM_NAME_MAX];
	size_t n = 0;

	memset(out, 0, 64);
	if (!nonce_len_ok(nonce_len) || ak_name_len > CVM_TPM_NAME_MAX)
		return CVM_E_INVAL;
	if (ak_name_len == 0) {
		memcpy(out, nonce, nonce_len);
		return CVM_OK;
	}
	/* sizeof(label) counts the NUL that separates the label from the rest */
	memcpy(buf, label, sizeof(label));
	n = sizeof(label);
	buf[n++] = (uint8_t)nonce_len;
	memcpy(buf + n, nonce, nonce_len);
	n += nonce_len;
	buf[n++] = (uint8_t)(ak_name_len >> 8);
	buf[n++] = (uint8_t)ak_name_len;
	memcpy(buf + n, ak_name, ak_name_len);
	n += ak_name_len;
	return cvm_digest(CVM_DIGEST_SHA512, buf, n, out, 64);
}

int cvm_evidence_caller_report_data(const uint8_t data[64], uint8_t out[64])
{
	static const char label[] = CVM_EVIDENCE_CALLER_RD_LABEL;
	uint8_t buf[sizeof(label) + 64];
	int r;

	/* sizeof(label) counts the NUL that separates the label from the data */
	memcpy(buf, label, sizeof(label));
	memcpy(buf + sizeof(label), data, 64);
	r = cvm_digest(CVM_DIGEST_SHA512, buf, sizeof(buf), out, 64);
	if (r != CVM_OK)
		memset(out, 0, 64); /* never the caller's data */
	return r;
}

/* dstack's boot measurements (spec §5.2), v0.5.8 to HEAD. */
static const char *const dstack_system_names[] = {
    "system-preparing", "app-id",          "compose-hash",    "instance-id", "boot-mr-done",
    "mr-kms",           "os-image-hash",   "key-provider",    "storage-fs",  "system-ready",
    "init-script-hash", "gpu-policy-hash", "gpu-attestation",
};

bool cvm_evidence_is_system_event(const char *name, size_t len)
{
	static const char prefix[] = CVM_EVIDENCE_SYSTEM_PREFIX;

	if (len >= sizeof(prefix) - 1 && strncasecmp(name, prefix, sizeof(prefix) - 1) == 0)
		return true;
	for (size_t i = 0; i < sizeof(dstack_system_names) / sizeof(dstack_system_names[0]); i++) {
		if (strlen(dstack_system_names[i]) == len && memcmp(dstack_system_names[i], name, len) == 0)
			return true;
	}
	return false;
}

int cvm_evidence_tpm_qualifying_data(const uint8_t *nonce, size_t nonce_len,
                                     uint8_t out[CVM_EVIDENCE_QDATA_LEN])
{
	static const char label[] = CVM_EVIDENCE_QDATA_LABEL;
	uint8_t buf[sizeof(label) + 1 + CVM_EVIDENCE_NONCE_MAX];
	size_t n;

	memset(out, 0, CVM_EVIDENCE_QDATA_LEN);
	if (!nonce_len_ok(nonce_len))
		return CVM_E_INVAL;
	memcpy(buf, label, sizeof(label));
	n = sizeof(label);
	buf[n++] = (uint8_t)nonce_len;
	memcpy(buf + n, nonce, nonce_len);
	n += nonce_len;
	cvm_sha256(buf, n, out);
	return CVM_OK;
}

/* ---- the parsed bundle ------------------------------------------------- */

/* How much of a wrong AK event's payload a message shows, bytes. */
#define CVM_EVIDENCE_PAYLOAD_SHOWN 40u

struct ev_event {
	uint32_t imr;
	uint32_t type;
	uint8_t digest[48];
	char *name;
	uint8_t *payload;
	size_t payload_len;
};

struct cvm_evidence {
	enum cvm_evidence_platform platform;
	bool is_simulated;
	uint8_t nonce[CVM_EVIDENCE_NONCE_MAX];
	size_t nonce_len;
	uint8_t *quote;
	size_t quote_len;
	struct ev_event *events;
	size_t event_count;
	bool has_tpm;
	uint8_t *ak_public;
	size_t ak_public_len;
	uint8_t ak_name[CVM_TPM_NAME_MAX]; /* as the bundle states it; 0 bytes when absent */
	size_t ak_name_len;
	uint8_t qdata[CVM_TPM_DATA_MAX]; /* as the bundle states it; 0 bytes when absent */
	size_t qdata_len;
	uint8_t *attest, *sig;
	size_t attest_len, sig_len;
	struct cvm_tpm_pcrs pcrs;
	bool has_ima;
	uint8_t *ima;
	size_t ima_len;
};

void cvm_evidence_free(struct cvm_evidence *ev)
{
	if (ev == NULL)
		return;
	for (size_t i = 0; i < ev->event_count; i++) {
		free(ev->events[i].name);
		free(ev->events[i].payload);
	}
	free(ev->events);
	free(ev->quote);
	free(ev->ak_public);
	free(ev->attest);
	free(ev->sig);
	free(ev->ima);
	free(ev);
}

enum cvm_evidence_platform cvm_evidence_platform(const struct cvm_evidence *ev)
{
	return ev->platform;
}

bool cvm_evidence_claims_simulated(const struct cvm_evidence *ev)
{
	return ev->is_simulated;
}

bool cvm_evidence_has_tpm(const struct cvm_evidence *ev)
{
	return ev->has_tpm;
}

bool cvm_evidence_has_ima(const struct cvm_evidence *ev)
{
	return ev->has_ima;
}

const struct cvm_tpm_pcrs *cvm_evidence_pcrs(const struct cvm_evidence *ev)
{
	return ev->has_tpm ? &ev->pcrs : NULL;
}

void cvm_evidence_tee(const struct cvm_evidence *ev, const uint8_t **out, size_t *out_len)
{
	*out = ev->quote;
	*out_len = ev->quote_len;
}

/* err_set writes the reason of a parse failure and returns `r`. */
__attribute__((format(printf, 4, 5))) static int err_set(char *err, size_t err_len, int r, const char *fmt,
                                                         ...)
{
	va_list ap;

	if (err != NULL && err_len != 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* hex_field decodes the hex string `key` of `o` (`min` to `max` bytes)
 * into a new buffer; `sect` prefixes the key in `err`. */
static int hex_field(json_t *o, const char *sect, const char *key, size_t min, size_t max, uint8_t **out,
                     size_t *out_len, char *err, size_t err_len)
{
	json_t *v = json_object_get(o, key);
	size_t hex_len, n;
	uint8_t *buf;

	*out = NULL;
	*out_len = 0;
	if (!json_is_string(v))
		return err_set(err, err_len, CVM_E_FORMAT, "%s%s: expected a hex string", sect, key);
	hex_len = json_string_length(v);
	if (hex_len / 2 > max)
		return err_set(err, err_len, CVM_E_TOO_LARGE, "%s%s: more than %zu bytes", sect, key, max);
	if (hex_len % 2 != 0 || hex_len / 2 < min)
		return err_set(err, err_len, CVM_E_FORMAT, "%s%s: expected %zu to %zu bytes of hex", sect,
		               key, min, max);
	buf = malloc(hex_len / 2 + 1);
	if (buf == NULL)
		return CVM_E_NOMEM;
	if (cvm_hex_decode(json_string_value(v), hex_len, buf, hex_len / 2 + 1, &n) != CVM_OK) {
		free(buf);
		return err_set(err, err_len, CVM_E_FORMAT, "%s%s: not hex", sect, key);
	}
	*out = buf;
	*out_len = n;
	return CVM_OK;
}

/* hex_fixed is hex_field into a caller's buffer of `cap` bytes. */
static int hex_fixed(json_t *o, const char *sect, const char *key, size_t min, uint8_t *dst, size_t cap,
                     size_t *out_len, char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int r;

	*out_len = 0;
	r = hex_field(o, sect, key, min, cap, &buf, &n, err, err_len);
	if (r != CVM_OK)
		return r;
	if (n != 0)
		memcpy(dst, buf, n);
	*out_len = n;
	free(buf);
	return CVM_OK;
}

static int parse_u32(json_t *v, uint32_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return CVM_E_FORMAT;
	i = json_integer_value(v);
	if (i < 0 || i > (json_int_t)UINT32_MAX)
		return CVM_E_FORMAT;
	*out = (uint32_t)i;
	return CVM_OK;
}

static int parse_event(json_t *e, size_t idx, struct ev_event *out, char *err, size_t err_len)
{
	json_t *name = json_object_get(e, "event");
	size_t n = 0;
	int r;

	if (!json_is_object(e) || parse_u32(json_object_get(e, "imr"), &out->imr) != CVM_OK ||
	    parse_u32(json_object_get(e, "event_type"), &out->type) != CVM_OK || !json_is_string(name))
		return err_set(err, err_len, CVM_E_FORMAT,
		               "event_log[%zu]: expected {imr, event_type, digest, event, event_payload}",
		               idx);
	if (out->imr > 3)
		return err_set(err, err_len, CVM_E_FORMAT, "event_log[%zu]: imr %u is not 0 to 3", idx,
		               out->imr);
	r = hex_fixed(e, "event_log[].", "digest", sizeof(out->digest), out->digest, sizeof(out->digest), &n,
	              err, err_len);
	if (r == CVM_OK && n != sizeof(out->digest))
		r = err_set(err, err_len, CVM_E_FORMAT, "event_log[%zu]: digest is not 48 bytes", idx);
	if (r != CVM_OK)
		return r;
	if (json_string_length(name) > CVM_EVL_DSTACK_NAME_MAX ||
	    memchr(json_string_value(name), '\0', json_string_length(name)) != NULL)
		return err_set(err, err_len, CVM_E_FORMAT, "event_log[%zu]: event name too long or with NUL",
		               idx);
	out->name = strdup(json_string_value(name));
	if (out->name == NULL)
		return CVM_E_NOMEM;
	return hex_field(e, "event_log[].", "event_payload", 0, CVM_EVIDENCE_PAYLOAD_MAX, &out->payload,
	                 &out->payload_len, err, err_len);
}

static int parse_events(json_t *arr, struct cvm_evidence *ev, char *err, size_t err_len)
{
	size_t count;
	int r;

	if (!json_is_array(arr))
		return err_set(err, err_len, CVM_E_FORMAT, "event_log: expected an array");
	count = json_array_size(arr);
	if (count > CVM_EVIDENCE_EVENTS_MAX)
		return err_set(err, err_len, CVM_E_TOO_LARGE, "event_log: more than %u events",
		               CVM_EVIDENCE_EVENTS_MAX);
	if (count == 0)
		return CVM_OK;
	ev->events = calloc(count, sizeof(*ev->events));
	if (ev->events == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < count; i++) {
		/* counted first, so that cvm_evidence_free releases a half-parsed one */
		ev->event_count = i + 1;
		r = parse_event(json_array_get(arr, i), i, &ev->events[i], err, err_len);
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

/* parse_pcr_index accepts "0" to "23", without sign or leading zeros. */
static bool parse_pcr_index(const char *s, unsigned *out)
{
	size_t n = strlen(s);

	if (n == 0 || n > 2 || s[0] < '0' || s[0] > '9' ||
	    (n == 2 && (s[0] == '0' || s[1] < '0' || s[1] > '9')))
		return false;
	*out = n == 1 ? (unsigned)(s[0] - '0') : (unsigned)(s[0] - '0') * 10u + (unsigned)(s[1] - '0');
	return *out < CVM_TPM_PCR_COUNT;
}

/* parse_pcrs reads {"sha256": {"0": "<hex>", ...}, ...}. */
static int parse_pcrs(json_t *o, struct cvm_tpm_pcrs *out, char *err, size_t err_len)
{
	const char *bank, *idx;
	json_t *vals, *v;

	cvm_tpm_pcrs_init(out);
	if (!json_is_object(o))
		return err_set(err, err_len, CVM_E_FORMAT, "tpm.pcrs: expected an object of banks");
	json_object_foreach(o, bank, vals)
	{
		enum cvm_digest_alg alg;

		if (cvm_digest_from_name(bank, &alg) != CVM_OK || !json_is_object(vals))
			return err_set(err, err_len, CVM_E_FORMAT,
			               "tpm.pcrs: '%.16s' is not a bank of PCR values", bank);
		json_object_foreach(vals, idx, v)
		{
			uint8_t d[CVM_TPM_DIGEST_MAX];
			size_t len = cvm_digest_len((uint16_t)alg);
			unsigned pcr;

			if (!parse_pcr_index(idx, &pcr) || !json_is_string(v) ||
			    json_string_length(v) != 2 * len ||
			    cvm_hex_decode_exact(json_string_value(v), 2 * len, d, len) != CVM_OK ||
			    cvm_tpm_pcrs_set(out, (uint16_t)alg, pcr, d, len) != CVM_OK)
				return err_set(
				    err, err_len, CVM_E_FORMAT,
				    "tpm.pcrs.%s: '%.8s' is not a PCR 0-23 with a %zu-byte hex value", bank,
				    idx, len);
		}
	}
	return CVM_OK;
}

static int parse_tpm(json_t *t, struct cvm_evidence *ev, char *err, size_t err_len)
{
	int r;

	if (!json_is_object(t))
		return err_set(err, err_len, CVM_E_FORMAT, "tpm: expected an object or null");
	ev->has_tpm = true;
	r = hex_field(t, "tpm.", "ak_public", 1, CVM_TPM_AK_FILE_MAX, &ev->ak_public, &ev->ak_public_len, err,
	              err_len);
	if (r == CVM_OK)
		r = hex_field(t, "tpm.", "attest", 1, CVM_TPM_ATTEST_MAX, &ev->attest, &ev->attest_len, err,
		              err_len);
	if (r == CVM_OK)
		r = hex_field(t, "tpm.", "signature", 1, CVM_TPM_SIG_MAX, &ev->sig, &ev->sig_len, err,
		              err_len);
	if (r == CVM_OK && json_object_get(t, "ak_name") != NULL)
		r = hex_fixed(t, "tpm.", "ak_name", 1, ev->ak_name, sizeof(ev->ak_name), &ev->ak_name_len,
		              err, err_len);
	if (r == CVM_OK && json_object_get(t, "qualifying_data") != NULL)
		r = hex_fixed(t, "tpm.", "qualifying_data", 1, ev->qdata, sizeof(ev->qdata), &ev->qdata_len,
		              err, err_len);
	if (r == CVM_OK)
		r = parse_pcrs(json_object_get(t, "pcrs"), &ev->pcrs, err, err_len);
	return r;
}

static int parse_root(json_t *root, struct cvm_evidence *ev, char *err, size_t err_len)
{
	json_t *v;
	size_t n = 0;
	int r;

	if (!json_is_object(root))
		return err_set(err, err_len, CVM_E_FORMAT, "the bundle is not a JSON object");
	v = json_object_get(root, "version");
	if (!json_is_integer(v))
		return err_set(err, err_len, CVM_E_FORMAT, "version: expected an integer");
	if (json_integer_value(v) != CVM_EVIDENCE_VERSION)
		return err_set(err, err_len, CVM_E_UNSUPPORTED, "version %lld: cvmkit reads version %d",
		               (long long)json_integer_value(v), CVM_EVIDENCE_VERSION);
	v = json_object_get(root, "platform");
	if (json_is_string(v) && strcmp(json_string_value(v), "tdx") == 0)
		ev->platform = CVM_EVIDENCE_TDX;
	else if (json_is_string(v) && strcmp(json_string_value(v), "snp") == 0)
		ev->platform = CVM_EVIDENCE_SNP;
	else
		return err_set(err, err_len, CVM_E_UNSUPPORTED, "platform: expected \"tdx\" or \"snp\"");
	v = json_object_get(root, "simulated");
	if (!json_is_boolean(v))
		return err_set(err, err_len, CVM_E_FORMAT, "simulated: expected a boolean");
	ev->is_simulated = json_is_true(v);
	r = hex_fixed(root, "", "nonce", CVM_EVIDENCE_NONCE_MIN, ev->nonce, sizeof(ev->nonce), &n, err,
	              err_len);
	if (r != CVM_OK)
		return r;
	ev->nonce_len = n;
	r = hex_field(root, "", "quote", 1, CVM_EVIDENCE_QUOTE_MAX, &ev->quote, &ev->quote_len, err, err_len);
	if (r != CVM_OK)
		return r;
	r = parse_events(json_object_get(root, "event_log"), ev, err, err_len);
	if (r != CVM_OK)
		return r;
	v = json_object_get(root, "tpm");
	if (v != NULL && !json_is_null(v)) {
		r = parse_tpm(v, ev, err, err_len);
		if (r != CVM_OK)
			return r;
	}
	v = json_object_get(root, "ima_log");
	if (v != NULL && !json_is_null(v)) {
		ev->has_ima = true;
		r = hex_field(root, "", "ima_log", 0, CVM_EVIDENCE_IMA_MAX, &ev->ima, &ev->ima_len, err,
		              err_len);
	}
	return r;
}

int cvm_evidence_parse(const uint8_t *json, size_t len, struct cvm_evidence **out, char *err, size_t err_len)
{
	struct cvm_evidence *ev = NULL;
	json_error_t jerr;
	json_t *root = NULL;
	int r;

	*out = NULL;
	if (err != NULL && err_len != 0)
		err[0] = '\0';
	if (len > CVM_EVIDENCE_JSON_MAX)
		return err_set(err, err_len, CVM_E_TOO_LARGE, "the bundle is larger than %zu bytes",
		               CVM_EVIDENCE_JSON_MAX);
	root = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return err_set(err, err_len, CVM_E_FORMAT, "not JSON (line %d: %.80s)", jerr.line, jerr.text);
	ev = calloc(1, sizeof(*ev));
	if (ev == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = parse_root(root, ev, err, err_len);
	if (r != CVM_OK)
		goto out;
	*out = ev;
	ev = NULL; /* transferred */
out:
	json_decref(root);
	cvm_evidence_free(ev);
	return r;
}

/* ---- verification ------------------------------------------------------ */

/* tee_step verifies the quote or report and hands back its report_data. */
static int tee_step(const struct cvm_evidence *ev, const struct cvm_evidence_opts *o, struct cvm_report *rep,
                    struct cvm_evidence_result *res, const uint8_t **rd)
{
	int r;

	*rd = NULL;
	if (ev->platform == CVM_EVIDENCE_TDX) {
		if (o->dcap == NULL) {
			cvm_report_add(rep, "evidence.tee", false, "a TDX quote needs DCAP collateral");
			return CVM_E_INVAL;
		}
		r = cvm_verify_quote(ev->quote, ev->quote_len, o->dcap, o->root_der, o->root_der_len, o->at,
		                     o->policy, rep, &res->dcap);
		if (r != CVM_OK)
			return r;
		if (res->dcap.quote.tee != CVM_TEE_TDX) {
			cvm_report_add(rep, "evidence.tee", false,
			               "the bundle says tdx but the quote is an SGX quote");
			return CVM_E_MISMATCH;
		}
		*rd = res->dcap.quote.body.td.report_data;
	} else {
		if (o->amd == NULL) {
			cvm_report_add(rep, "evidence.tee", false, "an SEV-SNP report needs AMD collateral");
			return CVM_E_INVAL;
		}
		r = cvm_verify_snp_report(ev->quote, ev->quote_len, o->amd, o->root_der, o->root_der_len,
		                          o->at, o->policy, rep, &res->amd);
		if (r != CVM_OK)
			return r;
		*rd = res->amd.report.report_data;
	}
	res->tee_verified = true;
	return CVM_OK;
}

/* ak_step reads the AK and computes its Name, which the binding covers. */
static int ak_step(const struct cvm_evidence *ev, struct cvm_report *rep, struct cvm_evidence_result *res,
                   struct cvm_tpm_ak **ak)
{
	const struct cvm_tpm_public *pub;
	char desc[32];
	int r;

	*ak = NULL;
	r = cvm_tpm_ak_parse(ev->ak_public, ev->ak_public_len, ak);
	if (r != CVM_OK) {
		cvm_report_add(rep, "tpm.ak", false, "the AK public area does not parse: %s",
		               cvm_strerror(r));
		return r;
	}
	pub = cvm_tpm_ak_public(*ak);
	if (pub == NULL || pub->name_len == 0) {
		cvm_report_add(rep, "tpm.ak", false,
		               "the AK must be a TPM public area whose Name cvmkit can compute");
		return CVM_E_UNSUPPORTED;
	}
	memcpy(res->ak_name, pub->name, pub->name_len);
	res->ak_name_len = pub->name_len;
	if (ev->ak_name_len != 0 &&
	    (ev->ak_name_len != pub->name_len || memcmp(ev->ak_name, pub->name, pub->name_len) != 0)) {
		cvm_report_add(rep, "tpm.ak", false, "the bundle's ak_name is not the Name of its ak_public");
		return CVM_E_MISMATCH;
	}
	cvm_tpm_ak_describe(*ak, desc, sizeof(desc));
	cvm_report_add(rep, "tpm.ak", true, "attestation key %s, Name computed from its public area", desc);
	return CVM_OK;
}

static int binding_step(const struct cvm_evidence *ev, const struct cvm_evidence_opts *o, const uint8_t *rd,
                        struct cvm_report *rep, struct cvm_evidence_result *res)
{
	uint8_t want[64];
	int r;

	r = cvm_evidence_report_data(o->nonce, o->nonce_len, res->ak_name, ev->has_tpm ? res->ak_name_len : 0,
	                             want);
	if (r != CVM_OK) {
		cvm_report_add(rep, "evidence.binding", false, "cannot compute the expected report_data: %s",
		               cvm_strerror(r));
		return r;
	}
	if (memcmp(want, rd, sizeof(want)) != 0) {
		uint8_t caller[64];

		/* The one forgery worth naming: a local GetQuote caller asked the
		 * agent for exactly this binding and got it in the caller domain. */
		if (cvm_evidence_caller_report_data(want, caller) == CVM_OK &&
		    memcmp(caller, rd, sizeof(caller)) == 0) {
			cvm_report_add(rep, "evidence.binding", false,
			               "report_data is the binding hashed in the agent's caller domain "
			               "(" CVM_EVIDENCE_CALLER_RD_LABEL "): a local GetQuote caller, not the "
			               "agent, asked for this quote; it does not vouch for this TPM key");
			return CVM_E_MISMATCH;
		}
		cvm_report_add(rep, "evidence.binding", false,
		               ev->has_tpm
		                   ? "report_data is not SHA-512 over the nonce and this AK's Name: the "
		                     "TEE quote does not vouch for this TPM key or this nonce"
		                   : "report_data is not the nonce: the quote is not fresh for it");
		return CVM_E_MISMATCH;
	}
	res->bound = true;
	cvm_report_add(rep, "evidence.binding", true,
	               ev->has_tpm
	                   ? "report_data = SHA-512(label, nonce, AK Name): the TEE quote names the AK"
	                   : "report_data holds the nonce");
	return CVM_OK;
}

/* rtmr_step replays the event log into RTMR0..3 and compares with the
 * quote; a dstack runtime event must carry the digest of its own name and
 * payload. */
static int rtmr_step(const struct cvm_evidence *ev, struct cvm_report *rep, struct cvm_evidence_result *res)
{
	uint8_t mr[4][48], buf[96], d1[48], d2[48];
	const struct cvm_tdx_report *td = &res->dcap.quote.body.td;
	int r;

	res->event_count = ev->event_count;
	if (ev->platform != CVM_EVIDENCE_TDX) {
		if (ev->event_count == 0)
			return CVM_OK;
		cvm_report_add(rep, "evidence.event_log", false,
		               "SEV-SNP has no RTMRs: %zu events cannot be verified", ev->event_count);
		return CVM_E_MISMATCH;
	}
	memset(mr, 0, sizeof(mr));
	for (size_t i = 0; i < ev->event_count; i++) {
		const struct ev_event *e = &ev->events[i];

		if (e->type == CVM_EV_DSTACK_RUNTIME) {
			r = cvm_evl_dstack_digest(e->name, e->payload, e->payload_len, 1, d1);
			if (r == CVM_OK)
				r = cvm_evl_dstack_digest(e->name, e->payload, e->payload_len, 2, d2);
			if (r != CVM_OK || e->imr != CVM_EVL_DSTACK_REG ||
			    (memcmp(d1, e->digest, 48) != 0 && memcmp(d2, e->digest, 48) != 0)) {
				cvm_report_add(
				    rep, "evidence.event_log", false,
				    "runtime event %zu: its digest is not that of its name and payload", i);
				return CVM_E_MISMATCH;
			}
		}
		memcpy(buf, mr[e->imr], 48);
		memcpy(buf + 48, e->digest, 48);
		cvm_sha384(buf, sizeof(buf), mr[e->imr]);
	}
	for (unsigned i = 0; i < 4; i++) {
		if (memcmp(mr[i], td->rtmr[i], 48) != 0) {
			cvm_report_add(rep, "evidence.event_log", false,
			               "the %zu events do not replay to the quote's RTMR%u", ev->event_count,
			               i);
			return CVM_E_MISMATCH;
		}
	}
	res->rtmrs_replayed = true;
	cvm_report_add(rep, "evidence.event_log", true, "%zu events replay to the quote's RTMR0..3",
	               ev->event_count);
	return CVM_OK;
}

/* ak_event_step (TDX with a TPM part) checks that the AK is the one the
 * system recorded in RTMR3: exactly one cvmkit.tpm-ak runtime event, before
 * the first event that is not the system's, naming this AK. Only events
 * of the runtime type have digests checked against their names (rtmr_step),
 * so any other event on RTMR3 ends the system's events and never counts as
 * the AK's. */
static int ak_event_step(const struct cvm_evidence *ev, struct cvm_report *rep,
                         struct cvm_evidence_result *res)
{
	char want[2 * CVM_TPM_NAME_MAX + 1], got[2 * CVM_EVIDENCE_PAYLOAD_SHOWN + 1];
	size_t found = SIZE_MAX, boundary = SIZE_MAX, count = 0, second = 0;
	const struct ev_event *ak = NULL;

	for (size_t i = 0; i < ev->event_count; i++) {
		const struct ev_event *e = &ev->events[i];
		const bool runtime = e->type == CVM_EV_DSTACK_RUNTIME;

		if (e->imr != CVM_EVL_DSTACK_REG)
			continue;
		if (boundary == SIZE_MAX &&
		    !(runtime && cvm_evidence_is_system_event(e->name, strlen(e->name))))
			boundary = i;
		if (!runtime || strcmp(e->name, CVM_EVIDENCE_EVENT_TPM_AK) != 0)
			continue;
		if (count++ == 0)
			found = i;
		else if (count == 2)
			second = i;
	}
	if (count == 0) {
		cvm_report_add(
		    rep, "evidence.ak_event", false,
		    "the AK is not the one the system recorded: RTMR3 holds no " CVM_EVIDENCE_EVENT_TPM_AK
		    " event, so nothing ties this TPM key to this VM (cvm-agentd records it at start "
		    "when it serves a TPM)");
		return CVM_E_MISMATCH;
	}
	if (count > 1) {
		cvm_report_add(
		    rep, "evidence.ak_event", false,
		    "the AK is not the one the system recorded: RTMR3 holds %zu " CVM_EVIDENCE_EVENT_TPM_AK
		    " events (events %zu and %zu), the system records exactly one",
		    count, found, second);
		return CVM_E_MISMATCH;
	}
	ak = &ev->events[found];
	if (boundary < found) {
		cvm_report_add(
		    rep, "evidence.ak_event", false,
		    "the AK is not the one the system recorded: the " CVM_EVIDENCE_EVENT_TPM_AK
		    " event (event %zu) comes after event %zu ('%.64s'), which is not the system's; "
		    "only events before the first app event are",
		    found, boundary, ev->events[boundary].name);
		return CVM_E_MISMATCH;
	}
	if (ak->payload_len != res->ak_name_len || memcmp(ak->payload, res->ak_name, res->ak_name_len) != 0) {
		size_t shown = ak->payload_len < CVM_EVIDENCE_PAYLOAD_SHOWN ? ak->payload_len
		                                                            : CVM_EVIDENCE_PAYLOAD_SHOWN;

		cvm_hex_encode(res->ak_name, res->ak_name_len, want);
		cvm_hex_encode(ak->payload, shown, got);
		cvm_report_add(rep, "evidence.ak_event", false,
		               "the AK is not the one the system recorded: RTMR3's " CVM_EVIDENCE_EVENT_TPM_AK
		               " event (event %zu) names AK %s%s, the bundle's AK is %s",
		               found, got, shown < ak->payload_len ? "..." : "", want);
		return CVM_E_MISMATCH;
	}
	res->ak_recorded = true;
	cvm_report_add(rep, "evidence.ak_event", true,
	               "the AK is the one the system recorded in RTMR3 (" CVM_EVIDENCE_EVENT_TPM_AK
	               " event %zu, before any app event)",
	               found);
	return CVM_OK;
}

static int tpm_step(const struct cvm_evidence *ev, const struct cvm_evidence_opts *o,
                    const struct cvm_tpm_ak *ak, struct cvm_report *rep, struct cvm_evidence_result *res)
{
	uint8_t qd[CVM_EVIDENCE_QDATA_LEN];
	int r;

	r = cvm_evidence_tpm_qualifying_data(o->nonce, o->nonce_len, qd);
	if (r != CVM_OK)
		return r;
	if (ev->qdata_len != 0 && (ev->qdata_len != sizeof(qd) || memcmp(ev->qdata, qd, sizeof(qd)) != 0)) {
		cvm_report_add(rep, "tpm.qualifying_data", false,
		               "the bundle's qualifying_data is not the one derived from the nonce");
		return CVM_E_MISMATCH;
	}
	r = cvm_tpm_quote_authenticate(ak, ev->attest, ev->attest_len, ev->sig, ev->sig_len, qd, sizeof(qd),
	                               rep, &res->tpm);
	if (r != CVM_OK)
		return r;
	for (size_t b = 0; b < ev->pcrs.count; b++) {
		const struct cvm_tpm_pcr_bank *bank = &ev->pcrs.banks[b];
		uint32_t extra = bank->valid & ~cvm_tpm_pcr_sel_mask(&res->tpm.attest.pcr_sel, bank->alg);

		if (extra != 0) {
			cvm_report_add(
			    rep, "tpm.pcrs", false,
			    "the bundle holds %s PCR values the quote does not cover (mask 0x%06x)",
			    cvm_digest_name(bank->alg), extra);
			return CVM_E_MISMATCH;
		}
	}
	r = cvm_tpm_quote_check_pcrs(&res->tpm, &ev->pcrs, rep);
	if (r != CVM_OK)
		return r;
	res->tpm_verified = true;
	return CVM_OK;
}

/* ima_step appraises the IMA list against the TPM quote by the library's one
 * rule (cvm_verify_ima_list), over the bundle's PCR values, which the TPM
 * step already matched with the quote. */
static int ima_step(const struct cvm_evidence *ev, struct cvm_report *rep, struct cvm_evidence_result *res)
{
	struct cvm_ima_coverage cov;
	int r;

	r = cvm_verify_ima_list(&res->tpm, &ev->pcrs, ev->ima, ev->ima_len, NULL, rep, NULL, &cov);
	res->ima_bank = cov.bank_count != 0 ? cov.banks[0] : 0;
	res->ima_quoted_entries = cov.quoted_entries;
	res->ima_total_entries = cov.total_entries;
	if (r != CVM_OK)
		return r;
	res->ima_verified = true;
	return CVM_OK;
}

static int finish(int r, struct cvm_report *rep, const char *stage)
{
	if (r > 0)
		r = CVM_E_INTERNAL;
	if (r != CVM_OK && rep != NULL && rep->failed == NULL)
		cvm_report_add(rep, stage, false, "%s", cvm_strerror(r));
	return r;
}

int cvm_evidence_verify(const struct cvm_evidence *ev, const struct cvm_evidence_opts *o,
                        struct cvm_report *rep, struct cvm_evidence_result *res)
{
	struct cvm_tpm_ak *ak = NULL;
	const uint8_t *rd = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	if (ev == NULL || o == NULL || o->policy == NULL || o->nonce == NULL || !nonce_len_ok(o->nonce_len)) {
		cvm_report_add(rep, "evidence", false, "a nonce of %u to %u bytes and a policy are required",
		               CVM_EVIDENCE_NONCE_MIN, CVM_EVIDENCE_NONCE_MAX);
		return CVM_E_INVAL;
	}
	res->platform = ev->platform;
	res->has_tpm = ev->has_tpm;
	res->has_ima = ev->has_ima;
	if (ev->nonce_len != o->nonce_len || memcmp(ev->nonce, o->nonce, o->nonce_len) != 0) {
		cvm_report_add(rep, "evidence.nonce", false, "the bundle answers another nonce");
		r = CVM_E_MISMATCH;
		goto out;
	}
	cvm_report_add(rep, "evidence.nonce", true, "the bundle answers the %zu-byte nonce", o->nonce_len);
	r = tee_step(ev, o, rep, res, &rd);
	if (r != CVM_OK)
		goto out;
	if (ev->has_tpm) {
		r = ak_step(ev, rep, res, &ak);
		if (r != CVM_OK)
			goto out;
	}
	r = binding_step(ev, o, rd, rep, res);
	if (r != CVM_OK)
		goto out;
	r = rtmr_step(ev, rep, res);
	if (r != CVM_OK)
		goto out;
	if (ev->has_tpm && ev->platform == CVM_EVIDENCE_TDX) {
		r = ak_event_step(ev, rep, res);
		if (r != CVM_OK)
			goto out;
	}
	if (ev->has_tpm) {
		r = tpm_step(ev, o, ak, rep, res);
		if (r != CVM_OK)
			goto out;
	} else if (o->require_tpm) {
		cvm_report_add(rep, "tpm", false, "the bundle has no TPM quote and one is required");
		r = CVM_E_POLICY;
		goto out;
	}
	if (ev->has_ima && ev->has_tpm) {
		r = ima_step(ev, rep, res);
		if (r != CVM_OK)
			goto out;
	} else if (ev->has_ima) {
		cvm_report_add(rep, "ima", true, "the IMA list is NOT verified: no TPM quote covers it");
	}
	/* A quote whose PCR 10 is still at zero covers no entry: IMA never
	 * extended that TPM bank, and nothing vouches for the list. */
	if (o->require_ima && (!res->ima_verified || res->ima_quoted_entries == 0)) {
		cvm_report_add(rep, "ima", false,
		               "an IMA list whose entries the TPM quote covers is required");
		r = CVM_E_POLICY;
		goto out;
	}
out:
	cvm_tpm_ak_free(ak);
	return finish(r, rep, "evidence");
}

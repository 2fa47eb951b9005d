/* Reading a certificate's RA-TLS extensions (cvm_ratls_parse), in dstack's
 * profile (dstack.md §6: every value DER OCTET STRING(OCTET STRING(value)))
 * and Cosmian's (cosmian_vm.md §8: the raw quote is the extnValue), and the
 * report_data each profile binds to a key. OpenSSL (lib/crypto) finds the
 * extension; its contents go through the bounded reader only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/snp.h>

#include "core/core_lib.h"
#include "crypto/crypto_lib.h"
#include "ratls_int.h"

#include <cvmkit/secret.h>

/* struct info_own is a parsed certificate with the copies it owns. */
struct info_own {
	struct cvm_ratls_info info; /* first: cvm_ratls_info_free casts */
	uint8_t *quote;
	uint8_t *event_log_json;
	uint8_t *app_info;
};

const char *cvm_ratls_profile_name(enum cvm_ratls_profile p)
{
	switch (p) {
	case CVM_RATLS_PROFILE_DSTACK:
		return "dstack";
	case CVM_RATLS_PROFILE_COSMIAN:
		return "cosmian";
	default:
		return "none";
	}
}

const char *cvm_ratls_tee_name(enum cvm_ratls_tee t)
{
	switch (t) {
	case CVM_RATLS_TEE_TDX:
		return "tdx";
	case CVM_RATLS_TEE_SGX:
		return "sgx";
	case CVM_RATLS_TEE_SNP:
		return "snp";
	default:
		return "none";
	}
}

void cvm_ratls_info_free(struct cvm_ratls_info *info)
{
	struct info_own *o = (struct info_own *)info;

	if (o == NULL)
		return;
	cvm_va_free(o->info.attestation);
	cosmian_certs_cleanup(&o->info.snp_certs);
	free(o->quote);
	free(o->event_log_json);
	free(o->app_info);
	free(o);
}

bool va_quote_report_data(enum cvm_ratls_tee tee, const uint8_t *quote, size_t len, uint8_t out[64])
{
	struct cvm_quote q;
	struct cvm_snp_report rep;

	memset(out, 0, 64);
	switch (tee) {
	case CVM_RATLS_TEE_TDX:
	case CVM_RATLS_TEE_SGX:
		if (cvm_quote_parse(quote, len, &q) != CVM_OK)
			return false;
		if ((tee == CVM_RATLS_TEE_TDX) != (q.tee == CVM_TEE_TDX))
			return false;
		memcpy(out, q.tee == CVM_TEE_TDX ? q.body.td.report_data : q.body.sgx.report_data, 64);
		return true;
	case CVM_RATLS_TEE_SNP:
		if (cvm_snp_report_parse(quote, len, &rep) != CVM_OK)
			return false;
		memcpy(out, rep.report_data, 64);
		return true;
	default:
		return false;
	}
}

/* dup_bytes copies `n` bytes (at least one allocated byte). */
static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);

	if (d != NULL && n != 0)
		memcpy(d, p, n);
	return d;
}

/* dstack_value unwraps the extnValue contents OCTET STRING(value). */
static int dstack_value(const struct cvm_cert *c, const char *oid, const char *name, struct cvm_rd *val,
                        char *err, size_t err_len)
{
	struct cvm_rd ext;
	int rc = cvm_cert_ext(c, oid, &ext);

	if (rc != CVM_OK)
		return RATLS_ERR(err, err_len, CVM_E_FORMAT, "extension %s (%s) cannot be read", oid, name);
	if (!cvm_rd_asn1(&ext, val, CVM_ASN1_OCTET_STRING) || !cvm_rd_empty(&ext))
		return RATLS_ERR(err, err_len, CVM_E_FORMAT,
		                 "extension %s (%s) is not one DER OCTET STRING holding the value", oid,
		                 name);
	return CVM_OK;
}

/* check_event_log_json runs the dstack JSON event-log parser over the whole
 * 1.2 value: structure only (the verifier replays it). */
static int check_event_log_json(const uint8_t *p, size_t n, char *err, size_t err_len)
{
	struct cvm_evl_parser *ps = NULL;
	struct cvm_evl_event ev;
	bool has_event = true;
	int rc;

	if (n == 0 || n > CVM_RATLS_CERT_MAX)
		return RATLS_ERR(err, err_len, CVM_E_FORMAT,
		                 "extension 1.2 (event log) is empty or too long");
	rc = cvm_evl_parser_new_mem(p, n, CVM_EVL_DSTACK_JSON, &ps);
	if (rc != CVM_OK)
		return rc;
	while (has_event) {
		rc = cvm_evl_parser_next(ps, &ev, &has_event);
		if (rc != CVM_OK)
			break;
	}
	if (rc != CVM_OK)
		rc = RATLS_ERR(err, err_len, rc, "extension 1.2 (event log): %s", cvm_evl_parser_err(ps));
	cvm_evl_parser_free(ps);
	return rc;
}

static int parse_dstack(const struct cvm_cert *c, struct info_own *o, char *err, size_t err_len)
{
	struct cvm_ratls_info *info = &o->info;
	struct cvm_rd v;
	bool has_va = cvm_cert_ext_count(c, RATLS_OID_DSTACK_ATTESTATION) != 0;
	bool has_quote = cvm_cert_ext_count(c, RATLS_OID_DSTACK_QUOTE) != 0;
	bool has_log = cvm_cert_ext_count(c, RATLS_OID_DSTACK_EVENT_LOG) != 0;
	int rc;

	info->profile = CVM_RATLS_PROFILE_DSTACK;
	if (has_va) {
		char why[200];

		rc = dstack_value(c, RATLS_OID_DSTACK_ATTESTATION, "attestation", &v, err, err_len);
		if (rc != CVM_OK)
			return rc;
		rc = cvm_va_decode(v.p, v.len, &info->attestation, why, sizeof(why));
		if (rc != CVM_OK)
			return RATLS_ERR(err, err_len, rc, "extension 1.8 (attestation): %s", why);
		info->tee = info->attestation->tee;
		info->quote = info->attestation->quote;
		info->quote_len = info->attestation->quote_len;
	}
	if (has_quote) {
		rc = dstack_value(c, RATLS_OID_DSTACK_QUOTE, "TDX quote", &v, err, err_len);
		if (rc != CVM_OK)
			return rc;
		if (v.len == 0 || v.len > CVM_QUOTE_MAX)
			return RATLS_ERR(err, err_len, CVM_E_FORMAT,
			                 "extension 1.1 (TDX quote) has %zu bytes", v.len);
		if (has_va && (info->quote_len != v.len || memcmp(info->quote, v.p, v.len) != 0))
			return RATLS_ERR(err, err_len, CVM_E_FORMAT,
			                 "extensions 1.1 and 1.8 carry different quotes");
		if (!has_va) {
			o->quote = dup_bytes(v.p, v.len);
			if (o->quote == NULL)
				return CVM_E_NOMEM;
			info->tee = CVM_RATLS_TEE_TDX;
			info->quote = o->quote;
			info->quote_len = v.len;
		}
	}
	if (has_log) {
		rc = dstack_value(c, RATLS_OID_DSTACK_EVENT_LOG, "event log", &v, err, err_len);
		if (rc == CVM_OK)
			rc = check_event_log_json(v.p, v.len, err, err_len);
		if (rc != CVM_OK)
			return rc;
		o->event_log_json = dup_bytes(v.p, v.len);
		if (o->event_log_json == NULL)
			return CVM_E_NOMEM;
		info->event_log_json = o->event_log_json;
		info->event_log_json_len = v.len;
	}
	if (has_quote && !has_log && !has_va)
		return RATLS_ERR(
		    err, err_len, CVM_E_FORMAT,
		    "extension 1.1 (TDX quote) comes without 1.2 (event log), which dstack requires");
	if (has_log && !has_quote && !has_va)
		return RATLS_ERR(err, err_len, CVM_E_FORMAT,
		                 "extension 1.2 (event log) comes without a quote");
	if (cvm_cert_ext_count(c, RATLS_OID_DSTACK_APP_ID) != 0) {
		rc = dstack_value(c, RATLS_OID_DSTACK_APP_ID, "app id", &v, err, err_len);
		if (rc != CVM_OK)
			return rc;
		if (v.len != sizeof(info->app_id))
			return RATLS_ERR(err, err_len, CVM_E_FORMAT,
			                 "extension 1.3 (app id) has %zu bytes, not 20", v.len);
		memcpy(info->app_id, v.p, v.len);
		info->has_app_id = true;
	}
	if (cvm_cert_ext_count(c, RATLS_OID_DSTACK_USAGE) != 0) {
		rc = dstack_value(c, RATLS_OID_DSTACK_USAGE, "usage", &v, err, err_len);
		if (rc != CVM_OK)
			return rc;
		if (v.len >= sizeof(info->usage) || cvm_rd_has_nul(&v))
			return RATLS_ERR(err, err_len, CVM_E_FORMAT,
			                 "extension 1.4 (usage) is longer than %zu bytes or holds a NUL",
			                 sizeof(info->usage) - 1);
		for (size_t i = 0; i < v.len; i++)
			if (v.p[i] < 0x20 || v.p[i] > 0x7e)
				return RATLS_ERR(err, err_len, CVM_E_FORMAT,
				                 "extension 1.4 (usage) is not printable ASCII");
		memcpy(info->usage, v.p, v.len);
		info->usage[v.len] = 0;
	}
	if (cvm_cert_ext_count(c, RATLS_OID_DSTACK_APP_INFO) != 0) {
		rc = dstack_value(c, RATLS_OID_DSTACK_APP_INFO, "app info", &v, err, err_len);
		if (rc != CVM_OK)
			return rc;
		rc = ratls_app_info_check(v.p, v.len, err, err_len);
		if (rc != CVM_OK)
			return rc;
		o->app_info = dup_bytes(v.p, v.len);
		if (o->app_info == NULL)
			return CVM_E_NOMEM;
		info->app_info = o->app_info;
		info->app_info_len = v.len;
	}
	return CVM_OK;
}

static int parse_cosmian(const struct cvm_cert *c, struct info_own *o, const char *oid, char *err,
                         size_t err_len)
{
	struct cvm_ratls_info *info = &o->info;
	struct cvm_rd v;
	struct cvm_quote q;
	const uint8_t *report;
	int rc = cvm_cert_ext(c, oid, &v);

	info->profile = CVM_RATLS_PROFILE_COSMIAN;
	if (rc != CVM_OK)
		return RATLS_ERR(err, err_len, CVM_E_FORMAT, "extension %s cannot be read", oid);
	if (strcmp(oid, RATLS_OID_COSMIAN_SEV) == 0) {
		char why[200];

		info->tee = CVM_RATLS_TEE_SNP;
		rc = cosmian_sev_parse(v.p, v.len, &report, &info->snp_certs, &info->cosmian_sev_format, why,
		                       sizeof(why));
		if (rc != CVM_OK)
			return RATLS_ERR(err, err_len, rc, "extension %s (Cosmian SEV): %s", oid, why);
		o->quote = dup_bytes(report, RATLS_SNP_REPORT_LEN);
		info->quote_len = RATLS_SNP_REPORT_LEN;
	} else {
		bool tdx = strcmp(oid, RATLS_OID_COSMIAN_TDX) == 0;

		info->tee = tdx ? CVM_RATLS_TEE_TDX : CVM_RATLS_TEE_SGX;
		/* TDX: an 8192-byte buffer, the quote then zeros; the quote's
		 * structure gives its length. */
		if (v.len > (tdx ? (size_t)RATLS_COSMIAN_TDX_BUF : CVM_QUOTE_MAX))
			return RATLS_ERR(err, err_len, CVM_E_TOO_LARGE, "extension %s holds %zu bytes", oid,
			                 v.len);
		rc = cvm_quote_parse(v.p, v.len, &q);
		if (rc != CVM_OK)
			return RATLS_ERR(err, err_len, rc,
			                 "extension %s (Cosmian %s): the quote does not parse (%s)", oid,
			                 tdx ? "TDX" : "SGX", cvm_strerror(rc));
		if ((q.tee == CVM_TEE_TDX) != tdx)
			return RATLS_ERR(err, err_len, CVM_E_FORMAT, "extension %s holds a %s quote", oid,
			                 q.tee == CVM_TEE_TDX ? "TDX" : "SGX");
		if (!tdx && q.padding_len != 0)
			return RATLS_ERR(err, err_len, CVM_E_FORMAT,
			                 "extension %s: %zu bytes follow the SGX quote", oid, q.padding_len);
		o->quote = dup_bytes(v.p, q.quote_len);
		info->quote_len = q.quote_len;
	}
	if (o->quote == NULL)
		return CVM_E_NOMEM;
	info->quote = o->quote;
	return CVM_OK;
}

/* The profile's binding of the certificate's key (§6.2; Cosmian §7.2). */
static int binding(const struct cvm_cert *c, struct cvm_ratls_info *info)
{
	uint8_t *spki = NULL, pt[65];
	size_t spki_len;
	int rc;

	memset(info->expected_report_data, 0, sizeof(info->expected_report_data));
	info->binding = false;
	if (info->profile == CVM_RATLS_PROFILE_DSTACK) {
		rc = cvm_cert_spki(c, &spki, &spki_len);
		if (rc != CVM_OK)
			return rc;
		rc = cvm_sha512_tagged(RATLS_TAG_CERT, spki, spki_len, info->expected_report_data);
		free(spki);
		if (rc != CVM_OK)
			return rc;
		info->binding = info->tee != CVM_RATLS_TEE_NONE &&
		                cvm_ct_equal(info->expected_report_data, info->report_data, 64);
		return CVM_OK;
	}
	memcpy(info->cosmian_extra, info->report_data + 32, 32);
	pt[0] = 0x04;
	if (!cvm_cert_p256_public(c, pt + 1))
		return CVM_OK; /* not a P-256 key: no binding */
	cvm_sha256(pt, sizeof(pt), info->expected_report_data);
	memcpy(info->expected_report_data + 32, info->cosmian_extra, 32);
	info->binding = cvm_ct_equal(info->expected_report_data, info->report_data, 32);
	return CVM_OK;
}

int ratls_parse_cert(const struct cvm_cert *c, struct cvm_ratls_info **out, char *err, size_t err_len)
{
	static const char *const dstack_oids[] = {RATLS_OID_DSTACK_QUOTE,       RATLS_OID_DSTACK_EVENT_LOG,
	                                          RATLS_OID_DSTACK_APP_ID,      RATLS_OID_DSTACK_USAGE,
	                                          RATLS_OID_DSTACK_ATTESTATION, RATLS_OID_DSTACK_APP_INFO};
	static const char *const cosmian_oids[] = {RATLS_OID_COSMIAN_SGX, RATLS_OID_COSMIAN_SEV,
	                                           RATLS_OID_COSMIAN_TDX};
	struct info_own *o = NULL;
	const char *cosmian = NULL;
	size_t n_dstack = 0, n_cosmian = 0;
	int rc = CVM_OK;

	*out = NULL;
	if (err != NULL && err_len != 0)
		err[0] = 0;
	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		rc = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < sizeof(dstack_oids) / sizeof(dstack_oids[0]); i++) {
		size_t k = cvm_cert_ext_count(c, dstack_oids[i]);

		if (k > 1) {
			rc = RATLS_ERR(err, err_len, CVM_E_FORMAT, "extension %s appears %zu times",
			               dstack_oids[i], k);
			goto out;
		}
		n_dstack += k;
	}
	for (size_t i = 0; i < sizeof(cosmian_oids) / sizeof(cosmian_oids[0]); i++) {
		size_t k = cvm_cert_ext_count(c, cosmian_oids[i]);

		if (k != 0)
			cosmian = cosmian_oids[i];
		n_cosmian += k;
	}
	if (n_dstack != 0 && n_cosmian != 0) {
		rc = RATLS_ERR(err, err_len, CVM_E_FORMAT,
		               "the certificate carries both dstack and Cosmian evidence");
		goto out;
	}
	if (n_cosmian > 1) {
		rc = RATLS_ERR(err, err_len, CVM_E_FORMAT,
		               "the certificate carries %zu Cosmian quotes (one is allowed)", n_cosmian);
		goto out;
	}
	if (n_dstack != 0)
		rc = parse_dstack(c, o, err, err_len);
	else if (cosmian != NULL)
		rc = parse_cosmian(c, o, cosmian, err, err_len);
	if (rc != CVM_OK)
		goto out;
	if (o->info.quote != NULL && o->info.tee != CVM_RATLS_TEE_NONE) {
		if (!va_quote_report_data(o->info.tee, o->info.quote, o->info.quote_len,
		                          o->info.report_data)) {
			rc = RATLS_ERR(err, err_len, CVM_E_FORMAT,
			               "the %s %s in the certificate does not parse",
			               cvm_ratls_tee_name(o->info.tee),
			               o->info.tee == CVM_RATLS_TEE_SNP ? "report" : "quote");
			goto out;
		}
	} else if (o->info.attestation != NULL) {
		memcpy(o->info.report_data, o->info.attestation->report_data, 64);
	}
	if (o->info.profile != CVM_RATLS_PROFILE_NONE) {
		rc = binding(c, &o->info);
		if (rc != CVM_OK)
			goto out;
	}
	*out = &o->info;
	o = NULL; /* transferred */
out:
	if (rc != CVM_OK && err != NULL && err_len != 0 && err[0] == 0)
		(void)RATLS_ERR(err, err_len, rc, "the certificate cannot be read: %s", cvm_strerror(rc));
	cvm_ratls_info_free(o != NULL ? &o->info : NULL);
	return rc;
}

int cvm_ratls_parse(const uint8_t *der, size_t len, struct cvm_ratls_info **out, char *err, size_t err_len)
{
	struct cvm_cert *c = NULL;
	int rc;

	*out = NULL;
	if (err != NULL && err_len != 0)
		err[0] = 0;
	if (der == NULL)
		return RATLS_ERR(err, err_len, CVM_E_INVAL, "no certificate given");
	if (len > CVM_RATLS_CERT_MAX)
		return RATLS_ERR(err, err_len, CVM_E_TOO_LARGE, "the certificate has %zu bytes (at most %zu)",
		                 len, CVM_RATLS_CERT_MAX);
	rc = cvm_cert_parse(der, len, &c);
	if (rc != CVM_OK)
		return RATLS_ERR(err, err_len, rc, "the certificate does not parse as X.509 (%s)",
		                 cvm_strerror(rc));
	rc = ratls_parse_cert(c, out, err, err_len);
	cvm_cert_free(c);
	return rc;
}

int cvm_ratls_report_data(enum cvm_ratls_profile profile, const struct cvm_p256_keypair *key,
                          const uint8_t extra[32], uint8_t out[64])
{
	uint8_t *spki = NULL, pt[65];
	size_t spki_len;
	int rc;

	memset(out, 0, 64);
	if (key == NULL)
		return CVM_E_INVAL;
	switch (profile) {
	case CVM_RATLS_PROFILE_DSTACK:
		rc = cvm_p256_keypair_spki(key, &spki, &spki_len);
		if (rc != CVM_OK)
			return rc;
		rc = cvm_sha512_tagged(RATLS_TAG_CERT, spki, spki_len, out);
		free(spki);
		return rc;
	case CVM_RATLS_PROFILE_COSMIAN:
		pt[0] = 0x04;
		cvm_p256_keypair_public(key, pt + 1);
		cvm_sha256(pt, sizeof(pt), out);
		if (extra != NULL)
			memcpy(out + 32, extra, 32);
		return CVM_OK;
	default:
		return CVM_E_INVAL;
	}
}

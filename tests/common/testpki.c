/* Test-only helpers around the simulator's mock Intel PKI: collateral in
 * memory and in a folder, injected faults, forged certificates and
 * collateral. See testpki.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cvmkit/bytes.h>
#include <cvmkit/file.h>
#include <cvmkit/quote.h>

#include "testpki.h"

static const char quote_file_name[] = "quote.bin";

#define DAY ((int64_t)24 * 3600)
#define YEAR (365 * DAY)

/* dup_nul copies a file's bytes with a NUL after them, as cvm_file_read. */
static int dup_nul(const uint8_t *p, size_t n, uint8_t **out, size_t *out_len)
{
	*out = malloc(n + 1);
	if (*out == NULL)
		return CVM_E_NOMEM;
	if (n != 0)
		memcpy(*out, p, n);
	(*out)[n] = 0;
	*out_len = n;
	return CVM_OK;
}

/* replace frees `*buf` and takes `p` (n bytes, NUL after them) instead. */
static void replace(uint8_t **buf, size_t *len, uint8_t *p, size_t n)
{
	free(*buf);
	*buf = p;
	*len = n;
}

int cvm_testpki_collateral(const struct cvm_mockpki *pki, struct cvm_dcap_collateral **out)
{
	struct cvm_dcap_collateral *c = NULL;
	struct {
		enum cvm_mockpki_file f;
		uint8_t **buf;
		size_t *len;
	} map[CVM_MOCKPKI_F_COUNT];
	size_t n = 0;
	int r = CVM_OK;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
#define MAP(F, FIELD)                 \
	map[n].f = (F);               \
	map[n].buf = &c->FIELD;       \
	map[n].len = &c->FIELD##_len; \
	n++
	MAP(CVM_MOCKPKI_F_TCB_INFO, tcb_info);
	MAP(CVM_MOCKPKI_F_QE_IDENTITY, qe_identity);
	MAP(CVM_MOCKPKI_F_TCB_INFO_CHAIN, tcb_info_issuer_chain);
	MAP(CVM_MOCKPKI_F_QE_IDENTITY_CHAIN, qe_identity_issuer_chain);
	MAP(CVM_MOCKPKI_F_PCK_CRL_CHAIN, pck_crl_issuer_chain);
	MAP(CVM_MOCKPKI_F_PCK_CRL, pck_crl);
	MAP(CVM_MOCKPKI_F_ROOT_CRL, root_ca_crl);
	MAP(CVM_MOCKPKI_F_ROOT_DER, root_ca);
#undef MAP
	for (size_t i = 0; i < n && r == CVM_OK; i++) {
		const uint8_t *p;
		size_t len;

		cvm_mockpki_file(pki, map[i].f, &p, &len);
		r = dup_nul(p, len, map[i].buf, map[i].len);
	}
	if (r != CVM_OK) {
		cvm_dcap_collateral_free(c);
		return r;
	}
	*out = c;
	return CVM_OK;
}

/* ---- faults ----------------------------------------------------------- */

/* crl_resign re-signs the DER CRL in `*buf` with a fresh, unrelated key. */
static int crl_resign(uint8_t **buf, size_t *len)
{
	struct cvm_privkey *other = NULL;
	uint8_t *der = NULL;
	size_t der_len = 0;
	int r;

	r = cvm_privkey_generate(CVM_PRIVKEY_P256, 0, &other);
	if (r == CVM_OK)
		r = cvm_issue_crl_resign(*buf, *len, other, CVM_SIG_ECDSA_SHA256, &der, &der_len);
	if (r == CVM_OK)
		replace(buf, len, der, der_len); /* NUL after it, as cvm_file_read */
	cvm_privkey_free(other);
	return r;
}

/* tamper changes one digit of the first "tcbDate" year of a signed body,
 * which keeps the document well-formed and plausible but breaks its
 * signature. */
static void tamper(uint8_t *text, size_t len)
{
	static const char key[] = "\"tcbDate\":\"";
	size_t klen = sizeof(key) - 1;

	for (size_t i = 0; i + klen + 4 <= len; i++) {
		if (memcmp(text + i, key, klen) == 0) {
			uint8_t *d = &text[i + klen + 3];

			*d = (uint8_t)('0' + (*d - '0' + 1) % 10);
			return;
		}
	}
}

/* quote_faults breaks the quote in place: its signature, its QE report's
 * signature, or the QE report's binding of the attestation key (re-signed
 * by the PCK key, so that only the binding is wrong). */
static int quote_faults(const struct cvm_mockpki *pki, unsigned faults, uint8_t *quote, size_t len)
{
	struct cvm_quote q;
	size_t qe_off, sig_off;

	if (cvm_quote_parse(quote, len, &q) != CVM_OK)
		return CVM_E_FORMAT;
	sig_off = q.signed_data.len + 4; /* after the signature data length */
	qe_off = (size_t)(q.qe_report_raw.p - quote);
	if (faults & CVM_TESTPKI_FAULT_QUOTE_SIG)
		quote[sig_off + 5] ^= 0x80;
	if (faults & CVM_TESTPKI_FAULT_QE_BINDING) {
		uint8_t sig[64];
		int r;

		quote[qe_off + CVM_SGX_REPORT_LEN - 64] ^= 1; /* report_data[0] */
		r = cvm_mock_sign_p256(cvm_mockpki_key(pki, CVM_MOCKPKI_PCK_LEAF), quote + qe_off,
		                       CVM_SGX_REPORT_LEN, sig);
		if (r != CVM_OK)
			return r;
		memcpy(quote + qe_off + CVM_SGX_REPORT_LEN, sig, sizeof(sig));
	}
	if (faults & CVM_TESTPKI_FAULT_QE_REPORT_SIG)
		quote[qe_off + CVM_SGX_REPORT_LEN + 40] ^= 0x01;
	return CVM_OK;
}

int cvm_testpki_faults_apply(const struct cvm_mockpki *pki, unsigned faults, struct cvm_dcap_collateral *c,
                             uint8_t *quote, size_t len)
{
	int r = CVM_OK;

	if (c != NULL && (faults & CVM_TESTPKI_FAULT_PCK_CRL_WRONG_KEY))
		r = crl_resign(&c->pck_crl, &c->pck_crl_len);
	if (r == CVM_OK && c != NULL && (faults & CVM_TESTPKI_FAULT_ROOT_CRL_WRONG_KEY))
		r = crl_resign(&c->root_ca_crl, &c->root_ca_crl_len);
	if (r != CVM_OK)
		return r;
	if (c != NULL && (faults & CVM_TESTPKI_FAULT_TCB_INFO_TAMPER))
		tamper(c->tcb_info, c->tcb_info_len);
	if (c != NULL && (faults & CVM_TESTPKI_FAULT_QE_IDENTITY_TAMPER))
		tamper(c->qe_identity, c->qe_identity_len);
	if (quote != NULL)
		r = quote_faults(pki, faults, quote, len);
	return r;
}

/* ---- a folder ------------------------------------------------------------ */

static int path_join(char *buf, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? CVM_E_INVAL : CVM_OK;
}

/* collateral_write writes every file of `c` into `dir` under the names a
 * collateral folder uses. */
static int collateral_write(const struct cvm_dcap_collateral *c, const char *dir)
{
	const struct {
		enum cvm_mockpki_file f;
		const uint8_t *p;
		size_t len;
	} files[] = {
	    {CVM_MOCKPKI_F_TCB_INFO, c->tcb_info, c->tcb_info_len},
	    {CVM_MOCKPKI_F_QE_IDENTITY, c->qe_identity, c->qe_identity_len},
	    {CVM_MOCKPKI_F_TCB_INFO_CHAIN, c->tcb_info_issuer_chain, c->tcb_info_issuer_chain_len},
	    {CVM_MOCKPKI_F_QE_IDENTITY_CHAIN, c->qe_identity_issuer_chain, c->qe_identity_issuer_chain_len},
	    {CVM_MOCKPKI_F_PCK_CRL_CHAIN, c->pck_crl_issuer_chain, c->pck_crl_issuer_chain_len},
	    {CVM_MOCKPKI_F_PCK_CRL, c->pck_crl, c->pck_crl_len},
	    {CVM_MOCKPKI_F_ROOT_CRL, c->root_ca_crl, c->root_ca_crl_len},
	    {CVM_MOCKPKI_F_ROOT_DER, c->root_ca, c->root_ca_len},
	};
	char path[4096];
	int r;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		r = path_join(path, sizeof(path), dir, cvm_mockpki_file_name(files[i].f));
		if (r != CVM_OK)
			return r;
		r = cvm_file_write(path, files[i].p, files[i].len, 0644);
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

int cvm_testpki_write(const struct cvm_mockpki_opts *o, unsigned faults, const char *dir)
{
	struct cvm_mockpki *pki = NULL;
	struct cvm_dcap_collateral *c = NULL;
	uint8_t *quote = NULL;
	size_t quote_len = 0;
	char path[4096];
	int r;

	r = cvm_mockpki_new(o, &pki);
	if (r == CVM_OK)
		r = cvm_testpki_collateral(pki, &c);
	if (r == CVM_OK)
		r = cvm_mockpki_quote(pki, NULL, &quote, &quote_len);
	if (r == CVM_OK)
		r = cvm_testpki_faults_apply(pki, faults, c, quote, quote_len);
	if (r == CVM_OK)
		r = collateral_write(c, dir);
	if (r == CVM_OK)
		r = path_join(path, sizeof(path), dir, quote_file_name);
	if (r == CVM_OK)
		r = cvm_file_write(path, quote, quote_len, 0644);
	free(quote);
	cvm_dcap_collateral_free(c);
	cvm_mockpki_free(pki);
	return r;
}

int cvm_testpki_dir_remove(const char *dir)
{
	char path[4096];
	int r;

	for (size_t i = 0; i <= CVM_MOCKPKI_F_COUNT; i++) {
		const char *name = i < CVM_MOCKPKI_F_COUNT ? cvm_mockpki_file_name((enum cvm_mockpki_file)i)
		                                           : quote_file_name;

		r = path_join(path, sizeof(path), dir, name);
		if (r != CVM_OK)
			return r;
		if (unlink(path) != 0 && errno != ENOENT)
			return CVM_E_SYSTEM;
	}
	return rmdir(dir) == 0 ? CVM_OK : CVM_E_SYSTEM;
}

/* ---- forgeries ------------------------------------------------------------ */

int cvm_testpki_issue(const struct cvm_mockpki *pki, const struct cvm_cert *issuer,
                      const struct cvm_privkey *issuer_key, const char *cn, uint64_t serial,
                      const char *basic_constraints, const char *key_usage, bool sgx_ext,
                      struct cvm_testpki_issued *out)
{
	int64_t now = cvm_mockpki_opts_of(pki)->now;
	struct cvm_name_attr name[CVM_MOCK_NAME_MAX];
	/* the SGX extension of the PKI's PCK leaf, copied */
	struct cvm_issue_ext sgx = {.oid = "1.2.840.113741.1.13.1"};
	struct cvm_mock_cert spec = {
	    .name = name,
	    .name_count = cvm_mock_intel_name(cn, name),
	    .serial = serial,
	    .not_before = now - YEAR,
	    .not_after = now + 5 * YEAR,
	    .basic_constraints = basic_constraints,
	    .key_usage = key_usage,
	    .key_ids = true,
	};
	int r = CVM_OK;

	memset(out, 0, sizeof(*out));
	if (sgx_ext) {
		struct cvm_rd value;

		r = cvm_cert_ext(cvm_mockpki_x509(pki, CVM_MOCKPKI_PCK_LEAF), sgx.oid, &value);
		sgx.der = value.p;
		sgx.der_len = value.len;
		spec.exts = &sgx;
		spec.ext_count = 1;
	}
	if (r == CVM_OK)
		r = cvm_privkey_generate(CVM_PRIVKEY_P256, 0, &out->key);
	if (r == CVM_OK)
		r = cvm_mock_cert_issue(&spec, out->key, issuer, issuer_key, &out->cert);
	if (r != CVM_OK)
		cvm_testpki_issued_cleanup(out);
	return r;
}

void cvm_testpki_issued_cleanup(struct cvm_testpki_issued *c)
{
	cvm_privkey_free(c->key);
	cvm_cert_free(c->cert);
	c->key = NULL;
	c->cert = NULL;
}

int cvm_testpki_chain(struct cvm_cert *const *certs, size_t n, uint8_t **pem, size_t *pem_len)
{
	uint8_t *p = NULL;
	size_t len = 0;
	int r;

	r = cvm_mock_pem_chain(certs, n, false, &p, &len);
	if (r == CVM_OK)
		replace(pem, pem_len, p, len);
	return r;
}

int cvm_testpki_sign_json(const struct cvm_mockpki_opts *o, enum cvm_mockpki_file f,
                          const struct cvm_privkey *key, uint8_t **body, size_t *body_len)
{
	uint8_t *text = NULL, *signed_body = NULL, *copy = NULL;
	size_t text_len = 0, signed_len = 0, copy_len = 0;
	int r;

	r = cvm_mockpki_json_text(o, f, &text, &text_len);
	if (r == CVM_OK)
		r = cvm_mockpki_signed_body(key, f == CVM_MOCKPKI_F_TCB_INFO ? "tcbInfo" : "enclaveIdentity",
		                            text, text_len, &signed_body, &signed_len);
	if (r == CVM_OK)
		r = dup_nul(signed_body, signed_len, &copy, &copy_len);
	if (r == CVM_OK)
		replace(body, body_len, copy, copy_len);
	free(text);
	free(signed_body);
	return r;
}

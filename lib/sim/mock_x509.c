/* The building blocks of the mock vendor PKIs (mockpki.c for Intel,
 * mockamd.c for AMD, and the tests' broken variants): names, certificates
 * in a vendor's profile, the simulated marker, DER for vendor extensions,
 * raw signatures, and keys and certificates kept in a folder, all over
 * lib/crypto's issuing interface. Simulator and test material only: nothing
 * here verifies anything. See mock_int.h. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cvmkit/err.h>
#include <cvmkit/file.h>

#include "sim/mock_int.h"

#define CERT_FILE_MAX ((size_t)16 * 1024)

void cvm_mock_fill_pattern(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + 7u * i);
}

int cvm_mock_copy_out(const void *p, size_t n, uint8_t **out, size_t *out_len)
{
	/* one NUL more than counted, so that PEM text may be read as a string */
	*out = malloc(n + 1);
	if (*out == NULL)
		return CVM_E_NOMEM;
	memcpy(*out, p, n);
	(*out)[n] = 0;
	*out_len = n;
	return CVM_OK;
}

/* ---- DER ------------------------------------------------------------------ */

void cvm_mock_der_tlv(struct cvm_wr *w, uint8_t tag, const uint8_t *p, size_t n)
{
	cvm_wr_u8(w, tag);
	if (n < 0x80) {
		cvm_wr_u8(w, (uint8_t)n);
	} else if (n < 0x100) {
		cvm_wr_u8(w, 0x81);
		cvm_wr_u8(w, (uint8_t)n);
	} else if (n < 0x10000) {
		cvm_wr_u8(w, 0x82);
		cvm_wr_u16be(w, (uint16_t)n);
	} else {
		w->err = true;
		return;
	}
	cvm_wr_bytes(w, p, n);
}

void cvm_mock_der_uint(struct cvm_wr *w, uint8_t tag, uint64_t v)
{
	uint8_t b[9];
	size_t n = 0;

	do {
		b[8 - n] = (uint8_t)v;
		v >>= 8;
		n++;
	} while (v != 0);
	if (b[9 - n] & 0x80) {
		b[8 - n] = 0;
		n++;
	}
	cvm_mock_der_tlv(w, tag, b + 9 - n, n);
}

/* ---- names and certificates ----------------------------------------------- */

size_t cvm_mock_intel_name(const char *cn, struct cvm_name_attr out[CVM_MOCK_NAME_MAX])
{
	out[0] = (struct cvm_name_attr){"CN", cn};
	out[1] = (struct cvm_name_attr){"O", "Intel Corporation"};
	out[2] = (struct cvm_name_attr){"L", "Santa Clara"};
	out[3] = (struct cvm_name_attr){"ST", "CA"};
	out[4] = (struct cvm_name_attr){"C", "US"};
	return 5;
}

size_t cvm_mock_amd_name(const char *cn, struct cvm_name_attr out[CVM_MOCK_NAME_MAX])
{
	out[0] = (struct cvm_name_attr){"OU", "Engineering"};
	out[1] = (struct cvm_name_attr){"C", "US"};
	out[2] = (struct cvm_name_attr){"L", "Santa Clara"};
	out[3] = (struct cvm_name_attr){"ST", "CA"};
	out[4] = (struct cvm_name_attr){"O", "Advanced Micro Devices"};
	out[5] = (struct cvm_name_attr){"CN", cn};
	return 6;
}

enum cvm_sig_alg cvm_mock_sig_alg(const struct cvm_privkey *key)
{
	return cvm_privkey_type(key) == CVM_PRIVKEY_RSA ? CVM_SIG_RSA_PSS_SHA384 : CVM_SIG_ECDSA_SHA256;
}

/* The simulated marker's value: a UTF8String saying what the certificate
 * is (its DER is 2 bytes of tag and length, then the text). */
static const char marker_text[] = "cvmkit simulated TEE: not hardware, never a production trust anchor";
_Static_assert(sizeof(marker_text) - 1 < 0x80, "the marker's length fits DER's short form");

int cvm_mock_cert_issue(const struct cvm_mock_cert *spec, const struct cvm_privkey *key,
                        const struct cvm_cert *issuer, const struct cvm_privkey *issuer_key,
                        struct cvm_cert **out)
{
	struct cvm_issue_ext exts[CVM_ISSUE_EXTS_MAX];
	uint8_t marker[2 + sizeof(marker_text) - 1];
	struct cvm_issue_cert c = {
	    .subject = spec->name,
	    .subject_count = spec->name_count,
	    .serial = spec->serial,
	    .not_before = spec->not_before,
	    .not_after = spec->not_after,
	    .exts = exts,
	    .sig_alg = cvm_mock_sig_alg(issuer_key),
	};
	size_t n = 0;

	*out = NULL;
	if (spec->ext_count > CVM_ISSUE_EXTS_MAX - 5 || (spec->exts == NULL && spec->ext_count != 0))
		return CVM_E_INVAL;
	if (spec->key_ids) {
		exts[n++] = (struct cvm_issue_ext){.oid = "subjectKeyIdentifier", .conf = "hash"};
		if (issuer != NULL)
			exts[n++] =
			    (struct cvm_issue_ext){.oid = "authorityKeyIdentifier", .conf = "keyid:always"};
	}
	if (spec->key_usage != NULL)
		exts[n++] = (struct cvm_issue_ext){.oid = "keyUsage", .conf = spec->key_usage};
	if (spec->basic_constraints != NULL)
		exts[n++] =
		    (struct cvm_issue_ext){.oid = "basicConstraints", .conf = spec->basic_constraints};
	if (spec->marker) {
		marker[0] = 0x0c; /* UTF8String */
		marker[1] = (uint8_t)(sizeof(marker_text) - 1);
		memcpy(marker + 2, marker_text, sizeof(marker_text) - 1);
		exts[n++] = (struct cvm_issue_ext){
		    .oid = CVM_MOCKPKI_MARKER_OID, .der = marker, .der_len = sizeof(marker)};
	}
	for (size_t i = 0; i < spec->ext_count; i++)
		exts[n++] = spec->exts[i];
	c.ext_count = n;
	return cvm_issue_cert(&c, key, issuer, issuer_key, out);
}

int cvm_mock_sign_p256(const struct cvm_privkey *key, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	size_t sig_len = 0;
	int r;

	if (cvm_privkey_type(key) != CVM_PRIVKEY_P256)
		return CVM_E_INVAL;
	r = cvm_privkey_sign(key, CVM_SIG_ECDSA_SHA256, msg, len, sig, 64, &sig_len);
	if (r == CVM_OK && sig_len != 64)
		r = CVM_E_INTERNAL;
	return r;
}

int cvm_mock_pem_chain(struct cvm_cert *const *certs, size_t n, bool nul, uint8_t **out, size_t *out_len)
{
	int r = cvm_certs_pem(certs, n, out, out_len);

	/* the buffer holds a NUL after the text: counting it puts it in */
	if (r == CVM_OK && nul)
		(*out_len)++;
	return r;
}

/* ---- keeping keys and certificates in a folder --------------------------- */

int cvm_mock_dir_check(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0)
		return CVM_E_SYSTEM;
	if (!S_ISDIR(st.st_mode) || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return CVM_E_INVAL;
	return CVM_OK;
}

int cvm_mock_cert_save(struct cvm_cert *c, const char *path)
{
	uint8_t *pem = NULL;
	size_t len = 0;
	int r;

	r = cvm_certs_pem(&c, 1, &pem, &len);
	if (r == CVM_OK)
		r = cvm_file_write(path, pem, len, 0644);
	free(pem);
	return r;
}

int cvm_mock_cert_load(const char *path, struct cvm_cert **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	r = cvm_file_read(path, CERT_FILE_MAX, &buf, &len);
	if (r != CVM_OK)
		return r;
	r = cvm_cert_parse(buf, len, out);
	free(buf);
	return r;
}

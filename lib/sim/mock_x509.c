/* The building blocks of the mock vendor PKIs (mockpki.c for Intel,
 * mockamd.c for AMD, and the tests' broken variants): names, certificates,
 * CRLs, raw signatures, the simulated marker, and keys and certificates kept
 * in a folder. Simulator and test material only: nothing here verifies
 * anything. See mock_int.h. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/secret.h>

#include "sim/mock_int.h"

#define PSS_SALT_LEN 48
#define KEY_FILE_MAX ((size_t)16 * 1024)

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

int cvm_mock_add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (ext == NULL)
		return CVM_E_CRYPTO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? CVM_OK : CVM_E_CRYPTO;
}

int cvm_mock_set_time(ASN1_TIME *t, int64_t v)
{
	return ASN1_TIME_set(t, (time_t)v) != NULL ? CVM_OK : CVM_E_CRYPTO;
}

int cvm_mock_crl_add_serial(X509_CRL *crl, uint64_t serial, ASN1_TIME *when)
{
	X509_REVOKED *rv = X509_REVOKED_new();
	ASN1_INTEGER *s = ASN1_INTEGER_new();
	int r = CVM_E_CRYPTO;

	if (rv == NULL || s == NULL)
		goto out;
	if (ASN1_INTEGER_set_uint64(s, serial) != 1 || X509_REVOKED_set_serialNumber(rv, s) != 1 ||
	    X509_REVOKED_set_revocationDate(rv, when) != 1)
		goto out;
	if (X509_CRL_add0_revoked(crl, rv) != 1)
		goto out;
	rv = NULL; /* transferred */
	r = CVM_OK;
out:
	ASN1_INTEGER_free(s);
	X509_REVOKED_free(rv);
	return r;
}

int cvm_mock_der_of(X509 *x, uint8_t **out, size_t *out_len)
{
	uint8_t *der = NULL;
	int len = i2d_X509(x, &der);
	int r;

	if (len <= 0)
		return CVM_E_CRYPTO;
	r = cvm_mock_copy_out(der, (size_t)len, out, out_len);
	OPENSSL_free(der);
	return r;
}

int cvm_mock_pem_chain(X509 *const *certs, size_t n, bool nul, uint8_t **out, size_t *out_len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long len;
	int r = CVM_E_CRYPTO;

	if (b == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 0; i < n; i++)
		if (PEM_write_bio_X509(b, certs[i]) != 1)
			goto out;
	if (nul && BIO_write(b, "", 1) != 1)
		goto out;
	len = BIO_get_mem_data(b, &p);
	if (len <= 0)
		goto out;
	r = cvm_mock_copy_out(p, (size_t)len, out, out_len);
out:
	BIO_free(b);
	return r;
}

/* ---- names and certificates --------------------------------------------- */

/* name_of makes a name of single-valued RDNs in the order given. */
static X509_NAME *name_of(const char *const fields[][2], size_t n)
{
	X509_NAME *name = X509_NAME_new();

	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (X509_NAME_add_entry_by_txt(name, fields[i][0], MBSTRING_UTF8,
		                               (const unsigned char *)fields[i][1], -1, -1, 0) != 1) {
			X509_NAME_free(name);
			ERR_clear_error();
			return NULL;
		}
	}
	return name;
}

X509_NAME *cvm_mock_intel_name(const char *cn)
{
	const char *const fields[][2] = {
	    {"CN", cn}, {"O", "Intel Corporation"}, {"L", "Santa Clara"}, {"ST", "CA"}, {"C", "US"}};

	return name_of(fields, sizeof(fields) / sizeof(fields[0]));
}

X509_NAME *cvm_mock_amd_name(const char *cn)
{
	const char *const fields[][2] = {
	    {"OU", "Engineering"},           {"C", "US"}, {"L", "Santa Clara"}, {"ST", "CA"},
	    {"O", "Advanced Micro Devices"}, {"CN", cn}};

	return name_of(fields, sizeof(fields) / sizeof(fields[0]));
}

int cvm_mock_cert_new(const struct cvm_mock_cert *spec, EVP_PKEY *key, X509 *issuer, X509 **out)
{
	X509 *x = NULL;
	X509V3_CTX ctx;
	int r = CVM_E_CRYPTO;

	*out = NULL;
	if (spec->name == NULL)
		return CVM_E_INVAL;
	x = X509_new();
	if (x == NULL)
		goto out;
	if (issuer == NULL)
		issuer = x;
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), spec->serial) != 1 ||
	    X509_set_subject_name(x, spec->name) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1 || X509_set_pubkey(x, key) != 1)
		goto out;
	r = cvm_mock_set_time(X509_getm_notBefore(x), spec->not_before);
	if (r == CVM_OK)
		r = cvm_mock_set_time(X509_getm_notAfter(x), spec->not_after);
	if (r != CVM_OK)
		goto out;
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if (spec->key_ids) {
		r = cvm_mock_add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash");
		if (r == CVM_OK && issuer != x)
			r = cvm_mock_add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
		if (r != CVM_OK)
			goto out;
	}
	if (spec->key_usage != NULL) {
		r = cvm_mock_add_conf_ext(x, &ctx, NID_key_usage, spec->key_usage);
		if (r != CVM_OK)
			goto out;
	}
	if (spec->basic_constraints != NULL) {
		r = cvm_mock_add_conf_ext(x, &ctx, NID_basic_constraints, spec->basic_constraints);
		if (r != CVM_OK)
			goto out;
	}
	if (spec->marker) {
		r = cvm_mock_marker_add(x);
		if (r != CVM_OK)
			goto out;
	}
	*out = x;
	x = NULL; /* transferred */
	r = CVM_OK;
out:
	X509_free(x);
	ERR_clear_error();
	return r;
}

/* sign_ctx makes the signing context of `key`'s vendor: ECDSA with SHA-256
 * (EC keys, Intel) or RSASSA-PSS with SHA-384, MGF1 SHA-384 and a 48-byte
 * salt (RSA keys, AMD). */
static int sign_ctx(EVP_PKEY *key, EVP_MD_CTX **out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	bool rsa = EVP_PKEY_is_a(key, "RSA");

	*out = NULL;
	if (ctx == NULL)
		return CVM_E_NOMEM;
	if (EVP_DigestSignInit(ctx, &pctx, rsa ? EVP_sha384() : EVP_sha256(), NULL, key) != 1 ||
	    (rsa && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PSS_SALT_LEN) != 1 ||
	             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) != 1))) {
		EVP_MD_CTX_free(ctx);
		ERR_clear_error();
		return CVM_E_CRYPTO;
	}
	*out = ctx;
	return CVM_OK;
}

int cvm_mock_cert_sign(X509 *x, EVP_PKEY *key)
{
	EVP_MD_CTX *ctx = NULL;
	int r;

	r = sign_ctx(key, &ctx);
	if (r != CVM_OK)
		return r;
	r = X509_sign_ctx(x, ctx) > 0 ? CVM_OK : CVM_E_CRYPTO;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

int cvm_mock_crl_sign(X509_CRL *crl, EVP_PKEY *key)
{
	EVP_MD_CTX *ctx = NULL;
	int r;

	if (X509_CRL_sort(crl) != 1)
		return CVM_E_CRYPTO;
	r = sign_ctx(key, &ctx);
	if (r != CVM_OK)
		return r;
	r = X509_CRL_sign_ctx(crl, ctx) > 0 ? CVM_OK : CVM_E_CRYPTO;
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

int cvm_mock_sign_p256(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	uint8_t der[80];
	size_t der_len = sizeof(der);
	const uint8_t *p = der;
	const BIGNUM *r = NULL, *s = NULL;
	int ret = CVM_E_CRYPTO;

	md = EVP_MD_CTX_new();
	if (md == NULL)
		goto out;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1)
		goto out;
	if (EVP_DigestSign(md, der, &der_len, msg, len) != 1)
		goto out;
	es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (es == NULL)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32)
		goto out;
	ret = CVM_OK;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ret;
}

/* ---- the simulated marker ------------------------------------------------ */

int cvm_mock_marker_add(X509 *x)
{
	static const char text[] = "cvmkit simulated TEE: not hardware, never a production trust anchor";
	ASN1_OBJECT *obj = NULL;
	ASN1_UTF8STRING *str = NULL;
	ASN1_OCTET_STRING *os = NULL;
	X509_EXTENSION *ext = NULL;
	uint8_t *der = NULL;
	int der_len, r = CVM_E_CRYPTO;

	obj = OBJ_txt2obj(CVM_MOCKPKI_MARKER_OID, 1);
	str = ASN1_UTF8STRING_new();
	os = ASN1_OCTET_STRING_new();
	if (obj == NULL || str == NULL || os == NULL)
		goto out;
	if (ASN1_STRING_set(str, text, (int)(sizeof(text) - 1)) != 1)
		goto out;
	der_len = i2d_ASN1_UTF8STRING(str, &der);
	if (der_len <= 0)
		goto out;
	if (ASN1_OCTET_STRING_set(os, der, der_len) != 1)
		goto out;
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1)
		goto out;
	r = CVM_OK;
out:
	X509_EXTENSION_free(ext);
	OPENSSL_free(der);
	ASN1_OCTET_STRING_free(os);
	ASN1_UTF8STRING_free(str);
	ASN1_OBJECT_free(obj);
	return r;
}

/* ---- keeping keys and certificates in a folder --------------------------- */

/* bio_write_file writes what a memory BIO holds to `path` with `mode`. */
static int bio_write_file(BIO *b, const char *path, unsigned mode)
{
	char *p = NULL;
	long len = BIO_get_mem_data(b, &p);

	if (len <= 0 || p == NULL)
		return CVM_E_CRYPTO;
	return cvm_file_write(path, p, (size_t)len, mode);
}

int cvm_mock_dir_check(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) != 0)
		return CVM_E_SYSTEM;
	if (!S_ISDIR(st.st_mode) || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return CVM_E_INVAL;
	return CVM_OK;
}

int cvm_mock_key_save(EVP_PKEY *key, const char *path)
{
	/* secure memory BIO: its buffer is wiped when freed */
	BIO *b = BIO_new(BIO_s_secmem());
	int r = CVM_E_CRYPTO;

	if (b == NULL)
		return CVM_E_NOMEM;
	if (PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1)
		r = bio_write_file(b, path, 0600);
	BIO_free(b);
	return r;
}

int cvm_mock_cert_save(X509 *x, const char *path)
{
	BIO *b = BIO_new(BIO_s_mem());
	int r = CVM_E_CRYPTO;

	if (b == NULL)
		return CVM_E_NOMEM;
	if (PEM_write_bio_X509(b, x) == 1)
		r = bio_write_file(b, path, 0644);
	BIO_free(b);
	return r;
}

int cvm_mock_key_load(const char *path, EVP_PKEY **out)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *b = NULL;
	int r;

	*out = NULL;
	if (stat(path, &st) != 0)
		return CVM_E_SYSTEM;
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		return CVM_E_INVAL;
	r = cvm_file_read(path, KEY_FILE_MAX, &buf, &len);
	if (r != CVM_OK)
		return r;
	r = CVM_E_FORMAT;
	b = BIO_new_mem_buf(buf, (int)len);
	if (b == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	*out = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	if (*out != NULL)
		r = CVM_OK;
out:
	BIO_free(b);
	cvm_freezero(buf, len);
	ERR_clear_error();
	return r;
}

int cvm_mock_cert_load(const char *path, X509 **out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *b = NULL;
	int r;

	*out = NULL;
	r = cvm_file_read(path, KEY_FILE_MAX, &buf, &len);
	if (r != CVM_OK)
		return r;
	r = CVM_E_FORMAT;
	b = BIO_new_mem_buf(buf, (int)len);
	if (b == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	*out = PEM_read_bio_X509(b, NULL, NULL, NULL);
	if (*out != NULL)
		r = CVM_OK;
out:
	BIO_free(b);
	free(buf);
	ERR_clear_error();
	return r;
}

/* Issuing X.509 certificates for P-256 keys (the profile of dstack's rcgen
 * certificates, spec §6.3): the agent's GetTlsKey, local app CAs, and any
 * later RA-TLS certificate, whose extensions come in as opaque DER. The
 * names, extensions and PEM output are made by the helpers issue.c shares
 * (issue_int.h), which issue the mock vendor PKIs' certificates too. */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cvmkit/crypto.h>
#include <cvmkit/random.h>

#include "crypto_int.h"
#include "issue_int.h"
#include "p256key_int.h"

/* X.520 upper bounds (ub-common-name, ub-organization-name). */
#define NAME_MAX_CHARS 64
/* Largest extension value accepted (an RA-TLS attestation is ~10 KiB). */
#define EXT_VALUE_MAX ((size_t)1024 * 1024)
/* 9999-12-31T23:59:59Z, the last instant X.509 can express. */
#define TIME_MAX_UNIX INT64_C(253402300799)

void cvm_cert_template_init(struct cvm_cert_template *t)
{
	memset(t, 0, sizeof(*t));
	t->path_len = -1;
}

static bool dns_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f)
			return false;
	}
	return true;
}

static int template_check(const struct cvm_cert_template *t)
{
	size_t cn_len;

	if (t->common_name == NULL)
		return CVM_E_INVAL;
	cn_len = strlen(t->common_name);
	if (cn_len == 0 || cn_len > NAME_MAX_CHARS)
		return CVM_E_INVAL;
	if (t->organization != NULL &&
	    (t->organization[0] == '\0' || strlen(t->organization) > NAME_MAX_CHARS))
		return CVM_E_INVAL;
	if (t->not_before < 0 || t->not_before >= t->not_after || t->not_after > TIME_MAX_UNIX)
		return CVM_E_INVAL;
	if (t->is_ca && t->path_len < -1)
		return CVM_E_INVAL;
	if (t->alt_name_count > CVM_CERT_ALT_NAMES_MAX || t->ext_count > CVM_CERT_EXTS_MAX)
		return CVM_E_TOO_LARGE;
	if (t->alt_name_count != 0 && t->alt_names == NULL)
		return CVM_E_INVAL;
	for (size_t i = 0; i < t->alt_name_count; i++) {
		if (t->alt_names[i] == NULL || !dns_name_ok(t->alt_names[i]))
			return CVM_E_INVAL;
	}
	if (t->ext_count != 0 && t->exts == NULL)
		return CVM_E_INVAL;
	for (size_t i = 0; i < t->ext_count; i++) {
		if (t->exts[i].oid == NULL || (t->exts[i].value == NULL && t->exts[i].value_len != 0))
			return CVM_E_INVAL;
		if (t->exts[i].value_len > EXT_VALUE_MAX)
			return CVM_E_TOO_LARGE;
	}
	if (t->serial != NULL) {
		uint8_t acc = 0;

		if (t->serial_len == 0 || t->serial_len > CVM_CERT_SERIAL_MAX)
			return CVM_E_INVAL;
		for (size_t i = 0; i < t->serial_len; i++)
			acc |= t->serial[i];
		if (acc == 0)
			return CVM_E_INVAL;
	}
	return CVM_OK;
}

static bool set_serial(X509 *x, const struct cvm_cert_template *t)
{
	uint8_t rnd[16];
	const uint8_t *p = t->serial;
	size_t n = t->serial_len;
	BIGNUM *bn;
	bool ok;

	if (p == NULL) {
		if (cvm_random_bytes(rnd, sizeof(rnd)) != CVM_OK)
			return false;
		/* positive, and always 16 bytes long */
		rnd[0] = (uint8_t)((rnd[0] & 0x7f) | 0x40);
		p = rnd;
		n = sizeof(rnd);
	}
	bn = BN_bin2bn(p, (int)n, NULL);
	ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

X509_NAME *cvm_x509_name(const struct cvm_name_attr *attrs, size_t n)
{
	X509_NAME *name = X509_NAME_new();

	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (X509_NAME_add_entry_by_txt(name, attrs[i].type, MBSTRING_UTF8,
		                               (const unsigned char *)attrs[i].value, -1, -1, 0) != 1) {
			X509_NAME_free(name);
			ERR_clear_error();
			return NULL;
		}
	}
	return name;
}

static X509_NAME *make_name(const struct cvm_cert_template *t)
{
	struct cvm_name_attr attrs[2];
	size_t n = 0;

	if (t->organization != NULL)
		attrs[n++] = (struct cvm_name_attr){"O", t->organization};
	attrs[n++] = (struct cvm_name_attr){"CN", t->common_name};
	return cvm_x509_name(attrs, n);
}

bool cvm_x509_add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	bool ok;

	if (ext == NULL)
		return false;
	ok = X509_add_ext(x, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* add_alt_names builds the SAN from typed GENERAL_NAMEs (never from a
 * config string, where a comma in a name would split it). */
static bool add_alt_names(X509 *x, const struct cvm_cert_template *t)
{
	GENERAL_NAMES *gens;
	bool ok = false;

	if (t->alt_name_count == 0)
		return true;
	gens = sk_GENERAL_NAME_new_null();
	if (gens == NULL)
		return false;
	for (size_t i = 0; i < t->alt_name_count; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_OCTET_STRING *ip;

		if (g == NULL)
			goto out;
		ip = a2i_IPADDRESS(t->alt_names[i]);
		ERR_clear_error();
		if (ip != NULL) {
			GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
		} else {
			ASN1_IA5STRING *dns = ASN1_IA5STRING_new();

			if (dns == NULL || ASN1_STRING_set(dns, t->alt_names[i], -1) != 1) {
				ASN1_IA5STRING_free(dns);
				GENERAL_NAME_free(g);
				goto out;
			}
			GENERAL_NAME_set0_value(g, GEN_DNS, dns);
		}
		if (sk_GENERAL_NAME_push(gens, g) <= 0) {
			GENERAL_NAME_free(g);
			goto out;
		}
	}
	ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_APPEND) == 1;
out:
	GENERAL_NAMES_free(gens);
	return ok;
}

bool cvm_x509_add_der_ext(X509 *x, const char *oid, bool critical, const uint8_t *der, size_t len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1); /* dotted numbers only */
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	bool ok = false;

	if (obj == NULL || os == NULL || len > INT32_MAX)
		goto out;
	if (ASN1_OCTET_STRING_set(os, der, (int)len) != 1)
		goto out;
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, critical ? 1 : 0, os);
	ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;
out:
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return ok;
}

static int add_extensions(X509 *x, X509 *issuer_x, const struct cvm_cert_template *t)
{
	X509V3_CTX ctx;
	char bc[64];

	X509V3_set_ctx(&ctx, issuer_x, x, NULL, NULL, 0);
	if (t->is_ca) {
		if (t->path_len >= 0)
			(void)snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", t->path_len);
		else
			(void)snprintf(bc, sizeof(bc), "critical,CA:TRUE");
		if (!cvm_x509_add_conf_ext(x, &ctx, NID_basic_constraints, bc))
			return CVM_E_CRYPTO;
	}
	if (!cvm_x509_add_conf_ext(x, &ctx, NID_key_usage,
	                           t->is_ca ? "critical,digitalSignature,keyCertSign,cRLSign"
	                                    : "critical,digitalSignature"))
		return CVM_E_CRYPTO;
	if (t->usage_server_auth || t->usage_client_auth) {
		const char *eku = t->usage_server_auth && t->usage_client_auth ? "serverAuth,clientAuth"
		                  : t->usage_server_auth                       ? "serverAuth"
		                                                               : "clientAuth";

		if (!cvm_x509_add_conf_ext(x, &ctx, NID_ext_key_usage, eku))
			return CVM_E_CRYPTO;
	}
	if (!add_alt_names(x, t))
		return CVM_E_CRYPTO;
	/* subjectKeyIdentifier first: a self-signed certificate's AKI refers to it. */
	if (!cvm_x509_add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    !cvm_x509_add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid"))
		return CVM_E_CRYPTO;
	for (size_t i = 0; i < t->ext_count; i++) {
		if (!cvm_x509_add_der_ext(x, t->exts[i].oid, t->exts[i].critical, t->exts[i].value,
		                          t->exts[i].value_len))
			return CVM_E_INVAL; /* an OID OpenSSL cannot parse, mostly */
	}
	return CVM_OK;
}

int cvm_x509_pem(X509 *const *xs, size_t n, char **out, size_t *out_len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL, *s;
	long len;
	int r = CVM_E_CRYPTO;

	*out = NULL;
	*out_len = 0;
	if (b == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (PEM_write_bio_X509(b, xs[i]) != 1)
			goto out;
	len = BIO_get_mem_data(b, &data);
	if (len <= 0 || data == NULL)
		goto out;
	s = malloc((size_t)len + 1);
	if (s == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(s, data, (size_t)len);
	s[len] = '\0';
	*out = s;
	*out_len = (size_t)len;
	r = CVM_OK;
out:
	BIO_free(b);
	ERR_clear_error();
	return r;
}

/* make_cert issues `t` for the public key `subject_pub`, signed by
 * `issuer_key` as `issuer`, or self-signed by `self_key` (the subject's
 * own key) when both are NULL. */
static int make_cert(const struct cvm_cert_template *t, EVP_PKEY *subject_pub, EVP_PKEY *self_key,
                     const struct cvm_p256_keypair *issuer_key, const struct cvm_cert *issuer, char **out_pem,
                     size_t *out_len)
{
	X509 *x = NULL;
	X509_NAME *name = NULL;
	int r;

	r = template_check(t);
	if (r != CVM_OK)
		return r;
	if (issuer != NULL &&
	    (!cvm_cert_is_ca(issuer) || X509_check_private_key(issuer->x, issuer_key->pkey) != 1)) {
		ERR_clear_error();
		return CVM_E_INVAL;
	}
	r = CVM_E_CRYPTO;
	x = X509_new();
	name = make_name(t);
	if (x == NULL || name == NULL)
		goto out;
	if (X509_set_version(x, X509_VERSION_3) != 1 || !set_serial(x, t) ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer->x) : name) != 1 ||
	    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)t->not_before) == NULL ||
	    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)t->not_after) == NULL ||
	    X509_set_pubkey(x, subject_pub) != 1)
		goto out;
	r = add_extensions(x, issuer != NULL ? issuer->x : x, t);
	if (r != CVM_OK)
		goto out;
	r = CVM_E_CRYPTO;
	if (X509_sign(x, issuer_key != NULL ? issuer_key->pkey : self_key, EVP_sha256()) <= 0)
		goto out;
	r = cvm_x509_pem(&x, 1, out_pem, out_len);
out:
	ERR_clear_error();
	X509_NAME_free(name);
	X509_free(x);
	return r;
}

int cvm_cert_make(const struct cvm_cert_template *t, const struct cvm_p256_keypair *subject,
                  const struct cvm_p256_keypair *issuer_key, const struct cvm_cert *issuer, char **out_pem,
                  size_t *out_len)
{
	*out_pem = NULL;
	*out_len = 0;
	if (t == NULL || subject == NULL || (issuer_key == NULL) != (issuer == NULL))
		return CVM_E_INVAL;
	return make_cert(t, subject->pkey, subject->pkey, issuer_key, issuer, out_pem, out_len);
}

int cvm_cert_make_spki(const struct cvm_cert_template *t, const uint8_t *spki, size_t spki_len,
                       const struct cvm_p256_keypair *issuer_key, const struct cvm_cert *issuer,
                       char **out_pem, size_t *out_len)
{
	const unsigned char *p = spki;
	EVP_PKEY *pub = NULL;
	char group[32];
	size_t glen = 0;
	bool ok;
	int r;

	*out_pem = NULL;
	*out_len = 0;
	if (t == NULL || spki == NULL || spki_len == 0 || spki_len > 1024 || issuer_key == NULL ||
	    issuer == NULL)
		return CVM_E_INVAL;
	pub = d2i_PUBKEY(NULL, &p, (long)spki_len);
	ok = pub != NULL && p == spki + spki_len && EVP_PKEY_get_base_id(pub) == EVP_PKEY_EC;
	if (ok)
		ok = EVP_PKEY_get_utf8_string_param(pub, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
		                                    &glen) == 1 &&
		     strcmp(group, SN_X9_62_prime256v1) == 0;
	ERR_clear_error();
	if (!ok) {
		EVP_PKEY_free(pub);
		return CVM_E_INVAL;
	}
	r = make_cert(t, pub, NULL, issuer_key, issuer, out_pem, out_len);
	EVP_PKEY_free(pub);
	return r;
}

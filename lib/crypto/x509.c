/* X.509 certificates through OpenSSL, behind an opaque type. The chain logic
 * itself (which certificate must sign which, at what time, against which CRL)
 * is explicit in the callers, so every step can be reported. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "crypto_int.h"

bool cvm_signed_der_split(const uint8_t *der, size_t len, size_t *tbs_off, size_t *tbs_len, size_t *sig_off,
                          size_t *sig_len)
{
	struct cvm_rd all, seq, tbs, inner, outer, bits, part;
	const uint8_t *start, *inner_at = NULL, *outer_at;
	uint8_t tag = 0;

	cvm_rd_init(&all, der, len);
	if (!cvm_rd_asn1(&all, &seq, 0x30) || all.len != 0)
		return false;
	start = seq.p;
	if (!cvm_rd_asn1(&seq, &tbs, 0x30))
		return false;
	*tbs_off = (size_t)(start - der);
	*tbs_len = (size_t)(seq.p - start);
	/* The signed part's own AlgorithmIdentifier is its first SEQUENCE (after
	 * a certificate's [0] version and serial, or a CRL's version). */
	while (tbs.len != 0 && tag != 0x30) {
		inner_at = tbs.p;
		if (!cvm_rd_asn1_any(&tbs, &part, &tag))
			return false;
	}
	if (tag != 0x30)
		return false;
	inner = (struct cvm_rd){inner_at, (size_t)(tbs.p - inner_at)};
	outer_at = seq.p;
	if (!cvm_rd_asn1(&seq, &part, 0x30))
		return false;
	outer = (struct cvm_rd){outer_at, (size_t)(seq.p - outer_at)};
	if (inner.len != outer.len || memcmp(inner.p, outer.p, inner.len) != 0)
		return false; /* OpenSSL's own verification decides */
	if (!cvm_rd_asn1(&seq, &bits, 0x03) || seq.len != 0)
		return false;
	if (bits.len < 2 || bits.p[0] != 0)
		return false; /* no signature, or not whole bytes */
	*sig_off = (size_t)(bits.p + 1 - der);
	*sig_len = bits.len - 1;
	return true;
}

bool cvm_x509_ec_point(X509 *x, int curve_nid, uint8_t *point, size_t len)
{
	X509_PUBKEY *pub = X509_get_X509_PUBKEY(x);
	ASN1_OBJECT *alg = NULL;
	const unsigned char *pk = NULL;
	const void *pval = NULL;
	X509_ALGOR *pa = NULL;
	int pklen = 0, ptype = 0;

	if (pub == NULL || X509_PUBKEY_get0_param(&alg, &pk, &pklen, &pa, pub) != 1 ||
	    OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey || pa == NULL)
		return false;
	X509_ALGOR_get0(NULL, &ptype, &pval, pa);
	if (ptype != V_ASN1_OBJECT || OBJ_obj2nid(pval) != curve_nid)
		return false;
	if (pklen < 0 || (size_t)pklen != len || pk[0] != 0x04)
		return false;
	memcpy(point, pk, len);
	return true;
}

/* cert_p256_point reads the certificate's key as x || y when it is an
 * uncompressed P-256 point. */
static bool cert_p256_point(X509 *x, uint8_t xy[64])
{
	uint8_t point[65];

	if (!cvm_x509_ec_point(x, NID_X9_62_prime256v1, point, sizeof(point)))
		return false;
	memcpy(xy, point + 1, 64);
	return true;
}

/* cert_fast_fields fills what the P-256 paths need (all optional: a
 * certificate without them is verified by OpenSSL's X509_verify). */
static void cert_fast_fields(struct cvm_cert *c)
{
	uint8_t xy[64];

	if (cert_p256_point(c->x, xy) && cvm_p256_pub_set(&c->p256, xy) == CVM_OK)
		c->has_p256 = true;
	/* the split also insists on the same algorithm inside and outside the
	 * signed part, byte for byte (X509_verify compares them too) */
	c->ecdsa_sha256 =
	    X509_get_signature_nid(c->x) == NID_ecdsa_with_SHA256 &&
	    cvm_signed_der_split(c->der, c->der_len, &c->tbs_off, &c->tbs_len, &c->sig_off, &c->sig_len);
	ERR_clear_error();
}

static void name_line(const X509_NAME *name, char *buf, size_t len);

static int cert_wrap(X509 *x, struct cvm_cert **out)
{
	struct cvm_cert *c;
	unsigned char *der = NULL;
	int n;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return CVM_E_NOMEM;
	c->refs = 1;
	if (!cvm_asn1_time_unix(X509_get0_notBefore(x), &c->not_before) ||
	    !cvm_asn1_time_unix(X509_get0_notAfter(x), &c->not_after)) {
		free(c);
		return CVM_E_FORMAT;
	}
	/* Cache the extension flags now (OpenSSL computes them lazily). */
	(void)X509_get_extension_flags(x);
	n = i2d_X509(x, &der);
	if (n <= 0) {
		free(c);
		return CVM_E_FORMAT;
	}
	c->der = der;
	c->der_len = (size_t)n;
	c->x = x;
	cert_fast_fields(c);
	name_line(X509_get_subject_name(x), c->subject, sizeof(c->subject));
	name_line(X509_get_issuer_name(x), c->issuer, sizeof(c->issuer));
	*out = c;
	return CVM_OK;
}

/* The process-wide cache of parsed certificates (cvm_cert_cache_keep),
 * keyed by their DER. */
static void cert_bytes(const void *obj, const uint8_t **p, size_t *len)
{
	const struct cvm_cert *c = obj;

	*p = c->der;
	*len = c->der_len;
}

static void *cert_ref(void *obj)
{
	return cvm_cert_dup(obj);
}

static void cert_unref(void *obj)
{
	cvm_cert_free(obj);
}

static struct cvm_cert *cert_slots[CVM_CERT_CACHE_MAX];
static struct cvm_mru cert_cache = CVM_MRU_INIT(cert_slots, cert_bytes, cert_ref, cert_unref);

void cvm_cert_cache_keep(struct cvm_cert *c)
{
	cvm_mru_keep(&cert_cache, c);
}

/* cert_parse_der reads exactly one DER certificate (the cache first). */
static int cert_parse_der(const uint8_t *buf, size_t len, struct cvm_cert **out)
{
	const unsigned char *p = buf;
	X509 *x;
	int r;

	*out = cvm_mru_take(&cert_cache, buf, len);
	if (*out != NULL)
		return CVM_OK;
	x = d2i_X509(NULL, &p, (long)len);
	if (x != NULL && p != buf + len) {
		X509_free(x); /* trailing bytes after the certificate */
		x = NULL;
	}
	ERR_clear_error();
	if (x == NULL)
		return CVM_E_FORMAT;
	r = cert_wrap(x, out);
	if (r != CVM_OK)
		X509_free(x);
	return r;
}

int cvm_cert_parse(const uint8_t *buf, size_t len, struct cvm_cert **out)
{
	uint8_t *der = NULL;
	size_t der_len = 0;
	int r;

	*out = NULL;
	if (len > INT32_MAX)
		return CVM_E_TOO_LARGE;
	if (!cvm_pem_starts(buf, len))
		return cert_parse_der(buf, len, out);
	r = cvm_pem_der_one(buf, len, "CERTIFICATE", CVM_CERT_DER_MAX, &der, &der_len);
	if (r == CVM_OK)
		r = cert_parse_der(der, der_len, out);
	free(der);
	return r == CVM_E_TOO_LARGE ? r : (r == CVM_OK ? CVM_OK : (r == CVM_E_NOMEM ? r : CVM_E_FORMAT));
}

int cvm_certs_parse_pem(const uint8_t *pem, size_t len, struct cvm_cert ***out, size_t *count)
{
	return cvm_cert_pool_parse_pem(NULL, pem, len, out, count);
}

void cvm_certs_free(struct cvm_cert **certs, size_t count)
{
	if (certs == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		cvm_cert_free(certs[i]);
	free(certs);
}

void cvm_cert_free(struct cvm_cert *c)
{
	if (c == NULL)
		return;
	if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	X509_free(c->x);
	OPENSSL_free(c->der);
	cvm_p256_pub_clear(&c->p256);
	free(c);
}

struct cvm_cert *cvm_cert_dup(struct cvm_cert *c)
{
	if (c != NULL)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
	return c;
}

int64_t cvm_cert_not_before(const struct cvm_cert *c)
{
	return c->not_before;
}

int64_t cvm_cert_not_after(const struct cvm_cert *c)
{
	return c->not_after;
}

bool cvm_cert_is_ca(const struct cvm_cert *c)
{
	return X509_check_ca(c->x) == 1;
}

bool cvm_cert_claims_ca(const struct cvm_cert *c)
{
	return (X509_get_extension_flags(c->x) & EXFLAG_CA) != 0;
}

bool cvm_cert_has_unknown_critical(const struct cvm_cert *c)
{
	return (X509_get_extension_flags(c->x) & EXFLAG_CRITICAL) != 0;
}

bool cvm_cert_key_usage(const struct cvm_cert *c, uint32_t *bits)
{
	uint32_t ku;

	*bits = 0;
	if ((X509_get_extension_flags(c->x) & EXFLAG_KUSAGE) == 0)
		return false;
	/* 0 for an invalid certificate (a malformed extension): no usage */
	ku = X509_get_key_usage(c->x);
	*bits = ku == UINT32_MAX ? 0 : ku;
	return true;
}

bool cvm_cert_subject_is(const struct cvm_cert *c, const struct cvm_name_attr *attrs, size_t n)
{
	const X509_NAME *name = X509_get_subject_name(c->x);

	if (name == NULL || X509_NAME_entry_count(name) < 0 || (size_t)X509_NAME_entry_count(name) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, (int)i);
		const ASN1_STRING *v = e != NULL ? X509_NAME_ENTRY_get_data(e) : NULL;
		int nid = OBJ_txt2nid(attrs[i].type), type;
		size_t len = strlen(attrs[i].value);

		/* one attribute per RDN, in this order */
		if (v == NULL || nid == NID_undef || X509_NAME_ENTRY_set(e) != (int)i ||
		    OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) != nid)
			return false;
		/* string types whose bytes are the text itself */
		type = ASN1_STRING_type(v);
		if (type != V_ASN1_UTF8STRING && type != V_ASN1_PRINTABLESTRING && type != V_ASN1_IA5STRING)
			return false;
		if (ASN1_STRING_length(v) < 0 || (size_t)ASN1_STRING_length(v) != len ||
		    memcmp(ASN1_STRING_get0_data(v), attrs[i].value, len) != 0)
			return false;
	}
	return true;
}

bool cvm_cert_equal(const struct cvm_cert *a, const struct cvm_cert *b)
{
	return a->der_len == b->der_len && memcmp(a->der, b->der, a->der_len) == 0;
}

static void name_line(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (len == 0)
		return;
	buf[0] = '\0';
	if (b == NULL)
		return;
	if (X509_NAME_print_ex(b, name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_get_mem_data(b, &p);
		if (n > 0) {
			size_t k = (size_t)n < len - 1 ? (size_t)n : len - 1;

			memcpy(buf, p, k);
			buf[k] = '\0';
		}
	}
	BIO_free(b);
	ERR_clear_error();
}

static void copy_name(const char *name, char *buf, size_t len)
{
	size_t k = strlen(name);

	if (len == 0)
		return;
	k = k < len - 1 ? k : len - 1;
	memcpy(buf, name, k);
	buf[k] = '\0';
}

void cvm_cert_subject(const struct cvm_cert *c, char *buf, size_t len)
{
	copy_name(c->subject, buf, len);
}

void cvm_cert_issuer(const struct cvm_cert *c, char *buf, size_t len)
{
	copy_name(c->issuer, buf, len);
}

void cvm_cert_serial(const struct cvm_cert *c, char *buf, size_t len)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c->x), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;

	if (len != 0)
		buf[0] = '\0';
	if (hex != NULL && len != 0) {
		size_t k = strlen(hex);

		k = k < len - 1 ? k : len - 1;
		memcpy(buf, hex, k);
		buf[k] = '\0';
	}
	OPENSSL_free(hex);
	BN_free(bn);
}

void cvm_cert_der(const struct cvm_cert *c, const uint8_t **der, size_t *len)
{
	*der = c->der;
	*len = c->der_len;
}

static int check_issued(const struct cvm_cert *child, const struct cvm_cert *issuer, bool keep)
{
	EVP_PKEY *pk;
	int v;

	/* Names, authority key id and the issuer's keyUsage. */
	v = X509_check_issued(issuer->x, child->x);
	if (v != X509_V_OK) {
		ERR_clear_error();
		return CVM_E_CHAIN;
	}
	if (X509_check_ca(issuer->x) != 1)
		return CVM_E_CHAIN;
	if (child->ecdsa_sha256 && issuer->has_p256)
		return cvm_p256_verify_der(&issuer->p256, child->der + child->tbs_off, child->tbs_len,
		                           child->der + child->sig_off, child->sig_len, keep) == CVM_OK
		           ? CVM_OK
		           : CVM_E_SIGNATURE;
	pk = X509_get0_pubkey(issuer->x);
	if (pk == NULL || X509_verify(child->x, pk) != 1) {
		ERR_clear_error();
		return CVM_E_SIGNATURE;
	}
	return CVM_OK;
}

int cvm_cert_check_issued(const struct cvm_cert *child, const struct cvm_cert *issuer)
{
	return check_issued(child, issuer, false);
}

int cvm_cert_check_issued_kept(const struct cvm_cert *child, const struct cvm_cert *issuer)
{
	return check_issued(child, issuer, true);
}

static int verify_p256(const struct cvm_cert *c, const uint8_t *msg, size_t len, const uint8_t sig[64],
                       bool keep)
{
	EVP_PKEY *pk;
	char group[32];
	uint8_t der[80], digest[32];
	size_t der_len;

	if (c->has_p256) {
		cvm_sha256(msg, len, digest);
		return cvm_p256_verify_digest(&c->p256, digest, sig, sig + 32, keep) == CVM_OK
		           ? CVM_OK
		           : CVM_E_SIGNATURE;
	}
	pk = X509_get0_pubkey(c->x);
	if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL) != 1 ||
	    strcmp(group, "prime256v1") != 0) {
		ERR_clear_error();
		return CVM_E_UNSUPPORTED;
	}
	der_len = cvm_ecdsa_raw_to_der(sig, 32, der, sizeof(der));
	if (der_len == 0)
		return CVM_E_SIGNATURE;
	return cvm_evp_verify_sha256(pk, msg, len, der, der_len);
}

int cvm_cert_verify_p256(const struct cvm_cert *c, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	return verify_p256(c, msg, len, sig, false);
}

int cvm_cert_verify_p256_kept(const struct cvm_cert *c, const uint8_t *msg, size_t len, const uint8_t sig[64])
{
	return verify_p256(c, msg, len, sig, true);
}

int cvm_cert_ext(const struct cvm_cert *c, const char *oid, struct cvm_rd *out)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	const ASN1_OCTET_STRING *data;
	X509_EXTENSION *ext;
	int idx, r = CVM_E_FORMAT;

	out->p = NULL;
	out->len = 0;
	if (obj == NULL) {
		ERR_clear_error();
		return CVM_E_INVAL;
	}
	idx = X509_get_ext_by_OBJ(c->x, obj, -1);
	if (idx < 0 || X509_get_ext_by_OBJ(c->x, obj, idx) >= 0)
		goto out; /* absent, or present twice */
	ext = X509_get_ext(c->x, idx);
	data = ext != NULL ? X509_EXTENSION_get_data(ext) : NULL;
	if (data == NULL)
		goto out;
	cvm_rd_init(out, ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data));
	r = CVM_OK;
out:
	ASN1_OBJECT_free(obj);
	return r;
}

size_t cvm_cert_ext_count(const struct cvm_cert *c, const char *oid)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	size_t n = 0;
	int idx = -1;

	if (obj == NULL) {
		ERR_clear_error();
		return 0;
	}
	for (;;) {
		idx = X509_get_ext_by_OBJ(c->x, obj, idx);
		if (idx < 0)
			break;
		n++;
	}
	ASN1_OBJECT_free(obj);
	return n;
}

int cvm_cert_spki(const struct cvm_cert *c, uint8_t **out, size_t *out_len)
{
	unsigned char *der = NULL;
	int n;

	*out = NULL;
	*out_len = 0;
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(c->x), &der);
	if (n <= 0) {
		ERR_clear_error();
		return CVM_E_CRYPTO;
	}
	*out = malloc((size_t)n);
	if (*out == NULL) {
		OPENSSL_free(der);
		return CVM_E_NOMEM;
	}
	memcpy(*out, der, (size_t)n);
	*out_len = (size_t)n;
	OPENSSL_free(der);
	return CVM_OK;
}

bool cvm_cert_p256_public(const struct cvm_cert *c, uint8_t xy[64])
{
	return cert_p256_point(c->x, xy);
}

int cvm_cert_check_signed(const struct cvm_cert *child, const struct cvm_cert *issuer)
{
	EVP_PKEY *pk;

	if (X509_NAME_cmp(X509_get_subject_name(issuer->x), X509_get_issuer_name(child->x)) != 0)
		return CVM_E_CHAIN;
	if (child->ecdsa_sha256 && issuer->has_p256)
		return cvm_p256_verify_der(&issuer->p256, child->der + child->tbs_off, child->tbs_len,
		                           child->der + child->sig_off, child->sig_len, false) == CVM_OK
		           ? CVM_OK
		           : CVM_E_SIGNATURE;
	pk = X509_get0_pubkey(issuer->x);
	if (pk == NULL || X509_verify(child->x, pk) != 1) {
		ERR_clear_error();
		return CVM_E_SIGNATURE;
	}
	return CVM_OK;
}

/* A test PKI shaped like AMD's SEV-SNP PKI, built with OpenSSL. See testamd.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cvmkit/bytes.h>

#include "testamd.h"

#define DAY ((int64_t)24 * 3600)
#define YEAR (365 * DAY)

enum { K_ARK = 0, K_INTER, K_OTHER, K_VEK, K_COUNT };

/* Keys are made once per process: RSA key generation dominates otherwise. */
static EVP_PKEY *keys[K_COUNT];
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void keys_init(void)
{
	keys[K_ARK] = EVP_RSA_gen(2048);
	keys[K_INTER] = EVP_RSA_gen(2048);
	keys[K_OTHER] = EVP_RSA_gen(2048);
	keys[K_VEK] = EVP_EC_gen("P-384");
}

struct cvm_testamd {
	struct cvm_testamd_opts o;
	X509 *ark, *inter, *vek;
	uint8_t *ark_der, *inter_pem, *vek_der, *crl_der;
	size_t ark_der_len, inter_pem_len, vek_der_len, crl_der_len;
};

static void pattern(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + 7 * i);
}

void cvm_testamd_opts_init(struct cvm_testamd_opts *o, enum cvm_snp_product product,
                           enum cvm_snp_signer signer, int64_t now)
{
	struct cvm_testamd_report_opts *r = &o->report;

	memset(o, 0, sizeof(*o));
	o->product = product;
	o->signer = signer;
	o->now = now;
	o->ark.from = now - YEAR;
	o->ark.to = now + 5 * YEAR;
	o->intermediate = o->ark;
	o->vek = o->ark;
	o->crl.from = now - DAY;
	o->crl.to = now + 30 * DAY;
	o->tcb.bootloader = 3;
	o->tcb.tee = 0;
	o->tcb.snp = 8;
	o->tcb.microcode = 115;
	if (product == CVM_SNP_PRODUCT_TURIN) {
		o->tcb.has_fmc = true;
		o->tcb.fmc = 1;
		o->hwid_len = 8;
	} else {
		o->hwid_len = 64;
	}
	pattern(o->hwid, o->hwid_len, 0x31);
	o->with_crl = true;

	r->version = 3;
	r->guest_svn = 4;
	r->policy = CVM_SNP_POLICY_RESERVED_ONE | CVM_SNP_POLICY_SMT;
	pattern(r->family_id, sizeof(r->family_id), 0x10);
	pattern(r->image_id, sizeof(r->image_id), 0x20);
	r->vmpl = 0;
	r->platform_info = CVM_SNP_PLATFORM_SMT_EN | CVM_SNP_PLATFORM_ECC_EN;
	pattern(r->report_data, sizeof(r->report_data), 0x40);
	pattern(r->measurement, sizeof(r->measurement), 0x50);
	pattern(r->host_data, sizeof(r->host_data), 0x60);
	pattern(r->id_key_digest, sizeof(r->id_key_digest), 0x70);
	pattern(r->author_key_digest, sizeof(r->author_key_digest), 0x80);
	r->reported_tcb = cvm_snp_tcb_encode(&o->tcb, product);
	r->current_tcb = r->reported_tcb;
	r->committed_tcb = r->reported_tcb;
	r->launch_tcb = r->reported_tcb;
	r->signer_info = (uint32_t)signer << 2;
	switch (product) {
	case CVM_SNP_PRODUCT_GENOA:
		r->cpuid_fam_id = 0x19;
		r->cpuid_mod_id = 0x11;
		r->cpuid_step = 1;
		break;
	case CVM_SNP_PRODUCT_TURIN:
		r->cpuid_fam_id = 0x1a;
		r->cpuid_mod_id = 0x02;
		r->cpuid_step = 0;
		break;
	default:
		r->cpuid_fam_id = 0x19;
		r->cpuid_mod_id = 0x01;
		r->cpuid_step = 1;
		break;
	}
	if (signer == CVM_SNP_SIGNER_VCEK)
		memcpy(r->chip_id, o->hwid, o->hwid_len);
}

/* ---- certificates ------------------------------------------------------ */

static X509_NAME *amd_name(const char *cn)
{
	static const char *const fields[][2] = {{"OU", "Engineering"},
	                                        {"C", "US"},
	                                        {"L", "Santa Clara"},
	                                        {"ST", "CA"},
	                                        {"O", "Advanced Micro Devices"}};
	X509_NAME *n = X509_NAME_new();

	if (n == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (X509_NAME_add_entry_by_txt(n, fields[i][0], MBSTRING_UTF8,
		                               (const unsigned char *)fields[i][1], -1, -1, 0) != 1)
			goto fail;
	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) != 1)
		goto fail;
	return n;
fail:
	X509_NAME_free(n);
	return NULL;
}

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok;

	if (ext == NULL)
		return CVM_E_CRYPTO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? CVM_OK : CVM_E_CRYPTO;
}

/* add_raw_ext adds a non-critical extension whose OCTET STRING holds `der`. */
static int add_raw_ext(X509 *x, const char *oid, const uint8_t *der, size_t len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;
	int r = CVM_E_CRYPTO;

	if (obj == NULL || os == NULL || ASN1_OCTET_STRING_set(os, der, (int)len) != 1)
		goto out;
	ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1)
		goto out;
	r = CVM_OK;
out:
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return r;
}

static int add_int_ext(X509 *x, const char *oid, uint8_t v)
{
	uint8_t der[4] = {0x02, 0x01, v, 0};

	if (v >= 0x80) {
		der[1] = 2;
		der[2] = 0;
		der[3] = v;
		return add_raw_ext(x, oid, der, 4);
	}
	return add_raw_ext(x, oid, der, 3);
}

static int add_ia5_ext(X509 *x, const char *oid, const char *s)
{
	uint8_t der[130];
	size_t n = strlen(s);

	if (n > 127)
		return CVM_E_INVAL;
	der[0] = 0x16;
	der[1] = (uint8_t)n;
	memcpy(der + 2, s, n);
	return add_raw_ext(x, oid, der, n + 2);
}

/* pss_sign signs `x` (or `crl`) with RSASSA-PSS, SHA-384, 48-byte salt. */
static int pss_ctx(EVP_MD_CTX **out, EVP_PKEY *key)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;

	*out = NULL;
	if (ctx == NULL)
		return CVM_E_NOMEM;
	if (EVP_DigestSignInit(ctx, &pctx, EVP_sha384(), NULL, key) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) != 1 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) != 1) {
		EVP_MD_CTX_free(ctx);
		return CVM_E_CRYPTO;
	}
	*out = ctx;
	return CVM_OK;
}

static int set_time(ASN1_TIME *t, int64_t v)
{
	return ASN1_TIME_set(t, (time_t)v) != NULL ? CVM_OK : CVM_E_CRYPTO;
}

enum which { W_ARK, W_INTER, W_VEK };

static int vek_exts(X509 *x, const struct cvm_testamd_opts *o)
{
	char name[32];
	int r;

	if (o->product_name != NULL)
		(void)snprintf(name, sizeof(name), "%s", o->product_name);
	else if (o->signer == CVM_SNP_SIGNER_VLEK)
		(void)snprintf(name, sizeof(name), "%s", cvm_snp_product_name(o->product));
	else
		(void)snprintf(name, sizeof(name), "%s-B0", cvm_snp_product_name(o->product));
	r = add_int_ext(x, CVM_AMD_OID_STRUCT_VERSION, o->product == CVM_SNP_PRODUCT_TURIN ? 1 : 0);
	if (r == CVM_OK)
		r = add_ia5_ext(x, CVM_AMD_OID_PRODUCT_NAME, name);
	if (r == CVM_OK)
		r = add_int_ext(x, CVM_AMD_OID_BL_SPL, o->tcb.bootloader);
	if (r == CVM_OK)
		r = add_int_ext(x, CVM_AMD_OID_TEE_SPL, o->tcb.tee);
	if (r == CVM_OK)
		r = add_int_ext(x, CVM_AMD_OID_SNP_SPL, o->tcb.snp);
	if (r == CVM_OK)
		r = add_int_ext(x, CVM_AMD_OID_UCODE_SPL, o->tcb.microcode);
	if (r == CVM_OK && o->product == CVM_SNP_PRODUCT_TURIN)
		r = add_int_ext(x, CVM_AMD_OID_FMC_SPL, o->tcb.fmc);
	if (r != CVM_OK)
		return r;
	if (o->signer == CVM_SNP_SIGNER_VLEK)
		return add_ia5_ext(x, CVM_AMD_OID_CSP_ID, "CN=test-csp.example");
	return add_raw_ext(x, CVM_AMD_OID_HWID, o->hwid, o->hwid_len);
}

static int cert_make(struct cvm_testamd *pki, enum which w, X509 **out)
{
	const struct cvm_testamd_opts *o = &pki->o;
	const char *p = cvm_snp_product_name(o->product);
	const struct cvm_testamd_window *win = w == W_ARK     ? &o->ark
	                                       : w == W_INTER ? &o->intermediate
	                                                      : &o->vek;
	EVP_PKEY *key = keys[w == W_ARK ? K_ARK : w == W_INTER ? K_INTER : K_VEK];
	EVP_PKEY *signer = keys[w == W_VEK ? K_INTER : K_ARK];
	X509 *x = X509_new(), *issuer;
	X509_NAME *name = NULL;
	EVP_MD_CTX *ctx = NULL;
	X509V3_CTX v3;
	char cn[64];
	int r = CVM_E_CRYPTO;

	*out = NULL;
	if (w == W_ARK)
		(void)snprintf(cn, sizeof(cn), "ARK-%s", o->ark_wrong_name ? "Other" : p);
	else if (w == W_INTER)
		(void)snprintf(cn, sizeof(cn), "SEV-%s%s", o->signer == CVM_SNP_SIGNER_VLEK ? "VLEK-" : "",
		               p);
	else
		(void)snprintf(cn, sizeof(cn), "%s",
		               o->signer == CVM_SNP_SIGNER_VLEK ? "SEV-VLEK" : "SEV-VCEK");
	name = amd_name(cn);
	if (x == NULL || name == NULL)
		goto out;
	issuer = w == W_ARK ? x : w == W_INTER ? pki->ark : pki->inter;
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), w == W_ARK     ? 0x10000
	                                                      : w == W_INTER ? 0x10001
	                                                                     : 0) != 1 ||
	    X509_set_subject_name(x, name) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(issuer)) != 1 || X509_set_pubkey(x, key) != 1)
		goto out;
	r = set_time(X509_getm_notBefore(x), win->from);
	if (r == CVM_OK)
		r = set_time(X509_getm_notAfter(x), win->to);
	if (r != CVM_OK)
		goto out;
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if (w != W_VEK) {
		r = add_conf_ext(x, &v3, NID_subject_key_identifier, "hash");
		if (r == CVM_OK && w == W_INTER)
			r = add_conf_ext(x, &v3, NID_authority_key_identifier, "keyid:always");
		if (r == CVM_OK)
			r = add_conf_ext(x, &v3, NID_basic_constraints,
			                 w == W_ARK ? "critical,CA:TRUE" : "critical,CA:TRUE,pathlen:0");
		if (r == CVM_OK)
			r = add_conf_ext(x, &v3, NID_key_usage,
			                 w == W_ARK ? "critical,keyCertSign,cRLSign"
			                            : "critical,keyCertSign");
	} else {
		r = vek_exts(x, o);
	}
	if (r != CVM_OK)
		goto out;
	r = pss_ctx(&ctx, signer);
	if (r != CVM_OK)
		goto out;
	r = CVM_E_CRYPTO;
	if (X509_sign_ctx(x, ctx) <= 0)
		goto out;
	*out = x;
	x = NULL; /* transferred */
	r = CVM_OK;
out:
	EVP_MD_CTX_free(ctx);
	X509_NAME_free(name);
	X509_free(x);
	return r;
}

static int copy_out(const void *p, size_t n, uint8_t **out, size_t *out_len)
{
	*out = malloc(n + 1);
	if (*out == NULL)
		return CVM_E_NOMEM;
	memcpy(*out, p, n);
	(*out)[n] = 0;
	*out_len = n;
	return CVM_OK;
}

static int der_of(X509 *x, uint8_t **out, size_t *len)
{
	uint8_t *der = NULL;
	int n = i2d_X509(x, &der);
	int r;

	if (n <= 0)
		return CVM_E_CRYPTO;
	r = copy_out(der, (size_t)n, out, len);
	OPENSSL_free(der);
	return r;
}

static int pem_of(X509 *x, uint8_t **out, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;
	int r = CVM_E_CRYPTO;

	if (b == NULL)
		return CVM_E_NOMEM;
	if (PEM_write_bio_X509(b, x) == 1) {
		n = BIO_get_mem_data(b, &p);
		if (n > 0)
			r = copy_out(p, (size_t)n, out, len);
	}
	BIO_free(b);
	return r;
}

static int crl_make(struct cvm_testamd *pki)
{
	const struct cvm_testamd_opts *o = &pki->o;
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t1 = ASN1_TIME_set(NULL, (time_t)o->crl.from),
	          *t2 = ASN1_TIME_set(NULL, (time_t)o->crl.to);
	uint64_t serials[2] = {0x7777, 0x10001};
	EVP_MD_CTX *ctx = NULL;
	uint8_t *der = NULL;
	int n, r = CVM_E_CRYPTO;

	if (crl == NULL || t1 == NULL || t2 == NULL)
		goto out;
	if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(pki->ark)) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, t1) != 1 || X509_CRL_set1_nextUpdate(crl, t2) != 1)
		goto out;
	for (size_t i = 0; i < (o->revoke_intermediate ? 2u : 1u); i++) {
		X509_REVOKED *rv = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();
		bool ok = rv != NULL && s != NULL && ASN1_INTEGER_set_uint64(s, serials[i]) == 1 &&
		          X509_REVOKED_set_serialNumber(rv, s) == 1 &&
		          X509_REVOKED_set_revocationDate(rv, t1) == 1 && X509_CRL_add0_revoked(crl, rv) == 1;

		ASN1_INTEGER_free(s);
		if (!ok) {
			X509_REVOKED_free(rv);
			goto out;
		}
	}
	r = pss_ctx(&ctx, keys[o->crl_wrong_key ? K_OTHER : K_ARK]);
	if (r != CVM_OK)
		goto out;
	r = CVM_E_CRYPTO;
	if (X509_CRL_sort(crl) != 1 || X509_CRL_sign_ctx(crl, ctx) <= 0)
		goto out;
	n = i2d_X509_CRL(crl, &der);
	if (n <= 0)
		goto out;
	r = copy_out(der, (size_t)n, &pki->crl_der, &pki->crl_der_len);
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	X509_CRL_free(crl);
	return r;
}

void cvm_testamd_free(struct cvm_testamd *pki)
{
	if (pki == NULL)
		return;
	X509_free(pki->ark);
	X509_free(pki->inter);
	X509_free(pki->vek);
	free(pki->ark_der);
	free(pki->inter_pem);
	free(pki->vek_der);
	free(pki->crl_der);
	free(pki);
}

int cvm_testamd_new(const struct cvm_testamd_opts *o, struct cvm_testamd **out)
{
	struct cvm_testamd *pki;
	int r;

	*out = NULL;
	(void)pthread_once(&keys_once, keys_init);
	for (size_t i = 0; i < K_COUNT; i++)
		if (keys[i] == NULL)
			return CVM_E_CRYPTO;
	pki = calloc(1, sizeof(*pki));
	if (pki == NULL)
		return CVM_E_NOMEM;
	pki->o = *o;
	r = cert_make(pki, W_ARK, &pki->ark);
	if (r == CVM_OK)
		r = cert_make(pki, W_INTER, &pki->inter);
	if (r == CVM_OK)
		r = cert_make(pki, W_VEK, &pki->vek);
	if (r == CVM_OK)
		r = der_of(pki->ark, &pki->ark_der, &pki->ark_der_len);
	if (r == CVM_OK)
		r = pem_of(pki->inter, &pki->inter_pem, &pki->inter_pem_len);
	if (r == CVM_OK)
		r = der_of(pki->vek, &pki->vek_der, &pki->vek_der_len);
	if (r == CVM_OK && o->with_crl)
		r = crl_make(pki);
	if (r != CVM_OK) {
		cvm_testamd_free(pki);
		return r;
	}
	*out = pki;
	return CVM_OK;
}

void cvm_testamd_ark_der(const struct cvm_testamd *pki, const uint8_t **der, size_t *len)
{
	*der = pki->ark_der;
	*len = pki->ark_der_len;
}

static int dup_into(const uint8_t *p, size_t n, uint8_t **out, size_t *len)
{
	if (p == NULL)
		return CVM_OK;
	return copy_out(p, n, out, len);
}

int cvm_testamd_collateral(const struct cvm_testamd *pki, struct cvm_amd_collateral **out)
{
	struct cvm_amd_collateral *c = calloc(1, sizeof(*c));
	bool vlek = pki->o.signer == CVM_SNP_SIGNER_VLEK;
	int r;

	*out = NULL;
	if (c == NULL)
		return CVM_E_NOMEM;
	r = dup_into(pki->vek_der, pki->vek_der_len, vlek ? &c->vlek : &c->vcek,
	             vlek ? &c->vlek_len : &c->vcek_len);
	if (r == CVM_OK)
		r = dup_into(pki->inter_pem, pki->inter_pem_len, vlek ? &c->asvk : &c->ask,
		             vlek ? &c->asvk_len : &c->ask_len);
	if (r == CVM_OK)
		r = dup_into(pki->ark_der, pki->ark_der_len, &c->ark, &c->ark_len);
	if (r == CVM_OK)
		r = dup_into(pki->crl_der, pki->crl_der_len, &c->crl, &c->crl_len);
	if (r != CVM_OK) {
		cvm_amd_collateral_free(c);
		return r;
	}
	*out = c;
	return CVM_OK;
}

/* ---- reports ----------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int cvm_testamd_report(const struct cvm_testamd *pki, const struct cvm_testamd_report_opts *ro,
                       uint8_t out[CVM_SNP_REPORT_LEN])
{
	const struct cvm_testamd_report_opts *r = ro != NULL ? ro : &pki->o.report;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ECDSA_SIG *es = NULL;
	const BIGNUM *br = NULL, *bs = NULL;
	uint8_t der[128], be[48];
	const uint8_t *dp = der;
	size_t der_len = sizeof(der);
	int ret = CVM_E_CRYPTO;

	memset(out, 0, CVM_SNP_REPORT_LEN);
	put_le(out + 0x00, r->version, 4);
	put_le(out + 0x04, r->guest_svn, 4);
	put_le(out + 0x08, r->policy, 8);
	memcpy(out + 0x10, r->family_id, 16);
	memcpy(out + 0x20, r->image_id, 16);
	put_le(out + 0x30, r->vmpl, 4);
	put_le(out + 0x34, CVM_SNP_SIG_ALGO_ECDSA_P384_SHA384, 4);
	put_le(out + 0x38, r->current_tcb, 8);
	put_le(out + 0x40, r->platform_info, 8);
	put_le(out + 0x48, r->signer_info, 4);
	memcpy(out + 0x50, r->report_data, 64);
	memcpy(out + 0x90, r->measurement, 48);
	memcpy(out + 0xC0, r->host_data, 32);
	memcpy(out + 0xE0, r->id_key_digest, 48);
	memcpy(out + 0x110, r->author_key_digest, 48);
	pattern(out + 0x140, 32, 0x90); /* report_id */
	memset(out + 0x160, 0xff, 32);  /* report_id_ma */
	put_le(out + 0x180, r->reported_tcb, 8);
	if (r->version >= 3) {
		out[0x188] = r->cpuid_fam_id;
		out[0x189] = r->cpuid_mod_id;
		out[0x18A] = r->cpuid_step;
	}
	memcpy(out + 0x1A0, r->chip_id, 64);
	put_le(out + 0x1E0, r->committed_tcb, 8);
	out[0x1E8] = 40; /* current build, minor, major */
	out[0x1E9] = 55;
	out[0x1EA] = 1;
	out[0x1EC] = 40;
	out[0x1ED] = 55;
	out[0x1EE] = 1;
	put_le(out + 0x1F0, r->launch_tcb, 8);
	if (r->version >= 5) {
		put_le(out + 0x1F8, r->launch_mit_vector, 8);
		put_le(out + 0x200, r->current_mit_vector, 8);
	}
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, keys[K_VEK]) != 1 ||
	    EVP_DigestSign(ctx, der, &der_len, out, CVM_SNP_SIGNED_LEN) != 1)
		goto done;
	es = d2i_ECDSA_SIG(NULL, &dp, (long)der_len);
	if (es == NULL)
		goto done;
	ECDSA_SIG_get0(es, &br, &bs);
	if (BN_bn2binpad(br, be, 48) != 48)
		goto done;
	for (size_t i = 0; i < 48; i++)
		out[0x2A0 + i] = be[47 - i];
	if (BN_bn2binpad(bs, be, 48) != 48)
		goto done;
	for (size_t i = 0; i < 48; i++)
		out[0x2A0 + 72 + i] = be[47 - i];
	if (r->bad_signature)
		out[0x2A0] ^= 0x01;
	ret = CVM_OK;
done:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	return ret;
}

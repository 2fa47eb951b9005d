/* A mock PKI shaped like AMD's SEV-SNP PKI, built with OpenSSL. See
 * lib/sim/mockamd_lib.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cvmkit/amd.h>
#include <cvmkit/bytes.h>
#include <cvmkit/file.h>
#include <cvmkit/snp.h>

#include "sim/mock_int.h"

#define DAY ((int64_t)24 * 3600)
#define YEAR (365 * DAY)
#define P384_LEN 48u
#define SERIAL_ARK 0x10000u
#define SERIAL_INTERMEDIATE 0x10001u
#define SERIAL_OTHER 0x7777u /* listed on every CRL, so an empty CRL never makes a case pass */

/* The keys and certificates, issuers first. */
enum { K_ARK = CVM_MOCKAMD_ARK, K_INTER = CVM_MOCKAMD_INTERMEDIATE, K_VEK = CVM_MOCKAMD_VEK, K_COUNT };

struct cvm_mockamd {
	struct cvm_mockamd_opts o;
	EVP_PKEY *key[K_COUNT];
	X509 *cert[K_COUNT];
	uint8_t *file[CVM_MOCKAMD_F_COUNT];
	size_t file_len[CVM_MOCKAMD_F_COUNT];
	uint8_t *ark_der;
	size_t ark_der_len;
};

void cvm_mockamd_opts_init(struct cvm_mockamd_opts *o, enum cvm_snp_product product,
                           enum cvm_snp_signer signer, int64_t now)
{
	struct cvm_mockamd_report_opts *r = &o->report;

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
	cvm_mock_fill_pattern(o->hwid, o->hwid_len, 0x31);
	o->with_crl = true;
	o->rsa_bits = CVM_MOCKAMD_RSA_BITS_DEFAULT;

	r->version = 3;
	r->guest_svn = 4;
	r->policy = CVM_SNP_POLICY_RESERVED_ONE | CVM_SNP_POLICY_SMT;
	cvm_mock_fill_pattern(r->family_id, sizeof(r->family_id), 0x10);
	cvm_mock_fill_pattern(r->image_id, sizeof(r->image_id), 0x20);
	r->vmpl = 0;
	r->platform_info = CVM_SNP_PLATFORM_SMT_EN | CVM_SNP_PLATFORM_ECC_EN;
	cvm_mock_fill_pattern(r->report_data, sizeof(r->report_data), 0x40);
	cvm_mock_fill_pattern(r->measurement, sizeof(r->measurement), 0x50);
	cvm_mock_fill_pattern(r->host_data, sizeof(r->host_data), 0x60);
	cvm_mock_fill_pattern(r->id_key_digest, sizeof(r->id_key_digest), 0x70);
	cvm_mock_fill_pattern(r->author_key_digest, sizeof(r->author_key_digest), 0x80);
	cvm_mock_fill_pattern(r->report_id, sizeof(r->report_id), 0x90);
	memset(r->report_id_ma, 0xff, sizeof(r->report_id_ma)); /* no migration agent */
	r->reported_tcb = cvm_snp_tcb_encode(&o->tcb, product);
	r->current_tcb = r->reported_tcb;
	r->committed_tcb = r->reported_tcb;
	r->launch_tcb = r->reported_tcb;
	r->signer_info = (uint32_t)signer << 2;
	/* The CPUID a chip of each product reports (lib/snp maps it back). */
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
	r->current_major = r->committed_major = 1;
	r->current_minor = r->committed_minor = 55;
	r->current_build = r->committed_build = 40;
}

static int opts_check(const struct cvm_mockamd_opts *o)
{
	if (o->signer != CVM_SNP_SIGNER_VCEK && o->signer != CVM_SNP_SIGNER_VLEK)
		return CVM_E_INVAL;
	if (o->product != CVM_SNP_PRODUCT_MILAN && o->product != CVM_SNP_PRODUCT_GENOA &&
	    o->product != CVM_SNP_PRODUCT_TURIN)
		return CVM_E_INVAL;
	if (o->hwid_len == 0 || o->hwid_len > sizeof(o->hwid))
		return CVM_E_INVAL;
	if (o->rsa_bits < CVM_MOCKAMD_RSA_BITS_DEFAULT || o->rsa_bits > CVM_MOCKAMD_RSA_BITS_MAX)
		return CVM_E_INVAL;
	if (o->product_name != NULL && strlen(o->product_name) >= CVM_AMD_PRODUCT_NAME_MAX)
		return CVM_E_INVAL;
	return CVM_OK;
}

/* ---- certificates ------------------------------------------------------ */

/* add_raw_ext adds a non-critical extension whose OCTET STRING holds the
 * `len` DER bytes at `der`. */
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

/* add_int_ext adds an extension holding a DER INTEGER of `v` (AMD's SPL
 * and structVersion extensions). */
static int add_int_ext(X509 *x, const char *oid, uint8_t v)
{
	uint8_t der[4] = {CVM_ASN1_INTEGER, 1, v, 0};

	if (v >= 0x80) {
		der[1] = 2;
		der[2] = 0;
		der[3] = v;
		return add_raw_ext(x, oid, der, 4);
	}
	return add_raw_ext(x, oid, der, 3);
}

/* add_ia5_ext adds an extension holding a DER IA5String (productName,
 * CSP ID). */
static int add_ia5_ext(X509 *x, const char *oid, const char *s)
{
	ASN1_IA5STRING *str = ASN1_IA5STRING_new();
	uint8_t *der = NULL;
	int der_len, r = CVM_E_CRYPTO;

	if (str == NULL || ASN1_STRING_set(str, s, -1) != 1)
		goto out;
	der_len = i2d_ASN1_IA5STRING(str, &der);
	if (der_len > 0)
		r = add_raw_ext(x, oid, der, (size_t)der_len);
out:
	OPENSSL_free(der);
	ASN1_IA5STRING_free(str);
	return r;
}

/* vek_exts adds AMD's VCEK/VLEK extensions: structVersion, productName, the
 * SPLs of the certified TCB, and the hwID (VCEK) or CSP ID (VLEK). */
static int vek_exts(X509 *x, const struct cvm_mockamd_opts *o)
{
	char name[CVM_AMD_PRODUCT_NAME_MAX];
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
		return add_ia5_ext(x, CVM_AMD_OID_CSP_ID, "CN=cvmkit-sim.invalid");
	return add_raw_ext(x, CVM_AMD_OID_HWID, o->hwid, o->hwid_len);
}

static int cert_make(struct cvm_mockamd *pki, int which)
{
	const struct cvm_mockamd_opts *o = &pki->o;
	const char *p = cvm_snp_product_name(o->product);
	bool vlek = o->signer == CVM_SNP_SIGNER_VLEK;
	const struct cvm_mockamd_window *win = which == K_ARK     ? &o->ark
	                                       : which == K_INTER ? &o->intermediate
	                                                          : &o->vek;
	struct cvm_mock_cert c = {
	    /* AMD's VCEKs and VLEKs carry serial 0 */
	    .serial = which == K_ARK     ? SERIAL_ARK
	              : which == K_INTER ? SERIAL_INTERMEDIATE
	                                 : 0,
	    .not_before = win->from,
	    .not_after = win->to,
	    /* AMD's VCEKs and VLEKs carry none of these; the ARK and the
	     * intermediate carry all four */
	    .basic_constraints = which == K_ARK     ? "critical,CA:TRUE"
	                         : which == K_INTER ? "critical,CA:TRUE,pathlen:0"
	                                            : NULL,
	    .key_usage = which == K_ARK     ? "critical,keyCertSign,cRLSign"
	                 : which == K_INTER ? "critical,keyCertSign"
	                                    : NULL,
	    .key_ids = which != K_VEK,
	    .marker = which == K_ARK,
	};
	X509_NAME *name = NULL;
	X509 *x = NULL;
	char cn[64];
	int r;

	if (which == K_ARK)
		(void)snprintf(cn, sizeof(cn), "ARK-%s", p);
	else if (which == K_INTER)
		(void)snprintf(cn, sizeof(cn), "SEV-%s%s", vlek ? "VLEK-" : "", p);
	else
		(void)snprintf(cn, sizeof(cn), "%s", vlek ? "SEV-VLEK" : "SEV-VCEK");
	name = cvm_mock_amd_name(cn);
	if (name == NULL)
		return CVM_E_NOMEM;
	c.name = name;
	r = cvm_mock_cert_new(&c, pki->key[which], which == K_ARK ? NULL : pki->cert[which - 1], &x);
	if (r == CVM_OK && which == K_VEK)
		r = vek_exts(x, o);
	if (r == CVM_OK)
		r = cvm_mock_cert_sign(x, pki->key[which == K_ARK ? K_ARK : which - 1]);
	if (r == CVM_OK) {
		pki->cert[which] = x;
		x = NULL; /* transferred */
	}
	X509_NAME_free(name);
	X509_free(x);
	return r;
}

/* ---- collateral files -------------------------------------------------- */

/* crl_make builds the ARK's CRL: an unrelated serial, plus the
 * intermediate's when it is revoked. */
static int crl_make(struct cvm_mockamd *pki)
{
	const struct cvm_mockamd_opts *o = &pki->o;
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t1 = ASN1_TIME_set(NULL, (time_t)o->crl.from),
	          *t2 = ASN1_TIME_set(NULL, (time_t)o->crl.to);
	uint8_t *der = NULL;
	int n, r = CVM_E_CRYPTO;

	if (crl == NULL || t1 == NULL || t2 == NULL)
		goto out;
	if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
	    X509_CRL_set_issuer_name(crl, X509_get_subject_name(pki->cert[K_ARK])) != 1 ||
	    X509_CRL_set1_lastUpdate(crl, t1) != 1 || X509_CRL_set1_nextUpdate(crl, t2) != 1)
		goto out;
	r = cvm_mock_crl_add_serial(crl, SERIAL_OTHER, t1);
	if (r == CVM_OK && o->revoke_intermediate)
		r = cvm_mock_crl_add_serial(crl, SERIAL_INTERMEDIATE, t1);
	if (r != CVM_OK)
		goto out;
	r = cvm_mock_crl_sign(crl, pki->key[K_ARK]);
	if (r != CVM_OK)
		goto out;
	r = CVM_E_CRYPTO;
	n = i2d_X509_CRL(crl, &der);
	if (n <= 0)
		goto out;
	r = cvm_mock_copy_out(der, (size_t)n, &pki->file[CVM_MOCKAMD_F_CRL],
	                      &pki->file_len[CVM_MOCKAMD_F_CRL]);
out:
	OPENSSL_free(der);
	ASN1_TIME_free(t1);
	ASN1_TIME_free(t2);
	X509_CRL_free(crl);
	return r;
}

/* build_files makes every collateral file from the certificates. */
static int build_files(struct cvm_mockamd *pki)
{
	X509 *chain[2] = {pki->cert[K_INTER], pki->cert[K_ARK]};
	int r;

	r = cvm_mock_der_of(pki->cert[K_ARK], &pki->ark_der, &pki->ark_der_len);
	if (r == CVM_OK)
		r = cvm_mock_pem_chain(&pki->cert[K_ARK], 1, false, &pki->file[CVM_MOCKAMD_F_ARK],
		                       &pki->file_len[CVM_MOCKAMD_F_ARK]);
	if (r == CVM_OK)
		r = cvm_mock_pem_chain(&pki->cert[K_INTER], 1, false, &pki->file[CVM_MOCKAMD_F_INTERMEDIATE],
		                       &pki->file_len[CVM_MOCKAMD_F_INTERMEDIATE]);
	if (r == CVM_OK)
		r = cvm_mock_der_of(pki->cert[K_VEK], &pki->file[CVM_MOCKAMD_F_VEK_DER],
		                    &pki->file_len[CVM_MOCKAMD_F_VEK_DER]);
	if (r == CVM_OK)
		r = cvm_mock_pem_chain(&pki->cert[K_VEK], 1, false, &pki->file[CVM_MOCKAMD_F_VEK_PEM],
		                       &pki->file_len[CVM_MOCKAMD_F_VEK_PEM]);
	if (r == CVM_OK)
		r = cvm_mock_pem_chain(chain, 2, false, &pki->file[CVM_MOCKAMD_F_CERT_CHAIN],
		                       &pki->file_len[CVM_MOCKAMD_F_CERT_CHAIN]);
	if (r == CVM_OK && pki->o.with_crl)
		r = crl_make(pki);
	return r;
}

/* ---- the PKI ------------------------------------------------------------ */

void cvm_mockamd_free(struct cvm_mockamd *pki)
{
	if (pki == NULL)
		return;
	for (size_t i = 0; i < K_COUNT; i++) {
		EVP_PKEY_free(pki->key[i]);
		X509_free(pki->cert[i]);
	}
	for (size_t i = 0; i < CVM_MOCKAMD_F_COUNT; i++)
		free(pki->file[i]);
	free(pki->ark_der);
	free(pki);
}

/* keys_make takes the keys of `from`, or generates them when it is NULL. */
static int keys_make(struct cvm_mockamd *pki, const struct cvm_mockamd *from)
{
	for (size_t i = 0; i < K_COUNT; i++) {
		if (from != NULL) {
			if (EVP_PKEY_up_ref(from->key[i]) != 1)
				return CVM_E_CRYPTO;
			pki->key[i] = from->key[i];
		} else if (i == K_VEK) {
			pki->key[i] = EVP_EC_gen("P-384");
		} else {
			pki->key[i] = EVP_RSA_gen(pki->o.rsa_bits);
		}
		if (pki->key[i] == NULL)
			return CVM_E_CRYPTO;
	}
	return CVM_OK;
}

int cvm_mockamd_new(const struct cvm_mockamd_opts *o, struct cvm_mockamd **out)
{
	return cvm_mockamd_new_keyed(o, NULL, out);
}

int cvm_mockamd_new_keyed(const struct cvm_mockamd_opts *o, const struct cvm_mockamd *from,
                          struct cvm_mockamd **out)
{
	struct cvm_mockamd *pki = NULL;
	int r;

	*out = NULL;
	r = opts_check(o);
	if (r != CVM_OK)
		return r;
	pki = calloc(1, sizeof(*pki));
	if (pki == NULL)
		return CVM_E_NOMEM;
	pki->o = *o;
	r = keys_make(pki, from);
	if (r != CVM_OK)
		goto out;
	for (int i = 0; i < K_COUNT && r == CVM_OK; i++)
		r = cert_make(pki, i);
	if (r == CVM_OK)
		r = build_files(pki);
	if (r != CVM_OK)
		goto out;
	*out = pki;
	pki = NULL; /* transferred */
out:
	ERR_clear_error();
	cvm_mockamd_free(pki);
	return r;
}

const struct cvm_mockamd_opts *cvm_mockamd_opts_of(const struct cvm_mockamd *pki)
{
	return &pki->o;
}

/* ---- reports ------------------------------------------------------------ */

/* sign_p384 signs the `len` bytes at `msg` with ECDSA P-384 / SHA-384 and
 * writes r and s as the ABI's SIGNATURE wants them: each little-endian,
 * zero-extended to 72 bytes. */
static int sign_p384(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t r_le[72], uint8_t s_le[72])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	ECDSA_SIG *es = NULL;
	const BIGNUM *br = NULL, *bs = NULL;
	uint8_t der[128], be[P384_LEN];
	const uint8_t *dp = der;
	size_t der_len = sizeof(der);
	int ret = CVM_E_CRYPTO;

	memset(r_le, 0, CVM_SNP_SIG_COMPONENT_LEN);
	memset(s_le, 0, CVM_SNP_SIG_COMPONENT_LEN);
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha384(), NULL, key) != 1 ||
	    EVP_DigestSign(ctx, der, &der_len, msg, len) != 1)
		goto out;
	es = d2i_ECDSA_SIG(NULL, &dp, (long)der_len);
	if (es == NULL)
		goto out;
	ECDSA_SIG_get0(es, &br, &bs);
	if (BN_bn2binpad(br, be, (int)sizeof(be)) != (int)sizeof(be))
		goto out;
	for (size_t i = 0; i < P384_LEN; i++)
		r_le[i] = be[P384_LEN - 1 - i];
	if (BN_bn2binpad(bs, be, (int)sizeof(be)) != (int)sizeof(be))
		goto out;
	for (size_t i = 0; i < P384_LEN; i++)
		s_le[i] = be[P384_LEN - 1 - i];
	ret = CVM_OK;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ret;
}

/* report_body writes bytes 0x000..0x29F of an ATTESTATION_REPORT, field by
 * field in the ABI's order. */
static void report_body(struct cvm_wr *w, const struct cvm_mockamd_report_opts *r)
{
	cvm_wr_u32le(w, r->version);   /* 0x000 */
	cvm_wr_u32le(w, r->guest_svn); /* 0x004 */
	cvm_wr_u64le(w, r->policy);    /* 0x008 */
	cvm_wr_bytes(w, r->family_id, sizeof(r->family_id));
	cvm_wr_bytes(w, r->image_id, sizeof(r->image_id));
	cvm_wr_u32le(w, r->vmpl); /* 0x030 */
	cvm_wr_u32le(w, CVM_SNP_SIG_ALGO_ECDSA_P384_SHA384);
	cvm_wr_u64le(w, r->current_tcb);   /* 0x038 */
	cvm_wr_u64le(w, r->platform_info); /* 0x040 */
	cvm_wr_u32le(w, r->signer_info);   /* 0x048 */
	cvm_wr_zeros(w, 4);
	cvm_wr_bytes(w, r->report_data, sizeof(r->report_data)); /* 0x050 */
	cvm_wr_bytes(w, r->measurement, sizeof(r->measurement)); /* 0x090 */
	cvm_wr_bytes(w, r->host_data, sizeof(r->host_data));     /* 0x0C0 */
	cvm_wr_bytes(w, r->id_key_digest, sizeof(r->id_key_digest));
	cvm_wr_bytes(w, r->author_key_digest, sizeof(r->author_key_digest));
	cvm_wr_bytes(w, r->report_id, sizeof(r->report_id)); /* 0x140 */
	cvm_wr_bytes(w, r->report_id_ma, sizeof(r->report_id_ma));
	cvm_wr_u64le(w, r->reported_tcb); /* 0x180 */
	if (r->version >= 3) {
		cvm_wr_u8(w, r->cpuid_fam_id);
		cvm_wr_u8(w, r->cpuid_mod_id);
		cvm_wr_u8(w, r->cpuid_step);
		cvm_wr_zeros(w, 21);
	} else {
		cvm_wr_zeros(w, 24);
	}
	cvm_wr_bytes(w, r->chip_id, sizeof(r->chip_id)); /* 0x1A0 */
	cvm_wr_u64le(w, r->committed_tcb);               /* 0x1E0 */
	cvm_wr_u8(w, r->current_build);
	cvm_wr_u8(w, r->current_minor);
	cvm_wr_u8(w, r->current_major);
	cvm_wr_zeros(w, 1);
	cvm_wr_u8(w, r->committed_build);
	cvm_wr_u8(w, r->committed_minor);
	cvm_wr_u8(w, r->committed_major);
	cvm_wr_zeros(w, 1);
	cvm_wr_u64le(w, r->launch_tcb); /* 0x1F0 */
	cvm_wr_u64le(w, r->version >= 5 ? r->launch_mit_vector : 0);
	cvm_wr_u64le(w, r->version >= 5 ? r->current_mit_vector : 0);
	cvm_wr_zeros(w, CVM_SNP_SIGNED_LEN - 0x208u); /* 0x208..0x29F */
}

int cvm_mockamd_report(const struct cvm_mockamd *pki, const struct cvm_mockamd_report_opts *ro,
                       uint8_t out[CVM_SNP_REPORT_LEN])
{
	const struct cvm_mockamd_report_opts *r = ro != NULL ? ro : &pki->o.report;
	uint8_t sig_r[CVM_SNP_SIG_COMPONENT_LEN], sig_s[CVM_SNP_SIG_COMPONENT_LEN];
	struct cvm_wr w;
	int ret;

	memset(out, 0, CVM_SNP_REPORT_LEN);
	cvm_wr_init_fixed(&w, out, CVM_SNP_REPORT_LEN);
	report_body(&w, r);
	if (w.err || w.len != CVM_SNP_SIGNED_LEN)
		return CVM_E_INTERNAL;
	ret = sign_p384(pki->key[K_VEK], out, CVM_SNP_SIGNED_LEN, sig_r, sig_s);
	if (ret != CVM_OK)
		return ret;
	cvm_wr_bytes(&w, sig_r, sizeof(sig_r)); /* 0x2A0 */
	cvm_wr_bytes(&w, sig_s, sizeof(sig_s)); /* 0x2E8 */
	cvm_wr_zeros(&w, CVM_SNP_REPORT_LEN - CVM_SNP_SIGNED_LEN - 2 * CVM_SNP_SIG_COMPONENT_LEN);
	if (w.err || w.len != CVM_SNP_REPORT_LEN)
		return CVM_E_INTERNAL;
	return CVM_OK;
}

/* ---- accessors ---------------------------------------------------------- */

const char *cvm_mockamd_file_name(const struct cvm_mockamd *pki, enum cvm_mockamd_file f)
{
	bool vlek = pki->o.signer == CVM_SNP_SIGNER_VLEK;

	switch (f) {
	case CVM_MOCKAMD_F_ARK:
		return "ark.pem";
	case CVM_MOCKAMD_F_INTERMEDIATE:
		return vlek ? "asvk.pem" : "ask.pem";
	case CVM_MOCKAMD_F_VEK_DER:
		return vlek ? "vlek.der" : "vcek.der";
	case CVM_MOCKAMD_F_VEK_PEM:
		return vlek ? "vlek.pem" : "vcek.pem";
	case CVM_MOCKAMD_F_CERT_CHAIN:
		return "cert_chain.pem";
	case CVM_MOCKAMD_F_CRL:
		return "crl.der";
	default:
		return NULL;
	}
}

void cvm_mockamd_file(const struct cvm_mockamd *pki, enum cvm_mockamd_file f, const uint8_t **p, size_t *len)
{
	*p = NULL;
	*len = 0;
	if ((unsigned)f >= CVM_MOCKAMD_F_COUNT)
		return;
	*p = pki->file[f];
	*len = pki->file_len[f];
}

void cvm_mockamd_ark_der(const struct cvm_mockamd *pki, const uint8_t **der, size_t *len)
{
	*der = pki->ark_der;
	*len = pki->ark_der_len;
}

EVP_PKEY *cvm_mockamd_key(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which)
{
	return (unsigned)which < CVM_MOCKAMD_CERT_COUNT ? pki->key[which] : NULL;
}

X509 *cvm_mockamd_x509(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which)
{
	return (unsigned)which < CVM_MOCKAMD_CERT_COUNT ? pki->cert[which] : NULL;
}

static int path_join(char *buf, size_t cap, const char *dir, const char *name, const char *ext)
{
	int n = snprintf(buf, cap, "%s/%s%s", dir, name, ext);

	return n < 0 || (size_t)n >= cap ? CVM_E_INVAL : CVM_OK;
}

int cvm_mockamd_write_collateral(const struct cvm_mockamd *pki, const char *dir)
{
	char path[4096];
	int r;

	for (int i = 0; i < CVM_MOCKAMD_F_COUNT; i++) {
		if (pki->file[i] == NULL)
			continue;
		r = path_join(path, sizeof(path), dir, cvm_mockamd_file_name(pki, (enum cvm_mockamd_file)i),
		              "");
		if (r != CVM_OK)
			return r;
		r = cvm_file_write(path, pki->file[i], pki->file_len[i], 0644);
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

/* ---- keeping a PKI in a folder ------------------------------------------ */

static const char *key_stem(enum cvm_snp_signer signer, int which)
{
	bool vlek = signer == CVM_SNP_SIGNER_VLEK;

	if (which == K_ARK)
		return "ark";
	if (which == K_INTER)
		return vlek ? "asvk" : "ask";
	return vlek ? "vlek" : "vcek";
}

int cvm_mockamd_save_keys(const struct cvm_mockamd *pki, const char *dir)
{
	char path[4096];
	int r;

	r = cvm_mock_dir_check(dir);
	for (int i = 0; i < K_COUNT && r == CVM_OK; i++) {
		r = path_join(path, sizeof(path), dir, key_stem(pki->o.signer, i), ".key");
		if (r == CVM_OK)
			r = cvm_mock_key_save(pki->key[i], path);
		if (r == CVM_OK)
			r = path_join(path, sizeof(path), dir, key_stem(pki->o.signer, i), ".pem");
		if (r == CVM_OK)
			r = cvm_mock_cert_save(pki->cert[i], path);
	}
	ERR_clear_error();
	return r;
}

int cvm_mockamd_load(const struct cvm_mockamd_opts *o, const char *dir, struct cvm_mockamd **out)
{
	struct cvm_mockamd *pki = NULL;
	char path[4096];
	int r;

	*out = NULL;
	if (o->signer != CVM_SNP_SIGNER_VCEK && o->signer != CVM_SNP_SIGNER_VLEK)
		return CVM_E_INVAL;
	pki = calloc(1, sizeof(*pki));
	if (pki == NULL)
		return CVM_E_NOMEM;
	pki->o = *o;
	for (int i = 0; i < K_COUNT; i++) {
		r = path_join(path, sizeof(path), dir, key_stem(o->signer, i), ".key");
		if (r == CVM_OK)
			r = cvm_mock_key_load(path, &pki->key[i]);
		if (r == CVM_OK)
			r = path_join(path, sizeof(path), dir, key_stem(o->signer, i), ".pem");
		if (r == CVM_OK)
			r = cvm_mock_cert_load(path, &pki->cert[i]);
		if (r != CVM_OK)
			goto out;
		if (X509_check_private_key(pki->cert[i], pki->key[i]) != 1) {
			r = CVM_E_FORMAT;
			goto out;
		}
	}
	/* each certificate issued by the next: VEK by the intermediate, the
	 * intermediate by the ARK, the ARK by itself */
	for (int i = 0; i < K_COUNT; i++) {
		if (X509_check_issued(pki->cert[i == K_ARK ? K_ARK : i - 1], pki->cert[i]) != X509_V_OK) {
			r = CVM_E_FORMAT;
			goto out;
		}
	}
	r = build_files(pki);
	if (r != CVM_OK)
		goto out;
	*out = pki;
	pki = NULL; /* transferred */
out:
	ERR_clear_error();
	cvm_mockamd_free(pki);
	return r;
}

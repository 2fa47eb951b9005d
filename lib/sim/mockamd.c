/* A mock PKI shaped like AMD's SEV-SNP PKI, issued through lib/crypto's
 * issuing interface. See lib/sim/mockamd_lib.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/amd.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
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
	struct cvm_privkey *key[K_COUNT];
	struct cvm_cert *cert[K_COUNT];
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

/* AMD's VCEK and VLEK extensions, non-critical: structVersion, productName,
 * the SPLs of the certified TCB, and the hwID (VCEK: the chip ID's raw
 * bytes as the extension's value) or the CSP ID (VLEK). */
enum { X_STRUCT_VERSION, X_PRODUCT_NAME, X_BL, X_TEE, X_SNP, X_UCODE, X_FMC, X_ID, X_COUNT };

/* struct vek_exts holds the extensions and the DER they point into. */
struct vek_exts {
	struct cvm_issue_ext ext[X_COUNT];
	size_t count;
	uint8_t ints[X_COUNT][4]; /* a DER INTEGER of one byte's value */
	uint8_t product_name[2 + CVM_AMD_PRODUCT_NAME_MAX];
	uint8_t csp_id[64];
};

/* int_ext sets extension `i` to a DER INTEGER of `v` (AMD's SPL and
 * structVersion extensions). */
static void int_ext(struct vek_exts *x, size_t i, const char *oid, uint8_t v)
{
	struct cvm_wr w;

	cvm_wr_init_fixed(&w, x->ints[i], sizeof(x->ints[i]));
	cvm_mock_der_uint(&w, CVM_ASN1_INTEGER, v);
	x->ext[x->count++] = (struct cvm_issue_ext){.oid = oid, .der = x->ints[i], .der_len = w.len};
}

/* ia5_ext sets the next extension to a DER IA5String of `s` in `buf`. */
static int ia5_ext(struct vek_exts *x, const char *oid, const char *s, uint8_t *buf, size_t cap)
{
	struct cvm_wr w;

	cvm_wr_init_fixed(&w, buf, cap);
	cvm_mock_der_tlv(&w, 0x16, (const uint8_t *)s, strlen(s));
	if (w.err)
		return CVM_E_INVAL;
	x->ext[x->count++] = (struct cvm_issue_ext){.oid = oid, .der = buf, .der_len = w.len};
	return CVM_OK;
}

/* vek_exts_make makes AMD's VCEK/VLEK extensions for `o`. */
static int vek_exts_make(struct vek_exts *x, const struct cvm_mockamd_opts *o)
{
	char name[CVM_AMD_PRODUCT_NAME_MAX];
	int r;

	memset(x, 0, sizeof(*x));
	if (o->product_name != NULL)
		(void)snprintf(name, sizeof(name), "%s", o->product_name);
	else if (o->signer == CVM_SNP_SIGNER_VLEK)
		(void)snprintf(name, sizeof(name), "%s", cvm_snp_product_name(o->product));
	else
		(void)snprintf(name, sizeof(name), "%s-B0", cvm_snp_product_name(o->product));
	int_ext(x, X_STRUCT_VERSION, CVM_AMD_OID_STRUCT_VERSION, o->product == CVM_SNP_PRODUCT_TURIN ? 1 : 0);
	r = ia5_ext(x, CVM_AMD_OID_PRODUCT_NAME, name, x->product_name, sizeof(x->product_name));
	if (r != CVM_OK)
		return r;
	int_ext(x, X_BL, CVM_AMD_OID_BL_SPL, o->tcb.bootloader);
	int_ext(x, X_TEE, CVM_AMD_OID_TEE_SPL, o->tcb.tee);
	int_ext(x, X_SNP, CVM_AMD_OID_SNP_SPL, o->tcb.snp);
	int_ext(x, X_UCODE, CVM_AMD_OID_UCODE_SPL, o->tcb.microcode);
	if (o->product == CVM_SNP_PRODUCT_TURIN)
		int_ext(x, X_FMC, CVM_AMD_OID_FMC_SPL, o->tcb.fmc);
	if (o->signer == CVM_SNP_SIGNER_VLEK)
		return ia5_ext(x, CVM_AMD_OID_CSP_ID, "CN=cvmkit-sim.invalid", x->csp_id, sizeof(x->csp_id));
	x->ext[x->count++] =
	    (struct cvm_issue_ext){.oid = CVM_AMD_OID_HWID, .der = o->hwid, .der_len = o->hwid_len};
	return CVM_OK;
}

static int cert_make(struct cvm_mockamd *pki, int which)
{
	const struct cvm_mockamd_opts *o = &pki->o;
	const char *p = cvm_snp_product_name(o->product);
	bool vlek = o->signer == CVM_SNP_SIGNER_VLEK;
	const struct cvm_mockamd_window *win = which == K_ARK     ? &o->ark
	                                       : which == K_INTER ? &o->intermediate
	                                                          : &o->vek;
	struct cvm_name_attr name[CVM_MOCK_NAME_MAX];
	struct vek_exts vx;
	struct cvm_mock_cert c = {
	    .name = name,
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
	char cn[64];
	int r;

	if (which == K_ARK)
		(void)snprintf(cn, sizeof(cn), "ARK-%s", p);
	else if (which == K_INTER)
		(void)snprintf(cn, sizeof(cn), "SEV-%s%s", vlek ? "VLEK-" : "", p);
	else
		(void)snprintf(cn, sizeof(cn), "%s", vlek ? "SEV-VLEK" : "SEV-VCEK");
	c.name_count = cvm_mock_amd_name(cn, name);
	if (which == K_VEK) {
		r = vek_exts_make(&vx, o);
		if (r != CVM_OK)
			return r;
		c.exts = vx.ext;
		c.ext_count = vx.count;
	}
	return cvm_mock_cert_issue(&c, pki->key[which], which == K_ARK ? NULL : pki->cert[which - 1],
	                           pki->key[which == K_ARK ? K_ARK : which - 1], &pki->cert[which]);
}

/* ---- collateral files -------------------------------------------------- */

/* crl_make builds the ARK's CRL: an unrelated serial, plus the
 * intermediate's when it is revoked. */
static int crl_make(struct cvm_mockamd *pki)
{
	const struct cvm_mockamd_opts *o = &pki->o;
	const uint64_t revoked[] = {SERIAL_OTHER, SERIAL_INTERMEDIATE};
	const struct cvm_issue_crl crl = {
	    .this_update = o->crl.from,
	    .next_update = o->crl.to,
	    .revoked = revoked,
	    .revoked_count = o->revoke_intermediate ? 2 : 1,
	    .sig_alg = cvm_mock_sig_alg(pki->key[K_ARK]),
	};

	return cvm_issue_crl(&crl, pki->cert[K_ARK], pki->key[K_ARK], &pki->file[CVM_MOCKAMD_F_CRL],
	                     &pki->file_len[CVM_MOCKAMD_F_CRL]);
}

/* build_files makes every collateral file from the certificates. */
static int build_files(struct cvm_mockamd *pki)
{
	struct cvm_cert *chain[2] = {pki->cert[K_INTER], pki->cert[K_ARK]};
	const uint8_t *der;
	size_t len;
	int r;

	cvm_cert_der(pki->cert[K_ARK], &der, &len);
	r = cvm_mock_copy_out(der, len, &pki->ark_der, &pki->ark_der_len);
	if (r == CVM_OK)
		r = cvm_mock_pem_chain(&pki->cert[K_ARK], 1, false, &pki->file[CVM_MOCKAMD_F_ARK],
		                       &pki->file_len[CVM_MOCKAMD_F_ARK]);
	if (r == CVM_OK)
		r = cvm_mock_pem_chain(&pki->cert[K_INTER], 1, false, &pki->file[CVM_MOCKAMD_F_INTERMEDIATE],
		                       &pki->file_len[CVM_MOCKAMD_F_INTERMEDIATE]);
	cvm_cert_der(pki->cert[K_VEK], &der, &len);
	if (r == CVM_OK)
		r = cvm_mock_copy_out(der, len, &pki->file[CVM_MOCKAMD_F_VEK_DER],
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
		cvm_privkey_free(pki->key[i]);
		cvm_cert_free(pki->cert[i]);
	}
	for (size_t i = 0; i < CVM_MOCKAMD_F_COUNT; i++)
		free(pki->file[i]);
	free(pki->ark_der);
	free(pki);
}

/* keys_make takes the keys of `from`, or generates them when it is NULL. */
static int keys_make(struct cvm_mockamd *pki, const struct cvm_mockamd *from)
{
	int r = CVM_OK;

	for (size_t i = 0; i < K_COUNT && r == CVM_OK; i++) {
		if (from != NULL)
			pki->key[i] = cvm_privkey_dup(from->key[i]);
		else if (i == K_VEK)
			r = cvm_privkey_generate(CVM_PRIVKEY_P384, 0, &pki->key[i]);
		else
			r = cvm_privkey_generate(CVM_PRIVKEY_RSA, pki->o.rsa_bits, &pki->key[i]);
	}
	return r;
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
static int sign_p384(const struct cvm_privkey *key, const uint8_t *msg, size_t len, uint8_t r_le[72],
                     uint8_t s_le[72])
{
	uint8_t be[2 * P384_LEN];
	size_t be_len = 0;
	int r;

	memset(r_le, 0, CVM_SNP_SIG_COMPONENT_LEN);
	memset(s_le, 0, CVM_SNP_SIG_COMPONENT_LEN);
	if (cvm_privkey_type(key) != CVM_PRIVKEY_P384)
		return CVM_E_INVAL;
	r = cvm_privkey_sign(key, CVM_SIG_ECDSA_SHA384, msg, len, be, sizeof(be), &be_len);
	if (r != CVM_OK)
		return r;
	if (be_len != sizeof(be))
		return CVM_E_INTERNAL;
	for (size_t i = 0; i < P384_LEN; i++) {
		r_le[i] = be[P384_LEN - 1 - i];
		s_le[i] = be[2 * P384_LEN - 1 - i];
	}
	return CVM_OK;
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

struct cvm_privkey *cvm_mockamd_key(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which)
{
	return (unsigned)which < CVM_MOCKAMD_CERT_COUNT ? pki->key[which] : NULL;
}

struct cvm_cert *cvm_mockamd_x509(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which)
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
			r = cvm_privkey_save_pem(pki->key[i], path);
		if (r == CVM_OK)
			r = path_join(path, sizeof(path), dir, key_stem(pki->o.signer, i), ".pem");
		if (r == CVM_OK)
			r = cvm_mock_cert_save(pki->cert[i], path);
	}
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
			r = cvm_privkey_load_pem(path, &pki->key[i]);
		if (r == CVM_E_UNSUPPORTED)
			r = CVM_E_FORMAT; /* a key of no kind this PKI holds */
		if (r == CVM_OK)
			r = path_join(path, sizeof(path), dir, key_stem(o->signer, i), ".pem");
		if (r == CVM_OK)
			r = cvm_mock_cert_load(path, &pki->cert[i]);
		if (r != CVM_OK)
			goto out;
		/* AMD's kinds of key: RSA for the ARK and the intermediate, P-384
		 * for the VCEK or VLEK */
		if (cvm_privkey_type(pki->key[i]) != (i == K_VEK ? CVM_PRIVKEY_P384 : CVM_PRIVKEY_RSA) ||
		    !cvm_privkey_matches_cert(pki->key[i], pki->cert[i])) {
			r = CVM_E_FORMAT;
			goto out;
		}
	}
	/* each certificate issued by the next (names and signature): VEK by the
	 * intermediate, the intermediate by the ARK, the ARK by itself */
	for (int i = 0; i < K_COUNT; i++) {
		if (cvm_cert_check_issued(pki->cert[i], pki->cert[i == K_ARK ? K_ARK : i - 1]) != CVM_OK) {
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
	cvm_mockamd_free(pki);
	return r;
}

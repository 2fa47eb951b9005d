/* SEV-SNP authentication in AMD's order:
 *   anchor (built-in ARK, or the caller's root) -> ASK / ASVK -> CRL
 *   -> VCEK / VLEK (and its extensions)
 * once per chain (cvm_amd_chain_authenticate, the warm-path cache), then
 * for each report
 *   structure -> P-384 signature -> product -> reported TCB -> chip ID.
 * Every step goes to the report with the cause of a failure. The host hands
 * over the whole chain, ARK included: the ARK it sends is only ever compared
 * with the anchor, never trusted by itself.
 *
 * Each certificate holds the role AMD gives its place (the KDS interface
 * specification): the ASK ("SEV-<product>") or ASVK ("SEV-VLEK-<product>")
 * is a CA the ARK issued for certificate signing, on the ARK's CRL when
 * revoked; the VCEK ("SEV-VCEK") or VLEK ("SEV-VLEK") is an end entity the
 * ASK or ASVK issued, which AMD gives no key usage and no CRL (a VCEK is
 * superseded by TCB, not revoked); the ARK signs the CRL. Every name is
 * AMD's, OU=Engineering, C=US, L=Santa Clara, ST=CA, O=Advanced Micro
 * Devices, CN=<role>. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>

#include "crypto/crypto_lib.h"

#define BUILTIN_MAX 3
#define RSA_BITS_MIN 2048u /* AMD's keys are 4096-bit; test roots may be smaller */
#define RSA_BITS_MAX 8192u

struct cvm_amd_verified {
	struct cvm_cert *anchor;
	struct cvm_cert *intermediate;
	struct cvm_cert *vek;
	struct cvm_amd_vek info;
};

/* ---- built-in ARKs: parsed and self-checked once per process ---------- */

static struct cvm_cert *builtin_cert[BUILTIN_MAX];
static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;

static void builtin_init(void)
{
	size_t n = 0;
	const struct cvm_amd_ark *arks = cvm_amd_builtin_arks(&n);

	for (size_t i = 0; i < n && i < BUILTIN_MAX; i++) {
		struct cvm_cert *c = NULL;
		unsigned bits = 0;

		if (cvm_cert_parse(arks[i].der, arks[i].der_len, &c) != CVM_OK)
			continue;
		/* A constant: its self-signature and form are checked here once,
		 * and a built-in ARK that failed would simply be unavailable. */
		if (cvm_cert_check_issued(c, c) != CVM_OK || !cvm_cert_signed_rsa_pss_sha384(c) ||
		    cvm_cert_key_type(c, &bits) != CVM_KEY_RSA || bits != 4096) {
			cvm_cert_free(c);
			continue;
		}
		builtin_cert[i] = c;
	}
}

/* builtin_get returns a new reference to built-in ARK `i`, or NULL. */
static struct cvm_cert *builtin_get(size_t i, const struct cvm_amd_ark **ark)
{
	size_t n = 0;
	const struct cvm_amd_ark *arks = cvm_amd_builtin_arks(&n);

	(void)pthread_once(&builtin_once, builtin_init);
	if (i >= n || i >= BUILTIN_MAX)
		return NULL;
	*ark = &arks[i];
	return cvm_cert_dup(builtin_cert[i]);
}

/* ---- small helpers ----------------------------------------------------- */

static void fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == INT64_MAX || gmtime_r(&tt, &tm) == NULL) {
		(void)snprintf(buf, len, "never");
		return;
	}
	(void)strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int window_check(struct cvm_report *rep, const char *step, const char *what, int64_t from,
                        int64_t until, int64_t at)
{
	char a[32], b[32], c[32];

	fmt_time(from, a, sizeof(a));
	fmt_time(until, b, sizeof(b));
	fmt_time(at, c, sizeof(c));
	if (at < from) {
		cvm_report_add(rep, step, false, "%s is not yet valid at %s (valid from %s)", what, c, a);
		return CVM_E_EXPIRED;
	}
	if (at > until) {
		cvm_report_add(rep, step, false, "%s expired at %s (verification time %s)", what, b, c);
		return CVM_E_EXPIRED;
	}
	return CVM_OK;
}

static void narrow(struct cvm_amd_vek *info, int64_t from, int64_t until)
{
	if (from > info->valid_from)
		info->valid_from = from;
	if (until < info->valid_until)
		info->valid_until = until;
}

/* cert_cn copies the subject CN of `c` ("" if none). */
static void cert_cn(const struct cvm_cert *c, char *out, size_t cap)
{
	char subj[256];
	const char *p, *e;
	size_t n;

	cvm_cert_subject(c, subj, sizeof(subj));
	out[0] = '\0';
	p = strstr(subj, "CN = ");
	if (p == NULL)
		return;
	p += 5;
	e = strstr(p, ", ");
	n = e != NULL ? (size_t)(e - p) : strlen(p);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static bool printable(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	return true;
}

static const char *signer_name(enum cvm_snp_signer s)
{
	return s == CVM_SNP_SIGNER_VLEK ? "VLEK" : s == CVM_SNP_SIGNER_VCEK ? "VCEK" : "none";
}

/* certs_from reads one certificate (DER) or a PEM chain, through `pool`. */
static int certs_from(struct cvm_cert_pool *pool, const uint8_t *buf, size_t len, struct cvm_cert ***out,
                      size_t *n)
{
	struct cvm_cert **one = NULL;
	int r;

	*out = NULL;
	*n = 0;
	if (len > 0 && buf[0] == 0x30) {
		one = calloc(1, sizeof(*one)); /* NOLINT(bugprone-sizeof-expression): pointers */
		if (one == NULL)
			return CVM_E_NOMEM;
		r = cvm_cert_parse(buf, len, &one[0]);
		if (r != CVM_OK) {
			free(one);
			return r;
		}
		*out = one;
		*n = 1;
		return CVM_OK;
	}
	return cvm_cert_pool_parse_pem(pool, buf, len, out, n);
}

/* ---- extensions of a VCEK / VLEK -------------------------------------- */

/* ext_uint8 reads an extension holding a DER INTEGER from 0 to 255. */
static int ext_uint8(const struct cvm_cert *c, const char *oid, uint8_t *v)
{
	struct cvm_rd ext, val;
	uint8_t b0 = 0, b1 = 0;
	int r;

	r = cvm_cert_ext(c, oid, &ext);
	if (r != CVM_OK)
		return r;
	if (!cvm_rd_asn1(&ext, &val, CVM_ASN1_INTEGER) || !cvm_rd_empty(&ext))
		return CVM_E_FORMAT;
	if (val.len == 1 && cvm_rd_u8(&val, &b0) && b0 < 0x80) {
		*v = b0;
		return CVM_OK;
	}
	if (val.len == 2 && cvm_rd_u8(&val, &b0) && cvm_rd_u8(&val, &b1) && b0 == 0 && b1 >= 0x80) {
		*v = b1;
		return CVM_OK;
	}
	return CVM_E_FORMAT;
}

/* ext_ia5 reads an extension holding an IA5String of printable ASCII. */
static int ext_ia5(const struct cvm_cert *c, const char *oid, char *out, size_t cap)
{
	struct cvm_rd ext, val;
	int r;

	r = cvm_cert_ext(c, oid, &ext);
	if (r != CVM_OK)
		return r;
	if (!cvm_rd_asn1(&ext, &val, 0x16) || !cvm_rd_empty(&ext) || val.len == 0 || val.len >= cap ||
	    !printable(val.p, val.len))
		return CVM_E_FORMAT;
	memcpy(out, val.p, val.len);
	out[val.len] = '\0';
	return CVM_OK;
}

/* vek_extensions decodes AMD's extensions of the VCEK or VLEK into `info`
 * (kind, product name, SPLs in `product`'s layout, hwID or CSP ID). */
static int vek_extensions(const struct cvm_cert *c, enum cvm_snp_signer signer, struct cvm_amd_vek *info,
                          struct cvm_report *rep, const char *step)
{
	struct cvm_rd hwid;
	bool has_hwid, has_csp;
	uint8_t sv = 0;
	int r;

	info->kind = signer;
	r = ext_ia5(c, CVM_AMD_OID_PRODUCT_NAME, info->product_name, sizeof(info->product_name));
	if (r != CVM_OK) {
		cvm_report_add(rep, step, false,
		               "the %s has no readable productName extension (%s, an IA5String)",
		               signer_name(signer), CVM_AMD_OID_PRODUCT_NAME);
		return CVM_E_FORMAT;
	}
	if (ext_uint8(c, CVM_AMD_OID_STRUCT_VERSION, &sv) == CVM_OK)
		info->struct_version = sv;
	r = ext_uint8(c, CVM_AMD_OID_BL_SPL, &info->tcb.bootloader);
	if (r == CVM_OK)
		r = ext_uint8(c, CVM_AMD_OID_TEE_SPL, &info->tcb.tee);
	if (r == CVM_OK)
		r = ext_uint8(c, CVM_AMD_OID_SNP_SPL, &info->tcb.snp);
	if (r == CVM_OK)
		r = ext_uint8(c, CVM_AMD_OID_UCODE_SPL, &info->tcb.microcode);
	if (r != CVM_OK) {
		cvm_report_add(rep, step, false,
		               "the %s lacks a readable TCB extension (blSPL, teeSPL, snpSPL, ucodeSPL: "
		               "INTEGERs from 0 to 255)",
		               signer_name(signer));
		return CVM_E_FORMAT;
	}
	if (ext_uint8(c, CVM_AMD_OID_FMC_SPL, &info->tcb.fmc) == CVM_OK)
		info->tcb.has_fmc = true;
	has_hwid = cvm_cert_ext(c, CVM_AMD_OID_HWID, &hwid) == CVM_OK;
	has_csp = ext_ia5(c, CVM_AMD_OID_CSP_ID, info->csp_id, sizeof(info->csp_id)) == CVM_OK;
	if (signer == CVM_SNP_SIGNER_VCEK) {
		if (!has_hwid || has_csp || (hwid.len != 64 && hwid.len != 8)) {
			cvm_report_add(rep, step, false,
			               "not a VCEK: it needs a hwID extension of 64 bytes (8 on Turin) and "
			               "no CSP ID (it has %s, %zu bytes%s)",
			               has_hwid ? "a hwID" : "no hwID", has_hwid ? hwid.len : (size_t)0,
			               has_csp ? ", and a CSP ID" : "");
			return CVM_E_MISMATCH;
		}
		memcpy(info->hwid, hwid.p, hwid.len);
		info->hwid_len = hwid.len;
	} else if (!has_csp || has_hwid) {
		cvm_report_add(rep, step, false,
		               "not a VLEK: it needs a CSP ID extension (%s) and no hwID (it has %s%s)",
		               CVM_AMD_OID_CSP_ID, has_csp ? "a CSP ID" : "no CSP ID",
		               has_hwid ? " and a hwID" : "");
		return CVM_E_MISMATCH;
	}
	return CVM_OK;
}

/* ---- the chain --------------------------------------------------------- */

/* amd_named is true when `c` is named as AMD names its SEV certificates,
 * with CN `cn`. */
static bool amd_named(const struct cvm_cert *c, const char *cn)
{
	const struct cvm_name_attr name[] = {
	    {"OU", "Engineering"},           {"C", "US"}, {"L", "Santa Clara"}, {"ST", "CA"},
	    {"O", "Advanced Micro Devices"}, {"CN", cn}};

	return cvm_cert_subject_is(c, name, sizeof(name) / sizeof(name[0]));
}

/* intermediate_role checks the ASK or ASVK: AMD's name for the product its
 * CN names (a known one), a CA, and a keyUsage extension that allows
 * certificate signing. */
static int intermediate_role(const struct cvm_cert *c, enum cvm_snp_signer kind, enum cvm_snp_product product,
                             const char *what, const char *step, struct cvm_report *rep)
{
	uint32_t ku = 0;
	char cn[64];

	(void)snprintf(cn, sizeof(cn), "SEV-%s%s", kind == CVM_SNP_SIGNER_VLEK ? "VLEK-" : "",
	               cvm_snp_product_name(product));
	if (product == CVM_SNP_PRODUCT_UNKNOWN || !amd_named(c, cn)) {
		cvm_report_add(
		    rep, step, false,
		    "%s is not named as AMD names an %s: OU = Engineering, C = US, L = Santa Clara, "
		    "ST = CA, O = Advanced Micro Devices, CN = SEV-%s<Milan, Genoa or Turin>",
		    what, kind == CVM_SNP_SIGNER_VLEK ? "ASVK" : "ASK",
		    kind == CVM_SNP_SIGNER_VLEK ? "VLEK-" : "");
		return CVM_E_CHAIN;
	}
	if (!cvm_cert_is_ca(c) || !cvm_cert_key_usage(c, &ku) || (ku & CVM_KU_KEY_CERT_SIGN) == 0) {
		cvm_report_add(
		    rep, step, false,
		    "%s is not a CA with a key usage extension allowing keyCertSign, as AMD issues "
		    "it",
		    what);
		return CVM_E_CHAIN;
	}
	return CVM_OK;
}

/* vek_role checks the VCEK or VLEK: AMD's name for its kind, an end entity,
 * and, should it carry a keyUsage extension (AMD's carry none), one for
 * digital signature that signs no certificate or CRL. */
static int vek_role(const struct cvm_cert *c, enum cvm_snp_signer signer, const char *what, const char *step,
                    struct cvm_report *rep)
{
	const char *cn = signer == CVM_SNP_SIGNER_VLEK ? "SEV-VLEK" : "SEV-VCEK";
	uint32_t ku = 0;

	if (!amd_named(c, cn)) {
		cvm_report_add(
		    rep, step, false,
		    "%s is not named as AMD names it: OU = Engineering, C = US, L = Santa Clara, ST = "
		    "CA, O = Advanced Micro Devices, CN = %s",
		    what, cn);
		return CVM_E_CHAIN;
	}
	if (cvm_cert_claims_ca(c)) {
		cvm_report_add(rep, step, false,
		               "%s is a CA (basicConstraints CA:TRUE); AMD's is an end entity", what);
		return CVM_E_CHAIN;
	}
	if (cvm_cert_key_usage(c, &ku) &&
	    ((ku & CVM_KU_DIGITAL_SIGNATURE) == 0 || (ku & (CVM_KU_KEY_CERT_SIGN | CVM_KU_CRL_SIGN)) != 0)) {
		cvm_report_add(rep, step, false,
		               "%s has a key usage extension that does not allow digitalSignature, or allows "
		               "certificate or CRL signing",
		               what);
		return CVM_E_CHAIN;
	}
	return CVM_OK;
}

/* cert_form checks what AMD's certificates all share: RSASSA-PSS with
 * SHA-384, no critical extension OpenSSL does not know. */
static int cert_form(const struct cvm_cert *c, const char *step, const char *what, struct cvm_report *rep)
{
	if (!cvm_cert_signed_rsa_pss_sha384(c)) {
		cvm_report_add(rep, step, false,
		               "%s is not signed with RSASSA-PSS (SHA-384, MGF1 SHA-384, 48-byte salt), as "
		               "AMD signs every SEV certificate",
		               what);
		return CVM_E_CHAIN;
	}
	if (cvm_cert_has_unknown_critical(c)) {
		cvm_report_add(rep, step, false, "%s has an unknown critical extension", what);
		return CVM_E_CHAIN;
	}
	return CVM_OK;
}

static int rsa_key_check(const struct cvm_cert *c, const char *step, const char *what, struct cvm_report *rep,
                         unsigned *bits)
{
	if (cvm_cert_key_type(c, bits) != CVM_KEY_RSA || *bits < RSA_BITS_MIN || *bits > RSA_BITS_MAX) {
		cvm_report_add(rep, step, false, "%s does not hold an RSA key of %u to %u bits", what,
		               RSA_BITS_MIN, RSA_BITS_MAX);
		return CVM_E_CHAIN;
	}
	return CVM_OK;
}

/* issued_check reports `child` not issued or signed by `issuer`. */
static int issued_check(const struct cvm_cert *child, const struct cvm_cert *issuer, const char *step,
                        const char *what, struct cvm_report *rep)
{
	char iss[256];
	int r;

	r = cvm_cert_check_issued(child, issuer);
	if (r == CVM_OK)
		return CVM_OK;
	cvm_cert_subject(issuer, iss, sizeof(iss));
	cvm_report_add(rep, step, false, "%s is not %s by '%s'", what,
	               r == CVM_E_SIGNATURE ? "validly signed" : "issued", iss);
	return r;
}

struct chain_in {
	struct cvm_cert *intermediate; /* first certificate of the chosen file */
	struct cvm_cert *ark;          /* the ARK the host sent, if any */
};

/* intermediate_kind reads "SEV-<product>" (ASK) or "SEV-VLEK-<product>"
 * (ASVK) from a CN. */
static bool intermediate_kind(const char *cn, enum cvm_snp_signer *kind, enum cvm_snp_product *product)
{
	if (strncmp(cn, "SEV-VLEK-", 9) == 0) {
		*kind = CVM_SNP_SIGNER_VLEK;
		*product = cvm_snp_product_parse(cn + 9, strlen(cn + 9));
		return true;
	}
	if (strncmp(cn, "SEV-", 4) == 0) {
		*kind = CVM_SNP_SIGNER_VCEK;
		*product = cvm_snp_product_parse(cn + 4, strlen(cn + 4));
		return true;
	}
	return false;
}

/* chain_pick finds the intermediate for `signer` among the files that may
 * hold it (the first certificate of each), and the ARK the host sent. */
static int chain_pick(const struct cvm_amd_collateral *c, enum cvm_snp_signer signer,
                      struct cvm_cert_pool *pool, struct chain_in *in, struct cvm_report *rep)
{
	const struct {
		const char *name;
		const uint8_t *buf;
		size_t len;
	} vcek_files[3] = {{"ask.pem", c->ask, c->ask_len},
	                   {"cert_chain.pem", c->cert_chain, c->cert_chain_len},
	                   {"asvk.pem", c->asvk, c->asvk_len}},
	  vlek_files[3] = {{"asvk.pem", c->asvk, c->asvk_len},
	                   {"cert_chain.pem", c->cert_chain, c->cert_chain_len},
	                   {"ask.pem", c->ask, c->ask_len}};
	const size_t nfiles = 3;
	const char *role = signer == CVM_SNP_SIGNER_VLEK ? "asvk" : "ask";
	char seen[160] = "";
	int r;

	for (size_t i = 0; i < nfiles; i++) {
		struct cvm_cert **certs = NULL;
		enum cvm_snp_signer kind = CVM_SNP_SIGNER_NONE;
		enum cvm_snp_product product;
		size_t n = 0;
		char cn[64];

		const char *name = signer == CVM_SNP_SIGNER_VLEK ? vlek_files[i].name : vcek_files[i].name;
		const uint8_t *buf = signer == CVM_SNP_SIGNER_VLEK ? vlek_files[i].buf : vcek_files[i].buf;
		size_t len = signer == CVM_SNP_SIGNER_VLEK ? vlek_files[i].len : vcek_files[i].len;

		if (buf == NULL)
			continue;
		r = certs_from(pool, buf, len, &certs, &n);
		if (r != CVM_OK) {
			cvm_report_add(rep, role, false, "%s does not hold a DER or PEM certificate", name);
			return r == CVM_E_NOMEM ? r : CVM_E_FORMAT;
		}
		cert_cn(certs[0], cn, sizeof(cn));
		if (intermediate_kind(cn, &kind, &product) && kind == signer) {
			in->intermediate = cvm_cert_dup(certs[0]);
			if (n > 1 && in->ark == NULL)
				in->ark = cvm_cert_dup(certs[n - 1]);
			cvm_certs_free(certs, n);
			return CVM_OK;
		}
		len = strlen(seen);
		(void)snprintf(seen + len, sizeof(seen) - len, "%s%s holds '%s'", len ? ", " : "", name, cn);
		cvm_certs_free(certs, n);
	}
	cvm_report_add(rep, role, false,
	               "the report is signed by a %s, which needs an %s named 'SEV-%s<product>'; none was "
	               "given (%s)",
	               signer_name(signer), signer == CVM_SNP_SIGNER_VLEK ? "ASVK" : "ASK",
	               signer == CVM_SNP_SIGNER_VLEK ? "VLEK-" : "", seen[0] ? seen : "no such file");
	return CVM_E_CHAIN;
}

/* anchor_pick sets v->anchor: the caller's root, or the built-in ARK equal
 * to the one the host sent, or (when it sent none) the built-in ARK that
 * issued the intermediate. */
static int anchor_pick(struct cvm_amd_verified *v, const struct chain_in *in, const uint8_t *root_der,
                       size_t root_der_len, struct cvm_cert_pool *pool, enum cvm_snp_product *product,
                       struct cvm_report *rep)
{
	const struct cvm_amd_ark *ark = NULL;
	size_t n = 0;
	char cn[64], iss[256], subj[256];
	int r;

	*product = CVM_SNP_PRODUCT_UNKNOWN;
	if (root_der != NULL) {
		struct cvm_cert **certs = NULL;

		r = certs_from(pool, root_der, root_der_len, &certs, &n);
		if (r != CVM_OK || n != 1) {
			cvm_certs_free(certs, n);
			cvm_report_add(rep, "ark", false, "the given root is not one DER or PEM certificate");
			return r == CVM_E_NOMEM ? r : CVM_E_FORMAT;
		}
		v->anchor = cvm_cert_dup(certs[0]);
		cvm_certs_free(certs, n);
		cert_cn(v->anchor, cn, sizeof(cn));
		if (strncmp(cn, "ARK-", 4) == 0)
			*product = cvm_snp_product_parse(cn + 4, strlen(cn + 4));
		v->info.root_builtin = false;
		(void)snprintf(v->info.root_name, sizeof(v->info.root_name), "%s", cn);
		if (in->ark != NULL && !cvm_cert_equal(in->ark, v->anchor)) {
			cvm_report_add(
			    rep, "ark", false,
			    "the collateral's ARK is not the root given explicitly; the chain does "
			    "not end in it");
			return CVM_E_CHAIN;
		}
		return CVM_OK;
	}
	cvm_amd_builtin_arks(&n);
	cvm_cert_issuer(in->intermediate, iss, sizeof(iss));
	for (size_t i = 0; i < n && v->anchor == NULL; i++) {
		struct cvm_cert *b = builtin_get(i, &ark);

		if (b == NULL)
			continue;
		cvm_cert_subject(b, subj, sizeof(subj));
		if ((in->ark != NULL && cvm_cert_equal(in->ark, b)) ||
		    (in->ark == NULL && strcmp(iss, subj) == 0)) {
			v->anchor = b;
			*product = ark->product;
			(void)snprintf(v->info.root_name, sizeof(v->info.root_name), "%s", ark->name);
		} else {
			cvm_cert_free(b);
		}
	}
	if (v->anchor == NULL) {
		if (in->ark != NULL) {
			cert_cn(in->ark, cn, sizeof(cn));
			cvm_report_add(
			    rep, "ark", false,
			    "the chain's ARK '%s' is not one of AMD's ARKs built into cvmkit "
			    "(Milan, Genoa, Turin): it is not trusted (to trust another root, name it as "
			    "the anchor: cvm quote verify --root, cvm collateral --amd-root, "
			    "cvm-verifierd [trust] amd_root)",
			    cn);
		} else {
			cvm_report_add(
			    rep, "ark", false,
			    "the intermediate's issuer '%s' is none of AMD's ARKs built into cvmkit "
			    "(Milan, Genoa, Turin)",
			    iss);
		}
		return CVM_E_CHAIN;
	}
	v->info.root_builtin = true;
	return CVM_OK;
}

/* crl_check verifies AMD's CRL: issued and signed by the ARK, current,
 * and listing neither the intermediate nor the ARK. */
static int crl_check(struct cvm_amd_verified *v, const struct cvm_amd_collateral *c, int64_t at,
                     const char *role_name, struct cvm_report *rep)
{
	struct cvm_crl *crl = NULL;
	char serial[80], d1[32], d2[32];
	uint32_t ku = 0;
	int r;

	if (c->crl == NULL) {
		cvm_report_add(rep, "crl", true,
		               "no CRL given: revocation of the %s was not checked (the policy decides "
		               "whether that is acceptable: snp.require_crl)",
		               role_name);
		return CVM_OK;
	}
	r = cvm_crl_parse(c->crl, c->crl_len, &crl);
	if (r != CVM_OK) {
		cvm_report_add(rep, "crl", false, "the CRL is not a DER or PEM CRL");
		return r == CVM_E_NOMEM ? r : CVM_E_FORMAT;
	}
	if (!cvm_crl_signed_rsa_pss_sha384(crl)) {
		cvm_report_add(rep, "crl", false,
		               "the CRL is not signed with RSASSA-PSS (SHA-384), as AMD's are");
		r = CVM_E_CHAIN;
		goto out;
	}
	if (cvm_cert_key_usage(v->anchor, &ku) && (ku & CVM_KU_CRL_SIGN) == 0) {
		cvm_report_add(rep, "crl", false,
		               "the ARK '%s' may not sign CRLs (its key usage lacks cRLSign), so the CRL "
		               "cannot be its",
		               v->info.root_name);
		r = CVM_E_CHAIN;
		goto out;
	}
	r = cvm_crl_check_issued(crl, v->anchor);
	if (r != CVM_OK) {
		cvm_report_add(rep, "crl", false, "the CRL is not %s by the ARK '%s'",
		               r == CVM_E_SIGNATURE ? "validly signed" : "issued", v->info.root_name);
		goto out;
	}
	r = window_check(rep, "crl", "the CRL", cvm_crl_this_update(crl), cvm_crl_next_update(crl), at);
	if (r != CVM_OK)
		goto out;
	narrow(&v->info, cvm_crl_this_update(crl), cvm_crl_next_update(crl));
	if (cvm_crl_revokes(crl, v->intermediate)) {
		cvm_cert_serial(v->intermediate, serial, sizeof(serial));
		cvm_report_add(rep, "crl", false, "the %s (serial %s) is revoked by the ARK's CRL", role_name,
		               serial);
		r = CVM_E_REVOKED;
		goto out;
	}
	if (cvm_crl_revokes(crl, v->anchor)) {
		cvm_report_add(rep, "crl", false, "the ARK's CRL revokes the ARK itself");
		r = CVM_E_REVOKED;
		goto out;
	}
	fmt_time(cvm_crl_this_update(crl), d1, sizeof(d1));
	fmt_time(cvm_crl_next_update(crl), d2, sizeof(d2));
	v->info.crl_checked = true;
	cvm_report_add(rep, "crl", true,
	               "signed by the ARK, issued %s, next update %s; the %s is not revoked", d1, d2,
	               role_name);
out:
	cvm_crl_free(crl);
	return r;
}

/* product_agree resolves the chain's product line from the anchor, the
 * intermediate's name and the VCEK's product name: every one that names a
 * product must name the same. */
static int product_agree(struct cvm_amd_verified *v, enum cvm_snp_product anchor_p,
                         enum cvm_snp_product inter_p, const char *step, struct cvm_report *rep)
{
	enum cvm_snp_product vek_p =
	    cvm_snp_product_parse(v->info.product_name, strlen(v->info.product_name));
	enum cvm_snp_product p = anchor_p;

	if (p == CVM_SNP_PRODUCT_UNKNOWN)
		p = inter_p;
	if (p == CVM_SNP_PRODUCT_UNKNOWN)
		p = vek_p;
	if (p == CVM_SNP_PRODUCT_UNKNOWN || (anchor_p != CVM_SNP_PRODUCT_UNKNOWN && anchor_p != p) ||
	    (inter_p != CVM_SNP_PRODUCT_UNKNOWN && inter_p != p) ||
	    (vek_p != CVM_SNP_PRODUCT_UNKNOWN && vek_p != p) || vek_p == CVM_SNP_PRODUCT_UNKNOWN) {
		cvm_report_add(
		    rep, step, false,
		    "the chain does not name one product: ARK %s, intermediate %s, %s product name "
		    "'%s'",
		    cvm_snp_product_name(anchor_p), cvm_snp_product_name(inter_p), signer_name(v->info.kind),
		    v->info.product_name);
		return CVM_E_MISMATCH;
	}
	v->info.product = p;
	if (p == CVM_SNP_PRODUCT_TURIN && !v->info.tcb.has_fmc) {
		cvm_report_add(rep, step, false, "a Turin %s must carry the fmcSPL extension (%s)",
		               signer_name(v->info.kind), CVM_AMD_OID_FMC_SPL);
		return CVM_E_FORMAT;
	}
	if (p != CVM_SNP_PRODUCT_TURIN)
		v->info.tcb.has_fmc = false; /* only Turin's layout has an FMC byte */
	v->info.tcb.raw = cvm_snp_tcb_encode(&v->info.tcb, p);
	return CVM_OK;
}

void cvm_amd_verified_free(struct cvm_amd_verified *v)
{
	if (v == NULL)
		return;
	cvm_cert_free(v->anchor);
	cvm_cert_free(v->intermediate);
	cvm_cert_free(v->vek);
	free(v);
}

const struct cvm_amd_vek *cvm_amd_verified_vek(const struct cvm_amd_verified *v)
{
	return v != NULL ? &v->info : NULL;
}

static void tcb_text(const struct cvm_snp_tcb *t, char *buf, size_t len)
{
	if (t->has_fmc)
		(void)snprintf(buf, len, "fmc %u, bootloader %u, tee %u, snp %u, microcode %u", t->fmc,
		               t->bootloader, t->tee, t->snp, t->microcode);
	else
		(void)snprintf(buf, len, "bootloader %u, tee %u, snp %u, microcode %u", t->bootloader, t->tee,
		               t->snp, t->microcode);
}

/* chain_head checks the anchor, the intermediate (ASK or ASVK) for `signer`
 * and the CRL when `c` has one, into `v`: everything but the VCEK or VLEK. */
static int chain_head(struct cvm_amd_verified *v, const struct cvm_amd_collateral *c,
                      enum cvm_snp_signer signer, const uint8_t *root_der, size_t root_der_len, int64_t at,
                      struct cvm_report *rep, enum cvm_snp_product *anchor_p, enum cvm_snp_product *inter_p)
{
	struct cvm_cert_pool *pool = NULL;
	struct chain_in in = {NULL, NULL};
	enum cvm_snp_signer kind = CVM_SNP_SIGNER_NONE;
	const char *role = signer == CVM_SNP_SIGNER_VLEK ? "asvk" : "ask";
	const char *role_name = signer == CVM_SNP_SIGNER_VLEK ? "ASVK" : "ASK";
	char cn[64], what[96];
	unsigned bits = 0;
	int r;

	*anchor_p = CVM_SNP_PRODUCT_UNKNOWN;
	*inter_p = CVM_SNP_PRODUCT_UNKNOWN;
	v->info.valid_from = INT64_MIN;
	v->info.valid_until = INT64_MAX;
	r = cvm_cert_pool_new(&pool);
	if (r != CVM_OK)
		goto out;
	/* The built-in ARKs go into the pool, so that an ARK file equal to one
	 * of them is recognised by its bytes and never parsed again. */
	{
		size_t n = 0;
		const struct cvm_amd_ark *ark = NULL;

		cvm_amd_builtin_arks(&n);
		for (size_t i = 0; i < n; i++) {
			struct cvm_cert *b = builtin_get(i, &ark);

			if (b != NULL)
				cvm_cert_pool_add(pool, b);
			cvm_cert_free(b);
		}
	}

	r = chain_pick(c, signer, pool, &in, rep);
	if (r != CVM_OK)
		goto out;
	if (c->ark != NULL) {
		struct cvm_cert **certs = NULL;
		size_t n = 0;

		r = certs_from(pool, c->ark, c->ark_len, &certs, &n);
		if (r != CVM_OK || n != 1) {
			cvm_certs_free(certs, n);
			cvm_report_add(rep, "ark", false, "ark.pem does not hold one certificate");
			r = r == CVM_E_NOMEM ? r : CVM_E_FORMAT;
			goto out;
		}
		cvm_cert_free(in.ark);
		in.ark = cvm_cert_dup(certs[0]);
		cvm_certs_free(certs, n);
	}

	/* The anchor. */
	r = anchor_pick(v, &in, root_der, root_der_len, pool, anchor_p, rep);
	if (r != CVM_OK)
		goto out;
	r = window_check(rep, "ark", "the ARK", cvm_cert_not_before(v->anchor), cvm_cert_not_after(v->anchor),
	                 at);
	if (r != CVM_OK)
		goto out;
	narrow(&v->info, cvm_cert_not_before(v->anchor), cvm_cert_not_after(v->anchor));
	if (!v->info.root_builtin) {
		/* A caller's root is checked on every use: self-issued and
		 * self-signed, RSA, RSASSA-PSS. */
		r = issued_check(v->anchor, v->anchor, "ark", "the given root (not self-signed)", rep);
		if (r != CVM_OK)
			goto out;
		r = cert_form(v->anchor, "ark", "the given root", rep);
		if (r != CVM_OK)
			goto out;
		r = rsa_key_check(v->anchor, "ark", "the given root", rep, &bits);
		if (r != CVM_OK)
			goto out;
	}
	cvm_report_add(rep, "ark", true, "trust anchor '%s' (%s)%s", v->info.root_name,
	               v->info.root_builtin ? "built in" : "given explicitly",
	               in.ark != NULL ? "; the collateral's ARK is this one" : "");

	/* The intermediate: ASK or ASVK. */
	v->intermediate = in.intermediate;
	in.intermediate = NULL;
	cert_cn(v->intermediate, cn, sizeof(cn));
	(void)intermediate_kind(cn, &kind, inter_p);
	(void)snprintf(what, sizeof(what), "the %s '%s'", role_name, cn);
	r = window_check(rep, role, what, cvm_cert_not_before(v->intermediate),
	                 cvm_cert_not_after(v->intermediate), at);
	if (r != CVM_OK)
		goto out;
	narrow(&v->info, cvm_cert_not_before(v->intermediate), cvm_cert_not_after(v->intermediate));
	r = cert_form(v->intermediate, role, what, rep);
	if (r != CVM_OK)
		goto out;
	r = rsa_key_check(v->intermediate, role, what, rep, &bits);
	if (r != CVM_OK)
		goto out;
	r = intermediate_role(v->intermediate, kind, *inter_p, what, role, rep);
	if (r != CVM_OK)
		goto out;
	r = issued_check(v->intermediate, v->anchor, role, what, rep);
	if (r != CVM_OK)
		goto out;
	/* AMD has a handful of ASKs and ASVKs (one of each per product, valid
	 * for 25 years), and OpenSSL 3.0 spends as long parsing one as
	 * verifying its signature: one that verified under an anchor keeps its
	 * parsed form for later parses of the same bytes (lib/crypto's cache;
	 * every check is still made every time). */
	cvm_cert_cache_keep(v->intermediate);
	cvm_report_add(rep, role, true, "'%s' (RSA-%u) signed by the ARK, valid at the verification time", cn,
	               bits);

	r = crl_check(v, c, at, role_name, rep);
	if (r != CVM_OK)
		goto out;

out:
	cvm_cert_free(in.intermediate);
	cvm_cert_free(in.ark);
	cvm_cert_pool_free(pool);
	return r;
}

int cvm_amd_chain_authenticate(const struct cvm_amd_collateral *c, enum cvm_snp_signer signer,
                               const uint8_t *root_der, size_t root_der_len, int64_t at,
                               struct cvm_report *rep, struct cvm_amd_verified **out)
{
	struct cvm_amd_verified *v = NULL;
	enum cvm_snp_product anchor_p = CVM_SNP_PRODUCT_UNKNOWN, inter_p = CVM_SNP_PRODUCT_UNKNOWN;
	const char *role_name = signer == CVM_SNP_SIGNER_VLEK ? "ASVK" : "ASK";
	const char *vek_step = signer == CVM_SNP_SIGNER_VLEK ? "vlek" : "vcek";
	const uint8_t *vek_bytes;
	size_t vek_len;
	char what[96], tcb[96];
	int r;

	*out = NULL;
	if (c == NULL || (signer != CVM_SNP_SIGNER_VCEK && signer != CVM_SNP_SIGNER_VLEK))
		return CVM_E_INVAL;
	vek_bytes = signer == CVM_SNP_SIGNER_VLEK ? c->vlek : c->vcek;
	vek_len = signer == CVM_SNP_SIGNER_VLEK ? c->vlek_len : c->vcek_len;
	if (vek_bytes == NULL) {
		cvm_report_add(rep, vek_step, false,
		               "the report is signed by a %s, and the collateral has no %s",
		               signer_name(signer), signer == CVM_SNP_SIGNER_VLEK ? "vlek.der" : "vcek.der");
		return CVM_E_CHAIN;
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return CVM_E_NOMEM;
	r = chain_head(v, c, signer, root_der, root_der_len, at, rep, &anchor_p, &inter_p);
	if (r != CVM_OK)
		goto out;

	/* The VCEK or VLEK. */
	r = cvm_cert_parse(vek_bytes, vek_len, &v->vek);
	if (r != CVM_OK) {
		cvm_report_add(rep, vek_step, false, "the %s is not a DER or PEM certificate",
		               signer_name(signer));
		r = r == CVM_E_NOMEM ? r : CVM_E_FORMAT;
		goto out;
	}
	(void)snprintf(what, sizeof(what), "the %s", signer_name(signer));
	r = window_check(rep, vek_step, what, cvm_cert_not_before(v->vek), cvm_cert_not_after(v->vek), at);
	if (r != CVM_OK)
		goto out;
	narrow(&v->info, cvm_cert_not_before(v->vek), cvm_cert_not_after(v->vek));
	r = cert_form(v->vek, vek_step, what, rep);
	if (r != CVM_OK)
		goto out;
	if (cvm_cert_key_type(v->vek, NULL) != CVM_KEY_EC_P384) {
		cvm_report_add(rep, vek_step, false, "the %s does not hold a P-384 key", signer_name(signer));
		r = CVM_E_CHAIN;
		goto out;
	}
	r = vek_role(v->vek, signer, what, vek_step, rep);
	if (r != CVM_OK)
		goto out;
	r = issued_check(v->vek, v->intermediate, vek_step, what, rep);
	if (r != CVM_OK)
		goto out;
	r = vek_extensions(v->vek, signer, &v->info, rep, vek_step);
	if (r != CVM_OK)
		goto out;
	r = product_agree(v, anchor_p, inter_p, vek_step, rep);
	if (r != CVM_OK)
		goto out;
	tcb_text(&v->info.tcb, tcb, sizeof(tcb));
	cvm_report_add(rep, vek_step, true, "%s signed by the %s, product '%s' (%s), TCB %s%s%s",
	               signer_name(signer), role_name, v->info.product_name,
	               cvm_snp_product_name(v->info.product), tcb,
	               signer == CVM_SNP_SIGNER_VLEK ? ", CSP " : "",
	               signer == CVM_SNP_SIGNER_VLEK ? v->info.csp_id : "");
	*out = v;
	v = NULL; /* transferred */
out:
	cvm_amd_verified_free(v);
	return r;
}

int cvm_amd_item_authenticate(enum cvm_amd_item_kind kind, enum cvm_snp_signer signer, const uint8_t *body,
                              size_t len, const uint8_t *chain, size_t chain_len, const uint8_t *root_der,
                              size_t root_der_len, int64_t at, struct cvm_report *rep,
                              struct cvm_amd_item_info *out)
{
	struct cvm_amd_collateral c;
	struct cvm_amd_verified *v = NULL;
	struct cvm_amd_item_info info;
	enum cvm_snp_product anchor_p, inter_p;
	int r;

	memset(&info, 0, sizeof(info));
	memset(&c, 0, sizeof(c));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (body == NULL || len == 0 || (signer != CVM_SNP_SIGNER_VCEK && signer != CVM_SNP_SIGNER_VLEK) ||
	    (kind != CVM_AMD_ITEM_CHAIN && chain == NULL))
		return CVM_E_INVAL;
	/* The collateral struct only borrows here; nothing frees it. */
	switch (kind) {
	case CVM_AMD_ITEM_CHAIN:
		c.cert_chain = (uint8_t *)(uintptr_t)body;
		c.cert_chain_len = len;
		break;
	case CVM_AMD_ITEM_CRL:
		c.cert_chain = (uint8_t *)(uintptr_t)chain;
		c.cert_chain_len = chain_len;
		c.crl = (uint8_t *)(uintptr_t)body;
		c.crl_len = len;
		break;
	case CVM_AMD_ITEM_VCEK:
		if (signer != CVM_SNP_SIGNER_VCEK)
			return CVM_E_INVAL;
		c.cert_chain = (uint8_t *)(uintptr_t)chain;
		c.cert_chain_len = chain_len;
		c.vcek = (uint8_t *)(uintptr_t)body;
		c.vcek_len = len;
		r = cvm_amd_chain_authenticate(&c, signer, root_der, root_der_len, at, rep, &v);
		if (r != CVM_OK)
			goto out;
		info.vek = v->info;
		info.product = v->info.product;
		info.issued = cvm_cert_not_before(v->vek);
		info.next_update = cvm_cert_not_after(v->vek);
		info.expires = v->info.valid_until;
		goto done;
	default:
		return CVM_E_INVAL;
	}
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return CVM_E_NOMEM;
	r = chain_head(v, &c, signer, root_der, root_der_len, at, rep, &anchor_p, &inter_p);
	if (r != CVM_OK)
		goto out;
	info.product = inter_p != CVM_SNP_PRODUCT_UNKNOWN ? inter_p : anchor_p;
	if (kind == CVM_AMD_ITEM_CRL) {
		struct cvm_crl *crl = NULL;

		if (!v->info.crl_checked) {
			r = CVM_E_INTERNAL;
			goto out;
		}
		r = cvm_crl_parse(body, len, &crl);
		if (r != CVM_OK)
			goto out;
		info.issued = cvm_crl_this_update(crl);
		info.next_update = cvm_crl_next_update(crl);
		cvm_crl_free(crl);
	} else {
		info.issued = cvm_cert_not_before(v->intermediate);
		info.next_update = cvm_cert_not_after(v->intermediate);
	}
	info.expires = v->info.valid_until;
done:
	if (out != NULL)
		*out = info;
out:
	cvm_amd_verified_free(v);
	return r;
}

/* ---- one report -------------------------------------------------------- */

static int report_structure(const struct cvm_amd_verified *v, struct cvm_amd_result *res,
                            struct cvm_report *rep)
{
	const struct cvm_snp_report *s = &res->report;

	if (s->reserved_nonzero) {
		cvm_report_add(rep, "report", false, "report v%u: %s is not as the ABI requires", s->version,
		               s->reserved_what);
		return CVM_E_FORMAT;
	}
	if (s->sig_algo != CVM_SNP_SIG_ALGO_ECDSA_P384_SHA384) {
		cvm_report_add(rep, "report", false,
		               "signature algorithm %u is not ECDSA P-384 with SHA-384 (1)", s->sig_algo);
		return CVM_E_UNSUPPORTED;
	}
	if (s->signing_key == CVM_SNP_SIGNER_NONE) {
		cvm_report_add(rep, "report", false, "the report says it is not signed (SIGNING_KEY 7)");
		return CVM_E_SIGNATURE;
	}
	if (s->signing_key != v->info.kind) {
		cvm_report_add(rep, "report", false, "the report is signed by a %s, the chain ends in a %s",
		               signer_name((enum cvm_snp_signer)s->signing_key), signer_name(v->info.kind));
		return CVM_E_MISMATCH;
	}
	res->signer = v->info.kind;
	cvm_report_add(rep, "report", true, "SEV-SNP report v%u, %u bytes, signed by a %s%s", s->version,
	               CVM_SNP_REPORT_LEN, signer_name(v->info.kind),
	               s->mask_chip_key ? ", chip ID masked" : "");
	return CVM_OK;
}

static int product_check(const struct cvm_amd_verified *v, const struct cvm_snp_report *s,
                         struct cvm_report *rep)
{
	enum cvm_snp_product p;

	if (!s->has_cpuid) {
		cvm_report_add(rep, "product", true,
		               "%s (from the chain; a v%u report carries no CPUID fields to compare)",
		               cvm_snp_product_name(v->info.product), s->version);
		return CVM_OK;
	}
	p = cvm_snp_product_from_cpuid(s->cpuid_fam_id, s->cpuid_mod_id);
	if (p != v->info.product) {
		cvm_report_add(rep, "product", false,
		               "the report's CPUID (family 0x%02x, model 0x%02x) is %s, the chain and its %s "
		               "'%s' are for %s",
		               s->cpuid_fam_id, s->cpuid_mod_id, cvm_snp_product_name(p),
		               signer_name(v->info.kind), v->info.product_name,
		               cvm_snp_product_name(v->info.product));
		return p == CVM_SNP_PRODUCT_UNKNOWN ? CVM_E_UNSUPPORTED : CVM_E_MISMATCH;
	}
	/* The stepping in a product name ("Milan-B0") is not compared: AMD's
	 * KDS is known to name the wrong stepping, and the CPUID fields the
	 * report carries are signed by the chip itself. */
	cvm_report_add(rep, "product", true,
	               "CPUID family 0x%02x, model 0x%02x, stepping %u: %s, as the chain and the %s ('%s')",
	               s->cpuid_fam_id, s->cpuid_mod_id, s->cpuid_step, cvm_snp_product_name(p),
	               signer_name(v->info.kind), v->info.product_name);
	return CVM_OK;
}

static int tcb_check(const struct cvm_amd_verified *v, struct cvm_amd_result *res, struct cvm_report *rep)
{
	char want[96], got[96];

	cvm_snp_tcb_decode(res->report.reported_tcb.raw, v->info.product, &res->reported_tcb);
	tcb_text(&res->reported_tcb, got, sizeof(got));
	tcb_text(&v->info.tcb, want, sizeof(want));
	if (res->reported_tcb.raw != v->info.tcb.raw) {
		cvm_report_add(
		    rep, "reported_tcb", false,
		    "the reported TCB (%s, raw 0x%016llx) is not the one the %s certifies (%s, raw "
		    "0x%016llx)",
		    got, (unsigned long long)res->reported_tcb.raw, signer_name(v->info.kind), want,
		    (unsigned long long)v->info.tcb.raw);
		return CVM_E_TCB;
	}
	cvm_report_add(rep, "reported_tcb", true, "%s, as the %s certifies", got, signer_name(v->info.kind));
	return CVM_OK;
}

static int chip_check(const struct cvm_amd_verified *v, const struct cvm_snp_report *s,
                      struct cvm_report *rep)
{
	char a[129], b[129];

	if (v->info.kind == CVM_SNP_SIGNER_VLEK) {
		cvm_report_add(rep, "chip_id", true,
		               "not bound: a VLEK certifies a cloud provider (%s), no chip", v->info.csp_id);
		return CVM_OK;
	}
	if (s->mask_chip_key) {
		cvm_report_add(rep, "chip_id", true,
		               "not bound: the guest masked the chip ID (MASK_CHIP_KEY); the VCEK still "
		               "signed the report");
		return CVM_OK;
	}
	if (memcmp(s->chip_id, v->info.hwid, v->info.hwid_len) != 0 ||
	    !cvm_rd_all_zero(&(struct cvm_rd){s->chip_id + v->info.hwid_len, 64 - v->info.hwid_len})) {
		cvm_hex_encode(s->chip_id, 64, a);
		cvm_hex_encode(v->info.hwid, v->info.hwid_len, b);
		cvm_report_add(rep, "chip_id", false, "chip ID %.32s... is not the VCEK's hwID %.32s...", a,
		               b);
		return CVM_E_MISMATCH;
	}
	cvm_hex_encode(v->info.hwid, v->info.hwid_len, b);
	cvm_report_add(rep, "chip_id", true, "chip ID equals the VCEK's hwID (%.16s...)", b);
	return CVM_OK;
}

int cvm_amd_report_authenticate(struct cvm_amd_verified *v, const uint8_t *buf, size_t len, int64_t at,
                                struct cvm_report *rep, struct cvm_amd_result *res)
{
	struct cvm_snp_report *s = &res->report;
	uint8_t sig[96];
	int r;

	memset(res, 0, sizeof(*res));
	if (v == NULL || buf == NULL)
		return CVM_E_INVAL;
	res->product = v->info.product;
	memcpy(res->product_name, v->info.product_name, sizeof(res->product_name));
	res->root_builtin = v->info.root_builtin;
	res->crl_checked = v->info.crl_checked;
	res->chain_expiry = v->info.valid_until;
	res->vek_tcb = v->info.tcb;
	res->signer = v->info.kind;
	/* Warm use: the chain verified earlier must still be valid now. */
	if (at < v->info.valid_from || at > v->info.valid_until) {
		char a1[32], a2[32], a3[32];

		fmt_time(v->info.valid_from, a1, sizeof(a1));
		fmt_time(v->info.valid_until, a2, sizeof(a2));
		fmt_time(at, a3, sizeof(a3));
		cvm_report_add(rep, "collateral", false,
		               "the chain verified earlier is valid from %s to %s, not at %s", a1, a2, a3);
		return CVM_E_EXPIRED;
	}
	r = cvm_snp_report_parse(buf, len, s);
	if (r != CVM_OK) {
		cvm_report_add(rep, "report", false, "the %zu bytes are not an SEV-SNP report: %s", len,
		               cvm_strerror(r));
		return r;
	}
	res->parsed = true;
	r = report_structure(v, res, rep);
	if (r != CVM_OK)
		return r;
	if (!cvm_snp_report_sig_be(s, sig)) {
		cvm_report_add(
		    rep, "report_signature", false,
		    "the signature's r or s does not fit in 48 bytes (the upper bytes are not zero)");
		return CVM_E_SIGNATURE;
	}
	r = cvm_cert_verify_p384_kept(v->vek, s->signed_data.p, s->signed_data.len, sig);
	if (r != CVM_OK) {
		cvm_report_add(rep, "report_signature", false,
		               "the report signature does not verify under the %s's P-384 key",
		               signer_name(v->info.kind));
		return r == CVM_E_NOMEM ? r : CVM_E_SIGNATURE;
	}
	cvm_report_add(rep, "report_signature", true,
	               "bytes 0x000..0x29F signed by the %s (ECDSA P-384, SHA-384)",
	               signer_name(v->info.kind));
	r = product_check(v, s, rep);
	if (r != CVM_OK)
		return r;
	r = tcb_check(v, res, rep);
	if (r != CVM_OK)
		return r;
	r = chip_check(v, s, rep);
	if (r != CVM_OK)
		return r;
	res->authentic = true;
	return CVM_OK;
}

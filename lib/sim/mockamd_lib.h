/* A mock PKI shaped like AMD's SEV-SNP PKI, for the simulated TEE (lib/sim,
 * issued through lib/crypto's crypto_lib.h): an ARK (self-signed), an ASK or ASVK, a VCEK (with the
 * hwID) or VLEK (with a CSP ID) carrying AMD's extensions, an ARK-signed CRL,
 * and SEV-SNP attestation reports (versions 2 to 5, 1184 bytes, laid out as
 * the SEV-SNP firmware ABI's ATTESTATION_REPORT) signed with the VCEK's or
 * VLEK's ECDSA P-384 key, r and s little-endian. Certificates and the CRL
 * are signed with RSASSA-PSS (SHA-384, MGF1 SHA-384, 48-byte salt), as AMD's
 * are. The RSA keys are 2048-bit by default (AMD's are 4096-bit, which take
 * seconds to generate); the verifier accepts both.
 *
 * Internal to the library, as mockpki_lib.h is for Intel: lib/tee keeps one PKI
 * in a folder for the life of a simulated platform (`cvm sim`), and the unit
 * tests make a PKI per case with one knob changed (tests/common/testamd.h
 * wraps this header under its historic cvm_testamd_* names, shares one set of
 * keys among all of a process's PKIs and makes the broken variants the tests
 * need from the building blocks of lib/sim/mock_int.h).
 *
 * Nothing here is ever a trust anchor by default. Every ARK it makes carries
 * the marker extension CVM_MOCKPKI_MARKER_OID (mockpki_lib.h), so that
 * cvm_mockpki_der_is_simulated and cvm_mockpki_pem_has_simulated detect it
 * and a verdict over its evidence can say "simulated". The names (ARK-Milan,
 * SEV-Milan, SEV-VCEK, with the rest of AMD's name) are AMD's, so that the
 * verifier runs the same code on both, its name checks included; they prove
 * nothing.
 *
 *	struct cvm_mockamd_opts o;
 *	struct cvm_mockamd *pki;
 *	uint8_t report[CVM_SNP_REPORT_LEN];
 *
 *	cvm_mockamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, now);
 *	o.revoke_intermediate = true;			// the CRL lists the ASK
 *	r = cvm_mockamd_new(&o, &pki);
 *	r = cvm_mockamd_report(pki, NULL, report);	// the default report
 *	r = cvm_mockamd_write_collateral(pki, dir);	// ark.pem, ask.pem, vcek.der, ...
 *	cvm_mockamd_free(pki);
 *
 * To keep a PKI across processes, cvm_mockamd_save_keys writes its keys
 * (mode 0600) and certificates, and cvm_mockamd_load rebuilds it from them. */
#ifndef CVM_SIM_MOCKAMD_LIB_H
#define CVM_SIM_MOCKAMD_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/err.h>
#include <cvmkit/snp.h>

#define CVM_MOCKAMD_RSA_BITS_DEFAULT 2048u
#define CVM_MOCKAMD_RSA_BITS_MAX 4096u

/* struct cvm_mockamd_window is a validity window in Unix seconds: notBefore
 * and notAfter of a certificate, thisUpdate and nextUpdate of the CRL. */
struct cvm_mockamd_window {
	int64_t from;
	int64_t to;
};

/* struct cvm_mockamd_report_opts describes one attestation report, field by
 * field as the ABI lays it out. Reserved bytes are written as zeros; the
 * CPUID bytes only from version 3 and the mitigation vectors only from
 * version 5 (before, those bytes are reserved). */
struct cvm_mockamd_report_opts {
	uint32_t version; /* 2, 3, 4 or 5 */
	uint32_t guest_svn;
	uint64_t policy;
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint32_t vmpl;
	uint64_t platform_info;
	uint32_t signer_info; /* KEY_INFO at 0x48; defaults to the PKI's signer in bits 4:2 */
	uint8_t report_data[64];
	uint8_t measurement[48];
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	uint8_t author_key_digest[48];
	uint8_t report_id[32];
	uint8_t report_id_ma[32];
	uint64_t reported_tcb;                           /* raw; defaults to the certified TCB */
	uint8_t cpuid_fam_id, cpuid_mod_id, cpuid_step;  /* v3+; default from the product */
	uint8_t chip_id[64];                             /* defaults to the VCEK's hwID (zero for a VLEK) */
	uint64_t current_tcb, committed_tcb, launch_tcb; /* default: reported_tcb */
	uint8_t current_build, current_minor, current_major;
	uint8_t committed_build, committed_minor, committed_major;
	uint64_t launch_mit_vector, current_mit_vector; /* v5 */
};

struct cvm_mockamd;

/* struct cvm_mockamd_opts holds every knob of a PKI. Fill it with
 * cvm_mockamd_opts_init, then change what the caller is about. */
struct cvm_mockamd_opts {
	enum cvm_snp_product product; /* names: ARK-<P>, SEV-<P> / SEV-VLEK-<P>, "<P>-B0" */
	enum cvm_snp_signer signer;   /* VCEK or VLEK */
	int64_t now;
	struct cvm_mockamd_window ark, intermediate, vek, crl;
	const char *product_name; /* the VCEK's productName (NULL: "<P>-B0"; VLEK "<P>") */
	struct cvm_snp_tcb tcb;   /* the certified TCB (fmc written on Turin only); `raw` is ignored */
	uint8_t hwid[64];
	size_t hwid_len; /* 64 (8 in Turin's style) */
	bool with_crl;
	bool revoke_intermediate; /* the CRL lists the ASK/ASVK */
	unsigned rsa_bits;        /* ARK and intermediate keys: 2048 to 4096 */
	struct cvm_mockamd_report_opts report;
};

/* cvm_mockamd_opts_init fills `o` with defaults that verify at `now`:
 * certificates valid now-1y..now+5y, a CRL now-1d..now+30d listing one
 * unrelated serial, TCB bootloader 3, tee 0, snp 8, microcode 115 (and fmc 1
 * on Turin), a chip ID pattern (8 bytes on Turin, else 64), 2048-bit RSA,
 * and a version 3 report that cvm_policy_init's defaults accept: POLICY
 * with SMT allowed and no debug, VMPL 0, PLATFORM_INFO SMT and ECC enabled,
 * the product's CPUID, report and chip IDs, firmware 1.55.40. */
void cvm_mockamd_opts_init(struct cvm_mockamd_opts *o, enum cvm_snp_product product,
                           enum cvm_snp_signer signer, int64_t now);

/* cvm_mockamd_new generates keys and builds the certificates and CRL of `o`,
 * which it copies. Returns 0, CVM_E_INVAL (bad options), CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_mockamd_new(const struct cvm_mockamd_opts *o, struct cvm_mockamd **out);
/* cvm_mockamd_new_keyed is cvm_mockamd_new with the keys of `from` (shared,
 * reference-counted: `from` may be freed first) instead of new ones; rsa_bits
 * is then ignored. RSA key generation is most of what making a PKI costs,
 * and the tests make hundreds; a simulated platform never shares keys. */
CVM_MUST_CHECK int cvm_mockamd_new_keyed(const struct cvm_mockamd_opts *o, const struct cvm_mockamd *from,
                                         struct cvm_mockamd **out);
/* cvm_mockamd_free releases `pki` and its keys; NULL is a no-op. */
void cvm_mockamd_free(struct cvm_mockamd *pki);

/* cvm_mockamd_opts_of gives the options `pki` was made from. */
const struct cvm_mockamd_opts *cvm_mockamd_opts_of(const struct cvm_mockamd *pki);

/* cvm_mockamd_report writes the report described by `r` (NULL: the one in
 * the options), signed with the VCEK's or VLEK's key, into `out`. It checks
 * nothing of `r`: a test may write any value. Returns 0 or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_mockamd_report(const struct cvm_mockamd *pki, const struct cvm_mockamd_report_opts *r,
                                      uint8_t out[CVM_SNP_REPORT_LEN]);

/* The files of a collateral folder (the layout of the vectors' snp/<name>
 * folders, which cvm_amd_collateral_load_dir reads). */
enum cvm_mockamd_file {
	CVM_MOCKAMD_F_ARK = 0,      /* ark.pem */
	CVM_MOCKAMD_F_INTERMEDIATE, /* ask.pem or asvk.pem */
	CVM_MOCKAMD_F_VEK_DER,      /* vcek.der or vlek.der */
	CVM_MOCKAMD_F_VEK_PEM,      /* vcek.pem or vlek.pem */
	CVM_MOCKAMD_F_CERT_CHAIN,   /* cert_chain.pem: the intermediate, then the ARK */
	CVM_MOCKAMD_F_CRL,          /* crl.der (none without with_crl) */
	CVM_MOCKAMD_F_COUNT
};

/* cvm_mockamd_file_name names file `f` of `pki` (static; it depends on the
 * signer), or NULL when `f` is out of range. */
const char *cvm_mockamd_file_name(const struct cvm_mockamd *pki, enum cvm_mockamd_file f);
/* cvm_mockamd_file lends the bytes of file `f` (borrowed from `pki`); an
 * absent file or an out-of-range `f` gives NULL and 0. */
void cvm_mockamd_file(const struct cvm_mockamd *pki, enum cvm_mockamd_file f, const uint8_t **p, size_t *len);
/* cvm_mockamd_ark_der lends the ARK certificate (DER). */
void cvm_mockamd_ark_der(const struct cvm_mockamd *pki, const uint8_t **der, size_t *len);

/* cvm_mockamd_write_collateral writes every file of the collateral (see
 * enum cvm_mockamd_file) into the existing folder `dir`, mode 0644. Returns
 * 0, CVM_E_INVAL (path too long) or CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_mockamd_write_collateral(const struct cvm_mockamd *pki, const char *dir);

/* cvm_mockamd_save_keys writes into the existing folder `dir` each private
 * key as PKCS#8 PEM with mode 0600 (ark.key, ask.key or asvk.key, vcek.key
 * or vlek.key) and each certificate as PEM (ark.pem, ...). It refuses
 * (CVM_E_INVAL) a `dir` that others may write to. The key files are
 * secrets: whoever reads them can sign reports this PKI's ARK vouches for.
 * Returns 0, CVM_E_INVAL, CVM_E_NOMEM, CVM_E_CRYPTO or CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_mockamd_save_keys(const struct cvm_mockamd *pki, const char *dir);

/* cvm_mockamd_load rebuilds a PKI of signer o->signer from the keys and
 * certificates that cvm_mockamd_save_keys wrote to `dir`, and signs a fresh
 * CRL from `o` (crl window, with_crl, revoke_intermediate).
 * The certificates are used as they are: the certificate windows, product,
 * product name, TCB and hwID of `o` are ignored, and the default report in
 * `o` is not reconciled with them (the caller keeps a report that matches,
 * as the simulator keeps its template). It refuses key files that group or
 * others have access to (CVM_E_INVAL). It checks that each key is of AMD's
 * kind (RSA for the ARK and the intermediate, P-384 for the VCEK or VLEK)
 * and held by its certificate, and that each certificate is issued by the
 * next (names, CA flag and signature), but not their dates. Returns 0,
 * CVM_E_INVAL, CVM_E_FORMAT, CVM_E_TOO_LARGE, CVM_E_NOMEM, CVM_E_CRYPTO or
 * CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_mockamd_load(const struct cvm_mockamd_opts *o, const char *dir,
                                    struct cvm_mockamd **out);

#endif

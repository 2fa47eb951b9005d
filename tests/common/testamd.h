/* A test PKI shaped like AMD's SEV-SNP PKI, built with OpenSSL: an ARK
 * (self-signed), an ASK or ASVK, a VCEK (with hwID) or VLEK (with CSP ID)
 * carrying AMD's extensions, an ARK-signed CRL, and SEV-SNP reports signed
 * with the VCEK/VLEK's P-384 key. Certificates and CRLs are signed with
 * RSASSA-PSS (SHA-384, MGF1 SHA-384, 48-byte salt) as AMD's are. The RSA keys
 * are 2048-bit (AMD's are 4096-bit) so that tests stay fast; they are made
 * once per process and shared by every PKI, which is fine for tests.
 *
 *	struct cvm_testamd_opts o;
 *	struct cvm_testamd *pki;
 *	uint8_t report[CVM_SNP_REPORT_LEN];
 *
 *	cvm_testamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, now);
 *	o.revoke_intermediate = true;
 *	r = cvm_testamd_new(&o, &pki);
 *	r = cvm_testamd_report(pki, NULL, report);	// the default report
 *	...
 *	cvm_testamd_free(pki);
 */
#ifndef CVMKIT_TESTS_TESTAMD_H
#define CVMKIT_TESTS_TESTAMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/amd.h>
#include <cvmkit/err.h>
#include <cvmkit/snp.h>

struct cvm_testamd_window {
	int64_t from;
	int64_t to;
};

/* struct cvm_testamd_report_opts describes one report. */
struct cvm_testamd_report_opts {
	uint32_t version; /* 2, 3 or 5 */
	uint32_t guest_svn;
	uint64_t policy;
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint32_t vmpl;
	uint64_t platform_info;
	uint32_t signer_info; /* defaults to the PKI's signer in bits 4:2 */
	uint8_t report_data[64];
	uint8_t measurement[48];
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	uint8_t author_key_digest[48];
	uint64_t reported_tcb;                           /* raw; defaults to the certified TCB */
	uint8_t cpuid_fam_id, cpuid_mod_id, cpuid_step;  /* v3+; default from the product */
	uint8_t chip_id[64];                             /* defaults to the VCEK's hwID (zero for a VLEK) */
	uint64_t current_tcb, committed_tcb, launch_tcb; /* default: reported_tcb */
	uint64_t launch_mit_vector, current_mit_vector;  /* v5 */
	bool bad_signature;                              /* sign, then flip a bit of r */
};

/* struct cvm_testamd_opts holds every knob of a PKI. */
struct cvm_testamd_opts {
	enum cvm_snp_product product; /* names: ARK-<P>, SEV-<P> / SEV-VLEK-<P>, "<P>-B0" */
	enum cvm_snp_signer signer;   /* VCEK or VLEK */
	int64_t now;
	struct cvm_testamd_window ark, intermediate, vek, crl;
	const char *product_name; /* the VCEK's productName (default "<P>-B0"; VLEK "<P>") */
	struct cvm_snp_tcb tcb;   /* the certified TCB (fmc written on Turin only) */
	uint8_t hwid[64];
	size_t hwid_len; /* 64 (8 for Turin's style) */
	bool with_crl;
	bool revoke_intermediate; /* the CRL lists the ASK/ASVK */
	bool crl_wrong_key;       /* the CRL is signed by another key */
	bool ark_wrong_name;      /* the ARK is named "ARK-Other" */
	struct cvm_testamd_report_opts report;
};

/* cvm_testamd_opts_init fills defaults that verify at `now`: certificates
 * valid now-1y..now+5y, a CRL now-1d..now+30d listing nothing relevant, TCB
 * bootloader 3, tee 0, snp 8, microcode 115 (and fmc 1 on Turin), a chip ID
 * pattern, and a report v3 (policy SMT allowed, no debug, VMPL 0). */
void cvm_testamd_opts_init(struct cvm_testamd_opts *o, enum cvm_snp_product product,
                           enum cvm_snp_signer signer, int64_t now);

struct cvm_testamd;

CVM_MUST_CHECK int cvm_testamd_new(const struct cvm_testamd_opts *o, struct cvm_testamd **out);
void cvm_testamd_free(struct cvm_testamd *pki);

/* cvm_testamd_report writes a signed report described by `r` (NULL: the one
 * in the options). Returns 0 or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_testamd_report(const struct cvm_testamd *pki, const struct cvm_testamd_report_opts *r,
                                      uint8_t out[CVM_SNP_REPORT_LEN]);

/* cvm_testamd_collateral gives the chain as cvm_amd_collateral_load_dir would
 * load it (vcek.der or vlek.der, ask.pem or asvk.pem, ark.pem, crl.der when
 * made); free it with cvm_amd_collateral_free. */
CVM_MUST_CHECK int cvm_testamd_collateral(const struct cvm_testamd *pki, struct cvm_amd_collateral **out);

/* cvm_testamd_ark_der lends the ARK certificate (DER). */
void cvm_testamd_ark_der(const struct cvm_testamd *pki, const uint8_t **der, size_t *len);

#endif

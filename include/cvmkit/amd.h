/* AMD SEV-SNP report verification by AMD's rules: the certificate chain
 * ARK -> ASK -> VCEK (or ARK -> ASVK -> VLEK) anchored in an ARK built into
 * cvmkit (Milan, Genoa, Turin) or one the caller names, certificate
 * validity, the ARK-signed CRL when given, the report signature, and the
 * bindings between report and certificate (reported TCB, chip ID, product).
 * Appraisal (debug, VMPL, measurements, minimum TCB) is not here: see
 * verify.h and policy.h. */
#ifndef CVMKIT_AMD_H
#define CVMKIT_AMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "report.h"
#include "snp.h"

#define CVM_AMD_CERT_MAX ((size_t)16 * 1024)  /* an AMD certificate is under 2 KiB */
#define CVM_AMD_CRL_MAX ((size_t)1024 * 1024) /* AMD's CRLs are a few KiB */
#define CVM_AMD_PRODUCT_NAME_MAX 32           /* "Milan-B0" */
#define CVM_AMD_CSP_ID_MAX 128                /* "CN=cc-us-east-2.amazonaws.com" */

/* OIDs of the extensions AMD puts in VCEK and VLEK certificates. */
#define CVM_AMD_OID_STRUCT_VERSION "1.3.6.1.4.1.3704.1.1"
#define CVM_AMD_OID_PRODUCT_NAME "1.3.6.1.4.1.3704.1.2"
#define CVM_AMD_OID_BL_SPL "1.3.6.1.4.1.3704.1.3.1"
#define CVM_AMD_OID_TEE_SPL "1.3.6.1.4.1.3704.1.3.2"
#define CVM_AMD_OID_SNP_SPL "1.3.6.1.4.1.3704.1.3.3"
#define CVM_AMD_OID_UCODE_SPL "1.3.6.1.4.1.3704.1.3.8"
#define CVM_AMD_OID_FMC_SPL "1.3.6.1.4.1.3704.1.3.9" /* Turin */
#define CVM_AMD_OID_HWID "1.3.6.1.4.1.3704.1.4"      /* VCEK: the chip ID */
#define CVM_AMD_OID_CSP_ID "1.3.6.1.4.1.3704.1.5"    /* VLEK: the cloud provider */

/* struct cvm_amd_ark is one of AMD's root keys built into cvmkit. */
struct cvm_amd_ark {
	enum cvm_snp_product product;
	const char *name; /* its subject CN, "ARK-Milan" */
	const uint8_t *der;
	size_t der_len;
};

/* cvm_amd_builtin_arks returns the built-in ARKs (Milan, Genoa, Turin); the
 * table is static. */
CVM_API const struct cvm_amd_ark *cvm_amd_builtin_arks(size_t *count);

/* struct cvm_amd_collateral holds the certificate bytes as they come (DER or
 * PEM), all owned; absent files are NULL. */
struct cvm_amd_collateral {
	uint8_t *vcek; /* vcek.der or vcek.pem */
	size_t vcek_len;
	uint8_t *vlek; /* vlek.der or vlek.pem */
	size_t vlek_len;
	uint8_t *ask; /* ask.pem: the ASK (a second certificate in it, the ARK, is allowed) */
	size_t ask_len;
	uint8_t *asvk; /* asvk.pem: the ASVK (likewise) */
	size_t asvk_len;
	uint8_t *cert_chain; /* cert_chain.pem: ASK or ASVK, then ARK, as AMD's KDS serves it */
	size_t cert_chain_len;
	uint8_t *ark; /* ark.pem: never trusted by itself */
	size_t ark_len;
	uint8_t *crl; /* crl.der (PEM accepted too): AMD's ARK-signed CRL */
	size_t crl_len;
};

/* cvm_amd_collateral_load_dir reads a folder laid out as the vectors'
 * snp/<name> folders: vcek.der or vcek.pem and/or vlek.der or vlek.pem,
 * ask.pem and/or asvk.pem and/or cert_chain.pem, and optionally ark.pem and
 * crl.der (or crl.pem). It needs a VCEK or VLEK and an ASK, ASVK or
 * cert_chain.pem; it parses nothing. On error, `err` (may be NULL) holds one
 * sentence naming the file at fault and why. Returns 0, CVM_E_SYSTEM (errno set), CVM_E_TOO_LARGE,
 * CVM_E_FORMAT (a needed file is missing) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_amd_collateral_load_dir(const char *dir, struct cvm_amd_collateral **out,
                                                       char *err, size_t err_len);
CVM_API void cvm_amd_collateral_free(struct cvm_amd_collateral *c);

/* struct cvm_amd_vek is what a verified VCEK or VLEK certifies. */
struct cvm_amd_vek {
	enum cvm_snp_signer kind;                    /* VCEK or VLEK */
	enum cvm_snp_product product;                /* the chain's product line */
	char product_name[CVM_AMD_PRODUCT_NAME_MAX]; /* productName extension, printable ASCII */
	struct cvm_snp_tcb tcb;                      /* the SPL extensions, in the product's layout */
	uint8_t hwid[64];                            /* VCEK: the chip ID (8 bytes on Turin) */
	size_t hwid_len;
	char csp_id[CVM_AMD_CSP_ID_MAX]; /* VLEK: printable ASCII */
	uint32_t struct_version;
	bool root_builtin;   /* anchored in a built-in ARK */
	char root_name[64];  /* the anchor's CN */
	bool crl_checked;    /* a CRL was given, verified, and lists neither the ASK/ASVK nor the ARK */
	int64_t valid_from;  /* latest notBefore / thisUpdate of the chain and CRL */
	int64_t valid_until; /* earliest notAfter / nextUpdate */
};

/* struct cvm_amd_verified is a chain that verified at one time against one
 * anchor: the warm-path cache, reusable for every report that VCEK (or VLEK)
 * signs while the time stays inside its window. Opaque. */
struct cvm_amd_verified;

/* cvm_amd_chain_authenticate checks the chain in `c` for a report signed by
 * `signer` (VCEK: ARK -> ASK -> VCEK; VLEK: ARK -> ASVK -> VLEK) at Unix
 * time `at`. The anchor is `root_der` (DER or PEM) when given, else the
 * built-in ARK of the chain's product; an ARK in the collateral must equal
 * the anchor (it is never trusted by itself). Each certificate must be valid
 * at `at`, issued and signed (RSASSA-PSS, SHA-384) by the next, and in the
 * role AMD gives it: the ASK or ASVK named SEV-<product> or
 * SEV-VLEK-<product> (with the rest of AMD's name), a CA for certificate
 * signing; the VCEK or VLEK named SEV-VCEK or SEV-VLEK, an end entity with a
 * P-384 key and AMD's extensions. The CRL, when given, must be signed by the
 * ARK (which may sign CRLs), current, and not list the ASK or ASVK; the
 * VCEK and VLEK have no CRL. The ARK, the intermediate's name and the
 * VCEK's product name must name one product.
 * Steps go to `rep`. Returns 0, CVM_E_INVAL, CVM_E_CHAIN, CVM_E_SIGNATURE,
 * CVM_E_EXPIRED, CVM_E_REVOKED, CVM_E_FORMAT, CVM_E_MISMATCH,
 * CVM_E_UNSUPPORTED or CVM_E_NOMEM. It applies no policy and does not look
 * at any report. */
CVM_API CVM_MUST_CHECK int cvm_amd_chain_authenticate(const struct cvm_amd_collateral *c,
                                                      enum cvm_snp_signer signer, const uint8_t *root_der,
                                                      size_t root_der_len, int64_t at, struct cvm_report *rep,
                                                      struct cvm_amd_verified **out);
CVM_API void cvm_amd_verified_free(struct cvm_amd_verified *v);
/* cvm_amd_verified_vek gives read access to what the chain certifies. */
CVM_API const struct cvm_amd_vek *cvm_amd_verified_vek(const struct cvm_amd_verified *v);

/* One item of AMD's KDS. */
enum cvm_amd_item_kind {
	CVM_AMD_ITEM_CHAIN = 1, /* {vcek,vlek}/v1/{product}/cert_chain: ASK or ASVK, then ARK (PEM) */
	CVM_AMD_ITEM_CRL = 2,   /* {vcek,vlek}/v1/{product}/crl: the ARK's CRL (DER or PEM) */
	CVM_AMD_ITEM_VCEK = 3,  /* vcek/v1/{product}/{hwid}?...: a VCEK (DER or PEM) */
};

/* struct cvm_amd_item_info is what an item that authenticated says. */
struct cvm_amd_item_info {
	int64_t issued;               /* notBefore / thisUpdate of the item itself */
	int64_t next_update;          /* notAfter / nextUpdate of the item itself */
	int64_t expires;              /* the earliest notAfter / nextUpdate of the item and its chain */
	enum cvm_snp_product product; /* of the intermediate (CHAIN, CRL) or the VCEK */
	struct cvm_amd_vek vek;       /* VCEK: what it certifies */
};

/* cvm_amd_item_authenticate checks one KDS item alone at Unix time `at`
 * against `root_der` (NULL: the built-in ARK of its product), as
 * cvm_amd_chain_authenticate checks it among the others: a cert_chain
 * (`body`) whose ASK (signer VCEK) or ASVK (signer VLEK) the anchor signed;
 * a CRL (`body`) the anchor signed that revokes neither, with the cert_chain
 * `chain`; a VCEK (`body`) the ASK of `chain` signed. Fills `out` (may be
 * NULL). Steps go to `rep`. Returns 0 or the errors of
 * cvm_amd_chain_authenticate. */
CVM_API CVM_MUST_CHECK int cvm_amd_item_authenticate(enum cvm_amd_item_kind kind, enum cvm_snp_signer signer,
                                                     const uint8_t *body, size_t len, const uint8_t *chain,
                                                     size_t chain_len, const uint8_t *root_der,
                                                     size_t root_der_len, int64_t at, struct cvm_report *rep,
                                                     struct cvm_amd_item_info *out);

/* struct cvm_amd_result is AMD's verdict on one report. */
struct cvm_amd_result {
	struct cvm_snp_report report; /* parsed fields; signed_data borrows from the buffer */
	bool parsed;                  /* `report` holds a parsed report */
	bool authentic;               /* chain, signature and every binding verified */
	enum cvm_snp_signer signer;
	enum cvm_snp_product product;
	char product_name[CVM_AMD_PRODUCT_NAME_MAX];
	struct cvm_snp_tcb reported_tcb; /* decoded in the chain product's layout */
	struct cvm_snp_tcb vek_tcb;      /* what the VCEK/VLEK certifies */
	bool root_builtin;
	bool crl_checked;     /* the chain's revocation was checked against AMD's CRL */
	int64_t chain_expiry; /* earliest notAfter / nextUpdate of what was used */
};

/* cvm_amd_report_authenticate checks the report at `buf` against a chain that
 * cvm_amd_chain_authenticate accepted: structure (version, reserved fields,
 * signature algorithm, signing key), the P-384 signature over bytes
 * 0x000..0x29F, the product of the report's CPUID fields (version 3 and
 * later), the reported TCB against the certificate's SPL extensions (every
 * component, FMC on Turin), and the chip ID against the VCEK's hwID (unless
 * the guest masked it; a VLEK certifies no chip). Returns 0 only when all of
 * these hold; `res` is filled as far as verification got. It applies no
 * appraisal policy: a debug guest, a migration agent, any VMPL, any TCB and
 * any measurement pass it. Callers that decide whether to trust a report
 * want cvm_verify_snp_report. */
CVM_API CVM_MUST_CHECK int cvm_amd_report_authenticate(struct cvm_amd_verified *v, const uint8_t *buf,
                                                       size_t len, int64_t at, struct cvm_report *rep,
                                                       struct cvm_amd_result *res);

#endif

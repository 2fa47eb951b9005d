/* Intel DCAP collateral (TCB info, QE identity, CRLs, issuer chains) and quote
 * verification by Intel's rules. Appraisal (which TCB statuses, debug, expected
 * measurements) is not here: see verify.h and policy.h. */
#ifndef CVMKIT_DCAP_H
#define CVMKIT_DCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "err.h"
#include "quote.h"
#include "report.h"

#define CVM_DCAP_JSON_MAX ((size_t)256 * 1024) /* a TCB info body is 5-20 KiB */
#define CVM_DCAP_PEM_MAX ((size_t)64 * 1024)
#define CVM_DCAP_CRL_MAX ((size_t)4 * 1024 * 1024) /* PCK CRLs grow with revocations */
#define CVM_DCAP_CERT_MAX ((size_t)16 * 1024)
#define CVM_TCB_LEVELS_MAX 512
#define CVM_ADVISORIES_MAX 128
#define CVM_ADVISORY_ID_MAX 32 /* "INTEL-SA-00000" is 14 */
#define CVM_TDX_MODULES_MAX 64

/* Intel's TCB statuses. CVM_TCB_NONE means no level matched. */
enum cvm_tcb_status {
	CVM_TCB_NONE = 0,
	CVM_TCB_UP_TO_DATE,
	CVM_TCB_SW_HARDENING_NEEDED,
	CVM_TCB_CONFIGURATION_NEEDED,
	CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
	CVM_TCB_OUT_OF_DATE,
	CVM_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
	CVM_TCB_REVOKED,
	/* Intel QVL's verdicts for TD 1.5 (never a TCB level status in
	 * collateral): the TD runs on an out-of-date TDX module that the
	 * platform has since updated, so relaunching the TD fixes it. */
	CVM_TCB_TD_RELAUNCH_ADVISED,
	CVM_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED,
	CVM_TCB_STATUS_COUNT
};

/* cvm_tcb_status_name returns Intel's name ("UpToDate", ...) or "None". */
CVM_API const char *cvm_tcb_status_name(enum cvm_tcb_status s);
/* cvm_tcb_status_parse maps Intel's name to the enum; false if unknown. */
CVM_API bool cvm_tcb_status_parse(const char *name, size_t len, enum cvm_tcb_status *out);

struct cvm_advisories {
	size_t count;
	char (*ids)[CVM_ADVISORY_ID_MAX]; /* count entries, each NUL-terminated */
};

struct cvm_tcb_level {
	uint8_t sgx_svn[16];
	uint16_t pce_svn;
	uint8_t tdx_svn[16];
	enum cvm_tcb_status status;
	int64_t tcb_date;
	struct cvm_advisories adv;
};

struct cvm_module_level {
	uint8_t isv_svn;
	enum cvm_tcb_status status;
	int64_t tcb_date;
	struct cvm_advisories adv;
};

struct cvm_tdx_module_identity {
	char id[16]; /* "TDX_03" */
	uint8_t mrsigner[48];
	uint8_t attributes[8];
	uint8_t attributes_mask[8];
	struct cvm_module_level *levels;
	size_t level_count;
};

/* struct cvm_tcb_info is a decoded TCB info (v2 SGX, v3 SGX or TDX). */
struct cvm_tcb_info {
	unsigned version;
	enum cvm_tee tee; /* from "id"; v2 has none and is SGX */
	int64_t issue_date;
	int64_t next_update;
	uint8_t fmspc[6];
	uint8_t pce_id[2];
	uint32_t tcb_type;
	uint32_t tcb_eval_num;
	bool has_tdx_module;
	uint8_t tdx_module_mrsigner[48];
	uint8_t tdx_module_attributes[8];
	uint8_t tdx_module_attributes_mask[8];
	struct cvm_tdx_module_identity *modules;
	size_t module_count;
	struct cvm_tcb_level *levels; /* sorted as Intel's QVL sorts them: highest first */
	size_t level_count;
	int refs; /* internal: cvm_tcb_info_free drops one reference */
};

struct cvm_qe_level {
	uint16_t isv_svn;
	enum cvm_tcb_status status;
	int64_t tcb_date;
	struct cvm_advisories adv;
};

/* struct cvm_qe_identity is a decoded enclave identity (QE, TD_QE, QVE). */
struct cvm_qe_identity {
	char id[8];
	unsigned version;
	int64_t issue_date;
	int64_t next_update;
	uint32_t tcb_eval_num;
	uint32_t miscselect;
	uint32_t miscselect_mask;
	uint8_t attributes[16];
	uint8_t attributes_mask[16];
	uint8_t mrsigner[32];
	uint16_t isv_prod_id;
	struct cvm_qe_level *levels;
	size_t level_count;
	int refs; /* internal: cvm_qe_identity_free drops one reference */
};

/* cvm_tcb_info_parse takes the body Intel's PCS returns,
 * {"tcbInfo":{...},"signature":"<hex r||s>"}. It decodes the tcbInfo object
 * into a new `*out`, points `signed_part` at the exact bytes of that object in
 * `body` (what the signature covers) and copies the signature. It checks no
 * signature and no date. Returns 0, CVM_E_FORMAT, CVM_E_UNSUPPORTED,
 * CVM_E_TOO_LARGE or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_tcb_info_parse(const uint8_t *body, size_t len, struct cvm_tcb_info **out,
                                              struct cvm_rd *signed_part, uint8_t signature[64]);
CVM_API void cvm_tcb_info_free(struct cvm_tcb_info *ti);

/* cvm_qe_identity_parse is cvm_tcb_info_parse for
 * {"enclaveIdentity":{...},"signature":"<hex>"}. */
CVM_API CVM_MUST_CHECK int cvm_qe_identity_parse(const uint8_t *body, size_t len,
                                                 struct cvm_qe_identity **out, struct cvm_rd *signed_part,
                                                 uint8_t signature[64]);
CVM_API void cvm_qe_identity_free(struct cvm_qe_identity *qe);

/* cvm_iso8601_parse parses "YYYY-MM-DDThh:mm:ssZ" (optionally with
 * fractional seconds, or an offset "+hh:mm") to Unix seconds. */
CVM_API bool cvm_iso8601_parse(const char *s, size_t len, int64_t *out);

/* struct cvm_dcap_collateral holds collateral bytes as the PCS returns them.
 * All fields are owned; absent optional fields are NULL. */
struct cvm_dcap_collateral {
	uint8_t *tcb_info; /* JSON body */
	size_t tcb_info_len;
	uint8_t *qe_identity; /* JSON body */
	size_t qe_identity_len;
	uint8_t *tcb_info_issuer_chain; /* PEM */
	size_t tcb_info_issuer_chain_len;
	uint8_t *qe_identity_issuer_chain; /* PEM */
	size_t qe_identity_issuer_chain_len;
	uint8_t *pck_crl_issuer_chain; /* PEM */
	size_t pck_crl_issuer_chain_len;
	uint8_t *pck_crl; /* DER (PEM accepted too) */
	size_t pck_crl_len;
	uint8_t *root_ca_crl; /* DER (PEM accepted too) */
	size_t root_ca_crl_len;
	uint8_t *root_ca; /* optional: intel_sgx_root_ca.der in the folder */
	size_t root_ca_len;
};

/* cvm_dcap_collateral_load_dir reads a folder laid out as the vectors are:
 * tcb_info.json, qe_identity.json, tcb_info_issuer_chain.pem,
 * qe_identity_issuer_chain.pem, pck_crl_issuer_chain.pem, pck_crl.der,
 * root_ca_crl.der and optionally intel_sgx_root_ca.der. It parses nothing.
 * On error, `err` (may be NULL) holds one sentence naming the file at fault
 * and why. Returns 0, CVM_E_SYSTEM (errno set), CVM_E_TOO_LARGE, CVM_E_INVAL
 * or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_dcap_collateral_load_dir(const char *dir, struct cvm_dcap_collateral **out,
                                                        char *err, size_t err_len);
CVM_API void cvm_dcap_collateral_free(struct cvm_dcap_collateral *c);

/* The Intel SGX Root CA, built in (DER). */
extern CVM_API const uint8_t cvm_intel_sgx_root_ca_der[];
extern CVM_API const size_t cvm_intel_sgx_root_ca_der_len;

/* struct cvm_dcap_verified is collateral that verified at one time against one
 * root: CRLs, issuer chains, TCB info and QE identity signatures. It is the
 * warm-path cache: reuse it for every quote of the same FMSPC; each quote is
 * checked against its validity window. It also remembers, by their exact
 * bytes, the last PCK chain, QE report signature and attestation key that
 * verified (a platform sends the same ones with every quote), so a warm
 * quote costs one signature verification. Not thread-safe: one per thread.
 * Opaque. */
struct cvm_dcap_verified;

/* cvm_dcap_collateral_authenticate checks that the collateral `c` is Intel's
 * and current at Unix time `at`, anchored in `root_der` (NULL: the built-in
 * Intel SGX Root CA; a root CA file in the collateral is never trusted by
 * itself): the root CA CRL; the PCK CRL, signed by the PCK CA of its issuer
 * chain [PCK Platform or Processor CA, root]; the TCB info and QE identity,
 * each signed by the TCB Signing certificate of its issuer chain [TCB
 * Signing, root], which must be named as Intel names it, issued by the root,
 * an end entity for digital signature, and not on the root CA CRL; every
 * certificate, CRL and document valid at `at`. On success `*out` is the
 * verified collateral for cvm_dcap_quote_authenticate. It applies no policy
 * and looks at no quote. Steps go to `rep`. */
CVM_API CVM_MUST_CHECK int cvm_dcap_collateral_authenticate(const struct cvm_dcap_collateral *c,
                                                            const uint8_t *root_der, size_t root_der_len,
                                                            int64_t at, struct cvm_report *rep,
                                                            struct cvm_dcap_verified **out);
CVM_API void cvm_dcap_verified_free(struct cvm_dcap_verified *v);
/* cvm_dcap_verified_tcb_info gives read access to the verified TCB info. */
CVM_API const struct cvm_tcb_info *cvm_dcap_verified_tcb_info(const struct cvm_dcap_verified *v);
CVM_API const struct cvm_qe_identity *cvm_dcap_verified_qe_identity(const struct cvm_dcap_verified *v);

/* One item of Intel's collateral, as a PCS or PCCS serves it. */
enum cvm_dcap_item_kind {
	CVM_DCAP_ITEM_TCB_INFO = 1,    /* JSON; issuer chain [TCB Signing, root] */
	CVM_DCAP_ITEM_QE_IDENTITY = 2, /* JSON (QE, TD_QE or QVE); issuer chain [TCB Signing, root] */
	CVM_DCAP_ITEM_PCK_CRL = 3,     /* DER or PEM; issuer chain [PCK Platform or Processor CA, root] */
	CVM_DCAP_ITEM_ROOT_CRL = 4,    /* DER or PEM; no chain: signed by the root */
	CVM_DCAP_ITEM_PCK_CERT = 5,    /* PEM; issuer chain [PCK Platform or Processor CA, root] */
};

/* struct cvm_dcap_item_info is what an item that authenticated says about
 * itself: its dates, and what names it (to compare with what was asked). */
struct cvm_dcap_item_info {
	int64_t issued;      /* issueDate / thisUpdate / notBefore */
	int64_t next_update; /* nextUpdate / notAfter of the item itself */
	int64_t expires;     /* the earliest nextUpdate / notAfter of the item and its chain */
	enum cvm_tee tee;    /* TCB_INFO: from its id */
	uint8_t fmspc[6];    /* TCB_INFO, PCK_CERT */
	char id[8];          /* QE_IDENTITY: "QE", "TD_QE", "QVE" */
	bool ca_platform;    /* PCK_CRL, PCK_CERT: issued by the PCK Platform CA (else Processor) */
};

/* cvm_dcap_item_authenticate checks one item alone at Unix time `at`, as
 * cvm_dcap_collateral_authenticate checks it among the others, anchored in
 * `root_der` (NULL: the built-in Intel SGX Root CA): a TCB info or QE
 * identity signed by the TCB Signing certificate of `chain_pem`, a PCK CRL
 * signed by the PCK CA of `chain_pem`, a root CA CRL signed by the root, a
 * PCK certificate (`body`, PEM) issued by the PCK CA of `chain_pem`; every
 * certificate in Intel's role, and the item and its chain valid at `at`.
 * When `root_crl` is given it must be the root's and current, and no
 * certificate the root issued may be on it. Fills `out` (may be NULL).
 * Steps go to `rep`. Returns 0, CVM_E_INVAL, CVM_E_FORMAT, CVM_E_CHAIN,
 * CVM_E_SIGNATURE, CVM_E_EXPIRED, CVM_E_REVOKED, CVM_E_UNSUPPORTED or
 * CVM_E_NOMEM. It applies no policy. */
CVM_API CVM_MUST_CHECK int cvm_dcap_item_authenticate(enum cvm_dcap_item_kind kind, const uint8_t *body,
                                                      size_t len, const uint8_t *chain_pem, size_t chain_len,
                                                      const uint8_t *root_crl, size_t root_crl_len,
                                                      const uint8_t *root_der, size_t root_der_len,
                                                      int64_t at, struct cvm_report *rep,
                                                      struct cvm_dcap_item_info *out);

/* struct cvm_dcap_result is Intel's verdict on one quote. */
struct cvm_dcap_result {
	struct cvm_quote quote;         /* borrows from the quote buffer */
	bool authentic;                 /* every signature, chain and CRL verified */
	enum cvm_tcb_status tcb_status; /* converged status, CVM_TCB_NONE if no level matched */
	enum cvm_tcb_status platform_status;
	enum cvm_tcb_status qe_status;
	enum cvm_tcb_status module_status; /* TDX module identity level, NONE if not used */
	int64_t tcb_date;
	uint32_t tcb_eval_num;
	char advisory_ids[CVM_ADVISORIES_MAX][CVM_ADVISORY_ID_MAX]; /* sorted, unique */
	size_t advisory_count;
	/* from the PCK certificate */
	uint8_t fmspc[6];
	uint8_t pce_id[2];
	uint8_t cpu_svn[16];
	uint16_t pce_svn;
	uint8_t ppid[16];
	int64_t collateral_expiry; /* earliest nextUpdate / notAfter of what was used */
};

/* cvm_dcap_quote_authenticate checks that the quote at `buf` is authentic by
 * Intel's rules against collateral that cvm_dcap_collateral_authenticate
 * accepted: the PCK chain [PCK certificate, PCK CA, root] in Intel's roles
 * (cached by its exact bytes), the PCK CA against the root CA CRL and the
 * PCK certificate against the PCK CRL, which that very CA must have signed;
 * the QE report signature and its binding of the attestation key, the QE
 * identity, the quote signature, and the TCB level. Returns 0 when the
 * quote is authentic and a TCB level matched with a status other than
 * Revoked; `res` is filled as far as verification got. It applies no
 * appraisal policy: a debug TD, an OutOfDate TCB, any advisory and any
 * measurement pass it. Callers that decide whether to trust a quote want
 * cvm_verify_quote. */
CVM_API CVM_MUST_CHECK int cvm_dcap_quote_authenticate(struct cvm_dcap_verified *v, const uint8_t *buf,
                                                       size_t len, int64_t at, struct cvm_report *rep,
                                                       struct cvm_dcap_result *res);

#endif

/* A test PKI that stands in for Intel's: it makes a root CA, a PCK Platform
 * CA, a PCK leaf certificate with the SGX extension, a TCB signing
 * certificate, both CRLs, a signed TCB info and QE identity, and signs TDX v4
 * and SGX v3 quotes whose QE report is bound to a fresh attestation key. All
 * keys are ECDSA P-256 and all signatures ECDSA with SHA-256.
 *
 * Every date, revocation and TCB input is a knob in struct cvm_testpki_opts;
 * cvm_testpki_opts_init fills defaults that verify at `now` with TCB status
 * UpToDate. Typical use in a test:
 *
 *	struct cvm_testpki_opts o;
 *	char dir[] = "/tmp/cvm-testpki-XXXXXX";
 *
 *	cvm_testpki_opts_init(&o, CVM_TEE_TDX, now);
 *	o.cert[CVM_TESTPKI_PCK_LEAF].to = now - 60;	// expired leaf
 *	mkdtemp(dir);
 *	r = cvm_testpki_write(&o, dir);		// collateral files + quote.bin
 *	...
 *	cvm_testpki_dir_remove(dir);
 *
 * For many quotes under one PKI (a simulated TEE), use cvm_testpki_new once,
 * cvm_testpki_collateral (in memory) or cvm_testpki_write_collateral (to a
 * folder), then cvm_testpki_quote per quote. This is test code: keys are generated
 * fresh in memory and never leave the process except as certificates. */
#ifndef CVMKIT_TESTS_TESTPKI_H
#define CVMKIT_TESTS_TESTPKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/dcap.h>
#include <cvmkit/err.h>
#include <cvmkit/quote.h>

#define CVM_TESTPKI_LEVELS_MAX 8
#define CVM_TESTPKI_ADVISORIES_MAX 8
#define CVM_TESTPKI_REVOKED_MAX 8
#define CVM_TESTPKI_AUTH_DATA_LEN 32u
#define CVM_TESTPKI_JSON_MAX ((size_t)64 * 1024)

/* The certificates of the PKI, used as indexes into the per-certificate knobs. */
enum cvm_testpki_cert {
	CVM_TESTPKI_ROOT = 0,   /* "Intel SGX Root CA", self-signed */
	CVM_TESTPKI_PCK_CA,     /* "Intel SGX PCK Platform CA", signed by the root */
	CVM_TESTPKI_PCK_LEAF,   /* "Intel SGX PCK Certificate", signed by the PCK CA */
	CVM_TESTPKI_TCB_SIGNER, /* "Intel SGX TCB Signing", signed by the root */
	CVM_TESTPKI_CERT_COUNT
};

/* Faults injected into the collateral (cvm_testpki_opts.faults). */
#define CVM_TESTPKI_FAULT_PCK_CRL_WRONG_KEY (1u << 0)  /* PCK CRL signed by an unrelated key */
#define CVM_TESTPKI_FAULT_ROOT_CRL_WRONG_KEY (1u << 1) /* root CA CRL signed by an unrelated key */
#define CVM_TESTPKI_FAULT_TCB_INFO_TAMPER (1u << 2)    /* tcbInfo text altered after signing */
#define CVM_TESTPKI_FAULT_QE_IDENTITY_TAMPER (1u << 3) /* enclaveIdentity text altered after signing */

/* Faults injected into a quote (cvm_testpki_quote_opts.faults). */
#define CVM_TESTPKI_FAULT_QUOTE_SIG (1u << 0)     /* quote signature does not verify */
#define CVM_TESTPKI_FAULT_QE_REPORT_SIG (1u << 1) /* QE report signature does not verify */
#define CVM_TESTPKI_FAULT_QE_BINDING (1u << 2)    /* QE report_data is not the key/auth-data hash */

/* struct cvm_testpki_window is a validity window in Unix seconds: notBefore
 * and notAfter of a certificate, thisUpdate and nextUpdate of a CRL, or
 * issueDate and nextUpdate of a TCB info or QE identity. */
struct cvm_testpki_window {
	int64_t from;
	int64_t to;
};

/* struct cvm_testpki_advisories lists advisory IDs (static strings). */
struct cvm_testpki_advisories {
	size_t count;
	const char *ids[CVM_TESTPKI_ADVISORIES_MAX];
};

/* struct cvm_testpki_tcb_level is one entry of tcbInfo.tcbLevels. `status`
 * is written verbatim, so a test may also emit a name Intel never uses. */
struct cvm_testpki_tcb_level {
	uint8_t sgx_svn[16];
	uint16_t pce_svn;
	uint8_t tdx_svn[16]; /* TDX only */
	const char *status;  /* "UpToDate", "OutOfDate", "Revoked", ... */
	int64_t tcb_date;
	struct cvm_testpki_advisories adv;
};

/* struct cvm_testpki_qe_level is one entry of enclaveIdentity.tcbLevels (and
 * of a TDX module identity's tcbLevels, where isv_svn is one byte). */
struct cvm_testpki_qe_level {
	uint16_t isv_svn;
	const char *status;
	int64_t tcb_date;
	struct cvm_testpki_advisories adv;
};

/* struct cvm_testpki_quote_opts describes one quote. The bodies are the
 * decoded structs of quote.h; reserved fields are written as zeros. */
struct cvm_testpki_quote_opts {
	uint16_t qe_svn; /* header; defaults to the QE report's isv_svn */
	uint16_t pce_svn;
	uint8_t user_data[20];
	struct cvm_tdx_report td;  /* TDX quote body (TD 1.0 only) */
	struct cvm_sgx_report app; /* SGX quote body */
	/* The QE report. Its report_data is computed (SHA-256 of attestation key
	 * and auth data, then zeros) unless CVM_TESTPKI_FAULT_QE_BINDING. */
	struct cvm_sgx_report qe;
	uint8_t auth_data[CVM_TESTPKI_AUTH_DATA_LEN];
	bool is_debug;   /* sets TD attribute DEBUG or SGX attribute DEBUG in the body */
	unsigned faults; /* CVM_TESTPKI_FAULT_QUOTE_SIG, ... */
};

/* struct cvm_testpki_opts holds every knob. Fill it with
 * cvm_testpki_opts_init, then change what the test is about. */
struct cvm_testpki_opts {
	enum cvm_tee tee;
	int64_t now; /* the time the defaults are centred on */

	/* dates */
	struct cvm_testpki_window cert[CVM_TESTPKI_CERT_COUNT];
	struct cvm_testpki_window root_crl, pck_crl;
	struct cvm_testpki_window tcb_info, qe_identity;

	/* revocation: serial numbers (non-zero, distinct), whether each
	 * certificate's serial is listed on the CRL of its issuer (root CRL for
	 * the PCK CA and TCB signer, PCK CRL for the leaf; ignored for the
	 * root), and unrelated serials listed on both CRLs */
	uint64_t serial[CVM_TESTPKI_CERT_COUNT];
	bool revoke[CVM_TESTPKI_CERT_COUNT];
	size_t other_revoked_count;
	uint64_t other_revoked[CVM_TESTPKI_REVOKED_MAX];
	unsigned faults; /* CVM_TESTPKI_FAULT_PCK_CRL_WRONG_KEY, ... */

	/* the PCK certificate's SGX extension */
	uint8_t ppid[16];
	uint8_t cpu_svn[16];
	uint16_t pce_svn;
	uint8_t pce_id[2];
	uint8_t fmspc[6];

	/* tcb_info.json */
	uint8_t tcb_fmspc[6]; /* defaults to fmspc */
	uint8_t tcb_pce_id[2];
	uint32_t tcb_eval_num;
	size_t level_count;
	struct cvm_testpki_tcb_level levels[CVM_TESTPKI_LEVELS_MAX]; /* written in this order */
	/* TDX: "tdxModule" and one "tdxModuleIdentities" entry, id
	 * "TDX_%02X" of module_major, with module_levels */
	uint8_t module_mrsigner[48];
	uint8_t module_attributes[8];
	uint8_t module_attributes_mask[8];
	uint8_t module_major;
	size_t module_level_count;
	struct cvm_testpki_qe_level module_levels[CVM_TESTPKI_LEVELS_MAX];

	/* qe_identity.json ("TD_QE" for TDX, "QE" for SGX) */
	uint8_t qe_mrsigner[32];
	uint16_t qe_isv_prod_id;
	uint32_t qe_miscselect;
	uint32_t qe_miscselect_mask;
	uint8_t qe_attributes[16];
	uint8_t qe_attributes_mask[16];
	size_t qe_level_count;
	struct cvm_testpki_qe_level qe_levels[CVM_TESTPKI_LEVELS_MAX];

	/* quote.bin, as cvm_testpki_write writes it */
	struct cvm_testpki_quote_opts quote;
};

/* cvm_testpki_opts_init fills `o` with defaults for `tee` centred on `now`:
 * certificates valid now-1y..now+5y, CRLs, TCB info and QE identity
 * now-1d..now+29d, nothing revoked but two unrelated serials on each CRL, a
 * first TCB level UpToDate that matches the PCK certificate and the quote,
 * a second, lower one OutOfDate with two advisories, a QE identity whose
 * first level (UpToDate) matches the QE report, and a TD body with
 * SEPT_VE_DISABLE set and no DEBUG. */
void cvm_testpki_opts_init(struct cvm_testpki_opts *o, enum cvm_tee tee, int64_t now);

/* struct cvm_testpki holds the keys, certificates, CRLs and signed JSON made
 * from one set of options. Opaque. */
struct cvm_testpki;

/* cvm_testpki_new generates keys and builds all collateral from `o` (which
 * it copies). Returns 0, CVM_E_INVAL (bad options), CVM_E_NOMEM,
 * CVM_E_TOO_LARGE or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_testpki_new(const struct cvm_testpki_opts *o, struct cvm_testpki **out);
void cvm_testpki_free(struct cvm_testpki *pki);

/* cvm_testpki_write_collateral writes into the existing folder `dir` the
 * files a collateral folder holds: tcb_info.json, qe_identity.json,
 * tcb_info_issuer_chain.pem, qe_identity_issuer_chain.pem,
 * pck_crl_issuer_chain.pem, pck_crl.der, root_ca_crl.der and
 * intel_sgx_root_ca.der (the test root). Returns 0 or CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_testpki_write_collateral(const struct cvm_testpki *pki, const char *dir);

/* cvm_testpki_quote signs a quote described by `q` (NULL: the one in the
 * options) with a fresh attestation key, certified by a QE report that the
 * PCK leaf key signs. The quote is TDX v4 or SGX v3 after the PKI's TEE.
 * The caller frees `*out`. Returns 0, CVM_E_NOMEM, CVM_E_TOO_LARGE or
 * CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_testpki_quote(const struct cvm_testpki *pki, const struct cvm_testpki_quote_opts *q,
                                     uint8_t **out, size_t *out_len);

/* cvm_testpki_collateral gives the same collateral in memory, as
 * cvm_dcap_collateral_load_dir would load it from the folder (root_ca set);
 * the caller frees it with cvm_dcap_collateral_free. Returns 0 or
 * CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_testpki_collateral(const struct cvm_testpki *pki, struct cvm_dcap_collateral **out);

/* cvm_testpki_opts_of gives the options `pki` was made from, so that a
 * caller can start a quote from their quote defaults. */
const struct cvm_testpki_opts *cvm_testpki_opts_of(const struct cvm_testpki *pki);

/* cvm_testpki_root_der gives the root CA certificate (DER), borrowed from
 * `pki`. */
void cvm_testpki_root_der(const struct cvm_testpki *pki, const uint8_t **der, size_t *der_len);

/* cvm_testpki_write builds a PKI from `o` and writes the collateral files and
 * quote.bin into the existing folder `dir`. */
CVM_MUST_CHECK int cvm_testpki_write(const struct cvm_testpki_opts *o, const char *dir);

/* cvm_testpki_dir_remove deletes the files cvm_testpki_write may have made
 * in `dir`, then the folder itself (which must then be empty). Other files
 * are left alone, so a wrong path cannot wipe a tree. Returns 0 or
 * CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_testpki_dir_remove(const char *dir);

#endif

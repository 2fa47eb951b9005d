/* A mock PKI shaped like Intel's DCAP PKI, for the simulated TEE (lib/sim,
 * issued through lib/crypto's crypto_lib.h): a root CA, a PCK Platform CA, a PCK leaf certificate
 * with the SGX extension (PPID, TCB components, PCE ID, FMSPC), a TCB signing
 * certificate, both CRLs, a signed TCB info and QE identity, and TDX v4 and
 * SGX v3 quotes whose QE report is bound to a fresh attestation key. All
 * keys are ECDSA P-256 and all signatures ECDSA with SHA-256.
 *
 * Internal to the library: lib/tee keeps one PKI in a folder for the life of
 * a simulated platform (`cvm sim`), and the unit tests make a fresh PKI per
 * case with one knob changed (tests/common/testpki.h wraps this header under
 * its historic cvm_testpki_* names, and makes the broken collateral and
 * quotes the tests need from the building blocks of lib/sim/mock_int.h).
 *
 * Nothing here is ever a trust anchor by default. Every root it makes carries
 * the marker extension CVM_MOCKPKI_MARKER_OID, which
 * cvm_mockpki_der_is_simulated detects, so that a verdict over its evidence
 * can say "simulated". The names (CN=Intel SGX Root CA, ...) are Intel's, so
 * that the verifier runs the same code on both, its name checks included;
 * they prove nothing.
 *
 * Every date, revocation and TCB input is a knob in struct cvm_mockpki_opts;
 * cvm_mockpki_opts_init fills defaults that verify at `now` with TCB status
 * UpToDate. Typical use:
 *
 *	struct cvm_mockpki_opts o;
 *	struct cvm_mockpki *pki;
 *
 *	cvm_mockpki_opts_init(&o, CVM_TEE_TDX, now);
 *	o.cert[CVM_MOCKPKI_PCK_LEAF].to = now - 60;	// expired leaf
 *	r = cvm_mockpki_new(&o, &pki);
 *	r = cvm_mockpki_write_collateral(pki, dir);	// the collateral folder
 *	r = cvm_mockpki_quote(pki, NULL, &quote, &quote_len);
 *	cvm_mockpki_free(pki);
 *
 * To keep a PKI across processes, cvm_mockpki_save_keys writes its keys
 * (mode 0600) and certificates, and cvm_mockpki_load rebuilds it from them. */
#ifndef CVM_SIM_MOCKPKI_LIB_H
#define CVM_SIM_MOCKPKI_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/err.h>
#include <cvmkit/quote.h>

#define CVM_MOCKPKI_LEVELS_MAX 8
#define CVM_MOCKPKI_ADVISORIES_MAX 8
#define CVM_MOCKPKI_REVOKED_MAX 8
#define CVM_MOCKPKI_AUTH_DATA_LEN 32u
#define CVM_MOCKPKI_JSON_MAX ((size_t)64 * 1024)

/* The certificates of the PKI, used as indexes into the per-certificate knobs. */
enum cvm_mockpki_cert {
	CVM_MOCKPKI_ROOT = 0,   /* "Intel SGX Root CA", self-signed */
	CVM_MOCKPKI_PCK_CA,     /* "Intel SGX PCK Platform CA", signed by the root */
	CVM_MOCKPKI_PCK_LEAF,   /* "Intel SGX PCK Certificate", signed by the PCK CA */
	CVM_MOCKPKI_TCB_SIGNER, /* "Intel SGX TCB Signing", signed by the root */
	CVM_MOCKPKI_CERT_COUNT
};

/* struct cvm_mockpki_window is a validity window in Unix seconds: notBefore
 * and notAfter of a certificate, thisUpdate and nextUpdate of a CRL, or
 * issueDate and nextUpdate of a TCB info or QE identity. */
struct cvm_mockpki_window {
	int64_t from;
	int64_t to;
};

/* struct cvm_mockpki_advisories lists advisory IDs (static strings). */
struct cvm_mockpki_advisories {
	size_t count;
	const char *ids[CVM_MOCKPKI_ADVISORIES_MAX];
};

/* struct cvm_mockpki_tcb_level is one entry of tcbInfo.tcbLevels. `status`
 * is written verbatim, so a test may also emit a name Intel never uses. */
struct cvm_mockpki_tcb_level {
	uint8_t sgx_svn[16];
	uint16_t pce_svn;
	uint8_t tdx_svn[16]; /* TDX only */
	const char *status;  /* "UpToDate", "OutOfDate", "Revoked", ... */
	int64_t tcb_date;
	struct cvm_mockpki_advisories adv;
};

/* struct cvm_mockpki_qe_level is one entry of enclaveIdentity.tcbLevels (and
 * of a TDX module identity's tcbLevels, where isv_svn is one byte). */
struct cvm_mockpki_qe_level {
	uint16_t isv_svn;
	const char *status;
	int64_t tcb_date;
	struct cvm_mockpki_advisories adv;
};

/* struct cvm_mockpki_quote_opts describes one quote. The bodies are the
 * decoded structs of quote.h; reserved fields are written as zeros. */
struct cvm_mockpki_quote_opts {
	uint16_t qe_svn; /* header; defaults to the QE report's isv_svn */
	uint16_t pce_svn;
	uint8_t user_data[20];
	struct cvm_tdx_report td;  /* TDX quote body (TD 1.0 only) */
	struct cvm_sgx_report app; /* SGX quote body */
	/* The QE report. Its report_data is computed: SHA-256 of the attestation
	 * key and the auth data, then zeros. */
	struct cvm_sgx_report qe;
	uint8_t auth_data[CVM_MOCKPKI_AUTH_DATA_LEN];
	bool is_debug; /* sets TD attribute DEBUG or SGX attribute DEBUG in the body */
};

/* struct cvm_mockpki_opts holds every knob. Fill it with
 * cvm_mockpki_opts_init, then change what the test is about. */
struct cvm_mockpki_opts {
	enum cvm_tee tee;
	int64_t now; /* the time the defaults are centred on */

	/* dates */
	struct cvm_mockpki_window cert[CVM_MOCKPKI_CERT_COUNT];
	struct cvm_mockpki_window root_crl, pck_crl;
	struct cvm_mockpki_window tcb_info, qe_identity;

	/* revocation: serial numbers (non-zero, distinct), whether each
	 * certificate's serial is listed on the CRL of its issuer (root CRL for
	 * the PCK CA and TCB signer, PCK CRL for the leaf; ignored for the
	 * root), and unrelated serials listed on both CRLs */
	uint64_t serial[CVM_MOCKPKI_CERT_COUNT];
	bool revoke[CVM_MOCKPKI_CERT_COUNT];
	size_t other_revoked_count;
	uint64_t other_revoked[CVM_MOCKPKI_REVOKED_MAX];

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
	struct cvm_mockpki_tcb_level levels[CVM_MOCKPKI_LEVELS_MAX]; /* written in this order */
	/* TDX: "tdxModule" and one "tdxModuleIdentities" entry, id
	 * "TDX_%02X" of module_major, with module_levels */
	uint8_t module_mrsigner[48];
	uint8_t module_attributes[8];
	uint8_t module_attributes_mask[8];
	uint8_t module_major;
	size_t module_level_count;
	struct cvm_mockpki_qe_level module_levels[CVM_MOCKPKI_LEVELS_MAX];

	/* qe_identity.json ("TD_QE" for TDX, "QE" for SGX) */
	uint8_t qe_mrsigner[32];
	uint16_t qe_isv_prod_id;
	uint32_t qe_miscselect;
	uint32_t qe_miscselect_mask;
	uint8_t qe_attributes[16];
	uint8_t qe_attributes_mask[16];
	size_t qe_level_count;
	struct cvm_mockpki_qe_level qe_levels[CVM_MOCKPKI_LEVELS_MAX];

	/* quote.bin, as cvm_mockpki_write writes it */
	struct cvm_mockpki_quote_opts quote;
};

/* cvm_mockpki_opts_init fills `o` with defaults for `tee` centred on `now`:
 * certificates valid now-1y..now+5y, CRLs, TCB info and QE identity
 * now-1d..now+29d, nothing revoked but two unrelated serials on each CRL, a
 * first TCB level UpToDate that matches the PCK certificate and the quote,
 * a second, lower one OutOfDate with two advisories, a QE identity whose
 * first level (UpToDate) matches the QE report, and a TD body with
 * SEPT_VE_DISABLE set and no DEBUG. */
void cvm_mockpki_opts_init(struct cvm_mockpki_opts *o, enum cvm_tee tee, int64_t now);

/* struct cvm_mockpki holds the keys, certificates, CRLs and signed JSON made
 * from one set of options. Opaque. */
struct cvm_mockpki;

/* cvm_mockpki_new generates keys and builds all collateral from `o` (which
 * it copies). Returns 0, CVM_E_INVAL (bad options), CVM_E_NOMEM,
 * CVM_E_TOO_LARGE or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_mockpki_new(const struct cvm_mockpki_opts *o, struct cvm_mockpki **out);
void cvm_mockpki_free(struct cvm_mockpki *pki);

/* cvm_mockpki_write_collateral writes into the existing folder `dir` the
 * files a collateral folder holds: tcb_info.json, qe_identity.json,
 * tcb_info_issuer_chain.pem, qe_identity_issuer_chain.pem,
 * pck_crl_issuer_chain.pem, pck_crl.der, root_ca_crl.der and
 * intel_sgx_root_ca.der (the test root). Returns 0 or CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_mockpki_write_collateral(const struct cvm_mockpki *pki, const char *dir);

/* cvm_mockpki_quote signs a quote described by `q` (NULL: the one in the
 * options) with a fresh attestation key, certified by a QE report that the
 * PCK leaf key signs. The quote is TDX v4 or SGX v3 after the PKI's TEE.
 * The caller frees `*out`. Returns 0, CVM_E_NOMEM, CVM_E_TOO_LARGE or
 * CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_mockpki_quote(const struct cvm_mockpki *pki, const struct cvm_mockpki_quote_opts *q,
                                     uint8_t **out, size_t *out_len);

/* cvm_mockpki_opts_of gives the options `pki` was made from, so that a
 * caller can start a quote from their quote defaults. */
const struct cvm_mockpki_opts *cvm_mockpki_opts_of(const struct cvm_mockpki *pki);

/* cvm_mockpki_root_der gives the root CA certificate (DER), borrowed from
 * `pki`. */
void cvm_mockpki_root_der(const struct cvm_mockpki *pki, const uint8_t **der, size_t *der_len);

/* The files of a collateral folder, in the order cvm_mockpki_file gives
 * them; cvm_mockpki_file_name names each. */
enum cvm_mockpki_file {
	CVM_MOCKPKI_F_TCB_INFO = 0,      /* tcb_info.json */
	CVM_MOCKPKI_F_QE_IDENTITY,       /* qe_identity.json */
	CVM_MOCKPKI_F_TCB_INFO_CHAIN,    /* tcb_info_issuer_chain.pem */
	CVM_MOCKPKI_F_QE_IDENTITY_CHAIN, /* qe_identity_issuer_chain.pem */
	CVM_MOCKPKI_F_PCK_CRL_CHAIN,     /* pck_crl_issuer_chain.pem */
	CVM_MOCKPKI_F_PCK_CRL,           /* pck_crl.der */
	CVM_MOCKPKI_F_ROOT_CRL,          /* root_ca_crl.der */
	CVM_MOCKPKI_F_ROOT_DER,          /* intel_sgx_root_ca.der: the mock root */
	CVM_MOCKPKI_F_COUNT
};

/* cvm_mockpki_file_name returns the file name of `f` (static), or NULL when
 * `f` is out of range. */
const char *cvm_mockpki_file_name(enum cvm_mockpki_file f);
/* cvm_mockpki_file lends the bytes of collateral file `f` (borrowed from
 * `pki`; no NUL is appended). An out-of-range `f` gives NULL and 0. */
void cvm_mockpki_file(const struct cvm_mockpki *pki, enum cvm_mockpki_file f, const uint8_t **p, size_t *len);

/* cvm_mockpki_save_keys writes into the existing folder `dir` each
 * certificate's private key as PKCS#8 PEM with mode 0600 (root.key,
 * pck_ca.key, pck.key, tcb_signer.key) and its certificate as PEM (root.pem,
 * pck_ca.pem, pck.pem, tcb_signer.pem). It refuses (CVM_E_INVAL) a `dir`
 * that others may write to. The key files are secrets: whoever reads them
 * can sign quotes this PKI's root vouches for. Returns 0, CVM_E_INVAL,
 * CVM_E_CRYPTO or CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_mockpki_save_keys(const struct cvm_mockpki *pki, const char *dir);

/* cvm_mockpki_load rebuilds a PKI from the keys and certificates that
 * cvm_mockpki_save_keys wrote to `dir`, and builds fresh collateral (CRLs,
 * TCB info, QE identity) from `o`, whose certificate windows, serials and
 * SGX extension values are ignored (the saved certificates are used as they
 * are). It refuses key files that group or others have access to
 * (CVM_E_INVAL). It checks that each key is a P-256 key held by its
 * certificate and that each certificate is issued by its issuer (names, CA
 * flag and signature), but not the dates. Returns 0, CVM_E_INVAL,
 * CVM_E_FORMAT, CVM_E_TOO_LARGE, CVM_E_NOMEM, CVM_E_CRYPTO or
 * CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_mockpki_load(const struct cvm_mockpki_opts *o, const char *dir,
                                    struct cvm_mockpki **out);

/* CVM_MOCKPKI_MARKER_OID names the non-critical extension every mock root
 * carries: an arc under 2.25 (a UUID, ITU-T X.667) that no real vendor
 * certificate has. Its value is a UTF8String saying the root is simulated. */
#define CVM_MOCKPKI_MARKER_OID "2.25.170417612357902609585697567450520157869"

/* cvm_mockpki_der_is_simulated is true when the `len` bytes at `der` are one
 * X.509 certificate (DER) that carries CVM_MOCKPKI_MARKER_OID. It checks no
 * signature: a marker only ever makes evidence look less trustworthy. */
bool cvm_mockpki_der_is_simulated(const uint8_t *der, size_t len);

/* cvm_mockpki_pem_has_simulated is true when any certificate of the PEM chain
 * in the `len` bytes at `pem` carries the marker (a quote's PCK chain, or an
 * SNP certificate chain). Unparseable input gives false. */
bool cvm_mockpki_pem_has_simulated(const uint8_t *pem, size_t len);

/* cvm_mockpki_json_text writes the unsigned text of `f`, the tcbInfo
 * (CVM_MOCKPKI_F_TCB_INFO) or enclaveIdentity (CVM_MOCKPKI_F_QE_IDENTITY)
 * object that `o` describes, into a new buffer: what the TCB signing key
 * signs. Returns 0, CVM_E_INVAL (another file), CVM_E_NOMEM or
 * CVM_E_TOO_LARGE. */
CVM_MUST_CHECK int cvm_mockpki_json_text(const struct cvm_mockpki_opts *o, enum cvm_mockpki_file f,
                                         uint8_t **out, size_t *out_len);

#endif

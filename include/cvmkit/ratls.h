/* RA-TLS certificates: X.509 certificates that carry TEE evidence binding
 * their own key, in dstack's profile (OIDs 1.3.6.1.4.1.62397.1.x) and in
 * Cosmian's (1.2.840.113741.1337.6/.7/.8), and dstack's VersionedAttestation
 * (SCALE V0, MessagePack V1) that the 1.8 extension and the guest API's
 * Attest carry. Parsing verifies nothing; cvm_ratls_verifier does. */
#ifndef CVMKIT_RATLS_H
#define CVMKIT_RATLS_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amd.h"
#include "dcap.h"
#include "policy.h"
#include "quote.h"
#include "report.h"
#include "snp.h"

struct cvm_p256_keypair;
struct cvm_cert;

#define CVM_RATLS_CERT_MAX ((size_t)1 << 20)  /* one certificate's DER */
#define CVM_VA_MAX ((size_t)10 * 1024 * 1024) /* a VersionedAttestation (dstack's cap) */

enum cvm_ratls_profile {
	CVM_RATLS_PROFILE_NONE = 0, /* no RA-TLS extension */
	CVM_RATLS_PROFILE_DSTACK = 1,
	CVM_RATLS_PROFILE_COSMIAN = 2,
};

enum cvm_ratls_tee {
	CVM_RATLS_TEE_NONE = 0,
	CVM_RATLS_TEE_TDX = 1,
	CVM_RATLS_TEE_SGX = 2,
	CVM_RATLS_TEE_SNP = 3,
};

CVM_API const char *cvm_ratls_profile_name(enum cvm_ratls_profile p); /* "dstack", "cosmian", "none" */
CVM_API const char *cvm_ratls_tee_name(enum cvm_ratls_tee t);         /* "tdx", "sgx", "snp", "none" */

/* ---- dstack's VersionedAttestation (spec dstack.md §5.6) ---------------- */

struct cvm_va_event { /* one TdxEvent of the event log */
	uint32_t imr, event_type;
	const uint8_t *digest; /* may be empty (stripped) */
	size_t digest_len;
	const char *event; /* NUL-terminated name, "" for boot events */
	const uint8_t *payload;
	size_t payload_len;
	unsigned version; /* runtime events: dstack digest rule 1 or 2 (V1 only; 0 reads as 1) */
};

struct cvm_va_runtime_event {
	const char *event;
	const uint8_t *payload;
	size_t payload_len;
	unsigned version; /* digest rule 1 or 2 (V1 only; 0 reads as 1) */
};

/* struct cvm_va is a decoded VersionedAttestation. Every pointer points into
 * memory the struct owns (freed by cvm_va_free). */
struct cvm_va {
	unsigned version;       /* 0 (SCALE) or 1 (MessagePack) */
	unsigned variant;       /* V0 quote variant: 0 DstackTdx .. 4 DstackAwsNitroTpm */
	enum cvm_ratls_tee tee; /* TDX or SNP (others: NONE, decoded but not verifiable) */
	const uint8_t *quote;   /* TDX quote, or SNP report */
	size_t quote_len;
	struct cvm_va_event *events; /* the event log */
	size_t event_count;
	struct cvm_va_runtime_event *runtime_events;
	size_t runtime_event_count;
	uint8_t report_data[64];
	const char *config; /* vm_config (or sys-config) JSON text */
	size_t config_len;
	/* variant 3 (DstackAmdSevSnp): the certificate blobs next to the report
	 * and the MrConfigV3 document its HOST_DATA binds */
	const uint8_t *const *snp_chain;
	const size_t *snp_chain_len;
	size_t snp_chain_count;
	const char *mr_config;
	size_t mr_config_len;
	/* variant 1 (DstackGcpTdx), V0 only: the TpmQuote, SCALE-encoded as carried
	 * (structure checked, contents not interpreted) */
	const uint8_t *gcp_tpm_quote;
	size_t gcp_tpm_quote_len;
	/* V1 stack "dstack-pod": its report_data_payload (NULL for "dstack") */
	const char *report_data_payload;
	size_t report_data_payload_len;
};

/* cvm_va_decode decodes `len` bytes (at most CVM_VA_MAX) in either encoding
 * (first byte 0x00: SCALE V0; a MessagePack map: V1). Trailing bytes are an
 * error. On failure `err` says what and at which byte. Returns 0,
 * CVM_E_FORMAT, CVM_E_TRUNCATED, CVM_E_TOO_LARGE, CVM_E_UNSUPPORTED,
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_va_decode(const uint8_t *buf, size_t len, struct cvm_va **out, char *err,
                                         size_t err_len);
CVM_API void cvm_va_free(struct cvm_va *va);

/* cvm_va_encode writes `va` as V0 SCALE (version 0) or V1 MessagePack
 * (version 1); *out is malloc'd. */
CVM_API CVM_MUST_CHECK int cvm_va_encode(const struct cvm_va *va, unsigned version, uint8_t **out,
                                         size_t *out_len);

/* struct cvm_va_check is what cvm_va_check found in a decoded attestation:
 * the quote or report parsed, the event log replayed (boot events by their
 * logged digests, runtime events by the digest of their name and payload,
 * which a logged digest must equal), the runtime events alone replayed to
 * RTMR3, MRCONFIGID decoded. Nothing in it is verified: the quote's
 * signature, chain and TCB are the caller's (cvm_verify_quote). */
struct cvm_va_check {
	bool quote_parsed; /* a TDX quote: `quote` (borrows from the attestation) */
	struct cvm_quote quote;
	bool snp_parsed; /* an SEV-SNP report: `snp` */
	struct cvm_snp_report snp;
	bool report_data_matches; /* the attestation's report_data is the quote's */
	size_t event_count, runtime_event_count;
	bool log_ok; /* every event could be replayed (else log_why) */
	char log_why[160];
	unsigned covered;  /* bit i: events extend RTMR i, all with digests */
	unsigned stripped; /* bit i: an event of RTMR i has no digest */
	unsigned mismatch; /* bit i: covered, and the replay differs from the quote */
	uint8_t replay[4][48];
	bool runtime_ok, runtime_matches; /* the runtime events replay to the quote's RTMR3 */
	uint8_t runtime_rtmr3[48];
	unsigned mr_config_layout; /* MRCONFIGID's first byte; 0 when all zero */
	bool has_compose_hash, compose_hash_matches;
	uint8_t config_sha256[32];
	/* the MrConfigV3 document (SEV-SNP, or MRCONFIGID layout 3), hashed */
	bool has_mr_config_doc, mr_config_doc_matches;
	uint8_t mr_config_doc_hash[32];
};

/* cvm_va_variant_name names a V0 quote variant as dstack does
 * ("dstack-tdx", "dstack-gcp-tdx", ...; "unknown" past the last). */
CVM_API const char *cvm_va_variant_name(unsigned variant);
/* cvm_va_check fills `c` from `va` (which must outlive `c`: the parsed
 * quote borrows from it). It cannot fail; what it could not do is in `c`. */
CVM_API void cvm_va_check(const struct cvm_va *va, struct cvm_va_check *c);
/* cvm_va_replay_ok is true when the log replays, covers RTMR3, and its
 * RTMR3 matches the quote. RTMR0..2 are not required: dstack strips its
 * logs, and compares those registers with values computed from the image. */
CVM_API bool cvm_va_replay_ok(const struct cvm_va_check *c);

/* ---- parsing a certificate -------------------------------------------- */

/* struct cvm_ratls_info is what a certificate's RA-TLS extensions hold. */
struct cvm_ratls_info {
	enum cvm_ratls_profile profile;
	enum cvm_ratls_tee tee;
	const uint8_t *quote; /* TDX/SGX quote (Cosmian TDX: padding removed), or the SNP report */
	size_t quote_len;
	struct cvm_amd_collateral
	    snp_certs;               /* Cosmian SEV: the VCEK/ASK/ARK the extension carries (may be empty) */
	unsigned cosmian_sev_format; /* 0 none, 1 tee-tools 1.6.2 bincode, 2 tee-tools 2.x, 3 2023 tagged */
	const uint8_t *event_log_json; /* dstack 1.2 (legacy) JSON, as carried */
	size_t event_log_json_len;
	struct cvm_va *attestation; /* dstack 1.8, decoded (NULL when absent) */
	bool has_app_id;
	uint8_t app_id[20];      /* dstack 1.3 */
	char usage[64];          /* dstack 1.4, "" when absent */
	const uint8_t *app_info; /* dstack 1.9 MessagePack, as carried (NULL when absent) */
	size_t app_info_len;
	uint8_t report_data[64];          /* what the quote/report carries */
	uint8_t expected_report_data[64]; /* what the profile's binding requires for this cert's key */
	bool binding;                     /* report_data == expected_report_data (Cosmian: first 32 bytes) */
	uint8_t cosmian_extra[32];        /* Cosmian: report_data[32..64] */
};

/* cvm_ratls_parse reads one DER certificate and every RA-TLS extension it
 * carries, decoding each with the bounded reader. A certificate without any
 * is not an error (profile NONE). Returns 0, CVM_E_FORMAT, CVM_E_TRUNCATED,
 * CVM_E_TOO_LARGE, CVM_E_UNSUPPORTED, CVM_E_NOMEM; `err` names the extension
 * at fault. */
CVM_API CVM_MUST_CHECK int cvm_ratls_parse(const uint8_t *der, size_t len, struct cvm_ratls_info **out,
                                           char *err, size_t err_len);
CVM_API void cvm_ratls_info_free(struct cvm_ratls_info *info);

/* ---- dstack's AppInfo (the 1.9 extension) ------------------------------ */

/* struct cvm_ratls_app_info is dstack's AppInfo (spec §6.1): what a
 * certificate's 1.9 extension says of the app. Every field is bytes
 * (borrowed; length 0 for none) but mr_system and mr_aggregated. */
struct cvm_ratls_app_info {
	const uint8_t *app_id, *compose_hash, *instance_id, *os_image_hash, *key_provider_info;
	size_t app_id_len, compose_hash_len, instance_id_len, os_image_hash_len, key_provider_info_len;
	uint8_t device_id[32], mr_system[32], mr_aggregated[32];
};

/* struct cvm_ratls_app_ids holds the identities a 1.9 extension names, as
 * copies: what cvm-gatewayd reads from a CVM's certificate to register it. */
#define CVM_RATLS_APP_ID_FIELD_MAX 64u
struct cvm_ratls_app_ids {
	uint8_t app_id[CVM_RATLS_APP_ID_FIELD_MAX], compose_hash[CVM_RATLS_APP_ID_FIELD_MAX],
	    instance_id[CVM_RATLS_APP_ID_FIELD_MAX];
	size_t app_id_len, compose_hash_len, instance_id_len;
};

/* cvm_ratls_app_info_ids checks the 1.9 extension's bytes (`buf`, as
 * cvm_ratls_info.app_info carries them) as cvm_ratls_parse does and copies
 * its app id, compose hash and instance id into `out`. It proves nothing of
 * their origin: that is the certificate's issuer's word. Returns 0,
 * CVM_E_FORMAT, CVM_E_TOO_LARGE (a field over CVM_RATLS_APP_ID_FIELD_MAX);
 * `err` says why. */
CVM_API CVM_MUST_CHECK int cvm_ratls_app_info_ids(const uint8_t *buf, size_t len,
                                                  struct cvm_ratls_app_ids *out, char *err, size_t err_len);

/* cvm_ratls_app_info_encode writes `in` as dstack does (rmp_serde's array
 * form, bytes as bin) into a new buffer (*out, the caller frees it).
 * Returns 0, CVM_E_INVAL (a field over CVM_RATLS_APP_INFO_FIELD_MAX) or
 * CVM_E_NOMEM. */
#define CVM_RATLS_APP_INFO_FIELD_MAX 4096u
CVM_API CVM_MUST_CHECK int cvm_ratls_app_info_encode(const struct cvm_ratls_app_info *in, uint8_t **out,
                                                     size_t *out_len);

/* ---- making a certificate ---------------------------------------------- */

/* cvm_ratls_report_data computes the report_data the profile binds to
 * `key` (dstack: SHA-512("ratls-cert:" || SPKI DER); Cosmian: SHA-256(SEC1
 * uncompressed public key) || extra, `extra` may be NULL for zeros). */
CVM_API CVM_MUST_CHECK int cvm_ratls_report_data(enum cvm_ratls_profile profile,
                                                 const struct cvm_p256_keypair *key, const uint8_t extra[32],
                                                 uint8_t out[64]);

/* struct cvm_ratls_evidence is the local evidence for that report_data, as
 * the caller got it (cvm_tee_quote + the event log); borrowed. */
struct cvm_ratls_evidence {
	enum cvm_ratls_tee tee;
	const uint8_t *quote; /* TDX/SGX quote or SNP report */
	size_t quote_len;
	const struct cvm_amd_collateral *snp_certs; /* SNP: chain to put in a Cosmian cert; may be NULL */
	const struct cvm_va_event *events;          /* TDX: the full event log (boot + runtime) */
	size_t event_count;
	const char *config; /* vm_config JSON, may be NULL */
};

struct cvm_ratls_make_opts {
	enum cvm_ratls_profile profile;
	const char *common_name;
	const char *organization; /* may be NULL */
	const char *const *alt_names;
	size_t alt_name_count;
	int64_t not_before, not_after; /* cvmkit's default lifetime: hours (CVM_RATLS_LIFETIME_DEFAULT) */
	bool server_auth, client_auth;
	bool legacy_tdx;         /* dstack TDX: also 1.1 quote + 1.2 event log (default on in callers) */
	const uint8_t *app_id;   /* dstack 1.3 (20 bytes) or NULL */
	const char *usage;       /* dstack 1.4 or NULL */
	const uint8_t *app_info; /* dstack 1.9 MessagePack or NULL */
	size_t app_info_len;
	const uint8_t *cosmian_extra; /* 32 bytes or NULL */
};
#define CVM_RATLS_LIFETIME_DEFAULT (12 * 3600)

/* cvm_ratls_make issues the certificate for `key` carrying `ev` (whose
 * report_data must be cvm_ratls_report_data of the key: checked), or, with
 * `ev` NULL (dstack profile only), a certificate with no evidence that
 * carries only the 1.3/1.4/1.9 extensions given in `o`; signed by
 * `issuer_key`/`issuer` or self-signed when both are NULL (Cosmian is always
 * self-signed). *out_pem is malloc'd PEM. Returns 0, CVM_E_INVAL (evidence
 * that does not bind `key` in this profile, evidence that does not parse, an
 * issuer for Cosmian, a malformed app_info or usage, bad options),
 * CVM_E_UNSUPPORTED (SGX in the dstack profile), CVM_E_TOO_LARGE,
 * CVM_E_NOMEM or CVM_E_CRYPTO. docs/ratls.md says what each profile
 * carries. */
CVM_API CVM_MUST_CHECK int cvm_ratls_make(const struct cvm_ratls_make_opts *o,
                                          const struct cvm_p256_keypair *key,
                                          const struct cvm_ratls_evidence *ev,
                                          const struct cvm_p256_keypair *issuer_key,
                                          const struct cvm_cert *issuer, char **out_pem, size_t *out_len);

/* ---- verifying --------------------------------------------------------- */

struct cvm_ratls_verifier_opts {
	const struct cvm_policy *policy;        /* required */
	const struct cvm_dcap_collateral *dcap; /* for TDX/SGX quotes; may be NULL */
	const struct cvm_amd_collateral *amd;   /* for SNP reports; may be NULL (then the cert's own chain) */
	const uint8_t *intel_root_der;          /* NULL: Intel's root */
	size_t intel_root_der_len;
	const uint8_t *amd_root_der; /* NULL: AMD's ARKs */
	size_t amd_root_der_len;
	const uint8_t *const *ca_der; /* the chain must end in one of these (NULL: no chain check) */
	const size_t *ca_der_len;
	size_t ca_count;
	bool allow_legacy_ca;    /* accept CA certs without keyCertSign (pre-0.5.8 dstack) */
	bool ignore_validity;    /* accept expired/not-yet-valid certs (vectors) */
	bool require_system_key; /* the cert key must be the one the system recorded (system_key below) */
	unsigned cache_entries;  /* verdict cache size (0: default 256) */
};

struct cvm_ratls_verdict {
	enum cvm_ratls_profile profile;
	enum cvm_ratls_tee tee;
	bool evidence_verified; /* quote/report authentic and the policy accepts it */
	bool binding;           /* report_data binds the cert key */
	bool replayed;          /* TDX with an event log: the log replays to RTMR0..3 */
	bool chain_verified;    /* the chain ends in a given CA */
	bool legacy_ca;         /* ... and a CA lacked keyCertSign, accepted by allow_legacy_ca */
	bool simulated;         /* the evidence chains to a simulated root */
	bool system_key;        /* TDX: SHA-256 of the cert's SPKI is the payload of the one
	                         * "cvmkit.agent-key" runtime event, among the system's events
	                         * before any app event (include/cvmkit/evidence.h): the key is
	                         * cvm-agentd's identity, not one any guest process could get */
	bool cached;            /* this verdict came from the cache */
	struct cvm_dcap_result dcap;
	struct cvm_amd_result amd;
};

struct cvm_ratls_verifier;
/* cvm_ratls_verifier_new authenticates the collateral once (warm) and keeps
 * copies of what it needs; opts may be freed afterwards. */
CVM_API CVM_MUST_CHECK int cvm_ratls_verifier_new(const struct cvm_ratls_verifier_opts *o, int64_t at,
                                                  struct cvm_ratls_verifier **out);
CVM_API void cvm_ratls_verifier_free(struct cvm_ratls_verifier *v);

/* cvm_ratls_verifier_check verifies a peer's chain (leaf first, DER) at
 * Unix time `at`: validity, RA-TLS evidence, binding, replay, chain.
 * Returns 0 only when all hold and the policy accepts. Thread-safe. `rep`
 * (may be NULL) is initialised and gets one step per check; `out` is always
 * filled as far as verification got. Order and limits: docs/ratls.md. */
CVM_API CVM_MUST_CHECK int cvm_ratls_verifier_check(struct cvm_ratls_verifier *v, const uint8_t *const *der,
                                                    const size_t *der_len, size_t count, int64_t at,
                                                    struct cvm_ratls_verdict *out, struct cvm_report *rep);

/* The fresh, connection-bound attestation (include/cvmkit/tls.h): the
 * server quotes over cvm_ratls_fresh_report_data(bound), where `bound` is
 * the 64-byte TLS exporter value of this connection for the client's
 * nonce (cvm_tls_fresh_nonce), and answers with a VersionedAttestation:
 * report_data = SHA-512("cvmkit-tls-fresh:" || bound). The tag keeps it
 * apart from every certificate binding ("ratls-cert:"). */
CVM_API CVM_MUST_CHECK int cvm_ratls_fresh_report_data(const uint8_t bound[64], uint8_t out[64]);

/* cvm_ratls_check_fresh verifies the server's fresh answer: the
 * VersionedAttestation `va` (`va_len` bytes) verifies with the verifier's
 * collateral and policy (quote, event-log replay), its report_data is
 * cvm_ratls_fresh_report_data(bound), AND it comes from the same TEE
 * instance as the evidence in the peer's leaf certificate `leaf_der` (same
 * TEE type and launch measurements: TDX MRTD, MRCONFIGID, RTMR0..2, and the
 * certificate's runtime events a prefix of the answer's; SNP measurement,
 * host_data, chip_id). Returns 0 only when all hold; CVM_E_MISMATCH for a
 * report_data that binds another connection (a relay). */
CVM_API CVM_MUST_CHECK int cvm_ratls_check_fresh(struct cvm_ratls_verifier *v, const uint8_t *leaf_der,
                                                 size_t leaf_len, const uint8_t *va, size_t va_len,
                                                 const uint8_t bound[64], int64_t at,
                                                 struct cvm_ratls_verdict *out, struct cvm_report *rep);

/* cvm_ratls_check_va verifies a VersionedAttestation on its own, with no
 * certificate (what a guest agent's Attest answers, e.g. the KMS's
 * bootstrap attestation): the quote or report with the verifier's
 * collateral and policy (SNP: the attestation's own certificates when the
 * verifier has no AMD collateral), the quote's and the attestation's
 * report_data both equal to `report_data`, and for TDX its event log
 * replayed to the quote's RTMR3 (as cvm_ratls_verifier_check does). The
 * verifier's CAs and require_system_key do not apply (no certificate);
 * out->system_key is false. Returns 0 only when all hold; CVM_E_MISMATCH
 * for another report_data. `out` is filled as far as verification got. */
CVM_API CVM_MUST_CHECK int cvm_ratls_check_va(struct cvm_ratls_verifier *v, const uint8_t *va, size_t va_len,
                                              const uint8_t report_data[64], int64_t at,
                                              struct cvm_ratls_verdict *out, struct cvm_report *rep);

/* ---- dstack's aggregated measurements ----------------------------------- */

struct cvm_tdx_report;

/* cvm_dstack_aggregate computes dstack's mr_system = SHA-256(MRTD ||
 * RTMR0..2 || SHA-256(key-provider payload), or 32 zero bytes without one)
 * and mr_aggregated = SHA-256(MRTD || RTMR0..3 [|| MRCONFIGID || MROWNER ||
 * MROWNERCONFIG when any of the three is non-zero]) (spec dstack.md §5.5)
 * from a TD report; the caller passes a report whose quote verified (or a
 * copy with RTMR3 replaced by a replayed value, for the boot-time variant). */
CVM_API void cvm_dstack_aggregate(const struct cvm_tdx_report *td, const uint8_t *key_provider,
                                  size_t key_provider_len, uint8_t mr_system[32], uint8_t mr_aggregated[32]);

#endif

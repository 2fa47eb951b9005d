/* cvmkit's evidence bundle: what cvm-agentd's GetEvidence returns
 * (docs/daemons/cvm-agentd.md, "GetEvidence"), the rules that bind its parts
 * to one nonce and to the system, and the verifier that checks the whole of
 * it.
 *
 * A bundle is one JSON object. It holds a TEE quote (TDX) or report (SEV-SNP)
 * whose report_data binds the verifier's nonce, the event log, and
 * optionally a TPM quote with its attestation key (AK) and PCR values, and
 * the IMA list. The binding (version 2):
 *
 *   without a TPM part:  report_data = nonce || zero bytes up to 64
 *   with a TPM part:     report_data = SHA-512("cvmkit-evidence-v2/report-data" || 0x00 ||
 *                                              u8(len(nonce)) || nonce ||
 *                                              u16be(len(ak_name)) || ak_name)
 *   TPM qualifying data: SHA-256("cvmkit-evidence-v2/tpm-qualifying-data" || 0x00 ||
 *                                u8(len(nonce)) || nonce)
 *
 * ak_name is the TPM Name of the AK (nameAlg || H_nameAlg(TPMT_PUBLIC)), so
 * the TEE quote vouches for exactly one TPM key, and that key's quote for
 * the same nonce. The nonce is 8 to 64 bytes.
 *
 * report_data alone cannot tell the system's AK from one a guest process
 * chose: any local caller of the agent's GetQuote picks report_data. So the
 * AK is also anchored in what only the system writes:
 *
 *   TDX:     the agent records the AK's Name in RTMR3 at start, before it
 *            serves any request, as the runtime event "cvmkit.tpm-ak";
 *            EmitEvent refuses every name of the system's (dstack's boot
 *            names and the "cvmkit." namespace). A bundle with a TPM part
 *            verifies only when its event log replays to RTMR3 and holds
 *            exactly one cvmkit.tpm-ak event, among the system's events
 *            before the first app event (see cvm_evidence_is_system_event),
 *            naming the bundle's AK.
 *   SEV-SNP: no runtime register exists. The agent puts a caller's
 *            report_data into a report unchanged only for the uids the
 *            operator allows (default: root and the agent's own); for every
 *            other caller the report holds cvm_evidence_caller_report_data
 *            of it, a value in another domain, which never equals a
 *            binding above. So only the agent and those uids can produce
 *            an SNP bundle that verifies.
 *
 * Version 1 bundles (the same rules with "v1" labels, no RTMR3 anchor) are
 * refused: a v1 TDX bundle cannot show that its AK is the system's. */
#ifndef CVMKIT_EVIDENCE_H
#define CVMKIT_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "amd.h"
#include "dcap.h"
#include "err.h"
#include "policy.h"
#include "report.h"
#include "tpm.h"

#define CVM_EVIDENCE_VERSION 2
#define CVM_EVIDENCE_NONCE_MIN 8u
#define CVM_EVIDENCE_NONCE_MAX 64u
#define CVM_EVIDENCE_QDATA_LEN 32u /* the TPM qualifying data: SHA-256 */

/* Caps on what a bundle may hold, checked before anything is decoded. */
#define CVM_EVIDENCE_JSON_MAX ((size_t)64 * 1024 * 1024)   /* the bundle's text */
#define CVM_EVIDENCE_QUOTE_MAX ((size_t)64 * 1024)         /* the TEE quote or report */
#define CVM_EVIDENCE_EVENTS_MAX 8192u                      /* event log entries */
#define CVM_EVIDENCE_PAYLOAD_MAX ((size_t)8 * 1024 * 1024) /* one event's payload */
#define CVM_EVIDENCE_IMA_MAX ((size_t)16 * 1024 * 1024)    /* the IMA list, bytes */

#define CVM_EVIDENCE_RD_LABEL "cvmkit-evidence-v2/report-data"
#define CVM_EVIDENCE_QDATA_LABEL "cvmkit-evidence-v2/tpm-qualifying-data"
/* The domain of a GetQuote caller's report_data on SEV-SNP (see above). */
#define CVM_EVIDENCE_CALLER_RD_LABEL "cvmkit-agent-v1/caller-report-data"

/* The runtime events (RTMR3, dstack's format) that only the system writes:
 * names starting with this prefix, compared without regard to case, and
 * dstack's boot names. */
#define CVM_EVIDENCE_SYSTEM_PREFIX "cvmkit."
/* The AK the agent serves: the payload is its TPM Name. */
#define CVM_EVIDENCE_EVENT_TPM_AK "cvmkit.tpm-ak"
/* The agent's identity (TLS) key: the payload is SHA-256 of its
 * SubjectPublicKeyInfo DER. */
#define CVM_EVIDENCE_EVENT_AGENT_KEY "cvmkit.agent-key"

/* cvm_evidence_report_data computes the report_data a bundle's TEE quote must
 * carry for `nonce` (CVM_EVIDENCE_NONCE_MIN to _MAX bytes) and the AK Name
 * `ak_name` (`ak_name_len` bytes, at most CVM_TPM_NAME_MAX; 0 when the bundle
 * has no TPM part), as the file comment defines it. Returns 0 or
 * CVM_E_INVAL (a length out of range). */
CVM_API CVM_MUST_CHECK int cvm_evidence_report_data(const uint8_t *nonce, size_t nonce_len,
                                                    const uint8_t *ak_name, size_t ak_name_len,
                                                    uint8_t out[64]);

/* cvm_evidence_tpm_qualifying_data computes the qualifying data the TPM
 * quotes with for `nonce` (CVM_EVIDENCE_QDATA_LEN bytes to `out`). Returns 0
 * or CVM_E_INVAL (nonce length out of range). */
CVM_API CVM_MUST_CHECK int cvm_evidence_tpm_qualifying_data(const uint8_t *nonce, size_t nonce_len,
                                                            uint8_t out[CVM_EVIDENCE_QDATA_LEN]);

/* cvm_evidence_caller_report_data computes what the agent puts into an SEV-SNP
 * report for a GetQuote caller whose uid may not ask for raw report data:
 * SHA-512(CVM_EVIDENCE_CALLER_RD_LABEL || 0x00 || data), 64 bytes to `out`
 * (zeros on failure). Returns 0 or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_evidence_caller_report_data(const uint8_t data[64], uint8_t out[64]);

/* cvm_evidence_is_system_event is true when the runtime event name of `len`
 * bytes at `name` is one only the system writes: it starts with
 * CVM_EVIDENCE_SYSTEM_PREFIX (any case), or it is one of the names dstack's
 * boot measures (system-preparing, app-id, compose-hash, instance-id,
 * boot-mr-done, mr-kms, os-image-hash, key-provider, storage-fs,
 * system-ready, init-script-hash, gpu-policy-hash, gpu-attestation).
 * cvm-agentd's EmitEvent refuses these names, so in a runtime log the events
 * before the first other name (the app boundary) are the system's. */
CVM_API bool cvm_evidence_is_system_event(const char *name, size_t len);

enum cvm_evidence_platform {
	CVM_EVIDENCE_TDX = 1,
	CVM_EVIDENCE_SNP = 2,
};

/* struct cvm_evidence is a parsed bundle. It owns copies of every part. */
struct cvm_evidence;

/* cvm_evidence_parse reads a bundle (the `len` bytes at `json`, at most
 * CVM_EVIDENCE_JSON_MAX) and decodes every field it knows: types, hex, lengths
 * and caps. Keys it does not know are ignored. It verifies nothing. On
 * failure `err` (may be NULL) holds one sentence naming the field at fault.
 * The caller frees *out with cvm_evidence_free. Returns 0, CVM_E_FORMAT,
 * CVM_E_TOO_LARGE, CVM_E_UNSUPPORTED (another version or platform) or
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_evidence_parse(const uint8_t *json, size_t len, struct cvm_evidence **out,
                                              char *err, size_t err_len);
CVM_API void cvm_evidence_free(struct cvm_evidence *ev);

/* Accessors for what a parsed bundle claims (nothing here is verified). */
CVM_API enum cvm_evidence_platform cvm_evidence_platform(const struct cvm_evidence *ev);
CVM_API bool cvm_evidence_claims_simulated(const struct cvm_evidence *ev);
CVM_API bool cvm_evidence_has_tpm(const struct cvm_evidence *ev);
CVM_API bool cvm_evidence_has_ima(const struct cvm_evidence *ev);
/* cvm_evidence_pcrs lends the bundle's PCR values (NULL without a TPM part). */
CVM_API const struct cvm_tpm_pcrs *cvm_evidence_pcrs(const struct cvm_evidence *ev);
/* cvm_evidence_tee lends the bundle's TEE quote (TDX) or report (SEV-SNP)
 * bytes, as decoded from its hex: valid while `ev` lives. For naming the
 * collateral the evidence needs (cvm_cache_dcap, cvm_cache_amd) before
 * cvm_evidence_verify; nothing about them is verified. */
CVM_API void cvm_evidence_tee(const struct cvm_evidence *ev, const uint8_t **out, size_t *out_len);

/* struct cvm_evidence_opts is what the verifier trusts and requires. */
struct cvm_evidence_opts {
	const uint8_t *nonce; /* the nonce the verifier sent; required */
	size_t nonce_len;
	const struct cvm_dcap_collateral *dcap; /* for a TDX quote */
	const struct cvm_amd_collateral *amd;   /* for an SEV-SNP report */
	const uint8_t *root_der;                /* trust anchor; NULL: the vendor's root */
	size_t root_der_len;
	int64_t at;                      /* Unix time of the verification */
	const struct cvm_policy *policy; /* appraisal of the TEE quote; required */
	bool require_tpm;                /* reject a bundle without a TPM quote */
	bool require_ima;                /* reject unless the TPM quote covers at least one IMA entry */
};

/* struct cvm_evidence_result is what verification learned, as far as it got.
 * dcap/amd borrow from the bundle: valid while it lives. */
struct cvm_evidence_result {
	enum cvm_evidence_platform platform;
	struct cvm_dcap_result dcap; /* TDX */
	struct cvm_amd_result amd;   /* SEV-SNP */
	bool tee_verified;           /* the quote verified and the policy accepted it */
	bool bound;                  /* report_data binds the nonce (and the AK) */
	size_t event_count;
	bool rtmrs_replayed; /* TDX: the event log replays to the quote's RTMR0..3 */
	bool has_tpm;
	bool ak_recorded; /* TDX: RTMR3's one cvmkit.tpm-ak event, before any app event, names the AK */
	struct cvm_tpm_quote tpm; /* the TPM quote's fields */
	uint8_t ak_name[CVM_TPM_NAME_MAX];
	size_t ak_name_len;
	bool tpm_verified; /* signature, qualifying data and PCR digest */
	bool has_ima;
	bool ima_verified; /* a prefix of the list replays to the quoted PCR 10 */
	uint16_t ima_bank; /* the bank replayed */
	uint64_t ima_quoted_entries, ima_total_entries;
};

/* cvm_evidence_verify checks the whole bundle, in this order, each step
 * recorded in `rep` (may be NULL):
 *  1. the bundle's nonce is o->nonce;
 *  2. the TEE quote: cvm_verify_quote (TDX, with o->dcap) or
 *     cvm_verify_snp_report (SNP, with o->amd), anchored in o->root_der and
 *     appraised with o->policy;
 *  3. the binding: the quote's report_data is cvm_evidence_report_data(nonce,
 *     the AK Name computed from the bundle's AK public area, or none);
 *  4. TDX: the event log replays to RTMR0..3, and every dstack runtime
 *     event's digest is that of its name and payload (digest version 1);
 *  5. TDX with a TPM part: the runtime events (imr 3) hold exactly one
 *     CVM_EVIDENCE_EVENT_TPM_AK event of the dstack runtime type, every
 *     event before it is a system event (cvm_evidence_is_system_event, of
 *     the runtime type), and its payload is the AK's Name: the AK is the one
 *     the system recorded (res->ak_recorded);
 *  6. with a TPM part: the AK may sign quotes (restricted signing key), the
 *     quote's signature over the exact TPMS_ATTEST bytes, its qualifying
 *     data (cvm_evidence_tpm_qualifying_data), and the PCR digest over the
 *     bundle's PCR values (which must all be quoted);
 *  7. with an IMA list and a TPM part: cvm_verify_ima_list over the
 *     bundle's PCR values: PCR 10 is quoted, some prefix of the list gives
 *     the quoted values in every quoted bank, and no entry of that prefix
 *     extends a PCR the quote does not cover.
 * Returns 0 only when every step passed and o->require_* hold; otherwise
 * the first failure: CVM_E_MISMATCH (nonce, binding, RTMRs, the recorded AK,
 * PCRs, IMA), the
 * errors of the quote and TPM verifiers, CVM_E_POLICY (the policy, or a
 * required part missing) or CVM_E_INVAL (missing options or collateral).
 * It does NOT check: the EK certificate (the AK is trusted because the TEE
 * quote names it and, on TDX, RTMR3 records it, not through the TPM
 * vendor), on SEV-SNP who asked for the report (the agent's caller rule
 * above is what keeps other callers out), the cvmkit.agent-key event (the
 * agent's TLS identity, for its own verifier), the IMA entries' file
 * digests against any reference, the TPM clock (resetCount), app_compose
 * and vm_config against the measured events, entries after the quoted IMA
 * prefix (only parsed and template-checked). An IMA list without a TPM part
 * is not verified (ima_verified false); a quoted PCR 10 at zero matches the
 * empty prefix (ima_quoted_entries 0): both are accepted unless
 * o->require_ima. */
CVM_API CVM_MUST_CHECK int cvm_evidence_verify(const struct cvm_evidence *ev,
                                               const struct cvm_evidence_opts *o, struct cvm_report *rep,
                                               struct cvm_evidence_result *res);

#endif

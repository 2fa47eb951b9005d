/* dstack's certificate signing request, the one KMS.SignCert takes (spec
 * dstack.md §3.4 last paragraph, §6.3, §6.4; issue 13): a SCALE-encoded
 * CertSigningRequestV1 or V2 that carries its own attestation, signed by
 * the key it asks a certificate for. The guest side (cvm-agentd's GetTlsKey
 * through a KMS) makes one with cvm_csr_make_signed; the KMS side decodes it
 * (cvm_csr_decode), checks the signature (cvm_csr_check_signature), verifies
 * the attestation bound to the CSR's key (cvm_ratls_check_va_key, which
 * also gives the boot-time measurements for the auth webhook's BootInfo),
 * and issues the leaf under the app's CA (cvm_ratls_issue_csr).
 *
 * Wire layout (all little-endian SCALE; "compact" is SCALE's compact
 * length, which must be in its shortest form, as parity-scale-codec
 * requires; a String is a compact byte count and that many bytes of UTF-8;
 * Option<T> is a byte 0 (None) or 1 followed by T; bool is a byte 0 or 1):
 *
 *   V2 (api_version 2): String confirm, Vec<u8> pubkey (SPKI DER),
 *      CertConfigV2 { Option<String> org_name, String subject,
 *                     Vec<String> subject_alt_names, bool usage_server_auth,
 *                     bool usage_client_auth, bool ext_quote,
 *                     bool ext_app_info, Option<u64> not_before,
 *                     Option<u64> not_after },
 *      then the VersionedAttestation bytes to the end, with no length.
 *   V1 (api_version 1): String confirm, Vec<u8> pubkey,
 *      CertConfig { Option<String> org_name, String subject,
 *                   Vec<String> subject_alt_names, bool usage_server_auth,
 *                   bool usage_client_auth, bool ext_quote },
 *      Vec<u8> quote (a TDX quote), Vec<u8> event_log (dstack's JSON log).
 *
 * The signature is ECDSA P-256 with SHA-256, ASN.1 DER, over exactly the
 * bytes received (V1: the V1 bytes). docs/ratls.md ("SignCert") says what
 * the KMS must check that the CSR alone does not give. */
#ifndef CVMKIT_CSR_H
#define CVMKIT_CSR_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratls.h"
#include "report.h"

struct cvm_p256_keypair;
struct cvm_cert;

/* The confirm string a CSR must carry, byte for byte. */
#define CVM_CSR_CONFIRM "please sign cert:"
/* CVM_CSR_MAX bounds a whole CSR: a VersionedAttestation (CVM_VA_MAX) and
 * the fields before it. */
#define CVM_CSR_MAX (CVM_VA_MAX + (size_t)64 * 1024)
/* CVM_CSR_NAME_MAX bounds org_name and subject, in bytes (a certificate
 * takes at most 64 characters: cvm_ratls_issue_csr refuses longer ones). */
#define CVM_CSR_NAME_MAX 256u
/* CVM_CSR_ALT_NAME_MAX bounds one subject alternative name, in bytes. */
#define CVM_CSR_ALT_NAME_MAX 253u
/* CVM_CSR_ALT_NAMES_MAX bounds their count (CVM_CERT_ALT_NAMES_MAX). */
#define CVM_CSR_ALT_NAMES_MAX 64u
/* CVM_CSR_PUBKEY_MAX bounds the SPKI DER (a P-256 one is 91 bytes). */
#define CVM_CSR_PUBKEY_MAX 256u
/* CVM_CSR_V1_QUOTE_MAX and CVM_CSR_V1_EVENT_LOG_MAX bound a V1 CSR's quote
 * and JSON event log. */
#define CVM_CSR_V1_QUOTE_MAX ((size_t)64 * 1024)
#define CVM_CSR_V1_EVENT_LOG_MAX ((size_t)4 * 1024 * 1024)
/* CVM_CSR_SIG_MAX is the longest DER ECDSA P-256 signature. */
#define CVM_CSR_SIG_MAX 72u

/* struct cvm_csr is a decoded CSR; it owns all its memory (cvm_csr_free).
 * A V1 CSR is upgraded to V2's fields as dstack does: ext_app_info false,
 * no validity, and the attestation a V0 VersionedAttestation (DstackTdx)
 * made of the quote, the JSON log's events, the runtime events among them
 * (event type 0x08000001) and the quote's report_data, with an empty
 * config. */
struct cvm_csr {
	unsigned version;       /* 1 or 2: the api_version it was decoded as */
	char *org_name;         /* NULL when None */
	char *subject;          /* "" allowed here; cvm_ratls_issue_csr refuses it */
	char **alt_names;       /* alt_name_count NUL-terminated strings */
	size_t alt_name_count;  /* at most CVM_CSR_ALT_NAMES_MAX */
	bool usage_server_auth; /* extendedKeyUsage serverAuth */
	bool usage_client_auth; /* extendedKeyUsage clientAuth */
	bool ext_quote;         /* carry the attestation in the certificate (1.8) */
	bool ext_app_info;      /* carry the app info in the certificate (1.9) */
	bool has_not_before, has_not_after;
	uint64_t not_before, not_after; /* Unix seconds, meaningful when has_* */
	uint8_t *pubkey_der;            /* the key's SubjectPublicKeyInfo DER, as carried (its type is
	                                 * cvm_csr_check_signature's to check) */
	size_t pubkey_der_len;
	uint8_t *attestation; /* the VersionedAttestation bytes as carried (V2) or made (V1) */
	size_t attestation_len;
	uint8_t *encoded; /* the exact bytes received: what the signature covers */
	size_t encoded_len;
};

/* cvm_csr_decode decodes the `len` bytes at `buf` (at most CVM_CSR_MAX) as
 * a CertSigningRequestV1 (api_version 1) or V2 (api_version 2), reading
 * every byte with the bounded reader. It refuses: a confirm that is not
 * exactly CVM_CSR_CONFIRM; a length over its cap above; a compact length
 * not in its shortest form; a bool or Option tag other than 0 or 1; text
 * that is not UTF-8 or holds a NUL; V2: an attestation cvm_va_decode refuses
 * (an empty one too); V1: bytes after the event log (dstack ignores them),
 * a quote that is not a TDX quote, a log that is not dstack's JSON event
 * log. It checks no signature, no attestation, and not the type of the
 * public key (cvm_csr_check_signature does, as dstack's verify; dstack's
 * golden encodings carry the 3 bytes 01 02 03 there). On success *out is the
 * caller's (cvm_csr_free). On failure `err` (when err_len > 0) says what
 * was wrong and at which byte. Returns 0, CVM_E_INVAL (api_version not 1
 * or 2, NULL arguments), CVM_E_TRUNCATED, CVM_E_FORMAT, CVM_E_TOO_LARGE,
 * CVM_E_UNSUPPORTED (an attestation format cvm_va_decode does not know) or
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_csr_decode(unsigned api_version, const uint8_t *buf, size_t len,
                                          struct cvm_csr **out, char *err, size_t err_len);

/* cvm_csr_check_signature checks `sig` (`sig_len` bytes, an ASN.1 DER
 * ECDSA-Sig-Value of at most CVM_CSR_SIG_MAX bytes: positive, minimal
 * integers, nothing after it) over c->encoded under c->pubkey_der, with
 * SHA-256. The key must be a P-256 SubjectPublicKeyInfo in the one DER
 * form ring, rcgen and OpenSSL write (91 bytes, uncompressed point on the
 * curve; a compressed point is refused). The confirm string was checked by
 * cvm_csr_decode. It says nothing of the attestation. Returns 0,
 * CVM_E_SIGNATURE (also for a malformed signature), CVM_E_UNSUPPORTED (a
 * key that is not P-256, or not a DER SPKI) or CVM_E_INVAL. */
CVM_API CVM_MUST_CHECK int cvm_csr_check_signature(const struct cvm_csr *c, const uint8_t *sig,
                                                   size_t sig_len);

/* cvm_csr_free frees `c` and everything it holds; NULL is a no-op. A CSR
 * holds no secret. */
CVM_API void cvm_csr_free(struct cvm_csr *c);

/* struct cvm_csr_params is what a guest asks a certificate for (dstack's
 * CertConfigV2). Every pointer is borrowed. */
struct cvm_csr_params {
	const char *org_name; /* NULL: None */
	const char *subject;  /* required (may be "") */
	const char *const *alt_names;
	size_t alt_name_count;
	bool usage_server_auth, usage_client_auth;
	bool ext_quote;    /* ask for the attestation extension (GetTlsKey's usage_ra_tls) */
	bool ext_app_info; /* ask for the app-info extension (GetTlsKey's with_app_info) */
	bool has_not_before, has_not_after;
	uint64_t not_before, not_after; /* Unix seconds; when both are given, not_before < not_after */
};

/* cvm_csr_make_signed encodes a V2 CSR for the public key of `key` with the
 * fields of `p` and the VersionedAttestation `attestation` (which must
 * decode: dstack's guest always sends one, bound to the key by report_data
 * SHA-512("ratls-cert:" || SPKI DER), which this function does not check),
 * and signs it with `key`. Everything it writes, cvm_csr_decode(2, ...)
 * reads back. *csr and *sig (DER) are new buffers the caller frees.
 * (Named _make_signed: cvm_csr_make is the PKCS#10 request of crypto.h.)
 * Returns 0, CVM_E_INVAL (a field over its cap or not UTF-8 text, not_before
 * >= not_after, no attestation, an attestation that does not decode),
 * CVM_E_TOO_LARGE, CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_csr_make_signed(const struct cvm_csr_params *p,
                                               const struct cvm_p256_keypair *key, const uint8_t *attestation,
                                               size_t attestation_len, uint8_t **csr, size_t *csr_len,
                                               uint8_t **sig, size_t *sig_len);

/* CVM_RATLS_BOOT_VALUE_MAX bounds the compose-hash and instance-id payloads
 * taken into struct cvm_ratls_boot_info. */
#define CVM_RATLS_BOOT_VALUE_MAX 64u

/* struct cvm_ratls_boot_info is what an attestation that verified says for
 * dstack's BootInfo (spec §3.5) at boot time, as SignCert computes it: the
 * values of the first "app-id", "compose-hash" and "instance-id" runtime
 * events before "system-ready", and the measurements with RTMR3 replayed
 * up to and including the "boot-mr-done" event, key_provider_info ignored
 * (so mr_system hashes 32 zero bytes for it). TDX only. Every field comes
 * from the verified quote or from runtime events that replay to its RTMR3.
 * What the webhook also needs and this does not give: os_image_hash (the
 * host's vm_config, untrusted until the image is checked), tcb_status and
 * advisory ids (the verdict's dcap result). */
struct cvm_ratls_boot_info {
	const char *tee_variant; /* static: "dstack-tdx" */
	uint8_t app_id[20];      /* required: an attestation without a 20-byte app-id is refused */
	uint8_t compose_hash[CVM_RATLS_BOOT_VALUE_MAX];
	size_t compose_hash_len; /* 0 when there is no compose-hash event (dstack: empty) */
	uint8_t instance_id[CVM_RATLS_BOOT_VALUE_MAX];
	size_t instance_id_len;    /* 0 when absent or empty */
	uint8_t device_id[32];     /* SHA-256 of the PPID in the verified PCK certificate */
	uint8_t mr_system[32];     /* SHA-256(MRTD || RTMR0 || RTMR1 || RTMR2 || 0^32) */
	uint8_t mr_aggregated[32]; /* SHA-256(MRTD || RTMR0..2 || rtmr3_boot [|| MRCONFIGID || MROWNER ||
	                            * MROWNERCONFIG when any is non-zero]) */
	uint8_t rtmr3_boot[48];    /* the runtime events replayed up to boot-mr-done */
	bool boot_mr_done;         /* false: no boot-mr-done event, the whole list was replayed (as dstack) */
};

/* cvm_ratls_check_va_key verifies the VersionedAttestation `va` (`va_len`
 * bytes) that a CSR carries for the key `spki_der` (the CSR's pubkey): the
 * quote verifies at `at` with `v`'s collateral and policy; its report_data,
 * and the attestation's, is SHA-512("ratls-cert:" || spki_der); the event
 * log and the runtime events replay to the quoted RTMR3 (the same replay
 * as cvm_ratls_verifier_check); the boot info (when `boot` is not NULL)
 * can be computed. `out` gets the verdict (dcap: TCB status, PPID), `rep`
 * (may be NULL) one step per check. TDX only: an SEV-SNP attestation is
 * CVM_E_UNSUPPORTED (dstack releases SignCert keys to SNP only when told
 * to, and its BootInfo differs). Returns 0 only when everything holds;
 * else CVM_E_FORMAT/TRUNCATED/TOO_LARGE (the attestation does not decode),
 * CVM_E_UNSUPPORTED, the quote verification's error (CVM_E_SIGNATURE,
 * CVM_E_POLICY, ...), CVM_E_MISMATCH (bound to another key, or a log that
 * does not replay), CVM_E_FORMAT (no 20-byte app-id event, a compose-hash
 * or instance-id over CVM_RATLS_BOOT_VALUE_MAX) or CVM_E_INVAL. */
CVM_API CVM_MUST_CHECK int cvm_ratls_check_va_key(struct cvm_ratls_verifier *v, const uint8_t *va,
                                                  size_t va_len, const uint8_t *spki_der, size_t spki_len,
                                                  int64_t at, struct cvm_ratls_verdict *out,
                                                  struct cvm_report *rep, struct cvm_ratls_boot_info *boot);

/* The special usage cvm_ratls_issue_csr writes when given none (dstack's
 * SignCert). */
#define CVM_CSR_USAGE_DEFAULT "app:custom"
/* CVM_CSR_LIFETIME_MAX caps an issued certificate's lifetime from `now`:
 * 365 days (cvmkit's choice; dstack's default is ten years). */
#define CVM_CSR_LIFETIME_MAX ((int64_t)365 * 24 * 3600)

/* cvm_ratls_issue_csr issues the leaf certificate for the decoded CSR `c`
 * under the app's CA (`ca_key` must be `ca_cert`'s key, and `ca_cert` a CA),
 * in dstack's profile (spec §6.3): CN = subject (1..64 characters), O =
 * org_name when given, the SANs (IP literals become IP SANs), keyUsage
 * digitalSignature, the EKUs the CSR asks for, the app-id extension 1.3 =
 * `app_id` (the ATTESTED app id: never one the CSR claims), the special
 * usage 1.4 = `usage` (NULL: CVM_CSR_USAGE_DEFAULT; printable ASCII, at
 * most 63 bytes), ext_quote: the attestation 1.8 carried over as it came
 * (dstack strips its event log first), ext_app_info: the 1.9 `app_info`
 * MessagePack the caller computed from the verified attestation (required
 * then, ignored otherwise; checked to be dstack's AppInfo shape). Validity:
 * not_before = the CSR's or `now`, not_after = the CSR's or `now` +
 * CVM_CSR_LIFETIME_MAX, both clamped into the CA's validity and not_after
 * to at most `now` + CVM_CSR_LIFETIME_MAX; an empty window after that is
 * refused. Serial: 16 random bytes. Signature: ECDSA P-256 SHA-256 by
 * `ca_key`. It checks neither the CSR's signature nor its attestation: the
 * caller did (cvm_csr_check_signature, cvm_ratls_check_va_key). *pem is a
 * new NUL-terminated PEM certificate the caller frees, *pem_len its length.
 * Returns 0, CVM_E_INVAL (arguments, names, usage, window, app_info
 * missing or malformed, a key that is not the CA's), CVM_E_TOO_LARGE,
 * CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_ratls_issue_csr(const struct cvm_csr *c, const uint8_t app_id[20],
                                               const char *usage, const uint8_t *app_info,
                                               size_t app_info_len, const struct cvm_p256_keypair *ca_key,
                                               const struct cvm_cert *ca_cert, int64_t now, char **pem,
                                               size_t *pem_len);

#endif

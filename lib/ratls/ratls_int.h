/* lib/ratls's internal interface between its files (va.c, ext.c, cosmian.c,
 * make.c, verify.c). Not on other modules' include path. */
#ifndef CVM_RATLS_RATLS_INT_H
#define CVM_RATLS_RATLS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/bytes.h>
#include <cvmkit/ratls.h>

#include "core/core_lib.h"

/* RATLS_ERR is cvm_err_set whose value is visibly `rc` (the static analyser
 * cannot see into core's cvm_err_set, and then doubts that an error path
 * returns an error). `rc` is evaluated twice: no side effects. */
#define RATLS_ERR(err, err_len, rc, ...) ((void)cvm_err_set((err), (err_len), (rc), __VA_ARGS__), (rc))

/* The OIDs (dstack.md §6.1, cosmian_vm.md §8). */
#define RATLS_OID_DSTACK_QUOTE "1.3.6.1.4.1.62397.1.1"
#define RATLS_OID_DSTACK_EVENT_LOG "1.3.6.1.4.1.62397.1.2"
#define RATLS_OID_DSTACK_APP_ID "1.3.6.1.4.1.62397.1.3"
#define RATLS_OID_DSTACK_USAGE "1.3.6.1.4.1.62397.1.4"
#define RATLS_OID_DSTACK_ATTESTATION "1.3.6.1.4.1.62397.1.8"
#define RATLS_OID_DSTACK_APP_INFO "1.3.6.1.4.1.62397.1.9"
#define RATLS_OID_COSMIAN_SGX "1.2.840.113741.1337.6"
#define RATLS_OID_COSMIAN_SEV "1.2.840.113741.1337.7"
#define RATLS_OID_COSMIAN_TDX "1.2.840.113741.1337.8"

/* dstack's tag for the certificate binding (§6.2) and cvmkit's fresh one. */
#define RATLS_TAG_CERT "ratls-cert"
#define RATLS_TAG_FRESH "cvmkit-tls-fresh"

/* Caps of the decoders (far above what dstack produces). */
#define RATLS_VA_EVENTS_MAX 65536u  /* events of a log */
#define RATLS_VA_CHAIN_MAX 16u      /* certificate blobs of an SNP quote */
#define RATLS_MSGPACK_DEPTH_MAX 12u /* nesting of a V1 attestation */
#define RATLS_EVENT_NAME_MAX 1024u  /* one event name */
#define RATLS_SNP_REPORT_LEN 1184u  /* an SNP attestation report */
#define RATLS_COSMIAN_TDX_BUF 8192u /* Cosmian's zero-padded TDX quote buffer */
#define RATLS_APP_INFO_MAX ((size_t)64 * 1024)

/* va_report_data_of reads the report_data a TDX quote or SNP report holds
 * (TDX v4/v5 at 568..632; SNP at 0x50). False when the quote is too short. */
bool va_quote_report_data(enum cvm_ratls_tee tee, const uint8_t *quote, size_t len, uint8_t out[64]);

/* ratls_sc_put_compact writes `v` in SCALE's compact form (its shortest);
 * ratls_sc_put_bytes writes a compact length and the bytes (va.c). */
struct cvm_wr;
void ratls_sc_put_compact(struct cvm_wr *w, uint64_t v);
void ratls_sc_put_bytes(struct cvm_wr *w, const void *p, size_t n);

/* ratls_utf8_valid is true when `n` bytes are well-formed UTF-8 (RFC 3629)
 * without NUL (va.c; csr.c uses it for the CSR's texts). */
bool ratls_utf8_valid(const uint8_t *p, size_t n);

struct cvm_cert;
/* ratls_parse_cert is cvm_ratls_parse of a certificate already parsed. */
int ratls_parse_cert(const struct cvm_cert *c, struct cvm_ratls_info **out, char *err, size_t err_len);

struct cvm_report;
/* ratls_evidence verifies a quote or SNP report with the verifier's
 * collateral and policy (verify.c; shared with csr_check.c). */
int ratls_evidence(struct cvm_ratls_verifier *v, enum cvm_ratls_tee tee, const uint8_t *quote, size_t len,
                   const struct cvm_amd_collateral *own_chain, int64_t at, struct cvm_ratls_verdict *out,
                   int64_t *expiry, struct cvm_report *rep);
/* ratls_unborrow clears the verdict's views into the quote buffer, which
 * the caller frees (verify.c). */
void ratls_unborrow(struct cvm_ratls_verdict *out);
/* ratls_replay replays a TDX certificate's (or attestation's, in `info`)
 * event log against its quote, as cvm_ratls_verifier_check does; key_hash
 * is SHA-256 of the key's SPKI, for the system-key scan (verify.c). */
int ratls_replay(const struct cvm_ratls_info *info, const uint8_t key_hash[32], struct cvm_ratls_verdict *out,
                 struct cvm_report *rep);

/* ratls_app_info_check checks that `len` bytes are dstack's 1.9 AppInfo in
 * rmp_serde's array form: 8 byte strings (app_id, compose_hash,
 * instance_id, device_id, mr_system[32], mr_aggregated[32], os_image_hash,
 * key_provider_info), then optionally init_script_hashes (nil or an array
 * of byte strings). Returns 0, CVM_E_FORMAT, CVM_E_TRUNCATED or
 * CVM_E_TOO_LARGE with `err` set. */
int ratls_app_info_check(const uint8_t *buf, size_t len, char *err, size_t err_len);

/* cosmian_sev_parse splits a Cosmian SEV extension (`len` bytes) into the
 * 1184-byte report and the certificates of its table, into `certs` (copies
 * the caller frees with cosmian_certs_cleanup). Sets *format to 1, 2 or 3.
 * Returns 0, CVM_E_TRUNCATED, CVM_E_FORMAT, CVM_E_TOO_LARGE or CVM_E_NOMEM;
 * `err` says what was wrong. */
int cosmian_sev_parse(const uint8_t *buf, size_t len, const uint8_t **report,
                      struct cvm_amd_collateral *certs, unsigned *format, char *err, size_t err_len);
void cosmian_certs_cleanup(struct cvm_amd_collateral *certs);
/* cosmian_sev_encode writes the tee-tools 2.x form: report || u32 count ||
 * entries (u32 entry_len, GUID, DER) for the ARK, ASK, VCEK, VLEK given
 * (PEM or DER) and the CRL when it is DER. Returns 0, CVM_E_FORMAT (a certificate does not parse),
 * CVM_E_NOMEM or CVM_E_TOO_LARGE. */
int cosmian_sev_encode(const uint8_t *report, size_t report_len, const struct cvm_amd_collateral *certs,
                       uint8_t **out, size_t *out_len);

#endif

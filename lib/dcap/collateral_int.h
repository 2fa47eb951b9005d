/* Internal helpers shared by the DCAP collateral JSON parsers (tcb_info.c,
 * qe_identity.c): the signed-span scanner, the jansson field readers and the
 * advisory list. Not part of the public API. */
#ifndef CVMKIT_DCAP_COLLATERAL_INT_H
#define CVMKIT_DCAP_COLLATERAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/dcap.h>
#include <cvmkit/err.h>

/* CVM_JSON_DEPTH_MAX bounds the nesting the span scanner follows. Intel's
 * bodies nest 6 deep. */
#define CVM_JSON_DEPTH_MAX 64

/* cvm_json_top_value scans the JSON object in `body` (the whole view: only
 * whitespace may surround it) and points `out` at the exact bytes of the value
 * of the top-level member named `key`, borrowed from `body`. Keys are matched
 * byte for byte as they appear between the quotes. It checks the structure
 * only as far as it needs to find the value boundaries (strings, escapes,
 * bracket balance); full validation is left to a real JSON parser. Returns 0,
 * CVM_E_FORMAT (malformed, `key` missing or present more than once) or
 * CVM_E_TOO_LARGE (nesting deeper than CVM_JSON_DEPTH_MAX). */
CVM_MUST_CHECK int cvm_json_top_value(const struct cvm_rd *body, const char *key, struct cvm_rd *out);

/* cvm_coll_load_signed splits a PCS body {"<key>":{...},"signature":"<hex>"}:
 * it finds the exact bytes of the `key` value (`span`, borrowed from `body`),
 * decodes them with jansson into a new object `*obj` (the caller releases it
 * with json_decref), checks that the whole body decodes to the same value,
 * and decodes the 64-byte signature. Duplicate keys anywhere are rejected.
 * Returns 0, CVM_E_FORMAT, CVM_E_TOO_LARGE or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_coll_load_signed(const uint8_t *body, size_t len, const char *key, json_t **obj,
                                        struct cvm_rd *span, uint8_t signature[64]);

/* Field readers over a decoded object. A missing or ill-typed field gives
 * CVM_E_FORMAT. */
CVM_MUST_CHECK int cvm_coll_uint(const json_t *o, const char *key, uint64_t max, uint64_t *out);
CVM_MUST_CHECK int cvm_coll_u8(const json_t *o, const char *key, uint8_t *out);
CVM_MUST_CHECK int cvm_coll_u16(const json_t *o, const char *key, uint16_t *out);
CVM_MUST_CHECK int cvm_coll_u32(const json_t *o, const char *key, uint32_t *out);
/* cvm_coll_string gives the bytes of a string member (not NUL-checked:
 * jansson rejects \u0000 unless asked not to). */
CVM_MUST_CHECK int cvm_coll_string(const json_t *o, const char *key, const char **s, size_t *len);
/* cvm_coll_hex decodes a string member of exactly 2*out_len hex digits. */
CVM_MUST_CHECK int cvm_coll_hex(const json_t *o, const char *key, uint8_t *out, size_t out_len);
/* cvm_coll_date decodes an ISO 8601 string member to Unix seconds. */
CVM_MUST_CHECK int cvm_coll_date(const json_t *o, const char *key, int64_t *out);
/* cvm_coll_status decodes a tcbStatus member; an unknown name is CVM_E_FORMAT. */
CVM_MUST_CHECK int cvm_coll_status(const json_t *o, const char *key, enum cvm_tcb_status *out);
/* cvm_coll_array gets an array member of at most `max` elements
 * (CVM_E_TOO_LARGE beyond); `allow_empty` says whether [] is accepted. */
CVM_MUST_CHECK int cvm_coll_array(const json_t *o, const char *key, size_t max, bool allow_empty,
                                  const json_t **out, size_t *count);
/* cvm_coll_advisories fills `out` from the optional "advisoryIDs" member of
 * `level`: at most CVM_ADVISORIES_MAX printable ASCII strings shorter than
 * CVM_ADVISORY_ID_MAX. On error `out` is left empty. */
CVM_MUST_CHECK int cvm_coll_advisories(const json_t *level, struct cvm_advisories *out);
/* cvm_coll_advisories_cleanup frees the ids and empties `a`. */
void cvm_coll_advisories_cleanup(struct cvm_advisories *a);
/* cvm_coll_level_common reads the "tcbDate", "tcbStatus" and "advisoryIDs"
 * members every kind of TCB level has. */
CVM_MUST_CHECK int cvm_coll_level_common(const json_t *level, int64_t *tcb_date, enum cvm_tcb_status *status,
                                         struct cvm_advisories *adv);

/* cvm_coll_isvsvn_level reads a level of the form {"tcb":{"isvsvn":N},
 * "tcbDate", "tcbStatus", "advisoryIDs"} (QE identity levels, TDX module
 * identity levels), N at most `max`. */
CVM_MUST_CHECK int cvm_coll_isvsvn_level(const json_t *level, uint64_t max, uint64_t *isv_svn,
                                         int64_t *tcb_date, enum cvm_tcb_status *status,
                                         struct cvm_advisories *adv);

/* Parsed signed collateral kept by exact bytes (lib/dcap/kept.c). */
enum cvm_coll_kind { CVM_COLL_TCB_INFO, CVM_COLL_QE_IDENTITY };
/* cvm_coll_parse is cvm_tcb_info_parse / cvm_qe_identity_parse for `kind`
 * (`*out` is a struct cvm_tcb_info or struct cvm_qe_identity). */
CVM_MUST_CHECK int cvm_coll_parse(enum cvm_coll_kind kind, const uint8_t *body, size_t len, void **out,
                                  struct cvm_rd *signed_part, uint8_t signature[64]);
/* The decoders of the signed JSON objects ("tcbInfo", "enclaveIdentity")
 * into a zeroed struct (tcb_info.c, qe_identity.c). */
CVM_MUST_CHECK int cvm_tcb_info_decode(const json_t *o, struct cvm_tcb_info *ti);
CVM_MUST_CHECK int cvm_qe_identity_decode(const json_t *o, struct cvm_qe_identity *qe);
/* cvm_coll_kept_take returns a new reference to the kept object of `kind`
 * parsed from exactly these bytes, with its signed span (in `body`) and
 * signature; NULL when none is kept. */
void *cvm_coll_kept_take(enum cvm_coll_kind kind, const uint8_t *body, size_t len, struct cvm_rd *span,
                         uint8_t sig[64]);
/* cvm_coll_kept_put keeps a reference to `obj` parsed from `body`. */
void cvm_coll_kept_put(enum cvm_coll_kind kind, void *obj, const uint8_t *body, size_t len,
                       const struct cvm_rd *span, const uint8_t sig[64]);

#endif

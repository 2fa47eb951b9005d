/* Output helpers for the cvm tool: sanitised text, quote fields as text and
 * as JSON (jansson, ASCII-only output), verification steps. */
#ifndef CVM_CLI_OUTPUT_H
#define CVM_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/dcap.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/report.h>
#include <cvmkit/snp.h>

/* out_sanitize copies `s` into `out` (capacity `cap`), replacing every byte
 * that is not printable ASCII with '?', so that text taken from evidence
 * cannot drive a terminal or break JSON. */
void out_sanitize(const char *s, char *out, size_t cap);

/* out_tee_name is "tdx" or "sgx"; out_body_name "td10", "td15" or "sgx". */
const char *out_tee_name(const struct cvm_quote *q);
const char *out_body_name(const struct cvm_quote *q);

/* out_time formats Unix seconds as "YYYY-MM-DDThh:mm:ssZ". */
void out_time(int64_t t, char buf[32]);

/* out_pem_cert_count counts the CERTIFICATE blocks at the start of `pem`
 * (up to the first text that is not a PEM block). */
size_t out_pem_cert_count(struct cvm_rd pem);
/* out_pem_printable is true when `pem` is printable ASCII text. */
bool out_pem_printable(struct cvm_rd pem);

/* Text output: two-space indent, name column, value. */
void out_field_hex(FILE *f, const char *indent, const char *name, const uint8_t *p, size_t n);
void out_field(FILE *f, const char *indent, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void out_sgx_report_text(FILE *f, const char *indent, const struct cvm_sgx_report *r);
void out_tdx_report_text(FILE *f, const char *indent, const struct cvm_tdx_report *td);
/* out_steps prints "  OK    name: detail" / "  FAIL  name: detail" lines. */
void out_steps(FILE *f, const struct cvm_report *rep);

/* The verdict, the same way in every command.
 * out_verdict_reason writes why a verification was rejected: the first
 * failed step's detail, then the names of the other failed steps ("(also
 * failed: a, b)"), or the error's text when no step failed; "" for 0.
 * out_verdict_text prints "verdict: accepted (summary)" or "verdict:
 * rejected: reason (summary)" (no parentheses without a summary).
 * out_verdict_json sets "verdict", "reason" and, with a report, "steps". */
void out_verdict_reason(const struct cvm_report *rep, int result, char *buf, size_t cap);
void out_verdict_text(bool accepted, const char *reason, const char *summary);
int out_verdict_json(json_t *o, bool accepted, const char *reason, const struct cvm_report *rep);

/* JSON output. Each setter returns 0, or -1 when out of memory. */
json_t *out_json_hex(const uint8_t *p, size_t n);
int out_jset(json_t *o, const char *key, json_t *v);
int out_jset_hex(json_t *o, const char *key, const uint8_t *p, size_t n);
int out_jset_str(json_t *o, const char *key, const char *s); /* NULL: JSON null; sanitised */
int out_jset_int(json_t *o, const char *key, long long v);
/* out_json_body adds the report body fields of `q` to `o`. */
int out_json_body(json_t *o, const struct cvm_quote *q);
json_t *out_json_sgx_report(const struct cvm_sgx_report *r);
json_t *out_json_steps(const struct cvm_report *rep);
/* out_json_print writes `o` to stdout, indented, ASCII only. */
int out_json_print(const json_t *o);

/* SEV-SNP: every field of a report, as text (name column) and as JSON
 * (added to `o`). */
void out_snp_report_text(FILE *f, const char *indent, const struct cvm_snp_report *r);
int out_json_snp_report(json_t *o, const struct cvm_snp_report *r);
/* out_snp_tcb_text writes "bootloader 3, tee 0, snp 8, microcode 115" (with
 * fmc first on Turin). */
void out_snp_tcb_text(const struct cvm_snp_tcb *t, char *buf, size_t cap);
json_t *out_json_snp_tcb(const struct cvm_snp_tcb *t);
json_t *out_json_snp_policy(uint64_t policy);

/* dstack's VersionedAttestation, decoded for people (cmd_attestation.c; used
 * by `cvm attestation` and `cvm cert ratls show`) from what cvm_va_check
 * (ratls.h) found. */
void cli_va_text(FILE *f, const char *indent, const struct cvm_va *va, const struct cvm_va_check *c);
int cli_va_json(json_t *o, const struct cvm_va *va, const struct cvm_va_check *c);

/* out_amd_simulated is true when AMD collateral (may be NULL) holds a
 * `cvm sim` key: an ARK, ASK, ASVK or chain the simulator made. Such
 * evidence says so in the first line of a verdict, whatever the verdict. */
bool out_amd_simulated(const struct cvm_amd_collateral *a);

#endif

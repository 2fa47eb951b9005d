/* lib/audit internals: the record encoding and hash, and the test seam. */
#ifndef CVM_AUDIT_INT_H
#define CVM_AUDIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <cvmkit/audit.h>

/* CVM_AUDIT_ENCODING_MAX bounds tag || seq || prev || encoding of one record. */
#define CVM_AUDIT_ENCODING_MAX 2048

/* The text fields of struct cvm_audit_record, in encoding order (which is
 * also the order of their columns in the table). */
#define CVM_AUDIT_TEXT_FIELDS 13
/* cvm_audit_field_name returns the name of text field `i` (its column). */
const char *cvm_audit_field_name(size_t i);
/* cvm_audit_field returns text field `i` of `r` and its array size in `*size`. */
char *cvm_audit_field(struct cvm_audit_record *r, size_t i, size_t *size);

/* cvm_audit_record_hash computes hash_seq of `r` (which must have passed
 * cvm_audit_record_check) over `prev`, as the file comment of
 * include/cvmkit/audit.h defines it. Returns 0 or CVM_E_INTERNAL. */
CVM_MUST_CHECK int cvm_audit_record_hash(uint64_t seq, const uint8_t prev[CVM_AUDIT_HASH_LEN],
                                         const struct cvm_audit_record *r, uint8_t out[CVM_AUDIT_HASH_LEN]);

/* cvm_audit_set_test_hook installs `fn` (NULL: none), which cvm_audit_append
 * calls inside its transaction, after the INSERT and before the COMMIT:
 * unit.kms_audit kills a forked child there to show that a crash mid-append
 * leaves the log as it was. Tests only. */
void cvm_audit_set_test_hook(void (*fn)(void));

#endif

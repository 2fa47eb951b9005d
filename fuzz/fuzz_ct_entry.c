/* libFuzzer harness for lib/ct's readers of log entries: the input is read
 * both as a MerkleTreeLeaf (cvm_ct_entry_parse) and as a get-entries answer
 * (cvm_ct_entries_parse), whose leaves are then parsed too.
 *
 * Invariants: a parsed entry has at most CVM_CT_NAMES_MAX names, each a
 * NUL-terminated string of printable lowercase-or-other ASCII within its
 * buffer; a SubjectPublicKeyInfo whose SHA-256 is the one reported; the
 * leaf hash is SHA-256(0x00 || input) whatever the verdict; a failed parse
 * owns nothing; a get-entries answer has at most the entries asked for,
 * each leaf within CVM_CT_LEAF_MAX; nothing leaks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ct.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_entry(const uint8_t *leaf, size_t len)
{
	static struct cvm_ct_entry e;
	uint8_t h[32];
	size_t i, k;
	int r;

	r = cvm_ct_entry_parse(leaf, len, &e);
	cvm_ct_leaf_hash(leaf, len, h);
	if (len <= CVM_CT_LEAF_MAX && memcmp(h, e.leaf_hash, 32) != 0)
		__builtin_trap();
	if (r != CVM_OK) {
		if (e.spki != NULL || e.name_count != 0)
			__builtin_trap();
		cvm_ct_entry_cleanup(&e);
		return;
	}
	if (e.name_count > CVM_CT_NAMES_MAX || e.spki == NULL || e.spki_len == 0)
		__builtin_trap();
	for (i = 0; i < e.name_count; i++) {
		k = strnlen(e.names[i], CVM_CT_NAME_LEN);
		if (k == CVM_CT_NAME_LEN)
			__builtin_trap();
		while (k-- > 0)
			if (e.names[i][k] < 0x21 || e.names[i][k] > 0x7e)
				__builtin_trap();
	}
	cvm_sha256(e.spki, e.spki_len, h);
	if (memcmp(h, e.spki_sha256, 32) != 0)
		__builtin_trap();
	cvm_ct_entry_cleanup(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_ct_raw *raw = NULL;
	size_t count = 0, i;

	check_entry(data, size);
	if (cvm_ct_entries_parse((const char *)data, size, 4, &raw, &count) == CVM_OK) {
		if (count > 4 || (count != 0 && raw == NULL))
			__builtin_trap();
		for (i = 0; i < count; i++) {
			if (raw[i].leaf_len > CVM_CT_LEAF_MAX || raw[i].extra_len > CVM_CT_EXTRA_MAX)
				__builtin_trap();
			check_entry(raw[i].leaf, raw[i].leaf_len);
		}
	} else if (raw != NULL || count != 0) {
		__builtin_trap();
	}
	cvm_ct_raw_free(raw, count);
	return 0;
}

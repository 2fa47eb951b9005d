/* libFuzzer harness for lib/chain's readers of what a chain node sends: the
 * JSON-RPC reply parser, and the (bool, string) and (string) ABI decoders,
 * fed both the raw input and the bytes of a reply that parsed. Whatever the
 * input, each returns cleanly; a refused answer is never "allowed"; a
 * decoded reason is NUL-terminated printable text; and, since only the
 * canonical encoding is accepted, re-encoding a decoded answer gives back
 * exactly the bytes that were decoded. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/chain.h>
#include <cvmkit/err.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			__builtin_trap();
}

/* canonical_len is the length of the canonical encoding of a return value
 * with `head` head words and a string of `n` bytes. */
static size_t canonical_len(size_t head, size_t n)
{
	return head * 32 + 32 + (n + 31) / 32 * 32;
}

static void check_abi(const uint8_t *p, size_t len)
{
	char reason[CVM_CHAIN_STRING_MAX + 1];
	bool ok = true;
	size_t n;

	if (cvm_chain_decode_bool_string(p, len, &ok, reason, sizeof(reason)) == CVM_OK) {
		check_text(reason, sizeof(reason));
		n = strlen(reason);
		/* Canonical: the length is fixed by the reason, the bool word is
		 * the bool, and the string's bytes are where the ABI puts them. */
		if (len != canonical_len(2, n) || p[31] != (ok ? 1 : 0) || memcmp(p + 96, reason, n) != 0)
			__builtin_trap();
	} else if (ok || reason[0] != '\0') {
		__builtin_trap();
	}
	if (cvm_chain_decode_string(p, len, reason, sizeof(reason)) == CVM_OK) {
		check_text(reason, sizeof(reason));
		n = strlen(reason);
		if (len != canonical_len(1, n) || memcmp(p + 64, reason, n) != 0)
			__builtin_trap();
	} else if (reason[0] != '\0') {
		__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = NULL;
	size_t out_len = 0;
	char err[256];

	check_abi(data, size);
	err[0] = '\0';
	if (cvm_chain_rpc_reply_parse(data, size, 1, &out, &out_len, err, sizeof(err)) == CVM_OK) {
		if (out == NULL || out_len > CVM_CHAIN_RETURN_MAX || out_len > size / 2)
			__builtin_trap();
		check_abi(out, out_len);
	} else {
		if (out != NULL || out_len != 0)
			__builtin_trap();
		check_text(err, sizeof(err));
		if (err[0] == '\0')
			__builtin_trap();
	}
	free(out);
	return 0;
}

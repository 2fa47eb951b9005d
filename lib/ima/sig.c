/* ima-sig signatures: the security.ima xattr of type EVM_IMA_XATTR_DIGSIG
 * (format v2 and v3) or IMA_VERITY_DIGSIG (v3), as the kernel logs it in
 * the sig field, checked against caller-supplied public keys. Layout
 * (struct signature_v2_hdr, packed): u8 type, u8 version, u8 hash_algo
 * (the kernel's enum hash_algo), be32 keyid, be16 sig_size, signature. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ima.h>

#include "ima_int.h"

#define XATTR_DIGSIG 3        /* EVM_IMA_XATTR_DIGSIG */
#define XATTR_VERITY_DIGSIG 6 /* IMA_VERITY_DIGSIG */

struct kr_key {
	struct cvm_pubkey *k;
	uint32_t ids[2];
	size_t id_count;
};

struct cvm_ima_keyring {
	struct kr_key keys[CVM_IMA_KEYS_MAX];
	size_t count;
};

/* digest_of_hash_algo maps the kernel's enum hash_algo
 * (include/uapi/linux/hash_info.h) to a TPM_ALG_ID. */
static uint16_t digest_of_hash_algo(uint8_t a)
{
	switch (a) {
	case 2:
		return CVM_DIGEST_SHA1;
	case 4:
		return CVM_DIGEST_SHA256;
	case 5:
		return CVM_DIGEST_SHA384;
	case 6:
		return CVM_DIGEST_SHA512;
	case 17:
		return CVM_DIGEST_SM3_256;
	default:
		return 0;
	}
}

int cvm_ima_sig_parse(struct cvm_rd field, struct cvm_ima_sig *out)
{
	struct cvm_rd r = field;
	uint16_t size;

	memset(out, 0, sizeof(*out));
	cvm_rd_init(&out->value, NULL, 0);
	if (!cvm_rd_u8(&r, &out->type) || !cvm_rd_u8(&r, &out->version))
		return CVM_E_FORMAT;
	if (out->type == XATTR_DIGSIG) {
		if (out->version != 2 && out->version != 3)
			return CVM_E_UNSUPPORTED;
	} else if (out->type == XATTR_VERITY_DIGSIG) {
		if (out->version != 3)
			return CVM_E_UNSUPPORTED;
	} else {
		return CVM_E_UNSUPPORTED;
	}
	if (!cvm_rd_u8(&r, &out->hash_algo) || !cvm_rd_u32be(&r, &out->keyid) || !cvm_rd_u16be(&r, &size))
		return CVM_E_FORMAT;
	if (size == 0 || r.len != size)
		return CVM_E_FORMAT;
	out->value = r;
	out->digest_alg = digest_of_hash_algo(out->hash_algo);
	return CVM_OK;
}

int cvm_ima_keyring_new(struct cvm_ima_keyring **out)
{
	*out = calloc(1, sizeof(**out));
	return *out == NULL ? CVM_E_NOMEM : CVM_OK;
}

void cvm_ima_keyring_free(struct cvm_ima_keyring *kr)
{
	if (kr == NULL)
		return;
	for (size_t i = 0; i < kr->count; i++)
		cvm_pubkey_free(kr->keys[i].k);
	free(kr);
}

size_t cvm_ima_keyring_count(const struct cvm_ima_keyring *kr)
{
	return kr->count;
}

static uint32_t be32_tail(const uint8_t *p, size_t len)
{
	return (uint32_t)p[len - 4] << 24 | (uint32_t)p[len - 3] << 16 | (uint32_t)p[len - 2] << 8 |
	       p[len - 1];
}

int cvm_ima_keyring_add(struct cvm_ima_keyring *kr, const uint8_t *buf, size_t len)
{
	struct cvm_pubkey *k = NULL;
	struct kr_key *slot;
	const uint8_t *skid;
	uint8_t sha1[20];
	size_t skid_len;
	int r;

	if (kr->count == CVM_IMA_KEYS_MAX)
		return CVM_E_TOO_LARGE;
	r = cvm_pubkey_parse(buf, len, &k);
	if (r != CVM_OK)
		return r;
	slot = &kr->keys[kr->count++];
	slot->k = k;
	cvm_pubkey_spki_sha1(k, sha1);
	slot->ids[slot->id_count++] = be32_tail(sha1, sizeof(sha1));
	if (cvm_pubkey_skid(k, &skid, &skid_len) && skid_len >= 4 &&
	    be32_tail(skid, skid_len) != slot->ids[0])
		slot->ids[slot->id_count++] = be32_tail(skid, skid_len);
	return CVM_OK;
}

const char *cvm_ima_sig_status_name(enum cvm_ima_sig_status s)
{
	switch (s) {
	case CVM_IMA_SIG_NONE:
		return "no signature";
	case CVM_IMA_SIG_VALID:
		return "valid";
	case CVM_IMA_SIG_INVALID:
		return "invalid signature";
	case CVM_IMA_SIG_NO_KEY:
		return "no key with this key id";
	case CVM_IMA_SIG_MALFORMED:
		return "malformed signature";
	case CVM_IMA_SIG_UNSUPPORTED:
		return "unsupported signature format";
	}
	return "unknown";
}

/* signed_digest computes what the signature covers: v2 signs the file
 * digest itself; v3 the hash of struct ima_file_id (type, hash_algo, digest;
 * only the bytes used). */
static int signed_digest(const struct cvm_ima_sig *s, const struct cvm_ima_entry *e, uint8_t *out,
                         size_t *out_len)
{
	uint8_t id[2 + CVM_IMA_FILE_DIGEST_MAX];
	size_t n = cvm_digest_len(s->digest_alg);
	int r;

	if (e->digest.len != n || n > CVM_IMA_FILE_DIGEST_MAX)
		return CVM_E_MISMATCH;
	if (s->version == 2) {
		memcpy(out, e->digest.p, n);
		*out_len = n;
		return CVM_OK;
	}
	id[0] = s->type;
	id[1] = s->hash_algo;
	memcpy(id + 2, e->digest.p, n);
	r = cvm_digest(s->digest_alg, id, 2 + n, out, CVM_DIGEST_MAX);
	if (r != CVM_OK)
		return r;
	*out_len = n;
	return CVM_OK;
}

static bool is_verity(const struct cvm_ima_entry *e)
{
	return e->digest_type.len == 6 && memcmp(e->digest_type.p, "verity", 6) == 0;
}

int cvm_ima_sig_check(const struct cvm_ima_keyring *kr, const struct cvm_ima_entry *e,
                      enum cvm_ima_sig_status *status, uint32_t *keyid)
{
	struct cvm_ima_sig s;
	uint8_t digest[CVM_DIGEST_MAX];
	size_t digest_len = 0;
	bool seen = false;
	int r;

	*status = CVM_IMA_SIG_NONE;
	*keyid = 0;
	if (e->sig.len == 0)
		return CVM_OK;
	r = cvm_ima_sig_parse(e->sig, &s);
	if (r != CVM_OK) {
		*status = r == CVM_E_UNSUPPORTED ? CVM_IMA_SIG_UNSUPPORTED : CVM_IMA_SIG_MALFORMED;
		return CVM_OK;
	}
	*keyid = s.keyid;
	if (s.digest_alg == 0) {
		*status = CVM_IMA_SIG_UNSUPPORTED;
		return CVM_OK;
	}
	/* The kernel hashes the file with the signature's algorithm, and a
	 * verity signature covers an fs-verity digest (d-ngv2 "verity:"). */
	if (e->is_violation || e->digest_alg != s.digest_alg ||
	    (s.type == XATTR_VERITY_DIGSIG) != is_verity(e)) {
		*status = CVM_IMA_SIG_INVALID;
		return CVM_OK;
	}
	r = signed_digest(&s, e, digest, &digest_len);
	if (r == CVM_E_MISMATCH) {
		*status = CVM_IMA_SIG_INVALID;
		return CVM_OK;
	}
	if (r != CVM_OK)
		return r;
	*status = CVM_IMA_SIG_NO_KEY;
	for (size_t i = 0; i < kr->count; i++) {
		const struct kr_key *k = &kr->keys[i];
		bool match = false;

		for (size_t j = 0; j < k->id_count; j++)
			match = match || k->ids[j] == s.keyid;
		if (!match)
			continue;
		seen = true;
		r = cvm_pubkey_verify_digest(k->k, s.digest_alg, digest, digest_len, s.value.p, s.value.len);
		if (r == CVM_OK) {
			*status = CVM_IMA_SIG_VALID;
			return CVM_OK;
		}
		if (r != CVM_E_SIGNATURE && r != CVM_E_UNSUPPORTED)
			return r;
	}
	if (seen)
		*status = CVM_IMA_SIG_INVALID;
	return CVM_OK;
}

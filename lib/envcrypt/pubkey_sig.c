/* The KMS's signatures over an app's env public key (spec §3.2,
 * GetAppEnvEncryptPubKey): keccak256 over a domain, the app id, (for
 * signature_v1) the big-endian timestamp, and the key; secp256k1,
 * recoverable. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/envcrypt.h>
#include <cvmkit/keccak.h>

#include "core/core_lib.h"

/* set_err writes one sentence into `err` (core's cvm_err_set). */
#define set_err(err, err_len, ...) ((void)cvm_err_set((err), (err_len), CVM_OK, __VA_ARGS__))

void cvm_envcrypt_pubkey_digest(const uint8_t app_id[20], const uint8_t pub[CVM_ENVCRYPT_PUBKEY_LEN], bool v1,
                                uint64_t timestamp, uint8_t out[32])
{
	static const char domain[] = CVM_ENVCRYPT_SIG_DOMAIN ":";
	struct cvm_keccak256_ctx ctx;
	uint8_t ts[8];
	struct cvm_wr w;

	cvm_keccak256_init(&ctx);
	cvm_keccak256_update(&ctx, domain, sizeof(domain) - 1);
	cvm_keccak256_update(&ctx, app_id, 20);
	if (v1) {
		cvm_wr_init_fixed(&w, ts, sizeof(ts));
		cvm_wr_u32be(&w, (uint32_t)(timestamp >> 32));
		cvm_wr_u32be(&w, (uint32_t)timestamp);
		cvm_keccak256_update(&ctx, ts, sizeof(ts));
	}
	cvm_keccak256_update(&ctx, pub, CVM_ENVCRYPT_PUBKEY_LEN);
	cvm_keccak256_final(&ctx, out);
}

int cvm_envcrypt_pubkey_sign(const uint8_t root_k256[CVM_K256_SECKEY_LEN], const uint8_t app_id[20],
                             const uint8_t pub[CVM_ENVCRYPT_PUBKEY_LEN], uint64_t timestamp,
                             uint8_t sig[CVM_K256_RSIG_LEN], uint8_t sig_v1[CVM_K256_RSIG_LEN])
{
	uint8_t digest[32];
	int r;

	if (sig == NULL || sig_v1 == NULL)
		return CVM_E_INVAL;
	memset(sig, 0, CVM_K256_RSIG_LEN);
	memset(sig_v1, 0, CVM_K256_RSIG_LEN);
	if (root_k256 == NULL || app_id == NULL || pub == NULL)
		return CVM_E_INVAL;
	cvm_envcrypt_pubkey_digest(app_id, pub, false, 0, digest);
	r = cvm_k256_sign_recoverable(root_k256, digest, sig);
	if (r != CVM_OK)
		goto out;
	cvm_envcrypt_pubkey_digest(app_id, pub, true, timestamp, digest);
	r = cvm_k256_sign_recoverable(root_k256, digest, sig_v1);
out:
	if (r != CVM_OK) {
		memset(sig, 0, CVM_K256_RSIG_LEN);
		memset(sig_v1, 0, CVM_K256_RSIG_LEN);
	}
	return r;
}

/* signed_by recovers the signer of `sig` over `digest` and compares it
 * with `want` (compressed). */
static int signed_by(const uint8_t digest[32], const uint8_t sig[CVM_K256_RSIG_LEN],
                     const uint8_t want[CVM_K256_PUBKEY_LEN])
{
	uint8_t got[CVM_K256_PUBKEY_LEN];
	int r;

	r = cvm_k256_recover(digest, sig, got);
	if (r != CVM_OK)
		return CVM_E_SIGNATURE;
	return memcmp(got, want, sizeof(got)) == 0 ? CVM_OK : CVM_E_SIGNATURE;
}

int cvm_envcrypt_pubkey_verify(const uint8_t kms_k256_pub[CVM_K256_PUBKEY_LEN], const uint8_t app_id[20],
                               const uint8_t pub[CVM_ENVCRYPT_PUBKEY_LEN], const uint8_t *sig,
                               const uint8_t *sig_v1, uint64_t timestamp, uint64_t now, uint64_t max_age_s,
                               char *err, size_t err_len)
{
	uint8_t kms[CVM_K256_PUBKEY_LEN];
	uint8_t digest[32];
	int r;

	set_err(err, err_len, "%s", "");
	if (kms_k256_pub == NULL || app_id == NULL || pub == NULL) {
		set_err(err, err_len, "no KMS key, app id or env public key was given");
		return CVM_E_INVAL;
	}
	r = cvm_k256_pubkey_parse(kms_k256_pub, CVM_K256_PUBKEY_LEN, kms);
	if (r != CVM_OK) {
		set_err(err, err_len, "the KMS k256 public key is not a compressed secp256k1 point");
		return CVM_E_FORMAT;
	}
	if (max_age_s > 0) {
		if (sig_v1 == NULL) {
			set_err(
			    err, err_len,
			    "the KMS sent no signature_v1 (it predates timestamped signatures); the legacy "
			    "signature has no time and could be a replay: accept it only with a max age of "
			    "0");
			return CVM_E_POLICY;
		}
		if (timestamp > now && timestamp - now > CVM_ENVCRYPT_SKEW_MAX) {
			set_err(err, err_len,
			        "the signature's timestamp %" PRIu64 " is %" PRIu64
			        " s in the future (at most %u s allowed): check the clocks",
			        timestamp, timestamp - now, CVM_ENVCRYPT_SKEW_MAX);
			return CVM_E_POLICY;
		}
		if (now > timestamp && now - timestamp > max_age_s) {
			set_err(err, err_len,
			        "the signature's timestamp %" PRIu64 " is %" PRIu64 " s old (at most %" PRIu64
			        " s allowed): a stale or replayed answer",
			        timestamp, now - timestamp, max_age_s);
			return CVM_E_POLICY;
		}
	}
	if (sig_v1 != NULL) {
		cvm_envcrypt_pubkey_digest(app_id, pub, true, timestamp, digest);
		r = signed_by(digest, sig_v1, kms);
		if (r != CVM_OK)
			set_err(
			    err, err_len,
			    "signature_v1 was not made by the KMS key over this app id, env public key and "
			    "timestamp");
		return r;
	}
	if (sig == NULL) {
		set_err(err, err_len, "no signature to check");
		return CVM_E_INVAL;
	}
	cvm_envcrypt_pubkey_digest(app_id, pub, false, 0, digest);
	r = signed_by(digest, sig, kms);
	if (r != CVM_OK)
		set_err(err, err_len,
		        "the legacy signature was not made by the KMS key over this app id and env "
		        "public key");
	return r;
}

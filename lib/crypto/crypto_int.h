/* Internal helpers of lib/crypto. */
#ifndef CVM_CRYPTO_INT_H
#define CVM_CRYPTO_INT_H

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>

struct cvm_cert {
	X509 *x;
	int refs;
	int64_t not_before;
	int64_t not_after;
	uint8_t *der;
	size_t der_len;
};

/* cvm_pem_starts is true when the text (after whitespace) opens a PEM block. */
bool cvm_pem_starts(const uint8_t *p, size_t len);

/* asn1_time_unix converts an ASN1_TIME to Unix seconds; false if it cannot. */
bool cvm_asn1_time_unix(const ASN1_TIME *t, int64_t *out);
/* ecdsa_raw_to_der turns r || s (2 * n bytes) into a DER ECDSA-Sig-Value in
 * `der` (cap bytes). Returns the length, or 0 on failure. */
size_t cvm_ecdsa_raw_to_der(const uint8_t *sig, size_t n, uint8_t *der, size_t cap);
/* verify_digest checks a DER signature with SHA-256 under `pkey`. */
int cvm_evp_verify_sha256(EVP_PKEY *pkey, const uint8_t *msg, size_t len, const uint8_t *der_sig,
                          size_t der_len);

/* cvm_algor_is_rsa_pss_sha384 is true for RSASSA-PSS with SHA-384, MGF1
 * SHA-384, a 48-byte salt and trailer 1 (lib/crypto/p384.c). */
bool cvm_algor_is_rsa_pss_sha384(const X509_ALGOR *alg);

#endif

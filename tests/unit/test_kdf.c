/* lib/kdf and the key primitives of lib/crypto: dstack's GetKey, Sign,
 * Verify, signature chains and KMS derivations against the vectors of
 * specs/dstack.md (§1.3, §3.2, §11) and values computed independently
 * (@noble/curves + @noble/hashes 1.x for secp256k1/Ed25519/HKDF/Keccak,
 * Python cryptography 48 for P-256/PKCS#8/X25519); the key-reuse-across-
 * curves pitfall; the appkeys.json parser (every field, every truncation,
 * bit flips); the local provider's file policy; certificates. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cvmkit/encoding.h>
#include <cvmkit/kdf.h>
#include <cvmkit/keccak.h>

#include "vectors.h"

/* ---- vectors ------------------------------------------------------------------ */

/* spec §1.3: the app key of dstack's own GetKey/dip1 unit tests */
#define VMS_APP_KEY "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b"
/* spec §2/§11: the simulator's appkeys.json k256_key */
#define SIM_APP_KEY "d6e88992cdeeee35fe70b5db61ab66cdb191fb9b6ec9313757ef162dd7214d5d"
/* spec §3.2: dstack/ra-tls/src/kdf.rs test root (P-256 scalar inside its PKCS#8) */
#define DH_ROOT_SK "f57527cea4ab7ffb49af99b158cdc0e3ec06398f528349ea236b7d2afe19cec1"
#define DH_ROOT_DER                                                                                          \
	"308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b0201010420f57527cea4ab7ffb49af99b158" \
	"cdc0e3ec06"                                                                                         \
	"398f528349ea236b7d2afe19cec1a1440342000491f50522407ce29dce3ed7d31a15d80c1c42f13a23552d2b33a0ce09ee" \
	"11e47bce9"                                                                                          \
	"5936f3e7f80d195f879e28e1b144ef37ac9ab8e36a690cbf930b775897b27"
/* app_id and instance_id of the simulator fixture's runtime events (spec §2) */
#define SIM_APP_ID "5bb4ff9a3837357f19dc176407a5709c62eb6c56"
#define SIM_INSTANCE_ID "1691ed1b47506cad7d08834668691d88246f5b1f"

/* ---- helpers ------------------------------------------------------------------ */

static void unhex(const char *hex, uint8_t *out, size_t len)
{
	assert_int_equal(strlen(hex), 2 * len);
	assert_int_equal(cvm_hex_decode_exact(hex, strlen(hex), out, len), CVM_OK);
}

static void assert_hex(const uint8_t *p, size_t len, const char *hex)
{
	char *got = cvm_hex_encode_new(p, len);

	assert_non_null(got);
	assert_string_equal(got, hex);
	free(got);
}

/* b64url_decode decodes unpadded URL-safe base64 through the core decoder. */
static size_t b64url_decode(const char *s, uint8_t *out, size_t cap)
{
	char std[128];
	uint8_t *dec = NULL;
	size_t n = strlen(s), len = 0;

	assert_true(n + 3 < sizeof(std));
	for (size_t i = 0; i < n; i++)
		std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
	while (n % 4 != 0)
		std[n++] = '=';
	assert_int_equal(cvm_base64_decode(std, n, cap, &dec, &len), CVM_OK);
	memcpy(out, dec, len);
	free(dec);
	return len;
}

/* keys_with makes app keys holding only a k256 key (and a KMS signature). */
static struct cvm_appkeys *keys_with(const char *k256_hex, const uint8_t *sig)
{
	struct cvm_appkeys *k = calloc(1, sizeof(*k));

	assert_non_null(k);
	k->k256_key = cvm_secret_new(32);
	assert_non_null(k->k256_key);
	unhex(k256_hex, k->k256_key->p, 32);
	if (sig != NULL) {
		memcpy(k->k256_signature, sig, 65);
		k->k256_signature_len = 65;
	}
	return k;
}

static bool under_valgrind(void)
{
	return getenv("CVM_UNDER_VALGRIND") != NULL;
}

/* ---- HKDF, tagged SHA-512, identities ---------------------------------------------- */

static void hkdf_matches_rfc5869(void **state)
{
	uint8_t ikm[22], salt[13], info[10], okm[42];

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	for (size_t i = 0; i < sizeof(info); i++)
		info[i] = (uint8_t)(0xf0 + i);
	/* RFC 5869 A.1 */
	assert_int_equal(
	    cvm_hkdf_sha256(salt, sizeof(salt), ikm, sizeof(ikm), info, sizeof(info), okm, sizeof(okm)),
	    CVM_OK);
	assert_hex(okm, sizeof(okm),
	           "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
	/* RFC 5869 A.3: empty salt and info */
	assert_int_equal(cvm_hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, okm, sizeof(okm)), CVM_OK);
	assert_hex(okm, sizeof(okm),
	           "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
	assert_int_equal(cvm_hkdf_sha256(NULL, 0, ikm, sizeof(ikm), NULL, 0, okm, 0), CVM_E_INVAL);
	assert_int_equal(cvm_hkdf_sha256(NULL, 1, ikm, sizeof(ikm), NULL, 0, okm, 32), CVM_E_INVAL);
}

static void sha512_tagged_reproduces_the_app_data_vector(void **state)
{
	uint8_t out[64];

	(void)state;
	/* spec §11: sha512("app-data:" || "hello"), Tappd's default report_data */
	assert_int_equal(cvm_sha512_tagged("app-data", (const uint8_t *)"hello", 5, out), CVM_OK);
	assert_hex(
	    out, 64,
	    "e39fd3dbee991d65e65cc38c6e9d664324929816279a19b495bcd3f77a62d81949ba61282d8a732916d39bb9f6a6a16d"
	    "11211c0d800b6ffc56ecf74419a7c835");
}

static void identities_follow_the_spec(void **state)
{
	uint8_t compose[32], app_id[20], seed[20], bind[32], id[20], id2[20], buf[72], h[32];
	unsigned n = 0;

	(void)state;
	for (size_t i = 0; i < 32; i++) {
		compose[i] = (uint8_t)(0x80 + i);
		bind[i] = (uint8_t)(0x40 + i);
	}
	for (size_t i = 0; i < 20; i++)
		seed[i] = (uint8_t)i;
	cvm_kdf_app_id_from_compose_hash(compose, app_id);
	assert_memory_equal(app_id, compose, 20);
	cvm_kdf_instance_id(seed, app_id, NULL, id);
	memcpy(buf, seed, 20);
	memcpy(buf + 20, app_id, 20);
	assert_int_equal(EVP_Digest(buf, 40, h, &n, EVP_sha256(), NULL), 1);
	assert_memory_equal(id, h, 20);
	cvm_kdf_instance_id(seed, app_id, bind, id2);
	memcpy(buf + 40, bind, 32);
	assert_int_equal(EVP_Digest(buf, 72, h, &n, EVP_sha256(), NULL), 1);
	assert_memory_equal(id2, h, 20);
	assert_memory_not_equal(id, id2, 20);
}

/* ---- primitives ---------------------------------------------------------------- */

static void ed25519_and_x25519_match_their_rfcs(void **state)
{
	uint8_t seed[32], pub[32], sig[64], a[32], b_pub[32], shared[32], zero[32] = {0};

	(void)state;
	/* RFC 8032 7.1 TEST 1 (empty message) */
	unhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
	assert_int_equal(cvm_ed25519_pubkey(seed, pub), CVM_OK);
	assert_hex(pub, 32, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
	assert_int_equal(cvm_ed25519_sign(seed, NULL, 0, sig), CVM_OK);
	assert_hex(
	    sig, 64,
	    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
	    "d25bf5f0595bbe24655141438e7a100b");
	assert_int_equal(cvm_ed25519_verify(pub, NULL, 0, sig), CVM_OK);
	sig[0] ^= 1;
	assert_int_equal(cvm_ed25519_verify(pub, NULL, 0, sig), CVM_E_SIGNATURE);
	/* RFC 7748 6.1 */
	unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a, 32);
	assert_int_equal(cvm_x25519_pubkey(a, pub), CVM_OK);
	assert_hex(pub, 32, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
	unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f", b_pub, 32);
	assert_int_equal(cvm_x25519(a, b_pub, shared), CVM_OK);
	assert_hex(shared, 32, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
	/* a low-order point (here 0) gives an all-zero secret: refused */
	assert_int_equal(cvm_x25519(a, zero, shared), CVM_E_FORMAT);
	assert_memory_equal(shared, zero, 32);
}

static void k256_primitives_are_strict(void **state)
{
	static const char n_hex[] = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
	uint8_t sk[32], n[32], pub[33], full[65], out[33], digest[32], sig[64], rsig[65], rec[33];
	size_t len = sizeof(full);
	uint8_t borrow = 0;
	EVP_PKEY *pkey = NULL;

	(void)state;
	memset(sk, 0, 32);
	assert_int_equal(cvm_k256_seckey_check(sk), CVM_E_FORMAT);
	unhex(n_hex, n, 32);
	assert_int_equal(cvm_k256_seckey_check(n), CVM_E_FORMAT);
	assert_int_equal(cvm_k256_pubkey(n, pub), CVM_E_FORMAT);
	unhex(SIM_APP_KEY, sk, 32);
	assert_int_equal(cvm_k256_seckey_check(sk), CVM_OK);
	assert_int_equal(cvm_k256_pubkey(sk, pub), CVM_OK);
	/* the uncompressed form from OpenSSL parses to the same key */
	{
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		OSSL_PARAM params[3];
		char group[] = "secp256k1";

		params[0] = OSSL_PARAM_construct_utf8_string("group", group, 0);
		params[1] = OSSL_PARAM_construct_octet_string("pub", pub, sizeof(pub));
		params[2] = OSSL_PARAM_construct_end();
		assert_non_null(ctx);
		assert_int_equal(EVP_PKEY_fromdata_init(ctx), 1);
		assert_int_equal(EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params), 1);
		EVP_PKEY_CTX_free(ctx);
		assert_int_equal(EVP_PKEY_set_utf8_string_param(pkey, "point-format", "uncompressed"), 1);
		assert_int_equal(
		    EVP_PKEY_get_octet_string_param(pkey, "encoded-pub-key", full, sizeof(full), &len), 1);
		EVP_PKEY_free(pkey);
	}
	assert_int_equal(len, 65);
	assert_int_equal(cvm_k256_pubkey_parse(full, 65, out), CVM_OK);
	assert_memory_equal(out, pub, 33);
	/* hybrid encodings (06/07) are not SEC1 keys dstack accepts */
	full[0] = (uint8_t)(0x06 | (pub[0] & 1));
	assert_int_equal(cvm_k256_pubkey_parse(full, 65, out), CVM_E_FORMAT);
	assert_int_equal(cvm_k256_pubkey_parse(pub, 32, out), CVM_E_FORMAT);
	pub[0] = 0x04;
	assert_int_equal(cvm_k256_pubkey_parse(pub, 33, out), CVM_E_FORMAT);
	assert_int_equal(cvm_k256_pubkey(sk, pub), CVM_OK);

	/* sign / verify / recover, and the strict encodings */
	memset(digest, 0x5a, 32);
	assert_int_equal(cvm_k256_sign(sk, digest, sig), CVM_OK);
	assert_int_equal(cvm_k256_verify(pub, 33, digest, sig), CVM_OK);
	assert_int_equal(cvm_k256_sign_recoverable(sk, digest, rsig), CVM_OK);
	assert_memory_equal(rsig, sig, 64); /* same RFC 6979 nonce */
	assert_true(rsig[64] <= 1);
	assert_int_equal(cvm_k256_recover(digest, rsig, rec), CVM_OK);
	assert_memory_equal(rec, pub, 33);
	rsig[64] = 4;
	assert_int_equal(cvm_k256_recover(digest, rsig, rec), CVM_E_FORMAT);
	/* high-S: s' = n - s verifies mathematically but is refused */
	memcpy(rsig, sig, 64);
	for (int i = 31; i >= 0; i--) {
		int v = n[i] - sig[32 + i] - borrow;

		borrow = v < 0;
		rsig[32 + i] = (uint8_t)(v + (borrow ? 256 : 0));
	}
	assert_int_equal(cvm_k256_verify(pub, 33, digest, rsig), CVM_E_SIGNATURE);
	/* r = 0 and r >= n are malformed, not merely invalid */
	memcpy(rsig, sig, 64);
	memset(rsig, 0, 32);
	assert_int_equal(cvm_k256_verify(pub, 33, digest, rsig), CVM_E_FORMAT);
	memset(rsig, 0xff, 32);
	assert_int_equal(cvm_k256_verify(pub, 33, digest, rsig), CVM_E_FORMAT);
	digest[0] ^= 1;
	assert_int_equal(cvm_k256_verify(pub, 33, digest, sig), CVM_E_SIGNATURE);
}

static void p256_keys_have_dstack_encodings(void **state)
{
	uint8_t d[32], der[CVM_P256_PKCS8_DER_LEN], xy[64], sig[64], root[138];
	struct cvm_p256_keypair *kp = NULL, *back = NULL;
	struct cvm_secret *pem = NULL;
	uint8_t *spki = NULL, *ossl = NULL;
	size_t spki_len = 0;
	struct cvm_p256_key *pk = NULL;
	EVP_PKEY *pkey;
	BIO *bio;
	int ossl_len;

	(void)state;
	/* the dstack root key's own PKCS#8 is the canonical encoding */
	unhex(DH_ROOT_SK, d, 32);
	unhex(DH_ROOT_DER, root, sizeof(root));
	assert_int_equal(cvm_p256_keypair_from_scalar(d, &kp), CVM_OK);
	cvm_p256_keypair_pkcs8(kp, der);
	assert_memory_equal(der, root, sizeof(root));
	/* and OpenSSL 3 encodes it the same way */
	assert_int_equal(cvm_p256_keypair_pkcs8_pem(kp, &pem), CVM_OK);
	bio = BIO_new_mem_buf(pem->p, (int)pem->len);
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	assert_non_null(pkey);
	{
		PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(pkey);

		assert_non_null(p8);
		ossl_len = i2d_PKCS8_PRIV_KEY_INFO(p8, &ossl);
		PKCS8_PRIV_KEY_INFO_free(p8);
	}
	assert_int_equal(ossl_len, CVM_P256_PKCS8_DER_LEN);
	assert_memory_equal(ossl, root, sizeof(root));
	OPENSSL_clear_free(ossl, (size_t)ossl_len);
	EVP_PKEY_free(pkey);
	/* PEM layout: 64-column base64, LF, 241 bytes */
	assert_int_equal(pem->len, 241);
	assert_memory_equal(
	    pem->p, "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg", 76);
	assert_int_equal(pem->p[28 + 64], '\n');
	assert_int_equal(cvm_p256_keypair_from_pem((const char *)pem->p, pem->len, &back), CVM_OK);
	cvm_p256_keypair_pkcs8(back, der);
	assert_memory_equal(der, root, sizeof(root));
	cvm_p256_keypair_free(back);
	back = NULL;
	/* SPKI template, and signatures that the existing P-256 verifier accepts */
	assert_int_equal(cvm_p256_keypair_spki(kp, &spki, &spki_len), CVM_OK);
	assert_int_equal(spki_len, 91);
	cvm_p256_keypair_public(kp, xy);
	assert_memory_equal(spki + 27, xy, 64);
	assert_memory_equal(xy, root + 74, 64);
	assert_int_equal(cvm_p256_keypair_sign(kp, (const uint8_t *)"msg", 3, sig), CVM_OK);
	assert_int_equal(cvm_p256_key_new(xy, &pk), CVM_OK);
	assert_int_equal(cvm_p256_verify(pk, (const uint8_t *)"msg", 3, sig), CVM_OK);
	assert_int_equal(cvm_p256_verify(pk, (const uint8_t *)"msh", 3, sig), CVM_E_SIGNATURE);
	cvm_p256_key_free(pk);
	free(spki);
	cvm_secret_free(pem);
	cvm_p256_keypair_free(kp);
	/* scalars 0 and n are not keys */
	memset(d, 0, 32);
	assert_int_equal(cvm_p256_keypair_from_scalar(d, &kp), CVM_E_FORMAT);
	unhex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", d, 32);
	assert_int_equal(cvm_p256_keypair_from_scalar(d, &kp), CVM_E_FORMAT);
	assert_null(kp);
	d[31] = 0x50; /* n - 1 */
	assert_int_equal(cvm_p256_keypair_from_scalar(d, &kp), CVM_OK);
	cvm_p256_keypair_free(kp);
}

/* pem_of writes `pkey` as PKCS#8 (traditional = false) or SEC1 PEM. */
static char *pem_of(EVP_PKEY *pkey, bool traditional, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *copy;
	long n;

	assert_non_null(bio);
	if (traditional)
		assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, pkey, NULL, NULL, 0, NULL, NULL),
		                 1);
	else
		assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &data);
	copy = strndup(data, (size_t)n);
	BIO_free(bio);
	assert_non_null(copy);
	*len = (size_t)n;
	return copy;
}

static void p256_pem_import_accepts_sec1_and_rejects_the_rest(void **state)
{
	struct cvm_p256_keypair *kp = NULL, *ref = NULL;
	struct cvm_secret *canon = NULL;
	uint8_t a[138], b[138];
	EVP_PKEY *ec, *p384, *ed;
	char *pem, *bad;
	size_t len, blen;

	(void)state;
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(ec);
	assert_non_null(p384);
	assert_non_null(ed);
	/* SEC1 "EC PRIVATE KEY" and PKCS#8 of one key give one key pair */
	pem = pem_of(ec, true, &len);
	assert_non_null(strstr(pem, "BEGIN EC PRIVATE KEY"));
	assert_int_equal(cvm_p256_keypair_from_pem(pem, len, &kp), CVM_OK);
	free(pem);
	pem = pem_of(ec, false, &len);
	assert_int_equal(cvm_p256_keypair_from_pem(pem, len, &ref), CVM_OK);
	cvm_p256_keypair_pkcs8(kp, a);
	cvm_p256_keypair_pkcs8(ref, b);
	assert_memory_equal(a, b, sizeof(a));
	/* trailing text after the block */
	bad = malloc(len + 2);
	assert_non_null(bad);
	memcpy(bad, pem, len);
	memcpy(bad + len, "x\n", 2);
	cvm_p256_keypair_free(kp);
	kp = NULL;
	assert_int_equal(cvm_p256_keypair_from_pem(bad, len + 2, &kp), CVM_E_FORMAT);
	assert_int_equal(cvm_p256_keypair_from_pem(pem, len / 2, &kp), CVM_E_FORMAT);
	free(bad);
	free(pem);
	/* a PKCS#8 whose embedded public key is another valid key's */
	{
		struct cvm_p256_keypair *two = NULL;
		uint8_t der[138], der2[138];
		char *b64, text[300];

		assert_int_equal(cvm_p256_keypair_generate(&two), CVM_OK);
		cvm_p256_keypair_pkcs8(ref, der);
		cvm_p256_keypair_pkcs8(two, der2);
		cvm_p256_keypair_free(two);
		memcpy(der + 73, der2 + 73, 65); /* 04 || x || y */
		b64 = cvm_base64_encode_new(der, 138);
		assert_non_null(b64);
		blen = (size_t)snprintf(text, sizeof(text),
		                        "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n", b64);
		free(b64);
		assert_int_equal(cvm_p256_keypair_from_pem(text, blen, &kp), CVM_E_FORMAT);
		assert_null(kp);
		cvm_wipe(der, sizeof(der));
	}
	assert_int_equal(cvm_p256_keypair_pkcs8_pem(ref, &canon), CVM_OK);
	assert_int_equal(cvm_p256_keypair_from_pem((const char *)canon->p, canon->len, &kp), CVM_OK);
	cvm_p256_keypair_free(kp);
	kp = NULL;
	cvm_secret_free(canon);
	cvm_p256_keypair_free(ref);
	/* other curves and algorithms */
	pem = pem_of(p384, false, &len);
	assert_int_equal(cvm_p256_keypair_from_pem(pem, len, &kp), CVM_E_UNSUPPORTED);
	free(pem);
	pem = pem_of(ed, false, &len);
	assert_int_equal(cvm_p256_keypair_from_pem(pem, len, &kp), CVM_E_UNSUPPORTED);
	free(pem);
	assert_int_equal(cvm_p256_keypair_from_pem("", 0, &kp), CVM_E_FORMAT);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

/* ---- GetKey ----------------------------------------------------------------------- */

static void getkey_reproduces_the_dstack_vms_vectors(void **state)
{
	struct cvm_appkeys *k = keys_with(VMS_APP_KEY, NULL);
	struct cvm_getkey g;
	uint8_t want[40];
	size_t n;

	(void)state;
	/* spec §1.3: base64url of GetKey("vms") public keys */
	assert_int_equal(cvm_kdf_get_key(k, "vms", 3, "signing", 7, CVM_KEY_ALG_SECP256K1, 0, &g), CVM_OK);
	n = b64url_decode("A6t_JdVkVdMAocH3f1f20WGT6JzdntxcXimUtEax8zc9", want, sizeof(want));
	assert_int_equal(n, 33);
	assert_int_equal(g.public_key_len, 33);
	assert_memory_equal(g.public_key, want, 33);
	assert_int_equal(g.key->len, 32);
	assert_int_equal(g.chain1_len, 0);
	cvm_getkey_cleanup(&g);
	assert_null(g.key);
	assert_int_equal(cvm_kdf_get_key(k, "vms", 3, "signing", 7, CVM_KEY_ALG_ED25519, 0, &g), CVM_OK);
	n = b64url_decode("5Pbre1Amf1hrp2V2bbfKlIfxpQb2pJAmrgmhxgVoG9s", want, sizeof(want));
	assert_int_equal(n, 32);
	assert_int_equal(g.public_key_len, 32);
	assert_memory_equal(g.public_key, want, 32);
	cvm_getkey_cleanup(&g);
	cvm_appkeys_free(k);
}

/* ---- GetKey, guest API v1 ------------------------------------------------------ */

/* v1_vectors loads compat/guest-api-v1/inline-vectors.json (docs/guest-api-v1.md
 * of Dstack-TEE/dstack, transcribed; tests/vectors/SOURCES.md). */
static json_t *v1_vectors(void)
{
	json_error_t jerr;
	size_t len = 0;
	uint8_t *raw = vector_read("compat/guest-api-v1/inline-vectors.json", &len);
	json_t *v = json_loadb((const char *)raw, len, 0, &jerr);

	free(raw);
	assert_non_null(v);
	return v;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	assert_non_null(s);
	return s;
}

static void v1_getkey_reproduces_every_published_vector(void **state)
{
	json_t *v = v1_vectors(), *keys = json_object_get(v, "keys"), *e;
	struct cvm_appkeys *k = keys_with(jstr(v, "app_root_key_hex"), NULL);
	bool seen_empty = false, seen_nul = false, seen_alg[3] = {false, false, false};
	size_t i;

	(void)state;
	assert_int_equal(json_array_size(keys), 6);
	json_array_foreach(keys, i, e)
	{
		const char *dhex = jstr(e, "domain_hex"), *alg_name = jstr(e, "algorithm");
		size_t dlen = strlen(dhex) / 2;
		char domain[64];
		uint8_t raw[32];
		enum cvm_key_alg alg;
		struct cvm_getkey g;

		assert_true(dlen <= sizeof(domain));
		unhex(dhex, (uint8_t *)domain, dlen);
		seen_empty |= dlen == 0;
		seen_nul |= memchr(domain, 0, dlen) != NULL;
		assert_int_equal(cvm_key_alg_parse_v1(alg_name, strlen(alg_name), &alg), CVM_OK);
		seen_alg[alg] = true;
		/* the bare derivation and the full GetKey agree with the document */
		assert_int_equal(cvm_kdf_v1_derive(k->k256_key->p, domain, dlen, alg, raw), CVM_OK);
		assert_hex(raw, 32, jstr(e, "private_key_hex"));
		assert_int_equal(cvm_kdf_v1_get_key(k, domain, dlen, alg, &g), CVM_OK);
		assert_hex(g.key->p, g.key->len, jstr(e, "private_key_hex"));
		assert_hex(g.public_key, g.public_key_len, jstr(e, "public_key_hex"));
		assert_int_equal(g.public_key_len, alg == CVM_KEY_ALG_SECP256K1 ? 33 : 32);
		assert_int_equal(g.chain1_len, 0);
		cvm_getkey_cleanup(&g);
		cvm_wipe(raw, sizeof(raw));
	}
	/* the set covers what the brief names: both curves, "", a NUL byte */
	assert_true(seen_empty && seen_nul && seen_alg[CVM_KEY_ALG_SECP256K1] &&
	            seen_alg[CVM_KEY_ALG_ED25519]);
	cvm_appkeys_free(k);
	json_decref(v);
}

static void v1_chain_link0_reproduces_the_published_signature(void **state)
{
	json_t *v = v1_vectors(), *l0 = json_object_get(v, "chain_link0");
	struct cvm_appkeys *k;
	const char *domain = jstr(l0, "domain");
	uint8_t root_pub[33], app_pub[33], kms_sk[32], kms_pub[33], app_id[20], sig[65];
	struct cvm_getkey g;

	(void)state;
	assert_string_equal(jstr(l0, "algorithm"), "secp256k1");
	/* a KMS link, so that link 1 is passed through and checked too */
	memset(kms_sk, 0x42, sizeof(kms_sk));
	memset(app_id, 0xa5, sizeof(app_id));
	assert_int_equal(cvm_k256_pubkey(kms_sk, kms_pub), CVM_OK);
	k = keys_with(jstr(v, "app_root_key_hex"), NULL);
	assert_int_equal(cvm_k256_pubkey(k->k256_key->p, root_pub), CVM_OK);
	assert_int_equal(cvm_kdf_k256_issue(kms_sk, app_id, root_pub, sig), CVM_OK);
	memcpy(k->k256_signature, sig, 65);
	k->k256_signature_len = 65;

	assert_int_equal(cvm_kdf_v1_get_key(k, domain, strlen(domain), CVM_KEY_ALG_SECP256K1, &g), CVM_OK);
	assert_hex(g.public_key, g.public_key_len, jstr(l0, "public_key_hex"));
	assert_hex(g.chain0, 65, jstr(l0, "link0_hex"));
	assert_int_equal(g.chain1_len, 65);
	assert_memory_equal(g.chain1, sig, 65);
	/* a relying party's steps recover the root key and accept the KMS link */
	assert_int_equal(cvm_kdf_v1_chain_verify(CVM_KEY_ALG_SECP256K1, domain, strlen(domain), g.public_key,
	                                         g.public_key_len, g.chain0, g.chain1, app_id, kms_pub,
	                                         app_pub),
	                 CVM_OK);
	assert_memory_equal(app_pub, root_pub, 33);
	/* the claim binds the domain and the algorithm: another one recovers another key */
	assert_int_equal(cvm_kdf_v1_chain_verify(CVM_KEY_ALG_SECP256K1, "storage", 7, g.public_key,
	                                         g.public_key_len, g.chain0, NULL, NULL, NULL, app_pub),
	                 CVM_OK);
	assert_memory_not_equal(app_pub, root_pub, 33);
	assert_int_equal(cvm_kdf_v1_chain_verify(CVM_KEY_ALG_ED25519, domain, strlen(domain), g.public_key,
	                                         g.public_key_len, g.chain0, NULL, NULL, NULL, app_pub),
	                 CVM_OK);
	assert_memory_not_equal(app_pub, root_pub, 33);
	/* the same signature with S replaced by n - S (and the recovery id's
	 * parity flipped) is the malleable twin: refused, not recovered */
	{
		static const uint8_t n[32] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		                              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		                              0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b,
		                              0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41};
		uint8_t twin[65];
		unsigned borrow = 0;

		memcpy(twin, g.chain0, 65);
		for (size_t i = 32; i-- > 0;) {
			unsigned d = (unsigned)n[i] - g.chain0[32 + i] - borrow;

			twin[32 + i] = (uint8_t)d;
			borrow = (d >> 8) & 1u;
		}
		twin[64] ^= 1;
		assert_int_not_equal(cvm_kdf_v1_chain_verify(CVM_KEY_ALG_SECP256K1, domain, strlen(domain),
		                                             g.public_key, g.public_key_len, twin, NULL, NULL,
		                                             NULL, app_pub),
		                     CVM_OK);
	}
	/* and a KMS link for another app id is refused */
	app_id[0] ^= 1;
	assert_int_equal(cvm_kdf_v1_chain_verify(CVM_KEY_ALG_SECP256K1, domain, strlen(domain), g.public_key,
	                                         g.public_key_len, g.chain0, g.chain1, app_id, kms_pub,
	                                         app_pub),
	                 CVM_E_SIGNATURE);
	cvm_getkey_cleanup(&g);
	cvm_appkeys_free(k);
	json_decref(v);
}

static void v1_claim_is_the_length_prefixed_encoding(void **state)
{
	/* docs/guest-api-v1.md's worked claim, built by hand */
	static const char tag[] = "dstack-guest-v1-key-claim";
	uint8_t pub[33], want[32], got[32];
	struct cvm_keccak256_ctx kc;

	(void)state;
	unhex("03d962450a41748021c8b02787ac36ce642ff0ae25f4c55019eb527e1112cfd764", pub, 33);
	cvm_keccak256_init(&kc);
	cvm_keccak256_update(&kc, "\x00\x00\x00\x19", 4);
	cvm_keccak256_update(&kc, tag, 25);
	cvm_keccak256_update(&kc, "\x00\x00\x00\x09secp256k1", 13);
	cvm_keccak256_update(&kc, "\x00\x00\x00\x12storage-encryption", 22);
	cvm_keccak256_update(&kc, "\x00\x00\x00\x21", 4);
	cvm_keccak256_update(&kc, pub, 33);
	cvm_keccak256_final(&kc, want);
	assert_int_equal(
	    cvm_kdf_v1_claim_digest(CVM_KEY_ALG_SECP256K1, "storage-encryption", 18, pub, 33, got), CVM_OK);
	assert_memory_equal(got, want, 32);
	/* refused inputs */
	assert_int_equal(cvm_kdf_v1_claim_digest(0, "", 0, pub, 33, got), CVM_E_INVAL);
	assert_int_equal(cvm_kdf_v1_claim_digest(CVM_KEY_ALG_SECP256K1, NULL, 1, pub, 33, got), CVM_E_INVAL);
	assert_int_equal(cvm_kdf_v1_claim_digest(CVM_KEY_ALG_SECP256K1, "", 0, pub, 0, got), CVM_E_INVAL);
}

static void v1_keys_separate_curves_and_never_meet_v0_keys(void **state)
{
	static const char *const domains[] = {"", "storage-encryption", "vms", "a\0b", "a"};
	static const size_t lens[] = {0, 18, 3, 3, 1};
	struct cvm_appkeys *k = keys_with(VMS_APP_KEY, NULL);
	uint8_t k1[32], ed[32], v0[32], other[32];

	(void)state;
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		struct cvm_wr w;
		uint8_t info[64];
		size_t info_len = 0;

		assert_int_equal(
		    cvm_kdf_v1_derive(k->k256_key->p, domains[i], lens[i], CVM_KEY_ALG_SECP256K1, k1),
		    CVM_OK);
		assert_int_equal(
		    cvm_kdf_v1_derive(k->k256_key->p, domains[i], lens[i], CVM_KEY_ALG_ED25519, ed), CVM_OK);
		/* the v0 pitfall (one secret for both curves) does not exist in v1 */
		assert_memory_not_equal(k1, ed, 32);
		/* v0 with the same name, or even with the whole v1 info as its path, differs (own salt) */
		assert_int_equal(
		    cvm_kdf_derive(k->k256_key->p, 32, (const uint8_t *)domains[i], lens[i], v0, 32), CVM_OK);
		assert_memory_not_equal(k1, v0, 32);
		assert_memory_not_equal(ed, v0, 32);
		cvm_wr_init_fixed(&w, info, sizeof(info));
		cvm_wr_u32be(&w, 19);
		cvm_wr_bytes(&w, "dstack-guest-v1-key", 19);
		cvm_wr_u32be(&w, 9);
		cvm_wr_bytes(&w, "secp256k1", 9);
		cvm_wr_u32be(&w, (uint32_t)lens[i]);
		cvm_wr_bytes(&w, domains[i], lens[i]);
		info_len = w.len;
		assert_false(w.err);
		assert_int_equal(cvm_kdf_derive(k->k256_key->p, 32, info, info_len, v0, 32), CVM_OK);
		assert_memory_not_equal(k1, v0, 32);
	}
	/* "a\0b" and "a" are different domains (no C-string truncation) */
	assert_int_equal(cvm_kdf_v1_derive(k->k256_key->p, "a\0b", 3, CVM_KEY_ALG_ED25519, ed), CVM_OK);
	assert_int_equal(cvm_kdf_v1_derive(k->k256_key->p, "a", 1, CVM_KEY_ALG_ED25519, other), CVM_OK);
	assert_memory_not_equal(ed, other, 32);
	cvm_wipe(k1, 32);
	cvm_wipe(ed, 32);
	cvm_appkeys_free(k);
}

static void v1_algorithm_names_have_no_default_and_no_alias(void **state)
{
	struct cvm_appkeys *k = keys_with(VMS_APP_KEY, NULL);
	enum cvm_key_alg alg;
	struct cvm_getkey g;
	char *big;

	(void)state;
	assert_int_equal(cvm_key_alg_parse_v1("secp256k1", 9, &alg), CVM_OK);
	assert_int_equal(alg, CVM_KEY_ALG_SECP256K1);
	assert_int_equal(cvm_key_alg_parse_v1("ed25519", 7, &alg), CVM_OK);
	assert_int_equal(alg, CVM_KEY_ALG_ED25519);
	assert_int_equal(cvm_key_alg_parse_v1("", 0, &alg), CVM_E_INVAL);
	assert_int_equal(cvm_key_alg_parse_v1("k256", 4, &alg), CVM_E_UNSUPPORTED);
	assert_int_equal(cvm_key_alg_parse_v1("secp256k1_prehashed", 19, &alg), CVM_E_UNSUPPORTED);
	assert_int_equal(cvm_key_alg_parse_v1("Ed25519", 7, &alg), CVM_E_UNSUPPORTED);
	assert_int_equal(cvm_key_alg_parse_v1("secp256k1\0", 10, &alg), CVM_E_UNSUPPORTED);
	assert_int_equal(alg, 0);
	/* bad arguments and an oversized domain */
	assert_int_equal(cvm_kdf_v1_get_key(NULL, "", 0, CVM_KEY_ALG_ED25519, &g), CVM_E_INVAL);
	assert_int_equal(cvm_kdf_v1_get_key(k, NULL, 2, CVM_KEY_ALG_ED25519, &g), CVM_E_INVAL);
	assert_int_equal(cvm_kdf_v1_get_key(k, "", 0, 7, &g), CVM_E_INVAL);
	big = calloc(1, CVM_KDF_V1_DOMAIN_MAX + 1);
	assert_non_null(big);
	assert_int_equal(cvm_kdf_v1_get_key(k, big, CVM_KDF_V1_DOMAIN_MAX + 1, CVM_KEY_ALG_ED25519, &g),
	                 CVM_E_TOO_LARGE);
	assert_null(g.key);
	assert_int_equal(cvm_kdf_v1_get_key(k, big, CVM_KDF_V1_DOMAIN_MAX, CVM_KEY_ALG_ED25519, &g), CVM_OK);
	cvm_getkey_cleanup(&g);
	free(big);
	cvm_appkeys_free(k);
}

static void dip1_report_data_matches_the_upstream_vectors(void **state)
{
	static const char k1[] = "dip1::secp256k1c-pk:A6t_JdVkVdMAocH3f1f20WGT6JzdntxcXimUtEax8zc9";
	static const char ed[] = "dip1::ed25519-pk:5Pbre1Amf1hrp2V2bbfKlIfxpQb2pJAmrgmhxgVoG9s\0\0\0";
	struct cvm_appkeys *k = keys_with(VMS_APP_KEY, NULL);
	uint8_t rd[64];

	(void)state;
	assert_int_equal(cvm_kdf_dip1_report_data(k, CVM_KEY_ALG_SECP256K1, rd), CVM_OK);
	assert_int_equal(sizeof(k1) - 1, 64);
	assert_memory_equal(rd, k1, 64);
	assert_int_equal(cvm_kdf_dip1_report_data(k, CVM_KEY_ALG_ED25519, rd), CVM_OK);
	assert_memory_equal(rd, ed, 64); /* 60 characters, then 4 zero bytes */
	cvm_appkeys_free(k);
}

static void getkey_reproduces_the_simulator_vectors(void **state)
{
	struct cvm_appkeys *k = keys_with(SIM_APP_KEY, NULL);
	struct cvm_getkey g;
	uint8_t app_pub[33], rec[33];

	(void)state;
	assert_int_equal(cvm_k256_pubkey(k->k256_key->p, app_pub), CVM_OK);
	/* spec §11 */
	assert_int_equal(cvm_kdf_get_key(k, "/", 1, "", 0, CVM_KEY_ALG_SECP256K1, 0, &g), CVM_OK);
	assert_hex(g.key->p, 32, "f6c1ed94488394d78e0a4e5ab75d62e9f085d73b0b555d0614fb90ca13d9464d");
	assert_hex(g.public_key, 33, "026b694842460eff475d4e4b36a908c4ca05db27fe54bd7fb5db31c367a52ef211");
	/* chain[0]: RFC 6979, so equal to an independent signer's bytes */
	assert_hex(
	    g.chain0, 65,
	    "8e153f3e5d4e3088d5262b678539982fbca279544aaada030aaad07af77b31505d094508161e3dd55feafe648eb4f718"
	    "ab06169d9704faf8baee339b3f50310900");
	assert_int_equal(cvm_kdf_chain_verify("", 0, g.public_key, 33, g.chain0, NULL, NULL, NULL, rec),
	                 CVM_OK);
	assert_memory_equal(rec, app_pub, 33);
	/* another purpose signs another message: the chain no longer recovers the app key */
	assert_int_equal(cvm_kdf_chain_verify("x", 1, g.public_key, 33, g.chain0, NULL, NULL, NULL, rec),
	                 CVM_OK);
	assert_memory_not_equal(rec, app_pub, 33);
	cvm_getkey_cleanup(&g);
	assert_int_equal(cvm_kdf_get_key(k, "test", 4, "signing", 7, CVM_KEY_ALG_SECP256K1, 0, &g), CVM_OK);
	assert_hex(g.key->p, 32, "133e8ca6e532ead3e38f00347408771da296e9c70e8e3e362f485154e64ef4e8");
	assert_hex(
	    g.chain0, 65,
	    "c2ac442934a10d730c14b553e6b93e4db61aa7afa48b7aa51e649841115d6f4160a29b24a87e0ef4c02e37c10b176913"
	    "f1449ebb41466fccdc44a6ef5d9b247300");
	cvm_getkey_cleanup(&g);
	/* ed25519 chain message uses the raw 32-byte key */
	assert_int_equal(cvm_kdf_get_key(k, "vms", 3, "signing", 7, CVM_KEY_ALG_ED25519, 0, &g), CVM_OK);
	assert_hex(g.public_key, 32, "698f56bd587d8ce3ca8db0e1c361ba9d190089f98dc4d9df800ff92ed073a65d");
	assert_hex(
	    g.chain0, 65,
	    "d61ff204728dae76ba4e29313003433d533d069f9c98ebb3382104145f1c664c59fac4326a86420ec3f450303d3a675d"
	    "595f546448076a464343bcc25143c4a300");
	cvm_getkey_cleanup(&g);
	cvm_appkeys_free(k);
}

static void getkey_reuses_one_key_across_curves_unless_separated(void **state)
{
	struct cvm_appkeys *k = keys_with(SIM_APP_KEY, NULL);
	struct cvm_getkey s, e, s2, e2;

	(void)state;
	/* THE PITFALL (dstack-compatible default): the secp256k1 scalar and the
	 * Ed25519 seed of one path are the same 32 bytes. */
	assert_int_equal(cvm_kdf_get_key(k, "vms", 3, "", 0, CVM_KEY_ALG_SECP256K1, 0, &s), CVM_OK);
	assert_int_equal(cvm_kdf_get_key(k, "vms", 3, "", 0, CVM_KEY_ALG_ED25519, 0, &e), CVM_OK);
	assert_memory_equal(s.key->p, e.key->p, 32);
	assert_hex(s.key->p, 32, "1091a4d6721f6a719ca57320e4975f7e237649131111ee1c5032f661dc1cfef2");
	/* the opt-in separation gives each curve its own key, unlike dstack's */
	assert_int_equal(
	    cvm_kdf_get_key(k, "vms", 3, "", 0, CVM_KEY_ALG_SECP256K1, CVM_GETKEY_SEPARATE_CURVES, &s2),
	    CVM_OK);
	assert_int_equal(
	    cvm_kdf_get_key(k, "vms", 3, "", 0, CVM_KEY_ALG_ED25519, CVM_GETKEY_SEPARATE_CURVES, &e2),
	    CVM_OK);
	assert_memory_not_equal(s2.key->p, e2.key->p, 32);
	assert_memory_not_equal(s2.key->p, s.key->p, 32);
	assert_memory_not_equal(e2.key->p, e.key->p, 32);
	/* pinned: info = ff "cvmkit-getkey-v1" 00 alg 00 path (computed independently) */
	assert_hex(s2.key->p, 32, "dee1fc9b63ab690409c4b4e94a84d1aaa204735ef6165f1f931e2cabcad004ae");
	assert_hex(e2.key->p, 32, "474d06e6b0bb6530d6345e26eb2186d0d0286d3750ee1877d2d5d649445762e2");
	cvm_getkey_cleanup(&s);
	cvm_getkey_cleanup(&e);
	cvm_getkey_cleanup(&s2);
	cvm_getkey_cleanup(&e2);
	cvm_appkeys_free(k);
}

static void getkey_algorithm_names_and_arguments(void **state)
{
	static const char *const k1_names[] = {"", "secp256k1", "k256"};
	static const char *const bad[] = {"secp256k1_prehashed", "Ed25519", "SECP256K1", "rsa", "ed25519 "};
	struct cvm_appkeys *k = keys_with(SIM_APP_KEY, NULL);
	enum cvm_key_alg alg;
	struct cvm_getkey a, b;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(cvm_key_alg_parse(k1_names[i], strlen(k1_names[i]), &alg), CVM_OK);
		assert_int_equal(alg, CVM_KEY_ALG_SECP256K1);
	}
	assert_int_equal(cvm_key_alg_parse("ed25519", 7, &alg), CVM_OK);
	assert_int_equal(alg, CVM_KEY_ALG_ED25519);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(cvm_key_alg_parse(bad[i], strlen(bad[i]), &alg), CVM_E_UNSUPPORTED);
	assert_string_equal(cvm_key_alg_name(CVM_KEY_ALG_ED25519), "ed25519");
	assert_null(cvm_key_alg_name((enum cvm_key_alg)7));
	/* a NUL inside a path is a byte like any other */
	assert_int_equal(cvm_kdf_get_key(k, "a\0b", 3, "", 0, CVM_KEY_ALG_SECP256K1, 0, &a), CVM_OK);
	assert_int_equal(cvm_kdf_get_key(k, "a", 1, "", 0, CVM_KEY_ALG_SECP256K1, 0, &b), CVM_OK);
	assert_memory_not_equal(a.key->p, b.key->p, 32);
	cvm_getkey_cleanup(&a);
	cvm_getkey_cleanup(&b);
	/* bad arguments */
	assert_int_equal(cvm_kdf_get_key(NULL, "a", 1, "", 0, CVM_KEY_ALG_SECP256K1, 0, &a), CVM_E_INVAL);
	assert_null(a.key);
	assert_int_equal(cvm_kdf_get_key(k, NULL, 1, "", 0, CVM_KEY_ALG_SECP256K1, 0, &a), CVM_E_INVAL);
	assert_int_equal(cvm_kdf_get_key(k, "a", 1, NULL, 2, CVM_KEY_ALG_SECP256K1, 0, &a), CVM_E_INVAL);
	assert_int_equal(cvm_kdf_get_key(k, "a", 1, "", 0, CVM_KEY_ALG_SECP256K1, 0x80, &a), CVM_E_INVAL);
	assert_int_equal(cvm_kdf_get_key(k, "a", 1, "", 0, (enum cvm_key_alg)9, 0, &a), CVM_E_INVAL);
	/* an app key that is not a scalar is caught by the parser; here by GetKey */
	memset(k->k256_key->p, 0, 32);
	assert_int_equal(cvm_kdf_get_key(k, "a", 1, "", 0, CVM_KEY_ALG_SECP256K1, 0, &a), CVM_E_FORMAT);
	assert_null(a.key);
	cvm_getkey_cleanup(&a);
	cvm_appkeys_free(k);
}

/* ---- KMS side and full chains ------------------------------------------------------------ */

static void kms_app_key_issuance_and_chain_match_independent_values(void **state)
{
	uint8_t root[32], app_id[20], app_pub[33], kms_pub[33], sig[65], rec[33];
	struct cvm_secret *app = NULL;
	struct cvm_appkeys *k;
	struct cvm_getkey g;
	char hex[65];

	(void)state;
	for (size_t i = 0; i < 32; i++)
		root[i] = (uint8_t)(i + 1);
	unhex(SIM_APP_ID, app_id, 20);
	assert_int_equal(cvm_k256_pubkey(root, kms_pub), CVM_OK);
	assert_hex(kms_pub, 33, "0284bf7562262bbd6940085748f3be6afa52ae317155181ece31b66351ccffa4b0");
	assert_int_equal(cvm_kdf_app_k256_key(root, app_id, &app), CVM_OK);
	assert_hex(app->p, 32, "2bb47ea2f92feae0e3c700d9332d5a4c4bb886f2d5d693198653931b19b310aa");
	assert_int_equal(cvm_k256_pubkey(app->p, app_pub), CVM_OK);
	assert_hex(app_pub, 33, "036ed0aeb938a928b823a68afc1d366894cf5398ccc5cad137e73ff0e5cc501416");
	assert_int_equal(cvm_kdf_k256_issue(root, app_id, app_pub, sig), CVM_OK);
	assert_hex(
	    sig, 65,
	    "ac1faee283f6c59ad2f38f0ced98c74f3db32f6a7b2696f50f83a526d5bdf9a173991ea4de557b8a53ec5f6400b26a97"
	    "4f1dead4497c1bc1f01f855300ed28f901");
	assert_int_equal(cvm_kdf_k256_check_issued(kms_pub, app_id, app_pub, sig), CVM_OK);
	app_id[0] ^= 1;
	assert_int_equal(cvm_kdf_k256_check_issued(kms_pub, app_id, app_pub, sig), CVM_E_SIGNATURE);
	app_id[0] ^= 1;

	/* the full chain of a GetKey answer, as dstack's README checks it */
	cvm_hex_encode(app->p, 32, hex);
	k = keys_with(hex, sig);
	assert_int_equal(cvm_kdf_get_key(k, "wallet/eth", 10, "ethereum", 8, CVM_KEY_ALG_SECP256K1, 0, &g),
	                 CVM_OK);
	assert_hex(g.key->p, 32, "1ae167303f19be1a39106fdcb6f1361a8bda98569a92e32414e44ef760f29a5c");
	assert_hex(g.public_key, 33, "02f44bf36805cb92ea32b0b1aee344236a2790bb87612be727af0bd52ac68a355a");
	assert_hex(
	    g.chain0, 65,
	    "9225c2f0b16524030c1186aa59354fc2ea3694745db2256d3b242580e60235772b59351ae277da11b3a45829119e8e9f"
	    "2cb8f5377b5968dffb5249735baec3f300");
	assert_int_equal(g.chain1_len, 65);
	assert_memory_equal(g.chain1, sig, 65);
	assert_int_equal(
	    cvm_kdf_chain_verify("ethereum", 8, g.public_key, 33, g.chain0, g.chain1, app_id, kms_pub, rec),
	    CVM_OK);
	assert_memory_equal(rec, app_pub, 33);
	/* wrong purpose, wrong app id, wrong KMS key: each breaks the chain */
	assert_int_equal(
	    cvm_kdf_chain_verify("ethereun", 8, g.public_key, 33, g.chain0, g.chain1, app_id, kms_pub, rec),
	    CVM_E_SIGNATURE);
	app_id[19] ^= 0x80;
	assert_int_equal(
	    cvm_kdf_chain_verify("ethereum", 8, g.public_key, 33, g.chain0, g.chain1, app_id, kms_pub, rec),
	    CVM_E_SIGNATURE);
	app_id[19] ^= 0x80;
	assert_int_equal(
	    cvm_kdf_chain_verify("ethereum", 8, g.public_key, 33, g.chain0, g.chain1, app_id, app_pub, rec),
	    CVM_E_SIGNATURE);
	assert_int_equal(
	    cvm_kdf_chain_verify("ethereum", 8, g.public_key, 33, g.chain0, g.chain1, NULL, kms_pub, rec),
	    CVM_E_INVAL);
	cvm_getkey_cleanup(&g);
	cvm_appkeys_free(k);
	cvm_secret_free(app);
}

static void dh_secret_and_kms_keys_match_dstack(void **state)
{
	uint8_t sk[32], out[32], app_id[20], inst[20], pub[32];
	static const char info[] = "context onecontext two";
	struct cvm_p256_keypair *kp = NULL;
	uint8_t der[138];

	(void)state;
	/* spec §3.2: dstack/ra-tls/src/kdf.rs test_derive_dh_secret_stable_output */
	unhex(DH_ROOT_SK, sk, 32);
	assert_int_equal(cvm_kdf_dh_secret(sk, 32, (const uint8_t *)info, sizeof(info) - 1, out), CVM_OK);
	assert_hex(out, 32, "663afd58820be8ad645f9c035e93199d114ab16f738db62393bc1d7d623e8813");
	/* the derived key's PKCS#8 has the canonical 138-byte shape */
	assert_int_equal(cvm_kdf_derive_p256(sk, 32, (const uint8_t *)info, sizeof(info) - 1, &kp), CVM_OK);
	cvm_p256_keypair_pkcs8(kp, der);
	assert_memory_equal(der, "\x30\x81\x87\x02\x01\x00\x30\x13", 8);
	assert_memory_equal(der + 68, "\xa1\x44\x03\x42\x00\x04", 6);
	cvm_p256_keypair_free(kp);
	/* disk and env keys for the simulator's ids (Python cryptography) */
	unhex(SIM_APP_ID, app_id, 20);
	unhex(SIM_INSTANCE_ID, inst, 20);
	assert_int_equal(cvm_kdf_disk_crypt_key(sk, app_id, inst, out), CVM_OK);
	assert_hex(out, 32, "f6fe5ab7893178666e7489553ac4ad84f416278cbec0c3aa3d4bebc0db8e8558");
	assert_int_equal(cvm_kdf_env_crypt_key(sk, app_id, out), CVM_OK);
	assert_hex(out, 32, "9076d1704969285e45b388ef690eb02b00e0136271d687a4a1ea2ead67c33f5d");
	assert_int_equal(cvm_x25519_pubkey(out, pub), CVM_OK);
	assert_hex(pub, 32, "4a4d30b8973c08c75b404d5d2f433aaa3baaee0d85389fbd2ce29d09c28a0019");
}

/* ---- Sign, Verify, TLS keys ----------------------------------------------------------------- */

static void sign_matches_independent_signatures_and_chains(void **state)
{
	uint8_t sig65[65], digest[32];
	struct cvm_appkeys *k;
	struct cvm_sign_result s;
	struct cvm_getkey g;
	unsigned n = 0;

	(void)state;
	memset(sig65, 0x11, 64);
	sig65[64] = 1;
	k = keys_with(SIM_APP_KEY, sig65);
	assert_int_equal(cvm_kdf_sign(k, CVM_SIGN_SECP256K1, (const uint8_t *)"hello", 5, 0, &s), CVM_OK);
	assert_hex(
	    s.signature, 64,
	    "4c5f038f26c2294e6647926a2f93d9c377d82feb4a053ff0ad856b59c428d49a73d86c665ac0f10d9218e79bf1bdd035"
	    "d145ccf43c3f2d76a27ce3d877c3b1fe");
	assert_hex(s.public_key, s.public_key_len,
	           "036105f01d1fd781568f7c208b087b1c4f522601410ed7e9c7870d573de7c46d54");
	/* chain = [signature, GetKey("vms","signing").chain0, k256_signature] */
	assert_int_equal(cvm_kdf_get_key(k, "vms", 3, "signing", 7, CVM_KEY_ALG_SECP256K1, 0, &g), CVM_OK);
	assert_memory_equal(s.chain0, g.chain0, 65);
	cvm_getkey_cleanup(&g);
	assert_int_equal(s.chain1_len, 65);
	assert_memory_equal(s.chain1, sig65, 65);
	assert_int_equal(cvm_kdf_verify(CVM_SIGN_SECP256K1, (const uint8_t *)"hello", 5, s.signature, 64,
	                                s.public_key, s.public_key_len),
	                 CVM_OK);
	assert_int_equal(cvm_kdf_verify(CVM_SIGN_SECP256K1, (const uint8_t *)"hellp", 5, s.signature, 64,
	                                s.public_key, s.public_key_len),
	                 CVM_E_SIGNATURE);

	assert_int_equal(cvm_kdf_sign(k, CVM_SIGN_ED25519, (const uint8_t *)"hello", 5, 0, &s), CVM_OK);
	assert_hex(
	    s.signature, 64,
	    "ea96b5ca601a622062db4f06159fb33247e6393a64ecc1f576d92b18084f77872bba9c8787269b26ee545e251e08dd6f"
	    "212ebf630e86b854b906ed945ec6a907");
	assert_hex(s.public_key, s.public_key_len,
	           "698f56bd587d8ce3ca8db0e1c361ba9d190089f98dc4d9df800ff92ed073a65d");
	assert_int_equal(
	    cvm_kdf_verify(CVM_SIGN_ED25519, (const uint8_t *)"hello", 5, s.signature, 64, s.public_key, 32),
	    CVM_OK);
	assert_int_equal(
	    cvm_kdf_verify(CVM_SIGN_ED25519, (const uint8_t *)"hello", 4, s.signature, 64, s.public_key, 32),
	    CVM_E_SIGNATURE);
	assert_int_equal(
	    cvm_kdf_verify(CVM_SIGN_ED25519, (const uint8_t *)"hello", 5, s.signature, 64, s.public_key, 33),
	    CVM_E_FORMAT);
	assert_int_equal(
	    cvm_kdf_verify(CVM_SIGN_ED25519, (const uint8_t *)"hello", 5, s.signature, 63, s.public_key, 32),
	    CVM_E_FORMAT);

	assert_int_equal(EVP_Digest("prehashed", 9, digest, &n, EVP_sha256(), NULL), 1);
	assert_int_equal(cvm_kdf_sign(k, CVM_SIGN_SECP256K1_PREHASHED, digest, 32, 0, &s), CVM_OK);
	assert_hex(
	    s.signature, 64,
	    "85b64053807417380878746359a543ac7bed6994c858887d7cf54f04842e547b269b59d15648bb9631ad476d3bd57fa9"
	    "c812d18a00d2b785a61f9ee3a0471cfd");
	/* prehashed(sha256(m)) is the same signature as secp256k1(m) */
	assert_int_equal(cvm_kdf_verify(CVM_SIGN_SECP256K1, (const uint8_t *)"prehashed", 9, s.signature, 64,
	                                s.public_key, 33),
	                 CVM_OK);
	assert_int_equal(
	    cvm_kdf_verify(CVM_SIGN_SECP256K1_PREHASHED, digest, 32, s.signature, 64, s.public_key, 33),
	    CVM_OK);
	assert_int_equal(
	    cvm_kdf_verify(CVM_SIGN_SECP256K1_PREHASHED, digest, 31, s.signature, 64, s.public_key, 33),
	    CVM_E_FORMAT);
	assert_int_equal(cvm_kdf_sign(k, CVM_SIGN_SECP256K1_PREHASHED, digest, 31, 0, &s), CVM_E_INVAL);
	assert_int_equal(cvm_kdf_sign(k, CVM_SIGN_SECP256K1_PREHASHED, digest, 33, 0, &s), CVM_E_INVAL);
	assert_int_equal(
	    cvm_kdf_verify(CVM_SIGN_SECP256K1, digest, 32, digest, 64, (const uint8_t *)"\x05", 1),
	    CVM_E_FORMAT);
	cvm_appkeys_free(k);
}

static void sign_algorithm_names(void **state)
{
	static const struct {
		const char *name;
		int r;
		enum cvm_sign_alg alg;
	} v[] = {
	    {"ed25519", CVM_OK, CVM_SIGN_ED25519},
	    {"secp256k1", CVM_OK, CVM_SIGN_SECP256K1},
	    {"k256", CVM_OK, CVM_SIGN_SECP256K1},
	    {"secp256k1_prehashed", CVM_OK, CVM_SIGN_SECP256K1_PREHASHED},
	    {"", CVM_E_UNSUPPORTED, 0},
	    {"rsa", CVM_E_UNSUPPORTED, 0},
	    {"k256_prehashed", CVM_E_UNSUPPORTED, 0},
	};
	enum cvm_sign_alg alg;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(cvm_sign_alg_parse(v[i].name, strlen(v[i].name), &alg), v[i].r);
		if (v[i].r == CVM_OK)
			assert_int_equal(alg, v[i].alg);
	}
}

static void tls_keys_are_fresh_p256_keys(void **state)
{
	struct cvm_p256_keypair *a = NULL, *b = NULL, *c = NULL;
	uint8_t da[138], db[138], seed[32], xy[64];
	struct cvm_secret *pem = NULL;

	(void)state;
	assert_int_equal(cvm_kdf_tls_key_new(&a), CVM_OK);
	assert_int_equal(cvm_kdf_tls_key_new(&b), CVM_OK);
	cvm_p256_keypair_pkcs8(a, da);
	cvm_p256_keypair_pkcs8(b, db);
	assert_memory_not_equal(da + 36, db + 36, 32);
	/* GetTlsKey's derivation from a known seed (computed independently) */
	memset(seed, 0x42, sizeof(seed));
	assert_int_equal(cvm_kdf_derive_p256(seed, 32, NULL, 0, &c), CVM_OK);
	cvm_p256_keypair_pkcs8(c, da);
	assert_hex(da + 36, 32, "250bbf5e9297f9211f25579432389a3e6a84c69106fb9b3269574a8771fb71e1");
	cvm_p256_keypair_public(c, xy);
	assert_hex(
	    xy, 64,
	    "ed2c98105a8b2aa983b6a3dd8bf221df78912abbfb46e21ca2c737175c17585833cfe5174bb851b39c46c78786ccf34b"
	    "30da0aa0bea9141f05b094b8759c6b6e");
	/* the SDK reads at least 33 bytes of DER out of the PEM */
	assert_int_equal(cvm_p256_keypair_pkcs8_pem(a, &pem), CVM_OK);
	assert_memory_equal(pem->p, "-----BEGIN PRIVATE KEY-----\n", 28);
	cvm_secret_free(pem);
	cvm_p256_keypair_free(a);
	cvm_p256_keypair_free(b);
	cvm_p256_keypair_free(c);
}

/* ---- certificates -------------------------------------------------------------------------- */

static X509 *x509_of(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	assert_non_null(x);
	return x;
}

static void certificates_chain_and_carry_their_names(void **state)
{
	static const char *const alt[] = {"app.example.com", "127.0.0.1", "::1", "a,b.example"};
	static const uint8_t ext_value[] = {0x04, 0x03, 'a', 'b', 'c'};
	struct cvm_cert_ext_spec ext = {"1.3.6.1.4.1.62397.1.4", false, ext_value, sizeof(ext_value)};
	struct cvm_p256_keypair *ca_key = NULL, *leaf_key = NULL, *other = NULL;
	struct cvm_cert *ca = NULL, *leaf = NULL;
	struct cvm_cert_template t;
	char *ca_pem = NULL, *leaf_pem = NULL, *pem = NULL, name[256];
	size_t len = 0;
	struct cvm_rd rd;
	GENERAL_NAMES *gens;
	X509 *x;
	int ips = 0, dns = 0;

	(void)state;
	assert_int_equal(cvm_p256_keypair_generate(&ca_key), CVM_OK);
	assert_int_equal(cvm_p256_keypair_generate(&leaf_key), CVM_OK);
	assert_int_equal(cvm_p256_keypair_generate(&other), CVM_OK);
	cvm_cert_template_init(&t);
	t.common_name = "Test App CA";
	t.organization = "cvmkit-test";
	t.not_before = 1700000000;
	t.not_after = 4102444800;
	t.is_ca = true;
	t.path_len = 0;
	assert_int_equal(cvm_cert_make(&t, ca_key, NULL, NULL, &ca_pem, &len), CVM_OK);
	assert_int_equal(len, strlen(ca_pem));
	assert_int_equal(cvm_cert_parse((const uint8_t *)ca_pem, len, &ca), CVM_OK);
	assert_true(cvm_cert_is_ca(ca));
	assert_int_equal(cvm_cert_check_issued(ca, ca), CVM_OK);
	assert_int_equal(cvm_cert_not_before(ca), 1700000000);
	assert_int_equal(cvm_cert_not_after(ca), 4102444800);
	cvm_cert_subject(ca, name, sizeof(name));
	assert_non_null(strstr(name, "O = cvmkit-test"));
	assert_non_null(strstr(name, "CN = Test App CA"));

	cvm_cert_template_init(&t);
	t.common_name = "app.example.com";
	t.alt_names = alt;
	t.alt_name_count = sizeof(alt) / sizeof(alt[0]);
	t.not_before = 1700000000;
	t.not_after = 1800000000;
	t.usage_server_auth = true;
	t.usage_client_auth = true;
	t.exts = &ext;
	t.ext_count = 1;
	assert_int_equal(cvm_cert_make(&t, leaf_key, ca_key, ca, &leaf_pem, &len), CVM_OK);
	assert_int_equal(cvm_cert_parse((const uint8_t *)leaf_pem, len, &leaf), CVM_OK);
	assert_false(cvm_cert_is_ca(leaf));
	assert_int_equal(cvm_cert_check_issued(leaf, ca), CVM_OK);
	assert_int_equal(cvm_cert_ext(leaf, "1.3.6.1.4.1.62397.1.4", &rd), CVM_OK);
	assert_int_equal(rd.len, sizeof(ext_value));
	assert_memory_equal(rd.p, ext_value, sizeof(ext_value));
	/* IP literals became IP SANs; a comma stays inside its DNS name */
	x = x509_of(leaf_pem);
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		ips += g->type == GEN_IPADD;
		dns += g->type == GEN_DNS;
	}
	assert_int_equal(ips, 2);
	assert_int_equal(dns, 2);
	GENERAL_NAMES_free(gens);
	assert_int_not_equal(X509_get_extended_key_usage(x) & (XKU_SSL_SERVER | XKU_SSL_CLIENT), 0);
	X509_free(x);

	/* a key that does not belong to the issuer, and bad templates */
	assert_int_equal(cvm_cert_make(&t, leaf_key, other, ca, &pem, &len), CVM_E_INVAL);
	assert_int_equal(cvm_cert_make(&t, leaf_key, ca_key, leaf, &pem, &len), CVM_E_INVAL); /* not a CA */
	assert_int_equal(cvm_cert_make(&t, leaf_key, ca_key, NULL, &pem, &len), CVM_E_INVAL);
	t.not_after = t.not_before;
	assert_int_equal(cvm_cert_make(&t, leaf_key, ca_key, ca, &pem, &len), CVM_E_INVAL);
	t.not_after = 1800000000;
	t.common_name = "";
	assert_int_equal(cvm_cert_make(&t, leaf_key, ca_key, ca, &pem, &len), CVM_E_INVAL);
	t.common_name = "ok";
	t.alt_name_count = CVM_CERT_ALT_NAMES_MAX + 1;
	assert_int_equal(cvm_cert_make(&t, leaf_key, ca_key, ca, &pem, &len), CVM_E_TOO_LARGE);
	assert_null(pem);

	cvm_cert_free(leaf);
	cvm_cert_free(ca);
	free(leaf_pem);
	free(ca_pem);
	cvm_p256_keypair_free(other);
	cvm_p256_keypair_free(leaf_key);
	cvm_p256_keypair_free(ca_key);
}

/* ---- app keys: seed derivation, JSON ------------------------------------------------------------ */

static void appkeys_from_seed_match_independent_values(void **state)
{
	static const char want_pem[] = "-----BEGIN PRIVATE KEY-----\n"
	                               "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgCmrnVCWZO4KKzkkA\n"
	                               "IYCdzaRp1bUxsBiif90ozW2BEV6hRANCAAQgIph1PpHoM0VxDaBm9w8iY+JhCU8n\n"
	                               "HPLwL6UZpT2ld9m2SDVoGG2W5CwjC9CjQNdXsEAZtI+Durj+HtVK6n//\n"
	                               "-----END PRIVATE KEY-----\n";
	struct cvm_appkeys *k = NULL;
	struct cvm_cert *ca = NULL;
	struct cvm_p256_keypair *kp = NULL;
	uint8_t seed[32];
	char name[256];

	(void)state;
	for (size_t i = 0; i < 32; i++)
		seed[i] = (uint8_t)i;
	assert_int_equal(cvm_appkeys_from_seed(seed, sizeof(seed), &k), CVM_OK);
	assert_int_equal(k->key_provider, CVM_KEY_PROVIDER_LOCAL);
	assert_string_equal(cvm_key_provider_name(k->key_provider), "local");
	assert_hex(k->k256_key->p, 32, "091c9c36eb873f1aacde93e91631256e1610ce9940166b45f437d635d76ba95e");
	assert_hex(k->disk_crypt_key->p, 32,
	           "16271dff935a2b916181f4c8a0a6666de98224ba51437c329171a11dd481a09a");
	assert_int_equal(k->env_crypt_key->len, 0);
	assert_int_equal(k->k256_signature_len, 0);
	assert_string_equal(k->gateway_app_id, "");
	assert_int_equal(k->key_provider_key->len, sizeof(want_pem) - 1);
	assert_memory_equal(k->key_provider_key->p, want_pem, sizeof(want_pem) - 1);
	assert_hex(
	    k->key_provider_id, k->key_provider_id_len,
	    "3059301306072a8648ce3d020106082a8648ce3d03010703420004202298753e91e83345710da066f70f2263e261094f"
	    "271cf2f02fa519a53da577d9b6483568186d96e42c230bd0a340d757b04019b48f83bab8fe1ed54aea7fff");
	/* the local CA is self-issued by that key, a CA, and never expires */
	assert_int_equal(cvm_cert_parse((const uint8_t *)k->ca_cert, strlen(k->ca_cert), &ca), CVM_OK);
	assert_true(cvm_cert_is_ca(ca));
	assert_int_equal(cvm_cert_check_issued(ca, ca), CVM_OK);
	assert_int_equal(cvm_cert_not_after(ca), 253402300799);
	cvm_cert_subject(ca, name, sizeof(name));
	assert_non_null(strstr(name, "cvmkit Local App CA"));
	assert_int_equal(
	    cvm_p256_keypair_from_pem((const char *)k->key_provider_key->p, k->key_provider_key->len, &kp),
	    CVM_OK);
	{
		/* the CA certificate's key is the provider key */
		char *leaf = NULL;
		size_t len = 0;
		struct cvm_cert_template t;

		cvm_cert_template_init(&t);
		t.common_name = "x";
		t.not_before = 1800000000;
		t.not_after = 1800000001;
		assert_int_equal(cvm_cert_make(&t, kp, kp, ca, &leaf, &len), CVM_OK);
		free(leaf);
	}
	cvm_p256_keypair_free(kp);
	cvm_cert_free(ca);
	cvm_appkeys_free(k);
	assert_int_equal(cvm_appkeys_from_seed(seed, 15, &k), CVM_E_INVAL);
}

/* appkeys_json makes a valid dstack-shaped document: simulator k256 key,
 * a KMS signature made in the test, our own CA and provider key. */
static char *appkeys_json(size_t *len)
{
	struct cvm_appkeys *k = NULL;
	struct cvm_secret *js = NULL;
	uint8_t seed[32], root[32], app_id[20], pub[33];
	char *out;

	memset(seed, 0x33, sizeof(seed));
	assert_int_equal(cvm_appkeys_from_seed(seed, sizeof(seed), &k), CVM_OK);
	unhex(SIM_APP_KEY, k->k256_key->p, 32);
	memset(root, 0x77, sizeof(root));
	unhex(SIM_APP_ID, app_id, 20);
	assert_int_equal(cvm_k256_pubkey(k->k256_key->p, pub), CVM_OK);
	assert_int_equal(cvm_kdf_k256_issue(root, app_id, pub, k->k256_signature), CVM_OK);
	k->k256_signature_len = 65;
	cvm_secret_free(k->env_crypt_key);
	k->env_crypt_key = cvm_secret_new(32);
	assert_non_null(k->env_crypt_key);
	memset(k->env_crypt_key->p, 0xee, 32);
	free(k->gateway_app_id);
	k->gateway_app_id = strdup("any");
	k->key_provider = CVM_KEY_PROVIDER_NONE;
	assert_int_equal(cvm_appkeys_to_json(k, &js), CVM_OK);
	out = strndup((const char *)js->p, js->len);
	assert_non_null(out);
	*len = js->len;
	cvm_secret_free(js);
	cvm_appkeys_free(k);
	return out;
}

static void appkeys_parse_and_write_round_trip(void **state)
{
	struct cvm_appkeys *k = NULL, *k2 = NULL;
	struct cvm_secret *again = NULL;
	struct cvm_getkey g;
	char err[256];
	size_t len;
	char *json = appkeys_json(&len);

	(void)state;
	assert_non_null(strstr(json, "{\"disk_crypt_key\":\""));
	assert_non_null(strstr(json, "\"key_provider\":{\"None\":{\"key\":\"-----BEGIN PRIVATE KEY-----\\n"));
	assert_int_equal(cvm_appkeys_parse_json(json, len, &k, err, sizeof(err)), CVM_OK);
	assert_string_equal(err, "");
	assert_int_equal(k->key_provider, CVM_KEY_PROVIDER_NONE);
	assert_string_equal(cvm_key_provider_name(k->key_provider), "none");
	assert_string_equal(k->gateway_app_id, "any");
	assert_int_equal(k->env_crypt_key->len, 32);
	assert_int_equal(k->k256_signature_len, 65);
	assert_null(k->key_provider_id);
	/* the parsed key answers GetKey with the §11 vector */
	assert_int_equal(cvm_kdf_get_key(k, "/", 1, "", 0, CVM_KEY_ALG_SECP256K1, 0, &g), CVM_OK);
	assert_hex(g.key->p, 32, "f6c1ed94488394d78e0a4e5ab75d62e9f085d73b0b555d0614fb90ca13d9464d");
	assert_int_equal(g.chain1_len, 65);
	cvm_getkey_cleanup(&g);
	/* writing it back gives the same bytes; so does a pretty-printed copy */
	assert_int_equal(cvm_appkeys_to_json(k, &again), CVM_OK);
	assert_int_equal(again->len, len);
	assert_memory_equal(again->p, json, len);
	cvm_secret_free(again);
	{
		json_t *j = json_loadb(json, len, 0, NULL);
		char *pretty;

		assert_non_null(j);
		pretty = json_dumps(j, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		json_decref(j);
		assert_non_null(pretty);
		assert_int_equal(cvm_appkeys_parse_json(pretty, strlen(pretty), &k2, err, sizeof(err)),
		                 CVM_OK);
		free(pretty);
		assert_memory_equal(k2->k256_key->p, k->k256_key->p, 32);
		assert_string_equal(k2->ca_cert, k->ca_cert);
		cvm_appkeys_free(k2);
		k2 = NULL;
	}
	cvm_appkeys_free(k);
	free(json);
}

/* expect_reject edits one field of the valid document with `patch` (a JSON
 * object merged into the root, or into key_provider.None when `in_none`) or
 * deletes `drop`, then requires error `want` and a message naming `field`. */
static void expect_reject(const char *patch, const char *drop, bool in_none, int want, const char *field)
{
	struct cvm_appkeys *k = NULL;
	json_t *root, *p, *target;
	char err[256], *text;
	size_t len;
	char *json = appkeys_json(&len);
	int r;

	root = json_loadb(json, len, 0, NULL);
	assert_non_null(root);
	target = in_none ? json_object_get(json_object_get(root, "key_provider"), "None") : root;
	assert_non_null(target);
	if (patch != NULL) {
		p = json_loads(patch, 0, NULL);
		assert_non_null(p);
		assert_int_equal(json_object_update(target, p), 0);
		json_decref(p);
	}
	if (drop != NULL)
		assert_int_equal(json_object_del(target, drop), 0);
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	assert_non_null(text);
	memset(err, 'x', sizeof(err));
	r = cvm_appkeys_parse_json(text, strlen(text), &k, err, sizeof(err));
	if (r != want || strstr(err, field) == NULL)
		fail_msg("patch %s drop %s: got %d (%s), want %d naming %s", patch ? patch : "-",
		         drop ? drop : "-", r, err, want, field);
	assert_null(k);
	/* the message never quotes a long hex run (a key) */
	for (size_t i = 0, run = 0; err[i] != '\0'; i++) {
		run = isxdigit((unsigned char)err[i]) ? run + 1 : 0;
		assert_true(run < 16);
	}
	free(text);
	free(json);
}

static void appkeys_parser_names_each_bad_field(void **state)
{
	char json[300];

	(void)state;
	expect_reject("{\"extra\": 1}", NULL, false, CVM_E_FORMAT, "unknown key \"extra\"");
	expect_reject(NULL, "k256_key", false, CVM_E_FORMAT, "k256_key: missing");
	expect_reject(NULL, "disk_crypt_key", false, CVM_E_FORMAT, "disk_crypt_key: missing");
	expect_reject(NULL, "k256_signature", false, CVM_E_FORMAT, "k256_signature: missing");
	expect_reject(NULL, "gateway_app_id", false, CVM_E_FORMAT, "gateway_app_id: missing");
	expect_reject(NULL, "ca_cert", false, CVM_E_FORMAT, "ca_cert: missing");
	expect_reject(NULL, "key_provider", false, CVM_E_FORMAT, "key_provider: missing");
	expect_reject("{\"k256_key\": 5}", NULL, false, CVM_E_FORMAT, "k256_key: expected a string");
	expect_reject("{\"k256_key\": \"0000000000000000000000000000000000000000000000000000000000000000\"}",
	              NULL, false, CVM_E_FORMAT, "k256_key: not a valid secp256k1");
	expect_reject("{\"k256_key\": \"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141\"}",
	              NULL, false, CVM_E_FORMAT, "k256_key: not a valid secp256k1");
	expect_reject("{\"k256_key\": \"d6e8\"}", NULL, false, CVM_E_FORMAT, "k256_key: 2 bytes");
	expect_reject("{\"k256_key\": \"zze88992cdeeee35fe70b5db61ab66cdb191fb9b6ec9313757ef162dd7214d5d\"}",
	              NULL, false, CVM_E_FORMAT, "k256_key: not hex");
	expect_reject("{\"disk_crypt_key\": \"abc\"}", NULL, false, CVM_E_FORMAT,
	              "disk_crypt_key: odd number");
	expect_reject("{\"env_crypt_key\": \"abcd\"}", NULL, false, CVM_E_FORMAT, "env_crypt_key: 2 bytes");
	expect_reject("{\"k256_signature\": \"00\"}", NULL, false, CVM_E_FORMAT, "k256_signature: 1 bytes");
	(void)snprintf(json, sizeof(json), "{\"k256_signature\": \"%0128d1b\"}", 1);
	expect_reject(json, NULL, false, CVM_E_FORMAT, "recovery id 27");
	expect_reject("{\"gateway_app_id\": null}", NULL, false, CVM_E_FORMAT,
	              "gateway_app_id: expected a string");
	expect_reject("{\"ca_cert\": \"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\\n\"}",
	              NULL, false, CVM_E_FORMAT, "ca_cert: not PEM certificates");
	expect_reject("{\"key_provider\": {\"Hsm\": {}}}", NULL, false, CVM_E_UNSUPPORTED,
	              "unknown provider \"Hsm\"");
	expect_reject("{\"key_provider\": {\"None\": {\"key\": \"x\"}, \"Tpm\": {}}}", NULL, false,
	              CVM_E_FORMAT, "exactly one provider");
	expect_reject("{\"key_provider\": []}", NULL, false, CVM_E_FORMAT,
	              "key_provider: expected an object");
	expect_reject("{\"key_provider\": {\"Kms\": {\"url\": \"https://kms\"}}}", NULL, false, CVM_E_FORMAT,
	              "key_provider.Kms.pubkey: missing");
	expect_reject("{\"mr\": \"00\"}", NULL, true, CVM_E_FORMAT, "key_provider.None: unknown key \"mr\"");
	expect_reject("{\"key\": \"-----BEGIN PRIVATE KEY-----\\nMIGHAgEA\\n-----END PRIVATE KEY-----\\n\"}",
	              NULL, true, CVM_E_FORMAT, "key_provider.None.key: not a P-256 private key");
	expect_reject(NULL, "key", true, CVM_E_FORMAT, "key_provider.None.key: missing");
}

static void appkeys_parser_rejects_non_json_and_oversize(void **state)
{
	struct cvm_appkeys *k = NULL;
	char err[256];
	char *big;
	static const char dup[] = "{\"a\":1,\"a\":2}";
	static const char nul[] = "{\"k256_key\":\"\\u0000\"}";

	(void)state;
	assert_int_equal(cvm_appkeys_parse_json(dup, strlen(dup), &k, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "a key appears twice"));
	assert_int_equal(cvm_appkeys_parse_json("[]", 2, &k, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "expected a JSON object"));
	assert_int_equal(cvm_appkeys_parse_json(nul, strlen(nul), &k, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "NUL"));
	big = malloc(CVM_APPKEYS_JSON_MAX + 1);
	assert_non_null(big);
	memset(big, ' ', CVM_APPKEYS_JSON_MAX + 1);
	assert_int_equal(cvm_appkeys_parse_json(big, CVM_APPKEYS_JSON_MAX + 1, &k, err, sizeof(err)),
	                 CVM_E_TOO_LARGE);
	free(big);
	assert_int_equal(cvm_appkeys_parse_json(NULL, 0, &k, NULL, 0), CVM_E_INVAL);
	assert_null(k);
}

static void appkeys_parser_rejects_every_truncation_and_a_trailing_byte(void **state)
{
	struct cvm_appkeys *k = NULL;
	size_t len, step = under_valgrind() ? 7 : 1;
	char *json = appkeys_json(&len);
	char *more;

	(void)state;
	for (size_t n = 0; n < len; n += step) {
		assert_int_not_equal(cvm_appkeys_parse_json(json, n, &k, NULL, 0), CVM_OK);
		assert_null(k);
	}
	more = malloc(len + 1);
	assert_non_null(more);
	memcpy(more, json, len);
	more[len] = 'x';
	assert_int_equal(cvm_appkeys_parse_json(more, len + 1, &k, NULL, 0), CVM_E_FORMAT);
	free(more);
	free(json);
}

static void appkeys_parser_survives_bit_flips(void **state)
{
	struct cvm_appkeys *k = NULL;
	struct cvm_secret *orig_out = NULL, *out = NULL;
	size_t len, stride = under_valgrind() ? 61 : 1, accepted = 0, total = 0;
	char *json = appkeys_json(&len);

	(void)state;
	assert_int_equal(cvm_appkeys_parse_json(json, len, &k, NULL, 0), CVM_OK);
	assert_int_equal(cvm_appkeys_to_json(k, &orig_out), CVM_OK);
	cvm_appkeys_free(k);
	k = NULL;
	for (size_t bit = 0; bit < 8 * len; bit += stride) {
		size_t i = bit / 8;
		char was = json[i];

		json[i] = (char)(json[i] ^ (1 << (bit % 8)));
		total++;
		if (cvm_appkeys_parse_json(json, len, &k, NULL, 0) == CVM_OK) {
			accepted++;
			assert_int_equal(cvm_appkeys_to_json(k, &out), CVM_OK);
			/* accepted means different contents, except when only the case
			 * of a hex letter changed (the same bytes) */
			if (out->len == orig_out->len && memcmp(out->p, orig_out->p, out->len) == 0)
				assert_true(isxdigit((unsigned char)was) && isalpha((unsigned char)was) &&
				            tolower((unsigned char)json[i]) == tolower((unsigned char)was));
			cvm_secret_free(out);
			out = NULL;
			cvm_appkeys_free(k);
			k = NULL;
		}
		json[i] = was;
	}
	print_message("appkeys bit flips: %zu tried, %zu accepted (all with changed or case-only contents)\n",
	              total, accepted);
	assert_true(accepted < total);
	cvm_secret_free(orig_out);
	free(json);
}

/* ---- files: appkeys.json and the local provider ---------------------------------------------- */

struct tmpdir {
	char path[64];
};

static void tmpdir_make(struct tmpdir *d)
{
	(void)snprintf(d->path, sizeof(d->path), "/tmp/cvm-kdf-XXXXXX");
	assert_non_null(mkdtemp(d->path));
}

static void tmpdir_remove(struct tmpdir *d, const char *const *names)
{
	char p[128];

	for (size_t i = 0; names[i] != NULL; i++) {
		(void)snprintf(p, sizeof(p), "%s/%s", d->path, names[i]);
		(void)unlink(p);
	}
	(void)rmdir(d->path);
}

static void appkeys_load_refuses_a_file_others_can_read(void **state)
{
	static const char *const names[] = {"appkeys.json", NULL};
	struct cvm_appkeys *k = NULL;
	struct tmpdir d;
	char path[128], err[256];
	size_t len;
	char *json = appkeys_json(&len);
	FILE *f;

	(void)state;
	tmpdir_make(&d);
	(void)snprintf(path, sizeof(path), "%s/appkeys.json", d.path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(json, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(cvm_appkeys_load(path, &k, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(cvm_appkeys_load(path, &k, err, sizeof(err)), CVM_OK);
	assert_int_equal(k->key_provider, CVM_KEY_PROVIDER_NONE);
	cvm_appkeys_free(k);
	k = NULL;
	assert_int_equal(cvm_appkeys_load(d.path, &k, err, sizeof(err)), CVM_E_POLICY); /* a directory */
	tmpdir_remove(&d, names);
	errno = 0;
	assert_int_equal(cvm_appkeys_load(path, &k, err, sizeof(err)), CVM_E_SYSTEM);
	assert_int_equal(errno, ENOENT);
	free(json);
}

static void local_provider_creates_a_private_seed_and_is_stable(void **state)
{
	static const char *const names[] = {CVM_LOCAL_SEED_FILE, NULL};
	struct cvm_appkeys *a = NULL, *b = NULL, *c = NULL;
	struct tmpdir d;
	struct stat st;
	uint8_t seed[CVM_LOCAL_SEED_LEN];
	char path[128], err[256];
	FILE *f;

	(void)state;
	tmpdir_make(&d);
	(void)umask(022);
	assert_int_equal(cvm_appkeys_local_open(d.path, &a, err, sizeof(err)), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/%s", d.path, CVM_LOCAL_SEED_FILE);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, CVM_LOCAL_SEED_LEN);
	/* nothing else was left in the directory */
	{
		char tmp[160];

		(void)snprintf(tmp, sizeof(tmp), "%s/%s.tmp.%ld", d.path, CVM_LOCAL_SEED_FILE,
		               (long)getpid());
		assert_int_equal(access(tmp, F_OK), -1);
	}
	/* reopening gives the same keys; they are cvm_appkeys_from_seed(seed) */
	assert_int_equal(cvm_appkeys_local_open(d.path, &b, err, sizeof(err)), CVM_OK);
	assert_memory_equal(a->k256_key->p, b->k256_key->p, 32);
	assert_memory_equal(a->disk_crypt_key->p, b->disk_crypt_key->p, 32);
	assert_int_equal(a->key_provider_key->len, b->key_provider_key->len);
	assert_memory_equal(a->key_provider_key->p, b->key_provider_key->p, a->key_provider_key->len);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(seed, 1, sizeof(seed), f), sizeof(seed));
	assert_int_equal(fclose(f), 0);
	assert_int_equal(cvm_appkeys_from_seed(seed, sizeof(seed), &c), CVM_OK);
	assert_memory_equal(a->k256_key->p, c->k256_key->p, 32);
	assert_string_equal(cvm_key_provider_name(a->key_provider), "local");
	cvm_wipe(seed, sizeof(seed));
	cvm_appkeys_free(a);
	cvm_appkeys_free(b);
	cvm_appkeys_free(c);
	tmpdir_remove(&d, names);
}

static void local_provider_refuses_unsafe_seed_files(void **state)
{
	static const char *const names[] = {CVM_LOCAL_SEED_FILE, "other", NULL};
	struct cvm_appkeys *k = NULL;
	struct tmpdir d;
	char path[128], other[128], err[256];
	FILE *f;

	(void)state;
	tmpdir_make(&d);
	assert_int_equal(cvm_appkeys_local_open(d.path, &k, err, sizeof(err)), CVM_OK);
	cvm_appkeys_free(k);
	k = NULL;
	(void)snprintf(path, sizeof(path), "%s/%s", d.path, CVM_LOCAL_SEED_FILE);
	(void)snprintf(other, sizeof(other), "%s/other", d.path);

	/* readable by group */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(cvm_appkeys_local_open(d.path, &k, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "mode 640"));
	assert_int_equal(chmod(path, 0600), 0);
	/* a directory others may write */
	assert_int_equal(chmod(d.path, 0777), 0);
	assert_int_equal(cvm_appkeys_local_open(d.path, &k, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "may write it"));
	assert_int_equal(chmod(d.path, 0700), 0);
	/* owned by someone else (needs root to arrange) */
	if (geteuid() == 0) {
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(cvm_appkeys_local_open(d.path, &k, err, sizeof(err)), CVM_E_POLICY);
		assert_non_null(strstr(err, "owned by uid 65534"));
		assert_int_equal(chown(path, 0, 0), 0);
	} else {
		print_message("not root: the owner check is not exercised here\n");
	}
	/* a symbolic link, even to a good seed */
	assert_int_equal(rename(path, other), 0);
	assert_int_equal(symlink(other, path), 0);
	assert_int_equal(cvm_appkeys_local_open(d.path, &k, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(unlink(path), 0);
	/* a seed of the wrong size is never replaced */
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite("short", 1, 5, f), 5);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(cvm_appkeys_local_open(d.path, &k, err, sizeof(err)), CVM_E_FORMAT);
	assert_non_null(strstr(err, "5 bytes"));
	assert_null(k);
	tmpdir_remove(&d, names);
	assert_int_equal(cvm_appkeys_local_open(d.path, &k, err, sizeof(err)), CVM_E_SYSTEM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(hkdf_matches_rfc5869),
	    cmocka_unit_test(sha512_tagged_reproduces_the_app_data_vector),
	    cmocka_unit_test(identities_follow_the_spec),
	    cmocka_unit_test(ed25519_and_x25519_match_their_rfcs),
	    cmocka_unit_test(k256_primitives_are_strict),
	    cmocka_unit_test(p256_keys_have_dstack_encodings),
	    cmocka_unit_test(p256_pem_import_accepts_sec1_and_rejects_the_rest),
	    cmocka_unit_test(getkey_reproduces_the_dstack_vms_vectors),
	    cmocka_unit_test(v1_getkey_reproduces_every_published_vector),
	    cmocka_unit_test(v1_chain_link0_reproduces_the_published_signature),
	    cmocka_unit_test(v1_claim_is_the_length_prefixed_encoding),
	    cmocka_unit_test(v1_keys_separate_curves_and_never_meet_v0_keys),
	    cmocka_unit_test(v1_algorithm_names_have_no_default_and_no_alias),
	    cmocka_unit_test(dip1_report_data_matches_the_upstream_vectors),
	    cmocka_unit_test(getkey_reproduces_the_simulator_vectors),
	    cmocka_unit_test(getkey_reuses_one_key_across_curves_unless_separated),
	    cmocka_unit_test(getkey_algorithm_names_and_arguments),
	    cmocka_unit_test(kms_app_key_issuance_and_chain_match_independent_values),
	    cmocka_unit_test(dh_secret_and_kms_keys_match_dstack),
	    cmocka_unit_test(sign_matches_independent_signatures_and_chains),
	    cmocka_unit_test(sign_algorithm_names),
	    cmocka_unit_test(tls_keys_are_fresh_p256_keys),
	    cmocka_unit_test(certificates_chain_and_carry_their_names),
	    cmocka_unit_test(appkeys_from_seed_match_independent_values),
	    cmocka_unit_test(appkeys_parse_and_write_round_trip),
	    cmocka_unit_test(appkeys_parser_names_each_bad_field),
	    cmocka_unit_test(appkeys_parser_rejects_non_json_and_oversize),
	    cmocka_unit_test(appkeys_parser_rejects_every_truncation_and_a_trailing_byte),
	    cmocka_unit_test(appkeys_parser_survives_bit_flips),
	    cmocka_unit_test(appkeys_load_refuses_a_file_others_can_read),
	    cmocka_unit_test(local_provider_creates_a_private_seed_and_is_stable),
	    cmocka_unit_test(local_provider_refuses_unsafe_seed_files),
	};

	/* as a key-holding daemon would: jansson wipes what it frees */
	cvm_kdf_json_wipe_on_free();
	return cmocka_run_group_tests(tests, NULL, NULL);
}

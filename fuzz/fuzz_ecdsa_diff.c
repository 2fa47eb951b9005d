/* Differential libFuzzer harness: every ECDSA verification cvmkit makes
 * against OpenSSL's EVP_DigestVerify on the same bytes. Any disagreement
 * traps.
 *
 * The input picks (input layout below):
 * - the curve, P-256 or P-384;
 * - the key: one of a few fixed keys (used again and again, so that they
 *   get tables), a key d*G for a scalar d from the input, or a fixed key's
 *   x || y XOR bytes from the input (off the curve, mostly);
 * - the signature: made here with the key's private scalar over the input's
 *   message (so that valid signatures reach the comparison), then changed
 *   or not (a bit flipped, r or s set to 0, 1, n-1, n, n+1, p or all ones,
 *   s made n - s, the message changed, another key's signature, the DER
 *   bytes flipped, cut or lengthened, or re-encoded as valid BER that is
 *   not DER), or taken whole from the input;
 * - its form: raw r || s, or DER;
 * - the path: plain, or kept. A kept verification under a fixed key first
 *   makes sure the key has its table (fast build), so that the comparison
 *   runs on the table path; an input may also drop every table first, so
 *   that building them is fuzzed too.
 *
 * cvmkit's verdicts come from the entry points that verify in the library:
 * cvm_p256_verify / _kept (raw P-256, public), cvm_p256_verify_der (P-256
 * certificates and CRLs), cvm_cert_verify_p384 / _kept (SEV-SNP reports,
 * public; for the fixed keys, whose certificates are made here) and
 * cvm_p384_verify_digest (the same verifier for any other key), with
 * cvm_ecdsa_der_to_raw, the DER reader both curves share, before it for
 * P-384 DER. OpenSSL's verdict: the key imported with EVP_PKEY_fromdata
 * (refused: false), the signature made DER by OpenSSL when it is raw, and
 * EVP_DigestVerify. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/err.h>

#include "crypto/crypto_int.h"
#include "crypto/crypto_lib.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input layout:
 *   [0] flags: bit 0 curve (P-384), bit 1 DER, bit 2 kept, bit 3 the
 *       signature comes from the input, bits 4-5 key source (0, 1: fixed,
 *       2: d*G, 3: fixed XOR input), bit 6 drop every table first (only
 *       with [1] == 0xff)
 *   [1] fixed key index (modulo FIXED_KEYS)
 *   [2] change: 0 none, 1 flip a bit of the signature, 2 set r, 3 set s,
 *       4 s := n - s, 5 flip a bit of the message, 6 another fixed key's
 *       signature, 7 flip a bit of the DER bytes, 8 cut the DER, 9 one more
 *       DER byte, 10 the SEQUENCE length in long form, 11 a needless 0x00
 *       before r (both BER, not DER: the signature itself stays valid);
 *       others as 0
 *   [3..4] big-endian position for the change (bit, special value index)
 *   then, for key source 2, n bytes of d; for key source 3, 2n bytes XORed
 *   into x || y; then, when the signature comes from the input, a length
 *   byte and that many signature bytes; the rest is the message. */
enum { F_P384 = 1, F_DER = 2, F_KEPT = 4, F_SIG_IN = 8, F_FLUSH = 64 };
enum {
	CH_NONE,
	CH_FLIP,
	CH_SET_R,
	CH_SET_S,
	CH_HIGH_S,
	CH_MSG,
	CH_OTHER_KEY,
	CH_DER_FLIP,
	CH_DER_CUT,
	CH_DER_ADD,
	CH_BER_LONG,
	CH_BER_ZERO,
	CH_LAST = CH_BER_ZERO
};

#define FIXED_KEYS 3 /* fewer than either curve keeps tables for */
#define N_MAX 48

struct curve {
	const char *name;
	int nid;
	size_t n;
	const EVP_MD *(*md)(void);
	EC_GROUP *g;
	BIGNUM *order, *prime;
};

struct key {
	EVP_PKEY *pkey; /* with the private scalar */
	uint8_t xy[2 * N_MAX];
	struct cvm_p256_key *k256;
	struct cvm_cert *cert; /* P-384: a certificate carrying the key */
};

static struct curve curves[2] = {
    {"P-256", NID_X9_62_prime256v1, 32, EVP_sha256, NULL, NULL, NULL},
    {"P-384", NID_secp384r1, 48, EVP_sha384, NULL, NULL, NULL},
};
static struct key fixed[2][FIXED_KEYS];
static bool ready;

struct in {
	const uint8_t *p;
	size_t len;
};

static const uint8_t *take(struct in *in, size_t n)
{
	const uint8_t *p = in->p;

	if (in->len < n)
		return NULL;
	in->p += n;
	in->len -= n;
	return p;
}

/* key_from_scalar makes the key d*G (d reduced to 1..n-1) with its private
 * scalar, through OpenSSL only. */
static bool key_from_scalar(const struct curve *c, const uint8_t *d, struct key *out)
{
	BIGNUM *bn = BN_bin2bn(d, (int)c->n, NULL);
	BN_CTX *bctx = BN_CTX_new();
	EC_POINT *q = EC_POINT_new(c->g);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM params[4];
	uint8_t priv[N_MAX], pub[1 + 2 * N_MAX];
	char group[16];
	bool ok = false;

	memset(out, 0, sizeof(*out));
	if (bn == NULL || bctx == NULL || q == NULL || ctx == NULL)
		goto out;
	if (BN_nnmod(bn, bn, c->order, bctx) != 1)
		goto out;
	if (BN_is_zero(bn) && BN_one(bn) != 1)
		goto out;
	if (EC_POINT_mul(c->g, q, bn, NULL, NULL, bctx) != 1 ||
	    EC_POINT_point2oct(c->g, q, POINT_CONVERSION_UNCOMPRESSED, pub, 1 + 2 * c->n, bctx) !=
	        1 + 2 * c->n ||
	    BN_bn2binpad(bn, priv, (int)c->n) != (int)c->n)
		goto out;
	memcpy(out->xy, pub + 1, 2 * c->n);
	memcpy(group, c->name, strlen(c->name) + 1);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * c->n);
	params[2] = OSSL_PARAM_construct_BN(OSSL_PKEY_PARAM_PRIV_KEY, priv, c->n);
	params[3] = OSSL_PARAM_construct_end();
	/* OSSL_PARAM_construct_BN takes native-endian bytes */
	for (size_t i = 0; i < c->n / 2; i++) {
		uint8_t t = priv[i];

		priv[i] = priv[c->n - 1 - i];
		priv[c->n - 1 - i] = t;
	}
	ok = EVP_PKEY_fromdata_init(ctx) == 1 &&
	     EVP_PKEY_fromdata(ctx, &out->pkey, EVP_PKEY_KEYPAIR, params) == 1;
out:
	OPENSSL_cleanse(priv, sizeof(priv));
	BN_clear_free(bn);
	BN_CTX_free(bctx);
	EC_POINT_free(q);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* evp_public imports 0x04 || xy as OpenSSL's public key, or NULL. */
static EVP_PKEY *evp_public(const struct curve *c, const uint8_t *xy)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM params[3];
	uint8_t pub[1 + 2 * N_MAX];
	char group[16];

	pub[0] = 0x04;
	memcpy(pub + 1, xy, 2 * c->n);
	memcpy(group, c->name, strlen(c->name) + 1);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * c->n);
	params[2] = OSSL_PARAM_construct_end();
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return pkey;
}

/* cert_of makes a certificate that carries the key (its signature is
 * never checked here) and parses it with cvmkit. */
static struct cvm_cert *cert_of(EVP_PKEY *k)
{
	X509 *x = X509_new();
	struct cvm_cert *c = NULL;
	unsigned char *der = NULL;
	int n;

	if (x == NULL || X509_set_version(x, 2) != 1 ||
	    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                               (const unsigned char *)"cvmkit fuzz", -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 60) == NULL || X509_set_pubkey(x, k) != 1 ||
	    X509_sign(x, k, EVP_sha384()) == 0)
		goto out;
	n = i2d_X509(x, &der);
	if (n <= 0 || cvm_cert_parse(der, (size_t)n, &c) != CVM_OK)
		c = NULL;
out:
	OPENSSL_free(der);
	X509_free(x);
	ERR_clear_error();
	return c;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	for (size_t ci = 0; ci < 2; ci++) {
		struct curve *c = &curves[ci];

		c->g = EC_GROUP_new_by_curve_name(c->nid);
		c->order = BN_dup(c->g != NULL ? EC_GROUP_get0_order(c->g) : NULL);
		c->prime = BN_new();
		if (c->g == NULL || c->order == NULL || c->prime == NULL ||
		    EC_GROUP_get_curve(c->g, c->prime, NULL, NULL, NULL) != 1)
			abort();
		for (size_t i = 0; i < FIXED_KEYS; i++) {
			uint8_t d[N_MAX];

			/* fixed, so that inputs mean the same key in every run */
			for (size_t b = 0; b < c->n; b++)
				d[b] = (uint8_t)(0x5a ^ (b * 29) ^ (i * 101) ^ (ci * 7));
			if (!key_from_scalar(c, d, &fixed[ci][i]))
				abort();
			if (c->n == 32 && cvm_p256_key_new(fixed[ci][i].xy, &fixed[ci][i].k256) != CVM_OK)
				abort();
			if (c->n == 48 && (fixed[ci][i].cert = cert_of(fixed[ci][i].pkey)) == NULL)
				abort();
		}
	}
	ready = true;
	return 0;
}

/* sign_raw signs msg with the key's private scalar: r || s. */
static bool sign_raw(const struct curve *c, EVP_PKEY *k, const uint8_t *msg, size_t len, uint8_t *rs)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t der[2 * N_MAX + 16];
	size_t der_len = sizeof(der);
	const unsigned char *p = der;
	const BIGNUM *r = NULL, *s = NULL;
	ECDSA_SIG *es = NULL;
	bool ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, c->md(), NULL, k) == 1 &&
	          EVP_DigestSign(ctx, der, &der_len, msg, len) == 1 &&
	          (es = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) != NULL;

	if (ok) {
		ECDSA_SIG_get0(es, &r, &s);
		ok = BN_bn2binpad(r, rs, (int)c->n) == (int)c->n &&
		     BN_bn2binpad(s, rs + c->n, (int)c->n) == (int)c->n;
	}
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* raw_to_der makes r || s DER with OpenSSL; 0 when it cannot. */
static size_t raw_to_der(const struct curve *c, const uint8_t *rs, uint8_t *der, size_t cap)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, (int)c->n, NULL), *s = BN_bin2bn(rs + c->n, (int)c->n, NULL);
	unsigned char *p = der;
	int len = 0;

	if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
	} else {
		len = i2d_ECDSA_SIG(es, NULL);
		len = len > 0 && (size_t)len <= cap ? i2d_ECDSA_SIG(es, &p) : 0;
	}
	ECDSA_SIG_free(es);
	return len > 0 ? (size_t)len : 0;
}

/* special gives the value a change sets r or s to. */
static void special(const struct curve *c, unsigned which, uint8_t *out)
{
	BIGNUM *v = BN_new();

	if (v == NULL)
		abort();
	switch (which % 8) {
	case 0:
		BN_zero(v);
		break;
	case 1:
		(void)BN_one(v);
		break;
	case 2:
		(void)BN_sub(v, c->order, BN_value_one());
		break;
	case 3:
		(void)BN_copy(v, c->order);
		break;
	case 4:
		(void)BN_add(v, c->order, BN_value_one());
		break;
	case 5:
		(void)BN_copy(v, c->prime);
		break;
	case 6:
		(void)BN_sub(v, c->prime, c->order);
		break;
	default:
		(void)BN_set_bit(v, (int)(8 * c->n));
		(void)BN_sub_word(v, 1);
		break;
	}
	if (BN_bn2binpad(v, out, (int)c->n) != (int)c->n)
		abort();
	BN_free(v);
}

/* to_ber re-encodes a DER signature (SEQUENCE of two short INTEGERs, short
 * lengths) as BER that is not DER: the SEQUENCE length in long form, or a
 * needless 0x00 in front of r. The buffer has room for one more byte.
 * Returns the new length, 0 when the form does not allow it. */
static size_t to_ber(uint8_t *der, size_t len, bool zero)
{
	uint8_t out[2 * N_MAX + 32];
	size_t n = 0;

	if (len < 8 || der[0] != 0x30 || der[1] >= 0x7f || (size_t)der[1] + 2 != len || der[2] != 0x02 ||
	    der[3] >= 0x7f)
		return 0;
	out[n++] = 0x30;
	if (zero) {
		out[n++] = (uint8_t)(der[1] + 1);
		out[n++] = 0x02;
		out[n++] = (uint8_t)(der[3] + 1);
		out[n++] = 0x00;
		memcpy(out + n, der + 4, len - 4);
		n += len - 4;
	} else {
		out[n++] = 0x81;
		memcpy(out + n, der + 1, len - 1);
		n += len - 1;
	}
	memcpy(der, out, n);
	return n;
}

static bool evp_verdict(const struct curve *c, const uint8_t *xy, const uint8_t *msg, size_t len,
                        const uint8_t *der, size_t der_len)
{
	EVP_PKEY *k = evp_public(c, xy);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = k != NULL && ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, c->md(), NULL, k) == 1 &&
	          EVP_DigestVerify(ctx, der, der_len, msg, len) == 1;

	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	ERR_clear_error();
	return ok;
}

/* cvm_raw is cvmkit's verdict on r || s. */
static bool cvm_raw(const struct curve *c, const struct key *fk, const uint8_t *xy, const uint8_t *msg,
                    size_t len, const uint8_t *rs, bool keep)
{
	if (c->n == 32) {
		struct cvm_p256_key *k = NULL;
		bool ok;

		if (fk != NULL)
			return (keep ? cvm_p256_verify_kept(fk->k256, msg, len, rs)
			             : cvm_p256_verify(fk->k256, msg, len, rs)) == CVM_OK;
		if (cvm_p256_key_new(xy, &k) != CVM_OK)
			return false;
		ok = (keep ? cvm_p256_verify_kept(k, msg, len, rs) : cvm_p256_verify(k, msg, len, rs)) ==
		     CVM_OK;
		cvm_p256_key_free(k);
		return ok;
	}
	if (fk != NULL)
		return (keep ? cvm_cert_verify_p384_kept(fk->cert, msg, len, rs)
		             : cvm_cert_verify_p384(fk->cert, msg, len, rs)) == CVM_OK;
	{
		struct cvm_p384_pub pub;
		uint8_t e[48];
		bool ok;

		if (cvm_p384_pub_set(&pub, xy) != CVM_OK)
			return false;
		cvm_sha384(msg, len, e);
		ok = cvm_p384_verify_digest(&pub, e, rs, rs + 48, keep) == CVM_OK;
		cvm_p384_pub_clear(&pub);
		return ok;
	}
}

/* cvm_der is cvmkit's verdict on a DER signature. */
static bool cvm_der(const struct curve *c, const struct key *fk, const uint8_t *xy, const uint8_t *msg,
                    size_t len, const uint8_t *der, size_t der_len, bool keep)
{
	uint8_t rs[2 * N_MAX];

	if (c->n == 32) {
		struct cvm_p256_pub pub;
		bool ok;

		if (cvm_p256_pub_set(&pub, xy) != CVM_OK)
			return false;
		ok = cvm_p256_verify_der(&pub, msg, len, der, der_len, keep) == CVM_OK;
		cvm_p256_pub_clear(&pub);
		return ok;
	}
	if (!cvm_ecdsa_der_to_raw(der, der_len, 48, rs))
		return false;
	return cvm_raw(c, fk, xy, msg, len, rs, keep);
}

static bool has_table(const struct curve *c, const uint8_t *xy)
{
	return c->n == 32 ? cvm_p256_has_table(xy) : cvm_p384_has_table(xy);
}

/* ensure_table gives a fixed key its table (fast build), so that a kept
 * verification under it runs on the table path. */
static void ensure_table(const struct curve *c, const struct key *fk)
{
	static const uint8_t m[] = "warm";
	uint8_t rs[2 * N_MAX];

	if (!cvm_ecdsa_fast() || !sign_raw(c, fk->pkey, m, sizeof(m), rs))
		return;
	for (int round = 0; round < 2 && !has_table(c, fk->xy); round++) {
		for (int i = 0; i < CVM_KEPT_BUILD_AFTER && !has_table(c, fk->xy); i++)
			if (!cvm_raw(c, fk, fk->xy, m, sizeof(m), rs, true))
				__builtin_trap(); /* a valid signature refused */
		/* evicted and not used enough to come back: start afresh */
		if (!has_table(c, fk->xy)) {
			cvm_p256_tables_flush();
			cvm_p384_tables_flush();
		}
	}
	if (!has_table(c, fk->xy))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	const uint8_t *h, *src = NULL, *sig_in = NULL;
	const struct curve *c;
	const struct key *fk = NULL;
	struct key made;
	uint8_t xy[2 * N_MAX], rs[2 * N_MAX], der[2 * N_MAX + 32], msg_copy[512];
	size_t der_len = 0, sig_len = 0, msg_len;
	unsigned flags, change, pos, source;
	bool unchanged, mine, theirs;

	if (!ready)
		(void)LLVMFuzzerInitialize(NULL, NULL);
	memset(&made, 0, sizeof(made));
	h = take(&in, 5);
	if (h == NULL)
		return 0;
	flags = h[0];
	c = &curves[flags & F_P384 ? 1 : 0];
	source = (flags >> 4) & 3;
	change = h[2];
	pos = (unsigned)h[3] << 8 | h[4];
	if ((flags & F_FLUSH) != 0 && h[1] == 0xff) {
		cvm_p256_tables_flush();
		cvm_p384_tables_flush();
	}
	if (source == 2) {
		src = take(&in, c->n);
		if (src == NULL || !key_from_scalar(c, src, &made))
			return 0;
		memcpy(xy, made.xy, 2 * c->n);
	} else {
		fk = &fixed[flags & F_P384 ? 1 : 0][h[1] % FIXED_KEYS];
		memcpy(xy, fk->xy, 2 * c->n);
		if (source == 3) {
			src = take(&in, 2 * c->n);
			if (src == NULL)
				return 0;
			for (size_t i = 0; i < 2 * c->n; i++)
				xy[i] ^= src[i];
			if (memcmp(xy, fk->xy, 2 * c->n) != 0)
				fk = NULL; /* another key: no certificate, no table */
		}
	}
	if (flags & F_SIG_IN) {
		const uint8_t *l = take(&in, 1);

		sig_len = l != NULL ? *l : 0;
		sig_in = take(&in, sig_len);
		if (l == NULL || sig_in == NULL)
			goto out;
	}
	msg_len = in.len < sizeof(msg_copy) ? in.len : sizeof(msg_copy);
	memcpy(msg_copy, in.p, msg_len);

	/* The signature, raw or DER. */
	if (sig_in != NULL && !(flags & F_DER)) {
		if (sig_len != 2 * c->n)
			goto out; /* raw signatures have a fixed size */
		memcpy(rs, sig_in, sig_len);
	} else if (sig_in != NULL) {
		if (sig_len > sizeof(der))
			goto out;
		memcpy(der, sig_in, sig_len);
		der_len = sig_len;
	} else {
		EVP_PKEY *signer =
		    source == 2 ? made.pkey : fixed[flags & F_P384 ? 1 : 0][h[1] % FIXED_KEYS].pkey;

		if (change == CH_OTHER_KEY)
			signer = fixed[flags & F_P384 ? 1 : 0][(h[1] + 1u) % FIXED_KEYS].pkey;
		if (!sign_raw(c, signer, msg_copy, msg_len, rs))
			goto out;
		switch (change) {
		case CH_FLIP:
			rs[(pos / 8) % (2 * c->n)] ^= (uint8_t)(1u << (pos % 8));
			break;
		case CH_SET_R:
			special(c, pos, rs);
			break;
		case CH_SET_S:
			special(c, pos, rs + c->n);
			break;
		case CH_HIGH_S: {
			BIGNUM *s = BN_bin2bn(rs + c->n, (int)c->n, NULL);

			if (s == NULL || BN_sub(s, c->order, s) != 1 ||
			    BN_bn2binpad(s, rs + c->n, (int)c->n) != (int)c->n)
				abort();
			BN_free(s);
			break;
		}
		case CH_MSG:
			if (msg_len != 0)
				msg_copy[(pos / 8) % msg_len] ^= (uint8_t)(1u << (pos % 8));
			break;
		default:
			break;
		}
		if (flags & F_DER) {
			der_len = raw_to_der(c, rs, der, sizeof(der) - 1);
			if (der_len == 0)
				goto out;
			if (change == CH_DER_FLIP)
				der[(pos / 8) % der_len] ^= (uint8_t)(1u << (pos % 8));
			else if (change == CH_DER_CUT)
				der_len -= 1 + pos % der_len;
			else if (change == CH_DER_ADD)
				der[der_len++] = (uint8_t)pos;
			else if (change == CH_BER_LONG || change == CH_BER_ZERO)
				der_len = to_ber(der, der_len, change == CH_BER_ZERO);
			if (der_len == 0)
				goto out;
		}
	}

	if ((flags & F_KEPT) && fk != NULL)
		ensure_table(c, fk);
	if (flags & F_DER) {
		theirs = evp_verdict(c, xy, msg_copy, msg_len, der, der_len);
		mine = cvm_der(c, fk, xy, msg_copy, msg_len, der, der_len, (flags & F_KEPT) != 0);
	} else {
		uint8_t d[2 * N_MAX + 16];
		size_t dl = raw_to_der(c, rs, d, sizeof(d));

		theirs = dl != 0 && evp_verdict(c, xy, msg_copy, msg_len, d, dl);
		mine = cvm_raw(c, fk, xy, msg_copy, msg_len, rs, (flags & F_KEPT) != 0);
	}
	if (mine != theirs)
		__builtin_trap(); /* cvmkit and OpenSSL disagree */
	/* A signature made here and left alone (or given a high s) must
	 * verify: otherwise the harness would only ever compare rejections. */
	unchanged = change == CH_NONE || change == CH_HIGH_S || change > CH_LAST ||
	            (change >= CH_DER_FLIP && !(flags & F_DER)) || (change == CH_MSG && msg_len == 0);
	if (sig_in == NULL && source != 3 && unchanged && !theirs)
		__builtin_trap();
	if ((flags & F_KEPT) && fk != NULL && cvm_ecdsa_fast() && !has_table(c, fk->xy))
		__builtin_trap(); /* the table path did not run */
out:
	EVP_PKEY_free(made.pkey);
	return 0;
}

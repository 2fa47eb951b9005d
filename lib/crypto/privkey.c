/* Private keys for issuing (crypto_lib.h): ECDSA P-256 and P-384 and RSA,
 * generated, kept in PKCS#8 PEM files no one else may read, and raw
 * signatures as the vendors' formats carry them. The P-256 key pairs of the
 * public API (p256key.c) keep their scalar apart for dstack's key hashes;
 * these are the vendor PKIs' keys, of three kinds, held by OpenSSL only. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <cvmkit/file.h>
#include <cvmkit/secret.h>

#include "crypto_int.h"
#include "issue_int.h"

#define PSS_SALT_LEN 48

struct cvm_privkey {
	EVP_PKEY *pkey;
	enum cvm_privkey_type type;
	int refs;
};

EVP_PKEY *cvm_privkey_pkey(const struct cvm_privkey *k)
{
	return k->pkey;
}

/* key_type tells which of our kinds `pkey` is: P-256, P-384, or RSA of an
 * accepted size. */
static int key_type(EVP_PKEY *pkey, enum cvm_privkey_type *out)
{
	char group[32];
	int bits;

	if (EVP_PKEY_is_a(pkey, "RSA")) {
		bits = EVP_PKEY_get_bits(pkey);
		if (bits < (int)CVM_PRIVKEY_RSA_BITS_MIN || bits > (int)CVM_PRIVKEY_RSA_BITS_MAX)
			return CVM_E_UNSUPPORTED;
		*out = CVM_PRIVKEY_RSA;
		return CVM_OK;
	}
	if (!EVP_PKEY_is_a(pkey, "EC") || EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) != 1) {
		ERR_clear_error();
		return CVM_E_UNSUPPORTED;
	}
	if (strcmp(group, "prime256v1") == 0)
		*out = CVM_PRIVKEY_P256;
	else if (strcmp(group, "secp384r1") == 0)
		*out = CVM_PRIVKEY_P384;
	else
		return CVM_E_UNSUPPORTED;
	return CVM_OK;
}

/* wrap makes a key of `pkey`, which it takes. */
static int wrap(EVP_PKEY *pkey, enum cvm_privkey_type type, struct cvm_privkey **out)
{
	struct cvm_privkey *k = calloc(1, sizeof(*k));

	if (k == NULL) {
		EVP_PKEY_free(pkey);
		return CVM_E_NOMEM;
	}
	k->pkey = pkey;
	k->type = type;
	k->refs = 1;
	*out = k;
	return CVM_OK;
}

int cvm_privkey_generate(enum cvm_privkey_type type, unsigned rsa_bits, struct cvm_privkey **out)
{
	EVP_PKEY *pkey;

	*out = NULL;
	switch (type) {
	case CVM_PRIVKEY_P256:
		pkey = EVP_EC_gen("P-256");
		break;
	case CVM_PRIVKEY_P384:
		pkey = EVP_EC_gen("P-384");
		break;
	case CVM_PRIVKEY_RSA:
		if (rsa_bits < CVM_PRIVKEY_RSA_BITS_MIN || rsa_bits > CVM_PRIVKEY_RSA_BITS_MAX)
			return CVM_E_INVAL;
		pkey = EVP_RSA_gen(rsa_bits);
		break;
	default:
		return CVM_E_INVAL;
	}
	if (pkey == NULL) {
		ERR_clear_error();
		return CVM_E_CRYPTO;
	}
	return wrap(pkey, type, out);
}

struct cvm_privkey *cvm_privkey_dup(struct cvm_privkey *k)
{
	if (k != NULL)
		__atomic_add_fetch(&k->refs, 1, __ATOMIC_ACQ_REL);
	return k;
}

void cvm_privkey_free(struct cvm_privkey *k)
{
	if (k == NULL)
		return;
	if (__atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

enum cvm_privkey_type cvm_privkey_type(const struct cvm_privkey *k)
{
	return k->type;
}

int cvm_privkey_p256_public(const struct cvm_privkey *k, uint8_t xy[64])
{
	uint8_t pt[65];
	size_t len = 0;

	if (k->type != CVM_PRIVKEY_P256)
		return CVM_E_INVAL;
	if (EVP_PKEY_get_octet_string_param(k->pkey, OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &len) != 1 ||
	    len != sizeof(pt) || pt[0] != 0x04) {
		ERR_clear_error();
		return CVM_E_CRYPTO;
	}
	memcpy(xy, pt + 1, 64);
	return CVM_OK;
}

bool cvm_privkey_matches_cert(const struct cvm_privkey *k, const struct cvm_cert *c)
{
	bool ok = X509_check_private_key(c->x, k->pkey) == 1;

	ERR_clear_error();
	return ok;
}

/* ---- PEM files ------------------------------------------------------------ */

int cvm_privkey_save_pem(const struct cvm_privkey *k, const char *path)
{
	/* secure memory BIO: its buffer is wiped when freed */
	BIO *b = BIO_new(BIO_s_secmem());
	char *p = NULL;
	long len;
	int r = CVM_E_CRYPTO;

	if (b == NULL)
		return CVM_E_NOMEM;
	if (PEM_write_bio_PKCS8PrivateKey(b, k->pkey, NULL, NULL, 0, NULL, NULL) == 1) {
		len = BIO_get_mem_data(b, &p);
		if (len > 0 && p != NULL)
			r = cvm_file_write(path, p, (size_t)len, 0600);
	}
	BIO_free(b);
	ERR_clear_error();
	return r;
}

int cvm_privkey_load_pem(const char *path, struct cvm_privkey **out)
{
	struct cvm_secret *buf = NULL;
	enum cvm_privkey_type type;
	EVP_PKEY *pkey = NULL;
	struct cvm_secret *der = NULL;
	PKCS8_PRIV_KEY_INFO *p8 = NULL;
	const unsigned char *p;
	struct cvm_pem_block blk;
	struct cvm_rd in;
	bool pkcs8 = false;
	int legacy_type = 0;
	size_t der_len = 0;
	size_t len = 0;
	int r;

	*out = NULL;
	/* lib/core's key-file rule; this header documents CVM_E_INVAL for a
	 * file that breaks it */
	r = cvm_file_read_key(AT_FDCWD, path, CVM_PRIVKEY_FILE_MAX, &buf, NULL, 0);
	if (r == CVM_E_POLICY)
		r = CVM_E_INVAL;
	if (r != CVM_OK)
		goto out;
	len = buf->len;
	/* One unencrypted private key block, PKCS#8 ("PRIVATE KEY"), SEC1 ("EC
	 * PRIVATE KEY") or PKCS#1 ("RSA PRIVATE KEY"), white space around it,
	 * framed by the library's PEM reader and decoded straight into secret
	 * memory; an ENCRYPTED PRIVATE KEY (or a legacy block with encryption
	 * headers) is refused: nothing here ever prompts for a passphrase. */
	r = CVM_E_FORMAT;
	cvm_rd_init(&in, buf->p, len);
	if (cvm_pem_next(&in, &blk) != CVM_OK)
		goto out;
	if (cvm_pem_label_is(&blk, "PRIVATE KEY"))
		pkcs8 = true;
	else if (cvm_pem_label_is(&blk, "EC PRIVATE KEY"))
		legacy_type = EVP_PKEY_EC;
	else if (cvm_pem_label_is(&blk, "RSA PRIVATE KEY"))
		legacy_type = EVP_PKEY_RSA;
	else
		goto out;
	while (in.len != 0 && (in.p[0] == ' ' || in.p[0] == '\t' || in.p[0] == '\r' || in.p[0] == '\n'))
		(void)cvm_rd_skip(&in, 1);
	if (in.len != 0)
		goto out;
	r = CVM_E_NOMEM;
	der = cvm_secret_new(cvm_pem_decoded_max(&blk));
	if (der == NULL)
		goto out;
	r = cvm_pem_decode(&blk, der->p, der->len, &der_len);
	if (r != CVM_OK) {
		r = CVM_E_FORMAT;
		goto out;
	}
	der->len = der_len; /* the free wipes every byte of the pages anyway */
	r = CVM_E_FORMAT;
	p = der->p;
	if (pkcs8) {
		p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)der->len);
		if (p8 != NULL && p == der->p + der->len)
			pkey = EVP_PKCS82PKEY(p8);
	} else {
		pkey = d2i_PrivateKey(legacy_type, NULL, &p, (long)der->len);
		if (pkey != NULL && p != der->p + der->len) {
			EVP_PKEY_free(pkey); /* bytes after the key */
			pkey = NULL;
		}
	}
	if (pkey == NULL)
		goto out;
	r = key_type(pkey, &type);
	if (r != CVM_OK)
		goto out;
	r = wrap(pkey, type, out);
	pkey = NULL; /* transferred, or freed by wrap */
out:
	EVP_PKEY_free(pkey);
	PKCS8_PRIV_KEY_INFO_free(p8); /* clears the key it holds */
	cvm_secret_free(der);
	cvm_secret_free(buf);
	ERR_clear_error();
	return r;
}

/* ---- signatures ----------------------------------------------------------- */

int cvm_privkey_sign_ctx(const struct cvm_privkey *k, enum cvm_sig_alg alg, EVP_MD_CTX **out)
{
	bool rsa = k->type == CVM_PRIVKEY_RSA;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md;
	EVP_MD_CTX *ctx;

	*out = NULL;
	switch (alg) {
	case CVM_SIG_ECDSA_SHA256:
		md = EVP_sha256();
		break;
	case CVM_SIG_ECDSA_SHA384:
	case CVM_SIG_RSA_PSS_SHA384:
		md = EVP_sha384();
		break;
	default:
		return CVM_E_INVAL;
	}
	if (rsa != (alg == CVM_SIG_RSA_PSS_SHA384))
		return CVM_E_INVAL;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		return CVM_E_NOMEM;
	if (EVP_DigestSignInit(ctx, &pctx, md, NULL, k->pkey) != 1 ||
	    (rsa && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, PSS_SALT_LEN) != 1 ||
	             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, md) != 1))) {
		EVP_MD_CTX_free(ctx);
		ERR_clear_error();
		return CVM_E_CRYPTO;
	}
	*out = ctx;
	return CVM_OK;
}

int cvm_privkey_sign(const struct cvm_privkey *k, enum cvm_sig_alg alg, const uint8_t *msg, size_t len,
                     uint8_t *sig, size_t sig_cap, size_t *sig_len)
{
	static const uint8_t empty[1];
	size_t n = k->type == CVM_PRIVKEY_P256 ? 32 : 48; /* an ECDSA component */
	size_t need = k->type == CVM_PRIVKEY_RSA ? (size_t)EVP_PKEY_get_size(k->pkey) : 2 * n;
	EVP_MD_CTX *ctx = NULL;
	ECDSA_SIG *es = NULL;
	const BIGNUM *br, *bs;
	uint8_t der[160];
	const uint8_t *p = der;
	size_t der_len = sizeof(der);
	int r;

	*sig_len = 0;
	if ((msg == NULL && len != 0) || sig_cap < need)
		return CVM_E_INVAL;
	r = cvm_privkey_sign_ctx(k, alg, &ctx);
	if (r != CVM_OK)
		return r;
	r = CVM_E_CRYPTO;
	if (k->type == CVM_PRIVKEY_RSA) {
		size_t out_len = sig_cap;

		if (EVP_DigestSign(ctx, sig, &out_len, len != 0 ? msg : empty, len) != 1 || out_len != need)
			goto out;
		*sig_len = out_len;
		r = CVM_OK;
		goto out;
	}
	if (EVP_DigestSign(ctx, der, &der_len, len != 0 ? msg : empty, len) != 1)
		goto out;
	es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	if (es == NULL)
		goto out;
	ECDSA_SIG_get0(es, &br, &bs);
	if (BN_bn2binpad(br, sig, (int)n) != (int)n || BN_bn2binpad(bs, sig + n, (int)n) != (int)n) {
		memset(sig, 0, need);
		goto out;
	}
	*sig_len = need;
	r = CVM_OK;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(ctx);
	ERR_clear_error();
	return r;
}

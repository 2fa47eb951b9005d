/* lib/crypto's library-internal interface, for the modules above it: the
 * kept verifications, caches and reference counts that make repeated
 * verification cheap (used by lib/dcap and lib/amd), and issuing (below).
 *
 * Issuing: private keys of the
 * kinds the vendors' PKIs use, raw signatures, and certificates and CRLs of
 * any shape, wrong ones included. It serves the simulator's mock Intel and
 * AMD PKIs (lib/sim) and the unit tests' deliberately broken variants of
 * them (tests/common); lib/crypto is the only module that includes OpenSSL,
 * so they issue through this header and never touch it.
 *
 * Not part of the public API and not exported (no CVM_API): a library user
 * verifies vendor PKIs, it does not mint them. No OpenSSL type appears here.
 * Certificates are the library's struct cvm_cert (include/cvmkit/crypto.h),
 * so what is issued can be handed straight to the verifying functions.
 *
 * Nothing here verifies anything, and nothing checks that what is issued
 * makes sense: a certificate with the wrong name, role or key usage, signed
 * by the wrong key, or a CRL signed by a key its issuer does not hold, is
 * exactly what a test of the verifier needs. The functions that return an
 * int return 0 or a negative CVM_E_*; every function leaves OpenSSL's error
 * queue empty. */
#ifndef CVM_CRYPTO_CRYPTO_LIB_H
#define CVM_CRYPTO_CRYPTO_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/crypto.h>
#include <cvmkit/err.h>

/* cvm_sha256_two writes SHA-256(a || b) without copying the two parts
 * together (a domain tag and a document, for example). */
void cvm_sha256_two(const void *a, size_t a_len, const void *b, size_t b_len, uint8_t out[32]);

/* ---- private keys (lib/crypto/privkey.c) --------------------------------- */

/* The kinds of private key the vendors' PKIs use. */
enum cvm_privkey_type {
	CVM_PRIVKEY_P256 = 1, /* ECDSA P-256: Intel's PKI, a quote's attestation key */
	CVM_PRIVKEY_P384,     /* ECDSA P-384: AMD's VCEK and VLEK */
	CVM_PRIVKEY_RSA,      /* RSA of CVM_PRIVKEY_RSA_BITS_MIN..MAX bits: AMD's ARK, ASK and ASVK */
};
#define CVM_PRIVKEY_RSA_BITS_MIN 2048u
#define CVM_PRIVKEY_RSA_BITS_MAX 4096u
/* The largest key file cvm_privkey_load_pem reads (a 4096-bit RSA key in
 * PKCS#8 PEM is about 3.3 KB). */
#define CVM_PRIVKEY_FILE_MAX ((size_t)16 * 1024)

/* The signature algorithms. */
enum cvm_sig_alg {
	CVM_SIG_ECDSA_SHA256 = 1, /* ECDSA with SHA-256 (an EC key): Intel's */
	CVM_SIG_ECDSA_SHA384,     /* ECDSA with SHA-384 (an EC key): SEV-SNP reports */
	CVM_SIG_RSA_PSS_SHA384,   /* RSASSA-PSS, SHA-384, MGF1 with SHA-384, 48-byte salt (RSA): AMD's */
};

/* struct cvm_privkey is a private key, reference-counted. Opaque. */
struct cvm_privkey;

/* cvm_privkey_generate makes a fresh random key of `type`; `rsa_bits` is the
 * modulus size of an RSA key (ignored otherwise). Returns 0, CVM_E_INVAL (an
 * unknown type, or RSA bits out of range), CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_privkey_generate(enum cvm_privkey_type type, unsigned rsa_bits,
                                        struct cvm_privkey **out);
/* cvm_privkey_dup takes one more reference to `k` and returns it (NULL gives
 * NULL). Thread-safe. */
struct cvm_privkey *cvm_privkey_dup(struct cvm_privkey *k);
/* cvm_privkey_free drops one reference; the last one frees the key (which
 * OpenSSL wipes). NULL is a no-op. */
void cvm_privkey_free(struct cvm_privkey *k);
enum cvm_privkey_type cvm_privkey_type(const struct cvm_privkey *k);

/* cvm_privkey_p256_public gives the public point of a P-256 key as x || y.
 * Returns 0, CVM_E_INVAL (another kind of key) or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_privkey_p256_public(const struct cvm_privkey *k, uint8_t xy[64]);
/* cvm_privkey_matches_cert is true when `c` certifies the public half of
 * `k`. It checks nothing else of `c`. */
bool cvm_privkey_matches_cert(const struct cvm_privkey *k, const struct cvm_cert *c);

/* cvm_privkey_save_pem writes `k` as PKCS#8 PEM (unencrypted) to `path`,
 * created with mode 0600, through memory that is wiped when freed. Whoever
 * reads the file holds the key: the caller picks a folder no one else may
 * write to. Returns 0, CVM_E_NOMEM, CVM_E_CRYPTO or CVM_E_SYSTEM. */
CVM_MUST_CHECK int cvm_privkey_save_pem(const struct cvm_privkey *k, const char *path);
/* cvm_privkey_load_pem reads one unencrypted PEM private key (PKCS#8, SEC1
 * or PKCS#1) of a kind above from the regular file `path`, which no one but
 * its owner may read, write or execute (mode and bytes come from the same
 * open file). The bytes read are wiped. Returns 0, CVM_E_INVAL (group or
 * others have access, or not a regular file), CVM_E_TOO_LARGE (more than
 * CVM_PRIVKEY_FILE_MAX bytes), CVM_E_FORMAT (no key, or an encrypted one),
 * CVM_E_UNSUPPORTED (another curve or algorithm, or an RSA size out of
 * range), CVM_E_NOMEM or CVM_E_SYSTEM (errno holds the cause). */
CVM_MUST_CHECK int cvm_privkey_load_pem(const char *path, struct cvm_privkey **out);

/* cvm_privkey_sign signs the `len` bytes at `msg` (hashed as `alg` says)
 * and writes the raw signature to `sig` (`sig_cap` bytes), its length to
 * `*sig_len`: for ECDSA r || s, each big-endian and as long as the curve's
 * order (64 bytes on P-256, 96 on P-384), as Intel's quotes and QE reports
 * carry them; for RSASSA-PSS the modulus-sized signature. ECDSA nonces are
 * random. Returns 0, CVM_E_INVAL (`alg` is not for this kind of key, or
 * `sig_cap` is too small), CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_privkey_sign(const struct cvm_privkey *k, enum cvm_sig_alg alg, const uint8_t *msg,
                                    size_t len, uint8_t *sig, size_t sig_cap, size_t *sig_len);

/* ---- a certificate for a public key only (lib/crypto/x509_make.c) -------- */

/* cvm_cert_make_spki is cvm_cert_make (include/cvmkit/crypto.h) for a
 * subject of which only the public key is known: `spki` (`spki_len` bytes,
 * exactly one DER SubjectPublicKeyInfo of a P-256 key), as a certificate
 * request gives it. An issuer is required. Returns what cvm_cert_make
 * returns; CVM_E_INVAL also for a key that is not a P-256 SPKI. */
CVM_MUST_CHECK int cvm_cert_make_spki(const struct cvm_cert_template *t, const uint8_t *spki, size_t spki_len,
                                      const struct cvm_p256_keypair *issuer_key,
                                      const struct cvm_cert *issuer, char **out_pem, size_t *out_len);

/* ---- certificates and CRLs (lib/crypto/issue.c) -------------------------- */

#define CVM_ISSUE_NAME_MAX 16 /* attributes of a name */
#define CVM_ISSUE_EXTS_MAX 32 /* extensions of one certificate or edit */
#define CVM_ISSUE_CHAIN_MAX 16
#define CVM_ISSUE_REVOKED_MAX 64

/* struct cvm_issue_ext is one extension, given one of two ways:
 *  - `der`: its extnValue contents, `der_len` bytes of DER, under the
 *    dotted OID `oid`, critical when `critical` (a vendor's own extension);
 *  - `conf`: its value in the text syntax of openssl's x509v3_config(5),
 *    criticality included, for an extension OpenSSL knows, named by `oid`
 *    (its short name or dotted OID): ("basicConstraints",
 *    "critical,CA:TRUE,pathlen:0"), ("keyUsage", "critical,keyCertSign"),
 *    ("subjectKeyIdentifier", "hash"), ("authorityKeyIdentifier",
 *    "keyid:always"); `critical` is ignored.
 * In an edit (struct cvm_issue_edit), one with neither only removes. */
struct cvm_issue_ext {
	const char *oid;
	bool critical;
	const uint8_t *der;
	size_t der_len;
	const char *conf;
};

/* struct cvm_issue_cert describes an X.509 v3 certificate. Every pointer is
 * borrowed. */
struct cvm_issue_cert {
	/* The subject: each attribute an RDN of its own, in this order, held as
	 * a UTF8String (PrintableString for C, as X.520 wants), as Intel and
	 * AMD write their names. */
	const struct cvm_name_attr *subject;
	size_t subject_count; /* 1..CVM_ISSUE_NAME_MAX */
	uint64_t serial;      /* 0 is allowed: AMD's VCEKs carry it */
	int64_t not_before;   /* Unix seconds */
	int64_t not_after;
	const struct cvm_issue_ext *exts; /* written in this order */
	size_t ext_count;                 /* at most CVM_ISSUE_EXTS_MAX */
	enum cvm_sig_alg sig_alg;
};

/* cvm_issue_cert issues the certificate `spec` describes for the public half
 * of `subject_key`, issued by `issuer` (its subject becomes the issuer name,
 * and an authority key identifier refers to its key) or self-issued when
 * `issuer` is NULL, and signed by `signer` with spec->sig_alg. `signer` need
 * not be the issuer's key, nor the issuer a CA: what is wrong is the
 * caller's choice. *out is a new certificate, parsed. Returns 0, CVM_E_INVAL
 * (a bad spec: no or too many name attributes, an extension OpenSSL cannot
 * make, an algorithm not for `signer`'s kind of key), CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_issue_cert(const struct cvm_issue_cert *spec, const struct cvm_privkey *subject_key,
                                  const struct cvm_cert *issuer, const struct cvm_privkey *signer,
                                  struct cvm_cert **out);

/* struct cvm_issue_edit is a change to an existing certificate. */
struct cvm_issue_edit {
	const struct cvm_name_attr *subject; /* NULL: the subject is kept */
	size_t subject_count;
	/* Each removes every extension of its OID, then appends itself (unless
	 * it has neither `der` nor `conf`). */
	const struct cvm_issue_ext *exts;
	size_t ext_count;
	enum cvm_sig_alg sig_alg;
};

/* cvm_issue_cert_edit copies `c`, changes it as `e` says and signs the copy
 * with `signer`. `issuer` gives the authority key identifier's context for a
 * new extension; when it is NULL, `c` is self-issued and a new subject is
 * also its issuer name. Serial, validity, key and every other extension are
 * kept. Returns 0, CVM_E_INVAL, CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_issue_cert_edit(const struct cvm_cert *c, const struct cvm_issue_edit *e,
                                       const struct cvm_cert *issuer, const struct cvm_privkey *signer,
                                       struct cvm_cert **out);

/* struct cvm_issue_crl describes a version 2 CRL. */
struct cvm_issue_crl {
	int64_t this_update; /* Unix seconds */
	int64_t next_update;
	const uint64_t *revoked; /* serials, each revoked at this_update */
	size_t revoked_count;    /* at most CVM_ISSUE_REVOKED_MAX */
	uint64_t number;         /* the cRLNumber extension; 0: none */
	bool authority_key_id;   /* an authorityKeyIdentifier (key id) of the issuer */
	enum cvm_sig_alg sig_alg;
};

/* cvm_issue_crl issues the CRL `spec` describes under `issuer`'s name,
 * signed by `signer` (which, again, need not be the issuer's key), into a
 * new DER buffer with one NUL after it (not counted). Returns 0, CVM_E_INVAL,
 * CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_issue_crl(const struct cvm_issue_crl *spec, const struct cvm_cert *issuer,
                                 const struct cvm_privkey *signer, uint8_t **der, size_t *der_len);

/* cvm_issue_crl_resign signs the DER CRL of `len` bytes at `crl` again with
 * `signer` and `alg`, everything else kept, into a new DER buffer (NUL
 * after it, not counted). Returns 0, CVM_E_FORMAT (not a CRL), CVM_E_INVAL,
 * CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_issue_crl_resign(const uint8_t *crl, size_t len, const struct cvm_privkey *signer,
                                        enum cvm_sig_alg alg, uint8_t **out, size_t *out_len);

/* cvm_certs_pem writes the `n` certificates (1..CVM_ISSUE_CHAIN_MAX) as
 * PEM, one block after the other, into a new buffer with one NUL after the
 * text (not counted; a quote's PCK chain counts it in). Returns 0,
 * CVM_E_INVAL, CVM_E_NOMEM or CVM_E_CRYPTO. */
CVM_MUST_CHECK int cvm_certs_pem(struct cvm_cert *const *certs, size_t n, uint8_t **out, size_t *out_len);

/* cvm_cert_der_has_ext is true when the `len` bytes at `der` are exactly one
 * DER certificate (nothing after it) that carries an extension of the dotted
 * OID `oid`. It checks no signature. */
bool cvm_cert_der_has_ext(const uint8_t *der, size_t len, const char *oid);
/* cvm_certs_pem_any_has_ext is true when any of the first `max` certificates
 * of the PEM text of `len` bytes at `pem` carries an extension of `oid`; the
 * certificates are read in order up to the first that does not parse. */
bool cvm_certs_pem_any_has_ext(const uint8_t *pem, size_t len, const char *oid, size_t max);

/* ==== kept verifications, caches and references ========================== */

/* What the verifiers above (lib/dcap, lib/amd) use to make repeated
 * verification cheap; not for library users, whose verifications go through
 * cvm_verify_* (docs/threat-model.md, "What the library keeps"). */

/* Kept verifications. The *_kept variants of the ECDSA verifications
 * (cvm_p256_verify_kept, cvm_cert_verify_p256_kept,
 * cvm_cert_check_issued_kept, cvm_crl_check_issued_kept,
 * cvm_cert_verify_p384_kept) check exactly what the plain ones check; the
 * caller adds that it has authenticated the key (it chains to a trust
 * anchor) and expects to see it again. At a key's 8th kept verification a
 * table of its multiples is made (P-256: about 150 KB, some 25 ms to build;
 * P-384: about 1 MB), and the tables of the most used such keys are kept
 * process-wide (8 P-256 keys, 4 P-384 keys; thread-safe, one built at a
 * time): a verification under a key with a table costs about half as much
 * (P-256) or a third (P-384). Tables are a pure function of the public key,
 * never a verification result. Only authenticated keys, so that nobody can
 * make a verifier build tables for keys of their choosing: the plain
 * variants keep nothing. A build with CVM_FAST_ECDSA=OFF (see
 * cvm_ecdsa_fast) has no tables, and *_kept is the plain verification. */
CVM_MUST_CHECK int cvm_p256_verify_kept(const struct cvm_p256_key *k, const uint8_t *msg, size_t len,
                                        const uint8_t sig[64]);

/* cvm_cert_dup takes a new reference to `c`. */
struct cvm_cert *cvm_cert_dup(struct cvm_cert *c);

/* cvm_cert_check_issued_kept: see "Kept verifications" above (`issuer` is
 * the authenticated key). */
CVM_MUST_CHECK int cvm_cert_check_issued_kept(const struct cvm_cert *child, const struct cvm_cert *issuer);

/* cvm_cert_verify_p256_kept: see "Kept verifications" above. */
CVM_MUST_CHECK int cvm_cert_verify_p256_kept(const struct cvm_cert *c, const uint8_t *msg, size_t len,
                                             const uint8_t sig[64]);

/* cvm_cert_verify_p384_kept: see "Kept verifications" above (the caller
 * verified the certificate's chain up to a trust anchor). */
CVM_MUST_CHECK int cvm_cert_verify_p384_kept(const struct cvm_cert *c, const uint8_t *msg, size_t len,
                                             const uint8_t sig[96]);

/* cvm_cert_cache_keep keeps the parsed form of `c` process-wide (the last
 * CVM_CERT_CACHE_MAX such certificates, thread-safe), so that a later
 * cvm_cert_parse or cvm_cert_pool_parse_pem of the very same DER bytes takes it
 * instead of parsing again (OpenSSL 3.0 spends about 100 us parsing one).
 * Callers keep only certificates that verified up to a trust anchor. It
 * saves parsing, never a check: dates, signatures and CRLs are checked by
 * every verification as before. */
#define CVM_CERT_CACHE_MAX 32
void cvm_cert_cache_keep(struct cvm_cert *c);

/* struct cvm_cert_pool keeps parsed certificates by their DER bytes, so the
 * same certificate met in several chains (Intel's root, the TCB signing
 * certificate, the PCK CA) is parsed once. OpenSSL 3.0 spends about as long
 * parsing a certificate as verifying a signature. It caches parsing only,
 * never a verification result. At most CVM_CERT_POOL_MAX certificates are
 * kept; past that, certificates are parsed as usual. */
#define CVM_CERT_POOL_MAX 32
struct cvm_cert_pool;
CVM_MUST_CHECK int cvm_cert_pool_new(struct cvm_cert_pool **out);
void cvm_cert_pool_free(struct cvm_cert_pool *pool);
/* cvm_cert_pool_add keeps a reference to `c`. */
void cvm_cert_pool_add(struct cvm_cert_pool *pool, struct cvm_cert *c);
/* cvm_cert_pool_holds is true when the pool keeps a reference to `c` (so `c`
 * lives as long as the pool). */
bool cvm_cert_pool_holds(const struct cvm_cert_pool *pool, const struct cvm_cert *c);
/* cvm_cert_pool_parse_pem is cvm_certs_parse_pem through the pool (a NULL
 * pool parses every certificate). */
CVM_MUST_CHECK int cvm_cert_pool_parse_pem(struct cvm_cert_pool *pool, const uint8_t *pem, size_t len,
                                           struct cvm_cert ***out, size_t *count);

/* cvm_crl_check_issued_kept: see "Kept verifications" above. */
CVM_MUST_CHECK int cvm_crl_check_issued_kept(const struct cvm_crl *crl, const struct cvm_cert *issuer);

/* cvm_crl_cache_keep is cvm_cert_cache_keep for CRLs (the last
 * CVM_CRL_CACHE_MAX CRLs of at most CVM_CRL_CACHE_BYTES bytes each, by their
 * exact bytes as given to cvm_crl_parse). */
#define CVM_CRL_CACHE_MAX 8
#define CVM_CRL_CACHE_BYTES ((size_t)256 * 1024)
void cvm_crl_cache_keep(struct cvm_crl *crl);

/* ---- certificate details for lib/ratls (lib/crypto/x509.c) ------------ */

/* cvm_cert_ext_count says how often the extension with the dotted `oid`
 * occurs in `c` (0 for an OID that does not parse). */
size_t cvm_cert_ext_count(const struct cvm_cert *c, const char *oid);
/* cvm_cert_p256_public gives the certificate's key as x || y when it is an
 * uncompressed P-256 point; false for any other key. */
bool cvm_cert_p256_public(const struct cvm_cert *c, uint8_t xy[64]);

/* cvm_cert_check_signed checks that `issuer`'s subject is `child`'s issuer
 * and `child`'s signature under `issuer`'s key, and nothing about the
 * issuer's role (CA flag, keyUsage): for chains whose CAs predate
 * keyCertSign (dstack before 0.5.8), which the caller then judges. Returns
 * 0, CVM_E_CHAIN (names) or CVM_E_SIGNATURE. */
CVM_MUST_CHECK int cvm_cert_check_signed(const struct cvm_cert *child, const struct cvm_cert *issuer);

/* ---- P-256 key pairs for lib/tls (lib/crypto/p256key.c) ------------------ */

/* cvm_p256_keypair_evp_pkey hands out OpenSSL's EVP_PKEY of `kp`, as an
 * opaque pointer, for lib/tls to give to SSL_CTX_use_PrivateKey (which takes
 * its own reference). The pointer is borrowed: it lives as long as `kp`, and
 * the caller neither frees nor changes it. */
void *cvm_p256_keypair_evp_pkey(const struct cvm_p256_keypair *kp);

/* ---- AES-256-GCM (lib/crypto/aead.c) ------------------------------------ */

#define CVM_AES256GCM_KEY_LEN 32
#define CVM_AES256GCM_IV_LEN 12
#define CVM_AES256GCM_TAG_LEN 16

/* cvm_aes256gcm_seal encrypts the `len` bytes at `plain` under `key` and the
 * 12-byte `iv` (no associated data) into `out`, which holds len + 16 bytes:
 * the ciphertext, then the tag. The caller never reuses an IV with a key.
 * Returns 0, CVM_E_INVAL, CVM_E_TOO_LARGE (over INT_MAX) or CVM_E_CRYPTO
 * (then `out` is wiped). */
CVM_MUST_CHECK int cvm_aes256gcm_seal(const uint8_t key[CVM_AES256GCM_KEY_LEN],
                                      const uint8_t iv[CVM_AES256GCM_IV_LEN], const uint8_t *plain,
                                      size_t len, uint8_t *out);
/* cvm_aes256gcm_open checks and decrypts the `len` bytes at `sealed`
 * (ciphertext || 16-byte tag) into `out` (len - 16 bytes). Returns 0,
 * CVM_E_INVAL, CVM_E_TRUNCATED (shorter than a tag), CVM_E_TOO_LARGE,
 * CVM_E_SIGNATURE (the tag does not match: key, IV or bytes differ) or
 * CVM_E_CRYPTO; on any failure `out` is wiped, so no unauthenticated
 * plaintext is left behind. */
CVM_MUST_CHECK int cvm_aes256gcm_open(const uint8_t key[CVM_AES256GCM_KEY_LEN],
                                      const uint8_t iv[CVM_AES256GCM_IV_LEN], const uint8_t *sealed,
                                      size_t len, uint8_t *out);

/* ---- the names a certificate is for (lib/crypto/x509_names.c) ----------- */

#define CVM_CERT_NAMES_MAX 256 /* DNS names of one certificate that are kept */
#define CVM_CERT_NAME_LEN 256  /* bytes of one name, NUL included */

/* cvm_cert_dns_names lists the DNS names `c` is for: every dNSName of its
 * subjectAltName, or, only when it has no subjectAltName extension at all,
 * the last commonName of its subject (what TLS clients fall back to). Each
 * name is lowercased; a byte outside printable ASCII becomes '?' so that the
 * caller may print it and it never matches a real name by accident. Names
 * longer than CVM_CERT_NAME_LEN - 1 bytes are cut and end in "...".
 * `names` holds `cap` entries (at most CVM_CERT_NAMES_MAX are read); *count
 * is how many were written, *more is true when some did not fit. Returns 0,
 * CVM_E_FORMAT (a subjectAltName that does not parse) or CVM_E_NOMEM. It
 * checks nothing else of `c`. */
CVM_MUST_CHECK int cvm_cert_dns_names(const struct cvm_cert *c, char (*names)[CVM_CERT_NAME_LEN], size_t cap,
                                      size_t *count, bool *more);

#endif

/* The building blocks of the simulator's mock vendor PKIs (lib/sim:
 * mockpki.c for Intel, mockamd.c for AMD): vendor names, certificates in a
 * vendor's profile, the simulated marker, DER for vendor extensions, and
 * keeping keys and certificates in a folder. The unit tests make their
 * deliberately broken variants (a CRL signed by the wrong key, a certificate
 * with the wrong name or key usage) from the same blocks and from lib/crypto's
 * issuing interface, in tests/common.
 *
 * Not part of the public API. Keys, signatures, certificates and CRLs are
 * made by lib/crypto (crypto/crypto_lib.h), the only module that includes
 * OpenSSL; lib/sim decides what they hold. Nothing here verifies anything. */
#ifndef CVM_SIM_MOCK_INT_H
#define CVM_SIM_MOCK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>

#include "crypto/crypto_lib.h"
#include "sim/mockamd_lib.h"
#include "sim/mockpki_lib.h"

/* ---- building blocks (lib/sim/mock_x509.c) ------------------------------ */

/* cvm_mock_fill_pattern fills `p` with a recognisable non-zero pattern. */
void cvm_mock_fill_pattern(uint8_t *p, size_t n, uint8_t seed);
/* cvm_mock_copy_out copies n bytes into a new buffer with one NUL after
 * them. Returns 0 or CVM_E_NOMEM. */
int cvm_mock_copy_out(const void *p, size_t n, uint8_t **out, size_t *out_len);

/* cvm_mock_der_tlv appends one DER TLV of `tag` holding the `n` bytes at
 * `p` (up to 65535 of them; more sets the writer's error);
 * cvm_mock_der_uint one INTEGER (or ENUMERATED) of `v` in minimal form. */
void cvm_mock_der_tlv(struct cvm_wr *w, uint8_t tag, const uint8_t *p, size_t n);
void cvm_mock_der_uint(struct cvm_wr *w, uint8_t tag, uint64_t v);

/* cvm_mock_intel_name writes the name Intel gives its DCAP certificates,
 * CN=`cn`, O=Intel Corporation, L=Santa Clara, ST=CA, C=US, into `out`;
 * cvm_mock_amd_name AMD's, OU=Engineering, C=US, L=Santa Clara, ST=CA,
 * O=Advanced Micro Devices, CN=`cn`. The attributes borrow `cn`. Both return
 * the number of attributes. */
#define CVM_MOCK_NAME_MAX 6
size_t cvm_mock_intel_name(const char *cn, struct cvm_name_attr out[CVM_MOCK_NAME_MAX]);
size_t cvm_mock_amd_name(const char *cn, struct cvm_name_attr out[CVM_MOCK_NAME_MAX]);

/* cvm_mock_sig_alg is how the vendor whose kind of key `key` is signs with
 * it: ECDSA with SHA-256 for an EC key (Intel), RSASSA-PSS with SHA-384,
 * MGF1 SHA-384 and a 48-byte salt for an RSA key (AMD). */
enum cvm_sig_alg cvm_mock_sig_alg(const struct cvm_privkey *key);

/* struct cvm_mock_cert is what cvm_mock_cert_issue writes into a
 * certificate, extensions in this order: subject and authority key
 * identifiers, keyUsage, basicConstraints, the marker, then `exts`. */
struct cvm_mock_cert {
	const struct cvm_name_attr *name; /* the subject */
	size_t name_count;
	uint64_t serial; /* AMD's VCEKs carry 0 */
	int64_t not_before, not_after;
	const char *basic_constraints;    /* x509v3_config(5) syntax ("critical,CA:FALSE"); NULL: none */
	const char *key_usage;            /* likewise ("critical,digitalSignature"); NULL: none */
	bool key_ids;                     /* subject key identifier, and the authority's when issued */
	bool marker;                      /* the simulated marker (every mock root has it) */
	const struct cvm_issue_ext *exts; /* the vendor's own extensions, last */
	size_t ext_count;
};

/* cvm_mock_cert_issue issues the certificate `spec` describes for the public
 * half of `key`, issued by `issuer` (NULL: by itself) and signed by
 * `issuer_key` (for a self-issued one, normally `key`) as cvm_mock_sig_alg
 * says. Returns 0, CVM_E_INVAL (a bad spec), CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
int cvm_mock_cert_issue(const struct cvm_mock_cert *spec, const struct cvm_privkey *key,
                        const struct cvm_cert *issuer, const struct cvm_privkey *issuer_key,
                        struct cvm_cert **out);

/* cvm_mock_sign_p256 signs SHA-256 of the `len` bytes at `msg` with the
 * P-256 `key` and gives r || s, 32 bytes each (how Intel signs TCB infos, QE
 * identities, QE reports and quotes). Returns 0, CVM_E_INVAL (not a P-256
 * key) or CVM_E_CRYPTO. */
int cvm_mock_sign_p256(const struct cvm_privkey *key, const uint8_t *msg, size_t len, uint8_t sig[64]);

/* cvm_mock_pem_chain writes the `n` certificates as a PEM chain into a new
 * buffer with one NUL after it; `nul` counts that NUL in `*out_len` (as
 * quotes carry the PCK chain). Returns 0, CVM_E_INVAL, CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
int cvm_mock_pem_chain(struct cvm_cert *const *certs, size_t n, bool nul, uint8_t **out, size_t *out_len);

/* cvm_mock_dir_check returns 0 when `dir` is a folder that neither group nor
 * others may write to, CVM_E_INVAL when it is not, CVM_E_SYSTEM when it
 * cannot be examined. */
int cvm_mock_dir_check(const char *dir);

/* cvm_mock_cert_save writes `c` as PEM to `path` with mode 0644;
 * cvm_mock_cert_load reads the certificate of the file `path` (the first
 * one of a PEM file, as cvm_mock_cert_save writes it, or DER).
 * Keys are kept with cvm_privkey_save_pem and cvm_privkey_load_pem. Both
 * return 0, CVM_E_FORMAT (load), CVM_E_NOMEM, CVM_E_TOO_LARGE (load),
 * CVM_E_CRYPTO (save) or CVM_E_SYSTEM. */
int cvm_mock_cert_save(struct cvm_cert *c, const char *path);
int cvm_mock_cert_load(const char *path, struct cvm_cert **out);

/* ---- the Intel mock's parts (lib/sim/mockpki.c) ------------------------- */

/* cvm_mockpki_key and cvm_mockpki_x509 lend the private key and the
 * certificate of `which` (NULL when out of range). */
struct cvm_privkey *cvm_mockpki_key(const struct cvm_mockpki *pki, enum cvm_mockpki_cert which);
struct cvm_cert *cvm_mockpki_x509(const struct cvm_mockpki *pki, enum cvm_mockpki_cert which);

/* cvm_mockpki_signed_body writes {"<member>":<text>,"signature":"<hex>"}
 * into a new buffer, the signature being `key`'s over exactly the `len`
 * bytes of `text` (how Intel's PCS serves TCB infos, member "tcbInfo", and
 * QE identities, "enclaveIdentity"). Returns 0, CVM_E_INVAL (not a P-256
 * key), CVM_E_NOMEM, CVM_E_TOO_LARGE or CVM_E_CRYPTO. */
int cvm_mockpki_signed_body(const struct cvm_privkey *key, const char *member, const uint8_t *text,
                            size_t len, uint8_t **out, size_t *out_len);

/* cvm_mockpki_quote_with is cvm_mockpki_quote with another PCK: the QE
 * report is signed by `pck_key` and the quote carries `pck_chain` (PEM, as
 * a quote holds it) instead of the PKI's own. */
int cvm_mockpki_quote_with(const struct cvm_mockpki *pki, const struct cvm_mockpki_quote_opts *q,
                           const struct cvm_privkey *pck_key, const uint8_t *pck_chain, size_t pck_chain_len,
                           uint8_t **out, size_t *out_len);

/* ---- the AMD mock's parts (lib/sim/mockamd.c) --------------------------- */

/* The certificates of an AMD mock PKI. */
enum cvm_mockamd_cert {
	CVM_MOCKAMD_ARK = 0,
	CVM_MOCKAMD_INTERMEDIATE,
	CVM_MOCKAMD_VEK,
	CVM_MOCKAMD_CERT_COUNT
};

/* cvm_mockamd_key and cvm_mockamd_x509 lend the private key and the
 * certificate of `which` (NULL when out of range). */
struct cvm_privkey *cvm_mockamd_key(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which);
struct cvm_cert *cvm_mockamd_x509(const struct cvm_mockamd *pki, enum cvm_mockamd_cert which);

#endif

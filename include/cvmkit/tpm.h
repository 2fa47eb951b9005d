/* TPM 2.0 quotes: parse and verify them (structures through tpm2-tss's
 * marshalling library, tss2-mu; signatures through lib/crypto), and make
 * them on a TPM (tss2-esys over any TCTI that tss2-tctildr can load).
 *
 * Hash algorithms, banks, curves and schemes are TPM_ALG_IDs (enum
 * cvm_digest_alg in crypto.h for the hashes).
 *
 * tpm2-tss writes its own error messages to stderr unless the environment
 * variable TSS2_LOG says otherwise (TSS2_LOG=all+none silences it). cvmkit
 * never changes the environment; a host that must stay silent sets it. */
#ifndef CVMKIT_TPM_H
#define CVMKIT_TPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "err.h"
#include "report.h"
#include "secret.h"

/* ---- limits ------------------------------------------------------------ */

#define CVM_TPM_PCR_COUNT 24  /* PCRs per bank on a PC Client TPM */
#define CVM_TPM_SEL_MAX 16    /* entries of a TPML_PCR_SELECTION (TPM2_NUM_PCR_BANKS) */
#define CVM_TPM_BANKS_MAX 5   /* distinct banks in a PCR value set (one per digest cvmkit knows) */
#define CVM_TPM_DIGEST_MAX 64 /* a TPM2B_DIGEST (SHA-512) */
#define CVM_TPM_DATA_MAX 66   /* a TPM2B_DATA: qualifying data, extraData (sizeof(TPMT_HA)) */
#define CVM_TPM_NAME_MAX 68   /* a TPM2B_NAME (sizeof(TPMU_NAME)) */
#define CVM_TPM_RSA_MAX 512   /* an RSA modulus or signature (4096 bits) */
#define CVM_TPM_ECC_MAX 128   /* one ECC coordinate or signature half (TPM2_MAX_ECC_KEY_BYTES) */

/* Input caps, checked before tss2-mu sees a byte. A quote's TPMS_ATTEST is
 * at most about 360 bytes; a TPMT_SIGNATURE at most 518 (RSA-4096); a
 * TPM2B_PUBLIC of an RSA-4096 key with a policy about 600. */
#define CVM_TPM_ATTEST_MAX 1024
#define CVM_TPM_SIG_MAX 1024
#define CVM_TPM_PUBLIC_MAX 1024
/* An AK file may also be a PEM SubjectPublicKeyInfo. */
#define CVM_TPM_AK_FILE_MAX 4096
/* A tpm2-tools PCR file ("serialized": 136 + 532 bytes per 8 values). */
#define CVM_TPM_PCRS_FILE_MAX ((size_t)136 + (size_t)532 * 64)

#define CVM_TPM_GENERATED_VALUE 0xff544347u /* TPMS_ATTEST.magic: "\xffTCG" */
#define CVM_TPM_ST_ATTEST_QUOTE 0x8018      /* TPMS_ATTEST.type of a quote */

/* TPMA_OBJECT bits that an attestation key must have. */
#define CVM_TPMA_FIXED_TPM 0x00000002u
#define CVM_TPMA_RESTRICTED 0x00010000u
#define CVM_TPMA_DECRYPT 0x00020000u
#define CVM_TPMA_SIGN 0x00040000u

/* ---- PCR selections and values ----------------------------------------- */

/* struct cvm_tpm_pcr_sel is a PCR selection: per entry, a bank and a bit
 * mask (bit i selects PCR i). A selection parsed from a quote keeps the
 * TPM's entries in order, with every bit it carried (up to 32). */
struct cvm_tpm_pcr_sel {
	size_t count;
	struct cvm_tpm_bank_sel {
		uint16_t alg;
		uint32_t mask;
	} banks[CVM_TPM_SEL_MAX];
};

/* cvm_tpm_pcr_sel_parse reads a selection in tpm2-tools' syntax:
 * "sha256:0,1,10" or "sha1:0-7+sha256:all". Banks are digest names
 * (cvm_digest_from_name); PCRs are 0-23; a bank may appear once. Returns 0,
 * CVM_E_FORMAT or CVM_E_UNSUPPORTED (an unknown bank). */
CVM_API CVM_MUST_CHECK int cvm_tpm_pcr_sel_parse(const char *s, struct cvm_tpm_pcr_sel *out);
/* cvm_tpm_pcr_sel_mask is the set of PCRs (bit i: PCR i) that `sel`
 * selects in bank `alg`, over all its entries for that bank. */
CVM_API uint32_t cvm_tpm_pcr_sel_mask(const struct cvm_tpm_pcr_sel *sel, uint16_t alg);
/* cvm_tpm_pcr_sel_format writes "sha256:0-10+sha1:0,2" into `buf` (always
 * NUL-terminated, truncated to `len`). */
CVM_API void cvm_tpm_pcr_sel_format(const struct cvm_tpm_pcr_sel *sel, char *buf, size_t len);

/* struct cvm_tpm_pcrs is a set of PCR values: per bank, a bit mask of the
 * PCRs it holds and their values (cvm_digest_len(alg) bytes each). */
struct cvm_tpm_pcrs {
	size_t count;
	struct cvm_tpm_pcr_bank {
		uint16_t alg;
		uint32_t valid;
		uint8_t values[CVM_TPM_PCR_COUNT][CVM_TPM_DIGEST_MAX];
	} banks[CVM_TPM_BANKS_MAX];
};

CVM_API void cvm_tpm_pcrs_init(struct cvm_tpm_pcrs *p);
/* cvm_tpm_pcrs_set stores the value of PCR `index` of bank `alg` (adding the
 * bank). `len` must be the digest length of `alg`. Returns 0, CVM_E_INVAL
 * (index, length), CVM_E_UNSUPPORTED (alg) or CVM_E_TOO_LARGE (banks). */
CVM_API CVM_MUST_CHECK int cvm_tpm_pcrs_set(struct cvm_tpm_pcrs *p, uint16_t alg, unsigned index,
                                            const uint8_t *value, size_t len);
/* cvm_tpm_pcrs_get returns the value of PCR `index` of bank `alg` (borrowed;
 * cvm_digest_len(alg) bytes), or NULL when the set does not hold it. */
CVM_API const uint8_t *cvm_tpm_pcrs_get(const struct cvm_tpm_pcrs *p, uint16_t alg, unsigned index);

/* cvm_tpm_pcrs_digest computes the composite digest a quote signs: H(the
 * values of every selected PCR, entry by entry, PCR 0 upwards) with hash
 * `hash`, into `out` (cvm_digest_len(hash) bytes, `out_cap` checked). When
 * a selected value is missing it returns CVM_E_INVAL and names it in
 * `missing` ("sha256:10"; may be NULL). Also CVM_E_UNSUPPORTED (a bank or
 * hash cvmkit does not know, a PCR above 23). */
CVM_API CVM_MUST_CHECK int cvm_tpm_pcrs_digest(const struct cvm_tpm_pcr_sel *sel,
                                               const struct cvm_tpm_pcrs *pcrs, uint16_t hash, uint8_t *out,
                                               size_t out_cap, size_t *out_len, char *missing,
                                               size_t missing_len);

/* cvm_tpm_pcrs_parse_serialized reads the PCR file tpm2_quote -o and
 * tpm2_pcrread -o write by default ("serialized": TPML_PCR_SELECTION and
 * TPML_DIGEST lists as tpm2-tools lays them out in memory, little-endian;
 * not a TPM wire format, so not tss2-mu's). It fills `sel` and `out`.
 * Every selected value must be present, of its bank's length, with no
 * values left over. Returns 0, CVM_E_TRUNCATED, CVM_E_FORMAT,
 * CVM_E_TOO_LARGE or CVM_E_UNSUPPORTED. */
CVM_API CVM_MUST_CHECK int cvm_tpm_pcrs_parse_serialized(const uint8_t *buf, size_t len,
                                                         struct cvm_tpm_pcr_sel *sel,
                                                         struct cvm_tpm_pcrs *out);
/* cvm_tpm_pcrs_parse_values reads tpm2-tools' "values" format: the values
 * selected by `sel`, concatenated in selection order, nothing else. */
CVM_API CVM_MUST_CHECK int cvm_tpm_pcrs_parse_values(const uint8_t *buf, size_t len,
                                                     const struct cvm_tpm_pcr_sel *sel,
                                                     struct cvm_tpm_pcrs *out);
/* cvm_tpm_pcrs_write_serialized writes the values `sel` selects in the
 * "serialized" format (for tpm2_checkquote -f) into a new buffer the caller
 * frees. Returns 0, CVM_E_INVAL (a value is missing), CVM_E_UNSUPPORTED or
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_tpm_pcrs_write_serialized(const struct cvm_tpm_pcr_sel *sel,
                                                         const struct cvm_tpm_pcrs *pcrs, uint8_t **out,
                                                         size_t *out_len);

/* ---- structures -------------------------------------------------------- */

/* struct cvm_tpm_attest holds the fields of a TPMS_ATTEST. The quote fields
 * (pcr_sel, pcr_digest) are set only when type is CVM_TPM_ST_ATTEST_QUOTE.
 * The TPM obfuscates reset_count, restart_count and firmware_version when
 * the signing key is outside the endorsement and platform hierarchies (an
 * AK under an SRK): they mean something only for an AK under the EK. */
struct cvm_tpm_attest {
	uint32_t magic;
	uint16_t type;
	uint8_t signer[CVM_TPM_NAME_MAX]; /* qualifiedSigner */
	size_t signer_len;
	uint8_t extra[CVM_TPM_DATA_MAX]; /* extraData: the qualifying data (nonce) */
	size_t extra_len;
	uint64_t clock;         /* clockInfo.clock: milliseconds the TPM has been powered */
	uint32_t reset_count;   /* clockInfo.resetCount: TPM resets (reboots) */
	uint32_t restart_count; /* clockInfo.restartCount: restarts/resumes since the reset */
	bool safe;              /* clockInfo.safe */
	uint64_t firmware_version;
	struct cvm_tpm_pcr_sel pcr_sel;
	uint8_t pcr_digest[CVM_TPM_DIGEST_MAX];
	size_t pcr_digest_len;
};

/* cvm_tpm_attest_parse unmarshals a TPMS_ATTEST (what TPM2_Quote's
 * TPM2B_ATTEST holds, and what tpm2_quote -m writes) of exactly `len` bytes
 * (at most CVM_TPM_ATTEST_MAX). It checks structure only: not the magic,
 * not the type (see cvm_tpm_quote_authenticate_pcrs), no signature. Returns 0,
 * CVM_E_TRUNCATED, CVM_E_FORMAT (malformed, or bytes left over) or
 * CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_tpm_attest_parse(const uint8_t *buf, size_t len, struct cvm_tpm_attest *out);

/* struct cvm_tpm_sig holds a TPMT_SIGNATURE of a scheme cvmkit verifies:
 * RSASSA or RSAPSS (`sig`) or ECDSA (`r`, `s`). */
struct cvm_tpm_sig {
	uint16_t alg;  /* CVM_TPMSIG_RSASSA, CVM_TPMSIG_RSAPSS or CVM_TPMSIG_ECDSA */
	uint16_t hash; /* the scheme's hash */
	uint8_t sig[CVM_TPM_RSA_MAX];
	size_t sig_len;
	uint8_t r[CVM_TPM_ECC_MAX], s[CVM_TPM_ECC_MAX];
	size_t r_len, s_len;
};

/* cvm_tpm_sig_parse unmarshals a TPMT_SIGNATURE (tpm2_quote -s, "tss"
 * format) of exactly `len` bytes (at most CVM_TPM_SIG_MAX). Returns 0,
 * CVM_E_TRUNCATED, CVM_E_FORMAT, CVM_E_TOO_LARGE or CVM_E_UNSUPPORTED (a
 * well-formed signature of another scheme: ECDAA, SM2, Schnorr, HMAC). */
CVM_API CVM_MUST_CHECK int cvm_tpm_sig_parse(const uint8_t *buf, size_t len, struct cvm_tpm_sig *out);

/* struct cvm_tpm_public holds the fields of a TPMT_PUBLIC that matter for
 * an attestation key, and its Name (nameAlg || H_nameAlg(TPMT_PUBLIC)). */
struct cvm_tpm_public {
	uint16_t type; /* TPM_ALG_RSA (0x0001) or TPM_ALG_ECC (0x0023) */
	uint16_t name_alg;
	uint32_t attributes;  /* TPMA_OBJECT */
	uint16_t scheme;      /* signing scheme, TPM_ALG_NULL (0x0010) when any */
	uint16_t scheme_hash; /* its hash, 0 when scheme is TPM_ALG_NULL */
	uint16_t key_bits;    /* RSA */
	uint32_t exponent;    /* RSA; 0 means 65537 */
	uint16_t curve;       /* ECC: CVM_TPMSIG_ECC_NIST_* */
	uint8_t name[CVM_TPM_NAME_MAX];
	size_t name_len; /* 0 when nameAlg is not a hash cvmkit knows */
};

/* struct cvm_tpm_ak is an attestation key's public part: its TPMT_PUBLIC
 * when known, and the key itself. */
struct cvm_tpm_ak;

/* cvm_tpm_ak_parse reads an attestation key: a marshaled TPM2B_PUBLIC
 * (tpm2_createak -u, cvm tpm quote's ak.pub), a marshaled TPMT_PUBLIC, or
 * a PEM or DER SubjectPublicKeyInfo (tpm2-tools -f pem; its TPM attributes
 * are then unknown). An RSA key must be 2048 to 4096 bits, an ECC key on
 * NIST P-256 or P-384. The caller frees it with cvm_tpm_ak_free. It does
 * not check that the key belongs to any particular TPM: that takes the
 * EK certificate and credential activation. Returns 0, CVM_E_TRUNCATED,
 * CVM_E_FORMAT, CVM_E_TOO_LARGE, CVM_E_UNSUPPORTED or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_tpm_ak_parse(const uint8_t *buf, size_t len, struct cvm_tpm_ak **out);
CVM_API void cvm_tpm_ak_free(struct cvm_tpm_ak *ak);
/* cvm_tpm_ak_public returns the key's TPMT_PUBLIC fields (borrowed), or NULL
 * when it was given as a SubjectPublicKeyInfo. */
CVM_API const struct cvm_tpm_public *cvm_tpm_ak_public(const struct cvm_tpm_ak *ak);
/* cvm_tpm_ak_describe writes "ECC NIST P-256" or "RSA 2048" into `buf`. */
CVM_API void cvm_tpm_ak_describe(const struct cvm_tpm_ak *ak, char *buf, size_t len);
/* cvm_tpm_ak_pem writes the key as a PEM SubjectPublicKeyInfo (the caller
 * frees the string). */
CVM_API CVM_MUST_CHECK int cvm_tpm_ak_pem(const struct cvm_tpm_ak *ak, char **out);

/* ---- verification ------------------------------------------------------ */

/* struct cvm_tpm_quote is what verification learned: the attested fields
 * and the signature's scheme. */
struct cvm_tpm_quote {
	struct cvm_tpm_attest attest;
	struct cvm_tpm_sig sig;
};

/* cvm_tpm_quote_authenticate checks everything about a quote except the
 * PCR values: that `attest` is a TPMS_ATTEST with the TPM_GENERATED magic
 * and the quote type; that `ak` may sign quotes (fixedTPM, restricted,
 * sign, not decrypt; when its TPMT_PUBLIC is known) and its scheme allows
 * this signature; the signature over the exact `attest` bytes; that
 * extraData equals `nonce` (1 to CVM_TPM_DATA_MAX bytes); and that the
 * quoted selection is one cvmkit can recompute. Steps go to `rep` (may be
 * NULL) and the fields to `out` (may be NULL; filled as far as parsed).
 * Returns 0 or the first failure: CVM_E_TRUNCATED/FORMAT/TOO_LARGE
 * (structure), CVM_E_UNSUPPORTED (scheme, hash, type), CVM_E_POLICY (the key
 * may not sign quotes), CVM_E_SIGNATURE, CVM_E_MISMATCH (nonce), CVM_E_INVAL.
 * A 0 here says nothing about the PCRs: use cvm_tpm_quote_authenticate_pcrs, or
 * cvm_tpm_quote_check_pcrs next. It does not check the clock: a caller
 * that needs to notice reboots compares reset_count itself. */
CVM_API CVM_MUST_CHECK int cvm_tpm_quote_authenticate(const struct cvm_tpm_ak *ak, const uint8_t *attest,
                                                      size_t attest_len, const uint8_t *sig, size_t sig_len,
                                                      const uint8_t *nonce, size_t nonce_len,
                                                      struct cvm_report *rep, struct cvm_tpm_quote *out);

/* cvm_tpm_quote_check_pcrs compares the quoted PCR digest with the digest of
 * `pcrs` over the quoted selection, computed with the signature's hash (as
 * the TPM does). `q` must come from a successful
 * cvm_tpm_quote_authenticate. Returns 0, CVM_E_MISMATCH, CVM_E_INVAL (a
 * quoted PCR has no value in `pcrs`) or CVM_E_UNSUPPORTED. */
CVM_API CVM_MUST_CHECK int cvm_tpm_quote_check_pcrs(const struct cvm_tpm_quote *q,
                                                    const struct cvm_tpm_pcrs *pcrs, struct cvm_report *rep);

/* cvm_tpm_quote_pcrs_match is cvm_tpm_quote_check_pcrs without a report,
 * for searching, e.g. for the IMA log prefix a quote covers. */
CVM_API bool cvm_tpm_quote_pcrs_match(const struct cvm_tpm_quote *q, const struct cvm_tpm_pcrs *pcrs);

/* cvm_tpm_quote_authenticate_pcrs is cvm_tpm_quote_authenticate followed by
 * cvm_tpm_quote_check_pcrs: 0 only when the quote is authentic, fresh for
 * `nonce`, and `pcrs` are the quoted PCR values. Like every *_authenticate
 * function it applies no policy: which PCR values are acceptable, and who
 * vouches for the AK, are the caller's (cvm_evidence_verify binds the AK to
 * a TEE quote). */
CVM_API CVM_MUST_CHECK int cvm_tpm_quote_authenticate_pcrs(const struct cvm_tpm_ak *ak, const uint8_t *attest,
                                                           size_t attest_len, const uint8_t *sig,
                                                           size_t sig_len, const uint8_t *nonce,
                                                           size_t nonce_len, const struct cvm_tpm_pcrs *pcrs,
                                                           struct cvm_report *rep, struct cvm_tpm_quote *out);

/* ---- a TPM ------------------------------------------------------------- */

/* struct cvm_tpm is an open connection to a TPM. */
struct cvm_tpm;

/* cvm_tpm_open connects through the TCTI named by `tcti` in
 * tss2-tctildr's "name:config" form ("device:/dev/tpmrm0",
 * "swtpm:host=127.0.0.1,port=2321", "mssim:..."; NULL: tctildr's default).
 * It sends no TPM2_Startup (a kernel or swtpm --flags startup-clear has done
 * that). Returns 0, CVM_E_TPM (the TCTI or ESYS could not start; the reason
 * goes to `err`, which may be NULL) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_tpm_open(const char *tcti, struct cvm_tpm **out, char *err, size_t err_len);
CVM_API void cvm_tpm_close(struct cvm_tpm *t);
/* cvm_tpm_err returns the last TPM or TSS error of `t` as text
 * (tss2-rc's decoding plus the command that failed), or "" when none. */
CVM_API const char *cvm_tpm_err(const struct cvm_tpm *t);

/* cvm_tpm_pcr_read reads the values `sel` selects (TPM2_PCR_Read, repeated
 * until all are read; restarted when the TPM's PCR update counter moves
 * between two reads) into `out`, and the counter into `update_counter` (may
 * be NULL). Returns 0, CVM_E_TPM, CVM_E_UNSUPPORTED (a bank the TPM does not
 * have) or CVM_E_INVAL. */
CVM_API CVM_MUST_CHECK int cvm_tpm_pcr_read(struct cvm_tpm *t, const struct cvm_tpm_pcr_sel *sel,
                                            struct cvm_tpm_pcrs *out, uint32_t *update_counter);

/* The attestation key cvm_tpm_ak_ensure creates. Every AK is a restricted
 * signing key (fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth,
 * restricted, sign; empty auth and policy; nameAlg SHA-256) with a fixed
 * scheme; docs/cli/cvm-tpm.md lists the templates. */
enum cvm_tpm_ak_type {
	CVM_TPM_AK_ECC_P256 = 0, /* ECDSA with SHA-256 (the default) */
	CVM_TPM_AK_ECC_P384,     /* ECDSA with SHA-384 */
	CVM_TPM_AK_RSA_RSASSA,   /* RSA 2048, RSASSA-PKCS1-v1_5 with SHA-256 */
	CVM_TPM_AK_RSA_RSAPSS,   /* RSA 2048, RSASSA-PSS with SHA-256 */
};
/* Its parent, a primary key made again each time from a fixed template: the
 * EK (endorsement hierarchy, the TCG EK Credential Profile's ECC P-256
 * template L-2, used through a PolicySecret(endorsement) session; the
 * default) or an SRK (owner hierarchy, ECC P-256 storage key, empty auth).
 * A TPM obfuscates resetCount, restartCount and firmwareVersion in what a
 * key outside the endorsement and platform hierarchies signs, so only an AK
 * under the EK gives clock information a verifier can use. */
enum cvm_tpm_parent { CVM_TPM_PARENT_EK = 0, CVM_TPM_PARENT_SRK };

#define CVM_TPM_AK_HANDLE_DEFAULT 0x81000100u

struct cvm_tpm_ak_opts {
	uint32_t handle; /* persistent handle, 0x81000000..0x817fffff */
	enum cvm_tpm_ak_type type;
	bool type_set; /* false: accept any AK at `handle`; create `type` if none */
	enum cvm_tpm_parent parent;
};

/* cvm_tpm_ak_ensure returns the AK persisted at o->handle as a marshaled
 * TPM2B_PUBLIC (new buffer, caller frees). When the handle is empty it
 * creates the key under its parent and persists it (TPM2_EvictControl with
 * owner auth, which must be empty), setting *created. A key already there
 * must be an AK (CVM_E_POLICY otherwise) and, when o->type_set, of that
 * type (CVM_E_MISMATCH). Also CVM_E_TPM, CVM_E_INVAL, CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_tpm_ak_ensure(struct cvm_tpm *t, const struct cvm_tpm_ak_opts *o,
                                             uint8_t **pub, size_t *pub_len, bool *created);

/* cvm_tpm_quote_create has the AK at `ak_handle` quote the PCRs `sel`
 * selects with `nonce` as qualifying data (1 to CVM_TPM_DATA_MAX bytes),
 * with the AK's own scheme. It returns the TPMS_ATTEST bytes as the TPM
 * signed them and the marshaled TPMT_SIGNATURE, in new buffers the caller
 * frees. Returns 0, CVM_E_TPM, CVM_E_INVAL or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_tpm_quote_create(struct cvm_tpm *t, uint32_t ak_handle,
                                                const struct cvm_tpm_pcr_sel *sel, const uint8_t *nonce,
                                                size_t nonce_len, uint8_t **attest, size_t *attest_len,
                                                uint8_t **sig, size_t *sig_len);

/* ---- sealing a small secret to a TPM ------------------------------------ */

/* A sealed blob is cvmkit's own small format, read back with the bounded
 * reader (it comes from disk: untrusted):
 *   "cvmseal\n" (8 bytes) || u16be version (1) ||
 *   TPM2B_PUBLIC || TPM2B_PRIVATE (tss2-mu's marshalling), nothing after.
 * The object is a keyed-hash sealed data object (TPM2_Create with the secret
 * as its sensitive data; fixedTPM, fixedParent, userWithAuth, noDA; empty
 * auth, no policy, nameAlg SHA-256) under the owner hierarchy's SRK, which
 * TPM2_CreatePrimary makes again from a fixed template (ECC P-256 storage
 * key, cvm_tpm_parent_template's SRK) each time: the same TPM always gives
 * the same parent, so no persistent handle is used and nothing stays loaded
 * (every transient handle is flushed on every path). The TPM encrypts the
 * private part under the SRK's seed: only the TPM that sealed a blob (and
 * the owner hierarchy's seed it had; TPM2_Clear changes it) can unseal it.
 *
 * No PCR policy, by design: where cvm-kmsd runs, its identity is already
 * bound by the TEE's attestation, and the PCRs of a CVM's vTPM change with
 * every firmware or kernel update, which would lose the keys. Whoever can
 * send commands to the TPM can unseal (empty auth): sealing protects the
 * files at rest (a copied disk, a backup), not against code on the machine,
 * and not against whoever runs the TPM (a vTPM emulated by the host is the
 * host's). Commands that carry the secret (TPM2_Create, TPM2_Unseal) use a
 * session salted with the SRK with parameter encryption (AES-128-CFB), so
 * the secret does not cross the TCTI in the clear. tpm2-tss keeps copies of
 * a command's parameters in memory it frees without wiping (its command
 * buffer, ESYS's copy of TPM2_Create's inputs); cvm_tpm_seal and
 * cvm_tpm_unseal overwrite them with harmless commands before they return
 * (TPM2_StirRandom of zeros, a second TPM2_CreatePrimary of the SRK), which
 * unit.tpm_seal checks by searching the process's memory with tpm2-tss 3.2.
 * A secret of more than 124 bytes may leave its tail in that buffer. */
#define CVM_TPM_SEAL_SECRET_MAX 128 /* MAX_SYM_DATA of the TPM 2.0 reference code */
#define CVM_TPM_SEAL_BLOB_MAX 2048
#define CVM_TPM_SEAL_VERSION 1

/* cvm_tpm_seal seals the `len` bytes at `secret` (1 to
 * CVM_TPM_SEAL_SECRET_MAX) on `t` and writes the blob into a new buffer the
 * caller frees (*blob, *blob_len; not secret). On failure `err` (may be
 * NULL) says what failed. Returns 0, CVM_E_INVAL, CVM_E_TPM or
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_tpm_seal(struct cvm_tpm *t, const uint8_t *secret, size_t len, uint8_t **blob,
                                        size_t *blob_len, char *err, size_t err_len);
/* cvm_tpm_unseal parses `blob` (cvm_tpm_seal_blob_check's checks), loads it
 * under the re-created SRK and unseals it into a new secret (*out, freed
 * with cvm_secret_free); no other copy of the plaintext survives the call.
 * Returns 0, CVM_E_TRUNCATED, CVM_E_FORMAT, CVM_E_TOO_LARGE,
 * CVM_E_UNSUPPORTED (another version), CVM_E_TPM (the TPM refused: another
 * TPM, a changed owner seed, a damaged private part; `err` says which
 * command) or CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_tpm_unseal(struct cvm_tpm *t, const uint8_t *blob, size_t blob_len,
                                          struct cvm_secret **out, char *err, size_t err_len);
/* cvm_tpm_seal_blob_check checks the structure of a sealed blob without a
 * TPM: the magic, the version, a TPM2B_PUBLIC that is a sealed data object
 * of the template above, a TPM2B_PRIVATE that fits, nothing left over. It
 * checks no integrity: only the TPM can (TPM2_Load). Returns 0,
 * CVM_E_TRUNCATED, CVM_E_FORMAT, CVM_E_TOO_LARGE or CVM_E_UNSUPPORTED. */
CVM_API CVM_MUST_CHECK int cvm_tpm_seal_blob_check(const uint8_t *blob, size_t blob_len);

#endif

/* Test helpers for attested TLS (tests/unit/test_tls.c,
 * tests/common/ratls_server.c, bench/bench_ratls.c): an RA-TLS identity
 * (key and certificate) from the simulated TEE, the fresh attestation's
 * answer, and a verifier anchored in the simulator's mock roots. Public API
 * only. */
#ifndef CVM_TESTS_RATLS_IDENT_H
#define CVM_TESTS_RATLS_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tee.h>

struct ratls_ident_opts {
	const char *sim_dir; /* made by cvm_tee_sim_init (with SNP for platform SNP) */
	enum cvm_tee_platform platform;
	enum cvm_ratls_profile profile;
	bool client;                   /* clientAuth instead of serverAuth */
	int64_t not_before, not_after; /* 0, 0: now - 60 .. now + 12 h */
	const struct cvm_p256_keypair
	    *bind; /* NULL: the cert's own key; else quote over this key (dstack 1.8) */
};

struct ratls_ident {
	struct cvm_tee_dev *tee;
	enum cvm_tee_platform platform;
	struct cvm_p256_keypair *key;
	char *chain_pem; /* the certificate (self-signed leaf) */
	size_t chain_len;
};

/* ratls_ident_make makes a fresh key and its RA-TLS certificate quoted by
 * the simulator. Returns 0 or a CVM_E_* (CVM_E_UNSUPPORTED while lib/ratls
 * is a placeholder); `why` says which step failed. */
int ratls_ident_make(const struct ratls_ident_opts *o, struct ratls_ident *out, char *why, size_t why_len);
void ratls_ident_cleanup(struct ratls_ident *id);

/* ratls_fresh_answer quotes over cvm_ratls_fresh_report_data(bound) and
 * writes the VersionedAttestation V0 into *va (malloc'd). */
int ratls_fresh_answer(struct ratls_ident *id, const uint8_t bound[64], uint8_t **va, size_t *va_len);

/* ratls_sim_verifier makes a verifier anchored in the simulator's mock
 * Intel root and AMD ARK, with its collateral, the default policy and
 * `cache_entries` (0: the default). */
int ratls_sim_verifier(const char *sim_dir, unsigned cache_entries, int64_t at,
                       struct cvm_ratls_verifier **out, char *why, size_t why_len);

/* ratls_sim_init makes a simulated platform (TDX and SNP) in `dir`. */
int ratls_sim_init(const char *dir, int64_t now);

/* ratls_ident_platform and ratls_ident_profile read the --platform (tdx|snp) or --profile
 * (dstack|cosmian) value `arg` into `o`; false for anything else. */
bool ratls_ident_platform(const char *arg, struct ratls_ident_opts *o);
bool ratls_ident_profile(const char *arg, struct ratls_ident_opts *o);

#endif

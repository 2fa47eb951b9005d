/* DCAP quote authentication in Intel's order:
 *   root CA -> root CA CRL -> PCK CRL issuer chain -> PCK CRL
 *   -> TCB info (issuer chain, signature, dates) -> QE identity (same)
 *   -> PCK chain of the quote (chain, CRLs, SGX extension)
 *   -> QE report signature -> QE report binds the attestation key
 *   -> QE identity -> quote signature -> TCB level and status.
 * Collateral checks live in cvm_dcap_collateral_authenticate (done once for
 * the warm path); everything that depends on the quote in
 * cvm_dcap_quote_authenticate. Every step goes to the report, with the cause
 * of a failure.
 *
 * Every chain has the one shape Intel gives it, and each of its certificates
 * the role Intel gives that place (Intel's QVL, TCBSigningChain,
 * PckCertVerifier and PckCrlVerifier, checks the same roles): the TCB info
 * and QE identity are signed by the TCB Signing certificate, an end entity
 * the root issued; a quote's PCK certificate is an end entity issued by a
 * PCK Platform or Processor CA, which the root issued; the PCK CRL is that
 * CA's. A key anywhere else under the root, a PCK leaf's for one, signs
 * nothing that rates a platform or admits a QE. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>

#include "crypto/crypto_lib.h"
#include "dcap_int.h"

struct cvm_dcap_verified {
	struct cvm_cert *root;
	struct cvm_crl *root_crl;
	struct cvm_crl *pck_crl;
	struct cvm_cert *pck_crl_issuer;
	struct cvm_tcb_info *tcb_info;
	struct cvm_qe_identity *qe_identity;
	int64_t valid_from;  /* latest notBefore / thisUpdate / issueDate used */
	int64_t valid_until; /* earliest notAfter / nextUpdate used */
	/* The PCK chain of the last quote, by the SHA-256 of its PEM bytes: a
	 * platform sends the same chain with every quote. */
	bool pck_cached;
	uint8_t pck_hash[32];
	struct cvm_cert *pck_leaf;
	struct cvm_pck_info pck;
	int64_t pck_valid_from;
	int64_t pck_valid_until;
	/* Certificates parsed once per verification (and, warm, across quotes),
	 * and the (child, issuer) signatures already checked among them:
	 * Intel's chains repeat the root, the TCB signer and the PCK CA. */
	struct cvm_cert_pool *pool;
	struct {
		const struct cvm_cert *child, *issuer;
	} checked[2 * CVM_CERT_POOL_MAX];
	size_t checked_count;
	/* Warm path: the QE report a platform sends with every quote (by the
	 * SHA-256 of report, signature and PCK chain) once its signature
	 * verified, and the parsed attestation key of the last quote. Both are
	 * keyed by exact bytes: a different report or key is checked afresh. */
	bool qe_cached;
	uint8_t qe_hash[32];
	bool ak_cached;
	uint8_t ak_bytes[64];
	struct cvm_p256_key *ak;
};

/* qe_report_signature_check verifies the QE report signature by the PCK
 * key, or finds the very same bytes verified before under the same chain. */
static int qe_report_signature_check(struct cvm_dcap_verified *v, const struct cvm_quote *q)
{
	uint8_t buf[CVM_SGX_REPORT_LEN + 64 + 32], hash[32];
	int r;

	memcpy(buf, q->qe_report_raw.p, CVM_SGX_REPORT_LEN);
	memcpy(buf + CVM_SGX_REPORT_LEN, q->qe_report_sig, 64);
	memcpy(buf + CVM_SGX_REPORT_LEN + 64, v->pck_hash, 32);
	cvm_sha256(buf, sizeof(buf), hash);
	if (v->qe_cached && memcmp(hash, v->qe_hash, sizeof(hash)) == 0)
		return CVM_OK;
	r = cvm_cert_verify_p256_kept(v->pck_leaf, q->qe_report_raw.p, q->qe_report_raw.len,
	                              q->qe_report_sig);
	v->qe_cached = r == CVM_OK;
	if (r == CVM_OK)
		memcpy(v->qe_hash, hash, sizeof(hash));
	return r;
}

/* attest_key_get parses the quote's attestation key, reusing the last one
 * when the bytes are the same (a QE keeps its key across quotes). */
static int attest_key_get(struct cvm_dcap_verified *v, const uint8_t xy[64], const struct cvm_p256_key **out)
{
	struct cvm_p256_key *k = NULL;
	int r;

	*out = NULL;
	if (v->ak_cached && memcmp(v->ak_bytes, xy, 64) == 0) {
		*out = v->ak;
		return CVM_OK;
	}
	r = cvm_p256_key_new(xy, &k);
	if (r != CVM_OK)
		return r;
	cvm_p256_key_free(v->ak);
	v->ak = k;
	memcpy(v->ak_bytes, xy, 64);
	v->ak_cached = true;
	*out = k;
	return CVM_OK;
}

/* issued_by checks `child` against `issuer` once per pair: a signature over
 * the same bytes under the same key does not change with time. Only pairs
 * the pool keeps alive are remembered (pointers are the key). */
static int issued_by(struct cvm_dcap_verified *v, const struct cvm_cert *child, const struct cvm_cert *issuer)
{
	bool memo = cvm_cert_pool_holds(v->pool, child) && cvm_cert_pool_holds(v->pool, issuer);
	int r;

	for (size_t i = 0; memo && i < v->checked_count; i++)
		if (v->checked[i].child == child && v->checked[i].issuer == issuer)
			return CVM_OK;
	r = cvm_cert_check_issued_kept(child, issuer);
	if (r == CVM_OK && memo && v->checked_count < sizeof(v->checked) / sizeof(v->checked[0])) {
		v->checked[v->checked_count].child = child;
		v->checked[v->checked_count].issuer = issuer;
		v->checked_count++;
	}
	return r;
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t == INT64_MAX || gmtime_r(&tt, &tm) == NULL) {
		(void)snprintf(buf, len, "never");
		return;
	}
	(void)strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* window_check reports whether `at` lies in [from, until]. */
static int window_check(struct cvm_report *rep, const char *step, const char *what, int64_t from,
                        int64_t until, int64_t at)
{
	char a[32], b[32], c[32];

	fmt_time(from, a, sizeof(a));
	fmt_time(until, b, sizeof(b));
	fmt_time(at, c, sizeof(c));
	if (at < from) {
		cvm_report_add(rep, step, false, "%s is not yet valid at %s (valid from %s)", what, c, a);
		return CVM_E_EXPIRED;
	}
	if (at > until) {
		cvm_report_add(rep, step, false, "%s expired at %s (verification time %s)", what, b, c);
		return CVM_E_EXPIRED;
	}
	return CVM_OK;
}

static void narrow(int64_t *from, int64_t *until, int64_t f, int64_t u)
{
	if (f > *from)
		*from = f;
	if (u < *until)
		*until = u;
}

/* Every certificate of Intel's DCAP PKI is named CN=<role>, O=Intel
 * Corporation, L=Santa Clara, ST=CA, C=US. */
#define INTEL_NAME_REST "O = Intel Corporation, L = Santa Clara, ST = CA, C = US"

/* struct role is what one place of one of Intel's chains must hold. */
struct role {
	const char *what;   /* for messages */
	const char *cn[2];  /* the CNs Intel gives it (the second may be NULL) */
	bool is_ca;         /* a CA (basicConstraints CA:TRUE), or an end entity */
	uint32_t ku_needed; /* key usage bits it must have */
};

static const struct role role_tcb_signer = {
    "Intel's TCB Signing certificate", {"Intel SGX TCB Signing", NULL}, false, CVM_KU_DIGITAL_SIGNATURE};
static const struct role role_pck_ca = {"a PCK CA",
                                        {"Intel SGX PCK Platform CA", "Intel SGX PCK Processor CA"},
                                        true,
                                        CVM_KU_KEY_CERT_SIGN | CVM_KU_CRL_SIGN};
static const struct role role_pck = {
    "a PCK certificate", {"Intel SGX PCK Certificate", NULL}, false, CVM_KU_DIGITAL_SIGNATURE};

static bool intel_named(const struct cvm_cert *c, const char *cn)
{
	const struct cvm_name_attr name[] = {
	    {"CN", cn}, {"O", "Intel Corporation"}, {"L", "Santa Clara"}, {"ST", "CA"}, {"C", "US"}};

	return cn != NULL && cvm_cert_subject_is(c, name, sizeof(name) / sizeof(name[0]));
}

static void ku_text(uint32_t ku, char *buf, size_t len)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
	    {CVM_KU_DIGITAL_SIGNATURE, "digitalSignature"},
	    {CVM_KU_NON_REPUDIATION, "nonRepudiation"},
	    {CVM_KU_KEY_ENCIPHERMENT, "keyEncipherment"},
	    {CVM_KU_DATA_ENCIPHERMENT, "dataEncipherment"},
	    {CVM_KU_KEY_AGREEMENT, "keyAgreement"},
	    {CVM_KU_KEY_CERT_SIGN, "keyCertSign"},
	    {CVM_KU_CRL_SIGN, "cRLSign"},
	    {CVM_KU_ENCIPHER_ONLY, "encipherOnly"},
	    {CVM_KU_DECIPHER_ONLY, "decipherOnly"},
	};
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int n;

		if ((ku & names[i].bit) == 0)
			continue;
		n = snprintf(buf + at, len - at, "%s%s", at != 0 ? ", " : "", names[i].name);
		if (n < 0 || (size_t)n >= len - at)
			return;
		at += (size_t)n;
	}
	if (at == 0)
		(void)snprintf(buf, len, "none");
}

/* role_check checks that `c` (described as `what` in messages) is named,
 * flagged and allowed to do what `role` says: one of the role's names with
 * the rest of Intel's name, a CA or an end entity, a keyUsage extension with
 * the role's bits, and for an end entity no certificate or CRL signing. */
static int role_check(const struct cvm_cert *c, const struct role *role, const char *what,
                      struct cvm_report *rep, const char *step)
{
	uint32_t ku = 0;
	char have[160], want[160];

	if (!intel_named(c, role->cn[0]) && !intel_named(c, role->cn[1])) {
		cvm_report_add(rep, step, false, "%s is not %s, named CN = %s%s%s, " INTEL_NAME_REST, what,
		               role->what, role->cn[0], role->cn[1] != NULL ? " (or CN = " : "",
		               role->cn[1] != NULL ? role->cn[1] : "");
		return CVM_E_CHAIN;
	}
	if (role->is_ca ? !cvm_cert_is_ca(c) : cvm_cert_claims_ca(c)) {
		cvm_report_add(rep, step, false,
		               role->is_ca ? "%s is not a CA that may sign certificates, but %s is one"
		                           : "%s is a CA (basicConstraints CA:TRUE), but %s is an end entity",
		               what, role->what);
		return CVM_E_CHAIN;
	}
	ku_text(role->ku_needed, want, sizeof(want));
	if (!cvm_cert_key_usage(c, &ku)) {
		cvm_report_add(rep, step, false, "%s has no key usage extension; %s has one allowing %s",
		               what, role->what, want);
		return CVM_E_CHAIN;
	}
	if ((ku & role->ku_needed) != role->ku_needed ||
	    (!role->is_ca && (ku & (CVM_KU_KEY_CERT_SIGN | CVM_KU_CRL_SIGN)) != 0)) {
		ku_text(ku, have, sizeof(have));
		cvm_report_add(rep, step, false, "%s has key usage %s; %s needs %s%s", what, have, role->what,
		               want, role->is_ca ? "" : " and signs no certificate or CRL");
		return CVM_E_CHAIN;
	}
	return CVM_OK;
}

/* chain_authenticate checks that `certs` is the chain `chain_what` names in
 * Intel's shape: certificates in the roles `roles` (roles[0] for certs[0],
 * the last one's issued by the root), then the root itself, byte for byte
 * the trust anchor. Each certificate must be valid at `at`, carry no unknown
 * critical extension, hold its role (role_check), and be issued and signed
 * by the next; one the root issued must not be on the root CA CRL (the PCK
 * certificate's own CRL is the caller's to check). It goes from the root
 * down, so that every key it verifies with is already authenticated (the
 * "kept" verifications of lib/crypto); a chain that verified keeps its
 * certificates' parsed form for later parses of the same bytes. */
static int chain_authenticate(struct cvm_dcap_verified *v, struct cvm_report *rep, const char *step,
                              const char *chain_what, struct cvm_cert *const *certs, size_t n,
                              const struct role *const *roles, size_t nroles, int64_t at, int64_t *from,
                              int64_t *until)
{
	const struct cvm_cert *root = v->root;
	const struct cvm_crl *root_crl = v->root_crl;
	char subj[256], what[320];
	int r;

	if (n != nroles + 1) {
		cvm_report_add(rep, step, false,
		               "the %s holds %zu certificate%s; Intel's holds %s%s, then the root CA",
		               chain_what, n, n == 1 ? "" : "s", roles[0]->what,
		               nroles > 1 ? " and the CA that issued it" : "");
		return CVM_E_CHAIN;
	}
	if (!cvm_cert_equal(certs[n - 1], root)) {
		cvm_cert_subject(certs[n - 1], subj, sizeof(subj));
		cvm_report_add(rep, step, false,
		               "the %s ends in '%s', which is not the trust anchor (the root CA)", chain_what,
		               subj);
		return CVM_E_CHAIN;
	}
	for (size_t i = nroles; i-- > 0;) {
		const struct cvm_cert *issuer = i + 1 < nroles ? certs[i + 1] : root;

		cvm_cert_subject(certs[i], subj, sizeof(subj));
		(void)snprintf(what, sizeof(what), "certificate '%s'", subj);
		r = window_check(rep, step, what, cvm_cert_not_before(certs[i]), cvm_cert_not_after(certs[i]),
		                 at);
		if (r != CVM_OK)
			return r;
		narrow(from, until, cvm_cert_not_before(certs[i]), cvm_cert_not_after(certs[i]));
		if (cvm_cert_has_unknown_critical(certs[i])) {
			cvm_report_add(rep, step, false, "%s has an unknown critical extension", what);
			return CVM_E_CHAIN;
		}
		r = role_check(certs[i], roles[i], what, rep, step);
		if (r != CVM_OK)
			return r;
		r = issued_by(v, certs[i], issuer);
		if (r != CVM_OK) {
			char iss[256];

			cvm_cert_subject(issuer, iss, sizeof(iss));
			cvm_report_add(rep, step, false, "%s is not %s by %s'%s'", what,
			               r == CVM_E_SIGNATURE ? "validly signed" : "issued",
			               issuer == root ? "the root CA " : "", iss);
			return r;
		}
		if (issuer == root && root_crl != NULL && cvm_crl_revokes(root_crl, certs[i])) {
			char serial[80];

			cvm_cert_serial(certs[i], serial, sizeof(serial));
			cvm_report_add(rep, step, false, "%s (serial %s) is revoked by the root CA CRL", what,
			               serial);
			return CVM_E_REVOKED;
		}
	}
	for (size_t i = 0; i < nroles; i++)
		cvm_cert_cache_keep(certs[i]);
	return CVM_OK;
}

static int crl_load(struct cvm_report *rep, const char *step, const char *what, const uint8_t *buf,
                    size_t len, const struct cvm_cert *issuer, int64_t at, struct cvm_crl **out,
                    int64_t *from, int64_t *until)
{
	struct cvm_crl *crl = NULL;
	char iss[256];
	int r;

	*out = NULL;
	r = cvm_crl_parse(buf, len, &crl);
	if (r != CVM_OK) {
		cvm_report_add(rep, step, false, "%s is not a DER or PEM CRL", what);
		return r;
	}
	r = cvm_crl_check_issued_kept(crl, issuer);
	if (r != CVM_OK) {
		cvm_cert_subject(issuer, iss, sizeof(iss));
		cvm_report_add(rep, step, false, "%s is not %s by '%s'", what,
		               r == CVM_E_SIGNATURE ? "validly signed" : "issued", iss);
		goto out;
	}
	r = window_check(rep, step, what, cvm_crl_this_update(crl), cvm_crl_next_update(crl), at);
	if (r != CVM_OK)
		goto out;
	narrow(from, until, cvm_crl_this_update(crl), cvm_crl_next_update(crl));
	cvm_crl_cache_keep(crl);
	*out = crl;
	crl = NULL; /* transferred */
out:
	cvm_crl_free(crl);
	return r;
}

/* signed_json_authenticate checks a TCB info or QE identity: its issuer
 * chain (Intel's TCB Signing certificate, then the root), the signature over
 * the exact signed bytes, and its dates. */
static int signed_json_authenticate(struct cvm_dcap_verified *v, struct cvm_report *rep, const char *step,
                                    const char *what, const char *chain_what, const uint8_t *chain_pem,
                                    size_t chain_len, const struct cvm_rd *span, const uint8_t sig[64],
                                    int64_t issued, int64_t next_update, int64_t at)
{
	static const struct role *const roles[] = {&role_tcb_signer};
	struct cvm_cert **certs = NULL;
	size_t n = 0;
	char d1[32], d2[32];
	int r;

	r = cvm_cert_pool_parse_pem(v->pool, chain_pem, chain_len, &certs, &n);
	if (r != CVM_OK) {
		cvm_report_add(rep, step, false, "the %s issuer chain is not a PEM certificate chain", what);
		goto out;
	}
	r = chain_authenticate(v, rep, step, chain_what, certs, n, roles, 1, at, &v->valid_from,
	                       &v->valid_until);
	if (r != CVM_OK)
		goto out;
	r = cvm_cert_verify_p256_kept(certs[0], span->p, span->len, sig);
	if (r != CVM_OK) {
		cvm_report_add(rep, step, false,
		               "the %s signature does not verify under the TCB Signing certificate", what);
		r = CVM_E_SIGNATURE;
		goto out;
	}
	r = window_check(rep, step, what, issued, next_update, at);
	if (r != CVM_OK)
		goto out;
	narrow(&v->valid_from, &v->valid_until, issued, next_update);
	fmt_time(issued, d1, sizeof(d1));
	fmt_time(next_update, d2, sizeof(d2));
	cvm_report_add(rep, step, true,
	               "%s signed by the TCB Signing certificate the root issued, issued %s, next update %s",
	               what, d1, d2);
out:
	cvm_certs_free(certs, n);
	return r;
}

/* The built-in root is a constant: parsed once per process. */
static struct cvm_cert *builtin_root_cert;
static pthread_once_t builtin_root_once = PTHREAD_ONCE_INIT;

static void builtin_root_init(void)
{
	if (cvm_cert_parse(cvm_intel_sgx_root_ca_der, cvm_intel_sgx_root_ca_der_len, &builtin_root_cert) !=
	    CVM_OK)
		builtin_root_cert = NULL;
}

static int builtin_root(struct cvm_cert **out)
{
	(void)pthread_once(&builtin_root_once, builtin_root_init);
	*out = cvm_cert_dup(builtin_root_cert);
	return *out != NULL ? CVM_OK : CVM_E_INTERNAL;
}

int cvm_dcap_collateral_authenticate(const struct cvm_dcap_collateral *c, const uint8_t *root_der,
                                     size_t root_der_len, int64_t at, struct cvm_report *rep,
                                     struct cvm_dcap_verified **out)
{
	static const struct role *const pck_crl_roles[] = {&role_pck_ca};
	struct cvm_dcap_verified *v = NULL;
	struct cvm_cert **chain = NULL;
	size_t chain_n = 0;
	struct cvm_rd span;
	uint8_t sig[64];
	char subj[256];
	int r;

	*out = NULL;
	if (c == NULL)
		return CVM_E_INVAL;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return CVM_E_NOMEM;
	v->valid_from = INT64_MIN;
	v->valid_until = INT64_MAX;
	r = cvm_cert_pool_new(&v->pool);
	if (r != CVM_OK)
		goto out;

	/* Root: built in, or given explicitly by the caller. A root file that
	 * came with the collateral is untrusted and never used as an anchor. */
	if (root_der == NULL) {
		root_der = cvm_intel_sgx_root_ca_der;
		root_der_len = cvm_intel_sgx_root_ca_der_len;
	}
	if (root_der == cvm_intel_sgx_root_ca_der)
		r = builtin_root(&v->root);
	else
		r = cvm_cert_parse(root_der, root_der_len, &v->root);
	if (r != CVM_OK) {
		cvm_report_add(rep, "root", false, "the trust anchor is not a DER or PEM certificate");
		goto out;
	}
	cvm_cert_pool_add(v->pool, v->root);
	cvm_cert_subject(v->root, subj, sizeof(subj));
	r = window_check(rep, "root", "the root CA", cvm_cert_not_before(v->root),
	                 cvm_cert_not_after(v->root), at);
	if (r != CVM_OK)
		goto out;
	/* The anchor's own window bounds every later (warm) use, as it bounds
	 * this one: a root given explicitly may expire before its collateral. */
	narrow(&v->valid_from, &v->valid_until, cvm_cert_not_before(v->root), cvm_cert_not_after(v->root));
	cvm_report_add(rep, "root", true, "trust anchor '%s' (%s)", subj,
	               root_der == cvm_intel_sgx_root_ca_der ? "built in" : "given explicitly");

	r = crl_load(rep, "root_ca_crl", "the root CA CRL", c->root_ca_crl, c->root_ca_crl_len, v->root, at,
	             &v->root_crl, &v->valid_from, &v->valid_until);
	if (r != CVM_OK)
		goto out;
	if (cvm_crl_revokes(v->root_crl, v->root)) {
		cvm_report_add(rep, "root_ca_crl", false, "the root CA CRL revokes the root CA itself");
		r = CVM_E_REVOKED;
		goto out;
	}
	cvm_report_add(rep, "root_ca_crl", true, "signed by the root, current");

	r = cvm_cert_pool_parse_pem(v->pool, c->pck_crl_issuer_chain, c->pck_crl_issuer_chain_len, &chain,
	                            &chain_n);
	if (r != CVM_OK) {
		cvm_report_add(rep, "pck_crl", false,
		               "the PCK CRL issuer chain is not a PEM certificate chain");
		goto out;
	}
	r = chain_authenticate(v, rep, "pck_crl", "PCK CRL issuer chain", chain, chain_n, pck_crl_roles, 1,
	                       at, &v->valid_from, &v->valid_until);
	if (r != CVM_OK)
		goto out;
	v->pck_crl_issuer = cvm_cert_dup(chain[0]);
	r = crl_load(rep, "pck_crl", "the PCK CRL", c->pck_crl, c->pck_crl_len, v->pck_crl_issuer, at,
	             &v->pck_crl, &v->valid_from, &v->valid_until);
	if (r != CVM_OK)
		goto out;
	cvm_cert_subject(v->pck_crl_issuer, subj, sizeof(subj));
	cvm_report_add(rep, "pck_crl", true, "signed by '%s', current", subj);

	r = cvm_tcb_info_parse(c->tcb_info, c->tcb_info_len, &v->tcb_info, &span, sig);
	if (r != CVM_OK) {
		cvm_report_add(rep, "tcb_info", false, "tcb_info.json cannot be used: %s", cvm_strerror(r));
		goto out;
	}
	if (v->tcb_info->tcb_type != 0) {
		cvm_report_add(
		    rep, "tcb_info", false,
		    "TCB info tcbType %u is not supported (only 0: components compared one by one)",
		    v->tcb_info->tcb_type);
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	r = signed_json_authenticate(v, rep, "tcb_info", "TCB info", "TCB info issuer chain",
	                             c->tcb_info_issuer_chain, c->tcb_info_issuer_chain_len, &span, sig,
	                             v->tcb_info->issue_date, v->tcb_info->next_update, at);
	if (r != CVM_OK)
		goto out;
	cvm_tcb_info_keep(v->tcb_info, c->tcb_info, c->tcb_info_len, &span, sig);

	r = cvm_qe_identity_parse(c->qe_identity, c->qe_identity_len, &v->qe_identity, &span, sig);
	if (r != CVM_OK) {
		cvm_report_add(rep, "qe_identity", false, "qe_identity.json cannot be used: %s",
		               cvm_strerror(r));
		goto out;
	}
	r = signed_json_authenticate(v, rep, "qe_identity", "QE identity", "QE identity issuer chain",
	                             c->qe_identity_issuer_chain, c->qe_identity_issuer_chain_len, &span, sig,
	                             v->qe_identity->issue_date, v->qe_identity->next_update, at);
	if (r != CVM_OK)
		goto out;
	cvm_qe_identity_keep(v->qe_identity, c->qe_identity, c->qe_identity_len, &span, sig);

	*out = v;
	v = NULL; /* transferred */
out:
	cvm_certs_free(chain, chain_n);
	cvm_dcap_verified_free(v);
	return r;
}

/* root_setup makes `v` ready to check items under the anchor `root_der`
 * (NULL: the built-in root): the pool, the root, its window. */
static int root_setup(struct cvm_dcap_verified *v, const uint8_t *root_der, size_t root_der_len, int64_t at,
                      struct cvm_report *rep)
{
	char subj[256];
	bool builtin = root_der == NULL || root_der == cvm_intel_sgx_root_ca_der;
	int r;

	v->valid_from = INT64_MIN;
	v->valid_until = INT64_MAX;
	r = cvm_cert_pool_new(&v->pool);
	if (r != CVM_OK)
		return r;
	if (builtin)
		r = builtin_root(&v->root);
	else
		r = cvm_cert_parse(root_der, root_der_len, &v->root);
	if (r != CVM_OK) {
		cvm_report_add(rep, "root", false, "the trust anchor is not a DER or PEM certificate");
		return r;
	}
	cvm_cert_pool_add(v->pool, v->root);
	r = window_check(rep, "root", "the root CA", cvm_cert_not_before(v->root),
	                 cvm_cert_not_after(v->root), at);
	if (r != CVM_OK)
		return r;
	narrow(&v->valid_from, &v->valid_until, cvm_cert_not_before(v->root), cvm_cert_not_after(v->root));
	cvm_cert_subject(v->root, subj, sizeof(subj));
	cvm_report_add(rep, "root", true, "trust anchor '%s' (%s)", subj,
	               builtin ? "built in" : "given explicitly");
	return CVM_OK;
}

static bool is_platform_ca(const struct cvm_cert *c)
{
	return intel_named(c, "Intel SGX PCK Platform CA");
}

/* item_pck_authenticate checks a PCK CRL (`crl` true) or a PCK certificate
 * against the PCK CA chain `chain_pem`. */
static int item_pck_authenticate(struct cvm_dcap_verified *v, bool crl, const uint8_t *body, size_t len,
                                 const uint8_t *chain_pem, size_t chain_len, int64_t at,
                                 struct cvm_report *rep, struct cvm_dcap_item_info *info)
{
	static const struct role *const ca_roles[] = {&role_pck_ca};
	static const struct role *const cert_roles[] = {&role_pck, &role_pck_ca};
	struct cvm_cert **chain = NULL, **leaf = NULL, *all[3];
	size_t chain_n = 0, leaf_n = 0;
	struct cvm_crl *c = NULL;
	struct cvm_pck_info pck;
	struct cvm_rd ext;
	const char *step = crl ? "pck_crl" : "pck_cert";
	int r;

	r = cvm_cert_pool_parse_pem(v->pool, chain_pem, chain_len, &chain, &chain_n);
	if (r != CVM_OK) {
		cvm_report_add(rep, step, false, "the %s issuer chain is not a PEM certificate chain",
		               crl ? "PCK CRL" : "PCK certificate");
		goto out;
	}
	if (crl) {
		r = chain_authenticate(v, rep, step, "PCK CRL issuer chain", chain, chain_n, ca_roles, 1, at,
		                       &v->valid_from, &v->valid_until);
		if (r != CVM_OK)
			goto out;
		r = crl_load(rep, step, "the PCK CRL", body, len, chain[0], at, &c, &v->valid_from,
		             &v->valid_until);
		if (r != CVM_OK)
			goto out;
		info->issued = cvm_crl_this_update(c);
		info->next_update = cvm_crl_next_update(c);
		info->ca_platform = is_platform_ca(chain[0]);
		cvm_report_add(rep, step, true, "signed by the PCK CA of its chain, which the root issued");
		goto out;
	}
	r = cvm_cert_pool_parse_pem(v->pool, body, len, &leaf, &leaf_n);
	if (r != CVM_OK || leaf_n != 1) {
		cvm_report_add(rep, step, false, "the PCK certificate is not one PEM certificate");
		r = r != CVM_OK ? r : CVM_E_FORMAT;
		goto out;
	}
	/* Intel's PCK certificate chain header holds the PCK CA and the root. */
	if (chain_n != 2) {
		cvm_report_add(
		    rep, step, false,
		    "the PCK certificate issuer chain holds %zu certificates; Intel's holds the PCK CA, "
		    "then the root CA",
		    chain_n);
		r = CVM_E_CHAIN;
		goto out;
	}
	all[0] = leaf[0];
	all[1] = chain[0];
	all[2] = chain[1];
	r = chain_authenticate(v, rep, step, "PCK certificate chain", all, 3, cert_roles, 2, at,
	                       &v->valid_from, &v->valid_until);
	if (r != CVM_OK)
		goto out;
	r = cvm_cert_ext(leaf[0], CVM_SGX_EXT_OID, &ext);
	if (r == CVM_OK)
		r = cvm_pck_info_parse(&ext, &pck);
	if (r != CVM_OK) {
		cvm_report_add(rep, step, false, "the PCK certificate has no valid SGX extension");
		goto out;
	}
	memcpy(info->fmspc, pck.fmspc, sizeof(info->fmspc));
	info->issued = cvm_cert_not_before(leaf[0]);
	info->next_update = cvm_cert_not_after(leaf[0]);
	info->ca_platform = is_platform_ca(chain[0]);
	cvm_report_add(rep, step, true,
	               "PCK certificate issued by the PCK CA of its chain, which the root issued");
out:
	cvm_crl_free(c);
	cvm_certs_free(leaf, leaf_n);
	cvm_certs_free(chain, chain_n);
	return r;
}

int cvm_dcap_item_authenticate(enum cvm_dcap_item_kind kind, const uint8_t *body, size_t len,
                               const uint8_t *chain_pem, size_t chain_len, const uint8_t *root_crl,
                               size_t root_crl_len, const uint8_t *root_der, size_t root_der_len, int64_t at,
                               struct cvm_report *rep, struct cvm_dcap_item_info *out)
{
	struct cvm_dcap_item_info info;
	struct cvm_dcap_verified *v = NULL;
	struct cvm_crl *own_crl = NULL;
	struct cvm_rd span;
	uint8_t sig[64];
	int r;

	memset(&info, 0, sizeof(info));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (body == NULL || len == 0 || (kind != CVM_DCAP_ITEM_ROOT_CRL && chain_pem == NULL))
		return CVM_E_INVAL;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return CVM_E_NOMEM;
	r = root_setup(v, root_der, root_der_len, at, rep);
	if (r != CVM_OK)
		goto out;
	if (kind == CVM_DCAP_ITEM_ROOT_CRL || root_crl != NULL) {
		const uint8_t *crl = kind == CVM_DCAP_ITEM_ROOT_CRL ? body : root_crl;
		size_t crl_len = kind == CVM_DCAP_ITEM_ROOT_CRL ? len : root_crl_len;

		r = crl_load(rep, "root_ca_crl", "the root CA CRL", crl, crl_len, v->root, at, &own_crl,
		             &v->valid_from, &v->valid_until);
		if (r != CVM_OK)
			goto out;
		if (cvm_crl_revokes(own_crl, v->root)) {
			cvm_report_add(rep, "root_ca_crl", false,
			               "the root CA CRL revokes the root CA itself");
			r = CVM_E_REVOKED;
			goto out;
		}
		v->root_crl = own_crl;
		own_crl = NULL; /* transferred */
		if (kind == CVM_DCAP_ITEM_ROOT_CRL) {
			info.issued = cvm_crl_this_update(v->root_crl);
			info.next_update = cvm_crl_next_update(v->root_crl);
			cvm_report_add(rep, "root_ca_crl", true, "signed by the root, current");
		}
	}
	switch (kind) {
	case CVM_DCAP_ITEM_ROOT_CRL:
		break;
	case CVM_DCAP_ITEM_TCB_INFO:
		r = cvm_tcb_info_parse(body, len, &v->tcb_info, &span, sig);
		if (r != CVM_OK) {
			cvm_report_add(rep, "tcb_info", false, "the TCB info cannot be used: %s",
			               cvm_strerror(r));
			goto out;
		}
		r = signed_json_authenticate(v, rep, "tcb_info", "TCB info", "TCB info issuer chain",
		                             chain_pem, chain_len, &span, sig, v->tcb_info->issue_date,
		                             v->tcb_info->next_update, at);
		if (r != CVM_OK)
			goto out;
		info.issued = v->tcb_info->issue_date;
		info.next_update = v->tcb_info->next_update;
		info.tee = v->tcb_info->tee;
		memcpy(info.fmspc, v->tcb_info->fmspc, sizeof(info.fmspc));
		break;
	case CVM_DCAP_ITEM_QE_IDENTITY:
		r = cvm_qe_identity_parse(body, len, &v->qe_identity, &span, sig);
		if (r != CVM_OK) {
			cvm_report_add(rep, "qe_identity", false, "the enclave identity cannot be used: %s",
			               cvm_strerror(r));
			goto out;
		}
		r = signed_json_authenticate(
		    v, rep, "qe_identity", "enclave identity", "enclave identity issuer chain", chain_pem,
		    chain_len, &span, sig, v->qe_identity->issue_date, v->qe_identity->next_update, at);
		if (r != CVM_OK)
			goto out;
		info.issued = v->qe_identity->issue_date;
		info.next_update = v->qe_identity->next_update;
		(void)snprintf(info.id, sizeof(info.id), "%s", v->qe_identity->id);
		break;
	case CVM_DCAP_ITEM_PCK_CRL:
	case CVM_DCAP_ITEM_PCK_CERT:
		r = item_pck_authenticate(v, kind == CVM_DCAP_ITEM_PCK_CRL, body, len, chain_pem, chain_len,
		                          at, rep, &info);
		if (r != CVM_OK)
			goto out;
		break;
	default:
		r = CVM_E_INVAL;
		goto out;
	}
	info.expires = v->valid_until;
	if (out != NULL)
		*out = info;
out:
	cvm_crl_free(own_crl);
	cvm_dcap_verified_free(v);
	return r;
}

void cvm_dcap_verified_free(struct cvm_dcap_verified *v)
{
	if (v == NULL)
		return;
	cvm_cert_free(v->root);
	cvm_crl_free(v->root_crl);
	cvm_crl_free(v->pck_crl);
	cvm_cert_free(v->pck_crl_issuer);
	cvm_tcb_info_free(v->tcb_info);
	cvm_qe_identity_free(v->qe_identity);
	cvm_cert_free(v->pck_leaf);
	cvm_cert_pool_free(v->pool);
	cvm_p256_key_free(v->ak);
	free(v);
}

const struct cvm_tcb_info *cvm_dcap_verified_tcb_info(const struct cvm_dcap_verified *v)
{
	return v->tcb_info;
}

const struct cvm_qe_identity *cvm_dcap_verified_qe_identity(const struct cvm_dcap_verified *v)
{
	return v->qe_identity;
}

/* pck_chain_authenticate checks the quote's PCK chain (a PCK certificate, the
 * PCK CA that issued it, the root), the PCK CRL against that CA and the PCK
 * certificate against the PCK CRL, or reuses the result for the same chain
 * bytes when `at` is inside the window it was valid for. */
static int pck_chain_authenticate(struct cvm_dcap_verified *v, struct cvm_report *rep,
                                  const struct cvm_quote *q, int64_t at)
{
	static const struct role *const roles[] = {&role_pck, &role_pck_ca};
	struct cvm_cert **certs = NULL;
	struct cvm_rd ext;
	size_t n = 0;
	uint8_t hash[32];
	char subj[256], iss[256], serial[80];
	int64_t from = INT64_MIN, until = INT64_MAX;
	int r;

	cvm_sha256(q->pck_chain_pem.p, q->pck_chain_pem.len, hash);
	if (v->pck_cached && memcmp(hash, v->pck_hash, sizeof(hash)) == 0 && at >= v->pck_valid_from &&
	    at <= v->pck_valid_until) {
		cvm_report_add(rep, "pck_chain", true,
		               "same PCK chain as verified before (cached), valid now");
		return CVM_OK;
	}
	v->pck_cached = false;
	cvm_cert_free(v->pck_leaf);
	v->pck_leaf = NULL;

	r = cvm_cert_pool_parse_pem(v->pool, q->pck_chain_pem.p, q->pck_chain_pem.len, &certs, &n);
	if (r != CVM_OK) {
		cvm_report_add(rep, "pck_chain", false,
		               "the quote's certification data is not a PEM chain (%s)", cvm_strerror(r));
		goto out;
	}
	r = chain_authenticate(v, rep, "pck_chain", "quote's PCK chain", certs, n, roles, 2, at, &from,
	                       &until);
	if (r != CVM_OK)
		goto out;
	/* The PCK CRL must be the one of the CA that issued this PCK
	 * certificate: signed by that CA's key, not merely by a CA of the same
	 * name. */
	if (!cvm_cert_equal(certs[1], v->pck_crl_issuer) &&
	    cvm_crl_check_issued_kept(v->pck_crl, certs[1]) != CVM_OK) {
		cvm_cert_subject(certs[1], iss, sizeof(iss));
		cvm_cert_subject(v->pck_crl_issuer, subj, sizeof(subj));
		cvm_report_add(rep, "pck_chain", false,
		               "the PCK certificate is issued by '%s', but the PCK CRL is not that CA's "
		               "(its issuer chain holds '%s'): fetch the PCK CRL of the CA that issued it "
		               "(platform or processor)",
		               iss, subj);
		r = CVM_E_CHAIN;
		goto out;
	}
	if (cvm_crl_revokes(v->pck_crl, certs[0])) {
		cvm_cert_serial(certs[0], serial, sizeof(serial));
		cvm_report_add(rep, "pck_chain", false,
		               "the PCK certificate (serial %s) is revoked by the PCK CRL", serial);
		r = CVM_E_REVOKED;
		goto out;
	}
	r = cvm_cert_ext(certs[0], CVM_SGX_EXT_OID, &ext);
	if (r == CVM_OK)
		r = cvm_pck_info_parse(&ext, &v->pck);
	if (r != CVM_OK) {
		cvm_report_add(rep, "pck_chain", false, "the PCK certificate has no valid SGX extension");
		goto out;
	}
	cvm_cert_subject(certs[1], iss, sizeof(iss));
	cvm_report_add(rep, "pck_chain", true,
	               "PCK certificate issued by '%s', which the root issued; neither is revoked", iss);
	v->pck_leaf = cvm_cert_dup(certs[0]);
	memcpy(v->pck_hash, hash, sizeof(hash));
	v->pck_valid_from = from;
	v->pck_valid_until = until;
	v->pck_cached = true;
out:
	cvm_certs_free(certs, n);
	return r;
}

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	cvm_hex_encode(p, n, out);
}

/* qe_identity_check compares the QE report with the QE identity and finds the
 * QE TCB level (the first whose ISV SVN is at most the QE's). */
static int qe_identity_check(const struct cvm_qe_identity *id, const struct cvm_sgx_report *qe,
                             struct cvm_report *rep, const struct cvm_qe_level **level)
{
	char a[65], b[65];

	*level = NULL;
	if (memcmp(qe->mr_signer, id->mrsigner, sizeof(id->mrsigner)) != 0) {
		hex_of(id->mrsigner, 32, a);
		hex_of(qe->mr_signer, 32, b);
		cvm_report_add(rep, "qe_identity_match", false, "QE MRSIGNER %s is not the expected %s", b,
		               a);
		return CVM_E_MISMATCH;
	}
	if (qe->isv_prod_id != id->isv_prod_id) {
		cvm_report_add(rep, "qe_identity_match", false, "QE ISVPRODID %u is not the expected %u",
		               qe->isv_prod_id, id->isv_prod_id);
		return CVM_E_MISMATCH;
	}
	if ((qe->misc_select & id->miscselect_mask) != (id->miscselect & id->miscselect_mask)) {
		cvm_report_add(rep, "qe_identity_match", false,
		               "QE MISCSELECT %08x does not match %08x under mask %08x", qe->misc_select,
		               id->miscselect, id->miscselect_mask);
		return CVM_E_MISMATCH;
	}
	for (size_t i = 0; i < sizeof(id->attributes); i++) {
		if ((qe->attributes[i] & id->attributes_mask[i]) !=
		    (id->attributes[i] & id->attributes_mask[i])) {
			hex_of(qe->attributes, 16, b);
			hex_of(id->attributes, 16, a);
			cvm_report_add(rep, "qe_identity_match", false,
			               "QE ATTRIBUTES %s do not match the expected %s under the mask", b, a);
			return CVM_E_MISMATCH;
		}
	}
	for (size_t i = 0; i < id->level_count; i++) {
		if (qe->isv_svn >= id->levels[i].isv_svn) {
			*level = &id->levels[i];
			break;
		}
	}
	return CVM_OK;
}

static bool svn_at_least(const uint8_t *have, const uint8_t *need, size_t from, size_t n)
{
	for (size_t i = from; i < n; i++)
		if (have[i] < need[i])
			return false;
	return true;
}

/* Intel QVL: convergeTcbStatusWithQeTcbStatus / ...WithTdxModuleStatus. An
 * out-of-date QE or TDX module makes an otherwise current platform OutOfDate
 * (or OutOfDateConfigurationNeeded); a revoked one revokes it. */
static enum cvm_tcb_status converge(enum cvm_tcb_status platform, enum cvm_tcb_status other)
{
	if (other == CVM_TCB_OUT_OF_DATE) {
		if (platform == CVM_TCB_UP_TO_DATE || platform == CVM_TCB_SW_HARDENING_NEEDED)
			return CVM_TCB_OUT_OF_DATE;
		if (platform == CVM_TCB_CONFIGURATION_NEEDED ||
		    platform == CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
			return CVM_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
	}
	if (other == CVM_TCB_REVOKED)
		return CVM_TCB_REVOKED;
	return platform;
}

static int cmp_adv(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void adv_add(struct cvm_dcap_result *res, const struct cvm_advisories *adv)
{
	for (size_t i = 0; i < adv->count; i++) {
		bool dup = false;

		for (size_t j = 0; j < res->advisory_count && !dup; j++)
			dup = strcmp(res->advisory_ids[j], adv->ids[i]) == 0;
		if (dup || res->advisory_count == CVM_ADVISORIES_MAX)
			continue;
		memcpy(res->advisory_ids[res->advisory_count++], adv->ids[i], CVM_ADVISORY_ID_MAX);
	}
}

/* tdx_module_check finds the TDX module identity for the quote's module
 * version (TEE_TCB_SVN[1]) and its TCB level (by TEE_TCB_SVN[0]), after
 * checking MRSIGNER_SEAM and SEAM attributes against it. */
static int tdx_module_check(const struct cvm_tcb_info *ti, const struct cvm_quote *q, struct cvm_report *rep,
                            struct cvm_dcap_result *res)
{
	const struct cvm_tdx_report *td = &q->body.td;
	const struct cvm_tdx_module_identity *mod = NULL;
	const uint8_t *mrsigner, *attrs, *mask;
	uint8_t version = td->tee_tcb_svn[1], isvsvn = td->tee_tcb_svn[0];
	char want[16], a[97], b[97];

	(void)snprintf(want, sizeof(want), "TDX_%02X", version);
	if (version > 0) {
		for (size_t i = 0; i < ti->module_count && mod == NULL; i++)
			if (strcasecmp(ti->modules[i].id, want) == 0)
				mod = &ti->modules[i];
		/* Intel QVL: a module version with no identity is a mismatch. */
		if (mod == NULL) {
			cvm_report_add(rep, "tdx_module", false,
			               "the TCB info has no TDX module identity %s for module version %u",
			               want, version);
			return CVM_E_TCB;
		}
	}
	if (mod != NULL) {
		mrsigner = mod->mrsigner;
		attrs = mod->attributes;
		mask = mod->attributes_mask;
	} else if (ti->has_tdx_module) {
		mrsigner = ti->tdx_module_mrsigner;
		attrs = ti->tdx_module_attributes;
		mask = ti->tdx_module_attributes_mask;
	} else {
		cvm_report_add(rep, "tdx_module", false, "the TDX TCB info has no tdxModule");
		return CVM_E_FORMAT;
	}
	if (memcmp(td->mr_signer_seam, mrsigner, 48) != 0) {
		hex_of(mrsigner, 48, a);
		hex_of(td->mr_signer_seam, 48, b);
		cvm_report_add(rep, "tdx_module", false, "MRSIGNER_SEAM %s is not the expected %s", b, a);
		return CVM_E_MISMATCH;
	}
	for (size_t i = 0; i < 8; i++) {
		if ((td->seam_attributes[i] & mask[i]) != (attrs[i] & mask[i])) {
			hex_of(td->seam_attributes, 8, b);
			hex_of(attrs, 8, a);
			cvm_report_add(rep, "tdx_module", false,
			               "SEAM attributes %s do not match %s under the mask", b, a);
			return CVM_E_MISMATCH;
		}
	}
	if (mod == NULL) {
		/* Module version 0 (v4+ quotes): no module identity applies. */
		res->module_status = CVM_TCB_NONE;
		cvm_report_add(rep, "tdx_module", true,
		               "TDX module signer matches; no module identity applies");
		return CVM_OK;
	}
	for (size_t i = 0; i < mod->level_count; i++) {
		if (isvsvn >= mod->levels[i].isv_svn) {
			res->module_status = mod->levels[i].status;
			adv_add(res, &mod->levels[i].adv);
			cvm_report_add(rep, "tdx_module", true, "module %s, ISV SVN %u: %s", mod->id, isvsvn,
			               cvm_tcb_status_name(mod->levels[i].status));
			return CVM_OK;
		}
	}
	cvm_report_add(rep, "tdx_module", false,
	               "TDX module %s ISV SVN %u is below every TCB level of its identity", mod->id, isvsvn);
	return CVM_E_TCB;
}

static bool config_needed(enum cvm_tcb_status s)
{
	return s == CVM_TCB_CONFIGURATION_NEEDED || s == CVM_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED ||
	       s == CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED ||
	       s == CVM_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED;
}

/* td_relaunch_check is Intel QVL's relaunch rule for TD 1.5: when only the
 * TDX module is out of date (SGX TCB and QE current) and TEE_TCB_SVN2 (the
 * module the platform runs now) meets the newest level, relaunching the TD
 * would bring it up to date: the status says so instead of OutOfDate. */
static int td_relaunch_check(const struct cvm_tcb_info *ti, const struct cvm_quote *q,
                             enum cvm_tcb_status sgx, struct cvm_dcap_result *res, struct cvm_report *rep)
{
	const uint8_t *svn2 = q->body.td.tee_tcb_svn2;
	const struct cvm_tcb_level *latest = &ti->levels[0];
	enum cvm_tcb_status tdx = res->platform_status;
	uint8_t need_module;

	if (res->qe_status == CVM_TCB_OUT_OF_DATE || res->qe_status == CVM_TCB_REVOKED)
		return CVM_OK;
	if (sgx != CVM_TCB_UP_TO_DATE && sgx != CVM_TCB_SW_HARDENING_NEEDED &&
	    sgx != CVM_TCB_CONFIGURATION_NEEDED && sgx != CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
		return CVM_OK;
	if ((tdx != CVM_TCB_OUT_OF_DATE && tdx != CVM_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED) ||
	    res->module_status != CVM_TCB_OUT_OF_DATE)
		return CVM_OK;
	if (svn2[1] == 0) {
		need_module = latest->tdx_svn[0];
	} else {
		const struct cvm_tdx_module_identity *mod = NULL;
		char want[16];

		(void)snprintf(want, sizeof(want), "TDX_%02X", svn2[1]);
		for (size_t i = 0; i < ti->module_count && mod == NULL; i++)
			if (strcasecmp(ti->modules[i].id, want) == 0)
				mod = &ti->modules[i];
		if (mod == NULL || mod->level_count == 0) {
			cvm_report_add(
			    rep, "tdx_module", false,
			    "TEE_TCB_SVN2 names TDX module version %u, which the TCB info does not list",
			    svn2[1]);
			return CVM_E_TCB;
		}
		need_module = mod->levels[0].isv_svn;
	}
	if (svn2[0] >= need_module && svn2[2] >= latest->tdx_svn[2]) {
		res->platform_status = config_needed(sgx) || config_needed(tdx)
		                           ? CVM_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED
		                           : CVM_TCB_TD_RELAUNCH_ADVISED;
		cvm_report_add(
		    rep, "td_relaunch", true,
		    "the platform now runs an up-to-date TDX module (TEE_TCB_SVN2): relaunching the TD "
		    "would bring it up to date");
	}
	return CVM_OK;
}

/* tcb_level_match implements Intel's TCB level selection: the first level
 * (highest first) whose SGX components and PCE SVN the PCK certificate
 * meets; for TDX, the first such level whose TDX components TEE_TCB_SVN also
 * meets (from index 2 when the module version TEE_TCB_SVN[1] is non-zero). */
static int tcb_level_match(const struct cvm_tcb_info *ti, const struct cvm_pck_info *pck,
                           const struct cvm_quote *q, struct cvm_report *rep, struct cvm_dcap_result *res)
{
	const struct cvm_tcb_level *sgx = NULL, *tdx = NULL;
	bool is_tdx = q->tee == CVM_TEE_TDX;
	char a[33];
	int r;

	for (size_t i = 0; i < ti->level_count; i++) {
		const struct cvm_tcb_level *l = &ti->levels[i];

		if (!svn_at_least(pck->tcb_svn, l->sgx_svn, 0, 16) || pck->pce_svn < l->pce_svn)
			continue;
		if (sgx == NULL)
			sgx = l;
		if (!is_tdx)
			break;
		if (svn_at_least(q->body.td.tee_tcb_svn, l->tdx_svn, q->body.td.tee_tcb_svn[1] > 0 ? 2 : 0,
		                 16)) {
			tdx = l;
			break;
		}
	}
	if (sgx == NULL) {
		hex_of(pck->tcb_svn, 16, a);
		cvm_report_add(
		    rep, "tcb_level", false,
		    "no TCB level matches the platform (SGX components %s, PCE SVN %u): the TCB is not "
		    "supported by this TCB info",
		    a, pck->pce_svn);
		return CVM_E_TCB;
	}
	if (is_tdx && tdx == NULL) {
		hex_of(q->body.td.tee_tcb_svn, 16, a);
		cvm_report_add(rep, "tcb_level", false,
		               "no TCB level matches TEE_TCB_SVN %s (SGX level %s matched)", a,
		               cvm_tcb_status_name(sgx->status));
		return CVM_E_TCB;
	}
	if (!is_tdx) {
		res->platform_status = sgx->status;
		res->tcb_date = sgx->tcb_date;
		adv_add(res, &sgx->adv);
		return CVM_OK;
	}
	res->platform_status = tdx->status;
	res->tcb_date = tdx->tcb_date;
	adv_add(res, &tdx->adv);
	r = tdx_module_check(ti, q, rep, res);
	if (r != CVM_OK)
		return r;
	res->platform_status = converge(tdx->status, res->module_status);
	if (q->body_type == CVM_BODY_TD15 && res->platform_status != CVM_TCB_REVOKED)
		return td_relaunch_check(ti, q, sgx->status, res, rep);
	return CVM_OK;
}

int cvm_dcap_quote_authenticate(struct cvm_dcap_verified *v, const uint8_t *buf, size_t len, int64_t at,
                                struct cvm_report *rep, struct cvm_dcap_result *res)
{
	const struct cvm_tcb_info *ti;
	const struct cvm_qe_identity *qi;
	const struct cvm_qe_level *qe_level = NULL;
	const struct cvm_p256_key *ak = NULL;
	struct cvm_quote *q = &res->quote;
	uint8_t hash_in[64 + CVM_QUOTE_AUTH_DATA_MAX], hash[32];
	char a[65], b[65];
	int r, structural = CVM_OK;

	memset(res, 0, sizeof(*res));
	if (v == NULL || buf == NULL)
		return CVM_E_INVAL;
	ti = v->tcb_info;
	qi = v->qe_identity;
	/* Warm use: the collateral verified earlier must still be valid now. */
	if (at < v->valid_from || at > v->valid_until) {
		char a1[32], a2[32], a3[32];

		fmt_time(v->valid_from, a1, sizeof(a1));
		fmt_time(v->valid_until, a2, sizeof(a2));
		fmt_time(at, a3, sizeof(a3));
		cvm_report_add(
		    rep, "collateral", false,
		    "the collateral verified earlier, with its trust anchor, is valid from %s to %s, "
		    "not at %s: verify fresh collateral (or a current root)",
		    a1, a2, a3);
		return CVM_E_EXPIRED;
	}
	res->tcb_eval_num = ti->tcb_eval_num;
	res->collateral_expiry = v->valid_until;

	r = cvm_quote_parse(buf, len, q);
	if (r == CVM_E_FORMAT && q->trailing_garbage) {
		/* Rejected for its structure; the rest still runs over the quote
		 * proper so the report can say what it would have given. */
		cvm_report_add(
		    rep, "quote", false,
		    "%zu bytes that are not zero padding follow the %zu-byte quote: rejected (the quote "
		    "proper is still checked below, for the record)",
		    q->padding_len, q->quote_len);
		structural = r;
	} else if (r != CVM_OK) {
		cvm_report_add(rep, "quote", false, "the quote is not a valid DCAP quote: %s",
		               cvm_strerror(r));
		goto out;
	}
	if (memcmp(q->qe_vendor_id, CVM_INTEL_QE_VENDOR_ID, 16) != 0) {
		hex_of(q->qe_vendor_id, 16, a);
		cvm_report_add(rep, "quote", false, "QE vendor %s is not Intel's", a);
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	if (structural == CVM_OK)
		cvm_report_add(rep, "quote", true, "%s quote v%u, %s body, %zu bytes%s",
		               q->tee == CVM_TEE_TDX ? "TDX" : "SGX", q->version,
		               q->body_type == CVM_BODY_TD15   ? "TD 1.5"
		               : q->body_type == CVM_BODY_TD10 ? "TD 1.0"
		                                               : "enclave",
		               q->quote_len, q->padding_len != 0 ? " (followed by zero padding)" : "");

	/* The collateral must be for this kind of quote. */
	if (ti->tee != q->tee || (q->tee == CVM_TEE_TDX && ti->version < 3)) {
		cvm_report_add(rep, "collateral_match", false,
		               "the TCB info is for %s (version %u), the quote is %s",
		               ti->tee == CVM_TEE_TDX ? "TDX" : "SGX", ti->version,
		               q->tee == CVM_TEE_TDX ? "TDX" : "SGX");
		r = CVM_E_MISMATCH;
		goto out;
	}
	if (strcmp(qi->id, q->tee == CVM_TEE_TDX ? "TD_QE" : "QE") != 0) {
		cvm_report_add(rep, "collateral_match", false,
		               "the QE identity is for '%s', the quote needs '%s'", qi->id,
		               q->tee == CVM_TEE_TDX ? "TD_QE" : "QE");
		r = CVM_E_MISMATCH;
		goto out;
	}

	r = pck_chain_authenticate(v, rep, q, at);
	if (r != CVM_OK)
		goto out;
	memcpy(res->fmspc, v->pck.fmspc, sizeof(res->fmspc));
	memcpy(res->pce_id, v->pck.pce_id, sizeof(res->pce_id));
	memcpy(res->cpu_svn, v->pck.cpu_svn, sizeof(res->cpu_svn));
	memcpy(res->ppid, v->pck.ppid, sizeof(res->ppid));
	res->pce_svn = v->pck.pce_svn;
	if (v->pck_valid_until < res->collateral_expiry)
		res->collateral_expiry = v->pck_valid_until;

	r = qe_report_signature_check(v, q);
	if (r != CVM_OK) {
		cvm_report_add(rep, "qe_report_signature", false,
		               "the QE report is not signed by the PCK key");
		r = CVM_E_SIGNATURE;
		goto out;
	}
	cvm_report_add(rep, "qe_report_signature", true, "QE report signed by the PCK key");

	/* report_data = SHA-256(attestation key || QE authentication data) || 32 zero bytes */
	memcpy(hash_in, q->attest_key, 64);
	if (q->qe_auth_data.len != 0)
		memcpy(hash_in + 64, q->qe_auth_data.p, q->qe_auth_data.len);
	cvm_sha256(hash_in, 64 + q->qe_auth_data.len, hash);
	if (memcmp(hash, q->qe_report.report_data, 32) != 0 ||
	    !cvm_rd_all_zero(&(struct cvm_rd){q->qe_report.report_data + 32, 32})) {
		hex_of(hash, 32, a);
		hex_of(q->qe_report.report_data, 32, b);
		cvm_report_add(rep, "qe_report_data", false,
		               "the QE report does not bind the attestation key: expected %s, got %s", a, b);
		r = CVM_E_MISMATCH;
		goto out;
	}
	cvm_report_add(rep, "qe_report_data", true, "QE report binds the attestation key");

	r = qe_identity_check(qi, &q->qe_report, rep, &qe_level);
	if (r != CVM_OK)
		goto out;
	/* Intel QVL: an ISV SVN below every level is OutOfDate, not an error. */
	res->qe_status = qe_level != NULL ? qe_level->status : CVM_TCB_OUT_OF_DATE;
	cvm_report_add(rep, "qe_identity_match", true, "%s ISV SVN %u: %s", qi->id, q->qe_report.isv_svn,
	               cvm_tcb_status_name(res->qe_status));

	r = attest_key_get(v, q->attest_key, &ak);
	if (r != CVM_OK) {
		cvm_report_add(rep, "quote_signature", false, "the attestation key is not a P-256 point");
		r = CVM_E_SIGNATURE;
		goto out;
	}
	r = cvm_p256_verify_kept(ak, q->signed_data.p, q->signed_data.len, q->signature);
	if (r != CVM_OK) {
		cvm_report_add(rep, "quote_signature", false,
		               "the quote signature does not verify under its attestation key");
		r = CVM_E_SIGNATURE;
		goto out;
	}
	cvm_report_add(rep, "quote_signature", true, "header and body signed by the attestation key");
	res->authentic = structural == CVM_OK;

	if (memcmp(v->pck.fmspc, ti->fmspc, sizeof(ti->fmspc)) != 0 ||
	    memcmp(v->pck.pce_id, ti->pce_id, sizeof(ti->pce_id)) != 0) {
		hex_of(v->pck.fmspc, 6, a);
		hex_of(ti->fmspc, 6, b);
		cvm_report_add(
		    rep, "tcb_level", false,
		    "the PCK certificate is for FMSPC %s but the TCB info for %s (or the PCE IDs differ): "
		    "fetch the TCB info for FMSPC %s",
		    a, b, a);
		r = CVM_E_MISMATCH;
		goto out;
	}
	r = tcb_level_match(ti, &v->pck, q, rep, res);
	if (r != CVM_OK)
		goto out;
	if (qe_level != NULL)
		adv_add(res, &qe_level->adv);
	res->tcb_status = converge(res->platform_status, res->qe_status);
	qsort(res->advisory_ids, res->advisory_count, sizeof(res->advisory_ids[0]), cmp_adv);
	{
		char date[32];

		fmt_time(res->tcb_date, date, sizeof(date));
		cvm_report_add(rep, "tcb_level", res->tcb_status != CVM_TCB_REVOKED,
		               "%s (platform %s, QE %s%s%s), TCB date %s, %zu advisories",
		               cvm_tcb_status_name(res->tcb_status),
		               cvm_tcb_status_name(res->platform_status), cvm_tcb_status_name(res->qe_status),
		               res->module_status != CVM_TCB_NONE ? ", module " : "",
		               res->module_status != CVM_TCB_NONE ? cvm_tcb_status_name(res->module_status)
		                                                  : "",
		               date, res->advisory_count);
	}
	r = res->tcb_status == CVM_TCB_REVOKED ? CVM_E_TCB : CVM_OK;
out:
	/* A structural rejection stays the verdict whatever followed it. */
	return structural != CVM_OK ? structural : r;
}

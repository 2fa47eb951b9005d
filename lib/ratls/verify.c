/* Verifying RA-TLS certificate chains (cvm_ratls_verifier_*) and the fresh,
 * connection-bound attestation (cvm_ratls_check_fresh). The collateral is
 * authenticated once when the verifier is made; each chain then goes
 * through validity, parse, evidence, binding, replay, system key and chain
 * (docs/ratls.md gives the order and what each step does not check). A
 * verdict cache keyed by SHA-256 of the whole chain makes a repeated
 * handshake with the same certificate cost a hash and a lookup. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/evidence.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/secret.h>
#include <cvmkit/snp.h>
#include <cvmkit/verify.h>

#include "core/core_lib.h"
#include "crypto/crypto_lib.h"
#include "ratls_int.h"

#define CACHE_DEFAULT 256u
#define CACHE_MAX 65536u

struct cache_entry {
	uint8_t key[32];
	int64_t valid_from, valid_until;
	uint64_t used; /* LRU clock; 0 = empty slot */
	struct cvm_ratls_verdict verdict;
};

struct cvm_ratls_verifier {
	struct cvm_policy policy;
	struct cvm_dcap_verified *dcap; /* warm DCAP collateral (not thread-safe: under `lock`) */
	struct cvm_amd_verified *amd;   /* warm AMD chain (likewise) */
	int64_t amd_expiry;
	uint8_t *amd_root;
	size_t amd_root_len;
	bool intel_simulated, amd_simulated; /* the anchor is not the vendor's */
	struct cvm_cert **cas;
	size_t ca_count;
	bool allow_legacy_ca, ignore_validity, require_system_key;
	pthread_mutex_t lock; /* the warm collateral and the cache */
	struct cache_entry *cache;
	size_t cache_len;
	uint64_t clock;
};

/* ---- making and freeing --------------------------------------------------- */

void cvm_ratls_verifier_free(struct cvm_ratls_verifier *v)
{
	if (v == NULL)
		return;
	cvm_dcap_verified_free(v->dcap);
	cvm_amd_verified_free(v->amd);
	free(v->amd_root);
	for (size_t i = 0; i < v->ca_count; i++)
		cvm_cert_free(v->cas[i]);
	free(v->cas);
	free(v->cache);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

/* is_builtin_ark is true when `der` (DER or PEM) is one of AMD's ARKs. */
static bool is_builtin_ark(const uint8_t *der, size_t len)
{
	struct cvm_cert *c = NULL, *ark = NULL;
	const struct cvm_amd_ark *arks;
	size_t n = 0;
	bool found = false;

	if (cvm_cert_parse(der, len, &c) != CVM_OK)
		return false;
	arks = cvm_amd_builtin_arks(&n);
	for (size_t i = 0; i < n && !found; i++) {
		if (cvm_cert_parse(arks[i].der, arks[i].der_len, &ark) != CVM_OK)
			continue;
		found = cvm_cert_equal(c, ark);
		cvm_cert_free(ark);
	}
	cvm_cert_free(c);
	return found;
}

static bool is_intel_root(const uint8_t *der, size_t len)
{
	struct cvm_cert *c = NULL, *intel = NULL;
	bool same = false;

	if (cvm_cert_parse(der, len, &c) == CVM_OK &&
	    cvm_cert_parse(cvm_intel_sgx_root_ca_der, cvm_intel_sgx_root_ca_der_len, &intel) == CVM_OK)
		same = cvm_cert_equal(c, intel);
	cvm_cert_free(c);
	cvm_cert_free(intel);
	return same;
}

int cvm_ratls_verifier_new(const struct cvm_ratls_verifier_opts *o, int64_t at,
                           struct cvm_ratls_verifier **out)
{
	struct cvm_ratls_verifier *v = NULL;
	int rc;

	*out = NULL;
	if (o == NULL || o->policy == NULL ||
	    (o->ca_count != 0 && (o->ca_der == NULL || o->ca_der_len == NULL)) ||
	    o->ca_count > CVM_CHAIN_CERTS_MAX || o->cache_entries > CACHE_MAX)
		return CVM_E_INVAL;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return CVM_E_NOMEM;
	if (pthread_mutex_init(&v->lock, NULL) != 0) {
		free(v);
		return CVM_E_SYSTEM;
	}
	v->policy = *o->policy;
	v->allow_legacy_ca = o->allow_legacy_ca;
	v->ignore_validity = o->ignore_validity;
	v->require_system_key = o->require_system_key;
	v->cache_len = o->cache_entries != 0 ? o->cache_entries : CACHE_DEFAULT;
	v->cache = calloc(v->cache_len, sizeof(*v->cache));
	v->cas = calloc(o->ca_count + 1, sizeof(struct cvm_cert *));
	if (v->cache == NULL || v->cas == NULL) {
		rc = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < o->ca_count; i++) {
		rc = cvm_cert_parse(o->ca_der[i], o->ca_der_len[i], &v->cas[i]);
		if (rc != CVM_OK)
			goto out;
		v->ca_count = i + 1;
	}
	v->intel_simulated =
	    o->intel_root_der != NULL && !is_intel_root(o->intel_root_der, o->intel_root_der_len);
	if (o->dcap != NULL) {
		rc = cvm_dcap_collateral_authenticate(o->dcap, o->intel_root_der, o->intel_root_der_len, at,
		                                      NULL, &v->dcap);
		if (rc != CVM_OK)
			goto out;
	}
	if (o->amd_root_der != NULL) {
		v->amd_root = malloc(o->amd_root_der_len ? o->amd_root_der_len : 1);
		if (v->amd_root == NULL) {
			rc = CVM_E_NOMEM;
			goto out;
		}
		memcpy(v->amd_root, o->amd_root_der, o->amd_root_der_len);
		v->amd_root_len = o->amd_root_der_len;
		v->amd_simulated = !is_builtin_ark(o->amd_root_der, o->amd_root_der_len);
	}
	if (o->amd != NULL) {
		enum cvm_snp_signer s = o->amd->vcek != NULL ? CVM_SNP_SIGNER_VCEK : CVM_SNP_SIGNER_VLEK;

		rc = cvm_amd_chain_authenticate(o->amd, s, o->amd_root_der, o->amd_root_der_len, at, NULL,
		                                &v->amd);
		if (rc != CVM_OK)
			goto out;
		v->amd_expiry = cvm_amd_verified_vek(v->amd)->valid_until;
	}
	*out = v;
	v = NULL; /* transferred */
	rc = CVM_OK;
out:
	cvm_ratls_verifier_free(v);
	return rc;
}

/* ---- the steps ------------------------------------------------------------ */

/* ratls_unborrow clears what a verdict's results borrow from buffers that
 * do not outlive the check (the quote and report views). */
void ratls_unborrow(struct cvm_ratls_verdict *out)
{
	struct cvm_rd none = {NULL, 0};

	out->dcap.quote.signed_data = none;
	out->dcap.quote.qe_report_raw = none;
	out->dcap.quote.qe_auth_data = none;
	out->dcap.quote.pck_chain_pem = none;
	out->amd.report.signed_data = none;
}

/* va_chain sorts the certificate blobs of a dstack SNP attestation
 * (variant 3's cert_chain) into AMD collateral by their roles: an end
 * entity is the VCEK (or the VLEK when its subject says so), a
 * self-issued CA the ARK, another CA the ASK (or ASVK). The copies are the
 * caller's (cosmian_certs_cleanup). Nothing is trusted for being sorted:
 * cvm_amd_chain_authenticate checks every name and role, and the ARK must
 * be the anchor. */
static int va_chain(const struct cvm_va *va, struct cvm_amd_collateral *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; va != NULL && i < va->snp_chain_count; i++) {
		struct cvm_cert *c = NULL;
		char subject[256], issuer[256];
		uint8_t **slot;
		size_t *slot_len;
		bool vlek;

		if (cvm_cert_parse(va->snp_chain[i], va->snp_chain_len[i], &c) != CVM_OK)
			continue; /* not a certificate: no use here */
		cvm_cert_subject(c, subject, sizeof(subject));
		cvm_cert_issuer(c, issuer, sizeof(issuer));
		vlek = strstr(subject, "VLEK") != NULL;
		if (!cvm_cert_claims_ca(c)) {
			slot = vlek ? &out->vlek : &out->vcek;
			slot_len = vlek ? &out->vlek_len : &out->vcek_len;
		} else if (strcmp(subject, issuer) == 0) {
			slot = &out->ark;
			slot_len = &out->ark_len;
		} else {
			slot = vlek ? &out->asvk : &out->ask;
			slot_len = vlek ? &out->asvk_len : &out->ask_len;
		}
		cvm_cert_free(c);
		if (*slot != NULL)
			continue; /* the first of a role counts */
		*slot = malloc(va->snp_chain_len[i]);
		if (*slot == NULL) {
			cosmian_certs_cleanup(out);
			return CVM_E_NOMEM;
		}
		memcpy(*slot, va->snp_chain[i], va->snp_chain_len[i]);
		*slot_len = va->snp_chain_len[i];
	}
	return CVM_OK;
}

/* ratls_evidence verifies the quote or report with the verifier's
 * collateral and policy (SNP without collateral: cold, with a Cosmian
 * certificate's own chain). Sets *expiry to when the collateral stops
 * being valid. */
int ratls_evidence(struct cvm_ratls_verifier *v, enum cvm_ratls_tee tee, const uint8_t *quote, size_t len,
                   const struct cvm_amd_collateral *own_chain, int64_t at, struct cvm_ratls_verdict *out,
                   int64_t *expiry, struct cvm_report *rep)
{
	int rc;

	*expiry = INT64_MAX;
	if (tee == CVM_RATLS_TEE_TDX || tee == CVM_RATLS_TEE_SGX) {
		if (v->dcap == NULL) {
			cvm_report_add(rep, "evidence", false,
			               "the %s quote needs Intel collateral, and the verifier was given none",
			               cvm_ratls_tee_name(tee));
			return CVM_E_INVAL;
		}
		pthread_mutex_lock(&v->lock);
		rc = cvm_verify_quote_warm(v->dcap, quote, len, at, &v->policy, rep, &out->dcap);
		pthread_mutex_unlock(&v->lock);
		*expiry = out->dcap.collateral_expiry;
		out->simulated = v->intel_simulated;
	} else if (tee == CVM_RATLS_TEE_SNP) {
		if (v->amd != NULL) {
			pthread_mutex_lock(&v->lock);
			rc = cvm_verify_snp_report_warm(v->amd, quote, len, at, &v->policy, rep, &out->amd);
			pthread_mutex_unlock(&v->lock);
			*expiry = v->amd_expiry;
		} else if (own_chain != NULL && (own_chain->vcek != NULL || own_chain->vlek != NULL) &&
		           (own_chain->ask != NULL || own_chain->asvk != NULL)) {
			rc = cvm_verify_snp_report(quote, len, own_chain, v->amd_root, v->amd_root_len, at,
			                           &v->policy, rep, &out->amd);
			*expiry = out->amd.chain_expiry;
		} else {
			cvm_report_add(
			    rep, "evidence", false,
			    "the SNP report needs AMD certificates (VCEK and ASK), and neither the verifier "
			    "nor the certificate has them");
			return CVM_E_INVAL;
		}
		out->simulated = v->amd_simulated;
	} else {
		cvm_report_add(rep, "evidence", false,
		               "the certificate's evidence is of no TEE cvmkit verifies");
		return CVM_E_UNSUPPORTED;
	}
	out->evidence_verified = rc == CVM_OK;
	cvm_report_add(rep, "evidence", rc == CVM_OK,
	               rc == CVM_OK ? "the %s %s is authentic and the policy accepts it"
	                            : "the %s %s did not verify",
	               cvm_ratls_tee_name(tee), tee == CVM_RATLS_TEE_SNP ? "report" : "quote");
	return rc;
}

/* struct sysscan finds the one cvmkit.agent-key event among the system's
 * runtime events (those before the first app event). */
struct sysscan {
	uint8_t key_hash[32];
	bool boundary;    /* an app event was seen */
	size_t count;     /* agent-key events anywhere */
	bool before_apps; /* ... the one was before the boundary */
	bool match;       /* ... and its payload is key_hash */
};

static void sysscan_feed(struct sysscan *s, const char *name, const uint8_t *payload, size_t len)
{
	size_t nl = strlen(name);

	if (strcmp(name, CVM_EVIDENCE_EVENT_AGENT_KEY) == 0) {
		s->count++;
		s->before_apps = !s->boundary;
		s->match = len == sizeof(s->key_hash) && cvm_ct_equal(payload, s->key_hash, len);
		return;
	}
	if (!s->boundary && !cvm_evidence_is_system_event(name, nl))
		s->boundary = true;
}

/* struct rtmrs is a replay of RTMR0..3 and which registers the log covers. */
struct rtmrs {
	uint8_t r[4][48];
	unsigned covered; /* bit i: the log extends RTMR i */
};

static int extend(uint8_t reg[48], const uint8_t d[48])
{
	uint8_t buf[96];
	int rc;

	memcpy(buf, reg, 48);
	memcpy(buf + 48, d, 48);
	rc = cvm_digest(CVM_DIGEST_SHA384, buf, sizeof(buf), reg, 48);
	return rc;
}

/* replay_va replays a VersionedAttestation's event log (boot events by their
 * digests, runtime events by digests recomputed from name and payload) and,
 * separately, its runtime_events list into RTMR3. */
static int replay_va(const struct cvm_va *va, struct rtmrs *log, uint8_t rt3[48], struct sysscan *s,
                     char *why, size_t why_len)
{
	bool from_list = va->runtime_event_count != 0;
	int rc = CVM_OK;

	memset(log, 0, sizeof(*log));
	memset(rt3, 0, 48);
	for (size_t i = 0; i < va->event_count && rc == CVM_OK; i++) {
		const struct cvm_va_event *e = &va->events[i];
		uint8_t d[48];

		if (e->event_type == 3) /* EV_NO_ACTION: never extended */
			continue;
		if (e->imr > 3)
			return RATLS_ERR(why, why_len, CVM_E_FORMAT, "event %zu names RTMR%u", i, e->imr);
		if (e->imr == 3) {
			if (e->event_type != CVM_EV_DSTACK_RUNTIME)
				return RATLS_ERR(why, why_len, CVM_E_FORMAT,
				                 "event %zu in RTMR3 is not a dstack runtime event", i);
			rc = cvm_evl_dstack_digest(e->event, e->payload, e->payload_len,
			                           e->version == 2 ? 2 : 1, d);
			if (rc != CVM_OK)
				return RATLS_ERR(why, why_len, rc, "event %zu's digest cannot be computed",
				                 i);
			if (e->digest_len != 0 && (e->digest_len != 48 || memcmp(e->digest, d, 48) != 0))
				return RATLS_ERR(
				    why, why_len, CVM_E_MISMATCH,
				    "event %zu (\"%s\") logs a digest that its name and payload do not give",
				    i, e->event);
			if (!from_list)
				sysscan_feed(s, e->event, e->payload, e->payload_len);
		} else {
			if (e->digest_len != 48)
				return RATLS_ERR(why, why_len, CVM_E_FORMAT,
				                 "boot event %zu has a %zu-byte digest, not SHA-384", i,
				                 e->digest_len);
			memcpy(d, e->digest, 48);
		}
		rc = extend(log->r[e->imr], d);
		log->covered |= 1u << e->imr;
	}
	for (size_t i = 0; i < va->runtime_event_count && rc == CVM_OK; i++) {
		const struct cvm_va_runtime_event *e = &va->runtime_events[i];
		uint8_t d[48];

		rc = cvm_evl_dstack_digest(e->event, e->payload, e->payload_len, e->version == 2 ? 2 : 1, d);
		if (rc == CVM_OK)
			rc = extend(rt3, d);
		sysscan_feed(s, e->event, e->payload, e->payload_len);
	}
	if (rc != CVM_OK)
		return RATLS_ERR(why, why_len, rc, "the replay failed (%s)", cvm_strerror(rc));
	return CVM_OK;
}

/* replay_json replays dstack's legacy 1.2 JSON log with lib/eventlog. */
static int replay_json(const uint8_t *json, size_t len, struct rtmrs *log, struct sysscan *s, char *why,
                       size_t why_len)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	const struct cvm_evl_replay *rp;
	bool has = true;
	int rc;

	memset(log, 0, sizeof(*log));
	rc = cvm_evl_parser_new_mem(json, len, CVM_EVL_DSTACK_JSON, &p);
	if (rc != CVM_OK)
		return RATLS_ERR(why, why_len, rc, "the event log cannot be read");
	while (has) {
		rc = cvm_evl_parser_next(p, &ev, &has);
		if (rc != CVM_OK) {
			rc = RATLS_ERR(why, why_len, rc, "the event log: %s", cvm_evl_parser_err(p));
			goto out;
		}
		if (has && ev.type == CVM_EV_DSTACK_RUNTIME && ev.name != NULL)
			sysscan_feed(s, ev.name, ev.data.p, ev.data.len);
	}
	rp = cvm_evl_parser_replay(p);
	for (uint32_t i = 0; i < 4; i++) {
		const uint8_t *val;
		size_t vlen;

		if (cvm_evl_replay_value(rp, CVM_DIGEST_SHA384, i, &val, &vlen) != CVM_OK || vlen != 48)
			continue;
		memcpy(log->r[i], val, 48);
		for (size_t b = 0; b < rp->bank_count; b++)
			if (rp->banks[b].alg == CVM_DIGEST_SHA384 && (rp->banks[b].extended & (1u << i)) != 0)
				log->covered |= 1u << i;
	}
	rc = CVM_OK;
out:
	cvm_evl_parser_free(p);
	return rc;
}

/* ratls_replay replays the TDX event log of `info` against its quote's
 * RTMRs and decides the system key (`key_hash`: SHA-256 of the key's SPKI);
 * replay_step does it for a certificate, with its leaf's key. RTMR3 must
 * replay: the verifier (and its callers) read the runtime events' names
 * and payloads, so they must be the quoted ones. The 1.8 attestation may
 * give them twice (event_log's RTMR3 events and runtime_events): each list
 * given must replay, and the system key is read from runtime_events when
 * present. RTMR0..2 are compared where the log has events for them; a
 * difference there is not a failure (dstack's stripped logs keep only some
 * RTMR0 events, and nothing here interprets boot events: pin RTMR0..2 in
 * the policy), but then `replayed` is false. A legacy 1.2 JSON log next to
 * 1.8 is replayed too. A Cosmian TDX certificate carries no log: nothing
 * is replayed and the RTMRs are left to the policy. */
static int replay_step(const struct cvm_ratls_info *info, const struct cvm_cert *leaf,
                       struct cvm_ratls_verdict *out, struct cvm_report *rep)
{
	uint8_t *spki = NULL, key_hash[32];
	size_t spki_len;
	int rc;

	if (info->tee != CVM_RATLS_TEE_TDX)
		return CVM_OK;
	rc = cvm_cert_spki(leaf, &spki, &spki_len);
	if (rc != CVM_OK)
		return rc;
	cvm_sha256(spki, spki_len, key_hash);
	free(spki);
	return ratls_replay(info, key_hash, out, rep);
}

int ratls_replay(const struct cvm_ratls_info *info, const uint8_t key_hash[32], struct cvm_ratls_verdict *out,
                 struct cvm_report *rep)
{
	struct cvm_quote q;
	struct rtmrs log, json;
	struct sysscan s, unused;
	uint8_t rt3[48];
	char why[200] = "";
	bool has_list = false, boot_ok = true;
	unsigned boot_covered = 0;
	int rc = CVM_OK;

	if (info->tee != CVM_RATLS_TEE_TDX)
		return CVM_OK;
	if (info->attestation == NULL && info->event_log_json == NULL) {
		cvm_report_add(
		    rep, "replay", true,
		    "the certificate carries no event log: RTMR0..3 are checked by the policy only");
		return CVM_OK;
	}
	memset(&s, 0, sizeof(s));
	memset(&unused, 0, sizeof(unused));
	memcpy(s.key_hash, key_hash, sizeof(s.key_hash));
	if (cvm_quote_parse(info->quote, info->quote_len, &q) != CVM_OK) {
		cvm_report_add(rep, "replay", false, "the TDX quote does not parse");
		return CVM_E_FORMAT;
	}
	if (info->attestation != NULL) {
		rc = replay_va(info->attestation, &log, rt3, &s, why, sizeof(why));
		has_list = info->attestation->runtime_event_count != 0;
		if (rc == CVM_OK && info->event_log_json != NULL) {
			rc = replay_json(info->event_log_json, info->event_log_json_len, &json, &unused, why,
			                 sizeof(why));
			if (rc == CVM_OK && memcmp(json.r[3], q.body.td.rtmr[3], 48) != 0)
				rc = RATLS_ERR(
				    why, sizeof(why), CVM_E_MISMATCH,
				    "the legacy event log (1.2) replays to another RTMR3 than the quote's");
		}
	} else {
		rc = replay_json(info->event_log_json, info->event_log_json_len, &log, &s, why, sizeof(why));
	}
	if (rc != CVM_OK) {
		cvm_report_add(rep, "replay", false, "%s", why);
		return rc;
	}
	/* RTMR3: every list given replays to it; a log without runtime events
	 * claims it is zero */
	if (((log.covered & 8u) != 0 || !has_list) && memcmp(log.r[3], q.body.td.rtmr[3], 48) != 0) {
		cvm_report_add(rep, "replay", false,
		               "the event log replays to another RTMR3 than the quote's");
		return CVM_E_MISMATCH;
	}
	if (has_list && memcmp(rt3, q.body.td.rtmr[3], 48) != 0) {
		cvm_report_add(rep, "replay", false,
		               "the runtime events replay to another RTMR3 than the quote's");
		return CVM_E_MISMATCH;
	}
	for (unsigned i = 0; i < 3; i++) {
		if ((log.covered & (1u << i)) == 0)
			continue;
		if (memcmp(log.r[i], q.body.td.rtmr[i], 48) == 0)
			boot_covered |= 1u << i;
		else
			boot_ok = false;
	}
	out->replayed = boot_ok;
	out->system_key = s.count == 1 && s.before_apps && s.match;
	cvm_report_add(rep, "replay", true, "the runtime events replay to the quote's RTMR3%s%s%s%s",
	               (boot_covered & 1u) ? ", the boot events to RTMR0" : "",
	               (boot_covered & 2u) ? ", RTMR1" : "", (boot_covered & 4u) ? ", RTMR2" : "",
	               boot_ok ? ""
	                       : "; the boot events do not replay to RTMR0..2 (a partial log): not replayed");
	return CVM_OK;
}

/* chain_step checks that each certificate is issued by the next and the
 * last by (or equal to) one of the verifier's CAs. */
static int chain_step(struct cvm_ratls_verifier *v, struct cvm_cert *const *certs, size_t count,
                      struct cvm_ratls_verdict *out, struct cvm_report *rep)
{
	bool legacy = false;

	for (size_t i = 0; i < count; i++) {
		const struct cvm_cert *issuer = NULL;

		if (i + 1 < count) {
			issuer = certs[i + 1];
			if (cvm_cert_check_signed(certs[i], issuer) != CVM_OK) {
				cvm_report_add(
				    rep, "chain", false,
				    "certificate %zu is not issued (name and signature) by certificate %zu",
				    i, i + 1);
				return CVM_E_CHAIN;
			}
		} else {
			bool is_anchor = false;

			for (size_t k = 0; k < v->ca_count && !is_anchor; k++)
				is_anchor = cvm_cert_equal(certs[i], v->cas[k]);
			if (is_anchor)
				break; /* the chain ends in the given CA itself */
			for (size_t k = 0; k < v->ca_count && issuer == NULL; k++)
				if (cvm_cert_check_signed(certs[i], v->cas[k]) == CVM_OK)
					issuer = v->cas[k];
			if (issuer == NULL) {
				cvm_report_add(
				    rep, "chain", false,
				    "certificate %zu is neither one of the given CAs nor issued by one", i);
				return CVM_E_CHAIN;
			}
		}
		if (!cvm_cert_claims_ca(issuer)) {
			cvm_report_add(rep, "chain", false, "the issuer of certificate %zu is not a CA", i);
			return CVM_E_CHAIN;
		}
		if (!cvm_cert_is_ca(issuer))
			legacy = true; /* CA:TRUE without keyCertSign: dstack before 0.5.8 */
	}
	out->legacy_ca = legacy;
	if (legacy && !v->allow_legacy_ca) {
		cvm_report_add(rep, "chain", false,
		               "a CA of the chain lacks keyCertSign (dstack before 0.5.8); allow legacy CAs "
		               "to accept it");
		return CVM_E_CHAIN;
	}
	out->chain_verified = true;
	cvm_report_add(rep, "chain", true, "the chain ends in a given CA%s",
	               legacy ? " (legacy: a CA lacks keyCertSign)" : "");
	return CVM_OK;
}

/* ---- the cache ------------------------------------------------------------ */

/* chain_key hashes the whole chain (each certificate's length, then its
 * bytes) into the cache key; false when it cannot, and then the cache is not
 * used at all (a zero key must never stand for a chain). */
static bool chain_key(const uint8_t *const *der, const size_t *der_len, size_t count, uint8_t key[32])
{
	struct cvm_digest_ctx *c = NULL;
	uint8_t n[8];
	bool ok = true;

	if (cvm_digest_ctx_new(CVM_DIGEST_SHA256, &c) != CVM_OK)
		return false;
	for (size_t i = 0; i < count && ok; i++) {
		for (size_t b = 0; b < 8; b++)
			n[b] = (uint8_t)((uint64_t)der_len[i] >> (8 * b));
		ok = cvm_digest_update(c, n, sizeof(n)) == CVM_OK &&
		     cvm_digest_update(c, der[i], der_len[i]) == CVM_OK;
	}
	ok = ok && cvm_digest_final(c, key, 32) == CVM_OK;
	cvm_digest_ctx_free(c);
	return ok;
}

/* cache_get copies a live verdict for `key` valid at `at`. */
static bool cache_get(struct cvm_ratls_verifier *v, const uint8_t key[32], int64_t at,
                      struct cvm_ratls_verdict *out)
{
	bool hit = false;

	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->cache_len; i++) {
		struct cache_entry *e = &v->cache[i];

		if (e->used == 0 || memcmp(e->key, key, 32) != 0)
			continue;
		if (at >= e->valid_from && at <= e->valid_until) {
			*out = e->verdict;
			e->used = ++v->clock;
			hit = true;
		}
		break;
	}
	pthread_mutex_unlock(&v->lock);
	return hit;
}

static void cache_put(struct cvm_ratls_verifier *v, const uint8_t key[32], int64_t from, int64_t until,
                      const struct cvm_ratls_verdict *verdict)
{
	struct cache_entry *slot = NULL;

	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->cache_len; i++) {
		struct cache_entry *e = &v->cache[i];

		if (e->used != 0 && memcmp(e->key, key, 32) == 0) {
			slot = e;
			break;
		}
		if (slot == NULL || e->used < slot->used)
			slot = e; /* the empty or least recently used one */
	}
	if (slot == NULL) { /* no slot at all (cache_len is at least 1) */
		pthread_mutex_unlock(&v->lock);
		return;
	}
	memcpy(slot->key, key, 32);
	slot->valid_from = from;
	slot->valid_until = until;
	slot->verdict = *verdict;
	slot->used = ++v->clock;
	pthread_mutex_unlock(&v->lock);
}

/* ---- the check ------------------------------------------------------------ */

static int first(int rc, int r)
{
	return rc != CVM_OK ? rc : r;
}

int cvm_ratls_verifier_check(struct cvm_ratls_verifier *v, const uint8_t *const *der, const size_t *der_len,
                             size_t count, int64_t at, struct cvm_ratls_verdict *out, struct cvm_report *rep)
{
	struct cvm_cert *certs[CVM_CHAIN_CERTS_MAX] = {NULL};
	struct cvm_ratls_info *info = NULL;
	struct cvm_amd_collateral own;
	bool have_own = false, keyed;
	uint8_t key[32];
	int64_t from = INT64_MIN, until = INT64_MAX, expiry;
	char why[256];
	int rc = CVM_OK, r;

	if (out == NULL)
		return CVM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (rep != NULL)
		cvm_report_init(rep);
	if (v == NULL || der == NULL || der_len == NULL || count == 0 || count > CVM_CHAIN_CERTS_MAX) {
		cvm_report_add(rep, "chain", false, "no chain, or more than %d certificates",
		               CVM_CHAIN_CERTS_MAX);
		return CVM_E_INVAL;
	}
	for (size_t i = 0; i < count; i++) {
		if (der[i] == NULL || der_len[i] == 0 || der_len[i] > CVM_RATLS_CERT_MAX) {
			cvm_report_add(rep, "parse", false,
			               "certificate %zu is empty or larger than %zu bytes", i,
			               CVM_RATLS_CERT_MAX);
			return CVM_E_TOO_LARGE;
		}
	}
	keyed = chain_key(der, der_len, count, key);
	if (keyed && cache_get(v, key, at, out)) {
		out->cached = true;
		cvm_report_add(rep, "cache", true,
		               "this chain verified before and its verdict is still valid");
		return CVM_OK;
	}

	/* validity */
	for (size_t i = 0; i < count; i++) {
		r = cvm_cert_parse(der[i], der_len[i], &certs[i]);
		if (r != CVM_OK) {
			cvm_report_add(rep, "parse", false, "certificate %zu is not an X.509 certificate", i);
			rc = r;
			goto out;
		}
		if (cvm_cert_not_before(certs[i]) > from)
			from = cvm_cert_not_before(certs[i]);
		if (cvm_cert_not_after(certs[i]) < until)
			until = cvm_cert_not_after(certs[i]);
	}
	if (v->ignore_validity) {
		from = INT64_MIN;
		until = INT64_MAX;
		cvm_report_add(rep, "validity", true, "not checked (ignore_validity)");
	} else if (at < from || at > until) {
		cvm_report_add(rep, "validity", false, "a certificate of the chain is %s at %lld",
		               at < from ? "not yet valid" : "expired", (long long)at);
		rc = CVM_E_EXPIRED;
	} else {
		cvm_report_add(rep, "validity", true, "every certificate is valid at %lld", (long long)at);
	}

	/* parse */
	r = ratls_parse_cert(certs[0], &info, why, sizeof(why));
	if (r != CVM_OK) {
		cvm_report_add(rep, "parse", false, "the leaf's RA-TLS extensions: %s", why);
		rc = first(rc, r);
		goto out;
	}
	out->profile = info->profile;
	out->tee = info->tee;
	if (info->profile == CVM_RATLS_PROFILE_NONE || info->quote == NULL) {
		cvm_report_add(rep, "parse", false, "the leaf carries no RA-TLS evidence");
		rc = first(rc, CVM_E_FORMAT);
		goto out;
	}
	cvm_report_add(rep, "parse", true, "%s profile, %s evidence", cvm_ratls_profile_name(info->profile),
	               cvm_ratls_tee_name(info->tee));

	/* evidence */
	if (info->profile == CVM_RATLS_PROFILE_DSTACK && info->tee == CVM_RATLS_TEE_SNP && v->amd == NULL) {
		r = va_chain(info->attestation, &own);
		if (r != CVM_OK) {
			rc = first(rc, r);
			goto out;
		}
		have_own = true;
	}
	r = ratls_evidence(v, info->tee, info->quote, info->quote_len,
	                   info->profile == CVM_RATLS_PROFILE_COSMIAN ? &info->snp_certs
	                   : have_own                                 ? &own
	                                                              : NULL,
	                   at, out, &expiry, rep);
	rc = first(rc, r);
	if (expiry < until)
		until = expiry;

	/* binding */
	out->binding = info->binding;
	if (info->attestation != NULL && memcmp(info->attestation->report_data, info->report_data, 64) != 0)
		out->binding = false; /* the attestation says one report_data, its quote another */
	if (out->binding)
		cvm_report_add(rep, "binding", true, "the %s binds the certificate's key (%s profile)",
		               info->tee == CVM_RATLS_TEE_SNP ? "report" : "quote",
		               cvm_ratls_profile_name(info->profile));
	else
		cvm_report_add(
		    rep, "binding", false,
		    "the %s's report_data does not bind the certificate's key: the evidence was made for "
		    "another key",
		    info->tee == CVM_RATLS_TEE_SNP ? "report" : "quote");
	rc = first(rc, out->binding ? CVM_OK : CVM_E_MISMATCH);

	/* replay, system key */
	rc = first(rc, replay_step(info, certs[0], out, rep));
	if (v->require_system_key) {
		cvm_report_add(rep, "system_key", out->system_key,
		               out->system_key
		                   ? "the key is the one the system recorded in RTMR3 (cvmkit.agent-key)"
		                   : "the key is not the one the system recorded in RTMR3 (no single "
		                     "cvmkit.agent-key event among the system's events names it)");
		rc = first(rc, out->system_key ? CVM_OK : CVM_E_POLICY);
	}

	/* chain */
	if (v->ca_count != 0)
		rc = first(rc, chain_step(v, certs, count, out, rep));
out:
	ratls_unborrow(out);
	if (rc == CVM_OK && keyed)
		cache_put(v, key, from, until, out);
	if (have_own)
		cosmian_certs_cleanup(&own);
	cvm_ratls_info_free(info);
	for (size_t i = 0; i < count; i++)
		cvm_cert_free(certs[i]);
	return rc;
}

/* ---- the fresh attestation ---------------------------------------------- */

int cvm_ratls_fresh_report_data(const uint8_t bound[64], uint8_t out[64])
{
	if (bound == NULL)
		return CVM_E_INVAL;
	return cvm_sha512_tagged(RATLS_TAG_FRESH, bound, 64, out);
}

/* same_instance compares the answer's evidence with the leaf's: the TEE
 * type and launch measurements, and (TDX) the leaf's runtime events a
 * prefix of the answer's. */
static int same_instance(const struct cvm_ratls_info *leaf, const struct cvm_va *va, struct cvm_report *rep)
{
	if (leaf->tee != va->tee) {
		cvm_report_add(rep, "instance", false,
		               "the answer comes from a %s TEE, the certificate from a %s one",
		               cvm_ratls_tee_name(va->tee), cvm_ratls_tee_name(leaf->tee));
		return CVM_E_MISMATCH;
	}
	if (va->tee == CVM_RATLS_TEE_TDX) {
		struct cvm_quote a, b;
		const struct cvm_va *la = leaf->attestation;

		if (cvm_quote_parse(leaf->quote, leaf->quote_len, &a) != CVM_OK ||
		    cvm_quote_parse(va->quote, va->quote_len, &b) != CVM_OK)
			return CVM_E_FORMAT;
		if (memcmp(a.body.td.mr_td, b.body.td.mr_td, 48) != 0 ||
		    memcmp(a.body.td.mr_config_id, b.body.td.mr_config_id, 48) != 0 ||
		    memcmp(a.body.td.rtmr[0], b.body.td.rtmr[0], 48) != 0 ||
		    memcmp(a.body.td.rtmr[1], b.body.td.rtmr[1], 48) != 0 ||
		    memcmp(a.body.td.rtmr[2], b.body.td.rtmr[2], 48) != 0) {
			cvm_report_add(rep, "instance", false,
			               "the answer's MRTD, MRCONFIGID or RTMR0..2 differ from the "
			               "certificate's: another TD");
			return CVM_E_MISMATCH;
		}
		if (la != NULL) {
			bool prefix = la->runtime_event_count <= va->runtime_event_count;

			for (size_t i = 0; prefix && i < la->runtime_event_count; i++) {
				const struct cvm_va_runtime_event *x = &la->runtime_events[i],
				                                  *y = &va->runtime_events[i];

				prefix = strcmp(x->event, y->event) == 0 &&
				         x->payload_len == y->payload_len &&
				         (x->payload_len == 0 ||
				          memcmp(x->payload, y->payload, x->payload_len) == 0);
			}
			if (!prefix) {
				cvm_report_add(
				    rep, "instance", false,
				    "the certificate's runtime events are not a prefix of the answer's");
				return CVM_E_MISMATCH;
			}
		}
	} else {
		struct cvm_snp_report a, b;

		if (cvm_snp_report_parse(leaf->quote, leaf->quote_len, &a) != CVM_OK ||
		    cvm_snp_report_parse(va->quote, va->quote_len, &b) != CVM_OK)
			return CVM_E_FORMAT;
		if (memcmp(a.measurement, b.measurement, 48) != 0 ||
		    memcmp(a.host_data, b.host_data, 32) != 0 || memcmp(a.chip_id, b.chip_id, 64) != 0) {
			cvm_report_add(
			    rep, "instance", false,
			    "the answer's measurement, host_data or chip_id differ from the certificate's");
			return CVM_E_MISMATCH;
		}
	}
	cvm_report_add(rep, "instance", true, "the answer comes from the TEE instance of the certificate");
	return CVM_OK;
}

int cvm_ratls_check_fresh(struct cvm_ratls_verifier *v, const uint8_t *leaf_der, size_t leaf_len,
                          const uint8_t *va_buf, size_t va_len, const uint8_t bound[64], int64_t at,
                          struct cvm_ratls_verdict *out, struct cvm_report *rep)
{
	struct cvm_ratls_info *leaf = NULL;
	struct cvm_va *va = NULL;
	struct cvm_ratls_info view;
	struct cvm_cert *cert = NULL;
	uint8_t want[64], got[64];
	int64_t expiry;
	char why[256];
	int rc, r;

	if (out == NULL)
		return CVM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (rep != NULL)
		cvm_report_init(rep);
	if (v == NULL || leaf_der == NULL || va_buf == NULL || bound == NULL)
		return CVM_E_INVAL;
	rc = cvm_ratls_parse(leaf_der, leaf_len, &leaf, why, sizeof(why));
	if (rc == CVM_OK && leaf->quote == NULL)
		rc = RATLS_ERR(why, sizeof(why), CVM_E_FORMAT, "it carries no RA-TLS evidence");
	if (rc != CVM_OK) {
		cvm_report_add(rep, "parse", false, "the leaf certificate: %s", why);
		goto out;
	}
	rc = cvm_va_decode(va_buf, va_len, &va, why, sizeof(why));
	if (rc != CVM_OK) {
		cvm_report_add(rep, "parse", false, "the fresh attestation: %s", why);
		goto out;
	}
	if (va->tee != CVM_RATLS_TEE_TDX && va->tee != CVM_RATLS_TEE_SNP) {
		cvm_report_add(rep, "parse", false, "the fresh attestation is of no TEE cvmkit verifies");
		rc = CVM_E_UNSUPPORTED;
		goto out;
	}
	out->profile = leaf->profile;
	out->tee = va->tee;
	rc = ratls_evidence(v, va->tee, va->quote, va->quote_len,
	                    leaf->profile == CVM_RATLS_PROFILE_COSMIAN ? &leaf->snp_certs : NULL, at, out,
	                    &expiry, rep);

	/* the binding to this connection */
	r = cvm_ratls_fresh_report_data(bound, want);
	if (r == CVM_OK && !va_quote_report_data(va->tee, va->quote, va->quote_len, got))
		r = CVM_E_FORMAT;
	if (r == CVM_OK && (!cvm_ct_equal(got, want, 64) || !cvm_ct_equal(va->report_data, want, 64))) {
		cvm_report_add(
		    rep, "binding", false,
		    "the answer's report_data binds another TLS connection: a relay, or a replayed answer");
		r = CVM_E_MISMATCH;
	} else if (r == CVM_OK) {
		out->binding = true;
		cvm_report_add(rep, "binding", true, "the answer binds this TLS connection");
	}
	rc = first(rc, r);

	/* the answer's own event log */
	if (va->tee == CVM_RATLS_TEE_TDX) {
		memset(&view, 0, sizeof(view));
		view.tee = va->tee;
		view.quote = va->quote;
		view.quote_len = va->quote_len;
		view.attestation = va;
		r = cvm_cert_parse(leaf_der, leaf_len, &cert);
		if (r == CVM_OK)
			r = replay_step(&view, cert, out, rep);
		rc = first(rc, r);
	}
	rc = first(rc, same_instance(leaf, va, rep));
out:
	ratls_unborrow(out);
	cvm_cert_free(cert);
	cvm_va_free(va);
	cvm_ratls_info_free(leaf);
	return rc;
}

int cvm_ratls_check_va(struct cvm_ratls_verifier *v, const uint8_t *va_buf, size_t va_len,
                       const uint8_t report_data[64], int64_t at, struct cvm_ratls_verdict *out,
                       struct cvm_report *rep)
{
	struct cvm_amd_collateral own;
	struct cvm_ratls_info view;
	struct cvm_va *va = NULL;
	uint8_t got[64], zero[32];
	bool have_own = false;
	int64_t expiry;
	char why[256];
	int rc, r;

	if (out == NULL)
		return CVM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (rep != NULL)
		cvm_report_init(rep);
	if (v == NULL || va_buf == NULL || report_data == NULL)
		return CVM_E_INVAL;
	rc = cvm_va_decode(va_buf, va_len, &va, why, sizeof(why));
	if (rc != CVM_OK) {
		cvm_report_add(rep, "parse", false, "the attestation: %s", why);
		goto out;
	}
	if (va->tee != CVM_RATLS_TEE_TDX && va->tee != CVM_RATLS_TEE_SNP) {
		cvm_report_add(rep, "parse", false, "the attestation is of no TEE cvmkit verifies");
		rc = CVM_E_UNSUPPORTED;
		goto out;
	}
	cvm_report_add(rep, "parse", true, "a version %u attestation with %s evidence", va->version,
	               cvm_ratls_tee_name(va->tee));
	out->profile = CVM_RATLS_PROFILE_DSTACK;
	out->tee = va->tee;
	if (va->tee == CVM_RATLS_TEE_SNP && v->amd == NULL) {
		rc = va_chain(va, &own);
		if (rc != CVM_OK)
			goto out;
		have_own = true;
	}
	rc = ratls_evidence(v, va->tee, va->quote, va->quote_len, have_own ? &own : NULL, at, out, &expiry,
	                    rep);

	/* the binding: the quote's and the attestation's report_data are the one asked for */
	r = CVM_OK;
	if (!va_quote_report_data(va->tee, va->quote, va->quote_len, got))
		r = CVM_E_FORMAT;
	if (r == CVM_OK &&
	    (!cvm_ct_equal(got, report_data, 64) || !cvm_ct_equal(va->report_data, report_data, 64))) {
		cvm_report_add(
		    rep, "binding", false,
		    "the attestation's report_data is not the one expected: it was made for other data");
		r = CVM_E_MISMATCH;
	} else if (r == CVM_OK) {
		out->binding = true;
		cvm_report_add(rep, "binding", true, "the attestation's report_data is the one expected");
	}
	rc = first(rc, r);

	/* its event log (TDX); no certificate key here, so no system-key scan */
	if (va->tee == CVM_RATLS_TEE_TDX) {
		memset(&view, 0, sizeof(view));
		memset(zero, 0, sizeof(zero));
		view.tee = va->tee;
		view.quote = va->quote;
		view.quote_len = va->quote_len;
		view.attestation = va;
		rc = first(rc, ratls_replay(&view, zero, out, rep));
		out->system_key = false;
	}
out:
	if (have_own)
		cosmian_certs_cleanup(&own);
	ratls_unborrow(out);
	cvm_va_free(va);
	return rc;
}

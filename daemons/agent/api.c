/* The agent's two APIs as method tables, and their JSON handlers.
 *
 * dstack.sock: DstackGuest at "/" and "/v0/" (spec §1.3; v0.5.8 = v0.5.11),
 * plus cvmkit's GetEvidence. tappd.sock: the legacy Tappd service at
 * "/prpc/", with the "Tappd." prefix trimmed (spec §1.3, last table).
 *
 * Every handler re-validates its arguments (types, hex, lengths) through the
 * cvm_rpc_* getters and answers 400 with {"error": ...} on bad input. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>

#include <cvmkit/crypto.h>
#include <cvmkit/csr.h>
#include <cvmkit/encoding.h>
#include <cvmkit/keccak.h>
#include <cvmkit/ratls.h>
#include <cvmkit/secret.h>
#include <cvmkit/tls.h>

#include "agent.h"
#include "daemon.h"

#ifndef CVM_VERSION_STRING
#define CVM_VERSION_STRING "0.1.0"
#endif

#define KEY_PATH_MAX 4096 /* GetKey path and purpose, bytes */
#define SUBJECT_MAX 256
#define ALT_NAME_MAX 253
#define SIGN_DATA_MAX ((size_t)256 * 1024)
#define TAPPD_REPORT_DATA_MAX ((size_t)64 * 1024)

static int fail_r(struct cvm_rpc_call *c, int r, const char *what)
{
	if (r == CVM_E_NOMEM)
		return cvm_rpc_fail(c, 500, r, "out of memory");
	return cvm_rpc_fail(c, 500, r, "%s: %s", what, r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
}

/* hex_secret is cvm_json_hex for key material: the text buffer is wiped. */
static json_t *hex_secret(const uint8_t *p, size_t n)
{
	char *s = malloc(2 * n + 1);
	json_t *v;

	if (s == NULL)
		return NULL;
	cvm_hex_encode(p, n, s);
	v = json_stringn_nocheck(s, 2 * n);
	cvm_freezero(s, 2 * n + 1);
	return v;
}

static json_t *chain_json(const uint8_t chain0[65], const uint8_t *chain1, size_t chain1_len,
                          const uint8_t *first, size_t first_len)
{
	json_t *arr = json_array();

	if (arr == NULL)
		return NULL;
	if ((first != NULL && json_array_append_new(arr, cvm_json_hex(first, first_len)) != 0) ||
	    json_array_append_new(arr, cvm_json_hex(chain0, 65)) != 0 ||
	    json_array_append_new(arr, chain1_len != 0 ? cvm_json_hex(chain1, chain1_len)
	                                               : json_string("")) != 0) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* ---- GetKey, Sign, Verify ------------------------------------------------- */

static int derive(struct agent *a, struct cvm_rpc_call *c, struct cvm_getkey *g)
{
	const char *path, *purpose, *alg_name;
	size_t path_len, purpose_len, alg_len;
	enum cvm_key_alg alg;
	int r;

	r = cvm_rpc_str(c, "path", KEY_PATH_MAX, &path, &path_len);
	if (r == CVM_OK)
		r = cvm_rpc_str(c, "purpose", KEY_PATH_MAX, &purpose, &purpose_len);
	if (r == CVM_OK)
		r = cvm_rpc_str(c, "algorithm", 64, &alg_name, &alg_len);
	if (r != CVM_OK)
		return r;
	r = cvm_key_alg_parse(alg_name, alg_len, &alg);
	if (r != CVM_OK) {
		(void)cvm_rpc_fail(c, 400, r, "Unsupported algorithm");
		return r;
	}
	r = cvm_kdf_get_key(a->keys, path, path_len, purpose, purpose_len, alg, a->getkey_flags, g);
	if (r == CVM_OK && g->key == NULL)
		r = CVM_E_INTERNAL;
	if (r != CVM_OK) {
		(void)fail_r(c, r, "key derivation failed");
		return r;
	}
	return CVM_OK;
}

static int m_get_key(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct cvm_getkey g;
	json_t *o = NULL;
	int r;

	memset(&g, 0, sizeof(g));
	r = derive(ctx, c, &g);
	if (r != CVM_OK)
		goto out;
	o = json_object();
	if (o == NULL || cvm_json_set(o, "key", hex_secret(g.key->p, g.key->len)) != CVM_OK ||
	    cvm_json_set(o, "signature_chain", chain_json(g.chain0, g.chain1, g.chain1_len, NULL, 0)) !=
	        CVM_OK) {
		r = fail_r(c, CVM_E_NOMEM, "");
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_decref(o);
	cvm_getkey_cleanup(&g);
	return r;
}

static int m_sign(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct agent *a = ctx;
	struct cvm_sign_result s;
	enum cvm_sign_alg alg;
	const char *alg_name;
	size_t alg_len, data_len = 0;
	uint8_t *data = NULL;
	json_t *o = NULL;
	int r;

	memset(&s, 0, sizeof(s));
	r = cvm_rpc_str(c, "algorithm", 64, &alg_name, &alg_len);
	if (r == CVM_OK)
		r = cvm_rpc_hex_new(c, "data", SIGN_DATA_MAX, &data, &data_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_sign_alg_parse(alg_name, alg_len, &alg);
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 400, r, "Unsupported algorithm");
		goto out;
	}
	if (alg == CVM_SIGN_SECP256K1_PREHASHED && data_len != 32) {
		r = cvm_rpc_fail(c, 400, CVM_E_INVAL,
		                 "Pre-hashed signing requires a 32-byte digest, but received %zu bytes",
		                 data_len);
		goto out;
	}
	r = cvm_kdf_sign(a->keys, alg, data != NULL ? data : (const uint8_t *)"", data_len, a->getkey_flags,
	                 &s);
	if (r != CVM_OK) {
		r = fail_r(c, r, "signing failed");
		goto out;
	}
	o = json_object();
	if (o == NULL || cvm_json_set(o, "signature", cvm_json_hex(s.signature, 64)) != CVM_OK ||
	    cvm_json_set(o, "signature_chain",
	                 chain_json(s.chain0, s.chain1, s.chain1_len, s.signature, 64)) != CVM_OK ||
	    cvm_json_set(o, "public_key", cvm_json_hex(s.public_key, s.public_key_len)) != CVM_OK) {
		r = fail_r(c, CVM_E_NOMEM, "");
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_decref(o);
	free(data);
	return r;
}

static int m_verify(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	enum cvm_sign_alg alg;
	const char *alg_name;
	size_t alg_len, data_len = 0, sig_len = 0, pub_len = 0;
	uint8_t *data = NULL, sig[128], pub[128];
	int r;

	(void)ctx;
	r = cvm_rpc_str(c, "algorithm", 64, &alg_name, &alg_len);
	if (r == CVM_OK)
		r = cvm_rpc_hex_new(c, "data", SIGN_DATA_MAX, &data, &data_len);
	if (r == CVM_OK)
		r = cvm_rpc_hex(c, "signature", sig, sizeof(sig), &sig_len);
	if (r == CVM_OK)
		r = cvm_rpc_hex(c, "public_key", pub, sizeof(pub), &pub_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_sign_alg_parse(alg_name, alg_len, &alg);
	if (r != CVM_OK) {
		r = cvm_rpc_fail(c, 400, r, "Unsupported algorithm");
		goto out;
	}
	r = cvm_kdf_verify(alg, data != NULL ? data : (const uint8_t *)"", data_len, sig, sig_len, pub,
	                   pub_len);
	if (r == CVM_OK || r == CVM_E_SIGNATURE) {
		*out = json_pack("{s:b}", "valid", r == CVM_OK);
		r = *out != NULL ? CVM_OK : fail_r(c, CVM_E_NOMEM, "");
	} else {
		r = cvm_rpc_fail(c, 400, r, "malformed key, signature or digest for %.*s", (int)alg_len,
		                 alg_name);
	}
out:
	free(data);
	return r;
}

/* ---- quotes --------------------------------------------------------------- */

static void caller_of(const struct cvm_rpc_call *c, struct agent_caller *who)
{
	memset(who, 0, sizeof(*who));
	who->has_uid = c->http != NULL && cvm_http_req_peer_uid(c->http, &who->uid);
}

/* quote_reply answers GetQuote and the Tappd quotes: the quote over the
 * caller's report data `rd` (replaced by what the TEE signs: on SEV-SNP,
 * the caller domain's hash unless the caller may ask for raw data) and the
 * event log current when it was made, under the log's lock. */
static int quote_reply(struct agent *a, struct cvm_rpc_call *c, uint8_t rd[64], json_t **out)
{
	struct cvm_tee_evidence ev;
	struct agent_caller who;
	const char *log = NULL;
	json_t *o = NULL;
	int r;

	memset(&ev, 0, sizeof(ev));
	*out = NULL;
	caller_of(c, &who);
	r = agent_caller_report_data(a, &who, rd);
	if (r != CVM_OK)
		return fail_r(c, r, "cannot compute the report data");
	r = agent_rtlog_lock(&a->rt, LOCK_SH);
	if (r != CVM_OK)
		return fail_r(c, r, "cannot lock the runtime event log");
	r = cvm_tee_quote(a->tee, rd, &ev);
	if (r == CVM_OK) {
		log = agent_quote_log(a);
		o = json_object();
		if (log == NULL || o == NULL ||
		    cvm_json_set(o, "quote", cvm_json_hex(ev.data, ev.data_len)) != CVM_OK ||
		    cvm_json_set(o, "event_log", json_string(log)) != CVM_OK)
			r = CVM_E_NOMEM;
	}
	agent_rtlog_unlock(&a->rt);
	if (r != CVM_OK) {
		r = fail_r(c, r, "the TEE could not make a quote");
		json_decref(o);
		o = NULL;
	}
	cvm_tee_evidence_cleanup(&ev);
	*out = o;
	return r;
}

static int padded_report_data(struct cvm_rpc_call *c, uint8_t rd[64])
{
	size_t n = 0;
	int r;

	memset(rd, 0, 64);
	r = cvm_rpc_hex(c, "report_data", rd, 64, &n);
	if (r == CVM_E_TOO_LARGE)
		return cvm_rpc_fail(c, 400, r, "Report data is too long");
	return r;
}

static int m_get_quote(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct agent *a = ctx;
	uint8_t rd[64];
	json_t *o = NULL;
	int r;

	r = padded_report_data(c, rd);
	if (r != CVM_OK)
		return r;
	r = quote_reply(a, c, rd, &o);
	if (r != CVM_OK)
		return r;
	if (cvm_json_set(o, "report_data", cvm_json_hex(rd, 64)) != CVM_OK ||
	    cvm_json_set(o, "vm_config", json_string(a->vm_config)) != CVM_OK) {
		json_decref(o);
		return fail_r(c, CVM_E_NOMEM, "");
	}
	*out = o;
	return CVM_OK;
}

static int attestation_reply(struct agent *a, struct cvm_rpc_call *c, const uint8_t rd[64], unsigned version,
                             bool with_snp, json_t **out);

static int m_attest(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	uint8_t rd[64];
	int r;

	r = padded_report_data(c, rd);
	if (r != CVM_OK)
		return r;
	return attestation_reply(ctx, c, rd, 0, false, out);
}

static int m_get_evidence(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	uint8_t nonce[AGENT_NONCE_MAX];
	size_t n = 0;
	int r;

	r = cvm_rpc_hex(c, "nonce", nonce, sizeof(nonce), &n);
	if (r != CVM_OK)
		return r;
	r = agent_evidence(ctx, nonce, n, out, c->err, sizeof(c->err));
	if (r != CVM_OK)
		c->status = r == CVM_E_INVAL ? 400 : 500;
	return r;
}

/* tappd_report_data computes Tappd.TdxQuote's report data (spec §1.3):
 * raw, or H(tag ":" data) zero-padded (tappd_quote picks the tag). */
static int tappd_report_data(struct cvm_rpc_call *c, const char *alg, const uint8_t *data, size_t len,
                             const char *tag, uint8_t rd[64])
{
	struct cvm_digest_ctx *d = NULL;
	enum cvm_digest_alg da;
	int r;

	memset(rd, 0, 64);
	if (strcmp(alg, "raw") == 0) {
		if (len != 64)
			return cvm_rpc_fail(c, 400, CVM_E_INVAL,
			                    "raw report data must be exactly 64 bytes, not %zu", len);
		memcpy(rd, data, 64);
		return CVM_OK;
	}
	if (strcmp(alg, "keccak256") == 0) {
		struct cvm_keccak256_ctx k;

		cvm_keccak256_init(&k);
		cvm_keccak256_update(&k, tag, strlen(tag));
		cvm_keccak256_update(&k, ":", 1);
		cvm_keccak256_update(&k, data, len);
		cvm_keccak256_final(&k, rd);
		return CVM_OK;
	}
	if (strcmp(alg, "sha256") == 0)
		da = CVM_DIGEST_SHA256;
	else if (strcmp(alg, "sha384") == 0)
		da = CVM_DIGEST_SHA384;
	else if (strcmp(alg, "sha512") == 0)
		da = CVM_DIGEST_SHA512;
	else
		return cvm_rpc_fail(
		    c, 400, CVM_E_UNSUPPORTED,
		    "unsupported hash algorithm (cvm-agentd supports raw, sha256, sha384, sha512, "
		    "keccak256)");
	r = cvm_digest_ctx_new(da, &d);
	if (r == CVM_OK)
		r = cvm_digest_update(d, tag, strlen(tag));
	if (r == CVM_OK)
		r = cvm_digest_update(d, ":", 1);
	if (r == CVM_OK)
		r = cvm_digest_update(d, data, len);
	if (r == CVM_OK)
		r = cvm_digest_final(d, rd, 64);
	cvm_digest_ctx_free(d);
	return r == CVM_OK ? CVM_OK : fail_r(c, r, "hashing failed");
}

static int tappd_quote(struct agent *a, struct cvm_rpc_call *c, const char *alg, const char *prefix,
                       json_t **out)
{
	uint8_t *data = NULL, rd[64];
	size_t len = 0;
	json_t *o = NULL;
	bool raw = strcmp(alg, "raw") == 0;
	/* the caller's prefix, else dstack's default; the reply names the one used */
	const char *tag = raw ? "" : prefix[0] != '\0' ? prefix : "app-data";
	int r;

	r = cvm_rpc_hex_new(c, "report_data", TAPPD_REPORT_DATA_MAX, &data, &len);
	if (r == CVM_OK)
		r = tappd_report_data(c, alg, data != NULL ? data : (const uint8_t *)"", len, tag, rd);
	free(data);
	if (r != CVM_OK)
		return r;
	r = quote_reply(a, c, rd, &o);
	if (r != CVM_OK)
		return r;
	if (cvm_json_set(o, "hash_algorithm", json_string(alg)) != CVM_OK ||
	    cvm_json_set(o, "prefix", json_string(tag)) != CVM_OK) {
		json_decref(o);
		return fail_r(c, CVM_E_NOMEM, "");
	}
	*out = o;
	return CVM_OK;
}

static int m_tdx_quote(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	const char *alg, *prefix;
	size_t alg_len, prefix_len;
	int r;

	r = cvm_rpc_str(c, "hash_algorithm", 32, &alg, &alg_len);
	if (r == CVM_OK)
		r = cvm_rpc_str(c, "prefix", 256, &prefix, &prefix_len);
	if (r != CVM_OK)
		return r;
	return tappd_quote(ctx, c, alg_len != 0 ? alg : "sha512", prefix, out);
}

static int m_raw_quote(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	return tappd_quote(ctx, c, "raw", "", out);
}

/* ---- dstack's v1 surface (docs/guest-api-v1.md of Dstack-TEE/dstack) -------- */

/* m_v1_get_key derives with the v1 KDF: (domain, algorithm), no default
 * algorithm and no alias; the reply's bytes fields are hex. */
static int m_v1_get_key(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct agent *a = ctx;
	const char *domain, *alg_name;
	size_t domain_len, alg_len;
	enum cvm_key_alg alg;
	struct cvm_getkey g;
	json_t *o = NULL, *chain = NULL;
	int r;

	memset(&g, 0, sizeof(g));
	/* any string, NUL included: the derivation length-prefixes it */
	r = cvm_rpc_str_nul(c, "domain", CVM_KDF_V1_DOMAIN_MAX, &domain, &domain_len);
	if (r == CVM_OK)
		r = cvm_rpc_str(c, "algorithm", 64, &alg_name, &alg_len);
	if (r != CVM_OK)
		return r;
	r = cvm_key_alg_parse_v1(alg_name, alg_len, &alg);
	if (r == CVM_E_INVAL)
		return cvm_rpc_fail(c, 400, r, "algorithm is required, use `secp256k1` or `ed25519`");
	if (r != CVM_OK)
		return cvm_rpc_fail(c, 400, r, "unsupported algorithm `%.*s`, use `secp256k1` or `ed25519`",
		                    (int)alg_len, alg_name);
	r = cvm_kdf_v1_get_key(a->keys, domain, domain_len, alg, &g);
	if (r == CVM_E_FORMAT) {
		r = cvm_rpc_fail(c, 400, r,
		                 "derived secp256k1 key is not a valid scalar; choose another domain");
		goto out;
	}
	if (r == CVM_OK && g.key == NULL)
		r = CVM_E_INTERNAL;
	if (r != CVM_OK) {
		r = fail_r(c, r, "key derivation failed");
		goto out;
	}
	o = json_object();
	chain = json_array();
	if (o == NULL || chain == NULL || json_array_append_new(chain, cvm_json_hex(g.chain0, 65)) != 0 ||
	    json_array_append_new(chain, cvm_json_hex(g.chain1, g.chain1_len)) != 0 ||
	    cvm_json_set(o, "key", hex_secret(g.key->p, g.key->len)) != CVM_OK ||
	    cvm_json_set(o, "public_key", cvm_json_hex(g.public_key, g.public_key_len)) != CVM_OK) {
		r = fail_r(c, CVM_E_NOMEM, "");
		goto out;
	}
	r = cvm_json_set(o, "signature_chain", chain);
	chain = NULL;
	if (r != CVM_OK) {
		r = fail_r(c, r, "");
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_decref(chain);
	json_decref(o);
	cvm_getkey_cleanup(&g);
	return r;
}

/* attestation_reply quotes over `rd` and answers {"attestation": hex} with
 * dstack's VersionedAttestation in `version` (0: SCALE, 1: MessagePack).
 * On SEV-SNP only `with_snp`: its VersionedAttestation also carries the MR
 * config document and the report's certificates, which the agent does not
 * keep yet, so dstack's verifiers would not accept it; cvmkit's (the TLS
 * listener's clients) do not need them. */
static int attestation_reply(struct agent *a, struct cvm_rpc_call *c, const uint8_t rd[64], unsigned version,
                             bool with_snp, json_t **out)
{
	struct cvm_tee_evidence ev;
	uint8_t *att = NULL;
	size_t att_len = 0;
	int r;

	memset(&ev, 0, sizeof(ev));
	if (a->tee_info.platform != CVM_TEE_PLATFORM_TDX && !with_snp)
		return cvm_rpc_fail(c, 400, CVM_E_UNSUPPORTED, "Attest is implemented for TDX only");
	r = agent_rtlog_lock(&a->rt, LOCK_SH);
	if (r != CVM_OK)
		return fail_r(c, r, "cannot lock the runtime event log");
	r = cvm_tee_quote(a->tee, rd, &ev);
	if (r == CVM_OK)
		r = agent_va_encode(a, ev.platform, ev.data, ev.data_len, rd, version, &att, &att_len);
	agent_rtlog_unlock(&a->rt);
	cvm_tee_evidence_cleanup(&ev);
	if (r == CVM_E_UNSUPPORTED)
		return cvm_rpc_fail(c, 501, r,
		                    "cannot encode the attestation: this build's lib/ratls has no "
		                    "VersionedAttestation encoder (cvm_va_encode) for this version yet");
	if (r != CVM_OK)
		return fail_r(c, r, "cannot make the attestation");
	*out = json_object();
	r = *out != NULL ? cvm_json_set(*out, "attestation", cvm_json_hex(att, att_len)) : CVM_E_NOMEM;
	free(att);
	if (r != CVM_OK) {
		json_decref(*out);
		*out = NULL;
		return fail_r(c, r, "");
	}
	return CVM_OK;
}

/* m_v1_attest: at most 64 bytes of report data, zero-padded; more is an
 * error, never a truncation. The reply is VersionedAttestation::V1. */
static int m_v1_attest(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	uint8_t rd[64];
	size_t n = 0;
	bool gpu = false;
	int r;

	memset(rd, 0, sizeof(rd));
	r = cvm_rpc_hex(c, "report_data", rd, sizeof(rd), &n);
	if (r == CVM_E_TOO_LARGE)
		return cvm_rpc_fail(c, 400, r, "report data is too long");
	if (r == CVM_OK)
		r = cvm_rpc_bool(c, "include_boottime_gpu_evidence", &gpu);
	if (r != CVM_OK)
		return r;
	r = attestation_reply(ctx, c, rd, 1, false, out);
	/* no GPU is ever attached to cvm-agentd's TEE: the list is always empty */
	if (r == CVM_OK && cvm_json_set(*out, "boottime_gpu_evidence", json_array()) != CVM_OK) {
		json_decref(*out);
		*out = NULL;
		r = fail_r(c, CVM_E_NOMEM, "");
	}
	return r;
}

static json_t *event_hex(const struct agent *a, const char *name);

/* info_v1 answers the v1 Info: identity and configuration, no measurement
 * registers and no event log (those belong to Attest); the bytes fields are
 * hex. With `hide_documents` (dstack's v1 external Info without
 * public_tcbinfo), app_compose, vm_config and key_provider_info are "". */
static int info_v1(struct agent *a, struct cvm_rpc_call *c, bool hide_documents, json_t **out)
{
	const struct agent_event *kp;
	struct cvm_tee_measurements m;
	uint8_t agg[32], dev[32];
	json_t *o = NULL;
	int r;

	r = agent_rtlog_lock(&a->rt, LOCK_SH);
	if (r != CVM_OK)
		return fail_r(c, r, "cannot lock the runtime event log");
	r = agent_measurements(a, &m, agg);
	if (r != CVM_OK) {
		agent_rtlog_unlock(&a->rt);
		return fail_r(c, r, "cannot read the measurements");
	}
	cvm_sha256("", 0, dev);
	kp = hide_documents ? NULL : agent_find_event(a, "key-provider");
	o = json_object();
	if (o == NULL || cvm_json_set(o, "app_id", event_hex(a, "app-id")) != CVM_OK ||
	    cvm_json_set(o, "app_name", json_string(a->app_name)) != CVM_OK ||
	    cvm_json_set(o, "compose_hash", event_hex(a, "compose-hash")) != CVM_OK ||
	    cvm_json_set(o, "app_compose",
	                 json_stringn(a->app_compose, hide_documents ? 0 : a->app_compose_len)) != CVM_OK ||
	    cvm_json_set(o, "instance_id", event_hex(a, "instance-id")) != CVM_OK ||
	    cvm_json_set(o, "device_id", cvm_json_hex(dev, 32)) != CVM_OK ||
	    cvm_json_set(o, "os_image_hash", json_string(a->os_image_hash)) != CVM_OK ||
	    cvm_json_set(o, "mr_aggregated", cvm_json_hex(agg, 32)) != CVM_OK ||
	    cvm_json_set(o, "vm_config", json_string(hide_documents ? "" : a->vm_config)) != CVM_OK ||
	    cvm_json_set(o, "key_provider_info",
	                 kp != NULL ? json_stringn((const char *)kp->payload, kp->payload_len)
	                            : json_string("")) != CVM_OK ||
	    cvm_json_set(o, "cloud_vendor", json_string(a->cloud_vendor)) != CVM_OK ||
	    cvm_json_set(o, "cloud_product", json_string(a->cloud_product)) != CVM_OK)
		r = fail_r(c, CVM_E_NOMEM, "");
	agent_rtlog_unlock(&a->rt);
	if (r == CVM_OK) {
		*out = o;
		o = NULL;
	}
	json_decref(o);
	return r;
}

static int m_v1_info(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	return info_v1(ctx, c, false, out);
}

/* m_tls_info is dstack's v1 external Info: the documents only when the app
 * set public_tcbinfo. */
static int m_tls_info(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct agent *a = ctx;

	return info_v1(a, c, !a->public_tcbinfo, out);
}

/* ---- the TLS listener's methods (read-only; docs/daemons/cvm-agentd.md) ---- */

/* m_tls_attest attests the connection's certificate key, never caller
 * data: anyone who can reach the listener calls it, so no caller chooses
 * what the TEE signs. The report data is the RA-TLS binding of the agent's
 * identity key (dstack: SHA-512("ratls-cert:" || SPKI)). */
static int m_tls_attest(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct agent *a = ctx;
	uint8_t rd[64];
	int r;

	if (json_object_get(c->args, "report_data") != NULL)
		return cvm_rpc_fail(c, 400, CVM_E_POLICY,
		                    "report_data is not accepted over TLS: Attest here attests the agent's "
		                    "certificate key; use FreshAttest to bind a nonce to this connection");
	r = agent_identity_report_data(a, rd);
	if (r != CVM_OK)
		return fail_r(c, r, "cannot bind the identity key");
	return attestation_reply(a, c, rd, 0, true, out);
}

/* m_fresh_attest answers include/cvmkit/tls.h's fresh attestation: a
 * VersionedAttestation V0 over cvm_ratls_fresh_report_data(the TLS exporter
 * of this connection for the client's 32-byte nonce). */
static int m_fresh_attest(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	uint8_t nonce[CVM_TLS_FRESH_NONCE_LEN], bound[CVM_TLS_FRESH_BOUND_LEN], rd[64];
	size_t n = 0;
	int r;

	if (c->http == NULL || c->http->tls == NULL)
		return cvm_rpc_fail(c, 400, CVM_E_UNSUPPORTED, "FreshAttest is served over TLS only");
	r = cvm_rpc_hex(c, "nonce", nonce, sizeof(nonce), &n);
	if (r == CVM_OK && n != sizeof(nonce))
		r = CVM_E_FORMAT;
	if (r != CVM_OK)
		return cvm_rpc_fail(c, 400, r, "nonce must be %u bytes (%u hex digits)",
		                    CVM_TLS_FRESH_NONCE_LEN, 2 * CVM_TLS_FRESH_NONCE_LEN);
	r = cvm_tls_fresh_nonce(c->http->tls, nonce, bound);
	if (r != CVM_OK)
		return fail_r(c, r, "cannot compute this connection's TLS exporter");
	r = cvm_ratls_fresh_report_data(bound, rd);
	if (r == CVM_E_UNSUPPORTED)
		return cvm_rpc_fail(
		    c, 501, r,
		    "this build\'s lib/ratls has no cvm_ratls_fresh_report_data yet: FreshAttest "
		    "is unavailable");
	if (r != CVM_OK)
		return fail_r(c, r, "cannot compute the report data");
	return attestation_reply(ctx, c, rd, 0, true, out);
}

/* ---- EmitEvent, Info, Version --------------------------------------------- */

static int m_emit_event(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct agent *a = ctx;
	struct agent_caller who;
	const char *name;
	size_t name_len, len = 0;
	uint8_t *payload = NULL;
	int r;

	r = cvm_rpc_str(c, "event", AGENT_EVENT_NAME_MAX, &name, &name_len);
	if (r == CVM_OK)
		r = cvm_rpc_hex_new(c, "payload", AGENT_EVENT_PAYLOAD_MAX, &payload, &len);
	if (r != CVM_OK)
		return r;
	caller_of(c, &who);
	r = agent_emit_event(a, name, name_len, payload, len, &who, c->err, sizeof(c->err));
	free(payload);
	if (r != CVM_OK) {
		c->status =
		    (r == CVM_E_INVAL || r == CVM_E_POLICY || r == CVM_E_TOO_LARGE || r == CVM_E_UNSUPPORTED)
		        ? 400
		        : 500;
		return r;
	}
	*out = NULL; /* google.protobuf.Empty: the body is `null` */
	return CVM_OK;
}

static json_t *event_hex(const struct agent *a, const char *name)
{
	const struct agent_event *e = agent_find_event(a, name);

	return e != NULL ? cvm_json_hex(e->payload, e->payload_len) : json_string("");
}

static int m_info(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct agent *a = ctx;
	const struct agent_event *kp;
	struct cvm_tee_measurements m;
	uint8_t agg[32], dev[32];
	json_t *o = NULL, *tcb = NULL;
	char *tcb_text = NULL;
	int r;

	r = agent_rtlog_lock(&a->rt, LOCK_SH);
	if (r != CVM_OK)
		return fail_r(c, r, "cannot lock the runtime event log");
	r = agent_measurements(a, &m, agg);
	if (r == CVM_OK) {
		tcb = agent_tcb_info(a);
		/* tcb_info is a JSON string holding a pretty-printed object (spec §1.3) */
		tcb_text = tcb == NULL
		               ? NULL
		               : json_dumps(tcb, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
		if (tcb_text == NULL)
			r = CVM_E_NOMEM;
	}
	if (r != CVM_OK) {
		agent_rtlog_unlock(&a->rt);
		r = fail_r(c, r, "cannot read the measurements");
		goto out;
	}
	cvm_sha256("", 0, dev);
	kp = agent_find_event(a, "key-provider");
	o = json_object();
	if (o == NULL || cvm_json_set(o, "app_id", event_hex(a, "app-id")) != CVM_OK ||
	    cvm_json_set(o, "instance_id", event_hex(a, "instance-id")) != CVM_OK ||
	    cvm_json_set(o, "app_cert", json_string("")) != CVM_OK ||
	    cvm_json_set(o, "tcb_info", json_string(tcb_text)) != CVM_OK ||
	    cvm_json_set(o, "app_name", json_string(a->app_name)) != CVM_OK ||
	    cvm_json_set(o, "device_id", cvm_json_hex(dev, 32)) != CVM_OK ||
	    cvm_json_set(o, "mr_aggregated", cvm_json_hex(agg, 32)) != CVM_OK ||
	    cvm_json_set(o, "os_image_hash", json_string(a->os_image_hash)) != CVM_OK ||
	    cvm_json_set(o, "key_provider_info",
	                 kp != NULL ? json_stringn((const char *)kp->payload, kp->payload_len)
	                            : json_string("")) != CVM_OK ||
	    cvm_json_set(o, "compose_hash", event_hex(a, "compose-hash")) != CVM_OK ||
	    cvm_json_set(o, "vm_config", json_string(a->vm_config)) != CVM_OK ||
	    cvm_json_set(o, "cloud_vendor", json_string(a->cloud_vendor)) != CVM_OK ||
	    cvm_json_set(o, "cloud_product", json_string(a->cloud_product)) != CVM_OK)
		r = fail_r(c, CVM_E_NOMEM, "");
	agent_rtlog_unlock(&a->rt);
	if (r == CVM_OK) {
		*out = o;
		o = NULL;
	}
out:
	free(tcb_text);
	json_decref(tcb);
	json_decref(o);
	return r;
}

static int m_version(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	(void)ctx;
	*out = json_pack("{s:s,s:s}", "version", AGENT_API_VERSION, "rev", "cvmkit-" CVM_VERSION_STRING);
	return *out != NULL ? CVM_OK : fail_r(c, CVM_E_NOMEM, "");
}

/* ---- TLS keys ------------------------------------------------------------- */

struct tls_args {
	const char *subject;
	const char **alt_names;
	size_t alt_count;
	bool ra_tls, server_auth, client_auth;
	bool nb_set, na_set;
	uint64_t not_before, not_after;
	const uint8_t *app_info; /* the 1.9 extension's MessagePack (with_app_info), or NULL */
	size_t app_info_len;
};

/* append_pem_certs adds each CERTIFICATE block of a PEM text (our own
 * config), read with the library's PEM framer, to `arr` as one string from
 * its BEGIN line to its END line. */
static int append_pem_certs(json_t *arr, const char *pem)
{
	static const char begin[] = "-----BEGIN ", end[] = "-----END ", dashes[] = "-----";
	struct cvm_pem_block b;
	struct cvm_rd in;

	cvm_rd_init(&in, pem, strlen(pem));
	while (cvm_pem_next(&in, &b) == CVM_OK) {
		const char *from = (const char *)b.label.p - (sizeof(begin) - 1);
		const char *to = (const char *)b.body.p + b.body.len + (sizeof(end) - 1) + b.label.len +
		                 (sizeof(dashes) - 1);

		if (!cvm_pem_label_is(&b, "CERTIFICATE"))
			continue;
		if (json_array_append_new(arr, json_stringn(from, (size_t)(to - from))) != 0)
			return CVM_E_NOMEM;
	}
	return CVM_OK;
}

/* key_reply answers {"key": PEM of kp, "certificate_chain": chain}; it
 * takes `chain`. */
static int key_reply(struct cvm_rpc_call *c, const struct cvm_p256_keypair *kp, json_t *chain, json_t **out)
{
	struct cvm_secret *key_pem = NULL;
	json_t *o = NULL;
	int r = cvm_p256_keypair_pkcs8_pem(kp, &key_pem);

	if (r != CVM_OK) {
		json_decref(chain);
		return fail_r(c, r, "cannot export the key");
	}
	o = json_object();
	r = o != NULL ? cvm_json_set(o, "key", json_stringn((const char *)key_pem->p, key_pem->len))
	              : CVM_E_NOMEM;
	if (r == CVM_OK)
		r = cvm_json_set(o, "certificate_chain", chain);
	else
		json_decref(chain);
	cvm_secret_free(key_pem);
	if (r != CVM_OK) {
		json_decref(o);
		return fail_r(c, r, "");
	}
	*out = o;
	return CVM_OK;
}

/* issue_tls_kms answers GetTlsKey and Tappd.DeriveKey with KMS-issued app
 * keys: a KMS of the app's root signs a CSR for `kp` that carries the
 * key's attestation (KMS.SignCert); the chain is the KMS's (leaf, App CA,
 * root CA). The KMS computes the app info itself from the attestation. */
static int issue_tls_kms(struct agent *a, struct cvm_rpc_call *c, const struct cvm_p256_keypair *kp,
                         const struct tls_args *t, json_t **out)
{
	struct cvm_csr_params p;
	json_t *chain = NULL;
	char why[640] = "";
	int r;

	memset(&p, 0, sizeof(p));
	p.subject =
	    t->subject[0] != '\0' ? t->subject : (a->app_name[0] != '\0' ? a->app_name : "cvmkit-app");
	p.alt_names = t->alt_names;
	p.alt_name_count = t->alt_count;
	p.usage_server_auth = t->server_auth;
	p.usage_client_auth = t->client_auth;
	p.ext_quote = t->ra_tls;
	p.ext_app_info = t->app_info != NULL;
	p.has_not_before = t->nb_set;
	p.not_before = t->not_before;
	p.has_not_after = t->na_set;
	p.not_after = t->not_after;
	r = agent_kms_sign(a, kp, &p, &chain, why, sizeof(why));
	if (r == CVM_E_UNSUPPORTED || r == CVM_E_INVAL)
		return cvm_rpc_fail(c, 400, r, "%s", why);
	if (r != CVM_OK)
		return cvm_rpc_fail(c, 502, r, "%s", why);
	return key_reply(c, kp, chain, out);
}

/* issue_tls answers GetTlsKey and Tappd.DeriveKey for the key pair `kp`:
 * a certificate from the app CA (key-provider key and ca_cert of the app
 * keys), with the RA-TLS extensions when asked. */
static int issue_tls(struct agent *a, struct cvm_rpc_call *c, const struct cvm_p256_keypair *kp,
                     const struct tls_args *t, json_t **out)
{
	struct cvm_p256_keypair *ca_key = NULL;
	struct cvm_cert **ca = NULL;
	size_t ca_count = 0;
	struct cvm_cert_template tpl;
	struct cvm_secret *key_pem = NULL;
	char *leaf = NULL;
	size_t leaf_len = 0;
	json_t *o = NULL, *chain = NULL;
	int64_t now = (int64_t)time(NULL);
	char why[256];
	int r;

	if (a->keys->key_provider == CVM_KEY_PROVIDER_KMS) {
		r = issue_tls_kms(a, c, kp, t, out);
		goto out;
	}
	if (a->keys->key_provider_key == NULL || a->keys->ca_cert == NULL || a->keys->ca_cert[0] == '\0') {
		r = cvm_rpc_fail(c, 400, CVM_E_UNSUPPORTED,
		                 "the app keys have no CA to issue TLS certificates");
		goto out;
	}
	r = cvm_p256_keypair_from_pem((const char *)a->keys->key_provider_key->p,
	                              a->keys->key_provider_key->len, &ca_key);
	if (r == CVM_OK)
		r = cvm_certs_parse_pem((const uint8_t *)a->keys->ca_cert, strlen(a->keys->ca_cert), &ca,
		                        &ca_count);
	if (r != CVM_OK) {
		r = fail_r(c, r, "the app CA key or certificate is unusable");
		goto out;
	}
	cvm_cert_template_init(&tpl);
	tpl.common_name =
	    t->subject[0] != '\0' ? t->subject : (a->app_name[0] != '\0' ? a->app_name : "cvmkit-app");
	tpl.alt_names = t->alt_names;
	tpl.alt_name_count = t->alt_count;
	tpl.not_before = t->nb_set ? (int64_t)t->not_before : now - 3600;
	tpl.not_after = t->na_set ? (int64_t)t->not_after : now + (int64_t)a->cfg.cert_lifetime_hours * 3600;
	tpl.usage_server_auth = t->server_auth;
	tpl.usage_client_auth = t->client_auth;
	why[0] = '\0';
	r = agent_ratls_cert(a, &tpl, kp, t->ra_tls, t->app_info, t->app_info_len, ca_key, ca[0], &leaf,
	                     &leaf_len, why, sizeof(why));
	if (r == CVM_E_INVAL) {
		r = cvm_rpc_fail(
		    c, 400, r,
		    "cannot issue the certificate: check subject, alt_names and not_before < not_after");
		goto out;
	}
	if (r != CVM_OK) {
		r = fail_r(c, r, why[0] != '\0' ? why : "cannot issue the certificate");
		goto out;
	}
	r = cvm_p256_keypair_pkcs8_pem(kp, &key_pem);
	if (r != CVM_OK) {
		r = fail_r(c, r, "cannot export the key");
		goto out;
	}
	o = json_object();
	chain = json_array();
	if (o == NULL || chain == NULL || json_array_append_new(chain, json_stringn(leaf, leaf_len)) != 0 ||
	    append_pem_certs(chain, a->keys->ca_cert) != CVM_OK ||
	    cvm_json_set(o, "key", json_stringn((const char *)key_pem->p, key_pem->len)) != CVM_OK) {
		r = fail_r(c, CVM_E_NOMEM, "");
		goto out;
	}
	r = cvm_json_set(o, "certificate_chain", chain);
	chain = NULL;
	if (r != CVM_OK) {
		r = fail_r(c, r, "");
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_decref(o);
	json_decref(chain);
	cvm_secret_free(key_pem);
	free(leaf);
	cvm_certs_free(ca, ca_count);
	cvm_p256_keypair_free(ca_key);
	return r;
}

static int tls_args_read(struct cvm_rpc_call *c, struct tls_args *t, bool tappd)
{
	size_t n;
	int r;

	memset(t, 0, sizeof(*t));
	r = cvm_rpc_str(c, "subject", SUBJECT_MAX, &t->subject, &n);
	if (r == CVM_OK)
		r = cvm_rpc_str_array(c, "alt_names", CVM_CERT_ALT_NAMES_MAX, ALT_NAME_MAX, &t->alt_names,
		                      &t->alt_count);
	if (r == CVM_OK)
		r = cvm_rpc_bool(c, "usage_ra_tls", &t->ra_tls);
	if (r == CVM_OK)
		r = cvm_rpc_bool(c, "usage_server_auth", &t->server_auth);
	if (r == CVM_OK)
		r = cvm_rpc_bool(c, "usage_client_auth", &t->client_auth);
	if (r == CVM_OK && !tappd)
		r = cvm_rpc_u64(c, "not_before", &t->nb_set, &t->not_before);
	if (r == CVM_OK && !tappd)
		r = cvm_rpc_u64(c, "not_after", &t->na_set, &t->not_after);
	if (r != CVM_OK)
		return r;
	if (t->nb_set && t->na_set && t->not_before >= t->not_after)
		return cvm_rpc_fail(c, 400, CVM_E_INVAL, "not_before must be before not_after");
	if ((t->nb_set && t->not_before > (uint64_t)INT64_MAX / 2) ||
	    (t->na_set && t->not_after > (uint64_t)253402300799))
		return cvm_rpc_fail(c, 400, CVM_E_INVAL, "not_before or not_after is out of range");
	return CVM_OK;
}

static int m_get_tls_key(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct cvm_p256_keypair *kp = NULL;
	struct tls_args t;
	bool app_info = false;
	uint8_t *info = NULL;
	int r;

	r = tls_args_read(c, &t, false);
	if (r == CVM_OK)
		r = cvm_rpc_bool(c, "with_app_info", &app_info);
	if (r == CVM_OK && app_info) {
		struct agent *a = ctx;

		r = agent_rtlog_lock(&a->rt, LOCK_SH);
		if (r == CVM_OK) {
			r = agent_app_info(a, &info, &t.app_info_len);
			agent_rtlog_unlock(&a->rt);
		}
		t.app_info = info;
		if (r != CVM_OK)
			r = fail_r(c, r, "cannot encode the app info");
	}
	if (r == CVM_OK) {
		r = cvm_kdf_tls_key_new(&kp);
		if (r != CVM_OK)
			r = fail_r(c, r, "cannot make a key");
	}
	if (r == CVM_OK)
		r = issue_tls(ctx, c, kp, &t, out);
	cvm_p256_keypair_free(kp);
	free(t.alt_names);
	free(info);
	return r;
}

static int m_derive_key(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct agent *a = ctx;
	struct cvm_p256_keypair *kp = NULL;
	struct cvm_getkey g;
	struct tls_args t;
	const char *path;
	size_t path_len;
	bool random_seed = false;
	int r;

	memset(&g, 0, sizeof(g));
	r = tls_args_read(c, &t, true);
	if (r == CVM_OK)
		r = cvm_rpc_str(c, "path", KEY_PATH_MAX, &path, &path_len);
	if (r == CVM_OK)
		r = cvm_rpc_bool(c, "random_seed", &random_seed);
	if (r != CVM_OK)
		goto out;
	if (t.subject[0] == '\0')
		t.subject = path; /* the Tappd default */
	if (random_seed) {
		r = cvm_kdf_tls_key_new(&kp);
	} else {
		/* The same 32 bytes as GetKey(path), read as a P-256 scalar. */
		r = cvm_kdf_get_key(a->keys, path, path_len, "", 0, CVM_KEY_ALG_SECP256K1, a->getkey_flags,
		                    &g);
		if (r == CVM_OK)
			r = g.key != NULL ? cvm_p256_keypair_from_scalar(g.key->p, &kp) : CVM_E_INTERNAL;
	}
	if (r != CVM_OK) {
		r = fail_r(c, r, "cannot derive the key");
		goto out;
	}
	r = issue_tls(a, c, kp, &t, out);
out:
	cvm_getkey_cleanup(&g);
	cvm_p256_keypair_free(kp);
	free(t.alt_names);
	return r;
}

static int m_derive_k256_key(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct cvm_getkey g;
	json_t *o = NULL;
	int r;

	memset(&g, 0, sizeof(g));
	r = derive(ctx, c, &g);
	if (r != CVM_OK)
		goto out;
	o = json_object();
	if (o == NULL || cvm_json_set(o, "k256_key", hex_secret(g.key->p, g.key->len)) != CVM_OK ||
	    cvm_json_set(o, "k256_signature_chain", chain_json(g.chain0, g.chain1, g.chain1_len, NULL, 0)) !=
	        CVM_OK) {
		r = fail_r(c, CVM_E_NOMEM, "");
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_decref(o);
	cvm_getkey_cleanup(&g);
	return r;
}

/* ---- the snapshot's file walk (walk.c) ------------------------------------ */

/* m_snapshot_files starts the walk ({"start": true}; a walk already
 * running is followed, not restarted: one walk serves every caller) and
 * answers its status; with "offset" (and "generation", "limit"), a page
 * of the finished walk's (path, digest) pairs. */
static int m_snapshot_files(void *ctx, struct cvm_rpc_call *c, json_t **out)
{
	struct agent_walk_query q;
	bool start = false, has_offset = false, has_limit = false;
	int r, status = 500;

	memset(&q, 0, sizeof(q));
	r = cvm_rpc_bool(c, "start", &start);
	if (r == CVM_OK)
		r = cvm_rpc_u64(c, "offset", &has_offset, &q.offset);
	if (r == CVM_OK)
		r = cvm_rpc_u64(c, "limit", &has_limit, &q.limit);
	if (r == CVM_OK)
		r = cvm_rpc_u64(c, "generation", &q.has_generation, &q.generation);
	if (r != CVM_OK)
		return r;
	if (start && has_offset)
		return cvm_rpc_fail(c, 400, CVM_E_INVAL, "ask for a page (offset) or start a walk, not both");
	q.want_entries = has_offset;
	if (start) {
		r = agent_walk_start(ctx, &q.already_running, c->err, sizeof(c->err));
		if (r != CVM_OK) {
			c->status = r == CVM_E_UNSUPPORTED ? 403 : 500;
			return r;
		}
	}
	r = agent_walk_status(ctx, &q, out, &status, c->err, sizeof(c->err));
	if (r != CVM_OK)
		c->status = status;
	return r;
}

/* ---- the tables ----------------------------------------------------------- */

static const struct cvm_rpc_method dstack_methods[] = {
    {"GetTlsKey", m_get_tls_key},
    {"GetKey", m_get_key},
    {"GetQuote", m_get_quote},
    {"Attest", m_attest},
    {"EmitEvent", m_emit_event},
    {"Info", m_info},
    {"Sign", m_sign},
    {"Verify", m_verify},
    {"Version", m_version},
    {"GetEvidence", m_get_evidence},
};

static const struct cvm_rpc_method tappd_methods[] = {
    {"DeriveKey", m_derive_key},
    {"DeriveK256Key", m_derive_k256_key},
    {"TdxQuote", m_tdx_quote},
    {"RawQuote", m_raw_quote},
    {"Info", m_info},
    {"Version", m_version},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* dstack's v1 DstackGuest (AttestGpu: no GPU is ever attached, so it is
 * answered as an unknown method). */
static const struct cvm_rpc_method v1_methods[] = {
    {"IssueCert", m_get_tls_key}, {"GetKey", m_v1_get_key}, {"Attest", m_v1_attest},
    {"Info", m_v1_info},          {"Version", m_version},
};

/* What the TLS listener serves: nothing that derives or hands out keys,
 * quotes caller data, or changes state; Info without the documents unless
 * the app made them public. GetEvidence quotes a nonce, never raw report
 * data: its report_data is the evidence binding (include/cvmkit/evidence.h),
 * a domain no other use of the TEE shares, so a remote caller gets exactly
 * what a local one does (docs/daemons/cvm-agentd.md, "The TLS listener").
 * SnapshotFiles starts the one file walk the guest has (bounded by
 * [snapshot]'s caps; never two at once) and reads its result. */
static const struct cvm_rpc_method tls_methods[] = {
    {"Info", m_tls_info},
    {"Version", m_version},
    {"Attest", m_tls_attest},
    {"FreshAttest", m_fresh_attest},
    {"GetEvidence", m_get_evidence},
    {"SnapshotFiles", m_snapshot_files},
};

const struct cvm_rpc_mount agent_dstack_mounts[] = {
    {"/v1/", NULL, v1_methods, COUNT(v1_methods), 404},
    {"/", NULL, dstack_methods, COUNT(dstack_methods), 0},
    {"/v0/", NULL, dstack_methods, COUNT(dstack_methods), 0},
};
const size_t agent_dstack_mount_count = COUNT(agent_dstack_mounts);

const struct cvm_rpc_mount agent_tappd_mounts[] = {
    {"/prpc/", "Tappd.", tappd_methods, COUNT(tappd_methods), 0},
};
const size_t agent_tappd_mount_count = COUNT(agent_tappd_mounts);

const struct cvm_rpc_mount agent_tls_mounts[] = {
    {"/", NULL, tls_methods, COUNT(tls_methods), 404},
};
const size_t agent_tls_mount_count = COUNT(agent_tls_mounts);

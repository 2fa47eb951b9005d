/* Test helpers for attested TLS: see ratls_ident.h. */
#include "ratls_ident.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/amd.h>
#include <cvmkit/bytes.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>

int ratls_sim_init(const char *dir, int64_t now)
{
	struct cvm_tee_sim_opts o;

	cvm_tee_sim_opts_init(&o, now);
	o.with_snp = true;
	return cvm_tee_sim_init(dir, &o);
}

/* der_of_pem reads the first certificate of a PEM file. */
static int der_of_pem(const char *path, uint8_t **der, size_t *der_len)
{
	uint8_t *pem = NULL, *out = NULL;
	size_t pem_len = 0;
	struct cvm_pem_block b;
	struct cvm_rd rd;
	int r;

	*der = NULL;
	*der_len = 0;
	r = cvm_file_read(path, (size_t)1 << 20, &pem, &pem_len);
	if (r != CVM_OK)
		goto out;
	cvm_rd_init(&rd, pem, pem_len);
	r = cvm_pem_next(&rd, &b);
	if (r != CVM_OK)
		goto out;
	out = malloc(cvm_pem_decoded_max(&b));
	if (out == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = cvm_pem_decode(&b, out, cvm_pem_decoded_max(&b), der_len);
	if (r != CVM_OK)
		goto out;
	*der = out;
	out = NULL;
out:
	free(out);
	free(pem);
	return r;
}

int ratls_sim_verifier(const char *sim_dir, unsigned cache_entries, int64_t at,
                       struct cvm_ratls_verifier **out, char *why, size_t why_len)
{
	struct cvm_dcap_collateral *dcap = NULL;
	struct cvm_amd_collateral *amd = NULL;
	struct cvm_ratls_verifier_opts o;
	struct cvm_policy pol;
	uint8_t *ark = NULL;
	size_t ark_len = 0;
	char path[512], err[256] = "";
	int r;

	*out = NULL;
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx", sim_dir);
	r = cvm_dcap_collateral_load_dir(path, &dcap, err, sizeof(err));
	if (r != CVM_OK) {
		(void)snprintf(why, why_len, "TDX collateral: %s", err);
		goto out;
	}
	(void)snprintf(path, sizeof(path), "%s/collateral/snp", sim_dir);
	r = cvm_amd_collateral_load_dir(path, &amd, err, sizeof(err));
	if (r != CVM_OK) {
		(void)snprintf(why, why_len, "SNP collateral: %s", err);
		goto out;
	}
	(void)snprintf(path, sizeof(path), "%s/collateral/snp/ark.pem", sim_dir);
	r = der_of_pem(path, &ark, &ark_len);
	if (r != CVM_OK) {
		(void)snprintf(why, why_len, "the mock ARK: %s", cvm_strerror(r));
		goto out;
	}
	cvm_policy_init(&pol);
	memset(&o, 0, sizeof(o));
	o.policy = &pol;
	o.dcap = dcap;
	o.amd = amd;
	o.intel_root_der = dcap->root_ca;
	o.intel_root_der_len = dcap->root_ca_len;
	o.amd_root_der = ark;
	o.amd_root_der_len = ark_len;
	o.cache_entries = cache_entries;
	r = cvm_ratls_verifier_new(&o, at, out);
	if (r != CVM_OK)
		(void)snprintf(why, why_len, "cvm_ratls_verifier_new: %s", cvm_strerror(r));
out:
	free(ark);
	cvm_amd_collateral_free(amd);
	cvm_dcap_collateral_free(dcap);
	return r;
}

static enum cvm_ratls_tee tee_of(enum cvm_tee_platform p)
{
	return p == CVM_TEE_PLATFORM_SNP ? CVM_RATLS_TEE_SNP : CVM_RATLS_TEE_TDX;
}

/* va_of writes the VersionedAttestation V0 of the evidence `ev` (no event
 * log: the simulator's RTMRs start at zero and the tests extend none). */
static int va_of(enum cvm_tee_platform p, const struct cvm_tee_evidence *ev, const uint8_t rd[64],
                 uint8_t **va, size_t *va_len)
{
	struct cvm_va v;

	memset(&v, 0, sizeof(v));
	v.version = 0;
	v.variant = p == CVM_TEE_PLATFORM_SNP ? 3u : 0u; /* DstackAmdSevSnp, DstackTdx */
	v.tee = tee_of(p);
	v.quote = ev->data;
	v.quote_len = ev->data_len;
	memcpy(v.report_data, rd, 64);
	v.config = "{}";
	v.config_len = 2;
	return cvm_va_encode(&v, 0, va, va_len);
}

/* der_octet_string wraps `len` bytes as DER OCTET STRING (what dstack's
 * extensions carry in extnValue). */
static uint8_t *der_octet_string(const uint8_t *p, size_t len, size_t *out_len)
{
	uint8_t *o = malloc(len + 6);
	size_t h = 0;

	if (o == NULL)
		return NULL;
	o[h++] = 0x04;
	if (len < 0x80) {
		o[h++] = (uint8_t)len;
	} else if (len < 0x10000) {
		o[h++] = 0x82;
		o[h++] = (uint8_t)(len >> 8);
		o[h++] = (uint8_t)len;
	} else {
		o[h++] = 0x84;
		o[h++] = (uint8_t)(len >> 24);
		o[h++] = (uint8_t)(len >> 16);
		o[h++] = (uint8_t)(len >> 8);
		o[h++] = (uint8_t)len;
	}
	memcpy(o + h, p, len);
	*out_len = h + len;
	return o;
}

int ratls_ident_make(const struct ratls_ident_opts *o, struct ratls_ident *out, char *why, size_t why_len)
{
	static const char *const names[] = {"localhost", "127.0.0.1"};
	struct cvm_tee_evidence ev;
	struct cvm_ratls_make_opts mo;
	struct cvm_ratls_evidence re;
	uint8_t rd[64], *va = NULL, *ext = NULL;
	size_t va_len = 0, ext_len = 0;
	int64_t now = (int64_t)time(NULL);
	int r;

	memset(out, 0, sizeof(*out));
	memset(&ev, 0, sizeof(ev));
	out->platform = o->platform;
	r = cvm_tee_open_sim(o->sim_dir, o->platform, &out->tee);
	if (r != CVM_OK) {
		(void)snprintf(why, why_len, "cvm_tee_open_sim: %s", cvm_strerror(r));
		goto out;
	}
	r = cvm_p256_keypair_generate(&out->key);
	if (r != CVM_OK) {
		(void)snprintf(why, why_len, "key: %s", cvm_strerror(r));
		goto out;
	}
	r = cvm_ratls_report_data(o->profile, o->bind != NULL ? o->bind : out->key, NULL, rd);
	if (r != CVM_OK) {
		(void)snprintf(why, why_len, "cvm_ratls_report_data: %s", cvm_strerror(r));
		goto out;
	}
	r = cvm_tee_quote(out->tee, rd, &ev);
	if (r != CVM_OK) {
		(void)snprintf(why, why_len, "cvm_tee_quote: %s", cvm_strerror(r));
		goto out;
	}
	if (o->bind != NULL) {
		/* A certificate for our key whose evidence binds another key:
		 * cvm_ratls_make refuses to make one, so build it by hand, as
		 * an attacker would (dstack's 1.8 extension). */
		struct cvm_cert_template t;
		struct cvm_cert_ext_spec e;

		r = va_of(o->platform, &ev, rd, &va, &va_len);
		if (r != CVM_OK) {
			(void)snprintf(why, why_len, "cvm_va_encode: %s", cvm_strerror(r));
			goto out;
		}
		ext = der_octet_string(va, va_len, &ext_len);
		if (ext == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		cvm_cert_template_init(&t);
		t.common_name = "localhost";
		t.alt_names = names;
		t.alt_name_count = 2;
		t.not_before = now - 60;
		t.not_after = now + CVM_RATLS_LIFETIME_DEFAULT;
		t.usage_server_auth = !o->client;
		t.usage_client_auth = o->client;
		e.oid = "1.3.6.1.4.1.62397.1.8";
		e.critical = false;
		e.value = ext;
		e.value_len = ext_len;
		t.exts = &e;
		t.ext_count = 1;
		r = cvm_cert_make(&t, out->key, NULL, NULL, &out->chain_pem, &out->chain_len);
		if (r != CVM_OK)
			(void)snprintf(why, why_len, "cvm_cert_make: %s", cvm_strerror(r));
		goto out;
	}
	memset(&mo, 0, sizeof(mo));
	mo.profile = o->profile;
	mo.common_name = "localhost";
	mo.alt_names = names;
	mo.alt_name_count = 2;
	mo.not_before = o->not_before != 0 ? o->not_before : now - 60;
	mo.not_after = o->not_after != 0 ? o->not_after : now + CVM_RATLS_LIFETIME_DEFAULT;
	mo.server_auth = !o->client;
	mo.client_auth = o->client;
	mo.legacy_tdx = false;
	memset(&re, 0, sizeof(re));
	re.tee = tee_of(o->platform);
	re.quote = ev.data;
	re.quote_len = ev.data_len;
	r = cvm_ratls_make(&mo, out->key, &re, NULL, NULL, &out->chain_pem, &out->chain_len);
	if (r != CVM_OK)
		(void)snprintf(why, why_len, "cvm_ratls_make: %s", cvm_strerror(r));
out:
	free(ext);
	free(va);
	cvm_tee_evidence_cleanup(&ev);
	if (r != CVM_OK)
		ratls_ident_cleanup(out);
	return r;
}

void ratls_ident_cleanup(struct ratls_ident *id)
{
	cvm_tee_free(id->tee);
	cvm_p256_keypair_free(id->key);
	free(id->chain_pem);
	memset(id, 0, sizeof(*id));
}

int ratls_fresh_answer(struct ratls_ident *id, const uint8_t bound[64], uint8_t **va, size_t *va_len)
{
	struct cvm_tee_evidence ev;
	uint8_t rd[64];
	int r;

	*va = NULL;
	*va_len = 0;
	memset(&ev, 0, sizeof(ev));
	r = cvm_ratls_fresh_report_data(bound, rd);
	if (r != CVM_OK)
		return r;
	r = cvm_tee_quote(id->tee, rd, &ev);
	if (r != CVM_OK)
		return r;
	r = va_of(id->platform, &ev, rd, va, va_len);
	cvm_tee_evidence_cleanup(&ev);
	return r;
}

bool ratls_ident_platform(const char *arg, struct ratls_ident_opts *o)
{
	if (strcmp(arg, "tdx") == 0)
		o->platform = CVM_TEE_PLATFORM_TDX;
	else if (strcmp(arg, "snp") == 0)
		o->platform = CVM_TEE_PLATFORM_SNP;
	else
		return false;
	return true;
}

bool ratls_ident_profile(const char *arg, struct ratls_ident_opts *o)
{
	if (strcmp(arg, "dstack") == 0)
		o->profile = CVM_RATLS_PROFILE_DSTACK;
	else if (strcmp(arg, "cosmian") == 0)
		o->profile = CVM_RATLS_PROFILE_COSMIAN;
	else
		return false;
	return true;
}

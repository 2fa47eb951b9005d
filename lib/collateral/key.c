/* Item keys: their names (the file names in the cache) and the vendors'
 * URLs (Intel PCS/PCCS API v4, AMD KDS). */
#include <stdio.h>
#include <string.h>

#include <cvmkit/amd.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>

#include "coll_int.h"

/* Intel's PCS host serves no root CA CRL under /sgx/certification/v4 (a
 * PCCS does, as rootcacrl); the Intel SGX Root CA names its CRL here, in
 * its CRL distribution point. */
#define INTEL_PCS_BASE "https://api.trustedservices.intel.com"
#define INTEL_ROOT_CRL_URL "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"

void cvm_cache_key_init(struct cvm_cache_key *k, enum cvm_cache_kind kind)
{
	memset(k, 0, sizeof(*k));
	k->kind = kind;
}

const char *cvm_cache_source_name(enum cvm_cache_source s)
{
	switch (s) {
	case CVM_CACHE_FROM_DISK:
		return "cache";
	case CVM_CACHE_FROM_UPSTREAM:
		return "upstream";
	case CVM_CACHE_FROM_STALE:
		return "stale";
	default:
		return "none";
	}
}

bool coll_key_is_amd(enum cvm_cache_kind kind)
{
	return kind == CVM_CACHE_VCEK || kind == CVM_CACHE_AMD_CHAIN || kind == CVM_CACHE_AMD_CRL;
}

static bool product_ok(enum cvm_snp_product p)
{
	return p == CVM_SNP_PRODUCT_MILAN || p == CVM_SNP_PRODUCT_GENOA || p == CVM_SNP_PRODUCT_TURIN;
}

bool coll_key_valid(const struct cvm_cache_key *k)
{
	if (k == NULL)
		return false;
	if (k->tee != CVM_CACHE_SGX && k->tee != CVM_CACHE_TDX)
		return false;
	if (k->update != CVM_CACHE_STANDARD && k->update != CVM_CACHE_EARLY)
		return false;
	if (k->kind != CVM_CACHE_PCK_CERTS) {
		/* the manifest fields belong to PCK_CERTS only (keys compare whole) */
		uint8_t any = k->by_manifest ? 1 : 0;

		for (size_t i = 0; i < sizeof(k->manifest_hash); i++)
			any |= k->manifest_hash[i];
		if (any != 0)
			return false;
	}
	switch (k->kind) {
	case CVM_CACHE_TCB_INFO:
	case CVM_CACHE_QE_ID:
	case CVM_CACHE_QVE_ID:
	case CVM_CACHE_ROOT_CRL:
		return true;
	case CVM_CACHE_PCK_CRL:
		return k->ca == CVM_CACHE_CA_PROCESSOR || k->ca == CVM_CACHE_CA_PLATFORM;
	case CVM_CACHE_PCK_CERT:
		return k->enc_ppid_len > 0 && k->enc_ppid_len <= sizeof(k->enc_ppid);
	case CVM_CACHE_PCK_CERTS:
		/* by manifest (its hash) or by encrypted PPID, never both */
		return k->by_manifest ? k->enc_ppid_len == 0
		                      : k->enc_ppid_len > 0 && k->enc_ppid_len <= sizeof(k->enc_ppid);
	case CVM_CACHE_VCEK:
		if (!product_ok(k->product) || k->hwid_len == 0 || k->hwid_len > sizeof(k->hwid))
			return false;
		return k->product == CVM_SNP_PRODUCT_TURIN ? k->hwid_len == 8 : k->hwid_len == 64;
	case CVM_CACHE_AMD_CHAIN:
	case CVM_CACHE_AMD_CRL:
		return product_ok(k->product) &&
		       (k->signer == CVM_SNP_SIGNER_VCEK || k->signer == CVM_SNP_SIGNER_VLEK);
	default:
		return false;
	}
}

size_t coll_key_body_max(enum cvm_cache_kind kind)
{
	switch (kind) {
	case CVM_CACHE_TCB_INFO:
	case CVM_CACHE_QE_ID:
	case CVM_CACHE_QVE_ID:
		return CVM_DCAP_JSON_MAX;
	case CVM_CACHE_PCK_CRL:
	case CVM_CACHE_ROOT_CRL:
		return CVM_DCAP_CRL_MAX;
	case CVM_CACHE_PCK_CERT:
	case CVM_CACHE_VCEK:
		/* one certificate (CVM_AMD_CERT_MAX is the same cap) */
		return CVM_DCAP_CERT_MAX;
	case CVM_CACHE_PCK_CERTS:
		return COLL_PCK_CERTS_BODY_MAX;
	case CVM_CACHE_AMD_CHAIN:
		return CVM_DCAP_PEM_MAX;
	case CVM_CACHE_AMD_CRL:
		return CVM_AMD_CRL_MAX;
	default:
		return 0;
	}
}

static void hex(struct cvm_wr *w, const uint8_t *p, size_t n, bool upper)
{
	static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
	const char *d = upper ? up : lo;

	for (size_t i = 0; i < n; i++) {
		char two[2] = {d[p[i] >> 4], d[p[i] & 15]};

		cvm_wr_bytes(w, two, 2);
	}
}

static const char *tee_name(enum cvm_cache_tee t)
{
	return t == CVM_CACHE_TDX ? "tdx" : "sgx";
}

static const char *signer_dir(enum cvm_snp_signer s)
{
	return s == CVM_SNP_SIGNER_VLEK ? "vlek" : "vcek";
}

static int finish(struct cvm_wr *w, char *buf)
{
	cvm_wr_u8(w, 0);
	if (w->err) {
		buf[0] = '\0';
		return CVM_E_TOO_LARGE;
	}
	return CVM_OK;
}

int cvm_cache_key_name(const struct cvm_cache_key *k, char *buf, size_t cap)
{
	struct cvm_wr w;
	uint8_t h[32];

	if (buf == NULL || cap == 0)
		return CVM_E_INVAL;
	buf[0] = '\0';
	if (!coll_key_valid(k))
		return CVM_E_INVAL;
	cvm_wr_init_fixed(&w, buf, cap);
	switch (k->kind) {
	case CVM_CACHE_TCB_INFO:
		cvm_wr_fmt(&w, "%s/tcb/", tee_name(k->tee));
		hex(&w, k->fmspc, sizeof(k->fmspc), false);
		break;
	case CVM_CACHE_QE_ID:
		cvm_wr_fmt(&w, "%s/qe", tee_name(k->tee));
		break;
	case CVM_CACHE_QVE_ID:
		cvm_wr_str(&w, "sgx/qve");
		break;
	case CVM_CACHE_PCK_CRL:
		cvm_wr_fmt(&w, "sgx/pckcrl/%s", k->ca == CVM_CACHE_CA_PLATFORM ? "platform" : "processor");
		break;
	case CVM_CACHE_ROOT_CRL:
		cvm_wr_str(&w, "sgx/rootcacrl");
		break;
	case CVM_CACHE_PCK_CERT:
		/* The encrypted PPID is 768 hex digits: its SHA-256 names it. */
		cvm_sha256(k->enc_ppid, k->enc_ppid_len, h);
		cvm_wr_str(&w, "sgx/pckcert/");
		hex(&w, h, 16, false);
		cvm_wr_str(&w, "/");
		hex(&w, k->cpusvn, sizeof(k->cpusvn), false);
		cvm_wr_fmt(&w, "/%04x/", (unsigned)k->pcesvn);
		hex(&w, k->pceid, sizeof(k->pceid), false);
		break;
	case CVM_CACHE_PCK_CERTS:
		/* named by the SHA-256 of what identifies the platform */
		if (k->by_manifest)
			memcpy(h, k->manifest_hash, sizeof(h));
		else
			cvm_sha256(k->enc_ppid, k->enc_ppid_len, h);
		cvm_wr_str(&w, k->by_manifest ? "sgx/pckcerts/manifest-" : "sgx/pckcerts/ppid-");
		hex(&w, h, sizeof(h), false);
		cvm_wr_str(&w, "/");
		hex(&w, k->pceid, sizeof(k->pceid), false);
		break;
	case CVM_CACHE_VCEK:
		cvm_wr_fmt(&w, "amd/vcek/%s/", cvm_snp_product_name(k->product));
		hex(&w, k->hwid, k->hwid_len, false);
		cvm_wr_fmt(&w, "/%016llx", (unsigned long long)k->tcb);
		break;
	case CVM_CACHE_AMD_CHAIN:
	case CVM_CACHE_AMD_CRL:
		cvm_wr_fmt(&w, "amd/%s/%s/%s", signer_dir(k->signer), cvm_snp_product_name(k->product),
		           k->kind == CVM_CACHE_AMD_CRL ? "crl" : "cert_chain");
		break;
	default:
		return CVM_E_INVAL;
	}
	if ((k->kind == CVM_CACHE_TCB_INFO || k->kind == CVM_CACHE_QE_ID || k->kind == CVM_CACHE_QVE_ID) &&
	    k->update == CVM_CACHE_EARLY)
		cvm_wr_str(&w, ".early");
	return finish(&w, buf);
}

int coll_key_file(const struct cvm_cache_key *k, char *buf, size_t cap)
{
	int r = cvm_cache_key_name(k, buf, cap);

	if (r != CVM_OK)
		return r;
	for (char *p = buf; *p != '\0'; p++)
		if (*p == '/')
			*p = '+';
	return CVM_OK;
}

int cvm_cache_key_url(const struct cvm_cache_key *k, const char *base, char *buf, size_t cap)
{
	struct cvm_snp_tcb t;
	struct cvm_wr w;
	const char *sep = "?";

	if (buf == NULL || cap == 0)
		return CVM_E_INVAL;
	buf[0] = '\0';
	if (!coll_key_valid(k) || base == NULL || base[0] == '\0' || base[strlen(base) - 1] == '/')
		return CVM_E_INVAL;
	cvm_wr_init_fixed(&w, buf, cap);
	switch (k->kind) {
	case CVM_CACHE_TCB_INFO:
		cvm_wr_fmt(&w, "%s/%s/certification/v4/tcb?fmspc=", base, tee_name(k->tee));
		hex(&w, k->fmspc, sizeof(k->fmspc), true);
		sep = "&";
		break;
	case CVM_CACHE_QE_ID:
		cvm_wr_fmt(&w, "%s/%s/certification/v4/qe/identity", base, tee_name(k->tee));
		break;
	case CVM_CACHE_QVE_ID:
		cvm_wr_fmt(&w, "%s/sgx/certification/v4/qve/identity", base);
		break;
	case CVM_CACHE_PCK_CRL:
		cvm_wr_fmt(&w, "%s/sgx/certification/v4/pckcrl?ca=%s&encoding=der", base,
		           k->ca == CVM_CACHE_CA_PLATFORM ? "platform" : "processor");
		break;
	case CVM_CACHE_ROOT_CRL:
		if (strcmp(base, INTEL_PCS_BASE) == 0)
			cvm_wr_str(&w, INTEL_ROOT_CRL_URL);
		else
			cvm_wr_fmt(&w, "%s/sgx/certification/v4/rootcacrl", base);
		break;
	case CVM_CACHE_PCK_CERT: {
		uint8_t le[2] = {(uint8_t)(k->pcesvn & 0xff), (uint8_t)(k->pcesvn >> 8)};

		cvm_wr_fmt(&w, "%s/sgx/certification/v4/pckcert?encrypted_ppid=", base);
		hex(&w, k->enc_ppid, k->enc_ppid_len, false);
		cvm_wr_str(&w, "&cpusvn=");
		hex(&w, k->cpusvn, sizeof(k->cpusvn), false);
		cvm_wr_str(&w, "&pcesvn=");
		hex(&w, le, sizeof(le), false);
		cvm_wr_str(&w, "&pceid=");
		hex(&w, k->pceid, sizeof(k->pceid), false);
		break;
	}
	case CVM_CACHE_PCK_CERTS:
		/* by manifest: POSTed to this URL (cvm_cache_pck_certs) */
		cvm_wr_fmt(&w, "%s/sgx/certification/v4/pckcerts", base);
		if (!k->by_manifest) {
			cvm_wr_str(&w, "?encrypted_ppid=");
			hex(&w, k->enc_ppid, k->enc_ppid_len, false);
			cvm_wr_str(&w, "&pceid=");
			hex(&w, k->pceid, sizeof(k->pceid), false);
		}
		break;
	case CVM_CACHE_VCEK:
		cvm_snp_tcb_decode(k->tcb, k->product, &t);
		cvm_wr_fmt(&w, "%s/vcek/v1/%s/", base, cvm_snp_product_name(k->product));
		hex(&w, k->hwid, k->hwid_len, false);
		if (k->product == CVM_SNP_PRODUCT_TURIN)
			cvm_wr_fmt(&w, "?fmcSPL=%u&blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u", t.fmc,
			           t.bootloader, t.tee, t.snp, t.microcode);
		else
			cvm_wr_fmt(&w, "?blSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u", t.bootloader, t.tee,
			           t.snp, t.microcode);
		break;
	case CVM_CACHE_AMD_CHAIN:
	case CVM_CACHE_AMD_CRL:
		cvm_wr_fmt(&w, "%s/%s/v1/%s/%s", base, signer_dir(k->signer),
		           cvm_snp_product_name(k->product),
		           k->kind == CVM_CACHE_AMD_CRL ? "crl" : "cert_chain");
		break;
	default:
		return CVM_E_INVAL;
	}
	if ((k->kind == CVM_CACHE_TCB_INFO || k->kind == CVM_CACHE_QE_ID || k->kind == CVM_CACHE_QVE_ID) &&
	    k->update == CVM_CACHE_EARLY)
		cvm_wr_fmt(&w, "%supdate=early", sep);
	return finish(&w, buf);
}

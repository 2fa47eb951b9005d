/* lib/collateral: key names and vendor URLs, verify-before-store, put/get
 * round trips with the real vectors at their own times, stale serving and
 * expiry, bundles (pack, import into a second directory, tampering,
 * truncation and bit flips), the assembly that lib/dcap and lib/amd verify,
 * and the warm path; PCK certificates by platform (keys, the pckcerts
 * parser, verify-before-store of every certificate, the selection for a raw
 * TCB). Cross-process single flight and fetching over HTTP are
 * in tests/integration/collateral_fetch.sh, which runs this program as a
 * helper ("test_collateral_cache get DIR URL NOW NAME..."). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <netinet/in.h>
#include <pthread.h>
#include <unistd.h>

#include <cmocka.h>

#include <cvmkit/amd.h>
#include <cvmkit/collateral.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/snp.h>
#include <cvmkit/verify.h>

#include "collateral/coll_int.h"
#include "dcap/dcap_lib.h"
#include "sim/mockamd_lib.h"
#include "vectors.h"

/* One DCAP vector per TEE, with its verification time (its manifest's
 * verify_at_unix). */
static const struct {
	const char *dir;
	int64_t at;
} dcap_vectors[] = {
    {"tdx/dcapqvl-tdx-v4-uptodate", 1752919234},
    {"tdx/automata-tdx-v4-0625", 1749095100},
    {"tdx/automata-tdx-v5-alibaba", 1749945600},
    {"sgx/dcapqvl-sgx-v3-confswhardening", 1752919277},
};

#define SNP_DIR "snp/trustee-milan-vcek"
#define SNP_AT 1700000000

static char tmp_root[512];
static unsigned tmp_n;

static const char *new_dir(char *buf, size_t len)
{
	(void)snprintf(buf, len, "%s/c%u", tmp_root, tmp_n++);
	return buf;
}

static void rm_rf(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char p[1024];

	if (d == NULL) {
		(void)unlink(path);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		(void)snprintf(p, sizeof(p), "%s/%s", path, e->d_name);
		rm_rf(p);
	}
	(void)closedir(d);
	(void)rmdir(path);
}

static int setup(void **state)
{
	(void)state;
	(void)snprintf(tmp_root, sizeof(tmp_root), "%s/cvm-coll-XXXXXX",
	               getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmp_root) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rm_rf(tmp_root);
	return 0;
}

static struct cvm_cache *open_cache(const char *dir, const char *intel_url)
{
	struct cvm_cache_opts o;
	struct cvm_cache *c = NULL;
	char err[256] = "";
	int r;

	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.intel_url = intel_url;
	o.amd_url = intel_url;
	o.offline = intel_url == NULL;
	o.retries = 1;
	o.backoff_ms = 1;
	o.backoff_max_ms = 2;
	o.connect_timeout_ms = 500;
	o.timeout_ms = 1000;
	r = cvm_cache_open(&o, &c, err, sizeof(err));
	if (r != CVM_OK)
		print_message("cvm_cache_open: %s\n", err);
	assert_int_equal(r, CVM_OK);
	return c;
}

static size_t count_items(struct cvm_cache *c);

/* ---- names and URLs ------------------------------------------------------ */

static void expect_url(const struct cvm_cache_key *k, const char *base, const char *want_url,
                       const char *want_name)
{
	char buf[2048];

	assert_int_equal(cvm_cache_key_url(k, base, buf, sizeof(buf)), CVM_OK);
	assert_string_equal(buf, want_url);
	assert_int_equal(cvm_cache_key_name(k, buf, sizeof(buf)), CVM_OK);
	assert_string_equal(buf, want_name);
}

static void key_names_and_urls_follow_the_vendors_documented_forms(void **state)
{
	static const uint8_t fmspc[6] = {0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00};
	const char *pcs = "https://api.trustedservices.intel.com";
	const char *pccs = "https://pccs.example:8081";
	const char *kds = "https://kdsintf.amd.com";
	struct cvm_cache_key k;
	char buf[2048];

	(void)state;
	/* Intel PCS API v4 (its documented example FMSPC) */
	cvm_cache_key_init(&k, CVM_CACHE_TCB_INFO);
	memcpy(k.fmspc, fmspc, sizeof(fmspc));
	expect_url(&k, pcs,
	           "https://api.trustedservices.intel.com/sgx/certification/v4/tcb?fmspc=00906ED50000",
	           "sgx/tcb/00906ed50000");
	k.tee = CVM_CACHE_TDX;
	k.update = CVM_CACHE_EARLY;
	expect_url(
	    &k, pcs,
	    "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=00906ED50000&update=early",
	    "tdx/tcb/00906ed50000.early");
	cvm_cache_key_init(&k, CVM_CACHE_QE_ID);
	k.tee = CVM_CACHE_TDX;
	expect_url(&k, pcs, "https://api.trustedservices.intel.com/tdx/certification/v4/qe/identity",
	           "tdx/qe");
	k.update = CVM_CACHE_EARLY;
	expect_url(&k, pccs, "https://pccs.example:8081/tdx/certification/v4/qe/identity?update=early",
	           "tdx/qe.early");
	cvm_cache_key_init(&k, CVM_CACHE_QVE_ID);
	expect_url(&k, pcs, "https://api.trustedservices.intel.com/sgx/certification/v4/qve/identity",
	           "sgx/qve");
	cvm_cache_key_init(&k, CVM_CACHE_PCK_CRL);
	expect_url(
	    &k, pcs,
	    "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=processor&encoding=der",
	    "sgx/pckcrl/processor");
	k.ca = CVM_CACHE_CA_PLATFORM;
	expect_url(&k, pccs, "https://pccs.example:8081/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
	           "sgx/pckcrl/platform");
	/* The root CA CRL: a PCCS serves rootcacrl; Intel's PCS host does not,
	 * the root names its CRL on certificates.trustedservices.intel.com. */
	cvm_cache_key_init(&k, CVM_CACHE_ROOT_CRL);
	expect_url(&k, pccs, "https://pccs.example:8081/sgx/certification/v4/rootcacrl", "sgx/rootcacrl");
	expect_url(&k, pcs, "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der",
	           "sgx/rootcacrl");
	cvm_cache_key_init(&k, CVM_CACHE_PCK_CERT);
	k.enc_ppid_len = 2;
	k.enc_ppid[0] = 0xab;
	k.enc_ppid[1] = 0xcd;
	memset(k.cpusvn, 0x11, sizeof(k.cpusvn));
	k.pcesvn = 0x000d;
	k.pceid[0] = 0;
	k.pceid[1] = 0;
	assert_int_equal(cvm_cache_key_url(&k, pcs, buf, sizeof(buf)), CVM_OK);
	assert_string_equal(
	    buf, "https://api.trustedservices.intel.com/sgx/certification/v4/pckcert?encrypted_ppid=abcd"
	         "&cpusvn=11111111111111111111111111111111&pcesvn=0d00&pceid=0000");
	assert_int_equal(cvm_cache_key_name(&k, buf, sizeof(buf)), CVM_OK);
	assert_true(strncmp(buf, "sgx/pckcert/", 12) == 0);

	/* AMD KDS */
	cvm_cache_key_init(&k, CVM_CACHE_AMD_CHAIN);
	k.product = CVM_SNP_PRODUCT_MILAN;
	expect_url(&k, kds, "https://kdsintf.amd.com/vcek/v1/Milan/cert_chain", "amd/vcek/Milan/cert_chain");
	k.signer = CVM_SNP_SIGNER_VLEK;
	k.product = CVM_SNP_PRODUCT_GENOA;
	expect_url(&k, kds, "https://kdsintf.amd.com/vlek/v1/Genoa/cert_chain", "amd/vlek/Genoa/cert_chain");
	k.kind = CVM_CACHE_AMD_CRL;
	expect_url(&k, kds, "https://kdsintf.amd.com/vlek/v1/Genoa/crl", "amd/vlek/Genoa/crl");
	cvm_cache_key_init(&k, CVM_CACHE_VCEK);
	k.product = CVM_SNP_PRODUCT_MILAN;
	k.hwid_len = 64;
	memset(k.hwid, 0xab, 64);
	/* Milan layout: bl 3, tee 0, snp 8, ucode 115 (0x73) */
	k.tcb = 0x7300000000000003ull | (8ull << 48);
	assert_int_equal(cvm_cache_key_url(&k, kds, buf, sizeof(buf)), CVM_OK);
	assert_non_null(strstr(buf, "https://kdsintf.amd.com/vcek/v1/Milan/abababab"));
	assert_non_null(strstr(buf, "?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"));
	k.product = CVM_SNP_PRODUCT_TURIN;
	k.hwid_len = 8;
	/* Turin layout: fmc 1, bl 2, tee 3, snp 4, ucode 5 */
	k.tcb = 0x0500000004030201ull;
	assert_int_equal(cvm_cache_key_url(&k, kds, buf, sizeof(buf)), CVM_OK);
	assert_string_equal(buf,
	                    "https://kdsintf.amd.com/vcek/v1/Turin/abababababababab?fmcSPL=1&blSPL=2&teeSPL=3"
	                    "&snpSPL=4&ucodeSPL=5");
	/* A Turin chip ID is 8 bytes, the others' 64: anything else names nothing. */
	k.hwid_len = 64;
	assert_int_equal(cvm_cache_key_url(&k, kds, buf, sizeof(buf)), CVM_E_INVAL);
	/* A base with a trailing slash, a kind out of range, no room. */
	cvm_cache_key_init(&k, CVM_CACHE_QVE_ID);
	assert_int_equal(cvm_cache_key_url(&k, "https://x/", buf, sizeof(buf)), CVM_E_INVAL);
	assert_int_equal(cvm_cache_key_url(&k, pcs, buf, 20), CVM_E_TOO_LARGE);
	k.kind = (enum cvm_cache_kind)42;
	assert_int_equal(cvm_cache_key_name(&k, buf, sizeof(buf)), CVM_E_INVAL);
}

/* ---- put/get with the real vectors ------------------------------------- */

static uint8_t *read_rel(const char *dir, const char *file, size_t *len)
{
	char rel[512];

	(void)snprintf(rel, sizeof(rel), "%s/%s", dir, file);
	return vector_read(rel, len);
}

/* pck_crl_key is the PCK CRL key the vector's quote needs (its CA). */
static struct cvm_cache_key pck_crl_key(const char *dir)
{
	struct cvm_cache_need need;
	char err[256];
	uint8_t *quote;
	size_t qlen;

	quote = read_rel(dir, "quote.bin", &qlen);
	assert_int_equal(cvm_cache_need_quote(quote, qlen, &need, err, sizeof(err)), CVM_OK);
	free(quote);
	assert_int_equal(need.keys[1].kind, CVM_CACHE_PCK_CRL);
	return need.keys[1];
}

static void put_item(struct cvm_cache *c, enum cvm_cache_kind kind, const char *dir, const char *body_file,
                     const char *chain_file, int64_t at, int want)
{
	struct cvm_cache_item it;
	char err[512] = "";
	int r;

	memset(&it, 0, sizeof(it));
	if (kind == CVM_CACHE_PCK_CRL)
		it.key = pck_crl_key(dir);
	else
		cvm_cache_key_init(&it.key, kind);
	it.body = read_rel(dir, body_file, &it.body_len);
	if (chain_file != NULL) {
		size_t n;
		uint8_t *p = read_rel(dir, chain_file, &n);

		it.issuer_chain = calloc(1, n + 1);
		assert_non_null(it.issuer_chain);
		memcpy(it.issuer_chain, p, n);
		it.issuer_chain_len = n;
		free(p);
	}
	it.fetched_at = at;
	(void)snprintf(it.source, sizeof(it.source), "test");
	r = cvm_cache_put(c, &it, at, err, sizeof(err));
	if (r != want)
		print_message("put %s: %d %s\n", body_file, r, err);
	assert_int_equal(r, want);
	free(it.body);
	free(it.issuer_chain);
}

/* verify_quote_with checks that the collateral the cache assembles for the
 * vector's quote makes lib/dcap's verdict the one the vectors state
 * (authentic, a TCB level matched). */
static void verify_quote_with(struct cvm_cache *c, const char *dir, int64_t at)
{
	struct cvm_dcap_collateral *coll = NULL;
	struct cvm_dcap_verified *v = NULL;
	struct cvm_cache_info info;
	struct cvm_dcap_result res;
	struct cvm_policy pol;
	struct cvm_report rep;
	char err[512] = "";
	uint8_t *quote;
	size_t qlen;
	int r;

	quote = read_rel(dir, "quote.bin", &qlen);
	r = cvm_cache_dcap(c, quote, qlen, at, CVM_CACHE_NO_FETCH, &coll, &info, err, sizeof(err));
	if (r != CVM_OK)
		print_message("%s: cvm_cache_dcap: %s\n", dir, err);
	assert_int_equal(r, CVM_OK);
	assert_int_equal(info.items, 4);
	assert_int_equal(info.source, CVM_CACHE_FROM_DISK);
	assert_string_equal(info.anchor, "Intel SGX Root CA (built in)");
	cvm_policy_init(&pol);
	pol.accepted_tcb_statuses = ~0u; /* the verdict, not this policy, is under test */
	pol.accept_any_advisory = true;
	memset(&res, 0, sizeof(res));
	cvm_report_init(&rep);
	r = cvm_verify_quote(quote, qlen, coll, NULL, 0, at, &pol, &rep, &res);
	if (r != CVM_OK && r != CVM_E_POLICY)
		print_message("%s: %s\n", dir, cvm_report_reason(&rep));
	assert_true(res.authentic);
	assert_true(r == CVM_OK || r == CVM_E_POLICY);
	/* The warm path gives verified collateral that lib/dcap accepts too,
	 * and the same object on the next call. */
	r = cvm_cache_dcap_warm(c, quote, qlen, at, &v, &info, NULL, err, sizeof(err));
	assert_int_equal(r, CVM_OK);
	{
		struct cvm_dcap_verified *v2 = NULL;

		r = cvm_cache_dcap_warm(c, quote, qlen, at, &v2, &info, NULL, err, sizeof(err));
		assert_int_equal(r, CVM_OK);
		assert_ptr_equal(v, v2);
	}
	memset(&res, 0, sizeof(res));
	r = cvm_dcap_quote_authenticate(v, quote, qlen, at, NULL, &res);
	assert_true(res.authentic);
	cvm_dcap_collateral_free(coll);
	free(quote);
}

static void every_dcap_vector_round_trips_through_put_and_get(void **state)
{
	char dirbuf[600];

	(void)state;
	for (size_t i = 0; i < sizeof(dcap_vectors) / sizeof(dcap_vectors[0]); i++) {
		const char *dir = dcap_vectors[i].dir;
		int64_t at = dcap_vectors[i].at;
		struct cvm_cache *c = open_cache(new_dir(dirbuf, sizeof(dirbuf)), NULL);
		struct cvm_cache_need need;
		struct cvm_cache_item *it = NULL;
		struct cvm_cache_info info;
		char err[512];
		uint8_t *quote, *want;
		size_t qlen, want_len;

		put_item(c, CVM_CACHE_ROOT_CRL, dir, "root_ca_crl.der", NULL, at, CVM_OK);
		quote = read_rel(dir, "quote.bin", &qlen);
		assert_int_equal(cvm_cache_need_quote(quote, qlen, &need, err, sizeof(err)), CVM_OK);
		assert_int_equal(need.count, 4);
		put_item(c, CVM_CACHE_PCK_CRL, dir, "pck_crl.der", "pck_crl_issuer_chain.pem", at, CVM_OK);
		/* The TCB info and QE identity go in under the keys the quote needs. */
		{
			struct cvm_cache_item ti;

			memset(&ti, 0, sizeof(ti));
			ti.key = need.keys[2];
			ti.body = read_rel(dir, "tcb_info.json", &ti.body_len);
			ti.issuer_chain =
			    (char *)read_rel(dir, "tcb_info_issuer_chain.pem", &ti.issuer_chain_len);
			ti.fetched_at = at;
			assert_int_equal(cvm_cache_put(c, &ti, at, err, sizeof(err)), CVM_OK);
			free(ti.body);
			free(ti.issuer_chain);
			memset(&ti, 0, sizeof(ti));
			ti.key = need.keys[3];
			ti.body = read_rel(dir, "qe_identity.json", &ti.body_len);
			ti.issuer_chain =
			    (char *)read_rel(dir, "qe_identity_issuer_chain.pem", &ti.issuer_chain_len);
			ti.fetched_at = at;
			assert_int_equal(cvm_cache_put(c, &ti, at, err, sizeof(err)), CVM_OK);
			free(ti.body);
			free(ti.issuer_chain);
		}
		/* The PCK CRL key the quote names is the one stored (its CA). */
		assert_int_equal(
		    cvm_cache_get(c, &need.keys[1], at, CVM_CACHE_NO_FETCH, &it, &info, err, sizeof(err)),
		    CVM_OK);
		want = read_rel(dir, "pck_crl.der", &want_len);
		assert_int_equal(it->body_len, want_len);
		assert_memory_equal(it->body, want, want_len);
		assert_true(it->expires > at);
		assert_true(it->next_update >= it->expires);
		assert_int_equal(info.source, CVM_CACHE_FROM_DISK);
		assert_int_equal(info.age_s, 0);
		free(want);
		cvm_cache_item_free(it);
		it = NULL;
		assert_int_equal(count_items(c), 4);
		verify_quote_with(c, dir, at);
		free(quote);
		cvm_cache_close(c);
	}
}

static int count_one(void *ctx, const struct cvm_cache_item *it)
{
	(void)it;
	(*(size_t *)ctx)++;
	return 0;
}

static size_t count_items(struct cvm_cache *c)
{
	size_t n = 0;

	assert_int_equal(cvm_cache_list(c, count_one, &n), CVM_OK);
	return n;
}

static void a_bad_signature_a_wrong_chain_or_an_expired_item_is_never_stored(void **state)
{
	const char *dir = dcap_vectors[0].dir;
	int64_t at = dcap_vectors[0].at;
	char dirbuf[600], err[512];
	struct cvm_cache *c = open_cache(new_dir(dirbuf, sizeof(dirbuf)), NULL);
	struct cvm_cache_need need;
	struct cvm_cache_item ti, *got = NULL;
	uint8_t *quote;
	size_t qlen;
	char *p;

	(void)state;
	quote = read_rel(dir, "quote.bin", &qlen);
	assert_int_equal(cvm_cache_need_quote(quote, qlen, &need, err, sizeof(err)), CVM_OK);
	memset(&ti, 0, sizeof(ti));
	ti.key = need.keys[2];
	ti.body = read_rel(dir, "tcb_info.json", &ti.body_len);
	ti.issuer_chain = (char *)read_rel(dir, "tcb_info_issuer_chain.pem", &ti.issuer_chain_len);
	ti.fetched_at = at;

	/* A bad signature: one digit of the signed tcbEvaluationDataNumber. */
	p = strstr((char *)ti.body, "\"tcbEvaluationDataNumber\":");
	assert_non_null(p);
	p += strlen("\"tcbEvaluationDataNumber\":");
	*p = *p == '1' ? '2' : '1';
	assert_int_equal(cvm_cache_put(c, &ti, at, err, sizeof(err)), CVM_E_SIGNATURE);
	print_message("bad signature: %s\n", err);
	*p = *p == '1' ? '2' : '1';
	/* A wrong chain: the PCK CRL's (a PCK CA is not the TCB Signing cert). */
	{
		char *good = ti.issuer_chain;
		size_t good_len = ti.issuer_chain_len;

		ti.issuer_chain = (char *)read_rel(dir, "pck_crl_issuer_chain.pem", &ti.issuer_chain_len);
		assert_int_equal(cvm_cache_put(c, &ti, at, err, sizeof(err)), CVM_E_CHAIN);
		print_message("wrong chain: %s\n", err);
		free(ti.issuer_chain);
		ti.issuer_chain = good;
		ti.issuer_chain_len = good_len;
	}
	/* Expired: a year after the vector's time. */
	assert_int_equal(cvm_cache_put(c, &ti, at + 366 * 86400, err, sizeof(err)), CVM_E_EXPIRED);
	print_message("expired: %s\n", err);
	/* Another FMSPC's key: a valid item, but not the one asked for. */
	ti.key.fmspc[0] ^= 1;
	assert_int_equal(cvm_cache_put(c, &ti, at, err, sizeof(err)), CVM_E_MISMATCH);
	ti.key.fmspc[0] ^= 1;
	assert_int_equal(count_items(c), 0);
	assert_int_equal(cvm_cache_get(c, &need.keys[2], at, 0, &got, NULL, err, sizeof(err)),
	                 CVM_E_NOT_FOUND);
	/* And the untouched item is stored. */
	assert_int_equal(cvm_cache_put(c, &ti, at, err, sizeof(err)), CVM_OK);
	assert_int_equal(count_items(c), 1);
	free(ti.body);
	free(ti.issuer_chain);
	free(quote);
	cvm_cache_close(c);
}

/* closed_port returns a local TCP port nothing listens on. */
static unsigned closed_port(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port;

	assert_true(s >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &alen), 0);
	port = ntohs(a.sin_port);
	(void)close(s); /* bound, never listened: connections are refused */
	return port;
}

static void a_stale_item_serves_while_the_upstream_is_down_until_it_expires(void **state)
{
	const char *dir = dcap_vectors[1].dir;
	int64_t at = dcap_vectors[1].at;
	char dirbuf[600], url[64], err[512];
	struct cvm_cache *c;
	struct cvm_cache_opts o;
	struct cvm_cache_key k;
	struct cvm_cache_item *it = NULL;
	struct cvm_cache_info info;
	int64_t expires;

	(void)state;
	new_dir(dirbuf, sizeof(dirbuf));
	c = open_cache(dirbuf, NULL);
	put_item(c, CVM_CACHE_PCK_CRL, dir, "pck_crl.der", "pck_crl_issuer_chain.pem", at, CVM_OK);
	k = pck_crl_key(dir);
	assert_int_equal(cvm_cache_get(c, &k, at, CVM_CACHE_NO_FETCH, &it, NULL, err, sizeof(err)), CVM_OK);
	expires = it->expires;
	cvm_cache_item_free(it);
	it = NULL;
	cvm_cache_close(c);

	(void)snprintf(url, sizeof(url), "http://127.0.0.1:%u", closed_port());
	memset(&o, 0, sizeof(o));
	o.dir = dirbuf;
	o.intel_url = url;
	o.retries = 1;
	o.backoff_ms = 1;
	o.backoff_max_ms = 2;
	o.refresh_s = 60;
	o.refresh_ahead_s = 1;
	assert_int_equal(cvm_cache_open(&o, &c, err, sizeof(err)), CVM_OK);
	/* Current: served from disk without asking the upstream. */
	assert_int_equal(cvm_cache_get(c, &k, at + 30, 0, &it, &info, err, sizeof(err)), CVM_OK);
	assert_int_equal(info.source, CVM_CACHE_FROM_DISK);
	assert_int_equal(info.age_s, 30);
	assert_string_equal(info.upstream_err, "");
	cvm_cache_item_free(it);
	it = NULL;
	/* Due for refresh, upstream down: the last good item, marked stale. */
	assert_int_equal(cvm_cache_get(c, &k, at + 120, 0, &it, &info, err, sizeof(err)), CVM_OK);
	assert_int_equal(info.source, CVM_CACHE_FROM_STALE);
	assert_string_equal(cvm_cache_source_name(info.source), "stale");
	assert_int_equal(info.age_s, 120);
	assert_int_equal(info.fetched, 0);
	assert_non_null(strstr(info.upstream_err, "cannot reach"));
	assert_string_equal(info.upstream, url);
	print_message("stale: %s\n", info.upstream_err);
	cvm_cache_item_free(it);
	it = NULL;
	/* Expired: never served, the upstream's failure is the answer. */
	assert_int_equal(cvm_cache_get(c, &k, expires + 1, 0, &it, &info, err, sizeof(err)), CVM_E_UPSTREAM);
	assert_null(it);
	assert_non_null(strstr(err, "expired"));
	print_message("expired: %s\n", err);
	cvm_cache_close(c);
	/* Offline, likewise. */
	c = open_cache(dirbuf, NULL);
	assert_int_equal(cvm_cache_get(c, &k, expires + 1, 0, &it, &info, err, sizeof(err)), CVM_E_EXPIRED);
	assert_null(it);
	cvm_cache_close(c);
}

/* ---- bundles ------------------------------------------------------------ */

static const char *fill_from_vector(char *dirbuf, size_t len, size_t which, size_t *count)
{
	char path[1024], err[512] = "";
	struct cvm_cache *c = open_cache(new_dir(dirbuf, len), NULL);
	int r;

	r = cvm_cache_import(c, vector_path(path, sizeof(path), dcap_vectors[which].dir),
	                     dcap_vectors[which].at, count, err, sizeof(err));
	if (r != CVM_OK)
		print_message("import: %s\n", err);
	assert_int_equal(r, CVM_OK);
	cvm_cache_close(c);
	return dirbuf;
}

static void a_packed_bundle_imports_into_another_directory_and_verifies_the_quote(void **state)
{
	char d1[600], d2[600], bundle[700], err[512] = "";
	struct cvm_cache *c;
	size_t n = 0, m = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(dcap_vectors) / sizeof(dcap_vectors[0]); i++) {
		int64_t at = dcap_vectors[i].at;

		fill_from_vector(d1, sizeof(d1), i, &n);
		assert_int_equal(n, 4);
		c = open_cache(d1, NULL);
		(void)snprintf(bundle, sizeof(bundle), "%s/b%zu.cvmbundle", tmp_root, i);
		assert_int_equal(cvm_cache_pack(c, bundle, at, &m, err, sizeof(err)), CVM_OK);
		assert_int_equal(m, 4);
		cvm_cache_close(c);
		c = open_cache(new_dir(d2, sizeof(d2)), NULL);
		if (cvm_cache_import(c, bundle, at, &m, err, sizeof(err)) != CVM_OK)
			fail_msg("import %s: %s", bundle, err);
		assert_int_equal(m, 4);
		verify_quote_with(c, dcap_vectors[i].dir, at);
		cvm_cache_close(c);
	}
}

static uint8_t *pack_one_vector(size_t which, size_t *len, char *bundle, size_t blen)
{
	char d1[600], err[512] = "";
	struct cvm_cache *c;
	uint8_t *buf = NULL;
	size_t n;

	fill_from_vector(d1, sizeof(d1), which, &n);
	c = open_cache(d1, NULL);
	(void)snprintf(bundle, blen, "%s/p%u.cvmbundle", tmp_root, tmp_n++);
	assert_int_equal(cvm_cache_pack(c, bundle, dcap_vectors[which].at, &n, err, sizeof(err)), CVM_OK);
	cvm_cache_close(c);
	assert_int_equal(cvm_file_read(bundle, 64u << 20, &buf, len), CVM_OK);
	return buf;
}

static int import_bytes(const uint8_t *buf, size_t len, int64_t at, size_t *stored)
{
	char d[600], path[700], err[512] = "";
	struct cvm_cache *c;
	int r;

	(void)snprintf(path, sizeof(path), "%s/t.cvmbundle", tmp_root);
	assert_int_equal(cvm_file_write(path, buf, len, 0644), CVM_OK);
	c = open_cache(new_dir(d, sizeof(d)), NULL);
	r = cvm_cache_import(c, path, at, NULL, err, sizeof(err));
	*stored = count_items(c);
	cvm_cache_close(c);
	rm_rf(d);
	return r;
}

static void a_bundle_with_one_tampered_item_stores_nothing(void **state)
{
	char bundle[700];
	size_t len, stored;
	uint8_t *buf = pack_one_vector(0, &len, bundle, sizeof(bundle));
	uint8_t *p;

	(void)state;
	assert_int_equal(import_bytes(buf, len, dcap_vectors[0].at, &stored), CVM_OK);
	assert_int_equal(stored, 4);
	/* One digit of the TCB info's signed tcbEvaluationDataNumber. */
	p = memmem(buf, len, "\"tcbEvaluationDataNumber\":", 26);
	assert_non_null(p);
	p[26] = p[26] == '1' ? '2' : '1';
	/* as it is, the bundle's own digest finds the damage */
	assert_int_equal(import_bytes(buf, len, dcap_vectors[0].at, &stored), CVM_E_FORMAT);
	assert_int_equal(stored, 0);
	/* with the digest made again (anyone can), the vendor's signature does */
	cvm_sha256(buf, len - 32, buf + len - 32);
	assert_int_equal(import_bytes(buf, len, dcap_vectors[0].at, &stored), CVM_E_SIGNATURE);
	assert_int_equal(stored, 0);
	free(buf);
}

/* A flip in what no vendor signs (an item's fetched_at, its source) is
 * found by the bundle's digest: nothing is stored. */
static void a_bundle_with_a_flip_in_unsigned_metadata_stores_nothing(void **state)
{
	char bundle[700];
	size_t len, stored;
	uint8_t *buf = pack_one_vector(0, &len, bundle, sizeof(bundle));
	uint8_t *p;

	(void)state;
	p = memmem(buf, len, "http", 4);
	if (p == NULL)
		p = memmem(buf, len, "dir:", 4);
	assert_non_null(p); /* an item's source, which no signature covers */
	p[1] ^= 0x01;
	assert_int_equal(import_bytes(buf, len, dcap_vectors[0].at, &stored), CVM_E_FORMAT);
	assert_int_equal(stored, 0);
	free(buf);
}

static size_t sample_step(size_t n)
{
	return getenv("CVM_UNDER_VALGRIND") != NULL ? (n / 64 + 1) : 1;
}

static void the_bundle_parser_rejects_every_truncation_and_trailing_bytes(void **state)
{
	char bundle[700];
	size_t len, stored;
	uint8_t *buf = pack_one_vector(1, &len, bundle, sizeof(bundle));
	uint8_t *more;

	(void)state;
	for (size_t n = 0; n < len; n += sample_step(len)) {
		int r = import_bytes(buf, n, dcap_vectors[1].at, &stored);

		assert_int_not_equal(r, CVM_OK);
		assert_int_equal(stored, 0);
	}
	more = malloc(len + 1);
	assert_non_null(more);
	memcpy(more, buf, len);
	more[len] = 0;
	assert_int_equal(import_bytes(more, len + 1, dcap_vectors[1].at, &stored), CVM_E_FORMAT);
	assert_int_equal(stored, 0);
	free(more);
	free(buf);
}

/* Every bit flip of an item record fails to parse, or parses to a record
 * that differs; a flip in the body or chain never verifies. */
static void the_item_parser_survives_every_bit_flip_and_truncation(void **state)
{
	const char *dir = dcap_vectors[0].dir;
	int64_t at = dcap_vectors[0].at;
	char d[600], err[512];
	struct cvm_cache *c = open_cache(new_dir(d, sizeof(d)), NULL);
	struct cvm_cache_key k;
	struct cvm_cache_item *it = NULL, *back = NULL;
	uint8_t *rec = NULL, *again = NULL;
	size_t len = 0, again_len = 0, body_at;
	size_t verified = 0, flips = 0;

	(void)state;
	put_item(c, CVM_CACHE_ROOT_CRL, dir, "root_ca_crl.der", NULL, at, CVM_OK);
	cvm_cache_key_init(&k, CVM_CACHE_ROOT_CRL);
	assert_int_equal(cvm_cache_get(c, &k, at, CVM_CACHE_NO_FETCH, &it, NULL, err, sizeof(err)), CVM_OK);
	assert_int_equal(coll_item_encode(it, &rec, &len), CVM_OK);
	body_at = len - 4 - it->body_len; /* the body is last but for the (empty) chain's length */
	assert_memory_equal(rec + body_at - 4 + 4, it->body, 16);
	for (size_t n = 0; n < len; n += sample_step(len)) {
		assert_int_not_equal(coll_item_decode(rec, n, &back), CVM_OK);
		assert_null(back);
	}
	for (size_t bit = 0; bit < len * 8; bit += sample_step(len * 8)) {
		int r;

		rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		r = coll_item_decode(rec, len, &back);
		if (r == CVM_OK) {
			assert_int_equal(coll_item_encode(back, &again, &again_len), CVM_OK);
			assert_true(again_len != len || memcmp(again, rec, len) == 0);
			free(again);
			again = NULL;
			if (bit / 8 >= body_at && bit / 8 < body_at + it->body_len) {
				flips++;
				if (cvm_cache_put(c, back, at, err, sizeof(err)) == CVM_OK)
					verified++;
			}
			cvm_cache_item_free(back);
			back = NULL;
		}
		rec[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		/* Expensive only where it verifies: sample the body. */
		if (bit / 8 >= body_at && bit / 8 < body_at + it->body_len &&
		    getenv("CVM_UNDER_VALGRIND") == NULL)
			bit += 8 * 7;
	}
	print_message("%zu body flips parsed, %zu verified\n", flips, verified);
	assert_true(flips > 0);
	assert_int_equal(verified, 0);
	free(rec);
	cvm_cache_item_free(it);
	cvm_cache_close(c);
}

static double mono_s(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The warm path: a hit within the same second reads no file (the items
 * may even be gone), a later call looks at the items again, new items for
 * the same quote are authenticated afresh, and expiry ends it. The same
 * TDX quote comes with two collaterals of different dates (zkdcap's and
 * automata's 2025-06 one). */
static void the_warm_path_reads_no_file_within_a_second_and_follows_item_changes(void **state)
{
	const char *old_dir = "tdx/zkdcap-tdx-v4-outofdate", *new_dir_ = "tdx/automata-tdx-v4-0625";
	const int64_t old_at = 1737467060, new_at = 1749095100;
	char d[600], path[1024], items[700], err[512] = "";
	struct cvm_cache *c = open_cache(new_dir(d, sizeof(d)), NULL);
	struct cvm_dcap_verified *v = NULL;
	struct cvm_cache_info info;
	struct cvm_dcap_collateral *coll = NULL;
	uint8_t *quote, *quote2;
	size_t qlen, q2len, n;
	int64_t old_issue, expires;
	double t0, warm_s, cold_s;
	size_t rounds = getenv("CVM_UNDER_VALGRIND") != NULL ? 20 : 2000;

	(void)state;
	quote = read_rel(old_dir, "quote.bin", &qlen);
	quote2 = read_rel(new_dir_, "quote.bin", &q2len);
	assert_int_equal(qlen, q2len);
	assert_memory_equal(quote, quote2, qlen);
	assert_int_equal(
	    cvm_cache_import(c, vector_path(path, sizeof(path), old_dir), old_at, &n, err, sizeof(err)),
	    CVM_OK);
	assert_int_equal(cvm_cache_dcap_warm(c, quote, qlen, old_at, &v, &info, NULL, err, sizeof(err)),
	                 CVM_OK);
	old_issue = cvm_dcap_verified_tcb_info(v)->issue_date;
	expires = info.expires;
	/* Warm hits, timed against cold assembly (files read, collateral
	 * authenticated). */
	t0 = mono_s();
	for (size_t i = 0; i < rounds; i++)
		assert_int_equal(
		    cvm_cache_dcap_warm(c, quote, qlen, old_at, &v, &info, NULL, err, sizeof(err)), CVM_OK);
	warm_s = (mono_s() - t0) / (double)rounds;
	t0 = mono_s();
	for (size_t i = 0; i < rounds / 100 + 1; i++) {
		struct cvm_dcap_verified *cv = NULL;

		assert_int_equal(
		    cvm_cache_dcap(c, quote, qlen, old_at, CVM_CACHE_NO_FETCH, &coll, NULL, err, sizeof(err)),
		    CVM_OK);
		assert_int_equal(cvm_dcap_collateral_authenticate(coll, NULL, 0, old_at, NULL, &cv), CVM_OK);
		cvm_dcap_verified_free(cv);
		cvm_dcap_collateral_free(coll);
		coll = NULL;
	}
	cold_s = (mono_s() - t0) / (double)(rounds / 100 + 1);
	print_message("warm hit %.1f us, cold (read + authenticate) %.1f us\n", warm_s * 1e6, cold_s * 1e6);
	assert_true(warm_s < cold_s);
	/* Within the same second no file is read: remove them all. */
	(void)snprintf(items, sizeof(items), "%s/items", d);
	rm_rf(items);
	assert_int_equal(cvm_cache_dcap_warm(c, quote, qlen, old_at, &v, &info, NULL, err, sizeof(err)),
	                 CVM_OK);
	/* A second later the items are looked at again: gone, so no answer. */
	assert_int_not_equal(
	    cvm_cache_dcap_warm(c, quote, qlen, old_at + 1, &v, &info, NULL, err, sizeof(err)), CVM_OK);
	cvm_cache_close(c);
	/* New items for the same quote: authenticated afresh. */
	c = open_cache(d, NULL);
	assert_int_equal(
	    cvm_cache_import(c, vector_path(path, sizeof(path), old_dir), old_at, &n, err, sizeof(err)),
	    CVM_OK);
	assert_int_equal(cvm_cache_dcap_warm(c, quote, qlen, old_at, &v, &info, NULL, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(
	    cvm_cache_import(c, vector_path(path, sizeof(path), new_dir_), new_at, &n, err, sizeof(err)),
	    CVM_OK);
	assert_int_equal(cvm_cache_dcap_warm(c, quote, qlen, new_at, &v, &info, NULL, err, sizeof(err)),
	                 CVM_OK);
	assert_true(cvm_dcap_verified_tcb_info(v)->issue_date > old_issue);
	/* Past the items' expiry: never served. */
	assert_int_not_equal(
	    cvm_cache_dcap_warm(c, quote, qlen, info.expires + 1, &v, &info, NULL, err, sizeof(err)), CVM_OK);
	assert_true(expires > old_at);
	cvm_cache_close(c);
	free(quote);
	free(quote2);
}

static void retry_after_reads_seconds_and_http_dates(void **state)
{
	char buf[64];
	size_t n = 0;

	(void)state;
	assert_int_equal(coll_retry_after("120", 1000), 120);
	assert_int_equal(coll_retry_after("0", 1000), 0);
	/* 1445412480 is Wed, 21 Oct 2015 07:28:00 GMT */
	assert_int_equal(coll_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 - 90), 90);
	assert_int_equal(coll_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 + 90), 0);
	assert_int_equal(coll_retry_after("12x", 0), -1);
	assert_int_equal(coll_retry_after("soon", 0), -1);
	assert_true(coll_retry_after("99999999999999", 0) > 60);
	/* The chain headers' URL encoding. */
	assert_true(coll_url_decode("a%20b%2Fc%0A", 12, buf, sizeof(buf), &n));
	assert_string_equal(buf, "a b/c\n");
	assert_int_equal(n, 6);
	assert_false(coll_url_decode("a%2", 3, buf, sizeof(buf), &n));
	assert_false(coll_url_decode("a%zz", 4, buf, sizeof(buf), &n));
	assert_false(coll_url_decode("a%00b", 5, buf, sizeof(buf), &n));
	assert_false(coll_url_decode("abcdef", 6, buf, 6, &n)); /* no room for the NUL */
}

/* A PCK certificate item: the quote's own PCK leaf with its CA and root as
 * the issuer chain; its FMSPC header must agree with the certificate. */
static void a_pck_certificate_item_verifies_against_its_issuer_chain(void **state)
{
	const char *dir = dcap_vectors[1].dir;
	int64_t at = dcap_vectors[1].at;
	char d[600], err[512] = "";
	struct cvm_cache *c = open_cache(new_dir(d, sizeof(d)), NULL);
	struct cvm_cache_need need;
	struct cvm_cache_item it;
	struct cvm_quote q;
	const char *second;
	uint8_t *quote;
	size_t qlen;
	char hex[13];

	(void)state;
	quote = read_rel(dir, "quote.bin", &qlen);
	assert_int_equal(cvm_quote_parse(quote, qlen, &q), CVM_OK);
	assert_int_equal(cvm_cache_need_quote(quote, qlen, &need, err, sizeof(err)), CVM_OK);
	second = memmem(q.pck_chain_pem.p + 1, q.pck_chain_pem.len - 1, "-----BEGIN", 10);
	assert_non_null(second);
	memset(&it, 0, sizeof(it));
	cvm_cache_key_init(&it.key, CVM_CACHE_PCK_CERT);
	it.key.enc_ppid_len = 384;
	memset(it.key.enc_ppid, 0x5a, 384);
	it.body_len = (size_t)((const uint8_t *)second - q.pck_chain_pem.p);
	it.body = malloc(it.body_len);
	assert_non_null(it.body);
	memcpy(it.body, q.pck_chain_pem.p, it.body_len);
	it.issuer_chain_len = q.pck_chain_pem.len - it.body_len;
	it.issuer_chain = calloc(1, it.issuer_chain_len + 1);
	assert_non_null(it.issuer_chain);
	memcpy(it.issuer_chain, second, it.issuer_chain_len);
	it.issuer_chain_len = strlen(it.issuer_chain); /* the quote's chain may end in a NUL */
	it.fetched_at = at;
	for (size_t i = 0; i < 6; i++)
		(void)snprintf(hex + 2 * i, 3, "%02X", need.keys[2].fmspc[i]);
	memcpy(it.fmspc, hex, sizeof(it.fmspc));
	if (cvm_cache_put(c, &it, at, err, sizeof(err)) != CVM_OK)
		fail_msg("pck cert: %s", err);
	assert_int_equal(count_items(c), 1);
	it.fmspc[0] = it.fmspc[0] == '0' ? '1' : '0';
	assert_int_equal(cvm_cache_put(c, &it, at, err, sizeof(err)), CVM_E_MISMATCH);
	it.fmspc[0] = '\0';
	/* The leaf is not its own issuer: a chain without the PCK CA fails. */
	{
		char *only_root = strstr(it.issuer_chain + 1, "-----BEGIN");
		char *save = it.issuer_chain;

		assert_non_null(only_root);
		it.issuer_chain = only_root;
		it.issuer_chain_len = strlen(only_root);
		assert_int_equal(cvm_cache_put(c, &it, at, err, sizeof(err)), CVM_E_CHAIN);
		it.issuer_chain = save;
	}
	free(it.body);
	free(it.issuer_chain);
	free(quote);
	cvm_cache_close(c);
}

/* ---- PCK certificates by platform (pckcerts) ------------------------------ */

/* pck_leaf splits the vector quote's PCK chain into its leaf (PEM) and
 * issuer chain (PCK CA, root); the caller frees both. */
static void pck_leaf(const char *dir, char **leaf, size_t *leaf_len, char **chain, size_t *chain_len)
{
	struct cvm_quote q;
	const char *second;
	uint8_t *quote;
	size_t qlen;

	quote = read_rel(dir, "quote.bin", &qlen);
	assert_int_equal(cvm_quote_parse(quote, qlen, &q), CVM_OK);
	second = memmem(q.pck_chain_pem.p + 1, q.pck_chain_pem.len - 1, "-----BEGIN", 10);
	assert_non_null(second);
	*leaf_len = (size_t)((const uint8_t *)second - q.pck_chain_pem.p);
	*leaf = calloc(1, *leaf_len + 1);
	assert_non_null(*leaf);
	memcpy(*leaf, q.pck_chain_pem.p, *leaf_len);
	*chain = calloc(1, q.pck_chain_pem.len - *leaf_len + 1);
	assert_non_null(*chain);
	memcpy(*chain, second, q.pck_chain_pem.len - *leaf_len);
	*chain_len = strlen(*chain); /* the quote's chain may end in a NUL */
	free(quote);
}

static void url_encode_into(struct cvm_wr *w, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.')
			cvm_wr_u8(w, ch);
		else
			cvm_wr_fmt(w, "%%%02X", ch);
	}
}

/* pck_entry appends one entry {tcb, tcbm, cert} ("Not available" when
 * `pem` is NULL) to the JSON array being written. */
static void pck_entry(struct cvm_wr *w, bool first, const uint8_t svn[16], uint16_t pcesvn,
                      const uint8_t cpusvn[16], const char *pem, size_t pem_len)
{
	cvm_wr_str(w, first ? "{\"tcb\":{" : ",{\"tcb\":{");
	for (unsigned i = 0; i < 16; i++)
		cvm_wr_fmt(w, "\"sgxtcbcomp%02usvn\":%u,", i + 1, svn[i]);
	cvm_wr_fmt(w, "\"pcesvn\":%u},\"tcbm\":\"", pcesvn);
	for (size_t i = 0; i < 16; i++)
		cvm_wr_fmt(w, "%02X", cpusvn[i]);
	cvm_wr_fmt(w, "%02X%02X\",\"cert\":\"", pcesvn & 0xff, pcesvn >> 8);
	if (pem == NULL)
		cvm_wr_str(w, "Not available");
	else
		url_encode_into(w, pem, pem_len);
	cvm_wr_str(w, "\"}");
}

/* The real list of vector 1's platform: a "Not available" entry, then its
 * PCK certificate (and, with `bad`, a copy of it with one flipped bit in
 * its signature). */
struct pck_fixture {
	char *leaf, *chain;
	size_t leaf_len, chain_len;
	struct cvm_dcap_pck_desc d;
	uint8_t *body;
	size_t body_len;
};

static void pck_fixture_make(struct pck_fixture *f, bool bad)
{
	static const uint8_t zero[16] = {0};
	struct cvm_wr w;

	memset(f, 0, sizeof(*f));
	pck_leaf(dcap_vectors[1].dir, &f->leaf, &f->leaf_len, &f->chain, &f->chain_len);
	assert_int_equal(cvm_dcap_pck_describe((const uint8_t *)f->leaf, f->leaf_len, &f->d), CVM_OK);
	cvm_wr_init(&w, 1u << 20);
	cvm_wr_str(&w, "[");
	pck_entry(&w, true, zero, 0, zero, NULL, 0);
	pck_entry(&w, false, f->d.tcb_svn, f->d.pce_svn, f->d.cpu_svn, f->leaf, f->leaf_len);
	if (bad) {
		char *copy = malloc(f->leaf_len);
		char *end;

		assert_non_null(copy);
		memcpy(copy, f->leaf, f->leaf_len);
		/* the last base64 digit before the END line: the signature's end */
		end = strstr(copy, "\n-----END");
		assert_non_null(end);
		end[-2] = end[-2] == 'A' ? 'B' : 'A';
		pck_entry(&w, false, f->d.tcb_svn, f->d.pce_svn, f->d.cpu_svn, copy, f->leaf_len);
		free(copy);
	}
	cvm_wr_str(&w, "]");
	assert_int_equal(cvm_wr_finish(&w, &f->body, &f->body_len), CVM_OK);
}

static void pck_fixture_cleanup(struct pck_fixture *f)
{
	free(f->leaf);
	free(f->chain);
	free(f->body);
}

/* pck_item fills `it` (borrowing the fixture's bytes) as a fetch by
 * platform manifest would. */
static void pck_item(struct cvm_cache_item *it, const struct pck_fixture *f)
{
	memset(it, 0, sizeof(*it));
	cvm_cache_key_init(&it->key, CVM_CACHE_PCK_CERTS);
	it->key.by_manifest = true;
	memset(it->key.manifest_hash, 0xa5, sizeof(it->key.manifest_hash));
	memcpy(it->key.pceid, f->d.pce_id, 2);
	it->body = f->body;
	it->body_len = f->body_len;
	it->issuer_chain = f->chain;
	it->issuer_chain_len = f->chain_len;
	for (size_t i = 0; i < 6; i++)
		(void)snprintf(it->fmspc + 2 * i, 3, "%02X", f->d.fmspc[i]);
	(void)snprintf(it->ca_type, sizeof(it->ca_type), "%s", f->d.platform_ca ? "platform" : "processor");
	it->fetched_at = dcap_vectors[1].at;
}

static void pck_certs_keys_name_the_manifest_hash_or_the_ppid_and_follow_the_pcs_urls(void **state)
{
	struct cvm_cache_key k;
	struct cvm_cache_item it, *back = NULL;
	uint8_t *rec = NULL, body[] = "[]";
	size_t rec_len = 0;
	char buf[2048];

	(void)state;
	cvm_cache_key_init(&k, CVM_CACHE_PCK_CERTS);
	k.by_manifest = true;
	for (size_t i = 0; i < 32; i++)
		k.manifest_hash[i] = (uint8_t)i;
	k.pceid[1] = 0x01;
	expect_url(
	    &k, "https://pcs.example", "https://pcs.example/sgx/certification/v4/pckcerts",
	    "sgx/pckcerts/manifest-000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f/0001");
	/* by manifest or by PPID, never both */
	k.enc_ppid_len = 1;
	assert_int_equal(cvm_cache_key_name(&k, buf, sizeof(buf)), CVM_E_INVAL);
	k.by_manifest = false;
	memset(k.enc_ppid, 0xab, sizeof(k.enc_ppid));
	k.enc_ppid_len = CVM_CACHE_PPID_MAX;
	assert_int_equal(cvm_cache_key_url(&k, "http://h", buf, sizeof(buf)), CVM_OK);
	assert_int_equal(strncmp(buf, "http://h/sgx/certification/v4/pckcerts?encrypted_ppid=abab", 58), 0);
	assert_string_equal(buf + strlen(buf) - 11, "&pceid=0001");
	assert_int_equal(cvm_cache_key_name(&k, buf, sizeof(buf)), CVM_OK);
	assert_int_equal(strncmp(buf, "sgx/pckcerts/ppid-", 18), 0);
	k.enc_ppid_len = 0;
	assert_int_equal(cvm_cache_key_name(&k, buf, sizeof(buf)), CVM_E_INVAL);
	/* the item record keeps the manifest's hash (record version 2) */
	cvm_cache_key_init(&k, CVM_CACHE_PCK_CERTS);
	k.by_manifest = true;
	memset(k.manifest_hash, 0x42, sizeof(k.manifest_hash));
	memset(&it, 0, sizeof(it));
	it.key = k;
	it.body = body;
	it.body_len = 2;
	assert_int_equal(coll_item_encode(&it, &rec, &rec_len), CVM_OK);
	assert_int_equal(coll_item_decode(rec, rec_len, &back), CVM_OK);
	assert_true(back->key.by_manifest);
	assert_memory_equal(back->key.manifest_hash, k.manifest_hash, 32);
	assert_int_equal(back->key.kind, CVM_CACHE_PCK_CERTS);
	cvm_cache_item_free(back);
	free(rec);
}

static void a_pckcerts_list_is_stored_only_when_every_certificate_verifies_and_matches(void **state)
{
	struct pck_fixture f, bad;
	struct cvm_cache_item it;
	char d[600], err[512] = "";
	int64_t at = dcap_vectors[1].at;
	struct cvm_cache *c = open_cache(new_dir(d, sizeof(d)), NULL);
	int r;

	(void)state;
	pck_fixture_make(&f, false);
	pck_fixture_make(&bad, true);
	pck_item(&it, &f);
	r = cvm_cache_put(c, &it, at, err, sizeof(err));
	if (r != CVM_OK)
		fail_msg("pckcerts: %s", err);
	assert_int_equal(count_items(c), 1);
	/* one flipped certificate refuses the whole list */
	pck_item(&it, &bad);
	it.key.manifest_hash[0] ^= 1;
	r = cvm_cache_put(c, &it, at, err, sizeof(err));
	assert_int_not_equal(r, CVM_OK);
	assert_non_null(strstr(err, "certificate 2 does not verify"));
	assert_int_equal(count_items(c), 1);
	/* listed for another PCE ID than the key asks */
	pck_item(&it, &f);
	it.key.pceid[0] ^= 1;
	assert_int_equal(cvm_cache_put(c, &it, at, err, sizeof(err)), CVM_E_MISMATCH);
	/* the SGX-FMSPC header must name the certificates' FMSPC */
	pck_item(&it, &f);
	it.fmspc[11] = it.fmspc[11] == '0' ? '1' : '0';
	assert_int_equal(cvm_cache_put(c, &it, at, err, sizeof(err)), CVM_E_MISMATCH);
	it.fmspc[0] = '\0';
	assert_int_equal(cvm_cache_put(c, &it, at, err, sizeof(err)), CVM_E_FORMAT);
	/* the CA type header must name the CA that issued them */
	pck_item(&it, &f);
	(void)snprintf(it.ca_type, sizeof(it.ca_type), "%s", f.d.platform_ca ? "processor" : "platform");
	assert_int_equal(cvm_cache_put(c, &it, at, err, sizeof(err)), CVM_E_MISMATCH);
	/* no issuer chain */
	pck_item(&it, &f);
	it.issuer_chain = NULL;
	it.issuer_chain_len = 0;
	assert_int_equal(cvm_cache_put(c, &it, at, err, sizeof(err)), CVM_E_CHAIN);
	/* a list with no certificate at all ("Not available" only) */
	{
		static const uint8_t zero[16] = {0};
		struct cvm_wr w;
		uint8_t *na = NULL;
		size_t na_len = 0;

		cvm_wr_init(&w, 4096);
		cvm_wr_str(&w, "[");
		pck_entry(&w, true, zero, 0, zero, NULL, 0);
		cvm_wr_str(&w, "]");
		assert_int_equal(cvm_wr_finish(&w, &na, &na_len), CVM_OK);
		pck_item(&it, &f);
		it.body = na;
		it.body_len = na_len;
		assert_int_equal(cvm_cache_put(c, &it, at, err, sizeof(err)), CVM_E_NOT_FOUND);
		free(na);
	}
	/* after the certificate's notAfter: expired */
	pck_item(&it, &f);
	assert_int_not_equal(cvm_cache_put(c, &it, (int64_t)2000000000, err, sizeof(err)), CVM_OK);
	assert_int_equal(count_items(c), 1);
	pck_fixture_cleanup(&f);
	pck_fixture_cleanup(&bad);
	cvm_cache_close(c);
}

static void a_certificate_listed_under_another_tcb_is_refused(void **state)
{
	struct pck_fixture f;
	struct cvm_cache_item it;
	char d[600], err[512] = "";
	struct cvm_cache *c = open_cache(new_dir(d, sizeof(d)), NULL);
	size_t flips = 0;

	(void)state;
	pck_fixture_make(&f, false);
	/* every digit of the certificate's tcb and tcbm (the second entry),
	 * changed: unsigned metadata that must match the certificate */
	{
		char *second = memmem(f.body + 2, f.body_len - 2, "{\"tcb\"", 6); /* not the first */
		char *cert = strstr(second, "\"cert\"");

		assert_non_null(second);
		assert_non_null(cert);
		for (char *p = second; p < cert; p++) {
			char save = *p;

			if (*p < '0' || *p > '9')
				continue;
			*p = *p == '9' ? '8' : (char)(*p + 1);
			pck_item(&it, &f);
			if (cvm_cache_put(c, &it, dcap_vectors[1].at, err, sizeof(err)) == CVM_OK)
				fail_msg("stored with tcb/tcbm digit %td changed: %.60s", p - second, second);
			*p = save;
			flips++;
		}
	}
	assert_true(flips > 17);
	assert_int_equal(count_items(c), 0);
	pck_fixture_cleanup(&f);
	cvm_cache_close(c);
}

static void the_pckcerts_parser_rejects_every_truncation_and_survives_every_bit_flip(void **state)
{
	struct pck_fixture f;
	struct coll_pck_list *l = NULL;
	char err[256];
	size_t ok = 0;

	(void)state;
	pck_fixture_make(&f, false);
	assert_int_equal(coll_pck_list_parse(f.body, f.body_len, &l, err, sizeof(err)), CVM_OK);
	assert_int_equal(l->count, 2);
	assert_int_equal(l->available, 1);
	assert_null(l->e[0].pem);
	assert_int_equal(l->e[1].pem_len, f.leaf_len);
	assert_memory_equal(l->e[1].pem, f.leaf, f.leaf_len);
	coll_pck_list_free(l);
	for (size_t n = 0; n < f.body_len; n++) {
		l = NULL;
		assert_int_not_equal(coll_pck_list_parse(f.body, n, &l, err, sizeof(err)), CVM_OK);
		assert_null(l);
	}
	for (size_t i = 0; i < f.body_len * 8; i++) {
		f.body[i / 8] ^= (uint8_t)(1u << (i % 8));
		l = NULL;
		if (coll_pck_list_parse(f.body, f.body_len, &l, err, sizeof(err)) == CVM_OK) {
			assert_true(l->count >= 1 && l->count <= 2);
			ok++;
		}
		coll_pck_list_free(l);
		f.body[i / 8] ^= (uint8_t)(1u << (i % 8));
	}
	/* flips inside the base64 or a number still parse (the signature
	 * check refuses them); flips in the structure do not */
	assert_true(ok > 0 && ok < f.body_len * 8);
	/* too many entries, too large, not an array, a bad entry */
	{
		static const char *const bad[] = {
		    "{}",
		    "[]",
		    "[1]",
		    "[{\"tcb\":{},\"tcbm\":\"\",\"cert\":\"Not available\"}]",
		    "[{\"tcbm\":1}]",
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			assert_int_equal(coll_pck_list_parse((const uint8_t *)bad[i], strlen(bad[i]), &l, err,
			                                     sizeof(err)),
			                 CVM_E_FORMAT);
		assert_int_equal(
		    coll_pck_list_parse(f.body, COLL_PCK_CERTS_BODY_MAX + 1, &l, err, sizeof(err)),
		    CVM_E_TOO_LARGE);
	}
	{
		static const uint8_t zero[16] = {0};
		struct cvm_wr w;
		uint8_t *many = NULL;
		size_t many_len = 0;

		cvm_wr_init(&w, 1u << 20);
		cvm_wr_str(&w, "[");
		for (size_t i = 0; i <= CVM_CACHE_PCK_CERTS_MAX; i++)
			pck_entry(&w, i == 0, zero, 0, zero, NULL, 0);
		cvm_wr_str(&w, "]");
		assert_int_equal(cvm_wr_finish(&w, &many, &many_len), CVM_OK);
		assert_int_equal(coll_pck_list_parse(many, many_len, &l, err, sizeof(err)), CVM_E_TOO_LARGE);
		free(many);
	}
	pck_fixture_cleanup(&f);
}

/* A list of synthetic entries (the selection verifies nothing, so any PEM
 * text names an entry) against a TCB info of three levels. */
static void pck_selection_picks_the_highest_tcb_info_level_the_raw_tcb_meets(void **state)
{
	struct cvm_tcb_level lv[3];
	struct cvm_tcb_info ti;
	struct cvm_cache_pck_choice ch;
	uint8_t t_hi[16], t_mid[16], t_lo[16], t_odd[16], raw[16], *body = NULL;
	size_t body_len = 0;
	struct cvm_wr w;
	char err[512];

	(void)state;
	memset(t_hi, 5, 16);
	memset(t_mid, 3, 16);
	memset(t_lo, 1, 16);
	memset(t_odd, 2, 16);
	t_odd[3] = 9; /* not comparable with t_mid: above it in one component */
	memset(lv, 0, sizeof(lv));
	memcpy(lv[0].sgx_svn, t_hi, 16);
	lv[0].pce_svn = 13;
	memcpy(lv[1].sgx_svn, t_mid, 16);
	lv[1].pce_svn = 11;
	memcpy(lv[2].sgx_svn, t_lo, 16);
	lv[2].pce_svn = 5;
	memset(&ti, 0, sizeof(ti));
	ti.levels = lv;
	ti.level_count = 3;
	/* list order: low, an entry at no level, mid (twice: a tie), high
	 * "Not available" */
	cvm_wr_init(&w, 1u << 16);
	cvm_wr_str(&w, "[");
	pck_entry(&w, true, t_lo, 5, t_lo, "-----BEGIN CERTIFICATE-----\nLOW\n", 32);
	pck_entry(&w, false, t_odd, 5, t_odd, "-----BEGIN CERTIFICATE-----\nODD\n", 32);
	pck_entry(&w, false, t_mid, 11, t_mid, "-----BEGIN CERTIFICATE-----\nMID1\n", 33);
	pck_entry(&w, false, t_mid, 11, t_mid, "-----BEGIN CERTIFICATE-----\nMID2\n", 33);
	pck_entry(&w, false, t_hi, 13, t_hi, NULL, 0);
	cvm_wr_str(&w, "]");
	assert_int_equal(cvm_wr_finish(&w, &body, &body_len), CVM_OK);

	/* above everything: the highest level with a certificate (high is "Not
	 * available"), of the tie the first */
	memset(raw, 0xff, 16);
	assert_int_equal(cvm_cache_pck_select(body, body_len, &ti, raw, 0xffff, &ch, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(ch.index, 2);
	assert_string_equal(ch.pem, "-----BEGIN CERTIFICATE-----\nMID1\n");
	assert_int_equal(ch.pcesvn, 11);
	assert_string_equal(ch.tcbm, "030303030303030303030303030303030B00");
	cvm_cache_pck_choice_cleanup(&ch);
	assert_null(ch.pem);
	/* the mid TCB exactly */
	memcpy(raw, t_mid, 16);
	assert_int_equal(cvm_cache_pck_select(body, body_len, &ti, raw, 11, &ch, err, sizeof(err)), CVM_OK);
	assert_int_equal(ch.index, 2);
	cvm_cache_pck_choice_cleanup(&ch);
	/* the PCE SVN below mid's: low */
	assert_int_equal(cvm_cache_pck_select(body, body_len, &ti, raw, 10, &ch, err, sizeof(err)), CVM_OK);
	assert_int_equal(ch.index, 0);
	cvm_cache_pck_choice_cleanup(&ch);
	/* one component of mid lower: low, though "odd" is met too (it is at no
	 * level of the TCB info) */
	memset(raw, 9, 16);
	raw[7] = 2;
	assert_int_equal(cvm_cache_pck_select(body, body_len, &ti, raw, 11, &ch, err, sizeof(err)), CVM_OK);
	assert_int_equal(ch.index, 0);
	cvm_cache_pck_choice_cleanup(&ch);
	/* below every certificate: a clear error */
	memset(raw, 0, 16);
	err[0] = '\0';
	assert_int_equal(cvm_cache_pck_select(body, body_len, &ti, raw, 65535, &ch, err, sizeof(err)),
	                 CVM_E_NOT_FOUND);
	assert_non_null(strstr(err, "no PCK certificate matches the raw TCB"));
	assert_null(ch.pem);
	/* a TCB info that lists none of the certificates' levels */
	ti.level_count = 1;
	memset(raw, 0xff, 16);
	assert_int_equal(cvm_cache_pck_select(body, body_len, &ti, raw, 0xffff, &ch, err, sizeof(err)),
	                 CVM_E_NOT_FOUND);
	assert_int_equal(cvm_cache_pck_select(body, body_len, NULL, raw, 0xffff, &ch, err, sizeof(err)),
	                 CVM_E_INVAL);
	free(body);
}

/* ---- AMD ---------------------------------------------------------------- */

static void an_snp_folder_imports_and_its_report_authenticates_cold_and_warm(void **state)
{
	char d[600], path[1024], err[512] = "";
	struct cvm_cache *c = open_cache(new_dir(d, sizeof(d)), NULL);
	struct cvm_amd_collateral *coll = NULL;
	struct cvm_amd_verified *v = NULL, *w1 = NULL, *w2 = NULL;
	struct cvm_amd_result res;
	struct cvm_cache_info info;
	struct cvm_cache_need need;
	uint8_t *report;
	size_t rlen, n = 0;
	int r;

	(void)state;
	r = cvm_cache_import(c, vector_path(path, sizeof(path), SNP_DIR), SNP_AT, &n, err, sizeof(err));
	if (r != CVM_OK)
		print_message("import: %s\n", err);
	assert_int_equal(r, CVM_OK);
	assert_int_equal(n, 2); /* chain and VCEK: the folder has no CRL */
	report = read_rel(SNP_DIR, "report.bin", &rlen);
	assert_int_equal(cvm_cache_need_report(report, rlen, CVM_SNP_PRODUCT_MILAN, &need, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(need.count, 3);
	assert_int_equal(need.keys[0].kind, CVM_CACHE_VCEK);
	r = cvm_cache_amd(c, report, rlen, CVM_SNP_PRODUCT_MILAN, NULL, 0, SNP_AT, 0, &coll, &info, err,
	                  sizeof(err));
	if (r != CVM_OK)
		print_message("cvm_cache_amd: %s\n", err);
	assert_int_equal(r, CVM_OK);
	assert_int_equal(info.items, 2);
	assert_null(coll->crl);
	assert_int_equal(cvm_amd_chain_authenticate(coll, CVM_SNP_SIGNER_VCEK, NULL, 0, SNP_AT, NULL, &v),
	                 CVM_OK);
	memset(&res, 0, sizeof(res));
	assert_int_equal(cvm_amd_report_authenticate(v, report, rlen, SNP_AT, NULL, &res), CVM_OK);
	assert_true(res.authentic);
	assert_int_equal(cvm_cache_amd_warm(c, report, rlen, CVM_SNP_PRODUCT_MILAN, SNP_AT, &w1, &info, NULL,
	                                    err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(cvm_cache_amd_warm(c, report, rlen, CVM_SNP_PRODUCT_MILAN, SNP_AT, &w2, &info, NULL,
	                                    err, sizeof(err)),
	                 CVM_OK);
	assert_ptr_equal(w1, w2);
	memset(&res, 0, sizeof(res));
	assert_int_equal(cvm_amd_report_authenticate(w1, report, rlen, SNP_AT, NULL, &res), CVM_OK);
	/* A VCEK of another TCB is not the one the report asks for. */
	{
		struct cvm_cache_item *it = NULL;

		assert_int_equal(
		    cvm_cache_get(c, &need.keys[0], SNP_AT, CVM_CACHE_NO_FETCH, &it, NULL, err, sizeof(err)),
		    CVM_OK);
		it->key.tcb ^= 1; /* bootloader SPL + 1 or - 1 */
		assert_int_equal(cvm_cache_put(c, it, SNP_AT, err, sizeof(err)), CVM_E_MISMATCH);
		print_message("other TCB: %s\n", err);
		cvm_cache_item_free(it);
	}
	cvm_amd_verified_free(v);
	cvm_amd_collateral_free(coll);
	free(report);
	cvm_cache_close(c);
}

/* The AMD CRL item, with a mock AMD PKI (lib/sim): verified under its ARK
 * (configured as the root), stored beside the chain and the VCEK, handed to
 * lib/amd, which then checks revocation; a CRL that revokes the ASK makes
 * the import store nothing; the built-in ARKs refuse the mock chain. */
static void an_amd_crl_verifies_under_the_ark_and_a_revoking_one_stores_nothing(void **state)
{
	const int64_t now = 1760000000;
	struct cvm_mockamd_opts mo;
	struct cvm_mockamd *pki = NULL, *rev = NULL;
	struct cvm_cache_opts o;
	struct cvm_cache *c = NULL;
	struct cvm_amd_collateral *coll = NULL;
	struct cvm_amd_verified *v = NULL;
	struct cvm_cache_info info;
	const uint8_t *ark;
	size_t ark_len, n = 0;
	uint8_t report[CVM_SNP_REPORT_LEN];
	char d[600], f1[700], f2[700], err[512] = "";
	int r;

	(void)state;
	cvm_mockamd_opts_init(&mo, CVM_SNP_PRODUCT_GENOA, CVM_SNP_SIGNER_VCEK, now);
	mo.with_crl = true;
	assert_int_equal(cvm_mockamd_new(&mo, &pki), CVM_OK);
	mo.revoke_intermediate = true;
	assert_int_equal(cvm_mockamd_new_keyed(&mo, pki, &rev), CVM_OK);
	(void)snprintf(f1, sizeof(f1), "%s/mock-ok", tmp_root);
	(void)snprintf(f2, sizeof(f2), "%s/mock-revoked", tmp_root);
	assert_int_equal(mkdir(f1, 0755), 0);
	assert_int_equal(mkdir(f2, 0755), 0);
	assert_int_equal(cvm_mockamd_write_collateral(pki, f1), CVM_OK);
	assert_int_equal(cvm_mockamd_write_collateral(rev, f2), CVM_OK);
	assert_int_equal(cvm_mockamd_report(pki, NULL, report), CVM_OK);
	cvm_mockamd_ark_der(pki, &ark, &ark_len);

	/* The built-in ARKs do not know the mock ARK. */
	c = open_cache(new_dir(d, sizeof(d)), NULL);
	assert_int_equal(cvm_cache_import(c, f1, now, &n, err, sizeof(err)), CVM_E_CHAIN);
	assert_int_equal(count_items(c), 0);
	cvm_cache_close(c);

	/* Under its own ARK, the PKI whose CRL revokes its ASK: nothing stored. */
	memset(&o, 0, sizeof(o));
	o.dir = new_dir(d, sizeof(d));
	o.offline = true;
	cvm_mockamd_ark_der(rev, &o.amd_root_der, &o.amd_root_der_len);
	o.amd_root_name = "mock ARK";
	assert_int_equal(cvm_cache_open(&o, &c, err, sizeof(err)), CVM_OK);
	r = cvm_cache_import(c, f2, now, &n, err, sizeof(err));
	print_message("revoking CRL: %s\n", err);
	assert_int_equal(r, CVM_E_REVOKED);
	assert_int_equal(count_items(c), 0);
	cvm_cache_close(c);

	memset(&o, 0, sizeof(o));
	o.dir = new_dir(d, sizeof(d));
	o.offline = true;
	o.amd_root_der = ark;
	o.amd_root_der_len = ark_len;
	o.amd_root_name = "mock ARK";
	assert_int_equal(cvm_cache_open(&o, &c, err, sizeof(err)), CVM_OK);
	if (cvm_cache_import(c, f1, now, &n, err, sizeof(err)) != CVM_OK)
		fail_msg("import: %s", err);
	assert_int_equal(n, 3);
	assert_int_equal(cvm_cache_amd(c, report, sizeof(report), CVM_SNP_PRODUCT_UNKNOWN, NULL, 0, now, 0,
	                               &coll, &info, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(info.items, 3);
	assert_string_equal(info.anchor, "mock ARK");
	assert_non_null(coll->crl);
	assert_int_equal(cvm_amd_chain_authenticate(coll, CVM_SNP_SIGNER_VCEK, ark, ark_len, now, NULL, &v),
	                 CVM_OK);
	assert_true(cvm_amd_verified_vek(v)->crl_checked);
	cvm_amd_verified_free(v);
	cvm_amd_collateral_free(coll);
	cvm_cache_close(c);
	cvm_mockamd_free(rev);
	cvm_mockamd_free(pki);
}

/* ---- helper mode for tests/integration/collateral_fetch.sh ------------- */

/* get DIR URL NOW KIND...: opens DIR with URL as both upstreams and gets
 * every key named (tcb:<tee>:<fmspc hex>, qe:<tee>, pckcrl:<ca>, rootcrl);
 * prints "<name> <source> <fetched> <error>" per key; exit 0 when all
 * were got. */
static int helper_get(int argc, char **argv)
{
	struct cvm_cache_opts o;
	struct cvm_cache *c = NULL;
	char err[512] = "";
	int64_t now = strtoll(argv[4], NULL, 10);
	int bad = 0;

	memset(&o, 0, sizeof(o));
	o.dir = argv[2];
	o.intel_url = argv[3];
	o.amd_url = argv[3];
	o.retries = 3;
	o.backoff_ms = 50;
	o.backoff_max_ms = 200;
	o.retry_after_max_s = 5;
	if (cvm_cache_open(&o, &c, err, sizeof(err)) != CVM_OK) {
		fprintf(stderr, "open: %s\n", err);
		return 1;
	}
	for (int i = 5; i < argc; i++) {
		struct cvm_cache_key k;
		struct cvm_cache_item *it = NULL;
		struct cvm_cache_info info;
		char name[256] = "";
		int r;

		if (strncmp(argv[i], "tcb:", 4) == 0) {
			cvm_cache_key_init(&k, CVM_CACHE_TCB_INFO);
			k.tee = strncmp(argv[i] + 4, "tdx", 3) == 0 ? CVM_CACHE_TDX : CVM_CACHE_SGX;
			for (size_t j = 0; j < 6; j++) {
				unsigned v = 0;

				(void)sscanf(argv[i] + 8 + 2 * j, "%2x", &v);
				k.fmspc[j] = (uint8_t)v;
			}
		} else if (strncmp(argv[i], "qe:", 3) == 0) {
			cvm_cache_key_init(&k, CVM_CACHE_QE_ID);
			k.tee = strcmp(argv[i] + 3, "tdx") == 0 ? CVM_CACHE_TDX : CVM_CACHE_SGX;
		} else if (strncmp(argv[i], "pckcrl:", 7) == 0) {
			cvm_cache_key_init(&k, CVM_CACHE_PCK_CRL);
			k.ca = strcmp(argv[i] + 7, "platform") == 0 ? CVM_CACHE_CA_PLATFORM
			                                            : CVM_CACHE_CA_PROCESSOR;
		} else {
			cvm_cache_key_init(&k, CVM_CACHE_ROOT_CRL);
		}
		if (cvm_cache_key_name(&k, name, sizeof(name)) != CVM_OK)
			name[0] = '\0';
		r = cvm_cache_get(c, &k, now, 0, &it, &info, err, sizeof(err));
		printf("%s %s %zu %d %s\n", name, r == CVM_OK ? cvm_cache_source_name(info.source) : "error",
		       info.fetched, r, r == CVM_OK ? "" : err);
		bad |= r != CVM_OK;
		cvm_cache_item_free(it);
	}
	cvm_cache_close(c);
	return bad;
}

struct get_thread {
	pthread_t t;
	int argc;
	char **argv;
	int rc;
};

static void *get_thread_main(void *arg)
{
	struct get_thread *g = arg;

	g->rc = helper_get(g->argc, g->argv);
	return NULL;
}

/* threads N DIR URL NOW KIND...: "get" in N threads of this process, one
 * handle each, at once. */
static int helper_threads(int argc, char **argv)
{
	struct get_thread g[16];
	long n = strtol(argv[2], NULL, 10);
	int bad = 0;

	if (n < 1 || n > 16)
		return 2;
	for (long i = 0; i < n; i++) {
		g[i].argc = argc - 1;
		g[i].argv = argv + 1; /* argv[1] = "threads" stands in for the program name */
		g[i].rc = 1;
		if (pthread_create(&g[i].t, NULL, get_thread_main, &g[i]) != 0)
			return 1;
	}
	for (long i = 0; i < n; i++) {
		(void)pthread_join(g[i].t, NULL);
		bad |= g[i].rc;
	}
	return bad;
}

/* bundle CACHEDIR VECTORDIR AT OUT: imports a vectors-layout folder into
 * CACHEDIR and packs it into OUT (makes the fuzz corpora's seeds). */
static int helper_bundle(char **argv)
{
	struct cvm_cache_opts o;
	struct cvm_cache *c = NULL;
	char err[512] = "";
	int64_t at = strtoll(argv[4], NULL, 10);
	size_t n = 0;
	int r;

	memset(&o, 0, sizeof(o));
	o.dir = argv[2];
	o.offline = true;
	r = cvm_cache_open(&o, &c, err, sizeof(err));
	if (r == CVM_OK)
		r = cvm_cache_import(c, argv[3], at, &n, err, sizeof(err));
	if (r == CVM_OK)
		r = cvm_cache_pack(c, argv[5], at, &n, err, sizeof(err));
	if (r != CVM_OK)
		fprintf(stderr, "bundle: %s\n", err);
	cvm_cache_close(c);
	return r == CVM_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(key_names_and_urls_follow_the_vendors_documented_forms),
	    cmocka_unit_test(every_dcap_vector_round_trips_through_put_and_get),
	    cmocka_unit_test(a_bad_signature_a_wrong_chain_or_an_expired_item_is_never_stored),
	    cmocka_unit_test(a_stale_item_serves_while_the_upstream_is_down_until_it_expires),
	    cmocka_unit_test(a_packed_bundle_imports_into_another_directory_and_verifies_the_quote),
	    cmocka_unit_test(a_bundle_with_one_tampered_item_stores_nothing),
	    cmocka_unit_test(a_bundle_with_a_flip_in_unsigned_metadata_stores_nothing),
	    cmocka_unit_test(the_bundle_parser_rejects_every_truncation_and_trailing_bytes),
	    cmocka_unit_test(the_item_parser_survives_every_bit_flip_and_truncation),
	    cmocka_unit_test(an_snp_folder_imports_and_its_report_authenticates_cold_and_warm),
	    cmocka_unit_test(an_amd_crl_verifies_under_the_ark_and_a_revoking_one_stores_nothing),
	    cmocka_unit_test(retry_after_reads_seconds_and_http_dates),
	    cmocka_unit_test(the_warm_path_reads_no_file_within_a_second_and_follows_item_changes),
	    cmocka_unit_test(a_pck_certificate_item_verifies_against_its_issuer_chain),
	    cmocka_unit_test(pck_certs_keys_name_the_manifest_hash_or_the_ppid_and_follow_the_pcs_urls),
	    cmocka_unit_test(a_pckcerts_list_is_stored_only_when_every_certificate_verifies_and_matches),
	    cmocka_unit_test(a_certificate_listed_under_another_tcb_is_refused),
	    cmocka_unit_test(the_pckcerts_parser_rejects_every_truncation_and_survives_every_bit_flip),
	    cmocka_unit_test(pck_selection_picks_the_highest_tcb_info_level_the_raw_tcb_meets),
	};

	if (argc >= 6 && strcmp(argv[1], "threads") == 0)
		return helper_threads(argc, argv);
	if (argc == 6 && strcmp(argv[1], "bundle") == 0)
		return helper_bundle(argv);
	if (argc >= 5 && strcmp(argv[1], "get") == 0)
		return helper_get(argc, argv);
	return cmocka_run_group_tests(tests, setup, teardown);
}

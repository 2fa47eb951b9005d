/* lib/kms/bootinfo.c: the KMS's bootstrap attestation (dstack spec §3.2).
 * The report_data vector was computed independently of cvmkit, with
 * @noble/hashes 1.8.0 (keccak_256) and @noble/curves 1.9.7 (secp256k1) under
 * node, from the SPKI of the dstack simulator's real test KMS CA
 * (compat/kms/dstack-simulator/appkeys.json `ca_cert`, SPKI extracted with
 * `openssl x509 -pubkey | openssl pkey -pubin -outform DER`) and the
 * compressed public key of that file's `k256_key`:
 *   keccak_256("dstack-kms-genereted-keys-v1:" + spki_hex + ";" + pub_hex + ";")
 * then 32 zero bytes. The parser of bootstrap-info.json is run over every
 * truncation, an extra byte, every bit flip, and each rule of its shape.
 * Verification runs on attestations the simulated TEE makes (TDX and SNP)
 * over the simulator's KMS roots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/kms.h>
#include <cvmkit/policy.h>
#include <cvmkit/ratls.h>
#include <cvmkit/report.h>
#include <cvmkit/tee.h>

#include "vectors.h"

#define SIM_APPKEYS "compat/kms/dstack-simulator/appkeys.json"
#define NOW ((int64_t)1767225600) /* 2026-01-01 */
#define SIM_CA_SPKI                                                                                          \
	"3059301306072a8648ce3d020106082a8648ce3d0301070342000419b2457dd9b8aa6446d980f136fff7812ecd6c77740e" \
	"eb0e"                                                                                               \
	"28b10d56c0c00028a5b6e59dcea307d583bd1f70769e9c116df2bcfb1758a95d8613e7de1c8482c0"
#define SIM_K256_PUB "02818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d096fc7c"
#define SIM_REPORT_DATA                                                                                      \
	"4bc978414b4367779f8dbafcbb111baf15b5d08ce6dff0944312d757238c06e70000000000000000000000000000000000" \
	"00"                                                                                                 \
	"0000000000000000000000000000"

static void assert_hex(const uint8_t *p, size_t len, const char *hex)
{
	char *got = cvm_hex_encode_new(p, len);

	assert_non_null(got);
	assert_string_equal(got, hex);
	free(got);
}

/* sim_roots reads the simulator's KMS CA SPKI and k256 public key through
 * cvmkit (cvm_kms_cert_spki, cvm_k256_pubkey). */
static void sim_roots(uint8_t **spki, size_t *spki_len, uint8_t pub[CVM_K256_PUBKEY_LEN])
{
	size_t len = 0;
	uint8_t *raw = vector_read(SIM_APPKEYS, &len);
	json_t *root = json_loadb((const char *)raw, len, 0, NULL);
	const char *ca = json_string_value(json_object_get(root, "ca_cert"));
	const char *k = json_string_value(json_object_get(root, "k256_key"));
	uint8_t sk[CVM_K256_SECKEY_LEN];

	assert_non_null(ca);
	assert_non_null(k);
	assert_int_equal(cvm_kms_cert_spki((const uint8_t *)ca, strlen(ca), spki, spki_len), CVM_OK);
	assert_int_equal(cvm_hex_decode_exact(k, strlen(k), sk, sizeof(sk)), CVM_OK);
	assert_int_equal(cvm_k256_pubkey(sk, pub), CVM_OK);
	json_decref(root);
	free(raw);
}

static void report_data_matches_the_independent_vector(void **state)
{
	uint8_t *spki = NULL, pub[CVM_K256_PUBKEY_LEN], rd[64];
	size_t spki_len = 0;

	(void)state;
	sim_roots(&spki, &spki_len, pub);
	assert_hex(spki, spki_len, SIM_CA_SPKI);
	assert_hex(pub, sizeof(pub), SIM_K256_PUB);
	assert_int_equal(cvm_kms_bootstrap_report_data(spki, spki_len, pub, rd), CVM_OK);
	assert_hex(rd, sizeof(rd), SIM_REPORT_DATA);
	/* one byte of either key moves the digest */
	pub[5] ^= 1;
	assert_int_equal(cvm_kms_bootstrap_report_data(spki, spki_len, pub, rd), CVM_OK);
	assert_int_not_equal(memcmp(rd, "\x4b\xc9\x78\x41", 4), 0);
	free(spki);
}

static void report_data_refuses_bad_arguments(void **state)
{
	uint8_t spki[CVM_KMS_SPKI_MAX + 1] = {0}, pub[CVM_K256_PUBKEY_LEN] = {2}, rd[64];

	(void)state;
	assert_int_equal(cvm_kms_bootstrap_report_data(spki, 0, pub, rd), CVM_E_INVAL);
	assert_int_equal(cvm_kms_bootstrap_report_data(spki, sizeof(spki), pub, rd), CVM_E_INVAL);
	assert_int_equal(cvm_kms_bootstrap_report_data(NULL, 10, pub, rd), CVM_E_INVAL);
	assert_int_equal(cvm_kms_bootstrap_report_data(spki, 10, NULL, rd), CVM_E_INVAL);
	assert_int_equal(cvm_kms_bootstrap_report_data(spki, CVM_KMS_SPKI_MAX, pub, rd), CVM_OK);
}

/* sample makes a bootstrap info with the simulator's roots and a small
 * attestation (parsing does not decode it), encoded. */
static char *sample(size_t *len)
{
	static const uint8_t va[] = {0x00, 0x01, 0x02, 0xfe, 0xff};
	struct cvm_kms_bootinfo bi;
	char *text = NULL;

	memset(&bi, 0, sizeof(bi));
	sim_roots(&bi.ca_pubkey, &bi.ca_pubkey_len, bi.k256_pubkey);
	bi.attestation = malloc(sizeof(va));
	assert_non_null(bi.attestation);
	memcpy(bi.attestation, va, sizeof(va));
	bi.attestation_len = sizeof(va);
	assert_int_equal(cvm_kms_bootinfo_encode(&bi, &text, len), CVM_OK);
	cvm_kms_bootinfo_cleanup(&bi);
	return text;
}

static void bootinfo_is_written_in_dstacks_form_and_reads_back(void **state)
{
	struct cvm_kms_bootinfo bi;
	char err[256] = "";
	size_t len = 0;
	char *text = sample(&len);

	(void)state;
	/* serde_json's compact output of BootstrapResponse, bytes as lowercase hex */
	assert_string_equal(text, "{\"ca_pubkey\":\"" SIM_CA_SPKI "\",\"k256_pubkey\":\"" SIM_K256_PUB
	                          "\",\"attestation\":\"000102feff\"}");
	assert_int_equal(cvm_kms_bootinfo_parse((const uint8_t *)text, len, &bi, err, sizeof(err)), CVM_OK);
	assert_hex(bi.ca_pubkey, bi.ca_pubkey_len, SIM_CA_SPKI);
	assert_hex(bi.k256_pubkey, sizeof(bi.k256_pubkey), SIM_K256_PUB);
	assert_hex(bi.attestation, bi.attestation_len, "000102feff");
	cvm_kms_bootinfo_cleanup(&bi);
	cvm_kms_bootinfo_cleanup(&bi); /* twice: safe */
	free(text);
}

static void bootinfo_parse_rejects_every_truncation_and_an_extra_byte(void **state)
{
	struct cvm_kms_bootinfo bi;
	char err[256];
	size_t len = 0;
	char *text = sample(&len);
	char *more = malloc(len + 1);

	(void)state;
	for (size_t n = 0; n < len; n++) {
		assert_int_not_equal(cvm_kms_bootinfo_parse((const uint8_t *)text, n, &bi, err, sizeof(err)),
		                     CVM_OK);
		assert_null(bi.ca_pubkey);
		assert_null(bi.attestation);
		assert_true(err[0] != '\0');
	}
	assert_non_null(more);
	memcpy(more, text, len);
	more[len] = 'x';
	assert_int_equal(cvm_kms_bootinfo_parse((const uint8_t *)more, len + 1, &bi, err, sizeof(err)),
	                 CVM_E_FORMAT);
	free(more);
	free(text);
}

/* Every single-bit flip is refused or parses to different fields (it cannot
 * silently read as the original). */
static void bootinfo_parse_every_bit_flip_fails_or_changes_a_field(void **state)
{
	struct cvm_kms_bootinfo orig, bi;
	char err[256];
	size_t len = 0;
	char *text = sample(&len);
	uint8_t *t = (uint8_t *)text;

	(void)state;
	assert_int_equal(cvm_kms_bootinfo_parse(t, len, &orig, err, sizeof(err)), CVM_OK);
	for (size_t i = 0; i < len; i++) {
		for (unsigned b = 0; b < 8; b++) {
			uint8_t was = t[i];

			t[i] = (uint8_t)(was ^ (1u << b));
			if (cvm_kms_bootinfo_parse(t, len, &bi, err, sizeof(err)) == CVM_OK) {
				bool same =
				    bi.ca_pubkey_len == orig.ca_pubkey_len &&
				    bi.attestation_len == orig.attestation_len &&
				    memcmp(bi.ca_pubkey, orig.ca_pubkey, orig.ca_pubkey_len) == 0 &&
				    memcmp(bi.k256_pubkey, orig.k256_pubkey, sizeof(orig.k256_pubkey)) == 0 &&
				    memcmp(bi.attestation, orig.attestation, orig.attestation_len) == 0;

				/* a hex letter's case is the one flip that keeps the value */
				if (same)
					assert_true(b == 5 && was != 0 &&
					            strchr("abcdefABCDEF", was) != NULL);
				cvm_kms_bootinfo_cleanup(&bi);
			}
			t[i] = was;
		}
	}
	cvm_kms_bootinfo_cleanup(&orig);
	free(text);
}

static void bootinfo_parse_holds_every_rule_of_its_shape(void **state)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
	    {"[]", "not a JSON object"},
	    {"{\"ca_pubkey\":\"30\",\"k256_pubkey\":\"" SIM_K256_PUB "\"}", "\"attestation\" is missing"},
	    {"{\"ca_pubkey\":\"30\",\"k256_pubkey\":\"" SIM_K256_PUB "\",\"attestation\":\"00\",\"x\":1}",
	     "unexpected key \"x\""},
	    {"{\"ca_pubkey\":\"30\",\"ca_pubkey\":\"30\",\"k256_pubkey\":\"" SIM_K256_PUB
	     "\",\"attestation\":\"00\"}",
	     "duplicate"},
	    {"{\"ca_pubkey\":\"0x30\",\"k256_pubkey\":\"" SIM_K256_PUB "\",\"attestation\":\"00\"}",
	     "not a hex digit"},
	    {"{\"ca_pubkey\":\"303\",\"k256_pubkey\":\"" SIM_K256_PUB "\",\"attestation\":\"00\"}",
	     "not 3 digits"},
	    {"{\"ca_pubkey\":\"\",\"k256_pubkey\":\"" SIM_K256_PUB "\",\"attestation\":\"00\"}",
	     "not 0 digits"},
	    {"{\"ca_pubkey\":30,\"k256_pubkey\":\"" SIM_K256_PUB "\",\"attestation\":\"00\"}",
	     "not a string"},
	    {"{\"ca_pubkey\":\"30\",\"k256_pubkey\":"
	     "\"04818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d"
	     "096fc7c\",\"attestation\":\"00\"}",
	     "compressed point"},
	    {"{\"ca_pubkey\":\"30\",\"k256_pubkey\":\"0281\",\"attestation\":\"00\"}", "not 4 digits"},
	    {"{\"ca_pubkey\":\"30\",\"k256_pubkey\":\"" SIM_K256_PUB "\",\"attestation\":\"\"}",
	     "not 0 digits"},
	    {"{\"ca_pubkey\":\"30\",\"k256_pubkey\":\"" SIM_K256_PUB "\",\"attestation\":\"0\\u0000\"}",
	     "not a JSON object"},
	};
	const char good[] =
	    "{\"ca_pubkey\":\"30\",\"k256_pubkey\":\"" SIM_K256_PUB "\",\"attestation\":\"AB\"}";
	struct cvm_kms_bootinfo bi;
	char err[256];
	uint8_t *big;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cvm_kms_bootinfo_parse((const uint8_t *)bad[i].json, strlen(bad[i].json),
		                                        &bi, err, sizeof(err)),
		                 CVM_E_FORMAT);
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].why);
	}
	/* upper-case hex is read (dstack's reader takes either case) */
	assert_int_equal(cvm_kms_bootinfo_parse((const uint8_t *)good, strlen(good), &bi, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(bi.attestation[0], 0xab);
	cvm_kms_bootinfo_cleanup(&bi);
	/* the size cap comes before any JSON is read */
	big = calloc(1, CVM_KMS_BOOTINFO_FILE_MAX + 1);
	assert_non_null(big);
	assert_int_equal(cvm_kms_bootinfo_parse(big, CVM_KMS_BOOTINFO_FILE_MAX + 1, &bi, err, sizeof(err)),
	                 CVM_E_TOO_LARGE);
	free(big);
}

static void rm_rf(const char *path)
{
	struct stat st;
	struct dirent *e;
	char sub[1024];
	DIR *d;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISDIR(st.st_mode)) {
		(void)unlink(path);
		return;
	}
	d = opendir(path);
	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			(void)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
			rm_rf(sub);
		}
		closedir(d);
	}
	(void)rmdir(path);
}

/* attest has the simulated platform quote `rd` and wraps the quote in a
 * VersionedAttestation (V0), as a guest agent's Attest answers. */
static void attest(const char *sim, enum cvm_tee_platform platform, const uint8_t rd[64], uint8_t **out,
                   size_t *out_len)
{
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_va va;

	assert_int_equal(cvm_tee_open_sim(sim, platform, &tee), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	memset(&va, 0, sizeof(va));
	va.tee = platform == CVM_TEE_PLATFORM_TDX ? CVM_RATLS_TEE_TDX : CVM_RATLS_TEE_SNP;
	va.variant = platform == CVM_TEE_PLATFORM_TDX ? 0 : 3;
	va.quote = ev.data;
	va.quote_len = ev.data_len;
	memcpy(va.report_data, rd, 64);
	va.config = "{}";
	va.config_len = 2;
	assert_int_equal(cvm_va_encode(&va, 0, out, out_len), CVM_OK);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
}

static void bootinfo_verifies_on_the_simulator_and_refuses_other_keys(void **state)
{
	static const enum cvm_tee_platform platforms[] = {CVM_TEE_PLATFORM_TDX, CVM_TEE_PLATFORM_SNP};
	struct cvm_dcap_collateral *dcap = NULL;
	struct cvm_amd_collateral *amd = NULL;
	struct cvm_tee_sim_opts so;
	char root[64], sim[128], path[256], what[256];
	uint8_t *intel = NULL, rd[64];
	size_t intel_len = 0;

	(void)state;
	(void)snprintf(root, sizeof(root), "/tmp/cvm-bootinfo-XXXXXX");
	assert_non_null(mkdtemp(root));
	(void)snprintf(sim, sizeof(sim), "%s/p", root);
	cvm_tee_sim_opts_init(&so, NOW);
	so.with_snp = true;
	assert_int_equal(cvm_tee_sim_init(sim, &so), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx", sim);
	assert_int_equal(cvm_dcap_collateral_load_dir(path, &dcap, what, sizeof(what)), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx/intel_sgx_root_ca.der", sim);
	assert_int_equal(cvm_file_read(path, 65536, &intel, &intel_len), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/snp", sim);
	assert_int_equal(cvm_amd_collateral_load_dir(path, &amd, what, sizeof(what)), CVM_OK);

	for (size_t p = 0; p < sizeof(platforms) / sizeof(platforms[0]); p++) {
		struct cvm_ratls_verifier_opts o;
		struct cvm_ratls_verifier *v = NULL, *strict = NULL;
		struct cvm_ratls_verdict verdict;
		struct cvm_report rep;
		struct cvm_kms_bootinfo bi;
		struct cvm_policy pol, other;
		uint8_t ca[CVM_KMS_SPKI_MAX], k256[CVM_K256_PUBKEY_LEN];
		size_t ca_len;

		memset(&bi, 0, sizeof(bi));
		sim_roots(&bi.ca_pubkey, &bi.ca_pubkey_len, bi.k256_pubkey);
		assert_int_equal(
		    cvm_kms_bootstrap_report_data(bi.ca_pubkey, bi.ca_pubkey_len, bi.k256_pubkey, rd),
		    CVM_OK);
		attest(sim, platforms[p], rd, &bi.attestation, &bi.attestation_len);
		cvm_policy_init(&pol);
		memset(&o, 0, sizeof(o));
		o.policy = &pol;
		o.dcap = dcap;
		o.amd = amd;
		o.intel_root_der = intel;
		o.intel_root_der_len = intel_len;
		o.amd_root_der = amd->ark;
		o.amd_root_der_len = amd->ark_len;
		assert_int_equal(cvm_ratls_verifier_new(&o, NOW, &v), CVM_OK);
		memcpy(ca, bi.ca_pubkey, bi.ca_pubkey_len);
		ca_len = bi.ca_pubkey_len;
		memcpy(k256, bi.k256_pubkey, sizeof(k256));

		/* the genuine file, with and without the roots to compare */
		assert_int_equal(cvm_kms_bootinfo_verify(&bi, v, NOW, ca, ca_len, k256, &verdict, &rep),
		                 CVM_OK);
		assert_true(verdict.binding);
		assert_true(verdict.evidence_verified);
		assert_true(verdict.simulated);
		assert_int_equal(cvm_kms_bootinfo_verify(&bi, v, NOW, NULL, 0, NULL, &verdict, &rep), CVM_OK);

		/* a file naming another k256 key: the attestation is over other keys */
		bi.k256_pubkey[10] ^= 1;
		assert_int_equal(cvm_kms_bootinfo_verify(&bi, v, NOW, NULL, 0, NULL, &verdict, &rep),
		                 CVM_E_MISMATCH);
		assert_false(verdict.binding);
		bi.k256_pubkey[10] ^= 1;
		/* ... or another root CA */
		bi.ca_pubkey[bi.ca_pubkey_len - 1] ^= 1;
		assert_int_equal(cvm_kms_bootinfo_verify(&bi, v, NOW, NULL, 0, NULL, &verdict, &rep),
		                 CVM_E_MISMATCH);
		bi.ca_pubkey[bi.ca_pubkey_len - 1] ^= 1;

		/* a genuine file, but not of the roots the caller trusts: each key on its own */
		ca[ca_len - 1] ^= 1;
		assert_int_equal(cvm_kms_bootinfo_verify(&bi, v, NOW, ca, ca_len, k256, &verdict, &rep),
		                 CVM_E_MISMATCH);
		assert_non_null(strstr(cvm_report_reason(&rep), "ca_pubkey is not"));
		ca[ca_len - 1] ^= 1;
		assert_int_equal(cvm_kms_bootinfo_verify(&bi, v, NOW, ca, ca_len - 1, k256, &verdict, &rep),
		                 CVM_E_MISMATCH);
		k256[32] ^= 1;
		assert_int_equal(cvm_kms_bootinfo_verify(&bi, v, NOW, ca, ca_len, k256, &verdict, &rep),
		                 CVM_E_MISMATCH);
		assert_non_null(strstr(cvm_report_reason(&rep), "k256_pubkey is not"));
		k256[32] ^= 1;

		/* a policy pinning other measurements refuses the genuine file */
		cvm_policy_init(&other);
		if (platforms[p] == CVM_TEE_PLATFORM_TDX) {
			other.mr_td.set = true;
			memset(other.mr_td.v, 0x5a, sizeof(other.mr_td.v));
		} else {
			other.snp.measurement.set = true;
			memset(other.snp.measurement.v, 0x5a, sizeof(other.snp.measurement.v));
		}
		o.policy = &other;
		assert_int_equal(cvm_ratls_verifier_new(&o, NOW, &strict), CVM_OK);
		assert_int_not_equal(
		    cvm_kms_bootinfo_verify(&bi, strict, NOW, ca, ca_len, k256, &verdict, &rep), CVM_OK);
		assert_false(verdict.evidence_verified);

		/* a damaged attestation is refused, never accepted */
		bi.attestation[bi.attestation_len / 2] ^= 0x40;
		assert_int_not_equal(cvm_kms_bootinfo_verify(&bi, v, NOW, ca, ca_len, k256, &verdict, &rep),
		                     CVM_OK);

		cvm_ratls_verifier_free(strict);
		cvm_ratls_verifier_free(v);
		cvm_kms_bootinfo_cleanup(&bi);
	}
	free(intel);
	cvm_dcap_collateral_free(dcap);
	cvm_amd_collateral_free(amd);
	rm_rf(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(report_data_matches_the_independent_vector),
	    cmocka_unit_test(report_data_refuses_bad_arguments),
	    cmocka_unit_test(bootinfo_is_written_in_dstacks_form_and_reads_back),
	    cmocka_unit_test(bootinfo_parse_rejects_every_truncation_and_an_extra_byte),
	    cmocka_unit_test(bootinfo_parse_every_bit_flip_fails_or_changes_a_field),
	    cmocka_unit_test(bootinfo_parse_holds_every_rule_of_its_shape),
	    cmocka_unit_test(bootinfo_verifies_on_the_simulator_and_refuses_other_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* TPM 2.0 quotes: the recorded VM boot (a real swtpm quote, its AK, nonce,
 * event log and IMA log) verifies end to end, with the PCRs replayed from
 * the logs; structures are parsed through tss2-mu with every truncation,
 * trailing byte and bit flip rejected; synthetic quotes signed here with
 * OpenSSL cover every scheme (ECDSA P-256/P-384, RSASSA, RSAPSS) and the
 * checks on magic, type, AK attributes, scheme, nonce and PCR digest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/ima.h>
#include <cvmkit/tpm.h>

#include "vectors.h"

#define VM "ima/vm-ovmf-tpmcrb-imang"
#define VMQ VM "/quote"
#define VM_EVENTLOG "eventlog/vm-ovmf-tpmcrb-imang/eventlog.bin"

/* flip_stride: every bit, or every 61st under valgrind (see test_dcap.c). */
static size_t flip_stride(void)
{
	const char *s = getenv("CVM_TEST_FLIP_STRIDE");
	long v = s != NULL ? strtol(s, NULL, 10) : getenv("CVM_UNDER_VALGRIND") != NULL ? 61 : 1;

	return v >= 1 && v <= 1000 ? (size_t)v : 1;
}

/* ---- the recorded VM boot ---------------------------------------------- */

struct vm {
	uint8_t *attest, *sig, *ak_tpm2b, *ak_pem, *attest2, *sig2, *pcrs, *pcrs2;
	size_t attest_len, sig_len, ak_tpm2b_len, ak_pem_len, attest2_len, sig2_len, pcrs_len, pcrs2_len;
	uint8_t nonce[64];
	size_t nonce_len;
	json_t *manifest; /* this vector's entry of ima/manifest.json */
};

static json_t *manifest_entry(const char *set, const char *name)
{
	char rel[256], path[4096];
	json_error_t err;
	json_t *m, *vs, *v, *found = NULL;
	size_t i;

	(void)snprintf(rel, sizeof(rel), "%s/manifest.json", set);
	m = json_load_file(vector_path(path, sizeof(path), rel), 0, &err);
	if (m == NULL)
		fail_msg("%s: %s", path, err.text);
	vs = json_object_get(m, "vectors");
	json_array_foreach(vs, i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
			found = json_incref(v);
	}
	json_decref(m);
	if (found == NULL)
		fail_msg("%s has no vector %s", path, name);
	return found;
}

static void vm_load(struct vm *vm)
{
	size_t n;
	uint8_t *hex;

	memset(vm, 0, sizeof(*vm));
	vm->attest = vector_read(VMQ "/quote.msg", &vm->attest_len);
	vm->sig = vector_read(VMQ "/quote.sig", &vm->sig_len);
	vm->attest2 = vector_read(VMQ "/quote2.msg", &vm->attest2_len);
	vm->sig2 = vector_read(VMQ "/quote2.sig", &vm->sig2_len);
	vm->ak_tpm2b = vector_read(VMQ "/ak.tpm2b_public", &vm->ak_tpm2b_len);
	vm->ak_pem = vector_read(VMQ "/ak.pub", &vm->ak_pem_len);
	vm->pcrs = vector_read(VMQ "/quote.pcrs", &vm->pcrs_len);
	vm->pcrs2 = vector_read(VMQ "/quote2.pcrs", &vm->pcrs2_len);
	hex = vector_read(VMQ "/nonce.hex", &n);
	while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r'))
		n--;
	assert_int_equal(cvm_hex_decode(hex == NULL ? "" : (const char *)hex, n, vm->nonce, sizeof(vm->nonce),
	                                &vm->nonce_len),
	                 CVM_OK);
	free(hex);
	vm->manifest = manifest_entry("ima", "vm-ovmf-tpmcrb-imang");
	/* The nonce file and the manifest agree. */
	{
		const char *want = json_string_value(json_object_get(
		    json_object_get(json_object_get(vm->manifest, "expected"), "quote"), "nonce"));
		char got[129];

		assert_non_null(want);
		cvm_hex_encode(vm->nonce, vm->nonce_len, got);
		assert_string_equal(got, want);
	}
}

static void vm_free(struct vm *vm)
{
	free(vm->attest);
	free(vm->sig);
	free(vm->attest2);
	free(vm->sig2);
	free(vm->ak_tpm2b);
	free(vm->ak_pem);
	free(vm->pcrs);
	free(vm->pcrs2);
	json_decref(vm->manifest);
}

static const json_t *vm_expected(const struct vm *vm, const char *key)
{
	return json_object_get(json_object_get(vm->manifest, "expected"), key);
}

/* pcrs_from_json fills `out` from {"0": "hex", ...} of bank `alg`. */
static void pcrs_from_json(const json_t *obj, uint16_t alg, struct cvm_tpm_pcrs *out)
{
	const char *key;
	json_t *v;

	assert_true(json_is_object(obj));
	json_object_foreach((json_t *)(uintptr_t)obj, key, v)
	{
		uint8_t d[64];
		const char *hex = json_string_value(v);

		assert_non_null(hex);
		assert_int_equal(cvm_hex_decode_exact(hex, strlen(hex), d, cvm_digest_len(alg)), CVM_OK);
		assert_int_equal(
		    cvm_tpm_pcrs_set(out, alg, (unsigned)strtoul(key, NULL, 10), d, cvm_digest_len(alg)),
		    CVM_OK);
	}
}

static void vm_quote_parses_to_its_fields(void **state)
{
	struct vm vm;
	struct cvm_tpm_attest a;
	struct cvm_tpm_sig s;
	uint8_t calc[32];

	(void)state;
	vm_load(&vm);
	assert_int_equal(cvm_tpm_attest_parse(vm.attest, vm.attest_len, &a), CVM_OK);
	assert_int_equal(a.magic, CVM_TPM_GENERATED_VALUE);
	assert_int_equal(a.type, CVM_TPM_ST_ATTEST_QUOTE);
	assert_int_equal(a.extra_len, vm.nonce_len);
	assert_memory_equal(a.extra, vm.nonce, vm.nonce_len);
	/* tpm2_quote's quote.yaml: "qualified name" of the AK and calcDigest. */
	assert_int_equal(a.signer_len, 34);
	{
		uint8_t qn[34];

		assert_int_equal(
		    cvm_hex_decode_exact(
		        "000b5ad396b76485b3f07ce0231b792054f46f4918579a18bfecd57e3e0c081ddcb5", 68, qn, 34),
		    CVM_OK);
		assert_memory_equal(a.signer, qn, 34);
	}
	assert_int_equal(
	    cvm_hex_decode_exact("53ad0062901e690e1dfa06a6aee3f1025fdc3ce8f7b73e5cab28f44e2fba3f07", 64, calc,
	                         32),
	    CVM_OK);
	assert_int_equal(a.pcr_digest_len, 32);
	assert_memory_equal(a.pcr_digest, calc, 32);
	assert_int_equal(a.pcr_sel.count, 1);
	assert_int_equal(a.pcr_sel.banks[0].alg, CVM_DIGEST_SHA256);
	assert_int_equal(a.pcr_sel.banks[0].mask, 0x7ff); /* sha256:0-10 */
	/* Clock info: the AK is under the EK, so the counts are not obfuscated. */
	assert_int_equal(a.reset_count, 2);
	assert_int_equal(a.restart_count, 0);
	assert_true(a.safe);
	assert_true(a.clock > 0);
	assert_int_equal(cvm_tpm_sig_parse(vm.sig, vm.sig_len, &s), CVM_OK);
	assert_int_equal(s.alg, CVM_TPMSIG_RSASSA);
	assert_int_equal(s.hash, CVM_DIGEST_SHA256);
	assert_int_equal(s.sig_len, 256);
	/* quote2 covers sha1:0-10 and sha256:0-10, in that order. */
	assert_int_equal(cvm_tpm_attest_parse(vm.attest2, vm.attest2_len, &a), CVM_OK);
	assert_int_equal(a.pcr_sel.count, 2);
	assert_int_equal(a.pcr_sel.banks[0].alg, CVM_DIGEST_SHA1);
	assert_int_equal(a.pcr_sel.banks[1].alg, CVM_DIGEST_SHA256);
	vm_free(&vm);
}

static void vm_ak_has_the_name_tpm2_tools_printed(void **state)
{
	struct vm vm;
	struct cvm_tpm_ak *ak = NULL, *ak_pem = NULL;
	const struct cvm_tpm_public *pub;
	char *pem = NULL, name[2 * CVM_TPM_NAME_MAX + 1], desc[32];

	(void)state;
	vm_load(&vm);
	assert_int_equal(cvm_tpm_ak_parse(vm.ak_tpm2b, vm.ak_tpm2b_len, &ak), CVM_OK);
	pub = cvm_tpm_ak_public(ak);
	assert_non_null(pub);
	cvm_hex_encode(pub->name, pub->name_len, name);
	/* ak.yaml: loaded-key name */
	assert_string_equal(name, "000b5bf6ed598d0ed9555fb2e9b91dce700d68138db71d268f2d7148e8231e9e95cb");
	assert_int_equal(pub->attributes, 0x00050072);
	assert_int_equal(pub->scheme, CVM_TPMSIG_RSASSA);
	assert_int_equal(pub->scheme_hash, CVM_DIGEST_SHA256);
	assert_int_equal(pub->key_bits, 2048);
	cvm_tpm_ak_describe(ak, desc, sizeof(desc));
	assert_string_equal(desc, "RSA 2048");
	/* The PEM tpm2-tools wrote is the same key, byte for byte. */
	assert_int_equal(cvm_tpm_ak_pem(ak, &pem), CVM_OK);
	assert_int_equal(strlen(pem), vm.ak_pem_len);
	assert_memory_equal(pem, vm.ak_pem, vm.ak_pem_len);
	assert_int_equal(cvm_tpm_ak_parse(vm.ak_pem, vm.ak_pem_len, &ak_pem), CVM_OK);
	assert_null(cvm_tpm_ak_public(ak_pem));
	free(pem);
	cvm_tpm_ak_free(ak);
	cvm_tpm_ak_free(ak_pem);
	vm_free(&vm);
}

static void vm_quotes_verify_with_tpm2_tools_pcr_files(void **state)
{
	struct vm vm;
	struct cvm_tpm_ak *ak = NULL, *ak_pem = NULL;
	struct cvm_tpm_pcr_sel sel;
	struct cvm_tpm_pcrs *pcrs = malloc(sizeof(*pcrs));
	struct cvm_tpm_quote q;
	struct cvm_report rep;

	(void)state;
	assert_non_null(pcrs);
	vm_load(&vm);
	assert_int_equal(cvm_tpm_ak_parse(vm.ak_tpm2b, vm.ak_tpm2b_len, &ak), CVM_OK);
	assert_int_equal(cvm_tpm_ak_parse(vm.ak_pem, vm.ak_pem_len, &ak_pem), CVM_OK);
	assert_int_equal(cvm_tpm_pcrs_parse_serialized(vm.pcrs, vm.pcrs_len, &sel, pcrs), CVM_OK);
	cvm_report_init(&rep);
	assert_int_equal(cvm_tpm_quote_authenticate_pcrs(ak, vm.attest, vm.attest_len, vm.sig, vm.sig_len,
	                                                 vm.nonce, vm.nonce_len, pcrs, &rep, &q),
	                 CVM_OK);
	assert_null(rep.failed);
	assert_int_equal(q.attest.reset_count, 2);
	assert_int_equal(cvm_tpm_quote_authenticate_pcrs(ak_pem, vm.attest, vm.attest_len, vm.sig, vm.sig_len,
	                                                 vm.nonce, vm.nonce_len, pcrs, NULL, NULL),
	                 CVM_OK);
	/* quote2: two banks. */
	assert_int_equal(cvm_tpm_pcrs_parse_serialized(vm.pcrs2, vm.pcrs2_len, &sel, pcrs), CVM_OK);
	assert_int_equal(sel.count, 2);
	assert_int_equal(cvm_tpm_quote_authenticate_pcrs(ak, vm.attest2, vm.attest2_len, vm.sig2, vm.sig2_len,
	                                                 vm.nonce, vm.nonce_len, pcrs, NULL, NULL),
	                 CVM_OK);
	/* The wrong PCR file for the quote. */
	assert_int_equal(cvm_tpm_pcrs_parse_serialized(vm.pcrs, vm.pcrs_len, &sel, pcrs), CVM_OK);
	cvm_report_init(&rep);
	assert_int_equal(cvm_tpm_quote_authenticate_pcrs(ak, vm.attest2, vm.attest2_len, vm.sig2, vm.sig2_len,
	                                                 vm.nonce, vm.nonce_len, pcrs, &rep, NULL),
	                 CVM_E_INVAL);
	assert_string_equal(rep.failed->name, "pcr_digest");
	assert_non_null(strstr(rep.failed->detail, "sha1:0"));
	cvm_tpm_ak_free(ak);
	cvm_tpm_ak_free(ak_pem);
	free(pcrs);
	vm_free(&vm);
}

/* The manifest's quoted values verify; the values read through sysfs after
 * IMA measured six more files do not (PCR 10 moved on). */
static void vm_quote_matches_the_quoted_values_not_the_later_sysfs_ones(void **state)
{
	struct vm vm;
	struct cvm_tpm_ak *ak = NULL;
	struct cvm_tpm_pcrs *pcrs = malloc(sizeof(*pcrs));
	struct cvm_report rep;

	(void)state;
	assert_non_null(pcrs);
	vm_load(&vm);
	assert_int_equal(cvm_tpm_ak_parse(vm.ak_tpm2b, vm.ak_tpm2b_len, &ak), CVM_OK);
	cvm_tpm_pcrs_init(pcrs);
	pcrs_from_json(json_object_get(vm_expected(&vm, "quote"), "quoted_sha256"), CVM_DIGEST_SHA256, pcrs);
	assert_int_equal(cvm_tpm_quote_authenticate_pcrs(ak, vm.attest, vm.attest_len, vm.sig, vm.sig_len,
	                                                 vm.nonce, vm.nonce_len, pcrs, NULL, NULL),
	                 CVM_OK);
	cvm_tpm_pcrs_init(pcrs);
	pcrs_from_json(json_object_get(json_object_get(vm_expected(&vm, "stated"), "pcrs"), "sha256"),
	               CVM_DIGEST_SHA256, pcrs);
	cvm_report_init(&rep);
	assert_int_equal(cvm_tpm_quote_authenticate_pcrs(ak, vm.attest, vm.attest_len, vm.sig, vm.sig_len,
	                                                 vm.nonce, vm.nonce_len, pcrs, &rep, NULL),
	                 CVM_E_MISMATCH);
	assert_string_equal(rep.failed->name, "pcr_digest");
	cvm_tpm_ak_free(ak);
	free(pcrs);
	vm_free(&vm);
}

/* ima_prefix replays the IMA list over the event log's PCRs and returns the
 * shortest prefix (entries) whose PCR 10 makes `q` match, or -1; *total is
 * the number of entries. */
static long ima_prefix(const struct cvm_tpm_quote *q, const struct cvm_tpm_pcrs *base, const uint8_t *ima,
                       size_t ima_len, uint64_t *total)
{
	struct cvm_tpm_pcrs *cur = malloc(sizeof(*cur));
	struct cvm_ima_reader *rd = NULL;
	struct cvm_ima_replay *rp = NULL;
	const uint16_t bank = CVM_DIGEST_SHA256;
	struct cvm_ima_entry e;
	uint8_t v[32];
	bool has = true;
	long found = -1;

	assert_non_null(cur);
	*cur = *base;
	memset(v, 0, sizeof(v));
	assert_int_equal(cvm_tpm_pcrs_set(cur, bank, 10, v, sizeof(v)), CVM_OK);
	assert_int_equal(cvm_ima_reader_new_mem(ima, ima_len, CVM_IMA_FORMAT_AUTO, &rd), CVM_OK);
	assert_int_equal(cvm_ima_replay_new(&bank, 1, &rp), CVM_OK);
	if (cvm_tpm_quote_pcrs_match(q, cur))
		found = 0;
	for (;;) {
		assert_int_equal(cvm_ima_reader_next(rd, &e, &has), CVM_OK);
		if (!has)
			break;
		assert_int_equal(cvm_ima_replay_extend(rp, &e), CVM_OK);
		assert_int_equal(cvm_ima_replay_pcr(rp, bank, 10, v, sizeof(v)), CVM_OK);
		assert_int_equal(cvm_tpm_pcrs_set(cur, bank, 10, v, sizeof(v)), CVM_OK);
		if (found < 0 && cvm_tpm_quote_pcrs_match(q, cur))
			found = (long)cvm_ima_replay_entries(rp);
	}
	*total = cvm_ima_replay_entries(rp);
	cvm_ima_replay_free(rp);
	cvm_ima_reader_free(rd);
	free(cur);
	return found;
}

/* The end-to-end check of the recorded boot: PCRs 0-9 replayed from the
 * firmware event log (part A's replay), PCR 10 from the IMA list (part B's),
 * and the quote accepts exactly the prefix the manifest names. */
static void vm_boot_verifies_end_to_end_from_its_logs(void **state)
{
	static const char *const ima_files[] = {VM "/binary_runtime_measurements",
	                                        VM "/ascii_runtime_measurements"};
	struct vm vm;
	struct cvm_tpm_ak *ak = NULL;
	struct cvm_evl_replay *er = malloc(sizeof(*er));
	struct cvm_tpm_pcrs *base = malloc(sizeof(*base));
	struct cvm_tpm_quote q;
	uint8_t *evl;
	size_t evl_len;
	const json_t *exq;
	json_int_t want_prefix, want_total;

	(void)state;
	assert_non_null(er);
	assert_non_null(base);
	vm_load(&vm);
	exq = vm_expected(&vm, "quote");
	want_prefix = json_integer_value(json_object_get(exq, "quoted_pcr10_matches_ima_prefix_entries"));
	want_total = json_integer_value(json_object_get(exq, "total_ima_entries"));
	assert_int_equal(want_prefix, 507);
	assert_int_equal(want_total, 513);
	assert_int_equal(cvm_tpm_ak_parse(vm.ak_tpm2b, vm.ak_tpm2b_len, &ak), CVM_OK);
	assert_int_equal(cvm_tpm_quote_authenticate(ak, vm.attest, vm.attest_len, vm.sig, vm.sig_len,
	                                            vm.nonce, vm.nonce_len, NULL, &q),
	                 CVM_OK);
	evl = vector_read(VM_EVENTLOG, &evl_len);
	assert_int_equal(cvm_evl_replay(evl, evl_len, CVM_EVL_AUTO, er), CVM_OK);
	cvm_tpm_pcrs_init(base);
	for (unsigned pcr = 0; pcr < 10; pcr++) {
		const uint8_t *v;
		size_t vlen;

		assert_int_equal(cvm_evl_replay_value(er, CVM_DIGEST_SHA256, pcr, &v, &vlen), CVM_OK);
		assert_int_equal(cvm_tpm_pcrs_set(base, CVM_DIGEST_SHA256, pcr, v, vlen), CVM_OK);
	}
	/* Without PCR 10 the digest cannot be computed: the check names it. */
	{
		struct cvm_report rep;

		cvm_report_init(&rep);
		assert_int_equal(cvm_tpm_quote_check_pcrs(&q, base, &rep), CVM_E_INVAL);
		assert_non_null(strstr(rep.failed->detail, "sha256:10"));
	}
	for (size_t i = 0; i < sizeof(ima_files) / sizeof(ima_files[0]); i++) {
		uint8_t *ima;
		size_t ima_len;
		uint64_t total = 0;

		ima = vector_read(ima_files[i], &ima_len);
		assert_int_equal(ima_prefix(&q, base, ima, ima_len, &total), want_prefix);
		assert_int_equal(total, (uint64_t)want_total);
		free(ima);
	}
	free(evl);
	free(er);
	free(base);
	cvm_tpm_ak_free(ak);
	vm_free(&vm);
}

static void vm_quote_rejects_another_nonce(void **state)
{
	struct vm vm;
	struct cvm_tpm_ak *ak = NULL;
	struct cvm_report rep;
	uint8_t nonce[64];

	(void)state;
	vm_load(&vm);
	assert_int_equal(cvm_tpm_ak_parse(vm.ak_tpm2b, vm.ak_tpm2b_len, &ak), CVM_OK);
	memcpy(nonce, vm.nonce, vm.nonce_len);
	nonce[0] ^= 1;
	cvm_report_init(&rep);
	assert_int_equal(cvm_tpm_quote_authenticate(ak, vm.attest, vm.attest_len, vm.sig, vm.sig_len, nonce,
	                                            vm.nonce_len, &rep, NULL),
	                 CVM_E_MISMATCH);
	assert_string_equal(rep.failed->name, "nonce");
	/* A prefix of the nonce is another nonce. */
	assert_int_equal(cvm_tpm_quote_authenticate(ak, vm.attest, vm.attest_len, vm.sig, vm.sig_len,
	                                            vm.nonce, vm.nonce_len - 1, NULL, NULL),
	                 CVM_E_MISMATCH);
	assert_int_equal(cvm_tpm_quote_authenticate(ak, vm.attest, vm.attest_len, vm.sig, vm.sig_len,
	                                            vm.nonce, 0, NULL, NULL),
	                 CVM_E_INVAL);
	cvm_tpm_ak_free(ak);
	vm_free(&vm);
}

static void vm_structures_reject_every_truncation_and_a_trailing_byte(void **state)
{
	struct vm vm;
	struct cvm_tpm_attest a;
	struct cvm_tpm_sig s;
	struct cvm_tpm_ak *ak = NULL;
	struct cvm_tpm_pcr_sel sel;
	struct cvm_tpm_pcrs *pcrs = malloc(sizeof(*pcrs));
	uint8_t *big;

	(void)state;
	assert_non_null(pcrs);
	vm_load(&vm);
	for (size_t n = 0; n < vm.attest_len; n++)
		assert_int_not_equal(cvm_tpm_attest_parse(vm.attest, n, &a), CVM_OK);
	for (size_t n = 0; n < vm.sig_len; n++)
		assert_int_not_equal(cvm_tpm_sig_parse(vm.sig, n, &s), CVM_OK);
	for (size_t n = 0; n < vm.ak_tpm2b_len; n++) {
		assert_int_not_equal(cvm_tpm_ak_parse(vm.ak_tpm2b, n, &ak), CVM_OK);
		assert_null(ak);
	}
	for (size_t n = 0; n < vm.pcrs_len; n++)
		assert_int_not_equal(cvm_tpm_pcrs_parse_serialized(vm.pcrs, n, &sel, pcrs), CVM_OK);
	big = malloc(vm.pcrs_len + 1);
	assert_non_null(big);
	memcpy(big, vm.attest, vm.attest_len);
	big[vm.attest_len] = 0;
	assert_int_equal(cvm_tpm_attest_parse(big, vm.attest_len + 1, &a), CVM_E_FORMAT);
	memcpy(big, vm.sig, vm.sig_len);
	big[vm.sig_len] = 0;
	assert_int_equal(cvm_tpm_sig_parse(big, vm.sig_len + 1, &s), CVM_E_FORMAT);
	memcpy(big, vm.ak_tpm2b, vm.ak_tpm2b_len);
	big[vm.ak_tpm2b_len] = 0;
	assert_int_not_equal(cvm_tpm_ak_parse(big, vm.ak_tpm2b_len + 1, &ak), CVM_OK);
	memcpy(big, vm.pcrs, vm.pcrs_len);
	big[vm.pcrs_len] = 0;
	assert_int_not_equal(cvm_tpm_pcrs_parse_serialized(big, vm.pcrs_len + 1, &sel, pcrs), CVM_OK);
	free(big);
	free(pcrs);
	vm_free(&vm);
}

/* tss2-mu 3.2's TPM2B_PUBLIC unmarshaller does not bound the TPMT_PUBLIC by
 * the size prefix: cvmkit must, in both directions. */
static void tpm2b_public_size_must_cover_the_public_area_exactly(void **state)
{
	struct vm vm;
	struct cvm_tpm_ak *ak = NULL;
	uint8_t buf[512];
	size_t n;

	(void)state;
	vm_load(&vm);
	n = vm.ak_tpm2b_len;
	assert_true(n + 1 <= sizeof(buf));
	/* One byte more inside the TPM2B than the TPMT_PUBLIC uses. */
	memcpy(buf, vm.ak_tpm2b, n);
	buf[n] = 0;
	buf[1] = (uint8_t)(buf[1] + 1);
	assert_int_equal(cvm_tpm_ak_parse(buf, n + 1, &ak), CVM_E_FORMAT);
	/* A size one byte short of the public area, the byte following it. */
	memcpy(buf, vm.ak_tpm2b, n);
	buf[1] = (uint8_t)(buf[1] - 1);
	assert_int_not_equal(cvm_tpm_ak_parse(buf, n, &ak), CVM_OK);
	/* The bare TPMT_PUBLIC is accepted, and has the same Name. */
	assert_int_equal(cvm_tpm_ak_parse(vm.ak_tpm2b + 2, n - 2, &ak), CVM_OK);
	assert_non_null(cvm_tpm_ak_public(ak));
	assert_int_equal(cvm_tpm_ak_public(ak)->name_len, 34);
	cvm_tpm_ak_free(ak);
	vm_free(&vm);
}

static void vm_bit_flips_never_verify(void **state)
{
	struct vm vm;
	struct cvm_tpm_ak *ak = NULL, *flipped = NULL;
	struct cvm_tpm_pcr_sel sel;
	struct cvm_tpm_pcrs *pcrs = malloc(sizeof(*pcrs));
	size_t stride = flip_stride(), flips = 0;
	uint8_t *buf;

	(void)state;
	assert_non_null(pcrs);
	vm_load(&vm);
	assert_int_equal(cvm_tpm_ak_parse(vm.ak_tpm2b, vm.ak_tpm2b_len, &ak), CVM_OK);
	assert_int_equal(cvm_tpm_pcrs_parse_serialized(vm.pcrs, vm.pcrs_len, &sel, pcrs), CVM_OK);
	buf = malloc(vm.ak_tpm2b_len);
	assert_non_null(buf);
	for (size_t bit = 0; bit < 8 * vm.attest_len; bit += stride, flips++) {
		vm.attest[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_not_equal(cvm_tpm_quote_authenticate_pcrs(ak, vm.attest, vm.attest_len, vm.sig,
		                                                     vm.sig_len, vm.nonce, vm.nonce_len, pcrs,
		                                                     NULL, NULL),
		                     CVM_OK);
		vm.attest[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t bit = 0; bit < 8 * vm.sig_len; bit += stride, flips++) {
		vm.sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_not_equal(cvm_tpm_quote_authenticate_pcrs(ak, vm.attest, vm.attest_len, vm.sig,
		                                                     vm.sig_len, vm.nonce, vm.nonce_len, pcrs,
		                                                     NULL, NULL),
		                     CVM_OK);
		vm.sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (size_t bit = 0; bit < 8 * vm.ak_tpm2b_len; bit += stride, flips++) {
		int r;

		memcpy(buf, vm.ak_tpm2b, vm.ak_tpm2b_len);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		r = cvm_tpm_ak_parse(buf, vm.ak_tpm2b_len, &flipped);
		if (r == CVM_OK) {
			/* Only flips outside the key and its attributes' required bits
			 * (nameAlg, unrelated attributes, the unused symmetric field)
			 * may still verify; the modulus, the exponent, the scheme and
			 * the restricted/sign bits may not. */
			r = cvm_tpm_quote_authenticate_pcrs(flipped, vm.attest, vm.attest_len, vm.sig,
			                                    vm.sig_len, vm.nonce, vm.nonce_len, pcrs, NULL,
			                                    NULL);
			if (r == CVM_OK) {
				const struct cvm_tpm_public *p = cvm_tpm_ak_public(flipped);

				assert_int_equal(p->key_bits, 2048);
				assert_int_equal(p->scheme, CVM_TPMSIG_RSASSA);
				assert_true(bit / 8 <
				            2 + 10 +
				                2); /* size, type, nameAlg, attributes, authPolicy size */
			}
			cvm_tpm_ak_free(flipped);
			flipped = NULL;
		}
	}
	/* Every bit (every stride-th one) of the three structures was flipped. */
	assert_true(flips + 3 >= 8 * (vm.attest_len + vm.sig_len + vm.ak_tpm2b_len) / stride);
	free(buf);
	free(pcrs);
	cvm_tpm_ak_free(ak);
	vm_free(&vm);
}

/* ---- tpm2-tools PCR files and selections ------------------------------- */

static void serialized_pcr_files_round_trip_byte_for_byte(void **state)
{
	static const char *const files[] = {VMQ "/quote.pcrs", VMQ "/quote2.pcrs"};
	struct cvm_tpm_pcr_sel sel;
	struct cvm_tpm_pcrs *pcrs = malloc(sizeof(*pcrs)), *back = malloc(sizeof(*back));

	(void)state;
	assert_non_null(pcrs);
	assert_non_null(back);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		uint8_t *buf, *out = NULL, *vals;
		size_t len, out_len = 0, vlen = 0;

		buf = vector_read(files[i], &len);
		assert_int_equal(cvm_tpm_pcrs_parse_serialized(buf, len, &sel, pcrs), CVM_OK);
		assert_int_equal(cvm_tpm_pcrs_write_serialized(&sel, pcrs, &out, &out_len), CVM_OK);
		assert_int_equal(out_len, len);
		assert_memory_equal(out, buf, len);
		/* The same values in tpm2-tools' "values" format. */
		vals = malloc(len);
		assert_non_null(vals);
		for (size_t b = 0; b < sel.count; b++) {
			for (unsigned p = 0; p < CVM_TPM_PCR_COUNT; p++) {
				size_t dl = cvm_digest_len(sel.banks[b].alg);

				if ((sel.banks[b].mask & (1u << p)) == 0)
					continue;
				memcpy(vals + vlen, cvm_tpm_pcrs_get(pcrs, sel.banks[b].alg, p), dl);
				vlen += dl;
			}
		}
		assert_int_equal(cvm_tpm_pcrs_parse_values(vals, vlen, &sel, back), CVM_OK);
		assert_memory_equal(back, pcrs, sizeof(*back));
		assert_int_not_equal(cvm_tpm_pcrs_parse_values(vals, vlen - 1, &sel, back), CVM_OK);
		assert_int_not_equal(
		    cvm_tpm_pcrs_parse_values(vals, vlen + 1 <= len ? vlen + 1 : vlen - 2, &sel, back),
		    CVM_OK);
		free(vals);
		free(out);
		free(buf);
	}
	/* The sysfs values of the stated manifest: 0-9 match the quoted ones. */
	{
		uint8_t *buf;
		size_t len;

		buf = vector_read(VMQ "/quote.pcrs", &len);
		assert_int_equal(cvm_tpm_pcrs_parse_serialized(buf, len, &sel, pcrs), CVM_OK);
		assert_non_null(cvm_tpm_pcrs_get(pcrs, CVM_DIGEST_SHA256, 10));
		assert_null(cvm_tpm_pcrs_get(pcrs, CVM_DIGEST_SHA256, 11));
		assert_null(cvm_tpm_pcrs_get(pcrs, CVM_DIGEST_SHA1, 0));
		free(buf);
	}
	free(pcrs);
	free(back);
}

static void selections_parse_and_format(void **state)
{
	static const struct {
		const char *in, *out;
	} good[] = {
	    {"sha256:0,1,10", "sha256:0,1,10"},
	    {"sha256:0-10", "sha256:0-10"},
	    {"sha1:0-7+sha256:all", "sha1:0-7+sha256:0-23"},
	    {"SHA384:23,0", "sha384:0,23"},
	    {"sha256:3,2,1", "sha256:1-3"},
	    {"sha512:5-5", "sha512:5"},
	};
	static const char *const bad[] = {
	    "",
	    "sha256",
	    "sha256:",
	    "sha256:24",
	    "sha256:1-",
	    "sha256:3-1",
	    "sha256:0,,1",
	    "sha256:001",
	    "sha256:0+sha256:1",
	    "md5:1",
	    "sha256:all,1",
	    "sha256:-1",
	    "sha256:1+",
	    ":1",
	    "sha256:1 ",
	    "sha256:0x1",
	    "sha1:0+sha256:1+",
	    "sha256:+1",
	};
	struct cvm_tpm_pcr_sel sel;
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(cvm_tpm_pcr_sel_parse(good[i].in, &sel), CVM_OK);
		cvm_tpm_pcr_sel_format(&sel, buf, sizeof(buf));
		assert_string_equal(buf, good[i].out);
	}
	assert_int_equal(cvm_tpm_pcr_sel_parse("sha256:0,1,10", &sel), CVM_OK);
	assert_int_equal(cvm_tpm_pcr_sel_mask(&sel, CVM_DIGEST_SHA256), (1u << 0) | (1u << 1) | (1u << 10));
	assert_int_equal(cvm_tpm_pcr_sel_mask(&sel, CVM_DIGEST_SHA1), 0);
	assert_int_equal(sel.banks[0].mask, (1u << 0) | (1u << 1) | (1u << 10));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = cvm_tpm_pcr_sel_parse(bad[i], &sel);

		if (r == CVM_OK)
			fail_msg("'%s' was accepted", bad[i]);
	}
	assert_int_equal(cvm_tpm_pcr_sel_parse("md5:1", &sel), CVM_E_UNSUPPORTED);
	/* A buffer too small keeps a terminated prefix. */
	assert_int_equal(cvm_tpm_pcr_sel_parse("sha1:0-7+sha256:all", &sel), CVM_OK);
	cvm_tpm_pcr_sel_format(&sel, buf, 8);
	assert_string_equal(buf, "sha1:0-");
}

static void pcr_digest_hashes_the_selected_values_in_order(void **state)
{
	struct cvm_tpm_pcr_sel sel;
	struct cvm_tpm_pcrs *pcrs = malloc(sizeof(*pcrs));
	uint8_t v1[20], v2[32], cat[52], want[48], got[64];
	size_t got_len = 0;
	char missing[32];

	(void)state;
	assert_non_null(pcrs);
	memset(v1, 0x11, sizeof(v1));
	memset(v2, 0x22, sizeof(v2));
	cvm_tpm_pcrs_init(pcrs);
	assert_int_equal(cvm_tpm_pcrs_set(pcrs, CVM_DIGEST_SHA1, 7, v1, sizeof(v1)), CVM_OK);
	assert_int_equal(cvm_tpm_pcrs_set(pcrs, CVM_DIGEST_SHA256, 3, v2, sizeof(v2)), CVM_OK);
	assert_int_equal(cvm_tpm_pcrs_set(pcrs, CVM_DIGEST_SHA256, 3, v2, 20), CVM_E_INVAL);
	assert_int_equal(cvm_tpm_pcrs_set(pcrs, CVM_DIGEST_SHA256, 24, v2, 32), CVM_E_INVAL);
	assert_int_equal(cvm_tpm_pcrs_set(pcrs, 0x0001, 3, v2, 32), CVM_E_UNSUPPORTED);
	/* sha1:7 then sha256:3, hashed with SHA-384 (computed by OpenSSL here). */
	assert_int_equal(cvm_tpm_pcr_sel_parse("sha1:7+sha256:3", &sel), CVM_OK);
	memcpy(cat, v1, 20);
	memcpy(cat + 20, v2, 32);
	assert_int_equal(EVP_Digest(cat, sizeof(cat), want, NULL, EVP_sha384(), NULL), 1);
	assert_int_equal(cvm_tpm_pcrs_digest(&sel, pcrs, CVM_DIGEST_SHA384, got, sizeof(got), &got_len,
	                                     missing, sizeof(missing)),
	                 CVM_OK);
	assert_int_equal(got_len, 48);
	assert_memory_equal(got, want, 48);
	/* Order matters. */
	assert_int_equal(cvm_tpm_pcr_sel_parse("sha256:3+sha1:7", &sel), CVM_OK);
	assert_int_equal(
	    cvm_tpm_pcrs_digest(&sel, pcrs, CVM_DIGEST_SHA384, got, sizeof(got), &got_len, NULL, 0), CVM_OK);
	assert_memory_not_equal(got, want, 48);
	assert_int_equal(cvm_tpm_pcr_sel_parse("sha256:3,4", &sel), CVM_OK);
	assert_int_equal(cvm_tpm_pcrs_digest(&sel, pcrs, CVM_DIGEST_SHA256, got, sizeof(got), &got_len,
	                                     missing, sizeof(missing)),
	                 CVM_E_INVAL);
	assert_string_equal(missing, "sha256:4");
	free(pcrs);
}

/* ---- synthetic quotes of every scheme ------------------------------------ */

enum scheme { ECDSA_P256, ECDSA_P384, RSASSA, RSAPSS_DIGEST_SALT, RSAPSS_MAX_SALT };

struct synth {
	enum scheme scheme;
	EVP_PKEY *key;
	TPM2B_PUBLIC pub;
	TPMS_ATTEST attest_struct;
	uint8_t pub_buf[1024], attest[1024], sig[1024];
	size_t pub_len, attest_len, sig_len;
	uint8_t nonce[16];
	struct cvm_tpm_pcrs pcrs;
};

static uint16_t synth_hash(enum scheme s)
{
	return s == ECDSA_P384 ? TPM2_ALG_SHA384 : TPM2_ALG_SHA256;
}

static const EVP_MD *synth_md(enum scheme s)
{
	return s == ECDSA_P384 ? EVP_sha384() : EVP_sha256();
}

static void synth_public(struct synth *x, uint32_t attrs)
{
	TPMT_PUBLIC *p = &x->pub.publicArea;
	BIGNUM *a = NULL, *b = NULL;
	size_t off = 0;

	memset(&x->pub, 0, sizeof(x->pub));
	p->nameAlg = TPM2_ALG_SHA256;
	p->objectAttributes = attrs;
	if (x->scheme == ECDSA_P256 || x->scheme == ECDSA_P384) {
		int fb = x->scheme == ECDSA_P256 ? 32 : 48;

		p->type = TPM2_ALG_ECC;
		p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
		p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = synth_hash(x->scheme);
		p->parameters.eccDetail.curveID =
		    x->scheme == ECDSA_P256 ? TPM2_ECC_NIST_P256 : TPM2_ECC_NIST_P384;
		p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
		assert_int_equal(EVP_PKEY_get_bn_param(x->key, OSSL_PKEY_PARAM_EC_PUB_X, &a), 1);
		assert_int_equal(EVP_PKEY_get_bn_param(x->key, OSSL_PKEY_PARAM_EC_PUB_Y, &b), 1);
		p->unique.ecc.x.size = (UINT16)fb;
		p->unique.ecc.y.size = (UINT16)fb;
		assert_int_equal(BN_bn2binpad(a, p->unique.ecc.x.buffer, fb), fb);
		assert_int_equal(BN_bn2binpad(b, p->unique.ecc.y.buffer, fb), fb);
	} else {
		p->type = TPM2_ALG_RSA;
		p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
		p->parameters.rsaDetail.scheme.scheme =
		    x->scheme == RSASSA ? TPM2_ALG_RSASSA : TPM2_ALG_RSAPSS;
		p->parameters.rsaDetail.scheme.details.anySig.hashAlg = TPM2_ALG_SHA256;
		p->parameters.rsaDetail.keyBits = 2048;
		p->parameters.rsaDetail.exponent = 0;
		assert_int_equal(EVP_PKEY_get_bn_param(x->key, OSSL_PKEY_PARAM_RSA_N, &a), 1);
		p->unique.rsa.size = 256;
		assert_int_equal(BN_bn2binpad(a, p->unique.rsa.buffer, 256), 256);
	}
	BN_free(a);
	BN_free(b);
	assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&x->pub, x->pub_buf, sizeof(x->pub_buf), &off),
	                 TSS2_RC_SUCCESS);
	x->pub_len = off;
}

/* synth_attest builds a quote of sha256:0,10 over the values in x->pcrs. */
static void synth_attest(struct synth *x, uint32_t magic, uint16_t type)
{
	TPMS_ATTEST *a = &x->attest_struct;
	uint8_t cat[64];
	unsigned int dlen = 0;
	size_t off = 0;

	memset(a, 0, sizeof(*a));
	a->magic = magic;
	a->type = type;
	a->qualifiedSigner.size = 34;
	memset(a->qualifiedSigner.name, 0xab, 34);
	a->extraData.size = sizeof(x->nonce);
	memcpy(a->extraData.buffer, x->nonce, sizeof(x->nonce));
	a->clockInfo.clock = 123456;
	a->clockInfo.resetCount = 7;
	a->clockInfo.restartCount = 3;
	a->clockInfo.safe = 1;
	a->firmwareVersion = 0x0102030405060708ull;
	a->attested.quote.pcrSelect.count = 1;
	a->attested.quote.pcrSelect.pcrSelections[0].hash = TPM2_ALG_SHA256;
	a->attested.quote.pcrSelect.pcrSelections[0].sizeofSelect = 3;
	a->attested.quote.pcrSelect.pcrSelections[0].pcrSelect[0] = 0x01;
	a->attested.quote.pcrSelect.pcrSelections[0].pcrSelect[1] = 0x04;
	memcpy(cat, cvm_tpm_pcrs_get(&x->pcrs, CVM_DIGEST_SHA256, 0), 32);
	memcpy(cat + 32, cvm_tpm_pcrs_get(&x->pcrs, CVM_DIGEST_SHA256, 10), 32);
	assert_int_equal(EVP_Digest(cat, sizeof(cat), a->attested.quote.pcrDigest.buffer, &dlen,
	                            synth_md(x->scheme), NULL),
	                 1);
	a->attested.quote.pcrDigest.size = (UINT16)dlen;
	assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(a, x->attest, sizeof(x->attest), &off), TSS2_RC_SUCCESS);
	x->attest_len = off;
}

/* synth_sign signs x->attest; `strip` drops leading zero bytes of r and s
 * (a TPM2B may) or, if false, pads them to the field size. */
static void synth_sign(struct synth *x, bool strip)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	TPMT_SIGNATURE s;
	uint8_t der[600];
	size_t der_len = sizeof(der), off = 0;

	assert_non_null(ctx);
	memset(&s, 0, sizeof(s));
	assert_int_equal(EVP_DigestSignInit(ctx, &pctx, synth_md(x->scheme), NULL, x->key), 1);
	if (x->scheme == RSAPSS_DIGEST_SALT || x->scheme == RSAPSS_MAX_SALT) {
		assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
		assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, x->scheme == RSAPSS_DIGEST_SALT
		                                                            ? RSA_PSS_SALTLEN_DIGEST
		                                                            : RSA_PSS_SALTLEN_MAX),
		                 1);
	}
	assert_int_equal(EVP_DigestSign(ctx, der, &der_len, x->attest, x->attest_len), 1);
	if (x->scheme == ECDSA_P256 || x->scheme == ECDSA_P384) {
		const unsigned char *p = der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
		int fb = x->scheme == ECDSA_P256 ? 32 : 48;

		assert_non_null(es);
		s.sigAlg = TPM2_ALG_ECDSA;
		s.signature.ecdsa.hash = synth_hash(x->scheme);
		if (strip) {
			s.signature.ecdsa.signatureR.size =
			    (UINT16)BN_bn2bin(ECDSA_SIG_get0_r(es), s.signature.ecdsa.signatureR.buffer);
			s.signature.ecdsa.signatureS.size =
			    (UINT16)BN_bn2bin(ECDSA_SIG_get0_s(es), s.signature.ecdsa.signatureS.buffer);
		} else {
			s.signature.ecdsa.signatureR.size = (UINT16)fb;
			s.signature.ecdsa.signatureS.size = (UINT16)fb;
			assert_int_equal(
			    BN_bn2binpad(ECDSA_SIG_get0_r(es), s.signature.ecdsa.signatureR.buffer, fb), fb);
			assert_int_equal(
			    BN_bn2binpad(ECDSA_SIG_get0_s(es), s.signature.ecdsa.signatureS.buffer, fb), fb);
		}
		ECDSA_SIG_free(es);
	} else {
		s.sigAlg = x->scheme == RSASSA ? TPM2_ALG_RSASSA : TPM2_ALG_RSAPSS;
		s.signature.rsassa.hash = TPM2_ALG_SHA256;
		s.signature.rsassa.sig.size = (UINT16)der_len;
		memcpy(s.signature.rsassa.sig.buffer, der, der_len);
	}
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, x->sig, sizeof(x->sig), &off), TSS2_RC_SUCCESS);
	x->sig_len = off;
	EVP_MD_CTX_free(ctx);
}

#define AK_ATTRS                                                                            \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN | \
	 TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

static struct synth *synth_new(enum scheme scheme, EVP_PKEY *key)
{
	struct synth *x = calloc(1, sizeof(*x));
	uint8_t v[32];

	assert_non_null(x);
	x->scheme = scheme;
	x->key = key;
	memset(x->nonce, 0x5a, sizeof(x->nonce));
	cvm_tpm_pcrs_init(&x->pcrs);
	memset(v, 0x10, sizeof(v));
	assert_int_equal(cvm_tpm_pcrs_set(&x->pcrs, CVM_DIGEST_SHA256, 0, v, 32), CVM_OK);
	memset(v, 0xa0, sizeof(v));
	assert_int_equal(cvm_tpm_pcrs_set(&x->pcrs, CVM_DIGEST_SHA256, 10, v, 32), CVM_OK);
	synth_public(x, AK_ATTRS);
	synth_attest(x, TPM2_GENERATED_VALUE, TPM2_ST_ATTEST_QUOTE);
	synth_sign(x, false);
	return x;
}

static int synth_verify(const struct synth *x, struct cvm_report *rep, struct cvm_tpm_quote *q)
{
	struct cvm_tpm_ak *ak = NULL;
	int r;

	r = cvm_tpm_ak_parse(x->pub_buf, x->pub_len, &ak);
	if (r != CVM_OK)
		return r;
	if (rep != NULL)
		cvm_report_init(rep);
	r = cvm_tpm_quote_authenticate_pcrs(ak, x->attest, x->attest_len, x->sig, x->sig_len, x->nonce,
	                                    sizeof(x->nonce), &x->pcrs, rep, q);
	cvm_tpm_ak_free(ak);
	return r;
}

static EVP_PKEY *key_for(enum scheme s, EVP_PKEY *rsa)
{
	if (s == ECDSA_P256)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (s == ECDSA_P384)
		return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	return EVP_PKEY_up_ref(rsa) == 1 ? rsa : NULL;
}

static void synthetic_quotes_of_every_scheme_verify_and_flips_do_not(void **state)
{
	static const enum scheme schemes[] = {ECDSA_P256, ECDSA_P384, RSASSA, RSAPSS_DIGEST_SALT,
	                                      RSAPSS_MAX_SALT};
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	size_t stride = flip_stride();

	(void)state;
	assert_non_null(rsa);
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		EVP_PKEY *key = key_for(schemes[i], rsa);
		struct synth *x;
		struct cvm_tpm_quote q;
		struct cvm_report rep;

		assert_non_null(key);
		x = synth_new(schemes[i], key);
		assert_int_equal(synth_verify(x, &rep, &q), CVM_OK);
		assert_null(rep.failed);
		assert_int_equal(q.attest.reset_count, 7);
		assert_int_equal(q.attest.restart_count, 3);
		assert_int_equal(q.attest.clock, 123456);
		assert_int_equal(q.attest.firmware_version, 0x0102030405060708ull);
		assert_int_equal(q.sig.hash, synth_hash(schemes[i]));
		for (size_t bit = 0; bit < 8 * x->attest_len; bit += stride) {
			x->attest[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_not_equal(synth_verify(x, NULL, NULL), CVM_OK);
			x->attest[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		for (size_t bit = 0; bit < 8 * x->sig_len; bit += stride) {
			x->sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			assert_int_not_equal(synth_verify(x, NULL, NULL), CVM_OK);
			x->sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
		assert_int_equal(synth_verify(x, NULL, NULL), CVM_OK);
		if (schemes[i] == ECDSA_P256 || schemes[i] == ECDSA_P384) {
			/* r and s without their leading zero bytes still verify. */
			synth_sign(x, true);
			assert_int_equal(synth_verify(x, NULL, NULL), CVM_OK);
		}
		EVP_PKEY_free(x->key);
		free(x);
	}
	EVP_PKEY_free(rsa);
}

static void synthetic_quotes_are_checked_step_by_step(void **state)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	struct synth *x;
	struct cvm_report rep;
	uint8_t v[32];

	(void)state;
	assert_non_null(key);
	assert_non_null(other);
	x = synth_new(ECDSA_P256, key);
	assert_int_equal(synth_verify(x, &rep, NULL), CVM_OK);

	/* Signed by another key. */
	x->key = other;
	synth_sign(x, false);
	assert_int_equal(synth_verify(x, &rep, NULL), CVM_E_SIGNATURE);
	assert_string_equal(rep.failed->name, "signature");
	x->key = key;

	/* Wrong magic, and a well-signed attestation of another type. */
	synth_attest(x, 0xff544348u, TPM2_ST_ATTEST_QUOTE);
	synth_sign(x, false);
	assert_int_equal(synth_verify(x, &rep, NULL), CVM_E_FORMAT);
	assert_string_equal(rep.failed->name, "attest");
	assert_non_null(strstr(rep.failed->detail, "magic"));
	{
		/* A TPMS_ATTEST of TPM2_Certify: well-formed, not a quote. */
		TPMS_ATTEST a;
		size_t off = 0;

		memset(&a, 0, sizeof(a));
		a.magic = TPM2_GENERATED_VALUE;
		a.type = TPM2_ST_ATTEST_CERTIFY;
		a.attested.certify.name.size = 2;
		a.attested.certify.qualifiedName.size = 2;
		assert_int_equal(Tss2_MU_TPMS_ATTEST_Marshal(&a, x->attest, sizeof(x->attest), &off),
		                 TSS2_RC_SUCCESS);
		x->attest_len = off;
		synth_sign(x, false);
		assert_int_equal(synth_verify(x, &rep, NULL), CVM_E_UNSUPPORTED);
		assert_non_null(strstr(rep.failed->detail, "not a quote"));
	}
	synth_attest(x, TPM2_GENERATED_VALUE, TPM2_ST_ATTEST_QUOTE);
	synth_sign(x, false);
	assert_int_equal(synth_verify(x, &rep, NULL), CVM_OK);

	/* A PCR differs. */
	memset(v, 0xa1, sizeof(v));
	assert_int_equal(cvm_tpm_pcrs_set(&x->pcrs, CVM_DIGEST_SHA256, 10, v, 32), CVM_OK);
	assert_int_equal(synth_verify(x, &rep, NULL), CVM_E_MISMATCH);
	assert_string_equal(rep.failed->name, "pcr_digest");
	memset(v, 0xa0, sizeof(v));
	assert_int_equal(cvm_tpm_pcrs_set(&x->pcrs, CVM_DIGEST_SHA256, 10, v, 32), CVM_OK);

	/* A key that is not a restricted signing key, and one that decrypts. */
	synth_public(x, AK_ATTRS & ~(uint32_t)TPMA_OBJECT_RESTRICTED);
	assert_int_equal(synth_verify(x, &rep, NULL), CVM_E_POLICY);
	assert_string_equal(rep.failed->name, "ak");
	synth_public(x, AK_ATTRS & ~(uint32_t)TPMA_OBJECT_FIXEDTPM);
	assert_int_equal(synth_verify(x, &rep, NULL), CVM_E_POLICY);
	synth_public(x, AK_ATTRS | TPMA_OBJECT_DECRYPT);
	assert_int_equal(synth_verify(x, &rep, NULL), CVM_E_POLICY);

	/* The key allows ECDSA/SHA-256 only; a SHA-384 signature is refused. */
	synth_public(x, AK_ATTRS);
	x->pub.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA384;
	{
		size_t off = 0;

		assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&x->pub, x->pub_buf, sizeof(x->pub_buf), &off),
		                 TSS2_RC_SUCCESS);
		x->pub_len = off;
	}
	assert_int_equal(synth_verify(x, &rep, NULL), CVM_E_SIGNATURE);
	assert_non_null(strstr(rep.failed->detail, "only"));
	/* With no scheme on the key, any ECDSA hash the signature names goes. */
	x->pub.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	{
		size_t off = 0;

		assert_int_equal(Tss2_MU_TPM2B_PUBLIC_Marshal(&x->pub, x->pub_buf, sizeof(x->pub_buf), &off),
		                 TSS2_RC_SUCCESS);
		x->pub_len = off;
	}
	assert_int_equal(synth_verify(x, &rep, NULL), CVM_OK);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	free(x);
}

static void unsupported_signatures_and_keys_are_named(void **state)
{
	TPMT_SIGNATURE s;
	struct cvm_tpm_sig out;
	struct cvm_tpm_attest a;
	struct cvm_tpm_ak *ak = NULL;
	struct cvm_tpmsig_key *k = NULL;
	uint8_t buf[CVM_TPM_AK_FILE_MAX + 1], n[256], x[32];
	size_t off = 0;

	(void)state;
	memset(buf, 0, sizeof(buf));
	memset(&s, 0, sizeof(s));
	s.sigAlg = TPM2_ALG_HMAC;
	s.signature.hmac.hashAlg = TPM2_ALG_SHA256;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	assert_int_equal(cvm_tpm_sig_parse(buf, off, &out), CVM_E_UNSUPPORTED);
	off = 0;
	s.sigAlg = TPM2_ALG_NULL;
	assert_int_equal(Tss2_MU_TPMT_SIGNATURE_Marshal(&s, buf, sizeof(buf), &off), TSS2_RC_SUCCESS);
	assert_int_equal(cvm_tpm_sig_parse(buf, off, &out), CVM_E_UNSUPPORTED);
	/* An unknown algorithm selector is malformed. */
	buf[0] = 0x77;
	buf[1] = 0x77;
	assert_int_equal(cvm_tpm_sig_parse(buf, 6, &out), CVM_E_FORMAT);
	/* Inputs over their caps are refused before tss2-mu sees them. */
	assert_int_equal(cvm_tpm_attest_parse(buf, CVM_TPM_ATTEST_MAX + 1, &a), CVM_E_TOO_LARGE);
	assert_int_equal(cvm_tpm_sig_parse(buf, CVM_TPM_SIG_MAX + 1, &out), CVM_E_TOO_LARGE);
	assert_int_equal(cvm_tpm_ak_parse(buf, CVM_TPM_AK_FILE_MAX + 1, &ak), CVM_E_TOO_LARGE);
	/* RSA: too small, even modulus; ECC: a point off the curve, a curve we
	 * do not do. */
	memset(n, 0xff, sizeof(n));
	assert_int_equal(cvm_tpmsig_key_rsa(n, 128, 0, &k), CVM_E_UNSUPPORTED);
	n[255] = 0xfe;
	assert_int_equal(cvm_tpmsig_key_rsa(n, 256, 0, &k), CVM_E_FORMAT);
	n[255] = 0xff;
	assert_int_equal(cvm_tpmsig_key_rsa(n, 256, 4, &k), CVM_E_FORMAT);
	assert_int_equal(cvm_tpmsig_key_rsa(n, 256, 0, &k), CVM_OK);
	assert_int_equal(cvm_tpmsig_key_bits(k), 2048);
	cvm_tpmsig_key_free(k);
	k = NULL;
	memset(x, 0x01, sizeof(x));
	assert_int_equal(cvm_tpmsig_key_ecc(CVM_TPMSIG_ECC_NIST_P256, x, 32, x, 32, &k), CVM_E_FORMAT);
	assert_int_equal(cvm_tpmsig_key_ecc(0x0005, x, 32, x, 32, &k), CVM_E_UNSUPPORTED);
	assert_int_equal(cvm_tpmsig_key_ecc(CVM_TPMSIG_ECC_NIST_P256, x, 33, x, 32, &k), CVM_E_FORMAT);
	assert_null(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(vm_quote_parses_to_its_fields),
	    cmocka_unit_test(vm_ak_has_the_name_tpm2_tools_printed),
	    cmocka_unit_test(vm_quotes_verify_with_tpm2_tools_pcr_files),
	    cmocka_unit_test(vm_quote_matches_the_quoted_values_not_the_later_sysfs_ones),
	    cmocka_unit_test(vm_boot_verifies_end_to_end_from_its_logs),
	    cmocka_unit_test(vm_quote_rejects_another_nonce),
	    cmocka_unit_test(vm_structures_reject_every_truncation_and_a_trailing_byte),
	    cmocka_unit_test(tpm2b_public_size_must_cover_the_public_area_exactly),
	    cmocka_unit_test(vm_bit_flips_never_verify),
	    cmocka_unit_test(serialized_pcr_files_round_trip_byte_for_byte),
	    cmocka_unit_test(selections_parse_and_format),
	    cmocka_unit_test(pcr_digest_hashes_the_selected_values_in_order),
	    cmocka_unit_test(synthetic_quotes_of_every_scheme_verify_and_flips_do_not),
	    cmocka_unit_test(synthetic_quotes_are_checked_step_by_step),
	    cmocka_unit_test(unsupported_signatures_and_keys_are_named),
	};

	/* tss2-mu logs every malformed input to stderr unless told not to. */
	(void)setenv("TSS2_LOG", "all+none", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

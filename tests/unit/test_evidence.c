/* lib/verify/evidence.c: the binding rules against values computed
 * independently (Python hashlib, see each test), and bundles made here from
 * the simulated TEE (and, for the TPM part, the real AK and quote of the
 * QEMU/swtpm boot in the vectors): what verifies, what must not, and the
 * parser's handling of every truncation, a trailing byte and malformed
 * fields. tests/integration/agentd_evidence.sh covers complete bundles with a
 * TPM quote made for them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/evidence.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/tee.h>

#include "vectors.h"

#define NOW ((int64_t)1767225600) /* 2026-01-01 */
#define AK_DIR "ima/vm-ovmf-tpmcrb-imang/quote/"

static const uint8_t nonce16[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* stride is 1 unless under valgrind, where every 61st position is enough. */
static size_t stride(void)
{
	return getenv("CVM_UNDER_VALGRIND") != NULL ? 61 : 1;
}

static void hex_to(const char *hex, uint8_t *out, size_t len)
{
	assert_int_equal(cvm_hex_decode_exact(hex, strlen(hex), out, len), CVM_OK);
}

/* ---- the binding rules ---------------------------------------------------- */

/* Expected values from:
 *   n = bytes(range(16)); name = bytes.fromhex("000b") + b"\xaa" * 32
 *   hashlib.sha512(b"cvmkit-evidence-v2/report-data\0" + bytes([16]) + n + (34).to_bytes(2, "big") + name)
 *   hashlib.sha256(b"cvmkit-evidence-v2/tpm-qualifying-data\0" + bytes([16]) + n) */
static void binding_matches_independent_computation(void **state)
{
	uint8_t name[34], rd[64], want[64], qd[32], want_qd[32];

	(void)state;
	name[0] = 0x00;
	name[1] = 0x0b;
	memset(name + 2, 0xaa, 32);
	hex_to("9e6521e968a5af723ed6eccd4dc9bd051993fc42b9f74330bd4b472180887637"
	       "e7bca807552180fbf6607bd1691dfdf03070be704fffb069b2a3253f84cf2197",
	       want, sizeof(want));
	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), name, sizeof(name), rd), CVM_OK);
	assert_memory_equal(rd, want, 64);
	hex_to("8c86068d2e816e0e035c77ce8e16eded8808a59e48a1b94cd617873c1d2b1061", want_qd, sizeof(want_qd));
	assert_int_equal(cvm_evidence_tpm_qualifying_data(nonce16, sizeof(nonce16), qd), CVM_OK);
	assert_memory_equal(qd, want_qd, 32);

	/* without an AK: the nonce, zero-padded */
	memset(want, 0, sizeof(want));
	memcpy(want, nonce16, sizeof(nonce16));
	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), NULL, 0, rd), CVM_OK);
	assert_memory_equal(rd, want, 64);

	/* one name byte more changes everything */
	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), name, sizeof(name) - 1, rd),
	                 CVM_OK);
	assert_memory_not_equal(rd, want, 64);
}

/* hashlib.sha512(b"cvmkit-agent-v1/caller-report-data\0" + bytes(range(64))) */
static void caller_report_data_matches_independent_computation(void **state)
{
	uint8_t data[64], rd[64], want[64];

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	hex_to("8817e59661ff25ff0d2687936e17a69b80599df9e2cec1648c294d16875f28ea"
	       "47e3ab8e30802f1bb0692adee027432b966e35e95e9601894b79b8e837f44cfd",
	       want, sizeof(want));
	assert_int_equal(cvm_evidence_caller_report_data(data, rd), CVM_OK);
	assert_memory_equal(rd, want, 64);
}

static void system_event_names_are_dstack_boot_names_and_the_cvmkit_namespace(void **state)
{
	static const char *const sys[] = {
	    "system-preparing", "app-id",          "compose-hash",    "instance-id",   "boot-mr-done",
	    "mr-kms",           "os-image-hash",   "key-provider",    "storage-fs",    "system-ready",
	    "init-script-hash", "gpu-policy-hash", "gpu-attestation", "cvmkit.tpm-ak", "cvmkit.agent-key",
	    "CVMKIT.Tpm-Ak",    "cvmkit.",
	};
	static const char *const app[] = {
	    "",
	    "app-event",
	    "cvmkit",
	    "cvmkit-tpm-ak",
	    "xcvmkit.tpm-ak",
	    "System-Ready",
	    "system-ready ",
	    "app-id2",
	    "cvmki.t",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(sys) / sizeof(sys[0]); i++) {
		if (!cvm_evidence_is_system_event(sys[i], strlen(sys[i])))
			fail_msg("'%s' is a system event name", sys[i]);
	}
	for (size_t i = 0; i < sizeof(app) / sizeof(app[0]); i++) {
		if (cvm_evidence_is_system_event(app[i], strlen(app[i])))
			fail_msg("'%s' is not a system event name", app[i]);
	}
	/* the length counts, not a NUL: "app-id" within a longer buffer */
	assert_true(cvm_evidence_is_system_event("app-idXYZ", 6));
	assert_false(cvm_evidence_is_system_event("app-id", 5));
}

static void binding_rejects_lengths_out_of_range(void **state)
{
	uint8_t big[80], rd[64], qd[32];

	(void)state;
	memset(big, 1, sizeof(big));
	assert_int_equal(cvm_evidence_report_data(big, 7, NULL, 0, rd), CVM_E_INVAL);
	assert_int_equal(cvm_evidence_report_data(big, 65, NULL, 0, rd), CVM_E_INVAL);
	assert_int_equal(cvm_evidence_report_data(big, 8, big, CVM_TPM_NAME_MAX + 1, rd), CVM_E_INVAL);
	assert_int_equal(cvm_evidence_report_data(big, 64, big, CVM_TPM_NAME_MAX, rd), CVM_OK);
	assert_int_equal(cvm_evidence_tpm_qualifying_data(big, 7, qd), CVM_E_INVAL);
	assert_int_equal(cvm_evidence_tpm_qualifying_data(big, 65, qd), CVM_E_INVAL);
	assert_int_equal(cvm_evidence_tpm_qualifying_data(big, 64, qd), CVM_OK);
}

/* ---- bundles from the simulator ------------------------------------------- */

struct fx {
	char root[64], dir[128];
	struct cvm_tee_dev *tee;
	struct cvm_dcap_collateral *coll;
	uint8_t *anchor;
	size_t anchor_len;
	struct cvm_policy policy;
	struct cvm_evidence_opts opts;
	struct cvm_report rep;
	struct cvm_evidence_result res;
};

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

static int setup(void **state)
{
	struct cvm_tee_sim_opts o;
	struct fx *f = calloc(1, sizeof(*f));
	char path[256];

	assert_non_null(f);
	(void)snprintf(f->root, sizeof(f->root), "/tmp/cvm-evidence-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	(void)snprintf(f->dir, sizeof(f->dir), "%s/sim", f->root);
	cvm_tee_sim_opts_init(&o, NOW);
	assert_int_equal(cvm_tee_sim_init(f->dir, &o), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(f->dir, CVM_TEE_PLATFORM_TDX, &f->tee), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx", f->dir);
	assert_int_equal(cvm_dcap_collateral_load_dir(path, &f->coll, NULL, 0), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx/intel_sgx_root_ca.der", f->dir);
	assert_int_equal(cvm_file_read(path, CVM_DCAP_CERT_MAX, &f->anchor, &f->anchor_len), CVM_OK);
	cvm_policy_init(&f->policy);
	f->opts.nonce = nonce16;
	f->opts.nonce_len = sizeof(nonce16);
	f->opts.dcap = f->coll;
	f->opts.root_der = f->anchor;
	f->opts.root_der_len = f->anchor_len;
	f->opts.at = NOW + 3600;
	f->opts.policy = &f->policy;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	cvm_tee_free(f->tee);
	cvm_dcap_collateral_free(f->coll);
	free(f->anchor);
	rm_rf(f->root);
	free(f);
	return 0;
}

static json_t *hexv(const uint8_t *p, size_t n)
{
	char *s = cvm_hex_encode_new(p, n);
	json_t *v = json_string(s);

	free(s);
	assert_non_null(v);
	return v;
}

/* make_bundle quotes over `rd` and returns the bundle's JSON; `tpm` and
 * `events` are stolen (NULL: null and []). */
static json_t *make_bundle(struct fx *f, const uint8_t rd[64], json_t *tpm, json_t *events, json_t *ima)
{
	struct cvm_tee_evidence ev;
	json_t *o;

	assert_int_equal(cvm_tee_quote(f->tee, rd, &ev), CVM_OK);
	o = json_pack("{s:i, s:s, s:b, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:o}", "version",
	              CVM_EVIDENCE_VERSION, "platform", "tdx", "simulated", 1, "nonce",
	              hexv(nonce16, sizeof(nonce16)), "report_data", hexv(rd, 64), "quote",
	              hexv(ev.data, ev.data_len), "event_log", events != NULL ? events : json_array(),
	              "vm_config", "", "app_compose", "{}", "tpm", tpm != NULL ? tpm : json_null(), "ima_log",
	              ima != NULL ? ima : json_null());
	assert_non_null(o);
	cvm_tee_evidence_cleanup(&ev);
	return o;
}

static char *dump(const json_t *o, size_t *len)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	assert_non_null(s);
	*len = strlen(s);
	return s;
}

/* run parses and verifies `o`; the result and steps stay in `f`. */
static int run(struct fx *f, const json_t *o)
{
	struct cvm_evidence *ev = NULL;
	char why[256];
	size_t len;
	char *s = dump(o, &len);
	int r;

	cvm_report_init(&f->rep);
	r = cvm_evidence_parse((const uint8_t *)s, len, &ev, why, sizeof(why));
	free(s);
	if (r != CVM_OK)
		return r;
	r = cvm_evidence_verify(ev, &f->opts, &f->rep, &f->res);
	cvm_evidence_free(ev);
	return r;
}

static const char *failed_step(const struct fx *f)
{
	return f->rep.failed != NULL ? f->rep.failed->name : "";
}

static void bundle_without_tpm_binds_the_nonce(void **state)
{
	struct fx *f = *state;
	uint8_t rd[64], other[16];
	json_t *o;

	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), NULL, 0, rd), CVM_OK);
	o = make_bundle(f, rd, NULL, NULL, NULL);
	assert_int_equal(run(f, o), CVM_OK);
	assert_true(f->res.tee_verified && f->res.bound && f->res.rtmrs_replayed);
	assert_false(f->res.has_tpm || f->res.has_ima);

	/* the verifier's nonce is another one */
	memcpy(other, nonce16, sizeof(other));
	other[15] ^= 1;
	f->opts.nonce = other;
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "evidence.nonce");
	/* ... and the bundle claims it too: report_data still says otherwise */
	assert_int_equal(json_object_set_new(o, "nonce", hexv(other, sizeof(other))), 0);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "evidence.binding");
	assert_false(f->res.bound);
	f->opts.nonce = nonce16;
	assert_int_equal(json_object_set_new(o, "nonce", hexv(nonce16, sizeof(nonce16))), 0);

	/* required parts */
	f->opts.require_tpm = true;
	assert_int_equal(run(f, o), CVM_E_POLICY);
	assert_string_equal(failed_step(f), "tpm");
	f->opts.require_tpm = false;
	f->opts.require_ima = true;
	assert_int_equal(run(f, o), CVM_E_POLICY);
	f->opts.require_ima = false;
	/* an IMA list no TPM quote covers: accepted, not verified */
	assert_int_equal(json_object_set_new(o, "ima_log", json_string("")), 0);
	assert_int_equal(run(f, o), CVM_OK);
	assert_true(f->res.has_ima);
	assert_false(f->res.ima_verified);
	/* a bundle without a policy or nonce cannot be verified */
	f->opts.policy = NULL;
	assert_int_equal(run(f, o), CVM_E_INVAL);
	f->opts.policy = &f->policy;
	json_decref(o);
}

/* A TPM part with the vector's AK: the TEE quote binds its Name, so the
 * binding holds, but RTMR3 (empty here) recorded no AK, so the bundle is
 * rejected (tdx_tpm_part_needs_the_ak_the_system_recorded goes further).
 * Another AK breaks the binding. */
static void tpm_part_is_bound_through_the_ak_name(void **state)
{
	struct fx *f = *state;
	uint8_t *ak, *msg, *sig, *name, rd[64];
	size_t ak_len, msg_len, sig_len, name_len;
	json_t *o, *tpm;

	ak = vector_read(AK_DIR "ak.tpm2b_public", &ak_len);
	msg = vector_read(AK_DIR "quote.msg", &msg_len);
	sig = vector_read(AK_DIR "quote.sig", &sig_len);
	name = vector_read(AK_DIR "ak.name", &name_len);
	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), name, name_len, rd), CVM_OK);
	tpm = json_pack("{s:o, s:o, s:o, s:{}}", "ak_public", hexv(ak, ak_len), "attest", hexv(msg, msg_len),
	                "signature", hexv(sig, sig_len), "pcrs");
	assert_non_null(tpm);
	o = make_bundle(f, rd, tpm, NULL, NULL);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_true(f->res.bound && f->res.rtmrs_replayed);
	assert_int_equal(f->res.ak_name_len, name_len);
	assert_memory_equal(f->res.ak_name, name, name_len);
	assert_string_equal(failed_step(f), "evidence.ak_event");
	assert_non_null(strstr(f->rep.failed->detail, "not the one the system recorded"));
	assert_false(f->res.ak_recorded || f->res.tpm_verified);

	/* a stated ak_name that is not the Name of ak_public */
	assert_int_equal(json_object_set_new(tpm, "ak_name", json_string("000b00")), 0);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "tpm.ak");
	assert_int_equal(json_object_del(tpm, "ak_name"), 0);

	/* another key in ak_public (one byte of its public point changed) */
	ak[ak_len - 10] ^= 0x10;
	assert_int_equal(json_object_set_new(tpm, "ak_public", hexv(ak, ak_len)), 0);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "evidence.binding");
	/* no TPM part at all: report_data is not the padded nonce */
	assert_int_equal(json_object_set_new(o, "tpm", json_null()), 0);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "evidence.binding");
	json_decref(o);
	free(ak);
	free(msg);
	free(sig);
	free(name);
}

/* ---- the AK the system recorded (TDX) and the caller domain (SEV-SNP) ------- */

/* rt_event extends the simulator's RTMR3 with the runtime event (name,
 * payload) and appends it to `events`, as cvm-agentd does. */
static void rt_event(struct fx *f, json_t *events, const char *name, const uint8_t *p, size_t n)
{
	uint8_t d[48];
	json_t *e;

	assert_int_equal(cvm_evl_dstack_digest(name, p, n, 1, d), CVM_OK);
	assert_int_equal(cvm_tee_extend(f->tee, 3, d), CVM_OK);
	e = json_pack("{s:i, s:I, s:o, s:s, s:o}", "imr", 3, "event_type", (json_int_t)CVM_EV_DSTACK_RUNTIME,
	              "digest", hexv(d, 48), "event", name, "event_payload", hexv(p, n));
	assert_non_null(e);
	assert_int_equal(json_array_append_new(events, e), 0);
}

/* relabel presents event `i` of the bundle's log as another type with no
 * name: its digest, so the replay, is unchanged; only the runtime type has
 * its digest checked against a name. */
static void relabel(json_t *o, size_t i)
{
	json_t *e = json_array_get(json_object_get(o, "event_log"), i);

	assert_non_null(e);
	assert_int_equal(json_object_set_new(e, "event_type", json_integer(1)), 0);
	assert_int_equal(json_object_set_new(e, "event", json_string("")), 0);
}

static const char *failed_detail(const struct fx *f)
{
	return f->rep.failed != NULL ? f->rep.failed->detail : "";
}

/* A fresh simulator (RTMR3 at zero), extended step by step as the agent
 * and, for the forgeries, as a guest process would. */
static void tdx_tpm_part_needs_the_ak_the_system_recorded(void **state)
{
	void *st = NULL;
	struct fx *f;
	struct cvm_tpm_ak *other = NULL;
	uint8_t *ak, *msg, *sig, *name, rd[64], rd2[64], key[32];
	size_t ak_len, msg_len, sig_len, name_len;
	json_t *o, *tpm, *events = json_array();
	const struct cvm_tpm_public *opub;

	(void)state;
	assert_int_equal(setup(&st), 0);
	f = st;
	ak = vector_read(AK_DIR "ak.tpm2b_public", &ak_len);
	msg = vector_read(AK_DIR "quote.msg", &msg_len);
	sig = vector_read(AK_DIR "quote.sig", &sig_len);
	name = vector_read(AK_DIR "ak.name", &name_len);
	memset(key, 0x4b, sizeof(key));
	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), name, name_len, rd), CVM_OK);
	tpm = json_pack("{s:o, s:o, s:o, s:{}}", "ak_public", hexv(ak, ak_len), "attest", hexv(msg, msg_len),
	                "signature", hexv(sig, sig_len), "pcrs");
	assert_non_null(tpm && events);

	/* 1. only the agent's key event: no AK recorded */
	rt_event(f, events, "system-ready", NULL, 0);
	rt_event(f, events, CVM_EVIDENCE_EVENT_AGENT_KEY, key, sizeof(key));
	o = make_bundle(f, rd, json_deep_copy(tpm), json_deep_copy(events), NULL);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "evidence.ak_event");
	assert_non_null(strstr(failed_detail(f), "holds no cvmkit.tpm-ak event"));
	assert_true(f->res.bound && f->res.rtmrs_replayed);
	assert_false(f->res.ak_recorded);
	json_decref(o);

	/* 2. the AK recorded: this step passes (the vector's TPM quote then
	 * fails, as it answers another nonce) */
	rt_event(f, events, CVM_EVIDENCE_EVENT_TPM_AK, name, name_len);
	o = make_bundle(f, rd, json_deep_copy(tpm), json_deep_copy(events), NULL);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_true(f->res.ak_recorded);
	assert_string_equal(failed_step(f), "nonce"); /* the TPM quote's qualifying data */
	assert_false(f->res.tpm_verified);
	/* ... hidden under another type, it no longer counts */
	relabel(o, 2);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "evidence.ak_event");
	assert_false(f->res.ak_recorded);
	json_decref(o);

	/* 3. a guest process's own AK, bound in report_data as GetQuote lets
	 * anyone do on TDX: RTMR3 names the system's */
	ak[ak_len - 10] ^= 0x10;
	assert_int_equal(cvm_tpm_ak_parse(ak, ak_len, &other), CVM_OK);
	opub = cvm_tpm_ak_public(other);
	assert_non_null(opub);
	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), opub->name, opub->name_len, rd2),
	                 CVM_OK);
	assert_int_equal(json_object_set_new(tpm, "ak_public", hexv(ak, ak_len)), 0);
	o = make_bundle(f, rd2, json_deep_copy(tpm), json_deep_copy(events), NULL);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_true(f->res.bound);
	assert_string_equal(failed_step(f), "evidence.ak_event");
	assert_non_null(strstr(failed_detail(f), "the AK is not the one the system recorded: RTMR3's "
	                                         "cvmkit.tpm-ak event (event 2) names AK 000b"));
	json_decref(o);
	ak[ak_len - 10] ^= 0x10;
	assert_int_equal(json_object_set_new(tpm, "ak_public", hexv(ak, ak_len)), 0);

	/* 4. an app event, then a second AK event (the one with the right
	 * Name): two are refused; with the first hidden, the one left comes
	 * after a non-system event */
	rt_event(f, events, "app-event", (const uint8_t *)"x", 1);
	rt_event(f, events, CVM_EVIDENCE_EVENT_TPM_AK, name, name_len);
	o = make_bundle(f, rd, json_deep_copy(tpm), json_deep_copy(events), NULL);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "evidence.ak_event");
	assert_non_null(strstr(failed_detail(f), "holds 2 cvmkit.tpm-ak events (events 2 and 4)"));
	relabel(o, 2);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "evidence.ak_event");
	assert_non_null(strstr(failed_detail(f), "(event 4) comes after event 2"));
	assert_false(f->res.ak_recorded);
	json_decref(o);

	/* without a TPM part nothing about the AK is required */
	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), NULL, 0, rd), CVM_OK);
	o = make_bundle(f, rd, NULL, json_deep_copy(events), NULL);
	assert_int_equal(run(f, o), CVM_OK);
	assert_false(f->res.ak_recorded);
	json_decref(o);

	cvm_tpm_ak_free(other);
	json_decref(tpm);
	json_decref(events);
	free(ak);
	free(msg);
	free(sig);
	free(name);
	assert_int_equal(teardown(&st), 0);
}

/* SEV-SNP has no RTMR3: report_data alone binds the AK, and a report over
 * the binding in the agent's caller domain (what a GetQuote caller without
 * raw access gets) is refused, and named as such. */
static void snp_tpm_part_is_bound_by_report_data_in_the_agents_domain(void **state)
{
	struct fx *f = *state;
	struct cvm_tee_dev *snp = NULL;
	struct cvm_amd_collateral *amd = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_cert *ark = NULL;
	const uint8_t *ark_der;
	uint8_t *ak, *msg, *sig, *name, *pem, rd[64], caller[64];
	size_t ak_len, msg_len, sig_len, name_len, pem_len, ark_der_len;
	char path[256];
	struct cvm_evidence_opts saved = f->opts;
	json_t *o, *tpm;

	assert_int_equal(cvm_tee_open_sim(f->dir, CVM_TEE_PLATFORM_SNP, &snp), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/snp", f->dir);
	assert_int_equal(cvm_amd_collateral_load_dir(path, &amd, NULL, 0), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/snp/ark.pem", f->dir);
	assert_int_equal(cvm_file_read(path, 65536, &pem, &pem_len), CVM_OK);
	assert_int_equal(cvm_cert_parse(pem, pem_len, &ark), CVM_OK);
	cvm_cert_der(ark, &ark_der, &ark_der_len);
	f->opts.dcap = NULL;
	f->opts.amd = amd;
	f->opts.root_der = ark_der;
	f->opts.root_der_len = ark_der_len;
	ak = vector_read(AK_DIR "ak.tpm2b_public", &ak_len);
	msg = vector_read(AK_DIR "quote.msg", &msg_len);
	sig = vector_read(AK_DIR "quote.sig", &sig_len);
	name = vector_read(AK_DIR "ak.name", &name_len);
	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), name, name_len, rd), CVM_OK);
	assert_int_equal(cvm_evidence_caller_report_data(rd, caller), CVM_OK);
	tpm = json_pack("{s:o, s:o, s:o, s:{}}", "ak_public", hexv(ak, ak_len), "attest", hexv(msg, msg_len),
	                "signature", hexv(sig, sig_len), "pcrs");
	assert_non_null(tpm);

	for (int forged = 0; forged < 2; forged++) {
		assert_int_equal(cvm_tee_quote(snp, forged ? caller : rd, &ev), CVM_OK);
		o = json_pack("{s:i, s:s, s:b, s:o, s:o, s:o, s:[], s:O, s:n}", "version",
		              CVM_EVIDENCE_VERSION, "platform", "snp", "simulated", 1, "nonce",
		              hexv(nonce16, sizeof(nonce16)), "report_data", hexv(forged ? caller : rd, 64),
		              "quote", hexv(ev.data, ev.data_len), "event_log", "tpm", tpm, "ima_log");
		assert_non_null(o);
		cvm_tee_evidence_cleanup(&ev);
		assert_int_equal(run(f, o), CVM_E_MISMATCH);
		assert_true(f->res.tee_verified);
		assert_false(f->res.ak_recorded); /* not asked for on SNP */
		if (forged) {
			assert_string_equal(failed_step(f), "evidence.binding");
			assert_non_null(strstr(failed_detail(f), "hashed in the agent's caller domain"));
			assert_false(f->res.bound);
		} else {
			assert_true(f->res.bound);
			assert_string_equal(failed_step(f), "nonce"); /* the vector's TPM quote */
		}
		json_decref(o);
	}
	f->opts = saved;
	json_decref(tpm);
	free(ak);
	free(msg);
	free(sig);
	free(name);
	free(pem);
	cvm_cert_free(ark);
	cvm_amd_collateral_free(amd);
	cvm_tee_free(snp);
}

static json_t *event(uint32_t imr, uint32_t type, const uint8_t digest[48], const char *name,
                     const char *payload)
{
	json_t *e = json_pack("{s:i, s:I, s:o, s:s, s:o}", "imr", (int)imr, "event_type", (json_int_t)type,
	                      "digest", hexv(digest, 48), "event", name, "event_payload",
	                      hexv((const uint8_t *)payload, strlen(payload)));

	assert_non_null(e);
	return e;
}

static void event_log_must_replay_to_the_rtmrs(void **state)
{
	struct fx *f = *state;
	uint8_t d[48], boot[48], rd[64];
	json_t *o, *events;

	assert_int_equal(cvm_evl_dstack_digest("app-event", (const uint8_t *)"hello", 5, 1, d), CVM_OK);
	memset(boot, 0x5a, sizeof(boot));
	assert_int_equal(cvm_tee_extend(f->tee, 3, d), CVM_OK);
	assert_int_equal(cvm_tee_extend(f->tee, 1, boot), CVM_OK);
	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), NULL, 0, rd), CVM_OK);
	events = json_pack("[o, o]", event(1, 0x80000001u, boot, "", "ab"),
	                   event(3, CVM_EV_DSTACK_RUNTIME, d, "app-event", "hello"));
	o = make_bundle(f, rd, NULL, events, NULL);
	assert_int_equal(run(f, o), CVM_OK);
	assert_int_equal(f->res.event_count, 2);

	/* a runtime payload that is not the one measured */
	assert_int_equal(
	    json_object_set_new(json_array_get(events, 1), "event_payload", json_string("68656c6c6e")), 0);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "evidence.event_log");
	/* a boot event removed */
	assert_int_equal(json_array_remove(events, 0), 0);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	assert_string_equal(failed_step(f), "evidence.event_log");
	/* an event moved to another register */
	assert_int_equal(json_array_clear(events), 0);
	assert_int_equal(json_array_append_new(events, event(2, 0x80000001u, boot, "", "ab")), 0);
	assert_int_equal(
	    json_array_append_new(events, event(3, CVM_EV_DSTACK_RUNTIME, d, "app-event", "hello")), 0);
	assert_int_equal(run(f, o), CVM_E_MISMATCH);
	json_decref(o);
}

static void quote_bit_flips_never_verify(void **state)
{
	struct fx *f = *state;
	uint8_t rd[64], q[8192];
	size_t qlen = 0, flips = 0;
	json_t *o;

	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), NULL, 0, rd), CVM_OK);
	o = make_bundle(f, rd, NULL, NULL, NULL);
	assert_int_equal(cvm_hex_decode(json_string_value(json_object_get(o, "quote")),
	                                json_string_length(json_object_get(o, "quote")), q, sizeof(q), &qlen),
	                 CVM_OK);
	/* header and TD body: every 37th bit (stride 37 * 61 under valgrind) */
	for (size_t bit = 0; bit < 8 * (48 + 584); bit += 37 * stride()) {
		q[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(json_object_set_new(o, "quote", hexv(q, qlen)), 0);
		assert_int_not_equal(run(f, o), CVM_OK);
		q[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		flips++;
	}
	assert_true(flips > 0);
	json_decref(o);
}

/* ---- the parser ------------------------------------------------------------ */

static void parse_rejects_truncations_and_trailing_bytes(void **state)
{
	struct fx *f = *state;
	struct cvm_evidence *ev = NULL;
	uint8_t rd[64];
	size_t len;
	char *s, *longer;
	json_t *o;

	assert_int_equal(cvm_evidence_report_data(nonce16, sizeof(nonce16), NULL, 0, rd), CVM_OK);
	o = make_bundle(f, rd, NULL, json_pack("[o]", event(0, 1, rd, "", "00")), json_string("0a0b"));
	s = dump(o, &len);
	assert_int_equal(cvm_evidence_parse((const uint8_t *)s, len, &ev, NULL, 0), CVM_OK);
	assert_true(cvm_evidence_has_ima(ev));
	assert_false(cvm_evidence_has_tpm(ev));
	assert_null(cvm_evidence_pcrs(ev));
	assert_true(cvm_evidence_claims_simulated(ev));
	assert_int_equal(cvm_evidence_platform(ev), CVM_EVIDENCE_TDX);
	cvm_evidence_free(ev);
	for (size_t n = 0; n < len; n += stride()) {
		ev = NULL;
		assert_int_not_equal(cvm_evidence_parse((const uint8_t *)s, n, &ev, NULL, 0), CVM_OK);
		assert_null(ev);
	}
	longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, s, len);
	longer[len] = '}';
	assert_int_equal(cvm_evidence_parse((const uint8_t *)longer, len + 1, &ev, NULL, 0), CVM_E_FORMAT);
	free(longer);
	free(s);
	json_decref(o);
}

static void parse_names_malformed_fields(void **state)
{
	static const struct {
		const char *edit; /* JSON merged over a valid bundle */
		int want;
		const char *why;
	} cases[] = {
	    {"{\"version\": 1}", CVM_E_UNSUPPORTED, "version 1"},
	    {"{\"version\": 3}", CVM_E_UNSUPPORTED, "version 3"},
	    {"{\"version\": \"1\"}", CVM_E_FORMAT, "version"},
	    {"{\"platform\": \"sgx\"}", CVM_E_UNSUPPORTED, "platform"},
	    {"{\"simulated\": 1}", CVM_E_FORMAT, "simulated"},
	    {"{\"nonce\": \"00010203040506\"}", CVM_E_FORMAT, "nonce"},
	    {"{\"nonce\": \"zz0102030405060708\"}", CVM_E_FORMAT, "nonce"},
	    {"{\"quote\": \"\"}", CVM_E_FORMAT, "quote"},
	    {"{\"quote\": 5}", CVM_E_FORMAT, "quote"},
	    {"{\"event_log\": {}}", CVM_E_FORMAT, "event_log"},
	    {"{\"event_log\": [{\"imr\": 4, \"event_type\": 1, \"digest\": \"\", \"event\": \"\", "
	     "\"event_payload\": \"\"}]}",
	     CVM_E_FORMAT, "imr 4"},
	    {"{\"event_log\": [{\"imr\": 0, \"event_type\": -1, \"digest\": \"\", \"event\": \"\", "
	     "\"event_payload\": \"\"}]}",
	     CVM_E_FORMAT, "event_log[0]"},
	    {"{\"event_log\": [{\"imr\": 0, \"event_type\": 1, \"digest\": \"00\", \"event\": \"\", "
	     "\"event_payload\": \"\"}]}",
	     CVM_E_FORMAT, "digest"},
	    {"{\"tpm\": []}", CVM_E_FORMAT, "tpm"},
	    {"{\"tpm\": {\"ak_public\": \"00\", \"attest\": \"00\", \"signature\": \"00\"}}", CVM_E_FORMAT,
	     "tpm.pcrs"},
	    {"{\"tpm\": {\"attest\": \"00\", \"signature\": \"00\", \"pcrs\": {}}}", CVM_E_FORMAT,
	     "tpm.ak_public"},
	    {"{\"tpm\": {\"ak_public\": \"00\", \"attest\": \"00\", \"signature\": \"00\", \"pcrs\": "
	     "{\"sha256\": {\"24\": \"00\"}}}}",
	     CVM_E_FORMAT, "tpm.pcrs.sha256"},
	    {"{\"tpm\": {\"ak_public\": \"00\", \"attest\": \"00\", \"signature\": \"00\", \"pcrs\": "
	     "{\"sha256\": {\"01\": \"0000000000000000000000000000000000000000000000000000000000000000\"}}}}",
	     CVM_E_FORMAT, "tpm.pcrs.sha256"},
	    {"{\"tpm\": {\"ak_public\": \"00\", \"attest\": \"00\", \"signature\": \"00\", \"pcrs\": "
	     "{\"sha256\": {\"1\": \"00\"}}}}",
	     CVM_E_FORMAT, "tpm.pcrs.sha256"},
	    {"{\"tpm\": {\"ak_public\": \"00\", \"attest\": \"00\", \"signature\": \"00\", \"pcrs\": "
	     "{\"md5\": {}}}}",
	     CVM_E_FORMAT, "md5"},
	    {"{\"ima_log\": 7}", CVM_E_FORMAT, "ima_log"},
	};
	struct fx *f = *state;
	uint8_t rd[64];
	json_t *base;

	memset(rd, 0, sizeof(rd));
	base = make_bundle(f, rd, NULL, NULL, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cvm_evidence *ev = NULL;
		json_t *o = json_deep_copy(base), *e = json_loads(cases[i].edit, 0, NULL);
		char why[256] = "", *s;
		size_t len;
		int r;

		assert_non_null(e);
		assert_int_equal(json_object_update(o, e), 0);
		s = dump(o, &len);
		r = cvm_evidence_parse((const uint8_t *)s, len, &ev, why, sizeof(why));
		if (r != cases[i].want || strstr(why, cases[i].why) == NULL)
			fail_msg("case %zu (%s): got %d '%s'", i, cases[i].edit, r, why);
		assert_null(ev);
		free(s);
		json_decref(e);
		json_decref(o);
	}
	/* a duplicate key */
	{
		static const char dup[] = "{\"version\": 1, \"version\": 1}";
		struct cvm_evidence *ev = NULL;

		assert_int_equal(cvm_evidence_parse((const uint8_t *)dup, sizeof(dup) - 1, &ev, NULL, 0),
		                 CVM_E_FORMAT);
	}
	json_decref(base);
}

int main(void)
{
	/* One simulator for the group (making its PKI is the slow part under
	 * valgrind); the test that extends RTMRs runs last, since the others
	 * quote with RTMRs at zero and an empty event log. */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(binding_matches_independent_computation),
	    cmocka_unit_test(caller_report_data_matches_independent_computation),
	    cmocka_unit_test(system_event_names_are_dstack_boot_names_and_the_cvmkit_namespace),
	    cmocka_unit_test(binding_rejects_lengths_out_of_range),
	    cmocka_unit_test(bundle_without_tpm_binds_the_nonce),
	    cmocka_unit_test(tpm_part_is_bound_through_the_ak_name),
	    cmocka_unit_test(tdx_tpm_part_needs_the_ak_the_system_recorded),
	    cmocka_unit_test(snp_tpm_part_is_bound_by_report_data_in_the_agents_domain),
	    cmocka_unit_test(quote_bit_flips_never_verify),
	    cmocka_unit_test(parse_rejects_truncations_and_trailing_bytes),
	    cmocka_unit_test(parse_names_malformed_fields),
	    cmocka_unit_test(event_log_must_replay_to_the_rtmrs),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/* What the agent hands out as evidence: the event log as JSON, dstack's
 * VersionedAttestation (SCALE, V0), Info's tcb_info and cvmkit's evidence
 * bundle (GetEvidence: the TEE quote, the event log, and when configured a
 * TPM quote and the IMA list, bound together as include/cvmkit/evidence.h
 * defines). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/ratls.h>

#include "agent.h"
#include "daemon.h"

/* The largest VersionedAttestation we build: a quote, the CCEL and the
 * runtime log, all capped well below this. */

static json_t *event_json(const struct agent_event *e, bool with_payload)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	if (cvm_json_set(o, "imr", json_integer(e->imr)) != CVM_OK ||
	    cvm_json_set(o, "event_type", json_integer(e->type)) != CVM_OK ||
	    cvm_json_set(o, "digest", cvm_json_hex(e->digest, sizeof(e->digest))) != CVM_OK ||
	    cvm_json_set(o, "event", json_string(e->name)) != CVM_OK ||
	    cvm_json_set(o, "event_payload",
	                 with_payload ? cvm_json_hex(e->payload, e->payload_len) : json_string("")) !=
	        CVM_OK) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *agent_event_log_json(const struct agent *a, bool with_boot_payloads)
{
	json_t *arr = json_array();

	if (arr == NULL)
		return NULL;
	for (size_t i = 0; i < a->boot_count; i++) {
		if (json_array_append_new(arr, event_json(&a->boot[i], with_boot_payloads)) != 0)
			goto fail;
	}
	/* Runtime events keep their digests, unlike dstack's agent, so that a
	 * client can replay RTMR3 from this log alone (the SDK's replayRtmrs). */
	for (size_t i = 0; i < a->rt.count; i++) {
		if (json_array_append_new(arr, event_json(&a->rt.ev[i], true)) != 0)
			goto fail;
	}
	return arr;
fail:
	json_decref(arr);
	return NULL;
}

const char *agent_quote_log(struct agent *a)
{
	json_t *arr;
	char *s;

	if (a->quote_log != NULL && a->quote_log_gen == a->rt.generation)
		return a->quote_log;
	arr = agent_event_log_json(a, false);
	s = arr == NULL ? NULL : json_dumps(arr, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	json_decref(arr);
	if (s == NULL)
		return NULL;
	free(a->quote_log);
	a->quote_log = s;
	a->quote_log_gen = a->rt.generation;
	return s;
}

struct cvm_va_event *agent_va_events(const struct agent *a, size_t *count)
{
	size_t n = a->boot_count + a->rt.count;
	struct cvm_va_event *ev = calloc(n != 0 ? n : 1, sizeof(*ev));

	*count = 0;
	if (ev == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct agent_event *e = i < a->boot_count ? &a->boot[i] : &a->rt.ev[i - a->boot_count];

		ev[i] = (struct cvm_va_event){.imr = e->imr,
		                              .event_type = e->type,
		                              .digest = e->digest,
		                              .digest_len = 48,
		                              .event = e->name != NULL ? e->name : "",
		                              .payload = e->payload,
		                              .payload_len = e->payload_len};
	}
	*count = n;
	return ev;
}

int agent_va_encode(const struct agent *a, enum cvm_tee_platform platform, const uint8_t *quote,
                    size_t quote_len, const uint8_t report_data[64], unsigned version, uint8_t **out,
                    size_t *out_len)
{
	struct cvm_va va;
	struct cvm_va_event *ev = NULL;
	struct cvm_va_runtime_event *rt = NULL;
	size_t n = 0;
	int r;

	*out = NULL;
	*out_len = 0;
	memset(&va, 0, sizeof(va));
	ev = agent_va_events(a, &n);
	rt = calloc(a->rt.count != 0 ? a->rt.count : 1, sizeof(*rt));
	if (ev == NULL || rt == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < a->rt.count; i++)
		rt[i] = (struct cvm_va_runtime_event){.event = a->rt.ev[i].name,
		                                      .payload = a->rt.ev[i].payload,
		                                      .payload_len = a->rt.ev[i].payload_len};
	va.version = version;
	va.tee = platform == CVM_TEE_PLATFORM_TDX ? CVM_RATLS_TEE_TDX : CVM_RATLS_TEE_SNP;
	va.variant = platform == CVM_TEE_PLATFORM_TDX ? 0 : 3; /* V0: DstackTdx, DstackSevSnp */
	va.quote = quote;
	va.quote_len = quote_len;
	va.events = platform == CVM_TEE_PLATFORM_TDX ? ev : NULL;
	va.event_count = platform == CVM_TEE_PLATFORM_TDX ? n : 0;
	va.runtime_events = rt;
	va.runtime_event_count = a->rt.count;
	memcpy(va.report_data, report_data, 64);
	va.config = a->vm_config;
	va.config_len = strlen(a->vm_config);
	if (platform != CVM_TEE_PLATFORM_TDX)
		va.mr_config = ""; /* not kept yet: see attestation_reply */
	r = cvm_va_encode(&va, version, out, out_len);
out:
	free(ev);
	free(rt);
	return r;
}

int agent_measurements(struct agent *a, struct cvm_tee_measurements *m, uint8_t mr_aggregated[32])
{
	uint8_t buf[48 * 8], zero[48];
	size_t n = 0;
	int r;

	memset(m, 0, sizeof(*m));
	r = cvm_tee_measurements(a->tee, m);
	if (r != CVM_OK)
		return r;
	memset(zero, 0, sizeof(zero));
	memcpy(buf + n, m->mrtd, 48);
	n += 48;
	for (unsigned i = 0; i < 4; i++) {
		memcpy(buf + n, m->rtmr[i], 48);
		n += 48;
	}
	/* spec §5.5: the three owner fields enter only when one is not zero */
	if (memcmp(a->mr_config_id, zero, 48) != 0 || memcmp(a->mr_owner, zero, 48) != 0 ||
	    memcmp(a->mr_owner_config, zero, 48) != 0) {
		memcpy(buf + n, a->mr_config_id, 48);
		memcpy(buf + n + 48, a->mr_owner, 48);
		memcpy(buf + n + 96, a->mr_owner_config, 48);
		n += 144;
	}
	cvm_sha256(buf, n, mr_aggregated);
	return CVM_OK;
}

json_t *agent_tcb_info(struct agent *a)
{
	struct cvm_tee_measurements m;
	const struct agent_event *ch = agent_find_event(a, "compose-hash");
	uint8_t agg[32], dev[32];
	json_t *o = NULL;
	char name[8];

	if (agent_measurements(a, &m, agg) != CVM_OK)
		return NULL;
	cvm_sha256("", 0, dev);
	o = json_object();
	if (o == NULL)
		return NULL;
	if (cvm_json_set(o, "mrtd", cvm_json_hex(m.mrtd, 48)) != CVM_OK)
		goto fail;
	for (unsigned i = 0; i < 4; i++) {
		(void)snprintf(name, sizeof(name), "rtmr%u", i);
		if (cvm_json_set(o, name, cvm_json_hex(m.rtmr[i], 48)) != CVM_OK)
			goto fail;
	}
	if (cvm_json_set(o, "mr_aggregated", cvm_json_hex(agg, 32)) != CVM_OK ||
	    cvm_json_set(o, "os_image_hash", json_string(a->os_image_hash)) != CVM_OK ||
	    cvm_json_set(o, "compose_hash",
	                 ch != NULL ? cvm_json_hex(ch->payload, ch->payload_len) : json_string("")) !=
	        CVM_OK ||
	    cvm_json_set(o, "device_id", cvm_json_hex(dev, 32)) != CVM_OK ||
	    cvm_json_set(o, "event_log", agent_event_log_json(a, true)) != CVM_OK ||
	    cvm_json_set(o, "app_compose", json_stringn(a->app_compose, a->app_compose_len)) != CVM_OK)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* ---- GetEvidence --------------------------------------------------------- */

#define TPM_PCRS_DEFAULT "sha256:0-10"
#define IMA_PATH_DEFAULT "/sys/kernel/security/ima/binary_runtime_measurements"
/* Quote attempts when the PCRs move between the quote and their read-back
 * (IMA extends PCR 10 whenever a file is measured). */
#define TPM_QUOTE_ATTEMPTS 3u

static int parse_ak_handle(const char *s, uint32_t *out)
{
	char *end = NULL;
	unsigned long v;

	*out = CVM_TPM_AK_HANDLE_DEFAULT;
	if (s[0] == '\0')
		return CVM_OK;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0' || v < 0x81000000ul || v > 0x817ffffful)
		return CVM_E_INVAL;
	*out = (uint32_t)v;
	return CVM_OK;
}

static bool sel_has_pcr10(const struct cvm_tpm_pcr_sel *sel)
{
	for (size_t i = 0; i < sel->count; i++) {
		if ((sel->banks[i].mask & (1u << 10)) != 0)
			return true;
	}
	return false;
}

/* struct tpm_run is one conversation with the TPM: GetEvidence opens the
 * TPM for each request, so that a TPM restarted in between (or a swtpm that
 * serves one client at a time) never leaves the agent with a dead handle. */
struct tpm_run {
	struct cvm_tpm *t;
	uint8_t *ak_pub;
	size_t ak_pub_len;
	bool created;
	struct cvm_tpm_ak *ak;
	const struct cvm_tpm_public *pub;
	uint8_t qdata[CVM_EVIDENCE_QDATA_LEN];
	uint8_t *attest, *sig;
	size_t attest_len, sig_len;
	struct cvm_tpm_pcrs pcrs;
	struct cvm_tpm_quote q;
	struct cvm_report rep;
};

static void tpm_run_free(struct tpm_run *x)
{
	if (x == NULL)
		return;
	cvm_tpm_close(x->t);
	cvm_tpm_ak_free(x->ak);
	free(x->ak_pub);
	free(x->attest);
	free(x->sig);
	free(x);
}

static const char *tpm_why(const struct tpm_run *x, int r)
{
	const char *why = x->t != NULL ? cvm_tpm_err(x->t) : "";

	return why[0] != '\0' ? why : cvm_strerror(r);
}

/* tpm_begin connects and reads (or creates) the AK. */
static int tpm_begin(const struct agent *a, struct tpm_run **out, char *err, size_t err_len)
{
	struct cvm_tpm_ak_opts opts;
	struct tpm_run *x;
	char why[256];
	int r;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return CVM_E_NOMEM;
	why[0] = '\0';
	r = cvm_tpm_open(a->cfg.tpm_tcti, &x->t, why, sizeof(why));
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "TPM: cannot connect through '%s': %s", a->cfg.tpm_tcti,
		               why[0] != '\0' ? why : cvm_strerror(r));
		goto out;
	}
	memset(&opts, 0, sizeof(opts));
	opts.handle = a->tpm_ak_handle;
	opts.type = CVM_TPM_AK_ECC_P256;
	opts.parent = CVM_TPM_PARENT_EK;
	r = cvm_tpm_ak_ensure(x->t, &opts, &x->ak_pub, &x->ak_pub_len, &x->created);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "TPM: no attestation key at 0x%08x: %s", a->tpm_ak_handle,
		               tpm_why(x, r));
		goto out;
	}
	r = cvm_tpm_ak_parse(x->ak_pub, x->ak_pub_len, &x->ak);
	if (r == CVM_OK) {
		x->pub = cvm_tpm_ak_public(x->ak);
		if (x->pub == NULL || x->pub->name_len == 0)
			r = CVM_E_UNSUPPORTED;
	}
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "TPM: the key at 0x%08x cannot be used as an AK: %s",
		               a->tpm_ak_handle, cvm_strerror(r));
		goto out;
	}
	*out = x;
	x = NULL; /* transferred */
out:
	tpm_run_free(x);
	return r;
}

/* ak_check_recorded fails unless the AK the TPM holds now is the one RTMR3
 * recorded when the agent started (identity.c). */
static int ak_check_recorded(const struct agent *a, const struct tpm_run *x, char *err, size_t err_len)
{
	char now[2 * CVM_TPM_NAME_MAX + 1], then[2 * CVM_TPM_NAME_MAX + 1];

	if (a->ak_recorded_len == 0) {
		(void)snprintf(err, err_len, "TPM: %s", a->ak_problem);
		return CVM_E_TPM;
	}
	if (x->pub->name_len == a->ak_recorded_len &&
	    memcmp(x->pub->name, a->ak_recorded, a->ak_recorded_len) == 0)
		return CVM_OK;
	cvm_hex_encode(x->pub->name, x->pub->name_len, now);
	cvm_hex_encode(a->ak_recorded, a->ak_recorded_len, then);
	(void)snprintf(err, err_len,
	               "TPM: the attestation key at 0x%08x (Name %s) is not the one RTMR3 recorded in this "
	               "boot (Name %s), so a verifier would reject its quotes; put that key back or reboot "
	               "the VM",
	               a->tpm_ak_handle, now, then);
	return CVM_E_TPM;
}

/* tpm_quote quotes with the nonce's qualifying data, reads the PCRs back and
 * checks the quote as a verifier will, again when the PCRs moved. */
static int tpm_quote(const struct agent *a, struct tpm_run *x, const uint8_t *nonce, size_t nonce_len,
                     char *err, size_t err_len)
{
	int r;

	r = cvm_evidence_tpm_qualifying_data(nonce, nonce_len, x->qdata);
	if (r != CVM_OK)
		return r;
	for (unsigned i = 0; i < TPM_QUOTE_ATTEMPTS; i++) {
		free(x->attest);
		free(x->sig);
		x->attest = x->sig = NULL;
		r = cvm_tpm_quote_create(x->t, a->tpm_ak_handle, &a->tpm_sel, x->qdata, sizeof(x->qdata),
		                         &x->attest, &x->attest_len, &x->sig, &x->sig_len);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "TPM: the quote failed: %s", tpm_why(x, r));
			return r;
		}
		r = cvm_tpm_pcr_read(x->t, &a->tpm_sel, &x->pcrs, NULL);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "TPM: cannot read the PCRs: %s", tpm_why(x, r));
			return r;
		}
		cvm_report_init(&x->rep);
		r = cvm_tpm_quote_authenticate(x->ak, x->attest, x->attest_len, x->sig, x->sig_len, x->qdata,
		                               sizeof(x->qdata), &x->rep, &x->q);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "TPM: its own quote does not verify: %s",
			               x->rep.failed != NULL ? x->rep.failed->detail : cvm_strerror(r));
			return r;
		}
		if (cvm_tpm_quote_pcrs_match(&x->q, &x->pcrs))
			return CVM_OK;
	}
	(void)snprintf(err, err_len, "TPM: the PCRs changed between the quote and their read-back %u times",
	               TPM_QUOTE_ATTEMPTS);
	return CVM_E_TPM;
}

void agent_tpm_raw_cleanup(struct agent_tpm_raw *q)
{
	free(q->attest);
	free(q->sig);
	free(q->ak_pub);
	memset(q, 0, sizeof(*q));
}

int agent_tpm_quote_raw(struct agent *a, unsigned pcr, const uint8_t *qdata, size_t qdata_len,
                        struct agent_tpm_raw *out, char *err, size_t err_len)
{
	struct cvm_tpm_pcr_sel sel;
	struct tpm_run *x = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (!a->has_tpm || pcr >= CVM_TPM_PCR_COUNT || qdata_len == 0 || qdata_len > CVM_TPM_DATA_MAX) {
		(void)snprintf(err, err_len, "no TPM, or a PCR or qualifying data out of range");
		return CVM_E_INVAL;
	}
	memset(&sel, 0, sizeof(sel));
	sel.count = 1;
	sel.banks[0].alg = CVM_DIGEST_SHA256;
	sel.banks[0].mask = 1u << pcr;
	r = tpm_begin(a, &x, err, err_len);
	if (r == CVM_OK && a->tee_info.platform == CVM_TEE_PLATFORM_TDX)
		r = ak_check_recorded(a, x, err, err_len);
	if (r == CVM_OK) {
		r = cvm_tpm_quote_create(x->t, a->tpm_ak_handle, &sel, qdata, qdata_len, &out->attest,
		                         &out->attest_len, &out->sig, &out->sig_len);
		if (r != CVM_OK)
			(void)snprintf(err, err_len, "TPM: the quote failed: %s", tpm_why(x, r));
	}
	if (r == CVM_OK && x->ak_pub_len > 2) {
		out->ak_pub = x->ak_pub;
		out->ak_pub_len = x->ak_pub_len;
		x->ak_pub = NULL; /* transferred */
	} else if (r == CVM_OK) {
		(void)snprintf(err, err_len, "TPM: the AK's public area is empty");
		r = CVM_E_TPM;
	}
	tpm_run_free(x);
	if (r != CVM_OK)
		agent_tpm_raw_cleanup(out);
	return r;
}

/* pcrs_json is {"sha256": {"0": "<hex>", ...}} in selection order. */
static json_t *pcrs_json(const struct cvm_tpm_pcr_sel *sel, const struct cvm_tpm_pcrs *pcrs)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	for (size_t b = 0; b < sel->count; b++) {
		const char *name = cvm_digest_name(sel->banks[b].alg);
		json_t *bank = json_object();

		if (name == NULL || cvm_json_set(o, name, bank) != CVM_OK)
			goto fail;
		for (unsigned i = 0; i < CVM_TPM_PCR_COUNT; i++) {
			const uint8_t *v = cvm_tpm_pcrs_get(pcrs, sel->banks[b].alg, i);
			char key[4];

			if ((sel->banks[b].mask & (1u << i)) == 0)
				continue;
			(void)snprintf(key, sizeof(key), "%u", i);
			if (v == NULL ||
			    cvm_json_set(bank, key, cvm_json_hex(v, cvm_digest_len(sel->banks[b].alg))) !=
			        CVM_OK)
				goto fail;
		}
	}
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *tpm_json(const struct agent *a, const struct tpm_run *x)
{
	char sel[256], handle[16];
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	cvm_tpm_pcr_sel_format(&a->tpm_sel, sel, sizeof(sel));
	(void)snprintf(handle, sizeof(handle), "0x%08x", a->tpm_ak_handle);
	if (cvm_json_set(o, "ak_handle", json_string(handle)) != CVM_OK ||
	    cvm_json_set(o, "ak_public", cvm_json_hex(x->ak_pub, x->ak_pub_len)) != CVM_OK ||
	    cvm_json_set(o, "ak_name", cvm_json_hex(x->pub->name, x->pub->name_len)) != CVM_OK ||
	    cvm_json_set(o, "qualifying_data", cvm_json_hex(x->qdata, sizeof(x->qdata))) != CVM_OK ||
	    cvm_json_set(o, "pcr_selection", json_string(sel)) != CVM_OK ||
	    cvm_json_set(o, "attest", cvm_json_hex(x->attest, x->attest_len)) != CVM_OK ||
	    cvm_json_set(o, "signature", cvm_json_hex(x->sig, x->sig_len)) != CVM_OK ||
	    cvm_json_set(o, "pcrs", pcrs_json(&a->tpm_sel, &x->pcrs)) != CVM_OK) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int agent_evidence_open(struct agent *a, char *err, size_t err_len)
{
	const char *ima = a->cfg.ima_log,
	           *sel_text = a->cfg.tpm_pcrs[0] != '\0' ? a->cfg.tpm_pcrs : TPM_PCRS_DEFAULT;
	struct tpm_run *x = NULL;
	char k1[CVM_KV_MAX], k2[CVM_KV_MAX], sel[256], terr[512];
	int r;

	a->ima_path[0] = '\0';
	if (strcmp(ima, "none") == 0)
		ima = "";
	else if (ima[0] == '\0' && a->cfg.simulator[0] == '\0' && access(IMA_PATH_DEFAULT, F_OK) == 0)
		ima = IMA_PATH_DEFAULT; /* a simulated guest has nothing to do with the host's list */
	(void)snprintf(a->ima_path, sizeof(a->ima_path), "%s", ima);
	a->has_tpm = a->cfg.tpm_tcti[0] != '\0' && strcmp(a->cfg.tpm_tcti, "none") != 0;
	if (!a->has_tpm) {
		cvm_daemon_log(CVM_LOG_INFO, "evidence", "tpm=none ima=%s",
		               a->ima_path[0] != '\0' ? cvm_kv(a->ima_path, k1) : "none");
		return CVM_OK;
	}
	r = cvm_tpm_pcr_sel_parse(sel_text, &a->tpm_sel);
	if (r != CVM_OK || a->tpm_sel.count == 0) {
		(void)snprintf(
		    err, err_len,
		    "tpm_pcrs '%.80s' is not a PCR selection such as sha256:0-10 or sha1:0-7+sha256:0-10",
		    sel_text);
		return CVM_E_INVAL;
	}
	if (a->ima_path[0] != '\0' && !sel_has_pcr10(&a->tpm_sel)) {
		(void)snprintf(err, err_len,
		               "tpm_pcrs '%.80s' lacks PCR 10, which covers the IMA list %s (add it, or set "
		               "ima_log = none)",
		               sel_text, a->ima_path);
		return CVM_E_INVAL;
	}
	if (parse_ak_handle(a->cfg.tpm_ak_handle, &a->tpm_ak_handle) != CVM_OK) {
		(void)snprintf(err, err_len,
		               "tpm_ak_handle '%s' is not a persistent handle 0x81000000-0x817fffff",
		               a->cfg.tpm_ak_handle);
		return CVM_E_INVAL;
	}
	cvm_tpm_pcr_sel_format(&a->tpm_sel, sel, sizeof(sel));
	/* First contact: creates the AK when missing, and tells the operator now
	 * rather than at the first GetEvidence when the TPM is unusable. */
	r = tpm_begin(a, &x, terr, sizeof(terr));
	if (r == CVM_OK) {
		r = cvm_tpm_pcr_read(x->t, &a->tpm_sel, &x->pcrs, NULL);
		if (r != CVM_OK)
			(void)snprintf(terr, sizeof(terr), "TPM: cannot read %s: %s", sel, tpm_why(x, r));
	}
	if (r != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "tpm_unavailable", "tcti=%s error=%s",
		               cvm_kv(a->cfg.tpm_tcti, k1), cvm_kv(terr, k2));
	} else {
		char name[2 * CVM_TPM_NAME_MAX + 1], desc[32];

		cvm_hex_encode(x->pub->name, x->pub->name_len, name);
		memcpy(a->ak_name, x->pub->name, x->pub->name_len);
		a->ak_name_len = x->pub->name_len;
		cvm_tpm_ak_describe(x->ak, desc, sizeof(desc));
		cvm_daemon_log(CVM_LOG_INFO, "tpm_ready",
		               "tcti=%s ak_handle=0x%08x ak_created=%s ak=%s ak_name=%s",
		               cvm_kv(a->cfg.tpm_tcti, k1), a->tpm_ak_handle, x->created ? "yes" : "no",
		               cvm_kv(desc, k2), name);
	}
	tpm_run_free(x);
	cvm_daemon_log(CVM_LOG_INFO, "evidence", "tpm=%s pcrs=%s ima=%s", cvm_kv(a->cfg.tpm_tcti, k1), sel,
	               a->ima_path[0] != '\0' ? cvm_kv(a->ima_path, k2) : "none");
	return CVM_OK;
}

static int fail_part(const char *part, int r, const char *err)
{
	char k[CVM_KV_MAX];

	cvm_daemon_log(CVM_LOG_ERROR, "evidence_failed", "part=%s error=%s", part, cvm_kv(err, k));
	return r;
}

static int read_ima(const struct agent *a, json_t **out, char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if (a->ima_path[0] == '\0') {
		*out = json_null();
		return CVM_OK;
	}
	r = cvm_file_read(a->ima_path, AGENT_IMA_LOG_MAX, &buf, &len);
	if (r == CVM_E_TOO_LARGE)
		(void)snprintf(err, err_len, "the IMA list %s is larger than %zu bytes", a->ima_path,
		               AGENT_IMA_LOG_MAX);
	else if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot read the IMA list %s: %s", a->ima_path,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
	if (r != CVM_OK)
		return r;
	*out = cvm_json_hex(buf, len);
	free(buf);
	if (*out == NULL) {
		(void)snprintf(err, err_len, "out of memory");
		return CVM_E_NOMEM;
	}
	return CVM_OK;
}

int agent_evidence(struct agent *a, const uint8_t *nonce, size_t nonce_len, json_t **out, char *err,
                   size_t err_len)
{
	struct cvm_tee_evidence ev;
	struct tpm_run *x = NULL;
	uint8_t rd[64];
	json_t *o = NULL, *log = NULL, *tpm = NULL, *ima = NULL;
	int r;

	*out = NULL;
	memset(&ev, 0, sizeof(ev));
	if (nonce_len < AGENT_NONCE_MIN || nonce_len > AGENT_NONCE_MAX) {
		(void)snprintf(err, err_len, "nonce must be %u to %u bytes", AGENT_NONCE_MIN,
		               AGENT_NONCE_MAX);
		return CVM_E_INVAL;
	}
	/* 1. the AK first: the TEE quote names it, and on TDX it must be the
	 * one RTMR3 recorded at start (a verifier rejects any other) */
	if (a->has_tpm) {
		r = tpm_begin(a, &x, err, err_len);
		if (r == CVM_OK && a->tee_info.platform == CVM_TEE_PLATFORM_TDX)
			r = ak_check_recorded(a, x, err, err_len);
		if (r != CVM_OK) {
			r = fail_part("tpm", r == CVM_E_NOMEM ? r : CVM_E_TPM, err);
			goto out;
		}
	}
	r = cvm_evidence_report_data(nonce, nonce_len, x != NULL ? x->pub->name : NULL,
	                             x != NULL ? x->pub->name_len : 0, rd);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot compute report_data: %s", cvm_strerror(r));
		goto out;
	}
	/* 2. the TEE quote and the event log it covers, under one lock */
	r = agent_rtlog_lock(&a->rt, LOCK_SH);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot lock the runtime event log: %s", cvm_strerror(r));
		goto out;
	}
	r = cvm_tee_quote(a->tee, rd, &ev);
	if (r == CVM_OK) {
		log = agent_event_log_json(a, true);
		if (log == NULL)
			r = CVM_E_NOMEM;
	}
	agent_rtlog_unlock(&a->rt);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot get evidence from the TEE: %s",
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		r = fail_part("tee", r, err);
		goto out;
	}
	/* 3. the TPM quote, then the IMA list: read after the quote, the list
	 * holds at least the entries the quoted PCR 10 covers */
	if (x != NULL) {
		r = tpm_quote(a, x, nonce, nonce_len, err, err_len);
		if (r == CVM_OK) {
			tpm = tpm_json(a, x);
			if (tpm == NULL) {
				(void)snprintf(err, err_len, "out of memory");
				r = CVM_E_NOMEM;
			}
		}
		if (r != CVM_OK) {
			r = fail_part("tpm", r == CVM_E_NOMEM ? r : CVM_E_TPM, err);
			goto out;
		}
	} else {
		tpm = json_null();
	}
	r = read_ima(a, &ima, err, err_len);
	if (r != CVM_OK) {
		r = fail_part("ima", r, err);
		goto out;
	}
	o = json_object();
	if (o == NULL || cvm_json_set(o, "version", json_integer(CVM_EVIDENCE_VERSION)) != CVM_OK ||
	    cvm_json_set(o, "platform", json_string(ev.platform == CVM_TEE_PLATFORM_SNP ? "snp" : "tdx")) !=
	        CVM_OK ||
	    cvm_json_set(o, "simulated", json_boolean(ev.is_simulated)) != CVM_OK ||
	    cvm_json_set(o, "nonce", cvm_json_hex(nonce, nonce_len)) != CVM_OK ||
	    cvm_json_set(o, "report_data", cvm_json_hex(rd, sizeof(rd))) != CVM_OK ||
	    cvm_json_set(o, "quote", cvm_json_hex(ev.data, ev.data_len)) != CVM_OK ||
	    cvm_json_set(o, "snp_cert_table",
	                 ev.aux != NULL ? cvm_json_hex(ev.aux, ev.aux_len) : json_null()) != CVM_OK ||
	    cvm_json_set(o, "event_log", json_null()) != CVM_OK ||
	    cvm_json_set(o, "vm_config", json_string(a->vm_config)) != CVM_OK ||
	    cvm_json_set(o, "app_compose", json_stringn(a->app_compose, a->app_compose_len)) != CVM_OK ||
	    cvm_json_set(o, "tpm", json_null()) != CVM_OK ||
	    cvm_json_set(o, "ima_log", json_null()) != CVM_OK) {
		(void)snprintf(err, err_len, "out of memory");
		r = CVM_E_NOMEM;
		goto out;
	}
	/* The parts replace their placeholders in place, keeping the key order;
	 * json_object_set_new takes each reference, also when it fails. */
	r = json_object_set_new(o, "event_log", log) == 0 ? CVM_OK : CVM_E_NOMEM;
	log = NULL;
	if (r == CVM_OK)
		r = json_object_set_new(o, "tpm", tpm) == 0 ? CVM_OK : CVM_E_NOMEM;
	tpm = NULL;
	if (r == CVM_OK)
		r = json_object_set_new(o, "ima_log", ima) == 0 ? CVM_OK : CVM_E_NOMEM;
	ima = NULL;
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "out of memory");
		goto out;
	}
	*out = o;
	o = NULL;
out:
	json_decref(log);
	json_decref(tpm);
	json_decref(ima);
	json_decref(o);
	tpm_run_free(x);
	cvm_tee_evidence_cleanup(&ev);
	return r;
}

/* The simulated TEE: a folder that holds a mock vendor PKI, the platform's
 * fixed values and its run-time registers. See docs/simulator.md. A launch
 * (cvm_tee_sim_launch) is a folder of the same layout for one VM of a
 * platform: copies of its keys and collateral, templates re-signed with the
 * VM's launch measurements.
 *
 *   DIR/sim.json                     what the folder is (written last by init
 *                                    or launch; a launch's has a "launch" object)
 *   DIR/keys/                        mock private keys (0700; files 0600) and certificates
 *   DIR/collateral/tdx/              what `cvm quote verify --collateral` reads
 *   DIR/collateral/snp/              the mock AMD chain and CRL, as the vectors' snp/<name>
 *   DIR/platform/tdx_template.quote  a quote with zero REPORTDATA and RTMRs: the
 *                                    header, TD body and QE report of every quote
 *   DIR/platform/snp_template.report an SNP report with zero REPORT_DATA: every
 *                                    field of every later report but REPORT_DATA
 *                                    and VMPL
 *   DIR/state/rtmr                   RTMR0..3, 4 x 48 bytes, replaced atomically
 *   DIR/state/lock                   flock(2) held while an extension runs
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/log.h>
#include <cvmkit/quote.h>
#include <cvmkit/random.h>
#include <cvmkit/secret.h>
#include <cvmkit/snp.h>

#include "sim/mockamd_lib.h"
#include "sim/mockpki_lib.h"
#include "tee_int.h"

#define SIM_FORMAT 1
#define SIM_JSON_MAX ((size_t)16 * 1024)
#define SIM_RTMR_LEN ((size_t)CVM_TEE_RTMR_COUNT * CVM_TEE_MR_LEN)
#define DAY ((int64_t)24 * 3600)
#define SIM_COLLATERAL_DAYS 365

static const char f_json[] = "sim.json";
static const char d_keys[] = "keys";
static const char d_coll[] = "collateral";
static const char d_coll_tdx[] = "collateral/tdx";
static const char d_coll_snp[] = "collateral/snp";
static const char d_platform[] = "platform";
static const char d_state[] = "state";
static const char f_tdx_template[] = "platform/tdx_template.quote";
static const char f_snp_template[] = "platform/snp_template.report";
static const char f_rtmr[] = "state/rtmr";
static const char f_lock[] = "state/lock";

struct sim {
	char dir[TEE_PATH_MAX];
	int64_t created;
	bool has_snp;            /* sim.json has an "snp" section */
	struct cvm_mockpki *pki; /* TDX: the mock Intel PKI, keys loaded */
	uint8_t *template_quote; /* TDX */
	size_t template_len;
	struct cvm_quote template; /* parsed; borrows template_quote */
	struct cvm_mockamd *amd;   /* SNP: the mock AMD PKI, keys loaded */
	struct cvm_snp_report snp; /* SNP: the parsed template (signed_data not used) */
};

static int sim_path(char *buf, size_t cap, const char *dir, const char *rel)
{
	int n = snprintf(buf, cap, "%s/%s", dir, rel);

	return n < 0 || (size_t)n >= cap ? CVM_E_INVAL : CVM_OK;
}

/* mock_opts gives the mock PKI options of a platform: the library's
 * defaults with collateral that lasts a year, so a simulated platform does
 * not need refreshing every month as Intel's collateral does. */
#define SIM_PCE_SVN_OUT_OF_DATE 7

static void mock_opts(struct cvm_mockpki_opts *o, int64_t now)
{
	cvm_mockpki_opts_init(o, CVM_TEE_TDX, now);
	for (size_t i = 0; i < CVM_MOCKPKI_CERT_COUNT; i++)
		o->cert[i].to = now + (int64_t)10 * SIM_COLLATERAL_DAYS * DAY;
	o->root_crl.to = o->pck_crl.to = o->tcb_info.to = o->qe_identity.to = now + SIM_COLLATERAL_DAYS * DAY;
}

/* amd_opts gives the mock AMD PKI options of a platform: a VCEK chain of
 * `product` whose certificates last ten years and whose CRL lasts one, as
 * mock_opts does for Intel. */
static void amd_opts(struct cvm_mockamd_opts *o, enum cvm_snp_product product, int64_t now)
{
	cvm_mockamd_opts_init(o, product, CVM_SNP_SIGNER_VCEK, now);
	o->ark.to = o->intermediate.to = o->vek.to = now + (int64_t)10 * SIM_COLLATERAL_DAYS * DAY;
	o->crl.to = now + SIM_COLLATERAL_DAYS * DAY;
}

void cvm_tee_sim_opts_init(struct cvm_tee_sim_opts *o, int64_t now)
{
	memset(o, 0, sizeof(*o));
	o->now = now;
	/* A failure (no entropy source at all) leaves a fixed pattern, which
	 * is still a valid measurement of a simulated guest. */
	if (cvm_random_bytes(o->mrtd, sizeof(o->mrtd)) != CVM_OK)
		memset(o->mrtd, 0x4d, sizeof(o->mrtd));
	if (cvm_random_bytes(o->snp_measurement, sizeof(o->snp_measurement)) != CVM_OK)
		memset(o->snp_measurement, 0x53, sizeof(o->snp_measurement));
	o->snp_product = CVM_SNP_PRODUCT_MILAN;
	o->with_snp = true;
}

/* ---- the state folder -------------------------------------------------- */

static int read_rtmrs(const char *dir, uint8_t out[CVM_TEE_RTMR_COUNT][CVM_TEE_MR_LEN])
{
	char path[TEE_PATH_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	r = sim_path(path, sizeof(path), dir, f_rtmr);
	if (r != CVM_OK)
		return r;
	r = cvm_file_read(path, SIM_RTMR_LEN, &buf, &len);
	if (r == CVM_E_TOO_LARGE)
		r = CVM_E_FORMAT;
	if (r != CVM_OK)
		return r;
	if (len != SIM_RTMR_LEN)
		r = CVM_E_FORMAT;
	else
		memcpy(out, buf, SIM_RTMR_LEN);
	free(buf);
	return r;
}

/* lock_state takes the state lock (exclusive or shared) and returns its fd. */
static int lock_state(const char *dir, int how, int *fd_out)
{
	char path[TEE_PATH_MAX];
	int fd, r;

	*fd_out = -1;
	r = sim_path(path, sizeof(path), dir, f_lock);
	if (r != CVM_OK)
		return r;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return CVM_E_SYSTEM;
	while (flock(fd, how) != 0) {
		if (errno != EINTR) {
			int saved = errno;

			(void)close(fd);
			errno = saved;
			return CVM_E_SYSTEM;
		}
	}
	*fd_out = fd;
	return CVM_OK;
}

static void unlock_state(int fd)
{
	int saved = errno;

	if (fd >= 0)
		(void)close(fd); /* closing the last descriptor drops the flock */
	errno = saved;
}

/* ---- the backend --------------------------------------------------------- */

/* tdx_opts_of gives the mock quote options that write the template `t`
 * again: its header, TD body and QE report. */
static int tdx_opts_of(const struct cvm_quote *t, struct cvm_mockpki_quote_opts *q)
{
	memset(q, 0, sizeof(*q));
	q->qe_svn = t->qe_svn;
	q->pce_svn = t->pce_svn;
	memcpy(q->user_data, t->user_data, sizeof(q->user_data));
	q->td = t->body.td;
	q->qe = t->qe_report;
	if (t->qe_auth_data.len != sizeof(q->auth_data))
		return CVM_E_FORMAT;
	memcpy(q->auth_data, t->qe_auth_data.p, sizeof(q->auth_data));
	return CVM_OK;
}

static int sim_tdx_quote(struct cvm_tee_dev *tee, const uint8_t rd[CVM_TEE_REPORT_DATA_LEN],
                         struct cvm_tee_evidence *out)
{
	struct sim *s = tee->priv;
	struct cvm_mockpki_quote_opts *q;
	const struct cvm_quote *t = &s->template;
	uint8_t rtmr[CVM_TEE_RTMR_COUNT][CVM_TEE_MR_LEN];
	int r, fd = -1;

	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return CVM_E_NOMEM;
	r = tdx_opts_of(t, q);
	if (r != CVM_OK)
		goto out;
	/* A shared lock: an extension in flight finishes first, so a quote
	 * never shows half of a batch a caller extends under one lock. */
	r = lock_state(s->dir, LOCK_SH, &fd);
	if (r != CVM_OK)
		goto out;
	r = read_rtmrs(s->dir, rtmr);
	unlock_state(fd);
	if (r != CVM_OK)
		goto out;
	for (unsigned i = 0; i < CVM_TEE_RTMR_COUNT; i++)
		memcpy(q->td.rtmr[i], rtmr[i], CVM_TEE_MR_LEN);
	memcpy(q->td.report_data, rd, CVM_TEE_REPORT_DATA_LEN);
	r = cvm_mockpki_quote(s->pki, q, &out->data, &out->data_len);
out:
	free(q);
	return r;
}

static int sim_tdx_extend(struct cvm_tee_dev *tee, unsigned index, const uint8_t digest[CVM_TEE_MR_LEN])
{
	struct sim *s = tee->priv;
	uint8_t rtmr[CVM_TEE_RTMR_COUNT][CVM_TEE_MR_LEN], cat[2 * CVM_TEE_MR_LEN];
	char path[TEE_PATH_MAX];
	int r, fd = -1;

	r = sim_path(path, sizeof(path), s->dir, f_rtmr);
	if (r != CVM_OK)
		return r;
	r = lock_state(s->dir, LOCK_EX, &fd);
	if (r != CVM_OK)
		return r;
	r = read_rtmrs(s->dir, rtmr);
	if (r != CVM_OK)
		goto out;
	memcpy(cat, rtmr[index], CVM_TEE_MR_LEN);
	memcpy(cat + CVM_TEE_MR_LEN, digest, CVM_TEE_MR_LEN);
	cvm_sha384(cat, sizeof(cat), rtmr[index]);
	/* write to a temporary file and rename: a reader sees the old or the
	 * new registers, never a mix */
	r = cvm_file_write(path, rtmr, sizeof(rtmr), 0644);
out:
	unlock_state(fd);
	return r;
}

static int sim_tdx_measurements(struct cvm_tee_dev *tee, struct cvm_tee_measurements *out)
{
	struct sim *s = tee->priv;
	uint8_t rtmr[CVM_TEE_RTMR_COUNT][CVM_TEE_MR_LEN];
	int r;

	r = read_rtmrs(s->dir, rtmr);
	if (r != CVM_OK)
		return r;
	memcpy(out->mrtd, s->template.body.td.mr_td, sizeof(out->mrtd));
	for (unsigned i = 0; i < CVM_TEE_RTMR_COUNT; i++)
		memcpy(out->rtmr[i], rtmr[i], CVM_TEE_MR_LEN);
	return CVM_OK;
}

/* snp_opts_of gives the mock report options that write `t` again. */
static void snp_opts_of(const struct cvm_snp_report *t, struct cvm_mockamd_report_opts *q)
{
	memset(q, 0, sizeof(*q));
	q->version = t->version;
	q->guest_svn = t->guest_svn;
	q->policy = t->policy;
	memcpy(q->family_id, t->family_id, sizeof(q->family_id));
	memcpy(q->image_id, t->image_id, sizeof(q->image_id));
	q->vmpl = t->vmpl;
	q->platform_info = t->platform_info;
	q->signer_info = t->signer_info;
	memcpy(q->report_data, t->report_data, sizeof(q->report_data));
	memcpy(q->measurement, t->measurement, sizeof(q->measurement));
	memcpy(q->host_data, t->host_data, sizeof(q->host_data));
	memcpy(q->id_key_digest, t->id_key_digest, sizeof(q->id_key_digest));
	memcpy(q->author_key_digest, t->author_key_digest, sizeof(q->author_key_digest));
	memcpy(q->report_id, t->report_id, sizeof(q->report_id));
	memcpy(q->report_id_ma, t->report_id_ma, sizeof(q->report_id_ma));
	q->reported_tcb = t->reported_tcb.raw;
	q->cpuid_fam_id = t->cpuid_fam_id;
	q->cpuid_mod_id = t->cpuid_mod_id;
	q->cpuid_step = t->cpuid_step;
	memcpy(q->chip_id, t->chip_id, sizeof(q->chip_id));
	q->current_tcb = t->current_tcb.raw;
	q->committed_tcb = t->committed_tcb.raw;
	q->launch_tcb = t->launch_tcb.raw;
	q->current_build = t->current_build;
	q->current_minor = t->current_minor;
	q->current_major = t->current_major;
	q->committed_build = t->committed_build;
	q->committed_minor = t->committed_minor;
	q->committed_major = t->committed_major;
	q->launch_mit_vector = t->launch_mit_vector;
	q->current_mit_vector = t->current_mit_vector;
}

static int sim_snp_quote(struct cvm_tee_dev *tee, const uint8_t rd[CVM_TEE_REPORT_DATA_LEN],
                         struct cvm_tee_evidence *out)
{
	struct sim *s = tee->priv;
	struct cvm_mockamd_report_opts q;

	snp_opts_of(&s->snp, &q);
	memcpy(q.report_data, rd, sizeof(q.report_data));
	/* the firmware writes the VMPL the report was requested for */
	q.vmpl = tee->privlevel_set ? tee->privlevel : 0u;
	out->data = malloc(CVM_SNP_REPORT_LEN);
	if (out->data == NULL)
		return CVM_E_NOMEM;
	out->data_len = CVM_SNP_REPORT_LEN;
	return cvm_mockamd_report(s->amd, &q, out->data);
}

static int sim_snp_measurements(struct cvm_tee_dev *tee, struct cvm_tee_measurements *out)
{
	const struct sim *s = tee->priv;

	memcpy(out->measurement, s->snp.measurement, sizeof(out->measurement));
	memcpy(out->host_data, s->snp.host_data, sizeof(out->host_data));
	return CVM_OK;
}

static void sim_free(void *priv)
{
	struct sim *s = priv;

	if (s == NULL)
		return;
	cvm_mockpki_free(s->pki);
	cvm_mockamd_free(s->amd);
	free(s->template_quote);
	cvm_freezero(s, sizeof(*s));
}

static const struct tee_ops sim_tdx_ops = {
    .quote = sim_tdx_quote,
    .extend = sim_tdx_extend,
    .measurements = sim_tdx_measurements,
    .free_priv = sim_free,
};

static const struct tee_ops sim_snp_ops = {
    .quote = sim_snp_quote,
    .extend = NULL, /* SEV-SNP has no run-time measurement registers */
    .measurements = sim_snp_measurements,
    .free_priv = sim_free,
};

/* ---- sim.json ------------------------------------------------------------ */

/* read_json reads what sim.json says: the creation time, and whether the
 * platform has an SNP half; with `root_out` (may be NULL) also the whole
 * document, which the caller frees with json_decref. */
static int read_json(const char *dir, int64_t *created, bool *has_snp, json_t **root_out)
{
	char path[TEE_PATH_MAX];
	uint8_t *buf = NULL;
	size_t len = 0;
	json_t *root = NULL, *v;
	json_error_t jerr;
	int r;

	*created = 0;
	*has_snp = false;
	if (root_out != NULL)
		*root_out = NULL;
	r = sim_path(path, sizeof(path), dir, f_json);
	if (r != CVM_OK)
		return r;
	r = cvm_file_read(path, SIM_JSON_MAX, &buf, &len);
	if (r == CVM_E_SYSTEM && errno == ENOENT) {
		cvm_debug("'%s' has no %s: not a simulator folder", dir, f_json);
		r = CVM_E_FORMAT;
	}
	if (r != CVM_OK)
		return r;
	r = CVM_E_FORMAT;
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root))
		goto out;
	v = json_object_get(root, "cvmkit_simulator");
	if (!json_is_integer(v) || json_integer_value(v) != SIM_FORMAT) {
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	v = json_object_get(root, "created");
	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		goto out;
	*created = (int64_t)json_integer_value(v);
	v = json_object_get(root, "snp");
	if (v != NULL && !json_is_object(v))
		goto out;
	*has_snp = v != NULL;
	r = CVM_OK;
	if (root_out != NULL) {
		*root_out = root;
		root = NULL; /* transferred */
	}
out:
	json_decref(root);
	free(buf);
	return r;
}

static int write_json(const char *dir, const struct cvm_tee_sim_opts *o)
{
	char path[TEE_PATH_MAX], mrtd[2 * 48 + 1], meas[2 * 48 + 1];
	json_t *root = NULL, *snp = NULL;
	char *text = NULL;
	int r;

	cvm_hex_encode(o->mrtd, sizeof(o->mrtd), mrtd);
	root = json_pack(
	    "{s:i, s:s, s:I, s:{s:s, s:b}}", "cvmkit_simulator", SIM_FORMAT, "warning",
	    "simulated TEE: every key here is a mock; nothing it signs proves anything about hardware",
	    "created", (json_int_t)o->now, "tdx", "mrtd", mrtd, "debug", (int)o->is_debug);
	if (root == NULL)
		return CVM_E_NOMEM;
	if (o->with_snp) {
		cvm_hex_encode(o->snp_measurement, sizeof(o->snp_measurement), meas);
		snp = json_pack("{s:s, s:s, s:s, s:b}", "measurement", meas, "product",
		                cvm_snp_product_name(o->snp_product), "signer", "vcek", "debug",
		                (int)o->is_debug);
		if (snp == NULL || json_object_set_new(root, "snp", snp) != 0) {
			json_decref(root);
			return CVM_E_NOMEM;
		}
	}
	text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	if (text == NULL)
		return CVM_E_NOMEM;
	r = sim_path(path, sizeof(path), dir, f_json);
	if (r == CVM_OK)
		r = cvm_file_write(path, text, strlen(text), 0644);
	free(text);
	return r;
}

/* ---- opening ------------------------------------------------------------- */

static int load_tdx(struct sim *s)
{
	struct cvm_mockpki_opts *o;
	char path[TEE_PATH_MAX];
	int r;

	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return CVM_E_NOMEM;
	mock_opts(o, s->created);
	r = sim_path(path, sizeof(path), s->dir, d_keys);
	if (r == CVM_OK)
		r = cvm_mockpki_load(o, path, &s->pki);
	free(o);
	if (r != CVM_OK)
		return r;
	r = sim_path(path, sizeof(path), s->dir, f_tdx_template);
	if (r != CVM_OK)
		return r;
	r = cvm_file_read(path, CVM_QUOTE_MAX, &s->template_quote, &s->template_len);
	if (r != CVM_OK)
		return r;
	r = cvm_quote_parse(s->template_quote, s->template_len, &s->template);
	if (r == CVM_OK && (s->template.tee != CVM_TEE_TDX || s->template.body_type != CVM_BODY_TD10))
		r = CVM_E_FORMAT;
	return r;
}

/* read_snp_template reads and parses the SNP template of the platform in
 * `dir` into `out` (whose signed_data is left empty: the bytes are gone). */
static int read_snp_template(const char *dir, struct cvm_snp_report *out)
{
	char path[TEE_PATH_MAX];
	uint8_t *raw = NULL;
	size_t len = 0;
	int r;

	r = sim_path(path, sizeof(path), dir, f_snp_template);
	if (r != CVM_OK)
		return r;
	r = cvm_file_read(path, CVM_SNP_REPORT_LEN, &raw, &len);
	if (r == CVM_E_TOO_LARGE)
		r = CVM_E_FORMAT;
	if (r != CVM_OK)
		return r;
	r = cvm_snp_report_parse(raw, len, out);
	free(raw);
	cvm_rd_init(&out->signed_data, NULL, 0);
	if (r == CVM_E_TRUNCATED || r == CVM_E_UNSUPPORTED)
		r = CVM_E_FORMAT;
	/* what init writes, and what the verifier needs to tell the chain */
	if (r == CVM_OK && (out->reserved_nonzero || out->signing_key != CVM_SNP_SIGNER_VCEK ||
	                    out->product == CVM_SNP_PRODUCT_UNKNOWN))
		r = CVM_E_FORMAT;
	return r;
}

/* load_amd loads the mock AMD PKI of the platform in `dir`, with a CRL
 * centred on `now` when `with_crl`. */
static int load_amd(const char *dir, enum cvm_snp_product product, int64_t now, bool with_crl,
                    struct cvm_mockamd **out)
{
	struct cvm_mockamd_opts *o;
	char path[TEE_PATH_MAX];
	int r;

	*out = NULL;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return CVM_E_NOMEM;
	amd_opts(o, product, now);
	o->with_crl = with_crl;
	r = sim_path(path, sizeof(path), dir, d_keys);
	if (r == CVM_OK)
		r = cvm_mockamd_load(o, path, out);
	free(o);
	return r;
}

static int load_snp(struct sim *s)
{
	int r;

	if (!s->has_snp) {
		cvm_debug("'%s' was made without an SEV-SNP platform", s->dir);
		return CVM_E_UNSUPPORTED;
	}
	r = read_snp_template(s->dir, &s->snp);
	if (r != CVM_OK)
		return r;
	/* reports need no CRL: the one in collateral/snp stays as it is */
	return load_amd(s->dir, s->snp.product, s->created, false, &s->amd);
}

int cvm_tee_open_sim(const char *dir, enum cvm_tee_platform platform, struct cvm_tee_dev **out)
{
	struct cvm_tee_dev *tee = NULL;
	struct sim *s = NULL;
	bool snp = platform == CVM_TEE_PLATFORM_SNP;
	size_t n;
	int r;

	*out = NULL;
	if (dir == NULL || (platform != CVM_TEE_PLATFORM_TDX && platform != CVM_TEE_PLATFORM_SNP))
		return CVM_E_INVAL;
	n = strlen(dir);
	if (n == 0 || n >= TEE_PATH_MAX - 64)
		return CVM_E_INVAL;
	tee = calloc(1, sizeof(*tee));
	s = calloc(1, sizeof(*s));
	if (tee == NULL || s == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(s->dir, dir, n + 1);
	r = read_json(dir, &s->created, &s->has_snp, NULL);
	if (r != CVM_OK)
		goto out;
	r = snp ? load_snp(s) : load_tdx(s);
	if (r != CVM_OK)
		goto out;
	tee->priv = s;
	s = NULL; /* transferred */
	tee->ops = snp ? &sim_snp_ops : &sim_tdx_ops;
	tee->info.platform = platform;
	tee->info.is_simulated = true;
	tee->info.interfaces = CVM_TEE_IF_SIMULATOR;
	(void)snprintf(tee->info.provider, sizeof(tee->info.provider), "cvmkit-sim");
	(void)snprintf(tee->info.description, sizeof(tee->info.description),
	               "SIMULATED %s (cvmkit simulator in %.180s): not hardware",
	               snp ? "AMD SEV-SNP" : "Intel TDX", dir);
	*out = tee;
	tee = NULL; /* transferred */
out:
	sim_free(s);
	cvm_tee_free(tee);
	return r;
}

/* ---- init ---------------------------------------------------------------- */

/* dir_prepare makes `dir` (mode 0700) or accepts an existing empty one. */
static int dir_prepare(const char *dir)
{
	struct stat st;
	char path[TEE_PATH_MAX];
	int r;

	if (mkdir(dir, 0700) == 0)
		return CVM_OK;
	if (errno != EEXIST)
		return CVM_E_SYSTEM;
	if (stat(dir, &st) != 0)
		return CVM_E_SYSTEM;
	if (!S_ISDIR(st.st_mode))
		return CVM_E_INVAL;
	/* An existing folder must hold nothing of a platform. */
	r = sim_path(path, sizeof(path), dir, f_json);
	if (r != CVM_OK)
		return r;
	if (access(path, F_OK) == 0 || rmdir(dir) != 0) {
		cvm_debug("'%s' exists and is not empty", dir);
		return CVM_E_INVAL;
	}
	/* It was empty: make it again with our mode. */
	return mkdir(dir, 0700) == 0 ? CVM_OK : CVM_E_SYSTEM;
}

static int sub_dir(const char *dir, const char *rel, unsigned mode)
{
	char path[TEE_PATH_MAX];
	int r;

	r = sim_path(path, sizeof(path), dir, rel);
	if (r != CVM_OK)
		return r;
	return mkdir(path, (mode_t)mode) == 0 ? CVM_OK : CVM_E_SYSTEM;
}

static int write_file(const char *dir, const char *rel, const void *p, size_t n, unsigned mode)
{
	char path[TEE_PATH_MAX];
	int r;

	r = sim_path(path, sizeof(path), dir, rel);
	if (r != CVM_OK)
		return r;
	return cvm_file_write(path, p, n, mode);
}

static int init_tdx(const char *dir, const struct cvm_tee_sim_opts *so)
{
	struct cvm_mockpki_opts *o = NULL;
	struct cvm_mockpki_quote_opts *q;
	struct cvm_mockpki *pki = NULL;
	uint8_t *quote = NULL;
	size_t quote_len = 0;
	char path[TEE_PATH_MAX];
	int r;

	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return CVM_E_NOMEM;
	mock_opts(o, so->now);
	/* The PCK certificate's (and the quote header's) PCE SVN: the mock TCB
	 * info's UpToDate level needs 11, its OutOfDate level 5. */
	if (so->tcb_out_of_date)
		o->pce_svn = SIM_PCE_SVN_OUT_OF_DATE;
	r = cvm_mockpki_new(o, &pki);
	if (r != CVM_OK)
		goto out;
	r = sim_path(path, sizeof(path), dir, d_keys);
	if (r == CVM_OK)
		r = cvm_mockpki_save_keys(pki, path);
	if (r != CVM_OK)
		goto out;
	r = sim_path(path, sizeof(path), dir, d_coll_tdx);
	if (r == CVM_OK)
		r = cvm_mockpki_write_collateral(pki, path);
	if (r != CVM_OK)
		goto out;
	/* The template: the defaults' TD body with this platform's MRTD,
	 * zero RTMRs and zero REPORTDATA. */
	q = &o->quote;
	memcpy(q->td.mr_td, so->mrtd, sizeof(q->td.mr_td));
	memcpy(q->td.mr_config_id, so->mr_config_id, sizeof(q->td.mr_config_id));
	memset(q->td.rtmr, 0, sizeof(q->td.rtmr));
	memset(q->td.report_data, 0, sizeof(q->td.report_data));
	q->is_debug = so->is_debug;
	r = cvm_mockpki_quote(pki, q, &quote, &quote_len);
	if (r == CVM_OK)
		r = write_file(dir, f_tdx_template, quote, quote_len, 0644);
out:
	free(quote);
	cvm_mockpki_free(pki);
	free(o);
	return r;
}

/* init_snp makes the SNP half: a mock AMD VCEK chain with a chip ID of its
 * own, its collateral, and the template report every later one copies: the
 * platform's MEASUREMENT, a guest POLICY the default cvm policy accepts (SMT
 * allowed, no debug unless asked, no migration agent), no ID block (zero
 * family and image IDs, key digests, host data), a report ID of its own,
 * the reported TCB the VCEK certifies and the chip ID it names. */
static int init_snp(const char *dir, const struct cvm_tee_sim_opts *so)
{
	struct cvm_mockamd_opts *o = NULL;
	struct cvm_mockamd_report_opts *q;
	struct cvm_mockamd *pki = NULL;
	uint8_t report[CVM_SNP_REPORT_LEN];
	char path[TEE_PATH_MAX];
	int r;

	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return CVM_E_NOMEM;
	amd_opts(o, so->snp_product, so->now);
	q = &o->report;
	r = cvm_random_bytes(o->hwid, o->hwid_len);
	if (r == CVM_OK)
		r = cvm_random_bytes(q->report_id, sizeof(q->report_id));
	if (r != CVM_OK)
		goto out;
	memset(q->chip_id, 0, sizeof(q->chip_id));
	memcpy(q->chip_id, o->hwid, o->hwid_len);
	q->guest_svn = 0;
	q->policy = CVM_SNP_POLICY_RESERVED_ONE | CVM_SNP_POLICY_SMT;
	if (so->is_debug)
		q->policy |= CVM_SNP_POLICY_DEBUG;
	memset(q->family_id, 0, sizeof(q->family_id));
	memset(q->image_id, 0, sizeof(q->image_id));
	memset(q->report_data, 0, sizeof(q->report_data));
	memcpy(q->measurement, so->snp_measurement, sizeof(q->measurement));
	memcpy(q->host_data, so->snp_host_data, sizeof(q->host_data));
	memset(q->id_key_digest, 0, sizeof(q->id_key_digest));
	memset(q->author_key_digest, 0, sizeof(q->author_key_digest));
	r = cvm_mockamd_new(o, &pki);
	if (r != CVM_OK)
		goto out;
	r = sim_path(path, sizeof(path), dir, d_keys);
	if (r == CVM_OK)
		r = cvm_mockamd_save_keys(pki, path);
	if (r == CVM_OK)
		r = sim_path(path, sizeof(path), dir, d_coll_snp);
	if (r == CVM_OK)
		r = cvm_mockamd_write_collateral(pki, path);
	if (r == CVM_OK)
		r = cvm_mockamd_report(pki, q, report);
	if (r == CVM_OK)
		r = write_file(dir, f_snp_template, report, sizeof(report), 0644);
out:
	cvm_mockamd_free(pki);
	free(o);
	return r;
}

int cvm_tee_sim_init(const char *dir, const struct cvm_tee_sim_opts *o)
{
	uint8_t rtmr[SIM_RTMR_LEN] = {0};
	int r;

	if (dir == NULL || dir[0] == '\0' || strlen(dir) >= TEE_PATH_MAX - 64 || o->now <= 0)
		return CVM_E_INVAL;
	if (o->with_snp && o->snp_product != CVM_SNP_PRODUCT_MILAN &&
	    o->snp_product != CVM_SNP_PRODUCT_GENOA && o->snp_product != CVM_SNP_PRODUCT_TURIN)
		return CVM_E_INVAL;
	r = dir_prepare(dir);
	if (r != CVM_OK)
		return r;
	r = sub_dir(dir, d_keys, 0700);
	if (r == CVM_OK)
		r = sub_dir(dir, d_coll, 0755);
	if (r == CVM_OK)
		r = sub_dir(dir, d_coll_tdx, 0755);
	if (r == CVM_OK && o->with_snp)
		r = sub_dir(dir, d_coll_snp, 0755);
	if (r == CVM_OK)
		r = sub_dir(dir, d_platform, 0755);
	if (r == CVM_OK)
		r = sub_dir(dir, d_state, 0755);
	if (r != CVM_OK)
		return r;
	r = init_tdx(dir, o);
	if (r == CVM_OK && o->with_snp)
		r = init_snp(dir, o);
	if (r != CVM_OK)
		return r;
	/* RTMR0..2 as the launch left them; RTMR3 (runtime events) at zero */
	memcpy(rtmr, o->rtmr_init, sizeof(o->rtmr_init));
	r = write_file(dir, f_rtmr, rtmr, sizeof(rtmr), 0644);
	if (r == CVM_OK)
		r = write_file(dir, f_lock, "", 0, 0600);
	if (r != CVM_OK)
		return r;
	/* last: a folder without sim.json is an unfinished init */
	return write_json(dir, o);
}

int cvm_tee_sim_refresh(const char *dir, int64_t now)
{
	struct cvm_mockpki_opts *o = NULL;
	struct cvm_mockpki *pki = NULL;
	struct cvm_mockamd *amd = NULL;
	struct cvm_snp_report *t = NULL;
	char path[TEE_PATH_MAX];
	int64_t created;
	bool has_snp;
	int r;

	if (dir == NULL || now <= 0)
		return CVM_E_INVAL;
	r = read_json(dir, &created, &has_snp, NULL);
	if (r != CVM_OK)
		return r;
	o = calloc(1, sizeof(*o));
	if (o == NULL)
		return CVM_E_NOMEM;
	mock_opts(o, now);
	r = sim_path(path, sizeof(path), dir, d_keys);
	if (r == CVM_OK)
		r = cvm_mockpki_load(o, path, &pki);
	if (r == CVM_OK)
		r = sim_path(path, sizeof(path), dir, d_coll_tdx);
	if (r == CVM_OK)
		r = cvm_mockpki_write_collateral(pki, path);
	cvm_mockpki_free(pki);
	free(o);
	if (r != CVM_OK || !has_snp)
		return r;
	/* SNP: the CRL is the one thing that expires within ten years */
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return CVM_E_NOMEM;
	r = read_snp_template(dir, t);
	if (r == CVM_OK)
		r = load_amd(dir, t->product, now, true, &amd);
	if (r == CVM_OK)
		r = sim_path(path, sizeof(path), dir, d_coll_snp);
	if (r == CVM_OK)
		r = cvm_mockamd_write_collateral(amd, path);
	cvm_mockamd_free(amd);
	free(t);
	return r;
}

/* ---- launch -------------------------------------------------------------- */

/* What a platform's keys/ and collateral folders may hold: init writes a
 * dozen files of a few KiB each, so more or larger is a damaged platform. */
#define SIM_COPY_FILE_MAX ((size_t)1024 * 1024)
#define SIM_COPY_FILES_MAX 64

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* copy_one copies the regular file `name` of `from` into `to` with its
 * mode. Its bytes may be a mock private key: they are wiped once written. */
static int copy_one(const char *from, const char *to, const char *name)
{
	char src[TEE_PATH_MAX], dst[TEE_PATH_MAX];
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	r = sim_path(src, sizeof(src), from, name);
	if (r == CVM_OK)
		r = sim_path(dst, sizeof(dst), to, name);
	if (r != CVM_OK)
		return r;
	if (lstat(src, &st) != 0)
		return CVM_E_SYSTEM;
	/* init writes only files here; a link could point anywhere */
	if (!S_ISREG(st.st_mode)) {
		cvm_debug("'%s' is not a regular file", src);
		return CVM_E_FORMAT;
	}
	r = cvm_file_read(src, SIM_COPY_FILE_MAX, &buf, &len);
	if (r == CVM_E_TOO_LARGE)
		r = CVM_E_FORMAT;
	if (r != CVM_OK)
		return r;
	r = cvm_file_write(dst, buf, len, (unsigned)(st.st_mode & 0777));
	cvm_freezero(buf, len);
	return r;
}

/* copy_files copies every file of the folder `rel` of the platform in
 * `from` into the same (existing) folder of `to`, byte for byte. */
static int copy_files(const char *from, const char *to, const char *rel)
{
	char src[TEE_PATH_MAX], dst[TEE_PATH_MAX];
	struct dirent *e;
	size_t count = 0;
	DIR *d;
	int r, saved;

	r = sim_path(src, sizeof(src), from, rel);
	if (r == CVM_OK)
		r = sim_path(dst, sizeof(dst), to, rel);
	if (r != CVM_OK)
		return r;
	d = opendir(src);
	if (d == NULL) {
		if (errno != ENOENT)
			return CVM_E_SYSTEM;
		cvm_debug("the platform has no %s", rel);
		return CVM_E_FORMAT;
	}
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (e == NULL) {
			r = errno != 0 ? CVM_E_SYSTEM : CVM_OK;
			break;
		}
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (++count > SIM_COPY_FILES_MAX) {
			cvm_debug("'%s' holds more than %d entries", src, SIM_COPY_FILES_MAX);
			r = CVM_E_FORMAT;
			break;
		}
		r = copy_one(src, dst, e->d_name);
		if (r != CVM_OK)
			break;
	}
	saved = errno;
	(void)closedir(d);
	errno = saved;
	return r;
}

/* launch_json gives the text of the launched folder's sim.json: the
 * platform's `root` (which it changes) with the launch's MRTD and SNP
 * MEASUREMENT, and a "launch" object naming the platform (its "created",
 * which the launch keeps: the mock PKIs are the platform's) and the
 * registers the host measured. */
static int launch_json(json_t *root, const struct sim *s, const struct cvm_tee_sim_launch *l,
                       const uint8_t mrtd[CVM_TEE_MR_LEN], const uint8_t meas[CVM_TEE_MR_LEN], char **out)
{
	static const char *const rtmr_names[3] = {"rtmr0", "rtmr1", "rtmr2"};
	char hex[2 * CVM_TEE_MR_LEN + 1];
	json_t *tdx, *launch;
	int bad = 0;

	*out = NULL;
	tdx = json_object_get(root, "tdx");
	if (!json_is_object(tdx))
		return CVM_E_FORMAT;
	cvm_hex_encode(mrtd, CVM_TEE_MR_LEN, hex);
	bad |= json_object_set_new(tdx, "mrtd", json_string(hex));
	if (s->has_snp) {
		cvm_hex_encode(meas, CVM_TEE_MR_LEN, hex);
		bad |= json_object_set_new(json_object_get(root, "snp"), "measurement", json_string(hex));
	}
	launch = json_object();
	if (launch == NULL)
		return CVM_E_NOMEM;
	bad |= json_object_set_new(launch, "platform", json_integer((json_int_t)s->created));
	for (size_t i = 0; i < 3; i++) {
		cvm_hex_encode(l->rtmr_init[i], sizeof(l->rtmr_init[i]), hex);
		bad |= json_object_set_new(launch, rtmr_names[i], json_string(hex));
	}
	cvm_hex_encode(l->mr_config_id, sizeof(l->mr_config_id), hex);
	bad |= json_object_set_new(launch, "mrconfigid", json_string(hex));
	if (s->has_snp) {
		cvm_hex_encode(l->snp_host_data, sizeof(l->snp_host_data), hex);
		bad |= json_object_set_new(launch, "snp_host_data", json_string(hex));
	}
	/* replaces the platform's own "launch" when it was launched itself */
	bad |= json_object_set_new(root, "launch", launch);
	if (bad != 0)
		return CVM_E_NOMEM;
	*out = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	return *out != NULL ? CVM_OK : CVM_E_NOMEM;
}

/* launch_tdx writes the launch's TDX template: the platform's, with the
 * launch's MR_TD and MR_CONFIG_ID, signed again by the platform's PCK key. */
static int launch_tdx(const struct sim *s, const char *dir, const uint8_t mrtd[CVM_TEE_MR_LEN],
                      const uint8_t mr_config_id[CVM_TEE_MR_LEN])
{
	struct cvm_mockpki_quote_opts *q;
	uint8_t *quote = NULL;
	size_t quote_len = 0;
	int r;

	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return CVM_E_NOMEM;
	r = tdx_opts_of(&s->template, q);
	if (r != CVM_OK)
		goto out;
	memcpy(q->td.mr_td, mrtd, sizeof(q->td.mr_td));
	memcpy(q->td.mr_config_id, mr_config_id, sizeof(q->td.mr_config_id));
	memset(q->td.rtmr, 0, sizeof(q->td.rtmr));
	memset(q->td.report_data, 0, sizeof(q->td.report_data));
	r = cvm_mockpki_quote(s->pki, q, &quote, &quote_len);
	if (r == CVM_OK)
		r = write_file(dir, f_tdx_template, quote, quote_len, 0644);
out:
	free(quote);
	free(q);
	return r;
}

/* launch_snp writes the launch's SNP template: the platform's, with the
 * launch's MEASUREMENT and HOST_DATA, signed again by the platform's VCEK. */
static int launch_snp(const struct sim *s, const char *dir, const uint8_t meas[CVM_TEE_MR_LEN],
                      const uint8_t host_data[32])
{
	struct cvm_mockamd_report_opts q;
	uint8_t report[CVM_SNP_REPORT_LEN];
	int r;

	snp_opts_of(&s->snp, &q);
	memcpy(q.measurement, meas, sizeof(q.measurement));
	memcpy(q.host_data, host_data, sizeof(q.host_data));
	memset(q.report_data, 0, sizeof(q.report_data));
	r = cvm_mockamd_report(s->amd, &q, report);
	if (r == CVM_OK)
		r = write_file(dir, f_snp_template, report, sizeof(report), 0644);
	return r;
}

int cvm_tee_sim_launch(const char *platform_dir, const char *dir, const struct cvm_tee_sim_launch *l)
{
	uint8_t rtmr[SIM_RTMR_LEN] = {0}, mrtd[CVM_TEE_MR_LEN], meas[CVM_TEE_MR_LEN] = {0};
	struct sim *s = NULL;
	json_t *root = NULL;
	char *text = NULL;
	size_t n;
	int r, saved;

	if (platform_dir == NULL || dir == NULL || l == NULL || dir[0] == '\0' ||
	    strlen(dir) >= TEE_PATH_MAX - 64)
		return CVM_E_INVAL;
	n = strlen(platform_dir);
	if (n == 0 || n >= TEE_PATH_MAX - 64)
		return CVM_E_INVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CVM_E_NOMEM;
	/* Everything of the platform is read, and its keys loaded, before the
	 * new folder is made: a platform that will not do leaves nothing. */
	memcpy(s->dir, platform_dir, n + 1);
	r = read_json(platform_dir, &s->created, &s->has_snp, &root);
	if (r == CVM_OK)
		r = load_tdx(s);
	if (r == CVM_OK && s->has_snp)
		r = load_snp(s);
	if (r != CVM_OK)
		goto out;
	memcpy(mrtd, all_zero(l->mrtd, sizeof(l->mrtd)) ? s->template.body.td.mr_td : l->mrtd, sizeof(mrtd));
	if (s->has_snp)
		memcpy(meas,
		       all_zero(l->snp_measurement, sizeof(l->snp_measurement)) ? s->snp.measurement
		                                                                : l->snp_measurement,
		       sizeof(meas));
	r = launch_json(root, s, l, mrtd, meas, &text);
	if (r != CVM_OK)
		goto out;

	r = dir_prepare(dir);
	if (r == CVM_OK)
		r = sub_dir(dir, d_keys, 0700);
	if (r == CVM_OK)
		r = sub_dir(dir, d_coll, 0755);
	if (r == CVM_OK)
		r = sub_dir(dir, d_coll_tdx, 0755);
	if (r == CVM_OK && s->has_snp)
		r = sub_dir(dir, d_coll_snp, 0755);
	if (r == CVM_OK)
		r = sub_dir(dir, d_platform, 0755);
	if (r == CVM_OK)
		r = sub_dir(dir, d_state, 0755);
	if (r == CVM_OK)
		r = copy_files(platform_dir, dir, d_keys);
	if (r == CVM_OK)
		r = copy_files(platform_dir, dir, d_coll_tdx);
	if (r == CVM_OK && s->has_snp)
		r = copy_files(platform_dir, dir, d_coll_snp);
	if (r == CVM_OK)
		r = launch_tdx(s, dir, mrtd, l->mr_config_id);
	if (r == CVM_OK && s->has_snp)
		r = launch_snp(s, dir, meas, l->snp_host_data);
	if (r != CVM_OK)
		goto out;
	/* RTMR0..2 as the launch left them; RTMR3 (runtime events) at zero */
	memcpy(rtmr, l->rtmr_init, sizeof(l->rtmr_init));
	r = write_file(dir, f_rtmr, rtmr, sizeof(rtmr), 0644);
	if (r == CVM_OK)
		r = write_file(dir, f_lock, "", 0, 0600);
	/* last: a folder without sim.json is an unfinished launch */
	if (r == CVM_OK)
		r = write_file(dir, f_json, text, strlen(text), 0644);
out:
	saved = errno; /* for CVM_E_SYSTEM; the frees below may touch it */
	free(text);
	json_decref(root);
	sim_free(s);
	errno = saved;
	return r;
}

/* ---- telling simulated evidence apart ------------------------------------ */

bool cvm_tee_is_simulated_root(const uint8_t *der, size_t len)
{
	return cvm_mockpki_der_is_simulated(der, len);
}

bool cvm_tee_evidence_is_simulated(const uint8_t *quote, size_t quote_len, const uint8_t *chain,
                                   size_t chain_len)
{
	struct cvm_quote *q;
	bool sim = false;
	int r;

	/* a DER certificate (SEQUENCE) or PEM text */
	if (chain != NULL && chain_len != 0 &&
	    (chain[0] == 0x30 ? cvm_mockpki_der_is_simulated(chain, chain_len)
	                      : cvm_mockpki_pem_has_simulated(chain, chain_len)))
		return true;
	if (quote == NULL || quote_len == 0)
		return false;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return false;
	r = cvm_quote_parse(quote, quote_len, q);
	/* a quote with trailing bytes is still complete enough to label */
	if (r == CVM_OK || (r == CVM_E_FORMAT && q->trailing_garbage))
		sim = cvm_mockpki_pem_has_simulated(q->pck_chain_pem.p, q->pck_chain_pem.len);
	free(q);
	return sim;
}

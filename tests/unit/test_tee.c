/* lib/tee: the TDX and SEV-SNP backends against a fake kernel over a
 * temporary tree (configfs-tsm report entries with their generation
 * counter, the tdx_guest measurements folder, /dev ioctls with the kernel's
 * structure layouts written out independently here), and the simulated TEE
 * end to end: init, quote, verification against the mock root only,
 * RTMR extension and its replay, concurrent extenders, key file modes, and
 * VMs launched on one platform (verified with the platform's collateral). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/ioctl.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <cvmkit/amd.h>
#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/file.h>
#include <cvmkit/policy.h>
#include <cvmkit/quote.h>
#include <cvmkit/snp.h>
#include <cvmkit/tee.h>
#include <cvmkit/verify.h>

#include "tee/tee_int.h"
#include "sim/mockamd_lib.h"
#include "sim/mockpki_lib.h"
#include "testpki.h"
#include "vectors.h"

#define NOW ((int64_t)1767225600) /* 2026-01-01 */

/* ---- the kernel ABI, as the uapi headers define it ----------------------- */

struct k_tdx_report_req {
	uint8_t reportdata[64];
	uint8_t tdreport[1024];
};
struct k_tdx_extend_rtmr_req {
	uint8_t data[48];
	uint8_t index;
};
struct k_snp_report_req {
	uint8_t user_data[64];
	uint32_t vmpl;
	uint8_t rsvd[28];
};
struct k_snp_guest_request_ioctl {
	uint8_t msg_version;
	uint64_t req_data;
	uint64_t resp_data;
	uint64_t exitinfo2;
};
struct k_snp_ext_report_req {
	struct k_snp_report_req data;
	uint64_t certs_address;
	uint32_t certs_len;
};
#define K_TDX_CMD_GET_REPORT0 _IOWR('T', 1, struct k_tdx_report_req)
#define K_TDX_CMD_EXTEND_RTMR _IOW('T', 3, struct k_tdx_extend_rtmr_req)
#define K_TDX_CMD_EXTEND_RTMR_OLD _IOR('T', 3, struct k_tdx_extend_rtmr_req)
#define K_SNP_GET_REPORT _IOWR('S', 0x0, struct k_snp_guest_request_ioctl)
#define K_SNP_GET_EXT_REPORT _IOWR('S', 0x2, struct k_snp_guest_request_ioctl)

/* ---- a fake kernel ------------------------------------------------------- */

struct fake {
	char root[64];
	const char *provider;    /* "tdx_guest" or "sev_guest" */
	struct cvm_mockpki *pki; /* TDX outblobs are real mock quotes */
	uint8_t mrtd[48];
	uint8_t rtmr[4][48];
	uint8_t measurement[48]; /* SNP */
	unsigned long gen;       /* generation of the (single) live entry */
	uint8_t inblob[64];
	bool inblob_set;
	unsigned privlevel, privlevel_floor;
	bool privlevel_written;
	/* faults */
	unsigned race_rounds; /* outblob reads that see another writer */
	int outblob_errno;
	int inblob_errno;
	bool outblob_empty;
	size_t snp_report_len; /* 0: 1184 */
	bool no_extend_ioctl;
	bool no_ext_report;
	uint32_t fw_status;
	size_t certs_len; /* SNP certificate table size */
	/* counters */
	unsigned outblob_reads, mkdirs, ioctls, ext_rounds;
};

static int write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	size_t w;

	if (f == NULL)
		return -1;
	w = fwrite(p, 1, n, f);
	return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char path[512];

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(write_bytes(path, text, strlen(text)), 0);
}

static void write_gen(const char *entry, unsigned long gen)
{
	char num[32];

	(void)snprintf(num, sizeof(num), "%lu\n", gen);
	write_text(entry, "generation", num);
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void dir_of(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash != NULL ? (size_t)(slash - path) : 0;

	assert_true(n < cap);
	memcpy(out, path, n);
	out[n] = '\0';
}

static void rtmr_extend(uint8_t reg[48], const uint8_t d[48])
{
	uint8_t cat[96];

	memcpy(cat, reg, 48);
	memcpy(cat + 48, d, 48);
	cvm_sha384(cat, sizeof(cat), reg);
}

static void fake_after_mkdir(void *ctx, const char *path)
{
	struct fake *f = ctx;

	f->mkdirs++;
	f->gen = 0;
	f->inblob_set = false;
	f->privlevel_written = false;
	{
		char prov[64];

		(void)snprintf(prov, sizeof(prov), "%s%s", f->provider,
		               ends_with(f->provider, "\n") ? "" : "\n");
		write_text(path, "provider", prov);
	}
	if (strcmp(f->provider, "sev_guest") == 0) {
		char num[16];

		(void)snprintf(num, sizeof(num), "%u\n", f->privlevel_floor);
		write_text(path, "privlevel_floor", num);
		write_text(path, "privlevel", "");
	}
	write_text(path, "inblob", "");
	write_gen(path, 0);
}

static void fake_after_write(void *ctx, const char *path, int *err)
{
	struct fake *f = ctx;
	char entry[512];
	uint8_t *buf = NULL;
	size_t len = 0;

	assert_int_equal(cvm_file_read(path, 4096, &buf, &len), CVM_OK);
	dir_of(path, entry, sizeof(entry));
	if (ends_with(path, "/inblob")) {
		if (f->inblob_errno != 0) {
			*err = f->inblob_errno;
		} else if (len > 64) {
			*err = EINVAL;
		} else {
			memset(f->inblob, 0, sizeof(f->inblob));
			memcpy(f->inblob, buf, len);
			f->inblob_set = true;
			write_gen(entry, ++f->gen);
		}
	} else if (ends_with(path, "/privlevel")) {
		unsigned v = (unsigned)strtoul((const char *)buf, NULL, 10);

		if (v < f->privlevel_floor || v > 3) {
			*err = EINVAL;
		} else {
			f->privlevel = v;
			f->privlevel_written = true;
			write_gen(entry, ++f->gen);
		}
	} else if (strstr(path, "/measurements/rtmr") != NULL) {
		unsigned i = (unsigned)(path[strlen(path) - strlen("N:sha384")] - '0');

		/* the kernel refuses any write but a whole 48 bytes at offset 0 */
		if (len != 48 || i > 3)
			*err = EINVAL;
		else
			rtmr_extend(f->rtmr[i], buf);
	} else {
		*err = EACCES;
	}
	free(buf);
}

/* snp_report builds what the fake SEV firmware signs (unsigned here). */
static void snp_report(const struct fake *f, const uint8_t rd[64], uint8_t out[1184])
{
	memset(out, 0, 1184);
	out[0] = 3; /* version */
	out[0x30] = (uint8_t)f->privlevel;
	memcpy(out + 0x50, rd, 64);
	memcpy(out + 0x90, f->measurement, 48);
	memset(out + 0xC0, 0xdd, 32); /* host_data */
}

static void fake_before_read(void *ctx, const char *path, int *err)
{
	struct fake *f = ctx;
	char entry[512];

	if (strstr(path, "/measurements/") != NULL) {
		const char *name = strrchr(path, '/') + 1;
		const uint8_t *v = f->mrtd;

		if (strncmp(name, "rtmr", 4) == 0)
			v = f->rtmr[name[4] - '0'];
		assert_int_equal(write_bytes(path, v, 48), 0);
		return;
	}
	if (!ends_with(path, "/outblob") && !ends_with(path, "/auxblob"))
		return;
	dir_of(path, entry, sizeof(entry));
	if (!f->inblob_set) {
		*err = EINVAL; /* the kernel: no inblob, no report */
		return;
	}
	if (ends_with(path, "/auxblob")) {
		uint8_t *certs = calloc(1, f->certs_len + 1);

		assert_non_null(certs);
		memset(certs, 0xce, f->certs_len);
		assert_int_equal(write_bytes(path, certs, f->certs_len), 0);
		free(certs);
		return;
	}
	f->outblob_reads++;
	if (f->outblob_errno != 0) {
		*err = f->outblob_errno;
		return;
	}
	if (f->race_rounds > 0) {
		/* someone else wrote into our entry while we read */
		f->race_rounds--;
		write_gen(entry, ++f->gen);
	}
	if (f->outblob_empty) {
		assert_int_equal(write_bytes(path, "", 0), 0);
	} else if (strcmp(f->provider, "tdx_guest") == 0) {
		struct cvm_mockpki_quote_opts q = cvm_mockpki_opts_of(f->pki)->quote;
		uint8_t *quote = NULL;
		size_t quote_len = 0;

		memcpy(q.td.report_data, f->inblob, 64);
		memcpy(q.td.mr_td, f->mrtd, 48);
		memcpy(q.td.rtmr, f->rtmr, sizeof(q.td.rtmr));
		assert_int_equal(cvm_mockpki_quote(f->pki, &q, &quote, &quote_len), CVM_OK);
		assert_int_equal(write_bytes(path, quote, quote_len), 0);
		free(quote);
	} else {
		uint8_t rep[1184];

		snp_report(f, f->inblob, rep);
		assert_int_equal(write_bytes(path, rep, f->snp_report_len != 0 ? f->snp_report_len : 1184),
		                 0);
	}
}

static int fake_ioctl(void *ctx, int fd, unsigned long req, void *arg)
{
	struct fake *f = ctx;

	(void)fd;
	f->ioctls++;
	if (req == K_TDX_CMD_GET_REPORT0) {
		struct k_tdx_report_req *r = arg;

		memset(r->tdreport, 0, sizeof(r->tdreport));
		memcpy(r->tdreport + 128, r->reportdata, 64);
		memcpy(r->tdreport + 512 + 16, f->mrtd, 48);
		memcpy(r->tdreport + 512 + 16 + 4 * 48, f->rtmr, sizeof(f->rtmr));
		return 0;
	}
	if (req == K_TDX_CMD_EXTEND_RTMR || req == K_TDX_CMD_EXTEND_RTMR_OLD) {
		const struct k_tdx_extend_rtmr_req *r = arg;

		if (f->no_extend_ioctl || req == K_TDX_CMD_EXTEND_RTMR) {
			/* this fake carries only the older _IOR number, unless none */
			if (f->no_extend_ioctl || req == K_TDX_CMD_EXTEND_RTMR) {
				errno = ENOTTY;
				return -1;
			}
		}
		if (r->index > 3) {
			errno = EINVAL;
			return -1;
		}
		rtmr_extend(f->rtmr[r->index], r->data);
		return 0;
	}
	if (req == K_SNP_GET_EXT_REPORT || req == K_SNP_GET_REPORT) {
		struct k_snp_guest_request_ioctl *g = arg;
		const struct k_snp_report_req *rr = (const void *)(uintptr_t)g->req_data;
		uint8_t *resp = (uint8_t *)(uintptr_t)g->resp_data;
		uint32_t size = (uint32_t)(f->snp_report_len != 0 ? f->snp_report_len : 1184);
		uint8_t rep[1184];

		if (g->msg_version != 1) {
			errno = EINVAL;
			return -1;
		}
		if (req == K_SNP_GET_EXT_REPORT) {
			struct k_snp_ext_report_req *x = (void *)(uintptr_t)g->req_data;

			if (f->no_ext_report) {
				errno = ENOTTY;
				return -1;
			}
			f->ext_rounds++;
			if (x->certs_len < f->certs_len) {
				x->certs_len = (uint32_t)f->certs_len;
				g->exitinfo2 = (uint64_t)1 << 32; /* SNP_GUEST_VMM_ERR_INVALID_LEN */
				errno = EIO;
				return -1;
			}
			memset((void *)(uintptr_t)x->certs_address, 0xce, f->certs_len);
			x->certs_len = (uint32_t)f->certs_len;
		}
		f->privlevel = rr->vmpl;
		snp_report(f, rr->user_data, rep);
		memset(resp, 0, 4000);
		memcpy(resp, &f->fw_status, 4);
		memcpy(resp + 4, &size, 4);
		memcpy(resp + 32, rep, sizeof(rep));
		return 0;
	}
	errno = ENOTTY;
	return -1;
}

static void mkdirs(const char *root, const char *rel)
{
	char path[512], *p;

	(void)snprintf(path, sizeof(path), "%s%s", root, rel);
	for (p = path + strlen(root) + 1; *p != '\0'; p++) {
		if (*p == '/') {
			*p = '\0';
			(void)mkdir(path, 0700);
			*p = '/';
		}
	}
	(void)mkdir(path, 0700);
}

static void touch(const char *root, const char *rel)
{
	char path[512];

	(void)snprintf(path, sizeof(path), "%s%s", root, rel);
	assert_int_equal(write_bytes(path, "", 0), 0);
}

enum { T_TSM = 1, T_TDX_DEV = 2, T_TDX_MR = 4, T_SEV_DEV = 8 };

static void fake_setup(struct fake *f, const char *provider, unsigned tree)
{
	memset(f, 0, sizeof(*f));
	(void)snprintf(f->root, sizeof(f->root), "/tmp/cvm-tee-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	f->provider = provider;
	for (size_t i = 0; i < sizeof(f->mrtd); i++)
		f->mrtd[i] = (uint8_t)(0xa0 + i);
	memset(f->measurement, 0x5e, sizeof(f->measurement));
	if (tree & T_TSM)
		mkdirs(f->root, TEE_TSM_REPORT_DIR);
	if (tree & (T_TDX_DEV | T_SEV_DEV))
		mkdirs(f->root, "/dev");
	if (tree & T_TDX_DEV)
		touch(f->root, TEE_TDX_GUEST_DEV);
	if (tree & T_SEV_DEV)
		touch(f->root, TEE_SEV_GUEST_DEV);
	if (tree & T_TDX_MR) {
		mkdirs(f->root, TEE_TDX_MR_DIR);
		touch(f->root, TEE_TDX_MR_DIR "/mrtd:sha384");
		for (int i = 0; i < 4; i++) {
			char rel[128];

			(void)snprintf(rel, sizeof(rel), "%s/rtmr%d:sha384", TEE_TDX_MR_DIR, i);
			touch(f->root, rel);
		}
	}
	if (strcmp(provider, "tdx_guest") == 0) {
		struct cvm_mockpki_opts o;

		cvm_mockpki_opts_init(&o, CVM_TEE_TDX, NOW);
		assert_int_equal(cvm_mockpki_new(&o, &f->pki), CVM_OK);
	}
}

static struct cvm_tee_sys fake_sys(struct fake *f)
{
	struct cvm_tee_sys s = {
	    .after_mkdir = fake_after_mkdir,
	    .after_write = fake_after_write,
	    .before_read = fake_before_read,
	    .ioctl = fake_ioctl,
	    .ctx = f,
	};

	return s;
}

static void rm_rf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	char sub[1024];

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

static void fake_teardown(struct fake *f)
{
	cvm_mockpki_free(f->pki);
	rm_rf(f->root);
}

/* report_dir_entries counts what is left under the configfs-tsm report dir. */
static size_t report_dir_entries(const struct fake *f)
{
	char path[512];
	DIR *d;
	struct dirent *e;
	size_t n = 0;

	(void)snprintf(path, sizeof(path), "%s%s", f->root, TEE_TSM_REPORT_DIR);
	d = opendir(path);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static void pattern(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + 13 * i);
}

/* verify_mock checks a TDX quote against the fake kernel's mock PKI. */
static int verify_mock(const struct cvm_mockpki *pki, const uint8_t *quote, size_t len, bool with_root,
                       struct cvm_dcap_result *res)
{
	struct cvm_dcap_collateral *coll = NULL;
	struct cvm_policy pol;
	struct cvm_report rep;
	const uint8_t *root;
	size_t root_len;
	int r;

	assert_int_equal(cvm_testpki_collateral(pki, &coll), CVM_OK);
	cvm_mockpki_root_der(pki, &root, &root_len);
	cvm_policy_init(&pol);
	cvm_report_init(&rep);
	r = cvm_verify_quote(quote, len, coll, with_root ? root : NULL, with_root ? root_len : 0, NOW, &pol,
	                     &rep, res);
	cvm_dcap_collateral_free(coll);
	return r;
}

/* ---- detection ----------------------------------------------------------- */

static void detect_finds_each_platform_and_nothing_on_a_bare_tree(void **state)
{
	static const struct {
		const char *provider;
		unsigned tree;
		int r;
		enum cvm_tee_platform p;
		unsigned ifaces;
	} cases[] = {
	    {"tdx_guest", T_TDX_DEV, CVM_OK, CVM_TEE_PLATFORM_TDX, CVM_TEE_IF_TDX_GUEST},
	    {"tdx_guest", T_TDX_MR | T_TSM, CVM_OK, CVM_TEE_PLATFORM_TDX,
	     CVM_TEE_IF_TDX_MEASUREMENTS | CVM_TEE_IF_TSM_REPORT},
	    {"sev_guest", T_SEV_DEV, CVM_OK, CVM_TEE_PLATFORM_SNP, CVM_TEE_IF_SEV_GUEST},
	    {"sev_guest", T_TSM, CVM_OK, CVM_TEE_PLATFORM_SNP, CVM_TEE_IF_TSM_REPORT},
	    {"tdx_guest", T_TSM, CVM_OK, CVM_TEE_PLATFORM_TDX, CVM_TEE_IF_TSM_REPORT},
	    {"arm_cca_guest\n", T_TSM, CVM_E_UNSUPPORTED, 0, 0},
	    {"tdx_guest", 0, CVM_E_UNSUPPORTED, 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f;
		struct cvm_tee_sys sys;
		struct cvm_tee_dev *tee = NULL;
		struct cvm_tee_info info;
		int r;

		fake_setup(&f, cases[i].provider, cases[i].tree);
		sys = fake_sys(&f);
		r = cvm_tee_detect_sys(f.root, &sys, &tee);
		assert_int_equal(r, cases[i].r);
		if (r == CVM_OK) {
			cvm_tee_info(tee, &info);
			assert_int_equal(info.platform, cases[i].p);
			assert_int_equal(info.interfaces, cases[i].ifaces);
			assert_false(info.is_simulated);
		} else {
			assert_null(tee);
		}
		if (cases[i].tree & T_TSM)
			assert_int_equal(report_dir_entries(&f), 0);
		cvm_tee_free(tee);
		fake_teardown(&f);
	}
}

/* ---- TDX ----------------------------------------------------------------- */

static void tdx_quote_through_configfs_binds_report_data_and_verifies(void **state)
{
	struct fake f;
	struct cvm_tee_sys sys;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_dcap_result res;
	struct cvm_quote q;
	uint8_t rd[64];

	(void)state;
	fake_setup(&f, "tdx_guest", T_TSM | T_TDX_DEV);
	sys = fake_sys(&f);
	assert_int_equal(cvm_tee_open_sys(f.root, CVM_TEE_PLATFORM_TDX, &sys, &tee), CVM_OK);
	pattern(rd, sizeof(rd), 7);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	assert_int_equal(ev.platform, CVM_TEE_PLATFORM_TDX);
	assert_false(ev.is_simulated);
	assert_null(ev.aux);
	assert_int_equal(cvm_quote_parse(ev.data, ev.data_len, &q), CVM_OK);
	assert_memory_equal(q.body.td.report_data, rd, 64);
	assert_memory_equal(q.body.td.mr_td, f.mrtd, 48);
	assert_int_equal(verify_mock(f.pki, ev.data, ev.data_len, true, &res), CVM_OK);
	assert_int_not_equal(verify_mock(f.pki, ev.data, ev.data_len, false, &res), CVM_OK);
	assert_int_equal(f.mkdirs, 1);
	assert_int_equal(f.outblob_reads, 1);
	assert_int_equal(report_dir_entries(&f), 0);
	cvm_tee_evidence_cleanup(&ev);
	assert_null(ev.data);
	cvm_tee_free(tee);
	fake_teardown(&f);
}

static void tsm_racing_writer_is_retried_then_reported_busy(void **state)
{
	(void)state;
	for (unsigned races = 0; races <= CVM_TEE_RETRIES; races++) {
		struct fake f;
		struct cvm_tee_sys sys;
		struct cvm_tee_dev *tee = NULL;
		struct cvm_tee_evidence ev;
		uint8_t rd[64];
		int r;

		fake_setup(&f, "tdx_guest", T_TSM);
		f.race_rounds = races;
		sys = fake_sys(&f);
		assert_int_equal(cvm_tee_open_sys(f.root, CVM_TEE_PLATFORM_TDX, &sys, &tee), CVM_OK);
		pattern(rd, sizeof(rd), (uint8_t)races);
		errno = 0;
		r = cvm_tee_quote(tee, rd, &ev);
		if (races < CVM_TEE_RETRIES) {
			struct cvm_quote q;

			assert_int_equal(r, CVM_OK);
			assert_int_equal(f.outblob_reads, races + 1);
			assert_int_equal(cvm_quote_parse(ev.data, ev.data_len, &q), CVM_OK);
			assert_memory_equal(q.body.td.report_data, rd, 64);
		} else {
			assert_int_equal(r, CVM_E_SYSTEM);
			assert_int_equal(errno, EBUSY);
			assert_null(ev.data);
			assert_int_equal(f.outblob_reads, CVM_TEE_RETRIES);
		}
		assert_int_equal(report_dir_entries(&f), 0);
		cvm_tee_evidence_cleanup(&ev);
		cvm_tee_free(tee);
		fake_teardown(&f);
	}
}

static void tsm_error_paths_fail_cleanly_and_remove_the_entry(void **state)
{
	enum { WRONG_PROVIDER, OUTBLOB_EIO, OUTBLOB_EMPTY, INBLOB_EBUSY, N_CASES };

	(void)state;
	for (int c = 0; c < N_CASES; c++) {
		struct fake f;
		struct cvm_tee_sys sys;
		struct cvm_tee_dev *tee = NULL;
		struct cvm_tee_evidence ev;
		uint8_t rd[64] = {1};
		int r;

		fake_setup(&f, "tdx_guest", T_TSM | T_TDX_DEV);
		sys = fake_sys(&f);
		assert_int_equal(cvm_tee_open_sys(f.root, CVM_TEE_PLATFORM_TDX, &sys, &tee), CVM_OK);
		if (c == WRONG_PROVIDER)
			f.provider = "sev_guest";
		if (c == OUTBLOB_EIO)
			f.outblob_errno = EIO;
		if (c == OUTBLOB_EMPTY)
			f.outblob_empty = true;
		if (c == INBLOB_EBUSY)
			f.inblob_errno = EBUSY;
		errno = 0;
		r = cvm_tee_quote(tee, rd, &ev);
		switch (c) {
		case WRONG_PROVIDER:
			assert_int_equal(r, CVM_E_UNSUPPORTED);
			break;
		case OUTBLOB_EIO:
			assert_int_equal(r, CVM_E_SYSTEM);
			assert_int_equal(errno, EIO);
			break;
		case OUTBLOB_EMPTY:
			assert_int_equal(r, CVM_E_FORMAT);
			break;
		default:
			assert_int_equal(r, CVM_E_SYSTEM);
			assert_int_equal(errno, EBUSY);
			break;
		}
		assert_null(ev.data);
		assert_int_equal(report_dir_entries(&f), 0);
		cvm_tee_free(tee);
		fake_teardown(&f);
	}
}

static void tdx_extend_through_measurements_folder_replays(void **state)
{
	struct fake f;
	struct cvm_tee_sys sys;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_measurements m;
	uint8_t d[48], expect[48] = {0};

	(void)state;
	fake_setup(&f, "tdx_guest", T_TDX_MR | T_TDX_DEV);
	sys = fake_sys(&f);
	assert_int_equal(cvm_tee_open_sys(f.root, CVM_TEE_PLATFORM_TDX, &sys, &tee), CVM_OK);
	for (uint8_t i = 0; i < 3; i++) {
		pattern(d, sizeof(d), (uint8_t)(0x30 + i));
		assert_int_equal(cvm_tee_extend(tee, 3, d), CVM_OK);
		rtmr_extend(expect, d);
	}
	assert_int_equal(f.ioctls, 0); /* the folder, not the device */
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_int_equal(m.platform, CVM_TEE_PLATFORM_TDX);
	assert_memory_equal(m.rtmr[3], expect, 48);
	assert_memory_equal(m.mrtd, f.mrtd, 48);
	assert_memory_equal(m.rtmr[2], (uint8_t[48]){0}, 48);
	assert_int_equal(cvm_tee_extend(tee, 4, d), CVM_E_INVAL);
	cvm_tee_free(tee);

	/* a register file that is not 48 bytes is malformed */
	{
		char path[512];

		f.rtmr[1][0] = 1;
		assert_int_equal(cvm_tee_open_sys(f.root, CVM_TEE_PLATFORM_TDX, NULL, &tee), CVM_OK);
		(void)snprintf(path, sizeof(path), "%s%s/rtmr1:sha384", f.root, TEE_TDX_MR_DIR);
		assert_int_equal(write_bytes(path, "short", 5), 0);
		assert_int_equal(cvm_tee_measurements(tee, &m), CVM_E_FORMAT);
		cvm_tee_free(tee);
	}
	fake_teardown(&f);
}

static void tdx_extend_and_registers_through_the_device(void **state)
{
	struct fake f;
	struct cvm_tee_sys sys;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_measurements m;
	uint8_t d[48], expect[48] = {0};

	(void)state;
	fake_setup(&f, "tdx_guest", T_TDX_DEV);
	sys = fake_sys(&f);
	assert_int_equal(cvm_tee_open_sys(f.root, CVM_TEE_PLATFORM_TDX, &sys, &tee), CVM_OK);
	pattern(d, sizeof(d), 0x77);
	/* the fake has only the older _IOR number: the backend falls back */
	assert_int_equal(cvm_tee_extend(tee, 2, d), CVM_OK);
	rtmr_extend(expect, d);
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_memory_equal(m.rtmr[2], expect, 48);
	assert_memory_equal(m.mrtd, f.mrtd, 48);
	/* no configfs-tsm: no quotes */
	{
		struct cvm_tee_evidence ev;
		uint8_t rd[64] = {0};

		assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_E_UNSUPPORTED);
	}
	f.no_extend_ioctl = true;
	assert_int_equal(cvm_tee_extend(tee, 3, d), CVM_E_UNSUPPORTED);
	cvm_tee_free(tee);
	fake_teardown(&f);
}

static void tdx_registers_from_a_quote_when_only_configfs(void **state)
{
	struct fake f;
	struct cvm_tee_sys sys;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_measurements m;
	uint8_t d[48];

	(void)state;
	fake_setup(&f, "tdx_guest", T_TSM);
	pattern(f.rtmr[1], 48, 0x11);
	sys = fake_sys(&f);
	assert_int_equal(cvm_tee_open_sys(f.root, CVM_TEE_PLATFORM_TDX, &sys, &tee), CVM_OK);
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_memory_equal(m.mrtd, f.mrtd, 48);
	assert_memory_equal(m.rtmr[1], f.rtmr[1], 48);
	memset(d, 1, sizeof(d));
	assert_int_equal(cvm_tee_extend(tee, 3, d), CVM_E_UNSUPPORTED);
	assert_int_equal(cvm_tee_set_privlevel(tee, 0), CVM_E_UNSUPPORTED);
	cvm_tee_free(tee);
	fake_teardown(&f);
}

/* ---- SEV-SNP ------------------------------------------------------------- */

static void snp_report_through_configfs_with_privlevel_and_certificates(void **state)
{
	struct fake f;
	struct cvm_tee_sys sys;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_tee_measurements m;
	uint8_t rd[64], d[48] = {0};

	(void)state;
	fake_setup(&f, "sev_guest", T_TSM);
	f.certs_len = 3000;
	f.privlevel_floor = 1;
	sys = fake_sys(&f);
	assert_int_equal(cvm_tee_open_sys(f.root, CVM_TEE_PLATFORM_SNP, &sys, &tee), CVM_OK);
	pattern(rd, sizeof(rd), 3);
	/* below the floor: refused before the kernel is asked */
	assert_int_equal(cvm_tee_set_privlevel(tee, 0), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_E_INVAL);
	assert_int_equal(cvm_tee_set_privlevel(tee, 4), CVM_E_INVAL);
	assert_int_equal(cvm_tee_set_privlevel(tee, 2), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	assert_true(f.privlevel_written);
	assert_int_equal(f.privlevel, 2);
	assert_int_equal(ev.data_len, 1184);
	assert_memory_equal(ev.data + 0x50, rd, 64);
	assert_int_equal(ev.data[0x30], 2);
	assert_int_equal(ev.aux_len, 3000);
	assert_int_equal(ev.aux[2999], 0xce);
	cvm_tee_evidence_cleanup(&ev);
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_memory_equal(m.measurement, f.measurement, 48);
	assert_int_equal(m.host_data[0], 0xdd);
	assert_int_equal(cvm_tee_extend(tee, 3, d), CVM_E_UNSUPPORTED);
	/* a report of the wrong size is malformed */
	f.snp_report_len = 1000;
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_E_FORMAT);
	assert_int_equal(report_dir_entries(&f), 0);
	cvm_tee_free(tee);
	fake_teardown(&f);
}

static void snp_report_through_the_device(void **state)
{
	struct fake f;
	struct cvm_tee_sys sys;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	uint8_t rd[64];

	(void)state;
	fake_setup(&f, "sev_guest", T_SEV_DEV);
	sys = fake_sys(&f);
	assert_int_equal(cvm_tee_open_sys(f.root, CVM_TEE_PLATFORM_SNP, &sys, &tee), CVM_OK);
	pattern(rd, sizeof(rd), 9);

	/* certificates larger than the first buffer: one more round */
	f.certs_len = 20000;
	assert_int_equal(cvm_tee_set_privlevel(tee, 1), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	assert_int_equal(f.ext_rounds, 2);
	assert_int_equal(ev.data_len, 1184);
	assert_memory_equal(ev.data + 0x50, rd, 64);
	assert_int_equal(f.privlevel, 1);
	assert_int_equal(ev.aux_len, 20000);
	cvm_tee_evidence_cleanup(&ev);

	/* no certificates at all */
	f.certs_len = 0;
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	assert_null(ev.aux);
	cvm_tee_evidence_cleanup(&ev);

	/* a host that wants an absurd buffer */
	f.certs_len = 1u << 20;
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_E_TOO_LARGE);
	f.certs_len = 0;

	/* an old kernel: no extended reports */
	f.no_ext_report = true;
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	assert_null(ev.aux);
	assert_memory_equal(ev.data + 0x50, rd, 64);
	cvm_tee_evidence_cleanup(&ev);

	/* firmware error status; a wrong report size */
	f.fw_status = 0x16;
	errno = 0;
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_E_SYSTEM);
	assert_int_equal(errno, EIO);
	f.fw_status = 0;
	f.snp_report_len = 1200;
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_E_FORMAT);
	assert_null(ev.data);
	cvm_tee_free(tee);
	fake_teardown(&f);
}

/* ---- the simulator ------------------------------------------------------- */

struct sim_fixture {
	char dir[128];
	char root[64]; /* parent, removed at the end */
};

static void sim_make(struct sim_fixture *s, bool with_snp)
{
	struct cvm_tee_sim_opts o;

	(void)snprintf(s->root, sizeof(s->root), "/tmp/cvm-sim-XXXXXX");
	assert_non_null(mkdtemp(s->root));
	(void)snprintf(s->dir, sizeof(s->dir), "%s/p", s->root);
	cvm_tee_sim_opts_init(&o, NOW);
	memset(o.mrtd, 0x42, sizeof(o.mrtd));
	memset(o.snp_measurement, 0x5a, sizeof(o.snp_measurement));
	o.with_snp = with_snp;
	assert_int_equal(cvm_tee_sim_init(s->dir, &o), CVM_OK);
}

static int sim_verify(const char *dir, const uint8_t *quote, size_t len, bool with_root, int64_t at,
                      struct cvm_report *rep)
{
	struct cvm_dcap_collateral *coll = NULL;
	struct cvm_dcap_result res;
	struct cvm_policy pol;
	char path[256], what[256];
	uint8_t *root = NULL;
	size_t root_len = 0;
	int r;

	(void)snprintf(path, sizeof(path), "%s/collateral/tdx", dir);
	assert_int_equal(cvm_dcap_collateral_load_dir(path, &coll, what, sizeof(what)), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx/intel_sgx_root_ca.der", dir);
	assert_int_equal(cvm_file_read(path, CVM_DCAP_CERT_MAX, &root, &root_len), CVM_OK);
	assert_true(cvm_tee_is_simulated_root(root, root_len));
	cvm_policy_init(&pol);
	cvm_report_init(rep);
	r = cvm_verify_quote(quote, len, coll, with_root ? root : NULL, with_root ? root_len : 0, at, &pol,
	                     rep, &res);
	cvm_dcap_collateral_free(coll);
	free(root);
	return r;
}

static void sim_quote_verifies_only_against_its_own_root(void **state)
{
	struct sim_fixture s;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_tee_info info;
	struct cvm_report rep;
	struct cvm_quote q;
	uint8_t rd[64];

	(void)state;
	sim_make(&s, false);
	/* made without its SEV-SNP half */
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_SNP, &tee), CVM_E_UNSUPPORTED);
	assert_null(tee);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	cvm_tee_info(tee, &info);
	assert_true(info.is_simulated);
	assert_int_equal(info.interfaces, CVM_TEE_IF_SIMULATOR);
	assert_non_null(strstr(info.description, "SIMULATED"));
	pattern(rd, sizeof(rd), 0x21);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	assert_true(ev.is_simulated);
	assert_int_equal(cvm_quote_parse(ev.data, ev.data_len, &q), CVM_OK);
	assert_int_equal(q.version, 4);
	assert_int_equal(q.tee, CVM_TEE_TDX);
	assert_memory_equal(q.body.td.report_data, rd, 64);
	assert_memory_equal(q.body.td.mr_td, (uint8_t[48]){[0 ... 47] = 0x42}, 48);
	assert_true(cvm_tee_evidence_is_simulated(ev.data, ev.data_len, NULL, 0));

	assert_int_equal(sim_verify(s.dir, ev.data, ev.data_len, true, NOW + 3600, &rep), CVM_OK);
	/* Intel's built-in root: the chain does not end there */
	assert_int_not_equal(sim_verify(s.dir, ev.data, ev.data_len, false, NOW + 3600, &rep), CVM_OK);
	assert_non_null(rep.failed);
	/* every bit flip in the signed header and body breaks it */
	for (size_t i = 0; i < CVM_QUOTE_HEADER_LEN + CVM_TD10_REPORT_LEN; i += 37) {
		ev.data[i] ^= 0x10;
		assert_int_not_equal(sim_verify(s.dir, ev.data, ev.data_len, true, NOW + 3600, &rep), CVM_OK);
		ev.data[i] ^= 0x10;
	}
	/* a year later the collateral has expired; refresh re-signs it */
	assert_int_not_equal(sim_verify(s.dir, ev.data, ev.data_len, true, NOW + 400 * 86400, &rep), CVM_OK);
	assert_int_equal(cvm_tee_sim_refresh(s.dir, NOW + 390 * 86400), CVM_OK);
	assert_int_equal(sim_verify(s.dir, ev.data, ev.data_len, true, NOW + 400 * 86400, &rep), CVM_OK);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
	rm_rf(s.root);
}

static void sim_rtmr_extensions_replay_and_show_in_quotes(void **state)
{
	struct sim_fixture s;
	struct cvm_tee_dev *tee = NULL, *again = NULL;
	struct cvm_tee_measurements m;
	struct cvm_tee_evidence ev;
	struct cvm_quote q;
	uint8_t d[48], expect[48] = {0}, rd[64] = {0};

	(void)state;
	sim_make(&s, false);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	for (uint8_t i = 0; i < 5; i++) {
		cvm_sha384(&i, 1, d);
		assert_int_equal(cvm_tee_extend(tee, 3, d), CVM_OK);
		rtmr_extend(expect, d);
	}
	assert_int_equal(cvm_tee_extend(tee, 4, d), CVM_E_INVAL);
	/* another handle (another process) sees the same registers */
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_TDX, &again), CVM_OK);
	assert_int_equal(cvm_tee_measurements(again, &m), CVM_OK);
	assert_memory_equal(m.rtmr[3], expect, 48);
	assert_memory_equal(m.rtmr[0], (uint8_t[48]){0}, 48);
	assert_memory_equal(m.mrtd, (uint8_t[48]){[0 ... 47] = 0x42}, 48);
	assert_int_equal(cvm_tee_quote(again, rd, &ev), CVM_OK);
	assert_int_equal(cvm_quote_parse(ev.data, ev.data_len, &q), CVM_OK);
	assert_memory_equal(q.body.td.rtmr[3], expect, 48);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(again);
	cvm_tee_free(tee);
	rm_rf(s.root);
}

static void sim_concurrent_extenders_lose_no_extension(void **state)
{
	enum { CHILDREN = 4, EACH = 10 };
	struct sim_fixture s;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_measurements m;
	uint8_t d[48], expect[48] = {0};
	pid_t pids[CHILDREN];

	(void)state;
	sim_make(&s, false);
	memset(d, 0xab, sizeof(d));
	for (int c = 0; c < CHILDREN; c++) {
		pids[c] = fork();
		assert_true(pids[c] >= 0);
		if (pids[c] == 0) {
			struct cvm_tee_dev *t = NULL;
			int bad = cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_TDX, &t) != CVM_OK;

			for (int i = 0; i < EACH && !bad; i++)
				bad = cvm_tee_extend(t, 3, d) != CVM_OK;
			cvm_tee_free(t);
			_exit(bad);
		}
	}
	for (int c = 0; c < CHILDREN; c++) {
		int st = 0;

		assert_int_equal(waitpid(pids[c], &st, 0), pids[c]);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	/* with one digest the order does not matter, only the count */
	for (int i = 0; i < CHILDREN * EACH; i++)
		rtmr_extend(expect, d);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_memory_equal(m.rtmr[3], expect, 48);
	cvm_tee_free(tee);
	rm_rf(s.root);
}

static void sim_keys_are_private_and_init_refuses_a_used_folder(void **state)
{
	static const char *const keys[] = {"root", "pck_ca", "pck", "tcb_signer"};
	struct sim_fixture s;
	struct cvm_tee_sim_opts o;
	struct cvm_tee_dev *tee = NULL;
	struct stat st;
	char path[256];

	(void)state;
	sim_make(&s, false);
	assert_int_equal(stat(s.dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s/keys/%s.key", s.dir, keys[i]);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	cvm_tee_sim_opts_init(&o, NOW);
	o.with_snp = false;
	assert_int_equal(cvm_tee_sim_init(s.dir, &o), CVM_E_INVAL);
	/* a key others can read is refused */
	(void)snprintf(path, sizeof(path), "%s/keys/pck.key", s.dir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_E_INVAL);
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	cvm_tee_free(tee);
	/* a damaged register file */
	(void)snprintf(path, sizeof(path), "%s/state/rtmr", s.dir);
	assert_int_equal(write_bytes(path, "x", 1), 0);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	{
		uint8_t d[48] = {0};
		struct cvm_tee_measurements m;

		assert_int_equal(cvm_tee_extend(tee, 3, d), CVM_E_FORMAT);
		assert_int_equal(cvm_tee_measurements(tee, &m), CVM_E_FORMAT);
	}
	cvm_tee_free(tee);
	/* not a simulator folder */
	assert_int_equal(cvm_tee_open_sim(s.root, CVM_TEE_PLATFORM_TDX, &tee), CVM_E_FORMAT);
	assert_null(tee);
	rm_rf(s.root);
}

static void simulated_marker_is_on_mock_roots_only(void **state)
{
	struct cvm_mockpki_opts o;
	struct cvm_mockpki *pki = NULL;
	const uint8_t *der;
	size_t der_len;
	uint8_t *quote = NULL, *intel = NULL;
	size_t quote_len = 0, intel_len = 0;

	(void)state;
	cvm_mockpki_opts_init(&o, CVM_TEE_TDX, NOW);
	assert_int_equal(cvm_mockpki_new(&o, &pki), CVM_OK);
	cvm_mockpki_root_der(pki, &der, &der_len);
	assert_true(cvm_tee_is_simulated_root(der, der_len));
	/* one DER certificate exactly: a truncated or extended one is not */
	assert_false(cvm_tee_is_simulated_root(der, der_len - 1));
	assert_int_equal(cvm_mockpki_quote(pki, NULL, &quote, &quote_len), CVM_OK);
	assert_true(cvm_tee_evidence_is_simulated(quote, quote_len, NULL, 0));
	free(quote);
	cvm_mockpki_free(pki);

	intel = vector_read("tdx/dcapqvl-tdx-v4-uptodate/intel_sgx_root_ca.der", &intel_len);
	assert_false(cvm_tee_is_simulated_root(intel, intel_len));
	free(intel);
	quote = vector_read("tdx/dcapqvl-tdx-v4-uptodate/quote.bin", &quote_len);
	assert_false(cvm_tee_evidence_is_simulated(quote, quote_len, NULL, 0));
	free(quote);
}

/* ---- the simulated SEV-SNP platform --------------------------------------- */

/* flip_stride is 1 (every bit) unless CVM_TEST_FLIP_STRIDE says otherwise;
 * every 61st bit under valgrind (CVM_UNDER_VALGRIND), as test_dcap.c. */
static size_t flip_stride(void)
{
	const char *s = getenv("CVM_TEST_FLIP_STRIDE");
	long v = s != NULL ? strtol(s, NULL, 10) : getenv("CVM_UNDER_VALGRIND") != NULL ? 61 : 1;

	return v >= 1 && v <= 1000 ? (size_t)v : 1;
}

static uint64_t le_at(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static X509 *x509_der_file(const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	const unsigned char *p;
	X509 *x;

	assert_int_equal(cvm_file_read(path, 64 * 1024, &buf, &len), CVM_OK);
	p = buf;
	x = d2i_X509(NULL, &p, (long)len);
	assert_non_null(x);
	free(buf);
	return x;
}

/* ext_octets gives the contents of the OCTET STRING of extension `oid`. */
static const ASN1_OCTET_STRING *ext_octets(X509 *x, const char *oid)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int i;

	assert_non_null(obj);
	i = X509_get_ext_by_OBJ(x, obj, -1);
	ASN1_OBJECT_free(obj);
	assert_true(i >= 0);
	return X509_EXTENSION_get_data(X509_get_ext(x, i));
}

/* ext_int decodes an extension holding one DER INTEGER (AMD's SPLs). */
static long ext_int(X509 *x, const char *oid)
{
	const ASN1_OCTET_STRING *os = ext_octets(x, oid);
	const unsigned char *p = ASN1_STRING_get0_data(os);
	ASN1_INTEGER *i = d2i_ASN1_INTEGER(NULL, &p, ASN1_STRING_length(os));
	long v;

	assert_non_null(i);
	v = ASN1_INTEGER_get(i);
	ASN1_INTEGER_free(i);
	return v;
}

/* report_sig_ok checks the report's signature with OpenSSL alone: r and s
 * little-endian at 0x2A0 and 0x2E8, ECDSA P-384 with SHA-384 over bytes
 * 0x000..0x29F, under the VCEK's key. */
static bool report_sig_ok(X509 *vcek, const uint8_t *report)
{
	uint8_t be[2][48], *der = NULL;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	BIGNUM *r, *s;
	int der_len;
	bool ok;

	assert_non_null(sig);
	assert_non_null(ctx);
	for (size_t i = 0; i < 48; i++) {
		be[0][i] = report[0x2A0 + 47 - i];
		be[1][i] = report[0x2E8 + 47 - i];
	}
	r = BN_bin2bn(be[0], 48, NULL);
	s = BN_bin2bn(be[1], 48, NULL);
	assert_int_equal(ECDSA_SIG_set0(sig, r, s), 1);
	der_len = i2d_ECDSA_SIG(sig, &der);
	assert_true(der_len > 0);
	ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha384(), NULL, X509_get0_pubkey(vcek)) == 1 &&
	     EVP_DigestVerify(ctx, der, (size_t)der_len, report, 0x2A0) == 1;
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	ECDSA_SIG_free(sig);
	return ok;
}

/* snp_verify verifies an SNP report with the platform's collateral under
 * the default (strict) policy, anchored in DIR/collateral/snp/ark.pem or,
 * without `with_root`, in AMD's built-in ARKs. */
static int snp_verify(const char *dir, const uint8_t *report, size_t len, bool with_root, int64_t at,
                      struct cvm_report *rep, struct cvm_amd_result *res)
{
	struct cvm_amd_collateral *c = NULL;
	struct cvm_policy pol;
	char path[256], what[64];
	int r;

	(void)snprintf(path, sizeof(path), "%s/collateral/snp", dir);
	assert_int_equal(cvm_amd_collateral_load_dir(path, &c, what, sizeof(what)), CVM_OK);
	cvm_policy_init(&pol);
	cvm_report_init(rep);
	/* ark.pem as the root: the verifier takes DER or PEM */
	r = cvm_verify_snp_report(report, len, c, with_root ? c->ark : NULL, with_root ? c->ark_len : 0, at,
	                          &pol, rep, res);
	cvm_amd_collateral_free(c);
	return r;
}

static void sim_snp_report_is_abi_v3_bound_to_the_vcek_and_verifies_only_against_its_ark(void **state)
{
	static const uint8_t measurement[48] = {[0 ... 47] = 0x5a};
	struct sim_fixture s;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_tee_measurements m;
	struct cvm_tee_info info;
	struct cvm_amd_result res;
	struct cvm_report rep;
	uint8_t rd[64], d[48] = {0}, *rpt;
	const ASN1_OCTET_STRING *hwid;
	char path[256];
	X509 *vcek;

	(void)state;
	sim_make(&s, true);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_SNP, &tee), CVM_OK);
	cvm_tee_info(tee, &info);
	assert_int_equal(info.platform, CVM_TEE_PLATFORM_SNP);
	assert_true(info.is_simulated);
	assert_int_equal(info.interfaces, CVM_TEE_IF_SIMULATOR);
	assert_non_null(strstr(info.description, "SIMULATED AMD SEV-SNP"));
	pattern(rd, sizeof(rd), 0x33);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	assert_int_equal(ev.platform, CVM_TEE_PLATFORM_SNP);
	assert_true(ev.is_simulated);
	assert_null(ev.aux);
	assert_int_equal(ev.data_len, 1184);
	rpt = ev.data;

	/* the ABI's layout, read at its offsets without our parser */
	assert_int_equal(le_at(rpt + 0x000, 4), 3);        /* VERSION */
	assert_int_equal(le_at(rpt + 0x004, 4), 0);        /* GUEST_SVN */
	assert_int_equal(le_at(rpt + 0x008, 8), 0x30000);  /* POLICY: bit 17, SMT; no DEBUG, no MIGRATE_MA */
	assert_int_equal(le_at(rpt + 0x030, 4), 0);        /* VMPL */
	assert_int_equal(le_at(rpt + 0x034, 4), 1);        /* SIGNATURE_ALGO: ECDSA P-384 SHA-384 */
	assert_int_equal(le_at(rpt + 0x048, 4), 0);        /* KEY_INFO: VCEK, chip key not masked */
	assert_true(all_bytes(rpt + 0x04C, 4, 0));         /* reserved */
	assert_memory_equal(rpt + 0x050, rd, 64);          /* REPORT_DATA */
	assert_memory_equal(rpt + 0x090, measurement, 48); /* MEASUREMENT */
	assert_true(all_bytes(rpt + 0x0C0, 32 + 48 + 48, 0)); /* HOST_DATA, ID and author key digests */
	assert_false(all_bytes(rpt + 0x140, 32, 0));          /* REPORT_ID: random */
	assert_true(all_bytes(rpt + 0x160, 32, 0xff));        /* REPORT_ID_MA: no migration agent */
	assert_int_equal(rpt[0x188], 0x19);                   /* CPUID: Milan */
	assert_int_equal(rpt[0x189], 0x01);
	assert_true(all_bytes(rpt + 0x18B, 0x1A0 - 0x18B, 0));
	assert_int_equal(rpt[0x1EB], 0);
	assert_int_equal(rpt[0x1EF], 0);
	assert_true(all_bytes(rpt + 0x1F8, 0x2A0 - 0x1F8, 0)); /* no mitigation vectors before v5 */
	assert_true(all_bytes(rpt + 0x2A0 + 48, 24, 0));       /* r zero-extended to 72 bytes */
	assert_true(all_bytes(rpt + 0x2E8 + 48, 24, 0));
	assert_true(all_bytes(rpt + 0x330, 1184 - 0x330, 0));
	/* TCB fields all the reported one; the reported TCB is what the VCEK
	 * certifies (Milan: bootloader byte 0, tee 1, snp 6, microcode 7) and
	 * the chip ID is its hwID */
	(void)snprintf(path, sizeof(path), "%s/collateral/snp/vcek.der", s.dir);
	vcek = x509_der_file(path);
	assert_int_equal(le_at(rpt + 0x038, 8), le_at(rpt + 0x180, 8));
	assert_int_equal(le_at(rpt + 0x1E0, 8), le_at(rpt + 0x180, 8));
	assert_int_equal(le_at(rpt + 0x1F0, 8), le_at(rpt + 0x180, 8));
	assert_int_equal(rpt[0x180], ext_int(vcek, CVM_AMD_OID_BL_SPL));
	assert_int_equal(rpt[0x181], ext_int(vcek, CVM_AMD_OID_TEE_SPL));
	assert_true(all_bytes(rpt + 0x182, 4, 0));
	assert_int_equal(rpt[0x186], ext_int(vcek, CVM_AMD_OID_SNP_SPL));
	assert_int_equal(rpt[0x187], ext_int(vcek, CVM_AMD_OID_UCODE_SPL));
	hwid = ext_octets(vcek, CVM_AMD_OID_HWID);
	assert_int_equal(ASN1_STRING_length(hwid), 64);
	assert_memory_equal(rpt + 0x1A0, ASN1_STRING_get0_data(hwid), 64);
	assert_true(report_sig_ok(vcek, rpt));

	/* verified by AMD's rules against the platform's ARK, with the strict
	 * default policy; rejected against AMD's own ARKs */
	assert_int_equal(snp_verify(s.dir, rpt, 1184, true, NOW + 3600, &rep, &res), CVM_OK);
	assert_true(res.authentic);
	assert_false(res.root_builtin);
	assert_int_equal(res.product, CVM_SNP_PRODUCT_MILAN);
	assert_memory_equal(res.report.measurement, measurement, 48);
	assert_int_equal(snp_verify(s.dir, rpt, 1184, false, NOW + 3600, &rep, &res), CVM_E_CHAIN);
	assert_string_equal(rep.failed->name, "ark");
	/* the report carries no certificate: only the collateral tells */
	assert_false(cvm_tee_evidence_is_simulated(rpt, 1184, NULL, 0));

	/* one byte short or long is not a report */
	assert_int_not_equal(snp_verify(s.dir, rpt, 1183, true, NOW + 3600, &rep, &res), CVM_OK);
	{
		uint8_t *longer = calloc(1, 1185);

		assert_non_null(longer);
		memcpy(longer, rpt, 1184);
		assert_int_not_equal(snp_verify(s.dir, longer, 1185, true, NOW + 3600, &rep, &res), CVM_OK);
		free(longer);
	}

	/* registers: MEASUREMENT and HOST_DATA of the template; no RTMRs */
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_int_equal(m.platform, CVM_TEE_PLATFORM_SNP);
	assert_memory_equal(m.measurement, measurement, 48);
	assert_true(all_bytes(m.host_data, sizeof(m.host_data), 0));
	assert_int_equal(cvm_tee_extend(tee, 3, d), CVM_E_UNSUPPORTED);

	/* the VMPL asked for is the one reported, and the default policy
	 * wants VMPL 0 */
	assert_int_equal(cvm_tee_set_privlevel(tee, 2), CVM_OK);
	cvm_tee_evidence_cleanup(&ev);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	assert_int_equal(le_at(ev.data + 0x030, 4), 2);
	assert_true(report_sig_ok(vcek, ev.data));
	assert_int_equal(snp_verify(s.dir, ev.data, ev.data_len, true, NOW + 3600, &rep, &res), CVM_E_POLICY);
	assert_true(res.authentic);
	assert_string_equal(rep.failed->name, "policy.vmpl");

	/* a year on, the CRL has expired; refresh re-signs it */
	assert_int_not_equal(snp_verify(s.dir, ev.data, ev.data_len, true, NOW + 400 * 86400, &rep, &res),
	                     CVM_OK);
	assert_string_equal(rep.failed->name, "crl");
	assert_int_equal(cvm_tee_sim_refresh(s.dir, NOW + 390 * 86400), CVM_OK);
	assert_int_equal(snp_verify(s.dir, ev.data, ev.data_len, true, NOW + 400 * 86400, &rep, &res),
	                 CVM_E_POLICY);
	assert_true(res.authentic);

	X509_free(vcek);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
	rm_rf(s.root);
}

static void sim_snp_bit_flips_never_verify(void **state)
{
	struct sim_fixture s;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_amd_collateral *c = NULL;
	struct cvm_amd_verified *ver = NULL;
	struct cvm_amd_result res;
	struct cvm_report rep;
	struct cvm_policy pol;
	uint8_t rd[64];
	char path[256], what[64];
	size_t stride = flip_stride(), flips = 0;

	(void)state;
	sim_make(&s, true);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_SNP, &tee), CVM_OK);
	pattern(rd, sizeof(rd), 0x71);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	(void)snprintf(path, sizeof(path), "%s/collateral/snp", s.dir);
	assert_int_equal(cvm_amd_collateral_load_dir(path, &c, what, sizeof(what)), CVM_OK);
	assert_int_equal(
	    cvm_amd_chain_authenticate(c, CVM_SNP_SIGNER_VCEK, c->ark, c->ark_len, NOW, NULL, &ver), CVM_OK);
	cvm_policy_init(&pol);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_snp_report_warm(ver, ev.data, ev.data_len, NOW, &pol, &rep, &res),
	                 CVM_OK);
	/* every bit of the report: the signed bytes, r, s and the reserved
	 * rest of the signature field */
	for (size_t bit = 0; bit < 8 * ev.data_len; bit += stride) {
		ev.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		cvm_report_init(&rep);
		if (cvm_verify_snp_report_warm(ver, ev.data, ev.data_len, NOW, &pol, &rep, &res) == CVM_OK)
			fail_msg("a flip of bit %zu of byte 0x%zx still verifies", bit % 8, bit / 8);
		/* not even authentic: no flip leaves only the policy to object */
		if (res.authentic)
			fail_msg("a flip of bit %zu of byte 0x%zx is still authentic", bit % 8, bit / 8);
		ev.data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		flips++;
	}
	assert_true(flips >= 8 * ev.data_len / stride);
	cvm_report_init(&rep);
	assert_int_equal(cvm_verify_snp_report_warm(ver, ev.data, ev.data_len, NOW, &pol, &rep, &res),
	                 CVM_OK);
	cvm_amd_verified_free(ver);
	cvm_amd_collateral_free(c);
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
	rm_rf(s.root);
}

static void sim_snp_keys_template_and_debug(void **state)
{
	static const char *const keys[] = {"ark", "ask", "vcek"};
	static const char *const files[] = {"ark.pem",  "ask.pem",        "vcek.der",
	                                    "vcek.pem", "cert_chain.pem", "crl.der"};
	struct sim_fixture s;
	struct cvm_tee_sim_opts o;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev;
	struct cvm_amd_result res;
	struct cvm_report rep;
	struct stat st;
	uint8_t rd[64] = {0}, *buf = NULL;
	size_t len = 0;
	char path[256];

	(void)state;
	sim_make(&s, true);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s/keys/%s.key", s.dir, keys[i]);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 0777, 0600);
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s/collateral/snp/%s", s.dir, files[i]);
		assert_int_equal(stat(path, &st), 0);
		assert_true(st.st_size > 0);
	}
	/* the ARK carries the marker, in ark.pem and in cert_chain.pem; the
	 * VCEK does not */
	(void)snprintf(path, sizeof(path), "%s/collateral/snp/ark.pem", s.dir);
	assert_int_equal(cvm_file_read(path, 64 * 1024, &buf, &len), CVM_OK);
	assert_true(cvm_tee_evidence_is_simulated(NULL, 0, buf, len));
	free(buf);
	(void)snprintf(path, sizeof(path), "%s/collateral/snp/cert_chain.pem", s.dir);
	assert_int_equal(cvm_file_read(path, 64 * 1024, &buf, &len), CVM_OK);
	assert_true(cvm_tee_evidence_is_simulated(NULL, 0, buf, len));
	free(buf);
	(void)snprintf(path, sizeof(path), "%s/collateral/snp/vcek.der", s.dir);
	assert_int_equal(cvm_file_read(path, 64 * 1024, &buf, &len), CVM_OK);
	assert_false(cvm_tee_evidence_is_simulated(NULL, 0, buf, len));
	free(buf);

	/* a key others can read is refused */
	(void)snprintf(path, sizeof(path), "%s/keys/vcek.key", s.dir);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_SNP, &tee), CVM_E_INVAL);
	assert_null(tee);
	assert_int_equal(chmod(path, 0600), 0);
	/* a key that is not the certificate's */
	(void)snprintf(path, sizeof(path), "%s/keys/ask.key", s.dir);
	{
		char other[256];
		uint8_t *k = NULL;
		size_t klen = 0;

		(void)snprintf(other, sizeof(other), "%s/keys/ark.key", s.dir);
		assert_int_equal(cvm_file_read(path, 64 * 1024, &buf, &len), CVM_OK);
		assert_int_equal(cvm_file_read(other, 64 * 1024, &k, &klen), CVM_OK);
		assert_int_equal(cvm_file_write(path, k, klen, 0600), CVM_OK);
		assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_SNP, &tee), CVM_E_FORMAT);
		assert_int_equal(cvm_file_write(path, buf, len, 0600), CVM_OK);
		free(k);
		free(buf);
	}
	/* a damaged template */
	(void)snprintf(path, sizeof(path), "%s/platform/snp_template.report", s.dir);
	assert_int_equal(cvm_file_read(path, 64 * 1024, &buf, &len), CVM_OK);
	assert_int_equal(cvm_file_write(path, buf, len - 1, 0644), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_SNP, &tee), CVM_E_FORMAT);
	assert_int_equal(cvm_file_write(path, buf, len, 0644), CVM_OK);
	free(buf);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_SNP, &tee), CVM_OK);
	cvm_tee_free(tee);
	rm_rf(s.root);

	/* --debug sets POLICY.DEBUG, which the default policy rejects; Turin
	 * lays the TCB out its own way and certifies an 8-byte hwID */
	(void)snprintf(s.root, sizeof(s.root), "/tmp/cvm-sim-XXXXXX");
	assert_non_null(mkdtemp(s.root));
	(void)snprintf(s.dir, sizeof(s.dir), "%s/p", s.root);
	cvm_tee_sim_opts_init(&o, NOW);
	o.is_debug = true;
	o.snp_product = CVM_SNP_PRODUCT_TURIN;
	assert_int_equal(cvm_tee_sim_init(s.dir, &o), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(s.dir, CVM_TEE_PLATFORM_SNP, &tee), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	assert_true((le_at(ev.data + 0x08, 8) & CVM_SNP_POLICY_DEBUG) != 0);
	assert_int_equal(ev.data[0x188], 0x1a);
	assert_true(all_bytes(ev.data + 0x1A0 + 8, 56, 0));
	assert_int_equal(snp_verify(s.dir, ev.data, ev.data_len, true, NOW + 60, &rep, &res), CVM_E_POLICY);
	assert_true(res.authentic);
	assert_int_equal(res.product, CVM_SNP_PRODUCT_TURIN);
	assert_true(res.reported_tcb.has_fmc);
	assert_string_equal(rep.failed->name, "policy.debug");
	cvm_tee_evidence_cleanup(&ev);
	cvm_tee_free(tee);
	/* an unknown product is refused before anything is made */
	o.snp_product = CVM_SNP_PRODUCT_UNKNOWN;
	(void)snprintf(path, sizeof(path), "%s/q", s.root);
	assert_int_equal(cvm_tee_sim_init(path, &o), CVM_E_INVAL);
	assert_int_not_equal(stat(path, &st), 0);
	rm_rf(s.root);
}

/* ---- launching VMs on one simulated platform ------------------------------ */

/* file_bytes reads DIR/REL (at most 64 KiB) into a new buffer. */
static uint8_t *file_bytes(const char *dir, const char *rel, size_t *len)
{
	char path[256];
	uint8_t *buf = NULL;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, rel);
	assert_int_equal(cvm_file_read(path, 64 * 1024, &buf, len), CVM_OK);
	return buf;
}

/* same_file is true when DIR_A/REL and DIR_B/REL hold the same bytes. */
static bool same_file(const char *a, const char *b, const char *rel)
{
	size_t la = 0, lb = 0;
	uint8_t *pa = file_bytes(a, rel, &la), *pb = file_bytes(b, rel, &lb);
	bool same = la == lb && memcmp(pa, pb, la) == 0;

	free(pa);
	free(pb);
	return same;
}

/* read_snp_bytes parses the SNP template of the platform in `dir` (its
 * signed_data is left empty: the bytes are freed). */
static int read_snp_bytes(const char *dir, struct cvm_snp_report *out)
{
	size_t n = 0;
	uint8_t *raw = file_bytes(dir, "platform/snp_template.report", &n);
	int r = cvm_snp_report_parse(raw, n, out);

	free(raw);
	cvm_rd_init(&out->signed_data, NULL, 0);
	return r;
}

/* launch_quote makes a TDX quote over `rd` in the launched folder `dir`. */
static void launch_quote(const char *dir, const uint8_t rd[64], struct cvm_tee_evidence *ev,
                         struct cvm_quote *q)
{
	struct cvm_tee_dev *tee = NULL;

	assert_int_equal(cvm_tee_open_sim(dir, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, ev), CVM_OK);
	cvm_tee_free(tee);
	assert_int_equal(cvm_quote_parse(ev->data, ev->data_len, q), CVM_OK);
}

static void sim_launch_quotes_its_measurements_under_the_platforms_pki(void **state)
{
	static const char *const kept[] = {"platform/tdx_template.quote", "platform/snp_template.report",
	                                   "state/rtmr", "sim.json"};
	static const char *const copied[] = {"keys/pck.key",
	                                     "keys/root.pem",
	                                     "keys/vcek.key",
	                                     "collateral/tdx/tcb_info.json",
	                                     "collateral/tdx/pck_crl.der",
	                                     "collateral/snp/crl.der",
	                                     "collateral/snp/vcek.der"};
	struct sim_fixture s;
	struct cvm_tee_sim_launch l, zero;
	struct cvm_tee_dev *tee = NULL;
	struct cvm_tee_evidence ev, pev;
	struct cvm_tee_measurements m;
	struct cvm_amd_result res;
	struct cvm_report rep;
	struct cvm_quote q, pq;
	struct cvm_snp_report psnp;
	uint8_t rd[64], d[48], rtmr3[48] = {0}, *before[4];
	size_t before_len[4];
	char vm[160], vm2[160], vm3[160], path[256];
	struct stat st;

	(void)state;
	sim_make(&s, true); /* MRTD 0x42.., SNP MEASUREMENT 0x5a.. */
	for (size_t i = 0; i < 4; i++)
		before[i] = file_bytes(s.dir, kept[i], &before_len[i]);
	memset(&l, 0, sizeof(l));
	pattern(l.mrtd, sizeof(l.mrtd), 0x10);
	for (uint8_t i = 0; i < 3; i++)
		pattern(l.rtmr_init[i], sizeof(l.rtmr_init[i]), (uint8_t)(0x20 + 16 * i));
	pattern(l.mr_config_id, sizeof(l.mr_config_id), 0x60);
	pattern(l.snp_measurement, sizeof(l.snp_measurement), 0x70);
	pattern(l.snp_host_data, sizeof(l.snp_host_data), 0x80);
	(void)snprintf(vm, sizeof(vm), "%s/vm1", s.root);
	assert_int_equal(cvm_tee_sim_launch(s.dir, vm, &l), CVM_OK);

	/* the copies are the platform's, modes too */
	assert_int_equal(stat(vm, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	for (size_t i = 0; i < sizeof(copied) / sizeof(copied[0]); i++)
		assert_true(same_file(s.dir, vm, copied[i]));
	(void)snprintf(path, sizeof(path), "%s/keys", vm);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	(void)snprintf(path, sizeof(path), "%s/keys/pck.key", vm);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* TDX: the registers the host gave; RTMR3 at zero */
	assert_int_equal(cvm_tee_open_sim(vm, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_memory_equal(m.mrtd, l.mrtd, 48);
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(m.rtmr[i], l.rtmr_init[i], 48);
	assert_true(all_bytes(m.rtmr[3], 48, 0));
	pattern(rd, sizeof(rd), 0x31);
	launch_quote(vm, rd, &ev, &q);
	assert_memory_equal(q.body.td.mr_td, l.mrtd, 48);
	assert_memory_equal(q.body.td.mr_config_id, l.mr_config_id, 48);
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(q.body.td.rtmr[i], l.rtmr_init[i], 48);
	assert_true(all_bytes(q.body.td.rtmr[3], 48, 0));
	assert_memory_equal(q.body.td.report_data, rd, 64);
	/* the rest of the TD body is the platform's */
	launch_quote(s.dir, rd, &pev, &pq);
	assert_memory_equal(q.body.td.tee_tcb_svn, pq.body.td.tee_tcb_svn, 16);
	assert_memory_equal(q.body.td.mr_seam, pq.body.td.mr_seam, 48);
	assert_memory_equal(q.body.td.td_attributes, pq.body.td.td_attributes, 8);
	assert_memory_equal(q.body.td.xfam, pq.body.td.xfam, 8);
	assert_memory_equal(q.body.td.mr_owner, pq.body.td.mr_owner, 48);
	assert_false(memcmp(q.body.td.mr_td, pq.body.td.mr_td, 48) == 0);
	cvm_tee_evidence_cleanup(&pev);
	/* verified with the PLATFORM's collateral and root */
	assert_int_equal(sim_verify(s.dir, ev.data, ev.data_len, true, NOW + 3600, &rep), CVM_OK);
	assert_int_not_equal(sim_verify(s.dir, ev.data, ev.data_len, false, NOW + 3600, &rep), CVM_OK);
	cvm_tee_evidence_cleanup(&ev);
	/* an extension changes RTMR3 only */
	memset(d, 0xe3, sizeof(d));
	assert_int_equal(cvm_tee_extend(tee, 3, d), CVM_OK);
	rtmr_extend(rtmr3, d);
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_memory_equal(m.mrtd, l.mrtd, 48);
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(m.rtmr[i], l.rtmr_init[i], 48);
	assert_memory_equal(m.rtmr[3], rtmr3, 48);
	cvm_tee_free(tee);
	tee = NULL;
	launch_quote(vm, rd, &ev, &q);
	assert_memory_equal(q.body.td.rtmr[3], rtmr3, 48);
	assert_memory_equal(q.body.td.rtmr[0], l.rtmr_init[0], 48);
	assert_int_equal(sim_verify(s.dir, ev.data, ev.data_len, true, NOW + 3600, &rep), CVM_OK);
	cvm_tee_evidence_cleanup(&ev);

	/* SNP: MEASUREMENT and HOST_DATA of the launch, the platform's chip */
	assert_int_equal(cvm_tee_open_sim(vm, CVM_TEE_PLATFORM_SNP, &tee), CVM_OK);
	assert_int_equal(cvm_tee_quote(tee, rd, &ev), CVM_OK);
	cvm_tee_free(tee);
	tee = NULL;
	assert_int_equal(snp_verify(s.dir, ev.data, ev.data_len, true, NOW + 3600, &rep, &res), CVM_OK);
	assert_true(res.authentic);
	assert_memory_equal(res.report.measurement, l.snp_measurement, 48);
	assert_memory_equal(res.report.host_data, l.snp_host_data, 32);
	assert_memory_equal(res.report.report_data, rd, 64);
	assert_int_equal(read_snp_bytes(s.dir, &psnp), CVM_OK);
	assert_memory_equal(res.report.chip_id, psnp.chip_id, 64);
	assert_memory_equal(res.report.report_id, psnp.report_id, 32);
	assert_int_equal(res.report.policy, psnp.policy);
	assert_int_equal(snp_verify(s.dir, ev.data, ev.data_len, false, NOW + 3600, &rep, &res), CVM_E_CHAIN);
	cvm_tee_evidence_cleanup(&ev);

	/* the platform is only read */
	for (size_t i = 0; i < 4; i++) {
		size_t n = 0;
		uint8_t *now = file_bytes(s.dir, kept[i], &n);

		assert_int_equal(n, before_len[i]);
		assert_memory_equal(now, before[i], n);
		free(now);
		free(before[i]);
	}

	/* a launched folder is a platform: launch from it; all-zero MRTD and
	 * MEASUREMENT keep its own (the first launch's) */
	memset(&zero, 0, sizeof(zero));
	(void)snprintf(vm2, sizeof(vm2), "%s/vm2", s.root);
	assert_int_equal(cvm_tee_sim_launch(vm, vm2, &zero), CVM_OK);
	launch_quote(vm2, rd, &ev, &q);
	assert_memory_equal(q.body.td.mr_td, l.mrtd, 48);
	assert_true(all_bytes(q.body.td.mr_config_id, 48, 0));
	assert_true(all_bytes(q.body.td.rtmr[0], 4 * 48, 0));
	assert_int_equal(sim_verify(s.dir, ev.data, ev.data_len, true, NOW + 3600, &rep), CVM_OK);
	cvm_tee_evidence_cleanup(&ev);
	assert_int_equal(cvm_tee_open_sim(vm2, CVM_TEE_PLATFORM_SNP, &tee), CVM_OK);
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_memory_equal(m.measurement, l.snp_measurement, 48);
	assert_true(all_bytes(m.host_data, 32, 0));
	cvm_tee_free(tee);
	tee = NULL;
	/* ... and from the platform, its MRTD and MEASUREMENT */
	(void)snprintf(vm3, sizeof(vm3), "%s/vm3", s.root);
	assert_int_equal(cvm_tee_sim_launch(s.dir, vm3, &zero), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(vm3, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_memory_equal(m.mrtd, (uint8_t[48]){[0 ... 47] = 0x42}, 48);
	cvm_tee_free(tee);
	assert_int_equal(cvm_tee_open_sim(vm3, CVM_TEE_PLATFORM_SNP, &tee), CVM_OK);
	assert_int_equal(cvm_tee_measurements(tee, &m), CVM_OK);
	assert_memory_equal(m.measurement, (uint8_t[48]){[0 ... 47] = 0x5a}, 48);
	cvm_tee_free(tee);
	rm_rf(s.root);
}

static void sim_launch_refuses_used_folders_and_what_is_not_a_platform(void **state)
{
	struct sim_fixture s;
	struct cvm_tee_sim_launch l;
	struct cvm_tee_dev *tee = NULL;
	char vm[160], path[256];
	struct stat st;

	(void)state;
	sim_make(&s, false); /* TDX only */
	memset(&l, 0, sizeof(l));
	assert_int_equal(cvm_tee_sim_launch(NULL, s.dir, &l), CVM_E_INVAL);
	assert_int_equal(cvm_tee_sim_launch(s.dir, NULL, &l), CVM_E_INVAL);
	assert_int_equal(cvm_tee_sim_launch(s.dir, "", &l), CVM_E_INVAL);
	assert_int_equal(cvm_tee_sim_launch(s.dir, s.dir, NULL), CVM_E_INVAL);
	/* into the platform itself, or a folder with something in it */
	assert_int_equal(cvm_tee_sim_launch(s.dir, s.dir, &l), CVM_E_INVAL);
	(void)snprintf(vm, sizeof(vm), "%s/used", s.root);
	assert_int_equal(mkdir(vm, 0700), 0);
	(void)snprintf(path, sizeof(path), "%s/notes", vm);
	assert_int_equal(write_bytes(path, "x", 1), 0);
	assert_int_equal(cvm_tee_sim_launch(s.dir, vm, &l), CVM_E_INVAL);
	(void)snprintf(path, sizeof(path), "%s/keys", vm);
	assert_int_not_equal(stat(path, &st), 0);
	/* not a simulator: nothing is made */
	(void)snprintf(vm, sizeof(vm), "%s/vm", s.root);
	assert_int_equal(cvm_tee_sim_launch(s.root, vm, &l), CVM_E_FORMAT);
	assert_int_not_equal(stat(vm, &st), 0);
	(void)snprintf(path, sizeof(path), "%s/fake", s.root);
	assert_int_equal(mkdir(path, 0700), 0);
	(void)snprintf(path, sizeof(path), "%s/fake/sim.json", s.root);
	assert_int_equal(write_bytes(path, "{\"cvmkit_simulator\": 1", 22), 0);
	(void)snprintf(path, sizeof(path), "%s/fake", s.root);
	assert_int_equal(cvm_tee_sim_launch(path, vm, &l), CVM_E_FORMAT);
	assert_int_not_equal(stat(vm, &st), 0);
	/* a platform key others can read: refused before anything is made */
	(void)snprintf(path, sizeof(path), "%s/keys/pck.key", s.dir);
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(cvm_tee_sim_launch(s.dir, vm, &l), CVM_E_INVAL);
	assert_int_not_equal(stat(vm, &st), 0);
	assert_int_equal(chmod(path, 0600), 0);

	/* a TDX-only platform launches TDX-only VMs */
	assert_int_equal(cvm_tee_sim_launch(s.dir, vm, &l), CVM_OK);
	assert_int_equal(cvm_tee_open_sim(vm, CVM_TEE_PLATFORM_SNP, &tee), CVM_E_UNSUPPORTED);
	(void)snprintf(path, sizeof(path), "%s/collateral/snp", vm);
	assert_int_not_equal(stat(path, &st), 0);
	assert_int_equal(cvm_tee_open_sim(vm, CVM_TEE_PLATFORM_TDX, &tee), CVM_OK);
	cvm_tee_free(tee);
	tee = NULL;

	/* something other than a file among the collateral is a damaged
	 * platform; the launch stops short of sim.json, so the half-made
	 * folder is no platform either */
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx/extra", s.dir);
	assert_int_equal(symlink("/etc/hostname", path), 0);
	(void)snprintf(vm, sizeof(vm), "%s/vm-bad", s.root);
	assert_int_equal(cvm_tee_sim_launch(s.dir, vm, &l), CVM_E_FORMAT);
	assert_int_equal(cvm_tee_open_sim(vm, CVM_TEE_PLATFORM_TDX, &tee), CVM_E_FORMAT);
	assert_null(tee);
	(void)snprintf(path, sizeof(path), "%s/collateral/tdx/extra", s.dir);
	assert_int_equal(unlink(path), 0);
	rm_rf(s.root);
}

static void mock_amd_tcb_layout_and_marker(void **state)
{
	static const enum cvm_snp_product products[] = {CVM_SNP_PRODUCT_MILAN, CVM_SNP_PRODUCT_GENOA,
	                                                CVM_SNP_PRODUCT_TURIN};
	struct cvm_mockamd_opts o;
	struct cvm_mockamd *pki = NULL;
	const struct cvm_amd_ark *arks;
	const uint8_t *der;
	size_t n = 0, der_len = 0;

	(void)state;
	/* the mock lays out TCB_VERSION as lib/snp decodes it */
	for (size_t i = 0; i < 3; i++) {
		struct cvm_snp_tcb t;

		cvm_mockamd_opts_init(&o, products[i], CVM_SNP_SIGNER_VCEK, NOW);
		assert_int_equal(o.report.reported_tcb, cvm_snp_tcb_encode(&o.tcb, products[i]));
		cvm_snp_tcb_decode(o.report.reported_tcb, products[i], &t);
		assert_int_equal(t.bootloader, o.tcb.bootloader);
		assert_int_equal(t.snp, o.tcb.snp);
		assert_int_equal(t.microcode, o.tcb.microcode);
		assert_int_equal(t.fmc, o.tcb.fmc);
		assert_false(t.reserved_nonzero);
	}
	/* the mock ARK carries the marker; AMD's ARKs do not */
	cvm_mockamd_opts_init(&o, CVM_SNP_PRODUCT_GENOA, CVM_SNP_SIGNER_VLEK, NOW);
	assert_int_equal(cvm_mockamd_new(&o, &pki), CVM_OK);
	cvm_mockamd_ark_der(pki, &der, &der_len);
	assert_true(cvm_tee_is_simulated_root(der, der_len));
	assert_true(cvm_tee_evidence_is_simulated(NULL, 0, der, der_len));
	cvm_mockamd_file(pki, CVM_MOCKAMD_F_VEK_DER, &der, &der_len);
	assert_false(cvm_tee_is_simulated_root(der, der_len));
	assert_string_equal(cvm_mockamd_file_name(pki, CVM_MOCKAMD_F_VEK_DER), "vlek.der");
	assert_string_equal(cvm_mockamd_file_name(pki, CVM_MOCKAMD_F_INTERMEDIATE), "asvk.pem");
	assert_null(cvm_mockamd_file_name(pki, CVM_MOCKAMD_F_COUNT));
	cvm_mockamd_free(pki);
	arks = cvm_amd_builtin_arks(&n);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_false(cvm_tee_is_simulated_root(arks[i].der, arks[i].der_len));
	/* bad options */
	cvm_mockamd_opts_init(&o, CVM_SNP_PRODUCT_UNKNOWN, CVM_SNP_SIGNER_VCEK, NOW);
	assert_int_equal(cvm_mockamd_new(&o, &pki), CVM_E_INVAL);
	cvm_mockamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_NONE, NOW);
	assert_int_equal(cvm_mockamd_new(&o, &pki), CVM_E_INVAL);
	cvm_mockamd_opts_init(&o, CVM_SNP_PRODUCT_MILAN, CVM_SNP_SIGNER_VCEK, NOW);
	o.rsa_bits = 1024;
	assert_int_equal(cvm_mockamd_new(&o, &pki), CVM_E_INVAL);
	assert_null(pki);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(detect_finds_each_platform_and_nothing_on_a_bare_tree),
	    cmocka_unit_test(tdx_quote_through_configfs_binds_report_data_and_verifies),
	    cmocka_unit_test(tsm_racing_writer_is_retried_then_reported_busy),
	    cmocka_unit_test(tsm_error_paths_fail_cleanly_and_remove_the_entry),
	    cmocka_unit_test(tdx_extend_through_measurements_folder_replays),
	    cmocka_unit_test(tdx_extend_and_registers_through_the_device),
	    cmocka_unit_test(tdx_registers_from_a_quote_when_only_configfs),
	    cmocka_unit_test(snp_report_through_configfs_with_privlevel_and_certificates),
	    cmocka_unit_test(snp_report_through_the_device),
	    cmocka_unit_test(sim_quote_verifies_only_against_its_own_root),
	    cmocka_unit_test(sim_rtmr_extensions_replay_and_show_in_quotes),
	    cmocka_unit_test(sim_concurrent_extenders_lose_no_extension),
	    cmocka_unit_test(sim_keys_are_private_and_init_refuses_a_used_folder),
	    cmocka_unit_test(simulated_marker_is_on_mock_roots_only),
	    cmocka_unit_test(sim_snp_report_is_abi_v3_bound_to_the_vcek_and_verifies_only_against_its_ark),
	    cmocka_unit_test(sim_snp_bit_flips_never_verify),
	    cmocka_unit_test(sim_snp_keys_template_and_debug),
	    cmocka_unit_test(sim_launch_quotes_its_measurements_under_the_platforms_pki),
	    cmocka_unit_test(sim_launch_refuses_used_folders_and_what_is_not_a_platform),
	    cmocka_unit_test(mock_amd_tcb_layout_and_marker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

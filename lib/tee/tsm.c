/* configfs-tsm reports (Documentation/ABI/testing/configfs-tsm): one report
 * entry per request under /sys/kernel/config/tsm/report, so concurrent
 * callers never share one, and the generation check the ABI asks for in
 * case someone else writes into ours anyway. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/log.h>

#include "tee_int.h"

#define TSM_NAME_ATTEMPTS 8
#define TSM_PROVIDER_MAX 64

/* entry_make creates a fresh report entry and writes its path to `dir`. */
static int entry_make(const struct cvm_tee_dev *tee, char *dir, size_t cap)
{
	static unsigned counter;
	char base[TEE_PATH_MAX];
	struct timespec ts;
	int r;

	r = tee_path(tee, base, sizeof(base), TEE_TSM_REPORT_DIR);
	if (r != CVM_OK)
		return r;
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	for (unsigned i = 0; i < TSM_NAME_ATTEMPTS; i++) {
		unsigned n = __atomic_add_fetch(&counter, 1u, __ATOMIC_RELAXED);
		int len = snprintf(dir, cap, "%s/cvmkit-%ld-%u-%lx", base, (long)getpid(), n,
		                   (unsigned long)ts.tv_nsec);

		if (len < 0 || (size_t)len >= cap)
			return CVM_E_INVAL;
		if (mkdir(dir, 0700) == 0) {
			if (tee->sys.after_mkdir != NULL)
				tee->sys.after_mkdir(tee->sys.ctx, dir);
			return CVM_OK;
		}
		if (errno != EEXIST)
			return CVM_E_SYSTEM;
	}
	errno = EEXIST;
	return CVM_E_SYSTEM;
}

static void entry_remove(const char *dir)
{
	int saved = errno;

	/* configfs removes the attributes with the entry; a fake tree may
	 * leave them as files, which are removed first. */
	if (rmdir(dir) != 0 && errno == ENOTEMPTY) {
		static const char *const attrs[] = {"inblob",          "outblob",      "auxblob",
		                                    "provider",        "generation",   "privlevel",
		                                    "privlevel_floor", "manifestblob", "service_provider"};
		char path[TEE_PATH_MAX];

		for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
			int n = snprintf(path, sizeof(path), "%s/%s", dir, attrs[i]);

			if (n > 0 && (size_t)n < sizeof(path))
				(void)unlink(path);
		}
		(void)rmdir(dir);
	}
	errno = saved;
}

static int attr_path(char *buf, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? CVM_E_INVAL : CVM_OK;
}

/* read_provider reads the entry's provider name without its newline. */
static int read_provider(const struct cvm_tee_dev *tee, const char *dir, char *buf, size_t cap)
{
	char path[TEE_PATH_MAX];
	uint8_t *p = NULL;
	size_t len = 0;
	int r;

	buf[0] = '\0';
	r = attr_path(path, sizeof(path), dir, "provider");
	if (r != CVM_OK)
		return r;
	r = tee_attr_read(tee, path, TSM_PROVIDER_MAX, &p, &len);
	if (r != CVM_OK)
		return r;
	if (len > 0 && p[len - 1] == '\n')
		len--;
	r = CVM_E_FORMAT;
	if (len == 0 || len >= cap)
		goto out;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x21 || p[i] > 0x7e)
			goto out;
	}
	memcpy(buf, p, len);
	buf[len] = '\0';
	r = CVM_OK;
out:
	free(p);
	return r;
}

int tee_tsm_provider(const struct cvm_tee_dev *tee, char *buf, size_t cap)
{
	char dir[TEE_PATH_MAX];
	int r;

	buf[0] = '\0';
	r = entry_make(tee, dir, sizeof(dir));
	if (r != CVM_OK)
		return r;
	r = read_provider(tee, dir, buf, cap);
	entry_remove(dir);
	return r;
}

/* one_round writes the options and inblob, reads the blobs and tells
 * whether generation moved by exactly our writes (`*raced` otherwise). */
static int one_round(const struct cvm_tee_dev *tee, const char *dir, const struct tee_tsm_req *req,
                     struct cvm_tee_evidence *out, bool *raced)
{
	char path[TEE_PATH_MAX], num[16];
	unsigned long before = 0, after = 0, writes = 0;
	int r, n;

	*raced = false;
	r = attr_path(path, sizeof(path), dir, "generation");
	if (r != CVM_OK)
		return r;
	r = tee_attr_read_ulong(tee, path, &before);
	if (r != CVM_OK)
		return r;
	if (req->set_privlevel) {
		unsigned long floor = 0;

		r = attr_path(path, sizeof(path), dir, "privlevel_floor");
		if (r != CVM_OK)
			return r;
		r = tee_attr_read_ulong(tee, path, &floor);
		if (r != CVM_OK)
			return r;
		if (req->privlevel < floor) {
			cvm_debug("privlevel %u is below the provider's floor %lu", req->privlevel, floor);
			return CVM_E_INVAL;
		}
		r = attr_path(path, sizeof(path), dir, "privlevel");
		if (r != CVM_OK)
			return r;
		n = snprintf(num, sizeof(num), "%u\n", req->privlevel);
		if (n < 0 || (size_t)n >= sizeof(num))
			return CVM_E_INTERNAL;
		r = tee_attr_write(tee, path, num, (size_t)n);
		if (r != CVM_OK)
			return r;
		writes++;
	}
	r = attr_path(path, sizeof(path), dir, "inblob");
	if (r != CVM_OK)
		return r;
	r = tee_attr_write(tee, path, req->inblob, CVM_TEE_REPORT_DATA_LEN);
	if (r != CVM_OK)
		return r;
	writes++;

	r = attr_path(path, sizeof(path), dir, "outblob");
	if (r != CVM_OK)
		return r;
	r = tee_attr_read(tee, path, CVM_TEE_EVIDENCE_MAX, &out->data, &out->data_len);
	if (r != CVM_OK)
		return r;
	if (out->data_len == 0) {
		cvm_debug("the provider returned an empty outblob");
		return CVM_E_FORMAT;
	}
	if (req->want_aux) {
		r = attr_path(path, sizeof(path), dir, "auxblob");
		if (r != CVM_OK)
			return r;
		r = tee_attr_read(tee, path, CVM_TEE_AUX_MAX, &out->aux, &out->aux_len);
		if (r == CVM_E_SYSTEM && errno == ENOENT) {
			r = CVM_OK; /* providers without certificates show no auxblob */
		}
		if (r != CVM_OK)
			return r;
		if (out->aux_len == 0) {
			free(out->aux);
			out->aux = NULL;
		}
	}

	r = attr_path(path, sizeof(path), dir, "generation");
	if (r != CVM_OK)
		return r;
	r = tee_attr_read_ulong(tee, path, &after);
	if (r != CVM_OK)
		return r;
	if (after != before + writes) {
		cvm_debug("generation went from %lu to %lu over our %lu writes: another writer", before,
		          after, writes);
		*raced = true;
	}
	return CVM_OK;
}

int tee_tsm_report(const struct cvm_tee_dev *tee, const struct tee_tsm_req *req, struct cvm_tee_evidence *out)
{
	char dir[TEE_PATH_MAX], provider[TSM_PROVIDER_MAX];
	bool raced = true;
	int r;

	memset(out, 0, sizeof(*out));
	r = entry_make(tee, dir, sizeof(dir));
	if (r != CVM_OK)
		return r;
	r = read_provider(tee, dir, provider, sizeof(provider));
	if (r != CVM_OK)
		goto out;
	if (strcmp(provider, req->provider) != 0) {
		cvm_debug("configfs-tsm provider is '%s', expected '%s'", provider, req->provider);
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	for (unsigned i = 0; i < CVM_TEE_RETRIES && raced; i++) {
		cvm_tee_evidence_cleanup(out);
		r = one_round(tee, dir, req, out, &raced);
		if (r != CVM_OK)
			goto out;
	}
	if (raced) {
		errno = EBUSY;
		r = CVM_E_SYSTEM;
	}
out:
	if (r != CVM_OK)
		cvm_tee_evidence_cleanup(out);
	entry_remove(dir);
	return r;
}

/* Internals of lib/tee: the backend table and the kernel-facing calls, which
 * tests replace with a fake kernel (struct cvm_tee_sys) over a temporary
 * tree. */
#ifndef CVMKIT_TEE_INT_H
#define CVMKIT_TEE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/tee.h>

#define TEE_PATH_MAX 4096

/* struct cvm_tee_sys lets a test play the kernel's part over a plain
 * directory tree: configfs and sysfs do work when a directory is made, an
 * attribute written or read, and /dev nodes answer ioctls. Every hook may be
 * NULL (production: the real kernel does that work). */
struct cvm_tee_sys {
	/* after mkdir(path) made a configfs-tsm report entry */
	void (*after_mkdir)(void *ctx, const char *path);
	/* after an attribute file was written and closed; `err` may be set to an
	 * errno to make the write fail as the kernel would (0 leaves it) */
	void (*after_write)(void *ctx, const char *path, int *err);
	/* before an attribute is opened for reading; may set `err` likewise */
	void (*before_read)(void *ctx, const char *path, int *err);
	/* replaces ioctl(2): returns 0 or -1 with errno set */
	int (*ioctl)(void *ctx, int fd, unsigned long request, void *arg);
	void *ctx;
};

struct cvm_tee_dev;

struct tee_ops {
	int (*quote)(struct cvm_tee_dev *tee, const uint8_t rd[CVM_TEE_REPORT_DATA_LEN],
	             struct cvm_tee_evidence *out);
	int (*extend)(struct cvm_tee_dev *tee, unsigned index, const uint8_t digest[CVM_TEE_MR_LEN]);
	int (*measurements)(struct cvm_tee_dev *tee, struct cvm_tee_measurements *out);
	void (*free_priv)(void *priv);
};

struct cvm_tee_dev {
	const struct tee_ops *ops;
	struct cvm_tee_info info;
	char root[TEE_PATH_MAX]; /* "" for "/", else without a trailing slash */
	struct cvm_tee_sys sys;
	unsigned privlevel;
	bool privlevel_set;
	void *priv; /* the simulator's state */
};

/* Paths under the root. */
#define TEE_TSM_REPORT_DIR "/sys/kernel/config/tsm/report"
#define TEE_TDX_GUEST_DEV "/dev/tdx_guest"
#define TEE_TDX_MR_DIR "/sys/class/misc/tdx_guest/measurements"
#define TEE_SEV_GUEST_DEV "/dev/sev-guest"

/* cvm_tee_open_sys and cvm_tee_detect_sys are cvm_tee_open and
 * cvm_tee_detect with a fake kernel (`sys` may be NULL). */
int cvm_tee_open_sys(const char *root, enum cvm_tee_platform platform, const struct cvm_tee_sys *sys,
                     struct cvm_tee_dev **out);
int cvm_tee_detect_sys(const char *root, const struct cvm_tee_sys *sys, struct cvm_tee_dev **out);

/* tee_path writes root + rel into buf. */
int tee_path(const struct cvm_tee_dev *tee, char *buf, size_t cap, const char *rel);
bool tee_exists(const struct cvm_tee_dev *tee, const char *rel);

/* tee_attr_read reads an attribute (configfs, sysfs) of at most `max` bytes
 * into a new buffer (NUL appended, not counted); tee_attr_write writes `len`
 * bytes in one write(2) at offset 0 and closes, as configfs and sysfs want
 * binary attributes written. Both go through the test hooks. */
int tee_attr_read(const struct cvm_tee_dev *tee, const char *path, size_t max, uint8_t **out,
                  size_t *out_len);
int tee_attr_write(const struct cvm_tee_dev *tee, const char *path, const void *buf, size_t len);
/* tee_attr_read_ulong reads a decimal attribute ("12\n"). */
int tee_attr_read_ulong(const struct cvm_tee_dev *tee, const char *path, unsigned long *out);
/* tee_ioctl opens `rel` read-write and issues one ioctl. */
int tee_ioctl(const struct cvm_tee_dev *tee, const char *rel, unsigned long request, void *arg);

/* struct tee_tsm_req is one configfs-tsm report request. */
struct tee_tsm_req {
	const char *provider;  /* the provider the entry must show */
	const uint8_t *inblob; /* 64 bytes */
	bool set_privlevel;
	unsigned privlevel;
	bool want_aux;
};
/* tee_tsm_report runs the configfs-tsm protocol: make a report entry, write
 * the options and inblob, read outblob (and auxblob), check that generation
 * advanced by exactly our writes (else retry, CVM_TEE_RETRIES times, then
 * CVM_E_SYSTEM with errno EBUSY), remove the entry. */
int tee_tsm_report(const struct cvm_tee_dev *tee, const struct tee_tsm_req *req,
                   struct cvm_tee_evidence *out);
/* tee_tsm_provider makes a throw-away entry to read the provider name. */
int tee_tsm_provider(const struct cvm_tee_dev *tee, char *buf, size_t cap);

/* Backends: fill tee->ops and tee->info, or return CVM_E_UNSUPPORTED. */
int tee_tdx_attach(struct cvm_tee_dev *tee);
int tee_snp_attach(struct cvm_tee_dev *tee);

/* TDREPORT layout (TDX module ABI), as the tdx_guest driver returns it. */
#define TEE_TDREPORT_LEN 1024u
#define TEE_TDREPORT_REPORTDATA 128u
#define TEE_TDREPORT_TDINFO 512u
#define TEE_TDREPORT_MRTD (TEE_TDREPORT_TDINFO + 16u)
#define TEE_TDREPORT_RTMR0 (TEE_TDREPORT_MRTD + 4u * 48u)

/* The SEV-SNP report offsets this layer needs. */
#define TEE_SNP_REPORT_LEN 1184u
#define TEE_SNP_REPORT_DATA 0x50u
#define TEE_SNP_MEASUREMENT 0x90u
#define TEE_SNP_HOST_DATA 0xC0u

#endif

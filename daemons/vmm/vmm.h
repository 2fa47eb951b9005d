/* cvm-vmmd: the VM manager (docs/daemons/cvm-vmmd.md, dstack spec §8).
 *
 * One daemon per TEE host. It keeps its VMs in one SQLite database in
 * run_dir (db.c), builds each VM's work directory crash-safely (work.c),
 * turns a VM record into a QEMU command line (qemu.c, a pure function) and
 * runs QEMU detached, so that the daemon can restart without killing VMs
 * (proc.c), and serves dstack's Vmm RPCs at /prpc/<Method> (api.c).
 *
 * Internal header: everything here is for daemons/vmm, its unit tests and
 * its fuzz target only. */
#ifndef CVM_VMM_H
#define CVM_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <cvmkit/err.h>

#include "httpd.h"

#define VMM_PATH_MAX 512
#define VMM_NAME_MAX 63  /* VM and image names */
#define VMM_PORTS_MAX 64 /* port mappings per VM */
#define VMM_URLS_MAX 8   /* kms_urls, gateway_urls */
#define VMM_URL_MAX 256
#define VMM_TOKENS_MAX 16
#define VMM_TOKEN_MAX 128
#define VMM_ENV_MAX ((size_t)1024 * 1024)       /* .encrypted-env bytes */
#define VMM_USER_CONFIG_MAX ((size_t)64 * 1024) /* .user-config bytes */
#define VMM_BODY_MAX ((size_t)4 * 1024 * 1024)  /* RPC request bodies */
#define VMM_ID_LEN 36                           /* a UUID's text */
#define VMM_APP_IMAGES_MAX 16                   /* docker image tarballs per VM */

enum vmm_platform { VMM_PLATFORM_DEV = 0, VMM_PLATFORM_TDX, VMM_PLATFORM_SNP };

/* struct vmm_conf is the daemon's configuration (conf.c). */
struct vmm_conf {
	char config_file[VMM_PATH_MAX];
	/* [vmm] */
	char listen[VMM_PATH_MAX];
	char port_file[VMM_PATH_MAX];
	char run_dir[VMM_PATH_MAX];
	char image_dir[VMM_PATH_MAX];
	char qemu[VMM_PATH_MAX];
	char qemu_img[VMM_PATH_MAX];
	char swtpm[VMM_PATH_MAX];
	char webui_dir[VMM_PATH_MAX];     /* the web UI's files (webui.h) */
	char sim_platform[VMM_PATH_MAX];  /* dev: the host's simulated TEE platform (measure.c) */
	char app_image_dir[VMM_PATH_MAX]; /* docker image tarballs CreateVm's app_images name */
	char platform_name[16];
	char accel[16]; /* dev: auto, kvm or tcg */
	char log_level[16];
	uint64_t stop_timeout_s;
	uint64_t max_connections, max_connections_per_peer;
	bool start_paused;                    /* QEMU -S: tests and debugging */
	char host_kms_urls_text[VMM_URL_MAX]; /* [vmm] kms_urls: the KMSs as the host reaches them */
	/* [cvm] */
	char kms_urls_text[VMM_URL_MAX];
	char gateway_urls_text[VMM_URL_MAX];
	uint64_t cid_start, cid_pool_size;
	uint64_t max_vcpu, max_memory_mb, max_disk_gb;
	char port_range_text[32];
	char host_address[64];
	uint64_t qgs_port;
	/* [auth] */
	char tokens_text[VMM_PATH_MAX];
	/* Derived by vmm_conf_check. */
	enum vmm_platform platform;
	uint16_t port_from, port_to;
	char kms_urls[VMM_URLS_MAX][VMM_URL_MAX];
	size_t kms_url_count;
	char host_kms_urls[VMM_URLS_MAX][VMM_URL_MAX]; /* default: kms_urls */
	size_t host_kms_url_count;
	char gateway_urls[VMM_URLS_MAX][VMM_URL_MAX];
	size_t gateway_url_count;
	char tokens[VMM_TOKENS_MAX][VMM_TOKEN_MAX];
	size_t token_count;
};

/* vmm_conf_defaults fills the defaults (docs/daemons/cvm-vmmd.md). */
void vmm_conf_defaults(struct vmm_conf *c);
/* vmm_conf_parse reads INI text over the defaults' values (unknown sections
 * and keys refused) and vmm_conf_load a file; both then run
 * vmm_conf_check. On failure `err` names the key. Returns 0, CVM_E_FORMAT,
 * CVM_E_SYSTEM or CVM_E_NOMEM. */
CVM_MUST_CHECK int vmm_conf_parse(struct vmm_conf *c, const char *text, char *err, size_t err_len);
CVM_MUST_CHECK int vmm_conf_load(struct vmm_conf *c, char *err, size_t err_len);
/* vmm_conf_check checks values across keys and fills the derived fields
 * (platform, port range, URL and token lists; a `tokens` value that starts
 * with '/' is a file of tokens, one a line). Returns 0 or CVM_E_FORMAT. */
CVM_MUST_CHECK int vmm_conf_check(struct vmm_conf *c, char *err, size_t err_len);
const char *vmm_platform_name(enum vmm_platform p);

/* A port mapping: protocol "tcp" or "udp". */
struct vmm_port {
	char protocol[4];
	char host_address[64];
	uint16_t host_port, vm_port;
};

/* struct vmm_spec is a VM's desired configuration: what CreateVm carries
 * and what the database stores as the `config` JSON. */
struct vmm_spec {
	char name[VMM_NAME_MAX + 1];
	char image[VMM_NAME_MAX + 1];
	uint32_t vcpu, memory_mb, disk_gb;
	struct vmm_port ports[VMM_PORTS_MAX];
	size_t port_count;
	char app_id[41]; /* hex; "" when not given */
	char kms_urls[VMM_URLS_MAX][VMM_URL_MAX];
	size_t kms_url_count;
	char gateway_urls[VMM_URLS_MAX][VMM_URL_MAX];
	size_t gateway_url_count;
	/* docker image tarballs of [vmm] app_image_dir, put in shared/images/ */
	char app_images[VMM_APP_IMAGES_MAX][VMM_NAME_MAX + 1];
	size_t app_image_count;
	bool stopped;
};

/* vmm_spec_to_json returns the stored form of `s` (a new reference, NULL
 * when out of memory); vmm_spec_from_json reads it back (strictly: the
 * stored form is ours). */
json_t *vmm_spec_to_json(const struct vmm_spec *s);
CVM_MUST_CHECK int vmm_spec_from_json(const json_t *j, struct vmm_spec *out);

/* VM states, as stored. */
#define VMM_ST_CREATING "creating"
#define VMM_ST_STOPPED "stopped"
#define VMM_ST_STARTING "starting"
#define VMM_ST_RUNNING "running"
#define VMM_ST_STOPPING "stopping"
#define VMM_ST_REMOVING "removing"
#define VMM_ST_FAILED "failed"

/* struct vmm_vm is one row of the vms table. */
/* The guest's reports on the host channel (channel.c). */
#define VMM_PROGRESS_MAX 160      /* boot_progress kept, bytes with the NUL */
#define VMM_CHANNEL_LINE_MAX 4096 /* a longer line closes the channel */

struct vmm_vm {
	char id[VMM_ID_LEN + 1];
	char name[VMM_NAME_MAX + 1];
	char state[16];
	struct vmm_spec spec;
	char compose_hash[65];
	char app_id[41];
	uint32_t cid;
	int64_t pid;                       /* QEMU's, 0 when none */
	int64_t created, updated, started; /* unix seconds; started 0 when not running */
	char last_error[256];
	char boot_progress[VMM_PROGRESS_MAX];
};

struct vmm_db;

/* vmm_db_open opens (creating when missing) run_dir/vmm.db in WAL mode.
 * Returns 0, CVM_E_SYSTEM or CVM_E_FORMAT (not our database). */
CVM_MUST_CHECK int vmm_db_open(const char *path, struct vmm_db **out, char *err, size_t err_len);
void vmm_db_close(struct vmm_db *db);
/* vmm_db_insert adds `vm` (state creating) in one transaction, choosing
 * the lowest free CID of the pool [cid_start, cid_start + pool_size) and
 * refusing a taken name or host port. On refusal `err` says why. Returns 0,
 * CVM_E_POLICY (name, port or pool) or CVM_E_SYSTEM. */
CVM_MUST_CHECK int vmm_db_insert(struct vmm_db *db, struct vmm_vm *vm, uint32_t cid_start, uint32_t pool_size,
                                 char *err, size_t err_len);
/* vmm_db_get finds a VM by id, or by name when no id matches. Returns 0,
 * CVM_E_INVAL (no such VM) or CVM_E_SYSTEM. */
CVM_MUST_CHECK int vmm_db_get(struct vmm_db *db, const char *id_or_name, struct vmm_vm *out);
/* vmm_db_list returns every VM, oldest first (free with free()). */
CVM_MUST_CHECK int vmm_db_list(struct vmm_db *db, struct vmm_vm **out, size_t *count);
/* vmm_db_set_state moves `id` to `state` with `pid`, `started` and
 * `last_error` (NULL: keep it) in one transaction. Returns 0, CVM_E_INVAL
 * or CVM_E_SYSTEM. */
CVM_MUST_CHECK int vmm_db_set_state(struct vmm_db *db, const char *id, const char *state, int64_t pid,
                                    int64_t started, const char *last_error);
/* vmm_db_set_spec replaces the config (and compose hash, app id) of `vm`,
 * checking port conflicts with other VMs. */
CVM_MUST_CHECK int vmm_db_set_spec(struct vmm_db *db, const struct vmm_vm *vm, char *err, size_t err_len);
/* vmm_db_set_progress records what the guest reported: its last boot
 * progress and, when not NULL, its last error (NULL keeps either). */
CVM_MUST_CHECK int vmm_db_set_progress(struct vmm_db *db, const char *id, const char *progress,
                                       const char *error);
/* vmm_db_history gives the VM's progress history, oldest first: a JSON
 * array of {"at_ms": unix milliseconds, "progress": text} (the last
 * VMM_HISTORY_MAX reports of vmm_db_set_progress; "error" for an error). */
#define VMM_HISTORY_MAX 64
#define VMM_PROGRESS_START "start requested" /* the first entry of each start */
CVM_MUST_CHECK int vmm_db_history(struct vmm_db *db, const char *id, json_t **out);
/* vmm_db_delete removes the row (and its history). */
CVM_MUST_CHECK int vmm_db_delete(struct vmm_db *db, const char *id);

/* Image metadata (image_dir/<name>/metadata.json). Paths are absolute. */
struct vmm_image {
	char name[VMM_NAME_MAX + 1];
	char dir[VMM_PATH_MAX];
	char bios[VMM_PATH_MAX];     /* "" when none */
	char bios_sev[VMM_PATH_MAX]; /* "" when none */
	char kernel[VMM_PATH_MAX];   /* "" when none */
	char initrd[VMM_PATH_MAX];
	char rootfs[VMM_PATH_MAX];
	char acpi_probe_initrd[VMM_PATH_MAX]; /* cvmkit: the ACPI probe's initrd ("" when none) */
	char cmdline[2048];
	char version[64];
	bool is_dev;
};

/* vmm_image_name_ok: [A-Za-z0-9._-]{1,63}, not starting with '.'. */
bool vmm_image_name_ok(const char *name);
/* vmm_image_load reads image_dir/<name>/metadata.json. Returns 0,
 * CVM_E_INVAL (no such image), CVM_E_FORMAT (bad metadata; `err` says
 * which field). */
CVM_MUST_CHECK int vmm_image_load(const char *image_dir, const char *name, struct vmm_image *out, char *err,
                                  size_t err_len);
/* vmm_image_metadata_parse reads metadata.json's bytes (for vmm_image_load
 * and the fuzz target); file names are resolved under `dir`. */
CVM_MUST_CHECK int vmm_image_metadata_parse(const uint8_t *buf, size_t len, const char *dir,
                                            struct vmm_image *out, char *err, size_t err_len);

/* vmm_kms_env_pubkey asks the KMSs of [cvm] kms_urls, in order, for the env
 * public key of the app `app_id_hex` (40 hex digits) and returns the first
 * answer that is a JSON object with a public_key (kmsproxy.c). */
#define VMM_KMS_URLS_ERR 1024
CVM_MUST_CHECK int vmm_kms_env_pubkey(const struct vmm_conf *c, const char *app_id_hex, json_t **out,
                                      char *err, size_t err_len);

/* The app-compose indirection (compose.c): the only place that knows how a
 * compose file is validated and what MRCONFIGID / SNP HOST_DATA are. */
CVM_MUST_CHECK int vmm_compose_check(const uint8_t *buf, size_t len, uint8_t hash[32], char *err,
                                     size_t err_len);
/* vmm_compose_ids writes the MRCONFIGID (layout 1 without key_provider_id,
 * 2 with it) and the 32-byte HOST_DATA (layout 3's document hash) for
 * `compose` and the deployment's app id (20 bytes; NULL: the compose hash's
 * first 20). */
CVM_MUST_CHECK int vmm_compose_ids(const uint8_t *buf, size_t len, const uint8_t *app_id,
                                   uint8_t mrconfigid[48], uint8_t host_data[32], char *err, size_t err_len);

/* A command line: argv[0..count) and a NULL after them. */
struct vmm_argv {
	char **v;
	size_t count, cap;
	bool err; /* sticky: an allocation failed */
};
void vmm_argv_cleanup(struct vmm_argv *a);

/* struct vmm_launch is everything the QEMU command line depends on. */
struct vmm_launch {
	const struct vmm_conf *conf;
	const struct vmm_vm *vm;
	const struct vmm_image *image;
	const char *work_dir; /* absolute */
	bool kvm;             /* dev: KVM usable (else TCG) */
	uint8_t mrconfigid[48];
	uint8_t host_data[32];
};

/* vmm_qemu_argv builds QEMU's argv for `l` (a pure function of its input:
 * it reads no file and starts nothing). Returns 0, CVM_E_NOMEM or
 * CVM_E_INVAL. */
CVM_MUST_CHECK int vmm_qemu_argv(const struct vmm_launch *l, struct vmm_argv *out);

/* The daemon. */
struct vmm_chan;

struct vmm {
	struct vmm_conf *conf;
	struct vmm_db *db;
	struct event_base *base; /* NULL in tests: no timers */
	int64_t start_time;
	struct vmm_chan *chans;        /* the guests' host channels (channel.c) */
	struct vmm_starting *starting; /* dev: starts measuring (measure.c) */
};

/* The host channel of a VM (channel.c; format in docs/vm.md): cvm-vmmd
 * connects to QEMU's end of the virtio-serial port org.cvmkit.host.0
 * (guest.sock in the work dir) and records what the guest reports, one JSON
 * line per event: boot-progress (Status's boot_progress), boot-error
 * (boot_error), instance-info (logged). vmm_channel_open starts (or
 * restarts) it for a running VM, vmm_channel_close stops it; it reconnects
 * while the VM runs. vmm_channel_line handles one line (without its \n):
 * the parser, for the tests and the fuzz target. */
void vmm_channel_open(struct vmm *v, const char *id);
void vmm_channel_close(struct vmm *v, const char *id);
void vmm_channel_close_all(struct vmm *v);
void vmm_channel_line(struct vmm *v, const char *id, const char *line, size_t len);

/* Work directories (work.c). */
/* vmm_pause_point: the test-only hook. When the environment variable
 * CVM_VMMD_TEST_PAUSE_AT equals `step`, the daemon logs `paused at <step>`
 * and sleeps until killed, so a test can kill -9 it at that exact step. */
void vmm_pause_point(const char *step);
/* vmm_work_path writes run_dir/<id>[/<rel>]. */
void vmm_work_path(const struct vmm_conf *c, const char *id, const char *rel, char *out, size_t out_len);
/* vmm_work_create builds run_dir/.tmp-<id> (shared files, data disk),
 * fsyncs it and renames it to run_dir/<id>. */
struct vmm_files {
	const uint8_t *compose;
	size_t compose_len;
	const uint8_t *env; /* may be NULL */
	size_t env_len;
	const char *user_config; /* may be NULL */
	size_t user_config_len;
};
CVM_MUST_CHECK int vmm_work_create(struct vmm *v, const struct vmm_vm *vm, const struct vmm_files *f,
                                   char *err, size_t err_len);
/* vmm_work_write_shared rewrites shared files of an existing work dir
 * (UpgradeApp), each atomically. NULL members are left as they are. */
CVM_MUST_CHECK int vmm_work_write_shared(struct vmm *v, const struct vmm_vm *vm, const struct vmm_files *f,
                                         char *err, size_t err_len);
/* vmm_work_remove deletes a work directory: renamed to run_dir/.rm-<id>
 * first, then deleted. */
CVM_MUST_CHECK int vmm_work_remove(struct vmm *v, const char *id);
/* vmm_rmtree deletes `path` and what is under it (no symlink is followed). */
int vmm_rmtree(const char *path);
/* vmm_reconcile brings the database and run_dir back into agreement after a
 * crash (docs/daemons/cvm-vmmd.md "Crash safety") and re-adopts running
 * QEMUs. */
CVM_MUST_CHECK int vmm_reconcile(struct vmm *v);
/* vmm_resume_starts starts again the VMs a crash left starting (after
 * vmm_reconcile, once the event loop exists). */
void vmm_resume_starts(struct vmm *v);

/* Dev VMs measured for real (measure.c). vmm_measure_run computes the
 * launch registers of `vm` booting `img` with `argv` (the ACPI probe,
 * cvm_measure_tdx) and launches its simulated TEE into shared/sim with
 * them and `mrconfigid` / `host_data`; it writes measurement.json. It
 * blocks (the probe boots QEMU): vmm_measure_begin runs it in a child and
 * calls vmm_vm_launch when the child ends (in-process without an event
 * loop). vmm_start_pending: a start of `id` is measuring; vmm_start_cancel
 * kills it (true when there was one). */
CVM_MUST_CHECK int vmm_measure_run(const struct vmm_conf *c, const struct vmm_vm *vm,
                                   const struct vmm_image *img, const struct vmm_argv *argv,
                                   const uint8_t mrconfigid[48], const uint8_t host_data[32], char *err,
                                   size_t err_len);
CVM_MUST_CHECK int vmm_measure_begin(struct vmm *v, struct vmm_vm *vm, const struct vmm_image *img,
                                     const struct vmm_argv *argv, const uint8_t mrconfigid[48],
                                     const uint8_t host_data[32], char *err, size_t err_len);
bool vmm_start_pending(const struct vmm *v, const char *id);
bool vmm_start_cancel(struct vmm *v, const char *id);
void vmm_start_cancel_all(struct vmm *v);
/* vmm_sim_platform_ensure makes [vmm] sim_platform (cvm_tee_sim_init) when
 * it holds no simulated platform yet (dev only). */
CVM_MUST_CHECK int vmm_sim_platform_ensure(const struct vmm_conf *c, char *err, size_t err_len);

/* Processes (proc.c). */
/* vmm_proc_alive: `pid` lives and its /proc cmdline names `work_dir`. */
bool vmm_proc_alive(int64_t pid, const char *work_dir);
/* vmm_vm_start moves a stopped VM to starting and starts it: on tdx and
 * snp at once, on dev once its launch is measured (measure.c), so the VM
 * may still be starting when it returns. vmm_vm_launch is the second half:
 * swtpm (dev) and QEMU. */
CVM_MUST_CHECK int vmm_vm_start(struct vmm *v, struct vmm_vm *vm, char *err, size_t err_len);
CVM_MUST_CHECK int vmm_vm_launch(struct vmm *v, struct vmm_vm *vm, char *err, size_t err_len);
/* vmm_vm_stop: `force` quits QEMU at once (StopVm); otherwise ACPI
 * powerdown, then quit after stop_timeout_s (ShutdownVm). */
CVM_MUST_CHECK int vmm_vm_stop(struct vmm *v, struct vmm_vm *vm, bool force, char *err, size_t err_len);
/* vmm_vm_refresh marks a VM whose QEMU is gone as stopped. */
void vmm_vm_refresh(struct vmm *v, struct vmm_vm *vm);
/* vmm_kvm_usable: /dev/kvm opens read-write. */
bool vmm_kvm_usable(void);

/* RPC (api.c). */
void vmm_handle(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp);
/* vmm_parse_create reads CreateVm's message into `spec` and the files,
 * validating against the configuration's limits (the fuzz target's entry).
 * `env` and `compose` are borrowed from `args`, except env (malloc'd hex
 * decode, the caller frees). On failure `err` says what is wrong. */
CVM_MUST_CHECK int vmm_parse_create(const struct vmm_conf *c, json_t *args, struct vmm_spec *spec,
                                    struct vmm_files *files, uint8_t **env_owned, char *err, size_t err_len);
/* vmm_auth_ok: the request carries one of the tokens (always true when no
 * token is configured). */
bool vmm_auth_ok(const struct vmm_conf *c, struct cvm_http_req *req);

#endif

/* Dev VMs measured for real (docs/daemons/cvm-vmmd.md "Dev VMs").
 *
 * A TDX module measures the firmware into MRTD as it loads it, and TDVF
 * measures the ACPI tables, the kernel, the command line and the initrd
 * into RTMR0..2 before the kernel runs. A dev VM has no TDX module: before
 * its QEMU starts, cvm-vmmd computes what they would have measured for
 * this VM (the image's firmware, kernel, initrd and command line, the VM's
 * memory and vCPUs, and QEMU's ACPI tables for the VM's own command line,
 * obtained by the ACPI probe of lib/qemu) and launches the VM's simulated
 * TEE with those values (cvm_tee_sim_launch, on the host's one simulated
 * platform). The guest's simulated quotes then carry exactly what
 * `cvm measure --image ... --vm-config ...` predicts, and a changed kernel
 * or command line shows up as a changed register.
 *
 * The ACPI probe boots QEMU (about ten seconds under TCG the first time;
 * later starts of the same shape read its cache), so it runs in a child
 * process: the VM stays "starting" meanwhile and the daemon keeps serving.
 * The child touches neither the database nor the event loop; it writes
 * measurement.json, the new shared/sim (built aside and renamed into
 * place) and, when it fails, measure.err, and ends. The parent sees the
 * end of its pipe, reaps it and goes on with the start (proc.c). A child
 * outlives no daemon (PR_SET_PDEATHSIG); a daemon restarted while a VM was
 * starting begins its start again (vmm_reconcile). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/measure.h>
#include <cvmkit/qemu.h>
#include <cvmkit/tee.h>

#include "daemon.h"
#include "vmm.h"

#define INITRD_MAX ((size_t)1 << 30)
#define PROBE_TIMEOUT_S 180u

/* struct vmm_starting is one start in flight: its measuring child. */
struct vmm_starting {
	struct vmm_starting *next;
	struct vmm *v;
	char id[VMM_ID_LEN + 1];
	pid_t pid;
	int fd; /* the read end of the child's pipe: EOF when it ends */
	struct event *ev;
	int64_t began_ms;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool vmm_start_pending(const struct vmm *v, const char *id)
{
	for (const struct vmm_starting *s = v->starting; s != NULL; s = s->next)
		if (strcmp(s->id, id) == 0)
			return true;
	return false;
}

/* ---- the computation (in the child, or in-process without an event loop) - */

static void hex48(json_t *o, const char *key, const uint8_t *b, size_t n)
{
	char h[2 * 48 + 1];

	cvm_hex_encode(b, n, h);
	(void)json_object_set_new(o, key, json_string(h));
}

static int read_input(const char *what, const char *path, size_t max, uint8_t **out, size_t *len, char *err,
                      size_t err_len)
{
	int r = cvm_file_read(path, max, out, len);

	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot read the image's %s %s: %s", what, path,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
	return r;
}

/* probe runs the ACPI probe over the VM's QEMU arguments (without the
 * program and without -name, which is not in the tables and would keep
 * VMs of the same shape from sharing the cache). */
static int probe(const struct vmm_conf *c, const struct vmm_image *img, const struct vmm_argv *argv,
                 const char *wd, struct cvm_qemu_acpi *acpi, char *err, size_t err_len)
{
	struct cvm_qemu_probe_opts o;
	const char *neutral[3] = {NULL, NULL, NULL};
	const char **args;
	char work[VMM_PATH_MAX + 16], cache[VMM_PATH_MAX + 16];
	size_t n = 0;
	int r;

	args = calloc(argv->count + 1, sizeof(*args));
	if (args == NULL)
		return CVM_E_NOMEM;
	for (size_t i = 1; i < argv->count; i++) {
		if (strcmp(argv->v[i], "-name") == 0 && i + 1 < argv->count) {
			i++;
			continue;
		}
		args[n++] = argv->v[i];
	}
	(void)snprintf(work, sizeof(work), "%s/acpi-probe", wd);
	(void)snprintf(cache, sizeof(cache), "%s/acpi-cache", c->run_dir);
	(void)vmm_rmtree(work);
	memset(&o, 0, sizeof(o));
	o.qemu = argv->v[0];
	o.swtpm = c->swtpm;
	o.args = args;
	o.arg_count = n;
	o.kernel = img->kernel;
	o.initrd = img->acpi_probe_initrd;
	o.work_dir = work;
	o.timeout_s = PROBE_TIMEOUT_S;
	o.cache_dir = cache;
	/* VMs of one shape share a probe, whatever their folders */
	neutral[0] = wd;
	neutral[1] = img->dir;
	o.cache_neutral = neutral;
	r = cvm_qemu_acpi_probe(&o, acpi, err, err_len);
	free(args);
	(void)vmm_rmtree(work);
	return r;
}

/* compute fills `m` with the registers of the launch of `img` as `vm`. */
static int compute(const struct vmm_conf *c, const struct vmm_vm *vm, const struct vmm_image *img,
                   const struct vmm_argv *argv, const char *wd, struct cvm_measure *m, json_t *info,
                   char *err, size_t err_len)
{
	struct cvm_qemu_acpi acpi;
	struct cvm_measure_acpi digests;
	struct cvm_measure_input in;
	uint8_t *fw = NULL, *kernel = NULL, *initrd = NULL;
	size_t fw_len = 0, kernel_len = 0, initrd_len = 0;
	char cmdline[sizeof(img->cmdline) + 16];
	uint8_t d[48];
	int64_t t0 = now_ms();
	int r;

	memset(&acpi, 0, sizeof(acpi));
	r = probe(c, img, argv, wd, &acpi, err, err_len);
	if (r != CVM_OK)
		return r;
	cvm_qemu_acpi_digests(&acpi, &digests);
	(void)json_object_set_new(info, "acpi_from_cache", json_boolean(acpi.from_cache));
	(void)json_object_set_new(info, "acpi_probe_ms", json_integer(now_ms() - t0));
	cvm_qemu_acpi_cleanup(&acpi);
	r = read_input("firmware", img->bios, CVM_TDVF_IMAGE_MAX, &fw, &fw_len, err, err_len);
	if (r == CVM_OK)
		r = read_input("kernel", img->kernel, CVM_MEASURE_KERNEL_MAX, &kernel, &kernel_len, err,
		               err_len);
	if (r == CVM_OK && img->initrd[0] != '\0')
		r = read_input("initrd", img->initrd, INITRD_MAX, &initrd, &initrd_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	/* OVMF hands the kernel its command line with "initrd=initrd" when
	 * there is an initrd, and measures that (as `cvm measure --image`) */
	(void)snprintf(cmdline, sizeof(cmdline), "%s%s%s", img->cmdline, img->cmdline[0] != '\0' ? " " : "",
	               initrd != NULL ? "initrd=initrd" : "");
	memset(&in, 0, sizeof(in));
	in.firmware = fw;
	in.firmware_len = fw_len;
	in.kernel = kernel;
	in.kernel_len = kernel_len;
	in.initrd = initrd;
	in.initrd_len = initrd_len;
	in.cmdline = cmdline;
	in.cmdline_len = strlen(cmdline);
	in.memory_size = (uint64_t)vm->spec.memory_mb << 20;
	in.cpu_count = vm->spec.vcpu;
	/* the order of a QEMU with upstream TDX (9.0 and later): what
	 * `cvm measure` assumes for a vm_config without qemu_version */
	in.order = CVM_MRTD_SINGLE_PASS;
	in.variant = CVM_OVMF_PRE202505;
	in.acpi = &digests;
	r = cvm_measure_tdx(&in, m, err, err_len);
	if (r == CVM_OK) {
		json_t *inputs = json_object();

		cvm_sha384(fw, fw_len, d);
		hex48(inputs, "firmware_sha384", d, 48);
		cvm_sha384(kernel, kernel_len, d);
		hex48(inputs, "kernel_sha384", d, 48);
		if (initrd != NULL) {
			cvm_sha384(initrd, initrd_len, d);
			hex48(inputs, "initrd_sha384", d, 48);
		}
		(void)json_object_set_new(inputs, "cmdline", json_string(cmdline));
		(void)json_object_set_new(inputs, "memory_size", json_integer((json_int_t)in.memory_size));
		(void)json_object_set_new(inputs, "cpu_count", json_integer((json_int_t)in.cpu_count));
		(void)json_object_set_new(inputs, "mrtd_order", json_string("single_pass"));
		hex48(inputs, "acpi_table_loader_sha384", digests.loader, 48);
		hex48(inputs, "acpi_rsdp_sha384", digests.rsdp, 48);
		hex48(inputs, "acpi_tables_sha384", digests.tables, 48);
		(void)json_object_set_new(info, "inputs", inputs);
	}
out:
	free(fw);
	free(kernel);
	free(initrd);
	return r;
}

int vmm_measure_run(const struct vmm_conf *c, const struct vmm_vm *vm, const struct vmm_image *img,
                    const struct vmm_argv *argv, const uint8_t mrconfigid[48], const uint8_t host_data[32],
                    char *err, size_t err_len)
{
	struct cvm_tee_sim_launch launch;
	struct cvm_measure *m = NULL;
	char wd[VMM_PATH_MAX], path[VMM_PATH_MAX + 32], aside[VMM_PATH_MAX + 32], *text = NULL;
	json_t *info = json_object();
	bool measurable = img->kernel[0] != '\0' && img->bios[0] != '\0' && img->acpi_probe_initrd[0] != '\0';
	int r = CVM_OK;

	vmm_work_path(c, vm->id, NULL, wd, sizeof(wd));
	memset(&launch, 0, sizeof(launch));
	memcpy(launch.mr_config_id, mrconfigid, 48);
	memcpy(launch.snp_host_data, host_data, 32);
	if (info == NULL)
		return CVM_E_NOMEM;
	(void)json_object_set_new(info, "image", json_string(img->name));
	(void)json_object_set_new(info, "measured", json_boolean(measurable));
	if (measurable) {
		m = calloc(1, sizeof(*m));
		if (m == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		r = compute(c, vm, img, argv, wd, m, info, err, err_len);
		if (r != CVM_OK)
			goto out;
		memcpy(launch.mrtd, m->mrtd, 48);
		hex48(info, "mrtd", m->mrtd, 48);
		for (unsigned i = 0; i < 3; i++) {
			char key[8];

			memcpy(launch.rtmr_init[i], m->rtmr[i].value, 48);
			(void)snprintf(key, sizeof(key), "rtmr%u", i);
			hex48(info, key, m->rtmr[i].value, 48);
		}
	} else {
		(void)json_object_set_new(
		    info, "why_not",
		    json_string("the image names no kernel, firmware (bios) or acpi_probe_initrd: the "
		                "simulated TEE keeps the platform's MRTD and zero RTMR0..2"));
	}
	hex48(info, "mr_config_id", mrconfigid, 48);
	hex48(info, "snp_host_data", host_data, 32);
	/* the VM's simulated TEE: built aside, then renamed into place */
	(void)snprintf(path, sizeof(path), "%s/shared/.sim-new", wd);
	(void)snprintf(aside, sizeof(aside), "%s/shared/sim", wd);
	(void)vmm_rmtree(path);
	r = cvm_tee_sim_launch(c->sim_platform, path, &launch);
	if (r != CVM_OK) {
		(void)snprintf(
		    err, err_len,
		    "cannot launch the VM's simulated TEE on the platform %s ([vmm] sim_platform): %s",
		    c->sim_platform, cvm_strerror(r));
		goto out;
	}
	if (m != NULL) {
		/* the boot log TDVF would leave (the guest's CCEL): the agent
		 * serves it, so that verifiers replay RTMR0..2 */
		uint8_t *log = NULL;
		size_t log_len = 0;
		char lp[VMM_PATH_MAX + 48];

		(void)snprintf(lp, sizeof(lp), "%s/ccel.bin", path);
		r = cvm_measure_ccel(m, &log, &log_len);
		if (r == CVM_OK)
			r = cvm_file_write(lp, log, log_len, 0644);
		free(log);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "cannot write the launch's boot log %s", lp);
			goto out;
		}
	}
	if (vmm_rmtree(aside) != CVM_OK || rename(path, aside) != 0) {
		(void)snprintf(err, err_len, "cannot put the simulated TEE in place at %s: %s", aside,
		               strerror(errno));
		r = CVM_E_SYSTEM;
		goto out;
	}
	text = json_dumps(info, JSON_INDENT(2) | JSON_SORT_KEYS);
	(void)snprintf(path, sizeof(path), "%s/measurement.json", wd);
	r = text != NULL ? cvm_file_write(path, text, strlen(text), 0644) : CVM_E_NOMEM;
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot write %s", path);
out:
	free(text);
	free(m);
	json_decref(info);
	return r;
}

/* ---- the child, and its end ----------------------------------------------- */

static void starting_free(struct vmm_starting *s)
{
	if (s->ev != NULL)
		event_free(s->ev);
	if (s->fd >= 0)
		(void)close(s->fd);
	free(s);
}

static void unlink_starting(struct vmm *v, struct vmm_starting *s)
{
	for (struct vmm_starting **p = &v->starting; *p != NULL; p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			return;
		}
	}
}

static void reap(pid_t pid, int *status)
{
	*status = -1;
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
}

static void child_done(evutil_socket_t fd, short what, void *arg)
{
	struct vmm_starting *s = arg;
	struct vmm *v = s->v;
	struct vmm_vm vm;
	char path[VMM_PATH_MAX + 32], err[CVM_HTTPD_ERR_MAX] = "";
	uint8_t *msg = NULL;
	size_t msg_len = 0;
	int status;
	char buf[64];

	(void)what;
	if (read(fd, buf, sizeof(buf)) > 0)
		return; /* the child writes nothing; EOF is its end */
	reap(s->pid, &status);
	unlink_starting(v, s);
	cvm_daemon_log(CVM_LOG_INFO, "vm_measured", "id=%s status=%d ms=%lld", s->id, status,
	               (long long)(now_ms() - s->began_ms));
	if (vmm_db_get(v->db, s->id, &vm) != CVM_OK || strcmp(vm.state, VMM_ST_STARTING) != 0)
		goto done; /* removed or stopped meanwhile */
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		vmm_work_path(v->conf, vm.id, "measure.err", path, sizeof(path));
		if (cvm_file_read(path, 1024, &msg, &msg_len) == CVM_OK && msg_len > 0)
			(void)snprintf(err, sizeof(err), "%.*s", (int)msg_len, (const char *)msg);
		else
			(void)snprintf(err, sizeof(err), "the measurement of the launch failed (status %d)",
			               status);
		free(msg);
		cvm_daemon_log(CVM_LOG_WARN, "vm_start_failed", "id=%s reason=\"%.200s\"", vm.id, err);
		if (vmm_db_set_state(v->db, vm.id, VMM_ST_FAILED, 0, 0, err) != CVM_OK)
			cvm_daemon_log(CVM_LOG_WARN, "db", "id=%s msg=\"cannot record state failed\"", vm.id);
		goto done;
	}
	if (vmm_vm_launch(v, &vm, err, sizeof(err)) != CVM_OK)
		cvm_daemon_log(CVM_LOG_WARN, "vm_start_failed", "id=%s reason=\"%.200s\"", vm.id, err);
done:
	starting_free(s);
}

int vmm_measure_begin(struct vmm *v, struct vmm_vm *vm, const struct vmm_image *img,
                      const struct vmm_argv *argv, const uint8_t mrconfigid[48], const uint8_t host_data[32],
                      char *err, size_t err_len)
{
	struct vmm_starting *s;
	char path[VMM_PATH_MAX + 32];
	int p[2];
	pid_t parent = getpid();

	/* Without an event loop (the unit tests), or when there is nothing to
	 * probe (an image without kernel, firmware or probe initrd: only the
	 * simulated TEE to launch, milliseconds), it runs here. */
	if (v->base == NULL || img->kernel[0] == '\0' || img->bios[0] == '\0' ||
	    img->acpi_probe_initrd[0] == '\0') {
		int r = vmm_measure_run(v->conf, vm, img, argv, mrconfigid, host_data, err, err_len);

		return r != CVM_OK ? r : vmm_vm_launch(v, vm, err, err_len);
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CVM_E_NOMEM;
	s->fd = -1;
	s->v = v;
	(void)snprintf(s->id, sizeof(s->id), "%s", vm->id);
	s->began_ms = now_ms();
	vmm_work_path(v->conf, vm->id, "measure.err", path, sizeof(path));
	(void)unlink(path);
	if (pipe2(p, O_CLOEXEC) != 0) {
		free(s);
		(void)snprintf(err, err_len, "cannot make a pipe: %s", strerror(errno));
		return CVM_E_SYSTEM;
	}
	s->pid = fork();
	if (s->pid < 0) {
		(void)close(p[0]);
		(void)close(p[1]);
		free(s);
		(void)snprintf(err, err_len, "cannot fork the measurement: %s", strerror(errno));
		return CVM_E_SYSTEM;
	}
	if (s->pid == 0) {
		char e[CVM_HTTPD_ERR_MAX] = "";
		int r;

		/* no daemon, no child: a measurement outlives no cvm-vmmd */
		(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		(void)close(p[0]);
		(void)signal(SIGTERM, SIG_DFL);
		(void)signal(SIGINT, SIG_DFL);
		(void)signal(SIGPIPE, SIG_DFL);
		r = vmm_measure_run(v->conf, vm, img, argv, mrconfigid, host_data, e, sizeof(e));
		if (r != CVM_OK) {
			const char *why = e[0] != '\0' ? e : cvm_strerror(r);

			if (cvm_file_write(path, why, strlen(why), 0644) != CVM_OK)
				_exit(2);
		}
		_exit(r == CVM_OK ? 0 : 1);
	}
	(void)close(p[1]);
	s->fd = p[0];
	s->ev = event_new(v->base, s->fd, EV_READ | EV_PERSIST, child_done, s);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0) {
		int status;

		(void)kill(s->pid, SIGKILL);
		reap(s->pid, &status);
		starting_free(s);
		return CVM_E_NOMEM;
	}
	s->next = v->starting;
	v->starting = s;
	cvm_daemon_log(CVM_LOG_INFO, "vm_measuring", "id=%s pid=%lld", vm->id, (long long)s->pid);
	return CVM_OK;
}

bool vmm_start_cancel(struct vmm *v, const char *id)
{
	for (struct vmm_starting *s = v->starting; s != NULL; s = s->next) {
		if (strcmp(s->id, id) == 0) {
			int status;

			(void)kill(s->pid, SIGKILL);
			reap(s->pid, &status);
			unlink_starting(v, s);
			starting_free(s);
			cvm_daemon_log(CVM_LOG_INFO, "vm_start_cancelled", "id=%s", id);
			return true;
		}
	}
	return false;
}

void vmm_start_cancel_all(struct vmm *v)
{
	while (v->starting != NULL)
		(void)vmm_start_cancel(v, v->starting->id);
}

int vmm_sim_platform_ensure(const struct vmm_conf *c, char *err, size_t err_len)
{
	struct cvm_tee_sim_opts o;
	struct cvm_tee_dev *tee = NULL;
	char path[VMM_PATH_MAX + 16];
	struct stat st;
	int r;

	(void)snprintf(path, sizeof(path), "%s/sim.json", c->sim_platform);
	if (stat(path, &st) == 0) {
		r = cvm_tee_open_sim(c->sim_platform, CVM_TEE_PLATFORM_TDX, &tee);
		cvm_tee_free(tee);
		if (r != CVM_OK)
			(void)snprintf(
			    err, err_len,
			    "[vmm] sim_platform %s is not a simulated platform cvm-vmmd can use: %s",
			    c->sim_platform, cvm_strerror(r));
		return r;
	}
	cvm_tee_sim_opts_init(&o, (int64_t)time(NULL));
	o.with_snp = true;
	r = cvm_tee_sim_init(c->sim_platform, &o);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len,
		               "cannot make the simulated platform [vmm] sim_platform %s: %s (it must be "
		               "missing or an empty folder)",
		               c->sim_platform, r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return r;
	}
	cvm_daemon_log(CVM_LOG_INFO, "sim_platform_made", "path=%s", c->sim_platform);
	return CVM_OK;
}

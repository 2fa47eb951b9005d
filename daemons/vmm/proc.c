/* QEMU and swtpm processes. QEMU runs detached (-daemonize: its own
 * session, a pidfile in the work dir), so cvm-vmmd can restart without
 * stopping VMs; a VM's QEMU is recognised by its pid AND its command line,
 * which names the VM's work dir. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <cvmkit/encoding.h>
#include <cvmkit/file.h>

#include "daemon.h"
#include "vmm.h"

bool vmm_kvm_usable(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return false;
	(void)close(fd);
	return true;
}

bool vmm_proc_alive(int64_t pid, const char *work_dir)
{
	char path[64];
	uint8_t *buf = NULL;
	size_t len = 0;
	bool found = false;

	if (pid <= 0 || pid > 0x7fffffff || kill((pid_t)pid, 0) != 0)
		return false;
	if (work_dir == NULL)
		return true;
	(void)snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)pid);
	if (cvm_file_read(path, (size_t)256 * 1024, &buf, &len) != CVM_OK)
		return false;
	/* the arguments are NUL-separated: look for the work dir in each */
	for (size_t i = 0; i < len && !found;) {
		const char *arg = (const char *)buf + i;
		size_t n = strnlen(arg, len - i), wl = strlen(work_dir);

		for (size_t k = 0; k + wl <= n && !found; k++)
			found = memcmp(arg + k, work_dir, wl) == 0 &&
			        (arg[k + wl] == '/' || arg[k + wl] == ',' || k + wl == n);
		i += n + 1;
	}
	free(buf);
	return found;
}

static int64_t read_pidfile(const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t v = 0;
	char tmp[24];

	if (cvm_file_read(path, 32, &buf, &len) != CVM_OK)
		return 0;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	if (len == 0 || len >= sizeof(tmp)) {
		free(buf);
		return 0;
	}
	memcpy(tmp, buf, len);
	tmp[len] = '\0';
	free(buf);
	if (cvm_parse_u64(tmp, 1, 0x7fffffff, &v) != CVM_OK)
		return 0;
	return (int64_t)v;
}

/* spawn runs argv with stdout/stderr appended to `log`, waits for it (QEMU
 * -daemonize and swtpm --daemon return once ready) and reports its status. */
static int spawn_wait(char *const argv[], const char *log)
{
	pid_t pid;
	int status;

	pid = fork();
	if (pid < 0)
		return CVM_E_SYSTEM;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		int nul = open("/dev/null", O_RDONLY);

		(void)setsid();
		if (nul >= 0)
			(void)dup2(nul, 0);
		if (fd >= 0) {
			(void)dup2(fd, 1);
			(void)dup2(fd, 2);
		}
		/* QEMU outlives the daemon: it must hold none of its sockets or
		 * files (a listener kept open would block the next start) */
		closefrom(3);
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return CVM_E_SYSTEM;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? CVM_OK : CVM_E_SYSTEM;
}

static void kill_pidfile(const char *path, const char *work_dir)
{
	int64_t pid = read_pidfile(path);

	if (pid > 0 && vmm_proc_alive(pid, work_dir))
		(void)kill((pid_t)pid, SIGTERM);
	(void)unlink(path);
}

static int start_swtpm(struct vmm *v, const char *wd, char *err, size_t err_len)
{
	char state[VMM_PATH_MAX + 16], sock[VMM_PATH_MAX + 32], pidf[VMM_PATH_MAX + 32],
	    log[VMM_PATH_MAX + 16];
	char tpmstate[VMM_PATH_MAX + 64], ctrl[VMM_PATH_MAX + 96], pidopt[VMM_PATH_MAX + 96],
	    logopt[VMM_PATH_MAX + 64];
	char *argv[] = {v->conf->swtpm, "socket", "--tpm2", "--tpmstate", tpmstate,   "--ctrl", ctrl,
	                "--pid",        pidopt,   "--log",  logopt,       "--daemon", NULL};
	int r;

	(void)snprintf(state, sizeof(state), "%s/tpm", wd);
	(void)snprintf(sock, sizeof(sock), "%s/swtpm.sock", wd);
	(void)snprintf(pidf, sizeof(pidf), "%s/swtpm.pid", wd);
	(void)snprintf(log, sizeof(log), "%s/swtpm.log", wd);
	(void)snprintf(tpmstate, sizeof(tpmstate), "dir=%s", state);
	(void)snprintf(ctrl, sizeof(ctrl), "type=unixio,path=%s", sock);
	(void)snprintf(pidopt, sizeof(pidopt), "file=%s", pidf);
	(void)snprintf(logopt, sizeof(logopt), "file=%s", log);
	kill_pidfile(pidf, wd);
	(void)unlink(sock);
	if (mkdir(state, 0700) != 0 && errno != EEXIST) {
		(void)snprintf(err, err_len, "cannot make %s: %s", state, strerror(errno));
		return CVM_E_SYSTEM;
	}
	r = spawn_wait(argv, log);
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "swtpm did not start (see %s)", log);
	return r;
}

/* struct prepared is what a start needs: the image, the launch and argv. */
struct prepared {
	struct vmm_image img;
	struct vmm_launch l;
	struct vmm_argv argv;
	char wd[VMM_PATH_MAX];
};

/* prepare reads the image and the app-compose of `vm` and builds its QEMU
 * command line (a pure function of them and the configuration). */
static int prepare(struct vmm *v, const struct vmm_vm *vm, struct prepared *p, char *err, size_t err_len)
{
	char path[VMM_PATH_MAX + 32];
	uint8_t *compose = NULL, app_id[20];
	size_t compose_len = 0, app_id_len = 0;
	int r;

	memset(p, 0, sizeof(*p));
	vmm_work_path(v->conf, vm->id, NULL, p->wd, sizeof(p->wd));
	r = vmm_image_load(v->conf->image_dir, vm->spec.image, &p->img, err, err_len);
	if (r != CVM_OK)
		return r;
	vmm_work_path(v->conf, vm->id, "shared/app-compose.json", path, sizeof(path));
	r = cvm_file_read(path, (size_t)256 * 1024, &compose, &compose_len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot read %s", path);
		return r;
	}
	p->l.conf = v->conf;
	p->l.vm = vm;
	p->l.image = &p->img;
	p->l.work_dir = p->wd;
	p->l.kvm =
	    strcmp(v->conf->accel, "kvm") == 0 || (strcmp(v->conf->accel, "auto") == 0 && vmm_kvm_usable());
	if (vm->app_id[0] != '\0' &&
	    cvm_hex_decode_exact(vm->app_id, strlen(vm->app_id), app_id, sizeof(app_id)) == CVM_OK)
		app_id_len = sizeof(app_id);
	r = vmm_compose_ids(compose, compose_len, app_id_len != 0 ? app_id : NULL, p->l.mrconfigid,
	                    p->l.host_data, err, err_len);
	free(compose);
	if (r != CVM_OK)
		return r;
	r = vmm_qemu_argv(&p->l, &p->argv);
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot build the QEMU command line: %s", cvm_strerror(r));
	return r;
}

static void start_failed(struct vmm *v, const struct vmm_vm *vm, const char *wd, const char *err)
{
	char path[VMM_PATH_MAX + 32];

	(void)snprintf(path, sizeof(path), "%s/swtpm.pid", wd);
	kill_pidfile(path, wd);
	if (vmm_db_set_state(v->db, vm->id, VMM_ST_FAILED, 0, 0, err) != CVM_OK)
		cvm_daemon_log(CVM_LOG_WARN, "db", "id=%s msg=\"cannot record state failed\"", vm->id);
}

int vmm_vm_start(struct vmm *v, struct vmm_vm *vm, char *err, size_t err_len)
{
	struct prepared *p;
	char wd[VMM_PATH_MAX];
	int r;

	vmm_work_path(v->conf, vm->id, NULL, wd, sizeof(wd));
	if (vm->pid > 0 && vmm_proc_alive(vm->pid, wd)) {
		(void)snprintf(err, err_len, "VM %s is already running (pid %lld)", vm->name,
		               (long long)vm->pid);
		return CVM_E_POLICY;
	}
	if (vmm_start_pending(v, vm->id)) {
		(void)snprintf(err, err_len, "VM %s is already starting", vm->name);
		return CVM_E_POLICY;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return CVM_E_NOMEM;
	r = prepare(v, vm, p, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = vmm_db_set_state(v->db, vm->id, VMM_ST_STARTING, 0, 0, "");
	if (r == CVM_OK)
		r = vmm_db_set_progress(v->db, vm->id, VMM_PROGRESS_START, NULL);
	if (r != CVM_OK)
		goto out;
	(void)snprintf(vm->state, sizeof(vm->state), "%s", VMM_ST_STARTING);
	if (v->conf->platform != VMM_PLATFORM_DEV) {
		r = vmm_vm_launch(v, vm, err, err_len);
		goto out;
	}
	/* dev: the simulated TEE gets what a TDX module and TDVF would have
	 * measured (measure.c); QEMU starts once that is done */
	if (vmm_db_set_progress(v->db, vm->id, "measuring the launch (firmware, kernel, ACPI tables)",
	                        NULL) != CVM_OK)
		cvm_daemon_log(CVM_LOG_WARN, "db", "id=%s msg=\"cannot record the progress\"", vm->id);
	vmm_pause_point("start_measure");
	r = vmm_measure_begin(v, vm, &p->img, &p->argv, p->l.mrconfigid, p->l.host_data, err, err_len);
	if (r != CVM_OK)
		start_failed(v, vm, p->wd, err);
out:
	vmm_argv_cleanup(&p->argv);
	free(p);
	return r;
}

int vmm_vm_launch(struct vmm *v, struct vmm_vm *vm, char *err, size_t err_len)
{
	struct prepared *p;
	char path[VMM_PATH_MAX + 32], log[VMM_PATH_MAX + 16];
	int64_t pid;
	int r;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return CVM_E_NOMEM;
	r = prepare(v, vm, p, err, err_len);
	if (r != CVM_OK)
		goto fail;
	if (v->conf->platform == VMM_PLATFORM_DEV) {
		r = start_swtpm(v, p->wd, err, err_len);
		if (r != CVM_OK)
			goto fail;
	}
	(void)snprintf(path, sizeof(path), "%s/qemu.pid", p->wd);
	(void)unlink(path);
	(void)snprintf(log, sizeof(log), "%s/qemu.log", p->wd);
	r = spawn_wait(p->argv.v, log);
	pid = read_pidfile(path);
	if (r != CVM_OK || pid <= 0) {
		(void)snprintf(err, err_len, "QEMU did not start (see %s)", log);
		r = CVM_E_SYSTEM;
		goto fail;
	}
	vm->pid = pid;
	vm->started = (int64_t)time(NULL);
	r = vmm_db_set_state(v->db, vm->id, VMM_ST_RUNNING, pid, vm->started, "");
	if (r == CVM_OK)
		r = vmm_db_set_progress(v->db, vm->id, "QEMU started", NULL);
	(void)snprintf(vm->state, sizeof(vm->state), "%s", VMM_ST_RUNNING);
	cvm_daemon_log(CVM_LOG_INFO, "vm_started", "id=%s pid=%lld", vm->id, (long long)pid);
	vmm_channel_open(v, vm->id); /* dev: what the guest reports on its way up */
	goto out;
fail:
	start_failed(v, vm, p->wd, err);
out:
	vmm_argv_cleanup(&p->argv);
	free(p);
	return r;
}

/* qmp sends one command over the VM's QMP socket (after the greeting and
 * qmp_capabilities), within about two seconds. */
static int qmp(const char *wd, const char *command)
{
	struct sockaddr_un sa;
	char cmd[128], buf[4096];
	int fd, r = CVM_E_SYSTEM, replies = 0;
	size_t n;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	n = (size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/qmp.sock", wd);
	if (n >= sizeof(sa.sun_path))
		return CVM_E_TOO_LARGE;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return CVM_E_SYSTEM;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto out;
	(void)snprintf(cmd, sizeof(cmd), "{\"execute\":\"qmp_capabilities\"}\n{\"execute\":\"%s\"}\n",
	               command);
	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd))
		goto out;
	/* greeting, capabilities reply, command reply */
	while (replies < 3) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t got;

		if (poll(&p, 1, 2000) <= 0)
			goto out;
		got = read(fd, buf, sizeof(buf));
		if (got <= 0)
			break; /* quit closes the socket */
		for (ssize_t i = 0; i < got; i++)
			replies += buf[i] == '\n';
	}
	r = CVM_OK;
out:
	(void)close(fd);
	return r;
}

static void stop_helpers(const char *wd)
{
	char path[VMM_PATH_MAX + 32];

	(void)snprintf(path, sizeof(path), "%s/swtpm.pid", wd);
	kill_pidfile(path, wd);
}

/* serial_reason picks from the end of the VM's serial log the line that
 * best says why it stopped: the last kernel panic, else the guest's last
 * own line (cvm-guest:, cvm-agentd:), else the last line; printable,
 * at most `cap` - 1 bytes. The log is the guest's: read bounded, shown only. */
static void serial_reason(const char *wd, char *out, size_t cap)
{
	static const char *const marks[] = {"Kernel panic", "cvm-guest:", "cvm-agentd:", ""};
	char path[VMM_PATH_MAX + 16], buf[8192];
	ssize_t n = 0;
	off_t size;
	int fd;

	out[0] = '\0';
	(void)snprintf(path, sizeof(path), "%s/serial.log", wd);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > 0 &&
	    lseek(fd, size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0, SEEK_SET) >= 0)
		n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++) {
		/* the last line holding the mark (any non-empty line for "") */
		for (ssize_t end = n; end > 0;) {
			ssize_t start = end - 1;
			size_t j = 0;

			while (start > 0 && buf[start - 1] != '\n')
				start--;
			if (end - start > 1 &&
			    memmem(buf + start, (size_t)(end - start), marks[m], strlen(marks[m])) != NULL) {
				for (ssize_t i = start; i < end && j + 1 < cap; i++)
					if (buf[i] != '\n' && buf[i] != '\r')
						out[j++] =
						    (char)(buf[i] >= 0x20 && buf[i] < 0x7f ? buf[i] : '?');
				out[j] = '\0';
				return;
			}
			end = start;
		}
	}
}

void vmm_vm_refresh(struct vmm *v, struct vmm_vm *vm)
{
	char wd[VMM_PATH_MAX], why[160], err[256];
	bool ended_itself;

	if (strcmp(vm->state, VMM_ST_RUNNING) != 0 && strcmp(vm->state, VMM_ST_STOPPING) != 0 &&
	    strcmp(vm->state, VMM_ST_STARTING) != 0)
		return;
	if (vmm_start_pending(v, vm->id))
		return; /* measuring: QEMU is not started yet */
	vmm_work_path(v->conf, vm->id, NULL, wd, sizeof(wd));
	if (vm->pid > 0 && vmm_proc_alive(vm->pid, wd))
		return;
	stop_helpers(wd);
	/* A running VM whose QEMU ended without StopVm or ShutdownVm: the guest
	 * powered off, or failed (a panic, a boot that gave up; -no-reboot).
	 * Unless the guest said why on its channel, the serial log says it. */
	ended_itself = strcmp(vm->state, VMM_ST_RUNNING) == 0 && vm->last_error[0] == '\0';
	err[0] = '\0';
	if (ended_itself) {
		serial_reason(wd, why, sizeof(why));
		if (why[0] != '\0')
			(void)snprintf(err, sizeof(err), "the VM stopped on its own; its serial log ends: %s",
			               why);
		cvm_daemon_log(CVM_LOG_INFO, "vm_ended", "id=%s last_progress=\"%.80s\"", vm->id,
		               vm->boot_progress);
	}
	if (vmm_db_set_state(v->db, vm->id, VMM_ST_STOPPED, 0, 0, err[0] != '\0' ? err : NULL) == CVM_OK) {
		(void)snprintf(vm->state, sizeof(vm->state), "%s", VMM_ST_STOPPED);
		if (err[0] != '\0')
			(void)snprintf(vm->last_error, sizeof(vm->last_error), "%s", err);
		vm->pid = 0;
		vm->started = 0;
	}
}

struct stop_wait {
	struct vmm *v;
	char id[VMM_ID_LEN + 1];
	struct event *ev;
	time_t deadline;
};

static void stop_tick(evutil_socket_t fd, short what, void *arg)
{
	struct stop_wait *s = arg;
	struct vmm_vm vm;
	char wd[VMM_PATH_MAX];
	struct timeval tv = {1, 0};

	(void)fd;
	(void)what;
	if (vmm_db_get(s->v->db, s->id, &vm) != CVM_OK)
		goto done;
	vmm_work_path(s->v->conf, vm.id, NULL, wd, sizeof(wd));
	if (vm.pid > 0 && vmm_proc_alive(vm.pid, wd) && time(NULL) < s->deadline) {
		(void)event_add(s->ev, &tv);
		return;
	}
	if (vm.pid > 0 && vmm_proc_alive(vm.pid, wd)) {
		cvm_daemon_log(CVM_LOG_INFO, "vm_stop", "id=%s action=quit_after_timeout", vm.id);
		if (qmp(wd, "quit") != CVM_OK)
			(void)kill((pid_t)vm.pid, SIGKILL);
	}
	vmm_vm_refresh(s->v, &vm);
done:
	event_free(s->ev);
	free(s);
}

int vmm_vm_stop(struct vmm *v, struct vmm_vm *vm, bool force, char *err, size_t err_len)
{
	char wd[VMM_PATH_MAX];
	struct stop_wait *s;
	struct timeval tv = {1, 0};

	vmm_work_path(v->conf, vm->id, NULL, wd, sizeof(wd));
	vmm_channel_close(v, vm->id);
	if (vmm_start_cancel(v, vm->id)) {
		/* stopped while measuring: QEMU never ran */
		if (vmm_db_set_state(v->db, vm->id, VMM_ST_STOPPED, 0, 0, NULL) != CVM_OK)
			return CVM_E_SYSTEM;
		(void)snprintf(vm->state, sizeof(vm->state), "%s", VMM_ST_STOPPED);
		return CVM_OK;
	}
	if (vm->pid <= 0 || !vmm_proc_alive(vm->pid, wd)) {
		vmm_vm_refresh(v, vm);
		(void)snprintf(err, err_len, "VM %s is not running (state %s)", vm->name, vm->state);
		return CVM_E_POLICY;
	}
	if (force || v->base == NULL) {
		/* asked for: not a VM that ended on its own (vmm_vm_refresh) */
		if (vmm_db_set_state(v->db, vm->id, VMM_ST_STOPPING, vm->pid, vm->started, NULL) == CVM_OK)
			(void)snprintf(vm->state, sizeof(vm->state), "%s", VMM_ST_STOPPING);
		if (qmp(wd, "quit") != CVM_OK)
			(void)kill((pid_t)vm->pid, SIGKILL);
		for (int i = 0; i < 50 && vmm_proc_alive(vm->pid, wd); i++)
			(void)usleep(100 * 1000);
		if (vmm_proc_alive(vm->pid, wd))
			(void)kill((pid_t)vm->pid, SIGKILL);
		vmm_vm_refresh(v, vm);
		cvm_daemon_log(CVM_LOG_INFO, "vm_stopped", "id=%s how=quit", vm->id);
		return CVM_OK;
	}
	if (qmp(wd, "system_powerdown") != CVM_OK) {
		(void)snprintf(err, err_len, "cannot reach the QMP socket of VM %s; use StopVm", vm->name);
		return CVM_E_SYSTEM;
	}
	if (vmm_db_set_state(v->db, vm->id, VMM_ST_STOPPING, vm->pid, vm->started, NULL) != CVM_OK)
		return CVM_E_SYSTEM;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return CVM_E_NOMEM;
	s->v = v;
	(void)snprintf(s->id, sizeof(s->id), "%s", vm->id);
	s->deadline = time(NULL) + (time_t)v->conf->stop_timeout_s;
	s->ev = evtimer_new(v->base, stop_tick, s);
	if (s->ev == NULL || event_add(s->ev, &tv) != 0) {
		if (s->ev != NULL)
			event_free(s->ev);
		free(s);
		return CVM_E_NOMEM;
	}
	cvm_daemon_log(CVM_LOG_INFO, "vm_stopping", "id=%s how=powerdown timeout_s=%llu", vm->id,
	               (unsigned long long)v->conf->stop_timeout_s);
	return CVM_OK;
}

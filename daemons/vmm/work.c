/* VM work directories and crash safety (docs/daemons/cvm-vmmd.md).
 *
 * Create: the row is inserted (state creating) first; the directory is
 * built as run_dir/.tmp-<id>, every file fsynced, the manifest vm.json
 * written last; then it is renamed to run_dir/<id> and the row moves on.
 * Remove: the row moves to removing; the directory is renamed to
 * run_dir/.rm-<id> and deleted; then the row is deleted. At startup
 * vmm_reconcile finishes or undoes whatever a crash interrupted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/encoding.h>
#include <cvmkit/file.h>

#include "daemon.h"
#include "vmm.h"

void vmm_pause_point(const char *step)
{
	const char *want = getenv("CVM_VMMD_TEST_PAUSE_AT");

	if (want == NULL || strcmp(want, step) != 0)
		return;
	cvm_daemon_log(CVM_LOG_WARN, "test_pause", "msg=\"paused at %s\"", step);
	(void)fprintf(stderr, "paused at %s\n", step);
	for (;;)
		(void)pause();
}

void vmm_work_path(const struct vmm_conf *c, const char *id, const char *rel, char *out, size_t out_len)
{
	(void)snprintf(out, out_len, "%s/%s%s%s", c->run_dir, id, rel != NULL ? "/" : "",
	               rel != NULL ? rel : "");
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = CVM_OK;

	if (fd < 0)
		return CVM_E_SYSTEM;
	if (fsync(fd) != 0)
		r = CVM_E_SYSTEM;
	(void)close(fd);
	return r;
}

static bool is_dir(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int vmm_rmtree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int r = CVM_OK;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? CVM_OK : CVM_E_SYSTEM;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 ? CVM_OK : CVM_E_SYSTEM;
	d = opendir(path);
	if (d == NULL)
		return CVM_E_SYSTEM;
	while ((e = readdir(d)) != NULL) {
		char sub[VMM_PATH_MAX * 2];
		int n;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		n = snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (n < 0 || (size_t)n >= sizeof(sub)) {
			r = CVM_E_TOO_LARGE;
			continue;
		}
		if (vmm_rmtree(sub) != CVM_OK)
			r = CVM_E_SYSTEM;
	}
	(void)closedir(d);
	if (r == CVM_OK && rmdir(path) != 0)
		r = CVM_E_SYSTEM;
	return r;
}

/* run waits for `argv` (no shell), its output to `log_path` (NULL: null). */
static int run(char *const argv[], const char *log_path)
{
	pid_t pid;
	int status;

	pid = fork();
	if (pid < 0)
		return CVM_E_SYSTEM;
	if (pid == 0) {
		int fd = open(log_path != NULL ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			(void)dup2(fd, 1);
			(void)dup2(fd, 2);
		}
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

static int write_in(const char *dir, const char *name, const void *buf, size_t len, char *err, size_t err_len)
{
	char path[VMM_PATH_MAX * 2];
	int r;

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	r = cvm_file_write(path, buf, len, 0644);
	if (r != CVM_OK)
		(void)snprintf(err, err_len, "cannot write %s: %s", path,
		               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
	return r;
}

static json_t *urls(const char (*a)[VMM_URL_MAX], size_t n, const char (*dflt)[VMM_URL_MAX], size_t dn)
{
	json_t *arr = json_array();

	if (n == 0) {
		a = dflt;
		n = dn;
	}
	for (size_t i = 0; arr != NULL && i < n; i++)
		(void)json_array_append_new(arr, json_string(a[i]));
	return arr;
}

/* sys_config makes shared/.sys-config.json (dstack spec §4.5). */
static char *sys_config(struct vmm *v, const struct vmm_vm *vm)
{
	const struct vmm_spec *s = &vm->spec;
	json_t *vmc, *o;
	char *vmc_text, *text;

	vmc = json_pack("{s:s,s:I,s:I,s:s,s:s}", "os_image_hash", "", "cpu_count", (json_int_t)s->vcpu,
	                "memory_size", (json_int_t)s->memory_mb * 1024 * 1024, "image", s->image, "platform",
	                vmm_platform_name(v->conf->platform));
	if (vmc == NULL)
		return NULL;
	vmc_text = json_dumps(vmc, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(vmc);
	if (vmc_text == NULL)
		return NULL;
	o = json_pack("{s:o,s:o,s:s,s:s,s:s,s:s}", "kms_urls",
	              urls(s->kms_urls, s->kms_url_count, (const char(*)[VMM_URL_MAX])v->conf->kms_urls,
	                   v->conf->kms_url_count),
	              "gateway_urls",
	              urls(s->gateway_urls, s->gateway_url_count,
	                   (const char(*)[VMM_URL_MAX])v->conf->gateway_urls, v->conf->gateway_url_count),
	              "pccs_url", "", "docker_registry", "", "host_api_url", "", "vm_config", vmc_text);
	free(vmc_text);
	if (o == NULL)
		return NULL;
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

static int write_shared(struct vmm *v, const struct vmm_vm *vm, const char *shared, const struct vmm_files *f,
                        bool all, char *err, size_t err_len)
{
	char *sc = NULL, info[96];
	int r = CVM_OK, n;

	if (f->compose != NULL)
		r = write_in(shared, "app-compose.json", f->compose, f->compose_len, err, err_len);
	if (r == CVM_OK && (all || f->env != NULL))
		r = write_in(shared, ".encrypted-env", f->env != NULL ? f->env : (const uint8_t *)"",
		             f->env != NULL ? f->env_len : 0, err, err_len);
	if (r == CVM_OK && (all || f->user_config != NULL))
		r = write_in(shared, ".user-config", f->user_config != NULL ? f->user_config : "",
		             f->user_config != NULL ? f->user_config_len : 0, err, err_len);
	if (r == CVM_OK && all) {
		/* always the VM's app id, fixed at creation (an upgrade keeps it) */
		n = snprintf(info, sizeof(info), "{\"app_id\":\"%s\"}", vm->app_id);
		r = write_in(shared, ".instance_info", info, (size_t)n, err, err_len);
	}
	if (r == CVM_OK && all) {
		sc = sys_config(v, vm);
		if (sc == NULL) {
			(void)snprintf(err, err_len, "out of memory");
			return CVM_E_NOMEM;
		}
		r = write_in(shared, ".sys-config.json", sc, strlen(sc), err, err_len);
		free(sc);
	}
	return r;
}

/* copy_file copies `from` to `to` (mode 0644, fsynced). */
static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in, out, r = CVM_OK;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return CVM_E_SYSTEM;
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		(void)close(in);
		return CVM_E_SYSTEM;
	}
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = CVM_E_SYSTEM;
			break;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				r = CVM_E_SYSTEM;
				break;
			}
			off += w;
		}
		if (r != CVM_OK)
			break;
	}
	if (r == CVM_OK && fsync(out) != 0)
		r = CVM_E_SYSTEM;
	(void)close(in);
	if (close(out) != 0)
		r = CVM_E_SYSTEM;
	return r;
}

/* put_app_images puts the VM's docker image tarballs (app_images, from
 * [vmm] app_image_dir) in shared/images/: a hard link when the two are on
 * one file system, else a copy. The guest loads them before compose up;
 * they are not measured (docs/threat-model.md). */
static int put_app_images(struct vmm *v, const struct vmm_vm *vm, const char *shared, char *err,
                          size_t err_len)
{
	char dir[VMM_PATH_MAX + 96], from[VMM_PATH_MAX * 2], to[VMM_PATH_MAX * 2];
	struct stat st;

	if (vm->spec.app_image_count == 0)
		return CVM_OK;
	(void)snprintf(dir, sizeof(dir), "%s/images", shared);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		(void)snprintf(err, err_len, "cannot make %s: %s", dir, strerror(errno));
		return CVM_E_SYSTEM;
	}
	for (size_t i = 0; i < vm->spec.app_image_count; i++) {
		const char *name = vm->spec.app_images[i];

		(void)snprintf(from, sizeof(from), "%s/%s", v->conf->app_image_dir, name);
		(void)snprintf(to, sizeof(to), "%s/%s", dir, name);
		if (lstat(from, &st) != 0 || !S_ISREG(st.st_mode)) {
			(void)snprintf(
			    err, err_len,
			    "no app image %s in [vmm] app_image_dir %s: put the docker-save tarball "
			    "there first",
			    name, v->conf->app_image_dir);
			return CVM_E_INVAL;
		}
		(void)unlink(to);
		if (link(from, to) != 0 && copy_file(from, to) != CVM_OK) {
			(void)snprintf(err, err_len, "cannot copy %s to %s: %s", from, to, strerror(errno));
			return CVM_E_SYSTEM;
		}
	}
	return fsync_dir(dir) == CVM_OK ? CVM_OK : CVM_E_SYSTEM;
}

int vmm_work_write_shared(struct vmm *v, const struct vmm_vm *vm, const struct vmm_files *f, char *err,
                          size_t err_len)
{
	char shared[VMM_PATH_MAX], *sc;
	int r;

	vmm_work_path(v->conf, vm->id, "shared", shared, sizeof(shared));
	r = write_shared(v, vm, shared, f, false, err, err_len);
	if (r != CVM_OK)
		return r;
	sc = sys_config(v, vm);
	if (sc == NULL)
		return CVM_E_NOMEM;
	r = write_in(shared, ".sys-config.json", sc, strlen(sc), err, err_len);
	free(sc);
	return r;
}

int vmm_work_create(struct vmm *v, const struct vmm_vm *vm, const struct vmm_files *f, char *err,
                    size_t err_len)
{
	char tmp[VMM_PATH_MAX + 48], shared[VMM_PATH_MAX + 64], disk[VMM_PATH_MAX + 64], size[32],
	    final[VMM_PATH_MAX];
	char log[VMM_PATH_MAX + 64];
	char *manifest = NULL;
	json_t *m;
	int r;

	(void)snprintf(tmp, sizeof(tmp), "%s/.tmp-%s", v->conf->run_dir, vm->id);
	vmm_work_path(v->conf, vm->id, NULL, final, sizeof(final));
	(void)vmm_rmtree(tmp);
	if (mkdir(tmp, 0700) != 0) {
		(void)snprintf(err, err_len, "cannot make %s: %s", tmp, strerror(errno));
		return CVM_E_SYSTEM;
	}
	(void)snprintf(shared, sizeof(shared), "%s/shared", tmp);
	if (mkdir(shared, 0755) != 0) {
		(void)snprintf(err, err_len, "cannot make %s: %s", shared, strerror(errno));
		return CVM_E_SYSTEM;
	}
	r = write_shared(v, vm, shared, f, true, err, err_len);
	if (r == CVM_OK)
		r = put_app_images(v, vm, shared, err, err_len);
	if (r != CVM_OK)
		return r;
	vmm_pause_point("create_files");
	(void)snprintf(disk, sizeof(disk), "%s/hda.img", tmp);
	(void)snprintf(size, sizeof(size), "%uG", (unsigned)vm->spec.disk_gb);
	(void)snprintf(log, sizeof(log), "%s/qemu-img.log", tmp);
	{
		char *argv[] = {v->conf->qemu_img, "create", "-q", "-f", "qcow2", disk, size, NULL};

		r = run(argv, log);
	}
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "%s create -f qcow2 %s %s failed (see %s)", v->conf->qemu_img,
		               disk, size, log);
		return r;
	}
	vmm_pause_point("create_disk");
	m = json_pack("{s:s,s:s,s:I}", "id", vm->id, "name", vm->name, "cid", (json_int_t)vm->cid);
	manifest = m != NULL ? json_dumps(m, JSON_COMPACT) : NULL;
	json_decref(m);
	if (manifest == NULL)
		return CVM_E_NOMEM;
	/* vm.json last: its presence marks a complete directory */
	r = write_in(tmp, "vm.json", manifest, strlen(manifest), err, err_len);
	free(manifest);
	if (r == CVM_OK && (fsync_dir(shared) != CVM_OK || fsync_dir(tmp) != CVM_OK)) {
		(void)snprintf(err, err_len, "cannot sync %s: %s", tmp, strerror(errno));
		r = CVM_E_SYSTEM;
	}
	if (r != CVM_OK)
		return r;
	vmm_pause_point("create_manifest");
	if (rename(tmp, final) != 0 || fsync_dir(v->conf->run_dir) != CVM_OK) {
		(void)snprintf(err, err_len, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
		return CVM_E_SYSTEM;
	}
	vmm_pause_point("create_rename");
	return CVM_OK;
}

int vmm_work_remove(struct vmm *v, const char *id)
{
	char dir[VMM_PATH_MAX], rm[VMM_PATH_MAX + 48];

	vmm_work_path(v->conf, id, NULL, dir, sizeof(dir));
	(void)snprintf(rm, sizeof(rm), "%s/.rm-%s", v->conf->run_dir, id);
	if (exists(dir) && (rename(dir, rm) != 0 || fsync_dir(v->conf->run_dir) != CVM_OK))
		return CVM_E_SYSTEM;
	vmm_pause_point("remove_rename");
	if (vmm_rmtree(rm) != CVM_OK)
		return CVM_E_SYSTEM;
	(void)fsync_dir(v->conf->run_dir);
	vmm_pause_point("remove_delete");
	return CVM_OK;
}

static bool uuid_like(const char *s)
{
	if (strlen(s) != VMM_ID_LEN)
		return false;
	for (size_t i = 0; i < VMM_ID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL || s[i] == '\0')
			return false;
	}
	return true;
}

int vmm_reconcile(struct vmm *v)
{
	struct vmm_vm *all = NULL;
	size_t n = 0;
	DIR *d;
	struct dirent *e;
	char path[VMM_PATH_MAX * 2], kv[CVM_KV_MAX], kv2[CVM_KV_MAX];
	int r;

	r = vmm_db_list(v->db, &all, &n);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < n; i++) {
		struct vmm_vm *vm = &all[i];

		if (strcmp(vm->state, VMM_ST_CREATING) == 0) {
			vmm_work_path(v->conf, vm->id, "vm.json", path, sizeof(path));
			if (exists(path)) {
				r = vmm_db_set_state(v->db, vm->id, VMM_ST_STOPPED, 0, 0, NULL);
				cvm_daemon_log(CVM_LOG_INFO, "reconcile", "id=%s action=create_finished",
				               vm->id);
			} else {
				(void)snprintf(path, sizeof(path), "%s/.tmp-%s", v->conf->run_dir, vm->id);
				(void)vmm_rmtree(path);
				vmm_work_path(v->conf, vm->id, NULL, path, sizeof(path));
				(void)vmm_rmtree(path);
				r = vmm_db_delete(v->db, vm->id);
				cvm_daemon_log(CVM_LOG_INFO, "reconcile", "id=%s action=create_undone",
				               vm->id);
			}
		} else if (strcmp(vm->state, VMM_ST_REMOVING) == 0) {
			char wd[VMM_PATH_MAX];

			vmm_work_path(v->conf, vm->id, NULL, wd, sizeof(wd));
			if (vmm_proc_alive(vm->pid, wd))
				(void)kill((pid_t)vm->pid, SIGKILL);
			r = vmm_work_remove(v, vm->id);
			if (r == CVM_OK)
				r = vmm_db_delete(v->db, vm->id);
			cvm_daemon_log(CVM_LOG_INFO, "reconcile", "id=%s action=remove_finished", vm->id);
		} else if (strcmp(vm->state, VMM_ST_RUNNING) == 0 ||
		           strcmp(vm->state, VMM_ST_STARTING) == 0 ||
		           strcmp(vm->state, VMM_ST_STOPPING) == 0) {
			char wd[VMM_PATH_MAX];

			vmm_work_path(v->conf, vm->id, NULL, wd, sizeof(wd));
			if (vm->pid > 0 && vmm_proc_alive(vm->pid, wd)) {
				if (strcmp(vm->state, VMM_ST_RUNNING) != 0)
					r = vmm_db_set_state(v->db, vm->id, VMM_ST_RUNNING, vm->pid,
					                     vm->started, NULL);
				cvm_daemon_log(CVM_LOG_INFO, "reconcile", "id=%s action=adopted pid=%lld",
				               vm->id, (long long)vm->pid);
			} else if (strcmp(vm->state, VMM_ST_STARTING) == 0) {
				/* killed while it measured or launched: the daemon
				 * starts it again (vmm_resume_starts) */
				cvm_daemon_log(CVM_LOG_INFO, "reconcile", "id=%s action=start_to_resume",
				               vm->id);
			} else {
				vmm_vm_refresh(v, vm);
				cvm_daemon_log(CVM_LOG_INFO, "reconcile", "id=%s action=marked_stopped",
				               vm->id);
			}
		}
		if (r != CVM_OK)
			break;
	}
	/* leftovers no row accounts for */
	d = opendir(v->conf->run_dir);
	if (d == NULL) {
		free(all);
		return CVM_E_SYSTEM;
	}
	while (r == CVM_OK && (e = readdir(d)) != NULL) {
		const char *name = e->d_name;
		bool orphan = false;

		/* a .tmp- dir of a row still creating was removed above; any other
		 * belongs to no creation in progress */
		if (strncmp(name, ".tmp-", 5) == 0 || strncmp(name, ".rm-", 4) == 0) {
			orphan = true;
		} else if (uuid_like(name)) {
			struct vmm_vm tmp;
			char aside[VMM_PATH_MAX * 2];

			/* A complete VM directory without a row cannot come from a
			 * crash (rows are made first and deleted last): the database
			 * was lost or replaced. Its data disk is kept, out of the way. */
			if (vmm_db_get(v->db, name, &tmp) != CVM_E_INVAL)
				continue;
			(void)snprintf(path, sizeof(path), "%s/%s", v->conf->run_dir, name);
			(void)snprintf(aside, sizeof(aside), "%s/.orphan-%s", v->conf->run_dir, name);
			if (rename(path, aside) == 0)
				cvm_daemon_log(
				    CVM_LOG_WARN, "reconcile",
				    "path=%s action=orphan_moved_aside to=%s msg=\"a VM directory the "
				    "database does not know; delete it by hand once its disk is not needed\"",
				    cvm_kv(path, kv), cvm_kv(aside, kv2));
			continue;
		}
		if (!orphan)
			continue;
		(void)snprintf(path, sizeof(path), "%s/%s", v->conf->run_dir, name);
		if (is_dir(path)) {
			cvm_daemon_log(CVM_LOG_INFO, "reconcile", "path=%s action=orphan_removed",
			               cvm_kv(path, kv));
			(void)vmm_rmtree(path);
		}
	}
	(void)closedir(d);
	free(all);
	return r;
}

void vmm_resume_starts(struct vmm *v)
{
	struct vmm_vm *all = NULL;
	size_t n = 0;
	char wd[VMM_PATH_MAX], err[CVM_HTTPD_ERR_MAX];

	if (vmm_db_list(v->db, &all, &n) != CVM_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		struct vmm_vm *vm = &all[i];

		vmm_work_path(v->conf, vm->id, NULL, wd, sizeof(wd));
		if (strcmp(vm->state, VMM_ST_STARTING) != 0 || vmm_start_pending(v, vm->id) ||
		    (vm->pid > 0 && vmm_proc_alive(vm->pid, wd)))
			continue;
		err[0] = '\0';
		cvm_daemon_log(CVM_LOG_INFO, "reconcile", "id=%s action=start_resumed", vm->id);
		if (vmm_vm_start(v, vm, err, sizeof(err)) != CVM_OK)
			cvm_daemon_log(CVM_LOG_WARN, "vm_start_failed", "id=%s reason=\"%.200s\"", vm->id,
			               err);
	}
	free(all);
}

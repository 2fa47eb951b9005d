/* The probe: run QEMU (and a swtpm per TPM) on the rewritten command line,
 * read the blobs from the serial log, cache them. */
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

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/qemu.h>

#include "qemu_int.h"

#define PATH_LEN 4096
#define VERSION_MAX ((size_t)4 << 10)
#define QEMU_LOG_MAX ((size_t)1 << 20)
#define BIOS_MAX ((size_t)64 << 20)
#define TAIL_LEN 1200u
#define SOCKET_WAIT_MS 10000u
#define VERSION_WAIT_MS 30000u

static bool path_fmt(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_LEN, "%s/%s", dir, name);

	return n > 0 && (size_t)n < PATH_LEN;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

static void argv_free(char **v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

/* argv_dup copies a NULL-terminated list: execvp takes writable strings,
 * and the child must not allocate (the caller may have threads). */
static char **argv_dup(const char *const *in)
{
	size_t n = 0;
	char **v;

	while (in[n] != NULL)
		n++;
	v = calloc(n + 1, sizeof(*v));
	if (v == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(in[i]);
		if (v[i] == NULL) {
			argv_free(v);
			return NULL;
		}
	}
	return v;
}

/* spawn starts argv[0] (looked up in PATH) with stdin /dev/null and stdout
 * and stderr to `log` (truncated). The child dies with the caller
 * (PR_SET_PDEATHSIG): a probe's QEMU and swtpm never outlive a probe whose
 * process was killed. */
static int spawn(const char *const *args, const char *log, pid_t *pid)
{
	char **argv = NULL;
	pid_t parent = getpid();
	pid_t p;

	*pid = -1;
	argv = argv_dup(args);
	if (argv == NULL)
		return CVM_E_NOMEM;
	p = fork();
	if (p < 0) {
		argv_free(argv);
		return CVM_E_SYSTEM;
	}
	if (p == 0) {
		int in = open("/dev/null", O_RDONLY);
		int out = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(126);
		if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
		    argv[0] == NULL)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	argv_free(argv);
	*pid = p;
	return CVM_OK;
}

/* wait_for waits up to `ms` for `pid`; true when it ended (status set). */
static bool wait_for(pid_t pid, unsigned ms, int *status)
{
	for (unsigned t = 0;; t += 50) {
		pid_t w = waitpid(pid, status, WNOHANG);

		if (w == pid || (w < 0 && errno != EINTR))
			return true;
		if (t >= ms)
			return false;
		sleep_ms(50);
	}
}

static void stop(pid_t pid)
{
	int status;

	if (pid <= 0)
		return;
	(void)kill(pid, SIGTERM);
	if (!wait_for(pid, 3000, &status)) {
		(void)kill(pid, SIGKILL);
		(void)wait_for(pid, 5000, &status);
	}
}

/* add_tail appends the last bytes of the file `path` to `err`, printable
 * ASCII and newlines only. */
static void add_tail(char *err, size_t err_len, const char *what, const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0, from;
	char tail[TAIL_LEN + 1];
	size_t n = 0;

	if (cvm_file_read(path, CVM_QEMU_PROBE_LOG_MAX, &buf, &len) != CVM_OK) {
		qemu_erradd(err, err_len, "\n--- %s (%s): cannot be read", what, path);
		return;
	}
	from = len > TAIL_LEN ? len - TAIL_LEN : 0;
	for (size_t i = from; i < len; i++) {
		uint8_t c = buf[i];

		if (c == '\r')
			continue;
		tail[n++] = (char)((c == '\n' || (c >= 0x20 && c < 0x7f)) ? c : '.');
	}
	tail[n] = '\0';
	free(buf);
	qemu_erradd(err, err_len, "\n--- %s (%s), last %zu bytes:\n%s", what, path, len - from, tail);
}

/* qemu_version runs `qemu --version` and hands back its output. */
static int qemu_version(const char *qemu, const char *work, uint8_t **out, size_t *out_len, char *err,
                        size_t err_len)
{
	char log[PATH_LEN];
	const char *argv[] = {qemu, "--version", NULL};
	pid_t pid;
	int status = 0, r;

	*out = NULL;
	*out_len = 0;
	if (!path_fmt(log, work, "qemu-version.txt"))
		return CVM_E_INVAL;
	r = spawn(argv, log, &pid);
	if (r != CVM_OK) {
		qemu_errf(err, err_len, "cannot start %s: %s", qemu, strerror(errno));
		return r;
	}
	if (!wait_for(pid, VERSION_WAIT_MS, &status)) {
		stop(pid);
		qemu_errf(err, err_len, "%s --version did not end within %u s", qemu, VERSION_WAIT_MS / 1000);
		return CVM_E_SYSTEM;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		qemu_errf(err, err_len,
		          "cannot run %s: not found (Debian package qemu-system-x86, or give its path)",
		          qemu);
		return CVM_E_SYSTEM;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		qemu_errf(err, err_len, "%s --version failed (is it QEMU? exit status %d)", qemu,
		          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		return CVM_E_SYSTEM;
	}
	r = cvm_file_read(log, VERSION_MAX, out, out_len);
	if (r != CVM_OK)
		qemu_errf(err, err_len, "cannot read the output of %s --version", qemu);
	return r;
}

/* replace_all returns `s` with every `from` replaced by `to` (malloc'd). */
static char *replace_all(const char *s, const char *from, const char *to)
{
	size_t n = 0, fl = strlen(from), tl = strlen(to), len;
	const char *p;
	char *out, *w;

	for (p = strstr(s, from); p != NULL; p = strstr(p + fl, from))
		n++;
	len = strlen(s) + n * tl + 1;
	out = malloc(len);
	if (out == NULL)
		return NULL;
	for (w = out, p = s;;) {
		const char *q = strstr(p, from);

		if (q == NULL) {
			memcpy(w, p, strlen(p) + 1);
			break;
		}
		memcpy(w, p, (size_t)(q - p));
		w += q - p;
		for (size_t k = 0; k < tl; k++) /* the placeholder, without its NUL */
			*w++ = to[k];
		p = q + fl;
	}
	return out;
}

static void free_strv(char **v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* cache_key: SHA-256 of the version, the -bios file's SHA-256 and the
 * normalised arguments, each followed by a NUL. */
static int cache_key(const struct cvm_qemu_probe_opts *o, const uint8_t *version, size_t version_len,
                     char key[65], char *err, size_t err_len)
{
	struct cvm_qemu_probe_cmd norm;
	struct cvm_digest_ctx *ctx = NULL;
	uint8_t d[32], bios_sha[32];
	char **neutral = NULL;
	int r;

	/* the caller's own paths made neutral (opts->cache_neutral) */
	if (o->cache_neutral != NULL) {
		neutral = calloc(o->arg_count + 1, sizeof(*neutral));
		if (neutral == NULL)
			return CVM_E_NOMEM;
		for (size_t i = 0; i < o->arg_count; i++) {
			neutral[i] = strdup(o->args[i]);
			for (size_t k = 0; neutral[i] != NULL && o->cache_neutral[k] != NULL; k++) {
				char *x;

				if (o->cache_neutral[k][0] == '\0')
					continue;
				x = replace_all(neutral[i], o->cache_neutral[k], "@PATH@");
				free(neutral[i]);
				neutral[i] = x;
			}
			if (neutral[i] == NULL) {
				free_strv(neutral, i);
				return CVM_E_NOMEM;
			}
		}
	}
	r = cvm_qemu_probe_cmd_make(neutral != NULL ? (const char *const *)neutral : o->args, o->arg_count,
	                            "@KERNEL@", "@INITRD@", "@WORK@", &norm, err, err_len);
	free_strv(neutral, o->arg_count);
	if (r != CVM_OK)
		return r;
	r = cvm_digest_ctx_new(CVM_DIGEST_SHA256, &ctx);
	if (r == CVM_OK)
		r = cvm_digest_update(ctx, "cvmkit-acpi-probe-v1", 21);
	if (r == CVM_OK)
		r = cvm_digest_update(ctx, version, version_len);
	if (r == CVM_OK)
		r = cvm_digest_update(ctx, "", 1);
	for (size_t i = 0; i + 1 < o->arg_count && r == CVM_OK; i++) {
		uint8_t *bios = NULL;
		size_t bios_len = 0;

		if (strcmp(o->args[i], "-bios") != 0 && strcmp(o->args[i], "--bios") != 0)
			continue;
		r = cvm_file_read(o->args[i + 1], BIOS_MAX, &bios, &bios_len);
		if (r != CVM_OK) {
			qemu_errf(err, err_len, "cannot read the firmware '%.200s' (-bios): %s",
			          o->args[i + 1], r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
			break;
		}
		cvm_sha256(bios, bios_len, bios_sha);
		free(bios);
		r = cvm_digest_update(ctx, bios_sha, sizeof(bios_sha));
	}
	for (size_t i = 0; i < norm.count && r == CVM_OK; i++)
		r = cvm_digest_update(ctx, norm.args[i], strlen(norm.args[i]) + 1);
	if (r == CVM_OK)
		r = cvm_digest_final(ctx, d, sizeof(d));
	if (r == CVM_OK)
		cvm_hex_encode(d, sizeof(d), key);
	cvm_digest_ctx_free(ctx);
	cvm_qemu_probe_cmd_cleanup(&norm);
	return r;
}

static bool cache_read(const char *cache, const char *key, struct cvm_qemu_acpi *out)
{
	uint8_t **blobs[QEMU_ACPI_FILES] = {&out->loader, &out->rsdp, &out->tables};
	size_t *lens[QEMU_ACPI_FILES] = {&out->loader_len, &out->rsdp_len, &out->tables_len};
	char dir[PATH_LEN], path[PATH_LEN];

	if (!path_fmt(dir, cache, key))
		return false;
	for (unsigned i = 0; i < QEMU_ACPI_FILES; i++) {
		if (!path_fmt(path, dir, qemu_acpi_cache_names[i]) ||
		    cvm_file_read(path, qemu_acpi_caps[i], blobs[i], lens[i]) != CVM_OK || *lens[i] == 0) {
			cvm_qemu_acpi_cleanup(out);
			return false;
		}
	}
	return true;
}

/* cache_write stores the blobs under cache/key (through a temporary folder
 * renamed into place, so a reader sees all three or none). Best effort. */
static void cache_write(const char *cache, const char *key, const struct cvm_qemu_acpi *a)
{
	const uint8_t *blobs[QEMU_ACPI_FILES] = {a->loader, a->rsdp, a->tables};
	const size_t lens[QEMU_ACPI_FILES] = {a->loader_len, a->rsdp_len, a->tables_len};
	char tmp_name[128], tmp[PATH_LEN], dir[PATH_LEN], path[PATH_LEN];

	(void)mkdir(cache, 0755);
	(void)snprintf(tmp_name, sizeof(tmp_name), ".%s.%ld", key, (long)getpid());
	if (!path_fmt(tmp, cache, tmp_name) || !path_fmt(dir, cache, key))
		return;
	if (mkdir(tmp, 0755) != 0)
		return;
	for (unsigned i = 0; i < QEMU_ACPI_FILES; i++)
		if (!path_fmt(path, tmp, qemu_acpi_cache_names[i]) ||
		    cvm_file_write(path, blobs[i], lens[i], 0644) != CVM_OK)
			goto fail;
	if (rename(tmp, dir) == 0)
		return;
fail:
	for (unsigned i = 0; i < QEMU_ACPI_FILES; i++)
		if (path_fmt(path, tmp, qemu_acpi_cache_names[i]))
			(void)unlink(path);
	(void)rmdir(tmp);
}

/* wait_socket waits for `path` to be a socket while `pid` lives; *ended
 * says the process ended (and was reaped). */
static bool wait_socket(const char *path, pid_t pid, bool *ended)
{
	struct stat st;
	int status;

	*ended = false;
	for (unsigned t = 0; t < SOCKET_WAIT_MS; t += 50) {
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return true;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			*ended = true;
			return false;
		}
		sleep_ms(50);
	}
	return false;
}

static int start_swtpm(const char *swtpm, const char *work, size_t n, pid_t *pid, char *err, size_t err_len)
{
	char dir[PATH_LEN], sock[PATH_LEN], log[PATH_LEN], state[PATH_LEN + 8], ctrl[PATH_LEN + 32];
	char name[32];
	bool ended = false;
	int r;

	*pid = -1;
	(void)snprintf(name, sizeof(name), "tpm%zu", n);
	if (!path_fmt(dir, work, name))
		return CVM_E_INVAL;
	(void)snprintf(name, sizeof(name), "swtpm%zu.sock", n);
	if (!path_fmt(sock, work, name))
		return CVM_E_INVAL;
	(void)snprintf(name, sizeof(name), "swtpm%zu.log", n);
	if (!path_fmt(log, work, name))
		return CVM_E_INVAL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		qemu_errf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
		return CVM_E_SYSTEM;
	}
	(void)unlink(sock);
	(void)snprintf(state, sizeof(state), "dir=%s", dir);
	(void)snprintf(ctrl, sizeof(ctrl), "type=unixio,path=%s", sock);
	{
		const char *argv[] = {swtpm, "socket", "--tpm2", "--tpmstate", state, "--ctrl", ctrl, NULL};

		r = spawn(argv, log, pid);
	}
	if (r != CVM_OK) {
		qemu_errf(err, err_len, "cannot start %s: %s", swtpm, strerror(errno));
		return r;
	}
	if (!wait_socket(sock, *pid, &ended)) {
		qemu_errf(err, err_len,
		          "the throwaway swtpm for the VM's TPM did not start (Debian package swtpm)");
		add_tail(err, err_len, "swtpm log", log);
		if (!ended)
			stop(*pid);
		*pid = -1;
		return CVM_E_SYSTEM;
	}
	return CVM_OK;
}

static int run_probe(const struct cvm_qemu_probe_opts *o, const char *qemu, const char *work,
                     struct cvm_qemu_acpi *out, char *err, size_t err_len)
{
	struct cvm_qemu_probe_cmd cmd;
	pid_t tpm[CVM_QEMU_TPM_MAX], pid = -1;
	char console[PATH_LEN], log[PATH_LEN];
	const char **argv = NULL;
	uint8_t *serial = NULL;
	size_t serial_len = 0;
	unsigned timeout = o->timeout_s != 0 ? o->timeout_s : CVM_QEMU_PROBE_TIMEOUT_DEFAULT;
	int status = 0, r;
	bool ended;

	for (size_t i = 0; i < CVM_QEMU_TPM_MAX; i++)
		tpm[i] = -1;
	r = cvm_qemu_probe_cmd_make(o->args, o->arg_count, o->kernel, o->initrd, work, &cmd, err, err_len);
	if (r != CVM_OK)
		return r;
	if (!path_fmt(console, work, "console.log") || !path_fmt(log, work, "qemu.log")) {
		r = CVM_E_INVAL;
		goto out;
	}
	(void)unlink(console);
	for (size_t i = 0; i < cmd.tpm_count; i++) {
		r = start_swtpm(o->swtpm != NULL ? o->swtpm : "swtpm", work, i, &tpm[i], err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	argv = calloc(cmd.count + 2, sizeof(*argv));
	if (argv == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	argv[0] = qemu;
	for (size_t i = 0; i < cmd.count; i++)
		argv[i + 1] = cmd.args[i];
	r = spawn(argv, log, &pid);
	if (r != CVM_OK) {
		qemu_errf(err, err_len, "cannot start %s: %s", qemu, strerror(errno));
		goto out;
	}
	ended = wait_for(pid, timeout * 1000u, &status);
	if (!ended) {
		stop(pid);
		qemu_errf(err, err_len, "the probe did not end within %u s (QEMU killed)", timeout);
		add_tail(err, err_len, "serial log", console);
		r = CVM_E_SYSTEM;
		goto out;
	}
	pid = -1;
	r = cvm_file_read(console, CVM_QEMU_PROBE_LOG_MAX, &serial, &serial_len);
	if (r != CVM_OK) {
		qemu_errf(err, err_len, "QEMU wrote no serial log (%s)", console);
		add_tail(err, err_len, "QEMU's messages", log);
		goto out;
	}
	r = cvm_qemu_probe_output_parse(serial, serial_len, out, err, err_len);
	if (r != CVM_OK) {
		add_tail(err, err_len, "serial log", console);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			add_tail(err, err_len, "QEMU's messages", log);
	}
out:
	if (pid > 0)
		stop(pid);
	for (size_t i = 0; i < CVM_QEMU_TPM_MAX; i++)
		stop(tpm[i]);
	free(serial);
	free((void *)argv);
	cvm_qemu_probe_cmd_cleanup(&cmd);
	return r;
}

int cvm_qemu_acpi_probe(const struct cvm_qemu_probe_opts *o, struct cvm_qemu_acpi *out, char *err,
                        size_t err_len)
{
	const char *qemu;
	uint8_t *version = NULL;
	size_t version_len = 0;
	char key[65];
	int r;

	memset(out, 0, sizeof(*out));
	if (o == NULL || o->kernel == NULL || o->initrd == NULL || o->work_dir == NULL ||
	    (o->args == NULL && o->arg_count != 0)) {
		qemu_errf(err, err_len,
		          "the probe needs the VM's arguments, a kernel, an initrd and a work dir");
		return CVM_E_INVAL;
	}
	qemu = o->qemu != NULL ? o->qemu : "qemu-system-x86_64";
	if (mkdir(o->work_dir, 0700) != 0 && errno != EEXIST) {
		qemu_errf(err, err_len, "cannot create the work dir '%s': %s", o->work_dir, strerror(errno));
		return CVM_E_SYSTEM;
	}
	r = qemu_version(qemu, o->work_dir, &version, &version_len, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = cache_key(o, version, version_len, key, err, err_len);
	if (r != CVM_OK)
		goto out;
	if (o->cache_dir != NULL && cache_read(o->cache_dir, key, out)) {
		out->from_cache = true;
		memcpy(out->cache_key, key, sizeof(key));
		goto out;
	}
	r = run_probe(o, qemu, o->work_dir, out, err, err_len);
	if (r != CVM_OK)
		goto out;
	memcpy(out->cache_key, key, sizeof(key));
	if (o->cache_dir != NULL)
		cache_write(o->cache_dir, key, out);
out:
	free(version);
	return r;
}

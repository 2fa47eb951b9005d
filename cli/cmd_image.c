/* cvm image: a small bootable guest made from Debian packages only.
 *
 *   cvm image build OUT [--kernel DIR] [--agent PATH] [--agent-config FILE]
 *                       [--busybox PATH] [--add SRC:DEST]... [--test-channel]
 *                       [--app-runtime [--base DIR] [--firmware FILE]]
 *
 * OUT receives vmlinuz (Debian's kernel), initrd.img (busybox-static, the
 * drivers the root needs, an /init that mounts the root read-only and
 * switches to it), root.ext4 (busybox, cvm-agentd with every library it
 * loads, its config and init scripts: the files IMA measures), cmdline and
 * manifest.json. The same inputs give the same bytes: every time is
 * SOURCE_DATE_EPOCH, entries are sorted, owners are root, the ext4 UUID and
 * hash seed are fixed. The tools are Debian's (mke2fs -d, cpio, gzip -n,
 * ldd); nothing is downloaded. With --app-runtime the root is a Debian
 * base with Docker, and OUT also gets the firmware (ovmf.fd), the ACPI
 * probe initrd of its kernel (acpi-probe.img) and metadata.json naming
 * them, so that cvm measure --image predicts its registers. See
 * docs/cli/cvm-image.md and docs/vm.md. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/measure.h>
#include <cvmkit/qemu.h>

#include "cli.h"

#define IMG_CMD "image build"
#define IMG_DEFAULT_KERNEL "/var/cache/cvmkit/guest-kernel/current"
#define IMG_DEFAULT_BASE "/var/cache/cvmkit/guest-root/current"
/* Debian's ovmf: the whole OVMF (variables and code in one file), which
 * carries the TDVF metadata that cvm measure predicts MRTD from. */
#define IMG_DEFAULT_FIRMWARE "/usr/share/ovmf/OVMF.fd"
/* --app-runtime: the file names in OUT that metadata.json gives. */
#define IMG_FIRMWARE_NAME "ovmf.fd"
#define IMG_PROBE_NAME "acpi-probe.img"
#define IMG_DEFAULT_EPOCH 1704067200L /* 2024-01-01T00:00:00Z */
#define IMG_ADD_MAX 64
#define IMG_LIBS_MAX 128
#define IMG_MODS_MAX 128
#define IMG_PATH_MAX 4096
#define IMG_CAPTURE_MAX ((size_t)256 * 1024)
#define IMG_ARTIFACT_MAX ((size_t)1024 * 1024 * 1024)
#define IMG_MODULES_DEP_MAX ((size_t)16 * 1024 * 1024)
#define IMG_TREE_MAX 131072 /* entries in one staged tree (the app runtime's root: about 20000) */
/* The ext4 root's identity: fixed so that the image is reproducible. */
#define IMG_ROOT_UUID "6b2f3a0e-9c1d-4e57-8a3b-2f6d5c4e1a90"
#define IMG_ROOT_HASH_SEED "1c7e5b9a-3d2f-4a68-b1e0-9f8d7c6b5a43"
static const char img_mke2fs_ext[] = "hash_seed=" IMG_ROOT_HASH_SEED ",root_owner=0:0,nodiscard";
#define IMG_CMDLINE \
	"console=ttyS0 loglevel=4 ima_policy=tcb ima_hash=sha256 ima_template=ima-ng cvm.root=/dev/vda"

enum {
	OPT_KERNEL = 0x200,
	OPT_AGENT,
	OPT_AGENT_CONFIG,
	OPT_BUSYBOX,
	OPT_ADD,
	OPT_BASE,
	OPT_FIRMWARE,
	OPT_TEST_CHANNEL, /* from here on, options without an argument */
	OPT_APP_RUNTIME,
};

/* The drivers the initramfs loads (with their dependencies from
 * modules.dep): the root and data disks, ext4, the network. The TPM drivers
 * (tpm_crb, tpm_tis) are built into Debian's kernel, so IMA finds the TPM
 * when it initialises; the image build checks that in the kernel's config. */
static const char *const img_modules[] = {
    "crc32c_generic", "virtio_pci", "virtio_blk", "ext4", "virtio_net",
};

/* --app-runtime: the modules the root gets (with their dependencies), which
 * its rcS loads with modprobe: the host channel and share (virtio_console,
 * 9p), LUKS (dm-crypt, xts(ecb(aes)), the crypto API cryptsetup asks
 * through sockets), Docker (overlay, bridge, veth, netfilter for
 * iptables-nft's NAT), the ACPI power button (button, evdev: busybox
 * acpid turns QEMU's system_powerdown into an orderly power-off). */
static const char *const img_app_modules[] = {
    "virtio_console",
    "9pnet_virtio",
    "9p",
    "dm-crypt",
    "xts",
    "ecb",
    "algif_skcipher",
    "algif_hash",
    "overlay",
    "bridge",
    "veth",
    "br_netfilter",
    "nf_tables",
    "nft_compat",
    "nft_chain_nat",
    "nft_masq",
    "nf_nat",
    "ip_tables",
    "iptable_nat",
    "iptable_filter",
    "xt_MASQUERADE",
    "xt_conntrack",
    "xt_addrtype",
    "xt_nat",
    "xt_tcpudp",
    "button",
    "evdev",
};
/* The files of lib/modules/VER besides the modules that modprobe and depmod
 * read. */
static const char *const img_modules_meta[] = {"modules.order", "modules.builtin", "modules.builtin.modinfo"};

/* --app-runtime: cli/guest-app/ (embedded at build time) and where each goes. */
#include "guest_app_files.h"
static const struct {
	const char *name;
	const char *guest_path;
	mode_t mode;
} img_app_files[] = {
    {"inittab", "/etc/inittab", 0644},
    {"rcS", "/etc/init.d/rcS", 0755},
    {"agent", "/usr/libexec/cvmkit/agent", 0755},
    {"report", "/usr/libexec/cvmkit/report", 0755},
    {"storage-setup", "/usr/libexec/cvmkit/storage-setup", 0755},
    {"app-start", "/usr/libexec/cvmkit/app-start", 0755},
    {"app-health", "/usr/libexec/cvmkit/app-health", 0755},
    {"shutdown", "/usr/libexec/cvmkit/shutdown", 0755},
    {"power-button", "/etc/acpi/PWRF/00000080", 0755},
    {"cvm-agentd.conf", "/etc/cvmkit/cvm-agentd.conf", 0644},
};

/* Libraries loaded with dlopen (no ldd shows them): tpm2-tss's TCTI loader
 * opens the device TCTI by name. */
static const char *const img_dlopen_libs[] = {"libtss2-tcti-device.so.0"};
static const char *const img_lib_dirs[] = {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"};

struct img_add {
	const char *src;
	const char *dest;
};

struct img {
	const char *out;
	const char *kernel_dir;
	const char *agent;
	const char *agent_config;
	const char *busybox;
	const char *base;     /* --app-runtime: the base root */
	const char *firmware; /* --app-runtime: copied to OUT/ovmf.fd */
	struct img_add adds[IMG_ADD_MAX];
	size_t add_count;
	long epoch;
	char kver[256];
	char vmlinuz[IMG_PATH_MAX];
	char work[IMG_PATH_MAX];
	char initrd_dir[IMG_PATH_MAX];
	char root_dir[IMG_PATH_MAX];
	uint8_t *fw; /* --app-runtime: the firmware's bytes, checked (firmware_load) */
	size_t fw_len;
	bool quiet;
	bool test_channel; /* --test-channel: a root shell for the host */
	bool app_runtime;  /* --app-runtime: Docker, LUKS, the boot hooks */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: cvm image build OUT [--kernel DIR] [--agent PATH] [--agent-config FILE]\n"
	        "                           [--busybox PATH] [--add SRC:DEST]... [--test-channel]\n"
	        "                           [--app-runtime [--base DIR] [--firmware FILE]]\n"
	        "\n"
	        "Makes a small bootable guest in OUT from Debian packages: vmlinuz, initrd.img,\n"
	        "root.ext4 (read-only; where IMA measures), cmdline and manifest.json (each\n"
	        "artifact's SHA-256 and the image digest over them). The same inputs give the same\n"
	        "bytes (SOURCE_DATE_EPOCH, default %ld).\n"
	        "\n"
	        "  --kernel DIR        an unpacked linux-image-*-amd64 package (boot/vmlinuz-VER,\n"
	        "                      lib/modules/VER with modules.dep); default $CVM_GUEST_KERNEL,\n"
	        "                      else %s (scripts/setup.sh makes it)\n"
	        "  --agent PATH        cvm-agentd to install (default: beside this cvm)\n"
	        "  --agent-config FILE the agent's config in the guest (default: the built-in one,\n"
	        "                      docs/vm.md)\n"
	        "  --busybox PATH      a static busybox (default /bin/busybox of busybox-static)\n"
	        "  --add SRC:DEST      put the file SRC at the absolute path DEST of the root\n"
	        "  --test-channel      TESTS ONLY: a root shell for the host on the second serial\n"
	        "                      port (the host of a confidential VM is not trusted)\n"
	        "  --app-runtime       the app guest: a Debian root with Docker, docker-compose and\n"
	        "                      cryptsetup (--base), the agent's boot hooks (LUKS2 data disk,\n"
	        "                      compose app), the host share and channel (docs/vm.md)\n"
	        "  --base DIR          its base root (default $CVM_GUEST_ROOT, else %s;\n"
	        "                      scripts/setup.sh makes it)\n"
	        "  --firmware FILE     its firmware, copied to OUT/ovmf.fd: a whole OVMF with TDVF\n"
	        "                      metadata (default %s, package ovmf); the\n"
	        "                      image also gets OUT/acpi-probe.img for cvm measure acpi-probe\n"
	        "\n"
	        "See docs/cli/cvm-image.md and docs/vm.md.\n",
	        IMG_DEFAULT_EPOCH, IMG_DEFAULT_KERNEL, IMG_DEFAULT_BASE, IMG_DEFAULT_FIRMWARE);
}

static void progress(const struct img *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void progress(const struct img *im, const char *fmt, ...)
{
	va_list ap;

	if (im->quiet)
		return;
	(void)fprintf(stderr, "cvm image: ");
	va_start(ap, fmt);
	(void)vfprintf(stderr, fmt, ap);
	va_end(ap);
	(void)fputc('\n', stderr);
}

/* path_join writes "a/b" into out; false when it does not fit. */
static bool path_join(char *out, size_t cap, const char *a, const char *b)
{
	int k = snprintf(out, cap, "%s/%s", a, b);

	return k >= 0 && (size_t)k < cap;
}

static const char *package_of(const char *tool)
{
	if (strcmp(tool, "mke2fs") == 0 || strcmp(tool, "debugfs") == 0)
		return "e2fsprogs";
	if (strcmp(tool, "cpio") == 0)
		return "cpio";
	if (strcmp(tool, "gzip") == 0)
		return "gzip";
	if (strcmp(tool, "ldd") == 0)
		return "libc-bin";
	if (strcmp(tool, "rm") == 0)
		return "coreutils";
	return "busybox-static";
}

/* run_child sets up and execs argv in the child of run(); it never
 * returns. `pipe_w` >= 0: stdout (and with merge_err stderr) go there. */
__attribute__((noreturn)) static void run_child(const struct img *im, const char *const argv[],
                                                bool merge_err, const char *cwd, const char *in,
                                                const char *out_path, int pipe_w)
{
	/* execvp wants writable strings: the child's own copies. */
	char *args[32];
	char epoch[32];
	const char *what = "its environment";
	size_t n = 0;
	int fd;

	(void)snprintf(epoch, sizeof(epoch), "%ld", im->epoch);
	if (setenv("SOURCE_DATE_EPOCH", epoch, 1) != 0 || setenv("E2FSPROGS_FAKE_TIME", epoch, 1) != 0 ||
	    setenv("LC_ALL", "C", 1) != 0 || setenv("TZ", "UTC", 1) != 0)
		goto fail;
	what = cwd;
	if (cwd != NULL && chdir(cwd) != 0)
		goto fail;
	what = in != NULL ? in : "/dev/null";
	fd = open(what, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
		goto fail;
	what = out_path != NULL ? out_path : "its output";
	if (pipe_w >= 0) {
		if (dup2(pipe_w, STDOUT_FILENO) < 0 || (merge_err && dup2(pipe_w, STDERR_FILENO) < 0))
			goto fail;
	} else if (out_path != NULL) {
		fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
			goto fail;
	} else if (dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
		goto fail;
	}
	what = "its arguments";
	for (; argv[n] != NULL; n++) {
		if (n + 1 >= sizeof(args) / sizeof(args[0]))
			goto fail;
		args[n] = strdup(argv[n]);
		if (args[n] == NULL)
			goto fail;
	}
	args[n] = NULL;
	execvp(args[0], args);
	_exit(127);
fail:
	(void)fprintf(stderr, "%s %s: cannot set up %s for %s: %s\n", CLI_PROG, IMG_CMD, argv[0], what,
	              strerror(errno));
	_exit(126);
}

/* run runs argv (no shell) with the reproducibility environment, stdin from
 * `in` (NULL: /dev/null), stdout to `out_path` or, with `cap`, into cap
 * (at most cap_len - 1 bytes, NUL-terminated); in `cwd` when not NULL.
 * Returns the exit status, or -1 with the reason printed. */
static int run(const struct img *im, const char *const argv[], bool merge_err, const char *cwd,
               const char *in, const char *out_path, char *cap, size_t cap_len)
{
	int pipefd[2] = {-1, -1};
	size_t got = 0;
	int status = 0;
	pid_t pid;

	if (cap != NULL && pipe2(pipefd, O_CLOEXEC) != 0) {
		cli_err(IMG_CMD, "cannot run %s: %s", argv[0], strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		cli_err(IMG_CMD, "cannot run %s: %s", argv[0], strerror(errno));
		if (cap != NULL) {
			(void)close(pipefd[0]);
			(void)close(pipefd[1]);
		}
		return -1;
	}
	if (pid == 0)
		run_child(im, argv, merge_err, cwd, in, out_path, cap != NULL ? pipefd[1] : -1);
	if (cap != NULL) {
		(void)close(pipefd[1]);
		for (;;) {
			char sink[4096];
			ssize_t n;

			if (got + 1 < cap_len)
				n = read(pipefd[0], cap + got, cap_len - 1 - got);
			else
				n = read(pipefd[0], sink, sizeof(sink));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			if (got + 1 < cap_len)
				got += (size_t)n;
			else
				got = cap_len; /* overflow: reported below */
		}
		(void)close(pipefd[0]);
		cap[got < cap_len ? got : cap_len - 1] = '\0';
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			cli_err(IMG_CMD, "lost %s: %s", argv[0], strerror(errno));
			return -1;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		cli_err(IMG_CMD,
		        "cannot run '%s': install Debian's %s package (scripts/setup.sh installs it)",
		        argv[0], package_of(argv[0]));
		return -1;
	}
	if (!WIFEXITED(status)) {
		cli_err(IMG_CMD, "%s was killed by signal %d", argv[0], WTERMSIG(status));
		return -1;
	}
	if (cap != NULL && got >= cap_len) {
		cli_err(IMG_CMD, "%s wrote more than %zu bytes", argv[0], cap_len - 1);
		return -1;
	}
	return WEXITSTATUS(status);
}

/* run_ok is run() that must exit 0. */
static bool run_ok(const struct img *im, const char *const argv[], const char *cwd, const char *in,
                   const char *out)
{
	int st = run(im, argv, false, cwd, in, out, NULL, 0);

	if (st == 0)
		return true;
	if (st > 0)
		cli_err(IMG_CMD, "%s failed with exit status %d (its messages are above)", argv[0], st);
	return false;
}

static bool mkdir_p(const char *path, mode_t mode)
{
	char buf[IMG_PATH_MAX];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) != 0 && errno != EEXIST) {
			cli_err(IMG_CMD, "cannot make the folder %s: %s", buf, strerror(errno));
			return false;
		}
		buf[i] = i == n ? '\0' : '/';
	}
	return true;
}

/* copy_file copies the contents of src (following symlinks) to the new
 * file dst with `mode`. */
static bool copy_file(const char *src, const char *dst, mode_t mode)
{
	char buf[65536];
	int in, out;
	bool ok = false;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		cli_err(IMG_CMD, "cannot read %s: %s", src, strerror(errno));
		return false;
	}
	out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (out < 0) {
		cli_err(IMG_CMD, "cannot create %s: %s", dst, strerror(errno));
		(void)close(in);
		return false;
	}
	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf));
		ssize_t off = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_err(IMG_CMD, "cannot read %s: %s", src, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		while (off < n) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				cli_err(IMG_CMD, "cannot write %s: %s", dst, strerror(errno));
				goto out;
			}
			off += w;
		}
	}
	ok = true;
out:
	if (close(out) != 0 && ok) {
		cli_err(IMG_CMD, "cannot write %s: %s", dst, strerror(errno));
		ok = false;
	}
	(void)close(in);
	if (ok && chmod(dst, mode) != 0) {
		cli_err(IMG_CMD, "cannot set the mode of %s: %s", dst, strerror(errno));
		ok = false;
	}
	return ok;
}

static bool write_text(const char *path, const char *text, mode_t mode)
{
	if (cvm_file_write(path, text, strlen(text), mode) != CVM_OK || chmod(path, mode) != 0) {
		cli_err(IMG_CMD, "cannot write %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

/* in_tree writes root + guest_path (absolute) to out. */
static bool in_tree(char *out, size_t cap, const char *root, const char *guest_path)
{
	int k = snprintf(out, cap, "%s%s", root, guest_path);

	return k >= 0 && (size_t)k < cap;
}

/* install copies src to the absolute guest path under root, making its
 * folders. */
static bool install(const char *root, const char *src, const char *guest_path, mode_t mode)
{
	char dst[IMG_PATH_MAX], dir[IMG_PATH_MAX];
	char *slash;

	if (!in_tree(dst, sizeof(dst), root, guest_path)) {
		cli_err(IMG_CMD, "path too long: %s", guest_path);
		return false;
	}
	memcpy(dir, dst, strlen(dst) + 1);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		if (!mkdir_p(dir, 0755))
			return false;
	}
	return copy_file(src, dst, mode);
}

/* -- the staged trees: sorted entries, fixed owners and times -- */

struct tree {
	char **paths; /* relative to the tree's root, sorted */
	size_t count;
	uint64_t bytes; /* file sizes rounded up to 4 KiB, plus 4 KiB a folder */
};

static void tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->paths[i]);
	free(t->paths);
	t->paths = NULL;
	t->count = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* tree_walk adds every entry under base/rel to t and sets its owner to
 * root (when we are root) and its times to the epoch. */
static bool tree_walk(const struct img *im, struct tree *t, const char *base, const char *rel)
{
	char path[IMG_PATH_MAX];
	struct timespec ts[2];
	struct dirent *de;
	struct stat st;
	DIR *d;
	bool ok = true;

	if (!path_join(path, sizeof(path), base, rel))
		return false;
	if (lstat(path, &st) != 0) {
		cli_err(IMG_CMD, "cannot read %s: %s", path, strerror(errno));
		return false;
	}
	if (t->count >= IMG_TREE_MAX) {
		cli_err(IMG_CMD, "more than %d entries in %s", IMG_TREE_MAX, base);
		return false;
	}
	t->paths[t->count] = strdup(rel);
	if (t->paths[t->count] == NULL)
		return false;
	t->count++;
	t->bytes += S_ISREG(st.st_mode) ? ((uint64_t)st.st_size + 4095u) / 4096u * 4096u : 4096u;
	if (geteuid() == 0 && lchown(path, 0, 0) != 0) {
		cli_err(IMG_CMD, "cannot set the owner of %s: %s", path, strerror(errno));
		return false;
	}
	ts[0].tv_sec = im->epoch;
	ts[0].tv_nsec = 0;
	ts[1] = ts[0];
	if (S_ISDIR(st.st_mode)) {
		d = opendir(path);
		if (d == NULL) {
			cli_err(IMG_CMD, "cannot read the folder %s: %s", path, strerror(errno));
			return false;
		}
		for (de = readdir(d); de != NULL && ok; de = readdir(d)) {
			char sub[IMG_PATH_MAX];

			if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
				continue;
			if (!path_join(sub, sizeof(sub), rel, de->d_name))
				ok = false;
			else
				ok = tree_walk(im, t, base, sub);
		}
		(void)closedir(d);
		if (!ok)
			return false;
	}
	/* Last, so that making the entries inside does not move a folder's
	 * time again. */
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) != 0) {
		cli_err(IMG_CMD, "cannot set the time of %s: %s", path, strerror(errno));
		return false;
	}
	return true;
}

static bool tree_scan(const struct img *im, const char *base, struct tree *t)
{
	memset(t, 0, sizeof(*t));
	t->paths = calloc(IMG_TREE_MAX, sizeof(*t->paths));
	if (t->paths == NULL)
		return false;
	if (!tree_walk(im, t, base, "."))
		return false;
	qsort(t->paths, t->count, sizeof(*t->paths), cmp_str);
	return true;
}

/* -- kernel and modules -- */

static bool find_kernel(struct img *im)
{
	char boot[IMG_PATH_MAX];
	struct dirent *de;
	int found = 0;
	DIR *d;

	if (!path_join(boot, sizeof(boot), im->kernel_dir, "boot"))
		return false;
	d = opendir(boot);
	if (d == NULL) {
		cli_err(IMG_CMD,
		        "no guest kernel in %s (%s): run scripts/setup.sh, which unpacks Debian's "
		        "linux-image-amd64 kernel into %s, or pass --kernel DIR",
		        im->kernel_dir, strerror(errno), IMG_DEFAULT_KERNEL);
		return false;
	}
	for (de = readdir(d); de != NULL; de = readdir(d)) {
		if (strncmp(de->d_name, "vmlinuz-", 8) != 0)
			continue;
		found++;
		if (strlen(de->d_name + 8) >= sizeof(im->kver) || strchr(de->d_name + 8, '/') != NULL)
			continue;
		memcpy(im->kver, de->d_name + 8, strlen(de->d_name + 8) + 1);
	}
	(void)closedir(d);
	if (found != 1 || im->kver[0] == '\0') {
		cli_err(IMG_CMD, "expected exactly one boot/vmlinuz-VERSION in %s, found %d", im->kernel_dir,
		        found);
		return false;
	}
	(void)snprintf(im->vmlinuz, sizeof(im->vmlinuz), "%s/boot/vmlinuz-%s", im->kernel_dir, im->kver);
	return true;
}

/* kernel_config_has is true when the kernel's config sets `line` exactly. */
static bool kernel_config_has(const struct img *im, const char *opt)
{
	char path[IMG_PATH_MAX];
	uint8_t *cfg = NULL;
	size_t len = 0;
	bool has = false;

	(void)snprintf(path, sizeof(path), "%s/boot/config-%s", im->kernel_dir, im->kver);
	if (cvm_file_read(path, IMG_MODULES_DEP_MAX, &cfg, &len) != CVM_OK)
		return false;
	for (size_t i = 0; i < len;) {
		const char *line = (const char *)cfg + i;
		const char *nl = memchr(line, '\n', len - i);
		size_t n = nl != NULL ? (size_t)(nl - line) : len - i;

		if (n == strlen(opt) && memcmp(line, opt, n) == 0)
			has = true;
		i += n + 1;
	}
	free(cfg);
	return has;
}

struct mods {
	char *paths[IMG_MODS_MAX]; /* relative to lib/modules/VER, in load order */
	size_t count;
};

static void mods_free(struct mods *m)
{
	for (size_t i = 0; i < m->count; i++)
		free(m->paths[i]);
	m->count = 0;
}

static bool mods_add(struct mods *m, const char *p, size_t n)
{
	for (size_t i = 0; i < m->count; i++) {
		if (strlen(m->paths[i]) == n && memcmp(m->paths[i], p, n) == 0)
			return true;
	}
	if (m->count >= IMG_MODS_MAX) {
		cli_err(IMG_CMD, "more than %d kernel modules needed", IMG_MODS_MAX);
		return false;
	}
	m->paths[m->count] = strndup(p, n);
	if (m->paths[m->count] == NULL)
		return false;
	m->count++;
	return true;
}

/* mods_resolve finds `name`.ko in modules.dep ("path: dep1 dep2 ..."; a
 * module's dependencies load before it, the last one first) and adds its
 * dependencies and itself to m in load order. */
static bool mods_resolve(struct mods *m, const char *dep, size_t dep_len, const char *name)
{
	char want[128];
	int k = snprintf(want, sizeof(want), "/%s.ko", name);

	if (k < 0 || (size_t)k >= sizeof(want))
		return false;
	for (size_t i = 0; i < dep_len;) {
		const char *line = dep + i;
		const char *nl = memchr(line, '\n', dep_len - i);
		size_t n = nl != NULL ? (size_t)(nl - line) : dep_len - i;
		const char *colon = memchr(line, ':', n);
		const char *deps[IMG_MODS_MAX];
		size_t dlens[IMG_MODS_MAX], dcount = 0, key_len;

		i += n + 1;
		if (colon == NULL)
			continue;
		key_len = (size_t)(colon - line);
		if (key_len < (size_t)k || memcmp(line + key_len - (size_t)k, want, (size_t)k) != 0)
			continue;
		for (const char *p = colon + 1; p < line + n;) {
			const char *s;

			while (p < line + n && *p == ' ')
				p++;
			s = p;
			while (p < line + n && *p != ' ')
				p++;
			if (p == s)
				continue;
			if (dcount >= IMG_MODS_MAX)
				return false;
			deps[dcount] = s;
			dlens[dcount] = (size_t)(p - s);
			dcount++;
		}
		for (size_t j = dcount; j > 0; j--) {
			if (!mods_add(m, deps[j - 1], dlens[j - 1]))
				return false;
		}
		return mods_add(m, line, key_len);
	}
	cli_err(IMG_CMD, "the kernel has no module %s in its modules.dep (is it built in? see docs/vm.md)",
	        name);
	return false;
}

/* -- the guest's scripts and configs -- */

static const char initrd_head[] =
    "#!/bin/busybox sh\n"
    "# cvmkit guest initramfs (made by cvm image build): loads the drivers of the\n"
    "# disks, mounts the read-only ext4 root and switches to it. Nothing here is\n"
    "# measured by IMA (the initramfs is not a measured filesystem): the root is.\n"
    "/bin/busybox --install -s /bin\n"
    "export PATH=/bin\n"
    "fail() {\n"
    "\techo \"cvm-initrd: $*; powering off\" >/dev/console\n"
    "\tpoweroff -f\n"
    "}\n"
    "mkdir -p /proc /sys /dev /newroot\n"
    "mount -t proc proc /proc\n"
    "mount -t sysfs sysfs /sys\n"
    "mount -t devtmpfs devtmpfs /dev\n"
    "mount -t securityfs securityfs /sys/kernel/security\n";

static const char initrd_tail[] =
    "root=/dev/vda\n"
    "for a in $(cat /proc/cmdline); do\n"
    "\tcase \"$a\" in cvm.root=/dev/*) root=\"${a#cvm.root=}\" ;; esac\n"
    "done\n"
    "i=0\n"
    "while [ ! -b \"$root\" ]; do\n"
    "\ti=$((i + 1))\n"
    "\t[ \"$i\" -le 200 ] || fail \"no root disk $root after 20 s\"\n"
    "\tsleep 0.1\n"
    "done\n"
    "mount -t ext4 -o ro,noload \"$root\" /newroot || fail \"cannot mount the root $root (ext4, "
    "read-only)\"\n"
    "[ -x /newroot/sbin/init ] || fail \"the root $root has no /sbin/init\"\n"
    "for d in proc sys dev; do mount --move /$d /newroot/$d || fail \"cannot move /$d\"; done\n"
    "exec switch_root /newroot /sbin/init\n";

static const char guest_inittab[] = "# cvmkit guest (cvm image build): busybox init\n"
                                    "::sysinit:/etc/init.d/rcS\n"
                                    "::respawn:/usr/libexec/cvmkit/agent\n"
                                    "::ctrlaltdel:/bin/reboot -f\n"
                                    "::shutdown:/bin/umount -a -r\n";
/* With --test-channel only: the host gets a root shell (see guest_cmd_channel). */
static const char guest_inittab_test[] = "# --test-channel: a root shell for the host (docs/vm.md)\n"
                                         "::respawn:/usr/libexec/cvmkit/cmd-channel\n";

static const char guest_rcs[] =
    "#!/bin/sh\n"
    "# cvmkit guest: the volatile folders, the data disk, the network.\n"
    "export PATH=/bin:/usr/bin\n"
    "mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run\n"
    "mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp\n"
    "mkdir -p /dev/pts && mount -t devpts devpts /dev/pts\n"
    "[ -e /sys/kernel/security/ima ] || mount -t securityfs securityfs /sys/kernel/security\n"
    "# The data disk (a writable measured ext4) hands in the simulated TEE. Its\n"
    "# registers and the runtime log must start again at each boot, as a TD's\n"
    "# do: the agent uses a copy on /run (a tmpfs), made at each boot.\n"
    "if [ -b /dev/vdb ]; then\n"
    "\tmount -t ext4 -o nosuid,nodev /dev/vdb /data || echo \"cvm-guest: cannot mount /dev/vdb on /data\"\n"
    "fi\n"
    "if [ -d /data/sim ]; then\n"
    "\tcp -a /data/sim /run/sim || echo \"cvm-guest: cannot copy /data/sim to /run/sim\"\n"
    "fi\n"
    "hostname cvm-guest\n"
    "ip link set lo up\n"
    "# QEMU's user-mode network: the guest is 10.0.2.15, the host 10.0.2.2.\n"
    "ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 ||\n"
    "\techo \"cvm-guest: no network (eth0)\"\n"
    "echo \"cvm-guest: up, $(cat /sys/kernel/security/ima/runtime_measurements_count) IMA entries\"\n";

static const char guest_agent[] =
    "#!/bin/sh\n"
    "# cvmkit guest: runs cvm-agentd (busybox init starts it again when it ends).\n"
    "if [ ! -d /run/sim ]; then\n"
    "\techo \"cvm-guest: no /run/sim: the data disk (/dev/vdb) must hold a 'cvm sim init' folder, sim\"\n"
    "\tsleep 5\n"
    "\texit 1\n"
    "fi\n"
    "/usr/bin/cvm-agentd -c /etc/cvmkit/cvm-agentd.conf\n"
    "echo \"cvm-guest: cvm-agentd ended with status $?\"\n"
    "sleep 2\n";

/* A root shell for tests on the second serial port, which only the host's
 * QEMU reaches (a unix socket there). One line in: "TAG COMMAND"; out:
 * "@@CVM-BEGIN TAG", the output, "@@CVM-END TAG STATUS". */
static const char guest_cmd_channel[] =
    "#!/bin/sh\n"
    "# cvmkit guest: the test command channel on /dev/ttyS1 (see docs/vm.md).\n"
    "tty=/dev/ttyS1\n"
    "stty -F \"$tty\" raw -echo 115200 || { sleep 5; exit 1; }\n"
    "exec 3<>\"$tty\"\n"
    "while IFS= read -r line <&3; do\n"
    "\ttag=\"${line%% *}\"\n"
    "\tcmd=\"${line#* }\"\n"
    "\tsh -c \"$cmd\" </dev/null >/tmp/cmd.out 2>&1\n"
    "\trc=$?\n"
    "\tprintf '@@CVM-BEGIN %s\\n' \"$tag\" >&3\n"
    "\tcat /tmp/cmd.out >&3\n"
    "\tprintf '\\n@@CVM-END %s %d\\n' \"$tag\" \"$rc\" >&3\n"
    "done\n"
    "sleep 1\n";

static const char guest_agent_conf[] =
    "; cvm-agentd in the cvmkit guest image (cvm image build; docs/vm.md)\n"
    "[agent]\n"
    "simulator = /run/sim\n"
    "platform = tdx\n"
    "tpm_tcti = device:/dev/tpmrm0\n"
    "tpm_pcrs = sha256:0-10\n"
    "ima_log = /sys/kernel/security/ima/binary_runtime_measurements\n"
    "[dstack]\n"
    "listen = unix:/run/dstack.sock\n"
    "[tappd]\n"
    "listen = unix:/run/tappd.sock\n"
    "[tls]\n"
    "listen = 0.0.0.0:5555\n";

static const char guest_passwd[] = "root:x:0:0:root:/root:/bin/sh\n";
static const char guest_group[] = "root:x:0:\n";

/* -- the stages -- */

/* busybox_is_static is true when ldd finds no libraries in the busybox:
 * the initramfs has none, so a dynamic one could not run there. */
static bool busybox_is_static(const struct img *im)
{
	const char *const argv[] = {"ldd", im->busybox, NULL};
	char *out = malloc(IMG_CAPTURE_MAX);
	int st;

	if (out == NULL)
		return false;
	st = run(im, argv, true, NULL, NULL, NULL, out, IMG_CAPTURE_MAX);
	free(out);
	if (st == 0) {
		cli_err(IMG_CMD,
		        "%s is linked dynamically and cannot run in the initramfs: install Debian's "
		        "busybox-static (scripts/setup.sh) or pass --busybox",
		        im->busybox);
		return false;
	}
	return st > 0; /* ldd: "not a dynamic executable" */
}

static bool stage_initrd(struct img *im, const struct mods *m)
{
	char path[IMG_PATH_MAX], src[IMG_PATH_MAX], *init = NULL;
	size_t cap = sizeof(initrd_head) + sizeof(initrd_tail) + (size_t)IMG_MODS_MAX * 512, used;
	bool ok = false;

	if (!mkdir_p(im->initrd_dir, 0755))
		return false;
	if (!busybox_is_static(im))
		return false;
	if (!install(im->initrd_dir, im->busybox, "/bin/busybox", 0755))
		return false;
	init = malloc(cap);
	if (init == NULL)
		return false;
	used = (size_t)snprintf(init, cap, "%s", initrd_head);
	for (size_t i = 0; i < m->count; i++) {
		char gpath[IMG_PATH_MAX];
		int k;

		(void)snprintf(src, sizeof(src), "%s/lib/modules/%s/%s", im->kernel_dir, im->kver,
		               m->paths[i]);
		(void)snprintf(gpath, sizeof(gpath), "/lib/modules/%s/%s", im->kver, m->paths[i]);
		if (!install(im->initrd_dir, src, gpath, 0644))
			goto out;
		k = snprintf(init + used, cap - used, "insmod %s || fail \"cannot load %s\"\n", gpath, gpath);
		if (k < 0 || (size_t)k >= cap - used)
			goto out;
		used += (size_t)k;
	}
	if (used + sizeof(initrd_tail) > cap)
		goto out;
	memcpy(init + used, initrd_tail, sizeof(initrd_tail));
	if (!path_join(path, sizeof(path), im->initrd_dir, "init") || !write_text(path, init, 0755))
		goto out;
	ok = true;
out:
	free(init);
	return ok;
}

/* ldd_closure adds the libraries `bin` loads (ldd's answer) to libs as
 * "guest_path\tsource" pairs. */
static bool ldd_closure(const struct img *im, const char *bin, char **libs, size_t *count)
{
	char *out = malloc(IMG_CAPTURE_MAX);
	const char *const argv[] = {"ldd", bin, NULL};
	bool ok = false;
	int st;

	if (out == NULL)
		return false;
	st = run(im, argv, false, NULL, NULL, NULL, out, IMG_CAPTURE_MAX);
	if (st != 0) {
		if (st > 0)
			cli_err(IMG_CMD, "ldd %s failed (%d): %s", bin, st, out);
		goto out;
	}
	for (char *line = out; *line != '\0';) {
		char *nl = strchr(line, '\n');
		char guest[IMG_PATH_MAX], src[IMG_PATH_MAX], *arrow, *p, *e, *entry;

		if (nl != NULL)
			*nl = '\0';
		p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		line = nl != NULL ? nl + 1 : line + strlen(line);
		if (*p == '\0' || strncmp(p, "linux-vdso.so", 13) == 0)
			continue;
		if (strstr(p, "not found") != NULL) {
			cli_err(IMG_CMD, "%s needs a library that is not installed: %s", bin, p);
			goto out;
		}
		arrow = strstr(p, " => ");
		if (arrow != NULL) {
			/* "soname => /path (0x...)": the guest gets it under its
			 * soname in the system folder, where the loader looks. */
			*arrow = '\0';
			e = arrow + 4;
			if (*e != '/')
				continue;
			(void)snprintf(guest, sizeof(guest), "/lib/x86_64-linux-gnu/%s", p);
		} else if (*p == '/') {
			e = p; /* the dynamic loader, at the path programs name */
		} else {
			continue;
		}
		p = strchr(e, ' ');
		if (p != NULL)
			*p = '\0';
		if (strlen(e) >= sizeof(src))
			goto out;
		memcpy(src, e, strlen(e) + 1);
		if (arrow == NULL)
			memcpy(guest, src, strlen(src) + 1);
		if (strchr(guest, '\t') != NULL)
			goto out;
		if (*count >= IMG_LIBS_MAX) {
			cli_err(IMG_CMD, "more than %d libraries", IMG_LIBS_MAX);
			goto out;
		}
		entry = malloc(strlen(guest) + strlen(src) + 2);
		if (entry == NULL)
			goto out;
		(void)snprintf(entry, strlen(guest) + strlen(src) + 2, "%s\t%s", guest, src);
		libs[(*count)++] = entry;
	}
	ok = true;
out:
	free(out);
	return ok;
}

/* stage_adds puts the --add files into the root. */
static bool stage_adds(const struct img *im)
{
	char path[IMG_PATH_MAX];

	for (size_t i = 0; i < im->add_count; i++) {
		struct stat st;

		if (!in_tree(path, sizeof(path), im->root_dir, im->adds[i].dest))
			return false;
		if (lstat(path, &st) == 0) {
			cli_err(IMG_CMD, "--add %s: the image already has %s", im->adds[i].src,
			        im->adds[i].dest);
			return false;
		}
		if (stat(im->adds[i].src, &st) != 0 || !S_ISREG(st.st_mode)) {
			cli_err(IMG_CMD, "--add %s: not a readable file", im->adds[i].src);
			return false;
		}
		if (!install(im->root_dir, im->adds[i].src, im->adds[i].dest, st.st_mode & 0755))
			return false;
	}
	return true;
}

/* busybox_links links every applet of `bb` (a path on the build host) in
 * the root's folder `dir` to `target`. */
static bool busybox_links(const struct img *im, const char *bb, const char *dir, const char *target)
{
	const char *const argv[] = {bb, "--list", NULL};
	char *list = malloc(IMG_CAPTURE_MAX);
	bool ok = false;

	if (list == NULL)
		return false;
	if (run(im, argv, false, NULL, NULL, NULL, list, IMG_CAPTURE_MAX) != 0) {
		cli_err(IMG_CMD, "'%s --list' failed: is it busybox? (install busybox-static)", bb);
		goto out;
	}
	for (char *line = list; *line != '\0';) {
		char *nl = strchr(line, '\n');
		char link[IMG_PATH_MAX];
		bool name_ok = true;

		if (nl != NULL)
			*nl = '\0';
		for (const char *c = line; *c != '\0'; c++) {
			if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_' ||
			      *c == '-' || *c == '.' || *c == '[' || *c == ']'))
				name_ok = false;
		}
		if (name_ok && line[0] != '\0' && strcmp(line, "busybox") != 0 && strcmp(line, ".") != 0 &&
		    strcmp(line, "..") != 0) {
			int k = snprintf(link, sizeof(link), "%s%s/%s", im->root_dir, dir, line);

			if (k < 0 || (size_t)k >= sizeof(link) || symlink(target, link) != 0) {
				cli_err(IMG_CMD, "cannot link %s: %s", link, strerror(errno));
				goto out;
			}
		}
		line = nl != NULL ? nl + 1 : line + strlen(line);
	}
	ok = true;
out:
	free(list);
	return ok;
}

static bool stage_root(struct img *im)
{
	char path[IMG_PATH_MAX], *libs[IMG_LIBS_MAX];
	size_t lib_count = 0;
	bool ok = false;
	static const char *const dirs[] = {"/bin",
	                                   "/dev",
	                                   "/proc",
	                                   "/sys",
	                                   "/run",
	                                   "/tmp",
	                                   "/data",
	                                   "/root",
	                                   "/etc/init.d",
	                                   "/etc/cvmkit",
	                                   "/usr/bin",
	                                   "/usr/libexec/cvmkit",
	                                   "/lib/x86_64-linux-gnu",
	                                   "/lib64",
	                                   "/var"};

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (!in_tree(path, sizeof(path), im->root_dir, dirs[i]) || !mkdir_p(path, 0755))
			return false;
	}
	if (!install(im->root_dir, im->busybox, "/bin/busybox", 0755))
		return false;
	/* Every applet as a link to busybox, in /bin; /sbin and /usr/sbin are
	 * the same folder. */
	if (!busybox_links(im, im->busybox, "/bin", "busybox"))
		goto out;
	if (!in_tree(path, sizeof(path), im->root_dir, "/sbin") || symlink("bin", path) != 0 ||
	    !in_tree(path, sizeof(path), im->root_dir, "/usr/sbin") || symlink("../bin", path) != 0) {
		cli_err(IMG_CMD, "cannot link /sbin: %s", strerror(errno));
		goto out;
	}
	/* The agent and its libraries (ldd's closure, plus what it dlopens). */
	if (!install(im->root_dir, im->agent, "/usr/bin/cvm-agentd", 0755))
		goto out;
	if (!ldd_closure(im, im->agent, libs, &lib_count))
		goto out;
	for (size_t i = 0; i < sizeof(img_dlopen_libs) / sizeof(img_dlopen_libs[0]); i++) {
		char src[IMG_PATH_MAX], *entry;
		bool found = false;

		for (size_t j = 0; j < sizeof(img_lib_dirs) / sizeof(img_lib_dirs[0]) && !found; j++) {
			(void)snprintf(src, sizeof(src), "%s/%s", img_lib_dirs[j], img_dlopen_libs[i]);
			found = access(src, R_OK) == 0;
		}
		if (!found) {
			cli_err(IMG_CMD,
			        "%s is missing: install Debian's libtss2-tcti-device0 (scripts/setup.sh)",
			        img_dlopen_libs[i]);
			goto out;
		}
		if (lib_count >= IMG_LIBS_MAX)
			goto out;
		entry = malloc((size_t)IMG_PATH_MAX * 2);
		if (entry == NULL)
			goto out;
		(void)snprintf(entry, (size_t)IMG_PATH_MAX * 2, "/lib/x86_64-linux-gnu/%s\t%s",
		               img_dlopen_libs[i], src);
		libs[lib_count++] = entry;
		if (!ldd_closure(im, src, libs, &lib_count))
			goto out;
	}
	for (size_t i = 0; i < lib_count; i++) {
		char *tab = strchr(libs[i], '\t');
		char dst[IMG_PATH_MAX];

		*tab = '\0';
		if (!in_tree(dst, sizeof(dst), im->root_dir, libs[i]))
			goto out;
		if (access(dst, F_OK) == 0) /* named by more than one ldd */
			continue;
		if (!install(im->root_dir, tab + 1, libs[i], 0755))
			goto out;
	}
	progress(im, "[3/6] root: busybox, cvm-agentd and %zu libraries", lib_count);
	/* Configs and scripts. */
	if (!in_tree(path, sizeof(path), im->root_dir, "/etc/inittab"))
		goto out;
	{
		char inittab[sizeof(guest_inittab) + sizeof(guest_inittab_test)];

		(void)snprintf(inittab, sizeof(inittab), "%s%s", guest_inittab,
		               im->test_channel ? guest_inittab_test : "");
		if (!write_text(path, inittab, 0644))
			goto out;
	}
	if (im->test_channel &&
	    (!in_tree(path, sizeof(path), im->root_dir, "/usr/libexec/cvmkit/cmd-channel") ||
	     !write_text(path, guest_cmd_channel, 0755)))
		goto out;
	if (!in_tree(path, sizeof(path), im->root_dir, "/etc/init.d/rcS") ||
	    !write_text(path, guest_rcs, 0755) ||
	    !in_tree(path, sizeof(path), im->root_dir, "/usr/libexec/cvmkit/agent") ||
	    !write_text(path, guest_agent, 0755) ||
	    !in_tree(path, sizeof(path), im->root_dir, "/etc/passwd") ||
	    !write_text(path, guest_passwd, 0644) ||
	    !in_tree(path, sizeof(path), im->root_dir, "/etc/group") || !write_text(path, guest_group, 0644))
		goto out;
	if (!in_tree(path, sizeof(path), im->root_dir, "/etc/cvmkit/cvm-agentd.conf"))
		goto out;
	if (im->agent_config != NULL ? !copy_file(im->agent_config, path, 0644)
	                             : !write_text(path, guest_agent_conf, 0644))
		goto out;
	if (!stage_adds(im))
		goto out;
	ok = true;
out:
	for (size_t i = 0; i < lib_count; i++)
		free(libs[i]);
	return ok;
}

/* -- the app runtime (--app-runtime) -- */

/* base_ok checks that the base root holds what the app guest runs. */
static bool base_ok(const struct img *im)
{
	static const char *const need[] = {
	    "/usr/sbin/dockerd", "/usr/bin/containerd", "/usr/bin/docker", "/usr/bin/docker-compose",
	    "/sbin/cryptsetup",  "/sbin/mkfs.ext4",     "/bin/busybox",    "/usr/bin/python3"};
	char path[IMG_PATH_MAX];

	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (!in_tree(path, sizeof(path), im->base, need[i]) || access(path, X_OK) != 0) {
			cli_err(IMG_CMD,
			        "the base root %s has no %s: run scripts/setup.sh, which makes it with "
			        "debootstrap in %s, or pass --base DIR",
			        im->base, need[i], IMG_DEFAULT_BASE);
			return false;
		}
	}
	return true;
}

/* app_modules copies the app runtime's kernel modules into the root's
 * lib/modules/VER and indexes them there with depmod -b. */
static bool app_modules(const struct img *im, const char *dep, size_t dep_len)
{
	char src[IMG_PATH_MAX], gpath[IMG_PATH_MAX];
	const char *const depmod_argv[] = {"depmod", "-b", im->root_dir, im->kver, NULL};
	struct mods m = {0};
	bool ok = false;

	for (size_t i = 0; i < sizeof(img_app_modules) / sizeof(img_app_modules[0]); i++) {
		if (!mods_resolve(&m, dep, dep_len, img_app_modules[i]))
			goto out;
	}
	for (size_t i = 0; i < m.count; i++) {
		(void)snprintf(src, sizeof(src), "%s/lib/modules/%s/%s", im->kernel_dir, im->kver,
		               m.paths[i]);
		(void)snprintf(gpath, sizeof(gpath), "/lib/modules/%s/%s", im->kver, m.paths[i]);
		if (!install(im->root_dir, src, gpath, 0644))
			goto out;
	}
	for (size_t i = 0; i < sizeof(img_modules_meta) / sizeof(img_modules_meta[0]); i++) {
		(void)snprintf(src, sizeof(src), "%s/lib/modules/%s/%s", im->kernel_dir, im->kver,
		               img_modules_meta[i]);
		(void)snprintf(gpath, sizeof(gpath), "/lib/modules/%s/%s", im->kver, img_modules_meta[i]);
		if (!install(im->root_dir, src, gpath, 0644))
			goto out;
	}
	if (!run_ok(im, depmod_argv, NULL, NULL, NULL))
		goto out;
	progress(im, "[3/6] root: %zu kernel modules for Docker, LUKS and the host share", m.count);
	ok = true;
out:
	mods_free(&m);
	return ok;
}

/* stage_root_app makes the app guest's root: the base root, cvm-agentd
 * with the libraries the base lacks, the kernel modules, busybox's applets
 * beside Debian's tools, busybox init, and cli/guest-app/. */
static bool stage_root_app(struct img *im, const char *dep, size_t dep_len)
{
	char path[IMG_PATH_MAX], src[IMG_PATH_MAX], *libs[IMG_LIBS_MAX];
	size_t lib_count = 0, copied = 0;
	bool ok = false;
	static const char *const dirs[] = {
	    "/dstack/.host-shared",   "/data",       "/run",        "/tmp",
	    "/usr/libexec/cvmkit/bb", "/etc/cvmkit", "/etc/init.d", "/etc/acpi/PWRF"};

	if (!mkdir_p(im->root_dir, 0755) || !path_join(src, sizeof(src), im->base, "."))
		return false;
	{
		const char *const cp_argv[] = {"cp", "-a", "--", src, im->root_dir, NULL};

		if (!run_ok(im, cp_argv, NULL, NULL, NULL))
			return false;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (!in_tree(path, sizeof(path), im->root_dir, dirs[i]) || !mkdir_p(path, 0755))
			return false;
	}
	/* busybox init as /sbin/init; its applets after Debian's tools in PATH */
	if (!in_tree(path, sizeof(path), im->root_dir, "/usr/sbin/init"))
		return false;
	(void)unlink(path);
	if (symlink("../bin/busybox", path) != 0) {
		cli_err(IMG_CMD, "cannot link /usr/sbin/init: %s", strerror(errno));
		return false;
	}
	if (!in_tree(src, sizeof(src), im->root_dir, "/bin/busybox") ||
	    !busybox_links(im, src, "/usr/libexec/cvmkit/bb", "/bin/busybox"))
		return false;
	/* the agent; the base's own libraries win (the same Debian release) */
	if (!in_tree(path, sizeof(path), im->root_dir, "/usr/bin/cvm-agentd"))
		return false;
	(void)unlink(path);
	if (!install(im->root_dir, im->agent, "/usr/bin/cvm-agentd", 0755))
		return false;
	if (!ldd_closure(im, im->agent, libs, &lib_count))
		goto out;
	for (size_t i = 0; i < lib_count; i++) {
		char *tab = strchr(libs[i], '\t');

		*tab = '\0';
		if (!in_tree(path, sizeof(path), im->root_dir, libs[i]))
			goto out;
		if (access(path, F_OK) == 0)
			continue;
		if (!install(im->root_dir, tab + 1, libs[i], 0755))
			goto out;
		copied++;
	}
	/* what the agent dlopens (the TPM's TCTI) and its libraries, likewise */
	for (size_t i = 0; i < sizeof(img_dlopen_libs) / sizeof(img_dlopen_libs[0]); i++) {
		size_t first = lib_count;
		char *entry;
		bool found = false;

		for (size_t j = 0; j < sizeof(img_lib_dirs) / sizeof(img_lib_dirs[0]) && !found; j++) {
			(void)snprintf(src, sizeof(src), "%s/%s", img_lib_dirs[j], img_dlopen_libs[i]);
			found = access(src, R_OK) == 0;
		}
		if (!found) {
			cli_err(IMG_CMD,
			        "%s is missing: install Debian's libtss2-tcti-device0 (scripts/setup.sh)",
			        img_dlopen_libs[i]);
			goto out;
		}
		if (lib_count >= IMG_LIBS_MAX)
			goto out;
		entry = malloc((size_t)IMG_PATH_MAX * 2);
		if (entry == NULL)
			goto out;
		(void)snprintf(entry, (size_t)IMG_PATH_MAX * 2, "/lib/x86_64-linux-gnu/%s\t%s",
		               img_dlopen_libs[i], src);
		libs[lib_count++] = entry;
		if (!ldd_closure(im, src, libs, &lib_count))
			goto out;
		for (size_t k = first; k < lib_count; k++) {
			char *tab = strchr(libs[k], '\t');

			*tab = '\0';
			if (!in_tree(path, sizeof(path), im->root_dir, libs[k]))
				goto out;
			if (access(path, F_OK) == 0)
				continue;
			if (!install(im->root_dir, tab + 1, libs[k], 0755))
				goto out;
			copied++;
		}
	}
	progress(im, "[3/6] root: base %s, cvm-agentd (%zu of its %zu libraries added)", im->base, copied,
	         lib_count);
	if (!app_modules(im, dep, dep_len))
		goto out;
	for (size_t i = 0; i < sizeof(img_app_files) / sizeof(img_app_files[0]); i++) {
		const char *text = NULL;

		for (size_t j = 0; j < sizeof(guest_app_files) / sizeof(guest_app_files[0]); j++) {
			if (strcmp(guest_app_files[j].name, img_app_files[i].name) == 0)
				text = guest_app_files[j].text;
		}
		if (text == NULL || !in_tree(path, sizeof(path), im->root_dir, img_app_files[i].guest_path))
			goto out;
		if (strcmp(img_app_files[i].name, "cvm-agentd.conf") == 0 && im->agent_config != NULL) {
			(void)unlink(path);
			if (!copy_file(im->agent_config, path, 0644))
				goto out;
			continue;
		}
		if (!write_text(path, text, img_app_files[i].mode))
			goto out;
	}
	if (!stage_adds(im))
		goto out;
	if (im->test_channel) {
		FILE *f;

		if (!in_tree(path, sizeof(path), im->root_dir, "/usr/libexec/cvmkit/cmd-channel") ||
		    !write_text(path, guest_cmd_channel, 0755) ||
		    !in_tree(path, sizeof(path), im->root_dir, "/etc/inittab"))
			goto out;
		f = fopen(path, "a");
		if (f == NULL || fputs(guest_inittab_test, f) < 0 || fclose(f) != 0) {
			cli_err(IMG_CMD, "cannot write %s", path);
			goto out;
		}
	}
	ok = true;
out:
	for (size_t i = 0; i < lib_count; i++)
		free(libs[i]);
	return ok;
}

static bool write_list(const struct tree *t, const char *path)
{
	FILE *f = fopen(path, "w");
	bool ok = f != NULL;

	for (size_t i = 0; ok && i < t->count; i++)
		ok = fprintf(f, "%s\n", t->paths[i]) >= 0;
	if (f != NULL && fclose(f) != 0)
		ok = false;
	if (!ok)
		cli_err(IMG_CMD, "cannot write %s", path);
	return ok;
}

/* fix_ctimes sets every inode's change time to the epoch: mke2fs -d copies
 * it from the staged files, where no call can set it (the kernel sets it to
 * the time of the last change), so two builds would differ there. */
static bool fix_ctimes(const struct img *im, const struct tree *t, const char *image)
{
	char path[IMG_PATH_MAX];
	const char *const argv[] = {"debugfs", "-w", "-f", path, image, NULL};
	size_t cap;
	char *out;
	FILE *f;
	bool ok;
	int st;

	if (!path_join(path, sizeof(path), im->work, "ctimes.debugfs"))
		return false;
	f = fopen(path, "w");
	ok = f != NULL;
	for (size_t i = 0; ok && i < t->count; i++) {
		const char *p = t->paths[i] + 1; /* "./x" -> "/x", "." -> "" */

		ok = fprintf(f, "set_inode_field %s ctime @%ld\n", p[0] != '\0' ? p : "/", im->epoch) >= 0;
	}
	if (f != NULL && fclose(f) != 0)
		ok = false;
	if (!ok) {
		cli_err(IMG_CMD, "cannot write %s", path);
		return false;
	}
	/* debugfs exits 0 even when a command fails: its answer is read
	 * instead. It echoes each command ("debugfs: ...") and prints its
	 * banner; any other line is an error. */
	/* debugfs echoes every command: room for each */
	cap = IMG_CAPTURE_MAX;
	for (size_t i = 0; i < t->count; i++)
		cap += strlen(t->paths[i]) + 64;
	out = malloc(cap);
	if (out == NULL)
		return false;
	st = run(im, argv, true, NULL, NULL, NULL, out, cap);
	ok = st == 0;
	for (char *line = out; ok && *line != '\0';) {
		char *nl = strchr(line, '\n');

		if (nl != NULL)
			*nl = '\0';
		if (line[0] != '\0' && strncmp(line, "debugfs", 7) != 0) {
			cli_err(IMG_CMD, "debugfs could not set the change times in %s: %s", image, line);
			ok = false;
		}
		line = nl != NULL ? nl + 1 : line + strlen(line);
	}
	if (st > 0)
		cli_err(IMG_CMD, "debugfs failed with exit status %d", st);
	free(out);
	return ok;
}

static bool file_size(const char *path, uint64_t *out)
{
	struct stat st;

	if (stat(path, &st) != 0) {
		cli_err(IMG_CMD, "cannot read %s: %s", path, strerror(errno));
		return false;
	}
	*out = (uint64_t)st.st_size;
	return true;
}

static double mib(uint64_t n)
{
	return (double)n / (1024.0 * 1024.0);
}

/* artifact hashes the file OUT/name into the manifest. */
static bool artifact(const struct img *im, json_t *arts, const char *name, char hex_out[65])
{
	char path[IMG_PATH_MAX];
	uint8_t *buf = NULL, d[32];
	size_t len = 0;
	json_t *o;

	if (!path_join(path, sizeof(path), im->out, name))
		return false;
	if (cvm_file_read(path, IMG_ARTIFACT_MAX, &buf, &len) != CVM_OK) {
		cli_err(IMG_CMD, "cannot read %s: %s", path, strerror(errno));
		return false;
	}
	cvm_sha256(buf, len, d);
	free(buf);
	cvm_hex_encode(d, sizeof(d), hex_out);
	o = json_pack("{s:s, s:I}", "sha256", hex_out, "size", (json_int_t)len);
	return o != NULL && json_object_set_new(arts, name, o) == 0;
}

/* firmware_load reads --firmware into im->fw and refuses, before the long
 * steps, a file that cvm measure could not predict MRTD from: one without
 * TDVF metadata (not OVMF built for TDX) or whose sections lie outside it
 * (a split OVMF_CODE.fd, whose offsets count from the start of
 * OVMF_VARS.fd). The bytes checked are the bytes written to OUT. */
static bool firmware_load(struct img *im)
{
	struct cvm_tdvf tdvf;
	char why[256] = "";
	int r;

	r = cvm_file_read(im->firmware, CVM_TDVF_IMAGE_MAX, &im->fw, &im->fw_len);
	if (r == CVM_E_SYSTEM && errno == ENOENT) {
		cli_err(IMG_CMD,
		        "the firmware %s is missing: install Debian's ovmf package (scripts/setup.sh "
		        "installs it) or pass --firmware FILE",
		        im->firmware);
		return false;
	}
	if (r != CVM_OK) {
		cli_err(IMG_CMD, "cannot read the firmware %s: %s", im->firmware,
		        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return false;
	}
	r = cvm_tdvf_parse(im->fw, im->fw_len, &tdvf, why, sizeof(why));
	if (r != CVM_OK) {
		cli_err(IMG_CMD,
		        "the firmware %s cannot be measured for TDX: %s; give the whole OVMF of a TDX "
		        "build, such as Debian's %s",
		        im->firmware, why[0] != '\0' ? why : cvm_strerror(r), IMG_DEFAULT_FIRMWARE);
		return false;
	}
	if (!tdvf.data_complete) {
		cli_err(IMG_CMD,
		        "the firmware %s holds only part of its TDVF sections (a split OVMF_CODE.fd?): "
		        "give the whole OVMF, such as Debian's %s",
		        im->firmware, IMG_DEFAULT_FIRMWARE);
		return false;
	}
	return true;
}

/* write_probe writes OUT/acpi-probe.img, the initrd of cvm measure
 * acpi-probe for this image: the host boots it with a VM's command line to
 * read the ACPI tables QEMU measures into RTMR0. Its qemu_fw_cfg.ko is the
 * image kernel's own, as a module of another kernel does not load. */
static bool write_probe(const struct img *im, const char *dep, size_t dep_len, uint64_t *size)
{
	char module[IMG_PATH_MAX], path[IMG_PATH_MAX];
	bool builtin = kernel_config_has(im, "CONFIG_FW_CFG_SYSFS=y");
	struct mods m = {0};
	bool ok = false;
	int k, r;

	if (!builtin) {
		if (!mods_resolve(&m, dep, dep_len, "qemu_fw_cfg"))
			goto out;
		/* the probe's /init loads the one module, with insmod */
		if (m.count != 1) {
			cli_err(IMG_CMD,
			        "qemu_fw_cfg of kernel %s needs other modules (%s first): the ACPI probe "
			        "initrd loads it alone",
			        im->kver, m.paths[0]);
			goto out;
		}
		k = snprintf(module, sizeof(module), "%s/lib/modules/%s/%s", im->kernel_dir, im->kver,
		             m.paths[0]);
		if (k < 0 || (size_t)k >= sizeof(module))
			goto out;
	}
	if (!path_join(path, sizeof(path), im->out, IMG_PROBE_NAME))
		goto out;
	r = cvm_qemu_probe_initrd_write(im->busybox, builtin ? NULL : module, path);
	if (r != CVM_OK) {
		cli_err(IMG_CMD, "cannot write the ACPI probe initrd %s from %s and %s: %s%s", path,
		        im->busybox, builtin ? "no module (qemu_fw_cfg is built in)" : module,
		        r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r),
		        r == CVM_E_INVAL ? " (the module must be an uncompressed .ko)" : "");
		goto out;
	}
	ok = file_size(path, size);
out:
	mods_free(&m);
	return ok;
}

/* write_metadata writes OUT/metadata.json: the kernel, initramfs, root and
 * command line by name; the firmware (bios) that cvm-vmmd boots with and
 * cvm measure --image measures; the ACPI probe initrd; is_dev (the
 * simulated TEE, the dev key modes). */
static bool write_metadata(const struct img *im)
{
	char path[IMG_PATH_MAX], version[320];
	json_t *m;
	char *dump = NULL;
	bool ok = false;

	(void)snprintf(version, sizeof(version), "cvmkit-app-%s", im->kver);
	m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b}", "bios", IMG_FIRMWARE_NAME,
	              "acpi_probe_initrd", IMG_PROBE_NAME, "kernel", "vmlinuz", "initrd", "initrd.img",
	              "rootfs", "root.ext4", "cmdline", IMG_CMDLINE, "version", version, "is_dev", 1);
	if (m != NULL)
		dump = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (dump != NULL && path_join(path, sizeof(path), im->out, "metadata.json")) {
		size_t n = strlen(dump);
		char *withnl = malloc(n + 2);

		if (withnl != NULL) {
			memcpy(withnl, dump, n);
			withnl[n] = '\n';
			withnl[n + 1] = '\0';
			ok = write_text(path, withnl, 0644);
			free(withnl);
		}
	}
	free(dump);
	json_decref(m);
	return ok;
}

static int build(struct img *im)
{
	char path[IMG_PATH_MAX], list[IMG_PATH_MAX], cpio_path[IMG_PATH_MAX], root_img[IMG_PATH_MAX];
	char size_arg[32], inodes_arg[32], hexes[6][65], digest_text[640], digest_hex[65];
	uint8_t *dep = NULL;
	size_t dep_len = 0;
	struct tree t = {0};
	struct mods m = {0};
	json_t *man = NULL, *arts = NULL;
	char *dump = NULL;
	uint64_t size = 0;
	uint8_t digest[32];
	int rc = CLI_EXIT_ERROR;

	if (!find_kernel(im))
		return CLI_EXIT_ERROR;
	if (im->app_runtime && !base_ok(im))
		return CLI_EXIT_ERROR;
	if (im->app_runtime && !firmware_load(im))
		goto out;
	if (!kernel_config_has(im, "CONFIG_TCG_CRB=y") || !kernel_config_has(im, "CONFIG_IMA=y")) {
		cli_err(IMG_CMD,
		        "kernel %s does not build in tpm_crb and IMA (CONFIG_TCG_CRB=y, CONFIG_IMA=y in "
		        "boot/config-%s): IMA would start without the TPM",
		        im->kver, im->kver);
		goto out;
	}
	if (!mkdir_p(im->out, 0755))
		goto out;
	if (!path_join(im->work, sizeof(im->work), im->out, ".work") ||
	    !path_join(im->initrd_dir, sizeof(im->initrd_dir), im->work, "initrd") ||
	    !path_join(im->root_dir, sizeof(im->root_dir), im->work, "root"))
		goto out;
	{
		const char *const rm_argv[] = {"rm", "-rf", "--", im->work, NULL};

		if (!run_ok(im, rm_argv, NULL, NULL, NULL))
			goto out;
	}
	/* 1: the kernel. */
	if (!path_join(path, sizeof(path), im->out, "vmlinuz"))
		goto out;
	(void)unlink(path);
	if (!copy_file(im->vmlinuz, path, 0644) || !file_size(path, &size))
		goto out;
	progress(im, "[1/6] kernel %s: vmlinuz %.1f MiB", im->kver, mib(size));
	/* 2: the initramfs. */
	(void)snprintf(path, sizeof(path), "%s/lib/modules/%s/modules.dep", im->kernel_dir, im->kver);
	if (cvm_file_read(path, IMG_MODULES_DEP_MAX, &dep, &dep_len) != CVM_OK) {
		cli_err(IMG_CMD, "cannot read %s: %s (scripts/setup.sh runs depmod there)", path,
		        strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < sizeof(img_modules) / sizeof(img_modules[0]); i++) {
		if (!mods_resolve(&m, (const char *)dep, dep_len, img_modules[i]))
			goto out;
	}
	if (!stage_initrd(im, &m) || !tree_scan(im, im->initrd_dir, &t))
		goto out;
	if (!path_join(list, sizeof(list), im->work, "initrd.list") || !write_list(&t, list) ||
	    !path_join(cpio_path, sizeof(cpio_path), im->work, "initrd.cpio"))
		goto out;
	{
		const char *const cpio_argv[] = {"cpio", "--quiet",        "-o",          "-H",
		                                 "newc", "--reproducible", "--owner=0:0", NULL};
		const char *const gzip_argv[] = {"gzip", "-n", "-9", "-c", cpio_path, NULL};

		if (!run_ok(im, cpio_argv, im->initrd_dir, list, cpio_path))
			goto out;
		if (!path_join(path, sizeof(path), im->out, "initrd.img") ||
		    !run_ok(im, gzip_argv, NULL, NULL, path) || !file_size(path, &size))
			goto out;
	}
	progress(im, "[2/6] initramfs: busybox, %zu kernel modules, %zu entries: initrd.img %.1f MiB",
	         m.count, t.count, mib(size));
	tree_free(&t);
	/* 3: the root tree. */
	if (im->app_runtime ? !stage_root_app(im, (const char *)dep, dep_len) : !stage_root(im))
		goto out;
	if (!tree_scan(im, im->root_dir, &t))
		goto out;
	/* 4: the ext4 image, sized from the tree with room for ext4's own
	 * metadata. */
	size = (t.bytes + t.bytes / 4) / 1024 + 8192;
	size = (size + 1023) / 1024 * 1024;
	(void)snprintf(size_arg, sizeof(size_arg), "%lluk", (unsigned long long)size);
	if (!path_join(root_img, sizeof(root_img), im->out, "root.ext4"))
		goto out;
	(void)unlink(root_img);
	if (cvm_file_write(root_img, "", 0, 0644) != CVM_OK) {
		cli_err(IMG_CMD, "cannot create %s: %s", root_img, strerror(errno));
		goto out;
	}
	{
		const char *const mke2fs_argv[] = {
		    "mke2fs",       "-q",   "-F",         "-t",       "ext4",   "-O",          "^has_journal",
		    "-b",           "4096", "-L",         "cvm-root", "-U",     IMG_ROOT_UUID, "-E",
		    img_mke2fs_ext, "-d",   im->root_dir, root_img,   size_arg, NULL};

		/* the app runtime's root has many small files: an inode each */
		const char *const mke2fs_app_argv[] = {
		    "mke2fs",   "-q", "-F",         "-t",     "ext4",        "-O", "^has_journal", "-b",
		    "4096",     "-L", "cvm-root",   "-U",     IMG_ROOT_UUID, "-E", img_mke2fs_ext, "-N",
		    inodes_arg, "-d", im->root_dir, root_img, size_arg,      NULL};

		(void)snprintf(inodes_arg, sizeof(inodes_arg), "%zu", t.count + t.count / 4 + 1024);
		if (!run_ok(im, im->app_runtime ? mke2fs_app_argv : mke2fs_argv, NULL, NULL, NULL))
			goto out;
	}
	if (!fix_ctimes(im, &t, root_img) || !file_size(root_img, &size))
		goto out;
	progress(im,
	         "[4/6] root.ext4: %zu entries, %.1f MiB of files, image %.1f MiB (read-only, no journal)",
	         t.count, mib(t.bytes), mib(size));
	/* 5: the command line. */
	if (!path_join(path, sizeof(path), im->out, "cmdline") || !write_text(path, IMG_CMDLINE "\n", 0644))
		goto out;
	progress(im, "[5/6] cmdline: %s", IMG_CMDLINE);
	/* the app guest also as an image folder of dstack's layout (spec §8.6),
	 * which cvm-vmmd reads: metadata.json names the files, the firmware
	 * among them, so that its MRTD and RTMRs can be predicted */
	if (im->app_runtime) {
		if (!path_join(path, sizeof(path), im->out, IMG_FIRMWARE_NAME))
			goto out;
		if (cvm_file_write(path, im->fw, im->fw_len, 0644) != CVM_OK || chmod(path, 0644) != 0) {
			cli_err(IMG_CMD, "cannot write %s: %s", path, strerror(errno));
			goto out;
		}
		progress(im, "[5/6] firmware: %s %.1f MiB (%s)", IMG_FIRMWARE_NAME, mib(im->fw_len),
		         im->firmware);
		if (!write_probe(im, (const char *)dep, dep_len, &size))
			goto out;
		progress(im, "[5/6] ACPI probe initrd: %s %.1f MiB (busybox, qemu_fw_cfg of %s)",
		         IMG_PROBE_NAME, mib(size), im->kver);
		if (!write_metadata(im))
			goto out;
	}
	/* 6: the manifest. */
	man = json_object();
	arts = json_object();
	if (man == NULL || arts == NULL)
		goto out;
	if (!artifact(im, arts, "vmlinuz", hexes[0]) || !artifact(im, arts, "initrd.img", hexes[1]) ||
	    !artifact(im, arts, "root.ext4", hexes[2]) || !artifact(im, arts, "cmdline", hexes[3]))
		goto out;
	if (im->app_runtime) {
		if (!artifact(im, arts, IMG_FIRMWARE_NAME, hexes[4]) ||
		    !artifact(im, arts, IMG_PROBE_NAME, hexes[5]))
			goto out;
		/* The firmware is measured (MRTD, RTMR0), so the digest covers it;
		 * the probe initrd is the host's tool, never booted as the guest. */
		(void)snprintf(digest_text, sizeof(digest_text),
		               "cmdline %s\ninitrd.img %s\n" IMG_FIRMWARE_NAME
		               " %s\nroot.ext4 %s\nvmlinuz %s\n",
		               hexes[3], hexes[1], hexes[4], hexes[2], hexes[0]);
	} else {
		/* unchanged for the small image: tests pin this text */
		(void)snprintf(digest_text, sizeof(digest_text),
		               "cmdline %s\ninitrd.img %s\nroot.ext4 %s\nvmlinuz %s\n", hexes[3], hexes[1],
		               hexes[2], hexes[0]);
	}
	cvm_sha256(digest_text, strlen(digest_text), digest);
	cvm_hex_encode(digest, sizeof(digest), digest_hex);
	if (json_object_set_new(man, "version", json_integer(1)) != 0 ||
	    json_object_set_new(man, "kernel_version", json_string(im->kver)) != 0 ||
	    json_object_set_new(man, "cmdline", json_string(IMG_CMDLINE)) != 0 ||
	    json_object_set_new(man, "source_date_epoch", json_integer(im->epoch)) != 0 ||
	    json_object_set_new(man, "root_uuid", json_string(IMG_ROOT_UUID)) != 0 ||
	    json_object_set_new(man, "test_channel", json_boolean(im->test_channel)) != 0 ||
	    (im->app_runtime && json_object_set_new(man, "app_runtime", json_string(im->base)) != 0) ||
	    json_object_set(man, "artifacts", arts) != 0 ||
	    json_object_set_new(man, "image_digest", json_string(digest_hex)) != 0)
		goto out;
	dump = json_dumps(man, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (dump == NULL || !path_join(path, sizeof(path), im->out, "manifest.json"))
		goto out;
	{
		size_t n = strlen(dump);
		char *withnl = malloc(n + 2);

		if (withnl == NULL)
			goto out;
		memcpy(withnl, dump, n);
		withnl[n] = '\n';
		withnl[n + 1] = '\0';
		if (!write_text(path, withnl, 0644)) {
			free(withnl);
			goto out;
		}
		free(withnl);
	}
	progress(im, "[6/6] manifest.json: image digest %s", digest_hex);
	{
		const char *const rm_argv[] = {"rm", "-rf", "--", im->work, NULL};

		if (!run_ok(im, rm_argv, NULL, NULL, NULL))
			goto out;
	}
	if (cli_opts.json)
		(void)printf("%s\n", dump);
	else
		(void)printf("%s\n", digest_hex);
	rc = CLI_EXIT_OK;
out:
	free(dump);
	json_decref(arts);
	json_decref(man);
	tree_free(&t);
	mods_free(&m);
	free(dep);
	free(im->fw);
	im->fw = NULL;
	return rc;
}

/* default_agent finds cvm-agentd beside the running cvm. */
static bool default_agent(char *out, size_t cap)
{
	char self[IMG_PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return false;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash == NULL)
		return false;
	*slash = '\0';
	return path_join(out, cap, self, "cvm-agentd") && access(out, X_OK) == 0;
}

static bool guest_path_ok(const char *p)
{
	if (p[0] != '/' || p[1] == '\0' || strlen(p) >= 1024 || p[strlen(p) - 1] == '/')
		return false;
	for (const char *c = p; *c != '\0'; c++) {
		if (*c == '/' && (strncmp(c, "/../", 4) == 0 || strcmp(c, "/..") == 0 ||
		                  strncmp(c, "/./", 3) == 0 || strncmp(c, "//", 2) == 0))
			return false;
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			return false;
	}
	return true;
}

static int image_build(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"kernel", required_argument, NULL, OPT_KERNEL},
	    {"agent", required_argument, NULL, OPT_AGENT},
	    {"agent-config", required_argument, NULL, OPT_AGENT_CONFIG},
	    {"busybox", required_argument, NULL, OPT_BUSYBOX},
	    {"add", required_argument, NULL, OPT_ADD},
	    {"test-channel", no_argument, NULL, OPT_TEST_CHANNEL},
	    {"app-runtime", no_argument, NULL, OPT_APP_RUNTIME},
	    {"base", required_argument, NULL, OPT_BASE},
	    {"firmware", required_argument, NULL, OPT_FIRMWARE},
	    CLI_COMMON_LONGOPTS,
	};
	static struct img im;            /* large: paths */
	static char agent[IMG_PATH_MAX]; /* im.agent may point here */
	const char *epoch_env;
	char *end = NULL;
	int c;

	memset(&im, 0, sizeof(im));
	im.busybox = "/bin/busybox";
	im.kernel_dir = getenv("CVM_GUEST_KERNEL") != NULL ? getenv("CVM_GUEST_KERNEL") : IMG_DEFAULT_KERNEL;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":hvq", longopts, NULL)) != -1) {
		if (cli_common_option(c))
			continue;
		if (optarg == NULL && c >= OPT_KERNEL && c <= OPT_FIRMWARE) {
			cli_bad_option(IMG_CMD, ':', argv, "cvm help image");
			return CLI_EXIT_USAGE;
		}
		switch (c) {
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		case OPT_KERNEL:
			im.kernel_dir = optarg;
			break;
		case OPT_AGENT:
			im.agent = optarg;
			break;
		case OPT_AGENT_CONFIG:
			im.agent_config = optarg;
			break;
		case OPT_BUSYBOX:
			im.busybox = optarg;
			break;
		case OPT_TEST_CHANNEL:
			im.test_channel = true;
			break;
		case OPT_APP_RUNTIME:
			im.app_runtime = true;
			break;
		case OPT_BASE:
			im.base = optarg;
			break;
		case OPT_FIRMWARE:
			im.firmware = optarg;
			break;
		case OPT_ADD: {
			char *colon = strchr(optarg, ':');

			if (im.add_count >= IMG_ADD_MAX) {
				cli_err(IMG_CMD, "at most %d --add", IMG_ADD_MAX);
				return CLI_EXIT_USAGE;
			}
			if (colon == NULL || colon == optarg || !guest_path_ok(colon + 1)) {
				cli_err(
				    IMG_CMD,
				    "--add wants SRC:DEST with DEST an absolute path in the guest without "
				    "'.', '..' or '//' (got '%s')",
				    optarg);
				return CLI_EXIT_USAGE;
			}
			*colon = '\0';
			im.adds[im.add_count].src = optarg;
			im.adds[im.add_count].dest = colon + 1;
			im.add_count++;
			break;
		}
		default:
			cli_bad_option(IMG_CMD, c, argv, "cvm help image");
			return CLI_EXIT_USAGE;
		}
	}
	cli_apply_verbosity();
	im.quiet = cli_opts.quiet;
	if (optind + 1 != argc) {
		cli_err(IMG_CMD, "expected one OUT folder; see 'cvm help image'");
		return CLI_EXIT_USAGE;
	}
	im.out = argv[optind];
	if ((im.base != NULL || im.firmware != NULL) && !im.app_runtime) {
		cli_err(IMG_CMD, "--%s goes with --app-runtime", im.base != NULL ? "base" : "firmware");
		return CLI_EXIT_USAGE;
	}
	if (im.app_runtime && im.base == NULL)
		im.base = getenv("CVM_GUEST_ROOT") != NULL ? getenv("CVM_GUEST_ROOT") : IMG_DEFAULT_BASE;
	if (im.app_runtime && im.firmware == NULL)
		im.firmware = IMG_DEFAULT_FIRMWARE;
	epoch_env = getenv("SOURCE_DATE_EPOCH");
	im.epoch = IMG_DEFAULT_EPOCH;
	if (epoch_env != NULL && epoch_env[0] != '\0') {
		errno = 0;
		im.epoch = strtol(epoch_env, &end, 10);
		if (errno != 0 || *end != '\0' || im.epoch < 1 || im.epoch > 4102444800L) {
			cli_err(IMG_CMD,
			        "SOURCE_DATE_EPOCH '%s' is not a time in Unix seconds (1 .. 4102444800)",
			        epoch_env);
			return CLI_EXIT_USAGE;
		}
	}
	/* The modes of what is made here go into the image: the caller's umask
	 * must not change them. */
	(void)umask(022);
	if (im.agent == NULL) {
		if (!default_agent(agent, sizeof(agent))) {
			cli_err(IMG_CMD, "no cvm-agentd beside this cvm: pass --agent PATH");
			return CLI_EXIT_USAGE;
		}
		im.agent = agent;
	}
	if (access(im.busybox, X_OK) != 0) {
		cli_err(IMG_CMD, "%s is missing: install Debian's busybox-static package (scripts/setup.sh)",
		        im.busybox);
		return CLI_EXIT_ERROR;
	}
	if (access(im.agent, X_OK) != 0) {
		cli_err(IMG_CMD, "cannot run the agent %s: %s", im.agent, strerror(errno));
		return CLI_EXIT_ERROR;
	}
	return build(&im);
}

static void image_usage(FILE *f)
{
	usage(f);
}

int cmd_image(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"build", image_build},
	};

	return cli_dispatch("image", subs, sizeof(subs) / sizeof(subs[0]), image_usage, argc, argv);
}

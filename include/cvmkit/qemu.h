/* QEMU's ACPI blobs for RTMR0, by a probe boot.
 *
 * OVMF extends RTMR0 with SHA-384 digests of three fw_cfg files QEMU makes
 * (etc/table-loader, etc/acpi/rsdp, etc/acpi/tables). Their content depends
 * on the machine, vCPUs, memory, every device and on the firmware (QEMU
 * rebuilds the tables when the firmware first reads them, after it has
 * enumerated PCI), so the only faithful source is QEMU itself running the
 * VM's own command line with its own firmware. The probe does that: it boots
 * the VM's command line, rewritten so that it touches nothing of the real VM
 * (cvm_qemu_probe_cmd_make lists the rules), with a tiny initrd that prints
 * the three files on the first serial port and powers off (8-10 s under
 * TCG). cvm_measure_tdx then takes their digests (cvm_qemu_acpi_digests).
 *
 * This module runs processes (QEMU, swtpm): it sits above lib/measure and
 * out of the parser layers. Only cvm_qemu_probe_output_parse reads
 * untrusted bytes (the guest's serial output), through the bounded reader.
 * The calls that run processes block until they end (at most the timeout),
 * their QEMU and swtpm die with the calling process (PR_SET_PDEATHSIG), and
 * they wait for their own children by pid: a caller that reaps every child
 * (waitpid(-1) in a SIGCHLD handler) must not run them in that process. */
#ifndef CVMKIT_QEMU_H
#define CVMKIT_QEMU_H

#include "api.h"
#include "measure.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Caps on the blobs (QEMU's: a loader entry is 128 bytes, the RSDP 20 or 36
 * bytes, the tables a 128 KiB-padded blob that grows in 64 KiB steps with
 * devices). */
#define CVM_QEMU_LOADER_MAX ((size_t)64 << 10)
#define CVM_QEMU_RSDP_MAX 64u
#define CVM_QEMU_TABLES_MAX ((size_t)2 << 20)
/* The serial log of a probe (about 190 KiB for a q35 VM). */
#define CVM_QEMU_PROBE_LOG_MAX ((size_t)16 << 20)
/* A QEMU command line: arguments, and bytes of one argument. */
#define CVM_QEMU_ARGS_MAX 4096u
#define CVM_QEMU_ARG_LEN_MAX ((size_t)64 << 10)
/* Swtpm instances a probe starts (one per -tpmdev). */
#define CVM_QEMU_TPM_MAX 4u
#define CVM_QEMU_PROBE_TIMEOUT_DEFAULT 120u /* seconds */

/* The guest's serial markers (what the probe initrd prints):
 *   CVM-ACPI-BEGIN <name>
 *   <standard base64 of the file's bytes, in lines>
 *   CVM-ACPI-END <name> <length in decimal> <SHA-256 in lowercase hex>
 * or "CVM-ACPI-MISSING <name>" when the guest has no such fw_cfg file, for
 * each name in turn, then "CVM-ACPI-DONE". */
#define CVM_QEMU_PROBE_MARK "CVM-ACPI-"

/* struct cvm_qemu_acpi holds the three blobs (owned; free with
 * cvm_qemu_acpi_cleanup). */
struct cvm_qemu_acpi {
	uint8_t *loader; /* etc/table-loader */
	size_t loader_len;
	uint8_t *rsdp; /* etc/acpi/rsdp */
	size_t rsdp_len;
	uint8_t *tables; /* etc/acpi/tables */
	size_t tables_len;
	bool from_cache;    /* cvm_qemu_acpi_probe found them in its cache */
	char cache_key[65]; /* the probe's key (hex SHA-256), "" from the parser */
};

CVM_API void cvm_qemu_acpi_cleanup(struct cvm_qemu_acpi *a);

/* cvm_qemu_acpi_digests fills `out` with the SHA-384 of each blob (what OVMF
 * extends into RTMR0) and `source` naming the probe. */
CVM_API void cvm_qemu_acpi_digests(const struct cvm_qemu_acpi *a, struct cvm_measure_acpi *out);

/* cvm_qemu_probe_output_parse finds the three blobs in a probe's serial log
 * (`len` bytes at `log`, untrusted: whatever the guest, the firmware and the
 * kernel printed). A marker line may follow other bytes on its line (the
 * firmware's escape sequences); lines end with LF, an optional CR before it
 * is dropped. Between BEGIN and END only base64 lines may appear: a kernel
 * message in the middle fails rather than being skipped. Checked: each
 * marker exactly once and in order, the names, the decoded length against
 * the END line and the blob's cap, the SHA-256 against the END line. Fills
 * `out` (owned) on success only. On error `err` (may be NULL) says what.
 * Returns 0, CVM_E_NOT_FOUND (a marker is missing: the probe did not run to
 * its end), CVM_E_UNSUPPORTED (the guest has no such fw_cfg file),
 * CVM_E_FORMAT, CVM_E_TOO_LARGE, CVM_E_MISMATCH (length or SHA-256 differ:
 * the output was garbled), CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_qemu_probe_output_parse(const uint8_t *log, size_t len,
                                                       struct cvm_qemu_acpi *out, char *err, size_t err_len);

/* cvm_qemu_probe_initrd_write writes the probe initrd to `out_path`: a gzip
 * (stored blocks: the kernel's gunzip reads it, no compressor needed) of a
 * cpio "newc" archive holding /init (a busybox sh script that prints the
 * markers above on /dev/console and powers off), /bin/busybox (a copy of
 * `busybox_path`, which must be a static busybox) and, when
 * `fw_cfg_module_path` is not NULL, /qemu_fw_cfg.ko (the guest kernel's
 * module, loaded by /init unless the kernel has the driver built in). The
 * archive is reproducible: fixed owners (0), mtimes (0), inode numbers and
 * modes, and the gzip header has no name or time. Returns 0, CVM_E_INVAL,
 * CVM_E_TOO_LARGE (an input over 64 MiB), CVM_E_SYSTEM (errno), CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_qemu_probe_initrd_write(const char *busybox_path,
                                                       const char *fw_cfg_module_path, const char *out_path);

/* struct cvm_qemu_probe_cmd is a rewritten command line (owned). */
struct cvm_qemu_probe_cmd {
	char **args; /* without the program name; NULL-terminated */
	size_t count;
	size_t tpm_count; /* swtpm instances to start: sockets <work>/swtpm<N>.sock, N from 0 */
};
CVM_API void cvm_qemu_probe_cmd_cleanup(struct cvm_qemu_probe_cmd *c);

/* cvm_qemu_probe_cmd_make rewrites a VM's QEMU arguments `args` (`count`,
 * without the program name; options may be spelt -opt or --opt) into the
 * probe's. What the ACPI tables depend on is kept (machine, accelerator,
 * CPUs, memory, firmware, every -device, -global, -numa, -smbios, -fw_cfg,
 * -object but memory-backend-file) and what would touch the real VM's
 * resources is replaced:
 *  1. -kernel, -initrd, -append and -dtb are dropped, and `-kernel KERNEL
 *     -initrd INITRD -append "console=ttyS0 loglevel=0 quiet panic=-1"`
 *     added (neither the command line nor the initrd's size changes the
 *     blobs: integration.measure_acpi_probe checks it);
 *  2. every -drive gets snapshot=on (writes go to a temporary overlay), and
 *     -snapshot is added for the legacy forms (-hda, -cdrom, a bare image);
 *     every key=value -blockdev gets read-only=on (a JSON -blockdev,
 *     -netdev, -chardev or -tpmdev is refused: CVM_E_UNSUPPORTED);
 *  3. -netdev: hostfwd= and guestfwd= are dropped from user networking (no
 *     host port is bound; the forwards are not in the tables), and any other
 *     backend (tap, bridge, socket, ...) becomes "user" with the same id:
 *     the NIC device, not its backend, is in the tables; -nic and -net the
 *     same, keeping their model=, mac= and id=;
 *  4. the first serial port (the first -serial, else the first -device
 *     isa-serial) writes to the file <work>/console.log: its -chardev
 *     becomes "file" (same id), or the -serial value becomes file:; the
 *     other -serial values become "null"; with no serial port and no
 *     -nodefaults, -serial file: is added in place of QEMU's default one;
 *     with -nodefaults and none, CVM_E_UNSUPPORTED (the probe has nowhere
 *     to print);
 *  5. every other -chardev becomes "null" with the same id (and mux=on when
 *     it had it): no socket, pty or log file of the real VM is opened;
 *  6. every -tpmdev becomes `emulator,id=ID,chardev=cvm-probe-tpmN` with
 *     `-chardev socket,id=cvm-probe-tpmN,path=<work>/swtpmN.sock`: the
 *     probe starts a throwaway TPM 2.0 swtpm for it (tpm_count);
 *  7. -object memory-backend-file becomes memory-backend-ram with the same
 *     id and size (no file of the host is mapped);
 *  8. -monitor, -mon, -qmp, -qmp-pretty, -gdb, -s, -vnc, -spice, -display,
 *     -pidfile, -daemonize, -D, -S, -incoming, -loadvm, -runas, -chroot
 *     are dropped; -monitor none, -no-reboot and (without -nographic)
 *     -display none are added.
 * Everything else passes unchanged, in order. Arguments that start with a
 * QEMU program ("qemu-system-x86_64", ".../qemu-system-...") are refused
 * (CVM_E_INVAL): a program name would be taken for a disk image. An option QEMU takes without
 * a value must be in the module's list of flags (else the next argument is
 * taken as its value). `work_dir` must not contain a comma (it goes into
 * option lists). On error `err` says which argument. Returns 0, CVM_E_INVAL,
 * CVM_E_FORMAT (an option without its value), CVM_E_UNSUPPORTED,
 * CVM_E_TOO_LARGE, CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_qemu_probe_cmd_make(const char *const *args, size_t count, const char *kernel,
                                                   const char *initrd, const char *work_dir,
                                                   struct cvm_qemu_probe_cmd *out, char *err, size_t err_len);

/* struct cvm_qemu_probe_opts says what to probe and how. */
struct cvm_qemu_probe_opts {
	const char *qemu;        /* the QEMU binary; NULL: "qemu-system-x86_64" from PATH */
	const char *swtpm;       /* NULL: "swtpm" from PATH (only when the VM has a TPM) */
	const char *const *args; /* the VM's arguments, without the program name */
	size_t arg_count;
	const char *kernel;    /* the probe's kernel (the guest kernel the initrd's module matches) */
	const char *initrd;    /* cvm_qemu_probe_initrd_write's output */
	const char *work_dir;  /* created when missing (0700); holds console.log, qemu.log, swtpm state */
	unsigned timeout_s;    /* 0: CVM_QEMU_PROBE_TIMEOUT_DEFAULT */
	const char *cache_dir; /* NULL: no cache */
	/* When not NULL, a NULL-terminated list of folders (a VM's own, its
	 * image's) whose every occurrence in the arguments counts as one
	 * placeholder in the cache key: VMs that differ only in their paths
	 * share one probe. Paths are not in the ACPI tables; what is in them
	 * (devices, sizes, the firmware's bytes) still makes the key. */
	const char *const *cache_neutral;
};

/* cvm_qemu_acpi_probe rewrites opts->args (cvm_qemu_probe_cmd_make), starts
 * a swtpm per TPM, runs QEMU with the rewritten arguments (stdin
 * /dev/null, stdout and stderr to <work>/qemu.log) until it exits or the
 * timeout passes (then kills it), stops the swtpms and parses
 * <work>/console.log. With a cache_dir, the blobs are kept under
 * cache_dir/<key>/ (table-loader.bin, rsdp.bin, tables.bin) where key is
 * the hex SHA-256 of the output of `qemu --version`, the SHA-256 of the
 * -bios file (when given) and the rewritten arguments with the work dir,
 * kernel and initrd replaced by placeholders; a later call with the same
 * key reads them from there without running QEMU (out->from_cache).
 * Failures from the cache are not stored. On error `err` says what, and for
 * a probe that ran, ends with the tail of its serial log (and QEMU's
 * messages when it failed). Returns 0, cvm_qemu_probe_cmd_make's errors,
 * CVM_E_SYSTEM (a process could not start; a timeout), the parser's
 * errors, CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_qemu_acpi_probe(const struct cvm_qemu_probe_opts *opts,
                                               struct cvm_qemu_acpi *out, char *err, size_t err_len);

#endif

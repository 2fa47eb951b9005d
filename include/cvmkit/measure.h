/* Expected TDX measurements: the MRTD the TDX module computes when QEMU
 * loads a TDVF (OVMF) firmware, and the RTMR0..2 values OVMF and the Linux
 * EFI stub extend, computed from the firmware, kernel, initrd, command line
 * and the VM's shape (spec dstack.md §5.1, dstack-mr's job).
 *
 * Pure computation over bytes: nothing here starts QEMU. What only QEMU can
 * produce (its ACPI tables, which depend on vCPUs, memory and devices) is an
 * input: the three digests OVMF extends for them, taken from a real event
 * log or computed elsewhere.
 *
 * Every firmware image and kernel is untrusted input, read through the
 * bounded reader: each offset and size is checked against the image. */
#ifndef CVMKIT_MEASURE_H
#define CVMKIT_MEASURE_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CVM_TDVF_IMAGE_MAX ((size_t)64 << 20)      /* a firmware image (OVMF.fd is 2 or 4 MiB) */
#define CVM_TDVF_SECTIONS_MAX 32u                  /* TDVF metadata sections (OVMF has 6) */
#define CVM_MEASURE_KERNEL_MAX ((size_t)256 << 20) /* a kernel image */
#define CVM_MEASURE_CMDLINE_MAX ((size_t)64 << 10) /* a kernel command line, in bytes */
#define CVM_TD_HOB_WITNESS_MAX 64u                 /* a TD HOB witness (12 bytes for OVMF) */
#define CVM_MEASURE_EVENTS_MAX 16u                 /* events per register (RTMR0 has 13) */
/* QEMU's ACPI data reserve below 4 GiB (pc/q35: 128 KiB + 32 KiB), which
 * bounds where the initrd goes. */
#define CVM_MEASURE_QEMU_ACPI_DATA_SIZE 0x28000u

/* TDVF section types (TDX Virtual Firmware Design Guide, table "TDVF_SECTION"). */
enum cvm_tdvf_section_type {
	CVM_TDVF_BFV = 0,           /* boot firmware volume (code), measured with MR.EXTEND */
	CVM_TDVF_CFV = 1,           /* configuration firmware volume (UEFI variables) */
	CVM_TDVF_TD_HOB = 2,        /* where the VMM writes the TD HOB */
	CVM_TDVF_TEMP_MEM = 3,      /* temporary memory the VMM adds (zeroed) */
	CVM_TDVF_PERM_MEM = 4,      /* permanent memory (TD-Shim) */
	CVM_TDVF_PAYLOAD = 5,       /* a payload image (TD-Shim) */
	CVM_TDVF_PAYLOAD_PARAM = 6, /* its parameters */
};
#define CVM_TDVF_ATTR_MR_EXTEND 0x1u /* the VMM extends MRTD with the section's data */
#define CVM_TDVF_ATTR_PAGE_AUG 0x2u  /* pages are added later (TDH.MEM.PAGE.AUG): not in MRTD */

/* struct cvm_tdvf_section is one TDVF_SECTION entry, decoded. */
struct cvm_tdvf_section {
	uint32_t data_offset;      /* in the firmware image */
	uint32_t raw_data_size;    /* bytes of the image, at data_offset */
	uint64_t memory_address;   /* guest physical address, 4 KiB aligned */
	uint64_t memory_data_size; /* bytes of guest memory, 4 KiB aligned, >= raw_data_size */
	uint32_t type;             /* enum cvm_tdvf_section_type (or another value) */
	uint32_t attributes;       /* CVM_TDVF_ATTR_* */
	/* [data_offset, data_offset + raw_data_size) lies inside the image given
	 * to cvm_tdvf_parse. */
	bool data_in_image;
};

/* struct cvm_tdvf is the TDVF metadata of a firmware image. */
struct cvm_tdvf {
	uint64_t image_len;       /* bytes of the image it was parsed from */
	uint64_t metadata_offset; /* where the "TDVF" descriptor starts in the image */
	uint32_t version;         /* 1 */
	size_t section_count;
	struct cvm_tdvf_section sections[CVM_TDVF_SECTIONS_MAX];
	/* Every section's data lies inside the image. False for a split
	 * OVMF_CODE.fd, whose offsets count from the start of the combined
	 * image (OVMF_VARS.fd followed by OVMF_CODE.fd, which is OVMF.fd). */
	bool data_complete;
};

/* cvm_tdvf_parse finds the TDVF metadata of the firmware image at `fw`
 * (`len` bytes, at most CVM_TDVF_IMAGE_MAX): the GUID-keyed table OVMF keeps
 * just before the image's last 32 bytes (footer GUID
 * 96b582de-1fb2-45f7-baea-a366c55a082d, whose length covers the whole
 * table), its entry e47a6535-984a-4798-865e-4685a7bf8ec2 that gives the
 * descriptor's offset from the end of the image, and the descriptor
 * ("TDVF", length, version 1, section count) with its sections. Checked:
 * every table entry and the descriptor inside the image; the descriptor's
 * length covers its sections; at most CVM_TDVF_SECTIONS_MAX sections;
 * memory address and size 4 KiB aligned, size >= raw size, no overflow of
 * the 64-bit address space, no two sections' memory overlapping; a section
 * with MR.EXTEND has a memory size equal to its raw size (the bytes the VMM
 * extends are the section's data). A section whose data lies outside the image is
 * recorded (data_in_image false), not refused: cvm_tdvf_mrtd refuses it.
 * On error `err` (may be NULL) says what, in one sentence. Returns 0,
 * CVM_E_TOO_LARGE, CVM_E_NOT_FOUND (no TDVF metadata: not a TDX firmware),
 * CVM_E_UNSUPPORTED (another descriptor version) or CVM_E_FORMAT. */
CVM_API CVM_MUST_CHECK int cvm_tdvf_parse(const uint8_t *fw, size_t len, struct cvm_tdvf *out, char *err,
                                          size_t err_len);

/* cvm_tdvf_section_type_name returns "BFV", "CFV", "TD_HOB", "TEMP_MEM",
 * "PERM_MEM", "PAYLOAD", "PAYLOAD_PARAM" or "unknown" (static strings). */
CVM_API const char *cvm_tdvf_section_type_name(uint32_t type);

/* enum cvm_mrtd_order is the order in which QEMU issues TDH.MEM.PAGE.ADD and
 * TDH.MR.EXTEND. The TDX module hashes both in the order they come, so the
 * two give different MRTDs for the same firmware. */
enum cvm_mrtd_order {
	/* Every page of a section added, then its data extended (QEMU 8.x TDX
	 * trees; dstack's "two_pass"). */
	CVM_MRTD_TWO_PASS = 0,
	/* Each page added then extended before the next (QEMU >= 9 and upstream
	 * QEMU/KVM, whose KVM_TDX_INIT_MEM_REGION works page by page: modern
	 * QEMU; dstack's "single_pass"). */
	CVM_MRTD_SINGLE_PASS = 1,
};

/* cvm_tdvf_mrtd computes MRTD as the TDX module does for `t` (parsed from
 * the same `fw`): SHA-384 over, section by section in metadata order, for
 * each 4 KiB page of a section without PAGE.AUG a 128-byte block
 * "MEM.PAGE.ADD" || 0^4 || GPA (u64 LE) || 0^104, and for each 256-byte
 * chunk of a section with MR.EXTEND a 128-byte block "MR.EXTEND" || 0^7 ||
 * GPA || 0^104 followed by the chunk. Returns 0, CVM_E_INVAL (`t` not
 * parsed from an image of `len` bytes), CVM_E_FORMAT (a measured section's
 * data is not in the image: a split OVMF_CODE.fd), CVM_E_NOMEM or
 * CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_tdvf_mrtd(const struct cvm_tdvf *t, const uint8_t *fw, size_t len,
                                         enum cvm_mrtd_order order, uint8_t out[48]);

/* cvm_tdvf_cfv_digest is the digest OVMF extends into RTMR0 for its
 * configuration volume (EV_EFI_PLATFORM_FIRMWARE_BLOB2): SHA-384 of the CFV
 * section's data as the image holds it. Returns 0, CVM_E_NOT_FOUND (no
 * CFV), CVM_E_FORMAT (its data is not in the image), CVM_E_INVAL. */
CVM_API CVM_MUST_CHECK int cvm_tdvf_cfv_digest(const struct cvm_tdvf *t, const uint8_t *fw, size_t len,
                                               uint8_t out[48]);

/* cvm_tdvf_td_hob_witness encodes dstack's "TdHobWitnessV1": the memory
 * ranges the VMM accepts before boot (TD_HOB and TEMP_MEM sections), in
 * 4 KiB pages, as unsigned LEB128 numbers: base page (the lowest range
 * start), the TD_HOB page minus base, the range count, then per range
 * (sorted by start, not merged) its start minus base and its page count.
 * Writes at most `cap` bytes. Returns 0, CVM_E_FORMAT (no or two TD_HOB
 * sections, an empty or overlapping range), CVM_E_TOO_LARGE. */
CVM_API CVM_MUST_CHECK int cvm_tdvf_td_hob_witness(const struct cvm_tdvf *t, uint8_t *out, size_t cap,
                                                   size_t *out_len);

/* cvm_td_hob_digest computes the digest OVMF extends into RTMR0 for the TD
 * HOB QEMU builds (EV_EFI_HANDOFF_TABLES2) for a VM of `memory_size` bytes,
 * from a witness: a PHIT HOB (version 9, EfiEndOfHobList = HOB address +
 * the HOB list's length + 8), then a resource descriptor HOB per range of
 * [0, memory_size) in address order: accepted ranges as system memory,
 * the gaps as unaccepted memory; the last range always as unaccepted and,
 * at or above 0xB0000000 bytes of memory, split at 2 GiB with its upper
 * part moved to 4 GiB (QEMU's q35 PCI hole). The witness must be
 * well-formed, its ranges disjoint and inside the memory. Returns 0,
 * CVM_E_FORMAT (a malformed witness), CVM_E_INVAL (ranges outside
 * memory_size). */
CVM_API CVM_MUST_CHECK int cvm_td_hob_digest(const uint8_t *witness, size_t witness_len, uint64_t memory_size,
                                             uint8_t out[48]);

/* cvm_pe_authenticode_sha384 computes the Authenticode SHA-384 digest of the
 * PE/COFF image at `pe` (`len` bytes) as edk2 measures a loaded image: the
 * headers up to SizeOfHeaders without the CheckSum field and the
 * certificate-table directory entry, the sections' raw data sorted by file
 * offset (empty ones skipped), then the bytes after the last section except
 * the certificate table (its size from the directory entry). Nothing is
 * padded. Every header field, section and the certificate table must lie
 * inside the image. Returns 0, CVM_E_TOO_LARGE, CVM_E_FORMAT (not PE/COFF,
 * or a field points outside the image), CVM_E_NOMEM, CVM_E_CRYPTO. */
CVM_API CVM_MUST_CHECK int cvm_pe_authenticode_sha384(const uint8_t *pe, size_t len, uint8_t out[48]);

/* cvm_measure_qemu_patch_kernel writes into `kernel` (a copy of a bzImage,
 * `len` bytes) the Linux boot-protocol setup-header fields QEMU's x86 Linux
 * loader sets before the guest sees the kernel: type_of_loader (0xb0),
 * loadflags CAN_USE_HEAP, heap_end_ptr, cmd_line_ptr and, when
 * `initrd_len` > 0, ramdisk_image and ramdisk_size. The initrd goes at the
 * top of the memory below 4 GiB under QEMU's ACPI reserve `acpi_data_size`
 * (CVM_MEASURE_QEMU_ACPI_DATA_SIZE), or under the kernel's initrd_addr_max,
 * 4 KiB aligned; on q35 the memory below 4 GiB is all of it up to
 * 0xB0000000 bytes and 2 GiB from there. Returns 0, CVM_E_FORMAT (shorter
 * than 4 KiB, too old a boot protocol for an initrd) or CVM_E_INVAL (the
 * initrd does not fit). */
CVM_API CVM_MUST_CHECK int cvm_measure_qemu_patch_kernel(uint8_t *kernel, size_t len, uint32_t initrd_len,
                                                         uint64_t memory_size, uint32_t acpi_data_size);

/* cvm_measure_cmdline_digest is the digest the Linux EFI stub (through
 * OVMF's LoadImage of the command line) extends into RTMR2 for a command
 * line: SHA-384 of its UTF-16LE encoding followed by a UTF-16 NUL (00 00).
 * `cmdline` is `len` bytes of UTF-8 without NUL. Returns 0, CVM_E_FORMAT
 * (not UTF-8, a NUL inside), CVM_E_TOO_LARGE, CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_measure_cmdline_digest(const char *cmdline, size_t len, uint8_t out[48]);

/* cvm_efi_variable_digest is the digest OVMF extends for an empty Secure
 * Boot variable (EV_EFI_VARIABLE_DRIVER_CONFIG with no data): SHA-384 of
 * the vendor GUID (`guid`, 16 bytes as UEFI stores it) || u64 LE name
 * length in characters || u64 LE 0 || the name in UTF-16LE. `name` is
 * ASCII. */
CVM_API void cvm_efi_variable_digest(const uint8_t guid[16], const char *name, uint8_t out[48]);

/* A computed register: the digests extended into it, in order, each with
 * what it is and where it came from (for --explain and diffs). */
struct cvm_measure_event {
	uint8_t digest[48];
	char what[64];    /* "TD HOB", "kernel (Authenticode, QEMU-patched)", ... */
	char source[128]; /* "computed from the firmware's TDVF metadata and memory 2147483648", ... */
	uint32_t type;    /* the TCG event type TDVF logs it with (CVM_EV_* of eventlog.h) */
	/* the event data a boot log carries for it (cvm_measure_ccel): the
	 * action string, the separator, the fw_cfg file name, ...; a short
	 * description where TDVF logs a structure the digest does not cover */
	uint8_t data[48];
	size_t data_len;
};
struct cvm_measure_reg {
	uint8_t value[48];
	size_t count;
	struct cvm_measure_event events[CVM_MEASURE_EVENTS_MAX];
};

/* struct cvm_measure is the expected MRTD and RTMR0..2 with their events. */
struct cvm_measure {
	uint8_t mrtd[48];
	char mrtd_source[128];
	struct cvm_measure_reg rtmr[3];
};

/* cvm_measure_ccel writes the boot event log a TDVF leaves for `m`, as the
 * TDX CCEL holds it (TCG2 crypto-agile, one SHA-384 digest per event, MR
 * index = RTMR + 1, after a "Spec ID Event03" header): the events of RTMR0,
 * 1 and 2 in order, so that a verifier replays it to m's registers. The
 * simulated TEE of a dev VM carries it (cvm-vmmd). MRTD has no events.
 * Returns 0, CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_measure_ccel(const struct cvm_measure *m, uint8_t **out, size_t *out_len);

/* struct cvm_measure_acpi holds the three digests OVMF extends into RTMR0
 * for QEMU's ACPI blobs (EV_PLATFORM_CONFIG_FLAGS events "acpi-loader",
 * "acpi-rsdp", "acpi-tables" in dstack's logs), in that order. */
struct cvm_measure_acpi {
	uint8_t loader[48];
	uint8_t rsdp[48];
	uint8_t tables[48];
	char source[96]; /* where they came from */
};

/* cvm_measure_acpi_from_eventlog takes the three ACPI digests from an event
 * log (a CCEL, or dstack's JSON event log bare or in a GetQuote reply): the
 * first three EV_PLATFORM_CONFIG_FLAGS events of RTMR0. Their digests are
 * the log's: they mean something once the log's RTMR0 matches a quote.
 * Returns 0, CVM_E_NOT_FOUND (fewer than three), or the parser's errors. */
CVM_API CVM_MUST_CHECK int cvm_measure_acpi_from_eventlog(const uint8_t *log, size_t len,
                                                          struct cvm_measure_acpi *out);

/* The OVMF boot-variable layouts dstack knows; "pre202505" is OVMF before
 * edk2-stable202505, the firmware of every dstack image so far. */
enum cvm_ovmf_variant {
	CVM_OVMF_PRE202505 = 0,
};

/* cvm_measure_rtmr0 computes RTMR0 for OVMF `variant`: the TD HOB digest,
 * the CFV digest, the five empty Secure Boot variables (SecureBoot, PK,
 * KEK, db, dbx), the separator, the three ACPI digests, BootOrder and
 * Boot0000. Boot0000 (OVMF's UiApp load option) is a constant of the
 * variant, as dstack-mr has it. `td_hob_source` and `cfv_source` say where
 * those two came from (for the explanation). Returns 0 or CVM_E_INVAL. */
CVM_API CVM_MUST_CHECK int cvm_measure_rtmr0(const uint8_t td_hob[48], const char *td_hob_source,
                                             const uint8_t cfv[48], const char *cfv_source,
                                             const struct cvm_measure_acpi *acpi,
                                             enum cvm_ovmf_variant variant, struct cvm_measure_reg *out);
/* cvm_measure_rtmr1 computes RTMR1 from the kernel's (QEMU-patched)
 * Authenticode digest and OVMF's four fixed events: "Calling EFI
 * Application from Boot Option", the separator 00000000, "Exit Boot
 * Services Invocation", "Exit Boot Services Returned with Success" (each
 * digest the SHA-384 of those bytes). */
CVM_API void cvm_measure_rtmr1(const uint8_t kernel_authenticode[48], const char *source,
                               struct cvm_measure_reg *out);
/* cvm_measure_rtmr2 computes RTMR2: the command line's digest, then the
 * initrd's SHA-384. */
CVM_API void cvm_measure_rtmr2(const uint8_t cmdline[48], const char *cmdline_source,
                               const uint8_t initrd[48], const char *initrd_source,
                               struct cvm_measure_reg *out);

/* struct cvm_measure_input is the full computation's input: bytes, not
 * paths. Everything is borrowed. */
struct cvm_measure_input {
	const uint8_t *firmware; /* the whole TDVF image (OVMF.fd) */
	size_t firmware_len;
	const uint8_t *kernel; /* bzImage as on disk */
	size_t kernel_len;
	const uint8_t *initrd; /* may be NULL with initrd_len 0 */
	size_t initrd_len;
	const char *cmdline; /* UTF-8, as measured (dstack appends " initrd=initrd") */
	size_t cmdline_len;
	uint64_t memory_size; /* bytes */
	uint32_t cpu_count;   /* recorded; only the ACPI tables depend on it */
	enum cvm_mrtd_order order;
	enum cvm_ovmf_variant variant;
	const struct cvm_measure_acpi *acpi; /* NULL: RTMR0 is not computed */
};

/* cvm_measure_tdx computes MRTD, RTMR1, RTMR2 and (with in->acpi) RTMR0
 * from the firmware, kernel, initrd, command line and memory size. Without
 * ACPI digests rtmr[0] has count 0 and a zero value. On error `err` (may be
 * NULL) names the input at fault. Returns 0 or the errors of the functions
 * above. */
CVM_API CVM_MUST_CHECK int cvm_measure_tdx(const struct cvm_measure_input *in, struct cvm_measure *out,
                                           char *err, size_t err_len);

/* cvm_measure_lite computes MRTD and RTMR0..2 from a dstack image's
 * measurement.tdx.cbor (the lite path: no image at hand): the document's
 * MRTD for `order`, RTMR0 from its TD HOB witness, `memory_size` and
 * `acpi`, RTMR1 from its kernel Authenticode digest (which dstack computes
 * for the high-memory placement, valid at exactly 2 GiB or at least
 * 0xB0000000 bytes), RTMR2 from its command-line and initrd digests.
 * Returns 0, CVM_E_INVAL (a memory size the document's kernel digest does
 * not hold for), CVM_E_NOT_FOUND (the document has no MRTD for `order`, or
 * no TD HOB witness), or the document parser's errors (`err` says what). */
CVM_API CVM_MUST_CHECK int cvm_measure_lite(const uint8_t *doc, size_t doc_len, uint64_t memory_size,
                                            enum cvm_mrtd_order order, const struct cvm_measure_acpi *acpi,
                                            struct cvm_measure *out, char *err, size_t err_len);

/* struct cvm_measure_doc_check says which fields of an image's
 * measurement.tdx.cbor equal what the image's files give. */
struct cvm_measure_doc_check {
	bool has_two_pass, has_single_pass; /* the document has that MRTD */
	bool has_td_hob;                    /* the document has a TD HOB witness */
	bool mrtd_two_pass, mrtd_single_pass;
	bool kernel_authenticode; /* the kernel patched for high memory (0xB0000000 bytes) */
	bool cmdline, initrd, td_hob;
	bool all; /* every field the document has matches */
};

/* cvm_measure_check_document recomputes an image's measurement.tdx.cbor
 * (`doc`) from the image's files in `in` (firmware, kernel, initrd, the
 * command line as measured; memory and ACPI are not used): both MRTDs, the
 * kernel's Authenticode digest as QEMU patches it for high memory (as
 * dstack builds the document), the command-line and initrd digests and the
 * TD HOB witness, and says which fields match. It proves the document
 * describes these files; nothing about a VM. Returns 0 (whatever matched),
 * the document parser's errors, or cvm_measure_tdx's (`err` says which). */
CVM_API CVM_MUST_CHECK int cvm_measure_check_document(const struct cvm_measure_input *in, const uint8_t *doc,
                                                      size_t doc_len, struct cvm_measure_doc_check *out,
                                                      char *err, size_t err_len);

/* struct cvm_measure_vm is what dstack's vm_config says about the VM. */
struct cvm_measure_vm {
	uint64_t memory_size;
	uint32_t cpu_count;
	enum cvm_mrtd_order order; /* from qemu_version / qemu_single_pass_add_pages, as dstack reads them */
	char order_source[96];
	char qemu_version[32]; /* "" when absent */
	char image[64];        /* "" when absent */
	/* tdx_measurement (lite), decoded; NULL when absent (caller frees) */
	uint8_t *measurement;
	size_t measurement_len;
	uint8_t *checksum_file;
	size_t checksum_file_len;
	uint8_t os_image_hash[32];
	bool has_os_image_hash;
};

/* cvm_measure_vm_config_parse reads dstack's vm_config JSON (spec §4.5):
 * memory_size and cpu_count (required), qemu_version, image,
 * qemu_single_pass_add_pages, os_image_hash and tdx_measurement
 * {measurement, checksum_file} (standard base64). The MRTD order is
 * dstack's: qemu_single_pass_add_pages when present (dstack-mr passes its
 * value as "two pass", and so does this), else two pass for QEMU 8.x and
 * single pass for 9.0 and later or no version. Free with
 * cvm_measure_vm_cleanup. Returns 0, CVM_E_FORMAT (`err` says which
 * field), CVM_E_UNSUPPORTED (QEMU older than 8.0), CVM_E_TOO_LARGE,
 * CVM_E_NOMEM. */
CVM_API CVM_MUST_CHECK int cvm_measure_vm_config_parse(const char *json, size_t len,
                                                       struct cvm_measure_vm *out, char *err, size_t err_len);
CVM_API void cvm_measure_vm_cleanup(struct cvm_measure_vm *vm);

/* ---- SEV-SNP launch digest ----
 *
 * The MEASUREMENT an SEV-SNP guest gets when QEMU launches it with OVMF
 * (the AmdSev build, or the generic one with SEV metadata), direct kernel
 * boot and kernel-hashes=on: the PSP's launch digest after QEMU's
 * SNP_LAUNCH_UPDATE calls (the firmware pages, the pages OVMF's SEV
 * metadata names, one VMSA page per vCPU), as sev-snp-measure computes it
 * for --mode snp --vmm-type QEMU. */

#define CVM_SNP_FW_SECTIONS_MAX 16u /* SEV metadata sections (OVMF has 5 or 6) */
#define CVM_SNP_STEPS_MAX 24u       /* firmware + sections + BSP and AP VMSAs */
#define CVM_SNP_VCPUS_MAX 512u      /* QEMU's x86 limit is lower than KVM's 4096 */

/* OVMF's SEV metadata section types (edk2 OvmfPkg/ResetVector/X64/OvmfSevMetadata.asm). */
enum cvm_snp_section_type {
	CVM_SNP_SEC_MEM = 1,          /* memory OVMF's SEC uses: zero pages */
	CVM_SNP_SECRETS = 2,          /* the PSP's secrets page */
	CVM_SNP_CPUID = 3,            /* the CPUID page the PSP checks */
	CVM_SNP_SVSM_CAA = 4,         /* an SVSM calling area: zero pages */
	CVM_SNP_KERNEL_HASHES = 0x10, /* the page QEMU puts the kernel hashes table in */
};

/* struct cvm_snp_fw_section is one SEV metadata section, decoded. */
struct cvm_snp_fw_section {
	uint32_t gpa;  /* guest physical address, 4 KiB aligned */
	uint32_t size; /* bytes, a non-zero multiple of 4 KiB */
	uint32_t type; /* enum cvm_snp_section_type */
};

/* struct cvm_snp_fw is what an OVMF image says about SEV-SNP. */
struct cvm_snp_fw {
	uint64_t image_len;
	uint64_t gpa;             /* where QEMU maps the image: it ends at 4 GiB */
	uint64_t metadata_offset; /* where "ASEV" starts in the image */
	uint32_t reset_eip;       /* the APs' SEV-ES reset vector; 0 when absent */
	uint32_t hashes_gpa;      /* where QEMU puts the kernel hashes table; 0 when absent */
	size_t section_count;
	struct cvm_snp_fw_section sections[CVM_SNP_FW_SECTIONS_MAX];
};

/* cvm_snp_fw_parse reads the SEV-SNP data of the OVMF image at `fw` (`len`
 * bytes, at most CVM_TDVF_IMAGE_MAX, a multiple of 4 KiB): OVMF's GUID
 * table before the image's last 32 bytes (the table cvm_tdvf_parse reads),
 * its SEV-ES reset block entry (00f771de-...), its SEV hash table entry
 * (7255371f-...) and its SEV metadata entry (dc886566-...) that gives the
 * offset from the end of the image of the "ASEV" header (length, version 1,
 * section count) and its 12-byte sections. Checked: every entry and the
 * header inside the image, the header's length covering its sections, at
 * most CVM_SNP_FW_SECTIONS_MAX sections, each of a known type, 4 KiB
 * aligned, non-empty and below 4 GiB, a kernel hashes section of exactly one
 * page that holds the hashes table's address. On error `err` (may be NULL)
 * says what, and `out` is zeroed. Returns 0, CVM_E_TOO_LARGE, CVM_E_NOT_FOUND
 * (no SEV metadata: not an SEV-SNP firmware), CVM_E_UNSUPPORTED (another
 * version, an unknown section type) or CVM_E_FORMAT. */
CVM_API CVM_MUST_CHECK int cvm_snp_fw_parse(const uint8_t *fw, size_t len, struct cvm_snp_fw *out, char *err,
                                            size_t err_len);

/* cvm_snp_section_type_name returns "SNP_SEC_MEM", "SNP_SECRETS", "CPUID",
 * "SVSM_CAA", "SNP_KERNEL_HASHES" or "unknown" (static strings). */
CVM_API const char *cvm_snp_section_type_name(uint32_t type);

/* cvm_snp_vcpu_sig gives the CPUID signature (leaf 1 EAX: family, model,
 * stepping) QEMU's CPU model `name` has ("EPYC-v4", "EPYC-Milan", ...), which
 * QEMU puts in each VMSA's RDX. Returns 0 or CVM_E_NOT_FOUND (a model this
 * table does not know: refuse rather than guess). */
CVM_API CVM_MUST_CHECK int cvm_snp_vcpu_sig(const char *name, uint32_t *out);

/* struct cvm_snp_measure_input is the launch digest's input: bytes, not
 * paths. Everything is borrowed. */
struct cvm_snp_measure_input {
	const uint8_t *firmware; /* the whole OVMF image given to -bios */
	size_t firmware_len;
	/* kernel-hashes=on with -kernel: the hashes page is measured. False:
	 * that page is measured as zeroes (no -kernel). */
	bool kernel_hashes;
	const uint8_t *kernel; /* may be NULL with kernel_len 0 */
	size_t kernel_len;
	const uint8_t *initrd; /* NULL with initrd_len 0: no -initrd (hashed as empty) */
	size_t initrd_len;
	const char *cmdline; /* -append, without NUL; QEMU hashes it with its NUL */
	size_t cmdline_len;
	uint32_t vcpus;          /* 1..CVM_SNP_VCPUS_MAX */
	uint32_t vcpu_sig;       /* cvm_snp_vcpu_sig */
	uint64_t guest_features; /* the VMSA's SEV_FEATURES: 0x1 (SNP), 0x21 with DebugSwap */
};

/* One step of the launch digest: a run of SNP_LAUNCH_UPDATE pages. */
struct cvm_snp_measure_step {
	char what[64];    /* "firmware", "SNP_SECRETS", "VMSA (BSP)", ... */
	char source[128]; /* how its pages were made */
	uint64_t gpa;     /* of the first page (VMSA: 0xFFFFFFFFF000) */
	uint64_t pages;
	uint8_t digest[48]; /* the launch digest after the step */
};

/* struct cvm_snp_measure is the launch digest and its steps. */
struct cvm_snp_measure {
	uint8_t digest[48];
	uint8_t firmware_digest[48]; /* after the firmware pages: sev-snp-measure's --snp-ovmf-hash */
	size_t step_count;
	struct cvm_snp_measure_step steps[CVM_SNP_STEPS_MAX];
};

/* cvm_snp_launch_digest computes the SEV-SNP launch digest of `in` as the
 * PSP does (SNP ABI, SNP_LAUNCH_UPDATE: digest = SHA-384 of PAGE_INFO, the
 * previous digest || the page's SHA-384 (zero for zero, secrets and CPUID
 * pages) || length 0x70 || page type || 0s || GPA), for QEMU: the firmware's
 * pages ending at 4 GiB, the metadata sections in order (the kernel hashes
 * page built as QEMU builds it), then a VMSA per vCPU in QEMU's reset state
 * (the BSP at 0xfffffff0, the APs at the firmware's reset vector). It does
 * not know the guest policy, host data or ID block: those are elsewhere in
 * the report. On error `err` (may be NULL) says what. Returns 0, the
 * parser's errors, CVM_E_INVAL (vCPU count, or inputs too large),
 * CVM_E_UNSUPPORTED (kernel hashes asked of a firmware without them, APs
 * without a reset vector). */
CVM_API CVM_MUST_CHECK int cvm_snp_launch_digest(const struct cvm_snp_measure_input *in,
                                                 struct cvm_snp_measure *out, char *err, size_t err_len);

#endif

/* RTMR0..2 event lists, the full and the lite computations, the ACPI
 * digests from an event log and dstack's vm_config (measure.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/measure.h>
#include <cvmkit/osimage.h>

#include "measure_int.h"

/* EFI_GLOBAL_VARIABLE and EFI_IMAGE_SECURITY_DATABASE_GUID, as stored. */
static const uint8_t efi_global[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
                                       0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};
static const uint8_t efi_secdb[16] = {0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45,
                                      0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f};

/* OVMF pre-202505 (dstack's firmware): Boot0000 is its UiApp load option,
 * whose digest dstack-mr carries as a constant; and the CFV of dstack's
 * OVMF build, which the lite path (no firmware at hand) takes as dstack-mr
 * does. Both equal the digests of the tdx-lite fixture's event log. */
static const uint8_t pre202505_boot0000[48] = {
    0x23, 0xad, 0xa0, 0x7f, 0x52, 0x61, 0xf1, 0x2f, 0x34, 0xa0, 0xbd, 0x8e, 0x46, 0x76, 0x09, 0x62,
    0xd6, 0xb4, 0xd5, 0x76, 0xa4, 0x16, 0xf1, 0xfe, 0xa1, 0xc6, 0x4b, 0xc6, 0x56, 0xb1, 0xd2, 0x8e,
    0xac, 0xf7, 0x04, 0x7a, 0xe6, 0xe9, 0x67, 0xc5, 0x8f, 0xd2, 0xa9, 0x8b, 0xfa, 0x74, 0xc2, 0x98};
static const uint8_t pre202505_dstack_cfv[48] = {
    0x34, 0x4b, 0xc5, 0x1c, 0x98, 0x0b, 0xa6, 0x21, 0xaa, 0xa0, 0x0d, 0xa3, 0xed, 0x74, 0x36, 0xf7,
    0xd6, 0xe5, 0x49, 0x19, 0x7d, 0xfe, 0x69, 0x95, 0x15, 0xdf, 0xa2, 0xc6, 0x58, 0x3d, 0x95, 0xe6,
    0x41, 0x2a, 0xf2, 0x1c, 0x09, 0x7d, 0x47, 0x31, 0x55, 0x87, 0x5f, 0xfd, 0x56, 0x1d, 0x67, 0x90};

#define MEM_2G 0x80000000ull
#define MEM_HIGH 0xB0000000ull

/* reg_add extends `reg` with the event digest `d`, logged with `type` and
 * `data` (the text `data`, without its NUL; NULL: `what`, cut to fit). */
static void reg_add(struct cvm_measure_reg *reg, const uint8_t d[48], uint32_t type, const void *data,
                    size_t data_len, const char *what, const char *source)
{
	struct cvm_measure_event *e;
	uint8_t buf[96];

	if (reg->count >= CVM_MEASURE_EVENTS_MAX)
		return;
	e = &reg->events[reg->count];
	e->type = type;
	if (data == NULL) {
		data = what;
		data_len = strlen(what);
	}
	e->data_len = data_len < sizeof(e->data) ? data_len : sizeof(e->data);
	memcpy(e->data, data, e->data_len);
	memcpy(reg->events[reg->count].digest, d, 48);
	(void)snprintf(reg->events[reg->count].what, sizeof(reg->events[0].what), "%s", what);
	(void)snprintf(reg->events[reg->count].source, sizeof(reg->events[0].source), "%s",
	               source != NULL ? source : "");
	reg->count++;
	memcpy(buf, reg->value, 48);
	memcpy(buf + 48, d, 48);
	cvm_sha384(buf, sizeof(buf), reg->value);
}

/* reg_add_bytes: an event whose digest is the SHA-384 of its data. */
static void reg_add_bytes(struct cvm_measure_reg *reg, uint32_t type, const void *p, size_t n,
                          const char *what, const char *source)
{
	uint8_t d[48];

	cvm_sha384(p, n, d);
	reg_add(reg, d, type, p, n, what, source);
}

static const uint8_t separator[4] = {0, 0, 0, 0};

int cvm_measure_rtmr0(const uint8_t td_hob[48], const char *td_hob_source, const uint8_t cfv[48],
                      const char *cfv_source, const struct cvm_measure_acpi *acpi,
                      enum cvm_ovmf_variant variant, struct cvm_measure_reg *out)
{
	static const uint8_t boot_order[2] = {0, 0};
	static const struct {
		const uint8_t *guid;
		const char *name;
	} vars[] = {{efi_global, "SecureBoot"},
	            {efi_global, "PK"},
	            {efi_global, "KEK"},
	            {efi_secdb, "db"},
	            {efi_secdb, "dbx"}};
	uint8_t d[48];
	char what[64];

	memset(out, 0, sizeof(*out));
	if (variant != CVM_OVMF_PRE202505 || acpi == NULL)
		return CVM_E_INVAL;
	reg_add(out, td_hob, CVM_EV_EFI_HANDOFF_TABLES2, "td_hob", 6, "TD HOB (EV_EFI_HANDOFF_TABLES2)",
	        td_hob_source);
	reg_add(out, cfv, CVM_EV_EFI_PLATFORM_FIRMWARE_BLOB2, "cfv", 3,
	        "CFV, UEFI variable store (EV_EFI_PLATFORM_FIRMWARE_BLOB2)", cfv_source);
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		cvm_efi_variable_digest(vars[i].guid, vars[i].name, d);
		(void)snprintf(what, sizeof(what), "%s, empty (EV_EFI_VARIABLE_DRIVER_CONFIG)", vars[i].name);
		reg_add(out, d, CVM_EV_EFI_VARIABLE_DRIVER_CONFIG, vars[i].name, strlen(vars[i].name), what,
		        "fixed: Secure Boot off");
	}
	reg_add_bytes(out, CVM_EV_SEPARATOR, separator, sizeof(separator), "separator (EV_SEPARATOR)",
	              "fixed: 00000000");
	reg_add(out, acpi->loader, CVM_EV_PLATFORM_CONFIG_FLAGS, "ACPI DATA", 9,
	        "ACPI table-loader (EV_PLATFORM_CONFIG_FLAGS)", acpi->source);
	reg_add(out, acpi->rsdp, CVM_EV_PLATFORM_CONFIG_FLAGS, "ACPI DATA", 9,
	        "ACPI RSDP (EV_PLATFORM_CONFIG_FLAGS)", acpi->source);
	reg_add(out, acpi->tables, CVM_EV_PLATFORM_CONFIG_FLAGS, "ACPI DATA", 9,
	        "ACPI tables (EV_PLATFORM_CONFIG_FLAGS)", acpi->source);
	reg_add_bytes(out, CVM_EV_EFI_VARIABLE_BOOT, boot_order, sizeof(boot_order),
	              "BootOrder (EV_EFI_VARIABLE_BOOT)",
	              "fixed: BootOrder = 0000, its data hashed (OVMF pre202505)");
	reg_add(out, pre202505_boot0000, CVM_EV_EFI_VARIABLE_BOOT, "Boot0000", 8,
	        "Boot0000, OVMF UiApp (EV_EFI_VARIABLE_BOOT)",
	        "constant of OVMF pre202505 (as dstack-mr has it)");
	return CVM_OK;
}

void cvm_measure_rtmr1(const uint8_t kernel_authenticode[48], const char *source, struct cvm_measure_reg *out)
{
	static const char calling[] = "Calling EFI Application from Boot Option";
	static const char exit_inv[] = "Exit Boot Services Invocation";
	static const char exit_ok[] = "Exit Boot Services Returned with Success";

	memset(out, 0, sizeof(*out));
	reg_add(out, kernel_authenticode, CVM_EV_EFI_BOOT_SERVICES_APPLICATION, "kernel", 6,
	        "kernel, Authenticode SHA-384 (EV_EFI_BOOT_SERVICES_APPLICATION)", source);
	reg_add_bytes(out, CVM_EV_EFI_ACTION, calling, sizeof(calling) - 1,
	              "\"Calling EFI Application from Boot Option\"", "fixed (EV_EFI_ACTION)");
	reg_add_bytes(out, CVM_EV_SEPARATOR, separator, sizeof(separator), "separator (EV_SEPARATOR)",
	              "fixed: 00000000");
	reg_add_bytes(out, CVM_EV_EFI_ACTION, exit_inv, sizeof(exit_inv) - 1,
	              "\"Exit Boot Services Invocation\"", "fixed (EV_EFI_ACTION)");
	reg_add_bytes(out, CVM_EV_EFI_ACTION, exit_ok, sizeof(exit_ok) - 1,
	              "\"Exit Boot Services Returned with Success\"", "fixed (EV_EFI_ACTION)");
}

void cvm_measure_rtmr2(const uint8_t cmdline[48], const char *cmdline_source, const uint8_t initrd[48],
                       const char *initrd_source, struct cvm_measure_reg *out)
{
	memset(out, 0, sizeof(*out));
	reg_add(out, cmdline, CVM_EV_EVENT_TAG, "cmdline", 7,
	        "kernel command line, UTF-16LE + NUL (EV_EVENT_TAG)", cmdline_source);
	reg_add(out, initrd, CVM_EV_EVENT_TAG, "initrd", 6, "initrd, SHA-384 (EV_EVENT_TAG)", initrd_source);
}

int cvm_measure_acpi_from_eventlog(const uint8_t *log, size_t len, struct cvm_measure_acpi *out)
{
	struct cvm_evl_parser *p = NULL;
	struct cvm_evl_event ev;
	uint8_t *dst[3];
	bool has = true;
	size_t found = 0;
	int r;

	memset(out, 0, sizeof(*out));
	dst[0] = out->loader;
	dst[1] = out->rsdp;
	dst[2] = out->tables;
	r = cvm_evl_parser_new_mem(log, len, CVM_EVL_AUTO, &p);
	if (r != CVM_OK)
		return r;
	while (found < 3) {
		uint32_t rtmr0;

		r = cvm_evl_parser_next(p, &ev, &has);
		if (r != CVM_OK || !has)
			break;
		rtmr0 = cvm_evl_parser_format(p) == CVM_EVL_CCEL ? 1 : 0;
		if (ev.is_header || ev.reg != rtmr0 || ev.type != CVM_EV_PLATFORM_CONFIG_FLAGS)
			continue;
		for (size_t i = 0; i < ev.digest_count; i++) {
			if (ev.digests[i].alg == CVM_DIGEST_SHA384 && ev.digests[i].len == 48) {
				memcpy(dst[found++], ev.digests[i].p, 48);
				break;
			}
		}
	}
	if (r == CVM_OK && found < 3)
		r = CVM_E_NOT_FOUND;
	if (r == CVM_OK)
		(void)snprintf(out->source, sizeof(out->source), "the event log (%s), not checked",
		               cvm_evl_format_name(cvm_evl_parser_format(p)));
	else
		memset(out, 0, sizeof(*out));
	cvm_evl_parser_free(p);
	return r;
}

int cvm_measure_tdx(const struct cvm_measure_input *in, struct cvm_measure *out, char *err, size_t err_len)
{
	struct cvm_tdvf *t = NULL;
	uint8_t *k = NULL;
	uint8_t witness[CVM_TD_HOB_WITNESS_MAX], hob[48], cfv[48], kd[48], cl[48], ird[48];
	size_t wlen = 0;
	char src[128];
	int r;

	memset(out, 0, sizeof(*out));
	measure_errf(err, err_len, "%s", "");
	if (in->firmware == NULL || in->kernel == NULL || (in->initrd == NULL && in->initrd_len != 0) ||
	    (in->cmdline == NULL && in->cmdline_len != 0)) {
		measure_errf(err, err_len, "the firmware and the kernel are required");
		return CVM_E_INVAL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return CVM_E_NOMEM;
	r = cvm_tdvf_parse(in->firmware, in->firmware_len, t, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_tdvf_mrtd(t, in->firmware, in->firmware_len, in->order, out->mrtd);
	if (r == CVM_E_FORMAT && !t->data_complete) {
		measure_errf(
		    err, err_len,
		    "the firmware's sections lie beyond its %zu bytes: this is a split OVMF_CODE.fd; "
		    "give the whole image (OVMF_VARS.fd then OVMF_CODE.fd, e.g. /usr/share/ovmf/OVMF.fd)",
		    in->firmware_len);
		goto out;
	}
	if (r != CVM_OK)
		goto out;
	(void)snprintf(out->mrtd_source, sizeof(out->mrtd_source),
	               "computed from the firmware's TDVF sections, %s",
	               in->order == CVM_MRTD_TWO_PASS ? "two pass (QEMU 8.x)" : "single pass (QEMU >= 9)");

	if (in->acpi != NULL) {
		r = cvm_tdvf_td_hob_witness(t, witness, sizeof(witness), &wlen);
		if (r == CVM_OK)
			r = cvm_td_hob_digest(witness, wlen, in->memory_size, hob);
		if (r != CVM_OK) {
			measure_errf(err, err_len,
			             "cannot build the TD HOB from the firmware's sections for %" PRIu64
			             " bytes of memory",
			             in->memory_size);
			goto out;
		}
		r = cvm_tdvf_cfv_digest(t, in->firmware, in->firmware_len, cfv);
		if (r != CVM_OK) {
			measure_errf(err, err_len, "the firmware has no CFV section in the image");
			goto out;
		}
		(void)snprintf(src, sizeof(src), "computed: TDVF TD_HOB/TEMP_MEM sections, memory %" PRIu64,
		               in->memory_size);
		r = cvm_measure_rtmr0(hob, src, cfv, "computed: SHA-384 of the firmware's CFV section",
		                      in->acpi, in->variant, &out->rtmr[0]);
		if (r != CVM_OK)
			goto out;
	}

	if (in->initrd_len > UINT32_MAX) {
		measure_errf(err, err_len, "the initrd is larger than 4 GiB");
		r = CVM_E_INVAL;
		goto out;
	}
	k = malloc(in->kernel_len != 0 ? in->kernel_len : 1);
	if (k == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(k, in->kernel, in->kernel_len);
	r = cvm_measure_qemu_patch_kernel(k, in->kernel_len, (uint32_t)in->initrd_len, in->memory_size,
	                                  CVM_MEASURE_QEMU_ACPI_DATA_SIZE);
	if (r != CVM_OK) {
		measure_errf(err, err_len,
		             r == CVM_E_INVAL
		                 ? "the initrd does not fit below QEMU's ACPI data in this memory"
		                 : "the kernel is not a bzImage QEMU can load with an initrd");
		goto out;
	}
	r = cvm_pe_authenticode_sha384(k, in->kernel_len, kd);
	if (r != CVM_OK) {
		measure_errf(err, err_len, "the kernel is not a PE/COFF image (an EFI-stub bzImage)");
		goto out;
	}
	(void)snprintf(src, sizeof(src),
	               "computed: the kernel as QEMU patches it (initrd %zu bytes, memory %" PRIu64 ")",
	               in->initrd_len, in->memory_size);
	cvm_measure_rtmr1(kd, src, &out->rtmr[1]);
	r = cvm_measure_cmdline_digest(in->cmdline != NULL ? in->cmdline : "", in->cmdline_len, cl);
	if (r != CVM_OK) {
		measure_errf(err, err_len, "the command line is not UTF-8 without NUL, or too long");
		goto out;
	}
	cvm_sha384(in->initrd != NULL ? in->initrd : (const uint8_t *)"", in->initrd_len, ird);
	cvm_measure_rtmr2(cl, "computed from the command line", ird, "computed from the initrd file",
	                  &out->rtmr[2]);
	r = CVM_OK;
out:
	free(k);
	free(t);
	if (r != CVM_OK)
		memset(out, 0, sizeof(*out));
	return r;
}

int cvm_measure_lite(const uint8_t *doc, size_t doc_len, uint64_t memory_size, enum cvm_mrtd_order order,
                     const struct cvm_measure_acpi *acpi, struct cvm_measure *out, char *err, size_t err_len)
{
	struct cvm_osimage_tdx d;
	uint8_t hob[48];
	char src[128];
	int r;

	memset(out, 0, sizeof(*out));
	measure_errf(err, err_len, "%s", "");
	if (acpi == NULL)
		return CVM_E_INVAL;
	if (memory_size != MEM_2G && memory_size < MEM_HIGH) {
		measure_errf(
		    err, err_len,
		    "the image's kernel digest holds for exactly 2 GiB or at least 0xB0000000 bytes of "
		    "memory, not %" PRIu64 ": QEMU puts the initrd elsewhere; measure the image itself",
		    memory_size);
		return CVM_E_INVAL;
	}
	r = cvm_osimage_tdx_parse(doc, doc_len, &d, err, err_len);
	if (r != CVM_OK)
		return r;
	if (order == CVM_MRTD_TWO_PASS ? !d.has_two_pass : !d.has_single_pass) {
		measure_errf(err, err_len, "the measurement document has no %s MRTD",
		             order == CVM_MRTD_TWO_PASS ? "two_pass" : "single_pass");
		return CVM_E_NOT_FOUND;
	}
	memcpy(out->mrtd, order == CVM_MRTD_TWO_PASS ? d.mrtd_two_pass : d.mrtd_single_pass, 48);
	(void)snprintf(out->mrtd_source, sizeof(out->mrtd_source), "the measurement document's tdvf.mrtd.%s",
	               order == CVM_MRTD_TWO_PASS ? "two_pass" : "single_pass");
	if (d.td_hob_len == 0) {
		measure_errf(err, err_len, "the measurement document has no TD HOB witness (tdvf.td_hob)");
		return CVM_E_NOT_FOUND;
	}
	r = cvm_td_hob_digest(d.td_hob, d.td_hob_len, memory_size, hob);
	if (r != CVM_OK) {
		measure_errf(err, err_len,
		             "the document's TD HOB witness is malformed or does not fit the memory");
		return r;
	}
	(void)snprintf(src, sizeof(src), "computed: the document's TD HOB witness, memory %" PRIu64,
	               memory_size);
	r = cvm_measure_rtmr0(hob, src, pre202505_dstack_cfv,
	                      "constant of dstack's OVMF pre202505 (dstack-mr)", acpi, CVM_OVMF_PRE202505,
	                      &out->rtmr[0]);
	if (r != CVM_OK)
		return r;
	cvm_measure_rtmr1(d.kernel_authenticode, "the measurement document's image.kernel_authenticode",
	                  &out->rtmr[1]);
	cvm_measure_rtmr2(d.cmdline_sha384, "the measurement document's image.cmdline_sha384",
	                  d.initrd_sha384, "the measurement document's image.initrd_sha384", &out->rtmr[2]);
	return CVM_OK;
}

int cvm_measure_check_document(const struct cvm_measure_input *in, const uint8_t *doc, size_t doc_len,
                               struct cvm_measure_doc_check *out, char *err, size_t err_len)
{
	struct cvm_measure_input hi = *in;
	struct cvm_osimage_tdx d;
	struct cvm_measure *m = NULL;
	struct cvm_tdvf *t = NULL;
	uint8_t single[48], w[CVM_TD_HOB_WITNESS_MAX];
	size_t wlen = 0;
	int r;

	memset(out, 0, sizeof(*out));
	r = cvm_osimage_tdx_parse(doc, doc_len, &d, err, err_len);
	if (r != CVM_OK)
		return r;
	m = calloc(1, sizeof(*m));
	t = calloc(1, sizeof(*t));
	if (m == NULL || t == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	/* dstack computes the document's kernel digest for high memory */
	hi.memory_size = MEM_HIGH;
	hi.acpi = NULL;
	hi.order = CVM_MRTD_TWO_PASS;
	r = cvm_measure_tdx(&hi, m, err, err_len);
	if (r != CVM_OK)
		goto out;
	r = cvm_tdvf_parse(in->firmware, in->firmware_len, t, err, err_len);
	if (r == CVM_OK)
		r = cvm_tdvf_mrtd(t, in->firmware, in->firmware_len, CVM_MRTD_SINGLE_PASS, single);
	if (r == CVM_OK)
		r = cvm_tdvf_td_hob_witness(t, w, sizeof(w), &wlen);
	if (r != CVM_OK)
		goto out;
	out->has_two_pass = d.has_two_pass;
	out->has_single_pass = d.has_single_pass;
	out->has_td_hob = d.td_hob_len != 0;
	out->mrtd_two_pass = d.has_two_pass && memcmp(d.mrtd_two_pass, m->mrtd, 48) == 0;
	out->mrtd_single_pass = d.has_single_pass && memcmp(d.mrtd_single_pass, single, 48) == 0;
	out->kernel_authenticode = memcmp(d.kernel_authenticode, m->rtmr[1].events[0].digest, 48) == 0;
	out->cmdline = memcmp(d.cmdline_sha384, m->rtmr[2].events[0].digest, 48) == 0;
	out->initrd = memcmp(d.initrd_sha384, m->rtmr[2].events[1].digest, 48) == 0;
	out->td_hob = d.td_hob_len == wlen && memcmp(d.td_hob, w, wlen) == 0;
	out->all = (!d.has_two_pass || out->mrtd_two_pass) && (!d.has_single_pass || out->mrtd_single_pass) &&
	           out->kernel_authenticode && out->cmdline && out->initrd &&
	           (d.td_hob_len == 0 || out->td_hob);
out:
	free(t);
	free(m);
	return r;
}

/* ---- vm_config ---------------------------------------------------------- */

static int b64_field(const json_t *o, const char *key, size_t max, uint8_t **out, size_t *out_len, char *err,
                     size_t err_len)
{
	const json_t *v = json_object_get(o, key);
	int r;

	if (!json_is_string(v)) {
		measure_errf(err, err_len, "vm_config: tdx_measurement.%s is not a base64 string", key);
		return CVM_E_FORMAT;
	}
	r = cvm_base64_decode(json_string_value(v), json_string_length(v), max, out, out_len);
	if (r != CVM_OK)
		measure_errf(err, err_len, "vm_config: tdx_measurement.%s is not base64 of at most %zu bytes",
		             key, max);
	return r == CVM_E_NOMEM ? r : (r != CVM_OK ? CVM_E_FORMAT : CVM_OK);
}

static bool parse_version(const char *s, unsigned v[3])
{
	unsigned n = 0;

	v[0] = v[1] = v[2] = 0;
	for (const char *p = s; n < 3; p++) {
		unsigned long x = 0;
		size_t digits = 0;

		while (*p >= '0' && *p <= '9' && digits < 6) {
			x = x * 10 + (unsigned long)(*p - '0');
			p++;
			digits++;
		}
		if (digits == 0)
			return false;
		v[n++] = (unsigned)x;
		if (*p == '\0')
			return n == 3;
		if (*p != '.')
			return false;
	}
	return false;
}

void cvm_measure_vm_cleanup(struct cvm_measure_vm *vm)
{
	if (vm == NULL)
		return;
	free(vm->measurement);
	free(vm->checksum_file);
	memset(vm, 0, sizeof(*vm));
}

int cvm_measure_vm_config_parse(const char *json, size_t len, struct cvm_measure_vm *out, char *err,
                                size_t err_len)
{
	json_error_t je;
	json_t *root = NULL;
	const json_t *v, *tm;
	unsigned ver[3] = {9, 1, 0};
	int r = CVM_E_FORMAT;

	memset(out, 0, sizeof(*out));
	measure_errf(err, err_len, "%s", "");
	if (len > (size_t)1 << 20) {
		measure_errf(err, err_len, "vm_config: more than 1 MiB");
		return CVM_E_TOO_LARGE;
	}
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(root)) {
		measure_errf(err, err_len, "vm_config: not a JSON object");
		goto out;
	}
	v = json_object_get(root, "memory_size");
	if (!json_is_integer(v) || json_integer_value(v) <= 0) {
		measure_errf(err, err_len,
		             "vm_config: memory_size (bytes) is missing or not a positive integer");
		goto out;
	}
	out->memory_size = (uint64_t)json_integer_value(v);
	v = json_object_get(root, "cpu_count");
	if (!json_is_integer(v) || json_integer_value(v) <= 0 || json_integer_value(v) > 4096) {
		measure_errf(err, err_len, "vm_config: cpu_count is missing or not in 1..4096");
		goto out;
	}
	out->cpu_count = (uint32_t)json_integer_value(v);
	v = json_object_get(root, "image");
	if (json_is_string(v))
		(void)snprintf(out->image, sizeof(out->image), "%s", json_string_value(v));
	v = json_object_get(root, "qemu_version");
	if (json_is_string(v)) {
		(void)snprintf(out->qemu_version, sizeof(out->qemu_version), "%s", json_string_value(v));
		if (!parse_version(json_string_value(v), ver)) {
			measure_errf(err, err_len, "vm_config: qemu_version is not MAJOR.MINOR.PATCH");
			goto out;
		}
	} else if (v != NULL && !json_is_null(v)) {
		measure_errf(err, err_len, "vm_config: qemu_version is not a string");
		goto out;
	}
	if (ver[0] < 8) {
		measure_errf(err, err_len,
		             "vm_config: QEMU %u.%u.%u is older than 8.0, which dstack does not support",
		             ver[0], ver[1], ver[2]);
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	v = json_object_get(root, "qemu_single_pass_add_pages");
	if (json_is_boolean(v)) {
		/* dstack-mr passes this field's value as its two-pass switch */
		out->order = json_is_true(v) ? CVM_MRTD_TWO_PASS : CVM_MRTD_SINGLE_PASS;
		(void)snprintf(out->order_source, sizeof(out->order_source),
		               "vm_config qemu_single_pass_add_pages=%s, read as dstack-mr reads it",
		               json_is_true(v) ? "true" : "false");
	} else {
		out->order = ver[0] == 8 ? CVM_MRTD_TWO_PASS : CVM_MRTD_SINGLE_PASS;
		(void)snprintf(out->order_source, sizeof(out->order_source), "QEMU %u.%u.%u%s: %s", ver[0],
		               ver[1], ver[2],
		               json_is_string(json_object_get(root, "qemu_version")) ? "" : " (assumed)",
		               ver[0] == 8 ? "two pass" : "single pass");
	}
	v = json_object_get(root, "os_image_hash");
	if (json_is_string(v) && cvm_hex_decode_exact(json_string_value(v), json_string_length(v),
	                                              out->os_image_hash, 32) == CVM_OK)
		out->has_os_image_hash = true;
	tm = json_object_get(root, "tdx_measurement");
	if (json_is_object(tm)) {
		r = b64_field(tm, "measurement", CVM_OSIMAGE_TDX_MAX, &out->measurement,
		              &out->measurement_len, err, err_len);
		if (r == CVM_OK)
			r = b64_field(tm, "checksum_file", CVM_OSIMAGE_CHECKSUMS_MAX, &out->checksum_file,
			              &out->checksum_file_len, err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	r = CVM_OK;
out:
	json_decref(root);
	if (r != CVM_OK)
		cvm_measure_vm_cleanup(out);
	return r;
}

int cvm_measure_ccel(const struct cvm_measure *m, uint8_t **out, size_t *out_len)
{
	static const char spec_id[16] = "Spec ID Event03";
	struct cvm_wr w;

	*out = NULL;
	*out_len = 0;
	cvm_wr_init(&w, (size_t)64 << 10);
	/* the header (TCG_PCR_EVENT, SHA-1 layout): EV_NO_ACTION with the
	 * TCG_EfiSpecIdEvent naming the one bank, SHA-384 */
	cvm_wr_u32le(&w, 0);
	cvm_wr_u32le(&w, CVM_EV_NO_ACTION);
	cvm_wr_zeros(&w, 20);
	cvm_wr_u32le(&w, 16 + 4 + 4 + 4 + 4 + 1);
	cvm_wr_bytes(&w, spec_id, sizeof(spec_id));
	cvm_wr_u32le(&w, 0); /* platformClass */
	cvm_wr_u8(&w, 0);    /* specVersionMinor */
	cvm_wr_u8(&w, 2);    /* specVersionMajor */
	cvm_wr_u8(&w, 0);    /* specErrata */
	cvm_wr_u8(&w, 2);    /* uintnSize: UINT64 */
	cvm_wr_u32le(&w, 1); /* numberOfAlgorithms */
	cvm_wr_u16le(&w, CVM_DIGEST_SHA384);
	cvm_wr_u16le(&w, 48);
	cvm_wr_u8(&w, 0); /* vendorInfoSize */
	for (uint32_t r = 0; r < 3; r++) {
		for (size_t i = 0; i < m->rtmr[r].count && i < CVM_MEASURE_EVENTS_MAX; i++) {
			const struct cvm_measure_event *e = &m->rtmr[r].events[i];

			cvm_wr_u32le(&w, r + 1);
			cvm_wr_u32le(&w, e->type);
			cvm_wr_u32le(&w, 1);
			cvm_wr_u16le(&w, CVM_DIGEST_SHA384);
			cvm_wr_bytes(&w, e->digest, 48);
			cvm_wr_u32le(&w, (uint32_t)e->data_len);
			cvm_wr_bytes(&w, e->data, e->data_len);
		}
	}
	return cvm_wr_finish(&w, out, out_len);
}

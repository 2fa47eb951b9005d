/* Event decoding for people: type names and one-line descriptions of event
 * data (TCG PC Client PFP 2.0 section 10.4 and the UEFI structures it
 * logs). Nothing here affects a replay; every decoder gives up quietly and
 * falls back to the data's length. */
#include <stdio.h>
#include <string.h>

#include "eventlog_int.h"

struct type_name {
	uint32_t type;
	const char *name;
};

static const struct type_name type_names[] = {
    {CVM_EV_PREBOOT_CERT, "EV_PREBOOT_CERT"},
    {CVM_EV_POST_CODE, "EV_POST_CODE"},
    {0x00000002u, "EV_UNUSED"},
    {CVM_EV_NO_ACTION, "EV_NO_ACTION"},
    {CVM_EV_SEPARATOR, "EV_SEPARATOR"},
    {CVM_EV_ACTION, "EV_ACTION"},
    {CVM_EV_EVENT_TAG, "EV_EVENT_TAG"},
    {CVM_EV_S_CRTM_CONTENTS, "EV_S_CRTM_CONTENTS"},
    {CVM_EV_S_CRTM_VERSION, "EV_S_CRTM_VERSION"},
    {CVM_EV_CPU_MICROCODE, "EV_CPU_MICROCODE"},
    {CVM_EV_PLATFORM_CONFIG_FLAGS, "EV_PLATFORM_CONFIG_FLAGS"},
    {CVM_EV_TABLE_OF_DEVICES, "EV_TABLE_OF_DEVICES"},
    {CVM_EV_COMPACT_HASH, "EV_COMPACT_HASH"},
    {CVM_EV_IPL, "EV_IPL"},
    {CVM_EV_IPL_PARTITION_DATA, "EV_IPL_PARTITION_DATA"},
    {CVM_EV_NONHOST_CODE, "EV_NONHOST_CODE"},
    {CVM_EV_NONHOST_CONFIG, "EV_NONHOST_CONFIG"},
    {CVM_EV_NONHOST_INFO, "EV_NONHOST_INFO"},
    {CVM_EV_OMIT_BOOT_DEVICE_EVENTS, "EV_OMIT_BOOT_DEVICE_EVENTS"},
    {CVM_EV_POST_CODE2, "EV_POST_CODE2"},
    {0x80000000u, "EV_EFI_EVENT_BASE"},
    {CVM_EV_EFI_VARIABLE_DRIVER_CONFIG, "EV_EFI_VARIABLE_DRIVER_CONFIG"},
    {CVM_EV_EFI_VARIABLE_BOOT, "EV_EFI_VARIABLE_BOOT"},
    {CVM_EV_EFI_BOOT_SERVICES_APPLICATION, "EV_EFI_BOOT_SERVICES_APPLICATION"},
    {CVM_EV_EFI_BOOT_SERVICES_DRIVER, "EV_EFI_BOOT_SERVICES_DRIVER"},
    {CVM_EV_EFI_RUNTIME_SERVICES_DRIVER, "EV_EFI_RUNTIME_SERVICES_DRIVER"},
    {CVM_EV_EFI_GPT_EVENT, "EV_EFI_GPT_EVENT"},
    {CVM_EV_EFI_ACTION, "EV_EFI_ACTION"},
    {CVM_EV_EFI_PLATFORM_FIRMWARE_BLOB, "EV_EFI_PLATFORM_FIRMWARE_BLOB"},
    {CVM_EV_EFI_HANDOFF_TABLES, "EV_EFI_HANDOFF_TABLES"},
    {CVM_EV_EFI_PLATFORM_FIRMWARE_BLOB2, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"},
    {CVM_EV_EFI_HANDOFF_TABLES2, "EV_EFI_HANDOFF_TABLES2"},
    {CVM_EV_EFI_VARIABLE_BOOT2, "EV_EFI_VARIABLE_BOOT2"},
    {CVM_EV_EFI_GPT_EVENT2, "EV_EFI_GPT_EVENT2"},
    {CVM_EV_EFI_HCRTM_EVENT, "EV_EFI_HCRTM_EVENT"},
    {CVM_EV_EFI_VARIABLE_AUTHORITY, "EV_EFI_VARIABLE_AUTHORITY"},
    {CVM_EV_EFI_SPDM_FIRMWARE_BLOB, "EV_EFI_SPDM_FIRMWARE_BLOB"},
    {CVM_EV_EFI_SPDM_FIRMWARE_CONFIG, "EV_EFI_SPDM_FIRMWARE_CONFIG"},
    {0x800000E3u, "EV_EFI_SPDM_DEVICE_POLICY"},
    {0x800000E4u, "EV_EFI_SPDM_DEVICE_AUTHORITY"},
    {CVM_EV_DSTACK_RUNTIME, "DSTACK_RUNTIME_EVENT"},
};

const char *cvm_evl_type_name(uint32_t type)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
		if (type_names[i].type == type)
			return type_names[i].name;
	}
	return NULL;
}

/* ---- text: a bounded writer (struct cvm_wr in text mode) ---------------- */

/* tw_char writes one character of untrusted text, escaped unless it is
 * printable ASCII. */
static void tw_char(struct cvm_wr *t, uint32_t c)
{
	if (c == '\\')
		cvm_wr_str(t, "\\\\");
	else if (c == '"')
		cvm_wr_str(t, "\\\"");
	else if (c >= 0x20 && c < 0x7f)
		cvm_wr_u8(t, (uint8_t)c);
	else if (c == '\n')
		cvm_wr_str(t, "\\n");
	else if (c == '\t')
		cvm_wr_str(t, "\\t");
	else if (c < 0x100)
		cvm_wr_fmt(t, "\\x%02x", (unsigned)c);
	else
		cvm_wr_fmt(t, "\\u%04x", (unsigned)c);
}

/* tw_text writes 8-bit text quoted, escaped, without its trailing NULs. */
static void tw_text(struct cvm_wr *t, struct cvm_rd d)
{
	uint8_t c;

	while (d.len > 0 && d.p[d.len - 1] == 0)
		d.len--;
	cvm_wr_u8(t, '"');
	while (cvm_rd_u8(&d, &c) && !cvm_wr_text_cut(t))
		tw_char(t, c);
	cvm_wr_u8(t, '"');
}

/* tw_utf16 writes UTF-16LE text quoted, up to its first NUL character. */
static void tw_utf16(struct cvm_wr *t, struct cvm_rd d)
{
	uint16_t c;

	cvm_wr_u8(t, '"');
	while (cvm_rd_u16le(&d, &c) && c != 0 && !cvm_wr_text_cut(t))
		tw_char(t, c);
	cvm_wr_u8(t, '"');
}

static void tw_hex(struct cvm_wr *t, struct cvm_rd d, size_t max)
{
	size_t n = d.len;
	uint8_t c;

	for (size_t i = 0; i < max && cvm_rd_u8(&d, &c); i++)
		cvm_wr_fmt(t, "%02x", c);
	if (n > max)
		cvm_wr_fmt(t, "... (%zu bytes)", n);
}

/* ---- helpers ------------------------------------------------------------ */

void cvm_evl_guid_format(const uint8_t guid[16], char out[37])
{
	(void)snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	               guid[3], guid[2], guid[1], guid[0], guid[5], guid[4], guid[7], guid[6], guid[8],
	               guid[9], guid[10], guid[11], guid[12], guid[13], guid[14], guid[15]);
}

void cvm_evl_utf16_text(struct cvm_rd in, char *out, size_t cap)
{
	struct cvm_wr t;
	uint16_t c;

	if (cap == 0)
		return;
	cvm_wr_init_text(&t, out, cap);
	while (cvm_rd_u16le(&in, &c) && c != 0 && !cvm_wr_text_cut(&t))
		tw_char(&t, c);
}

int cvm_evl_efi_var_parse(struct cvm_rd data, struct cvm_evl_efi_var *out)
{
	uint64_t name_chars, value_len;

	memset(out, 0, sizeof(*out));
	if (!cvm_rd_copy(&data, out->guid, sizeof(out->guid)) || !cvm_rd_u64le(&data, &name_chars) ||
	    !cvm_rd_u64le(&data, &value_len))
		return CVM_E_TRUNCATED;
	if (name_chars > data.len / 2 || value_len > data.len)
		return CVM_E_FORMAT;
	if (!cvm_rd_sub(&data, &out->name, (size_t)name_chars * 2) ||
	    !cvm_rd_sub(&data, &out->value, (size_t)value_len))
		return CVM_E_TRUNCATED;
	out->trailing_len = data.len;
	out->name_chars = (size_t)name_chars;
	return CVM_OK;
}

/* name_is compares a UTF-16LE name with ASCII `s`. */
static bool name_is(struct cvm_rd name, const char *s)
{
	uint16_t c;

	for (; *s != '\0'; s++) {
		if (!cvm_rd_u16le(&name, &c) || c != (uint8_t)*s)
			return false;
	}
	return cvm_rd_empty(&name);
}

/* boot_option_name is true for Boot#### (four hex digits). */
static bool boot_option_name(struct cvm_rd name)
{
	uint16_t c;

	for (const char *s = "Boot"; *s != '\0'; s++) {
		if (!cvm_rd_u16le(&name, &c) || c != (uint8_t)*s)
			return false;
	}
	if (name.len != 8)
		return false;
	while (cvm_rd_u16le(&name, &c)) {
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}

/* printable is true when `d` (without trailing NULs) is non-empty printable
 * ASCII text (tabs and newlines allowed). */
static bool printable(struct cvm_rd d)
{
	uint8_t c;

	while (d.len > 0 && d.p[d.len - 1] == 0)
		d.len--;
	if (d.len == 0)
		return false;
	while (cvm_rd_u8(&d, &c)) {
		if ((c < 0x20 || c >= 0x7f) && c != '\n' && c != '\t' && c != '\r')
			return false;
	}
	return true;
}

/* utf16_printable is true when `d` is UTF-16LE ASCII text (with an optional
 * NUL terminator). */
static bool utf16_printable(struct cvm_rd d)
{
	uint16_t c;
	size_t n = 0;

	if (d.len < 2 || d.len % 2 != 0)
		return false;
	while (cvm_rd_u16le(&d, &c)) {
		if (c == 0)
			return cvm_rd_empty(&d) && n > 0;
		if (c < 0x20 || c >= 0x7f)
			return false;
		n++;
	}
	return true;
}

/* device_path describes the file-path, firmware-file and hard-drive nodes of
 * an EFI device path, the parts people recognise. */
static void device_path(struct cvm_wr *t, struct cvm_rd d)
{
	bool any = false;

	while (!cvm_rd_empty(&d) && !cvm_wr_text_cut(t)) {
		uint8_t type, sub;
		uint16_t len;
		struct cvm_rd node;
		char g[37];

		if (!cvm_rd_u8(&d, &type) || !cvm_rd_u8(&d, &sub) || !cvm_rd_u16le(&d, &len) || len < 4 ||
		    !cvm_rd_sub(&d, &node, (size_t)len - 4)) {
			cvm_wr_str(t, any ? "/(malformed)" : "(malformed device path)");
			return;
		}
		if (type == 0x7f && sub == 0xff) /* end of the whole path */
			break;
		if (type == 0x7f) {
			cvm_wr_str(t, ", ");
			continue;
		}
		if (any)
			cvm_wr_u8(t, '/');
		any = true;
		if (type == 4 && sub == 4) { /* file path */
			tw_utf16(t, node);
		} else if (type == 4 && (sub == 6 || sub == 7) && node.len == 16) { /* PIWG FvFile / Fv */
			cvm_evl_guid_format(node.p, g);
			cvm_wr_fmt(t, "%s(%s)", sub == 6 ? "FvFile" : "Fv", g);
		} else if (type == 4 && sub == 1 && node.len >= 4) { /* hard drive */
			uint32_t part = 0;

			(void)cvm_rd_u32le(&node, &part);
			cvm_wr_fmt(t, "HD(%u)", part);
		} else if (type == 1 && sub == 1 && node.len == 2) { /* PCI */
			cvm_wr_fmt(t, "Pci(0x%x,0x%x)", node.p[1], node.p[0]);
		} else if (type == 2 && sub == 1 && node.len == 8) { /* ACPI */
			uint32_t hid = 0, uid = 0;

			(void)cvm_rd_u32le(&node, &hid);
			(void)cvm_rd_u32le(&node, &uid);
			cvm_wr_fmt(t, "Acpi(0x%08x,0x%x)", hid, uid);
		} else {
			cvm_wr_fmt(t, "Node(%u,%u)", type, sub);
		}
	}
	if (!any)
		cvm_wr_str(t, "(empty device path)");
}

/* load_option describes an EFI_LOAD_OPTION (the value of Boot####). */
static void load_option(struct cvm_wr *t, struct cvm_rd v)
{
	uint32_t attr;
	uint16_t path_len, c = 1;
	struct cvm_rd desc = v, path;
	size_t desc_len = 0;

	if (!cvm_rd_u32le(&v, &attr) || !cvm_rd_u16le(&v, &path_len)) {
		cvm_wr_fmt(t, " (%zu-byte value)", v.len);
		return;
	}
	desc = v;
	while (cvm_rd_u16le(&v, &c) && c != 0)
		desc_len += 2;
	if (c != 0 || !cvm_rd_sub(&desc, &desc, desc_len) || !cvm_rd_sub(&v, &path, path_len)) {
		cvm_wr_str(t, " (malformed load option)");
		return;
	}
	cvm_wr_str(t, " ");
	tw_utf16(t, desc);
	cvm_wr_str(t, (attr & 1u) != 0 ? " active" : " inactive");
	cvm_wr_str(t, ", ");
	device_path(t, path);
}

static void efi_variable(struct cvm_wr *t, struct cvm_rd data)
{
	struct cvm_evl_efi_var var;
	char g[37];
	uint16_t n;

	if (cvm_evl_efi_var_parse(data, &var) != CVM_OK) {
		cvm_wr_fmt(t, "(malformed UEFI variable, %zu bytes)", data.len);
		return;
	}
	cvm_evl_guid_format(var.guid, g);
	tw_utf16(t, var.name);
	cvm_wr_fmt(t, " (%s)", g);
	if (boot_option_name(var.name)) {
		load_option(t, var.value);
	} else if (name_is(var.name, "BootOrder")) {
		cvm_wr_str(t, " =");
		while (cvm_rd_u16le(&var.value, &n) && !cvm_wr_text_cut(t))
			cvm_wr_fmt(t, " Boot%04X", n);
	} else if (var.value.len == 0) {
		cvm_wr_str(t, " (empty)");
	} else if (var.value.len <= 16) {
		cvm_wr_str(t, " = ");
		tw_hex(t, var.value, 16);
	} else {
		cvm_wr_fmt(t, ", %zu-byte value", var.value.len);
	}
	if (var.trailing_len != 0)
		cvm_wr_fmt(t, " (+%zu bytes after the value)", var.trailing_len);
}

static void image_load(struct cvm_wr *t, struct cvm_rd d)
{
	uint64_t base, len, link, path_len;
	struct cvm_rd path;

	if (!cvm_rd_u64le(&d, &base) || !cvm_rd_u64le(&d, &len) || !cvm_rd_u64le(&d, &link) ||
	    !cvm_rd_u64le(&d, &path_len) || path_len > d.len || !cvm_rd_sub(&d, &path, (size_t)path_len)) {
		cvm_wr_fmt(t, "(malformed image load event, %zu bytes)", d.len);
		return;
	}
	cvm_wr_fmt(t, "image at 0x%llx, %llu bytes: ", (unsigned long long)base, (unsigned long long)len);
	device_path(t, path);
}

static void firmware_blob(struct cvm_wr *t, struct cvm_rd d, bool v2)
{
	uint64_t base, len;
	uint8_t dlen;
	struct cvm_rd desc;

	if (v2) {
		if (!cvm_rd_u8(&d, &dlen) || !cvm_rd_sub(&d, &desc, dlen)) {
			cvm_wr_str(t, "(malformed firmware blob)");
			return;
		}
		tw_text(t, desc);
		cvm_wr_u8(t, ' ');
	}
	if (!cvm_rd_u64le(&d, &base) || !cvm_rd_u64le(&d, &len) || !cvm_rd_empty(&d)) {
		cvm_wr_str(t, "(malformed firmware blob)");
		return;
	}
	cvm_wr_fmt(t, "blob at 0x%llx, %llu bytes", (unsigned long long)base, (unsigned long long)len);
}

static void handoff_tables(struct cvm_wr *t, struct cvm_rd d)
{
	uint64_t count;
	uint8_t guid[16];
	char g[37];

	if (!cvm_rd_u64le(&d, &count) || count > d.len / 24) {
		cvm_wr_str(t, "(malformed handoff tables)");
		return;
	}
	cvm_wr_fmt(t, "%llu table(s):", (unsigned long long)count);
	for (uint64_t i = 0; i < count && !cvm_wr_text_cut(t); i++) {
		if (!cvm_rd_copy(&d, guid, sizeof(guid)) || !cvm_rd_skip(&d, 8))
			return;
		cvm_evl_guid_format(guid, g);
		cvm_wr_fmt(t, " %s", g);
	}
}

static void no_action(struct cvm_wr *t, const struct cvm_evl_event *ev)
{
	struct cvm_rd d = ev->data, sig;
	uint32_t n;
	uint16_t alg, len;
	uint8_t minor, major, errata, uintn, loc;

	if (ev->is_header && cvm_rd_sub(&d, &sig, 16) && cvm_rd_skip(&d, 4) && cvm_rd_u8(&d, &minor) &&
	    cvm_rd_u8(&d, &major) && cvm_rd_u8(&d, &errata) && cvm_rd_u8(&d, &uintn) &&
	    cvm_rd_u32le(&d, &n)) {
		cvm_wr_fmt(t, "Spec ID Event03: spec %u.%u errata %u, banks", major, minor, errata);
		for (uint32_t i = 0; i < n && cvm_rd_u16le(&d, &alg) && cvm_rd_u16le(&d, &len); i++) {
			if (cvm_digest_name(alg) != NULL)
				cvm_wr_fmt(t, " %s", cvm_digest_name(alg));
			else
				cvm_wr_fmt(t, " alg_0x%04x/%u", alg, len);
		}
		return;
	}
	if (cvm_rd_sub(&d, &sig, 16) && memcmp(sig.p, "StartupLocality", 16) == 0 && cvm_rd_u8(&d, &loc)) {
		cvm_wr_fmt(t, "StartupLocality %u", loc);
		return;
	}
	d = ev->data;
	if (d.len >= 15 && memcmp(d.p, "SP800-155 Event", 15) == 0) {
		cvm_wr_str(t, d.len >= 16 && d.p[15] == '3' ? "SP800-155 Event3" : "SP800-155 Event");
		cvm_wr_fmt(t, " (platform reference manifest info, %zu bytes)", d.len);
		return;
	}
	if (d.len >= 16 &&
	    (memcmp(d.p, "NvIndexInstance", 16) == 0 || memcmp(d.p, "NvIndexDynamic\0", 15) == 0)) {
		cvm_wr_fmt(t, "%s (%zu bytes)", d.p[7] == 'I' ? "NvIndexInstance" : "NvIndexDynamic", d.len);
		return;
	}
	if (printable(d))
		tw_text(t, d);
	else
		cvm_wr_fmt(t, "%zu bytes", d.len);
}

static void event_tag(struct cvm_wr *t, struct cvm_rd d)
{
	uint32_t id, len;
	struct cvm_rd v;

	if (!cvm_rd_u32le(&d, &id) || !cvm_rd_u32le(&d, &len) || !cvm_rd_sub(&d, &v, len)) {
		cvm_wr_fmt(t, "(malformed tagged event, %zu bytes)", d.len);
		return;
	}
	cvm_wr_fmt(t, "tag 0x%08x: ", id);
	if (printable(v))
		tw_text(t, v);
	else if (utf16_printable(v))
		tw_utf16(t, v);
	else
		cvm_wr_fmt(t, "%zu bytes", v.len);
}

static void dstack_event(struct cvm_wr *t, const struct cvm_evl_event *ev)
{
	struct cvm_rd name;

	cvm_rd_init(&name, ev->name, strlen(ev->name));
	tw_text(t, name);
	if (ev->data.len == 0)
		return;
	cvm_wr_str(t, " = ");
	if (printable(ev->data))
		tw_text(t, ev->data);
	else
		tw_hex(t, ev->data, 64);
}

void cvm_evl_event_describe(const struct cvm_evl_event *ev, char *out, size_t cap)
{
	struct cvm_wr t;
	struct cvm_rd d = ev->data;

	if (cap == 0)
		return;
	cvm_wr_init_text(&t, out, cap);
	if (ev->name != NULL && ev->type == CVM_EV_DSTACK_RUNTIME) {
		dstack_event(&t, ev);
		return;
	}
	/* A boot event of a dstack JSON log: its label (acpi-loader, ...), and
	 * no payload when the log strips it. */
	if (ev->name != NULL && ev->name[0] != '\0') {
		struct cvm_rd label;

		cvm_rd_init(&label, ev->name, strlen(ev->name));
		tw_text(&t, label);
		cvm_wr_str(&t, ": ");
	}
	if (ev->name != NULL && d.len == 0) {
		cvm_wr_str(&t, "(no payload)");
		return;
	}
	switch (ev->type) {
	case CVM_EV_NO_ACTION:
		no_action(&t, ev);
		break;
	case CVM_EV_SEPARATOR:
		if (d.len == 4 && memcmp(d.p, "\0\0\0\0", 4) == 0)
			cvm_wr_str(&t, "separator");
		else if (d.len == 4 && memcmp(d.p, "\xff\xff\xff\xff", 4) == 0)
			cvm_wr_str(&t, "separator (error)");
		else if (printable(d))
			tw_text(&t, d);
		else
			tw_hex(&t, d, 16);
		break;
	case CVM_EV_EFI_VARIABLE_DRIVER_CONFIG:
	case CVM_EV_EFI_VARIABLE_BOOT:
	case CVM_EV_EFI_VARIABLE_BOOT2:
	case CVM_EV_EFI_VARIABLE_AUTHORITY:
		efi_variable(&t, d);
		break;
	case CVM_EV_EFI_BOOT_SERVICES_APPLICATION:
	case CVM_EV_EFI_BOOT_SERVICES_DRIVER:
	case CVM_EV_EFI_RUNTIME_SERVICES_DRIVER:
		image_load(&t, d);
		break;
	case CVM_EV_EFI_PLATFORM_FIRMWARE_BLOB:
	case CVM_EV_S_CRTM_CONTENTS:
		if (d.len == 16)
			firmware_blob(&t, d, false);
		else if (printable(d))
			tw_text(&t, d);
		else
			cvm_wr_fmt(&t, "%zu bytes", d.len);
		break;
	case CVM_EV_EFI_PLATFORM_FIRMWARE_BLOB2:
		firmware_blob(&t, d, true);
		break;
	case CVM_EV_EFI_HANDOFF_TABLES:
		handoff_tables(&t, d);
		break;
	case CVM_EV_EVENT_TAG:
		event_tag(&t, d);
		break;
	case CVM_EV_EFI_GPT_EVENT: {
		uint64_t parts = 0;

		if (cvm_rd_skip(&d, 92) && cvm_rd_u64le(&d, &parts))
			cvm_wr_fmt(&t, "GPT with %llu partition(s)", (unsigned long long)parts);
		else
			cvm_wr_fmt(&t, "(malformed GPT event, %zu bytes)", ev->data.len);
		break;
	}
	default:
		/* POST_CODE, ACTION, EFI_ACTION, IPL, S_CRTM_VERSION, PLATFORM_CONFIG_FLAGS, ...:
		 * strings in one encoding or the other, else a blob. */
		if (printable(d))
			tw_text(&t, d);
		else if (utf16_printable(d))
			tw_utf16(&t, d);
		else if (ev->type == CVM_EV_POST_CODE && d.len == 16)
			firmware_blob(&t, d, false);
		else if (d.len <= 16)
			tw_hex(&t, d, 16);
		else
			cvm_wr_fmt(&t, "%zu bytes", d.len);
	}
}

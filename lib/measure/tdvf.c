/* TDVF metadata, MRTD, the CFV digest and the TD HOB (measure.h).
 *
 * OVMF ends with a table of GUID-keyed entries read backwards from the
 * image's last 32 bytes: each entry is its data, a u16 length (of the whole
 * entry) and its GUID; the footer is the table's own length and GUID. One
 * entry gives the offset, from the end of the image, of the TDVF descriptor
 * that lists the sections the VMM loads (TDX Virtual Firmware Design Guide,
 * "TDVF Metadata"). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/measure.h>

#include "measure_int.h"

#define PAGE 0x1000u
#define CHUNK 0x100u
#define FOOTER_TAIL 32u /* bytes after the table: the reset vector and padding */
#define ENTRY_HDR 18u   /* u16 length + GUID */
#define DESC_LEN 16u
#define SECTION_LEN 32u
/* All sections' memory together: bounds the pages MRTD hashes. */
#define SECTIONS_MEMORY_MAX ((uint64_t)4 << 30)

/* GUIDs as they are stored (the first three fields little-endian). */
static const uint8_t footer_guid[16] = {0xde, 0x82, 0xb5, 0x96, 0xb2, 0x1f, 0xf7, 0x45,
                                        0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d};
static const uint8_t tdx_meta_guid[16] = {0x35, 0x65, 0x7a, 0xe4, 0x4a, 0x98, 0x98, 0x47,
                                          0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2};

void measure_errf(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_len == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

bool measure_view(const uint8_t *buf, size_t len, uint64_t off, uint64_t n, struct cvm_rd *out)
{
	struct cvm_rd all;

	if (off > len || n > len - off)
		return false;
	cvm_rd_init(&all, buf, len);
	return cvm_rd_skip(&all, (size_t)off) && cvm_rd_sub(&all, out, (size_t)n);
}

const char *cvm_tdvf_section_type_name(uint32_t type)
{
	static const char *const names[] = {"BFV",      "CFV",     "TD_HOB",       "TEMP_MEM",
	                                    "PERM_MEM", "PAYLOAD", "PAYLOAD_PARAM"};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "unknown";
}

int measure_ovmf_table(const uint8_t *fw, size_t len, const char *no_table, measure_table_visit visit,
                       void *ctx, char *err, size_t err_len)
{
	struct cvm_rd footer, entries, e, data;
	uint8_t guid[16];
	uint16_t table_len, entry_len;
	size_t end, pos;
	int r;

	if (len < FOOTER_TAIL + ENTRY_HDR) {
		measure_errf(err, err_len, "%zu bytes: too short for a firmware image", len);
		return CVM_E_FORMAT;
	}
	end = len - FOOTER_TAIL;
	if (!measure_view(fw, len, end - ENTRY_HDR, ENTRY_HDR, &footer) ||
	    !cvm_rd_u16le(&footer, &table_len) || !cvm_rd_copy(&footer, guid, sizeof(guid)))
		return CVM_E_INTERNAL;
	if (memcmp(guid, footer_guid, sizeof(guid)) != 0) {
		measure_errf(err, err_len, "no OVMF GUID table before the image's last 32 bytes: %s",
		             no_table);
		return CVM_E_NOT_FOUND;
	}
	if (table_len < ENTRY_HDR || table_len > end) {
		measure_errf(err, err_len, "the OVMF GUID table claims %u bytes, outside the image",
		             table_len);
		return CVM_E_FORMAT;
	}
	/* the entries: the table without its footer */
	if (!measure_view(fw, len, end - table_len, (uint64_t)table_len - ENTRY_HDR, &entries))
		return CVM_E_INTERNAL;
	pos = entries.len;
	while (pos > 0) {
		if (pos < ENTRY_HDR ||
		    !measure_view(entries.p, entries.len, pos - ENTRY_HDR, ENTRY_HDR, &e) ||
		    !cvm_rd_u16le(&e, &entry_len) || !cvm_rd_copy(&e, guid, sizeof(guid))) {
			measure_errf(err, err_len, "the OVMF GUID table ends in a cut entry");
			return CVM_E_FORMAT;
		}
		if (entry_len < ENTRY_HDR || entry_len > pos) {
			measure_errf(err, err_len,
			             "an OVMF GUID table entry claims %u bytes, outside the table",
			             entry_len);
			return CVM_E_FORMAT;
		}
		if (!measure_view(entries.p, entries.len, pos - entry_len, (uint64_t)entry_len - ENTRY_HDR,
		                  &data))
			return CVM_E_INTERNAL;
		r = visit(ctx, guid, &data, err, err_len);
		if (r == MEASURE_TABLE_STOP)
			return CVM_OK;
		if (r != CVM_OK)
			return r;
		pos -= entry_len;
	}
	return CVM_OK;
}

struct find_desc {
	size_t len;
	uint64_t desc_off;
	bool found;
};

static int visit_tdx(void *ctx, const uint8_t guid[16], const struct cvm_rd *data, char *err, size_t err_len)
{
	struct find_desc *f = ctx;
	struct cvm_rd d = *data;
	uint32_t from_end;

	if (memcmp(guid, tdx_meta_guid, 16) != 0)
		return CVM_OK;
	if (data->len != 4 || !cvm_rd_u32le(&d, &from_end)) {
		measure_errf(err, err_len, "the TDX metadata entry is not a 4-byte offset");
		return CVM_E_FORMAT;
	}
	if (from_end < DESC_LEN || from_end > f->len) {
		measure_errf(err, err_len,
		             "the TDX metadata offset 0x%x (from the end) lies outside the image", from_end);
		return CVM_E_FORMAT;
	}
	f->desc_off = f->len - from_end;
	f->found = true;
	return MEASURE_TABLE_STOP;
}

/* find_descriptor finds the TDX metadata entry of the GUID table and
 * returns the descriptor's offset. */
static int find_descriptor(const uint8_t *fw, size_t len, uint64_t *desc_off, char *err, size_t err_len)
{
	struct find_desc f = {.len = len};
	int r;

	r = measure_ovmf_table(fw, len, "not an OVMF/TDVF firmware (or a 4 MiB build without TDX support)",
	                       visit_tdx, &f, err, err_len);
	if (r != CVM_OK)
		return r;
	if (!f.found) {
		measure_errf(
		    err, err_len,
		    "the OVMF GUID table has no TDX metadata entry: this firmware does not support TDX");
		return CVM_E_NOT_FOUND;
	}
	*desc_off = f.desc_off;
	return CVM_OK;
}

static int check_section(const struct cvm_tdvf *t, size_t i, char *err, size_t err_len)
{
	const struct cvm_tdvf_section *s = &t->sections[i];
	const char *name = cvm_tdvf_section_type_name(s->type);

	if (s->memory_address % PAGE != 0 || s->memory_data_size % PAGE != 0) {
		measure_errf(err, err_len, "section %zu (%s): memory address or size not 4 KiB aligned", i,
		             name);
		return CVM_E_FORMAT;
	}
	if (s->memory_data_size < s->raw_data_size) {
		measure_errf(err, err_len, "section %zu (%s): memory size smaller than its raw data", i,
		             name);
		return CVM_E_FORMAT;
	}
	if (s->memory_address > UINT64_MAX - s->memory_data_size) {
		measure_errf(err, err_len, "section %zu (%s): memory range wraps around", i, name);
		return CVM_E_FORMAT;
	}
	if ((s->attributes & CVM_TDVF_ATTR_MR_EXTEND) != 0 && s->memory_data_size != s->raw_data_size) {
		measure_errf(err, err_len,
		             "section %zu (%s): MR.EXTEND with a memory size other than its raw data size", i,
		             name);
		return CVM_E_FORMAT;
	}
	for (size_t j = 0; j < i; j++) {
		const struct cvm_tdvf_section *o = &t->sections[j];

		if (s->memory_data_size != 0 && o->memory_data_size != 0 &&
		    s->memory_address < o->memory_address + o->memory_data_size &&
		    o->memory_address < s->memory_address + s->memory_data_size) {
			measure_errf(err, err_len, "sections %zu and %zu overlap in guest memory", j, i);
			return CVM_E_FORMAT;
		}
	}
	return CVM_OK;
}

int cvm_tdvf_parse(const uint8_t *fw, size_t len, struct cvm_tdvf *out, char *err, size_t err_len)
{
	struct cvm_rd d;
	uint8_t sig[4];
	uint32_t desc_len, count;
	uint64_t desc_off = 0, mem_total = 0;
	int r;

	memset(out, 0, sizeof(*out));
	measure_errf(err, err_len, "%s", "");
	if (len > CVM_TDVF_IMAGE_MAX) {
		measure_errf(err, err_len, "%zu bytes, more than the %zu a firmware image may have", len,
		             CVM_TDVF_IMAGE_MAX);
		return CVM_E_TOO_LARGE;
	}
	r = find_descriptor(fw, len, &desc_off, err, err_len);
	if (r != CVM_OK)
		goto out;
	if (!measure_view(fw, len, desc_off, DESC_LEN, &d) || !cvm_rd_copy(&d, sig, sizeof(sig)) ||
	    !cvm_rd_u32le(&d, &desc_len) || !cvm_rd_u32le(&d, &out->version) || !cvm_rd_u32le(&d, &count)) {
		measure_errf(err, err_len, "the TDVF descriptor lies outside the image");
		r = CVM_E_FORMAT;
		goto out;
	}
	if (memcmp(sig, "TDVF", 4) != 0) {
		measure_errf(err, err_len, "no \"TDVF\" signature where the TDX metadata entry points");
		r = CVM_E_FORMAT;
		goto out;
	}
	if (out->version != 1) {
		measure_errf(err, err_len, "TDVF metadata version %u; only version 1 is known", out->version);
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	if (count == 0 || count > CVM_TDVF_SECTIONS_MAX) {
		measure_errf(err, err_len, "TDVF metadata with %u sections (1..%u allowed)", count,
		             CVM_TDVF_SECTIONS_MAX);
		r = CVM_E_FORMAT;
		goto out;
	}
	if (desc_len != DESC_LEN + (uint64_t)count * SECTION_LEN ||
	    !measure_view(fw, len, desc_off, desc_len, &d) || !cvm_rd_skip(&d, DESC_LEN)) {
		measure_errf(err, err_len, "the TDVF descriptor's length %u does not hold its %u sections",
		             desc_len, count);
		r = CVM_E_FORMAT;
		goto out;
	}
	out->image_len = len;
	out->metadata_offset = desc_off;
	out->data_complete = true;
	for (size_t i = 0; i < count; i++) {
		struct cvm_tdvf_section *s = &out->sections[i];

		if (!cvm_rd_u32le(&d, &s->data_offset) || !cvm_rd_u32le(&d, &s->raw_data_size) ||
		    !cvm_rd_u64le(&d, &s->memory_address) || !cvm_rd_u64le(&d, &s->memory_data_size) ||
		    !cvm_rd_u32le(&d, &s->type) || !cvm_rd_u32le(&d, &s->attributes))
			return CVM_E_INTERNAL;
		out->section_count = i + 1;
		r = check_section(out, i, err, err_len);
		if (r != CVM_OK)
			goto out;
		if (s->memory_data_size > SECTIONS_MEMORY_MAX - mem_total) {
			measure_errf(err, err_len, "the sections claim more than 4 GiB of guest memory");
			r = CVM_E_FORMAT;
			goto out;
		}
		mem_total += s->memory_data_size;
		s->data_in_image = (uint64_t)s->data_offset + s->raw_data_size <= len;
		if (!s->data_in_image)
			out->data_complete = false;
	}
	r = CVM_OK;
out:
	if (r != CVM_OK)
		memset(out, 0, sizeof(*out));
	return r;
}

static int check_image(const struct cvm_tdvf *t, size_t len)
{
	return t->section_count == 0 || t->section_count > CVM_TDVF_SECTIONS_MAX || t->image_len != len
	           ? CVM_E_INVAL
	           : CVM_OK;
}

/* page_add hashes TDH.MEM.PAGE.ADD's 128-byte block for the page at `gpa`. */
static int page_add(struct cvm_digest_ctx *h, uint64_t gpa)
{
	static const uint8_t tag[12] = {'M', 'E', 'M', '.', 'P', 'A', 'G', 'E', '.', 'A', 'D', 'D'};
	uint8_t b[128] = {0};

	memcpy(b, tag, sizeof(tag));
	measure_put_u64le(b + 16, gpa);
	return cvm_digest_update(h, b, sizeof(b));
}

/* mr_extend hashes TDH.MR.EXTEND's blocks for the page at `gpa`: per
 * 256-byte chunk, the 128-byte header then the chunk. */
static int mr_extend(struct cvm_digest_ctx *h, uint64_t gpa, struct cvm_rd *data)
{
	static const uint8_t tag[9] = {'M', 'R', '.', 'E', 'X', 'T', 'E', 'N', 'D'};
	uint8_t b[128];
	const uint8_t *chunk;
	int r;

	for (unsigned i = 0; i < PAGE / CHUNK; i++) {
		memset(b, 0, sizeof(b));
		memcpy(b, tag, sizeof(tag));
		measure_put_u64le(b + 16, gpa + (uint64_t)i * CHUNK);
		if (!cvm_rd_bytes(data, &chunk, CHUNK))
			return CVM_E_INTERNAL;
		r = cvm_digest_update(h, b, sizeof(b));
		if (r == CVM_OK)
			r = cvm_digest_update(h, chunk, CHUNK);
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

int cvm_tdvf_mrtd(const struct cvm_tdvf *t, const uint8_t *fw, size_t len, enum cvm_mrtd_order order,
                  uint8_t out[48])
{
	struct cvm_digest_ctx *h = NULL;
	int r;

	memset(out, 0, 48);
	r = check_image(t, len);
	if (r != CVM_OK)
		return r;
	if (order != CVM_MRTD_TWO_PASS && order != CVM_MRTD_SINGLE_PASS)
		return CVM_E_INVAL;
	for (size_t i = 0; i < t->section_count; i++)
		if ((t->sections[i].attributes & CVM_TDVF_ATTR_MR_EXTEND) != 0 &&
		    !t->sections[i].data_in_image)
			return CVM_E_FORMAT;
	r = cvm_digest_ctx_new(CVM_DIGEST_SHA384, &h);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < t->section_count && r == CVM_OK; i++) {
		const struct cvm_tdvf_section *s = &t->sections[i];
		bool add = (s->attributes & CVM_TDVF_ATTR_PAGE_AUG) == 0;
		bool ext = (s->attributes & CVM_TDVF_ATTR_MR_EXTEND) != 0;
		uint64_t pages = s->memory_data_size / PAGE;
		struct cvm_rd data = {0};

		if (ext && !measure_view(fw, len, s->data_offset, s->raw_data_size, &data)) {
			r = CVM_E_INTERNAL;
			break;
		}
		if (order == CVM_MRTD_TWO_PASS) {
			for (uint64_t p = 0; p < pages && add && r == CVM_OK; p++)
				r = page_add(h, s->memory_address + p * PAGE);
			for (uint64_t p = 0; p < pages && ext && r == CVM_OK; p++)
				r = mr_extend(h, s->memory_address + p * PAGE, &data);
		} else {
			for (uint64_t p = 0; p < pages && r == CVM_OK; p++) {
				if (add)
					r = page_add(h, s->memory_address + p * PAGE);
				if (ext && r == CVM_OK)
					r = mr_extend(h, s->memory_address + p * PAGE, &data);
			}
		}
	}
	if (r == CVM_OK)
		r = cvm_digest_final(h, out, 48);
	cvm_digest_ctx_free(h);
	if (r != CVM_OK)
		memset(out, 0, 48);
	return r;
}

int cvm_tdvf_cfv_digest(const struct cvm_tdvf *t, const uint8_t *fw, size_t len, uint8_t out[48])
{
	struct cvm_rd data;
	int r;

	memset(out, 0, 48);
	r = check_image(t, len);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < t->section_count; i++) {
		const struct cvm_tdvf_section *s = &t->sections[i];

		if (s->type != CVM_TDVF_CFV)
			continue;
		if (!s->data_in_image || !measure_view(fw, len, s->data_offset, s->raw_data_size, &data))
			return CVM_E_FORMAT;
		cvm_sha384(data.p, data.len, out);
		return CVM_OK;
	}
	return CVM_E_NOT_FOUND;
}

/* ---- TD HOB witness ----------------------------------------------------- */

struct range {
	uint64_t start, pages;
};

static void sort_ranges(struct range *r, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct range x = r[i];
		size_t j = i;

		while (j > 0 && r[j - 1].start > x.start) {
			r[j] = r[j - 1];
			j--;
		}
		r[j] = x;
	}
}

static bool put_leb(uint8_t *out, size_t cap, size_t *pos, uint64_t v)
{
	do {
		uint8_t b = (uint8_t)(v & 0x7f);

		v >>= 7;
		if (v != 0)
			b |= 0x80;
		if (*pos >= cap)
			return false;
		out[(*pos)++] = b;
	} while (v != 0);
	return true;
}

int cvm_tdvf_td_hob_witness(const struct cvm_tdvf *t, uint8_t *out, size_t cap, size_t *out_len)
{
	struct range rs[CVM_TDVF_SECTIONS_MAX];
	size_t n = 0, pos = 0;
	uint64_t hob_page = 0, base;
	bool has_hob = false;

	*out_len = 0;
	for (size_t i = 0; i < t->section_count && i < CVM_TDVF_SECTIONS_MAX; i++) {
		const struct cvm_tdvf_section *s = &t->sections[i];

		if (s->type != CVM_TDVF_TD_HOB && s->type != CVM_TDVF_TEMP_MEM)
			continue;
		if (s->memory_data_size / PAGE == 0)
			return CVM_E_FORMAT;
		rs[n].start = s->memory_address / PAGE;
		rs[n].pages = s->memory_data_size / PAGE;
		n++;
		if (s->type == CVM_TDVF_TD_HOB) {
			if (has_hob)
				return CVM_E_FORMAT;
			has_hob = true;
			hob_page = s->memory_address / PAGE;
		}
	}
	if (!has_hob)
		return CVM_E_FORMAT;
	sort_ranges(rs, n);
	for (size_t i = 1; i < n; i++)
		if (rs[i].start < rs[i - 1].start + rs[i - 1].pages)
			return CVM_E_FORMAT;
	base = rs[0].start;
	if (!put_leb(out, cap, &pos, base) || !put_leb(out, cap, &pos, hob_page - base) ||
	    !put_leb(out, cap, &pos, n))
		return CVM_E_TOO_LARGE;
	for (size_t i = 0; i < n; i++)
		if (!put_leb(out, cap, &pos, rs[i].start - base) || !put_leb(out, cap, &pos, rs[i].pages))
			return CVM_E_TOO_LARGE;
	*out_len = pos;
	return CVM_OK;
}

static bool get_leb(struct cvm_rd *r, uint64_t *v)
{
	uint8_t b;

	*v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (!cvm_rd_u8(r, &b))
			return false;
		if (shift == 63 && (b & 0x7e) != 0)
			return false; /* more than 64 bits */
		*v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return true;
	}
	return false;
}

/* hob_resource appends a resource descriptor HOB (48 bytes). */
static void hob_resource(struct cvm_wr *w, uint32_t type, uint64_t start, uint64_t length)
{
	cvm_wr_u16le(w, 3);  /* EFI_HOB_TYPE_RESOURCE_DESCRIPTOR */
	cvm_wr_u16le(w, 48); /* HobLength */
	cvm_wr_zeros(w, 4);  /* Reserved */
	cvm_wr_zeros(w, 16); /* Owner */
	cvm_wr_u32le(w, type);
	cvm_wr_u32le(w, 7); /* PRESENT | INITIALIZED | TESTED */
	cvm_wr_u64le(w, start);
	cvm_wr_u64le(w, length);
}

#define HOB_RANGES_MAX CVM_TD_HOB_WITNESS_MAX

/* struct part is a range of guest memory, accepted before boot or not. */
struct part {
	bool accepted;
	uint64_t start, end;
};
#define RES_SYSTEM_MEMORY 0u
#define RES_UNACCEPTED 7u
#define LOW_SPLIT 0x80000000ull
#define HIGH_MEM_MIN 0xB0000000ull

int cvm_td_hob_digest(const uint8_t *witness, size_t witness_len, uint64_t memory_size, uint8_t out[48])
{
	struct range rs[HOB_RANGES_MAX];
	struct part parts[2 * HOB_RANGES_MAX + 1];
	uint8_t buf[56 + (2 * HOB_RANGES_MAX + 2) * 48];
	uint64_t base, hob_delta, count, cursor = 0, hob_addr, last_start, last_end;
	size_t np = 0, hob_len;
	struct cvm_wr w;
	struct cvm_rd r;

	memset(out, 0, 48);
	if (witness_len > CVM_TD_HOB_WITNESS_MAX)
		return CVM_E_FORMAT;
	cvm_rd_init(&r, witness, witness_len);
	if (!get_leb(&r, &base) || !get_leb(&r, &hob_delta) || !get_leb(&r, &count))
		return CVM_E_FORMAT;
	/* every range takes two bytes at least */
	if (count == 0 || count > HOB_RANGES_MAX || count > r.len / 2)
		return CVM_E_FORMAT;
	if (base > UINT64_MAX / PAGE || hob_delta > UINT64_MAX / PAGE - base)
		return CVM_E_FORMAT;
	hob_addr = (base + hob_delta) * PAGE;
	for (size_t i = 0; i < count; i++) {
		uint64_t d, pages;

		if (!get_leb(&r, &d) || !get_leb(&r, &pages) || pages == 0 || d > UINT64_MAX / PAGE - base ||
		    pages > UINT64_MAX / PAGE - (base + d))
			return CVM_E_FORMAT;
		rs[i].start = base + d;
		rs[i].pages = pages;
	}
	if (!cvm_rd_empty(&r))
		return CVM_E_FORMAT;
	sort_ranges(rs, (size_t)count);
	for (size_t i = 0; i < count; i++) {
		uint64_t s = rs[i].start * PAGE, e = (rs[i].start + rs[i].pages) * PAGE;

		if (s < cursor)
			return CVM_E_FORMAT; /* overlapping ranges */
		if (e > memory_size)
			return CVM_E_INVAL;
		if (s > cursor)
			parts[np++] = (struct part){false, cursor, s};
		parts[np++] = (struct part){true, s, e};
		cursor = e;
	}
	if (cursor < memory_size)
		parts[np++] = (struct part){false, cursor, memory_size};

	cvm_wr_init_fixed(&w, buf, sizeof(buf));
	cvm_wr_u16le(&w, 1);  /* EFI_HOB_TYPE_HANDOFF */
	cvm_wr_u16le(&w, 56); /* HobLength */
	cvm_wr_zeros(&w, 4);  /* Reserved */
	cvm_wr_u32le(&w, 9);  /* Version */
	cvm_wr_zeros(&w, 4);  /* BootMode */
	cvm_wr_zeros(&w, 32); /* EfiMemoryTop .. EfiFreeMemoryBottom */
	cvm_wr_zeros(&w, 8);  /* EfiEndOfHobList, set below */
	/* All ranges but the last as they are; the last as unaccepted memory,
	 * around the PCI hole when the memory reaches it. */
	for (size_t i = 0; i + 1 < np; i++)
		hob_resource(&w, parts[i].accepted ? RES_SYSTEM_MEMORY : RES_UNACCEPTED, parts[i].start,
		             parts[i].end - parts[i].start);
	last_start = parts[np - 1].start;
	last_end = parts[np - 1].end;
	if (memory_size >= HIGH_MEM_MIN) {
		if (last_start < LOW_SPLIT)
			hob_resource(&w, RES_UNACCEPTED, last_start, LOW_SPLIT - last_start);
		if (last_end > LOW_SPLIT)
			hob_resource(&w, RES_UNACCEPTED, 0x100000000ull, last_end - LOW_SPLIT);
	} else {
		hob_resource(&w, RES_UNACCEPTED, last_start, last_end - last_start);
	}
	if (w.err)
		return CVM_E_INTERNAL;
	hob_len = w.len;
	measure_put_u64le(buf + 48, hob_addr + hob_len + 8);
	cvm_sha384(buf, hob_len, out);
	return CVM_OK;
}

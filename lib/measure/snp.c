/* The SEV-SNP launch digest of a QEMU + OVMF guest (measure.h).
 *
 * The PSP folds every page QEMU hands to SNP_LAUNCH_UPDATE into the guest
 * context's launch digest: digest = SHA-384(PAGE_INFO), PAGE_INFO being the
 * previous digest, the page's own digest, and the page's type and GPA (SNP
 * firmware ABI, "PAGE_INFO"). QEMU hands over, in this order: the firmware
 * image (normal pages, mapped to end at 4 GiB), the sections OVMF's SEV
 * metadata lists (zero, secrets, CPUID pages and the page holding the kernel
 * hashes table), then one VMSA per vCPU. Each of those is rebuilt here from
 * the firmware's bytes and the VM's shape; the firmware is read through the
 * bounded reader, since it is untrusted. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/measure.h>

#include "measure_int.h"

#define PAGE 0x1000u
#define FOUR_GIB ((uint64_t)1 << 32)
#define META_HDR 16u /* "ASEV", u32 length, u32 version, u32 section count */
#define META_SECTION 12u
#define PAGE_INFO_LEN 0x70u
/* The PSP records a VMSA page at GPA (u64)-1, page-aligned and cut to the
 * 52 bits of a physical address. */
#define VMSA_GPA UINT64_C(0xFFFFFFFFF000)
#define BSP_EIP 0xfffffff0u

/* PAGE_INFO page types (SNP firmware ABI, "Page Types"). */
enum {
	PAGE_TYPE_NORMAL = 1,
	PAGE_TYPE_VMSA = 2,
	PAGE_TYPE_ZERO = 3,
	PAGE_TYPE_SECRETS = 5,
	PAGE_TYPE_CPUID = 6,
};

/* The kernel hashes table QEMU writes (target/i386/sev.c): a header GUID and
 * u16 length, then cmdline, initrd and kernel entries of GUID, u16 length and
 * SHA-256, padded with zeroes to 16 bytes. */
#define HT_ENTRY_LEN (16u + 2u + 32u)
#define HT_LEN (16u + 2u + 3u * HT_ENTRY_LEN)
#define HT_PADDED_LEN ((HT_LEN + 15u) & ~15u)

/* GUIDs as they are stored (the first three fields little-endian). */
static const uint8_t sev_meta_guid[16] = {0x66, 0x65, 0x88, 0xdc, 0x4a, 0x98, 0x98, 0x47,
                                          0xa7, 0x5e, 0x55, 0x85, 0xa7, 0xbf, 0x67, 0xcc};
static const uint8_t reset_block_guid[16] = {0xde, 0x71, 0xf7, 0x00, 0x7e, 0x1a, 0xcb, 0x4f,
                                             0x89, 0x0e, 0x68, 0xc7, 0x7e, 0x2f, 0xb4, 0x4e};
static const uint8_t hash_table_guid[16] = {0x1f, 0x37, 0x55, 0x72, 0x3b, 0x3a, 0x04, 0x4b,
                                            0x92, 0x7b, 0x1d, 0xa6, 0xef, 0xa8, 0xd4, 0x54};
static const uint8_t ht_header_guid[16] = {0x06, 0xd6, 0x38, 0x94, 0x22, 0x4f, 0xc9, 0x4c,
                                           0xb4, 0x79, 0xa7, 0x93, 0xd4, 0x11, 0xfd, 0x21};
static const uint8_t ht_kernel_guid[16] = {0x37, 0x94, 0xe7, 0x4d, 0xd2, 0xab, 0x7f, 0x42,
                                           0xb8, 0x35, 0xd5, 0xb1, 0x72, 0xd2, 0x04, 0x5b};
static const uint8_t ht_initrd_guid[16] = {0x31, 0xf7, 0xba, 0x44, 0x2f, 0x3a, 0xd7, 0x4b,
                                           0x9a, 0xf1, 0x41, 0xe2, 0x91, 0x69, 0x78, 0x1d};
static const uint8_t ht_cmdline_guid[16] = {0xd8, 0x2d, 0xd0, 0x97, 0x20, 0xbd, 0x94, 0x4c,
                                            0xaa, 0x78, 0xe7, 0x71, 0x4d, 0x36, 0xab, 0x2a};

const char *cvm_snp_section_type_name(uint32_t type)
{
	switch (type) {
	case CVM_SNP_SEC_MEM:
		return "SNP_SEC_MEM";
	case CVM_SNP_SECRETS:
		return "SNP_SECRETS";
	case CVM_SNP_CPUID:
		return "CPUID";
	case CVM_SNP_SVSM_CAA:
		return "SVSM_CAA";
	case CVM_SNP_KERNEL_HASHES:
		return "SNP_KERNEL_HASHES";
	default:
		return "unknown";
	}
}

/* cpu_sig packs CPUID leaf 1 EAX (AMD CPUID Specification #25481): a family
 * above 0xf is 0xf plus an extended family. */
static uint32_t cpu_sig(uint32_t family, uint32_t model, uint32_t stepping)
{
	uint32_t fam = family > 0xf ? 0xf : family, ext_fam = family > 0xf ? family - 0xf : 0;

	return (ext_fam & 0xff) << 20 | ((model >> 4) & 0xf) << 16 | fam << 8 | (model & 0xf) << 4 |
	       (stepping & 0xf);
}

int cvm_snp_vcpu_sig(const char *name, uint32_t *out)
{
	/* QEMU's builtin_x86_defs: family, model, stepping of the AMD EPYC
	 * models (their versions keep the base model's signature). */
	static const struct {
		const char *name;
		uint8_t family, model, stepping;
	} models[] = {
	    {"EPYC", 23, 1, 2},          {"EPYC-v1", 23, 1, 2},       {"EPYC-v2", 23, 1, 2},
	    {"EPYC-IBPB", 23, 1, 2},     {"EPYC-v3", 23, 1, 2},       {"EPYC-v4", 23, 1, 2},
	    {"EPYC-Rome", 23, 49, 0},    {"EPYC-Rome-v1", 23, 49, 0}, {"EPYC-Rome-v2", 23, 49, 0},
	    {"EPYC-Rome-v3", 23, 49, 0}, {"EPYC-Milan", 25, 1, 1},    {"EPYC-Milan-v1", 25, 1, 1},
	    {"EPYC-Milan-v2", 25, 1, 1}, {"EPYC-Genoa", 25, 17, 0},   {"EPYC-Genoa-v1", 25, 17, 0},
	    {"EPYC-Turin", 26, 0, 0},
	};

	*out = 0;
	if (name == NULL)
		return CVM_E_NOT_FOUND;
	for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
		if (strcmp(name, models[i].name) == 0) {
			*out = cpu_sig(models[i].family, models[i].model, models[i].stepping);
			return CVM_OK;
		}
	}
	return CVM_E_NOT_FOUND;
}

/* entry_u32 reads the first 4 bytes of a GUID table entry's data. */
static int entry_u32(const struct cvm_rd *data, const char *what, uint32_t *v, char *err, size_t err_len)
{
	struct cvm_rd r = *data;

	if (!cvm_rd_u32le(&r, v)) {
		measure_errf(err, err_len, "the OVMF GUID table's %s entry has %zu bytes of data, not 4",
		             what, data->len);
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}

struct sev_entries {
	struct cvm_snp_fw *out;
	uint32_t meta_from_end;
};

/* visit_sev takes the three entries SEV-SNP needs from OVMF's GUID table. */
static int visit_sev(void *ctx, const uint8_t guid[16], const struct cvm_rd *data, char *err, size_t err_len)
{
	struct sev_entries *s = ctx;

	if (memcmp(guid, sev_meta_guid, 16) == 0)
		return entry_u32(data, "SEV metadata", &s->meta_from_end, err, err_len);
	if (memcmp(guid, reset_block_guid, 16) == 0)
		return entry_u32(data, "SEV-ES reset block", &s->out->reset_eip, err, err_len);
	if (memcmp(guid, hash_table_guid, 16) == 0)
		return entry_u32(data, "SEV hash table", &s->out->hashes_gpa, err, err_len);
	return CVM_OK;
}

/* walk_table reads the SEV metadata's offset, the SEV-ES reset vector and
 * the kernel hashes' address from OVMF's GUID table (measure_ovmf_table). */
static int walk_table(const uint8_t *fw, size_t len, struct cvm_snp_fw *out, uint32_t *meta_from_end,
                      char *err, size_t err_len)
{
	struct sev_entries s = {.out = out};
	int r;

	*meta_from_end = 0;
	r = measure_ovmf_table(fw, len, "not an OVMF firmware", visit_sev, &s, err, err_len);
	if (r != CVM_OK)
		return r;
	*meta_from_end = s.meta_from_end;
	if (*meta_from_end == 0) {
		measure_errf(err, err_len,
		             "the OVMF GUID table has no SEV metadata entry: this firmware does not support "
		             "SEV-SNP (use OVMF's AmdSev build or an OVMF.fd built with SEV support)");
		return CVM_E_NOT_FOUND;
	}
	return CVM_OK;
}

static int parse_sections(const uint8_t *fw, size_t len, uint32_t from_end, struct cvm_snp_fw *out, char *err,
                          size_t err_len)
{
	struct cvm_rd hdr, secs;
	uint8_t sig[4];
	uint32_t meta_len, version, count;

	if (from_end < META_HDR || from_end > len) {
		measure_errf(err, err_len,
		             "the SEV metadata offset 0x%x (from the end) lies outside the image", from_end);
		return CVM_E_FORMAT;
	}
	out->metadata_offset = len - from_end;
	if (!measure_view(fw, len, out->metadata_offset, META_HDR, &hdr) || !cvm_rd_copy(&hdr, sig, 4) ||
	    !cvm_rd_u32le(&hdr, &meta_len) || !cvm_rd_u32le(&hdr, &version) || !cvm_rd_u32le(&hdr, &count))
		return CVM_E_INTERNAL;
	if (memcmp(sig, "ASEV", 4) != 0) {
		measure_errf(err, err_len,
		             "the SEV metadata at offset 0x%" PRIx64 " does not start with \"ASEV\"",
		             out->metadata_offset);
		return CVM_E_FORMAT;
	}
	if (version != 1) {
		measure_errf(err, err_len, "SEV metadata version %u: only version 1 is known", version);
		return CVM_E_UNSUPPORTED;
	}
	if (count == 0 || count > CVM_SNP_FW_SECTIONS_MAX) {
		measure_errf(err, err_len, "the SEV metadata lists %u sections (1 to %u expected)", count,
		             CVM_SNP_FW_SECTIONS_MAX);
		return count == 0 ? CVM_E_FORMAT : CVM_E_TOO_LARGE;
	}
	if (meta_len < META_HDR + (uint64_t)count * META_SECTION) {
		measure_errf(err, err_len, "the SEV metadata's length %u does not cover its %u sections",
		             meta_len, count);
		return CVM_E_FORMAT;
	}
	if (!measure_view(fw, len, out->metadata_offset, meta_len, &secs) || !cvm_rd_skip(&secs, META_HDR)) {
		measure_errf(err, err_len, "the SEV metadata's %u bytes run past the end of the image",
		             meta_len);
		return CVM_E_FORMAT;
	}
	for (uint32_t i = 0; i < count; i++) {
		struct cvm_snp_fw_section *s = &out->sections[i];

		if (!cvm_rd_u32le(&secs, &s->gpa) || !cvm_rd_u32le(&secs, &s->size) ||
		    !cvm_rd_u32le(&secs, &s->type))
			return CVM_E_INTERNAL;
		if (strcmp(cvm_snp_section_type_name(s->type), "unknown") == 0) {
			measure_errf(err, err_len, "SEV metadata section %u has the unknown type 0x%x", i,
			             s->type);
			return CVM_E_UNSUPPORTED;
		}
		if (s->gpa % PAGE != 0 || s->size % PAGE != 0 || s->size == 0 ||
		    (uint64_t)s->gpa + s->size > FOUR_GIB) {
			measure_errf(err, err_len,
			             "SEV metadata section %u (%s): address 0x%x size 0x%x is not a run of "
			             "4 KiB pages below 4 GiB",
			             i, cvm_snp_section_type_name(s->type), s->gpa, s->size);
			return CVM_E_FORMAT;
		}
		/* QEMU measures one page for each of these: more would be a
		 * firmware this computation does not describe. */
		if ((s->type == CVM_SNP_SECRETS || s->type == CVM_SNP_CPUID ||
		     s->type == CVM_SNP_KERNEL_HASHES) &&
		    s->size != PAGE) {
			measure_errf(err, err_len, "SEV metadata section %u (%s) is 0x%x bytes, not one page",
			             i, cvm_snp_section_type_name(s->type), s->size);
			return CVM_E_FORMAT;
		}
	}
	out->section_count = count;
	return CVM_OK;
}

int cvm_snp_fw_parse(const uint8_t *fw, size_t len, struct cvm_snp_fw *out, char *err, size_t err_len)
{
	uint32_t from_end = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if (fw == NULL && len != 0)
		return CVM_E_INVAL;
	if (len > CVM_TDVF_IMAGE_MAX) {
		measure_errf(err, err_len, "the firmware is %zu bytes, more than the %zu allowed", len,
		             CVM_TDVF_IMAGE_MAX);
		return CVM_E_TOO_LARGE;
	}
	if (len % PAGE != 0) {
		measure_errf(
		    err, err_len,
		    "the firmware is %zu bytes, not a whole number of 4 KiB pages: QEMU cannot map it", len);
		return CVM_E_FORMAT;
	}
	r = walk_table(fw, len, out, &from_end, err, err_len);
	if (r == CVM_OK)
		r = parse_sections(fw, len, from_end, out, err, err_len);
	if (r != CVM_OK) {
		memset(out, 0, sizeof(*out));
		return r;
	}
	out->image_len = len;
	out->gpa = FOUR_GIB - len;
	return CVM_OK;
}

/* ld_update folds one page into the launch digest (SNP ABI PAGE_INFO:
 * digest_cur, contents, length, page_type, imi_page 0, VMPL permissions 0,
 * reserved, GPA). */
static void ld_update(uint8_t ld[48], uint8_t page_type, uint64_t gpa, const uint8_t contents[48])
{
	uint8_t pi[PAGE_INFO_LEN] = {0};

	memcpy(pi, ld, 48);
	memcpy(pi + 48, contents, 48);
	pi[96] = PAGE_INFO_LEN;
	pi[97] = 0;
	pi[98] = page_type;
	measure_put_u64le(pi + 104, gpa);
	cvm_sha384(pi, sizeof(pi), ld);
}

static void ld_pages(uint8_t ld[48], uint8_t page_type, uint64_t gpa, const uint8_t *data, uint64_t len)
{
	static const uint8_t zero[48];
	uint8_t d[48];

	for (uint64_t off = 0; off < len; off += PAGE) {
		if (data != NULL) {
			cvm_sha384(data + off, PAGE, d);
			ld_update(ld, page_type, gpa + off, d);
		} else {
			ld_update(ld, page_type, gpa + off, zero);
		}
	}
}

static struct cvm_snp_measure_step *add_step(struct cvm_snp_measure *m, const char *what, uint64_t gpa,
                                             uint64_t pages)
{
	struct cvm_snp_measure_step *s;

	if (m->step_count >= CVM_SNP_STEPS_MAX)
		return NULL;
	s = &m->steps[m->step_count++];
	(void)snprintf(s->what, sizeof(s->what), "%s", what);
	s->gpa = gpa;
	s->pages = pages;
	return s;
}

static void put_seg(uint8_t *p, uint16_t sel, uint16_t attrib, uint32_t limit, uint64_t base)
{
	p[0] = (uint8_t)sel;
	p[1] = (uint8_t)(sel >> 8);
	p[2] = (uint8_t)attrib;
	p[3] = (uint8_t)(attrib >> 8);
	for (unsigned i = 0; i < 4; i++)
		p[4 + i] = (uint8_t)(limit >> (8 * i));
	measure_put_u64le(p + 8, base);
}

/* build_vmsa writes the VMSA KVM gives a QEMU vCPU at reset (offsets of the
 * SEV-ES save area, AMD APM vol. 2 table B-4): real mode, CS based so that
 * CS:IP is `eip`, KVM's EFER.SVME, CR4.MCE, and QEMU's x87/SSE reset state. */
static void build_vmsa(uint8_t v[PAGE], uint32_t eip, uint32_t sig, uint64_t features)
{
	memset(v, 0, PAGE);
	put_seg(v + 0x00, 0, 0x93, 0xffff, 0);                      /* es */
	put_seg(v + 0x10, 0xf000, 0x9b, 0xffff, eip & 0xffff0000u); /* cs */
	put_seg(v + 0x20, 0, 0x93, 0xffff, 0);                      /* ss */
	put_seg(v + 0x30, 0, 0x93, 0xffff, 0);                      /* ds */
	put_seg(v + 0x40, 0, 0x93, 0xffff, 0);                      /* fs */
	put_seg(v + 0x50, 0, 0x93, 0xffff, 0);                      /* gs */
	put_seg(v + 0x60, 0, 0, 0xffff, 0);                         /* gdtr */
	put_seg(v + 0x70, 0, 0x82, 0xffff, 0);                      /* ldtr */
	put_seg(v + 0x80, 0, 0, 0xffff, 0);                         /* idtr */
	put_seg(v + 0x90, 0, 0x8b, 0xffff, 0);                      /* tr */
	measure_put_u64le(v + 0xd0, 0x1000);                        /* efer: SVME */
	measure_put_u64le(v + 0x148, 0x40);                         /* cr4: MCE */
	measure_put_u64le(v + 0x158, 0x10);                         /* cr0: ET */
	measure_put_u64le(v + 0x160, 0x400);                        /* dr7 */
	measure_put_u64le(v + 0x168, 0xffff0ff0);                   /* dr6 */
	measure_put_u64le(v + 0x170, 0x2);                          /* rflags */
	measure_put_u64le(v + 0x178, eip & 0xffffu);                /* rip */
	measure_put_u64le(v + 0x268, UINT64_C(0x0007040600070406)); /* g_pat: the PAT reset value */
	measure_put_u64le(v + 0x310, sig);                          /* rdx: the CPUID signature */
	measure_put_u64le(v + 0x3b0, features);                     /* sev_features */
	measure_put_u64le(v + 0x3e8, 0x1);                          /* xcr0 */
	v[0x408] = 0x80;                                            /* mxcsr 0x1f80 */
	v[0x409] = 0x1f;
	v[0x410] = 0x7f; /* x87 fcw 0x37f */
	v[0x411] = 0x03;
}

static void put_ht_entry(uint8_t *p, const uint8_t guid[16], const uint8_t hash[32])
{
	memcpy(p, guid, 16);
	p[16] = HT_ENTRY_LEN;
	p[17] = 0;
	memcpy(p + 18, hash, 32);
}

/* hashes_page builds the page QEMU measures for kernel-hashes=on: zeroes
 * with the padded hashes table at the table's offset in its page. The
 * command line is hashed with its NUL, as QEMU's fw_cfg holds it. Returns 0,
 * CVM_E_FORMAT, CVM_E_NOMEM or CVM_E_CRYPTO. */
static int hashes_page(const struct cvm_snp_measure_input *in, const struct cvm_snp_fw *fw,
                       const struct cvm_snp_fw_section *s, uint8_t page[PAGE], char *err, size_t err_len)
{
	static const uint8_t nul;
	struct cvm_digest_ctx *ctx = NULL;
	uint8_t h[32], *t;
	size_t off;
	int r;

	if (fw->hashes_gpa < s->gpa || (uint64_t)fw->hashes_gpa + HT_PADDED_LEN > (uint64_t)s->gpa + PAGE) {
		measure_errf(err, err_len,
		             "the SEV hash table address 0x%x is not inside the SNP_KERNEL_HASHES page 0x%x",
		             fw->hashes_gpa, s->gpa);
		return CVM_E_FORMAT;
	}
	off = fw->hashes_gpa - s->gpa;
	memset(page, 0, PAGE);
	t = page + off;
	memcpy(t, ht_header_guid, 16);
	t[16] = (uint8_t)HT_LEN;
	t[17] = (uint8_t)(HT_LEN >> 8);
	r = cvm_digest_ctx_new(CVM_DIGEST_SHA256, &ctx);
	if (r != CVM_OK)
		return r;
	r = cvm_digest_update(ctx, in->cmdline_len ? in->cmdline : "", in->cmdline_len);
	if (r == CVM_OK)
		r = cvm_digest_update(ctx, &nul, 1);
	if (r == CVM_OK)
		r = cvm_digest_final(ctx, h, sizeof(h));
	cvm_digest_ctx_free(ctx);
	if (r != CVM_OK)
		return r;
	put_ht_entry(t + 18, ht_cmdline_guid, h);
	cvm_sha256(in->initrd_len ? in->initrd : (const uint8_t *)"", in->initrd_len, h);
	put_ht_entry(t + 18 + HT_ENTRY_LEN, ht_initrd_guid, h);
	cvm_sha256(in->kernel_len ? in->kernel : (const uint8_t *)"", in->kernel_len, h);
	put_ht_entry(t + 18 + (size_t)2 * HT_ENTRY_LEN, ht_kernel_guid, h);
	return CVM_OK;
}

static int section_step(const struct cvm_snp_measure_input *in, const struct cvm_snp_fw *fw,
                        const struct cvm_snp_fw_section *s, struct cvm_snp_measure *m, char *err,
                        size_t err_len)
{
	struct cvm_snp_measure_step *st;
	uint8_t page[PAGE];
	int r;

	st = add_step(m, cvm_snp_section_type_name(s->type), s->gpa, s->size / PAGE);
	if (st == NULL)
		return CVM_E_INTERNAL;
	switch (s->type) {
	case CVM_SNP_SEC_MEM:
	case CVM_SNP_SVSM_CAA:
		ld_pages(m->digest, PAGE_TYPE_ZERO, s->gpa, NULL, s->size);
		(void)snprintf(st->source, sizeof(st->source), "zero pages");
		break;
	case CVM_SNP_SECRETS:
		ld_pages(m->digest, PAGE_TYPE_SECRETS, s->gpa, NULL, s->size);
		(void)snprintf(st->source, sizeof(st->source), "secrets page (the PSP fills it)");
		break;
	case CVM_SNP_CPUID:
		ld_pages(m->digest, PAGE_TYPE_CPUID, s->gpa, NULL, s->size);
		(void)snprintf(st->source, sizeof(st->source), "CPUID page (the PSP checks it)");
		break;
	case CVM_SNP_KERNEL_HASHES:
		if (!in->kernel_hashes) {
			ld_pages(m->digest, PAGE_TYPE_ZERO, s->gpa, NULL, s->size);
			(void)snprintf(st->source, sizeof(st->source), "zero page (no kernel given)");
			break;
		}
		r = hashes_page(in, fw, s, page, err, err_len);
		if (r != CVM_OK)
			return r;
		ld_pages(m->digest, PAGE_TYPE_NORMAL, s->gpa, page, PAGE);
		(void)snprintf(st->source, sizeof(st->source),
		               "SHA-256 of kernel (%zu bytes), initrd (%zu bytes), cmdline (%zu bytes + NUL) "
		               "at 0x%x",
		               in->kernel_len, in->initrd_len, in->cmdline_len, fw->hashes_gpa);
		break;
	default:
		return CVM_E_INTERNAL;
	}
	memcpy(st->digest, m->digest, 48);
	return CVM_OK;
}

int cvm_snp_launch_digest(const struct cvm_snp_measure_input *in, struct cvm_snp_measure *out, char *err,
                          size_t err_len)
{
	struct cvm_snp_fw fw;
	struct cvm_snp_measure_step *st;
	bool has_hashes_section = false;
	uint8_t vmsa[PAGE], d[48];
	int r;

	memset(out, 0, sizeof(*out));
	if (in == NULL || (in->firmware == NULL && in->firmware_len != 0) ||
	    (in->kernel == NULL && in->kernel_len != 0) || (in->initrd == NULL && in->initrd_len != 0) ||
	    (in->cmdline == NULL && in->cmdline_len != 0))
		return CVM_E_INVAL;
	if (in->vcpus == 0 || in->vcpus > CVM_SNP_VCPUS_MAX) {
		measure_errf(err, err_len, "%u vCPUs: give 1 to %u", in->vcpus, CVM_SNP_VCPUS_MAX);
		return CVM_E_INVAL;
	}
	if (in->kernel_len > CVM_MEASURE_KERNEL_MAX || in->initrd_len > CVM_MEASURE_KERNEL_MAX ||
	    in->cmdline_len > CVM_MEASURE_CMDLINE_MAX) {
		measure_errf(err, err_len, "the kernel, initrd or command line is larger than allowed");
		return CVM_E_INVAL;
	}
	r = cvm_snp_fw_parse(in->firmware, in->firmware_len, &fw, err, err_len);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < fw.section_count; i++)
		has_hashes_section |= fw.sections[i].type == CVM_SNP_KERNEL_HASHES;
	if (in->kernel_hashes && (!has_hashes_section || fw.hashes_gpa == 0)) {
		measure_errf(
		    err, err_len,
		    "a kernel was given but this firmware has no SNP_KERNEL_HASHES section or SEV hash "
		    "table: QEMU's kernel-hashes=on needs OVMF's AmdSev build");
		return CVM_E_UNSUPPORTED;
	}
	if (in->vcpus > 1 && fw.reset_eip == 0) {
		measure_errf(err, err_len,
		             "%u vCPUs but the firmware has no SEV-ES reset block for the APs to start at",
		             in->vcpus);
		return CVM_E_UNSUPPORTED;
	}

	st = add_step(out, "firmware", fw.gpa, fw.image_len / PAGE);
	if (st == NULL)
		return CVM_E_INTERNAL;
	ld_pages(out->digest, PAGE_TYPE_NORMAL, fw.gpa, in->firmware, fw.image_len);
	(void)snprintf(st->source, sizeof(st->source), "the image's %zu bytes, ending at 4 GiB",
	               in->firmware_len);
	memcpy(st->digest, out->digest, 48);
	memcpy(out->firmware_digest, out->digest, 48);

	for (size_t i = 0; i < fw.section_count; i++) {
		r = section_step(in, &fw, &fw.sections[i], out, err, err_len);
		if (r != CVM_OK) {
			memset(out, 0, sizeof(*out));
			return r;
		}
	}

	/* The VMSAs: the BSP, then every AP at the firmware's reset vector. */
	st = add_step(out, "VMSA (BSP)", VMSA_GPA, 1);
	if (st == NULL)
		return CVM_E_INTERNAL;
	build_vmsa(vmsa, BSP_EIP, in->vcpu_sig, in->guest_features);
	cvm_sha384(vmsa, sizeof(vmsa), d);
	ld_update(out->digest, PAGE_TYPE_VMSA, VMSA_GPA, d);
	(void)snprintf(st->source, sizeof(st->source),
	               "QEMU reset state, rip 0x%x, cpu signature 0x%x, sev_features 0x%" PRIx64, BSP_EIP,
	               in->vcpu_sig, in->guest_features);
	memcpy(st->digest, out->digest, 48);
	if (in->vcpus > 1) {
		st = add_step(out, "VMSA (APs)", VMSA_GPA, in->vcpus - 1);
		if (st == NULL)
			return CVM_E_INTERNAL;
		build_vmsa(vmsa, fw.reset_eip, in->vcpu_sig, in->guest_features);
		cvm_sha384(vmsa, sizeof(vmsa), d);
		for (uint32_t i = 1; i < in->vcpus; i++)
			ld_update(out->digest, PAGE_TYPE_VMSA, VMSA_GPA, d);
		(void)snprintf(st->source, sizeof(st->source),
		               "%u x QEMU reset state at the SEV-ES reset vector 0x%x", in->vcpus - 1,
		               fw.reset_eip);
		memcpy(st->digest, out->digest, 48);
	}
	return CVM_OK;
}

/* SEV-SNP ATTESTATION_REPORT decoding, field by field through struct cvm_rd.
 * Offsets (SEV-SNP firmware ABI, ATTESTATION_REPORT structure):
 *   0x000 VERSION u32, 0x004 GUEST_SVN u32, 0x008 POLICY u64,
 *   0x010 FAMILY_ID[16], 0x020 IMAGE_ID[16], 0x030 VMPL u32,
 *   0x034 SIGNATURE_ALGO u32, 0x038 CURRENT_TCB u64, 0x040 PLATFORM_INFO u64,
 *   0x048 signer info u32, 0x04C reserved u32, 0x050 REPORT_DATA[64],
 *   0x090 MEASUREMENT[48], 0x0C0 HOST_DATA[32], 0x0E0 ID_KEY_DIGEST[48],
 *   0x110 AUTHOR_KEY_DIGEST[48], 0x140 REPORT_ID[32], 0x160 REPORT_ID_MA[32],
 *   0x180 REPORTED_TCB u64, 0x188 CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP (v3+;
 *   reserved in v2), 0x18B reserved[21], 0x1A0 CHIP_ID[64],
 *   0x1E0 COMMITTED_TCB u64, 0x1E8 CURRENT_BUILD, _MINOR, _MAJOR, reserved,
 *   0x1EC COMMITTED_BUILD, _MINOR, _MAJOR, reserved, 0x1F0 LAUNCH_TCB u64,
 *   0x1F8 LAUNCH_MIT_VECTOR u64 and 0x200 CURRENT_MIT_VECTOR u64 (v5),
 *   0x208 reserved up to 0x2A0, 0x2A0 SIGNATURE: R[72] S[72] (little-endian)
 *   then reserved up to 0x4A0.
 * Version 4 reports (SNP firmware 1.55.31 on some clouds) have the version 3
 * layout. */
#include <stdio.h>
#include <string.h>

#include <cvmkit/snp.h>

const char *cvm_snp_product_name(enum cvm_snp_product p)
{
	switch (p) {
	case CVM_SNP_PRODUCT_MILAN:
		return "Milan";
	case CVM_SNP_PRODUCT_GENOA:
		return "Genoa";
	case CVM_SNP_PRODUCT_TURIN:
		return "Turin";
	case CVM_SNP_PRODUCT_UNKNOWN:
		break;
	}
	return "unknown";
}

enum cvm_snp_product cvm_snp_product_from_cpuid(uint8_t family, uint8_t model)
{
	if (family == 0x19) {
		if (model <= 0x0f)
			return CVM_SNP_PRODUCT_MILAN;
		/* Genoa; Bergamo and Siena (0xA0..0xAF) share Genoa's chain */
		if ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf))
			return CVM_SNP_PRODUCT_GENOA;
	}
	if (family == 0x1a && model <= 0x11)
		return CVM_SNP_PRODUCT_TURIN;
	return CVM_SNP_PRODUCT_UNKNOWN;
}

enum cvm_snp_product cvm_snp_product_parse(const char *s, size_t len)
{
	static const struct {
		const char *name;
		enum cvm_snp_product p;
	} lines[] = {
	    {"Milan", CVM_SNP_PRODUCT_MILAN},
	    {"Genoa", CVM_SNP_PRODUCT_GENOA},
	    {"Turin", CVM_SNP_PRODUCT_TURIN},
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t n = strlen(lines[i].name);

		if (len < n || memcmp(s, lines[i].name, n) != 0)
			continue;
		if (len == n || (len > n + 1 && s[n] == '-'))
			return lines[i].p;
	}
	return CVM_SNP_PRODUCT_UNKNOWN;
}

void cvm_snp_tcb_decode(uint64_t raw, enum cvm_snp_product product, struct cvm_snp_tcb *out)
{
	uint8_t b[8];

	for (size_t i = 0; i < 8; i++)
		b[i] = (uint8_t)(raw >> (8 * i));
	memset(out, 0, sizeof(*out));
	out->raw = raw;
	out->microcode = b[7];
	if (product == CVM_SNP_PRODUCT_TURIN) {
		out->has_fmc = true;
		out->fmc = b[0];
		out->bootloader = b[1];
		out->tee = b[2];
		out->snp = b[3];
		out->reserved_nonzero = (b[4] | b[5] | b[6]) != 0;
	} else {
		out->bootloader = b[0];
		out->tee = b[1];
		out->snp = b[6];
		out->reserved_nonzero = (b[2] | b[3] | b[4] | b[5]) != 0;
	}
}

uint64_t cvm_snp_tcb_encode(const struct cvm_snp_tcb *t, enum cvm_snp_product product)
{
	uint8_t b[8] = {0};
	uint64_t v = 0;

	b[7] = t->microcode;
	if (product == CVM_SNP_PRODUCT_TURIN) {
		b[0] = t->fmc;
		b[1] = t->bootloader;
		b[2] = t->tee;
		b[3] = t->snp;
	} else {
		b[0] = t->bootloader;
		b[1] = t->tee;
		b[6] = t->snp;
	}
	for (size_t i = 0; i < 8; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

bool cvm_snp_report_looks_like(const uint8_t *buf, size_t len)
{
	struct cvm_rd r;
	uint32_t version;

	if (buf == NULL || len != CVM_SNP_REPORT_LEN)
		return false;
	cvm_rd_init(&r, buf, len);
	if (!cvm_rd_u32le(&r, &version))
		return false;
	return version >= 2 && version <= 5;
}

/* note_reserved records the first structure problem. */
static void note_reserved(struct cvm_snp_report *out, const char *what)
{
	if (out->reserved_nonzero)
		return;
	out->reserved_nonzero = true;
	(void)snprintf(out->reserved_what, sizeof(out->reserved_what), "%s", what);
}

/* zeros reads `n` bytes that must be zero. */
static bool zeros(struct cvm_rd *r, size_t n, struct cvm_snp_report *out, const char *what)
{
	struct cvm_rd sub;

	if (!cvm_rd_sub(r, &sub, n))
		return false;
	if (!cvm_rd_all_zero(&sub))
		note_reserved(out, what);
	return true;
}

static bool read_tcb(struct cvm_rd *r, struct cvm_snp_tcb *t)
{
	uint64_t v;

	if (!cvm_rd_u64le(r, &v))
		return false;
	t->raw = v;
	return true;
}

static void decode_tcbs(struct cvm_snp_report *out)
{
	struct cvm_snp_tcb *tcbs[] = {&out->current_tcb, &out->reported_tcb, &out->committed_tcb,
	                              &out->launch_tcb};

	for (size_t i = 0; i < sizeof(tcbs) / sizeof(tcbs[0]); i++)
		cvm_snp_tcb_decode(tcbs[i]->raw, out->product, tcbs[i]);
}

int cvm_snp_report_parse(const uint8_t *buf, size_t len, struct cvm_snp_report *out)
{
	struct cvm_rd r, rest;
	uint8_t reserved8;
	uint32_t reserved32;
	bool ok;

	memset(out, 0, sizeof(*out));
	if (buf == NULL)
		return CVM_E_INVAL;
	if (len < CVM_SNP_REPORT_LEN)
		return CVM_E_TRUNCATED;
	if (len > CVM_SNP_REPORT_LEN)
		return CVM_E_FORMAT;
	cvm_rd_init(&r, buf, len);
	rest = r;
	if (!cvm_rd_sub(&rest, &out->signed_data, CVM_SNP_SIGNED_LEN))
		return CVM_E_TRUNCATED;

	ok = cvm_rd_u32le(&r, &out->version) && cvm_rd_u32le(&r, &out->guest_svn) &&
	     cvm_rd_u64le(&r, &out->policy) && cvm_rd_copy(&r, out->family_id, sizeof(out->family_id)) &&
	     cvm_rd_copy(&r, out->image_id, sizeof(out->image_id)) && cvm_rd_u32le(&r, &out->vmpl) &&
	     cvm_rd_u32le(&r, &out->sig_algo) && read_tcb(&r, &out->current_tcb) &&
	     cvm_rd_u64le(&r, &out->platform_info) && cvm_rd_u32le(&r, &out->signer_info) &&
	     cvm_rd_u32le(&r, &reserved32);
	if (!ok)
		return CVM_E_TRUNCATED;
	if (out->version < 2 || out->version > 5) {
		memset(out, 0, sizeof(*out));
		return CVM_E_UNSUPPORTED;
	}
	if ((out->policy & CVM_SNP_POLICY_RESERVED_ONE) == 0)
		note_reserved(out, "POLICY bit 17 (must be 1)");
	if ((out->policy & CVM_SNP_POLICY_RESERVED_ZERO) != 0)
		note_reserved(out, "POLICY bits 63:26");
	out->author_key_en = (out->signer_info & 1u) != 0;
	out->mask_chip_key = (out->signer_info & 2u) != 0;
	out->signing_key = (uint8_t)((out->signer_info >> 2) & 7u);
	if ((out->signer_info >> 5) != 0)
		note_reserved(out, "signer info bits 31:5");
	if (out->signing_key != CVM_SNP_SIGNER_VCEK && out->signing_key != CVM_SNP_SIGNER_VLEK &&
	    out->signing_key != CVM_SNP_SIGNER_NONE)
		note_reserved(out, "SIGNING_KEY (a reserved value)");
	if (reserved32 != 0)
		note_reserved(out, "bytes 0x4C..0x4F");

	ok = cvm_rd_copy(&r, out->report_data, sizeof(out->report_data)) &&
	     cvm_rd_copy(&r, out->measurement, sizeof(out->measurement)) &&
	     cvm_rd_copy(&r, out->host_data, sizeof(out->host_data)) &&
	     cvm_rd_copy(&r, out->id_key_digest, sizeof(out->id_key_digest)) &&
	     cvm_rd_copy(&r, out->author_key_digest, sizeof(out->author_key_digest)) &&
	     cvm_rd_copy(&r, out->report_id, sizeof(out->report_id)) &&
	     cvm_rd_copy(&r, out->report_id_ma, sizeof(out->report_id_ma)) &&
	     read_tcb(&r, &out->reported_tcb);
	if (!ok)
		return CVM_E_TRUNCATED;
	if (out->version >= 3) {
		out->has_cpuid = true;
		ok = cvm_rd_u8(&r, &out->cpuid_fam_id) && cvm_rd_u8(&r, &out->cpuid_mod_id) &&
		     cvm_rd_u8(&r, &out->cpuid_step) && zeros(&r, 21, out, "bytes 0x18B..0x19F");
		out->product = cvm_snp_product_from_cpuid(out->cpuid_fam_id, out->cpuid_mod_id);
	} else {
		ok = zeros(&r, 24, out, "bytes 0x188..0x19F");
	}
	ok = ok && cvm_rd_copy(&r, out->chip_id, sizeof(out->chip_id)) && read_tcb(&r, &out->committed_tcb) &&
	     cvm_rd_u8(&r, &out->current_build) && cvm_rd_u8(&r, &out->current_minor) &&
	     cvm_rd_u8(&r, &out->current_major) && cvm_rd_u8(&r, &reserved8);
	if (!ok)
		return CVM_E_TRUNCATED;
	if (reserved8 != 0)
		note_reserved(out, "byte 0x1EB");
	ok = cvm_rd_u8(&r, &out->committed_build) && cvm_rd_u8(&r, &out->committed_minor) &&
	     cvm_rd_u8(&r, &out->committed_major) && cvm_rd_u8(&r, &reserved8) &&
	     read_tcb(&r, &out->launch_tcb) && cvm_rd_u64le(&r, &out->launch_mit_vector) &&
	     cvm_rd_u64le(&r, &out->current_mit_vector);
	if (!ok)
		return CVM_E_TRUNCATED;
	if (reserved8 != 0)
		note_reserved(out, "byte 0x1EF");
	/* Before version 5 the mitigation vectors are reserved. Firmware of
	 * that time is not known to zero them, so they are neither decoded nor
	 * required to be zero there. */
	out->has_mit_vectors = out->version >= 5;
	if (!out->has_mit_vectors) {
		out->launch_mit_vector = 0;
		out->current_mit_vector = 0;
	}
	ok = zeros(&r, CVM_SNP_SIGNED_LEN - 0x208u, out, "bytes 0x208..0x29F") &&
	     cvm_rd_copy(&r, out->sig_r, sizeof(out->sig_r)) &&
	     cvm_rd_copy(&r, out->sig_s, sizeof(out->sig_s)) &&
	     zeros(&r, CVM_SNP_REPORT_LEN - CVM_SNP_SIGNED_LEN - 2 * CVM_SNP_SIG_COMPONENT_LEN, out,
	           "signature bytes 0x390..0x49F");
	if (!ok)
		return CVM_E_TRUNCATED;
	if (!cvm_rd_empty(&r))
		return CVM_E_INTERNAL;
	decode_tcbs(out);
	return CVM_OK;
}

bool cvm_snp_report_sig_be(const struct cvm_snp_report *r, uint8_t out[96])
{
	uint8_t hi = 0;

	for (size_t i = 48; i < CVM_SNP_SIG_COMPONENT_LEN; i++)
		hi |= (uint8_t)(r->sig_r[i] | r->sig_s[i]);
	for (size_t i = 0; i < 48; i++) {
		out[i] = r->sig_r[47 - i];
		out[48 + i] = r->sig_s[47 - i];
	}
	return hi == 0;
}

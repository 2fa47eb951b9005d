/* Cosmian's SEV-SNP RA-TLS extension (cosmian_vm.md §7.3): the 1184-byte
 * report followed by the certificate table in one of three wire formats,
 * tee-tools 1.6.2 (bincode: u64 count, u32 variant, u64 length), tee-tools
 * 2.x (u32 count, u32 entry length, GUID) and the 2023 form (1.6.2's with a
 * GUID after variant 3). */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/amd.h>
#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/err.h>

#include "core/core_lib.h"
#include "ratls_int.h"

#define COSMIAN_CERTS_MAX 16u

enum cert_kind { K_OTHER = 0, K_ARK, K_ASK, K_VCEK, K_VLEK, K_CRL };

/* The GUIDs of the GHCB certificate table, in RFC byte order. */
static const struct {
	enum cert_kind kind;
	uint8_t guid[16];
} guids[] = {
    {K_ARK, {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae}},
    {K_ASK, {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82}},
    {K_VCEK,
     {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd}},
    {K_VLEK,
     {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1}},
    {K_CRL, {0x92, 0xf8, 0x1b, 0xc3, 0x58, 0x11, 0x4d, 0x3d, 0x97, 0xff, 0xd1, 0x9f, 0x88, 0xdc, 0x67, 0xea}},
};

void cosmian_certs_cleanup(struct cvm_amd_collateral *c)
{
	free(c->vcek);
	free(c->vlek);
	free(c->ask);
	free(c->asvk);
	free(c->cert_chain);
	free(c->ark);
	free(c->crl);
	memset(c, 0, sizeof(*c));
}

/* put_cert stores one certificate (a copy) in its slot; a second one of a
 * kind is an error. */
static int put_cert(struct cvm_amd_collateral *c, enum cert_kind k, const uint8_t *p, size_t n, char *err,
                    size_t err_len)
{
	struct cvm_rd der, body;
	uint8_t **slot;
	size_t *slot_len;

	switch (k) {
	case K_ARK:
		slot = &c->ark;
		slot_len = &c->ark_len;
		break;
	case K_ASK:
		slot = &c->ask;
		slot_len = &c->ask_len;
		break;
	case K_VCEK:
		slot = &c->vcek;
		slot_len = &c->vcek_len;
		break;
	case K_VLEK:
		slot = &c->vlek;
		slot_len = &c->vlek_len;
		break;
	case K_CRL:
		slot = &c->crl;
		slot_len = &c->crl_len;
		break;
	default:
		return CVM_OK; /* an entry cvmkit has no use for */
	}
	if (*slot != NULL)
		return RATLS_ERR(err, err_len, CVM_E_FORMAT,
		                 "the SEV certificate table has two entries of one kind");
	if (n == 0 || n > (k == K_CRL ? CVM_AMD_CRL_MAX : CVM_CERT_DER_MAX))
		return RATLS_ERR(
		    err, err_len, CVM_E_TOO_LARGE,
		    "an SEV certificate table entry has %zu bytes (an empty or oversized certificate)", n);
	cvm_rd_init(&der, p, n);
	if (!cvm_rd_asn1(&der, &body, CVM_ASN1_SEQUENCE) || !cvm_rd_empty(&der))
		return RATLS_ERR(err, err_len, CVM_E_FORMAT,
		                 "an SEV certificate table entry is not one DER certificate or CRL");
	*slot = malloc(n);
	if (*slot == NULL)
		return CVM_E_NOMEM;
	memcpy(*slot, p, n);
	*slot_len = n;
	return CVM_OK;
}

/* parse_v2: u32 LE count || count x (u32 LE entry_len incl. the GUID ||
 * GUID || bytes). */
static int parse_v2(struct cvm_rd r, struct cvm_amd_collateral *c, char *err, size_t err_len)
{
	uint32_t count;
	int rc;

	if (!cvm_rd_u32le(&r, &count))
		return CVM_E_TRUNCATED;
	if (count > COSMIAN_CERTS_MAX)
		return CVM_E_TOO_LARGE;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t entry_len;
		const uint8_t *guid, *data;
		enum cert_kind k = K_OTHER;

		if (!cvm_rd_u32le(&r, &entry_len))
			return CVM_E_TRUNCATED;
		if (entry_len < 16 || entry_len > r.len)
			return CVM_E_FORMAT;
		if (!cvm_rd_bytes(&r, &guid, 16) || !cvm_rd_bytes(&r, &data, entry_len - 16u))
			return CVM_E_TRUNCATED;
		for (size_t g = 0; g < sizeof(guids) / sizeof(guids[0]); g++)
			if (memcmp(guid, guids[g].guid, 16) == 0)
				k = guids[g].kind;
		rc = put_cert(c, k, data, entry_len - 16u, err, err_len);
		if (rc != CVM_OK)
			return rc;
	}
	return cvm_rd_empty(&r) ? CVM_OK : CVM_E_FORMAT;
}

/* parse_v1: bincode of Vec<CertTableEntry>: u64 LE count || count x (u32 LE
 * variant (Empty 0, ARK 1, ASK 2, VCEK 3, VLEK 4, CRL 5, OTHER 6) || [OTHER:
 * u64 LE 16 || uuid] || u64 LE len || bytes). With `tagged` it reads the
 * 2023 form instead (tee-tools 5dd47678, Cosmian's fork of the sev crate):
 * the same layout, but variant 3 is followed by u64 LE 16 and a GUID of the
 * certificate table, which names the kind. Only that variant was seen (an
 * AWS VLEK); variants 1 and 2 are read as in 1.6.2, any other is refused. */
static int parse_v1(struct cvm_rd r, bool tagged, struct cvm_amd_collateral *c, char *err, size_t err_len)
{
	static const enum cert_kind kinds[] = {K_OTHER, K_ARK, K_ASK, K_VCEK, K_VLEK, K_CRL, K_OTHER};
	uint64_t count;
	int rc;

	if (!cvm_rd_u64le(&r, &count))
		return CVM_E_TRUNCATED;
	if (count > COSMIAN_CERTS_MAX)
		return CVM_E_TOO_LARGE;
	for (uint64_t i = 0; i < count; i++) {
		uint32_t variant;
		uint64_t len;
		const uint8_t *data, *guid = NULL;
		enum cert_kind k;

		if (!cvm_rd_u32le(&r, &variant))
			return CVM_E_TRUNCATED;
		if (variant > 6 || (tagged && variant != 1 && variant != 2 && variant != 3))
			return CVM_E_FORMAT;
		k = kinds[variant];
		if (variant == 6 || (tagged && variant == 3)) {
			uint64_t ulen;

			if (!cvm_rd_u64le(&r, &ulen))
				return CVM_E_TRUNCATED;
			if (ulen != 16)
				return CVM_E_FORMAT;
			if (!cvm_rd_bytes(&r, &guid, 16))
				return CVM_E_TRUNCATED;
		}
		if (tagged && guid != NULL) {
			k = K_OTHER;
			for (size_t g = 0; g < sizeof(guids) / sizeof(guids[0]); g++)
				if (memcmp(guid, guids[g].guid, 16) == 0)
					k = guids[g].kind;
		}
		if (!cvm_rd_u64le(&r, &len))
			return CVM_E_TRUNCATED;
		if (len > r.len)
			return CVM_E_TRUNCATED;
		if (!cvm_rd_bytes(&r, &data, (size_t)len))
			return CVM_E_TRUNCATED;
		rc = put_cert(c, k, data, (size_t)len, err, err_len);
		if (rc != CVM_OK)
			return rc;
	}
	return cvm_rd_empty(&r) ? CVM_OK : CVM_E_FORMAT;
}

int cosmian_sev_parse(const uint8_t *buf, size_t len, const uint8_t **report,
                      struct cvm_amd_collateral *certs, unsigned *format, char *err, size_t err_len)
{
	struct cvm_rd r, table;
	int rc1, rc2, rc3;

	memset(certs, 0, sizeof(*certs));
	*report = NULL;
	*format = 0;
	cvm_rd_init(&r, buf, len);
	if (!cvm_rd_bytes(&r, report, RATLS_SNP_REPORT_LEN))
		return RATLS_ERR(err, err_len, CVM_E_TRUNCATED,
		                 "the SEV extension has %zu bytes, fewer than a 1184-byte report", len);
	table = r;
	if (cvm_rd_empty(&table))
		return RATLS_ERR(err, err_len, CVM_E_FORMAT,
		                 "the SEV extension holds a report without its certificate table");
	/* 2.x and the bincode forms cannot both fit: in 2.x the second u32 is
	 * an entry length of at least 16 bytes, in bincode the high half of a
	 * u64 count. */
	rc2 = parse_v2(table, certs, err, err_len);
	if (rc2 == CVM_OK) {
		*format = 2;
		return CVM_OK;
	}
	cosmian_certs_cleanup(certs);
	if (rc2 == CVM_E_NOMEM)
		return rc2;
	rc1 = parse_v1(table, false, certs, err, err_len);
	if (rc1 == CVM_OK) {
		*format = 1;
		return CVM_OK;
	}
	cosmian_certs_cleanup(certs);
	if (rc1 == CVM_E_NOMEM)
		return rc1;
	/* 1.6.2 and 2023 differ only where variant 3 carries a GUID: 1.6.2
	 * reads those 16 bytes as a certificate and then fails on the rest */
	rc3 = parse_v1(table, true, certs, err, err_len);
	if (rc3 == CVM_OK) {
		*format = 3;
		return CVM_OK;
	}
	cosmian_certs_cleanup(certs);
	if (rc3 == CVM_E_NOMEM)
		return rc3;
	return RATLS_ERR(err, err_len,
	                 rc2 == CVM_E_TRUNCATED && rc1 == CVM_E_TRUNCATED && rc3 == CVM_E_TRUNCATED
	                     ? CVM_E_TRUNCATED
	                     : CVM_E_FORMAT,
	                 "the SEV certificate table after the report (%zu bytes) is in none of the tee-tools "
	                 "forms (2.x, 1.6.2, 2023)",
	                 len - RATLS_SNP_REPORT_LEN);
}

/* der_of gives the DER of one PEM or DER certificate (a copy in *owned). */
static int der_of(const uint8_t *p, size_t n, uint8_t **owned, size_t *owned_len)
{
	struct cvm_cert *c = NULL;
	const uint8_t *der;
	size_t der_len;
	int rc = cvm_cert_parse(p, n, &c);

	*owned = NULL;
	if (rc != CVM_OK)
		return CVM_E_FORMAT;
	cvm_cert_der(c, &der, &der_len);
	*owned = malloc(der_len);
	if (*owned == NULL) {
		cvm_cert_free(c);
		return CVM_E_NOMEM;
	}
	memcpy(*owned, der, der_len);
	*owned_len = der_len;
	cvm_cert_free(c);
	return CVM_OK;
}

int cosmian_sev_encode(const uint8_t *report, size_t report_len, const struct cvm_amd_collateral *certs,
                       uint8_t **out, size_t *out_len)
{
	struct {
		const uint8_t *p;
		size_t n;
		enum cert_kind k;
	} in[] = {
	    {certs != NULL ? certs->ark : NULL, certs != NULL ? certs->ark_len : 0, K_ARK},
	    {certs != NULL ? certs->ask : NULL, certs != NULL ? certs->ask_len : 0, K_ASK},
	    {certs != NULL ? certs->vcek : NULL, certs != NULL ? certs->vcek_len : 0, K_VCEK},
	    {certs != NULL ? certs->vlek : NULL, certs != NULL ? certs->vlek_len : 0, K_VLEK},
	    {certs != NULL ? certs->crl : NULL, certs != NULL ? certs->crl_len : 0, K_CRL},
	};
	uint8_t *der[5] = {NULL, NULL, NULL, NULL, NULL};
	size_t der_len[5] = {0, 0, 0, 0, 0};
	uint32_t count = 0;
	struct cvm_wr w;
	int rc = CVM_OK;

	*out = NULL;
	*out_len = 0;
	if (report_len != RATLS_SNP_REPORT_LEN)
		return CVM_E_INVAL;
	for (size_t i = 0; i < 5; i++) {
		if (in[i].p == NULL)
			continue;
		if (in[i].k == K_CRL) {
			/* a DER CRL goes as it is (AMD's KDS serves DER); a PEM one is left out */
			if (in[i].n == 0 || in[i].p[0] != 0x30 || in[i].n > CVM_AMD_CRL_MAX)
				continue;
			der[i] = malloc(in[i].n);
			if (der[i] == NULL) {
				rc = CVM_E_NOMEM;
				goto out;
			}
			memcpy(der[i], in[i].p, in[i].n);
			der_len[i] = in[i].n;
			count++;
			continue;
		}
		rc = der_of(in[i].p, in[i].n, &der[i], &der_len[i]);
		if (rc != CVM_OK)
			goto out;
		count++;
	}
	cvm_wr_init(&w, CVM_RATLS_CERT_MAX);
	cvm_wr_bytes(&w, report, report_len);
	cvm_wr_u32le(&w, count);
	for (size_t i = 0; i < 5; i++) {
		if (der[i] == NULL)
			continue;
		for (size_t g = 0; g < sizeof(guids) / sizeof(guids[0]); g++) {
			if (guids[g].kind != in[i].k)
				continue;
			cvm_wr_u32le(&w, (uint32_t)(der_len[i] + 16));
			cvm_wr_bytes(&w, guids[g].guid, 16);
			cvm_wr_bytes(&w, der[i], der_len[i]);
		}
	}
	rc = cvm_wr_finish(&w, out, out_len);
out:
	for (size_t i = 0; i < 5; i++)
		free(der[i]);
	return rc;
}

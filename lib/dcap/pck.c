/* The Intel SGX extension of PCK certificates (OID 1.2.840.113741.1.13.1):
 * SEQUENCE OF SEQUENCE { OID, value }, with the TCB a nested SEQUENCE of 18
 * such pairs. Read from the extension's OCTET STRING with our DER reader. */
#include <string.h>

#include <cvmkit/crypto.h>

#include "dcap_int.h"
#include "dcap_lib.h"

/* DER contents of 1.2.840.113741.1.13.1 */
static const uint8_t sgx_ext_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};

/* oid_arc returns the arc that follows the SGX extension OID prefix `prefix`
 * (one or two levels below it), or -1. */
static int oid_child(const struct cvm_rd *oid, const uint8_t *prefix, size_t prefix_len)
{
	if (oid->len != prefix_len + 1 || memcmp(oid->p, prefix, prefix_len) != 0 ||
	    oid->p[prefix_len] >= 0x80)
		return -1;
	return oid->p[prefix_len];
}

/* A small non-negative DER INTEGER or ENUMERATED, at most `max`. */
static bool der_uint(const struct cvm_rd *v, uint32_t max, uint32_t *out)
{
	uint32_t x = 0;

	if (v->len == 0 || v->len > 4 || (v->p[0] & 0x80) != 0)
		return false;
	if (v->len > 1 && v->p[0] == 0 && (v->p[1] & 0x80) == 0)
		return false; /* not minimal */
	for (size_t i = 0; i < v->len; i++)
		x = (x << 8) | v->p[i];
	if (x > max)
		return false;
	*out = x;
	return true;
}

static int tcb_parse(struct cvm_rd *seq, struct cvm_pck_info *out)
{
	uint8_t prefix[sizeof(sgx_ext_oid) + 1];
	uint32_t seen = 0;

	memcpy(prefix, sgx_ext_oid, sizeof(sgx_ext_oid));
	prefix[sizeof(sgx_ext_oid)] = 0x02;
	while (!cvm_rd_empty(seq)) {
		struct cvm_rd pair, oid, val;
		uint8_t tag;
		uint32_t x;
		int arc;

		if (!cvm_rd_asn1(seq, &pair, CVM_ASN1_SEQUENCE) || !cvm_rd_asn1(&pair, &oid, CVM_ASN1_OID) ||
		    !cvm_rd_asn1_any(&pair, &val, &tag) || !cvm_rd_empty(&pair))
			return CVM_E_FORMAT;
		arc = oid_child(&oid, prefix, sizeof(prefix));
		if (arc < 1 || arc > 18 || (seen & (1u << arc)) != 0)
			return CVM_E_FORMAT;
		seen |= 1u << arc;
		if (arc <= 16) {
			if (tag != CVM_ASN1_INTEGER || !der_uint(&val, 255, &x))
				return CVM_E_FORMAT;
			out->tcb_svn[arc - 1] = (uint8_t)x;
		} else if (arc == 17) {
			if (tag != CVM_ASN1_INTEGER || !der_uint(&val, 65535, &x))
				return CVM_E_FORMAT;
			out->pce_svn = (uint16_t)x;
		} else {
			if (tag != CVM_ASN1_OCTET_STRING || val.len != sizeof(out->cpu_svn))
				return CVM_E_FORMAT;
			memcpy(out->cpu_svn, val.p, val.len);
		}
	}
	/* All 16 components, the PCE SVN and the CPU SVN must be present. */
	return seen == 0x7fffeu ? CVM_OK : CVM_E_FORMAT;
}

int cvm_pck_info_parse(const struct cvm_rd *ext, struct cvm_pck_info *out)
{
	struct cvm_rd in = *ext, seq;
	uint32_t seen = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if (!cvm_rd_asn1(&in, &seq, CVM_ASN1_SEQUENCE) || !cvm_rd_empty(&in))
		return CVM_E_FORMAT;
	while (!cvm_rd_empty(&seq)) {
		struct cvm_rd pair, oid, val;
		uint8_t tag;
		uint32_t x;
		int arc;

		if (!cvm_rd_asn1(&seq, &pair, CVM_ASN1_SEQUENCE) || !cvm_rd_asn1(&pair, &oid, CVM_ASN1_OID) ||
		    !cvm_rd_asn1_any(&pair, &val, &tag) || !cvm_rd_empty(&pair))
			return CVM_E_FORMAT;
		arc = oid_child(&oid, sgx_ext_oid, sizeof(sgx_ext_oid));
		if (arc < 1 || arc > 30)
			continue; /* other arcs are not used for verification */
		if ((seen & (1u << arc)) != 0)
			return CVM_E_FORMAT;
		seen |= 1u << arc;
		switch (arc) {
		case 1: /* PPID */
			if (tag != CVM_ASN1_OCTET_STRING || val.len != sizeof(out->ppid))
				return CVM_E_FORMAT;
			memcpy(out->ppid, val.p, val.len);
			break;
		case 2: /* TCB */
			if (tag != CVM_ASN1_SEQUENCE)
				return CVM_E_FORMAT;
			r = tcb_parse(&val, out);
			if (r != CVM_OK)
				return r;
			break;
		case 3: /* PCE-ID */
			if (tag != CVM_ASN1_OCTET_STRING || val.len != sizeof(out->pce_id))
				return CVM_E_FORMAT;
			memcpy(out->pce_id, val.p, val.len);
			break;
		case 4: /* FMSPC */
			if (tag != CVM_ASN1_OCTET_STRING || val.len != sizeof(out->fmspc))
				return CVM_E_FORMAT;
			memcpy(out->fmspc, val.p, val.len);
			break;
		case 5: /* SGX type: 0 standard, 1 scalable, 2 scalable with integrity */
			if (tag != CVM_ASN1_ENUMERATED || !der_uint(&val, 255, &x))
				return CVM_E_FORMAT;
			out->sgx_type = (uint8_t)x;
			break;
		default:
			break;
		}
	}
	if ((seen & 0x3eu) != 0x3eu)
		return CVM_E_FORMAT; /* PPID, TCB, PCE-ID, FMSPC and SGX type are required */
	return CVM_OK;
}

int cvm_dcap_pck_describe(const uint8_t *pem, size_t len, struct cvm_dcap_pck_desc *out)
{
	struct cvm_cert **certs = NULL;
	struct cvm_pck_info pck;
	struct cvm_rd ext;
	size_t n = 0;
	char issuer[256];
	int r;

	memset(out, 0, sizeof(*out));
	r = cvm_certs_parse_pem(pem, len, &certs, &n);
	if (r != CVM_OK || n == 0) {
		r = r == CVM_E_NOMEM ? r : CVM_E_FORMAT;
		goto out;
	}
	r = cvm_cert_ext(certs[0], CVM_SGX_EXT_OID, &ext);
	if (r == CVM_OK)
		r = cvm_pck_info_parse(&ext, &pck);
	if (r != CVM_OK) {
		r = CVM_E_FORMAT;
		goto out;
	}
	memcpy(out->fmspc, pck.fmspc, sizeof(out->fmspc));
	memcpy(out->pce_id, pck.pce_id, sizeof(out->pce_id));
	memcpy(out->tcb_svn, pck.tcb_svn, sizeof(out->tcb_svn));
	out->pce_svn = pck.pce_svn;
	memcpy(out->cpu_svn, pck.cpu_svn, sizeof(out->cpu_svn));
	cvm_cert_issuer(certs[0], issuer, sizeof(issuer));
	out->platform_ca = strstr(issuer, "CN = Intel SGX PCK Platform CA") != NULL;
out:
	cvm_certs_free(certs, n);
	return r;
}

int cvm_dcap_pck_identify(const uint8_t *pem, size_t len, uint8_t fmspc[6], bool *platform_ca)
{
	struct cvm_dcap_pck_desc d;
	int r = cvm_dcap_pck_describe(pem, len, &d);

	*platform_ca = false;
	if (r != CVM_OK)
		return r;
	memcpy(fmspc, d.fmspc, sizeof(d.fmspc));
	*platform_ca = d.platform_ca;
	return CVM_OK;
}

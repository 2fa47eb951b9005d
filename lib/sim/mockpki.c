/* A mock PKI shaped like Intel's DCAP PKI, issued through lib/crypto's
 * issuing interface. See lib/sim/mockpki_lib.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/file.h>

#include "sim/mock_int.h"

#define DAY ((int64_t)24 * 3600)
#define YEAR (365 * DAY)

static const char *const file_names[CVM_MOCKPKI_F_COUNT] = {
    [CVM_MOCKPKI_F_TCB_INFO] = "tcb_info.json",
    [CVM_MOCKPKI_F_QE_IDENTITY] = "qe_identity.json",
    [CVM_MOCKPKI_F_TCB_INFO_CHAIN] = "tcb_info_issuer_chain.pem",
    [CVM_MOCKPKI_F_QE_IDENTITY_CHAIN] = "qe_identity_issuer_chain.pem",
    [CVM_MOCKPKI_F_PCK_CRL_CHAIN] = "pck_crl_issuer_chain.pem",
    [CVM_MOCKPKI_F_PCK_CRL] = "pck_crl.der",
    [CVM_MOCKPKI_F_ROOT_CRL] = "root_ca_crl.der",
    [CVM_MOCKPKI_F_ROOT_DER] = "intel_sgx_root_ca.der",
};

struct cvm_mockpki {
	struct cvm_mockpki_opts o;
	struct cvm_privkey *key[CVM_MOCKPKI_CERT_COUNT];
	struct cvm_cert *cert[CVM_MOCKPKI_CERT_COUNT];
	uint8_t *file[CVM_MOCKPKI_F_COUNT];
	size_t file_len[CVM_MOCKPKI_F_COUNT];
	uint8_t *pck_chain; /* PEM leaf, PCK CA, root, NUL-terminated (counted) */
	size_t pck_chain_len;
};

/* What each certificate looks like; issuers come before their subjects. */
static const struct cert_spec {
	const char *cn;
	enum cvm_mockpki_cert issuer;
	const char *basic_constraints;
	const char *key_usage;
} cert_specs[CVM_MOCKPKI_CERT_COUNT] = {
    [CVM_MOCKPKI_ROOT] = {"Intel SGX Root CA", CVM_MOCKPKI_ROOT, "critical,CA:TRUE,pathlen:1",
                          "critical,keyCertSign,cRLSign"},
    [CVM_MOCKPKI_PCK_CA] = {"Intel SGX PCK Platform CA", CVM_MOCKPKI_ROOT, "critical,CA:TRUE,pathlen:0",
                            "critical,keyCertSign,cRLSign"},
    [CVM_MOCKPKI_PCK_LEAF] = {"Intel SGX PCK Certificate", CVM_MOCKPKI_PCK_CA, "critical,CA:FALSE",
                              "critical,digitalSignature,nonRepudiation"},
    [CVM_MOCKPKI_TCB_SIGNER] = {"Intel SGX TCB Signing", CVM_MOCKPKI_ROOT, "critical,CA:FALSE",
                                "critical,digitalSignature,nonRepudiation"},
};

/* ---- defaults ---------------------------------------------------------- */

static void advisories_set(struct cvm_mockpki_advisories *a, const char *id0, const char *id1)
{
	memset(a, 0, sizeof(*a));
	if (id0 != NULL)
		a->ids[a->count++] = id0;
	if (id1 != NULL)
		a->ids[a->count++] = id1;
}

void cvm_mockpki_opts_init(struct cvm_mockpki_opts *o, enum cvm_tee tee, int64_t now)
{
	static const uint8_t cpu_svn[16] = {3, 3, 2, 2, 4, 1, 0, 5};
	static const uint8_t tdx_svn[16] = {5, 1, 2};
	static const uint8_t fmspc[6] = {0x50, 0x80, 0x6f, 0x00, 0x00, 0x00};
	struct cvm_mockpki_quote_opts *q = &o->quote;
	struct cvm_mockpki_tcb_level *l;

	memset(o, 0, sizeof(*o));
	o->tee = tee;
	o->now = now;
	for (size_t i = 0; i < CVM_MOCKPKI_CERT_COUNT; i++) {
		o->cert[i].from = now - YEAR;
		o->cert[i].to = now + 5 * YEAR;
		o->serial[i] = 0x5eed000000000001ull + i;
	}
	o->root_crl.from = o->pck_crl.from = o->tcb_info.from = o->qe_identity.from = now - DAY;
	o->root_crl.to = o->pck_crl.to = o->tcb_info.to = o->qe_identity.to = now + 29 * DAY;
	/* Unrelated entries, so that an empty CRL is not what makes a test pass. */
	o->other_revoked_count = 2;
	o->other_revoked[0] = 0x5eed0000000000f1ull;
	o->other_revoked[1] = 0xdeadbeef00000001ull;

	cvm_mock_fill_pattern(o->ppid, sizeof(o->ppid), 0x11);
	memcpy(o->cpu_svn, cpu_svn, sizeof(o->cpu_svn));
	o->pce_svn = 11;
	memcpy(o->fmspc, fmspc, sizeof(o->fmspc));
	memcpy(o->tcb_fmspc, fmspc, sizeof(o->tcb_fmspc));
	o->tcb_eval_num = 17;

	o->level_count = 2;
	l = &o->levels[0];
	memcpy(l->sgx_svn, cpu_svn, sizeof(l->sgx_svn));
	l->pce_svn = 11;
	if (tee == CVM_TEE_TDX)
		memcpy(l->tdx_svn, tdx_svn, sizeof(l->tdx_svn));
	l->status = "UpToDate";
	l->tcb_date = now - 180 * DAY;
	o->levels[1] = *l;
	l = &o->levels[1];
	l->pce_svn = 5;
	l->status = "OutOfDate";
	l->tcb_date = now - 3 * YEAR;
	advisories_set(&l->adv, "INTEL-SA-00837", "INTEL-SA-00960");

	memset(o->module_attributes_mask, 0xff, sizeof(o->module_attributes_mask));
	o->module_major = tdx_svn[1];
	o->module_level_count = 1;
	o->module_levels[0].isv_svn = tdx_svn[0];
	o->module_levels[0].status = "UpToDate";
	o->module_levels[0].tcb_date = now - 180 * DAY;

	cvm_mock_fill_pattern(o->qe_mrsigner, sizeof(o->qe_mrsigner), 0xd0);
	o->qe_isv_prod_id = tee == CVM_TEE_TDX ? 2 : 1;
	o->qe_miscselect_mask = 0xffffffffu;
	o->qe_attributes[0] = 0x11;
	memset(o->qe_attributes_mask, 0xff, 8);
	o->qe_attributes_mask[0] = 0xfb;
	o->qe_level_count = 2;
	o->qe_levels[0].isv_svn = 4;
	o->qe_levels[0].status = "UpToDate";
	o->qe_levels[0].tcb_date = now - 180 * DAY;
	o->qe_levels[1].isv_svn = 2;
	o->qe_levels[1].status = "OutOfDate";
	o->qe_levels[1].tcb_date = now - 3 * YEAR;
	advisories_set(&o->qe_levels[1].adv, "INTEL-SA-00615", NULL);

	/* The quote: a QE report that the QE identity accepts, a body that the
	 * first TCB level matches. */
	memcpy(q->qe.cpu_svn, cpu_svn, sizeof(q->qe.cpu_svn));
	q->qe.attributes[0] = 0x15; /* INIT | MODE64BIT | PROVISIONKEY */
	q->qe.attributes[8] = 0xe7; /* XFRM */
	cvm_mock_fill_pattern(q->qe.mr_enclave, sizeof(q->qe.mr_enclave), 0xe5);
	memcpy(q->qe.mr_signer, o->qe_mrsigner, sizeof(q->qe.mr_signer));
	q->qe.isv_prod_id = o->qe_isv_prod_id;
	q->qe.isv_svn = o->qe_levels[0].isv_svn;
	cvm_mock_fill_pattern(q->auth_data, sizeof(q->auth_data), 0x00);
	q->qe_svn = q->qe.isv_svn;
	q->pce_svn = o->pce_svn;
	cvm_mock_fill_pattern(q->user_data, sizeof(q->user_data), 0x30);

	memcpy(q->td.tee_tcb_svn, tdx_svn, sizeof(q->td.tee_tcb_svn));
	cvm_mock_fill_pattern(q->td.mr_seam, sizeof(q->td.mr_seam), 0x5b);
	q->td.td_attributes[3] = 0x10; /* SEPT_VE_DISABLE (bit 28) */
	q->td.xfam[0] = 0xe7;
	q->td.xfam[1] = 0x02;
	q->td.xfam[2] = 0x06;
	cvm_mock_fill_pattern(q->td.mr_td, sizeof(q->td.mr_td), 0x91);
	for (size_t i = 0; i < 4; i++)
		cvm_mock_fill_pattern(q->td.rtmr[i], sizeof(q->td.rtmr[i]), (uint8_t)(0x40 + 0x10 * i));
	cvm_mock_fill_pattern(q->td.report_data, sizeof(q->td.report_data), 0x9a);

	memcpy(q->app.cpu_svn, cpu_svn, sizeof(q->app.cpu_svn));
	q->app.attributes[0] = 0x05; /* INIT | MODE64BIT */
	q->app.attributes[8] = 0xe7;
	cvm_mock_fill_pattern(q->app.mr_enclave, sizeof(q->app.mr_enclave), 0x33);
	cvm_mock_fill_pattern(q->app.mr_signer, sizeof(q->app.mr_signer), 0x81);
	cvm_mock_fill_pattern(q->app.report_data, sizeof(q->app.report_data), 0x9a);
}

/* ---- small helpers ----------------------------------------------------- */

static int iso8601(int64_t t, char out[21])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL)
		return CVM_E_INVAL;
	if (strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", &tm) != 20)
		return CVM_E_INVAL;
	return CVM_OK;
}

static void wr_hex_upper(struct cvm_wr *w, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		cvm_wr_u8(w, (uint8_t)digits[p[i] >> 4]);
		cvm_wr_u8(w, (uint8_t)digits[p[i] & 15]);
	}
}

/* ---- DER for the SGX extension ----------------------------------------- */

/* der_wrap moves what `inner` holds into `w` as one TLV of `tag`. */
static void der_wrap(struct cvm_wr *w, uint8_t tag, struct cvm_wr *inner)
{
	if (inner->err)
		w->err = true;
	else
		cvm_mock_der_tlv(w, tag, inner->buf, inner->len);
	cvm_wr_cleanup(inner);
}

/* The SGX extension's OIDs: 1.2.840.113741.1.13.1 followed by one or two
 * small arcs. */
static void der_sgx_oid(struct cvm_wr *w, uint8_t arc1, uint8_t arc2)
{
	static const uint8_t base[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};
	uint8_t oid[sizeof(base) + 2];
	size_t n = sizeof(base);

	memcpy(oid, base, sizeof(base));
	oid[n++] = arc1;
	if (arc2 != 0)
		oid[n++] = arc2;
	cvm_mock_der_tlv(w, CVM_ASN1_OID, oid, n);
}

/* One SEQUENCE { OID, value } where the value is already in `val`. */
static void der_entry(struct cvm_wr *w, uint8_t arc1, uint8_t arc2, struct cvm_wr *val)
{
	struct cvm_wr e;

	cvm_wr_init(&e, 4096);
	der_sgx_oid(&e, arc1, arc2);
	if (val->err)
		e.err = true;
	else
		cvm_wr_bytes(&e, val->buf, val->len);
	cvm_wr_cleanup(val);
	der_wrap(w, CVM_ASN1_SEQUENCE, &e);
}

static void der_entry_octets(struct cvm_wr *w, uint8_t arc1, uint8_t arc2, const uint8_t *p, size_t n)
{
	struct cvm_wr v;

	cvm_wr_init(&v, 4096);
	cvm_mock_der_tlv(&v, CVM_ASN1_OCTET_STRING, p, n);
	der_entry(w, arc1, arc2, &v);
}

static void der_entry_uint(struct cvm_wr *w, uint8_t arc1, uint8_t arc2, uint8_t tag, uint64_t x)
{
	struct cvm_wr v;

	cvm_wr_init(&v, 64);
	cvm_mock_der_uint(&v, tag, x);
	der_entry(w, arc1, arc2, &v);
}

/* sgx_extension_der builds the value of extension 1.2.840.113741.1.13.1. */
static int sgx_extension_der(const struct cvm_mockpki_opts *o, uint8_t **out, size_t *out_len)
{
	struct cvm_wr top, tcb, tcb_seq;

	cvm_wr_init(&top, 4096);
	der_entry_octets(&top, 1, 0, o->ppid, sizeof(o->ppid));

	cvm_wr_init(&tcb, 4096);
	for (uint8_t i = 0; i < 16; i++)
		der_entry_uint(&tcb, 2, (uint8_t)(i + 1), CVM_ASN1_INTEGER, o->cpu_svn[i]);
	der_entry_uint(&tcb, 2, 17, CVM_ASN1_INTEGER, o->pce_svn);
	der_entry_octets(&tcb, 2, 18, o->cpu_svn, sizeof(o->cpu_svn));
	cvm_wr_init(&tcb_seq, 4096);
	der_wrap(&tcb_seq, CVM_ASN1_SEQUENCE, &tcb);
	der_entry(&top, 2, 0, &tcb_seq);

	der_entry_octets(&top, 3, 0, o->pce_id, sizeof(o->pce_id));
	der_entry_octets(&top, 4, 0, o->fmspc, sizeof(o->fmspc));
	der_entry_uint(&top, 5, 0, CVM_ASN1_ENUMERATED, 0); /* SGX type: Standard */

	{
		struct cvm_wr outer;

		cvm_wr_init(&outer, 4096);
		der_wrap(&outer, CVM_ASN1_SEQUENCE, &top);
		return cvm_wr_finish(&outer, out, out_len);
	}
}

/* ---- certificates and CRLs --------------------------------------------- */

/* The SGX extension's OID (Intel's PCK certificate profile). */
#define SGX_EXT_OID "1.2.840.113741.1.13.1"

static int cert_make(struct cvm_mockpki *pki, enum cvm_mockpki_cert which)
{
	const struct cert_spec *spec = &cert_specs[which];
	const struct cvm_mockpki_opts *o = &pki->o;
	struct cvm_name_attr name[CVM_MOCK_NAME_MAX];
	struct cvm_issue_ext sgx = {.oid = SGX_EXT_OID};
	struct cvm_mock_cert c = {
	    .name = name,
	    .name_count = cvm_mock_intel_name(spec->cn, name),
	    .serial = o->serial[which],
	    .not_before = o->cert[which].from,
	    .not_after = o->cert[which].to,
	    .basic_constraints = spec->basic_constraints,
	    .key_usage = spec->key_usage,
	    .key_ids = true,
	    .marker = which == CVM_MOCKPKI_ROOT,
	};
	uint8_t *der = NULL;
	int r;

	if (which == CVM_MOCKPKI_PCK_LEAF) {
		r = sgx_extension_der(o, &der, &sgx.der_len);
		if (r != CVM_OK)
			return r;
		sgx.der = der;
		c.exts = &sgx;
		c.ext_count = 1;
	}
	r = cvm_mock_cert_issue(&c, pki->key[which],
	                        which == CVM_MOCKPKI_ROOT ? NULL : pki->cert[spec->issuer],
	                        pki->key[spec->issuer], &pki->cert[which]);
	free(der);
	return r;
}

/* crl_make builds the CRL of `issuer` listing `revoked`, signed by the
 * issuer's key, as DER: Intel's CRLs carry a CRL number and the issuer's
 * key identifier. */
static int crl_make(struct cvm_mockpki *pki, enum cvm_mockpki_cert issuer,
                    const struct cvm_mockpki_window *win, const uint64_t *revoked, size_t revoked_count,
                    enum cvm_mockpki_file f)
{
	const struct cvm_issue_crl crl = {
	    .this_update = win->from,
	    .next_update = win->to,
	    .revoked = revoked,
	    .revoked_count = revoked_count,
	    .number = 1,
	    .authority_key_id = true,
	    .sig_alg = cvm_mock_sig_alg(pki->key[issuer]),
	};

	return cvm_issue_crl(&crl, pki->cert[issuer], pki->key[issuer], &pki->file[f], &pki->file_len[f]);
}

static int crls_make(struct cvm_mockpki *pki)
{
	const struct cvm_mockpki_opts *o = &pki->o;
	uint64_t list[CVM_MOCKPKI_REVOKED_MAX + 2];
	size_t n;
	int r;

	memcpy(list, o->other_revoked, o->other_revoked_count * sizeof(list[0]));
	n = o->other_revoked_count;
	if (o->revoke[CVM_MOCKPKI_PCK_CA])
		list[n++] = o->serial[CVM_MOCKPKI_PCK_CA];
	if (o->revoke[CVM_MOCKPKI_TCB_SIGNER])
		list[n++] = o->serial[CVM_MOCKPKI_TCB_SIGNER];
	r = crl_make(pki, CVM_MOCKPKI_ROOT, &o->root_crl, list, n, CVM_MOCKPKI_F_ROOT_CRL);
	if (r != CVM_OK)
		return r;
	n = o->other_revoked_count;
	if (o->revoke[CVM_MOCKPKI_PCK_LEAF])
		list[n++] = o->serial[CVM_MOCKPKI_PCK_LEAF];
	return crl_make(pki, CVM_MOCKPKI_PCK_CA, &o->pck_crl, list, n, CVM_MOCKPKI_F_PCK_CRL);
}

/* ---- signed JSON ------------------------------------------------------- */

static void wr_advisories(struct cvm_wr *w, const struct cvm_mockpki_advisories *a)
{
	if (a->count == 0)
		return;
	cvm_wr_str(w, ",\"advisoryIDs\":[");
	for (size_t i = 0; i < a->count; i++)
		cvm_wr_fmt(w, "%s\"%s\"", i ? "," : "", a->ids[i]);
	cvm_wr_str(w, "]");
}

/* One {"tcb":{"isvsvn":N},"tcbDate":...,"tcbStatus":...} entry. */
static int wr_isv_levels(struct cvm_wr *w, const struct cvm_mockpki_qe_level *levels, size_t count)
{
	char date[21];
	int r;

	cvm_wr_str(w, "\"tcbLevels\":[");
	for (size_t i = 0; i < count; i++) {
		r = iso8601(levels[i].tcb_date, date);
		if (r != CVM_OK)
			return r;
		cvm_wr_fmt(w, "%s{\"tcb\":{\"isvsvn\":%u},\"tcbDate\":\"%s\",\"tcbStatus\":\"%s\"",
		           i ? "," : "", (unsigned)levels[i].isv_svn, date, levels[i].status);
		wr_advisories(w, &levels[i].adv);
		cvm_wr_str(w, "}");
	}
	cvm_wr_str(w, "]");
	return CVM_OK;
}

static void wr_components(struct cvm_wr *w, const char *key, const uint8_t svn[16])
{
	cvm_wr_fmt(w, "\"%s\":[", key);
	for (size_t i = 0; i < 16; i++)
		cvm_wr_fmt(w, "%s{\"svn\":%u}", i ? "," : "", (unsigned)svn[i]);
	cvm_wr_str(w, "]");
}

static void wr_module(struct cvm_wr *w, const struct cvm_mockpki_opts *o)
{
	cvm_wr_str(w, "\"mrsigner\":\"");
	wr_hex_upper(w, o->module_mrsigner, sizeof(o->module_mrsigner));
	cvm_wr_str(w, "\",\"attributes\":\"");
	wr_hex_upper(w, o->module_attributes, sizeof(o->module_attributes));
	cvm_wr_str(w, "\",\"attributesMask\":\"");
	wr_hex_upper(w, o->module_attributes_mask, sizeof(o->module_attributes_mask));
	cvm_wr_str(w, "\"");
}

static int tcb_info_text(const struct cvm_mockpki_opts *o, struct cvm_wr *w)
{
	bool tdx = o->tee == CVM_TEE_TDX;
	char issue[21], next[21], date[21];
	int r;

	r = iso8601(o->tcb_info.from, issue);
	if (r != CVM_OK)
		return r;
	r = iso8601(o->tcb_info.to, next);
	if (r != CVM_OK)
		return r;
	cvm_wr_fmt(w, "{\"id\":\"%s\",\"version\":3,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\",\"fmspc\":\"",
	           tdx ? "TDX" : "SGX", issue, next);
	wr_hex_upper(w, o->tcb_fmspc, sizeof(o->tcb_fmspc));
	cvm_wr_str(w, "\",\"pceId\":\"");
	wr_hex_upper(w, o->tcb_pce_id, sizeof(o->tcb_pce_id));
	cvm_wr_fmt(w, "\",\"tcbType\":0,\"tcbEvaluationDataNumber\":%u,", (unsigned)o->tcb_eval_num);
	if (tdx) {
		cvm_wr_str(w, "\"tdxModule\":{");
		wr_module(w, o);
		cvm_wr_fmt(w, "},\"tdxModuleIdentities\":[{\"id\":\"TDX_%02X\",", (unsigned)o->module_major);
		wr_module(w, o);
		cvm_wr_str(w, ",");
		r = wr_isv_levels(w, o->module_levels, o->module_level_count);
		if (r != CVM_OK)
			return r;
		cvm_wr_str(w, "}],");
	}
	cvm_wr_str(w, "\"tcbLevels\":[");
	for (size_t i = 0; i < o->level_count; i++) {
		const struct cvm_mockpki_tcb_level *l = &o->levels[i];

		r = iso8601(l->tcb_date, date);
		if (r != CVM_OK)
			return r;
		cvm_wr_fmt(w, "%s{\"tcb\":{", i ? "," : "");
		wr_components(w, "sgxtcbcomponents", l->sgx_svn);
		cvm_wr_fmt(w, ",\"pcesvn\":%u", (unsigned)l->pce_svn);
		if (tdx) {
			cvm_wr_str(w, ",");
			wr_components(w, "tdxtcbcomponents", l->tdx_svn);
		}
		cvm_wr_fmt(w, "},\"tcbDate\":\"%s\",\"tcbStatus\":\"%s\"", date, l->status);
		wr_advisories(w, &l->adv);
		cvm_wr_str(w, "}");
	}
	cvm_wr_str(w, "]}");
	return CVM_OK;
}

static int qe_identity_text(const struct cvm_mockpki_opts *o, struct cvm_wr *w)
{
	char issue[21], next[21];
	int r;

	r = iso8601(o->qe_identity.from, issue);
	if (r != CVM_OK)
		return r;
	r = iso8601(o->qe_identity.to, next);
	if (r != CVM_OK)
		return r;
	cvm_wr_fmt(w,
	           "{\"id\":\"%s\",\"version\":2,\"issueDate\":\"%s\",\"nextUpdate\":\"%s\","
	           "\"tcbEvaluationDataNumber\":%u,\"miscselect\":\"%08X\",\"miscselectMask\":\"%08X\","
	           "\"attributes\":\"",
	           o->tee == CVM_TEE_TDX ? "TD_QE" : "QE", issue, next, (unsigned)o->tcb_eval_num,
	           (unsigned)o->qe_miscselect, (unsigned)o->qe_miscselect_mask);
	wr_hex_upper(w, o->qe_attributes, sizeof(o->qe_attributes));
	cvm_wr_str(w, "\",\"attributesMask\":\"");
	wr_hex_upper(w, o->qe_attributes_mask, sizeof(o->qe_attributes_mask));
	cvm_wr_str(w, "\",\"mrsigner\":\"");
	wr_hex_upper(w, o->qe_mrsigner, sizeof(o->qe_mrsigner));
	cvm_wr_fmt(w, "\",\"isvprodid\":%u,", (unsigned)o->qe_isv_prod_id);
	r = wr_isv_levels(w, o->qe_levels, o->qe_level_count);
	if (r != CVM_OK)
		return r;
	cvm_wr_str(w, "}");
	return CVM_OK;
}

int cvm_mockpki_json_text(const struct cvm_mockpki_opts *o, enum cvm_mockpki_file f, uint8_t **out,
                          size_t *out_len)
{
	struct cvm_wr text;
	int r;

	*out = NULL;
	*out_len = 0;
	if (f != CVM_MOCKPKI_F_TCB_INFO && f != CVM_MOCKPKI_F_QE_IDENTITY)
		return CVM_E_INVAL;
	cvm_wr_init(&text, CVM_MOCKPKI_JSON_MAX);
	r = f == CVM_MOCKPKI_F_TCB_INFO ? tcb_info_text(o, &text) : qe_identity_text(o, &text);
	if (r != CVM_OK) {
		cvm_wr_cleanup(&text);
		return r;
	}
	return cvm_wr_finish(&text, out, out_len);
}

int cvm_mockpki_signed_body(const struct cvm_privkey *key, const char *member, const uint8_t *text,
                            size_t len, uint8_t **out, size_t *out_len)
{
	uint8_t sig[64];
	struct cvm_wr w;
	char hex[129];
	int r;

	*out = NULL;
	*out_len = 0;
	r = cvm_mock_sign_p256(key, text, len, sig);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < sizeof(sig); i++)
		(void)snprintf(hex + 2 * i, 3, "%02x", sig[i]);
	cvm_wr_init(&w, CVM_MOCKPKI_JSON_MAX);
	cvm_wr_fmt(&w, "{\"%s\":", member);
	cvm_wr_bytes(&w, text, len);
	cvm_wr_fmt(&w, ",\"signature\":\"%s\"}", hex);
	return cvm_wr_finish(&w, out, out_len);
}

/* ---- the PKI ----------------------------------------------------------- */

static int opts_check(const struct cvm_mockpki_opts *o)
{
	if (o->tee != CVM_TEE_TDX && o->tee != CVM_TEE_SGX)
		return CVM_E_INVAL;
	if (o->level_count > CVM_MOCKPKI_LEVELS_MAX || o->qe_level_count > CVM_MOCKPKI_LEVELS_MAX ||
	    o->module_level_count > CVM_MOCKPKI_LEVELS_MAX ||
	    o->other_revoked_count > CVM_MOCKPKI_REVOKED_MAX)
		return CVM_E_INVAL;
	for (size_t i = 0; i < CVM_MOCKPKI_CERT_COUNT; i++)
		if (o->serial[i] == 0)
			return CVM_E_INVAL;
	for (size_t i = 0; i < o->level_count; i++)
		if (o->levels[i].status == NULL || o->levels[i].adv.count > CVM_MOCKPKI_ADVISORIES_MAX)
			return CVM_E_INVAL;
	for (size_t i = 0; i < o->qe_level_count; i++)
		if (o->qe_levels[i].status == NULL || o->qe_levels[i].adv.count > CVM_MOCKPKI_ADVISORIES_MAX)
			return CVM_E_INVAL;
	for (size_t i = 0; i < o->module_level_count; i++)
		if (o->module_levels[i].status == NULL ||
		    o->module_levels[i].adv.count > CVM_MOCKPKI_ADVISORIES_MAX ||
		    o->module_levels[i].isv_svn > 255)
			return CVM_E_INVAL;
	return CVM_OK;
}

void cvm_mockpki_free(struct cvm_mockpki *pki)
{
	if (pki == NULL)
		return;
	for (size_t i = 0; i < CVM_MOCKPKI_CERT_COUNT; i++) {
		cvm_privkey_free(pki->key[i]);
		cvm_cert_free(pki->cert[i]);
	}
	for (size_t i = 0; i < CVM_MOCKPKI_F_COUNT; i++)
		free(pki->file[i]);
	free(pki->pck_chain);
	free(pki);
}

/* signed_json makes file `f` (TCB info or QE identity) from the options,
 * signed by the TCB signing key. */
static int signed_json(struct cvm_mockpki *pki, enum cvm_mockpki_file f, const char *member)
{
	uint8_t *text = NULL;
	size_t len = 0;
	int r;

	r = cvm_mockpki_json_text(&pki->o, f, &text, &len);
	if (r == CVM_OK)
		r = cvm_mockpki_signed_body(pki->key[CVM_MOCKPKI_TCB_SIGNER], member, text, len,
		                            &pki->file[f], &pki->file_len[f]);
	free(text);
	return r;
}

/* build_collateral makes everything that is signed afresh from the keys and
 * certificates: CRLs, issuer chains, the quote's PCK chain, TCB info and QE
 * identity. */
static int build_collateral(struct cvm_mockpki *pki)
{
	struct cvm_cert *chain[3];
	const uint8_t *root;
	size_t root_len;
	int r;

	r = crls_make(pki);
	if (r != CVM_OK)
		return r;
	chain[0] = pki->cert[CVM_MOCKPKI_TCB_SIGNER];
	chain[1] = pki->cert[CVM_MOCKPKI_ROOT];
	r = cvm_mock_pem_chain(chain, 2, false, &pki->file[CVM_MOCKPKI_F_TCB_INFO_CHAIN],
	                       &pki->file_len[CVM_MOCKPKI_F_TCB_INFO_CHAIN]);
	if (r != CVM_OK)
		return r;
	r = cvm_mock_pem_chain(chain, 2, false, &pki->file[CVM_MOCKPKI_F_QE_IDENTITY_CHAIN],
	                       &pki->file_len[CVM_MOCKPKI_F_QE_IDENTITY_CHAIN]);
	if (r != CVM_OK)
		return r;
	chain[0] = pki->cert[CVM_MOCKPKI_PCK_CA];
	r = cvm_mock_pem_chain(chain, 2, false, &pki->file[CVM_MOCKPKI_F_PCK_CRL_CHAIN],
	                       &pki->file_len[CVM_MOCKPKI_F_PCK_CRL_CHAIN]);
	if (r != CVM_OK)
		return r;
	chain[0] = pki->cert[CVM_MOCKPKI_PCK_LEAF];
	chain[1] = pki->cert[CVM_MOCKPKI_PCK_CA];
	chain[2] = pki->cert[CVM_MOCKPKI_ROOT];
	r = cvm_mock_pem_chain(chain, 3, true, &pki->pck_chain, &pki->pck_chain_len);
	if (r != CVM_OK)
		return r;
	cvm_cert_der(pki->cert[CVM_MOCKPKI_ROOT], &root, &root_len);
	r = cvm_mock_copy_out(root, root_len, &pki->file[CVM_MOCKPKI_F_ROOT_DER],
	                      &pki->file_len[CVM_MOCKPKI_F_ROOT_DER]);
	if (r != CVM_OK)
		return r;

	r = signed_json(pki, CVM_MOCKPKI_F_TCB_INFO, "tcbInfo");
	if (r != CVM_OK)
		return r;
	return signed_json(pki, CVM_MOCKPKI_F_QE_IDENTITY, "enclaveIdentity");
}

int cvm_mockpki_new(const struct cvm_mockpki_opts *o, struct cvm_mockpki **out)
{
	struct cvm_mockpki *pki = NULL;
	int r;

	*out = NULL;
	r = opts_check(o);
	if (r != CVM_OK)
		return r;
	pki = calloc(1, sizeof(*pki));
	if (pki == NULL)
		return CVM_E_NOMEM;
	pki->o = *o;
	for (size_t i = 0; i < CVM_MOCKPKI_CERT_COUNT; i++) {
		r = cvm_privkey_generate(CVM_PRIVKEY_P256, 0, &pki->key[i]);
		if (r != CVM_OK)
			goto out;
	}
	for (size_t i = 0; i < CVM_MOCKPKI_CERT_COUNT; i++) {
		r = cert_make(pki, (enum cvm_mockpki_cert)i);
		if (r != CVM_OK)
			goto out;
	}
	r = build_collateral(pki);
	if (r != CVM_OK)
		goto out;
	*out = pki;
	pki = NULL; /* transferred */
out:
	cvm_mockpki_free(pki);
	return r;
}

void cvm_mockpki_root_der(const struct cvm_mockpki *pki, const uint8_t **der, size_t *der_len)
{
	*der = pki->file[CVM_MOCKPKI_F_ROOT_DER];
	*der_len = pki->file_len[CVM_MOCKPKI_F_ROOT_DER];
}

const struct cvm_mockpki_opts *cvm_mockpki_opts_of(const struct cvm_mockpki *pki)
{
	return &pki->o;
}

static int path_join(char *buf, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? CVM_E_INVAL : CVM_OK;
}

int cvm_mockpki_write_collateral(const struct cvm_mockpki *pki, const char *dir)
{
	char path[4096];
	int r;

	for (size_t i = 0; i < CVM_MOCKPKI_F_COUNT; i++) {
		r = path_join(path, sizeof(path), dir, file_names[i]);
		if (r != CVM_OK)
			return r;
		r = cvm_file_write(path, pki->file[i], pki->file_len[i], 0644);
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

/* ---- quotes ------------------------------------------------------------ */

static void wr_sgx_report(struct cvm_wr *w, const struct cvm_sgx_report *s)
{
	cvm_wr_bytes(w, s->cpu_svn, sizeof(s->cpu_svn));
	cvm_wr_u32le(w, s->misc_select);
	cvm_wr_zeros(w, 12);
	cvm_wr_bytes(w, s->isv_ext_prod_id, sizeof(s->isv_ext_prod_id));
	cvm_wr_bytes(w, s->attributes, sizeof(s->attributes));
	cvm_wr_bytes(w, s->mr_enclave, sizeof(s->mr_enclave));
	cvm_wr_zeros(w, 32);
	cvm_wr_bytes(w, s->mr_signer, sizeof(s->mr_signer));
	cvm_wr_zeros(w, 32);
	cvm_wr_bytes(w, s->config_id, sizeof(s->config_id));
	cvm_wr_u16le(w, s->isv_prod_id);
	cvm_wr_u16le(w, s->isv_svn);
	cvm_wr_u16le(w, s->config_svn);
	cvm_wr_zeros(w, 42);
	cvm_wr_bytes(w, s->isv_family_id, sizeof(s->isv_family_id));
	cvm_wr_bytes(w, s->report_data, sizeof(s->report_data));
}

static void wr_td10_report(struct cvm_wr *w, const struct cvm_tdx_report *t)
{
	cvm_wr_bytes(w, t->tee_tcb_svn, sizeof(t->tee_tcb_svn));
	cvm_wr_bytes(w, t->mr_seam, sizeof(t->mr_seam));
	cvm_wr_bytes(w, t->mr_signer_seam, sizeof(t->mr_signer_seam));
	cvm_wr_bytes(w, t->seam_attributes, sizeof(t->seam_attributes));
	cvm_wr_bytes(w, t->td_attributes, sizeof(t->td_attributes));
	cvm_wr_bytes(w, t->xfam, sizeof(t->xfam));
	cvm_wr_bytes(w, t->mr_td, sizeof(t->mr_td));
	cvm_wr_bytes(w, t->mr_config_id, sizeof(t->mr_config_id));
	cvm_wr_bytes(w, t->mr_owner, sizeof(t->mr_owner));
	cvm_wr_bytes(w, t->mr_owner_config, sizeof(t->mr_owner_config));
	for (size_t i = 0; i < 4; i++)
		cvm_wr_bytes(w, t->rtmr[i], sizeof(t->rtmr[i]));
	cvm_wr_bytes(w, t->report_data, sizeof(t->report_data));
}

/* qe_part writes the QE report, its signature, the auth data and the PCK
 * chain (certification data type 5): the contents of type 6, or the tail of
 * an SGX v3 signature. */
static int qe_part(const struct cvm_privkey *pck_key, const uint8_t *pck_chain, size_t pck_chain_len,
                   const struct cvm_mockpki_quote_opts *q, const uint8_t attest_xy[64], struct cvm_wr *w)
{
	struct cvm_sgx_report qe = q->qe;
	uint8_t raw[CVM_SGX_REPORT_LEN], sig[64], *p = NULL;
	size_t len = 0;
	struct cvm_wr rw;
	uint8_t bound[64 + sizeof(q->auth_data)];
	int r;

	memcpy(bound, attest_xy, 64);
	memcpy(bound + 64, q->auth_data, sizeof(q->auth_data));
	memset(qe.report_data, 0, sizeof(qe.report_data));
	cvm_sha256(bound, sizeof(bound), qe.report_data);
	cvm_wr_init_fixed(&rw, raw, sizeof(raw));
	wr_sgx_report(&rw, &qe);
	r = cvm_wr_finish(&rw, &p, &len);
	if (r != CVM_OK || len != sizeof(raw))
		return CVM_E_INTERNAL;
	r = cvm_mock_sign_p256(pck_key, raw, sizeof(raw), sig);
	if (r != CVM_OK)
		return r;
	cvm_wr_bytes(w, raw, sizeof(raw));
	cvm_wr_bytes(w, sig, sizeof(sig));
	cvm_wr_u16le(w, (uint16_t)sizeof(q->auth_data));
	cvm_wr_bytes(w, q->auth_data, sizeof(q->auth_data));
	cvm_wr_u16le(w, CVM_CERT_DATA_PCK_CHAIN);
	cvm_wr_u32le(w, (uint32_t)pck_chain_len);
	cvm_wr_bytes(w, pck_chain, pck_chain_len);
	return CVM_OK;
}

int cvm_mockpki_quote(const struct cvm_mockpki *pki, const struct cvm_mockpki_quote_opts *q, uint8_t **out,
                      size_t *out_len)
{
	return cvm_mockpki_quote_with(pki, q, pki->key[CVM_MOCKPKI_PCK_LEAF], pki->pck_chain,
	                              pki->pck_chain_len, out, out_len);
}

int cvm_mockpki_quote_with(const struct cvm_mockpki *pki, const struct cvm_mockpki_quote_opts *q,
                           const struct cvm_privkey *pck_key, const uint8_t *pck_chain, size_t pck_chain_len,
                           uint8_t **out, size_t *out_len)
{
	bool tdx = pki->o.tee == CVM_TEE_TDX;
	struct cvm_wr w, sigdata, inner;
	struct cvm_privkey *ak = NULL;
	uint8_t xy[64], sig[64], *tail = NULL;
	size_t tail_len = 0;
	int r;

	*out = NULL;
	*out_len = 0;
	if (q == NULL)
		q = &pki->o.quote;
	cvm_wr_init(&w, CVM_QUOTE_MAX);
	cvm_wr_init(&sigdata, CVM_QUOTE_MAX);
	cvm_wr_init(&inner, CVM_QUOTE_MAX);

	/* header and body: what the attestation key signs */
	cvm_wr_u16le(&w, tdx ? 4 : 3);
	cvm_wr_u16le(&w, CVM_ATT_KEY_ECDSA_P256);
	cvm_wr_u32le(&w, tdx ? CVM_TEE_TYPE_TDX : CVM_TEE_TYPE_SGX);
	cvm_wr_u16le(&w, q->qe_svn);
	cvm_wr_u16le(&w, q->pce_svn);
	cvm_wr_bytes(&w, CVM_INTEL_QE_VENDOR_ID, sizeof(CVM_INTEL_QE_VENDOR_ID));
	cvm_wr_bytes(&w, q->user_data, sizeof(q->user_data));
	if (tdx) {
		struct cvm_tdx_report td = q->td;

		if (q->is_debug)
			td.td_attributes[0] |= 0x01;
		wr_td10_report(&w, &td);
	} else {
		struct cvm_sgx_report app = q->app;

		if (q->is_debug)
			app.attributes[0] |= CVM_SGX_ATTR_DEBUG;
		wr_sgx_report(&w, &app);
	}
	if (w.err) {
		r = CVM_E_TOO_LARGE;
		goto out;
	}

	r = cvm_privkey_generate(CVM_PRIVKEY_P256, 0, &ak);
	if (r != CVM_OK)
		goto out;
	r = cvm_privkey_p256_public(ak, xy);
	if (r != CVM_OK)
		goto out;
	r = cvm_mock_sign_p256(ak, w.buf, w.len, sig);
	if (r != CVM_OK)
		goto out;

	cvm_wr_bytes(&sigdata, sig, sizeof(sig));
	cvm_wr_bytes(&sigdata, xy, sizeof(xy));
	if (tdx) {
		r = qe_part(pck_key, pck_chain, pck_chain_len, q, xy, &inner);
		if (r != CVM_OK)
			goto out;
		cvm_wr_u16le(&sigdata, CVM_CERT_DATA_QE_REPORT);
		cvm_wr_u32le(&sigdata, (uint32_t)inner.len);
		cvm_wr_bytes(&sigdata, inner.buf, inner.len);
		if (inner.err)
			sigdata.err = true;
	} else {
		r = qe_part(pck_key, pck_chain, pck_chain_len, q, xy, &sigdata);
		if (r != CVM_OK)
			goto out;
	}
	r = cvm_wr_finish(&sigdata, &tail, &tail_len);
	if (r != CVM_OK)
		goto out;
	cvm_wr_u32le(&w, (uint32_t)tail_len);
	cvm_wr_bytes(&w, tail, tail_len);
	r = cvm_wr_finish(&w, out, out_len);
out:
	free(tail);
	cvm_privkey_free(ak);
	cvm_wr_cleanup(&inner);
	cvm_wr_cleanup(&sigdata);
	cvm_wr_cleanup(&w);
	return r;
}

/* ---- accessors ---------------------------------------------------------- */

const char *cvm_mockpki_file_name(enum cvm_mockpki_file f)
{
	if ((unsigned)f >= CVM_MOCKPKI_F_COUNT)
		return NULL;
	return file_names[f];
}

void cvm_mockpki_file(const struct cvm_mockpki *pki, enum cvm_mockpki_file f, const uint8_t **p, size_t *len)
{
	*p = NULL;
	*len = 0;
	if ((unsigned)f >= CVM_MOCKPKI_F_COUNT)
		return;
	*p = pki->file[f];
	*len = pki->file_len[f];
}

struct cvm_privkey *cvm_mockpki_key(const struct cvm_mockpki *pki, enum cvm_mockpki_cert which)
{
	return (unsigned)which < CVM_MOCKPKI_CERT_COUNT ? pki->key[which] : NULL;
}

struct cvm_cert *cvm_mockpki_x509(const struct cvm_mockpki *pki, enum cvm_mockpki_cert which)
{
	return (unsigned)which < CVM_MOCKPKI_CERT_COUNT ? pki->cert[which] : NULL;
}

/* ---- keeping a PKI in a folder ------------------------------------------ */

static const char *const key_stems[CVM_MOCKPKI_CERT_COUNT] = {
    [CVM_MOCKPKI_ROOT] = "root",
    [CVM_MOCKPKI_PCK_CA] = "pck_ca",
    [CVM_MOCKPKI_PCK_LEAF] = "pck",
    [CVM_MOCKPKI_TCB_SIGNER] = "tcb_signer",
};

static int stem_path(char *buf, size_t cap, const char *dir, const char *stem, const char *ext)
{
	int n = snprintf(buf, cap, "%s/%s.%s", dir, stem, ext);

	return n < 0 || (size_t)n >= cap ? CVM_E_INVAL : CVM_OK;
}

int cvm_mockpki_save_keys(const struct cvm_mockpki *pki, const char *dir)
{
	char path[4096];
	int r;

	r = cvm_mock_dir_check(dir);
	for (size_t i = 0; i < CVM_MOCKPKI_CERT_COUNT && r == CVM_OK; i++) {
		r = stem_path(path, sizeof(path), dir, key_stems[i], "key");
		if (r == CVM_OK)
			r = cvm_privkey_save_pem(pki->key[i], path);
		if (r == CVM_OK)
			r = stem_path(path, sizeof(path), dir, key_stems[i], "pem");
		if (r == CVM_OK)
			r = cvm_mock_cert_save(pki->cert[i], path);
	}
	return r;
}

int cvm_mockpki_load(const struct cvm_mockpki_opts *o, const char *dir, struct cvm_mockpki **out)
{
	struct cvm_mockpki *pki = NULL;
	char path[4096];
	int r;

	*out = NULL;
	r = opts_check(o);
	if (r != CVM_OK)
		return r;
	pki = calloc(1, sizeof(*pki));
	if (pki == NULL)
		return CVM_E_NOMEM;
	pki->o = *o;
	for (size_t i = 0; i < CVM_MOCKPKI_CERT_COUNT; i++) {
		r = stem_path(path, sizeof(path), dir, key_stems[i], "key");
		if (r == CVM_OK)
			r = cvm_privkey_load_pem(path, &pki->key[i]);
		if (r == CVM_E_UNSUPPORTED)
			r = CVM_E_FORMAT; /* a key of no kind this PKI holds */
		if (r == CVM_OK)
			r = stem_path(path, sizeof(path), dir, key_stems[i], "pem");
		if (r == CVM_OK)
			r = cvm_mock_cert_load(path, &pki->cert[i]);
		if (r != CVM_OK)
			goto out;
		if (cvm_privkey_type(pki->key[i]) != CVM_PRIVKEY_P256 ||
		    !cvm_privkey_matches_cert(pki->key[i], pki->cert[i])) {
			r = CVM_E_FORMAT;
			goto out;
		}
	}
	for (size_t i = 0; i < CVM_MOCKPKI_CERT_COUNT; i++) {
		if (cvm_cert_check_issued(pki->cert[i], pki->cert[cert_specs[i].issuer]) != CVM_OK) {
			r = CVM_E_FORMAT;
			goto out;
		}
	}
	r = build_collateral(pki);
	if (r != CVM_OK)
		goto out;
	*out = pki;
	pki = NULL; /* transferred */
out:
	cvm_mockpki_free(pki);
	return r;
}

/* ---- telling simulated evidence apart ----------------------------------- */

bool cvm_mockpki_der_is_simulated(const uint8_t *der, size_t len)
{
	return cvm_cert_der_has_ext(der, len, CVM_MOCKPKI_MARKER_OID);
}

bool cvm_mockpki_pem_has_simulated(const uint8_t *pem, size_t len)
{
	return cvm_certs_pem_any_has_ext(pem, len, CVM_MOCKPKI_MARKER_OID, 8);
}

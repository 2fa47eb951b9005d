/* PCK certificates by platform (Intel PCS API v4 "Get PCK Certificates"):
 * the answer's parser, the verification of every certificate in it, and the
 * selection of the one certificate for a raw TCB, as Intel's PCK
 * certificate selection picks it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/report.h>

#include "coll_int.h"
#include "core/core_lib.h"
#include "dcap/dcap_lib.h"

#define NOT_AVAILABLE "Not available"

void coll_pck_list_free(struct coll_pck_list *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->count; i++)
		free(l->e[i].pem);
	free(l);
}

/* tcb_read reads {"sgxtcbcomp01svn".."sgxtcbcomp16svn", "pcesvn"}: exactly
 * those keys, each an integer in range. */
static bool tcb_read(const json_t *tcb, struct coll_pck_entry *e)
{
	char name[20];
	json_t *v;

	if (!json_is_object(tcb) || json_object_size(tcb) != 17)
		return false;
	for (unsigned i = 0; i < 16; i++) {
		(void)snprintf(name, sizeof(name), "sgxtcbcomp%02usvn", i + 1);
		v = json_object_get(tcb, name);
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 255)
			return false;
		e->tcb_svn[i] = (uint8_t)json_integer_value(v);
	}
	v = json_object_get(tcb, "pcesvn");
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 65535)
		return false;
	e->pcesvn = (uint16_t)json_integer_value(v);
	return true;
}

int coll_pck_list_parse(const uint8_t *body, size_t len, struct coll_pck_list **out, char *err,
                        size_t err_len)
{
	struct coll_pck_list *l = NULL;
	json_t *root = NULL;
	json_error_t jerr;
	size_t n;
	int r;

	*out = NULL;
	if (body == NULL || len == 0)
		return cvm_err_set(err, err_len, CVM_E_FORMAT, "the PCK certificate list is empty");
	if (len > COLL_PCK_CERTS_BODY_MAX)
		return cvm_err_set(err, err_len, CVM_E_TOO_LARGE,
		                   "the PCK certificate list is larger than %zu bytes",
		                   COLL_PCK_CERTS_BODY_MAX);
	root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_array(root)) {
		r = cvm_err_set(err, err_len, CVM_E_FORMAT,
		                "the PCK certificate list is not a JSON array of {tcb, tcbm, cert}");
		goto out;
	}
	n = json_array_size(root);
	if (n == 0 || n > CVM_CACHE_PCK_CERTS_MAX) {
		r = cvm_err_set(err, err_len, n == 0 ? CVM_E_FORMAT : CVM_E_TOO_LARGE,
		                "the PCK certificate list holds %zu entries (1 to %u allowed)", n,
		                (unsigned)CVM_CACHE_PCK_CERTS_MAX);
		goto out;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(root, i);
		json_t *tcbm = json_object_get(o, "tcbm"), *cert = json_object_get(o, "cert");
		struct coll_pck_entry *e = &l->e[i];
		const char *s;
		size_t sl;

		l->count = i + 1;
		if (!json_is_object(o) || json_object_size(o) != 3 ||
		    !tcb_read(json_object_get(o, "tcb"), e) || !json_is_string(tcbm) ||
		    !json_is_string(cert)) {
			r = cvm_err_set(err, err_len, CVM_E_FORMAT,
			                "PCK certificate list entry %zu is not {tcb: {sgxtcbcomp01svn.."
			                "sgxtcbcomp16svn, pcesvn}, tcbm, cert}",
			                i);
			goto out;
		}
		s = json_string_value(tcbm);
		sl = json_string_length(tcbm);
		if (sl != 2 * sizeof(e->tcbm) ||
		    cvm_hex_decode_exact(s, sl, e->tcbm, sizeof(e->tcbm)) != CVM_OK) {
			r = cvm_err_set(err, err_len, CVM_E_FORMAT,
			                "PCK certificate list entry %zu: tcbm is not 36 hex digits", i);
			goto out;
		}
		memcpy(e->tcbm_hex, s, sl + 1);
		s = json_string_value(cert);
		sl = json_string_length(cert);
		if (sl == strlen(NOT_AVAILABLE) && memcmp(s, NOT_AVAILABLE, sl) == 0)
			continue;
		if (sl > 3 * CVM_DCAP_CERT_MAX) {
			r = cvm_err_set(
			    err, err_len, CVM_E_TOO_LARGE,
			    "PCK certificate list entry %zu: the certificate is larger than %zu bytes", i,
			    CVM_DCAP_CERT_MAX);
			goto out;
		}
		e->pem = malloc(sl + 1);
		if (e->pem == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		if (!coll_url_decode(s, sl, e->pem, sl + 1, &e->pem_len) || e->pem_len > CVM_DCAP_CERT_MAX ||
		    strncmp(e->pem, "-----BEGIN CERTIFICATE-----", 27) != 0) {
			r = cvm_err_set(err, err_len, CVM_E_FORMAT,
			                "PCK certificate list entry %zu: cert is neither \"" NOT_AVAILABLE
			                "\" nor a URL-encoded PEM certificate",
			                i);
			goto out;
		}
		l->available++;
	}
	*out = l;
	l = NULL; /* transferred */
	r = CVM_OK;
out:
	coll_pck_list_free(l);
	json_decref(root);
	return r;
}

/* meets: every component of the raw TCB is at least the entry's. */
static bool meets(const struct coll_pck_entry *e, const uint8_t cpusvn[16], uint16_t pcesvn)
{
	for (size_t i = 0; i < 16; i++)
		if (cpusvn[i] < e->tcb_svn[i])
			return false;
	return pcesvn >= e->pcesvn;
}

static bool same_level(const struct coll_pck_entry *e, const struct cvm_tcb_level *lv)
{
	return memcmp(e->tcb_svn, lv->sgx_svn, sizeof(e->tcb_svn)) == 0 && e->pcesvn == lv->pce_svn;
}

void cvm_cache_pck_choice_cleanup(struct cvm_cache_pck_choice *ch)
{
	if (ch == NULL)
		return;
	free(ch->pem);
	memset(ch, 0, sizeof(*ch));
}

int cvm_cache_pck_select(const uint8_t *body, size_t len, const struct cvm_tcb_info *ti,
                         const uint8_t cpusvn[16], uint16_t pcesvn, struct cvm_cache_pck_choice *out,
                         char *err, size_t err_len)
{
	struct coll_pck_list *l = NULL;
	size_t best = SIZE_MAX, candidates = 0;
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (out == NULL || ti == NULL || cpusvn == NULL)
		return cvm_err_set(err, err_len, CVM_E_INVAL, "no answer, TCB info, raw TCB or output");
	r = coll_pck_list_parse(body, len, &l, err, err_len);
	if (r != CVM_OK || l == NULL)
		return r != CVM_OK ? r : CVM_E_INTERNAL;
	/* The TCB info lists its levels highest first: the first level that an
	 * eligible certificate was issued for is the best the platform has. */
	for (size_t lv = 0; lv < ti->level_count && best == SIZE_MAX; lv++)
		for (size_t i = 0; i < l->count; i++) {
			const struct coll_pck_entry *e = &l->e[i];

			if (e->pem == NULL || !meets(e, cpusvn, pcesvn))
				continue;
			if (lv == 0)
				candidates++;
			if (same_level(e, &ti->levels[lv])) {
				best = i;
				break;
			}
		}
	if (best == SIZE_MAX) {
		char raw[33];

		cvm_hex_encode(cpusvn, 16, raw);
		r = cvm_err_set(err, err_len, CVM_E_NOT_FOUND,
		                "no PCK certificate matches the raw TCB (cpusvn %s, pcesvn %u): of %zu "
		                "entries (%zu with a certificate), %zu are at or below it, and none of those "
		                "is at a TCB level of the TCB info of FMSPC %02x%02x%02x%02x%02x%02x",
		                raw, (unsigned)pcesvn, l->count, l->available,
		                ti->level_count > 0 ? candidates : (size_t)0, ti->fmspc[0], ti->fmspc[1],
		                ti->fmspc[2], ti->fmspc[3], ti->fmspc[4], ti->fmspc[5]);
		goto out;
	}
	out->index = best;
	(void)snprintf(out->tcbm, sizeof(out->tcbm), "%s", l->e[best].tcbm_hex);
	memcpy(out->tcb_svn, l->e[best].tcb_svn, sizeof(out->tcb_svn));
	out->pcesvn = l->e[best].pcesvn;
	out->pem = l->e[best].pem;
	out->pem_len = l->e[best].pem_len;
	l->e[best].pem = NULL; /* transferred */
	r = CVM_OK;
out:
	coll_pck_list_free(l);
	return r;
}

int coll_pck_certs_verify(struct cvm_cache *c, struct cvm_cache_item *it, const uint8_t *root_crl,
                          size_t root_crl_len, int64_t now, const char *name, char *err, size_t err_len)
{
	const struct cvm_cache_key *k = &it->key;
	struct coll_pck_list *l = NULL;
	uint8_t fmspc[6];
	bool platform;
	int64_t issued = 0, next_update = INT64_MAX, expires = INT64_MAX;
	int r;

	if (it->issuer_chain == NULL)
		return cvm_err_set(err, err_len, CVM_E_CHAIN,
		                   "%s came without its issuer chain (the upstream sent no "
		                   "SGX-PCK-Certificate-Issuer-Chain)",
		                   name);
	if (cvm_hex_decode_exact(it->fmspc, strlen(it->fmspc), fmspc, sizeof(fmspc)) != CVM_OK)
		return cvm_err_set(err, err_len, CVM_E_FORMAT,
		                   "%s came without a valid SGX-FMSPC header (12 hex digits)", name);
	if (strcmp(it->ca_type, "processor") != 0 && strcmp(it->ca_type, "platform") != 0)
		return cvm_err_set(err, err_len, CVM_E_FORMAT,
		                   "%s came without SGX-PCK-Certificate-CA-Type: processor or platform",
		                   name);
	platform = strcmp(it->ca_type, "platform") == 0;
	r = coll_pck_list_parse(it->body, it->body_len, &l, err, err_len);
	if (r != CVM_OK || l == NULL) {
		r = r != CVM_OK ? r : CVM_E_INTERNAL;
		goto out;
	}
	if (l->available == 0) {
		r = cvm_err_set(err, err_len, CVM_E_NOT_FOUND,
		                "%s holds no certificate (every entry is \"" NOT_AVAILABLE "\")", name);
		goto out;
	}
	for (size_t i = 0; i < l->count; i++) {
		const struct coll_pck_entry *e = &l->e[i];
		struct cvm_dcap_item_info info;
		struct cvm_dcap_pck_desc d;
		struct cvm_report rep;

		if (e->pem == NULL)
			continue;
		cvm_report_init(&rep);
		r = cvm_dcap_item_authenticate(CVM_DCAP_ITEM_PCK_CERT, (const uint8_t *)e->pem, e->pem_len,
		                               (const uint8_t *)it->issuer_chain, it->issuer_chain_len,
		                               root_crl, root_crl_len, c->intel.der, c->intel.der_len, now,
		                               &rep, &info);
		if (r != CVM_OK) {
			const char *why = cvm_report_reason(&rep);

			r = cvm_err_set(err, err_len, r, "%s: certificate %zu does not verify: %s", name, i,
			                why != NULL && why[0] != '\0' ? why : cvm_strerror(r));
			goto out;
		}
		r = cvm_dcap_pck_describe((const uint8_t *)e->pem, e->pem_len, &d);
		if (r != CVM_OK) {
			r = cvm_err_set(err, err_len, r, "%s: certificate %zu has no readable SGX extension",
			                name, i);
			goto out;
		}
		if (memcmp(d.fmspc, fmspc, sizeof(fmspc)) != 0 || d.platform_ca != platform ||
		    memcmp(d.pce_id, k->pceid, sizeof(d.pce_id)) != 0) {
			r = cvm_err_set(
			    err, err_len, CVM_E_MISMATCH,
			    "%s: certificate %zu is for another FMSPC, CA or PCE ID than the answer "
			    "and the request name",
			    name, i);
			goto out;
		}
		if (memcmp(d.tcb_svn, e->tcb_svn, sizeof(d.tcb_svn)) != 0 || d.pce_svn != e->pcesvn ||
		    memcmp(d.cpu_svn, e->tcbm, sizeof(d.cpu_svn)) != 0 ||
		    e->tcbm[16] != (uint8_t)(d.pce_svn & 0xff) || e->tcbm[17] != (uint8_t)(d.pce_svn >> 8)) {
			r = cvm_err_set(err, err_len, CVM_E_MISMATCH,
			                "%s: certificate %zu certifies another TCB than the one it is listed "
			                "under (tcb, tcbm)",
			                name, i);
			goto out;
		}
		if (info.issued > issued)
			issued = info.issued;
		if (info.next_update < next_update)
			next_update = info.next_update;
		if (info.expires < expires)
			expires = info.expires;
	}
	it->issued_at = issued;
	it->next_update = next_update;
	it->expires = expires;
	(void)snprintf(it->anchor, sizeof(it->anchor), "%s", c->intel.name);
	r = CVM_OK;
out:
	coll_pck_list_free(l);
	return r;
}

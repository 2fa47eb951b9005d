/* libFuzzer harness for the parser of Intel's pckcerts answer (a JSON array
 * of {"tcb", "tcbm", "cert"}: lib/collateral/pckcerts.c) and the PCK
 * certificate selection over it. The input is the answer; a fixed TCB info
 * of three levels orders it, and the raw TCB is taken from the input's
 * first entry (so that selections happen), then from all 0xff.
 * Invariants: a parsed list has 1 to CVM_CACHE_PCK_CERTS_MAX entries, at
 * most that many certificates, each a NUL-free PEM within CVM_DCAP_CERT_MAX
 * that starts as a certificate; a selection names an entry that holds a
 * certificate, whose TCB the raw TCB meets, with that entry's PEM. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/collateral.h>
#include <cvmkit/dcap.h>
#include <cvmkit/err.h>

#include "collateral/coll_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_select(const uint8_t *data, size_t size, const struct coll_pck_list *l,
                         const struct cvm_tcb_info *ti, const uint8_t raw[16], uint16_t pcesvn)
{
	struct cvm_cache_pck_choice ch;
	const struct coll_pck_entry *e;
	char err[256];

	if (cvm_cache_pck_select(data, size, ti, raw, pcesvn, &ch, err, sizeof(err)) != CVM_OK) {
		if (ch.pem != NULL)
			__builtin_trap();
		return;
	}
	if (ch.index >= l->count)
		__builtin_trap();
	e = &l->e[ch.index];
	if (e->pem == NULL || e->pem_len != ch.pem_len || memcmp(e->pem, ch.pem, ch.pem_len) != 0 ||
	    e->pcesvn > pcesvn || strcmp(ch.tcbm, e->tcbm_hex) != 0)
		__builtin_trap();
	for (size_t i = 0; i < 16; i++)
		if (e->tcb_svn[i] > raw[i])
			__builtin_trap();
	cvm_cache_pck_choice_cleanup(&ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_tcb_level lv[3];
	struct cvm_tcb_info ti;
	struct coll_pck_list *l = NULL;
	uint8_t raw[16];
	char err[256];

	if (coll_pck_list_parse(data, size, &l, err, sizeof(err)) != CVM_OK) {
		if (l != NULL)
			__builtin_trap();
		return 0;
	}
	if (l->count == 0 || l->count > CVM_CACHE_PCK_CERTS_MAX || l->available > l->count)
		__builtin_trap();
	for (size_t i = 0; i < l->count; i++) {
		const struct coll_pck_entry *e = &l->e[i];

		if (e->pem == NULL)
			continue;
		if (e->pem_len > CVM_DCAP_CERT_MAX || strlen(e->pem) != e->pem_len ||
		    strncmp(e->pem, "-----BEGIN CERTIFICATE-----", 27) != 0)
			__builtin_trap();
	}
	/* levels: the first entry's TCB, then all 1, then all 0 */
	memset(lv, 0, sizeof(lv));
	memcpy(lv[0].sgx_svn, l->e[0].tcb_svn, 16);
	lv[0].pce_svn = l->e[0].pcesvn;
	memset(lv[1].sgx_svn, 1, 16);
	lv[1].pce_svn = 1;
	memset(&ti, 0, sizeof(ti));
	ti.levels = lv;
	ti.level_count = 3;
	check_select(data, size, l, &ti, l->e[0].tcb_svn, l->e[0].pcesvn);
	memset(raw, 0xff, sizeof(raw));
	check_select(data, size, l, &ti, raw, 0xffff);
	coll_pck_list_free(l);
	return 0;
}

/* The checks of a VersionedAttestation that need no collateral (ratls.h):
 * the quote or report parsed, the event log replayed to the RTMRs, the
 * runtime events replayed to RTMR3, report_data and MRCONFIGID compared.
 * `cvm attestation`, `cvm cert ratls show` and cvm-verifierd's POST /verify
 * share them. Nothing here verifies a signature. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/app.h>
#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/eventlog.h>
#include <cvmkit/quote.h>
#include <cvmkit/ratls.h>
#include <cvmkit/snp.h>
#include <cvmkit/tee.h>

#define RTMRS 4u

const char *cvm_va_variant_name(unsigned variant)
{
	static const char *const names[] = {"dstack-tdx", "dstack-gcp-tdx", "dstack-nitro-enclave",
	                                    "dstack-amd-sev-snp", "dstack-aws-nitro-tpm"};

	return variant < sizeof(names) / sizeof(names[0]) ? names[variant] : "unknown";
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static void extend(uint8_t reg[48], const uint8_t digest[48])
{
	uint8_t buf[96];

	memcpy(buf, reg, 48);
	memcpy(buf + 48, digest, 48);
	cvm_sha384(buf, sizeof(buf), reg);
}

/* runtime_digest is the digest a runtime event extends, by the rule its
 * version names (0, as V0 carries none, is rule 1); a logged digest (may
 * be empty) must be that digest. */
static int runtime_digest(const char *name, const uint8_t *payload, size_t payload_len, unsigned version,
                          const uint8_t *logged, size_t logged_len, uint8_t out[48], bool *logged_ok)
{
	int r;

	*logged_ok = true;
	r = cvm_evl_dstack_digest(name, payload, payload_len, version == 0 ? 1 : version, out);
	if (r == CVM_OK && logged_len != 0)
		*logged_ok = logged_len == 48 && memcmp(logged, out, 48) == 0;
	return r;
}

void cvm_va_check(const struct cvm_va *va, struct cvm_va_check *c)
{
	uint8_t d[48];
	bool ok;

	memset(c, 0, sizeof(*c));
	c->event_count = va->event_count;
	c->runtime_event_count = va->runtime_event_count;
	if (va->tee == CVM_RATLS_TEE_TDX && va->quote_len != 0 &&
	    cvm_quote_parse(va->quote, va->quote_len, &c->quote) == CVM_OK && c->quote.tee == CVM_TEE_TDX)
		c->quote_parsed = true;
	if (va->tee == CVM_RATLS_TEE_SNP && cvm_snp_report_parse(va->quote, va->quote_len, &c->snp) == CVM_OK)
		c->snp_parsed = true;
	if (c->quote_parsed)
		c->report_data_matches = memcmp(c->quote.body.td.report_data, va->report_data, 64) == 0;
	else if (c->snp_parsed)
		c->report_data_matches = memcmp(c->snp.report_data, va->report_data, 64) == 0;

	/* The event log: boot events extend by their logged digest; runtime
	 * events by the digest of name and payload, which a logged digest must
	 * equal. A register counts as covered when an event extends it. */
	c->log_ok = true;
	for (size_t i = 0; i < va->event_count; i++) {
		const struct cvm_va_event *e = &va->events[i];

		if (e->event_type == CVM_EV_NO_ACTION)
			continue;
		if (e->imr >= RTMRS) {
			c->log_ok = false;
			(void)snprintf(c->log_why, sizeof(c->log_why),
			               "event %zu names imr %u (0..3 expected)", i, e->imr);
			continue;
		}
		if (e->event_type == CVM_EV_DSTACK_RUNTIME) {
			if (runtime_digest(e->event, e->payload, e->payload_len, e->version, e->digest,
			                   e->digest_len, d, &ok) != CVM_OK) {
				c->log_ok = false;
				(void)snprintf(c->log_why, sizeof(c->log_why),
				               "event %zu: its digest cannot be computed", i);
				continue;
			}
			if (!ok) {
				c->log_ok = false;
				(void)snprintf(
				    c->log_why, sizeof(c->log_why),
				    "event %zu: the logged digest is not the digest of its name and payload",
				    i);
				continue;
			}
		} else if (e->digest_len == 48) {
			memcpy(d, e->digest, 48);
		} else {
			c->stripped |= 1u << e->imr;
			continue;
		}
		extend(c->replay[e->imr], d);
		c->covered |= 1u << e->imr;
	}
	c->covered &= ~c->stripped;
	for (unsigned i = 0; i < RTMRS && c->quote_parsed; i++)
		if ((c->covered & (1u << i)) != 0 && memcmp(c->replay[i], c->quote.body.td.rtmr[i], 48) != 0)
			c->mismatch |= 1u << i;

	/* The runtime events alone, into RTMR3 (what dstack's verifier replays). */
	c->runtime_ok = true;
	for (size_t i = 0; i < va->runtime_event_count; i++) {
		const struct cvm_va_runtime_event *e = &va->runtime_events[i];

		if (runtime_digest(e->event, e->payload, e->payload_len, e->version, NULL, 0, d, &ok) !=
		    CVM_OK) {
			c->runtime_ok = false;
			break;
		}
		extend(c->runtime_rtmr3, d);
	}
	c->runtime_matches =
	    c->quote_parsed && c->runtime_ok && memcmp(c->runtime_rtmr3, c->quote.body.td.rtmr[3], 48) == 0;

	/* MRCONFIGID layout 1: 0x01 || compose hash || 15 zero bytes. */
	if (c->quote_parsed) {
		const uint8_t *id = c->quote.body.td.mr_config_id;

		c->mr_config_layout = all_zero(id, 48) ? 0 : id[0];
		if (id[0] == 1 && all_zero(id + 33, 15)) {
			for (size_t i = 0; i < va->runtime_event_count; i++) {
				const struct cvm_va_runtime_event *e = &va->runtime_events[i];

				if (strcmp(e->event, "compose-hash") != 0 || e->payload_len != 32)
					continue;
				c->has_compose_hash = true;
				c->compose_hash_matches = memcmp(e->payload, id + 1, 32) == 0;
				break;
			}
		}
	}
	if (va->config != NULL)
		cvm_sha256(va->config, va->config_len, c->config_sha256);
	/* The MrConfigV3 document, when carried: MRCONFIGID layout 3 or HOST_DATA. */
	if (va->mr_config != NULL && va->mr_config_len != 0 &&
	    (c->snp_parsed || (c->quote_parsed && c->mr_config_layout == 3))) {
		cvm_app_mrconfig_v3_hash(va->mr_config, va->mr_config_len, c->mr_config_doc_hash);
		c->has_mr_config_doc = true;
		c->mr_config_doc_matches =
		    c->snp_parsed ? memcmp(c->snp.host_data, c->mr_config_doc_hash, 32) == 0
		                  : memcmp(c->quote.body.td.mr_config_id + 1, c->mr_config_doc_hash, 32) == 0;
	}
}

bool cvm_va_replay_ok(const struct cvm_va_check *c)
{
	/* RTMR3 must be covered and match: it holds what the attestation is
	 * about. RTMR0..2 are shown, not required: dstack strips its logs to the
	 * RTMR3 events and some boot events, whose replay cannot give the quoted
	 * RTMR0..2 (dstack compares those with values computed from the image). */
	return c->log_ok && c->quote_parsed && (c->covered & (1u << 3)) != 0 &&
	       (c->mismatch & (1u << 3)) == 0;
}

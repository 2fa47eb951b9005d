/* cvm snapshot: record what a known-good VM looks like, from evidence that
 * cvm-agentd serves on its RA-TLS listener, and show or compare snapshots.
 *
 *   cvm snapshot --url https://HOST:PORT -o FILE [--collateral DIR | --cache DIR ...]
 *                [--root CERT] [--policy FILE] [--at T] [--json]
 *   cvm snapshot show FILE [--json]
 *   cvm snapshot diff A B
 *
 * The RA-TLS client, the evidence verification and the document are shared
 * with cmd_verify.c (snapshot.h). See docs/cli/cvm-snapshot.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/dcap.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/evidence.h>
#include <cvmkit/file.h>
#include <cvmkit/ima.h>
#include <cvmkit/random.h>
#include <cvmkit/ratls.h>
#include <cvmkit/tee.h>
#include <cvmkit/tls.h>
#include <cvmkit/tpm.h>

#include "cli.h"
#include "net.h"
#include "output.h"
#include "snapshot.h"

#define CMD "snapshot"
#define PATH_TEXT_MAX 4096 /* an IMA event name, escaped */

static double now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool snap_parse_url(struct snap_remote *rm)
{
	static const char scheme[] = "https://";
	const char *t = rm->url, *colon, *end;
	size_t hl, pl;

	if (strncmp(t, scheme, sizeof(scheme) - 1) != 0)
		return false;
	t += sizeof(scheme) - 1;
	end = t + strlen(t);
	if (end > t && end[-1] == '/')
		end--;
	colon = NULL;
	for (const char *p = t; p < end; p++)
		if (*p == ':')
			colon = p;
	if (colon == NULL)
		return false;
	hl = (size_t)(colon - t);
	pl = (size_t)(end - colon - 1);
	if (hl >= 2 && t[0] == '[' && t[hl - 1] == ']') { /* [v6]:port */
		t++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(rm->host) || pl == 0 || pl >= sizeof(rm->port))
		return false;
	for (size_t i = 0; i < pl; i++)
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return false;
	memcpy(rm->host, t, hl);
	rm->host[hl] = '\0';
	memcpy(rm->port, colon + 1, pl);
	rm->port[pl] = '\0';
	return true;
}

/* ---- the RA-TLS client ------------------------------------------------------ */

int snap_dial(const char *cmd, const struct snap_remote *rm)
{
	return cli_net_dial(cmd, rm->host, rm->port, rm->url, " (is cvm-agentd's TLS listener there?)",
	                    SNAP_NET_TIMEOUT_S);
}

/* struct peer_check is what the RA-TLS check of the agent's certificate
 * needs and learns. It runs inside the TLS handshake (the certificate
 * verification callback), because only the certificate names the quote or
 * report whose collateral the check needs: with the cache, that collateral
 * is fetched (or found) there. */
struct peer_check {
	const char *cmd;
	const struct snap_remote *rm;
	struct cli_coll coll; /* a copy: cli_coll_load records where it took the collateral */
	const struct cvm_policy *policy;
	const uint8_t *root;
	size_t root_len;
	struct snap_evidence *e;
	struct cvm_dcap_collateral *dcap; /* the certificate's collateral, kept for the bundle */
	struct cvm_amd_collateral *amd;
	int rc; /* CLI exit code of the check: 0 accepted, 1 error (printed), 3 rejected */
};

/* chain_der collects the peer's chain (leaf first) as DER. */
static size_t chain_der(X509_STORE_CTX *xs, uint8_t **der, size_t *der_len, size_t cap)
{
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xs);
	int sn = sent == NULL ? 0 : sk_X509_num(sent), i = 0, len;
	size_t n = 0;

	if (leaf == NULL)
		return 0;
	len = i2d_X509(leaf, &der[n]);
	if (len <= 0)
		return 0;
	der_len[n++] = (size_t)len;
	if (sn > 0 && X509_cmp(sk_X509_value(sent, 0), leaf) == 0)
		i = 1; /* OpenSSL lists the leaf among the sent certificates */
	for (; i < sn; i++) {
		if (n == cap)
			return 0; /* more than a chain may hold: rejected */
		len = i2d_X509(sk_X509_value(sent, i), &der[n]);
		if (len <= 0)
			return 0;
		der_len[n++] = (size_t)len;
	}
	return n;
}

/* anchored_reason words a rejected SEV-SNP chain from the report of its
 * check (`rep`, `r`): when the anchor step failed, the point is that the
 * chain does not end in the pinned ARK. */
static void anchored_reason(const struct cvm_report *rep, int r, bool root_given, char *out, size_t cap)
{
	char why[512];

	out_verdict_reason(rep, r, why, sizeof(why));
	if (rep->failed != NULL && strcmp(rep->failed->name, "ark") == 0)
		(void)snprintf(out, cap,
		               "the AMD certificate chain is not anchored in the pinned ARK (%s): %s",
		               root_given ? "the --root given" : "AMD's built-in ARKs", why);
	else
		(void)snprintf(out, cap, "%s", why);
}

void snap_verdict_reason(const struct snap_evidence *e, bool root_given, char *out, size_t cap)
{
	if (e->platform == CVM_EVIDENCE_SNP)
		anchored_reason(&e->rep, e->verdict, root_given, out, cap);
	else
		out_verdict_reason(&e->rep, e->verdict, out, cap);
}

/* snp_chain_reason explains why the SEV-SNP collateral did not make a
 * verifier: its chain, checked again for the report of the failing step. */
static void snp_chain_reason(const struct peer_check *pc, int r, char *out, size_t cap)
{
	struct cvm_amd_verified *ver = NULL;
	struct cvm_report rep;
	enum cvm_snp_signer s = pc->amd->vcek != NULL ? CVM_SNP_SIGNER_VCEK : CVM_SNP_SIGNER_VLEK;
	int r2;

	cvm_report_init(&rep);
	r2 = cvm_amd_chain_authenticate(pc->amd, s, pc->root, pc->root_len, pc->rm->at, &rep, &ver);
	cvm_amd_verified_free(ver);
	anchored_reason(&rep, r2 != CVM_OK ? r2 : r, pc->root != NULL, out, cap);
}

static int check_peer(X509_STORE_CTX *xs, void *arg)
{
	struct peer_check *pc = arg;
	struct snap_evidence *e = pc->e;
	struct cvm_ratls_verifier_opts o;
	struct cvm_ratls_verifier *v = NULL;
	struct cvm_ratls_verdict verdict;
	struct cvm_ratls_info *info = NULL;
	struct cvm_report rep;
	uint8_t *der[CVM_CHAIN_CERTS_MAX] = {NULL}, *spki = NULL;
	size_t der_len[CVM_CHAIN_CERTS_MAX], n;
	char err[512] = "";
	double t0 = now_ms();
	bool is_snp;
	int r, len;

	pc->rc = CLI_EXIT_ERROR;
	cvm_report_init(&rep);
	n = chain_der(xs, der, der_len, CVM_CHAIN_CERTS_MAX);
	if (n == 0) {
		cli_err(pc->cmd, "cannot read the agent's certificate chain");
		goto out;
	}
	r = cvm_ratls_parse(der[0], der_len[0], &info, err, sizeof(err));
	if (r != CVM_OK || info->quote == NULL ||
	    (info->tee != CVM_RATLS_TEE_TDX && info->tee != CVM_RATLS_TEE_SNP)) {
		(void)snprintf(e->rejected, sizeof(e->rejected),
		               "the certificate carries no TDX or SEV-SNP evidence cvmkit reads%s%s",
		               err[0] != '\0' ? ": " : "", err);
		pc->rc = CLI_EXIT_REJECTED;
		goto out;
	}
	is_snp = info->tee == CVM_RATLS_TEE_SNP;
	e->platform = is_snp ? CVM_EVIDENCE_SNP : CVM_EVIDENCE_TDX;
	pc->rc = cli_coll_load(pc->cmd, &pc->coll, "the agent's RA-TLS certificate", is_snp, info->quote,
	                       info->quote_len, pc->rm->at, pc->root, pc->root_len, &pc->dcap, &pc->amd);
	if (pc->rc != CLI_EXIT_OK)
		goto out;
	pc->rc = CLI_EXIT_ERROR;
	memset(&o, 0, sizeof(o));
	o.policy = pc->policy;
	o.dcap = pc->dcap;
	o.amd = pc->amd;
	o.intel_root_der = is_snp ? NULL : pc->root;
	o.intel_root_der_len = is_snp ? 0 : pc->root_len;
	o.amd_root_der = is_snp ? pc->root : NULL;
	o.amd_root_der_len = is_snp ? pc->root_len : 0;
	/* TDX: the key must be the one the agent recorded in RTMR3. SEV-SNP has
	 * no runtime register: the report binds the key (report_data), and only
	 * the agent and the uids its operator allows get raw report_data into a
	 * report (include/cvmkit/evidence.h); the binding is checked below. */
	o.require_system_key = !is_snp;
	r = cvm_ratls_verifier_new(&o, pc->rm->at, &v);
	if (r != CVM_OK) {
		if (is_snp)
			snp_chain_reason(pc, r, e->rejected, sizeof(e->rejected));
		else
			(void)snprintf(e->rejected, sizeof(e->rejected),
			               "the TDX collateral does not verify against %s: %s",
			               pc->root != NULL ? "the --root given" : "Intel's root CA",
			               cvm_strerror(r));
		pc->rc = cli_exit_for(r);
		if (pc->rc == CLI_EXIT_ERROR)
			cli_err(pc->cmd, "%s", e->rejected);
		goto out;
	}
	r = cvm_ratls_verifier_check(v, (const uint8_t *const *)der, der_len, n, pc->rm->at, &verdict, &rep);
	if (r == CVM_OK && !verdict.binding)
		r = CVM_E_MISMATCH; /* the check fails without it; on SEV-SNP it is the key's only anchor */
	if (r != CVM_OK) {
		out_verdict_reason(&rep, r, e->rejected, sizeof(e->rejected));
		pc->rc = cli_exit_for(r);
		if (pc->rc == CLI_EXIT_ERROR)
			cli_err(pc->cmd, "the RA-TLS check could not run: %s", e->rejected);
		goto out;
	}
	len = i2d_PUBKEY(X509_get0_pubkey(X509_STORE_CTX_get0_cert(xs)), &spki);
	if (len <= 0) {
		cli_err(pc->cmd, "cannot read the peer's public key");
		goto out;
	}
	cvm_sha256(spki, (size_t)len, e->agent_key);
	pc->rc = CLI_EXIT_OK;
out:
	OPENSSL_free(spki);
	cvm_ratls_verifier_free(v);
	cvm_ratls_info_free(info);
	for (size_t i = 0; i < n; i++)
		OPENSSL_free(der[i]);
	e->t_check = now_ms() - t0;
	return pc->rc == CLI_EXIT_OK ? 1 : 0;
}

/* client_ctx is a TLS 1.3-only client context, without session reuse
 * (a resumed session shows no certificate), whose certificate check is
 * check_peer. */
static SSL_CTX *client_ctx(struct peer_check *pc)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	(void)SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	(void)SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, check_peer, pc);
	return ctx;
}

/* get_evidence does the TLS connection and the GetEvidence request. */
static int get_evidence(const char *cmd, const struct snap_remote *rm, struct peer_check *pc,
                        struct snap_evidence *e)
{
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	char hex[2 * SNAP_NONCE_LEN + 1], body[128];
	double t0;
	int fd = -1, status = 0, r, rc = CLI_EXIT_ERROR;

	t0 = now_ms();
	pc->rc = -1; /* the check has not run */
	ctx = client_ctx(pc);
	if (ctx == NULL) {
		cli_err(cmd, "cannot make the TLS context");
		goto out;
	}
	fd = snap_dial(cmd, rm);
	if (fd < 0)
		goto out;
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		cli_err(cmd, "out of memory");
		goto out;
	}
	if (SSL_connect(ssl) != 1 || pc->rc != CLI_EXIT_OK) {
		unsigned long le = ERR_peek_error();

		if (pc->rc == CLI_EXIT_REJECTED)
			rc = CLI_EXIT_REJECTED; /* why: in e->rejected */
		else if (pc->rc < 0)
			cli_err(cmd, "TLS 1.3 handshake with %s failed: %s", rm->url,
			        le != 0 ? ERR_reason_error_string(le) : "the connection closed");
		/* else the check printed why it could not run */
		ERR_clear_error();
		goto out;
	}
	e->t_handshake = now_ms() - t0;

	t0 = now_ms();
	cvm_hex_encode(e->nonce, sizeof(e->nonce), hex);
	(void)snprintf(body, sizeof(body), "{\"nonce\": \"%s\"}", hex);
	if (!cvm_tls_post_json(ssl, rm->host, "/GetEvidence", body)) {
		cli_err(cmd, "cannot send GetEvidence to %s", rm->url);
		ERR_clear_error();
		goto out;
	}
	r = cvm_tls_read_reply(ssl, SNAP_REPLY_MAX, &status, &e->bundle, &e->bundle_len);
	if (r != CVM_OK) {
		cli_err(cmd, "cannot read the GetEvidence answer of %s: %s", rm->url, cvm_strerror(r));
		goto out;
	}
	e->t_request = now_ms() - t0;
	if (status != 200) {
		char text[256];

		out_sanitize((const char *)e->bundle, text, sizeof(text));
		cli_err(cmd, "%s answered GetEvidence with HTTP %d: %s%s", rm->url, status, text,
		        status == 404
		            ? " (this agent does not serve GetEvidence on its TLS listener: update it)"
		            : "");
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	cli_net_close(ssl, ctx, fd);
	return rc;
}

/* ---- the SEV-SNP certificate table ----------------------------------------- */

/* The certificate table the host hands to an SEV-SNP guest with its report
 * (AMD's GHCB specification, the extended guest request; cvm-agentd passes
 * it on as the bundle's "snp_cert_table"): entries of a 16-byte GUID (in
 * its text's byte order), a u32le offset and a u32le length, both from the
 * table's start, ended by an entry of zeros. The host chooses every byte:
 * what it names is a candidate chain, trusted only when it verifies up to
 * the pinned ARK (cvm_verify_snp_report, through o->root_der). */
#define CERT_TABLE_ENTRIES_MAX 16u
#define CERT_TABLE_CERT_MAX ((size_t)16 * 1024)

enum table_role { ROLE_VCEK, ROLE_VLEK, ROLE_ASK, ROLE_ARK, ROLE_COUNT };

static const struct {
	uint8_t guid[16];
	enum table_role role;
	const char *name;
} table_guids[] = {
    {{0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd},
     ROLE_VCEK,
     "VCEK"},
    {{0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1},
     ROLE_VLEK,
     "VLEK"},
    {{0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82},
     ROLE_ASK,
     "ASK"},
    {{0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae},
     ROLE_ARK,
     "ARK"},
};

/* table_read finds the certificates of the table's known GUIDs: spans of
 * the `len` bytes at `t`, one per role (empty when absent). Unknown GUIDs
 * are skipped; a role named twice, an entry outside the table, more than
 * CERT_TABLE_ENTRIES_MAX entries or no terminator is an error (`why`). */
static bool table_read(const uint8_t *t, size_t len, struct cvm_rd spans[ROLE_COUNT], char *why,
                       size_t why_len)
{
	struct cvm_rd r;

	cvm_rd_init(&r, t, len);
	for (size_t n = 0;; n++) {
		struct cvm_rd whole, entry;
		uint8_t guid[16];
		uint32_t off, clen;
		bool zero;

		if (!cvm_rd_sub(&r, &entry, 24)) {
			(void)snprintf(why, why_len, "it ends before its terminating entry of zeros");
			return false;
		}
		zero = cvm_rd_all_zero(&entry);
		if (!cvm_rd_copy(&entry, guid, sizeof(guid)) || !cvm_rd_u32le(&entry, &off) ||
		    !cvm_rd_u32le(&entry, &clen))
			return false; /* 24 bytes: never */
		if (zero)
			return true;
		if (n == CERT_TABLE_ENTRIES_MAX) {
			(void)snprintf(why, why_len, "more than %u entries", CERT_TABLE_ENTRIES_MAX);
			return false;
		}
		for (size_t g = 0; g < sizeof(table_guids) / sizeof(table_guids[0]); g++) {
			struct cvm_rd *span = &spans[table_guids[g].role];

			if (memcmp(guid, table_guids[g].guid, sizeof(guid)) != 0)
				continue;
			if (span->len != 0) {
				(void)snprintf(why, why_len, "it names the %s twice", table_guids[g].name);
				return false;
			}
			cvm_rd_init(&whole, t, len);
			if (clen == 0 || clen > CERT_TABLE_CERT_MAX || !cvm_rd_skip(&whole, off) ||
			    !cvm_rd_sub(&whole, span, clen)) {
				(void)snprintf(why, why_len,
				               "the %s's entry (offset %" PRIu32 ", %" PRIu32
				               " bytes) is empty, larger than %zu bytes or outside the table",
				               table_guids[g].name, off, clen, CERT_TABLE_CERT_MAX);
				return false;
			}
		}
	}
}

static int copy_into(uint8_t **dst, size_t *dst_len, const uint8_t *p, size_t len)
{
	*dst = NULL;
	*dst_len = 0;
	if (p == NULL || len == 0)
		return CVM_OK;
	*dst = malloc(len);
	if (*dst == NULL)
		return CVM_E_NOMEM;
	memcpy(*dst, p, len);
	*dst_len = len;
	return CVM_OK;
}

/* table_collateral makes the AMD collateral of an SEV-SNP bundle that
 * carries a certificate table: the table's VCEK (or VLEK), ASK and ARK, each
 * in place of the one in `base` (the folder's or the cache's), and the rest
 * of `base` (the CRL above all, which no table carries). *out is NULL when
 * the bundle has no table. */
static int table_collateral(const struct snap_evidence *e, const struct cvm_amd_collateral *base,
                            struct cvm_amd_collateral **out, char *why, size_t why_len)
{
	struct cvm_rd spans[ROLE_COUNT];
	struct cvm_amd_collateral *c = NULL;
	json_error_t jerr;
	json_t *doc = NULL, *v;
	const char *hex;
	uint8_t *table = NULL;
	size_t hex_len, len;
	int r = CVM_OK;

	*out = NULL;
	memset(spans, 0, sizeof(spans));
	doc = json_loadb((const char *)e->bundle, e->bundle_len, JSON_REJECT_DUPLICATES, &jerr);
	v = json_object_get(doc, "snp_cert_table");
	if (v == NULL || json_is_null(v)) /* none: cvm_evidence_parse checked the rest */
		goto out;
	hex = json_string_value(v);
	hex_len = json_string_length(v); /* not strlen: a JSON string may hold a NUL */
	len = hex_len / 2;
	if (hex == NULL || hex_len % 2 != 0 || len == 0 || len > CVM_TEE_AUX_MAX) {
		(void)snprintf(why, why_len, "\"snp_cert_table\" is not 1 to %zu bytes of hex",
		               CVM_TEE_AUX_MAX);
		r = CVM_E_FORMAT;
		goto out;
	}
	table = malloc(len);
	if (table == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	if (cvm_hex_decode_exact(hex, hex_len, table, len) != CVM_OK) {
		(void)snprintf(why, why_len, "\"snp_cert_table\" is not hex");
		r = CVM_E_FORMAT;
		goto out;
	}
	if (!table_read(table, len, spans, why, why_len)) {
		char text[256];

		(void)snprintf(text, sizeof(text), "%s", why);
		(void)snprintf(why, why_len, "the certificate table: %s", text);
		r = CVM_E_FORMAT;
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	/* A chain the table gives replaces the folder's or cache's part by part:
	 * an ASK from the table goes with no cert_chain.pem of the base, whose
	 * ASK it would compete with. */
	r = spans[ROLE_VCEK].len != 0 || spans[ROLE_VLEK].len != 0
	        ? copy_into(&c->vcek, &c->vcek_len, spans[ROLE_VCEK].p, spans[ROLE_VCEK].len)
	        : copy_into(&c->vcek, &c->vcek_len, base->vcek, base->vcek_len);
	if (r == CVM_OK)
		r = spans[ROLE_VCEK].len != 0 || spans[ROLE_VLEK].len != 0
		        ? copy_into(&c->vlek, &c->vlek_len, spans[ROLE_VLEK].p, spans[ROLE_VLEK].len)
		        : copy_into(&c->vlek, &c->vlek_len, base->vlek, base->vlek_len);
	if (r == CVM_OK)
		r = spans[ROLE_ASK].len != 0
		        ? copy_into(&c->ask, &c->ask_len, spans[ROLE_ASK].p, spans[ROLE_ASK].len)
		        : copy_into(&c->ask, &c->ask_len, base->ask, base->ask_len);
	if (r == CVM_OK && spans[ROLE_ASK].len == 0)
		r = copy_into(&c->cert_chain, &c->cert_chain_len, base->cert_chain, base->cert_chain_len);
	if (r == CVM_OK)
		r = copy_into(&c->asvk, &c->asvk_len, base->asvk, base->asvk_len);
	if (r == CVM_OK)
		r = spans[ROLE_ARK].len != 0
		        ? copy_into(&c->ark, &c->ark_len, spans[ROLE_ARK].p, spans[ROLE_ARK].len)
		        : copy_into(&c->ark, &c->ark_len, base->ark, base->ark_len);
	if (r == CVM_OK)
		r = copy_into(&c->crl, &c->crl_len, base->crl, base->crl_len);
	if (r != CVM_OK)
		goto out;
	*out = c;
	c = NULL; /* transferred */
out:
	cvm_amd_collateral_free(c);
	free(table);
	json_decref(doc);
	return r;
}

int snap_fetch(const char *cmd, const struct snap_remote *rm, const struct cvm_policy *policy,
               struct snap_evidence *e)
{
	struct peer_check pc;
	struct cvm_amd_collateral *table_amd = NULL;
	struct cvm_evidence_opts eo;
	uint8_t *root = NULL;
	size_t root_len = 0;
	char why[512] = "";
	double t0 = now_ms();
	int r, rc;

	memset(e, 0, sizeof(*e));
	memset(&pc, 0, sizeof(pc));
	cvm_report_init(&e->rep);
	e->verdict = CVM_E_INTERNAL;
	if (rm->root != NULL) {
		rc = cli_load_cert(cmd, "--root certificate", rm->root, &root, &root_len);
		if (rc != CLI_EXIT_OK)
			goto out;
	}
	pc.cmd = cmd;
	pc.rm = rm;
	pc.coll = rm->coll;
	pc.coll.per_platform = true;
	pc.policy = policy;
	pc.root = root;
	pc.root_len = root_len;
	pc.e = e;
	r = cvm_random_bytes(e->nonce, sizeof(e->nonce)); /* fresh, never zero or reused */
	if (r != CVM_OK) {
		cli_err(cmd, "cannot draw a random nonce: %s", cvm_strerror(r));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	e->t_setup = now_ms() - t0;
	/* The handshake's certificate check loads the collateral (from the
	 * folder or the cache) of the certificate's quote or report: that is
	 * cvmkit's setup work too, and is counted in the handshake. */
	rc = get_evidence(cmd, rm, &pc, e);
	e->from_cache = pc.coll.from_cache;
	e->coll_info = pc.coll.info;
	if (rc != CLI_EXIT_OK)
		goto out;

	t0 = now_ms();
	r = cvm_evidence_parse(e->bundle, e->bundle_len, &e->ev, why, sizeof(why));
	if (r != CVM_OK) {
		char text[512];

		out_sanitize(why, text, sizeof(text));
		cvm_report_add(&e->rep, "evidence.parse", false, "the bundle does not parse: %s", text);
		e->verdict = r;
		e->t_verify = now_ms() - t0;
		goto out;
	}
	memset(&eo, 0, sizeof(eo));
	eo.nonce = e->nonce;
	eo.nonce_len = sizeof(e->nonce);
	eo.dcap = pc.dcap;
	eo.amd = pc.amd;
	eo.root_der = root;
	eo.root_der_len = root_len;
	eo.at = rm->at;
	eo.policy = policy;
	eo.require_tpm = true;
	eo.require_ima = true;
	if (cvm_evidence_platform(e->ev) != e->platform) {
		/* The bundle must come from the TEE the certificate does: its
		 * collateral is the certificate's. */
		cvm_report_add(&e->rep, "evidence.platform", false,
		               "the bundle's evidence is %s, the agent's certificate's is %s",
		               cvm_evidence_platform(e->ev) == CVM_EVIDENCE_SNP ? "SEV-SNP" : "TDX",
		               e->platform == CVM_EVIDENCE_SNP ? "SEV-SNP" : "TDX");
		e->verdict = CVM_E_MISMATCH;
	} else {
		r = e->platform == CVM_EVIDENCE_SNP
		        ? table_collateral(e, pc.amd, &table_amd, why, sizeof(why))
		        : CVM_OK;
		if (r != CVM_OK) {
			cvm_report_add(&e->rep, "evidence.snp_cert_table", false, "%s", why);
			e->verdict = r;
		} else {
			if (table_amd != NULL) {
				eo.amd = table_amd;
				cvm_report_add(
				    &e->rep, "evidence.snp_cert_table", true,
				    "the report's certificate table gives its AMD chain, trusted only as "
				    "far as it verifies to the pinned ARK");
			}
			e->verdict = cvm_evidence_verify(e->ev, &eo, &e->rep, &e->res);
		}
	}
	e->simulated = cvm_evidence_claims_simulated(e->ev) || cvm_tee_is_simulated_root(root, root_len);
	e->t_verify = now_ms() - t0;
out:
	cvm_amd_collateral_free(table_amd);
	cvm_dcap_collateral_free(pc.dcap);
	cvm_amd_collateral_free(pc.amd);
	free(root);
	return rc;
}

void snap_evidence_cleanup(struct snap_evidence *e)
{
	cvm_evidence_free(e->ev);
	free(e->bundle);
	memset(e, 0, sizeof(*e));
}

/* ---- the document ------------------------------------------------------------ */

/* snap_escape_path writes an IMA event name as printable ASCII: bytes outside
 * 0x21..0x7e, and the backslash, as \xNN. */
void snap_escape_path(const uint8_t *p, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 5 < cap; i++) {
		if (p[i] > 0x20 && p[i] < 0x7f && p[i] != '\\')
			out[o++] = (char)p[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[i]);
	}
	out[o] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ima_entries lists the distinct (path, digest) pairs of the first
 * `quoted` entries of the bundle's IMA list, sorted by digest then path. */
static json_t *ima_entries(const struct snap_evidence *e, char *why, size_t why_len)
{
	json_t *doc = NULL, *arr = NULL, *out = NULL;
	json_error_t jerr;
	struct cvm_ima_reader *rd = NULL;
	struct cvm_ima_entry ent;
	const char *hex;
	uint8_t *list = NULL;
	char **keys = NULL;
	size_t list_len, count = 0, quoted = (size_t)e->res.ima_quoted_entries;
	int r;

	/* The same parse rules as cvm_evidence_parse (duplicates refused), so
	 * this reads the very list that was verified. */
	doc = json_loadb((const char *)e->bundle, e->bundle_len, JSON_REJECT_DUPLICATES, &jerr);
	hex = doc != NULL ? json_string_value(json_object_get(doc, "ima_log")) : NULL;
	if (hex == NULL || strlen(hex) % 2 != 0) {
		(void)snprintf(why, why_len, "the bundle has no IMA list");
		goto out;
	}
	list_len = strlen(hex) / 2;
	list = malloc(list_len + 1);
	keys = calloc(quoted + 1, sizeof(*keys));
	arr = json_array();
	if (list == NULL || keys == NULL || arr == NULL ||
	    cvm_hex_decode_exact(hex, 2 * list_len, list, list_len) != CVM_OK ||
	    cvm_ima_reader_new_mem(list, list_len, CVM_IMA_FORMAT_BINARY, &rd) != CVM_OK) {
		(void)snprintf(why, why_len, "cannot read the bundle's IMA list");
		goto out;
	}
	while (count < quoted) {
		char name[PATH_TEXT_MAX], dig[2 * 64 + 1], algo[32];
		bool has = false;
		size_t kl;

		r = cvm_ima_reader_next(rd, &ent, &has);
		if (r != CVM_OK || !has) {
			(void)snprintf(why, why_len, "the IMA list ends before entry %zu: %s", count + 1,
			               cvm_ima_reader_err(rd));
			goto out;
		}
		snap_escape_path(ent.name.p, ent.name.len, name, sizeof(name));
		if (ent.is_violation) {
			(void)snprintf(dig, sizeof(dig), "violation");
			algo[0] = '\0';
		} else if (ent.template_id == CVM_IMA_TEMPLATE_OTHER || ent.digest.len > 64) {
			cvm_hex_encode(ent.template_digest, sizeof(ent.template_digest), dig);
			(void)snprintf(algo, sizeof(algo), "template-sha1:");
		} else {
			cvm_hex_encode(ent.digest.p, ent.digest.len, dig);
			snap_escape_path(ent.digest_algo.p,
			                 ent.digest_algo.len > 16 ? 16 : ent.digest_algo.len, algo,
			                 sizeof(algo) - 1);
			(void)strncat(algo, ":", sizeof(algo) - strlen(algo) - 1);
		}
		kl = strlen(algo) + strlen(dig) + 1 + strlen(name) + 1;
		keys[count] = malloc(kl);
		if (keys[count] == NULL)
			goto out;
		(void)snprintf(keys[count], kl, "%s%s %s", algo, dig, name);
		count++;
	}
	qsort(keys, count, sizeof(*keys), cmp_str);
	for (size_t i = 0; i < count; i++) {
		char *sp;
		json_t *o;

		if (i > 0 && strcmp(keys[i], keys[i - 1]) == 0)
			continue;
		sp = strchr(keys[i], ' ');
		o = json_object();
		if (sp == NULL || o == NULL || json_array_append_new(arr, o) != 0 ||
		    json_object_set_new(o, "path", json_string(sp + 1)) != 0 ||
		    json_object_set_new(o, "digest", json_stringn(keys[i], (size_t)(sp - keys[i]))) != 0)
			goto out;
	}
	out = arr;
	arr = NULL;
out:
	for (size_t i = 0; keys != NULL && i < count; i++)
		free(keys[i]);
	free(keys);
	cvm_ima_reader_free(rd);
	free(list);
	json_decref(arr);
	json_decref(doc);
	if (out == NULL && why[0] == '\0')
		(void)snprintf(why, why_len, "out of memory");
	return out;
}

static json_t *ak_public(const struct snap_evidence *e)
{
	json_error_t jerr;
	json_t *doc = json_loadb((const char *)e->bundle, e->bundle_len, JSON_REJECT_DUPLICATES, &jerr), *v,
	       *out = NULL;

	v = doc != NULL ? json_object_get(json_object_get(doc, "tpm"), "ak_public") : NULL;
	if (json_is_string(v))
		out = json_string(json_string_value(v));
	json_decref(doc);
	return out;
}

/* tee_tdx fills the "tee" section of TDX evidence: the launch and boot
 * registers, and the keys RTMR3 recorded. */
static int tee_tdx(json_t *tee, const struct snap_evidence *e)
{
	const struct cvm_tdx_report *td = &e->res.dcap.quote.body.td;
	int bad = 0;

	bad |= out_jset_hex(tee, "mrtd", td->mr_td, sizeof(td->mr_td));
	for (size_t i = 0; i < 3; i++) {
		char k[8];

		(void)snprintf(k, sizeof(k), "rtmr%zu", i);
		bad |= out_jset_hex(tee, k, td->rtmr[i], sizeof(td->rtmr[i]));
	}
	/* the TD's configuration: the host sets these at launch with MRTD */
	bad |= out_jset_hex(tee, "td_attributes", td->td_attributes, sizeof(td->td_attributes));
	bad |= out_jset_hex(tee, "xfam", td->xfam, sizeof(td->xfam));
	bad |= out_jset_hex(tee, "mr_config_id", td->mr_config_id, sizeof(td->mr_config_id));
	bad |= out_jset_hex(tee, "mr_owner", td->mr_owner, sizeof(td->mr_owner));
	bad |= out_jset_hex(tee, "mr_owner_config", td->mr_owner_config, sizeof(td->mr_owner_config));
	/* the platform: the TDX module and its TCB (the floor cvm verify keeps) */
	bad |= out_jset_hex(tee, "mr_seam", td->mr_seam, sizeof(td->mr_seam));
	bad |= out_jset_hex(tee, "tee_tcb_svn", td->tee_tcb_svn, sizeof(td->tee_tcb_svn));
	bad |= out_jset_hex(tee, "agent_key_sha256", e->agent_key, sizeof(e->agent_key));
	bad |= out_jset_hex(tee, "tpm_ak_name", e->res.ak_name, e->res.ak_name_len);
	return bad;
}

/* tee_snp fills the "tee" section of SEV-SNP evidence: what identifies the
 * guest in the verified report, and the two keys its report_data binds (no
 * register records them on SEV-SNP). */
static int tee_snp(json_t *tee, const struct snap_evidence *e)
{
	const struct cvm_snp_report *r = &e->res.amd.report;
	const struct cvm_snp_tcb *t = &e->res.amd.reported_tcb;
	json_t *tcb = json_object();
	uint8_t raw[8];
	int bad = tcb == NULL;

	bad |= out_jset_hex(tee, "measurement", r->measurement, sizeof(r->measurement));
	bad |= out_jset_hex(tee, "host_data", r->host_data, sizeof(r->host_data));
	bad |= out_jset_hex(tee, "id_key_digest", r->id_key_digest, sizeof(r->id_key_digest));
	bad |= out_jset_hex(tee, "author_key_digest", r->author_key_digest, sizeof(r->author_key_digest));
	bad |= out_jset_hex(tee, "family_id", r->family_id, sizeof(r->family_id));
	bad |= out_jset_hex(tee, "image_id", r->image_id, sizeof(r->image_id));
	bad |= out_jset_int(tee, "policy", (long long)r->policy);
	bad |= out_jset_int(tee, "guest_svn", (long long)r->guest_svn);
	bad |= out_jset(tee, "reported_tcb", tcb);
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (uint8_t)(t->raw >> (8 * i));
	bad |= out_jset_hex(tcb, "raw", raw, sizeof(raw));
	bad |= out_jset_int(tcb, "bootloader", t->bootloader);
	bad |= out_jset_int(tcb, "tee", t->tee);
	bad |= out_jset_int(tcb, "snp", t->snp);
	bad |= out_jset_int(tcb, "microcode", t->microcode);
	if (t->has_fmc)
		bad |= out_jset_int(tcb, "fmc", t->fmc);
	bad |= out_jset_str(tee, "signer", e->res.amd.signer == CVM_SNP_SIGNER_VLEK ? "vlek" : "vcek");
	bad |= out_jset_hex(tee, "agent_key_sha256", e->agent_key, sizeof(e->agent_key));
	bad |= out_jset_hex(tee, "tpm_ak_name", e->res.ak_name, e->res.ak_name_len);
	bad |= out_jset_str(tee, "key_binding", "report_data");
	return bad;
}

json_t *snap_document(const struct snap_remote *rm, const struct snap_evidence *e, json_t *policy_doc,
                      char *why, size_t why_len)
{
	bool is_snp = e->platform == CVM_EVIDENCE_SNP;
	const struct cvm_tpm_pcrs *pcrs = cvm_evidence_pcrs(e->ev);
	json_t *d = json_object(), *taken = json_object(), *tee = json_object(), *tcb = json_object();
	json_t *tpm = json_object(), *banks = json_object(), *ima = json_object(), *entries;
	int bad = 0;

	why[0] = '\0';
	if (d == NULL || taken == NULL || tee == NULL || tcb == NULL || tpm == NULL || banks == NULL ||
	    ima == NULL || pcrs == NULL) {
		json_decref(taken);
		json_decref(tee);
		json_decref(tcb);
		json_decref(tpm);
		json_decref(banks);
		json_decref(ima);
		json_decref(d);
		(void)snprintf(why, why_len, "out of memory");
		return NULL;
	}
	bad |= out_jset_str(d, "format", SNAP_FORMAT);
	bad |= out_jset_int(d, "version", SNAP_VERSION);
	bad |= out_jset(d, "taken", taken);
	bad |= out_jset_int(taken, "at", (long long)rm->at);
	bad |= out_jset_str(taken, "url", rm->url);
	bad |= out_jset_int(taken, "tpm_clock", (long long)e->res.tpm.attest.clock);
	bad |= out_jset_int(taken, "tpm_restart_count", (long long)e->res.tpm.attest.restart_count);
	bad |= out_jset_int(taken, "ima_quoted_entries", (long long)e->res.ima_quoted_entries);
	bad |= out_jset(d, "simulated", json_boolean(e->simulated));
	bad |= out_jset_str(d, "platform", is_snp ? "snp" : "tdx");
	bad |= out_jset(d, "tee", tee);
	bad |= is_snp ? tee_snp(tee, e) : tee_tdx(tee, e);
	bad |= out_jset(d, "tcb", tcb);
	/* SEV-SNP: AMD's checks (chain, CRL, signature, the reported TCB
	 * against the VCEK's) all passed, as cvm quote verify says it. */
	bad |= out_jset_str(tcb, "status", is_snp ? "UpToDate" : cvm_tcb_status_name(e->res.dcap.tcb_status));
	bad |= out_jset(tcb, "policy", policy_doc != NULL ? json_incref(policy_doc) : json_null());
	bad |= out_jset(d, "tpm", tpm);
	bad |= out_jset_hex(tpm, "ak_name", e->res.ak_name, e->res.ak_name_len);
	bad |= out_jset(tpm, "ak_public", ak_public(e));
	bad |= out_jset_int(tpm, "reset_count", (long long)e->res.tpm.attest.reset_count);
	bad |= out_jset(tpm, "pcrs", banks);
	for (size_t b = 0; b < pcrs->count; b++) {
		const struct cvm_tpm_pcr_bank *bk = &pcrs->banks[b];
		json_t *vals = json_object();

		bad |= out_jset(banks, cvm_digest_name(bk->alg), vals);
		for (uint32_t i = 0; vals != NULL && i < SNAP_BOOT_PCRS; i++) {
			char k[4];

			if ((bk->valid & (1u << i)) == 0)
				continue;
			(void)snprintf(k, sizeof(k), "%u", i);
			bad |= out_jset_hex(vals, k, bk->values[i], cvm_digest_len(bk->alg));
		}
	}
	bad |= out_jset(d, "ima", ima);
	bad |= out_jset_str(ima, "bank", cvm_digest_name(e->res.ima_bank));
	entries = ima_entries(e, why, why_len);
	bad |= entries == NULL;
	bad |= out_jset(ima, "entries", entries);
	if (bad != 0) {
		if (why[0] == '\0')
			(void)snprintf(why, why_len, "out of memory");
		json_decref(d);
		return NULL;
	}
	return d;
}

/* ---- reading a snapshot -------------------------------------------------------- */

static bool is_hex(json_t *v, size_t min_len, size_t max_len)
{
	const char *s = json_string_value(v);
	size_t n;

	if (s == NULL)
		return false;
	n = strlen(s);
	if (n % 2 != 0 || n / 2 < min_len || n / 2 > max_len)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool is_uint(json_t *v, json_int_t max)
{
	return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max;
}

/* snp_tee_ok checks the "tee" section of an SEV-SNP snapshot: every field
 * tee_snp writes, with its type and length. */
static bool snp_tee_ok(json_t *tee, char *why, size_t why_len)
{
	static const struct {
		const char *name;
		size_t len;
	} hex[] = {{"measurement", 48}, {"host_data", 32}, {"id_key_digest", 48},   {"author_key_digest", 48},
	           {"family_id", 16},   {"image_id", 16},  {"agent_key_sha256", 32}};
	static const char *const tcb_parts[] = {"bootloader", "tee", "snp", "microcode"};
	json_t *tcb = json_object_get(tee, "reported_tcb"), *fmc;
	const char *signer = json_string_value(json_object_get(tee, "signer")), *binding;

	for (size_t i = 0; i < sizeof(hex) / sizeof(hex[0]); i++) {
		if (!is_hex(json_object_get(tee, hex[i].name), hex[i].len, hex[i].len)) {
			(void)snprintf(why, why_len, "\"tee.%s\" is not %zu bytes of hex (SEV-SNP)",
			               hex[i].name, hex[i].len);
			return false;
		}
	}
	if (!is_uint(json_object_get(tee, "policy"), INT64_MAX) ||
	    !is_uint(json_object_get(tee, "guest_svn"), UINT32_MAX)) {
		(void)snprintf(
		    why, why_len,
		    "\"tee.policy\" and \"tee.guest_svn\" must be non-negative integers (SEV-SNP)");
		return false;
	}
	if (signer == NULL || (strcmp(signer, "vcek") != 0 && strcmp(signer, "vlek") != 0)) {
		(void)snprintf(why, why_len, "\"tee.signer\" is neither \"vcek\" nor \"vlek\"");
		return false;
	}
	if (!is_hex(json_object_get(tcb, "raw"), 8, 8)) {
		(void)snprintf(why, why_len, "\"tee.reported_tcb.raw\" is not 8 bytes of hex");
		return false;
	}
	for (size_t i = 0; i < sizeof(tcb_parts) / sizeof(tcb_parts[0]); i++) {
		if (!is_uint(json_object_get(tcb, tcb_parts[i]), 255)) {
			(void)snprintf(why, why_len, "\"tee.reported_tcb.%s\" is not an SVN (0..255)",
			               tcb_parts[i]);
			return false;
		}
	}
	fmc = json_object_get(tcb, "fmc");
	if (fmc != NULL && !is_uint(fmc, 255)) {
		(void)snprintf(why, why_len, "\"tee.reported_tcb.fmc\" is not an SVN (0..255)");
		return false;
	}
	if (!is_hex(json_object_get(tee, "tpm_ak_name"), 2, CVM_TPM_NAME_MAX)) {
		(void)snprintf(why, why_len, "\"tee.tpm_ak_name\" is not a TPM Name in hex");
		return false;
	}
	binding = json_string_value(json_object_get(tee, "key_binding"));
	if (binding == NULL || strcmp(binding, "report_data") != 0) {
		(void)snprintf(why, why_len,
		               "\"tee.key_binding\" is not \"report_data\" (the only binding SEV-SNP has)");
		return false;
	}
	return true;
}

json_t *snap_load(const char *path, char *why, size_t why_len)
{
	json_t *d = NULL, *tee, *tpm, *pcrs, *ima, *ent, *v;
	json_error_t jerr;
	uint8_t *buf = NULL;
	size_t len = 0, i;
	const char *k;

	why[0] = '\0';
	if (cli_read_file(CMD, "snapshot", path, SNAP_FILE_MAX, &buf, &len) != CLI_EXIT_OK) {
		(void)snprintf(why, why_len, "cannot read it");
		return NULL;
	}
	d = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!json_is_object(d)) {
		(void)snprintf(why, why_len, "not a JSON object (line %d: %s)", jerr.line, jerr.text);
		goto bad;
	}
	v = json_object_get(d, "format");
	if (v == NULL && snap_cosmian_is(d)) {
		(void)snprintf(why, why_len,
		               "a Cosmian VM snapshot: carry it into a cvmkit snapshot of the live VM with "
		               "cvm snapshot --url https://HOST:PORT --cosmian FILE -o OUT");
		goto bad;
	}
	if (!json_is_string(v) || strcmp(json_string_value(v), SNAP_FORMAT) != 0) {
		(void)snprintf(why, why_len, "\"format\" is not \"%s\"", SNAP_FORMAT);
		goto bad;
	}
	v = json_object_get(d, "imported");
	if (v != NULL && (!json_is_object(v) || !json_is_string(json_object_get(v, "from")))) {
		(void)snprintf(why, why_len, "\"imported\" is not an object naming where from");
		goto bad;
	}
	v = json_object_get(d, "version");
	if (!json_is_integer(v) || json_integer_value(v) != SNAP_VERSION) {
		(void)snprintf(why, why_len, "\"version\" is not %d (the only one this cvm reads)",
		               SNAP_VERSION);
		goto bad;
	}
	v = json_object_get(d, "platform");
	tee = json_object_get(d, "tee");
	if (json_is_string(v) && strcmp(json_string_value(v), "tdx") == 0) {
		static const struct {
			const char *name;
			size_t len;
		} hex[] = {{"mrtd", 48},         {"rtmr0", 48},        {"rtmr1", 48},
		           {"rtmr2", 48},        {"td_attributes", 8}, {"xfam", 8},
		           {"mr_config_id", 48}, {"mr_owner", 48},     {"mr_owner_config", 48},
		           {"mr_seam", 48},      {"tee_tcb_svn", 16},  {"agent_key_sha256", 32}};

		for (i = 0; i < sizeof(hex) / sizeof(hex[0]); i++) {
			if (!is_hex(json_object_get(tee, hex[i].name), hex[i].len, hex[i].len)) {
				(void)snprintf(why, why_len, "\"tee.%s\" is not %zu bytes of hex (TDX)",
				               hex[i].name, hex[i].len);
				goto bad;
			}
		}
	} else if (json_is_string(v) && strcmp(json_string_value(v), "snp") == 0) {
		if (!snp_tee_ok(tee, why, why_len))
			goto bad;
	} else {
		(void)snprintf(why, why_len, "\"platform\" is neither \"tdx\" nor \"snp\"");
		goto bad;
	}
	tpm = json_object_get(d, "tpm");
	if (!is_hex(json_object_get(tpm, "ak_name"), 2, CVM_TPM_NAME_MAX) ||
	    !json_is_integer(json_object_get(tpm, "reset_count"))) {
		(void)snprintf(why, why_len, "\"tpm\" needs ak_name (hex) and reset_count");
		goto bad;
	}
	pcrs = json_object_get(tpm, "pcrs");
	if (!json_is_object(pcrs)) {
		(void)snprintf(why, why_len, "\"tpm.pcrs\" is not an object");
		goto bad;
	}
	json_object_foreach(pcrs, k, v)
	{
		const char *pk;
		json_t *pv;
		enum cvm_digest_alg alg;

		if (cvm_digest_from_name(k, &alg) != CVM_OK || !json_is_object(v)) {
			(void)snprintf(why, why_len, "\"tpm.pcrs\": an unknown bank or not an object");
			goto bad;
		}
		json_object_foreach(v, pk, pv)
		{
			if (strlen(pk) != 1 || pk[0] < '0' || pk[0] > '9' || !is_hex(pv, 20, 64)) {
				(void)snprintf(why, why_len,
				               "\"tpm.pcrs.%.16s\": PCRs are \"0\"..\"9\" with hex values",
				               k);
				goto bad;
			}
		}
	}
	ima = json_object_get(d, "ima");
	if (!json_is_array(json_object_get(ima, "entries"))) {
		(void)snprintf(why, why_len, "\"ima.entries\" is not an array");
		goto bad;
	}
	json_array_foreach(json_object_get(ima, "entries"), i, ent)
	{
		if (!json_is_string(json_object_get(ent, "path")) ||
		    !json_is_string(json_object_get(ent, "digest"))) {
			(void)snprintf(why, why_len,
			               "\"ima.entries\"[%zu] needs \"path\" and \"digest\" strings", i);
			goto bad;
		}
	}
	if (snap_files_check(d, why, why_len) != CVM_OK)
		goto bad;
	return d;
bad:
	json_decref(d);
	return NULL;
}

const char *snap_entry_key(json_t *entry, char *buf, size_t cap)
{
	(void)snprintf(buf, cap, "%s %s", json_string_value(json_object_get(entry, "digest")),
	               json_string_value(json_object_get(entry, "path")));
	return buf;
}

/* ---- cvm snapshot (take) -------------------------------------------------------- */

enum { OPT_URL = 0x200, OPT_ROOT, OPT_POLICY, OPT_AT, OPT_FILES, OPT_COSMIAN };

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: cvm snapshot --url https://HOST:PORT -o FILE [--collateral DIR] [--root CERT]\n"
	    "                    [--policy FILE] [--at UNIX_SECONDS]\n"
	    "                    [--cache DIR] [--intel-url URL] [--amd-url URL] [--offline]\n"
	    "                    [--refresh] [--refresh-after S] [--timeout MS] [--product NAME]\n"
	    "                    [--files] [--cosmian FILE]\n"
	    "       cvm snapshot show FILE [--json] [-v]\n"
	    "       cvm snapshot diff A B\n"
	    "\n"
	    "Records what a known-good VM looks like, from evidence cvm-agentd serves on its RA-TLS\n"
	    "listener: connects (TDX: the certificate key must be the one the agent recorded in RTMR3;\n"
	    "SEV-SNP: the certificate's report must bind it), asks GetEvidence with a fresh random\n"
	    "nonce, verifies it fully (TDX quote or SEV-SNP report and policy, the binding, the event\n"
	    "log, the TPM quote and its AK, the IMA prefix PCR 10 covers) and writes the snapshot\n"
	    "(docs/cli/cvm-snapshot.md) that cvm verify checks the VM against.\n"
	    "  --url https://HOST:PORT  the agent's TLS listener\n"
	    "  -o, --out FILE           where to write the snapshot (JSON)\n"
	    "  --collateral DIR         a folder holding tdx/ and/or snp/ (a simulator's DIR/collateral),\n"
	    "                           or the one platform's files; without it, the collateral cache\n"
	    "  --cache DIR, --intel-url, --amd-url, --offline, --refresh, --refresh-after S,\n"
	    "  --timeout MS, --product NAME: the cache, as in 'cvm help quote'\n"
	    "  --root CERT              the anchor: Intel's root CA (TDX) or the ARK (SEV-SNP) to pin\n"
	    "                           (default: Intel's own, AMD's built-in ARKs)\n"
	    "  --policy FILE            appraisal policy (docs/policy.md); recorded in the snapshot\n"
	    "  --at UNIX_SECONDS        verification time (default: now)\n"
	    "  --files                  also record a digest of every file the agent walks on the\n"
	    "                           guest's disks (progress on stderr; -q: none)\n"
	    "  --cosmian FILE           a Cosmian VM snapshot of this VM: its TEE policy must hold for the\n"
	    "                           verified evidence (else exit 3), its file hashes join the\n"
	    "                           reference set\n"
	    "show   prints a summary of a snapshot\n"
	    "diff   prints what differs between two snapshots; exit 1 when they differ\n"
	    "Exit codes: 0 ok, 1 error (or diff: different), 2 usage, 3 evidence rejected.\n");
}

int snap_load_policy(const char *cmd, const char *path, struct cvm_policy *p, json_t **doc)
{
	json_error_t jerr;
	char why[512];

	*doc = NULL;
	cvm_policy_init(p);
	if (path == NULL)
		return CLI_EXIT_OK;
	if (cvm_policy_load_file(path, p, why, sizeof(why)) != CVM_OK) {
		cli_err(cmd, "policy file '%s': %s; fix it (see docs/policy.md)", path, why);
		return CLI_EXIT_ERROR;
	}
	*doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (*doc == NULL) {
		cli_err(cmd, "policy file '%s': %s", path, jerr.text);
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static const char *sget(json_t *d, const char *a, const char *b);

static int snapshot_take(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"url", required_argument, NULL, OPT_URL},
	    {"out", required_argument, NULL, 'o'},
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"policy", required_argument, NULL, OPT_POLICY},
	    {"at", required_argument, NULL, OPT_AT},
	    CLI_COLL_LONGOPTS,
	    {"files", no_argument, NULL, OPT_FILES},
	    {"cosmian", required_argument, NULL, OPT_COSMIAN},
	    CLI_COMMON_LONGOPTS,
	};
	struct snap_remote rm;
	struct snap_evidence *e = NULL;
	struct cvm_policy *pol = NULL;
	json_t *pdoc = NULL, *doc = NULL;
	const char *out_path = NULL;
	char why[512] = "", reason[1024];
	char *text = NULL;
	bool at_set = false, with_files = false, is_cosmian = false;
	const char *cosmian_path = NULL;
	json_t *cosmian = NULL;
	int c, k, rc = CLI_EXIT_ERROR;

	memset(&rm, 0, sizeof(rm));
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqho:", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		k = cli_coll_option(CMD, &rm.coll, c, optarg);
		if (k < 0)
			return CLI_EXIT_USAGE;
		if (k > 0)
			continue;
		switch (c) {
		case OPT_URL:
			rm.url = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case OPT_ROOT:
			rm.root = optarg;
			break;
		case OPT_POLICY:
			rm.policy = optarg;
			break;
		case OPT_AT:
			if (!cli_parse_time(optarg, &rm.at)) {
				cli_err(CMD, "--at '%.40s': expected Unix seconds", optarg);
				return CLI_EXIT_USAGE;
			}
			at_set = true;
			break;
		case OPT_FILES:
			with_files = true;
			break;
		case OPT_COSMIAN:
			cosmian_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			cli_bad_option(CMD, c, argv, "cvm help snapshot");
			return CLI_EXIT_USAGE;
		}
	}
	cli_apply_verbosity();
	if (optind != argc || rm.url == NULL || out_path == NULL) {
		cli_err(CMD,
		        "usage: cvm snapshot --url https://HOST:PORT -o FILE [--collateral DIR | --cache DIR "
		        "...] [options]");
		return CLI_EXIT_USAGE;
	}
	if (cli_coll_check(CMD, &rm.coll) != CLI_EXIT_OK)
		return CLI_EXIT_USAGE;
	if (!snap_parse_url(&rm)) {
		cli_err(CMD, "--url '%s' is not https://HOST:PORT", rm.url);
		return CLI_EXIT_USAGE;
	}
	if (!at_set)
		rm.at = (int64_t)time(NULL);
	e = calloc(1, sizeof(*e));
	pol = calloc(1, sizeof(*pol));
	if (e == NULL || pol == NULL) {
		cli_err(CMD, "out of memory");
		goto out;
	}
	rc = snap_load_policy(CMD, rm.policy, pol, &pdoc);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (cosmian_path != NULL) {
		cosmian = snap_cosmian_load(cosmian_path, &is_cosmian, why, sizeof(why));
		if (cosmian == NULL) {
			cli_err(CMD, "--cosmian '%s' is not a usable Cosmian VM snapshot: %s", cosmian_path,
			        why);
			rc = CLI_EXIT_ERROR;
			goto out;
		}
	}
	rc = snap_fetch(CMD, &rm, pol, e);
	if (rc == CLI_EXIT_REJECTED)
		cli_err(CMD, "%s is rejected, no snapshot written: %s", rm.url, e->rejected);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (e->simulated)
		fprintf(stderr, "%s\n", CVM_TEE_SIMULATED_BANNER);
	if (e->verdict != CVM_OK) {
		snap_verdict_reason(e, rm.root != NULL, reason, sizeof(reason));
		cli_err(CMD, "the evidence of %s is rejected, no snapshot written: %s", rm.url, reason);
		rc = cli_exit_for(e->verdict);
		goto out;
	}
	doc = snap_document(&rm, e, pdoc, why, sizeof(why));
	if (doc == NULL) {
		cli_err(CMD, "cannot make the snapshot: %s", why);
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	rc = with_files ? snap_files_add(CMD, &rm, e, doc) : CLI_EXIT_OK;
	if (rc != CLI_EXIT_OK)
		goto out;
	if (cosmian != NULL) {
		int r = snap_cosmian_apply(cosmian, cosmian_path, e, doc, why, sizeof(why));

		if (r != CVM_OK) {
			cli_err(CMD,
			        "%s does not match the Cosmian VM snapshot '%s', no snapshot written: %s",
			        rm.url, cosmian_path, why);
			rc = r == CVM_E_MISMATCH ? CLI_EXIT_REJECTED : CLI_EXIT_ERROR;
			goto out;
		}
	}
	text = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	if (text == NULL || cvm_file_write(out_path, text, strlen(text), 0644) != CVM_OK) {
		cli_err(CMD, "cannot write '%s': %s", out_path, strerror(errno));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	if (e->from_cache && !cli_opts.quiet)
		cli_cache_info_text(&e->coll_info);
	if (!cli_opts.quiet)
		printf(
		    "snapshot of %s written to %s: %s, TCB %s, AK %s, %zu boot PCRs, %zu IMA (path, digest) "
		    "pairs from %llu quoted entries\n",
		    rm.url, out_path, e->platform == CVM_EVIDENCE_SNP ? "SEV-SNP" : "TDX",
		    sget(doc, "tcb", "status"),
		    json_string_value(json_object_get(json_object_get(doc, "tpm"), "ak_name")),
		    json_object_size(
		        json_object_get(json_object_get(json_object_get(doc, "tpm"), "pcrs"), "sha256")),
		    json_array_size(json_object_get(json_object_get(doc, "ima"), "entries")),
		    (unsigned long long)e->res.ima_quoted_entries);
	if (!cli_opts.quiet && cosmian != NULL)
		printf(
		    "carried over from the Cosmian VM snapshot %s: its TEE policy holds for this VM; %lld of "
		    "its %lld (path, digest) pairs were new to the reference set\n",
		    cosmian_path,
		    (long long)json_integer_value(
		        json_object_get(json_object_get(doc, "imported"), "pairs_added")),
		    (long long)json_integer_value(
		        json_object_get(json_object_get(doc, "imported"), "filehashes")));
	if (!cli_opts.quiet)
		snap_files_show(doc, 0);
	rc = CLI_EXIT_OK;
out:
	free(text);
	json_decref(doc);
	json_decref(pdoc);
	json_decref(cosmian);
	if (e != NULL)
		snap_evidence_cleanup(e);
	free(e);
	free(pol);
	return rc;
}

/* ---- show and diff ------------------------------------------------------------- */

/* sget lends d.a.b (d.a when b is NULL), sanitised for the terminal (a snapshot file is
 * anyone's text), from one of a few rotating buffers. */
static const char *sget(json_t *d, const char *a, const char *b)
{
	static char bufs[8][PATH_TEXT_MAX + 256];
	static size_t next;
	json_t *v = json_object_get(d, a);
	const char *s = json_string_value(b != NULL ? json_object_get(v, b) : v);
	char *out = bufs[next++ % 8];

	out_sanitize(s != NULL ? s : "(none)", out, sizeof(bufs[0]));
	return out;
}

/* show_snp prints the "tee" section of an SEV-SNP snapshot (snap_load
 * checked every field's type). */
static void show_snp(json_t *d)
{
	json_t *tee = json_object_get(d, "tee"), *tcb = json_object_get(tee, "reported_tcb");

	printf("platform: snp\n  measurement       %s\n  host_data         %s\n",
	       sget(d, "tee", "measurement"), sget(d, "tee", "host_data"));
	printf("  id_key_digest     %s\n  author_key_digest %s\n", sget(d, "tee", "id_key_digest"),
	       sget(d, "tee", "author_key_digest"));
	printf("  family_id         %s\n  image_id          %s\n", sget(d, "tee", "family_id"),
	       sget(d, "tee", "image_id"));
	printf("  policy 0x%llx, guest_svn %lld, signed by a %s\n",
	       (unsigned long long)json_integer_value(json_object_get(tee, "policy")),
	       (long long)json_integer_value(json_object_get(tee, "guest_svn")),
	       strcmp(sget(d, "tee", "signer"), "vlek") == 0 ? "VLEK" : "VCEK");
	printf("  reported TCB %s: bootloader %lld, tee %lld, snp %lld, microcode %lld",
	       sget(tcb, "raw", NULL), (long long)json_integer_value(json_object_get(tcb, "bootloader")),
	       (long long)json_integer_value(json_object_get(tcb, "tee")),
	       (long long)json_integer_value(json_object_get(tcb, "snp")),
	       (long long)json_integer_value(json_object_get(tcb, "microcode")));
	if (json_object_get(tcb, "fmc") != NULL)
		printf(", fmc %lld", (long long)json_integer_value(json_object_get(tcb, "fmc")));
	printf("\n  agent key (SHA-256 of its SPKI, bound by the certificate's report_data) %s\n",
	       sget(d, "tee", "agent_key_sha256"));
}

static int snapshot_show(int argc, char **argv)
{
	json_t *d, *pcrs, *bank, *v, *ent;
	const char *bk, *k;
	char why[512];
	size_t i;
	bool cosmian = false;

	const char *path = NULL;

	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--json") == 0)
			cli_opts.json = true;
		else if (strcmp(argv[a], "-v") == 0)
			cli_opts.verbose++;
		else if (path == NULL && argv[a][0] != '-')
			path = argv[a];
		else {
			cli_err(CMD " show", "usage: cvm snapshot show FILE [--json] [-v]");
			return CLI_EXIT_USAGE;
		}
	}
	if (path == NULL) {
		cli_err(CMD " show", "expected one FILE");
		return CLI_EXIT_USAGE;
	}
	d = snap_cosmian_load(path, &cosmian, why, sizeof(why));
	if (cosmian) {
		if (d == NULL) {
			cli_err(CMD " show", "'%s' is not a usable Cosmian VM snapshot: %s", path, why);
			return CLI_EXIT_ERROR;
		}
		if (cli_opts.json) {
			int bad = out_json_print(d);

			json_decref(d);
			return bad != 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
		}
		snap_cosmian_print(d, path, cli_opts.verbose > 0);
		json_decref(d);
		return CLI_EXIT_OK;
	}
	json_decref(d);
	d = snap_load(path, why, sizeof(why));
	if (d == NULL) {
		cli_err(CMD " show", "'%s' is not a usable snapshot: %s", path, why);
		return CLI_EXIT_ERROR;
	}
	if (cli_opts.json) {
		int bad = out_json_print(d);

		json_decref(d);
		return bad != 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
	}
	printf("snapshot %s (format %s version %d)\n", path, SNAP_FORMAT, SNAP_VERSION);
	printf("taken: at %lld from %s\n",
	       (long long)json_integer_value(json_object_get(json_object_get(d, "taken"), "at")),
	       sget(d, "taken", "url"));
	if (json_is_true(json_object_get(d, "simulated")))
		printf("%s\n", CVM_TEE_SIMULATED_BANNER);
	if (strcmp(sget(d, "platform", NULL), "snp") == 0)
		show_snp(d);
	else {
		printf("platform: tdx\n  mrtd  %s\n  rtmr0 %s\n  rtmr1 %s\n  rtmr2 %s\n",
		       sget(d, "tee", "mrtd"), sget(d, "tee", "rtmr0"), sget(d, "tee", "rtmr1"),
		       sget(d, "tee", "rtmr2"));
		printf("  td_attributes %s, xfam %s\n  mr_config_id    %s\n  mr_owner        %s\n"
		       "  mr_owner_config %s\n",
		       sget(d, "tee", "td_attributes"), sget(d, "tee", "xfam"),
		       sget(d, "tee", "mr_config_id"), sget(d, "tee", "mr_owner"),
		       sget(d, "tee", "mr_owner_config"));
		printf("  TDX module: mr_seam %s, TEE TCB SVN %s (the floor)\n", sget(d, "tee", "mr_seam"),
		       sget(d, "tee", "tee_tcb_svn"));
		printf("  agent key (SHA-256 of its SPKI, recorded in RTMR3) %s\n",
		       sget(d, "tee", "agent_key_sha256"));
	}
	printf("tcb: status %s, policy %s\n", sget(d, "tcb", "status"),
	       json_is_object(json_object_get(json_object_get(d, "tcb"), "policy")) ? "from a file (recorded)"
	                                                                            : "the strict defaults");
	v = json_object_get(d, "imported");
	if (v != NULL)
		printf("imported: %lld (path, digest) pairs from %s's snapshot %s\n",
		       (long long)json_integer_value(json_object_get(v, "pairs_added")),
		       sget(d, "imported", "from"), sget(d, "imported", "file"));
	printf("tpm: AK %s, resetCount %lld\n", sget(d, "tpm", "ak_name"),
	       (long long)json_integer_value(json_object_get(json_object_get(d, "tpm"), "reset_count")));
	pcrs = json_object_get(json_object_get(d, "tpm"), "pcrs");
	json_object_foreach(pcrs, bk, bank)
	{
		json_object_foreach(bank, k, v)
		{
			printf("  %s:%s %s\n", bk, k, json_string_value(v)); /* snap_load checked: hex */
		}
	}
	printf("ima: %zu (path, digest) pairs (bank %s)\n",
	       json_array_size(json_object_get(json_object_get(d, "ima"), "entries")),
	       sget(d, "ima", "bank"));
	if (cli_opts.verbose > 0) {
		json_array_foreach(json_object_get(json_object_get(d, "ima"), "entries"), i, ent)
		{
			printf("  %s %s\n", sget(ent, "digest", NULL), sget(ent, "path", NULL));
		}
	}
	snap_files_show(d, cli_opts.verbose);
	json_decref(d);
	return CLI_EXIT_OK;
}

/* diff_value reports a changed scalar under `path`; returns 1 if changed. */
static int diff_json(const char *path, json_t *a, json_t *b);

static int diff_object(const char *path, json_t *a, json_t *b)
{
	const char *k;
	json_t *v;
	char sub[256];
	int n = 0;

	json_object_foreach(a, k, v)
	{
		(void)snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] != '\0' ? "." : "", k);
		n += diff_json(sub, v, json_object_get(b, k));
	}
	json_object_foreach(b, k, v)
	{
		if (json_object_get(a, k) != NULL)
			continue;
		(void)snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] != '\0' ? "." : "", k);
		n += diff_json(sub, NULL, v);
	}
	return n;
}

static int diff_json(const char *path, json_t *a, json_t *b)
{
	char *ta, *tb;
	int n = 0;

	if (strcmp(path, "taken") == 0 || strcmp(path, "ima.entries") == 0 ||
	    strcmp(path, "files.entries") == 0 || strcmp(path, "files.skipped_entries") == 0 ||
	    (strcmp(path, "files") == 0 && (a == NULL || b == NULL)))
		return 0;
	if (json_is_object(a) && json_is_object(b) && strcmp(path, "tcb.policy") != 0)
		return diff_object(path, a, b);
	if (a != NULL && b != NULL && json_equal(a, b))
		return 0;
	ta = a != NULL ? json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	tb = b != NULL ? json_dumps(b, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	printf("changed: %s: %s -> %s\n", path, ta != NULL ? ta : "(absent)", tb != NULL ? tb : "(absent)");
	n = 1;
	free(ta);
	free(tb);
	return n;
}

/* entry_keys lists the sorted "DIGEST PATH" keys of a snapshot's IMA set. */
static char **entry_keys(json_t *d, size_t *count)
{
	json_t *arr = json_object_get(json_object_get(d, "ima"), "entries"), *ent;
	char **keys = calloc(json_array_size(arr) + 1, sizeof(*keys)), buf[PATH_TEXT_MAX + 256];
	size_t i;

	*count = 0;
	if (keys == NULL)
		return NULL;
	json_array_foreach(arr, i, ent)
	{
		keys[i] = strdup(snap_entry_key(ent, buf, sizeof(buf)));
		if (keys[i] == NULL) {
			for (size_t j = 0; j < i; j++)
				free(keys[j]);
			free(keys);
			return NULL;
		}
	}
	*count = json_array_size(arr);
	qsort(keys, *count, sizeof(*keys), cmp_str);
	return keys;
}

static int snapshot_diff(int argc, char **argv)
{
	json_t *a = NULL, *b = NULL;
	char **ka = NULL, **kb = NULL, why[512], text[PATH_TEXT_MAX + 256];
	size_t na = 0, nb = 0, i = 0, j = 0;
	int n = 0, rc = CLI_EXIT_ERROR;

	if (argc != 3) {
		cli_err(CMD " diff", "expected two snapshot files: cvm snapshot diff A B");
		return CLI_EXIT_USAGE;
	}
	a = snap_load(argv[1], why, sizeof(why));
	if (a == NULL) {
		cli_err(CMD " diff", "'%s' is not a usable snapshot: %s", argv[1], why);
		goto out;
	}
	b = snap_load(argv[2], why, sizeof(why));
	if (b == NULL) {
		cli_err(CMD " diff", "'%s' is not a usable snapshot: %s", argv[2], why);
		goto out;
	}
	n = diff_object("", a, b);
	ka = entry_keys(a, &na);
	kb = entry_keys(b, &nb);
	if (ka == NULL || kb == NULL) {
		cli_err(CMD " diff", "out of memory");
		goto out;
	}
	while (i < na || j < nb) {
		int c = i == na ? 1 : j == nb ? -1 : strcmp(ka[i], kb[j]);

		if (c == 0) {
			i++;
			j++;
			continue;
		}
		out_sanitize(c < 0 ? ka[i] : kb[j], text, sizeof(text));
		printf("ima: %s %s\n", c < 0 ? "only in A:" : "only in B:", text);
		n++;
		if (c < 0)
			i++;
		else
			j++;
	}
	n += snap_files_diff(a, b);
	if (n == 0)
		printf("the snapshots are the same (the \"taken\" metadata aside)\n");
	rc = n == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
out:
	for (size_t k = 0; ka != NULL && k < na; k++)
		free(ka[k]);
	for (size_t k = 0; kb != NULL && k < nb; k++)
		free(kb[k]);
	free(ka);
	free(kb);
	json_decref(a);
	json_decref(b);
	return rc;
}

int cmd_snapshot(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "show") == 0)
		return snapshot_show(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "diff") == 0)
		return snapshot_diff(argc - 1, argv + 1);
	return snapshot_take(argc, argv);
}

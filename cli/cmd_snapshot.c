/* cvm snapshot: record what a known-good VM looks like, from evidence that
 * cvm-agentd serves on its RA-TLS listener, and show or compare snapshots.
 *
 *   cvm snapshot --url https://HOST:PORT -o FILE --collateral DIR [--root CERT] [--policy FILE]
 *                [--at T] [--json]
 *   cvm snapshot show FILE [--json]
 *   cvm snapshot diff A B
 *
 * The RA-TLS client, the evidence verification and the document are shared
 * with cmd_verify.c (snapshot.h). See docs/cli/cvm-snapshot.md. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
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
#include "output.h"
#include "snapshot.h"

#define CMD "snapshot"
#define NET_TIMEOUT_S 60
#define HEADERS_MAX ((size_t)16 * 1024)
#define REPLY_MAX (HEADERS_MAX + CVM_EVIDENCE_JSON_MAX)
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

static int dial(const char *cmd, const struct snap_remote *rm)
{
	struct addrinfo hints, *res = NULL;
	struct timeval tv = {NET_TIMEOUT_S, 0};
	int fd = -1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	e = getaddrinfo(rm->host, rm->port, &hints, &res);
	if (e != 0) {
		cli_err(cmd, "cannot resolve '%s': %s", rm->host, gai_strerror(e));
		return -1;
	}
	for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		e = errno;
		(void)close(fd);
		fd = -1;
		errno = e;
	}
	if (fd < 0)
		cli_err(cmd, "cannot connect to %s: %s (is cvm-agentd's TLS listener there?)", rm->url,
		        strerror(errno));
	freeaddrinfo(res);
	return fd;
}

static bool write_all(SSL *ssl, const char *p, size_t len)
{
	while (len > 0) {
		int n = SSL_write(ssl, p, len > (size_t)INT32_MAX ? INT32_MAX : (int)len);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static size_t header_end(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i + 4 <= len && i < HEADERS_MAX; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return i;
	return 0;
}

/* content_length reads the one Content-Length header of the header block
 * (`hl` bytes); false when it is absent, repeated or not a number. */
static bool content_length(const uint8_t *buf, size_t hl, size_t *out)
{
	static const char name[] = "\r\ncontent-length:";
	const size_t nl = sizeof(name) - 1;
	bool found = false;

	for (size_t i = 0; i + nl <= hl; i++) {
		size_t j = i + nl, v = 0;
		bool digits = false;

		if (strncasecmp((const char *)buf + i, name, nl) != 0)
			continue;
		if (found)
			return false;
		while (j < hl && (buf[j] == ' ' || buf[j] == '\t'))
			j++;
		while (j < hl && buf[j] >= '0' && buf[j] <= '9') {
			if (v > REPLY_MAX / 10)
				return false;
			v = v * 10 + (size_t)(buf[j] - '0');
			digits = true;
			j++;
		}
		while (j < hl && (buf[j] == ' ' || buf[j] == '\t'))
			j++;
		if (!digits || (j < hl && buf[j] != '\r'))
			return false;
		*out = v;
		found = true;
	}
	return found;
}

/* read_reply reads one HTTP/1.1 answer with a Content-Length of at most
 * REPLY_MAX bytes: the status line's code to *status, the body to *out. */
static int read_reply(SSL *ssl, int *status, uint8_t **out, size_t *out_len)
{
	size_t cap = (size_t)256 * 1024, len = 0, hl = 0, cl = 0;
	uint8_t *buf = calloc(1, cap), *body;

	*status = 0;
	*out = NULL;
	*out_len = 0;
	if (buf == NULL)
		return CVM_E_NOMEM;
	for (;;) {
		int n;

		if (hl == 0 && (hl = header_end(buf, len)) != 0) {
			if (!content_length(buf, hl, &cl) || cl > REPLY_MAX - hl - 4) {
				free(buf);
				return CVM_E_FORMAT;
			}
		}
		if (hl == 0 && len >= HEADERS_MAX) {
			free(buf);
			return CVM_E_TOO_LARGE;
		}
		if (hl != 0 && len >= hl + 4 + cl)
			break;
		if (len == cap) {
			uint8_t *nb;

			cap = cap * 2 > REPLY_MAX ? REPLY_MAX : cap * 2;
			nb = calloc(1, cap);
			if (nb == NULL) {
				free(buf);
				return CVM_E_NOMEM;
			}
			memcpy(nb, buf, len);
			free(buf);
			buf = nb;
		}
		n = SSL_read(ssl, buf + len, (int)(cap - len > (size_t)INT32_MAX ? INT32_MAX : cap - len));
		if (n <= 0) {
			ERR_clear_error();
			free(buf);
			return hl != 0 ? CVM_E_TRUNCATED : CVM_E_SYSTEM;
		}
		len += (size_t)n;
	}
	if (len < 13 || memcmp(buf, "HTTP/1.1 ", 9) != 0 || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' ||
	    buf[10] > '9' || buf[11] < '0' || buf[11] > '9') {
		free(buf);
		return CVM_E_FORMAT;
	}
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	body = malloc(cl + 1);
	if (body == NULL) {
		free(buf);
		return CVM_E_NOMEM;
	}
	memcpy(body, buf + hl + 4, cl);
	body[cl] = '\0';
	free(buf);
	*out = body;
	*out_len = cl;
	return CVM_OK;
}

/* For snapshot_files.c, which asks the same listener for the file walk. */
int snap_dial(const char *cmd, const struct snap_remote *rm)
{
	return dial(cmd, rm);
}

bool snap_write_all(struct ssl_st *ssl, const char *p, size_t len)
{
	return write_all(ssl, p, len);
}

int snap_read_reply(struct ssl_st *ssl, int *status, uint8_t **out, size_t *out_len)
{
	return read_reply(ssl, status, out, out_len);
}

/* load_trust loads the TDX collateral and the Intel root the options name. */
static int load_trust(const char *cmd, const struct snap_remote *rm, struct cvm_dcap_collateral **dcap,
                      uint8_t **root, size_t *root_len)
{
	char path[4096], err[4352] = "";
	int r;

	*dcap = NULL;
	*root = NULL;
	*root_len = 0;
	if (rm->root != NULL &&
	    cli_load_cert(cmd, "--root certificate", rm->root, root, root_len) != CLI_EXIT_OK)
		return CLI_EXIT_ERROR;
	if (snprintf(path, sizeof(path), "%s/tdx", rm->collateral) >= (int)sizeof(path)) {
		cli_err(cmd, "--collateral: the path is too long");
		return CLI_EXIT_ERROR;
	}
	r = cvm_dcap_collateral_load_dir(path, dcap, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(
		    cmd,
		    "cannot load the TDX collateral from '%s': %s (give the folder that holds tdx/, e.g. a "
		    "simulator's DIR/collateral)",
		    path, err[0] != '\0' ? err : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

/* get_evidence does the TLS connection and the GetEvidence request. */
static int get_evidence(const char *cmd, const struct snap_remote *rm, struct cvm_ratls_verifier *v,
                        struct snap_evidence *e)
{
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	X509 *peer = NULL;
	unsigned char *spki = NULL;
	char hex[2 * SNAP_NONCE_LEN + 1], body[128], req[1024];
	double t0;
	int fd = -1, status = 0, n, r, rc = CLI_EXIT_ERROR;

	t0 = now_ms();
	r = cvm_tls_client_ctx_new(v, NULL, NULL, &ctx);
	if (r != CVM_OK) {
		cli_err(cmd, "cannot make the TLS context: %s", cvm_strerror(r));
		goto out;
	}
	fd = dial(cmd, rm);
	if (fd < 0)
		goto out;
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		cli_err(cmd, "out of memory");
		goto out;
	}
	if (SSL_connect(ssl) != 1) {
		const char *pe = cvm_tls_peer_error(ssl);
		unsigned long le = ERR_peek_error();

		if (pe != NULL) {
			(void)snprintf(e->rejected, sizeof(e->rejected), "%s", pe);
			rc = CLI_EXIT_REJECTED;
		} else {
			cli_err(cmd, "TLS 1.3 handshake with %s failed: %s", rm->url,
			        le != 0 ? ERR_reason_error_string(le) : "the connection closed");
		}
		ERR_clear_error();
		goto out;
	}
	peer = SSL_get1_peer_certificate(ssl);
	n = peer != NULL ? i2d_PUBKEY(X509_get0_pubkey(peer), &spki) : -1;
	if (n <= 0) {
		cli_err(cmd, "cannot read the peer's public key");
		goto out;
	}
	cvm_sha256(spki, (size_t)n, e->agent_key);
	e->t_handshake = now_ms() - t0;

	t0 = now_ms();
	cvm_hex_encode(e->nonce, sizeof(e->nonce), hex);
	(void)snprintf(body, sizeof(body), "{\"nonce\": \"%s\"}", hex);
	(void)snprintf(req, sizeof(req),
	               "POST /GetEvidence HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
	               "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	               rm->host, strlen(body), body);
	if (!write_all(ssl, req, strlen(req))) {
		cli_err(cmd, "cannot send GetEvidence to %s", rm->url);
		ERR_clear_error();
		goto out;
	}
	r = read_reply(ssl, &status, &e->bundle, &e->bundle_len);
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
	OPENSSL_free(spki);
	X509_free(peer);
	if (ssl != NULL)
		(void)SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		(void)close(fd);
	ERR_clear_error();
	return rc;
}

int snap_fetch(const char *cmd, const struct snap_remote *rm, const struct cvm_policy *policy,
               struct snap_evidence *e)
{
	struct cvm_dcap_collateral *dcap = NULL;
	struct cvm_ratls_verifier_opts o;
	struct cvm_ratls_verifier *v = NULL;
	struct cvm_evidence_opts eo;
	uint8_t *root = NULL;
	size_t root_len = 0;
	char why[512] = "";
	double t0 = now_ms();
	int r, rc;

	memset(e, 0, sizeof(*e));
	cvm_report_init(&e->rep);
	e->verdict = CVM_E_INTERNAL;
	rc = load_trust(cmd, rm, &dcap, &root, &root_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	memset(&o, 0, sizeof(o));
	o.policy = policy;
	o.dcap = dcap;
	o.intel_root_der = root;
	o.intel_root_der_len = root_len;
	o.require_system_key = true; /* the agent's identity key, as RTMR3 recorded it */
	r = cvm_ratls_verifier_new(&o, rm->at, &v);
	if (r != CVM_OK) {
		cli_err(cmd, "the collateral in '%s/tdx' does not verify against %s: %s", rm->collateral,
		        root != NULL ? "the --root given" : "Intel's root CA", cvm_strerror(r));
		rc = cli_exit_for(r);
		goto out;
	}
	r = cvm_random_bytes(e->nonce, sizeof(e->nonce)); /* fresh, never zero or reused */
	if (r != CVM_OK) {
		cli_err(cmd, "cannot draw a random nonce: %s", cvm_strerror(r));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	e->t_setup = now_ms() - t0;
	rc = get_evidence(cmd, rm, v, e);
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
	eo.dcap = dcap;
	eo.root_der = root;
	eo.root_der_len = root_len;
	eo.at = rm->at;
	eo.policy = policy;
	eo.require_tpm = true;
	eo.require_ima = true;
	if (cvm_evidence_platform(e->ev) != CVM_EVIDENCE_TDX) {
		cvm_report_add(&e->rep, "evidence.platform", false,
		               "SEV-SNP evidence: cvm snapshot and cvm verify take TDX only for now");
		e->verdict = CVM_E_UNSUPPORTED;
	} else {
		e->verdict = cvm_evidence_verify(e->ev, &eo, &e->rep, &e->res);
	}
	e->simulated = cvm_evidence_claims_simulated(e->ev) || cvm_tee_is_simulated_root(root, root_len);
	e->t_verify = now_ms() - t0;
out:
	cvm_ratls_verifier_free(v);
	cvm_dcap_collateral_free(dcap);
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

/* escape_name writes an IMA event name as printable ASCII: bytes outside
 * 0x21..0x7e, and the backslash, as \xNN. */
static void escape_name(const uint8_t *p, size_t n, char *out, size_t cap)
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
		escape_name(ent.name.p, ent.name.len, name, sizeof(name));
		if (ent.is_violation) {
			(void)snprintf(dig, sizeof(dig), "violation");
			algo[0] = '\0';
		} else if (ent.template_id == CVM_IMA_TEMPLATE_OTHER || ent.digest.len > 64) {
			cvm_hex_encode(ent.template_digest, sizeof(ent.template_digest), dig);
			(void)snprintf(algo, sizeof(algo), "template-sha1:");
		} else {
			cvm_hex_encode(ent.digest.p, ent.digest.len, dig);
			escape_name(ent.digest_algo.p, ent.digest_algo.len > 16 ? 16 : ent.digest_algo.len,
			            algo, sizeof(algo) - 1);
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

json_t *snap_document(const struct snap_remote *rm, const struct snap_evidence *e, json_t *policy_doc,
                      char *why, size_t why_len)
{
	const struct cvm_tdx_report *td = &e->res.dcap.quote.body.td;
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
	bad |= out_jset_str(d, "platform", "tdx");
	bad |= out_jset(d, "tee", tee);
	bad |= out_jset_hex(tee, "mrtd", td->mr_td, sizeof(td->mr_td));
	for (size_t i = 0; i < 3; i++) {
		char k[8];

		(void)snprintf(k, sizeof(k), "rtmr%zu", i);
		bad |= out_jset_hex(tee, k, td->rtmr[i], sizeof(td->rtmr[i]));
	}
	bad |= out_jset_hex(tee, "agent_key_sha256", e->agent_key, sizeof(e->agent_key));
	bad |= out_jset_hex(tee, "tpm_ak_name", e->res.ak_name, e->res.ak_name_len);
	bad |= out_jset(d, "tcb", tcb);
	bad |= out_jset_str(tcb, "status", cvm_tcb_status_name(e->res.dcap.tcb_status));
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
	if (!json_is_string(v) || strcmp(json_string_value(v), SNAP_FORMAT) != 0) {
		(void)snprintf(why, why_len, "\"format\" is not \"%s\"", SNAP_FORMAT);
		goto bad;
	}
	v = json_object_get(d, "version");
	if (!json_is_integer(v) || json_integer_value(v) != SNAP_VERSION) {
		(void)snprintf(why, why_len, "\"version\" is not %d (the only one this cvm reads)",
		               SNAP_VERSION);
		goto bad;
	}
	v = json_object_get(d, "platform");
	if (!json_is_string(v) || strcmp(json_string_value(v), "tdx") != 0) {
		(void)snprintf(why, why_len, "\"platform\" is not \"tdx\"");
		goto bad;
	}
	tee = json_object_get(d, "tee");
	if (!is_hex(json_object_get(tee, "mrtd"), 48, 48) || !is_hex(json_object_get(tee, "rtmr0"), 48, 48) ||
	    !is_hex(json_object_get(tee, "rtmr1"), 48, 48) ||
	    !is_hex(json_object_get(tee, "rtmr2"), 48, 48) ||
	    !is_hex(json_object_get(tee, "agent_key_sha256"), 32, 32)) {
		(void)snprintf(why, why_len,
		               "\"tee\" needs mrtd, rtmr0..2 (48 bytes of hex) and agent_key_sha256 "
		               "(32 bytes)");
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

enum { OPT_URL = 0x200, OPT_COLLATERAL, OPT_ROOT, OPT_POLICY, OPT_AT, OPT_FILES };

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: cvm snapshot --url https://HOST:PORT -o FILE --collateral DIR [--root CERT]\n"
	        "                    [--policy FILE] [--at UNIX_SECONDS]\n"
	        "       cvm snapshot show FILE [--json]\n"
	        "       cvm snapshot diff A B\n"
	        "\n"
	        "Records what a known-good VM looks like, from evidence cvm-agentd serves on its RA-TLS\n"
	        "listener: connects (the certificate key must be the one the agent recorded in RTMR3),\n"
	        "asks GetEvidence with a fresh random nonce, verifies it fully (TDX quote and policy, the\n"
	        "binding, the event log, the TPM quote and its AK, the IMA prefix PCR 10 covers) and\n"
	        "writes the snapshot (docs/cli/cvm-snapshot.md) that cvm verify checks the VM against.\n"
	        "  --url https://HOST:PORT  the agent's TLS listener\n"
	        "  -o, --out FILE           where to write the snapshot (JSON)\n"
	        "  --collateral DIR         a folder holding tdx/ (a simulator's DIR/collateral)\n"
	        "  --root CERT              Intel's root CA to anchor in (default: Intel's own)\n"
	        "  --policy FILE            appraisal policy (docs/policy.md); recorded in the snapshot\n"
	        "  --at UNIX_SECONDS        verification time (default: now)\n"
	        "  --files                  also record a digest of every file the agent walks on the\n"
	        "                           guest's disks (progress on stderr; -q: none)\n"
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

static int snapshot_take(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"url", required_argument, NULL, OPT_URL},
	    {"out", required_argument, NULL, 'o'},
	    {"collateral", required_argument, NULL, OPT_COLLATERAL},
	    {"root", required_argument, NULL, OPT_ROOT},
	    {"policy", required_argument, NULL, OPT_POLICY},
	    {"at", required_argument, NULL, OPT_AT},
	    {"files", no_argument, NULL, OPT_FILES},
	    CLI_COMMON_LONGOPTS,
	};
	struct snap_remote rm;
	struct snap_evidence *e = NULL;
	struct cvm_policy *pol = NULL;
	json_t *pdoc = NULL, *doc = NULL;
	const char *out_path = NULL;
	char why[512] = "", reason[1024];
	char *text = NULL;
	bool at_set = false, with_files = false;
	int c, rc = CLI_EXIT_ERROR;

	memset(&rm, 0, sizeof(rm));
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqho:", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_URL:
			rm.url = optarg;
			break;
		case 'o':
			out_path = optarg;
			break;
		case OPT_COLLATERAL:
			rm.collateral = optarg;
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
		case 'h':
			usage(stdout);
			return CLI_EXIT_OK;
		default:
			cli_bad_option(CMD, c, argv, "cvm help snapshot");
			return CLI_EXIT_USAGE;
		}
	}
	cli_apply_verbosity();
	if (optind != argc || rm.url == NULL || out_path == NULL || rm.collateral == NULL) {
		cli_err(CMD, "usage: cvm snapshot --url https://HOST:PORT -o FILE --collateral DIR [options] "
		             "(--collateral is required for now: the collateral cache is not used yet)");
		return CLI_EXIT_USAGE;
	}
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
	rc = snap_fetch(CMD, &rm, pol, e);
	if (rc == CLI_EXIT_REJECTED)
		cli_err(CMD, "%s is rejected, no snapshot written: %s", rm.url, e->rejected);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (e->simulated)
		fprintf(stderr, "%s\n", CVM_TEE_SIMULATED_BANNER);
	if (e->verdict != CVM_OK) {
		out_verdict_reason(&e->rep, e->verdict, reason, sizeof(reason));
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
	text = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	if (text == NULL || cvm_file_write(out_path, text, strlen(text), 0644) != CVM_OK) {
		cli_err(CMD, "cannot write '%s': %s", out_path, strerror(errno));
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	if (!cli_opts.quiet)
		printf(
		    "snapshot of %s written to %s: TDX, TCB %s, AK %s, %zu boot PCRs, %zu IMA (path, digest) "
		    "pairs from %llu quoted entries\n",
		    rm.url, out_path, cvm_tcb_status_name(e->res.dcap.tcb_status),
		    json_string_value(json_object_get(json_object_get(doc, "tpm"), "ak_name")),
		    json_object_size(
		        json_object_get(json_object_get(json_object_get(doc, "tpm"), "pcrs"), "sha256")),
		    json_array_size(json_object_get(json_object_get(doc, "ima"), "entries")),
		    (unsigned long long)e->res.ima_quoted_entries);
	if (!cli_opts.quiet)
		snap_files_show(doc, 0);
	rc = CLI_EXIT_OK;
out:
	free(text);
	json_decref(doc);
	json_decref(pdoc);
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

static int snapshot_show(int argc, char **argv)
{
	json_t *d, *pcrs, *bank, *v, *ent;
	const char *bk, *k;
	char why[512];
	size_t i;

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
	printf("platform: tdx\n  mrtd  %s\n  rtmr0 %s\n  rtmr1 %s\n  rtmr2 %s\n", sget(d, "tee", "mrtd"),
	       sget(d, "tee", "rtmr0"), sget(d, "tee", "rtmr1"), sget(d, "tee", "rtmr2"));
	printf("  agent key (SHA-256 of its SPKI, recorded in RTMR3) %s\n",
	       sget(d, "tee", "agent_key_sha256"));
	printf("tcb: status %s, policy %s\n", sget(d, "tcb", "status"),
	       json_is_object(json_object_get(json_object_get(d, "tcb"), "policy")) ? "from a file (recorded)"
	                                                                            : "the strict defaults");
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

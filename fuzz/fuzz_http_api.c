/* libFuzzer harness for cvm-agentd's HTTP/JSON handlers (daemons/common
 * rpc.c and daemons/agent/api.c) and the server's framing check
 * (cvm_httpd_check_framing in daemons/common/httpd.c), driven without
 * sockets: the input becomes one request, which the same dispatcher the
 * daemon uses answers, against a real agent over a simulated TEE made once
 * in a temporary folder.
 *
 * Input: "<METHOD> <dstack|tappd|tls> <content-type or ->\n" then any number of
 * "> Name: value\n" header lines, then "<path>\n<query>\n<body>" (any line
 * may be missing; the path is percent-decoded as the server does; a header
 * line is split at its first colon and trimmed as libevent's parser does).
 *
 * Invariants: the framing check accepts only what its rules allow (at most
 * one Content-Length of 1 to 19 digits, at most one Transfer-Encoding, never
 * both, "chunked" only where allowed, no body on HEAD or TRACE, header names
 * made of token characters), accepts with chunked allowed whatever it
 * accepts without, and explains every refusal in printable ASCII; a request
 * it refuses is not dispatched, as in the server. Every answer has a status
 * the agent documents, a body that is ASCII-only JSON, and an {"error":
 * string} object whenever the status is not 200 (Cosmian VM's read paths on
 * "tls": JSON on 200, a text/plain message otherwise); nothing leaks (ASan). */
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include <cvmkit/kdf.h>
#include <cvmkit/tee.h>

#include "agent.h"
#include "daemon.h"
#include "httpd.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct agent agent;
static char workdir[64];
static bool ready;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	agent_close(&agent);
	if (workdir[0] != '\0')
		(void)nftw(workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	struct cvm_tee_sim_opts so;
	char sim[128], err[512];

	(void)snprintf(workdir, sizeof(workdir), "/tmp/cvm-fuzz-agent.XXXXXX");
	if (mkdtemp(workdir) == NULL)
		abort();
	(void)snprintf(sim, sizeof(sim), "%s/sim", workdir);
	cvm_tee_sim_opts_init(&so, (int64_t)time(NULL));
	so.with_snp = false;
	if (cvm_tee_sim_init(sim, &so) != CVM_OK)
		abort();
	cvm_daemon_log_init("fuzz_http_api", CVM_LOG_ERROR);
	agent_config_defaults(&agent.cfg);
	(void)snprintf(agent.cfg.simulator, sizeof(agent.cfg.simulator), "%s", sim);
	/* SnapshotFiles and Cosmian's GET /snapshot start a file walk: of this
	 * temporary folder, never of the machine */
	(void)snprintf(agent.cfg.walk_mount_root, sizeof(agent.cfg.walk_mount_root), "%s", workdir);
	if (agent_open(&agent, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, "fuzz_http_api: %s\n", err);
		abort();
	}
	(void)atexit(cleanup);
	ready = true;
}

/* next_line takes bytes up to '\n' (or the end) as a new NUL-terminated
 * string, cut at the first NUL byte as a C API would see it. */
static char *next_line(const uint8_t **p, size_t *left, bool whole)
{
	size_t n = 0;
	char *s;

	while (n < *left && (whole || (*p)[n] != '\n'))
		n++;
	s = strndup((const char *)*p, n);
	*p += n;
	*left -= n;
	if (*left > 0 && !whole) {
		(*p)++;
		(*left)--;
	}
	return s;
}

static bool ascii_only(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	}
	return true;
}

static bool is_digits(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, "0123456789") == n;
}

static bool is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      strchr("!#$%&'*+-.^_`|~", *s) != NULL))
			return false;
	}
	return true;
}

/* add_header_line adds "Name: value" as libevent's parser would (split at
 * the first colon, spaces before the value and whitespace after it
 * dropped). Returns false when libevent would refuse the line itself. */
static bool add_header_line(struct evkeyvalq *hdr, char *line)
{
	char *colon = strchr(line, ':'), *v, *end;

	if (colon == NULL)
		return false;
	*colon = '\0';
	v = colon + 1;
	v += strspn(v, " ");
	end = v + strlen(v);
	while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return evhttp_add_header(hdr, line, v) == 0;
}

/* check_framing runs the server's framing check and the invariants above.
 * Returns true when the request may go on to the handler (the agent allows
 * chunked). */
static bool check_framing(const struct evkeyvalq *hdr, const char *method)
{
	bool may_have_body = strcmp(method, "HEAD") != 0 && strcmp(method, "TRACE") != 0;
	const struct evkeyval *kv;
	const char *cl = NULL, *te = NULL;
	unsigned ncl = 0, nte = 0;
	bool ok[2], names_ok = true;
	char err[CVM_HTTPD_ERR_MAX];

	for (int chunked = 0; chunked < 2; chunked++) {
		err[0] = 'x';
		ok[chunked] =
		    cvm_httpd_check_framing(hdr, may_have_body, chunked != 0, err, sizeof(err)) == CVM_OK;
		if (!ok[chunked] && (err[0] == '\0' || !ascii_only(err, strlen(err))))
			__builtin_trap();
	}
	if (ok[0] && !ok[1])
		__builtin_trap();
	if (!ok[1])
		return false;
	for (kv = hdr->tqh_first; kv != NULL; kv = kv->next.tqe_next) {
		names_ok = names_ok && is_token(kv->key);
		if (evutil_ascii_strcasecmp(kv->key, "Content-Length") == 0) {
			cl = kv->value;
			ncl++;
		} else if (evutil_ascii_strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			te = kv->value;
			nte++;
		}
	}
	if (!names_ok || ncl > 1 || nte > 1 || (cl != NULL && te != NULL))
		__builtin_trap();
	if (cl != NULL && (!is_digits(cl, 1, 19) || (!may_have_body && strspn(cl, "0") != strlen(cl))))
		__builtin_trap();
	if (te != NULL && (ok[0] || !may_have_body || evutil_ascii_strcasecmp(te, "chunked") != 0))
		__builtin_trap();
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_rpc_api dstack = {"dstack", agent_dstack_mounts, agent_dstack_mount_count, &agent};
	struct cvm_rpc_api tappd = {"tappd", agent_tappd_mounts, agent_tappd_mount_count, &agent};
	struct cvm_rpc_api tls = {"tls", agent_tls_mounts, agent_tls_mount_count, &agent};
	struct cvm_http_req req;
	struct cvm_http_resp resp;
	struct evkeyvalq hdr;
	const uint8_t *p = data;
	size_t left = size, path_len = 0;
	char *head, *raw_path, *query, *path = NULL, method[16], api[16], ctype[128];
	bool framing_ok = true;
	json_t *v = NULL;
	int s;

	if (!ready)
		setup();
	hdr.tqh_first = NULL;
	hdr.tqh_last = &hdr.tqh_first;
	head = next_line(&p, &left, false);
	while (left >= 2 && p[0] == '>' && p[1] == ' ') {
		char *line;

		p += 2;
		left -= 2;
		line = next_line(&p, &left, false);
		if (line == NULL)
			abort();
		framing_ok = framing_ok && add_header_line(&hdr, line);
		free(line);
	}
	raw_path = next_line(&p, &left, false);
	query = next_line(&p, &left, false);
	if (head == NULL || raw_path == NULL || query == NULL)
		abort();
	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	method[0] = api[0] = ctype[0] = '\0';
	(void)sscanf(head, "%15s %15s %127s", method, api, ctype);
	/* As on_request: a request whose framing is refused never reaches a
	 * handler (libevent refuses a header line without a colon itself). */
	if (!framing_ok || !check_framing(&hdr, method))
		goto out;
	req.method_name = method;
	req.method = strcmp(method, "GET") == 0    ? CVM_HTTP_GET
	             : strcmp(method, "POST") == 0 ? CVM_HTTP_POST
	             : strcmp(method, "HEAD") == 0 ? CVM_HTTP_HEAD
	                                           : CVM_HTTP_OTHER;
	req.content_type = strcmp(ctype, "-") == 0 || ctype[0] == '\0' ? NULL : ctype;
	req.query = query[0] != '\0' ? query : NULL;
	/* as on_request: the path is percent-decoded and must hold no NUL */
	path = evhttp_uridecode(raw_path[0] != '\0' ? raw_path : "/", 0, &path_len);
	if (path == NULL)
		abort();
	if (strlen(path) != path_len)
		goto out;
	req.path = path;
	req.body = left != 0 ? p : NULL;
	req.body_len = left;
	/* "tls": the TLS listener's surface, without a TLS connection (req.tls
	 * NULL: FreshAttest answers 400, GET /quote/tee 500), Cosmian VM's paths
	 * first as the daemon's serve_tls does */
	if (strcmp(api, "tls") == 0 && agent_cosmian_serve(&agent, &req, &resp)) {
		s = resp.status;
		/* Cosmian's shapes: JSON on 200 and 202 (GET /snapshot while its
		 * walk runs), its text/plain message otherwise; 500 where the agent
		 * has no TPM, IMA list or connection here */
		if (resp.body == NULL || (s != 200 && s != 202 && s != 400 && s != 404 && s != 405 &&
		                          s != 409 && s != 500 && s != 501))
			__builtin_trap();
		if (!ascii_only(resp.body, resp.body_len) || strlen(resp.body) != resp.body_len)
			__builtin_trap();
		if ((s == 200 || s == 202) &&
		    (v = json_loadb(resp.body, resp.body_len, JSON_DECODE_ANY, NULL)) == NULL)
			__builtin_trap();
		if (s != 200 && s != 202 &&
		    (resp.content_type == NULL || strncmp(resp.content_type, "text/plain", 10) != 0))
			__builtin_trap();
		goto out;
	}
	cvm_rpc_handle(strcmp(api, "tappd") == 0 ? &tappd
	               : strcmp(api, "tls") == 0 ? &tls
	                                         : &dstack,
	               &req, &resp);

	s = resp.status;
	/* 501: a method whose lib/ratls part this build lacks (cvm_va_encode V1,
	 * cvm_ratls_fresh_report_data while they are placeholders) */
	if (resp.body == NULL ||
	    (s != 200 && s != 400 && s != 404 && s != 405 && s != 409 && s != 413 && s != 500 && s != 501))
		__builtin_trap();
	if (!ascii_only(resp.body, resp.body_len) || strlen(resp.body) != resp.body_len)
		__builtin_trap();
	v = json_loadb(resp.body, resp.body_len, JSON_DECODE_ANY, NULL);
	if (v == NULL)
		__builtin_trap();
	if (s != 200 && !json_is_string(json_object_get(v, "error")))
		__builtin_trap();
	/* An internal failure here would be a bug: the agent over the
	 * simulator has everything it needs. */
	if (s == 500)
		__builtin_trap();
out:
	evhttp_clear_headers(&hdr);
	json_decref(v);
	cvm_http_resp_cleanup(&resp);
	free(path);
	free(head);
	free(raw_path);
	free(query);
	return 0;
}

/* libFuzzer harness for cvm-verifierd's request handling (daemons/verifier):
 * the router, the PCCS and KDS read APIs' path and query parsers, and the
 * body of POST /cvmkit/v1/verify, driven without sockets through the same
 * handler the workers use (vd_handle), over an empty cache in a temporary
 * folder with no upstream (every valid lookup ends in "not found").
 *
 * Input: "<METHOD> <content-type or ->\n<path>\n<query>\n<body>" (any line
 * may be missing; the path is percent-decoded as the server does).
 *
 * Invariants: every answer has a status the service documents, a body;
 * JSON answers are ASCII-only JSON and an {"error": string} object whenever
 * the status is not 200; the extra headers are printable ASCII; nothing
 * leaks (ASan). POST /verify is another file's (dstack.c) and not driven
 * here. */
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>
#include <jansson.h>

#include "daemon.h"
#include "httpd.h"
#include "verifier.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vd_config cfg;
static struct vd_ctx ctx;
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
	vd_metrics_free(ctx.metrics);
	vd_ctx_close(&ctx);
	if (workdir[0] != '\0')
		(void)nftw(workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	char err[512];
	int r;

	(void)snprintf(workdir, sizeof(workdir), "/tmp/cvm-fuzz-verifierd.XXXXXX");
	if (mkdtemp(workdir) == NULL)
		abort();
	cvm_daemon_log_init("fuzz_verifierd_api", CVM_LOG_ERROR);
	cfg.cache_dir = workdir;
	cfg.offline = true;
	cfg.at = 1700000000;
	err[0] = '\0';
	r = vd_ctx_open(&ctx, &cfg, vd_metrics_new(), err, sizeof(err));
	/* While lib/collateral is its placeholder no cache opens; its other
	 * placeholder calls take a NULL handle and answer "unsupported", so the
	 * parsers in front of them are still driven. */
	if (r == CVM_E_UNSUPPORTED) {
		memset(&ctx, 0, sizeof(ctx));
		ctx.cfg = &cfg;
		cvm_policy_init(&ctx.policy);
		ctx.metrics = vd_metrics_new();
	} else if (r != CVM_OK) {
		(void)fprintf(stderr, "fuzz_verifierd_api: %s\n", err);
		abort();
	}
	(void)atexit(cleanup);
	ready = true;
}

static char *next_line(const uint8_t **p, size_t *left)
{
	size_t n = 0;
	char *s;

	while (n < *left && (*p)[n] != '\n')
		n++;
	s = strndup((const char *)*p, n);
	*p += n;
	*left -= n;
	if (*left > 0) {
		(*p)++;
		(*left)--;
	}
	return s;
}

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_http_req req;
	struct cvm_http_resp resp;
	const uint8_t *p = data;
	size_t left = size, path_len = 0;
	char *head, *raw_path, *query, *path = NULL, method[16], ctype[128];
	json_t *v = NULL;
	int s;

	if (!ready)
		setup();
	head = next_line(&p, &left);
	raw_path = next_line(&p, &left);
	query = next_line(&p, &left);
	if (head == NULL || raw_path == NULL || query == NULL)
		abort();
	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	method[0] = ctype[0] = '\0';
	(void)sscanf(head, "%15s %127s", method, ctype);
	req.method_name = method;
	req.method = strcmp(method, "GET") == 0    ? CVM_HTTP_GET
	             : strcmp(method, "POST") == 0 ? CVM_HTTP_POST
	             : strcmp(method, "HEAD") == 0 ? CVM_HTTP_HEAD
	                                           : CVM_HTTP_OTHER;
	req.content_type = strcmp(ctype, "-") == 0 || ctype[0] == '\0' ? NULL : ctype;
	req.query = query[0] != '\0' ? query : NULL;
	path = evhttp_uridecode(raw_path[0] != '\0' ? raw_path : "/", 0, &path_len);
	if (path == NULL)
		abort();
	if (strlen(path) != path_len)
		goto out;
	req.path = path;
	/* dstack's POST /verify belongs to another harness */
	if (strcmp(path, "/verify") == 0)
		goto out;
	req.body = left != 0 ? p : NULL;
	req.body_len = left;
	vd_handle(&ctx, &req, &resp);

	s = resp.status;
	if (resp.body == NULL ||
	    (s != 200 && s != 400 && s != 404 && s != 405 && s != 413 && s != 502 && s != 503))
		__builtin_trap();
	for (size_t i = 0; i < resp.header_count; i++) {
		if (resp.header_names[i] == NULL || resp.header_values[i] == NULL ||
		    !printable(resp.header_values[i], strlen(resp.header_values[i])))
			__builtin_trap();
	}
	if (resp.content_type == NULL) {
		if (!printable(resp.body, resp.body_len) || strlen(resp.body) != resp.body_len)
			__builtin_trap();
		v = json_loadb(resp.body, resp.body_len, JSON_DECODE_ANY, NULL);
		if (v == NULL)
			__builtin_trap();
		if (s != 200 && !json_is_string(json_object_get(v, "error")))
			__builtin_trap();
	} else if (s != 200) {
		__builtin_trap(); /* errors are always JSON */
	}
out:
	json_decref(v);
	cvm_http_resp_cleanup(&resp);
	free(path);
	free(head);
	free(raw_path);
	free(query);
	return 0;
}

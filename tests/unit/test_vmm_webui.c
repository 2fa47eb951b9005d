/* cvm-vmmd's web UI files (daemons/vmm/webui.c) from a temporary directory:
 * "/" and "/res/<file>" are answered with the file's exact bytes, its
 * Content-Type and the CSP; names that could leave the directory (.., '/',
 * hidden files, percent-decoded traversal), symbolic links, FIFOs,
 * directories, unknown extensions and oversized files are refused without
 * reading outside the directory or blocking; other paths are left to the RPC
 * router; methods other than GET and HEAD get 405. The shipped files (the
 * source tree's daemons/vmm/webui) are all served and reference no external
 * origin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/file.h>

#include "webui.h"

static char dir[256];

static void put(const char *name, const char *text)
{
	char path[512];

	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	assert_int_equal(cvm_file_write(path, text, strlen(text), 0644), 0);
}

static int setup(void **state)
{
	char path[512];
	FILE *f;

	(void)state;
	(void)snprintf(dir, sizeof(dir), "/tmp/cvm-webui-test-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	put("index.html", "<!doctype html><title>t</title>\n");
	put("app.js", "export const x = 1;\r\n");
	put("style.css", "body{}");
	put("secret.db", "not served: unknown extension");
	(void)snprintf(path, sizeof(path), "%s/link.js", dir);
	if (symlink("/etc/passwd", path) != 0)
		return -1;
	(void)snprintf(path, sizeof(path), "%s/fifo.js", dir);
	if (mkfifo(path, 0600) != 0)
		return -1;
	(void)snprintf(path, sizeof(path), "%s/sub.js", dir);
	if (mkdir(path, 0700) != 0)
		return -1;
	(void)snprintf(path, sizeof(path), "%s/big.js", dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	for (size_t i = 0; i <= VMM_WEBUI_FILE_MAX; i += 1024)
		(void)fprintf(f, "%1023d\n", 0);
	(void)fclose(f);
	return 0;
}

static int teardown(void **state)
{
	static const char *names[] = {"index.html", "app.js",  "style.css", "secret.db",
	                              "link.js",    "fifo.js", "big.js"};
	char path[512];

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		(void)snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		(void)unlink(path);
	}
	(void)snprintf(path, sizeof(path), "%s/sub.js", dir);
	(void)rmdir(path);
	(void)rmdir(dir);
	return 0;
}

/* get runs the handler on `path` and returns whether it answered. */
static bool get(const char *d, enum cvm_http_method m, const char *path, struct cvm_http_resp *resp)
{
	struct cvm_http_req req;

	memset(&req, 0, sizeof(req));
	memset(resp, 0, sizeof(*resp));
	req.method = m;
	req.method_name = m == CVM_HTTP_POST ? "POST" : "GET";
	req.path = path;
	return vmm_webui_handle(d, &req, resp);
}

static const char *header(const struct cvm_http_resp *resp, const char *name)
{
	for (size_t i = 0; i < resp->header_count; i++)
		if (strcmp(resp->header_names[i], name) == 0)
			return resp->header_values[i];
	return NULL;
}

static void expect_file(const char *path, const char *type, const char *text)
{
	struct cvm_http_resp resp;

	assert_true(get(dir, CVM_HTTP_GET, path, &resp));
	assert_int_equal(resp.status, 200);
	assert_string_equal(resp.content_type, type);
	assert_int_equal(resp.body_len, strlen(text));
	assert_memory_equal(resp.body, text, strlen(text));
	assert_non_null(header(&resp, "Content-Security-Policy"));
	assert_string_equal(header(&resp, "Content-Security-Policy"), VMM_WEBUI_CSP);
	assert_string_equal(header(&resp, "X-Content-Type-Options"), "nosniff");
	cvm_http_resp_cleanup(&resp);
}

static void expect_status(const char *path, int status)
{
	struct cvm_http_resp resp;

	assert_true(get(dir, CVM_HTTP_GET, path, &resp));
	if (resp.status != status)
		fail_msg("%s: status %d, expected %d (%.*s)", path, resp.status, status, (int)resp.body_len,
		         resp.body);
	cvm_http_resp_cleanup(&resp);
}

static void test_serves_files(void **state)
{
	(void)state;
	expect_file("/", "text/html; charset=utf-8", "<!doctype html><title>t</title>\n");
	expect_file("/index.html", "text/html; charset=utf-8", "<!doctype html><title>t</title>\n");
	expect_file("/res/app.js", "text/javascript; charset=utf-8", "export const x = 1;\r\n");
	expect_file("/res/style.css", "text/css; charset=utf-8", "body{}");
}

static void test_refuses(void **state)
{
	static const char *bad[] = {
	    "/res/../index.html",    "/res/..",      "/res/.",       "/res/",        "/res/.app.js",
	    "/res/sub/app.js",       "/res//app.js", "/res/app.js/", "/res/app..js", "/res/-x.js",
	    "/res/secret.db",        "/res/app",     "/res/app.JS",  "/res/app.js ", "/res/app%2ejs",
	    "/res/../../etc/passwd", "/res/link.js", "/res/fifo.js", "/res/sub.js",  "/res/missing.js",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_status(bad[i], 404);
	expect_status("/res/big.js", 413);
}

static void test_not_ours(void **state)
{
	static const char *other[] = {"/prpc/Status", "/logs",        "/res", "/index.htm",
	                              "//",           "/resx/app.js", ""};
	struct cvm_http_resp resp;

	(void)state;
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		assert_false(get(dir, CVM_HTTP_GET, other[i], &resp));
		assert_int_equal(resp.status, 0);
		assert_null(resp.body);
	}
}

static void test_methods(void **state)
{
	struct cvm_http_resp resp;

	(void)state;
	assert_true(get(dir, CVM_HTTP_POST, "/", &resp));
	assert_int_equal(resp.status, 405);
	assert_string_equal(resp.allow, "GET, HEAD");
	cvm_http_resp_cleanup(&resp);
	assert_true(get(dir, CVM_HTTP_HEAD, "/res/app.js", &resp));
	assert_int_equal(resp.status, 200);
	cvm_http_resp_cleanup(&resp);
	/* No directory configured, or a missing one: 404 that says so. */
	assert_true(get("", CVM_HTTP_GET, "/", &resp));
	assert_int_equal(resp.status, 404);
	assert_non_null(strstr(resp.body, "webui_dir"));
	cvm_http_resp_cleanup(&resp);
	assert_true(get("/nonexistent/cvm-webui", CVM_HTTP_GET, "/", &resp));
	assert_int_equal(resp.status, 404);
	cvm_http_resp_cleanup(&resp);
}

/* Every one-byte change and truncation of accepted names: the result is
 * either refused or still a single safe segment. */
static void test_name_mutations(void **state)
{
	static const char *good[] = {"app.js", "style.css", "index.html", "envcrypt.js", "a-b_c.1.png"};
	char name[VMM_WEBUI_NAME_MAX + 2];

	(void)state;
	for (size_t g = 0; g < sizeof(good) / sizeof(good[0]); g++) {
		size_t n = strlen(good[g]);

		assert_non_null(vmm_webui_name_type(good[g]));
		for (size_t cut = 0; cut < n; cut++) {
			memcpy(name, good[g], cut);
			name[cut] = '\0';
			if (vmm_webui_name_type(name) != NULL)
				assert_non_null(strchr(name, '.'));
		}
		for (size_t i = 0; i < n; i++)
			for (unsigned bit = 0; bit < 8; bit++) {
				const char *t;

				memcpy(name, good[g], n + 1);
				name[i] = (char)(name[i] ^ (1u << bit));
				if (name[i] == '\0')
					continue;
				t = vmm_webui_name_type(name);
				if (t != NULL) {
					assert_null(strchr(name, '/'));
					assert_null(strstr(name, ".."));
					assert_true(name[0] != '.');
				}
			}
	}
	memset(name, 'a', VMM_WEBUI_NAME_MAX - 3);
	memcpy(name + VMM_WEBUI_NAME_MAX - 3, ".js", 4);
	assert_non_null(vmm_webui_name_type(name));
	memset(name, 'a', VMM_WEBUI_NAME_MAX - 2);
	memcpy(name + VMM_WEBUI_NAME_MAX - 2, ".js", 4);
	assert_null(vmm_webui_name_type(name));
}

/* The shipped UI: every file is served, and none names an external origin
 * (the page must work with no network but the daemon). */
static void test_shipped_files(void **state)
{
	char src[512], path[600];
	struct dirent *e;
	size_t count = 0;
	bool index = false;
	DIR *d;

	(void)state;
	(void)snprintf(src, sizeof(src), "%s/daemons/vmm/webui", CVM_SOURCE_DIR);
	d = opendir(src);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		struct cvm_http_resp resp;
		const char *type = vmm_webui_name_type(e->d_name);

		if (type == NULL)
			continue; /* webui.cmake */
		(void)snprintf(path, sizeof(path), "/res/%s", e->d_name);
		assert_true(get(src, CVM_HTTP_GET, path, &resp));
		assert_int_equal(resp.status, 200);
		assert_true(resp.body_len > 0);
		/* A tiny scan: "http://" or "https://" in a served file would be
		 * an external asset or request (an XML namespace name is not
		 * fetched). */
		for (size_t i = 0; i + 6 < resp.body_len; i++) {
			static const char ns[] = "http://www.w3.org/";

			if (resp.body_len - i >= sizeof(ns) - 1 &&
			    memcmp(resp.body + i, ns, sizeof(ns) - 1) == 0)
				continue;
			if (memcmp(resp.body + i, "http:/", 6) == 0 ||
			    memcmp(resp.body + i, "https:", 6) == 0)
				fail_msg("%s names an external URL at byte %zu", e->d_name, i);
		}
		index = index || strcmp(e->d_name, "index.html") == 0;
		count++;
		cvm_http_resp_cleanup(&resp);
	}
	(void)closedir(d);
	assert_true(index);
	assert_true(count >= 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_serves_files),   cmocka_unit_test(test_refuses),
	    cmocka_unit_test(test_not_ours),       cmocka_unit_test(test_methods),
	    cmocka_unit_test(test_name_mutations), cmocka_unit_test(test_shipped_files),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

/* cvm-vmmd's web UI files (webui.h). The directory is the operator's
 * ([vmm] webui_dir); the file name is the client's, so it is checked
 * character by character and opened without following a symbolic link. */
#include "webui.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cvmkit/err.h>

#define RES_PREFIX "/res/"

struct ext_type {
	const char *ext;
	const char *type;
};

static const struct ext_type types[] = {
    {"html", "text/html; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"ico", "image/x-icon"},
    {"txt", "text/plain; charset=utf-8"},
    {"json", "application/json"},
};

static bool name_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c == '-' || c == '.';
}

const char *vmm_webui_name_type(const char *name)
{
	const char *dot = NULL;
	size_t n = 0;

	if (name == NULL)
		return NULL;
	for (; name[n] != '\0'; n++) {
		if (n >= VMM_WEBUI_NAME_MAX || !name_char_ok(name[n]))
			return NULL;
		if (name[n] == '.') {
			if (n == 0 || name[n - 1] == '.')
				return NULL;
			dot = name + n;
		}
	}
	if (n == 0 || name[0] == '-' || dot == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot + 1, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

/* read_file reads the regular file `name` in `dir` (no symbolic link
 * followed, no FIFO waited on) into a new buffer. Returns 0, CVM_E_INVAL
 * (missing, or not a regular file), CVM_E_TOO_LARGE, CVM_E_NOMEM or
 * CVM_E_SYSTEM. */
static int read_file(const char *dir, const char *name, char **out, size_t *out_len)
{
	char path[4096];
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd = -1, n, r, e;

	*out = NULL;
	*out_len = 0;
	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return CVM_E_INVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		r = errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? CVM_E_INVAL : CVM_E_SYSTEM;
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		r = CVM_E_SYSTEM;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = CVM_E_INVAL;
		goto out;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size > VMM_WEBUI_FILE_MAX) {
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	/* One byte more than the size, to see a file that grew meanwhile. */
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, buf + len, (size_t)st.st_size + 1 - len);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = CVM_E_SYSTEM;
			goto out;
		}
		if (got == 0)
			break;
		len += (size_t)got;
		if (len > (size_t)st.st_size) {
			r = CVM_E_TOO_LARGE;
			goto out;
		}
	}
	*out = buf;
	*out_len = len;
	buf = NULL; /* transferred */
	r = CVM_OK;
out:
	e = errno;
	free(buf);
	if (fd >= 0)
		(void)close(fd);
	errno = e; /* for CVM_E_SYSTEM */
	return r;
}

#ifndef CVM_VMM_WEBUI_DIR_DEFAULT
#define CVM_VMM_WEBUI_DIR_DEFAULT "/usr/local/share/cvmkit/webui"
#endif

const char *vmm_webui_default_dir(void)
{
	return CVM_VMM_WEBUI_DIR_DEFAULT;
}

/* add_headers adds the security headers; without them the file is not
 * served (a page without its CSP is not the page this file promises). */
static int add_headers(struct cvm_http_resp *resp)
{
	static const char *const hdr[][2] = {
	    {"Content-Security-Policy", VMM_WEBUI_CSP},
	    {"X-Content-Type-Options", "nosniff"},
	    {"Referrer-Policy", "no-referrer"},
	    {"Cache-Control", "no-cache"},
	    {"X-Frame-Options", "DENY"},
	};
	int r;

	for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
		r = cvm_http_resp_header(resp, hdr[i][0], hdr[i][1]);
		if (r != CVM_OK)
			return r;
	}
	return CVM_OK;
}

bool vmm_webui_handle(const char *dir, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	const char *name, *type;
	char *body = NULL;
	size_t body_len = 0;
	int r;

	if (req->path == NULL)
		return false;
	if (strcmp(req->path, "/") == 0 || strcmp(req->path, "/index.html") == 0)
		name = "index.html";
	else if (strncmp(req->path, RES_PREFIX, strlen(RES_PREFIX)) == 0)
		name = req->path + strlen(RES_PREFIX);
	else
		return false;

	if (req->method != CVM_HTTP_GET && req->method != CVM_HTTP_HEAD) {
		resp->allow = "GET, HEAD";
		cvm_http_resp_error(resp, 405, "the web UI's files are read with GET");
		return true;
	}
	type = vmm_webui_name_type(name);
	if (type == NULL) {
		cvm_http_resp_error(resp, 404, "no such file in the web UI");
		return true;
	}
	if (dir == NULL || dir[0] == '\0') {
		cvm_http_resp_error(resp, 404, "the web UI is not installed ([vmm] webui_dir is empty)");
		return true;
	}
	r = read_file(dir, name, &body, &body_len);
	if (r == CVM_E_INVAL) {
		cvm_http_resp_error(resp, 404, "no such file in the web UI");
		return true;
	}
	if (r == CVM_E_TOO_LARGE) {
		cvm_http_resp_error(resp, 413, "the web UI file is over %zu bytes", VMM_WEBUI_FILE_MAX);
		return true;
	}
	if (r != CVM_OK) {
		cvm_http_resp_error(resp, 500, "cannot read the web UI's files ([vmm] webui_dir): %s",
		                    r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return true;
	}
	cvm_http_resp_bytes(resp, 200, type, body, body_len);
	free(body);
	if (resp->status == 200 && add_headers(resp) != CVM_OK) {
		cvm_http_resp_cleanup(resp);
		cvm_http_resp_error(resp, 500, "out of memory");
	}
	return true;
}

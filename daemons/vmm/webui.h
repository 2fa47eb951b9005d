/* cvm-vmmd's web UI: the static files of daemons/vmm/webui (installed to
 * share/cvmkit/webui; docs/daemons/cvm-vmmd-webui.md), served at GET / and
 * GET /res/<file>.
 *
 * Internal header for daemons/vmm, its unit tests and its fuzz target. */
#ifndef CVM_VMM_WEBUI_H
#define CVM_VMM_WEBUI_H

#include <stdbool.h>
#include <stddef.h>

#include "httpd.h"

/* Largest file served, bytes. */
#define VMM_WEBUI_FILE_MAX ((size_t)1024 * 1024)
/* Longest file name under /res/. */
#define VMM_WEBUI_NAME_MAX 64

/* The Content-Security-Policy of every answer: only the daemon's own origin
 * for scripts, styles, images and requests; no inline script or style, no
 * plugin, no framing, no form posted elsewhere. */
#define VMM_WEBUI_CSP                                                                                   \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " \
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/* vmm_webui_default_dir returns where `cmake --install` puts the files
 * (<prefix>/share/cvmkit/webui): the default of [vmm] webui_dir. */
const char *vmm_webui_default_dir(void);

/* vmm_webui_name_type checks the file name `name` (what follows "/res/":
 * one path segment of [A-Za-z0-9_-] characters and dots, starting with a
 * letter or digit, no "..", at most VMM_WEBUI_NAME_MAX bytes) and returns
 * the static Content-Type of its extension (html, js, css, svg, png, ico,
 * txt, json), or NULL for a name it does not serve. */
const char *vmm_webui_name_type(const char *name);

/* vmm_webui_handle answers a request for the web UI from the directory
 * `dir` and returns true, or returns false (and leaves `resp` untouched)
 * when the path is not the UI's: "/" (index.html) and "/res/<file>" are the
 * UI's. GET and HEAD are answered (200 with the file, its Content-Type, the
 * CSP above, nosniff, no-referrer and no-cache; 404 for a name it does not
 * serve or a file that is missing, a symbolic link or not a regular file;
 * 413 over VMM_WEBUI_FILE_MAX); other methods get 405. It checks no
 * token: the files hold no secret, and the page asks for the token the RPCs
 * want. Call it before the RPC router and its authentication. */
bool vmm_webui_handle(const char *dir, struct cvm_http_req *req, struct cvm_http_resp *resp);

#endif

/* libFuzzer harness for cvm-vmmd's web UI file names (daemons/vmm/webui.c):
 * the input is the path a client asks for. A name the UI accepts is one
 * path segment that cannot leave the UI's directory (no '/', no "..", no
 * leading '.' or '-'), of at most VMM_WEBUI_NAME_MAX bytes; the handler
 * answers every "/" and "/res/..." path and no other, from a directory that
 * does not exist (404) without crashing. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "webui.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_http_req req;
	struct cvm_http_resp resp;
	const char *type;
	char *path;
	bool ours, handled;

	if (size > 4096 || memchr(data, 0, size) != NULL)
		return 0;
	path = malloc(size + 1);
	if (path == NULL)
		return 0;
	memcpy(path, data, size);
	path[size] = '\0';

	type = vmm_webui_name_type(path);
	if (type != NULL && (size == 0 || size > VMM_WEBUI_NAME_MAX || strchr(path, '/') != NULL ||
	                     strstr(path, "..") != NULL || path[0] == '.' || path[0] == '-'))
		__builtin_trap();

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.method = (size & 1) != 0 ? CVM_HTTP_GET : CVM_HTTP_POST;
	req.path = path;
	ours = strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 || strncmp(path, "/res/", 5) == 0;
	handled = vmm_webui_handle("/nonexistent/cvm-webui-fuzz", &req, &resp);
	if (handled != ours || (handled && resp.status == 200) || (!handled && resp.body != NULL))
		__builtin_trap();
	cvm_http_resp_cleanup(&resp);
	free(path);
	return 0;
}

/* libFuzzer harness for cvm-kmsd (daemons/kms):
 *  - first byte even: the key process's request decoder (kp_handle) over
 *    roots made once in a temporary folder (epoch 0, cvm_kms_bootstrap):
 *    the rest of the input is one request message from the network process;
 *  - first byte odd: the network process's HTTP handler (kms_handle) with
 *    no TLS connection and no key process (every attested method must
 *    refuse before any key is asked for), input as fuzz_verifierd_api's:
 *    "<METHOD>\n<path>\n<body>".
 *
 * Invariants: kp_handle always answers (a status word, then a reason or the
 * op's fields) within KP_MSG_MAX; an answer that is not an error comes only
 * for a request that decodes exactly; kms_handle answers every request
 * with a documented status and a JSON object (an {"error"} one unless 200),
 * never 200 for GetAppKey or GetKmsKey without a client certificate;
 * nothing leaks (ASan). */
#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include <cvmkit/kms.h>

#include "daemon.h"
#include "httpd.h"
#include "kms.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kp_state st;
static struct kms k;
static char workdir[64];
static bool ready;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	kp_state_cleanup(&st);
	if (workdir[0] != '\0')
		(void)nftw(workdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
	struct kp_config c;
	char err[256], roots[128];

	(void)snprintf(workdir, sizeof(workdir), "/tmp/fuzz_kms_rpc.XXXXXX");
	if (mkdtemp(workdir) == NULL)
		abort();
	(void)snprintf(roots, sizeof(roots), "%s/roots", workdir);
	if (cvm_kms_bootstrap(roots, 0, (int64_t)time(NULL), err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, "fuzz_kms_rpc: %s\n", err);
		abort();
	}
	memset(&c, 0, sizeof(c));
	c.root_dir = roots;
	c.epoch_count = 1;
	if (kp_state_load(&c, &st, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, "fuzz_kms_rpc: %s\n", err);
		abort();
	}
	(void)atexit(cleanup);
	cvm_daemon_log_init("fuzz_kms_rpc", CVM_LOG_ERROR);
	memset(&k, 0, sizeof(k));
	k.kp.fd = -1;
	k.kp.pid = -1;
	k.node_name = "fuzz";
	k.serve_temp_ca = true;
	k.accept_dstack_guests = true;
	k.auth_type = "none"; /* no policy: nothing may be released anyway */
	k.meta.ca_cert_pem = (char *)"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
	k.epochs.count = 1;
	k.epochs.e[0].state = CVM_KMS_EPOCH_CURRENT;
	ready = true;
}

static void key_process(const uint8_t *data, size_t size)
{
	uint8_t *resp = NULL;
	size_t len = 0;
	uint32_t status;

	if (kp_handle(&st, data, size, &resp, &len) != CVM_OK) /* only out of memory */
		return;
	if (len < 4 || len > KP_MSG_MAX)
		abort();
	memcpy(&status, resp, 4);
	/* an accepted request is one of the ops, exactly sized */
	if (status == 0 && (size == 0 || data[0] < KP_META || data[0] > KP_ENV_PUBKEY))
		abort();
	cvm_freezero(resp, len);
}

static void http(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), *line2, *line3;
	struct cvm_http_req req;
	struct cvm_http_resp resp;
	json_error_t jerr;
	json_t *o;

	if (text == NULL)
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	if (strlen(text) != size) { /* the server never passes a NUL in a path */
		free(text);
		return;
	}
	line2 = strchr(text, '\n');
	line3 = line2 != NULL ? strchr(line2 + 1, '\n') : NULL;
	if (line3 == NULL) {
		free(text);
		return;
	}
	*line2++ = '\0';
	*line3++ = '\0';
	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.method = strcmp(text, "GET") == 0    ? CVM_HTTP_GET
	             : strcmp(text, "POST") == 0 ? CVM_HTTP_POST
	                                         : CVM_HTTP_OTHER;
	req.method_name = text;
	req.path = line2;
	req.body = (const uint8_t *)line3;
	req.body_len = strlen(line3);
	kms_handle(&k, &req, &resp);
	if (resp.status < 200 || resp.status > 599 || resp.body == NULL)
		abort();
	if (resp.content_type == NULL) {
		o = json_loadb(resp.body, resp.body_len, 0, &jerr);
		if (!json_is_object(o) ||
		    (resp.status != 200 && !json_is_string(json_object_get(o, "error"))))
			abort();
		json_decref(o);
	}
	if (resp.status == 200 && (strstr(line2, "GetAppKey") != NULL || strstr(line2, "GetKmsKey") != NULL))
		abort();
	cvm_http_resp_cleanup(&resp);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0)
		key_process(data + 1, size - 1);
	else
		http(data + 1, size - 1);
	return 0;
}

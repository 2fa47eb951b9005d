/* cvm-vmmd: the VM manager (docs/daemons/cvm-vmmd.md).
 *
 *   cvm-vmmd [-c FILE] [--port-file FILE] [--log-level LEVEL]
 *
 * Start: config; logging; run_dir and its database; reconcile what a crash
 * left (finish or undo creations and removals, re-adopt running QEMUs);
 * listen; serve. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include <cvmkit/file.h>

#include "daemon.h"
#include "httpd.h"
#include "vmm.h"

#ifndef CVM_VERSION_STRING
#define CVM_VERSION_STRING "0.1.0"
#endif

#define PROG "cvm-vmmd"

static void usage(FILE *f)
{
	(void)fprintf(f, "usage: " PROG " [-c FILE] [--port-file FILE] [--log-level LEVEL]\n"
	                 "\n"
	                 "  -c, --config FILE   INI config (default /etc/cvmkit/vmmd.conf)\n"
	                 "  --port-file FILE    write the TCP port bound (useful with port 0)\n"
	                 "  --log-level LEVEL   error, warn, info (default) or debug\n"
	                 "  -h, --help          this text\n"
	                 "  --version           print the version\n"
	                 "See docs/daemons/cvm-vmmd.md.\n");
}

/* open_channels connects to the host channel of every VM that runs (the
 * ones re-adopted after a restart included). */
static void open_channels(struct vmm *v)
{
	struct vmm_vm *vms = NULL;
	size_t n = 0;

	if (vmm_db_list(v->db, &vms, &n) != CVM_OK)
		return;
	for (size_t i = 0; i < n; i++)
		if (strcmp(vms[i].state, VMM_ST_RUNNING) == 0)
			vmm_channel_open(v, vms[i].id);
	free(vms);
}

static int serve(struct vmm_conf *c)
{
	struct vmm v;
	struct cvm_httpd_opts ho;
	struct cvm_httpd *h = NULL;
	struct cvm_daemon_signals *sig = NULL;
	struct cvm_addr addr;
	char path[VMM_PATH_MAX + 16], err[512] = "", kv[CVM_KV_MAX];
	uint16_t port = 0;
	int rc = 1, r;

	memset(&v, 0, sizeof(v));
	v.conf = c;
	v.start_time = (int64_t)time(NULL);
	if (mkdir(c->run_dir, 0700) != 0 && errno != EEXIST) {
		(void)fprintf(stderr, PROG ": cannot make [vmm] run_dir %s: %s\n", c->run_dir,
		              strerror(errno));
		return 1;
	}
	(void)snprintf(path, sizeof(path), "%s/vmm.db", c->run_dir);
	if (vmm_db_open(path, &v.db, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, PROG ": the VM database: %s\n", err);
		return 1;
	}
	if (vmm_reconcile(&v) != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot reconcile %s with its database\n", c->run_dir);
		goto out;
	}
	if (cvm_addr_parse(c->listen, &addr) != CVM_OK) /* checked with the config */
		goto out;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) { /* GetAppEnvEncryptPubKey */
		(void)fprintf(stderr, PROG ": cannot start libcurl\n");
		goto out;
	}
	if (c->platform == VMM_PLATFORM_DEV && vmm_sim_platform_ensure(c, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	v.base = event_base_new();
	memset(&ho, 0, sizeof(ho));
	ho.name = "vmm";
	ho.max_body = VMM_BODY_MAX;
	ho.max_connections = (unsigned)c->max_connections;
	ho.max_connections_per_peer = (unsigned)c->max_connections_per_peer;
	if (v.base == NULL || cvm_daemon_signals_new(v.base, &sig) != CVM_OK ||
	    cvm_httpd_new(v.base, &ho, vmm_handle, &v, &h) != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot make the server\n");
		goto out;
	}
	r = cvm_httpd_listen(h, &addr, 0600, &port);
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot listen on %s: %s\n", c->listen,
		              r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		goto out;
	}
	if (c->port_file[0] != '\0') {
		char buf[16];
		int n = snprintf(buf, sizeof(buf), "%u\n", (unsigned)port);

		if (cvm_file_write(c->port_file, buf, (size_t)n, 0644) != CVM_OK) {
			(void)fprintf(stderr, PROG ": cannot write %s\n", c->port_file);
			goto out;
		}
	}
	cvm_daemon_log(CVM_LOG_INFO, "listening", "addr=%s port=%u platform=%s run_dir=%s auth=%s",
	               cvm_kv(c->listen, kv), (unsigned)port, vmm_platform_name(c->platform), c->run_dir,
	               c->token_count != 0 ? "tokens" : "none");
	vmm_resume_starts(&v);
	open_channels(&v);
	(void)event_base_dispatch(v.base);
	rc = 0;
out:
	vmm_start_cancel_all(&v);
	vmm_channel_close_all(&v);
	cvm_httpd_free(h);
	cvm_daemon_signals_free(sig);
	if (v.base != NULL)
		event_base_free(v.base);
	vmm_db_close(v.db);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},    {"port-file", required_argument, NULL, 'p'},
	    {"log-level", required_argument, NULL, 'l'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},         {NULL, 0, NULL, 0},
	};
	struct vmm_conf *c;
	enum cvm_log_level level;
	const char *port_file = NULL, *log_level = NULL;
	char err[512] = "";
	int opt, rc;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return 1;
	vmm_conf_defaults(c);
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			(void)snprintf(c->config_file, sizeof(c->config_file), "%s", optarg);
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'l':
			log_level = optarg;
			break;
		case 'h':
			usage(stdout);
			free(c);
			return 0;
		case 'V':
			(void)printf(PROG " " CVM_VERSION_STRING "\n");
			free(c);
			return 0;
		default:
			usage(stderr);
			free(c);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		free(c);
		return 2;
	}
	if (vmm_conf_load(c, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s: %s\n", c->config_file, err);
		free(c);
		return 2;
	}
	if (port_file != NULL)
		(void)snprintf(c->port_file, sizeof(c->port_file), "%s", port_file);
	if (log_level != NULL)
		(void)snprintf(c->log_level, sizeof(c->log_level), "%s", log_level);
	if (cvm_daemon_log_level_parse(c->log_level, &level) != CVM_OK) {
		(void)fprintf(stderr, PROG ": log level %s is not error, warn, info or debug\n",
		              c->log_level);
		free(c);
		return 2;
	}
	cvm_daemon_log_init(PROG, level);
	rc = serve(c);
	free(c);
	return rc;
}

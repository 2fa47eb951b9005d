/* cvm-agentd: the cvmkit guest agent (docs/daemons/cvm-agentd.md).
 *
 * The sequence is the same in every cvmkit daemon: arguments and config
 * file; logging; hardening (the agent holds the app's keys); the agent's
 * state; listeners; privilege drop; the event loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include <cvmkit/encoding.h>
#include <cvmkit/file.h>

#include "agent.h"
#include "conf.h"
#include "daemon.h"
#include "httpd.h"
#include "rpc.h"

#ifndef CVM_VERSION_STRING
#define CVM_VERSION_STRING "0.1.0"
#endif

#define PROG "cvm-agentd"
#define DEFAULT_CONFIG "/etc/cvmkit/cvm-agentd.conf"

static void usage(FILE *f)
{
	(void)fprintf(
	    f, "usage: " PROG " [-c FILE] [options]\n"
	       "       " PROG " --simulator DIR --listen unix:PATH [--tappd unix:PATH] [options]\n"
	       "\n"
	       "  -c, --config FILE       INI config (default " DEFAULT_CONFIG " when it exists)\n"
	       "  --simulator DIR         use the simulated TEE made by `cvm sim init DIR`\n"
	       "  --platform tdx|snp      what the simulator acts as (default tdx)\n"
	       "  --listen ADDR           dstack API: unix:/path or HOST:PORT (default "
	       "unix:/var/run/dstack.sock)\n"
	       "  --mode MODE             unix socket mode, octal (default 0666)\n"
	       "  --tcp HOST:PORT         also serve the dstack API on TCP (loopback only unless\n"
	       "                          allow_remote_tcp is set in the config)\n"
	       "  --tappd ADDR            legacy Tappd API (default unix:/var/run/tappd.sock; none with\n"
	       "                          --simulator unless given)\n"
	       "  --appkeys FILE          dstack .appkeys.json (mode 0600)\n"
	       "  --key-state DIR         cvmkit local key provider folder (when no appkeys)\n"
	       "  --app-compose FILE      app-compose.json\n"
	       "  --sys-config FILE       .sys-config.json\n"
	       "  --instance-info FILE    dstack's .instance_info: {\"app_id\": HEX} names the app id\n"
	       "                          (a KMS deployment's DstackApp contract; default: the compose\n"
	       "                          hash's first 20 bytes)\n"
	       "  --runtime-log FILE      runtime event log (JSON lines)\n"
	       "  --tpm TCTI              add a TPM quote to GetEvidence, e.g. device:/dev/tpmrm0 or\n"
	       "                          swtpm:host=127.0.0.1,port=2321\n"
	       "  --tpm-pcrs SEL          the PCRs it quotes (default sha256:0-10)\n"
	       "  --tpm-ak-handle H       persistent AK handle (default 0x81000100; created if empty)\n"
	       "  --ima FILE|none         IMA list for GetEvidence (default: the kernel's, when present)\n"
	       "  --identity-key FILE     the agent's identity key (default: beside the runtime log)\n"
	       "  --port-file FILE        write the TCP port bound (useful with port 0)\n"
	       "  --tls HOST:PORT         serve the read-only TLS listener there (RA-TLS with the\n"
	       "                          identity key; off unless given here or as [tls] listen)\n"
	       "  --tls-port-file FILE    write the TLS port bound\n"
	       "  --kms URL[,URL...]      get the app keys from these KMSs, in order (https://HOST:PORT\n"
	       "                          or HOST:PORT; default: sys-config's kms_urls when app-compose\n"
	       "                          sets kms_enabled)\n"
	       "  --kms-collateral DIR    the collateral the KMSs' evidence is checked with ([kms])\n"
	       "  --user USER             drop privileges to USER once listening\n"
	       "  --log-level LEVEL       error, warn, info (default) or debug\n"
	       "  -v, --verbose           --log-level debug\n"
	       "  -h, --help              this text\n"
	       "  --version               print the version\n");
}

enum {
	OPT_SIMULATOR = 0x100,
	OPT_PLATFORM,
	OPT_LISTEN,
	OPT_MODE,
	OPT_TCP,
	OPT_TAPPD,
	OPT_APPKEYS,
	OPT_KEY_STATE,
	OPT_APP_COMPOSE,
	OPT_INSTANCE_INFO,
	OPT_SYS_CONFIG,
	OPT_RUNTIME_LOG,
	OPT_TPM,
	OPT_TPM_PCRS,
	OPT_TPM_AK_HANDLE,
	OPT_IMA,
	OPT_IDENTITY_KEY,
	OPT_PORT_FILE,
	OPT_TLS,
	OPT_TLS_PORT_FILE,
	OPT_KMS,
	OPT_KMS_COLLATERAL,
	OPT_USER,
	OPT_LOG_LEVEL,
	OPT_VERSION,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"simulator", required_argument, NULL, OPT_SIMULATOR},
    {"platform", required_argument, NULL, OPT_PLATFORM},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"mode", required_argument, NULL, OPT_MODE},
    {"tcp", required_argument, NULL, OPT_TCP},
    {"tappd", required_argument, NULL, OPT_TAPPD},
    {"appkeys", required_argument, NULL, OPT_APPKEYS},
    {"key-state", required_argument, NULL, OPT_KEY_STATE},
    {"app-compose", required_argument, NULL, OPT_APP_COMPOSE},
    {"instance-info", required_argument, NULL, OPT_INSTANCE_INFO},
    {"sys-config", required_argument, NULL, OPT_SYS_CONFIG},
    {"runtime-log", required_argument, NULL, OPT_RUNTIME_LOG},
    {"tpm", required_argument, NULL, OPT_TPM},
    {"tpm-pcrs", required_argument, NULL, OPT_TPM_PCRS},
    {"tpm-ak-handle", required_argument, NULL, OPT_TPM_AK_HANDLE},
    {"ima", required_argument, NULL, OPT_IMA},
    {"identity-key", required_argument, NULL, OPT_IDENTITY_KEY},
    {"port-file", required_argument, NULL, OPT_PORT_FILE},
    {"tls", required_argument, NULL, OPT_TLS},
    {"tls-port-file", required_argument, NULL, OPT_TLS_PORT_FILE},
    {"kms", required_argument, NULL, OPT_KMS},
    {"kms-collateral", required_argument, NULL, OPT_KMS_COLLATERAL},
    {"user", required_argument, NULL, OPT_USER},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

#define KEY(sec, name, type, field)                                \
	{                                                          \
		sec, name, type, &c->field, sizeof(c->field), 0, 0 \
	}

/* The HTTP servers' deadlines and caps (daemons/common/httpd.h), from the
 * [agent] section; 0 keeps httpd's default. */
struct http_limits {
	uint64_t header_timeout, body_timeout, reply_timeout;
	uint64_t max_connections, max_connections_per_peer;
	uint64_t max_buffered, max_buffered_per_peer;
};

#define LIMIT(name, field, min, max)                                      \
	{                                                                 \
		"agent", name, CVM_CONF_U64, &lim->field, 0, (min), (max) \
	}

static int load_config(struct agent_config *c, struct http_limits *lim, char *err, size_t err_len)
{
	const struct cvm_conf_key keys[] = {
	    KEY("agent", "user", CVM_CONF_STR, user),
	    KEY("agent", "log_level", CVM_CONF_STR, log_level),
	    KEY("agent", "simulator", CVM_CONF_STR, simulator),
	    KEY("agent", "platform", CVM_CONF_STR, platform),
	    KEY("agent", "appkeys", CVM_CONF_STR, appkeys),
	    KEY("agent", "key_state", CVM_CONF_STR, key_state),
	    KEY("agent", "app_compose", CVM_CONF_STR, app_compose),
	    KEY("agent", "instance_info", CVM_CONF_STR, instance_info),
	    KEY("agent", "sys_config", CVM_CONF_STR, sys_config),
	    KEY("agent", "runtime_log", CVM_CONF_STR, runtime_log),
	    KEY("agent", "ccel", CVM_CONF_STR, ccel),
	    KEY("agent", "ima_log", CVM_CONF_STR, ima_log),
	    KEY("agent", "tpm_tcti", CVM_CONF_STR, tpm_tcti),
	    KEY("agent", "tpm_pcrs", CVM_CONF_STR, tpm_pcrs),
	    KEY("agent", "tpm_ak_handle", CVM_CONF_STR, tpm_ak_handle),
	    KEY("agent", "identity_key", CVM_CONF_STR, identity_key),
	    KEY("agent", "raw_report_data_uids", CVM_CONF_STR, raw_report_data_uids),
	    {"agent", "caller_events_max", CVM_CONF_U64, &c->caller_events_max, 0, 1, AGENT_APP_EVENTS_MAX},
	    {"agent", "caller_payload_max", CVM_CONF_U64, &c->caller_payload_max, 0, 0,
	     AGENT_APP_PAYLOAD_MAX},
	    KEY("agent", "port_file", CVM_CONF_STR, port_file),
	    KEY("agent", "measure_app", CVM_CONF_BOOL, measure_app),
	    KEY("agent", "getkey_separate_curves", CVM_CONF_BOOL, separate_curves),
	    {"agent", "max_body", CVM_CONF_U64, &c->max_body, 0, 1024, (uint64_t)64 * 1024 * 1024},
	    {"agent", "timeout", CVM_CONF_U64, &c->timeout, 0, 1, 3600},
	    LIMIT("header_timeout", header_timeout, 1, CVM_HTTPD_TIMEOUT_MAX),
	    LIMIT("body_timeout", body_timeout, 1, CVM_HTTPD_TIMEOUT_MAX),
	    LIMIT("reply_timeout", reply_timeout, 1, CVM_HTTPD_TIMEOUT_MAX),
	    LIMIT("max_connections", max_connections, 1, CVM_HTTPD_CONNECTIONS_MAX),
	    LIMIT("max_connections_per_peer", max_connections_per_peer, 1, CVM_HTTPD_CONNECTIONS_MAX),
	    LIMIT("max_buffered", max_buffered, 65536, CVM_HTTPD_BUFFERED_MAX),
	    LIMIT("max_buffered_per_peer", max_buffered_per_peer, 65536, CVM_HTTPD_BUFFERED_MAX),
	    KEY("dstack", "listen", CVM_CONF_STR, dstack_listen),
	    KEY("dstack", "mode", CVM_CONF_MODE, dstack_mode),
	    KEY("dstack", "tcp", CVM_CONF_STR, dstack_tcp),
	    KEY("dstack", "allow_remote_tcp", CVM_CONF_BOOL, allow_remote_tcp),
	    {"dstack", "cert_lifetime_hours", CVM_CONF_U64, &c->cert_lifetime_hours, 0, 1,
	     AGENT_CERT_LIFETIME_HOURS_MAX},
	    KEY("tappd", "listen", CVM_CONF_STR, tappd_listen),
	    KEY("tappd", "mode", CVM_CONF_MODE, tappd_mode),
	    KEY("tls", "listen", CVM_CONF_STR, tls_listen),
	    KEY("tls", "port_file", CVM_CONF_STR, tls_port_file),
	    KEY("tls", "cosmian_api", CVM_CONF_BOOL, cosmian_api),
	    {"tls", "lifetime_hours", CVM_CONF_U64, &c->tls_lifetime_hours, 0, 1,
	     AGENT_TLS_LIFETIME_HOURS_MAX},
	    {"tls", "max_connections", CVM_CONF_U64, &c->tls_max_connections, 0, 1,
	     CVM_HTTPD_CONNECTIONS_MAX},
	    {"tls", "max_connections_per_peer", CVM_CONF_U64, &c->tls_max_connections_per_peer, 0, 1,
	     CVM_HTTPD_CONNECTIONS_MAX},
	    {"tls", "max_body", CVM_CONF_U64, &c->tls_max_body, 0, 256, (uint64_t)1024 * 1024},
	    {"tls", "max_headers", CVM_CONF_U64, &c->tls_max_headers, 0, 1024, (uint64_t)64 * 1024},
	    {"tls", "handshake_timeout", CVM_CONF_U64, &c->tls_handshake_timeout, 0, 1,
	     CVM_HTTPD_TIMEOUT_MAX},
	    KEY("kms", "urls", CVM_CONF_STR, kms_urls),
	    KEY("kms", "collateral", CVM_CONF_STR, kms_collateral),
	    KEY("kms", "intel_root", CVM_CONF_STR, kms_intel_root),
	    KEY("kms", "amd_root", CVM_CONF_STR, kms_amd_root),
	    KEY("kms", "policy", CVM_CONF_STR, kms_policy),
	    KEY("kms", "disk_key_file", CVM_CONF_STR, kms_disk_key_file),
	    KEY("kms", "encrypted_env", CVM_CONF_STR, kms_encrypted_env),
	    KEY("kms", "env_file", CVM_CONF_STR, kms_env_file),
	    {"kms", "timeout", CVM_CONF_U64, &c->kms_timeout, 0, 1, 600},
	    KEY("kms", "allow_simulated", CVM_CONF_BOOL, kms_allow_simulated),
	    KEY("boot", "storage_hook", CVM_CONF_STR, boot_storage_hook),
	    KEY("boot", "app_hook", CVM_CONF_STR, boot_app_hook),
	    KEY("boot", "channel", CVM_CONF_STR, boot_channel),
	    {"boot", "hook_timeout", CVM_CONF_U64, &c->boot_hook_timeout, 0, 1, 3600},
	    KEY("snapshot", "mount_root", CVM_CONF_STR, walk_mount_root),
	    KEY("snapshot", "roots", CVM_CONF_STR, walk_roots),
	    KEY("snapshot", "exclude", CVM_CONF_STR, walk_exclude),
	    KEY("snapshot", "algo", CVM_CONF_STR, walk_algo),
	    {"snapshot", "max_files", CVM_CONF_U64, &c->walk_max_files, 0, 1, AGENT_WALK_FILES_MAX},
	    {"snapshot", "max_file_bytes", CVM_CONF_U64, &c->walk_max_file_bytes, 0, 1, UINT64_MAX / 2},
	    {"snapshot", "max_seconds", CVM_CONF_U64, &c->walk_max_seconds, 0, 1, AGENT_WALK_SECONDS_MAX},
	    KEY("snapshot", "disable_walk", CVM_CONF_BOOL, walk_disable),
	};

	return cvm_conf_load(c->config_file, keys, sizeof(keys) / sizeof(keys[0]), err, err_len);
}

static int set_str(char *dst, size_t cap, const char *v, const char *opt)
{
	if (strlen(v) >= cap) {
		(void)fprintf(stderr, PROG ": %s: value too long\n", opt);
		return -1;
	}
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

#define SET(field, opt) set_str(c->field, sizeof(c->field), optarg, opt)

/* parse_args reads the command line over the config. It runs twice: first
 * only for -c (and -h, --version), then for everything else. */
static int parse_args(int argc, char **argv, struct agent_config *c, bool first, bool *tappd_given)
{
	int opt, e = 0;

	optind = 1;
	opterr = first ? 1 : 0;
	while ((opt = getopt_long(argc, argv, "c:vh", long_opts, NULL)) != -1) {
		if (first) {
			switch (opt) {
			case 'c':
				e = SET(config_file, "--config");
				break;
			case 'h':
				usage(stdout);
				exit(0);
			case OPT_VERSION:
				(void)printf(PROG " " CVM_VERSION_STRING " (dstack API " AGENT_API_VERSION
				                  ")\n");
				exit(0);
			case '?':
				usage(stderr);
				return 2;
			default:
				break;
			}
			if (e != 0)
				return 2;
			continue;
		}
		switch (opt) {
		case OPT_SIMULATOR:
			e = SET(simulator, "--simulator");
			break;
		case OPT_PLATFORM:
			e = SET(platform, "--platform");
			break;
		case OPT_LISTEN:
			e = SET(dstack_listen, "--listen");
			break;
		case OPT_MODE:
			e = cvm_parse_mode(optarg, &c->dstack_mode) == CVM_OK ? 0 : -1;
			if (e == 0)
				c->tappd_mode = c->dstack_mode;
			else
				(void)fprintf(stderr, PROG ": --mode: not an octal mode such as 0660\n");
			break;
		case OPT_TCP:
			e = SET(dstack_tcp, "--tcp");
			break;
		case OPT_TAPPD:
			e = SET(tappd_listen, "--tappd");
			*tappd_given = true;
			break;
		case OPT_APPKEYS:
			e = SET(appkeys, "--appkeys");
			break;
		case OPT_KEY_STATE:
			e = SET(key_state, "--key-state");
			break;
		case OPT_APP_COMPOSE:
			e = SET(app_compose, "--app-compose");
			break;
		case OPT_INSTANCE_INFO:
			e = SET(instance_info, "--instance-info");
			break;
		case OPT_SYS_CONFIG:
			e = SET(sys_config, "--sys-config");
			break;
		case OPT_RUNTIME_LOG:
			e = SET(runtime_log, "--runtime-log");
			break;
		case OPT_PORT_FILE:
			e = SET(port_file, "--port-file");
			break;
		case OPT_TLS:
			e = SET(tls_listen, "--tls");
			break;
		case OPT_TLS_PORT_FILE:
			e = SET(tls_port_file, "--tls-port-file");
			break;
		case OPT_KMS:
			e = SET(kms_urls, "--kms");
			break;
		case OPT_KMS_COLLATERAL:
			e = SET(kms_collateral, "--kms-collateral");
			break;
		case OPT_TPM:
			e = SET(tpm_tcti, "--tpm");
			break;
		case OPT_TPM_PCRS:
			e = SET(tpm_pcrs, "--tpm-pcrs");
			break;
		case OPT_TPM_AK_HANDLE:
			e = SET(tpm_ak_handle, "--tpm-ak-handle");
			break;
		case OPT_IMA:
			e = SET(ima_log, "--ima");
			break;
		case OPT_IDENTITY_KEY:
			e = SET(identity_key, "--identity-key");
			break;
		case OPT_USER:
			e = SET(user, "--user");
			break;
		case OPT_LOG_LEVEL:
			e = SET(log_level, "--log-level");
			break;
		case 'v':
			(void)snprintf(c->log_level, sizeof(c->log_level), "debug");
			break;
		default:
			break;
		}
		if (e != 0)
			return 2;
	}
	if (optind != argc) {
		(void)fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return 0;
}

static int listen_on(struct cvm_httpd *h, const char *what, const char *spec, unsigned mode,
                     bool allow_remote, uint16_t *port)
{
	struct cvm_addr addr;
	char k[CVM_KV_MAX];
	int r;

	r = cvm_addr_parse(spec, &addr);
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s: '%s' is not unix:/path or HOST:PORT\n", what, spec);
		return r;
	}
	if (!cvm_addr_is_loopback(&addr) && !allow_remote) {
		(void)fprintf(
		    stderr,
		    PROG ": %s: %s is not a loopback address: the dstack API hands out the app's keys; set "
		         "allow_remote_tcp = true in [dstack] to expose it anyway\n",
		    what, spec);
		return CVM_E_POLICY;
	}
	r = cvm_httpd_listen(h, &addr, mode, port);
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot listen on %s: %s\n", spec,
		              r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return r;
	}
	cvm_daemon_log(CVM_LOG_INFO, "listen", "api=%s addr=%s mode=%04o port=%u", what, cvm_kv(spec, k),
	               addr.kind == CVM_ADDR_UNIX ? mode : 0, port != NULL ? *port : 0);
	return CVM_OK;
}

static void serve(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	cvm_rpc_handle(ctx, req, resp);
}

/* serve_tls answers Cosmian VM's read endpoints, then the pRPC methods. */
static void serve_tls(void *ctx, struct cvm_http_req *req, struct cvm_http_resp *resp)
{
	const struct cvm_rpc_api *api = ctx;

	if (!agent_cosmian_serve(api->ctx, req, resp))
		cvm_rpc_handle(api, req, resp);
}

/* The TLS listener's certificate is renewed when a third of its lifetime
 * is left, or at once on SIGHUP (a failed renewal is retried every minute
 * while the old one is still served). Connections keep the certificate
 * they were opened with. */
struct tls_listener {
	struct agent *a;
	struct cvm_httpd *h;
	struct event *renew;
	struct event *hup; /* SIGHUP: renew now */
	uint64_t lifetime_s;
	unsigned handshake_s;
};

static void tls_schedule(struct tls_listener *t, int64_t seconds)
{
	struct timeval tv = {(time_t)(seconds > 60 ? seconds : 60), 0};

	if (evtimer_add(t->renew, &tv) != 0)
		cvm_daemon_log(CVM_LOG_ERROR, "tls_renew_unscheduled", "%s", "");
}

/* tls_install makes a certificate and context and gives them to the
 * listener; returns 0 or a negative CVM_E_* with `err`. */
static int tls_install(struct tls_listener *t, char *err, size_t err_len)
{
	SSL_CTX *ctx = NULL;
	int64_t not_after = 0;
	char hex[65];
	int r;

	err[0] = '\0';
	r = agent_tls_ctx_new(t->a, t->lifetime_s, &ctx, &not_after, err, err_len);
	if (r != CVM_OK)
		return r;
	r = cvm_httpd_set_tls(t->h, ctx, t->handshake_s);
	SSL_CTX_free(ctx); /* the server holds its own reference */
	if (r != CVM_OK) {
		(void)snprintf(err, err_len, "cannot use the TLS context: %s", cvm_strerror(r));
		return r;
	}
	cvm_hex_encode(t->a->identity_hash, 32, hex);
	cvm_daemon_log(CVM_LOG_INFO, "tls_certificate", "key_sha256=%s not_after=%lld lifetime_s=%llu", hex,
	               (long long)not_after, (unsigned long long)t->lifetime_s);
	tls_schedule(t, not_after - (int64_t)time(NULL) - (int64_t)(t->lifetime_s / 3));
	return CVM_OK;
}

static void tls_renew(evutil_socket_t fd, short what, void *arg)
{
	struct tls_listener *t = arg;
	char err[512], k[CVM_KV_MAX];

	(void)fd;
	(void)what;
	if (tls_install(t, err, sizeof(err)) != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "tls_renew_failed", "error=%s retry_s=60", cvm_kv(err, k));
		tls_schedule(t, 60);
	}
}

int main(int argc, char **argv)
{
	static struct agent agent; /* large; zero-initialised */
	struct agent_config *c = &agent.cfg;
	struct event_base *base = NULL;
	struct cvm_daemon_signals *sigs = NULL;
	struct cvm_httpd *dstack = NULL, *tappd = NULL, *tls = NULL;
	struct tls_listener tl;
	struct cvm_httpd_opts ho;
	struct http_limits lim;
	struct cvm_rpc_api dstack_api, tappd_api, tls_api;
	enum cvm_log_level level;
	uint16_t port = 0;
	bool tappd_given = false;
	char err[512];
	int r, rc = 1;

	/* Before any JSON value exists: jansson wipes what it frees (the app
	 * keys pass through it). */
	cvm_kdf_json_wipe_on_free();
	agent_config_defaults(c);
	memset(&lim, 0, sizeof(lim));
	memset(&tl, 0, sizeof(tl));
	agent.rt.lock_fd = -1;
	r = parse_args(argc, argv, c, true, &tappd_given);
	if (r != 0)
		return r;
	/* 1. config: the file named by -c, else the default one if present;
	 * the command line wins over both. */
	if (c->config_file[0] == '\0' && access(DEFAULT_CONFIG, F_OK) == 0)
		(void)snprintf(c->config_file, sizeof(c->config_file), "%s", DEFAULT_CONFIG);
	if (c->config_file[0] != '\0') {
		r = load_config(c, &lim, err, sizeof(err));
		if (r != CVM_OK) {
			(void)fprintf(stderr, PROG ": %s: %s\n", c->config_file, err);
			return 1;
		}
	}
	r = parse_args(argc, argv, c, false, &tappd_given);
	if (r != 0) {
		usage(stderr);
		return r;
	}
	if (c->dstack_listen[0] == '\0')
		(void)snprintf(c->dstack_listen, sizeof(c->dstack_listen), "unix:/var/run/dstack.sock");
	if (c->tappd_listen[0] == '\0' && c->config_file[0] == '\0' && c->simulator[0] == '\0' &&
	    !tappd_given)
		(void)snprintf(c->tappd_listen, sizeof(c->tappd_listen), "unix:/var/run/tappd.sock");
	memset(&ho, 0, sizeof(ho));
	ho.max_body = (size_t)c->max_body;
	ho.timeout_s = (unsigned)c->timeout;
	ho.header_timeout_s = (unsigned)lim.header_timeout;
	ho.body_timeout_s = (unsigned)lim.body_timeout;
	ho.reply_timeout_s = (unsigned)lim.reply_timeout;
	ho.max_connections = (unsigned)lim.max_connections;
	ho.max_connections_per_peer = (unsigned)lim.max_connections_per_peer;
	ho.max_buffered = (size_t)lim.max_buffered;
	ho.max_buffered_per_peer = (size_t)lim.max_buffered_per_peer;
	/* dstack's own agent (Rust, hyper) reads chunked request bodies: its
	 * clients may send them. */
	ho.allow_chunked = true;
	if (cvm_httpd_opts_check(&ho, err, sizeof(err)) != CVM_OK) {
		(void)fprintf(stderr, PROG ": %s%s%s\n", c->config_file[0] != '\0' ? c->config_file : "",
		              c->config_file[0] != '\0' ? ": " : "", err);
		return 1;
	}
	/* 2. logging */
	if (cvm_daemon_log_level_parse(c->log_level, &level) != CVM_OK) {
		(void)fprintf(stderr, PROG ": log level '%s': use error, warn, info or debug\n",
		              c->log_level);
		return 2;
	}
	cvm_daemon_log_init(PROG, level);
	/* tpm2-tss prints its own lines to stderr, which would break the
	 * key=value log; the agent reports TPM errors itself. */
	if (c->tpm_tcti[0] != '\0' && level != CVM_LOG_DEBUG && getenv("TSS2_LOG") == NULL)
		(void)setenv("TSS2_LOG", "all+none", 0);
	/* 3. the agent holds keys: no core dumps, no ptrace by others */
	if (cvm_daemon_harden() != CVM_OK) {
		cvm_daemon_log(CVM_LOG_ERROR, "harden_failed", "errno=%d", errno);
		return 1;
	}
	r = agent_open(&agent, err, sizeof(err));
	if (r != CVM_OK) {
		char k[CVM_KV_MAX];

		cvm_daemon_log(CVM_LOG_ERROR, "start_failed", "error=%s", cvm_kv(err, k));
		(void)fprintf(stderr, PROG ": %s\n", err);
		goto out;
	}
	/* 4. listeners */
	base = event_base_new();
	if (base == NULL || cvm_daemon_signals_new(base, &sigs) != CVM_OK)
		goto out;
	dstack_api = (struct cvm_rpc_api){"dstack", agent_dstack_mounts, agent_dstack_mount_count, &agent};
	tappd_api = (struct cvm_rpc_api){"tappd", agent_tappd_mounts, agent_tappd_mount_count, &agent};
	ho.name = "dstack";
	if (cvm_httpd_new(base, &ho, serve, &dstack_api, &dstack) != CVM_OK)
		goto out;
	if (listen_on(dstack, "dstack", c->dstack_listen, c->dstack_mode, c->allow_remote_tcp, &port) !=
	    CVM_OK)
		goto out;
	if (c->dstack_tcp[0] != '\0' &&
	    listen_on(dstack, "dstack", c->dstack_tcp, 0, c->allow_remote_tcp, &port) != CVM_OK)
		goto out;
	if (c->tappd_listen[0] != '\0') {
		ho.name = "tappd";
		if (cvm_httpd_new(base, &ho, serve, &tappd_api, &tappd) != CVM_OK)
			goto out;
		if (listen_on(tappd, "tappd", c->tappd_listen, c->tappd_mode, c->allow_remote_tcp, NULL) !=
		    CVM_OK)
			goto out;
	}
	if (c->tls_listen[0] != '\0') {
		struct cvm_httpd_opts to;
		uint16_t tls_port = 0;

		/* its own caps: remote peers reach it, and its requests are small */
		to = ho;
		to.name = "tls";
		to.max_body = (size_t)c->tls_max_body;
		to.max_headers = (size_t)c->tls_max_headers;
		to.max_connections = (unsigned)c->tls_max_connections;
		to.max_connections_per_peer = (unsigned)c->tls_max_connections_per_peer;
		to.max_buffered = 0;
		to.max_buffered_per_peer = 0;
		to.allow_chunked = false;
		if (cvm_httpd_opts_check(&to, err, sizeof(err)) != CVM_OK) {
			(void)fprintf(stderr, PROG ": [tls]: %s\n", err);
			goto out;
		}
		tls_api = (struct cvm_rpc_api){"tls", agent_tls_mounts, agent_tls_mount_count, &agent};
		if (cvm_httpd_new(base, &to, serve_tls, &tls_api, &tls) != CVM_OK)
			goto out;
		tl.a = &agent;
		tl.h = tls;
		tl.lifetime_s = c->tls_lifetime_hours * 3600u;
		tl.handshake_s = (unsigned)c->tls_handshake_timeout;
		tl.renew = evtimer_new(base, tls_renew, &tl);
		tl.hup = evsignal_new(base, SIGHUP, tls_renew, &tl);
		if (tl.renew == NULL || tl.hup == NULL || evsignal_add(tl.hup, NULL) != 0)
			goto out;
		if (tls_install(&tl, err, sizeof(err)) != CVM_OK) {
			char k[CVM_KV_MAX];

			cvm_daemon_log(CVM_LOG_ERROR, "start_failed", "error=%s", cvm_kv(err, k));
			(void)fprintf(stderr, PROG ": TLS listener: %s\n", err);
			goto out;
		}
		/* A host without a port listens on dstack's port. */
		if (strncmp(c->tls_listen, "unix:", 5) != 0 && strchr(c->tls_listen, ':') == NULL) {
			size_t n = strlen(c->tls_listen);

			if (snprintf(c->tls_listen + n, sizeof(c->tls_listen) - n, ":%u",
			             AGENT_TLS_PORT_DEFAULT) >= (int)(sizeof(c->tls_listen) - n)) {
				(void)fprintf(stderr, PROG ": tls listen '%s' is too long\n", c->tls_listen);
				goto out;
			}
		}
		/* remote peers are the point of this listener: it serves no key */
		if (listen_on(tls, "tls", c->tls_listen, 0, true, &tls_port) != CVM_OK)
			goto out;
		if (c->tls_port_file[0] != '\0') {
			char text[16];
			int n = snprintf(text, sizeof(text), "%u\n", tls_port);

			if (cvm_file_write(c->tls_port_file, text, (size_t)n, 0644) != CVM_OK) {
				(void)fprintf(stderr, PROG ": cannot write %s: %s\n", c->tls_port_file,
				              strerror(errno));
				goto out;
			}
		}
	}
	if (c->port_file[0] != '\0') {
		char text[16];
		int n = snprintf(text, sizeof(text), "%u\n", port);

		if (cvm_file_write(c->port_file, text, (size_t)n, 0644) != CVM_OK) {
			(void)fprintf(stderr, PROG ": cannot write %s: %s\n", c->port_file, strerror(errno));
			goto out;
		}
	}
	/* 5. privileges */
	r = cvm_daemon_drop_privileges(c->user);
	if (r != CVM_OK) {
		(void)fprintf(stderr, PROG ": cannot switch to user '%s': %s\n", c->user,
		              r == CVM_E_SYSTEM ? strerror(errno) : "no such user");
		goto out;
	}
	/* 6. serve */
	{
		char k1[CVM_KV_MAX], k2[CVM_KV_MAX];

		cvm_daemon_log(CVM_LOG_INFO, "start",
		               "version=%s tee=%s simulated=%s keys=%s runtime_events=%zu log=%s",
		               CVM_VERSION_STRING, cvm_kv(agent.tee_info.description, k1),
		               agent.tee_info.is_simulated ? "yes" : "no",
		               cvm_key_provider_name(agent.keys->key_provider), agent.rt.count,
		               cvm_kv(c->runtime_log, k2));
	}
	/* the app starts once the agent serves: it may ask the agent at once */
	agent_boot_instance_info(&agent);
	if (agent_boot_app(&agent) != CVM_OK)
		cvm_daemon_log(CVM_LOG_ERROR, "boot_app", "hook=%s error=cannot_start errno=%d",
		               agent.cfg.boot_app_hook, errno);
	if (event_base_dispatch(base) < 0)
		goto out;
	cvm_daemon_log(CVM_LOG_INFO, "stop", "%s", "");
	rc = 0;
out:
	if (tl.renew != NULL)
		event_free(tl.renew);
	if (tl.hup != NULL)
		event_free(tl.hup);
	cvm_httpd_free(tls);
	cvm_httpd_free(tappd);
	cvm_httpd_free(dstack);
	cvm_daemon_signals_free(sigs);
	if (base != NULL)
		event_base_free(base);
	agent_close(&agent);
	return rc;
}

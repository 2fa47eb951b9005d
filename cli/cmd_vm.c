/* cvm vm: a client of cvm-vmmd (docs/cli/cvm-vm.md), over HTTP or a unix
 * socket, speaking dstack's Vmm RPCs (POST /prpc/<Method>?json). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>

#include "cli.h"
#include "net.h"

#define CMD "vm"
#define REPLY_MAX ((size_t)16 * 1024 * 1024)
#define COMPOSE_MAX ((size_t)256 * 1024)
#define ENV_MAX ((size_t)1024 * 1024)
#define DEFAULT_URL "http://127.0.0.1:9080"

struct vm_client {
	char base[1024];      /* http(s)://host:port, or http://localhost for a unix socket */
	char unix_path[1024]; /* "" for TCP */
	const char *token;
};

static struct vm_client client;

static void usage(FILE *f)
{
	(void)fprintf(
	    f, "usage: cvm vm [--url URL|unix:PATH] [--token TOKEN] COMMAND ...\n"
	       "\n"
	       "  deploy --name N --image I --compose FILE [--vcpu N] [--memory MB] [--disk GB]\n"
	       "         [--port tcp:[ADDR:]HOST:VM ...] [--encrypted-env FILE] [--user-config FILE]\n"
	       "         [--kms-url URL ...] [--gateway-url URL ...] [--app-id HEX] [--stopped]\n"
	       "         [--env-file FILE --kms-pubkey HEX] [--app-image NAME.tar ...]\n"
	       "         [--wait [--timeout S]] [-v]\n"
	       "  ls [-v] [--json]          list the VMs\n"
	       "  logs ID|NAME [-n N] [-f]  the VM's serial log (last N lines; -f: follow it)\n"
	       "  start ID|NAME             start a stopped VM\n"
	       "  stop [-f] ID|NAME         ACPI shutdown (stop_timeout, then quit); -f: quit at once\n"
	       "  rm ID|NAME                remove a stopped VM and its work dir\n"
	       "  upgrade ID|NAME --compose FILE [--encrypted-env FILE] [--user-config FILE]\n"
	       "  images                    list the guest images\n"
	       "\n"
	       "The daemon is --url, else $CVM_VMM_URL, else " DEFAULT_URL ". The token is\n"
	       "--token, else $CVM_VMM_TOKEN. See docs/cli/cvm-vm.md.\n");
}

static void printable(const char *s, char *out, size_t cap)
{
	size_t j = 0;

	for (; s != NULL && *s != '\0' && j + 1 < cap; s++)
		if (*s >= 0x20 && *s < 0x7f)
			out[j++] = *s;
		else
			out[j++] = '?';
	out[j] = '\0';
}

/* http makes one request to `path` (POST with `body`, or GET when body is
 * NULL); it returns the HTTP status (0 when unreachable, after printing why)
 * and the body in *rep. */
static long http(const char *path, const char *body, struct cli_reply *rep)
{
	char url[2200], errbuf[CURL_ERROR_SIZE] = "", auth[300];
	struct curl_slist *hdrs = NULL;
	long status = 0;
	CURL *c;
	CURLcode cr;

	memset(rep, 0, sizeof(*rep));
	rep->max = REPLY_MAX;
	(void)snprintf(url, sizeof(url), "%s%s", client.base, path);
	c = curl_easy_init();
	hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (client.token != NULL) {
		(void)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", client.token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (c == NULL || hdrs == NULL) {
		cli_err(CMD, "out of memory");
		goto out;
	}
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cli_reply_collect) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, rep) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    (client.unix_path[0] != '\0' &&
	     curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, client.unix_path) != CURLE_OK) ||
	    (body != NULL && curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) != CURLE_OK)) {
		cli_err(CMD, "cannot set up the HTTP client");
		goto out;
	}
	cr = curl_easy_perform(c);
	if (rep->too_large) {
		cli_err(CMD, "the answer is over %zu bytes: refused", REPLY_MAX);
		goto out;
	}
	if (cr != CURLE_OK) {
		cli_err(CMD, "cannot reach cvm-vmmd at %s%s%s: %s (set --url or CVM_VMM_URL)",
		        client.unix_path[0] != '\0' ? "unix:" : client.base, client.unix_path, "",
		        errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cr));
		goto out;
	}
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return status;
}

/* call runs a Vmm RPC; on success *out is the reply (NULL for `null`). On
 * failure it prints the daemon's error and returns CLI_EXIT_ERROR. */
static int call(const char *method, json_t *args, json_t **out)
{
	char path[128], msg[512];
	struct cli_reply rep;
	char *body;
	long status;
	json_t *j;

	*out = NULL;
	body = json_dumps(args, JSON_COMPACT);
	if (body == NULL) {
		cli_err(CMD, "out of memory");
		return CLI_EXIT_ERROR;
	}
	(void)snprintf(path, sizeof(path), "/prpc/%s?json", method);
	status = http(path, body, &rep);
	free(body);
	if (status == 0) {
		free(rep.buf);
		return CLI_EXIT_ERROR;
	}
	j = json_loadb(rep.buf != NULL ? rep.buf : "", rep.len, JSON_DECODE_ANY, NULL);
	if (status != 200) {
		printable(json_string_value(json_object_get(j, "error")) != NULL
		              ? json_string_value(json_object_get(j, "error"))
		              : (rep.buf != NULL ? rep.buf : ""),
		          msg, sizeof(msg));
		cli_err(CMD, "%s: HTTP %ld: %s", method, status, msg);
		json_decref(j);
		free(rep.buf);
		return CLI_EXIT_ERROR;
	}
	free(rep.buf);
	if (j == NULL) {
		cli_err(CMD, "%s: the answer is not JSON", method);
		return CLI_EXIT_ERROR;
	}
	if (json_is_null(j)) {
		json_decref(j);
		j = NULL;
	}
	*out = j;
	return CLI_EXIT_OK;
}

static int read_text(const char *what, const char *path, size_t max, json_t *o, const char *key, bool hex)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	json_t *v;
	int r;

	r = cli_read_file(CMD, what, path, max, &buf, &len);
	if (r != CLI_EXIT_OK)
		return r;
	if (hex) {
		char *h = cvm_hex_encode_new(buf, len);

		v = h != NULL ? json_string(h) : NULL;
		free(h);
	} else {
		v = json_stringn((const char *)buf, len);
		if (v == NULL) {
			free(buf);
			cli_err(CMD, "%s '%s' is not UTF-8 text", what, path);
			return CLI_EXIT_ERROR;
		}
	}
	free(buf);
	if (v == NULL || json_object_set_new(o, key, v) != 0) {
		cli_err(CMD, "out of memory");
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

/* parse_port reads tcp:[ADDR:]HOST:VM (also udp:). */
static json_t *parse_port(const char *s)
{
	char buf[128], *parts[4];
	size_t n = 0;
	uint64_t host, vm;
	char *p, *end;

	if (strlen(s) >= sizeof(buf))
		return NULL;
	(void)snprintf(buf, sizeof(buf), "%s", s);
	p = buf;
	while (n < 4) {
		parts[n++] = p;
		p = strchr(p, ':');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	if (p != NULL || n < 3 || (strcmp(parts[0], "tcp") != 0 && strcmp(parts[0], "udp") != 0))
		return NULL;
	host = strtoull(parts[n - 2], &end, 10);
	if (*end != '\0' || parts[n - 2][0] == '\0' || host == 0 || host > 65535)
		return NULL;
	vm = strtoull(parts[n - 1], &end, 10);
	if (*end != '\0' || parts[n - 1][0] == '\0' || vm == 0 || vm > 65535)
		return NULL;
	return json_pack("{s:s,s:I,s:I,s:s}", "protocol", parts[0], "host_port", (json_int_t)host, "vm_port",
	                 (json_int_t)vm, "host_address", n == 4 ? parts[1] : "");
}

static bool parse_uint(const char *s, json_int_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || v > 0xffffffffull)
		return false;
	*out = (json_int_t)v;
	return true;
}

/* seal_env_file seals the plain env file to the app's env key, which the
 * daemon proxies from its KMS (checked with the KMS's k256 key), and sets
 * encrypted_env: dstack's vmm-cli.py --env-file, with the check it lacks. The
 * app id is --app-id, else the compose file's (its hash's first 20 bytes). */
static int seal_env_file(json_t *args, const char *path, const char *kms_pub)
{
	const json_t *cj = json_object_get(args, "compose_file");
	const char *given = json_string_value(json_object_get(args, "app_id"));
	char app_id[41];
	uint8_t hash[32], *blob = NULL;
	size_t blob_len = 0;
	char *hex;
	int r;

	if (client.unix_path[0] != '\0') {
		cli_err(CMD,
		        "--env-file needs the daemon at an http:// or https:// --url (not a unix socket)");
		return CLI_EXIT_USAGE;
	}
	if (given != NULL) {
		(void)snprintf(app_id, sizeof(app_id), "%s",
		               given[0] == '0' && (given[1] == 'x' || given[1] == 'X') ? given + 2 : given);
	} else {
		cvm_sha256(json_string_value(cj), json_string_length(cj), hash);
		cvm_hex_encode(hash, 20, app_id);
	}
	r = cli_env_seal_for_app(client.base, client.token, app_id, kms_pub, path, &blob, &blob_len);
	if (r != CLI_EXIT_OK)
		return r;
	hex = cvm_hex_encode_new(blob, blob_len);
	free(blob);
	if (hex == NULL || json_object_set_new(args, "encrypted_env", json_string(hex)) != 0) {
		free(hex);
		cli_err(CMD, "out of memory");
		return CLI_EXIT_ERROR;
	}
	free(hex);
	return CLI_EXIT_OK;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* app_up: a health line ("health: NAME STATUS; ...", docs/vm.md) where
 * every container is up and none is still starting or unhealthy. */
static bool app_up(const char *p)
{
	if (strncmp(p, "health: ", 8) != 0 || strstr(p, " Up ") == NULL)
		return false;
	return strstr(p, "(health: starting)") == NULL && strstr(p, "(unhealthy)") == NULL &&
	       strstr(p, "Exited") == NULL && strstr(p, "Restarting") == NULL && strstr(p, "Created") == NULL;
}

/* history_at finds the time of the first entry at or after index `from` of
 * `h` whose progress starts with `prefix` (-1 when none); *index gets it. */
static int64_t history_at(const json_t *h, size_t from, const char *prefix, size_t *index)
{
	for (size_t i = from; i < json_array_size(h); i++) {
		const json_t *e = json_array_get(h, i);
		const char *p = json_string_value(json_object_get(e, "progress"));

		if (p != NULL && strncmp(p, prefix, strlen(prefix)) == 0) {
			if (index != NULL)
				*index = i;
			return (int64_t)json_integer_value(json_object_get(e, "at_ms"));
		}
	}
	return -1;
}

static void phase(const char *name, int64_t from, int64_t to, const char *what)
{
	if (from < 0 || to < 0 || to < from)
		(void)printf("  %-6s     -    %s\n", name, what);
	else
		(void)printf("  %-6s %7.1f s  %s\n", name, (double)(to - from) / 1000.0, what);
}

/* print_phases splits the deploy's time by the VM's progress history
 * (GetInfo's boot_history, the daemon's clock): vmm from the CreateVm call
 * to QEMU started (the launch measurement of a dev VM included), boot to
 * the guest asking the KMS for keys, kms to the keys' arrival, app to the
 * app reported up (storage, docker, images, compose, health). */
static void print_phases(const json_t *info, int64_t t0, int64_t t_up)
{
	const json_t *h = json_object_get(info, "boot_history");
	size_t start = 0, i = 0;
	int64_t t_req, t_meas = -1, t_qemu, t_ask, t_keys;

	/* the last start of the history is this deploy's */
	while (history_at(h, i, "start requested", &i) >= 0)
		start = i++;
	t_req = history_at(h, start, "start requested", NULL);
	t_meas = history_at(h, start, "measuring", NULL);
	t_qemu = history_at(h, start, "QEMU started", NULL);
	t_ask = history_at(h, start, "keys: asking", NULL);
	t_keys = history_at(h, start, "keys: from", NULL);
	(void)printf("deploy phases (cvm-vmmd's clock from the request):\n");
	phase("vmm", t0, t_qemu,
	      t_meas >= 0 ? "create, the launch measurement (ACPI probe), QEMU" : "create, QEMU");
	phase("boot", t_qemu, t_ask >= 0 ? t_ask : -1, "firmware, kernel, agent up to its key request");
	phase("kms", t_ask, t_keys, "GetAppKey over RA-TLS");
	phase("app", t_keys >= 0 ? t_keys : t_qemu, t_up, "data disk, docker, images, compose up, healthy");
	phase("total", t0, t_up, "from deploy to the app up");
	if (t_req >= 0 && t_req < t0 - 5000)
		(void)printf("  (the daemon's clock is behind this host's by %.1f s)\n",
		             (double)(t0 - t_req) / 1000.0);
}

/* show_history prints the entries of the VM's progress history from
 * index *shown on (each once, with its time from the request), so that no
 * step is missed between two polls. */
static void show_history(const json_t *h, int64_t t0, size_t *shown)
{
	char text[512];

	for (; *shown < json_array_size(h); (*shown)++) {
		const json_t *e = json_array_get(h, *shown);
		const char *p = json_string_value(json_object_get(e, "progress"));
		int64_t at = (int64_t)json_integer_value(json_object_get(e, "at_ms"));

		printable(p, text, sizeof(text));
		if (!cli_opts.quiet)
			(void)fprintf(stderr, "deploy: [%6.1f s] %s\n", (double)(at - t0) / 1000.0, text);
	}
}

/* deploy_wait follows the new VM until its app is up (its health line),
 * a boot error, or `timeout_s`, printing each step of its progress. */
static int deploy_wait(const char *id, int64_t t0, int64_t timeout_s, bool verbose)
{
	char shown_err[512];
	json_t *args, *rep = NULL;
	size_t shown = 0;
	int r = CLI_EXIT_ERROR;

	if (id == NULL) {
		cli_err(CMD, "CreateVm answered without an id");
		return CLI_EXIT_ERROR;
	}
	if (!cli_opts.quiet)
		(void)fprintf(stderr, "deploy: VM %s created; waiting for the app (up to %lld s)\n", id,
		              (long long)timeout_s);
	args = json_pack("{s:s}", "id", id);
	while (args != NULL) {
		const json_t *info, *h;
		const char *p, *e, *st;

		json_decref(rep);
		rep = NULL;
		if (call("GetInfo", args, &rep) != CLI_EXIT_OK)
			break;
		info = json_object_get(rep, "info");
		h = json_object_get(info, "boot_history");
		p = json_string_value(json_object_get(info, "boot_progress"));
		e = json_string_value(json_object_get(info, "boot_error"));
		st = json_string_value(json_object_get(info, "status"));
		show_history(h, t0, &shown);
		if ((e != NULL && e[0] != '\0') || (st != NULL && strcmp(st, "failed") == 0)) {
			printable(e != NULL && e[0] != '\0' ? e : "the VM failed to start", shown_err,
			          sizeof(shown_err));
			cli_err(CMD, "VM %s did not come up: %s (see cvm vm logs %s)", id, shown_err, id);
			break;
		}
		if (st != NULL && strcmp(st, "stopped") == 0) {
			cli_err(CMD, "VM %s stopped before its app came up (see cvm vm logs %s)", id, id);
			break;
		}
		if (p != NULL && app_up(p)) {
			int64_t t_up = -1;

			/* the first health line of the trailing run that says up */
			for (size_t i = json_array_size(h); i-- > 0;) {
				const json_t *x = json_array_get(h, i);
				const char *hp = json_string_value(json_object_get(x, "progress"));

				if (hp == NULL || !app_up(hp))
					break;
				t_up = (int64_t)json_integer_value(json_object_get(x, "at_ms"));
			}
			if (verbose)
				print_phases(info, t0, t_up);
			(void)printf("%s\n", id);
			r = CLI_EXIT_OK;
			break;
		}
		if (now_ms() - t0 > timeout_s * 1000) {
			printable(p != NULL && p[0] != '\0' ? p : "no progress reported", shown_err,
			          sizeof(shown_err));
			cli_err(CMD, "VM %s: the app is not up after %lld s (last: %s); it keeps starting",
			        id, (long long)timeout_s, shown_err);
			break;
		}
		(void)usleep(500 * 1000);
	}
	json_decref(rep);
	json_decref(args);
	return r;
}

static int vm_deploy(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"name", required_argument, NULL, 'n'},
	    {"image", required_argument, NULL, 'i'},
	    {"compose", required_argument, NULL, 'c'},
	    {"vcpu", required_argument, NULL, 'V'},
	    {"memory", required_argument, NULL, 'm'},
	    {"disk", required_argument, NULL, 'd'},
	    {"port", required_argument, NULL, 'p'},
	    {"encrypted-env", required_argument, NULL, 'e'},
	    {"env-file", required_argument, NULL, 'E'},
	    {"user-config", required_argument, NULL, 'u'},
	    {"kms-url", required_argument, NULL, 'k'},
	    {"gateway-url", required_argument, NULL, 'g'},
	    {"app-id", required_argument, NULL, 'a'},
	    {"stopped", no_argument, NULL, 's'},
	    {"app-image", required_argument, NULL, 'I'},
	    {"wait", no_argument, NULL, 'w'},
	    {"kms-pubkey", required_argument, NULL, 'K'},
	    {"timeout", required_argument, NULL, 'T'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	json_t *args = json_object(), *ports = json_array(), *kms = json_array(), *gw = json_array(),
	       *imgs = json_array(), *rep = NULL;
	json_int_t vcpu = 1, mem = 1024, disk = 10, timeout = 900;
	const char *compose = NULL, *env = NULL, *ucfg = NULL, *env_file = NULL, *kms_pub = NULL;
	bool wait = false, verbose = false;
	int64_t t0;
	int c, r = CLI_EXIT_USAGE;

	if (args == NULL || ports == NULL || kms == NULL || gw == NULL || imgs == NULL) {
		r = CLI_EXIT_ERROR;
		goto out;
	}
	optind = 0;
	while ((c = getopt_long(argc, argv, ":hv", opts, NULL)) != -1) {
		json_t *v = NULL;

		switch (c) {
		case 'I':
			(void)json_array_append_new(imgs, json_string(optarg));
			break;
		case 'w':
			wait = true;
			break;
		case 'v':
			wait = verbose = true;
			break;
		case 'T':
			if (!parse_uint(optarg, &timeout) || timeout == 0) {
				cli_err(CMD, "--timeout %s is not a number of seconds", optarg);
				goto out;
			}
			break;
		case 'n':
			v = json_string(optarg);
			if (v != NULL)
				(void)json_object_set_new(args, "name", v);
			break;
		case 'i':
			v = json_string(optarg);
			if (v != NULL)
				(void)json_object_set_new(args, "image", v);
			break;
		case 'c':
			compose = optarg;
			break;
		case 'V':
			if (!parse_uint(optarg, &vcpu)) {
				cli_err(CMD, "--vcpu %s is not a number", optarg);
				goto out;
			}
			break;
		case 'm':
			if (!parse_uint(optarg, &mem)) {
				cli_err(CMD, "--memory %s is not a number of MB", optarg);
				goto out;
			}
			break;
		case 'd':
			if (!parse_uint(optarg, &disk)) {
				cli_err(CMD, "--disk %s is not a number of GB", optarg);
				goto out;
			}
			break;
		case 'p':
			v = parse_port(optarg);
			if (v == NULL) {
				cli_err(CMD, "--port %s is not tcp:[ADDR:]HOST:VM or udp:[ADDR:]HOST:VM",
				        optarg);
				goto out;
			}
			(void)json_array_append_new(ports, v);
			break;
		case 'e':
			env = optarg;
			break;
		case 'E':
			env_file = optarg;
			break;
		case 'K':
			kms_pub = optarg;
			break;
		case 'u':
			ucfg = optarg;
			break;
		case 'k':
			(void)json_array_append_new(kms, json_string(optarg));
			break;
		case 'g':
			(void)json_array_append_new(gw, json_string(optarg));
			break;
		case 'a':
			v = json_string(optarg);
			if (v != NULL)
				(void)json_object_set_new(args, "app_id", v);
			break;
		case 's':
			(void)json_object_set_new(args, "stopped", json_true());
			break;
		case 'h':
			usage(stdout);
			r = CLI_EXIT_OK;
			goto out;
		default:
			cli_bad_option(CMD " deploy", c, argv, "vm");
			goto out;
		}
	}
	if (optind != argc || json_object_get(args, "name") == NULL ||
	    json_object_get(args, "image") == NULL || compose == NULL) {
		cli_err(CMD, "deploy needs --name, --image and --compose (and nothing else)");
		goto out;
	}
	if (env_file != NULL && (env != NULL || kms_pub == NULL)) {
		cli_err(CMD,
		        "--env-file (plain KEY=value) needs --kms-pubkey HEX, the KMS's k256 public key its "
		        "env key signature is checked with, and excludes --encrypted-env");
		goto out;
	}
	if (kms_pub != NULL && env_file == NULL) {
		cli_err(CMD, "--kms-pubkey goes with --env-file");
		goto out;
	}
	r = read_text("compose file", compose, COMPOSE_MAX, args, "compose_file", false);
	if (r == CLI_EXIT_OK && env != NULL)
		r = read_text("encrypted env", env, ENV_MAX, args, "encrypted_env", true);
	if (r == CLI_EXIT_OK && env_file != NULL)
		r = seal_env_file(args, env_file, kms_pub);
	if (r == CLI_EXIT_OK && ucfg != NULL)
		r = read_text("user config", ucfg, (size_t)64 * 1024, args, "user_config", false);
	if (r != CLI_EXIT_OK)
		goto out;
	(void)json_object_set_new(args, "vcpu", json_integer(vcpu));
	(void)json_object_set_new(args, "memory", json_integer(mem));
	(void)json_object_set_new(args, "disk_size", json_integer(disk));
	(void)json_object_set(args, "ports", ports);
	(void)json_object_set(args, "kms_urls", kms);
	(void)json_object_set(args, "gateway_urls", gw);
	if (json_array_size(imgs) > 0)
		(void)json_object_set(args, "app_images", imgs);
	if (wait && json_is_true(json_object_get(args, "stopped"))) {
		cli_err(CMD, "--wait and -v wait for the app to come up: not with --stopped");
		r = CLI_EXIT_USAGE;
		goto out;
	}
	t0 = now_ms();
	r = call("CreateVm", args, &rep);
	if (r == CLI_EXIT_OK && wait) {
		r = deploy_wait(json_string_value(json_object_get(rep, "id")), t0, (int64_t)timeout, verbose);
	} else if (r == CLI_EXIT_OK) {
		if (cli_opts.json) {
			char *s = json_dumps(rep, JSON_COMPACT);

			(void)printf("%s\n", s != NULL ? s : "{}");
			free(s);
		} else {
			(void)printf("%s\n", json_string_value(json_object_get(rep, "id")));
		}
	}
out:
	json_decref(rep);
	json_decref(args);
	json_decref(ports);
	json_decref(kms);
	json_decref(gw);
	json_decref(imgs);
	return r;
}

static int vm_ls(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"verbose", no_argument, NULL, 'v'}, {"json", no_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
	json_t *args, *rep = NULL, *vm;
	bool verbose = false;
	size_t i;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":v", opts, NULL)) != -1) {
		if (c == 'v') {
			verbose = true;
		} else if (c == 'j') {
			cli_opts.json = true;
		} else {
			cli_bad_option(CMD " ls", c, argv, "vm");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		cli_err(CMD, "ls takes no arguments");
		return CLI_EXIT_USAGE;
	}
	args = json_pack("{s:b}", "brief", !verbose);
	r = call("Status", args, &rep);
	json_decref(args);
	if (r != CLI_EXIT_OK)
		return r;
	if (cli_opts.json) {
		char *s = json_dumps(rep, JSON_COMPACT);

		(void)printf("%s\n", s != NULL ? s : "{}");
		free(s);
		json_decref(rep);
		return CLI_EXIT_OK;
	}
	(void)printf("%-36s  %-20s  %-9s  %-10s  %s\n", "ID", "NAME", "STATUS", "UPTIME", "APP_ID");
	json_array_foreach(json_object_get(rep, "vms"), i, vm)
	{
		char id[40], name[64], st[16], up[32], app[48];

		printable(json_string_value(json_object_get(vm, "id")), id, sizeof(id));
		printable(json_string_value(json_object_get(vm, "name")), name, sizeof(name));
		printable(json_string_value(json_object_get(vm, "status")), st, sizeof(st));
		printable(json_string_value(json_object_get(vm, "uptime")), up, sizeof(up));
		printable(json_string_value(json_object_get(vm, "app_id")), app, sizeof(app));
		(void)printf("%-36s  %-20s  %-9s  %-10s  %s\n", id, name, st, up[0] != '\0' ? up : "-", app);
		if (verbose) {
			const json_t *cfg = json_object_get(vm, "configuration"), *p;
			char err[300];
			size_t k;

			(void)printf("    image %s, %lld vcpu, %lld MB, %lld GB disk, cid %lld\n",
			             json_string_value(json_object_get(cfg, "image")),
			             (long long)json_integer_value(json_object_get(cfg, "vcpu")),
			             (long long)json_integer_value(json_object_get(cfg, "memory")),
			             (long long)json_integer_value(json_object_get(cfg, "disk_size")),
			             (long long)json_integer_value(json_object_get(vm, "cid")));
			json_array_foreach(json_object_get(cfg, "ports"), k, p)(void) printf(
			    "    port %s %lld -> %lld\n", json_string_value(json_object_get(p, "protocol")),
			    (long long)json_integer_value(json_object_get(p, "host_port")),
			    (long long)json_integer_value(json_object_get(p, "vm_port")));
			printable(json_string_value(json_object_get(vm, "boot_error")), err, sizeof(err));
			if (err[0] != '\0')
				(void)printf("    error: %s\n", err);
		}
	}
	json_decref(rep);
	return CLI_EXIT_OK;
}

/* one_id runs METHOD {"id": ID} for `cvm vm start|rm ID`. */
static int one_id(const char *method, int argc, char **argv)
{
	json_t *args, *rep = NULL;
	int r;

	if (argc != 2) {
		cli_err(CMD, "%s takes one VM id or name", argv[0]);
		return CLI_EXIT_USAGE;
	}
	args = json_pack("{s:s}", "id", argv[1]);
	r = call(method, args, &rep);
	json_decref(args);
	json_decref(rep);
	return r;
}

static int vm_start(int argc, char **argv)
{
	return one_id("StartVm", argc, argv);
}

static int vm_rm(int argc, char **argv)
{
	return one_id("RemoveVm", argc, argv);
}

static int vm_stop(int argc, char **argv)
{
	bool force = false;
	int c;

	optind = 0;
	while ((c = getopt(argc, argv, ":f")) != -1) {
		if (c != 'f') {
			cli_bad_option(CMD " stop", c, argv, "vm");
			return CLI_EXIT_USAGE;
		}
		force = true;
	}
	if (optind + 1 != argc) {
		cli_err(CMD, "stop takes one VM id or name");
		return CLI_EXIT_USAGE;
	}
	argv[optind - 1] = argv[0];
	return one_id(force ? "StopVm" : "ShutdownVm", 2, argv + optind - 1);
}

static int vm_upgrade(int argc, char **argv)
{
	static const struct option opts[] = {{"compose", required_argument, NULL, 'c'},
	                                     {"encrypted-env", required_argument, NULL, 'e'},
	                                     {"user-config", required_argument, NULL, 'u'},
	                                     {NULL, 0, NULL, 0}};
	const char *compose = NULL, *env = NULL, *ucfg = NULL;
	json_t *args = NULL, *rep = NULL;
	int c, r;

	optind = 0;
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'c')
			compose = optarg;
		else if (c == 'e')
			env = optarg;
		else if (c == 'u')
			ucfg = optarg;
		else {
			cli_bad_option(CMD " upgrade", c, argv, "vm");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || compose == NULL) {
		cli_err(CMD, "upgrade takes one VM id or name and --compose FILE");
		return CLI_EXIT_USAGE;
	}
	args = json_pack("{s:s}", "id", argv[optind]);
	if (args == NULL)
		return CLI_EXIT_ERROR;
	r = read_text("compose file", compose, COMPOSE_MAX, args, "compose_file", false);
	if (r == CLI_EXIT_OK && env != NULL)
		r = read_text("encrypted env", env, ENV_MAX, args, "encrypted_env", true);
	if (r == CLI_EXIT_OK && ucfg != NULL)
		r = read_text("user config", ucfg, (size_t)64 * 1024, args, "user_config", false);
	if (r == CLI_EXIT_OK)
		r = call("UpgradeApp", args, &rep);
	json_decref(args);
	json_decref(rep);
	return r;
}

static int vm_images(int argc, char **argv)
{
	json_t *args = json_object(), *rep = NULL, *img;
	size_t i;
	int r;

	(void)argv;
	if (argc != 1) {
		json_decref(args);
		cli_err(CMD, "images takes no arguments");
		return CLI_EXIT_USAGE;
	}
	r = call("ListImages", args, &rep);
	json_decref(args);
	if (r != CLI_EXIT_OK)
		return r;
	json_array_foreach(json_object_get(rep, "images"), i, img)
	{
		char name[80], ver[80];

		printable(json_string_value(json_object_get(img, "name")), name, sizeof(name));
		printable(json_string_value(json_object_get(img, "version")), ver, sizeof(ver));
		(void)printf("%-32s  %s%s\n", name, ver,
		             json_is_true(json_object_get(img, "is_dev")) ? " (dev)" : "");
	}
	json_decref(rep);
	return CLI_EXIT_OK;
}

static size_t on_stdout(char *p, size_t size, size_t n, void *ctx)
{
	long *status = ctx;

	/* an error answer is JSON for the caller; log bytes go out at once */
	if (*status != 200)
		return size * n;
	(void)fwrite(p, size, n, stdout);
	(void)fflush(stdout);
	return size * n;
}

static int on_header(char *p, size_t size, size_t n, void *ctx)
{
	long *status = ctx;

	if (size * n > 12 && strncmp(p, "HTTP/1.", 7) == 0)
		*status = strtol(p + 9, NULL, 10);
	return (int)(size * n);
}

/* vm_logs prints the tail of the serial log; with -f it keeps the
 * connection open and prints what the log gains (the daemon streams it)
 * until interrupted or the VM is removed. */
static int vm_logs(int argc, char **argv)
{
	char path[512], url[2200], errbuf[CURL_ERROR_SIZE] = "", auth[300];
	unsigned long long lines = 100;
	struct curl_slist *hdrs = NULL;
	bool follow = false;
	long status = 0;
	char *id_enc = NULL, *end;
	CURL *c = NULL;
	CURLcode cr;
	int ch, r = CLI_EXIT_ERROR;

	optind = 0;
	while ((ch = getopt(argc, argv, ":n:f")) != -1) {
		if (ch == 'n') {
			lines = strtoull(optarg, &end, 10);
			if (*end != '\0' || lines == 0 || lines > 100000) {
				cli_err(CMD, "-n %s is not a number from 1 to 100000", optarg);
				return CLI_EXIT_USAGE;
			}
		} else if (ch == 'f') {
			follow = true;
		} else {
			cli_bad_option(CMD " logs", ch, argv, "vm");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		cli_err(CMD, "logs takes one VM id or name");
		return CLI_EXIT_USAGE;
	}
	c = curl_easy_init();
	id_enc = c != NULL ? curl_easy_escape(c, argv[optind], 0) : NULL;
	if (id_enc == NULL) {
		cli_err(CMD, "out of memory");
		goto out;
	}
	(void)snprintf(path, sizeof(path), "/logs?id=%s&lines=%llu%s", id_enc, lines,
	               follow ? "&follow=1" : "");
	(void)snprintf(url, sizeof(url), "%s%s", client.base, path);
	if (client.token != NULL) {
		(void)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", client.token);
		hdrs = curl_slist_append(NULL, auth);
	}
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT, follow ? 0L : 120L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HEADERDATA, &status) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_stdout) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, &status) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK ||
	    (client.unix_path[0] != '\0' &&
	     curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, client.unix_path) != CURLE_OK)) {
		cli_err(CMD, "cannot set up the HTTP client");
		goto out;
	}
	cr = curl_easy_perform(c);
	if (cr != CURLE_OK) {
		cli_err(CMD, "cannot reach cvm-vmmd at %s: %s",
		        client.unix_path[0] != '\0' ? client.unix_path : client.base,
		        errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cr));
		goto out;
	}
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		cli_err(CMD, "logs: HTTP %ld (no such VM, or a token is needed)", status);
		goto out;
	}
	r = CLI_EXIT_OK;
out:
	curl_free(id_enc);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return r;
}

int cmd_vm(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"deploy", vm_deploy}, {"ls", vm_ls}, {"logs", vm_logs},       {"start", vm_start},
	    {"stop", vm_stop},     {"rm", vm_rm}, {"upgrade", vm_upgrade}, {"images", vm_images},
	};
	const char *url = getenv("CVM_VMM_URL"), *token = getenv("CVM_VMM_TOKEN");
	int i = 1, r;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) {
			url = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc) {
			token = argv[i + 1];
			i += 2;
		} else {
			break;
		}
	}
	if (url == NULL || url[0] == '\0')
		url = DEFAULT_URL;
	memset(&client, 0, sizeof(client));
	client.token = token != NULL && token[0] != '\0' ? token : NULL;
	if (strncmp(url, "unix:", 5) == 0) {
		if (url[5] != '/' || strlen(url + 5) >= sizeof(client.unix_path)) {
			cli_err(CMD, "--url %s: a unix socket is unix:/absolute/path", url);
			return CLI_EXIT_USAGE;
		}
		(void)snprintf(client.unix_path, sizeof(client.unix_path), "%s", url + 5);
		(void)snprintf(client.base, sizeof(client.base), "http://localhost");
	} else if (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0) {
		size_t n = strlen(url);

		while (n > 0 && url[n - 1] == '/')
			n--;
		if (n >= sizeof(client.base)) {
			cli_err(CMD, "--url is too long");
			return CLI_EXIT_USAGE;
		}
		(void)snprintf(client.base, sizeof(client.base), "%.*s", (int)n, url);
	} else {
		cli_err(CMD, "--url %s is not http://HOST:PORT, https://... or unix:/path", url);
		return CLI_EXIT_USAGE;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		cli_err(CMD, "cannot initialise libcurl");
		return CLI_EXIT_ERROR;
	}
	r = cli_dispatch(CMD, subs, sizeof(subs) / sizeof(subs[0]), usage, argc - i + 1, argv + i - 1);
	curl_global_cleanup();
	return r;
}

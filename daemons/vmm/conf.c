/* cvm-vmmd's configuration: /etc/cvmkit/vmmd.conf (INI, daemons/common's
 * reader: unknown sections and keys are refused with their line). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/file.h>
#include <cvmkit/secret.h>

#include "conf.h"
#include "daemon.h"
#include "vmm.h"
#include "webui.h"

#define DEFAULT_CONFIG "/etc/cvmkit/vmmd.conf"

void vmm_conf_defaults(struct vmm_conf *c)
{
	memset(c, 0, sizeof(*c));
	(void)snprintf(c->config_file, sizeof(c->config_file), "%s", DEFAULT_CONFIG);
	(void)snprintf(c->listen, sizeof(c->listen), "127.0.0.1:9080");
	(void)snprintf(c->run_dir, sizeof(c->run_dir), "/var/lib/cvmkit/vmm");
	(void)snprintf(c->image_dir, sizeof(c->image_dir), "/var/lib/cvmkit/images");
	(void)snprintf(c->qemu, sizeof(c->qemu), "/usr/bin/qemu-system-x86_64");
	(void)snprintf(c->qemu_img, sizeof(c->qemu_img), "/usr/bin/qemu-img");
	(void)snprintf(c->swtpm, sizeof(c->swtpm), "/usr/bin/swtpm");
	(void)snprintf(c->webui_dir, sizeof(c->webui_dir), "%s", vmm_webui_default_dir());
	(void)snprintf(c->app_image_dir, sizeof(c->app_image_dir), "/var/lib/cvmkit/app-images");
	(void)snprintf(c->platform_name, sizeof(c->platform_name), "dev");
	(void)snprintf(c->accel, sizeof(c->accel), "auto");
	(void)snprintf(c->log_level, sizeof(c->log_level), "info");
	(void)snprintf(c->port_range_text, sizeof(c->port_range_text), "10000-20000");
	(void)snprintf(c->host_address, sizeof(c->host_address), "127.0.0.1");
	c->stop_timeout_s = 30;
	c->cid_start = 1000;
	c->cid_pool_size = 1000;
	c->max_vcpu = 16;
	c->max_memory_mb = 65536;
	c->max_disk_gb = 1024;
	c->qgs_port = 4050;
}

const char *vmm_platform_name(enum vmm_platform p)
{
	return p == VMM_PLATFORM_TDX ? "tdx" : p == VMM_PLATFORM_SNP ? "snp" : "dev";
}

#define STR(sec, name, field) CVM_CONF_KEY_STR(c, sec, name, field)
#define NUM(sec, name, field, min, max) CVM_CONF_KEY_U64(c, sec, name, field, min, max)
#define BOOL(sec, name, field) CVM_CONF_KEY_BOOL(c, sec, name, field)

static size_t conf_keys(struct vmm_conf *c, struct cvm_conf_key *k)
{
	const struct cvm_conf_key keys[] = {
	    STR("vmm", "listen", listen),
	    STR("vmm", "port_file", port_file),
	    STR("vmm", "run_dir", run_dir),
	    STR("vmm", "image_dir", image_dir),
	    STR("vmm", "qemu", qemu),
	    STR("vmm", "qemu_img", qemu_img),
	    STR("vmm", "swtpm", swtpm),
	    STR("vmm", "webui_dir", webui_dir),
	    STR("vmm", "sim_platform", sim_platform),
	    STR("vmm", "kms_urls", host_kms_urls_text),
	    STR("vmm", "app_image_dir", app_image_dir),
	    STR("vmm", "platform", platform_name),
	    STR("vmm", "accel", accel),
	    STR("vmm", "log_level", log_level),
	    NUM("vmm", "stop_timeout", stop_timeout_s, 1, 3600),
	    NUM("vmm", "max_connections", max_connections, 1, 16384),
	    NUM("vmm", "max_connections_per_peer", max_connections_per_peer, 1, 16384),
	    BOOL("vmm", "start_paused", start_paused),
	    STR("cvm", "kms_urls", kms_urls_text),
	    STR("cvm", "gateway_urls", gateway_urls_text),
	    NUM("cvm", "cid_start", cid_start, 3, 0xffffffffu - 1),
	    NUM("cvm", "cid_pool_size", cid_pool_size, 1, 1000000),
	    NUM("cvm", "max_vcpu", max_vcpu, 1, 512),
	    NUM("cvm", "max_memory_mb", max_memory_mb, 64, (uint64_t)16 * 1024 * 1024),
	    NUM("cvm", "max_disk_gb", max_disk_gb, 1, 65536),
	    STR("cvm", "port_range", port_range_text),
	    STR("cvm", "host_address", host_address),
	    NUM("cvm", "qgs_port", qgs_port, 1, 0xffffffffu),
	    STR("auth", "tokens", tokens_text),
	};

	memcpy(k, keys, sizeof(keys));
	return sizeof(keys) / sizeof(keys[0]);
}

/* split_list cuts a comma- or space-separated list into `out`. */
static int split_list(const char *what, const char *text, char (*out)[VMM_URL_MAX], size_t max, size_t *count,
                      char *err, size_t err_len)
{
	const char *p = text;

	*count = 0;
	while (*p != '\0') {
		size_t n;

		p += strspn(p, ", ");
		n = strcspn(p, ", ");
		if (n == 0)
			break;
		if (*count == max || n >= VMM_URL_MAX) {
			(void)snprintf(err, err_len, "%s: at most %zu entries of %d bytes", what, max,
			               VMM_URL_MAX - 1);
			return CVM_E_FORMAT;
		}
		memcpy(out[*count], p, n);
		out[*count][n] = '\0';
		(*count)++;
		p += n;
	}
	return CVM_OK;
}

static bool token_ok(const char *s, size_t n)
{
	if (n == 0 || n >= VMM_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == ',')
			return false;
	}
	return true;
}

static int load_tokens(struct vmm_conf *c, char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	const char *p, *end;
	int r;

	c->token_count = 0;
	if (c->tokens_text[0] == '\0')
		return CVM_OK;
	if (c->tokens_text[0] == '/') {
		r = cvm_file_read(c->tokens_text, (size_t)64 * 1024, &buf, &len);
		if (r != CVM_OK) {
			(void)snprintf(err, err_len, "[auth] tokens: cannot read %s: %s", c->tokens_text,
			               r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
			return CVM_E_FORMAT;
		}
		p = (const char *)buf;
		end = p + len;
	} else {
		p = c->tokens_text;
		end = p + strlen(p);
	}
	r = CVM_OK;
	while (p < end) {
		size_t n = 0;

		while (p < end && (*p == ',' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
			p++;
		while (p + n < end && p[n] != ',' && p[n] != ' ' && p[n] != '\n' && p[n] != '\r' &&
		       p[n] != '\t')
			n++;
		if (n == 0)
			break;
		if (!token_ok(p, n) || c->token_count == VMM_TOKENS_MAX) {
			(void)snprintf(
			    err, err_len,
			    "[auth] tokens: at most %d tokens of 1 to %d printable bytes without ','",
			    VMM_TOKENS_MAX, VMM_TOKEN_MAX - 1);
			r = CVM_E_FORMAT;
			break;
		}
		memcpy(c->tokens[c->token_count], p, n);
		c->tokens[c->token_count][n] = '\0';
		c->token_count++;
		p += n;
	}
	if (buf != NULL)
		cvm_freezero(buf, len);
	return r;
}

int vmm_conf_check(struct vmm_conf *c, char *err, size_t err_len)
{
	struct cvm_addr a;
	uint64_t from, to;
	char lo[16], hi[16];
	const char *dash;
	int r;

	if (strcmp(c->platform_name, "dev") == 0) {
		c->platform = VMM_PLATFORM_DEV;
	} else if (strcmp(c->platform_name, "tdx") == 0) {
		c->platform = VMM_PLATFORM_TDX;
	} else if (strcmp(c->platform_name, "snp") == 0) {
		c->platform = VMM_PLATFORM_SNP;
	} else {
		(void)snprintf(err, err_len, "[vmm] platform: %s is not dev, tdx or snp", c->platform_name);
		return CVM_E_FORMAT;
	}
	if (strcmp(c->accel, "auto") != 0 && strcmp(c->accel, "kvm") != 0 && strcmp(c->accel, "tcg") != 0) {
		(void)snprintf(err, err_len, "[vmm] accel: %s is not auto, kvm or tcg", c->accel);
		return CVM_E_FORMAT;
	}
	if (c->platform != VMM_PLATFORM_DEV && strcmp(c->accel, "tcg") == 0) {
		(void)snprintf(err, err_len, "[vmm] accel: tcg cannot run %s guests; use platform = dev",
		               c->platform_name);
		return CVM_E_FORMAT;
	}
	if (cvm_addr_parse(c->listen, &a) != CVM_OK) {
		(void)snprintf(err, err_len, "[vmm] listen: %s is not HOST:PORT or unix:/path", c->listen);
		return CVM_E_FORMAT;
	}
	if (c->run_dir[0] != '/' || c->image_dir[0] != '/') {
		(void)snprintf(err, err_len, "[vmm] run_dir and image_dir must be absolute paths");
		return CVM_E_FORMAT;
	}
	if (strlen(c->run_dir) > VMM_PATH_MAX - 128) {
		(void)snprintf(err, err_len, "[vmm] run_dir is too long (at most %d bytes)",
		               VMM_PATH_MAX - 128);
		return CVM_E_FORMAT;
	}
	if (c->sim_platform[0] == '\0')
		(void)snprintf(c->sim_platform, sizeof(c->sim_platform), "%s/sim-platform", c->run_dir);
	if (c->sim_platform[0] != '/' || c->app_image_dir[0] != '/' ||
	    strlen(c->app_image_dir) > VMM_PATH_MAX - 128) {
		(void)snprintf(err, err_len,
		               "[vmm] sim_platform and app_image_dir must be absolute paths (under %d bytes)",
		               VMM_PATH_MAX - 128);
		return CVM_E_FORMAT;
	}
	dash = strchr(c->port_range_text, '-');
	if (dash == NULL || (size_t)(dash - c->port_range_text) >= sizeof(lo) ||
	    strlen(dash + 1) >= sizeof(hi)) {
		(void)snprintf(err, err_len, "[cvm] port_range: %s is not FROM-TO", c->port_range_text);
		return CVM_E_FORMAT;
	}
	memcpy(lo, c->port_range_text, (size_t)(dash - c->port_range_text));
	lo[dash - c->port_range_text] = '\0';
	(void)snprintf(hi, sizeof(hi), "%s", dash + 1);
	if (cvm_parse_u64(lo, 1, 65535, &from) != CVM_OK || cvm_parse_u64(hi, 1, 65535, &to) != CVM_OK ||
	    from > to) {
		(void)snprintf(err, err_len,
		               "[cvm] port_range: %s is not FROM-TO with 1 <= FROM <= TO <= 65535",
		               c->port_range_text);
		return CVM_E_FORMAT;
	}
	c->port_from = (uint16_t)from;
	c->port_to = (uint16_t)to;
	if (c->cid_start + c->cid_pool_size > 0xffffffffu) {
		(void)snprintf(err, err_len, "[cvm] cid_start + cid_pool_size must stay below 2^32 - 1");
		return CVM_E_FORMAT;
	}
	r = split_list("[cvm] kms_urls", c->kms_urls_text, c->kms_urls, VMM_URLS_MAX, &c->kms_url_count, err,
	               err_len);
	if (r == CVM_OK)
		r = split_list(c->host_kms_urls_text[0] != '\0' ? "[vmm] kms_urls" : "[cvm] kms_urls",
		               c->host_kms_urls_text[0] != '\0' ? c->host_kms_urls_text : c->kms_urls_text,
		               c->host_kms_urls, VMM_URLS_MAX, &c->host_kms_url_count, err, err_len);
	if (r == CVM_OK)
		r = split_list("[cvm] gateway_urls", c->gateway_urls_text, c->gateway_urls, VMM_URLS_MAX,
		               &c->gateway_url_count, err, err_len);
	if (r == CVM_OK)
		r = load_tokens(c, err, err_len);
	if (r == CVM_OK && c->token_count == 0 && !cvm_addr_is_loopback(&a)) {
		(void)snprintf(
		    err, err_len,
		    "[vmm] listen: %s is not a loopback address or unix socket, and [auth] tokens is "
		    "empty: set tokens, or listen on 127.0.0.1 or unix:/path",
		    c->listen);
		r = CVM_E_FORMAT;
	}
	return r;
}

int vmm_conf_parse(struct vmm_conf *c, const char *text, char *err, size_t err_len)
{
	struct cvm_conf_key keys[32];
	size_t n = conf_keys(c, keys);
	int r;

	r = cvm_conf_parse(text, keys, n, err, err_len);
	if (r != CVM_OK)
		return r;
	return vmm_conf_check(c, err, err_len);
}

int vmm_conf_load(struct vmm_conf *c, char *err, size_t err_len)
{
	struct cvm_conf_key keys[32];
	size_t n = conf_keys(c, keys);
	int r;

	r = cvm_conf_load(c->config_file, keys, n, err, err_len);
	if (r != CVM_OK)
		return r;
	return vmm_conf_check(c, err, err_len);
}

/* The integration tests' client of lib/kmsauth (tests/integration/kms_auth_*.sh):
 *
 *   kmsauth_decide AUTH... one app|kms BOOTINFO_JSON
 *       one decision; prints "allowed: gateway=G" (exit 0), "denied: REASON"
 *       (exit 3) or "error: WHY" (exit 1)
 *   kmsauth_decide AUTH... cases CASES_JSON
 *       every case of CASES_JSON (tests/kmsauth/cases.json: base BootInfo +
 *       "set" overrides, "want" = "allowed" or the refusal's reason); prints
 *       one line per case; exit 0 when every answer is the wanted one, 1
 *       otherwise (an error is never what a case wants)
 *   kmsauth_decide AUTH... info
 *       prints GetMeta's fields, or "error: WHY" (exit 1)
 *
 * AUTH is --policy PATH | --webhook URL | --chain URL --contract ADDR |
 * --dev, with [--timeout MS] [--gateway ID] [--allow-dev] [--allow-sim]. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/err.h>
#include <cvmkit/kmsauth.h>

static int decide_json(struct cvm_auth *a, const char *kind, const char *json, char *line, size_t line_len)
{
	struct cvm_boot_info bi;
	struct cvm_auth_decision d;
	char err[512] = "";
	int r;

	r = cvm_boot_info_from_json(json, strlen(json), &bi, err, sizeof(err));
	if (r != CVM_OK) {
		(void)snprintf(line, line_len, "error: the BootInfo: %s", err);
		return 1;
	}
	r = cvm_auth_decide(a, strcmp(kind, "kms") == 0 ? CVM_AUTH_KMS : CVM_AUTH_APP, &bi, &d, err,
	                    sizeof(err));
	cvm_boot_info_cleanup(&bi);
	if (r != CVM_OK) {
		if (d.allowed) {
			(void)snprintf(line, line_len, "error: BUG: an error with allowed set");
			return 1;
		}
		(void)snprintf(line, line_len, "error: %s", err);
		return 1;
	}
	if (d.allowed) {
		(void)snprintf(line, line_len, "allowed: gateway=%s", d.gateway_app_id);
		return 0;
	}
	(void)snprintf(line, line_len, "denied: %s", d.reason);
	return 3;
}

static int run_cases(struct cvm_auth *a, const char *path)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr), *c;
	json_t *base = json_object_get(root, "base"), *cases = json_object_get(root, "cases");
	char line[1024];
	size_t i;
	int bad = 0;

	if (!json_is_object(base) || !json_is_array(cases)) {
		fprintf(stderr, "kmsauth_decide: %s has no base object and cases array\n", path);
		json_decref(root);
		return 1;
	}
	json_array_foreach(cases, i, c)
	{
		json_t *bi = json_deep_copy(base);
		const char *want = json_string_value(json_object_get(c, "want"));
		const char *name = json_string_value(json_object_get(c, "name"));
		const char *kind = json_string_value(json_object_get(c, "kind"));
		char *s;
		int rc;
		bool ok;

		if (bi == NULL || want == NULL || name == NULL || kind == NULL ||
		    json_object_update(bi, json_object_get(c, "set")) != 0) {
			fprintf(stderr, "kmsauth_decide: case %zu is malformed\n", i);
			json_decref(bi);
			json_decref(root);
			return 1;
		}
		s = json_dumps(bi, JSON_COMPACT);
		json_decref(bi);
		if (s == NULL) {
			json_decref(root);
			return 1;
		}
		rc = decide_json(a, kind, s, line, sizeof(line));
		free(s);
		if (strcmp(want, "allowed") == 0)
			ok = rc == 0;
		else
			ok = rc == 3 && strcmp(line + strlen("denied: "), want) == 0;
		printf("%s: %s: %s\n", ok ? "ok" : "FAIL", name, line);
		if (!ok) {
			printf("  want: %s\n", want);
			bad = 1;
		}
	}
	json_decref(root);
	return bad;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	buf = calloc(1, 1 << 20);
	n = buf != NULL ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	(void)n;
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	struct cvm_auth_opts o = {0};
	struct cvm_auth *a = NULL;
	char err[512] = "", line[1024];
	int i, rc = 2, r;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *opt = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(opt, "--allow-dev") == 0) {
			o.allow_dev = true;
			continue;
		}
		if (strcmp(opt, "--allow-sim") == 0) {
			o.allow_simulated_tee = true;
			continue;
		}
		if (strcmp(opt, "--dev") == 0) {
			o.type = "dev";
			continue;
		}
		if (val == NULL)
			goto usage;
		i++;
		if (strcmp(opt, "--policy") == 0) {
			o.type = "policy";
			o.policy_path = val;
		} else if (strcmp(opt, "--webhook") == 0) {
			o.type = "webhook";
			o.webhook_url = val;
		} else if (strcmp(opt, "--chain") == 0) {
			o.type = "chain";
			o.chain_rpc_url = val;
		} else if (strcmp(opt, "--contract") == 0) {
			o.kms_contract = val;
		} else if (strcmp(opt, "--timeout") == 0) {
			o.timeout_ms = (unsigned)strtoul(val, NULL, 10);
		} else if (strcmp(opt, "--gateway") == 0) {
			o.gateway_app_id = val;
		} else {
			goto usage;
		}
	}
	if (i >= argc)
		goto usage;
	r = cvm_auth_new(&o, &a, err, sizeof(err));
	if (r != CVM_OK) {
		printf("error: %s\n", err);
		return 1;
	}
	if (strcmp(argv[i], "one") == 0 && i + 2 < argc) {
		char *json = read_text(argv[i + 2]);

		if (json == NULL) {
			printf("error: cannot read %s\n", argv[i + 2]);
			rc = 1;
		} else {
			rc = decide_json(a, argv[i + 1], json, line, sizeof(line));
			printf("%s\n", line);
		}
		free(json);
	} else if (strcmp(argv[i], "cases") == 0 && i + 1 < argc) {
		rc = run_cases(a, argv[i + 1]);
	} else if (strcmp(argv[i], "info") == 0) {
		struct cvm_auth_info info;

		r = cvm_auth_info(a, &info, err, sizeof(err));
		if (r != CVM_OK) {
			printf("error: %s\n", err);
			rc = 1;
		} else {
			printf(
			    "status=%s kmsContractAddr=%s gatewayAppId=%s appImplementation=%s ethRpcUrl=%s "
			    "chainId=%" PRIu64 "\n",
			    info.status, info.kms_contract_addr, info.gateway_app_id, info.app_implementation,
			    info.eth_rpc_url, info.chain_id);
			rc = 0;
		}
	} else {
		cvm_auth_free(a);
		goto usage;
	}
	cvm_auth_free(a);
	return rc;
usage:
	fprintf(stderr,
	        "usage: kmsauth_decide (--policy PATH | --webhook URL | --chain URL --contract ADDR | --dev) "
	        "[--timeout MS] [--gateway ID] [--allow-dev] [--allow-sim] (one app|kms BOOTINFO_JSON | "
	        "cases CASES_JSON | info)\n");
	return 2;
}

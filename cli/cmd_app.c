/* cvm app: an app's encrypted environment (dstack spec §4.4).
 *
 *   cvm app encrypt-env (--kms URL --app-id HEX [--kms-pubkey HEX | --trust-kms-meta] [--max-age S]
 *                        | --pubkey HEX) [--out FILE | --hex] ENVFILE
 *       what a deployer does: fetch the app's env public key from the KMS,
 *       check the KMS's signature over it, encrypt ENVFILE to it
 *   cvm app decrypt-env --key-file FILE [--allowed-envs A,B] [--json | --shell] BLOBFILE
 *       what the guest does with env_crypt_key
 *   cvm app hash FILE [--app-id HEX] [--instance-id HEX] [--gpu] [--lax] [--json]
 *       an app-compose file checked, its compose hash, app id and the MRCONFIGID
 *       layouts (and SEV-SNP HOST_DATA) a deployment of it gets (spec §4.1-4.3, §5.7)
 *
 * See docs/cli/cvm-app.md. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include <cvmkit/app.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/envcrypt.h>
#include <cvmkit/file.h>
#include <cvmkit/kdf.h>
#include <cvmkit/secret.h>

#include "cli.h"
#include "net.h"
#include "output.h"

#define CMD_ENC "app encrypt-env"
#define CMD_DEC "app decrypt-env"
#define CMD_HASH "app hash"
#define APP_ID_LEN 20
/* A KMS answer: four hex fields and a number; GetMeta carries certificates. */
#define KMS_REPLY_MAX ((size_t)256 * 1024)
#define KMS_TIMEOUT_S 30L
#define KMS_CONNECT_TIMEOUT_S 10L
#define KEY_FILE_MAX 256
#define ALLOWED_MAX CVM_ENV_ITEMS_MAX

enum {
	OPT_KMS = 0x200,
	OPT_APP_ID,
	OPT_KMS_PUBKEY,
	OPT_TRUST_META,
	OPT_MAX_AGE,
	OPT_PUBKEY,
	OPT_OUT,
	OPT_HEX,
	OPT_KEY_FILE,
	OPT_ALLOWED,
	OPT_SHELL,
	OPT_INSTANCE_ID,
	OPT_GPU,
	OPT_LAX,
};

static void usage_encrypt(FILE *f)
{
	fprintf(
	    f,
	    "usage: %s app encrypt-env --kms URL --app-id HEX (--kms-pubkey HEX | --trust-kms-meta)\n"
	    "                          [--max-age SECONDS] [--out FILE | --hex] ENVFILE\n"
	    "       %s app encrypt-env --pubkey HEX [--out FILE | --hex] ENVFILE\n"
	    "  Encrypts ENVFILE (NAME=VALUE lines; see docs/cli/cvm-app.md) to the app's env public key,\n"
	    "  as dstack's encrypted env (.encrypted-env): X25519 + AES-256-GCM.\n"
	    "  --kms URL          ask the KMS (http:// or https://) for the key: POST\n"
	    "                     URL/prpc/KMS.GetAppEnvEncryptPubKey?json. Its TLS certificate is not\n"
	    "                     checked: the KMS's signature over the key is\n"
	    "  --app-id HEX       the app id, 20 bytes (40 hex digits, 0x allowed)\n"
	    "  --kms-pubkey HEX   the KMS's k256 public key (GetMeta's k256_pubkey, compressed, 33 bytes)\n"
	    "  --trust-kms-meta   take that key from the same KMS's GetMeta instead: this trusts the\n"
	    "                     connection, which nothing authenticates\n"
	    "  --max-age SECONDS  how old the KMS's signature_v1 may be (default %u); 0 accepts a KMS\n"
	    "                     that sends only the legacy signature, which has no time\n"
	    "  --pubkey HEX       encrypt to this X25519 key (32 bytes), offline: nothing is checked\n"
	    "  --out FILE         write the raw blob to FILE (what dstack's VMM stores)\n"
	    "  --hex              print the blob as hex (the default), as the SDK returns it\n"
	    "Exit: 0 encrypted, 1 error, 2 usage, 3 the KMS's signature was refused.\n",
	    CLI_PROG, CLI_PROG, CVM_ENVCRYPT_MAX_AGE_DEFAULT);
}

static void usage_decrypt(FILE *f)
{
	fprintf(
	    f,
	    "usage: %s app decrypt-env --key-file FILE [--allowed-envs A,B,...] [--json | --shell] BLOBFILE\n"
	    "  Decrypts an encrypted env (raw, or hex as the SDK returns it) with the app's env_crypt_key,\n"
	    "  as dstack's guest does, and prints it. THE OUTPUT HOLDS THE SECRETS.\n"
	    "  --key-file FILE       env_crypt_key as 64 hex digits; the file must be yours, mode 0600\n"
	    "  --allowed-envs LIST   keep only these names (app-compose allowed_envs); others are\n"
	    "                        skipped and named on stderr. Without it every name is kept\n"
	    "  --shell               print dstack's .decrypted-env (NAME=value lines; the default)\n"
	    "  --json                print dstack's .decrypted-env.json ({\"NAME\":\"value\",...})\n"
	    "Exit: 0 decrypted, 1 error, 2 usage, 3 refused (wrong key, changed bytes, bad env list).\n",
	    CLI_PROG);
}

static void usage_hash(FILE *f)
{
	fprintf(f,
	        "usage: %s app hash [--app-id HEX] [--instance-id HEX] [--gpu] [--lax] [--json] FILE\n"
	        "  Checks an app-compose.json against dstack's schema and prints what a deployment of it\n"
	        "  commits to: compose_hash (SHA-256 of the file's exact bytes), the app id, the key\n"
	        "  provider, MRCONFIGID layouts 1, 2 and 3 (hex, and the base64 QEMU's tdx-guest\n"
	        "  'mrconfigid' takes), the MrConfigV3 document and SEV-SNP HOST_DATA.\n"
	        "  --app-id HEX       the deployment's app id (20 bytes, 0x allowed); default: the first\n"
	        "                     20 bytes of compose_hash. KMS deployments use their contract address\n"
	        "  --instance-id HEX  put this instance id (20 bytes) in the MrConfigV3 document\n"
	        "  --gpu              a GPU launch: the document carries gpu_policy_hash\n"
	        "  --lax              accept keys this dstack schema does not know (a newer dstack's file)\n"
	        "  --json             one JSON object with every value\n"
	        "Exit: 0 checked, 1 the file is refused (the message names the key), 2 usage.\n",
	        CLI_PROG);
}

static void app_usage(FILE *f)
{
	fprintf(f,
	        "usage: %s app encrypt-env|decrypt-env|hash [ARGS]\n"
	        "  encrypt-env   encrypt an env file to an app's env public key (checked against the KMS)\n"
	        "  decrypt-env   decrypt an encrypted env with the app's env_crypt_key, as the guest does\n"
	        "  hash          check an app-compose file; its compose hash, app id and MRCONFIGID\n",
	        CLI_PROG);
}

/* parse_hex_exact reads exactly `len` bytes of hex, optionally after 0x. */
static bool parse_hex_exact(const char *s, uint8_t *out, size_t len)
{
	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)
		s += 2;
	return strlen(s) == 2 * len && cvm_hex_decode_exact(s, strlen(s), out, len) == CVM_OK;
}

static bool parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end = NULL;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (uint64_t)v;
	return true;
}

/* ---- the KMS client ------------------------------------------------------ */

/* The service asked: a KMS (methods KMS.<name>), or cvm-vmmd, which proxies
 * GetAppEnvEncryptPubKey at /prpc/GetAppEnvEncryptPubKey and may want a
 * bearer token (cvm vm deploy --env-file). */
static const char *svc_prefix = "KMS.";
static const char *svc_token;

/* kms_call POSTs `body` to URL/prpc/KMS.<method>?json and parses the JSON
 * answer. On failure it prints why and returns NULL. */
static json_t *kms_call(const char *base, const char *method, const char *body)
{
	char url[2048], errbuf[CURL_ERROR_SIZE] = "", line[256];
	struct cli_reply rep = {.max = KMS_REPLY_MAX};
	struct curl_slist *hdrs = NULL;
	json_t *j = NULL;
	json_error_t jerr;
	size_t base_len = strlen(base);
	long status = 0;
	CURL *c = NULL;
	CURLcode cr;
	int n;

	while (base_len > 0 && base[base_len - 1] == '/')
		base_len--;
	n = snprintf(url, sizeof(url), "%.*s/prpc/%s%s?json", (int)base_len, base, svc_prefix, method);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		cli_err(CMD_ENC, "--kms URL is too long");
		return NULL;
	}
	c = curl_easy_init();
	hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (hdrs != NULL && svc_token != NULL) {
		char auth[300];
		struct curl_slist *h;

		(void)snprintf(auth, sizeof(auth), "Authorization: Bearer %s", svc_token);
		h = curl_slist_append(hdrs, auth);
		if (h == NULL) {
			curl_slist_free_all(hdrs);
			hdrs = NULL;
		} else {
			hdrs = h;
		}
	}
	if (c == NULL || hdrs == NULL) {
		cli_err(CMD_ENC, "out of memory");
		goto out;
	}
	/* No certificate check: dstack's clients do not check the KMS's
	 * either. What is fetched is authenticated by the KMS's k256
	 * signature (or is the loudly trusted GetMeta). */
	if (curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_TIMEOUT, KMS_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, KMS_CONNECT_TIMEOUT_S) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, cli_reply_collect) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rep) != CURLE_OK ||
	    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK) {
		cli_err(CMD_ENC, "cannot set up the HTTP client (libcurl too old?)");
		goto out;
	}
	cr = curl_easy_perform(c);
	if (rep.too_large) {
		cli_err(CMD_ENC, "the KMS's answer to %s is over %zu bytes: refused", method, KMS_REPLY_MAX);
		goto out;
	}
	if (cr != CURLE_OK) {
		cli_err(CMD_ENC, "cannot reach the KMS at %s: %s", url,
		        errbuf[0] ? errbuf : curl_easy_strerror(cr));
		goto out;
	}
	(void)curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		out_sanitize(rep.buf != NULL ? rep.buf : "", line, sizeof(line));
		cli_err(CMD_ENC, "the KMS answered %s with HTTP %ld: %s", method, status, line);
		goto out;
	}
	j = json_loadb(rep.buf != NULL ? rep.buf : "", rep.len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL || !json_is_object(j)) {
		cli_err(CMD_ENC, "the KMS's answer to %s is not a JSON object", method);
		json_decref(j);
		j = NULL;
	}
out:
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(rep.buf);
	return j;
}

/* hex_field reads the hex string member `name` of `o` as exactly `len`
 * bytes. Absent or empty gives false with *present false. */
static bool hex_field(const json_t *o, const char *name, uint8_t *out, size_t len, bool *present)
{
	const json_t *v = json_object_get(o, name);
	const char *s;

	*present = false;
	if (v == NULL || json_is_null(v))
		return false;
	if (!json_is_string(v)) {
		*present = true;
		return false;
	}
	s = json_string_value(v);
	if (json_string_length(v) == 0)
		return false;
	*present = true;
	return strlen(s) == json_string_length(v) && parse_hex_exact(s, out, len);
}

struct enc_opts {
	const char *kms, *app_id_hex, *kms_pub_hex, *pub_hex, *out;
	bool trust_meta, hex;
	uint64_t max_age;
};

/* fetch_kms_pubkey gets GetMeta's k256_pubkey (--trust-kms-meta). */
static int fetch_kms_pubkey(const char *kms, uint8_t out[CVM_K256_PUBKEY_LEN])
{
	json_t *meta = kms_call(kms, "GetMeta", "{}");
	bool present;
	int rc = CLI_EXIT_ERROR;

	if (meta == NULL)
		return CLI_EXIT_ERROR;
	if (!hex_field(meta, "k256_pubkey", out, CVM_K256_PUBKEY_LEN, &present)) {
		cli_err(CMD_ENC, "the KMS's GetMeta answer has no k256_pubkey of 33 bytes in hex");
		goto out;
	}
	fprintf(
	    stderr,
	    "%s %s: WARNING: --trust-kms-meta: the KMS's signing key was taken from the same unauthenticated "
	    "connection as the env key; whoever answers at %s decides what you encrypt to. Pin it next "
	    "time: --kms-pubkey %02x",
	    CLI_PROG, CMD_ENC, kms, out[0]);
	for (size_t i = 1; i < CVM_K256_PUBKEY_LEN; i++)
		fprintf(stderr, "%02x", out[i]);
	(void)fputc('\n', stderr);
	rc = CLI_EXIT_OK;
out:
	json_decref(meta);
	return rc;
}

/* kms_env_pubkey fetches the app's env public key and checks the KMS's
 * signature over it. */
static int kms_env_pubkey(const struct enc_opts *o, uint8_t pub[CVM_ENVCRYPT_PUBKEY_LEN],
                          const char **checked)
{
	uint8_t app_id[APP_ID_LEN], kms_pub[CVM_K256_PUBKEY_LEN];
	uint8_t sig[CVM_K256_RSIG_LEN], sig_v1[CVM_K256_RSIG_LEN];
	char body[128], err[512];
	bool has_sig, has_v1, present;
	json_t *ans = NULL, *ts;
	uint64_t timestamp = 0;
	int rc = CLI_EXIT_ERROR, r;

	if (!parse_hex_exact(o->app_id_hex, app_id, sizeof(app_id))) {
		cli_err(CMD_ENC, "--app-id must be 20 bytes as 40 hex digits (0x allowed)");
		return CLI_EXIT_USAGE;
	}
	if (o->kms_pub_hex != NULL) {
		uint8_t point[CVM_K256_PUBKEY_LEN];

		if (!parse_hex_exact(o->kms_pub_hex, kms_pub, sizeof(kms_pub)) ||
		    cvm_k256_pubkey_parse(kms_pub, sizeof(kms_pub), point) != CVM_OK) {
			cli_err(CMD_ENC,
			        "--kms-pubkey must be a compressed secp256k1 key: 33 bytes as 66 hex digits");
			return CLI_EXIT_USAGE;
		}
	} else {
		rc = fetch_kms_pubkey(o->kms, kms_pub);
		if (rc != CLI_EXIT_OK)
			return rc;
		rc = CLI_EXIT_ERROR;
	}
	(void)snprintf(body, sizeof(body), "{\"app_id\":\"%02x", app_id[0]);
	for (size_t i = 1; i < sizeof(app_id); i++)
		(void)snprintf(body + strlen(body), sizeof(body) - strlen(body), "%02x", app_id[i]);
	(void)snprintf(body + strlen(body), sizeof(body) - strlen(body), "\"}");
	ans = kms_call(o->kms, "GetAppEnvEncryptPubKey", body);
	if (ans == NULL)
		return CLI_EXIT_ERROR;
	if (!hex_field(ans, "public_key", pub, CVM_ENVCRYPT_PUBKEY_LEN, &present)) {
		cli_err(CMD_ENC, "the KMS's answer has no public_key of 32 bytes in hex");
		goto out;
	}
	has_sig = hex_field(ans, "signature", sig, sizeof(sig), &present);
	if (!has_sig && present) {
		cli_err(CMD_ENC, "the KMS's signature is not 65 bytes in hex");
		goto out;
	}
	has_v1 = hex_field(ans, "signature_v1", sig_v1, sizeof(sig_v1), &present);
	if (!has_v1 && present) {
		cli_err(CMD_ENC, "the KMS's signature_v1 is not 65 bytes in hex");
		goto out;
	}
	ts = json_object_get(ans, "timestamp");
	if (has_v1) {
		/* a JSON number, or the decimal string protobuf's JSON mapping
		 * gives a u64 */
		if (json_is_integer(ts) && json_integer_value(ts) >= 0) {
			timestamp = (uint64_t)json_integer_value(ts);
		} else if (!json_is_string(ts) || strlen(json_string_value(ts)) != json_string_length(ts) ||
		           !parse_u64(json_string_value(ts), &timestamp)) {
			cli_err(
			    CMD_ENC,
			    "the KMS's answer has signature_v1 but no timestamp (a non-negative integer)");
			goto out;
		}
	}
	r = cvm_envcrypt_pubkey_verify(kms_pub, app_id, pub, has_sig ? sig : NULL, has_v1 ? sig_v1 : NULL,
	                               timestamp, (uint64_t)time(NULL), o->max_age, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(CMD_ENC, "the KMS's env public key is refused: %s", err);
		rc = cli_exit_for(r);
		goto out;
	}
	*checked = has_v1 ? "signature_v1" : "legacy";
	if (!cli_opts.quiet)
		fprintf(stderr, "%s %s: env public key checked: %s by the KMS key\n", CLI_PROG, CMD_ENC,
		        has_v1 ? "signature_v1" : "legacy signature (no time: --max-age 0)");
	rc = CLI_EXIT_OK;
out:
	json_decref(ans);
	return rc;
}

/* seal_file seals the dotenv file `path` to `pub` (the names it holds in
 * *names). */
static int seal_file(const char *path, const uint8_t pub[CVM_ENVCRYPT_PUBKEY_LEN], uint8_t **blob,
                     size_t *blob_len, size_t *names)
{
	struct cvm_env_list *list = NULL;
	struct cvm_secret *plain = NULL;
	uint8_t *text = NULL;
	size_t text_len = 0;
	char err[512];
	int rc, r;

	rc = cli_read_file(CMD_ENC, "env file", path, CVM_ENVCRYPT_PLAIN_MAX, &text, &text_len);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = CLI_EXIT_ERROR;
	r = cvm_env_list_from_dotenv((const char *)text, text_len, &list, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(CMD_ENC, "%s: %s", path, err[0] ? err : cvm_strerror(r));
		goto out;
	}
	r = cvm_env_list_to_json(list, CVM_ENV_JSON_SEALED, &plain);
	if (r != CVM_OK) {
		cli_err(CMD_ENC, "%s: cannot encode the env list: %s", path, cvm_strerror(r));
		goto out;
	}
	r = cvm_envcrypt_seal(pub, plain->p, plain->len, blob, blob_len);
	if (r != CVM_OK) {
		cli_err(CMD_ENC, "cannot encrypt: %s", cvm_strerror(r));
		goto out;
	}
	*names = list->count;
	rc = CLI_EXIT_OK;
out:
	cvm_secret_free(plain);
	cvm_env_list_free(list);
	cvm_freezero(text, text_len);
	return rc;
}

int cli_env_seal_for_app(const char *vmm_url, const char *token, const char *app_id_hex,
                         const char *kms_pub_hex, const char *path, uint8_t **blob, size_t *blob_len)
{
	struct enc_opts o;
	uint8_t pub[CVM_ENVCRYPT_PUBKEY_LEN];
	const char *checked = "";
	size_t names = 0;
	int rc;

	memset(&o, 0, sizeof(o));
	o.kms = vmm_url;
	o.app_id_hex = app_id_hex;
	o.kms_pub_hex = kms_pub_hex;
	o.max_age = CVM_ENVCRYPT_MAX_AGE_DEFAULT;
	svc_prefix = "";
	svc_token = token;
	rc = kms_env_pubkey(&o, pub, &checked);
	svc_prefix = "KMS.";
	svc_token = NULL;
	if (rc == CLI_EXIT_OK)
		rc = seal_file(path, pub, blob, blob_len, &names);
	if (rc == CLI_EXIT_OK && !cli_opts.quiet)
		fprintf(stderr, "%s %s: %zu names of %s sealed to the app's env key (%s)\n", CLI_PROG,
		        CMD_ENC, names, path, checked);
	return rc;
}

static int encrypt_env(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"kms", required_argument, NULL, OPT_KMS},
	    {"app-id", required_argument, NULL, OPT_APP_ID},
	    {"kms-pubkey", required_argument, NULL, OPT_KMS_PUBKEY},
	    {"trust-kms-meta", no_argument, NULL, OPT_TRUST_META},
	    {"max-age", required_argument, NULL, OPT_MAX_AGE},
	    {"pubkey", required_argument, NULL, OPT_PUBKEY},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"hex", no_argument, NULL, OPT_HEX},
	    CLI_COMMON_LONGOPTS,
	};
	struct enc_opts o = {.max_age = CVM_ENVCRYPT_MAX_AGE_DEFAULT};
	uint8_t pub[CVM_ENVCRYPT_PUBKEY_LEN];
	uint8_t *blob = NULL;
	size_t blob_len = 0, names = 0;
	const char *checked = "none";
	json_t *j = NULL;
	int c, rc = CLI_EXIT_ERROR, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, ":hvq", longopts, NULL)) != -1) {
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_KMS:
			o.kms = optarg;
			break;
		case OPT_APP_ID:
			o.app_id_hex = optarg;
			break;
		case OPT_KMS_PUBKEY:
			o.kms_pub_hex = optarg;
			break;
		case OPT_TRUST_META:
			o.trust_meta = true;
			break;
		case OPT_MAX_AGE:
			if (!parse_u64(optarg, &o.max_age)) {
				cli_err(
				    CMD_ENC,
				    "--max-age takes a number of seconds (0: accept the legacy signature)");
				return CLI_EXIT_USAGE;
			}
			break;
		case OPT_PUBKEY:
			o.pub_hex = optarg;
			break;
		case OPT_OUT:
			o.out = optarg;
			break;
		case OPT_HEX:
			o.hex = true;
			break;
		case 'h':
			usage_encrypt(stdout);
			return CLI_EXIT_OK;
		default:
			cli_bad_option(CMD_ENC, c, argv, "cvm app encrypt-env --help");
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cli_err(CMD_ENC, "one ENVFILE expected");
		usage_encrypt(stderr);
		return CLI_EXIT_USAGE;
	}
	if ((o.kms == NULL) == (o.pub_hex == NULL)) {
		cli_err(CMD_ENC, "give either --kms URL (with --app-id) or --pubkey HEX");
		return CLI_EXIT_USAGE;
	}
	if ((o.out != NULL) + o.hex + cli_opts.json > 1) {
		cli_err(CMD_ENC, "--out, --hex and --json exclude each other");
		return CLI_EXIT_USAGE;
	}
	if (o.pub_hex != NULL && (o.app_id_hex != NULL || o.kms_pub_hex != NULL || o.trust_meta)) {
		cli_err(CMD_ENC,
		        "--pubkey is offline: --app-id, --kms-pubkey and --trust-kms-meta go with --kms");
		return CLI_EXIT_USAGE;
	}
	if (o.kms != NULL) {
		if (o.app_id_hex == NULL) {
			cli_err(CMD_ENC, "--kms needs --app-id");
			return CLI_EXIT_USAGE;
		}
		if (strncmp(o.kms, "http://", 7) != 0 && strncmp(o.kms, "https://", 8) != 0) {
			cli_err(CMD_ENC, "--kms takes an http:// or https:// URL");
			return CLI_EXIT_USAGE;
		}
		if (o.kms_pub_hex == NULL && !o.trust_meta) {
			cli_err(
			    CMD_ENC,
			    "--kms needs --kms-pubkey HEX (the KMS's k256 public key) to check the env key; "
			    "--trust-kms-meta takes it from the KMS itself, trusting the connection");
			return CLI_EXIT_USAGE;
		}
		if (o.kms_pub_hex != NULL && o.trust_meta) {
			cli_err(CMD_ENC, "--kms-pubkey and --trust-kms-meta exclude each other");
			return CLI_EXIT_USAGE;
		}
	} else if (!parse_hex_exact(o.pub_hex, pub, sizeof(pub))) {
		cli_err(CMD_ENC, "--pubkey must be an X25519 key: 32 bytes as 64 hex digits");
		return CLI_EXIT_USAGE;
	}
	cli_apply_verbosity();

	if (o.kms != NULL) {
		rc = kms_env_pubkey(&o, pub, &checked);
		if (rc != CLI_EXIT_OK)
			goto out;
	}
	rc = seal_file(argv[optind], pub, &blob, &blob_len, &names);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	if (o.out != NULL) {
		r = cvm_file_write(o.out, blob, blob_len, 0644);
		if (r != CVM_OK) {
			cli_err(CMD_ENC, "cannot write '%s': %s", o.out, strerror(errno));
			goto out;
		}
		if (!cli_opts.quiet)
			fprintf(stderr, "%s %s: %zu names encrypted into %s (%zu bytes)\n", CLI_PROG, CMD_ENC,
			        names, o.out, blob_len);
	} else if (cli_opts.json) {
		j = json_object();
		if (j == NULL || out_jset_hex(j, "encrypted_env", blob, blob_len) != 0 ||
		    out_jset_hex(j, "env_public_key", pub, sizeof(pub)) != 0 ||
		    out_jset_int(j, "names", (long long)names) != 0 ||
		    out_jset_str(j, "kms_signature", checked) != 0 || out_json_print(j) != 0) {
			cli_err(CMD_ENC, "cannot write the JSON answer");
			goto out;
		}
	} else {
		char *hex = cvm_hex_encode_new(blob, blob_len);

		if (hex == NULL) {
			cli_err(CMD_ENC, "out of memory");
			goto out;
		}
		printf("%s\n", hex);
		free(hex);
	}
	rc = CLI_EXIT_OK;
out:
	json_decref(j);
	free(blob);
	return rc;
}

/* read_env_key reads --key-file: 64 hex digits (0x allowed), whitespace
 * around them ignored, from a key file (owner only). */
static int read_env_key(const char *path, struct cvm_secret **out)
{
	struct cvm_secret *raw = NULL, *key = NULL;
	char err[512];
	size_t b = 0, e;
	int r;

	*out = NULL;
	r = cvm_file_read_key(AT_FDCWD, path, KEY_FILE_MAX, &raw, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(CMD_DEC, "--key-file: %s", err[0] ? err : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	e = raw->len;
	while (b < e && strchr(" \t\r\n", raw->p[b]) != NULL && raw->p[b] != '\0')
		b++;
	while (e > b && strchr(" \t\r\n", raw->p[e - 1]) != NULL && raw->p[e - 1] != '\0')
		e--;
	if (e - b >= 2 && raw->p[b] == '0' && (raw->p[b + 1] == 'x' || raw->p[b + 1] == 'X'))
		b += 2;
	key = cvm_secret_new(CVM_X25519_KEY_LEN);
	if (key == NULL) {
		cli_err(CMD_DEC, "out of memory");
		cvm_secret_free(raw);
		return CLI_EXIT_ERROR;
	}
	if (e - b != (size_t)2 * CVM_X25519_KEY_LEN ||
	    cvm_hex_decode_exact((const char *)raw->p + b, e - b, key->p, CVM_X25519_KEY_LEN) != CVM_OK) {
		cli_err(CMD_DEC, "--key-file '%s' must hold env_crypt_key as 64 hex digits", path);
		cvm_secret_free(raw);
		cvm_secret_free(key);
		return CLI_EXIT_ERROR;
	}
	cvm_secret_free(raw);
	*out = key;
	return CLI_EXIT_OK;
}

/* blob_from_file takes a blob file's bytes as they are, or decodes them when
 * the whole file is hex (the SDK's form; 0x and a final newline allowed). A
 * raw blob is all hex digits by chance with probability below 2^-100. */
static int blob_from_file(uint8_t *buf, size_t len, uint8_t **out, size_t *out_len)
{
	size_t b = 0, e = len, n;
	uint8_t *dec;

	*out = NULL;
	*out_len = 0;
	while (e > 0 && (buf[e - 1] == '\n' || buf[e - 1] == '\r' || buf[e - 1] == ' '))
		e--;
	if (e >= 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X'))
		b = 2;
	for (size_t i = b; i < e; i++) {
		if (!((buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'f') ||
		      (buf[i] >= 'A' && buf[i] <= 'F')))
			return CVM_OK; /* raw */
	}
	if ((e - b) % 2 != 0 || e == b)
		return CVM_OK;
	dec = malloc((e - b) / 2);
	if (dec == NULL)
		return CVM_E_NOMEM;
	if (cvm_hex_decode((const char *)buf + b, e - b, dec, (e - b) / 2, &n) != CVM_OK ||
	    n != (e - b) / 2) {
		free(dec);
		return CVM_E_FORMAT;
	}
	*out = dec;
	*out_len = n;
	return CVM_OK;
}

/* split_allowed splits "A,B,C" in place into `names`. */
static int split_allowed(char *s, const char **names, size_t *count)
{
	*count = 0;
	if (s[0] == '\0')
		return CLI_EXIT_OK; /* --allowed-envs '': nothing allowed, as dstack */
	for (char *p = s;;) {
		char *comma = strchr(p, ',');

		if (comma != NULL)
			*comma = '\0';
		if (!cvm_env_key_ok(p, strlen(p))) {
			cli_err(CMD_DEC, "--allowed-envs: '%s' is not a name (^[a-zA-Z_][a-zA-Z0-9_]*$)", p);
			return CLI_EXIT_USAGE;
		}
		if (*count == ALLOWED_MAX) {
			cli_err(CMD_DEC, "--allowed-envs: more than %d names", ALLOWED_MAX);
			return CLI_EXIT_USAGE;
		}
		names[(*count)++] = p;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return CLI_EXIT_OK;
}

static int decrypt_env(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"key-file", required_argument, NULL, OPT_KEY_FILE},
	    {"allowed-envs", required_argument, NULL, OPT_ALLOWED},
	    {"shell", no_argument, NULL, OPT_SHELL},
	    CLI_COMMON_LONGOPTS,
	};
	static const char *names[ALLOWED_MAX];
	struct cvm_env_allowed allowed = {.names = names};
	const char *key_file = NULL;
	char *allowed_arg = NULL;
	bool shell = false, has_allowed = false;
	struct cvm_secret *key = NULL, *plain = NULL, *text = NULL;
	struct cvm_env_list *list = NULL;
	uint8_t *file = NULL, *dec = NULL;
	size_t file_len = 0, dec_len = 0;
	char err[512], name[CVM_ENV_KEY_MAX + 1];
	int c, rc = CLI_EXIT_ERROR, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, ":hvq", longopts, NULL)) != -1) {
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_KEY_FILE:
			key_file = optarg;
			break;
		case OPT_ALLOWED:
			allowed_arg = optarg;
			has_allowed = true;
			break;
		case OPT_SHELL:
			shell = true;
			break;
		case 'h':
			usage_decrypt(stdout);
			return CLI_EXIT_OK;
		default:
			cli_bad_option(CMD_DEC, c, argv, "cvm app decrypt-env --help");
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1 || key_file == NULL) {
		cli_err(CMD_DEC, "--key-file FILE and one BLOBFILE expected");
		usage_decrypt(stderr);
		return CLI_EXIT_USAGE;
	}
	if (shell && cli_opts.json) {
		cli_err(CMD_DEC, "--shell and --json exclude each other");
		return CLI_EXIT_USAGE;
	}
	if (has_allowed) {
		rc = split_allowed(allowed_arg, names, &allowed.count);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	cli_apply_verbosity();
	/* jansson's scratch buffers hold plaintext: wipe them when freed. */
	cvm_kdf_json_wipe_on_free();

	rc = read_env_key(key_file, &key);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = cli_read_file(CMD_DEC, "encrypted env", argv[optind], 2 * CVM_ENVCRYPT_BLOB_MAX + 4, &file,
	                   &file_len);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	r = blob_from_file(file, file_len, &dec, &dec_len);
	if (r != CVM_OK) {
		cli_err(CMD_DEC, "%s: %s", argv[optind], cvm_strerror(r));
		goto out;
	}
	r = cvm_envcrypt_open(key, dec != NULL ? dec : file, dec != NULL ? dec_len : file_len, &plain);
	if (r != CVM_OK) {
		cli_err(CMD_DEC, "%s: cannot decrypt: %s", argv[optind],
		        r == CVM_E_SIGNATURE ? "the tag does not verify (another app's key, or changed bytes)"
		        : r == CVM_E_TRUNCATED ? "shorter than an encrypted env (60 bytes at least)"
		        : r == CVM_E_TOO_LARGE ? "larger than an encrypted env may be"
		        : r == CVM_E_FORMAT    ? "the ephemeral key is a low-order point (zero shared secret)"
		                               : cvm_strerror(r));
		rc = cli_exit_for(r);
		goto out;
	}
	r = cvm_env_list_from_json((const char *)plain->p, plain->len, has_allowed ? &allowed : NULL, &list,
	                           err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(CMD_DEC, "%s: the decrypted env is refused: %s", argv[optind],
		        err[0] ? err : cvm_strerror(r));
		rc = cli_exit_for(r);
		goto out;
	}
	for (size_t i = 0; i < list->skipped_count; i++) {
		out_sanitize(list->skipped[i], name, sizeof(name));
		fprintf(stderr, "%s %s: skipped %s: not in --allowed-envs\n", CLI_PROG, CMD_DEC, name);
	}
	r = cli_opts.json ? cvm_env_list_to_json(list, CVM_ENV_JSON_MAP, &text)
	                  : cvm_env_list_format_shell(list, &text);
	if (r != CVM_OK) {
		cli_err(CMD_DEC, "cannot write the env list: %s", cvm_strerror(r));
		goto out;
	}
	if (fwrite(text->p, 1, text->len, stdout) != text->len ||
	    (cli_opts.json && fputc('\n', stdout) == EOF) || fflush(stdout) != 0) {
		cli_err(CMD_DEC, "cannot write to standard output");
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	cvm_secret_free(text);
	cvm_env_list_free(list);
	cvm_secret_free(plain);
	cvm_secret_free(key);
	free(dec);
	free(file);
	return rc;
}

/* ---- cvm app hash --------------------------------------------------------- */

static const char *layout_name(enum cvm_app_layout l)
{
	switch (l) {
	case CVM_APP_LAYOUT_VMM_CLI:
		return "vmm-cli";
	case CVM_APP_LAYOUT_COMPACT:
		return "compact";
	case CVM_APP_LAYOUT_OTHER:
		break;
	}
	return "other";
}

/* The values `cvm app hash` prints. */
struct hash_out {
	const struct cvm_app_compose *c;
	const char *path;
	size_t len;
	enum cvm_app_layout layout;
	bool trailing_nl, app_id_given;
	uint8_t app_id[APP_ID_LEN];
	uint8_t id[3][CVM_APP_MRCONFIGID_LEN];
	char *b64[3];
	char *doc;
	unsigned qemu_layout; /* what dstack's VMM (HEAD) gives QEMU on TDX */
	char *host_data_b64;
	uint8_t host_data[32];
};

static void hash_text(const struct hash_out *h)
{
	const struct cvm_app_compose *c = h->c;
	char name[256];

	out_sanitize(c->name, name, sizeof(name));
	out_field(stdout, "", "file", "%s (%zu bytes, layout %s%s)", h->path, h->len, layout_name(h->layout),
	          h->trailing_nl ? ", trailing newline" : "");
	out_field(stdout, "", "app", "\"%s\", manifest_version %d, runner %s", name, c->manifest_version,
	          c->runner);
	out_field_hex(stdout, "", "compose_hash", c->compose_hash, 32);
	out_field_hex(stdout, "", "app_id", h->app_id, APP_ID_LEN);
	if (!h->app_id_given)
		printf("  (the default: compose_hash[0..20]. A KMS deployment's app id is its DstackApp\n"
		       "   contract address: give it with --app-id for layouts 2 and 3)\n");
	out_field(stdout, "", "key_provider", "%s%s", cvm_app_kp_name(c->key_provider),
	          c->key_provider_explicit ? "" : " (from the booleans)");
	if (c->key_provider_id_len != 0)
		out_field_hex(stdout, "", "key_provider_id", c->key_provider_id, c->key_provider_id_len);
	else
		out_field(stdout, "", "key_provider_id", "(none)");
	out_field_hex(stdout, "", "mrconfigid_v1", h->id[0], CVM_APP_MRCONFIGID_LEN);
	out_field_hex(stdout, "", "mrconfigid_v2", h->id[1], CVM_APP_MRCONFIGID_LEN);
	out_field_hex(stdout, "", "mrconfigid_v3", h->id[2], CVM_APP_MRCONFIGID_LEN);
	out_field(stdout, "", "mr_config_v3", "%s", h->doc);
	out_field(stdout, "", "qemu_mrconfigid", "%s (layout %u: dstack's VMM uses %s)",
	          h->b64[h->qemu_layout - 1], h->qemu_layout,
	          h->qemu_layout == 1 ? "layout 1 when key_provider_id is empty"
	                              : "MrConfigV3 when key_provider_id is set (0.5.x VMMs: layout 2)");
	out_field_hex(stdout, "", "snp_host_data", h->host_data, 32);
	out_field(stdout, "", "snp_host_data_b64", "%s", h->host_data_b64);
	out_field_hex(stdout, "", "gpu_policy_hash", c->gpu_policy_hash, 32);
}

static int hash_json(const struct hash_out *h)
{
	const struct cvm_app_compose *c = h->c;
	json_t *o = json_object(), *ids = json_object(), *b64 = json_object();
	int bad = o == NULL || ids == NULL || b64 == NULL;
	char key[8];

	if (!bad)
		bad = out_jset_str(o, "file", h->path) != 0 ||
		      out_jset_int(o, "bytes", (long long)h->len) != 0 ||
		      out_jset_str(o, "layout", layout_name(h->layout)) != 0 ||
		      out_jset(o, "trailing_newline", json_boolean(h->trailing_nl)) != 0 ||
		      out_jset_str(o, "name", c->name) != 0 ||
		      out_jset_int(o, "manifest_version", c->manifest_version) != 0 ||
		      out_jset_str(o, "runner", c->runner) != 0 ||
		      out_jset_hex(o, "compose_hash", c->compose_hash, 32) != 0 ||
		      out_jset_hex(o, "app_id", h->app_id, APP_ID_LEN) != 0 ||
		      out_jset_str(o, "app_id_source", h->app_id_given ? "given" : "default") != 0 ||
		      out_jset_hex(o, "default_app_id", c->default_app_id, APP_ID_LEN) != 0 ||
		      out_jset_str(o, "key_provider", cvm_app_kp_name(c->key_provider)) != 0 ||
		      out_jset_hex(o, "key_provider_id", c->key_provider_id, c->key_provider_id_len) != 0;
	for (unsigned i = 0; i < 3 && !bad; i++) {
		(void)snprintf(key, sizeof(key), "v%u", i + 1);
		bad = out_jset_hex(ids, key, h->id[i], CVM_APP_MRCONFIGID_LEN) != 0 ||
		      out_jset_str(b64, key, h->b64[i]) != 0;
	}
	if (!bad) {
		bad = out_jset(o, "mrconfigid", ids) != 0;
		ids = NULL;
	}
	if (!bad) {
		bad = out_jset(o, "mrconfigid_base64", b64) != 0;
		b64 = NULL;
	}
	if (!bad)
		bad = out_jset_str(o, "mr_config_v3", h->doc) != 0 ||
		      out_jset_int(o, "qemu_layout", h->qemu_layout) != 0 ||
		      out_jset_str(o, "qemu_mrconfigid", h->b64[h->qemu_layout - 1]) != 0 ||
		      out_jset_hex(o, "snp_host_data", h->host_data, 32) != 0 ||
		      out_jset_str(o, "snp_host_data_base64", h->host_data_b64) != 0 ||
		      out_jset_hex(o, "gpu_policy_hash", c->gpu_policy_hash, 32) != 0 ||
		      out_json_print(o) != 0;
	json_decref(ids);
	json_decref(b64);
	json_decref(o);
	if (bad) {
		cli_err(CMD_HASH, "cannot write the JSON answer");
		return CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

static int app_hash(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"app-id", required_argument, NULL, OPT_APP_ID},
	    {"instance-id", required_argument, NULL, OPT_INSTANCE_ID},
	    {"gpu", no_argument, NULL, OPT_GPU},
	    {"lax", no_argument, NULL, OPT_LAX},
	    CLI_COMMON_LONGOPTS,
	};
	struct hash_out h = {0};
	struct cvm_app_compose *c = NULL;
	uint8_t instance_id[APP_ID_LEN];
	const char *app_id_hex = NULL, *instance_hex = NULL;
	bool gpu = false, lax = false;
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[512];
	int ch, rc = CLI_EXIT_ERROR, r;

	optind = 1;
	while ((ch = getopt_long(argc, argv, ":hvq", longopts, NULL)) != -1) {
		if (cli_common_option(ch))
			continue;
		switch (ch) {
		case OPT_APP_ID:
			app_id_hex = optarg;
			break;
		case OPT_INSTANCE_ID:
			instance_hex = optarg;
			break;
		case OPT_GPU:
			gpu = true;
			break;
		case OPT_LAX:
			lax = true;
			break;
		case 'h':
			usage_hash(stdout);
			return CLI_EXIT_OK;
		default:
			cli_bad_option(CMD_HASH, ch, argv, "cvm app hash --help");
			return CLI_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		cli_err(CMD_HASH, "one FILE (an app-compose.json) expected");
		usage_hash(stderr);
		return CLI_EXIT_USAGE;
	}
	if (app_id_hex != NULL && !parse_hex_exact(app_id_hex, h.app_id, sizeof(h.app_id))) {
		cli_err(CMD_HASH, "--app-id must be 20 bytes as 40 hex digits (0x allowed)");
		return CLI_EXIT_USAGE;
	}
	if (instance_hex != NULL && !parse_hex_exact(instance_hex, instance_id, sizeof(instance_id))) {
		cli_err(CMD_HASH, "--instance-id must be 20 bytes as 40 hex digits (0x allowed)");
		return CLI_EXIT_USAGE;
	}
	cli_apply_verbosity();

	/* One read, bounded; every value below comes from these bytes. */
	rc = cli_read_file(CMD_HASH, "app-compose file", argv[optind], CVM_APP_COMPOSE_MAX, &buf, &len);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	r = cvm_app_compose_parse(buf, len, lax ? CVM_APP_PARSE_LAX : 0, &c, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(CMD_HASH, "%s: %s%s", argv[optind], err[0] ? err : cvm_strerror(r),
		        !lax && strstr(err, "not an app-compose key") != NULL ? "; --lax accepts it" : "");
		goto out;
	}
	h.c = c;
	h.path = argv[optind];
	h.len = len;
	h.layout = cvm_app_compose_layout(buf, len, &h.trailing_nl);
	h.app_id_given = app_id_hex != NULL;
	if (!h.app_id_given)
		memcpy(h.app_id, c->default_app_id, sizeof(h.app_id));
	if (!cli_opts.quiet) {
		if (h.trailing_nl)
			fprintf(
			    stderr,
			    "%s %s: warning: %s ends with white space after the JSON (a trailing newline?): "
			    "the hash covers it, so the same file without it is another app\n",
			    CLI_PROG, CMD_HASH, argv[optind]);
		if (h.layout != CVM_APP_LAYOUT_VMM_CLI)
			fprintf(stderr,
			        "%s %s: warning: %s is not in the layout dstack's vmm-cli.py writes "
			        "(json.dumps, indent 4) but %s: the hash covers the exact bytes, so the same "
			        "settings written by vmm-cli give another compose hash\n",
			        CLI_PROG, CMD_HASH, argv[optind],
			        h.layout == CVM_APP_LAYOUT_COMPACT ? "compact (as the SDK's normalised form)"
			                                           : "spaced some other way");
		if (c->n_unknown_keys != 0)
			fprintf(stderr,
			        "%s %s: warning: --lax: %zu top-level keys are not in dstack's schema\n",
			        CLI_PROG, CMD_HASH, c->n_unknown_keys);
	}

	for (unsigned i = 0; i < 3; i++) {
		r = cvm_app_compose_mrconfigid(c, i + 1, h.app_id, instance_hex != NULL ? instance_id : NULL,
		                               gpu, h.id[i], i == 2 ? &h.doc : NULL, err, sizeof(err));
		if (r != CVM_OK) {
			cli_err(CMD_HASH, "%s", err[0] ? err : cvm_strerror(r));
			goto out;
		}
		h.b64[i] = cvm_base64_encode_new(h.id[i], CVM_APP_MRCONFIGID_LEN);
		if (h.b64[i] == NULL) {
			cli_err(CMD_HASH, "out of memory");
			goto out;
		}
	}
	cvm_app_mrconfig_v3_hash(h.doc, strlen(h.doc), h.host_data);
	h.host_data_b64 = cvm_base64_encode_new(h.host_data, sizeof(h.host_data));
	if (h.host_data_b64 == NULL) {
		cli_err(CMD_HASH, "out of memory");
		goto out;
	}
	h.qemu_layout = cvm_app_compose_tdx_layout(c);
	if (cli_opts.json) {
		rc = hash_json(&h);
	} else {
		hash_text(&h);
		rc = CLI_EXIT_OK;
	}
out:
	for (unsigned i = 0; i < 3; i++)
		free(h.b64[i]);
	free(h.host_data_b64);
	free(h.doc);
	cvm_app_compose_free(c);
	free(buf);
	return rc;
}

int cmd_app(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"encrypt-env", encrypt_env},
	    {"decrypt-env", decrypt_env},
	    {"hash", app_hash},
	};

	return cli_dispatch("app", subs, sizeof(subs) / sizeof(subs[0]), app_usage, argc, argv);
}

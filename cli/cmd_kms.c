/* cvm kms: the KMS, offline.
 *
 *   cvm kms derive --root-dir DIR --app-id HEX [--instance-id HEX] [--epoch N] [--tpm TCTI] [--json]
 *       every key a KMS with DIR's roots would release to the app
 *   cvm kms audit verify|show DB ...
 *       the audit trail (cmd_kms_audit.c)
 *   cvm kms bootstrap-info verify FILE [--root-dir DIR | --ca CERT] [verification options]
 *       a KMS's bootstrap attestation: its roots were made in an attested CVM
 *
 * See docs/cli/cvm-kms.md. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include <cvmkit/encoding.h>
#include <cvmkit/kdf.h>
#include <cvmkit/kms.h>
#include <cvmkit/ratls.h>
#include <cvmkit/report.h>
#include <cvmkit/secret.h>
#include <cvmkit/tpm.h>

#include "cli.h"
#include "output.h"
#include "ratls_opts.h"

#define CMD_DERIVE "kms derive"
#define NOTES_MAX 8
#define NOTE_LEN 512

enum {
	OPT_ROOT_DIR = 0x200,
	OPT_APP_ID,
	OPT_INSTANCE_ID,
	OPT_EPOCH,
	OPT_TPM,
};

static void usage_derive(FILE *f)
{
	fprintf(
	    f,
	    "usage: %s kms derive --root-dir DIR --app-id HEX [--instance-id HEX] [--epoch N] [--tpm TCTI]\n"
	    "         [--json]\n"
	    "  Prints every key a KMS holding DIR's roots would release to the app: disk_crypt_key,\n"
	    "  env_crypt_key and env_crypt_public_key, k256_key, k256_public_key and k256_signature,\n"
	    "  app_ca_public_key, app_ca_key and app_ca_cert. Offline, for audits and disaster recovery.\n"
	    "  THE OUTPUT HOLDS SECRET KEYS: it is printed because you asked for it.\n"
	    "  --root-dir DIR      dstack's cert_dir layout (root-ca.key, root-ca.crt, root-k256.key),\n"
	    "                      or cvmkit's: DIR/epoch-N/ with the same files\n"
	    "  --app-id HEX        the app id, 20 bytes (40 hex digits, 0x allowed)\n"
	    "  --instance-id HEX   the instance id, 20 bytes; without it the disk key is derived with an\n"
	    "                      empty instance id, as dstack does for an app with no_instance_id\n"
	    "  --epoch N           the key epoch (default 0: dstack's keys)\n"
	    "  --tpm TCTI          unseal roots sealed to this TPM (root-ca.key.tpm ...; a tss2 TCTI such\n"
	    "                      as device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321)\n"
	    "  --json              one JSON object on stdout\n"
	    "A key whose root is absent from DIR is left out with a note. Exit: 0 ok, 1 error, 2 usage.\n",
	    CLI_PROG);
}

static void kms_usage(FILE *f)
{
	fprintf(f,
	        "usage: %s kms "
	        "derive|meta|app-key|sign-cert|bootstrap|rotate|revoke-epoch|epochs|audit|bootstrap-info\n"
	        "       [ARGS]\n"
	        "  derive   every key a KMS with the given roots releases to an app (offline)\n"
	        "  meta     a KMS's public metadata, its RA-TLS certificate checked (GetMeta)\n"
	        "  app-key  the app keys a KMS releases to the CVM of an RA-TLS certificate (GetAppKey)\n"
	        "  sign-cert  an app certificate from a KMS's SignCert, for a key attested by a guest agent\n"
	        "  bootstrap, rotate, revoke-epoch, epochs   a KMS's roots and key epochs (--root-dir)\n"
	        "  audit    verify or show the KMS audit log (verify|show DB)\n"
	        "  bootstrap-info  verify a KMS's bootstrap attestation (verify FILE)\n",
	        CLI_PROG);
}

/* parse_id reads a 20-byte id given as 40 hex digits, optionally after 0x. */
static bool parse_id(const char *s, uint8_t out[CVM_APP_ID_LEN])
{
	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)
		s += 2;
	return strlen(s) == (size_t)2 * CVM_APP_ID_LEN &&
	       cvm_hex_decode_exact(s, strlen(s), out, CVM_APP_ID_LEN) == CVM_OK;
}

static bool parse_epoch(const char *s, uint32_t *out)
{
	unsigned long v;
	char *end = NULL;

	if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != '\0'))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > CVM_KMS_EPOCH_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

struct notes {
	char text[NOTES_MAX][NOTE_LEN];
	size_t count;
};

__attribute__((format(printf, 2, 3))) static void note(struct notes *n, const char *fmt, ...)
{
	va_list ap;

	if (n->count == NOTES_MAX)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(n->text[n->count++], NOTE_LEN, fmt, ap);
	va_end(ap);
}

static void collect_notes(const struct cvm_kms_roots *roots, bool has_instance, struct notes *n)
{
	if (!cvm_kms_roots_has(roots, CVM_KMS_ROOT_CA_KEY))
		note(n,
		     "disk_crypt_key, env_crypt_key, env_crypt_public_key, app_ca_public_key, app_ca_key and "
		     "app_ca_cert left out: the root CA key %s is absent",
		     cvm_kms_roots_path(roots, CVM_KMS_ROOT_CA_KEY));
	else if (!cvm_kms_roots_has(roots, CVM_KMS_ROOT_CA_CERT))
		note(n, "app_ca_cert left out: the root CA certificate %s is absent",
		     cvm_kms_roots_path(roots, CVM_KMS_ROOT_CA_CERT));
	if (!cvm_kms_roots_has(roots, CVM_KMS_ROOT_K256_KEY))
		note(n,
		     "k256_key, k256_public_key and k256_signature left out: the k256 root key %s is absent",
		     cvm_kms_roots_path(roots, CVM_KMS_ROOT_K256_KEY));
	if (cvm_kms_roots_has(roots, CVM_KMS_ROOT_CA_KEY) && !has_instance)
		note(n, "disk_crypt_key derived with an empty instance id (dstack's no_instance_id); pass "
		        "--instance-id for an instance's disk key");
}

/* print_hex prints "name: hex" and wipes its copy of the hex. */
static void print_hex(const char *name, const uint8_t *p, size_t len)
{
	char hex[2 * CVM_K256_RSIG_LEN + 1];

	if (2 * len + 1 > sizeof(hex))
		return;
	cvm_hex_encode(p, len, hex);
	printf("%s: %s\n", name, hex);
	cvm_wipe(hex, sizeof(hex));
}

static void print_text(const struct cvm_kms_app_keys *k, const uint8_t *app_id, const uint8_t *instance_id,
                       size_t instance_id_len, const struct notes *n)
{
	printf("epoch: %u\n", (unsigned)k->epoch);
	print_hex("app_id", app_id, CVM_APP_ID_LEN);
	print_hex("instance_id", instance_id, instance_id_len);
	if (k->present & CVM_KMS_KEY_DISK)
		print_hex("disk_crypt_key", k->disk_crypt_key->p, k->disk_crypt_key->len);
	if (k->present & CVM_KMS_KEY_ENV) {
		print_hex("env_crypt_key", k->env_crypt_key->p, k->env_crypt_key->len);
		print_hex("env_crypt_public_key", k->env_crypt_public_key, sizeof(k->env_crypt_public_key));
	}
	if (k->present & CVM_KMS_KEY_K256) {
		print_hex("k256_key", k->k256_key->p, k->k256_key->len);
		print_hex("k256_public_key", k->k256_public_key, sizeof(k->k256_public_key));
		print_hex("k256_signature", k->k256_signature, sizeof(k->k256_signature));
	}
	if (k->present & CVM_KMS_KEY_APP_CA) {
		print_hex("app_ca_public_key", k->app_ca_public_key, sizeof(k->app_ca_public_key));
		printf("app_ca_key:\n%.*s", (int)k->app_ca_key->len, (const char *)k->app_ca_key->p);
	}
	if (k->present & CVM_KMS_KEY_APP_CA_CERT)
		printf("app_ca_cert:\n%s", k->app_ca_cert);
	for (size_t i = 0; i < n->count; i++)
		cli_err(CMD_DERIVE, "note: %s", n->text[i]);
}

/* jset_hex adds `p` as hex through a buffer of its own that it wipes
 * (out_jset_hex frees its copy without wiping it); jansson's own copy is
 * wiped when freed (cvm_kdf_json_wipe_on_free). */
static int jset_hex(json_t *o, const char *key, const uint8_t *p, size_t len)
{
	char hex[2 * CVM_K256_RSIG_LEN + 1];
	int r;

	if (2 * len + 1 > sizeof(hex))
		return -1;
	cvm_hex_encode(p, len, hex);
	r = out_jset(o, key, json_stringn(hex, 2 * len));
	cvm_wipe(hex, sizeof(hex));
	return r;
}

/* jset_pem adds a PEM text (not sanitised away: PEM is printable ASCII). */
static int jset_pem(json_t *o, const char *key, const char *pem, size_t len)
{
	return out_jset(o, key, json_stringn(pem, len));
}

static int print_json(const struct cvm_kms_app_keys *k, const uint8_t *app_id, const uint8_t *instance_id,
                      size_t instance_id_len, const struct notes *n)
{
	json_t *o = json_object(), *notes = json_array();
	int r = -1;

	if (o == NULL || notes == NULL)
		goto out;
	if (out_jset_int(o, "epoch", k->epoch) != 0 || jset_hex(o, "app_id", app_id, CVM_APP_ID_LEN) != 0 ||
	    jset_hex(o, "instance_id", instance_id, instance_id_len) != 0)
		goto out;
	if ((k->present & CVM_KMS_KEY_DISK) &&
	    jset_hex(o, "disk_crypt_key", k->disk_crypt_key->p, k->disk_crypt_key->len) != 0)
		goto out;
	if ((k->present & CVM_KMS_KEY_ENV) &&
	    (jset_hex(o, "env_crypt_key", k->env_crypt_key->p, k->env_crypt_key->len) != 0 ||
	     jset_hex(o, "env_crypt_public_key", k->env_crypt_public_key, sizeof(k->env_crypt_public_key)) !=
	         0))
		goto out;
	if ((k->present & CVM_KMS_KEY_K256) &&
	    (jset_hex(o, "k256_key", k->k256_key->p, k->k256_key->len) != 0 ||
	     jset_hex(o, "k256_public_key", k->k256_public_key, sizeof(k->k256_public_key)) != 0 ||
	     jset_hex(o, "k256_signature", k->k256_signature, sizeof(k->k256_signature)) != 0))
		goto out;
	if ((k->present & CVM_KMS_KEY_APP_CA) &&
	    (jset_hex(o, "app_ca_public_key", k->app_ca_public_key, sizeof(k->app_ca_public_key)) != 0 ||
	     jset_pem(o, "app_ca_key", (const char *)k->app_ca_key->p, k->app_ca_key->len) != 0))
		goto out;
	if ((k->present & CVM_KMS_KEY_APP_CA_CERT) &&
	    jset_pem(o, "app_ca_cert", k->app_ca_cert, strlen(k->app_ca_cert)) != 0)
		goto out;
	for (size_t i = 0; i < n->count; i++)
		if (json_array_append_new(notes, json_string(n->text[i])) != 0)
			goto out;
	r = out_jset(o, "notes", notes);
	notes = NULL; /* transferred, even on failure */
	if (r == 0)
		r = out_json_print(o);
out:
	json_decref(notes);
	json_decref(o);
	return r;
}

static int kms_derive(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"root-dir", required_argument, NULL, OPT_ROOT_DIR},
	    {"app-id", required_argument, NULL, OPT_APP_ID},
	    {"instance-id", required_argument, NULL, OPT_INSTANCE_ID},
	    {"epoch", required_argument, NULL, OPT_EPOCH},
	    {"tpm", required_argument, NULL, OPT_TPM},
	    CLI_COMMON_LONGOPTS,
	};
	struct cvm_kms_app_keys keys;
	struct cvm_kms_roots *roots = NULL;
	struct notes *n = NULL;
	const char *dir = NULL, *tcti = NULL;
	struct cvm_tpm *tpm = NULL;
	uint8_t app_id[CVM_APP_ID_LEN], instance_id[CVM_INSTANCE_ID_LEN];
	bool has_app = false, has_instance = false;
	uint32_t epoch = 0;
	char err[512];
	int c, r, rc = CLI_EXIT_USAGE;

	memset(&keys, 0, sizeof(keys));
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_ROOT_DIR:
			dir = optarg;
			break;
		case OPT_APP_ID:
			if (!parse_id(optarg, app_id)) {
				cli_err(CMD_DERIVE, "--app-id '%s': expected 20 bytes as 40 hex digits",
				        optarg);
				goto out;
			}
			has_app = true;
			break;
		case OPT_INSTANCE_ID:
			if (!parse_id(optarg, instance_id)) {
				cli_err(CMD_DERIVE, "--instance-id '%s': expected 20 bytes as 40 hex digits",
				        optarg);
				goto out;
			}
			has_instance = true;
			break;
		case OPT_TPM:
			tcti = optarg;
			break;
		case OPT_EPOCH:
			if (!parse_epoch(optarg, &epoch)) {
				cli_err(CMD_DERIVE, "--epoch '%s': expected a whole number from 0 to %u",
				        optarg, (unsigned)CVM_KMS_EPOCH_MAX);
				goto out;
			}
			break;
		case 'h':
			usage_derive(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			cli_bad_option(CMD_DERIVE, c, argv, "kms");
			goto out;
		}
	}
	cli_apply_verbosity();
	if (optind != argc) {
		cli_err(CMD_DERIVE,
		        "unexpected argument '%s'; usage: cvm kms derive --root-dir DIR --app-id HEX",
		        argv[optind]);
		goto out;
	}
	if (dir == NULL || !has_app) {
		cli_err(CMD_DERIVE, "%s is required; usage: cvm kms derive --root-dir DIR --app-id HEX",
		        dir == NULL ? "--root-dir" : "--app-id");
		goto out;
	}
	rc = CLI_EXIT_ERROR;
	/* the JSON strings below hold secret hex: jansson wipes what it frees */
	cvm_kdf_json_wipe_on_free();
	if (tcti != NULL) {
		r = cvm_tpm_open(tcti, &tpm, err, sizeof(err));
		if (r != CVM_OK) {
			cli_err(CMD_DERIVE, "--tpm: %s", err[0] != '\0' ? err : cvm_strerror(r));
			goto out;
		}
	}
	r = cvm_kms_roots_load_tpm(dir, epoch, tpm, &roots, err, sizeof(err));
	cvm_tpm_close(tpm);
	if (r != CVM_OK) {
		cli_err(CMD_DERIVE, "%s", err[0] != '\0' ? err : cvm_strerror(r));
		goto out;
	}
	r = cvm_kms_app_keys(roots, app_id, has_instance ? instance_id : NULL,
	                     has_instance ? CVM_INSTANCE_ID_LEN : 0, epoch, &keys);
	if (r != CVM_OK) {
		cli_err(CMD_DERIVE, "cannot derive the app's keys: %s", cvm_strerror(r));
		goto out;
	}
	if (keys.present == 0) {
		cli_err(CMD_DERIVE,
		        "no root key in %s for epoch %u (neither root-ca.key nor root-k256.key): nothing to "
		        "derive",
		        dir, (unsigned)epoch);
		goto out;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL) {
		cli_err(CMD_DERIVE, "out of memory");
		goto out;
	}
	collect_notes(roots, has_instance, n);
	if (cli_opts.json) {
		if (print_json(&keys, app_id, instance_id, has_instance ? CVM_INSTANCE_ID_LEN : 0, n) != 0) {
			cli_err(CMD_DERIVE, "out of memory");
			goto out;
		}
	} else {
		print_text(&keys, app_id, instance_id, has_instance ? CVM_INSTANCE_ID_LEN : 0, n);
	}
	if (fflush(stdout) != 0) {
		cli_err(CMD_DERIVE, "cannot write the keys: %s", strerror(errno));
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	free(n);
	cvm_kms_app_keys_cleanup(&keys);
	cvm_kms_roots_free(roots);
	return rc;
}

/* ---- cvm kms bootstrap-info verify ----------------------------------------- */

#define CMD_BOOTINFO "kms bootstrap-info verify"

enum {
	OPT_BI_ROOT_DIR = 0x300,
	OPT_BI_CA,
	OPT_BI_COLLATERAL,
	OPT_BI_ROOT,
	OPT_BI_POLICY,
	OPT_BI_AT,
	OPT_BI_EPOCH,
};

static void usage_bootinfo(FILE *f)
{
	fprintf(f,
	        "usage: %s kms bootstrap-info verify FILE [--root-dir DIR [--epoch N] | --ca CERT]\n"
	        "           [--collateral DIR] [--root CERT]... [--policy FILE] [--at UNIX_TIME]\n"
	        "  Checks a KMS's bootstrap-info.json (dstack's bootstrap attestation): its attestation\n"
	        "  verifies (quote, event log) and was made over exactly the root CA public key and k256\n"
	        "  public key the file names, so those roots were generated inside an attested CVM.\n"
	        "  --root-dir DIR   the roots must be DIR's (epoch N, default 0): root CA and k256 key\n"
	        "  --ca CERT        the root CA must be this certificate (root-ca.crt, PEM or DER)\n"
	        "  Without either, only the file's own consistency is proven (some attested CVM made\n"
	        "  SOME roots): say which KMS you trust. --collateral, --root and --policy are as for\n"
	        "  `cvm cert ratls verify`.\n"
	        "Exit: 0 authentic and matching, 3 refused, 1 error, 2 usage.\n",
	        CLI_PROG);
}

/* bootinfo_expect reads the roots the file must name: *spki from the root
 * CA certificate, k256 from the k256 root (*has_k256). */
static int bootinfo_expect(const char *root_dir, uint32_t epoch, const char *ca, uint8_t **spki,
                           size_t *spki_len, uint8_t k256[CVM_K256_PUBKEY_LEN], bool *has_k256)
{
	struct cvm_kms_roots *roots = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[512] = "";
	const char *pem;
	int r, rc = CLI_EXIT_ERROR;

	*has_k256 = false;
	if (ca != NULL) {
		rc = cli_read_file(CMD_BOOTINFO, "--ca certificate", ca, CVM_KMS_CERT_FILE_MAX, &buf, &len);
		if (rc != CLI_EXIT_OK)
			return rc;
		r = cvm_kms_cert_spki(buf, len, spki, spki_len);
		free(buf);
		if (r != CVM_OK) {
			cli_err(CMD_BOOTINFO, "--ca '%s' holds no certificate: give the KMS's root-ca.crt",
			        ca);
			return CLI_EXIT_ERROR;
		}
		return CLI_EXIT_OK;
	}
	r = cvm_kms_roots_load(root_dir, epoch, &roots, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(CMD_BOOTINFO, "--root-dir '%s': %s", root_dir,
		        err[0] != '\0' ? err : cvm_strerror(r));
		return CLI_EXIT_ERROR;
	}
	pem = cvm_kms_roots_ca_cert(roots);
	if (pem == NULL) {
		cli_err(CMD_BOOTINFO, "--root-dir '%s' has no root CA certificate (%s)", root_dir,
		        cvm_kms_roots_path(roots, CVM_KMS_ROOT_CA_CERT));
		goto out;
	}
	if (cvm_kms_cert_spki((const uint8_t *)pem, strlen(pem), spki, spki_len) != CVM_OK) {
		cli_err(CMD_BOOTINFO, "cannot read the root CA certificate's key");
		goto out;
	}
	if (cvm_kms_roots_has(roots, CVM_KMS_ROOT_K256_KEY)) {
		if (cvm_kms_roots_k256_public(roots, k256) != CVM_OK) {
			cli_err(CMD_BOOTINFO, "cannot read the k256 root's public key");
			goto out;
		}
		*has_k256 = true;
	}
	rc = CLI_EXIT_OK;
out:
	cvm_kms_roots_free(roots);
	return rc;
}

static int bootinfo_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"root-dir", required_argument, NULL, OPT_BI_ROOT_DIR},
	    {"ca", required_argument, NULL, OPT_BI_CA},
	    {"epoch", required_argument, NULL, OPT_BI_EPOCH},
	    {"collateral", required_argument, NULL, OPT_BI_COLLATERAL},
	    {"root", required_argument, NULL, OPT_BI_ROOT},
	    {"policy", required_argument, NULL, OPT_BI_POLICY},
	    {"at", required_argument, NULL, OPT_BI_AT},
	    CLI_COMMON_LONGOPTS,
	};
	struct cli_ratls_opts vo;
	struct cvm_ratls_verifier *v = NULL;
	struct cvm_ratls_verdict verdict;
	struct cvm_report rep;
	struct cvm_kms_bootinfo bi;
	const char *root_dir = NULL, *ca = NULL, *file;
	uint8_t *buf = NULL, *spki = NULL, k256[CVM_K256_PUBKEY_LEN];
	size_t len = 0, spki_len = 0;
	uint32_t epoch = 0;
	bool has_epoch = false, has_k256 = false;
	char err[512] = "", hex[2 * CVM_K256_PUBKEY_LEN + 1];
	int c, r, rc = CLI_EXIT_USAGE;

	memset(&vo, 0, sizeof(vo));
	memset(&bi, 0, sizeof(bi));
	vo.cmd = CMD_BOOTINFO;
	vo.at = (int64_t)time(NULL);
	optind = 0;
	while ((c = getopt_long(argc, argv, ":vqh", opts, NULL)) != -1) {
		if (cli_common_option(c))
			continue;
		switch (c) {
		case OPT_BI_ROOT_DIR:
			root_dir = optarg;
			break;
		case OPT_BI_CA:
			ca = optarg;
			break;
		case OPT_BI_EPOCH:
			if (!parse_epoch(optarg, &epoch)) {
				cli_err(CMD_BOOTINFO, "--epoch '%s' is not an epoch number (0..%u)", optarg,
				        (unsigned)CVM_KMS_EPOCH_MAX);
				return CLI_EXIT_USAGE;
			}
			has_epoch = true;
			break;
		case OPT_BI_COLLATERAL:
			vo.collateral = optarg;
			break;
		case OPT_BI_ROOT:
			if (vo.root_count == 2) {
				cli_err(CMD_BOOTINFO, "at most two --root (Intel's and AMD's)");
				return CLI_EXIT_USAGE;
			}
			vo.root[vo.root_count++] = optarg;
			break;
		case OPT_BI_POLICY:
			vo.policy = optarg;
			break;
		case OPT_BI_AT:
			if (!cli_parse_time(optarg, &vo.at)) {
				cli_err(CMD_BOOTINFO, "--at '%s' is not a Unix time in seconds", optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		case 'h':
			usage_bootinfo(stdout);
			return CLI_EXIT_OK;
		default:
			cli_bad_option(CMD_BOOTINFO, c, argv, "kms bootstrap-info");
			return CLI_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || (root_dir != NULL && ca != NULL) || (has_epoch && root_dir == NULL)) {
		if (root_dir != NULL && ca != NULL)
			cli_err(CMD_BOOTINFO, "give --root-dir or --ca, not both");
		else if (has_epoch && root_dir == NULL)
			cli_err(CMD_BOOTINFO, "--epoch goes with --root-dir");
		usage_bootinfo(stderr);
		return CLI_EXIT_USAGE;
	}
	file = argv[optind];
	cli_apply_verbosity();
	rc = cli_read_file(CMD_BOOTINFO, "bootstrap info", file, CVM_KMS_BOOTINFO_FILE_MAX, &buf, &len);
	if (rc != CLI_EXIT_OK)
		goto out;
	r = cvm_kms_bootinfo_parse(buf, len, &bi, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(CMD_BOOTINFO, "refused: '%s' is not a bootstrap-info.json: %s", file, err);
		rc = r == CVM_E_NOMEM ? CLI_EXIT_ERROR : CLI_EXIT_REJECTED;
		goto out;
	}
	if (root_dir != NULL || ca != NULL) {
		rc = bootinfo_expect(root_dir, epoch, ca, &spki, &spki_len, k256, &has_k256);
		if (rc != CLI_EXIT_OK)
			goto out;
	}
	rc = cli_ratls_verifier(&vo, &v);
	if (rc != CLI_EXIT_OK)
		goto out;
	r = cvm_kms_bootinfo_verify(&bi, v, vo.at, spki, spki_len, has_k256 ? k256 : NULL, &verdict, &rep);
	rc = cli_exit_for(r);
	if (r != CVM_OK) {
		const char *why = cvm_report_reason(&rep);

		cli_err(CMD_BOOTINFO, "refused%s: %s", verdict.simulated ? " (simulated TEE)" : "",
		        why != NULL ? why : cvm_strerror(r));
		goto out;
	}
	cvm_hex_encode(bi.k256_pubkey, sizeof(bi.k256_pubkey), hex);
	if (!cli_opts.quiet || cli_opts.json) {
		if (cli_opts.json)
			printf("{\"verified\":true,\"simulated\":%s,\"tee\":\"%s\",\"k256_pubkey\":\"%s\","
			       "\"roots_checked\":%s}\n",
			       verdict.simulated ? "true" : "false", cvm_ratls_tee_name(verdict.tee), hex,
			       spki != NULL ? "true" : "false");
		else
			printf("%sOK: the KMS roots were generated in an attested CVM (%s evidence)%s\n"
			       "k256_pubkey: %s\n",
			       verdict.simulated ? "SIMULATED TEE (not a real one): " : "",
			       cvm_ratls_tee_name(verdict.tee),
			       spki != NULL
			           ? ", and they are the roots given"
			           : "; which KMS they belong to was not checked (no --root-dir or --ca)",
			       hex);
	}
out:
	cvm_ratls_verifier_free(v);
	cvm_kms_bootinfo_cleanup(&bi);
	free(spki);
	free(buf);
	return rc;
}

static void usage_bootinfo_cmd(FILE *f)
{
	usage_bootinfo(f);
}

static int kms_bootstrap_info(int argc, char **argv)
{
	static const struct cli_sub subs[] = {{"verify", bootinfo_verify}};

	return cli_dispatch("kms bootstrap-info", subs, 1, usage_bootinfo_cmd, argc, argv);
}

int cmd_kms(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"derive", kms_derive},       {"meta", cli_kms_meta},
	    {"app-key", cli_kms_app_key}, {"bootstrap", cli_kms_bootstrap},
	    {"rotate", cli_kms_rotate},   {"revoke-epoch", cli_kms_revoke_epoch},
	    {"epochs", cli_kms_epochs},   {"sign-cert", cli_kms_sign_cert},
	    {"audit", cmd_kms_audit},     {"bootstrap-info", kms_bootstrap_info},
	};

	return cli_dispatch("kms", subs, sizeof(subs) / sizeof(subs[0]), kms_usage, argc, argv);
}

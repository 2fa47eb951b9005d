/* cvm collateral: fill, list, pack and import the collateral cache
 * (include/cvmkit/collateral.h), and the cache options that `cvm quote
 * verify` and `cvm attestation verify` share.
 *
 *   cvm collateral fetch QUOTE_OR_REPORT... | --fmspc HEX --tee tdx|sgx [--ca processor|platform]
 *                        | --product Milan|Genoa|Turin [--vlek]
 *                        | --platform-manifest FILE | --encrypted-ppid FILE
 *                          --pceid HEX [--cpusvn HEX --pcesvn N [--out FILE]]
 *   cvm collateral pack FILE
 *   cvm collateral import FILE|DIR
 *   cvm collateral status [--json]
 *   common: --cache DIR --intel-url URL --amd-url URL --offline --at UNIX_SECONDS --root CERT
 *           --amd-root CERT --refresh --timeout MS --refresh-after S
 *
 * See docs/cli/cvm-collateral.md. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/collateral.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/quote.h>
#include <cvmkit/snp.h>

#include "cli.h"
#include "output.h"

#define CMD "collateral"
#define ERR_MAX 1024
#define PATH_MAX_LEN 4096

/* ---- the cache options, shared with quote and attestation verify ------- */

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end = NULL;
	unsigned long v;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

int cli_cache_option(const char *cmd, struct cli_cache_args *a, int c, const char *arg)
{
	switch (c) {
	case CLI_OPT_CACHE:
		a->dir = arg;
		return 1;
	case CLI_OPT_INTEL_URL:
		a->intel_url = arg;
		return 1;
	case CLI_OPT_AMD_URL:
		a->amd_url = arg;
		return 1;
	case CLI_OPT_OFFLINE:
		a->offline = true;
		return 1;
	case CLI_OPT_REFRESH:
		a->refresh = true;
		return 1;
	case CLI_OPT_TIMEOUT:
		if (!parse_uint(arg, 3600000, &a->timeout_ms) || a->timeout_ms == 0) {
			cli_err(cmd, "--timeout '%s': expected milliseconds (1 to 3600000)", arg);
			return -1;
		}
		return 1;
	case CLI_OPT_REFRESH_AFTER:
		if (!parse_uint(arg, 365u * 86400u, &a->refresh_s) || a->refresh_s == 0) {
			cli_err(cmd, "--refresh-after '%s': expected seconds (1 to 31536000)", arg);
			return -1;
		}
		return 1;
	default:
		return 0;
	}
}

static void progress(void *ctx, size_t done, size_t total, const char *what)
{
	const char *sub = ctx; /* the command name */
	char s[256];

	if (cli_opts.quiet || total < 2)
		return;
	out_sanitize(what, s, sizeof(s));
	fprintf(stderr, "cvm %s: [%zu/%zu] %s\n", sub, done, total, s);
}

/* mkdir_parents makes every missing parent folder of `path` (0755). */
static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX_LEN];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		buf[i] = '/';
	}
	return 0;
}

/* default_dir: $CVM_COLLATERAL_CACHE, else /var/cache/cvmkit/collateral for
 * root, else $XDG_CACHE_HOME/cvmkit/collateral, else
 * $HOME/.cache/cvmkit/collateral. */
static bool default_dir(char *buf, size_t cap)
{
	const char *env = getenv("CVM_COLLATERAL_CACHE");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n;

	if (env != NULL && env[0] != '\0')
		n = snprintf(buf, cap, "%s", env);
	else if (geteuid() == 0)
		n = snprintf(buf, cap, "/var/cache/cvmkit/collateral");
	else if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, cap, "%s/cvmkit/collateral", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf(buf, cap, "%s/.cache/cvmkit/collateral", home);
	else
		return false;
	return n > 0 && (size_t)n < cap;
}

static const char *env_or(const char *given, const char *name)
{
	const char *e;

	if (given != NULL)
		return given[0] != '\0' ? given : NULL;
	e = getenv(name);
	return e != NULL && e[0] != '\0' ? e : NULL;
}

int cli_cache_open(const char *cmd, struct cli_cache_args *a, const uint8_t *intel_root,
                   size_t intel_root_len, const uint8_t *amd_root, size_t amd_root_len,
                   struct cvm_cache **out)
{
	struct cvm_cache_opts o;
	char dir[sizeof(a->dir_used)];
	char err[ERR_MAX] = "";
	int r;

	*out = NULL;
	memset(&o, 0, sizeof(o));
	if (a->dir != NULL) {
		if (a->dir[0] == '\0' || strlen(a->dir) >= sizeof(dir)) {
			cli_err(cmd, "--cache: expected a folder name");
			return CLI_EXIT_USAGE;
		}
		memcpy(dir, a->dir, strlen(a->dir) + 1);
	} else {
		if (!default_dir(dir, sizeof(dir))) {
			cli_err(cmd,
			        "no collateral cache folder: give --cache DIR, or set CVM_COLLATERAL_CACHE, "
			        "XDG_CACHE_HOME or HOME");
			return CLI_EXIT_USAGE;
		}
		/* The default sits under ~/.cache or /var/cache: make its parents. */
		if (mkdir_parents(dir) != 0) {
			cli_err(cmd,
			        "cannot make the parent folders of the collateral cache '%s': %s; give "
			        "--cache DIR",
			        dir, strerror(errno));
			return CLI_EXIT_ERROR;
		}
	}
	o.dir = dir;
	memcpy(a->dir_used, dir, strlen(dir) + 1);
	/* No silent default contact with Intel or AMD: an upstream is used
	 * only when the command line or the environment names one. */
	o.intel_url = env_or(a->intel_url, "CVM_INTEL_URL");
	o.amd_url = env_or(a->amd_url, "CVM_AMD_URL");
	o.offline = a->offline;
	o.timeout_ms = a->timeout_ms;
	o.connect_timeout_ms = a->timeout_ms != 0 && a->timeout_ms < 5000 ? a->timeout_ms : 0;
	o.refresh_s = a->refresh_s;
	o.intel_root_der = intel_root;
	o.intel_root_der_len = intel_root_len;
	o.intel_root_name = intel_root != NULL ? "--root certificate" : NULL;
	o.amd_root_der = amd_root;
	o.amd_root_der_len = amd_root_len;
	o.amd_root_name = amd_root != NULL ? "--amd-root certificate" : NULL;
	if (a->progress) {
		o.progress = progress;
		snprintf(a->progress_cmd, sizeof(a->progress_cmd), "%s", cmd);
		o.progress_ctx = a->progress_cmd;
	}
	r = cvm_cache_open(&o, out, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(cmd, "cannot open the collateral cache '%s': %s", dir,
		        err[0] != '\0' ? err : cvm_strerror(r));
		return r == CVM_E_INVAL ? CLI_EXIT_USAGE : CLI_EXIT_ERROR;
	}
	return CLI_EXIT_OK;
}

void cli_cache_info_text(const struct cvm_cache_info *info)
{
	char exp[32], up[256], uerr[256];

	out_time(info->expires, exp);
	out_sanitize(info->upstream, up, sizeof(up));
	out_sanitize(info->upstream_err, uerr, sizeof(uerr));
	printf("collateral: %s, %zu item%s, age %" PRId64 " s, expires %s%s%s%s%s\n",
	       cvm_cache_source_name(info->source), info->items, info->items == 1 ? "" : "s", info->age_s,
	       info->expires != 0 ? exp : "-", up[0] != '\0' ? ", upstream " : "", up,
	       info->source == CVM_CACHE_FROM_STALE ? "; stale: the refresh failed: " : "",
	       info->source == CVM_CACHE_FROM_STALE ? uerr : "");
}

int cli_cache_info_json(json_t *o, const struct cvm_cache_info *info)
{
	json_t *c = json_object();
	char t[32];
	int bad = 0;

	if (c == NULL)
		return -1;
	out_time(info->expires, t);
	bad |= out_jset_str(c, "source", cvm_cache_source_name(info->source));
	bad |= out_jset(c, "stale", json_boolean(info->source == CVM_CACHE_FROM_STALE));
	bad |= out_jset_int(c, "items", (long long)info->items);
	bad |= out_jset_int(c, "fetched", (long long)info->fetched);
	bad |= out_jset_int(c, "age_s", info->age_s);
	bad |= out_jset_str(c, "expires", info->expires != 0 ? t : NULL);
	bad |= out_jset_str(c, "anchor", info->anchor[0] != '\0' ? info->anchor : NULL);
	bad |= out_jset_str(c, "upstream", info->upstream[0] != '\0' ? info->upstream : NULL);
	bad |= out_jset_str(c, "upstream_error", info->upstream_err[0] != '\0' ? info->upstream_err : NULL);
	bad |= out_jset(o, "collateral", c);
	return bad != 0 ? -1 : 0;
}

/* ---- the subcommands ----------------------------------------------------- */

enum {
	OPT_AT = 0x300,
	OPT_ROOT,
	OPT_AMD_ROOT,
	OPT_FMSPC,
	OPT_TEE,
	OPT_CA,
	OPT_PRODUCT,
	OPT_VLEK,
	OPT_MANIFEST,
	OPT_PPID,
	OPT_PCEID,
	OPT_CPUSVN,
	OPT_PCESVN,
	OPT_OUT,
};

/* clang-format off */
#define COLL_LONGOPTS                                                                                      \
	CLI_CACHE_LONGOPTS,                                                                                \
	{"at", required_argument, NULL, OPT_AT},                                                           \
	{"root", required_argument, NULL, OPT_ROOT},                                                       \
	{"amd-root", required_argument, NULL, OPT_AMD_ROOT}
/* clang-format on */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: cvm collateral fetch QUOTE_OR_REPORT... [options]\n"
	        "       cvm collateral fetch --fmspc HEX --tee tdx|sgx [--ca processor|platform] [options]\n"
	        "       cvm collateral fetch --product Milan|Genoa|Turin [--vlek] [options]\n"
	        "       cvm collateral fetch --platform-manifest FILE|--encrypted-ppid FILE --pceid HEX\n"
	        "                            [--cpusvn HEX --pcesvn N [--out FILE]] [options]\n"
	        "       cvm collateral pack FILE [options]\n"
	        "       cvm collateral import FILE|DIR [options]\n"
	        "       cvm collateral status [--json] [options]\n"
	        "\n"
	        "  fetch   fill the cache with what the quotes or reports need (or an FMSPC's, or an\n"
	        "          AMD product's), each item verified before it is stored\n"
	        "  pack    write every unexpired cached item into one bundle FILE\n"
	        "  import  verify and store a bundle (or a folder laid out as the vectors' collateral);\n"
	        "          all or nothing\n"
	        "  status  list every cached item: name, source, fetched, expires, age, marks\n"
	        "\n"
	        "options:\n"
	        "  --cache DIR          the cache (default: $CVM_COLLATERAL_CACHE, else\n"
	        "                       /var/cache/cvmkit/collateral for root, else\n"
	        "                       $XDG_CACHE_HOME/cvmkit/collateral or ~/.cache/cvmkit/collateral)\n"
	        "  --intel-url URL      Intel PCS or PCCS base URL (default: $CVM_INTEL_URL; none: offline)\n"
	        "  --amd-url URL        AMD KDS base URL (default: $CVM_AMD_URL; none: offline)\n"
	        "  --offline            never contact an upstream\n"
	        "  --refresh            fetch even when the cached item is current\n"
	        "  --refresh-after S    re-fetch items older than S seconds (default 86400)\n"
	        "  --timeout MS         longest upstream request (default 15000)\n"
	        "  --at UNIX_SECONDS    the time items are verified at (default: now)\n"
	        "  --root CERT          Intel trust anchor (default: the built-in Intel SGX Root CA)\n"
	        "  --amd-root CERT      AMD trust anchor (default: the built-in ARKs)\n"
	        "  --fmspc HEX --tee T  an FMSPC's TCB info, the TEE's QE identity, the PCK CRL (--ca,\n"
	        "                       default processor) and the root CA CRL\n"
	        "  --product P [--vlek] an AMD product's ASK (or ASVK) chain and CRL\n"
	        "  --platform-manifest FILE  every PCK certificate of a platform, by its platform\n"
	        "                       manifest (hex text in FILE), from the PCS (POST pckcerts)\n"
	        "  --encrypted-ppid FILE     the same by encrypted PPID (768 hex digits in FILE)\n"
	        "  --pceid HEX          the platform's PCE ID (4 hex digits)\n"
	        "  --cpusvn HEX --pcesvn N   then pick the certificate for this raw TCB as Intel's\n"
	        "                       PCK certificate selection does; print it (PEM) or --out FILE\n"
	        "  -q                   no progress on stderr\n");
}

struct coll_ctx {
	const char *sub; /* "collateral fetch", ... */
	struct cli_cache_args cache;
	int64_t at;
	bool at_set;
	const char *root_path;
	const char *amd_root_path;
	uint8_t *root;
	size_t root_len;
	uint8_t *amd_root;
	size_t amd_root_len;
	struct cvm_cache *c;
};

/* common_option handles the options every subcommand takes; returns 1
 * handled, 0 not ours, -1 on a bad value (reported). */
static int common_option(struct coll_ctx *x, int c)
{
	int k = cli_cache_option(x->sub, &x->cache, c, optarg);

	if (k != 0)
		return k;
	switch (c) {
	case OPT_AT:
		if (!cli_parse_time(optarg, &x->at)) {
			cli_err(x->sub, "--at '%s': expected Unix seconds (a non-negative integer)", optarg);
			return -1;
		}
		x->at_set = true;
		return 1;
	case OPT_ROOT:
		x->root_path = optarg;
		return 1;
	case OPT_AMD_ROOT:
		x->amd_root_path = optarg;
		return 1;
	default:
		return 0;
	}
}

static int open_cache(struct coll_ctx *x)
{
	int rc;

	cli_apply_verbosity();
	if (!x->at_set)
		x->at = (int64_t)time(NULL);
	if (x->root_path != NULL) {
		rc = cli_load_cert(x->sub, "--root certificate", x->root_path, &x->root, &x->root_len);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	if (x->amd_root_path != NULL) {
		rc = cli_load_cert(x->sub, "--amd-root certificate", x->amd_root_path, &x->amd_root,
		                   &x->amd_root_len);
		if (rc != CLI_EXIT_OK)
			return rc;
	}
	return cli_cache_open(x->sub, &x->cache, x->root, x->root_len, x->amd_root, x->amd_root_len, &x->c);
}

static void close_ctx(struct coll_ctx *x)
{
	cvm_cache_close(x->c);
	free(x->root);
	free(x->amd_root);
}

/* item_exit maps a cache error to an exit code: a verification failure or
 * an upstream that has nothing is a rejection of the collateral (3); what
 * stopped the command from doing its job is 1. */
static int item_exit(int r)
{
	switch (r) {
	case CVM_OK:
		return CLI_EXIT_OK;
	case CVM_E_NOT_FOUND:
	case CVM_E_UPSTREAM:
	case CVM_E_NOMEM:
	case CVM_E_INTERNAL:
	case CVM_E_INVAL:
	case CVM_E_SYSTEM:
	case CVM_E_UNSUPPORTED:
		return CLI_EXIT_ERROR;
	default:
		return CLI_EXIT_REJECTED;
	}
}

static bool parse_hex6(const char *s, uint8_t out[6])
{
	if (strlen(s) != 12)
		return false;
	return cvm_hex_decode_exact(s, 12, out, 6) == CVM_OK;
}

static bool parse_product(const char *s, enum cvm_snp_product *out)
{
	if (strcmp(s, "Milan") == 0)
		*out = CVM_SNP_PRODUCT_MILAN;
	else if (strcmp(s, "Genoa") == 0)
		*out = CVM_SNP_PRODUCT_GENOA;
	else if (strcmp(s, "Turin") == 0)
		*out = CVM_SNP_PRODUCT_TURIN;
	else
		return false;
	return true;
}

/* get_need fetches every item of `need`, reporting each; returns the exit
 * code of the first failure (and goes on with the others). */
static int get_need(struct coll_ctx *x, const struct cvm_cache_need *need, const char *from, size_t *fetched,
                    size_t *cached)
{
	unsigned flags = x->cache.refresh ? CVM_CACHE_REFRESH : 0;
	int rc = CLI_EXIT_OK;

	for (size_t i = 0; i < need->count; i++) {
		struct cvm_cache_item *it = NULL;
		struct cvm_cache_info info;
		char name[256] = "?", err[ERR_MAX] = "";
		int r;

		memset(&info, 0, sizeof(info));
		if (cvm_cache_key_name(&need->keys[i], name, sizeof(name)) != CVM_OK)
			snprintf(name, sizeof(name), "item %zu", i + 1);
		r = cvm_cache_get(x->c, &need->keys[i], x->at, flags, &it, &info, err, sizeof(err));
		if (r != CVM_OK) {
			/* the library's message often names the item already */
			bool named = strncmp(err, name, strlen(name)) == 0;

			cli_err(x->sub, "%s%s%s%s%s", from != NULL ? from : "", from != NULL ? ": " : "",
			        named ? "" : name, named ? "" : ": ", err[0] != '\0' ? err : cvm_strerror(r));
			if (rc == CLI_EXIT_OK)
				rc = item_exit(r);
			continue;
		}
		if (info.fetched > 0)
			(*fetched)++;
		else
			(*cached)++;
		if (!cli_opts.quiet && !cli_opts.json)
			fprintf(stderr, "cvm %s: %s: %s\n", x->sub, name, cvm_cache_source_name(info.source));
		cvm_cache_item_free(it);
	}
	return rc;
}

struct platform_args {
	const char *manifest, *ppid, *pceid, *cpusvn, *pcesvn, *out;
};

/* read_hex_file reads `path` holding hex text (surrounding white space
 * allowed) of at most `max` bytes once decoded, into a new buffer. */
static int read_hex_file(const char *sub, const char *what, const char *path, size_t max, uint8_t **out,
                         size_t *out_len)
{
	uint8_t *text = NULL, *bin = NULL;
	size_t len = 0, a = 0, b;
	int rc;

	*out = NULL;
	*out_len = 0;
	rc = cli_read_file(sub, what, path, 2 * max + 64, &text, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	while (a < len && (text[a] == ' ' || text[a] == '\n' || text[a] == '\r' || text[a] == '\t'))
		a++;
	b = len;
	while (b > a &&
	       (text[b - 1] == ' ' || text[b - 1] == '\n' || text[b - 1] == '\r' || text[b - 1] == '\t'))
		b--;
	if (b > a && (b - a) % 2 == 0 && (b - a) / 2 <= max)
		bin = malloc((b - a) / 2);
	if (bin == NULL || cvm_hex_decode_exact((const char *)text + a, b - a, bin, (b - a) / 2) != CVM_OK) {
		cli_err(sub, "'%s': the %s must be hex text of 1 to %zu bytes", path, what, max);
		free(bin);
		free(text);
		return CLI_EXIT_USAGE;
	}
	free(text);
	*out = bin;
	*out_len = (b - a) / 2;
	return CLI_EXIT_OK;
}

/* platform_tcb_info gets the TCB info of `fmspc` (SGX, else TDX) and
 * decodes it (it verified when it was stored). */
static int platform_tcb_info(struct coll_ctx *x, const uint8_t fmspc[6], struct cvm_tcb_info **out, char *err,
                             size_t err_len)
{
	struct cvm_cache_item *it = NULL;
	struct cvm_cache_key k;
	struct cvm_rd span;
	uint8_t sig[64];
	int r = CVM_E_NOT_FOUND;

	*out = NULL;
	for (int t = 0; t < 2; t++) {
		cvm_cache_key_init(&k, CVM_CACHE_TCB_INFO);
		k.tee = t == 0 ? CVM_CACHE_SGX : CVM_CACHE_TDX;
		memcpy(k.fmspc, fmspc, sizeof(k.fmspc));
		r = cvm_cache_get(x->c, &k, x->at, 0, &it, NULL, err, err_len);
		if (r == CVM_OK)
			break;
	}
	if (r != CVM_OK)
		return r;
	r = cvm_tcb_info_parse(it->body, it->body_len, out, &span, sig);
	cvm_cache_item_free(it);
	return r;
}

static int fetch_platform(struct coll_ctx *x, const struct platform_args *pa)
{
	struct cvm_cache_item *it = NULL;
	struct cvm_cache_info info;
	struct cvm_tcb_info *ti = NULL;
	struct cvm_cache_pck_choice ch;
	uint8_t *id = NULL, pceid[2], cpusvn[16], fmspc[6];
	size_t id_len = 0;
	unsigned pcesvn = 0;
	char name[256] = "?", err[ERR_MAX] = "";
	int r, rc = CLI_EXIT_USAGE;

	memset(&ch, 0, sizeof(ch));
	if ((pa->manifest != NULL) == (pa->ppid != NULL) || pa->pceid == NULL) {
		cli_err(x->sub,
		        "give --platform-manifest FILE or --encrypted-ppid FILE (one), and --pceid HEX");
		return CLI_EXIT_USAGE;
	}
	if (strlen(pa->pceid) != 4 || cvm_hex_decode_exact(pa->pceid, 4, pceid, 2) != CVM_OK) {
		cli_err(x->sub, "--pceid '%s': expected 4 hex digits (e.g. 0000)", pa->pceid);
		return CLI_EXIT_USAGE;
	}
	if ((pa->cpusvn != NULL) != (pa->pcesvn != NULL) || (pa->out != NULL && pa->cpusvn == NULL)) {
		cli_err(x->sub, "--cpusvn and --pcesvn go together (--out needs them)");
		return CLI_EXIT_USAGE;
	}
	if (pa->cpusvn != NULL &&
	    (strlen(pa->cpusvn) != 32 || cvm_hex_decode_exact(pa->cpusvn, 32, cpusvn, 16) != CVM_OK)) {
		cli_err(x->sub, "--cpusvn '%s': expected 32 hex digits (the raw CPUSVN)", pa->cpusvn);
		return CLI_EXIT_USAGE;
	}
	if (pa->pcesvn != NULL && !parse_uint(pa->pcesvn, 65535, &pcesvn)) {
		cli_err(x->sub, "--pcesvn '%s': expected a number from 0 to 65535", pa->pcesvn);
		return CLI_EXIT_USAGE;
	}
	if (pa->manifest != NULL)
		rc = read_hex_file(x->sub, "platform manifest", pa->manifest, CVM_CACHE_MANIFEST_MAX, &id,
		                   &id_len);
	else
		rc = read_hex_file(x->sub, "encrypted PPID", pa->ppid, CVM_CACHE_PPID_MAX, &id, &id_len);
	if (rc != CLI_EXIT_OK)
		return rc;
	if (pa->ppid != NULL && id_len != CVM_CACHE_PPID_MAX) {
		cli_err(x->sub, "'%s': an encrypted PPID is %u bytes (%u hex digits), not %zu", pa->ppid,
		        (unsigned)CVM_CACHE_PPID_MAX, 2 * (unsigned)CVM_CACHE_PPID_MAX, id_len);
		free(id);
		return CLI_EXIT_USAGE;
	}
	rc = open_cache(x);
	if (rc != CLI_EXIT_OK)
		goto out;
	memset(&info, 0, sizeof(info));
	r = cvm_cache_pck_certs(x->c, pa->manifest != NULL ? id : NULL, id_len,
	                        pa->manifest != NULL ? NULL : id, id_len, pceid, x->at,
	                        x->cache.refresh ? CVM_CACHE_REFRESH : 0, NULL, &it, &info, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(x->sub, "the platform's PCK certificates: %s",
		        err[0] != '\0' ? err : cvm_strerror(r));
		rc = item_exit(r);
		goto out;
	}
	if (cvm_cache_key_name(&it->key, name, sizeof(name)) != CVM_OK)
		snprintf(name, sizeof(name), "?");
	if (!cli_opts.quiet)
		fprintf(stderr, "cvm %s: %s: %s (FMSPC %s, %s CA)\n", x->sub, name,
		        cvm_cache_source_name(info.source), it->fmspc, it->ca_type);
	rc = CLI_EXIT_OK;
	if (pa->cpusvn == NULL) {
		if (!cli_opts.quiet)
			printf("%s item fetched, %s already cached\n", info.fetched > 0 ? "1" : "0",
			       info.fetched > 0 ? "0" : "1");
		goto out;
	}
	if (cvm_hex_decode_exact(it->fmspc, strlen(it->fmspc), fmspc, sizeof(fmspc)) != CVM_OK) {
		cli_err(x->sub, "%s has no FMSPC", name);
		rc = CLI_EXIT_ERROR;
		goto out;
	}
	r = platform_tcb_info(x, fmspc, &ti, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(x->sub, "the TCB info of FMSPC %s (to order the certificates): %s", it->fmspc,
		        err[0] != '\0' ? err : cvm_strerror(r));
		rc = item_exit(r);
		goto out;
	}
	r = cvm_cache_pck_select(it->body, it->body_len, ti, cpusvn, (uint16_t)pcesvn, &ch, err, sizeof(err));
	if (r != CVM_OK) {
		cli_err(x->sub, "%s", err[0] != '\0' ? err : cvm_strerror(r));
		rc = item_exit(r);
		goto out;
	}
	if (!cli_opts.quiet)
		fprintf(stderr, "cvm %s: selected certificate %zu, tcbm %s\n", x->sub, ch.index, ch.tcbm);
	if (pa->out != NULL) {
		if (cvm_file_write(pa->out, ch.pem, ch.pem_len, 0644) != CVM_OK) {
			cli_err(x->sub, "cannot write '%s': %s", pa->out, strerror(errno));
			rc = CLI_EXIT_ERROR;
		}
	} else if (fwrite(ch.pem, 1, ch.pem_len, stdout) != ch.pem_len) {
		rc = CLI_EXIT_ERROR;
	}
out:
	cvm_cache_pck_choice_cleanup(&ch);
	cvm_tcb_info_free(ti);
	cvm_cache_item_free(it);
	free(id);
	return rc;
}

static int collateral_fetch(int argc, char **argv)
{
	static const struct option longopts[] = {
	    COLL_LONGOPTS,
	    {"fmspc", required_argument, NULL, OPT_FMSPC},
	    {"tee", required_argument, NULL, OPT_TEE},
	    {"ca", required_argument, NULL, OPT_CA},
	    {"product", required_argument, NULL, OPT_PRODUCT},
	    {"vlek", no_argument, NULL, OPT_VLEK},
	    {"platform-manifest", required_argument, NULL, OPT_MANIFEST},
	    {"encrypted-ppid", required_argument, NULL, OPT_PPID},
	    {"pceid", required_argument, NULL, OPT_PCEID},
	    {"cpusvn", required_argument, NULL, OPT_CPUSVN},
	    {"pcesvn", required_argument, NULL, OPT_PCESVN},
	    {"out", required_argument, NULL, OPT_OUT},
	    CLI_COMMON_LONGOPTS,
	};
	struct coll_ctx x = {.sub = CMD " fetch"};
	struct platform_args pa = {NULL, NULL, NULL, NULL, NULL, NULL};
	const char *fmspc = NULL, *tee = NULL, *ca = NULL, *product = NULL;
	bool vlek = false;
	struct cvm_cache_need need;
	size_t fetched = 0, cached = 0;
	int c, k, rc = CLI_EXIT_USAGE;

	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		k = common_option(&x, c);
		if (k < 0)
			goto out;
		if (k > 0)
			continue;
		switch (c) {
		case OPT_FMSPC:
			fmspc = optarg;
			break;
		case OPT_TEE:
			tee = optarg;
			break;
		case OPT_CA:
			ca = optarg;
			break;
		case OPT_PRODUCT:
			product = optarg;
			break;
		case OPT_VLEK:
			vlek = true;
			break;
		case OPT_MANIFEST:
			pa.manifest = optarg;
			break;
		case OPT_PPID:
			pa.ppid = optarg;
			break;
		case OPT_PCEID:
			pa.pceid = optarg;
			break;
		case OPT_CPUSVN:
			pa.cpusvn = optarg;
			break;
		case OPT_PCESVN:
			pa.pcesvn = optarg;
			break;
		case OPT_OUT:
			pa.out = optarg;
			break;
		case 'h':
			usage(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		default:
			cli_bad_option(x.sub, c, argv, "cvm help collateral");
			goto out;
		}
	}
	memset(&need, 0, sizeof(need));
	if (x.cache.offline) {
		cli_err(x.sub, "--offline: fetch needs an upstream (use 'cvm collateral import' on an "
		               "air-gapped machine)");
		goto out;
	}
	if (pa.manifest != NULL || pa.ppid != NULL || pa.pceid != NULL || pa.cpusvn != NULL ||
	    pa.pcesvn != NULL || pa.out != NULL) {
		if (fmspc != NULL || product != NULL || argc - optind > 0 || tee != NULL || ca != NULL ||
		    vlek) {
			cli_err(x.sub, "--platform-manifest / --encrypted-ppid go alone (with --pceid, "
			               "--cpusvn, --pcesvn, --out); see 'cvm help collateral'");
			goto out;
		}
		rc = fetch_platform(&x, &pa);
		goto out;
	}
	if ((fmspc != NULL) + (product != NULL) + (argc - optind > 0) != 1) {
		cli_err(x.sub, "give QUOTE_OR_REPORT files, or --fmspc HEX --tee tdx|sgx, or --product NAME, "
		               "or --platform-manifest FILE --pceid HEX (exactly one of them); see 'cvm help "
		               "collateral'");
		goto out;
	}
	if (fmspc == NULL && (tee != NULL || ca != NULL)) {
		cli_err(x.sub, "--tee and --ca go with --fmspc");
		goto out;
	}
	if (product == NULL && vlek) {
		cli_err(x.sub, "--vlek goes with --product");
		goto out;
	}
	if (fmspc != NULL) {
		struct cvm_cache_key *kk = need.keys;
		enum cvm_cache_tee t;
		enum cvm_cache_ca cak = CVM_CACHE_CA_PROCESSOR;

		if (tee == NULL || (strcmp(tee, "tdx") != 0 && strcmp(tee, "sgx") != 0)) {
			cli_err(x.sub, "--fmspc needs --tee tdx or --tee sgx");
			goto out;
		}
		t = strcmp(tee, "tdx") == 0 ? CVM_CACHE_TDX : CVM_CACHE_SGX;
		if (ca != NULL && strcmp(ca, "platform") == 0)
			cak = CVM_CACHE_CA_PLATFORM;
		else if (ca != NULL && strcmp(ca, "processor") != 0) {
			cli_err(x.sub, "--ca '%s': expected processor or platform", ca);
			goto out;
		}
		cvm_cache_key_init(&kk[0], CVM_CACHE_TCB_INFO);
		kk[0].tee = t;
		if (!parse_hex6(fmspc, kk[0].fmspc)) {
			cli_err(x.sub, "--fmspc '%s': expected 12 hex digits (6 bytes, e.g. 00806F050000)",
			        fmspc);
			goto out;
		}
		cvm_cache_key_init(&kk[1], CVM_CACHE_QE_ID);
		kk[1].tee = t;
		cvm_cache_key_init(&kk[2], CVM_CACHE_PCK_CRL);
		kk[2].ca = cak;
		cvm_cache_key_init(&kk[3], CVM_CACHE_ROOT_CRL);
		need.count = 4;
	} else if (product != NULL) {
		enum cvm_snp_product p;

		if (!parse_product(product, &p)) {
			cli_err(x.sub, "--product '%s': expected Milan, Genoa or Turin", product);
			goto out;
		}
		for (size_t i = 0; i < 2; i++) {
			cvm_cache_key_init(&need.keys[i], i == 0 ? CVM_CACHE_AMD_CHAIN : CVM_CACHE_AMD_CRL);
			need.keys[i].product = p;
			need.keys[i].signer = vlek ? CVM_SNP_SIGNER_VLEK : CVM_SNP_SIGNER_VCEK;
		}
		need.count = 2;
	}
	rc = open_cache(&x);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (need.count > 0) {
		rc = get_need(&x, &need, NULL, &fetched, &cached);
	} else {
		for (int i = optind; i < argc; i++) {
			uint8_t *buf = NULL;
			size_t len = 0;
			char err[ERR_MAX] = "";
			int r, k2;

			k2 = cli_read_file(x.sub, "quote or report", argv[i], (size_t)CVM_QUOTE_MAX, &buf,
			                   &len);
			if (k2 != CLI_EXIT_OK) {
				rc = rc == CLI_EXIT_OK ? k2 : rc;
				continue;
			}
			memset(&need, 0, sizeof(need));
			if (cvm_snp_report_looks_like(buf, len))
				r = cvm_cache_need_report(buf, len, CVM_SNP_PRODUCT_UNKNOWN, &need, err,
				                          sizeof(err));
			else
				r = cvm_cache_need_quote(buf, len, &need, err, sizeof(err));
			free(buf);
			if (r != CVM_OK) {
				cli_err(x.sub, "'%s': cannot name the collateral it needs: %s", argv[i],
				        err[0] != '\0' ? err : cvm_strerror(r));
				rc = rc == CLI_EXIT_OK ? CLI_EXIT_ERROR : rc;
				continue;
			}
			k2 = get_need(&x, &need, argv[i], &fetched, &cached);
			rc = rc == CLI_EXIT_OK ? k2 : rc;
		}
	}
	if (!cli_opts.quiet)
		printf("%zu item%s fetched, %zu already cached%s\n", fetched, fetched == 1 ? "" : "s", cached,
		       rc == CLI_EXIT_OK ? "" : "; some failed (see above)");
out:
	close_ctx(&x);
	return rc;
}

static int one_path_cmd(int argc, char **argv, const char *sub, bool is_pack)
{
	static const struct option longopts[] = {
	    COLL_LONGOPTS,
	    CLI_COMMON_LONGOPTS,
	};
	struct coll_ctx x = {.sub = sub, .cache.progress = true};
	char err[ERR_MAX] = "";
	size_t count = 0;
	int c, k, r, rc = CLI_EXIT_USAGE;

	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		k = common_option(&x, c);
		if (k < 0)
			goto out;
		if (k > 0)
			continue;
		if (c == 'h') {
			usage(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		}
		cli_bad_option(x.sub, c, argv, "cvm help collateral");
		goto out;
	}
	if (argc - optind != 1) {
		cli_err(x.sub, "%s; usage: cvm %s %s",
		        argc - optind == 0 ? "no FILE given" : "more than one FILE given", sub,
		        is_pack ? "FILE" : "FILE|DIR");
		goto out;
	}
	rc = open_cache(&x);
	if (rc != CLI_EXIT_OK)
		goto out;
	if (is_pack)
		r = cvm_cache_pack(x.c, argv[optind], x.at, &count, err, sizeof(err));
	else
		r = cvm_cache_import(x.c, argv[optind], x.at, &count, err, sizeof(err));
	if (r != CVM_OK) {
		if (is_pack)
			cli_err(x.sub, "cannot pack the cache into '%s': %s", argv[optind],
			        err[0] != '\0' ? err : cvm_strerror(r));
		else
			cli_err(x.sub, "'%s' refused, nothing imported: %s", argv[optind],
			        err[0] != '\0' ? err : cvm_strerror(r));
		rc = item_exit(r);
		goto out;
	}
	if (!cli_opts.quiet)
		printf("%s %zu item%s %s '%s'\n", is_pack ? "packed" : "imported", count,
		       count == 1 ? "" : "s", is_pack ? "into" : "from", argv[optind]);
out:
	close_ctx(&x);
	return rc;
}

static int collateral_pack(int argc, char **argv)
{
	return one_path_cmd(argc, argv, CMD " pack", true);
}

static int collateral_import(int argc, char **argv)
{
	return one_path_cmd(argc, argv, CMD " import", false);
}

struct status_ctx {
	int64_t now;
	json_t *arr; /* --json */
	size_t count;
	bool oom;
};

static int status_item(void *ctx, const struct cvm_cache_item *it)
{
	struct status_ctx *s = ctx;
	char name[256] = "?", src[256], fetched[32], expires[32];
	bool expired = it->expires != 0 && s->now >= it->expires;
	bool stale = !expired && it->next_update != 0 && s->now >= it->next_update;
	int64_t age = s->now - it->fetched_at;

	if (cvm_cache_key_name(&it->key, name, sizeof(name)) != CVM_OK)
		snprintf(name, sizeof(name), "?");
	out_sanitize(it->source, src, sizeof(src));
	out_time(it->fetched_at, fetched);
	out_time(it->expires, expires);
	s->count++;
	if (s->arr != NULL) {
		json_t *o = json_object();
		int bad = 0;

		if (o == NULL) {
			s->oom = true;
			return 1;
		}
		bad |= out_jset_str(o, "name", name);
		bad |= out_jset_str(o, "source", src);
		bad |= out_jset_str(o, "fetched", fetched);
		bad |= out_jset_str(o, "expires", it->expires != 0 ? expires : NULL);
		bad |= out_jset_int(o, "age_s", age);
		bad |= out_jset(o, "stale", json_boolean(stale));
		bad |= out_jset(o, "expired", json_boolean(expired));
		bad |= out_jset_str(o, "anchor", it->anchor[0] != '\0' ? it->anchor : NULL);
		if (bad != 0 || json_array_append_new(s->arr, o) != 0) {
			s->oom = true;
			return 1;
		}
		return 0;
	}
	printf("%-48s %-20s %-20s %10" PRId64 " s%s  %s\n", name, fetched, it->expires != 0 ? expires : "-",
	       age,
	       expired ? "  EXPIRED"
	       : stale ? "  stale"
	               : "",
	       src);
	return 0;
}

static int collateral_status(int argc, char **argv)
{
	static const struct option longopts[] = {
	    COLL_LONGOPTS,
	    CLI_COMMON_LONGOPTS,
	};
	struct coll_ctx x = {.sub = CMD " status"};
	struct status_ctx s;
	json_t *o = NULL;
	int c, k, r, rc = CLI_EXIT_USAGE;

	memset(&s, 0, sizeof(s));
	opterr = 0;
	optind = 0;
	for (;;) {
		c = getopt_long(argc, argv, ":vqh", longopts, NULL);
		if (c == -1)
			break;
		if (cli_common_option(c))
			continue;
		k = common_option(&x, c);
		if (k < 0)
			goto out;
		if (k > 0)
			continue;
		if (c == 'h') {
			usage(stdout);
			rc = CLI_EXIT_OK;
			goto out;
		}
		cli_bad_option(x.sub, c, argv, "cvm help collateral");
		goto out;
	}
	if (argc != optind) {
		cli_err(x.sub, "unexpected argument '%s'; usage: cvm collateral status [--json] [options]",
		        argv[optind]);
		goto out;
	}
	/* status reads the cache only */
	x.cache.offline = true;
	rc = open_cache(&x);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	s.now = x.at;
	if (cli_opts.json) {
		o = json_object();
		s.arr = json_array();
		if (o == NULL || s.arr == NULL) {
			cli_err(x.sub, "out of memory");
			json_decref(s.arr);
			goto out;
		}
	} else if (!cli_opts.quiet) {
		printf("%-48s %-20s %-20s %12s  %s\n", "item", "fetched", "expires", "age", "source");
	}
	r = cvm_cache_list(x.c, status_item, &s);
	if (r != CVM_OK || s.oom) {
		cli_err(x.sub, "cannot list the cache: %s", s.oom ? "out of memory" : cvm_strerror(r));
		json_decref(s.arr);
		goto out;
	}
	if (o != NULL) {
		if (out_jset_str(o, "cache", x.cache.dir_used) != 0 || out_jset_int(o, "at", x.at) != 0 ||
		    out_jset_int(o, "count", (long long)s.count) != 0 || out_jset(o, "items", s.arr) != 0 ||
		    out_json_print(o) != 0) {
			cli_err(x.sub, "cannot write the JSON output");
			goto out;
		}
	} else if (!cli_opts.quiet) {
		printf("%zu item%s\n", s.count, s.count == 1 ? "" : "s");
	}
	rc = CLI_EXIT_OK;
out:
	json_decref(o);
	close_ctx(&x);
	return rc;
}

int cmd_collateral(int argc, char **argv)
{
	static const struct cli_sub subs[] = {
	    {"fetch", collateral_fetch},
	    {"pack", collateral_pack},
	    {"import", collateral_import},
	    {"status", collateral_status},
	};

	return cli_dispatch(CMD, subs, sizeof(subs) / sizeof(subs[0]), usage, argc, argv);
}

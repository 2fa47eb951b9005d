/* The cvm command-line tool: shared declarations. Each cli/cmd_<name>.c
 * holds one subcommand and uses the public cvmkit API only. */
#ifndef CVM_CLI_H
#define CVM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_PROG "cvm"

/* Exit codes are documented (docs/cli/cvm.md) and stable: scripts tell
 * "rejected" apart from "broken". */
enum cli_exit {
	CLI_EXIT_OK = 0,       /* success; evidence accepted */
	CLI_EXIT_ERROR = 1,    /* could not do the job (unreadable file, bad policy file, ...) */
	CLI_EXIT_USAGE = 2,    /* wrong command line */
	CLI_EXIT_REJECTED = 3, /* evidence rejected (not authentic, or the policy says no) */
};

/* Options common to every command; main() parses them before the command
 * name, and each command accepts them after it too. */
struct cli_common {
	int verbose; /* -v: library messages to stderr (-vv: debug) */
	bool quiet;  /* -q: only the verdict or the error */
	bool json;   /* --json: one JSON object on stdout */
};

extern struct cli_common cli_opts;

/* Long-option values shared by the commands for the common flags. */
#define CLI_OPT_JSON 0x100
/* CLI_COMMON_LONGOPTS ends every command's getopt_long table: the common
 * flags (handled by cli_common_option) and the terminating entry. */
/* clang-format off */
#define CLI_COMMON_LONGOPTS                                                                                \
	{"json", no_argument, NULL, CLI_OPT_JSON},                                                         \
	{"verbose", no_argument, NULL, 'v'},                                                               \
	{"quiet", no_argument, NULL, 'q'},                                                                 \
	{"help", no_argument, NULL, 'h'},                                                                  \
	{NULL, 0, NULL, 0}
/* clang-format on */

/* cli_common_option handles -v, -q and --json inside a command's getopt
 * loop; it returns true if `c` was one of them. */
bool cli_common_option(int c);
/* cli_apply_verbosity installs the library log handler for -v / -vv. */
void cli_apply_verbosity(void);

/* cli_exit_for is the exit code of a verification that returned `r`:
 * 0 accepted; 1 when cvm could not do the job (out of memory, a bug, bad
 * arguments, a system error); 3 for every rejection. */
int cli_exit_for(int r);

/* cli_err prints "cvm <cmd>: <message>" and a newline to stderr. */
void cli_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* struct cli_sub names one subcommand of a command and its function
 * (argv[0] is the subcommand's name). */
struct cli_sub {
	const char *name;
	int (*run)(int argc, char **argv);
};

/* cli_dispatch runs the subcommand named by argv[1] among subs[0..n-1]:
 * "--help", "-h" and "help" print `usage` to stdout (exit 0); none or an
 * unknown one print what was expected (and, for none, `usage` to stderr) and
 * return CLI_EXIT_USAGE. */
int cli_dispatch(const char *cmd, const struct cli_sub *subs, size_t n, void (*usage)(FILE *out), int argc,
                 char **argv);

/* cli_bad_option reports what getopt_long (with a leading ':' in its
 * optstring) returned as `c` for argv[optind - 1]: a missing value (':') or
 * an unknown option, pointing at `help` (e.g. "cvm help quote"). The
 * caller then exits with CLI_EXIT_USAGE. */
void cli_bad_option(const char *cmd, int c, char **argv, const char *help);

/* cli_parse_time reads a time given in Unix seconds (`--at`): decimal
 * digits only, no sign. */
bool cli_parse_time(const char *s, int64_t *out);
/* cli_read_file reads the file `path` ("-": standard input) of at most `max`
 * bytes; on failure it prints "cvm <cmd>: cannot read <what> '<path>': why"
 * and returns CLI_EXIT_ERROR. */
int cli_read_file(const char *cmd, const char *what, const char *path, size_t max, uint8_t **buf,
                  size_t *len);
/* cli_load_cert reads a certificate file (DER, or PEM through the library's
 * reader) and hands back its DER (the caller frees it); on failure it prints
 * why, naming `what` (e.g. "--root certificate"), and returns CLI_EXIT_ERROR. */
int cli_load_cert(const char *cmd, const char *what, const char *path, uint8_t **der, size_t *der_len);

/* The collateral cache options (cmd_collateral.c), shared by `cvm
 * collateral`, `cvm quote verify` and `cvm attestation verify`. */
#define CLI_OPT_CACHE 0x180
#define CLI_OPT_INTEL_URL 0x181
#define CLI_OPT_AMD_URL 0x182
#define CLI_OPT_OFFLINE 0x183
#define CLI_OPT_REFRESH 0x184
#define CLI_OPT_TIMEOUT 0x185
#define CLI_OPT_REFRESH_AFTER 0x186
/* clang-format off */
#define CLI_CACHE_LONGOPTS                                                                                 \
	{"cache", required_argument, NULL, CLI_OPT_CACHE},                                                 \
	{"intel-url", required_argument, NULL, CLI_OPT_INTEL_URL},                                         \
	{"amd-url", required_argument, NULL, CLI_OPT_AMD_URL},                                             \
	{"offline", no_argument, NULL, CLI_OPT_OFFLINE},                                                   \
	{"refresh", no_argument, NULL, CLI_OPT_REFRESH},                                                   \
	{"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},                                             \
	{"refresh-after", required_argument, NULL, CLI_OPT_REFRESH_AFTER}
/* clang-format on */

struct cli_cache_args {
	const char *dir;       /* --cache; NULL: the default (cli_cache_open) */
	const char *intel_url; /* --intel-url; NULL: $CVM_INTEL_URL, else none */
	const char *amd_url;   /* --amd-url; NULL: $CVM_AMD_URL, else none */
	bool offline;          /* --offline */
	bool refresh;          /* --refresh: fetch even when current */
	unsigned timeout_ms;   /* --timeout; 0: the library's default */
	unsigned refresh_s;    /* --refresh-after; 0: the library's default */
	bool progress;         /* progress of long operations on stderr (not with -q) */
	char progress_cmd[64]; /* the command name the progress lines carry */
	char dir_used[4096];   /* the folder cli_cache_open opened */
};

struct cvm_cache;
struct cvm_cache_info;
/* cli_cache_option handles one of CLI_CACHE_LONGOPTS inside a getopt loop:
 * returns 1 if `c` was one, 0 if not, -1 on a bad value (reported). */
int cli_cache_option(const char *cmd, struct cli_cache_args *a, int c, const char *arg);
/* cli_cache_open opens the cache that `a` names, with the given trust
 * anchors (NULL: the built-in ones); on failure it prints why and returns
 * the exit code. */
int cli_cache_open(const char *cmd, struct cli_cache_args *a, const uint8_t *intel_root,
                   size_t intel_root_len, const uint8_t *amd_root, size_t amd_root_len,
                   struct cvm_cache **out);
/* cli_cache_info_text prints "collateral: <source>, N items, age S s,
 * expires T[, upstream URL][; stale: ...]"; cli_cache_info_json adds the
 * object "collateral" to `o` (0, or -1 when out of memory). */
void cli_cache_info_text(const struct cvm_cache_info *info);
struct json_t;
int cli_cache_info_json(struct json_t *o, const struct cvm_cache_info *info);

/* Commands. argv[0] is the command name. */
int cmd_quote(int argc, char **argv);
int cmd_eventlog(int argc, char **argv);
int cmd_sim(int argc, char **argv);
int cmd_tpm(int argc, char **argv);
int cmd_ima(int argc, char **argv);
int cmd_evidence(int argc, char **argv);
int cmd_cert(int argc, char **argv);
int cmd_attestation(int argc, char **argv);
int cmd_collateral(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_kms(int argc, char **argv);
int cmd_ct(int argc, char **argv);
/* cli_env_seal_for_app seals the dotenv file `path` to the env key of the
 * app `app_id_hex` that cvm-vmmd at `vmm_url` (http/https; its bearer
 * `token`, may be NULL) proxies from its KMS, after checking the KMS's
 * signature over it with the KMS's k256 key `kms_pub_hex` (cmd_app.c, as
 * `cvm app encrypt-env --kms ... --kms-pubkey`). Returns a CLI_EXIT_* code;
 * on success *blob is the sealed bytes (free()). */
int cli_env_seal_for_app(const char *vmm_url, const char *token, const char *app_id_hex,
                         const char *kms_pub_hex, const char *path, uint8_t **blob, size_t *blob_len);
/* `cvm kms meta` and `cvm kms app-key` (cmd_kms_client.c). */
int cli_kms_meta(int argc, char **argv);
int cli_kms_app_key(int argc, char **argv);
int cli_kms_sign_cert(int argc, char **argv);
/* `cvm kms bootstrap|rotate|revoke-epoch|epochs` (cmd_kms_admin.c). */
int cli_kms_bootstrap(int argc, char **argv);
int cli_kms_rotate(int argc, char **argv);
int cli_kms_revoke_epoch(int argc, char **argv);
int cli_kms_epochs(int argc, char **argv);
int cmd_app(int argc, char **argv);
int cmd_measure(int argc, char **argv);
/* `cvm vm`: a client of cvm-vmmd (cmd_vm.c). */
int cmd_vm(int argc, char **argv);
/* `cvm gateway`: the ingress gateway's routing (cmd_gateway.c). */
int cmd_gateway(int argc, char **argv);

/* Subcommands of `cvm cert`, one file each (cmd_cert.c dispatches). */
int cmd_ratls_make(int argc, char **argv);   /* cmd_ratls.c */
int cmd_ratls_show(int argc, char **argv);   /* cmd_ratls.c */
int cmd_ratls_verify(int argc, char **argv); /* cmd_ratls.c */
int cmd_ratls_fetch(int argc, char **argv);  /* cmd_fetch.c */
int cmd_cert_acme(int argc, char **argv);    /* cmd_acme.c */

/* Subcommands of `cvm kms` in files of their own (cmd_kms.c dispatches). */
int cmd_kms_audit(int argc, char **argv); /* cmd_kms_audit.c: verify, show */

#endif

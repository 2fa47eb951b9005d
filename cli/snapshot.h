/* What cmd_snapshot.c and cmd_verify.c share: the RA-TLS client that asks
 * cvm-agentd's TLS listener for evidence, the verification of that evidence,
 * and the snapshot document (docs/cli/cvm-snapshot.md). */
#ifndef CVM_CLI_SNAPSHOT_H
#define CVM_CLI_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <cvmkit/evidence.h>
#include <cvmkit/policy.h>
#include <cvmkit/report.h>

#include "net.h"

#include "collateral_opts.h"

#define SNAP_FORMAT "cvmkit-snapshot"
#define SNAP_VERSION 1
#define SNAP_FILE_MAX ((size_t)256 * 1024 * 1024) /* room for SNAP_FILES_ENTRIES_MAX */
#define SNAP_NONCE_LEN 32u
#define SNAP_BOOT_PCRS 10u /* PCRs 0..9: firmware, boot loader, kernel */

/* struct snap_remote is where the evidence comes from and what it is
 * verified against (the options both commands take). */
struct snap_remote {
	const char *url; /* https://HOST:PORT as given */
	char host[256];
	char port[8];
	struct cli_coll coll; /* --collateral DIR (holding tdx/ and/or snp/), or the cache */
	const char *root;     /* the anchor (DER or PEM): Intel's root CA for TDX, the ARK for
	                       * SEV-SNP; NULL: Intel's own, AMD's ARKs */
	const char *policy;   /* policy file; NULL: the caller's default */
	int64_t at;
};

/* struct snap_evidence is one fresh, verified (or rejected) bundle. */
struct snap_evidence {
	uint8_t nonce[SNAP_NONCE_LEN];
	uint8_t *bundle; /* the reply body: the bundle's JSON */
	size_t bundle_len;
	uint8_t agent_key[32];               /* SHA-256 of the TLS certificate's SPKI */
	enum cvm_evidence_platform platform; /* of the agent's certificate (0 before the handshake) */
	bool from_cache;                     /* the collateral came from the cache: coll_info */
	struct cvm_cache_info coll_info;
	struct cvm_evidence *ev;
	struct cvm_evidence_result res;
	struct cvm_report rep;
	int verdict;        /* cvm_evidence_verify's return */
	bool simulated;     /* the evidence chains to a simulated root */
	char rejected[768]; /* why the TLS peer was rejected (snap_fetch returned 3) */
	/* milliseconds: */
	double t_setup;     /* collateral, roots, policy: cvmkit */
	double t_handshake; /* TCP + TLS 1.3 + the certificate's collateral and RA-TLS check */
	double t_check;     /* within the handshake: collateral + RA-TLS check: cvmkit */
	double t_request;   /* GetEvidence: the guest's quotes + the network */
	double t_verify;    /* parse + cvm_evidence_verify: cvmkit */
};

/* snap_parse_url splits "https://HOST:PORT" into rm->host and rm->port. */
bool snap_parse_url(struct snap_remote *rm);

/* snap_fetch connects to rm->url with the RA-TLS client (TDX: the
 * certificate key must be the one cvm-agentd recorded in RTMR3; SEV-SNP: the
 * report must bind it; the collateral of the certificate's quote or report
 * comes from rm->coll inside the handshake), sends GetEvidence with
 * a fresh random nonce and verifies the bundle with cvm_evidence_verify
 * (TPM and IMA required) under `policy`. It prints what went wrong as
 * "cvm <cmd>: ..." and returns a CLI exit code: 0 when it has a verdict in
 * e->verdict (accepted or not), 1 for an error (printed), 3 when the TLS
 * peer was rejected (why in e->rejected, for the caller to print). Free `e` with snap_evidence_cleanup.
 */
int snap_fetch(const char *cmd, const struct snap_remote *rm, const struct cvm_policy *policy,
               struct snap_evidence *e);
void snap_evidence_cleanup(struct snap_evidence *e);

/* snap_verdict_reason writes why e->verdict rejected the evidence; for an
 * SEV-SNP chain that does not end in the anchor (`root_given`: --root, else
 * AMD's built-in ARKs) it says that it is not anchored in the pinned ARK. */
void snap_verdict_reason(const struct snap_evidence *e, bool root_given, char *out, size_t cap);

/* snap_document makes the snapshot document of verified evidence `e`
 * (docs/cli/cvm-snapshot.md); `policy_doc` is the policy file's JSON (NULL:
 * the strict defaults). Returns a new reference, or NULL with `why` set. */
json_t *snap_document(const struct snap_remote *rm, const struct snap_evidence *e, json_t *policy_doc,
                      char *why, size_t why_len);

/* snap_load reads and checks a snapshot file: its format, version and the
 * type and length of every field cvm verify uses. Returns a new reference,
 * or NULL with `why` set. */
json_t *snap_load(const char *path, char *why, size_t why_len);

/* snap_load_policy reads the policy file `path` into `p` (the strict
 * defaults when `path` is NULL) and its JSON into *doc (NULL then). */
int snap_load_policy(const char *cmd, const char *path, struct cvm_policy *p, json_t **doc);

/* snap_entry_key writes "DIGEST PATH" of an IMA entry as the snapshot lists
 * it, for sorted lookups. */
const char *snap_entry_key(json_t *entry, char *buf, size_t cap);

/* snap_dial connects to rm's HOST:PORT (a socket, or -1 after printing why),
 * for snapshot_files.c too; the requests and answers go through net.h. */
#define SNAP_NET_TIMEOUT_S 60
#define SNAP_REPLY_MAX (CVM_TLS_REPLY_HEADERS_MAX + CVM_EVIDENCE_JSON_MAX) /* a GetEvidence answer */
int snap_dial(const char *cmd, const struct snap_remote *rm);

/* snapshot_files.c: the optional "files" section (cvm snapshot --files;
 * docs/cli/cvm-snapshot.md). */
#define SNAP_FILES_ENTRIES_MAX 1000000u /* (path, digest) pairs a snapshot holds */
#define SNAP_FILES_WAIT_MAX_S 86400     /* how long cvm snapshot follows a walk */

#define SNAP_FILES_PATH_TEXT_MAX ((size_t)4 * 4096) /* an escaped path: 4096 bytes as \xNN */

/* snapshot_files_parse.c: what reads the agent's reply and the section. */
/* snap_files_text_ok accepts `n` bytes of printable ASCII without space or
 * NUL (an escaped path), 1 to `max` of them. */
bool snap_files_text_ok(const char *s, size_t n, size_t max);
/* snap_files_page_take checks one SnapshotFiles page (`entries` of
 * {"path", "digest"} with `algo` digests of `dlen` bytes) and appends its
 * pairs to keys[] (room for `total`) as new "DIGEST PATH" strings, *count
 * counting them. Returns 0, CVM_E_NOMEM or CVM_E_FORMAT with `why`; the
 * caller frees keys[0 .. *count). */
int snap_files_page_take(json_t *page, const char *algo, size_t dlen, char **keys, size_t *count,
                         size_t total, char *why, size_t why_len);

/* snap_files_add starts (or follows) the agent's file walk over a TLS
 * connection to the key `e` was verified with (e->agent_key), shows its
 * progress on stderr, and puts the finished walk's pairs into `doc` as
 * "files". A walk that fails, or a set that does not check, writes
 * nothing: it prints why and returns the exit code. */
int snap_files_add(const char *cmd, const struct snap_remote *rm, const struct snap_evidence *e, json_t *doc);
/* snap_files_check checks the "files" section of a snapshot, when it has
 * one: the algorithm, the counts, and entries of "ALGO:HEX PATH" strings
 * in strictly increasing order. Returns 0 or CVM_E_FORMAT with `why`. */
int snap_files_check(json_t *doc, char *why, size_t why_len);
/* snap_files_show prints the section's summary (with verbose, its pairs). */
void snap_files_show(json_t *doc, int verbose);
/* snap_files_diff prints the pairs only in a or only in b; returns their
 * number. */
int snap_files_diff(json_t *a, json_t *b);
/* snap_files_has says whether the snapshot's file set holds `key`
 * ("DIGEST PATH", as snap_entry_key writes an IMA entry's). */
bool snap_files_has(json_t *doc, const char *key);

/* snap_escape_path writes a path (an IMA event name) as the snapshot does:
 * bytes outside 0x21..0x7e, and the backslash, as \xNN; cut to `cap`. */
void snap_escape_path(const uint8_t *p, size_t n, char *out, size_t cap);

/* Cosmian VM's snapshot file (snapshot_cosmian.c; docs/cli/cvm-snapshot.md
 * "Cosmian VM's snapshots"). snap_cosmian_is tells a Cosmian document from
 * cvmkit's; snap_cosmian_check checks its fields (returns `doc`, or NULL
 * with `why`); snap_cosmian_load reads and checks a file (a new reference;
 * *is_cosmian tells whether it looked like one, also when it failed);
 * snap_cosmian_print prints it; snap_cosmian_apply checks the VM's verified
 * evidence `e` against its TEE policy and, when every field holds, adds its
 * (path, digest) pairs to `snapshot`'s reference set and records where they
 * came from (returns 0, CVM_E_MISMATCH with `why` naming each field, or
 * CVM_E_NOMEM). */
#define SNAP_COSMIAN_FILEHASHES_MAX 2000000u /* pairs */
#define SNAP_COSMIAN_PATH_MAX 4096u          /* bytes of one path */
bool snap_cosmian_is(json_t *doc);
json_t *snap_cosmian_check(json_t *doc, char *why, size_t why_len);
/* snap_cosmian_digest_algo names a digest's hash by its hex length (40, 64,
 * 96, 128), or NULL. */
const char *snap_cosmian_digest_algo(size_t hex_len);
json_t *snap_cosmian_load(const char *path, bool *is_cosmian, char *why, size_t why_len);
void snap_cosmian_print(json_t *doc, const char *path, bool verbose);
int snap_cosmian_apply(json_t *cos, const char *path, const struct snap_evidence *e, json_t *snapshot,
                       char *why, size_t why_len);

#endif

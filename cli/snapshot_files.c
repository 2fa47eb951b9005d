/* The snapshot's optional "files" section (docs/cli/cvm-snapshot.md): cvm
 * snapshot --files starts (or follows) cvm-agentd's file walk, draws its
 * progress, pages through the result and stores it; cvm snapshot show and
 * diff print it; cvm verify looks IMA entries up in it.
 *
 * The walk is asked for over new TLS connections to the agent's listener
 * that accept exactly the key whose RA-TLS certificate and evidence
 * snap_fetch has just verified (e->agent_key, the SHA-256 of its SPKI,
 * which RTMR3 records): the pairs come from the same attested agent as the
 * evidence, or not at all. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cvmkit/crypto.h>
#include <cvmkit/err.h>

#include "cli.h"
#include "output.h"
#include "snapshot.h"

#define FILES_REPLY_MAX ((size_t)16 * 1024 * 1024) /* one SnapshotFiles answer, bytes */
#define FILES_PATH_TEXT_MAX SNAP_FILES_PATH_TEXT_MAX
#define FILES_LIST_MAX 32u /* roots, excluded trees */
#define FILES_POLL_MS 500
#define FILES_LINE_EVERY_MS 5000 /* progress lines when stderr is not a terminal */

/* ---- the pinned TLS connection ------------------------------------------------ */

/* pin_check accepts the peer only when its key is the one e->agent_key
 * names; the certificate's RA-TLS content was checked with it already. */
static int pin_check(X509_STORE_CTX *sc, void *arg)
{
	const uint8_t *want = arg;
	X509 *leaf = X509_STORE_CTX_get0_cert(sc);
	unsigned char *spki = NULL;
	uint8_t got[32];
	int n;

	n = leaf != NULL ? i2d_PUBKEY(X509_get0_pubkey(leaf), &spki) : -1;
	if (n <= 0) {
		X509_STORE_CTX_set_error(sc, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	cvm_sha256(spki, (size_t)n, got);
	OPENSSL_free(spki);
	if (CRYPTO_memcmp(got, want, sizeof(got)) != 0) {
		X509_STORE_CTX_set_error(sc, X509_V_ERR_APPLICATION_VERIFICATION);
		return 0;
	}
	return 1;
}

/* files_call sends SnapshotFiles with `body` and parses the JSON object it
 * answers (status 200) into *out. Returns a CLI exit code, printing why. */
static int files_call(const char *cmd, const struct snap_remote *rm, const struct snap_evidence *e,
                      const char *body, json_t **out)
{
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	uint8_t *reply = NULL;
	size_t reply_len = 0;
	uint8_t key[32];
	json_error_t jerr;
	int fd = -1, status = 0, r, rc = CLI_EXIT_ERROR;

	*out = NULL;
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) {
		cli_err(cmd, "cannot make the TLS context");
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	memcpy(key, e->agent_key, sizeof(key));
	SSL_CTX_set_cert_verify_callback(ctx, pin_check, key);
	fd = snap_dial(cmd, rm);
	if (fd < 0)
		goto out;
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		cli_err(cmd, "out of memory");
		goto out;
	}
	if (SSL_connect(ssl) != 1) {
		cli_err(cmd,
		        "TLS 1.3 handshake with %s for the file walk failed: %s (the file set is only taken "
		        "from the agent key whose evidence was verified)",
		        rm->url,
		        SSL_get_verify_result(ssl) != X509_V_OK
		            ? "the agent's key is not the one just verified"
		            : "the connection closed");
		goto out;
	}
	if (!cvm_tls_post_json(ssl, rm->host, "/SnapshotFiles", body)) {
		cli_err(cmd, "cannot send SnapshotFiles to %s", rm->url);
		goto out;
	}
	r = cvm_tls_read_reply(ssl, FILES_REPLY_MAX, &status, &reply, &reply_len);
	if (r != CVM_OK) {
		cli_err(cmd, "cannot read the SnapshotFiles answer of %s: %s", rm->url, cvm_strerror(r));
		goto out;
	}
	if (status != 200) {
		json_t *j = json_loadb((const char *)reply, reply_len, 0, &jerr);
		const char *msg = json_string_value(json_object_get(j, "error"));
		char text[512];

		out_sanitize(msg != NULL ? msg : (const char *)reply, text, sizeof(text));
		cli_err(cmd, "%s answered SnapshotFiles with HTTP %d: %s%s", rm->url, status, text,
		        status == 404 ? " (this agent has no file walk: update it)" : "");
		json_decref(j);
		goto out;
	}
	*out = json_loadb((const char *)reply, reply_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		cli_err(cmd, "%s answered SnapshotFiles with something that is not a JSON object: %s",
		        rm->url, jerr.text);
		goto out;
	}
	rc = CLI_EXIT_OK;
out:
	free(reply);
	cli_net_close(ssl, ctx, fd);
	return rc;
}

/* ---- the status and the progress ------------------------------------------------ */

struct walk_status {
	const char *state; /* borrowed from the reply */
	json_int_t generation, files_total, bytes_total, files_hashed, bytes_hashed, skipped;
	bool already_running;
};

static bool get_count(json_t *o, const char *key, json_int_t *out)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = json_integer_value(v);
	return true;
}

static bool status_read(json_t *o, struct walk_status *s)
{
	memset(s, 0, sizeof(*s));
	s->state = json_string_value(json_object_get(o, "state"));
	s->already_running = json_is_true(json_object_get(o, "already_running"));
	if (s->state == NULL)
		return false;
	if (strcmp(s->state, "idle") == 0)
		return true;
	return get_count(o, "generation", &s->generation) && get_count(o, "files_total", &s->files_total) &&
	       get_count(o, "bytes_total", &s->bytes_total) &&
	       get_count(o, "files_hashed", &s->files_hashed) &&
	       get_count(o, "bytes_hashed", &s->bytes_hashed) && get_count(o, "skipped", &s->skipped);
}

static double now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int percent(const struct walk_status *s)
{
	if (s->bytes_total > 0)
		return (int)((double)s->bytes_hashed * 100.0 / (double)s->bytes_total);
	if (s->files_total > 0)
		return (int)((double)s->files_hashed * 100.0 / (double)s->files_total);
	return 0;
}

static void progress(const struct walk_status *s, bool tty, bool done)
{
	const double mib = 1024.0 * 1024.0;
	int pc = done ? 100 : percent(s);

	if (pc > 100)
		pc = 100;
	if (tty) {
		char bar[31];
		int fill = pc * 30 / 100;

		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '-', (size_t)(30 - fill));
		bar[30] = '\0';
		fprintf(stderr, "\rfiles [%s] %3d%% %lld/%lld files, %.1f/%.1f MiB, %lld skipped%s", bar, pc,
		        (long long)s->files_hashed, (long long)s->files_total, (double)s->bytes_hashed / mib,
		        (double)s->bytes_total / mib, (long long)s->skipped, done ? "\n" : "  ");
	} else {
		fprintf(stderr,
		        "cvm snapshot: file walk %d%% (%lld of %lld files, %.1f of %.1f MiB, %lld skipped)\n",
		        pc, (long long)s->files_hashed, (long long)s->files_total,
		        (double)s->bytes_hashed / mib, (double)s->bytes_total / mib, (long long)s->skipped);
	}
	(void)fflush(stderr);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		continue;
}

/* ---- the entries ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* list_copy checks an array of escaped paths from the agent and copies it. */
static json_t *list_copy(json_t *arr)
{
	json_t *out = json_array(), *v;
	size_t i;

	if (!json_is_array(arr) || json_array_size(arr) > FILES_LIST_MAX || out == NULL) {
		json_decref(out);
		return NULL;
	}
	json_array_foreach(arr, i, v)
	{
		const char *s = json_string_value(v);

		if (s == NULL || !snap_files_text_ok(s, strlen(s), FILES_PATH_TEXT_MAX) || s[0] != '/' ||
		    json_array_append_new(out, json_string(s)) != 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* fetch_pages pages through the finished walk `gen` into a sorted array of
 * "DIGEST PATH" strings; the first page's skipped files go to *skips. */
static int fetch_pages(const char *cmd, const struct snap_remote *rm, const struct snap_evidence *e,
                       json_int_t gen, const char *algo, json_t **out, json_t **skips)
{
	enum cvm_digest_alg alg;
	json_t *page = NULL, *arr = NULL, *v;
	char **keys = NULL, body[128], why[256] = "";
	size_t count = 0, total = 0, dlen;
	json_int_t offset = 0, cnt;
	int rc = CLI_EXIT_ERROR;

	*out = NULL;
	*skips = NULL;
	if (cvm_digest_from_name(algo, &alg) != CVM_OK || alg == CVM_DIGEST_SM3_256) {
		cli_err(cmd, "the agent hashed the files with '%.32s', which cvm does not read", algo);
		return CLI_EXIT_ERROR;
	}
	dlen = cvm_digest_len(alg);
	for (;;) {
		(void)snprintf(body, sizeof(body), "{\"offset\": %lld, \"generation\": %lld}",
		               (long long)offset, (long long)gen);
		json_decref(page);
		rc = files_call(cmd, rm, e, body, &page);
		if (rc != CLI_EXIT_OK)
			goto out;
		rc = CLI_EXIT_ERROR;
		if (!get_count(page, "count", &cnt) || cnt > (json_int_t)SNAP_FILES_ENTRIES_MAX) {
			(void)snprintf(
			    why, sizeof(why),
			    "its \"count\" is missing or over the %u pairs a snapshot holds (narrow the "
			    "agent's [snapshot] roots)",
			    SNAP_FILES_ENTRIES_MAX);
			goto bad;
		}
		if (keys == NULL) {
			total = (size_t)cnt;
			keys = calloc(total + 1, sizeof(*keys));
			v = json_object_get(page, "skipped_entries");
			*skips = json_is_array(v) ? json_incref(v) : json_array();
			if (keys == NULL || *skips == NULL) {
				cli_err(cmd, "out of memory");
				goto out;
			}
		} else if ((size_t)cnt != total) {
			(void)snprintf(why, sizeof(why), "the count changed between pages");
			goto bad;
		}
		if (snap_files_page_take(page, algo, dlen, keys, &count, total, why, sizeof(why)) != CVM_OK)
			goto bad;
		v = json_object_get(page, "next_offset");
		if (json_is_null(v))
			break;
		if (!json_is_integer(v) || json_integer_value(v) <= offset ||
		    (size_t)json_integer_value(v) != count) {
			(void)snprintf(why, sizeof(why),
			               "\"next_offset\" does not follow the entries received");
			goto bad;
		}
		offset = json_integer_value(v);
	}
	if (count != total) {
		(void)snprintf(why, sizeof(why), "%zu entries received, %zu counted", count, total);
		goto bad;
	}
	qsort(keys, count, sizeof(*keys), cmp_str);
	arr = json_array();
	for (size_t i = 0; arr != NULL && i < count; i++) {
		if (i > 0 && strcmp(keys[i], keys[i - 1]) == 0) {
			(void)snprintf(why, sizeof(why), "a (path, digest) pair comes twice");
			goto bad;
		}
		if (json_array_append_new(arr, json_string(keys[i])) != 0) {
			json_decref(arr);
			arr = NULL;
		}
	}
	if (arr == NULL) {
		cli_err(cmd, "out of memory");
		goto out;
	}
	*out = arr;
	arr = NULL;
	rc = CLI_EXIT_OK;
	goto out;
bad:
	cli_err(cmd, "the agent's file set is malformed: %s; no snapshot written", why);
out:
	for (size_t i = 0; keys != NULL && i < count; i++)
		free(keys[i]);
	free(keys);
	json_decref(arr);
	json_decref(page);
	if (rc != CLI_EXIT_OK) {
		json_decref(*skips);
		*skips = NULL;
	}
	return rc;
}

/* skips_copy keeps the agent's skipped files as {"path", "reason"} with
 * checked strings. */
static json_t *skips_copy(json_t *arr)
{
	json_t *out = json_array(), *v;
	size_t i;

	json_array_foreach(arr, i, v)
	{
		const char *p = json_string_value(json_object_get(v, "path"));
		const char *why = json_string_value(json_object_get(v, "reason"));
		char text[256];

		if (out == NULL || p == NULL || why == NULL ||
		    !snap_files_text_ok(p, strlen(p), FILES_PATH_TEXT_MAX))
			break;
		out_sanitize(why, text, sizeof(text));
		if (json_array_append_new(out, json_pack("{s:s,s:s}", "path", p, "reason", text)) != 0)
			break;
	}
	if (out != NULL && json_array_size(out) != json_array_size(arr)) {
		json_decref(out);
		out = NULL;
	}
	return out;
}

int snap_files_add(const char *cmd, const struct snap_remote *rm, const struct snap_evidence *e, json_t *doc)
{
	struct walk_status s;
	json_t *st = NULL, *entries = NULL, *skips = NULL, *sec = NULL, *skipped = NULL;
	bool tty = isatty(STDERR_FILENO) == 1 && !cli_opts.quiet;
	double start = now_ms(), last_line = 0;
	json_int_t gen;
	char text[512];
	int rc, bad = 0;

	rc = files_call(cmd, rm, e, "{\"start\": true}", &st);
	if (rc != CLI_EXIT_OK)
		return rc;
	rc = CLI_EXIT_ERROR;
	if (!status_read(st, &s) || strcmp(s.state, "idle") == 0) {
		cli_err(cmd, "the agent's SnapshotFiles answer has no walk state and counters");
		goto out;
	}
	gen = s.generation;
	if (s.already_running && !cli_opts.quiet)
		fprintf(stderr,
		        "cvm snapshot: a file walk was already running on the agent (generation %lld); "
		        "following it\n",
		        (long long)gen);
	for (;;) {
		if (!status_read(st, &s) || strcmp(s.state, "idle") == 0) {
			cli_err(cmd, "the agent's SnapshotFiles answer has no walk state and counters");
			goto out;
		}
		if (s.generation != gen) {
			cli_err(cmd,
			        "the agent's file walk was started again by another client (generation %lld, "
			        "ours %lld); run cvm snapshot --files again",
			        (long long)s.generation, (long long)gen);
			goto out;
		}
		if (strcmp(s.state, "failed") == 0) {
			out_sanitize(json_string_value(json_object_get(st, "error")) != NULL
			                 ? json_string_value(json_object_get(st, "error"))
			                 : "(no reason given)",
			             text, sizeof(text));
			if (tty)
				fprintf(stderr, "\n");
			cli_err(cmd, "the agent's file walk failed: %s; no snapshot written", text);
			goto out;
		}
		if (strcmp(s.state, "done") == 0)
			break;
		if (strcmp(s.state, "running") != 0) {
			cli_err(cmd, "the agent's file walk is in an unknown state");
			goto out;
		}
		if (tty) {
			progress(&s, true, false);
		} else if (!cli_opts.quiet && now_ms() - last_line >= FILES_LINE_EVERY_MS) {
			progress(&s, false, false);
			last_line = now_ms();
		}
		if (now_ms() - start > (double)SNAP_FILES_WAIT_MAX_S * 1000.0) {
			cli_err(cmd, "the agent's file walk did not end within %d s; no snapshot written",
			        SNAP_FILES_WAIT_MAX_S);
			goto out;
		}
		sleep_ms(FILES_POLL_MS);
		json_decref(st);
		rc = files_call(cmd, rm, e, "{}", &st);
		if (rc != CLI_EXIT_OK)
			goto out;
		rc = CLI_EXIT_ERROR;
	}
	if (!cli_opts.quiet)
		progress(&s, tty, true);
	rc = fetch_pages(cmd, rm, e, gen,
	                 json_string_value(json_object_get(st, "algo")) != NULL
	                     ? json_string_value(json_object_get(st, "algo"))
	                     : "",
	                 &entries, &skips);
	if (rc != CLI_EXIT_OK)
		goto out;
	rc = CLI_EXIT_ERROR;
	skipped = skips_copy(skips);
	sec = json_object();
	if (sec == NULL || skipped == NULL) {
		cli_err(cmd,
		        "the agent's list of skipped files is malformed or too large; no snapshot written");
		goto out;
	}
	bad |= out_jset_str(sec, "algo", json_string_value(json_object_get(st, "algo")));
	bad |= out_jset(sec, "roots", list_copy(json_object_get(st, "roots")));
	bad |= out_jset(sec, "excluded", list_copy(json_object_get(st, "excluded")));
	bad |= out_jset_int(sec, "count", (long long)json_array_size(entries));
	bad |= out_jset_int(sec, "skipped", (long long)s.skipped);
	bad |= out_jset(sec, "skipped_entries", skipped);
	skipped = NULL;
	bad |= out_jset(sec, "entries", entries);
	entries = NULL;
	if (bad != 0) {
		cli_err(cmd, "the agent's roots or excluded trees are malformed; no snapshot written");
		goto out;
	}
	if (out_jset(doc, "files", sec) != 0) {
		sec = NULL;
		cli_err(cmd, "out of memory");
		goto out;
	}
	sec = NULL;
	rc = CLI_EXIT_OK;
out:
	json_decref(sec);
	json_decref(skipped);
	json_decref(skips);
	json_decref(entries);
	json_decref(st);
	return rc;
}

/* ---- reading, showing and comparing the section -------------------------------------- */

void snap_files_show(json_t *doc, int verbose)
{
	json_t *f = json_object_get(doc, "files"), *v;
	char text[FILES_PATH_TEXT_MAX + 256];
	size_t i;

	if (f == NULL) {
		printf("files: not recorded (cvm snapshot --files records a digest of every file)\n");
		return;
	}
	printf("files: %zu (path, digest) pairs (%s), %lld skipped, walked from",
	       json_array_size(json_object_get(f, "entries")), json_string_value(json_object_get(f, "algo")),
	       (long long)json_integer_value(json_object_get(f, "skipped")));
	json_array_foreach(json_object_get(f, "roots"), i, v)
	{
		out_sanitize(json_string_value(v) != NULL ? json_string_value(v) : "?", text, sizeof(text));
		printf(" %s", text);
	}
	printf("\n");
	if (verbose <= 0)
		return;
	json_array_foreach(json_object_get(f, "skipped_entries"), i, v)
	{
		char why[256];
		const char *p = json_string_value(json_object_get(v, "path"));
		const char *r = json_string_value(json_object_get(v, "reason"));

		out_sanitize(p != NULL ? p : "?", text, sizeof(text));
		out_sanitize(r != NULL ? r : "?", why, sizeof(why));
		printf("  skipped %s (%s)\n", text, why);
	}
	json_array_foreach(json_object_get(f, "entries"), i, v)
	{
		out_sanitize(json_string_value(v), text, sizeof(text)); /* snap_files_check: a string */
		printf("  %s\n", text);
	}
}

int snap_files_diff(json_t *a, json_t *b)
{
	json_t *ea = json_object_get(json_object_get(a, "files"), "entries");
	json_t *eb = json_object_get(json_object_get(b, "files"), "entries");
	size_t na = json_array_size(ea), nb = json_array_size(eb), i = 0, j = 0;
	char text[FILES_PATH_TEXT_MAX + 256];
	int n = 0;

	if ((ea == NULL) != (eb == NULL)) {
		printf("changed: files: recorded in %s only (%zu pairs)\n", ea != NULL ? "A" : "B", na + nb);
		return 1;
	}
	/* snap_files_check: both sorted, so one merge pass */
	while (i < na || j < nb) {
		const char *sa = i < na ? json_string_value(json_array_get(ea, i)) : NULL;
		const char *sb = j < nb ? json_string_value(json_array_get(eb, j)) : NULL;
		int c = sa == NULL ? 1 : sb == NULL ? -1 : strcmp(sa, sb);

		if (c == 0) {
			i++;
			j++;
			continue;
		}
		out_sanitize(c < 0 ? sa : sb, text, sizeof(text));
		printf("files: %s %s\n", c < 0 ? "only in A:" : "only in B:", text);
		n++;
		if (c < 0)
			i++;
		else
			j++;
	}
	return n;
}

bool snap_files_has(json_t *doc, const char *key)
{
	json_t *arr = json_object_get(json_object_get(doc, "files"), "entries");
	size_t lo = 0, hi = json_array_size(arr);

	/* snap_files_check: sorted strings, so a binary search */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const char *s = json_string_value(json_array_get(arr, mid));
		int c = s != NULL ? strcmp(key, s) : -1;

		if (c == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

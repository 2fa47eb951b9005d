/* The integration driver of lib/etcd (tests/integration/etcd_cluster.sh):
 * each subcommand runs one part of the test against a real etcd cluster and
 * exits 0 only if every check held, printing "FAIL: ..." otherwise.
 *
 *   etcd_drive basic EPS      every call of the API once, with its results
 *   etcd_drive race EPS       32 threads compete for 16 IP leases by txn
 *   etcd_drive lease EPS      a lease kept alive survives, a dropped one expires
 *   etcd_drive watch EPS      puts and deletes arrive in order; a watch resumes
 *   etcd_drive bench EPS      put and txn requests/s at concurrency 1 and 32
 *   etcd_drive failover EPS GO  prints the endpoint in use, waits for the file
 *                             GO (the script kills that member), then goes on
 *   etcd_drive check EPS      the keys failover wrote are all there
 *   etcd_drive auth EPS USER PASSWORD   auth on, tokens that expire
 *   etcd_drive tls EPS CA CERT KEY      https with a client certificate
 * EPS is a comma-separated list of endpoints. */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cvmkit/err.h>
#include <cvmkit/etcd.h>

static const char *eps[CVM_ETCD_ENDPOINTS_MAX];
static size_t n_eps;

#define CHECK(cond, ...)                                                                 \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "FAIL: %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                    \
			fprintf(stderr, "\n");                                           \
			exit(1);                                                         \
		}                                                                        \
	} while (0)
#define OK(r, cl) CHECK((r) == CVM_OK, "%s: %s", cvm_strerror(r), cvm_etcd_errmsg(cl))

static struct cvm_etcd *client(long timeout_ms)
{
	struct cvm_etcd_opts o = {.endpoints = eps, .n_endpoints = n_eps, .timeout_ms = timeout_ms};
	struct cvm_etcd *cl = NULL;
	int r = cvm_etcd_new(&o, &cl);

	CHECK(r == CVM_OK, "cvm_etcd_new: %s", cvm_strerror(r));
	return cl;
}

static void split_eps(char *s)
{
	char *save = NULL;

	for (char *t = strtok_r(s, ",", &save); t != NULL && n_eps < CVM_ETCD_ENDPOINTS_MAX;
	     t = strtok_r(NULL, ",", &save))
		eps[n_eps++] = t;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void put_str(struct cvm_etcd *cl, const char *k, const char *v)
{
	int r = cvm_etcd_put(cl, k, v, strlen(v), 0, NULL, NULL);

	OK(r, cl);
}

static int run_basic(void)
{
	struct cvm_etcd *cl = client(0);
	struct cvm_etcd_kv kv, prev;
	struct cvm_etcd_kvs kvs;
	struct cvm_etcd_range_opts ro = {0};
	struct cvm_etcd_txn_result tr;
	struct cvm_etcd_lease_info li;
	uint64_t member, leader;
	char version[32];
	int64_t rev, rev2, n, lease, ttl;
	bool found;
	int r;

	r = cvm_etcd_status(cl, &member, &leader, version, sizeof(version));
	OK(r, cl);
	CHECK(member != 0 && leader != 0 && strncmp(version, "3.", 2) == 0, "status %s", version);
	r = cvm_etcd_delete(cl, "basic/", true, NULL);
	OK(r, cl);
	r = cvm_etcd_get(cl, "basic/a", &kv, &found, &rev);
	OK(r, cl);
	CHECK(!found && rev > 0 && kv.key == NULL, "absent key found");
	r = cvm_etcd_put(cl, "basic/a", "one", 3, 0, &prev, &rev);
	OK(r, cl);
	CHECK(prev.key == NULL && rev > 0, "prev of a new key");
	r = cvm_etcd_put(cl, "basic/a", "two", 3, 0, &prev, &rev2);
	OK(r, cl);
	CHECK(prev.key != NULL && prev.value_len == 3 && memcmp(prev.value, "one", 3) == 0 &&
	          rev2 == rev + 1 && prev.mod_revision == rev,
	      "prev_kv");
	cvm_etcd_kv_cleanup(&prev);
	r = cvm_etcd_get(cl, "basic/a", &kv, &found, NULL);
	OK(r, cl);
	CHECK(found && strcmp(kv.key, "basic/a") == 0 && kv.value_len == 3 &&
	          memcmp(kv.value, "two", 3) == 0 && kv.version == 2 && kv.create_revision == rev &&
	          kv.mod_revision == rev2,
	      "get");
	cvm_etcd_kv_cleanup(&kv);
	/* Binary values, and an empty one. */
	r = cvm_etcd_put(cl, "basic/bin", "\0\xff\n", 3, 0, NULL, NULL);
	OK(r, cl);
	r = cvm_etcd_put(cl, "basic/empty", NULL, 0, 0, NULL, NULL);
	OK(r, cl);
	r = cvm_etcd_get(cl, "basic/bin", &kv, &found, NULL);
	OK(r, cl);
	CHECK(found && kv.value_len == 3 && memcmp(kv.value, "\0\xff\n", 3) == 0, "binary value");
	cvm_etcd_kv_cleanup(&kv);
	r = cvm_etcd_get(cl, "basic/empty", &kv, &found, NULL);
	OK(r, cl);
	CHECK(found && kv.value_len == 0, "empty value");
	cvm_etcd_kv_cleanup(&kv);
	put_str(cl, "basicx", "not under the prefix");
	r = cvm_etcd_range_prefix(cl, "basic/", NULL, &kvs);
	OK(r, cl);
	CHECK(kvs.kv_count == 3 && kvs.count == 3 && !kvs.more && strcmp(kvs.kvs[0].key, "basic/a") == 0 &&
	          strcmp(kvs.kvs[1].key, "basic/bin") == 0 && strcmp(kvs.kvs[2].key, "basic/empty") == 0,
	      "range of 3: %zu", kvs.kv_count);
	cvm_etcd_kvs_cleanup(&kvs);
	ro.limit = 2;
	ro.keys_only = true;
	r = cvm_etcd_range_prefix(cl, "basic/", &ro, &kvs);
	OK(r, cl);
	CHECK(kvs.kv_count == 2 && kvs.count == 3 && kvs.more && kvs.kvs[0].value == NULL,
	      "limit + keys_only");
	cvm_etcd_kvs_cleanup(&kvs);
	ro = (struct cvm_etcd_range_opts){.revision = rev};
	r = cvm_etcd_range_prefix(cl, "basic/", &ro, &kvs);
	OK(r, cl);
	CHECK(kvs.kv_count == 1 && memcmp(kvs.kvs[0].value, "one", 3) == 0, "range at an old revision");
	cvm_etcd_kvs_cleanup(&kvs);
	/* txn: both branches, every op and compare kind. */
	{
		struct cvm_etcd_cmp cmps[] = {
		    {.key = "basic/a",
		     .target = CVM_ETCD_TARGET_VALUE,
		     .result = CVM_ETCD_EQUAL,
		     .value = "two",
		     .value_len = 3},
		    {.key = "basic/a",
		     .target = CVM_ETCD_TARGET_VERSION,
		     .result = CVM_ETCD_GREATER,
		     .number = 1},
		    {.key = "basic/a",
		     .target = CVM_ETCD_TARGET_MOD,
		     .result = CVM_ETCD_LESS,
		     .number = rev2 + 1},
		    {.key = "basic/a",
		     .target = CVM_ETCD_TARGET_LEASE,
		     .result = CVM_ETCD_EQUAL,
		     .number = 0},
		    {.key = "basic/",
		     .is_prefix = true,
		     .target = CVM_ETCD_TARGET_CREATE,
		     .result = CVM_ETCD_NOT_EQUAL,
		     .number = 0},
		};
		struct cvm_etcd_op succ[] = {
		    {.type = CVM_ETCD_OP_PUT, .key = "basic/t", .value = "x", .value_len = 1},
		    {.type = CVM_ETCD_OP_RANGE, .key = "basic/a"},
		    {.type = CVM_ETCD_OP_DELETE, .key = "basic/bin"},
		};
		struct cvm_etcd_op fail[] = {{.type = CVM_ETCD_OP_RANGE, .key = "basic/", .is_prefix = true}};
		struct cvm_etcd_txn t = {cmps, 5, succ, fail, 3, 1};

		r = cvm_etcd_txn(cl, &t, &tr);
		OK(r, cl);
		CHECK(tr.succeeded && tr.result_count == 3 && tr.results[1].range.kv_count == 1 &&
		          tr.results[2].deleted == 1 && tr.revision > rev2,
		      "txn success branch");
		cvm_etcd_txn_result_cleanup(&tr);
		/* Now the value compare fails: the failure branch reads the prefix. */
		cmps[0].value = "one";
		r = cvm_etcd_txn(cl, &t, &tr);
		OK(r, cl);
		CHECK(!tr.succeeded && tr.result_count == 1 && tr.results[0].type == CVM_ETCD_OP_RANGE &&
		          tr.results[0].range.kv_count == 3,
		      "txn failure branch: %zu", tr.result_count);
		cvm_etcd_txn_result_cleanup(&tr);
	}
	/* lease + timetolive with keys + revoke deletes the keys. */
	r = cvm_etcd_lease_grant(cl, 60, &lease, &ttl);
	OK(r, cl);
	CHECK(lease != 0 && ttl == 60, "grant");
	r = cvm_etcd_put(cl, "basic/leased", "v", 1, lease, NULL, NULL);
	OK(r, cl);
	r = cvm_etcd_get(cl, "basic/leased", &kv, &found, NULL);
	OK(r, cl);
	CHECK(found && kv.lease == lease, "kv's lease");
	cvm_etcd_kv_cleanup(&kv);
	r = cvm_etcd_lease_timetolive(cl, lease, true, &li);
	OK(r, cl);
	CHECK(li.id == lease && li.granted_ttl == 60 && li.ttl > 0 && li.ttl <= 60 && li.key_count == 1 &&
	          strcmp(li.keys[0], "basic/leased") == 0,
	      "timetolive");
	cvm_etcd_lease_info_cleanup(&li);
	r = cvm_etcd_lease_keepalive(cl, lease, &ttl);
	OK(r, cl);
	CHECK(ttl == 60, "keepalive ttl %" PRId64, ttl);
	r = cvm_etcd_lease_revoke(cl, lease);
	OK(r, cl);
	r = cvm_etcd_get(cl, "basic/leased", &kv, &found, NULL);
	OK(r, cl);
	CHECK(!found, "revoke deletes the lease's keys");
	r = cvm_etcd_lease_keepalive(cl, lease, &ttl);
	OK(r, cl);
	CHECK(ttl == 0, "keepalive of a revoked lease");
	r = cvm_etcd_lease_timetolive(cl, lease, false, &li);
	OK(r, cl);
	CHECK(li.ttl == -1, "timetolive of a revoked lease");
	cvm_etcd_lease_info_cleanup(&li);
	r = cvm_etcd_lease_revoke(cl, lease);
	CHECK(r == CVM_E_NOT_FOUND, "second revoke: %s", cvm_strerror(r));
	/* delete: one key, then the prefix with its count. */
	r = cvm_etcd_delete(cl, "basic/a", false, &n);
	OK(r, cl);
	CHECK(n == 1, "delete one");
	r = cvm_etcd_delete(cl, "basic/", true, &n);
	OK(r, cl);
	CHECK(n == 2, "delete prefix: %" PRId64, n);
	r = cvm_etcd_delete(cl, "basicx", false, &n);
	OK(r, cl);
	/* Bad arguments say so. */
	r = cvm_etcd_put(cl, "", "x", 1, 0, NULL, NULL);
	CHECK(r == CVM_E_INVAL && strlen(cvm_etcd_errmsg(cl)) > 0, "empty key");
	r = cvm_etcd_lease_grant(cl, 0, &lease, NULL);
	CHECK(r == CVM_E_INVAL, "ttl 0");
	/* An error etcd answers: a put attached to a lease it does not know. */
	r = cvm_etcd_put(cl, "basic/x", "x", 1, 12345, NULL, NULL);
	CHECK(r != CVM_OK && strstr(cvm_etcd_errmsg(cl), "lease not found") != NULL, "bad lease: %s",
	      cvm_etcd_errmsg(cl));
	cvm_etcd_free(cl);
	printf("basic: ok\n");
	return 0;
}

#define RACE_THREADS 32
#define RACE_ADDRS 16

static int race_won[RACE_THREADS];

static void *race_thread(void *p)
{
	int idx = (int)(intptr_t)p;
	struct cvm_etcd *cl = client(0);
	char key[32], me[16];

	snprintf(me, sizeof(me), "t%d", idx);
	race_won[idx] = -1;
	/* Each thread walks the addresses from its own offset, as instances
	 * racing for the next free address do, and takes the first it gets. */
	for (int i = 0; i < RACE_ADDRS; i++) {
		int a = (idx + i) % RACE_ADDRS;
		struct cvm_etcd_cmp cmp = {
		    .key = key, .target = CVM_ETCD_TARGET_CREATE, .result = CVM_ETCD_EQUAL};
		struct cvm_etcd_op op = {
		    .type = CVM_ETCD_OP_PUT, .key = key, .value = me, .value_len = strlen(me)};
		struct cvm_etcd_txn t = {&cmp, 1, &op, NULL, 1, 0};
		struct cvm_etcd_txn_result tr;
		int r;

		snprintf(key, sizeof(key), "race/ip/10.0.0.%d", a + 2);
		r = cvm_etcd_txn(cl, &t, &tr);
		OK(r, cl);
		if (tr.succeeded) {
			race_won[idx] = a;
			cvm_etcd_txn_result_cleanup(&tr);
			break;
		}
		cvm_etcd_txn_result_cleanup(&tr);
	}
	cvm_etcd_free(cl);
	return NULL;
}

static int run_race(void)
{
	pthread_t th[RACE_THREADS];
	struct cvm_etcd *cl = client(0);
	struct cvm_etcd_kvs kvs;
	int owners[RACE_ADDRS], winners = 0, r;

	r = cvm_etcd_delete(cl, "race/", true, NULL);
	OK(r, cl);
	for (int i = 0; i < RACE_THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, race_thread, (void *)(intptr_t)i) == 0, "pthread_create");
	for (int i = 0; i < RACE_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int a = 0; a < RACE_ADDRS; a++)
		owners[a] = 0;
	for (int i = 0; i < RACE_THREADS; i++) {
		if (race_won[i] >= 0) {
			owners[race_won[i]]++;
			winners++;
		}
	}
	for (int a = 0; a < RACE_ADDRS; a++)
		CHECK(owners[a] == 1, "address %d leased %d times", a, owners[a]);
	CHECK(winners == RACE_ADDRS, "%d winners", winners);
	/* etcd agrees: 16 keys, each holding the thread that believes it won. */
	r = cvm_etcd_range_prefix(cl, "race/ip/", NULL, &kvs);
	OK(r, cl);
	CHECK(kvs.kv_count == RACE_ADDRS, "%zu leases stored", kvs.kv_count);
	for (size_t k = 0; k < kvs.kv_count; k++) {
		int t = atoi((const char *)kvs.kvs[k].value + 1),
		    a = atoi(strrchr(kvs.kvs[k].key, '.') + 1) - 2;

		CHECK(t >= 0 && t < RACE_THREADS && race_won[t] == a && kvs.kvs[k].version == 1,
		      "owner of %s", kvs.kvs[k].key);
	}
	cvm_etcd_kvs_cleanup(&kvs);
	cvm_etcd_free(cl);
	printf("race: %d threads, %d addresses, each leased exactly once\n", RACE_THREADS, RACE_ADDRS);
	return 0;
}

static int run_lease(void)
{
	struct cvm_etcd *cl = client(0);
	struct cvm_etcd_kv kv;
	int64_t kept, dropped, ttl;
	bool found;
	int r;

	r = cvm_etcd_lease_grant(cl, 2, &kept, NULL);
	OK(r, cl);
	r = cvm_etcd_lease_grant(cl, 2, &dropped, NULL);
	OK(r, cl);
	r = cvm_etcd_put(cl, "lease/kept", "k", 1, kept, NULL, NULL);
	OK(r, cl);
	r = cvm_etcd_put(cl, "lease/dropped", "d", 1, dropped, NULL, NULL);
	OK(r, cl);
	for (int i = 0; i < 8; i++) { /* 4 s, twice the TTL */
		usleep(500 * 1000);
		r = cvm_etcd_lease_keepalive(cl, kept, &ttl);
		OK(r, cl);
		CHECK(ttl == 2, "kept lease's ttl %" PRId64, ttl);
	}
	r = cvm_etcd_get(cl, "lease/kept", &kv, &found, NULL);
	OK(r, cl);
	CHECK(found, "the key of the lease kept alive is gone");
	cvm_etcd_kv_cleanup(&kv);
	r = cvm_etcd_get(cl, "lease/dropped", &kv, &found, NULL);
	OK(r, cl);
	CHECK(!found, "the key of the expired lease is still there");
	r = cvm_etcd_lease_keepalive(cl, dropped, &ttl);
	OK(r, cl);
	CHECK(ttl == 0, "keepalive of an expired lease: %" PRId64, ttl);
	r = cvm_etcd_lease_revoke(cl, kept);
	OK(r, cl);
	cvm_etcd_free(cl);
	printf("lease: kept alive survives 2x TTL, dropped expires\n");
	return 0;
}

struct seen {
	char log[64][48];
	int n, stop_after;
};

static int on_events(void *arg, const struct cvm_etcd_event *ev, size_t count)
{
	struct seen *s = arg;

	for (size_t i = 0; i < count && s->n < 64; i++)
		snprintf(s->log[s->n++], sizeof(s->log[0]), "%s %s=%s prev=%s",
		         ev[i].type == CVM_ETCD_EVENT_PUT ? "PUT" : "DEL", ev[i].kv.key,
		         ev[i].kv.value != NULL ? (const char *)ev[i].kv.value : "",
		         ev[i].prev_kv.key != NULL ? (const char *)ev[i].prev_kv.value : "-");
	return s->n >= s->stop_after;
}

static int run_watch(void)
{
	struct cvm_etcd *cl = client(0), *w = client(0);
	struct cvm_etcd_watch_opts wo = {.is_prefix = true, .prev_kv = true, .timeout_ms = 5000};
	static const char *const want[] = {"PUT watch/a=1 prev=-", "PUT watch/a=2 prev=1",
	                                   "PUT watch/b=3 prev=-", "DEL watch/a= prev=2",
	                                   "PUT watch/c=4 prev=-"};
	struct seen s = {.stop_after = 3};
	int64_t first, next;
	int r;

	r = cvm_etcd_delete(cl, "watch/", true, NULL);
	OK(r, cl);
	r = cvm_etcd_put(cl, "watch/a", "1", 1, 0, NULL, &first);
	OK(r, cl);
	put_str(cl, "watch/a", "2");
	put_str(cl, "watch/b", "3");
	r = cvm_etcd_delete(cl, "watch/a", false, NULL);
	OK(r, cl);
	put_str(cl, "watchx", "not under the prefix");
	put_str(cl, "watch/c", "4");
	/* From the first revision: the callback stops after 3 events... */
	wo.start_revision = first;
	r = cvm_etcd_watch(w, "watch/", &wo, on_events, &s, &next);
	OK(r, w);
	CHECK(s.n == 3, "%d events", s.n);
	/* ...and a second watch resumes at next_revision with the rest. */
	s.stop_after = 5;
	wo.start_revision = next;
	r = cvm_etcd_watch(w, "watch/", &wo, on_events, &s, &next);
	OK(r, w);
	CHECK(s.n == 5, "%d events after resuming", s.n);
	for (int i = 0; i < 5; i++)
		CHECK(strcmp(s.log[i], want[i]) == 0, "event %d: %s, not %s", i, s.log[i], want[i]);
	/* A timeout with nothing to see returns 0. */
	wo.timeout_ms = 300;
	wo.start_revision = next;
	s.stop_after = 99;
	r = cvm_etcd_watch(w, "watch/", &wo, on_events, &s, &next);
	OK(r, w);
	CHECK(s.n == 5, "no event expected");
	/* After a compaction, a watch from before it says so, with the
	 * compact revision to re-read from. */
	r = cvm_etcd_compact(cl, next - 1);
	OK(r, cl);
	wo.start_revision = first;
	wo.timeout_ms = 5000;
	r = cvm_etcd_watch(w, "watch/", &wo, on_events, &s, &next);
	CHECK(r == CVM_E_EXPIRED && strstr(cvm_etcd_errmsg(w), "compacted") != NULL,
	      "watch of a compacted revision: %s", cvm_etcd_errmsg(w));
	CHECK(s.n == 5, "no event from a compacted watch");
	cvm_etcd_free(w);
	cvm_etcd_free(cl);
	printf("watch: 5 events in order with prev_kv, resumed at the next revision; compaction reported\n");
	return 0;
}

struct bench_arg {
	int run, idx, n;
	bool txn;
};

static void *bench_thread(void *p)
{
	struct bench_arg *a = p;
	struct cvm_etcd *cl = client(0);
	char key[48];

	for (int i = 0; i < a->n; i++) {
		int r;

		snprintf(key, sizeof(key), "bench/%d/%d/%d", a->run, a->idx, i);
		if (a->txn) {
			struct cvm_etcd_cmp cmp = {
			    .key = key, .target = CVM_ETCD_TARGET_CREATE, .result = CVM_ETCD_EQUAL};
			struct cvm_etcd_op op = {
			    .type = CVM_ETCD_OP_PUT, .key = key, .value = "10.0.0.1", .value_len = 8};
			struct cvm_etcd_txn t = {&cmp, 1, &op, NULL, 1, 0};
			struct cvm_etcd_txn_result tr;

			r = cvm_etcd_txn(cl, &t, &tr);
			OK(r, cl);
			CHECK(tr.succeeded, "bench txn");
			cvm_etcd_txn_result_cleanup(&tr);
		} else {
			r = cvm_etcd_put(cl, key, "value", 5, 0, NULL, NULL);
			OK(r, cl);
		}
	}
	cvm_etcd_free(cl);
	return NULL;
}

static double bench(int threads, int per_thread, bool txn)
{
	pthread_t th[32];
	struct bench_arg args[32];
	double t0 = now_s(), dt;
	static int run;

	run++;

	for (int i = 0; i < threads; i++) {
		args[i] = (struct bench_arg){run, i, per_thread, txn};
		CHECK(pthread_create(&th[i], NULL, bench_thread, &args[i]) == 0, "pthread_create");
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	dt = now_s() - t0;
	printf("bench: %s concurrency %d: %d requests in %.2f s: %.0f requests/s\n", txn ? "txn" : "put",
	       threads, threads * per_thread, dt, threads * per_thread / dt);
	return threads * per_thread / dt;
}

static int run_bench(void)
{
	struct cvm_etcd *cl = client(0);
	int r = cvm_etcd_delete(cl, "bench/", true, NULL);

	OK(r, cl);
	bench(1, 500, false);
	bench(1, 500, true);
	bench(32, 100, false);
	bench(32, 100, true);
	r = cvm_etcd_delete(cl, "bench/", true, NULL);
	OK(r, cl);
	cvm_etcd_free(cl);
	return 0;
}

static struct seen fo_seen = {.stop_after = 40};

static void *fo_watcher(void *p)
{
	struct cvm_etcd_watch_opts wo = {.is_prefix = true, .timeout_ms = 30000};
	struct cvm_etcd *w = client(0);
	int64_t next;
	int r;

	wo.start_revision = *(int64_t *)p;
	r = cvm_etcd_watch(w, "fo/", &wo, on_events, &fo_seen, &next);
	OK(r, w);
	cvm_etcd_free(w);
	return NULL;
}

static int run_failover(const char *go)
{
	struct cvm_etcd *cl = client(3000);
	char key[32], val[16];
	pthread_t th;
	int64_t start;
	int r;

	r = cvm_etcd_delete(cl, "fo/", true, NULL);
	OK(r, cl);
	r = cvm_etcd_put(cl, "fo/0", "0", 1, 0, NULL, &start);
	OK(r, cl);
	CHECK(pthread_create(&th, NULL, fo_watcher, &start) == 0, "pthread_create");
	for (int i = 1; i < 20; i++) {
		snprintf(key, sizeof(key), "fo/%d", i);
		snprintf(val, sizeof(val), "%d", i);
		put_str(cl, key, val);
	}
	printf("talking-to=%s\n", cvm_etcd_endpoint(cl));
	fflush(stdout);
	while (access(go, F_OK) != 0)
		usleep(50 * 1000);
	/* The member is dead: the next requests fail over. A put may meet the
	 * dead connection after sending (reported as maybe-applied, never
	 * resent): read back and send again, as the gateway does. */
	for (int i = 20; i < 40; i++) {
		struct cvm_etcd_kv kv;
		bool found;

		snprintf(key, sizeof(key), "fo/%d", i);
		snprintf(val, sizeof(val), "%d", i);
		r = cvm_etcd_put(cl, key, val, strlen(val), 0, NULL, NULL);
		if (r != CVM_OK) {
			printf("put %s: %s\n", key, cvm_etcd_errmsg(cl));
			r = cvm_etcd_get(cl, key, &kv, &found, NULL);
			OK(r, cl);
			cvm_etcd_kv_cleanup(&kv);
			if (!found)
				put_str(cl, key, val);
		}
	}
	printf("now-talking-to=%s\n", cvm_etcd_endpoint(cl));
	pthread_join(th, NULL);
	CHECK(fo_seen.n == 40, "the watch saw %d of 40 puts across the failover", fo_seen.n);
	for (int i = 0; i < 40; i++) {
		char want[48];

		snprintf(want, sizeof(want), "PUT fo/%d=%d prev=-", i, i);
		CHECK(strcmp(fo_seen.log[i], want) == 0, "watch event %d: %s", i, fo_seen.log[i]);
	}
	cvm_etcd_free(cl);
	printf("failover: 40 puts, the watch resumed on another member with every event once, in order\n");
	return 0;
}

static int run_check(void)
{
	struct cvm_etcd *cl = client(0);
	struct cvm_etcd_range_opts ro = {.count_only = true};
	struct cvm_etcd_kvs kvs;
	int r;

	r = cvm_etcd_range_prefix(cl, "fo/", &ro, &kvs);
	OK(r, cl);
	CHECK(kvs.count == 40 && kvs.kv_count == 0, "count %" PRId64, kvs.count);
	cvm_etcd_kvs_cleanup(&kvs);
	put_str(cl, "fo-after/restart", "ok");
	cvm_etcd_free(cl);
	printf("check: 40 keys through %s\n", eps[0]);
	return 0;
}

/* run_auth: etcd with auth enabled and tokens that live 1 s. */
static int run_auth(const char *user, const char *password)
{
	struct cvm_etcd_opts o = {.endpoints = eps, .n_endpoints = n_eps, .user = user, .password = password};
	struct cvm_etcd_watch_opts wo = {.timeout_ms = 3000};
	struct seen s = {.stop_after = 1};
	struct cvm_etcd *cl = NULL, *anon = NULL;
	struct cvm_etcd_kv kv;
	int64_t rev, next;
	bool found;
	int r;

	r = cvm_etcd_new(&o, &cl);
	CHECK(r == CVM_OK, "cvm_etcd_new");
	r = cvm_etcd_put(cl, "auth/k", "v1", 2, 0, NULL, &rev);
	OK(r, cl);
	/* The token expires: the client authenticates again by itself. */
	sleep(3);
	r = cvm_etcd_get(cl, "auth/k", &kv, &found, NULL);
	OK(r, cl);
	CHECK(found && kv.value_len == 2, "get after the token expired");
	cvm_etcd_kv_cleanup(&kv);
	sleep(3);
	wo.start_revision = rev;
	r = cvm_etcd_watch(cl, "auth/k", &wo, on_events, &s, &next);
	OK(r, cl);
	CHECK(s.n == 1, "the watch with an expired token saw %d events", s.n);
	cvm_etcd_free(cl);
	/* Without credentials, or with a wrong password: refused, and said. */
	o.user = NULL;
	o.password = NULL;
	r = cvm_etcd_new(&o, &anon);
	CHECK(r == CVM_OK, "cvm_etcd_new");
	r = cvm_etcd_get(anon, "auth/k", &kv, &found, NULL);
	CHECK(r == CVM_E_UPSTREAM && strstr(cvm_etcd_errmsg(anon), "user name is empty") != NULL,
	      "anonymous: %s", cvm_etcd_errmsg(anon));
	cvm_etcd_free(anon);
	o.user = user;
	o.password = "wrong";
	r = cvm_etcd_new(&o, &anon);
	CHECK(r == CVM_OK, "cvm_etcd_new");
	r = cvm_etcd_get(anon, "auth/k", &kv, &found, NULL);
	CHECK(r == CVM_E_UPSTREAM && strstr(cvm_etcd_errmsg(anon), "authentication failed") != NULL,
	      "wrong password: %s", cvm_etcd_errmsg(anon));
	cvm_etcd_free(anon);
	printf(
	    "auth: token renewed after expiry (requests and watch); anonymous and wrong password refused\n");
	return 0;
}

/* run_tls: an https member that requires client certificates. */
static int run_tls(const char *ca, const char *cert, const char *key)
{
	struct cvm_etcd_opts o = {
	    .endpoints = eps, .n_endpoints = n_eps, .ca_file = ca, .cert_file = cert, .key_file = key};
	struct cvm_etcd *cl = NULL;
	struct cvm_etcd_kv kv;
	uint64_t m, l;
	bool found;
	int r;

	r = cvm_etcd_new(&o, &cl);
	CHECK(r == CVM_OK, "cvm_etcd_new");
	r = cvm_etcd_status(cl, &m, &l, NULL, 0);
	OK(r, cl);
	r = cvm_etcd_put(cl, "tls/k", "v", 1, 0, NULL, NULL);
	OK(r, cl);
	r = cvm_etcd_get(cl, "tls/k", &kv, &found, NULL);
	OK(r, cl);
	CHECK(found, "tls get");
	cvm_etcd_kv_cleanup(&kv);
	cvm_etcd_free(cl);
	/* Without a client certificate the member refuses the handshake. */
	o.cert_file = NULL;
	o.key_file = NULL;
	o.timeout_ms = 1000;
	r = cvm_etcd_new(&o, &cl);
	CHECK(r == CVM_OK, "cvm_etcd_new");
	r = cvm_etcd_get(cl, "tls/k", &kv, &found, NULL);
	CHECK(r == CVM_E_UPSTREAM, "no client certificate: %s", cvm_strerror(r));
	printf("tls without a client certificate: %s\n", cvm_etcd_errmsg(cl));
	cvm_etcd_free(cl);
	/* Without the CA the member's certificate does not verify. */
	o.ca_file = NULL;
	o.cert_file = cert;
	o.key_file = key;
	r = cvm_etcd_new(&o, &cl);
	CHECK(r == CVM_OK, "cvm_etcd_new");
	r = cvm_etcd_get(cl, "tls/k", &kv, &found, NULL);
	CHECK(r == CVM_E_UPSTREAM, "unknown CA: %s", cvm_strerror(r));
	cvm_etcd_free(cl);
	printf("tls: client certificate accepted; no client certificate or unknown CA refused\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: etcd_drive basic|race|lease|watch|bench|failover|check EPS [GO]\n"
		                "       etcd_drive auth EPS USER PASSWORD | tls EPS CA CERT KEY\n");
		return 2;
	}
	split_eps(argv[2]);
	if (strcmp(argv[1], "basic") == 0)
		return run_basic();
	if (strcmp(argv[1], "race") == 0)
		return run_race();
	if (strcmp(argv[1], "lease") == 0)
		return run_lease();
	if (strcmp(argv[1], "watch") == 0)
		return run_watch();
	if (strcmp(argv[1], "bench") == 0)
		return run_bench();
	if (strcmp(argv[1], "failover") == 0 && argc == 4)
		return run_failover(argv[3]);
	if (strcmp(argv[1], "check") == 0)
		return run_check();
	if (strcmp(argv[1], "auth") == 0 && argc == 5)
		return run_auth(argv[3], argv[4]);
	if (strcmp(argv[1], "tls") == 0 && argc == 6)
		return run_tls(argv[3], argv[4], argv[5]);
	return 2;
}

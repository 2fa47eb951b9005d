/* The kept-keys policy (crypto_int.h, "Kept keys"): which public keys get a
 * table of their multiples, and which tables stay. One implementation for
 * both ECDSA verifiers (p256.c, p384.c), so that the rule an attacker would
 * have to beat is written once:
 *
 * - only callers that authenticated a key (it chains to a trust anchor) ask
 *   for a table, through the *_kept verifications: everything an attacker
 *   can choose takes the plain path, which keeps nothing;
 * - a key gets a table at its CVM_KEPT_BUILD_AFTER-th kept use, so a key
 *   seen once or twice (a table costs 25 ms on P-256, more on P-384) never
 *   costs more than its verifications;
 * - each curve keeps a fixed number of tables, the most used; counts are
 *   halved every CVM_KEPT_AGE_EVERY kept uses, so that keys no longer used
 *   make room, and a key evicts a table only when it is used more than
 *   twice as often (keys used alike never evict each other back and forth);
 * - one table is built at a time in the whole process: a second thread that
 *   would build takes the plain path meanwhile.
 *
 * All of it is bookkeeping under one mutex; the tables themselves are built
 * and freed outside it. Public values only. */
#include <stdlib.h>
#include <string.h>

#include "crypto_int.h"

#if CVM_FAST_ECDSA

static pthread_mutex_t kept_mu = PTHREAD_MUTEX_INITIALIZER;
static bool building; /* a table is being built, of either curve */

static void table_free(struct cvm_kept *k, struct cvm_kept_table *t)
{
	k->free(t->table);
	free(t);
}

void cvm_kept_put(struct cvm_kept *k, struct cvm_kept_table *t)
{
	int left;

	if (t == NULL)
		return;
	(void)pthread_mutex_lock(&kept_mu);
	left = --t->refs;
	(void)pthread_mutex_unlock(&kept_mu);
	if (left == 0)
		table_free(k, t);
}

/* The helpers below run with kept_mu held. */

static void age_counts(struct cvm_kept *k)
{
	if (++k->kept_uses % CVM_KEPT_AGE_EVERY != 0)
		return;
	for (size_t i = 0; i < k->tables_max; i++)
		if (k->tables[i] != NULL)
			k->tables[i]->uses /= 2;
	for (size_t i = 0; i < k->cand_count; i++)
		k->cands[i].uses /= 2;
}

static struct cvm_kept_table *table_find(struct cvm_kept *k, const uint8_t *key)
{
	for (size_t i = 0; i < k->tables_max; i++)
		if (k->tables[i] != NULL && memcmp(k->tables[i]->key, key, k->key_len) == 0)
			return k->tables[i];
	return NULL;
}

/* victim is the slot to fill: a free one, or the least used table's. */
static size_t victim(const struct cvm_kept *k)
{
	size_t v = 0;

	for (size_t i = 0; i < k->tables_max; i++) {
		if (k->tables[i] == NULL)
			return i;
		if (k->tables[i]->uses < k->tables[v]->uses)
			v = i;
	}
	return v;
}

/* cand_use counts a kept use of a key without a table and returns its
 * count; a key not counted yet replaces the least used one. */
static unsigned cand_use(struct cvm_kept *k, const uint8_t *key, struct cvm_kept_cand **out)
{
	size_t least = 0;

	for (size_t i = 0; i < k->cand_count; i++) {
		if (memcmp(k->cands[i].key, key, k->key_len) == 0) {
			*out = &k->cands[i];
			return ++k->cands[i].uses;
		}
		if (k->cands[i].uses < k->cands[least].uses)
			least = i;
	}
	if (k->cand_count < CVM_KEPT_CANDS_MAX)
		least = k->cand_count++;
	memcpy(k->cands[least].key, key, k->key_len);
	k->cands[least].uses = 1;
	*out = &k->cands[least];
	return 1;
}

struct cvm_kept_table *cvm_kept_get(struct cvm_kept *k, const uint8_t *key, const void *pub)
{
	struct cvm_kept_table *t, *built = NULL, *old = NULL;
	struct cvm_kept_cand *c = NULL;
	bool build = false;
	unsigned uses = 0;

	(void)pthread_mutex_lock(&kept_mu);
	age_counts(k);
	t = table_find(k, key);
	if (t != NULL) {
		t->uses++;
		t->refs++;
	} else if (!building) {
		size_t v = victim(k);

		uses = cand_use(k, key, &c);
		build =
		    uses >= CVM_KEPT_BUILD_AFTER && (k->tables[v] == NULL || uses > 2 * k->tables[v]->uses);
		if (build) {
			c->uses = 0; /* leaves the candidates: a zero count is replaced first */
			building = true;
		}
	}
	(void)pthread_mutex_unlock(&kept_mu);
	if (!build)
		return t;
	built = calloc(1, sizeof(*built));
	if (built != NULL) {
		built->table = k->build(pub);
		if (built->table == NULL) {
			free(built);
			built = NULL;
		}
	}
	(void)pthread_mutex_lock(&kept_mu);
	building = false;
	if (built != NULL) {
		size_t v = victim(k);

		memcpy(built->key, key, k->key_len);
		old = k->tables[v];
		k->tables[v] = built;
		built->uses = uses;
		built->refs = 2; /* the set's and the caller's */
	}
	(void)pthread_mutex_unlock(&kept_mu);
	cvm_kept_put(k, old);
	return built;
}

size_t cvm_kept_held(struct cvm_kept *k)
{
	size_t n = 0;

	(void)pthread_mutex_lock(&kept_mu);
	for (size_t i = 0; i < k->tables_max; i++)
		n += k->tables[i] != NULL;
	(void)pthread_mutex_unlock(&kept_mu);
	return n;
}

bool cvm_kept_holds(struct cvm_kept *k, const uint8_t *key)
{
	bool held;

	(void)pthread_mutex_lock(&kept_mu);
	held = table_find(k, key) != NULL;
	(void)pthread_mutex_unlock(&kept_mu);
	return held;
}

void cvm_kept_flush(struct cvm_kept *k)
{
	for (size_t i = 0; i < k->tables_max; i++) {
		struct cvm_kept_table *t;

		(void)pthread_mutex_lock(&kept_mu);
		t = k->tables[i];
		k->tables[i] = NULL;
		if (i == 0) {
			k->cand_count = 0;
			k->kept_uses = 0;
		}
		(void)pthread_mutex_unlock(&kept_mu);
		cvm_kept_put(k, t);
	}
}

#endif

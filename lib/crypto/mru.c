/* Small process-wide lists of parsed objects, most recently used first,
 * found again only by their exact bytes (crypto_int.h, struct cvm_mru). */
#include <string.h>

#include "crypto_int.h"

void *cvm_mru_take(struct cvm_mru *m, const uint8_t *p, size_t len)
{
	void *obj = NULL;

	(void)pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->cap && m->slot[i] != NULL; i++) {
		const uint8_t *b = NULL;
		size_t n = 0;

		m->bytes(m->slot[i], &b, &n);
		if (n != len || memcmp(b, p, len) != 0)
			continue;
		obj = m->slot[i];
		for (size_t j = i; j > 0; j--)
			m->slot[j] = m->slot[j - 1];
		m->slot[0] = obj;
		obj = m->ref(obj);
		break;
	}
	(void)pthread_mutex_unlock(&m->mu);
	return obj;
}

void cvm_mru_keep(struct cvm_mru *m, void *obj)
{
	const uint8_t *p = NULL;
	size_t len = 0;
	void *old = NULL;
	size_t i;

	if (obj == NULL)
		return;
	m->bytes(obj, &p, &len);
	if (p == NULL)
		return; /* nothing to find it by */
	(void)pthread_mutex_lock(&m->mu);
	for (i = 0; i < m->cap && m->slot[i] != NULL; i++) {
		const uint8_t *b = NULL;
		size_t n = 0;

		m->bytes(m->slot[i], &b, &n);
		if (m->slot[i] == obj || (n == len && memcmp(b, p, len) == 0))
			break;
	}
	if (i == m->cap || m->slot[i] == NULL) {
		old = m->slot[m->cap - 1];
		for (size_t j = m->cap - 1; j > 0; j--)
			m->slot[j] = m->slot[j - 1];
		m->slot[0] = m->ref(obj);
	}
	(void)pthread_mutex_unlock(&m->mu);
	if (old != NULL)
		m->unref(old);
}

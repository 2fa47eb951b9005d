/* Key epochs: which epochs of a root directory are current, readable during
 * their grace period, or revoked (include/cvmkit/kms.h, DIR/epochs.json). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <cvmkit/file.h>
#include <cvmkit/kms.h>

#include "core/core_lib.h"
#include "kms_int.h"

static const char *const state_names[] = {
    [CVM_KMS_EPOCH_CURRENT] = "current",
    [CVM_KMS_EPOCH_GRACE] = "grace",
    [CVM_KMS_EPOCH_REVOKED] = "revoked",
};

const char *cvm_kms_epoch_state_name(enum cvm_kms_epoch_state s)
{
	if ((unsigned)s >= sizeof(state_names) / sizeof(state_names[0]) || state_names[s] == NULL)
		return "unknown";
	return state_names[s];
}

static int path_of(const char *dir, char *out, size_t cap)
{
	if ((size_t)snprintf(out, cap, "%s/%s", dir, CVM_KMS_FILE_EPOCHS) >= cap)
		return CVM_E_TOO_LARGE;
	return CVM_OK;
}

/* check_table holds the table's rules: exactly one current epoch, every
 * epoch at most once, grace epochs with an end, epochs in range. */
static int check_table(const struct cvm_kms_epochs *t, char *err, size_t err_len)
{
	size_t current = 0;

	if (t->count == 0 || t->count > CVM_KMS_EPOCHS_MAX)
		return (void)cvm_err_set(err, err_len, 0, "the epoch table holds %zu epochs (1..%u)",
		                         t->count, (unsigned)CVM_KMS_EPOCHS_MAX),
		       CVM_E_FORMAT;
	for (size_t i = 0; i < t->count; i++) {
		const struct cvm_kms_epoch *e = &t->e[i];

		if (e->epoch > CVM_KMS_EPOCH_MAX)
			return (void)cvm_err_set(err, err_len, 0, "epoch %u is over %u", (unsigned)e->epoch,
			                         (unsigned)CVM_KMS_EPOCH_MAX),
			       CVM_E_FORMAT;
		for (size_t j = 0; j < i; j++)
			if (t->e[j].epoch == e->epoch)
				return (void)cvm_err_set(err, err_len, 0, "epoch %u is listed twice",
				                         (unsigned)e->epoch),
				       CVM_E_FORMAT;
		if (e->state == CVM_KMS_EPOCH_CURRENT) {
			current++;
			if (e->epoch != t->current)
				return (void)cvm_err_set(err, err_len, 0,
				                         "epoch %u is marked current but \"current\" is %u",
				                         (unsigned)e->epoch, (unsigned)t->current),
				       CVM_E_FORMAT;
		} else if (e->state == CVM_KMS_EPOCH_GRACE && e->until <= 0) {
			return (void)cvm_err_set(err, err_len, 0,
			                         "epoch %u is in its grace period without an end",
			                         (unsigned)e->epoch),
			       CVM_E_FORMAT;
		}
	}
	if (current != 1)
		return (void)cvm_err_set(err, err_len, 0, "the epoch table has %zu current epochs, not one",
		                         current),
		       CVM_E_FORMAT;
	return CVM_OK;
}

int cvm_kms_epochs_load(const char *dir, struct cvm_kms_epochs *out, char *err, size_t err_len)
{
	char path[4096];
	uint8_t *buf = NULL;
	size_t len = 0, i;
	json_error_t jerr;
	json_t *root = NULL, *arr, *v;
	int r;

	memset(out, 0, sizeof(*out));
	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (dir == NULL)
		return CVM_E_INVAL;
	r = path_of(dir, path, sizeof(path));
	if (r != CVM_OK)
		return r;
	r = cvm_file_read(path, CVM_KMS_EPOCHS_FILE_MAX, &buf, &len);
	if (r == CVM_E_SYSTEM && errno == ENOENT) {
		/* No table: epoch 0 alone, current (a dstack root folder). */
		out->current = 0;
		out->count = 1;
		out->e[0].epoch = 0;
		out->e[0].state = CVM_KMS_EPOCH_CURRENT;
		return CVM_OK;
	}
	if (r != CVM_OK) {
		(void)cvm_err_set(err, err_len, 0, "cannot read %s: %s", path,
		                  r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return r;
	}
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!json_is_object(root)) {
		(void)cvm_err_set(err, err_len, 0, "%s is not a JSON object (line %d: %s)", path, jerr.line,
		                  jerr.text);
		r = CVM_E_FORMAT;
		goto out;
	}
	v = json_object_get(root, "current");
	arr = json_object_get(root, "epochs");
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > CVM_KMS_EPOCH_MAX ||
	    !json_is_array(arr) || json_array_size(arr) > CVM_KMS_EPOCHS_MAX) {
		(void)cvm_err_set(err, err_len, 0,
		                  "%s: \"current\" must be an epoch and \"epochs\" a list of at most %u",
		                  path, (unsigned)CVM_KMS_EPOCHS_MAX);
		r = CVM_E_FORMAT;
		goto out;
	}
	out->current = (uint32_t)json_integer_value(v);
	json_array_foreach(arr, i, v)
	{
		json_t *n = json_object_get(v, "epoch"), *s = json_object_get(v, "state"),
		       *u = json_object_get(v, "until");
		struct cvm_kms_epoch *e = &out->e[out->count];
		const char *st = json_string_value(s);

		if (!json_is_object(v) || !json_is_integer(n) || json_integer_value(n) < 0 ||
		    json_integer_value(n) > CVM_KMS_EPOCH_MAX || st == NULL ||
		    (u != NULL && !json_is_integer(u))) {
			(void)cvm_err_set(
			    err, err_len, 0,
			    "%s: epoch entry %zu is not {\"epoch\": N, \"state\": S[, \"until\": T]}", path,
			    i);
			r = CVM_E_FORMAT;
			goto out;
		}
		e->epoch = (uint32_t)json_integer_value(n);
		e->until = u != NULL ? (int64_t)json_integer_value(u) : 0;
		if (strcmp(st, "current") == 0) {
			e->state = CVM_KMS_EPOCH_CURRENT;
		} else if (strcmp(st, "grace") == 0) {
			e->state = CVM_KMS_EPOCH_GRACE;
		} else if (strcmp(st, "revoked") == 0) {
			e->state = CVM_KMS_EPOCH_REVOKED;
		} else {
			(void)cvm_err_set(err, err_len, 0, "%s: epoch %u has the unknown state \"%.32s\"",
			                  path, (unsigned)e->epoch, st);
			r = CVM_E_FORMAT;
			goto out;
		}
		out->count++;
	}
	r = check_table(out, err, err_len);
	if (r != CVM_OK)
		goto out;
out:
	json_decref(root);
	if (r != CVM_OK)
		memset(out, 0, sizeof(*out));
	return r;
}

int kms_epochs_save(const char *dir, const struct cvm_kms_epochs *t, char *err, size_t err_len)
{
	if (check_table(t, err, err_len) != CVM_OK)
		return CVM_E_FORMAT;
	char path[4096];
	json_t *root = json_object(), *arr = json_array();
	char *text = NULL;
	int r = CVM_E_NOMEM;

	if (root == NULL || arr == NULL)
		goto out;
	for (size_t i = 0; i < t->count; i++) {
		json_t *o = json_object();

		if (o == NULL || json_array_append_new(arr, o) != 0 ||
		    json_object_set_new(o, "epoch", json_integer(t->e[i].epoch)) != 0 ||
		    json_object_set_new(o, "state", json_string(cvm_kms_epoch_state_name(t->e[i].state))) !=
		        0 ||
		    (t->e[i].until > 0 && json_object_set_new(o, "until", json_integer(t->e[i].until)) != 0))
			goto out;
	}
	if (json_object_set_new(root, "current", json_integer(t->current)) != 0 ||
	    json_object_set(root, "epochs", arr) != 0)
		goto out;
	text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	if (text == NULL)
		goto out;
	r = path_of(dir, path, sizeof(path));
	if (r == CVM_OK)
		r = cvm_file_write(path, text, strlen(text), 0600);
	if (r != CVM_OK)
		(void)cvm_err_set(err, err_len, 0, "cannot write %s: %s", path,
		                  r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
out:
	free(text);
	json_decref(arr);
	json_decref(root);
	return r;
}

int cvm_kms_rotate(const char *dir, int64_t now, int64_t grace_s, uint32_t *new_epoch, char *err,
                   size_t err_len)
{
	return cvm_kms_rotate_tpm(dir, now, grace_s, NULL, new_epoch, err, err_len);
}

int cvm_kms_rotate_tpm(const char *dir, int64_t now, int64_t grace_s, struct cvm_tpm *tpm,
                       uint32_t *new_epoch, char *err, size_t err_len)
{
	struct cvm_kms_epochs t;
	uint32_t next = 0;
	int r;

	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (dir == NULL || now <= 0 || grace_s < 0)
		return CVM_E_INVAL;
	r = cvm_kms_epochs_load(dir, &t, err, err_len);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < t.count; i++)
		if (t.e[i].epoch >= next)
			next = t.e[i].epoch + 1;
	if (next > CVM_KMS_EPOCH_MAX || t.count == CVM_KMS_EPOCHS_MAX)
		return (void)cvm_err_set(err, err_len, 0,
		                         "no epoch is left (the table holds %zu, the last is %u)", t.count,
		                         (unsigned)next - 1),
		       CVM_E_TOO_LARGE;
	r = cvm_kms_bootstrap_tpm(dir, next, now, tpm, err, err_len);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < t.count; i++)
		if (t.e[i].state == CVM_KMS_EPOCH_CURRENT) {
			/* grace 0: the old epoch is no longer readable at all */
			t.e[i].state = grace_s > 0 ? CVM_KMS_EPOCH_GRACE : CVM_KMS_EPOCH_REVOKED;
			t.e[i].until = grace_s > 0 ? now + grace_s : 0;
		}
	t.e[t.count].epoch = next;
	t.e[t.count].state = CVM_KMS_EPOCH_CURRENT;
	t.e[t.count].until = 0;
	t.count++;
	t.current = next;
	r = kms_epochs_save(dir, &t, err, err_len);
	if (r == CVM_OK && new_epoch != NULL)
		*new_epoch = next;
	return r;
}

int cvm_kms_revoke_epoch(const char *dir, uint32_t epoch, char *err, size_t err_len)
{
	struct cvm_kms_epochs t;
	struct cvm_kms_epoch *e = NULL;
	int r;

	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (dir == NULL)
		return CVM_E_INVAL;
	r = cvm_kms_epochs_load(dir, &t, err, err_len);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < t.count; i++)
		if (t.e[i].epoch == epoch)
			e = &t.e[i];
	if (e == NULL)
		return (void)cvm_err_set(err, err_len, 0, "epoch %u is not in %s/%s", (unsigned)epoch, dir,
		                         CVM_KMS_FILE_EPOCHS),
		       CVM_E_NOT_FOUND;
	if (e->state == CVM_KMS_EPOCH_CURRENT)
		return (void)cvm_err_set(
		           err, err_len, 0,
		           "epoch %u is the current one: rotate to a new epoch first, then revoke this one",
		           (unsigned)epoch),
		       CVM_E_POLICY;
	e->state = CVM_KMS_EPOCH_REVOKED;
	e->until = 0;
	return kms_epochs_save(dir, &t, err, err_len);
}

bool cvm_kms_epoch_readable(const struct cvm_kms_epochs *t, uint32_t epoch, int64_t now)
{
	for (size_t i = 0; i < t->count; i++) {
		const struct cvm_kms_epoch *e = &t->e[i];

		if (e->epoch != epoch)
			continue;
		return e->state == CVM_KMS_EPOCH_CURRENT ||
		       (e->state == CVM_KMS_EPOCH_GRACE && now < e->until);
	}
	return false;
}

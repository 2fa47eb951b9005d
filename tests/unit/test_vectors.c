/* The test helpers that find the vectors (tests/common/vectors.h): a named
 * vector always comes from the repository's tests/vectors, even when an
 * extra folder holds a file of the same name; going through every vector of
 * a kind gives the repository's folders (the same set as the kind's own
 * manifest.json lists), then the extra folder's new ones; an empty
 * CVM_VECTORS_DIR means no extra folder. The failure paths (a missing
 * vector, a bad extra folder) are shown by the scripts in a clone with a
 * vector removed (tests/vectors/README.md). */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include <cvmkit/file.h>

#include "vectors.h"

#define UPTODATE "tdx/dcapqvl-tdx-v4-uptodate"

struct extra {
	char root[64];
};

static void put_file(const char *root, const char *rel, const char *text)
{
	char path[VECTOR_PATH_MAX], dir[VECTOR_PATH_MAX];
	FILE *f;

	(void)snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (char *p = strchr(path + strlen(root) + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
		memcpy(dir, path, (size_t)(p - path));
		dir[p - path] = '\0';
		assert_true(mkdir(dir, 0700) == 0 || access(dir, F_OK) == 0);
	}
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_tree(const char *root)
{
	assert_int_equal(nftw(root, remove_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* An extra folder with a copy of one repository vector's name (a fake
 * quote) and a new TDX folder. */
static int extra_setup(void **state)
{
	struct extra *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return -1;
	(void)snprintf(x->root, sizeof(x->root), "/tmp/cvm-vectors-test.XXXXXX");
	if (mkdtemp(x->root) == NULL) {
		free(x);
		return -1;
	}
	*state = x;
	put_file(x->root, UPTODATE "/quote.bin", "not the repository's quote");
	put_file(x->root, UPTODATE "/tcb_info.json", "{}");
	put_file(x->root, "tdx/zz-extra-only/tcb_info.json", "{}");
	put_file(x->root, "tdx/zz-extra-only/quote.bin", "extra");
	return setenv("CVM_VECTORS_DIR", x->root, 1);
}

static int extra_teardown(void **state)
{
	struct extra *x = *state;

	remove_tree(x->root);
	free(x);
	return unsetenv("CVM_VECTORS_DIR");
}

static void vectors_dir_is_the_repository_copy(void **state)
{
	char want[VECTOR_PATH_MAX];

	(void)state;
	(void)snprintf(want, sizeof(want), "%s/tests/vectors", CVM_SOURCE_DIR);
	assert_string_equal(vectors_dir(), want);
}

static void a_named_vector_comes_from_the_repository_even_when_the_extra_folder_has_one(void **state)
{
	struct extra *x = *state;
	uint8_t *got, *own;
	size_t got_len, own_len;
	char path[VECTOR_PATH_MAX];

	assert_string_equal(vectors_extra_dir(), x->root);
	got = vector_read(UPTODATE "/quote.bin", &got_len);
	(void)snprintf(path, sizeof(path), "%s/" UPTODATE "/quote.bin", CVM_SOURCE_DIR "/tests/vectors");
	assert_int_equal(cvm_file_read(path, 1u << 20, &own, &own_len), CVM_OK);
	assert_int_equal(got_len, own_len);
	assert_memory_equal(got, own, own_len);
	assert_true(got_len > 1000); /* a quote, not the extra folder's text */
	assert_string_equal(vector_path(path, sizeof(path), UPTODATE),
	                    CVM_SOURCE_DIR "/tests/vectors/" UPTODATE);
	free(got);
	free(own);
}

/* manifest_names returns the kind's own list of its vectors
 * (tests/vectors/<kind>/manifest.json "vectors"), sorted like strcmp. */
static json_t *manifest_names(const char *kind)
{
	char rel[64];
	uint8_t *buf;
	size_t len;
	json_t *m, *v;

	(void)snprintf(rel, sizeof(rel), "%s/manifest.json", kind);
	buf = vector_read(rel, &len);
	m = json_loadb((const char *)buf, len, 0, NULL);
	free(buf);
	assert_non_null(m);
	v = json_object_get(m, "vectors");
	assert_true(json_is_array(v) && json_array_size(v) > 0);
	json_incref(v);
	json_decref(m);
	/* insertion sort by name: the lists are short */
	for (size_t i = 1; i < json_array_size(v); i++)
		for (size_t j = i; j > 0; j--) {
			json_t *a = json_array_get(v, j - 1), *b = json_array_get(v, j);

			if (strcmp(json_string_value(a), json_string_value(b)) <= 0)
				break;
			json_incref(a);
			assert_int_equal(json_array_set_new(v, j - 1, json_incref(b)), 0);
			assert_int_equal(json_array_set_new(v, j, a), 0);
		}
	return v;
}

/* check_own_folders checks that the first folders of `f` are exactly those
 * the kind's manifest lists, from tests/vectors; returns their count. */
static size_t check_own_folders(const char *kind, const struct vector_folder *f, size_t n)
{
	json_t *names = manifest_names(kind);
	size_t own = json_array_size(names);

	assert_true(n >= json_array_size(names));
	for (size_t i = 0; i < json_array_size(names); i++) {
		char name[VECTOR_PATH_MAX / 2], dir[VECTOR_PATH_MAX];

		(void)snprintf(name, sizeof(name), "%s/%s", kind,
		               json_string_value(json_array_get(names, i)));
		(void)snprintf(dir, sizeof(dir), "%s/%s", vectors_dir(), name);
		assert_string_equal(f[i].name, name);
		assert_string_equal(f[i].dir, dir);
		assert_false(f[i].is_extra);
	}
	json_decref(names);
	return own;
}

static void every_vector_of_a_kind_is_the_repository_s_then_the_extra_folder_s_new_ones(void **state)
{
	struct extra *x = *state;
	struct vector_folder *f = NULL;
	size_t n, own;
	char dir[VECTOR_PATH_MAX];

	n = vector_folders("tdx", "tcb_info.json", &f);
	own = check_own_folders("tdx", f, n);
	/* one more: the extra folder's new vector; its copy of UPTODATE is left out */
	assert_int_equal(n, own + 1);
	assert_string_equal(f[own].name, "tdx/zz-extra-only");
	(void)snprintf(dir, sizeof(dir), "%s/tdx/zz-extra-only", x->root);
	assert_string_equal(f[own].dir, dir);
	assert_true(f[own].is_extra);
	for (size_t i = 0; i < n; i++)
		assert_true(strncmp(f[i].dir, x->root, strlen(x->root)) != 0 || i == own);
	free(f);

	/* a kind the extra folder lacks: the repository's folders only */
	n = vector_folders("snp", "report.bin", &f);
	assert_int_equal(check_own_folders("snp", f, n), n);
	free(f);
}

static void an_empty_cvm_vectors_dir_means_no_extra_folder(void **state)
{
	struct vector_folder *f = NULL;
	size_t n;

	(void)state;
	assert_int_equal(setenv("CVM_VECTORS_DIR", "", 1), 0);
	assert_null(vectors_extra_dir());
	n = vector_folders("sgx", "quote.bin", &f);
	assert_int_equal(check_own_folders("sgx", f, n), n);
	free(f);
	assert_int_equal(unsetenv("CVM_VECTORS_DIR"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(vectors_dir_is_the_repository_copy),
	    cmocka_unit_test_setup_teardown(
	        a_named_vector_comes_from_the_repository_even_when_the_extra_folder_has_one, extra_setup,
	        extra_teardown),
	    cmocka_unit_test_setup_teardown(
	        every_vector_of_a_kind_is_the_repository_s_then_the_extra_folder_s_new_ones, extra_setup,
	        extra_teardown),
	    cmocka_unit_test(an_empty_cvm_vectors_dir_means_no_extra_folder),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

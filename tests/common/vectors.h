/* Test helpers: where the tests find the real vectors (tests/vectors/README.md).
 *
 * Two folders of the same layout (tdx/<name>/, sgx/<name>/, snp/<name>/,
 * eventlog/, ima/, compat/):
 *  - the repository's own tests/vectors: every vector a test names is read
 *    from there and from nowhere else, and a missing one fails the test;
 *  - an optional extra folder: $CVM_VECTORS_DIR when that variable is set
 *    (set but empty: none), else the CMake cache variable CVM_VECTORS_DIR of
 *    the build (empty by default). Only tests that go through every vector
 *    of a kind read it (vector_folders), after tests/vectors, and a folder
 *    whose name tests/vectors also has is taken from tests/vectors only. */
#ifndef CVM_TEST_VECTORS_H
#define CVM_TEST_VECTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest path the helpers build; a longer one fails the test. */
#define VECTOR_PATH_MAX 1024

/* vectors_dir returns the repository's tests/vectors folder. */
const char *vectors_dir(void);
/* vectors_extra_dir returns the extra folder, or NULL when there is none. */
const char *vectors_extra_dir(void);
/* vector_path writes vectors_dir()/rel into buf and returns buf; an absolute
 * `rel` (a vector_folders() dir joined with a file name) is taken as it is.
 * Fails the test, naming the vector, when nothing exists at that path. */
const char *vector_path(char *buf, size_t len, const char *rel);
/* vector_read reads the file vector_path() names; fails the test if it
 * cannot. The caller frees. */
uint8_t *vector_read(const char *rel, size_t *len);

/* One folder <kind>/<x> of vectors (tdx/, sgx/, snp/). */
struct vector_folder {
	char name[VECTOR_PATH_MAX]; /* "<kind>/<x>" */
	char dir[VECTOR_PATH_MAX];  /* the folder's absolute path */
	bool is_extra;              /* from the extra folder, not from tests/vectors */
};

/* vector_folders lists every folder <kind>/<x> of tests/vectors, sorted by
 * name, then, sorted too, those of the extra folder whose name tests/vectors
 * does not have. Every folder listed must hold the file `need`. Fails the
 * test when tests/vectors has no such folder, when a folder lacks `need`, or
 * when the extra folder is set but cannot be read. Sets *out to an array
 * the caller frees and returns its count. */
size_t vector_folders(const char *kind, const char *need, struct vector_folder **out);

#endif

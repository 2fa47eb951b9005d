/* Test helpers: locating and reading the real vectors. */
#ifndef CVM_TEST_VECTORS_H
#define CVM_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

/* vectors_dir returns $CVM_VECTORS_DIR, or the folder CMake was given. */
const char *vectors_dir(void);
/* vector_path writes vectors_dir()/rel into buf. */
const char *vector_path(char *buf, size_t len, const char *rel);
/* vector_read reads vectors_dir()/rel; fails the test if it cannot. The caller frees. */
uint8_t *vector_read(const char *rel, size_t *len);

#endif

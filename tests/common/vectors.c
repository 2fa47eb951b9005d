#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include <cvmkit/file.h>

#include "vectors.h"

const char *vectors_dir(void)
{
	const char *d = getenv("CVM_VECTORS_DIR");

	return d != NULL && d[0] != '\0' ? d : CVM_VECTORS_DIR;
}

const char *vector_path(char *buf, size_t len, const char *rel)
{
	(void)snprintf(buf, len, "%s/%s", vectors_dir(), rel);
	return buf;
}

uint8_t *vector_read(const char *rel, size_t *len)
{
	char path[4096];
	uint8_t *buf = NULL;
	int r;

	r = cvm_file_read(vector_path(path, sizeof(path), rel), 16u << 20, &buf, len);
	if (r != CVM_OK)
		fail_msg("cannot read vector %s: %s", path, cvm_strerror(r));
	return buf;
}

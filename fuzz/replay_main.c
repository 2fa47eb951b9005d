/* Runs LLVMFuzzerTestOneInput over every file in the folders or files named
 * on the command line: corpora and crash reproducers as regression tests. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cvmkit/file.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path, unsigned *count)
{
	uint8_t *buf = NULL;
	size_t len = 0;

	if (cvm_file_read(path, 16u << 20, &buf, &len) != CVM_OK) {
		fprintf(stderr, "replay: cannot read %s\n", path);
		return 1;
	}
	(void)LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	(*count)++;
	return 0;
}

int main(int argc, char **argv)
{
	unsigned count = 0;
	int bad = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *e;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: no such file or folder\n", argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i], &count);
			continue;
		}
		d = opendir(argv[i]);
		if (d == NULL)
			return 1;
		while ((e = readdir(d)) != NULL) {
			char path[4096];

			if (e->d_name[0] == '.')
				continue;
			(void)snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			bad |= run_file(path, &count);
		}
		closedir(d);
	}
	if (count == 0) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	printf("replayed %u inputs\n", count);
	return bad;
}

/* Guest images: image_dir/<name>/metadata.json (dstack spec §8.6). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/file.h>

#include "vmm.h"

#define METADATA_MAX ((size_t)64 * 1024)

bool vmm_image_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > VMM_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* file_field resolves a file name from metadata under `dir`: a plain name
 * (no '/', not "." or ".."), never a path out of the image. */
static int file_field(const json_t *j, const char *key, const char *dir, char *out, size_t cap, char *err,
                      size_t err_len)
{
	const json_t *v = json_object_get(j, key);
	const char *s;
	int n;

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return CVM_OK;
	s = json_string_value(v);
	if (s == NULL || s[0] == '\0' || strchr(s, '/') != NULL || strcmp(s, ".") == 0 ||
	    strcmp(s, "..") == 0 || json_string_length(v) != strlen(s)) {
		(void)snprintf(err, err_len, "metadata.json: %s must be a file name in the image folder",
		               key);
		return CVM_E_FORMAT;
	}
	n = snprintf(out, cap, "%s/%s", dir, s);
	if (n < 0 || (size_t)n >= cap) {
		(void)snprintf(err, err_len, "metadata.json: %s makes a path that is too long", key);
		return CVM_E_TOO_LARGE;
	}
	return CVM_OK;
}

int vmm_image_metadata_parse(const uint8_t *buf, size_t len, const char *dir, struct vmm_image *out,
                             char *err, size_t err_len)
{
	static const char *const files[] = {"bios",   "bios-sev", "kernel",
	                                    "initrd", "rootfs",   "acpi_probe_initrd"};
	char *dst[6];
	size_t caps[6];
	json_error_t je;
	json_t *j;
	const json_t *v;
	int r = CVM_E_FORMAT;

	memset(out, 0, sizeof(*out));
	dst[0] = out->bios;
	dst[1] = out->bios_sev;
	dst[2] = out->kernel;
	dst[3] = out->initrd;
	dst[4] = out->rootfs;
	dst[5] = out->acpi_probe_initrd;
	caps[0] = sizeof(out->bios);
	caps[1] = sizeof(out->bios_sev);
	caps[2] = sizeof(out->kernel);
	caps[3] = sizeof(out->initrd);
	caps[4] = sizeof(out->rootfs);
	caps[5] = sizeof(out->acpi_probe_initrd);
	if (strlen(dir) >= sizeof(out->dir))
		return CVM_E_TOO_LARGE;
	(void)snprintf(out->dir, sizeof(out->dir), "%s", dir);
	j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(j)) {
		(void)snprintf(err, err_len, "metadata.json is not a JSON object");
		goto out;
	}
	for (size_t i = 0; i < 6; i++) {
		r = file_field(j, files[i], dir, dst[i], caps[i], err, err_len);
		if (r != CVM_OK)
			goto out;
	}
	r = CVM_E_FORMAT;
	v = json_object_get(j, "cmdline");
	if (v != NULL && (!json_is_string(v) || json_string_length(v) >= sizeof(out->cmdline) ||
	                  strlen(json_string_value(v)) != json_string_length(v))) {
		(void)snprintf(err, err_len, "metadata.json: cmdline must be a string under %zu bytes",
		               sizeof(out->cmdline));
		goto out;
	}
	if (v != NULL)
		(void)snprintf(out->cmdline, sizeof(out->cmdline), "%s", json_string_value(v));
	v = json_object_get(j, "version");
	if (json_is_string(v))
		(void)snprintf(out->version, sizeof(out->version), "%s", json_string_value(v));
	out->is_dev = json_is_true(json_object_get(j, "is_dev"));
	if (out->kernel[0] == '\0' && out->bios[0] == '\0') {
		(void)snprintf(err, err_len, "metadata.json names neither a kernel nor a bios");
		goto out;
	}
	r = CVM_OK;
out:
	json_decref(j);
	return r;
}

int vmm_image_load(const char *image_dir, const char *name, struct vmm_image *out, char *err, size_t err_len)
{
	char dir[VMM_PATH_MAX], path[VMM_PATH_MAX + 16];
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if (!vmm_image_name_ok(name)) {
		(void)snprintf(err, err_len,
		               "image name %.64s is not 1-63 letters, digits, '.', '_' or '-' (not starting "
		               "with '.')",
		               name);
		return CVM_E_INVAL;
	}
	r = snprintf(dir, sizeof(dir), "%s/%s", image_dir, name);
	if (r < 0 || (size_t)r >= sizeof(dir))
		return CVM_E_TOO_LARGE;
	(void)snprintf(path, sizeof(path), "%s/metadata.json", dir);
	r = cvm_file_read(path, METADATA_MAX, &buf, &len);
	if (r != CVM_OK) {
		(void)snprintf(err, err_len,
		               "no image %s in %s (cannot read %s/metadata.json: %s); see ListImages", name,
		               image_dir, name, r == CVM_E_SYSTEM ? strerror(errno) : cvm_strerror(r));
		return CVM_E_INVAL;
	}
	r = vmm_image_metadata_parse(buf, len, dir, out, err, err_len);
	free(buf);
	if (r == CVM_OK)
		(void)snprintf(out->name, sizeof(out->name), "%s", name);
	return r;
}

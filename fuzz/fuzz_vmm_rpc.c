/* libFuzzer harness for cvm-vmmd's request parser and validator
 * (daemons/vmm): the first byte picks the parser, the rest is its input.
 *  - 0: a CreateVm message (vmm_parse_create) under the default limits;
 *  - 1: an image's metadata.json (vmm_image_metadata_parse);
 *  - 2: an app-compose file (vmm_compose_check, vmm_compose_ids).
 *
 * Invariants: what vmm_parse_create accepts is within the configuration's
 * limits (vcpu, memory, disk, ports in port_range, no repeated host port)
 * and its stored form reads back to the same spec; metadata paths stay
 * under the image folder; MRCONFIGID is layout 1 or 2; nothing leaks
 * (ASan). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "vmm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_create(const uint8_t *data, size_t size)
{
	static struct vmm_conf conf;
	static bool ready;
	struct vmm_spec spec, back;
	struct vmm_files f;
	uint8_t *env = NULL;
	char err[512];
	json_t *j, *stored;

	if (!ready) {
		vmm_conf_defaults(&conf);
		if (vmm_conf_check(&conf, err, sizeof(err)) != CVM_OK)
			__builtin_trap();
		ready = true;
	}
	j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (j == NULL)
		return;
	if (vmm_parse_create(&conf, j, &spec, &f, &env, err, sizeof(err)) == CVM_OK) {
		if (spec.vcpu == 0 || spec.vcpu > conf.max_vcpu || spec.memory_mb == 0 ||
		    spec.memory_mb > conf.max_memory_mb || spec.disk_gb == 0 ||
		    spec.disk_gb > conf.max_disk_gb || spec.port_count > VMM_PORTS_MAX ||
		    !vmm_image_name_ok(spec.image))
			__builtin_trap();
		for (size_t i = 0; i < spec.port_count; i++) {
			if (spec.ports[i].host_port < conf.port_from ||
			    spec.ports[i].host_port > conf.port_to || spec.ports[i].vm_port == 0 ||
			    strchr(spec.ports[i].host_address, ',') != NULL)
				__builtin_trap();
			for (size_t k = 0; k < i; k++) {
				if (spec.ports[k].host_port == spec.ports[i].host_port &&
				    strcmp(spec.ports[k].protocol, spec.ports[i].protocol) == 0)
					__builtin_trap();
			}
		}
		if ((f.env == NULL) != (env == NULL) || (f.compose_len != 0 && f.compose == NULL))
			__builtin_trap();
		stored = vmm_spec_to_json(&spec);
		if (stored != NULL) {
			if (vmm_spec_from_json(stored, &back) != CVM_OK || back.vcpu != spec.vcpu ||
			    back.port_count != spec.port_count || strcmp(back.name, spec.name) != 0 ||
			    strcmp(back.app_id, spec.app_id) != 0)
				__builtin_trap();
			json_decref(stored);
		}
	}
	free(env);
	json_decref(j);
}

static void check_metadata(const uint8_t *data, size_t size)
{
	struct vmm_image img;
	char err[512];
	const char *paths[5];

	if (vmm_image_metadata_parse(data, size, "/img/x", &img, err, sizeof(err)) != CVM_OK)
		return;
	paths[0] = img.bios;
	paths[1] = img.bios_sev;
	paths[2] = img.kernel;
	paths[3] = img.initrd;
	paths[4] = img.rootfs;
	for (size_t i = 0; i < 5; i++) {
		if (paths[i][0] != '\0' &&
		    (strncmp(paths[i], "/img/x/", 7) != 0 || strchr(paths[i] + 7, '/') != NULL ||
		     strcmp(paths[i] + 7, "..") == 0))
			__builtin_trap();
	}
}

static void check_compose(const uint8_t *data, size_t size)
{
	uint8_t hash[32], m[48], hd[32];
	char err[512];
	int a, b;

	a = vmm_compose_check(data, size, hash, err, sizeof(err));
	b = vmm_compose_ids(data, size, NULL, m, hd, err, sizeof(err));
	if (a != CVM_OK && b == CVM_OK)
		__builtin_trap();
	if (b == CVM_OK && m[0] != 1 && m[0] != 2)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		check_create(data + 1, size - 1);
		break;
	case 1:
		check_metadata(data + 1, size - 1);
		break;
	default:
		check_compose(data + 1, size - 1);
		break;
	}
	return 0;
}

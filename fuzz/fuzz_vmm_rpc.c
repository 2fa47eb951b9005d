/* libFuzzer harness for cvm-vmmd's request parser and validator
 * (daemons/vmm): the first byte picks the parser, the rest is its input.
 *  - 0: a CreateVm message (vmm_parse_create) under the default limits;
 *  - 1: an image's metadata.json (vmm_image_metadata_parse);
 *  - 2: an app-compose file (vmm_compose_check, vmm_compose_ids);
 *  - 3: a line from a guest's host channel (vmm_channel_line), against a
 *    database in a temporary folder: what it records is printable ASCII
 *    shorter than VMM_PROGRESS_MAX.
 *
 * Invariants: what vmm_parse_create accepts is within the configuration's
 * limits (vcpu, memory, disk, ports in port_range, no repeated host port)
 * and its stored form reads back to the same spec; metadata paths stay
 * under the image folder; MRCONFIGID is layout 1 or 2; nothing leaks
 * (ASan). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
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

/* the channel mode's temporary run_dir, removed when the process ends */
static char channel_dir[] = "/tmp/cvm-fuzz-vmm.XXXXXX";

static void remove_channel_dir(void)
{
	(void)vmm_rmtree(channel_dir);
}

static void check_channel(const uint8_t *data, size_t size)
{
	static struct vmm_conf conf;
	static struct vmm v;
	static bool ready;
	static const char id[] = "00000000-0000-4000-8000-000000000001";
	struct vmm_vm vm;
	char err[256];

	if (!ready) {
		char *dir = channel_dir, path[64];

		vmm_conf_defaults(&conf);
		if (mkdtemp(dir) == NULL || atexit(remove_channel_dir) != 0)
			__builtin_trap();
		/* what a guest line may write (its instance info) stays in here */
		(void)snprintf(conf.run_dir, sizeof(conf.run_dir), "%s", dir);
		if (vmm_conf_check(&conf, err, sizeof(err)) != CVM_OK)
			__builtin_trap();
		(void)snprintf(path, sizeof(path), "%s/vmm.db", dir);
		v.conf = &conf;
		memset(&vm, 0, sizeof(vm));
		(void)snprintf(vm.id, sizeof(vm.id), "%s", id);
		(void)snprintf(vm.name, sizeof(vm.name), "fuzz");
		(void)snprintf(vm.state, sizeof(vm.state), "%s", VMM_ST_CREATING);
		(void)snprintf(vm.spec.name, sizeof(vm.spec.name), "fuzz");
		(void)snprintf(vm.spec.image, sizeof(vm.spec.image), "img");
		vm.spec.vcpu = 1;
		vm.spec.memory_mb = 128;
		vm.spec.disk_gb = 1;
		if (vmm_db_open(path, &v.db, err, sizeof(err)) != CVM_OK ||
		    vmm_db_insert(v.db, &vm, 1000, 10, err, sizeof(err)) != CVM_OK)
			__builtin_trap();
		ready = true;
	}
	if (size > VMM_CHANNEL_LINE_MAX)
		return; /* the reader drops longer lines before they reach the parser */
	vmm_channel_line(&v, id, (const char *)data, size);
	if (vmm_db_get(v.db, id, &vm) != CVM_OK || strlen(vm.boot_progress) >= VMM_PROGRESS_MAX)
		__builtin_trap();
	for (const char *p = vm.boot_progress; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			__builtin_trap();
	for (const char *p = vm.last_error; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	switch (data[0] % 4) {
	case 0:
		check_create(data + 1, size - 1);
		break;
	case 1:
		check_metadata(data + 1, size - 1);
		break;
	case 2:
		check_compose(data + 1, size - 1);
		break;
	default:
		check_channel(data + 1, size - 1);
		break;
	}
	return 0;
}

/* cvm-vmmd's QEMU command lines (daemons/vmm/qemu.c) for the three
 * platforms, and image metadata (daemons/vmm/image.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/encoding.h>

#include "vmm.h"

struct fx {
	struct vmm_conf conf;
	struct vmm_vm vm;
	struct vmm_image img;
	struct vmm_launch l;
	struct vmm_argv a;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	vmm_conf_defaults(&f->conf);
	assert_int_equal(vmm_conf_check(&f->conf, err, sizeof(err)), CVM_OK);
	(void)snprintf(f->vm.id, sizeof(f->vm.id), "0e0e0e0e-0000-4000-8000-000000000001");
	(void)snprintf(f->vm.name, sizeof(f->vm.name), "app1");
	f->vm.cid = 1007;
	f->vm.spec.vcpu = 2;
	f->vm.spec.memory_mb = 2048;
	f->vm.spec.disk_gb = 10;
	f->vm.spec.port_count = 2;
	(void)snprintf(f->vm.spec.ports[0].protocol, 4, "tcp");
	f->vm.spec.ports[0].host_port = 18080;
	f->vm.spec.ports[0].vm_port = 80;
	(void)snprintf(f->vm.spec.ports[1].protocol, 4, "udp");
	(void)snprintf(f->vm.spec.ports[1].host_address, 64, "0.0.0.0");
	f->vm.spec.ports[1].host_port = 18053;
	f->vm.spec.ports[1].vm_port = 53;
	(void)snprintf(f->img.bios, sizeof(f->img.bios), "/img/ovmf.fd");
	(void)snprintf(f->img.bios_sev, sizeof(f->img.bios_sev), "/img/ovmf-sev.fd");
	(void)snprintf(f->img.kernel, sizeof(f->img.kernel), "/img/bzImage");
	(void)snprintf(f->img.initrd, sizeof(f->img.initrd), "/img/initramfs.cpio.gz");
	(void)snprintf(f->img.rootfs, sizeof(f->img.rootfs), "/img/rootfs.img");
	(void)snprintf(f->img.cmdline, sizeof(f->img.cmdline), "console=ttyS0 panic=1");
	f->l.conf = &f->conf;
	f->l.vm = &f->vm;
	f->l.image = &f->img;
	f->l.work_dir = "/run/vmm/0e0e0e0e-0000-4000-8000-000000000001";
	for (size_t i = 0; i < 48; i++)
		f->l.mrconfigid[i] = (uint8_t)i;
	for (size_t i = 0; i < 32; i++)
		f->l.host_data[i] = (uint8_t)(0xa0 + i);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	vmm_argv_cleanup(&f->a);
	free(f);
	return 0;
}

/* value_of returns the argument after the n-th (0-based) `opt`, or NULL. */
static const char *value_of(const struct vmm_argv *a, const char *opt, size_t n)
{
	for (size_t i = 0; i + 1 < a->count; i++) {
		if (strcmp(a->v[i], opt) == 0 && n-- == 0)
			return a->v[i + 1];
	}
	return NULL;
}

static bool has(const struct vmm_argv *a, const char *opt, const char *val)
{
	for (size_t i = 0; i < a->count; i++) {
		if (strcmp(a->v[i], opt) != 0)
			continue;
		if (val == NULL || (i + 1 < a->count && strcmp(a->v[i + 1], val) == 0))
			return true;
	}
	return false;
}

static void dev_runs_tcg_with_ovmf_swtpm_9p_hostfwd_and_a_serial_channel(void **state)
{
	struct fx *f = *state;

	f->conf.platform = VMM_PLATFORM_DEV;
	assert_int_equal(vmm_qemu_argv(&f->l, &f->a), CVM_OK);
	assert_null(f->a.v[f->a.count]);
	assert_string_equal(f->a.v[0], "/usr/bin/qemu-system-x86_64");
	assert_true(has(&f->a, "-machine", "q35,accel=tcg,smm=off"));
	assert_false(has(&f->a, "-cpu", NULL)); /* TCG: the default CPU */
	assert_true(has(&f->a, "-smp", "2"));
	assert_true(has(&f->a, "-m", "2048M"));
	assert_true(has(&f->a, "-bios", "/img/ovmf.fd"));
	assert_true(has(&f->a, "-kernel", "/img/bzImage"));
	assert_true(has(&f->a, "-initrd", "/img/initramfs.cpio.gz"));
	assert_true(has(&f->a, "-append", "console=ttyS0 panic=1"));
	assert_true(has(&f->a, "-daemonize", NULL));
	assert_false(has(&f->a, "-S", NULL));
	assert_true(has(&f->a, "-pidfile", "/run/vmm/0e0e0e0e-0000-4000-8000-000000000001/qemu.pid"));
	assert_true(has(&f->a, "-qmp",
	                "unix:/run/vmm/0e0e0e0e-0000-4000-8000-000000000001/qmp.sock,server=on,wait=off"));
	assert_true(has(&f->a, "-netdev",
	                "user,id=net0,hostfwd=tcp:127.0.0.1:18080-:80,hostfwd=udp:0.0.0.0:18053-:53"));
	assert_true(
	    has(&f->a, "-virtfs",
	        "local,path=/run/vmm/0e0e0e0e-0000-4000-8000-000000000001/shared,mount_tag=host-shared,"
	        "readonly=on,security_model=mapped,id=virtfs0"));
	assert_true(has(&f->a, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm"));
	assert_true(has(&f->a, "-device", "tpm-crb,tpmdev=tpm0"));
	assert_true(has(&f->a, "-device", "virtserialport,chardev=vmm0,name=org.cvmkit.host.0"));
	assert_true(has(&f->a, "-drive", "file=/img/rootfs.img,if=none,id=hd0,format=raw,readonly=on"));
	assert_true(
	    has(&f->a, "-drive",
	        "file=/run/vmm/0e0e0e0e-0000-4000-8000-000000000001/hda.img,if=none,id=hd1,format=qcow2"));
	/* no TEE objects, no vsock on dev */
	assert_false(has(&f->a, "-object", NULL));
	assert_null(strstr(value_of(&f->a, "-device", 0), "vhost-vsock"));
	for (size_t i = 0; i < f->a.count; i++)
		assert_null(strstr(f->a.v[i], "vhost-vsock"));
}

static void dev_uses_kvm_and_the_host_cpu_when_kvm_is_usable_and_S_when_asked(void **state)
{
	struct fx *f = *state;

	f->l.kvm = true;
	f->conf.start_paused = true;
	assert_int_equal(vmm_qemu_argv(&f->l, &f->a), CVM_OK);
	assert_true(has(&f->a, "-machine", "q35,accel=kvm,smm=off"));
	assert_true(has(&f->a, "-cpu", "host"));
	assert_true(has(&f->a, "-S", NULL));
}

static void tdx_has_the_tdx_guest_object_with_base64_mrconfigid_and_vsock(void **state)
{
	struct fx *f = *state;
	char *b64 = cvm_base64_encode_new(f->l.mrconfigid, 48);
	char want[256];

	assert_non_null(b64);
	f->conf.platform = VMM_PLATFORM_TDX;
	assert_int_equal(vmm_qemu_argv(&f->l, &f->a), CVM_OK);
	assert_true(has(&f->a, "-accel", "kvm"));
	assert_true(has(&f->a, "-cpu", "host"));
	assert_true(
	    has(&f->a, "-machine", "q35,kernel-irqchip=split,confidential-guest-support=tdx,hpet=off"));
	(void)snprintf(want, sizeof(want),
	               "{\"qom-type\":\"tdx-guest\",\"id\":\"tdx\",\"mrconfigid\":\"%s\","
	               "\"quote-generation-socket\":{\"type\":\"vsock\",\"cid\":\"2\",\"port\":\"4050\"}}",
	               b64);
	assert_string_equal(value_of(&f->a, "-object", 0), want);
	assert_true(has(&f->a, "-device", "vhost-vsock-pci,guest-cid=1007"));
	assert_false(has(&f->a, "-tpmdev", NULL)); /* the TD has its own RTMRs */
	/* the host channel as in dev: virtio-serial to the work dir's guest.sock */
	assert_true(has(&f->a, "-device", "virtserialport,chardev=vmm0,name=org.cvmkit.host.0"));
	assert_true(
	    has(&f->a, "-chardev",
	        "socket,id=vmm0,path=/run/vmm/0e0e0e0e-0000-4000-8000-000000000001/guest.sock,server=on,"
	        "wait=off"));
	assert_true(has(&f->a, "-bios", "/img/ovmf.fd"));
	free(b64);
}

static void snp_has_the_snp_guest_with_host_data_memfd_and_no_legacy_virtio(void **state)
{
	struct fx *f = *state;
	char *b64 = cvm_base64_encode_new(f->l.host_data, 32);
	char want[256];

	assert_non_null(b64);
	f->conf.platform = VMM_PLATFORM_SNP;
	assert_int_equal(vmm_qemu_argv(&f->l, &f->a), CVM_OK);
	assert_true(has(&f->a, "-cpu", "EPYC-v4"));
	assert_true(has(&f->a, "-machine", "q35,confidential-guest-support=sev0,memory-backend=ram1"));
	assert_string_equal(value_of(&f->a, "-object", 0),
	                    "memory-backend-memfd,id=ram1,size=2048M,share=true,prealloc=false");
	(void)snprintf(want, sizeof(want),
	               "sev-snp-guest,id=sev0,policy=0x30000,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on,"
	               "host-data=%s",
	               b64);
	assert_string_equal(value_of(&f->a, "-object", 1), want);
	assert_true(has(&f->a, "-bios", "/img/ovmf-sev.fd"));
	assert_true(
	    has(&f->a, "-device", "vhost-vsock-pci,guest-cid=1007,disable-legacy=on,iommu_platform=true"));
	assert_true(has(&f->a, "-device", "virtio-blk-pci,drive=hd1,disable-legacy=on,iommu_platform=true"));
	assert_true(
	    has(&f->a, "-device", "virtio-net-pci,netdev=net0,disable-legacy=on,iommu_platform=true"));
	assert_true(has(&f->a, "-device", "virtio-serial-pci,disable-legacy=on,iommu_platform=true"));
	assert_true(has(&f->a, "-device", "virtserialport,chardev=vmm0,name=org.cvmkit.host.0"));
	free(b64);
}

static void argv_refuses_zero_resources_and_a_work_dir_qemu_would_split(void **state)
{
	struct fx *f = *state;

	f->vm.spec.vcpu = 0;
	assert_int_equal(vmm_qemu_argv(&f->l, &f->a), CVM_E_INVAL);
	assert_null(f->a.v);
	f->vm.spec.vcpu = 1;
	f->l.work_dir = "/run/a,b";
	assert_int_equal(vmm_qemu_argv(&f->l, &f->a), CVM_E_INVAL);
	f->l.work_dir = "relative";
	assert_int_equal(vmm_qemu_argv(&f->l, &f->a), CVM_E_INVAL);
}

static void image_metadata_resolves_names_in_the_image_dir_only(void **state)
{
	static const char ok[] =
	    "{\"bios\":\"ovmf.fd\",\"kernel\":\"bzImage\",\"initrd\":\"initramfs.cpio.gz\","
	    "\"rootfs\":\"rootfs.img\",\"cmdline\":\"console=ttyS0\",\"version\":\"0.5.8\","
	    "\"is_dev\":true,\"acpi_probe_initrd\":\"acpi-probe.img\"}";
	struct vmm_image img;
	char err[256];

	(void)state;
	assert_int_equal(
	    vmm_image_metadata_parse((const uint8_t *)ok, strlen(ok), "/img/x", &img, err, sizeof(err)),
	    CVM_OK);
	assert_string_equal(img.kernel, "/img/x/bzImage");
	assert_string_equal(img.bios, "/img/x/ovmf.fd");
	assert_string_equal(img.acpi_probe_initrd, "/img/x/acpi-probe.img");
	assert_string_equal(img.cmdline, "console=ttyS0");
	assert_string_equal(img.version, "0.5.8");
	assert_true(img.is_dev);
	for (size_t n = 0; n < strlen(ok); n++)
		assert_int_not_equal(
		    vmm_image_metadata_parse((const uint8_t *)ok, n, "/img/x", &img, err, sizeof(err)),
		    CVM_OK);
	static const char *const bad[] = {
	    "{\"kernel\":\"../../etc/passwd\"}",
	    "{\"kernel\":\"/etc/passwd\"}",
	    "{\"kernel\":\"..\"}",
	    "{\"kernel\":\"\"}",
	    "{\"kernel\":7}",
	    "{\"version\":\"1\"}",
	    "[]",
	    "{\"kernel\":\"k\",\"kernel\":\"k\"}",
	    "{\"kernel\":\"k\",\"cmdline\":1}",
	    "{\"kernel\":\"k\",\"acpi_probe_initrd\":\"../probe\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(vmm_image_metadata_parse((const uint8_t *)bad[i], strlen(bad[i]),
		                                              "/img/x", &img, err, sizeof(err)),
		                     CVM_OK);
	assert_true(vmm_image_name_ok("dstack-0.5.8"));
	assert_false(vmm_image_name_ok(".."));
	assert_false(vmm_image_name_ok("a/b"));
	assert_false(vmm_image_name_ok(""));
}

static void mrconfigid_is_layout_1_without_key_provider_id_and_2_with_it(void **state)
{
	static const char c1[] = "{\"manifest_version\":2,\"name\":\"a\",\"runner\":\"docker-compose\","
	                         "\"docker_compose_file\":\"services: {}\"}";
	static const char c2[] = "{\"manifest_version\":2,\"name\":\"a\",\"runner\":\"docker-compose\","
	                         "\"docker_compose_file\":\"services: {}\",\"key_provider\":\"kms\","
	                         "\"key_provider_id\":\"0a0b\"}";
	uint8_t m[48], hd[32], hash[32], zero[15] = {0};
	char err[256];

	(void)state;
	assert_int_equal(vmm_compose_ids((const uint8_t *)c1, strlen(c1), NULL, m, hd, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(vmm_compose_check((const uint8_t *)c1, strlen(c1), hash, err, sizeof(err)), CVM_OK);
	assert_int_equal(m[0], 1);
	assert_memory_equal(m + 1, hash, 32);
	assert_memory_equal(m + 33, zero, 15);
	assert_int_equal(vmm_compose_ids((const uint8_t *)c2, strlen(c2), NULL, m, hd, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(m[0], 2);
	assert_memory_equal(m + 33, zero, 15);
	assert_int_not_equal(vmm_compose_ids((const uint8_t *)"[]", 2, NULL, m, hd, err, sizeof(err)),
	                     CVM_OK);
	/* lib/app's schema: an unknown key is named */
	assert_int_not_equal(
	    vmm_compose_check((const uint8_t *)"{\"manifest_version\":2,\"kms_enable\":true}", 40, hash, err,
	                      sizeof(err)),
	    CVM_OK);
	assert_non_null(strstr(err, "kms_enable"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(dev_runs_tcg_with_ovmf_swtpm_9p_hostfwd_and_a_serial_channel,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(dev_uses_kvm_and_the_host_cpu_when_kvm_is_usable_and_S_when_asked,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(tdx_has_the_tdx_guest_object_with_base64_mrconfigid_and_vsock,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(snp_has_the_snp_guest_with_host_data_memfd_and_no_legacy_virtio,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(argv_refuses_zero_resources_and_a_work_dir_qemu_would_split,
	                                    setup, teardown),
	    cmocka_unit_test(image_metadata_resolves_names_in_the_image_dir_only),
	    cmocka_unit_test(mrconfigid_is_layout_1_without_key_provider_id_and_2_with_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

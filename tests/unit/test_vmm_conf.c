/* cvm-vmmd's configuration (daemons/vmm/conf.c) and its CreateVm parser
 * and validator (vmm_parse_create in daemons/vmm/api.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

static int parse(struct vmm_conf *c, const char *text, char *err, size_t err_len)
{
	vmm_conf_defaults(c);
	return vmm_conf_parse(c, text, err, err_len);
}

static void defaults_are_valid_and_documented_values(void **state)
{
	struct vmm_conf c;
	char err[512];

	(void)state;
	assert_int_equal(parse(&c, "", err, sizeof(err)), CVM_OK);
	assert_string_equal(c.listen, "127.0.0.1:9080");
	assert_string_equal(c.run_dir, "/var/lib/cvmkit/vmm");
	assert_int_equal(c.platform, VMM_PLATFORM_DEV);
	assert_int_equal(c.cid_start, 1000);
	assert_int_equal(c.cid_pool_size, 1000);
	assert_int_equal(c.token_count, 0);
}

static void a_full_config_is_read(void **state)
{
	static const char text[] = "[vmm]\nlisten = unix:/run/cvm-vmmd.sock\nrun_dir = /srv/vmm\n"
	                           "image_dir = /srv/images\nqemu = /opt/qemu\nplatform = tdx\n"
	                           "[cvm]\nkms_urls = https://kms1:8000, https://kms2:8000\n"
	                           "gateway_urls = https://gw:9000\ncid_start = 2000\ncid_pool_size = 10\n"
	                           "max_vcpu = 8\nmax_memory_mb = 4096\nmax_disk_gb = 100\n"
	                           "port_range = 30000-30010\nhost_address = 0.0.0.0\n"
	                           "[auth]\ntokens = tok1,tok2\n";
	struct vmm_conf c;
	char err[512];

	(void)state;
	assert_int_equal(parse(&c, text, err, sizeof(err)), CVM_OK);
	assert_int_equal(c.platform, VMM_PLATFORM_TDX);
	assert_int_equal(c.kms_url_count, 2);
	assert_string_equal(c.kms_urls[1], "https://kms2:8000");
	assert_int_equal(c.gateway_url_count, 1);
	assert_int_equal(c.port_from, 30000);
	assert_int_equal(c.port_to, 30010);
	assert_int_equal(c.token_count, 2);
	assert_string_equal(c.tokens[1], "tok2");
	assert_int_equal(c.max_vcpu, 8);
}

static void bad_configs_are_refused_with_a_message_naming_the_key(void **state)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"[vmm]\ncolour = blue\n", "unknown key [vmm] colour"},
	    {"[vm]\nlisten = x\n", "unknown key [vm] listen"},
	    {"[vmm]\nplatform = sev\n", "[vmm] platform: sev is not dev, tdx or snp"},
	    {"[vmm]\nplatform = tdx\naccel = tcg\n", "tcg cannot run tdx guests"},
	    {"[vmm]\naccel = hvf\n", "[vmm] accel"},
	    {"[vmm]\nlisten = nowhere\n", "[vmm] listen"},
	    {"[vmm]\nlisten = 0.0.0.0:9080\n", "[auth] tokens is empty"},
	    {"[vmm]\nrun_dir = relative\n", "absolute"},
	    {"[cvm]\nport_range = 20000\n", "port_range: 20000 is not FROM-TO"},
	    {"[cvm]\nport_range = 30000-20000\n", "FROM <= TO"},
	    {"[cvm]\nport_range = 0-10\n", "FROM <= TO"},
	    {"[cvm]\nmax_vcpu = 0\n", "max_vcpu"},
	    {"[cvm]\ncid_start = 1\n", "cid_start"},
	    {"[cvm]\nkms_urls = a b c d e f g h i\n", "kms_urls"},
	    {"[auth]\ntokens = /nonexistent/tokens\n", "cannot read /nonexistent/tokens"},
	    {"[vmm]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n", "set twice"},
	};
	struct vmm_conf c;
	char err[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_not_equal(parse(&c, bad[i].text, err, sizeof(err)), CVM_OK);
		if (strstr(err, bad[i].want) == NULL)
			fail_msg("config %zu: message \"%s\" lacks \"%s\"", i, err, bad[i].want);
	}
}

static void tokens_come_from_a_file_one_a_line(void **state)
{
	char path[] = "/tmp/cvm-vmm-tokens.XXXXXX", text[128], err[512];
	struct vmm_conf c;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "alpha\nbeta\n\n", 12), 12);
	(void)close(fd);
	(void)snprintf(text, sizeof(text), "[vmm]\nlisten = 0.0.0.0:9080\n[auth]\ntokens = %s\n", path);
	assert_int_equal(parse(&c, text, err, sizeof(err)), CVM_OK);
	assert_int_equal(c.token_count, 2);
	assert_string_equal(c.tokens[0], "alpha");
	assert_string_equal(c.tokens[1], "beta");
	(void)unlink(path);
}

static int create(const struct vmm_conf *c, const char *json, struct vmm_spec *s, char *err, size_t err_len)
{
	struct vmm_files f;
	uint8_t *env = NULL;
	json_t *j = json_loads(json, JSON_REJECT_DUPLICATES, NULL);
	int r;

	assert_non_null(j);
	r = vmm_parse_create(c, j, s, &f, &env, err, err_len);
	free(env);
	json_decref(j);
	return r;
}

static void create_messages_are_validated_against_the_limits(void **state)
{
	static const struct {
		const char *json, *want;
	} bad[] = {
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"x\":1}",
	     "unknown field x"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":0,\"memory\":64,\"disk_size\":1}",
	     "vcpu must be from 1"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":17,\"memory\":64,\"disk_size\":1}", "max_vcpu"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":0,\"disk_size\":1}", "memory must be"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":0}",
	     "disk_size must be"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":-1,\"memory\":64,\"disk_size\":1}",
	     "vcpu must be an integer"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":\"1\",\"memory\":64,\"disk_size\":1}",
	     "vcpu must be an integer"},
	    {"{\"name\":\"\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1}", "name must be"},
	    {"{\"name\":\"a/b\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1}", "name must be"},
	    {"{\"name\":\"a\",\"image\":\"../x\",\"vcpu\":1,\"memory\":64,\"disk_size\":1}",
	     "image must name"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"ports\":[{\"host_"
	     "port\":"
	     "9,\"vm_port\":1}]}",
	     "outside [cvm] port_range"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"ports\":[{\"host_"
	     "port\":"
	     "10000,\"vm_port\":1},{\"host_port\":10000,\"vm_port\":2}]}",
	     "given twice"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"ports\":[{\"host_"
	     "port\":"
	     "10000,\"vm_port\":0}]}",
	     "vm_port"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"ports\":[{\"host_"
	     "port\":"
	     "10000,\"vm_port\":1,\"host_address\":\"evil,hostfwd=tcp::1-:2\"}]}",
	     "numeric IPv4 address"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"ports\":[{\"host_"
	     "port\":"
	     "10000,\"vm_port\":1,\"host_address\":\"::1\"}]}",
	     "numeric IPv4 address"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"ports\":{}}",
	     "array"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"hugepages\":true}",
	     "hugepages is not supported"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"encrypted_env\":"
	     "\"zz\"}",
	     "encrypted_env must be hex"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"app_id\":\"12\"}",
	     "app_id must be 20 bytes"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"kms_urls\":[\"\"]}",
	     "kms_urls"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"stopped\":1}",
	     "stopped must be a boolean"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"app_images\":"
	     "[\"../x.tar\"]}",
	     "app_images[0] must be the file name"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"app_images\":"
	     "[\"app.tgz\"]}",
	     "NAME.tar"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"app_images\":"
	     "[\"a.tar\",\"a.tar\"]}",
	     "given twice"},
	    {"{\"name\":\"a\",\"image\":\"i\",\"vcpu\":1,\"memory\":64,\"disk_size\":1,\"app_images\":"
	     "\"a.tar\"}",
	     "array of at most 16"},
	};
	struct vmm_conf c;
	struct vmm_spec s;
	char err[512];

	(void)state;
	vmm_conf_defaults(&c);
	assert_int_equal(vmm_conf_check(&c, err, sizeof(err)), CVM_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_not_equal(create(&c, bad[i].json, &s, err, sizeof(err)), CVM_OK);
		if (strstr(err, bad[i].want) == NULL)
			fail_msg("message %zu: \"%s\" lacks \"%s\"", i, err, bad[i].want);
	}
	assert_int_equal(create(&c,
	                        "{\"name\":\"a\",\"image\":\"i\",\"vcpu\":2,\"memory\":64,\"disk_size\":3,"
	                        "\"ports\":[{\"protocol\":\"udp\",\"host_port\":10001,\"vm_port\":53}],"
	                        "\"app_id\":\"0xABCDEF0123456789abcdef0123456789abcdef01\",\"stopped\":true,"
	                        "\"hugepages\":false,\"gpus\":null,\"encrypted_env\":\"00ff\"}",
	                        &s, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(s.vcpu, 2);
	assert_int_equal(s.disk_gb, 3);
	assert_int_equal(s.port_count, 1);
	assert_string_equal(s.ports[0].protocol, "udp");
	assert_string_equal(s.app_id, "abcdef0123456789abcdef0123456789abcdef01");
	assert_true(s.stopped);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(defaults_are_valid_and_documented_values),
	    cmocka_unit_test(a_full_config_is_read),
	    cmocka_unit_test(bad_configs_are_refused_with_a_message_naming_the_key),
	    cmocka_unit_test(tokens_come_from_a_file_one_a_line),
	    cmocka_unit_test(create_messages_are_validated_against_the_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* lib/qemu: the ACPI probe's pieces that run no process.
 *  - the argv rewrite (include/cvmkit/qemu.h, cvm_qemu_probe_cmd_make): each
 *    rule on a dstack-like command line, escaped commas, and the refusals
 *    (no serial port with -nodefaults, an option without its value, a JSON
 *    -blockdev, a work dir with a comma);
 *  - the serial-output parser on a log built here (blobs with OpenSSL's
 *    SHA-256, base64 in 76-column lines, firmware escapes, CRLF, kernel
 *    lines around): the blobs come back; every truncation fails; every bit
 *    flip inside the marked region fails or changes a blob; a second DONE, a
 *    kernel line inside a blob, a wrong length or digest, an oversize RSDP,
 *    a MISSING file are refused with their codes;
 *  - the probe initrd: byte-for-byte reproducible, a gzip that gzip -t
 *    accepts of a cpio that cpio lists with the expected members; a
 *    busybox that is not ELF is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include <cvmkit/err.h>
#include <cvmkit/file.h>
#include <cvmkit/qemu.h>

#define WORK "/w"

static size_t find(const struct cvm_qemu_probe_cmd *c, const char *s, size_t from)
{
	for (size_t i = from; i < c->count; i++)
		if (strcmp(c->args[i], s) == 0)
			return i;
	return SIZE_MAX;
}

static size_t count_of(const struct cvm_qemu_probe_cmd *c, const char *s)
{
	size_t n = 0;

	for (size_t i = 0; i < c->count; i++)
		if (strcmp(c->args[i], s) == 0)
			n++;
	return n;
}

/* value_of returns the value after the n-th (from 0) occurrence of `opt`. */
static const char *value_of(const struct cvm_qemu_probe_cmd *c, const char *opt, size_t n)
{
	size_t at = 0;

	for (size_t k = 0; k <= n; k++) {
		at = find(c, opt, k == 0 ? 0 : at + 1);
		if (at == SIZE_MAX || at + 1 >= c->count)
			return NULL;
	}
	return c->args[at + 1];
}

static void make(const char *const *args, size_t n, struct cvm_qemu_probe_cmd *c)
{
	char err[512] = "";
	int r = cvm_qemu_probe_cmd_make(args, n, "/k/vmlinuz", "/k/probe.gz", WORK, c, err, sizeof(err));

	if (r != CVM_OK)
		fail_msg("rewrite failed: %s (%s)", cvm_strerror(r), err);
	assert_null(c->args[c->count]);
}

/* The shape of cvm-vmmd's (dstack's) QEMU command line (spec §8.4). */
static const char *const dstack_args[] = {
    "-accel",
    "tcg",
    "-nographic",
    "-nodefaults",
    "-chardev",
    "pty,id=com0,path=/run/vm/serial.pty,logfile=/run/vm/serial.log,logappend=on",
    "-serial",
    "chardev:com0",
    "-qmp",
    "unix:/run/vm/qmp.sock,server,wait=off",
    "-bios",
    "/usr/share/ovmf/OVMF.fd",
    "-kernel",
    "/img/bzImage",
    "-initrd",
    "/img/initramfs.cpio.gz",
    "-drive",
    "file=/img/rootfs.img,if=none,id=hd0,format=raw,readonly=on",
    "-device",
    "virtio-blk-pci,drive=hd0",
    "-drive",
    "file=/run/vm/hda.img,if=none,id=hd1,snapshot=off",
    "-device",
    "virtio-blk-pci,drive=hd1",
    "-netdev",
    "user,id=net0,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=tcp::2222-:22",
    "-device",
    "virtio-net-pci,netdev=net0",
    "-netdev",
    "tap,id=net1,ifname=tap7,script=no",
    "-device",
    "virtio-net-pci,netdev=net1",
    "-chardev",
    "socket,id=chrtpm,path=/run/vm/swtpm.sock",
    "-tpmdev",
    "emulator,id=tpm0,chardev=chrtpm",
    "-device",
    "tpm-crb,tpmdev=tpm0",
    "-chardev",
    "socket,id=cmd,path=/run/vm/cmd.sock,server=on,wait=off",
    "-device",
    "virtio-serial-pci",
    "-device",
    "virtserialport,chardev=cmd",
    "-virtfs",
    "local,path=/run/vm/shared,mount_tag=host-shared,readonly=on,security_model=mapped,id=virtfs0",
    "-object",
    "memory-backend-file,id=mem0,size=2G,mem-path=/dev/hugepages,share=on,prealloc=on",
    "-object",
    "{\"qom-type\":\"tdx-guest\",\"id\":\"tdx\"}",
    "-pidfile",
    "/run/vm/qemu.pid",
    "-daemonize",
    "-smp",
    "2",
    "--m",
    "2048M",
    "-append",
    "console=ttyS0 root=/dev/vda",
};

static void rewrite_keeps_devices_and_replaces_host_resources(void **state)
{
	struct cvm_qemu_probe_cmd c;
	const char *v;

	(void)state;
	make(dstack_args, sizeof(dstack_args) / sizeof(dstack_args[0]), &c);
	/* rule 1: the probe's kernel, initrd and command line, once each */
	assert_int_equal(count_of(&c, "-kernel"), 1);
	assert_int_equal(count_of(&c, "-initrd"), 1);
	assert_int_equal(count_of(&c, "-append"), 1);
	assert_string_equal(value_of(&c, "-kernel", 0), "/k/vmlinuz");
	assert_string_equal(value_of(&c, "-initrd", 0), "/k/probe.gz");
	assert_string_equal(value_of(&c, "-append", 0), "console=ttyS0 loglevel=0 quiet panic=-1");
	/* rule 2: every drive snapshotted, snapshot=off replaced */
	assert_string_equal(value_of(&c, "-drive", 0),
	                    "file=/img/rootfs.img,if=none,id=hd0,format=raw,readonly=on,snapshot=on");
	assert_string_equal(value_of(&c, "-drive", 1), "file=/run/vm/hda.img,if=none,id=hd1,snapshot=on");
	assert_int_not_equal(find(&c, "-snapshot", 0), SIZE_MAX);
	/* rule 3: no host forward, the tap becomes user networking */
	assert_string_equal(value_of(&c, "-netdev", 0), "user,id=net0,net=10.0.2.0/24");
	assert_string_equal(value_of(&c, "-netdev", 1), "user,id=net1");
	/* rules 4 and 5: the console chardev writes to the work dir, the others are null */
	assert_string_equal(value_of(&c, "-chardev", 0), "file,id=com0,path=" WORK "/console.log");
	assert_string_equal(value_of(&c, "-serial", 0), "chardev:com0");
	assert_string_equal(value_of(&c, "-chardev", 1), "null,id=chrtpm");
	/* rule 6: the TPM gets the probe's own swtpm */
	assert_int_equal(c.tpm_count, 1);
	assert_string_equal(value_of(&c, "-chardev", 2),
	                    "socket,id=cvm-probe-tpm0,path=" WORK "/swtpm0.sock");
	assert_string_equal(value_of(&c, "-tpmdev", 0), "emulator,id=tpm0,chardev=cvm-probe-tpm0");
	assert_string_equal(value_of(&c, "-chardev", 3), "null,id=cmd");
	/* devices unchanged, in order */
	assert_string_equal(value_of(&c, "-device", 0), "virtio-blk-pci,drive=hd0");
	assert_string_equal(value_of(&c, "-device", 4), "tpm-crb,tpmdev=tpm0");
	assert_string_equal(value_of(&c, "-device", 6), "virtserialport,chardev=cmd");
	assert_non_null(value_of(&c, "-virtfs", 0));
	assert_string_equal(value_of(&c, "-bios", 0), "/usr/share/ovmf/OVMF.fd");
	assert_string_equal(value_of(&c, "-smp", 0), "2");
	assert_string_equal(value_of(&c, "-m", 0), "2048M"); /* --m spelt -m */
	/* rule 7: no host file mapped; a JSON object passes */
	assert_string_equal(value_of(&c, "-object", 0), "memory-backend-ram,id=mem0,size=2G");
	assert_string_equal(value_of(&c, "-object", 1), "{\"qom-type\":\"tdx-guest\",\"id\":\"tdx\"}");
	/* rule 8 */
	assert_int_equal(count_of(&c, "-qmp"), 0);
	assert_int_equal(count_of(&c, "-pidfile"), 0);
	assert_int_equal(count_of(&c, "-daemonize"), 0);
	assert_string_equal(value_of(&c, "-monitor", 0), "none");
	assert_int_not_equal(find(&c, "-no-reboot", 0), SIZE_MAX);
	assert_int_equal(count_of(&c, "-display"), 0); /* -nographic is there */
	assert_int_not_equal(find(&c, "-nographic", 0), SIZE_MAX);
	/* nothing of the real VM's run dir is left but the read-only shares and disks */
	for (size_t i = 0; i < c.count; i++) {
		v = c.args[i];
		if (strstr(v, "/run/vm/") != NULL)
			assert_true(strstr(v, "hda.img") != NULL ||
			            strstr(v, "mount_tag=host-shared") != NULL);
		assert_null(strstr(v, "hostfwd"));
	}
	cvm_qemu_probe_cmd_cleanup(&c);
	cvm_qemu_probe_cmd_cleanup(&c); /* idempotent */
}

static void rewrite_adds_a_serial_port_only_in_place_of_the_default(void **state)
{
	static const char *const plain[] = {"-machine", "q35",       "-m",      "1G",
	                                    "-serial",  "mon:stdio", "-serial", "pty"};
	static const char *const none[] = {"-machine", "q35", "-m", "1G"};
	static const char *const isa[] = {"-nodefaults", "-chardev", "stdio,id=s0,mux=on", "-device",
	                                  "isa-serial,chardev=s0"};
	static const char *const nodef[] = {"-nodefaults", "-machine", "q35"};
	struct cvm_qemu_probe_cmd c;
	char err[256] = "";

	(void)state;
	make(plain, sizeof(plain) / sizeof(plain[0]), &c);
	assert_string_equal(value_of(&c, "-serial", 0), "file:" WORK "/console.log");
	assert_string_equal(value_of(&c, "-serial", 1), "null");
	assert_int_equal(count_of(&c, "-serial"), 2);
	assert_string_equal(value_of(&c, "-display", 0), "none");
	cvm_qemu_probe_cmd_cleanup(&c);

	make(none, sizeof(none) / sizeof(none[0]), &c);
	assert_int_equal(count_of(&c, "-serial"), 1);
	assert_string_equal(value_of(&c, "-serial", 0), "file:" WORK "/console.log");
	cvm_qemu_probe_cmd_cleanup(&c);

	make(isa, sizeof(isa) / sizeof(isa[0]), &c);
	assert_int_equal(count_of(&c, "-serial"), 0);
	assert_string_equal(value_of(&c, "-chardev", 0), "file,id=s0,path=" WORK "/console.log,mux=on");
	cvm_qemu_probe_cmd_cleanup(&c);

	assert_int_equal(cvm_qemu_probe_cmd_make(nodef, 3, "k", "i", WORK, &c, err, sizeof(err)),
	                 CVM_E_UNSUPPORTED);
	assert_non_null(strstr(err, "no serial port"));
	assert_null(c.args);
}

static void rewrite_keeps_escaped_commas_and_refuses_what_it_cannot_rewrite(void **state)
{
	static const char *const esc[] = {"-drive", "file=/d/a,,b.img,if=virtio", "-serial", "stdio"};
	static const char *const novalue[] = {"-serial", "stdio", "-m"};
	static const char *const json_bd[] = {"-serial", "stdio", "-blockdev", "{\"driver\":\"file\"}"};
	static const char *const json_mem[] = {"-serial", "stdio", "-object",
	                                       "{\"qom-type\":\"memory-backend-file\",\"id\":\"m\"}"};
	static const char *const bd[] = {"-serial", "stdio", "-blockdev",
	                                 "driver=file,node-name=f0,filename=/d/x.img,read-only=off"};
	static const char *const readcfg[] = {"-readconfig", "/etc/vm.cfg"};
	static const char *const json_nd[] = {"-serial", "stdio", "-netdev",
	                                      "{\"type\":\"user\",\"id\":\"n0\"}"};
	struct cvm_qemu_probe_cmd c;
	char err[256] = "";

	(void)state;
	make(esc, 4, &c);
	assert_string_equal(value_of(&c, "-drive", 0), "file=/d/a,,b.img,if=virtio,snapshot=on");
	cvm_qemu_probe_cmd_cleanup(&c);
	make(bd, 4, &c);
	assert_string_equal(value_of(&c, "-blockdev", 0),
	                    "driver=file,node-name=f0,filename=/d/x.img,read-only=on");
	cvm_qemu_probe_cmd_cleanup(&c);
	assert_int_equal(cvm_qemu_probe_cmd_make(novalue, 3, "k", "i", WORK, &c, err, sizeof(err)),
	                 CVM_E_FORMAT);
	assert_non_null(strstr(err, "-m"));
	assert_int_equal(cvm_qemu_probe_cmd_make(json_bd, 4, "k", "i", WORK, &c, err, sizeof(err)),
	                 CVM_E_UNSUPPORTED);
	assert_int_equal(cvm_qemu_probe_cmd_make(json_mem, 4, "k", "i", WORK, &c, err, sizeof(err)),
	                 CVM_E_UNSUPPORTED);
	assert_int_equal(cvm_qemu_probe_cmd_make(json_nd, 4, "k", "i", WORK, &c, err, sizeof(err)),
	                 CVM_E_UNSUPPORTED);
	assert_non_null(strstr(err, "JSON -netdev"));
	{
		static const char *const prog[] = {"/usr/bin/qemu-system-x86_64", "-serial", "stdio"};

		assert_int_equal(cvm_qemu_probe_cmd_make(prog, 3, "k", "i", WORK, &c, err, sizeof(err)),
		                 CVM_E_INVAL);
		assert_non_null(strstr(err, "without it"));
	}
	assert_int_equal(cvm_qemu_probe_cmd_make(readcfg, 2, "k", "i", WORK, &c, err, sizeof(err)),
	                 CVM_E_UNSUPPORTED);
	assert_int_equal(cvm_qemu_probe_cmd_make(esc, 4, "k", "i", "/tmp/a,b", &c, err, sizeof(err)),
	                 CVM_E_INVAL);
	assert_int_equal(cvm_qemu_probe_cmd_make(esc, 4, NULL, "i", WORK, &c, err, sizeof(err)), CVM_E_INVAL);
	assert_null(c.args);
}

/* The serial log. */

static void sha256_ossl(const void *p, size_t n, uint8_t out[32])
{
	unsigned len = 0;

	assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
}

struct logbuf {
	char *p;
	size_t len, cap;
};

static void put(struct logbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *np = malloc(cap);

		assert_non_null(np);
		if (b->len != 0)
			memcpy(np, b->p, b->len);
		free(b->p);
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct logbuf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* put_blob writes one blob's markers; `claim_len` is what its END line says. */
static void put_blob(struct logbuf *b, const char *name, const uint8_t *p, size_t n, size_t claim_len)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char line[128], enc[8];
	uint8_t d[32];
	size_t col = 0;

	(void)snprintf(line, sizeof(line), "CVM-ACPI-BEGIN %s\r\n", name);
	puts_(b, line);
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
		             (i + 2 < n ? p[i + 2] : 0);

		enc[0] = tbl[(v >> 18) & 63];
		enc[1] = tbl[(v >> 12) & 63];
		enc[2] = i + 1 < n ? tbl[(v >> 6) & 63] : '=';
		enc[3] = i + 2 < n ? tbl[v & 63] : '=';
		put(b, enc, 4);
		col += 4;
		if (col == 76) {
			puts_(b, "\r\n");
			col = 0;
		}
	}
	if (col != 0)
		puts_(b, "\r\n");
	sha256_ossl(p, n, d);
	(void)snprintf(line, sizeof(line), "CVM-ACPI-END %s %zu ", name, claim_len);
	puts_(b, line);
	for (size_t i = 0; i < 32; i++) {
		(void)snprintf(line, sizeof(line), "%02x", d[i]);
		puts_(b, line);
	}
	puts_(b, "\r\n");
}

static uint8_t loader[300], rsdp[20], tables[1000];

static void fill_blobs(void)
{
	for (size_t i = 0; i < sizeof(loader); i++)
		loader[i] = (uint8_t)(i * 7 + 1);
	memcpy(rsdp, "RSD PTR \x42\x42\x42\x42\x42\x42\x42\x00\x00\x10\x00\x00", 20);
	for (size_t i = 0; i < sizeof(tables); i++)
		tables[i] = (uint8_t)(i ^ (i >> 8));
}

/* build_log: firmware escapes before the first marker, kernel lines
 * around; returns the offsets of the marked region. */
static void build_log(struct logbuf *b, size_t *region_from, size_t *region_to)
{
	fill_blobs();
	memset(b, 0, sizeof(*b));
	puts_(b, "BdsDxe: loading Boot0001\r\n[    0.000000] Linux version 6.1\r\n\x1b[2J\x1b[01;01H");
	*region_from = b->len;
	put_blob(b, "etc/table-loader", loader, sizeof(loader), sizeof(loader));
	put_blob(b, "etc/acpi/rsdp", rsdp, sizeof(rsdp), sizeof(rsdp));
	put_blob(b, "etc/acpi/tables", tables, sizeof(tables), sizeof(tables));
	puts_(b, "CVM-ACPI-DONE\r\n");
	*region_to = b->len;
	puts_(b, "[    4.194928] reboot: Power down\r\n");
}

static void parser_returns_the_blobs(void **state)
{
	struct cvm_qemu_acpi a;
	struct logbuf b;
	size_t from, to;
	char err[256] = "";

	(void)state;
	build_log(&b, &from, &to);
	assert_int_equal(cvm_qemu_probe_output_parse((const uint8_t *)b.p, b.len, &a, err, sizeof(err)),
	                 CVM_OK);
	assert_int_equal(a.loader_len, sizeof(loader));
	assert_memory_equal(a.loader, loader, sizeof(loader));
	assert_int_equal(a.rsdp_len, sizeof(rsdp));
	assert_memory_equal(a.rsdp, rsdp, sizeof(rsdp));
	assert_int_equal(a.tables_len, sizeof(tables));
	assert_memory_equal(a.tables, tables, sizeof(tables));
	assert_false(a.from_cache);
	{
		struct cvm_measure_acpi d;
		uint8_t want[48];
		unsigned n = 0;

		cvm_qemu_acpi_digests(&a, &d);
		assert_int_equal(EVP_Digest(tables, sizeof(tables), want, &n, EVP_sha384(), NULL), 1);
		assert_memory_equal(d.tables, want, 48);
		assert_int_equal(EVP_Digest(rsdp, sizeof(rsdp), want, &n, EVP_sha384(), NULL), 1);
		assert_memory_equal(d.rsdp, want, 48);
	}
	cvm_qemu_acpi_cleanup(&a);
	/* only the marked region matters: without the lines around, the same */
	assert_int_equal(
	    cvm_qemu_probe_output_parse((const uint8_t *)b.p + from, to - from, &a, err, sizeof(err)),
	    CVM_OK);
	assert_memory_equal(a.tables, tables, sizeof(tables));
	cvm_qemu_acpi_cleanup(&a);
	free(b.p);
}

static void parser_refuses_every_truncation(void **state)
{
	struct cvm_qemu_acpi a;
	struct logbuf b;
	size_t from, to;

	(void)state;
	build_log(&b, &from, &to);
	/* the DONE line is the last thing the format needs: cut anywhere before
	 * its end and the parse fails */
	for (size_t n = 0; n < to - 2; n++) {
		int r = cvm_qemu_probe_output_parse((const uint8_t *)b.p, n, &a, NULL, 0);

		if (r == CVM_OK)
			fail_msg("a log cut at %zu of %zu bytes parsed", n, to);
		assert_null(a.loader);
		assert_null(a.tables);
	}
	free(b.p);
}

static void parser_refuses_or_changes_on_every_bit_flip(void **state)
{
	struct cvm_qemu_acpi a;
	struct logbuf b;
	size_t from, to, ok = 0;

	(void)state;
	build_log(&b, &from, &to);
	for (size_t i = from; i < to; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int r;

			b.p[i] = (char)(b.p[i] ^ (1 << bit));
			r = cvm_qemu_probe_output_parse((const uint8_t *)b.p, b.len, &a, NULL, 0);
			if (r == CVM_OK) {
				bool same = a.loader_len == sizeof(loader) && a.rsdp_len == sizeof(rsdp) &&
				            a.tables_len == sizeof(tables) &&
				            memcmp(a.loader, loader, sizeof(loader)) == 0 &&
				            memcmp(a.rsdp, rsdp, sizeof(rsdp)) == 0 &&
				            memcmp(a.tables, tables, sizeof(tables)) == 0;

				ok++;
				if (same)
					fail_msg("flip of bit %d at %zu left the same blobs", bit, i);
				cvm_qemu_acpi_cleanup(&a);
			}
			b.p[i] = (char)(b.p[i] ^ (1 << bit));
		}
	}
	print_message("bit flips that still parse (to other blobs): %zu\n", ok);
	free(b.p);
}

static void expect_refused(const struct logbuf *b, int code, const char *words)
{
	struct cvm_qemu_acpi a;
	char err[256] = "";

	assert_int_equal(cvm_qemu_probe_output_parse((const uint8_t *)b->p, b->len, &a, err, sizeof(err)),
	                 code);
	if (strstr(err, words) == NULL)
		fail_msg("the message '%s' does not say '%s'", err, words);
	assert_null(a.loader);
}

static void parser_refuses_bad_logs_with_their_reasons(void **state)
{
	struct logbuf b;
	size_t from, to;
	uint8_t big[65] = {0};

	(void)state;
	build_log(&b, &from, &to);
	puts_(&b, "CVM-ACPI-DONE\r\n");
	expect_refused(&b, CVM_E_FORMAT, "after its DONE");
	free(b.p);

	fill_blobs();
	memset(&b, 0, sizeof(b));
	put_blob(&b, "etc/table-loader", loader, sizeof(loader), sizeof(loader));
	put_blob(&b, "etc/acpi/rsdp", rsdp, sizeof(rsdp), sizeof(rsdp) + 1);
	expect_refused(&b, CVM_E_MISMATCH, "END line says 21");
	free(b.p);

	memset(&b, 0, sizeof(b));
	put_blob(&b, "etc/table-loader", loader, sizeof(loader), sizeof(loader));
	put_blob(&b, "etc/acpi/rsdp", big, sizeof(big), sizeof(big));
	expect_refused(&b, CVM_E_TOO_LARGE, "cap");
	free(b.p);

	memset(&b, 0, sizeof(b));
	puts_(&b, "CVM-ACPI-BEGIN etc/table-loader\nAAAA\n[    1.0] virtio_net: probe\nAAAA\n");
	expect_refused(&b, CVM_E_FORMAT, "not base64");
	free(b.p);

	memset(&b, 0, sizeof(b));
	put_blob(&b, "etc/table-loader", loader, sizeof(loader), sizeof(loader));
	puts_(&b, "CVM-ACPI-MISSING etc/acpi/rsdp\n");
	expect_refused(&b, CVM_E_UNSUPPORTED, "no fw_cfg file etc/acpi/rsdp");
	free(b.p);

	memset(&b, 0, sizeof(b));
	put_blob(&b, "etc/acpi/rsdp", rsdp, sizeof(rsdp), sizeof(rsdp));
	expect_refused(&b, CVM_E_FORMAT, "BEGIN etc/table-loader");
	free(b.p);

	memset(&b, 0, sizeof(b));
	puts_(&b, "OVMF ... no markers at all\n");
	expect_refused(&b, CVM_E_NOT_FOUND, "did not run");
	free(b.p);

	/* a changed byte with its digest left as it was */
	build_log(&b, &from, &to);
	{
		char *at = strstr(b.p, "CVM-ACPI-BEGIN etc/acpi/tables\r\n");

		assert_non_null(at);
		at += strlen("CVM-ACPI-BEGIN etc/acpi/tables\r\n");
		at[0] = at[0] == 'A' ? 'B' : 'A';
	}
	expect_refused(&b, CVM_E_MISMATCH, "SHA-256");
	free(b.p);
}

/* The probe initrd. */

static void write_file(const char *path, const char *s, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(s, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

static void initrd_is_reproducible_and_readable_by_gzip_and_cpio(void **state)
{
	char dir[] = "/tmp/cvm-test-qemu.XXXXXX", bb[64], mod[64], out1[64], out2[64], notelf[64], cmd[512];
	uint8_t *a = NULL, *b = NULL, *list = NULL;
	size_t alen = 0, blen = 0, list_len = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	(void)snprintf(bb, sizeof(bb), "%s/busybox", dir);
	(void)snprintf(mod, sizeof(mod), "%s/fw.ko", dir);
	(void)snprintf(out1, sizeof(out1), "%s/1.gz", dir);
	(void)snprintf(out2, sizeof(out2), "%s/2.gz", dir);
	(void)snprintf(notelf, sizeof(notelf), "%s/sh", dir);
	{
		/* over 64 KiB so that the gzip has several stored blocks */
		size_t n = 200000;
		char *big = malloc(n);

		assert_non_null(big);
		for (size_t i = 0; i < n; i++)
			big[i] = (char)(i * 31);
		memcpy(big, "\177ELF", 4);
		write_file(bb, big, n);
		free(big);
	}
	write_file(mod, "\177ELFmodule", 10);
	write_file(notelf, "#!/bin/sh\n", 10);
	assert_int_equal(cvm_qemu_probe_initrd_write(bb, mod, out1), CVM_OK);
	sleep(1); /* a writer that recorded times would differ now */
	assert_int_equal(cvm_qemu_probe_initrd_write(bb, mod, out2), CVM_OK);
	assert_int_equal(cvm_file_read(out1, 1 << 24, &a, &alen), CVM_OK);
	assert_int_equal(cvm_file_read(out2, 1 << 24, &b, &blen), CVM_OK);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	(void)snprintf(cmd, sizeof(cmd),
	               "gzip -t %s && gzip -dc %s | cpio -it --quiet > %s/list 2>&1 && "
	               "gzip -dc %s | cpio -i --quiet --to-stdout bin/busybox | cmp -s - %s",
	               out1, out1, dir, out1, bb);
	assert_int_equal(system(cmd), 0);
	(void)snprintf(cmd, sizeof(cmd), "%s/list", dir);
	assert_int_equal(cvm_file_read(cmd, 4096, &list, &list_len), CVM_OK);
	assert_string_equal((const char *)list, "bin\nbin/busybox\ndev\ndev/console\ninit\nqemu_fw_cfg.ko\n");
	assert_int_equal(cvm_qemu_probe_initrd_write(notelf, mod, out1), CVM_E_INVAL);
	assert_int_equal(cvm_qemu_probe_initrd_write(bb, notelf, out1), CVM_E_INVAL);
	free(a);
	free(b);
	free(list);
	(void)snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rewrite_keeps_devices_and_replaces_host_resources),
	    cmocka_unit_test(rewrite_adds_a_serial_port_only_in_place_of_the_default),
	    cmocka_unit_test(rewrite_keeps_escaped_commas_and_refuses_what_it_cannot_rewrite),
	    cmocka_unit_test(parser_returns_the_blobs),
	    cmocka_unit_test(parser_refuses_every_truncation),
	    cmocka_unit_test(parser_refuses_or_changes_on_every_bit_flip),
	    cmocka_unit_test(parser_refuses_bad_logs_with_their_reasons),
	    cmocka_unit_test(initrd_is_reproducible_and_readable_by_gzip_and_cpio),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

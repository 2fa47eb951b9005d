/* libFuzzer harness for lib/qemu's reader of a probe's serial output (the
 * guest's, the firmware's and the kernel's bytes on the first serial port).
 *
 * Invariants: a parse that succeeds returns three non-NULL blobs, each
 * within its cap and no larger than the input could encode (base64: 3 bytes
 * per 4 characters); a failed parse leaves the output zeroed; the error
 * message is a NUL-terminated string; nothing leaks. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/qemu.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cvm_qemu_acpi a;
	char err[256];
	int r;

	memset(err, 'x', sizeof(err));
	err[0] = '\0';
	r = cvm_qemu_probe_output_parse(data, size, &a, err, sizeof(err));
	if (memchr(err, '\0', sizeof(err)) == NULL)
		__builtin_trap();
	if (r != CVM_OK) {
		if (a.loader != NULL || a.rsdp != NULL || a.tables != NULL || a.loader_len != 0 ||
		    a.tables_len != 0)
			__builtin_trap();
		return 0;
	}
	if (a.loader == NULL || a.rsdp == NULL || a.tables == NULL)
		__builtin_trap();
	if (a.loader_len > CVM_QEMU_LOADER_MAX || a.rsdp_len > CVM_QEMU_RSDP_MAX ||
	    a.tables_len > CVM_QEMU_TABLES_MAX)
		__builtin_trap();
	if ((a.loader_len + a.rsdp_len + a.tables_len) / 3 * 4 > size)
		__builtin_trap();
	cvm_qemu_acpi_cleanup(&a);
	return 0;
}

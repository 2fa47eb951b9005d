/* lib/qemu's internal helpers, shared by its files. */
#ifndef CVM_QEMU_INT_H
#define CVM_QEMU_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* qemu_errf writes a message to `err` (NULL or 0 bytes: nothing). */
void qemu_errf(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* qemu_erradd appends to the message already in `err`. */
void qemu_erradd(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The three fw_cfg files, in the order OVMF measures them. */
#define QEMU_ACPI_FILES 3u
extern const char *const qemu_acpi_names[QEMU_ACPI_FILES];
extern const char *const qemu_acpi_cache_names[QEMU_ACPI_FILES];
extern const size_t qemu_acpi_caps[QEMU_ACPI_FILES];

#endif

/* Daemon configuration files: INI (libinih), read against a table of the
 * keys a daemon knows. Unknown sections or keys, repeated keys, values that
 * do not parse and over-long lines are errors that name the line, so a typo
 * never changes behaviour silently. */
#ifndef CVM_CONF_H
#define CVM_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/err.h>

#define CVM_CONF_FILE_MAX ((size_t)64 * 1024)
#define CVM_CONF_LINE_MAX 190 /* libinih's line buffer is 200 bytes */

enum cvm_conf_type {
	CVM_CONF_STR = 1, /* char[dst_len], NUL-terminated; "" allowed */
	CVM_CONF_BOOL,    /* bool: true/false, yes/no, on/off, 1/0 */
	CVM_CONF_U64,     /* uint64_t in [min, max], decimal */
	CVM_CONF_MODE,    /* unsigned, an octal file mode <= 0777 */
};

struct cvm_conf_key {
	const char *section;
	const char *name;
	enum cvm_conf_type type;
	void *dst;
	size_t dst_len; /* CVM_CONF_STR: the buffer size, NUL included */
	uint64_t min, max;
};

/* Table entries for a field of the config struct `o` points at (a daemon's
 * conf_keys builds its table with them). */
#define CVM_CONF_KEY_STR(o, sec, name, field)                                     \
	{                                                                         \
		(sec), (name), CVM_CONF_STR, (o)->field, sizeof((o)->field), 0, 0 \
	}
#define CVM_CONF_KEY_U64(o, sec, name, field, min, max)                   \
	{                                                                 \
		(sec), (name), CVM_CONF_U64, &(o)->field, 0, (min), (max) \
	}
#define CVM_CONF_KEY_BOOL(o, sec, name, field)                     \
	{                                                          \
		(sec), (name), CVM_CONF_BOOL, &(o)->field, 0, 0, 0 \
	}

/* cvm_conf_parse reads the INI text `text` (NUL-terminated) and stores each
 * value into its key's destination; keys absent from the text keep their
 * values. On failure `err` holds one sentence with the line number. Returns
 * 0, CVM_E_FORMAT or CVM_E_NOMEM. */
CVM_MUST_CHECK int cvm_conf_parse(const char *text, const struct cvm_conf_key *keys, size_t count, char *err,
                                  size_t err_len);
/* cvm_conf_load is cvm_conf_parse over the file at `path` (at most
 * CVM_CONF_FILE_MAX bytes). Returns also CVM_E_SYSTEM or CVM_E_TOO_LARGE. */
CVM_MUST_CHECK int cvm_conf_load(const char *path, const struct cvm_conf_key *keys, size_t count, char *err,
                                 size_t err_len);

#endif

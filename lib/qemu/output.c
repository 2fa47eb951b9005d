/* The probe's serial output: three fw_cfg files between marker lines
 * (include/cvmkit/qemu.h). The log is untrusted: the guest, the firmware and
 * the kernel all write to it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/bytes.h>
#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/err.h>
#include <cvmkit/qemu.h>
#include <cvmkit/secret.h>

#include "qemu_int.h"

const char *const qemu_acpi_names[QEMU_ACPI_FILES] = {"etc/table-loader", "etc/acpi/rsdp", "etc/acpi/tables"};
const char *const qemu_acpi_cache_names[QEMU_ACPI_FILES] = {"table-loader.bin", "rsdp.bin", "tables.bin"};
const size_t qemu_acpi_caps[QEMU_ACPI_FILES] = {CVM_QEMU_LOADER_MAX, CVM_QEMU_RSDP_MAX, CVM_QEMU_TABLES_MAX};

void qemu_errf(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || err_len == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

void qemu_erradd(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;
	size_t used;

	if (err == NULL || err_len == 0)
		return;
	used = strnlen(err, err_len);
	if (used + 1 >= err_len)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err + used, err_len - used, fmt, ap);
	va_end(ap);
}

void cvm_qemu_acpi_cleanup(struct cvm_qemu_acpi *a)
{
	if (a == NULL)
		return;
	free(a->loader);
	free(a->rsdp);
	free(a->tables);
	memset(a, 0, sizeof(*a));
}

void cvm_qemu_acpi_digests(const struct cvm_qemu_acpi *a, struct cvm_measure_acpi *out)
{
	memset(out, 0, sizeof(*out));
	cvm_sha384(a->loader, a->loader_len, out->loader);
	cvm_sha384(a->rsdp, a->rsdp_len, out->rsdp);
	cvm_sha384(a->tables, a->tables_len, out->tables);
	if (a->from_cache)
		(void)snprintf(out->source, sizeof(out->source),
		               "computed: SHA-384 of the probed blobs (cache %.16s)", a->cache_key);
	else
		(void)snprintf(out->source, sizeof(out->source),
		               "computed: SHA-384 of the blobs of a QEMU probe");
}

/* A line of the log: its bytes without LF and a trailing CR. */
struct line {
	const uint8_t *p;
	size_t len;
};

/* next_line takes the next line off `in` (the last one may lack its LF). */
static bool next_line(struct cvm_rd *in, struct line *l)
{
	struct cvm_rd scan = *in;
	size_t n = 0;
	uint8_t c = 0;
	bool lf = false;

	if (cvm_rd_empty(in))
		return false;
	while (cvm_rd_u8(&scan, &c)) {
		if (c == '\n') {
			lf = true;
			break;
		}
		n++;
	}
	if (!cvm_rd_bytes(in, &l->p, n))
		return false;
	if (lf)
		(void)cvm_rd_skip(in, 1);
	l->len = n;
	if (l->len > 0 && l->p[l->len - 1] == '\r')
		l->len--;
	return true;
}

/* marker_at finds CVM_QEMU_PROBE_MARK in the line: the marker is the rest
 * of the line from there. */
static bool marker_at(const struct line *l, struct line *m)
{
	size_t k = sizeof(CVM_QEMU_PROBE_MARK) - 1;

	for (size_t i = 0; i + k <= l->len; i++) {
		if (memcmp(l->p + i, CVM_QEMU_PROBE_MARK, k) == 0) {
			m->p = l->p + i + k;
			m->len = l->len - i - k;
			return true;
		}
	}
	return false;
}

/* eat consumes `word` at the start of `m`. */
static bool eat(struct line *m, const char *word)
{
	size_t n = strlen(word);

	if (m->len < n || memcmp(m->p, word, n) != 0)
		return false;
	m->p += n;
	m->len -= n;
	return true;
}

static bool is_b64(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
	       c == '/' || c == '=';
}

/* parse_end reads "<len> <sha256 hex>" (the rest of an END line). */
static bool parse_end(struct line *m, size_t *len, uint8_t sha[32])
{
	size_t v = 0, digits = 0;
	uint8_t first = m->len > 0 ? m->p[0] : 0;

	while (m->len > 0 && m->p[0] >= '0' && m->p[0] <= '9') {
		if (digits == 9)
			return false; /* beyond any cap */
		v = v * 10 + (size_t)(m->p[0] - '0');
		digits++;
		m->p++;
		m->len--;
	}
	if (digits == 0 || (digits > 1 && first == '0'))
		return false;
	if (!eat(m, " ") || m->len != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((m->p[i] >= '0' && m->p[i] <= '9') || (m->p[i] >= 'a' && m->p[i] <= 'f')))
			return false;
	if (cvm_hex_decode_exact((const char *)m->p, 64, sha, 32) != CVM_OK)
		return false;
	*len = v;
	return true;
}

/* parse_one reads the blob `idx` from `in`, which starts after its BEGIN
 * line. */
static int parse_one(struct cvm_rd *in, unsigned idx, uint8_t **out, size_t *out_len, char *err,
                     size_t err_len)
{
	const char *name = qemu_acpi_names[idx];
	size_t cap = qemu_acpi_caps[idx], b64_cap = (cap + 2) / 3 * 4, b64_len = 0, want = 0, got_len = 0;
	char *b64 = NULL;
	uint8_t *blob = NULL, sha[32], got[32];
	struct line l, m;
	int r;

	*out = NULL;
	*out_len = 0;
	b64 = malloc(b64_cap + 1);
	if (b64 == NULL)
		return CVM_E_NOMEM;
	for (;;) {
		if (!next_line(in, &l)) {
			qemu_errf(err, err_len,
			          "the probe output ends inside %s (no END marker): the guest stopped early",
			          name);
			r = CVM_E_NOT_FOUND;
			goto out;
		}
		if (marker_at(&l, &m))
			break;
		for (size_t i = 0; i < l.len; i++) {
			if (!is_b64(l.p[i])) {
				qemu_errf(
				    err, err_len,
				    "the probe output has a line that is not base64 inside %s (a kernel "
				    "message? the probe boots with loglevel=0)",
				    name);
				r = CVM_E_FORMAT;
				goto out;
			}
		}
		if (l.len > b64_cap - b64_len) {
			qemu_errf(err, err_len, "%s is larger than its cap of %zu bytes", name, cap);
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		memcpy(b64 + b64_len, l.p, l.len);
		b64_len += l.len;
	}
	if (!eat(&m, "END ") || !eat(&m, name) || !eat(&m, " ") || !parse_end(&m, &want, sha)) {
		qemu_errf(err, err_len,
		          "the probe output has an unexpected marker inside %s (expected its END line)",
		          name);
		r = CVM_E_FORMAT;
		goto out;
	}
	if (want > cap) {
		qemu_errf(err, err_len, "%s has %zu bytes, over its cap of %zu", name, want, cap);
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	r = cvm_base64_decode(b64, b64_len, cap, &blob, &got_len);
	if (r != CVM_OK) {
		qemu_errf(err, err_len, "%s is not valid base64 in the probe output (garbled serial output?)",
		          name);
		goto out;
	}
	if (got_len != want) {
		qemu_errf(err, err_len,
		          "%s: %zu bytes in the probe output, but its END line says %zu (garbled?)", name,
		          got_len, want);
		r = CVM_E_MISMATCH;
		goto out;
	}
	cvm_sha256(blob, got_len, got);
	if (memcmp(got, sha, sizeof(got)) != 0) {
		qemu_errf(err, err_len, "%s: its SHA-256 differs from its END line (garbled serial output)",
		          name);
		r = CVM_E_MISMATCH;
		goto out;
	}
	*out = blob;
	*out_len = got_len;
	blob = NULL; /* transferred */
	r = CVM_OK;
out:
	free(blob);
	free(b64);
	return r;
}

int cvm_qemu_probe_output_parse(const uint8_t *log, size_t len, struct cvm_qemu_acpi *out, char *err,
                                size_t err_len)
{
	struct cvm_qemu_acpi a = {0};
	uint8_t **blobs[QEMU_ACPI_FILES] = {&a.loader, &a.rsdp, &a.tables};
	size_t *lens[QEMU_ACPI_FILES] = {&a.loader_len, &a.rsdp_len, &a.tables_len};
	unsigned next = 0;
	bool done = false;
	struct cvm_rd in;
	struct line l, m;
	int r = CVM_OK;

	memset(out, 0, sizeof(*out));
	if (log == NULL && len != 0)
		return CVM_E_INVAL;
	if (len > CVM_QEMU_PROBE_LOG_MAX) {
		qemu_errf(err, err_len, "the probe output has %zu bytes, over the cap of %zu", len,
		          CVM_QEMU_PROBE_LOG_MAX);
		return CVM_E_TOO_LARGE;
	}
	cvm_rd_init(&in, log, len);
	while (next_line(&in, &l)) {
		if (!marker_at(&l, &m))
			continue; /* firmware and kernel output before and after */
		if (done) {
			qemu_errf(err, err_len, "the probe output has a marker after its DONE line");
			r = CVM_E_FORMAT;
			goto out;
		}
		if (next == QEMU_ACPI_FILES) {
			if (m.len != 4 || !eat(&m, "DONE")) {
				qemu_errf(err, err_len,
				          "the probe output has an unexpected marker after the three files");
				r = CVM_E_FORMAT;
				goto out;
			}
			done = true;
			continue;
		}
		if (eat(&m, "MISSING ") && m.len == strlen(qemu_acpi_names[next]) &&
		    eat(&m, qemu_acpi_names[next])) {
			qemu_errf(err, err_len,
			          "the guest has no fw_cfg file %s: does this QEMU build ACPI tables (no "
			          "-no-acpi, -machine acpi=off)?",
			          qemu_acpi_names[next]);
			r = CVM_E_UNSUPPORTED;
			goto out;
		}
		if (!eat(&m, "BEGIN ") || m.len != strlen(qemu_acpi_names[next]) ||
		    !eat(&m, qemu_acpi_names[next])) {
			qemu_errf(err, err_len,
			          "the probe output has an unexpected marker where BEGIN %s should be",
			          qemu_acpi_names[next]);
			r = CVM_E_FORMAT;
			goto out;
		}
		r = parse_one(&in, next, blobs[next], lens[next], err, err_len);
		if (r != CVM_OK)
			goto out;
		next++;
	}
	if (!done) {
		if (next < QEMU_ACPI_FILES)
			qemu_errf(err, err_len,
			          "the probe output has no %s (BEGIN marker missing): the probe did not run",
			          qemu_acpi_names[next]);
		else
			qemu_errf(err, err_len,
			          "the probe output has no DONE marker: the guest stopped early");
		r = CVM_E_NOT_FOUND;
		goto out;
	}
	*out = a;
	memset(&a, 0, sizeof(a)); /* transferred */
out:
	cvm_qemu_acpi_cleanup(&a);
	return r;
}

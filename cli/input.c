/* What every cvm command reads the same way: times, files and certificates. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/file.h>

#include "cli.h"

bool cli_parse_time(const char *s, int64_t *out)
{
	char *end = NULL;
	long long v;

	/* digits only: no sign, no spaces, no base prefix */
	if (s == NULL || s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		return false;
	*out = (int64_t)v;
	return true;
}

int cli_read_file(const char *cmd, const char *what, const char *path, size_t max, uint8_t **buf, size_t *len)
{
	int r;

	*buf = NULL;
	*len = 0;
	r = cvm_file_read(strcmp(path, "-") == 0 ? "/dev/stdin" : path, max, buf, len);
	if (r == CVM_OK)
		return CLI_EXIT_OK;
	if (r == CVM_E_SYSTEM)
		cli_err(cmd, "cannot read %s '%s': %s", what, path, strerror(errno));
	else if (r == CVM_E_TOO_LARGE)
		cli_err(cmd, "%s '%s' is larger than %zu bytes: is it the right file?", what, path, max);
	else
		cli_err(cmd, "cannot read %s '%s': %s", what, path, cvm_strerror(r));
	return CLI_EXIT_ERROR;
}

int cli_load_cert(const char *cmd, const char *what, const char *path, uint8_t **der, size_t *der_len)
{
	struct cvm_cert *cert = NULL;
	const uint8_t *d = NULL;
	uint8_t *buf = NULL;
	size_t len = 0, n = 0;
	int rc;

	*der = NULL;
	*der_len = 0;
	rc = cli_read_file(cmd, what, path, CVM_CERT_DER_MAX * 2, &buf, &len);
	if (rc != CLI_EXIT_OK)
		return rc;
	/* The library's certificate reader: DER, or one PEM CERTIFICATE block. */
	if (cvm_cert_parse(buf, len, &cert) != CVM_OK) {
		cli_err(cmd, "%s '%s' is neither a DER certificate nor a PEM 'BEGIN CERTIFICATE' block", what,
		        path);
		free(buf);
		return CLI_EXIT_ERROR;
	}
	free(buf);
	cvm_cert_der(cert, &d, &n);
	*der = malloc(n);
	if (*der == NULL) {
		cvm_cert_free(cert);
		cli_err(cmd, "out of memory");
		return CLI_EXIT_ERROR;
	}
	memcpy(*der, d, n);
	*der_len = n;
	cvm_cert_free(cert);
	return CLI_EXIT_OK;
}

void cli_bad_option(const char *cmd, int c, char **argv, const char *help)
{
	if (c == ':')
		cli_err(cmd, "option '%s' needs a value; see '%s'", argv[optind - 1], help);
	else
		cli_err(cmd, "unknown option '%s'; see '%s'", argv[optind - 1], help);
}

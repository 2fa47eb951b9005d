/* Small helpers of lib/kmsauth: error text and quoting of untrusted text. */
#include <stdarg.h>
#include <stdio.h>

#include "kmsauth_int.h"

void auth_set_err(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (err != NULL && err_len != 0)
		(void)vsnprintf(err, err_len, fmt, ap);
	va_end(ap);
}

void auth_quote(const char *s, char *out, size_t out_len)
{
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < out_len; i++)
		out[i] = (char)(s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
	out[i] = '\0';
}

/* Query strings of the read APIs (verifier.h). All of it is client input:
 * the raw query is read byte by byte with explicit lengths, values are
 * percent-decoded into bounded buffers, and a NUL or a bad escape is an
 * error. */
#include <string.h>

#include "verifier.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* decode percent-decodes the `len` bytes at `s` ('+' is a space, as forms
 * send it) into `buf`. Returns false for a bad escape, a NUL, or no room. */
static bool decode(const char *s, size_t len, char *buf, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3)
				return false;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c == '\0' || o + 1 >= cap)
			return false;
		buf[o++] = c;
	}
	if (cap == 0)
		return false;
	buf[o] = '\0';
	return true;
}

/* next_param splits the parameter at *q: its name [*name, *name_len) and
 * value [*val, *val_len) (no '=': an empty value); *q moves past it. */
static void next_param(const char **q, const char **name, size_t *name_len, const char **val, size_t *val_len)
{
	const char *p = *q;
	const char *amp = strchr(p, '&');
	size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p);
	const char *eq = memchr(p, '=', n);

	*name = p;
	*name_len = eq != NULL ? (size_t)(eq - p) : n;
	*val = eq != NULL ? eq + 1 : p + n;
	*val_len = eq != NULL ? n - *name_len - 1 : 0;
	*q = amp != NULL ? amp + 1 : p + n;
}

int vd_query_get(const char *query, const char *name, char *buf, size_t cap)
{
	const char *q = query, *pn, *pv;
	size_t nl, vl, want = strlen(name);
	int found = 0;

	if (cap != 0)
		buf[0] = '\0';
	if (query == NULL)
		return 0;
	while (*q != '\0') {
		next_param(&q, &pn, &nl, &pv, &vl);
		if (nl != want || memcmp(pn, name, nl) != 0)
			continue;
		/* a repeated parameter is ambiguous: which one would the vendor use? */
		if (found != 0)
			return -1;
		if (!decode(pv, vl, buf, cap))
			return -1;
		found = 1;
	}
	return found;
}

bool vd_query_only(const char *query, const char *const *names)
{
	const char *q = query, *pn, *pv;
	size_t nl, vl;

	if (query == NULL)
		return true;
	while (*q != '\0') {
		bool known = false;

		next_param(&q, &pn, &nl, &pv, &vl);
		if (nl == 0 && vl == 0)
			continue; /* "a=1&&b=2", a trailing '&' */
		for (size_t i = 0; names[i] != NULL; i++) {
			if (strlen(names[i]) == nl && memcmp(names[i], pn, nl) == 0)
				known = true;
		}
		if (!known)
			return false;
	}
	return true;
}

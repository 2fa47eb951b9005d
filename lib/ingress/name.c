/* Ingress names: the `<id>[-[port][s|g]]` label of dstack's gateway, host
 * name syntax, the TXT names and values of custom domains (spec §7.1). */
#include <stdio.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/ingress.h>

#include "ingress_int.h"

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static char lower(char c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

static int fail(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return CVM_E_FORMAT;
}

int ingress_name_check(const char *name, size_t len, const char **why)
{
	size_t label = 0;

	if (len == 0)
		return fail(why, "empty name");
	if (len > CVM_INGRESS_NAME_MAX)
		return fail(why, "name longer than 253 bytes");
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (c == '.') {
			if (label == 0)
				return fail(why, "empty label ('..' or a leading '.')");
			if (name[i - 1] == '-')
				return fail(why, "a label ends with '-'");
			label = 0;
			continue;
		}
		if (c == '-') {
			if (label == 0)
				return fail(why, "a label starts with '-'");
		} else if (!is_alnum(c)) {
			return fail(why, c == '\0' ? "NUL byte in the name"
			                           : "a character other than letters, digits, '-' and '.'");
		}
		if (++label > CVM_INGRESS_ID_MAX)
			return fail(why, "a label longer than 63 bytes");
	}
	if (label == 0)
		return fail(why, "name ends with '.' (give it without the root's dot)");
	if (name[len - 1] == '-')
		return fail(why, "a label ends with '-'");
	return CVM_OK;
}

int cvm_ingress_name_check(const char *name, size_t len, const char **why)
{
	if (name == NULL)
		return CVM_E_INVAL;
	return ingress_name_check(name, len, why);
}

/* parse_id copies the id (letters and digits) in lower case. */
static int parse_id(const char *s, size_t len, struct cvm_ingress_dst *out, const char **why)
{
	if (len == 0)
		return fail(why, "empty id");
	if (len > CVM_INGRESS_ID_MAX)
		return fail(why, "id longer than 63 bytes");
	for (size_t i = 0; i < len; i++) {
		if (!is_alnum(s[i]))
			return fail(why, s[i] == '\0' ? "NUL byte in the id"
			                              : "id has a character other than a-z and 0-9");
		out->id[i] = lower(s[i]);
	}
	out->id[len] = '\0';
	return CVM_OK;
}

/* parse_port reads 1..65535 in decimal digits only: no sign, no space,
 * which strtoul would take. Leading zeros are allowed, as Rust's u16 parse
 * (dstack's) allows them, but the digits are capped. */
static bool parse_port(const char *s, size_t len, uint16_t *out)
{
	uint32_t v = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

int cvm_ingress_parse_subdomain(const char *label, size_t len, struct cvm_ingress_dst *out, const char **why)
{
	const char *dash, *suffix;
	size_t id_len, sfx_len;
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (label == NULL || out == NULL)
		return CVM_E_INVAL;
	if (len > CVM_INGRESS_ID_MAX) {
		r = fail(why, "label longer than 63 bytes");
		goto out;
	}
	dash = memchr(label, '-', len);
	id_len = dash != NULL ? (size_t)(dash - label) : len;
	r = parse_id(label, id_len, out, why);
	if (r != CVM_OK)
		goto out;
	out->port = 80;
	if (dash == NULL)
		return CVM_OK;
	suffix = dash + 1;
	sfx_len = len - id_len - 1;
	if (memchr(suffix, '-', sfx_len) != NULL) {
		r = fail(why, "more than one '-'");
		goto out;
	}
	if (sfx_len == 0) {
		r = fail(why, "nothing after '-' (expected [port][s|g])");
		goto out;
	}
	/* dstack's order: a trailing 'g' first, then a trailing 's'; so "443sg"
	 * is both (refused) and "443gs" leaves "443g", a bad port. */
	if (suffix[sfx_len - 1] == 'g') {
		out->is_h2 = true;
		sfx_len--;
	}
	if (sfx_len > 0 && suffix[sfx_len - 1] == 's') {
		out->is_tls = true;
		sfx_len--;
	}
	if (out->is_h2 && out->is_tls) {
		r = fail(
		    why,
		    "gs not allowed: 'g' (gateway TLS, h2) and 's' (TLS passthrough) exclude each other");
		goto out;
	}
	if (sfx_len == 0) {
		out->port = out->is_tls ? 443 : 80;
		return CVM_OK;
	}
	if (!parse_port(suffix, sfx_len, &out->port)) {
		r = fail(why, "invalid port: expected decimal 1..65535, then an optional 's' or 'g'");
		goto out;
	}
	return CVM_OK;
out:
	memset(out, 0, sizeof(*out));
	return r;
}

/* base_matches compares `rest` with a configured base domain, ignoring case,
 * a leading "*." and a trailing '.' of the base. */
static bool base_matches(const char *rest, size_t rest_len, const char *base)
{
	size_t blen;

	if (base == NULL)
		return false;
	if (base[0] == '*' && base[1] == '.')
		base += 2;
	blen = strnlen(base, CVM_INGRESS_NAME_MAX + 2);
	if (blen > 0 && base[blen - 1] == '.')
		blen--;
	if (blen != rest_len)
		return false;
	for (size_t i = 0; i < blen; i++)
		if (lower(base[i]) != rest[i])
			return false;
	return true;
}

int cvm_ingress_route(const char *sni, size_t len, const char *const *base_domains, size_t n_base,
                      struct cvm_ingress_route *out, const char **why)
{
	const char *dot;
	size_t label_len;
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (sni == NULL || out == NULL || (base_domains == NULL && n_base != 0))
		return CVM_E_INVAL;
	r = ingress_name_check(sni, len, why);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < len; i++)
		out->name[i] = lower(sni[i]);
	out->name[len] = '\0';
	dot = memchr(out->name, '.', len);
	if (dot == NULL) {
		memset(out, 0, sizeof(*out));
		return fail(why, "a name of one label: expected <label>.<domain>");
	}
	label_len = (size_t)(dot - out->name);
	out->kind = CVM_INGRESS_CUSTOM;
	for (size_t i = 0; i < n_base; i++) {
		if (!base_matches(dot + 1, len - label_len - 1, base_domains[i]))
			continue;
		out->kind = CVM_INGRESS_APP;
		memcpy(out->base, dot + 1, len - label_len - 1);
		out->base[len - label_len - 1] = '\0';
		return cvm_ingress_parse_subdomain(out->name, label_len, &out->dst, why);
	}
	return CVM_OK;
}

static bool prefix_ok(const char *p)
{
	size_t n = strnlen(p, CVM_INGRESS_PREFIX_MAX + 1);

	if (n == 0 || n > CVM_INGRESS_PREFIX_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(p[i]) && p[i] != '-' && p[i] != '_')
			return false;
	return true;
}

int cvm_ingress_txt_names(const char *sni, const char *prefix, char out[2][CVM_INGRESS_NAME_MAX + 32])
{
	char name[CVM_INGRESS_NAME_MAX + 1];
	const char *dot;
	size_t len;
	int r;

	if (sni == NULL || out == NULL)
		return CVM_E_INVAL;
	out[0][0] = '\0';
	out[1][0] = '\0';
	if (prefix == NULL)
		prefix = CVM_INGRESS_TXT_PREFIX;
	if (!prefix_ok(prefix))
		return CVM_E_INVAL;
	len = strnlen(sni, CVM_INGRESS_NAME_MAX + 1);
	r = ingress_name_check(sni, len, NULL);
	if (r != CVM_OK)
		return r;
	for (size_t i = 0; i < len; i++)
		name[i] = lower(sni[i]);
	name[len] = '\0';
	dot = strchr(name, '.');
	if (dot == NULL)
		return CVM_E_FORMAT;
	/* prefix (<= 21) + "-wildcard." + name (<= 253) fit in 285 bytes */
	(void)snprintf(out[0], CVM_INGRESS_NAME_MAX + 32, "%s.%s", prefix, name);
	(void)snprintf(out[1], CVM_INGRESS_NAME_MAX + 32, "%s-wildcard.%s", prefix, dot + 1);
	return CVM_OK;
}

int cvm_ingress_parse_txt(const char *txt, size_t len, struct cvm_ingress_dst *out, const char **why)
{
	const char *colon;
	size_t id_len;
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (txt == NULL || out == NULL)
		return CVM_E_INVAL;
	colon = memchr(txt, ':', len);
	if (colon == NULL) {
		r = fail(why, "no ':' (expected <app_id>:<port>)");
		goto out;
	}
	id_len = (size_t)(colon - txt);
	r = parse_id(txt, id_len, out, why);
	if (r != CVM_OK)
		goto out;
	if (!parse_port(colon + 1, len - id_len - 1, &out->port)) {
		r = fail(why, "invalid port: expected decimal 1..65535 after ':'");
		goto out;
	}
	out->is_tls = true;
	return CVM_OK;
out:
	memset(out, 0, sizeof(*out));
	return r;
}

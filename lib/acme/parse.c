/* The ACME server's JSON answers (RFC 8555, 7.1): directory, account,
 * order, authorization with its challenges, and problem documents
 * (RFC 7807). Each body is capped, parsed by jansson without duplicate
 * keys, and every member used is checked for type, length and syntax;
 * members we do not use are ignored, as RFC 8555 asks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/acme.h>

#include "acme_int.h"

#define ERR_PREFIX "urn:ietf:params:acme:error:"

static const char *const status_names[] = {
    [ACME_ST_UNKNOWN] = "unknown",         [ACME_ST_PENDING] = "pending", [ACME_ST_READY] = "ready",
    [ACME_ST_PROCESSING] = "processing",   [ACME_ST_VALID] = "valid",     [ACME_ST_INVALID] = "invalid",
    [ACME_ST_DEACTIVATED] = "deactivated", [ACME_ST_EXPIRED] = "expired", [ACME_ST_REVOKED] = "revoked",
};

const char *acme_status_name(enum acme_status s)
{
	if ((size_t)s >= sizeof(status_names) / sizeof(status_names[0]))
		return "unknown";
	return status_names[s];
}

bool acme_url_syntax_ok(const char *s, size_t len)
{
	if (len < 9 || len > CVM_ACME_URL_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f)
			return false;
	}
	if (strncmp(s, "https://", 8) == 0)
		return s[8] != '/' && len > 8;
	return strncmp(s, "http://", 7) == 0 && s[7] != '/';
}

bool acme_token_ok(const char *s, size_t len)
{
	if (len == 0 || len > ACME_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

static int load(const uint8_t *buf, size_t len, json_t **out)
{
	json_error_t jerr;
	json_t *j;

	*out = NULL;
	if (len > CVM_ACME_JSON_MAX)
		return CVM_E_TOO_LARGE;
	if (buf == NULL || len == 0)
		return CVM_E_FORMAT;
	j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		return CVM_E_FORMAT;
	if (!json_is_object(j)) {
		json_decref(j);
		return CVM_E_FORMAT;
	}
	*out = j;
	return CVM_OK;
}

/* get_str copies the string member `key` of `o` (at most `max` bytes); a
 * missing member gives *out NULL and 0 unless it is `required`. */
static int get_str(const json_t *o, const char *key, size_t max, bool required, char **out)
{
	const json_t *v = json_object_get(o, key);
	const char *s;
	size_t n;
	char *copy;

	*out = NULL;
	if (v == NULL)
		return required ? CVM_E_FORMAT : CVM_OK;
	if (!json_is_string(v))
		return CVM_E_FORMAT;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n > max)
		return CVM_E_TOO_LARGE;
	/* jansson refuses \u0000 unless asked, so n is strlen(s); check anyway. */
	if (memchr(s, '\0', n) != NULL)
		return CVM_E_FORMAT;
	copy = malloc(n + 1);
	if (copy == NULL)
		return CVM_E_NOMEM;
	memcpy(copy, s, n);
	copy[n] = '\0';
	*out = copy;
	return CVM_OK;
}

static int get_url(const json_t *o, const char *key, bool required, char **out)
{
	int r = get_str(o, key, CVM_ACME_URL_MAX, required, out);

	if (r != CVM_OK || *out == NULL)
		return r;
	if (!acme_url_syntax_ok(*out, strlen(*out))) {
		free(*out);
		*out = NULL;
		return CVM_E_FORMAT;
	}
	return CVM_OK;
}

static int get_status(const json_t *o, enum acme_status *out)
{
	const json_t *v = json_object_get(o, "status");
	const char *s;

	*out = ACME_ST_UNKNOWN;
	if (!json_is_string(v) || json_string_length(v) > ACME_STATUS_TEXT_MAX)
		return CVM_E_FORMAT;
	s = json_string_value(v);
	for (size_t i = 1; i < sizeof(status_names) / sizeof(status_names[0]); i++) {
		if (strcmp(s, status_names[i]) == 0) {
			*out = (enum acme_status)i;
			return CVM_OK;
		}
	}
	return CVM_E_FORMAT;
}

/* problem_sentence formats the problem object `p` into out. */
static int problem_sentence(const json_t *p, char *out, size_t out_len, char *type_out, size_t type_len)
{
	const json_t *t = json_object_get(p, "type"), *d = json_object_get(p, "detail");
	const char *type = "unknown problem", *detail = "";
	char clean[ACME_DETAIL_MAX + 1];
	size_t n = 0;

	if (!json_is_object(p) || (t != NULL && !json_is_string(t)) || (d != NULL && !json_is_string(d)))
		return CVM_E_FORMAT;
	if (t != NULL) {
		if (json_string_length(t) > 256)
			return CVM_E_TOO_LARGE;
		type = json_string_value(t);
		if (strncmp(type, ERR_PREFIX, strlen(ERR_PREFIX)) == 0)
			type += strlen(ERR_PREFIX);
	}
	if (d != NULL) {
		detail = json_string_value(d);
		for (; n < ACME_DETAIL_MAX && detail[n] != '\0'; n++) {
			unsigned char u = (unsigned char)detail[n];
			char c = '?';

			if (u >= 0x20 && u < 0x7f)
				c = detail[n];
			clean[n] = c;
		}
	}
	clean[n] = '\0';
	for (size_t i = 0; type[i] != '\0'; i++) {
		unsigned char c = (unsigned char)type[i];

		if (c <= 0x20 || c >= 0x7f)
			return CVM_E_FORMAT;
	}
	if (n != 0)
		(void)snprintf(out, out_len, "%s: %s", type, clean);
	else
		(void)snprintf(out, out_len, "%s", type);
	if (type_out != NULL)
		(void)snprintf(type_out, type_len, "%s", type);
	return CVM_OK;
}

int acme_parse_problem(const uint8_t *buf, size_t len, char *out, size_t out_len, char *type_out,
                       size_t type_len)
{
	json_t *j = NULL;
	int r;

	if (out_len != 0)
		out[0] = '\0';
	if (type_out != NULL && type_len != 0)
		type_out[0] = '\0';
	r = load(buf, len, &j);
	if (r == CVM_OK)
		r = problem_sentence(j, out, out_len, type_out, type_len);
	if (r != CVM_OK) {
		(void)snprintf(out, out_len, "the server's error body is not a problem document");
		if (type_out != NULL && type_len != 0)
			type_out[0] = '\0';
	}
	json_decref(j);
	return r;
}

/* get_problem formats the optional problem member `key` into a new string. */
static int get_problem(const json_t *o, const char *key, char **out)
{
	const json_t *p = json_object_get(o, key);
	char sentence[CVM_ACME_ERR_LEN];
	int r;

	*out = NULL;
	if (p == NULL)
		return CVM_OK;
	r = problem_sentence(p, sentence, sizeof(sentence), NULL, 0);
	if (r != CVM_OK)
		return r;
	*out = strdup(sentence);
	return *out == NULL ? CVM_E_NOMEM : CVM_OK;
}

void acme_directory_cleanup(struct acme_directory *d)
{
	free(d->new_nonce);
	free(d->new_account);
	free(d->new_order);
	free(d->revoke_cert);
	free(d->key_change);
	memset(d, 0, sizeof(*d));
}

int acme_parse_directory(const uint8_t *buf, size_t len, struct acme_directory *out)
{
	json_t *j = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	r = load(buf, len, &j);
	if (r != CVM_OK)
		goto out;
	r = get_url(j, "newNonce", true, &out->new_nonce);
	if (r == CVM_OK)
		r = get_url(j, "newAccount", true, &out->new_account);
	if (r == CVM_OK)
		r = get_url(j, "newOrder", true, &out->new_order);
	if (r == CVM_OK)
		r = get_url(j, "revokeCert", false, &out->revoke_cert);
	if (r == CVM_OK)
		r = get_url(j, "keyChange", false, &out->key_change);
out:
	if (r != CVM_OK)
		acme_directory_cleanup(out);
	json_decref(j);
	return r;
}

int acme_parse_account(const uint8_t *buf, size_t len, struct acme_account *out)
{
	json_t *j = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	r = load(buf, len, &j);
	if (r == CVM_OK)
		r = get_status(j, &out->status);
	if (r == CVM_OK && out->status != ACME_ST_VALID && out->status != ACME_ST_DEACTIVATED &&
	    out->status != ACME_ST_REVOKED)
		r = CVM_E_FORMAT;
	if (r != CVM_OK)
		memset(out, 0, sizeof(*out));
	json_decref(j);
	return r;
}

void acme_order_cleanup(struct acme_order *o)
{
	for (size_t i = 0; i < o->authorization_count; i++)
		free(o->authorizations[i]);
	free(o->authorizations);
	free(o->finalize);
	free(o->certificate);
	free(o->error);
	memset(o, 0, sizeof(*o));
}

int acme_parse_order(const uint8_t *buf, size_t len, struct acme_order *out)
{
	json_t *j = NULL;
	const json_t *authz;
	size_t n;
	int r;

	memset(out, 0, sizeof(*out));
	r = load(buf, len, &j);
	if (r != CVM_OK)
		goto out;
	r = get_status(j, &out->status);
	if (r != CVM_OK)
		goto out;
	if (out->status != ACME_ST_PENDING && out->status != ACME_ST_READY &&
	    out->status != ACME_ST_PROCESSING && out->status != ACME_ST_VALID &&
	    out->status != ACME_ST_INVALID) {
		r = CVM_E_FORMAT;
		goto out;
	}
	authz = json_object_get(j, "authorizations");
	if (!json_is_array(authz) || json_array_size(authz) == 0) {
		r = CVM_E_FORMAT;
		goto out;
	}
	n = json_array_size(authz);
	if (n > CVM_ACME_NAMES_MAX) {
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	out->authorizations = calloc(n, sizeof(*out->authorizations));
	if (out->authorizations == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_array_get(authz, i);
		size_t vlen;

		if (!json_is_string(v)) {
			r = CVM_E_FORMAT;
			goto out;
		}
		vlen = json_string_length(v);
		if (!acme_url_syntax_ok(json_string_value(v), vlen)) {
			r = CVM_E_FORMAT;
			goto out;
		}
		out->authorizations[i] = strdup(json_string_value(v));
		if (out->authorizations[i] == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		out->authorization_count = i + 1;
	}
	r = get_url(j, "finalize", true, &out->finalize);
	if (r == CVM_OK)
		r = get_url(j, "certificate", false, &out->certificate);
	if (r == CVM_OK)
		r = get_problem(j, "error", &out->error);
	if (r == CVM_OK && out->status == ACME_ST_VALID && out->certificate == NULL)
		r = CVM_E_FORMAT; /* RFC 8555 7.1.3: a valid order names its certificate */
out:
	if (r != CVM_OK)
		acme_order_cleanup(out);
	json_decref(j);
	return r;
}

void acme_authz_cleanup(struct acme_authz *a)
{
	free(a->domain);
	for (size_t i = 0; i < a->challenge_count; i++) {
		free(a->challenges[i].type);
		free(a->challenges[i].url);
		free(a->challenges[i].token);
		free(a->challenges[i].error);
	}
	memset(a, 0, sizeof(*a));
}

static int parse_challenge(const json_t *o, struct acme_challenge *c)
{
	int r;

	if (!json_is_object(o))
		return CVM_E_FORMAT;
	r = get_str(o, "type", 64, true, &c->type);
	if (r == CVM_OK)
		r = get_url(o, "url", true, &c->url);
	if (r == CVM_OK)
		r = get_status(o, &c->status);
	if (r == CVM_OK)
		r = get_problem(o, "error", &c->error);
	if (r != CVM_OK)
		return r;
	/* The token is read as a string first so that an over-long one says so. */
	r = get_str(o, "token", ACME_TOKEN_MAX, false, &c->token);
	if (r != CVM_OK)
		return r;
	if (c->token != NULL && !acme_token_ok(c->token, strlen(c->token)))
		return CVM_E_FORMAT;
	if (c->token == NULL && (strcmp(c->type, "http-01") == 0 || strcmp(c->type, "dns-01") == 0))
		return CVM_E_FORMAT;
	return CVM_OK;
}

int acme_parse_authz(const uint8_t *buf, size_t len, struct acme_authz *out)
{
	json_t *j = NULL;
	const json_t *id, *chals, *wc;
	char *id_type = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	r = load(buf, len, &j);
	if (r != CVM_OK)
		goto out;
	r = get_status(j, &out->status);
	if (r != CVM_OK)
		goto out;
	id = json_object_get(j, "identifier");
	if (!json_is_object(id)) {
		r = CVM_E_FORMAT;
		goto out;
	}
	r = get_str(id, "type", 16, true, &id_type);
	if (r != CVM_OK)
		goto out;
	if (strcmp(id_type, "dns") != 0) {
		r = CVM_E_UNSUPPORTED;
		goto out;
	}
	r = get_str(id, "value", CVM_DNS_NAME_MAX, true, &out->domain);
	if (r != CVM_OK)
		goto out;
	if (!cvm_dns_name_ok(out->domain) || out->domain[0] == '*') {
		r = CVM_E_FORMAT;
		goto out;
	}
	wc = json_object_get(j, "wildcard");
	if (wc != NULL && !json_is_boolean(wc)) {
		r = CVM_E_FORMAT;
		goto out;
	}
	out->wildcard = json_is_true(wc);
	chals = json_object_get(j, "challenges");
	if (!json_is_array(chals)) {
		r = CVM_E_FORMAT;
		goto out;
	}
	if (json_array_size(chals) > ACME_CHALLENGES_MAX) {
		r = CVM_E_TOO_LARGE;
		goto out;
	}
	for (size_t i = 0; i < json_array_size(chals); i++) {
		out->challenge_count = i + 1;
		r = parse_challenge(json_array_get(chals, i), &out->challenges[i]);
		if (r != CVM_OK)
			goto out;
	}
out:
	free(id_type);
	if (r != CVM_OK)
		acme_authz_cleanup(out);
	json_decref(j);
	return r;
}

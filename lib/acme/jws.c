/* JSON Web Keys, thumbprints and signatures for ACME (RFC 7515, 7517,
 * 7638; RFC 8555, 6.2 and 8.1): ES256 with the P-256 account key, whose
 * raw r || s signature is the JWS form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/acme.h>
#include <cvmkit/crypto.h>

#include "acme_int.h"

static const char b64url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_len(size_t len)
{
	return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

bool acme_b64url_to(const uint8_t *p, size_t len, char *out, size_t out_len)
{
	size_t o = 0, i = 0;

	if (len > (SIZE_MAX - 1) / 4 * 3 || b64url_len(len) >= out_len)
		return false;
	for (; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
		out[o++] = b64url_chars[v >> 6 & 63];
		out[o++] = b64url_chars[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
		out[o++] = b64url_chars[v >> 6 & 63];
	}
	out[o] = '\0';
	return true;
}

char *acme_b64url(const uint8_t *p, size_t len)
{
	size_t n;
	char *s;

	if (len > (SIZE_MAX - 1) / 4 * 3)
		return NULL;
	n = b64url_len(len) + 1;
	s = malloc(n);
	if (s == NULL)
		return NULL;
	if (!acme_b64url_to(p, len, s, n)) {
		free(s);
		return NULL;
	}
	return s;
}

void acme_jwk_json(const struct cvm_p256_keypair *kp, char out[ACME_JWK_JSON_LEN])
{
	uint8_t xy[64];
	char x[44], y[44];

	cvm_p256_keypair_public(kp, xy);
	(void)acme_b64url_to(xy, 32, x, sizeof(x));
	(void)acme_b64url_to(xy + 32, 32, y, sizeof(y));
	(void)snprintf(out, ACME_JWK_JSON_LEN, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
	               x, y);
}

void cvm_acme_jwk_thumbprint(const struct cvm_p256_keypair *kp, char out[CVM_ACME_B64_SHA256_LEN + 1])
{
	char jwk[ACME_JWK_JSON_LEN];
	uint8_t h[32];

	acme_jwk_json(kp, jwk);
	cvm_sha256(jwk, strlen(jwk), h);
	(void)acme_b64url_to(h, sizeof(h), out, CVM_ACME_B64_SHA256_LEN + 1);
}

int cvm_acme_key_authorization(const struct cvm_p256_keypair *kp, const char *token, char **out)
{
	char tp[CVM_ACME_B64_SHA256_LEN + 1];
	size_t n;
	char *s;

	*out = NULL;
	if (kp == NULL || token == NULL)
		return CVM_E_INVAL;
	n = strnlen(token, ACME_TOKEN_MAX + 1);
	if (!acme_token_ok(token, n))
		return CVM_E_INVAL;
	cvm_acme_jwk_thumbprint(kp, tp);
	s = malloc(n + 1 + CVM_ACME_B64_SHA256_LEN + 1);
	if (s == NULL)
		return CVM_E_NOMEM;
	memcpy(s, token, n);
	s[n] = '.';
	memcpy(s + n + 1, tp, CVM_ACME_B64_SHA256_LEN + 1);
	*out = s;
	return CVM_OK;
}

void cvm_acme_dns01_value(const char *key_authorization, char out[CVM_ACME_B64_SHA256_LEN + 1])
{
	uint8_t h[32];

	cvm_sha256(key_authorization, strlen(key_authorization), h);
	(void)acme_b64url_to(h, sizeof(h), out, CVM_ACME_B64_SHA256_LEN + 1);
}

bool cvm_acme_renewal_due(int64_t not_before, int64_t not_after, int64_t now, int64_t before_s,
                          unsigned part_num, unsigned part_den)
{
	__int128 left, life;

	if (not_after <= not_before || now >= not_after)
		return true;
	left = (__int128)not_after - now;
	if (before_s > 0)
		return left < before_s;
	if (part_den == 0) {
		part_num = 1;
		part_den = 3;
	}
	life = (__int128)not_after - not_before;
	/* left < life * num / den, without rounding */
	return left * part_den < life * part_num;
}

int acme_jws(const struct cvm_p256_keypair *kp, const char *kid, const char *nonce, const char *url,
             const char *payload, char **out)
{
	json_t *prot = NULL, *body = NULL;
	char *prot_s = NULL, *prot_b = NULL, *pay_b = NULL, *input = NULL, *sig_b = NULL;
	uint8_t sig[64];
	size_t in_len;
	int r = CVM_E_NOMEM;

	*out = NULL;
	if (kid != NULL) {
		prot = json_pack("{s:s,s:s,s:s,s:s}", "alg", "ES256", "kid", kid, "nonce", nonce, "url", url);
	} else {
		char jwk[ACME_JWK_JSON_LEN];
		json_t *jwk_o;

		acme_jwk_json(kp, jwk);
		jwk_o = json_loads(jwk, 0, NULL);
		if (jwk_o != NULL)
			prot = json_pack("{s:s,s:o,s:s,s:s}", "alg", "ES256", "jwk", jwk_o, "nonce", nonce,
			                 "url", url);
	}
	if (prot == NULL)
		goto out;
	prot_s = json_dumps(prot, JSON_COMPACT | JSON_SORT_KEYS);
	if (prot_s == NULL)
		goto out;
	prot_b = acme_b64url((const uint8_t *)prot_s, strlen(prot_s));
	pay_b = acme_b64url((const uint8_t *)(payload != NULL ? payload : ""),
	                    payload != NULL ? strlen(payload) : 0);
	if (prot_b == NULL || pay_b == NULL)
		goto out;
	in_len = strlen(prot_b) + 1 + strlen(pay_b);
	input = malloc(in_len + 1);
	if (input == NULL)
		goto out;
	(void)snprintf(input, in_len + 1, "%s.%s", prot_b, pay_b);
	r = cvm_p256_keypair_sign(kp, (const uint8_t *)input, in_len, sig);
	if (r != CVM_OK)
		goto out;
	r = CVM_E_NOMEM;
	sig_b = acme_b64url(sig, sizeof(sig));
	if (sig_b == NULL)
		goto out;
	body = json_pack("{s:s,s:s,s:s}", "protected", prot_b, "payload", pay_b, "signature", sig_b);
	if (body == NULL)
		goto out;
	*out = json_dumps(body, JSON_COMPACT);
	if (*out != NULL)
		r = CVM_OK;
out:
	free(input);
	free(prot_s);
	free(prot_b);
	free(pay_b);
	free(sig_b);
	json_decref(prot);
	json_decref(body);
	return r;
}

/* WireGuard keys: generation, public keys, and a strict base64 codec. */
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/crypto.h>
#include <cvmkit/err.h>
#include <cvmkit/random.h>
#include <cvmkit/secret.h>
#include <cvmkit/wg.h>

int cvm_wg_key_generate(struct cvm_secret **out)
{
	struct cvm_secret *s = NULL;
	int r;

	*out = NULL;
	s = cvm_secret_new(CVM_WG_KEY_LEN);
	if (s == NULL)
		return CVM_E_NOMEM;
	r = cvm_random_bytes(s->p, CVM_WG_KEY_LEN);
	if (r != CVM_OK)
		goto out;
	/* stored clamped, as `wg genkey` writes it, so that every reader
	 * derives the same public key whether or not it clamps */
	s->p[0] &= 248;
	s->p[31] = (uint8_t)((s->p[31] & 127) | 64);
	*out = s;
	s = NULL; /* transferred */
out:
	cvm_secret_free(s);
	return r;
}

int cvm_wg_key_public(const uint8_t priv[CVM_WG_KEY_LEN], uint8_t out[CVM_WG_KEY_LEN])
{
	return cvm_x25519_pubkey(priv, out);
}

/* b64_value maps one character to its 6-bit value, or to -1, without a
 * branch or table lookup on the character: a private key's bits must not
 * show in timing or cache lines. Each range contributes (value + 1) when
 * the character lies in it; the sum minus one is the result. */
static int b64_value(unsigned c)
{
	int ci = (int)c;
	int v = -1;

	/* ((lo - 1 - c) & (c - hi - 1)) >> 8 is all ones exactly when lo <= c <= hi */
	v += (((('A' - 1) - ci) & (ci - ('Z' + 1))) >> 8) & (ci - 'A' + 1);
	v += (((('a' - 1) - ci) & (ci - ('z' + 1))) >> 8) & (ci - 'a' + 27);
	v += (((('0' - 1) - ci) & (ci - ('9' + 1))) >> 8) & (ci - '0' + 53);
	v += (((('+' - 1) - ci) & (ci - ('+' + 1))) >> 8) & 63;
	v += (((('/' - 1) - ci) & (ci - ('/' + 1))) >> 8) & 64;
	return v;
}

int cvm_wg_key_from_base64(const char *in, size_t len, uint8_t out[CVM_WG_KEY_LEN])
{
	uint8_t key[CVM_WG_KEY_LEN];
	int bad = 0;
	size_t i, o = 0;
	int r = CVM_E_FORMAT;

	if (in == NULL || len != CVM_WG_KEY_B64_LEN || in[CVM_WG_KEY_B64_LEN - 1] != '=')
		return CVM_E_FORMAT;
	/* ten whole groups of four characters: 30 bytes */
	for (i = 0; i < 40; i += 4) {
		int a = b64_value((unsigned char)in[i]), b = b64_value((unsigned char)in[i + 1]);
		int c = b64_value((unsigned char)in[i + 2]), d = b64_value((unsigned char)in[i + 3]);
		unsigned v;

		bad |= (a | b | c | d) >> 8 & 1;
		v = ((unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d) & 0xffffffu;
		key[o++] = (uint8_t)(v >> 16);
		key[o++] = (uint8_t)(v >> 8);
		key[o++] = (uint8_t)v;
	}
	/* the last group "xyz=": two bytes, and the low two bits of z unused */
	{
		int a = b64_value((unsigned char)in[40]), b = b64_value((unsigned char)in[41]);
		int c = b64_value((unsigned char)in[42]);
		unsigned v;

		bad |= (a | b | c) >> 8 & 1;
		v = ((unsigned)a << 12 | (unsigned)b << 6 | (unsigned)c) & 0x3ffffu;
		bad |= (int)(v & 3u) != 0;
		key[o++] = (uint8_t)(v >> 10);
		key[o++] = (uint8_t)(v >> 2);
	}
	if (bad == 0) {
		for (i = 0; i < CVM_WG_KEY_LEN; i++)
			out[i] = key[i];
		r = CVM_OK;
	}
	cvm_wipe(key, sizeof(key));
	return r;
}

/* b64_char is b64_value's inverse, also without a lookup on the value. */
static char b64_char(unsigned v)
{
	int vi = (int)v;
	int c = 'A' + vi;

	c += ((25 - vi) >> 8) & ('a' - 'A' - 26);
	c += ((51 - vi) >> 8) & ('0' - 'a' - 26);
	c += ((61 - vi) >> 8) & ('+' - '0' - 10);
	c += ((62 - vi) >> 8) & ('/' - '+' - 1);
	return (char)c;
}

void cvm_wg_key_to_base64(const uint8_t key[CVM_WG_KEY_LEN], char out[CVM_WG_KEY_B64_LEN + 1])
{
	size_t i, o = 0;

	for (i = 0; i < 30; i += 3) {
		unsigned v = (unsigned)key[i] << 16 | (unsigned)key[i + 1] << 8 | key[i + 2];

		out[o++] = b64_char(v >> 18 & 63);
		out[o++] = b64_char(v >> 12 & 63);
		out[o++] = b64_char(v >> 6 & 63);
		out[o++] = b64_char(v & 63);
	}
	{
		unsigned v = (unsigned)key[30] << 8 | key[31];

		out[o++] = b64_char(v >> 10 & 63);
		out[o++] = b64_char(v >> 4 & 63);
		out[o++] = b64_char((v << 2) & 63);
	}
	out[o++] = '=';
	out[o] = '\0';
}

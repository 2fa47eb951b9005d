/* Keccak-256 (original Keccak padding, as Ethereum uses it), written from
 * the Keccak reference (FIPS 202 sections 3.2 and 3.3 describe the same
 * permutation). Lanes are 64-bit words stored little-endian in the state,
 * lane (x, y) at state[x + 5 * y]. */
#include <string.h>

#include <cvmkit/keccak.h>
#include <cvmkit/secret.h>

#define ROUNDS 24

/* Round constants of the iota step. */
static const uint64_t round_const[ROUNDS] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808AULL, 0x8000000080008000ULL,
    0x000000000000808BULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008AULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000AULL,
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800AULL, 0x800000008000000AULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* Rotation offsets of the rho step, indexed like the state: [x + 5 * y]. */
static const unsigned rho_offset[25] = {
    0,  1,  62, 28, 27, /* y = 0 */
    36, 44, 6,  55, 20, /* y = 1 */
    3,  10, 43, 25, 39, /* y = 2 */
    41, 45, 15, 21, 8,  /* y = 3 */
    18, 2,  61, 56, 14, /* y = 4 */
};

/* Index tables that keep the steps free of divisions: x+1, x+4 (= x-1) and
 * x+2 modulo 5, and the destination of lane (x, y) under pi,
 * (y, 2x + 3y mod 5), as an index into the state. */
static const unsigned plus1[5] = {1, 2, 3, 4, 0};
static const unsigned plus2[5] = {2, 3, 4, 0, 1};
static const unsigned minus1[5] = {4, 0, 1, 2, 3};
static const unsigned pi_dst[25] = {
    0,  10, 20, 5,  15, /* y = 0 */
    16, 1,  11, 21, 6,  /* y = 1 */
    7,  17, 2,  12, 22, /* y = 2 */
    23, 8,  18, 3,  13, /* y = 3 */
    14, 24, 9,  19, 4,  /* y = 4 */
};

static uint64_t rotl64(uint64_t v, unsigned n)
{
	return n == 0 ? v : (v << n) | (v >> (64 - n));
}

static void keccak_f1600(uint64_t a[25])
{
	uint64_t c[5], d[5], b[25];

	for (unsigned round = 0; round < ROUNDS; round++) {
		/* theta: each lane absorbs the parity of two neighbouring columns */
		for (unsigned x = 0; x < 5; x++)
			c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
		for (unsigned x = 0; x < 5; x++)
			d[x] = c[minus1[x]] ^ rotl64(c[plus1[x]], 1);
		for (unsigned y = 0; y < 25; y += 5) {
			for (unsigned x = 0; x < 5; x++)
				a[y + x] ^= d[x];
		}
		/* rho and pi: rotate each lane, then move (x, y) to (y, 2x + 3y) */
		for (unsigned i = 0; i < 25; i++)
			b[pi_dst[i]] = rotl64(a[i], rho_offset[i]);
		/* chi: the only non-linear step, row by row */
		for (unsigned y = 0; y < 25; y += 5) {
			for (unsigned x = 0; x < 5; x++)
				a[y + x] = b[y + x] ^ (~b[y + plus1[x]] & b[y + plus2[x]]);
		}
		/* iota */
		a[0] ^= round_const[round];
	}
	cvm_wipe(b, sizeof(b));
	cvm_wipe(c, sizeof(c));
	cvm_wipe(d, sizeof(d));
}

static uint64_t load64le(const uint8_t *p)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* absorb_block XORs one full rate-sized block into the state and permutes. */
static void absorb_block(uint64_t state[25], const uint8_t block[CVM_KECCAK256_RATE])
{
	for (size_t i = 0; i < CVM_KECCAK256_RATE / 8; i++)
		state[i] ^= load64le(block + 8 * i);
	keccak_f1600(state);
}

void cvm_keccak256_init(struct cvm_keccak256_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
}

void cvm_keccak256_update(struct cvm_keccak256_ctx *ctx, const void *p, size_t len)
{
	const uint8_t *in = p;

	if (len == 0)
		return;
	if (ctx->buf_len != 0) {
		size_t take = CVM_KECCAK256_RATE - ctx->buf_len;

		if (take > len)
			take = len;
		memcpy(ctx->buf + ctx->buf_len, in, take);
		ctx->buf_len += take;
		in += take;
		len -= take;
		if (ctx->buf_len < CVM_KECCAK256_RATE)
			return;
		absorb_block(ctx->state, ctx->buf);
		ctx->buf_len = 0;
	}
	while (len >= CVM_KECCAK256_RATE) {
		absorb_block(ctx->state, in);
		in += CVM_KECCAK256_RATE;
		len -= CVM_KECCAK256_RATE;
	}
	if (len != 0) {
		memcpy(ctx->buf, in, len);
		ctx->buf_len = len;
	}
}

void cvm_keccak256_final(struct cvm_keccak256_ctx *ctx, uint8_t out[CVM_KECCAK256_LEN])
{
	/* Original Keccak pad10*1 with no domain bits: 0x01 ... 0x80, or 0x81
	 * when a single byte is left. SHA3 would start with 0x06 here. */
	memset(ctx->buf + ctx->buf_len, 0, CVM_KECCAK256_RATE - ctx->buf_len);
	ctx->buf[ctx->buf_len] ^= 0x01;
	ctx->buf[CVM_KECCAK256_RATE - 1] ^= 0x80;
	absorb_block(ctx->state, ctx->buf);
	/* 32 bytes < rate: one squeeze, four lanes, little-endian */
	for (unsigned i = 0; i < CVM_KECCAK256_LEN; i++)
		out[i] = (uint8_t)(ctx->state[i / 8] >> (8 * (i % 8)));
	cvm_wipe(ctx, sizeof(*ctx));
}

void cvm_keccak256(const void *p, size_t len, uint8_t out[CVM_KECCAK256_LEN])
{
	struct cvm_keccak256_ctx ctx;

	cvm_keccak256_init(&ctx);
	cvm_keccak256_update(&ctx, p, len);
	cvm_keccak256_final(&ctx, out);
}

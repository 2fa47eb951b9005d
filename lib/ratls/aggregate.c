/* dstack's aggregated measurements (include/cvmkit/ratls.h, spec dstack.md
 * §5.5): what dstack's verifier and its KMS authorization speak of. */
#include <string.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ratls.h>

#define MR ((size_t)48)

static bool zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

void cvm_dstack_aggregate(const struct cvm_tdx_report *td, const uint8_t *key_provider,
                          size_t key_provider_len, uint8_t mr_system[32], uint8_t mr_aggregated[32])
{
	uint8_t buf[8 * MR], kp[32] = {0};
	size_t n = 0;

	if (key_provider != NULL)
		cvm_sha256(key_provider, key_provider_len, kp);
	memcpy(buf, td->mr_td, MR);
	n = MR;
	for (size_t i = 0; i < 3; i++, n += MR)
		memcpy(buf + n, td->rtmr[i], MR);
	memcpy(buf + n, kp, sizeof(kp));
	cvm_sha256(buf, n + sizeof(kp), mr_system);

	memcpy(buf + n, td->rtmr[3], MR); /* over the key provider's digest */
	n += MR;
	if (!zero(td->mr_config_id, MR) || !zero(td->mr_owner, MR) || !zero(td->mr_owner_config, MR)) {
		memcpy(buf + n, td->mr_config_id, MR);
		memcpy(buf + n + MR, td->mr_owner, MR);
		memcpy(buf + n + 2 * MR, td->mr_owner_config, MR);
		n += 3 * MR;
	}
	cvm_sha256(buf, n, mr_aggregated);
}

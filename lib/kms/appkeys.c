/* The keys a KMS releases to an app (spec §3.2-3.3), from the roots of one
 * epoch: every derivation is lib/kdf's; this file only puts them together. */
#include <stdlib.h>
#include <string.h>

#include <cvmkit/kdf.h>
#include <cvmkit/kms.h>

#include "kms_int.h"

/* The scalar d sits at this offset of the canonical PKCS#8 DER (crypto.h):
 * 30 81 87 | 02 01 00 | 30 13 <21 bytes> | 04 6d 30 6b 02 01 01 04 20 <d>. */
#define PKCS8_SCALAR_OFF 36

/* dstack's RA-TLS extensions (spec §6.1), each DER(OCTET STRING(value)). */
#define OID_DSTACK_APP_ID "1.3.6.1.4.1.62397.1.3"
#define OID_DSTACK_USAGE "1.3.6.1.4.1.62397.1.4"

void cvm_kms_app_keys_cleanup(struct cvm_kms_app_keys *k)
{
	if (k == NULL)
		return;
	cvm_secret_free(k->disk_crypt_key);
	cvm_secret_free(k->env_crypt_key);
	cvm_secret_free(k->k256_key);
	cvm_secret_free(k->app_ca_key);
	free(k->app_ca_cert);
	cvm_wipe(k, sizeof(*k));
}

static void compress_p256(const struct cvm_p256_keypair *kp, uint8_t out[CVM_KMS_P256_PUBKEY_LEN])
{
	uint8_t xy[64];

	cvm_p256_keypair_public(kp, xy);
	out[0] = (uint8_t)(0x02 | (xy[63] & 1));
	memcpy(out + 1, xy, 32);
}

/* root_scalar writes the root CA key's 32-byte scalar (secret). */
static void root_scalar(const struct cvm_p256_keypair *kp, uint8_t d[CVM_P256_SCALAR_LEN])
{
	uint8_t der[CVM_P256_PKCS8_DER_LEN];

	cvm_p256_keypair_pkcs8(kp, der);
	memcpy(d, der + PKCS8_SCALAR_OFF, CVM_P256_SCALAR_LEN);
	cvm_wipe(der, sizeof(der));
}

static int dh_secret(const uint8_t d[CVM_P256_SCALAR_LEN], const uint8_t *info, size_t info_len,
                     struct cvm_secret **out)
{
	struct cvm_secret *s = cvm_secret_new(32);
	int r;

	*out = NULL;
	if (s == NULL)
		return CVM_E_NOMEM;
	r = cvm_kdf_dh_secret(d, CVM_P256_SCALAR_LEN, info, info_len, s->p);
	if (r != CVM_OK) {
		cvm_secret_free(s);
		return r;
	}
	*out = s;
	return CVM_OK;
}

/* from_root_ca derives the disk, env and App CA keys. */
static int from_root_ca(const struct cvm_kms_roots *roots, const uint8_t app_id[CVM_APP_ID_LEN],
                        const uint8_t *instance_id, size_t instance_id_len, bool with_app_ca,
                        struct cvm_kms_app_keys *out, struct cvm_p256_keypair **app_ca)
{
	uint8_t d[CVM_P256_SCALAR_LEN];
	uint8_t info[CVM_APP_ID_LEN + CVM_INSTANCE_ID_LEN + sizeof(CVM_KDF_LABEL_DISK) - 1];
	size_t n;
	int r;

	root_scalar(roots->ca_key, d);
	/* disk: app_id || instance_id || label; dstack passes an empty
	 * instance id through unchanged (no_instance_id), so the same here */
	memcpy(info, app_id, CVM_APP_ID_LEN);
	n = CVM_APP_ID_LEN;
	if (instance_id_len > 0) {
		memcpy(info + n, instance_id, instance_id_len);
		n += instance_id_len;
	}
	memcpy(info + n, CVM_KDF_LABEL_DISK, sizeof(CVM_KDF_LABEL_DISK) - 1);
	n += sizeof(CVM_KDF_LABEL_DISK) - 1;
	r = dh_secret(d, info, n, &out->disk_crypt_key);
	if (r != CVM_OK)
		goto out;
	out->env_crypt_key = cvm_secret_new(32);
	if (out->env_crypt_key == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	r = cvm_kdf_env_crypt_key(d, app_id, out->env_crypt_key->p);
	if (r != CVM_OK)
		goto out;
	r = cvm_x25519_pubkey(out->env_crypt_key->p, out->env_crypt_public_key);
	if (r != CVM_OK || !with_app_ca)
		goto out;
	memcpy(info + CVM_APP_ID_LEN, CVM_KDF_LABEL_APP_CA, sizeof(CVM_KDF_LABEL_APP_CA) - 1);
	r = cvm_kdf_derive_p256(d, sizeof(d), info, CVM_APP_ID_LEN + sizeof(CVM_KDF_LABEL_APP_CA) - 1,
	                        app_ca);
	if (r != CVM_OK)
		goto out;
	r = cvm_p256_keypair_pkcs8_pem(*app_ca, &out->app_ca_key);
	if (r != CVM_OK)
		goto out;
	compress_p256(*app_ca, out->app_ca_public_key);
out:
	cvm_wipe(d, sizeof(d));
	return r;
}

/* from_root_k256 derives the app k256 key and the root's signature on it. */
static int from_root_k256(const struct cvm_kms_roots *roots, const uint8_t app_id[CVM_APP_ID_LEN],
                          struct cvm_kms_app_keys *out)
{
	int r;

	r = cvm_kdf_app_k256_key(roots->k256_key->p, app_id, &out->k256_key);
	if (r != CVM_OK)
		return r;
	r = cvm_k256_pubkey(out->k256_key->p, out->k256_public_key);
	if (r != CVM_OK)
		return r;
	return cvm_kdf_k256_issue(roots->k256_key->p, app_id, out->k256_public_key, out->k256_signature);
}

/* app_ca_cert issues the App CA certificate under the root CA (dstack's
 * profile; see CVM_KMS_APP_CA_CN). */
static int app_ca_cert(const struct cvm_kms_roots *roots, const uint8_t app_id[CVM_APP_ID_LEN],
                       const struct cvm_p256_keypair *app_ca, char **out)
{
	uint8_t id_ext[2 + CVM_APP_ID_LEN], usage_ext[2 + sizeof(CVM_KMS_USAGE_APP_CA) - 1];
	struct cvm_cert_ext_spec exts[2];
	struct cvm_cert_template t;
	uint8_t *spki = NULL, h[32], serial[16];
	size_t spki_len = 0, pem_len = 0;
	int r;

	id_ext[0] = 0x04;
	id_ext[1] = CVM_APP_ID_LEN;
	memcpy(id_ext + 2, app_id, CVM_APP_ID_LEN);
	usage_ext[0] = 0x04;
	usage_ext[1] = (uint8_t)(sizeof(CVM_KMS_USAGE_APP_CA) - 1);
	memcpy(usage_ext + 2, CVM_KMS_USAGE_APP_CA, sizeof(CVM_KMS_USAGE_APP_CA) - 1);
	exts[0] = (struct cvm_cert_ext_spec){
	    .oid = OID_DSTACK_APP_ID, .value = id_ext, .value_len = sizeof(id_ext)};
	exts[1] = (struct cvm_cert_ext_spec){
	    .oid = OID_DSTACK_USAGE, .value = usage_ext, .value_len = sizeof(usage_ext)};
	r = cvm_p256_keypair_spki(app_ca, &spki, &spki_len);
	if (r != CVM_OK)
		return r;
	/* serial: the key's fingerprint, positive and never zero */
	cvm_sha256(spki, spki_len, h);
	free(spki);
	memcpy(serial, h, sizeof(serial));
	serial[0] = (uint8_t)((serial[0] & 0x7f) | 0x40);
	cvm_cert_template_init(&t);
	t.common_name = CVM_KMS_APP_CA_CN;
	t.organization = CVM_KMS_APP_CA_ORG;
	t.not_before = cvm_cert_not_before(roots->ca_cert[0]);
	t.not_after = cvm_cert_not_after(roots->ca_cert[0]);
	t.is_ca = true;
	t.path_len = 0;
	t.serial = serial;
	t.serial_len = sizeof(serial);
	t.exts = exts;
	t.ext_count = 2;
	return cvm_cert_make(&t, app_ca, roots->ca_key, roots->ca_cert[0], out, &pem_len);
}

int cvm_kms_app_keys(const struct cvm_kms_roots *roots, const uint8_t app_id[CVM_APP_ID_LEN],
                     const uint8_t *instance_id, size_t instance_id_len, uint32_t epoch,
                     struct cvm_kms_app_keys *out)
{
	return cvm_kms_app_keys_some(roots, app_id, instance_id, instance_id_len, epoch, CVM_KMS_KEYS_ALL,
	                             out);
}

int cvm_kms_app_keys_some(const struct cvm_kms_roots *roots, const uint8_t app_id[CVM_APP_ID_LEN],
                          const uint8_t *instance_id, size_t instance_id_len, uint32_t epoch, unsigned want,
                          struct cvm_kms_app_keys *out)
{
	bool app_ca = (want & (CVM_KMS_KEY_APP_CA | CVM_KMS_KEY_APP_CA_CERT)) != 0;

	struct cvm_p256_keypair *ca = NULL;
	int r = CVM_OK;

	if (out == NULL)
		return CVM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (roots == NULL || app_id == NULL ||
	    (instance_id_len != 0 && instance_id_len != CVM_INSTANCE_ID_LEN) ||
	    (instance_id_len != 0 && instance_id == NULL) || epoch != roots->epoch)
		return CVM_E_INVAL;
	out->epoch = epoch;
	if (roots->has[CVM_KMS_ROOT_CA_KEY]) {
		r = from_root_ca(roots, app_id, instance_id, instance_id_len, app_ca, out, &ca);
		if (r != CVM_OK)
			goto out;
		out->present |= CVM_KMS_KEY_DISK | CVM_KMS_KEY_ENV | (app_ca ? CVM_KMS_KEY_APP_CA : 0);
		if (app_ca && roots->has[CVM_KMS_ROOT_CA_CERT]) {
			r = app_ca_cert(roots, app_id, ca, &out->app_ca_cert);
			if (r != CVM_OK)
				goto out;
			out->present |= CVM_KMS_KEY_APP_CA_CERT;
		}
	}
	if (roots->has[CVM_KMS_ROOT_K256_KEY]) {
		r = from_root_k256(roots, app_id, out);
		if (r != CVM_OK)
			goto out;
		out->present |= CVM_KMS_KEY_K256;
	}
out:
	cvm_p256_keypair_free(ca);
	if (r != CVM_OK)
		cvm_kms_app_keys_cleanup(out);
	return r;
}

/* The KMS's bootstrap attestation: report_data over the new roots' public
 * halves, bootstrap-info.json, and its verification (include/cvmkit/kms.h).
 *
 * What dstack does (read in Dstack-TEE/dstack, kms/src/onboard_service.rs,
 * `OnboardRpc::bootstrap` and `attest_keys`; kms/rpc/proto/kms_rpc.proto,
 * `BootstrapResponse`): after generating the keys it formats
 * "dstack-kms-genereted-keys-v1:{hex(ca SPKI DER)};{hex(k256 SEC1)};",
 * takes keccak256 of it, pads it with zeros to 64 bytes, has the local
 * guest agent's Attest quote it, and writes serde_json of BootstrapResponse
 * {ca_pubkey, k256_pubkey, attestation} (all three protobuf `bytes`, which
 * prpc's serde writes as lowercase hex without 0x; `attestation` is the
 * Attest answer as is, a VersionedAttestation) to bootstrap-info.json in its
 * cert_dir, before storing the keys. `ca_pubkey` is rcgen's
 * public_key_der(), the SubjectPublicKeyInfo; `k256_pubkey` is
 * to_sec1_bytes() of the k256 verifying key, the 33-byte compressed point.
 * GetMeta returns the file's contents as `bootstrap_info` (null when there
 * is none or it does not parse). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include <cvmkit/crypto.h>
#include <cvmkit/encoding.h>
#include <cvmkit/file.h>
#include <cvmkit/keccak.h>
#include <cvmkit/kms.h>
#include <cvmkit/ratls.h>
#include <cvmkit/report.h>
#include <cvmkit/secret.h>

#include "core/core_lib.h"
#include "crypto/crypto_lib.h"

int cvm_kms_bootstrap_report_data(const uint8_t *ca_spki, size_t ca_spki_len,
                                  const uint8_t k256_pub[CVM_K256_PUBKEY_LEN], uint8_t out[64])
{
	static const char tag[] = CVM_KMS_BOOTINFO_TAG;
	struct cvm_keccak256_ctx h;
	char hex[2 * CVM_KMS_SPKI_MAX + 1];

	if (out != NULL)
		memset(out, 0, 64);
	if (ca_spki == NULL || ca_spki_len == 0 || ca_spki_len > CVM_KMS_SPKI_MAX || k256_pub == NULL ||
	    out == NULL)
		return CVM_E_INVAL;
	cvm_keccak256_init(&h);
	cvm_keccak256_update(&h, tag, sizeof(tag) - 1);
	cvm_hex_encode(ca_spki, ca_spki_len, hex);
	cvm_keccak256_update(&h, hex, 2 * ca_spki_len);
	cvm_keccak256_update(&h, ";", 1);
	cvm_hex_encode(k256_pub, CVM_K256_PUBKEY_LEN, hex);
	cvm_keccak256_update(&h, hex, (size_t)2 * CVM_K256_PUBKEY_LEN);
	cvm_keccak256_update(&h, ";", 1);
	cvm_keccak256_final(&h, out); /* the rest stays zero: dstack's pad64 */
	return CVM_OK;
}

void cvm_kms_bootinfo_cleanup(struct cvm_kms_bootinfo *bi)
{
	if (bi == NULL)
		return;
	free(bi->ca_pubkey);
	free(bi->attestation);
	memset(bi, 0, sizeof(*bi));
}

static json_t *json_hex(const uint8_t *p, size_t len)
{
	char *h = cvm_hex_encode_new(p, len);
	json_t *j;

	if (h == NULL)
		return NULL;
	j = json_string(h);
	free(h);
	return j;
}

int cvm_kms_bootinfo_encode(const struct cvm_kms_bootinfo *bi, char **out, size_t *out_len)
{
	json_t *o = NULL;
	char *text = NULL;
	int r = CVM_E_NOMEM;

	if (out != NULL)
		*out = NULL;
	if (out_len != NULL)
		*out_len = 0;
	if (bi == NULL || out == NULL || out_len == NULL || bi->ca_pubkey == NULL || bi->ca_pubkey_len == 0 ||
	    bi->ca_pubkey_len > CVM_KMS_SPKI_MAX || bi->attestation == NULL || bi->attestation_len == 0 ||
	    bi->attestation_len > CVM_KMS_BOOTINFO_VA_MAX)
		return CVM_E_INVAL;
	o = json_object();
	if (o == NULL ||
	    json_object_set_new(o, "ca_pubkey", json_hex(bi->ca_pubkey, bi->ca_pubkey_len)) != 0 ||
	    json_object_set_new(o, "k256_pubkey", json_hex(bi->k256_pubkey, CVM_K256_PUBKEY_LEN)) != 0 ||
	    json_object_set_new(o, "attestation", json_hex(bi->attestation, bi->attestation_len)) != 0)
		goto out;
	/* serde_json's compact form, fields in the message's order */
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL)
		goto out;
	*out_len = strlen(text);
	*out = text;
	r = CVM_OK;
out:
	json_decref(o);
	return r;
}

/* get_hex decodes the string member `key` of `o` into a new buffer of
 * min..max bytes. */
static int get_hex(const json_t *o, const char *key, size_t min, size_t max, uint8_t **out, size_t *out_len,
                   char *err, size_t err_len)
{
	const json_t *v = json_object_get(o, key);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	uint8_t *b;

	*out = NULL;
	*out_len = 0;
	if (s == NULL)
		return (void)cvm_err_set(err, err_len, 0, "\"%s\" is missing or not a string", key),
		       CVM_E_FORMAT;
	if (n % 2 != 0 || n / 2 < min || n / 2 > max)
		return (void)cvm_err_set(
		           err, err_len, 0,
		           "\"%s\" must be %zu..%zu bytes in hex (2 digits a byte), not %zu digits", key, min,
		           max, n),
		       CVM_E_FORMAT;
	b = malloc(n / 2);
	if (b == NULL)
		return CVM_E_NOMEM;
	/* json_string_length counts an embedded NUL: the decoder refuses it */
	if (cvm_hex_decode_exact(s, n, b, n / 2) != CVM_OK) {
		free(b);
		return (void)cvm_err_set(err, err_len, 0,
		                         "\"%s\" holds a character that is not a hex digit (no 0x prefix)",
		                         key),
		       CVM_E_FORMAT;
	}
	*out = b;
	*out_len = n / 2;
	return CVM_OK;
}

int cvm_kms_bootinfo_parse(const uint8_t *buf, size_t len, struct cvm_kms_bootinfo *out, char *err,
                           size_t err_len)
{
	json_error_t jerr;
	json_t *root = NULL;
	uint8_t *k = NULL;
	size_t k_len = 0;
	const char *key;
	json_t *val;
	int r;

	if (err != NULL && err_len > 0)
		err[0] = '\0';
	if (out == NULL)
		return CVM_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (buf == NULL)
		return CVM_E_INVAL;
	if (len > CVM_KMS_BOOTINFO_FILE_MAX) {
		(void)cvm_err_set(err, err_len, 0, "the bootstrap info is %zu bytes, over the %zu allowed",
		                  len, CVM_KMS_BOOTINFO_FILE_MAX);
		return CVM_E_TOO_LARGE;
	}
	root = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		(void)cvm_err_set(err, err_len, 0, "not a JSON object (line %d: %s)", jerr.line, jerr.text);
		r = CVM_E_FORMAT;
		goto out;
	}
	json_object_foreach(root, key, val)
	{
		(void)val;
		if (strcmp(key, "ca_pubkey") != 0 && strcmp(key, "k256_pubkey") != 0 &&
		    strcmp(key, "attestation") != 0) {
			(void)cvm_err_set(
			    err, err_len, 0,
			    "unexpected key \"%.40s\": the bootstrap info holds exactly ca_pubkey, "
			    "k256_pubkey and attestation",
			    key);
			r = CVM_E_FORMAT;
			goto out;
		}
	}
	r = get_hex(root, "ca_pubkey", 1, CVM_KMS_SPKI_MAX, &out->ca_pubkey, &out->ca_pubkey_len, err,
	            err_len);
	if (r == CVM_OK)
		r = get_hex(root, "k256_pubkey", CVM_K256_PUBKEY_LEN, CVM_K256_PUBKEY_LEN, &k, &k_len, err,
		            err_len);
	if (r == CVM_OK && k[0] != 0x02 && k[0] != 0x03) {
		(void)cvm_err_set(err, err_len, 0,
		                  "\"k256_pubkey\" is not a compressed point (it must start 02 or 03)");
		r = CVM_E_FORMAT;
	}
	if (r == CVM_OK)
		memcpy(out->k256_pubkey, k, CVM_K256_PUBKEY_LEN);
	if (r == CVM_OK)
		r = get_hex(root, "attestation", 1, CVM_KMS_BOOTINFO_VA_MAX, &out->attestation,
		            &out->attestation_len, err, err_len);
out:
	free(k);
	json_decref(root);
	if (r != CVM_OK)
		cvm_kms_bootinfo_cleanup(out);
	return r;
}

int cvm_kms_bootinfo_load(const char *path, struct cvm_kms_bootinfo *out, char *err, size_t err_len)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r, e;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (path == NULL || out == NULL)
		return CVM_E_INVAL;
	r = cvm_file_read(path, CVM_KMS_BOOTINFO_FILE_MAX, &buf, &len);
	if (r != CVM_OK) {
		e = errno;
		(void)cvm_err_set(err, err_len, 0, "cannot read %s: %s", path,
		                  r == CVM_E_SYSTEM ? strerror(e) : cvm_strerror(r));
		errno = e;
		return r;
	}
	r = cvm_kms_bootinfo_parse(buf, len, out, err, err_len);
	free(buf);
	return r;
}

int cvm_kms_bootinfo_path(const char *dir, uint32_t epoch, char *out, size_t out_cap)
{
	struct stat st;
	int n;

	if (dir == NULL || out == NULL || out_cap == 0 || epoch > CVM_KMS_EPOCH_MAX)
		return CVM_E_INVAL;
	n = snprintf(out, out_cap, "%s/epoch-%u", dir, (unsigned)epoch);
	if (n < 0 || (size_t)n >= out_cap)
		return CVM_E_TOO_LARGE;
	/* epoch 0 in dstack's flat layout keeps the file at the top; every other
	 * epoch (and epoch 0 in cvmkit's layout) in its own folder */
	if (epoch == 0 && !(stat(out, &st) == 0 && S_ISDIR(st.st_mode)))
		n = snprintf(out, out_cap, "%s/%s", dir, CVM_KMS_FILE_BOOTINFO);
	else
		n = snprintf(out, out_cap, "%s/epoch-%u/%s", dir, (unsigned)epoch, CVM_KMS_FILE_BOOTINFO);
	if (n < 0 || (size_t)n >= out_cap)
		return CVM_E_TOO_LARGE;
	return CVM_OK;
}

int cvm_kms_cert_spki(const uint8_t *cert, size_t cert_len, uint8_t **spki, size_t *spki_len)
{
	struct cvm_cert **certs = NULL;
	struct cvm_cert *one = NULL;
	size_t n = 0;
	int r;

	if (spki != NULL)
		*spki = NULL;
	if (spki_len != NULL)
		*spki_len = 0;
	if (cert == NULL || spki == NULL || spki_len == NULL)
		return CVM_E_INVAL;
	r = cvm_certs_parse_pem(cert, cert_len, &certs, &n);
	if (r == CVM_OK && n > 0) {
		r = cvm_cert_spki(certs[0], spki, spki_len);
		cvm_certs_free(certs, n);
		return r;
	}
	cvm_certs_free(certs, n);
	r = cvm_cert_parse(cert, cert_len, &one);
	if (r != CVM_OK)
		return CVM_E_FORMAT;
	r = cvm_cert_spki(one, spki, spki_len);
	cvm_cert_free(one);
	return r;
}

int cvm_kms_bootinfo_verify(const struct cvm_kms_bootinfo *bi, struct cvm_ratls_verifier *v, int64_t at,
                            const uint8_t *ca_spki, size_t ca_spki_len, const uint8_t *k256_pub,
                            struct cvm_ratls_verdict *out, struct cvm_report *rep)
{
	uint8_t rd[64];
	int r, rk = CVM_OK;

	if (out == NULL || bi == NULL || v == NULL || bi->ca_pubkey == NULL || bi->attestation == NULL) {
		if (out != NULL)
			memset(out, 0, sizeof(*out));
		if (rep != NULL)
			cvm_report_init(rep);
		return CVM_E_INVAL;
	}
	r = cvm_kms_bootstrap_report_data(bi->ca_pubkey, bi->ca_pubkey_len, bi->k256_pubkey, rd);
	if (r != CVM_OK) {
		memset(out, 0, sizeof(*out));
		if (rep != NULL)
			cvm_report_init(rep);
		return r;
	}
	/* the attestation is over these keys, in an attested CVM */
	r = cvm_ratls_check_va(v, bi->attestation, bi->attestation_len, rd, at, out, rep);
	/* and these keys are the roots the caller trusts */
	if (ca_spki != NULL) {
		bool same =
		    ca_spki_len == bi->ca_pubkey_len && cvm_ct_equal(ca_spki, bi->ca_pubkey, ca_spki_len);

		cvm_report_add(rep, "ca_pubkey", same,
		               same ? "ca_pubkey is the SPKI of the root CA certificate given"
		                    : "ca_pubkey is not the SPKI of the root CA certificate given: this "
		                      "attestation is for another KMS's roots");
		if (!same)
			rk = CVM_E_MISMATCH;
	}
	if (k256_pub != NULL) {
		bool same = cvm_ct_equal(k256_pub, bi->k256_pubkey, CVM_K256_PUBKEY_LEN);

		cvm_report_add(rep, "k256_pubkey", same,
		               same ? "k256_pubkey is the k256 root's public key"
		                    : "k256_pubkey is not the k256 root's public key: this attestation is "
		                      "for another KMS's roots");
		if (!same && rk == CVM_OK)
			rk = CVM_E_MISMATCH;
	}
	return r != CVM_OK ? r : rk;
}

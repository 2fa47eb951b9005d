/* Output helpers for the cvm tool (see output.h). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/encoding.h>
#include <cvmkit/tee.h>

#include "output.h"

#define NAME_COL "18"

void out_sanitize(const char *s, char *out, size_t cap)
{
	size_t i = 0;

	if (cap == 0)
		return;
	for (; s != NULL && s[i] != '\0' && i + 1 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f)
			out[i] = (char)c;
		else
			out[i] = '?';
	}
	out[i] = '\0';
}

const char *out_tee_name(const struct cvm_quote *q)
{
	if (q->tee == CVM_TEE_TDX)
		return "tdx";
	if (q->tee == CVM_TEE_SGX)
		return "sgx";
	return NULL;
}

const char *out_body_name(const struct cvm_quote *q)
{
	switch (q->body_type) {
	case CVM_BODY_SGX:
		return "sgx";
	case CVM_BODY_TD10:
		return "td10";
	case CVM_BODY_TD15:
		return "td15";
	}
	return NULL;
}

void out_time(int64_t t, char buf[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(buf, 32, "%lld", (long long)t);
}

size_t out_pem_cert_count(struct cvm_rd pem)
{
	struct cvm_pem_block b;
	size_t n = 0;

	while (cvm_pem_next(&pem, &b) == CVM_OK)
		n += cvm_pem_label_is(&b, "CERTIFICATE") ? 1 : 0;
	return n;
}

bool out_pem_printable(struct cvm_rd pem)
{
	uint8_t c;

	while (cvm_rd_u8(&pem, &c)) {
		if (c == '\0' && cvm_rd_all_zero(&pem))
			return true; /* a NUL terminator (and padding) is allowed */
		if (!((c >= 0x20 && c < 0x7f) || c == '\n' || c == '\r'))
			return false;
	}
	return true;
}

void out_field(FILE *f, const char *indent, const char *name, const char *fmt, ...)
{
	va_list ap;

	(void)fprintf(f, "%s%-" NAME_COL "s ", indent, name);
	va_start(ap, fmt);
	(void)vfprintf(f, fmt, ap);
	va_end(ap);
	(void)fputc('\n', f);
}

void out_field_hex(FILE *f, const char *indent, const char *name, const uint8_t *p, size_t n)
{
	char *hex = cvm_hex_encode_new(p, n);

	out_field(f, indent, name, "%s", hex != NULL ? hex : "(out of memory)");
	free(hex);
}

void out_sgx_report_text(FILE *f, const char *in, const struct cvm_sgx_report *r)
{
	out_field_hex(f, in, "cpu_svn", r->cpu_svn, sizeof(r->cpu_svn));
	out_field(f, in, "misc_select", "0x%08x", r->misc_select);
	out_field_hex(f, in, "isv_ext_prod_id", r->isv_ext_prod_id, sizeof(r->isv_ext_prod_id));
	out_field(f, in, "attributes", "%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%02x%s",
	          r->attributes[0], r->attributes[1], r->attributes[2], r->attributes[3], r->attributes[4],
	          r->attributes[5], r->attributes[6], r->attributes[7], r->attributes[8], r->attributes[9],
	          r->attributes[10], r->attributes[11], r->attributes[12], r->attributes[13],
	          r->attributes[14], r->attributes[15],
	          (r->attributes[0] & CVM_SGX_ATTR_DEBUG) != 0 ? " (DEBUG)" : "");
	out_field_hex(f, in, "mr_enclave", r->mr_enclave, sizeof(r->mr_enclave));
	out_field_hex(f, in, "mr_signer", r->mr_signer, sizeof(r->mr_signer));
	out_field_hex(f, in, "config_id", r->config_id, sizeof(r->config_id));
	out_field(f, in, "isv_prod_id", "%u", r->isv_prod_id);
	out_field(f, in, "isv_svn", "%u", r->isv_svn);
	out_field(f, in, "config_svn", "%u", r->config_svn);
	out_field_hex(f, in, "isv_family_id", r->isv_family_id, sizeof(r->isv_family_id));
	out_field_hex(f, in, "report_data", r->report_data, sizeof(r->report_data));
	if (r->reserved_nonzero)
		out_field(f, in, "reserved", "non-zero (a reserved field holds a non-zero byte)");
}

struct td_attr_name {
	uint64_t bit;
	const char *name;
};

static void td_attr_names(uint64_t a, char *buf, size_t cap)
{
	static const struct td_attr_name names[] = {
	    {CVM_TD_ATTR_DEBUG, "DEBUG"},     {CVM_TD_ATTR_SEPT_VE_DISABLE, "SEPT_VE_DISABLE"},
	    {CVM_TD_ATTR_PKS, "PKS"},         {CVM_TD_ATTR_KL, "KL"},
	    {CVM_TD_ATTR_PERFMON, "PERFMON"},
	};
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int n;

		if ((a & names[i].bit) == 0)
			continue;
		n = snprintf(buf + len, cap - len, "%s%s", len ? " " : "", names[i].name);
		if (n < 0 || (size_t)n >= cap - len)
			return;
		len += (size_t)n;
	}
	if ((a & CVM_TD_ATTR_RESERVED) != 0)
		(void)snprintf(buf + len, cap - len, "%sRESERVED-BITS", len ? " " : "");
}

void out_tdx_report_text(FILE *f, const char *in, const struct cvm_tdx_report *td)
{
	static const char *const rtmr_names[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
	uint64_t a = cvm_td_attributes(td);
	char hex[17], names[96];

	out_field_hex(f, in, "tee_tcb_svn", td->tee_tcb_svn, sizeof(td->tee_tcb_svn));
	out_field_hex(f, in, "mr_seam", td->mr_seam, sizeof(td->mr_seam));
	out_field_hex(f, in, "mr_signer_seam", td->mr_signer_seam, sizeof(td->mr_signer_seam));
	out_field_hex(f, in, "seam_attributes", td->seam_attributes, sizeof(td->seam_attributes));
	cvm_hex_encode(td->td_attributes, sizeof(td->td_attributes), hex);
	td_attr_names(a, names, sizeof(names));
	out_field(f, in, "td_attributes", "%s (%s)", hex, names[0] != '\0' ? names : "none set");
	out_field_hex(f, in, "xfam", td->xfam, sizeof(td->xfam));
	out_field_hex(f, in, "mr_td", td->mr_td, sizeof(td->mr_td));
	out_field_hex(f, in, "mr_config_id", td->mr_config_id, sizeof(td->mr_config_id));
	out_field_hex(f, in, "mr_owner", td->mr_owner, sizeof(td->mr_owner));
	out_field_hex(f, in, "mr_owner_config", td->mr_owner_config, sizeof(td->mr_owner_config));
	for (size_t i = 0; i < 4; i++)
		out_field_hex(f, in, rtmr_names[i], td->rtmr[i], sizeof(td->rtmr[i]));
	out_field_hex(f, in, "report_data", td->report_data, sizeof(td->report_data));
	if (td->is_td15) {
		out_field_hex(f, in, "tee_tcb_svn2", td->tee_tcb_svn2, sizeof(td->tee_tcb_svn2));
		out_field_hex(f, in, "mr_service_td", td->mr_service_td, sizeof(td->mr_service_td));
	}
}

void out_steps(FILE *f, const struct cvm_report *rep)
{
	char name[CVM_REPORT_NAME_MAX], detail[CVM_REPORT_DETAIL_MAX];

	for (size_t i = 0; i < rep->count && i < CVM_REPORT_STEPS_MAX; i++) {
		const struct cvm_step *s = &rep->steps[i];

		out_sanitize(s->name, name, sizeof(name));
		out_sanitize(s->detail, detail, sizeof(detail));
		fprintf(f, "  %-5s %s: %s\n", s->ok ? "OK" : "FAIL", name, detail);
	}
}

void out_verdict_reason(const struct cvm_report *rep, int result, char *buf, size_t cap)
{
	char clean[CVM_REPORT_DETAIL_MAX], name[CVM_REPORT_NAME_MAX];
	struct cvm_wr w;
	size_t others = 0;

	cvm_wr_init_text(&w, buf, cap);
	if (result == CVM_OK)
		return;
	if (rep == NULL || rep->failed == NULL) {
		cvm_wr_str(&w, cvm_strerror(result));
		return;
	}
	out_sanitize(rep->failed->detail, clean, sizeof(clean));
	cvm_wr_str(&w, clean);
	for (size_t i = 0; i < rep->count && i < CVM_REPORT_STEPS_MAX; i++) {
		const struct cvm_step *s = &rep->steps[i];

		if (s->ok || s == rep->failed)
			continue;
		out_sanitize(s->name, name, sizeof(name));
		cvm_wr_fmt(&w, "%s%s", others == 0 ? " (also failed: " : ", ", name);
		others++;
	}
	if (others != 0)
		cvm_wr_str(&w, ")");
}

void out_verdict_text(bool accepted, const char *reason, const char *summary)
{
	const bool sum = summary != NULL && summary[0] != '\0';

	if (accepted)
		printf("verdict: accepted%s%s%s\n", sum ? " (" : "", sum ? summary : "", sum ? ")" : "");
	else
		printf("verdict: rejected: %s%s%s%s\n", reason, sum ? " (" : "", sum ? summary : "",
		       sum ? ")" : "");
}

int out_verdict_json(json_t *o, bool accepted, const char *reason, const struct cvm_report *rep)
{
	int bad = 0;

	bad |= out_jset_str(o, "verdict", accepted ? "accepted" : "rejected");
	bad |= out_jset_str(o, "reason", accepted ? NULL : reason);
	if (rep != NULL)
		bad |= out_jset(o, "steps", out_json_steps(rep));
	return bad;
}

json_t *out_json_hex(const uint8_t *p, size_t n)
{
	char *hex = cvm_hex_encode_new(p, n);
	json_t *v;

	if (hex == NULL)
		return NULL;
	v = json_stringn(hex, 2 * n);
	free(hex);
	return v;
}

int out_jset(json_t *o, const char *key, json_t *v)
{
	/* json_object_set_new releases `v` on failure, and fails on NULL. */
	return json_object_set_new(o, key, v) == 0 ? 0 : -1;
}

int out_jset_hex(json_t *o, const char *key, const uint8_t *p, size_t n)
{
	return out_jset(o, key, out_json_hex(p, n));
}

int out_jset_str(json_t *o, const char *key, const char *s)
{
	char *clean;
	int r;

	if (s == NULL)
		return out_jset(o, key, json_null());
	clean = malloc(strlen(s) + 1);
	if (clean == NULL)
		return -1;
	out_sanitize(s, clean, strlen(s) + 1);
	r = out_jset(o, key, json_string(clean));
	free(clean);
	return r;
}

int out_jset_int(json_t *o, const char *key, long long v)
{
	return out_jset(o, key, json_integer((json_int_t)v));
}

json_t *out_json_sgx_report(const struct cvm_sgx_report *r)
{
	json_t *o = json_object();
	int bad = 0;

	if (o == NULL)
		return NULL;
	bad |= out_jset_hex(o, "cpu_svn", r->cpu_svn, sizeof(r->cpu_svn));
	bad |= out_jset_int(o, "misc_select", r->misc_select);
	bad |= out_jset_hex(o, "isv_ext_prod_id", r->isv_ext_prod_id, sizeof(r->isv_ext_prod_id));
	bad |= out_jset_hex(o, "attributes", r->attributes, sizeof(r->attributes));
	bad |= out_jset_hex(o, "mr_enclave", r->mr_enclave, sizeof(r->mr_enclave));
	bad |= out_jset_hex(o, "mr_signer", r->mr_signer, sizeof(r->mr_signer));
	bad |= out_jset_hex(o, "config_id", r->config_id, sizeof(r->config_id));
	bad |= out_jset_int(o, "isv_prod_id", r->isv_prod_id);
	bad |= out_jset_int(o, "isv_svn", r->isv_svn);
	bad |= out_jset_int(o, "config_svn", r->config_svn);
	bad |= out_jset_hex(o, "isv_family_id", r->isv_family_id, sizeof(r->isv_family_id));
	bad |= out_jset_hex(o, "report_data", r->report_data, sizeof(r->report_data));
	bad |= out_jset(o, "reserved_nonzero", json_boolean(r->reserved_nonzero));
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int json_tdx_body(json_t *o, const struct cvm_tdx_report *td)
{
	static const char *const rtmr_names[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
	int bad = 0;

	bad |= out_jset_hex(o, "tee_tcb_svn", td->tee_tcb_svn, sizeof(td->tee_tcb_svn));
	bad |= out_jset_hex(o, "mr_seam", td->mr_seam, sizeof(td->mr_seam));
	bad |= out_jset_hex(o, "mr_signer_seam", td->mr_signer_seam, sizeof(td->mr_signer_seam));
	bad |= out_jset_hex(o, "seam_attributes", td->seam_attributes, sizeof(td->seam_attributes));
	bad |= out_jset_hex(o, "td_attributes", td->td_attributes, sizeof(td->td_attributes));
	bad |= out_jset_hex(o, "xfam", td->xfam, sizeof(td->xfam));
	bad |= out_jset_hex(o, "mr_td", td->mr_td, sizeof(td->mr_td));
	bad |= out_jset_hex(o, "mr_config_id", td->mr_config_id, sizeof(td->mr_config_id));
	bad |= out_jset_hex(o, "mr_owner", td->mr_owner, sizeof(td->mr_owner));
	bad |= out_jset_hex(o, "mr_owner_config", td->mr_owner_config, sizeof(td->mr_owner_config));
	for (size_t i = 0; i < 4; i++)
		bad |= out_jset_hex(o, rtmr_names[i], td->rtmr[i], sizeof(td->rtmr[i]));
	bad |= out_jset_hex(o, "report_data", td->report_data, sizeof(td->report_data));
	if (td->is_td15) {
		bad |= out_jset_hex(o, "tee_tcb_svn2", td->tee_tcb_svn2, sizeof(td->tee_tcb_svn2));
		bad |= out_jset_hex(o, "mr_service_td", td->mr_service_td, sizeof(td->mr_service_td));
	}
	return bad;
}

int out_json_body(json_t *o, const struct cvm_quote *q)
{
	json_t *sgx;
	const char *k;
	json_t *v;

	if (q->tee == CVM_TEE_TDX)
		return json_tdx_body(o, &q->body.td);
	if (q->tee != CVM_TEE_SGX)
		return 0;
	/* SGX: the same fields as a QE report, flattened into `o`. */
	sgx = out_json_sgx_report(&q->body.sgx);
	if (sgx == NULL)
		return -1;
	json_object_foreach(sgx, k, v)
	{
		if (json_object_set(o, k, v) != 0) {
			json_decref(sgx);
			return -1;
		}
	}
	json_decref(sgx);
	return 0;
}

json_t *out_json_steps(const struct cvm_report *rep)
{
	json_t *a = json_array();

	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < rep->count && i < CVM_REPORT_STEPS_MAX; i++) {
		const struct cvm_step *s = &rep->steps[i];
		json_t *o = json_object();
		int bad = 0;

		if (o == NULL) {
			json_decref(a);
			return NULL;
		}
		bad |= out_jset_str(o, "name", s->name);
		bad |= out_jset(o, "ok", json_boolean(s->ok));
		bad |= out_jset_str(o, "detail", s->detail);
		if (bad != 0 || json_array_append_new(a, o) != 0) {
			if (bad != 0)
				json_decref(o);
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

int out_json_print(const json_t *o)
{
	if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER) != 0)
		return -1;
	if (fputc('\n', stdout) == EOF)
		return -1;
	return fflush(stdout) == 0 ? 0 : -1;
}

/* ---- SEV-SNP ------------------------------------------------------------ */

void out_snp_tcb_text(const struct cvm_snp_tcb *t, char *buf, size_t cap)
{
	if (t->has_fmc)
		(void)snprintf(buf, cap, "fmc %u, bootloader %u, tee %u, snp %u, microcode %u", t->fmc,
		               t->bootloader, t->tee, t->snp, t->microcode);
	else
		(void)snprintf(buf, cap, "bootloader %u, tee %u, snp %u, microcode %u", t->bootloader, t->tee,
		               t->snp, t->microcode);
}

struct bit_name {
	uint64_t bit;
	const char *name;
};

static const struct bit_name snp_policy_bits[] = {
    {CVM_SNP_POLICY_SMT, "SMT"},
    {CVM_SNP_POLICY_MIGRATE_MA, "MIGRATE_MA"},
    {CVM_SNP_POLICY_DEBUG, "DEBUG"},
    {CVM_SNP_POLICY_SINGLE_SOCKET, "SINGLE_SOCKET"},
    {CVM_SNP_POLICY_CXL_ALLOW, "CXL_ALLOW"},
    {CVM_SNP_POLICY_MEM_AES_256_XTS, "MEM_AES_256_XTS"},
    {CVM_SNP_POLICY_RAPL_DIS, "RAPL_DIS"},
    {CVM_SNP_POLICY_CIPHERTEXT_HIDING, "CIPHERTEXT_HIDING"},
    {CVM_SNP_POLICY_PAGE_SWAP_DISABLE, "PAGE_SWAP_DISABLE"},
};

static const struct bit_name snp_platform_bits[] = {
    {CVM_SNP_PLATFORM_SMT_EN, "SMT_EN"},
    {CVM_SNP_PLATFORM_TSME_EN, "TSME_EN"},
    {CVM_SNP_PLATFORM_ECC_EN, "ECC_EN"},
    {CVM_SNP_PLATFORM_RAPL_DIS, "RAPL_DIS"},
    {CVM_SNP_PLATFORM_CIPHERTEXT_HIDING_EN, "CIPHERTEXT_HIDING_EN"},
    {CVM_SNP_PLATFORM_ALIAS_CHECK_COMPLETE, "ALIAS_CHECK_COMPLETE"},
    {CVM_SNP_PLATFORM_TIO_EN, "TIO_EN"},
};

static void bit_names(uint64_t v, const struct bit_name *names, size_t n, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int k;

		if ((v & names[i].bit) == 0)
			continue;
		k = snprintf(buf + len, cap - len, "%s%s", len ? " " : "", names[i].name);
		if (k < 0 || (size_t)k >= cap - len)
			return;
		len += (size_t)k;
	}
	if (len == 0)
		(void)snprintf(buf, cap, "none set");
}

static const char *snp_signer_text(uint8_t k)
{
	switch (k) {
	case CVM_SNP_SIGNER_VCEK:
		return "VCEK";
	case CVM_SNP_SIGNER_VLEK:
		return "VLEK";
	case CVM_SNP_SIGNER_NONE:
		return "none";
	default:
		return "reserved";
	}
}

static void out_snp_tcb_field(FILE *f, const char *in, const char *name, const struct cvm_snp_tcb *t)
{
	char text[96];

	out_snp_tcb_text(t, text, sizeof(text));
	out_field(f, in, name, "0x%016llx (%s)", (unsigned long long)t->raw, text);
}

void out_snp_report_text(FILE *f, const char *in, const struct cvm_snp_report *r)
{
	char names[160];

	out_field(f, in, "version", "%u", r->version);
	out_field(f, in, "guest_svn", "%u", r->guest_svn);
	bit_names(r->policy, snp_policy_bits, sizeof(snp_policy_bits) / sizeof(snp_policy_bits[0]), names,
	          sizeof(names));
	out_field(f, in, "policy", "0x%016llx (ABI %u.%u; %s)", (unsigned long long)r->policy,
	          (unsigned)((r->policy >> CVM_SNP_POLICY_ABI_MAJOR_SHIFT) & 0xff),
	          (unsigned)(r->policy & CVM_SNP_POLICY_ABI_MINOR_MASK), names);
	out_field_hex(f, in, "family_id", r->family_id, sizeof(r->family_id));
	out_field_hex(f, in, "image_id", r->image_id, sizeof(r->image_id));
	out_field(f, in, "vmpl", "%u", r->vmpl);
	out_field(f, in, "signature_algo", "%u%s", r->sig_algo,
	          r->sig_algo == CVM_SNP_SIG_ALGO_ECDSA_P384_SHA384 ? " (ECDSA P-384 with SHA-384)" : "");
	out_snp_tcb_field(f, in, "current_tcb", &r->current_tcb);
	bit_names(r->platform_info, snp_platform_bits,
	          sizeof(snp_platform_bits) / sizeof(snp_platform_bits[0]), names, sizeof(names));
	out_field(f, in, "platform_info", "0x%016llx (%s)", (unsigned long long)r->platform_info, names);
	out_field(f, in, "signer_info", "0x%08x (signing key %s%s%s)", r->signer_info,
	          snp_signer_text(r->signing_key), r->mask_chip_key ? ", MASK_CHIP_KEY" : "",
	          r->author_key_en ? ", AUTHOR_KEY_EN" : "");
	out_field_hex(f, in, "report_data", r->report_data, sizeof(r->report_data));
	out_field_hex(f, in, "measurement", r->measurement, sizeof(r->measurement));
	out_field_hex(f, in, "host_data", r->host_data, sizeof(r->host_data));
	out_field_hex(f, in, "id_key_digest", r->id_key_digest, sizeof(r->id_key_digest));
	out_field_hex(f, in, "author_key_digest", r->author_key_digest, sizeof(r->author_key_digest));
	out_field_hex(f, in, "report_id", r->report_id, sizeof(r->report_id));
	out_field_hex(f, in, "report_id_ma", r->report_id_ma, sizeof(r->report_id_ma));
	out_snp_tcb_field(f, in, "reported_tcb", &r->reported_tcb);
	if (r->has_cpuid)
		out_field(f, in, "cpuid", "family 0x%02x, model 0x%02x, stepping %u (%s)", r->cpuid_fam_id,
		          r->cpuid_mod_id, r->cpuid_step, cvm_snp_product_name(r->product));
	out_field_hex(f, in, "chip_id", r->chip_id, sizeof(r->chip_id));
	out_snp_tcb_field(f, in, "committed_tcb", &r->committed_tcb);
	out_field(f, in, "current_version", "%u.%u.%u", r->current_major, r->current_minor, r->current_build);
	out_field(f, in, "committed_version", "%u.%u.%u", r->committed_major, r->committed_minor,
	          r->committed_build);
	out_snp_tcb_field(f, in, "launch_tcb", &r->launch_tcb);
	if (r->has_mit_vectors) {
		out_field(f, in, "launch_mit_vector", "0x%016llx", (unsigned long long)r->launch_mit_vector);
		out_field(f, in, "current_mit_vector", "0x%016llx",
		          (unsigned long long)r->current_mit_vector);
	}
	out_field_hex(f, in, "signature_r", r->sig_r, sizeof(r->sig_r));
	out_field_hex(f, in, "signature_s", r->sig_s, sizeof(r->sig_s));
	if (r->reserved_nonzero)
		out_field(f, in, "reserved", "NOT as the ABI requires: %s (verify rejects this report)",
		          r->reserved_what);
}

json_t *out_json_snp_tcb(const struct cvm_snp_tcb *t)
{
	json_t *o = json_object();
	char raw[19];
	int bad = 0;

	if (o == NULL)
		return NULL;
	(void)snprintf(raw, sizeof(raw), "0x%016llx", (unsigned long long)t->raw);
	bad |= out_jset_str(o, "raw", raw);
	bad |= out_jset(o, "fmc", t->has_fmc ? json_integer(t->fmc) : json_null());
	bad |= out_jset_int(o, "bootloader", t->bootloader);
	bad |= out_jset_int(o, "tee", t->tee);
	bad |= out_jset_int(o, "snp", t->snp);
	bad |= out_jset_int(o, "microcode", t->microcode);
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *out_json_snp_policy(uint64_t policy)
{
	json_t *o = json_object();
	char raw[19];
	int bad = 0;

	if (o == NULL)
		return NULL;
	(void)snprintf(raw, sizeof(raw), "0x%016llx", (unsigned long long)policy);
	bad |= out_jset_str(o, "raw", raw);
	bad |= out_jset_int(o, "abi_major", (long long)((policy >> CVM_SNP_POLICY_ABI_MAJOR_SHIFT) & 0xff));
	bad |= out_jset_int(o, "abi_minor", (long long)(policy & CVM_SNP_POLICY_ABI_MINOR_MASK));
	bad |= out_jset(o, "smt", json_boolean((policy & CVM_SNP_POLICY_SMT) != 0));
	bad |= out_jset(o, "migrate_ma", json_boolean((policy & CVM_SNP_POLICY_MIGRATE_MA) != 0));
	bad |= out_jset(o, "debug", json_boolean((policy & CVM_SNP_POLICY_DEBUG) != 0));
	bad |= out_jset(o, "single_socket", json_boolean((policy & CVM_SNP_POLICY_SINGLE_SOCKET) != 0));
	bad |= out_jset(o, "cxl_allow", json_boolean((policy & CVM_SNP_POLICY_CXL_ALLOW) != 0));
	bad |= out_jset(o, "mem_aes_256_xts", json_boolean((policy & CVM_SNP_POLICY_MEM_AES_256_XTS) != 0));
	bad |= out_jset(o, "rapl_dis", json_boolean((policy & CVM_SNP_POLICY_RAPL_DIS) != 0));
	bad |=
	    out_jset(o, "ciphertext_hiding", json_boolean((policy & CVM_SNP_POLICY_CIPHERTEXT_HIDING) != 0));
	bad |=
	    out_jset(o, "page_swap_disable", json_boolean((policy & CVM_SNP_POLICY_PAGE_SWAP_DISABLE) != 0));
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *json_platform_info(uint64_t v)
{
	json_t *o = json_object();
	char raw[19];
	int bad = 0;

	if (o == NULL)
		return NULL;
	(void)snprintf(raw, sizeof(raw), "0x%016llx", (unsigned long long)v);
	bad |= out_jset_str(o, "raw", raw);
	for (size_t i = 0; i < sizeof(snp_platform_bits) / sizeof(snp_platform_bits[0]); i++) {
		char key[32];
		size_t j;

		for (j = 0; snp_platform_bits[i].name[j] != '\0' && j + 1 < sizeof(key); j++) {
			char c = snp_platform_bits[i].name[j];

			key[j] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		}
		key[j] = '\0';
		bad |= out_jset(o, key, json_boolean((v & snp_platform_bits[i].bit) != 0));
	}
	if (bad != 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int out_json_snp_report(json_t *o, const struct cvm_snp_report *r)
{
	char ver[16];
	int bad = 0;

	bad |= out_jset_int(o, "report_version", r->version);
	bad |= out_jset_int(o, "guest_svn", r->guest_svn);
	bad |= out_jset(o, "policy", out_json_snp_policy(r->policy));
	bad |= out_jset_hex(o, "family_id", r->family_id, sizeof(r->family_id));
	bad |= out_jset_hex(o, "image_id", r->image_id, sizeof(r->image_id));
	bad |= out_jset_int(o, "vmpl", r->vmpl);
	bad |= out_jset_int(o, "signature_algo", r->sig_algo);
	bad |= out_jset(o, "current_tcb", out_json_snp_tcb(&r->current_tcb));
	bad |= out_jset(o, "platform_info", json_platform_info(r->platform_info));
	bad |= out_jset_int(o, "signer_info", r->signer_info);
	bad |= out_jset_str(o, "signing_key", snp_signer_text(r->signing_key));
	bad |= out_jset(o, "mask_chip_key", json_boolean(r->mask_chip_key));
	bad |= out_jset(o, "author_key_en", json_boolean(r->author_key_en));
	bad |= out_jset_hex(o, "report_data", r->report_data, sizeof(r->report_data));
	bad |= out_jset_hex(o, "measurement", r->measurement, sizeof(r->measurement));
	bad |= out_jset_hex(o, "host_data", r->host_data, sizeof(r->host_data));
	bad |= out_jset_hex(o, "id_key_digest", r->id_key_digest, sizeof(r->id_key_digest));
	bad |= out_jset_hex(o, "author_key_digest", r->author_key_digest, sizeof(r->author_key_digest));
	bad |= out_jset_hex(o, "report_id", r->report_id, sizeof(r->report_id));
	bad |= out_jset_hex(o, "report_id_ma", r->report_id_ma, sizeof(r->report_id_ma));
	bad |= out_jset(o, "reported_tcb", out_json_snp_tcb(&r->reported_tcb));
	bad |= out_jset(o, "cpuid_fam_id", r->has_cpuid ? json_integer(r->cpuid_fam_id) : json_null());
	bad |= out_jset(o, "cpuid_mod_id", r->has_cpuid ? json_integer(r->cpuid_mod_id) : json_null());
	bad |= out_jset(o, "cpuid_step", r->has_cpuid ? json_integer(r->cpuid_step) : json_null());
	bad |= out_jset_hex(o, "chip_id", r->chip_id, sizeof(r->chip_id));
	bad |= out_jset(o, "committed_tcb", out_json_snp_tcb(&r->committed_tcb));
	(void)snprintf(ver, sizeof(ver), "%u.%u.%u", r->current_major, r->current_minor, r->current_build);
	bad |= out_jset_str(o, "current_version", ver);
	(void)snprintf(ver, sizeof(ver), "%u.%u.%u", r->committed_major, r->committed_minor,
	               r->committed_build);
	bad |= out_jset_str(o, "committed_version", ver);
	bad |= out_jset(o, "launch_tcb", out_json_snp_tcb(&r->launch_tcb));
	if (r->has_mit_vectors) {
		char raw[19];

		(void)snprintf(raw, sizeof(raw), "0x%016llx", (unsigned long long)r->launch_mit_vector);
		bad |= out_jset_str(o, "launch_mit_vector", raw);
		(void)snprintf(raw, sizeof(raw), "0x%016llx", (unsigned long long)r->current_mit_vector);
		bad |= out_jset_str(o, "current_mit_vector", raw);
	} else {
		bad |= out_jset(o, "launch_mit_vector", json_null());
		bad |= out_jset(o, "current_mit_vector", json_null());
	}
	bad |= out_jset_hex(o, "signature_r", r->sig_r, sizeof(r->sig_r));
	bad |= out_jset_hex(o, "signature_s", r->sig_s, sizeof(r->sig_s));
	bad |= out_jset(o, "reserved_nonzero", json_boolean(r->reserved_nonzero));
	return bad;
}

bool out_amd_simulated(const struct cvm_amd_collateral *a)
{
	return a != NULL && (cvm_tee_evidence_is_simulated(NULL, 0, a->ark, a->ark_len) ||
	                     cvm_tee_evidence_is_simulated(NULL, 0, a->cert_chain, a->cert_chain_len) ||
	                     cvm_tee_evidence_is_simulated(NULL, 0, a->ask, a->ask_len) ||
	                     cvm_tee_evidence_is_simulated(NULL, 0, a->asvk, a->asvk_len));
}

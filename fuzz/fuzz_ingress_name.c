/* libFuzzer harness for lib/ingress's names: the input is an SNI, routed
 * under two base domains, its label parsed, its TXT names made, and the
 * input read as a TXT value.
 *
 * Invariants: a routed name is lower case, the same length as the input,
 * and passes the host name check; an APP route's id is 1..63 letters and
 * digits and its port not 0; is_tls and is_h2 never both; a failed parse
 * leaves the destination zero; TXT names start with the prefix. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/ingress.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_dst(const struct cvm_ingress_dst *d)
{
	size_t n = strlen(d->id);

	if (n == 0 || n > CVM_INGRESS_ID_MAX || d->port == 0 || (d->is_tls && d->is_h2))
		__builtin_trap();
	for (size_t i = 0; i < n; i++)
		if (!((d->id[i] >= 'a' && d->id[i] <= 'z') || (d->id[i] >= '0' && d->id[i] <= '9')))
			__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct cvm_ingress_dst zero;
	const char *const bases[] = {"example.com", "*.gw.example.org"};
	const char *s = (const char *)data, *why = NULL;
	char txt[2][CVM_INGRESS_NAME_MAX + 32];
	struct cvm_ingress_route rt;
	struct cvm_ingress_dst d;
	int r;

	r = cvm_ingress_route(s, size, bases, 2, &rt, &why);
	if (r == CVM_OK) {
		if (strlen(rt.name) != size || cvm_ingress_name_check(rt.name, size, NULL) != CVM_OK)
			__builtin_trap();
		for (size_t i = 0; i < size; i++)
			if (rt.name[i] >= 'A' && rt.name[i] <= 'Z')
				__builtin_trap();
		if (rt.kind == CVM_INGRESS_APP)
			check_dst(&rt.dst);
		else if (rt.kind != CVM_INGRESS_CUSTOM || memcmp(&rt.dst, &zero, sizeof(zero)) != 0)
			__builtin_trap();
		if (cvm_ingress_txt_names(rt.name, NULL, txt) != CVM_OK ||
		    strncmp(txt[0], CVM_INGRESS_TXT_PREFIX ".", sizeof(CVM_INGRESS_TXT_PREFIX)) != 0)
			__builtin_trap();
	} else if (r != CVM_E_FORMAT || why == NULL) {
		__builtin_trap();
	}
	r = cvm_ingress_parse_subdomain(s, size, &d, &why);
	if (r == CVM_OK)
		check_dst(&d);
	else if (memcmp(&d, &zero, sizeof(d)) != 0)
		__builtin_trap();
	r = cvm_ingress_parse_txt(s, size, &d, &why);
	if (r == CVM_OK) {
		check_dst(&d);
		if (!d.is_tls)
			__builtin_trap();
	} else if (memcmp(&d, &zero, sizeof(d)) != 0) {
		__builtin_trap();
	}
	return 0;
}

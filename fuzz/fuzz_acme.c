/* libFuzzer harness for the ACME response parsers (lib/acme/parse.c):
 * directory, account, order, authorization with challenges, and problem
 * documents, all fed the same bytes. Whatever the input, each returns
 * cleanly; on success every URL it kept passes the URL check, every token
 * the token check, every list stays under its cap, and the problem
 * sentence is NUL-terminated printable text within its buffer. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "acme/acme_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_url(const char *u, bool required)
{
	if (u == NULL) {
		if (required)
			__builtin_trap();
		return;
	}
	if (!acme_url_syntax_ok(u, strlen(u)))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acme_directory d;
	struct acme_account acct;
	struct acme_order o;
	struct acme_authz a;
	char sentence[CVM_ACME_ERR_LEN], type[64];

	if (acme_parse_directory(data, size, &d) == CVM_OK) {
		check_url(d.new_nonce, true);
		check_url(d.new_account, true);
		check_url(d.new_order, true);
		check_url(d.revoke_cert, false);
		check_url(d.key_change, false);
		acme_directory_cleanup(&d);
	}
	if (acme_parse_account(data, size, &acct) == CVM_OK && acct.status != ACME_ST_VALID &&
	    acct.status != ACME_ST_DEACTIVATED && acct.status != ACME_ST_REVOKED)
		__builtin_trap();
	if (acme_parse_order(data, size, &o) == CVM_OK) {
		if (o.authorization_count == 0 || o.authorization_count > CVM_ACME_NAMES_MAX)
			__builtin_trap();
		for (size_t i = 0; i < o.authorization_count; i++)
			check_url(o.authorizations[i], true);
		check_url(o.finalize, true);
		check_url(o.certificate, o.status == ACME_ST_VALID);
		acme_order_cleanup(&o);
	}
	if (acme_parse_authz(data, size, &a) == CVM_OK) {
		if (a.challenge_count > ACME_CHALLENGES_MAX || a.domain == NULL || !cvm_dns_name_ok(a.domain))
			__builtin_trap();
		for (size_t i = 0; i < a.challenge_count; i++) {
			check_url(a.challenges[i].url, true);
			if (a.challenges[i].token != NULL &&
			    !acme_token_ok(a.challenges[i].token, strlen(a.challenges[i].token)))
				__builtin_trap();
		}
		acme_authz_cleanup(&a);
	}
	(void)acme_parse_problem(data, size, sentence, sizeof(sentence), type, sizeof(type));
	if (memchr(sentence, '\0', sizeof(sentence)) == NULL || memchr(type, '\0', sizeof(type)) == NULL)
		__builtin_trap();
	for (size_t i = 0; sentence[i] != '\0'; i++)
		if ((unsigned char)sentence[i] < 0x20 || (unsigned char)sentence[i] >= 0x7f)
			__builtin_trap();
	return 0;
}

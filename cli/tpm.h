/* cvm tpm, shared by its files: cmd_tpm.c (quote, pcrread, the command's
 * usage and dispatch) and cmd_tpm_verify.c (verify). */
#ifndef CVM_CLI_TPM_H
#define CVM_CLI_TPM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include <cvmkit/tpm.h>

#define CMD_QUOTE "tpm quote"
#define CMD_VERIFY "tpm verify"
#define CMD_PCRREAD "tpm pcrread"
#define SEL_TEXT 256
#define NONCE_DEFAULT_LEN 32
#define JSON_FILE_MAX ((size_t)256 * 1024)
/* Quote attempts when the PCRs change between the quote and the read-back. */
#define QUOTE_ATTEMPTS 3

enum {
	OPT_TCTI = 0x200,
	OPT_PCRS,
	OPT_NONCE,
	OPT_OUT,
	OPT_AK_HANDLE,
	OPT_AK_TYPE,
	OPT_PARENT,
	OPT_AK,
	OPT_ATTEST,
	OPT_SIG,
	OPT_EVENTLOG,
	OPT_IMA,
	OPT_NO_PCR_CHECK,
};

void tpm_usage(FILE *f);
/* tpm_parse_nonce reads --nonce HEX (1 to CVM_TPM_DATA_MAX bytes). */
int tpm_parse_nonce(const char *cmd, const char *hex, uint8_t *out, size_t *out_len);
/* tpm_scheme_name and tpm_bank_name name a signature scheme and a bank. */
const char *tpm_scheme_name(uint16_t alg);
const char *tpm_bank_name(uint16_t alg);
/* tpm_json_pcrs is the PCR values `sel` selects, as JSON. */
json_t *tpm_json_pcrs(const struct cvm_tpm_pcrs *p, const struct cvm_tpm_pcr_sel *sel);
/* tpm_verify is cvm tpm verify (cmd_tpm_verify.c). */
int tpm_verify(int argc, char **argv);

#endif

#include <cvmkit/err.h>

const char *cvm_strerror(int err)
{
	switch (err) {
	case CVM_OK:
		return "success";
	case CVM_E_INTERNAL:
		return "internal error (a bug in cvmkit)";
	case CVM_E_NOMEM:
		return "out of memory";
	case CVM_E_INVAL:
		return "invalid argument";
	case CVM_E_TRUNCATED:
		return "input ended early (truncated)";
	case CVM_E_FORMAT:
		return "input is malformed";
	case CVM_E_UNSUPPORTED:
		return "unsupported version or algorithm";
	case CVM_E_TOO_LARGE:
		return "length or count exceeds its limit";
	case CVM_E_SIGNATURE:
		return "signature did not verify";
	case CVM_E_POLICY:
		return "rejected by policy";
	case CVM_E_SYSTEM:
		return "system error";
	case CVM_E_CRYPTO:
		return "cryptographic library error";
	case CVM_E_CHAIN:
		return "certificate chain or CRL did not verify";
	case CVM_E_EXPIRED:
		return "outside its validity window";
	case CVM_E_REVOKED:
		return "certificate revoked";
	case CVM_E_TCB:
		return "TCB not acceptable (no matching level, or revoked)";
	case CVM_E_MISMATCH:
		return "values that must agree differ";
	case CVM_E_TPM:
		return "the TPM reported an error";
	case CVM_E_NOT_FOUND:
		return "not found (not cached, and no upstream has it)";
	case CVM_E_UPSTREAM:
		return "an upstream service failed or could not be reached";
	default:
		return "unknown error";
	}
}

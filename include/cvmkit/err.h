/* cvmkit error codes. Library functions return 0 or a negative CVM_E_*. */
#ifndef CVMKIT_ERR_H
#define CVMKIT_ERR_H

#include "api.h"

enum cvm_err {
	CVM_OK = 0,
	CVM_E_INTERNAL = -1, /* broken invariant: a bug in cvmkit */
	CVM_E_NOMEM = -2,
	CVM_E_INVAL = -3,       /* caller passed bad arguments */
	CVM_E_TRUNCATED = -4,   /* input ended early */
	CVM_E_FORMAT = -5,      /* input is malformed */
	CVM_E_UNSUPPORTED = -6, /* well-formed, but a version/algorithm we do not handle */
	CVM_E_TOO_LARGE = -7,   /* a length or count exceeds its _MAX */
	CVM_E_SIGNATURE = -8,   /* a signature or MAC did not verify */
	CVM_E_POLICY = -9,      /* evidence is authentic but the policy rejects it */
	CVM_E_SYSTEM = -10,     /* errno holds the cause */
	CVM_E_CRYPTO = -11,     /* libcrypto failed */
	CVM_E_CHAIN = -12,      /* a certificate chain or CRL did not verify */
	CVM_E_EXPIRED = -13,    /* a certificate, CRL or collateral is outside its validity window */
	CVM_E_REVOKED = -14,    /* a certificate is on a CRL */
	CVM_E_TCB = -15,        /* no TCB level matched, or the TCB is revoked */
	CVM_E_MISMATCH = -16,   /* two values that must agree do not (FMSPC, QE identity, hash) */
	CVM_E_TPM = -17,        /* the TPM or its transport (TCTI) reported an error */
	CVM_E_NOT_FOUND = -18,  /* the item is not cached and cannot be fetched, or the vendor has none */
	CVM_E_UPSTREAM = -19, /* an upstream service (PCS, PCCS, KDS, ACME) failed or could not be reached */
};

/* cvm_strerror returns a static English description of `err`. */
CVM_API const char *cvm_strerror(int err);

#endif

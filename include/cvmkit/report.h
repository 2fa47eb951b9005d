/* A verification report: one entry per step, in order, so a person can see
 * which signature, chain, TCB level or measurement passed or failed and why. */
#ifndef CVMKIT_REPORT_H
#define CVMKIT_REPORT_H

#include "api.h"

#include <stdbool.h>
#include <stddef.h>

#define CVM_REPORT_STEPS_MAX 48
#define CVM_REPORT_NAME_MAX 32
#define CVM_REPORT_DETAIL_MAX 320

struct cvm_step {
	char name[CVM_REPORT_NAME_MAX];
	bool ok;
	char detail[CVM_REPORT_DETAIL_MAX];
};

/* struct cvm_report records steps. `failed` points at the first failed step
 * (NULL while none failed); `reason` is that step's detail. */
struct cvm_report {
	struct cvm_step steps[CVM_REPORT_STEPS_MAX];
	size_t count;
	const struct cvm_step *failed;
};

CVM_API void cvm_report_init(struct cvm_report *r);
/* cvm_report_add appends a step (a NULL report is allowed and ignored). */
CVM_API void cvm_report_add(struct cvm_report *r, const char *name, bool ok, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* cvm_report_reason returns the first failure's detail, or NULL. */
CVM_API const char *cvm_report_reason(const struct cvm_report *r);

#endif

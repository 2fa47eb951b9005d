#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cvmkit/report.h>

void cvm_report_init(struct cvm_report *r)
{
	memset(r, 0, sizeof(*r));
}

void cvm_report_add(struct cvm_report *r, const char *name, bool ok, const char *fmt, ...)
{
	struct cvm_step *s;
	va_list ap;

	if (r == NULL)
		return;
	if (r->count == CVM_REPORT_STEPS_MAX) {
		/* Keep the last slot for a failure so a rejection is never lost. */
		if (ok || r->failed != NULL)
			return;
		r->count--;
	}
	s = &r->steps[r->count++];
	(void)snprintf(s->name, sizeof(s->name), "%s", name);
	s->ok = ok;
	va_start(ap, fmt);
	(void)vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
	va_end(ap);
	if (!ok && r->failed == NULL)
		r->failed = s;
}

const char *cvm_report_reason(const struct cvm_report *r)
{
	return r->failed != NULL ? r->failed->detail : NULL;
}

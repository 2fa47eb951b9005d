#include <stdarg.h>
#include <stdio.h>

#include <cvmkit/log.h>

static cvm_log_fn log_fn;
static void *log_ctx;
static enum cvm_log_level log_max = CVM_LOG_ERROR;

void cvm_log_set_handler(cvm_log_fn fn, enum cvm_log_level max_level, void *ctx)
{
	log_fn = fn;
	log_ctx = ctx;
	log_max = max_level;
}

void cvm_log_msg(enum cvm_log_level level, const char *func, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (log_fn == NULL || level > log_max)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fn(level, func, msg, log_ctx);
}

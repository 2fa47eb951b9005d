/* The library is silent unless the host installs a handler. */
#ifndef CVMKIT_LOG_H
#define CVMKIT_LOG_H

#include "api.h"

enum cvm_log_level { CVM_LOG_ERROR = 0, CVM_LOG_WARN = 1, CVM_LOG_INFO = 2, CVM_LOG_DEBUG = 3 };

typedef void (*cvm_log_fn)(enum cvm_log_level level, const char *func, const char *msg, void *ctx);

/* cvm_log_set_handler routes library messages at or below `max_level` to `fn`
 * (NULL silences the library again). */
CVM_API void cvm_log_set_handler(cvm_log_fn fn, enum cvm_log_level max_level, void *ctx);
CVM_API void cvm_log_msg(enum cvm_log_level level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cvm_error(...) cvm_log_msg(CVM_LOG_ERROR, __func__, __VA_ARGS__)
#define cvm_warn(...) cvm_log_msg(CVM_LOG_WARN, __func__, __VA_ARGS__)
#define cvm_info(...) cvm_log_msg(CVM_LOG_INFO, __func__, __VA_ARGS__)
#define cvm_debug(...) cvm_log_msg(CVM_LOG_DEBUG, __func__, __VA_ARGS__)
/* cvm_error_r appends ": <cvm_strerror(r)>" to the message. */
#define cvm_error_r(r, fmt, ...) \
	cvm_log_msg(CVM_LOG_ERROR, __func__, fmt ": %s", ##__VA_ARGS__, cvm_strerror(r))

#endif

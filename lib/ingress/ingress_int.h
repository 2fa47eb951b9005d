/* lib/ingress's private declarations. */
#ifndef CVM_INGRESS_INT_H
#define CVM_INGRESS_INT_H

#include <stdbool.h>
#include <stddef.h>

/* ingress_name_check is cvm_ingress_name_check without the NULL check: the
 * ClientHello's SNI and the router share one definition of a host name. */
int ingress_name_check(const char *name, size_t len, const char **why);

#endif

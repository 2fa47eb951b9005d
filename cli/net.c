/* The CLI's connection pieces (net.h): lib/tls's client with the CLI's
 * messages. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include <cvmkit/err.h>
#include <cvmkit/tls.h>

#include "cli.h"
#include "net.h"

int cli_net_dial(const char *cmd, const char *host, const char *port, const char *what, const char *hint,
                 unsigned timeout_s)
{
	struct cvm_tls_target t;
	char err[512];
	int fd;

	memset(&t, 0, sizeof(t));
	if (strlen(host) >= sizeof(t.host) || strlen(port) >= sizeof(t.port)) {
		cli_err(cmd, "'%s' is too long to be HOST:PORT", what);
		return -1;
	}
	memcpy(t.host, host, strlen(host));
	memcpy(t.port, port, strlen(port));
	fd = cvm_tls_dial(&t, timeout_s, err, sizeof(err));
	if (fd < 0)
		cli_err(cmd, "%s%s", err, hint != NULL ? hint : "");
	return fd;
}

void cli_net_close(SSL *ssl, SSL_CTX *ctx, int fd)
{
	if (ssl != NULL)
		(void)SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		(void)close(fd);
	ERR_clear_error();
}

size_t cli_reply_collect(char *p, size_t size, size_t n, void *ctx)
{
	struct cli_reply *rep = ctx;
	size_t len = size * n;
	char *nb;

	if (len > rep->max - rep->len) {
		rep->too_large = true;
		return 0;
	}
	nb = realloc(rep->buf, rep->len + len + 1);
	if (nb == NULL)
		return 0;
	memcpy(nb + rep->len, p, len);
	nb[rep->len + len] = '\0';
	rep->buf = nb;
	rep->len += len;
	return len;
}

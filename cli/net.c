/* The CLI's HTTP/1.1-over-TLS client pieces (net.h). */
#include <errno.h>
#include <stdio.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

#include <cvmkit/err.h>

#include "cli.h"
#include "net.h"

int cli_net_dial(const char *cmd, const char *host, const char *port, const char *what, const char *hint,
                 unsigned timeout_s)
{
	struct addrinfo hints, *res = NULL;
	struct timeval tv = {(time_t)timeout_s, 0};
	int fd = -1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	e = getaddrinfo(host, port, &hints, &res);
	if (e != 0) {
		cli_err(cmd, "cannot resolve '%s': %s", host, gai_strerror(e));
		return -1;
	}
	for (struct addrinfo *a = res; a != NULL; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		/* a request right after the handshake's last flight must not wait
		 * for that flight's (delayed) acknowledgement: no Nagle */
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		e = errno;
		(void)close(fd);
		fd = -1;
		errno = e;
	}
	if (fd < 0)
		cli_err(cmd, "cannot connect to %s: %s%s", what, strerror(errno), hint != NULL ? hint : "");
	freeaddrinfo(res);
	return fd;
}

bool cli_net_write_all(SSL *ssl, const char *p, size_t len)
{
	while (len > 0) {
		int n = SSL_write(ssl, p, len > (size_t)INT32_MAX ? INT32_MAX : (int)len);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

bool cli_net_post_json(SSL *ssl, const char *host, const char *path, const char *body)
{
	size_t cap = 1024 + strlen(body);
	char *req = malloc(cap);
	int n;
	bool ok;

	if (req == NULL)
		return false;
	/* one write: a peer that reads the head alone and answers must still
	 * get the whole request */
	n = snprintf(req, cap,
	             "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
	             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
	             path, host, strlen(body), body);
	ok = n > 0 && (size_t)n < cap && cli_net_write_all(ssl, req, (size_t)n);
	free(req);
	return ok;
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

/* header_end is the length of the header block of the `len` bytes at
 * `buf` (up to the empty line, without it), or 0 while it is incomplete. */
static size_t header_end(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i + 4 <= len && i < CLI_NET_HEADERS_MAX; i++)
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return i;
	return 0;
}

/* content_length finds the Content-Length header (case-insensitive name)
 * in the header block: 1 with the value, 0 when absent, -1 when repeated
 * or not a number. */
static int content_length(const uint8_t *buf, size_t hl, size_t *out)
{
	static const char name[] = "\r\ncontent-length:";
	const size_t nl = sizeof(name) - 1;
	bool found = false;

	for (size_t i = 0; i + nl <= hl; i++) {
		size_t j = i + nl, v = 0;
		bool digits = false;

		if (strncasecmp((const char *)buf + i, name, nl) != 0)
			continue;
		if (found)
			return -1; /* two Content-Length headers: ambiguous */
		while (j < hl && (buf[j] == ' ' || buf[j] == '\t'))
			j++;
		while (j < hl && buf[j] >= '0' && buf[j] <= '9') {
			if (v > (SIZE_MAX - 9) / 10)
				return -1;
			v = v * 10 + (size_t)(buf[j] - '0');
			digits = true;
			j++;
		}
		while (j < hl && (buf[j] == ' ' || buf[j] == '\t'))
			j++;
		if (!digits || (j < hl && buf[j] != '\r'))
			return -1;
		*out = v;
		found = true;
	}
	return found ? 1 : 0;
}

/* grow doubles `*buf` up to `max` bytes, zeroed (the analysers cannot see
 * SSL_read fill it). */
static int grow(uint8_t **buf, size_t *cap, size_t len, size_t max)
{
	size_t nc = *cap * 2 > max ? max : *cap * 2;
	uint8_t *nb;

	if (*cap >= max)
		return CVM_E_TOO_LARGE;
	nb = calloc(1, nc);
	if (nb == NULL)
		return CVM_E_NOMEM;
	memcpy(nb, *buf, len);
	free(*buf);
	*buf = nb;
	*cap = nc;
	return CVM_OK;
}

int cli_net_read_reply(SSL *ssl, size_t max, int *status, uint8_t **body, size_t *body_len)
{
	size_t cap = (size_t)64 * 1024, len = 0, hl = 0, cl = 0, bl;
	int has_cl = 0, r = CVM_OK;
	uint8_t *buf, *out;

	*status = 0;
	*body = NULL;
	*body_len = 0;
	if (cap > max)
		cap = max;
	buf = calloc(1, cap);
	if (buf == NULL)
		return CVM_E_NOMEM;
	for (;;) {
		int n;

		if (hl == 0 && (hl = header_end(buf, len)) != 0) {
			has_cl = content_length(buf, hl, &cl);
			if (has_cl < 0)
				r = CVM_E_FORMAT;
			else if (has_cl > 0 && cl > max - hl - 4)
				r = CVM_E_TOO_LARGE;
			if (r != CVM_OK)
				goto out;
		}
		if (hl == 0 && len >= CLI_NET_HEADERS_MAX) {
			r = CVM_E_TOO_LARGE;
			goto out;
		}
		if (hl != 0 && has_cl > 0 && len >= hl + 4 + cl)
			break;
		if (len == cap && (r = grow(&buf, &cap, len, max)) != CVM_OK)
			goto out;
		n = SSL_read(ssl, buf + len, (int)(cap - len > (size_t)INT32_MAX ? INT32_MAX : cap - len));
		if (n <= 0) {
			int e = SSL_get_error(ssl, n);

			ERR_clear_error();
			/* Without Content-Length the answer ends at the close. */
			if (hl != 0 && has_cl == 0 &&
			    (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)) {
				cl = len - hl - 4;
				break;
			}
			r = hl != 0 || len != 0 ? CVM_E_TRUNCATED : CVM_E_SYSTEM;
			goto out;
		}
		len += (size_t)n;
	}
	if (hl < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0 || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' ||
	    buf[10] > '9' || buf[11] < '0' || buf[11] > '9' ||
	    (hl > 12 && buf[12] != ' ' && buf[12] != '\r')) {
		r = CVM_E_FORMAT;
		goto out;
	}
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	bl = cl;
	out = malloc(bl + 1);
	if (out == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(out, buf + hl + 4, bl);
	out[bl] = '\0';
	*body = out;
	*body_len = bl;
out:
	free(buf);
	return r;
}

/* The client side of an HTTP/1.1 JSON RPC over TLS (include/cvmkit/tls.h):
 * targets, a TCP connection with timeouts, one POST, one bounded answer.
 * The answer comes from a peer that may be hostile (a KMS list is the
 * host's to write): its headers and body are capped, Content-Length is
 * read strictly, and the bytes read are wiped (a KMS answer holds keys). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cvmkit/err.h>
#include <cvmkit/secret.h>
#include <cvmkit/tls.h>

static bool copy_span(char *out, size_t cap, const char *p, size_t n)
{
	if (n >= cap)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* port_ok: 1 to 5 digits, 1..65535. */
static bool port_ok(const char *p, size_t n)
{
	unsigned v = 0;

	if (n == 0 || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	return v >= 1 && v <= 65535;
}

/* host_ok refuses what could change the meaning of a request line or a
 * Host header, and URL syntax that this reader does not take. */
static bool host_ok(const char *h, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];

		if (c <= ' ' || c >= 0x7f || strchr("/?#@[]\\\"", c) != NULL)
			return false;
	}
	return true;
}

int cvm_tls_target_parse(const char *text, struct cvm_tls_target *out)
{
	const char *p = text, *end, *colon, *path;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (text == NULL)
		return CVM_E_INVAL;
	n = strlen(text);
	if (n == 0 || n > 1024 || strpbrk(text, "?#@ \t\r\n") != NULL)
		return CVM_E_INVAL;
	if (strncasecmp(p, "https://", 8) == 0) {
		p += 8;
		path = strchr(p, '/');
		end = path != NULL ? path : p + strlen(p);
		if (path != NULL) {
			size_t pl = strlen(path);

			while (pl > 0 && path[pl - 1] == '/')
				pl--;
			if (!copy_span(out->prefix, sizeof(out->prefix), path, pl))
				return CVM_E_INVAL;
		}
	} else if (strstr(p, "://") != NULL || strchr(p, '/') != NULL) {
		return CVM_E_INVAL; /* http:// and other schemes: never in the clear */
	} else {
		end = p + strlen(p);
	}
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));

		if (rb == NULL || rb == p + 1 ||
		    !copy_span(out->host, sizeof(out->host), p + 1, (size_t)(rb - p - 1)))
			return CVM_E_INVAL;
		for (const char *q = p + 1; q < rb; q++)
			if (strchr("0123456789abcdefABCDEF:.", *q) == NULL)
				return CVM_E_INVAL;
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (colon == NULL && rb + 1 != end)
			return CVM_E_INVAL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL)
			return CVM_E_INVAL; /* an IPv6 address takes brackets */
		if (!host_ok(p, (size_t)((colon != NULL ? colon : end) - p)) ||
		    !copy_span(out->host, sizeof(out->host), p, (size_t)((colon != NULL ? colon : end) - p)))
			return CVM_E_INVAL;
	}
	if (colon != NULL) {
		if (!port_ok(colon + 1, (size_t)(end - colon - 1)))
			return CVM_E_INVAL;
		(void)copy_span(out->port, sizeof(out->port), colon + 1, (size_t)(end - colon - 1));
	} else if (p != text) {
		(void)snprintf(out->port, sizeof(out->port), "443");
	} else {
		return CVM_E_INVAL; /* HOST alone: which port? */
	}
	return CVM_OK;
}

int cvm_tls_dial(const struct cvm_tls_target *t, unsigned timeout_s, char *err, size_t err_len)
{
	struct addrinfo hints, *res = NULL;
	struct timeval tv = {(time_t)timeout_s, 0};
	int fd = -1, e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	e = getaddrinfo(t->host, t->port, &hints, &res);
	if (e != 0) {
		(void)snprintf(err, err_len, "cannot resolve '%s': %s", t->host, gai_strerror(e));
		return -1;
	}
	errno = ECONNREFUSED;
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
		(void)snprintf(err, err_len, "cannot connect to %s:%s: %s", t->host, t->port,
		               strerror(errno));
	freeaddrinfo(res);
	return fd;
}

bool cvm_tls_write_all(SSL *ssl, const void *p, size_t len)
{
	const char *c = p;

	while (len > 0) {
		int n = SSL_write(ssl, c, len > (size_t)INT32_MAX ? INT32_MAX : (int)len);

		if (n <= 0)
			return false;
		c += n;
		len -= (size_t)n;
	}
	return true;
}

bool cvm_tls_post_json(SSL *ssl, const char *host, const char *path, const char *body)
{
	size_t cap = 1024 + strlen(host) + strlen(path) + strlen(body);
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
	ok = n > 0 && (size_t)n < cap && cvm_tls_write_all(ssl, req, (size_t)n);
	cvm_freezero(req, cap);
	return ok;
}

/* header_end is the length of the header block of the `len` bytes at
 * `buf` (up to the empty line, without it), or 0 while it is incomplete. */
static size_t header_end(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i + 4 <= len && i < CVM_TLS_REPLY_HEADERS_MAX; i++)
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

int cvm_tls_reply_parse(const uint8_t *buf, size_t len, bool closed, size_t max, int *status,
                        size_t *body_off, size_t *body_len)
{
	size_t hl = header_end(buf, len), cl = 0;
	int has_cl;

	*status = 0;
	*body_off = 0;
	*body_len = 0;
	if (hl == 0) {
		if (len >= CVM_TLS_REPLY_HEADERS_MAX)
			return CVM_E_TOO_LARGE;
		return closed ? CVM_E_FORMAT : CVM_E_TRUNCATED;
	}
	if (hl < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0 || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' ||
	    buf[10] > '9' || buf[11] < '0' || buf[11] > '9' || (hl > 12 && buf[12] != ' ' && buf[12] != '\r'))
		return CVM_E_FORMAT;
	has_cl = content_length(buf, hl, &cl);
	if (has_cl < 0)
		return CVM_E_FORMAT;
	if (max < hl + 4 || (has_cl > 0 && cl > max - hl - 4))
		return CVM_E_TOO_LARGE;
	if (has_cl > 0 && len - hl - 4 < cl)
		return closed ? CVM_E_FORMAT : CVM_E_TRUNCATED;
	if (has_cl == 0 && len > max)
		return CVM_E_TOO_LARGE; /* an answer framed by the close that grew past the cap */
	if (has_cl == 0 && !closed)
		return CVM_E_TRUNCATED; /* the answer ends at the close */
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	*body_off = hl + 4;
	*body_len = has_cl > 0 ? cl : len - hl - 4;
	return CVM_OK;
}

/* grow doubles `*buf` up to `max` bytes, zeroed (the analysers cannot see
 * SSL_read fill it); the old buffer is wiped. */
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
	cvm_freezero(*buf, *cap);
	*buf = nb;
	*cap = nc;
	return CVM_OK;
}

int cvm_tls_read_reply(SSL *ssl, size_t max, int *status, uint8_t **body, size_t *body_len)
{
	size_t cap = (size_t)64 * 1024, len = 0, off = 0, bl = 0;
	bool closed = false;
	uint8_t *buf, *out;
	int r;

	*status = 0;
	*body = NULL;
	*body_len = 0;
	if (cap > max)
		cap = max;
	if (cap == 0)
		return CVM_E_TOO_LARGE;
	buf = calloc(1, cap);
	if (buf == NULL)
		return CVM_E_NOMEM;
	for (;;) {
		int n, st;

		r = cvm_tls_reply_parse(buf, len, closed, max, &st, &off, &bl);
		if (r == CVM_OK) {
			*status = st;
			break;
		}
		if (r != CVM_E_TRUNCATED || closed)
			goto out;
		if (len == cap && (r = grow(&buf, &cap, len, max)) != CVM_OK)
			goto out;
		n = SSL_read(ssl, buf + len, (int)(cap - len > (size_t)INT32_MAX ? INT32_MAX : cap - len));
		if (n <= 0) {
			int e = SSL_get_error(ssl, n);

			ERR_clear_error();
			if (len == 0) {
				r = CVM_E_SYSTEM;
				goto out;
			}
			/* a close (clean or not) ends an answer without Content-Length */
			if (e != SSL_ERROR_ZERO_RETURN && e != SSL_ERROR_SYSCALL) {
				r = CVM_E_TRUNCATED;
				goto out;
			}
			closed = true;
			continue;
		}
		len += (size_t)n;
	}
	out = malloc(bl + 1);
	if (out == NULL) {
		r = CVM_E_NOMEM;
		goto out;
	}
	memcpy(out, buf + off, bl);
	out[bl] = '\0';
	*body = out;
	*body_len = bl;
out:
	cvm_freezero(buf, cap);
	return r;
}

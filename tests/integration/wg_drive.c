/* integration.wg_tunnel's driver: configures WireGuard only through lib/wg.
 *   wg_drive genkey                      -> base64 private key
 *   wg_drive pubkey <b64priv>            -> base64 public key
 *   wg_drive setdev <if> <b64priv> <port>
 *   wg_drive peer <if> <b64pub> <endpoint ip:port|-> <allowed cidr> [replace]
 *   wg_drive up <if> <addr/prefix>       (link up, flush, address)
 *   wg_drive show <if>                   -> port, then pub endpoint hs_sec rx tx ka ips per peer
 *   wg_drive bench <if> <n>              -> adds n peers one by one, prints peers/s
 *   wg_drive remove <if> <b64pub>
 *   wg_drive replace_peers <if> <b64pub> <cidr> */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cvmkit/err.h>
#include <cvmkit/secret.h>
#include <cvmkit/wg.h>

static void die(const char *what, int r)
{
	fprintf(stderr, "wg_drive: %s: %s\n", what, cvm_strerror(r));
	exit(1);
}

static void key_arg(const char *s, uint8_t k[CVM_WG_KEY_LEN])
{
	if (cvm_wg_key_from_base64(s, strlen(s), k) != CVM_OK)
		die("key", CVM_E_FORMAT);
}

static void cidr_arg(const char *s, struct cvm_wg_allowed_ip *a)
{
	char host[64];
	const char *sl = strchr(s, '/');

	memset(a, 0, sizeof(*a));
	if (sl == NULL || (size_t)(sl - s) >= sizeof(host))
		die("cidr", CVM_E_INVAL);
	memcpy(host, s, (size_t)(sl - s));
	host[sl - s] = '\0';
	a->cidr = (uint8_t)atoi(sl + 1);
	a->family = strchr(host, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(a->family, host, &a->addr) != 1)
		die("cidr", CVM_E_INVAL);
}

static struct cvm_wg *open_if(const char *ifname)
{
	struct cvm_wg *h = NULL;
	int r = cvm_wg_open(ifname, CVM_WG_AUTO, getenv("WG_UAPI_DIR"), &h);

	if (r != CVM_OK)
		die("open", r);
	return h;
}

int main(int argc, char **argv)
{
	struct cvm_wg *h;
	int r;

	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "genkey") == 0) {
		struct cvm_secret *s = NULL;
		char b[CVM_WG_KEY_B64_LEN + 1];

		r = cvm_wg_key_generate(&s);
		if (r != CVM_OK)
			die("genkey", r);
		cvm_wg_key_to_base64(s->p, b);
		puts(b);
		cvm_secret_free(s);
		return 0;
	}
	if (strcmp(argv[1], "pubkey") == 0 && argc == 3) {
		uint8_t k[32], p[32];
		char b[CVM_WG_KEY_B64_LEN + 1];

		key_arg(argv[2], k);
		if (cvm_wg_key_public(k, p) != CVM_OK)
			die("pubkey", CVM_E_CRYPTO);
		cvm_wg_key_to_base64(p, b);
		puts(b);
		return 0;
	}
	if (strcmp(argv[1], "up") == 0 && argc == 4) {
		struct cvm_wg_allowed_ip a;

		cidr_arg(argv[3], &a);
		r = cvm_wg_addr_flush(argv[2], AF_UNSPEC);
		if (r == CVM_OK)
			r = cvm_wg_addr_add(argv[2], a.family, &a.addr, a.cidr);
		if (r == CVM_OK)
			r = cvm_wg_link_set_up(argv[2], true);
		if (r != CVM_OK)
			die("up", r);
		return 0;
	}
	if (argc < 3)
		return 2;
	h = open_if(argv[2]);
	if (strcmp(argv[1], "setdev") == 0 && argc == 5) {
		struct cvm_wg_device d = {0};
		struct cvm_secret *s = cvm_secret_new(32);

		if (s == NULL)
			die("secret", CVM_E_NOMEM);
		key_arg(argv[3], s->p);
		d.flags = CVM_WG_DEV_HAS_PRIVATE_KEY | CVM_WG_DEV_HAS_LISTEN_PORT;
		d.private_key = s;
		d.listen_port = (uint16_t)atoi(argv[4]);
		r = cvm_wg_set(h, &d);
		cvm_secret_free(s);
		if (r != CVM_OK)
			die("set device", r);
	} else if ((strcmp(argv[1], "peer") == 0 && (argc == 6 || argc == 7)) ||
	           (strcmp(argv[1], "replace_peers") == 0 && argc == 5) ||
	           (strcmp(argv[1], "remove") == 0 && argc == 4)) {
		struct cvm_wg_device d = {0};
		struct cvm_wg_peer p;
		struct cvm_wg_allowed_ip a;

		memset(&p, 0, sizeof(p));
		key_arg(argv[3], p.public_key);
		d.peers = &p;
		d.peer_count = 1;
		if (strcmp(argv[1], "remove") == 0) {
			p.flags = CVM_WG_PEER_REMOVE;
		} else {
			const char *cidr = strcmp(argv[1], "peer") == 0 ? argv[5] : argv[4];

			cidr_arg(cidr, &a);
			p.allowed_ips = &a;
			p.allowed_ip_count = 1;
			if (strcmp(argv[1], "replace_peers") == 0)
				d.flags |= CVM_WG_DEV_REPLACE_PEERS;
			if (argc == 7)
				p.flags |= CVM_WG_PEER_REPLACE_ALLOWED_IPS;
		}
		if (strcmp(argv[1], "peer") == 0 && strcmp(argv[4], "-") != 0) {
			char host[64];
			const char *c = strrchr(argv[4], ':');

			if (c == NULL || (size_t)(c - argv[4]) >= sizeof(host))
				die("endpoint", CVM_E_INVAL);
			memcpy(host, argv[4], (size_t)(c - argv[4]));
			host[c - argv[4]] = '\0';
			p.endpoint.in.sin_family = AF_INET;
			p.endpoint.in.sin_port = htons((uint16_t)atoi(c + 1));
			if (inet_pton(AF_INET, host, &p.endpoint.in.sin_addr) != 1)
				die("endpoint", CVM_E_INVAL);
			p.flags |= CVM_WG_PEER_HAS_KEEPALIVE;
			p.persistent_keepalive = 25;
		}
		r = cvm_wg_set(h, &d);
		if (r != CVM_OK)
			die("set peer", r);
	} else if (strcmp(argv[1], "show") == 0) {
		struct cvm_wg_device *d = NULL;
		char b[CVM_WG_KEY_B64_LEN + 1], a[INET6_ADDRSTRLEN];

		r = cvm_wg_get(h, &d);
		if (r != CVM_OK)
			die("get", r);
		cvm_wg_key_to_base64(d->public_key, b);
		printf("%s %u %zu\n", b, (unsigned)d->listen_port, d->peer_count);
		for (size_t i = 0; i < d->peer_count; i++) {
			const struct cvm_wg_peer *p = &d->peers[i];

			cvm_wg_key_to_base64(p->public_key, b);
			if (p->endpoint.sa.sa_family == AF_INET) {
				inet_ntop(AF_INET, &p->endpoint.in.sin_addr, a, sizeof(a));
				printf("%s %s:%u", b, a, (unsigned)ntohs(p->endpoint.in.sin_port));
			} else {
				printf("%s (none)", b);
			}
			printf(" %lld %llu %llu %u ", (long long)p->last_handshake_sec,
			       (unsigned long long)p->rx_bytes, (unsigned long long)p->tx_bytes,
			       (unsigned)p->persistent_keepalive);
			for (size_t j = 0; j < p->allowed_ip_count; j++) {
				inet_ntop(p->allowed_ips[j].family, &p->allowed_ips[j].addr, a, sizeof(a));
				printf("%s%s/%u", j ? "," : "", a, (unsigned)p->allowed_ips[j].cidr);
			}
			printf("%s\n", p->allowed_ip_count ? "" : "(none)");
		}
		cvm_wg_device_free(d);
	} else if (strcmp(argv[1], "bench") == 0 && argc == 4) {
		int n = atoi(argv[3]);
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (int i = 0; i < n; i++) {
			struct cvm_wg_device d = {0};
			struct cvm_wg_peer p;
			struct cvm_wg_allowed_ip a = {.family = AF_INET, .cidr = 32};

			memset(&p, 0, sizeof(p));
			p.public_key[0] = 0xb0;
			p.public_key[30] = (uint8_t)(i >> 8);
			p.public_key[31] = (uint8_t)i;
			a.addr.v4.s_addr = htonl(0x0a640000u + (uint32_t)i + 1);
			p.allowed_ips = &a;
			p.allowed_ip_count = 1;
			d.peers = &p;
			d.peer_count = 1;
			r = cvm_wg_set(h, &d);
			if (r != CVM_OK)
				die("bench set", r);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		{
			double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

			printf("added %d peers one by one in %.3f s: %.0f peers/s\n", n, s, (double)n / s);
		}
	} else {
		return 2;
	}
	cvm_wg_close(h);
	return 0;
}

#!/usr/bin/env bash
# lib/etcd against a real 3-member etcd cluster on loopback (tests/common/etcd.sh),
# through build/tests/etcd_drive:
#  - every call once (get/range/put/delete/txn/lease/status, errors);
#  - the IP-lease race: 32 threads, 16 addresses, each leased exactly once;
#  - leases: one kept alive survives twice its TTL, one left alone expires;
#  - watch: puts and deletes in order with prev_kv, resumed at next_revision;
#  - throughput of put and txn at concurrency 1 and 32 (printed);
#  - failover: the member the client talks to is killed mid-run, the client
#    moves on, the watch resumes on another member without losing or repeating
#    an event; the member is restarted and serves every key again;
#  - auth: with auth enabled and tokens that expire after 1 s, the client
#    authenticates again by itself (requests and watch); no or wrong
#    credentials are refused with etcd's reason;
#  - TLS: a separate https member that requires client certificates (made
#    here with openssl) serves the client with its certificate, and refuses
#    it without one or without the CA.
# Needs: etcd (Debian etcd-server), etcdctl (etcd-client), curl, python3, openssl.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
DRIVE="${CVM_BIN:-build/bin}/../tests/etcd_drive"
# shellcheck source=tests/common/etcd.sh
. "$here/../common/etcd.sh"

if [ ! -x "$DRIVE" ]; then
	echo "FAIL: $DRIVE is not built (cmake --build build --target etcd_drive)" >&2
	exit 1
fi
work="$(mktemp -d)"
trap 'etcd_cluster_stop; rm -rf "$work"' EXIT

# Simple auth tokens live 1 s, so the auth part sees them expire.
ETCD_EXTRA_FLAGS=(--auth-token-ttl 1)
etcd_cluster_start "$work" 3
echo "cluster: $ETCD_ENDPOINTS"

"$DRIVE" basic "$ETCD_ENDPOINTS"
"$DRIVE" race "$ETCD_ENDPOINTS"
"$DRIVE" lease "$ETCD_ENDPOINTS"
"$DRIVE" watch "$ETCD_ENDPOINTS"
"$DRIVE" bench "$ETCD_ENDPOINTS"

# Failover: the driver says which member it talks to; kill that one.
"$DRIVE" failover "$ETCD_ENDPOINTS" "$work/go" >"$work/fo.out" 2>&1 &
drv=$!
for _ in $(seq 1 200); do
	grep -q '^talking-to=' "$work/fo.out" && break
	sleep 0.05
done
url="$(sed -n 's/^talking-to=//p' "$work/fo.out")"
victim="$(etcd_member_of "$url")" || { cat "$work/fo.out"; echo "FAIL: no endpoint reported" >&2; exit 1; }
echo "killing member $victim ($url), which the client talks to"
etcd_member_kill "$victim"
touch "$work/go"
if ! wait "$drv"; then
	cat "$work/fo.out"
	echo "FAIL: the client did not survive the loss of its member" >&2
	exit 1
fi
cat "$work/fo.out"
now="$(sed -n 's/^now-talking-to=//p' "$work/fo.out")"
if [ "$now" = "$url" ]; then
	echo "FAIL: the client still names the dead member $url" >&2
	exit 1
fi
# The two survivors keep serving.
others=""
for i in 0 1 2; do
	[ "$i" = "$victim" ] || others="${others:+$others,}${ETCD_CLIENT_URLS[$i]}"
done
"$DRIVE" check "$others"

# Restart the dead member; alone it serves the keys written while it was down.
etcd_member_start "$victim"
"$DRIVE" check "${ETCD_CLIENT_URLS[$victim]}"

# Auth: a root user, then auth on for the whole cluster.
ctl=(etcdctl --endpoints "$ETCD_ENDPOINTS")
ETCDCTL_API=3 "${ctl[@]}" user add root:s3cret --interactive=false >/dev/null
ETCDCTL_API=3 "${ctl[@]}" role add root >/dev/null
ETCDCTL_API=3 "${ctl[@]}" user grant-role root root >/dev/null
ETCDCTL_API=3 "${ctl[@]}" auth enable >/dev/null
"$DRIVE" auth "$ETCD_ENDPOINTS" root s3cret
etcd_cluster_stop

# TLS: a CA, a server certificate for 127.0.0.1, a client certificate.
t="$work/tls"
mkdir -p "$t"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/ca.key" -out "$t/ca.pem" \
	-days 1 -subj /CN=etcd-test-ca 2>/dev/null
for who in server client; do
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/$who.key" -out "$t/$who.csr" \
		-subj "/CN=$who" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >"$t/$who.ext"
	openssl x509 -req -in "$t/$who.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 1 \
		-extfile "$t/$who.ext" -out "$t/$who.pem" 2>/dev/null
done
cport="$(etcd_free_port)"
pport="$(etcd_free_port)"
etcd --name tls --data-dir "$t/data" --listen-client-urls "https://127.0.0.1:$cport" \
	--advertise-client-urls "https://127.0.0.1:$cport" --listen-peer-urls "http://127.0.0.1:$pport" \
	--initial-advertise-peer-urls "http://127.0.0.1:$pport" --initial-cluster "tls=http://127.0.0.1:$pport" \
	--cert-file "$t/server.pem" --key-file "$t/server.key" --trusted-ca-file "$t/ca.pem" --client-cert-auth \
	>"$t/etcd.log" 2>&1 &
ETCD_PIDS=($!)
for _ in $(seq 1 300); do
	curl -sf --max-time 1 --cacert "$t/ca.pem" --cert "$t/client.pem" --key "$t/client.key" \
		"https://127.0.0.1:$cport/health" 2>/dev/null | grep -q '"health":"true"' && break
	sleep 0.1
done
"$DRIVE" tls "https://127.0.0.1:$cport" "$t/ca.pem" "$t/client.pem" "$t/client.key"
echo "PASS: etcd_cluster"

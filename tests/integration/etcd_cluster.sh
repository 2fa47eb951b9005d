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
#    an event; the member is restarted and serves every key again.
# Needs: etcd (Debian etcd-server), curl, python3.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
DRIVE="${CVM_BIN:-build/bin}/../tests/etcd_drive"
# shellcheck source=../common/etcd.sh
. "$here/../common/etcd.sh"

if [ ! -x "$DRIVE" ]; then
	echo "FAIL: $DRIVE is not built (cmake --build build --target etcd_drive)" >&2
	exit 1
fi
work="$(mktemp -d)"
trap 'etcd_cluster_stop; rm -rf "$work"' EXIT

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
echo "PASS: etcd_cluster"

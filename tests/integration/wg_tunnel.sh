#!/bin/bash
# integration.wg_tunnel: two network namespaces joined by a veth pair, a
# wireguard-go in each, configured only through lib/wg (tests/integration/
# wg_drive.c: keys, port, peer, endpoint, address, link up); traffic across
# the tunnel (a UDP echo); the handshake and counters read back with cvm_wg_get and
# checked against `wg show dump` (an independent reader); 1,000 peers added
# one by one (peers/s printed), one removed, allowed IPs replaced, and a set
# with replace_peers. Skips (77) when not root or without netns or /dev/net/tun.
set -euo pipefail
B=${CVM_BIN:-build/bin}/../tests
D=$B/wg_drive
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
[ -c /dev/net/tun ] || skip "no /dev/net/tun (wireguard-go needs a TUN device)"
command -v wireguard-go >/dev/null || skip "no wireguard-go"
command -v wg >/dev/null || skip "no wg (wireguard-tools, the independent reader)"
N1=cvmwg1-$$ N2=cvmwg2-$$
I1=wga$$ I2=wgb$$ # <= 15 characters; the UAPI socket folder is shared by every namespace
I1=${I1:0:15} I2=${I2:0:15}
cleanup() {
	ip netns pids "$N1" 2>/dev/null | xargs -r kill 2>/dev/null || true
	ip netns pids "$N2" 2>/dev/null | xargs -r kill 2>/dev/null || true
	ip netns del "$N1" 2>/dev/null || true
	ip netns del "$N2" 2>/dev/null || true
	rm -f /var/run/wireguard/"$I1".sock /var/run/wireguard/"$I2".sock
}
trap cleanup EXIT
ip netns add "$N1" || skip "cannot create a network namespace"
ip netns add "$N2"
ip link add v1-$$ netns "$N1" type veth peer name v2-$$ netns "$N2"
ip -n "$N1" addr add 192.0.2.1/24 dev v1-$$; ip -n "$N1" link set v1-$$ up; ip -n "$N1" link set lo up
ip -n "$N2" addr add 192.0.2.2/24 dev v2-$$; ip -n "$N2" link set v2-$$ up; ip -n "$N2" link set lo up
export WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1
ip netns exec "$N1" wireguard-go -f "$I1" >/dev/null 2>&1 &
ip netns exec "$N2" wireguard-go -f "$I2" >/dev/null 2>&1 &
for _ in $(seq 50); do [ -S /var/run/wireguard/$I1.sock ] && [ -S /var/run/wireguard/$I2.sock ] && break; sleep 0.1; done
[ -S /var/run/wireguard/$I1.sock ] || { echo "FAIL: wireguard-go did not start"; exit 1; }

K1=$($D genkey) K2=$($D genkey)
P1=$($D pubkey "$K1") P2=$($D pubkey "$K2")
[ "$P1" = "$(echo "$K1" | wg pubkey)" ] || { echo "FAIL: public key differs from wg pubkey's"; exit 1; }
ip netns exec "$N1" $D setdev "$I1" "$K1" 51820
ip netns exec "$N2" $D setdev "$I2" "$K2" 51821
ip netns exec "$N1" $D peer "$I1" "$P2" 192.0.2.2:51821 10.77.0.2/32
ip netns exec "$N2" $D peer "$I2" "$P1" 192.0.2.1:51820 10.77.0.1/32
ip netns exec "$N1" $D up "$I1" 10.77.0.1/24
ip netns exec "$N2" $D up "$I2" 10.77.0.2/24
# no ping here: a UDP echo over the tunnel (python3) stands in for it
cross() {
	ip netns exec "$N2" python3 -c '
import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.77.0.2", 7777)); s.settimeout(10)
d, a = s.recvfrom(100); s.sendto(d, a)' &
	local srv=$!
	ip netns exec "$N1" python3 -c '
import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
for i in range(20):
    s.sendto(b"cvmkit-wg", ("10.77.0.2", 7777))
    try:
        d, a = s.recvfrom(100)
        if d == b"cvmkit-wg": raise SystemExit(0)
    except socket.timeout: pass
raise SystemExit(1)'
	local rc=$?
	kill $srv 2>/dev/null || true
	wait $srv 2>/dev/null || true
	return $rc
}
cross || { echo "FAIL: no echo across the tunnel"; exit 1; }
echo "UDP echo across the tunnel: ok"

S1=$(ip netns exec "$N1" $D show "$I1")
echo "$S1"
read -r pub port count <<<"$(head -1 <<<"$S1")"
[ "$pub" = "$P1" ] && [ "$port" = 51820 ] && [ "$count" = 1 ] || { echo "FAIL: device read back wrong"; exit 1; }
read -r ppub ep hs rx tx ka ips <<<"$(sed -n 2p <<<"$S1")"
[ "$ppub" = "$P2" ] && [ "$ep" = 192.0.2.2:51821 ] && [ "$ka" = 25 ] && [ "$ips" = 10.77.0.2/32 ] ||
	{ echo "FAIL: peer read back wrong"; exit 1; }
[ "$hs" -gt 0 ] && [ "$rx" -gt 0 ] && [ "$tx" -gt 0 ] || { echo "FAIL: no handshake or no bytes counted"; exit 1; }
# wg(8) reads the same device through the same socket: its view must agree
DUMP=$(ip netns exec "$N1" wg show "$I1" dump)
read -r _ wpub wport _ <<<"$(head -1 <<<"$DUMP")"
read -r wppub _ wep wips whs wrx wtx wka <<<"$(sed -n 2p <<<"$DUMP")"
[ "$wpub" = "$P1" ] && [ "$wport" = 51820 ] && [ "$wppub" = "$P2" ] && [ "$wep" = 192.0.2.2:51821 ] &&
	[ "$wips" = 10.77.0.2/32 ] && [ "$wka" = 25 ] && [ "$whs" -ge "$hs" ] && [ "$wrx" -ge "$rx" ] && [ "$wtx" -ge "$tx" ] ||
	{ echo "FAIL: wg show dump disagrees: $DUMP"; exit 1; }
echo "cvm_wg_get agrees with wg show dump"

ip netns exec "$N1" $D bench "$I1" 1000
n=$(ip netns exec "$N1" wg show "$I1" peers | wc -l)
[ "$n" = 1001 ] || { echo "FAIL: $n peers after adding 1000"; exit 1; }
S1=$(ip netns exec "$N1" $D show "$I1")
read -r _ _ count <<<"$(head -1 <<<"$S1")"
[ "$count" = 1001 ] || { echo "FAIL: cvm_wg_get read $count of 1001 peers"; exit 1; }
PEERS=$(ip netns exec "$N1" wg show "$I1" peers)
BK=$(awk -v k="$P2" '$0 != k { print; exit }' <<<"$PEERS")
ip netns exec "$N1" $D remove "$I1" "$BK"
PEERS=$(ip netns exec "$N1" wg show "$I1" peers)
[ "$(wc -l <<<"$PEERS")" = 1000 ] && ! grep -qx -- "$BK" <<<"$PEERS" || { echo "FAIL: remove"; exit 1; }
ip netns exec "$N1" $D peer "$I1" "$P2" - 10.77.0.0/24 replace
[ "$(ip netns exec "$N1" wg show "$I1" allowed-ips | grep "^$P2" | cut -f2)" = 10.77.0.0/24 ] ||
	{ echo "FAIL: replace allowed IPs"; exit 1; }
ip netns exec "$N1" $D replace_peers "$I1" "$P2" 10.77.0.2/32
[ "$(ip netns exec "$N1" wg show "$I1" peers)" = "$P2" ] || { echo "FAIL: replace_peers"; exit 1; }
# the peer came back new, without its endpoint: give it one (incrementally)
ip netns exec "$N1" $D peer "$I1" "$P2" 192.0.2.2:51821 10.77.0.2/32
cross || { echo "FAIL: no echo across the tunnel after replace_peers"; exit 1; }
echo "PASS"

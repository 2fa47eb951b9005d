#!/usr/bin/env bash
# cvm-gatewayd against haproxy, side by side in the same run, with the same
# certificate (ECDSA P-256, *.gw.test), the same backend and the same
# number of threads (bench/README.md, "cvm-gatewayd against haproxy"):
#   1. keep-alive: wrk over TLS terminated by the proxy, plaintext relayed
#      to the backend: requests/s and p99;
#   2. a new TLS connection per request (wrk -H "Connection: close"):
#      handshakes/s and p99;
#   3. passthrough: the proxy routes by the ClientHello's name and relays
#      the bytes untouched (haproxy: mode tcp, req_ssl_sni, splice-auto):
#      MiB/s (bench/bench_gateway.c);
#   4. registration: Gateway.RegisterCvm per second at concurrency 1 and
#      32, two ways: each a new CVM (its own KMS-shaped certificate, a new
#      mutual-TLS connection, a new WireGuard peer on a wireguard-go
#      interface: what a fleet booting costs), and CVMs on kept connections
#      registering again with a new key each time (the registration path
#      itself, as upstream's load test measured it: its published figure is
#      4,209/s on other hardware, after it stopped forking `wg`). Target:
#      >= 1,000/s at 32 on kept connections.
# Each measurement alternates the two proxies, --rounds times, and keeps
# each proxy's best round (the machine's noise only ever lowers a result).
# Targets (issue 15): req/s and handshakes/s at least haproxy's, p99 no
# worse. A missed target prints "verdict: MISSED: ..."; the exit status is 1
# only when a run fails (errors, a proxy that died).
#
# Usage: scripts/bench-gateway.sh [--duration S] [--connections N] [--rounds R]
# Environment: CVM_BUILD_DIR (default build): bin/cvm-gatewayd, bin/bench_gateway.
# Needs root (wrk resolves the test names through a private /etc/hosts,
# bind-mounted in a mount namespace of its own), haproxy, wrk, openssl.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
bench_name="bench-gateway"
# shellcheck source=scripts/bench-common.sh
. "$src/scripts/bench-common.sh"

duration=10
conns=64
rounds=2
reg_count1=300
reg_count32=3000
while [ "$#" -gt 0 ]; do
	case "$1" in
	--duration) duration="$2"; shift 2 ;;
	--connections) conns="$2"; shift 2 ;;
	--rounds) rounds="$2"; shift 2 ;;
	*) echo "usage: scripts/bench-gateway.sh [--duration S] [--connections N] [--rounds R]" >&2; exit 2 ;;
	esac
done
bench_counts "$duration" "$conns" "$rounds"
build="$(bench_build_dir "$src")"
for t in "$build/bin/cvm-gatewayd" "$build/bin/bench_gateway"; do
	[ -x "$t" ] || bench_die "$t is missing: build first (cmake --build $build)"
done
for t in haproxy wrk openssl unshare; do
	command -v "$t" >/dev/null || bench_die "$t is not installed (scripts/setup.sh installs it)"
done
[ "$(id -u)" -eq 0 ] || bench_die "run as root: wrk resolves the test names through a private /etc/hosts"

work="$(mktemp -d)"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

echo "$bench_name: $(nproc) CPUs, $(haproxy -v | head -1 | cut -d' ' -f1-3), wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/gw.key" \
	-out "$work/gw.pem" -days 2 -subj "/CN=*.gw.test" -addext "subjectAltName=DNS:*.gw.test" 2>/dev/null
cat "$work/gw.pem" "$work/gw.key" >"$work/combined.pem"

p_back="$(free_port)"
p_gw="$(free_port)"
p_gw_admin="$(free_port)"
p_ha="$(free_port)"
p_ha_pass="$(free_port)"
p_sink="$(free_port)"
name="bench-${p_back}.gw.test"
pass_name="bench-${p_sink}s.gw.test"

# The backend: haproxy answering every request itself (one thread).
cat >"$work/backend.cfg" <<EOF
global
	nbthread 1
	maxconn 4000
defaults
	mode http
	timeout client 30s
	timeout server 30s
	timeout connect 5s
frontend be
	bind 127.0.0.1:$p_back
	http-request return status 200 content-type text/plain string "hello from the backend"
EOF
haproxy -f "$work/backend.cfg" -db >"$work/backend.log" 2>&1 &
pids+=($!)

# The peer: haproxy terminating TLS in TCP mode, two threads, and an SNI
# passthrough frontend.
cat >"$work/haproxy.cfg" <<EOF
global
	nbthread 2
	maxconn 4000
	tune.ssl.default-dh-param 2048
defaults
	mode tcp
	timeout client 30s
	timeout server 30s
	timeout connect 5s
frontend tls
	bind 127.0.0.1:$p_ha ssl crt $work/combined.pem alpn http/1.1
	default_backend web
backend web
	server s1 127.0.0.1:$p_back
frontend pass
	bind 127.0.0.1:$p_ha_pass
	option splice-auto
	tcp-request inspect-delay 5s
	tcp-request content accept if { req_ssl_hello_type 1 }
	use_backend sink if { req_ssl_sni -m end .gw.test }
backend sink
	option splice-auto
	server s1 127.0.0.1:$p_sink
EOF
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)

# cvm-gatewayd with the same certificate, two workers, the backend as a
# [dev] instance.
echo '[{"instance_id":"i1","app_id":"bench","address":"127.0.0.1"}]' >"$work/instances.json"
cat >"$work/gatewayd.conf" <<EOF
[gateway]
listen = 127.0.0.1:$p_gw
admin_listen = 127.0.0.1:$p_gw_admin
base_domains = gw.test
workers = 2
log_level = warn
[tls]
cert = $work/gw.pem
key = $work/gw.key
[proxy]
max_connections_per_ip = 20000
max_connections_per_app = 20000
[dev]
instances = $work/instances.json
EOF
"$build/bin/cvm-gatewayd" -c "$work/gatewayd.conf" >"$work/gatewayd.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")
sleep 1
for p in "${pids[@]}"; do
	kill -0 "$p" 2>/dev/null || { tail "$work"/*.log >&2; bench_die "a server did not start"; }
done

cp /etc/hosts "$work/hosts"
echo "127.0.0.1 $name" >>"$work/hosts"

# wrk_run PORT [HEADER]: prints "req_s p99_ms errors"
wrk_run() {
	local port="$1" out
	shift
	out="$(unshare -m sh -c "mount --bind '$work/hosts' /etc/hosts && exec wrk -t2 -c$conns -d${duration}s --latency $* https://$name:$port/" 2>&1)" ||
		bench_die "wrk failed: $out"
	echo "$out" >>"$work/wrk.log"
	python3 - "$out" <<'EOF'
import re, sys
out = sys.argv[1]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
err = 0
e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
if e:
    err += sum(int(x) for x in e.groups())
n = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
if n:
    err += int(n.group(1))
print(f"{rps:.0f} {p99:.2f} {err}")
EOF
}

best() { # best OLD NEW: keeps the round with more req/s
	if [ -z "$1" ] || [ "$(echo "$2" | cut -d' ' -f1)" -gt "$(echo "$1" | cut -d' ' -f1)" ]; then echo "$2"; else echo "$1"; fi
}

ka_gw="" ka_ha="" hs_gw="" hs_ha="" pass_gw=0 pass_ha=0
for r in $(seq 1 "$rounds"); do
	echo "$bench_name: round $r/$rounds: keep-alive ($conns connections, ${duration}s each)"
	ka_gw="$(best "$ka_gw" "$(wrk_run "$p_gw")")"
	ka_ha="$(best "$ka_ha" "$(wrk_run "$p_ha")")"
	echo "$bench_name: round $r/$rounds: a new TLS connection per request"
	hs_gw="$(best "$hs_gw" "$(wrk_run "$p_gw" -H "'Connection: close'")")"
	hs_ha="$(best "$hs_ha" "$(wrk_run "$p_ha" -H "'Connection: close'")")"
	echo "$bench_name: round $r/$rounds: passthrough (4 connections)"
	g="$("$build/bin/bench_gateway" pass "$p_gw" "$pass_name" "$p_sink" 4 "$duration" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["mib_per_s"]))')"
	h="$("$build/bin/bench_gateway" pass "$p_ha_pass" "$pass_name" "$p_sink" 4 "$duration" | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["mib_per_s"]))')"
	[ "$g" -gt "$pass_gw" ] && pass_gw="$g"
	[ "$h" -gt "$pass_ha" ] && pass_ha="$h"
done
kill -0 "$gw_pid" 2>/dev/null || bench_die "cvm-gatewayd died during the run (see its log)"

# 4. registration, on a gateway of its own with a wireguard-go interface
reg_1="" reg_32="" renew_1="" renew_32=""
if command -v wireguard-go >/dev/null && [ -c /dev/net/tun ]; then
	echo "$bench_name: registration: making $((reg_count1 + reg_count32)) CVM identities"
	python3 "$src/tests/common/kms_shaped_certs.py" "$work/reg" "$((reg_count1 + reg_count32))"
	wgif="cvmbw$$"
	WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 wireguard-go -f "$wgif" >"$work/wg.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do [ -S "/var/run/wireguard/$wgif.sock" ] && break; sleep 0.1; done
	(umask 077 && wg genkey >"$work/gw-wg.key")
	p_rpc="$(free_port)"
	{
		echo "[gateway]"
		echo "listen = 127.0.0.1:$(free_port)"
		echo "admin_listen = 127.0.0.1:$(free_port)"
		echo "base_domains = gw.test"
		echo "log_level = warn"
		echo "[tls]"
		echo "cert = $work/gw.pem"
		echo "key = $work/gw.key"
		echo "[rpc]"
		echo "listen = 127.0.0.1:$p_rpc"
		echo "cert = $work/reg/rpc.pem"
		echo "key = $work/reg/rpc.key"
		echo "kms_root_ca = $work/reg/kms-root.pem"
		echo "max_instances_per_app = 100000"
		echo "[wg]"
		echo "interface = $wgif"
		echo "backend = userspace"
		echo "private_key_file = $work/gw-wg.key"
		echo "address = 10.77.0.1/16"
		echo "endpoint = 127.0.0.1:51999"
		echo "listen_port = 51999"
	} >"$work/reg.conf"
	"$build/bin/cvm-gatewayd" -c "$work/reg.conf" >"$work/reg.log" 2>&1 &
	reg_pid=$!
	pids+=("$reg_pid")
	sleep 1
	kill -0 "$reg_pid" 2>/dev/null || { tail "$work/reg.log" >&2; bench_die "the registration gateway did not start"; }
	reg_json() { python3 -c 'import json,sys; print(int(json.load(sys.stdin)["per_s"]))'; }
	reg_1="$("$build/bin/bench_gateway" register "$p_rpc" "$work/reg/rpc-ca.pem" "$work/reg" 0 "$reg_count1" 1 | reg_json)" ||
		bench_die "registrations failed (see $work/reg.log)"
	reg_32="$("$build/bin/bench_gateway" register "$p_rpc" "$work/reg/rpc-ca.pem" "$work/reg" "$reg_count1" "$reg_count32" 32 | reg_json)" ||
		bench_die "registrations failed (see $work/reg.log)"
	peers="$(wg show "$wgif" peers | wc -l)"
	echo "$bench_name: registration: the WireGuard device holds $peers peers (expected $((reg_count1 + reg_count32)))"
	[ "$peers" -eq "$((reg_count1 + reg_count32))" ] || bench_die "the WireGuard device lost peers"
	# kept connections: identities 0 and 1..32 register again with new keys
	renew_1="$("$build/bin/bench_gateway" renew "$p_rpc" "$work/reg/rpc-ca.pem" "$work/reg" 0 "$reg_count1" 1 | reg_json)" ||
		bench_die "renewals failed (see $work/reg.log)"
	renew_32="$("$build/bin/bench_gateway" renew "$p_rpc" "$work/reg/rpc-ca.pem" "$work/reg" 1 "$reg_count32" 32 | reg_json)" ||
		bench_die "renewals failed (see $work/reg.log)"
	peers="$(wg show "$wgif" peers | wc -l)"
	[ "$peers" -eq "$((reg_count1 + reg_count32))" ] ||
		bench_die "after the key changes the device holds $peers peers, not $((reg_count1 + reg_count32))"
else
	echo "$bench_name: registration: SKIPPED (needs wireguard-go and /dev/net/tun)"
fi

read -r ka_gw_rps ka_gw_p99 ka_gw_err <<<"$ka_gw"
read -r ka_ha_rps ka_ha_p99 ka_ha_err <<<"$ka_ha"
read -r hs_gw_rps hs_gw_p99 hs_gw_err <<<"$hs_gw"
read -r hs_ha_rps hs_ha_p99 hs_ha_err <<<"$hs_ha"

printf '\n%-34s %14s %14s\n' "" "cvm-gatewayd" "haproxy 2.6"
printf '%-34s %14s %14s\n' "keep-alive requests/s" "$ka_gw_rps" "$ka_ha_rps"
printf '%-34s %14s %14s\n' "keep-alive p99 (ms)" "$ka_gw_p99" "$ka_ha_p99"
printf '%-34s %14s %14s\n' "new TLS per request: handshakes/s" "$hs_gw_rps" "$hs_ha_rps"
printf '%-34s %14s %14s\n' "new TLS per request: p99 (ms)" "$hs_gw_p99" "$hs_ha_p99"
printf '%-34s %14s %14s\n' "passthrough MiB/s (4 streams)" "$pass_gw" "$pass_ha"
printf '%-34s %14s %14s\n' "errors (keep-alive, new TLS)" "$ka_gw_err, $hs_gw_err" "$ka_ha_err, $hs_ha_err"
printf '%-34s %14s %14s\n' "RegisterCvm/s, new CVMs, conc. 1" "${reg_1:-skipped}" "-"
printf '%-34s %14s %14s\n' "RegisterCvm/s, new CVMs, conc. 32" "${reg_32:-skipped}" "-"
printf '%-34s %14s %14s\n' "RegisterCvm/s, kept conn., conc. 1" "${renew_1:-skipped}" "-"
printf '%-34s %14s %14s\n' "RegisterCvm/s, kept conn., conc. 32" "${renew_32:-skipped}" "-"

if [ "$ka_gw_err" -ne 0 ] || [ "$hs_gw_err" -ne 0 ]; then
	echo "verdict: FAILED: cvm-gatewayd answered with errors (see $work/wrk.log)"
	exit 1
fi
missed=""
[ "$ka_gw_rps" -ge "$ka_ha_rps" ] || missed="$missed keep-alive req/s below haproxy's;"
[ "$hs_gw_rps" -ge "$hs_ha_rps" ] || missed="$missed handshakes/s below haproxy's;"
[ -z "$renew_32" ] || [ "$renew_32" -ge 1000 ] || missed="$missed registrations below 1000/s at concurrency 32;"
python3 -c "import sys; sys.exit(0 if $ka_gw_p99 <= $ka_ha_p99 else 1)" || missed="$missed keep-alive p99 above haproxy's;"
python3 -c "import sys; sys.exit(0 if $hs_gw_p99 <= $hs_ha_p99 else 1)" || missed="$missed new-TLS p99 above haproxy's;"
if [ -n "$missed" ]; then
	echo "verdict: MISSED:$missed"
else
	echo "verdict: met (req/s and handshakes/s at least haproxy's, p99 no worse)"
fi

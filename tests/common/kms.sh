# Shared by the cvm-kmsd tests (tests/integration/kms_*.sh): simulated CVMs
# (cvm-agentd on a simulated TEE, one simulator folder each, so that each
# has its own RTMR3) and cvm-kmsd nodes.
#
# The caller sets bin (build/bin, absolute) and tmp, sources this file and
# calls kms_cleanup from its EXIT trap.
# shellcheck shell=bash disable=SC2154,SC2034 # bin, tmp: the caller's; KMS_PID: for the caller

# The tests' counters: `check` opens a group of assertions, `fail MSG`
# records a failure (the test goes on), `kms_report NAME` prints the tally
# and fails when anything failed.
failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
check() { checks=$((checks + 1)); }
kms_report() {
	echo "$1: $checks checks, $failures failures"
	[ "$failures" = 0 ]
}

# kms_need NAME TOOL...: fail (never skip) when a tool is missing.
kms_need() {
	local n="$1" t
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || {
			echo "$n: FAIL: $t is missing (scripts/setup.sh installs it)"
			exit 1
		}
	done
}

KMS_PIDS=()
declare -A KMS_PID=() # by node name

kms_cleanup() {
	local p
	for p in "${KMS_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${KMS_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	KMS_PIDS=()
}

# kms_wait FILE WHAT PID LOG: wait until FILE is not empty; fail when PID died.
kms_wait() {
	local _
	for _ in $(seq 1 300); do
		[ -s "$1" ] && return 0
		if ! kill -0 "$3" 2>/dev/null; then
			echo "FAIL: $2 exited: $(cat "$4")" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "FAIL: $2 did not start (no $1): $(cat "$4")" >&2
	return 1
}

# kms_cvm NAME COMPOSE_JSON [PLATFORM]: a simulated CVM in $tmp/NAME: a new
# simulated platform (`cvm sim init`), or with PLATFORM another CVM on the
# platform of the CVM PLATFORM (the same mock PKI and MRTD, its own RTMRs:
# one collateral set verifies both), then cvm-agentd with that app-compose, its dstack socket NAME/dstack.sock,
# its identity key NAME/identity.pem and its TLS listener (port in
# NAME/tls.port); NAME/chain.pem is the listener's RA-TLS certificate (the
# agent's identity, which the agent records in RTMR3 as cvmkit.agent-key).
kms_cvm() {
	local d="$tmp/$1"
	mkdir -p "$d"
	if [ -n "${3:-}" ]; then
		cp -a "$tmp/$3/sim.pristine" "$d/sim"
	else
		"$bin/cvm" sim init "$d/sim" >/dev/null
	fi
	cp -a "$d/sim" "$d/sim.pristine"
	printf '%s' "$2" >"$d/app-compose.json"
	"$bin/cvm-agentd" --simulator "$d/sim" --listen "unix:$d/dstack.sock" --tappd "unix:$d/tappd.sock" \
		--app-compose "$d/app-compose.json" --runtime-log "$d/runtime.log" --identity-key "$d/identity.pem" \
		--tls 127.0.0.1:0 --tls-port-file "$d/tls.port" >"$d/agent.log" 2>&1 &
	KMS_PIDS+=("$!")
	kms_wait "$d/tls.port" "cvm-agentd of $1" "$!" "$d/agent.log" || return 1
	echo | openssl s_client -connect "127.0.0.1:$(cat "$d/tls.port")" -showcerts 2>/dev/null |
		sed -n '/BEGIN CERT/,/END CERT/p' >"$d/chain.pem"
	grep -q "BEGIN CERTIFICATE" "$d/chain.pem" || { echo "FAIL: no certificate from the agent of $1" >&2; return 1; }
}

# kms_runtime_hex NAME EVENT: the payload of the first runtime event EVENT in
# NAME's runtime log, as hex (read here with python3, not with cvmkit).
kms_runtime_hex() {
	python3 - "$tmp/$1/runtime.log" "$2" <<'EOF'
import base64, json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == sys.argv[2]:
        print(base64.b64decode(e["payload"]).hex())
        break
EOF
}

# kms_roots_of NAME: the verification options for the evidence of the
# simulated CVM NAME (its simulator's collateral and mock roots).
kms_roots_of() {
	local s="$tmp/$1/sim/collateral"
	echo "--collateral $s --root $s/tdx/intel_sgx_root_ca.der --root $s/snp/ark.pem"
}

# kms_conf NAME CVM CLIENTS [EXTRA_CONFIG]: the config of cvm-kmsd in
# $tmp/NAME ($tmp/NAME/kmsd.conf), running in the simulated CVM CVM (whose
# agent attests its TLS key, and whose identity key it presents when it
# onboards), accepting the evidence of the platform of the simulated CVM
# CLIENTS; roots in $tmp/NAME/roots. EXTRA is appended (INI sections).
kms_conf() {
	local d="$tmp/$1" c="$tmp/$3/sim/collateral"
	mkdir -p "$d"
	cat >"$d/kmsd.conf" <<EOF
[kms]
node_name = $1
root_dir = $d/roots
domain = localhost
[rpc]
listen = 127.0.0.1:0
[attestation]
agent = unix:$tmp/$2/dstack.sock
identity_key = $tmp/$2/identity.pem
collateral = $c
intel_root = $c/tdx/intel_sgx_root_ca.der
amd_root = $c/snp/ark.pem
allow_simulated = true
${4:-}
EOF
}

# kms_start NAME: bootstrap $tmp/NAME's roots when it has none (unless
# KMS_NO_BOOTSTRAP is set), start it; its port is in $tmp/NAME/port, its
# pid in KMS_PID[NAME].
kms_start() {
	local d="$tmp/$1"
	if [ ! -d "$d/roots" ] && [ -z "${KMS_NO_BOOTSTRAP:-}" ]; then
		"$bin/cvm-kmsd" bootstrap -c "$d/kmsd.conf" >"$d/bootstrap.log" 2>&1 || {
			echo "FAIL: bootstrap of $1: $(cat "$d/bootstrap.log")" >&2
			return 1
		}
	fi
	rm -f "$d/port"
	"$bin/cvm-kmsd" -c "$d/kmsd.conf" --port-file "$d/port" >>"$d/kmsd.log" 2>&1 &
	KMS_PIDS+=("$!")
	KMS_PID[$1]=$!
	kms_wait "$d/port" "cvm-kmsd $1" "$!" "$d/kmsd.log"
}

# kms_stop NAME: stop the node NAME.
kms_stop() {
	kill -TERM "${KMS_PID[$1]}" 2>/dev/null || true
	wait "${KMS_PID[$1]}" 2>/dev/null || true
}

# kms_node NAME CVM CLIENTS [EXTRA_CONFIG]: kms_conf, then kms_start.
kms_node() {
	kms_conf "$@" && kms_start "$1"
}

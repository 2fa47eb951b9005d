# shellcheck shell=bash disable=SC2034 # variables for the script that sources this
# Sourced by tests that need an etcd cluster (lib/etcd's, cvm-gatewayd's):
#
#   etcd_cluster_start DIR [N]  starts N (default 3) etcd members on 127.0.0.1
#                       at free ports, data under DIR/m<i>, logs in
#                       DIR/m<i>.log, and waits until every member is healthy.
#                       Sets ETCD_ENDPOINTS (comma-separated client URLs),
#                       ETCD_CLIENT_URLS[i], ETCD_PEER_URLS[i] and ETCD_PIDS[i].
#                       Exits 1 (not 77) when etcd is missing: scripts/setup.sh
#                       installs it (Debian etcd-server).
#   etcd_member_kill I  kills member I (SIGKILL) and waits for it.
#   etcd_member_start I (re)starts member I on its data dir and ports and waits
#                       until it is healthy.
#   etcd_member_of URL  prints the index of the member with client URL URL.
#   etcd_cluster_stop   kills every member (the caller's EXIT trap calls it).
#   ETCD_EXTRA_FLAGS    (array, set before etcd_cluster_start) more flags for
#                       every member, e.g. (--auth-token-ttl 1).

ETCD_PIDS=()
ETCD_CLIENT_URLS=()
ETCD_PEER_URLS=()
ETCD_NAMES=()
ETCD_DIR=
ETCD_INITIAL_CLUSTER=
ETCD_ENDPOINTS=
[ -n "${ETCD_EXTRA_FLAGS+x}" ] || ETCD_EXTRA_FLAGS=()

etcd_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

etcd_cluster_stop() {
	local pid
	for pid in "${ETCD_PIDS[@]}"; do
		[ -n "$pid" ] || continue
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	ETCD_PIDS=()
}

# etcd_wait_healthy I: up to 30 s for member I to answer /health with "true".
etcd_wait_healthy() {
	local i="$1" t
	for t in $(seq 1 300); do
		if curl -sf --max-time 1 "${ETCD_CLIENT_URLS[$i]}/health" 2>/dev/null | grep -q '"health":"true"'; then
			return 0
		fi
		if ! kill -0 "${ETCD_PIDS[$i]}" 2>/dev/null; then
			echo "FAIL: etcd member $i exited; its log:" >&2
			tail -20 "$ETCD_DIR/m$i.log" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "FAIL: etcd member $i is not healthy after 30 s; its log:" >&2
	tail -20 "$ETCD_DIR/m$i.log" >&2
	return 1
}

etcd_member_start() {
	local i="$1"
	etcd --name "${ETCD_NAMES[$i]}" --data-dir "$ETCD_DIR/m$i" \
		--listen-client-urls "${ETCD_CLIENT_URLS[$i]}" --advertise-client-urls "${ETCD_CLIENT_URLS[$i]}" \
		--listen-peer-urls "${ETCD_PEER_URLS[$i]}" --initial-advertise-peer-urls "${ETCD_PEER_URLS[$i]}" \
		--initial-cluster "$ETCD_INITIAL_CLUSTER" --initial-cluster-state new \
		--initial-cluster-token cvm-test --heartbeat-interval 50 --election-timeout 500 "${ETCD_EXTRA_FLAGS[@]}" \
		>>"$ETCD_DIR/m$i.log" 2>&1 &
	ETCD_PIDS[i]=$!
	etcd_wait_healthy "$i"
}

etcd_member_kill() {
	local i="$1"
	kill -9 "${ETCD_PIDS[$i]}" 2>/dev/null || true
	wait "${ETCD_PIDS[$i]}" 2>/dev/null || true
	ETCD_PIDS[i]=
}

etcd_member_of() {
	local url="$1" i
	for i in "${!ETCD_CLIENT_URLS[@]}"; do
		if [ "${ETCD_CLIENT_URLS[$i]}" = "$url" ]; then
			echo "$i"
			return 0
		fi
	done
	return 1
}

etcd_cluster_start() {
	local dir="$1" n="${2:-3}" i tool
	for tool in etcd curl python3; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "FAIL: $tool is missing: scripts/setup.sh installs it (Debian etcd-server, curl, python3)" >&2
			exit 1
		fi
	done
	ETCD_DIR="$dir"
	mkdir -p "$dir"
	ETCD_INITIAL_CLUSTER=
	ETCD_ENDPOINTS=
	for i in $(seq 0 $((n - 1))); do
		ETCD_NAMES[i]="m$i"
		ETCD_CLIENT_URLS[i]="http://127.0.0.1:$(etcd_free_port)"
		ETCD_PEER_URLS[i]="http://127.0.0.1:$(etcd_free_port)"
		ETCD_INITIAL_CLUSTER="${ETCD_INITIAL_CLUSTER:+$ETCD_INITIAL_CLUSTER,}m$i=${ETCD_PEER_URLS[$i]}"
		ETCD_ENDPOINTS="${ETCD_ENDPOINTS:+$ETCD_ENDPOINTS,}${ETCD_CLIENT_URLS[$i]}"
	done
	# Start all, then wait: a member is healthy only once a quorum is up.
	for i in $(seq 0 $((n - 1))); do
		etcd --name "${ETCD_NAMES[$i]}" --data-dir "$dir/m$i" \
			--listen-client-urls "${ETCD_CLIENT_URLS[$i]}" --advertise-client-urls "${ETCD_CLIENT_URLS[$i]}" \
			--listen-peer-urls "${ETCD_PEER_URLS[$i]}" --initial-advertise-peer-urls "${ETCD_PEER_URLS[$i]}" \
			--initial-cluster "$ETCD_INITIAL_CLUSTER" --initial-cluster-state new \
			--initial-cluster-token cvm-test --heartbeat-interval 50 --election-timeout 500 "${ETCD_EXTRA_FLAGS[@]}" \
			>"$dir/m$i.log" 2>&1 &
		ETCD_PIDS[i]=$!
	done
	for i in $(seq 0 $((n - 1))); do
		etcd_wait_healthy "$i" || exit 1
	done
}

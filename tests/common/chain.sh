# shellcheck shell=bash disable=SC2034 # variables for the script that sources this
# Sourced by integration tests: a private local Ethereum chain (anvil, from
# the npm package that scripts/setup.sh installs into $CVM_CHAIN_NPM_DIR) on a
# free loopback port, and the test contracts of tests/chain/ compiled with
# npm's solc and deployed on it. Every wait is bounded. docs/chain.md.
#
#   chain_tools_check     returns 1, saying why, when anvil, solc or node is missing
#   chain_start DIR       starts anvil (log in DIR), sets CHAIN_PID, CHAIN_PORT
#                         and CHAIN_URL; returns 1 on failure
#   chain_stop            stops the anvil it started (call it from a trap)
#   chain_compile OUT     compiles DstackKms.sol and DstackApp.sol into OUT/*.json
#   chain_deploy OUT CONTRACT [bool...]       prints the new contract's address
#   chain_send OUT CONTRACT ADDR SIG [arg...] one owner transaction, waited for
#
# anvil binds port 0 itself and prints the port it got, so no port is
# guessed. It mines each transaction at once (no block time), with its
# default unlocked, funded test accounts: the first one deploys and owns.

CVM_CHAIN_NPM_DIR="${CVM_CHAIN_NPM_DIR:-/var/cache/cvmkit/npm-chain}"
export CVM_CHAIN_NPM_DIR
CHAIN_ANVIL="$CVM_CHAIN_NPM_DIR/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
CHAIN_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../chain" && pwd)"
CHAIN_PID=""
CHAIN_PORT=""
CHAIN_URL=""

chain_tools_check() {
	command -v node >/dev/null || {
		echo "chain: node is required (scripts/setup.sh installs it)"
		return 1
	}
	[ -x "$CHAIN_ANVIL" ] || {
		echo "chain: anvil is missing at $CHAIN_ANVIL (run scripts/setup.sh, or set CVM_CHAIN_NPM_DIR)"
		return 1
	}
	[ -f "$CVM_CHAIN_NPM_DIR/node_modules/solc/package.json" ] || {
		echo "chain: npm's solc is missing in $CVM_CHAIN_NPM_DIR (run scripts/setup.sh)"
		return 1
	}
}

chain_start() {
	local dir="$1" i
	mkdir -p "$dir"
	CHAIN_PORT=""
	"$CHAIN_ANVIL" --host 127.0.0.1 --port 0 --chain-id 31337 --accounts 2 \
		>"$dir/anvil.log" 2>&1 &
	CHAIN_PID=$!
	# Up to 15 s for "Listening on 127.0.0.1:PORT" and an answer to eth_chainId.
	for i in $(seq 1 150); do
		kill -0 "$CHAIN_PID" 2>/dev/null || break
		if [ -z "$CHAIN_PORT" ]; then
			CHAIN_PORT="$(sed -n 's/^Listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$dir/anvil.log" | head -n1)"
		fi
		if [ -n "$CHAIN_PORT" ] &&
			curl -sf --max-time 2 -H 'content-type: application/json' \
				--data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' \
				"http://127.0.0.1:$CHAIN_PORT" 2>/dev/null | grep -q '"result":"0x7a69"'; then
			CHAIN_URL="http://127.0.0.1:$CHAIN_PORT"
			return 0
		fi
		sleep 0.1
	done
	echo "chain: anvil did not come up within 15 s; its log:"
	tail -n 20 "$dir/anvil.log"
	chain_stop
	return 1
}

chain_stop() {
	if [ -n "$CHAIN_PID" ]; then
		kill -TERM "$CHAIN_PID" 2>/dev/null || true
		wait "$CHAIN_PID" 2>/dev/null || true
		CHAIN_PID=""
	fi
}

chain_compile() {
	timeout 120 node "$CHAIN_SRC/chain.mjs" compile "$1"
}

chain_deploy() {
	local out="$1"
	shift
	timeout 60 node "$CHAIN_SRC/chain.mjs" deploy "$CHAIN_URL" "$out" "$@"
}

chain_send() {
	local out="$1"
	shift
	timeout 60 node "$CHAIN_SRC/chain.mjs" send "$CHAIN_URL" "$out" "$@"
}

#!/usr/bin/env bash
# Runs the published @phala/dstack-sdk 0.5.8 against cvm-agentd (simulated
# TEE): installs the package from npm into a scratch folder in the BUILD tree
# (never the source tree), starts two agents with the simulator app keys of
# dstack spec §2/§11 and the dip1 test key of §1.3, and runs
# tests/compat/dstack_sdk.test.mjs with node:test.
#   usage: dstack_sdk.sh SCRATCH_DIR      (env CVM_BIN, CVM_SOURCE_DIR)
# It fails (never skips) when npm, node or the registry is unavailable: CI
# must run it.
set -euo pipefail

scratch="${1:?usage: dstack_sdk.sh SCRATCH_DIR}"
bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
src="${CVM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
sdk_version=0.5.8
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "compat: $bin/$t is missing (build it first)"; exit 1; }
done
for t in node npm openssl; do
	command -v "$t" >/dev/null || { echo "compat: '$t' is required (scripts/setup.sh installs node and npm)"; exit 1; }
done

mkdir -p "$scratch"
case "$(cd "$scratch" && pwd)/" in
"$src"/build*/* | "$src"/*build*/*) ;;
"$src"/*) echo "compat: $scratch is in the source tree; use a build folder"; exit 1 ;;
esac
# The SDK imports its optional peer dependencies @noble/curves and
# @noble/hashes unconditionally: install them too, in the ranges it names.
installed="$(node -e 'try{console.log(require(process.argv[1]).version)}catch{}' \
	"$scratch/node_modules/@phala/dstack-sdk/package.json" 2>/dev/null || true)"
if [ "$installed" != "$sdk_version" ] || [ ! -d "$scratch/node_modules/@noble/curves" ]; then
	[ -f "$scratch/package.json" ] || echo '{"name":"cvmkit-compat","private":true}' >"$scratch/package.json"
	(cd "$scratch" && npm install --no-audit --no-fund --loglevel=error "@phala/dstack-sdk@$sdk_version" \
		"@noble/curves@^1.8.1" "@noble/hashes@^1.6.1") ||
		{ echo "compat: npm install @phala/dstack-sdk@$sdk_version failed"; exit 1; }
fi
echo "compat: @phala/dstack-sdk $(node -e 'console.log(require(process.argv[1]).version)' \
	"$scratch/node_modules/@phala/dstack-sdk/package.json") in $scratch"
cp "$src/tests/compat/dstack_sdk.test.mjs" "$scratch/"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-compat.XXXXXX")"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# appkeys.json (dstack's format): the simulator's k256_key (spec §2/§11), or
# the dip1 test key (§1.3); a local CA for GetTlsKey, made here.
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$tmp/ca.key"
openssl req -x509 -new -key "$tmp/ca.key" -subj "/O=Dstack/CN=Dstack KMS CA" -days 3650 \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$tmp/ca.crt"
make_appkeys() { # make_appkeys K256_KEY FILE
	node -e '
const fs = require("fs");
const [k256, key, crt, out] = process.argv.slice(1);
fs.writeFileSync(out, JSON.stringify({
	disk_crypt_key: require("crypto").randomBytes(32).toString("hex"), env_crypt_key: "",
	k256_key: k256, k256_signature: "", gateway_app_id: "any",
	ca_cert: fs.readFileSync(crt, "utf8"), key_provider: { None: { key: fs.readFileSync(key, "utf8") } },
}), { mode: 0o600 });' "$1" "$tmp/ca.key" "$tmp/ca.crt" "$2"
}
make_appkeys d6e88992cdeeee35fe70b5db61ab66cdb191fb9b6ec9313757ef162dd7214d5d "$tmp/appkeys.json"
make_appkeys 1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b "$tmp/appkeys-dip1.json"

"$bin/cvm" sim init "$tmp/sim" >/dev/null
"$bin/cvm" sim init "$tmp/sim2" >/dev/null
"$bin/cvm-agentd" --simulator "$tmp/sim" --appkeys "$tmp/appkeys.json" --listen "unix:$tmp/dstack.sock" \
	--tappd "unix:$tmp/tappd.sock" --tcp 127.0.0.1:0 --port-file "$tmp/port" >"$tmp/agent.log" 2>&1 &
pids+=($!)
"$bin/cvm-agentd" --simulator "$tmp/sim2" --appkeys "$tmp/appkeys-dip1.json" --listen "unix:$tmp/dip1.sock" \
	>"$tmp/agent2.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
	[ -S "$tmp/tappd.sock" ] && [ -s "$tmp/port" ] && [ -S "$tmp/dip1.sock" ] && break
	sleep 0.1
done
[ -S "$tmp/dip1.sock" ] && [ -s "$tmp/port" ] || { cat "$tmp"/agent*.log; echo "compat: the agents did not start"; exit 1; }

rc=0
(cd "$scratch" && DSTACK_SIMULATOR_ENDPOINT="$tmp/dstack.sock" TAPPD_SIMULATOR_ENDPOINT="$tmp/tappd.sock" \
	CVM_COMPAT_HTTP="http://127.0.0.1:$(cat "$tmp/port")" CVM_COMPAT_DIP1="$tmp/dip1.sock" \
	CVM_COMPAT_SIM="$tmp/sim" CVM_COMPAT_TMP="$tmp" CVM_BIN="$bin" \
	node --test --test-reporter=spec dstack_sdk.test.mjs) || rc=$?
if [ "$rc" -ne 0 ]; then
	echo "--- agent log"
	tail -n 30 "$tmp/agent.log"
fi
exit "$rc"

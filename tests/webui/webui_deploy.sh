#!/usr/bin/env bash
# The cvm-vmmd web UI end to end in headless Chromium (webui_deploy.js says
# what the page is made to do and what is checked). This script starts:
#  - cvm-vmmd from the build on a temp run_dir, 127.0.0.1 port 0, a dev
#    image dir (Debian's OVMF; QEMU TCG started paused), [vmm] webui_dir =
#    the source tree's daemons/vmm/webui, [cvm] kms_urls = the KMS;
#  - a second cvm-vmmd with [auth] tokens, for the token prompt;
#  - cvm-kmsd on KMS roots made as integration.kms_env_sdk makes them;
#    cvm-vmmd proxies GetAppEnvEncryptPubKey to it (checked here: the env
#    key `cvm kms derive` gives, with a signature_v1); the page pins the KMS
#    key (GetMeta's k256 key, from kms_env_sign --meta) and checks the
#    signature; `cvm app decrypt-env` opens the blob with the app's
#    env_crypt_key.
# Screenshots: $build/tests/webui-artifacts/*.png (paths printed).
# Needs build/tests/kms_env_sign, node, Chromium (/usr/bin/chromium or $CVM_WEBUI_CHROMIUM) and
# playwright-core in /var/cache/cvmkit/npm-webui (or
# $CVM_WEBUI_NPM_DIR): scripts/setup.sh installs them. Missing ones FAIL.
set -euo pipefail

bin="${CVM_BIN:-build/bin}"
build="$(cd "$bin/.." && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
src="$(cd "$here/../.." && pwd)"
# shellcheck source=tests/webui/kms_roots.sh
. "$here/kms_roots.sh"
npm_dir="${CVM_WEBUI_NPM_DIR:-/var/cache/cvmkit/npm-webui}"
chromium="${CVM_WEBUI_CHROMIUM:-/usr/bin/chromium}"

die() {
	echo "webui_deploy: FAIL: $*" >&2
	exit 1
}
command -v node >/dev/null 2>&1 || die "node is missing (scripts/setup.sh installs it)"
[ -x "$chromium" ] || die "$chromium is missing (scripts/setup.sh installs Debian's chromium)"
[ -f "$npm_dir/node_modules/playwright-core/package.json" ] ||
	die "playwright-core is missing in $npm_dir (scripts/setup.sh installs playwright-core@1.65.2 there)"
SIGNER="$build/tests/kms_env_sign"
for t in "$bin/cvm-vmmd" "$bin/cvm" "$SIGNER"; do
	[ -x "$t" ] || die "$t is missing (build it first)"
done
command -v python3 >/dev/null 2>&1 || die "python3 is missing (scripts/setup.sh installs it)"
ovmf=""
for f in /usr/share/ovmf/OVMF.fd /usr/share/qemu/OVMF.fd; do
	[ -f "$f" ] && ovmf="$f" && break
done
[ -n "$ovmf" ] || die "OVMF.fd is missing (scripts/setup.sh installs ovmf)"
command -v qemu-system-x86_64 >/dev/null 2>&1 || die "qemu-system-x86_64 is missing (scripts/setup.sh installs it)"

T="$(mktemp -d "${TMPDIR:-/tmp}/cvm-webui.XXXXXX")"
art="$build/tests/webui-artifacts"
rm -rf "$art"
mkdir -p "$art"
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	# QEMUs run detached from cvm-vmmd: stop this test's only.
	for f in "$T"/run*/*/qemu.pid "$T"/run*/*/swtpm.pid; do
		[ -f "$f" ] || continue
		p="$(cat "$f" 2>/dev/null || true)"
		[ -n "$p" ] && grep -qa "$T/run" "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p" 2>/dev/null
	done
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "webui_deploy: FAIL: $*" >&2
	for l in "$T"/*.log; do
		[ -f "$l" ] && echo "--- $l" >&2 && tail -n 20 "$l" >&2
	done
	exit 1
}

# The app: its compose file (CRLF, a non-ASCII character, a trailing space:
# bytes a page that re-serialised it would change) and its app id.
printf '{\r\n  "manifest_version": 2,\r\n  "name": "webapp-\xc3\xbc",\r\n  "runner": "docker-compose",\r\n  "docker_compose_file": "services: {}\\n"\r\n} ' \
	>"$T/app-compose.json"
app_id="$(sha256sum "$T/app-compose.json" | cut -c1-40)"

# The KMS side, as cvm-kmsd computes it: roots, the app's env key pair
# (`cvm kms derive`), GetAppEnvEncryptPubKey's signed answer
# (cvm_envcrypt_pubkey_sign) and the KMS key the page pins (GetMeta's).
webui_kms_roots "$T/roots"
"$bin/cvm" kms derive --root-dir "$T/roots" --app-id "$app_id" --json >"$T/derive.json"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["env_crypt_key"])' "$T/derive.json" |
	(umask 077 && cat >"$T/env.key")
mkdir -p "$T/kms"
"$SIGNER" "$T/roots" "$app_id" "$(date +%s)" >"$T/kms/answer.json"
kms_pub="$("$SIGNER" --meta "$T/roots" | python3 -c 'import json,sys; print(json.load(sys.stdin)["k256_pubkey"])')"
[[ "$kms_pub" =~ ^0[23][0-9a-f]{64}$ ]] || fail "no KMS key from kms_env_sign --meta: $kms_pub"

# The KMS: the real cvm-kmsd on these roots (HTTPS; cvm-vmmd proxies
# GetAppEnvEncryptPubKey to it without checking its certificate, as dstack's
# VMM does: the page checks the KMS's signature against the pinned key).
command -v openssl >/dev/null 2>&1 || fail "openssl is missing (scripts/setup.sh installs it)"
openssl req -x509 -key "$T/roots/root-ca.key" -subj "/O=Dstack/CN=Dstack KMS CA" -days 30 \
	-addext "basicConstraints=critical,CA:TRUE,pathlen:1" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	-out "$T/roots/root-ca.crt" 2>/dev/null || fail "openssl cannot make the KMS CA certificate"
printf '[kms]\nroot_dir = %s\n[rpc]\nlisten = 127.0.0.1:0\n[attestation]\nallow_no_self_attestation = true\n[audit]\ndb = %s\n' \
	"$T/roots" "$T/kms/audit.db" >"$T/kms/kmsd.conf"
"$bin/cvm-kmsd" -c "$T/kms/kmsd.conf" --port-file "$T/kms/port" >"$T/kms.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	[ -s "$T/kms/port" ] && break
	sleep 0.1
done
[ -s "$T/kms/port" ] || fail "cvm-kmsd did not start: $(head -c 600 "$T/kms.log")"
kms_port="$(cat "$T/kms/port")"

mkdir -p "$T/img/dev0" "$T/app-images"
printf 'a docker-save tarball stands here (the VM stays paused)\n' >"$T/app-images/web.tar"
printf '{"bios":"ovmf.fd","version":"0.1.0","is_dev":true}\n' >"$T/img/dev0/metadata.json"
cp -L "$ovmf" "$T/img/dev0/ovmf.fd"

# start_vmmd NAME [AUTH_TOKEN]: a cvm-vmmd on run_dir $T/run-NAME; its port
# in $T/port-NAME.
start_vmmd() {
	local name="$1" token="${2:-}"
	mkdir -p "$T/run-$name"
	{
		printf '[vmm]\nlisten = 127.0.0.1:0\nrun_dir = %s\nimage_dir = %s\nwebui_dir = %s\n' \
			"$T/run-$name" "$T/img" "$src/daemons/vmm/webui"
		printf 'app_image_dir = %s\n' "$T/app-images"
		printf 'accel = tcg\nstart_paused = true\nstop_timeout = 3\n'
		printf '[cvm]\nport_range = 21000-21100\nmax_vcpu = 4\nmax_memory_mb = 2048\nmax_disk_gb = 8\n'
		printf 'kms_urls = https://127.0.0.1:%s\n' "$kms_port"
		[ -z "$token" ] || printf '[auth]\ntokens = %s\n' "$token"
	} >"$T/vmmd-$name.conf"
	"$bin/cvm-vmmd" -c "$T/vmmd-$name.conf" --port-file "$T/port-$name" >"$T/vmmd-$name.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 100); do
		[ -s "$T/port-$name" ] && break
		kill -0 "${pids[-1]}" 2>/dev/null || fail "cvm-vmmd ($name) exited at start (a refused [vmm] webui_dir means vmm_webui_handle is not wired into cvm-vmmd yet)"
		sleep 0.05
	done
	[ -s "$T/port-$name" ] || fail "cvm-vmmd ($name) did not write its port"
}
start_vmmd main
start_vmmd auth webui-test-token
port="$(cat "$T/port-main")"

code="$(curl -s -o "$T/index" -w '%{http_code}' "http://127.0.0.1:$port/")"
[ "$code" = 200 ] || fail "cvm-vmmd does not serve the web UI at GET / ($code: $(head -c 200 "$T/index")): is vmm_webui_handle wired into its router?"

code="$(curl -s -o "$T/key" -w '%{http_code}' -X POST "http://127.0.0.1:$port/prpc/GetAppEnvEncryptPubKey?json" \
	-H 'Content-Type: application/json' -d "{\"app_id\":\"$app_id\"}")"
[ "$code" = 200 ] || fail "GetAppEnvEncryptPubKey through cvm-vmmd: $code $(head -c 300 "$T/key")"
python3 - "$T/key" "$T/derive.json" <<'PY' || fail "cvm-vmmd's GetAppEnvEncryptPubKey is not the KMS's key for the app"
import json, sys
k = json.load(open(sys.argv[1])); d = json.load(open(sys.argv[2]))
assert k["public_key"] == d["env_crypt_public_key"], (k, d.keys())
assert k.get("signature_v1"), k
PY

CVM_WEBUI_NODE_MODULES="$npm_dir/node_modules" CVM_WEBUI_CHROMIUM="$chromium" \
	CVM_WEBUI_URL="http://127.0.0.1:$port/" \
	CVM_WEBUI_URL_AUTH="http://127.0.0.1:$(cat "$T/port-auth")/" CVM_WEBUI_TOKEN=webui-test-token \
	CVM_WEBUI_URL_INSECURE="http://webui.test:$port/" \
	CVM_WEBUI_ART="$art" CVM_WEBUI_RUN="$T/run-main" CVM_WEBUI_CVM="$bin/cvm" \
	CVM_WEBUI_KEYFILE="$T/env.key" CVM_WEBUI_KMS_PUB="$kms_pub" \
	CVM_WEBUI_COMPOSE="$T/app-compose.json" \
	CVM_WEBUI_TMP="$T" \
	timeout 240 node "$here/webui_deploy.js" || fail "the browser checks failed (screenshots in $art)"
echo "webui_deploy: passed"

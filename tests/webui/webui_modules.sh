#!/usr/bin/env bash
# The web UI's JavaScript modules in node, against cvmkit's C side.
# kmssig.js (the in-browser check of the KMS's signature over an env key): answers
# signed by cvm_envcrypt_pubkey_sign (tests/integration/kms_env_sign) over
# the env key `cvm kms derive` gives are accepted with the KMS key GetMeta
# gives; a changed signature, app id, env key or KMS key, a stale or future
# timestamp and a missing signature_v1 are refused (webui_modules.mjs).
# Keccak-256 is checked against its published values and, through the
# SHA3 padding, against node's SHA3-256 on multi-block inputs.
# envcrypt.js: NAME=value lines are read by `cvm app encrypt-env`'s rules
# (the same lines give the same list), and a blob it makes opens with
# `cvm app decrypt-env` and the app's env_crypt_key.
set -euo pipefail

bin="${CVM_BIN:-build/bin}"
build="$(cd "$bin/.." && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
SIGNER="$build/tests/kms_env_sign"
# shellcheck source=tests/webui/kms_roots.sh
. "$here/kms_roots.sh"

for t in node python3; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "webui_modules: FAIL: $t is missing (scripts/setup.sh installs it)" >&2
		exit 1
	}
done
for t in "$bin/cvm" "$SIGNER"; do
	[ -x "$t" ] || {
		echo "webui_modules: FAIL: $t is missing (build it first)" >&2
		exit 1
	}
done

T="$(mktemp -d "${TMPDIR:-/tmp}/cvm-webui-kmssig.XXXXXX")"
trap 'rm -rf "$T"' EXIT
webui_kms_roots "$T/roots"
APP=9e8af4fc80bde3bea655a161280910c770c8d561
OTHER_APP=5bb4ff9a3837357f19dc176407a5709c62eb6c56
now="$(date +%s)"
"$bin/cvm" kms derive --root-dir "$T/roots" --app-id "$APP" --json >"$T/derive.json"
"$SIGNER" "$T/roots" "$APP" "$now" >"$T/answer.json"
"$SIGNER" "$T/roots" "$OTHER_APP" "$now" >"$T/other.json"
"$SIGNER" --meta "$T/roots" >"$T/meta.json"
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["env_crypt_key"])' "$T/derive.json" |
	(umask 077 && cat >"$T/env.key")
node "$here/webui_modules.mjs" "$here/../../daemons/vmm/webui" "$APP" "$now" \
	"$T/answer.json" "$T/other.json" "$T/meta.json" "$T/derive.json" "$bin/cvm" "$T"

#!/usr/bin/env bash
# Installs every Debian 12 package that cvmkit's build and tests need.
# Idempotent: when everything is present it only asks dpkg and returns.
# Runs apt-get as root, or through sudo when not root.
set -euo pipefail

# The one list of build and test dependencies (see DESIGN.md, Dependencies).
CVM_DEB_PACKAGES=(
	# build
	build-essential cmake pkg-config
		# libraries
	libssl-dev libjansson-dev libcbor-dev libsecp256k1-dev libtss2-dev libevent-dev libinih-dev
	# libraries for the daemons still to come (DESIGN.md)
	libcurl4-openssl-dev libyaml-dev libsqlite3-dev libmsgpack-dev
	# tests, sanitizers, fuzzing, static analysis
	libcmocka-dev clang libclang-rt-14-dev clang-tidy clang-format cppcheck valgrind
	# real parts the tests start: a TPM, its tools, IMA's tool, the openssl command (test CAs), python3
	swtpm swtpm-tools tpm2-tools ima-evm-utils openssl python3
	# certificates made by hand in the RA-TLS tests
	python3-cryptography
	# an ACME server and its DNS/HTTP challenge test server (issue 10)
	pebble
)
# Node.js and npm come from Debian only when no node/npm is there already
# (a machine may carry its own Node.js, whose nodejs package conflicts with
# Debian's npm).
CVM_DEB_NODE_PACKAGES=(nodejs npm)

missing=()
for p in "${CVM_DEB_PACKAGES[@]}"; do
	if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)" != "ii " ]; then
		missing+=("$p")
	fi
done
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	for p in "${CVM_DEB_NODE_PACKAGES[@]}"; do
		if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)" != "ii " ]; then
			missing+=("$p")
		fi
	done
fi

if [ "${#missing[@]}" -eq 0 ]; then
	echo "setup: all ${#CVM_DEB_PACKAGES[@]} packages present"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1; then
	as_root=(sudo)
else
	echo "setup: missing packages (${missing[*]}) and neither root nor sudo is available" >&2
	exit 1
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
echo "setup: done"

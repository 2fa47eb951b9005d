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
	# the HTTP load generator of the cvm-verifierd benchmark (issue 11)
	wrk
	# the guest image (cvm image build) and its boot under QEMU (issue 12, docs/vm.md);
	# kmod's depmod indexes the guest kernel's modules
	qemu-system-x86 ovmf busybox-static cpio e2fsprogs kmod curl
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

if [ "$(id -u)" -eq 0 ]; then
	as_root=()
elif command -v sudo >/dev/null 2>&1; then
	as_root=(sudo)
else
	as_root=(false)
fi

if [ "${#missing[@]}" -eq 0 ]; then
	echo "setup: all ${#CVM_DEB_PACKAGES[@]} packages present"
else
	if [ "${as_root[0]:-}" = false ]; then
		echo "setup: missing packages (${missing[*]}) and neither root nor sudo is available" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}"
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

# The guest kernel of `cvm image build`: the linux-image-<version>-amd64
# package that Debian's linux-image-amd64 depends on, unpacked (not
# installed: the host's /boot and its bootloader stay untouched) into
# $CVM_GUEST_KERNEL_CACHE/<version>, its modules indexed with depmod, and
# $CVM_GUEST_KERNEL_CACHE/current pointing at it.
cache="${CVM_GUEST_KERNEL_CACHE:-/var/cache/cvmkit/guest-kernel}"
pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
if [ -z "$pkg" ]; then
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
	pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')"
fi
if [ -z "$pkg" ]; then
	echo "setup: apt knows no linux-image-amd64 (is this Debian 12 with its main archive?)" >&2
	exit 1
fi
kver="${pkg#linux-image-}"
if [ -r "$cache/$kver/boot/vmlinuz-$kver" ] && [ -r "$cache/$kver/lib/modules/$kver/modules.dep" ]; then
	[ "$(readlink "$cache/current" 2>/dev/null || true)" = "$kver" ] || "${as_root[@]}" ln -sfn "$kver" "$cache/current"
	echo "setup: guest kernel $kver present in $cache"
else
	if [ "${as_root[0]:-}" = false ]; then
		echo "setup: the guest kernel $kver is missing in $cache and neither root nor sudo is available" >&2
		exit 1
	fi
	echo "setup: unpacking the guest kernel $pkg into $cache/$kver"
	"${as_root[@]}" mkdir -p "$cache/download"
	"${as_root[@]}" rm -rf "$cache/$kver.tmp"
	# apt-get download writes into the current folder; _apt may not write
	# there (a warning, not an error).
	log="$(mktemp)"
	if ! (cd "$cache/download" && "${as_root[@]}" apt-get download -q "$pkg" >"$log" 2>&1); then
		cat "$log" >&2
		rm -f "$log"
		echo "setup: apt-get download $pkg failed" >&2
		exit 1
	fi
	rm -f "$log"
	deb=""
	for f in "$cache/download/${pkg}_"*.deb; do
		[ -e "$f" ] && deb="$f"
	done
	if [ -z "$deb" ]; then
		echo "setup: apt-get download $pkg failed" >&2
		exit 1
	fi
	"${as_root[@]}" dpkg-deb -x "$deb" "$cache/$kver.tmp"
	"${as_root[@]}" depmod -b "$cache/$kver.tmp" "$kver"
	"${as_root[@]}" rm -rf "$cache/$kver"
	"${as_root[@]}" mv "$cache/$kver.tmp" "$cache/$kver"
	"${as_root[@]}" ln -sfn "$kver" "$cache/current"
	"${as_root[@]}" rm -f "$deb"
	echo "setup: guest kernel $kver in $cache"
fi
echo "setup: done"

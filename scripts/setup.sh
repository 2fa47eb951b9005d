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
	# the sqlite3 tool: integration.kms_audit_cli tampers with audit logs through it
	sqlite3
	# tests, sanitizers, fuzzing, static analysis
	libcmocka-dev clang libclang-rt-14-dev clang-tidy clang-format cppcheck valgrind
	# real parts the tests start: a TPM, its tools, IMA's tool, the openssl command (test CAs), python3
	swtpm swtpm-tools tpm2-tools ima-evm-utils openssl python3
	# certificates made by hand in the RA-TLS tests
	python3-cryptography
	# the app guest's base root (cvm image build --app-runtime, issue 14): debootstrap makes it;
	# qemu-utils' qemu-img makes the app guest's qcow2 data disk
	debootstrap qemu-utils
	# an ACME server and its DNS/HTTP challenge test server (issue 10)
	pebble
	# the HTTP load generator of the cvm-verifierd benchmark (issue 11)
	wrk
	# the guest image (cvm image build) and its boot under QEMU (issue 12, docs/vm.md);
	# kmod's depmod indexes the guest kernel's modules
	qemu-system-x86 ovmf busybox-static cpio e2fsprogs kmod curl
	# an independent Authenticode implementation: integration.measure_authenticode
	# checks cvm measure's kernel digest against it (issue 14)
	osslsigncode
	# the browser of the cvm-vmmd web UI test (webui.deploy, driven by npm's playwright-core below)
	chromium
	# cvm-gatewayd (issue 15): WireGuard's netlink interface (libmnl), DNS TXT lookups for custom
	# domains (c-ares); its tests and benchmark start etcd (cluster state), wireguard-go in network
	# namespaces (wg and ip check what it was told), haproxy (the benchmark's peer)
	libmnl-dev libc-ares-dev etcd-server etcd-client wireguard-go wireguard-tools iproute2 haproxy
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
# The app guest's base root (`cvm image build --app-runtime`, docs/vm.md):
# a Debian 12 minbase root with Docker, docker-compose, cryptsetup, iptables,
# kmod and busybox, made once with debootstrap into
# $CVM_GUEST_ROOT_CACHE/<name> (<name>: bookworm-<date of the build>), with
# `current` pointing at it and manifest.txt listing every package and its
# version. When it is there, setup only checks it. Nothing else downloads
# it: the image build and the tests read it here.
root_cache="${CVM_GUEST_ROOT_CACHE:-/var/cache/cvmkit/guest-root}"
root_pkgs="docker.io,docker-compose,cryptsetup-bin,iptables,kmod,busybox-static,ca-certificates,apparmor"
root_ok() {
	[ -x "$1/usr/sbin/dockerd" ] && [ -x "$1/usr/bin/docker-compose" ] && [ -x "$1/sbin/cryptsetup" ] && [ -x "$1/sbin/apparmor_parser" ] &&
		[ -r "$1/manifest.txt" ]
}
if root_ok "$root_cache/current"; then
	echo "setup: app guest base root $(readlink "$root_cache/current") present in $root_cache"
else
	if [ "${as_root[0]:-}" = false ]; then
		echo "setup: the app guest base root is missing in $root_cache and neither root nor sudo is available" >&2
		exit 1
	fi
	name="bookworm-$(date -u +%Y%m%d)"
	echo "setup: making the app guest base root $root_cache/$name with debootstrap (about 600 MB)"
	"${as_root[@]}" mkdir -p "$root_cache"
	"${as_root[@]}" rm -rf "$root_cache/$name.tmp"
	log="$(mktemp)"
	if ! "${as_root[@]}" debootstrap --variant=minbase --include="$root_pkgs" bookworm \
		"$root_cache/$name.tmp" http://deb.debian.org/debian >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		rm -f "$log"
		echo "setup: debootstrap of the app guest base root failed (is deb.debian.org reachable?)" >&2
		exit 1
	fi
	rm -f "$log"
	# apt's caches and lists are not part of the guest.
	"${as_root[@]}" rm -rf "$root_cache/$name.tmp/var/cache/apt/archives/"*.deb \
		"$root_cache/$name.tmp/var/lib/apt/lists/"*_Packages
	"${as_root[@]}" chroot "$root_cache/$name.tmp" dpkg-query -W -f='${Package} ${Version}\n' |
		LC_ALL=C sort | "${as_root[@]}" tee "$root_cache/$name.tmp/manifest.txt" >/dev/null
	"${as_root[@]}" rm -rf "$root_cache/$name"
	"${as_root[@]}" mv "$root_cache/$name.tmp" "$root_cache/$name"
	"${as_root[@]}" ln -sfn "$name" "$root_cache/current"
	root_ok "$root_cache/current" || {
		echo "setup: $root_cache/$name lacks dockerd, docker-compose or cryptsetup" >&2
		exit 1
	}
	echo "setup: app guest base root $name in $root_cache ($(wc -l <"$root_cache/$name/manifest.txt") packages)"
fi
# The local Ethereum chain of the on-chain authorization tests (docs/chain.md):
# anvil (its Linux binary ships inside the npm package
# @foundry-rs/anvil-linux-amd64) and the solc compiler (npm's solc, a
# WebAssembly build), installed once, pinned, into $CVM_CHAIN_NPM_DIR. The
# tests read them there and download nothing. anvil's postinstall script is
# not needed (npm places the platform package itself) and is not run.
chain_dir="${CVM_CHAIN_NPM_DIR:-/var/cache/cvmkit/npm-chain}"
chain_pkgs=("@foundry-rs/anvil@1.7.1" "@foundry-rs/anvil-linux-amd64@1.7.1" "solc@0.8.28")
chain_ok() {
	[ -x "$chain_dir/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" ] &&
		[ "$(node -e 'try{console.log(require(process.argv[1]).version)}catch{}' \
			"$chain_dir/node_modules/solc/package.json" 2>/dev/null || true)" = 0.8.28 ] &&
		[ "$(node -e 'try{console.log(require(process.argv[1]).version)}catch{}' \
			"$chain_dir/node_modules/@foundry-rs/anvil-linux-amd64/package.json" 2>/dev/null || true)" = 1.7.1 ]
}
if chain_ok; then
	echo "setup: anvil 1.7.1 and solc 0.8.28 present in $chain_dir"
else
	echo "setup: installing ${chain_pkgs[*]} from npm into $chain_dir"
	"${as_root[@]}" mkdir -p "$chain_dir"
	[ -f "$chain_dir/package.json" ] ||
		echo '{"name":"cvmkit-chain-tools","private":true}' | "${as_root[@]}" tee "$chain_dir/package.json" >/dev/null
	(cd "$chain_dir" && "${as_root[@]}" npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
		"${chain_pkgs[@]}") || {
		echo "setup: npm install ${chain_pkgs[*]} failed" >&2
		exit 1
	}
	chain_ok || {
		echo "setup: $chain_dir lacks anvil 1.7.1 or solc 0.8.28 after npm install" >&2
		exit 1
	}
fi
# The cvm-vmmd web UI test (tests/webui/webui_deploy.sh) drives Debian's
# chromium with playwright-core (the library only: it downloads no browser),
# installed once, pinned, into $CVM_WEBUI_NPM_DIR.
webui_dir="${CVM_WEBUI_NPM_DIR:-/var/cache/cvmkit/npm-webui}"
webui_pkgs=("playwright-core@1.65.2")
webui_ok() {
	[ "$(node -e 'try{console.log(require(process.argv[1]).version)}catch{}' \
		"$webui_dir/node_modules/playwright-core/package.json" 2>/dev/null || true)" = 1.65.2 ]
}
if webui_ok; then
	echo "setup: playwright-core 1.65.2 present in $webui_dir"
else
	echo "setup: installing ${webui_pkgs[*]} from npm into $webui_dir"
	"${as_root[@]}" mkdir -p "$webui_dir"
	[ -f "$webui_dir/package.json" ] ||
		echo '{"name":"cvmkit-webui-test","private":true}' | "${as_root[@]}" tee "$webui_dir/package.json" >/dev/null
	(cd "$webui_dir" && "${as_root[@]}" npm install --no-audit --no-fund --ignore-scripts --loglevel=error \
		"${webui_pkgs[@]}") || {
		echo "setup: npm install ${webui_pkgs[*]} failed" >&2
		exit 1
	}
	webui_ok || {
		echo "setup: $webui_dir lacks playwright-core 1.65.2 after npm install" >&2
		exit 1
	}
fi
echo "setup: done"

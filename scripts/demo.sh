#!/usr/bin/env bash
# The README's first command: installs what is missing, builds cvmkit into
# build/ and verifies a real Intel TDX quote (v4, from dcap-qvl's samples) with
# its real collateral, at the time its manifest gives, against the Intel SGX
# Root CA built into cvm. Prints the verdict, then the same as JSON.
#
# The vector is the repository's own copy, tests/vectors/tdx/dcapqvl-tdx-v4-uptodate
# (tests/vectors/SOURCES.md gives its origin); nothing outside the repository
# is read. Exits 0 when a verdict was printed (accepted or rejected), non-zero
# when the tools could not give one.
set -euo pipefail

src="$(cd "$(dirname "$0")/.." && pwd)"
cd "$src"
vector="tests/vectors/tdx/dcapqvl-tdx-v4-uptodate"
jobs="${CVM_JOBS:-$(nproc 2>/dev/null || echo 2)}"

"$src/scripts/setup.sh"

for f in quote.bin manifest.json tcb_info.json qe_identity.json tcb_info_issuer_chain.pem \
	qe_identity_issuer_chain.pem pck_crl_issuer_chain.pem pck_crl.der root_ca_crl.der; do
	if [ ! -f "$vector/$f" ]; then
		echo "demo: $vector/$f is missing: the repository's tests/vectors holds the demo's vector" \
			"(git checkout -- tests/vectors restores it)" >&2
		exit 1
	fi
done

# The programs of build/bin/: cvm and the benchmarks (tests are scripts/test.sh's job).
programs=(cvm)
for b in "$src"/bench/bench_*.c; do
	[ -f "$b" ] && programs+=("$(basename "$b" .c)")
done
echo "demo: building ${programs[*]} into build/ (log: build/demo-build.log)"
mkdir -p "$src/build"
log="$src/build/demo-build.log"
if ! { cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
	cmake --build "$src/build" -j "$jobs" --target "${programs[@]}"; } >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	echo "demo: build failed (full log: $log)" >&2
	exit 1
fi
cvm="$src/build/bin/cvm"

# verify_at_unix, read without a JSON tool so that a bare Debian suffices.
at="$(sed -n 's/.*"verify_at_unix"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$vector/manifest.json" | head -n 1)"
if [ -z "$at" ]; then
	echo "demo: no verify_at_unix in $vector/manifest.json" >&2
	exit 1
fi

echo "demo: a real Intel TDX v4 quote (dcap-qvl's sample) and its Intel collateral, verified at" \
	"$(date -u -d "@$at" '+%Y-%m-%d %H:%M:%S UTC' 2>/dev/null || echo "$at") (verify_at_unix $at)"

run() { # run ARGS...: prints the command and its output, returns its exit code
	echo
	echo "\$ build/bin/cvm $*"
	local rc=0
	"$cvm" "$@" || rc=$?
	echo "(exit code $rc)"
	return "$rc"
}

rc_text=0
rc_json=0
run quote verify "$vector/quote.bin" --collateral "$vector" --at "$at" || rc_text=$?
run quote verify "$vector/quote.bin" --collateral "$vector" --at "$at" --json || rc_json=$?

echo
echo "expected ($vector/manifest.json): accepted, TCB status UpToDate, no advisories"
# 0 accepted and 3 rejected are both verdicts; 1 (error) and 2 (usage) are not.
for rc in "$rc_text" "$rc_json"; do
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
		echo "demo: cvm quote verify gave no verdict (exit code $rc)" >&2
		exit 1
	fi
done
exit 0

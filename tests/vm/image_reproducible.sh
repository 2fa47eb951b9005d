#!/usr/bin/env bash
# vm.image_reproducible: `cvm image build` twice from the same inputs, into
# two folders, gives the same bytes (every artifact) and the same image
# digest, also with another umask and other file times in the inputs'
# copies; an --add file changes root.ext4 and the image digest (and nothing
# else), and so does another SOURCE_DATE_EPOCH. The host's root shell
# (--test-channel) is in the image only when asked for. Checks that manifest.json
# holds each artifact's SHA-256 (recomputed here in Python) and that the
# image digest is SHA-256 over the "name sha256" lines (docs/cli/cvm-image.md).
# Needs busybox-static, e2fsprogs, cpio and the guest kernel (scripts/setup.sh).
# shellcheck disable=SC2015 # in "check && pass || fail", pass cannot fail
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
for t in mke2fs:e2fsprogs debugfs:e2fsprogs cpio:cpio python3:python3; do
	if ! command -v "${t%%:*}" >/dev/null 2>&1; then
		echo "SKIP: ${t%%:*} is missing (Debian package ${t#*:}; scripts/setup.sh installs it)"
		exit 77
	fi
done
[ -x /bin/busybox ] || { echo "SKIP: /bin/busybox is missing (busybox-static; scripts/setup.sh)"; exit 77; }
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-vm-repro.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }

# The agent copied twice, with different times and modes of the copies'
# folder: the image must not depend on them.
mkdir -p "$tmp/a1" "$tmp/a2"
cp "$bin/cvm-agentd" "$tmp/a1/cvm-agentd"
cp "$bin/cvm-agentd" "$tmp/a2/cvm-agentd"
touch -d '2001-02-03 04:05:06' "$tmp/a2/cvm-agentd"
echo "hello from the test" >"$tmp/extra.txt"

build() { # build OUT [ARGS...]
	local out="$1"
	shift
	if ! "$bin/cvm" image build "$out" "$@" >"$out.stdout" 2>"$out.stderr"; then
		fail "cvm image build $out $*: exit status $?"
		sed 's/^/    /' "$out.stderr" >&2
		return 1
	fi
}
digest() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["image_digest"])' "$1/manifest.json"; }

build "$tmp/one" --agent "$tmp/a1/cvm-agentd" || exit 1
(umask 077 && build "$tmp/two" --agent "$tmp/a2/cvm-agentd") || exit 1
grep -q '^cvm image: \[6/6\] manifest.json' "$tmp/one.stderr" && grep -q 'root.ext4: .* MiB' "$tmp/one.stderr" &&
	pass || fail "no progress lines on stderr: $(cat "$tmp/one.stderr")"

for f in vmlinuz initrd.img root.ext4 cmdline manifest.json; do
	if cmp -s "$tmp/one/$f" "$tmp/two/$f"; then
		pass
	else
		fail "$f differs between two builds of the same inputs: $(cmp "$tmp/one/$f" "$tmp/two/$f" 2>&1 | head -1)"
	fi
done
d1="$(digest "$tmp/one")"
d2="$(digest "$tmp/two")"
[ -n "$d1" ] && [ "$d1" = "$d2" ] && pass || fail "image digests differ: $d1 and $d2"
[ "$(cat "$tmp/one.stdout")" = "$d1" ] && pass || fail "stdout is '$(cat "$tmp/one.stdout")', expected the digest $d1"
[ -e "$tmp/one/.work" ] && fail "the staging folder $tmp/one/.work was left behind" || pass

# The manifest against the files.
if python3 - "$tmp/one" <<'EOF'; then
import hashlib, json, sys
d = sys.argv[1]
m = json.load(open(d + "/manifest.json"))
lines = ""
for name in sorted(m["artifacts"]):
    h = hashlib.sha256(open(d + "/" + name, "rb").read()).hexdigest()
    a = m["artifacts"][name]
    assert a["sha256"] == h, "%s: manifest %s, file %s" % (name, a["sha256"], h)
    lines += "%s %s\n" % (name, h)
assert sorted(m["artifacts"]) == ["cmdline", "initrd.img", "root.ext4", "vmlinuz"], m["artifacts"].keys()
want = hashlib.sha256(lines.encode()).hexdigest()
assert m["image_digest"] == want, "image_digest %s, expected %s" % (m["image_digest"], want)
EOF
	pass
else
	fail "manifest.json does not match the artifacts (above)"
fi

# A changed input changes the digest: an --add file; another epoch.
build "$tmp/three" --agent "$tmp/a1/cvm-agentd" --add "$tmp/extra.txt:/etc/extra.txt" || exit 1
d3="$(digest "$tmp/three")"
[ "$d3" != "$d1" ] && pass || fail "--add did not change the image digest ($d3)"
cmp -s "$tmp/one/root.ext4" "$tmp/three/root.ext4" && fail "--add did not change root.ext4" || pass
cmp -s "$tmp/one/initrd.img" "$tmp/three/initrd.img" && pass || fail "--add changed initrd.img"
debugfs -R "cat /etc/extra.txt" "$tmp/three/root.ext4" 2>/dev/null | grep -q "hello from the test" && pass ||
	fail "/etc/extra.txt is not in root.ext4"
# The host's root shell is in an image only when asked for.
inittab="$(debugfs -R "cat /etc/inittab" "$tmp/one/root.ext4" 2>/dev/null)"
case "$inittab" in
*cmd-channel*) fail "the default image starts the command channel: $inittab" ;;
*::sysinit:/etc/init.d/rcS*) pass ;;
*) fail "cannot read /etc/inittab of root.ext4: '$inittab'" ;;
esac
debugfs -R "stat /usr/libexec/cvmkit/cmd-channel" "$tmp/one/root.ext4" 2>&1 | grep -q "File not found" && pass ||
	fail "the default image holds /usr/libexec/cvmkit/cmd-channel"
build "$tmp/six" --agent "$tmp/a1/cvm-agentd" --test-channel || exit 1
debugfs -R "cat /etc/inittab" "$tmp/six/root.ext4" 2>/dev/null | grep -q '^::respawn:/usr/libexec/cvmkit/cmd-channel$' &&
	python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["test_channel"] is True else 1)' \
		"$tmp/six/manifest.json" && [ "$(digest "$tmp/six")" != "$d1" ] && pass ||
	fail "--test-channel: expected the channel in inittab, test_channel true and another digest"
python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["test_channel"] is False else 1)' \
	"$tmp/one/manifest.json" && pass || fail "the default manifest does not say test_channel false"
SOURCE_DATE_EPOCH=1700000000 build "$tmp/four" --agent "$tmp/a1/cvm-agentd" || exit 1
[ "$(digest "$tmp/four")" != "$d1" ] && pass || fail "another SOURCE_DATE_EPOCH gave the same digest"

# Refusals: an --add over a file of the image, a relative DEST, no kernel, a
# dynamically linked busybox; --app-runtime's below.
"$bin/cvm" image build "$tmp/five" --agent "$tmp/a1/cvm-agentd" --add "$tmp/extra.txt:/etc/passwd" \
	>/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q 'already has /etc/passwd' "$tmp/err" && pass ||
	fail "--add over /etc/passwd: expected exit 1 naming it, got $rc: $(cat "$tmp/err")"
"$bin/cvm" image build "$tmp/five" --add "$tmp/extra.txt:etc/x" >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] && pass || fail "--add with a relative DEST: expected exit 2, got $rc: $(cat "$tmp/err")"
"$bin/cvm" image build "$tmp/five" --add "$tmp/extra.txt:/etc/../x" >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] && pass || fail "--add with '..' in DEST: expected exit 2, got $rc: $(cat "$tmp/err")"
"$bin/cvm" image build "$tmp/five" --kernel "$tmp/nokernel" >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q 'scripts/setup.sh' "$tmp/err" && pass ||
	fail "a missing kernel: expected exit 1 pointing at scripts/setup.sh, got $rc: $(cat "$tmp/err")"

"$bin/cvm" image build "$tmp/five" --agent "$tmp/a1/cvm-agentd" --busybox /bin/ls >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q 'linked dynamically.*busybox-static' "$tmp/err" && pass ||
	fail "a dynamic busybox: expected exit 1 naming busybox-static, got $rc: $(cat "$tmp/err")"

# --app-runtime's refusals: --base alone; a base root without Docker.
"$bin/cvm" image build "$tmp/five" --base "$tmp" >/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q -- '--base goes with --app-runtime' "$tmp/err" && pass ||
	fail "--base without --app-runtime: expected exit 2, got $rc: $(cat "$tmp/err")"
"$bin/cvm" image build "$tmp/five" --agent "$tmp/a1/cvm-agentd" --app-runtime --base "$tmp/nokernel" \
	>/dev/null 2>"$tmp/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q 'has no /usr/sbin/dockerd: run scripts/setup.sh' "$tmp/err" && pass ||
	fail "a base root without dockerd: expected exit 1 pointing at scripts/setup.sh, got $rc: $(cat "$tmp/err")"

echo "vm.image_reproducible: $checks checks passed, $failures failed (image digest $d1)"
[ "$failures" -eq 0 ]

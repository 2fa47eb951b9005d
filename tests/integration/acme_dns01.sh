#!/usr/bin/env bash
# cvm cert acme issue with dns-01 through a hook, against pebble whose
# resolver is pebble-challtestsrv (tests/common/pebble.sh):
#  - the hook (written here) puts the TXT value with challtestsrv's
#    /set-txt and removes it with /clear-txt; cvm calls it as
#    `HOOK present|cleanup DOMAIN VALUE`, once each per authorization, with a
#    43-character base64url value; a certificate for a name and a wildcard
#    is issued and verifies against pebble's root;
#  - a hook that fails stops the order with a message naming it, and writes
#    no key;
#  - a hook that presents a wrong value makes the CA refuse, and cvm says so.
# Needs: $CVM_BIN/cvm, pebble, pebble-challtestsrv, openssl, curl, python3.
set -euo pipefail

CVM="${CVM_BIN:-build/bin}/cvm"
# shellcheck source=tests/common/pebble.sh
. "$(dirname "$0")/../common/pebble.sh"
if [ ! -x "$CVM" ]; then
	echo "FAIL: $CVM is missing or not executable (set CVM_BIN)" >&2
	exit 1
fi

tmp="$(mktemp -d)"
cleanup() {
	pebble_stop
	rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
checks=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
pass() { checks=$((checks + 1)); }
run() {
	local want="$1" rc=0
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "'$*' exited $rc, expected $want: $(head -c 800 "$tmp/err") $(head -c 400 "$tmp/out")"
		return 1
	fi
	pass
}

pebble_start "$tmp/pebble"
w="$tmp/w"
mkdir -p "$w"

# The hook: challtestsrv's management API, and a log of every call.
cat >"$w/hook.sh" <<HOOK
#!/bin/sh
set -eu
echo "\$1 \$2 \$3" >>"$w/hook.log"
case "\$1" in
present) curl -sf -X POST -d "{\"host\":\"_acme-challenge.\$2.\",\"value\":\"\${HOOK_VALUE:-\$3}\"}" "$CHALL_MGMT/set-txt" ;;
cleanup) curl -sf -X POST -d "{\"host\":\"_acme-challenge.\$2.\"}" "$CHALL_MGMT/clear-txt" ;;
*) exit 2 ;;
esac
HOOK
chmod 755 "$w/hook.sh"
printf '#!/bin/sh\necho "hook: no DNS today" >&2\nexit 3\n' >"$w/bad-hook.sh"
chmod 755 "$w/bad-hook.sh"

common=(--directory "$ACME_DIR" --ca-bundle "$ACME_TLS_CA" --account-key "$w/account.pem" --timeout 60)

# 1. A name and a wildcard, through the hook.
run 0 "$CVM" cert acme issue "${common[@]}" --dns-01-hook "$w/hook.sh" --domain dns.cvmkit.test \
	--domain '*.wild.cvmkit.test' --key-out "$w/key.pem" --cert-out "$w/chain.pem" || true
if [ -f "$w/hook.log" ]; then
	for d in dns.cvmkit.test wild.cvmkit.test; do
		[ "$(grep -c "^present $d " "$w/hook.log")" = 1 ] && pass || fail "present $d not called once: $(cat "$w/hook.log")"
		[ "$(grep -c "^cleanup $d " "$w/hook.log")" = 1 ] && pass || fail "cleanup $d not called once: $(cat "$w/hook.log")"
	done
	if ! cut -d' ' -f3 "$w/hook.log" | grep -q -v -E '^[A-Za-z0-9_-]{43}$'; then
		pass
	else
		fail "a TXT value is not 43 base64url characters: $(cat "$w/hook.log")"
	fi
	# present and cleanup of one domain carry the same value
	if [ "$(grep "^present dns.cvmkit.test " "$w/hook.log" | cut -d' ' -f3)" = \
		"$(grep "^cleanup dns.cvmkit.test " "$w/hook.log" | cut -d' ' -f3)" ]; then
		pass
	else
		fail "present and cleanup gave different values: $(cat "$w/hook.log")"
	fi
else
	fail "the hook was never called"
fi
if openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$w/chain.pem" "$w/chain.pem" >"$tmp/v" 2>&1; then
	pass
else
	fail "the chain does not verify against pebble's root: $(cat "$tmp/v")"
fi
sans="$(openssl x509 -in "$w/chain.pem" -noout -ext subjectAltName 2>/dev/null || true)"
grep -q 'DNS:\*.wild.cvmkit.test' <<<"$sans" && grep -q 'DNS:dns.cvmkit.test' <<<"$sans" && pass ||
	fail "the certificate does not name both names: $sans"
[ "$(stat -c %a "$w/key.pem" 2>/dev/null)" = 600 ] && pass || fail "key.pem is not 0600"

# 2. A failing hook stops the order.
if run 1 "$CVM" cert acme issue "${common[@]}" --dns-01-hook "$w/bad-hook.sh" --domain bad.cvmkit.test \
	--key-out "$w/k2.pem" --cert-out "$w/c2.pem"; then
	grep -q "the dns-01 hook '$w/bad-hook.sh present bad.cvmkit.test' failed (exit status 3)" "$tmp/err" &&
		pass || fail "unexpected message: $(cat "$tmp/err")"
	grep -q "hook: no DNS today" "$tmp/err" && pass || fail "the hook's own message was lost: $(cat "$tmp/err")"
fi
[ ! -e "$w/k2.pem" ] && pass || fail "a failed issue wrote a key"

# 3. A wrong TXT value: the CA refuses, cvm names the CA's reason.
if HOOK_VALUE=wrongwrongwrongwrongwrongwrongwrongwrongwro run 1 "$CVM" cert acme issue "${common[@]}" \
	--dns-01-hook "$w/hook.sh" --domain wrong.cvmkit.test --key-out "$w/k3.pem" --cert-out "$w/c3.pem"; then
	grep -q "the CA did not validate wrong.cvmkit.test (authorization invalid): unauthorized" "$tmp/err" &&
		pass || fail "unexpected message: $(cat "$tmp/err")"
	grep -q "^cleanup wrong.cvmkit.test " "$w/hook.log" && pass || fail "no cleanup after the failed validation"
fi

echo "acme_dns01: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]

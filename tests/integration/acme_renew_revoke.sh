#!/usr/bin/env bash
# cvm cert acme renew and revoke against pebble (tests/common/pebble.sh):
#  - renew of a fresh certificate is not due (pebble's certificates live 5
#    years; the default rule renews in the last third of the lifetime): it
#    says so, exits 0 and changes nothing; --renew-part 99/100 is not due
#    either; --days 36500 is due (less than 100 years left), so is --force;
#    each renewal writes a new key (0600) and a certificate with a new serial
#    for that key, verifying against pebble's root;
#  - revoke: pebble's /cert-status-by-serial says Revoked; a second revoke
#    names alreadyRevoked; an unknown account key names accountDoesNotExist
#    and makes no account.
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
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
status_of() {
	curl -sf --cacert "$ACME_TLS_CA" "$PEBBLE_MGMT/cert-status-by-serial/$1" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["Status"])'
}
key_matches() {
	[ "$(openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" = \
		"$(openssl pkey -in "$2" -pubout -outform DER | sha256sum)" ]
}

pebble_start "$tmp/pebble"
chall_add_a renew.cvmkit.test
w="$tmp/w"
mkdir -p "$w"
common=(--directory "$ACME_DIR" --ca-bundle "$ACME_TLS_CA" --account-key "$w/account.pem" --timeout 60)
order=("${common[@]}" --http-01 --http-port "$ACME_HTTP_PORT" --http-address 127.0.0.1
	--domain renew.cvmkit.test --key-out "$w/key.pem" --cert-out "$w/chain.pem")

run 0 "$CVM" cert acme issue "${order[@]}" || true
s1="$(serial "$w/chain.pem")"
sum1="$(sha256sum <"$w/chain.pem")"
ksum1="$(sha256sum <"$w/key.pem")"

# 1. Not due.
for rule in "" "--renew-part 99/100"; do
	# shellcheck disable=SC2086 # split on purpose
	if run 0 "$CVM" cert acme renew "${order[@]}" --cert "$w/chain.pem" $rule; then
		grep -q "^not due: '$w/chain.pem' is valid until " "$tmp/out" && pass ||
			fail "renew $rule: unexpected output: $(cat "$tmp/out")"
	fi
	[ "$(sha256sum <"$w/chain.pem")" = "$sum1" ] && [ "$(sha256sum <"$w/key.pem")" = "$ksum1" ] && pass ||
		fail "renew $rule changed the certificate or key when it was not due"
done
grep -q "less than 99/100 of its lifetime remains" "$tmp/out" && pass || fail "the rule is not named: $(cat "$tmp/out")"

# 2. Due by --days, then --force: new key, new serial, each verifying.
prev="$s1"
for how in "--days 36500" "--force"; do
	# shellcheck disable=SC2086 # split on purpose
	if run 0 "$CVM" cert acme renew "${order[@]}" --cert "$w/chain.pem" $how; then
		grep -q "^renewed: certificate $w/chain.pem" "$tmp/out" && pass ||
			fail "renew $how: unexpected output: $(cat "$tmp/out")"
	fi
	s="$(serial "$w/chain.pem")"
	[ "$s" != "$prev" ] && pass || fail "renew $how kept the serial $s"
	prev="$s"
	key_matches "$w/chain.pem" "$w/key.pem" && pass || fail "after renew $how the key file does not match the certificate"
	[ "$(stat -c %a "$w/key.pem")" = 600 ] && pass || fail "after renew $how key.pem is not 0600"
	[ ! -e "$w/key.pem.renew" ] && pass || fail "renew $how left key.pem.renew"
	openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$w/chain.pem" "$w/chain.pem" >/dev/null 2>&1 && pass ||
		fail "after renew $how the chain does not verify"
done
[ "$(sha256sum <"$w/key.pem")" != "$ksum1" ] && pass || fail "the renewed certificate kept the old key"
s3="$prev"

# 3. Revoke, and revoke again.
[ "$(status_of "$s3")" = Valid ] && pass || fail "pebble does not say $s3 is Valid before revocation"
if run 0 "$CVM" cert acme revoke "${common[@]}" --cert "$w/chain.pem" --reason 4; then
	grep -q "^revoked: certificate $w/chain.pem" "$tmp/out" && pass || fail "unexpected output: $(cat "$tmp/out")"
fi
[ "$(status_of "$s3")" = Revoked ] && pass || fail "pebble does not say $s3 is Revoked: $(status_of "$s3")"
[ "$(status_of "$s1")" = Valid ] && pass || fail "the first certificate $s1 was revoked too"
if run 1 "$CVM" cert acme revoke "${common[@]}" --cert "$w/chain.pem"; then
	grep -q "revoking the certificate: the CA answered HTTP 400, alreadyRevoked" "$tmp/err" && pass ||
		fail "unexpected message: $(cat "$tmp/err")"
fi
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$w/other.pem" 2>/dev/null
chmod 600 "$w/other.pem"
if run 1 "$CVM" cert acme revoke --directory "$ACME_DIR" --ca-bundle "$ACME_TLS_CA" --account-key "$w/other.pem" \
	--cert "$w/chain.pem"; then
	grep -q "accountDoesNotExist" "$tmp/err" && pass || fail "unexpected message: $(cat "$tmp/err")"
fi
run 2 "$CVM" cert acme revoke "${common[@]}" --cert "$w/chain.pem" --reason 7 || true
run 1 "$CVM" cert acme revoke "${common[@]}" --account-key "$w/missing.pem" --cert "$w/chain.pem" || true

echo "acme_renew_revoke: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]

#!/usr/bin/env bash
# cvm cert acme issue with http-01 against pebble (a private ACME CA started
# here, tests/common/pebble.sh):
#  - a certificate for two names (one added to the mock DNS with /add-a) is
#    issued with the http-01 answers served by cvm itself on pebble's
#    httpPort; the chain verifies with openssl against pebble's root
#    (/roots/0); the leaf names both names and holds the key of --key-out;
#    --key-out and the new account key are 0600; the challenge server is
#    gone afterwards;
#  - a second issue reuses the account key (not rewritten) and refuses an
#    existing --key-out;
#  - an http:// directory is refused (usage), the wrong TLS roots fail,
#    http-01 answered on the wrong port fails with the CA's reason and
#    writes no key;
#  - with pebble refusing every nonce (PEBBLE_WFE_NONCEREJECT=100) the client
#    retries a bounded number of times and then names badNonce.
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
# run WANT CMD...: runs CMD with stdout/stderr in $tmp/out, $tmp/err.
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
mode() { stat -c %a "$1"; }

pebble_start "$tmp/pebble"
chall_add_a www.cvmkit.test
w="$tmp/w"
mkdir -p "$w"
common=(--directory "$ACME_DIR" --ca-bundle "$ACME_TLS_CA" --account-key "$w/account.pem"
	--email ops@cvmkit.test --timeout 60)
http01=(--http-01 --http-port "$ACME_HTTP_PORT" --http-address 127.0.0.1)

# 1. Issue for two names.
if run 0 "$CVM" cert acme issue "${common[@]}" "${http01[@]}" --domain www.cvmkit.test \
	--domain api.cvmkit.test --key-out "$w/key.pem" --cert-out "$w/chain.pem"; then
	grep -q "made a new account key" "$tmp/err" && pass || fail "no word of the new account key: $(cat "$tmp/err")"
	grep -q "serving http-01 challenges on 127.0.0.1 port $ACME_HTTP_PORT" "$tmp/err" && pass ||
		fail "the http-01 server did not say where it listened: $(cat "$tmp/err")"
	grep -q "^issued: certificate $w/chain.pem for 2 name(s)" "$tmp/out" && pass ||
		fail "unexpected output: $(cat "$tmp/out")"
fi
[ "$(mode "$w/key.pem")" = 600 ] && pass || fail "key.pem has mode $(mode "$w/key.pem"), not 600"
[ "$(mode "$w/account.pem")" = 600 ] && pass || fail "account.pem has mode $(mode "$w/account.pem"), not 600"
if openssl verify -CAfile "$PEBBLE_ROOT" -untrusted "$w/chain.pem" "$w/chain.pem" >"$tmp/v" 2>&1; then
	pass
else
	fail "the chain does not verify against pebble's root: $(cat "$tmp/v")"
fi
# A certificate from another root must not verify (the check above means something).
if openssl verify -CAfile "$ACME_TLS_CA" -untrusted "$w/chain.pem" "$w/chain.pem" >/dev/null 2>&1; then
	fail "the chain verifies against an unrelated root"
else
	pass
fi
sans="$(openssl x509 -in "$w/chain.pem" -noout -ext subjectAltName 2>/dev/null)"
for n in www.cvmkit.test api.cvmkit.test; do
	grep -q "DNS:$n" <<<"$sans" && pass || fail "the certificate does not name $n: $sans"
done
if [ "$(openssl x509 -in "$w/chain.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)" = \
	"$(openssl pkey -in "$w/key.pem" -pubout -outform DER | sha256sum)" ]; then
	pass
else
	fail "the certificate's key is not the key of key.pem"
fi
if python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(2); s.connect(("127.0.0.1", int(sys.argv[1])))' \
	"$ACME_HTTP_PORT" 2>/dev/null; then
	fail "the http-01 server still listens on port $ACME_HTTP_PORT after issue"
else
	pass
fi

# 2. The account key is reused; an existing --key-out is refused.
acct_sum="$(sha256sum <"$w/account.pem")"
if run 0 "$CVM" cert acme issue "${common[@]}" "${http01[@]}" --domain www.cvmkit.test \
	--key-out "$w/key2.pem" --cert-out "$w/chain2.pem" --json; then
	grep -q "made a new account key" "$tmp/err" && fail "a second account key was made" || pass
	# --json: one object naming the files and the serial openssl reads
	want_serial="$(openssl x509 -in "$w/chain2.pem" -noout -serial | cut -d= -f2)"
	if python3 -c 'import json, sys
o = json.load(open(sys.argv[1]))
assert o["action"] == "issued" and o["cert"] == sys.argv[2] and o["key"] == sys.argv[3], o
assert o["serial"].upper() == sys.argv[4].upper() and o["not_after"] > 0, o' \
		"$tmp/out" "$w/chain2.pem" "$w/key2.pem" "$want_serial"; then
		pass
	else
		fail "--json output is wrong: $(cat "$tmp/out")"
	fi
fi
[ "$(sha256sum <"$w/account.pem")" = "$acct_sum" ] && pass || fail "the account key was rewritten"
key_sum="$(sha256sum <"$w/key.pem")"
if run 1 "$CVM" cert acme issue "${common[@]}" "${http01[@]}" --domain www.cvmkit.test \
	--key-out "$w/key.pem" --cert-out "$w/chain3.pem"; then
	grep -q "key-out '$w/key.pem' exists" "$tmp/err" && pass || fail "unexpected message: $(cat "$tmp/err")"
fi
[ "$(sha256sum <"$w/key.pem")" = "$key_sum" ] && pass || fail "an existing key file was replaced"

# 3. Refusals.
if run 2 "$CVM" cert acme issue --directory "http://127.0.0.1:1/dir" --account-key "$w/account.pem" \
	"${http01[@]}" --domain www.cvmkit.test --key-out "$w/k4.pem" --cert-out "$w/c4.pem"; then
	grep -q "not an https URL" "$tmp/err" && pass || fail "unexpected message: $(cat "$tmp/err")"
fi
if run 1 "$CVM" cert acme issue --directory "$ACME_DIR" --account-key "$w/account.pem" "${http01[@]}" \
	--domain www.cvmkit.test --key-out "$w/k5.pem" --cert-out "$w/c5.pem"; then
	grep -q "cannot reach $ACME_DIR" "$tmp/err" && pass || fail "unexpected message: $(cat "$tmp/err")"
fi
wrong_port="$(pebble_free_port)"
if run 1 "$CVM" cert acme issue "${common[@]}" --http-01 --http-port "$wrong_port" --http-address 127.0.0.1 \
	--domain fail.cvmkit.test --key-out "$w/k6.pem" --cert-out "$w/c6.pem"; then
	grep -q "the CA did not validate fail.cvmkit.test (authorization invalid): connection" "$tmp/err" && pass ||
		fail "unexpected message: $(cat "$tmp/err")"
fi
[ ! -e "$w/k6.pem" ] && [ ! -e "$w/c6.pem" ] && pass || fail "a failed issue left a key or certificate"
for bad in "--domain -bad.test" "--domain a..b" "--http-port 0" "--renew-part 3/2" "--force" "--dns-01-hook /bin/true"; do
	# shellcheck disable=SC2086 # split on purpose
	run 2 "$CVM" cert acme issue "${common[@]}" "${http01[@]}" --domain x.cvmkit.test $bad \
		--key-out "$w/k7.pem" --cert-out "$w/c7.pem" || true
done

# 4. badNonce: every nonce refused, a bounded number of retries, then a clear error.
pebble_stop
PEBBLE_NONCEREJECT=100 pebble_start "$tmp/pebble-nonce"
if run 1 "$CVM" cert acme issue --directory "$ACME_DIR" --ca-bundle "$ACME_TLS_CA" \
	--account-key "$w/account-n.pem" "${http01[@]}" --domain www.cvmkit.test --key-out "$w/k8.pem" \
	--cert-out "$w/c8.pem"; then
	[ "$(grep -c "refused the nonce (badNonce); retrying" "$tmp/err")" = 3 ] && pass ||
		fail "expected 3 badNonce retries: $(cat "$tmp/err")"
	grep -q "creating the account: the CA answered HTTP 400, badNonce" "$tmp/err" && pass ||
		fail "unexpected message: $(cat "$tmp/err")"
fi

echo "acme_http01: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]

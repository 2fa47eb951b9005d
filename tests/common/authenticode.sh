# shellcheck shell=bash
# ossl_init WORKDIR, then ossl_digest FILE: the SHA-384 Authenticode digest of
# FILE as osslsigncode (Debian package osslsigncode) computes it: an
# implementation independent of cvmkit's, for the measure tests. Needs a
# fail() function in the caller.
# osslsigncode 2.6 and later (bookworm-backports) have extract-data, which
# writes the digest of the file as it is; bookworm's 2.5 has not: there the
# file (signature removed) is signed with a throwaway key and `verify` prints
# the digest it calculates over the signed file, which covers the same bytes
# (osslsigncode pads the file to 8 bytes before the signature: the test's
# files are 8-byte aligned, checked below, so the padding adds nothing).
ossl_init() {
	work_ossl="$1"
	if osslsigncode --help 2>&1 | grep -q "extract-data"; then
		ossl_mode=extract-data
	else
		ossl_mode=sign-verify
		openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work_ossl/k.pem" -out "$work_ossl/c.pem" \
			-days 1 -subj /CN=cvmkit-test >/dev/null 2>&1 || fail "openssl cannot make a throwaway signing key"
	fi
	echo "osslsigncode: $(osslsigncode --version 2>&1 | head -n 1) ($ossl_mode)"
}
ossl_digest() {
	if [ "$ossl_mode" = extract-data ]; then
		osslsigncode extract-data -h sha384 -in "$1" -out "$work_ossl/data.der" >/dev/null
		python3 - "$work_ossl/data.der" <<'PY'
import sys
der = open(sys.argv[1], 'rb').read()
# the digest is the last OCTET STRING of 48 bytes (04 30 ...)
i = der.rfind(b'\x04\x30')
assert i >= 0 and i + 2 + 48 <= len(der), "no 48-byte digest in the data blob"
print(der[i + 2:i + 50].hex())
PY
		rm -f "$work_ossl/data.der"
		return
	fi
	[ $(($(stat -c %s "$1") % 8)) -eq 0 ] || fail "$1 is not 8-byte aligned: osslsigncode 2.5 would pad it"
	rm -f "$work_ossl/signed"
	osslsigncode remove-signature -in "$1" -out "$work_ossl/bare" >/dev/null 2>&1 || cp "$1" "$work_ossl/bare"
	osslsigncode sign -certs "$work_ossl/c.pem" -key "$work_ossl/k.pem" -h sha384 -in "$work_ossl/bare" \
		-out "$work_ossl/signed" >/dev/null || fail "osslsigncode sign failed on $1"
	osslsigncode verify -in "$work_ossl/signed" 2>/dev/null |
		sed -n 's/^Calculated message digest *: *\([0-9A-Fa-f]*\).*/\1/p' | head -n 1 | tr 'A-F' 'a-f'
	rm -f "$work_ossl/signed" "$work_ossl/bare"
}

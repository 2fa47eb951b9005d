# shellcheck shell=bash disable=SC2034 # variables for the script that sources this
# Sourced by tests/integration/acme_*.sh: a private ACME CA for one test.
#
#   pebble_start DIR   starts pebble-challtestsrv (mock DNS and its management
#                      API) and pebble (the ACME server, with a TLS
#                      certificate made here with openssl), both on 127.0.0.1
#                      at free ports, with files under DIR. It sets:
#       ACME_DIR          https://127.0.0.1:<port>/dir
#       ACME_TLS_CA       the CA of pebble's own TLS certificate (--ca-bundle)
#       ACME_HTTP_PORT    the port pebble's http-01 validation connects to
#       PEBBLE_MGMT       https://127.0.0.1:<port>, pebble's management API
#       CHALL_MGMT        http://127.0.0.1:<port>, challtestsrv's management API
#       PEBBLE_ROOT       DIR/pebble-root.pem, the root that issues (/roots/0)
#     Exits 1 (not 77) when pebble, pebble-challtestsrv, openssl, curl or
#     python3 is missing: scripts/setup.sh installs them.
#     PEBBLE_NONCEREJECT (default 0) is the percentage of good nonces pebble
#     refuses as badNonce.
#   pebble_stop        stops both (the caller's EXIT trap calls it).
#   chall_add_a NAME   makes NAME resolve to 127.0.0.1 in the mock DNS.

PEBBLE_PIDS=()

pebble_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pebble_stop() {
	local pid
	for pid in "${PEBBLE_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	PEBBLE_PIDS=()
}

pebble_start() {
	local dir="$1" tool dns mgmt listen pmgmt tls i
	for tool in pebble pebble-challtestsrv openssl curl python3; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "FAIL: $tool is missing: scripts/setup.sh installs it (Debian packages pebble, openssl," \
				"curl, python3)" >&2
			exit 1
		fi
	done
	mkdir -p "$dir"
	dns="$(pebble_free_port)"
	mgmt="$(pebble_free_port)"
	listen="$(pebble_free_port)"
	pmgmt="$(pebble_free_port)"
	tls="$(pebble_free_port)"
	ACME_HTTP_PORT="$(pebble_free_port)"

	# pebble's own TLS: a test CA and a certificate for 127.0.0.1.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=acme test TLS CA" \
		-keyout "$dir/tls-ca.key" -out "$dir/tls-ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign" 2>"$dir/openssl.log"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$dir/tls.key" -out "$dir/tls.csr" 2>>"$dir/openssl.log"
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$dir/tls.ext"
	openssl x509 -req -in "$dir/tls.csr" -CA "$dir/tls-ca.pem" -CAkey "$dir/tls-ca.key" -CAcreateserial \
		-days 2 -extfile "$dir/tls.ext" -out "$dir/tls.pem" 2>>"$dir/openssl.log"
	ACME_TLS_CA="$dir/tls-ca.pem"

	cat >"$dir/pebble.json" <<JSON
{"pebble": {"listenAddress": "127.0.0.1:$listen", "managementListenAddress": "127.0.0.1:$pmgmt",
 "certificate": "$dir/tls.pem", "privateKey": "$dir/tls.key", "httpPort": $ACME_HTTP_PORT,
 "tlsPort": $tls, "ocspResponderURL": "", "externalAccountBindingRequired": false}}
JSON
	pebble-challtestsrv -management "127.0.0.1:$mgmt" -dns01 "127.0.0.1:$dns" -http01 "" -https01 "" \
		-tlsalpn01 "" -defaultIPv4 127.0.0.1 -defaultIPv6 "" >"$dir/challtestsrv.log" 2>&1 &
	PEBBLE_PIDS+=($!)
	PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT="${PEBBLE_NONCEREJECT:-0}" \
		pebble -config "$dir/pebble.json" -dnsserver "127.0.0.1:$dns" >"$dir/pebble.log" 2>&1 &
	PEBBLE_PIDS+=($!)
	ACME_DIR="https://127.0.0.1:$listen/dir"
	PEBBLE_MGMT="https://127.0.0.1:$pmgmt"
	CHALL_MGMT="http://127.0.0.1:$mgmt"
	for i in $(seq 1 100); do
		if curl -sf --cacert "$ACME_TLS_CA" "$ACME_DIR" >/dev/null 2>&1 &&
			curl -sf -X POST -d '{"host":"probe.test","addresses":["127.0.0.1"]}' \
				"$CHALL_MGMT/add-a" >/dev/null 2>&1; then
			break
		fi
		if [ "$i" -eq 100 ]; then
			echo "FAIL: pebble or pebble-challtestsrv did not start within 10 s:" >&2
			tail -n 20 "$dir/pebble.log" "$dir/challtestsrv.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	PEBBLE_ROOT="$dir/pebble-root.pem"
	if ! curl -sf --cacert "$ACME_TLS_CA" "$PEBBLE_MGMT/roots/0" -o "$PEBBLE_ROOT"; then
		echo "FAIL: cannot fetch pebble's root from $PEBBLE_MGMT/roots/0" >&2
		exit 1
	fi
}

chall_add_a() {
	curl -sf -X POST -d "{\"host\":\"$1\",\"addresses\":[\"127.0.0.1\"]}" "$CHALL_MGMT/add-a" >/dev/null
}

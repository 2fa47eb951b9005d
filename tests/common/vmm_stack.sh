# shellcheck shell=bash
# The deploy stack of vm.vmm_e2e and scripts/bench-deploy.sh: a KMS in a
# simulated CVM, the app guest image, a test app (compose file, docker-save
# tarball, an environment sealed to the KMS's env key) and cvm-vmmd (dev,
# TCG) on the KMS's simulated platform.
#
# The caller sets bin (absolute), src and tmp, sources tests/common/kms.sh
# (fail, check, kms_*) and this file, and calls stack_cleanup from its EXIT
# trap.
#   stack_kms                   KMS: sets kport, platform (its simulated platform)
#   stack_image                 $tmp/images/app and $tmp/app-images/app.tar
#   stack_app                   $tmp/app-compose.json (kms_enabled, GREETING allowed), the
#                               plain $tmp/app.env and $tmp/app.env.sealed (cvm app
#                               encrypt-env --kms): sets compose_sha, app_id, greeting, kms_pub
#   stack_vmmd PORT...          cvm-vmmd whose port_range holds the PORTs: sets VMMD_PID,
#                               exports CVM_VMM_URL
#   stack_free_port             a free TCP port on 127.0.0.1
# Each returns 1 after printing why when it cannot do its part.
# shellcheck disable=SC2154 # bin, src, tmp: the caller's

VMMD_PID=""

stack_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stack_cleanup() {
	local f p
	if [ -n "$VMMD_PID" ]; then
		kill -TERM "$VMMD_PID" 2>/dev/null || true
		wait "$VMMD_PID" 2>/dev/null || true
	fi
	for f in "$tmp"/run/*/qemu.pid "$tmp"/run/*/swtpm.pid; do
		[ -f "$f" ] || continue
		p="$(cat "$f" 2>/dev/null || true)"
		[ -n "$p" ] && grep -qa "$tmp/run" "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p" 2>/dev/null
	done
	kms_cleanup
}

stack_kms() {
	kms_cvm kmsvm '{"manifest_version":2,"name":"kms","runner":"docker-compose","docker_compose_file":""}' ||
		{ echo "the KMS's simulated CVM did not start" >&2; return 1; }
	kms_node kms1 kmsvm kmsvm $'[auth]\ntype = dev' || { echo "cvm-kmsd did not start" >&2; return 1; }
	kport="$(cat "$tmp/kms1/port")"
	platform="$tmp/kmsvm/sim.pristine"
}

stack_image() {
	mkdir -p "$tmp/images" "$tmp/app-images" "$tmp/run"
	"$bin/cvm" -q image build "$tmp/images/app" --app-runtime >/dev/null ||
		{ echo "cvm image build --app-runtime failed" >&2; return 1; }
	python3 "$src/tests/common/mk-docker-image.py" "$tmp/app-images/app.tar" >/dev/null ||
		{ echo "mk-docker-image.py failed" >&2; return 1; }
}

stack_app() {
	python3 "$src/tests/common/test-app-compose.py" "$tmp/app-compose.json" vmm-e2e-app kms ||
		{ echo "test-app-compose.py failed" >&2; return 1; }
	compose_sha="$(sha256sum "$tmp/app-compose.json" | cut -c1-64)"
	app_id="${compose_sha:0:40}"
	# The KMS's k256 public key as its bootstrap attestation names it (what
	# a deployer pins after `cvm kms bootstrap-info verify`).
	kms_pub="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["k256_pubkey"])' \
		"$tmp/kms1/roots/epoch-0/bootstrap-info.json")" ||
		{ echo "the KMS's bootstrap-info.json names no k256_pubkey" >&2; return 1; }
	greeting="hello-from-the-kms-$RANDOM"
	printf 'GREETING=%s\nNOT_ALLOWED=secret\n' "$greeting" >"$tmp/app.env"
	"$bin/cvm" app encrypt-env --kms "https://127.0.0.1:$kport" --app-id "$app_id" --kms-pubkey "$kms_pub" \
		--out "$tmp/app.env.sealed" "$tmp/app.env" 2>"$tmp/encrypt.err" ||
		{ echo "cvm app encrypt-env --kms: $(cat "$tmp/encrypt.err")" >&2; return 1; }
}

stack_vmmd() {
	local lo=65535 hi=0 p
	for p in "$@"; do
		[ "$p" -lt "$lo" ] && lo="$p"
		[ "$p" -gt "$hi" ] && hi="$p"
	done
	cat >"$tmp/vmmd.conf" <<EOF
[vmm]
listen = 127.0.0.1:0
run_dir = $tmp/run
image_dir = $tmp/images
app_image_dir = $tmp/app-images
sim_platform = $platform
kms_urls = https://127.0.0.1:$kport
accel = tcg
stop_timeout = 60
[cvm]
kms_urls = https://10.0.2.2:$kport
port_range = $lo-$hi
max_memory_mb = 4096
EOF
	"$bin/cvm-vmmd" -c "$tmp/vmmd.conf" --port-file "$tmp/vmmd.port" >"$tmp/vmmd.log" 2>&1 &
	VMMD_PID=$!
	kms_wait "$tmp/vmmd.port" cvm-vmmd "$VMMD_PID" "$tmp/vmmd.log" || return 1
	CVM_VMM_URL="http://127.0.0.1:$(cat "$tmp/vmmd.port")"
	export CVM_VMM_URL
}

#!/usr/bin/env bash
# `cvm vm` against a real cvm-vmmd (on TCP, then on a unix socket with a
# token): deploy (stopped), ls (table, -v, --json), images, upgrade, logs,
# start and stop (a real QEMU under TCG, paused), rm; usage and daemon
# errors give exit codes 2 and 1 with the daemon's message.
set -euo pipefail
src="${CVM_SOURCE_DIR:?}"
# shellcheck source=tests/common/vmmd.sh
. "$src/tests/common/vmmd.sh"
vmmd_setup cli_vm
ovmf=""
for f in /usr/share/ovmf/OVMF.fd /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_CODE.fd; do
	[ -r "$f" ] && { ovmf="$f"; break; }
done
[ -n "$ovmf" ] && ln -sf "$ovmf" "$T/img/dev0/ovmf.fd"
vmmd_start
export CVM_VMM_URL="http://127.0.0.1:$PORT"
cvm="$bin/cvm"
printf '{"manifest_version":2,"name":"web","runner":"docker-compose","docker_compose_file":"services: {}"}' >"$T/compose.json"
printf '\x01\x02\x03' >"$T/env.bin"

id="$("$cvm" vm deploy --name web --image dev0 --compose "$T/compose.json" --vcpu 2 --memory 256 --disk 2 \
	--port tcp:21010:80 --port udp:127.0.0.1:21011:53 --encrypted-env "$T/env.bin" --kms-url https://kms:8000 --stopped)"
[[ "$id" =~ ^[0-9a-f-]{36}$ ]] || fail "deploy printed '$id'"
cmp -s "$T/compose.json" "$T/run/$id/shared/app-compose.json" || fail "deploy did not send the compose file's bytes"
cmp -s "$T/env.bin" "$T/run/$id/shared/.encrypted-env" || fail "deploy did not send the encrypted env"
"$cvm" vm ls >"$T/ls"
grep -q "^$id  web .* stopped" "$T/ls" || fail "ls: $(cat "$T/ls")"
"$cvm" vm ls -v >"$T/ls"
grep -q 'image dev0, 2 vcpu, 256 MB, 2 GB disk, cid 1000' "$T/ls" && grep -q 'port udp 21011 -> 53' "$T/ls" ||
	fail "ls -v: $(cat "$T/ls")"
"$cvm" vm ls --json | jq -e --arg id "$id" '.vms[0].id == $id and .total == 1' >/dev/null || fail "ls --json"
"$cvm" vm images | grep -q '^dev0 .* 0.1.0 (dev)' || fail "images"

rc=0
"$cvm" vm deploy --name web --image dev0 --compose "$T/compose.json" --disk 1 --stopped 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'a VM named web already exists' "$T/err" || fail "duplicate deploy: rc $rc $(cat "$T/err")"
rc=0
"$cvm" vm deploy --name x --image dev0 --compose "$T/compose.json" --port tcp:80 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q 'is not tcp:' "$T/err" || fail "bad --port: rc $rc"
rc=0
"$cvm" vm deploy --name x --image dev0 --compose "$T/compose.json" --vcpu 99 --disk 1 --stopped 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'max_vcpu' "$T/err" || fail "--vcpu 99: rc $rc $(cat "$T/err")"
rc=0
"$cvm" vm start 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "start without an id: rc $rc"
rc=0
"$cvm" vm --url http://127.0.0.1:1 ls 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'cannot reach cvm-vmmd' "$T/err" || fail "unreachable daemon: rc $rc $(cat "$T/err")"

printf '{"manifest_version":2,"name":"web","version":2}' >"$T/compose2.json"
"$cvm" vm upgrade web --compose "$T/compose2.json" || fail "upgrade"
cmp -s "$T/compose2.json" "$T/run/$id/shared/app-compose.json" || fail "upgrade did not write the compose file"
printf 'one\ntwo\nthree\n' >"$T/run/$id/serial.log"
[ "$("$cvm" vm logs web -n 2)" = "$(printf 'two\nthree')" ] || fail "logs -n 2"
"$cvm" vm logs web -f >"$T/follow" &
fpid=$!
sleep 0.7
printf 'four\n' >>"$T/run/$id/serial.log"
sleep 1
kill "$fpid" 2>/dev/null || true
wait "$fpid" 2>/dev/null || true
grep -q '^four$' "$T/follow" && grep -q '^one$' "$T/follow" || fail "logs -f printed: $(cat "$T/follow")"
rc=0
"$cvm" vm logs nosuch 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'HTTP 404' "$T/err" || fail "logs of no VM: rc $rc $(cat "$T/err")"

if [ -n "$ovmf" ] && command -v qemu-system-x86_64 >/dev/null && command -v swtpm >/dev/null; then
	"$cvm" vm start web || fail "start"
	"$cvm" vm ls | grep -q ' running ' || fail "not running after start: $("$cvm" vm ls)"
	rc=0
	"$cvm" vm rm web 2>"$T/err" || rc=$?
	[ "$rc" = 1 ] && grep -q 'stop it first' "$T/err" || fail "rm of a running VM: rc $rc"
	"$cvm" vm stop -f web || fail "stop -f"
	"$cvm" vm ls | grep -q ' stopped ' || fail "not stopped after stop -f"
fi

# a unix socket and a token
vmmd_kill9
sed -i "s|^listen = .*|listen = unix:$T/vmm.sock|" "$T/vmmd.conf"
printf '[auth]\ntokens = t0ken\n' >>"$T/vmmd.conf"
"$bin/cvm-vmmd" -c "$T/vmmd.conf" >>"$T/vmmd.log" 2>&1 &
VMMD_PID=$!
for _ in $(seq 1 100); do [ -S "$T/vmm.sock" ] && break; sleep 0.05; done
rc=0
"$cvm" vm --url "unix:$T/vmm.sock" ls 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'HTTP 401' "$T/err" || fail "no token: rc $rc $(cat "$T/err")"
CVM_VMM_TOKEN=t0ken "$cvm" vm --url "unix:$T/vmm.sock" ls | grep -q "^$id" || fail "ls over the unix socket"
"$cvm" vm --url "unix:$T/vmm.sock" --token t0ken rm web || fail "rm"
[ ! -e "$T/run/$id" ] || fail "rm left the work dir"
echo "cli_vm: OK"

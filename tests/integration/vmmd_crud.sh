#!/usr/bin/env bash
# cvm-vmmd on a temp run_dir with a fake image dir: CreateVm (stopped) makes
# the work dir (the compose file's exact bytes, the data disk, sys-config),
# Status and GetInfo report it, every validation error is a 400 that names
# the problem, RemoveVm deletes row and directory; the Teepod./Vmm. prefixes
# and token auth work.
set -euo pipefail
src="${CVM_SOURCE_DIR:?}"
# shellcheck source=tests/common/vmmd.sh
. "$src/tests/common/vmmd.sh"
vmmd_setup vmmd_crud
vmmd_start

rpc CreateVm "$(create_body web ',"ports":[{"protocol":"tcp","host_port":21001,"vm_port":80}]')"
[ "$CODE" = 200 ] || fail "CreateVm: $CODE $(cat "$T/out")"
id="$(jq -r .id "$T/out")"
[[ "$id" =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]] || fail "id $id is not a UUID"
wd="$T/run/$id"
printf '{"manifest_version":2,"name":"web","runner":"docker-compose","docker_compose_file":"services: {}"}' | cmp -s - "$wd/shared/app-compose.json" ||
	fail "app-compose.json is not the exact bytes sent"
want_hash="$(printf '{"manifest_version":2,"name":"web","runner":"docker-compose","docker_compose_file":"services: {}"}' | sha256sum | cut -d' ' -f1)"
qemu-img info "$wd/hda.img" | grep -q 'file format: qcow2' || fail "hda.img is not qcow2"
qemu-img info "$wd/hda.img" | grep -q 'virtual size: 1 GiB' || fail "hda.img is not 1 GiB"
jq -e '.vm_config | fromjson | .cpu_count == 1 and .memory_size == 134217728' "$wd/shared/.sys-config.json" \
	>/dev/null || fail "sys-config's vm_config is wrong"
[ -f "$wd/vm.json" ] && [ -f "$wd/shared/.instance_info" ] || fail "work dir incomplete"
if command -v sqlite3 >/dev/null; then
	row="$(sqlite3 "$T/run/vmm.db" "SELECT state, cid, ports FROM vms WHERE id = '$id'")"
	[ "$row" = 'stopped|1000|[{"protocol":"tcp","host_port":21001,"vm_port":80,"host_address":""}]' ] ||
		fail "the database row: $row"
	[ "$(sqlite3 "$T/run/vmm.db" 'PRAGMA journal_mode')" = wal ] || fail "the database is not in WAL mode"
fi

rpc Status '{}'
[ "$CODE" = 200 ] || fail "Status: $CODE"
jq -e --arg id "$id" --arg h "$want_hash" '.total == 1 and .vms[0].id == $id and .vms[0].status == "stopped"
	and .vms[0].name == "web" and .vms[0].cid == 1000 and .vms[0].compose_hash == $h
	and .vms[0].app_id == $h[0:40] and .vms[0].configuration.ports[0].host_port == 21001' "$T/out" >/dev/null ||
	fail "Status: $(cat "$T/out")"
CODE="$(curl -s -o "$T/out" -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/prpc/Teepod.GetInfo?json" -d '{"id":"web"}')"
jq -e --arg id "$id" '.found == true and .info.id == $id' "$T/out" >/dev/null || fail "Teepod.GetInfo by name: $(cat "$T/out")"
CODE="$(curl -s -o "$T/out" -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/prpc/Vmm.GetComposeHash?json" -d '{"compose_file":"{\"manifest_version\":2,\"name\":\"web\",\"runner\":\"docker-compose\",\"docker_compose_file\":\"services: {}\"}"}')"
jq -e --arg h "$want_hash" '.hash == $h' "$T/out" >/dev/null || fail "Vmm.GetComposeHash: $(cat "$T/out")"
rpc GetMeta '{}'
jq -e '.resources == {"max_cvm_number":3,"max_allocable_vcpu":4,"max_allocable_memory_in_mb":2048}
	and .platform == "dev" and .port_range == {"from":21000,"to":21100}' "$T/out" >/dev/null || fail "GetMeta: $(cat "$T/out")"
rpc Version '{}'
jq -e '.version | test("^[0-9]+\\.[0-9]+")' "$T/out" >/dev/null || fail "Version: $(cat "$T/out")"
rpc ListImages '{}'
jq -e '.images == [{"name":"dev0","description":"","version":"0.1.0","is_dev":true}]' "$T/out" >/dev/null ||
	fail "ListImages: $(cat "$T/out")"

# Validation: each refusal is a 400/404/409 whose message names the problem.
expect() { # method body status substring
	rpc "$1" "$2"
	[ "$CODE" = "$3" ] || fail "$1 $2: status $CODE, expected $3: $(cat "$T/out")"
	grep -q -- "$4" "$T/out" || fail "$1 $2: message $(cat "$T/out") lacks '$4'"
}
expect CreateVm "$(create_body x ',"colour":1')" 400 'unknown field colour'
expect CreateVm "$(create_body web)" 400 'a VM named web already exists'
expect CreateVm "$(create_body x '' 0)" 400 'vcpu must be from 1 to 4'
expect CreateVm "$(create_body x '' 5)" 400 'max_vcpu'
expect CreateVm "$(create_body x '' 1 0)" 400 'memory must be from 1 to 2048'
expect CreateVm "$(create_body x '' 1 4096)" 400 'max_memory_mb'
expect CreateVm "$(create_body x '' 1 128 0)" 400 'disk_size must be from 1 to 8'
expect CreateVm "$(create_body x '' 1 128 9)" 400 'max_disk_gb'
expect CreateVm "$(create_body x '' 1 128 1 ../etc)" 400 'image must name an image'
expect CreateVm "$(create_body x '' 1 128 1 nosuch)" 400 'no image nosuch'
expect CreateVm "$(create_body x ',"ports":[{"protocol":"tcp","host_port":80,"vm_port":80}]')" 400 'outside \[cvm\] port_range 21000-21100'
expect CreateVm "$(create_body x ',"ports":[{"protocol":"tcp","host_port":21001,"vm_port":80}]')" 400 'already mapped by VM web'
expect CreateVm "$(create_body x ',"ports":[{"protocol":"sctp","host_port":21002,"vm_port":80}]')" 400 'tcp or udp'
expect CreateVm "$(create_body x ',"ports":[{"host_port":21002,"vm_port":80,"extra":1}]')" 400 'unknown field extra'
expect CreateVm "$(create_body x ',"gpus":{"gpus":[{"slot":"01:00.0"}]}')" 400 'gpus is not supported'
expect CreateVm "$(create_body x ',"app_id":"abcd"')" 400 'app_id must be 20 bytes'
expect CreateVm '{"name":"bad name","image":"dev0","compose_file":"{}","vcpu":1,"memory":128,"disk_size":1}' 400 'name must be'
expect CreateVm '{"name":"x","image":"dev0","compose_file":"[1]","vcpu":1,"memory":128,"disk_size":1,"stopped":true}' 400 'must be one JSON object'
expect CreateVm '{"name":"x","image":"dev0","compose_file":"{\"manifest_version\":2,\"name\":\"x\",\"runner\":\"docker-compose\",\"docker_compose_file\":\"a\",\"kms_enable\":true}","vcpu":1,"memory":128,"disk_size":1,"stopped":true}' 400 'is not an app-compose key (did you mean'
expect CreateVm '{"name":"x","image":"dev0","vcpu":1,"memory":128,"disk_size":1,"stopped":true}' 400 'compose_file is empty'
expect StartVm '{"id":"nosuch"}' 404 'no VM nosuch'
expect StartVm '{}' 400 'field id is missing'
expect StopVm '{"id":"web"}' 409 'is not running'
expect UpgradeApp '{"id":"web","vcpu":2}' 400 'not supported by UpgradeApp'
expect ResizeVm '{"id":"web","vcpu":9}' 400 'max_vcpu'
expect ResizeVm '{"id":"web","disk_size":0}' 400 'disk_size'
expect Status '{"bogus":true}' 400 'unknown field bogus'
expect NoSuchMethod '{}' 400 'Service not found'
# none of the refused creations left a row or a directory
rpc Status '{}'
jq -e '.total == 1' "$T/out" >/dev/null || fail "a refused CreateVm left a VM: $(cat "$T/out")"
# one VM dir (sim-platform, the dev simulated platform, is the daemon's own)
[ "$(find "$T/run" -mindepth 1 -maxdepth 1 -type d ! -name sim-platform | wc -l)" = 1 ] || fail "a refused CreateVm left a directory: $(ls -a "$T/run")"

# The CID pool (3 CIDs): two more VMs fit, the fourth is refused.
rpc CreateVm "$(create_body b)"
[ "$CODE" = 200 ] || fail "CreateVm b: $(cat "$T/out")"
rpc CreateVm "$(create_body c)"
[ "$CODE" = 200 ] || fail "CreateVm c: $(cat "$T/out")"
expect CreateVm "$(create_body d)" 400 'CID pool is exhausted'
rpc Status '{}'
jq -e '[.vms[].cid] == [1000, 1001, 1002]' "$T/out" >/dev/null || fail "CIDs: $(cat "$T/out")"

# UpgradeApp on a stopped VM: new compose bytes and hash.
rpc UpgradeApp '{"id":"web","compose_file":"{\"manifest_version\":2,\"name\":\"web2\",\"runner\":\"docker-compose\",\"docker_compose_file\":\"services: {}\"}","encrypted_env":"00ff"}'
[ "$CODE" = 200 ] || fail "UpgradeApp: $(cat "$T/out")"
printf '{"manifest_version":2,"name":"web2","runner":"docker-compose","docker_compose_file":"services: {}"}' | cmp -s - "$wd/shared/app-compose.json" || fail "UpgradeApp did not write the compose file"
[ "$(od -An -tx1 "$wd/shared/.encrypted-env" | tr -d ' \n')" = 00ff ] || fail "UpgradeApp did not write .encrypted-env"
# the app id stays the first compose's (want_hash's first 20 bytes): the
# upgraded app keeps its identity, keys and data disk
jq -e --arg id "${want_hash:0:40}" '.app_id == $id' "$wd/shared/.instance_info" >/dev/null ||
	fail ".instance_info after UpgradeApp: $(cat "$wd/shared/.instance_info"), expected app id ${want_hash:0:40}"
rpc GetInfo '{"id":"web"}'
jq -e --arg id "${want_hash:0:40}" '.info.app_id == $id' "$T/out" >/dev/null ||
	fail "GetInfo's app_id changed with UpgradeApp: $(head -c 300 "$T/out")"
rpc ResizeVm '{"id":"web","vcpu":2,"memory":256,"disk_size":2}'
[ "$CODE" = 200 ] || fail "ResizeVm: $(cat "$T/out")"
qemu-img info "$wd/hda.img" | grep -q 'virtual size: 2 GiB' || fail "ResizeVm did not grow the disk"
rpc GetInfo '{"id":"web"}'
jq -e '.info.configuration.vcpu == 2 and .info.configuration.memory == 256' "$T/out" >/dev/null || fail "ResizeVm: $(cat "$T/out")"

# /logs: the tail, and follow=1 streams what the log gains (chunked)
# until the client goes or the VM is removed.
printf 'boot 1\nboot 2\n' >"$wd/serial.log"
[ "$(curl -s "http://127.0.0.1:$PORT/logs?id=web&lines=1")" = "boot 2" ] || fail "/logs?lines=1"
curl -sN --max-time 3 "http://127.0.0.1:$PORT/logs?id=web&follow=1" >/dev/null &
gone=$!
sleep 0.5
kill "$gone" 2>/dev/null || true # a follower that goes away
wait "$gone" 2>/dev/null || true
curl -sN --max-time 10 -D "$T/follow.hdr" "http://127.0.0.1:$PORT/logs?id=web&lines=1&follow=1" >"$T/follow" &
fpid=$!
sleep 0.7
printf 'boot 3\n' >>"$wd/serial.log"
sleep 1

# RemoveVm: row and directory go (and the follower's stream ends).
rpc RemoveVm "{\"id\":\"$id\"}"
[ "$CODE" = 200 ] || fail "RemoveVm: $CODE $(cat "$T/out")"
frc=0
wait "$fpid" || frc=$?
[ "$frc" = 0 ] || fail "the follower did not end cleanly with the VM's removal (curl exit $frc)"
[ "$(cat "$T/follow")" = "$(printf 'boot 2\nboot 3')" ] || fail "follow streamed: $(cat "$T/follow")"
grep -qi '^transfer-encoding: chunked' "$T/follow.hdr" || fail "follow is not chunked: $(cat "$T/follow.hdr")"
[ ! -e "$wd" ] || fail "RemoveVm left $wd"
rpc GetInfo "{\"id\":\"$id\"}"
jq -e '.found == false' "$T/out" >/dev/null || fail "GetInfo after RemoveVm: $(cat "$T/out")"

# Config: unknown keys are refused with the line; tokens guard every request.
printf '[vmm]\nlisten = 127.0.0.1:0\nrun_dir = %s/run\ncolour = blue\n' "$T" >"$T/bad.conf"
rc=0
"$bin/cvm-vmmd" -c "$T/bad.conf" 2>"$T/bad.err" || rc=$?
[ "$rc" = 2 ] && grep -q 'line 4: unknown key \[vmm\] colour' "$T/bad.err" || fail "unknown config key: rc $rc $(cat "$T/bad.err")"
vmmd_kill9
printf '[auth]\ntokens = s3cret,other\n' >>"$T/vmmd.conf"
vmmd_start
rpc Status '{}'
[ "$CODE" = 401 ] || fail "no token: $CODE"
CODE="$(curl -s -o "$T/out" -w '%{http_code}' -X POST -H 'Authorization: Bearer s3cret' "http://127.0.0.1:$PORT/prpc/Status?json" -d '{}')"
[ "$CODE" = 200 ] || fail "Bearer token: $CODE"
CODE="$(curl -s -o "$T/out" -w '%{http_code}' -X POST -H 'X-Admin-Token: other' "http://127.0.0.1:$PORT/prpc/Status?json" -d '{}')"
[ "$CODE" = 200 ] || fail "X-Admin-Token: $CODE"
CODE="$(curl -s -o "$T/out" -w '%{http_code}' -X POST -H 'X-Admin-Token: wrong' "http://127.0.0.1:$PORT/prpc/Status?json" -d '{}')"
[ "$CODE" = 401 ] || fail "wrong token: $CODE"
CODE="$(curl -s -o "$T/out" -w '%{http_code}' "http://127.0.0.1:$PORT/prpc/Status?token=s3cret")"
[ "$CODE" = 200 ] || fail "?token= on GET: $CODE"
echo "vmmd_crud: OK"

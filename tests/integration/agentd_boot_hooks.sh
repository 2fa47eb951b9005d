#!/usr/bin/env bash
# cvm-agentd's [boot] hooks (issue 14, docs/daemons/cvm-agentd.md "[boot]"),
# on the simulated TEE with the local key provider; the hooks are test
# scripts:
#  - the storage hook runs after key-provider with the disk key file (mode
#    0600, 64 hex digits) as its argument and in CVM_DISK_KEY_FILE; what it
#    prints becomes storage-fs; RTMR3's log reads ... key-provider,
#    storage-fs "ext4", system-ready; the channel gets boot-progress lines
#    and instance-info (app id, instance id, compose hash);
#  - the hooks get no descriptor of the agent's beyond stdin/out/err;
#  - the app hook runs once the agent serves, after the storage hook; a
#    restart of the agent within the boot runs neither again;
#  - a storage hook that fails, outlives hook_timeout (its children are
#    killed too) or prints no file system name: the agent does not start,
#    boot-error on the channel with the hook's stderr tail, no storage-fs
#    and no system-ready in the log, the app hook never runs;
#  - an app hook that fails: boot-error on the channel, the agent serves on;
#  - storage_hook without [kms] disk_key_file is refused, naming the key.
# shellcheck disable=SC2015,SC2016 # "check && pass || fail": pass cannot fail; the hooks' bodies expand in the hooks
set -uo pipefail

bin="${CVM_BIN:?CVM_BIN must point at build/bin}"
command -v python3 >/dev/null 2>&1 || { echo "agentd_boot_hooks: FAIL: python3 is missing (scripts/setup.sh installs it)"; exit 1; }
for t in cvm cvm-agentd; do
	[ -x "$bin/$t" ] || { echo "agentd_boot_hooks: FAIL: $bin/$t is missing (build it first)"; exit 1; }
done
bin="$(cd "$bin" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cvm-boot-hooks.XXXXXX")"
pid=""
stop_agent() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
	fi
	[ -n "$pid" ] && wait "$pid" 2>/dev/null
	pid=""
}
cleanup() {
	stop_agent
	[ -s "$tmp/sleeper.pid" ] && kill -9 "$(cat "$tmp/sleeper.pid")" 2>/dev/null
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

# setup CASE STORAGE_HOOK_BODY APP_HOOK_BODY [EXTRA_BOOT_LINES]: a fresh
# simulated TEE and config in $tmp/CASE.
setup() {
	local d="$tmp/$1"
	mkdir -p "$d"
	"$bin/cvm" sim init "$d/sim" >/dev/null || { echo "agentd_boot_hooks: FAIL: cvm sim init"; exit 1; }
	printf '#!/bin/sh\n%s\n' "$2" >"$d/storage.sh"
	printf '#!/bin/sh\n%s\n' "$3" >"$d/app.sh"
	chmod 0755 "$d/storage.sh" "$d/app.sh"
	: >"$d/channel"
	cat >"$d/agent.conf" <<CONF
[agent]
simulator = $d/sim
[dstack]
listen = unix:$d/d.sock
[kms]
disk_key_file = $d/disk.key
[boot]
storage_hook = $d/storage.sh
app_hook = $d/app.sh
channel = $d/channel
${4:-}
CONF
}

# run_agent CASE: starts the agent; 0 when it serves, 1 when it ended.
run_agent() {
	local d="$tmp/$1" _
	"$bin/cvm-agentd" -c "$d/agent.conf" >>"$d/agent.log" 2>&1 &
	pid=$!
	for _ in $(seq 150); do
		[ -S "$d/d.sock" ] && grep -q 'event=start ' "$d/agent.log" && return 0
		kill -0 "$pid" 2>/dev/null || { wait "$pid"; pid=""; return 1; }
		sleep 0.1
	done
	echo "agentd_boot_hooks: FAIL: the agent neither started nor ended in 15 s" >&2
	cat "$d/agent.log" >&2
	exit 1
}

# events CASE: the runtime log's event names, one a line ("name payload").
events() {
	python3 - "$(find "$tmp/$1/sim" -name runtime_events.log | head -1)" <<'PY'
import base64, json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    p = e.get("payload", "")
    try:
        p = base64.b64decode(p).decode() if e["event"] == "storage-fs" else ""
    except Exception:
        p = "?"
    print(e["event"], p)
PY
}

# channel_ok CASE: every line is {"event":...,"payload":"..."} with a known event.
channel_ok() {
	python3 - "$tmp/$1/channel" <<'PY'
import hashlib, json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines, "empty channel"
for l in lines:
    o = json.loads(l)
    assert list(o) == ["event", "payload"], l
    assert o["event"] in ("boot-progress", "boot-error", "instance-info"), l
    if o["event"] == "instance-info":
        p = o["payload"]
        assert sorted(p) == ["app_id", "app_name", "compose_hash", "instance_id", "instance_id_seed"], l
        assert len(bytes.fromhex(p["app_id"])) == 20 and len(bytes.fromhex(p["instance_id"])) == 20, l
        # the seed the host keeps for the next boot: instance_id = SHA-256(seed || app_id)[:20]
        seed = bytes.fromhex(p["instance_id_seed"])
        assert len(seed) == 20, l
        assert hashlib.sha256(seed + bytes.fromhex(p["app_id"])).digest()[:20].hex() == p["instance_id"], l
        assert len(bytes.fromhex(p["compose_hash"])) == 32, l
    else:
        assert isinstance(o["payload"], str), l
PY
}

wait_for() { # wait_for FILE PATTERN: up to 10 s
	local _
	for _ in $(seq 100); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# 1. The good boot.
setup ok '
d="$(dirname "$0")"
echo "arg=$1 env=$CVM_DISK_KEY_FILE channel=$CVM_BOOT_CHANNEL" >"$d/storage.ran"
stat -c %a "$1" >>"$d/storage.ran"
tr -d "0-9a-f" <"$1" | wc -c >>"$d/storage.ran"
wc -c <"$1" >>"$d/storage.ran"
echo run >>"$d/storage.count"
for f in /proc/$$/fd/*; do readlink "$f"; done >"$d/storage.fds"
echo ext4' '
d="$(dirname "$0")"
[ -e "$d/storage.ran" ] && echo after-storage >>"$d/app.ran" || echo before-storage >>"$d/app.ran"
for f in /proc/$$/fd/*; do readlink "$f"; done >"$d/app.fds"
echo "app starting" >&2'
if run_agent ok; then pass; else fail "the agent did not start with working hooks"; cat "$tmp/ok/agent.log" >&2; fi
d="$tmp/ok"
[ "$(head -1 "$d/storage.ran" 2>/dev/null)" = "arg=$d/disk.key env=$d/disk.key channel=$d/channel" ] && pass ||
	fail "the storage hook did not get the disk key file: $(head -1 "$d/storage.ran" 2>/dev/null)"
[ "$(sed -n 2,4p "$d/storage.ran" 2>/dev/null | tr '\n' ' ')" = "600 0 64 " ] && pass ||
	fail "the disk key file is not 64 hex digits, mode 0600, when the hook runs: $(sed -n 2,4p "$d/storage.ran" | tr '\n' ' ')"
order="$(events ok | awk '{print $1}' | grep -E '^(key-provider|storage-fs|system-ready)$' | tr '\n' ' ')"
[ "$order" = "key-provider storage-fs system-ready " ] && pass || fail "RTMR3's order: '$order'"
[ "$(events ok | awk '$1 == "storage-fs" {print $2}')" = ext4 ] && pass || fail "storage-fs does not carry ext4"
idx_ready="$(events ok | awk '$1 == "system-ready" {print NR}')"
idx_boot="$(events ok | awk '$1 == "boot-mr-done" {print NR}')"
[ -n "$idx_ready" ] && [ -n "$idx_boot" ] && [ "$idx_boot" -lt "$idx_ready" ] && pass || fail "boot-mr-done not before system-ready"
wait_for "$d/app.ran" after-storage && pass || fail "the app hook did not run after the storage hook: $(cat "$d/app.ran" 2>/dev/null)"
wait_for "$d/agent.log" 'event=boot_app hook=.* status=0' && pass || fail "the agent did not log the app hook's end"
# the hooks hold none of the agent's descriptors: only /dev/null, their
# pipes, their own script and the file they write
# shellcheck disable=SC2094 # the hook wrote the .fds file; this only reads it
for h in storage app; do
	while IFS= read -r tgt; do
		case "$tgt" in
		/dev/null | pipe:* | "$d/$h.sh" | "$d/$h.fds") ;;
		*) fail "the $h hook got a descriptor of the agent's: $tgt" ;;
		esac
	done <"$d/$h.fds"
	[ -s "$d/$h.fds" ] && pass || fail "the $h hook did not list its descriptors"
done
grep -q '"event":"boot-progress","payload":"storage: ready"' "$d/channel" && pass || fail "no storage boot-progress on the channel"
grep -q '"event":"boot-progress","payload":"app: starting"' "$d/channel" && pass || fail "no app boot-progress on the channel"
! grep -q boot-error "$d/channel" && pass || fail "a boot-error in a good boot: $(cat "$d/channel")"
channel_ok ok && pass || fail "the channel's lines are not the documented JSON"
grep -q '^{"event":"instance-info","payload":{"app_id":"[0-9a-f]\{40\}"' "$d/channel" && pass || fail "no instance-info on the channel"
# The agent restarts within the boot: no hook runs again, RTMR3 matches its log.
stop_agent
rm -f "$d/d.sock"
if run_agent ok; then pass; else fail "the agent did not start again"; fi
sleep 1
[ "$(wc -l <"$d/storage.count")" -eq 1 ] && pass || fail "the storage hook ran again after a restart"
[ "$(wc -l <"$d/app.ran")" -eq 1 ] && pass || fail "the app hook ran again after a restart"
! grep -q rtmr3_mismatch "$d/agent.log" && pass || fail "RTMR3 does not match the log after the hooks"
stop_agent

# check_refused CASE WHY: the agent ended, the channel names WHY, no
# storage-fs nor system-ready, the app hook did not run.
check_refused() {
	local c="$1" why="$2" d="$tmp/$1"
	if run_agent "$c"; then
		fail "$c: the agent started"
		stop_agent
		return
	fi
	pass
	grep -q "\"event\":\"boot-error\",\"payload\":\"[^\"]*$why" "$d/channel" && pass ||
		fail "$c: no boot-error naming '$why' on the channel: $(cat "$d/channel")"
	grep -q "start_failed.*$why" "$d/agent.log" && pass || fail "$c: the agent's log does not say '$why'"
	! grep -qE '^(storage-fs|system-ready) ' <<<"$(events "$c")" && pass || fail "$c: storage-fs or system-ready recorded"
	grep -q '^key-provider ' <<<"$(events "$c")" && pass || fail "$c: no key-provider before the storage hook"
	[ ! -e "$d/app.ran" ] && pass || fail "$c: the app hook ran"
	! grep -q '"instance-info"' "$d/channel" && pass || fail "$c: instance-info after a failed storage hook"
	channel_ok "$c" && pass || fail "$c: the channel's lines are not the documented JSON"
}

# 2. The storage hook fails: its stderr's tail is the reason.
setup fails 'echo "luks: the disk does not open with this key" >&2; exit 3' 'touch "$(dirname "$0")/app.ran"'
check_refused fails 'failed with exit status 3: luks: the disk does not open with this key'

# 3. It outlives hook_timeout: killed with its children.
setup slow 'sleep 60 & echo $! >'"$tmp"'/sleeper.pid; echo "waiting" >&2; wait' 'touch "$(dirname "$0")/app.ran"' 'hook_timeout = 2'
t0="$(date +%s)"
check_refused slow 'did not end within 2 s'
[ $(($(date +%s) - t0)) -lt 10 ] && pass || fail "the timed-out hook held the agent for $(($(date +%s) - t0)) s"
sleep 0.2
# a zombie counts as ended (whoever reaps orphans here may be slow to)
st="$(awk "{print \$3}" "/proc/$(cat "$tmp/sleeper.pid")/stat" 2>/dev/null)"
[ -z "$st" ] || [ "$st" = Z ] && pass || fail "the timed-out hook's child lives on"

# 4. It prints no file system name.
setup noname 'echo "ext4 and more"' 'touch "$(dirname "$0")/app.ran"'
check_refused noname 'printed no file system name'

# 5. storage_hook without the disk key file.
setup nokey 'echo ext4' 'touch "$(dirname "$0")/app.ran"'
sed -i '/^disk_key_file/d' "$tmp/nokey/agent.conf"
if run_agent nokey; then
	fail "nokey: the agent started"
	stop_agent
else
	grep -q 'storage_hook needs the disk key: set \[kms\] disk_key_file' "$tmp/nokey/agent.log" && pass ||
		fail "nokey: the refusal does not name disk_key_file: $(tail -2 "$tmp/nokey/agent.log")"
fi

# 6. The app hook fails: reported, the agent serves on.
setup appfail 'echo ext4' 'echo "compose: no such image" >&2; exit 2'
if run_agent appfail; then pass; else fail "appfail: the agent did not start"; fi
wait_for "$tmp/appfail/channel" '"event":"boot-error","payload":"the app hook [^"]* failed with exit status 2: compose: no such image"' &&
	pass || fail "appfail: no boot-error with the app hook's stderr: $(cat "$tmp/appfail/channel")"
kill -0 "$pid" 2>/dev/null && pass || fail "appfail: the agent ended"
grep -q '^system-ready ' <<<"$(events appfail)" && pass || fail "appfail: no system-ready"
stop_agent

echo "agentd_boot_hooks: $checks checks passed, $failures failed"
[ "$failures" -eq 0 ]

#!/usr/bin/env python3
"""Runs one shell command inside a guest booted by tests/common/vm.sh, through
the guest's command channel (its second serial port, a unix socket on the
host; docs/vm.md), and prints the command's output; exits with its status.

  vm_cmd.py SOCKET TIMEOUT_S COMMAND

The command is one line (no newline). The guest answers
"@@CVM-BEGIN TAG\n" OUTPUT "\n@@CVM-END TAG STATUS\n"; anything before the
begin marker (the answer to an earlier, abandoned command) is skipped.
Exit 124 on a timeout, 125 when the channel cannot be used."""
import os
import socket
import sys
import time


def main():
    if len(sys.argv) != 4:
        print("usage: vm_cmd.py SOCKET TIMEOUT_S COMMAND", file=sys.stderr)
        return 125
    path, timeout, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    if "\n" in cmd or "\r" in cmd:
        print("vm_cmd: the command must be one line", file=sys.stderr)
        return 125
    tag = os.urandom(8).hex()
    deadline = time.monotonic() + timeout
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        print(f"vm_cmd: cannot connect to {path}: {e}", file=sys.stderr)
        return 125
    s.sendall(f"{tag} {cmd}\n".encode())
    begin = f"@@CVM-BEGIN {tag}\n".encode()
    end = f"\n@@CVM-END {tag} ".encode()
    buf = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"vm_cmd: no answer within {timeout:g} s to: {cmd}", file=sys.stderr)
            return 124
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            print("vm_cmd: the guest closed the channel", file=sys.stderr)
            return 125
        buf += chunk
        b = buf.find(begin)
        if b < 0:
            continue
        e = buf.find(end, b + len(begin))
        if e < 0:
            continue
        nl = buf.find(b"\n", e + len(end))
        if nl < 0:
            continue
        sys.stdout.buffer.write(buf[b + len(begin):e])
        sys.stdout.flush()
        return int(buf[e + len(end):nl])


if __name__ == "__main__":
    sys.exit(main())

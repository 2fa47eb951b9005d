#!/usr/bin/env python3
"""Privilege separation check of cvm-kmsd: which processes hold the root keys.

usage: kms_memsearch.py ROOTS_DIR PID:all|none ...

Reads root-k256.key (raw scalar) and root-ca.key (its P-256 scalar) from
ROOTS_DIR and searches each process's readable memory for both. PID:all
must hold both (a control: the search works), PID:none neither. Prints
what is wrong and exits 1; exits 0 when every expectation holds.
"""
import re
import sys

from cryptography.hazmat.primitives import serialization


def holds(pid, needles):
    found = set()
    maps = open(f"/proc/{pid}/maps").read().splitlines()
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) r", line)
            if not m or "[vvar]" in line or "[vsyscall]" in line:
                continue
            a, b = int(m.group(1), 16), int(m.group(2), 16)
            if b - a > (1 << 30):  # a sanitizer's shadow or reserve, not data
                continue
            off = a  # in chunks that overlap by a needle's length
            while off < b:
                n = min(1 << 24, b - off)
                try:
                    mem.seek(off)
                    data = mem.read(n + 64 if off + n < b else n)
                except (OSError, ValueError):
                    break
                for k, v in needles.items():
                    if v in data:
                        found.add(k)
                off += n
    return found


def main():
    roots = sys.argv[1]
    k256 = open(roots + "/root-k256.key", "rb").read()
    ca = serialization.load_pem_private_key(open(roots + "/root-ca.key", "rb").read(), None)
    needles = {"root-k256": k256, "root-ca scalar": ca.private_numbers().private_value.to_bytes(32, "big")}
    ok = True
    for arg in sys.argv[2:]:
        pid, want = arg.split(":")
        found = holds(int(pid), needles)
        if want == "all" and found != set(needles):
            print(f"process {pid} should hold the roots but lacks {set(needles) - found} (the search is broken)",
                  file=sys.stderr)
            ok = False
        elif want == "none" and found:
            print(f"process {pid} holds {found}", file=sys.stderr)
            ok = False
    sys.exit(0 if ok else 1)


main()

#!/usr/bin/env python3
"""integration.measure_acpi_probe's check of a TPM event log against the
probe's blobs.

Usage: measure_acpi_evlog.py BINARY_BIOS_MEASUREMENTS PROBE_DIR

Reads a TCG2 crypto-agile event log (the guest's
/sys/kernel/security/tpm0/binary_bios_measurements) and finds its
EV_PLATFORM_CONFIG_FLAGS events (the ones OVMF logs for QEMU's ACPI blobs
when it measures them). With none, prints that OVMF measured no ACPI blob
and exits 0. With some, the first three must carry, in their SHA-256 bank,
the SHA-256 of PROBE_DIR's table-loader.bin, rsdp.bin and tables.bin in that
order (and in the SHA-384 bank, when the log has one, their SHA-384); else
exits 1 naming the event."""
import hashlib
import struct
import sys

EV_NO_ACTION = 0x03
EV_PLATFORM_CONFIG_FLAGS = 0x0A
SHA256, SHA384 = 0x000B, 0x000C


def events(data):
    off = 0
    _pcr, etype = struct.unpack_from("<II", data, off)
    off += 8 + 20
    (esize,) = struct.unpack_from("<I", data, off)
    off += 4
    spec = data[off:off + esize]
    off += esize
    if etype != EV_NO_ACTION or not spec.startswith(b"Spec ID Event03\0"):
        raise SystemExit("not a TCG2 crypto-agile event log")
    (nalg,) = struct.unpack_from("<I", spec, 24)
    sizes = {}
    for i in range(nalg):
        alg, size = struct.unpack_from("<HH", spec, 28 + 4 * i)
        sizes[alg] = size
    while off + 12 <= len(data):
        pcr, etype, count = struct.unpack_from("<III", data, off)
        off += 12
        digests = {}
        for _ in range(count):
            (alg,) = struct.unpack_from("<H", data, off)
            off += 2
            digests[alg] = data[off:off + sizes[alg]]
            off += sizes[alg]
        (esize,) = struct.unpack_from("<I", data, off)
        off += 4
        yield pcr, etype, digests, data[off:off + esize]
        off += esize


def main():
    log = open(sys.argv[1], "rb").read()
    blobs = [open("%s/%s" % (sys.argv[2], n), "rb").read()
             for n in ("table-loader.bin", "rsdp.bin", "tables.bin")]
    count = 0
    acpi = []
    for pcr, etype, digests, data in events(log):
        count += 1
        if etype == EV_PLATFORM_CONFIG_FLAGS:
            acpi.append((pcr, digests, data))
    if count < 5:
        raise SystemExit("the event log has only %d events: not OVMF's" % count)
    if not acpi:
        print("the TPM event log (%d events) has no EV_PLATFORM_CONFIG_FLAGS event: this OVMF "
              "does not measure QEMU's ACPI blobs without TDX (documented in "
              "docs/cli/cvm-measure.md)" % count)
        return
    if len(acpi) < 3:
        raise SystemExit("the log has %d EV_PLATFORM_CONFIG_FLAGS events, not 3" % len(acpi))
    for i, (blob, (pcr, digests, data)) in enumerate(zip(blobs, acpi)):
        if SHA256 in digests and digests[SHA256] != hashlib.sha256(blob).digest():
            raise SystemExit("event %d (PCR %d, %r): SHA-256 %s, the probe's blob has %s" % (
                i, pcr, data[:16], digests[SHA256].hex(), hashlib.sha256(blob).hexdigest()))
        if SHA384 in digests and digests[SHA384] != hashlib.sha384(blob).digest():
            raise SystemExit("event %d (PCR %d): SHA-384 differs from the probe's blob" % (i, pcr))
    print("the TPM event log's three ACPI events carry the probe's blobs' digests")


if __name__ == "__main__":
    main()

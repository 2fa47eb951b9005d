#!/usr/bin/env python3
"""mk-docker-image.py OUT.tar [--busybox PATH] [--tag NAME:TAG]

Writes a `docker save` tarball (manifest.json, the image config, one layer)
for the app guest's test (tests/vm/app_guest.sh): busybox from
busybox-static and /start.sh, which writes a page holding $GREETING and a
boot counter kept in the volume /state, then runs `httpd -f -p 8080`.
Python's standard library only; the same inputs give the same bytes (fixed
times and owners, sorted entries). Prints the image's config digest."""
import argparse
import hashlib
import io
import json
import sys
import tarfile

EPOCH = 1704067200  # 2024-01-01T00:00:00Z

START = b"""#!/bin/busybox sh
# the test app: a page with the environment's GREETING and a boot counter
# kept in the volume /state (it survives the VM's restarts: the volume is on
# the encrypted /data)
/bin/busybox mkdir -p /www /state
n=$(($(/bin/busybox cat /state/boots 2>/dev/null || echo 0) + 1))
echo "$n" >/state/boots
printf 'greeting: %s\\nboots: %s\\n' "${GREETING:-unset}" "$n" >/www/index.html
exec /bin/busybox httpd -f -p 8080 -h /www
"""


def tar_bytes(entries):
    """entries: (name, mode, data or None for a folder)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, mode, data in sorted(entries):
            info = tarfile.TarInfo(name)
            info.mtime = EPOCH
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--tag", default="cvmkit/test-app:1")
    a = ap.parse_args()
    with open(a.busybox, "rb") as f:
        busybox = f.read()
    layer = tar_bytes([
        ("bin", 0o755, None),
        ("bin/busybox", 0o755, busybox),
        ("start.sh", 0o755, START),
        ("tmp", 0o1777, None),
    ])
    layer_sha = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Entrypoint": ["/bin/busybox", "sh", "/start.sh"],
            "Env": ["PATH=/bin"],
            "ExposedPorts": {"8080/tcp": {}},
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer_sha]},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "tests/common/mk-docker-image.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    config_sha = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": config_sha + ".json", "RepoTags": [a.tag], "Layers": [layer_sha + "/layer.tar"]}]
    out = tar_bytes([
        (layer_sha, 0o755, None),
        (layer_sha + "/layer.tar", 0o644, layer),
        (config_sha + ".json", 0o644, config_bytes),
        ("manifest.json", 0o644, json.dumps(manifest, separators=(",", ":")).encode()),
    ])
    with open(a.out, "wb") as f:
        f.write(out)
    print("sha256:" + config_sha)
    return 0


if __name__ == "__main__":
    sys.exit(main())

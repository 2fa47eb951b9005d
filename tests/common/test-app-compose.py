#!/usr/bin/env python3
"""test-app-compose.py OUT NAME (kms|local)

Writes the app-compose.json of the test app (tests/common/mk-docker-image.py's
image: a page with $GREETING and a boot counter in the volume /state, on port
8080, with a compose healthcheck) with GREETING as its one allowed env name:
its keys from a KMS (kms_enabled) or from the local key provider (local).
Used by vm.app_guest and the deploy stack (tests/common/vmm_stack.sh)."""
import json
import sys

COMPOSE = """version: "3"
services:
  web:
    image: cvmkit/test-app:1
    environment:
      GREETING: "${GREETING:-unset}"
    ports:
      - "8080:8080"
    volumes:
      - state:/state
    healthcheck:
      test: ["CMD", "/bin/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 5s
      timeout: 3s
      retries: 3
volumes:
  state: {}
"""


def main():
    if len(sys.argv) != 4 or sys.argv[3] not in ("kms", "local"):
        sys.exit(__doc__)
    kms = sys.argv[3] == "kms"
    c = {"manifest_version": 2, "name": sys.argv[2], "runner": "docker-compose",
         "docker_compose_file": COMPOSE, "kms_enabled": kms, "gateway_enabled": False,
         "local_key_provider_enabled": not kms, "public_logs": True, "public_sysinfo": True,
         "allowed_envs": ["GREETING"], "no_instance_id": False}
    with open(sys.argv[1], "w") as f:
        json.dump(c, f, indent=2)


main()

# shellcheck shell=bash
# Sourced by the web UI tests: KMS roots (dstack's cert_dir layout) made as
# integration.kms_env_sdk makes them: the dstack simulator's KMS CA key from
# tests/vectors and the k256 root 01..20.
#   webui_kms_roots DIR   writes DIR/root-ca.key and DIR/root-k256.key (0600)
# shellcheck source=tests/common/vectors.sh
. "$(dirname "${BASH_SOURCE[0]}")/../common/vectors.sh"

webui_kms_roots() {
	vectors_require compat/kms/dstack-simulator/appkeys.json
	mkdir -p "$1"
	python3 - "$VECTORS/compat/kms/dstack-simulator/appkeys.json" "$1" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1]))
fd = os.open(os.path.join(sys.argv[2], "root-ca.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, d["key_provider"]["None"]["key"].encode())
os.close(fd)
fd = os.open(os.path.join(sys.argv[2], "root-k256.key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, bytes(range(1, 33)))
os.close(fd)
PY
}

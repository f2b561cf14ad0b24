#!/usr/bin/env bash
# Installs what is missing, builds Cairn (Release) and starts a single-node server on
# 127.0.0.1:2379 with the default data directory (./default.cairn). Extra arguments are passed
# to `cairn` (the same flags as etcd's).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target cairn
exec build/release/server/cmd/cairn \
  --listen-client-urls=http://127.0.0.1:2379 \
  --advertise-client-urls=http://127.0.0.1:2379 "$@"

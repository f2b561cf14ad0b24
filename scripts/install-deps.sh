#!/usr/bin/env bash
# Installs every Debian package Cairn's build and tests need, and unpacks the real etcd 3.4.23
# (server, client and its .proto sources) into a cache directory for comparison tests.
# The etcd-server package is never installed: its service would take port 2379.
# Idempotent; prints nothing when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libprotoc-dev
  libcpprest-dev libyaml-cpp-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  liblmdb-dev lmdb-utils libabsl-dev libcli11-dev libspdlog-dev libfmt-dev libssl-dev
  libcrypt-dev openssl
  clang-14 libclang-rt-14-dev libfuzzer-14-dev clang-format-14
  python3 python3-etcd3
)

sudo_cmd=()
if [ "$(id -u)" != 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The real etcd, unpacked, never installed.
cache="${CAIRN_CACHE_DIR:-$HOME/.cache/cairn}"
etcd_root="$cache/etcd-3.4.23"
if [ ! -x "$etcd_root/usr/bin/etcd" ] || [ ! -x "$etcd_root/usr/bin/etcdctl" ] ||
   [ ! -f "$etcd_root/usr/share/gocode/src/go.etcd.io/etcd/etcdserver/etcdserverpb/rpc.proto" ]; then
  echo "install-deps: unpacking etcd-server, etcd-client and golang-etcd-server-dev into $etcd_root"
  mkdir -p "$etcd_root" "$cache/debs"
  ( cd "$cache/debs" && apt-get download -qq etcd-server etcd-client golang-etcd-server-dev >/dev/null 2>&1 ) || {
    "${sudo_cmd[@]}" apt-get update -qq
    ( cd "$cache/debs" && apt-get download -qq etcd-server etcd-client golang-etcd-server-dev >/dev/null )
  }
  for deb in "$cache"/debs/etcd-server_*.deb "$cache"/debs/etcd-client_*.deb \
             "$cache"/debs/golang-etcd-server-dev_*.deb; do
    dpkg -x "$deb" "$etcd_root"
  done
fi

# promtool (rule checks and rule unit tests of the alerts in docs/monitoring/), from Debian's
# prometheus package, unpacked, never installed (its service would start a Prometheus server).
prom_root="$cache/prometheus"
if [ ! -x "$prom_root/usr/bin/promtool" ]; then
  echo "install-deps: unpacking prometheus (for promtool) into $prom_root"
  mkdir -p "$prom_root" "$cache/debs"
  ( cd "$cache/debs" && apt-get download -qq prometheus >/dev/null 2>&1 ) || {
    "${sudo_cmd[@]}" apt-get update -qq
    ( cd "$cache/debs" && apt-get download -qq prometheus >/dev/null )
  }
  dpkg -x "$cache"/debs/prometheus_*.deb "$prom_root"
fi

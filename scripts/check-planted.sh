#!/usr/bin/env bash
# Proves a checker can fail: builds Cairn with one planted bug compiled in and runs the tests
# that must catch it. Succeeds only if those tests FAIL (and were built and found).
#
#   scripts/check-planted.sh <BUG_NAME> <ctest regex> [build targets...]
#
# Example: scripts/check-planted.sh WAL_NO_FSYNC '^wal_crash\.' wal_crash_test
# The build directory is build/planted-<bug> (or $CAIRN_PLANTED_BUILD_DIR). Without targets,
# everything is built.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 <BUG_NAME> <ctest regex> [build targets...]" >&2
  exit 2
fi
bug=$1
regex=$2
shift 2
cd "$(dirname "$0")/.."
build=${CAIRN_PLANTED_BUILD_DIR:-build/planted-$(echo "$bug" | tr '[:upper:]' '[:lower:]')}

echo "== configure $build with CAIRN_PLANTED_BUG=$bug"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCAIRN_PLANTED_BUG="$bug" \
  -DCAIRN_BUILD_BENCHMARKS=OFF >/dev/null
# The planted bug must actually be compiled into something.
if ! grep -rqs "CAIRN_PLANTED_BUG_${bug}\b" server e2e ctl bench 2>/dev/null; then
  echo "!! no source mentions CAIRN_PLANTED_BUG_${bug}" >&2
  exit 2
fi
echo "== build ${*:-all}"
if [ $# -gt 0 ]; then
  cmake --build "$build" --target "$@" -j "$(nproc)"
else
  cmake --build "$build" -j "$(nproc)"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "== ctest -R '$regex' (these must fail)"
set +e
ctest --test-dir "$build" -R "$regex" --no-tests=error --output-on-failure 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if grep -q 'No tests were found' "$log"; then
  echo "!! no test matches '$regex'" >&2
  exit 2
fi
if grep -qE '_NOT_BUILT|Not Run' "$log"; then
  echo "!! some matching tests were not built; cannot judge" >&2
  exit 2
fi
if [ "$rc" = 0 ]; then
  echo "!! planted bug $bug went unnoticed: every test matching '$regex' passed" >&2
  exit 1
fi
echo "== ok: the tests caught planted bug $bug"

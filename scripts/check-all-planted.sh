#!/usr/bin/env bash
# Runs scripts/check-planted.sh for every planted bug in scripts/planted-bugs.txt, one after the
# other in one build directory (build/planted), and prints a line per bug. Fails if a bug goes
# unnoticed, if a switch in the sources is missing from the list, or if the list names a switch
# no source has.  Usage: scripts/check-all-planted.sh [NAME...]   (default: every bug)
set -uo pipefail
cd "$(dirname "$0")/.."
list=scripts/planted-bugs.txt
export CAIRN_PLANTED_BUILD_DIR=${CAIRN_PLANTED_BUILD_DIR:-build/planted}

in_sources=$(grep -rhoE 'CAIRN_PLANTED_BUG_[A-Z0-9_]+' server e2e proto ctl bench 2>/dev/null |
  sed 's/CAIRN_PLANTED_BUG_//' | sort -u)
in_list=$(grep -vE '^\s*(#|$)' "$list" | awk '{print $1}' | sort -u)
status=0
for b in $(comm -23 <(echo "$in_sources") <(echo "$in_list")); do
  echo "!! $b is planted in the sources but not listed in $list"
  status=1
done
for b in $(comm -13 <(echo "$in_sources") <(echo "$in_list")); do
  echo "!! $list lists $b, which no source plants"
  status=1
done

results=()
while read -r name regex targets; do
  case "$name" in '' | '#'*) continue ;; esac
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
  log=$(mktemp)
  start=$SECONDS
  # shellcheck disable=SC2086
  bash scripts/check-planted.sh "$name" "$regex" $targets >"$log" 2>&1
  rc=$?
  took=$((SECONDS - start))
  if [ "$rc" = 0 ]; then
    failed=$(grep -cE '^\s+[0-9]+ - .* \([^)]+\)$' "$log")
    results+=("caught     $name ($failed failing tests, ${took}s)")
  else
    results+=("NOT CAUGHT $name (exit $rc, ${took}s; log kept at $log)")
    status=1
    continue
  fi
  rm -f "$log"
done <"$list"
printf '%s\n' "${results[@]}"
exit $status

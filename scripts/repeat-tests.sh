#!/usr/bin/env bash
# Runs test suites again and again to find the ones that fail at random: a test that waits a
# fixed time instead of for an event, or measures between two points in time, passes on an
# idle machine and fails on a loaded one. Run it before a release (README, "Before a
# release"), on the trees scripts/test.sh built.
#
#   scripts/repeat-tests.sh [-n N] [--busy] [--tree DIR]... [-- CTEST_ARGS...]
#
#   -n N        repeat each test until it fails, at most N times (default 5)
#   --busy      keep one core busy with a spinning process while the suites run, as a
#               neighbour on a shared CI machine would
#   --tree DIR  a build tree to run in (default: build and build-asan, whichever exist)
#   CTEST_ARGS  which tests (default: -L "integration|slow" -LE fuzz)
#
# Stops at the first tree whose suites fail and exits with ctest's status; the failing
# test's output is printed (--output-on-failure).
set -euo pipefail
cd "$(dirname "$0")/.."

repeat=5
busy=0
trees=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n) repeat=$2; shift 2 ;;
    --busy) busy=1; shift ;;
    --tree) trees+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [-n N] [--busy] [--tree DIR]... [-- CTEST_ARGS...]" >&2; exit 2 ;;
  esac
done
selection=("$@")
[ ${#selection[@]} -gt 0 ] || selection=(-L "integration|slow" -LE fuzz)
if [ ${#trees[@]} -eq 0 ]; then
  for t in build build-asan; do [ -d "$t" ] && trees+=("$t"); done
fi
[ ${#trees[@]} -gt 0 ] || { echo "no build tree: run scripts/test.sh first" >&2; exit 2; }

spinner=
stop_spinner() { [ -z "$spinner" ] || kill "$spinner" 2>/dev/null || true; }
trap stop_spinner EXIT
if [ "$busy" = 1 ]; then
  sh -c 'while :; do :; done' &
  spinner=$!
  echo "== a spinning process ($spinner) keeps one core busy"
fi

for tree in "${trees[@]}"; do
  env=()
  case "$tree" in
    *asan*) env=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
                 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1) ;;
  esac
  echo "== $tree: ${selection[*]}, each until it fails, at most $repeat times"
  (cd "$tree" && env "${env[@]}" ctest --output-on-failure --timeout 900 -j2 \
     --repeat "until-fail:$repeat" "${selection[@]}")
done

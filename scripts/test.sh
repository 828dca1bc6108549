#!/usr/bin/env bash
# Installs the dependencies, builds wharf three ways with warnings as errors, and runs every
# test: unit, integration (real clients over loopback, the Debian package), slow (kill -9
# crash and restart), the sanitizer tree's unit and integration suites, and a short
# libFuzzer run.
#   build/          GCC, RelWithDebInfo (-O2 -g1), what the README's first command builds: the
#                   tests
#   build-asan/     clang, ASan + UBSan with libFuzzer's coverage (-O1): the unit and
#                   integration tests again, and the fuzz targets
#   build-release/  GCC, Release with CMake's default flags: what a packager builds (no tests)
# In the two test trees the tests' own code is built at -O0 (tests/CMakeLists.txt).
# Each step prints how long the script has run, so that a slow CI run shows where it went.
# A failing step stops the script (set -e), including a build running in the background:
# `wait` returns its status.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
step() { echo "== [$((SECONDS / 60))m$((SECONDS % 60))s] $*"; }

step "dependencies"
scripts/install-deps.sh --tests

# Line tables only (-g1) in the test trees, as in RelWithDebInfo's default (CMakeLists.txt): a
# backtrace or a sanitizer report needs no more.
step "build (GCC, RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWHARF_TESTS=ON -DWHARF_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

# The other trees build at the lowest CPU priority beside a test run: the tests wait on
# sockets, timers and fsync most of the time, so a build takes what they leave without
# slowing them. A build runs in its own process group (setsid), so that a failed test run,
# which ends the script, ends the build too; its output goes to a log, shown when it fails.
side_build=""
trap '[ -z "$side_build" ] || kill -- "-$side_build" 2>/dev/null || true' EXIT
start_side_build() {  # TREE: builds TREE (configured) into TREE/build.log
  setsid nice -n 19 cmake --build "$1" -j"$jobs" >"$1/build.log" 2>&1 &
  side_build=$!
}
finish_side_build() {  # TREE
  if ! wait "$side_build"; then
    cat "$1/build.log"
    return 1
  fi
  side_build=""
}

step "tests (RelWithDebInfo): unit, integration, slow; the ASan + UBSan tree (clang) builds beside them"
cmake -S . -B build-asan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DWHARF_SANITIZE=ON -DWHARF_FUZZ=ON -DWHARF_TESTS=ON -DWHARF_WERROR=ON >/dev/null
start_side_build build-asan
(cd build && ctest --output-on-failure --timeout 300 -j2 -LE fuzz)
step "build (ASan + UBSan): waiting for it"
finish_side_build build-asan

# Release with CMake's default flags (-O3) is what a packager builds first; GCC warns at -O3
# where it does not at -O2, so it builds here too, with warnings as errors (what runs only).
step "tests (ASan + UBSan): unit, integration; the Release tree (GCC, -O3) builds beside them"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DWHARF_WERROR=ON >/dev/null
start_side_build build-release
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure --timeout 300 -j2 -L "unit|integration" -LE "slow|fuzz|package")
step "build (Release): waiting for it"
finish_side_build build-release

step "fuzz (clang libFuzzer, short run)"
(cd build-asan && ctest --output-on-failure -j"$jobs" -L fuzz)
step "done"

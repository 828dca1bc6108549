#!/usr/bin/env bash
# Installs the dependencies, builds wharf four ways with warnings as errors, and runs every
# test: unit, integration (real clients over loopback, the Debian package), slow (kill -9
# crash and restart), a short libFuzzer run, and the sanitizer build's unit and integration
# suites.
#   build/          GCC, RelWithDebInfo (-O2 -g1): the tests
#   build-asan/     clang, ASan + UBSan: the unit and integration tests again
#   build-fuzz/     clang, libFuzzer targets
#   build-release/  GCC, Release with CMake's default flags: what a packager builds (no tests)
# A failing step stops the script (set -e), including a build running in the background:
# `wait` returns its status.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/install-deps.sh --tests

# Line tables only (-g1) in every tree, as in RelWithDebInfo's default (CMakeLists.txt): a
# backtrace or a sanitizer report needs no more.
echo "== build (GCC, RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWHARF_TESTS=ON -DWHARF_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

# The other trees build at the lowest CPU priority beside the test runs: those wait on
# sockets, timers and fsync most of the time, so the builds take what the tests leave
# without slowing them. A build runs in its own process group (setsid), so that a failed
# test run, which ends the script, ends the build too; its output goes to a log, shown when
# the build fails.
side_builds=()
trap 'for g in "${side_builds[@]}"; do kill -- "-$g" 2>/dev/null || true; done' EXIT
start_side_build() {  # LOG ARGS...
  local log=$1
  shift
  setsid nice -n 19 "$@" >"$log" 2>&1 &
  side_builds+=("$!")
}
finish_side_build() {  # LOG
  if ! wait "${side_builds[-1]}"; then
    cat "$1"
    return 1
  fi
}

echo "== tests (RelWithDebInfo): unit, integration, slow; the ASan + UBSan tree (clang) builds beside them"
cmake -S . -B build-asan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DWHARF_SANITIZE=ON -DWHARF_TESTS=ON -DWHARF_WERROR=ON >/dev/null
start_side_build build-asan/build.log cmake --build build-asan -j"$jobs"
(cd build && ctest --output-on-failure --timeout 300 -j2 -LE fuzz)
echo "== build (ASan + UBSan): waiting for it"
finish_side_build build-asan/build.log

echo "== tests (ASan + UBSan): unit, integration; the fuzz and Release trees build beside them"
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWHARF_FUZZ=ON \
  -DWHARF_TESTS=ON -DWHARF_WERROR=ON >/dev/null
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DWHARF_WERROR=ON >/dev/null
mkdir -p build-release
start_side_build build-release/side.log sh -c "cmake --build build-fuzz -j$jobs --target fuzz_mqtt_decode \
  fuzz_mqtt_connection fuzz_queue_command fuzz_cmq_request fuzz_peer_frames && cmake --build build-release -j$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure --timeout 300 -j2 -L "unit|integration" -LE "slow|fuzz|package")
echo "== build (fuzz, Release): waiting for them"
finish_side_build build-release/side.log

echo "== fuzz (clang libFuzzer, short run)"
(cd build-fuzz && ctest --output-on-failure -j"$jobs" -L fuzz)

#!/usr/bin/env bash
# Installs the dependencies, builds wharf twice (optimised, and with ASan+UBSan), and runs
# every test: unit, integration (real clients over loopback), slow (kill -9 crash and
# restart), a short libFuzzer run, and the sanitizer build's unit and integration suites.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/install-deps.sh

# Line tables only (-g1) in every tree: full debug info makes the Boost-heavy files ~25%
# slower to compile, and line tables are all a backtrace or a sanitizer report needs.
echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" >/dev/null
cmake --build build -j"$jobs"

echo "== tests (RelWithDebInfo): unit, integration, slow"
(cd build && ctest --output-on-failure --timeout 300 -j2 -LE fuzz)

echo "== build (ASan + UBSan)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1" -DWHARF_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"

echo "== tests (ASan + UBSan): unit, integration"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --output-on-failure --timeout 300 -j2 -L "unit|integration" -LE "slow|fuzz")

echo "== fuzz (clang libFuzzer, short run)"
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DWHARF_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_mqtt_decode fuzz_mqtt_connection fuzz_queue_command fuzz_cmq_request
(cd build-fuzz && ctest --output-on-failure -L fuzz)

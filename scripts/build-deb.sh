#!/usr/bin/env bash
# Builds wharf's Debian package: a Release tree of what runs (no tests) in build-deb/, then
# cpack. Prints the path of the .deb. Install it with `apt install ./build-deb/wharf_*.deb`
# (or dpkg -i). Needs the build dependencies (scripts/install-deps.sh) and dpkg-dev.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-deb -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-deb -j"$(nproc)"
(cd build-deb && cpack >/dev/null)
ls build-deb/wharf_*.deb

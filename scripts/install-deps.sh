#!/usr/bin/env bash
# Installs every build, run and test dependency of wharf from Debian 12 (bookworm)
# packages. Run as root on a fresh machine. Idempotent.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang libclang-rt-14-dev
  # libraries (Boost 1.81: 1.74 lacks JSON/URL and its Asio coroutines fail with g++ 12)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev librocksdb-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libpaho-mqttpp-dev libpaho-mqtt-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  mosquitto mosquitto-clients python3 python3-paho-mqtt openssl procps iproute2
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

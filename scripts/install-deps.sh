#!/usr/bin/env bash
# Installs wharf's dependencies from Debian 12 (bookworm) packages. Run as root. Idempotent.
#
#   scripts/install-deps.sh           what building and running wharf needs
#   scripts/install-deps.sh --tests   that, and what the test suites and benchmarks need
#
# The test tools stay out of a user's install: Debian's mosquitto package starts a broker
# on port 1883 (wharf's default) where systemd runs, and prometheus (for promtool) a server.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config
  # libraries (Boost 1.81: 1.74 lacks JSON/URL and its Asio coroutines fail with g++ 12)
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev librocksdb-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libpaho-mqttpp-dev libpaho-mqtt-dev
  # to try it: MQTT clients (mosquitto_pub, mosquitto_sub), a CMQ client (python3)
  mosquitto-clients python3
)
test_packages=(
  # the sanitizer and fuzz trees (clang), unit tests and benchmarks
  clang libclang-rt-14-dev libgtest-dev libgmock-dev googletest libbenchmark-dev
  # integration tests: real brokers and clients, certificates, network namespaces, the
  # Debian package (dpkg-dev, systemd-analyze), Prometheus's promtool
  mosquitto python3-paho-mqtt openssl procps iproute2 dpkg-dev systemd prometheus
)
case "${1:-}" in
  --tests) packages+=("${test_packages[@]}") ;;
  "") ;;
  *) echo "usage: $0 [--tests]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Packages must not start their services here (mosquitto on 1883, prometheus): the tests
  # start what they need on ports of their own. policy-rc.d is how Debian says so.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

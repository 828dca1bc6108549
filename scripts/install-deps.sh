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
  libssl-dev librocksdb-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libjwt-dev
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

# libraft (replication) at 0.22 comes from bookworm-backports: bookworm's own 0.15 has known
# safety bugs and must never be linked. The suite is added from the machine's own Debian
# source (the same mirror and keyring), so no host name is written here.
backports_list=/etc/apt/sources.list.d/wharf-bookworm-backports.sources
add_backports_source() {
  if grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then return; fi
  local uri="" keyring=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    # deb822: the stanza whose Suites name bookworm (not bookworm-security).
    read -r uri keyring < <(awk '
      /^[[:space:]]*$/ { if (suite && uri) { print uri, key; exit } suite = 0; uri = ""; key = "" }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite = 1 }
      /^Signed-By:/ { key = $2 }
      END { if (suite && uri) print uri, key }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    # "deb [options] URI bookworm components": the URI is followed by the suite.
    uri=$(awk '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^[a-z]+:\/\// && $(i + 1) == "bookworm") { print $i; exit } }' \
      /etc/apt/sources.list)
  fi
  if [ -z "$uri" ]; then
    echo "install-deps: no Debian bookworm source found in /etc/apt to derive bookworm-backports from" >&2
    exit 1
  fi
  {
    echo "Types: deb"
    echo "URIs: $uri"
    echo "Suites: bookworm-backports"
    echo "Components: main"
    if [ -n "$keyring" ]; then echo "Signed-By: $keyring"; fi
  } > "$backports_list"
}

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
if ! dpkg --compare-versions "$(dpkg-query -W -f='${Version}' libraft-dev 2>/dev/null || echo 0)" ge 0.22; then
  add_backports_source
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Only libraft from backports (-t for the named packages); everything else stays bookworm's.
  apt-get install -y -q --no-install-recommends -t bookworm-backports libraft-dev
fi

#!/bin/sh
# Smoke test of wharf-bench against a real broker: starts WHARF on a free loopback port
# with a temporary data_dir, runs a 2 s p2p QoS 1 benchmark and checks that messages
# arrived and none were lost. Paced well below capacity: it tests the bench, not the
# broker under overload (where a bounded session queue may drop messages).
# usage: smoke.sh WHARF_BINARY WHARF_BENCH_BINARY
set -eu
wharf=$1
bench=$2
dir=$(mktemp -d)
broker_pid=
cleanup() {
  if [ -n "$broker_pid" ]; then kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir "$dir/data"
cat > "$dir/wharf.yaml" <<YAML
data_dir: $dir/data
listeners:
  - {type: mqtt, bind: "127.0.0.1:$port"}
io_threads: 2
YAML
"$wharf" --config "$dir/wharf.yaml" > "$dir/wharf.log" 2>&1 &
broker_pid=$!

# Wait up to 10 s for the listener.
i=0
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -ge 100 ]; then echo "broker did not start"; cat "$dir/wharf.log"; exit 1; fi
  sleep 0.1
done

"$bench" pub --port "$port" --scenario p2p --qos 1 --rate 5000 --duration 2 --drain 5 --json > "$dir/report.json"
cat "$dir/report.json"
python3 - "$dir/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["received"] > 0, "nothing received"
assert r["lost"] == 0, "lost %d" % r["lost"]
assert r["errors"] == 0, "errors %d" % r["errors"]
print("bench.smoke: ok (%d received, p99 %.1f us)" % (r["received"], r["latency_us"]["p99"]))
PY

#!/bin/sh
# Smoke test of wharf-bench against a real broker: starts WHARF on free loopback ports with
# a temporary data_dir, then
#   - runs a 2 s p2p QoS 1 benchmark and checks that messages arrived and none were lost;
#   - runs the queue mode over HTTP (2 s, batches of 4) and over HTTPS (1 s, the single
#     actions) and checks that messages were sent, received and deleted without errors;
#   - holds 200 connections over MQTT/TLS (conn mode) and checks that all connected;
#   - stores 300 persistent sessions (sessions mode), restarts the broker, and checks that
#     a sample resumes with its subscriptions, and that the check fails for a topic the
#     sessions never subscribed to.
# Paced well below capacity: it tests the bench, not the broker under overload (where a
# bounded session queue may drop messages).
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

# Ports below the ephemeral range, so none is taken by a client while the broker restarts.
# Four different ones from one call (separate calls could draw the same port twice), reserved
# against other test processes until this script ends.
ports=$(python3 "$(dirname "$0")/../tests/integration/free_port.py" 4 --while $$)
port=$(echo "$ports" | sed -n 1p)
http_port=$(echo "$ports" | sed -n 2p)
https_port=$(echo "$ports" | sed -n 3p)
mqtt_tls_port=$(echo "$ports" | sed -n 4p)
# A self-signed server certificate for 127.0.0.1; the bench trusts it as its own CA.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$dir/server.key" -out "$dir/server.pem" 2>/dev/null
mkdir "$dir/data"
cat > "$dir/wharf.yaml" <<YAML
data_dir: $dir/data
listeners:
  - {type: mqtt, bind: "127.0.0.1:$port", anonymous: true}
  - {type: mqtt, bind: "127.0.0.1:$mqtt_tls_port", anonymous: true, tls: {cert_file: $dir/server.pem, key_file: $dir/server.key}}
  - {type: queue-api, bind: "127.0.0.1:$http_port"}
  - {type: queue-api, bind: "127.0.0.1:$https_port", tls: {cert_file: $dir/server.pem, key_file: $dir/server.key}}
queue_api:
  credentials:
    - {secret_id: smoke, secret_key: smoke-secret}
io_threads: 2
YAML
start_broker() {
  "$wharf" --config "$dir/wharf.yaml" >> "$dir/wharf.log" 2>&1 &
  broker_pid=$!
  # Wait up to 10 s for the listeners.
  for p in "$port" "$mqtt_tls_port" "$http_port" "$https_port"; do
    i=0
    until python3 -c "import socket; socket.create_connection(('127.0.0.1', $p), 1).close()" 2>/dev/null; do
      i=$((i + 1))
      if [ "$i" -ge 100 ]; then echo "broker did not start"; cat "$dir/wharf.log"; exit 1; fi
      sleep 0.1
    done
  done
}
start_broker

"$bench" pub --port "$port" --scenario p2p --qos 1 --rate 5000 --duration 2 --drain 5 --json > "$dir/report.json"
cat "$dir/report.json"
python3 - "$dir/report.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["received"] > 0, "nothing received"
assert r["lost"] == 0, "lost %d" % r["lost"]
assert r["errors"] == 0, "errors %d" % r["errors"]
print("bench.smoke: pub ok (%d received, p99 %.1f us)" % (r["received"], r["latency_us"]["p99"]))
PY

credentials="--secret-id smoke --secret-key smoke-secret"
# shellcheck disable=SC2086 # $credentials is two options
"$bench" queue --endpoint "http://127.0.0.1:$http_port" $credentials --batch 4 --producers 2 --consumers 2 \
  --rate 2000 --duration 2 --json > "$dir/queue-http.json"
# shellcheck disable=SC2086
"$bench" queue --endpoint "https://127.0.0.1:$https_port" --ca "$dir/server.pem" $credentials --queue smoke-tls \
  --rate 200 --duration 1 --json > "$dir/queue-https.json"
cat "$dir/queue-http.json" "$dir/queue-https.json"
python3 - "$dir/queue-http.json" "$dir/queue-https.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    where = r["endpoint"]
    assert r["errors"] == 0, "%s: errors %s" % (where, r["errors_by_code"])
    assert r["sent"] > 0 and r["received"] > 0, "%s: sent %d, received %d" % (where, r["sent"], r["received"])
    # Every message received was deleted, and nothing came that this run did not send.
    assert r["deleted"] == r["received"], "%s: received %d, deleted %d" % (where, r["received"], r["deleted"])
    assert r["stale"] == 0 and r["received"] <= r["sent"], "%s: %s" % (where, r)
    print("bench.smoke: queue ok over %s (%d sent, %d received, %d deleted, send p99 %.1f us)"
          % (where, r["sent"], r["received"], r["deleted"], r["send_latency_us"]["p99"]))
PY

"$bench" sessions --port "$port" --connections 300 --rate 1000 --json > "$dir/sessions-create.json"
kill -TERM "$broker_pid"
wait "$broker_pid" || { echo "broker did not stop cleanly"; cat "$dir/wharf.log"; exit 1; }
start_broker
"$bench" sessions --port "$port" --connections 300 --phase resume --sample 30 --json > "$dir/sessions-resume.json"
# Sessions that never subscribed to this prefix's topics: their messages must not come back.
"$bench" sessions --port "$port" --connections 300 --phase resume --sample 5 --topic-prefix unsubscribed \
  --connect-timeout 1 --json > "$dir/sessions-wrong.json"
cat "$dir/sessions-create.json" "$dir/sessions-resume.json" "$dir/sessions-wrong.json"
python3 - "$dir/sessions-create.json" "$dir/sessions-resume.json" "$dir/sessions-wrong.json" <<'PY'
import json, sys
create, resume, wrong = (json.load(open(p)) for p in sys.argv[1:])
assert create["done"] == 300 and create["failed"] == 0, create
assert resume["visited"] == 30 and resume["delivered"] == 30 and resume["absent"] == 0, resume
assert wrong["delivered"] == 0 and wrong["failed"] == 5 and wrong["absent"] == 0, wrong
print("bench.smoke: sessions ok (300 stored, 30 of 30 resumed after a restart)")
PY

"$bench" conn --port "$mqtt_tls_port" --tls --ca "$dir/server.pem" --mqtt-version 5 --connections 200 --rate 1000 \
  --hold 1 --json > "$dir/conn-tls.json"
# A certificate that does not chain to the CA given: every handshake must fail.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=other \
  -keyout "$dir/other.key" -out "$dir/other.pem" 2>/dev/null
"$bench" conn --port "$mqtt_tls_port" --tls --ca "$dir/other.pem" --connections 3 --hold 0 --json \
  > "$dir/conn-tls-untrusted.json" 2>/dev/null
cat "$dir/conn-tls.json" "$dir/conn-tls-untrusted.json"
python3 - "$dir/conn-tls.json" "$dir/conn-tls-untrusted.json" <<'PY'
import json, sys
ok, untrusted = (json.load(open(p)) for p in sys.argv[1:])
assert ok["connected"] == 200 and ok["failed"] == 0 and ok["dropped"] == 0, ok
assert untrusted["connected"] == 0 and untrusted["failed"] == 3, untrusted
print("bench.smoke: conn over TLS ok (200 connected, untrusted certificate refused)")
PY

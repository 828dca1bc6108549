#!/usr/bin/env python3
"""CONNECT rate by authentication source, in one run: anonymous, a user of the password file
(its PBKDF2 check cached after the first CONNECT), JSON Web Tokens signed RS256 and ES256,
each both cold (a token of its own per connection: every CONNECT verifies one) and warm (one
token for all: verified once, then remembered), and the HTTP hook, cold (cache_ttl_ms 0:
every CONNECT asks the service) and warm (the same client ids every round, asked once in a
round before the measured ones: every CONNECT is answered from the cache).

Starts one wharf per source on loopback (one I/O thread each), then, round by round and
source by source, `wharf-bench conn` opens N connections unpaced and holds them a second;
the table shows connects a second and the broker's CPU per CONNECT (from /proc/PID/stat),
median of the rounds. Keys and tokens are made with the openssl CLI
(tests/integration/test_jwt.py's helpers). The hook's service is a Python HTTP/1.1 server in
this process that allows everyone: the cold rate is as much its speed as wharf's; the CPU
column is wharf's alone.

usage: bench/connect_auth.py [--wharf build/wharf] [--bench build/wharf-bench] [--rounds 3]
                             [--connections 1000]

The cold tokens (rounds x connections of each algorithm) are signed by the openssl CLI, one
process each: about half a minute with the defaults.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import compare

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from test_jwt import Keys, claims  # noqa: E402


def token_file(path, make, count):
    with open(path, "w") as f:
        for i in range(count):
            f.write(make("bench-%d" % i) + "\n")
    return path


class AllowingService:
    """An HTTP authentication service that allows every client, on loopback."""

    def __init__(self):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                answer = b'{"result":"allow"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256  # wharf opens up to max_in_flight connections at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/auth" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def sources(wharf, workdir, cold_tokens, hook_url):
    """(name, auth section, wharf-bench credentials, warm-up) of each source measured: a source
    with warm-up uses the same client ids every round, after one unmeasured round. The tokens
    go with a username too: MQTT 3.1.1 sends no password without one (wharf takes the token's
    sub)."""
    keys = Keys(workdir)
    pem = os.path.join(workdir, "rsa.pub")
    with open(pem, "wb") as f:
        f.write(keys.rsa_pub)
    jwks = os.path.join(workdir, "jwks.json")
    with open(jwks, "w") as f:
        json.dump({"keys": [keys.ec_jwk("ec-1")]}, f)
    user = subprocess.run([wharf, "passwd", "bench"], input="bench-secret\n", capture_output=True, text=True,
                          check=True).stdout.strip()[2:]
    lifetime = {"lifetime_s": 3600}
    rs256 = lambda sub: keys.token(claims(sub=sub, **lifetime))  # noqa: E731
    es256 = lambda sub: keys.token(claims(sub=sub, **lifetime), alg="ES256", kid="ec-1")  # noqa: E731
    out = [("anonymous", "", [], False),
           ("password file, cached", "auth:\n  users:\n    - %s\n" % user,
            ["--username", "bench", "--password", "bench-secret"], False)]
    for name, keys_file, make in (("RS256", pem, rs256), ("ES256", jwks, es256)):
        auth = "auth:\n  jwt: {keys_file: %s}\n" % keys_file
        tokens = token_file(os.path.join(workdir, name + ".tokens"), make, cold_tokens)
        out.append(("JWT %s, cold" % name, auth, ["--username", "bench", "--passwords", tokens], False))
        out.append(("JWT %s, warm" % name, auth, ["--username", "bench", "--password", make("bench")], False))
    hook = "auth:\n  http: {url: %s, cache_ttl_ms: %d, max_in_flight: 64}\n"
    credentials = ["--username", "bench", "--password", "bench-secret"]
    out.append(("HTTP hook, cold", hook % (hook_url, 0), credentials, False))
    out.append(("HTTP hook, warm", hook % (hook_url, 3600 * 1000), credentials, True))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wharf", default="build/wharf")
    parser.add_argument("--bench", default="build/wharf-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=1000)
    a = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="wharf-auth-bench-")
    service = AllowingService()
    brokers = []
    try:
        # Cold: every round's connections take tokens no earlier round used.
        cold_tokens = a.rounds * a.connections
        measured = sources(os.path.abspath(a.wharf), workdir, cold_tokens, service.url)
        for i, (name, auth, credentials, warm_up) in enumerate(measured):
            broker = compare.start_wharf(os.path.abspath(a.wharf), workdir, 1, name="wharf-%d" % i, extra_config=auth)
            brokers.append((name, broker, credentials, warm_up))

        def connect_all(broker, first_id, credentials):
            return compare.run_bench(a.bench, ["conn", "--port", str(broker.port), "--connections",
                                               str(a.connections), "--hold", "1", "--first-id",
                                               str(first_id), *credentials])

        for name, broker, credentials, warm_up in brokers:
            if warm_up:
                connect_all(broker, 0, credentials)
        rate, cpu = {}, {}
        for rnd in range(a.rounds):
            for name, broker, credentials, warm_up in brokers:
                before = compare.cpu_seconds(broker.proc.pid)
                r = connect_all(broker, 0 if warm_up else rnd * a.connections, credentials)
                used = compare.cpu_seconds(broker.proc.pid) - before
                if r["connected"] != a.connections:
                    sys.exit("%s: %d of %d connections refused or failed" % (name, a.connections - r["connected"],
                                                                             a.connections))
                rate.setdefault(name, []).append(r["connects_per_s"])
                cpu.setdefault(name, []).append(used * 1e6 / r["connected"])
                print("round %d %-22s %8.0f connects/s  %6.1f us CPU/connect"
                      % (rnd + 1, name, r["connects_per_s"], cpu[name][-1]), file=sys.stderr)
        print("CONNECT, unpaced, %d connections a round, one I/O thread, median of %d rounds:"
              % (a.connections, a.rounds))
        print("| source | connects/s | broker CPU per CONNECT |")
        print("|---|---|---|")
        for name, _, _, _ in brokers:
            print("| %s | %.0f | %.1f us |" % (name, statistics.median(rate[name]), statistics.median(cpu[name])))
    finally:
        for _, broker, _, _ in brokers:
            broker.stop()
        service.server.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

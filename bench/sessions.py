#!/usr/bin/env python3
"""The stored-sessions benchmark: a million persistent sessions, a restart, resumption.

Starts wharf on a free loopback port with a temporary data directory and runs
  1. wharf-bench sessions --phase create: N persistent sessions (clean session 0), each
     subscribed at QoS 1 to its own topic, then disconnected;
  2. a clean stop (SIGTERM) and a start on the same data directory, timed from exec until
     the MQTT port accepts connections (every session is loaded before the listeners open);
  3. wharf-bench sessions --phase resume: a sample of the sessions reconnect, and each must
     find its session (CONNACK session present) and its subscription (a QoS 1 message it
     publishes to its own topic comes back without a new SUBSCRIBE).
It prints the broker's RSS before, after creating, and after the restart, the store's size
on disk, the restart time and the resume result; --json writes them too.

usage: bench/sessions.py [--sessions 1000000] [--sample 1000] [--wharf-threads 1]
                         [--wharf build/wharf] [--bench build/wharf-bench] [--json FILE]
"""
import json
import os
import shutil
import sys
import tempfile
import time

import compare


def du_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def start(binary, workdir, port, threads):
    """Starts wharf on the data directory in workdir, waiting as long as loading takes."""
    config = os.path.join(workdir, "wharf.yaml")
    with open(config, "w") as f:
        f.write("data_dir: %s\nlisteners:\n  - {type: mqtt, bind: \"127.0.0.1:%d\", anonymous: true}\nio_threads: %d\n"
                % (os.path.join(workdir, "wharf-data"), port, threads))
    return compare.Broker("wharf", [binary, "--config", config], port, workdir, os.path.join(workdir, "wharf.log"),
                          ready_timeout=600)


def main():
    parser = compare.binaries_parser(__doc__)
    parser.add_argument("--sessions", type=int, default=1000000)
    parser.add_argument("--sample", type=int, default=1000)
    parser.add_argument("--wharf-threads", type=int, default=1)
    parser.add_argument("--json", help="also write the results here")
    a = parser.parse_args()
    compare.raise_file_limit()

    workdir = tempfile.mkdtemp(prefix="wharf-sessions-")
    os.mkdir(os.path.join(workdir, "wharf-data"))
    port = compare.free_port()
    bench_args = ["--port", str(port), "--connections", str(a.sessions), "--threads", "2"]
    r = {"sessions": a.sessions, "wharf_threads": a.wharf_threads}
    broker = start(os.path.abspath(a.wharf), workdir, port, a.wharf_threads)
    try:
        r["rss_empty_kib"] = compare.rss_kib(broker.proc.pid)
        r["create"] = compare.run_bench(a.bench, ["sessions", "--phase", "create", *bench_args])
        r["rss_stored_kib"] = compare.rss_kib(broker.proc.pid)
        began = time.monotonic()
        broker.stop()
        r["stop_s"] = time.monotonic() - began
        r["store_bytes"] = du_bytes(os.path.join(workdir, "wharf-data"))
        broker = start(os.path.abspath(a.wharf), workdir, port, a.wharf_threads)
        r["restart_to_accepting_s"] = broker.ready_s
        r["rss_restarted_kib"] = compare.rss_kib(broker.proc.pid)
        r["resume"] = compare.run_bench(a.bench, ["sessions", "--phase", "resume", "--sample", str(a.sample),
                                                  *bench_args])
    finally:
        broker.stop()

    c, s = r["create"], r["resume"]
    print("%d persistent sessions, one QoS 1 subscription each; wharf io_threads %d; %d cores; %s" % (
        a.sessions, a.wharf_threads, os.cpu_count(), time.strftime("%Y-%m-%d")))
    print("  created            %d (%.0f/s), %d failed" % (c["done"], c["per_s"], c["failed"]))
    print("  RSS                %.0f MiB empty, %.0f MiB with the sessions stored (%.0f B/session), "
          "%.0f MiB after restart" % (r["rss_empty_kib"] / 1024, r["rss_stored_kib"] / 1024,
                                      (r["rss_stored_kib"] - r["rss_empty_kib"]) * 1024 / max(c["done"], 1),
                                      r["rss_restarted_kib"] / 1024))
    print("  on disk            %.0f MiB" % (r["store_bytes"] / 2**20))
    print("  clean stop         %.1f s" % r["stop_s"])
    print("  restart            %.1f s until the MQTT port accepted" % r["restart_to_accepting_s"])
    print("  resume             %d of %d sampled sessions resumed with their subscription, %d without "
          "their session, %d failed" % (s["delivered"], s["visited"], s["absent"], s["failed"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    shutil.rmtree(workdir, ignore_errors=True)
    ok = c["failed"] == 0 and s["delivered"] == s["visited"] and s["absent"] == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

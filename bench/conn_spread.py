#!/usr/bin/env python3
"""Idle connections beyond one process's file limit: several wharf-bench conn processes.

A process may open at most 20,000 files here, so N connections are split over P
wharf-bench processes, each with its own range of client ids (--first-id) and its own
loopback source address (127.0.0.2, 127.0.0.3, ...: each source address has its own
64k ephemeral ports towards the broker). The processes run at once; the totals are summed
and the connect time is the slowest process's.

usage: bench/conn_spread.py --port P --connections N --processes K [--rate R] [--hold S]
                            [--bench build/wharf-bench] [-- extra wharf-bench conn options,
                            e.g. --tls --ca FILE --mqtt-version 5]
Each process gets N/K connections and R/K connects/s. The broker needs a file limit above N
(on this machine at most 20,000: the figure across processes is for larger hosts).
"""
import argparse
import json
import os
import subprocess
import sys

import compare


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--bench", default=os.path.join(here, "..", "build", "wharf-bench"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--hold", type=float, default=10)
    parser.add_argument("--json", action="store_true", help="the totals as one JSON object")
    a = parser.parse_args(argv)
    if a.processes < 1 or a.processes > 250:
        sys.exit("--processes must be 1..250 (one loopback source address each)")
    compare.raise_file_limit()

    procs = []
    share = a.connections // a.processes
    for k in range(a.processes):
        count = share if k < a.processes - 1 else a.connections - share * (a.processes - 1)
        args = [a.bench, "conn", "--host", a.host, "--port", str(a.port), "--connections", str(count),
                "--first-id", str(k * share), "--source", "127.0.0.%d" % (k + 2),
                "--rate", str(a.rate / a.processes), "--hold", str(a.hold), "--json", *extra]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, text=True))
    reports = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            sys.exit("a wharf-bench process failed (%d)" % p.returncode)
        reports.append(json.loads(out.strip().splitlines()[-1]))
    total = {key: sum(r[key] for r in reports) for key in ("requested", "connected", "failed", "dropped")}
    total["processes"] = a.processes
    total["connect_s"] = max(r["connect_s"] for r in reports)
    total["connects_per_s"] = total["connected"] / total["connect_s"] if total["connect_s"] > 0 else 0
    total["connect_latency_p99_us_worst"] = max(r["connect_latency_us"]["p99"] for r in reports)
    if a.json:
        print(json.dumps(total))
    else:
        print("%d processes: %d requested, %d connected, %d failed, %d dropped during the hold; "
              "%.0f connects/s over %.2f s; worst process p99 connect %.0f us" % (
                  a.processes, total["requested"], total["connected"], total["failed"], total["dropped"],
                  total["connects_per_s"], total["connect_s"], total["connect_latency_p99_us_worst"]))
    sys.exit(0 if total["failed"] == 0 and total["dropped"] == 0 else 1)


if __name__ == "__main__":
    main()

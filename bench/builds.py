#!/usr/bin/env python3
"""One build of wharf against another, in one run: the same workloads on two binaries
(e.g. the last release's and this tree's), alternating, so that a change's cost is read as a
ratio on one machine at one time.

Starts each binary on loopback (two I/O threads, its own data directory) and runs:
  - MQTT QoS 0 fan-in: 4 publishers, 1 subscriber, 64-byte payloads;
  - MQTT QoS 1 into offline persistent sessions (stored, then delivered), 64-byte payloads;
  - MQTT QoS 0 and QoS 1 fan-out: 1 publisher, 16 subscribers of its topic, 64-byte payloads;
  - the CMQ queue API over HTTP, batches of 16, 4 producers + 16 consumers, 64-byte bodies.
The table shows the median of the rounds: messages a second and wharf's CPU per message,
with the ratio new / base.

usage: bench/builds.py --base OLD/wharf [--wharf build/wharf] [--bench build/wharf-bench]
                       [--rounds 3] [--duration 5]
"""
import argparse
import sys
import tempfile

import compare


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the wharf binary to compare with")
    parser.add_argument("--wharf", default="build/wharf")
    parser.add_argument("--bench", default="build/wharf-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    a = parser.parse_args()

    workloads = {
        "MQTT QoS 0 fan-in, 4 publishers": compare.mqtt_workload(a, 0),
        "MQTT QoS 1 into offline persistent sessions": compare.mqtt_workload(a, 1, offline=True),
        "MQTT QoS 0 fan-out, 1 publisher to 16 subscribers": compare.mqtt_workload(
            a, 0, scenario="fanout", publishers=1, subscribers=16),
        "MQTT QoS 1 fan-out, 1 publisher to 16 subscribers": compare.mqtt_workload(
            a, 1, scenario="fanout", publishers=1, subscribers=16),
        "CMQ send+receive+delete, batches of 16": compare.cmq_workload(a),
    }
    compare.ratio_run(tempfile.mkdtemp(prefix="wharf-builds-bench-"), {"base": (a.base, ""), "new": (a.wharf, "")},
                      workloads, a.rounds, "%s (new) against %s (base), two I/O threads each, median of %d rounds "
                      "of %.0f s:" % (a.wharf, a.base, a.rounds, a.duration))

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The cost of encryption at rest: durable throughput with and without it, in one run.

Starts wharf twice on loopback (two I/O threads each), once without an `encryption`
section and once with one (a generated key), and alternates them for each workload:
  - the CMQ queue API over HTTP, batches of 16, 4 producers + 16 consumers, 64-byte bodies
    (every send fsynced before code 0; send, receive and delete each write sealed values);
  - MQTT QoS 1 into offline persistent sessions (--offline: the publishes are stored in the
    sessions' queues, then delivered when the subscribers come back), 64-byte payloads.
The table shows the median of the rounds: messages a second and wharf's CPU per message,
with the ratio encrypted / clear.

usage: bench/encryption.py [--wharf build/wharf] [--bench build/wharf-bench] [--rounds 3]
                           [--duration 5]
"""
import argparse
import os
import secrets
import tempfile

import compare


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wharf", default="build/wharf")
    parser.add_argument("--bench", default="build/wharf-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    a = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="wharf-encryption-bench-")
    key_file = os.path.join(workdir, "bench.key")
    with open(key_file, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    sealed = "encryption:\n  active: bench\n  keys:\n    - {id: bench, key_file: %s}\n" % key_file
    workloads = {
        "CMQ send+receive+delete, batches of 16": compare.cmq_workload(a),
        "MQTT QoS 1 into offline persistent sessions": compare.mqtt_workload(a, 1, offline=True),
    }
    compare.ratio_run(workdir, {"clear": (a.wharf, ""), "encrypted": (a.wharf, sealed)}, workloads, a.rounds,
                      "Durable throughput without and with encryption at rest, two I/O threads, median of %d rounds "
                      "of %.0f s:" % (a.rounds, a.duration))

if __name__ == "__main__":
    main()

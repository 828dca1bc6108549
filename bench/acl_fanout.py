#!/usr/bin/env python3
"""The cost of deny rules at delivery: QoS 0 fan-out to wildcard subscribers, with no ACL and
with N deny rules overlapping the subscriptions, in one run.

Starts wharf twice on loopback (one I/O thread each, so the figures compare per core): once
without an `auth.acl`, once with N deny rules on topics under the subscribers' filter (half
without wildcards, half with a '+'), none matching the published topic, so every delivery is
checked and none withheld. The subscribers subscribe to `bench/#`. Rounds alternate the two
brokers; the table shows deliveries a second (saturation) and broker CPU per delivery, with
their ratio.

usage: bench/acl_fanout.py [--wharf build/wharf] [--bench build/wharf-bench] [--rounds 3]
                           [--duration 5] [--subscribers 8] [--rules 100]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

import compare


def deny_rules(count):
    lines = ["auth:", "  acl:"]
    for i in range(count):
        topic = "bench/denied-%d" % i if i % 2 == 0 else "bench/+/denied-%d" % i
        lines.append('    - {permission: deny, action: subscribe, topic: "%s"}' % topic)
    return "\n".join(lines) + "\n" if count else ""


def main():
    doc = __doc__
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--wharf", default="build/wharf")
    parser.add_argument("--bench", default="build/wharf-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--subscribers", type=int, default=8)
    parser.add_argument("--rules", type=int, default=100)
    a = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="wharf-acl-bench-")
    brokers = {}
    try:
        for label, rules in (("no ACL", 0), ("%d deny rules" % a.rules, a.rules)):
            brokers[label] = compare.start_wharf(os.path.abspath(a.wharf), workdir, 1, name="wharf-%d" % rules,
                                                 extra_config=deny_rules(rules))
        results = {label: [] for label in brokers}
        for rnd in range(a.rounds):
            for label, broker in brokers.items():
                r = compare.pubsub(a.bench, broker, a.duration, "fanout", 0, subscribers=a.subscribers,
                                   subscribe_filter="bench/#")
                results[label].append(r)
                print("round %d %-15s %8.0f deliveries/s  %.2f us CPU/delivery"
                      % (rnd + 1, label, r["received_per_s"], r["broker_cpu_us_per_msg"]), file=sys.stderr)
        base, ruled = (results[label] for label in brokers)
        rate = [statistics.median(r["received_per_s"] for r in runs) for runs in (base, ruled)]
        cpu = [statistics.median(r["broker_cpu_us_per_msg"] for r in runs) for runs in (base, ruled)]
        print("QoS 0 fan-out, 1 publisher -> %d subscribers of bench/#, one I/O thread, median of %d rounds:"
              % (a.subscribers, a.rounds))
        print("| figure | no ACL | %s | ratio |" % list(brokers)[1])
        print("|---|---|---|---|")
        print("| deliveries/s | %.0f | %.0f | %.2f |" % (rate[0], rate[1], rate[1] / rate[0]))
        print("| broker CPU us/delivery | %.3f | %.3f | %.2f |" % (cpu[0], cpu[1], cpu[1] / cpu[0]))
    finally:
        for broker in brokers.values():
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

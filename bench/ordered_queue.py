#!/usr/bin/env python3
"""Ordered-queue throughput beside a plain queue, in one run: the CMQ queue API over HTTP,
batches of 16, 4 producers and 16 consumers, the messages spread over 1, 100 and 10,000
message groups (msgGroupId, in turn), and the same traffic to a plain queue.

An ordered queue gives each group one message at a time: with one group, every message
waits for the delete of the one before it (a round trip per message, whatever the number
of consumers); with many groups, a receive takes the heads of up to 16 groups at once.
Rounds alternate the configurations on one wharf; the table shows the median of the
rounds: messages sent and consumed (received and deleted) a second, wharf's CPU per
consumed message (its send, receive and delete together), and the consume latency (receive
request until the delete's answer).

usage: bench/ordered_queue.py [--wharf build/wharf] [--bench build/wharf-bench] [--rounds 3]
                              [--duration 5]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

import compare

CONFIGS = (("plain queue", ()), ("ordered, 1 group", ("--groups", "1")),
           ("ordered, 100 groups", ("--groups", "100")), ("ordered, 10,000 groups", ("--groups", "10000")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wharf", default="build/wharf")
    parser.add_argument("--bench", default="build/wharf-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5)
    a = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="wharf-ordered-bench-")
    broker = None
    try:
        broker = compare.start_wharf(os.path.abspath(a.wharf), workdir, 2)
        results = {label: [] for label, _ in CONFIGS}
        for rnd in range(a.rounds):
            for label, args in CONFIGS:
                cpu_before = compare.cpu_seconds(broker.proc.pid)
                r = compare.queue_api(a.bench, broker, a.duration, args)
                cpu = compare.cpu_seconds(broker.proc.pid) - cpu_before
                r["broker_cpu_us_per_msg"] = cpu * 1e6 / r["deleted"] if r["deleted"] else float("nan")
                if r["errors"]:
                    sys.exit("%s: %d errors: %s" % (label, r["errors"], r))
                results[label].append(r)
                print("round %d %-24s sent %8.0f/s  consumed %8.0f/s" % (rnd + 1, label, r["sent_per_s"],
                                                                          r["deleted_per_s"]), file=sys.stderr)
        median = lambda label, key: statistics.median(r[key] for r in results[label])
        plain = median(CONFIGS[0][0], "deleted_per_s")
        print("CMQ queue API over HTTP, batches of 16, 4 producers + 16 consumers, 64-byte bodies, "
              "median of %d rounds of %.0f s:" % (a.rounds, a.duration))
        print("| queue | sent msg/s | consumed msg/s | consumed / plain | wharf CPU us / consumed msg | "
              "consume p50 ms | consume p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for label, _ in CONFIGS:
            consumed = median(label, "deleted_per_s")
            p50 = statistics.median(r["consume_latency_us"]["p50"] for r in results[label]) / 1000
            p99 = statistics.median(r["consume_latency_us"]["p99"] for r in results[label]) / 1000
            sent = median(label, "sent_per_s")
            # Per consumed message only where about as many were sent (otherwise the CPU of
            # the sends that are still waiting in the queue would count against the few consumed).
            cpu = "%.1f" % median(label, "broker_cpu_us_per_msg") if sent < 1.5 * consumed else "n/a"
            print("| %s | %.0f | %.0f | %.2f | %s | %.1f | %.1f |" % (label, sent, consumed, consumed / plain, cpu,
                                                                   p50, p99))
    finally:
        if broker:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

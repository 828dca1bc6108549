#!/usr/bin/env python3
"""The replicated queue core against a single node, in one run (docs/PERFORMANCE.md).

Starts one wharf node alone and a three-node cluster (all on loopback, one I/O thread each,
temporary data directories) and, alternating between them round by round:
  - durable SendMessage throughput: wharf-bench queue, unpaced (batches of --batch, 4
    producers, 16 consumers), through the leader and through a follower;
  - send latency p50/p99 at half of that round's maximum rate;
then failover: --kills times, the leader is killed with kill -9 while a client sends through
another node, and the time to the first successful send after the kill is measured; the
killed node restarts and rejoins before the next kill. Prints a table (and --json FILE).

usage: bench/cluster.py [--wharf build/wharf] [--bench build/wharf-bench] [--rounds 2]
                        [--duration 5] [--batch 16] [--kills 10] [--json FILE]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from cmq_client import CmqClient  # noqa: E402
from free_port import free_port  # noqa: E402

SECRET_ID, SECRET_KEY = "bench", "bench-secret"


class Node:
    def __init__(self, binary, workdir, name, cluster=None):
        self.binary, self.name = binary, name
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.api_port, self.admin_port = free_port(), free_port()
        lines = ["data_dir: %s/data" % self.dir, "io_threads: 1", "listeners:",
                 '  - {type: queue-api, bind: "127.0.0.1:%d"}' % self.api_port,
                 "queue_api:", "  credentials:", "    - {secret_id: %s, secret_key: %s}" % (SECRET_ID, SECRET_KEY)]
        if cluster:
            lines.append(cluster)
        self.config = os.path.join(self.dir, "wharf.yaml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen([self.binary, "--config", self.config], cwd=self.dir,
                                     stdout=open(os.path.join(self.dir, "log"), "a"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                # Any answer will do (an unsigned request gets CMQ code 4100, in a 200).
                urllib.request.urlopen("http://127.0.0.1:%d/" % self.api_port, timeout=1).close()
                return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.05)
        self.kill()
        sys.exit("%s did not start" % self.name)

    def kill(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None

    def endpoint(self):
        return "http://127.0.0.1:%d" % self.api_port

    def client(self, timeout_s=10):
        return CmqClient("127.0.0.1", self.api_port, SECRET_ID, SECRET_KEY, timeout_s=timeout_s, retry_idle=False)

    def log(self):
        with open(os.path.join(self.dir, "log")) as f:
            return f.read()


def leader_of(nodes):
    """The node the latest "leads" line of the running nodes' logs names."""
    latest = None
    for n in nodes:
        if n.proc is None:
            continue
        for line in n.log().splitlines():
            if "queue core: member" in line and " leads " in line:
                stamp, member = line[1:24], int(line.split("member ")[1].split()[0])
                if latest is None or stamp > latest[0]:
                    latest = (stamp, member)
    return None if latest is None else nodes[latest[1] - 1]


def wait_for_leader(nodes, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leader = leader_of(nodes)
        if leader is not None and leader.proc is not None:
            try:
                c = leader.client(timeout_s=5)
                ok = c.call("ListQueue", {}).get("code") == 0
                c.close()
                if ok:
                    return leader
            except OSError:
                pass
        time.sleep(0.1)
    sys.exit("no leader")


def bench_queue(bench, node, duration, batch, rate=0):
    out = subprocess.run([bench, "queue", "--endpoint", node.endpoint(), "--secret-id", SECRET_ID,
                          "--secret-key", SECRET_KEY, "--batch", str(batch), "--producers", "4",
                          "--consumers", "16", "--size", "64", "--duration", str(duration), "--rate", str(rate),
                          "--json"], capture_output=True, text=True, timeout=duration + 120)
    if out.returncode != 0:
        sys.exit("wharf-bench failed: %s" % out.stderr[-2000:])
    r = json.loads(out.stdout)
    return {"sent_per_s": r["sent_per_s"], "errors": r["errors"], "p50_us": r["send_latency_us"]["p50"],
            "p99_us": r["send_latency_us"]["p99"]}


def failover(nodes, kills):
    """Median time from kill -9 of the leader to the first send acknowledged through another node."""
    times = []
    q = "failover"
    c = wait_for_leader(nodes).client()
    c.call("CreateQueue", {"queueName": q})
    c.close()
    for _ in range(kills):
        leader = wait_for_leader(nodes)
        other = next(n for n in nodes if n is not leader and n.proc is not None)
        client = other.client(timeout_s=10)
        killed = time.monotonic()
        leader.kill()
        while True:
            try:
                if client.call("SendMessage", {"queueName": q, "msgBody": "x"}).get("code") == 0:
                    break
            except OSError:
                client.close()
                client = other.client(timeout_s=10)
            if time.monotonic() - killed > 60:
                sys.exit("no send acknowledged within 60 s of a kill")
        times.append(time.monotonic() - killed)
        client.close()
        leader.start()
        time.sleep(1)
    return times


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wharf", default=os.path.join(here, "..", "build", "wharf"))
    p.add_argument("--bench", default=os.path.join(here, "..", "build", "wharf-bench"))
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--json")
    a = p.parse_args()
    workdir = tempfile.mkdtemp(prefix="wharf-cluster-bench-")
    peers = [free_port() for _ in range(3)]
    peer_list = "\n".join('    - {id: %d, address: "127.0.0.1:%d"}' % (i + 1, port) for i, port in enumerate(peers))
    single = Node(a.wharf, workdir, "single").start()
    nodes = [Node(a.wharf, workdir, "node%d" % (i + 1),
                  'cluster:\n  node_id: %d\n  bind: "127.0.0.1:%d"\n  peers:\n%s' % (i + 1, port, peer_list))
             for i, port in enumerate(peers)]
    for n in nodes:
        n.start()
    results = {"single": [], "leader": [], "follower": []}
    try:
        for _ in range(a.rounds):
            for name in ("single", "leader", "follower"):
                if name == "single":
                    target = single
                else:
                    leader = wait_for_leader(nodes)
                    target = leader if name == "leader" else next(n for n in nodes if n is not leader)
                top = bench_queue(a.bench, target, a.duration, a.batch)
                paced = bench_queue(a.bench, target, a.duration, a.batch, rate=max(int(top["sent_per_s"] / 2), 16))
                results[name].append({"max": top, "half_rate": paced})
                print("%-8s %8.0f msg/s   at half rate: p50 %6.0f us  p99 %6.0f us" %
                      (name, top["sent_per_s"], paced["p50_us"], paced["p99_us"]), flush=True)
        kills = failover(nodes, a.kills)
    finally:
        single.stop()
        for n in nodes:
            n.stop()

    def best(name):
        return max(results[name], key=lambda r: r["max"]["sent_per_s"])

    single_best = best("single")["max"]["sent_per_s"]
    print()
    print("| figure | single node | 3 nodes via leader | 3 nodes via follower |")
    print("|---|---|---|---|")
    print("| durable SendMessage, msg/s (best round) | %.0f | %.0f (%.0f %%) | %.0f (%.0f %%) |" % (
        single_best, best("leader")["max"]["sent_per_s"], 100 * best("leader")["max"]["sent_per_s"] / single_best,
        best("follower")["max"]["sent_per_s"], 100 * best("follower")["max"]["sent_per_s"] / single_best))
    print("| send p50 / p99 at half rate, ms | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f |" % tuple(
        v / 1000 for name in ("single", "leader", "follower")
        for v in (best(name)["half_rate"]["p50_us"], best(name)["half_rate"]["p99_us"])))
    print("| failover (kill -9 leader → a send acknowledged), median of %d | | %.2f s (min %.2f, max %.2f) | |"
          % (len(kills), statistics.median(kills), min(kills), max(kills)))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rounds": results, "failover_s": kills}, f, indent=2)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Three wharf nodes, each in its own network namespace (netns.py), under a CMQ workload of
concurrent producers and consumers on random nodes, through fault cycles: the leader or a
follower cut off from the other nodes (the clients still reach it: a minority with clients),
the one link between the leader and a follower cut (the two still reach the third), a node
killed with kill -9, the leader paused with SIGSTOP, or a node restarted. After the cycles the links are healed, every node runs,
the queue is drained, and the total-queue checker (total_queue.py) judges what the clients
saw; its table is printed and one lost message fails the run. Between faults every node must
become ready again (a leader known, the log applied), or the run fails.

  sudo WHARF_BIN=build/wharf python3 tests/cluster/fault_harness.py --cycles 20 --seed 7

Needs root (network namespaces). A failing seed reruns with --seed; each node's log is kept
in --workdir (a temporary directory unless given) and printed on failure."""

import argparse
import base64
import http.client
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import netns  # noqa: E402
from admin_client import OPS_PASSWORD, ops_entry, parse_exposition  # noqa: E402
from cmq_client import CmqClient  # noqa: E402
from total_queue import History, check, failed, table  # noqa: E402

WHARF_BIN = os.environ.get("WHARF_BIN", os.path.join(HERE, "..", "..", "build", "wharf"))
API_PORT, ADMIN_PORT, PEER_PORT = 9100, 9180, 7100
SECRET_ID, SECRET_KEY = "harness", "harness-key-0123456789"
QUEUE = "harness"
VISIBILITY_S = 3      # a received message not deleted comes back this soon
REQUEST_TIMEOUT_S = 8  # a request to a paused or cut-off node ends as unknown after this
READY_TIMEOUT_S = 60   # every node ready again after a fault is healed


def log(msg):
    print("[%7.2f] %s" % (time.monotonic() - STARTED, msg), flush=True)


STARTED = time.monotonic()


class Node:
    def __init__(self, topo, i, size, workdir, ops_user):
        self.topo, self.id = topo, i
        self.address = netns.node_address(i)
        self.dir = os.path.join(workdir, "node%d" % i)
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        self.log_path = os.path.join(self.dir, "wharf.log")
        self.proc = None
        self.paused = False
        peers = "\n".join('    - {id: %d, address: "%s:%d"}' % (p, netns.node_address(p), PEER_PORT)
                          for p in range(1, size + 1))
        config = "\n".join([
            "data_dir: %s" % os.path.join(self.dir, "data"),
            "listeners:",
            '  - {bind: "%s:%d", type: queue-api}' % (self.address, API_PORT),
            '  - {bind: "%s:%d", type: admin, users: [ops]}' % (self.address, ADMIN_PORT),
            "io_threads: 1",
            "auth:",
            "  users:",
            "    - %s" % ops_user,
            "queue_api:",
            "  credentials:",
            "    - {secret_id: %s, secret_key: %s}" % (SECRET_ID, SECRET_KEY),
            "cluster:",
            "  node_id: %d" % i,
            '  bind: "%s:%d"' % (self.address, PEER_PORT),
            "  leader_wait_ms: 3000",
            "  peers:",
            peers,
        ])
        self.config_path = os.path.join(self.dir, "wharf.yaml")
        with open(self.config_path, "w") as f:
            f.write(config + "\n")

    def start(self):
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.topo.exec_in(self.id) + [WHARF_BIN, "--config", self.config_path],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.paused = False
        deadline = time.monotonic() + 20
        while self.http("/healthz", timeout_s=1)[0] != 200:
            if self.proc.poll() is not None:
                raise RuntimeError("node %d exited with %s at start:\n%s" % (self.id, self.proc.returncode, self.tail()))
            if time.monotonic() > deadline:
                raise RuntimeError("node %d not serving 20 s after its start" % self.id)
            time.sleep(0.1)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)
        self.paused = sig == signal.SIGSTOP

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        if self.paused:
            self.signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError("node %d did not stop within 20 s of SIGTERM" % self.id)

    def http(self, path, timeout_s=2):
        """(status, body) of a GET on the admin listener; (None, error) when there is no answer."""
        conn = http.client.HTTPConnection(self.address, ADMIN_PORT, timeout=timeout_s)
        try:
            token = base64.b64encode(("ops:%s" % OPS_PASSWORD).encode()).decode()
            conn.request("GET", path, headers={"Authorization": "Basic " + token})
            r = conn.getresponse()
            return r.status, r.read().decode()
        except (OSError, http.client.HTTPException) as e:
            return None, str(e)
        finally:
            conn.close()

    def is_leader(self):
        status, body = self.http("/metrics")
        if status != 200:
            return False
        samples = parse_exposition(body)[0]
        return samples.get(("wharf_cluster_role", frozenset({("role", "leader")})), 0) == 1

    def ready(self):
        return self.http("/readyz")[0] == 200

    def api(self):
        return CmqClient(self.address, API_PORT, SECRET_ID, SECRET_KEY, timeout_s=REQUEST_TIMEOUT_S, retry_idle=False)

    def tail(self, lines=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""


def wait_for(what, predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("gave up after %d s waiting for %s" % (timeout_s, what))
        time.sleep(0.2)


class Workload:
    """Producers and consumers on random nodes; every request goes into the History."""

    def __init__(self, nodes, history, seed, producers=3, consumers=2):
        self.nodes, self.history, self.seed = nodes, history, seed
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.produce, args=(k,)) for k in range(producers)]
        self.threads += [threading.Thread(target=self.consume, args=(k,)) for k in range(consumers)]
        self.acked = 0

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=REQUEST_TIMEOUT_S * 3)

    def _call(self, clients, node, action, params):
        """The answer's code and the answer; (None, None) without an answer."""
        api = clients.get(node.id) or clients.setdefault(node.id, node.api())
        try:
            answer = api.call(action, params)
            return answer.get("code"), answer
        except Exception:  # killed, paused, cut off, or mid-restart: no answer
            clients.pop(node.id).close()
            return None, None

    def produce(self, k):
        rng = random.Random(self.seed * 1000 + k)
        clients, n = {}, 0
        while not self.stopping.is_set():
            body = "p%d-%d" % (k, n)
            n += 1
            started = time.monotonic()
            code, _ = self._call(clients, rng.choice(self.nodes), "SendMessage", {"queueName": QUEUE, "msgBody": body})
            self.history.send(body, started, time.monotonic(), code)
            if code == 0:
                self.acked += 1
            else:
                time.sleep(0.05)

    def consume(self, k):
        rng = random.Random(self.seed * 1000 + 500 + k)
        clients = {}
        while not self.stopping.is_set():
            node = rng.choice(self.nodes)
            started = time.monotonic()
            code, answer = self._call(clients, node, "ReceiveMessage", {"queueName": QUEUE, "pollingWaitSeconds": 1})
            if code != 0:
                if code != 7000:
                    time.sleep(0.05)
                continue
            body = answer["msgBody"]
            self.history.receive(body, started, time.monotonic())
            if rng.random() < 0.1:
                continue  # left undeleted: it comes back after the visibility timeout
            started = time.monotonic()
            code, _ = self._call(clients, rng.choice(self.nodes), "DeleteMessage",
                                 {"queueName": QUEUE, "receiptHandle": answer["receiptHandle"]})
            self.history.delete(body, started, time.monotonic(), code)


class Harness:
    def __init__(self, args, topo):
        self.args, self.topo = args, topo
        self.rng = random.Random(args.seed)
        ops_user = ops_entry()
        self.nodes = [Node(topo, i, args.size, args.workdir, ops_user) for i in range(1, args.size + 1)]
        self.history = History()

    def leader(self):
        found = []
        wait_for("a leader", lambda: found.extend(n for n in self.nodes if n.running() and not n.paused
                                                   and n.is_leader()) or found, 30)
        return found[0]

    def all_ready(self):
        wait_for("every node ready", lambda: all(n.ready() for n in self.nodes), READY_TIMEOUT_S)

    # Each fault: (name, function(hold_s)) that injects it, holds, and undoes it.
    def fault_isolate(self, who):
        def run(hold_s):
            node = self.leader() if who == "leader" else self.rng.choice([n for n in self.nodes if not n.is_leader()])
            log("cut node %d (%s) off from the other nodes for %.1f s" % (node.id, who, hold_s))
            self.topo.isolate(node.id)
            time.sleep(hold_s)
            self.topo.heal()
        return run

    def fault_cut_link(self, hold_s):
        """One link only, between the leader and one follower: that follower still reaches
        the third node, which still hears the leader (a partition that is not a clean split)."""
        leader = self.leader()
        follower = self.rng.choice([n for n in self.nodes if n is not leader])
        log("cut the link between node %d (leader) and node %d for %.1f s" % (leader.id, follower.id, hold_s))
        self.topo.set_link(leader.id, follower.id, False)
        time.sleep(hold_s)
        self.topo.heal()

    def fault_kill(self, who):
        def run(hold_s):
            node = self.leader() if who == "leader" else self.rng.choice([n for n in self.nodes if not n.is_leader()])
            log("kill -9 node %d (%s), down for %.1f s" % (node.id, who, hold_s))
            node.kill()
            time.sleep(hold_s)
            node.start()
        return run

    def fault_pause(self, hold_s):
        node = self.leader()
        log("SIGSTOP node %d (leader) for %.1f s" % (node.id, hold_s))
        node.signal(signal.SIGSTOP)
        time.sleep(hold_s)
        node.signal(signal.SIGCONT)

    def fault_restart(self, hold_s):
        node = self.rng.choice(self.nodes)
        log("restart node %d (SIGTERM, start again after %.1f s)" % (node.id, hold_s))
        node.stop()
        time.sleep(hold_s)
        node.start()

    def run(self):
        faults = [self.fault_isolate("leader"), self.fault_isolate("follower"), self.fault_cut_link,
                  self.fault_kill("leader"), self.fault_kill("follower"), self.fault_pause, self.fault_restart]
        for n in self.nodes:
            n.start()
        self.all_ready()
        api = self.leader().api()
        created = api.call("CreateQueue", {"queueName": QUEUE, "visibilityTimeout": VISIBILITY_S,
                                           "pollingWaitSeconds": 0})
        api.close()
        if created.get("code") != 0:
            raise RuntimeError("CreateQueue: %r" % created)
        workload = Workload(self.nodes, self.history, self.args.seed)
        workload.start()
        try:
            for cycle in range(1, self.args.cycles + 1):
                time.sleep(self.rng.uniform(0.5, 1.5))
                log("cycle %d of %d" % (cycle, self.args.cycles))
                self.rng.choice(faults)(self.rng.uniform(1.0, 4.0))
                self.all_ready()
                # Progress after the heal: the cluster takes sends again.
                before = workload.acked
                wait_for("acknowledged sends after the fault", lambda: workload.acked > before, READY_TIMEOUT_S)
        finally:
            workload.stop()
        self.drain()
        verdict = check(self.history)
        print(table(verdict), flush=True)
        return not failed(verdict)

    def drain(self):
        """Receives and deletes until the queue stays empty for longer than the visibility
        timeout (so the messages received and never deleted come back and are counted)."""
        self.all_ready()
        api = self.rng.choice(self.nodes).api()
        quiet_since = time.monotonic()
        deadline = time.monotonic() + 300
        while time.monotonic() - quiet_since < VISIBILITY_S + 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the queue did not drain in 300 s")
            started = time.monotonic()
            a = api.call("BatchReceiveMessage", {"queueName": QUEUE, "numOfMsg": 16, "pollingWaitSeconds": 1})
            if a.get("code") == 7000:
                continue
            if a.get("code") != 0:
                raise RuntimeError("BatchReceiveMessage while draining: %r" % a)
            quiet_since = time.monotonic()
            for m in a["msgInfoList"]:
                self.history.receive(m["msgBody"], started, time.monotonic())
            handles = {"receiptHandle.%d" % i: m["receiptHandle"] for i, m in enumerate(a["msgInfoList"])}
            api.call("BatchDeleteMessage", dict(queueName=QUEUE, **handles))
        api.close()

    def stop(self):
        for n in self.nodes:
            if n.running():
                n.kill()


def driver(args):
    """Runs in the clients' namespace."""
    topo = netns.Topology(args.size, tag=args.tag)
    harness = Harness(args, topo)
    ok = False
    try:
        ok = harness.run()
    finally:
        harness.stop()
        if not ok:
            for n in harness.nodes:
                print("---- node %d, the end of its log (%s)\n%s" % (n.id, n.log_path, n.tail()), flush=True)
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--seed", type=int, default=None, help="default: random, printed")
    p.add_argument("--size", type=int, default=3)
    p.add_argument("--workdir", default=None, help="default: a temporary directory, removed when the run passes")
    p.add_argument("--tag", help=argparse.SUPPRESS)  # set when the driver runs in the clients' namespace
    args = p.parse_args()
    if args.tag:
        sys.exit(driver(args))
    if os.geteuid() != 0:
        sys.exit("fault_harness: needs root (network namespaces)")
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    own_workdir = args.workdir is None
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="wharf-faults-")
    print("fault harness: %d nodes, %d cycles, seed %d (rerun with --seed %d), logs in %s"
          % (args.size, args.cycles, args.seed, args.seed, args.workdir), flush=True)
    topo = netns.Topology(args.size)
    try:
        cmd = topo.exec_in(0) + [sys.executable, os.path.abspath(__file__), "--tag", topo.tag,
                                 "--cycles", str(args.cycles), "--seed", str(args.seed),
                                 "--size", str(args.size), "--workdir", args.workdir]
        rc = subprocess.call(cmd, env=dict(os.environ, WHARF_BIN=os.path.abspath(WHARF_BIN)))
    finally:
        topo.close()
    if rc == 0 and own_workdir:
        shutil.rmtree(args.workdir, ignore_errors=True)
    sys.exit(rc)


if __name__ == "__main__":
    main()

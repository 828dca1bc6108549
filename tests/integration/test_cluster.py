"""The replicated queue core, three wharf processes on loopback (wharf only): any node serves
the CMQ API (followers relay to the leader), every node holds the same queues, a leader
killed with kill -9 under load loses no acknowledged message and a new one takes over, a
follower killed catches up from the log, nodes behind the trimmed log (a follower away, a
node added later) catch up by snapshot, MQTT users added at runtime reach every node, and without a majority a request gets code 6000
("no leader; retry") after cluster.leader_wait_ms instead of hanging. LargeSnapshotTest
(labelled slow) sends a follower a state of about 300 MB in chunks."""

import errno
import json
import os
import random
import socket
import struct
import subprocess
import threading
import time
import unittest

import mqtt_raw as raw
from admin_client import admin_get, metric, ops_entry, scrape
from free_port import free_port
from test_runtime_users import hash_of as runtime_hash
from wharf_fixture import HOST, Broker, QueueApiTestCase, certs, require_wharf, unique, wait_until


class Cluster:
    """Three wharf nodes (queue API and admin listeners) forming one queue core cluster."""

    def __init__(self, test, size=3, leader_wait_ms=5000, log_retain_entries=None, tls=None, small_disks=(),
                 election_timeout_ms=None, mqtt=False):
        """`tls`: per node id, (cert, key, ca) of its peer links' mutual TLS. `small_disks`: ids
        of nodes whose data_dir is a 160 MiB tmpfs (root only). `mqtt`: each node has an MQTT
        listener too (no anonymous clients)."""
        self.listeners = ("queue-api", "admin") + (("mqtt",) if mqtt else ())
        self.test, self.leader_wait_ms, self.tls = test, leader_wait_ms, tls or {}
        self.election_timeout_ms = election_timeout_ms
        self.queue = {} if log_retain_entries is None else {"log_retain_entries": log_retain_entries}
        self.peer_ports = [free_port() for _ in range(size)]
        self.peers = "\n".join('    - {id: %d, address: "127.0.0.1:%d"}' % (i + 1, p)
                               for i, p in enumerate(self.peer_ports))
        self.auth = "  users:\n    - %s\n" % ops_entry()
        self.nodes = [self._node(i + 1, port) for i, port in enumerate(self.peer_ports)]
        for node_id in small_disks:
            b = self.nodes[node_id - 1]
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", b.data_dir], check=True)

            def unmount(b=b):
                b.stop()
                subprocess.run(["umount", b.data_dir], check=True)
            test.addCleanup(unmount)
        for b in self.nodes:
            b.start()

    def _node(self, node_id, peer_port, join=False):
        section = ('cluster:\n  node_id: %d\n  bind: "127.0.0.1:%d"\n  leader_wait_ms: %d\n%s  peers:\n%s'
                   % (node_id, peer_port, self.leader_wait_ms, "  join: true\n" if join else "", self.peers))
        if node_id in self.tls:
            section += "\n  tls: {cert_file: %s, key_file: %s, ca_file: %s}" % self.tls[node_id]
        if self.election_timeout_ms:
            section += "\n  election_timeout_ms: %d" % self.election_timeout_ms
        b = Broker(self.listeners, name="node %d" % node_id, top_level=section, auth=self.auth,
                   listener_keys={"admin": "users: [ops]"}, queue=self.queue, anonymous=False)
        self.test._own_brokers.append(b)
        return b

    def start_joining_node(self):
        """A new node (the next id), started empty with cluster.join: it waits to be added.
        Returns it and its peer address."""
        port = free_port()
        b = self._node(len(self.nodes) + 1, port, join=True)
        self.nodes.append(b)
        self.peer_ports.append(port)
        b.start()
        return b, "127.0.0.1:%d" % port

    def node_id(self, b):
        return self.nodes.index(b) + 1

    def value(self, b, name, **labels):
        return metric(scrape(b)[0], name, **labels)

    def leader(self, among=None):
        """The node every running node (of `among`) names as its leader, once they agree."""
        running = [b for b in (among or self.nodes) if b.running()]
        found = []

        def agreed():
            ids = {self.value(b, "wharf_cluster_leader") for b in running}
            if len(ids) != 1 or 0 in ids:
                return False
            found[:] = [self.nodes[int(ids.pop()) - 1]]
            return found[0].running()

        wait_until(agreed, timeout_s=15, what="the running nodes agree on a leader")
        return found[0]


class ClusterTest(QueueApiTestCase):
    listeners = ("queue-api",)

    def setUp(self):
        require_wharf(self, "the replicated queue core is wharf's")
        super().setUp()

    def api_of(self, b):
        return self.cmq(broker=b, timeout_s=30)

    def test_any_node_serves_and_every_node_agrees(self):
        c = Cluster(self)
        leader = c.leader()
        a, b, d = (self.api_of(n) for n in c.nodes)
        q = self.new_queue("cl", client=a)
        ids = [self.send(q, "m%d" % i, client=(a, b, d)[i % 3]) for i in range(6)]
        got = self.receive(q, client=d)
        self.assertEqual(got["code"], 0, got)
        self.assertIn(got["msgId"], ids)
        self.delete(q, got["receiptHandle"], client=b)
        # Reads from every node see the same state, the leader's included.
        for api in (a, b, d):
            attrs = self.attributes(q, client=api)
            self.assertEqual((attrs["activeMsgNum"], attrs["inactiveMsgNum"]), (5, 0), attrs)
        # Every node applied the same log: their applied indexes meet.
        target = c.value(leader, "wharf_cluster_commit_index")
        for n in c.nodes:
            wait_until(lambda n=n: c.value(n, "wharf_cluster_applied_index") >= target,
                       what="node %d applied the log" % c.node_id(n))
            self.assertEqual(c.value(n, "wharf_cluster_role", role="leader"), 1 if n is leader else 0)
        # A long poll on a follower is answered by a send through another follower.
        followers = [n for n in c.nodes if n is not leader]
        waiter = self.api_of(followers[0])
        answer = {}
        q2 = self.new_queue("clwait", client=a)
        t = threading.Thread(target=lambda: answer.update(
            waiter.call("ReceiveMessage", {"queueName": q2, "pollingWaitSeconds": 20})))
        t.start()
        wait_until(lambda: c.value(leader, "wharf_queue_long_polls_waiting") >= 1,
                   what="the relayed receive waits on the leader")
        msg = self.send(q2, "wake", client=self.api_of(followers[1]))
        t.join(timeout=20)
        self.assertEqual((answer.get("code"), answer.get("msgId")), (0, msg), answer)

    def test_cluster_status_and_a_leadership_transfer(self):
        c = Cluster(self)
        leader = c.leader()
        api = self.api_of(leader)
        q = self.new_queue("xfer", client=api)
        self.send(q, "before", client=api)

        def cluster_of(n, path="/api/v1/cluster", method="GET"):
            status, _, body, _ = admin_get(n, path, method=method)
            return status, json.loads(body)

        # Every node describes the same group and the same leader.
        for n in c.nodes:
            status, s = cluster_of(n)
            self.assertEqual(status, 200, s)
            self.assertEqual((s["nodeId"], s["leader"]), (c.node_id(n), c.node_id(leader)), s)
            self.assertEqual(s["role"], "leader" if n is leader else "follower", s)
            self.assertEqual(sorted((m["id"], m["voter"]) for m in s["members"]), [(1, True), (2, True), (3, True)])
        # The leader knows how far each other member's log matches its own.
        wait_until(lambda: all(m.get("lag") == 0 for m in cluster_of(leader)[1]["members"]
                               if m["id"] != c.node_id(leader)), what="the followers' lag at 0")
        followers = [n for n in c.nodes if n is not leader]
        # A follower does not hand leadership over: it names the leader.
        status, answer = cluster_of(followers[0], "/api/v1/cluster/transfer", "POST")
        self.assertEqual(status, 409, answer)
        self.assertIn("node %d is" % c.node_id(leader), answer["error"])
        status, answer = cluster_of(leader, "/api/v1/cluster/transfer?to=9", "POST")
        self.assertEqual(status, 409, answer)
        self.assertIn("not another voter", answer["error"])
        # The leader hands over to the follower named; it stood for election and leads.
        target = followers[1]
        elections = c.value(target, "wharf_cluster_elections_total")
        status, answer = cluster_of(leader, "/api/v1/cluster/transfer?to=%d" % c.node_id(target), "POST")
        self.assertEqual((status, answer), (202, {"transferring": True, "to": c.node_id(target)}))
        self.assertIs(c.leader(), target)
        self.assertGreater(c.value(target, "wharf_cluster_elections_total"), elections)
        # Nothing was lost on the way, and sends through the old leader reach the new one.
        wait_until(lambda: api.call("SendMessage", {"queueName": q, "msgBody": "after"})["code"] == 0,
                   what="a send through the old leader")
        # ("after" may be there twice: a try answered 6000 during the hand-over may have committed.)
        self.assertGreaterEqual(self.attributes(q, client=self.api_of(target))["activeMsgNum"], 2)

    def test_a_node_joins_catches_up_and_votes_and_a_node_leaves(self):
        c = Cluster(self)
        leader = c.leader()
        api = self.api_of(leader)
        q = self.new_queue("join", client=api)
        for i in range(20):
            self.send(q, "m%d" % i, client=api)

        def call(n, path, method="GET"):
            status, _, body, _ = admin_get(n, path, method=method)
            return status, json.loads(body)

        def voters(n):
            return sorted(m["id"] for m in call(n, "/api/v1/cluster")[1]["members"] if m["voter"])

        new, address = c.start_joining_node()
        self.assertEqual(admin_get(new, "/readyz")[0], 503)  # it knows no leader: nobody added it yet
        followers = [n for n in c.nodes[:3] if n is not leader]
        status, answer = call(followers[0], "/api/v1/cluster/members?id=4&address=%s" % address, "POST")
        self.assertEqual(status, 409, answer)
        self.assertIn("node %d is" % c.node_id(leader), answer["error"])
        status, answer = call(leader, "/api/v1/cluster/members?id=4&address=%s" % address, "POST")
        self.assertEqual((status, answer), (202, {"adding": 4}))
        # It is sent the log, then made a voter; every node then counts four.
        wait_until(lambda: all(voters(n) == [1, 2, 3, 4] for n in c.nodes), timeout_s=30,
                   what="four voters on every node")
        wait_until(lambda: admin_get(new, "/readyz")[0] == 200, what="the new node ready")
        self.assertEqual(self.attributes(q, client=self.api_of(new))["activeMsgNum"], 20)
        status, answer = call(leader, "/api/v1/cluster/members?id=4&address=%s" % address, "POST")
        self.assertEqual(status, 409, answer)
        self.assertIn("in the group already", answer["error"])
        # A follower leaves, and is stopped: the other three (a majority of three) go on.
        gone = followers[1]
        status, answer = call(leader, "/api/v1/cluster/members/%d" % c.node_id(gone), "DELETE")
        self.assertEqual((status, answer), (202, {"removing": c.node_id(gone)}))
        rest = [n for n in c.nodes if n is not gone]
        wait_until(lambda: all(voters(n) == sorted(c.node_id(m) for m in rest) for n in rest), timeout_s=30,
                   what="three voters on the nodes that stay")
        gone.kill()
        self.send(q, "after", client=self.api_of(new))
        status, answer = call(leader, "/api/v1/cluster/members/%d" % c.node_id(gone), "DELETE")
        self.assertEqual(status, 409, answer)
        self.assertIn("not in the group", answer["error"])

    def test_leader_killed_under_load_loses_nothing_acknowledged(self):
        c = Cluster(self)
        leader = c.leader()
        q = self.new_queue("kill", client=self.api_of(c.nodes[0]))
        acked, unknown = set(), set()
        lock = threading.Lock()
        stop = threading.Event()

        def producer(k):
            rng = random.Random(k)
            clients = {}
            n = 0
            while not stop.is_set():
                node = rng.choice([b for b in c.nodes if b.running()])
                api = clients.get(id(node)) or clients.setdefault(id(node), node.cmq("queue-api", timeout_s=30))
                body = "p%d-%d" % (k, n)
                n += 1
                try:
                    a = api.call("SendMessage", {"queueName": q, "msgBody": body})
                except Exception:  # the node died under us: no answer
                    clients.pop(id(node), None)
                    with lock:
                        unknown.add(body)
                    continue
                with lock:
                    (acked if a.get("code") == 0 else unknown).add(body)
                if a.get("code") != 0:
                    time.sleep(0.05)
            for api in clients.values():
                api.close()

        threads = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: len(acked) >= 200, timeout_s=30, what="sends acknowledged before the kill")
        killed_at = len(acked)
        leader.kill()
        # A new leader among the other two, and sends acknowledged through it.
        survivors = [b for b in c.nodes if b is not leader]
        c.leader(among=survivors)
        wait_until(lambda: len(acked) >= killed_at + 200, timeout_s=30, what="sends acknowledged after the kill")
        leader.start()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        # Drain from the node that was killed: everything acknowledged is there.
        api = self.api_of(leader)
        received = set()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            a = api.call("BatchReceiveMessage", {"queueName": q, "numOfMsg": 16, "pollingWaitSeconds": 1})
            if a["code"] == 7000:
                break
            self.assertEqual(a["code"], 0, a)
            received.update(m["msgBody"] for m in a["msgInfoList"])
            api.call("BatchDeleteMessage", dict(queueName=q, **{"receiptHandle.%d" % i: m["receiptHandle"]
                                                              for i, m in enumerate(a["msgInfoList"])}))
        lost = acked - received
        self.assertEqual(lost, set(), "%d acknowledged sends lost (of %d; %d without an answer)"
                         % (len(lost), len(acked), len(unknown)))
        self.assertLessEqual(received, acked | unknown, "received what was never sent")

    def test_a_killed_follower_catches_up_from_the_log(self):
        c = Cluster(self)
        leader = c.leader()
        follower = next(b for b in c.nodes if b is not leader)
        api = self.api_of(leader)
        q = self.new_queue("catch", client=api)
        follower.kill()
        for i in range(100):
            self.send(q, "while-away-%d" % i, client=api)
        follower.start()
        target = c.value(leader, "wharf_cluster_commit_index")
        wait_until(lambda: c.value(follower, "wharf_cluster_applied_index") >= target, timeout_s=15,
                   what="the restarted follower applied the log")
        self.assertEqual(self.attributes(q, client=self.api_of(follower))["activeMsgNum"], 100)

    def test_nodes_behind_the_trimmed_log_catch_up_by_snapshot(self):
        # A short log: a follower away for a few hundred sends, and a node added later, need
        # entries the others trimmed, and are sent the leader's state instead (in chunks).
        c = Cluster(self, log_retain_entries=16)
        leader = c.leader()
        follower = next(b for b in c.nodes if b is not leader)
        api = self.api_of(leader)
        q = self.new_queue("snap", client=api)
        follower.kill()
        bodies = ["away-%d-" % i + "x" * 2000 for i in range(300)]
        for b in bodies:
            self.send(q, b, client=api)
        received = self.receive_one(q, client=api)  # one in flight: its state travels too
        follower.start()
        wait_until(lambda: c.value(follower, "wharf_cluster_snapshots_received_total") >= 1, timeout_s=30,
                   what="the follower installed a snapshot")
        target = c.value(leader, "wharf_cluster_commit_index")
        wait_until(lambda: c.value(follower, "wharf_cluster_applied_index") >= target, timeout_s=15,
                   what="the follower caught up")
        self.assertGreaterEqual(c.value(leader, "wharf_cluster_snapshots_sent_total"), 1)
        self.assertGreater(c.value(follower, "wharf_cluster_snapshot_received_bytes_total"), 300 * 2000)
        attributes = self.attributes(q, client=self.api_of(follower))
        self.assertEqual((attributes["activeMsgNum"], attributes["inactiveMsgNum"]), (299, 1))

        new, address = c.start_joining_node()
        status, _, body, _ = admin_get(leader, "/api/v1/cluster/members?id=4&address=%s" % address, method="POST")
        self.assertEqual(status, 202, body)
        wait_until(lambda: admin_get(new, "/readyz")[0] == 200, timeout_s=30, what="the new node ready")
        self.assertGreaterEqual(c.value(new, "wharf_cluster_snapshots_received_total"), 1)
        # The leader steps aside: the restarted follower and the new node serve every message.
        leader.kill()
        api = self.api_of(new)
        got = {received["msgBody"]}
        deadline = time.monotonic() + 60
        while len(got) < len(bodies) and time.monotonic() < deadline:
            a = api.call("BatchReceiveMessage", {"queueName": q, "numOfMsg": 16, "pollingWaitSeconds": 1})
            if a["code"] != 0:
                continue  # 6000 during the election, 7000 while the received one is invisible
            got.update(m["msgBody"] for m in a["msgInfoList"])
            api.call("BatchDeleteMessage", dict(queueName=q, **{"receiptHandle.%d" % i: m["receiptHandle"]
                                                              for i, m in enumerate(a["msgInfoList"])}))
        self.assertEqual(got, set(bodies))

    def test_runtime_mqtt_users_are_replicated_to_every_node(self):
        c = Cluster(self, mqtt=True)
        leader = c.leader()
        follower, other = [b for b in c.nodes if b is not leader]
        other.kill()

        def put_user(node, name, password):
            body = json.dumps({"passwordHash": runtime_hash(password),
                               "acl": [{"permission": "allow", "topic": "fleet/%u/#"}]})
            status, _, text, _ = admin_get(node, "/api/v1/users/" + name, method="PUT", body=body)
            self.assertEqual(status, 200, text)

        def logs_in(node, name, password):
            c = raw.RawClient(HOST, node.ports["mqtt"])
            try:
                return c.connect(unique("rt"), expect_reason=None, username=name, password=password).reason == 0
            finally:
                c.close()

        # Through a follower (relayed to the leader), while a third node is away.
        put_user(follower, "meter-1", "pw-1")
        for node in (leader, follower):
            wait_until(lambda node=node: logs_in(node, "meter-1", "pw-1"), what="meter-1 logs in on every node")
        other.start()
        wait_until(lambda: logs_in(other, "meter-1", "pw-1"), timeout_s=15, what="the node that was away knows it")
        # The leader dies: what it acknowledged holds on the others.
        leader.kill()
        self.assertTrue(logs_in(follower, "meter-1", "pw-1"))
        self.assertFalse(logs_in(follower, "meter-1", "wrong"))

    def test_peer_links_with_mutual_tls_refuse_a_node_of_another_ca(self):
        k = certs()
        good = (k.node_cert, k.node_key, k.ca_cert)
        c = Cluster(self, tls={1: good, 2: good, 3: (k.rogue_node_cert, k.rogue_node_key, k.ca_cert)})
        one, two, rogue = c.nodes
        leader = c.leader(among=[one, two])
        q = self.new_queue("tls", client=self.api_of(leader))
        self.send(q, "over tls", client=self.api_of(one if leader is two else two))
        self.assertEqual(self.receive_one(q, client=self.api_of(leader))["msgBody"], "over tls")
        # The rogue node's links fail the handshake both ways: it never hears of a leader.
        wait_until(lambda: c.value(one, "wharf_cluster_peer_tls_refused_total") > 0
                   and c.value(rogue, "wharf_cluster_peer_tls_refused_total") > 0,
                   what="handshakes with the rogue node refused on both sides")
        self.assertEqual(c.value(rogue, "wharf_cluster_leader"), 0)
        self.assertEqual(admin_get(rogue, "/readyz")[0], 503)
        # Plain TCP, with a hello a wharf would send, is no TLS handshake either.
        refused = c.value(one, "wharf_cluster_peer_tls_refused_total")
        with socket.create_connection(("127.0.0.1", c.peer_ports[0]), timeout=5) as s:
            hello = bytes([1]) + bytes([3]) + b"\x05wharf"  # format 1, node 3, cluster "wharf"
            s.sendall(struct.pack(">IBI", 5 + len(hello), 1, 0) + hello)
            try:
                self.assertEqual(s.recv(100), b"")  # closed
            except ConnectionResetError:
                pass  # closed with our bytes unread
        wait_until(lambda: c.value(one, "wharf_cluster_peer_tls_refused_total") > refused,
                   what="the plain connection counted")

    def test_a_full_disk_on_one_node_stops_that_node_only(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root (CI runs as root)")
        c = Cluster(self, small_disks=(3,))
        healthy, full = c.nodes[:2], c.nodes[2]
        leader = c.leader()
        if leader is full:  # the full node a follower: the group goes on without it
            status, _, body, _ = admin_get(full, "/api/v1/cluster/transfer?to=1", method="POST")
            self.assertEqual(status, 202, body)
            leader = c.leader()
            self.assertIsNot(leader, full)
        api = self.api_of(leader)
        q = self.new_queue("full", client=api)
        acked, sent = set(), set()

        def send(node, body):
            sent.add(body)
            a = self.api_of(node).call("SendMessage", {"queueName": q, "msgBody": body})
            if a["code"] == 0:
                acked.add(body)
            return a

        send(leader, "before")
        filler = os.path.join(full.data_dir, "filler")
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
        # The two others are a majority: everything sent through them is acknowledged. The
        # full node refuses once its own log write is refused: 6000, never a hang.
        for i in range(20):
            self.assertEqual(send(healthy[i % 2], "healthy-%d" % i)["code"], 0)
            self.assertIn(send(full, "full-%d" % i)["code"], (0, 6000))
        wait_until(lambda: admin_get(full, "/readyz")[0] == 503, what="the full node not ready")
        self.assertEqual(send(full, "refused")["code"], 6000)
        self.assertIsNone(full.proc.poll(), "the full node exited")
        # Space back, a restart: it catches up, and it holds everything acknowledged.
        os.remove(filler)
        full.kill()
        full.start()
        wait_until(lambda: c.value(full, "wharf_cluster_applied_index") >= c.value(leader, "wharf_cluster_commit_index"),
                   timeout_s=30, what="the restarted node caught up")
        received = {a["msgBody"] for a in self.drain(q, client=self.api_of(full))}
        self.assertLessEqual(acked, received, "acknowledged sends lost")
        self.assertLessEqual(received, sent, "received what was never sent")

    def test_without_a_majority_requests_get_6000_not_a_hang(self):
        c = Cluster(self, leader_wait_ms=1000)
        c.leader()
        alone = c.nodes[0]
        api = self.api_of(alone)
        q = self.new_queue("alone", client=api)
        for b in c.nodes[1:]:
            b.kill()
        started = time.monotonic()
        a = api.call("SendMessage", {"queueName": q, "msgBody": "nobody to agree"})
        self.assertEqual(a["code"], 6000, a)
        self.assertIn("retry", a["message"])
        self.assertLess(time.monotonic() - started, 25, "answered only after the client gave up")
        # The majority back: requests succeed again.
        for b in c.nodes[1:]:
            b.start()
        wait_until(lambda: api.call("SendMessage", {"queueName": q, "msgBody": "again"})["code"] == 0,
                   timeout_s=30, what="a send succeeds once the majority is back")


if __name__ == "__main__":
    unittest.main()


def rss_bytes(broker, field="VmHWM"):
    """The broker process's peak resident memory so far (VmHWM), or now (VmRSS)."""
    with open("/proc/%d/status" % broker.pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no %s for pid %d" % (field, broker.pid))


class LargeSnapshotTest(QueueApiTestCase):
    """Labelled slow: a follower behind by a state of about 300 MB gets it in chunks."""
    listeners = ("queue-api",)

    def setUp(self):
        require_wharf(self, "the replicated queue core is wharf's")
        super().setUp()

    def api_of(self, b):
        return self.cmq(broker=b, timeout_s=60)

    STATE_MESSAGES, MESSAGE_BYTES = 300, 1 << 20

    @staticmethod
    def body(i):
        # Incompressible enough that the bytes on the wire are the state's own.
        return ("%06d" % i) + random.Random(i).randbytes(LargeSnapshotTest.MESSAGE_BYTES // 2 - 6).hex()[:-6] + "......"

    def test_a_state_of_hundreds_of_megabytes_travels_in_chunks(self):
        # Megabyte entries keep a node busy: a longer election timeout than the default keeps
        # a loaded machine from taking that for a lost leader (a change of leader only costs
        # retries here, but the sends below would then go through another node).
        c = Cluster(self, log_retain_entries=64, election_timeout_ms=3000)
        leader = c.leader()
        follower = next(b for b in c.nodes if b is not leader)
        api = self.api_of(leader)
        q = self.new_queue("large", client=api, maxMsgSize=1048576)
        follower.kill()
        errors, retried = [], []

        def producer(k):
            client = leader.cmq("queue-api", timeout_s=60)
            for i in range(k, self.STATE_MESSAGES, 4):
                for _ in range(20):  # 6000 ("retry") while leadership moves
                    a = client.call("SendMessage", {"queueName": q, "msgBody": self.body(i)})
                    if a.get("code") != 6000:
                        break
                    retried.append(i)
                    time.sleep(0.2)
                if a.get("code") != 0:
                    errors.append(a)
            client.close()

        threads = [threading.Thread(target=producer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        self.assertEqual(errors, [])
        state_bytes = self.STATE_MESSAGES * len(self.body(0))
        leader = c.leader()  # the one that sends the snapshot (it may have changed meanwhile)
        with open("/proc/%d/clear_refs" % leader.pid, "w") as f:
            f.write("5")  # the leader's peak memory from here on: the transfer's, not the sends'
        leader_before = rss_bytes(leader, "VmRSS")
        follower.start(timeout_s=30)
        wait_until(lambda: c.value(follower, "wharf_cluster_snapshots_received_total") >= 1, timeout_s=240,
                   what="the follower installed the large snapshot")
        target = c.value(leader, "wharf_cluster_commit_index")
        wait_until(lambda: c.value(follower, "wharf_cluster_applied_index") >= target, timeout_s=60,
                   what="the follower caught up")
        received = c.value(follower, "wharf_cluster_snapshot_received_bytes_total")
        self.assertGreater(received, state_bytes)
        # Chunk after chunk: neither side held the state whole (the follower's peak includes
        # its start; the leader's counts from the transfer's start).
        grew = {"leader": rss_bytes(leader) - leader_before, "follower": rss_bytes(follower)}
        for side, grown in grew.items():
            self.assertLess(grown, state_bytes // 3, "the %s took %.0f MB for a state of %.0f MB"
                            % (side, grown / 1e6, state_bytes / 1e6))
        # A retried send may be there twice (its first try may have committed).
        active = self.attributes(q, client=self.api_of(follower))["activeMsgNum"]
        self.assertGreaterEqual(active, self.STATE_MESSAGES)
        self.assertLessEqual(active, self.STATE_MESSAGES + len(retried))
        # The leader goes: the follower and the third node serve the messages, byte for byte.
        leader.kill()
        api = self.api_of(follower)
        seen = 0
        deadline = time.monotonic() + 120
        while seen < 20 and time.monotonic() < deadline:
            a = api.call("ReceiveMessage", {"queueName": q, "pollingWaitSeconds": 1})
            if a["code"] != 0:
                continue  # 6000 during the election
            body = a["msgBody"]
            self.assertEqual(body, self.body(int(body[:6])))
            seen += 1
        self.assertEqual(seen, 20)

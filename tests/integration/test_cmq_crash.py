"""Durability of the CMQ queue API under kill -9 (docs/API.md, Durability).

Senders (threads, each with its own connection) send unique bodies with SendMessage and
BatchSendMessage; consumers receive and delete. At a random moment (seeded: the seed is
printed; WHARF_TEST_SEED reproduces it) the broker is killed with SIGKILL and started
again on the same data_dir. Then the queue is drained:
  - every message whose send answered code 0 and that was not deleted comes back, with
    the msgId the send answered;
  - no message whose DeleteMessage/BatchDeleteMessage answered code 0 comes back;
  - nothing comes back that was never sent.
Messages whose send or delete got no answer (in flight at the kill) may go either way; a
message received but not deleted, or whose delete answered 4430, must come back;
duplicates of not-deleted messages are allowed (at least once). Three rounds on the same
broker; each round also checks that the earlier rounds' queues stay drained.

The kill point is drawn as a number of acknowledged sends, not as a delay, so that it
falls inside the traffic whatever the broker's speed.

The same with an ordered queue (test_kill_9_keeps_every_group_in_order): each sender owns
some message groups and sends each group's messages one after another; consumers check
that a message comes only when every message sent before it in its group was deleted (or
its delete was on its way); after the restart the drain gives each group in order, and
every acknowledged message not deleted comes back. wharf only; label slow."""

import collections
import os
import random
import sys
import threading
import time
import unittest

from cmq_client import indexed
from wharf_fixture import WAIT_S, QueueApiTestCase, unique

SENDERS = 4
CONSUMERS = 2
ROUNDS = 3
MAX_SENDS_PER_SENDER = 5000  # a bound; the kill comes long before


class Traffic:
    """Shared record of what the broker acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}        # body -> msgId (send answered code 0)
        self.attempted = set()  # bodies sent, answered or not
        self.deleted = set()   # bodies whose delete answered code 0
        self.delete_pending = set()  # bodies a delete was sent for and not answered (yet)
        self.received = {}     # body -> msgId, seen by consumers before the kill
        self.errors = []       # protocol errors (not connection failures)
        self.acked_count = 0
        self.acked_event = threading.Event()
        self.kill_at = None
        self.stop = threading.Event()
        self.killed = threading.Event()  # set just before the kill

    def failed(self, what):
        """A thread's call raised: expected once the kill is under way, an error before."""
        if not self.killed.is_set():
            self.errors.append(what)

    def on_acked(self, pairs):
        with self.lock:
            for body, msg_id in pairs:
                self.acked[body] = msg_id
            self.acked_count += len(pairs)
            if self.kill_at is not None and self.acked_count >= self.kill_at:
                self.acked_event.set()


class OrderedTraffic(Traffic):
    """Traffic on an ordered queue, by (group, seq): bodies are "g<group>-<seq>"."""

    def __init__(self):
        super().__init__()
        self.attempted_in_group = collections.defaultdict(list)  # group -> seqs, in send order

    @staticmethod
    def parse(body):
        group, seq = body[1:].split("-")
        return int(group), int(seq)

    def out_of_order(self, body):
        """Under the lock: what sent before `body` in its group is neither deleted nor being
        deleted (a receive of `body` should have waited for it)."""
        group, seq = self.parse(body)
        return [j for j in self.attempted_in_group[group] if j < seq
                and "g%d-%d" % (group, j) not in self.deleted | self.delete_pending]


class CmqCrashTest(QueueApiTestCase):
    listeners = ("queue-api",)

    def setUp(self):
        super().setUp()
        seed = os.environ.get("WHARF_TEST_SEED")
        self.seed = int(seed) if seed else random.randrange(1, 2 ** 31)
        sys.stderr.write("\n%s: WHARF_TEST_SEED=%d\n" % (self.id(), self.seed))
        self.rng = random.Random(self.seed)

    # --------------------------------------------------------------- traffic threads

    def sender(self, broker, q, index, traffic, batch_every):
        c = broker.cmq("queue-api", retry_idle=False, timeout_s=10)
        seq = 0
        try:
            while not traffic.stop.is_set() and seq < MAX_SENDS_PER_SENDER:
                if batch_every and seq % batch_every == 0:
                    bodies = ["s%d-%d" % (index, seq + i) for i in range(4)]
                    with traffic.lock:
                        traffic.attempted.update(bodies)
                    a = c.call("BatchSendMessage", dict(queueName=q, **indexed("msgBody", bodies)))
                    if a.get("code") != 0:
                        traffic.errors.append(("BatchSendMessage", a))
                        return
                    traffic.on_acked([(b, m["msgId"]) for b, m in zip(bodies, a["msgList"])])
                    seq += 4
                else:
                    body = "s%d-%d" % (index, seq)
                    with traffic.lock:
                        traffic.attempted.add(body)
                    a = c.call("SendMessage", dict(queueName=q, msgBody=body))
                    if a.get("code") != 0:
                        traffic.errors.append(("SendMessage", a))
                        return
                    traffic.on_acked([(body, a["msgId"])])
                    seq += 1
        except Exception as e:
            traffic.failed(("sender", repr(e)))
        finally:
            c.close()

    def consumer(self, broker, q, traffic, single_delete):
        c = broker.cmq("queue-api", retry_idle=False, timeout_s=10)
        try:
            while not traffic.stop.is_set():
                a = c.call("BatchReceiveMessage", dict(queueName=q, numOfMsg=8,
                                                       pollingWaitSeconds=1))
                if a.get("code") == 7000:
                    continue
                if a.get("code") != 0:
                    traffic.errors.append(("BatchReceiveMessage", a))
                    return
                msgs = a["msgInfoList"]
                with traffic.lock:
                    for m in msgs:
                        traffic.received[m["msgBody"]] = m["msgId"]
                if single_delete:
                    for m in msgs:
                        with traffic.lock:
                            traffic.delete_pending.add(m["msgBody"])
                        d = c.call("DeleteMessage", dict(queueName=q,
                                                         receiptHandle=m["receiptHandle"]))
                        with traffic.lock:
                            traffic.delete_pending.discard(m["msgBody"])
                            if d.get("code") == 0:
                                traffic.deleted.add(m["msgBody"])
                        if d.get("code") not in (0, 4430):
                            # 4430: the visibility timeout (2 s) ended and another consumer
                            # received the message again; allowed.
                            traffic.errors.append(("DeleteMessage", d))
                    continue
                with traffic.lock:
                    traffic.delete_pending.update(m["msgBody"] for m in msgs)
                d = c.call("BatchDeleteMessage", dict(queueName=q, **indexed(
                    "receiptHandle", [m["receiptHandle"] for m in msgs])))
                with traffic.lock:
                    traffic.delete_pending.difference_update(m["msgBody"] for m in msgs)
                failed = set()
                if d.get("code") == 6010:
                    failed = {e["receiptHandle"] for e in d["errorList"]}
                elif d.get("code") != 0:
                    traffic.errors.append(("BatchDeleteMessage", d))
                    return
                with traffic.lock:
                    traffic.deleted.update(m["msgBody"] for m in msgs
                                           if m["receiptHandle"] not in failed)
                if any(e["code"] != 4430 for e in d.get("errorList", [])):
                    traffic.errors.append(("BatchDeleteMessage", d))
        except Exception as e:
            traffic.failed(("consumer", repr(e)))
        finally:
            c.close()

    # --------------------------------------------------------------- the test

    def drain(self, api, q, deadline_s=60):
        """Receives and deletes until the queue holds nothing (visible, invisible or
        delayed); returns [(body, msgId)] in receive order."""
        got = []
        deadline = time.monotonic() + deadline_s
        while True:
            self.assertLess(time.monotonic(), deadline, "queue %s not drained" % q)
            a = api.call("BatchReceiveMessage", dict(queueName=q, numOfMsg=16, pollingWaitSeconds=1))
            if a["code"] == 7000:
                g = self.attributes(q, client=api)
                if g["activeMsgNum"] + g["inactiveMsgNum"] + g["delayMsgNum"] == 0:
                    return got
                continue
            self.assertEqual(a["code"], 0, a)
            got += [(m["msgBody"], m["msgId"]) for m in a["msgInfoList"]]
            self.ok("BatchDeleteMessage", dict(queueName=q, **indexed(
                "receiptHandle", [m["receiptHandle"] for m in a["msgInfoList"]])), client=api)

    def kill_during(self, broker, traffic, threads):
        """Starts the traffic `threads`, kills the broker with SIGKILL once `traffic` reached
        its kill point (or after 60 s), stops and joins the threads; returns whether the kill
        point was reached."""
        for t in threads:
            t.start()
        fired = traffic.acked_event.wait(60)
        # A random few more milliseconds, so the kill lands at any point of a commit.
        time.sleep(self.rng.random() * 0.02)
        traffic.killed.set()
        broker.kill()
        traffic.stop.set()
        for t in threads:
            t.join(30)
            self.assertFalse(t.is_alive(), "a traffic thread hangs after the kill")
        return fired

    def ordered_sender(self, broker, q, groups, traffic):
        """Sends each of `groups`' messages after the previous one of that group was
        answered: single sends and batches that may hold several of one group, in order."""
        c = broker.cmq("queue-api", retry_idle=False, timeout_s=10)
        next_seq = {g: 0 for g in groups}
        rng = random.Random(groups[0])
        try:
            while not traffic.stop.is_set() and sum(next_seq.values()) < MAX_SENDS_PER_SENDER:
                picked = [rng.choice(groups) for _ in range(rng.choice([1, 1, 3, 6]))]
                bodies = []
                with traffic.lock:
                    for g in picked:
                        bodies.append("g%d-%d" % (g, next_seq[g]))
                        traffic.attempted.add(bodies[-1])
                        traffic.attempted_in_group[g].append(next_seq[g])
                        next_seq[g] += 1
                if len(bodies) == 1:
                    a = c.call("SendMessage", dict(queueName=q, msgBody=bodies[0], msgGroupId=str(picked[0])))
                    ids = [a.get("msgId")]
                else:
                    a = c.call("BatchSendMessage", dict(queueName=q, **indexed("msgBody", bodies),
                                                        **indexed("msgGroupId", [str(g) for g in picked])))
                    ids = [m["msgId"] for m in a.get("msgList", [])]
                if a.get("code") != 0:
                    traffic.errors.append(("send", a))
                    return
                traffic.on_acked(list(zip(bodies, ids)))
        except Exception as e:
            traffic.failed(("ordered sender", repr(e)))
        finally:
            c.close()

    def ordered_consumer(self, broker, q, traffic):
        c = broker.cmq("queue-api", retry_idle=False, timeout_s=10)
        try:
            while not traffic.stop.is_set():
                a = c.call("BatchReceiveMessage", dict(queueName=q, numOfMsg=8, pollingWaitSeconds=1))
                if a.get("code") == 7000:
                    continue
                if a.get("code") != 0:
                    traffic.errors.append(("BatchReceiveMessage", a))
                    return
                msgs = a["msgInfoList"]
                with traffic.lock:
                    for m in msgs:
                        early = traffic.out_of_order(m["msgBody"])
                        if early:
                            traffic.errors.append(("out of order", m["msgBody"], "before", early))
                        if m.get("msgGroupId") != str(traffic.parse(m["msgBody"])[0]):
                            traffic.errors.append(("group", m))
                    traffic.delete_pending.update(m["msgBody"] for m in msgs)
                d = c.call("BatchDeleteMessage", dict(queueName=q, **indexed(
                    "receiptHandle", [m["receiptHandle"] for m in msgs])))
                failed = {e["receiptHandle"] for e in d.get("errorList", [])}
                if d.get("code") not in (0, 6010) or any(e["code"] != 4430 for e in d.get("errorList", [])):
                    traffic.errors.append(("BatchDeleteMessage", d))
                with traffic.lock:
                    traffic.delete_pending.difference_update(m["msgBody"] for m in msgs)
                    traffic.deleted.update(m["msgBody"] for m in msgs if m["receiptHandle"] not in failed)
        except Exception as e:
            traffic.failed(("ordered consumer", repr(e)))
        finally:
            c.close()

    def test_kill_9_keeps_every_group_in_order(self):
        broker = self.new_broker(listeners=("queue-api",))
        api = self.cmq(broker=broker)
        q = self.new_queue("ordcrash", client=api, orderedQueue=1, visibilityTimeout=2)
        traffic = OrderedTraffic()
        traffic.kill_at = self.rng.randrange(50, 2000)
        groups = 12
        threads = [threading.Thread(target=self.ordered_sender,
                                    args=(broker, q, list(range(i, groups, SENDERS)), traffic))
                   for i in range(SENDERS)]
        threads += [threading.Thread(target=self.ordered_consumer, args=(broker, q, traffic))
                    for _ in range(CONSUMERS)]
        fired = self.kill_during(broker, traffic, threads)
        self.assertTrue(fired, "only %d sends acknowledged, kill point %d" % (traffic.acked_count, traffic.kill_at))
        self.assertEqual(traffic.errors, [], "seed %d: before the kill" % self.seed)
        sys.stderr.write("ordered: killed after %d acked sends, %d deletes\n"
                         % (traffic.acked_count, len(traffic.deleted)))

        broker.start()
        after = self.drain(self.cmq(broker=broker), q)
        drained = collections.defaultdict(list)
        for body, msg_id in after:
            self.assertIn(body, traffic.attempted, "never sent: %r" % body)
            if body in traffic.acked:
                self.assertEqual(msg_id, traffic.acked[body], body)
            group, seq = traffic.parse(body)
            drained[group].append(seq)
        for group, seqs in drained.items():
            self.assertEqual(seqs, sorted(seqs), "seed %d: group %d drained out of order" % (self.seed, group))
            # What was sent before the first one drained was consumed before the kill (or
            # its delete was on its way).
            early = [j for j in traffic.attempted_in_group[group] if j < seqs[0]
                     and "g%d-%d" % (group, j) not in traffic.deleted | traffic.delete_pending]
            self.assertEqual(early, [], "seed %d: group %d skipped ahead" % (self.seed, group))
        drained_bodies = {body for body, _ in after}
        missing = sorted(set(traffic.acked) - traffic.deleted - traffic.delete_pending - drained_bodies)
        self.assertEqual(missing, [], "seed %d: %d acknowledged messages lost" % (self.seed, len(missing)))
        self.assertEqual(sorted(traffic.deleted & drained_bodies), [], "deleted messages came back")

    def test_kill_9_loses_no_acknowledged_message(self):
        broker = self.new_broker(listeners=("queue-api",))
        drained_queues = []
        for round_no in range(1, ROUNDS + 1):
            api = self.cmq(broker=broker)
            # Visibility 2 s: messages received but not deleted before the kill come back
            # soon after the restart.
            q = self.new_queue("crash%d" % round_no, client=api, visibilityTimeout=2)
            traffic = Traffic()
            # Mostly inside the traffic; sometimes at the very start.
            traffic.kill_at = self.rng.choice([self.rng.randrange(1, 50),
                                               self.rng.randrange(50, 3000),
                                               self.rng.randrange(50, 3000)])
            threads = [threading.Thread(target=self.sender,
                                        args=(broker, q, i, traffic, (2 + i) if i % 2 else 0))
                       for i in range(SENDERS)]
            threads += [threading.Thread(target=self.consumer,
                                         args=(broker, q, traffic, bool(i % 2)))
                        for i in range(CONSUMERS)]
            fired = self.kill_during(broker, traffic, threads)
            self.assertTrue(fired, "round %d: only %d sends acknowledged, kill point %d"
                            % (round_no, traffic.acked_count, traffic.kill_at))
            self.assertEqual(traffic.errors, [], "round %d: error answers before the kill"
                             % round_no)
            sys.stderr.write("round %d: killed after %d acked sends, %d deletes\n"
                             % (round_no, traffic.acked_count, len(traffic.deleted)))

            broker.start()
            api = self.cmq(broker=broker)
            after = self.drain(api, q)
            bodies_after = {}
            for body, msg_id in after:
                self.assertIn(body, traffic.attempted, "never sent: %r" % body)
                if body in traffic.acked:
                    self.assertEqual(msg_id, traffic.acked[body], body)
                bodies_after[body] = msg_id
            # A message whose delete was in flight at the kill may be gone either way; one
            # received but not deleted (or whose delete answered 4430) must come back.
            missing = sorted(set(traffic.acked) - traffic.deleted - traffic.delete_pending
                             - set(bodies_after))
            self.assertEqual(missing, [], "round %d (seed %d): %d acknowledged messages lost"
                             % (round_no, self.seed, len(missing)))
            resurrected = sorted(traffic.deleted & set(bodies_after))
            self.assertEqual(resurrected, [], "round %d (seed %d): deleted messages came back"
                             % (round_no, self.seed))
            for old in drained_queues:
                a = self.receive(old, wait=0, client=api)
                self.assertEqual(a["code"], 7000, "drained queue %s not empty after a "
                                 "restart: %r" % (old, a))
            drained_queues.append(q)


if __name__ == "__main__":
    unittest.main()

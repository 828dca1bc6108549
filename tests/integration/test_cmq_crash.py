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
falls inside the traffic whatever the broker's speed. wharf only; label slow."""

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

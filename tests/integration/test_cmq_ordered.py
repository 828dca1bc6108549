"""Ordered queues over the CMQ API (docs/API.md, "Ordered queues and message groups"):
orderedQueue at CreateQueue, fixed after; msgGroupId on SendMessage and msgGroupId.n on
BatchSendMessage; one message of a group at a time, in send order, groups in parallel; a
long poll woken when a delete lets a group's next message through; the order after a
restart. wharf only."""

import threading
import time
import unittest

from admin_client import MetricsMixin
from cmq_client import indexed
from wharf_fixture import QueueApiTestCase


class OrderedQueueTest(MetricsMixin, QueueApiTestCase):
    listeners = ("queue-api",)

    def batch_receive(self, q, n=16, wait=0):
        a = self.api.call("BatchReceiveMessage", dict(queueName=q, numOfMsg=n, pollingWaitSeconds=wait))
        self.assertIn(a.get("code"), (0, 7000), a)
        return a.get("msgInfoList", [])

    def delete(self, q, msg):
        self.ok("DeleteMessage", dict(queueName=q, receiptHandle=msg["receiptHandle"]))

    def test_ordered_is_chosen_at_create_shown_and_fixed(self):
        ordered = self.new_queue("ord", orderedQueue=1)
        plain = self.new_queue("plain")
        self.assertEqual(self.attributes(ordered)["orderedQueue"], 1)
        self.assertEqual(self.attributes(plain)["orderedQueue"], 0)
        a = self.fails(4000, "SetQueueAttributes", dict(queueName=ordered, orderedQueue=0, visibilityTimeout=9))
        self.assertIn("orderedQueue", a["message"])
        self.fails(4000, "SetQueueAttributes", dict(queueName=plain, orderedQueue=1))
        after = self.attributes(ordered)
        self.assertEqual((after["orderedQueue"], after["visibilityTimeout"]), (1, 30))  # nothing changed
        self.ok("SetQueueAttributes", dict(queueName=ordered, orderedQueue=1, visibilityTimeout=9))
        self.assertEqual(self.attributes(ordered)["visibilityTimeout"], 9)
        self.fails(4000, "CreateQueue", dict(queueName="ord2x", orderedQueue=2))
        self.fails(4000, "CreateQueue", dict(queueName="ord2x", orderedQueue="yes"))

    def test_groups_refused_where_they_do_not_belong(self):
        plain = self.new_queue("plain")
        a = self.fails(4000, "SendMessage", dict(queueName=plain, msgBody="x", msgGroupId="g"))
        self.assertIn("msgGroupId", a["message"])
        ordered = self.new_queue("ord", orderedQueue=1)
        self.fails(4000, "SendMessage", dict(queueName=ordered, msgBody="x", msgGroupId="g" * 129))
        self.fails(4000, "BatchSendMessage", dict(queueName=ordered, **indexed("msgBody", ["a", "b"]),
                                                  **indexed("msgGroupId", ["g"])))
        self.assertEqual(self.attributes(plain)["activeMsgNum"], 0)
        self.assertEqual(self.attributes(ordered)["activeMsgNum"], 0)

    def test_one_message_of_a_group_at_a_time_in_send_order(self):
        q = self.new_queue("ord", orderedQueue=1, visibilityTimeout=30)
        # Device a and b interleaved in one batch; c with one group for its whole batch.
        self.ok("BatchSendMessage", dict(queueName=q, **indexed("msgBody", ["a1", "b1", "a2", "b2", "a3"]),
                                         **indexed("msgGroupId", ["a", "b", "a", "b", "a"])))
        self.ok("BatchSendMessage", dict(queueName=q, msgGroupId="c", **indexed("msgBody", ["c1", "c2"])))
        self.send(q, "d1")  # no group: the queue's default group
        self.send(q, "d2")

        got = self.batch_receive(q)
        self.assertEqual([m["msgBody"] for m in got], ["a1", "b1", "c1", "d1"])
        self.assertEqual([m.get("msgGroupId") for m in got], ["a", "b", "c", None])
        self.assertEqual(self.batch_receive(q), [])
        counts = self.attributes(q)
        self.assertEqual((counts["activeMsgNum"], counts["inactiveMsgNum"]), (5, 4), counts)

        order = [m["msgBody"] for m in got]
        held = {m["msgGroupId"] if "msgGroupId" in m else "": m for m in got}
        while held:
            group, msg = sorted(held.items())[0]
            self.delete(q, msg)
            del held[group]
            for m in self.batch_receive(q):
                order.append(m["msgBody"])
                self.assertNotIn(m.get("msgGroupId", ""), held, "two of one group out at once")
                held[m.get("msgGroupId", "")] = m
        for group in ("a", "b", "c", "d"):
            self.assertEqual([b for b in order if b[0] == group],
                             sorted(b for b in order if b[0] == group), order)
        self.assertEqual(len(order), 9)

    def test_a_head_not_deleted_comes_again_before_the_rest(self):
        q = self.new_queue("ord", orderedQueue=1, visibilityTimeout=1)
        self.ok("BatchSendMessage", dict(queueName=q, msgGroupId="g", **indexed("msgBody", ["m1", "m2"])))
        first = self.receive_one(q)
        self.assertEqual(first["msgBody"], "m1")
        again = self.receive_one(q, wait=5)  # a long poll that the visibility timeout ends
        self.assertEqual((again["msgBody"], again["dequeueCount"]), ("m1", 2))
        self.fails(4430, "DeleteMessage", dict(queueName=q, receiptHandle=first["receiptHandle"]))
        self.delete(q, again)
        self.assertEqual(self.receive_one(q)["msgBody"], "m2")

    def test_a_delete_wakes_a_long_poll_for_the_next_of_the_group(self):
        q = self.new_queue("ord", orderedQueue=1, visibilityTimeout=60)
        self.ok("BatchSendMessage", dict(queueName=q, msgGroupId="g", **indexed("msgBody", ["m1", "m2"])))
        head = self.receive_one(q)
        answer = {}

        def poll():
            c = self.cmq()
            started = time.monotonic()
            answer["a"] = c.call("ReceiveMessage", dict(queueName=q, pollingWaitSeconds=10))
            answer["s"] = time.monotonic() - started

        t = threading.Thread(target=poll)
        t.start()
        time.sleep(0.5)
        self.assertNotIn("a", answer, "answered while the head was held: %r" % answer)
        self.delete(q, head)
        t.join(15)
        self.assertEqual(answer["a"].get("msgBody"), "m2", answer)
        self.assertLess(answer["s"], 5, answer)

    def test_dead_letter_unblocks_the_group_and_is_counted(self):
        dlq = self.new_queue("dlq")
        q = self.new_queue("ord", orderedQueue=1, visibilityTimeout=1, deadLetterQueueName=dlq,
                           policy=0, maxReceiveCount=1)
        self.ok("BatchSendMessage", dict(queueName=q, msgGroupId="g", **indexed("msgBody", ["m1", "m2"])))
        unblocked_before = self.metric_now("wharf_queue_group_heads_dead_lettered_total")
        self.assertEqual(self.receive_one(q)["msgBody"], "m1")
        time.sleep(1.2)
        nxt = self.receive_one(q)  # m1 goes to the dead-letter queue; m2 comes
        self.assertEqual(nxt["msgBody"], "m2")
        letter = self.receive_one(dlq)
        self.assertEqual((letter["msgBody"], letter.get("msgGroupId")), ("m1", "g"))
        self.assertEqual(self.metric_now("wharf_queue_group_heads_dead_lettered_total"), unblocked_before + 1)
        self.delete(dlq, letter)
        self.assertEqual(self.receive(dlq)["code"], 7000)
        self.delete(q, nxt)
        self.assertEqual(self.receive(q)["code"], 7000)

    def test_order_survives_a_kill_9(self):
        broker = self.new_broker(listeners=("queue-api",))
        api = self.cmq(broker=broker)
        q = self.new_queue("ord", client=api, orderedQueue=1, visibilityTimeout=300)
        self.ok("BatchSendMessage", dict(queueName=q, **indexed("msgBody", ["a1", "b1", "a2", "b2"]),
                                         **indexed("msgGroupId", ["a", "b", "a", "b"])), client=api)
        held = self.ok("BatchReceiveMessage", dict(queueName=q, numOfMsg=16), client=api)["msgInfoList"]
        self.assertEqual([m["msgBody"] for m in held], ["a1", "b1"])
        by_body = {m["msgBody"]: m for m in held}
        self.ok("DeleteMessage", dict(queueName=q, receiptHandle=by_body["b1"]["receiptHandle"]), client=api)
        broker.kill()
        broker.start()
        api = self.cmq(broker=broker)
        self.assertEqual(self.attributes(q, client=api)["orderedQueue"], 1)
        # a1 is still held (300 s): only b2 may come; its handle from before still deletes a1.
        got = self.ok("BatchReceiveMessage", dict(queueName=q, numOfMsg=16), client=api)["msgInfoList"]
        self.assertEqual([m["msgBody"] for m in got], ["b2"])
        self.ok("DeleteMessage", dict(queueName=q, receiptHandle=by_body["a1"]["receiptHandle"]), client=api)
        got = self.ok("BatchReceiveMessage", dict(queueName=q, numOfMsg=16), client=api)["msgInfoList"]
        self.assertEqual([m["msgBody"] for m in got], ["a2"])


if __name__ == "__main__":
    unittest.main()

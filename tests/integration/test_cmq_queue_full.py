"""CMQ error 4410 end to end: a queue holding maxMsgHeapNum messages refuses SendMessage and
BatchSendMessage, changes nothing, and takes messages again once one is deleted. The
smallest heap CMQ allows is 1,000,000 messages, so the queue is filled by several
keep-alive clients sending batches of 16 (slow: ~1 minute). wharf only."""

import threading
import unittest

from cmq_client import indexed
from wharf_fixture import QueueApiTestCase

HEAP = 1000000  # CMQ's smallest maxMsgHeapNum
BATCH = 16
SENDERS = 4


class QueueFullSlowTest(QueueApiTestCase):
    listeners = ("queue-api",)

    def fill(self, queue):
        """Sends HEAP one-byte messages in batches from SENDERS clients; returns the errors."""
        batches = HEAP // BATCH
        errors = []

        def send(first, last):
            c = self.cmq()
            params = dict(queueName=queue, **indexed("msgBody", ["x"] * BATCH))
            for _ in range(first, last):
                a = c.call("BatchSendMessage", params)
                if a.get("code") != 0:
                    errors.append(a)
                    return

        share = batches // SENDERS
        threads = [threading.Thread(target=send, args=(i * share, batches if i == SENDERS - 1 else (i + 1) * share))
                   for i in range(SENDERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    def active(self, queue):
        return self.ok("GetQueueAttributes", dict(queueName=queue))["activeMsgNum"]

    def test_full_queue_refuses_sends_4410_until_a_delete(self):
        queue = self.new_queue("full", maxMsgHeapNum=HEAP)
        self.assertEqual(self.fill(queue), [])
        self.assertEqual(self.active(queue), HEAP)

        self.fails(4410, "SendMessage", dict(queueName=queue, msgBody="one more"))
        self.fails(4410, "BatchSendMessage", dict(queueName=queue, **indexed("msgBody", ["a", "b"])))
        self.assertEqual(self.active(queue), HEAP)  # the refused sends left nothing behind

        got = self.ok("ReceiveMessage", dict(queueName=queue, pollingWaitSeconds=0))
        # A received message still occupies the heap until it is deleted.
        self.fails(4410, "SendMessage", dict(queueName=queue, msgBody="still full"))
        self.ok("DeleteMessage", dict(queueName=queue, receiptHandle=got["receiptHandle"]))
        self.ok("SendMessage", dict(queueName=queue, msgBody="room for one"))
        self.fails(4410, "SendMessage", dict(queueName=queue, msgBody="full again"))


if __name__ == "__main__":
    unittest.main()

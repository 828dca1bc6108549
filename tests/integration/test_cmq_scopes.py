"""Queue API credentials scoped to queues and topics (wharf only): a scoped SecretId may do
what its grants allow (read, write, manage on a name, a prefix, or '*') and gets code 4100
with a message for anything else, which changes nothing."""

import unittest

from wharf_fixture import QueueApiTestCase, unique

SCOPES = ("[{queue: 'orders-*', access: [read, write]}, {queue: audit, access: [write]},"
          " {topic: alerts, access: [write]}]")
AUTH_FAILED = 4100


class ScopedCredentialTest(QueueApiTestCase):
    broker_options = {"extra_credentials": [("scoped", "scoped-secret", SCOPES)]}

    def setUp(self):
        super().setUp()
        self.scoped = self.cmq(credential=len(self.broker.credentials) - 1)
        self.orders = unique("orders-").replace("_", "-")
        self.payroll = unique("payroll").replace("_", "-")
        for queue in (self.orders, "audit", self.payroll):
            answer = self.api.call("CreateQueue", {"queueName": queue})
            self.assertIn(answer["code"], (0, 4460), answer)
        answer = self.api.call("CreateTopic", {"topicName": "alerts"})
        self.assertIn(answer["code"], (0, 4460), answer)

    def refused(self, action, params, words):
        answer = self.scoped.call(action, params)
        self.assertEqual(answer["code"], AUTH_FAILED, answer)
        for w in words:
            self.assertIn(w, answer["message"])

    def test_read_and_write_within_a_prefix_grant(self):
        self.ok("SendMessage", {"queueName": self.orders, "msgBody": "o1"}, client=self.scoped)
        got = self.ok("ReceiveMessage", {"queueName": self.orders, "pollingWaitSeconds": 0}, client=self.scoped)
        self.assertEqual(got["msgBody"], "o1")
        self.ok("DeleteMessage", {"queueName": self.orders, "receiptHandle": got["receiptHandle"]},
                client=self.scoped)
        self.ok("GetQueueAttributes", {"queueName": self.orders}, client=self.scoped)

    def test_outside_its_grants_it_gets_4100_and_nothing_changes(self):
        self.refused("SendMessage", {"queueName": self.payroll, "msgBody": "x"},
                     ["SecretId 'scoped' may not write queue '%s'" % self.payroll])
        attrs = self.ok("GetQueueAttributes", {"queueName": self.payroll})
        self.assertEqual(attrs["activeMsgNum"], 0)
        # Write-only on audit: it may send, not receive.
        self.ok("SendMessage", {"queueName": "audit", "msgBody": "a"}, client=self.scoped)
        self.refused("ReceiveMessage", {"queueName": "audit"}, ["may not read queue 'audit'"])
        # No manage grant: no creating, deleting or changing queues, even under its prefix.
        self.refused("CreateQueue", {"queueName": unique("orders-x")}, ["may not manage queue"])
        self.refused("DeleteQueue", {"queueName": self.orders}, ["may not manage queue"])
        self.ok("GetQueueAttributes", {"queueName": self.orders})
        # No '*' grant: no listing.
        self.refused("ListQueue", {}, ["may not list every queue"])

    def test_topic_grants(self):
        self.ok("PublishMessage", {"topicName": "alerts", "msgBody": "fire"}, client=self.scoped)
        self.refused("GetTopicAttributes", {"topicName": "alerts"}, ["may not read topic 'alerts'"])
        self.refused("Subscribe", {"topicName": "alerts", "subscriptionName": "s", "protocol": "queue",
                                   "endpoint": self.payroll}, ["may not manage topic 'alerts'"])

    def test_unscoped_credentials_may_do_everything(self):
        self.ok("ListQueue", {})
        self.ok("SendMessage", {"queueName": self.payroll, "msgBody": "p"})


if __name__ == "__main__":
    unittest.main()

"""Retained messages: set, replace, delete, delivery on subscribe, persistence across
a broker restart, and message expiry of retained messages."""

import time
import unittest

from wharf_fixture import V5, V311, BrokerTestCase, PacketTypes, props, unique


class RetainedTest(BrokerTestCase):

    def retained_for(self, topic_filter, publisher, qos=1, version=V5, broker=None):
        """Payloads (with retain flags) a fresh subscriber to `topic_filter` receives
        on subscribe, in arrival order."""
        c = self.client(broker=broker, version=version)
        c.subscribe(topic_filter, qos=qos)
        msgs = [m for m in c.fence(publisher) if not m.topic.startswith("fence")]
        c.close()
        return msgs

    def test_set_replace_delete(self):
        topic = unique("ret")
        pub = self.client()
        pub.publish(topic, b"first", qos=1, retain=True)
        msgs = self.retained_for(topic, pub)
        self.assertEqual([(m.payload, m.retain) for m in msgs], [(b"first", True)])

        pub.publish(topic, b"second", qos=1, retain=True)
        msgs = self.retained_for(topic, pub)
        self.assertEqual([(m.payload, m.retain) for m in msgs], [(b"second", True)])

        pub.publish(topic, b"", qos=1, retain=True)
        self.assertEqual(self.retained_for(topic, pub), [])

    def test_empty_retained_is_delivered_to_current_subscribers(self):
        # [MQTT-3.3.1-10/11]: it deletes the retained message but is forwarded as a
        # normal message to existing subscriptions.
        topic = unique("retdel")
        sub, pub = self.client(), self.client()
        pub.publish(topic, b"x", qos=1, retain=True)
        sub.subscribe(topic, qos=1)
        self.assertEqual(sub.expect().payload, b"x")
        pub.publish(topic, b"", qos=1, retain=True)
        msg = sub.expect()
        self.assertEqual((msg.payload, msg.retain), (b"", False))

    def test_non_retained_publish_keeps_retained(self):
        topic = unique("retkeep")
        pub = self.client()
        pub.publish(topic, b"kept", qos=1, retain=True)
        pub.publish(topic, b"transient", qos=1, retain=False)
        self.assertEqual([m.payload for m in self.retained_for(topic, pub)], [b"kept"])
        pub.publish(topic, b"", qos=1, retain=True)

    def test_delivered_on_subscribe_with_retain_flag_and_min_qos(self):
        base = unique("retq")
        pub = self.client(version=V311)
        for q in (0, 1, 2):
            pub.publish("%s/%d" % (base, q), b"q%d" % q, qos=q, retain=True)
        for sub_qos in (0, 1, 2):
            with self.subTest(sub_qos=sub_qos):
                msgs = self.retained_for(base + "/+", pub, qos=sub_qos, version=V311)
                got = sorted((m.topic, m.payload, m.qos, m.retain) for m in msgs)
                want = sorted(("%s/%d" % (base, q), b"q%d" % q, min(q, sub_qos), True)
                              for q in (0, 1, 2))
                self.assertEqual(got, want)
        for q in (0, 1, 2):
            pub.publish("%s/%d" % (base, q), b"", qos=1, retain=True)

    def test_wildcard_subscribe_gets_all_matching_retained(self):
        base = unique("retwc")
        pub = self.client()
        topics = [base + "/a", base + "/b/c", base + "/b/d", base]
        for t in topics:
            pub.publish(t, t.encode(), qos=1, retain=True)
        self.assertEqual(sorted(m.topic for m in self.retained_for(base + "/#", pub)),
                         sorted(topics))
        self.assertEqual(sorted(m.topic for m in self.retained_for(base + "/b/+", pub)),
                         sorted([base + "/b/c", base + "/b/d"]))
        for t in topics:
            pub.publish(t, b"", qos=1, retain=True)

    def test_retained_message_expiry(self):
        topic = unique("retexp")
        pub = self.client()
        pub.publish(topic, b"short", qos=1, retain=True,
                    properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=2))
        msgs = self.retained_for(topic, pub)
        self.assertEqual([m.payload for m in msgs], [b"short"])
        self.assertLessEqual(msgs[0].properties.MessageExpiryInterval, 2)
        time.sleep(3)
        self.assertEqual(self.retained_for(topic, pub), [])

    def test_retained_expiry_interval_counts_down(self):
        topic = unique("retexp60")
        pub = self.client()
        pub.publish(topic, b"long", qos=1, retain=True,
                    properties=props(PacketTypes.PUBLISH, MessageExpiryInterval=60))
        self.addCleanup(pub.publish, topic, b"", 1, True)
        time.sleep(2.1)
        msgs = self.retained_for(topic, pub)
        self.assertEqual([m.payload for m in msgs], [b"long"])
        self.assertLessEqual(msgs[0].properties.MessageExpiryInterval, 58)
        self.assertGreaterEqual(msgs[0].properties.MessageExpiryInterval, 50)


class RetainedRestartTest(BrokerTestCase):

    def test_retained_survives_restart(self):
        broker = self.new_broker()
        base = unique("retrs")
        pub = self.client(broker=broker)
        pub.publish(base + "/kept", b"kept-payload", qos=1, retain=True)
        pub.publish(base + "/deleted", b"x", qos=1, retain=True)
        pub.publish(base + "/deleted", b"", qos=1, retain=True)
        pub.publish(base + "/replaced", b"old", qos=1, retain=True)
        pub.publish(base + "/replaced", b"new", qos=2, retain=True)
        pub.close()
        broker.restart()
        pub = self.client(broker=broker)
        c = self.client(broker=broker)
        c.subscribe(base + "/#", qos=2)
        got = sorted((m.topic, m.payload, m.retain) for m in c.fence(pub))
        self.assertEqual(got, [(base + "/kept", b"kept-payload", True),
                               (base + "/replaced", b"new", True)])


if __name__ == "__main__":
    unittest.main()

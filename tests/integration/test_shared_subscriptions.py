"""Shared subscriptions ($share/<group>/<filter>): one delivery per group, every group
gets every message, members leaving do not lose acknowledged messages."""

import collections
import time
import unittest

from wharf_fixture import V5, V311, BrokerTestCase, WAIT_S, unique


class SharedSubscriptionTest(BrokerTestCase):

    def members(self, group, topic_filter, n, version=V5):
        out = []
        for _ in range(n):
            c = self.client(version=version)
            c.subscribe("$share/%s/%s" % (group, topic_filter), qos=1)
            out.append(c)
        return out

    def collect(self, clients, total, timeout_s=4 * WAIT_S):
        """Payloads received per client index until `total` arrived in all."""
        got = collections.defaultdict(list)
        count = 0
        deadline = time.monotonic() + timeout_s
        while count < total:
            progressed = False
            for i, c in enumerate(clients):
                for m in c.drain():
                    got[i].append(m.payload)
                    count += 1
                    progressed = True
            if not progressed:
                if time.monotonic() > deadline:
                    raise AssertionError("shared subscribers got %d of %d messages: %r"
                                         % (count, total, dict(got)))
                time.sleep(0.01)
        return got

    def assert_exactly_once(self, got, sent):
        everything = [p for ps in got.values() for p in ps]
        self.assertEqual(sorted(everything), sorted(sent))  # no loss, no duplicates
        self.assertEqual(len(set(everything)), len(everything))

    def test_each_message_to_exactly_one_member(self):
        for version in (V311, V5):
            with self.subTest(version=version):
                topic = unique("sh/one")
                group = self.members(unique("g"), topic, 3, version)
                pub = self.client()
                sent = [b"%d" % i for i in range(60)]
                for p in sent:
                    pub.publish(topic, p, qos=1)
                got = self.collect(group, len(sent))
                self.assert_exactly_once(got, sent)
                # Any reasonable balancing (round robin, random, least loaded) gives
                # every member something out of 60.
                self.assertEqual(len([i for i in got if got[i]]), 3, dict(got))
                for c in group:
                    self.assertEqual(c.fence(pub), [])  # nothing extra arrives later

    def test_second_group_gets_every_message(self):
        topic = unique("sh/two")
        g1 = self.members(unique("g1"), topic, 3)
        g2 = self.members(unique("g2"), topic, 2)
        plain = self.client()
        plain.subscribe(topic, qos=1)
        pub = self.client()
        sent = [b"%d" % i for i in range(30)]
        for p in sent:
            pub.publish(topic, p, qos=1)
        self.assert_exactly_once(self.collect(g1, len(sent)), sent)
        self.assert_exactly_once(self.collect(g2, len(sent)), sent)
        # A non-shared subscriber to the same filter gets them all too.
        self.assertEqual([plain.expect().payload for _ in sent], sent)

    def test_shared_with_wildcard_filter(self):
        base = unique("sh/wc")
        group = self.members(unique("g"), base + "/+/data", 2)
        pub = self.client()
        sent = []
        for i in range(20):
            p = b"%d" % i
            pub.publish("%s/dev%d/data" % (base, i), p, qos=1)
            sent.append(p)
        pub.publish(base + "/dev0/other", b"nope", qos=1)
        self.assert_exactly_once(self.collect(group, len(sent)), sent)
        for c in group:
            self.assertEqual(c.fence(pub), [])

    def test_member_leaving_mid_stream(self):
        topic = unique("sh/leave")
        group = self.members(unique("g"), topic, 3)
        pub = self.client()
        first = [b"a%d" % i for i in range(30)]
        for p in first:
            pub.publish(topic, p, qos=1)
        got_first = self.collect(group, len(first))
        self.assert_exactly_once(got_first, first)
        # The leaving member is gone before the second half is published.
        group[2].disconnect()
        second = [b"b%d" % i for i in range(30)]
        for p in second:
            pub.publish(topic, p, qos=1)  # each acknowledged before the next
        got_second = self.collect(group[:2], len(second))
        self.assert_exactly_once(got_second, second)

    def test_unsubscribed_member_gets_nothing(self):
        topic = unique("sh/unsub")
        group_name = unique("g")
        group = self.members(group_name, topic, 2)
        group[1].unsubscribe("$share/%s/%s" % (group_name, topic))
        pub = self.client()
        sent = [b"%d" % i for i in range(10)]
        for p in sent:
            pub.publish(topic, p, qos=1)
        self.assertEqual([group[0].expect().payload for _ in sent], sent)
        self.assertEqual(group[1].fence(pub), [])


if __name__ == "__main__":
    unittest.main()

"""CMQ topic API (docs/API.md): topics, subscriptions and their attributes, publishing to
queue subscriptions, tag filters, routing-key bindings, errors 4000/4400/4440/4460, over
HTTP and HTTPS. HTTP push is in test_cmq_push.py. wharf only."""

import time
import unittest

from cmq_client import indexed
from wharf_fixture import QueueApiTestCase, unique


def now_s():
    return int(time.time())


class TopicActions:
    """The topic tests; run over HTTP and HTTPS by the two classes at the end."""

    # ------------------------------------------------------------------ helpers

    def new_topic(self, prefix="t", **attributes):
        name = unique(prefix)
        a = self.ok("CreateTopic", dict(topicName=name, **attributes))
        self.assertTrue(a.get("topicId"), a)
        return name

    def subscribe_queue(self, topic, queue=None, name=None, filter_tags=(), binding_keys=()):
        """A queue subscription (SIMPLIFIED) of `topic` into `queue` (new by default);
        returns the queue name."""
        queue = queue or self.new_queue("sub")
        params = dict(topicName=topic, subscriptionName=name or unique("s"), protocol="queue",
                      endpoint=queue, notifyContentFormat="SIMPLIFIED")
        params.update(indexed("filterTag", list(filter_tags)))
        params.update(indexed("bindingKey", list(binding_keys)))
        a = self.ok("Subscribe", params)
        self.assertTrue(a.get("subscriptionId"), a)
        return queue

    def publish(self, topic, body, tags=(), routing_key=None):
        params = dict(topicName=topic, msgBody=body, **indexed("msgTag", list(tags)))
        if routing_key is not None:
            params["routingKey"] = routing_key
        a = self.ok("PublishMessage", params)
        self.assertTrue(a.get("msgId"), a)
        return a["msgId"]

    def bodies_until_fence(self, queue, fence):
        """The bodies that reached `queue` before `fence` (which must arrive), and checks
        nothing follows it."""
        got = [m["msgBody"] for m in self.drain(queue, until_body=fence)]
        self.assert_empty(queue)
        return sorted(got[:-1])

    # ------------------------------------------------------------------ topics

    def test_create_get_list_delete_topic(self):
        t0 = now_s()
        for filter_type in (1, 2):
            with self.subTest(filterType=filter_type):
                name = unique("topic")
                a = self.ok("CreateTopic", dict(topicName=name, maxMsgSize=2048,
                                                filterType=filter_type))
                topic_id = a["topicId"]
                self.assertTrue(topic_id)
                g = self.ok("GetTopicAttributes", dict(topicName=name))
                self.assertEqual(g["maxMsgSize"], 2048)
                self.assertEqual(g["filterType"], filter_type)
                self.assertIsInstance(g["msgCount"], int)
                self.assertTrue(t0 - 1 <= g["createTime"] <= now_s() + 1, g)
                self.assertTrue(g["createTime"] <= g["lastModifyTime"] <= now_s() + 1, g)
                listed = self.ok("ListTopic", dict(searchWord=name))
                self.assertEqual(listed["totalCount"], 1)
                self.assertEqual(listed["topicList"], [{"topicId": topic_id, "topicName": name}])
                self.fails(4460, "CreateTopic", dict(topicName=name))
                self.ok("DeleteTopic", dict(topicName=name))
                self.fails(4440, "GetTopicAttributes", dict(topicName=name))
                self.fails(4440, "DeleteTopic", dict(topicName=name))
                self.assertEqual(self.ok("ListTopic", dict(searchWord=name))["totalCount"], 0)

    def test_topic_defaults_and_validation(self):
        name = self.new_topic("tdef")
        g = self.ok("GetTopicAttributes", dict(topicName=name))
        self.assertEqual(g["maxMsgSize"], 65536)
        self.assertEqual(g["filterType"], 1)
        for params in (dict(filterType=3), dict(filterType=0), dict(maxMsgSize=1023),
                       dict(maxMsgSize=1048577), dict(maxMsgSize="big")):
            with self.subTest(**params):
                self.fails(4000, "CreateTopic", dict(topicName=unique("bad"), **params))
        for bad in ("", "1topic", "a.b", "a" * 65, "a b"):
            with self.subTest(topicName=bad):
                self.fails(4000, "CreateTopic", dict(topicName=bad))
        self.fails(4000, "CreateTopic", {})

    def test_list_topic_paging(self):
        prefix = unique("tl")
        names = ["%s-%d" % (prefix, i) for i in range(5)]
        for n in names:
            self.ok("CreateTopic", dict(topicName=n))
        seen = []
        for offset in (0, 2, 4):
            page = self.ok("ListTopic", dict(searchWord=prefix, offset=offset, limit=2))
            self.assertEqual(page["totalCount"], 5)
            seen += [t["topicName"] for t in page["topicList"]]
        self.assertEqual(sorted(seen), names)

    def test_set_topic_attributes(self):
        name = self.new_topic("tset", maxMsgSize=1024)
        q = self.subscribe_queue(name)
        self.fails(4400, "PublishMessage", dict(topicName=name, msgBody="x" * 1025))
        self.ok("SetTopicAttributes", dict(topicName=name, maxMsgSize=4096))
        self.assertEqual(self.ok("GetTopicAttributes", dict(topicName=name))["maxMsgSize"], 4096)
        self.publish(name, "x" * 1025)
        self.assertEqual(self.receive_one(q)["msgBody"], "x" * 1025)
        self.fails(4000, "SetTopicAttributes", dict(topicName=name, maxMsgSize=100))
        self.fails(4440, "SetTopicAttributes", dict(topicName=unique("none"), maxMsgSize=4096))

    def test_missing_topic_4440(self):
        t = unique("missing")
        for action, params in [
                ("PublishMessage", dict(msgBody="x")),
                ("BatchPublishMessage", indexed("msgBody", ["x"])),
                ("Subscribe", dict(subscriptionName="s", protocol="queue", endpoint="q",
                                   notifyContentFormat="SIMPLIFIED")),
                ("ListSubscriptionByTopic", {}),
                ("GetSubscriptionAttributes", dict(subscriptionName="s")),
                ("Unsubscribe", dict(subscriptionName="s"))]:
            with self.subTest(action=action):
                self.fails(4440, action, dict(topicName=t, **params))

    # ------------------------------------------------------------------ publishing

    def test_publish_to_queue_subscriptions(self):
        topic = self.new_topic("pub")
        q1, q2 = self.subscribe_queue(topic), self.subscribe_queue(topic)
        self.publish(topic, "to both")
        for q in (q1, q2):
            a = self.receive_one(q)
            self.assertEqual(a["msgBody"], "to both")  # SIMPLIFIED: the raw body
            self.delete(q, a["receiptHandle"])
        ids = self.ok("BatchPublishMessage", dict(topicName=topic, **indexed(
            "msgBody", ["b1", "b2", "b3"])))["msgList"]
        self.assertEqual(len({m["msgId"] for m in ids}), 3)
        for q in (q1, q2):
            self.assertEqual(sorted(m["msgBody"] for m in self.drain_n(q, 3)), ["b1", "b2", "b3"])

    def test_batch_publish_limits(self):
        topic = self.new_topic("bpub", maxMsgSize=1024)
        self.fails(4000, "BatchPublishMessage", dict(topicName=topic, **indexed(
            "msgBody", ["x"] * 17)))
        self.fails(4000, "BatchPublishMessage", dict(topicName=topic))
        self.fails(4000, "BatchPublishMessage", dict(topicName=topic, **indexed(
            "msgBody", ["x", "y"], step=2)))
        self.fails(4400, "BatchPublishMessage", dict(topicName=topic, **indexed(
            "msgBody", ["x", "y" * 1025])))
        self.fails(4000, "PublishMessage", dict(topicName=topic, msgBody=""))
        self.fails(4000, "PublishMessage", dict(topicName=topic))

    def test_publish_validation(self):
        topic = self.new_topic("pval")
        for what, params in [
                ("6 tags", indexed("msgTag", ["a", "b", "c", "d", "e", "f"])),
                ("tag of 17 chars", indexed("msgTag", ["x" * 17])),
                ("routing key of 65 bytes", dict(routingKey="k" * 65)),
                ("routing key with 16 dots", dict(routingKey=".".join(["w"] * 17)))]:
            with self.subTest(what):
                self.fails(4000, "PublishMessage", dict(topicName=topic, msgBody="x", **params))
        self.publish(topic, "x", tags=["a", "b", "c", "d", "e"])
        self.publish(topic, "x", tags=["x" * 16])
        rk = self.new_topic("rkval", filterType=2)
        self.publish(rk, "x", routing_key="k" * 64)
        self.publish(rk, "x", routing_key=".".join(["w"] * 16))

    # ------------------------------------------------------------------ subscriptions

    def test_subscription_lifecycle(self):
        topic = self.new_topic("life")
        q = self.new_queue("lifeq")
        name = unique("s")
        t0 = now_s()
        a = self.ok("Subscribe", dict(topicName=topic, subscriptionName=name, protocol="queue",
                                      endpoint=q, notifyContentFormat="SIMPLIFIED",
                                      **indexed("filterTag", ["red", "blue"])))
        sub_id = a["subscriptionId"]
        self.assertTrue(sub_id)
        self.fails(4460, "Subscribe", dict(topicName=topic, subscriptionName=name, protocol="queue",
                                           endpoint=q, notifyContentFormat="SIMPLIFIED"))
        g = self.ok("GetSubscriptionAttributes", dict(topicName=topic, subscriptionName=name))
        self.assertEqual(g["protocol"], "queue")
        self.assertEqual(g["endpoint"], q)
        self.assertEqual(g["notifyContentFormat"], "SIMPLIFIED")
        self.assertEqual(g["notifyStrategy"], "EXPONENTIAL_DECAY_RETRY")
        self.assertEqual(sorted(g["filterTag"]), ["blue", "red"])
        self.assertEqual(g["bindingKey"], [])
        self.assertIsInstance(g["msgCount"], int)
        self.assertTrue(t0 - 1 <= g["createTime"] <= now_s() + 1, g)
        self.assertTrue(g["createTime"] <= g["lastModifyTime"] <= now_s() + 1, g)

        listed = self.ok("ListSubscriptionByTopic", dict(topicName=topic))
        self.assertEqual(listed["totalCount"], 1)
        entry = listed["subscriptionList"][0]
        self.assertEqual((entry["subscriptionId"], entry["subscriptionName"], entry["protocol"],
                          entry["endpoint"]), (sub_id, name, "queue", q))

        self.ok("SetSubscriptionAttributes", dict(topicName=topic, subscriptionName=name,
                                                  notifyStrategy="BACKOFF_RETRY",
                                                  **indexed("filterTag", ["green"])))
        g = self.ok("GetSubscriptionAttributes", dict(topicName=topic, subscriptionName=name))
        self.assertEqual(g["notifyStrategy"], "BACKOFF_RETRY")
        self.assertEqual(g["filterTag"], ["green"])
        self.publish(topic, "red one", tags=["red"])
        self.publish(topic, "green one", tags=["green"])
        self.assertEqual(self.bodies_until_fence(q, "green one"), [])

        self.ok("ClearSubscriptionFilterTags", dict(topicName=topic, subscriptionName=name))
        g = self.ok("GetSubscriptionAttributes", dict(topicName=topic, subscriptionName=name))
        self.assertEqual(g["filterTag"], [])
        self.publish(topic, "untagged")
        self.assertEqual(self.receive_one(q)["msgBody"], "untagged")

        self.ok("Unsubscribe", dict(topicName=topic, subscriptionName=name))
        self.fails(4440, "GetSubscriptionAttributes", dict(topicName=topic, subscriptionName=name))
        self.fails(4440, "Unsubscribe", dict(topicName=topic, subscriptionName=name))
        self.fails(4440, "SetSubscriptionAttributes", dict(topicName=topic, subscriptionName=name,
                                                           notifyStrategy="BACKOFF_RETRY"))
        self.fails(4440, "ClearSubscriptionFilterTags", dict(topicName=topic,
                                                             subscriptionName=name))
        self.assertEqual(self.ok("ListSubscriptionByTopic", dict(topicName=topic))["totalCount"], 0)
        self.publish(topic, "after unsubscribe")
        self.assert_empty(q)

    def test_http_subscription_attributes(self):
        topic = self.new_topic("httpattr")
        name = unique("h")
        self.ok("Subscribe", dict(topicName=topic, subscriptionName=name, protocol="http",
                                  endpoint="http://127.0.0.1:9/push"))
        g = self.ok("GetSubscriptionAttributes", dict(topicName=topic, subscriptionName=name))
        self.assertEqual(g["protocol"], "http")
        self.assertEqual(g["endpoint"], "http://127.0.0.1:9/push")
        self.assertEqual(g["notifyStrategy"], "EXPONENTIAL_DECAY_RETRY")  # default
        self.assertEqual(g["notifyContentFormat"], "JSON")  # default
        self.ok("SetSubscriptionAttributes", dict(topicName=topic, subscriptionName=name,
                                                  notifyContentFormat="SIMPLIFIED"))
        g = self.ok("GetSubscriptionAttributes", dict(topicName=topic, subscriptionName=name))
        self.assertEqual(g["notifyContentFormat"], "SIMPLIFIED")
        self.ok("Unsubscribe", dict(topicName=topic, subscriptionName=name))

    def test_subscribe_validation(self):
        topic = self.new_topic("subval")
        q = self.new_queue("subvalq")
        base = dict(topicName=topic, protocol="queue", endpoint=q, notifyContentFormat="SIMPLIFIED")
        for what, params in [
                ("no subscriptionName", dict(subscriptionName=None)),
                ("bad subscriptionName", dict(subscriptionName="1bad")),
                ("unknown protocol", dict(protocol="smtp")),
                ("no protocol", dict(protocol=None)),
                ("queue with JSON", dict(notifyContentFormat="JSON")),
                ("no endpoint", dict(endpoint=None)),
                ("unknown strategy", dict(notifyStrategy="SOMETIMES")),
                ("unknown format", dict(notifyContentFormat="XML")),
                ("6 filter tags", indexed("filterTag", list("abcdef"))),
                ("filter tag of 17 chars", indexed("filterTag", ["x" * 17])),
                ("6 binding keys", indexed("bindingKey", list("abcdef"))),
                ("non-consecutive filter tags", indexed("filterTag", ["a", "b"], step=2))]:
            with self.subTest(what):
                p = dict(base, subscriptionName=unique("s"))
                p.update(params)
                p = {k: v for k, v in p.items() if v is not None}
                self.fails(4000, "Subscribe", p)
        self.assertEqual(self.ok("ListSubscriptionByTopic", dict(topicName=topic))["totalCount"], 0)

    def test_list_subscriptions_paging(self):
        topic = self.new_topic("subs")
        q = self.new_queue("subsq")
        names = ["s%d-%s" % (i, unique("x")) for i in range(4)]
        for n in names:
            self.subscribe_queue(topic, queue=q, name=n)
        seen = []
        for offset in (0, 3):
            page = self.ok("ListSubscriptionByTopic", dict(topicName=topic, offset=offset, limit=3))
            self.assertEqual(page["totalCount"], 4)
            seen += [s["subscriptionName"] for s in page["subscriptionList"]]
        self.assertEqual(sorted(seen), sorted(names))
        one = self.ok("ListSubscriptionByTopic", dict(topicName=topic, searchWord=names[2]))
        self.assertEqual([s["subscriptionName"] for s in one["subscriptionList"]], [names[2]])
        # Four subscriptions into one queue: a publish lands there four times.
        self.publish(topic, "x4")
        self.assertEqual([m["msgBody"] for m in self.drain_n(q, 4)], ["x4"] * 4)

    def drain_n(self, queue, n):
        got = []
        while len(got) < n:
            a = self.receive_one(queue)
            got.append(a)
            self.delete(queue, a["receiptHandle"])
        self.assert_empty(queue)
        return got

    def test_delete_topic_removes_subscriptions(self):
        topic = self.new_topic("deltopic")
        name = unique("s")
        q = self.subscribe_queue(topic, name=name)
        self.ok("DeleteTopic", dict(topicName=topic))
        self.ok("CreateTopic", dict(topicName=topic))
        self.fails(4440, "GetSubscriptionAttributes", dict(topicName=topic, subscriptionName=name))
        self.publish(topic, "new topic")
        self.assert_empty(q)
        # The queue itself is untouched.
        self.attributes(q)

    def test_deleted_queue_endpoint(self):
        # A queue subscription whose queue was deleted: publishing still succeeds for the
        # other subscriptions.
        topic = self.new_topic("gone")
        gone = self.subscribe_queue(topic)
        alive = self.subscribe_queue(topic)
        self.ok("DeleteQueue", dict(queueName=gone))
        self.publish(topic, "still delivered")
        self.assertEqual(self.receive_one(alive)["msgBody"], "still delivered")

    # ------------------------------------------------------------------ filtering

    def test_tag_filter(self):
        topic = self.new_topic("tags", filterType=1)
        q_all = self.subscribe_queue(topic)
        q_ab = self.subscribe_queue(topic, filter_tags=("a", "b"))
        q_c = self.subscribe_queue(topic, filter_tags=("c",))
        self.publish(topic, "untagged")
        self.publish(topic, "tag a", tags=["a"])
        self.publish(topic, "tags b c", tags=["b", "c"])
        self.publish(topic, "tags c x", tags=["c", "x"])
        self.publish(topic, "tag x", tags=["x"])
        self.publish(topic, "fence", tags=["a", "c"])
        all_bodies = sorted(["untagged", "tag a", "tags b c", "tags c x", "tag x"])
        self.assertEqual(self.bodies_until_fence(q_all, "fence"), all_bodies)
        self.assertEqual(self.bodies_until_fence(q_ab, "fence"), sorted(["tag a", "tags b c"]))
        self.assertEqual(self.bodies_until_fence(q_c, "fence"), sorted(["tags b c", "tags c x"]))

    def test_batch_publish_tags(self):
        topic = self.new_topic("btags")
        q_a = self.subscribe_queue(topic, filter_tags=("a",))
        q_z = self.subscribe_queue(topic, filter_tags=("z",))
        self.ok("BatchPublishMessage", dict(topicName=topic, **indexed("msgBody", ["1", "2"]),
                                            **indexed("msgTag", ["a"])))
        self.publish(topic, "fence", tags=["a", "z"])
        self.assertEqual(self.bodies_until_fence(q_a, "fence"), ["1", "2"])
        self.assertEqual(self.bodies_until_fence(q_z, "fence"), [])

    def test_routing_keys(self):
        topic = self.new_topic("rk", filterType=2)
        keys = ["a.*", "a.#", "#", "*.b.c", "a.b", "*"]
        queues = {k: self.subscribe_queue(topic, binding_keys=(k,)) for k in keys}
        multi = self.subscribe_queue(topic, binding_keys=("x.y", "a"))
        published = {
            "a.b": ["a.*", "a.#", "#", "a.b"],
            "a": ["a.#", "#", "*"],
            "a.b.c": ["a.#", "#", "*.b.c"],
            "x.b.c": ["#", "*.b.c"],
            "x.y": ["#"],
            "b.a": ["#"],
        }
        for rk in published:
            self.publish(topic, "rk=" + rk, routing_key=rk)
        # No routing key matches every binding ("a.b" and "*" share none), so each queue
        # gets its own fence through a direct send: a publish is delivered to its queue
        # subscriptions before it is answered.
        for k, q in queues.items():
            self.send(q, "fence")
            expected = sorted("rk=" + rk for rk, matching in published.items() if k in matching)
            with self.subTest(bindingKey=k):
                self.assertEqual(self.bodies_until_fence(q, "fence"), expected)
        self.send(multi, "fence")
        self.assertEqual(self.bodies_until_fence(multi, "fence"), sorted(["rk=a", "rk=x.y"]))


class TopicHttpTest(TopicActions, QueueApiTestCase):
    listeners = ("queue-api",)
    api_kind = "queue-api"


class TopicHttpsTest(TopicActions, QueueApiTestCase):
    listeners = ("queue-api-tls",)
    api_kind = "queue-api-tls"


if __name__ == "__main__":
    unittest.main()

"""Tenants (docs/CONFIG.md "tenants", docs/API.md "Tenants"; wharf only): two tenants and the
default one use the same queue, topic, MQTT topic and client id names without meeting; each
attempt of one to reach another's is refused and changes nothing; quotas answer CMQ's codes;
the bridge binds per tenant; the admin API and the metrics filter by tenant."""

import json
import time
import unittest

from admin_client import admin_get, ops_entry, parse_exposition, scrape, metric
from test_auth import PASSWORDS, password_hash, users_section
from wharf_fixture import Client, QueueApiTestCase, certs, client_tls_context, unique

TENANTS = """tenants:
  - {name: acme, mqtt_users: [alice, "device-*"], quotas: {queues: 6, topics: 2, stored_bytes: 2000}}
  - {name: globex, mqtt_users: [bob], quotas: {requests_per_second: 5}}
"""
ACME, GLOBEX = 2, 3  # indexes of their credentials (after the fixture's two default ones)
NOT_FOUND, INVALID, QUEUE_FULL, RATE_LIMITED, TOO_MANY, BAD_HANDLE = 4440, 4000, 4410, 4420, 4450, 4430


class TenantTest(QueueApiTestCase):
    listeners = ("queue-api", "mqtt", "mtls", "admin")
    bridge_config = "  mqtt_to_queue:\n    - {filter: 'fleet/+/telemetry', queue: telemetry, tenant: acme}\n"

    @classmethod
    def setUpClass(cls):
        cls.broker_options = {
            "top_level": TENANTS,
            "extra_credentials": [("acme-id", "acme-secret", None, "acme"),
                                  ("globex-id", "globex-secret", None, "globex")],
            "auth": users_section(password_hash("alice"), password_hash("bob"), ops_entry()),
            # The test client certificate's CN, device-42, is its username there: acme's.
            "listener_keys": {"admin": "users: [ops]", "mtls": "username_from_cert: cn"},
        }
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.acme = self.cmq(credential=ACME)
        # globex has 5 requests a second: its client waits for a token instead of failing.
        self.globex = self.cmq(credential=GLOBEX)

    def as_globex(self, action, params, code=0):
        """A globex request answered `code`, tried again while it is over globex's rate."""
        deadline = time.monotonic() + 10
        while True:
            answer = self.globex.call(action, params)
            if answer.get("code") != RATE_LIMITED or time.monotonic() > deadline:
                self.assertEqual(answer.get("code"), code, "%s %r -> %r" % (action, params, answer))
                return answer
            time.sleep(0.25)

    def login(self, user, **kwargs):
        return self.client(username=user, password=PASSWORDS[user], **kwargs)

    def test_same_names_in_two_tenants_and_the_default_are_three_queues_and_topics(self):
        orders, events = unique("orders"), unique("events")
        for client, who in ((self.api, "default"), (self.acme, "acme")):
            self.ok("CreateQueue", dict(queueName=orders), client=client)
            self.ok("CreateTopic", dict(topicName=events), client=client)
            self.ok("Subscribe", dict(topicName=events, subscriptionName="copy", protocol="queue",
                                      endpoint=orders, notifyContentFormat="SIMPLIFIED"), client=client)
            self.ok("PublishMessage", dict(topicName=events, msgBody="event of " + who), client=client)
        self.as_globex("CreateQueue", dict(queueName=orders))
        self.as_globex("SendMessage", dict(queueName=orders, msgBody="order of globex"))
        self.assertEqual(self.receive_one(orders)["msgBody"], "event of default")
        self.assertEqual(self.receive_one(orders, client=self.acme)["msgBody"], "event of acme")
        self.assertEqual(self.as_globex("ReceiveMessage", dict(queueName=orders))["msgBody"], "order of globex")

        # Each sees its own names, as it gave them.
        listed = self.ok("ListQueue", dict(searchWord=orders, limit=50), client=self.acme)
        self.assertEqual([q["queueName"] for q in listed["queueList"]], [orders])
        every = self.ok("ListQueue", dict(limit=50), client=self.acme)["queueList"]
        self.assertTrue(all(":" not in q["queueName"] for q in every), every)
        self.assertEqual(self.attributes(orders, client=self.acme)["queueName"], orders)
        sub = self.ok("GetSubscriptionAttributes", dict(topicName=events, subscriptionName="copy"), client=self.acme)
        self.assertEqual(sub["endpoint"], orders)
        self.assertEqual(self.ok("ListTopic", dict(searchWord=events), client=self.acme)["topicList"][0]["topicName"],
                         events)
        # globex has no topic of that name at all.
        self.as_globex("GetTopicAttributes", dict(topicName=events), code=NOT_FOUND)

    def test_reaching_another_tenant_is_refused_and_changes_nothing(self):
        orders, dlq = unique("orders"), unique("dlq")
        for client in (self.api, self.acme):
            self.ok("CreateQueue", dict(queueName=dlq), client=client)
            self.ok("CreateQueue", dict(queueName=orders), client=client)
            self.send(orders, "mine", client=client)
        default_handle = self.receive_one(orders)["receiptHandle"]
        acme_handle = self.receive_one(orders, client=self.acme)["receiptHandle"]
        before = self.attributes(orders)

        def attempts(prefix):
            """Requests naming the queues `orders` and `dlq` of the tenant `prefix` names."""
            target = prefix + orders
            return [
                ("SendMessage", dict(queueName=target, msgBody="x")),
                ("ReceiveMessage", dict(queueName=target)),
                ("DeleteMessage", dict(queueName=target, receiptHandle=acme_handle)),
                ("GetQueueAttributes", dict(queueName=target)),
                ("SetQueueAttributes", dict(queueName=target, visibilityTimeout=5)),
                ("SetQueueAttributes", dict(queueName=orders, deadLetterQueueName=prefix + dlq, maxReceiveCount=1)),
                ("DeleteQueue", dict(queueName=target)),
                ("RewindQueue", dict(queueName=target, startConsumeTime=0)),
                ("RedriveDeadLetters", dict(deadLetterQueueName=prefix + dlq)),
                ("CreateQueue", dict(queueName=target)),
                ("CreateTopic", dict(topicName=prefix + "t")),
                ("Subscribe", dict(topicName=prefix + "t", subscriptionName="s", protocol="queue", endpoint=target,
                                   notifyContentFormat="SIMPLIFIED")),
            ]

        # The default tenant and globex at acme's; acme at globex's and the default tenant's.
        for action, params in attempts("acme:"):
            a = self.fails(INVALID, action, params)
            self.assertIn("must be 1..64 characters", a["message"])
            a = self.as_globex(action, params, code=INVALID)
            self.assertIn("must be 1..64 characters", a["message"])
        for prefix in ("globex:", "default:"):
            for action, params in attempts(prefix):
                self.fails(INVALID, action, params, client=self.acme)
        # The tenant's own handle on the default tenant's queue of the same name: not a handle there.
        self.fails(BAD_HANDLE, "DeleteMessage", dict(queueName=orders, receiptHandle=acme_handle))
        self.fails(BAD_HANDLE, "DeleteMessage", dict(queueName=orders, receiptHandle=default_handle), client=self.acme)
        a = self.fails(NOT_FOUND, "GetQueueAttributes", dict(queueName=unique("nothing")), client=self.acme)
        self.assertNotIn("acme", a["message"])

        # Nothing changed: each still holds its one message, in flight under its own handle.
        after = self.attributes(orders)
        for key in ("activeMsgNum", "inactiveMsgNum", "visibilityTimeout", "lastModifyTime"):
            self.assertEqual(after[key], before[key], key)
        self.assertNotIn("deadLetterQueueName", after)
        self.assertEqual(self.attributes(orders, client=self.acme)["inactiveMsgNum"], 1)
        self.as_globex("GetQueueAttributes", dict(queueName=orders), code=NOT_FOUND)  # globex never had one
        self.delete(orders, default_handle)
        self.delete(orders, acme_handle, client=self.acme)

    def test_quotas_answer_cmqs_codes_and_are_counted(self):
        # acme: 6 queues (the bridge's telemetry among them), 2 topics, 2000 stored bytes. What
        # this test makes goes again at its end: the other tests share acme.
        def make_until_refused(action, key):
            while True:
                name = unique("quota")
                a = self.acme.call(action, {key: name})
                if a["code"] != 0:
                    return a
                self.addCleanup(self.acme.call, "DeleteQueue" if key == "queueName" else "DeleteTopic", {key: name})

        a = make_until_refused("CreateQueue", "queueName")
        self.assertEqual(a["code"], TOO_MANY, a)
        self.assertIn("quota of 6 queues", a["message"])
        self.ok("CreateQueue", dict(queueName=unique("free")))  # the default tenant is not bound by it
        a = make_until_refused("CreateTopic", "topicName")
        self.assertEqual(a["code"], TOO_MANY, a)
        self.assertIn("quota of 2 topics", a["message"])

        stored_before = metric(scrape(self.broker)[0], "wharf_tenant_stored_bytes", tenant="acme")
        self.assertLess(stored_before, 400)
        q = self.ok("ListQueue", dict(searchWord="quota", limit=50), client=self.acme)["queueList"][0]["queueName"]
        self.send(q, "x" * 1500, client=self.acme)
        a = self.fails(QUEUE_FULL, "SendMessage", dict(queueName=q, msgBody="y" * 600), client=self.acme)
        self.assertIn("stored_bytes", a["message"])
        self.assertEqual(self.attributes(q, client=self.acme)["activeMsgNum"], 1)
        got = self.receive_one(q, client=self.acme)
        self.delete(q, got["receiptHandle"], client=self.acme)
        self.send(q, "y" * 600, client=self.acme)  # room again

        # globex: 5 requests a second, all its SecretIds together; the default tenant is not limited.
        codes = [self.globex.call("ListQueue", {})["code"] for _ in range(15)]
        self.assertIn(RATE_LIMITED, codes)
        a = self.globex.call("ListQueue", {})
        while a["code"] != RATE_LIMITED:
            a = self.globex.call("ListQueue", {})
        self.assertIn("tenant 'globex'", a["message"])
        self.assertTrue(all(self.api.call("ListQueue", {})["code"] == 0 for _ in range(15)))

        samples, _ = scrape(self.broker)
        self.assertGreater(metric(samples, "wharf_tenant_cmq_rate_limited_total", tenant="globex"), 0)
        self.assertGreaterEqual(metric(samples, "wharf_queue_tenant_quota_refusals_total"), 3)
        self.assertEqual(metric(samples, "wharf_tenant_stored_bytes", tenant="acme"), stored_before + 600)
        # One tenant's metrics only.
        status, _, body, _ = admin_get(self.broker, "/metrics?tenant=acme")
        self.assertEqual(status, 200, body)
        only, _ = parse_exposition(body)
        tenants = {dict(labels).get("tenant") for (_, labels) in only}
        self.assertEqual(tenants, {"acme"})
        self.assertIn(("wharf_tenant_queues", frozenset({("tenant", "acme")})), only)
        status, _, body, _ = admin_get(self.broker, "/metrics?tenant=no:pe")
        self.assertEqual(status, 400, body)

    def test_mqtt_tenants_have_their_own_topic_trees_and_client_ids(self):
        # alice is acme's, bob globex's; an anonymous client is the default tenant's. All three
        # use the client id "dev-1" at once: no takeover.
        dev = unique("dev")
        alice = self.login("alice", client_id=dev)
        bob = self.login("bob", client_id=dev)
        anyone = self.client(client_id=dev)
        for c in (alice, bob, anyone):
            self.assertEqual(c.subscribe("sensors/#", qos=1), 1)
        self.assertEqual(anyone.subscribe("#", qos=1), 1)
        alice_2 = self.login("alice")
        alice_2.publish("sensors/t", b"acme's", qos=1)
        msg = alice.expect()
        self.assertEqual((msg.topic, msg.payload), ("sensors/t", b"acme's"))  # the mount is never seen
        bob.expect_none()
        anyone.expect_none()
        # The other way: globex's publish stays in globex; and a tenant naming the tree gets a
        # filter inside its own tree, which acme's messages never reach.
        self.assertEqual(bob.subscribe("$tenant/acme/#", qos=1), 1)
        self.login("bob").publish("sensors/t", b"globex's", qos=1)
        self.assertEqual(bob.expect().payload, b"globex's")
        alice_2.publish("sensors/t", b"acme's again", qos=1)
        self.assertEqual(alice.expect().payload, b"acme's again")
        bob.expect_none()
        alice.expect_none()
        anyone.expect_none()
        # The default tenant cannot subscribe or publish into the tenants' tree.
        self.assertEqual(anyone.subscribe("$tenant/acme/#", qos=1), 0x87)
        self.assertEqual(anyone.subscribe("$share/g/$tenant/acme/#", qos=1), 0x87)
        info = anyone.publish("$tenant/acme/sensors/t", b"intruder", qos=1)
        alice.expect_none()
        self.assertTrue(info.is_published())
        # ...nor use a client id in it.
        intruder = Client(self.broker, client_id="$tenant/acme/" + dev)
        self.addCleanup(intruder.close)
        intruder.connect(expect_rc=0x85)
        self.assertFalse(alice.disconnected.is_set())

        # Retained messages per tenant.
        alice_2.publish("config/rate", b"5", qos=1, retain=True)
        late = self.login("alice")
        late.subscribe("config/#", qos=1)
        self.assertEqual(late.expect().topic, "config/rate")
        late_bob = self.login("bob")
        late_bob.subscribe("config/#", qos=1)
        late_bob.expect_none()

        # The admin API by tenant: clients, and the retained message under acme's tree.
        status, _, body, _ = admin_get(self.broker, "/api/v1/clients?tenant=acme&limit=100")
        self.assertEqual(status, 200, body)
        clients = json.loads(body)["clients"]
        self.assertIn("$tenant/acme/" + dev, [c["clientId"] for c in clients])
        self.assertEqual({c["tenant"] for c in clients}, {"acme"})
        status, _, body, _ = admin_get(self.broker, "/api/v1/clients?tenant=default&limit=100")
        self.assertIn(dev, [c["clientId"] for c in json.loads(body)["clients"]])
        status, _, body, _ = admin_get(self.broker, "/api/v1/retained?tenant=acme&topic=config/%23")
        self.assertEqual([m["topic"] for m in json.loads(body)["retained"]], ["$tenant/acme/config/rate"])

    def test_a_certificate_identity_belongs_to_a_tenant(self):
        tls = client_tls_context(cert=certs().client_cert, key=certs().client_key)
        device = self.client(kind="mtls", tls=tls)  # CN=device-42 matches acme's "device-*"
        device.subscribe("cmd/#", qos=1)
        self.client().publish("cmd/lamp", b"from the default tenant", qos=1)
        self.login("bob").publish("cmd/lamp", b"from globex", qos=1)
        self.login("alice").publish("cmd/lamp", b"on", qos=1)
        msg = device.expect()
        self.assertEqual((msg.topic, msg.payload), ("cmd/lamp", b"on"))
        device.expect_none()
        status, _, body, _ = admin_get(self.broker, "/api/v1/clients/%24tenant%2Facme%2F" + device.client_id)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["username"], "device-42")

    def test_a_bridge_binding_of_a_tenant(self):
        device = unique("d")
        alice = self.login("alice")
        alice.publish("fleet/%s/telemetry" % device, b"t=21", qos=1)
        got = self.receive_one("telemetry", client=self.acme)
        self.assertEqual(got["msgBody"], "t=21")
        self.delete("telemetry", got["receiptHandle"], client=self.acme)
        # The default tenant's devices publishing the same topic reach no tenant's queue.
        self.client().publish("fleet/%s/telemetry" % device, b"t=99", qos=1)
        self.assert_empty("telemetry", client=self.acme)
        self.fails(NOT_FOUND, "ReceiveMessage", dict(queueName="telemetry"))
        status, _, body, _ = admin_get(self.broker, "/api/v1/queues?tenant=acme&search=telemetry")
        self.assertEqual([(q["queueName"], q["tenant"]) for q in json.loads(body)["queues"]],
                         [("acme:telemetry", "acme")])


if __name__ == "__main__":
    unittest.main()

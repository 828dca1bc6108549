"""The admin listener (wharf only): /healthz and /readyz for probes, and /metrics in the
Prometheus text format behind HTTP Basic credentials of auth.users. The metrics are
scraped and parsed after real MQTT and queue API traffic."""

import socket
import subprocess
import threading
import unittest

import mqtt_raw as raw
from admin_client import OPS_PASSWORD, admin_get, metric, ops_entry, scrape
from wharf_fixture import HOST, BrokerTestCase, is_mosquitto, unique, wait_until


class AdminTest(BrokerTestCase):
    listeners = ("mqtt", "tls", "queue-api", "admin")

    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            raise unittest.SkipTest("wharf-only: Mosquitto has no admin listener")
        cls.broker_options = {"auth": "  users:\n    - %s\n  acl: [{permission: deny, action: publish, "
                                      "topic: metrics/denied}]\n" % ops_entry(),
                              "listener_keys": {"admin": "users: [ops]"}}
        super().setUpClass()

    def get(self, path, **kwargs):
        return admin_get(self.broker, path, **kwargs)

    def scrape(self):
        return scrape(self.broker)

    def value(self, samples, name, **labels):
        return metric(samples, name, **labels)

    def test_promtool_accepts_the_metrics(self):
        # Families of every kind present: a queue with messages (labelled gauges), the sync
        # histogram (a write), MQTT counters by protocol.
        api = self.broker.cmq()
        self.addCleanup(api.close)
        queue = unique("prom").replace("-", "")
        api.ok("CreateQueue", {"queueName": queue})
        api.ok("SendMessage", {"queueName": queue, "msgBody": "x"})
        self.client().publish("prom/t", b"x", qos=1)
        status, _, body, _ = self.get("/metrics")
        self.assertEqual(status, 200)
        check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True,
                               timeout=60)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_probes_answer_without_credentials(self):
        self.assertEqual(self.get("/healthz", user=None)[:3:2], (200, "ok\n"))
        self.assertEqual(self.get("/readyz", user=None)[:3:2], (200, "ready\n"))

    def test_metrics_need_the_listeners_users_credentials(self):
        for user, password in ((None, None), ("ops", "wrong"), ("mallory", OPS_PASSWORD)):
            with self.subTest(user=user):
                status, _, _, response = self.get("/metrics", user=user, password=password)
                self.assertEqual(status, 401)
                self.assertIn("Basic", response.getheader("WWW-Authenticate"))
        self.assertEqual(self.get("/nowhere")[0], 404)
        self.assertEqual(self.get("/metrics", method="POST")[0], 405)

    def test_metrics_after_traffic(self):
        before, types = self.scrape()
        self.assertEqual(types["wharf_storage_sync_seconds"], "histogram")
        self.assertEqual(types["wharf_mqtt_messages_received_total"], "counter")

        # MQTT: a subscriber, 3 QoS 1 publishes it receives, a refused login.
        sub = self.client()
        sub.subscribe("metrics/#", qos=1)
        pub = self.client()
        for i in range(3):
            pub.publish("metrics/t", b"%d" % i, qos=1)
        for _ in range(3):
            sub.expect()
        old = self.raw()
        old.version = 4
        old.connect(unique("v311"))
        old.send(raw.publish("metrics/t", b"v3", qos=0, version=4))
        sub.expect()
        # Denied to a v3 client: acknowledged (3.1.1 has no negative PUBACK), dropped, counted.
        old.send(raw.publish("metrics/denied", b"dropped", qos=1, pid=1, version=4))
        self.assertEqual(old.expect(raw.PUBACK).reason, 0)
        # A persistent session left offline; a retained message.
        away = self.client(clean=False, session_expiry_s=300)
        away.subscribe("metrics/#", qos=1)
        away.disconnect()
        pub.publish("metrics/retained", b"kept", qos=1, retain=True)
        self.assertEqual(sub.expect().topic, "metrics/retained")  # not metrics/denied
        bad = self.raw()
        bad.connect(unique("bad"), expect_reason=0x86, username="ops", password="wrong")
        # A TLS client that gives up in the handshake.
        with socket.create_connection((HOST, self.broker.ports["tls"])) as s:
            s.sendall(b"\x16\x03\x01\x00\x05hello")  # not a ClientHello
            s.recv(100)
        # Queue API: two messages sent to a queue, one of them received.
        api = self.broker.cmq()
        self.addCleanup(api.close)
        queue = unique("mq").replace("-", "")
        api.ok("CreateQueue", {"queueName": queue})
        for body in ("a", "b"):
            api.ok("SendMessage", {"queueName": queue, "msgBody": body})
        api.ok("ReceiveMessage", {"queueName": queue, "pollingWaitSeconds": 0})  # one in flight
        # A receive waiting (long polling) on an empty queue while the scrape runs.
        empty = unique("mqwait").replace("-", "")
        api.ok("CreateQueue", {"queueName": empty})
        waiting = self.broker.cmq()
        self.addCleanup(waiting.close)
        poll = threading.Thread(target=waiting.call,
                                args=("ReceiveMessage", {"queueName": empty, "pollingWaitSeconds": 10}))
        poll.start()
        # The broker handles the persistent session's DISCONNECT on its own time: wait for it
        # too, not only for the waiting receive.
        offline = lambda m: self.value(m, "wharf_mqtt_sessions", state="offline")
        wait_until(lambda: (lambda m: self.value(m, "wharf_queue_long_polls_waiting") >= 1
                            and offline(m) > offline(before))(self.scrape()[0]),
                   what="the waiting receive in wharf_queue_long_polls_waiting, the session gone offline")

        after, _ = self.scrape()
        api.ok("SendMessage", {"queueName": empty, "msgBody": "wake"})  # answers the waiting receive
        poll.join()
        grew = lambda name, **labels: self.value(after, name, **labels) - self.value(before, name, **labels)
        self.assertGreaterEqual(grew("wharf_mqtt_messages_received_total", protocol="mqtt5", qos="1"), 3)
        self.assertGreaterEqual(grew("wharf_mqtt_messages_received_total", protocol="mqtt3.1.1", qos="0"), 1)
        self.assertGreaterEqual(grew("wharf_mqtt_messages_sent_total", protocol="mqtt5", qos="1"), 3)
        self.assertGreaterEqual(self.value(after, "wharf_mqtt_connections"), 2)
        self.assertGreaterEqual(grew("wharf_mqtt_auth_failures_total"), 1)
        self.assertGreaterEqual(grew("wharf_cmq_requests_total"), 3)
        tls_bind = "%s:%d" % (HOST, self.broker.ports["tls"])
        self.assertGreaterEqual(grew("wharf_listener_handshake_failures_total", listener=tls_bind, type="mqtt"), 1)
        self.assertEqual(self.value(after, "wharf_queue_messages", queue=queue, tenant="default", state="visible"), 1)
        self.assertEqual(self.value(after, "wharf_queue_messages", queue=queue, tenant="default", state="inflight"), 1)
        self.assertGreaterEqual(grew("wharf_mqtt_messages_dropped_total", reason="acl_denied"), 1)
        self.assertEqual(grew("wharf_mqtt_retained_messages"), 1)
        self.assertGreaterEqual(self.value(after, "wharf_mqtt_sessions", state="offline"), 1)
        self.assertGreaterEqual(self.value(after, "wharf_mqtt_sessions", state="online"), 2)
        # The sends were fsynced: the histogram counted them, its buckets only grow, and
        # +Inf equals the count.
        self.assertGreater(grew("wharf_storage_sync_seconds_count"), 0)
        buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in after.items()
                         if name == "wharf_storage_sync_seconds_bucket")
        self.assertEqual(buckets[-1], (float("inf"), self.value(after, "wharf_storage_sync_seconds_count")))
        self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
        self.assertGreater(self.value(after, "wharf_storage_group_commit_batches_count"), 0)


if __name__ == "__main__":
    unittest.main()

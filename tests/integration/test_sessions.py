"""Persistent sessions: subscriptions and offline queues survive disconnects and broker
restarts (graceful and kill -9); session present flag; session expiry; clean start."""

import json
import signal
import time
import unittest

import mqtt_raw as raw
from admin_client import admin_get, with_metrics
from wharf_fixture import V5, V311, BrokerTestCase, is_mosquitto, unique, wait_until


class SessionTest(BrokerTestCase):

    @classmethod
    def setUpClass(cls):
        if not is_mosquitto():
            # An admin listener: a test sees a session offline before publishing to it.
            options = with_metrics(cls.listeners)
            cls.listeners = options.pop("listeners")
            cls.broker_options = dict(cls.broker_options, **options)
        super().setUpClass()

    def session_broker(self):
        """A broker of the test's own, with the class's listeners (and admin listener)."""
        return self.new_broker(self.listeners, **self.broker_options)

    def wait_offline(self, broker, cid):
        """Waits until the broker has handled the client's DISCONNECT: until then the session
        is online, and messages for an online session are not written (what an offline
        session holds is what survives a crash), so a kill -9 may lose them."""
        if is_mosquitto():
            return

        def offline():
            status, _, body, _ = admin_get(broker, "/api/v1/sessions/%s" % cid)
            return status == 200 and json.loads(body)["online"] is False

        wait_until(offline, what="session %s offline" % cid)

    def persistent(self, cid, version, broker=None):
        if version == V311:
            return self.client(broker=broker, client_id=cid, version=V311, clean=False)
        return self.client(broker=broker, client_id=cid, version=V5, clean=False,
                           session_expiry_s=300)

    def queue_while_offline(self, version, broker=None, restart=None):
        """Subscribes a persistent session, disconnects it, publishes QoS 1 and 2
        messages (acknowledged), optionally restarts the broker, reconnects and
        checks everything arrives once, in order per QoS, and the subscription still
        works."""
        broker = broker or self.broker
        cid, topic = unique("persist"), unique("sess/q")
        sub = self.persistent(cid, version, broker)
        self.assertFalse(sub.session_present)
        sub.subscribe(topic, qos=2)
        sub.disconnect()
        self.wait_offline(broker, cid)
        pub = self.client(broker=broker)
        sent = [b"m%d" % i for i in range(10)]
        for i, p in enumerate(sent):
            pub.publish(topic, p, qos=1 + i % 2)  # returns after PUBACK / PUBCOMP
        pub.close()
        if restart is not None:
            broker.restart(sig=restart)
        sub = self.persistent(cid, version, broker)
        self.assertTrue(sub.session_present)
        got = [sub.expect() for _ in sent]
        # Order is only guaranteed among messages of the same QoS [MQTT-4.6.0-6].
        for qos in (1, 2):
            self.assertEqual([m.payload for m in got if m.qos == qos],
                             [p for i, p in enumerate(sent) if 1 + i % 2 == qos])
        pub = self.client(broker=broker)
        pub.publish(topic, b"live", qos=1)
        self.assertEqual([m.payload for m in sub.fence(pub)], [b"live"])

    def test_v311_persistent_session_queues_while_offline(self):
        self.queue_while_offline(V311)

    def test_v5_persistent_session_queues_while_offline(self):
        self.queue_while_offline(V5)

    def test_v311_session_survives_sigterm_restart(self):
        self.queue_while_offline(V311, self.session_broker(), restart=signal.SIGTERM)

    def test_v5_session_survives_sigterm_restart(self):
        self.queue_while_offline(V5, self.session_broker(), restart=signal.SIGTERM)

    def test_session_survives_kill_9_after_puback(self):
        # wharf makes a QoS 1/2 message durable before acknowledging it.
        if is_mosquitto():
            self.skipTest("wharf-only: Mosquitto writes its database only at shutdown or "
                          "autosave, so kill -9 loses acknowledged messages")
        for version in (V311, V5):
            with self.subTest(version=version):
                self.queue_while_offline(version, self.session_broker(), restart=signal.SIGKILL)

    def test_subscription_survives_kill_9_right_after_suback(self):
        # A persistent session's SUBACK comes after the subscription is durable: kill -9
        # at once, and the session still has it after the restart.
        if is_mosquitto():
            self.skipTest("wharf-only: Mosquitto writes its database only at shutdown or "
                          "autosave")
        broker = self.new_broker()
        cid, topic = unique("subkill"), unique("sess/subkill")
        sub = self.raw(broker=broker)
        sub.connect(cid, clean=False, props={"session_expiry_interval": 300})
        sub.send(raw.subscribe(1, [(topic, 1)]))
        self.assertEqual(sub.expect(raw.SUBACK).codes, [1])
        broker.kill()
        broker.start()
        sub = self.persistent(cid, V5, broker)
        self.assertTrue(sub.session_present)
        pub = self.client(broker=broker)
        pub.publish(topic, b"after restart", qos=1)
        self.assertEqual([m.payload for m in sub.fence(pub)], [b"after restart"])

    def test_session_present_flag(self):
        cid = unique("present")
        c = self.persistent(cid, V5)
        self.assertFalse(c.session_present)
        c.disconnect()
        c = self.persistent(cid, V5)
        self.assertTrue(c.session_present)
        c.disconnect()
        # Clean start: the old session is discarded, CONNACK says so [MQTT-3.2.2-2].
        c = self.client(client_id=cid, clean=True, session_expiry_s=300)
        self.assertFalse(c.session_present)
        c.disconnect()

    def test_v311_clean_session_discards(self):
        cid, topic = unique("clean3"), unique("sess/clean3")
        sub = self.persistent(cid, V311)
        sub.subscribe(topic, qos=1)
        sub.disconnect()
        pub = self.client()
        pub.publish(topic, b"queued", qos=1)
        sub = self.client(client_id=cid, version=V311, clean=True)
        self.assertFalse(sub.session_present)
        pub.publish(topic, b"after", qos=1)
        self.assertEqual(sub.fence(pub), [])  # nothing queued, no subscription

    def test_v5_clean_start_discards(self):
        cid, topic = unique("clean5"), unique("sess/clean5")
        sub = self.persistent(cid, V5)
        sub.subscribe(topic, qos=1)
        sub.disconnect()
        pub = self.client()
        pub.publish(topic, b"queued", qos=1)
        sub = self.client(client_id=cid, clean=True, session_expiry_s=300)
        self.assertFalse(sub.session_present)
        pub.publish(topic, b"after", qos=1)
        self.assertEqual(sub.fence(pub), [])

    def test_v5_session_expiry_zero_ends_with_connection(self):
        cid, topic = unique("exp0"), unique("sess/exp0")
        sub = self.client(client_id=cid, clean=False)  # no Session Expiry Interval: 0
        sub.subscribe(topic, qos=1)
        sub.disconnect()
        sub = self.client(client_id=cid, clean=False)
        self.assertFalse(sub.session_present)

    def test_v5_session_expiry(self):
        cid, topic = unique("exp2"), unique("sess/exp2")
        sub = self.client(client_id=cid, clean=False, session_expiry_s=2)
        sub.subscribe(topic, qos=1)
        sub.disconnect()
        pub = self.client()
        pub.publish(topic, b"queued", qos=1)
        time.sleep(3)
        sub = self.client(client_id=cid, clean=False, session_expiry_s=2)
        self.assertFalse(sub.session_present)
        pub.publish(topic, b"after", qos=1)
        self.assertEqual(sub.fence(pub), [])

    def test_v5_session_alive_within_expiry(self):
        cid, topic = unique("exp5"), unique("sess/exp5")
        sub = self.client(client_id=cid, clean=False, session_expiry_s=5)
        sub.subscribe(topic, qos=1)
        sub.disconnect()
        pub = self.client()
        pub.publish(topic, b"queued", qos=1)
        time.sleep(1)
        sub = self.client(client_id=cid, clean=False, session_expiry_s=5)
        self.assertTrue(sub.session_present)
        self.assertEqual(sub.expect().payload, b"queued")

    def test_long_offline_queue_in_order(self):
        # A longer offline queue: 500 QoS 1 messages come back complete and in order.
        cid, topic = unique("many"), unique("sess/many")
        sub = self.persistent(cid, V5)
        sub.subscribe(topic, qos=1)
        sub.disconnect()
        pub = self.client()
        infos = [pub.publish(topic, b"%d" % i, qos=1, wait=False) for i in range(500)]
        for info in infos:
            info.wait_for_publish(timeout=10)
            self.assertTrue(info.is_published())
        sub = self.persistent(cid, V5)
        got = [int(sub.expect().payload) for _ in range(500)]
        self.assertEqual(got, list(range(500)))


if __name__ == "__main__":
    unittest.main()

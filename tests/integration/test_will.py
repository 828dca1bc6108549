"""Will messages: published on abnormal disconnect, on v5 DISCONNECT 0x04, after the
will delay, at session end, and on session takeover; not on a normal DISCONNECT."""

import time
import unittest

import mqtt_raw as raw
from wharf_fixture import V5, V311, BrokerTestCase, PacketTypes, props, require_wharf, unique


class WillTest(BrokerTestCase):

    def watcher(self, topic):
        w = self.client()
        w.subscribe(topic, qos=1)
        return w

    def will(self, topic, payload=b"will", delay_s=None, **extra):
        w = {"topic": topic, "payload": payload, "qos": 1, "retain": False}
        w.update(extra)
        if delay_s is not None:
            w["properties"] = props(PacketTypes.WILLMESSAGE, WillDelayInterval=delay_s)
        return w

    def test_will_on_abrupt_close(self):
        for version in (V311, V5):
            with self.subTest(version=version):
                topic = unique("will/abrupt")
                w = self.watcher(topic)
                c = self.client(version=version, will=self.will(topic, b"abrupt"))
                c.drop()
                msg = w.expect()
                self.assertEqual((msg.topic, msg.payload, msg.qos), (topic, b"abrupt", 1))

    def test_no_will_on_normal_disconnect(self):
        for version in (V311, V5):
            with self.subTest(version=version):
                topic = unique("will/normal")
                w = self.watcher(topic)
                c = self.client(version=version, will=self.will(topic))
                c.disconnect()
                # The will would have been published while the DISCONNECT was handled.
                self.assertEqual(w.fence(self.client()), [])
                w.expect_none()

    def test_v5_disconnect_with_will_reason_publishes_will(self):
        topic = unique("will/0x04")
        w = self.watcher(topic)
        c = self.client(will=self.will(topic, b"asked"))
        c.disconnect(reason_code=0x04)
        self.assertEqual(w.expect().payload, b"asked")

    def test_will_properties_and_retain(self):
        topic = unique("will/props")
        w = self.watcher(topic)
        wp = props(PacketTypes.WILLMESSAGE, ContentType="text/plain",
                   UserProperty=[("why", "lost")], ResponseTopic=topic + "/r")
        c = self.client(will={"topic": topic, "payload": b"bye", "qos": 1, "retain": True,
                              "properties": wp})
        c.drop()
        msg = w.expect()
        self.assertEqual(msg.payload, b"bye")
        self.assertEqual(msg.properties.ContentType, "text/plain")
        self.assertEqual(msg.properties.UserProperty, [("why", "lost")])
        self.assertEqual(msg.properties.ResponseTopic, topic + "/r")
        # Will retain: a later subscriber gets it as a retained message.
        late = self.client()
        late.subscribe(topic, qos=1)
        msg = late.expect()
        self.assertEqual((msg.payload, msg.retain), (b"bye", True))
        late.publish(topic, b"", qos=1, retain=True)

    def test_will_delay(self):
        topic = unique("will/delay")
        w = self.watcher(topic)
        c = self.client(session_expiry_s=60, will=self.will(topic, b"late", delay_s=2))
        c.drop()
        start = time.monotonic()
        msg = w.expect(timeout_s=15)
        elapsed = time.monotonic() - start
        self.assertEqual(msg.payload, b"late")
        # Upper bounds in this file allow a loaded machine: they tell "after the delay" from
        # "never" or "only when the session ends".
        self.assertGreaterEqual(elapsed, 1.8)
        self.assertLessEqual(elapsed, 8.0)

    def test_will_delay_cancelled_by_reconnect(self):
        topic = unique("will/cancel")
        cid = unique("wc")
        w = self.watcher(topic)
        c = self.client(client_id=cid, session_expiry_s=60,
                        will=self.will(topic, b"should-not", delay_s=2))
        c.drop()
        time.sleep(0.5)
        again = self.client(client_id=cid, clean=False, session_expiry_s=60)
        self.assertTrue(again.session_present)
        w.expect_none(timeout_s=2.5)  # past the 2 s delay
        again.disconnect()

    def test_will_delay_ends_early_when_session_ends(self):
        # [MQTT-3.1.3-9]: the will is published when the session ends if that comes
        # before the will delay.
        topic = unique("will/sessend")
        w = self.watcher(topic)
        c = self.client(session_expiry_s=1, will=self.will(topic, b"session-over", delay_s=30))
        c.drop()
        start = time.monotonic()
        msg = w.expect(timeout_s=15)
        elapsed = time.monotonic() - start
        self.assertEqual(msg.payload, b"session-over")
        self.assertGreaterEqual(elapsed, 0.8)
        self.assertLessEqual(elapsed, 10.0)  # the will delay (30 s) did not decide

    def test_will_delay_with_session_expiry_zero_is_immediate(self):
        # Session expiry 0: the session ends with the connection, so the will goes out
        # at once whatever its delay [MQTT-3.1.3-9].
        require_wharf(self, "Mosquitto 2.0.11 still waits for the will delay")
        topic = unique("will/sess0")
        w = self.watcher(topic)
        c = self.client(session_expiry_s=0, will=self.will(topic, b"now", delay_s=30))
        c.drop()
        start = time.monotonic()
        self.assertEqual(w.expect(timeout_s=10).payload, b"now")
        self.assertLessEqual(time.monotonic() - start, 10.0)  # not after the 30 s delay

    def _takeover_v5(self):
        topic = unique("will/takeover")
        cid = unique("dup")
        w = self.watcher(topic)
        first = self.raw()
        first.connect(cid, will={"topic": topic, "payload": b"taken", "qos": 1})
        second = self.raw()
        second.connect(cid)
        got = first.wait_closed()
        self.assertEqual(w.expect().payload, b"taken")
        return got, second

    def test_takeover_v5_closes_first_and_publishes_will(self):
        _, second = self._takeover_v5()
        # The second connection works.
        second.send(raw.pingreq())
        second.expect(raw.PINGRESP)

    def test_takeover_v5_sends_disconnect_0x8e(self):
        # [MQTT-3.1.4-3]; reason 0x8E "Session taken over".
        require_wharf(self, "Mosquitto 2.0.11 closes the old connection without DISCONNECT")
        got, second = self._takeover_v5()
        self.assertEqual([(p.type, p.reason) for p in got], [(raw.DISCONNECT, 0x8E)])
        # The second connection works.
        second.send(raw.pingreq())
        second.expect(raw.PINGRESP)

    def test_takeover_v311_closes_first_and_publishes_will(self):
        topic = unique("will/takeover3")
        cid = unique("dup3")
        w = self.watcher(topic)
        first = self.raw()
        first.version = 4
        first.connect(cid, will={"topic": topic, "payload": b"taken3", "qos": 1})
        second = self.raw()
        second.version = 4
        second.connect(cid)
        self.assertEqual(first.wait_closed(), [])  # v3.1.1 has no server DISCONNECT
        self.assertEqual(w.expect().payload, b"taken3")


if __name__ == "__main__":
    unittest.main()

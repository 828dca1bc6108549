"""Overload protection (wharf only): connection limits over all listeners and per listener,
new connections a second per listener, flapping client ids banned for a while, a
client's publish rate held back by not reading its socket (nothing refused or lost), and
QoS 0 to slow clients dropped first above the memory watermark."""

import time
import unittest

import mqtt_raw as raw
from admin_client import metric, scrape, with_metrics
from wharf_fixture import HOST, WAIT_S, BrokerTestCase, require_wharf, unique, wait_until

QUOTA_EXCEEDED, BANNED, RATE_EXCEEDED = 0x97, 0x8A, 0x9F
V3_SERVER_UNAVAILABLE, V3_NOT_AUTHORIZED = 3, 5


class OverloadTest(BrokerTestCase):
    def setUp(self):
        require_wharf(self, "these bounds are wharf's configuration")
        super().setUp()

    def connect(self, broker, client_id=None, version=5, expect=0):
        c = raw.RawClient(HOST, broker.port, version=version)
        self.addCleanup(c.close)
        c.connect(client_id or unique("c"), expect_reason=expect)
        return c

    def test_max_connections_over_all_listeners_then_room_again(self):
        b = self.new_broker(**with_metrics(mqtt={"max_connections": 2}))
        first = self.connect(b)
        self.connect(b)
        refused = self.connect(b, expect=QUOTA_EXCEEDED)
        self.assertEqual(refused.wait_closed(), [])
        self.connect(b, version=4, expect=V3_SERVER_UNAVAILABLE)
        self.assertEqual(metric(scrape(b)[0], "wharf_mqtt_connects_refused_total", reason="limits"), 2)
        first.send(raw.disconnect())
        first.wait_closed()
        deadline = time.monotonic() + WAIT_S
        while True:  # the freed slot is counted back when the connection is gone
            c = raw.RawClient(HOST, b.port)
            self.addCleanup(c.close)
            if c.connect(unique("c"), expect_reason=None).reason == 0:
                break
            self.assertLess(time.monotonic(), deadline, "the slot never came back")
            time.sleep(0.05)

    def test_reloaded_limits_apply_to_new_connections_and_keep_the_open_ones(self):
        b = self.new_broker(mqtt={"max_connections": 100})
        first = self.connect(b)
        self.connect(b)
        b.reload("MQTT limits", mqtt={"max_connections": 1, "max_subscriptions_per_client": 1})
        self.connect(b, expect=QUOTA_EXCEEDED)
        # The open connections go on, under the new per-packet limits.
        first.send(raw.subscribe(1, [("lim/a", 0), ("lim/b", 0)]))
        self.assertEqual(first.expect(raw.SUBACK).codes, [0, 0x97])

    def test_max_connections_of_one_listener(self):
        b = self.new_broker(listeners=("mqtt", "ws"), listener_keys={"mqtt": "max_connections: 1"})
        self.connect(b)
        self.connect(b, expect=QUOTA_EXCEEDED)
        # The other listener has room.
        ws = self.client(b, kind="ws", transport="websockets")
        self.assertEqual(ws.connack_rc, 0)

    def test_connection_rate_of_a_listener(self):
        # A burst of 2, then 2 a second: connecting as fast as we can is refused (0x9F) once
        # the burst is spent. How many get in first depends on how fast the connects are, so
        # the test counts them against what the bucket allows in the time they took.
        b = self.new_broker(listener_keys={"mqtt": "max_connection_rate: 2"})
        started = time.monotonic()
        admitted = 0
        while True:
            c = raw.RawClient(HOST, b.port)
            self.addCleanup(c.close)
            reason = c.connect(unique("c"), expect_reason=None).reason
            if reason == RATE_EXCEEDED:
                break
            self.assertEqual(reason, 0)
            admitted += 1
            self.assertLess(admitted, 50, "never refused")
        self.assertLessEqual(admitted, 2 + 2 * (time.monotonic() - started) + 1)
        time.sleep(1.1)  # the bucket refills at 2 a second
        self.connect(b)

    def test_a_flapping_client_id_is_banned_for_a_while(self):
        ban_s = 3
        b = self.new_broker(**with_metrics(mqtt={"flapping": "{max_connects: 3, window_s: 60, ban_s: %d}"
                                                 % ban_s}))
        for _ in range(3):
            c = self.connect(b, client_id="flappy")
            c.send(raw.disconnect())
            c.wait_closed()
        self.connect(b, client_id="flappy", expect=BANNED)
        banned_by = time.monotonic()  # the ban started before its CONNACK came
        self.connect(b, client_id="flappy", version=4, expect=V3_NOT_AUTHORIZED)
        self.connect(b, client_id="steady")  # other ids are not affected
        self.assertEqual(metric(scrape(b)[0], "wharf_mqtt_connects_refused_total", reason="banned"), 2)
        time.sleep(max(0.0, banned_by + ban_s + 0.2 - time.monotonic()))
        self.connect(b, client_id="flappy")

    def test_a_fast_publisher_is_slowed_down_and_loses_nothing(self):
        self.assert_slowed_down_losing_nothing({"max_publish_rate": 20}, payload_bytes=0)

    def test_a_publisher_over_its_bandwidth_is_slowed_down_and_loses_nothing(self):
        # Packets of about 1 KB at 20 KB a second: the same pace as 20 packets a second.
        self.assert_slowed_down_losing_nothing({"max_inbound_bytes_rate": 20000}, payload_bytes=1000)

    def assert_slowed_down_losing_nothing(self, limit, payload_bytes):
        """60 QoS 0 publishes sent as fast as possible under `limit` (one second's worth of
        burst, then 20 a second) arrive all, in order, in about 2 s; the pause is counted."""
        b = self.new_broker(mqtt=dict(limit, sys_interval_s=1))
        sub = self.client(b)
        sub.subscribe("rate/#", qos=1)
        sub.subscribe("$SYS/broker/clients/rate limited", qos=0)
        pub = self.raw(b)
        pub.connect(unique("fast"))
        started = time.monotonic()
        count = 60
        # One write each, a little apart, so each reaches the broker in its own read: the
        # bucket is checked after each read (a single read is never cut short, its excess
        # is a debt paid by waiting longer).
        for i in range(count):
            pub.send(raw.publish("rate/t", (b"%d " % i).ljust(payload_bytes, b"x"), qos=0))
            time.sleep(0.005)
        got = []
        limited = 0
        while len(got) < count:
            msg = sub.expect(timeout_s=10)
            if msg.topic.startswith("$SYS"):
                limited = max(limited, int(msg.payload))
            else:
                got.append(int(msg.payload.split()[0]))
        elapsed = time.monotonic() - started
        self.assertEqual(got, list(range(count)))
        # The first 20 at once, then 40 at 20 a second: about 2 s; well under means no limit.
        self.assertGreater(elapsed, 1.2)
        while limited == 0:
            msg = sub.expect(timeout_s=5)
            if msg.topic.startswith("$SYS"):
                limited = int(msg.payload)

    def test_over_the_memory_watermark_qos0_to_a_slow_client_is_dropped_first(self):
        # A watermark of one byte: resident memory is always above it.
        b = self.new_broker(**with_metrics(mqtt={"memory_watermark_bytes": 1, "sys_interval_s": 1}))
        wait_until(lambda: "above mqtt.memory_watermark_bytes" in b.log())
        slow = self.raw(b)
        slow.connect(unique("slow"))
        slow.send(raw.subscribe(1, [("wm/#", 0), ("wmq/#", 1)]))
        slow.expect(raw.SUBACK)
        watcher = self.client(b)
        watcher.subscribe("$SYS/broker/messages/dropped")
        pub = self.raw(b)
        pub.connect(unique("pub"))
        # The slow client reads nothing: its socket fills, then its QoS 0 is dropped.
        chunk = b"x" * 65536
        for _ in range(300):
            pub.send(raw.publish("wm/t", chunk, qos=0))
        for i in range(5):
            pub.send(raw.publish("wmq/t", b"%d" % i, qos=1, pid=i + 1))
            pub.expect(raw.PUBACK)
        dropped = 0
        while dropped == 0:
            dropped = int(watcher.expect(timeout_s=5).payload)
        # QoS 1 is not what goes: once the slow client reads, all five arrive.
        got = []
        while len(got) < 5:
            p = slow.recv(timeout_s=10)
            self.assertIsNotNone(p, "connection closed with %r of the QoS 1 messages" % got)
            if p.type == raw.PUBLISH and p.qos == 1:
                got.append(int(p.payload))
        self.assertEqual(got, [0, 1, 2, 3, 4])
        self.assertLess(dropped, 300)  # some went before the socket filled
        # Counted for the watermark, not as a slow client's full queue.
        samples = scrape(b)[0]
        # ($SYS was read once, maybe before the last drops.)
        self.assertGreaterEqual(metric(samples, "wharf_mqtt_messages_dropped_total", reason="memory_watermark"),
                                dropped)
        self.assertEqual(metric(samples, "wharf_mqtt_messages_dropped_total", reason="slow_client"), 0)


if __name__ == "__main__":
    unittest.main()

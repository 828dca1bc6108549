"""Byte-level MQTT 5 tests over raw sockets (mqtt_raw): topic aliases in both
directions, receive maximum in both directions, maximum packet size, and malformed or
out-of-order packets. After every misbehaving client the broker must still serve a
well-behaved one."""

import time
import unittest

import mqtt_raw as raw
from wharf_fixture import QUIET_S, BrokerTestCase, is_mosquitto, require_wharf, unique


def sub_opts(qos):
    return qos  # no-local, retain-as-published, retain handling all 0


def wharf_reason(code, mosquitto_does):
    """The DISCONNECT reason wharf must send. Under Mosquitto only the rejection
    itself is checked: `mosquitto_does` records what it sends instead."""
    return None if is_mosquitto() else code


class RawTestCase(BrokerTestCase):

    def connected(self, prefix="raw", version=5, **kwargs):
        r = self.raw()
        r.version = version
        r.ack = r.connect(unique(prefix), **kwargs)
        return r

    def subscribed(self, topic, qos=1, **kwargs):
        r = self.connected("sub", **kwargs)
        r.send(raw.subscribe(1, [(topic, sub_opts(qos))]))
        self.assertEqual(r.expect(raw.SUBACK).codes, [qos])
        return r

    def assert_no_packet(self, r, timeout_s=QUIET_S):
        try:
            p = r.recv(timeout_s)
        except TimeoutError:
            return
        self.fail("unexpected packet %r" % (p,))

    def assert_broker_healthy(self):
        """A fresh, well-behaved client can still publish and receive."""
        topic = unique("healthy")
        sub = self.subscribed(topic)
        pub = self.connected("healthy-pub")
        pub.send(raw.publish(topic, b"ok", qos=1, pid=9))
        self.assertEqual(pub.expect(raw.PUBACK).pid, 9)
        msg = sub.expect(raw.PUBLISH)
        self.assertEqual((msg.topic, msg.payload), (topic, b"ok"))

    def assert_rejected(self, r, reason=None):
        """The server closes the connection; for v5 it may send DISCONNECT first, and
        must if `reason` is given (then with that reason)."""
        got = r.wait_closed()
        if reason is not None:
            self.assertEqual([(p.type, p.reason) for p in got], [(raw.DISCONNECT, reason)])
        else:
            for p in got:
                self.assertEqual(p.type, raw.DISCONNECT, p)
                self.assertGreaterEqual(p.reason, 0x80, p)
        self.assert_broker_healthy()


class TopicAliasTest(RawTestCase):
    mqtt_config = {"topic_alias_maximum": 5}

    def test_connack_advertises_topic_alias_maximum(self):
        r = self.connected()
        self.assertEqual(r.ack.props.get("topic_alias_maximum"), 5)

    def test_inbound_alias_resolves_to_full_topic(self):
        t1, t2 = unique("alias/a"), unique("alias/b")
        sub1, sub2 = self.subscribed(t1), self.subscribed(t2)
        pub = self.connected("pub")
        pub.send(raw.publish(t1, b"full", qos=1, pid=1, props={"topic_alias": 1}))
        pub.expect(raw.PUBACK)
        pub.send(raw.publish("", b"alias-only", qos=1, pid=2, props={"topic_alias": 1}))
        pub.expect(raw.PUBACK)
        # Re-map alias 1 to another topic.
        pub.send(raw.publish(t2, b"remapped", qos=0, props={"topic_alias": 1}))
        pub.send(raw.publish("", b"alias-only-2", qos=1, pid=3, props={"topic_alias": 1}))
        pub.expect(raw.PUBACK)
        for expected in (b"full", b"alias-only"):
            m = sub1.expect(raw.PUBLISH)
            self.assertEqual((m.topic, m.payload), (t1, expected))
            # sub1 advertised no topic alias maximum: no alias towards it [MQTT-3.3.2-9].
            self.assertNotIn("topic_alias", m.props)
            sub1.send(raw.ack(raw.PUBACK, m.pid))
        for expected in (b"remapped", b"alias-only-2"):
            m = sub2.expect(raw.PUBLISH)
            self.assertEqual((m.topic, m.payload), (t2, expected))
            if m.qos:
                sub2.send(raw.ack(raw.PUBACK, m.pid))
        self.assert_no_packet(sub1)

    def test_alias_above_maximum_is_disconnected_0x94(self):
        pub = self.connected("pub")
        pub.send(raw.publish(unique("alias/big"), b"x", qos=0, props={"topic_alias": 6}))
        self.assert_rejected(pub, reason=0x94)

    def test_alias_zero_is_disconnected_0x94(self):
        pub = self.connected("pub")
        pub.send(raw.publish(unique("alias/zero"), b"x", qos=0, props={"topic_alias": 0}))
        # Section 3.3.2.3.4: alias 0 is "Topic Alias invalid" like one above maximum.
        self.assert_rejected(pub, reason=wharf_reason(0x94, "0x81"))

    def test_unknown_alias_is_protocol_error(self):
        pub = self.connected("pub")
        pub.send(raw.publish("", b"x", qos=0, props={"topic_alias": 3}))
        self.assert_rejected(pub, reason=0x82)

    def test_broker_assigns_outbound_aliases(self):
        # The broker may use aliases towards a client that allows them; wharf does,
        # for repeated topics: later deliveries carry an empty topic and the alias.
        require_wharf(self, "Mosquitto 2.0 never assigns outbound topic aliases")
        topic = unique("alias/out")
        sub = self.subscribed(topic, props={"topic_alias_maximum": 5})
        pub = self.connected("pub")
        for i in range(3):
            pub.send(raw.publish(topic, b"%d" % i, qos=1, pid=i + 1))
            pub.expect(raw.PUBACK)
        first = sub.expect(raw.PUBLISH)
        self.assertEqual((first.topic, first.payload), (topic, b"0"))
        alias = first.props.get("topic_alias")
        self.assertIsNotNone(alias, "first delivery should establish an alias")
        self.assertTrue(1 <= alias <= 5, alias)
        sub.send(raw.ack(raw.PUBACK, first.pid))
        for i in (1, 2):
            m = sub.expect(raw.PUBLISH)
            self.assertEqual((m.topic, m.payload, m.props.get("topic_alias")),
                             ("", b"%d" % i, alias))
            sub.send(raw.ack(raw.PUBACK, m.pid))


class ReceiveMaximumTest(RawTestCase):
    mqtt_config = {"receive_maximum": 2}

    def test_client_receive_maximum_limits_unacked_deliveries(self):
        topic = unique("rm/client")
        sub = self.subscribed(topic, props={"receive_maximum": 2})
        pub = self.connected("pub")
        for i in range(5):
            pub.send(raw.publish(topic, b"%d" % i, qos=1, pid=i + 1))
            pub.expect(raw.PUBACK)
        got = [sub.expect(raw.PUBLISH), sub.expect(raw.PUBLISH)]
        self.assertEqual([m.payload for m in got], [b"0", b"1"])
        self.assert_no_packet(sub)  # a third would exceed the window [MQTT-3.3.4-9]
        # Acknowledging releases the rest.
        for m in got:
            sub.send(raw.ack(raw.PUBACK, m.pid))
        rest = []
        while len(rest) < 3:
            m = sub.expect(raw.PUBLISH)
            rest.append(m.payload)
            sub.send(raw.ack(raw.PUBACK, m.pid))
        self.assertEqual(rest, [b"2", b"3", b"4"])

    def test_client_receive_maximum_window_slides_by_one(self):
        require_wharf(self, "Mosquitto 2.0.11 sends 3 unacknowledged PUBLISHes to a "
                            "client with Receive Maximum 2 after the first PUBACK")
        topic = unique("rm/slide")
        sub = self.subscribed(topic, props={"receive_maximum": 2})
        pub = self.connected("pub")
        for i in range(5):
            pub.send(raw.publish(topic, b"%d" % i, qos=1, pid=i + 1))
            pub.expect(raw.PUBACK)
        got = [sub.expect(raw.PUBLISH), sub.expect(raw.PUBLISH)]
        self.assert_no_packet(sub)
        sub.send(raw.ack(raw.PUBACK, got[0].pid))
        m = sub.expect(raw.PUBLISH)
        self.assertEqual(m.payload, b"2")
        self.assert_no_packet(sub)
        for p in (got[1], m):
            sub.send(raw.ack(raw.PUBACK, p.pid))
        self.assertEqual([sub.expect(raw.PUBLISH).payload for _ in range(2)], [b"3", b"4"])

    def test_connack_advertises_receive_maximum(self):
        r = self.connected()
        self.assertEqual(r.ack.props.get("receive_maximum"), 2)

    def test_exceeding_broker_receive_maximum_is_disconnected_0x93(self):
        # [MQTT-3.3.4-7/8]: more unacknowledged QoS 2 PUBLISHes than the broker's
        # Receive Maximum -> DISCONNECT 0x93.
        require_wharf(self, "Mosquitto 2.0.11 answers PUBREC 0x97 and stays connected")
        pub = self.connected("pub")
        topic = unique("rm/server")
        for pid in (1, 2):
            pub.send(raw.publish(topic, b"x", qos=2, pid=pid))
            self.assertEqual(pub.expect(raw.PUBREC).pid, pid)  # no PUBREL sent
        pub.send(raw.publish(topic, b"x", qos=2, pid=3))
        self.assert_rejected(pub, reason=0x93)

    def test_a_client_still_sending_reads_the_disconnect_without_a_reset(self):
        # A client that pipelines QoS 2 publishes past the Receive Maximum is disconnected
        # (0x93) while more of its publishes are on the way. Its writes must keep working
        # until it has read the DISCONNECT, and the connection end with a FIN, not a RST
        # that could destroy the DISCONNECT unread.
        require_wharf(self, "Mosquitto 2.0.11 answers PUBREC 0x97 and stays connected")
        pub = self.connected("pipeline")
        topic = unique("rm/pipeline")
        burst = b"".join(raw.publish(topic, b"x" * 512, qos=2, pid=pid) for pid in range(1, 40))
        write_errors = []
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:  # the broker stops reading them after the third
            try:
                pub.sock.sendall(burst)
            except OSError as e:
                write_errors.append(e)
                break
            time.sleep(0.02)
        self.assertEqual(write_errors, [])
        got = []
        try:
            while True:
                p = pub.recv(5.0)
                if p is None:
                    break  # end of file: a FIN
                got.append(p)
        except ConnectionResetError:
            self.fail("the connection was reset; read so far: %r" % got)
        self.assertEqual([(p.type, p.reason) for p in got if p.type != raw.PUBREC], [(raw.DISCONNECT, 0x93)])
        pub.close()
        self.assert_broker_healthy()

    def test_within_broker_receive_maximum_is_fine(self):
        pub = self.connected("pub")
        topic = unique("rm/ok")
        for pid in range(1, 6):  # completes each exchange: never more than 1 in flight
            pub.send(raw.publish(topic, b"x", qos=2, pid=pid))
            pub.expect(raw.PUBREC)
            pub.send(raw.ack(raw.PUBREL, pid))
            self.assertEqual(pub.expect(raw.PUBCOMP).pid, pid)


class MaximumPacketSizeTest(RawTestCase):

    def test_oversized_message_not_sent_to_limited_client(self):
        # [MQTT-3.1.2-25]: the server must not send packets larger than the client's
        # Maximum Packet Size; it discards the message for that client only.
        topic = unique("mps")
        small = self.subscribed(topic, props={"maximum_packet_size": 100})
        normal = self.subscribed(topic)
        pub = self.connected("pub")
        pub.send(raw.publish(topic, b"B" * 200, qos=1, pid=1))
        pub.expect(raw.PUBACK)
        pub.send(raw.publish(topic, b"small", qos=1, pid=2))
        pub.expect(raw.PUBACK)
        m = small.expect(raw.PUBLISH)
        self.assertEqual(m.payload, b"small")
        self.assertEqual([normal.expect(raw.PUBLISH).payload for _ in range(2)],
                         [b"B" * 200, b"small"])



class BrokerMaximumPacketSizeTest(RawTestCase):
    mqtt_config = {"max_packet_size": 10000}

    def test_connack_advertises_maximum_packet_size(self):
        self.assertEqual(self.connected().ack.props.get("maximum_packet_size"), 10000)

    def test_packet_above_broker_max_packet_size_is_rejected(self):
        # [MQTT-3.2.2-15 ff.]: a packet above the advertised maximum -> DISCONNECT 0x95.
        pub = self.connected("pub")
        topic = unique("mps/big")
        pub.send(raw.publish(topic, b"x" * 9000, qos=1, pid=1))  # fits
        pub.expect(raw.PUBACK)
        try:
            pub.send(raw.publish(topic, b"x" * 20000, qos=1, pid=2))
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.assert_rejected(pub, reason=0x95)


class MalformedTest(RawTestCase):

    def test_qos3_publish_v5(self):
        r = self.connected()
        r.send(bytes([0x36]) + raw.varint(7) + raw.utf8("a/b") + b"\x00\x01" + b"\x00")
        # [MQTT-3.3.1-4] malformed -> DISCONNECT 0x81.
        self.assert_rejected(r, reason=0x81)

    def test_qos3_publish_v311(self):
        r = self.connected(version=4)
        r.send(bytes([0x36]) + raw.varint(7) + raw.utf8("a/b") + b"\x00\x01x")
        self.assert_rejected(r)
        self.assertEqual(r.buf, b"")

    def test_bad_remaining_length(self):
        for version in (4, 5):
            with self.subTest(version=version):
                r = self.connected(version=version)
                # Five continuation bytes: more than the 4 allowed.
                r.send(b"\x30\xff\xff\xff\xff\x01")
                self.assert_rejected(r)

    def test_reserved_flags(self):
        for version in (4, 5):
            with self.subTest(version=version):
                r = self.connected(version=version)
                bad = bytearray(raw.subscribe(1, [("a/b", 1)], version=version))
                bad[0] = 0x80  # SUBSCRIBE flags must be 0b0010 [MQTT-3.8.1-1]
                r.send(bytes(bad))
                self.assert_rejected(r, reason=None if version == 4 else 0x81)

    def test_wildcard_in_publish_topic(self):
        r = self.connected()
        r.send(raw.publish("a/+/b", b"x", qos=0))
        # [MQTT-3.3.2-2]; v5 reason 0x90 Topic Name invalid.
        self.assert_rejected(r, reason=wharf_reason(0x90, "0x82"))
        r = self.connected(version=4)
        r.send(raw.publish("a/#", b"x", qos=0, version=4))
        self.assert_rejected(r)

    def test_packet_id_zero(self):
        for version in (4, 5):
            with self.subTest(version=version):
                r = self.connected(version=version)
                r.send(raw.publish(unique("pid0"), b"x", qos=1, pid=0, version=version))
                self.assert_rejected(r)

    def test_first_packet_not_connect(self):
        r = self.raw()
        r.send(raw.pingreq())
        self.assertEqual(r.wait_closed(), [])  # no CONNACK, nothing [MQTT-3.1.0-1]
        r = self.raw()
        r.send(raw.publish("a/b", b"x", qos=0))
        self.assertEqual(r.wait_closed(), [])
        self.assert_broker_healthy()

    def test_second_connect(self):
        r = self.connected()
        r.send(raw.connect(unique("again")))
        # [MQTT-3.1.0-2]: protocol error.
        self.assert_rejected(r, reason=wharf_reason(0x82, "close without DISCONNECT"))
        r = self.connected(version=4)
        r.send(raw.connect(unique("again"), version=4))
        self.assert_rejected(r)

    def test_unknown_protocol_level(self):
        r = self.raw()
        r.version = 4
        r.send(raw.connect(unique("lvl"), version=9))
        # [MQTT-3.1.2-2]: CONNACK 0x01 (3.1.1) / 0x84 (5.0) or just close.
        got = r.wait_closed()
        for p in got:
            self.assertEqual(p.type, raw.CONNACK)
            self.assertIn(p.reason, (0x01, 0x84))
        self.assert_broker_healthy()

    def test_truncated_packet_then_close(self):
        r = self.connected()
        r.send(raw.publish(unique("trunc"), b"x" * 100, qos=0)[:20])
        r.close()
        self.assert_broker_healthy()

    def test_garbage_instead_of_connect(self):
        r = self.raw()
        r.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(r.wait_closed(), [])
        self.assert_broker_healthy()


if __name__ == "__main__":
    unittest.main()

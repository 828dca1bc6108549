"""End to end with the Mosquitto command line clients (an independent MQTT
implementation): QoS 0/1/2 for MQTT 3.1.1 and 5, retained messages, -C, and the $SYS
topics."""

import re
import time
import unittest

from wharf_fixture import (WAIT_S, BrokerTestCase, MosquittoSub, mosquitto_pub,
                           unique)

VERSIONS = ("mqttv311", "mqttv5")


class MosquittoClientsTest(BrokerTestCase):

    def sub(self, topic, *args, count=1, broker=None):
        s = MosquittoSub((broker or self.broker).port, topic, args, count=count)
        self.addCleanup(s.kill)
        return s.start()

    def pub(self, topic, message, *args):
        r = mosquitto_pub(self.broker.port, topic, message, args)
        self.assertEqual(r.returncode, 0, r.stdout)

    def test_qos_levels(self):
        for version in VERSIONS:
            for qos in (0, 1, 2):
                with self.subTest(version=version, qos=qos):
                    topic = unique("cli/qos%d" % qos)
                    s = self.sub(topic, "-V", version, "-q", str(qos), count=3)
                    for i in range(3):
                        self.pub(topic, "m%d-%s" % (i, version), "-V", version, "-q", str(qos))
                    rc, msgs = s.wait()
                    self.assertEqual(rc, 0)
                    self.assertEqual(msgs, [(topic, qos, 0, "m%d-%s" % (i, version))
                                            for i in range(3)])

    def test_cross_version(self):
        topic = unique("cli/cross")
        s = self.sub(topic, "-V", "mqttv311", "-q", "1", count=1)
        self.pub(topic, "five-to-three", "-V", "mqttv5", "-q", "1")
        self.assertEqual(s.wait()[1], [(topic, 1, 0, "five-to-three")])

    def test_retained(self):
        for version in VERSIONS:
            with self.subTest(version=version):
                topic = unique("cli/ret")
                self.pub(topic, "kept", "-V", version, "-q", "1", "-r")
                s = self.sub(topic, "-V", version, "-q", "1", count=1)
                self.assertEqual(s.wait()[1], [(topic, 1, 1, "kept")])
                # Clear it: a later subscriber gets only the live message.
                self.pub(topic, "", "-V", version, "-q", "1", "-r")
                s = self.sub(topic, "-V", version, "-q", "1", count=1)
                self.pub(topic, "live", "-V", version, "-q", "1")
                self.assertEqual(s.wait()[1], [(topic, 1, 0, "live")])

    def test_count_limit(self):
        topic = unique("cli/count")
        s = self.sub(topic, "-q", "1", count=2)
        for i in range(4):
            self.pub(topic, "n%d" % i, "-q", "1")
        rc, msgs = s.wait()
        self.assertEqual(rc, 0)
        self.assertEqual([m[3] for m in msgs], ["n0", "n1"])

    def test_wildcard_subscribe(self):
        base = unique("cli/wc")
        s = self.sub(base + "/#", "-q", "1", count=2)
        self.pub(base + "/a/b", "ab", "-q", "1")
        self.pub(base + "x/other", "no", "-q", "1")
        self.pub(base + "/c", "c", "-q", "1")
        self.assertEqual([(m[0], m[3]) for m in s.wait()[1]],
                         [(base + "/a/b", "ab"), (base + "/c", "c")])


class SysTopicsTest(BrokerTestCase):
    mqtt_config = {"sys_interval_s": 1}

    def sys_value(self, name, *args):
        s = MosquittoSub(self.broker.port, "$SYS/broker/" + name, args, count=1,
                         timeout_s=WAIT_S)
        self.addCleanup(s.kill)
        s.start()
        rc, msgs = s.wait(timeout_s=WAIT_S + 2)
        self.assertEqual(rc, 0, "\n".join(s.lines))
        self.assertEqual(len(msgs), 1)
        return msgs[0][3]

    def test_version(self):
        for version in VERSIONS:
            with self.subTest(version=version):
                self.assertTrue(self.sys_value("version", "-V", version).strip())

    def test_uptime(self):
        first = self.sys_value("uptime")
        m = re.match(r"^(\d+)( seconds)?$", first)
        self.assertIsNotNone(m, first)

    def test_clients_connected(self):
        extra = [self.client() for _ in range(3)]
        self.assertEqual(len(extra), 3)
        # At least our three (mosquitto_sub may not be counted yet: the value is
        # from the last $SYS period), possibly one period late.
        deadline = time.monotonic() + WAIT_S
        while True:
            value = int(self.sys_value("clients/connected"))
            if value >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertGreaterEqual(value, 3)

    def test_messages_received_increases(self):
        before = int(self.sys_value("messages/received"))
        c = self.client()
        topic = unique("sys/count")
        for i in range(5):
            c.publish(topic, b"x", qos=1)
        deadline = time.monotonic() + 3 * WAIT_S
        while True:
            after = int(self.sys_value("messages/received"))
            if after >= before + 5 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertGreaterEqual(after, before + 5)

    def test_hash_does_not_match_sys(self):
        # '#' never delivers $SYS [MQTT-4.7.2-1]: a '#' subscriber sees only the
        # ordinary message published after it subscribed.
        topic = unique("sys/hash")
        s = MosquittoSub(self.broker.port, "#", (), count=1)
        self.addCleanup(s.kill)
        s.start()
        time.sleep(1.2)  # at least one $SYS publish period passes
        mosquitto_pub(self.broker.port, topic, "plain")
        rc, msgs = s.wait()
        self.assertEqual([(m[0], m[3]) for m in msgs], [(topic, "plain")])


if __name__ == "__main__":
    unittest.main()

"""The uplink to a remote broker (docs/BRIDGE.md), against a real Mosquitto (Debian's)
started by the test on a loopback port: messages flow both ways with prefix rewriting;
what goes up is not echoed back down; with the remote stopped, 1,000 messages published
locally are kept across a wharf kill -9 and all reach the remote, in order, once it is back."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from admin_client import scrape as scrape_metrics, with_metrics
from wharf_fixture import (HOST, V311, WAIT_S, BrokerTestCase, Client, certs, free_port,
                           is_mosquitto, unique)


class RemoteMosquitto:
    """A Mosquitto on a loopback port with persistence, restartable on the same port."""

    def __init__(self, tls=False):
        self.dir = tempfile.mkdtemp(prefix="wharf-remote-")
        self.port = free_port()
        self.proc = None
        # With tls, a second listener speaks MQTT over TLS (the test CA's server certificate).
        self.tls_port = free_port() if tls else None
        conf = ["per_listener_settings false", "listener %d %s" % (self.port, HOST)]
        if tls:
            c = certs()
            conf += ["listener %d %s" % (self.tls_port, HOST), "certfile %s" % c.server_cert,
                     "keyfile %s" % c.server_key]
        conf += ["allow_anonymous true",
                "persistence true", "persistence_location %s/" % self.dir,
                "max_queued_messages 5000", "log_dest file %s/mosquitto.log" % self.dir]
        if os.geteuid() == 0:
            conf.append("user root")  # otherwise it cannot write our directory
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        Path(self.conf).write_text("\n".join(conf) + "\n")
        # What the fixture's Client needs of a broker.
        self.ports = {"mqtt": self.port}

    def start(self):
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError("mosquitto did not start on %d" % self.port)
                time.sleep(0.05)

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)  # saves its persistence file
            self.proc.wait(timeout=10)
            self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def uplink_config(remote, version="3.1.1", tls=False):
    address = "ssl://%s:%d" % (HOST, remote.tls_port) if tls else "tcp://%s:%d" % (HOST, remote.port)
    return ("  uplink:\n"
            "    address: \"%s\"\n"
            "%s"
            "    client_id: %s\n"
            "    mqtt_version: \"%s\"\n"
            "    reconnect_min_ms: 200\n"
            "    reconnect_max_ms: 500\n"
            "    topics:\n"
            "      - {filter: \"up/#\", direction: out, qos: 1, remote_prefix: \"gw1/\"}\n"
            "      - {filter: \"cmd/#\", direction: in, qos: 1, local_prefix: \"cloud/\"}\n"
            "      - {filter: \"both/#\", direction: both, qos: 1}\n"
            % (address, "    ca_file: %s\n" % certs().ca_cert if tls else "", unique("gw"), version))


class UplinkTest(BrokerTestCase):

    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            raise unittest.SkipTest("wharf-only: the uplink is wharf's")
        cls.broker = None

    def remote(self, tls=False):
        r = RemoteMosquitto(tls).start()
        self.addCleanup(r.cleanup)
        return r

    def remote_client(self, remote, **kwargs):
        c = Client(remote, **kwargs)
        self.addCleanup(c.close)
        return c.connect()

    def both_ways(self, version, tls=False, scrape=False):
        remote = self.remote(tls)
        admin = with_metrics() if scrape else {}
        wharf = self.new_broker(bridge=uplink_config(remote, version, tls), **admin)
        up_sub = self.remote_client(remote, client_id=unique("rsub"))
        up_sub.subscribe("gw1/#", qos=1)
        local = self.client(broker=wharf, client_id=unique("local"))
        local.subscribe("cloud/#", qos=1)
        local.subscribe("both/#", qos=1)

        # Up, with the remote prefix (stored and forwarded: no need to wait for the connection).
        local.publish("up/kitchen/temp", b"21", qos=1)
        m = up_sub.expect(timeout_s=10)
        self.assertEqual((m.topic, m.payload, m.qos), ("gw1/up/kitchen/temp", b"21", 1))

        # Down, with the local prefix (the uplink subscribed before it sent anything up).
        remote_pub = self.remote_client(remote, client_id=unique("rpub"))
        remote_pub.publish("cmd/lamp", b"on", qos=1)
        m = local.expect(topic="cloud/cmd/lamp")
        self.assertEqual((m.payload, m.qos), (b"on", 1))

        # A topic going both ways: up once, and not back down again (no loop).
        both_sub = self.remote_client(remote, client_id=unique("rboth"))
        both_sub.subscribe("both/#", qos=1)
        local.publish("both/x", b"once", qos=1)
        self.assertEqual(both_sub.expect(timeout_s=10).payload, b"once")
        got = [m for m in local.fence() if m.topic == "both/x"]
        time.sleep(0.5)
        got += [m for m in local.drain() if m.topic == "both/x"]
        if version == "5":
            self.assertEqual([m.payload for m in got], [b"once"])  # No Local: no echo
        else:
            # 3.1.1 has no No Local: the remote echoes it once; the echo does not go up again.
            self.assertLessEqual(len(got), 2)
            both_sub.expect_none(timeout_s=0.5)
        if scrape:
            samples = scrape_metrics(wharf)[0]
            self.assertEqual(samples[("wharf_bridge_uplink_connected", frozenset())], 1)
            self.assertGreaterEqual(samples[("wharf_bridge_uplink_connects_total", frozenset())], 1)
            up = samples[("wharf_bridge_uplink_messages_total", frozenset({("direction", "up")}))]
            down = samples[("wharf_bridge_uplink_messages_total", frozenset({("direction", "down")}))]
            self.assertGreaterEqual((up, down), (2, 1))

    def test_both_ways_v311(self):
        self.both_ways("3.1.1")

    def test_both_ways_v5(self):
        self.both_ways("5", scrape=True)

    def test_both_ways_v5_over_tls(self):
        self.both_ways("5", tls=True)

    def test_a_reload_that_changes_the_uplink_restarts_it_with_the_new_topics(self):
        remote = self.remote()
        wharf = self.new_broker(bridge=uplink_config(remote))
        up_sub = self.remote_client(remote, client_id=unique("rsub"))
        up_sub.subscribe("#", qos=1)
        local = self.client(broker=wharf, client_id=unique("local"))
        local.publish("up/a", b"before", qos=1)
        self.assertEqual(up_sub.expect(timeout_s=10).topic, "gw1/up/a")
        wharf.reload("uplink restarted with its new settings",
                     bridge=uplink_config(remote) + "      - {filter: \"extra/#\", direction: out}\n")
        local.publish("extra/b", b"after", qos=1)  # the same local connection
        m = up_sub.expect(timeout_s=10, topic="extra/b")
        self.assertEqual(m.payload, b"after")

    def test_messages_published_while_the_remote_is_down_arrive_in_order_after_a_restart(self):
        remote = self.remote()
        # A persistent subscriber on the remote, offline while the messages arrive there.
        sub_id = unique("rsub")
        sub = self.remote_client(remote, client_id=sub_id, clean=False, version=V311)
        sub.subscribe("gw1/up/seq", qos=1)
        sub.disconnect()

        wharf = self.new_broker(bridge=uplink_config(remote))
        remote.stop()
        pub = self.client(broker=wharf, client_id=unique("pub"))
        count = 1000
        for i in range(count):
            pub.publish("up/seq", b"%d" % i, qos=1)  # acknowledged: in the uplink's queue
        pub.close()
        wharf.kill()
        wharf.start()
        remote.start()

        sub = self.remote_client(remote, client_id=sub_id, clean=False, version=V311)
        got = []
        deadline = time.monotonic() + 60
        while len(set(got)) < count and time.monotonic() < deadline:
            try:
                got.append(int(sub.expect(timeout_s=max(deadline - time.monotonic(), 0.1)).payload))
            except AssertionError:
                break
        # At least once: a batch cut off by a disconnect may come twice; first arrivals in order.
        first = []
        for n in got:
            if n not in first:
                first.append(n)
        self.assertEqual(first, list(range(count)))


if __name__ == "__main__":
    unittest.main()

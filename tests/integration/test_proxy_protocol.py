"""PROXY protocol on the MQTT and queue-API listeners (wharf only, docs/CONFIG.md,
`proxy_protocol`): a trusted load balancer (here 127.0.0.2, a loopback source address)
sends a version 1 or 2 header and the broker sees the client it names (the admin API's
`peer`, the message trace's `by`); a client from another source connects directly, but a
header from it, a bad header, or none from the balancer closes the connection, counted."""

import http.client
import json
import socket
import struct
import unittest

from admin_client import admin_get, metric, ops_entry, scrape
from cmq_client import CmqClient
from wharf_fixture import CREDENTIALS, HOST, QueueApiTestCase, is_mosquitto, unique, wait_until

BALANCER = "127.0.0.2"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(client, port):
    return ("PROXY TCP4 %s 192.0.2.1 %d 1883\r\n" % (client, port)).encode()


def v2_ipv6(client, port):
    block = socket.inet_pton(socket.AF_INET6, client) + socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    block += struct.pack(">HH", port, 1883)
    return V2_SIGNATURE + bytes([0x21, 0x21]) + struct.pack(">H", len(block)) + block


def connect_packet(client_id):
    """An MQTT 3.1.1 CONNECT, clean session, keep alive 60."""
    cid = client_id.encode()
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + struct.pack(">H", len(cid)) + cid
    return bytes([0x10, len(body)]) + body


class ProxyProtocolTest(QueueApiTestCase):
    listeners = ("mqtt", "queue-api", "admin")

    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            raise unittest.SkipTest("wharf-only: Mosquitto has no PROXY protocol on its listeners")
        proxy = 'proxy_protocol: {trusted: ["%s"], header_timeout_ms: 500}' % BALANCER
        cls.broker_options = {"auth": "  users:\n    - %s\n" % ops_entry(),
                              "listener_keys": {"admin": "users: [ops]", "mqtt": proxy, "queue-api": proxy}}
        super().setUpClass()

    def connection(self, source, kind="mqtt"):
        s = socket.create_connection((HOST, self.broker.ports[kind]), timeout=5, source_address=(source, 0))
        self.addCleanup(s.close)
        return s

    def refused(self, kind):
        return metric(scrape(self.broker)[0], "wharf_listener_proxy_refused_total",
                      listener="%s:%d" % (HOST, self.broker.ports[kind]), type=kind)

    def assert_closed(self, s):
        try:
            self.assertEqual(s.recv(16), b"", "the connection was served")
        except ConnectionResetError:
            pass  # closed with the client's bytes unread

    def client_peer(self, client_id):
        status, _, body, _ = admin_get(self.broker, "/api/v1/clients/%s" % client_id)
        self.assertEqual(status, 200, body)
        return json.loads(body)["peer"]

    def test_a_device_behind_the_balancer_is_seen_at_its_own_address(self):
        for header, peer in ((v1("203.0.113.7", 51234), "203.0.113.7:51234"),
                             (v2_ipv6("2001:db8::7", 4000), "[2001:db8::7]:4000")):
            client_id = unique("behind")
            s = self.connection(BALANCER)
            s.sendall(header + connect_packet(client_id))
            self.assertEqual(s.recv(4), b"\x20\x02\x00\x00")  # CONNACK, accepted
            self.assertEqual(self.client_peer(client_id), peer)

    def test_a_header_from_another_source_is_refused_and_a_direct_client_served(self):
        before = self.refused("mqtt")
        forged = self.connection("127.0.0.1")
        forged.sendall(v1("10.1.2.3", 1000) + connect_packet(unique("forged")))
        self.assert_closed(forged)
        wait_until(lambda: self.refused("mqtt") == before + 1, what="the forged header counted")
        client_id = unique("direct")
        direct = self.connection("127.0.0.1")
        direct.sendall(connect_packet(client_id))
        self.assertEqual(direct.recv(4), b"\x20\x02\x00\x00")
        self.assertTrue(self.client_peer(client_id).startswith("127.0.0.1:"))

    def test_the_balancer_without_a_good_header_is_refused(self):
        before = self.refused("mqtt")
        for first in (connect_packet(unique("bare")), b"PROXY TCP4 not-an-address 192.0.2.1 1 2\r\n",
                      V2_SIGNATURE + b"\x21\x11\x00\x02xx", b""):  # the last says nothing in time
            s = self.connection(BALANCER)
            if first:
                s.sendall(first)
            self.assert_closed(s)
        wait_until(lambda: self.refused("mqtt") == before + 4, what="four refusals counted")

    def test_the_queue_api_sees_the_client_the_balancer_names(self):
        class Behind(CmqClient):
            def _connect(self):
                self.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s,
                                                       source_address=(BALANCER, 0))
                self.conn.connect()
                self.conn.sock.sendall(v1("198.51.100.9", 40000))
                self.connects += 1
                self.requests = 0

        api = Behind(HOST, self.broker.ports["queue-api"], CREDENTIALS[0][0], CREDENTIALS[0][1])
        self.addCleanup(api.close)
        q = self.new_queue("proxied", client=api)
        msg_id = self.send(q, "hello", client=api)
        status, _, body, _ = admin_get(self.broker, "/api/v1/messages/%s/trace" % msg_id)
        self.assertEqual(status, 200, body)
        by = json.loads(body)["events"][0]["by"]
        self.assertEqual(by, "SecretId %s from 198.51.100.9:40000" % CREDENTIALS[0][0])
        # Without a header, the balancer is refused here too.
        s = self.connection(BALANCER, "queue-api")
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assert_closed(s)
        self.assertGreaterEqual(self.refused("queue-api"), 1)


if __name__ == "__main__":
    unittest.main()

"""TLS, mutual TLS, WebSocket and secure WebSocket listeners."""

import copy
import os
import shutil
import socket
import ssl
import subprocess
import unittest

import mqtt_raw as raw
from wharf_fixture import (HOST, WAIT_S, Broker, BrokerTestCase, MosquittoSub, certs,
                           client_tls_context, is_mosquitto, mosquitto_pub, require_wharf, unique)


class TlsTest(BrokerTestCase):
    listeners = ("mqtt", "tls", "mtls")

    def cli_tls_args(self, with_client_cert=False, cert=None, key=None):
        c = self.broker.certs
        args = ["--cafile", c.ca_cert]
        if with_client_cert:
            args += ["--cert", cert or c.client_cert, "--key", key or c.client_key]
        return args

    def test_mosquitto_clients_over_tls(self):
        for version in ("mqttv311", "mqttv5"):
            with self.subTest(version=version):
                topic = unique("tls/cli")
                s = MosquittoSub(self.broker.ports["tls"], topic,
                                 ["-V", version, "-q", "1", *self.cli_tls_args()])
                self.addCleanup(s.kill)
                s.start()
                r = mosquitto_pub(self.broker.ports["tls"], topic, "secret",
                                  ["-V", version, "-q", "1", *self.cli_tls_args()])
                self.assertEqual(r.returncode, 0, r.stdout)
                self.assertEqual(s.wait()[1], [(topic, 1, 0, "secret")])

    def test_paho_tls_to_plain_tcp_and_back(self):
        topic = unique("tls/paho")
        tls_sub = self.client(kind="tls", tls=client_tls_context())
        tcp_sub = self.client()
        tls_sub.subscribe(topic + "/down", qos=2)
        tcp_sub.subscribe(topic + "/up", qos=2)
        tls_pub = self.client(kind="tls", tls=client_tls_context())
        tcp_pub = self.client()
        big = bytes(range(256)) * 400  # spans several TLS records
        tls_pub.publish(topic + "/up", big, qos=2)
        tcp_pub.publish(topic + "/down", b"down", qos=1)
        self.assertEqual(tcp_sub.expect().payload, big)
        self.assertEqual(tls_sub.expect().payload, b"down")

    def test_server_certificate_verifies_for_localhost_and_ip(self):
        for name in ("localhost", HOST):
            with self.subTest(server_hostname=name):
                ctx = client_tls_context()
                with socket.create_connection((HOST, self.broker.ports["tls"]), WAIT_S) as s:
                    with ctx.wrap_socket(s, server_hostname=name) as t:
                        self.assertIsNotNone(t.getpeercert())

    def test_plain_mqtt_on_tls_port_fails(self):
        r = raw.RawClient(HOST, self.broker.ports["tls"])
        self.addCleanup(r.close)
        r.send(raw.connect(unique("plain")))
        # Not a TLS ClientHello: the listener must not answer with a CONNACK.
        try:
            p = r.recv(WAIT_S)
        except TimeoutError:
            p = None
        self.assertTrue(p is None or p.type != raw.CONNACK, p)

    def mtls_connect(self, cert=None, key=None):
        """CONNECT over the mutual-TLS listener; returns the CONNACK reason, or raises
        ssl.SSLError / OSError when the handshake or the connection fails."""
        ctx = client_tls_context()
        if cert:
            ctx.load_cert_chain(cert, key)
        s = socket.create_connection((HOST, self.broker.ports["mtls"]), WAIT_S)
        t = ctx.wrap_socket(s, server_hostname="localhost")
        try:
            # With TLS 1.3 a missing client certificate is reported after the
            # client's handshake completes: on the first read.
            t.sendall(raw.connect(unique("mtls")))
            data = t.recv(4)
            if not data:
                raise ConnectionResetError("closed without CONNACK")
            return data[0] >> 4, data[3]
        finally:
            t.close()

    def test_mtls_without_client_cert_fails(self):
        with self.assertRaises((ssl.SSLError, OSError)):
            self.mtls_connect()
        c = self.broker.certs
        r = mosquitto_pub(self.broker.ports["mtls"], unique("mtls/none"), "x",
                          ["-q", "1", "--cafile", c.ca_cert])
        self.assertNotEqual(r.returncode, 0, r.stdout)

    def test_mtls_with_untrusted_client_cert_fails(self):
        c = self.broker.certs
        with self.assertRaises((ssl.SSLError, OSError)):
            self.mtls_connect(c.rogue_cert, c.rogue_key)

    def test_mtls_with_client_cert_works(self):
        c = self.broker.certs
        self.assertEqual(self.mtls_connect(c.client_cert, c.client_key), (raw.CONNACK, 0))
        topic = unique("mtls/ok")
        tls = client_tls_context(cert=c.client_cert, key=c.client_key)
        sub = self.client(kind="mtls", tls=tls)
        sub.subscribe(topic, qos=1)
        s = MosquittoSub(self.broker.ports["mtls"], topic,
                         ["-q", "1", *self.cli_tls_args(with_client_cert=True)])
        self.addCleanup(s.kill)
        s.start()
        r = mosquitto_pub(self.broker.ports["mtls"], topic, "mutual",
                          ["-q", "1", *self.cli_tls_args(with_client_cert=True)])
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(s.wait()[1], [(topic, 1, 0, "mutual")])
        self.assertEqual(sub.expect().payload, b"mutual")


class TlsReloadTest(BrokerTestCase):
    """Certificate rotation: a reload makes new TLS connections use the certificate and key
    the files hold now; connections already open keep going."""

    def server_subject(self, port):
        with socket.create_connection((HOST, port), WAIT_S) as s:
            with client_tls_context().wrap_socket(s, server_hostname="localhost") as t:
                return dict(field[0] for field in t.getpeercert()["subject"])["commonName"]

    def issue_server_certificate(self, c, common_name):
        """A new server certificate and key from the test CA, written over c's files."""
        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True)
        key, csr, ext = c.server_key + ".new", c.server_cert + ".csr", c.server_cert + ".ext"
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        openssl("req", "-new", "-key", key, "-subj", "/CN=" + common_name, "-out", csr)
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", csr, "-CA", c.ca_cert, "-CAkey", c.ca_key, "-CAcreateserial",
                "-days", "2", "-sha256", "-extfile", ext, "-out", c.server_cert)
        os.replace(key, c.server_key)

    def test_reload_rotates_the_certificate_and_keeps_open_connections(self):
        require_wharf(self, "wharf reloads TLS certificates on SIGHUP")
        b = Broker(("mqtt", "tls", "queue-api-tls"), name="tls reload broker")
        self._own_brokers.append(b)
        # Its own copy of the certificates, so rotating them touches no other broker.
        own = copy.copy(certs())
        own.dir = os.path.join(b.dir, "certs")
        shutil.copytree(certs().dir, own.dir)
        for name in ("ca_cert", "ca_key", "server_cert", "server_key"):
            setattr(own, name, os.path.join(own.dir, os.path.basename(getattr(certs(), name))))
        b.certs = own
        b.start()
        self.assertEqual(self.server_subject(b.ports["tls"]), "localhost")
        topic = unique("rotate")
        before = self.client(b, kind="tls", tls=client_tls_context())
        before.subscribe(topic)

        self.issue_server_certificate(own, "localhost-rotated")
        b.reload("TLS certificates replaced")
        for kind in ("tls", "queue-api-tls"):
            self.assertEqual(self.server_subject(b.ports[kind]), "localhost-rotated", kind)
        # The connection made before the rotation still works.
        self.client(b).publish(topic, b"still here")
        self.assertEqual(before.expect().payload, b"still here")

        # A key that does not match the certificate: the reload is refused, nothing changes.
        shutil.copyfile(own.client_key, own.server_key)
        b.reload("config reload refused")
        self.assertRegex(b.log(), r"config reload refused: .*wharf\.yaml: listener 127\.0\.0\.1:\d+: ")
        self.assertEqual(self.server_subject(b.ports["tls"]), "localhost-rotated")


class WebSocketTest(BrokerTestCase):
    listeners = ("mqtt", "ws", "wss")

    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            # The Debian Mosquitto build here fails to open websockets listeners
            # ("Unable to start any listening sockets"), so these run against wharf only.
            raise unittest.SkipTest("wharf-only: Mosquitto cannot open a websockets listener")
        super().setUpClass()

    def ws_roundtrip(self, kind, tls):
        for version_name, version in (("v311", 4), ("v5", 5)):
            with self.subTest(kind=kind, version=version_name):
                topic = unique("ws/" + kind)
                ws_sub = self.client(kind=kind, transport="websockets", tls=tls,
                                     version=version)
                tcp_sub = self.client(version=version)
                ws_sub.subscribe(topic + "/down", qos=1)
                tcp_sub.subscribe(topic + "/up", qos=1)
                ws_pub = self.client(kind=kind, transport="websockets", tls=tls,
                                     version=version)
                tcp_pub = self.client(version=version)
                big = bytes(range(256)) * 300  # larger than one WebSocket frame buffer
                ws_pub.publish(topic + "/up", big, qos=1)
                ws_pub.publish(topic + "/up", b"small", qos=2)
                tcp_pub.publish(topic + "/down", b"down", qos=1)
                self.assertEqual(tcp_sub.expect().payload, big)
                self.assertEqual(tcp_sub.expect().payload, b"small")
                self.assertEqual(ws_sub.expect().payload, b"down")

    def test_ws(self):
        self.ws_roundtrip("ws", None)

    def test_wss(self):
        self.ws_roundtrip("wss", client_tls_context())

    def test_ws_wrong_path_is_refused(self):
        # An HTTP upgrade to a path other than the configured one gets no WebSocket.
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        req = ("GET /not-mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n" % key)
        with socket.create_connection((HOST, self.broker.ports["ws"]), WAIT_S) as s:
            s.sendall(req.encode())
            try:
                status = s.recv(64).split(b"\r\n", 1)[0]
            except OSError:
                status = b""
        self.assertNotIn(b" 101 ", status + b" ")

    def test_ws_right_path_upgrades(self):
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        req = ("GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n" % key)
        with socket.create_connection((HOST, self.broker.ports["ws"]), WAIT_S) as s:
            s.sendall(req.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(1024)
                if not chunk:
                    break
                head += chunk
        self.assertTrue(head.startswith(b"HTTP/1.1 101"), head)
        headers = dict((k.strip().lower(), v.strip()) for k, _, v in
                       (line.partition(b":") for line in head.split(b"\r\n")[1:] if line))
        # RFC 6455 section 1.3: the example key's accept value.
        self.assertEqual(headers.get(b"sec-websocket-accept"), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        self.assertEqual(headers.get(b"sec-websocket-protocol"), b"mqtt")


if __name__ == "__main__":
    unittest.main()

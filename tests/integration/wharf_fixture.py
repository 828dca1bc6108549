"""Broker fixture for wharf's integration tests.

Starts a broker process on free loopback ports with a private data_dir, waits until
every listener accepts, and stops it with SIGTERM (SIGKILL after a timeout). The same
tests can run against Mosquitto (WHARF_TEST_BROKER=mosquitto) so that the tests
themselves can be validated without wharf; tests of wharf-only behaviour call
`require_wharf()`.

The CMQ queue API (listener kinds "queue-api" and "queue-api-tls") is wharf-only: the
test classes built on `QueueApiTestCase` skip under Mosquitto.

Environment:
  WHARF_BIN          path of the wharf binary. Default: <repo>/build/wharf.
  WHARF_TEST_BROKER  "wharf" (default) or "mosquitto".
  WHARF_LOG_LEVEL    wharf's log_level. Default: info.
"""

import atexit
import os
import queue
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

from free_port import free_port  # noqa: F401 (part of the fixture's interface)

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER_KIND = os.environ.get("WHARF_TEST_BROKER", "wharf")
WHARF_BIN = os.environ.get("WHARF_BIN", str(REPO_ROOT / "build" / "wharf"))

# How long a test waits for something that should happen. Generous: it only costs
# time when a test is about to fail anyway.
WAIT_S = 5.0
# How long a test waits before concluding that something did NOT happen, when no
# fence message can prove it (see Client.fence).
QUIET_S = 0.5

HOST = "127.0.0.1"


def is_mosquitto():
    return BROKER_KIND == "mosquitto"


def require_wharf(test, why):
    """Skips `test` under Mosquitto. `why` says what Mosquitto does differently."""
    if is_mosquitto():
        test.skipTest("wharf-only: " + why)


def wait_until(condition, timeout_s=WAIT_S, what=None):
    """Polls `condition` until it holds; fails the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("still not true after %.1f s: %s" % (timeout_s, what or condition))
        time.sleep(0.05)


def unique(prefix):
    """A client id / topic component no other test uses."""
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


# --------------------------------------------------------------------------- certs

_certs = None
_certs_lock = threading.Lock()


class Certs:
    """CA, server (ECDSA P-256, SAN localhost + 127.0.0.1), client (CN=device-42) and
    SAN client (CN=device-42, SAN DNS:gateway-7) certificates, generated with the openssl
    CLI once per test process."""

    def __init__(self, directory):
        d = Path(directory)
        self.dir = d
        self.ca_cert = str(d / "ca.pem")
        self.ca_key = str(d / "ca.key")
        self.server_cert = str(d / "server.pem")
        self.server_key = str(d / "server.key")
        self.client_cert = str(d / "client.pem")
        self.client_key = str(d / "client.key")
        self.san_client_cert = str(d / "san-client.pem")
        self.san_client_key = str(d / "san-client.key")
        # A certificate from an unrelated CA: must be rejected by the mTLS listener.
        self.rogue_cert = str(d / "rogue.pem")
        self.rogue_key = str(d / "rogue.key")
        # Cluster nodes: a certificate for both ends of a peer link, and one of the rogue CA.
        self.node_cert = str(d / "node.pem")
        self.node_key = str(d / "node.key")
        self.rogue_node_cert = str(d / "rogue-node.pem")
        self.rogue_node_key = str(d / "rogue-node.key")

        def run(*args):
            subprocess.run(["openssl", *args], check=True, cwd=d,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def ec_key(path):
            run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", path)

        ec_key(self.ca_key)
        run("req", "-x509", "-new", "-key", self.ca_key, "-sha256", "-days", "2",
            "-subj", "/CN=wharf test CA", "-out", self.ca_cert,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._leaf(run, ec_key, self.server_key, self.server_cert, "/CN=localhost",
                   "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "extendedKeyUsage=serverAuth\n", self.ca_cert, self.ca_key)
        self._leaf(run, ec_key, self.client_key, self.client_cert, "/CN=device-42",
                   "extendedKeyUsage=clientAuth\n", self.ca_cert, self.ca_key)
        self._leaf(run, ec_key, self.san_client_key, self.san_client_cert, "/CN=device-42",
                   "subjectAltName=DNS:gateway-7\nextendedKeyUsage=clientAuth\n", self.ca_cert, self.ca_key)
        rogue_ca_key, rogue_ca = str(d / "rogue-ca.key"), str(d / "rogue-ca.pem")
        ec_key(rogue_ca_key)
        run("req", "-x509", "-new", "-key", rogue_ca_key, "-sha256", "-days", "2",
            "-subj", "/CN=rogue CA", "-out", rogue_ca,
            "-addext", "basicConstraints=critical,CA:TRUE")
        self._leaf(run, ec_key, self.rogue_key, self.rogue_cert, "/CN=device-42",
                   "extendedKeyUsage=clientAuth\n", rogue_ca, rogue_ca_key)
        node_ext = "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n"
        self._leaf(run, ec_key, self.node_key, self.node_cert, "/CN=wharf-node", node_ext, self.ca_cert, self.ca_key)
        self._leaf(run, ec_key, self.rogue_node_key, self.rogue_node_cert, "/CN=wharf-node", node_ext, rogue_ca,
                   rogue_ca_key)

    @staticmethod
    def _leaf(run, ec_key, key, cert, subject, ext, ca_cert, ca_key):
        ec_key(key)
        csr = cert + ".csr"
        ext_file = cert + ".ext"
        Path(ext_file).write_text(ext)
        run("req", "-new", "-key", key, "-subj", subject, "-out", csr)
        run("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
            "-CAcreateserial", "-days", "2", "-sha256", "-extfile", ext_file, "-out", cert)


def certs():
    global _certs
    with _certs_lock:
        if _certs is None:
            d = tempfile.mkdtemp(prefix="wharf-certs-")
            atexit.register(shutil.rmtree, d, True)
            _certs = Certs(d)
        return _certs


# -------------------------------------------------------------------------- broker

# The queue API credentials every test broker accepts: (secret_id, secret_key). The key
# is random per test process; no test may depend on its value.
CREDENTIALS = (("wharf-test", "k-" + uuid.uuid4().hex),
               ("wharf-test-2", "k2-" + uuid.uuid4().hex))

class BrokerStartError(RuntimeError):
    pass


QUEUE_API_KINDS = ("queue-api", "queue-api-tls")
MQTT_KINDS = ("mqtt", "tls", "mtls", "ws", "wss")
TLS_KINDS = ("tls", "mtls", "wss", "queue-api-tls")


class Broker:
    """One broker process. `listeners` is a subset of
    {"mqtt", "tls", "mtls", "ws", "wss", "queue-api", "queue-api-tls", "admin", "admin-2"} (a second admin
    listener); `mqtt` is the
    config's optional `mqtt:` section (wharf key names; translated for Mosquitto where it
    has an equivalent).

    Queue API (wharf only): `queue_api` adds keys to the `queue_api:` section (the
    credentials are always `self.credentials`: a test pair plus a second one, see
    CREDENTIALS), `queue` to the `queue:` section (default tick_interval_ms 1000).
    `cmq()` makes a client for a queue-api listener. `bridge` (wharf only) is the YAML text
    of the `bridge:` section's body, indented by two spaces, and so is `auth` (wharf only)
    of the `auth:` section's. MQTT listeners let anonymous clients in unless `anonymous`
    is false; `listener_keys` maps a listener kind to more of its keys ("k: v, k2: v2");
    `extra_credentials` are more queue API credentials, (secret_id, secret_key[, scopes[,
    tenant]]);
    `top_level` is more YAML text at the top level of the config (wharf only)."""

    def __init__(self, listeners=("mqtt",), mqtt=None, name="broker", queue_api=None,
                 queue=None, bridge=None, auth=None, anonymous=True, listener_keys=None,
                 extra_credentials=(), top_level=""):
        self.listeners = tuple(listeners)
        self.bridge = bridge
        self.auth = auth
        self.top_level = top_level
        self.anonymous = anonymous
        self.listener_keys = dict(listener_keys or {})
        self.mqtt = dict(mqtt or {})
        self.queue_api = dict(queue_api or {})
        self.queue = dict(queue or {})
        self.credentials = list(CREDENTIALS) + list(extra_credentials)
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="wharf-it-")
        self.data_dir = os.path.join(self.dir, "data")
        os.makedirs(self.data_dir)
        self.ports = {kind: free_port() for kind in self.listeners}
        self.log_path = os.path.join(self.dir, "broker.log")
        self.proc = None
        self.starts = 0
        self.certs = certs() if any(k in TLS_KINDS for k in listeners) else None

    # Ports by listener kind.
    @property
    def port(self):
        return self.ports["mqtt"]

    def _write_wharf_config(self):
        lines = ["data_dir: %s" % self.data_dir, "listeners:"]
        c = self.certs
        for kind, port in self.ports.items():
            bind = '"%s:%d"' % (HOST, port)
            extra = [self.listener_keys[kind]] if kind in self.listener_keys else []
            if kind in MQTT_KINDS and "anonymous" not in self.listener_keys.get(kind, ""):
                extra.insert(0, "anonymous: %s" % ("true" if self.anonymous else "false"))
            if kind == "mqtt":
                keys = "type: mqtt"
            elif kind == "tls":
                keys = "type: mqtt, tls: {cert_file: %s, key_file: %s}" % (c.server_cert, c.server_key)
            elif kind == "mtls":
                keys = ("type: mqtt, tls: {cert_file: %s, key_file: %s, ca_file: %s, "
                        "require_client_cert: true}" % (c.server_cert, c.server_key, c.ca_cert))
            elif kind == "ws":
                keys = "type: mqtt-ws, path: /mqtt"
            elif kind == "wss":
                keys = ("type: mqtt-ws, path: /mqtt, tls: {cert_file: %s, key_file: %s}"
                        % (c.server_cert, c.server_key))
            elif kind == "queue-api":
                keys = "type: queue-api"
            elif kind == "queue-api-tls":
                keys = "type: queue-api, tls: {cert_file: %s, key_file: %s}" % (c.server_cert, c.server_key)
            elif kind in ("admin", "admin-2"):
                keys = "type: admin"  # its users come from listener_keys
            else:
                raise ValueError(kind)
            lines.append("  - {%s}" % ", ".join(["bind: %s" % bind, keys] + extra))
        lines += ["io_threads: 2", "log_level: %s" % os.environ.get("WHARF_LOG_LEVEL", "info")]
        if self.top_level:
            lines.append(self.top_level.rstrip("\n"))
        if self.mqtt:
            lines.append("mqtt:")
            lines += ["  %s: %s" % (k, v) for k, v in self.mqtt.items()]
        if self.has_queue_api():
            lines.append("queue_api:")
            lines.append("  credentials:")
            # A credential is (secret_id, secret_key), then optionally its scopes as YAML flow
            # text (None: none) and its tenant.
            for cred in self.credentials:
                extra = ""
                if len(cred) > 2 and cred[2] is not None:
                    extra += ", scopes: %s" % cred[2]
                if len(cred) > 3:
                    extra += ", tenant: %s" % cred[3]
                lines.append("    - {secret_id: %s, secret_key: %s%s}" % (cred[0], cred[1], extra))
            for k, v in self.queue_api.items():
                lines.append("  %s: %s" % (k, v))
            q = {"tick_interval_ms": 1000}
            q.update(self.queue)
            lines.append("queue:")
            lines += ["  %s: %s" % (k, v) for k, v in q.items()]
        if self.auth:
            lines.append("auth:")
            lines.append(self.auth.rstrip("\n"))
        if self.bridge:
            lines.append("bridge:")
            lines.append(self.bridge.rstrip("\n"))
        path = os.path.join(self.dir, "wharf.yaml")
        Path(path).write_text("\n".join(lines) + "\n")
        return [WHARF_BIN, "--config", path]

    # wharf `mqtt:` knob -> Mosquitto option with the same meaning.
    _MOSQUITTO_KNOBS = {
        "max_packet_size": "max_packet_size",
        "max_inflight": "max_inflight_messages",
        # Mosquitto has one window for both directions; it advertises it as Receive
        # Maximum.
        "receive_maximum": "max_inflight_messages",
        "max_keep_alive_s": "max_keepalive",
        "max_queued_messages": "max_queued_messages",
        "sys_interval_s": "sys_interval",
    }

    def _write_mosquitto_config(self):
        if self.has_queue_api():
            raise unittest.SkipTest("wharf-only: Mosquitto has no CMQ queue API")
        c = self.certs
        lines = ["persistence true", "persistence_location %s/" % self.data_dir,
                 "log_dest stderr", "log_type all", "per_listener_settings false",
                 "allow_anonymous true"]
        if os.geteuid() == 0:
            # Started as root, Mosquitto switches to user "mosquitto", which cannot
            # write our data_dir.
            lines.append("user root")
        for k, v in self.mqtt.items():
            if k in self._MOSQUITTO_KNOBS:
                lines.append("%s %s" % (self._MOSQUITTO_KNOBS[k], v))
        for kind, port in self.ports.items():
            lines.append("listener %d %s" % (port, HOST))
            if kind in ("ws", "wss"):
                lines.append("protocol websockets")
            if kind in ("tls", "mtls", "wss"):
                lines += ["certfile %s" % c.server_cert, "keyfile %s" % c.server_key]
            if kind == "mtls":
                lines += ["cafile %s" % c.ca_cert, "require_certificate true"]
            if "topic_alias_maximum" in self.mqtt:
                lines.append("max_topic_alias %s" % self.mqtt["topic_alias_maximum"])
        path = os.path.join(self.dir, "mosquitto.conf")
        Path(path).write_text("\n".join(lines) + "\n")
        return ["mosquitto", "-c", path]

    def start(self, timeout_s=10.0):
        if is_mosquitto():
            cmd = self._write_mosquitto_config()
        else:
            if not os.access(WHARF_BIN, os.X_OK):
                raise BrokerStartError("wharf binary not found: %s (set WHARF_BIN)" % WHARF_BIN)
            cmd = self._write_wharf_config()
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(("\n===== start #%d: %s\n" % (self.starts, " ".join(cmd))).encode())
        log.flush()
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout_s
        pending = set(self.ports.values())
        while pending:
            if self.proc.poll() is not None:
                raise BrokerStartError("%s exited with %s during startup:\n%s"
                                       % (self.name, self.proc.returncode, self.log()))
            for port in list(pending):
                try:
                    socket.create_connection((HOST, port), timeout=0.2).close()
                    pending.discard(port)
                except OSError:
                    pass
            if pending:
                if time.monotonic() > deadline:
                    self.stop(sig=signal.SIGKILL)
                    raise BrokerStartError("%s: ports %s not accepting after %.0f s:\n%s"
                                           % (self.name, sorted(pending), timeout_s, self.log()))
                time.sleep(0.02)
        return self

    def stop(self, sig=signal.SIGTERM, timeout_s=10.0):
        """Stops the broker; returns its exit status (None if it was not running)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def kill(self):
        """kill -9 (no shutdown at all); start() again reuses ports and data_dir."""
        return self.stop(sig=signal.SIGKILL)

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def thread_count(self):
        """Threads of the running broker process (/proc/<pid>/task)."""
        return len(os.listdir("/proc/%d/task" % self.proc.pid))

    # --- queue API
    def has_queue_api(self):
        return any(k in QUEUE_API_KINDS for k in self.listeners)

    def cmq(self, kind="queue-api", credential=0, **kwargs):
        """A CmqClient for the `kind` listener ("queue-api" or "queue-api-tls", which
        trusts the test CA), signing with credentials[credential]; kwargs go to
        CmqClient (method, signature_method, retry_idle, timeout_s, ...)."""
        import cmq_client
        secret_id, secret_key = self.credentials[credential][:2]
        tls = None
        if kind == "queue-api-tls":
            tls = cmq_client.tls_context(self.certs.ca_cert)
        elif kind != "queue-api":
            raise ValueError(kind)
        return cmq_client.CmqClient(HOST, self.ports[kind], secret_id, secret_key, tls=tls,
                                    **kwargs)

    def reload(self, expect, timeout_s=WAIT_S, **sections):
        """Rewrites the config file with `sections` (bridge=..., auth=..., mqtt=...,
        top_level=...: the same as the constructor's) replaced, sends SIGHUP, and waits until the log shows `expect` once
        more than before."""
        for name, text in sections.items():
            if name not in ("bridge", "auth", "top_level", "mqtt"):
                raise ValueError(name)
            setattr(self, name, text)
        self._write_wharf_config()
        before = self.log().count(expect)
        os.kill(self.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout_s
        while self.log().count(expect) == before:
            if time.monotonic() > deadline:
                raise AssertionError("no %r in the log after SIGHUP:\n%s" % (expect, self.log()[-3000:]))
            time.sleep(0.05)

    def restart(self, sig=signal.SIGTERM):
        """Stops and starts again with the same ports and data_dir."""
        self.stop(sig=sig)
        return self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return "<no log>"

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# -------------------------------------------------------------------------- client

V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5


def props(packet_type, **values):
    """Properties(PacketTypes.X) with attributes set, e.g.
    props(PacketTypes.PUBLISH, MessageExpiryInterval=2)."""
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


class Client:
    """A paho client running its network loop in a thread, with blocking helpers.

    Received messages go to a queue; `expect()` takes the next one. Every operation
    waits for its acknowledgement so that a test reads as a sequence of facts."""

    def __init__(self, broker, client_id=None, version=V5, clean=True, session_expiry_s=None,
                 keepalive_s=30, will=None, kind="mqtt", transport="tcp", tls=None,
                 connect_props=None, username=None, password=None):
        self.broker = broker
        self.client_id = unique("c") if client_id is None else client_id
        self.version = version
        self.clean = clean
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self.kind = kind
        self.connect_props = connect_props
        self.messages = queue.Queue()
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_rc = None
        self.disconnect_props = None
        self.connack_rc = None
        self.connack_flags = None
        self.connack_props = None
        self._acks = {}
        self._acks_lock = threading.Lock()
        kwargs = {"protocol": version, "transport": transport}
        if version != V5:
            kwargs["clean_session"] = clean
        self.c = mqtt.Client(client_id=self.client_id, **kwargs)
        if transport == "websockets":
            self.c.ws_set_options(path="/mqtt")
        if tls is not None:
            self.c.tls_set_context(tls)
        if will is not None:
            self.c.will_set(**will)
        if username is not None:
            self.c.username_pw_set(username, password)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_ack
        self.c.on_unsubscribe = self._on_ack
        self.c.on_publish = self._on_publish

    # --- callbacks (paho's network thread)
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        self.connack_flags = flags
        self.connack_rc = rc if isinstance(rc, int) else rc.value
        self.connack_props = properties
        self.connected.set()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        self.disconnect_rc = rc if isinstance(rc, int) else rc.value
        self.disconnect_props = properties
        self.disconnected.set()

    def _on_message(self, client, userdata, msg):
        self.messages.put(msg)

    def _ack_event(self, mid):
        with self._acks_lock:
            return self._acks.setdefault(mid, [threading.Event(), None])

    def _on_ack(self, client, userdata, mid, *rest):
        entry = self._ack_event(mid)
        entry[1] = rest
        entry[0].set()

    def _on_publish(self, client, userdata, mid):
        self._ack_event(mid)[0].set()

    # --- operations
    def connect(self, expect_rc=0):
        kwargs = {"keepalive": self.keepalive_s}
        if self.version == V5:
            kwargs["clean_start"] = self.clean
            p = self.connect_props or Properties(PacketTypes.CONNECT)
            if self.session_expiry_s is not None:
                p.SessionExpiryInterval = self.session_expiry_s
            kwargs["properties"] = p
        self.c.connect(HOST, self.broker.ports[self.kind], **kwargs)
        self.c.loop_start()
        if not self.connected.wait(WAIT_S):
            raise AssertionError("no CONNACK for %s" % self.client_id)
        if expect_rc is not None and self.connack_rc != expect_rc:
            raise AssertionError("CONNACK rc %s, expected %s" % (self.connack_rc, expect_rc))
        return self

    @property
    def session_present(self):
        return bool(self.connack_flags.get("session present"))

    def subscribe(self, topic, qos=0, no_local=False, retain_as_published=False,
                  retain_handling=0, sub_id=None):
        """Subscribes and waits for SUBACK; returns the granted QoS / reason code."""
        if self.version == V5:
            opts = SubscribeOptions(qos=qos, noLocal=no_local,
                                    retainAsPublished=retain_as_published,
                                    retainHandling=retain_handling)
            p = None
            if sub_id is not None:
                p = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id)
            rc, mid = self.c.subscribe(topic, options=opts, properties=p)
        else:
            rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        entry = self._ack_event(mid)
        if not entry[0].wait(WAIT_S):
            raise AssertionError("no SUBACK for %s" % topic)
        granted = entry[1][0][0]
        return granted if isinstance(granted, int) else granted.value

    def unsubscribe(self, topic):
        rc, mid = self.c.unsubscribe(topic)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        if not self._ack_event(mid)[0].wait(WAIT_S):
            raise AssertionError("no UNSUBACK for %s" % topic)

    def publish(self, topic, payload=b"", qos=0, retain=False, properties=None, wait=True):
        """Publishes; for QoS > 0 waits for PUBACK / PUBCOMP."""
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, info.rc
        if wait and qos > 0:
            if not self._ack_event(info.mid)[0].wait(WAIT_S):
                raise AssertionError("QoS %d publish to %s not acknowledged" % (qos, topic))
        return info

    def expect(self, timeout_s=WAIT_S, topic=None):
        """The next received message (optionally: the next one on `topic`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            try:
                msg = self.messages.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError("%s: no message%s within %.1f s"
                                     % (self.client_id, " on " + topic if topic else "",
                                        timeout_s)) from None
            if topic is None or msg.topic == topic:
                return msg

    def expect_none(self, timeout_s=QUIET_S):
        try:
            msg = self.messages.get(timeout=timeout_s)
        except queue.Empty:
            return
        raise AssertionError("%s: unexpected message on %s: %r"
                             % (self.client_id, msg.topic, msg.payload[:100]))

    def drain(self):
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def fence(self, publisher=None, timeout_s=WAIT_S, settle_s=0.1):
        """Proves that everything published before now by `publisher` (default: self)
        has been delivered to this client: subscribes to a fresh topic, has the
        publisher send a QoS 1 marker there, and returns the messages received
        before the marker, plus any arriving within `settle_s` after it (MQTT orders
        messages per topic only, so a message on another topic could trail the
        marker slightly)."""
        topic = unique("fence")
        self.subscribe(topic, qos=1)
        (publisher or self).publish(topic, b"fence", qos=1)
        before = []
        deadline = time.monotonic() + timeout_s
        while True:
            msg = self.expect(max(deadline - time.monotonic(), 0.001))
            if msg.topic == topic:
                self.unsubscribe(topic)
                time.sleep(settle_s)
                return before + self.drain()
            before.append(msg)

    def disconnect(self, reason_code=None, properties=None):
        """Normal DISCONNECT (v5: with `reason_code`)."""
        rc = None
        if reason_code is not None:
            rc = ReasonCodes(PacketTypes.DISCONNECT, identifier=reason_code)
        self.c.disconnect(reasoncode=rc, properties=properties)
        self.c.loop_stop()

    def drop(self):
        """Closes the TCP connection without DISCONNECT (network failure)."""
        self.c._thread_terminate = True  # keeps paho's loop from reconnecting
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.c.loop_stop()

    def close(self):
        """Best-effort cleanup."""
        try:
            if self.c.is_connected():
                self.c.disconnect()
        except Exception:
            pass
        self.c._thread_terminate = True
        self.c.loop_stop()


def client_tls_context(verify=True, cert=None, key=None, ca=None):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca or certs().ca_cert)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


# ----------------------------------------------------------------------- test base

class BrokerTestCase(unittest.TestCase):
    """One broker for the whole class (class attributes `listeners`, `mqtt_config`, and
    for the queue API `queue_api_config`, `queue_config`; a class with a queue-api
    listener skips under Mosquitto). Tests that restart a broker or need other settings
    make their own with `self.new_broker(...)` (restart: `broker.restart(sig)`, or
    `broker.kill()` then `broker.start()`: same ports, same data_dir). When a test
    fails, the logs of the brokers it used are printed."""

    listeners = ("mqtt",)
    mqtt_config = None
    queue_api_config = None
    queue_config = None
    bridge_config = None
    broker_options = {}  # Broker's other keyword arguments (auth, anonymous, listener_keys)
    broker = None

    @classmethod
    def setUpClass(cls):
        if is_mosquitto() and any(k in QUEUE_API_KINDS for k in cls.listeners):
            raise unittest.SkipTest("wharf-only: Mosquitto has no CMQ queue API")
        cls.broker = Broker(cls.listeners, cls.mqtt_config, name=cls.__name__,
                            queue_api=cls.queue_api_config, queue=cls.queue_config,
                            bridge=cls.bridge_config, **cls.broker_options)
        try:
            cls.broker.start()
        except Exception:
            cls.broker.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.broker is not None:
            cls.broker.cleanup()

    def setUp(self):
        self._own_brokers = []

    def new_broker(self, listeners=("mqtt",), mqtt=None, queue_api=None, queue=None, bridge=None,
                   **more):
        """`more`: Broker's other keyword arguments (auth, anonymous, listener_keys)."""
        b = Broker(listeners, mqtt, name="%s broker" % self._testMethodName,
                   queue_api=queue_api, queue=queue, bridge=bridge, **more)
        self._own_brokers.append(b)
        b.start()
        return b

    def client(self, broker=None, connect=True, **kwargs):
        """A connected Client (closed at test end)."""
        c = Client(broker or self.broker, **kwargs)
        self.addCleanup(c.close)
        if connect:
            c.connect()
        return c

    def raw(self, broker=None, kind="mqtt"):
        """A raw-socket MQTT connection (closed at test end)."""
        import mqtt_raw
        r = mqtt_raw.RawClient(HOST, (broker or self.broker).ports[kind])
        self.addCleanup(r.close)
        return r

    def run(self, result=None):
        if result is None:
            return super().run(result)
        bad_before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > bad_before:
            for b in self._own_brokers_all():
                b.stop()  # flushes buffered logs (Mosquitto)
            brokers = ([self.broker] if self.broker else []) + self._own_brokers_all()
            for b in brokers:
                sys.stderr.write("\n----- %s log (%s) -----\n%s----- end of log -----\n"
                                 % (b.name, b.log_path, b.log()[-20000:]))
        for b in self._own_brokers_all():
            b.cleanup()
        return out

    def _own_brokers_all(self):
        return list(getattr(self, "_own_brokers", []))


# ------------------------------------------------------------- queue API test base

class QueueApiTestCase(BrokerTestCase):
    """A BrokerTestCase for the CMQ queue API (wharf only: skips under Mosquitto).

    `api_kind` is the listener the helpers talk to ("queue-api" or "queue-api-tls"), so
    one mixin of tests runs over HTTP and HTTPS by two subclasses. `self.api` is a
    keep-alive client made per test."""

    listeners = ("queue-api",)
    api_kind = "queue-api"

    def setUp(self):
        super().setUp()
        self.api = self.cmq()

    def cmq(self, broker=None, kind=None, **kwargs):
        """A CmqClient (closed at test end) for `kind` (default: the class's api_kind)."""
        c = (broker or self.broker).cmq(kind or self.api_kind, **kwargs)
        self.addCleanup(c.close)
        return c

    # --- assertions
    def ok(self, action, params=None, client=None, **kw):
        """The answer to a request that must succeed (code 0, a requestId)."""
        answer = (client or self.api).call(action, params, **kw)
        self.assertEqual(answer.get("code"), 0, "%s %r -> %r" % (action, params, answer))
        self.assertTrue(answer.get("requestId"), answer)
        return answer

    def fails(self, code, action, params=None, client=None, **kw):
        """The answer to a request that must fail with `code` (and say something)."""
        answer = (client or self.api).call(action, params, **kw)
        self.assertEqual(answer.get("code"), code, "%s %r -> %r" % (action, params, answer))
        self.assertIsInstance(answer.get("message"), str, answer)
        self.assertTrue(answer.get("message"), "error without a message: %r" % answer)
        return answer

    # --- queue helpers
    def new_queue(self, prefix="q", client=None, **attributes):
        """Creates a queue with a fresh name and `attributes`; returns the name."""
        name = unique(prefix)
        self.ok("CreateQueue", dict(queueName=name, **attributes), client=client)
        return name

    def send(self, queue, body, client=None, **params):
        """SendMessage that must succeed; returns the msgId."""
        a = self.ok("SendMessage", dict(queueName=queue, msgBody=body, **params), client=client)
        self.assertTrue(a.get("msgId"), a)
        return a["msgId"]

    def receive(self, queue, wait=0, client=None, **params):
        """ReceiveMessage with pollingWaitSeconds=wait: the answer (code 0 or 7000)."""
        a = (client or self.api).call("ReceiveMessage", dict(queueName=queue,
                                                             pollingWaitSeconds=wait, **params))
        self.assertIn(a.get("code"), (0, 7000), a)
        return a

    def receive_one(self, queue, wait=WAIT_S, client=None):
        """A message that must arrive within `wait` seconds (long poll)."""
        a = self.receive(queue, wait=int(wait), client=client)
        self.assertEqual(a["code"], 0, "no message in %s within %s s: %r" % (queue, wait, a))
        return a

    def assert_empty(self, queue, client=None):
        """Nothing receivable now (code 7000 without waiting)."""
        a = self.receive(queue, wait=0, client=client)
        self.assertEqual(a["code"], 7000, "%s should have nothing receivable: %r" % (queue, a))

    def delete(self, queue, receipt_handle, client=None):
        self.ok("DeleteMessage", dict(queueName=queue, receiptHandle=receipt_handle),
                client=client)

    def attributes(self, queue, client=None):
        return self.ok("GetQueueAttributes", dict(queueName=queue), client=client)

    def drain(self, queue, client=None, until_body=None, wait=WAIT_S):
        """Receives and deletes messages until one with body `until_body` arrived
        (long polls up to `wait` s each), or, without until_body, until a receive with
        no wait finds nothing. Returns the received answers in order."""
        got = []
        deadline = time.monotonic() + wait
        while True:
            if until_body is None:
                a = self.receive(queue, wait=0, client=client)
            else:
                left = max(1, int(deadline - time.monotonic() + 0.999))
                a = self.receive(queue, wait=min(left, 30), client=client)
            if a["code"] == 7000:
                if until_body is None:
                    return got
                if time.monotonic() > deadline:
                    self.fail("%s: %r did not arrive within %s s (got %r)"
                              % (queue, until_body, wait, [m["msgBody"] for m in got]))
                continue
            got.append(a)
            self.delete(queue, a["receiptHandle"], client=client)
            if until_body is not None and a["msgBody"] == until_body:
                return got


# ------------------------------------------------------- mosquitto_pub / mosquitto_sub

class MosquittoSub:
    """A mosquitto_sub process. `start()` returns once the broker has acknowledged the
    subscription (seen in -d output), so a publish after it cannot be missed."""

    FORMAT = "MSG|%t|%q|%r|%p"

    def __init__(self, port, topic, args=(), count=1, timeout_s=WAIT_S):
        # stdbuf: line-buffered stdout, so the SUBACK line arrives when it happens.
        self.cmd = ["stdbuf", "-oL", "mosquitto_sub", "-d", "-h", "localhost",
                    "-p", str(port), "-t", topic, "-C", str(count),
                    "-W", str(int(timeout_s) + 1), "-F", self.FORMAT, *args]
        self.proc = None
        self.lines = []

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, errors="replace")
        deadline = time.monotonic() + WAIT_S
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if "received SUBACK" in line:
                return self
            if time.monotonic() > deadline:
                break
        self.proc.kill()
        raise AssertionError("mosquitto_sub did not subscribe: %s\n%s"
                             % (" ".join(self.cmd), "\n".join(self.lines)))

    def wait(self, timeout_s=WAIT_S):
        """Waits for exit; returns (returncode, [(topic, qos, retain, payload)])."""
        # Not communicate(timeout=...): it reads the raw pipe and would lose what start()'s
        # line iteration already buffered (a message that arrived with the SUBACK).
        # mosquitto_sub exits by itself (-C / -W); its output is small.
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.lines += self.proc.stdout.read().splitlines()
        msgs = []
        for line in self.lines:
            if line.startswith("MSG|"):
                _, topic, qos, retain, payload = line.split("|", 4)
                msgs.append((topic, int(qos), int(retain), payload))
        return self.proc.returncode, msgs

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def mosquitto_pub(port, topic, message, args=(), timeout_s=WAIT_S):
    """Runs mosquitto_pub; returns the CompletedProcess."""
    cmd = ["mosquitto_pub", "-h", "localhost", "-p", str(port), "-t", topic, "-m", message,
           *args]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout_s)

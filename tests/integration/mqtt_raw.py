"""A tiny MQTT 5.0 / 3.1.1 packet encoder/decoder and blocking socket client, written
from the OASIS specifications for tests that need byte-level control (topic aliases,
flow control, malformed packets). Deliberately independent of wharf's codec."""

import socket
import struct
import time
from types import SimpleNamespace

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14

# Property id -> (name, wire type). MQTT 5.0 section 2.2.2.2.
_PROPS = {
    0x01: ("payload_format_indicator", "byte"), 0x02: ("message_expiry_interval", "u32"),
    0x03: ("content_type", "str"), 0x08: ("response_topic", "str"),
    0x09: ("correlation_data", "bin"), 0x0B: ("subscription_identifier", "varint"),
    0x11: ("session_expiry_interval", "u32"), 0x12: ("assigned_client_identifier", "str"),
    0x13: ("server_keep_alive", "u16"), 0x15: ("authentication_method", "str"),
    0x16: ("authentication_data", "bin"), 0x17: ("request_problem_information", "byte"),
    0x18: ("will_delay_interval", "u32"), 0x19: ("request_response_information", "byte"),
    0x1A: ("response_information", "str"), 0x1C: ("server_reference", "str"),
    0x1F: ("reason_string", "str"), 0x21: ("receive_maximum", "u16"),
    0x22: ("topic_alias_maximum", "u16"), 0x23: ("topic_alias", "u16"),
    0x24: ("maximum_qos", "byte"), 0x25: ("retain_available", "byte"),
    0x26: ("user_property", "pair"), 0x27: ("maximum_packet_size", "u32"),
    0x28: ("wildcard_subscription_available", "byte"),
    0x29: ("subscription_identifier_available", "byte"),
    0x2A: ("shared_subscription_available", "byte"),
}
_PROP_IDS = {name: (pid, kind) for pid, (name, kind) in _PROPS.items()}
_REPEATABLE = ("user_property", "subscription_identifier")


def varint(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(buf, pos):
    value, mult = 0, 1
    for i in range(4):
        b = buf[pos + i]
        value += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return value, pos + i + 1
    raise ValueError("malformed variable byte integer")


def utf8(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def encode_props(props):
    """props: dict name -> value; repeatable ones take a list."""
    out = bytearray()
    for name, value in (props or {}).items():
        pid, kind = _PROP_IDS[name]
        for v in (value if name in _REPEATABLE else [value]):
            out += varint(pid)
            if kind == "byte":
                out += bytes([v])
            elif kind == "u16":
                out += struct.pack("!H", v)
            elif kind == "u32":
                out += struct.pack("!I", v)
            elif kind == "varint":
                out += varint(v)
            elif kind in ("str", "bin"):
                out += utf8(v)
            else:
                out += utf8(v[0]) + utf8(v[1])
    return varint(len(out)) + bytes(out)


def decode_props(buf, pos):
    length, pos = read_varint(buf, pos)
    end, props = pos + length, {}
    while pos < end:
        pid, pos = read_varint(buf, pos)
        name, kind = _PROPS[pid]
        if kind == "byte":
            v, pos = buf[pos], pos + 1
        elif kind == "u16":
            v, pos = struct.unpack_from("!H", buf, pos)[0], pos + 2
        elif kind == "u32":
            v, pos = struct.unpack_from("!I", buf, pos)[0], pos + 4
        elif kind == "varint":
            v, pos = read_varint(buf, pos)
        else:
            items = []
            for _ in range(2 if kind == "pair" else 1):
                n = struct.unpack_from("!H", buf, pos)[0]
                raw = bytes(buf[pos + 2:pos + 2 + n])
                items.append(raw if kind == "bin" else raw.decode())
                pos += 2 + n
            v = tuple(items) if kind == "pair" else items[0]
        if name in _REPEATABLE:
            props.setdefault(name, []).append(v)
        else:
            props[name] = v
    return props, end


def packet(type_, flags, body):
    return bytes([(type_ << 4) | flags]) + varint(len(body)) + body


def connect(client_id, version=5, clean=True, keepalive_s=60, props=None, will=None,
            username=None, password=None):
    """will: dict(topic, payload, qos=0, retain=False, props=None)."""
    flags = 0x02 if clean else 0
    payload = utf8(client_id)
    if will:
        flags |= 0x04 | (will.get("qos", 0) << 3) | (0x20 if will.get("retain") else 0)
        if version == 5:
            payload += encode_props(will.get("props"))
        payload += utf8(will["topic"]) + utf8(will["payload"])
    if username is not None:
        flags |= 0x80
        payload += utf8(username)
    if password is not None:
        flags |= 0x40
        payload += utf8(password)
    body = utf8("MQTT") + bytes([version, flags]) + struct.pack("!H", keepalive_s)
    if version == 5:
        body += encode_props(props)
    return packet(CONNECT, 0, body + payload)


def publish(topic, payload=b"", qos=0, retain=False, dup=False, pid=None, props=None,
            version=5):
    flags = (qos << 1) | (1 if retain else 0) | (8 if dup else 0)
    body = utf8(topic)
    if qos:
        body += struct.pack("!H", pid)
    if version == 5:
        body += encode_props(props)
    return packet(PUBLISH, flags, body + payload)


def ack(type_, pid, reason=None, version=5):
    """PUBACK/PUBREC/PUBREL/PUBCOMP (PUBREL gets its mandatory flags 0b0010)."""
    body = struct.pack("!H", pid)
    if version == 5 and reason is not None:
        body += bytes([reason])
    return packet(type_, 2 if type_ == PUBREL else 0, body)


def subscribe(pid, topics, props=None, version=5):
    """topics: list of (filter, options byte) — options = qos | nl<<2 | rap<<3 | rh<<4."""
    body = struct.pack("!H", pid)
    if version == 5:
        body += encode_props(props)
    for t, opts in topics:
        body += utf8(t) + bytes([opts])
    return packet(SUBSCRIBE, 2, body)


def disconnect(reason=0, props=None, version=5):
    if version != 5:
        return packet(DISCONNECT, 0, b"")
    return packet(DISCONNECT, 0, bytes([reason]) + encode_props(props))


def pingreq():
    return packet(PINGREQ, 0, b"")


def decode(type_, flags, body, version=5):
    """Decodes a server-to-client packet into a SimpleNamespace."""
    p = SimpleNamespace(type=type_, flags=flags, raw=body, props={}, reason=0)
    if type_ == CONNACK:
        p.session_present, p.reason = bool(body[0] & 1), body[1]
        if version == 5 and len(body) > 2:
            p.props, _ = decode_props(body, 2)
    elif type_ == PUBLISH:
        p.qos, p.retain, p.dup = (flags >> 1) & 3, bool(flags & 1), bool(flags & 8)
        n = struct.unpack_from("!H", body, 0)[0]
        p.topic, pos, p.pid = body[2:2 + n].decode(), 2 + n, None
        if p.qos:
            p.pid, pos = struct.unpack_from("!H", body, pos)[0], pos + 2
        if version == 5:
            p.props, pos = decode_props(body, pos)
        p.payload = bytes(body[pos:])
    elif type_ in (PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK):
        p.pid, pos = struct.unpack_from("!H", body, 0)[0], 2
        if type_ in (SUBACK, UNSUBACK):
            if version == 5:
                p.props, pos = decode_props(body, pos)
            p.codes = list(body[pos:])
        elif len(body) > 2:
            p.reason = body[2]
            if version == 5 and len(body) > 3:
                p.props, _ = decode_props(body, 3)
    elif type_ == DISCONNECT and body:
        p.reason = body[0]
        if len(body) > 1:
            p.props, _ = decode_props(body, 1)
    return p


class RawClient:
    """Blocking socket; `recv()` returns one decoded packet, or None when the server
    closed the connection."""

    def __init__(self, host, port, version=5):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.version = version
        self.buf = bytearray()
        self.closed = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no data from server") from None
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            self.closed = True
        self.buf += chunk
        return bool(chunk)

    def recv(self, timeout_s=5.0):
        """Next packet; None if the connection was closed; TimeoutError if none came."""
        deadline = time.monotonic() + timeout_s
        while True:
            if len(self.buf) >= 2:
                try:
                    length, pos = read_varint(self.buf, 1)
                except IndexError:
                    length = None
                if length is not None and len(self.buf) >= pos + length:
                    first, body = self.buf[0], bytes(self.buf[pos:pos + length])
                    del self.buf[:pos + length]
                    return decode(first >> 4, first & 0xF, body, self.version)
            if self.closed or not self._fill(deadline):
                return None

    def expect(self, type_, timeout_s=5.0):
        p = self.recv(timeout_s)
        if p is None:
            raise AssertionError("connection closed while waiting for packet type %d" % type_)
        if p.type != type_:
            raise AssertionError("expected packet type %d, got %d (%r)" % (type_, p.type, p))
        return p

    def connect(self, client_id, expect_reason=0, **kwargs):
        self.send(connect(client_id, version=self.version, **kwargs))
        ack_ = self.expect(CONNACK)
        if expect_reason is not None and ack_.reason != expect_reason:
            raise AssertionError("CONNACK reason 0x%02x, expected 0x%02x"
                                 % (ack_.reason, expect_reason))
        return ack_

    def wait_closed(self, timeout_s=5.0):
        """Reads until the server closes; returns the packets received before that.
        Raises AssertionError if the connection stays open."""
        got = []
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                p = self.recv(max(deadline - time.monotonic(), 0.001))
            except TimeoutError:
                raise AssertionError("connection still open after %.1f s; got %r"
                                     % (timeout_s, got)) from None
            if p is None:
                return got
            got.append(p)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

"""The HTTP authentication hook (auth.http, wharf only) against a small HTTP(S) service this
test runs: it allows, denies, makes superusers, gives ACL rules, passes a client on
("ignore"), answers slowly, malformed, with an error status, or not at all (down). wharf must
fail closed (Server unavailable) unless on_failure is allow, remember answers for their
TTL, bound the requests it has in flight, verify an https service against its CA, ask about
publishes and subscriptions when told to, and try the sources in auth.order."""

import json
import ssl
import sys
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mqtt_raw as raw
from admin_client import ops_entry, scrape
from free_port import free_port
from test_auth import password_hash, users_section
from wharf_fixture import BrokerTestCase, certs, is_mosquitto, unique

SUCCESS, BAD_CREDENTIALS, NOT_AUTHORIZED, SERVER_UNAVAILABLE, SERVER_BUSY = 0x00, 0x86, 0x87, 0x88, 0x89
V3_SERVER_UNAVAILABLE, V3_BAD_CREDENTIALS = 3, 4

# What the service answers, by username: (status, body) or a callable of the request.
ANSWERS = {
    "alice": lambda r: (200, {"result": "allow" if r["password"] == "alice-pw" else "deny"}),
    "root": lambda r: (200, {"result": "allow", "superuser": True}),
    "meter": lambda r: (200, {"result": "allow", "acl": [
        {"permission": "allow", "action": "publish", "topic": "meters/%c/#"},
        {"permission": "deny", "topic": "#"}]}),
    "nocontent": lambda r: (204, None),
    "forbidden": lambda r: (403, None),
    "passer": lambda r: (200, {"result": "ignore"}),
    "malformed": lambda r: (200, "not json"),
    "bad-result": lambda r: (200, {"result": "maybe"}),
    "bad-acl": lambda r: (200, {"result": "allow", "acl": [{"permission": "allow", "topic": "a/#/b"}]}),
    "broken": lambda r: (500, {"error": "database down"}),
}
SLOW_S = 1.5  # beyond the brokers' timeout_ms (500)


class QuietServer(ThreadingHTTPServer):
    """A threaded HTTP server that does not print a client's vanishing (a broker stopped with
    a kept-alive connection open)."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class AuthService:
    """An HTTP service on loopback that answers as ANSWERS say and records what it is asked;
    HTTPS with `tls` = (certificate, key)."""

    def __init__(self, tls=None):
        self.requests = []
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with service.lock:
                    service.requests.append((self.path, self.headers.get("Content-Type"), body))
                username = body.get("username")
                if body["action"] != "connect":
                    # Topics: anything under forbidden/ is denied; slow/ is answered too late.
                    topic = body["topic"]
                    if topic.startswith("slow/"):
                        time.sleep(SLOW_S)
                    status, answer = (200, {"result": "deny" if topic.startswith("forbidden/") else "allow"})
                elif username == "slow":
                    time.sleep(SLOW_S)
                    status, answer = 200, {"result": "allow"}
                elif username in ANSWERS:
                    status, answer = ANSWERS[username](body)
                elif username is None:
                    status, answer = 200, {"result": "allow" if body["clientid"].startswith("anon-ok") else "deny"}
                else:
                    status, answer = 200, {"result": "deny"}
                data = b"" if answer is None else (answer if isinstance(answer, str) else json.dumps(answer)).encode()
                self.send_response(status)
                if status != 204:
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                try:
                    self.end_headers()
                    if status != 204:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # wharf gave up waiting (the slow answers)

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = "%s://127.0.0.1:%d/mqtt/auth" % ("https" if tls else "http", self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def asked(self, username=None, client_id=None, action=None):
        with self.lock:
            return [b for _, _, b in self.requests
                    if (username is None or b.get("username") == username)
                    and (client_id is None or b["clientid"] == client_id)
                    and (action is None or b["action"] == action)]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def http_section(url, extra=""):
    return "  http:\n    url: %s\n    timeout_ms: 500\n%s" % (url, extra)


class HttpHookTest(BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            raise unittest.SkipTest("wharf-only: auth.http is wharf's")
        cls.service = AuthService()
        cls.listeners = ("mqtt", "admin")
        cls.broker_options = {
            "anonymous": False,
            "auth": users_section(ops_entry()) + http_section(cls.service.url) + (
                "  acl:\n"
                '    - {permission: allow, topic: "public/#"}\n'
                "  acl_no_match: deny\n"),
            "listener_keys": {"admin": "users: [ops]"}}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.service.close()

    def login(self, username, password="pw", expect=SUCCESS, version=5, broker=None, client_id=None):
        c = self.raw(broker)
        c.version = version
        c.connect(client_id or unique("hook"), expect_reason=expect, username=username, password=password)
        return c

    def metric(self, name, broker=None, **labels):
        return scrape(broker or self.broker)[0].get((name, frozenset(labels.items())), 0.0)

    def test_the_service_is_asked_with_the_clients_credentials_and_address(self):
        cid = unique("asked")
        self.login("alice", "alice-pw", client_id=cid)
        path, content_type, body = [r for r in self.service.requests if r[2]["clientid"] == cid][0]
        self.assertEqual(path, "/mqtt/auth")
        self.assertEqual(content_type, "application/json")
        self.assertEqual(body["username"], "alice")
        self.assertEqual(body["password"], "alice-pw")
        self.assertEqual(body["peer"], "127.0.0.1")
        self.assertGreater(body["peer_port"], 0)
        self.assertEqual(body["protocol_version"], 5)
        self.assertIsNone(body["cert_common_name"])

    def test_allow_deny_and_their_statuses(self):
        self.login("alice", "alice-pw")
        self.login("alice", "wrong", expect=BAD_CREDENTIALS)
        self.login("alice", "wrong-too", expect=V3_BAD_CREDENTIALS, version=4)
        self.login("nocontent")  # 204: allow
        self.login("forbidden", expect=BAD_CREDENTIALS)  # 403: deny
        self.login("nobody-knows", expect=BAD_CREDENTIALS)
        log = self.broker.log()
        self.assertIn("the HTTP hook denies", log)
        self.assertIn("the HTTP hook answers 403", log)

    def test_a_client_without_credentials_is_asked_about_too(self):
        c = self.raw()
        c.connect(unique("anon-ok"))
        c = self.raw()
        c.connect(unique("anon-no"), expect_reason=NOT_AUTHORIZED)

    def test_answers_the_service_cannot_give_fail_closed(self):
        for username in ("malformed", "bad-result", "bad-acl", "broken", "slow"):
            with self.subTest(username):
                self.login(username, expect=SERVER_UNAVAILABLE)
        self.login("broken", expect=V3_SERVER_UNAVAILABLE, version=4)
        log = self.broker.log()
        for why in ("the answer is not JSON", "result 'maybe' is none of allow, deny, ignore",
                    "acl: rule 0: topic must be a topic filter", "HTTP 500", "timed out after 500 ms"):
            self.assertIn("HTTP hook failed: " + why, log)
        self.assertGreaterEqual(self.metric("wharf_mqtt_auth_hook_failures_total"), 6)
        self.assertGreaterEqual(self.metric("wharf_mqtt_connects_refused_total", reason="auth_unavailable"), 6)

    def test_a_superuser_may_do_everything_and_the_others_what_the_acl_says(self):
        root = self.login("root")
        root.send(raw.subscribe(1, [("private/#", 1), ("$SYS/#", 0)]))
        self.assertEqual(root.expect(raw.SUBACK).codes, [1, 0])
        alice = self.login("alice", "alice-pw")
        alice.send(raw.subscribe(1, [("private/#", 1), ("public/#", 1)]))
        self.assertEqual(alice.expect(raw.SUBACK).codes, [NOT_AUTHORIZED, 1])

    def test_the_services_acl_rules_are_the_clients_own(self):
        cid = unique("meter")
        m = self.login("meter", client_id=cid)
        m.send(raw.publish("meters/%s/kwh" % cid, b"1", qos=1, pid=1))
        self.assertEqual(m.expect(raw.PUBACK).reason, SUCCESS)
        # Its own deny-all comes before the config's allow of public/#.
        m.send(raw.publish("public/news", b"1", qos=1, pid=2))
        self.assertEqual(m.expect(raw.PUBACK).reason, NOT_AUTHORIZED)
        m.send(raw.publish("meters/another/kwh", b"1", qos=1, pid=3))
        self.assertEqual(m.expect(raw.PUBACK).reason, NOT_AUTHORIZED)

    def test_answers_are_remembered_for_their_ttl(self):
        cid = unique("cached")
        before = self.metric("wharf_mqtt_auth_hook_cache_hits_total")
        for _ in range(3):
            self.login("alice", "alice-pw", client_id=cid).close()
        self.assertEqual(len(self.service.asked(client_id=cid)), 1)
        self.assertEqual(self.metric("wharf_mqtt_auth_hook_cache_hits_total") - before, 2)
        # Another password is another question.
        self.login("alice", "wrong", client_id=cid, expect=BAD_CREDENTIALS)
        self.assertEqual(len(self.service.asked(client_id=cid)), 2)
        # A broker that remembers nothing asks every time.
        b = self.new_broker(anonymous=False, auth=http_section(self.service.url, "    cache_ttl_ms: 0\n"))
        cid = unique("uncached")
        for _ in range(3):
            self.login("alice", "alice-pw", client_id=cid, broker=b).close()
        self.assertEqual(len(self.service.asked(client_id=cid)), 3)

    def test_a_service_that_is_down_refuses_everyone_unless_told_to_fail_open(self):
        down = "http://127.0.0.1:%d/auth" % free_port()
        closed = self.new_broker(anonymous=False, auth=http_section(down))
        self.login("alice", "alice-pw", expect=SERVER_UNAVAILABLE, broker=closed)
        self.assertIn("Connection refused", closed.log())
        opened = self.new_broker(anonymous=False, auth=http_section(down, "    on_failure: allow\n") + (
            "  acl:\n"
            '    - {permission: allow, action: publish, topic: "public/#"}\n'
            "  acl_no_match: deny\n"))
        c = self.login("alice", "alice-pw", broker=opened)
        # Admitted with the config's ACL, nothing more.
        c.send(raw.publish("public/x", b"1", qos=1, pid=1))
        self.assertEqual(c.expect(raw.PUBACK).reason, SUCCESS)
        c.send(raw.publish("private/x", b"1", qos=1, pid=2))
        self.assertEqual(c.expect(raw.PUBACK).reason, NOT_AUTHORIZED)

    def test_connects_beyond_the_queue_are_refused_busy(self):
        b = self.new_broker(anonymous=False, auth=http_section(
            self.service.url, "    max_in_flight: 1\n    max_queued: 1\n"))
        # One slow request in flight, one waiting: the third is refused at once.
        first, second = self.raw(b), self.raw(b)
        first.send(raw.connect(unique("slow1"), username="slow", password="pw"))
        second.send(raw.connect(unique("slow2"), username="slow", password="pw"))
        time.sleep(0.2)
        self.login("alice", "alice-pw", expect=SERVER_BUSY, broker=b)
        self.assertEqual(first.expect(raw.CONNACK).reason, SERVER_UNAVAILABLE)  # timed out
        self.assertEqual(second.expect(raw.CONNACK).reason, SERVER_UNAVAILABLE)
        self.login("alice", "alice-pw", broker=b)  # the queue is free again

    def test_the_sources_are_tried_in_the_configured_order(self):
        users = users_section(password_hash("alice"))
        # The file first: its user never reaches the service.
        b = self.new_broker(anonymous=False, auth=users + http_section(self.service.url) + "  order: [file, http]\n")
        cid = unique("file-first")
        self.login("alice", "alice-pw", client_id=cid, broker=b)
        self.assertEqual(self.service.asked(client_id=cid), [])
        # The service first: it decides for alice; "ignore" hands a client on to the file.
        b = self.new_broker(anonymous=False, auth=users + http_section(self.service.url) + "  order: [http, file]\n")
        cid = unique("http-first")
        self.login("alice", "alice-pw", client_id=cid, broker=b)
        self.assertEqual(len(self.service.asked(client_id=cid)), 1)
        self.login("passer", "pw", expect=BAD_CREDENTIALS, broker=b)  # ignored, and not a user of the file

    def test_publishes_and_subscriptions_asked_about_when_configured(self):
        b = self.new_broker(anonymous=False, auth=http_section(
            self.service.url, "    authorize_publish: true\n    authorize_subscribe: true\n"))
        cid = unique("authz")
        c = self.login("alice", "alice-pw", broker=b, client_id=cid)
        # Pipelined: each waits for its answer, and the acks keep their order.
        for pid, topic in ((1, "ok/a"), (2, "forbidden/a"), (3, "ok/b"), (4, "ok/a")):
            c.send(raw.publish(topic, b"x", qos=1, pid=pid))
        reasons = [(a.pid, a.reason) for a in (c.expect(raw.PUBACK) for _ in range(4))]
        self.assertEqual(reasons, [(1, SUCCESS), (2, NOT_AUTHORIZED), (3, SUCCESS), (4, SUCCESS)])
        c.send(raw.subscribe(5, [("ok/#", 1), ("forbidden/#", 1)]))
        self.assertEqual(c.expect(raw.SUBACK).codes, [1, NOT_AUTHORIZED])
        asked = [(a["action"], a.get("topic")) for a in self.service.asked(client_id=cid)]
        # One SUBSCRIBE's filters are asked about at once: in either order.
        self.assertEqual(asked[:4] + sorted(asked[4:]),
                         [("connect", None), ("publish", "ok/a"), ("publish", "forbidden/a"), ("publish", "ok/b"),
                          ("subscribe", "forbidden/#"), ("subscribe", "ok/#")])  # ok/a again: remembered
        asked = self.service.asked(client_id=cid)
        self.assertEqual(asked[1]["username"], "alice")
        self.assertIsNone(asked[1]["password"])
        # A topic the service does not answer about in time is refused (fail closed); the
        # client stays connected and goes on.
        c.send(raw.publish("slow/a", b"x", qos=1, pid=6))
        self.assertEqual(c.expect(raw.PUBACK, timeout_s=10).reason, NOT_AUTHORIZED)
        c.send(raw.publish("fine/c", b"x", qos=1, pid=7))
        self.assertEqual(c.expect(raw.PUBACK).reason, SUCCESS)

    def test_an_https_service_must_prove_itself_with_the_configured_ca(self):
        c = certs()
        secure = AuthService(tls=(c.server_cert, c.server_key))
        try:
            trusted = self.new_broker(anonymous=False, auth=http_section(secure.url, "    ca_file: %s\n" % c.ca_cert))
            cid = unique("https")
            self.login("alice", "alice-pw", broker=trusted, client_id=cid)
            self.assertEqual(len(secure.asked(client_id=cid)), 1)
            # A CA that did not sign the service's certificate: nobody is let in.
            doubting = self.new_broker(anonymous=False, auth=http_section(secure.url, "    ca_file: %s\n" % c.rogue_cert))
            self.login("alice", "alice-pw", broker=doubting, expect=SERVER_UNAVAILABLE)
            self.assertIn("TLS handshake with 127.0.0.1", doubting.log())
        finally:
            secure.close()

    def test_a_reload_points_the_hook_elsewhere(self):
        other = AuthService()
        try:
            b = self.new_broker(anonymous=False, auth=http_section(self.service.url))
            b.reload("users, ACL", auth=http_section(other.url))
            cid = unique("moved")
            self.login("alice", "alice-pw", client_id=cid, broker=b)
            self.assertEqual(len(other.asked(client_id=cid)), 1)
            self.assertEqual(self.service.asked(client_id=cid), [])
        finally:
            other.close()


if __name__ == "__main__":
    unittest.main()

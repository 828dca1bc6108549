"""Authentication and authorization over real sockets (wharf only): users with PBKDF2
password hashes made by `wharf passwd`, anonymous access per listener, the client
certificate's CN as the username, ordered ACL rules with %c / %u, their reason codes in
MQTT 5 and 3.1.1, a will the ACL denies, packets pipelined behind a CONNECT whose password
is being checked, and SIGHUP reloading users and rules under a live connection."""

import subprocess
import unittest

import mqtt_raw as raw
from wharf_fixture import (HOST, WHARF_BIN, BrokerTestCase, certs, client_tls_context,
                           is_mosquitto, require_wharf, unique)

NOT_AUTHORIZED, BAD_CREDENTIALS, UNSPECIFIED = 0x87, 0x86, 0x80
V3_BAD_CREDENTIALS, V3_NOT_AUTHORIZED = 4, 5
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw", "dave": "dave-pw", "erin": "erin-pw"}


def password_hash(user, iterations=1000):
    """The auth.users entry `wharf passwd` prints for `user`, as one YAML flow map."""
    out = subprocess.run([WHARF_BIN, "passwd", "--iterations", str(iterations), user],
                         input=PASSWORDS[user] + "\n", capture_output=True, text=True,
                         check=True).stdout
    assert out.startswith("- {username: "), out
    return out[2:].strip()


def users_section(*entries):
    return "  users:\n" + "".join("    - %s\n" % e for e in entries)


ACL = """  acl:
    - {permission: deny, action: all, topic: "secret/#"}
    - {permission: allow, action: publish, topic: "devices/%c/#"}
    - {permission: allow, action: all, topic: "users/%u/#"}
    - {permission: allow, action: subscribe, topic: "devices/+/#"}
    - {permission: allow, action: all, topic: "#", username: alice}
    - {permission: allow, action: subscribe, topic: "$SYS/#", username: alice}
  acl_no_match: deny
"""


class AuthTest(BrokerTestCase):
    listeners = ("mqtt", "ws", "mtls")
    mqtt_config = {"sys_interval_s": 1}

    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            raise unittest.SkipTest("wharf-only: users, ACL and wharf passwd are wharf's")
        # dave's hash takes wharf passwd's default iterations (100,000): the check runs on
        # the broker's password thread while the client pipelines packets behind CONNECT.
        cls.broker_options = {
            "anonymous": False,
            "listener_keys": {"ws": "anonymous: true", "mtls": "username_from_cert: cn"},
            "auth": users_section(password_hash("alice"), password_hash("bob"),
                                  password_hash("dave", 100000), "{username: device-42}") + ACL,
        }
        super().setUpClass()

    def login(self, user, version=5, client_id=None, expect=0, **kwargs):
        c = self.raw()
        c.version = version
        c.connect(client_id or unique(user), expect_reason=expect, username=user,
                  password=PASSWORDS.get(user), **kwargs)
        return c

    def subscriber(self, user, topic):
        c = self.client(username=user, password=PASSWORDS[user])
        c.subscribe(topic, qos=1)
        return c

    # --- authentication
    def test_a_good_password_logs_in_with_mqtt_5_and_3_1_1(self):
        self.login("alice")
        self.login("alice", version=4)
        # The second login of the same password is answered from the broker's cache.
        self.login("bob")
        self.login("bob")

    def test_a_wrong_or_missing_password_or_unknown_user_is_refused(self):
        for user, password, version, code in (("alice", "wrong", 5, BAD_CREDENTIALS),
                                              ("alice", "wrong", 4, V3_BAD_CREDENTIALS),
                                              ("mallory", "x", 5, BAD_CREDENTIALS),
                                              ("alice", None, 5, BAD_CREDENTIALS),
                                              ("device-42", "x", 5, BAD_CREDENTIALS)):
            with self.subTest(user=user, password=password, version=version):
                c = self.raw()
                c.version = version
                c.connect(unique("c"), expect_reason=code, username=user, password=password)
                self.assertEqual(c.wait_closed(), [])

    def test_anonymous_clients_only_where_the_listener_allows_them(self):
        for version, code in ((5, NOT_AUTHORIZED), (4, V3_NOT_AUTHORIZED)):
            c = self.raw()
            c.version = version
            c.connect(unique("anon"), expect_reason=code)
            self.assertEqual(c.wait_closed(), [])
        # The WebSocket listener says anonymous: true. The ACL still applies: nothing is
        # allowed to a client without a username or a devices/<client id>/ topic.
        ws = self.client(kind="ws", transport="websockets")
        self.assertEqual(ws.subscribe("users/#", qos=1), NOT_AUTHORIZED)

    def test_the_client_certificate_cn_is_the_username(self):
        watcher = self.subscriber("alice", "users/#")
        tls = client_tls_context(cert=certs().client_cert, key=certs().client_key)
        device = self.client(kind="mtls", tls=tls)  # no username, no password: CN=device-42
        device.publish("users/device-42/state", b"on", qos=1)
        device.publish("users/device-43/state", b"not mine", qos=1)
        msg = watcher.expect()
        self.assertEqual((msg.topic, msg.payload), ("users/device-42/state", b"on"))
        watcher.expect_none()

    def test_the_client_certificate_san_is_the_username_where_the_listener_says_so(self):
        b = self.new_broker(listeners=("mqtt", "mtls"), anonymous=False,
                            listener_keys={"mtls": "username_from_cert: san"},
                            auth=users_section(password_hash("alice")) + ACL)
        watcher = self.client(b, username="alice", password=PASSWORDS["alice"])
        watcher.subscribe("users/#", qos=1)
        # CN=device-42 (no such user here), first SAN DNS:gateway-7: the SAN is the username.
        tls = client_tls_context(cert=certs().san_client_cert, key=certs().san_client_key)
        gateway = self.client(b, kind="mtls", tls=tls)
        gateway.publish("users/device-42/state", b"not mine", qos=1)
        gateway.publish("users/gateway-7/state", b"on", qos=1)
        msg = watcher.expect()
        self.assertEqual((msg.topic, msg.payload), ("users/gateway-7/state", b"on"))
        watcher.expect_none()
        # A certificate without a SAN gives no name here: an anonymous client, refused.
        tls = client_tls_context(cert=certs().client_cert, key=certs().client_key)
        self.client(b, kind="mtls", tls=tls, connect=False).connect(expect_rc=NOT_AUTHORIZED)

    # --- authorization
    def test_a_denied_publish_gets_0x87_in_mqtt_5(self):
        c = self.login("alice")
        c.send(raw.publish("secret/plans", b"x", qos=1, pid=1))
        self.assertEqual(c.expect(raw.PUBACK).reason, NOT_AUTHORIZED)
        c.send(raw.publish("secret/plans", b"x", qos=2, pid=2))
        self.assertEqual(c.expect(raw.PUBREC).reason, NOT_AUTHORIZED)
        c.send(raw.publish("secret/plans", b"x", qos=0))
        c.send(raw.publish("anything/else", b"x", qos=1, pid=3))  # alice's own rule
        self.assertEqual(c.expect(raw.PUBACK).reason, 0)

    def test_a_denied_publish_is_acknowledged_and_dropped_in_mqtt_3_1_1(self):
        watcher = self.subscriber("alice", "elsewhere/#")
        c = self.login("bob", version=4)
        c.send(raw.publish("elsewhere/x", b"1", qos=1, pid=1, version=4))
        ack = c.expect(raw.PUBACK)
        self.assertEqual((ack.pid, ack.reason), (1, 0))
        c.send(raw.publish("elsewhere/x", b"2", qos=2, pid=2, version=4))
        self.assertEqual(c.expect(raw.PUBREC).pid, 2)
        c.send(raw.ack(raw.PUBREL, 2, version=4))
        self.assertEqual(c.expect(raw.PUBCOMP).pid, 2)
        watcher.expect_none()

    def test_client_id_and_username_placeholders(self):
        watcher = self.subscriber("alice", "devices/#")
        c = self.login("bob", client_id="meter-7")
        c.send(raw.publish("devices/meter-7/kwh", b"12", qos=1, pid=1))
        self.assertEqual(c.expect(raw.PUBACK).reason, 0)
        c.send(raw.publish("devices/meter-8/kwh", b"13", qos=1, pid=2))
        self.assertEqual(c.expect(raw.PUBACK).reason, NOT_AUTHORIZED)
        c.send(raw.publish("users/bob/inbox", b"self", qos=1, pid=3))
        self.assertEqual(c.expect(raw.PUBACK).reason, 0)
        c.send(raw.publish("users/alice/inbox", b"other", qos=1, pid=4))
        self.assertEqual(c.expect(raw.PUBACK).reason, NOT_AUTHORIZED)
        msg = watcher.expect()
        self.assertEqual((msg.topic, msg.payload), ("devices/meter-7/kwh", b"12"))
        watcher.expect_none()

    def test_denied_subscriptions_get_a_failure_code_others_are_granted(self):
        c = self.login("bob")
        c.send(raw.subscribe(1, [("secret/#", 1), ("devices/+/temp", 1), ("#", 1),
                                 ("users/bob/#", 0), ("$share/g/users/bob/x", 1)]))
        self.assertEqual(c.expect(raw.SUBACK).codes, [NOT_AUTHORIZED, 1, NOT_AUTHORIZED, 0, 1])
        # alice may subscribe to everything: "#" is granted (secret/... withheld from it at
        # delivery, test_acl_delivery), "secret/+" lies inside the deny rule.
        a = self.login("alice")
        a.send(raw.subscribe(2, [("#", 1), ("public/#", 1), ("secret/+", 1)]))
        self.assertEqual(a.expect(raw.SUBACK).codes, [1, 1, NOT_AUTHORIZED])
        v3 = self.login("bob", version=4)
        v3.send(raw.subscribe(3, [("secret/#", 1), ("users/bob/#", 1)], version=4))
        self.assertEqual(v3.expect(raw.SUBACK).codes, [UNSPECIFIED, 1])

    def test_a_will_the_acl_denies_refuses_the_connect(self):
        self.login("bob", expect=NOT_AUTHORIZED, will={"topic": "secret/will", "payload": b"x"})
        self.login("bob", version=4, expect=V3_NOT_AUTHORIZED,
                   will={"topic": "secret/will", "payload": b"x"})
        self.login("bob", will={"topic": "users/bob/will", "payload": b"x"})

    def test_denials_and_failures_are_counted_in_sys(self):
        watcher = self.subscriber("alice", "$SYS/broker/#")
        c = self.raw()
        c.connect(unique("c"), expect_reason=BAD_CREDENTIALS, username="alice", password="wrong")
        p = self.login("bob")
        p.send(raw.publish("secret/x", b"", qos=1, pid=1))
        p.expect(raw.PUBACK)
        p.send(raw.subscribe(2, [("secret/#", 0)]))
        p.expect(raw.SUBACK)
        seen = {}
        wanted = ("$SYS/broker/clients/auth failures", "$SYS/broker/acl/denied publishes",
                  "$SYS/broker/acl/denied subscriptions")
        while not all(int(seen.get(t, b"0")) > 0 for t in wanted):
            msg = watcher.expect(timeout_s=5)
            seen[msg.topic] = msg.payload

    def test_packets_sent_behind_connect_wait_for_the_password_check(self):
        watcher = self.subscriber("alice", "users/dave/#")
        c = self.raw()
        c.send(raw.connect(unique("dave"), username="dave", password=PASSWORDS["dave"])
               + raw.publish("users/dave/a", b"first", qos=1, pid=1)
               + raw.subscribe(2, [("users/dave/#", 1)])
               + raw.publish("users/dave/b", b"second", qos=1, pid=3))
        self.assertEqual(c.expect(raw.CONNACK).reason, 0)
        self.assertEqual(c.expect(raw.PUBACK).pid, 1)
        self.assertEqual(c.expect(raw.SUBACK).codes, [1])
        got = [c.recv(), c.recv()]  # the PUBACK of 3 and its own message, in either order
        self.assertEqual(sorted(p.type for p in got), [raw.PUBLISH, raw.PUBACK])
        self.assertEqual([watcher.expect().payload, watcher.expect().payload], [b"first", b"second"])


class AuthReloadTest(BrokerTestCase):
    def setUp(self):
        require_wharf(self, "SIGHUP reload of users and rules is wharf's")
        super().setUp()

    def test_sighup_replaces_users_and_rules_and_keeps_live_connections(self):
        b = self.new_broker(anonymous=False,
                            auth=users_section(password_hash("alice")) + ACL)
        live = self.client(b, username="alice", password=PASSWORDS["alice"])
        live.subscribe("users/#", qos=1)
        c = raw.RawClient(HOST, b.port)
        self.addCleanup(c.close)
        c.connect(unique("erin"), expect_reason=BAD_CREDENTIALS, username="erin",
                  password=PASSWORDS["erin"])

        b.reload("users, ACL, queue API credentials and rate limit, log levels, MQTT limits, listeners, "
                 "bridge bindings and TLS certificates",
                 auth=users_section(password_hash("alice"), password_hash("erin")) + ACL
                 + "  subscribe_denied_reason: 0x80\n")
        erin = raw.RawClient(HOST, b.port)
        self.addCleanup(erin.close)
        erin.connect(unique("erin"), username="erin", password=PASSWORDS["erin"])
        erin.send(raw.subscribe(1, [("secret/#", 0)]))
        self.assertEqual(erin.expect(raw.SUBACK).codes, [UNSPECIFIED])
        erin.send(raw.publish("users/erin/hello", b"after reload", qos=1, pid=2))
        self.assertEqual(erin.expect(raw.PUBACK).reason, 0)
        self.assertEqual(live.expect().payload, b"after reload")  # the same connection

        # An invalid file changes nothing: erin still logs in, errors are logged.
        b.reload("config reload refused",
                 auth=users_section('{username: erin, password_hash: "plaintext"}') + ACL)
        self.assertRegex(b.log(), r"config reload refused: .*wharf\.yaml:\d+:\d+: auth\.users: "
                                  r"password_hash of 'erin'")
        again = raw.RawClient(HOST, b.port)
        self.addCleanup(again.close)
        again.connect(unique("erin"), username="erin", password=PASSWORDS["erin"])
        live.publish("users/alice/still", b"here", qos=1)
        self.assertEqual(live.expect().payload, b"here")


if __name__ == "__main__":
    unittest.main()

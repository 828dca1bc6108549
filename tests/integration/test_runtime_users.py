"""MQTT users and roles changed at runtime through the admin API (wharf only): kept by the
queue core (durable before the answer, so kill -9 loses none; replicated where there is a
cluster), effective at once for new connections, and for the new publishes and
subscriptions of clients already connected; a deleted user's clients are disconnected.
Users of the config file keep working beside them."""

import json
import re
import subprocess
import tempfile
import unittest
from pathlib import Path

import mqtt_raw as raw
from admin_client import OPS_PASSWORD, admin_get, ops_entry
from test_auth import password_hash, users_section
from wharf_fixture import WHARF_BIN, BrokerTestCase, is_mosquitto, unique

SUCCESS, BAD_CREDENTIALS, NOT_AUTHORIZED = 0x00, 0x86, 0x87


def hash_of(password, user="someone"):
    out = subprocess.run([WHARF_BIN, "passwd", "--iterations", "1000", user], input=password + "\n",
                         capture_output=True, text=True, check=True).stdout
    return re.search(r'password_hash: "([^"]+)"', out).group(1)


class RuntimeUsersTest(BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            raise unittest.SkipTest("wharf-only: runtime users are wharf's admin API")
        cls.listeners = ("mqtt", "admin")
        cls.broker_options = {
            "anonymous": False,
            "auth": users_section(ops_entry(), password_hash("alice")) + (
                "  acl:\n"
                '    - {permission: allow, topic: "public/#"}\n'
                "  acl_no_match: deny\n"),
            "listener_keys": {"admin": "users: [ops]"}}
        super().setUpClass()

    def api(self, method, path, body=None, broker=None, expect=200):
        status, _, text, _ = admin_get(broker or self.broker, path, method=method,
                                       body=None if body is None else json.dumps(body))
        self.assertEqual(status, expect, text)
        return json.loads(text) if text else None

    def login(self, username, password, expect=SUCCESS, broker=None, client_id=None):
        c = self.raw(broker)
        c.connect(client_id or unique("rt"), expect_reason=expect, username=username, password=password)
        return c

    def publish_reason(self, c, topic, pid):
        c.send(raw.publish(topic, b"x", qos=1, pid=pid))
        return c.expect(raw.PUBACK).reason

    def test_a_user_added_at_runtime_logs_in_with_its_roles_rules(self):
        user = unique("meter")
        self.api("PUT", "/api/v1/roles/meters",
                 {"acl": [{"permission": "allow", "action": "publish", "topic": "meters/%u/#"}]})
        self.api("PUT", "/api/v1/users/" + user, {"passwordHash": hash_of("m-pw"), "roles": ["meters"],
                                                  "acl": [{"permission": "deny", "topic": "meters/%u/secret"}]})
        c = self.login(user, "m-pw")
        self.assertEqual(self.publish_reason(c, "meters/%s/kwh" % user, 1), SUCCESS)
        self.assertEqual(self.publish_reason(c, "meters/%s/secret" % user, 2), NOT_AUTHORIZED)  # its own rule first
        self.assertEqual(self.publish_reason(c, "meters/other/kwh", 3), NOT_AUTHORIZED)
        self.assertEqual(self.publish_reason(c, "public/news", 4), SUCCESS)  # the config's ACL after
        self.login(user, "wrong", expect=BAD_CREDENTIALS)
        # The file's users work beside them.
        self.login("alice", "alice-pw")
        shown = self.api("GET", "/api/v1/users/" + user)
        self.assertEqual(shown["roles"], ["meters"])
        self.assertTrue(shown["hasPassword"])
        self.assertEqual(shown["acl"], [{"permission": "deny", "action": "all", "topic": "meters/%u/secret"}])
        listed = self.api("GET", "/api/v1/users")
        self.assertIn(user, [u["username"] for u in listed["users"]])

    def test_changes_reach_connected_clients_at_once(self):
        user, role = unique("sensor"), unique("role")
        self.api("PUT", "/api/v1/roles/" + role, {"acl": [{"permission": "allow", "topic": "a/#"}]})
        self.api("PUT", "/api/v1/users/" + user, {"passwordHash": hash_of("s-pw"), "roles": [role]})
        c = self.login(user, "s-pw")
        self.assertEqual(self.publish_reason(c, "a/1", 1), SUCCESS)
        self.assertEqual(self.publish_reason(c, "b/1", 2), NOT_AUTHORIZED)
        # The role now allows b/# instead: the same connection's next publishes follow.
        self.api("PUT", "/api/v1/roles/" + role, {"acl": [{"permission": "allow", "topic": "b/#"}]})
        self.assertEqual(self.publish_reason(c, "b/1", 3), SUCCESS)
        self.assertEqual(self.publish_reason(c, "a/1", 4), NOT_AUTHORIZED)
        c.send(raw.subscribe(5, [("b/#", 1), ("a/#", 1)]))
        self.assertEqual(c.expect(raw.SUBACK).codes, [1, NOT_AUTHORIZED])
        # A wildcard subscription granted before a deny rule arrives stops receiving its topic.
        self.api("PUT", "/api/v1/users/" + user, {"passwordHash": hash_of("s-pw"), "roles": [role],
                                                  "acl": [{"permission": "deny", "topic": "b/hidden"}]})
        self.assertEqual(self.publish_reason(c, "b/hidden", 6), NOT_AUTHORIZED)
        publisher = unique("publisher")
        self.api("PUT", "/api/v1/users/" + publisher,
                 {"passwordHash": hash_of("p-pw"), "acl": [{"permission": "allow", "topic": "#"}]})
        other = self.login(publisher, "p-pw")
        for pid, topic in ((1, "b/hidden"), (2, "b/shown")):
            self.assertEqual(self.publish_reason(other, topic, pid), SUCCESS)
        self.assertEqual(c.expect(raw.PUBLISH).topic, "b/shown")
        # A new password: new connections need it; the connected client stays.
        self.api("PUT", "/api/v1/users/" + user, {"passwordHash": hash_of("new-pw"), "roles": [role]})
        self.login(user, "s-pw", expect=BAD_CREDENTIALS)
        self.login(user, "new-pw")
        # Deleted: its clients are disconnected, and no one logs in as it.
        self.api("DELETE", "/api/v1/users/" + user)
        disconnect = c.expect(raw.DISCONNECT)
        self.assertEqual(disconnect.reason, NOT_AUTHORIZED)
        self.login(user, "new-pw", expect=BAD_CREDENTIALS)

    def test_bad_requests_get_a_reason_and_change_nothing(self):
        user = unique("bad")
        cases = [
            ({"passwordHash": "plain text"}, 400, "passwordHash: "),
            ({"roles": ["no-such-role"]}, 404, "no role 'no-such-role'"),
            ({"acl": [{"permission": "allow", "topic": "a/#/b"}]}, 400, "acl: rule 0: topic must be a topic filter"),
            ({"colour": "blue"}, 400, "unknown key 'colour'"),
        ]
        for body, status, why in cases:
            with self.subTest(body=body):
                self.assertIn(why, self.api("PUT", "/api/v1/users/" + user, body, expect=status)["error"])
        status, _, text, _ = admin_get(self.broker, "/api/v1/users/" + user, method="PUT", body="{not json")
        self.assertEqual(status, 400, text)
        self.api("GET", "/api/v1/users/" + user, expect=404)
        self.api("DELETE", "/api/v1/users/" + user, expect=404)
        role = unique("held")
        self.api("PUT", "/api/v1/roles/" + role, {"acl": []})
        self.api("PUT", "/api/v1/users/" + user, {"roles": [role]})
        self.assertIn("is held by user", self.api("DELETE", "/api/v1/roles/" + role, expect=400)["error"])
        # Without a password hash the user cannot log in with a password.
        self.login(user, "anything", expect=BAD_CREDENTIALS)

    def test_users_survive_kill_9_and_bounds_are_kept(self):
        b = self.new_broker(listeners=("mqtt", "admin"), anonymous=False,
                            auth=users_section(ops_entry()) + "  runtime: {max_users: 2}\n",
                            listener_keys={"admin": "users: [ops]"})
        for name in ("first", "second"):
            self.api("PUT", "/api/v1/users/" + name, {"passwordHash": hash_of(name + "-pw")}, broker=b)
        refused = self.api("PUT", "/api/v1/users/third", {"passwordHash": hash_of("x")}, broker=b, expect=409)
        self.assertIn("auth.runtime.max_users", refused["error"])
        # Acknowledged means durable: kill -9 right after the answers.
        b.kill()
        b.start()
        self.login("first", "first-pw", broker=b)
        self.login("second", "second-pw", broker=b)
        self.assertEqual(self.api("GET", "/api/v1/users", broker=b)["total"], 2)

    def test_wharf_ctl_sets_shows_and_deletes_users_and_roles(self):
        user, role = unique("ctl-user"), unique("ctl-role")
        rules = Path(tempfile.mkdtemp(prefix="wharf-rt-")) / "rules.json"
        rules.write_text(json.dumps([{"permission": "allow", "action": "publish", "topic": "ctl/%u/#"}]))

        def ctl(*args, stdin=None):
            r = subprocess.run([WHARF_BIN, "ctl", "--url", "http://127.0.0.1:%d" % self.broker.ports["admin"],
                                "--user", "ops", "--password", OPS_PASSWORD, *args],
                               input=stdin, capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            return r.stdout

        ctl("roles", "set", role, "--acl-file", str(rules))
        # The password comes on stdin and is hashed by ctl: the broker never sees it in the clear.
        ctl("users", "set", user, "--password-file", "-", "--roles", role, stdin="ctl-pw\n")
        self.assertIn(role, ctl("users", "show", user))
        self.assertIn(user, ctl("users"))
        self.assertTrue(self.api("GET", "/api/v1/users/" + user)["hasPassword"])
        c = self.login(user, "ctl-pw")
        self.assertEqual(self.publish_reason(c, "ctl/%s/x" % user, 1), SUCCESS)
        self.assertIn("ctl/%u/#", ctl("roles", "show", role))
        ctl("users", "delete", user)
        ctl("roles", "delete", role)
        self.api("GET", "/api/v1/roles/" + role, expect=404)

    def test_runtime_users_left_out_of_the_order_cannot_log_in(self):
        b = self.new_broker(listeners=("mqtt", "admin"), anonymous=False,
                            auth=users_section(ops_entry()) + "  order: [file]\n",
                            listener_keys={"admin": "users: [ops]"})
        self.api("PUT", "/api/v1/users/outsider", {"passwordHash": hash_of("o-pw")}, broker=b)
        self.login("outsider", "o-pw", expect=BAD_CREDENTIALS, broker=b)


if __name__ == "__main__":
    unittest.main()

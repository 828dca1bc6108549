"""Deny rules next to wildcard subscriptions (wharf only): a subscription that could receive a
denied topic is granted, and the denied topics are withheld from it at delivery (live, from
the retained store, to shared groups, to an offline session's queue after a restart, and
after a reload changes the rules); a subscription entirely inside a deny rule is refused."""

import json
import unittest

import mqtt_raw as raw
from test_auth import PASSWORDS, password_hash, users_section
from admin_client import admin_get, ops_entry, scrape
from wharf_fixture import V311, BrokerTestCase, is_mosquitto, unique

NOT_AUTHORIZED = 0x87

ACL = """  acl:
    - {permission: deny, action: subscribe, topic: "test/nosubscribe"}
    - {permission: deny, action: subscribe, topic: "audit/#", username: bob}
"""


class AclDeliveryTest(BrokerTestCase):
    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            raise unittest.SkipTest("wharf-only: the ACL is wharf's config")
        super().setUpClass()

    @staticmethod
    def auth(acl=ACL):
        return users_section(password_hash("alice"), password_hash("bob"), ops_entry()) + acl

    def broker_with_rules(self):
        """A broker of its own (tests subscribe to "#"), with an admin listener for metrics."""
        return self.new_broker(listeners=("mqtt", "admin"), anonymous=False, auth=self.auth(),
                               listener_keys={"admin": "users: [ops]"})

    def login(self, broker, user, **kwargs):
        return self.client(broker, username=user, password=PASSWORDS[user], **kwargs)

    def received(self, subscriber, publisher):
        """Topics `subscriber` received of what `publisher` sent so far."""
        return [m.topic for m in subscriber.fence(publisher)]

    def test_a_wildcard_subscriber_receives_all_but_the_denied_topic(self):
        b = self.broker_with_rules()
        everything = self.login(b, "alice")
        self.assertEqual(everything.subscribe("#", qos=1), 1)
        two_levels = self.login(b, "alice", version=V311)
        self.assertEqual(two_levels.subscribe("+/+", qos=1), 1)
        pub = self.login(b, "alice")
        for qos in (0, 1):
            pub.publish("test/nosubscribe", b"hidden", qos=qos)
            pub.publish("test/other", b"seen", qos=qos)
        self.assertEqual(self.received(everything, pub), ["test/other", "test/other"])
        self.assertEqual(self.received(two_levels, pub), ["test/other", "test/other"])
        # Inside the deny rule: refused, in 5.0 and 3.1.1.
        r = self.raw(b)
        r.connect(unique("alice"), username="alice", password=PASSWORDS["alice"])
        r.send(raw.subscribe(1, [("test/nosubscribe", 1), ("test/+", 1), ("$share/g/test/nosubscribe", 1)]))
        self.assertEqual(r.expect(raw.SUBACK).codes, [NOT_AUTHORIZED, 1, NOT_AUTHORIZED])
        # Each withheld copy is counted: two publishes, two subscriptions.
        samples, _ = scrape(b)
        self.assertEqual(samples[("wharf_mqtt_acl_withheld_total", frozenset())], 4)

    def test_retained_messages_and_shared_groups_are_filtered_too(self):
        b = self.broker_with_rules()
        pub = self.login(b, "alice")
        pub.publish("test/nosubscribe", b"hidden", qos=1, retain=True)
        pub.publish("test/kept", b"kept", qos=1, retain=True)
        sub = self.login(b, "alice")
        sub.subscribe("test/#", qos=1)
        self.assertEqual([(m.topic, m.retain) for m in sub.fence(pub)], [("test/kept", True)])
        shared = self.login(b, "alice")
        shared.subscribe("$share/workers/test/#", qos=1)
        pub.publish("test/nosubscribe", b"hidden", qos=1)
        pub.publish("test/live", b"live", qos=1)
        self.assertEqual(shared.expect().topic, "test/live")
        shared.expect_none()

    def test_a_user_rule_holds_for_an_offline_session_across_a_restart(self):
        b = self.broker_with_rules()
        cid = unique("bob")
        bob = self.login(b, "bob", client_id=cid, clean=False, session_expiry_s=300)
        self.assertEqual(bob.subscribe("#", qos=1), 1)
        bob.disconnect()
        b.restart()
        # The session's username came back from the store (the admin API shows it): bob's rule
        # withholds audit/...
        status, _, body, _ = admin_get(b, "/api/v1/sessions/" + cid)
        self.assertEqual((status, json.loads(body)["username"]), (200, "bob"), body)
        pub = self.login(b, "alice")
        pub.publish("audit/login", b"hidden", qos=1)
        pub.publish("news/today", b"seen", qos=1)
        bob = self.login(b, "bob", client_id=cid, clean=False, session_expiry_s=300)
        self.assertTrue(bob.session_present)
        self.assertEqual(bob.expect().topic, "news/today")
        bob.expect_none()

    def test_a_session_resumed_by_another_user_follows_that_users_rules(self):
        b = self.broker_with_rules()
        cid = unique("shared-device")
        first = self.login(b, "alice", client_id=cid, clean=False, session_expiry_s=300)
        first.subscribe("#", qos=1)
        pub = self.login(b, "alice")
        pub.publish("audit/one", b"to alice", qos=1)
        self.assertEqual(first.expect().topic, "audit/one")
        first.disconnect()
        bob = self.login(b, "bob", client_id=cid, clean=False, session_expiry_s=300)
        self.assertTrue(bob.session_present)
        pub.publish("audit/two", b"not to bob", qos=1)
        pub.publish("news/two", b"to bob", qos=1)
        self.assertEqual(self.received(bob, pub), ["news/two"])

    def test_a_reload_applies_new_rules_to_existing_subscriptions(self):
        b = self.broker_with_rules()
        sub = self.login(b, "alice")
        sub.subscribe("#", qos=1)
        pub = self.login(b, "alice")
        pub.publish("weather/now", b"1", qos=1)
        pub.publish("prices/now", b"1", qos=1)
        self.assertEqual(self.received(sub, pub), ["weather/now", "prices/now"])
        b.reload("users, ACL", auth=self.auth(ACL + '    - {permission: deny, action: subscribe, topic: "prices/#"}\n'))
        pub.publish("weather/now", b"2", qos=1)
        pub.publish("prices/now", b"2", qos=1)
        self.assertEqual(self.received(sub, pub), ["weather/now"])


if __name__ == "__main__":
    unittest.main()

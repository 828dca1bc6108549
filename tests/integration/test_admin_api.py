"""The admin API (wharf only, docs/ADMIN.md): JSON routes on the admin listener behind the
listener's HTTP Basic credentials. Sessions and clients are listed and inspected after
real MQTT traffic, a client is disconnected (v5: DISCONNECT 0x98), a session deleted (and
stays deleted across kill -9), queues listed with depths, purged and their dead letters
redriven, a message's trace read, and the config reloaded through the API."""

import base64
import http.client
import json
import os
import socket
import unittest
import urllib.parse

import mqtt_raw as raw
from admin_client import OPS_PASSWORD, ops_entry
from wharf_fixture import (CREDENTIALS, HOST, WAIT_S, QueueApiTestCase, free_port, is_mosquitto,
                           unique, wait_until)

ADMINISTRATIVE_ACTION, NOT_AUTHORIZED = 0x98, 0x87


class AdminApiTestCase(QueueApiTestCase):
    listeners = ("mqtt", "queue-api", "admin")

    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            raise unittest.SkipTest("wharf-only: Mosquitto has no admin API")
        cls.broker_options = {"auth": "  users:\n    - %s\n" % ops_entry(),
                              "listener_keys": {"admin": "users: [ops]"}}
        super().setUpClass()

    def admin(self, method, path, broker=None, user="ops", password=OPS_PASSWORD, kind="admin"):
        """(status, parsed JSON body) of one admin API request to the `kind` listener."""
        conn = http.client.HTTPConnection(HOST, (broker or self.broker).ports[kind], timeout=WAIT_S)
        self.addCleanup(conn.close)
        headers = {}
        if user is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(
                ("%s:%s" % (user, password)).encode()).decode()
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        body = r.read().decode()
        if r.getheader("Content-Type") == "application/json":
            return r.status, json.loads(body)
        return r.status, body

    def admin_ok(self, method, path, **kwargs):
        status, body = self.admin(method, path, **kwargs)
        self.assertEqual(status, 200, "%s %s -> %s %r" % (method, path, status, body))
        return body


def quoted(s):
    return urllib.parse.quote(s, safe="")


class SessionsTest(AdminApiTestCase):

    def persistent_raw(self, client_id, topics=(), broker=None):
        """A raw v5 connection with a one-hour session, subscribed to `topics` at QoS 1."""
        r = self.raw(broker)
        r.connect(client_id, clean=False, props={"session_expiry_interval": 3600})
        if topics:
            r.send(raw.subscribe(1, [(t, 1) for t in topics]))
            r.expect(raw.SUBACK)
        return r

    def test_sessions_listed_and_inspected_online_and_offline(self):
        online_id, offline_id = unique("adm-on"), unique("adm-off")
        here = self.persistent_raw(online_id, ["adm/%s/#" % online_id, "adm/all"])
        gone = self.persistent_raw(offline_id, ["adm/%s/#" % offline_id])
        gone.send(raw.disconnect())
        gone.wait_closed()
        pub = self.client()
        pub.publish("adm/%s/x" % offline_id, b"kept", qos=1)  # stored for the offline session
        pub.publish("adm/%s/y" % online_id, b"unacknowledged", qos=1)
        self.assertEqual(here.expect(raw.PUBLISH).payload, b"unacknowledged")  # and no PUBACK: in flight

        everyone = self.admin_ok("GET", "/api/v1/sessions?limit=10000")
        by_id = {s["clientId"]: s for s in everyone["sessions"]}
        self.assertEqual(everyone["total"], len(everyone["sessions"]))
        self.assertTrue(by_id[online_id]["online"])
        self.assertFalse(by_id[offline_id]["online"])
        ids = [s["clientId"] for s in everyone["sessions"]]
        self.assertEqual(ids, sorted(ids))

        online = self.admin_ok("GET", "/api/v1/sessions/" + quoted(online_id))
        self.assertEqual((online["online"], online["persistent"], online["protocolVersion"]), (True, True, 5))
        self.assertEqual((online["inflight"], online["queued"]), (1, 0))
        self.assertEqual(online["sessionExpiryInterval"], 3600)
        self.assertTrue(online["peer"].startswith("127.0.0.1:"), online)
        self.assertIsNone(online["username"])  # anonymous
        self.assertEqual(sorted((s["filter"], s["qos"]) for s in online["subscriptions"]),
                         [("adm/%s/#" % online_id, 1), ("adm/all", 1)])

        offline = self.admin_ok("GET", "/api/v1/sessions/" + quoted(offline_id))
        self.assertEqual((offline["online"], offline["persistent"], offline["queued"]), (False, True, 1))
        self.assertGreater(offline["expiresAt"], 0)
        self.assertEqual([s["filter"] for s in offline["subscriptions"]], ["adm/%s/#" % offline_id])

        only_online = self.admin_ok("GET", "/api/v1/sessions?state=online&limit=10000")["sessions"]
        self.assertIn(online_id, [s["clientId"] for s in only_online])
        self.assertNotIn(offline_id, [s["clientId"] for s in only_online])
        clients = self.admin_ok("GET", "/api/v1/clients?limit=10000")["clients"]
        self.assertEqual({c["clientId"] for c in clients}, {s["clientId"] for s in only_online})
        self.assertEqual(self.admin("GET", "/api/v1/clients/" + quoted(offline_id))[0], 404)

        # Paging: offset and limit over the sorted ids; total counts all.
        page = self.admin_ok("GET", "/api/v1/sessions?offset=1&limit=1")
        self.assertEqual((page["total"], [s["clientId"] for s in page["sessions"]]), (everyone["total"], ids[1:2]))

    def test_disconnect_sends_0x98_and_the_session_stays(self):
        client_id = unique("adm-kick")
        r = self.persistent_raw(client_id, ["adm/kick"])
        self.assertEqual(self.admin_ok("POST", "/api/v1/clients/%s/disconnect" % quoted(client_id)),
                         {"disconnected": client_id})
        self.assertEqual([(p.type, p.reason) for p in r.wait_closed()], [(raw.DISCONNECT, ADMINISTRATIVE_ACTION)])
        wait_until(lambda: not self.admin_ok("GET", "/api/v1/sessions/" + quoted(client_id))["online"])
        # Its session (one hour) is kept: it comes back with its subscription.
        again = self.raw()
        self.assertTrue(again.connect(client_id, clean=False, props={"session_expiry_interval": 3600}).session_present)
        status, body = self.admin("POST", "/api/v1/clients/%s/disconnect" % quoted(unique("nobody")))
        self.assertEqual(status, 404, body)

    def test_deleted_session_is_gone_even_after_kill_9(self):
        b = self.new_broker(listeners=("mqtt", "admin"), **self.broker_options)
        offline_id, online_id = unique("adm-del-off"), unique("adm-del-on")
        gone = self.persistent_raw(offline_id, ["adm/del/#"], broker=b)
        gone.send(raw.disconnect())
        gone.wait_closed()
        connected = self.persistent_raw(online_id, ["adm/del/#"], broker=b)
        self.assertEqual(self.admin_ok("DELETE", "/api/v1/sessions/" + quoted(offline_id), broker=b),
                         {"deleted": offline_id})
        self.assertEqual(self.admin_ok("DELETE", "/api/v1/sessions/" + quoted(online_id), broker=b),
                         {"deleted": online_id})
        self.assertEqual([(p.type, p.reason) for p in connected.wait_closed()],
                         [(raw.DISCONNECT, ADMINISTRATIVE_ACTION)])
        self.assertEqual(self.admin("GET", "/api/v1/sessions/" + quoted(offline_id), broker=b)[0], 404)
        self.assertEqual(self.admin("DELETE", "/api/v1/sessions/" + quoted(offline_id), broker=b)[0], 404)
        # Nothing routes to them any more, and nothing of them is stored.
        pub = self.client(b)
        pub.publish("adm/del/x", b"nobody home", qos=1)
        b.kill()
        b.start()
        for client_id in (offline_id, online_id):
            r = self.raw(b)
            self.assertFalse(r.connect(client_id, clean=False, props={"session_expiry_interval": 3600}).session_present,
                             "session %s came back after kill -9" % client_id)

    def test_credentials_methods_and_bad_requests(self):
        for user, password in ((None, None), ("ops", "wrong")):
            self.assertEqual(self.admin("GET", "/api/v1/sessions", user=user, password=password)[0], 401)
        self.assertEqual(self.admin("POST", "/api/v1/sessions")[0], 405)
        self.assertEqual(self.admin("GET", "/api/v1/clients/x/disconnect")[0], 405)
        self.assertEqual(self.admin("GET", "/api/v1/nothing")[0], 404)
        status, body = self.admin("GET", "/api/v1/sessions?limit=abc")
        self.assertEqual(status, 400)
        self.assertIn("'limit'", body["error"])
        status, body = self.admin("GET", "/api/v1/sessions?state=sleeping")
        self.assertEqual(status, 400)
        self.assertIn("online or offline", body["error"])


class StatusSubscriptionsRetainedTest(AdminApiTestCase):

    def test_status_counts_what_the_broker_holds(self):
        # A broker of its own: the counts are exactly what this test made.
        b = self.new_broker(listeners=("mqtt", "queue-api", "admin"), **self.broker_options)
        here = self.raw(b)
        here.connect(unique("st-on"))
        pub = self.client(b)
        pub.publish("st/kept", b"1", qos=1, retain=True)
        api = self.cmq(broker=b)
        self.new_queue("st", client=api)
        status = self.admin_ok("GET", "/api/v1/status", broker=b)
        self.assertEqual({k: status[k] for k in ("ready", "clientsConnected", "sessions", "retainedMessages",
                                                 "queues", "topics")},
                         {"ready": True, "clientsConnected": 2, "sessions": 2, "retainedMessages": 1,
                          "queues": 1, "topics": 0})
        self.assertRegex(status["version"], r"^\d+\.\d+\.\d+$")
        self.assertGreaterEqual(status["uptimeSeconds"], 0)
        self.assertEqual(self.admin("POST", "/api/v1/status", broker=b)[0], 405)

    def test_subscriptions_of_every_session_sorted_and_paged(self):
        prefix = unique("subs")
        a, b = prefix + "-a", prefix + "-b"
        for client_id, filters in ((b, ["s/2", "s/1"]), (a, ["s/#"])):
            r = self.raw()
            r.connect(client_id, clean=False, props={"session_expiry_interval": 3600})
            r.send(raw.subscribe(1, [(f, 1) for f in filters]))
            r.expect(raw.SUBACK)
        mine = [s for s in self.admin_ok("GET", "/api/v1/subscriptions?limit=10000")["subscriptions"]
                if s["clientId"].startswith(prefix)]
        self.assertEqual([(s["clientId"], s["filter"], s["qos"]) for s in mine],
                         [(a, "s/#", 1), (b, "s/1", 1), (b, "s/2", 1)])
        one = self.admin_ok("GET", "/api/v1/subscriptions?client=%s&limit=1&offset=1" % quoted(b))
        self.assertEqual((one["total"], [s["filter"] for s in one["subscriptions"]]), (2, ["s/2"]))
        self.assertEqual(self.admin_ok("GET", "/api/v1/subscriptions?client=nobody-here")["total"], 0)

    def test_retained_messages_by_filter(self):
        base = unique("ret")
        pub = self.client()
        for topic, payload in (("a/1", b"one"), ("a/2", b"\xff\x00"), ("b", b"bee")):
            pub.publish("%s/%s" % (base, topic), payload, qos=1, retain=True)
            self.addCleanup(pub.publish, "%s/%s" % (base, topic), b"", 1, True)
        got = self.admin_ok("GET", "/api/v1/retained?topic=%s" % quoted(base + "/a/#"))
        self.assertEqual(got["total"], 2)
        self.assertEqual([(m["topic"], m["payload"], m["payloadEncoding"], m["retain"]) for m in got["retained"]],
                         [(base + "/a/1", "one", "utf8", True), (base + "/a/2", "/wA=", "base64", True)])
        everything = self.admin_ok("GET", "/api/v1/retained?limit=10000")["retained"]
        self.assertFalse([m for m in everything if m["topic"].startswith("$")], "# must not match $SYS")
        self.assertEqual(self.admin("GET", "/api/v1/retained?topic=a/%23/b")[0], 400)


class QueuesTest(AdminApiTestCase):

    def test_queues_listed_with_depths_and_purged(self):
        q = self.new_queue("adm", visibilityTimeout=60)
        for body in ("a", "b", "c"):
            self.send(q, body)
        self.send(q, "later", delaySeconds=600)
        self.receive_one(q)  # one in flight
        listed = self.admin_ok("GET", "/api/v1/queues?search=" + quoted(q))
        self.assertEqual(listed["total"], 1)
        depth = listed["queues"][0]
        self.assertEqual((depth["queueName"], depth["visible"], depth["inflight"], depth["delayed"]), (q, 2, 1, 1))
        self.assertEqual(self.admin_ok("GET", "/api/v1/queues/" + q)["visible"], 2)

        self.assertEqual(self.admin_ok("POST", "/api/v1/queues/%s/purge" % q), {"purged": 4})
        attrs = self.attributes(q)
        self.assertEqual((attrs["activeMsgNum"], attrs["inactiveMsgNum"]), (0, 0), attrs)
        self.assert_empty(q)
        self.send(q, "after purge")
        self.assertEqual(self.receive_one(q)["msgBody"], "after purge")

        self.assertEqual(self.admin("POST", "/api/v1/queues/%s/purge" % unique("none"))[0], 404)
        self.assertEqual(self.admin("GET", "/api/v1/queues/%s/purge" % q)[0], 405)

    def test_dead_letters_redriven(self):
        dlq = self.new_queue("admdlq")
        q = self.new_queue("admsrc", visibilityTimeout=1, deadLetterQueueName=dlq, policy=0, maxReceiveCount=1)
        msg_id = self.send(q, "poison")
        self.receive_one(q)
        self.assertEqual(self.receive(q, wait=3)["code"], 7000)  # now in the dead-letter queue
        wait_until(lambda: self.attributes(dlq)["activeMsgNum"] == 1)
        self.assertEqual(self.admin_ok("POST", "/api/v1/queues/%s/redrive?source=%s" % (dlq, q)), {"redriven": 1})
        back = self.receive_one(q)
        self.assertEqual((back["msgId"], back["msgBody"]), (msg_id, "poison"))
        self.assertEqual(self.attributes(dlq)["activeMsgNum"], 0)
        status, body = self.admin("POST", "/api/v1/queues/%s/redrive?max=lots" % dlq)
        self.assertEqual(status, 400, body)

    def test_topics_listed(self):
        topic = unique("admt").replace("_", "-")
        self.ok("CreateTopic", {"topicName": topic})
        self.ok("Subscribe", {"topicName": topic, "subscriptionName": "s1", "protocol": "queue",
                              "notifyContentFormat": "SIMPLIFIED", "endpoint": self.new_queue("admts")})
        self.ok("PublishMessage", {"topicName": topic, "msgBody": "hi"})
        listed = self.admin_ok("GET", "/api/v1/topics?search=" + topic)["topics"]
        self.assertEqual([(t["topicName"], t["msgCount"], t["subscriptionCount"]) for t in listed], [(topic, 1, 1)])


class TraceTest(AdminApiTestCase):

    def test_a_message_history(self):
        q = self.new_queue("admtr")
        msg_id = self.send(q, "traced")
        got = self.receive_one(q)
        self.delete(q, got["receiptHandle"])
        history = self.admin_ok("GET", "/api/v1/messages/%s/trace" % msg_id)
        self.assertEqual(history["msgId"], msg_id)
        self.assertEqual(history["queueName"], q)
        events = history["events"]
        self.assertEqual([e["event"] for e in events], ["enqueued", "received", "deleted"], events)
        self.assertTrue(all(e["queue"] == q for e in events), events)
        secret_id = self.broker.credentials[0][0]
        self.assertIn(secret_id, events[0]["by"])
        self.assertIn(secret_id, events[1]["by"])
        self.assertEqual(events[1]["dequeueCount"], 1)
        times = [e["time"] for e in events]
        self.assertEqual(times, sorted(times))
        self.assertEqual(self.admin("GET", "/api/v1/messages/%s/trace" % unique("nomsg"))[0], 404)


class ReloadTest(AdminApiTestCase):

    def test_reload_applies_a_valid_file_and_refuses_an_invalid_one(self):
        b = self.new_broker(listeners=("mqtt", "admin"), **self.broker_options)
        self.assertEqual(self.admin_ok("POST", "/api/v1/reload", broker=b), {"reloaded": True})
        b.auth = "  users:\n    - %s\n  acl: [{allow: nonsense}]\n" % ops_entry()
        b._write_wharf_config()
        status, body = self.admin("POST", "/api/v1/reload", broker=b)
        self.assertEqual(status, 422, body)
        self.assertTrue(body["errors"], body)
        self.assertRegex(body["errors"][0], r"^%s:\d+:\d+: " % os.path.join(b.dir, "wharf.yaml"))
        # The running config is kept: the admin user still works.
        self.assertEqual(self.admin("GET", "/api/v1/sessions", broker=b)[0], 200)
        self.assertEqual(self.admin("GET", "/api/v1/reload", broker=b)[0], 405)

    def test_listeners_added_dropped_and_changed_while_their_connections_go_on(self):
        b = self.new_broker(listeners=("mqtt", "admin"), **self.broker_options)
        kept = self.client(b)
        kept.subscribe("lst/t")
        # Add a WebSocket listener; the MQTT one stops taking anonymous clients.
        b.ports["ws"] = free_port()
        b.listener_keys["mqtt"] = "anonymous: false"
        b._write_wharf_config()
        self.assertEqual(self.admin_ok("POST", "/api/v1/reload", broker=b), {"reloaded": True})
        ws = self.client(b, kind="ws", transport="websockets")
        self.raw(b).connect(unique("anon"), expect_reason=NOT_AUTHORIZED)
        ws.publish("lst/t", b"over ws", qos=1)
        self.assertEqual(kept.expect().payload, b"over ws")
        ws_port = b.ports.pop("ws")
        # Drop it again: it stops accepting, its open connection goes on.
        b._write_wharf_config()
        self.assertEqual(self.admin_ok("POST", "/api/v1/reload", broker=b), {"reloaded": True})

        def refused():
            try:
                socket.create_connection((HOST, ws_port), timeout=1).close()
                return False
            except ConnectionRefusedError:
                return True
        wait_until(refused, what="the dropped listener refuses connections")
        ws.publish("lst/t", b"still over ws", qos=1)
        self.assertEqual(kept.expect().payload, b"still over ws")
        # An address that cannot be bound refuses the reload as a whole.
        blocker = socket.socket()
        self.addCleanup(blocker.close)
        blocker.bind((HOST, 0))
        blocker.listen()
        b.ports["ws"] = blocker.getsockname()[1]
        b.listener_keys["mqtt"] = "anonymous: true"
        b._write_wharf_config()
        status, body = self.admin("POST", "/api/v1/reload", broker=b)
        self.assertEqual(status, 422, body)
        self.assertIn("listener %s:%d" % (HOST, b.ports["ws"]), body["errors"][0])
        self.raw(b).connect(unique("anon"), expect_reason=NOT_AUTHORIZED)  # nothing of the file applied

    def test_queue_api_credentials_rate_and_admin_users_are_reloaded(self):
        options = dict(self.broker_options, auth="  users:\n    - %s\n    - %s\n"
                       % (ops_entry(), ops_entry("deputy", "deputy-secret")),
                       listener_keys={"admin": "users: [ops]", "admin-2": "users: [deputy]"})
        b = self.new_broker(listeners=("mqtt", "queue-api", "admin", "admin-2"), **options)
        deputy = {"user": "deputy", "password": "deputy-secret"}

        def admitted(kind, **user):
            """Which of the two admin listeners let the user in."""
            return self.admin("GET", "/api/v1/queues", broker=b, kind=kind, **user)[0] == 200

        # Each admin listener lets in the users it names, not those of the other.
        self.assertEqual([admitted("admin"), admitted("admin-2")], [True, False])
        self.assertEqual([admitted("admin", **deputy), admitted("admin-2", **deputy)], [False, True])
        dropped = self.cmq(broker=b, credential=1)
        self.assertEqual(dropped.call("ListQueue", {})["code"], 0)
        # The second credential is swapped for a new one, a rate limit set; the first admin
        # listener names deputy only.
        b.credentials[1] = ("fresh", "fresh-" + unique("key"))
        b.queue_api["max_requests_per_second"] = 1
        b.listener_keys["admin"] = "users: [deputy]"
        b._write_wharf_config()
        self.assertEqual(self.admin_ok("POST", "/api/v1/reload", broker=b), {"reloaded": True})
        answer = dropped.call("ListQueue", {})
        self.assertEqual(answer["code"], 4100, answer)
        self.assertIn("unknown SecretId '%s'" % CREDENTIALS[1][0], answer["message"])
        self.assertEqual(self.cmq(broker=b, credential=1).call("ListQueue", {})["code"], 0)
        first = self.cmq(broker=b, credential=0)
        self.assertEqual([first.call("ListQueue", {})["code"] for _ in range(2)], [0, 4420])
        self.assertEqual([admitted("admin"), admitted("admin", **deputy)], [False, True])

    def test_log_levels_per_module_are_reloaded(self):
        b = self.new_broker(listeners=("mqtt", "admin"), **self.broker_options)

        def protocol_error():
            """A second CONNECT: the broker closes the connection and logs why at debug level."""
            r = self.raw(b)
            r.connect(unique("twice"))
            r.send(raw.connect(unique("twice")))
            r.wait_closed()

        protocol_error()
        self.assertNotIn("[mqtt] [debug]", b.log())
        b.top_level = "log_levels: {mqtt: debug, http: warn}"
        b._write_wharf_config()
        self.assertEqual(self.admin_ok("POST", "/api/v1/reload", broker=b), {"reloaded": True})
        protocol_error()
        wait_until(lambda: "[mqtt] [debug]" in b.log(), what="an mqtt debug line after the reload")
        self.assertNotIn("[app] [debug]", b.log())  # the other modules stay at log_level

        # JSON lines, one object each, with the message escaped.
        b.top_level = "log_levels: {mqtt: debug}\nlog_format: json"
        b._write_wharf_config()
        self.assertEqual(self.admin_ok("POST", "/api/v1/reload", broker=b), {"reloaded": True})
        protocol_error()

        def json_lines():
            return [json.loads(line) for line in b.log().splitlines() if line.startswith("{")]
        wait_until(lambda: any(e["module"] == "mqtt" and e["level"] == "debug" for e in json_lines()),
                   what="a JSON mqtt debug line")
        for e in json_lines():
            self.assertEqual(sorted(e), ["level", "module", "msg", "time"])
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
        self.assertTrue(any("'" in e["msg"] for e in json_lines()))  # quoted client ids survive


if __name__ == "__main__":
    unittest.main()

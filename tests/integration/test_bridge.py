"""The bridge between MQTT and the queue core (docs/BRIDGE.md), end to end with real
clients: mosquitto_pub / paho publishers feeding queues and core topics, the CMQ API
reading them; PublishMessage reaching mosquitto_sub, paho and offline persistent sessions;
device events; refusals answered with reason codes; kill -9 right after PUBACK."""

import base64
import json
import subprocess
import time
import unittest
from pathlib import Path

import mqtt_raw as raw
from wharf_fixture import (HOST, V5, V311, WAIT_S, Broker, BrokerStartError, MosquittoSub,
                           QueueApiTestCase, WHARF_BIN, mosquitto_pub, unique)

BRIDGE = """\
  mqtt_to_queue:
    - {filter: "devices/+/telemetry", queue: telemetry, format: json}
    - {filter: "raw/#", queue: rawq}
    - {filter: "limited/#", queue: limited}
    - {filter: "fleet/+/reading", queue: fleet-ordered, group_level: 2}
  mqtt_to_topic:
    - {filter: "sensors/#", topic: sensor-fanout}
  topic_to_mqtt:
    - {topic: commands, mqtt_topic: "devices/{routingKey}/commands", qos: 1}
  events: {queue: device-events}
"""


class BridgeTest(QueueApiTestCase):
    listeners = ("mqtt", "queue-api")
    mqtt_config = {"sys_interval_s": 1}
    bridge_config = BRIDGE

    def mqtt_client(self, **kwargs):
        return self.client(client_id=unique("dev"), **kwargs)

    def take(self, queue, wait=WAIT_S):
        """The next message of `queue` (deleted after reading): its body."""
        a = self.receive_one(queue, wait=wait)
        self.delete(queue, a["receiptHandle"])
        return a["msgBody"]

    def take_until(self, queue, match, wait=WAIT_S):
        """Bodies of `queue` are read (and deleted) until one for which `match(body)` holds;
        that body is returned. Other tests share the queue, so others are skipped."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            a = self.receive(queue, wait=1)
            if a["code"] != 0:
                continue
            self.delete(queue, a["receiptHandle"])
            if match(a["msgBody"]):
                return a["msgBody"]
        self.fail("nothing matching in %s within %s s" % (queue, wait))

    # ---- MQTT -> queue

    def test_queues_and_topics_of_the_bindings_are_created_at_start(self):
        names = [q["queueName"] for q in self.ok("ListQueue", {"limit": 100})["queueList"]]
        for q in ("telemetry", "rawq", "limited", "device-events"):
            self.assertIn(q, names)
        topics = [t["topicName"] for t in self.ok("ListTopic", {"limit": 100})["topicList"]]
        self.assertIn("sensor-fanout", topics)
        self.assertIn("commands", topics)
        subs = self.ok("ListSubscriptionByTopic", {"topicName": "commands"})["subscriptionList"]
        self.assertEqual([s["protocol"] for s in subs], ["mqtt"])
        self.assertEqual(subs[0]["endpoint"], "devices/{routingKey}/commands")

    def test_mosquitto_pub_qos1_reaches_the_queue_as_json(self):
        device = unique("dev")
        topic = "devices/%s/telemetry" % device
        r = mosquitto_pub(self.broker.port, topic, "21.5", args=("-q", "1", "-i", device, "-V", "mqttv5",
                                                                 "-D", "publish", "user-property", "unit", "C",
                                                                 "-D", "publish", "content-type", "text/plain"))
        self.assertEqual(r.returncode, 0, r.stdout)
        body = json.loads(self.take_until("telemetry", lambda b: json.loads(b)["clientId"] == device))
        self.assertEqual(body["topic"], topic)
        self.assertEqual(body["qos"], 1)
        self.assertFalse(body["retain"])
        self.assertEqual(body["payload"], "21.5")
        self.assertEqual(body["payloadEncoding"], "utf8")
        self.assertEqual(body["contentType"], "text/plain")
        self.assertEqual(body["userProperties"], [{"name": "unit", "value": "C"}])
        self.assertAlmostEqual(body["publishTime"] / 1000, time.time(), delta=30)

    def test_binary_payload_is_base64_in_json(self):
        c = self.mqtt_client()
        topic = "devices/%s/telemetry" % c.client_id
        payload = bytes([0, 1, 2, 0xFF, 0xFE])
        c.publish(topic, payload, qos=1, retain=True)
        body = json.loads(self.take_until("telemetry", lambda b: json.loads(b)["topic"] == topic))
        self.assertEqual(body["payloadEncoding"], "base64")
        self.assertEqual(base64.b64decode(body["payload"]), payload)
        self.assertTrue(body["retain"])
        c.publish(topic, b"", qos=1, retain=True)  # clears the retained message

    def test_raw_format_body_is_the_payload_and_qos0_is_bridged_too(self):
        c = self.mqtt_client()
        marker = unique("raw")
        c.publish("raw/a/" + marker, marker.encode(), qos=0)
        self.assertEqual(self.take_until("rawq", lambda b: b == marker), marker)

    def test_unbound_topics_are_not_bridged_and_mqtt_subscribers_still_get_bound_ones(self):
        c = self.mqtt_client()
        sub = self.mqtt_client()
        topic = "devices/%s/telemetry" % c.client_id
        sub.subscribe(topic, qos=1)
        c.publish("devices/%s/other" % c.client_id, b"x", qos=1)
        c.publish(topic, b"both", qos=1)
        self.assertEqual(sub.expect().payload, b"both")
        body = json.loads(self.take_until("telemetry", lambda b: json.loads(b)["clientId"] == c.client_id))
        self.assertEqual(body["payload"], "both")  # the unbound publish before it never came

    def test_group_level_keeps_each_devices_messages_in_order(self):
        self.assertEqual(self.attributes("fleet-ordered")["orderedQueue"], 1)
        devices = [unique("car") for _ in range(3)]
        clients = [self.client(client_id=d) for d in devices]
        for n in range(10):
            for d, c in zip(devices, clients):
                c.publish("fleet/%s/reading" % d, str(n).encode(), qos=1)
        got = {d: [] for d in devices}
        deadline = time.monotonic() + WAIT_S
        while sum(map(len, got.values())) < 30:
            self.assertLess(time.monotonic(), deadline, got)
            a = self.api.call("BatchReceiveMessage", dict(queueName="fleet-ordered", numOfMsg=16,
                                                          pollingWaitSeconds=1))
            if a["code"] == 7000:
                continue
            msgs = a["msgInfoList"]
            groups = [m["msgGroupId"] for m in msgs]
            self.assertEqual(len(groups), len(set(groups)), "two of one device at once: %r" % groups)
            for m in msgs:
                got[m["msgGroupId"]].append(int(m["msgBody"]))
            self.ok("BatchDeleteMessage", dict(queueName="fleet-ordered", **{
                "receiptHandle.%d" % i: m["receiptHandle"] for i, m in enumerate(msgs, 1)}))
        self.assertEqual(got, {d: list(range(10)) for d in devices})

    def test_group_level_refuses_a_queue_that_is_not_ordered(self):
        b = self.new_broker(listeners=self.listeners, bridge="  mqtt_to_queue:\n    - {filter: \"a/#\", queue: qa}\n")
        self.ok("CreateQueue", dict(queueName="plainq"), client=self.cmq(broker=b))
        grouped = "  mqtt_to_queue:\n    - {filter: \"p/+\", queue: plainq, group_level: 2}\n"
        b.reload("the bridge's new bindings were refused", bridge=grouped)
        self.assertIn("queue 'plainq' exists and is not ordered", b.log())
        b.stop()
        with self.assertRaises(BrokerStartError) as refused:
            b.start()
        self.assertIn("queue 'plainq' exists and is not ordered", str(refused.exception))

    def test_qos2_publish_is_bridged_once(self):
        c = self.mqtt_client()
        marker = unique("q2")
        c.publish("raw/q2", marker.encode(), qos=2)
        c.publish("raw/q2", b"after-" + marker.encode(), qos=1)
        got = []
        self.take_until("rawq", lambda b: got.append(b) or b == "after-" + marker)
        self.assertEqual(got.count(marker), 1)

    def test_publish_to_a_queue_that_refuses_gets_a_reason_code_v5_and_a_close_v3(self):
        # limited: a message above its maxMsgSize is refused by the core (4400).
        self.ok("SetQueueAttributes", {"queueName": "limited", "maxMsgSize": 1024})
        self.addCleanup(self.ok, "SetQueueAttributes", {"queueName": "limited", "maxMsgSize": 1048576})
        r = self.raw()
        r.connect(unique("big"))
        r.send(raw.publish("limited/x", b"x" * 2000, qos=1, pid=7))
        ack = r.expect(raw.PUBACK)
        self.assertEqual((ack.pid, ack.reason), (7, 0x83))
        r.send(raw.publish("limited/x", b"x" * 2000, qos=2, pid=8))
        rec = r.expect(raw.PUBREC)
        self.assertEqual((rec.pid, rec.reason), (8, 0x83))
        # The flow ended: the same id is free again, and a small message goes through.
        r.send(raw.publish("limited/x", b"small", qos=1, pid=8))
        self.assertEqual(r.expect(raw.PUBACK).reason, 0)
        self.assertEqual(self.take("limited"), "small")

        v3 = self.raw()
        v3.version = 4
        v3.connect(unique("big3"))
        v3.send(raw.publish("limited/x", b"x" * 2000, qos=1, pid=9, version=4))
        v3.wait_closed()  # 3.1.1 has no negative PUBACK: the client will send it again
        self.assert_empty("limited")

        # Counted, and the count is published under $SYS.
        watcher = self.mqtt_client()
        watcher.subscribe("$SYS/broker/bridge/refused", qos=0)
        deadline = time.monotonic() + WAIT_S
        while int(watcher.expect(timeout_s=3).payload) < 3:
            self.assertLess(time.monotonic(), deadline)

    def test_a_refused_qos2_resent_after_reconnect_is_a_new_message_not_a_duplicate(self):
        # 3.1.1, persistent session: the refusal closes the connection; the client's resend
        # (DUP, same packet id) must be taken as new, not acknowledged as already received.
        self.ok("SetQueueAttributes", {"queueName": "limited", "maxMsgSize": 1024})
        cid, body = unique("q2v3"), b"y" * 2000
        r = self.raw()
        r.version = 4
        r.connect(cid, clean=False)
        r.send(raw.publish("limited/q2", body, qos=2, pid=5, version=4))
        r.wait_closed()
        self.ok("SetQueueAttributes", {"queueName": "limited", "maxMsgSize": 1048576})
        r = self.raw()
        r.version = 4
        r.connect(cid, clean=False)
        r.send(raw.publish("limited/q2", body, qos=2, pid=5, dup=True, version=4))
        self.assertEqual(r.expect(raw.PUBREC).pid, 5)
        self.assertEqual(self.take("limited"), body.decode())

    def test_publish_to_a_deleted_queue_is_unspecified_error(self):
        # The queue was deleted through the API after start (4440): the publisher hears 0x80.
        name = unique("gone")
        b = self.new_broker(listeners=("mqtt", "queue-api"),
                            bridge="  mqtt_to_queue:\n    - {filter: \"gone/#\", queue: %s}\n" % name)
        api = self.cmq(broker=b)
        self.ok("DeleteQueue", {"queueName": name}, client=api)
        r = self.raw(broker=b)
        r.connect(unique("gone"))
        r.send(raw.publish("gone/x", b"m", qos=1, pid=3))
        ack = r.expect(raw.PUBACK)
        self.assertEqual((ack.pid, ack.reason), (3, 0x80))

    def test_acks_stay_in_packet_order_across_bridged_and_plain_publishes(self):
        r = self.raw()
        r.connect(unique("order"))
        # Alternate bridged and unbound QoS 1 publishes in one write.
        data = b"".join(raw.publish(("raw/o" if i % 2 else "plain/o"), b"p%d" % i, qos=1, pid=i + 1)
                        for i in range(200))
        r.send(data)
        pids = [r.expect(raw.PUBACK).pid for _ in range(200)]
        self.assertEqual(pids, list(range(1, 201)))

    # ---- MQTT -> core topic

    def test_mqtt_to_topic_routes_by_topic_levels(self):
        q = self.new_queue("fan")
        name = unique("s")
        self.ok("Subscribe", {"topicName": "sensor-fanout", "subscriptionName": name, "protocol": "queue",
                              "endpoint": q, "notifyContentFormat": "SIMPLIFIED",
                              "bindingKey.0": "sensors.*.temperature"})
        self.addCleanup(self.ok, "Unsubscribe", {"topicName": "sensor-fanout", "subscriptionName": name})
        c = self.mqtt_client()
        c.publish("sensors/kitchen/humidity", b"40", qos=1)
        c.publish("sensors/kitchen/temperature", b"21", qos=1)
        self.assertEqual(self.take(q), "21")
        self.assert_empty(q)

    # ---- core topic -> MQTT

    def test_publish_message_reaches_mosquitto_sub_and_paho(self):
        device = unique("lamp")
        topic = "devices/%s/commands" % device
        ms = MosquittoSub(self.broker.port, topic, args=("-q", "1")).start()
        sub = self.mqtt_client()
        sub.subscribe(topic, qos=1)
        a = self.ok("PublishMessage", {"topicName": "commands", "msgBody": "on", "routingKey": device})
        rc, msgs = ms.wait()
        self.assertEqual(rc, 0)
        self.assertEqual(msgs, [(topic, 1, 0, "on")])
        m = sub.expect()
        self.assertEqual((m.topic, m.payload, m.qos), (topic, b"on", 1))
        self.assertIn(("msgId", a["msgId"]), m.properties.UserProperty)

    def test_routing_key_words_become_topic_levels(self):
        sub = self.mqtt_client()
        sub.subscribe("devices/kitchen/+/commands", qos=1)
        self.ok("PublishMessage", {"topicName": "commands", "msgBody": "dim", "routingKey": "kitchen.lamp2"})
        m = sub.expect()
        self.assertEqual((m.topic, m.payload), ("devices/kitchen/lamp2/commands", b"dim"))

    def test_offline_persistent_session_gets_a_command_on_reconnect(self):
        cid = unique("sleepy")
        topic = "devices/%s/commands" % cid
        for version in (V311, V5):
            kwargs = dict(client_id=cid, version=version, clean=False)
            if version == V5:
                kwargs["session_expiry_s"] = 300
            s = self.client(**kwargs)
            s.subscribe(topic, qos=1)
            s.disconnect()
            self.ok("PublishMessage", {"topicName": "commands", "msgBody": "wake-%d" % version, "routingKey": cid})
            # The core delivers once the broker has stored the copy; then the session comes back.
            time.sleep(0.3)
            s = self.client(**kwargs)
            self.assertTrue(s.session_present)
            m = s.expect()
            self.assertEqual((m.topic, m.payload), (topic, b"wake-%d" % version))
            s.disconnect()

    # ---- device events

    def test_session_expired_event(self):
        cid = unique("expiring")
        c = self.client(client_id=cid, version=V5, clean=True, session_expiry_s=1)
        c.disconnect()
        body = json.loads(self.take_until(
            "device-events", lambda b: json.loads(b)["clientId"] == cid and json.loads(b)["event"] == "session.expired",
            wait=10))
        self.assertGreaterEqual(body["time"] / 1000, time.time() - 30)

    def test_connect_disconnect_and_will_events(self):
        cid = unique("ev")
        c = self.client(client_id=cid, version=V5, clean=True, session_expiry_s=0)
        c.disconnect()
        connected = json.loads(self.take_until(
            "device-events", lambda b: json.loads(b)["clientId"] == cid and json.loads(b)["event"] == "client.connected"))
        self.assertEqual(connected["protocolVersion"], 5)
        self.assertTrue(connected["cleanStart"])
        self.assertFalse(connected["sessionPresent"])
        self.assertEqual(connected["remoteAddress"], HOST)
        self.assertEqual(connected["keepAlive"], c.keepalive_s)
        gone = json.loads(self.take_until("device-events", lambda b: json.loads(b)["clientId"] == cid))
        self.assertEqual(gone["event"], "client.disconnected")
        self.assertEqual((gone["reasonCode"], gone["reason"]), (0, "normal disconnection"))
        self.assertGreaterEqual(gone["time"], connected["time"])

        # A client that drops its connection: no reason code, its will is published.
        cid2 = unique("ev-will")
        r = self.raw()
        r.connect(cid2, will={"topic": "devices/%s/status" % cid2, "payload": "offline", "qos": 1})
        r.close()
        events = {}
        while len(events) < 3:
            body = json.loads(self.take_until("device-events", lambda b: json.loads(b)["clientId"] == cid2))
            events[body["event"]] = body
        self.assertEqual(set(events), {"client.connected", "client.disconnected", "will.published"})
        self.assertNotIn("reasonCode", events["client.disconnected"])
        self.assertEqual(events["client.disconnected"]["reason"], "connection lost")
        will = events["will.published"]
        self.assertEqual((will["topic"], will["payload"], will["qos"]), ("devices/%s/status" % cid2, "offline", 1))


class BridgeDurabilityTest(QueueApiTestCase):
    """kill -9 right after PUBACK: the bridged copy is in the queue after the restart."""
    listeners = ("mqtt", "queue-api")
    bridge_config = "  mqtt_to_queue:\n    - {filter: \"crash/#\", queue: crashq}\n"

    def test_kill_9_right_after_puback_loses_nothing(self):
        b = self.new_broker(listeners=self.listeners, bridge=self.bridge_config)
        for version in (V311, V5):
            c = self.client(broker=b, client_id=unique("k9"), version=version)
            sent = ["v%d-%d" % (version, i) for i in range(50)]
            for s in sent:
                c.publish("crash/x", s.encode(), qos=1)  # returns once PUBACK arrived
            b.kill()
            b.start()
            api = self.cmq(broker=b)
            got = []
            while True:
                a = self.receive("crashq", wait=0, client=api)
                if a["code"] == 7000:
                    break
                got.append(a["msgBody"])
                self.delete("crashq", a["receiptHandle"], client=api)
            self.assertEqual(got, sent)


class BridgeReloadTest(QueueApiTestCase):
    """SIGHUP replaces the bindings without touching connections; a bad file is refused."""
    listeners = ("mqtt", "queue-api")
    bridge_config = "  mqtt_to_queue:\n    - {filter: \"a/#\", queue: qa}\n"

    def test_sighup_replaces_bindings_and_keeps_connections(self):
        b = self.new_broker(listeners=self.listeners, bridge=self.bridge_config)
        api = self.cmq(broker=b)
        c = self.client(broker=b, client_id=unique("live"))
        c.publish("a/1", b"first", qos=1)
        self.assertEqual(self.receive_one("qa", client=api)["msgBody"], "first")

        b.reload("bridge bindings and TLS certificates replaced from", bridge="  mqtt_to_queue:\n    - {filter: \"b/#\", queue: qb}\n")
        c.publish("a/2", b"unbound now", qos=1)  # the same connection, still open
        c.publish("b/1", b"second", qos=1)
        self.assertEqual(self.receive_one("qb", client=api)["msgBody"], "second")
        a = self.receive("qa", wait=0, client=api)  # only "first", which was received already
        self.assertEqual(a["code"], 7000, a)

        b.reload("config reload refused", bridge="  mqtt_to_queue:\n    - {filter: \"c/#/x\", queue: qc}\n")
        self.assertRegex(b.log(), r"config reload refused: .*wharf.yaml:\d+:\d+: bridge.mqtt_to_queue: 'c/#/x'")
        c.publish("b/2", b"kept", qos=1)
        self.assertEqual(self.receive_one("qb", client=api, wait=WAIT_S)["msgBody"], "kept")
        self.assertTrue(b.running())


class BridgeConfigTest(unittest.TestCase):
    """Bindings that mean nothing are config errors with file:line:column."""

    def start_with(self, bridge):
        """Runs wharf on a config with `bridge`; returns (config path, its lines, stderr)."""
        b = Broker(listeners=("mqtt",), bridge=bridge)
        self.addCleanup(b.cleanup)
        cfg = b._write_wharf_config()[-1]
        r = subprocess.run([WHARF_BIN, "--config", cfg], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        return cfg, Path(cfg).read_text().splitlines(), r.stderr

    @staticmethod
    def line_of(lines, text):
        return next(i for i, line in enumerate(lines, 1) if text in line)

    def test_bad_filter_and_template_are_reported_with_their_position(self):
        cfg, lines, err = self.start_with(
            "  mqtt_to_queue:\n"
            "    - {filter: \"a/#/b\", queue: q1}\n"
            "  topic_to_mqtt:\n"
            "    - {topic: t1, mqtt_topic: \"x/+/y\"}\n")
        self.assertIn("%s:%d:7: bridge.mqtt_to_queue: 'a/#/b' is not an MQTT topic filter"
                      % (cfg, self.line_of(lines, "a/#/b")), err)
        self.assertIn("%s:%d:7: bridge.topic_to_mqtt: 'x/+/y' is not an MQTT topic template"
                      % (cfg, self.line_of(lines, "x/+/y")), err)

    def test_shape_errors_are_reported_all_at_once(self):
        cfg, lines, err = self.start_with(
            "  mqtt_to_queue:\n"
            "    - {filter: \"a/b\", queue: q1, format: xml}\n"
            "  topic_to_mqtt:\n"
            "    - {topic: t1, mqtt_topic: \"x/{routingKey}\", qos: 3}\n"
            "  events: {}\n")
        self.assertRegex(err, r"%s:%d:\d+: bridge.mqtt_to_queue\[0\].format" % (cfg, self.line_of(lines, "xml")))
        self.assertRegex(err, r"%s:%d:\d+: bridge.topic_to_mqtt\[0\].qos" % (cfg, self.line_of(lines, "qos: 3")))
        self.assertRegex(err, r"%s:%d:\d+: bridge.events: missing required field 'queue'"
                         % (cfg, self.line_of(lines, "events:")))


if __name__ == "__main__":
    unittest.main()

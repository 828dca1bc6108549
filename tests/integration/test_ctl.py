"""`wharf ctl` (wharf only): the operators' command-line client of the admin API, run as a
process against a running wharf: tables for people, --json for scripts, credentials from
flags, the environment or a file, and the exit status that says what happened."""

import json
import os
import subprocess
import tempfile
import unittest

import mqtt_raw as raw
from admin_client import OPS_PASSWORD, ops_entry
from wharf_fixture import (HOST, WHARF_BIN, BrokerTestCase, QueueApiTestCase, certs, is_mosquitto,
                           require_wharf, unique, wait_until)


class CtlTest(QueueApiTestCase):
    listeners = ("mqtt", "queue-api", "admin")

    @classmethod
    def setUpClass(cls):
        if is_mosquitto():
            raise unittest.SkipTest("wharf-only: Mosquitto has no admin API")
        cls.broker_options = {"auth": "  users:\n    - %s\n" % ops_entry(),
                              "listener_keys": {"admin": "users: [ops]"}}
        super().setUpClass()

    def ctl(self, *args, env=None, credentials=True, expect=0):
        """Runs `wharf ctl ARGS` against the class's broker; returns its stdout. With
        `credentials`, the URL and the ops user come as flags."""
        flags = ["--url", "http://%s:%d" % (HOST, self.broker.ports["admin"])]
        if credentials:
            flags += ["--user", "ops", "--password", OPS_PASSWORD]
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_ADMIN_")}
        full_env.update(env or {})
        p = subprocess.run([WHARF_BIN, "ctl", *flags, *args], capture_output=True, text=True, env=full_env,
                           timeout=30)
        self.assertEqual(p.returncode, expect, "wharf ctl %s: exit %d\nstdout: %s\nstderr: %s"
                         % (" ".join(args), p.returncode, p.stdout, p.stderr))
        self.last_stderr = p.stderr
        return p.stdout

    def ctl_json(self, *args):
        return json.loads(self.ctl("--json", *args))

    def persistent(self, client_id, filters):
        r = self.raw()
        r.connect(client_id, clean=False, props={"session_expiry_interval": 3600})
        r.send(raw.subscribe(1, [(f, 1) for f in filters]))
        r.expect(raw.SUBACK)
        return r

    def test_status_and_health(self):
        status = self.ctl_json("status")
        self.assertTrue(status["ready"])
        text = self.ctl("status")
        self.assertRegex(text, r"(?m)^version\s+\d+\.\d+\.\d+$")
        self.assertRegex(text, r"(?m)^ready\s+yes$")
        # Probes need no credentials; ready: exit 0.
        self.assertEqual(self.ctl("health", credentials=False).split(), ["healthz", "ok", "readyz", "ok"])

    def test_cluster_status_and_transfer_of_a_single_node(self):
        # Without a cluster section the queue core is a group of one: it leads, alone.
        status = self.ctl_json("cluster")
        self.assertEqual((status["nodeId"], status["role"], status["leader"]), (1, "leader", 1), status)
        self.assertEqual([(m["id"], m["voter"], m.get("self")) for m in status["members"]], [(1, True, True)])
        text = self.ctl("cluster")
        self.assertRegex(text, r"(?m)^role\s+leader$")
        self.assertRegex(text, r"(?m)^ID\s+ADDRESS\s+VOTER\s+NOTE")
        self.assertRegex(text, r"(?m)^1\s+-\s+yes\s+leader, this node\s+-\s+-$")  # no peer address, no lag
        # Nobody to hand leadership to: refused, and said why.
        self.ctl("cluster", "transfer", expect=1)
        self.assertIn("HTTP 409: there's no other voting server", self.last_stderr)
        self.ctl("cluster", "transfer", "x", expect=2)
        # `wharf cluster ...` is `wharf ctl cluster ...`.
        p = subprocess.run([WHARF_BIN, "cluster", "status", "--json", "--url",
                            "http://%s:%d" % (HOST, self.broker.ports["admin"]), "--user", "ops",
                            "--password", OPS_PASSWORD], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["role"], "leader")

    def test_clients_listed_shown_and_kicked(self):
        client_id = unique("ctl-c")
        r = self.persistent(client_id, ["ctl/%s/#" % client_id])
        rows = [line.split() for line in self.ctl("clients", "--limit", "10000").splitlines()]
        self.assertEqual(rows[0][:3], ["CLIENT", "ID", "STATE"])
        self.assertIn([client_id, "online", "5"], [row[:3] for row in rows])
        shown = self.ctl("clients", "show", client_id)
        self.assertRegex(shown, r"(?m)^clientId\s+%s$" % client_id)
        self.assertRegex(shown, r"(?m)^ctl/%s/#\s+1\s" % client_id)
        self.assertEqual(self.ctl("clients", "kick", client_id), "disconnected %s\n" % client_id)
        self.assertEqual([(p.type, p.reason) for p in r.wait_closed()], [(raw.DISCONNECT, 0x98)])
        wait_until(lambda: not self.ctl_json("sessions", "show", client_id)["online"])
        # Refused by the API: exit 1 and its message.
        self.ctl("clients", "kick", client_id, expect=1)
        self.assertIn("HTTP 404: no connected client '%s'" % client_id, self.last_stderr)

    def test_sessions_subscriptions_and_delete(self):
        client_id = unique("ctl-s")
        r = self.persistent(client_id, ["ctl/b", "ctl/a"])
        r.send(raw.disconnect())
        r.wait_closed()
        wait_until(lambda: not self.ctl_json("sessions", "show", client_id)["online"])
        offline = self.ctl_json("sessions", "--state", "offline", "--limit", "10000")["sessions"]
        self.assertIn(client_id, [s["clientId"] for s in offline])
        self.assertEqual(self.ctl("subscriptions", "--client", client_id).splitlines()[1:],
                         ["%s  ctl/a   1    no        no                   0                -" % client_id,
                          "%s  ctl/b   1    no        no                   0                -" % client_id])
        self.assertEqual(self.ctl("sessions", "delete", client_id), "deleted %s\n" % client_id)
        self.ctl("sessions", "show", client_id, expect=1)

    def test_retained(self):
        topic = unique("ctl-r")
        pub = self.client()
        pub.publish(topic + "/t", b"21.5", qos=1, retain=True)
        self.addCleanup(pub.publish, topic + "/t", b"", 1, True)
        rows = [line.split() for line in self.ctl("retained", "--topic", topic + "/#").splitlines()]
        self.assertEqual(rows, [["TOPIC", "QOS", "PAYLOAD", "EXPIRES"], [topic + "/t", "1", "21.5", "never"]])

    def test_queues_purged_redriven_and_traced(self):
        q = self.new_queue("ctlq")
        msg_id = self.send(q, "one")
        self.send(q, "two")
        rows = self.ctl("queues", "--search", q).splitlines()
        self.assertEqual(rows[1].split()[:4], [q, "2", "0", "0"])
        self.assertEqual(self.ctl_json("queues", "show", q)["visible"], 2)
        trace = self.ctl("trace", msg_id)
        self.assertIn("message %s (queue %s)" % (msg_id, q), trace)
        self.assertRegex(trace, r"(?m)^\S+Z\s+enqueued\s+%s\s+SecretId" % q)
        self.assertEqual(self.ctl("queues", "purge", q), "purged 2\n")
        self.assertEqual(self.attributes(q)["activeMsgNum"], 0)
        # Dead letters go back.
        dlq = self.new_queue("ctldlq")
        src = self.new_queue("ctlsrc", visibilityTimeout=1, deadLetterQueueName=dlq, policy=0, maxReceiveCount=1)
        self.send(src, "poison")
        self.assertEqual(self.receive(src)["code"], 0)

        def dead_lettered():  # by the next receive after its visibility ends, or by a tick
            self.assertEqual(self.receive(src)["code"], 7000, "handed out past maxReceiveCount")
            return self.attributes(dlq)["activeMsgNum"] == 1

        wait_until(dead_lettered, what="the message dead-lettered")
        self.assertEqual(self.ctl("queues", "redrive", dlq, "--source", src), "redriven 1\n")
        self.assertEqual(self.attributes(src)["activeMsgNum"], 1)
        self.ctl("queues", "purge", unique("nosuchq"), expect=1)

    def test_topics_and_reload(self):
        topic = unique("ctlt")
        self.ok("CreateTopic", dict(topicName=topic))
        self.assertEqual(self.ctl("topics", "--search", topic).splitlines()[1].split(), [topic, "0", "0"])
        self.assertEqual(self.ctl("reload"), "reloaded yes\n")

    def test_credentials_from_the_environment_and_a_file(self):
        env = {"WHARF_ADMIN_USER": "ops", "WHARF_ADMIN_PASSWORD": OPS_PASSWORD}
        self.assertTrue(json.loads(self.ctl("--json", "status", env=env, credentials=False))["ready"])
        with tempfile.NamedTemporaryFile("w", suffix=".cred") as f:
            f.write("ops:%s\n" % OPS_PASSWORD)
            f.flush()
            self.assertTrue(json.loads(self.ctl("--json", "status", "--credentials", f.name,
                                                credentials=False))["ready"])
            # The file wins over the environment; a flag wins over the file.
            bad_env = {"WHARF_ADMIN_USER": "ops", "WHARF_ADMIN_PASSWORD": "wrong"}
            self.ctl("status", "--credentials", f.name, env=bad_env, credentials=False)
            self.ctl("status", "--credentials", f.name, "--password", "wrong", credentials=False, expect=1)
        self.assertIn("HTTP 401", self.last_stderr)
        self.assertIn("--credentials", self.last_stderr)
        self.ctl("status", credentials=False, expect=1)

    def test_usage_and_unreachable(self):
        self.assertIn("usage: wharf ctl", self.ctl("--help"))
        self.ctl("frobnicate", expect=2)
        self.assertIn("not a command: 'frobnicate'", self.last_stderr)
        p = subprocess.run([WHARF_BIN, "ctl", "--url", "http://%s:1" % HOST, "status"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("connect to %s:1" % HOST, p.stderr)
        for sub in ("check-config", "passwd", "ctl"):
            p = subprocess.run([WHARF_BIN, sub, "--help"], capture_output=True, text=True, timeout=30)
            self.assertEqual((p.returncode, p.stdout.startswith("usage: wharf %s" % sub)), (0, True), p.stdout)


class CtlTlsTest(BrokerTestCase):
    """An admin listener over HTTPS: ctl verifies it against --ca."""

    def test_https_with_the_listeners_ca(self):
        require_wharf(self, "Mosquitto has no admin API")
        c = certs()
        b = self.new_broker(listeners=("mqtt", "admin"), auth="  users:\n    - %s\n" % ops_entry(),
                            listener_keys={"admin": "users: [ops], tls: {cert_file: %s, key_file: %s}"
                                           % (c.server_cert, c.server_key)})
        url = "https://%s:%d" % (HOST, b.ports["admin"])
        base = [WHARF_BIN, "ctl", "--url", url, "--user", "ops", "--password", OPS_PASSWORD, "--json", "status"]
        p = subprocess.run(base + ["--ca", c.ca_cert], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(json.loads(p.stdout)["ready"])
        # Without the CA the system's trust store does not know the test CA: refused, exit 3.
        p = subprocess.run(base, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 3, p.stdout)
        self.assertIn("TLS handshake", p.stderr)


if __name__ == "__main__":
    unittest.main()

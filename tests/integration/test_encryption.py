"""Encryption at rest (docs/CONFIG.md, "encryption"): with it on, a known plaintext sent
through MQTT (an offline persistent session's queue, a retained message) and the CMQ API (a
queue message) is found nowhere in the data directory, and all of it reads back after a
restart and after a key rotation; the same traffic without encryption leaves the plaintext
on disk (so the search can find it). A missing or wrong key, or a store written in the
clear, stops startup with a message and loses nothing. wharf only."""

import os
import secrets
import unittest

from wharf_fixture import V5, WAIT_S, BrokerStartError, QueueApiTestCase, unique


def write_key(directory, name):
    path = os.path.join(directory, name + ".key")
    with open(path, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    return path


def encryption(keys, active):
    """The encryption section for {id: key file}."""
    lines = ["encryption:", "  active: %s" % active, "  keys:"]
    lines += ["    - {id: %s, key_file: %s}" % (key_id, path) for key_id, path in keys.items()]
    return "\n".join(lines) + "\n"


def files_holding(directory, needle):
    """The files under `directory` whose bytes contain `needle`."""
    found = []
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                if needle in f.read():
                    found.append(os.path.relpath(path, directory))
    return found


class EncryptionTest(QueueApiTestCase):
    listeners = ("mqtt", "queue-api")

    def setUp(self):
        super().setUp()
        self.keys_dir = self.broker.dir  # any private directory that outlives the test's brokers

    def new_encrypted_broker(self, keys, active):
        return self.new_broker(listeners=self.listeners, top_level=encryption(keys, active))

    def write_traffic(self, broker, marker):
        """A queue message, an offline persistent session's message and a retained message,
        each holding `marker`. Returns what reads them back."""
        api = self.cmq(broker=broker)
        q = self.new_queue("enc", client=api)
        self.send(q, "cmq-" + marker, client=api)
        device = unique("dev")
        sub = self.client(broker=broker, client_id=device, clean=False, session_expiry_s=3600, version=V5)
        sub.subscribe("enc/offline", qos=1)
        sub.close()
        pub = self.client(broker=broker)
        pub.publish("enc/offline", ("offline-" + marker).encode(), qos=1)
        pub.publish("enc/retained", ("retained-" + marker).encode(), qos=1, retain=True)
        pub.close()
        return q, device

    def read_back(self, broker, q, device, marker):
        api = self.cmq(broker=broker)
        self.assertEqual(self.receive_one(q, client=api)["msgBody"], "cmq-" + marker)
        sub = self.client(broker=broker, client_id=device, clean=False, session_expiry_s=3600, version=V5)
        self.assertEqual(sub.expect().payload, ("offline-" + marker).encode())
        fresh = self.client(broker=broker)
        fresh.subscribe("enc/retained", qos=1)
        self.assertEqual(fresh.expect().payload, ("retained-" + marker).encode())

    def test_plaintext_is_nowhere_on_disk_and_reads_back_after_restart_and_rotation(self):
        marker = "KNOWN-PLAINTEXT-" + secrets.token_hex(8)
        # The control: without encryption the same traffic leaves the plaintext in the files.
        plain = self.new_broker(listeners=self.listeners)
        self.write_traffic(plain, marker)
        plain.stop()
        self.assertTrue(files_holding(plain.data_dir, marker.encode()), "the search cannot find a plaintext")

        k1 = write_key(self.keys_dir, "k1")
        b = self.new_encrypted_broker({"k1": k1}, "k1")
        q, device = self.write_traffic(b, marker)
        b.stop()
        self.assertEqual(files_holding(b.data_dir, marker.encode()), [])
        b.start()
        self.assertIn("encryption at rest: new values sealed with key 'k1'", b.log())
        self.read_back(b, q, device, marker)

        # Rotation: k2 seals what is written from now on; k1 still opens what it sealed.
        second = "SECOND-PLAINTEXT-" + secrets.token_hex(8)
        k2 = write_key(self.keys_dir, "k2")
        b.stop()
        b.top_level = encryption({"k1": k1, "k2": k2}, "k2")
        b.start()
        q2, device2 = self.write_traffic(b, second)
        b.stop()
        for text in (marker, second):
            self.assertEqual(files_holding(b.data_dir, text.encode()), [], text)
        b.start()
        self.assertRegex(b.log(), r"stored values: \d+ with 'k1', \d+ with 'k2'")
        self.read_back(b, q2, device2, second)

        # k1 cannot be dropped while values use it: refused, and nothing is lost.
        b.stop()
        b.top_level = encryption({"k2": k2}, "k2")
        with self.assertRaises(BrokerStartError) as refused:
            b.start()
        self.assertIn("encrypted with key 'k1', which encryption.keys does not name", str(refused.exception))
        b.top_level = encryption({"k1": k1, "k2": k2}, "k2")
        b.start()
        self.assertEqual(self.attributes(q, client=self.cmq(broker=b))["activeMsgNum"], 0)  # read back above

    def test_a_wrong_or_missing_key_stops_startup_and_changes_nothing(self):
        marker = "KEPT-" + secrets.token_hex(8)
        k1 = write_key(self.keys_dir, "right")
        b = self.new_encrypted_broker({"k1": k1}, "k1")
        q, device = self.write_traffic(b, marker)
        b.stop()

        wrong = write_key(self.keys_dir, "wrong")
        b.top_level = encryption({"k1": wrong}, "k1")
        with self.assertRaises(BrokerStartError) as refused:
            b.start()
        self.assertIn("key 'k1' is not the key this data directory was encrypted with", str(refused.exception))

        b.top_level = ""  # no encryption section at all
        with self.assertRaises(BrokerStartError) as refused:
            b.start()
        self.assertIn("is encrypted: the config's encryption section must name its keys", str(refused.exception))

        missing = os.path.join(self.keys_dir, "absent.key")
        b.top_level = encryption({"k1": missing}, "k1")
        with self.assertRaises(BrokerStartError) as refused:
            b.start()
        self.assertIn("cannot read file '%s'" % missing, str(refused.exception))

        b.top_level = encryption({"k1": k1}, "k1")
        b.start()
        self.read_back(b, q, device, marker)

    def test_a_store_written_in_the_clear_is_not_encrypted_in_place(self):
        b = self.new_broker(listeners=self.listeners)
        self.new_queue("clear", client=self.cmq(broker=b))
        b.stop()
        b.top_level = encryption({"k1": write_key(self.keys_dir, "late")}, "k1")
        with self.assertRaises(BrokerStartError) as refused:
            b.start()
        self.assertIn("values written without encryption", str(refused.exception))
        b.top_level = ""
        b.start()
        self.assertTrue(self.ok("ListQueue", {}, client=self.cmq(broker=b))["totalCount"] >= 1)


if __name__ == "__main__":
    unittest.main()

"""CMQ error 6000 end to end: the disk under the queue core fills up. The broker's data_dir
is a 160 MiB tmpfs mounted by the test (root only: CI runs as root); once it is full (below
min_free_disk_bytes, default 64 MiB: RocksDB never meets the full disk itself), a send
answers 6000 with a message, every later command does too (the core stops rather than answer
from a state a restart would not reproduce: docs/ARCHITECTURE.md), the process stays up, and
after the space is freed and the broker restarted, what was acknowledged before is there.
wharf only."""

import errno
import os
import subprocess
import unittest

from wharf_fixture import Broker, QueueApiTestCase


class StorageFullTest(QueueApiTestCase):
    listeners = ("queue-api",)

    def broker_on_small_disk(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root (CI runs as root)")
        b = Broker(("queue-api",), name="%s broker" % self._testMethodName)
        self._own_brokers.append(b)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", b.data_dir], check=True)

        def unmount():
            b.stop()
            subprocess.run(["umount", b.data_dir], check=True)
        self.addCleanup(unmount)
        b.start()
        return b

    @staticmethod
    def fill(directory):
        """Writes a file until the file system is full; returns its path."""
        path = os.path.join(directory, "filler")
        chunk = b"\0" * 65536
        with open(path, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
        return path

    def test_full_disk_answers_6000_and_keeps_what_was_acknowledged(self):
        b = self.broker_on_small_disk()
        api = self.cmq(broker=b)
        q = self.new_queue("disk", client=api)
        before = self.send(q, "before", client=api)

        filler = self.fill(b.data_dir)
        self.fails(6000, "SendMessage", dict(queueName=q, msgBody="x" * 60000), client=api)
        self.fails(6000, "SendMessage", dict(queueName=q, msgBody="later"), client=api)
        self.fails(6000, "ReceiveMessage", dict(queueName=q, pollingWaitSeconds=0), client=api)
        self.assertIsNone(b.proc.poll(), "the broker exited on a full disk")

        b.kill()
        os.remove(filler)
        b.start()
        api = self.cmq(broker=b)
        a = self.ok("ReceiveMessage", dict(queueName=q, pollingWaitSeconds=0), client=api)
        self.assertEqual((a["msgBody"], a["msgId"]), ("before", before))


if __name__ == "__main__":
    unittest.main()

"""The total-queue checker on histories written by hand: it passes what a correct queue may
do (duplicates, unknown sends missing or present) and fails each violation."""

import unittest

from total_queue import History, check, failed, table


def history(sends=(), receives=(), deletes=()):
    h = History()
    for s in sends:
        h.send(*s)
    for r in receives:
        h.receive(*r)
    for d in deletes:
        h.delete(*d)
    return h


class TotalQueueTest(unittest.TestCase):
    def test_a_clean_run_with_duplicates_and_unknowns_passes(self):
        h = history(sends=[("a", 0, 1, 0), ("b", 0, 1, None), ("c", 0, 1, 6000), ("d", 0, 1, 0)],
                    receives=[("a", 2, 3), ("a", 4, 5), ("b", 2, 3), ("d", 2, 3)],
                    deletes=[("a", 5, 6, 0), ("d", 3, 4, 0)])
        v = check(h)
        self.assertFalse(failed(v), table(v))
        self.assertEqual(v.counts["acked"], 2)
        self.assertEqual(v.counts["unknown"], 2)
        self.assertEqual(v.counts["unknown received"], 1)
        self.assertEqual(v.counts["duplicates"], 1)
        self.assertEqual(v.counts["lost"], 0)

    def test_an_acknowledged_send_never_received_is_lost(self):
        v = check(history(sends=[("a", 0, 1, 0), ("b", 0, 1, 0)], receives=[("a", 2, 3)]))
        self.assertTrue(failed(v))
        self.assertEqual(v.lost, ["b"])
        self.assertIn("lost: b", table(v))

    def test_a_message_never_sent_or_refused_must_not_be_received(self):
        v = check(history(sends=[("a", 0, 1, 4420)], receives=[("a", 2, 3), ("z", 2, 3)]))
        self.assertTrue(failed(v))
        self.assertEqual(v.phantom, ["a", "z"])

    def test_a_receive_started_after_the_acknowledged_delete_fails(self):
        v = check(history(sends=[("a", 0, 1, 0)], receives=[("a", 2, 3), ("a", 7, 8)],
                          deletes=[("a", 4, 6, 0)]))
        self.assertEqual(v.after_delete, ["a"])
        # One that started before the delete was answered may still return the message.
        v = check(history(sends=[("a", 0, 1, 0)], receives=[("a", 2, 3), ("a", 5, 8)],
                          deletes=[("a", 4, 6, 0)]))
        self.assertFalse(failed(v), table(v))
        # A delete that failed deletes nothing.
        v = check(history(sends=[("a", 0, 1, 0)], receives=[("a", 2, 3), ("a", 7, 8)],
                          deletes=[("a", 4, 6, None)]))
        self.assertFalse(failed(v), table(v))


if __name__ == "__main__":
    unittest.main()

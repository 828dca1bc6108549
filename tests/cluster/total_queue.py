"""The total-queue checker: what clients of one queue saw (each request's start and end on
the machine's monotonic clock, and its answer), judged against what a replicated queue must
guarantee:

  - every SendMessage answered code 0 is received at least once (none expire: the harness's
    queue keeps messages far longer than a run);
  - nothing is received that was never sent, or whose send was refused outright;
  - nothing is received by a request that started after the message's DeleteMessage was
    answered code 0;
  - a send without an answer (a node killed, paused or cut off under it) or answered 6000
    (no leader, or a leader that stepped down before its entry committed) is "unknown": it
    may or may not be there, and is never counted as lost.

Receiving one message more than once is allowed (CMQ delivers at least once): counted as
duplicates, not failures. Thread-safe: the workload's threads record into one History."""

import collections
import threading

UNKNOWN_CODES = (None, 6000)


class History:
    def __init__(self):
        self._lock = threading.Lock()
        self.sends = []     # (body, start, end, code or None)
        self.receives = []  # (body, start, end)
        self.deletes = []   # (body, start, end, code or None)

    def send(self, body, start, end, code):
        with self._lock:
            self.sends.append((body, start, end, code))

    def receive(self, body, start, end):
        with self._lock:
            self.receives.append((body, start, end))

    def delete(self, body, start, end, code):
        with self._lock:
            self.deletes.append((body, start, end, code))


Verdict = collections.namedtuple("Verdict", "counts lost phantom after_delete")


def check(history):
    """The counts (for the table) and the violations: bodies lost, received but never sent
    (or refused), and received after their delete was acknowledged."""
    acked, unknown, refused = set(), set(), set()
    for body, _, _, code in history.sends:
        if code == 0:
            acked.add(body)
        elif code in UNKNOWN_CODES:
            unknown.add(body)
        else:
            refused.add(body)
    unknown -= acked  # a body is sent once; this only guards a caller that retries one
    times_received = collections.Counter(body for body, _, _ in history.receives)
    received = set(times_received)
    deleted_at = {}
    for body, _, end, code in history.deletes:
        if code == 0:
            deleted_at[body] = min(end, deleted_at.get(body, end))
    after_delete = sorted({body for body, start, _ in history.receives
                           if body in deleted_at and start > deleted_at[body]})
    lost = sorted(acked - received)
    phantom = sorted(received - acked - unknown)
    counts = collections.OrderedDict([
        ("sent", len(history.sends)),
        ("acked", len(acked)),
        ("unknown", len(unknown)),
        ("refused", len(refused)),
        ("received", len(received)),
        ("unknown received", len(received & unknown)),
        ("lost", len(lost)),
        ("duplicates", sum(n - 1 for n in times_received.values())),
        ("never sent", len(phantom)),
        ("after delete", len(after_delete)),
    ])
    return Verdict(counts, lost, phantom, after_delete)


def failed(verdict):
    return bool(verdict.lost or verdict.phantom or verdict.after_delete)


def table(verdict):
    width = max(len(k) for k in verdict.counts)
    lines = ["%-*s  %d" % (width, k, v) for k, v in verdict.counts.items()]
    for what, bodies in (("lost", verdict.lost), ("never sent", verdict.phantom),
                         ("received after delete", verdict.after_delete)):
        if bodies:
            lines.append("%s: %s%s" % (what, " ".join(bodies[:20]), " ..." if len(bodies) > 20 else ""))
    return "\n".join(lines)

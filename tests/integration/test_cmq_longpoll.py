"""CMQ long polling (docs/API.md): a waiting ReceiveMessage is answered when a message
becomes receivable (a send, a delay ending, a visibility timeout ending), not at the end of
its polling wait; 2,000 waiting receives cost no thread each and are all answered;
max_long_polls bounds them (4420). wharf only.

Where a test needs a receive to be waiting on the server before it acts, it waits for the
admin listener's gauge `wharf_queue_long_polls_waiting` to count it. How fast a send wakes a
waiting receive is a figure for the benchmark (`wharf-bench queue`, its end-to-end
latency), not for these tests: their bounds only tell "woken" from "timed out"."""

import json
import resource
import selectors
import socket
import threading
import time
import unittest
import urllib.parse

from admin_client import MetricsMixin, with_metrics
from cmq_client import indexed
from wharf_fixture import HOST, QUIET_S, WAIT_S, QueueApiTestCase

WAITING = "wharf_queue_long_polls_waiting"


def _raise_fd_limit():
    # The broker inherits this limit when the test starts it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


_raise_fd_limit()


def raw_request(client, action, params):
    """A complete signed POST request, as bytes, for writing to a raw socket."""
    signed = client.signed_params(action, params)
    body = urllib.parse.urlencode(signed).encode()
    head = ("POST %s HTTP/1.1\r\nHost: %s\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: %d\r\n\r\n" % (client.path, client.host_header, len(body)))
    return head.encode() + body


class Waiter:
    """A ReceiveMessage (or any call) in a thread; join() gives (answer, answer time)."""

    def __init__(self, client, action, params):
        self.answer = None
        self.error = None
        self.t_answer = None
        self.thread = threading.Thread(target=self._run, args=(client, action, params),
                                       daemon=True)
        self.thread.start()

    def _run(self, client, action, params):
        try:
            self.answer = client.call(action, params)
        except Exception as e:  # reported by join()
            self.error = e
        self.t_answer = time.monotonic()

    def done(self):
        return not self.thread.is_alive()

    def join(self, timeout_s=WAIT_S):
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            raise AssertionError("receive not answered within %.1f s" % timeout_s)
        if self.error is not None:
            raise self.error
        return self.answer, self.t_answer


class LongPollTestCase(MetricsMixin, QueueApiTestCase):

    def waiter(self, q, wait, kind=None, **params):
        return Waiter(self.cmq(kind=kind), "ReceiveMessage",
                      dict(queueName=q, pollingWaitSeconds=wait, **params))

    def parked(self, start_waiters, count=1):
        """Calls start_waiters() and returns what it returns once `count` more receives wait
        on the server than before."""
        before = self.metric_now(WAITING)
        started = start_waiters()
        self.wait_for_metric(WAITING, lambda v: v >= before + count)
        return started



class LongPollTest(LongPollTestCase):
    listeners = ("queue-api", "queue-api-tls")

    def test_send_wakes_waiting_receive(self):
        for kind in ("queue-api", "queue-api-tls"):
            sender = self.cmq(kind=kind)
            for i in range(5):
                q = self.new_queue("wake")
                w = self.parked(lambda: self.waiter(q, 20, kind=kind))
                self.assertFalse(w.done(), "answered before any message: %r" % w.answer)
                msg_id = self.send(q, "wake %d" % i, client=sender)
                t_sent = time.monotonic()
                answer, t_answer = w.join()
                self.assertEqual(answer["code"], 0, answer)
                self.assertEqual(answer["msgId"], msg_id)
                # Woken by the send: its 20 s polling wait is far from over.
                self.assertLess(t_answer - t_sent, 10, kind)

    def test_batch_receive_waits_too(self):
        q = self.new_queue("bwake")
        w = self.parked(lambda: Waiter(self.cmq(), "BatchReceiveMessage",
                                       dict(queueName=q, numOfMsg=16, pollingWaitSeconds=20)))
        self.assertFalse(w.done())
        self.ok("BatchSendMessage", dict(queueName=q, **indexed("msgBody", ["a", "b"])))
        answer, _ = w.join()
        self.assertEqual(answer["code"], 0, answer)
        self.assertGreaterEqual(len(answer["msgInfoList"]), 1)

    def test_delay_ending_wakes_waiting_receive(self):
        q = self.new_queue("dwake")
        w = self.parked(lambda: self.waiter(q, 20))
        t_send = time.monotonic()  # the delay starts later, when the server takes the send
        msg_id = self.send(q, "delayed", delaySeconds=1)
        answer, t_answer = w.join(timeout_s=20)
        self.assertEqual(answer["msgId"], msg_id)
        # Not before the delay; woken by its end, well before the 20 s polling wait.
        self.assertTrue(1.0 <= t_answer - t_send < 10, t_answer - t_send)

    def test_visibility_timeout_ending_wakes_waiting_receive(self):
        q = self.new_queue("vwake", visibilityTimeout=1)
        msg_id = self.send(q, "comes back")
        t_receive = time.monotonic()  # the visibility timeout starts later, at the receive
        first = self.receive(q)
        self.assertEqual(first["msgId"], msg_id)
        answer, t_answer = self.waiter(q, 20).join(timeout_s=20)
        self.assertEqual(answer["msgId"], msg_id)
        self.assertEqual(answer["dequeueCount"], 2)
        self.assertTrue(1.0 <= t_answer - t_receive < 10, t_answer - t_receive)

    def test_polling_wait_ends_with_7000(self):
        q = self.new_queue("expire")
        t = time.monotonic()
        answer, t_answer = self.waiter(q, 2).join(timeout_s=20)
        self.assertEqual(answer["code"], 7000, answer)
        # Not before the wait is over (our clock started first); answered when it is.
        self.assertTrue(2.0 <= t_answer - t < 10, t_answer - t)

    def test_one_message_one_waiter(self):
        q = self.new_queue("fair")
        waiters = self.parked(lambda: [self.waiter(q, 20) for _ in range(3)], count=3)
        first = self.send(q, "only one")
        deadline = time.monotonic() + WAIT_S
        while not any(w.done() for w in waiters):
            self.assertLess(time.monotonic(), deadline, "no waiter answered")
            time.sleep(0.01)
        time.sleep(QUIET_S)
        done = [w for w in waiters if w.done()]
        self.assertEqual(len(done), 1, [w.answer for w in done])
        self.assertEqual(done[0].join()[0]["msgId"], first)
        ids = {self.send(q, "second"), self.send(q, "third")}
        got = {w.join()[0]["msgId"] for w in waiters if w is not done[0]}
        self.assertEqual(got, ids)

    def test_abandoned_long_poll_does_not_take_a_message(self):
        # A client that gives up waiting (its HTTP timeout is shorter than the polling
        # wait, or it was stopped) closes the connection. Its receive must not take the
        # next message: that message would stay invisible for the visibility timeout
        # (30 s here) while live consumers wait for it.
        # A broker of its own: the test watches its queue API connections go from two (its
        # client and the abandoned one) to one, which a class-wide broker's other clients
        # could disturb.
        b = self.new_broker(**with_metrics(listeners=("queue-api",)))
        api = self.cmq(broker=b)
        q = self.new_queue("abandoned", client=api)
        s = socket.create_connection((HOST, b.ports["queue-api"]), timeout=10)
        s.sendall(raw_request(api, "ReceiveMessage", dict(queueName=q, pollingWaitSeconds=20)))
        self.wait_for_metric(WAITING, lambda v: v == 1, broker=b)
        self.wait_for_metric("wharf_cmq_connections", lambda v: v == 2, broker=b)
        s.close()
        # The server saw the connection close, and marked its receive abandoned in that step.
        self.wait_for_metric("wharf_cmq_connections", lambda v: v == 1, broker=b)
        msg_id = self.send(q, "for a live consumer", client=api)
        a = self.receive(q, wait=0, client=api)
        self.assertEqual(a["code"], 0, "the message went to the closed connection's receive: %r"
                         % self.attributes(q, client=api))
        self.assertEqual(a["msgId"], msg_id)

    def test_2000_waiting_receives_cost_no_thread_each(self):
        n = 2000
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < n + 500:
            # Raise, never skip: a test that passes without running shows nothing.
            self.assertGreaterEqual(hard, n + 500, "needs %d file descriptors" % (n + 500))
            resource.setrlimit(resource.RLIMIT_NOFILE, (n + 500, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        q = self.new_queue("many")
        signer = self.cmq(kind="queue-api")
        self.attributes(q)  # the broker has served requests: its threads exist
        threads_before = self.broker.thread_count()

        waiting_before = self.metric_now(WAITING)
        sel = selectors.DefaultSelector()
        conns = []
        try:
            for i in range(n):
                request = raw_request(signer, "ReceiveMessage",
                                      dict(queueName=q, pollingWaitSeconds=30))
                s = socket.create_connection((HOST, signer.port), timeout=10)
                s.sendall(request)
                s.setblocking(False)
                conn = RawResponse(s)
                conns.append(conn)
                sel.register(s, selectors.EVENT_READ, conn)
            # All parked: none answered, and the broker has (about) the threads it had.
            self.wait_for_metric(WAITING, lambda v: v >= waiting_before + n, timeout_s=30)
            early = sel.select(timeout=0)
            if early:
                sample = []
                for key, _ in early[:3]:
                    try:
                        sample.append(key.data.read())
                    except Exception as e:  # closed, not HTTP 200, ...
                        sample.append(repr(e))
                self.fail("%d of %d receives answered before any message was sent, e.g. %r"
                          % (len(early), n, sample))
            threads_during = self.broker.thread_count()
            self.assertLessEqual(threads_during - threads_before, 4,
                                 "threads: %d before, %d with %d receives waiting"
                                 % (threads_before, threads_during, n))

            sender = self.cmq(kind="queue-api")
            sent = {}
            for b in range(n // 16):
                bodies = ["m%04d" % (b * 16 + i) for i in range(16)]
                a = self.ok("BatchSendMessage", dict(queueName=q, **indexed("msgBody", bodies)),
                            client=sender)
                sent.update({m["msgId"]: body for m, body in zip(a["msgList"], bodies)})
            self.assertEqual(len(sent), n)

            got = {}
            deadline = time.monotonic() + 20
            pending = n
            while pending:
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, "%d receives not answered" % pending)
                for key, _ in sel.select(timeout=left):
                    conn = key.data
                    answer = conn.read()
                    if answer is None:
                        continue
                    sel.unregister(conn.sock)
                    conn.sock.close()
                    pending -= 1
                    self.assertEqual(answer.get("code"), 0, answer)
                    self.assertNotIn(answer["msgId"], got, "delivered twice")
                    got[answer["msgId"]] = answer["msgBody"]
            self.assertEqual(got, sent)
        finally:
            for conn in conns:
                conn.sock.close()
            sel.close()


class RawResponse:
    """Reads one HTTP/1.1 response (Content-Length or chunked) from a non-blocking
    socket; read() returns the decoded JSON once complete, else None."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def read(self):
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError("connection closed without a complete answer: %r" % self.buf)
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = self.buf[:end].decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        rest = self.buf[end + 4:]
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                eol = rest.find(b"\r\n")
                if eol < 0:
                    return None
                size = int(rest[:eol].split(b";")[0], 16)
                if size == 0:
                    break
                if len(rest) < eol + 2 + size + 2:
                    return None
                body += rest[eol + 2:eol + 2 + size]
                rest = rest[eol + 2 + size + 2:]
        else:
            length = int(headers.get("content-length", "0"))
            if len(rest) < length:
                return None
            body = rest[:length]
        if status != 200:
            raise AssertionError("HTTP %d: %r" % (status, body[:300]))
        return json.loads(body)


class MaxLongPollsTest(LongPollTestCase):
    """queue_api.max_long_polls bounds the waiting receives: beyond it, 4420."""
    listeners = ("queue-api",)
    queue_api_config = {"max_long_polls": 2}

    def test_beyond_max_long_polls_4420(self):
        q = self.new_queue("bounded")
        waiters = self.parked(lambda: [self.waiter(q, 20) for _ in range(2)], count=2)
        t = time.monotonic()
        self.fails(4420, "ReceiveMessage", dict(queueName=q, pollingWaitSeconds=20))
        self.assertLess(time.monotonic() - t, 10, "refused only after waiting")
        # Not a long poll: answered at once.
        self.assertEqual(self.receive(q, wait=0)["code"], 7000)
        ids = {self.send(q, "a"), self.send(q, "b")}
        self.assertEqual({w.join()[0]["msgId"] for w in waiters}, ids)
        # Slots are free again.
        w = self.parked(lambda: self.waiter(q, 20))
        msg_id = self.send(q, "c")
        self.assertEqual(w.join()[0]["msgId"], msg_id)


if __name__ == "__main__":
    unittest.main()

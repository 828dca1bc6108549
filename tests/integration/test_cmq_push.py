"""CMQ HTTP push (docs/API.md): a topic's http subscriptions are POSTed to a local HTTP
server started by the test: headers, JSON and SIMPLIFIED bodies, tag filters, retry with
EXPONENTIAL_DECAY_RETRY (1 s, 2 s, ...) and BACKOFF_RETRY (10-20 s, slow), and a pending
retry that survives kill -9 (slow). wharf only.

PushTest is the fast part; PushSlowTest (ctest label slow) the rest."""

import http.server
import json
import queue
import threading
import time
import unittest

from cmq_client import indexed
from wharf_fixture import HOST, QUIET_S, WAIT_S, QueueApiTestCase, unique


class Push:
    """One request the push server received."""

    def __init__(self, method, path, headers, body, status):
        self.time = time.monotonic()
        self.method = method
        self.path = path
        self.headers = headers  # lower-case names
        self.body = body
        self.status = status    # what the server answered

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "Push(%s %s %r -> %d)" % (self.method, self.path, self.body[:80], self.status)


class PushServer:
    """A ThreadingHTTPServer on loopback that records every request per path and answers
    200, or the statuses planned for a path with fail()."""

    def __init__(self):
        self._queues = {}
        self._plans = {}
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self):
                body = self._read_body()
                status = owner._next_status(self.path)
                owner._queue(self.path).put(Push(self.command, self.path,
                                                 {k.lower(): v for k, v in self.headers.items()},
                                                 body, status))
                reply = b"ok" if 200 <= status < 300 else b"failing on purpose"
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def _read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            do_POST = do_PUT = do_GET = _any

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://%s:%d%s" % (HOST, self.port, path)

    def fail(self, path, statuses):
        """The next requests to `path` are answered with `statuses`, in order."""
        with self._lock:
            self._plans[path] = list(statuses)

    def _next_status(self, path):
        with self._lock:
            plan = self._plans.get(path)
            return plan.pop(0) if plan else 200

    def _queue(self, path):
        with self._lock:
            return self._queues.setdefault(path, queue.Queue())

    def expect(self, path, timeout_s=WAIT_S):
        try:
            return self._queue(path).get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError("no push to %s within %.0f s" % (path, timeout_s)) from None

    def expect_none(self, path, timeout_s=QUIET_S):
        try:
            p = self._queue(path).get(timeout=timeout_s)
        except queue.Empty:
            return
        raise AssertionError("unexpected push: %r" % p)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class PushTestBase(QueueApiTestCase):
    listeners = ("queue-api",)

    def setUp(self):
        super().setUp()
        self.push = PushServer()
        self.addCleanup(self.push.close)

    def new_topic(self, **attributes):
        name = unique("pt")
        self.ok("CreateTopic", dict(topicName=name, **attributes))
        return name

    def subscribe_http(self, topic, path=None, client=None, **params):
        """An http subscription of `topic` to a fresh path of the push server; returns
        (subscription name, path)."""
        path = path or "/" + unique("push")
        name = unique("hs")
        self.ok("Subscribe", dict(topicName=topic, subscriptionName=name, protocol="http",
                                  endpoint=self.push.url(path), **params), client=client)
        return name, path

    def publish(self, topic, body, tags=(), client=None):
        return self.ok("PublishMessage", dict(topicName=topic, msgBody=body,
                                              **indexed("msgTag", list(tags))),
                       client=client)["msgId"]


class PushTest(PushTestBase):

    def test_json_push(self):
        topic = self.new_topic()
        sub, path = self.subscribe_http(topic)
        body = 'hello {"json"} & ü'
        t0 = time.time()
        msg_id = self.publish(topic, body, tags=["t1", "t2"])
        p = self.push.expect(path)
        self.assertEqual(p.method, "POST")
        self.assertEqual(p.status, 200)
        self.assertTrue(p.headers.get("x-cmq-request-id"), p.headers)
        self.assertEqual(p.headers.get("x-cmq-message-id"), msg_id)
        tag_header = p.headers.get("x-cmq-message-tag", "")
        self.assertIn("t1", tag_header)
        self.assertIn("t2", tag_header)
        j = p.json()
        for field in ("TopicOwner", "topicName", "subscriptionName", "msgId", "msgBody",
                      "publishTime"):
            self.assertIn(field, j)
        self.assertEqual(j["topicName"], topic)
        self.assertEqual(j["subscriptionName"], sub)
        self.assertEqual(j["msgId"], msg_id)
        self.assertEqual(j["msgBody"], body)
        self.assertIsInstance(j["publishTime"], int)
        self.assertLessEqual(abs(j["publishTime"] - t0), 5, j)  # unix seconds
        self.push.expect_none(path)  # answered 200: not sent again

    def test_simplified_push(self):
        topic = self.new_topic()
        _, path = self.subscribe_http(topic, notifyContentFormat="SIMPLIFIED")
        body = "raw body, not JSON: é"
        msg_id = self.publish(topic, body, tags=["only"])
        p = self.push.expect(path)
        self.assertEqual(p.method, "POST")
        self.assertEqual(p.body, body.encode())
        self.assertEqual(p.headers.get("x-cmq-message-id"), msg_id)
        self.assertTrue(p.headers.get("x-cmq-request-id"))
        self.assertIn("only", p.headers.get("x-cmq-message-tag", ""))

    def test_every_subscription_gets_each_message(self):
        topic = self.new_topic()
        _, path1 = self.subscribe_http(topic)
        _, path2 = self.subscribe_http(topic, notifyContentFormat="SIMPLIFIED")
        ids = [m["msgId"] for m in self.ok("BatchPublishMessage", dict(
            topicName=topic, **indexed("msgBody", ["m1", "m2", "m3"])))["msgList"]]
        got1 = {}
        for _ in ids:
            j = self.push.expect(path1).json()
            got1[j["msgId"]] = j["msgBody"]
        self.assertEqual(got1, dict(zip(ids, ["m1", "m2", "m3"])))
        got2 = {}
        for _ in ids:
            p = self.push.expect(path2)
            got2[p.headers["x-cmq-message-id"]] = p.body.decode()
        self.assertEqual(got2, got1)

    def test_tag_filter_applies_to_http(self):
        topic = self.new_topic()
        _, path = self.subscribe_http(topic, **indexed("filterTag", ["x"]))
        self.publish(topic, "untagged")
        self.publish(topic, "tag y", tags=["y"])
        self.publish(topic, "tag x", tags=["x", "z"])
        self.assertEqual(self.push.expect(path).json()["msgBody"], "tag x")
        self.push.expect_none(path)

    def test_any_2xx_is_success(self):
        topic = self.new_topic()
        _, path = self.subscribe_http(topic)
        self.push.fail(path, [204])
        self.publish(topic, "no content")
        self.assertEqual(self.push.expect(path).status, 204)
        # The first retry would come after 1 s.
        self.push.expect_none(path, timeout_s=2.5)

    def test_exponential_decay_retry(self):
        topic = self.new_topic()
        _, path = self.subscribe_http(topic, notifyStrategy="EXPONENTIAL_DECAY_RETRY")
        self.push.fail(path, [500, 404])
        msg_id = self.publish(topic, "retried")
        attempts = [self.push.expect(path, timeout_s=WAIT_S + 5) for _ in range(3)]
        self.assertEqual([p.status for p in attempts], [500, 404, 200])
        for p in attempts:
            self.assertEqual(p.json()["msgId"], msg_id)
            self.assertEqual(p.json()["msgBody"], "retried")
        gap1 = attempts[1].time - attempts[0].time
        gap2 = attempts[2].time - attempts[1].time
        # Lower bounds are exact (a retry is due its delay after the failure was handled);
        # upper ones allow a loaded machine.
        self.assertTrue(0.8 <= gap1 <= 4.0, "first retry after %.2f s, expected ~1 s" % gap1)
        self.assertTrue(1.7 <= gap2 <= 5.0, "second retry after %.2f s, expected ~2 s" % gap2)

    def test_failing_endpoint_does_not_block_others(self):
        topic = self.new_topic()
        _, bad = self.subscribe_http(topic)
        _, good = self.subscribe_http(topic)
        self.push.fail(bad, [500] * 10)
        self.publish(topic, "m1")
        self.publish(topic, "m2")
        self.assertEqual(sorted(self.push.expect(good).json()["msgBody"] for _ in range(2)),
                         ["m1", "m2"])

    def test_unsubscribe_stops_retries(self):
        topic = self.new_topic()
        sub, path = self.subscribe_http(topic)
        self.push.fail(path, [500] * 10)
        self.publish(topic, "doomed")
        self.assertEqual(self.push.expect(path).status, 500)
        self.ok("Unsubscribe", dict(topicName=topic, subscriptionName=sub))
        # The retry was due 1 s after the first attempt.
        self.push.expect_none(path, timeout_s=3)


class PushSlowTest(PushTestBase):

    def test_backoff_retry(self):
        topic = self.new_topic()
        _, path = self.subscribe_http(topic, notifyStrategy="BACKOFF_RETRY")
        self.push.fail(path, [500])
        msg_id = self.publish(topic, "backoff")
        first = self.push.expect(path)
        self.assertEqual(first.status, 500)
        second = self.push.expect(path, timeout_s=30)
        gap = second.time - first.time
        # 10-20 s; the upper bound allows a loaded machine.
        self.assertTrue(9.5 <= gap <= 25.0, "BACKOFF_RETRY retried after %.1f s (10-20 s)" % gap)
        self.assertEqual(second.status, 200)
        self.assertEqual(second.json()["msgId"], msg_id)

    def test_pending_retry_survives_kill_9(self):
        broker = self.new_broker(listeners=("queue-api",))
        api = self.cmq(broker=broker)
        topic = unique("pt")
        self.ok("CreateTopic", dict(topicName=topic), client=api)
        _, path = self.subscribe_http(topic, client=api)
        self.push.fail(path, [500, 500])
        msg_id = self.publish(topic, "survives", client=api)
        self.assertEqual(self.push.expect(path).status, 500)
        self.assertEqual(self.push.expect(path, timeout_s=WAIT_S).status, 500)
        # The next attempt is due ~2 s later; kill -9 now and start again on the same data.
        broker.kill()
        broker.start()
        p = self.push.expect(path, timeout_s=20)
        self.assertEqual(p.status, 200)
        self.assertEqual(p.json()["msgId"], msg_id)
        self.assertEqual(p.json()["msgBody"], "survives")
        # A message published (code 0) just before a kill -9 is pushed after the restart.
        api = self.cmq(broker=broker)
        self.push.fail(path, [500] * 100)
        msg_id2 = self.publish(topic, "published then killed", client=api)
        broker.kill()
        self.push.fail(path, [])
        broker.start()
        # (The first message may come again: its success may not have been stored before
        # the kill. At least once.)
        deadline = time.monotonic() + 20
        while True:
            p = self.push.expect(path, timeout_s=max(deadline - time.monotonic(), 0.1))
            self.assertIn(p.json()["msgId"], (msg_id, msg_id2))
            if p.status == 200 and p.json()["msgId"] == msg_id2:
                break
        self.assertEqual(p.json()["msgBody"], "published then killed")


if __name__ == "__main__":
    unittest.main()

"""The admin listener as the integration tests use it: an `ops` user for its HTTP Basic
credentials, requests, and /metrics parsed from the Prometheus text format. A test that
must wait for something the broker does (a receive parked, a connection gone) waits for
the gauge that counts it instead of sleeping."""

import base64
import http.client
import re
import subprocess

from wharf_fixture import HOST, WAIT_S, WHARF_BIN, wait_until

OPS_PASSWORD = "ops-secret"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def ops_entry(user="ops", password=OPS_PASSWORD):
    """The auth.users entry `wharf passwd` makes for `user`."""
    out = subprocess.run([WHARF_BIN, "passwd", "--iterations", "1000", user],
                         input=password + "\n", capture_output=True, text=True,
                         check=True).stdout
    return out[2:].strip()


def parse_exposition(text):
    """{(name, frozenset(labels)): value} and {family: type}; fails on a malformed line or a
    sample whose family has no TYPE line before it."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, "sample %s before its TYPE" % name
        parsed = frozenset(LABEL.findall(labels))
        assert labels == "" or parsed, "bad labels in %r" % line
        samples[(name, parsed)] = value
    return samples, types


def admin_get(broker, path, user="ops", password=OPS_PASSWORD, method="GET", body=None):
    """(status, Content-Type, body, response) of one request to `broker`'s admin listener."""
    conn = http.client.HTTPConnection(HOST, broker.ports["admin"], timeout=10)
    try:
        headers = {}
        if user is not None:
            token = base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
            headers["Authorization"] = "Basic " + token
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read().decode(), r
    finally:
        conn.close()


def scrape(broker):
    """`broker`'s /metrics, parsed: ({(name, frozenset(labels)): value}, {family: type})."""
    status, content_type, body, _ = admin_get(broker, "/metrics")
    assert status == 200, "%s %s" % (status, body)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8", content_type
    return parse_exposition(body)


def metric(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def with_metrics(listeners=("mqtt",), **options):
    """Broker (or new_broker()) keyword arguments plus an admin listener with the `ops`
    user, for scrape() and wait_for_metric()."""
    return dict(options, listeners=tuple(listeners) + ("admin",),
                auth="  users:\n    - %s\n" % ops_entry(),
                listener_keys={"admin": "users: [ops]"})


def wait_for_metric(broker, name, condition, timeout_s=WAIT_S, **labels):
    """Waits until `condition(value)` holds for the sample `name{labels}` (0 while absent);
    returns that value."""
    seen = []

    def holds():
        samples, _ = scrape(broker)
        seen[:] = [samples.get((name, frozenset(labels.items())), 0.0)]
        return condition(seen[0])

    wait_until(holds, timeout_s=timeout_s, what="%s%s (last value: %s)" % (name, labels or "", seen))
    return seen[0]


class MetricsMixin:
    """For a BrokerTestCase: the class's broker also gets an admin listener with the `ops`
    user, and tests can wait for its gauges."""

    @classmethod
    def setUpClass(cls):
        options = with_metrics(cls.listeners)
        cls.listeners = options.pop("listeners")
        cls.broker_options = dict(cls.broker_options, **options)
        super().setUpClass()

    def wait_for_metric(self, name, condition, broker=None, timeout_s=WAIT_S, **labels):
        return wait_for_metric(broker or self.broker, name, condition, timeout_s=timeout_s, **labels)

    def metric_now(self, name, broker=None, **labels):
        """The sample's value now (0 while absent)."""
        return scrape(broker or self.broker)[0].get((name, frozenset(labels.items())), 0.0)

#!/usr/bin/env python3
"""Side-by-side benchmark of wharf and Mosquitto on loopback, in one run.

Starts wharf and Debian's mosquitto (persistence on, as documented in the README) on free
loopback ports with temporary data directories, runs the same wharf-bench scenarios against
each, alternating broker by broker within every round, and prints a table with each figure
and the ratio wharf / Mosquitto. Broker CPU time comes from /proc/PID/stat (utime + stime)
around each run, memory from /proc/PID/status (VmRSS) before and while the idle connections
are held. The wharf-only figures (the CMQ queue API) follow in a second table.

usage: bench/compare.py [--wharf build/wharf] [--bench build/wharf-bench] [--rounds 2]
                        [--duration 5] [--connections 19000] [--wharf-threads 1] [--json FILE]

Both brokers get one I/O thread by default (--wharf-threads 1), so the table compares them
per core; the bench runs one thread per role beside them on the same machine.
"""
import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from free_port import free_port  # noqa: E402,F401 (bench/sessions.py takes it from here too)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def wait_port(port, proc, log_path, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("broker exited at start:\n" + open(log_path).read())
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("broker did not listen on %d:\n%s" % (port, open(log_path).read()))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def raise_file_limit():
    """Children (brokers, bench) inherit the hard limit: thousands of idle connections need it."""
    import resource
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Broker:
    def __init__(self, name, argv, port, workdir, log_path, extra_ports=(), ready_timeout=15.0):
        self.name, self.port = name, port
        self.log_path = log_path
        began = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=workdir, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)
        for p in (port, *extra_ports):
            wait_port(p, self.proc, log_path, ready_timeout)
        self.ready_s = time.monotonic() - began  # from exec until every port accepted

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_certificate(workdir):
    """A self-signed ECDSA P-256 server certificate for 127.0.0.1; the bench trusts it as its CA."""
    key, cert = os.path.join(workdir, "server.key"), os.path.join(workdir, "server.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return {"key": key, "cert": cert}


def start_wharf(binary, workdir, threads, name="wharf", tls=None, extra_config=""):
    """wharf with an MQTT and a queue API listener; with tls, the MQTT listener is MQTT over TLS.
    `extra_config`: more top-level YAML sections, appended to the config file."""
    port, api_port = free_port(), free_port()
    data = os.path.join(workdir, name + "-data")
    os.mkdir(data)
    config = os.path.join(workdir, name + ".yaml")
    mqtt_tls = ", tls: {cert_file: %s, key_file: %s}" % (tls["cert"], tls["key"]) if tls else ""
    with open(config, "w") as f:
        f.write(
            "data_dir: %s\n"
            "listeners:\n"
            '  - {type: mqtt, bind: "127.0.0.1:%d", anonymous: true%s}\n'
            '  - {type: queue-api, bind: "127.0.0.1:%d"}\n'
            "queue_api:\n"
            "  credentials:\n"
            "    - {secret_id: compare, secret_key: compare-secret}\n"
            "io_threads: %d\n"
            "mqtt:\n"
            "  max_queued_messages: 1000000\n" % (data, port, mqtt_tls, api_port, threads) + extra_config)
    broker = Broker(name, [binary, "--config", config], port, workdir, os.path.join(workdir, name + ".log"),
                    extra_ports=(api_port,))
    broker.api_port = api_port
    return broker


def start_mosquitto(workdir, name="mosquitto", tls=None):
    port = free_port()
    data = os.path.join(workdir, name + "-data") + "/"
    os.mkdir(data)
    config = os.path.join(workdir, name + ".conf")
    # Persistence as documented: the in-memory store is written to disk every
    # autosave_interval seconds (and at exit) — Mosquitto acknowledges before any fsync.
    # The queue bound matches wharf's mqtt.max_queued_messages above. Started as root,
    # Mosquitto would switch to the user "mosquitto", who may not read this 0700 directory
    # (persistence, certificate): `user` keeps it the user that runs the script.
    with open(config, "w") as f:
        f.write("user %s\nlistener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s\n"
                "max_queued_messages 1000000\nlog_dest stdout\nlog_type error\nlog_type warning\n"
                % (pwd.getpwuid(os.getuid()).pw_name, port, data))
        if tls:
            f.write("certfile %s\nkeyfile %s\n" % (tls["cert"], tls["key"]))
    return Broker(name, ["mosquitto", "-c", config], port, workdir, os.path.join(workdir, name + ".log"))


def run_bench(bench, args):
    out = subprocess.run([bench, *args, "--json"], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sys.exit("wharf-bench %s failed (%d):\n%s" % (" ".join(args), out.returncode, out.stderr[-4000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def pubsub(bench, broker, duration, scenario, qos, publishers=1, subscribers=1, rate=0, offline=False,
           subscribe_filter=None):
    args = ["pub", "--port", str(broker.port), "--scenario", scenario, "--qos", str(qos), "--publishers",
            str(publishers), "--subscribers", str(subscribers), "--size", "64", "--duration", str(duration),
            "--drain", "60" if offline else "3"]
    if subscribe_filter:
        args += ["--filter", subscribe_filter]
    if rate:
        args += ["--rate", str(int(rate))]
    if offline:
        args += ["--offline"]
    cpu_before = cpu_seconds(broker.proc.pid)
    r = run_bench(bench, args)
    cpu = cpu_seconds(broker.proc.pid) - cpu_before
    r["broker_cpu_us_per_msg"] = cpu * 1e6 / r["received"] if r["received"] else float("nan")
    return r


def idle_connections(bench, broker, connections, tls=None):
    """RSS delta per idle connection: sampled once every connection is up and held."""
    before = rss_kib(broker.proc.pid)
    hold = 6.0
    tls_args = ["--tls", "--ca", tls["cert"]] if tls else []
    proc = subprocess.Popen([bench, "conn", "--port", str(broker.port), "--connections", str(connections),
                             "--rate", "10000", "--hold", str(hold), "--json", *tls_args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The bench prints "[... hold]" progress lines once the connect phase is over.
    held_rss = None
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        if "hold]" in line and held_rss is None:
            time.sleep(hold / 2)
            held_rss = rss_kib(broker.proc.pid)
        if time.monotonic() > deadline:
            break
    out, _ = proc.communicate(timeout=60)
    r = json.loads(out.strip().splitlines()[-1])
    if held_rss is None or r["connected"] == 0:
        sys.exit("%s: idle connection run failed: %s" % (broker.name, r))
    r["rss_delta_bytes_per_conn"] = (held_rss - before) * 1024 / r["connected"]
    return r


def queue_api(bench, broker, duration, extra_args=()):
    return run_bench(bench, ["queue", "--endpoint", "http://127.0.0.1:%d" % broker.api_port, "--secret-id", "compare",
                             "--secret-key", "compare-secret", "--batch", "16", "--producers", "4", "--consumers",
                             "16", "--size", "64", "--duration", str(duration), *extra_args])


def with_cpu(broker, run, rate_key, count_key):
    """(messages a second, wharf CPU microseconds per message) of one run."""
    before = cpu_seconds(broker.proc.pid)
    r = run()
    cpu = cpu_seconds(broker.proc.pid) - before
    if r.get("errors"):
        sys.exit("%s: %d errors: %s" % (broker.name, r["errors"], r))
    return r[rate_key], (cpu * 1e6 / r[count_key] if r[count_key] else float("nan"))


def alternate(brokers, workloads, rounds):
    """Runs every workload on every broker, alternating, `rounds` times. `brokers`: {label:
    broker}; `workloads`: {name: run(broker) -> (msg/s, CPU us/msg)}. Returns {(workload,
    label): [(msg/s, CPU us/msg) per round]}, printing each run."""
    results = {(w, label): [] for w in workloads for label in brokers}
    for rnd in range(rounds):
        for w, run in workloads.items():
            for label, broker in brokers.items():
                rate, cpu_us = run(broker)
                results[(w, label)].append((rate, cpu_us))
                print("round %d %-46s %-9s %9.0f msg/s  %6.1f us CPU/msg" % (rnd + 1, w, label, rate, cpu_us),
                      file=sys.stderr)
    return results


def cmq_workload(a):
    """CMQ send+receive+delete (queue_api) as an alternate() workload; `a` has bench, duration."""
    return lambda b: with_cpu(b, lambda: queue_api(a.bench, b, a.duration), "deleted_per_s", "deleted")


def mqtt_workload(a, qos, offline=False, scenario="fanin", publishers=4, subscribers=1):
    """MQTT pub/sub as an alternate() workload: by default fan-in, 4 publishers to 1
    subscriber (offline: into persistent sessions)."""
    return lambda b: with_cpu(b, lambda: pubsub(a.bench, b, a.duration, scenario, qos, publishers=publishers,
                                                 subscribers=subscribers, offline=offline), "received_per_s", "received")


def ratio_run(workdir, wharfs, workloads, rounds, title):
    """Starts each of `wharfs` ({label: (binary, extra config)}, two I/O threads each) in
    `workdir`, runs alternate() and prints `title` and ratio_table(); stops them and removes
    `workdir` whatever happens."""
    brokers = {}
    try:
        for label, (binary, extra) in wharfs.items():
            brokers[label] = start_wharf(os.path.abspath(binary), workdir, 2, name="wharf-" + label,
                                         extra_config=extra)
        results = alternate(brokers, workloads, rounds)
        print(title)
        ratio_table(list(brokers), workloads, results)
    finally:
        for broker in brokers.values():
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def ratio_table(labels, workloads, results):
    """A Markdown table of alternate()'s medians for two brokers, the second over the first."""
    first, second = labels
    print("| workload | %s msg/s | %s msg/s | ratio | %s CPU us/msg | %s CPU us/msg | ratio |"
          % (first, second, first, second))
    print("|---|---|---|---|---|---|---|")
    for w in workloads:
        rate = [statistics.median(r for r, _ in results[(w, label)]) for label in labels]
        cpu = [statistics.median(c for _, c in results[(w, label)]) for label in labels]
        print("| %s | %.0f | %.0f | %.2f | %.1f | %.1f | %.2f |" % (w, rate[0], rate[1], rate[1] / rate[0],
                                                                  cpu[0], cpu[1], cpu[1] / cpu[0]))


def best(results, key, higher_is_better=True):
    values = [r[key] for r in results]
    return max(values) if higher_is_better else min(values)


def binaries_parser(doc):
    """An argument parser with --wharf and --bench, defaulting to the build tree's binaries."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--wharf", default=os.path.join(here, "..", "build", "wharf"))
    parser.add_argument("--bench", default=os.path.join(here, "..", "build", "wharf-bench"))
    return parser


def main():
    parser = binaries_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--connections", type=int, default=19000)
    parser.add_argument("--wharf-threads", type=int, default=1)
    parser.add_argument("--json", help="also write every raw result here")
    a = parser.parse_args()
    if not shutil.which("mosquitto"):
        sys.exit("mosquitto is not installed (Debian package mosquitto)")
    raise_file_limit()

    workdir = tempfile.mkdtemp(prefix="wharf-compare-")
    brokers = []
    try:
        brokers = [start_wharf(os.path.abspath(a.wharf), workdir, a.wharf_threads), start_mosquitto(workdir)]
        raw = {b.name: {} for b in brokers}

        def each_round(key, fn):
            for rnd in range(a.rounds):
                for b in brokers:
                    r = fn(b)
                    raw[b.name].setdefault(key, []).append(r)
                    print("round %d %-9s %-16s %s" % (rnd + 1, b.name, key, summary(key, r)), file=sys.stderr)

        # First, on fresh brokers: a later run's freed memory would hide part of the cost.
        for b in brokers:
            r = idle_connections(a.bench, b, a.connections)
            raw[b.name]["idle_conn"] = [r]
            print("          %-9s %-16s %s" % (b.name, "idle_conn", summary("idle_conn", r)), file=sys.stderr)
        # MQTT over TLS on a second pair of fresh brokers, each with only that run.
        tls = make_certificate(workdir)
        for name, start in (("wharf", lambda: start_wharf(os.path.abspath(a.wharf), workdir, a.wharf_threads,
                                                          "wharf-tls", tls)),
                            ("mosquitto", lambda: start_mosquitto(workdir, "mosquitto-tls", tls))):
            b = start()
            try:
                r = idle_connections(a.bench, b, a.connections, tls)
            finally:
                b.stop()
            raw[name]["idle_conn_tls"] = [r]
            print("          %-9s %-16s %s" % (name, "idle_conn_tls", summary("idle_conn", r)), file=sys.stderr)
        each_round("qos0_p2p", lambda b: pubsub(a.bench, b, a.duration, "p2p", 0))
        each_round("qos0_fanout", lambda b: pubsub(a.bench, b, a.duration, "fanout", 0, subscribers=8))
        each_round("qos1_p2p", lambda b: pubsub(a.bench, b, a.duration, "p2p", 1))
        # Latency at half of Mosquitto's best QoS 1 rate, the same offered rate for both.
        half_rate = best(raw["mosquitto"]["qos1_p2p"], "received_per_s") / 2
        each_round("qos1_p2p_half", lambda b: pubsub(a.bench, b, a.duration, "p2p", 1, rate=half_rate))
        # Into stored sessions: 4 publishers, each to its own offline persistent subscriber.
        each_round("qos1_offline", lambda b: pubsub(a.bench, b, a.duration, "p2p", 1, publishers=4, subscribers=4,
                                                    offline=True))
        wharf = brokers[0]
        raw["wharf"]["queue_batch16"] = [queue_api(a.bench, wharf, a.duration) for _ in range(a.rounds)]
    finally:
        for b in brokers:
            b.stop()

    print(table(raw, half_rate, a))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)
    shutil.rmtree(workdir, ignore_errors=True)


def summary(key, r):
    if key == "qos1_offline":
        return "%.0f msg/s acked, %d received after reconnect, lost %d" % (r["acked_per_s"], r["received"], r["lost"])
    if key == "idle_conn":
        return "%d connected, %.0f B/conn" % (r["connected"], r["rss_delta_bytes_per_conn"])
    return "%.0f msg/s received, lost %d, p99 %.0f us, broker CPU %.2f us/msg" % (
        r["received_per_s"], r["lost"], r["latency_us"]["p99"], r["broker_cpu_us_per_msg"])


def table(raw, half_rate, a):
    w, m = raw["wharf"], raw["mosquitto"]
    rows = []

    def row(name, key, field, higher_is_better, fmt="%.0f", sub=None):
        def pick(results):
            values = [(r[field] if sub is None else r[field][sub]) for r in results]
            return max(values) if higher_is_better else min(values)
        wv, mv = pick(w[key]), pick(m[key])
        rows.append((name, fmt % wv, fmt % mv, "%.2f" % (wv / mv) if mv else "-"))

    row("QoS 0 p2p, msg/s", "qos0_p2p", "received_per_s", True)
    row("QoS 0 p2p, broker CPU us/msg", "qos0_p2p", "broker_cpu_us_per_msg", False, "%.2f")
    row("QoS 0 fan-out 1->8, deliveries/s", "qos0_fanout", "received_per_s", True)
    row("QoS 0 fan-out, broker CPU us/delivery", "qos0_fanout", "broker_cpu_us_per_msg", False, "%.2f")
    row("QoS 1 p2p, msg/s", "qos1_p2p", "received_per_s", True)
    row("QoS 1 p2p at %.0f msg/s, p99 us" % half_rate, "qos1_p2p_half", "latency_us", False, sub="p99")
    row("QoS 1 into 4 offline sessions, acked msg/s", "qos1_offline", "acked_per_s", True)
    row("  of which lost after reconnect", "qos1_offline", "lost", False)
    row("idle connections held", "idle_conn", "connected", True)
    row("RSS per idle connection, bytes", "idle_conn", "rss_delta_bytes_per_conn", False)
    row("idle MQTT over TLS connections held", "idle_conn_tls", "connected", True)
    row("RSS per idle TLS connection, bytes", "idle_conn_tls", "rss_delta_bytes_per_conn", False)
    widths = [max(len(r[i]) for r in rows + [("figure", "wharf", "mosquitto", "wharf/mosq")]) for i in range(4)]
    line = lambda cells: "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(cells)) + " |"
    out = [line(("figure", "wharf", "mosquitto", "wharf/mosq")), "|" + "|".join("-" * (x + 2) for x in widths) + "|"]
    out += [line(r) for r in rows]
    q = max(w["queue_batch16"], key=lambda r: r["deleted_per_s"])
    out += ["", "wharf only, CMQ queue API over HTTP, batches of 16, 4 producers + 16 consumers (durable: fsync before code 0):",
            "  send %.0f msg/s, receive+delete %.0f msg/s, send p99 %.1f ms, errors %d" % (
                q["sent_per_s"], q["deleted_per_s"], q["send_latency_us"]["p99"] / 1000, q["errors"])]
    out += ["", "best of %d rounds, %.0f s each; wharf io_threads %d; %d cores; %s" % (
        a.rounds, a.duration, a.wharf_threads, os.cpu_count(), time.strftime("%Y-%m-%d"))]
    return "\n".join(out)


if __name__ == "__main__":
    main()

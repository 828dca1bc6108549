"""wharf's command line around the config file: `wharf check-config FILE`, `wharf passwd`,
`wharf --print-default-config`, and `wharf --config FILE` refusing a bad file. Each error
kind is checked as the exact line an operator sees (FILE:LINE:COL: message). No broker
is started (except by mistake, which the timeouts catch), so the module takes seconds."""

import base64
import hashlib
import os
import re
import socket
import ssl
import subprocess
import tempfile
import unittest
from pathlib import Path

from wharf_fixture import REPO_ROOT, WHARF_BIN, free_port, require_wharf, wait_until

# A broker wrongly started by `--config BADFILE` would run until killed.
RUN_TIMEOUT_S = 10


def wharf(*args, stdin=None, env=None):
    """Runs the wharf binary; returns the CompletedProcess (text, both streams captured)."""
    return subprocess.run([WHARF_BIN, *args], input=stdin, env=env, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)


def env_without(*names):
    env = dict(os.environ)
    for name in names:
        env.pop(name, None)
    return env


class ConfigCliTestCase(unittest.TestCase):

    def setUp(self):
        require_wharf(self, "wharf's own command line")
        tmp = tempfile.TemporaryDirectory(prefix="wharf-config-cli-")
        self.addCleanup(tmp.cleanup)
        self.dir = Path(tmp.name)
        self.data_dir = self.dir / "data"

    def write(self, name, text):
        """Writes `text` to the temporary directory; returns the path as a string."""
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return str(path)

    def check(self, path, env=None):
        return wharf("check-config", path, env=env)

    def assert_ok(self, path, env=None):
        r = self.check(path, env=env)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "%s: ok\n" % path, ""))

    def assert_errors(self, path, expected, env=None):
        """check-config exits 1 with exactly `expected` ("LINE:COL: message", in this
        order) on stderr, each prefixed with the file, and nothing on stdout."""
        r = self.check(path, env=env)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr.splitlines(), ["%s:%s" % (path, e) for e in expected])
        self.assertEqual(r.returncode, 1)
        return r

    def listener(self):
        """A listener on a free loopback port (in case a broker starts by mistake)."""
        return '  - {type: mqtt, bind: "127.0.0.1:%d", anonymous: true}\n' % free_port()

    def base(self):
        """The top of a valid config: its own data_dir and one listener."""
        return "data_dir: %s\nlisteners:\n%s" % (self.data_dir, self.listener())


class CheckConfigTest(ConfigCliTestCase):

    def test_valid_file_prints_ok(self):
        path = self.write("valid.yaml", self.base() + "mqtt:\n  max_inflight: 32\n")
        self.assert_ok(path)

    def test_unknown_key_suggests_the_closest(self):
        path = self.write("typo.yaml", self.base() + "mqtt:\n  max_packet_sise: 2048\n")
        self.assert_errors(path, [
            "5:3: unknown key 'max_packet_sise' in mqtt, did you mean 'max_packet_size'?"])

    def test_wrong_type(self):
        path = self.write("type.yaml", self.base() + (
            "mqtt:\n"
            "  max_inflight: lots\n"
            "io_threads: [1, 2]\n"))
        self.assert_errors(path, [
            "5:17: mqtt.max_inflight: expected an integer, got 'lots'",
            "6:13: io_threads: expected an integer, got a list"])

    def test_out_of_range(self):
        path = self.write("range.yaml", self.base() + (
            "mqtt:\n"
            "  receive_maximum: 0\n"
            "  max_packet_size: 268435456\n"))
        self.assert_errors(path, [
            "5:20: mqtt.receive_maximum: 0 is out of range, expected 1..65535",
            "6:20: mqtt.max_packet_size: 268435456 is out of range, expected 64..268435455"])

    def test_missing_tls_file_is_reported_at_its_key_with_the_resolved_path(self):
        self.write("tls/server.key", "not checked here, only read\n")
        path = self.write("tls.yaml", (
            "data_dir: %s\n"
            "listeners:\n"
            "  - type: mqtt\n"
            "    tls: {cert_file: tls/server.pem, key_file: tls/server.key}\n"
            '    bind: "127.0.0.1:%d"\n' % (self.data_dir, free_port())))
        # Relative to the config file's directory, not the working directory.
        self.assert_errors(path, [
            "4:11: listeners[0].tls.cert_file: cannot read file '%s': No such file or directory"
            % (self.dir / "tls" / "server.pem")])

    def test_duplicate_listener_bind(self):
        port = free_port()
        path = self.write("dup.yaml", (
            "listeners:\n"
            '  - {type: mqtt, bind: "127.0.0.1:%d", anonymous: true}\n'
            '  - {type: mqtt-ws, bind: "127.0.0.1:%d", anonymous: true}\n' % (port, port)))
        self.assert_errors(path, [
            "3:27: listeners[1].bind: '127.0.0.1:%d' already used at line 2" % port])

    def test_every_error_in_file_order(self):
        # Shape errors come from the parser, the hash and the pattern from the auth
        # section's own checks afterwards; all are reported, sorted by position.
        path = self.write("many.yaml", (
            "io_threads: many\n"
            "auth:\n"
            "  users:\n"
            '    - {username: bob, password_hash: "plain"}\n'
            "  acl:\n"
            '    - {permission: allow, topic: "a/#/b"}\n'
            '    - {permission: maybe, topic: "a"}\n'
            "mqtt:\n"
            "  receive_maximum: 0\n"
            "colour: blue\n"))
        self.assert_errors(path, [
            "1:13: io_threads: expected an integer, got 'many'",
            "4:38: auth.users: password_hash of 'bob': not a password hash wharf knows, "
            'expected "$pbkdf2-sha256$i=ITERATIONS$SALT$HASH" as `wharf passwd` prints it',
            "6:34: auth.acl: topic 'a/#/b' is not a topic filter, expected a topic filter "
            "('+' and '#' as whole levels, '#' last; %c and %u stand for the client id and username)",
            "7:20: auth.acl[1].permission: invalid value 'maybe', expected one of: allow, deny",
            "9:20: mqtt.receive_maximum: 0 is out of range, expected 1..65535",
            "10:1: unknown key 'colour', expected one of: data_dir, min_free_disk_bytes, listeners, "
            "io_threads, log_level, log_levels, log_format, mqtt, queue_api, queue, auth, cluster, bridge, encryption, tenants"])

    def test_env_substitution(self):
        port = free_port()
        path = self.write("env.yaml", (
            "data_dir: %s\n"
            "listeners:\n"
            '  - {type: queue-api, bind: "127.0.0.1:%d"}\n'
            "queue_api:\n"
            "  credentials:\n"
            "    - secret_id: backend\n"
            "      secret_key: ${ENV:WHARF_CLI_TEST_SECRET}\n"
            '  max_params: "${ENV:WHARF_CLI_TEST_PARAMS}"\n' % (self.data_dir, port)))
        env = dict(os.environ, WHARF_CLI_TEST_SECRET="s3cret", WHARF_CLI_TEST_PARAMS="64")
        self.assert_ok(path, env=env)
        # The substituted text is what gets checked.
        env["WHARF_CLI_TEST_PARAMS"] = "8"
        self.assert_errors(path, ["8:15: queue_api.max_params: 8 is out of range, expected 16..65536"],
                           env=env)
        # An unset variable is an error at the value that names it.
        self.assert_errors(path, [
            "7:19: queue_api.credentials[0].secret_key: environment variable "
            "'WHARF_CLI_TEST_SECRET' is not set",
            "8:15: queue_api.max_params: environment variable 'WHARF_CLI_TEST_PARAMS' is not set"],
            env=env_without("WHARF_CLI_TEST_SECRET", "WHARF_CLI_TEST_PARAMS"))

    def test_example_file_loads(self):
        path = str(REPO_ROOT / "wharf.example.yaml")
        self.assert_ok(path, env=env_without("WHARF_BACKEND_KEY", "UPLINK_PASSWORD"))

    def test_printed_default_config_passes(self):
        r = wharf("--print-default-config")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        # Its TLS listeners use the development certificate, which wharf makes when it
        # starts: check-config passes before it exists.
        path = self.write("default.yaml", r.stdout)
        self.assert_ok(path)

    def test_printed_default_runs_with_its_development_certificate(self):
        # The printed default as a file, on free ports and a data_dir of its own: wharf
        # makes the development certificate there and serves it on the TLS listener.
        text = wharf("--print-default-config").stdout.replace("./wharf-data", str(self.data_dir))
        tls_port = free_port()
        text = text.replace('"127.0.0.1:8883"', '"127.0.0.1:%d"' % tls_port)
        for port in ("1883", "8083", "8080", "8443"):
            text = text.replace('"127.0.0.1:%s"' % port, '"127.0.0.1:%d"' % free_port())
        path = self.write("default.yaml", text)
        log = open(self.dir / "wharf.log", "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen([WHARF_BIN, "--config", path], stdout=log, stderr=subprocess.STDOUT)
        self.addCleanup(proc.wait, RUN_TIMEOUT_S)
        self.addCleanup(proc.terminate)
        ca = self.data_dir / "tls" / "dev-ca.pem"
        context = ssl.create_default_context()
        wait_until(lambda: ca.exists(), what="the development CA file")
        context.load_verify_locations(cafile=str(ca))

        def handshake():
            try:
                with socket.create_connection(("127.0.0.1", tls_port), timeout=1) as sock:
                    with context.wrap_socket(sock, server_hostname="localhost") as tls:
                        return (("commonName", "localhost"),) in tls.getpeercert()["subject"]
            except ConnectionRefusedError:
                return False
        wait_until(handshake, what="a verified TLS handshake with the development certificate")


class PasswdTest(ConfigCliTestCase):

    ENTRY = re.compile(r'- \{username: "alice", password_hash: "(\$pbkdf2-sha256\$i=1000\$'
                       r'([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+))"\}\n\Z')

    def test_prints_an_entry_that_check_config_accepts(self):
        r = wharf("passwd", "--iterations", "1000", "alice", stdin="open sesame\n")
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        m = self.ENTRY.match(r.stdout)
        self.assertIsNotNone(m, r.stdout)
        # PBKDF2-HMAC-SHA256 of the password (without its line end) with the printed salt.
        salt, digest = base64.b64decode(m.group(2)), base64.b64decode(m.group(3))
        self.assertEqual(len(salt), 16)
        self.assertEqual(digest, hashlib.pbkdf2_hmac("sha256", b"open sesame", salt, 1000))
        path = self.write("users.yaml", self.base() + "auth:\n  users:\n    " + r.stdout)
        self.assert_ok(path)

    def test_bad_iterations(self):
        for value in ("999", "100000001", "many"):
            with self.subTest(iterations=value):
                r = wharf("passwd", "--iterations", value, "alice", stdin="open sesame\n")
                self.assertEqual(
                    (r.returncode, r.stdout, r.stderr),
                    (2, "", "wharf passwd: --iterations '%s' is not a number in "
                            "1000..100000000\n" % value))


class StartTest(ConfigCliTestCase):

    def test_broker_refuses_a_bad_file_with_the_same_errors(self):
        path = self.write("bad.yaml", self.base() + (
            "mqtt:\n"
            "  max_inflght: 5\n"
            "auth:\n"
            "  acl:\n"
            '    - {permission: deny, topic: "#/x"}\n'))
        expected = self.assert_errors(path, [
            "5:3: unknown key 'max_inflght' in mqtt, did you mean 'max_inflight'?",
            "8:33: auth.acl: topic '#/x' is not a topic filter, expected a topic filter ('+' and "
            "'#' as whole levels, '#' last; %c and %u stand for the client id and username)"])
        r = wharf("--config", path)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (1, "", expected.stderr))
        # Refused before anything was set up.
        self.assertFalse(self.data_dir.exists())


if __name__ == "__main__":
    unittest.main()

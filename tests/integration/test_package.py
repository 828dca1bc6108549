"""The Debian package (wharf only; as root: it installs and removes a package and creates a
system user, as an operator's `apt install` would). cpack makes the .deb from this build
tree; installed, it has /usr/bin/wharf, the conffile /etc/wharf/wharf.yaml, a systemd unit
that `systemd-analyze verify` accepts, the `wharf` system user and /var/lib/wharf. wharf runs
from it with the packaged config, as the `wharf` user, and clients publish and subscribe;
removing the package keeps the data, purging it deletes it.

The packaged config listens on 127.0.0.1:1883: wharf and its clients run in a network
namespace of their own, whose loopback no other broker on this machine can hold."""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from wharf_fixture import WAIT_S, WHARF_BIN, require_wharf

BUILD_DIR = os.path.dirname(WHARF_BIN)


def run(*cmd, ns=None, check=True, timeout=120, **kwargs):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p


class PackageTest(unittest.TestCase):

    def setUp(self):
        require_wharf(self, "the package is wharf's")
        self.assertEqual(os.geteuid(), 0, "installs a package: run as root (CI does)")
        self.assertFalse(run("dpkg-query", "-W", "-f=${Status}", "wharf", check=False).stdout
                         .startswith("install ok"), "a wharf package is installed here already; not touching it")
        self.user_existed = self._user_exists()
        self.dir = tempfile.mkdtemp(prefix="wharf-pkg-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.ns = "wharf-pkg-%d" % os.getpid()
        run("ip", "netns", "add", self.ns)
        self.addCleanup(run, "ip", "netns", "del", self.ns, check=False)
        run("ip", "-n", self.ns, "link", "set", "lo", "up")

    @staticmethod
    def _user_exists():
        try:
            pwd.getpwnam("wharf")
            return True
        except KeyError:
            return False

    def build_deb(self):
        run("cpack", "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"), "-B", self.dir, timeout=600)
        debs = glob.glob(os.path.join(self.dir, "wharf_*.deb"))
        self.assertEqual(len(debs), 1, os.listdir(self.dir))
        return debs[0]

    def test_install_run_remove_purge(self):
        deb = self.build_deb()
        listing = run("dpkg-deb", "--contents", deb).stdout
        for path in ("./usr/bin/wharf", "./etc/wharf/wharf.yaml", "./usr/lib/systemd/system/wharf.service"):
            self.assertIn(path, listing)
        self.assertEqual(run("dpkg-deb", "--info", deb, "conffiles").stdout.split(), ["/etc/wharf/wharf.yaml"])
        depends = run("dpkg-deb", "--field", deb, "Depends").stdout
        self.assertIn("adduser", depends)
        self.assertIn("libssl3", depends)  # found by dpkg-shlibdeps

        run("dpkg", "-i", deb)
        self.addCleanup(self.purge)
        # The unit is valid and names the installed binary and the packaged config.
        unit = "/usr/lib/systemd/system/wharf.service"
        verify = run("systemd-analyze", "verify", unit, check=False)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        with open(unit) as f:
            self.assertIn("ExecStart=/usr/bin/wharf --config /etc/wharf/wharf.yaml", f.read())
        # The system user owns the data directory; the config is not world-readable.
        user = pwd.getpwnam("wharf")
        self.assertEqual(user.pw_dir, "/var/lib/wharf")
        self.assertEqual(os.stat("/var/lib/wharf").st_uid, user.pw_uid)
        self.assertEqual(oct(os.stat("/etc/wharf/wharf.yaml").st_mode & 0o777), "0o640")
        self.assertEqual(run("/usr/bin/wharf", "check-config", "/etc/wharf/wharf.yaml").stdout,
                         "/etc/wharf/wharf.yaml: ok\n")

        # wharf as the wharf user, with the packaged config; a persistent session stores a
        # message while its client is away.
        broker = self.start_as_wharf()
        self.addCleanup(self.stop, broker)
        deadline = time.monotonic() + WAIT_S
        while run("mosquitto_pub", "-t", "pkg/probe", "-m", "x", ns=self.ns, check=False).returncode != 0:
            if broker.poll() is not None:
                self.fail("wharf exited with %d:\n%s" % (broker.returncode, broker.stdout.read()))
            self.assertLess(time.monotonic(), deadline, "wharf did not accept on 127.0.0.1:1883")
            time.sleep(0.1)
        sub = ("mosquitto_sub", "-t", "pkg/t", "-q", "1", "-i", "pkg-sub", "-c", "-C", "1", "-W", "10")
        run(*sub[:-4], "-W", "1", ns=self.ns, check=False)  # the session exists, then goes away
        run("mosquitto_pub", "-t", "pkg/t", "-m", "kept for you", "-q", "1", ns=self.ns)
        self.assertEqual(run(*sub, ns=self.ns).stdout, "kept for you\n")
        run("mosquitto_pub", "-t", "pkg/t", "-m", "stored", "-q", "1", "-r", ns=self.ns)
        self.stop(broker)
        self.assertEqual(broker.returncode, 0, broker.stdout.read())

        # Removed: the program goes, the data and the changed-or-not conffile stay.
        run("dpkg", "-r", "wharf")
        self.assertFalse(os.path.exists("/usr/bin/wharf"))
        self.assertTrue(glob.glob("/var/lib/wharf/**/CURRENT", recursive=True), os.listdir("/var/lib/wharf"))
        self.assertTrue(os.path.exists("/etc/wharf/wharf.yaml"))
        # Installed again, it finds the retained message where it was.
        run("dpkg", "-i", deb)
        broker = self.start_as_wharf()
        self.addCleanup(self.stop, broker)
        deadline = time.monotonic() + WAIT_S
        while True:
            got = run("mosquitto_sub", "-t", "pkg/t", "-C", "1", "-W", "2", ns=self.ns, check=False)
            if got.returncode == 0:
                break
            self.assertLess(time.monotonic(), deadline, "no retained message after reinstalling: %s" % got.stderr)
            time.sleep(0.1)
        self.assertEqual(got.stdout, "stored\n")
        self.stop(broker)
        # Purged: the data and the config go too.
        run("dpkg", "-P", "wharf")
        self.assertFalse(os.path.exists("/var/lib/wharf"))
        self.assertFalse(os.path.exists("/etc/wharf/wharf.yaml"))

    def start_as_wharf(self):
        """/usr/bin/wharf with the packaged config in the namespace, as the wharf user (as the
        unit runs it: setpriv execs, so a signal reaches wharf itself)."""
        return subprocess.Popen(("ip", "netns", "exec", self.ns, "setpriv", "--reuid=wharf", "--regid=wharf",
                                 "--init-groups", "/usr/bin/wharf", "--config", "/etc/wharf/wharf.yaml"),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/var/lib/wharf")

    @staticmethod
    def stop(broker):
        if broker.poll() is None:
            broker.send_signal(signal.SIGTERM)
            broker.wait(timeout=30)

    def purge(self):
        run("dpkg", "-P", "wharf", check=False)
        if not self.user_existed and self._user_exists():
            run("deluser", "--system", "wharf", check=False)
            run("delgroup", "--system", "wharf", check=False)


if __name__ == "__main__":
    unittest.main()

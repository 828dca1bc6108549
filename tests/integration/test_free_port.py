"""The test ports' reservations across processes (free_port.py): ctest runs test processes side
by side, and a broker restarted by one must find its port still its own."""

import subprocess
import sys
import time
import unittest
from pathlib import Path

import free_port

SCRIPT = Path(__file__).with_name("free_port.py")


class FreePortTest(unittest.TestCase):
    def test_a_port_another_process_holds_is_not_handed_out_until_it_exits(self):
        owner = subprocess.Popen(["sleep", "60"])
        try:
            chosen = subprocess.run(
                [sys.executable, str(SCRIPT), "5", "--while", str(owner.pid)],
                capture_output=True, text=True, timeout=10, check=True).stdout.split()
            self.assertEqual(len(set(chosen)), 5)
            for port in map(int, chosen):
                self.assertFalse(free_port._reserve(port), f"port {port} reserved twice")
        finally:
            owner.kill()
            owner.wait()
        # The holder watches the owner twice a second; then the ports are anyone's again.
        deadline = time.monotonic() + 5
        released = set()
        while len(released) < len(chosen) and time.monotonic() < deadline:
            released |= {port for port in map(int, chosen) if free_port._reserve(port)}
            time.sleep(0.1)
        self.assertEqual(released, set(map(int, chosen)))

    def test_ports_handed_out_in_one_process_are_all_different(self):
        ports = [free_port.free_port() for _ in range(50)]
        self.assertEqual(len(set(ports)), 50)


if __name__ == "__main__":
    unittest.main()

"""Loopback ports for test brokers (the fixture, bench/smoke.sh). Run as a script, prints one."""

import random
import socket
from pathlib import Path


def _first_ephemeral_port():
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
    return low if 20001 < low <= 65535 else 32768


def free_port():
    """A loopback port no one listens on, chosen below the ephemeral range: a port the
    kernel picked (bind to port 0) is one a client's connection can take as its source port
    while the broker is restarted on it, and the restart then fails to bind."""
    top = _first_ephemeral_port()
    for _ in range(100):
        port = random.randrange(20000, top)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port below the ephemeral range after 100 tries")


if __name__ == "__main__":
    print(free_port())

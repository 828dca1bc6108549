"""Loopback ports for test brokers (the fixture, bench/smoke.sh). Run as a script, prints one
(or as many as its argument asks for, all different)."""

import random
import socket
import sys
from pathlib import Path


def _first_ephemeral_port():
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
    return low if 20001 < low <= 65535 else 32768


# Every port this process has handed out. A port is free when chosen but only taken when
# its broker starts: a test that builds several brokers before starting them (a cluster)
# could otherwise be handed one port twice, and wharf's listeners, which share their port
# between I/O threads with SO_REUSEPORT, would then both bind it and split its connections.
_handed_out = set()


def free_port():
    """A loopback port no one listens on, chosen below the ephemeral range: a port the
    kernel picked (bind to port 0) is one a client's connection can take as its source port
    while the broker is restarted on it, and the restart then fails to bind. Never the same
    port twice in one process."""
    top = _first_ephemeral_port()
    for _ in range(100):
        port = random.randrange(20000, top)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port below the ephemeral range after 100 tries")


if __name__ == "__main__":
    # `free_port.py N`: N different ports, one a line.
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1):
        print(free_port())

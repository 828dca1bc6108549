"""Loopback ports for test brokers (the fixture, the C++ tests' broker_process, bench scripts).
Run as a script, prints one (or as many as its argument asks for, all different)."""

import errno
import fcntl
import os
import random
import socket
import sys
import tempfile
import time
from pathlib import Path


def _first_ephemeral_port():
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default
    return low if 20001 < low <= 65535 else 32768


# A port is free when chosen but only taken when its broker starts, and it is free again
# while that broker is down for a restart. ctest runs test processes side by side, so a port
# must be reserved across processes for as long as the process that chose it lives: each
# chosen port has a lock file here, held with flock until the process exits (the kernel
# drops the lock of a killed process, so nothing is left stale). tests/integration/cpp's
# pick_free_port takes the same locks.
RESERVATIONS = Path(tempfile.gettempdir()) / "wharf-test-ports"

_reserved = {}  # port -> the open lock file's descriptor, kept for the life of the process


def _reserve(port):
    """True when this process now holds the port's reservation; False when another holds it."""
    if port in _reserved:
        return False
    RESERVATIONS.mkdir(exist_ok=True)
    try:
        RESERVATIONS.chmod(0o1777)  # like /tmp: tests run by several users share it
    except PermissionError:
        pass
    fd = os.open(RESERVATIONS / f"{port}.lock", os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    _reserved[port] = fd
    return True


def free_port():
    """A loopback port no one listens on and no other test process has reserved, chosen below
    the ephemeral range: a port the kernel picked (bind to port 0) is one a client's
    connection can take as its source port while the broker is restarted on it, and the
    restart then fails to bind. Never the same port twice in one process."""
    top = _first_ephemeral_port()
    for _ in range(100):
        port = random.randrange(20000, top)
        if not _reserve(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use outside the tests; stays reserved so it is not tried again
            return port
    raise RuntimeError("no free loopback port below the ephemeral range after 100 tries")


def _hold_reservations_while(pid):
    """Returns at once; a child process keeps this process's reservations until `pid` exits
    (flock locks belong to the open files, which the child shares)."""
    sys.stdout.flush()
    if os.fork() != 0:
        return
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for stream in (0, 1, 2):  # so that the caller's $(...) ends without waiting for the child
        os.dup2(devnull, stream)
    while Path(f"/proc/{pid}").exists():
        time.sleep(0.5)
    os._exit(0)


if __name__ == "__main__":
    # `free_port.py N [--while PID]`: N different ports, one a line. Without --while the
    # reservations end with this script; with it they last until process PID exits (a shell
    # script passes $$ to restart its broker on the same ports safely).
    args = sys.argv[1:]
    holder = None
    if "--while" in args:
        at = args.index("--while")
        holder = int(args[at + 1])
        del args[at:at + 2]
    for _ in range(int(args[0]) if args else 1):
        print(free_port())
    if holder is not None:
        _hold_reservations_while(holder)

"""Loopback ports for the integration tests, unique across every test process of one ctest run.

Asking the kernel for port 0 and closing the socket is not enough: the kernel may hand the same
port to the next caller (two listeners of one gateway got the same port that way), and ports of
the ephemeral range get reused as source ports of outgoing connections. So ports come from below
the ephemeral range, each one claimed by creating a marker file with O_EXCL in a shared
directory, and checked to be bindable. Markers older than an hour are left over from killed runs
and are taken back."""

import atexit
import os
import random
import socket
import tempfile
import time

_MARKERS = os.path.join(tempfile.gettempdir(), "smtpgate-test-ports")
_STALE_S = 3600
_mine = []


@atexit.register
def _release():
    for marker in _mine:
        try:
            os.unlink(marker)
        except OSError:
            pass


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _claim(port):
    marker = os.path.join(_MARKERS, str(port))
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            if time.time() - os.stat(marker).st_mtime < _STALE_S:
                return False
            os.unlink(marker)
            fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except OSError:
            return False
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    _mine.append(marker)
    return True


def _bindable(port):
    for family, host in ((socket.AF_INET, "127.0.0.1"),):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port():
    """A loopback TCP port no other test of this run has been given and nothing listens on."""
    os.makedirs(_MARKERS, exist_ok=True)
    high = min(_ephemeral_low(), 65536) - 1
    low = 20000 if high > 24000 else 1024
    rng = random.SystemRandom()
    for _ in range(2000):
        port = rng.randint(low, high)
        if _claim(port):
            if _bindable(port):
                return port
    raise RuntimeError("no free loopback port found between %d and %d" % (low, high))

"""Pick ports: the preferred one when it is free, else any free one on loopback."""

from __future__ import annotations

import socket


def is_port_free(host: str, port: int) -> bool:
    """True when nothing listens on (host, port); TIME_WAIT leftovers do not count."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str) -> int:
    """A port the kernel says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class PortAllocator:
    """Hands out ports for one start, never the same one twice."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._given: set[int] = set()

    def take(self, preferred: int) -> int:
        """`preferred` when free (0 means no preference), else a free one."""
        if preferred and preferred not in self._given and is_port_free(self.host, preferred):
            port = preferred
        else:
            port = free_port(self.host)
            while port in self._given:
                port = free_port(self.host)
        self._given.add(port)
        return port

    def claimed(self, port: int) -> bool:
        """True when this allocator already handed out `port` (in this start)."""
        return port in self._given

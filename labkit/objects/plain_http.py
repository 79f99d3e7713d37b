"""Plain HTTP/1.1 to an object store, on kept-alive connections: the file lab's hot path.

The application server reads and writes small images many times a second on URLs it
signs itself (`labkit.objects.store`). `http.client` on a kept-alive connection costs
about half the CPU of urllib3 per request here (`bench/bench_file_cpu.py`), and the
requests are simple: one signed URL, a body of known length, an answer read whole
(within a limit). TLS endpoints keep using urllib3 (certificates, proxies).

The policy is the store client's: connect within 2 s, read within 30 s, and give up
after a try and two retries (a refused or dropped connection, or a 500/502/503/504
answer), so a learner hears about a store that is down at once.
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
import time
from dataclasses import dataclass

RETRIED_STATUSES = frozenset({500, 502, 503, 504})
ATTEMPTS = 3  # a try and two retries
BACKOFF = 0.1  # seconds before the first retry, doubled after
ERROR_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """What the store answered: status, and the body (or as much as was asked)."""

    status: int
    reason: str
    body: bytes
    complete: bool  # False: the body went on past the limit, and was not read to its end


class AnswerTooLarge(Exception):
    """The answer's Content-Length is over the limit: nothing of its body was read."""

    def __init__(self, length: int) -> None:
        super().__init__(f"{length} bytes")
        self.length = length


class ConnectionPool:
    """Kept-alive connections to one `host:port`, shared by threads (one request each)."""

    def __init__(
        self, host: str, port: int, connect_timeout: float, read_timeout: float, size: int
    ) -> None:
        self.host, self.port = host, port
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.size = size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        max_body: int | None = None,
    ) -> Answer:
        """Send one request (path and query in `target`); retried as the module says.

        With `max_body`, an answer whose Content-Length is over it raises
        AnswerTooLarge before its body is read, and no more than `max_body + 1` bytes
        of a body without one are read (`complete` is then False).
        Connection failures raise OSError after the last attempt.
        """
        fresh = False
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            connection, reused = self._take(fresh)
            try:
                answer = self._send(connection, method, target, body, headers or {}, max_body)
            except AnswerTooLarge:
                connection.close()
                raise
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if last:
                    if isinstance(exc, OSError):
                        raise
                    raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc
                if reused:  # the store closed it as we sent: at once, on a new one
                    fresh = True
                else:
                    time.sleep(BACKOFF * 2**attempt)
                continue
            if answer.status in RETRIED_STATUSES and not last:
                time.sleep(BACKOFF * 2**attempt)
                continue
            return answer
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _send(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        max_body: int | None,
    ) -> Answer:
        if connection.sock is None:
            connection.connect()  # within the connect timeout; then reads get theirs
            _set_timeout(connection, self.read_timeout)
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        limit = max_body
        if not 200 <= response.status < 300:
            limit = ERROR_BODY_LIMIT  # an error's XML: enough to say what went wrong
        elif max_body is not None:
            length = response.getheader("Content-Length")
            if length is not None and length.isdecimal() and int(length) > max_body:
                raise AnswerTooLarge(int(length))
        data = response.read() if limit is None else response.read(limit + 1)
        whole = response.isclosed()  # the body read to its end
        if whole and not response.will_close:
            self._give_back(connection)
        else:
            connection.close()
        return Answer(response.status, response.reason, data, whole)

    def _take(self, fresh: bool) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection the store has not closed (True), else a new one (False).

        The store closes connections idle for a while, often all at once: each is
        checked before use (a closed one reads as ready: EOF), so one stale one
        does not lead to the next.
        """
        while not fresh:
            with self._lock:
                if not self._idle:
                    break
                connection = self._idle.pop()
            if _still_open(connection):
                return connection, True
            connection.close()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        return connection, False

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.size:
                self._idle.append(connection)
                return
        connection.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _set_timeout(connection: http.client.HTTPConnection, seconds: float) -> None:
    sock: socket.socket | None = connection.sock
    if sock is not None:
        sock.settimeout(seconds)


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection has nothing to read: readable means the store closed
    it (or sent what no request asked for); either way it is not reused."""
    sock: socket.socket | None = connection.sock
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return not poller.poll(0)

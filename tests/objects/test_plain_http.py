"""The object store's plain HTTP connections: kept alive, retried as the store client is.

Against real loopback servers: `http.server` in a thread that answers as the test
says (a dropped kept-alive connection, 503s), and a port that hangs up at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from labkit.objects.plain_http import ATTEMPTS, AnswerTooLarge, ConnectionPool


class Scripted(ThreadingHTTPServer):
    """Answers each request with the next status of `statuses` (then 200), counting
    connections; with `drop_idle`, closes every connection after its first answer
    without saying so (as a store does with an idle kept-alive connection)."""

    daemon_threads = True

    def __init__(self, statuses: list[int], drop_idle: bool = False, together: int = 1) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.statuses = statuses
        self.drop_idle = drop_idle
        # The first `together` requests are answered only once all have arrived: the
        # client then holds that many connections at once.
        self.together = threading.Barrier(together)
        self.connections = 0
        self.requests = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise
    server: Scripted

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_GET(self) -> None:
        self.server.requests += 1
        if self.server.requests <= self.server.together.parties:
            self.server.together.wait(timeout=10)
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        body = b"x" * 100 if status == 200 else b"<Error><Code>SlowDown</Code></Error>"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.drop_idle:
            self.close_connection = True  # no `Connection: close`: the client keeps it

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[list[Scripted]]:
    started: list[Scripted] = []
    yield started
    for server in started:
        server.shutdown()
        server.server_close()


def start(
    serve: list[Scripted], statuses: list[int], drop_idle: bool = False, together: int = 1
) -> Scripted:
    server = Scripted(statuses, drop_idle, together)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    serve.append(server)
    return server


def pool_for(server: Scripted) -> ConnectionPool:
    host, port = server.server_address[:2]
    return ConnectionPool(str(host), int(port), 2.0, 5.0, 4)


def test_one_connection_serves_request_after_request(serve: list[Scripted]) -> None:
    server = start(serve, [])
    pool = pool_for(server)
    answers = [pool.request("GET", f"/bucket/key?n={n}") for n in range(10)]
    assert all(a.status == 200 and a.body == b"x" * 100 and a.complete for a in answers)
    assert server.requests == 10 and server.connections == 1
    pool.close()


def test_a_kept_alive_connection_the_server_dropped_is_replaced(serve: list[Scripted]) -> None:
    server = start(serve, [], drop_idle=True)
    pool = pool_for(server)
    for _ in range(3):
        assert pool.request("GET", "/bucket/key").status == 200
    assert server.requests == 3 and server.connections == 3
    pool.close()


def test_idle_connections_the_server_dropped_all_at_once_are_replaced(
    serve: list[Scripted],
) -> None:
    # Four requests at once leave four idle connections, all closed by the server (as
    # a store closes connections idle for a while): the next request still succeeds.
    server = start(serve, [], drop_idle=True, together=4)
    pool = pool_for(server)
    with ThreadPoolExecutor(4) as threads:
        answers = list(threads.map(lambda n: pool.request("GET", f"/bucket/{n}"), range(4)))
    assert [a.status for a in answers] == [200] * 4 and server.connections == 4
    assert pool.request("GET", "/bucket/next").status == 200
    assert server.requests == 5 and server.connections == 5
    pool.close()


def test_server_errors_are_retried_then_answered(serve: list[Scripted]) -> None:
    server = start(serve, [503, 500])
    pool = pool_for(server)
    assert pool.request("GET", "/bucket/key").status == 200
    assert server.requests == 3
    # Still failing after the last attempt: the answer says so, for the store to report.
    failing = start(serve, [503] * (ATTEMPTS + 1))
    answer = pool_for(failing).request("GET", "/bucket/key")
    assert answer.status == 503 and b"SlowDown" in answer.body
    assert failing.requests == ATTEMPTS


def test_an_answer_over_the_limit_is_refused_before_its_body(serve: list[Scripted]) -> None:
    server = start(serve, [])
    pool = pool_for(server)
    with pytest.raises(AnswerTooLarge) as refused:
        pool.request("GET", "/bucket/key", max_body=99)
    assert refused.value.length == 100
    assert pool.request("GET", "/bucket/key", max_body=100).body == b"x" * 100  # still serves


def test_a_port_that_hangs_up_is_given_up_after_three_attempts(
    hanging_up_port: tuple[int, list[int]],
) -> None:
    port, accepted = hanging_up_port
    pool = ConnectionPool("127.0.0.1", port, 2.0, 5.0, 4)
    with pytest.raises(OSError):
        pool.request("GET", "/bucket/key")
    assert accepted[0] == ATTEMPTS == 3

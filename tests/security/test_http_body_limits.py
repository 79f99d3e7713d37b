"""Bounded request bodies on the real, waitress-served NSC and auth processes.

Before: a 200 MiB /register body took the auth process from ~76 MB to ~668 MB RSS
before its 422; the NSC service issued a user for a 50 MiB body; JSON nested
deeply enough answered 500 from both. Now: 413 with a JSON error before the body
is read (Content-Length, or a capped stream for chunked bodies), 400 for JSON
nested too deep.
"""

from __future__ import annotations

import json
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from labkit.nsc.wrapper import Nsc
from labkit.settings import AuthSettings, NscSettings
from labkit.stack import Stack
from labkit.webservice.bodies import MAX_JSON_DEPTH
from tests.security.identity_processes import Process, free_port, service_env, start_service

AUTH_LIMIT = AuthSettings().max_body_bytes
NSC_LIMIT = NscSettings().max_body_bytes
MIB = 1024 * 1024
# Generous: the process may grow a little while it answers; the old code grew by the body.
RSS_MARGIN = 60 * MIB


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM): a freed body still shows."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


@dataclass
class Served:
    process: Process
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


@pytest.fixture(scope="module")
def auth_process(
    running_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("auth-process")
    env = service_env(
        running_stack.settings,
        database_url=f"sqlite:///{folder / 'auth.db'}",
        nsc_service_url=running_stack.url("nsc"),
    )
    port = free_port()
    process = start_service("labkit.auth.app", port, env, folder / "auth.log")
    try:
        yield Served(process, f"http://127.0.0.1:{port}")
    finally:
        process.stop()


@pytest.fixture
def nsc(running_stack: Stack) -> tuple[str, dict[str, str]]:
    token = running_stack.settings.paths.nsc_token_file.read_text().strip()
    return running_stack.url("nsc"), {"Authorization": f"Bearer {token}"}


def send_huge_body(url: str, path: str, size: int, headers: dict[str, str]) -> int | None:
    """POST a `size`-byte body over a raw socket, stopping as soon as the server answers.

    Returns the status, or None when the server closed without a readable answer.
    """
    host, port = url.removeprefix("http://").split(":")
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    head += [f"{key}: {value}" for key, value in headers.items()]
    head += [f"Content-Length: {size}", "Connection: close", "", ""]
    chunk = b" " * MIB
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall("\r\n".join(head).encode())
        sent = 0
        try:
            while sent < size:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                piece = chunk[: min(MIB, size - sent)]
                sock.sendall(piece)
                sent += len(piece)
        except OSError:
            pass  # the server stopped reading: its answer is what matters
        try:
            answer = sock.recv(65536)
        except OSError:
            return None
    if not answer:
        return None
    return int(answer.split(b" ", 2)[1])


def test_a_200_mib_register_body_is_refused_without_growing_the_auth_process(
    auth_process: Served,
) -> None:
    before = peak_rss_bytes(auth_process.pid)
    status = send_huge_body(auth_process.url, "/register", 200 * MIB, {})
    # The old code read the body whole (+590 MB) before its error.
    assert peak_rss_bytes(auth_process.pid) - before < RSS_MARGIN
    # Waitress answers 413 from the headers and closes; a reset can beat the answer.
    assert status in (413, None)
    # It still serves.
    assert requests.get(f"{auth_process.url}/healthz", timeout=10).ok


@pytest.mark.parametrize("path", ["/register", "/login"])
def test_a_body_just_over_the_limit_gets_a_json_413(auth_process: Served, path: str) -> None:
    body = json.dumps({"email": "a@example.com", "password": "x" * AUTH_LIMIT})
    response = requests.post(
        auth_process.url + path,
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    answer = response.json()
    assert answer["error"] == "request_entity_too_large"
    assert str(AUTH_LIMIT) in answer["detail"]


def test_a_chunked_body_over_the_limit_gets_a_json_413(auth_process: Served) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(4):
            yield b"x" * AUTH_LIMIT
        yield b'"}'

    response = requests.post(
        auth_process.url + "/register",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 413
    assert response.json()["error"] == "request_entity_too_large"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000])
def test_deep_json_gets_400_from_auth(auth_process: Served, depth: int) -> None:
    body = '{"email": "a@example.com", "password": ' + _nested(depth) + "}"
    response = requests.post(
        auth_process.url + "/register",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "malformed_request"
    assert "nested more than" in response.json()["detail"]


def test_json_nested_100000_deep_is_refused_not_a_500(
    auth_process: Served, nsc: tuple[str, dict[str, str]]
) -> None:
    for url, headers in [(auth_process.url + "/login", {}), (nsc[0] + "/new-user", nsc[1])]:
        response = requests.post(
            url,
            data=_nested(100_000),
            headers={"Content-Type": "application/json", **headers},
            timeout=30,
        )
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "request_entity_too_large"


def test_string_brackets_do_not_count_as_nesting(auth_process: Served) -> None:
    password = "[" * 200 + "{" * 200
    body = json.dumps({"email": "not-an-email", "password": password})
    response = requests.post(
        auth_process.url + "/register",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 422  # read, and refused for the email only
    assert "email" in response.json()["detail"]


def test_the_nsc_service_refuses_a_50_mib_body(
    running_stack: Stack, nsc: tuple[str, dict[str, str]]
) -> None:
    url, headers = nsc
    status = send_huge_body(url, "/new-user", 50 * MIB, headers)
    assert status in (413, None)  # before: 201, a user issued
    body = {"name": "big-body", "padding": "x" * NSC_LIMIT}
    response = requests.post(url + "/new-user", json=body, headers=headers, timeout=30)
    assert response.status_code == 413
    assert response.json()["error"] == "request_entity_too_large"
    assert str(NSC_LIMIT) in response.json()["detail"]
    assert "big-body" not in Nsc.from_settings(running_stack.settings).users()


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000])
def test_deep_json_gets_400_from_the_nsc_service(
    nsc: tuple[str, dict[str, str]], depth: int
) -> None:
    url, headers = nsc
    body = '{"name": "deep", "account": ' + _nested(depth) + "}"
    response = requests.post(
        url + "/new-user",
        data=body,
        headers={"Content-Type": "application/json", **headers},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "MalformedJson"

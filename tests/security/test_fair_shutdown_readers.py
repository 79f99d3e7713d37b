"""SIGTERM with reader connections (LABKIT_SERVER_READERS) and NATS stopped: exit 0.

The reader connections reconnect without end like the main one; draining them and
closing them is bounded as well, so the server still exits 0 within its drain
timeout, logged, without a traceback.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.stack import Stack
from labkit.stack.process import exit_code, stop
from tests.conftest import make_settings
from tests.nats_helpers import wait_until
from tests.security.test_fair_shutdown import process_of


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    monkeypatch.setenv("LABKIT_SERVER_READERS", "2")  # the stack's server inherits it
    stack = Stack(make_settings(tmp_path / "home", s3={"port": 0}))
    stack.ensure("nats", "nsc", "objects")
    stack.ensure("server")
    yield stack
    stack.down()


def test_sigterm_with_reader_connections_exits_0_when_nats_is_stopped(stack: Stack) -> None:
    server, nats = process_of(stack, "server"), process_of(stack, "nats")
    log = stack.paths.log_file("server")
    bound = stack.settings.server.drain_timeout.total_seconds() * 5  # a stuck test's bound
    assert "read on 2 reader connections" in log.read_text()
    assert stop(nats)

    async def reconnecting() -> None:
        await wait_until(lambda: "NATS connection:" in log.read_text(), "a reconnect", 30)

    asyncio.run(reconnecting())
    os.kill(server.pid, signal.SIGTERM)

    async def exited() -> None:
        await wait_until(lambda: exit_code(server) is not None, "the server's exit", bound)

    asyncio.run(exited())
    assert exit_code(server) == 0
    text = log.read_text()
    assert "Traceback" not in text
    assert "stopped" in text.rsplit("signal received: draining", 1)[1]

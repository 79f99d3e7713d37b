"""SIGTERM ends the real `python -m labkit.server` cleanly whatever state NATS is in.

The stack's application server runs; its NATS server is then frozen (SIGSTOP: the
connection looks alive but nothing answers) or stopped (its pid gets SIGTERM: the
client reconnects without end). SIGTERM to the application server must still end
it with exit code 0 within the drain timeout (the stack's SIGKILL comes later), with
its log saying so and no traceback in it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.stack import Stack
from labkit.stack.process import ProcessId, exit_code, stop
from tests.conftest import make_settings
from tests.nats_helpers import wait_until


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(make_settings(tmp_path / "home", s3={"port": 0}))
    stack.ensure("nats", "nsc", "objects")
    stack.ensure("server")
    yield stack
    stack.down()


def process_of(stack: Stack, name: str) -> ProcessId:
    record = stack.record(name)
    return ProcessId(record["pid"], record["start_time"])


@pytest.mark.parametrize("nats_state", ["frozen", "stopped"])
def test_sigterm_exits_0_without_a_traceback_when_nats_is_down(
    stack: Stack, nats_state: str
) -> None:
    server, nats = process_of(stack, "server"), process_of(stack, "nats")
    log = stack.paths.log_file("server")
    # Generous: the drain timeout is the server's own bound, this one a stuck test's.
    bound = stack.settings.server.drain_timeout.total_seconds() * 5
    if nats_state == "frozen":
        os.kill(nats.pid, signal.SIGSTOP)
    else:
        assert stop(nats)

        async def reconnecting() -> None:
            await wait_until(lambda: "NATS connection:" in log.read_text(), "a reconnect", 30)

        asyncio.run(reconnecting())
    try:
        os.kill(server.pid, signal.SIGTERM)

        async def exited() -> None:
            await wait_until(lambda: exit_code(server) is not None, "the server's exit", bound)

        asyncio.run(exited())
    finally:
        if nats_state == "frozen":
            os.kill(nats.pid, signal.SIGCONT)
    assert exit_code(server) == 0
    text = log.read_text()
    assert "signal received: draining" in text
    assert "stopped" in text.rsplit("signal received: draining", 1)[1]
    assert "Traceback" not in text, text[-3000:]

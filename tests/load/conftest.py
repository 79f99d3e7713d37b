"""The fair router's server as a process of its own, on the run's shared stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from labkit.discovery import nats_url
from labkit.nsc.wrapper import Nsc
from labkit.stack import Stack
from tests.conftest import make_settings

STARTUP = 60.0  # seconds: a bound for a stuck start, not a speed claim

StartServer = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def fair_server(running_stack: Stack, tmp_path: Path) -> Iterator[StartServer]:
    """Start `python -m tests.load.fair_server` with LABKIT_SERVER_* bounds of the test's.

    `fair_server(USER_MAX_QUEUED=5)` sets LABKIT_SERVER_USER_MAX_QUEUED; every server
    started is stopped (SIGTERM, then waited for) after the test.
    """
    settings = make_settings(running_stack.settings.home)
    creds_file = tmp_path / "server.creds"
    creds_file.write_text(Nsc.from_settings(settings).server_creds())
    creds_file.chmod(0o600)
    started: list[subprocess.Popen[bytes]] = []

    def start(**bounds: object) -> subprocess.Popen[bytes]:
        ready = tmp_path / f"server-{len(started)}.ready"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_SERVER_")}
        env.update({f"LABKIT_SERVER_{name}": str(value) for name, value in bounds.items()})
        # The stack's own data directory: its NSC store is where the readers find the users.
        env["LABKIT_HOME"] = str(settings.home)
        argv = [sys.executable, "-m", "tests.load.fair_server", str(creds_file)]
        process = subprocess.Popen(
            [*argv, nats_url(settings), str(ready)],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        started.append(process)
        deadline = time.monotonic() + STARTUP
        while not ready.exists():
            assert process.poll() is None, f"the fair server exited with {process.returncode}"
            assert time.monotonic() < deadline, "the fair server did not subscribe in time"
            time.sleep(0.05)
        return process

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

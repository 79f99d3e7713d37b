"""`classroom down` stops what still runs as the learners' accounts (real accounts, real
processes; no hub needed: the hub's record points at a stand-in process)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.classroom.hub_config import HubPaths
from labkit.classroom.hub_process import stop_hub
from labkit.classroom.os_accounts import (
    AccountError,
    ensure_account,
    labkit_accounts,
    processes_of,
    remove_account,
    stop_processes_of,
)
from labkit.settings import Settings
from labkit.stack import process
from tests.classroom.hub_fixtures import require_classroom_host

# A kernel left behind: its own session, reparented away from the server that started
# it, ignoring SIGTERM (a kernel busy in C code answers only SIGKILL).
ORPHAN = (
    "import os, signal, time\n"
    "if os.fork():\n"
    "    os._exit(0)\n"
    "os.setsid()\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "time.sleep(600)\n"
)


def _orphan_as(name: str) -> int:
    """Start ORPHAN as the OS account `name`; its pid once it runs."""
    as_learner = ["setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "--"]
    subprocess.run(
        [*as_learner, sys.executable, "-c", ORPHAN],
        check=True,
        cwd="/",
        timeout=30,
    )
    deadline = time.monotonic() + 10
    while not (found := processes_of(name)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found, f"the stand-in kernel did not start as {name}"
    return found[0]


@pytest.fixture
def account(tmp_path: Path) -> Iterator[str]:
    require_classroom_host()
    prefix = f"lkd{secrets.token_hex(2)}-"
    made = ensure_account("ada@example.com", prefix, tmp_path / "homes").name
    try:
        yield made
    finally:
        for pid in processes_of(made):
            os.kill(pid, signal.SIGKILL)
        remove_account(made)


def test_what_runs_as_a_learner_is_stopped_even_when_it_ignores_sigterm(account: str) -> None:
    pid = _orphan_as(account)
    assert stop_processes_of(account, timeout=1.0) == [pid]
    assert processes_of(account) == []


def test_an_account_labkit_did_not_create_is_left_alone() -> None:
    with pytest.raises(AccountError, match="not an account labkit created"):
        stop_processes_of("root")


def test_classroom_down_stops_the_learners_leftovers(account: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    paths = HubPaths(settings.home)
    paths.state_file.parent.mkdir(parents=True, exist_ok=True)
    hub = process.spawn(
        [sys.executable, "-c", "import time; time.sleep(600)"], log_path=tmp_path / "hub.log"
    )
    prefix = account.split("-")[0] + "-"
    assert labkit_accounts(prefix) == [account]
    paths.state_file.write_text(
        json.dumps(
            {
                "pid": hub.pid,
                "start_time": hub.start_time,
                "url": "http://127.0.0.1:1",
                "api_url": "http://127.0.0.1:1/hub/api",
                "learner_accounts": prefix,
            }
        )
    )
    leftover = _orphan_as(account)
    try:
        assert stop_hub(settings) is True
        assert not process.is_running(hub)
        assert processes_of(account) == [], f"the learner's pid {leftover} still runs"
    finally:
        process.stop(hub, timeout=1.0)

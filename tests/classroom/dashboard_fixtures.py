"""Fixtures of the dashboard tests: a real stack, a real hub, the npm proxy.

Imported by name in each test module (one module-scoped stack and hub per module).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError

from labkit.auth.client import AuthClient, Login
from labkit.classroom.dashboard.credentials import PROGRESS_BUCKET
from labkit.classroom.dashboard.progress import encode_report
from labkit.client import connect_as
from labkit.discovery import auth_url
from labkit.nsc.claims import Permissions
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.stack import Stack
from tests.classroom.dashboard_hub import Hub, start_hub
from tests.conftest import RUN_DIR, make_settings

# npm's configurable-http-proxy, installed once per machine for the tests (seconds).
PROXY_CACHE = Path(tempfile.gettempdir()) / "labkit-test-proxy"
PROXY_BIN = PROXY_CACHE / "node_modules" / ".bin" / "configurable-http-proxy"
# A stack user that may write the progress bucket, as the application server will.
PROGRESS_WRITER = "labkit_test_progress_writer"


@pytest.fixture(scope="session")
def proxy_command() -> str:
    """The proxy the hub runs. The one place to switch to the project's own install."""
    if not PROXY_BIN.exists():
        if shutil.which("npm") is None:
            pytest.fail("the dashboard tests need npm (apt-get install npm) for the hub's proxy")
        subprocess.run(
            [
                "npm",
                "install",
                "--no-fund",
                "--no-audit",
                "--prefix",
                str(PROXY_CACHE),
                "configurable-http-proxy@5",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return str(PROXY_BIN)


@pytest.fixture(scope="module")
def class_stack() -> Iterator[Stack]:
    """NATS, NSC, auth and one application server in a data directory of their own."""
    home = Path(tempfile.mkdtemp(prefix="dashboard-stack-", dir=RUN_DIR))
    stack = Stack(make_settings(home))
    try:
        stack.ensure("nats", "nsc", "auth", "server")
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def hub(class_stack: Stack, proxy_command: str) -> Iterator[Hub]:
    workdir = Path(tempfile.mkdtemp(prefix="dashboard-hub-", dir=RUN_DIR))
    running = start_hub(workdir, class_stack.settings.home, proxy_command)
    try:
        yield running
    finally:
        leftovers = running.stop()
        assert not leftovers, f"the hub left processes behind (now killed): {leftovers}"


@dataclass
class Learner:
    email: str
    password: str
    login: Login


def new_learner(settings: Settings, email: str, password: str = "learner-password-1") -> Learner:
    client = AuthClient(auth_url(settings))
    client.register(email, password)
    return Learner(email, password, client.login(email, password))


async def put_progress(
    settings: Settings, user: str, exercise: str, passed: bool, attempts: int
) -> None:
    """Store a report in the progress bucket as the application server's route would."""
    nsc = Nsc.from_settings(settings)
    creds = nsc.issue_stack_user(
        PROGRESS_WRITER, Permissions(publish=(">",), subscribe=(">",))
    ).creds
    nc: Client = await connect_as(creds, settings=settings)
    try:
        js = nc.jetstream()
        try:  # the application server made it, with its own settings
            kv = await js.key_value(PROGRESS_BUCKET)
        except BucketNotFoundError:  # a stack without one
            kv = await js.create_key_value(bucket=PROGRESS_BUCKET)
        await kv.put(
            f"{user}.{exercise}", encode_report(exercise, passed, attempts, datetime.now(UTC))
        )
    finally:
        await nc.close()


def put_progress_from_thread(
    settings: Settings, user: str, exercise: str, passed: bool, attempts: int
) -> None:
    """`put_progress` where an event loop already runs (playwright's sync API has one)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, put_progress(settings, user, exercise, passed, attempts)).result(
            timeout=60
        )

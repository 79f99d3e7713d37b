"""Replicas on the real server: one queue group shares the load, drains, survives a kill."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError

from labkit.client import connect_as
from labkit.labs import lab_server
from labkit.labs.echo import send_echo
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Router, Server
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.stack.app_server import READY_FILE_ENV
from tests.nats_helpers import wait_until

USER = "replica-alice"


async def user_connection(settings: Settings) -> Client:
    # Off this loop, so the replicas in it answer the announcement.
    issued = await Nsc.from_settings(settings).create_user_in_thread(USER)
    return await connect_as(issued.creds, settings=settings)


def test_two_replicas_in_one_queue_group_share_the_requests(running_stack: Stack) -> None:
    settings = running_stack.settings
    total = 200

    async def scenario() -> tuple[list[str], list[int]]:
        replicas = [lab_server(settings), lab_server(settings)]
        nc = None
        try:
            for replica in replicas:
                await replica.start()
            nc = await user_connection(settings)
            answers = await asyncio.gather(*(send_echo(nc, USER, str(n)) for n in range(total)))
            return answers, [replica.stats["echo"].num_requests for replica in replicas]
        finally:
            if nc is not None:
                await nc.close()
            for replica in replicas:
                await replica.stop()

    answers, served = asyncio.run(scenario())
    assert answers == [f"echo {n}" for n in range(total)]
    assert all(count > 0 for count in served), served
    assert sum(served) == total


def test_stop_drains_requests_in_flight(running_stack: Stack) -> None:
    settings = running_stack.settings
    in_flight = 20
    router = Router("slow")
    started: list[str] = []
    finished: list[str] = []

    @router.subscribe("*.echo.slow")  # a subject no other server in the test run serves
    async def slow_echo(request: EchoRequest) -> EchoResponse:
        started.append(request.message)
        await asyncio.sleep(0.3)
        finished.append(request.message)
        return EchoResponse(message=f"slow {request.message}")

    async def scenario() -> tuple[list[str], int]:
        server = Server(router, settings=settings, queue="drain-test")
        await server.start()
        nc = await user_connection(settings)
        try:
            calls = [
                asyncio.create_task(
                    nc.request(
                        f"{USER}.echo.slow", EchoRequest(message=str(n)).SerializeToString(), 3
                    )
                )
                for n in range(in_flight)
            ]
            await wait_until(lambda: len(started) == in_flight, "every request in a handler")
            await server.stop()
            finished_when_stopped = len(finished)
            replies = await asyncio.gather(*calls)
            answers = [EchoResponse.FromString(r.data).message for r in replies]
            return answers, finished_when_stopped
        finally:
            await nc.close()
            await server.stop()  # a no-op once stopped; cleans up after a failure

    answers, finished_when_stopped = asyncio.run(scenario())
    assert finished_when_stopped == in_flight  # stop waited for every handler in hand
    assert answers == [f"slow {n}" for n in range(in_flight)]


def start_replica_process(settings: Settings, ready_file: Path, log_file: Path) -> subprocess.Popen:
    """`python -m labkit.server`, the way the stack starts a replica."""
    env = dict(os.environ)
    env.update(
        {
            "LABKIT_HOME": str(settings.home),
            "LABKIT_NSC_STORE_DIR": str(settings.paths.nsc_store),
            READY_FILE_ENV: str(ready_file),
        }
    )
    with log_file.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "labkit.server"],
            env=env,
            cwd=ready_file.parent,  # no stray .env from the working directory
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def wait_until_ready(process: subprocess.Popen, ready_file: Path, log_file: Path) -> None:
    async with asyncio.timeout(20):
        while not ready_file.exists():
            if process.poll() is not None:
                raise AssertionError(
                    f"replica exited with {process.returncode}:\n{log_file.read_text()}"
                )
            await asyncio.sleep(0.05)


async def echo_with_retries(nc: Client, text: str, attempts: int = 4) -> tuple[str, int]:
    """The retry policy a client needs across a replica's death: timeout 0.5 s, 3 retries."""
    for attempt in range(1, attempts + 1):
        try:
            return await send_echo(nc, USER, text, timeout=0.5), attempt
        except NatsTimeoutError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


def test_killing_a_replica_loses_no_request_with_retries(
    running_stack: Stack, tmp_path: Path
) -> None:
    settings = running_stack.settings
    ready_file, log_file = tmp_path / "replica-b.ready", tmp_path / "replica-b.log"
    total, kill_after = 40, 20
    replica_b = start_replica_process(settings, ready_file, log_file)

    async def scenario() -> tuple[list[str], list[int], int, int]:
        replica_a = lab_server(settings)
        nc = None
        try:
            await wait_until_ready(replica_b, ready_file, log_file)
            await replica_a.start()
            nc = await user_connection(settings)
            answers, attempts = [], []
            served_by_a_before = 0
            for n in range(total):
                if n == kill_after:
                    served_by_a_before = replica_a.stats["echo"].num_requests
                    replica_b.kill()  # SIGKILL: no drain, no goodbye
                answer, tries = await echo_with_retries(nc, str(n))
                answers.append(answer)
                attempts.append(tries)
            served_by_a = replica_a.stats["echo"].num_requests
            return answers, attempts, served_by_a_before, served_by_a
        finally:
            if nc is not None:
                await nc.close()
            await replica_a.stop()

    try:
        answers, attempts, a_before, a_total = asyncio.run(scenario())
    finally:
        if replica_b.poll() is None:
            replica_b.kill()
        replica_b.wait(timeout=10)

    assert answers == [f"echo {n}" for n in range(total)]
    assert a_before < kill_after  # replica B really took part before it was killed
    assert a_total - a_before >= total - kill_after  # after the kill, A answered the rest
    assert max(attempts) <= 4

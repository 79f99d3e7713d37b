"""The real `python -m labkit.server` process, as the stack runs it: SIGTERM drains it.

Requests in hand when the signal comes are answered, then the process exits 0.
To have requests in hand for certain, the file lab's transforms are held: the
object store is paused (SIGSTOP), so each handler waits on its read; the NATS
server's monitoring shows when the server's subscription has been handed them.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from labkit.client import connect_as
from labkit.labs.files import FileClient
from labkit.nsc.wrapper import Nsc
from labkit.objects.sample import sample_image
from labkit.objects.transforms import encode_png
from labkit.protocol import ImageConfirmation, ImageResponse
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.stack.process import ProcessId, exit_code
from labkit.subjects import TRANSFORM_FILE, any_user, matches, user_subject
from tests.conftest import make_settings
from tests.nats_helpers import wait_until

USER = "sigterm-alice"
IN_HAND = 4


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    # All IN_HAND transforms are one user's: let them all in (the server process
    # inherits the environment), rather than answer the ones past her limit `busy`.
    monkeypatch.setenv("LABKIT_S3_TRANSFORMS_PER_USER", str(IN_HAND))
    monkeypatch.setenv("LABKIT_S3_IMAGE_WORKERS", str(IN_HAND + 1))
    stack = Stack(make_settings(tmp_path / "home", s3={"port": 0}))
    stack.ensure("nats", "nsc", "objects")
    stack.ensure("server")  # after the store: the server creates its bucket at start
    yield stack
    stack.down()


def delivered_to_route(monitor_url: str, pattern: str, queue: str) -> int:
    """Messages the NATS server has handed the subscriptions of `pattern` in `queue`.

    The route's catch-all, or its users' own subjects on the reader connections
    (`sigterm-alice.transform_file`, LABKIT_SERVER_READERS).
    """
    connz = requests.get(f"{monitor_url}/connz", params={"subs": "detail"}, timeout=5).json()
    return sum(
        sub["msgs"]
        for connection in connz["connections"]
        for sub in connection.get("subscriptions_list_detail", [])
        if matches(pattern, sub["subject"]) and sub.get("qgroup") == queue
    )


def test_sigterm_answers_the_requests_in_hand_then_exits_0(stack: Stack) -> None:
    settings: Settings = stack.settings
    server_record, objects_record = stack.record("server"), stack.record("objects")
    server = ProcessId(server_record["pid"], server_record["start_time"])
    objects_pid = int(objects_record["pid"])
    monitor = stack.record("nats")["monitor_url"]
    pattern = any_user(TRANSFORM_FILE)

    async def scenario() -> list[ImageResponse]:
        creds = Nsc.from_settings(settings).create_user(USER).creds
        nc = await connect_as(creds, settings=settings)
        files = FileClient(nc, USER)
        try:
            await files.upload(encode_png(sample_image()), "card.png")
            os.kill(objects_pid, signal.SIGSTOP)  # every transform now waits on its read
            try:
                calls = [
                    asyncio.create_task(
                        nc.request(
                            user_subject(USER, TRANSFORM_FILE),
                            ImageConfirmation(
                                name="card.png", transformation="rotate", mode=str(turn)
                            ).SerializeToString(),
                            timeout=20,  # a bound for a stuck test; they take ms
                        )
                    )
                    for turn in (90, 180, 270, 90)[:IN_HAND]
                ]
                await wait_until(
                    lambda: delivered_to_route(monitor, pattern, settings.server.queue) >= IN_HAND,
                    "the server being handed every transform",
                )
                os.kill(server.pid, signal.SIGTERM)
            finally:
                os.kill(objects_pid, signal.SIGCONT)
            replies = await asyncio.gather(*calls)
        finally:
            files.close()
            await nc.close()
        return [ImageResponse.FromString(reply.data) for reply in replies]

    answers = asyncio.run(scenario())
    assert len(answers) == IN_HAND
    assert all(f"/{USER}/card.rotate-" in answer.URL for answer in answers), answers

    async def exited() -> None:
        await wait_until(lambda: exit_code(server) is not None, "the server's exit")

    asyncio.run(exited())
    assert exit_code(server) == 0
    assert not Path(server_record["ready_file"]).exists()  # no longer offered as healthy

"""The application server's own credentials: only what it needs, and every lab still works.

Its answers go out through the response permission (and only inside the requester's
inbox, tests/security/test_server_reply_subjects.py). Beyond that it publishes relayed
ping lines, persisted replies and the JetStream calls on what it owns; anything else
is refused by the real nats-server, whatever a bug or a hostile request made it try.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from labkit.buffer import Buffer
from labkit.labs.caching import send_cached_echo
from labkit.labs.echo import send_echo, send_identified_echo
from labkit.labs.files import FileClient
from labkit.labs.ping_pong import Conversation
from labkit.labs.stream_echo import StreamEchoClient, request_subject
from labkit.nsc.wrapper import Nsc
from labkit.objects.sample import sample_image
from labkit.settings import Settings
from labkit.stack import Stack
from tests.nats_helpers import observed_connection
from tests.security.helpers import connect_user, serving, unique_user

BOB = "sec-creds-bob"

FORBIDDEN = [
    f"{BOB}.echo",  # a request in bob's name
    f"{BOB}.ping",
    f"_INBOX.{BOB}.forged",  # an answer bob never asked for
    f"persist.{BOB}.echo.stream",  # a persisted request in bob's name
    "$JS.API.STREAM.DELETE.ECHO_STREAM",
    "$JS.API.STREAM.PURGE.ECHO_STREAM",
    "$JS.API.STREAM.CREATE.SOMETHING_ELSE",
    "$JS.API.STREAM.NAMES",
    f"$JS.API.CONSUMER.MSG.NEXT.ECHO_STREAM.reply-{BOB}",  # reading bob's replies
    f"$JS.ACK.ECHO_STREAM.reply-{BOB}.1.1.1.1.0",
    "$JS.API.CONSUMER.CREATE.OTHER_STREAM.x",
    "$KV.some-other-bucket.key",
    "$JS.API.STREAM.INFO.KV_some-other-bucket",
    "$SYS.REQ.ACCOUNT.PING.CONNZ",
]


@pytest.fixture(scope="module")
def settings(running_stack: Stack) -> Settings:
    return running_stack.settings


@pytest.mark.parametrize("subject", FORBIDDEN)
def test_the_server_may_not_publish_outside_its_needs(settings: Settings, subject: str) -> None:
    creds = Nsc.from_settings(settings).server_creds()

    async def scenario() -> list[str]:
        nc, seen = await observed_connection(creds, settings.nats.url or _url(settings))
        try:
            await nc.publish(subject, b"the server was tricked")
            await nc.flush()
            # The server's -ERR may come after the flush's PONG: wait for it (bounded).
            async with asyncio.timeout(5):
                while not seen.errors:
                    await asyncio.sleep(0.01)
            assert nc.is_connected
            return seen.errors
        finally:
            await nc.close()

    errors = asyncio.run(scenario())
    assert any(f'permissions violation for publish to "{subject.lower()}"' in e for e in errors)


def _url(settings: Settings) -> str:
    from labkit.discovery import nats_urls

    return nats_urls(settings)[0]


def test_every_lab_works_with_the_narrowed_credentials(
    running_stack: Stack, tmp_path: Path
) -> None:
    running_stack.ensure("objects")
    settings = running_stack.settings.model_copy(deep=True)
    settings.server.cache_backend = "kv"  # the shared cache bucket, too
    alice, bob = unique_user("alice"), unique_user("bob")

    async def scenario() -> dict[str, object]:
        async with serving(settings):
            a = await connect_user(settings, alice)
            b = await connect_user(settings, bob)
            try:
                results: dict[str, object] = {
                    "echo": await send_echo(a, alice, "one"),
                    "identified": await send_identified_echo(a, alice, "two"),
                    "cached": [await send_cached_echo(a, alice, "three") for _ in range(2)],
                }
                to_bob = await Conversation(b, bob).open()
                receipt = await Conversation(a, alice).send(bob, "ping")
                results["ping"] = (
                    receipt.origin,
                    [line.origin for line in await to_bob.wait_for(1)],
                )
                client = await StreamEchoClient(
                    a, alice, Buffer(tmp_path / "outbox.db", request_subject(alice))
                ).open()
                await client.send("four")
                replies: list[str] = []
                async with asyncio.timeout(10):
                    while not replies:
                        replies = await client.read_replies()
                results["stream"] = replies
                await client.close()
                files = FileClient(a, alice)
                png = io.BytesIO()
                sample_image(64, 32).save(png, format="PNG")
                name = await files.upload(png.getvalue(), "sample.png")
                image = await files.transformed(name, "rotate", "90")
                results["files"] = image.size
                files.close()
                return results
            finally:
                await a.close()
                await b.close()

    results = asyncio.run(scenario())
    assert results["echo"] == "echo one"
    assert results["identified"] == f"echo two from {alice}"
    cached = results["cached"]
    assert isinstance(cached, list) and cached[0] == cached[1]
    assert results["ping"] == (alice, [alice])
    assert results["stream"] == [f"echo four from {alice}"]
    assert results["files"] == (32, 64)

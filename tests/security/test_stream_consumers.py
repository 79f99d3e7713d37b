"""Users cannot create or change JetStream consumers: the server makes each one, fixed.

A right to `$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>` constrains the filter,
never the configuration: alice could make `reply-alice` a push consumer delivering
her replies (or, with a wider filter, anyone's) to `bob.inbox`. Now the server creates
`reply-<user>` (a durable pull consumer on that user's replies) when the client asks,
and a user keeps only INFO, MSG.NEXT and ACK on it. Every attempt below is made
against the real nats-server with the user's own credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from labkit.buffer import Buffer
from labkit.discovery import nats_urls
from labkit.labs.reply_consumers import reply_consumer, reply_filter
from labkit.labs.stream_echo import StreamEchoClient, request_subject
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import ECHO_STREAM_NAME
from tests.nats_helpers import observed_connection
from tests.security.helpers import connect_admin, connect_user, serving, unique_user

STREAM = ECHO_STREAM_NAME


@pytest.fixture(scope="module")
def settings(running_stack: Stack) -> Settings:
    return running_stack.settings


def _create(nc: Client, subject: str, config: dict[str, Any]) -> Any:
    body = json.dumps({"stream_name": STREAM, "config": config}).encode()
    return nc.request(subject, body, timeout=0.5)


def attempts(alice: str, bob: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(what, the API subject, the configuration) alice tries."""
    name = reply_consumer(alice)
    own = reply_filter(alice)
    create = f"$JS.API.CONSUMER.CREATE.{STREAM}.{name}"
    return [
        (
            "push to bob's inbox",
            f"{create}.{own}",
            {
                "name": name,
                "durable_name": name,
                "filter_subject": own,
                "deliver_subject": f"{bob}.inbox",
                "ack_policy": "none",
            },
        ),
        (
            "the old fixed pull configuration",
            f"{create}.{own}",
            {"name": name, "durable_name": name, "filter_subject": own, "ack_policy": "explicit"},
        ),
        (
            "no filter in the subject",
            create,
            {"name": name, "durable_name": name, "ack_policy": "explicit"},
        ),
        (
            "the older durable API",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{name}",
            {"durable_name": name, "filter_subject": own, "ack_policy": "explicit"},
        ),
        (
            "an ephemeral consumer",
            f"$JS.API.CONSUMER.CREATE.{STREAM}",
            {"filter_subject": own, "ack_policy": "explicit"},
        ),
    ]


async def consumer_config(admin: Client, name: str) -> ConsumerConfig | None:
    try:
        return (await admin.jetstream().consumer_info(STREAM, name)).config
    except NotFoundError:
        return None


def test_a_user_cannot_create_or_change_a_consumer(settings: Settings, tmp_path: Path) -> None:
    alice, bob = unique_user("alice"), unique_user("bob")

    creds = Nsc.from_settings(settings).create_user(alice).creds

    url = nats_urls(settings)[0]

    async def scenario() -> tuple[
        list[tuple[str, list[str], object]], ConsumerConfig | None, ConsumerConfig | None
    ]:
        outcomes: list[tuple[str, list[str], object]] = []
        admin = await connect_admin(settings)
        try:
            async with serving(settings):
                for what, subject, config in attempts(alice, bob):
                    nc, seen = await observed_connection(creds, url)
                    try:
                        try:
                            answer: object = (await _create(nc, subject, config)).data
                        except Exception as exc:
                            answer = exc
                        async with asyncio.timeout(5):
                            while not seen.errors:
                                await asyncio.sleep(0.01)
                        outcomes.append((what, seen.errors, answer))
                    finally:
                        await nc.close()
                before_open = await consumer_config(admin, reply_consumer(alice))
                # Her client still works: the server made the consumer on her behalf.
                nc, _ = await observed_connection(creds, url)
                try:
                    client = await StreamEchoClient(
                        nc, alice, Buffer(tmp_path / "outbox.db", request_subject(alice))
                    ).open()
                    # Changing the consumer the server made is refused the same way.
                    _, subject, config = attempts(alice, bob)[0]
                    nc2, seen = await observed_connection(creds, url)
                    try:
                        with contextlib.suppress(Exception):  # no answer: refused
                            await _create(nc2, subject, config)
                        async with asyncio.timeout(5):
                            while not seen.errors:
                                await asyncio.sleep(0.01)
                        outcomes.append(("push, once it exists", seen.errors, None))
                    finally:
                        await nc2.close()
                    await client.close()
                finally:
                    await nc.close()
                after = await consumer_config(admin, reply_consumer(alice))
                return outcomes, before_open, after
        finally:
            await admin.close()

    outcomes, before_open, after = asyncio.run(scenario())
    for what, errors, _ in outcomes:
        assert any('permissions violation for publish to "$js.api.consumer' in e for e in errors), (
            what,
            errors,
        )
    assert before_open is None  # none of her attempts made a consumer
    assert after is not None
    assert after.deliver_subject is None and after.filter_subject == reply_filter(alice)
    assert after.ack_policy == AckPolicy.EXPLICIT


def test_the_server_replaces_a_consumer_configured_otherwise(
    settings: Settings, tmp_path: Path
) -> None:
    """A push `reply-<user>` made before users lost the right is not trusted."""
    alice, bob = unique_user("alice"), unique_user("bob")

    async def scenario() -> tuple[ConsumerConfig | None, ConsumerConfig | None, list[str]]:
        admin = await connect_admin(settings)
        try:
            hostile = ConsumerConfig(
                name=reply_consumer(alice),
                durable_name=reply_consumer(alice),
                filter_subject=reply_filter(alice),
                deliver_subject=f"{bob}.inbox",
                deliver_policy=DeliverPolicy.ALL,
                ack_policy=AckPolicy.NONE,
            )
            await admin.jetstream().add_consumer(STREAM, hostile)
            before = await consumer_config(admin, reply_consumer(alice))
            async with serving(settings):
                nc = await connect_user(settings, alice)
                try:
                    client = await StreamEchoClient(
                        nc, alice, Buffer(tmp_path / "outbox.db", request_subject(alice))
                    ).open()
                    await client.send("hello")
                    replies: list[str] = []
                    async with asyncio.timeout(10):
                        while not replies:
                            replies = await client.read_replies()
                    await client.close()
                finally:
                    await nc.close()
            return before, await consumer_config(admin, reply_consumer(alice)), replies
        finally:
            await admin.close()

    before, after, replies = asyncio.run(scenario())
    assert before is not None and before.deliver_subject == f"{bob}.inbox"
    assert after is not None and after.deliver_subject is None
    assert after.filter_subject == reply_filter(alice)
    assert replies == [f"echo hello from {alice}"]

"""Shared by the security tests: users, an in-process lab server, what the stream holds.

Each test module uses users of its own (the NSC store and the stream outlive tests).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from labkit.client import connect_as
from labkit.error_replies import error_from
from labkit.labs import lab_server
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoResponse
from labkit.server.runner import Server
from labkit.settings import Settings
from labkit.subjects import ECHO_STREAM_NAME, stored


def unique_user(role: str) -> str:
    return f"sec-{role}-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def serving(settings: Settings, **options: Any) -> AsyncIterator[Server]:
    """The lab server as the stack runs it, in this process (its stats are readable)."""
    server = lab_server(settings, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def connect_user(settings: Settings, user: str, **options: Any) -> Client:
    # Off this loop: a lab server in it must answer the announcement.
    creds = (await Nsc.from_settings(settings).create_user_in_thread(user)).creds
    return await connect_as(creds, settings=settings, **options)


async def connect_admin(settings: Settings) -> Client:
    """A test-only user that may do anything in the labs' account (to look, not to serve)."""
    permissions = permissions_from_templates("sec-admin", [">"], [">"])
    nsc = Nsc.from_settings(settings)
    creds = (await nsc.create_user_in_thread("sec-admin", permissions=permissions)).creds
    return await connect_as(creds, settings=settings)


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
    assert condition(), what


async def stored_replies(admin: Client, user: str) -> list[tuple[dict[str, str], bytes]]:
    """Every reply the stream holds for `user` (headers, data), oldest first.

    Read with an ephemeral consumer of the admin's, so nobody's durable state moves.
    """
    js = admin.jetstream()
    subject = stored(f"{user}.echo.stream.reply.>")  # one subject per reply
    info = await js.stream_info(ECHO_STREAM_NAME, subjects_filter=subject)
    count = sum((info.state.subjects or {}).values())
    if count == 0:
        return []
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL, filter_subject=subject
    )
    sub = await js.pull_subscribe(subject, stream=ECHO_STREAM_NAME, config=config)
    try:
        found: list[tuple[dict[str, str], bytes]] = []
        while len(found) < count:
            for msg in await sub.fetch(count - len(found), timeout=5):
                found.append((dict(msg.headers or {}), bytes(msg.data)))
        return found
    finally:
        await sub.unsubscribe()


def slot_of(request_sequence: int) -> str:
    """The Nats-Msg-Id of the reply to the request stored at `request_sequence`."""
    return f"{ECHO_STREAM_NAME}-{request_sequence}"


Stored = tuple[dict[str, str], bytes]


async def replies_by_slot(admin: Client, user: str) -> dict[str, list[Stored]]:
    """`user`'s stored replies (headers, data), grouped by Nats-Msg-Id: one slot a request."""
    slots: dict[str, list[Stored]] = {}
    for headers, data in await stored_replies(admin, user):
        slots.setdefault(headers.get("Nats-Msg-Id", ""), []).append((headers, data))
    return slots


def describe(reply: Stored) -> str:
    """`echo ...` for a reply, `error <code>: <message>` for an error reply."""
    headers, data = reply
    error = error_from(headers, data)
    if error is not None:
        return f"error {error.code}: {error.message}"
    return EchoResponse.FromString(data).message


async def wait_for_slot(admin: Client, user: str, slot: str, timeout: float = 30.0) -> Stored:
    """The reply stored in `slot`, once there is one."""
    async with asyncio.timeout(timeout):
        while True:
            found = (await replies_by_slot(admin, user)).get(slot)
            if found:
                return found[0]
            await asyncio.sleep(0.05)

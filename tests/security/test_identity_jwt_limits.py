"""Learners' JWTs carry subscription and payload limits the real server enforces.

Before, every user JWT said -1 (unlimited) for subscriptions, payload and data:
one learner could hold any number of subscriptions or publish the server's
largest message. The defaults (NscSettings.user_max_*) are far above a lab's needs.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError

from labkit.nsc import jwt
from labkit.nsc.claims import UNLIMITED, user_limits
from labkit.nsc.wrapper import Nsc
from labkit.settings import NscSettings
from labkit.stack import Stack
from tests.nats_helpers import Observed, observed_connection

DEFAULTS = NscSettings()


def _nsc(stack: Stack, **limits: int) -> Nsc:
    return Nsc(stack.settings.paths.nsc_store, stack.settings.nsc.model_copy(update=limits))


def test_learners_jwts_carry_the_limits_and_the_stacks_users_none(running_stack: Stack) -> None:
    nsc = Nsc.from_settings(running_stack.settings)
    limits = user_limits(jwt.decode(nsc.create_user("limits-alice").jwt))
    assert limits.subscriptions == DEFAULTS.user_max_subscriptions == 1000
    assert limits.payload == DEFAULTS.user_max_payload == 512 * 1024
    server = user_limits(jwt.decode(nsc.issue_server_user().jwt))
    assert server.subscriptions == server.payload == UNLIMITED


async def _refusal(nc: Client, seen: Observed) -> str:
    """The server's -ERR: nats-py closes the connection on it and keeps it as last_error."""
    await asyncio.wait_for(seen.closed.wait(), timeout=10)
    return str(nc.last_error).lower()


def test_a_subscription_over_the_limit_is_refused(running_stack: Stack) -> None:
    creds = _nsc(running_stack, user_max_subscriptions=3).create_user("limits-subs").creds

    async def scenario() -> str:
        nc, seen = await observed_connection(creds, running_stack.url("nats"))
        for token in "abc":
            await nc.subscribe(f"limits-subs.{token}")
        await nc.flush(timeout=5)
        assert nc.is_connected and nc.last_error is None  # three: at the limit, fine
        await nc.subscribe("limits-subs.d")  # the fourth
        with contextlib.suppress(NatsError):
            await nc.flush(timeout=5)
        return await _refusal(nc, seen)

    assert "maximum subscriptions exceeded" in asyncio.run(scenario())


def test_a_payload_over_the_limit_is_refused(running_stack: Stack) -> None:
    creds = _nsc(running_stack, user_max_payload=1024).create_user("limits-payload").creds

    async def scenario() -> str:
        nc, seen = await observed_connection(creds, running_stack.url("nats"))
        await nc.publish("limits-payload.echo", b"x" * 1024)  # at the limit: fine
        await nc.flush(timeout=5)
        assert nc.is_connected and nc.last_error is None
        await nc.publish("limits-payload.echo", b"x" * 1025)
        with contextlib.suppress(NatsError):
            await nc.flush(timeout=5)
        return await _refusal(nc, seen)

    assert "maximum payload" in asyncio.run(scenario())


@pytest.mark.parametrize("size", [100, 64 * 1024, 256 * 1024])
def test_lab_sized_traffic_passes_under_the_default_limits(running_stack: Stack, size: int) -> None:
    creds = Nsc.from_settings(running_stack.settings).create_user("limits-normal").creds

    async def scenario() -> bytes:
        nc, seen = await observed_connection(creds, running_stack.url("nats"))
        subscriptions = [await nc.subscribe(f"limits-normal.s{n}") for n in range(50)]
        inbox = await nc.subscribe("limits-normal.echo")
        await nc.publish("limits-normal.echo", b"y" * size)
        msg = await inbox.next_msg(timeout=10)
        assert seen.errors == []
        for subscription in subscriptions:
            await subscription.unsubscribe()
        await nc.close()
        return bytes(msg.data)

    assert asyncio.run(scenario()) == b"y" * size

"""A user past their queue bound is answered `busy` with a retry hint; others are not.

Against a real server process (tests/load/fair_server.py) on real NATS, with small
bounds: one handler in flight and five queued per user. Alice's first request is
held in its handler (the server's $SRV.STATS says so); her next five wait in her
queue; three more are answered `busy`, and so is one more sent with `request`,
which the client turns into RemoteError with the hint. Bob, meanwhile, is served,
while every one of alice's still waits. Opening the gate serves alice's six.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from nats.aio.client import Client

from labkit.client import connect_as
from labkit.error_replies import BUSY, RemoteError, raise_for_error
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server.dispatch import answer_busy
from labkit.server.router import Router
from labkit.stack import Stack
from tests.conftest import make_settings
from tests.load.conftest import StartServer, fair_server  # noqa: F401  (the fixture)
from tests.load.fairness import NAME, Burst
from tests.nats_helpers import wait_until

ALICE, BOB, ADMIN = "fair-bound-alice", "fair-bound-bob", "fair-bound-admin"
QUEUED = 5
OVER = 3
RETRY_AFTER = 0.5  # seconds


async def fair_share(admin: Client) -> dict[str, Any]:
    reply = await admin.request(f"$SRV.STATS.{NAME}", b"", timeout=10)
    return json.loads(reply.data)  # type: ignore[no-any-return]


def test_a_user_past_the_queue_bound_gets_busy_and_another_is_served(
    running_stack: Stack,
    fair_server: StartServer,  # noqa: F811
) -> None:
    fair_server(USER_MAX_IN_FLIGHT=1, USER_MAX_QUEUED=QUEUED, BUSY_RETRY_AFTER=RETRY_AFTER)
    settings = make_settings(running_stack.settings.home)
    nsc = Nsc.from_settings(settings)
    alice_creds, bob_creds = nsc.create_user(ALICE).creds, nsc.create_user(BOB).creds
    everything = permissions_from_templates(ADMIN, [">"], [">"])
    admin_creds = nsc.create_user(ADMIN, permissions=everything).creds

    async def scenario() -> tuple[Burst, RemoteError, dict[str, Any], str, int]:
        alice = await connect_as(alice_creds, settings=settings)
        bob = await connect_as(bob_creds, settings=settings)
        admin = await connect_as(admin_creds, settings=settings)
        burst = Burst(1 + QUEUED + OVER)
        held = f"{ALICE}.echo.fairheld"
        try:
            await burst.fire(alice, held, count=1)
            # Her first request is in its handler, none waits: the rest will queue.
            stats: dict[str, Any] = {}
            while not (stats and stats["in_hand"] == 1 and not stats["queued_by_user"]):
                stats = (await fair_share(admin))["fair_share"]
            await burst.fire(alice, held, count=QUEUED + OVER)
            await wait_until(lambda: burst.busy == OVER, f"{OVER} busy answers")
            with pytest.raises(RemoteError) as refused:
                reply = await alice.request(held, b"", timeout=10)
                raise_for_error(reply.headers, reply.data)
            answer = await bob.request(
                f"{BOB}.echo.fair", EchoRequest(message="hi").SerializeToString(), timeout=10
            )
            raise_for_error(answer.headers, answer.data)
            bob_message = EchoResponse.FromString(answer.data).message
            served_before_opening = burst.served
            during = await fair_share(admin)
            await bob.request(f"{BOB}.echo.fairopen", b"", timeout=10)
            await wait_until(lambda: burst.served == 1 + QUEUED, "alice's queue served")
        finally:
            await alice.close()
            await bob.close()
            await admin.close()
        return burst, refused.value, during, bob_message, served_before_opening

    burst, refused, during, bob_message, served_before_opening = asyncio.run(scenario())
    assert bob_message.endswith(" hi")  # bob was served ...
    assert served_before_opening == 0  # ... while all of alice's waited
    assert burst.busy == OVER and burst.other == []
    assert burst.retry_hints == {str(round(RETRY_AFTER * 1000))}
    assert refused.code == BUSY
    assert refused.retry_after == RETRY_AFTER
    assert f"send it again in {round(RETRY_AFTER * 1000)} ms" in refused.message
    # $SRV.STATS shows alice's queue depth and her busy answers, and nobody else's.
    fair = during["fair_share"]
    assert fair["queued_by_user"] == {ALICE: QUEUED}
    assert fair["busy_by_user"] == {ALICE: OVER + 1}
    assert fair["user_max_queued"] == QUEUED and fair["user_max_in_flight"] == 1
    endpoints = {endpoint["name"]: endpoint for endpoint in during["endpoints"]}
    assert endpoints["held"]["data"]["busy_by_user"] == {ALICE: OVER + 1}
    assert endpoints["echo"]["data"]["busy"] == 0


def test_a_busy_answer_goes_only_to_the_senders_own_inbox() -> None:
    router = Router("busy")

    @router.subscribe("*.echo.fair")
    async def echo(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=request.message)

    sent: list[str] = []

    async def send(subject: str, data: bytes, headers: dict[str, str] | None) -> None:
        sent.append(subject)

    async def scenario() -> tuple[bool, bool]:
        route = router.routes[0]
        spoofed = await answer_busy(route, "alice.echo.fair", "_INBOX.bob.x", send, 0.25)
        own = await answer_busy(route, "alice.echo.fair", "_INBOX.alice.x", send, 0.25)
        return spoofed.refused, own.refused

    spoofed_refused, own_refused = asyncio.run(scenario())
    assert spoofed_refused and not own_refused
    assert sent == ["_INBOX.alice.x"]


def test_past_the_busy_backlog_the_busy_answer_is_sent_at_once_and_none_is_lost(
    running_stack: Stack,
    fair_server: StartServer,  # noqa: F811
) -> None:
    """BUSY_BACKLOG 1: past one `busy` answer waiting for alice's turn, the server sends
    them from the receive path (its own task, reading goes on); every one arrives."""
    queued, over = 2, 6
    fair_server(USER_MAX_IN_FLIGHT=1, USER_MAX_QUEUED=queued, BUSY_BACKLOG=1)
    settings = make_settings(running_stack.settings.home)
    nsc = Nsc.from_settings(settings)
    alice_creds = nsc.create_user(ALICE).creds
    everything = permissions_from_templates(ADMIN, [">"], [">"])
    admin_creds = nsc.create_user(ADMIN, permissions=everything).creds

    async def scenario() -> tuple[Burst, int, dict[str, Any]]:
        alice = await connect_as(alice_creds, settings=settings)
        admin = await connect_as(admin_creds, settings=settings)
        burst = Burst(1 + queued + over)
        held = f"{ALICE}.echo.fairheld"
        try:
            await burst.fire(alice, held, count=1)
            stats: dict[str, Any] = {}
            while not (stats and stats["in_hand"] == 1 and not stats["queued_by_user"]):
                stats = (await fair_share(admin))["fair_share"]
            await burst.fire(alice, held, count=queued + over)
            await wait_until(lambda: burst.busy == over, f"{over} busy answers")
            served_before_opening = burst.served
            during = (await fair_share(admin))["fair_share"]
            await admin.request(f"{ADMIN}.echo.fairopen", b"", timeout=10)
            await wait_until(lambda: burst.served == 1 + queued, "alice's queue served")
        finally:
            await alice.close()
            await admin.close()
        return burst, served_before_opening, during

    burst, served_before_opening, during = asyncio.run(scenario())
    assert served_before_opening == 0
    assert burst.busy == over and burst.other == []
    assert burst.retry_hints == {"250"}  # the default hint
    assert during["busy_by_user"] == {ALICE: over}
    assert during["queued_by_user"] == {ALICE: queued}

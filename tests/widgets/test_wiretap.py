"""The wire taps against a real server: the observer's view of everyone, a user's own view."""

from __future__ import annotations

import asyncio

from labkit.client import connect_as
from labkit.labs import lab_server
from labkit.labs.echo import send_echo
from labkit.labs.ping_pong import Conversation
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest
from labkit.stack import Stack
from labkit.subjects import PERSIST_PREFIX
from labkit.widgets.labs import WireTap
from labkit.widgets.wiretap import LAB_SUBJECTS, OBSERVER_COLUMNS, ObserverTap

ALICE = "tap-alice"
BOB = "tap-bob"


async def creds_of(nsc: Nsc, user: str) -> str:
    """`user`'s creds, created off this loop's thread: the server running in this loop
    must hear the new user's announcement while create_user waits for its answer."""
    return (await nsc.create_user_in_thread(user)).creds


def test_the_observer_sees_every_users_requests_and_replies(running_stack: Stack) -> None:
    settings = running_stack.settings
    nsc = Nsc.from_settings(settings)

    async def scenario() -> tuple[ObserverTap, list[dict[str, object]]]:
        server = lab_server(settings)
        await server.start()
        tap = ObserverTap(settings=settings)
        await tap.start()
        alice = await connect_as(await creds_of(nsc, ALICE), settings=settings)
        bob = await connect_as(await creds_of(nsc, BOB), settings=settings)
        try:
            assert await send_echo(alice, ALICE, "hello") == "echo hello"
            bob_side = await Conversation(bob, BOB).open()
            await Conversation(alice, ALICE).send(BOB, "hi bob")
            await bob_side.wait_for(1)
            # echo request + reply, ping + receipt, the relayed line on bob's inbox
            rows = await tap.wait_for(5)
        finally:
            await tap.stop()
            for nc in (alice, bob):
                await nc.close()
            await server.stop()
        return tap, rows

    tap, rows = asyncio.run(scenario())
    assert not tap.running
    assert all(tuple(row) == OBSERVER_COLUMNS for row in rows)
    seen = {(row["subject"].split(".")[0], row["sender"], row["message"]) for row in rows}
    assert (ALICE, ALICE, 'EchoRequest{message: "hello"}') in seen
    assert ("_INBOX", ALICE, 'EchoResponse{message: "echo hello"}') in seen
    assert (ALICE, ALICE, f'PingRequest{{destination: "{BOB}" message: "hi bob"}}') in seen
    relayed = f'PingRequest{{destination: "{BOB}" origin: "{ALICE}" message: "hi bob"}}'
    assert (BOB, BOB, relayed) in seen, "the line the server relayed to bob's inbox"
    assert ("_INBOX", ALICE, relayed) in seen, "alice's receipt, decoded as a PingRequest"
    assert all(isinstance(row["size"], int) and row["size"] > 0 for row in rows)
    assert "hi bob" in tap.table.value
    assert repr(tap) == f"ObserverTap({len(LAB_SUBJECTS)} subjects, stopped, rows={len(rows)})"


def test_a_users_wire_tap_sees_its_own_request_and_reply(running_stack: Stack) -> None:
    settings = running_stack.settings
    nsc = Nsc.from_settings(settings)

    async def scenario() -> list[tuple[str, str]]:
        server = lab_server(settings)
        await server.start()
        nc = await connect_as(await creds_of(nsc, ALICE), settings=settings)
        tap = WireTap(nc, [f"{ALICE}.>", f"_INBOX.{ALICE}.>"])
        try:
            await tap.start()
            await send_echo(nc, ALICE, "mine")
            for _ in range(100):
                if len(tap.rows) >= 2:
                    break
                await asyncio.sleep(0.01)
            await tap.stop()
        finally:
            await nc.close()
            await server.stop()
        return [(row.subject.split(".")[0], row.text) for row in tap.rows]

    assert asyncio.run(scenario()) == [
        (ALICE, 'EchoRequest{message: "mine"}'),
        ("_INBOX", 'EchoResponse{message: "echo mine"}'),
    ]


def test_the_observer_shows_a_persisted_echo_and_hides_the_polling(running_stack: Stack) -> None:
    settings = running_stack.settings
    nsc = Nsc.from_settings(settings)

    async def scenario() -> tuple[ObserverTap, str]:
        server = lab_server(settings)
        await server.start()
        tap = ObserverTap([f"{PERSIST_PREFIX}.>", "_INBOX.>"], settings=settings)
        await tap.start()
        alice = await connect_as(await creds_of(nsc, ALICE), settings=settings)
        try:
            request = EchoRequest(message="kept").SerializeToString()
            ack = await alice.jetstream().publish(f"{ALICE}.echo.stream", request)
            # Each reply on a subject of its own request's (here: by its sequence).
            stored_reply = f"{PERSIST_PREFIX}.{ALICE}.echo.stream.reply.seq-{ack.seq}"
            async with asyncio.timeout(5):
                while not any(row["subject"] == stored_reply for row in tap.rows):
                    await asyncio.sleep(0.02)
        finally:
            await tap.stop()
            await alice.close()
            await server.stop()
        return tap, stored_reply

    tap, stored_reply = asyncio.run(scenario())
    seen = [(row["subject"], row["sender"], row["message"]) for row in tap.rows]
    assert (f"persist.{ALICE}.echo.stream", ALICE, 'EchoRequest{message: "kept"}') in seen
    stored = f'EchoResponse{{message: "echo kept from {ALICE}"}}'
    assert (stored_reply, ALICE, stored) in seen
    acks = [m for s, who, m in seen if s.startswith(f"_INBOX.{ALICE}.") and m.startswith("JSON")]
    assert acks and '"stream":"ECHO_STREAM"' in acks[0], seen
    assert not any(m.startswith(("status 404", "status 408")) for _, _, m in seen)

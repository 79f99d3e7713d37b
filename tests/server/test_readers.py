"""Reader connections (LABKIT_SERVER_READERS) on the real NATS server.

Each user's route subjects are subscribed on one of the server's reader connections,
for the users that exist (the NSC store, or the `users` source a test gives), in the
route's one queue group. Every change (a user new to a replica, a switch to the
catch-alls past the bound and back, a user released) subscribes the new way first
and drains the old one: no request lost, none served twice, with two replicas.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Collection
from pathlib import Path

from nats.aio.client import Client

from labkit.client import connect_as
from labkit.error_replies import raise_for_error
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Router, Server
from labkit.server.readers import UserRoute, per_user_suffix
from labkit.settings import Settings
from labkit.stack import Stack
from tests.conftest import make_settings
from tests.nats_helpers import sentinel_through, wait_until

# A subject no other server of the run serves (the server's creds read `*.echo.>`).
ROUTE = "*.echo.readers"
QUEUE = "readers-test"
GENEROUS = 30.0  # seconds per request: a bound for a stuck test, not a speed claim


def readers_router() -> Router:
    router = Router("readers")

    @router.subscribe(ROUTE, name="readers_echo")
    async def echo(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=f"echo {request.message}")

    return router


def reader_settings(stack: Stack, **server: object) -> Settings:
    return make_settings(
        stack.settings.home,
        # Refreshed by the test itself, at the moments it picks.
        server={"readers": 2, "reader_refresh": 3600, **server},
    )


class Users:
    """A replica's view of who exists, changed by the test."""

    def __init__(self, *users: str) -> None:
        self.now: set[str] = set(users)

    def __call__(self) -> Collection[str]:
        return set(self.now)


async def ask(nc: Client, user: str, message: str) -> str:
    reply = await nc.request(
        f"{user}.echo.readers",
        EchoRequest(message=message).SerializeToString(),
        timeout=GENEROUS,
    )
    raise_for_error(reply.headers, reply.data)
    return EchoResponse.FromString(reply.data).message


def test_no_request_is_lost_or_served_twice_while_two_replicas_change_how_they_read_a_user(
    running_stack: Stack,
) -> None:
    settings = reader_settings(running_stack, reader_max_users=2)
    carol = "readers-carol"
    creds = Nsc.from_settings(settings).create_user(carol).creds
    seen_by = {"a": Users(carol), "b": Users()}  # b does not know carol yet

    async def scenario() -> tuple[list[str], list[str], int, list[int]]:
        replicas = {
            name: Server(readers_router(), settings=settings, queue=QUEUE, users=users)
            for name, users in seen_by.items()
        }
        a, b = replicas["a"], replicas["b"]
        nc = None
        try:
            for replica in replicas.values():
                await replica.start()
            assert a.readers is not None and b.readers is not None
            assert a.readers.users == {carol} and b.readers.users == set()
            nc = await connect_as(creds, settings=settings)

            async def become(name: str, *users: str) -> None:
                seen_by[name].now = set(users)
                await replicas[name].refresh_readers()

            # Carol keeps asking, 10 requests at a time, all through each change.
            changes = [
                lambda: become("a", carol, "x1", "x2"),  # a alone, past its bound: catch-alls
                lambda: become("a", carol),  # and back to a reader
                lambda: become("b", carol),  # new to b: now both read her
                lambda: become("a", carol, "x1", "x2"),  # a past its bound: catch-alls
                lambda: become("b", carol, "x1", "x2"),  # b too: only catch-alls
                lambda: become("a", carol),  # a reads her on a reader again
                lambda: become("b", carol),  # b too
                lambda: become("a"),  # a forgets her: b alone reads her
            ]
            answers: list[str] = []
            sent: list[str] = []
            for number, change in enumerate(changes):
                changed = asyncio.Event()

                async def keep_asking(
                    number: int = number, changed: asyncio.Event = changed
                ) -> None:
                    batch = 0
                    while not changed.is_set() or batch < 3:
                        messages = [f"{number}-{batch}-{n}" for n in range(10)]
                        sent.extend(messages)
                        answers.extend(await asyncio.gather(*(ask(nc, carol, m) for m in messages)))
                        batch += 1

                asking = asyncio.create_task(keep_asking())
                await change()
                changed.set()
                await asking
            served = [replica.stats["readers_echo"].num_requests for replica in (a, b)]
            assert a.readers.users == set() and b.readers.users == {carol}
            return sent, answers, len(sent), served
        finally:
            if nc is not None:
                await nc.close()
            for replica in replicas.values():
                await replica.stop()

    sent, answers, total, served = asyncio.run(scenario())
    assert answers == [f"echo {message}" for message in sent]  # none lost
    assert sum(served) == total  # none served twice
    assert all(count > 0 for count in served), served  # both replicas took a share


def test_made_up_names_get_no_subscription_and_past_the_bound_the_server_uses_catch_alls(
    running_stack: Stack,
) -> None:
    nsc = Nsc.from_settings(running_stack.settings)
    mallory, dave = "readers-mallory", "readers-dave"
    mallory_creds = nsc.create_user(mallory).creds
    existing = set(nsc.users()) - nsc.stack_users
    # Room for the users there are now, and for no more.
    settings = reader_settings(running_stack, reader_max_users=len(existing))
    made_up = [f"nobody{n}" for n in range(500)]

    async def scenario() -> None:
        server = Server(readers_router(), settings=settings, queue=QUEUE)
        nc = None
        try:
            await server.start()
            readers = server.readers
            assert readers is not None
            assert readers.users == existing
            assert readers.subscriptions == len(existing)  # one route: one each
            nc = await connect_as(mallory_creds, settings=settings)
            # A flood on made-up users' subjects: refused by NATS, seen by no one.
            for name in made_up:
                await nc.publish(f"{name}.echo.readers", b"")
            await sentinel_through(nc, f"{mallory}.inbox")
            assert await ask(nc, mallory, "still here") == "echo still here"
            await server.refresh_readers()
            assert readers.users == existing
            assert readers.subscriptions == len(existing)

            # One more user than the bound: no reader subscription at all, the
            # route's catch-all reads everyone, and every request is still answered.
            await nsc.create_user_in_thread(dave)  # the server here hears it
            await server.refresh_readers()
            assert readers.users == set() and readers.subscriptions == 0
            answers = await asyncio.gather(*(ask(nc, mallory, str(n)) for n in range(50)))
            assert answers == [f"echo {n}" for n in range(50)]
            assert server.stats["readers_echo"].num_requests == 51
        finally:
            if nc is not None:
                await nc.close()
            await server.stop()

    asyncio.run(scenario())


def test_after_nats_restarts_the_readers_read_again_and_nothing_is_served_twice(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # one port for both lives of the NATS server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = make_settings(
        tmp_path / "home",
        nats={"port": port, "monitor_port": 0, "ws_port": 0},
        server={"readers": 2, "reader_refresh": 3600},
    )
    stack = Stack(settings)
    stack.ensure("nats")
    carol = "readers-carol"
    creds = Nsc.from_settings(settings).create_user(carol).creds
    rounds = 50

    async def scenario() -> tuple[list[str], int]:
        server = Server(readers_router(), settings=settings, queue=QUEUE, users=Users(carol))
        nc = None
        try:
            await server.start()
            assert server.readers is not None
            readers = server.readers.connections()
            nc = await connect_as(creds, settings=settings)
            answers = [await ask(nc, carol, f"before {n}") for n in range(rounds)]
            reconnects = [reader.stats["reconnects"] for reader in readers]
            stack.down("nats")
            stack.ensure("nats")
            await wait_until(
                lambda: all(
                    reader.is_connected and reader.stats["reconnects"] > count
                    for reader, count in zip(readers, reconnects, strict=True)
                ),
                "the readers' reconnection",
                GENEROUS,
            )
            await wait_until(lambda: nc is not None and nc.is_connected, "carol's", GENEROUS)
            # Their subscriptions, sent again on reconnecting, are in place at NATS.
            await asyncio.gather(*(reader.flush() for reader in readers))
            answers += [await ask(nc, carol, f"after {n}") for n in range(rounds)]
            return answers, server.stats["readers_echo"].num_requests
        finally:
            if nc is not None:
                await nc.close()
            await server.stop()

    try:
        answers, served = asyncio.run(scenario())
    finally:
        stack.down()
    expected = [f"echo {when} {n}" for when in ("before", "after") for n in range(rounds)]
    assert answers == expected
    assert served == 2 * rounds


def test_only_routes_whose_first_token_is_the_user_are_read_per_user() -> None:
    assert per_user_suffix("*.echo") == ".echo"
    assert per_user_suffix("*.echo.>") == ".echo.>"
    assert per_user_suffix("v2.*.echo") is None  # the user is not the first token
    assert per_user_suffix("*") is None
    assert UserRoute(".echo.cached", lambda *_: None).subject("alice") == "alice.echo.cached"

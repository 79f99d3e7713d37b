"""A learner created by the stack is read by the servers before their creds are used.

With reader connections (on by default) each learner's route subjects are subscribed
per user, and the servers list the NSC store only every LABKIT_SERVER_READER_REFRESH
(set to an hour here, so the listing cannot rescue anything). What makes a new
learner's first request answered is the announcement on USER_NEW that
`Nsc.from_settings(...).create_user` sends (labkit.nsc.announce), heard by every
server with readers (labkit.server.announcements). Without it the same request gets
"no responders": the second test shows it, on the same stack.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Iterator

import pytest
import requests
from nats.aio.client import Client
from nats.errors import NoRespondersError

from labkit.auth.client import AuthClient
from labkit.client import connect_as
from labkit.discovery import auth_url, nats_monitor_urls, nats_urls
from labkit.error_replies import raise_for_error
from labkit.exercises.live import connect_learner
from labkit.nsc.announce import Outcome, UserAnnouncer, announce_user, announce_user_sync
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server import Router, Server
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.subjects import USER_NEW
from tests.conftest import make_settings

REPLICAS = 2
# Long enough that no periodic listing happens while this module runs.
REFRESH = 3600
GENEROUS = 30.0  # seconds per request: a bound for a stuck test, not a speed claim


@pytest.fixture(scope="module")
def announced_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """NATS, NSC, auth and two application server processes, readers on (the default)."""
    settings = make_settings(
        tmp_path_factory.mktemp("announce") / "home",
        server={"replicas": REPLICAS, "reader_refresh": REFRESH},
    )
    assert settings.server.readers > 0  # the default
    stack = Stack(settings)
    try:
        # The server processes read the refresh period from the environment they start with.
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("LABKIT_SERVER_READER_REFRESH", str(REFRESH))
            stack.ensure("nats", "nsc", "auth", "server")
        yield stack
    finally:
        stack.down()


def echo_router(name: str) -> Router:
    """An echo on `*.echo.<name>` (its endpoint `<name>_echo`), for servers in the test's loop."""
    router = Router(name)

    @router.subscribe(f"*.echo.{name}", name=f"{name}_echo")
    async def named_echo(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=f"echo {request.message}")

    return router


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def echo(nc: Client, user: str, message: str) -> str:
    reply = await nc.request(
        f"{user}.echo", EchoRequest(message=message).SerializeToString(), timeout=GENEROUS
    )
    raise_for_error(reply.headers, reply.data)
    return EchoResponse.FromString(reply.data).message


def echo_as(creds: str, user: str, settings: Settings, messages: list[str]) -> list[str]:
    async def ask() -> list[str]:
        nc = await connect_as(creds, settings=settings)
        try:
            return [await echo(nc, user, message) for message in messages]
        finally:
            await nc.close()

    return asyncio.run(ask())


def test_a_learner_created_from_settings_is_answered_at_once(announced_stack: Stack) -> None:
    settings = announced_stack.settings
    for _ in range(3):
        user = fresh("announced")
        creds = Nsc.from_settings(settings).create_user(user).creds
        assert echo_as(creds, user, settings, ["hi"]) == ["echo hi"]


def test_without_the_announcement_a_new_learner_gets_no_responders(
    announced_stack: Stack,
) -> None:
    settings = announced_stack.settings
    user = fresh("unannounced")
    # The same store without the hook `from_settings` wires in: nobody is told.
    quiet = Nsc(settings.paths.nsc_store, settings.nsc)
    assert quiet.on_user_created is None
    creds = quiet.create_user(user).creds
    with pytest.raises(NoRespondersError):
        echo_as(creds, user, settings, ["hi"])
    # Announced afterwards (as create_user from settings does), the user is read.
    announced = announce_user_sync(nats_urls(settings), quiet.server_creds(), user)
    assert announced.outcome is Outcome.READ, announced
    assert echo_as(creds, user, settings, ["hi"]) == ["echo hi"]


def test_a_learner_registered_through_the_services_is_answered_at_once(
    announced_stack: Stack,
) -> None:
    settings = announced_stack.settings
    auth = AuthClient(auth_url(settings))
    email, password = f"{fresh('reg')}@example.org", "a long enough password"
    auth.register(email, password)
    login = auth.login(email, password)  # the auth service asks the NSC service's /new-user
    user = login.user_id  # the learner's NATS name
    assert echo_as(login.nats.creds, user, settings, ["first", "second"]) == [
        "echo first",
        "echo second",
    ]


def test_made_up_and_stack_names_are_answered_with_an_error_and_get_no_subscription(
    announced_stack: Stack,
) -> None:
    settings = announced_stack.settings
    nsc = Nsc(settings.paths.nsc_store, settings.nsc)  # no hook: announced by hand below
    real = fresh("real")
    nsc.create_user(real)
    made_up = fresh("nobody")

    async def announce(payload: bytes) -> dict[str, object]:
        # A stack user (the server's creds) may publish on USER_NEW; a learner may not.
        nc = await connect_as(nsc.server_creds(), settings=settings)
        try:
            reply = await nc.request(USER_NEW, payload, timeout=GENEROUS)
            answer: dict[str, object] = json.loads(reply.data)
            return answer
        finally:
            await nc.close()

    for payload in (made_up.encode(), b"labkit_observer", b"persist", b"a.b", b"\xff\xfe"):
        answer = asyncio.run(announce(payload))
        assert "error" in answer and "read" not in answer, (payload, answer)
    assert asyncio.run(announce(real.encode())) == {"user": real, "read": True}

    # What the NATS server holds: subscriptions for the real user, none for the others.
    subjects = subscribed_subjects(settings)
    assert f"{real}.echo" in subjects
    assert not [subject for subject in subjects if made_up in subject or "persist." in subject]


def subscribed_subjects(settings: Settings) -> set[str]:
    """Every subject some connection subscribes now, from the NATS server's monitor."""
    url = nats_monitor_urls(settings)[0]
    connz = requests.get(f"{url}/connz", params={"subs": "1", "limit": "1024"}, timeout=10).json()
    return {
        subject
        for connection in connz["connections"]
        for subject in connection.get("subscriptions_list", [])
    }


@pytest.mark.parametrize("name", ["labkit", "plain-learner"])
def test_a_learner_may_neither_publish_nor_subscribe_announcements(
    announced_stack: Stack, name: str
) -> None:
    # A learner may be called `labkit`: that is why the subject's first token is not.
    async def check() -> None:
        async with connect_learner(announced_stack.settings, f"{name}") as learner:
            assert await learner.may_publish(f"{name}.control")  # the control
            assert not await learner.may_publish(USER_NEW)
            assert not await learner.may_subscribe(USER_NEW)

    asyncio.run(check())


def test_with_no_server_running_the_announcement_returns_without_an_answer(
    running_stack: Stack,
) -> None:
    settings = running_stack.settings  # NATS and NSC, no application server
    nsc = Nsc.from_settings(settings)
    announced = announce_user_sync(nats_urls(settings), nsc.server_creds(), "no-server-here")
    assert announced.outcome is Outcome.NO_SERVER
    # And creating a learner there is untouched by it.
    issued = nsc.create_user(fresh("no-server"))
    assert issued.name in nsc.users()


def test_with_nats_down_the_announcement_ends_within_its_bound_and_creation_goes_on(
    running_stack: Stack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    creds = Nsc.from_settings(running_stack.settings).server_creds()
    with socket.socket() as closed:  # a port nothing listens on: refused at once
        closed.bind(("127.0.0.1", 0))
        refused = f"nats://127.0.0.1:{closed.getsockname()[1]}"
    announced = announce_user_sync(refused, creds, "anyone", timeout=0.5)
    # Told by the refusal itself, not cut by the bound.
    assert announced.outcome is Outcome.UNREACHABLE, announced
    assert "NoServersError" in announced.detail

    # A port that accepts and never says a word: only the announcement's own bound
    # ends it (not the thread's last-resort wait, whose outcome would say so).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"nats://127.0.0.1:{silent.getsockname()[1]}"
        announced = announce_user_sync(url, creds, "anyone", timeout=0.5)
    assert announced.outcome is Outcome.UNREACHABLE, announced
    assert "Timeout" in announced.detail

    # Creating a learner whose stack's NATS is gone (its record left behind) goes on.
    settings = make_settings(tmp_path_factory.mktemp("nats-down") / "home", nats={"url": refused})
    nsc = Nsc.from_settings(settings)
    nsc.setup()
    nsc.issue_server_user()
    issued = nsc.create_user("after-nats-went")
    assert issued.name in nsc.users()


def test_the_announcement_works_from_inside_a_running_event_loop(
    announced_stack: Stack,
) -> None:
    settings = announced_stack.settings

    async def inside_a_loop() -> list[str]:
        user = fresh("in-loop")
        # Plain sync create_user in a coroutine (a notebook cell, an async test): the
        # servers are other processes, so they answer while this loop waits.
        creds = Nsc.from_settings(settings).create_user(user).creds
        nc = await connect_as(creds, settings=settings)
        try:
            return [await echo(nc, user, "from a loop")]
        finally:
            await nc.close()

    assert asyncio.run(inside_a_loop()) == ["echo from a loop"]


def test_two_replicas_in_one_loop_serve_an_announced_learner_exactly_once(
    running_stack: Stack,
) -> None:
    settings = make_settings(running_stack.settings.home, server={"reader_refresh": REFRESH})
    router = echo_router("announced")

    rounds = 40

    async def scenario() -> tuple[list[str], list[int]]:
        queue = fresh("announced")
        replicas = [Server(router, settings=settings, queue=queue) for _ in range(REPLICAS)]
        nc = None
        try:
            for replica in replicas:
                await replica.start()
            user = fresh("twice")
            assert all(user not in replica.readers.users for replica in replicas if replica.readers)
            # Created off this loop's thread, so the replicas in this loop can answer
            # the announcement (labkit.nsc.announce).
            creds = (await Nsc.from_settings(settings).create_user_in_thread(user)).creds
            nc = await connect_as(creds, settings=settings)

            async def ask(n: int) -> str:
                reply = await nc.request(
                    f"{user}.echo.announced",
                    EchoRequest(message=str(n)).SerializeToString(),
                    timeout=GENEROUS,
                )
                raise_for_error(reply.headers, reply.data)
                return EchoResponse.FromString(reply.data).message

            answers = await asyncio.gather(*(ask(n) for n in range(rounds)))
            served = [replica.stats["announced_echo"].num_requests for replica in replicas]
            return list(answers), served
        finally:
            if nc is not None:
                await nc.close()
            for replica in replicas:
                await replica.stop()

    answers, served = asyncio.run(scenario())
    assert answers == [f"echo {n}" for n in range(rounds)]
    assert sum(served) == rounds  # none served twice


def test_the_awaited_announcer_never_raises(running_stack: Stack) -> None:
    # The async form, for callers in a loop of their own.
    creds = Nsc.from_settings(running_stack.settings).server_creds()
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"nats://127.0.0.1:{closed.getsockname()[1]}"
    for servers, given in ((url, creds), (nats_urls(running_stack.settings), "not creds")):
        announced = asyncio.run(announce_user(servers, given, "anyone", timeout=0.5))
        assert announced.outcome is Outcome.UNREACHABLE, announced


def test_a_server_past_its_user_bound_answers_for_its_users_and_one_without_readers_is_deaf(
    running_stack: Stack,
) -> None:
    router = Router("deaf")

    @router.subscribe("*.echo.deaf", name="deaf_echo")
    async def deaf_echo(request: EchoRequest) -> EchoResponse:
        return EchoResponse(message=request.message)

    known = {"bound-ann", "bound-ben"}

    async def scenario() -> tuple[Outcome, Outcome, Outcome]:
        servers = nats_urls(running_stack.settings)
        creds = Nsc.from_settings(running_stack.settings).server_creds()
        off = make_settings(running_stack.settings.home, server={"readers": 0})
        server = Server(router, settings=off, queue=fresh("deaf"), users=lambda: known)
        await server.start()
        try:  # one connection for all: USER_NEW is not even subscribed
            unheard = await announce_user(servers, creds, "bound-ann")
        finally:
            await server.stop()
        # Two users, a bound of one: the catch-alls read everyone the store lists.
        bounded = make_settings(
            running_stack.settings.home,
            server={"readers": 2, "reader_max_users": 1, "reader_refresh": REFRESH},
        )
        server = Server(router, settings=bounded, queue=fresh("deaf"), users=lambda: known)
        await server.start()
        try:
            assert server.readers is not None and server.readers.users == set()
            listed = await announce_user(servers, creds, "bound-ann")
            unlisted = await announce_user(servers, creds, "bound-nobody")
            assert server.readers.users == set()
        finally:
            await server.stop()
        return unheard.outcome, listed.outcome, unlisted.outcome

    assert asyncio.run(scenario()) == (Outcome.NO_SERVER, Outcome.READ, Outcome.REFUSED)


def test_created_in_the_loop_of_a_server_it_is_answered_late_and_the_warning_says_why(
    running_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    # The trap the hint is for: a Server in this very loop cannot answer while the
    # loop waits in create_user. The user is still read once the loop runs again.
    settings = make_settings(running_stack.settings.home, server={"reader_refresh": REFRESH})
    router = echo_router("late")

    async def scenario() -> str:
        server = Server(router, settings=settings, queue=fresh("late"))
        await server.start()
        nc = None
        try:
            nsc = Nsc.from_settings(settings)
            nsc.on_user_created = UserAnnouncer(settings, nsc.server_creds, timeout=0.3)
            user = fresh("late")
            creds = nsc.create_user(user).creds  # in this loop: unanswered

            async def heard() -> None:  # the announcement, heard now the loop runs
                while server.readers is not None and user not in server.readers.users:
                    await asyncio.sleep(0.01)

            await asyncio.wait_for(heard(), GENEROUS)
            nc = await connect_as(creds, settings=settings)
            reply = await nc.request(
                f"{user}.echo.late", EchoRequest(message="hi").SerializeToString(), GENEROUS
            )
            raise_for_error(reply.headers, reply.data)
            return EchoResponse.FromString(reply.data).message
        finally:
            if nc is not None:
                await nc.close()
            await server.stop()

    with caplog.at_level("WARNING", logger="labkit.nsc.announce"):
        assert asyncio.run(scenario()) == "echo hi"
    warned = [record.getMessage() for record in caplog.records]
    assert any("unanswered" in line and "asyncio.to_thread" in line for line in warned), warned

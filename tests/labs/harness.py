"""One test suite, two buses: the labs in memory (MemoryBus) and on the real server.

A test gets the `lab` fixture (tests/labs/conftest.py), runs `lab.run(scenario)`
and its `async def scenario(h: LabHarness)` talks to the labs through the
harness, the same way whichever bus is underneath: what passes in memory is
what the real server does.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from nats.aio.client import Client

from labkit.client import connect_as
from labkit.labs import lab_router, lab_server
from labkit.labs.caching import send_cached_echo
from labkit.labs.directory import StaticDirectory, UserDirectory
from labkit.labs.echo import send_echo, send_identified_echo
from labkit.labs.ping_pong import Conversation
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest, EchoResponse, PingRequest
from labkit.server import Cache, MemoryBus, MemoryCache, RemoteError
from labkit.server.dispatch import error_from
from labkit.server.runner import Server
from labkit.settings import ServerSettings, Settings
from labkit.subjects import ECHO, ECHO_CACHED, ECHO_IDENTIFIED, INBOX, PING, user_subject

# Users of the lab tests (prefixed: the NSC store is shared by the whole test run).
ALICE = "labs-alice"
BOB = "labs-bob"
CAROL = "labs-carol"
USERS = (ALICE, BOB, CAROL)
NOBODY = "labs-nobody"  # a valid name nobody has credentials for
# Short enough to wait out in a test, long enough for two requests in a row.
CACHE_TTL = 0.5

Result = TypeVar("Result")


class ChatSide(Protocol):
    """What ping-pong tests use of `labkit.labs.ping_pong.Conversation`."""

    received: list[PingRequest]

    async def send(self, destination: str, message: str, timeout: float = 2.0) -> PingRequest: ...

    async def wait_for(self, count: int, timeout: float = 2.0) -> list[PingRequest]: ...

    async def close(self) -> None: ...


class LabHarness(ABC):
    """The labs as a client sees them."""

    kind: str

    @abstractmethod
    async def echo(self, user: str, text: str) -> str: ...

    @abstractmethod
    async def identified(self, user: str, text: str) -> str: ...

    @abstractmethod
    async def cached(self, user: str, text: str) -> str: ...

    @abstractmethod
    async def conversation(self, user: str) -> ChatSide:
        """`user`'s side of a chat, already listening on its inbox."""

    @abstractmethod
    async def raw_request(self, user: str, subject: str, data: bytes) -> bytes:
        """Send `data` as `user`; the reply's bytes, or RemoteError for an error reply."""

    async def close(self) -> None:
        return None


# In memory.


class _RawReply:
    # Stands in for a response type: MemoryBus.request hands back the bytes unparsed.
    FromString = staticmethod(bytes)


@dataclass
class MemoryConversation:
    """A Conversation over MemoryBus.subscribe/request instead of a NATS connection."""

    bus: MemoryBus
    user: str
    received: list[PingRequest] = field(default_factory=list)
    _inbox: asyncio.Queue[Any] | None = None

    async def open(self) -> MemoryConversation:
        self._inbox = self.bus.subscribe(user_subject(self.user, INBOX))
        return self

    async def send(self, destination: str, message: str, timeout: float = 2.0) -> PingRequest:
        ping = PingRequest(destination=destination, message=message)
        return await self.bus.request(user_subject(self.user, PING), ping, PingRequest, timeout)

    async def wait_for(self, count: int, timeout: float = 2.0) -> list[PingRequest]:
        assert self._inbox is not None, "open() the conversation first"
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.received.append(PingRequest.FromString((await self._inbox.get()).data))
        return list(self.received)

    async def close(self) -> None:
        return None  # MemoryBus subscriptions live as long as the bus


class MemoryLab(LabHarness):
    kind = "memory"

    def __init__(self) -> None:
        resources = {Cache: MemoryCache(CACHE_TTL), UserDirectory: StaticDirectory(*USERS)}
        self.bus = MemoryBus(lab_router(), resources=resources)

    async def _echo(self, user: str, lab_subject: str, text: str) -> str:
        subject = user_subject(user, lab_subject)
        answer = await self.bus.request(subject, EchoRequest(message=text), EchoResponse)
        return answer.message

    async def echo(self, user: str, text: str) -> str:
        return await self._echo(user, ECHO, text)

    async def identified(self, user: str, text: str) -> str:
        return await self._echo(user, ECHO_IDENTIFIED, text)

    async def cached(self, user: str, text: str) -> str:
        return await self._echo(user, ECHO_CACHED, text)

    async def conversation(self, user: str) -> ChatSide:
        return await MemoryConversation(self.bus, user).open()

    async def raw_request(self, user: str, subject: str, data: bytes) -> bytes:
        # In memory nothing enforces permissions: `user` is only who the caller claims to be.
        return await self.bus.request(subject, data, _RawReply)  # type: ignore[type-var]


# Against the real server: an in-process lab server, one NATS connection per user.


def lab_settings(settings: Settings) -> Settings:
    """The stack's settings with a cache TTL short enough to wait out."""
    server = ServerSettings(cache_ttl=timedelta(seconds=CACHE_TTL))
    return settings.model_copy(update={"server": server})


class NatsLab(LabHarness):
    kind = "nats"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: Server = lab_server(settings)
        self._nsc = Nsc.from_settings(settings)
        self._connections: dict[str, Client] = {}
        self._conversations: list[Conversation] = []

    async def start(self) -> NatsLab:
        await self.server.start()
        return self

    async def connection(self, user: str) -> Client:
        if user not in self._connections:
            # Off this loop's thread: the server in this loop must hear the new user's
            # announcement (labkit.nsc.announce) while create_user waits for its answer.
            issued = await self._nsc.create_user_in_thread(user)
            self._connections[user] = await connect_as(issued.creds, settings=self.settings)
        return self._connections[user]

    async def echo(self, user: str, text: str) -> str:
        return await send_echo(await self.connection(user), user, text)

    async def identified(self, user: str, text: str) -> str:
        return await send_identified_echo(await self.connection(user), user, text)

    async def cached(self, user: str, text: str) -> str:
        return await send_cached_echo(await self.connection(user), user, text)

    async def conversation(self, user: str) -> ChatSide:
        side = await Conversation(await self.connection(user), user).open()
        self._conversations.append(side)
        return side

    async def raw_request(self, user: str, subject: str, data: bytes) -> bytes:
        reply = await (await self.connection(user)).request(subject, data, timeout=2.0)
        error = error_from(reply.headers, reply.data)
        if error is not None:
            raise RemoteError(error.code, error.message, error.subject)
        return bytes(reply.data)

    async def close(self) -> None:
        try:
            for side in self._conversations:
                await side.close()
            for nc in self._connections.values():
                await nc.close()
        finally:
            await self.server.stop()


@dataclass
class Lab:
    """What the `lab` fixture gives a test: which bus, and how to run a scenario on it."""

    kind: str
    settings: Settings | None = None

    async def open(self) -> LabHarness:
        if self.kind == "memory":
            return MemoryLab()
        assert self.settings is not None
        return await NatsLab(self.settings).start()

    @contextlib.contextmanager
    def session(self) -> Iterator[tuple[asyncio.Runner, LabHarness]]:
        """A harness that outlives one coroutine (hypothesis calls back once per example)."""
        with asyncio.Runner() as runner:
            harness = runner.run(self.open())
            try:
                yield runner, harness
            finally:
                runner.run(harness.close())

    def run(self, scenario: Callable[[LabHarness], Awaitable[Result]]) -> Result:
        """Open a harness, run `scenario` with it, close it (in one event loop)."""
        with self.session() as (runner, harness):
            return runner.run(scenario(harness))  # type: ignore[arg-type]

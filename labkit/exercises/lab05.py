"""Exercises of notebook 05 (ping-pong): a relay that cannot be fooled, then one that refuses."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.aio.msg import Msg

from labkit.client import connect_as
from labkit.exercises.base import AsyncExercise, NotYet
from labkit.exercises.live import (
    ALICE,
    BOB,
    NOBODY,
    Learner,
    connect_learner,
    require_router,
    serve,
)
from labkit.labs.directory import NscDirectory, UserDirectory
from labkit.labs.ping_pong import Conversation
from labkit.nsc.wrapper import Nsc
from labkit.protocol import PingRequest
from labkit.server import RemoteError
from labkit.settings import Settings
from labkit.subjects import INBOX, NOTE, user_subject

FORGED_LINE = "hi bob, it's bob. honest."


async def _relay_to_bob(settings: Settings, alice: Learner) -> str:
    """Alice sends bob a line with a forged origin; NotYet unless it arrives as hers."""
    async with connect_learner(settings, BOB) as bob:
        bob_side = await Conversation(bob.nc, BOB).open()
        forged = PingRequest(destination=BOB, origin=BOB, message=FORGED_LINE)
        subject = user_subject(ALICE, NOTE)
        try:
            receipt = await alice.ask(subject, forged, PingRequest)
        except RemoteError as exc:
            raise NotYet(
                f"{ALICE} sent a line to {BOB} on `{subject}` and got an error reply: "
                f"{exc.code}: {exc.message}"
            ) from None
        try:
            [line] = await bob_side.wait_for(1)
        except TimeoutError:
            raise NotYet(
                f"nothing arrived on `{user_subject(BOB, INBOX)}`: publish the line there "
                "with the `Publish` dependency"
            ) from None
    if line.origin == BOB:
        raise NotYet(
            f"bob received a line from {ALICE} saying it came from {BOB}: that is the origin "
            "alice wrote in the payload; set it from the subject (`CurrentUser`)"
        )
    if (line.origin, line.destination, line.message) != (ALICE, BOB, FORGED_LINE):
        raise NotYet(
            f"bob received origin={line.origin!r}, destination={line.destination!r}, "
            f"message={line.message!r}; expected origin={ALICE!r}, destination={BOB!r}, "
            f"message={FORGED_LINE!r}"
        )
    if receipt != line:
        raise NotYet("the line arrived, but the receipt alice got is not the relayed line")
    return f"bob received alice's line with origin {ALICE}, though she wrote {BOB}"


def _directory(settings: Settings) -> dict[type, object]:
    return {UserDirectory: NscDirectory(Nsc.from_settings(settings))}


class RelayRouter(AsyncExercise):
    number = 1
    title = "A relay nobody can fool"
    answer_name = "relay_router"
    prompt = (
        f"Build `relay_router`: on every user's `{NOTE}`, a `PingRequest` is relayed to "
        f"its destination: publish `PingRequest(origin=<sender>, destination, message)` on "
        f"`<destination>.{INBOX}` and return that line as the sender's receipt. The sender "
        "comes from the subject (`CurrentUser`), never from the payload: the check has "
        "alice write bob's id in `origin`, and bob must still see that alice sent it."
    )
    placeholder_code = (
        "from labkit.server import CurrentUser, Publish, Router\n"
        "from labkit.subjects import any_user\n"
        "\n"
        "relay_router = ____  # a Router; Publish sends the line on"
    )
    hint_text = (
        "Ask for `user: CurrentUser` and `publish: Publish` next to the `PingRequest`. "
        f"`await publish(f'{{note.destination}}.{INBOX}', relayed)` sends the line."
    )
    solution_code = f"""\
from labkit.protocol import PingRequest
from labkit.server import CurrentUser, Publish, Router
from labkit.subjects import any_user

relay_router = Router("notes")


@relay_router.subscribe(any_user("{NOTE}"))
async def relay_note(note: PingRequest, user: CurrentUser, publish: Publish) -> PingRequest:
    # The sender is who the subject says: nobody else may publish on it.
    relayed = PingRequest(origin=user, destination=note.destination, message=note.message)
    await publish(f"{{note.destination}}.{INBOX}", relayed)
    return relayed  # the sender's receipt
"""

    async def verify(self, answer: object) -> str:
        router = require_router(answer, self.answer_name, user_subject(ALICE, NOTE))
        async with (
            serve(router, self.settings, _directory(self.settings)),
            connect_learner(self.settings, ALICE) as alice,
        ):
            return await _relay_to_bob(self.settings, alice)


class CheckedRelayRouter(AsyncExercise):
    number = 2
    title = "Refuse strangers"
    answer_name = "checked_relay_router"
    prompt = (
        "Build `checked_relay_router`: your relay from exercise 1, but a line for someone "
        "who has no credentials here gets an error reply with the code "
        "`unknown_destination`, and goes nowhere. Ask for `users: UserDirectory` (from "
        "`labkit.labs.directory`): `users.knows(name)` says whether `name` has credentials."
    )
    placeholder_code = (
        "from labkit.labs.directory import UserDirectory\n"
        "from labkit.server import CurrentUser, HandlerError, Publish, Router\n"
        "from labkit.subjects import any_user\n"
        "\n"
        "checked_relay_router = ____  # exercise 1's relay, plus a refusal"
    )
    hint_text = (
        "Before publishing: `if not users.knows(note.destination): raise "
        "HandlerError('...', code='unknown_destination')`."
    )
    solution_code = f"""\
from labkit.labs.directory import UserDirectory
from labkit.protocol import PingRequest
from labkit.server import CurrentUser, HandlerError, Publish, Router
from labkit.subjects import any_user

checked_relay_router = Router("checked notes")


@checked_relay_router.subscribe(any_user("{NOTE}"))
async def relay_known(
    note: PingRequest, user: CurrentUser, publish: Publish, users: UserDirectory
) -> PingRequest:
    if not users.knows(note.destination):
        raise HandlerError(f"no {{note.destination!r}} here", code="unknown_destination")
    relayed = PingRequest(origin=user, destination=note.destination, message=note.message)
    await publish(f"{{note.destination}}.{INBOX}", relayed)
    return relayed
"""

    async def verify(self, answer: object) -> str:
        router = require_router(answer, self.answer_name, user_subject(ALICE, NOTE))
        async with (
            serve(router, self.settings, _directory(self.settings)),
            connect_learner(self.settings, ALICE) as alice,
            _inboxes(self.settings, [NOBODY, BOB]) as seen,
        ):
            await _relay_to_bob(self.settings, alice)
            stranger = PingRequest(destination=NOBODY, message="anyone there?")
            try:
                await alice.ask(user_subject(ALICE, NOTE), stranger, PingRequest)
            except RemoteError as exc:
                if exc.code != "unknown_destination":
                    raise NotYet(
                        f"a line for {NOBODY} was refused with code {exc.code!r} "
                        f"({exc.message}); use code='unknown_destination'"
                    ) from None
            else:
                raise NotYet(
                    f"a line for {NOBODY}, who has no credentials, was relayed: check "
                    "`users.knows(note.destination)` first"
                )
            # The sentinel: a line relayed after the refusal. Once it is on bob's inbox,
            # anything the relay published for nobody before it has been seen too.
            sentinel = PingRequest(destination=BOB, message=f"sentinel {secrets.token_hex(3)}")
            await alice.ask(user_subject(ALICE, NOTE), sentinel, PingRequest)
            await seen.wait_for(user_subject(BOB, INBOX), sentinel.message)
            if seen.messages(user_subject(NOBODY, INBOX)):
                raise NotYet(
                    f"the line for {NOBODY} was refused, but it was published on "
                    f"`{user_subject(NOBODY, INBOX)}` first: refuse before publishing"
                )
        return f"bob got alice's line as hers, and a line for {NOBODY} was refused and went nowhere"


class _Inboxes:
    """What the observer saw on some users' inboxes: the message of each PingRequest."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {}
        self.arrived = asyncio.Event()

    async def on_message(self, msg: Msg) -> None:
        self.seen.setdefault(msg.subject, []).append(PingRequest.FromString(msg.data).message)
        self.arrived.set()

    def messages(self, subject: str) -> list[str]:
        return list(self.seen.get(subject, []))

    async def wait_for(self, subject: str, message: str, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while message not in self.messages(subject):
                self.arrived.clear()
                await self.arrived.wait()


@asynccontextmanager
async def _inboxes(settings: Settings, users: list[str]) -> AsyncIterator[_Inboxes]:
    """Watch `users`' inboxes as the stack's observer (it may read every subject)."""
    seen = _Inboxes()
    nc = await connect_as(
        Nsc.from_settings(settings).observer_creds(), settings=settings, allow_reconnect=False
    )
    try:
        for user in users:
            await nc.subscribe(user_subject(user, INBOX), cb=seen.on_message)
        await nc.flush()
        yield seen
    finally:
        await nc.close()


ex1 = RelayRouter()
ex2 = CheckedRelayRouter()
EXERCISES = (ex1, ex2)

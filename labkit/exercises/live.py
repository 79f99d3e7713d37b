"""What the checks run on: the stack's real NATS server, with credentials of their own.

- `serve(router, settings)`: the learner's router on a real `Server` in this
  kernel, connected as the exercises' server user (permissions below), in a queue
  group of its own.
- `connect_learner(settings, name)`: a user's connection with creds from the NSC
  store; it records what the NATS server refuses (`may_publish`, `may_subscribe`).

The NSC store issues the creds directly (as the stack does for its own server), so
a check needs only NATS running, plus whatever service its lab is about.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import nats.errors
from google.protobuf.message import Message
from nats.aio.client import Client

from labkit.client import connect_as, request
from labkit.exercises.base import NotYet, kind_of
from labkit.nsc.claims import Permissions
from labkit.nsc.wrapper import Nsc
from labkit.server.router import Router
from labkit.server.runner import Server
from labkit.settings import Settings
from labkit.subjects import ECHO, INBOX, NOTE, any_user, matches

Response = TypeVar("Response", bound=Message)

# The users checks act as (one token each; the NSC store keeps them between checks).
ALICE = "exercise-alice"
BOB = "exercise-bob"
NOBODY = "exercise-nobody"  # a valid name that never gets credentials

EXERCISE_SERVER = "labkit_exercises"
# It reads the subjects the exercises serve, relays to users' inboxes, and answers
# requests through the response permission, like the application server.
EXERCISE_SERVER_PERMISSIONS = Permissions(
    publish=(any_user(INBOX),),
    subscribe=(
        f"{any_user(ECHO)}.>",
        any_user(NOTE),
        "$SRV.>",
        f"_INBOX.{EXERCISE_SERVER}.>",
    ),
    response_max=1,
    response_ttl=timedelta(minutes=1),
)
REQUEST_TIMEOUT = 2.0


def require_router(answer: object, name: str, subject: str) -> Router:
    """`answer` if it is a Router with a route for `subject`; else NotYet saying what is missing."""
    if not isinstance(answer, Router):
        raise NotYet(f"{name} is {kind_of(answer)}; make it a `Router(...)` with a handler")
    patterns = [route.pattern for route in answer.routes]
    if not patterns:
        raise NotYet(f"{name} has no routes: decorate a handler with `@{name}.subscribe(...)`")
    if not any(matches(pattern, subject) for pattern in patterns):
        raise NotYet(
            f"none of {name}'s patterns {patterns} matches `{subject}`; the pattern for "
            f"every user's `{subject.split('.', 1)[1]}` is `*.{subject.split('.', 1)[1]}`"
        )
    return answer


@asynccontextmanager
async def serve(
    router: Router, settings: Settings, resources: dict[type, Any] | None = None
) -> AsyncIterator[Server]:
    """Serve `router` on the stack's NATS from this process until the block ends."""
    creds = (
        Nsc.from_settings(settings)
        .issue_stack_user(EXERCISE_SERVER, EXERCISE_SERVER_PERMISSIONS)
        .creds
    )
    # One connection reads every user (no reader connections): a check's server
    # serves the check's own one or two users, and, running in the kernel that creates
    # them, could not answer their announcement while create_user waits for it.
    one_connection = settings.model_copy(
        update={"server": settings.server.model_copy(update={"readers": 0})}
    )
    server = Server(
        router,
        creds=creds,
        settings=one_connection,
        queue=f"exercise-{secrets.token_hex(4)}",
        name="labkit-exercise",
        resources=resources,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@dataclass
class Learner:
    """A user's live connection, and the permission errors the server sent it."""

    name: str
    nc: Client
    errors: list[str] = field(default_factory=list)

    async def ask(
        self,
        subject: str,
        message: Message,
        response_type: type[Response],
        timeout: float = REQUEST_TIMEOUT,
    ) -> Response:
        """A request; NotYet when nobody answers (an error reply raises RemoteError)."""
        try:
            return await request(self.nc, subject, message, response_type, timeout)
        except nats.errors.NoRespondersError:
            raise NotYet(f"nobody is subscribed to `{subject}`, so nothing answered") from None
        except (TimeoutError, nats.errors.TimeoutError):
            raise NotYet(f"nothing answered `{subject}` within {timeout:g} s") from None

    async def may_publish(self, subject: str) -> bool:
        """Publish on `subject`; False if the server refused it."""
        seen = len(self.errors)
        await self.nc.publish(subject, b"exercise probe")
        await self._settle()
        return not _refused("publish", subject, self.errors[seen:])

    async def may_subscribe(self, subject: str) -> bool:
        """Subscribe to `subject` (then unsubscribe); False if the server refused it."""
        seen = len(self.errors)
        subscription = await self.nc.subscribe(subject)
        await self._settle()
        await subscription.unsubscribe()
        return not _refused("subscription", subject, self.errors[seen:])

    async def _settle(self) -> None:
        """Return once the server's answer to everything sent so far has been handled.

        The server sends a refusal (-ERR) before the PONG of a later PING, and nats-py
        runs error_cb before it reads on. But a flush writes its PING ahead of the
        commands still buffered, so one flush can overtake them: the second one's PING
        goes out after them.
        """
        await self.nc.flush()
        await self.nc.flush()


@asynccontextmanager
async def connect_learner(
    settings: Settings, name: str, permissions: Permissions | None = None
) -> AsyncIterator[Learner]:
    """Issue `name` credentials (the default user permissions unless given) and connect."""
    # Off this event loop: a lab server running in it (the tests serve the labs in-process)
    # must answer the new learner's announcement meanwhile.
    nsc = Nsc.from_settings(settings)
    creds = (await nsc.create_user_in_thread(name, permissions=permissions)).creds
    errors: list[str] = []

    async def record(error: Exception) -> None:
        errors.append(str(error))

    nc = await connect_as(
        creds, settings=settings, error_cb=record, allow_reconnect=False, name=f"exercise {name}"
    )
    try:
        yield Learner(name, nc, errors)
    finally:
        await nc.close()


def _refused(action: str, subject: str, errors: list[str]) -> bool:
    # The server writes the subject lower-cased in its error.
    refusal = f'permissions violation for {action} to "{subject.lower()}"'
    return any(refusal in error.lower() for error in errors)

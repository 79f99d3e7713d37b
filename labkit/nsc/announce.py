"""Tell the running application servers about a learner just created (USER_NEW).

A server with reader connections subscribes each learner's route subjects per user
(labkit.server.readers) and lists the NSC store only every
LABKIT_SERVER_READER_REFRESH; a learner created in between would get "no responders"
until then. So whoever creates a learner announces the name before handing out the
creds, and waits (at most ANNOUNCE_TIMEOUT) for a server to answer that it reads
them (labkit.server.announcements): one answer is enough, every reader
subscription being in the route's one queue group (servers of other queue groups,
a notebook's own, answer too: the first answer says nothing of the others).

`Nsc.from_settings` wires `UserAnnouncer` in, so the NSC service, the CLI, the
exercises and anything else that creates users from settings announce them; the
wrapper itself only stores. An announcement never raises into the creation and is
bounded: "no responders" (no server with readers runs) returns at once; NATS down
or a server slow to answer is a warning, and the periodic listing catches up.

It connects as the application server's user (its creds are in the same keystore
as every key the caller could mint anyway), the one user allowed to publish on
USER_NEW besides subscribing it. The NATS I/O runs on a short-lived thread with an
event loop of its own, so it works from plain code, from Flask, and from code that
runs inside an event loop (a notebook cell, an async test). A server in the *same*
event loop cannot answer while that loop waits here: create the user with
`await nsc.create_user_in_thread(name)` (asyncio.to_thread) there.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from nats.errors import Error as NatsError
from nats.errors import NoRespondersError

from labkit.errors import LabkitError
from labkit.nsc.connect_once import connect_once
from labkit.nsc.creds import user_of
from labkit.nsc.issued import IssuedUser
from labkit.settings import Settings
from labkit.subjects import INBOX_PREFIX, USER_NEW

log = logging.getLogger("labkit.nsc.announce")

# How long a server has to answer, and the NATS server to accept the connection.
ANNOUNCE_TIMEOUT = 2.0
# Between the two tries nats-py makes of each server when connecting (seconds).
RETRY_WAIT = 0.05


class Outcome(enum.Enum):
    """What became of an announcement."""

    READ = "read"  # a server reads the user now
    NO_SERVER = "no server"  # no server with reader connections runs
    REFUSED = "refused"  # a server answered that it does not read them (the reason says)
    UNANSWERED = "unanswered"  # no answer in time
    UNREACHABLE = "unreachable"  # no NATS server to announce to


@dataclass(frozen=True)
class Announcement:
    """What became of one announcement, and why (for the log)."""

    outcome: Outcome
    detail: str = ""


async def announce_user(
    servers: str | list[str], creds: str, user: str, timeout: float = ANNOUNCE_TIMEOUT
) -> Announcement:
    """Announce `user` on USER_NEW and wait for one server's answer; never raises.

    Takes at most about twice `timeout`: connecting, then the request.
    """
    try:
        # Bounded (labkit.nsc.connect_once), with a short wait between nats-py's two
        # tries of each server, so a stopped NATS is told at once.
        nc = await connect_once(
            servers,
            creds,
            timeout=timeout,
            within=timeout,
            inbox_prefix=f"{INBOX_PREFIX}.{user_of(creds)}",
            name="labkit-announce",
            reconnect_time_wait=RETRY_WAIT,
        )
    except Exception as exc:  # refused, timed out, creds it cannot read: never raises
        return Announcement(Outcome.UNREACHABLE, f"{type(exc).__name__}: {exc}")
    try:
        reply = await nc.request(USER_NEW, user.encode(), timeout=timeout)
    except NoRespondersError:
        return Announcement(Outcome.NO_SERVER)
    except (TimeoutError, NatsError) as exc:
        return Announcement(Outcome.UNANSWERED, f"{type(exc).__name__}: {exc}")
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), timeout)
    return _outcome(reply.data)


def _outcome(data: bytes) -> Announcement:
    try:
        answer = json.loads(data)
    except ValueError:
        return Announcement(Outcome.REFUSED, f"unexpected answer {data[:200]!r}")
    if isinstance(answer, dict) and answer.get("read") is True:
        return Announcement(Outcome.READ)
    error = answer.get("error") if isinstance(answer, dict) else None
    return Announcement(Outcome.REFUSED, str(error or answer))


def announce_user_sync(
    servers: str | list[str], creds: str, user: str, timeout: float = ANNOUNCE_TIMEOUT
) -> Announcement:
    """`announce_user` from any code, in or out of an event loop; never raises.

    On a thread of its own with its own event loop: a running loop in the caller's
    thread is neither needed nor touched.
    """
    outcome: list[Announcement] = []

    def run() -> None:
        try:
            outcome.append(asyncio.run(announce_user(servers, creds, user, timeout)))
        except Exception as exc:  # never into the caller's creation path
            outcome.append(Announcement(Outcome.UNANSWERED, f"{type(exc).__name__}: {exc}"))

    thread = threading.Thread(target=run, name=f"labkit-announce-{user}", daemon=True)
    thread.start()
    # announce_user bounds itself (connect, request, close); the margin is for a
    # machine so busy that the thread barely runs.
    thread.join(4 * timeout)
    if not outcome:
        return Announcement(Outcome.UNANSWERED, f"no outcome within {4 * timeout:g} s")
    return outcome[0]


class UserAnnouncer:
    """The hook `Nsc.from_settings` wires in: announce each learner issued to the stack."""

    def __init__(
        self,
        settings: Settings,
        server_creds: Callable[[], str],
        timeout: float = ANNOUNCE_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._server_creds = server_creds
        self._timeout = timeout

    def __call__(self, issued: IssuedUser) -> Announcement | None:
        """Announce `issued`; None when there is no one to tell (no stack, other account).

        Never raises: the learner exists whatever becomes of the announcement.
        """
        if issued.account != self._settings.nsc.account:
            return None  # the servers read the stack's account only
        from labkit.discovery import nats_urls

        try:
            servers = nats_urls(self._settings)
            creds = self._server_creds()
        except (LabkitError, OSError) as exc:  # no NATS started yet: nothing reads anyone
            log.debug("not announcing %s: %s", issued.name, exc)
            return None
        except Exception as exc:  # a state file half written, say: warn, never raise
            log.warning("not announcing %s: %s: %s", issued.name, type(exc).__name__, exc)
            return None
        announced = announce_user_sync(servers, creds, issued.name, self._timeout)
        if announced.outcome in (Outcome.READ, Outcome.NO_SERVER):
            log.debug("announced %s: %s", issued.name, announced.outcome.value)
        else:
            log.warning(
                "announcing new user %s to the application servers: %s (%s); they read "
                "them at their next look at the NSC store (LABKIT_SERVER_READER_REFRESH)%s",
                issued.name,
                announced.outcome.value,
                announced.detail,
                _IN_LOOP_HINT if _in_running_loop() else "",
            )
        return announced


# Why an announcement made inside a running event loop may go unanswered.
_IN_LOOP_HINT = (
    ". It was made inside a running event loop: a Server running in that loop cannot "
    "answer while the loop waits here. Create the user with "
    "`await nsc.create_user_in_thread(name)` (asyncio.to_thread) there"
)


def _in_running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True

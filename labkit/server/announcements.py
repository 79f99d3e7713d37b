"""Hears that the stack created a learner, and reads them before they ask (USER_NEW).

With reader connections each user's route subjects are subscribed per user
(labkit.server.readers), so a learner new since the last listing of the NSC store
would get "no responders" from NATS. Whoever creates a learner announces the name
on USER_NEW (labkit.nsc.announce) before handing out the creds; every server with
readers hears it (no queue group) and answers once that user is read. One answer
is enough: every reader subscription is in the route's one queue group, so one
server reading `alice.echo` serves all of alice's requests, and the other replicas
catch up at their own pace.

The name in the payload is never trusted: it must be a learner's name (not one of
the stack's), and the NSC store must list it; anything else is subscribed for no
one and answered with an error. Only stack users may publish on USER_NEW (its first
token is one no learner may have), but a made-up name costs nothing either way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from labkit.errors import LabkitError
from labkit.nsc.names import validate_user_name
from labkit.server.reading import ReaderSwitch
from labkit.subjects import INBOX_PREFIX, USER_NEW

log = logging.getLogger("labkit.server")


async def hear_announcements(
    nc: Client, switch: ReaderSwitch, stack_users: Collection[str]
) -> Subscription:
    """Subscribe USER_NEW on `nc`: each announced learner is read before the answer leaves."""

    async def on_announcement(msg: Msg) -> None:
        # Answers go to an inbox only, never to a subject the sender picked.
        if not msg.reply or not msg.reply.startswith(f"{INBOX_PREFIX}."):
            log.warning("ignored an announcement whose reply subject %r is no inbox", msg.reply)
            return
        answer = await learn(switch, msg.data, stack_users)
        try:
            await msg.respond(json.dumps(answer).encode())
        except Exception as exc:  # the announcer gave up, or NATS is reconnecting
            log.warning("answering an announcement: %s: %s", type(exc).__name__, exc)

    return await nc.subscribe(USER_NEW, cb=on_announcement)


async def learn(
    switch: ReaderSwitch, payload: bytes, stack_users: Collection[str]
) -> dict[str, object]:
    """The answer to one announcement: `{"user", "read": true}` or `{"user"?, "error"}`."""
    try:
        name = validate_user_name(payload.decode("utf-8"), stack_users)
    except UnicodeDecodeError:
        return {"error": "the announcement must be a user name in UTF-8"}
    except LabkitError as exc:  # InvalidName, ReservedName
        return {"error": str(exc)}
    try:
        read = await switch.learn(name)
    except Exception as exc:  # NATS reconnecting: the periodic listing will catch up
        log.warning("reading announced user %s: %s: %s", name, type(exc).__name__, exc)
        return {"user": name, "error": f"not read yet ({type(exc).__name__}: {exc})"}
    if not read:
        return {"user": name, "error": f"no learner {name!r} in the NSC store: nothing to read"}
    return {"user": name, "read": True}

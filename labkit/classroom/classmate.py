"""A real classmate as the other side of a chat (notebook 05 in a class).

Alone, notebook 05 drives two local learners, alice and bob. In a class the kernel
holds one learner only: you play bob, and alice is a classmate found on the class's
roster (`labkit.labs.roster`), running the same notebook in their own server at the
same time, where *they* play bob and you are their alice.

`ClassmateSide` stands where alice's pane stands alone. What it knows of the
classmate's side comes over the bus, from the classmate's own kernel:

- `send(text)`: alice's line to bob. Both kernels run this cell: yours sends `text` to
  the classmate (that is the line their notebook waits for), then waits until the
  classmate's `text` reaches your inbox, relayed by the server with the origin it
  vouches for, and returns that line.
- The classmate's kernel confirms every line its inbox receives to its peer (a
  `seen` line carrying the origin and text its inbox got); yours does the same.
  `transcript` is what the classmate confirmed receiving: alice's pane as she sees it.
  Only the classmate can send lines with their origin, so nobody can fake them.
- `goodbye()` says goodbye and waits for the classmate's (or `timeout`), so neither
  kernel leaves while the other still waits for a confirmation; `close()` then stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets
from nats.aio.client import Client

from labkit.auth.client import Login
from labkit.classroom.course_mode import in_a_class
from labkit.classroom.learner import current_login
from labkit.labs.ping_pong import Conversation
from labkit.labs.roster import Classmate, find_classmate
from labkit.widgets.chat import ChatLine, ChatPane

SEEN = "seen:"  # a confirmation line: "seen:" + JSON {"origin", "message"}
BYE = "bye: this notebook is done"
WAIT = 120.0  # seconds a classmate may lag behind (their kernel, their sandbox)
RESEND = 3.0  # seconds between sends of a line the classmate has not confirmed yet


async def classmate_for(login: Login, name: str, prefer: str | None = None) -> Classmate:
    """Announce `login` on the class's roster as `name`; the classmate to chat with."""
    nc = await login.connect(name=f"roster ({name})")
    try:
        return await find_classmate(nc, login.user_id, name, prefer=prefer, timeout=WAIT)
    finally:
        await nc.close()


class ClassmateSide:
    """The classmate's pane, as their kernel reports it over the bus (see the module)."""

    def __init__(self, mine: ChatPane, classmate: str, title: str) -> None:
        self.mine = mine
        self.user = classmate
        self.conversation = _Mirror(mine.conversation, classmate)
        self.title = title
        self.transcript: list[ChatLine] = []
        self.widget = widgets.HTML(f"<b>{title}</b>: confirmed by their notebook, line by line")
        self._confirmed = 0  # lines of mine.transcript already looked at
        self._pumping = asyncio.Lock()
        # Confirm lines while the kernel is idle too: the classmate may be waiting.
        self._follower: asyncio.Task[None] | None = None
        with contextlib.suppress(RuntimeError):  # no loop: the waits confirm as they go
            self._follower = asyncio.get_running_loop().create_task(self._follow())

    @property
    def nc(self) -> Client:
        return self.mine.conversation.nc

    async def send(self, text: str, timeout: float = WAIT) -> ChatLine:
        """Serve the classmate's wait for `text`, then wait for theirs (see the module).

        Your line is sent again every RESEND seconds until their notebook confirms it:
        a line sent before their inbox was open would be lost, never retried by NATS.
        """
        return await self._exchange(text, lambda line: line.message == text, timeout)

    async def goodbye(self, timeout: float = WAIT) -> None:
        """Say goodbye and keep confirming until the classmate said it too (or `timeout`):
        neither notebook closes while the other may still wait for a confirmation."""
        if self.mine.conversation.is_open:
            with contextlib.suppress(TimeoutError):
                await self._exchange(BYE, lambda line: line.message == BYE, timeout)

    async def _exchange(self, text: str, theirs: Any, timeout: float) -> ChatLine:
        me = self.mine.conversation.user
        deadline = time.monotonic() + timeout
        sent_at = float("-inf")
        while True:
            await self._pump()
            acked = any(line.origin == me and line.message == text for line in self.transcript)
            arrived = [
                line
                for line in self.mine.transcript
                if line.origin == self.user and line.destination == me and theirs(line)
            ]
            if acked and arrived:
                return arrived[0]
            if not acked and time.monotonic() - sent_at > RESEND:
                await self.mine.send(text)
                sent_at = time.monotonic()
            if time.monotonic() > deadline:
                missing = "their line" if acked else "their notebook's confirmation of yours"
                raise TimeoutError(
                    f"{self.title}: {missing} ({text!r}) did not come within {timeout:g} s; "
                    "is your classmate still running this notebook?"
                )
            await asyncio.sleep(0.05)

    async def wait_for_line(
        self, message: str, *, origin: str | None = None, since: int = 0, timeout: float = WAIT
    ) -> ChatLine:
        """The first line the classmate confirmed receiving, saying `message` (from `origin`)."""
        deadline = time.monotonic() + timeout
        while True:
            await self._pump()
            for line in self.transcript[since:]:
                if line.message == message and origin in (None, line.origin):
                    return line
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.title}: your classmate's notebook did not confirm a line saying "
                    f"{message!r} within {timeout:g} s; is it still running this notebook?"
                )
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Stop confirming in the background (`goodbye` first, to let the classmate finish)."""
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)

    async def _follow(self) -> None:
        while self.mine.conversation.is_open:
            with contextlib.suppress(Exception):  # closed mid-send: the loop then stops
                await self._pump()
            await asyncio.sleep(0.1)

    async def _pump(self) -> None:
        """Confirm what arrived in my inbox; take in the classmate's confirmations."""
        async with self._pumping:
            await self._pump_once()

    async def _pump_once(self) -> None:
        lines = await self.mine.refresh()
        for line in lines[self._confirmed :]:
            self._confirmed += 1
            if line.destination != self.mine.conversation.user:
                continue  # a receipt of mine, not a line my inbox received
            if line.origin == self.user and line.message.startswith(SEEN):
                seen = json.loads(line.message[len(SEEN) :])
                self.transcript.append(ChatLine(seen["origin"], self.user, seen["message"]))
                continue
            if not self.mine.conversation.is_open:
                return
            confirmation = json.dumps({"origin": line.origin, "message": line.message})
            await self.mine.conversation.send(self.user, SEEN + confirmation)


class _Mirror(Conversation):
    """The classmate's side as a Conversation: their id, open while yours is open."""

    def __init__(self, mine: Conversation, classmate: str) -> None:
        super().__init__(mine.nc, classmate)
        self._mine = mine

    @property
    def is_open(self) -> bool:
        return self._mine.is_open


async def classmate_inbox_proof(name: str = "") -> tuple[Classmate, list[str]] | None:
    """In a class: your class login tries a real classmate's inbox; the server's refusals.

    It publishes on `<classmate>.inbox` and subscribes to `_INBOX.<classmate>.>`, the
    two things alice tried on bob; the NATS server must refuse both. Alone: None (the
    notebook's alice and bob were the proof).
    """
    if not in_a_class():
        return None
    login = current_login()
    errors: list[str] = []

    async def record(error: Exception) -> None:
        errors.append(str(error))

    nc = await login.connect(error_cb=record, allow_reconnect=False, name="you, in the class")
    try:
        mate = await find_classmate(
            nc, login.user_id, name or login.email.split("@")[0], mutual=False, timeout=WAIT
        )
        await nc.publish(f"{mate.id}.inbox", b"hi, it's your classmate")
        await nc.subscribe(f"_INBOX.{mate.id}.>")
        # A refusal comes back before the PONG of a later PING; a flush may overtake
        # commands still buffered, so the second flush's PING follows them.
        await nc.flush()
        await nc.flush()
        refusals = [error for error in errors if "permissions violation" in error.lower()]
        return mate, refusals
    finally:
        await nc.close()


async def catch_up_05(namespace: Mapping[str, Any], observer: Any) -> tuple[Any, ...]:
    """Notebook 05's catch-up in a class: you (bob) again, alice a classmate from the roster.

    The same values as `labkit.catch_up.lab05`: `alice_id, bob_id, names, alice_pane,
    bob_chat, bob_nc, bob_errors, bob_refused, observer`.
    """
    from IPython.display import display

    alice_name = str(namespace.get("alice_name") or "alice")
    bob_name = str(namespace.get("bob_name") or "bob")
    login = current_login()
    errors: list[str] = []
    refused = asyncio.Event()

    async def on_error(error: Exception) -> None:
        errors.append(str(error))
        if "permissions violation" in str(error).lower():
            refused.set()

    mate = await classmate_for(login, login.email.split("@")[0], namespace.get("classmate"))
    bob_nc = await login.connect(name=f"notebook 05 ({bob_name})", error_cb=on_error)
    names = {mate.id: alice_name, login.user_id: bob_name}
    bob_chat = await Conversation(bob_nc, login.user_id).open()
    bob_pane = ChatPane(bob_chat, mate.id, f"{bob_name} (talks to {alice_name})", names=names)
    alice_pane = ClassmateSide(bob_pane, mate.id, f"{alice_name} (your classmate)")
    display(widgets.HBox([alice_pane.widget, bob_pane.widget]))  # type: ignore[no-untyped-call]
    return (
        mate.id,
        login.user_id,
        names,
        alice_pane,
        bob_chat,
        bob_nc,
        errors,
        refused,
        observer,
    )

"""The browser chat: a widget whose page is itself a NATS client.

Its JavaScript (built from js/ into static/browser_chat.mjs by `make bundle`) runs
nats.js over the stack's WebSocket listener with the learner's own credentials and
private inbox (`_INBOX.<user>`), encodes and decodes the lab's protobuf messages in
the page, and chats through the application server's ping relay. The kernel sees
what the page sent and received as the `log` trait, and asks the page to send a line
through the `outbox` trait.

The one decision worth knowing: the credentials never become a synced trait (a
notebook saved with its widget state would keep the seed). The page asks for them
with a message when it starts, and only a learner's credentials are ever handed
over: the stack's own users, or any credentials that reach other users' subjects,
are refused before the widget exists.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from labkit.auth.client import Login
from labkit.discovery import nats_ws_urls
from labkit.errors import LabkitError
from labkit.nsc import jwt
from labkit.nsc.claims import user_permissions
from labkit.nsc.creds import parse_creds
from labkit.settings import Settings

BUNDLE = Path(__file__).parent / "static" / "browser_chat.mjs"
WAITING = "waiting for the page"
# Subjects that reach every user's messages: no learner's credentials allow them.
_EVERYONE = ("*", ">")


class StackCredentialsRefused(LabkitError, ValueError):
    """Credentials that are not a learner's own were offered to the page."""


def learner_of(creds: str, settings: Settings | None = None) -> str:
    """The learner the creds belong to; StackCredentialsRefused for anyone else's.

    A page may hold a learner's own credentials only: not the application server's,
    not the observer's, nor any whose permissions reach other users' subjects.
    """
    settings = settings or Settings()
    try:
        user_jwt, _ = parse_creds(creds)
        claims = jwt.decode(user_jwt)
    except LabkitError as exc:
        raise StackCredentialsRefused(
            f"these are not NATS credentials ({exc}): pass a learner's creds, "
            "e.g. AuthClient().login(email, password).nats.creds"
        ) from None
    user = str(claims.get("name", ""))
    stack_users = {
        settings.nsc.server_user: "the application server's",
        settings.nsc.observer_user: "the observer's (the wire tap's)",
    }
    advice = (
        "The page only ever holds a learner's own credentials: log in as a learner "
        "(AuthClient().login(...)) and use BrowserChat.for_login(login)."
    )
    if user in stack_users:
        raise StackCredentialsRefused(
            f"{user!r} credentials are {stack_users[user]}, not a learner's. {advice}"
        )
    permissions = user_permissions(claims)
    for kind, allowed in (("publish", permissions.publish), ("subscribe", permissions.subscribe)):
        if not allowed:
            raise StackCredentialsRefused(
                f"{user!r} may {kind} on every subject (no allow list): not a learner. {advice}"
            )
        wide = [subject for subject in allowed if _reaches_everyone(subject)]
        if wide:
            raise StackCredentialsRefused(
                f"{user!r} may {kind} on {', '.join(wide)}, other users' subjects: "
                f"not a learner's credentials. {advice}"
            )
    return user


def _reaches_everyone(subject: str) -> bool:
    tokens = subject.split(".")
    return tokens[0] in _EVERYONE or (tokens[0] == "_INBOX" and tokens[1:2] in (["*"], [">"]))


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    ready: Callable[[], bool]
    future: asyncio.Future[None]


class BrowserChat(anywidget.AnyWidget):
    """Chat from the page: the learner's browser is the NATS client.

    `BrowserChat.for_login(login, peer=bob_id)`; show it in a cell. The kernel reads
    what the page did (`sent`, `receipts`, `received`, `refusals`, `errors`, `state`)
    and can ask it to send (`send_line`). Without a browser (papermill, nbval) the widget
    stays `waiting for the page`.
    """

    _esm = BUNDLE

    servers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    user = traitlets.Unicode().tag(sync=True)
    inbox_prefix = traitlets.Unicode().tag(sync=True)
    peer = traitlets.Unicode().tag(sync=True)
    names = traitlets.Dict().tag(sync=True)
    # Set by the page: connecting, connected, reconnecting, closed, refused.
    state = traitlets.Unicode(WAITING).tag(sync=True)
    detail = traitlets.Unicode("no browser has shown this widget yet").tag(sync=True)
    log = traitlets.List(traitlets.Dict()).tag(sync=True)
    # Set by the kernel: a line for the page to send ({nonce, destination, message, ...}).
    outbox = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        creds: str,
        *,
        peer: str = "",
        names: dict[str, str] | None = None,
        servers: list[str] | None = None,
        settings: Settings | None = None,
    ) -> None:
        user = learner_of(creds, settings)
        servers = servers or nats_ws_urls(settings)
        if not servers:
            raise LabkitError(
                "no NATS WebSocket URL: start the stack (Stack().ensure('nats')) or set "
                "LABKIT_NATS_WS_URL"
            )
        super().__init__(
            servers=servers,
            user=user,
            inbox_prefix=f"_INBOX.{user}",
            peer=peer,
            names=dict(names or {}),
        )
        self._creds = creds
        self._waiters: list[_Waiter] = []
        self.on_msg(self._on_page_message)
        # The page's updates may arrive on another thread (JupyterLab sends comm messages
        # over kernel subshells): waiters are woken on their own loop.
        self.observe(self._wake_waiters, names=["log", "state"])

    @classmethod
    def for_login(cls, login: Login, **options: Any) -> BrowserChat:
        """The chat of a logged-in learner (the login's NATS credentials)."""
        return cls(login.nats.creds, **options)

    # what the kernel asks of the page
    def send_line(
        self, destination: str, message: str, *, origin: str = "", subject: str = ""
    ) -> str:
        """Ask the page to send a line (as its Send button does); returns the line's nonce.

        `origin` is written into the PingRequest (the server overwrites it); `subject`
        publishes somewhere other than `<user>.ping` (the NATS server refuses others').
        """
        nonce = secrets.token_hex(8)
        self.outbox = {
            "nonce": nonce,
            "destination": destination,
            "message": message,
            "origin": origin,
            "subject": subject,
        }
        return nonce

    # what the page did
    def entries(self, kind: str, nonce: str | None = None) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.log
            if entry.get("kind") == kind and (nonce is None or entry.get("nonce") == nonce)
        ]

    @property
    def sent(self) -> list[dict[str, Any]]:
        return self.entries("sent")

    @property
    def receipts(self) -> list[dict[str, Any]]:
        """The server's receipts: each line as it was relayed, origin set by the server."""
        return self.entries("receipt")

    @property
    def received(self) -> list[dict[str, Any]]:
        """Lines that arrived on `<user>.inbox`."""
        return self.entries("received")

    @property
    def refusals(self) -> list[dict[str, Any]]:
        """What the NATS server refused (permissions violations), and failed connects."""
        return self.entries("refused")

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Error replies from the application server (unknown_destination, ...)."""
        return self.entries("error")

    async def wait_until(self, ready: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until `ready()` holds for what the page reported; False after `timeout`."""
        if ready():
            return True
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop, ready, loop.create_future())
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
            return True
        except TimeoutError:
            return ready()
        finally:
            self._waiters.remove(waiter)

    async def wait_for_page(self, timeout: float = 30.0) -> bool:
        """True once the page has connected (or given up); False when no page showed up."""
        return await self.wait_until(lambda: self.state not in (WAITING, "connecting"), timeout)

    def _on_page_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "creds":
            # A message, not a trait: it is never part of the widget's saved state.
            self.send({"type": "creds", "creds": self._creds})

    def _wake_waiters(self, _change: Any) -> None:
        for waiter in list(self._waiters):
            waiter.loop.call_soon_threadsafe(_wake, waiter)

    def __repr__(self) -> str:
        return f"BrowserChat(user={self.user!r}, state={self.state!r}, lines={len(self.log)})"


def _wake(waiter: _Waiter) -> None:
    if not waiter.future.done() and waiter.ready():
        waiter.future.set_result(None)

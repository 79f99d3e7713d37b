"""The browser chat: a widget whose page is itself a NATS client.

Its JavaScript (built from js/ into static/browser_chat.mjs by `make bundle`) runs
nats.js over the stack's WebSocket listener with the learner's own credentials and
private inbox (`_INBOX.<user>`), encodes and decodes the lab's protobuf messages in
the page, and chats through the application server's ping relay. The kernel asks the
page to send a line through the `outbox` trait.

Two decisions worth knowing. The kernel reads a widget's state only between cells
(JupyterLab's "Run All" queues every cell first), so the page also publishes each
thing it does on `<user>.page`, and the kernel follows that subject over NATS: a cell
can wait for what the page did. And only a learner's own credentials are ever handed
to a page: the stack's users, or any credentials that reach other users' subjects,
are refused before the widget exists; the `creds` trait is emptied as soon as the
page is connected (and by `stop()`), so a saved notebook does not keep them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
import traitlets
from nats.aio.client import Client
from nats.aio.msg import Msg

from labkit.auth.client import Login
from labkit.client import connect_as
from labkit.discovery import nats_ws_urls
from labkit.errors import LabkitError
from labkit.nsc import jwt
from labkit.nsc.claims import user_permissions
from labkit.nsc.creds import parse_creds
from labkit.settings import Settings
from labkit.subjects import PAGE, user_subject

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
        "(AuthClient().login(...)) and use await BrowserChat.for_login(login)."
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

    `chat = await BrowserChat.for_login(login, peer=bob_id)`; show it in a cell. The kernel
    asks the page to send (`send_line`) and follows what it did (`sent`, `receipts`,
    `received`, `refusals`, `errors`: the page's reports on `<user>.page`). Without a
    browser (papermill, nbval) the page never connects and nothing is reported.
    """

    _esm = BUNDLE

    servers = traitlets.List(traitlets.Unicode()).tag(sync=True)
    user = traitlets.Unicode().tag(sync=True)
    inbox_prefix = traitlets.Unicode().tag(sync=True)
    peer = traitlets.Unicode().tag(sync=True)
    names = traitlets.Dict().tag(sync=True)
    # The learner's creds until the page has connected with them (then "").
    creds = traitlets.Unicode().tag(sync=True)
    # The page's own record, synced between cells: state, and what it showed.
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
            creds=creds,
        )
        self._creds = creds
        self._settings = settings
        self.reports: list[dict[str, Any]] = []
        self.cut: str | None = None  # why the learner's connections were cut (revocation)
        self._nc: Client | None = None
        self._stopped = False
        self._waiters: list[_Waiter] = []
        self.on_msg(self._on_page_message)

    @classmethod
    async def for_login(cls, login: Login, **options: Any) -> BrowserChat:
        """The chat of a logged-in learner, already following the page's reports."""
        chat = cls(login.nats.creds, **options)
        await chat.listen(login.nats.servers)
        return chat

    async def listen(self, servers: list[str] | None = None) -> None:
        """Follow the page's reports on `<user>.page` (a kernel connection, same creds)."""
        if self._nc is not None:
            return
        self._nc = await connect_as(
            self._creds,
            servers=servers,
            settings=self._settings,
            name=f"browser chat reports ({self.user})",
            error_cb=self._on_error,
            closed_cb=self._on_closed,
            allow_reconnect=False,
        )
        await self._nc.subscribe(user_subject(self.user, PAGE), cb=self._on_report)
        await self._nc.flush()

    async def stop(self) -> None:
        """Forget the creds, stop following; the page closes its connection, keeps its lines."""
        self._stopped = True
        self.creds = ""
        self.send({"type": "close"})
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()

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

    # what the page did, as it reported it over NATS
    def entries(self, kind: str, nonce: str | None = None) -> list[dict[str, Any]]:
        return [
            entry
            for entry in self.reports
            if entry.get("kind") == kind and (nonce is None or entry.get("nonce") == nonce)
        ]

    @property
    def stopped(self) -> bool:
        """True once `stop()` ran: the page has closed its connection for good."""
        return self._stopped

    @property
    def connected(self) -> bool:
        """The page said it is connected (and has not been cut off since)."""
        states = [entry.get("state") for entry in self.entries("status")]
        return bool(states) and states[-1] == "connected" and self.cut is None

    @property
    def sent(self) -> list[dict[str, Any]]:
        return self.entries("sent")

    @property
    def receipts(self) -> list[dict[str, Any]]:
        """The server's receipts: each line as it was relayed, origin set by the server."""
        return self.entries("receipt")

    @property
    def received(self) -> list[dict[str, Any]]:
        """Lines that arrived on `<user>.inbox`, decoded in the page."""
        return self.entries("received")

    @property
    def refusals(self) -> list[dict[str, Any]]:
        """What the NATS server refused the page (permissions violations)."""
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
        """True once the page has connected; False when no page showed up in time."""
        return await self.wait_until(lambda: self.connected, timeout)

    # callbacks
    def record(self, entry: dict[str, Any]) -> None:
        """Take in one report of the page (what `_on_report` does with each message)."""
        self.reports.append(entry)
        if entry.get("kind") == "status" and entry.get("state") == "connected":
            self.creds = ""  # the page has them: a saved notebook must not
        self._wake_waiters()

    async def _on_report(self, msg: Msg) -> None:
        try:
            entry = json.loads(msg.data)
        except ValueError:
            return  # not the page's (a learner may publish anything on their own subject)
        if isinstance(entry, dict):
            self.record(entry)

    async def _on_error(self, error: Exception) -> None:
        pass  # (the server's reasons arrive with the close, below)

    async def _on_closed(self) -> None:
        # A revocation (logout) cuts every connection of the user: the page's and this one.
        error = self._nc.last_error if self._nc is not None else None
        if error is not None and any(
            word in str(error).lower() for word in ("revoked", "authorization", "expired")
        ):
            self.cut = str(error)
            self._wake_waiters()

    def _on_page_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # A reloaded page asks again (the trait is empty by then); only a live kernel answers.
        if not self._stopped and isinstance(content, dict) and content.get("type") == "creds":
            self.send({"type": "creds", "creds": self._creds})

    def _wake_waiters(self) -> None:
        for waiter in list(self._waiters):
            waiter.loop.call_soon_threadsafe(_wake, waiter)

    def __repr__(self) -> str:
        return f"BrowserChat(user={self.user!r}, reports={len(self.reports)})"


def _wake(waiter: _Waiter) -> None:
    if not waiter.future.done() and waiter.ready():
        waiter.future.set_result(None)

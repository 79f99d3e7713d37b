"""Catch-up cells of the course: one function per notebook, called at a section's start.

`login, me, nc = await lab03(globals())` returns what the section uses. Run in the
normal flow it hands back the notebook's own objects (nothing changes); after a kernel
restart it rebuilds them with `labkit.course_state` (stack, learners, connections) and
shows again the panels the section drives. The functions take the notebook's namespace
to *read* it, never to write into it: the cell assigns what it gets back.

The one exception is `replay` (labkit.replay), for sections that need what the
notebook's own code measured or built: it runs those earlier sections again in the
kernel, as Run All Above would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import nats
import requests
from IPython.display import display as _ipython_display
from nats.aio.client import Client, RawCredentials
from PIL import Image

from labkit.auth.client import AuthClient, Login
from labkit.buffer import Buffer
from labkit.classroom.classmate import catch_up_05
from labkit.classroom.course_mode import is_classroom
from labkit.client import connect_as
from labkit.course_state import Accounts, CatchUpFailed, connection, ensure_stack, is_open, kept
from labkit.discovery import nats_url, nsc_service
from labkit.labs.files import FileClient
from labkit.labs.ping_pong import Conversation
from labkit.labs.stream_echo import StreamEchoClient, request_subject
from labkit.nsc.wrapper import Nsc
from labkit.replay import replay as replay  # the catch-up of sections that need a re-run
from labkit.widgets.auth import AuthPanel
from labkit.widgets.browser_chat import BrowserChat
from labkit.widgets.chat import ChatPane
from labkit.widgets.persistence import PersistencePanel
from labkit.widgets.wiretap import ObserverTap

Namespace = Mapping[str, Any]
SAMPLE = "images/sample.png"  # notebook 06's sample, relative to notebooks/
PASSWORD = "correct horse battery staple"  # the catch-up learners' password


def display(*objects: Any) -> None:
    """Show rebuilt widgets in the catch-up cell's output (IPython's display is untyped)."""
    _ipython_display(*objects)  # type: ignore[no-untyped-call]


def _password(namespace: Namespace) -> str:
    return str(namespace.get("password") or PASSWORD)


class _ErrorLog:
    """A connection's `error_cb` that keeps the errors and flags permission refusals."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.refused = asyncio.Event()

    async def on_error(self, error: Exception) -> None:
        self.errors.append(str(error))
        if "permissions violation" in str(error).lower():
            self.refused.set()


def _set_on_call(event: asyncio.Event) -> Callable[[], Awaitable[None]]:
    """A `closed_cb` that sets `event`."""

    async def on_closed() -> None:
        event.set()

    return on_closed


def _conversation_open(conversation: Any) -> bool:
    return isinstance(conversation, Conversation) and conversation.is_open


async def _one_learner(
    namespace: Namespace, notebook: str, name: str, *components: str
) -> tuple[Login, str, Client]:
    """The notebook's `login` and open `nc` (the learner `name`), kept or rebuilt."""
    ensure_stack(*components)
    login = Accounts(notebook).reuse_or_login(namespace, "login", name, _password(namespace))
    nc = await connection(namespace, "nc", login, name=f"notebook {notebook} ({name})")
    return login, login.user_id, nc


async def observer_tap(namespace: Namespace, subjects: list[str]) -> ObserverTap:
    """The notebook's running `observer` tap, or a new one on `subjects`, started and shown."""
    tap = kept(namespace, "observer", lambda old: isinstance(old, ObserverTap) and old.running)
    if tap is None:
        tap = ObserverTap(subjects)
        await tap.start()
        display(tap)
    return tap


async def lab01(namespace: Namespace) -> tuple[Client, list[str], asyncio.Event]:
    """Notebook 01: the user's connection `nc`, its `errors` and its `violation` flag.

    The user's creds come from the NSC service over HTTP, as the notebook gets them.
    """
    user = str(namespace.get("user") or "alice")
    nc = kept(namespace, "nc", is_open)
    if nc is not None and isinstance(namespace.get("errors"), list):
        return nc, namespace["errors"], namespace["violation"]
    ensure_stack("nats", "nsc")
    url, token = nsc_service()
    body = {"name": user, "account": str(namespace.get("account") or "labkit")}
    response = requests.post(
        f"{url}/new-user", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    if not response.ok:
        refusal = f"{response.status_code} {response.text}"
        raise CatchUpFailed(f"the NSC service refused {user}: {refusal}")
    log = _ErrorLog()
    nc = await nats.connect(
        nats_url(),
        user_credentials=RawCredentials(response.json()["creds"]),
        inbox_prefix=f"_INBOX.{user}",
        error_cb=log.on_error,
        name=f"notebook 01 ({user})",
    )
    return nc, log.errors, log.refused


async def lab02(
    namespace: Namespace,
) -> tuple[
    AuthPanel, Login, Login, dict[str, Client], dict[str, asyncio.Event], dict[str, list[str]]
]:
    """Notebook 02: the auth `panel`, `alice`, `bob`, their `connections`, `closed` flags
    and `errors` (what each connection's `error_cb` got).

    The connections do not reconnect, as the notebook's: a logout cuts them for good.
    """
    names = ("panel", "alice", "bob", "connections", "closed", "errors")
    if all(name in namespace for name in names) and isinstance(namespace["panel"], AuthPanel):
        panel, alice, bob, connections, closed, errors = (namespace[name] for name in names)
        return panel, alice, bob, connections, closed, errors
    ensure_stack("auth")
    accounts, password = Accounts("02"), _password(namespace)
    logins = {name: accounts.login(name, password) for name in ("alice", "bob")}
    closed = {name: asyncio.Event() for name in logins}
    logs = {name: _ErrorLog() for name in logins}
    connections = {
        name: await login.connect(
            allow_reconnect=False,
            name=f"notebook 02 ({name})",
            closed_cb=_set_on_call(closed[name]),
            error_cb=logs[name].on_error,
        )
        for name, login in logins.items()
    }
    panel = AuthPanel()
    display(panel)
    errors = {name: log.errors for name, log in logs.items()}
    return panel, logins["alice"], logins["bob"], connections, closed, errors


async def lab03(namespace: Namespace) -> tuple[Login, str, Client]:
    """Notebook 03: the learner's `login`, id `me` and connection `nc`."""
    return await _one_learner(namespace, "03", "learner", "server", "auth")


async def lab04(namespace: Namespace) -> tuple[Login, str, Client]:
    """Notebook 04: the learner's `login`, id `me` and connection `nc`."""
    return await _one_learner(namespace, "04", "learner", "server", "auth")


async def lab05(
    namespace: Namespace,
) -> tuple[
    str, str, dict[str, str], ChatPane, Conversation, Client, list[str], asyncio.Event, ObserverTap
]:
    """Notebook 05: `alice_id, bob_id, names, alice_pane, bob_chat, bob_nc, bob_errors,
    bob_refused, observer`; bob's connection has an `error_cb` that fills `bob_errors`."""
    alice_name = str(namespace.get("alice_name") or "alice")
    bob_name = str(namespace.get("bob_name") or "bob")
    observer = await observer_tap(namespace, ["*.ping", "*.inbox"])
    alice_pane = kept(namespace, "alice_pane", lambda pane: _conversation_open(pane.conversation))
    bob_chat = kept(namespace, "bob_chat", _conversation_open)
    bob_nc = kept(namespace, "bob_nc", is_open)
    if alice_pane is not None and bob_chat is not None and bob_chat.nc is bob_nc:
        return (
            alice_pane.conversation.user,
            bob_chat.user,
            dict(namespace["names"]),
            alice_pane,
            bob_chat,
            bob_nc,
            namespace["bob_errors"],
            namespace["bob_refused"],
            observer,
        )
    if is_classroom():  # you are bob; alice is a classmate from the class's roster
        return await catch_up_05(namespace, observer)
    ensure_stack("server", "auth")
    accounts, password = Accounts("05"), _password(namespace)
    alice, bob = accounts.login(alice_name, password), accounts.login(bob_name, password)
    errors = _ErrorLog()
    bob_nc = await bob.connect(name=f"notebook 05 ({bob_name})", error_cb=errors.on_error)
    alice_nc = await alice.connect(name=f"notebook 05 ({alice_name})")
    names = {alice.user_id: alice_name, bob.user_id: bob_name}
    alice_chat = await Conversation(alice_nc, alice.user_id).open()
    bob_chat = await Conversation(bob_nc, bob.user_id).open()
    title = f"{alice_name} (talks to {bob_name})"
    alice_pane = ChatPane(alice_chat, bob.user_id, title, names=names)
    display(alice_pane.widget)
    return (
        alice.user_id,
        bob.user_id,
        names,
        alice_pane,
        bob_chat,
        bob_nc,
        errors.errors,
        errors.refused,
        observer,
    )


async def lab06(namespace: Namespace) -> tuple[Login, str, Client, FileClient, Image.Image]:
    """Notebook 06: `login`, `user`, `nc`, the learner's `files` client and the `sample` image.

    Rebuilt after a restart, it also uploads the sample again, as section 2 did.
    """
    learner = str(namespace.get("learner") or "alice")
    login, user, nc = await _one_learner(namespace, "06", learner, "server", "auth", "objects")
    files = kept(namespace, "files", lambda old: old.nc is nc)
    sample = kept(namespace, "sample", lambda old: isinstance(old, Image.Image))
    sample_path = str(namespace.get("sample_path") or SAMPLE)
    if sample is None:
        with Image.open(sample_path) as shipped:
            sample = shipped.convert("RGB")
    if files is None:
        files = FileClient(nc, user)
        await files.upload(sample_path, "sample.png")
    return login, user, nc, files, sample


async def lab07(namespace: Namespace) -> tuple[Login, str, PersistencePanel]:
    """Notebook 07: `login`, `user_id` and the stream echo `panel` (shown again if rebuilt)."""
    learner = str(namespace.get("learner") or "ada")
    stack = ensure_stack("server", "auth")
    login = Accounts("07").reuse_or_login(namespace, "login", learner, _password(namespace))
    panel = kept(namespace, "panel", lambda old: isinstance(old, PersistencePanel))
    if panel is not None:
        return login, login.user_id, panel  # it reconnects by itself when switched on

    def connect() -> Any:
        return login.connect(name=f"notebook 07 ({learner})")

    outbox_file = stack.settings.paths.outbox_file.with_name(f"outbox-{login.user_id}.db")
    outbox = Buffer(outbox_file, request_subject(login.user_id))
    client = await StreamEchoClient(await connect(), login.user_id, outbox).open()
    inspector = await connect_as(
        Nsc.from_settings(stack.settings).server_creds(), settings=stack.settings
    )
    panel = PersistencePanel(client, connect, inspector=inspector)
    await panel.refresh_state()
    display(panel)
    return login, login.user_id, panel


def _chat_usable(chat: Any) -> bool:
    """A page widget that was neither stopped nor cut off by a logout."""
    return isinstance(chat, BrowserChat) and not chat.stopped and chat.cut is None


async def lab09(
    namespace: Namespace, page_wait: float
) -> tuple[str, str, Conversation, ChatPane, BrowserChat, bool]:
    """Notebook 09: `you_id, peer_id, peer_chat, peer_pane, chat, page_seen`.

    A rebuilt page widget is shown again and waited for (`page_wait` seconds at most).
    """
    you = str(namespace.get("you") or "you")
    peer = str(namespace.get("peer") or "bob")
    chat = kept(namespace, "chat", _chat_usable)
    peer_pane = kept(namespace, "peer_pane", lambda pane: _conversation_open(pane.conversation))
    if chat is not None and peer_pane is not None:
        return (
            chat.user,
            peer_pane.conversation.user,
            peer_pane.conversation,
            peer_pane,
            chat,
            bool(namespace.get("page_seen")),
        )
    ensure_stack("server", "auth")
    accounts, password = Accounts("09"), _password(namespace)
    you_login, peer_login = accounts.login(you, password), accounts.login(peer, password)
    names = {you_login.user_id: you, peer_login.user_id: peer}
    peer_nc = await peer_login.connect(name=f"notebook 09 ({peer})")
    peer_chat = await Conversation(peer_nc, peer_login.user_id).open()
    peer_pane = ChatPane(peer_chat, you_login.user_id, f"{peer} (in the kernel)", names=names)
    chat = await BrowserChat.for_login(you_login, peer=peer_login.user_id, names=names)
    display(peer_pane.widget, chat)
    page_seen = await chat.wait_for_page(page_wait)
    return you_login.user_id, peer_login.user_id, peer_chat, peer_pane, chat, page_seen


async def lab09_logout(
    namespace: Namespace, page_wait: float
) -> tuple[AuthClient, dict[str, Login], BrowserChat]:
    """Notebook 09, *Log out*: `auth`, the `logins` of you and bob, and your page `chat`.

    After a logout (the page cut off) it logs you in again, so the section can run again.
    """
    you = str(namespace.get("you") or "you")
    peer = str(namespace.get("peer") or "bob")
    chat = kept(namespace, "chat", _chat_usable)
    logins = namespace.get("logins")
    if chat is not None and isinstance(logins, dict) and isinstance(logins.get(you), Login):
        return namespace.get("auth") or AuthClient(), logins, chat
    ensure_stack("server", "auth")
    accounts, password = Accounts("09"), _password(namespace)
    logins = {you: accounts.login(you, password), peer: accounts.login(peer, password)}
    names = {login.user_id: name for name, login in logins.items()}
    chat = await BrowserChat.for_login(logins[you], peer=logins[peer].user_id, names=names)
    display(chat)
    await chat.wait_for_page(page_wait)
    return accounts.auth, logins, chat

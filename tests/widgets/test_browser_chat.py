"""The browser chat widget, kernel side: whose credentials it takes, what it syncs, waits.

The page side (nats.js in Chromium) is tested in tests/browser/test_browser_chat.py.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from labkit.client import connect_as
from labkit.discovery import nats_urls
from labkit.nsc.claims import permissions_from_templates
from labkit.nsc.creds import parse_creds
from labkit.nsc.push import push_account_jwt
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.stack import Stack
from labkit.widgets.browser_chat import (
    BUNDLE,
    BrowserChat,
    StackCredentialsRefused,
    learner_of,
)
from tests.conftest import make_settings

SERVERS = ["ws://127.0.0.1:4280"]


@pytest.fixture(scope="module")
def keystore(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Nsc]:
    """A keystore with the stack's own users (as NATS's start issues them) and a learner."""
    settings = make_settings(tmp_path_factory.mktemp("chat") / "home")
    nsc = Nsc.from_settings(settings)
    nsc.setup()
    nsc.issue_server_user()
    nsc.issue_observer_user()
    return settings, nsc


@pytest.fixture(scope="module")
def alice(keystore: tuple[Settings, Nsc]) -> str:
    return keystore[1].create_user("alice").creds


def _chat(keystore: tuple[Settings, Nsc], creds: str, **options: Any) -> BrowserChat:
    return BrowserChat(creds, servers=SERVERS, settings=keystore[0], **options)


def test_a_learners_own_credentials_are_accepted(
    keystore: tuple[Settings, Nsc], alice: str
) -> None:
    assert learner_of(alice, keystore[0]) == "alice"
    chat = _chat(keystore, alice, peer="bob", names={"bob": "Bob"})
    assert (chat.user, chat.inbox_prefix, chat.peer) == ("alice", "_INBOX.alice", "bob")
    assert chat.servers == SERVERS and not chat.connected and chat.reports == []
    assert chat._esm == BUNDLE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("which", "says"),
    [("server", "the application server's"), ("observer", r"the observer's \(the wire tap's\)")],
)
def test_the_stack_users_credentials_are_refused_with_a_clear_error(
    keystore: tuple[Settings, Nsc], which: str, says: str
) -> None:
    nsc = keystore[1]
    creds = nsc.server_creds() if which == "server" else nsc.observer_creds()
    with pytest.raises(StackCredentialsRefused, match=f"{says}, not a learner's") as refused:
        _chat(keystore, creds)
    assert "BrowserChat.for_login(login)" in str(refused.value)


@pytest.mark.parametrize(
    ("publish", "subscribe", "says"),
    [
        ([">"], [">"], "may publish on >"),
        (["admin.>"], ["_INBOX.>"], "may subscribe on _INBOX.>"),
        (["*.inbox"], ["admin.>"], "may publish on \\*.inbox"),
        ([], ["admin.>"], "may publish on every subject"),
    ],
)
def test_credentials_that_reach_other_users_are_refused(
    keystore: tuple[Settings, Nsc], publish: list[str], subscribe: list[str], says: str
) -> None:
    permissions = permissions_from_templates("admin", publish, subscribe)
    creds = keystore[1].create_user("admin", permissions=permissions).creds
    with pytest.raises(StackCredentialsRefused, match=says):
        learner_of(creds, keystore[0])


def test_text_that_is_not_credentials_is_refused(keystore: tuple[Settings, Nsc]) -> None:
    with pytest.raises(StackCredentialsRefused, match="not NATS credentials"):
        learner_of("hello", keystore[0])


def test_the_creds_are_forgotten_once_the_page_is_connected(
    keystore: tuple[Settings, Nsc], alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = _chat(keystore, alice)
    _, seed = parse_creds(alice)
    assert chat.creds == alice  # the page starts with them, without asking
    chat.record({"kind": "status", "state": "connecting"})
    assert chat.creds == alice and not chat.connected
    chat.record({"kind": "status", "state": "connected", "text": "alice on ws://..."})
    assert chat.connected and chat.creds == ""
    assert seed not in json.dumps(chat.get_state(), default=str)
    # A reloaded page asks the kernel with a message, which never becomes saved state.
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(chat, "send", lambda content, buffers=None: sent.append(content))
    chat._on_page_message(chat, {"type": "creds"}, [])
    chat._on_page_message(chat, {"type": "something else"}, [])
    assert sent == [{"type": "creds", "creds": alice}]
    # Once stopped, the kernel hands them out no more (and tells the page to close).
    asyncio.run(chat.stop())
    chat._on_page_message(chat, {"type": "creds"}, [])
    assert sent == [{"type": "creds", "creds": alice}, {"type": "close"}]


def test_send_line_asks_the_page_through_the_outbox(
    keystore: tuple[Settings, Nsc], alice: str
) -> None:
    chat = _chat(keystore, alice)
    first = chat.send_line("bob", "hi", origin="carol")
    second = chat.send_line("bob", "hi")  # the same line again is a new request
    assert first != second
    assert chat.outbox == {
        "nonce": second,
        "destination": "bob",
        "message": "hi",
        "origin": "",
        "subject": "",
    }


def test_the_page_reports_are_read_by_kind(keystore: tuple[Settings, Nsc], alice: str) -> None:
    chat = _chat(keystore, alice)
    for entry in [
        {"kind": "sent", "nonce": "n1", "destination": "bob", "message": "hi"},
        {"kind": "receipt", "nonce": "n1", "origin": "alice", "destination": "bob"},
        {"kind": "received", "origin": "bob", "message": "hello"},
        {"kind": "refused", "nonce": "n2", "text": "permissions violation"},
        {"kind": "error", "code": "unknown_destination"},
    ]:
        chat.record(entry)
    assert [e["message"] for e in chat.sent] == ["hi"]
    assert chat.receipts[0]["origin"] == "alice" and chat.entries("receipt", "n2") == []
    assert chat.received[0]["origin"] == "bob"
    assert chat.refusals[0]["nonce"] == "n2"
    assert chat.errors[0]["code"] == "unknown_destination"


def test_waiting_wakes_on_an_update_from_another_thread(
    keystore: tuple[Settings, Nsc], alice: str
) -> None:
    """JupyterLab hands the page's updates to a subshell thread: the waiting cell wakes."""
    chat = _chat(keystore, alice)

    async def scenario() -> tuple[bool, bool]:
        connected = {"kind": "status", "state": "connected"}
        page = threading.Timer(0.05, chat.record, args=[connected])
        page.start()
        try:
            connected = await chat.wait_for_page(timeout=30)
        finally:
            page.join()
        nobody = await chat.wait_until(lambda: bool(chat.received), timeout=0.05)
        return connected, nobody

    assert asyncio.run(scenario()) == (True, False)


def test_without_a_stack_or_url_it_says_how_to_get_one(tmp_path: Path, alice: str) -> None:
    settings = make_settings(tmp_path / "home")
    Nsc.from_settings(settings).setup()
    with pytest.raises(Exception, match=r"ensure\('nats'\)"):
        BrowserChat(alice, settings=settings)


def test_the_kernel_follows_the_pages_reports_over_nats_until_a_revocation(
    running_stack: Stack,
) -> None:
    """What the page publishes on `<user>.page` reaches the kernel while a cell waits; a
    revocation cuts the learner's connections, the kernel's follower among them."""
    settings = running_stack.settings
    nsc = Nsc.from_settings(settings)
    creds = nsc.create_user("page-carol").creds

    async def scenario() -> tuple[list[dict[str, Any]], bool, str | None]:
        chat = BrowserChat(creds, settings=settings)
        await chat.listen()
        page = await connect_as(creds, settings=settings)  # stands in for the page here
        try:
            report = {"kind": "received", "origin": "dave", "message": "hello"}
            await page.publish("page-carol.page", b"not json")  # ignored
            await page.publish("page-carol.page", json.dumps(report).encode())
            assert await chat.wait_until(lambda: bool(chat.received), timeout=10)
            account_jwt = nsc.revoke_user("page-carol")
            await push_account_jwt(nats_urls(settings), nsc.system_creds(), account_jwt)
            cut = await chat.wait_until(lambda: chat.cut is not None, timeout=10)
            return chat.reports, cut, chat.cut
        finally:
            await page.close()
            await chat.stop()

    reports, cut, why = asyncio.run(scenario())
    assert reports == [{"kind": "received", "origin": "dave", "message": "hello"}]
    assert cut and why is not None and "revoked" in why.lower(), why

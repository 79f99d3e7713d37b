"""What the panels show, without a server: logs that follow their end, short subjects in
the taps, the file panel's controls, what a closed connection says."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from nats.errors import ConnectionClosedError

from labkit.auth.client import AuthClient, AuthRequestFailed
from labkit.protocol import EchoRequest, EchoResponse
from labkit.widgets.auth import AuthPanel
from labkit.widgets.base import MAX_LOG_LINES, LogView, log_html
from labkit.widgets.files import MODES, Controls, FilesPanel, controls_for
from labkit.widgets.labs import CONNECTION_CLOSED, EchoPanel, WireTap
from labkit.widgets.persistence import PersistencePanel
from labkit.widgets.wiretap import ObserverTap

USER_ID = "01m8kqxcy16mk5zxf7kteaxe2z"
INBOX = f"_INBOX.{USER_ID}.Sfj74gFxZBzWtYKwjNiDpc.Sfj74gFxZBzWtYKwjNiDwK850e"


# --- a message area that keeps its newest line in view -------------------------------------


def test_log_html_draws_lines_newest_last_scrolled_to_the_end() -> None:
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "one\ntwo\n"},
        {"output_type": "stream", "name": "stderr", "text": "<bad>\n"},
    ]
    text = log_html(outputs, max_height="10em")
    assert "max-height:10em" in text and "flex-direction:column-reverse" in text
    assert text.index("one") < text.index("two") < text.index("&lt;bad&gt;")
    assert "<bad>" not in text
    error_line = text[: text.index("&lt;bad&gt;")].rsplit("<div", 1)[1]
    assert "error-background" in error_line, "stderr lines are shaded"
    assert "error-background" not in text[: text.index("two")].rsplit("<div", 1)[1]
    assert log_html([]) == ""


def test_log_html_draws_only_the_last_lines() -> None:
    outputs = [{"name": "stdout", "text": f"line {n}\n"} for n in range(MAX_LOG_LINES + 5)]
    text = log_html(outputs)
    assert "line 4<" not in text and "line 5<" in text and f"line {MAX_LOG_LINES + 4}<" in text


def test_log_view_keeps_the_record_and_shows_it() -> None:
    log = LogView(max_height="8em")
    assert log.view.value == "" and log.lines == []
    log.say("hello")
    log.error("oops")
    assert log.lines == ["hello", "oops"]
    assert [output["name"] for output in log.out.outputs] == ["stdout", "stderr"]
    assert "hello" in log.view.value and "oops" in log.view.value
    assert "max-height:8em" in log.view.value


class _RefusingAuth(AuthClient):
    def register(self, email: str, password: str) -> dict[str, Any]:
        if email == "taken@example.com":
            raise AuthRequestFailed(409, "conflict", "already registered")
        return {"id": USER_ID, "email": email}


def test_the_auth_panel_shows_its_messages_in_a_view_that_follows_them() -> None:
    panel = AuthPanel(_RefusingAuth("http://127.0.0.1:9"))
    assert panel.log_area.view in panel.widget.children
    assert panel.out not in panel.widget.children and panel.out is panel.log_area.out
    for n in range(12):
        panel.register(f"user{n}@example.com", "pw")
    panel.email.value, panel.password.value = "taken@example.com", "pw"
    panel.buttons["register"].click()
    assert len(panel.messages) == 13
    assert panel.messages[-1] == (
        "could not register taken@example.com: already registered (409 conflict)"
    )
    view = panel.log_area.view.value
    assert "flex-direction:column-reverse" in view
    assert view.index("user11@example.com") < view.index("could not register")


def test_the_persistence_panel_shows_its_messages_in_a_view_that_follows_them() -> None:
    offline = SimpleNamespace(publisher=SimpleNamespace(nc=SimpleNamespace(is_closed=True)))
    client = cast(Any, SimpleNamespace(**vars(offline), pending=2, user="alice"))

    async def connect() -> Any:
        raise AssertionError("not used")

    panel = PersistencePanel(client, connect)
    panel._say("#1 'a': saved in the outbox, waiting")
    panel._report("OSError: disk full")
    assert panel.errors == ["OSError: disk full"]
    assert panel.log_area.view in panel.widget.children and panel.out is panel.log_area.out
    assert panel.log_area.lines == ["#1 'a': saved in the outbox, waiting", "OSError: disk full"]
    assert "flex-direction:column-reverse" in panel.log_area.view.value


# --- the taps: short subjects in the table, whole ones in the rows --------------------------


def _msg(subject: str, data: bytes, reply: str = "") -> Any:
    return SimpleNamespace(subject=subject, data=data, reply=reply, headers=None)


def test_a_wire_tap_shows_short_subjects_and_keeps_them_whole() -> None:
    tap = WireTap(cast(Any, None), [f"{USER_ID}.>", f"_INBOX.{USER_ID}.>"])
    request = EchoRequest(message="hi").SerializeToString()
    answer = EchoResponse(message=f"echo hi from {USER_ID}").SerializeToString()

    async def deliver() -> None:
        await tap._on_message(_msg(f"{USER_ID}.echo", request, reply=INBOX))
        await tap._on_message(_msg(INBOX, answer))

    asyncio.run(deliver())
    assert [row.subject for row in tap.rows] == [f"{USER_ID}.echo", INBOX]
    assert tap.rows[1].text == f'EchoResponse{{message: "echo hi from {USER_ID}"}}'
    table = tap.table.value
    assert "<code>…eaxe2z.echo</code>" in table and "<code>_INBOX.…eaxe2z.…850e</code>" in table
    assert f"title='{INBOX}'" in table and "position:sticky" in table


def test_the_observer_tap_shows_short_subjects_and_senders() -> None:
    tap = ObserverTap(subjects=[">"])
    answer = EchoResponse(message="echo hi").SerializeToString()
    asyncio.run(tap._on_message(_msg(INBOX, answer)))
    (row,) = tap.rows
    assert row["subject"] == INBOX and row["sender"] == USER_ID
    table = tap.table.value
    assert "<code>_INBOX.…eaxe2z.…850e</code>" in table and ">…eaxe2z</td>" in table
    assert f"title='{USER_ID}'" in table


# --- the file panel: what each transformation uses -------------------------------------------


@pytest.mark.parametrize(
    ("transformation", "controls"),
    [
        ("crop", Controls(mode=False, crop=True)),
        ("color", Controls(mode=True, crop=False)),
        ("rotate", Controls(mode=True, crop=False)),
        ("thumbnail", Controls(mode=True, crop=False)),
        ("unknown", Controls(mode=False, crop=False)),
    ],
)
def test_each_transformation_uses_its_controls(transformation: str, controls: Controls) -> None:
    assert controls_for(transformation) == controls


def test_the_file_panel_disables_what_the_transformation_does_not_use() -> None:
    panel = FilesPanel(cast(Any, SimpleNamespace(user="alice")), transformation="color")
    assert not panel.mode.disabled and panel.crop_x.disabled and panel.crop_y.disabled
    for kind in MODES:
        panel.transformation.value = kind
        used = controls_for(kind)
        assert panel.mode.disabled is not used.mode
        assert panel.crop_x.disabled is panel.crop_y.disabled is not used.crop
    panel.transformation.value = "crop"
    assert panel.mode.disabled and not panel.crop_x.disabled
    panel.crop_x.value, panel.crop_y.value = (1, 1), (0, 1)  # still set from code
    assert panel.crop == (1, 0, 1, 1)


# --- the echo panel on a closed connection --------------------------------------------------


def test_a_closed_connection_says_what_to_do() -> None:
    async def closed(_text: str) -> str:
        raise ConnectionClosedError

    async def wrapped(_text: str) -> str:
        try:
            await closed(_text)
        except ConnectionClosedError as exc:
            raise RuntimeError("request failed") from exc
        return ""

    for send in (closed, wrapped):
        panel = EchoPanel(send)
        with pytest.raises(Exception):  # noqa: B017 - either error: the panel only reports it
            asyncio.run(panel.send("hi"))
        assert panel.errors == [f"“hi” failed: {CONNECTION_CLOSED}"]
    assert CONNECTION_CLOSED == "the connection is closed; run the notebook's connect cell again"


def test_other_failures_still_say_what_they_are() -> None:
    async def refused(_text: str) -> str:
        raise TimeoutError

    panel = EchoPanel(refused)
    with pytest.raises(TimeoutError):
        asyncio.run(panel.send("hi"))
    assert panel.errors == ["“hi” failed: TimeoutError"]

"""PersistencePanel on the real server: offline for real, the outbox count, flush, replies."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from nats.aio.client import Client

from labkit.stack import Stack
from labkit.widgets.persistence import NoInspector, PersistencePanel
from tests.labs.streams import (
    open_client,
    running_lab_server,
    server_connection,
    unique_user,
    user_connection,
)
from tests.widgets.subshell import click_from_another_loop


def test_offline_sends_wait_in_the_outbox_and_their_replies_come_after_a_flush(
    running_stack: Stack, tmp_path: Path
) -> None:
    settings = running_stack.settings
    user = unique_user("panel")

    async def scenario() -> dict[str, object]:
        seen: dict[str, object] = {}
        inspector = await server_connection(settings)

        async def connect() -> Client:
            return await user_connection(settings, user)

        try:
            async with running_lab_server(settings):
                client = await open_client(await connect(), user, tmp_path / "outbox.db")
                panel = PersistencePanel(client, connect, inspector=inspector)
                try:
                    panel.text.value = "typed"
                    panel.send_button.click()  # a click schedules the send on this loop
                    await panel.idle()
                    await panel.wait_for_replies(1)

                    panel.toggle.value = False
                    await panel.idle()
                    seen["closed"] = client.publisher.nc.is_closed
                    for text in ("a", "b"):
                        await panel.send(text)
                    seen["offline"] = (panel.online, panel.pending, list(panel.replies))
                    seen["offline flush"] = (await panel.flush()).ok

                    await panel.go_online()
                    seen["online"] = (panel.online, panel.pending, panel.client is not client)
                    panel.flush_button.click()
                    await panel.idle()
                    seen["replies"] = await panel.wait_for_replies(3)
                    # The sentinel: replies come in stream order, so once its reply is in,
                    # a duplicate stored before it would have come too.
                    await panel.send("sentinel")
                    await panel.wait_for_replies_to(["sentinel"])
                    seen["all replies"] = list(panel.replies)
                    seen["state"] = await panel.refresh_state()
                    seen["repr"] = repr(panel)
                    seen["errors"] = list(panel.errors)
                finally:
                    await panel.close()
                seen["closed at the end"] = panel.client.publisher.nc.is_closed
        finally:
            await inspector.close()
        return seen

    seen = asyncio.run(scenario())
    echo = [f"echo {text} from {user}" for text in ("typed", "a", "b")]
    assert seen["closed"] is True
    assert seen["offline"] == (False, 2, echo[:1])
    assert seen["offline flush"] is False  # nothing can go while offline
    assert seen["online"] == (True, 2, True)  # a new client; Flush sends what waits
    assert seen["replies"] == echo
    assert seen["all replies"] == [*echo, f"echo sentinel from {user}"]
    state = seen["state"]
    assert (state.requests, state.replies) == (4, 4)  # type: ignore[attr-defined]
    assert seen["repr"] == "PersistencePanel('stream echo', online, pending=0, replies=4)"
    assert seen["errors"] == []
    assert seen["closed at the end"] is True


def test_a_failed_reconnect_is_shown_and_the_switch_stays_off(
    running_stack: Stack, tmp_path: Path
) -> None:
    settings = running_stack.settings
    user = unique_user("panel")

    async def scenario() -> tuple[bool, bool, list[str]]:
        async def cannot_connect() -> Client:
            raise ConnectionRefusedError("no route to the server")

        async with running_lab_server(settings):
            nc = await user_connection(settings, user)
            client = await open_client(nc, user, tmp_path / "outbox.db")
            panel = PersistencePanel(client, cannot_connect)  # and no inspector
            with pytest.raises(NoInspector, match="inspector="):
                await panel.refresh_state()
            await panel.go_offline()
            panel.toggle.value = True  # the click fails: shown, not raised
            await panel.idle()
            return panel.online, panel.toggle.value, panel.errors

    online, switch, errors = asyncio.run(scenario())
    assert (online, switch) == (False, False)
    assert any("no route to the server" in error for error in errors), errors


def test_the_switch_clicked_from_a_subshell_then_cells_await_the_panel(
    running_stack: Stack, tmp_path: Path
) -> None:
    """The notebook 07 bug: toggled in the browser, the next cells failed on another loop."""
    settings = running_stack.settings
    user = unique_user("panel")

    async def scenario() -> tuple[list[str], list[str], bool]:
        async def connect() -> Client:
            return await user_connection(settings, user)

        async with running_lab_server(settings):
            client = await open_client(await connect(), user, tmp_path / "outbox.db")
            panel = PersistencePanel(client, connect)
            try:
                click_from_another_loop(lambda: setattr(panel.toggle, "value", False))
                await panel.idle()
                click_from_another_loop(lambda: setattr(panel.toggle, "value", True))
                await panel.idle()
                panel.text.value = "typed in the browser"
                click_from_another_loop(panel.send_button.click)
                await panel.idle()
                await panel.send("sent from a cell")  # the cell loop uses what the clicks made
                replies = await panel.wait_for_replies_to(
                    ["typed in the browser", "sent from a cell"]
                )
                click_from_another_loop(panel.send_button.click)  # the box is empty now
                await panel.idle()
            finally:
                await panel.close()
                await panel.close()  # closing twice is fine
            return replies, panel.errors, panel.online

    replies, errors, online = asyncio.run(scenario())
    assert replies == [
        f"echo typed in the browser from {user}",
        f"echo sent from a cell from {user}",
    ]
    assert errors == ["nothing to send: type a message in the box first"]
    assert online is False

"""Clicks that arrive on another thread, as JupyterLab's kernel subshells deliver them.

JupyterLab 4.6 runs a widget's callback on a subshell thread with an event loop of
its own; the panel must hand the work to the loop that runs the cells, so that a
later cell can await it. Here a thread with its own running loop plays the subshell.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from labkit.widgets.callbacks import CellLoop, NoCellLoop
from labkit.widgets.labs import NOTHING_TO_SEND, EchoPanel
from tests.widgets.subshell import click_from_another_loop


def test_a_click_from_a_subshell_runs_on_the_cell_loop() -> None:
    asyncio.run(_test_a_click_from_a_subshell_runs_on_the_cell_loop())


async def _test_a_click_from_a_subshell_runs_on_the_cell_loop() -> None:
    cell_loop = asyncio.get_running_loop()
    ran_on: list[asyncio.AbstractEventLoop] = []

    async def echo(text: str) -> str:
        ran_on.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return f"echo {text}"

    panel = EchoPanel(echo)
    panel.text.value = "from the browser"
    click_from_another_loop(panel.button.click)
    await panel.idle()  # awaits, in the cell loop, what the other thread started
    assert panel.replies == ["echo from the browser"]
    assert ran_on == [cell_loop]
    assert panel.text.value == ""
    # And a click from code in a cell, right after: the same panel, the same loop.
    panel.text.value = "from code"
    panel.button.click()
    await panel.idle()
    assert panel.replies == ["echo from the browser", "echo from code"]
    assert ran_on == [cell_loop, cell_loop]


def test_enter_sends_like_the_button() -> None:
    asyncio.run(_test_enter_sends_like_the_button())


async def _test_enter_sends_like_the_button() -> None:
    async def echo(text: str) -> str:
        return f"echo {text}"

    panel = EchoPanel(echo)
    panel.text.value = "pressed Enter"
    # What the browser sends when Enter is pressed in the box.
    click_from_another_loop(lambda: panel.text._handle_string_msg(None, {"event": "submit"}, []))
    await panel.idle()
    assert panel.replies == ["echo pressed Enter"]


def test_an_empty_send_says_why_nothing_happened() -> None:
    asyncio.run(_test_an_empty_send_says_why_nothing_happened())


async def _test_an_empty_send_says_why_nothing_happened() -> None:
    async def echo(text: str) -> str:
        raise AssertionError("nothing should be sent")

    panel = EchoPanel(echo)
    panel.text.value = "   "
    panel.button.click()
    await panel.idle()
    assert panel.errors == [NOTHING_TO_SEND]
    assert panel.replies == []


def test_quotes_show_as_typed() -> None:
    asyncio.run(_test_quotes_show_as_typed())


async def _test_quotes_show_as_typed() -> None:
    async def echo(text: str) -> str:
        return f"echo {text}"

    panel = EchoPanel(echo)
    await panel.send('it\'s "quoted"')
    text = "".join(output["text"] for output in panel.out.outputs)
    assert '“it\'s "quoted"” -> echo it\'s "quoted"' in text
    assert "\\'" not in text


def test_a_panel_built_without_a_loop_says_what_to_do() -> None:
    async def echo(text: str) -> str:
        return text

    panel = EchoPanel(echo)
    panel.text.value = "hi"
    panel.button.click()
    assert panel.errors and "await" in panel.errors[0]
    with pytest.raises(NoCellLoop):
        CellLoop().submit(echo("x"))


def test_call_runs_now_on_the_cell_thread_and_later_from_others() -> None:
    async def main() -> list[str]:
        cell = CellLoop()
        seen: list[str] = []
        cell.call(lambda: seen.append(f"here {threading.current_thread().name}"))
        click_from_another_loop(
            lambda: cell.call(lambda: seen.append(f"handed {threading.current_thread().name}"))
        )
        assert len(seen) == 1  # the handed call waits for the cell loop
        await asyncio.sleep(0)
        return seen

    main_thread = threading.current_thread().name
    assert asyncio.run(main()) == [f"here {main_thread}", f"handed {main_thread}"]


def test_enter_waits_for_the_value_the_page_sent_after_it() -> None:
    """The page may send Enter before the box's last value: the send uses that value."""

    async def main() -> list[str]:
        async def echo(text: str) -> str:
            return f"echo {text}"

        panel = EchoPanel(echo)
        panel.text.value = "half typ"

        def enter_then_late_value() -> None:
            panel.text._handle_string_msg(None, {"event": "submit"}, [])
            panel.text.value = "half typed, then the rest"

        click_from_another_loop(enter_then_late_value)
        await panel.idle()
        return panel.replies

    assert asyncio.run(main()) == ["echo half typed, then the rest"]

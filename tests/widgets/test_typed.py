"""A click reads the text box only once the browser has sent the last letters typed."""

from __future__ import annotations

import asyncio

import ipywidgets as widgets

from labkit.widgets.typed import TypedText, quoted


def test_a_value_that_changes_while_waiting_is_read_once_still() -> None:
    async def scenario() -> str:
        text = widgets.Text(value="typed so f")
        typed = TypedText(text)
        # The rest of the word arrives after the click (ipywidgets held it back): the
        # loop runs this before the settle's own wake-up, which comes later.
        asyncio.get_running_loop().call_later(0.05, setattr, text, "value", "typed so far")
        return await typed.settled(0.25)

    assert asyncio.run(scenario()) == "typed so far"


def test_quotes_are_shown_as_typed() -> None:
    assert quoted('it\'s "quoted"') == '“it\'s "quoted"”'

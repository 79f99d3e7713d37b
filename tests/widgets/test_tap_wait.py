"""A cell checks what it sent itself: the taps find that one message, whatever else came."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from labkit.protocol import EchoRequest
from labkit.widgets.labs import WireTap
from labkit.widgets.wiretap import ObserverTap


def _msg(subject: str, text: str) -> Any:
    data = EchoRequest(message=text).SerializeToString()
    return SimpleNamespace(subject=subject, data=data, reply="", headers=None)


def test_the_wire_tap_waits_for_the_row_asked_for() -> None:
    async def main() -> str:
        tap = WireTap(cast(Any, None), ["alice.>"], max_rows=3)
        for index in range(5):  # a learner's clicks, more than the table keeps
            await tap._on_message(_msg("alice.echo", f"by hand {index}"))
        waiting = asyncio.ensure_future(tap.wait_for_row(lambda row: '"mine"' in row.text))
        await asyncio.sleep(0)
        assert not waiting.done()
        await tap._on_message(_msg("alice.echo", "mine"))
        row = await waiting
        return row.text

    assert asyncio.run(main()) == 'EchoRequest{message: "mine"}'


def test_the_wire_tap_says_what_it_saw_when_nothing_matches() -> None:
    async def main() -> None:
        tap = WireTap(cast(Any, None), ["alice.>"])
        await tap._on_message(_msg("alice.echo", "other"))
        await tap.wait_for_row(lambda row: "never" in row.text, timeout=0.05)

    with pytest.raises(TimeoutError, match="the tap saw no such message.*other"):
        asyncio.run(main())


def test_the_observer_waits_for_the_row_asked_for() -> None:
    async def main() -> dict[str, Any]:
        tap = ObserverTap(subjects=[">"])
        await tap._on_message(_msg("bob.echo", "not mine"))
        waiting = asyncio.ensure_future(
            tap.wait_for_row(lambda row: row["sender"] == "alice", timeout=5)
        )
        await asyncio.sleep(0)
        await tap._on_message(_msg("alice.echo", "mine"))
        return await waiting

    row = asyncio.run(main())
    assert row["subject"] == "alice.echo" and row["message"] == 'EchoRequest{message: "mine"}'

"""What the learner typed, once the browser has sent all of it.

While the kernel is busy with a widget's previous message, the browser holds back the
text box's newest value (ipywidgets sends one state update at a time), but sends a
click or an Enter at once. So a click can arrive before the last letters typed: the
send waits until the box's value has been still for a moment, then reads it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import ipywidgets as widgets

# How long the value must stay unchanged before a click reads it.
# The page sends them one round trip after the kernel took the previous update; on two
# busy cores (CI) a quarter second was seen to be short.
SETTLE_SECONDS = 0.4


class TypedText:
    """Follows when `text` last changed; `await typed.settled()` is its value once still."""

    def __init__(self, text: widgets.Text) -> None:
        self.text = text
        self._changed_at = time.monotonic()
        text.observe(self._on_change, names="value")

    def _on_change(self, _change: dict[str, Any]) -> None:
        self._changed_at = time.monotonic()

    async def settled(self, seconds: float = SETTLE_SECONDS) -> str:
        while (wait := self._changed_at + seconds - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        return str(self.text.value)


def quoted(text: str) -> str:
    """`text` between curly quotes, as typed (a repr would escape its quotes)."""
    return f"“{text}”"

"""The ping-pong lab's chat pane: one user's side of a chat, clicked or driven from code.

`await pane.send(text)` does what the Send button (or Enter) does and returns the line
as the server relayed it; `transcript` is what the pane shows. A click in the browser
arrives on a kernel subshell's thread and loop (see `labkit.widgets.callbacks`), so the
pane hands every send to the loop that runs the cells, where the connection lives.

A learner may type in the pane whenever they like, so a cell that checks its own line
waits for *that* line (`wait_for_line`), never for "the n-th line of the transcript".
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Mapping
from dataclasses import dataclass

import ipywidgets as widgets

from labkit.labs.ping_pong import Conversation
from labkit.widgets.base import FOLLOW_END, LogView, Panel
from labkit.widgets.callbacks import CellLoop, NoCellLoop, on_enter
from labkit.widgets.labs import _describe
from labkit.widgets.typed import TypedText, quoted

NOTHING_TO_SEND = "nothing to send: type a line in the box first"


@dataclass(frozen=True)
class ChatLine:
    """One line of a chat as the server relayed it: who sent it, to whom, what."""

    origin: str
    destination: str
    message: str


class ChatPane(Panel):
    """One user's chat with `peer`: send lines, see both sides with their server-set origin.

    A background task on the cell loop follows `conversation.received`; `close()` ends
    it (closing twice is fine). `names` maps user ids to readable names for the display
    (the transcript keeps the ids). Build it in a notebook cell: it keeps that cell's loop.
    """

    def __init__(
        self,
        conversation: Conversation,
        peer: str,
        title: str,
        *,
        names: Mapping[str, str] | None = None,
    ) -> None:
        self.conversation = conversation
        self.peer = peer
        self.title = title
        self.names = dict(names or {})
        self.transcript: list[ChatLine] = []
        self.errors: list[str] = []
        self._shown_received = 0
        self._cell_loop = CellLoop()

        self.lines = widgets.HTML()
        self.text = widgets.Text(
            placeholder=f"a line for {self._name(peer)}, then Enter or Send",
            layout=widgets.Layout(flex="1"),
        )
        self.button = widgets.Button(description="Send", icon="paper-plane", button_style="info")
        self.button.on_click(lambda _button: self._on_send())
        on_enter(self.text, self._on_send, self._cell_loop)
        self._typed = TypedText(self.text)
        self.log = LogView(max_height="8em")
        self.out = self.log.out
        self.widget = widgets.VBox(
            [
                widgets.HTML(f"<b>{html.escape(title)}</b>"),
                self.lines,
                widgets.HBox([self.text, self.button]),
                self.log.view,
            ]
        )
        self._take_received()
        self._follower: asyncio.Task[None] | None = None
        if self._cell_loop.loop is not None:
            self._follower = self._cell_loop.loop.create_task(self._follow())

    async def send(self, text: str) -> ChatLine:
        """Send `text` to the peer as the button does; returns the line as the server relayed it."""
        try:
            receipt = await self.conversation.send(self.peer, text)
        except Exception as exc:
            self._report(f"{quoted(text)} was not delivered: {_describe(exc)}")
            raise
        line = ChatLine(receipt.origin, receipt.destination, receipt.message)
        self._add(line)
        return line

    async def idle(self) -> None:
        """Wait until every send started by a click (or Enter) has finished."""
        await self._cell_loop.wait()

    async def refresh(self) -> list[ChatLine]:
        """Take in the lines received so far (the background task does this by itself)."""
        self._take_received()
        return list(self.transcript)

    async def wait_for_line(
        self, message: str, *, origin: str | None = None, since: int = 0, timeout: float = 5.0
    ) -> ChatLine:
        """The first line saying `message` (from `origin`, if given) at index `since` or later.

        Raises TimeoutError, saying what was looked for, when none shows within `timeout`.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._take_received()
            for line in self.transcript[since:]:
                if line.message == message and origin in (None, line.origin):
                    return line
            if time.monotonic() > deadline:
                sender = f" from {self._name(origin)}" if origin else ""
                raise TimeoutError(
                    f"{self.title}: no line{sender} saying {quoted(message)} arrived within "
                    f"{timeout:g} s; was its connection closed? (run the connect cell again)"
                )
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Stop following the conversation (the conversation itself stays open)."""
        await self.idle()
        follower, self._follower = self._follower, None
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        self._take_received()

    # internals
    def _on_send(self) -> None:
        try:
            self._cell_loop.submit(self._send_typed())
        except NoCellLoop as exc:
            self._report(str(exc))

    async def _send_typed(self) -> None:
        text = await self._typed.settled()  # the browser may still be sending the last letters
        if not text.strip():
            self._report(NOTHING_TO_SEND)
            return
        try:
            await self.send(text)
        except Exception:  # `send` has shown it in the pane; a click has no caller to raise to
            return
        if self.text.value == text:  # (not what was typed since)
            self.text.value = ""

    async def _follow(self) -> None:
        while True:
            try:
                await self.conversation.wait_for(self._shown_received + 1, timeout=60)
            except TimeoutError:
                continue
            self._take_received()

    def _take_received(self) -> None:
        received = self.conversation.received
        for ping in received[self._shown_received :]:
            self._add(ChatLine(ping.origin, ping.destination, ping.message))
        self._shown_received = len(received)

    def _add(self, line: ChatLine) -> None:
        self.transcript.append(line)
        rows = [
            f"<div><b>{html.escape(self._name(entry.origin), quote=False)}</b> → "
            f"{html.escape(self._name(entry.destination), quote=False)}: "
            f"{html.escape(entry.message, quote=False)}</div>"
            for entry in self.transcript
        ]
        self.lines.value = f"<div style='{FOLLOW_END}'><div>{''.join(rows)}</div></div>"

    def _report(self, line: str) -> None:
        self.errors.append(line)
        self.log.error(line)

    def _name(self, user: str) -> str:
        return self.names.get(user, user)

    def __repr__(self) -> str:
        return f"ChatPane({self.title!r}, lines={len(self.transcript)})"

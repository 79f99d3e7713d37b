"""Panels for the messaging labs: an echo box, a wire tap, a chat pane.

Each one is clicked in JupyterLab and driven from code alike: `await panel.send(...)`
does what the Send button does and returns the answer, and what the panel shows is
readable (`replies`, `rows`, `transcript`), so a notebook cell can assert on it.

A click cannot await, so it hands the send to the loop that runs the notebook's cells
(a click in the browser arrives on another thread, see `labkit.widgets.callbacks`);
`await panel.idle()` waits for the sends clicks have started. Enter in a text box
sends too. Lines go
to Output widgets with `append_stdout`/`append_stderr`, which land in the widget
under papermill, nbval and a browser alike (a `with out:` block does not).
"""

from __future__ import annotations

import asyncio
import html
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import ipywidgets as widgets
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError

from labkit.widgets.base import Panel
from labkit.widgets.callbacks import CellLoop, NoCellLoop, from_the_page, on_enter
from labkit.widgets.typed import TypedText
from labkit.widgets.wire import WireDecoder, now_text, table_html

_SCROLL = {"max_height": "16em", "overflow": "auto"}
CONNECTION_CLOSED = "the connection is closed; run the notebook's connect cell again"


def _describe(error: BaseException) -> str:
    """What went wrong, for the learner; a closed connection says what to do about it."""
    if _connection_closed(error):
        return CONNECTION_CLOSED
    return str(error) or type(error).__name__


def quoted(text: str) -> str:
    """`text` between curly quotes, as typed: no escaped quotes (repr would write \\')."""
    return f"“{text}”"


def _connection_closed(error: BaseException | None) -> bool:
    """True when `error`, or what it was raised from, is nats-py's "connection closed"."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, ConnectionClosedError):
            return True
        seen.add(id(error))
        error = error.__cause__
    return False


NOTHING_TO_SEND = "nothing to send: type a message in the box first"


class _SendBox(Panel, ABC):
    """A Text box and a Send button; a click (or Enter) runs `send(text)` on the cell loop.

    The cell loop is the one running when the box is built (see `CellLoop`): a click in
    the browser arrives on another thread and loop, and the connection `send` uses
    belongs to the cell loop.
    """

    def __init__(self, placeholder: str) -> None:
        self.text = widgets.Text(placeholder=placeholder, layout=widgets.Layout(flex="1"))
        self.button = widgets.Button(description="Send", icon="paper-plane", button_style="info")
        self.button.on_click(self._on_click)
        self.out = widgets.Output(layout=widgets.Layout(**_SCROLL))
        self.errors: list[str] = []
        self._cell_loop = CellLoop()
        self._typed = TypedText(self.text)
        on_enter(self.text, lambda: self._on_click(self.button), self._cell_loop)

    @abstractmethod
    async def send(self, text: str) -> Any:
        """Send `text`; what a click does too."""

    async def idle(self) -> None:
        """Wait until every send started by a click (or Enter) has finished."""
        await self._cell_loop.wait()

    @property
    def _input_row(self) -> Any:
        return widgets.HBox([self.text, self.button])

    def _on_click(self, _button: Any) -> None:
        if from_the_page():  # the page may still be sending the last letters typed
            try:
                self._cell_loop.submit(self._send_typed())
            except NoCellLoop as exc:
                self._report(str(exc))
            return
        text = self.text.value
        if not text.strip():
            self._report(NOTHING_TO_SEND)
            return
        try:
            self._cell_loop.submit(self._send_clicked(text))
        except NoCellLoop as exc:
            self._report(str(exc))

    async def _send_typed(self) -> None:
        text = await self._typed.settled()
        if not text.strip():
            self._report(NOTHING_TO_SEND)
            return
        await self._send_clicked(text)

    async def _send_clicked(self, text: str) -> None:
        try:
            await self.send(text)
        except Exception:  # `send` has shown it in the panel; a click has no caller to raise to
            return
        if self.text.value == text:  # (not what was typed since)
            self.text.value = ""

    def _say(self, line: str) -> None:
        self.out.append_stdout(line + "\n")

    def _report(self, line: str) -> None:
        self.errors.append(line)
        self.out.append_stderr(line + "\n")


class EchoPanel(_SendBox):
    """Type a message, press Send, see the server's reply: `send` is any echo function."""

    def __init__(self, send: Callable[[str], Awaitable[str]], title: str = "echo") -> None:
        super().__init__(placeholder="a message to echo")
        self.title = title
        self.replies: list[str] = []
        self._send = send
        self.widget = widgets.VBox(
            [widgets.HTML(f"<b>{html.escape(title)}</b>"), self._input_row, self.out]
        )

    async def send(self, text: str) -> str:
        """Send `text` as the button does; returns the reply (and shows it)."""
        try:
            reply = await self._send(text)
        except Exception as exc:
            self._report(f"{quoted(text)} failed: {_describe(exc)}")
            raise
        self.replies.append(reply)
        self._say(f"{quoted(text)} -> {reply}")
        return reply

    def __repr__(self) -> str:
        return f"EchoPanel({self.title!r}, replies={len(self.replies)})"


TAP_COLUMNS = ("time", "subject", "size", "text")


@dataclass(frozen=True)
class TapRow:
    """One message the tap saw: when, on which subject, how many bytes, what it said."""

    time: str
    subject: str
    size: int
    text: str


class WireTap(Panel):
    """A live table of the messages on `subjects`, newest last, the last `max_rows` kept.

    A user may read only its own subjects, `<id>.>` and `_INBOX.<id>.>`: the requests it
    sends and the replies it gets. Payloads are decoded by subject (a reply by the
    request it answers, see `labkit.widgets.wire`); what is not a lab message shows as
    raw bytes. `ObserverTap` (labkit.widgets.wiretap) is the instructor's view of all users.
    """

    def __init__(
        self, nc: Client, subjects: list[str], *, max_rows: int = 40, title: str = "wire tap"
    ) -> None:
        self.nc = nc
        self.subjects = list(subjects)
        self.title = title
        self._rows: deque[TapRow] = deque(maxlen=max_rows)
        self._decoder = WireDecoder()
        self._subscriptions: list[Subscription] = []
        self._arrived: asyncio.Condition | None = None
        self.table = widgets.HTML()
        self.widget = widgets.VBox([widgets.HTML(f"<b>{html.escape(title)}</b>"), self.table])
        self._render()

    @property
    def rows(self) -> list[TapRow]:
        """The rows shown, oldest first."""
        return list(self._rows)

    async def wait_for_row(self, match: Callable[[TapRow], bool], timeout: float = 5.0) -> TapRow:
        """The newest row `match` accepts, waiting up to `timeout` s for it to arrive.

        A check of what one cell sent: it finds that cell's message whatever else the
        tap has seen. TimeoutError, saying what the tap saw, when none arrives.
        """
        if self._arrived is None:
            self._arrived = asyncio.Condition()
        try:
            async with asyncio.timeout(timeout), self._arrived:
                while True:
                    found = [row for row in self._rows if match(row)]
                    if found:
                        return found[-1]
                    await self._arrived.wait()
        except TimeoutError:
            raise TimeoutError(
                f"the tap saw no such message within {timeout:g} s; its last rows: "
                f"{[(row.subject, row.text) for row in list(self._rows)[-3:]]}"
            ) from None

    @property
    def running(self) -> bool:
        return bool(self._subscriptions)

    async def start(self) -> None:
        """Subscribe to every subject (the server refuses subjects the user may not read)."""
        if self.running:
            return
        for subject in self.subjects:
            self._subscriptions.append(await self.nc.subscribe(subject, cb=self._on_message))
        await self.nc.flush()

    async def stop(self) -> None:
        """Unsubscribe; the table keeps what it shows."""
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            await subscription.unsubscribe()

    def clear(self) -> None:
        self._rows.clear()
        self._render()

    async def _on_message(self, msg: Msg) -> None:
        data = bytes(msg.data)
        text = self._decoder.decode(msg.subject, data, reply=msg.reply, headers=msg.headers)
        self._rows.append(TapRow(now_text(), msg.subject, len(data), text))
        self._render()
        if self._arrived is not None:
            async with self._arrived:
                self._arrived.notify_all()

    def _render(self) -> None:
        self.table.value = table_html(TAP_COLUMNS, (asdict(row) for row in self._rows))

    def __repr__(self) -> str:
        return f"WireTap({self.subjects}, rows={len(self._rows)})"

"""The persistence panel: send through the outbox, go offline and back, watch replies arrive.

Offline is real: the learner's NATS connection is closed. Sends then only reach the
outbox file (the count of waiting messages grows); Flush publishes them once a
connection is back. Going online opens a new connection, as a restarted client
would, with a new `StreamEchoClient` on the same outbox and the same durable reply
consumer, so it continues exactly where the last one stopped.

Why the connection and not the NATS server: the server is shared (the application
server, other notebooks), and where ports are picked freely (`LABKIT_NATS_PORT=0`, as
under pytest) a restarted server comes back on another port no client could follow.
Stopping and restarting the NATS server itself is tested in
tests/labs/test_stream_restarts.py.

Everything a click does is a coroutine a cell can await (`go_offline`, `go_online`,
`send`, `flush`, `refresh_state`), and what the panel shows is readable (`online`,
`pending`, `replies`, `state`, `sent`). A click in the browser arrives on a kernel
subshell's thread and loop (see `labkit.widgets.callbacks`): the panel hands every
click to the loop that runs the cells, captured when it is built, where its
connection, tasks and locks live; `await panel.idle()` waits for them.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import ipywidgets as widgets
from nats.aio.client import Client

from labkit.buffer import FlushResult
from labkit.errors import LabkitError
from labkit.labs.stream_echo import StreamEchoClient, StreamState, stream_state
from labkit.widgets.base import LogView, Panel
from labkit.widgets.callbacks import CellLoop, NoCellLoop, on_enter
from labkit.widgets.typed import TypedText, quoted

log = logging.getLogger(__name__)

Connect = Callable[[], Awaitable[Client]]

# Seconds one read of the reply consumer waits; also how fast going offline is.
REPLY_POLL = 0.5
NOTHING_TO_SEND = "nothing to send: type a message in the box first"


class NoInspector(LabkitError, RuntimeError):
    """The panel was made without a connection allowed to read the stream's state."""


def _describe(error: BaseException) -> str:
    return str(error) or type(error).__name__


class PersistencePanel(Panel):
    """One learner's stream echo with an online/offline switch, the outbox count and replies.

    `client` is the learner's open StreamEchoClient; `connect` opens a new NATS
    connection as the same learner (for going online again). `inspector` is a
    connection allowed to read the stream's state (the application server's: a
    learner's credentials may not). The panel owns the client's connection from now
    on, and replaces `client` each time it goes online: use `panel.client`.
    """

    def __init__(
        self,
        client: StreamEchoClient,
        connect: Connect,
        *,
        inspector: Client | None = None,
        title: str = "stream echo",
    ) -> None:
        self.client = client
        self.title = title
        self.replies: list[str] = []
        self.state: StreamState | None = None
        self.errors: list[str] = []
        self.sent = 0  # messages saved through this panel, by clicks and by code
        self.sent_texts: Counter[str] = Counter()  # how often each text was sent
        self._connect = connect
        self._inspector = inspector
        self._online = not client.publisher.nc.is_closed
        self._switching = asyncio.Lock()
        self._cell_loop = CellLoop()
        self._syncing_toggle = False
        self._stop_following = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None

        self.toggle = widgets.ToggleButton(value=self._online, layout=widgets.Layout(width="9em"))
        self.toggle.observe(self._on_toggle, names="value")
        self.text = widgets.Text(
            placeholder="a message, then Enter or Send", layout=widgets.Layout(flex="1")
        )
        self.send_button = widgets.Button(description="Send", icon="paper-plane")
        self.send_button.on_click(lambda _: self._on_send())
        on_enter(self.text, self._on_send, self._cell_loop)
        self._typed = TypedText(self.text)
        self.flush_button = widgets.Button(description="Flush", icon="upload")
        self.flush_button.on_click(lambda _: self._schedule(self.flush()))
        self.state_button = widgets.Button(description="Stream state", icon="refresh")
        self.state_button.on_click(lambda _: self._schedule(self.refresh_state()))
        self.status = widgets.HTML()
        self.state_line = widgets.HTML("<i>stream state not read yet</i>")
        # `out` keeps the lines; `log_area.view` shows them with the newest in view.
        self.log_area = LogView(max_height="16em")
        self.out = self.log_area.out
        self.widget = widgets.VBox(
            [
                widgets.HTML(f"<b>{html.escape(title)}</b>"),
                widgets.HBox([self.toggle, self.status]),
                widgets.HBox([self.text, self.send_button, self.flush_button]),
                widgets.HBox([self.state_button, self.state_line]),
                self.log_area.view,
            ]
        )
        self._render()
        if self._online:
            self._start_following()

    # what the panel shows
    @property
    def online(self) -> bool:
        return self._online

    @property
    def pending(self) -> int:
        """Messages waiting in the outbox (read from the file: right even offline)."""
        return self.client.pending

    # what the controls do
    async def go_offline(self) -> None:
        """Close the learner's connection: from now on sends only reach the outbox."""
        async with self._switching:
            if not self._online:
                return
            await self._stop_follower()
            nc = self.client.publisher.nc
            try:
                await self.client.close()
            finally:
                await nc.close()
            self._online = False
            self._say("offline: connection closed")
            self._render()

    async def go_online(self) -> None:
        """Connect again, as a restarted client would; Flush (or the next send) sends what waits."""
        async with self._switching:
            if self._online:
                return
            nc: Client | None = None
            try:
                nc = await self._connect()
                buffer = self.client.publisher.buffer
                self.client = await StreamEchoClient(nc, self.client.user, buffer).open()
            except Exception:
                if nc is not None:
                    await nc.close()
                self._render()  # the switch goes back to offline
                raise
            self._online = True
            self._say(f"online: connected again, {self.pending} waiting in the outbox")
            self._render()
            self._start_following()

    async def send(self, text: str) -> int:
        """Save `text` in the outbox, then publish what waits if online; its outbox id."""
        message_id = await self.client.send(text)
        self.sent += 1
        self.sent_texts[text] += 1
        result = self.client.publisher.last_flush
        if result is not None and result.ok:
            self._say(f"#{message_id} {quoted(text)}: stored in the stream")
        else:
            self._say(f"#{message_id} {quoted(text)}: saved in the outbox, waiting")
        self._render()
        return message_id

    async def flush(self) -> FlushResult:
        """Publish what waits in the outbox (nothing goes while offline)."""
        result = await self.client.flush()
        if result.error is None:
            dropped = f", {result.duplicates} already stored" if result.duplicates else ""
            self._say(f"flushed {result.sent}{dropped}; {result.remaining} waiting")
        else:
            self._say(f"flush stopped ({_describe(result.error)}); {result.remaining} waiting")
        self._render()
        return result

    async def refresh_state(self) -> StreamState:
        """Read the stream's state from the server (messages, consumers, this user's share)."""
        if self._inspector is None:
            raise NoInspector(
                "the panel cannot read the stream: pass `inspector=`, a connection with "
                "the application server's creds (a learner's may not read it)"
            )
        self.state = await stream_state(self._inspector.jetstream(), self.client.user)
        self._render()
        return self.state

    async def wait_for_replies(self, count: int, timeout: float = 10.0) -> list[str]:
        """Wait until `count` replies in all have arrived; all of them, oldest first."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.replies) < count:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise TimeoutError(self._no_replies(f"{count} replies in all", timeout)) from None
        return list(self.replies)

    async def wait_for_replies_to(
        self, texts: list[str], *, since: int = 0, timeout: float = 10.0
    ) -> list[str]:
        """The replies to `texts`, in that order, once each has arrived at index `since` on.

        Other replies (to what you typed in the panel) may come in between: skipped.
        """
        expected = [f"echo {text} from {self.client.user}" for text in texts]
        try:
            async with asyncio.timeout(timeout):
                while not set(expected) <= set(self.replies[since:]):
                    await asyncio.sleep(0.05)
        except TimeoutError:
            missing = sorted(set(expected) - set(self.replies[since:]))
            raise TimeoutError(self._no_replies(f"the replies {missing}", timeout)) from None
        return expected

    async def idle(self) -> None:
        """Wait until everything clicks have started has finished."""
        await self._cell_loop.wait()

    async def close(self) -> None:
        """Stop reading replies and close the learner's connection (the outbox file stays)."""
        await self.idle()
        await self.go_offline()

    # internals
    def _start_following(self) -> None:
        self._stop_following = asyncio.Event()
        self._follower = asyncio.get_running_loop().create_task(self._follow(self.client))

    async def _stop_follower(self) -> None:
        # Never cancelled mid-read: a reply taken from the consumer and acknowledged but
        # not yet shown would be lost. The read ends within REPLY_POLL seconds.
        self._stop_following.set()
        if self._follower is not None:
            await self._follower
            self._follower = None

    async def _follow(self, client: StreamEchoClient) -> None:
        while not self._stop_following.is_set():
            try:
                replies = await client.read_replies(most=100, timeout=REPLY_POLL)
            except Exception as exc:  # e.g. the server restarting: try again shortly
                log.warning("reading replies: %s", exc)
                await asyncio.sleep(REPLY_POLL)
                continue
            for reply in replies:
                self.replies.append(reply)
                self._say(f"reply: {reply}")
            if replies:
                self._render()

    def _no_replies(self, what: str, timeout: float) -> str:
        where = "the panel is offline: switch it on (or `await panel.go_online()`)"
        if self._online:
            where = f"{self.pending} wait in the outbox: press Flush" if self.pending else ""
        return f"{what} did not arrive within {timeout:g} s" + (f"; {where}" if where else "")

    def _on_toggle(self, change: dict[str, Any]) -> None:
        if self._syncing_toggle:
            return
        self._schedule(self.go_online() if change["new"] else self.go_offline())

    def _on_send(self) -> None:
        self._schedule(self._send_typed())

    async def _send_typed(self) -> None:
        text = await self._typed.settled()  # the browser may still be sending the last letters
        if not text.strip():
            self._report(NOTHING_TO_SEND)
            return
        await self.send(text)
        if self.text.value == text:  # (not what was typed since)
            self.text.value = ""

    def _schedule(self, action: Coroutine[Any, Any, Any]) -> None:
        """Run a click's work on the cell loop, from whichever thread the click came."""
        try:
            self._cell_loop.submit(self._reported(action))
        except NoCellLoop as exc:
            action.close()
            self._report(str(exc))

    async def _reported(self, action: Awaitable[Any]) -> None:
        try:
            await action
        except Exception as exc:  # a click has no caller to raise to: show it
            self._report(f"{type(exc).__name__}: {_describe(exc)}")

    def _render(self) -> None:
        self._syncing_toggle = True
        try:
            self.toggle.value = self._online
        finally:
            self._syncing_toggle = False
        self.toggle.description = "online" if self._online else "offline"
        self.toggle.icon = "plug" if self._online else "power-off"
        self.toggle.button_style = "success" if self._online else "warning"
        self.status.value = (
            f"&nbsp;outbox: <b>{self.pending}</b> waiting &nbsp;·&nbsp; "
            f"replies: <b>{len(self.replies)}</b>"
        )
        if self.state is not None:
            self.state_line.value = f"&nbsp;{html.escape(str(self.state))}"

    def _say(self, line: str) -> None:
        self.log_area.say(line)

    def _report(self, line: str) -> None:
        self.errors.append(line)
        self.log_area.error(line)

    def __repr__(self) -> str:
        mode = "online" if self._online else "offline"
        return (
            f"PersistencePanel({self.title!r}, {mode}, pending={self.pending}, "
            f"replies={len(self.replies)})"
        )

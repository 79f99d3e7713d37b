"""The instructor's wire tap: every lab message of every user, live, as a table.

`ObserverTap` connects with the observer credentials the stack issues when NATS
starts: they may subscribe to every subject and publish on none, so the tap can
watch a lab without ever taking part in it (the server refuses any publish).
Unlike a user's `WireTap`, it sees the replies on everyone's `_INBOX.<user>.>`.

    tap = ObserverTap()
    await tap.start()
    tap                   # the table, newest last
    ...
    tap.rows              # [{"time", "subject", "sender", "message", "size"}, ...]
    await tap.stop()
"""

from __future__ import annotations

import asyncio
import html
from collections import deque
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from nats.aio.client import Client
from nats.aio.msg import Msg

from labkit.client import connect_as
from labkit.nsc.wrapper import Nsc
from labkit.settings import Settings
from labkit.subjects import (
    ECHO,
    INBOX,
    PERSIST_PREFIX,
    PING,
    SEND_FILE,
    TRANSFORM_FILE,
    any_user,
)
from labkit.widgets.base import Panel
from labkit.widgets.wire import (
    INBOX_PREFIX,
    WireDecoder,
    is_polling,
    now_text,
    sender_of,
    table_html,
)

OBSERVER_COLUMNS = ("time", "subject", "sender", "message", "size")
# Every lab's subjects, the persisted ones (after the account's mapping) and every reply.
LAB_SUBJECTS = (
    any_user(ECHO),
    any_user(ECHO) + ".>",
    any_user(PING),
    any_user(INBOX),
    any_user(SEND_FILE),
    any_user(TRANSFORM_FILE),
    f"{PERSIST_PREFIX}.>",
    f"{INBOX_PREFIX}.>",
)


class ObserverTap(Panel):
    """A live table of the messages crossing the bus on `subjects` (default: every lab's).

    Rows are `{"time", "subject", "sender", "message", "size"}`: `sender` is the user
    the message belongs to (see `labkit.widgets.wire.sender_of`), `message` the decoded
    protobuf, `size` the payload in bytes. The last `max_rows` are kept, newest last.
    JetStream's polling chatter (empty 404/408/100 statuses to a consumer's inbox) is
    counted in `hidden` instead of shown.
    """

    def __init__(
        self,
        subjects: list[str] | None = None,
        *,
        settings: Settings | None = None,
        max_rows: int = 40,
        title: str = "the wire, as the observer sees it",
    ) -> None:
        self.subjects = list(LAB_SUBJECTS if subjects is None else subjects)
        self.settings = settings
        # In a class the observer's credentials are the instructor's: the tap reads what
        # the learner's own credentials may (see labkit.classroom.course_mode.own_share).
        self.classroom = (settings or Settings()).classroom
        if self.classroom:
            title = f"{title} (in a class: only what your own credentials may read)"
        self.title = title
        self.seen = 0  # every message the tap received, including rows no longer kept
        self.hidden = 0  # polling chatter, not shown (and not in `seen`)
        self.nc: Client | None = None
        self._rows: deque[dict[str, Any]] = deque(maxlen=max_rows)
        self._decoder = WireDecoder()
        self._arrived = asyncio.Event()
        self.table = widgets.HTML()
        self.widget = widgets.VBox([widgets.HTML(f"<b>{html.escape(title)}</b>"), self.table])
        self._render()

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows shown, oldest first."""
        return [dict(row) for row in self._rows]

    @property
    def running(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def start(self) -> None:
        """Connect as the observer and subscribe to every subject; idempotent."""
        if self.nc is not None:
            return
        settings = self.settings or Settings()
        subjects = self.subjects
        if self.classroom:
            from labkit.classroom.course_mode import own_share
            from labkit.classroom.learner import current_login

            login = current_login()
            subjects = own_share(self.subjects, login.user_id)
            nc = await login.connect()
        else:
            creds = Nsc.from_settings(settings).observer_creds()
            nc = await connect_as(creds, settings=settings)
        try:
            for subject in subjects:
                await nc.subscribe(subject, cb=self._on_message)
            await nc.flush()
        except BaseException:
            await nc.close()
            raise
        self.nc = nc

    async def stop(self) -> None:
        """Disconnect; the table keeps what it shows."""
        nc, self.nc = self.nc, None
        if nc is not None:
            await nc.close()

    async def wait_for(self, count: int, timeout: float = 2.0) -> list[dict[str, Any]]:
        """Wait until the tap has seen `count` messages in all (`seen`); the rows then."""
        async with asyncio.timeout(timeout):
            while self.seen < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.rows

    async def wait_for_row(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> dict[str, Any]:
        """The newest row `match` accepts, waiting up to `timeout` s for it to arrive.

        A check of what one cell sent: it finds that cell's message whatever else the
        tap has seen. TimeoutError, saying what the tap saw, when none arrives.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    found = [row for row in self._rows if match(row)]
                    if found:
                        return dict(found[-1])
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            last = [(row["subject"], row["message"]) for row in list(self._rows)[-3:]]
            raise TimeoutError(
                f"the observer saw no such message within {timeout:g} s; its last rows: {last}"
            ) from None

    def clear(self) -> None:
        """Empty the table (`seen` keeps counting)."""
        self._rows.clear()
        self._render()

    async def _on_message(self, msg: Msg) -> None:
        if is_polling(msg.headers, msg.data):
            self.hidden += 1
            return
        self._rows.append(observe(self._decoder, msg))
        self.seen += 1
        self._arrived.set()
        self._render()

    def _render(self) -> None:
        self.table.value = table_html(OBSERVER_COLUMNS, self._rows)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ObserverTap({len(self.subjects)} subjects, {state}, rows={len(self._rows)})"


def observe(decoder: WireDecoder, msg: Msg) -> dict[str, Any]:
    """One row of the observer's table for `msg`."""
    data = bytes(msg.data)
    return {
        "time": now_text(),
        "subject": msg.subject,
        "sender": sender_of(msg.subject),
        "message": decoder.decode(msg.subject, data, reply=msg.reply, headers=msg.headers),
        "size": len(data),
    }

"""The class-wide wire tap: the last messages of every lab, as the observer sees them.

The observer's credentials (issued by the stack when NATS starts) may subscribe to
every subject and publish on none; they stay on the instructor side, in this process.
Only learners' messages are kept (the stack's own users are left out). Rows are the
notebooks' `ObserverTap` rows (time, subject, sender, message, size), so
the page shows what an instructor knows from the notebooks.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg

from labkit.nsc.names import reserved_reason
from labkit.widgets.wire import WireDecoder, is_polling, sender_of
from labkit.widgets.wiretap import LAB_SUBJECTS, observe

MAX_ROWS = 50


class ClassTap:
    """Keeps the newest `max_rows` messages of every lab subject."""

    def __init__(self, max_rows: int = MAX_ROWS) -> None:
        self.seen = 0
        self._rows: deque[dict[str, Any]] = deque(maxlen=max_rows)
        self._decoder = WireDecoder()
        self.nc: Client | None = None

    async def start(self, nc: Client) -> None:
        """Subscribe on `nc` (a connection with the observer's creds) to every lab subject."""
        for subject in LAB_SUBJECTS:
            await nc.subscribe(subject, cb=self._on_message)
        await nc.flush()
        self.nc = nc

    def rows(self) -> list[dict[str, Any]]:
        """The rows kept, oldest first."""
        return [dict(row) for row in self._rows]

    async def _on_message(self, msg: Msg) -> None:
        if is_polling(msg.headers, msg.data):
            return
        # Learners' traffic only: the stack's own (the dashboard's replies on its inbox,
        # the server's JetStream calls) would fill the table with the dashboard's polling.
        if reserved_reason(sender_of(msg.subject)) is not None:
            return
        self._rows.append(observe(self._decoder, msg))
        self.seen += 1

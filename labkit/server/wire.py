"""The server's NATS connection, with a short way in for route messages ("lanes").

nats-py hands every message to a subscription callback through a Msg object, an
asyncio queue and a task per subscription, then the callback's coroutine: about
10 µs per message, of which the protocol parser itself is 1.5 µs. For the server
that is the cost of *reading*: during one learner's burst of thousands, everyone
else's requests wait on the connection behind hers until the server has read hers,
so reading must be as cheap as it can be (the scheduler, labkit.server.fair, can
only put someone first once their message has been read).

A lane is a plain function that gets the message's raw parts from the parser's
callback (`_process_msg`, the one place nats-py turns protocol into a message) and
returns at once, without a Msg, a queue or an await: the server's lanes only sort
the message into its user's queue. Every other subscription (discovery, JetStream,
requests the server makes) takes nats-py's own path, untouched.

The subscription behind a lane is an ordinary nats-py subscription with its
callback: it is what NATS knows (SUB, queue group, UNSUB, resubscribed on
reconnect, drained), and a message that reaches it the ordinary way (a lane not
yet added) is served the same.
"""

from __future__ import annotations

import asyncio
import fcntl
import struct
import termios
from collections.abc import Callable

from nats import errors
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.protocol.command import hpub_cmd
from nats.protocol.parser import Parser

# subject, reply ("" for none), payload, raw header block (None for none)
Lane = Callable[[bytes, bytes, bytes, bytes | None], None]


class LaneClient(Client):
    """A nats-py client whose route subscriptions can deliver through a lane.

    `turn_per_read`: let the event loop run after every TURN_BYTES parsed instead of
    parsing all that asyncio has buffered (up to 256 KiB) in one go; for the
    server's reader connections (labkit.server.readers), so one user's burst on one
    of them holds the others' reading for about a hundred requests at a time.
    """

    def __init__(self, *, turn_per_read: bool = False) -> None:
        super().__init__()
        self._lanes: dict[int, Lane] = {}
        if turn_per_read:
            self._ps = _TurnPerRead(self)

    def add_lane(self, subscription: Subscription, lane: Lane) -> None:
        """Deliver `subscription`'s messages to `lane` from now on."""
        self._lanes[subscription._id] = lane

    async def subscribe_lane(self, subject: str, queue: str, lane: Lane) -> Subscription:
        """Subscribe with `lane` as the only way in, from the first message on.

        No callback, so no nats-py task and queue reader behind the subscription
        (about 4 KiB each: the server's reader connections hold one per user and
        route). The lane is in place before the SUB leaves: nats-py numbers the
        subscription before its first await, so no message can come in before it.
        """
        sid = self._sid + 1
        self._lanes[sid] = lane
        try:
            subscription = await self.subscribe(subject, queue=queue)
        finally:
            self._lanes.pop(sid, None)
        self._lanes[subscription._id] = lane
        return subscription

    def remove_lane(self, subscription: Subscription) -> None:
        self._lanes.pop(subscription._id, None)

    def unread_bytes(self) -> int:
        """Bytes NATS has sent on this connection that are not read yet (0: unknown).

        The kernel's count (FIONREAD) of what waits in the socket: during a burst,
        the messages that everyone sending after it waits behind.
        """
        writer = getattr(self._transport, "_io_writer", None)
        sock = writer.get_extra_info("socket") if writer is not None else None
        if sock is None:
            return 0
        try:
            count = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, ValueError):  # closed meanwhile (-1 as file descriptor)
            return 0
        return int(struct.unpack("i", count)[0])

    async def publish_encoded(self, subject: str, header_block: bytes, payload: bytes) -> None:
        """Publish with a header block encoded beforehand (the server's `busy` answer).

        `publish(headers=...)` encodes and checks every header of every message; the
        same block sent thousands of times in a burst is encoded once by the caller.
        Refused like `publish`: closed, draining, too large, or no room while
        reconnecting.
        """
        if self.is_closed:
            raise errors.ConnectionClosedError
        if self.is_draining_pubs:
            raise errors.ConnectionDrainingError
        size = len(payload) + len(header_block)
        if not self.is_connected and (
            self._max_pending_size <= 0 or size + self._pending_data_size > self._max_pending_size
        ):
            raise errors.OutboundBufferLimitError
        if size > self._max_payload:
            raise errors.MaxPayloadError
        self.stats["out_msgs"] += 1
        self.stats["out_bytes"] += len(payload)
        await self._send_command(hpub_cmd(subject, "", header_block, payload))
        if self._flush_queue is not None and self._flush_queue.empty():
            await self._flush_pending()

    async def parse_headers(self, raw: bytes | None) -> dict[str, str] | None:
        """A lane's raw header block as nats-py gives it to a Msg (None: no headers)."""
        if not raw:
            return None
        return await self._process_headers(raw)

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        lane = self._lanes.get(sid)
        if lane is None:
            await super()._process_msg(sid, subject, reply, data, headers)  # type: ignore[arg-type]
            return
        stats = self.stats
        stats["in_msgs"] += 1
        stats["in_bytes"] += len(data)
        lane(subject, reply, data, headers)


# What a reader connection parses per turn of the event loop: about 100 requests.
TURN_BYTES = 8192


class _TurnPerRead(Parser):
    """nats-py's parser, a turn of the event loop after every TURN_BYTES.

    nats-py's read loop takes what asyncio already buffered without waiting (up to
    256 KiB), so a burst would be parsed to its end before any other connection of
    the process is read; a turn per 32 KiB read still let bob's request wait for
    about 400 of alice's to be parsed per turn.
    """

    async def parse(self, data: bytes = b"") -> None:
        for start in range(0, len(data), TURN_BYTES):
            await super().parse(data[start : start + TURN_BYTES])
            await asyncio.sleep(0)
        if not data:
            await super().parse(data)

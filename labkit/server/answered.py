"""Which persisted request answered each Nats-Msg-Id: exactly-once past the duplicate window.

The stream drops a resent request only within its duplicate window (2 minutes by
default). A client outbox reopened later (a laptop asleep over lunch, a crash
restored tomorrow) may resend a request that was stored and answered long ago;
the stream then stores it again at a new sequence. So the server claims each
request's id in a JetStream KV bucket before answering it: the first stream
sequence to claim `<user>.<msg id>` owns it, and a later copy is acknowledged without
an answer. Entries live as long as the stream keeps messages (its max_age).

A crash between the claim and the reply is safe: the redelivered request has the
same sequence, so it still owns the claim and is answered.
"""

from __future__ import annotations

import hashlib
import logging
import re

from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from labkit.server.jetstream import when_available

log = logging.getLogger("labkit.server")

# What a KV key token may hold as it is; anything else is hashed.
_KEY_TOKEN = re.compile(r"[-_=A-Za-z0-9]{1,128}")


def answered_key(user: str, msg_id: str) -> str:
    """`<user>.<msg id>`, each part made a valid KV key token (hashed if it is not)."""
    return f"{_token(user)}.{_token(msg_id)}"


def _token(text: str) -> str:
    if _KEY_TOKEN.fullmatch(text):
        return text
    return "h-" + hashlib.sha256(text.encode()).hexdigest()[:40]


class AnsweredRequests:
    """Claims of request ids by the stream sequence that answers them."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    @classmethod
    async def open(
        cls, nc: Client, bucket: str, ttl: float, *, replicas: int = 1
    ) -> AnsweredRequests:
        """Create the bucket if needed (idempotent): on disk, one value per key."""
        config = KeyValueConfig(
            bucket=bucket,
            ttl=ttl,
            history=1,
            storage=StorageType.FILE,
            replicas=replicas,
            max_value_size=1024,  # with the headers KV adds; the value is a sequence
        )
        js = nc.jetstream()
        kv = await when_available(
            lambda: js.create_key_value(config), f"creating KV bucket {bucket}"
        )
        return cls(kv)

    async def claim(self, user: str, msg_id: str, sequence: int) -> bool:
        """True when the request at `sequence` owns `msg_id` (first claim, or its own)."""
        key = answered_key(user, msg_id)
        owner = str(sequence).encode()
        for _ in range(3):  # a claim that expired between the two calls: claim again
            try:
                await self._kv.create(key, owner)
                return True
            except KeyWrongLastSequenceError:
                try:
                    entry = await self._kv.get(key)
                except KeyNotFoundError:
                    continue
                return entry.value == owner
        raise RuntimeError(f"could not claim {key}: it keeps appearing and expiring")

"""The client-side durable outbox (`Buffer`) and the offline-tolerant publisher.

See `labkit.buffer.outbox` for the guarantees (nothing lost, nothing duplicated).
"""

from labkit.buffer.outbox import (
    DELETE_EVERY,
    Buffer,
    BufferCorrupt,
    BufferedMessage,
    BufferError,
    BufferLocked,
    FlushResult,
    validate_publish_subject,
)
from labkit.buffer.publisher import BufferedPublisher

__all__ = [
    "DELETE_EVERY",
    "Buffer",
    "BufferCorrupt",
    "BufferError",
    "BufferLocked",
    "BufferedMessage",
    "BufferedPublisher",
    "FlushResult",
    "validate_publish_subject",
]

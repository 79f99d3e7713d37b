"""The class's progress: every record of the `labkit_progress` JetStream KV bucket.

The application server stores a learner's exercise result under `<user>.<exercise_id>`
as a protobuf `ProgressReport` (exercise_id, passed, attempts, at). The dashboard
reads the latest value of every key with one ordered consumer per snapshot, with its
own read-only credentials (see `credentials`); the server's writer is
labkit.classroom.progress_store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE

from labkit.classroom.dashboard.credentials import PROGRESS_BUCKET
from labkit.errors import LabkitError
from labkit.protocol import ProgressReport

# How long one snapshot may take before the dashboard says so (seconds).
SNAPSHOT_TIMEOUT = 10.0
# Each snapshot reads through an ephemeral consumer: the server drops it this long after
# the snapshot (nats-py's default, 5 min, would keep 150 of them per open page).
CONSUMER_INACTIVE_SECONDS = 5.0


class ProgressUnavailable(LabkitError):
    """The progress bucket could not be read."""


@dataclass(frozen=True)
class ProgressRecord:
    """One learner's latest result for one exercise."""

    user: str
    exercise_id: str
    passed: bool
    attempts: int
    at: str  # ISO 8601, "" when the report has no time

    @property
    def state(self) -> str:
        return "passed" if self.passed else "trying"


def encode_report(exercise_id: str, passed: bool, attempts: int, at: datetime) -> bytes:
    """A stored `ProgressReport` as the server writes it (tests and tools)."""
    report = ProgressReport(exercise_id=exercise_id, passed=passed, attempts=attempts)
    report.at.FromDatetime(at.astimezone(UTC))
    return report.SerializeToString()


def decode_record(key: str, data: bytes) -> ProgressRecord | None:
    """The record stored under `key` (`<user>.<exercise_id>`), None when unreadable."""
    user, dot, key_exercise = key.partition(".")
    if not dot or not user or not key_exercise:
        return None
    try:
        report = ProgressReport.FromString(data)
    except DecodeError:
        return None
    return ProgressRecord(
        user=user,
        # The key is what the server wrote; the payload's id is what the learner sent.
        exercise_id=key_exercise,
        passed=bool(report.passed),
        attempts=int(report.attempts),
        at=_iso(report.at),
    )


def _iso(value: Timestamp) -> str:
    if not value.seconds and not value.nanos:
        return ""
    return value.ToDatetime(tzinfo=UTC).isoformat()


async def class_progress(nc: Client, bucket: str = PROGRESS_BUCKET) -> list[ProgressRecord]:
    """Every learner's latest record; [] when the bucket does not exist yet."""
    js = nc.jetstream()
    try:
        kv = await js.key_value(bucket)
        stored = (await js.stream_info(f"KV_{bucket}")).state.messages
    except (BucketNotFoundError, NotFoundError):
        return []
    except Exception as exc:  # nats-py raises its own errors and asyncio's
        raise ProgressUnavailable(f"the progress bucket {bucket!r} cannot be read: {exc}") from exc
    if not stored:
        return []  # an empty bucket: no consumer to make
    watcher = await kv.watchall(inactive_threshold=CONSUMER_INACTIVE_SECONDS)
    try:
        return await read_snapshot(watcher, SNAPSHOT_TIMEOUT)
    except Exception as exc:
        raise ProgressUnavailable(f"reading the progress bucket {bucket!r}: {exc}") from exc
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]


async def read_snapshot(watcher: Any, timeout: float) -> list[ProgressRecord]:
    """The records among every key's latest value, from a watcher of a bucket that holds
    messages: up to the entry after which nothing is pending (its delta is 0).

    nats-py's None marker ("nothing pending") is not trusted here: nats-py decides it
    from the consumer's info before its callback has handled the first messages, so
    under load it can come before them (CI once read nothing from a bucket of four
    keys; upstream, nats-io/nats.py#842). Should the bucket be emptied between its
    count and the watch, no entry comes and the snapshot ends in a timeout, an error
    the next refresh mends.
    """
    records: list[ProgressRecord] = []
    while True:
        entry = await watcher.updates(timeout=timeout)
        if entry is None:
            continue
        if entry.operation not in (KV_DEL, KV_PURGE) and entry.value is not None:
            record = decode_record(entry.key, entry.value)
            if record is not None:
                records.append(record)
        if entry.delta == 0:
            return records

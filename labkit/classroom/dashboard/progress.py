"""The class's progress: every record of the `labkit_progress` JetStream KV bucket.

The application server stores a learner's exercise result under `<user>.<exercise_id>`
as a protobuf `ProgressReport` (exercise_id, passed, attempts, at). The dashboard
reads the latest value of every key with one ordered consumer per snapshot, with its
own read-only credentials (see `credentials`).

`ProgressReport` lives in `labkit.protocol` once the progress route is in; until then
`report_type()` builds the same message from a descriptor here, and `at` is read
whatever its type (a Timestamp, an ISO string, or epoch seconds).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, cast

from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE

from labkit.classroom.dashboard.credentials import PROGRESS_BUCKET
from labkit.errors import LabkitError

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


@cache
def report_type() -> type[Message]:
    """The `ProgressReport` message class (labkit.protocol's, else a same-shaped one)."""
    from labkit.protocol import labkit_pb2

    found = getattr(labkit_pb2, "ProgressReport", None)
    if found is not None:
        return cast(type[Message], found)
    file = descriptor_pb2.FileDescriptorProto(
        name="labkit_dashboard_progress.proto", package="labkit_dashboard", syntax="proto3"
    )
    message = file.message_type.add(name="ProgressReport")
    for number, (name, kind) in enumerate(
        (
            ("exercise_id", FieldDescriptor.TYPE_STRING),
            ("passed", FieldDescriptor.TYPE_BOOL),
            ("attempts", FieldDescriptor.TYPE_UINT32),
            ("at", FieldDescriptor.TYPE_STRING),
        ),
        start=1,
    ):
        message.field.add(name=name, number=number, type=kind, label=FieldDescriptor.LABEL_OPTIONAL)
    return message_factory.GetMessages([file])["labkit_dashboard.ProgressReport"]


def encode_report(exercise_id: str, passed: bool, attempts: int, at: datetime) -> bytes:
    """A `ProgressReport` as the learner's check sends it (tests and tools)."""
    report: Any = report_type()()
    report.exercise_id, report.passed, report.attempts = exercise_id, passed, attempts
    field = report.DESCRIPTOR.fields_by_name["at"]
    if field.message_type is not None:  # google.protobuf.Timestamp
        report.at.FromDatetime(at.astimezone(UTC))
    elif field.type == FieldDescriptor.TYPE_STRING:
        report.at = at.astimezone(UTC).isoformat()
    else:
        report.at = int(at.timestamp())
    return cast(bytes, report.SerializeToString())


def decode_record(key: str, data: bytes) -> ProgressRecord | None:
    """The record stored under `key` (`<user>.<exercise_id>`), None when unreadable."""
    user, dot, key_exercise = key.partition(".")
    if not dot or not user or not key_exercise:
        return None
    try:
        report: Any = report_type().FromString(data)
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


def _iso(value: Any) -> str:
    if hasattr(value, "ToDatetime"):
        if not value.seconds and not value.nanos:
            return ""
        return str(value.ToDatetime(tzinfo=UTC).isoformat())
    if isinstance(value, str):
        return value
    if isinstance(value, int) and value > 0:
        seconds = value / 1000 if value > 100_000_000_000 else value  # milliseconds
        return datetime.fromtimestamp(seconds, UTC).isoformat()
    return ""


async def class_progress(nc: Client, bucket: str = PROGRESS_BUCKET) -> list[ProgressRecord]:
    """Every learner's latest record; [] when the bucket does not exist yet."""
    js = nc.jetstream()
    try:
        kv = await js.key_value(bucket)
    except (BucketNotFoundError, NotFoundError):
        return []
    except Exception as exc:  # nats-py raises its own errors and asyncio's
        raise ProgressUnavailable(f"the progress bucket {bucket!r} cannot be read: {exc}") from exc
    records: list[ProgressRecord] = []
    watcher = await kv.watchall(inactive_threshold=CONSUMER_INACTIVE_SECONDS)
    try:
        while True:
            entry = await watcher.updates(timeout=SNAPSHOT_TIMEOUT)  # type: ignore[no-untyped-call]
            if entry is None:  # every key's latest value has arrived
                break
            if entry.operation in (KV_DEL, KV_PURGE) or entry.value is None:
                continue
            record = decode_record(entry.key, entry.value)
            if record is not None:
                records.append(record)
    except Exception as exc:
        raise ProgressUnavailable(f"reading the progress bucket {bucket!r}: {exc}") from exc
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]
    return records

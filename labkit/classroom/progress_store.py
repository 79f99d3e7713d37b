"""Where the application server keeps exercise progress: a JetStream KV bucket.

One record per learner and exercise, key `<user>.<exercise_id>`, the last report
winning (history 1). The server alone creates and writes the bucket, with fixed
settings (ProgressSettings); learners have no right on it and reach their own
records only through `<user>.progress.mine`.

A learner's share is bounded by the number of exercise ids they have records for.
JetStream has no per-prefix limit, so the bound is kept here: a new id is refused
at the bound, and a record that another replica's concurrent write pushed past the
bound is taken back (purged) and refused. Re-reporting a known exercise always works.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, KeyNotFoundError, ServiceUnavailableError

from labkit.errors import LabkitError
from labkit.protocol import ProgressReport
from labkit.server.injection import register_dependency
from labkit.server.jetstream import when_available
from labkit.settings import ProgressSettings

# One KV key token: letters, digits, `-` and `_` (no dot: the user's records are `<user>.*`).
EXERCISE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# A stored record is a few dozen bytes; this refuses anything else at the bucket.
MAX_RECORD_BYTES = 256
_STREAM_CONFIG_DIFFERS = 10058  # JetStream: "stream name already in use with a different ..."

Clock = Callable[[], float]


class InvalidReport(LabkitError, ValueError):
    """A report the server does not store (a bad exercise id, a negative attempt count)."""


class ProgressFull(LabkitError):
    """This learner has records for as many exercises as the settings allow (or the bucket
    is full): a new exercise id is not stored."""


def validate_report(report: ProgressReport) -> None:
    """Raise InvalidReport unless `report` may be stored; no IO."""
    if not EXERCISE_ID.fullmatch(report.exercise_id):
        raise InvalidReport(
            f"exercise_id {report.exercise_id[:80]!r} is not an exercise id: 1 to 64 letters, "
            "digits, `-` or `_`, such as `lab03-ex2`"
        )
    if report.attempts < 0:
        raise InvalidReport(f"attempts must be 0 or more, not {report.attempts}")


class ProgressStore:
    """The progress bucket: record a report (bounded per user), read one user's or all."""

    def __init__(
        self,
        js: JetStreamContext,
        kv: Any,
        bucket: str,
        max_per_user: int,
        clock: Clock = time.time,
    ) -> None:
        self._js = js
        self._kv = kv
        self.bucket = bucket
        self.stream = f"KV_{bucket}"
        self.max_per_user = max_per_user
        self._clock = clock
        # One new record at a time per user in this process (replicas: see record()).
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    async def open(
        cls, nc: Client, settings: ProgressSettings, *, replicas: int = 1
    ) -> ProgressStore:
        """Create the bucket if needed (idempotent; an existing one gets these bounds)."""
        js = nc.jetstream()
        config = KeyValueConfig(
            bucket=settings.bucket,
            history=1,
            storage=StorageType.FILE,
            replicas=settings.replicas or replicas,
            max_bytes=settings.max_bytes,
            max_value_size=MAX_RECORD_BYTES,
            direct=False,  # reads go to the leader: a record is read back as written
        )
        try:
            kv = await when_available(
                lambda: js.create_key_value(config), f"creating KV bucket {settings.bucket}"
            )
        except BadRequestError as exc:
            if exc.err_code != _STREAM_CONFIG_DIFFERS:
                raise
            current = (await js.stream_info(f"KV_{settings.bucket}")).config
            current.max_bytes = settings.max_bytes
            current.max_msg_size = MAX_RECORD_BYTES
            await js.update_stream(current)
            kv = await js.key_value(settings.bucket)
        return cls(js, kv, settings.bucket, settings.max_exercises_per_user)

    async def record(self, user: str, report: ProgressReport) -> ProgressReport:
        """Store `report` as `user`'s record for its exercise, stamped now; the stored record."""
        validate_report(report)
        stored = ProgressReport(
            exercise_id=report.exercise_id, passed=report.passed, attempts=report.attempts
        )
        stored.at.FromNanoseconds(round(self._clock() * 1_000_000_000))
        key = f"{user}.{report.exercise_id}"
        lock = self._locks.setdefault(user, asyncio.Lock())
        async with lock:
            known = await self._subjects(user)
            is_new = self._subject(key) not in known
            if is_new and len(known) >= self.max_per_user:
                raise self._full()
            await self._put(key, stored.SerializeToString())
            # Another replica may have added one of this user's records meanwhile: past
            # the bound, this one is taken back (both may be: never more than the bound).
            if is_new and len(await self._subjects(user)) > self.max_per_user:
                await self._js.purge_stream(self.stream, subject=self._subject(key))
                raise self._full()
        return stored

    async def of_user(self, user: str) -> list[ProgressReport]:
        """`user`'s records, by exercise id."""
        subjects = sorted(await self._subjects(user))
        records = [await self._get(subject.removeprefix(self._subject(""))) for subject in subjects]
        return [record for record in records if record is not None]

    async def everyone(self) -> dict[str, list[ProgressReport]]:
        """Every learner's records: user id -> records by exercise id."""
        info = await self._js.stream_info(self.stream, subjects_filter=self._subject(">"))
        by_user: dict[str, list[ProgressReport]] = {}
        for subject in sorted(info.state.subjects or {}):
            key = subject.removeprefix(self._subject(""))
            record = await self._get(key)
            if record is not None:
                by_user.setdefault(key.split(".", 1)[0], []).append(record)
        return by_user

    def _subject(self, key: str) -> str:
        return f"$KV.{self.bucket}.{key}"

    async def _subjects(self, user: str) -> set[str]:
        info = await self._js.stream_info(self.stream, subjects_filter=self._subject(f"{user}.*"))
        return set(info.state.subjects or {})

    async def _put(self, key: str, value: bytes) -> None:
        try:
            await self._kv.put(key, value)
        except (BadRequestError, ServiceUnavailableError) as exc:
            raise ProgressFull(
                f"the progress store refused the record ({exc}); tell your instructor"
            ) from exc

    async def _get(self, key: str) -> ProgressReport | None:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return None  # purged between the listing and the read
        return ProgressReport.FromString(entry.value or b"")

    def _full(self) -> ProgressFull:
        return ProgressFull(
            f"you have progress records for {self.max_per_user} exercises, as many as this "
            "class keeps (LABKIT_PROGRESS_MAX_EXERCISES_PER_USER); re-reporting those works"
        )


register_dependency(ProgressStore)

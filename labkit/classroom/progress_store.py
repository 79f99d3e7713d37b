"""Where the application server keeps exercise progress: a JetStream KV bucket.

One record per learner and exercise, key `<user>.<exercise_id>`, the last report
winning (history 1). The server alone creates and writes the bucket, with fixed
settings (ProgressSettings); learners have no right on it and reach their own
records only through `<user>.progress.mine`.

A learner's share is bounded by the number of exercise ids they have records for.
JetStream has no per-prefix limit, so the bound is kept here: a new id is refused
at the bound, and a record that another replica's concurrent write pushed past the
bound is taken back (purged) and refused. Re-reporting a known exercise always works
(but for a report that keeps losing to reports of the same exercise stored at once by
other replicas: it is refused as busy, and sending it again works).

What a report costs in JetStream requests (each is a round trip to the stream leader):
- a record this process wrote or read before: one conditional put (expected last
  revision; see `_write` for why that is safe for the bound);
- a record another replica wrote since: that put fails with the record's current
  revision, and a second one at it is stored (2);
- a new exercise id: a create (put expecting no record) and a listing of the user's
  ids to count them (2), plus the take-back when another replica's write overshot;
- a new id at the bound as this process knows it: one listing to confirm, no put.
The listings fill this process's memory of the user's ids (labkit.classroom.progress_known).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import (
    BadRequestError,
    KeyDeletedError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    ServiceUnavailableError,
)

from labkit.classroom.progress_known import (
    REMEMBERED_IDS,
    KnownRecords,
    UserLocks,
    UserRecords,
)
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
# JetStream's refusal of a put whose expected last revision is not the subject's.
_WRONG_LAST = re.compile(r"wrong last sequence: (\d+)")
# Conditional puts of one report that may lose to other writers of the same key.
MAX_WRITE_ATTEMPTS = 4

Clock = Callable[[], float]


class InvalidReport(LabkitError, ValueError):
    """A report the server does not store (a bad exercise id, a negative attempt count)."""


class ProgressBusy(LabkitError):
    """The same record kept changing under this report (reports of one exercise sent
    at once to several server replicas): it was not stored; sending it again works."""


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
        remembered_ids: int = REMEMBERED_IDS,
    ) -> None:
        self._js = js
        self._kv = kv
        self.bucket = bucket
        self.stream = f"KV_{bucket}"
        self.max_per_user = max_per_user
        self._clock = clock
        # One report at a time per user in this process (replicas: see _write()).
        self._locks = UserLocks()
        self.known = KnownRecords(remembered_ids)

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
        async with self._locks.hold(user):
            records = self.known.of(user)
            try:
                await self._write(user, report.exercise_id, stored.SerializeToString(), records)
            finally:
                self.known.settle(user)
        return stored

    async def _write(self, user: str, exercise_id: str, value: bytes, records: UserRecords) -> None:
        """Store `value` as `user`'s record of `exercise_id`, keeping the bound.

        Every put is conditional on the record's last revision (JetStream's
        Nats-Expected-Last-Subject-Sequence). A put expecting revision R > 0 succeeds
        only if the key's subject holds a message at R: it replaces an existing record
        and cannot add a key, so it needs no count. That is what makes the memory of
        known ids safe: a record someone else removed since (another replica's
        take-back, an operator's purge or delete, a bucket made anew) or rewrote has
        another last revision or none, the put fails, and the report goes the way of a
        new id (create, then count) as if nothing were remembered. A stale memory costs
        a request, never the bound. Only a create (expecting no record) adds a key, and
        every create is counted after it against the bound.
        """
        key = f"{user}.{exercise_id}"
        revision = records.revisions.get(exercise_id)
        for _ in range(MAX_WRITE_ATTEMPTS):
            if revision is not None:
                try:
                    records.revisions[exercise_id] = await self._put(key, value, revision)
                    return
                except KeyWrongLastSequenceError as exc:
                    revision = await self._last_revision(key, exc)
                    if revision is None:
                        records.revisions.pop(exercise_id, None)
                    continue
            if exercise_id not in records.revisions and records.known_full(self.max_per_user):
                # Full by what this process knows; the bucket has the last word (a
                # record may have been removed since the listing).
                await self._list(user, records)
                if exercise_id not in records.revisions and records.known_full(self.max_per_user):
                    raise self._full()
            try:
                created = await self._put(key, value, 0)
            except KeyWrongLastSequenceError as exc:
                revision = await self._last_revision(key, exc)  # it exists: write over it
                continue
            # Another replica may have added one of this user's records meanwhile: past
            # the bound, this one is taken back (both may be: never more than the bound).
            await self._list(user, records)
            if len(records.revisions) > self.max_per_user:
                await self._js.purge_stream(self.stream, subject=self._subject(key))
                records.revisions.pop(exercise_id, None)
                raise self._full()
            records.revisions[exercise_id] = created
            return
        raise ProgressBusy(
            f"your record of {exercise_id} changed {MAX_WRITE_ATTEMPTS} times while this "
            "report was being stored (reports of one exercise sent at once?): send it again"
        )

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

    async def _list(self, user: str, records: UserRecords) -> None:
        """Read the bucket's list of `user`'s exercise ids into `records`."""
        prefix = self._subject(f"{user}.")
        records.replace_listing({s.removeprefix(prefix) for s in await self._subjects(user)})

    async def _put(self, key: str, value: bytes, last: int) -> int:
        """Put `value` at `key` if its last revision is `last` (0: no record); the new one."""
        try:
            revision: int = await self._kv.update(key, value, last=last)
        except KeyWrongLastSequenceError:
            raise
        except (BadRequestError, ServiceUnavailableError) as exc:
            raise ProgressFull(
                f"the progress store refused the record ({exc}); tell your instructor"
            ) from exc
        return revision

    async def _last_revision(self, key: str, refused: KeyWrongLastSequenceError) -> int | None:
        """The revision of `key`'s last message that made a conditional put fail; None
        when there is none (JetStream says it in the refusal; else it is read)."""
        found = _WRONG_LAST.search(refused.description or "")
        if found is not None:
            return int(found.group(1)) or None
        try:
            entry = await self._kv.get(key)
        except KeyDeletedError as deleted:  # a delete marker: a message all the same
            return int(deleted.entry.revision) if deleted.entry else None
        except KeyNotFoundError:
            return None
        return int(entry.revision) if entry.revision else None

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

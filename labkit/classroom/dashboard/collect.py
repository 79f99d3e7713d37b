"""One snapshot of the class for the page: learners, who is online, progress, stats, tap.

`Classroom` holds the dashboard's two NATS connections (its own user, and the
observer for the wire tap) and the auth database; `snapshot()` reads everything once
and `class_view` (pure) lays it out as the JSON the page renders. A part that cannot
be read is reported in `problems` and the rest is still shown.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client

from labkit.auth.roles import is_instructor
from labkit.classroom.dashboard.credentials import dashboard_creds, observer_creds
from labkit.classroom.dashboard.online import online_users
from labkit.classroom.dashboard.progress import ProgressRecord, ProgressUnavailable, class_progress
from labkit.classroom.dashboard.roster import Member, Roster, RosterUnavailable
from labkit.classroom.dashboard.stats import ClassStats, gather_stats
from labkit.classroom.dashboard.wiretap import ClassTap
from labkit.client import connect_as
from labkit.nsc.names import reserved_reason
from labkit.settings import Settings

NOT_STARTED = "not started"


def class_view(
    members: Iterable[Member],
    online: Counter[str],
    records: Iterable[ProgressRecord],
    stats: ClassStats,
) -> dict[str, Any]:
    """The learners' rows and the exercise columns of the grid.

    Learners are the roster's non-instructors, plus any other user id seen on the bus
    or in the bucket (an account the roster does not show yet); the stack's own users
    (`labkit_server`, the observer...) are never learners.
    """
    members = list(members)
    records = list(records)
    instructors = {m.user_id for m in members if is_instructor(m.role)}
    emails = {m.user_id: m.email for m in members}
    ids = [m.user_id for m in members if m.user_id not in instructors]
    seen = set(ids)
    for user in [*online, *(r.user for r in records), *stats.requests, *stats.errors]:
        if user not in seen and user not in instructors and reserved_reason(user) is None:
            ids.append(user)
            seen.add(user)
    progress: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:
        progress.setdefault(record.user, {})[record.exercise_id] = {
            "state": record.state,
            "attempts": record.attempts,
            "at": record.at,
        }
    learners = [
        {
            "user_id": user,
            "email": emails.get(user, ""),
            "online": online.get(user, 0) > 0,
            "connections": online.get(user, 0),
            "requests": stats.requests.get(user, 0),
            "errors": stats.errors.get(user, 0),
            "busy": stats.busy.get(user, 0),
            "progress": progress.get(user, {}),
        }
        for user in ids
    ]
    exercises = sorted({r.exercise_id for r in records if r.user in seen})
    return {
        "learners": learners,
        "exercises": exercises,
        "online_count": sum(1 for learner in learners if learner["online"]),
        "servers_answering": stats.servers,
    }


def with_emails(rows: list[dict[str, Any]], members: Iterable[Member]) -> list[dict[str, Any]]:
    """The tap's rows, each with its sender's email ("" for an id the roster lacks)."""
    emails = {m.user_id: m.email for m in members}
    return [row | {"email": emails.get(str(row.get("sender")), "")} for row in rows]


class Classroom:
    """The dashboard's view of one stack (its LABKIT_HOME)."""

    def __init__(self, settings: Settings, roster: Roster | None = None) -> None:
        self.settings = settings
        self.roster = roster or Roster(settings)
        self.tap = ClassTap()
        self.nc: Client | None = None
        self._observer: Client | None = None
        self._reading: asyncio.Task[dict[str, Any]] | None = None

    async def start(self) -> None:
        """Connect as the dashboard's own user and as the observer (the wire tap)."""
        # A dashboard outlives NATS restarts: it keeps reconnecting, never gives up.
        options: dict[str, Any] = {"settings": self.settings, "max_reconnect_attempts": -1}
        creds = await asyncio.to_thread(dashboard_creds, self.settings)
        self.nc = await connect_as(creds, name="labkit dashboard", **options)
        observer = await asyncio.to_thread(observer_creds, self.settings)
        self._observer = await connect_as(observer, name="labkit tap", **options)
        await self.tap.start(self._observer)

    async def stop(self) -> None:
        for nc in (self._observer, self.nc):
            if nc is not None:
                await nc.close()
        self.nc = self._observer = None

    async def members(self) -> list[Member]:
        return await asyncio.to_thread(self.roster.members)

    async def records(self) -> list[ProgressRecord]:
        if self.nc is None:
            raise ProgressUnavailable("the dashboard is not connected to NATS")
        return await class_progress(self.nc)

    async def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, read now; `problems` says what could not be read.

        Pages polling at once share one reading (two instructors' tabs cost one).
        """
        if self._reading is None or self._reading.done():
            self._reading = asyncio.create_task(self._read())
        return await asyncio.shield(self._reading)

    async def _read(self) -> dict[str, Any]:
        problems: list[str] = []
        members: list[Member] = []
        records: list[ProgressRecord] = []
        stats = ClassStats()
        try:
            members = await self.members()
        except RosterUnavailable as exc:
            problems.append(str(exc))
        online, online_problems = await online_users(self.settings)
        problems += online_problems
        try:
            records = await self.records()
        except ProgressUnavailable as exc:
            problems.append(str(exc))
        if self.nc is not None:
            stats = await gather_stats(self.nc)
        view = class_view(members, online, records, stats)
        view |= {
            "generated_at": datetime.now(UTC).isoformat(),
            "problems": problems,
            "tap": {"seen": self.tap.seen, "rows": with_emails(self.tap.rows(), members)},
        }
        return view

"""The progress cell at the top of each lab notebook: where the learner stands.

In a class it asks the application server for the learner's own records
(`<user>.progress.mine`, what their checks reported, kept across kernels and days)
and shows this lab's exercises: passed, trying (with the attempts) or not started.
Alone nothing is reported anywhere, so it shows the checks this kernel has run.
It never raises: a stack that is away is one line under the table.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass

from labkit.classroom.learner import current_login, learner_file
from labkit.classroom.progress import REPORT_TIMEOUT, attempts_of, my_progress, passed_here
from labkit.exercises.base import Exercise
from labkit.protocol import ProgressReport

NOT_STARTED, TRYING, PASSED = "not started", "trying", "passed"
# The longest the cell waits for the class's records (connect, ask, answer), seconds.
READ_TIMEOUT = REPORT_TIMEOUT + 1.0


@dataclass(frozen=True)
class Row:
    exercise: Exercise
    state: str
    attempts: int


@dataclass
class LabProgress:
    """This lab's exercises and where the learner stands (shown as a table)."""

    lab: str
    source: str  # where the states come from, in words
    rows: list[Row]
    note: str = ""

    @property
    def passed(self) -> int:
        return sum(row.state == PASSED for row in self.rows)

    def _repr_markdown_(self) -> str:
        lines = [
            f"**Your progress in {self.lab}** ({self.source}): "
            f"{self.passed} of {len(self.rows)} passed",
            "",
            "| exercise | state | attempts |",
            "|---|---|---|",
        ]
        lines += [
            f"| {row.exercise.name} · {row.exercise.title} | {row.state} | {row.attempts} |"
            for row in self.rows
        ]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines)

    def __str__(self) -> str:
        lines = [f"your progress in {self.lab} ({self.source}): {self.passed} of {len(self.rows)}"]
        lines += [
            f"  {row.exercise.name}: {row.state}, {row.attempts} attempts" for row in self.rows
        ]
        return "\n".join(lines + ([self.note] if self.note else []))


def lab_exercises(lab: str) -> list[Exercise]:
    """The exercises of `lab` (`"lab03"`), in their order (ex1, ex2, ...)."""
    if not lab.startswith("lab") or not lab[3:].isdigit():
        raise ValueError(f"{lab!r} is not a lab: name one as `lab03`")
    try:
        module = importlib.import_module(f"labkit.exercises.{lab}")
    except ModuleNotFoundError:
        raise ValueError(
            f"labkit has no exercises for {lab!r}: the labs are lab01 to lab08"
        ) from None
    exercises: list[Exercise] = list(module.EXERCISES)
    return exercises


async def show_progress(lab: str) -> LabProgress:
    """This lab's progress: the server's records in a class, this kernel's checks alone."""
    exercises = lab_exercises(lab)
    if learner_file() is None:
        return LabProgress(lab, "alone: the checks run in this kernel", _local_rows(exercises))
    try:
        # nats-py can keep trying a server that is away: bound the whole read.
        records = await asyncio.wait_for(_my_records(), READ_TIMEOUT)
    except Exception as exc:  # never raise: a stack that is away is a note
        return LabProgress(
            lab,
            "this kernel's checks",
            _local_rows(exercises),
            note=f"The class's records could not be read ({type(exc).__name__}: {exc}); "
            "run this cell again in a moment.",
        )
    rows = []
    for exercise in exercises:
        record = records.get(exercise.exercise_id)
        if record is None:
            rows.append(Row(exercise, NOT_STARTED, 0))
        else:
            rows.append(Row(exercise, PASSED if record.passed else TRYING, record.attempts))
    return LabProgress(lab, "as the class's server recorded your checks", rows)


def _local_rows(exercises: list[Exercise]) -> list[Row]:
    rows = []
    for exercise in exercises:
        attempts = attempts_of(exercise.exercise_id)
        state = PASSED if passed_here(exercise.exercise_id) else TRYING if attempts else NOT_STARTED
        rows.append(Row(exercise, state, attempts))
    return rows


async def _my_records() -> dict[str, ProgressReport]:
    login = current_login()
    nc = await login.connect(
        connect_timeout=REPORT_TIMEOUT,
        allow_reconnect=False,
        max_reconnect_attempts=0,
        error_cb=_quiet,  # nats-py prints connection errors without one
    )
    try:
        return {report.exercise_id: report for report in await my_progress(nc)}
    finally:
        await nc.close()


async def _quiet(_exc: Exception) -> None:
    """The note under the table says what went wrong; nothing else is printed."""

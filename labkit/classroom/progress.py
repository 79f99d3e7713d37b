"""Exercise progress: a learner's checks report it, the learner and the instructor read it.

- `report(nc, exercise_id, passed, attempts)`: send one report on `<user>.progress`;
  the stored record comes back (the server stamps its time).
- `my_progress(nc)`: the learner's own records (`<user>.progress.mine`).
- `class_progress(nc)`: every learner's records, read from the bucket directly; `nc`
  is connected with the stack's own credentials (the application server's user), as
  the instructor's dashboard is. Learners' credentials have no right on the bucket.
- `report_check(exercise_id, passed)`: what an exercise's check calls. In classroom
  mode it counts the attempt and sends the report from a thread of its own, with a
  short timeout; alone, or with the stack away, the check is not held up and never
  fails because of it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from nats.aio.client import Client
from nats.js.errors import BucketNotFoundError, NotFoundError

from labkit.auth.client import Login
from labkit.classroom.learner import current_login, learner_file
from labkit.classroom.progress_store import ProgressStore
from labkit.client import request
from labkit.error_replies import raise_for_error
from labkit.errors import LabkitError
from labkit.protocol import ProgressList, ProgressReport
from labkit.settings import ProgressSettings
from labkit.subjects import INBOX_PREFIX, PROGRESS, PROGRESS_MINE, user_subject

log = logging.getLogger("labkit.classroom.progress")

# The longest a check waits for its report (connect, send, answer): a stack that is
# away costs a check at most this.
REPORT_TIMEOUT = 2.0

# Checks run per exercise in this kernel (the report's `attempts`).
_attempts: dict[str, int] = {}
# The last verdict per exercise in this kernel (the progress cell shows it alone).
_verdicts: dict[str, bool] = {}
_attempts_lock = threading.Lock()
# One sender thread: reports leave in the order of the checks, and never pile up threads.
_sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="labkit-progress")


class ProgressUnavailable(LabkitError):
    """The progress records cannot be read (the application server has not made them yet)."""


def user_of_connection(nc: Client) -> str:
    """The user a labkit connection acts as: its inbox prefix is `_INBOX.<user>`."""
    inbox = nc.new_inbox()
    prefix, _, rest = inbox.partition(".")
    user = rest.split(".", 1)[0]
    if prefix != INBOX_PREFIX or not user:
        raise LabkitError(f"this connection's inbox {inbox!r} names no user; use labkit's connect")
    return user


async def report(
    nc: Client, exercise_id: str, passed: bool, attempts: int, timeout: float = REPORT_TIMEOUT
) -> ProgressReport:
    """Report one check; the record the server stored (RemoteError if it refused it)."""
    subject = user_subject(user_of_connection(nc), PROGRESS)
    sent = ProgressReport(exercise_id=exercise_id, passed=passed, attempts=attempts)
    return await request(nc, subject, sent, ProgressReport, timeout)


async def my_progress(nc: Client, timeout: float = REPORT_TIMEOUT) -> list[ProgressReport]:
    """This learner's own records, by exercise id."""
    subject = user_subject(user_of_connection(nc), PROGRESS_MINE)
    reply = await nc.request(subject, b"", timeout=timeout)  # the request carries nothing
    raise_for_error(reply.headers, reply.data)
    return list(ProgressList.FromString(reply.data).reports)


async def class_progress(
    nc: Client, settings: ProgressSettings | None = None
) -> dict[str, list[ProgressReport]]:
    """Every learner's records (user id -> records), read with the stack's credentials."""
    settings = settings or ProgressSettings()
    js = nc.jetstream()
    try:
        kv = await js.key_value(settings.bucket)
    except (BucketNotFoundError, NotFoundError):
        raise ProgressUnavailable(
            f"no progress bucket {settings.bucket!r} yet: the application server creates it "
            "when it starts (`python -m labkit up server`)"
        ) from None
    store = ProgressStore(js, kv, settings.bucket, settings.max_exercises_per_user)
    return await store.everyone()


def attempts_of(exercise_id: str) -> int:
    """How many checks of `exercise_id` this kernel has run (answered ones)."""
    with _attempts_lock:
        return _attempts.get(exercise_id, 0)


def passed_here(exercise_id: str) -> bool:
    """True once a check of `exercise_id` has passed in this kernel."""
    with _attempts_lock:
        return _verdicts.get(exercise_id, False)


def report_check(exercise_id: str, passed: bool) -> Future[ProgressReport | None]:
    """Count a check and, in classroom mode, send its report from the sender thread.

    The future holds the stored record, or None when nothing was sent (alone, or the
    report failed: that is logged, never raised). The caller waits at most
    REPORT_TIMEOUT for it, or not at all.
    """
    with _attempts_lock:
        attempts = _attempts[exercise_id] = _attempts.get(exercise_id, 0) + 1
        _verdicts[exercise_id] = passed or _verdicts.get(exercise_id, False)
    login = _classroom_login()
    if login is None:
        done: Future[ProgressReport | None] = Future()
        done.set_result(None)
        return done
    return _sender.submit(_send_report, login, exercise_id, passed, attempts)


def wait_for_report(sent: Future[ProgressReport | None]) -> ProgressReport | None:
    """The report's outcome, waiting at most REPORT_TIMEOUT (None past it)."""
    try:
        return sent.result(timeout=REPORT_TIMEOUT + 0.5)
    except Exception:  # a timeout: the thread finishes on its own, the check goes on
        return None


async def await_report(sent: Future[ProgressReport | None]) -> ProgressReport | None:
    """`wait_for_report` for async checks: the kernel's event loop keeps running."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(sent), REPORT_TIMEOUT + 0.5)
    except Exception:
        return None


def _send_report(
    login: Login, exercise_id: str, passed: bool, attempts: int
) -> ProgressReport | None:
    async def send() -> ProgressReport:
        nc = await login.connect(
            connect_timeout=REPORT_TIMEOUT,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            error_cb=_quiet,
        )
        try:
            return await report(nc, exercise_id, passed, attempts)
        finally:
            await nc.close()

    async def bounded() -> ProgressReport:
        return await asyncio.wait_for(send(), REPORT_TIMEOUT)

    try:
        return asyncio.run(bounded())
    except Exception as exc:  # never the check's problem: the verdict stands
        log.info("progress report for %s not sent: %s: %s", exercise_id, type(exc).__name__, exc)
        return None


async def _quiet(_exc: Exception) -> None:
    """nats-py prints connection errors unless given a callback: a report keeps quiet."""


def _classroom_login() -> Login | None:
    """The learner's login in classroom mode, else None (alone: nobody to report to)."""
    if learner_file() is None:
        return None
    try:
        return current_login()
    except (LabkitError, OSError) as exc:
        log.info("no progress report: the learner file is unusable (%s)", exc)
        return None

"""The application server's progress routes (classroom).

- `<user>.progress`      (ProgressReport) -> the stored record, stamped by the server
- `<user>.progress.mine` (nothing)        -> ProgressList of that user's own records

The user is the subject's first token, which only that user may publish under, so
a learner can store and read only their own records. Like every route, answers go
only into the requester's own inbox.
"""

from __future__ import annotations

from labkit.classroom.progress_store import (
    InvalidReport,
    ProgressBusy,
    ProgressFull,
    ProgressStore,
)
from labkit.protocol import ProgressList, ProgressReport
from labkit.server.errors import HandlerError
from labkit.server.injection import CurrentUser
from labkit.server.router import Router
from labkit.subjects import PROGRESS, PROGRESS_MINE, any_user

router = Router("progress")


@router.subscribe(any_user(PROGRESS))
async def store_progress(
    report: ProgressReport, user: CurrentUser, store: ProgressStore
) -> ProgressReport:
    try:
        return await store.record(user, report)
    except InvalidReport as exc:
        raise HandlerError(str(exc), code="invalid_report") from exc
    except ProgressFull as exc:
        raise HandlerError(str(exc), code="progress_full") from exc
    except ProgressBusy as exc:
        raise HandlerError(str(exc), code="progress_busy") from exc


@router.subscribe(any_user(PROGRESS_MINE))
async def my_progress(user: CurrentUser, store: ProgressStore) -> ProgressList:
    return ProgressList(reports=await store.of_user(user))

"""The dashboard reads the progress bucket with its own credentials, and can do no more."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from labkit.classroom.dashboard.credentials import PROGRESS_BUCKET, dashboard_creds
from labkit.classroom.dashboard.progress import ProgressRecord, class_progress, encode_report
from labkit.client import connect_as
from labkit.nsc.claims import Permissions
from labkit.nsc.wrapper import Nsc
from labkit.stack import Stack
from tests.conftest import RUN_DIR, make_settings

AT = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    home = Path(tempfile.mkdtemp(prefix="dashboard-progress-", dir=RUN_DIR))
    running = Stack(make_settings(home))
    try:
        running.ensure("nats", "nsc")
        yield running
    finally:
        running.down()


def test_the_dashboard_reads_every_latest_record_and_writes_none(stack: Stack) -> None:
    settings = stack.settings
    writer = Nsc.from_settings(settings).issue_stack_user(
        "labkit_test_writer", Permissions(publish=(">",), subscribe=(">",))
    )

    async def scenario() -> tuple[list[ProgressRecord], list[ProgressRecord], list[str]]:
        dashboard = await connect_as(dashboard_creds(settings), settings=settings)
        errors: list[str] = []
        refused = asyncio.Event()

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))
            refused.set()

        spy = await connect_as(dashboard_creds(settings), settings=settings, error_cb=on_error)
        nc = await connect_as(writer.creds, settings=settings)
        try:
            before = await class_progress(dashboard)  # no bucket yet: nothing to show
            kv = await nc.jetstream().create_key_value(bucket=PROGRESS_BUCKET)
            await kv.put("01alice.lab01", encode_report("lab01", False, 1, AT))
            await kv.put("01alice.lab01", encode_report("lab01", True, 2, AT))  # the latest
            await kv.put("01bob.lab01", encode_report("lab01", False, 4, AT))
            await kv.put("01bob.lab02", encode_report("lab02", True, 1, AT))
            await kv.delete("01bob.lab02")
            await kv.put("01carol.lab01", b"\xff\xff not a report")
            after = await class_progress(dashboard)
            # The dashboard's credentials may not write the bucket.
            await spy.publish(f"$KV.{PROGRESS_BUCKET}.01alice.lab01", b"forged")
            await asyncio.wait_for(refused.wait(), 30)
            kept = await kv.get("01alice.lab01")
            assert kept.value == encode_report("lab01", True, 2, AT)
            return before, after, errors
        finally:
            for connection in (dashboard, spy, nc):
                await connection.close()

    before, after, errors = asyncio.run(scenario())
    assert before == []
    assert sorted(after, key=lambda r: r.user) == [
        ProgressRecord("01alice", "lab01", True, 2, AT.isoformat()),
        ProgressRecord("01bob", "lab01", False, 4, AT.isoformat()),
    ]
    assert any("permissions violation" in error.lower() for error in errors), errors

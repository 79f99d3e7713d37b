"""The dashboard reads the progress bucket with its own credentials, and can do no more."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from nats.js.kv import KV_DEL, KeyValue

from labkit.classroom.dashboard.credentials import PROGRESS_BUCKET, dashboard_creds
from labkit.classroom.dashboard.progress import (
    ProgressRecord,
    class_progress,
    encode_report,
    read_snapshot,
)
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


class StandInWatcher:
    """Hands out `updates` in turn, as nats-py's KV watcher does; then times out."""

    def __init__(self, *updates: KeyValue.Entry | None) -> None:
        self.left = list(updates)

    async def updates(self, timeout: float) -> KeyValue.Entry | None:
        if not self.left:
            raise TimeoutError(f"nothing within {timeout} s")
        return self.left.pop(0)


def entry(key: str, delta: int, value: bytes | None = None, operation: str | None = None) -> Any:
    return KeyValue.Entry(
        bucket=PROGRESS_BUCKET,
        key=key,
        value=value,
        revision=1,
        delta=delta,
        created=None,
        operation=operation,
    )


def test_the_snapshot_ends_after_the_last_pending_entry_not_at_an_early_marker() -> None:
    # nats-py's "nothing pending" marker may come before the messages in flight (CI).
    watcher = StandInWatcher(
        None,
        entry("01alice.lab01", 2, encode_report("lab01", True, 2, AT)),
        entry("01bob.lab01", 1, None, KV_DEL),
        entry("01carol.lab01", 0, encode_report("lab01", False, 1, AT)),
        entry("01dave.lab01", 0, encode_report("lab01", True, 1, AT)),  # a later write
    )
    records = asyncio.run(read_snapshot(watcher, timeout=1.0))
    assert [record.user for record in records] == ["01alice", "01carol"]
    assert len(watcher.left) == 1  # it stopped at the snapshot's end


def test_a_snapshot_whose_entries_never_come_times_out() -> None:
    with pytest.raises(TimeoutError):
        asyncio.run(read_snapshot(StandInWatcher(None), timeout=0.1))


def test_an_empty_bucket_is_an_empty_class(stack: Stack) -> None:
    writer = Nsc.from_settings(stack.settings).issue_stack_user(
        "labkit_test_writer", Permissions(publish=(">",), subscribe=(">",))
    )

    async def scenario() -> list[ProgressRecord]:
        nc = await connect_as(writer.creds, settings=stack.settings)
        try:
            await nc.jetstream().create_key_value(bucket="labkit_test_empty")
            return await class_progress(nc, bucket="labkit_test_empty")
        finally:
            await nc.close()

    assert asyncio.run(scenario()) == []

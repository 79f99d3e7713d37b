"""SIGKILL the flushing process at random moments: nothing is lost, nothing is doubled.

Each trial saves 1,000 messages, starts a child process that flushes them to the
real server, kills it (SIGKILL) after a random delay, then runs flush children until
the outbox is empty, and reads the trial's subject back from the stream.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.buffer import Buffer
from labkit.client import connect_as
from labkit.files import write_private
from tests.buffer.streams import USER, stored_messages

TRIALS = 20
MESSAGES = 1_000
SEED = 20_240_601
# Kill delays are drawn from [0, KILL_WINDOW) seconds after the child is connected;
# a whole flush of 1,000 messages takes about 0.3-0.6 s here, so most kills land in it.
KILL_WINDOW = 0.3
CHILD = Path(__file__).with_name("flush_child.py")


def flush_child(outbox: Path, subject: str, url: str, creds_file: Path) -> list[str]:
    return [
        sys.executable,
        str(CHILD),
        str(outbox),
        subject,
        url,
        str(creds_file),
        f"_INBOX.{USER}",
    ]


def kill_during_flush(argv: list[str], delay: float) -> None:
    """Run a flush child and SIGKILL it `delay` s after it connected."""
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        ready = child.stdout.readline().strip()
        assert ready == "ready", f"flush child failed to start: {ready!r}"
        time.sleep(delay)
    finally:
        child.kill()
        child.communicate()


def flush_until_empty(argv: list[str], outbox: Path, subject: str) -> int:
    """Run flush children to completion until the outbox is empty; how many ran."""
    for run in range(1, 4):
        finished = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        with Buffer(outbox, subject) as buffer:
            if buffer.pending() == 0:
                assert finished.returncode == 0, finished.stdout + finished.stderr
                return run
    pytest.fail(f"the outbox still holds messages after 3 flushes: {finished.stdout}")


# A trial of many random kill points (25 s): in `make soak`, which CI runs after `make test`.
@pytest.mark.soak
@pytest.mark.slow
def test_sigkill_at_random_points_during_flush_loses_and_doubles_nothing(
    tmp_path: Path, buffer_creds: str, nats_url: str
) -> None:
    rng = random.Random(SEED)
    creds_file = tmp_path / "buffer-test.creds"
    write_private(creds_file, buffer_creds)
    outbox = tmp_path / "outbox.db"
    expected = [str(n).encode() for n in range(MESSAGES)]
    interrupted = []

    for trial in range(TRIALS):
        subject = f"{USER}.trial.{trial}"
        with Buffer(outbox, subject) as buffer:
            buffer.save_many(str(n) for n in range(MESSAGES))
        argv = flush_child(outbox, subject, nats_url, creds_file)

        kill_during_flush(argv, rng.uniform(0, KILL_WINDOW))
        with Buffer(outbox, subject) as buffer:
            left = buffer.pending()
        if left > 0:
            interrupted.append(left)
        flush_until_empty(argv, outbox, subject)

        stored = asyncio.run(read_subject(buffer_creds, nats_url, subject))
        assert len(stored) == MESSAGES, f"trial {trial}: {len(stored)} stored"
        assert stored == expected, f"trial {trial}: lost, doubled or reordered messages"

    # The test means something only if most kills hit a flush in progress.
    assert len(interrupted) >= TRIALS // 2, f"only {len(interrupted)} kills hit a flush"


async def read_subject(creds: str, url: str, subject: str) -> list[bytes]:
    nc = await connect_as(creds, servers=url, allow_reconnect=False)
    try:
        return [m.data for m in await stored_messages(nc.jetstream(), subject)]
    finally:
        await nc.close()

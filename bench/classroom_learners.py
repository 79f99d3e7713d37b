"""One driver process of the classroom benchmark: many simulated learners, one event loop.

`bench_classroom.py` starts a few of these (`python bench/classroom_learners.py JOB`),
each with a JSON job naming its learners (user id and NATS creds from a real login),
the stack's NATS servers, the pace and the duration. A driver connects every learner
(one NATS connection each, with that learner's own creds and private inbox), opens
what the labs open (the ping-pong inbox, the stream echo's reply consumer), prints
`READY`, waits for `GO` on stdin, then lets each learner act at the pace until the
time is up, and writes every latency and every failure to the job's result file.

What a learner does, in turn (a notebook's order, echo the most frequent click):
echo, cached echo, ping a classmate, echo, stream echo, one small file round trip
(presign, upload, transform, download), echo, an exercise report on `<user>.progress`.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from PIL import Image

from labkit.classroom.progress import report
from labkit.client import connect_as
from labkit.labs.caching import send_cached_echo
from labkit.labs.echo import send_echo
from labkit.labs.files import FileClient, request_upload_url
from labkit.labs.ping_pong import Conversation
from labkit.labs.stream_echo import StreamEchoReplies, publish_request
from labkit.objects.transfer import put_to_url

ACTIONS = ("echo", "cached", "ping", "echo", "stream", "file", "echo", "progress")
TIMEOUT = 10.0  # seconds: past it an action counts as failed (a bound, not a target)
CONNECTS_AT_ONCE = 50
LAG_TICK = 0.05  # seconds between two looks at the event loop's delay
# Uploads and downloads run in threads (as FileClient does); each real learner has a
# process of their own, so the simulator's pool must not be what queues them.
HTTP_THREADS = 64
PROGRESS = "progress"  # `<user>.progress`: an exercise check's report


def tiny_png() -> bytes:
    """The file the round trip sends: a 64x64 gradient, a few hundred bytes."""
    buffer = BytesIO()
    Image.linear_gradient("L").resize((64, 64)).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Results:
    """Latencies (ms) per action, failures per action and reason, what else was counted."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)

    def ok(self, action: str, seconds: float) -> None:
        self.latencies.setdefault(action, []).append(seconds * 1000)

    def failed(self, action: str, error: BaseException | str) -> None:
        if isinstance(error, str):
            reason = error
        else:  # with what caused it: an unreachable store says why (a timeout, a reset)
            cause = error.__cause__
            reason = type(error).__name__ + (f" ({cause})"[:160] if cause else "")
        self.failures[f"{action}: {reason}"] += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "latencies": self.latencies,
            "failures": dict(self.failures),
            "counts": dict(self.counts),
        }


@dataclass
class Learner:
    user: str
    creds: str
    partner: str
    nc: Client | None = None
    chat: Conversation | None = None
    replies: StreamEchoReplies | None = None
    files: FileClient | None = None
    step: int = 0


class Driver:
    """The learners of one process, and what they measured."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.learners = [Learner(**spec) for spec in job["learners"]]
        self.results = Results()
        self.png = tiny_png()
        self.skip = set(job.get("skip", ()))

    async def connect(self) -> None:
        gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

        async def one(learner: Learner) -> None:
            async with gate:
                learner.nc = await connect_as(
                    learner.creds,
                    servers=self.job["servers"],
                    error_cb=self._connection_error,
                    max_reconnect_attempts=-1,
                )
                learner.chat = await Conversation(learner.nc, learner.user).open()
                learner.replies = await StreamEchoReplies(learner.nc, learner.user).open(TIMEOUT)
                learner.files = FileClient(learner.nc, learner.user)

        await asyncio.gather(*(one(learner) for learner in self.learners))

    async def _connection_error(self, error: Exception) -> None:
        self.results.counts[f"connection error: {type(error).__name__}"] += 1

    async def run(self) -> None:
        interval = float(self.job["interval"])
        end = time.monotonic() + float(self.job["duration"])
        await asyncio.gather(
            self.watch_loop_lag(end),
            *(self._act(learner, interval, end) for learner in self.learners),
        )

    async def _act(self, learner: Learner, interval: float, end: float) -> None:
        learner.step = random.randrange(len(ACTIONS))
        next_at = time.monotonic() + random.uniform(0, interval)
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if time.monotonic() >= end:
                return
            action = ACTIONS[learner.step % len(ACTIONS)]
            learner.step += 1
            if action in self.skip:  # this turn is not taken: the others keep their pace
                next_at += interval * random.uniform(0.8, 1.2)
                continue
            began = time.perf_counter()
            try:
                await asyncio.wait_for(self._do(action, learner), TIMEOUT)
            except Exception as exc:  # counted, the learner goes on
                self.results.failed(action, exc)
            else:
                self.results.ok(action, time.perf_counter() - began)
            next_at += interval * random.uniform(0.8, 1.2)  # people are not metronomes

    async def _do(self, action: str, learner: Learner) -> None:
        assert learner.nc and learner.chat and learner.replies and learner.files
        text = f"{learner.user[-6:]} {learner.step}"
        if action == "echo":
            answer = await send_echo(learner.nc, learner.user, text, timeout=TIMEOUT)
            if answer != f"echo {text}":
                raise ValueError(f"wrong echo {answer!r}")
        elif action == "cached":
            # The same words a few times in a row, as a learner does in notebook 04.
            await send_cached_echo(
                learner.nc, learner.user, f"hello {learner.step // 16}", timeout=TIMEOUT
            )
        elif action == "ping":
            await learner.chat.send(learner.partner, text, timeout=TIMEOUT)
            self.results.counts["ping lines sent"] += 1
        elif action == "stream":
            await self._stream_echo(learner, text)
        elif action == "file":
            await self._file_round_trip(learner)
        elif action == PROGRESS:
            # As an exercise check does (a refused report raises RemoteError).
            await report(learner.nc, "lab03-ex1", True, learner.step, timeout=TIMEOUT)
            self.results.counts["progress: stored"] += 1

    async def _file_round_trip(self, learner: Learner) -> None:
        """Presign, upload, transform, download: each step timed on its own too."""
        assert learner.nc and learner.files
        files = learner.files
        began = time.perf_counter()
        url = await request_upload_url(learner.nc, learner.user, "bench.png", len(self.png))
        began = self._step("file: presign", began)
        await asyncio.to_thread(
            put_to_url, url, self.png, content_type="image/png", session=files.session
        )
        began = self._step("file: upload", began)
        url = await files.transform("bench.png", "rotate", "90")
        began = self._step("file: transform", began)
        if not await files.download_bytes(url):
            raise ValueError("empty download")
        self._step("file: download", began)

    def _step(self, name: str, began: float) -> float:
        now = time.perf_counter()
        self.results.ok(name, now - began)
        return now

    async def watch_loop_lag(self, end: float) -> None:
        """How late this process's event loop wakes up: the simulator's own delay."""
        while time.monotonic() < end:
            began = time.perf_counter()
            await asyncio.sleep(LAG_TICK)
            self.results.ok("simulator loop lag", time.perf_counter() - began - LAG_TICK)

    async def _stream_echo(self, learner: Learner, text: str) -> None:
        assert learner.nc and learner.replies
        marker = f"{text} {random.getrandbits(32):08x}"
        await publish_request(learner.nc, learner.user, marker)
        wanted = f"echo {marker} from {learner.user}"
        while True:  # replies a past run left unread come first
            replies = await learner.replies.fetch(10, timeout=TIMEOUT)
            if wanted in replies:
                return
            if not replies:
                raise TimeoutError("no stream echo reply")

    async def finish(self) -> None:
        # Lines from a classmate may still be in flight: one round trip on each
        # connection (a flush) is a sentinel for what the server already relayed.
        received = 0
        for learner in self.learners:
            if learner.nc is not None and learner.nc.is_connected:
                await learner.nc.flush(timeout=TIMEOUT)
            if learner.chat is not None:
                received += len(learner.chat.received)
        self.results.counts["ping lines received"] = received
        for learner in self.learners:
            if learner.files is not None:
                learner.files.close()
            if learner.nc is not None:
                await learner.nc.close()


async def main(job_file: Path) -> int:
    job = json.loads(job_file.read_text())
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(HTTP_THREADS))
    driver = Driver(job)
    began = time.perf_counter()
    await driver.connect()
    driver.results.counts["connect seconds"] = round(time.perf_counter() - began, 1)
    print("READY", flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    if line.strip() != "GO":
        return 2
    cpu = time.process_time()
    await driver.run()
    await driver.finish()
    # The simulator shares the cores with the stack: its own share, for the report.
    driver.results.counts["driver cpu seconds"] = round(time.process_time() - cpu, 2)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    driver.results.counts["driver peak rss mb"] = round(peak_kib / 1024, 1)
    Path(job["result"]).write_text(json.dumps(driver.results.as_json()))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(Path(sys.argv[1]))))

"""Exercises of notebook 07 (persistence): a send with no connection, a crash to predict.

Both checks use an outbox of their own, flush it to the stack's real `ECHO_STREAM`
as `exercise-stream`, and read the stream echo's replies through that user's durable
reply consumer, so the application server must be running (the notebook starts it;
the tests serve the labs in-process). The second check really kills a flushing
process (`labkit.exercises.killed_flush`) after JetStream's ack, before the delete.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import nats.js.errors
from google.protobuf.message import DecodeError
from nats.aio.client import Client

from labkit.buffer import DELETE_EVERY, Buffer, BufferedMessage, FlushResult
from labkit.client import connect_as
from labkit.discovery import nats_urls
from labkit.errors import LabkitError
from labkit.exercises.base import AsyncExercise, NotYet, call_learner, kind_of
from labkit.files import write_private
from labkit.labs.stream_echo import StreamEchoReplies, publish_request, request_subject
from labkit.nsc.wrapper import Nsc
from labkit.protocol import EchoRequest
from labkit.settings import Settings

# The user both checks send as (its own reply consumer, `reply-exercise-stream`).
STREAM_USER = "exercise-stream"
# How long the stream echo may take to answer everything a check sent.
REPLY_TIMEOUT = 10.0
# The crash of the second exercise: this many requests, the process killed right after
# JetStream acknowledged this many of them.
SAVED = 5
KILLED_AFTER = 3
CHILD_TIMEOUT = 30.0


class StreamEchoUnavailable(LabkitError):
    """The stack cannot run the check: no stream, no stream echo, or the crash did not happen."""


def _payload(text: str) -> bytes:
    return EchoRequest(message=text).SerializeToString()


def _texts(label: str, count: int) -> list[str]:
    """`count` texts no earlier check sent: their replies cannot be left over from one."""
    token = secrets.token_hex(3)
    return [f"{label} {n} ({token})" for n in range(1, count + 1)]


@asynccontextmanager
async def _stream_user(settings: Settings) -> AsyncIterator[tuple[str, Client, StreamEchoReplies]]:
    """The check's user: its creds, a connection, and its reply consumer, open."""
    # Off this event loop, so a lab server running in it can answer the announcement.
    creds = (await Nsc.from_settings(settings).create_user_in_thread(STREAM_USER)).creds
    nc = await connect_as(
        creds, settings=settings, allow_reconnect=False, name=f"exercise {STREAM_USER}"
    )
    replies = StreamEchoReplies(nc, STREAM_USER)
    try:
        try:
            await replies.open()
        except nats.js.errors.NotFoundError:
            raise StreamEchoUnavailable(
                "the stream ECHO_STREAM does not exist yet: start the application server "
                "(`Stack().ensure('server')`), which creates it, and run the check again"
            ) from None
        yield creds, nc, replies
    finally:
        await replies.close()
        await nc.close()


async def _answered_once(nc: Client, replies: StreamEchoReplies, texts: Sequence[str]) -> None:
    """Wait until the stream echo answered each of `texts`; raise unless exactly once each.

    A second copy of a reply would come before the reply to a sentinel request sent
    after them all: replies come from the consumer in the order the stream stored them.
    """
    expected = Counter(f"echo {text} from {STREAM_USER}" for text in texts)
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + REPLY_TIMEOUT
    # Replies to other texts are left over from an interrupted check: skipped.
    while expected - seen and time.monotonic() < deadline:
        seen.update(reply for reply in await replies.fetch(timeout=0.5) if reply in expected)
    missing = sorted(expected - seen)
    if missing:
        raise StreamEchoUnavailable(
            f"no reply to {len(missing)} of the {len(texts)} requests within "
            f"{REPLY_TIMEOUT:g} s: is the application server running? "
            "(`Stack().ensure('server')`)"
        )
    [sentinel] = _texts("sentinel", 1)
    await publish_request(nc, STREAM_USER, sentinel)
    sentinel_reply = f"echo {sentinel} from {STREAM_USER}"
    sentinel_seen = False
    while not sentinel_seen and time.monotonic() < deadline + REPLY_TIMEOUT:
        for reply in await replies.fetch(timeout=0.5):
            sentinel_seen = sentinel_seen or reply == sentinel_reply
            if reply in expected:
                seen[reply] += 1
    if not sentinel_seen:
        raise StreamEchoUnavailable("the stream echo did not answer the sentinel request")
    doubled = sorted(reply for reply, count in seen.items() if count > 1)
    if doubled:
        raise StreamEchoUnavailable(f"the stream echo answered twice: {doubled}")


def _require_flushed(result: FlushResult) -> None:
    if result.error is not None or result.remaining:
        raise StreamEchoUnavailable(
            f"the outbox could not be flushed to the stream ({result.error!r}, "
            f"{result.remaining} left): is the NATS server running?"
        )


class SendOffline(AsyncExercise):
    sandbox_needs = ("server",)
    number = 1
    title = "A send with no connection"
    answer_name = "send_offline"
    prompt = (
        "Offline, a send only reaches the outbox. Write `send_offline(buffer, texts)`: "
        "save one stream echo request (`EchoRequest`) per text in `buffer`, in the order "
        "given, on the buffer's own subject, and return the ids the outbox gave them. "
        "There is no connection to use. The check hands it an empty outbox and reads "
        "the file, then flushes it to the real stream with a connection of its own and "
        "waits for exactly one reply to each request."
    )
    placeholder_code = (
        "from labkit.buffer import Buffer\n"
        "from labkit.protocol import EchoRequest\n"
        "\n"
        "\n"
        "def send_offline(buffer: Buffer, texts: list[str]) -> list[int]:\n"
        "    return ____  # the outbox ids of the saved requests, in order"
    )
    hint_text = (
        "`buffer.save(payload)` stores one message on the buffer's subject and returns its "
        "id once it is on disk; the payload the stream echo reads is "
        "`EchoRequest(message=text).SerializeToString()`."
    )
    solution_code = """\
from labkit.buffer import Buffer
from labkit.protocol import EchoRequest


def send_offline(buffer: Buffer, texts: list[str]) -> list[int]:
    # No connection: save() only writes the outbox file; a flush publishes it later.
    return [buffer.save(EchoRequest(message=text).SerializeToString()) for text in texts]
"""

    async def verify(self, answer: object) -> str:
        texts = _texts("offline", 3)
        subject = request_subject(STREAM_USER)
        with (
            tempfile.TemporaryDirectory(prefix="labkit-exercise-") as folder,
            Buffer(Path(folder) / "outbox.db", subject) as buffer,
        ):
            ids = call_learner(answer, buffer, list(texts), what="send_offline(buffer, texts)")
            _check_saved(buffer.get_all(), texts, subject)
            _check_ids(ids, [message.id for message in buffer.get_all()])
            async with _stream_user(self.settings) as (_creds, nc, replies):
                _require_flushed(await buffer.flush(nc.jetstream()))
                await _answered_once(nc, replies, texts)
        return (
            f"your {len(texts)} requests waited in the outbox, in order, with no "
            "connection; one flush later JetStream had each of them and the stream echo "
            "answered each exactly once"
        )


def _check_saved(messages: list[BufferedMessage], texts: list[str], subject: str) -> None:
    if not messages:
        raise NotYet("the outbox is still empty: save each request with `buffer.save(...)`")
    if len(messages) != len(texts):
        raise NotYet(
            f"the outbox holds {len(messages)} message{'s' if len(messages) > 1 else ''} after "
            f"send_offline(buffer, <{len(texts)} texts>); save exactly one request per text"
        )
    for message in messages:
        if message.subject != subject:
            raise NotYet(
                f"a request was saved for `{message.subject}`; leave the subject out, so "
                f"that it goes on the buffer's own, `{subject}`"
            )
    payloads = [message.payload for message in messages]
    if payloads == [_payload(text) for text in texts]:
        return
    for payload in payloads:
        if payload in (text.encode() for text in texts):
            raise NotYet(
                f"the outbox holds the bare text {payload!r}; the stream echo reads an "
                "`EchoRequest`: save `EchoRequest(message=text).SerializeToString()`"
            )
    try:
        saved = [EchoRequest.FromString(payload).message for payload in payloads]
    except DecodeError:
        raise NotYet(
            "a saved payload is not an `EchoRequest`: save "
            "`EchoRequest(message=text).SerializeToString()`"
        ) from None
    if sorted(saved) == sorted(texts):
        raise NotYet(f"the requests were saved in the order {saved}; keep the order {texts}")
    raise NotYet(f"the outbox holds requests for {saved}; expected one for each of {texts}")


def _check_ids(ids: object, saved: list[int]) -> None:
    if not isinstance(ids, list | tuple) or list(ids) != saved:
        returned = f"{ids!r}" if ids is None or isinstance(ids, list | tuple) else kind_of(ids)
        raise NotYet(
            f"the requests are saved, but send_offline returned {returned}; return the ids "
            f"`buffer.save(...)` gave them, in order: {saved}"
        )


class AfterTheCrash(AsyncExercise):
    sandbox_needs = ("server",)
    number = 2
    title = "What survives a crash"
    answer_name = "after_restart"
    prompt = (
        f"An outbox holds {SAVED} requests. A flush publishes them oldest first; right after "
        f"JetStream acknowledged the first {KILLED_AFTER}, the process is killed (SIGKILL), "
        "before the outbox deleted anything (it deletes acknowledged messages in groups of "
        f"{DELETE_EVERY}). After a restart, a new flush runs to the end. Predict the "
        "`FlushResult` it returns: `after_restart = FlushResult(sent=..., duplicates=..., "
        "remaining=...)`. The check makes this happen on the real stream, killed process "
        "and all, compares, and counts the stream echo's replies."
    )
    placeholder_code = (
        "from labkit.buffer import FlushResult\n"
        "\n"
        "after_restart = ____  # FlushResult(sent=..., duplicates=..., remaining=...)"
    )
    hint_text = (
        "A flush starts from the oldest message still in the file, and every message "
        "carries the same `Nats-Msg-Id` each time it is published. `help(FlushResult)` "
        "says what `sent` and `duplicates` count."
    )
    solution_code = f"""\
from labkit.buffer import FlushResult

# The first {KILLED_AFTER} were still in the file: all {SAVED} go out again. JetStream
# acknowledges each, and recognises the first {KILLED_AFTER} by their Nats-Msg-Id.
after_restart = FlushResult(sent={SAVED}, duplicates={KILLED_AFTER}, remaining=0)
"""

    async def verify(self, answer: object) -> str:
        if not isinstance(answer, FlushResult):
            raise NotYet(
                f"after_restart is {kind_of(answer)}; make it a "
                "`FlushResult(sent=..., duplicates=..., remaining=...)`"
            )
        real = await self.crash_and_restart()
        if answer.error is not None:
            raise NotYet(
                f"your prediction has error={answer.error!r}; the flush after the restart "
                "ran to the end, with `error=None`"
            )
        # Each "Not yet" points at what to think about, never at the number itself.
        if answer.remaining != real.remaining:
            raise NotYet(
                f"remaining={answer.remaining} is not what the flush after the restart "
                "reports: `remaining` counts what is still in the outbox once the flush "
                "returns, and this flush ran to the end without a failed publish"
            )
        if answer.sent != real.sent:
            if answer.sent == SAVED - KILLED_AFTER:
                raise NotYet(
                    f"sent={answer.sent} counts only the requests JetStream had not stored "
                    "yet; but the killed process deleted nothing from the outbox file: which "
                    "requests does the restarted flush find there, and does `sent` count "
                    "the ones JetStream recognises? (`help(FlushResult)`)"
                )
            raise NotYet(
                f"sent={answer.sent} is not what the restarted flush reports: think about "
                "which requests were still in the outbox file after the kill, oldest "
                "first, and that `sent` counts every publish JetStream acknowledged"
            )
        if answer.duplicates != real.duplicates:
            raise NotYet(
                f"duplicates={answer.duplicates} is not right: which of the requests "
                "published again had JetStream already stored before the crash, and what "
                "does it do with a `Nats-Msg-Id` it has already seen?"
            )
        return (
            f"the flush after the crash returned sent={real.sent}, "
            f"duplicates={real.duplicates}, remaining={real.remaining}, as you predicted; "
            f"the stream kept one copy of each request and the stream echo answered each "
            f"of the {SAVED} once"
        )

    async def crash_and_restart(self) -> FlushResult:
        """Save SAVED requests, kill a flushing process after KILLED_AFTER acks, flush again."""
        texts = _texts("crash", SAVED)
        subject = request_subject(STREAM_USER)
        with tempfile.TemporaryDirectory(prefix="labkit-exercise-") as folder:
            outbox = Path(folder) / "outbox.db"
            with Buffer(outbox, subject) as buffer:
                buffer.save_many(_payload(text) for text in texts)
                async with _stream_user(self.settings) as (creds, nc, replies):
                    creds_file = Path(folder) / "exercise.creds"
                    write_private(creds_file, creds)
                    await _killed_flush(self.settings, outbox, subject, creds_file)
                    if buffer.pending() != SAVED:
                        raise StreamEchoUnavailable(
                            f"the killed flush left {buffer.pending()} of {SAVED} messages "
                            f"in the outbox; expected all {SAVED}"
                        )
                    result = await buffer.flush(nc.jetstream())
                    _require_flushed(result)
                    await _answered_once(nc, replies, texts)
        return result


async def _killed_flush(settings: Settings, outbox: Path, subject: str, creds_file: Path) -> None:
    """Run a flush in a process of its own, SIGKILLed right after the KILLED_AFTER-th ack."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "labkit.exercises.killed_flush",
        str(outbox),
        subject,
        str(creds_file),
        ",".join(nats_urls(settings)),
        str(KILLED_AFTER),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(CHILD_TIMEOUT):
            out, err = await process.communicate()
    except TimeoutError:
        raise StreamEchoUnavailable(
            f"the flushing process did not finish within {CHILD_TIMEOUT:g} s"
        ) from None
    finally:
        if process.returncode is None:  # timed out or cancelled: never leave it running
            process.kill()
            await process.wait()
    acked = out.decode().split("\n")[:-1]
    if process.returncode != -signal.SIGKILL or acked != [
        f"acked {n}" for n in range(1, KILLED_AFTER + 1)
    ]:
        raise StreamEchoUnavailable(
            f"the flushing process was not killed after {KILLED_AFTER} acks (exit code "
            f"{process.returncode}, printed {acked}): {err.decode()[-800:]}"
        )


ex1 = SendOffline()
ex2 = AfterTheCrash()
EXERCISES = (ex1, ex2)

"""Stream echo: request and reply both persisted in JetStream (the persistence lab).

A client publishes `EchoRequest` on `<user>.echo.stream` through JetStream; the
server reads it from its durable consumer, stores `EchoResponse("echo <m> from
<user>")` on `<user>.echo.stream.reply`, and only then acknowledges the request.
The client reads its replies through its own durable consumer `reply-<user>`.
Everything survives restarts of the NATS server, the server and the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext

from labkit.buffer import Buffer, BufferedPublisher, FlushResult
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server.injection import CurrentUser
from labkit.server.router import Router
from labkit.settings import StreamSettings
from labkit.subjects import (
    ECHO_STREAM,
    ECHO_STREAM_NAME,
    REPLY_SUFFIX,
    any_user,
    stored,
    user_subject,
)

SERVER_CONSUMER = "echo-stream-server"

router = Router("stream_echo")


@router.stream(any_user(ECHO_STREAM), stream=ECHO_STREAM_NAME, durable=SERVER_CONSUMER)
async def stream_echo(request: EchoRequest, user: CurrentUser) -> EchoResponse:
    return EchoResponse(message=f"echo {request.message} from {user}")


def echo_stream_config(settings: StreamSettings, replicas: int | None = None) -> StreamConfig:
    """The stream the server owns: requests and replies, on disk, limits from settings.

    `replicas` when the settings leave it open: 3 on a NATS cluster (jetstream_replicas).
    """
    return StreamConfig(
        name=ECHO_STREAM_NAME,
        subjects=[stored(any_user(ECHO_STREAM)), stored(any_user(f"{ECHO_STREAM}.{REPLY_SUFFIX}"))],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=settings.max_age.total_seconds(),
        max_bytes=settings.max_bytes,
        duplicate_window=settings.duplicate_window.total_seconds(),
        num_replicas=settings.replicas or replicas or 1,
    )


def request_subject(user: str) -> str:
    return user_subject(user, ECHO_STREAM)


def reply_subject(user: str) -> str:
    return user_subject(user, f"{ECHO_STREAM}.{REPLY_SUFFIX}")


def reply_consumer(user: str) -> str:
    """The one consumer a user's credentials may create and read."""
    return f"reply-{user}"


@dataclass(frozen=True)
class StreamState:
    """The stream as the server sees it: every message and consumer, and one user's share."""

    messages: int
    consumers: int
    requests: int
    replies: int

    def __str__(self) -> str:
        return (
            f"stream {ECHO_STREAM_NAME}: {self.messages} messages, {self.consumers} consumers"
            f" (yours: {self.requests} requests, {self.replies} replies)"
        )


async def stream_state(js: JetStreamContext, user: str) -> StreamState:
    """Read the stream's state; needs the server's credentials (users may not ask)."""
    info = await js.stream_info(ECHO_STREAM_NAME, subjects_filter=stored(f"{user}.>"))
    subjects = info.state.subjects or {}
    return StreamState(
        messages=info.state.messages,
        consumers=info.state.consumer_count,
        requests=subjects.get(stored(request_subject(user)), 0),
        replies=subjects.get(stored(reply_subject(user)), 0),
    )


class StreamEchoReplies:
    """A user's durable reader of its stream echo replies (survives client restarts)."""

    def __init__(self, nc: Client, user: str) -> None:
        self.nc = nc
        self.user = user
        self._subscription: Any = None

    async def open(self) -> StreamEchoReplies:
        js = self.nc.jetstream()
        config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=30)
        self._subscription = await js.pull_subscribe(
            stored(reply_subject(self.user)),
            durable=reply_consumer(self.user),
            stream=ECHO_STREAM_NAME,
            config=config,
        )
        return self

    async def fetch(self, most: int = 100, timeout: float = 1.0) -> list[str]:
        """Up to `most` replies not read before (acknowledged as they are read)."""
        try:
            messages = await self._subscription.fetch(most, timeout=timeout)
        except (TimeoutError, NatsTimeoutError):
            return []
        replies = []
        for message in messages:
            replies.append(EchoResponse.FromString(message.data).message)
            await message.ack()
        return replies

    async def close(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()


async def publish_request(nc: Client, user: str, text: str, msg_id: str | None = None) -> int:
    """Publish one request through JetStream; the stream sequence it was stored at."""
    headers = {"Nats-Msg-Id": msg_id} if msg_id else None
    ack = await nc.jetstream().publish(
        request_subject(user), EchoRequest(message=text).SerializeToString(), headers=headers
    )
    return int(ack.seq)


class StreamEchoClient:
    """A learner's stream echo: buffered sends (nothing lost offline) and durable replies.

        client = await StreamEchoClient(nc, user, Buffer.from_settings(settings,
                                        request_subject(user))).open()
        await client.send("hello")          # saved to disk first, then published
        await client.read_replies()         # ["echo hello from <user>"]

    Pass `client.on_reconnect` as nats-py's `reconnected_cb` to flush automatically
    when the connection comes back.
    """

    def __init__(self, nc: Client, user: str, buffer: Buffer) -> None:
        self.user = user
        self.publisher = BufferedPublisher(nc, buffer)
        self.replies = StreamEchoReplies(nc, user)

    async def open(self) -> StreamEchoClient:
        await self.replies.open()
        return self

    async def send(self, text: str) -> int:
        """Save the request (durably), then publish what waits; returns its buffer id."""
        return await self.publisher.send(
            EchoRequest(message=text).SerializeToString(), request_subject(self.user)
        )

    async def flush(self) -> FlushResult:
        return await self.publisher.flush()

    async def on_reconnect(self) -> None:
        await self.publisher.on_reconnect()

    @property
    def pending(self) -> int:
        return self.publisher.pending

    async def read_replies(self, most: int = 100, timeout: float = 1.0) -> list[str]:
        return await self.replies.fetch(most, timeout)

    async def close(self) -> None:
        await self.replies.close()

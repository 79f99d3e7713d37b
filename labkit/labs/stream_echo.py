"""Stream echo: request and reply both persisted in JetStream (the persistence lab).

A client publishes `EchoRequest` on `<user>.echo.stream` through JetStream; the
server reads it from its durable consumer, stores `EchoResponse("echo <m> from
<user>")` on `<user>.echo.stream.reply.<slot>` (one subject per request: see
labkit.server.consumers), and only then acknowledges the request.
The client reads its replies through its own durable consumer `reply-<user>`, which
the server creates when the client first asks (`<user>.echo.stream.open`; see
labkit.labs.reply_consumers). Everything survives restarts of the NATS server, the
server and the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from labkit.buffer import Buffer, BufferedPublisher, FlushResult
from labkit.client import request
from labkit.error_replies import JS_MESSAGE_TOO_LARGE, JS_STORE_FAILED
from labkit.errors import LabkitError
from labkit.labs.reply_consumers import ReplyConsumers, is_fixed_configuration, reply_consumer
from labkit.protocol import EchoRequest, EchoResponse
from labkit.server.injection import CurrentUser
from labkit.server.router import Router
from labkit.settings import StreamSettings
from labkit.subjects import (
    ECHO_STREAM,
    ECHO_STREAM_NAME,
    ECHO_STREAM_OPEN,
    REPLY_SUFFIX,
    any_user,
    stored,
    user_subject,
)

__all__ = [
    "SERVER_CONSUMER",
    "RequestTooLarge",
    "StreamEchoClient",
    "StreamEchoReplies",
    "StreamQuotaFull",
    "StreamState",
    "echo_stream_config",
    "publish_request",
    "reply_consumer",
    "reply_subject",
    "request_subject",
    "router",
    "stream_state",
]

SERVER_CONSUMER = "echo-stream-server"

router = Router("stream_echo")


@router.stream(any_user(ECHO_STREAM), stream=ECHO_STREAM_NAME, durable=SERVER_CONSUMER)
async def stream_echo(request: EchoRequest, user: CurrentUser) -> EchoResponse:
    return EchoResponse(message=f"echo {request.message} from {user}")


@router.subscribe(any_user(ECHO_STREAM_OPEN))
async def open_replies(user: CurrentUser, consumers: ReplyConsumers) -> EchoResponse:
    """Make sure the user's reply consumer exists (users may not create consumers)."""
    return EchoResponse(message=await consumers.ensure(user))


def echo_stream_config(settings: StreamSettings, replicas: int | None = None) -> StreamConfig:
    """The stream the server owns: requests and replies, on disk, limits from settings.

    `replicas` when the settings leave it open: 3 on a NATS cluster (jetstream_replicas).
    """
    # Each user's requests and replies are subjects of their own: the per-subject limit
    # with discard-new-per-subject bounds every user, and a full stream refuses new
    # messages rather than evicting anyone's (discard new).
    return StreamConfig(
        name=ECHO_STREAM_NAME,
        # A reply is stored on a subject of its own request's: `...reply.<slot>`.
        subjects=[
            stored(any_user(ECHO_STREAM)),
            stored(any_user(f"{ECHO_STREAM}.{REPLY_SUFFIX}.>")),
        ],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=settings.max_age.total_seconds(),
        max_bytes=settings.max_bytes,
        discard=DiscardPolicy.NEW,
        max_msgs_per_subject=settings.max_msgs_per_user,
        discard_new_per_subject=True,
        max_msg_size=settings.max_msg_size,
        duplicate_window=settings.duplicate_window.total_seconds(),
        num_replicas=settings.replicas or replicas or 1,
        # Set, never left to the server: its default (1,000) caps a class's size.
        max_consumers=settings.max_consumers,
    )


def request_subject(user: str) -> str:
    return user_subject(user, ECHO_STREAM)


def reply_subject(user: str) -> str:
    """Where a user's replies go (each under a slot of its own: `<this>.<slot>`)."""
    return user_subject(user, f"{ECHO_STREAM}.{REPLY_SUFFIX}")


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
    slots = f"{stored(reply_subject(user))}."  # one subject per reply
    return StreamState(
        messages=info.state.messages,
        consumers=info.state.consumer_count,
        requests=subjects.get(stored(request_subject(user)), 0),
        replies=sum(count for subject, count in subjects.items() if subject.startswith(slots)),
    )


class StreamQuotaFull(LabkitError):
    """The stream refused a request: this user's share (or the whole stream) is full."""


class RequestTooLarge(LabkitError, ValueError):
    """The stream refused a request larger than it stores per message."""


def raise_for_refusal(error: APIError, buffer: Buffer) -> None:
    """Turn the stream's refusal of the oldest waiting request into a clear error."""
    description = error.description or ""
    if error.err_code == JS_MESSAGE_TOO_LARGE:
        oldest = buffer.get()
        if oldest is not None:  # it can never be stored: keeping it would block the rest
            buffer.delete(oldest.id)
        size = f"{len(oldest.payload)} bytes" if oldest is not None else "request"
        raise RequestTooLarge(
            f"the stream refused your {size} ({description}; LABKIT_STREAM_MAX_MSG_SIZE); "
            "it was taken out of your outbox: send something shorter"
        )
    if error.err_code == JS_STORE_FAILED and "maximum" in description.lower():
        raise StreamQuotaFull(
            f"the stream refused your request ({description}): it keeps a bounded number "
            f"of each user's requests ({buffer.pending()} wait in your outbox, nothing is "
            "lost); they go out when older ones expire (LABKIT_STREAM_MAX_AGE). Do not "
            "send them again"
        )


class ReplyConsumerUnavailable(LabkitError, TimeoutError):
    """The server did not answer when asked to create the user's reply consumer."""


class StreamEchoReplies:
    """A user's durable reader of its stream echo replies (survives client restarts)."""

    def __init__(self, nc: Client, user: str) -> None:
        self.nc = nc
        self.user = user
        self._subscription: Any = None

    async def open(self, timeout: float = 5.0) -> StreamEchoReplies:
        """Bind to the user's reply consumer; ask the server to create it if missing."""
        js = self.nc.jetstream()
        name = reply_consumer(self.user)
        try:
            info = await js.consumer_info(ECHO_STREAM_NAME, name)
            ready = is_fixed_configuration(info.config, self.user)
        except NotFoundError:
            ready = False
        if not ready:
            try:
                await request(
                    self.nc,
                    user_subject(self.user, ECHO_STREAM_OPEN),
                    EchoRequest(),
                    EchoResponse,
                    timeout,
                )
            except (TimeoutError, NatsTimeoutError) as exc:
                raise ReplyConsumerUnavailable(
                    f"the application server did not create your reply consumer {name} "
                    f"within {timeout} s; is it running? Start it with `python -m labkit up` "
                    "or Stack().ensure('server'), then open again"
                ) from exc
        self._subscription = await js.pull_subscribe_bind(durable=name, stream=ECHO_STREAM_NAME)
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
        """Save the request (durably), then publish what waits; returns its buffer id.

        Raises `StreamQuotaFull` when the stream holds as many of this user's requests
        as it keeps (the request waits in the outbox), and `RequestTooLarge` when the
        stream would never store it (it is taken out of the outbox).
        """
        message_id = await self.publisher.send(
            EchoRequest(message=text).SerializeToString(), request_subject(self.user)
        )
        result = self.publisher.last_flush
        if result is not None and isinstance(result.error, APIError):
            raise_for_refusal(result.error, self.publisher.buffer)
        return message_id

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

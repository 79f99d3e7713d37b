"""Connect to the stack's NATS server as a user, with that user's private inbox.

Replies come back on `_INBOX.<user>.>`, the only inbox the user's credentials may
subscribe to, so every connection sets its inbox prefix from the user's name.
"""

from __future__ import annotations

from typing import Any, TypeVar

import nats
from google.protobuf.message import Message
from nats.aio.client import Client, RawCredentials

from labkit.discovery import nats_urls
from labkit.error_replies import raise_for_error
from labkit.nsc.creds import user_of
from labkit.settings import Settings
from labkit.subjects import inbox_prefix

Response = TypeVar("Response", bound=Message)


async def connect_as(
    creds: str,
    *,
    servers: str | list[str] | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> Client:
    """A nats-py connection authenticated by `creds` (text, never a file on disk).

    Without `servers`, every node of the stack's NATS (one, or a cluster's three).
    """
    options.setdefault("inbox_prefix", inbox_prefix(user_of(creds)))
    return await nats.connect(
        servers or nats_urls(settings), user_credentials=RawCredentials(creds), **options
    )


async def request(
    nc: Client,
    subject: str,
    message: Message,
    response_type: type[Response],
    timeout: float = 2.0,
) -> Response:
    """Send a protobuf request; the parsed reply, or RemoteError when the server refused it."""
    reply = await nc.request(subject, message.SerializeToString(), timeout=timeout)
    raise_for_error(reply.headers, reply.data)
    return response_type.FromString(reply.data)

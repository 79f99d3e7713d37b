"""Connect to the stack's NATS server as a user, with that user's private inbox.

Replies come back on `_INBOX.<user>.>`, the only inbox the user's credentials may
subscribe to, so every connection sets its inbox prefix from the user's name.
"""

from __future__ import annotations

from typing import Any

import nats
from nats.aio.client import Client, RawCredentials

from labkit.discovery import nats_url
from labkit.nsc import jwt
from labkit.nsc.creds import parse_creds
from labkit.settings import Settings


def user_of(creds: str) -> str:
    """The user name inside creds text (the first token of its subjects)."""
    user_jwt, _ = parse_creds(creds)
    return str(jwt.decode(user_jwt)["name"])


async def connect_as(
    creds: str,
    *,
    servers: str | list[str] | None = None,
    settings: Settings | None = None,
    **options: Any,
) -> Client:
    """A nats-py connection authenticated by `creds` (text, never a file on disk)."""
    options.setdefault("inbox_prefix", f"_INBOX.{user_of(creds)}")
    return await nats.connect(
        servers or nats_url(settings), user_credentials=RawCredentials(creds), **options
    )

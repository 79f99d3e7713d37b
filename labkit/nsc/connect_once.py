"""One short NATS connection for a single request (a push, an announcement), bounded.

nats-py retries a refused first connect without end unless told otherwise
(max_reconnect_attempts=0 means no limit there), and even with one attempt it tries
each server twice, waiting `reconnect_time_wait` between: the whole connect is
bounded here, so a stopped NATS is told at once and the caller decides what follows.
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats
from nats.aio.client import Client, RawCredentials


async def connect_once(
    servers: str | list[str], creds: str, *, timeout: float, within: float, **options: Any
) -> Client:
    """Connect with `creds`, no reconnects, in at most `within` seconds (raises otherwise)."""
    return await asyncio.wait_for(
        nats.connect(
            servers,
            user_credentials=RawCredentials(creds),
            connect_timeout=timeout,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            error_cb=_report_nothing,
            **options,
        ),
        timeout=within,
    )


async def _report_nothing(_error: Exception) -> None:
    """nats-py logs each failed attempt with a traceback; the caller says it once."""

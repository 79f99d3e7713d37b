"""Push an updated account JWT to a running nats-server (full resolver).

A system-account user sends the JWT as a request to `$SYS.REQ.CLAIMS.UPDATE`;
the server applies it at once, so a revocation disconnects the user in well under
a second.
"""

from __future__ import annotations

import asyncio
import json

from nats.errors import Error as NatsError

from labkit.nsc.connect_once import connect_once
from labkit.nsc.errors import PushFailed

CLAIMS_UPDATE_SUBJECT = "$SYS.REQ.CLAIMS.UPDATE"


async def push_account_jwt(
    servers: str | list[str], system_creds: str, account_jwt: str, timeout: float = 3.0
) -> None:
    """Send `account_jwt` to the server; raises PushFailed unless it answers code 200."""
    try:
        # Bounded (labkit.nsc.connect_once): a push to a stopped server fails at once and
        # is retried later (labkit.nsc.delivery).
        nc = await connect_once(servers, system_creds, timeout=timeout, within=timeout * 2)
    except (TimeoutError, NatsError, OSError) as exc:
        raise PushFailed(f"cannot reach the NATS server at {servers} to push: {exc}") from exc
    try:
        reply = await nc.request(CLAIMS_UPDATE_SUBJECT, account_jwt.encode(), timeout=timeout)
    except (TimeoutError, NatsError) as exc:
        raise PushFailed(f"the NATS server did not answer the account update: {exc}") from exc
    finally:
        await nc.close()
    try:
        answer = json.loads(reply.data)
    except ValueError as exc:
        raise PushFailed(f"unexpected answer to the account update: {reply.data!r}") from exc
    data = answer.get("data") or {}
    if data.get("code") != 200:
        error = answer.get("error") or data
        raise PushFailed(f"the NATS server refused the account update: {error}")


def push_account_jwt_sync(
    servers: str | list[str], system_creds: str, account_jwt: str, timeout: float = 3.0
) -> None:
    """`push_account_jwt` for threads without an event loop (the Flask service)."""
    asyncio.run(push_account_jwt(servers, system_creds, account_jwt, timeout))

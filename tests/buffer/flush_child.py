"""Flush an outbox to JetStream in a process of its own, for the crash test.

    python flush_child.py OUTBOX SUBJECT NATS_URL CREDS_FILE INBOX_PREFIX

Prints `ready` once connected, so the parent can aim its SIGKILL at the flush, then
a summary line. Exits 0 when the outbox is empty, 1 when a publish failed.
"""

from __future__ import annotations

import asyncio
import sys

import nats

from labkit.buffer import Buffer


async def flush(outbox: str, subject: str, url: str, creds_file: str, inbox_prefix: str) -> int:
    nc = await nats.connect(
        url, user_credentials=creds_file, inbox_prefix=inbox_prefix, allow_reconnect=False
    )
    try:
        with Buffer(outbox, subject) as buffer:
            print("ready", flush=True)
            result = await buffer.flush(nc.jetstream())
        print(
            f"sent={result.sent} duplicates={result.duplicates} "
            f"remaining={result.remaining} error={result.error!r}",
            flush=True,
        )
        return 0 if result.ok and result.remaining == 0 else 1
    finally:
        await nc.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(flush(*sys.argv[1:6])))

"""Flush an outbox, then die mid-flush: the crash of notebook 07's second exercise.

    python -m labkit.exercises.killed_flush OUTBOX SUBJECT CREDS_FILE SERVERS ACKS

Connects with the creds in CREDS_FILE to SERVERS (comma-separated), flushes the
outbox at OUTBOX (subject SUBJECT) and kills itself with SIGKILL right after
JetStream acknowledged the ACKS-th message: after the ack, before the outbox deleted
it (no `finally`, no cleanup runs). Prints `acked <n>` after each ack. Exits 3 if the
outbox ran out first, 2 if it could not finish within CHILD_TIMEOUT seconds.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

from labkit.buffer import Buffer
from labkit.client import connect_as

CHILD_TIMEOUT = 20.0


async def flush_and_die(outbox: str, subject: str, creds_file: str, servers: str, acks: int) -> int:
    creds = Path(creds_file).read_text(encoding="utf-8")
    async with asyncio.timeout(CHILD_TIMEOUT):
        nc = await connect_as(creds, servers=servers.split(","), allow_reconnect=False)
        js = nc.jetstream()
        publish = js.publish
        acked = 0

        async def publish_then_die(*args: Any, **kwargs: Any) -> Any:
            nonlocal acked
            ack = await publish(*args, **kwargs)
            acked += 1
            print(f"acked {acked}", flush=True)
            if acked == acks:
                os.kill(os.getpid(), signal.SIGKILL)
            return ack

        js.publish = publish_then_die  # type: ignore[method-assign]
        await Buffer(outbox, subject).flush(js)
        await nc.close()
    return 3  # only if the outbox held fewer than ACKS messages


def main(argv: list[str]) -> int:
    outbox, subject, creds_file, servers, acks = argv
    try:
        return asyncio.run(flush_and_die(outbox, subject, creds_file, servers, int(acks)))
    except TimeoutError:
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

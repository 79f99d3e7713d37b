"""`python -m tests.load.fair_server CREDS_FILE URL READY_FILE`: the fair router, served.

A process of its own, as the stack runs the application server: the test's clients
and the server then do not share one event loop. Bounds: LABKIT_SERVER_* variables.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from labkit.server import Server
from labkit.settings import Settings
from tests.load.fairness import NAME, fair_router


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    creds, url, ready = Path(sys.argv[1]).read_text(), sys.argv[2], Path(sys.argv[3])

    def read_count() -> int:
        # Messages read so far on every connection of the server (its lanes count them).
        readers = server.readers.connections() if server.readers is not None else []
        return sum(nc.stats["in_msgs"] for nc in [server.nc, *readers] if nc is not None)

    server = Server(
        fair_router(read_count),
        creds=creds,
        servers=url,
        settings=Settings(),
        queue="fair",
        name=NAME,
    )
    asyncio.run(server.serve_until_signalled(ready_file=ready))


if __name__ == "__main__":
    main()

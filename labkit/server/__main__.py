"""`python -m labkit.server`: serve every lab with the application server's credentials."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from labkit.labs import lab_router
from labkit.labs.directory import NscDirectory, UserDirectory
from labkit.nsc.wrapper import Nsc
from labkit.server.cache import Cache, open_cache
from labkit.server.runner import Server
from labkit.settings import Settings
from labkit.stack.app_server import READY_FILE_ENV


def build_server(settings: Settings) -> Server:
    """The lab server as the stack runs it: cache from settings, users from the NSC store."""

    async def cache(nc: Client) -> tuple[type, Any]:
        return Cache, await open_cache(nc, settings.server)

    return Server(
        lab_router(),
        settings=settings,
        queue=settings.server.queue,
        max_in_flight=settings.server.max_in_flight,
        resources={UserDirectory: NscDirectory(Nsc.from_settings(settings))},
        resource_factories=[cache],
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    ready = os.environ.get(READY_FILE_ENV)
    server = build_server(Settings())
    asyncio.run(server.serve_until_signalled(ready_file=Path(ready) if ready else None))


if __name__ == "__main__":
    main()

"""`python -m labkit.server`: serve every lab with the application server's credentials."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from labkit.labs import lab_server
from labkit.settings import Settings
from labkit.stack.app_server import READY_FILE_ENV


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    ready = os.environ.get(READY_FILE_ENV)
    server = lab_server(Settings())
    asyncio.run(server.serve_until_signalled(ready_file=Path(ready) if ready else None))


if __name__ == "__main__":
    main()

"""The dashboard as the hub sees it: its entry in `c.JupyterHub.services`.

Kept apart from the application (app.py imports JupyterHub and tornado), so the hub's
config and labkit's CLI can name the service without JupyterHub installed.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SERVICE_NAME = "dashboard"


def hub_service(
    labkit_home: Path,
    url: str,
    cwd: Path | None = None,
    settings: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The dashboard's entry in `c.JupyterHub.services` (the hub starts and stops it).

    `url` is where it listens (http://127.0.0.1:<free port>). It needs no role: the
    visitor's identity, `admin` flag included, comes with the OAuth login; and no
    confirmation page, the hub's admin runs it. `settings` adds LABKIT_* addresses to
    its environment (docker/: the cluster's); never a secret, which it reads from files.
    """
    service: dict[str, Any] = {
        "name": SERVICE_NAME,
        "url": url,
        "command": [sys.executable, "-m", "labkit.classroom.dashboard"],
        "environment": {**(settings or {}), "LABKIT_HOME": str(labkit_home)},
        "oauth_no_confirm": True,
    }
    if cwd is not None:
        service["cwd"] = str(cwd)
    return service

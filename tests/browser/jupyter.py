"""A headless JupyterLab for the browser tests: loopback, a token, settings of its own.

It serves a temporary copy of notebooks/ (autosave must never touch the repository),
with a fresh LABKIT_HOME, so the stacks its kernels start are the test's own. Stopping
it signals the server by pid (SIGTERM: it shuts its kernels down; SIGKILL if it hangs),
then checks that no process it started (kernels, and the stacks they started) is left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

# Settings a learner would want too, minus the questions a fresh JupyterLab asks.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    # No "Select Kernel" dialog: open every notebook with its own kernel (python3).
    "@jupyterlab/notebook-extension/tracker": {
        "autoStartDefaultKernel": True,
        # Screenshots end at the last cell (the default leaves a screenful of blank).
        "scrollPastEnd": False,
        # All cells stay in the page (the default now; "full" would drop cells off-screen).
        "windowingMode": "contentVisibility",
    },
    "@jupyterlab/apputils-extension/sessionDialogs": {"skipKernelRestartDialog": True},
    # No "fetch Jupyter news?" toast over the screenshots, and no requests to the internet.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
STARTUP_TIMEOUT = 60.0
REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
SCREENSHOTS = REPO / "build" / "screenshots"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_time(pid: int) -> str | None:
    """The process's start time (/proc/<pid>/stat), None when it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # from field 3, the state, on
    return None if fields[0] in ("Z", "X") else fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every live process below `root`, as pid -> start time (to tell a reused pid apart)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: dict[int, str] = {}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        started = _start_time(pid)
        if started is not None:
            found[pid] = started
            pending.extend(children.get(pid, []))
    return found


@dataclass
class JupyterLab:
    """One JupyterLab server process; `start()` it, `stop()` it (both idempotent)."""

    workdir: Path
    notebooks: Path
    port: int = field(default_factory=_free_port)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    # User settings on top of LAB_SETTINGS (plugin -> values), e.g. commsOverSubshells.
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def root(self) -> Path:
        """The directory JupyterLab serves: a copy of the notebooks."""
        return self.workdir / "notebooks"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "jupyterlab.log"

    def url(self, path: str) -> str:
        """A page URL that logs the browser in (the token) and drops any restored layout."""
        return f"{self.base_url}/{path.lstrip('/')}?reset&token={self.token}"

    def api(self, method: str, path: str) -> Any:
        response = requests.request(
            method,
            f"{self.base_url}/api/{path}",
            headers={"Authorization": f"token {self.token}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def notebook(self, name: str) -> dict[str, Any]:
        """The notebook as saved on the server (nbformat JSON)."""
        content: dict[str, Any] = self.api("GET", f"contents/{name}?content=1")["content"]
        return content

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _environment(self) -> dict[str, str]:
        settings = self.workdir / "lab-settings"
        for plugin, values in {**LAB_SETTINGS, **self.settings}.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        jupyter = self.workdir / "jupyter"
        env = dict(os.environ)
        # A person's ~/.jupyter config, kernelspecs and workspaces stay out of it.
        env.update(
            JUPYTERLAB_SETTINGS_DIR=str(settings),
            JUPYTERLAB_WORKSPACES_DIR=str(jupyter / "workspaces"),
            JUPYTER_CONFIG_DIR=str(jupyter / "config"),
            JUPYTER_DATA_DIR=str(jupyter / "data"),
            JUPYTER_RUNTIME_DIR=str(jupyter / "runtime"),
            IPYTHONDIR=str(jupyter / "ipython"),
            # The kernels' stacks: a data directory of their own, on free ports.
            LABKIT_HOME=str(self.workdir / "labkit-home"),
        )
        for port in (
            "NATS_PORT",
            "NATS_MONITOR_PORT",
            "NATS_WS_PORT",
            "NSC_SERVICE_PORT",
            "AUTH_PORT",
            "S3_PORT",
        ):
            env.setdefault(f"LABKIT_{port}", "0")  # (the root conftest.py sets them too)
        return env

    def start(self) -> None:
        if self.process is not None:
            return
        shutil.copytree(
            self.notebooks, self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints")
        )
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command,
            env=self._environment(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                self.api("GET", "status")
                return
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"JupyterLab did not answer within {STARTUP_TIMEOUT:g} s:\n"
                        f"{self.log_tail()}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> list[str]:
        """Stop the server and what it started; returns the processes that had to be killed."""
        process, self.process = self.process, None
        if process is None:
            return []
        started = descendants(process.pid)  # kernels, and the stacks they started
        # On SIGTERM the server shuts every kernel down (all at once), and a kernel that
        # exits stops the stack it started.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._log is not None:
            self._log.close()
        leftovers: list[str] = []
        deadline = time.monotonic() + 10
        for pid, start_time in started.items():
            while _start_time(pid) == start_time and time.monotonic() < deadline:
                time.sleep(0.1)
            if _start_time(pid) != start_time:
                continue
            # Still the very process the server started: report it and end it.
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
            leftovers.append(f"{pid}: {command.decode(errors='replace')[:200]}")
        return leftovers

"""Real processes for the identity tests: a nats-server from a fixed config, services.

The tests stop and restart these on purpose (a NATS server down during a logout),
which the shared stack fixture must never do. Every process is stopped by its pid.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from labkit.settings import Settings
from labkit.stack import Stack
from labkit.stack.nats_server import nats_server_binary

# Generous: the machine is shared; these bound a wait for a behaviour, they time nothing.
READY_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll `condition` until it holds; fail naming `what` if it never does."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


class Process:
    """A child process whose output goes to a log file; stopped with SIGTERM by pid."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.log = log
        self.env = env
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, and return the exit code (SIGKILL only if it hangs)."""
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        code = self.popen.returncode
        self.popen = None
        return code

    def stop(self) -> None:
        if self.popen is not None:
            self.terminate()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def nats_config(settings: Settings) -> tuple[Path, str]:
    """Let the stack write a NATS config for `settings`' data dir; its path and URL."""
    stack = Stack(settings)
    stack.ensure("nats")
    record = stack.record("nats")
    stack.down("nats")
    return Path(record["config"]), str(record["url"])


def start_nats(config: Path, url: str, log: Path) -> Process:
    """nats-server from `config` as it is: the resolver keeps what it last had."""
    process = Process([str(nats_server_binary()), "-c", str(config)], log).start()
    port = int(url.rsplit(":", 1)[1])
    wait_until(lambda: _accepts(port), f"nats-server listening on {port}")
    return process


def service_env(settings: Settings, **variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LABKIT_")}
    env["LABKIT_HOME"] = str(settings.home)
    env.update({f"LABKIT_{key.upper()}": value for key, value in variables.items()})
    return env


def start_service(module: str, port: int, env: dict[str, str], log: Path) -> Process:
    """`python -m <module>` (waitress) on `port`, once /healthz answers."""
    argv = [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port)]
    process = Process(argv, log, env).start()

    def healthy() -> bool:
        assert process.popen is not None
        if process.popen.poll() is not None:
            raise AssertionError(f"{module} exited: {process.output()[-2000:]}")
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    wait_until(healthy, f"{module} healthy on {port}")
    return process


@contextmanager
def stopped_at_end(*processes: Process) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()

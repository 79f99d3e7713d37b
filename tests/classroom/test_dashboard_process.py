"""The dashboard process: started before the stack it waits for it (a managed service
that exits takes the whole hub down), and SIGTERM stops it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from labkit.stack.ports import free_port

WAITING = "cannot reach the stack yet (no stack in"


def test_without_a_stack_it_waits_and_sigterm_stops_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABKIT_", "JUPYTERHUB_"))}
    env |= {
        "LABKIT_HOME": str(tmp_path / "no-stack-yet"),
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{free_port('127.0.0.1')}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/dashboard/",
    }
    log_path = tmp_path / "dashboard.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "labkit.classroom.dashboard"],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while WAITING not in log_path.read_text() and process.poll() is None:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        assert process.poll() is None, f"it exited: {log_path.read_text()}"
        # Waiting wrote nothing into the data directory it was given.
        assert not (tmp_path / "no-stack-yet").exists()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

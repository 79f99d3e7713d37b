"""Run-wide test setup, for `pytest`, `pytest tests/` and `pytest notebooks/` alike.

Every run gets its own data directory (LABKIT_HOME, which notebook kernels
inherit) and free ports, so `make test` never touches a stack the user has running.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from labkit.settings import PORT_SETTINGS

RUN_DIR = Path(tempfile.mkdtemp(prefix="labkit-tests-"))
# Set before any kernel starts, so nbval's notebooks run in their own data directory.
os.environ["LABKIT_HOME"] = str(RUN_DIR / "notebooks")
for variable in PORT_SETTINGS:
    os.environ[f"LABKIT_{variable}"] = "0"


# Headless kernels have no browser to show notebook 09's page: do not wait long for one.
os.environ.setdefault("LABKIT_PAGE_WAIT", "2")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if type(item).__name__ == "IPyNbCell":
            item.add_marker(pytest.mark.notebook)
    # `soak` tests (long trials) are left out unless asked for (`pytest -m soak`, `make soak`).
    if "soak" in (config.getoption("markexpr") or ""):
        return
    soak = [item for item in items if item.get_closest_marker("soak")]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if not item.get_closest_marker("soak")]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _stop_what_the_run_left(RUN_DIR)
    shutil.rmtree(RUN_DIR, ignore_errors=True)


def _stop_what_the_run_left(root: Path) -> None:
    """Stop every process a stack of this run still records (pid *and* start time).

    A component started off a kernel's main thread is not tied to the kernel, and a
    kernel that is killed runs no atexit: its pidfile is the last trace of it.
    """
    from labkit.stack import process

    for pidfile in root.rglob("run/*.pid"):
        pid = process.read_pidfile(pidfile)
        if pid is not None and process.is_running(pid):
            process.stop(pid, timeout=3.0)

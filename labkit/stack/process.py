"""Start, recognise and stop the stack's processes, and only ours.

A process is identified by its pid *and* its start time (from /proc), so a pid
reused by an unrelated program is never signalled. Children start in their own
session (an interrupt in a notebook does not reach them); when they are tied to
their parent, Linux's parent-death signal stops them if the parent (a notebook
kernel, a test run) dies without cleaning up.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from labkit.files import write_atomic

_PR_SET_PDEATHSIG = 1
_children: dict[int, subprocess.Popen[bytes]] = {}
_tied: set[int] = set()


@dataclass(frozen=True)
class ProcessId:
    """A pid plus the kernel's start time of that process (clock ticks since boot)."""

    pid: int
    start_time: int

    def as_dict(self) -> dict[str, int]:
        return {"pid": self.pid, "start_time": self.start_time}


def start_time_of(pid: int) -> int | None:
    """The start time of `pid` from /proc, or None when there is no such live process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # Field 2 (comm) may hold spaces and parentheses: split after its closing ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # a zombie is dead, it just has not been reaped
        return None
    return int(fields[19])


def is_running(process: ProcessId) -> bool:
    """True when this exact process (not a reuse of its pid) is alive."""
    return start_time_of(process.pid) == process.start_time


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    tie_to_parent: bool = True,
) -> ProcessId:
    """Start `argv` in a new session with output appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent if tie_to_parent and _can_tie() else None,
        )
    _children[child.pid] = child
    if tie_to_parent:
        _tied.add(child.pid)
    started = start_time_of(child.pid)
    if started is None:  # exited at once: keep a record so callers can read its log
        child.wait()
        started = -1
    return ProcessId(child.pid, started)


def exit_code(process: ProcessId) -> int | None:
    """The exit code of a child that has exited, None while it runs or when not ours."""
    child = _children.get(process.pid)
    return child.poll() if child is not None else None


def stop(process: ProcessId, timeout: float = 5.0) -> bool:
    """SIGTERM the process's group, SIGKILL after `timeout`; reap it. False if not running."""
    if not is_running(process):
        _reap(process.pid)
        return False
    _signal_group(process.pid, signal.SIGTERM)
    if not _wait_gone(process, timeout):
        _signal_group(process.pid, signal.SIGKILL)
        _wait_gone(process, timeout)
    _reap(process.pid)
    return True


def write_pidfile(path: Path, process: ProcessId, argv: Sequence[str]) -> None:
    write_atomic(path, json.dumps({**process.as_dict(), "argv": list(argv)}))


def read_pidfile(path: Path) -> ProcessId | None:
    try:
        data = json.loads(path.read_text())
        return ProcessId(int(data["pid"]), int(data["start_time"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def stop_tied_children() -> None:
    """Stop every child tied to this process (registered with atexit)."""
    for pid in list(_tied):
        child = _children.get(pid)
        started = start_time_of(pid)
        if child is not None and started is not None:
            stop(ProcessId(pid, started), timeout=3.0)
        _tied.discard(pid)


def _can_tie() -> bool:
    # The parent-death signal fires when the *thread* that forked exits, so only the
    # main thread may start tied children; elsewhere rely on atexit and pidfiles.
    return (
        sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread()
    )


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # The parent may have died between fork and prctl; then we must not run on.
    if os.getppid() == 1:
        os._exit(1)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # our children lead their own session and group
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(process: ProcessId, timeout: float) -> bool:
    child = _children.get(process.pid)
    if child is not None:
        try:
            child.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    return _poll(lambda: not is_running(process), timeout)


def _poll(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def _reap(pid: int) -> None:
    child = _children.pop(pid, None)
    _tied.discard(pid)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(1.0)


atexit.register(stop_tied_children)

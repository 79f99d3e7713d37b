"""The stack starts, reports, reuses, sweeps and stops real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from labkit.settings import Settings
from labkit.stack import ComponentFailed, Stack, StackError, component_record
from labkit.stack import component as component_module
from labkit.stack.component import Component, Launch, Record, register
from labkit.stack.ports import PortAllocator
from labkit.stack.process import (
    ProcessId,
    is_running,
    read_pidfile,
    start_time_of,
    stop,
    write_pidfile,
)
from labkit.stack.state import load_records, save_records
from tests.conftest import make_settings


def _pids(statuses: dict[str, object]) -> dict[str, int]:
    return {name: s.pid for name, s in statuses.items()}  # type: ignore[attr-defined]


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat[stat.rindex(")") + 2] in "ZX":
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def stack(settings: Settings) -> Iterator[Stack]:
    stack = Stack(settings)
    yield stack
    stack.down()


def test_starts_reports_and_stops_leaving_no_process(stack: Stack) -> None:
    statuses = stack.ensure("nats", "nsc")
    assert {name: s.state for name, s in statuses.items()} == {"nats": "running", "nsc": "running"}
    nats = stack.record("nats")
    assert nats["url"].startswith("nats://127.0.0.1:")
    assert nats["monitor_url"].startswith("http://127.0.0.1:")
    assert stack.record("nsc")["token_file"] == str(stack.settings.paths.nsc_token_file)
    pids = _pids(statuses)

    assert stack.down() == ["nsc", "nats"]
    assert all(_gone(pid) for pid in pids.values())
    assert {s.state for s in stack.status().values()} == {"stopped"}
    assert list(stack.settings.paths.run_dir.glob("*.pid")) == []


def test_ensure_is_idempotent_and_reuses_healthy_components(stack: Stack) -> None:
    first = _pids(stack.ensure("nats", "nsc"))
    second = _pids(Stack(stack.settings).ensure("nats", "nsc"))
    assert first == second


def test_ensuring_nsc_brings_nats_it_requires(stack: Stack) -> None:
    assert set(stack.ensure("nsc")) == {"nats", "nsc"}


def test_a_dead_component_is_restarted(stack: Stack) -> None:
    before = stack.ensure("nats")["nats"].pid
    assert before is not None
    os.kill(before, signal.SIGKILL)
    assert _gone(before)
    after = stack.ensure("nats")["nats"]
    assert after.running and after.pid != before


def test_a_running_server_that_misses_a_health_check_is_not_restarted(stack: Stack) -> None:
    before = stack.ensure("nats")["nats"].pid
    assert before is not None
    # Frozen longer than one check's timeout (0.5 s), shorter than the checks again.
    os.kill(before, signal.SIGSTOP)
    thaw = threading.Timer(0.8, os.kill, (before, signal.SIGCONT))
    thaw.start()
    try:
        after = stack.ensure("nats")["nats"]
    finally:
        thaw.join()
        os.kill(before, signal.SIGCONT)
    assert after.running and after.pid == before


def test_a_taken_port_is_replaced_by_a_free_one_and_recorded(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        settings = make_settings(tmp_path / "home", nats={"port": taken, "monitor_port": 0})
        with Stack(settings) as stack:
            stack.ensure("nats")
            url = stack.record("nats")["url"]
            assert url.startswith("nats://127.0.0.1:")
            assert not url.endswith(f":{taken}")
            assert component_record("nats", settings)["url"] == url
            assert stack.status()["nats"].running


def test_state_file_lists_each_component(stack: Stack) -> None:
    stack.ensure("nats", "nsc")
    state = json.loads(stack.settings.paths.state_file.read_text())
    assert state["home"] == str(stack.settings.home)
    for name in ("nats", "nsc"):
        record = state["components"][name]
        assert record["pid"] > 0 and record["url"]
        pidfile = read_pidfile(stack.settings.paths.pid_file(name))
        assert pidfile == ProcessId(record["pid"], record["start_time"])


def test_stale_processes_are_swept_at_the_next_start(stack: Stack) -> None:
    old = stack.ensure("nats")["nats"].pid
    assert old is not None
    # The state file is lost (a crash mid-write, a hand edit): only the pidfile remains.
    stack.settings.paths.state_file.unlink()
    new = Stack(stack.settings).ensure("nats")["nats"].pid
    assert new != old
    assert _gone(old)


@pytest.fixture
def foreign_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process labkit did not start (in its own session, like the stack's children)."""
    foreign = subprocess.Popen(["sleep", "600"], start_new_session=True)
    # Start times are in clock ticks (10 ms): a component started in the same tick would
    # share it, and the test's "reused pid" would not look reused. Let the tick pass.
    started = start_time_of(foreign.pid)
    assert started is not None
    while _ticks_since_boot() <= started:
        time.sleep(0.005)
    yield foreign
    foreign.kill()
    foreign.wait()


def _ticks_since_boot() -> float:
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime * os.sysconf("SC_CLK_TCK")


def _record_as(stack: Stack, name: str, pid: int) -> ProcessId:
    """Point `name`'s state record and pidfile at `pid`, keeping the recorded start time.

    What a reused pid looks like: the number matches a live process, the start time
    does not. Returns the component's real process, for the test to stop.
    """
    paths = stack.settings.paths
    records = load_records(paths.state_file)
    real = ProcessId(records[name]["pid"], records[name]["start_time"])
    records[name]["pid"] = pid
    save_records(paths.state_file, paths.home, records)
    write_pidfile(paths.pid_file(name), ProcessId(pid, real.start_time), ["nats-server"])
    return real


def test_down_never_signals_a_reused_pid(
    stack: Stack, foreign_process: subprocess.Popen[bytes]
) -> None:
    stack.ensure("nats")
    real = _record_as(stack, "nats", foreign_process.pid)
    assert start_time_of(foreign_process.pid) != real.start_time
    try:
        stack.down()
        assert foreign_process.poll() is None  # down waits for what it signals: not signalled
        assert is_running(real)  # the record no longer vouched for it either
    finally:
        stop(real)


def test_the_sweep_never_signals_a_reused_pid(
    stack: Stack, foreign_process: subprocess.Popen[bytes]
) -> None:
    stack.ensure("nats")
    real = _record_as(stack, "nats", foreign_process.pid)
    stop(real)
    # The state file is lost: the next start sweeps the pidfile, which names the foreign pid.
    stack.settings.paths.state_file.unlink()
    assert Stack(stack.settings).ensure("nats")["nats"].state == "running"
    assert foreign_process.poll() is None  # the sweep waits for what it signals: not signalled
    assert start_time_of(foreign_process.pid) is not None


def test_context_manager_stops_what_it_started(settings: Settings) -> None:
    with Stack(settings) as stack:
        pid = stack.ensure("nats")["nats"].pid
    assert pid is not None and _gone(pid)


def test_unknown_component_is_a_clear_error(stack: Stack) -> None:
    with pytest.raises(StackError, match="unknown component 'nope'; known components: nats, nsc"):
        stack.ensure("nope")


def test_component_record_explains_how_to_start(settings: Settings) -> None:
    with pytest.raises(StackError, match="python -m labkit up"):
        component_record("nats", settings)


class _Crashing(Component):
    """A component that exits at once, as a broken config would."""

    name: ClassVar[str] = "crashing"

    def prepare(self, ports: PortAllocator) -> Launch:
        code = "import sys; print('bad config: no such option'); sys.exit(3)"
        return Launch(argv=[sys.executable, "-c", code], record={"url": "none"})

    def is_healthy(self, record: Record) -> bool:
        return False


@pytest.fixture
def crashing_component() -> Iterator[None]:
    register(_Crashing)
    yield
    component_module._registry.pop("crashing")


@pytest.mark.usefixtures("crashing_component")
def test_a_component_that_exits_reports_its_log(stack: Stack) -> None:
    with pytest.raises(ComponentFailed, match="(?s)crashing exited while starting.*bad config"):
        stack.ensure("crashing")
    assert "crashing" not in json.loads(stack.settings.paths.state_file.read_text())["components"]


def test_a_tied_stack_dies_with_its_parent(settings: Settings) -> None:
    # What a killed notebook kernel leaves behind: nothing.
    script = (
        "import sys, time\n"
        "from labkit.stack import Stack\n"
        "from tests.conftest import make_settings\n"
        f"stack = Stack(make_settings({str(settings.home)!r}))\n"
        "print(stack.ensure('nats', 'nsc')['nats'].pid, stack.record('nsc')['pid'], flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(not _gone(pid, 0) for pid in pids)
        parent.kill()
        parent.wait()
        assert all(_gone(pid) for pid in pids)
    finally:
        parent.kill()
        parent.wait()
        Stack(settings).down()


def test_cli_up_status_creds_down(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LABKIT_HOME": str(tmp_path / "home"),
        "LABKIT_NATS_PORT": "0",
        "LABKIT_NATS_MONITOR_PORT": "0",
        "LABKIT_NSC_SERVICE_PORT": "0",
        "LABKIT_AUTH_PORT": "0",
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "labkit", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    try:
        up = cli("up", "--json")
        assert up.returncode == 0, up.stderr
        state = json.loads(up.stdout)["components"]
        assert state["nats"]["url"].startswith("nats://")
        assert state["nats"]["monitor_url"].startswith("http://")
        assert state["nsc"]["url"].startswith("http://")
        assert Path(state["nsc"]["token_file"]).is_file()
        # The auth service runs as a stack process too, and answers over HTTP.
        registered = requests.post(
            state["auth"]["url"] + "/register",
            json={"email": "cli@example.com", "password": "long enough"},
            timeout=10,
        )
        assert registered.status_code == 201
        # The CLI has exited; the stack runs on until `down`.
        assert all(is_running(ProcessId(s["pid"], _start(s["pid"]))) for s in state.values())

        again = cli("up", "--json")
        assert json.loads(again.stdout)["components"] == state

        status = cli("status", "--json")
        assert status.returncode == 0
        assert json.loads(status.stdout)["components"]["nats"]["state"] == "running"

        creds = cli("creds", "cli-alice")
        assert creds.returncode == 0
        assert "BEGIN NATS USER JWT" in creds.stdout and "BEGIN USER NKEY SEED" in creds.stdout

        bad = cli("creds", "not.valid")
        assert bad.returncode == 1
        assert "contains '.'" in bad.stderr

        down = cli("down")
        assert down.returncode == 0
        stopped = down.stdout.strip().removeprefix("stopped: ").split(", ")
        assert set(stopped) == set(state)
        assert stopped[-2:] == ["nsc", "nats"]  # what others need stops last
        assert all(_gone(s["pid"]) for s in state.values())
        assert cli("status").returncode == 3
    finally:
        cli("down")


def _start(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def test_restarting_nats_restarts_the_app_server_that_holds_its_old_url(stack: Stack) -> None:
    before = stack.ensure("nats", "server")
    nats_pid, server_pid = before["nats"].pid, before["server"].pid
    assert nats_pid is not None and server_pid is not None
    os.kill(nats_pid, signal.SIGKILL)
    assert _gone(nats_pid)
    after = stack.ensure("nats")
    assert after["nats"].running
    server = stack.status()["server"]
    assert server.running and server.pid != server_pid
    assert _gone(server_pid)


def test_restart_starts_again_what_the_stop_took_down(stack: Stack) -> None:
    before = _pids(stack.ensure("nats", "nsc"))
    after = _pids(stack.restart("nsc"))
    assert after["nats"] == before["nats"], "restarting nsc leaves nats alone"
    assert after["nsc"] != before["nsc"]
    assert _gone(before["nsc"])
    # Stopping nats stops nsc (it needs nats): both come back.
    again = stack.restart("nats")
    assert {name: s.state for name, s in again.items()} == {"nats": "running", "nsc": "running"}
    assert again["nats"].pid != after["nats"] and again["nsc"].pid != after["nsc"]
    assert stack.status()["nsc"].running


def test_restart_needs_a_name(stack: Stack) -> None:
    with pytest.raises(StackError, match="name the components"):
        stack.restart()

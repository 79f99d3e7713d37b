"""The classroom benchmark's harness, run for real on a tiny class so it cannot rot.

Six learners (three pairs of classmates) register through the auth service, connect
with their own creds, and each does every lab action at least once against a real
stack (its own data dir and free ports). Only behaviour is asserted: every action
answered, nothing failed, every ping line delivered; never a latency.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "bench_classroom.py"
LAB_ACTIONS = {"echo", "cached", "ping", "stream", "file"}


# A real stack and six learners, twice: in `make soak` (CI runs it after make test).
@pytest.mark.soak
def test_five_learners_do_every_lab_action_on_a_real_stack(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    argv = [sys.executable, str(BENCH), "--home", str(tmp_path / "home"), "--sizes", "6"]
    # Ten times a 1 s human interval: an action every 0.1 s, so 4 s makes every
    # learner go through the whole list (8 actions) at least once, whatever the load.
    argv += ["--paces", "10", "--human-interval", "1", "--duration", "4", "--drivers", "2"]
    result = subprocess.run(
        [*argv, "--json", str(figures)], capture_output=True, text=True, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (step,) = json.loads(figures.read_text())["steps"]
    assert step["size"] == 6 and step["drivers"] == 2
    assert step["failures"] == {}, step["failures"]
    assert set(step["latencies"]) >= LAB_ACTIONS, step["latencies"].keys()
    counts = step["counts"]
    assert counts["ping lines received"] == counts["ping lines sent"] > 0
    # Every exercise report was stored by the progress route (a refusal is a failure).
    assert counts.get("progress: stored", 0) > 0
    assert set(step["cpu"]) == {"nats", "server", "auth", "nsc", "objects"}
    assert all(rss > 0 for rss in step["rss_mb"].values())
    assert "6 registered and logged in" in result.stdout
    cache = tmp_path / "home" / "bench-accounts.json"
    assert len(json.loads(cache.read_text())) == 6
    assert cache.stat().st_mode & 0o777 == 0o600

    # The next run reuses the cached accounts (and their creds) and registers nobody.
    again = subprocess.run(
        [*argv, "--json", str(figures)], capture_output=True, text=True, timeout=600, check=False
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert "registered" not in again.stdout
    (step,) = json.loads(figures.read_text())["steps"]
    assert step["failures"] == {}, step["failures"]
    assert len(step["latencies"]["echo"]) >= 6

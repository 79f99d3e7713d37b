"""The notebooks in classroom mode: two learners' kernels at once on one shared stack.

Each learner runs in the environment a class's spawner gives (LABKIT_CLASSROOM=1, the
shared endpoints, a learner file, a private LABKIT_HOME). The notebooks must take the
class's login (no registration at the shared auth service), start nothing of the
shared stack, and run what a learner may not do there on a private sandbox that stops
with the kernel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.stack import Stack, process
from labkit.stack.state import load_records
from tests.classroom_notebooks.class_stack import (
    NOTEBOOKS_DIR,
    ClassLearner,
    finish,
    register_learner,
    start_notebook,
    users_in_auth_db,
)


def _pids(stack: Stack) -> dict[str, int]:
    records = load_records(stack.settings.paths.state_file)
    return {name: int(record["pid"]) for name, record in records.items()}


def _outputs(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    texts = []
    for cell in cells:
        for output in cell.get("outputs", []):
            texts.append("".join(output.get("text", "")))
            texts.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def _left_running(learner: ClassLearner) -> list[Path]:
    """Pidfiles under the learner's home whose process still runs."""
    return [
        pidfile
        for pidfile in learner.home.rglob("run/*.pid")
        if (pid := process.read_pidfile(pidfile)) is not None and process.is_running(pid)
    ]


def run_pair(
    notebook: str, class_stack: Stack, tmp_path: Path
) -> tuple[ClassLearner, ClassLearner, Path]:
    """`notebook` executed by alice and bob at once; both must pass, the class unchanged."""
    alice = register_learner(class_stack, "alice", tmp_path / "learners")
    bob = register_learner(class_stack, "bob", tmp_path / "learners")
    pids, accounts = _pids(class_stack), users_in_auth_db(class_stack)
    out = tmp_path / "out"
    out.mkdir()
    runs = {learner.name: start_notebook(notebook, learner, out) for learner in (alice, bob)}
    results = {name: finish(run) for name, run in runs.items()}
    for name, (code, output) in results.items():
        assert code == 0, f"{notebook} failed for {name} in classroom mode:\n{output[-6000:]}"
    assert _pids(class_stack) == pids, "a learner's notebook started or stopped a shared process"
    assert users_in_auth_db(class_stack) == accounts, (
        "a learner's notebook registered an account at the shared auth service"
    )
    for learner in (alice, bob):
        assert not (learner.home / "state.json").exists(), (
            f"{learner.name}'s kernel started a stack of its own outside the sandbox"
        )
        assert _left_running(learner) == [], f"{learner.name}'s sandbox outlived the kernel"
    return alice, bob, out


@pytest.mark.slow
def test_notebook_03_in_classroom_mode_as_two_learners(class_stack: Stack, tmp_path: Path) -> None:
    alice, bob, out = run_pair("03", class_stack, tmp_path)
    for learner in (alice, bob):
        shown = _outputs(out / f"{learner.name}-03_identified_echo.ipynb")
        assert f"on the bus you are {learner.user_id}" in shown, (
            f"{learner.name}'s notebook did not use the class login from the learner file"
        )
        assert "In a class: your login, the echoes, your tap and the observer" in shown
        # The shout server ran on the learner's own sandbox, which the kernel started.
        assert (learner.home / "sandbox" / "state.json").exists()


@pytest.mark.slow
def test_notebook_05_two_real_learners_chat_and_cannot_speak_as_each_other(
    class_stack: Stack, tmp_path: Path
) -> None:
    alice, bob = run_pair("05", class_stack, tmp_path)[:2]
    out = tmp_path / "out"
    for me, mate in ((alice, bob), (bob, alice)):
        shown = _outputs(out / f"{me.name}-05_ping_pong.ipynb")
        # Each found the other on the roster and played bob, the other being alice.
        assert f"alice  is {mate.user_id} on the bus" in shown
        assert f"bob    is {me.user_id} on the bus" in shown
        assert "bob wrote origin='alice'; alice received origin='bob'" in shown
        assert "ok: alice and bob chatted; bob could not speak as alice" in shown


EVERY_NOTEBOOK = sorted(path.name[:2] for path in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.soak
@pytest.mark.parametrize("notebook", EVERY_NOTEBOOK)
def test_every_notebook_in_classroom_mode_as_two_learners(
    notebook: str, class_stack: Stack, tmp_path: Path
) -> None:
    alice, bob, out = run_pair(notebook, class_stack, tmp_path)
    for learner in (alice, bob):
        executed = next(out.glob(f"{learner.name}-{notebook}_*.ipynb"))
        assert "In a class: " in _outputs(executed), f"{notebook} did not say where it runs"

"""The notebooks in classroom mode: two learners' kernels at once on one shared stack.

Each learner runs in the environment a class's spawner gives (LABKIT_CLASSROOM=1, the
shared endpoints, a learner file, a private LABKIT_HOME). The notebooks must take the
class's login (no registration at the shared auth service), start nothing of the
shared stack, and run what a learner may not do there on a private sandbox that stops
with the kernel.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from labkit.auth.client import AuthClient
from labkit.classroom.classmate import ClassmateSide
from labkit.client import request
from labkit.labs.ping_pong import Conversation
from labkit.labs.roster import find_classmate
from labkit.protocol import PingRequest
from labkit.stack import Stack, process
from labkit.stack.state import load_records
from labkit.widgets.chat import ChatPane
from tests.classroom_notebooks.class_stack import (
    NOTEBOOKS_DIR,
    PASSWORD,
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


class _Classmate:
    """Alice, in this test process: on the roster, confirming what her inbox gets (as her
    notebook's ClassmateSide does), and forging a line as bob once."""

    def __init__(self, learner: ClassLearner, bob_id: str) -> None:
        self.learner, self.bob_id = learner, bob_id
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the test
            self.failure = exc

    async def _main(self) -> None:
        login = AuthClient(self.learner.env["LABKIT_AUTH_URL"]).login(self.learner.email, PASSWORD)
        nc = await login.connect(name="alice, the test's classmate")
        try:
            # Her inbox is open before she is on the roster, as in her notebook.
            chat = await Conversation(nc, login.user_id).open()
            side = ClassmateSide(ChatPane(chat, self.bob_id, "alice"), self.bob_id, "bob")
            await find_classmate(nc, login.user_id, "alice", prefer=self.bob_id, timeout=120)
            forged = PingRequest(
                destination=self.bob_id, origin=self.bob_id, message="it's alice, honest"
            )
            await request(nc, f"{login.user_id}.ping", forged, PingRequest)
            while not self.stop.is_set():
                await find_classmate(nc, login.user_id, "alice", prefer=self.bob_id)
                await asyncio.sleep(0.5)
            await side.close()
        finally:
            await nc.close()


@pytest.mark.slow
def test_notebook_05_catch_up_in_a_class_finds_the_classmate_again(
    class_stack: Stack, tmp_path: Path
) -> None:
    """Bob's kernel restarts: top cells, the catch-up cell, and the forgery section run
    against a real classmate (alice, here in the test process) on the shared stack."""
    from tests.notebook_kernels import notebook_client, read_notebook, run_cell
    from tests.test_catch_up import _section_from, _top_cells

    alice = register_learner(class_stack, "alice", tmp_path / "learners")
    bob = register_learner(class_stack, "bob", tmp_path / "learners")
    classmate = _Classmate(alice, bob.user_id)
    classmate.thread.start()
    notebook = read_notebook(next(NOTEBOOKS_DIR.glob("05_*.ipynb")))
    top = _top_cells(notebook)
    notebook.cells[top[0]].source += f"\nclassmate = {alice.user_id!r}"
    start = next(i for i, cell in enumerate(notebook.cells) if "import lab05" in cell.source)
    client = notebook_client(notebook)
    try:
        with client.setup_kernel(env=bob.env):
            for index in top + _section_from(notebook, start):
                run_cell(client, notebook.cells[index], index, "after a restart, in a class")
    finally:
        classmate.stop.set()
        classmate.thread.join(timeout=60)
    assert classmate.failure is None, f"the classmate failed: {classmate.failure!r}"
    shown = "\n".join(
        "".join(output.get("text", ""))
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    assert "bob wrote origin='alice'; alice received origin='bob'" in shown

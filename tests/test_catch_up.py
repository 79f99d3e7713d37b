"""A learner restarts the kernel and continues from a section: its catch-up cell brings it back.

For a section that starts with a catch-up cell (`from labkit.catch_up import ...`), a
FRESH kernel runs the notebook's two top cells (parameters, imports), that catch-up
cell, and the rest of the section, and no cell may show an error: every catch-up cell of
every notebook. That the cells change nothing in the normal flow is what
tests/test_rerun.py, nbval and papermill check, since the cells are part of the
notebooks.

A *replay* catch-up (`replay(...)`, labkit.replay) runs earlier sections again; the
one per notebook that replays the most runs here, the others (notebook 08's story
again and again: about 15 s each) in `make soak`. That every section a replay names
exists above it is checked for all of them, without a kernel.

The notebooks run with nbclient in this process, on one stack started here
(tests/notebook_kernels.py, as tests/test_rerun.py) which every kernel's catch-up reuses.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from tests.notebook_kernels import NOTEBOOKS, notebook_client, read_notebook, run_cell

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("notebook_stack")]

CATCH_UP = "from labkit.catch_up import"
REPLAY = "replay("


def _replayed(source: str) -> list[str]:
    """The section titles a replay cell names (its string arguments after the notebook)."""
    call = next(
        node
        for node in ast.walk(ast.parse(source.replace("await ", "")))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "replay"
    )
    return [arg.value for arg in call.args[2:] if isinstance(arg, ast.Constant)]


def _catch_up_cells(notebook: Any) -> list[int]:
    return [
        index
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and CATCH_UP in cell.source
    ]


def _top_cells(notebook: Any) -> list[int]:
    """The parameters cell and the imports cell right after it."""
    tagged = next(
        index
        for index, cell in enumerate(notebook.cells)
        if "parameters" in cell.metadata.get("tags", [])
    )
    imports = next(
        index
        for index, cell in enumerate(notebook.cells)
        if index > tagged and cell.cell_type == "code"
    )
    return [tagged, imports]


def _section_from(notebook: Any, start: int) -> list[int]:
    """Code cells from `start` up to the next section heading (a `## ` line)."""
    cells = []
    for index in range(start, len(notebook.cells)):
        cell = notebook.cells[index]
        if cell.cell_type == "markdown" and any(
            line.startswith("## ") for line in cell.source.splitlines()
        ):
            break
        if cell.cell_type == "code":
            cells.append(index)
    return cells


def _cases() -> list[Any]:
    cases = []
    for path in NOTEBOOKS:
        notebook = read_notebook(path)
        starts = _catch_up_cells(notebook)
        replays = {
            start: len(_replayed(notebook.cells[start].source))
            for start in starts
            if REPLAY in notebook.cells[start].source
        }
        widest = max(replays, key=lambda start: replays[start], default=None)
        for start in starts:
            marks = [pytest.mark.soak] if start in replays and start != widest else []
            cases.append(pytest.param(path, start, id=f"{path.stem}-cell{start}", marks=marks))
    return cases


def test_every_notebook_with_state_has_a_catch_up_cell() -> None:
    """Every notebook but 00 (a status panel that needs nothing) has one."""
    having = {path.stem[:2] for path in NOTEBOOKS if _catch_up_cells(read_notebook(path))}
    assert having == {"01", "02", "03", "04", "05", "06", "07", "08", "09"}, having


@pytest.mark.parametrize(("path", "start"), _cases())
def test_section_runs_after_a_restart(path: Path, start: int) -> None:
    notebook = read_notebook(path)
    client = notebook_client(notebook)
    with client.setup_kernel():
        for index in _top_cells(notebook) + _section_from(notebook, start):
            run_cell(client, notebook.cells[index], index, "in a fresh kernel")
    catch_up = notebook.cells[start]
    if REPLAY in catch_up.source:  # in a fresh kernel it must have run them, not found names
        shown = "".join(output.get("text", "") for output in catch_up.outputs)
        assert "ran again:" in shown, f"the replay of cell {start} ran nothing: {shown[-500:]}"


def test_every_replayed_section_exists_above_its_replay() -> None:
    """Each section a replay cell names is a heading above it, the soak-only ones too."""
    checked = 0
    for path in NOTEBOOKS:
        notebook = read_notebook(path)
        headings = [
            (index, line[3:].strip())
            for index, cell in enumerate(notebook.cells)
            if cell.cell_type == "markdown"
            for line in cell.source.splitlines()
            if line.startswith("## ")
        ]
        for start in _catch_up_cells(notebook):
            source = notebook.cells[start].source
            if REPLAY not in source:
                continue
            assert f'"{path.stem}"' in source, f"{path.name} cell {start} replays another notebook"
            for title in _replayed(source):
                above = [index for index, heading in headings if heading.startswith(title)]
                assert above and above[0] < start, f"{path.name} cell {start}: no '{title}' above"
                checked += 1
    assert checked >= 20, f"expected the replays of 03, 04, 06-09, found {checked} sections"


def test_accounts_log_the_same_learner_in_after_a_restart(tmp_path: Path) -> None:
    """The real auth service: a second `Accounts` (a new kernel) logs the same user in."""
    from labkit.course_state import Accounts, ensure_stack

    ensure_stack("auth")
    first = Accounts("test").login("carol", "correct horse battery staple")
    again = Accounts("test").login("carol", "correct horse battery staple")
    assert again.user_id == first.user_id and again.email == first.email
    assert Accounts("test").logged_in(again)
    other = Accounts("other").login("carol", "correct horse battery staple")
    assert other.user_id != first.user_id, "each notebook has learners of its own"

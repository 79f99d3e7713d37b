"""A learner restarts the kernel and continues from a section: its catch-up cell brings it back.

For a section that starts with a catch-up cell (`from labkit.catch_up import ...`), a
FRESH kernel runs the notebook's two top cells (parameters, imports), that catch-up
cell, and the rest of the section, and no cell may show an error: every catch-up cell of
every notebook (about 30 s in all). That the cells change nothing in the normal flow is
what tests/test_rerun.py, nbval and papermill check, since the cells are part of the
notebooks.

The notebooks run with nbclient in this process, on one stack started here
(tests/notebook_kernels.py, as tests/test_rerun.py) which every kernel's catch-up reuses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.notebook_kernels import (
    NOTEBOOKS,
    notebook_client,
    notebook_stack,  # noqa: F401  (a fixture: the module's stack)
    read_notebook,
    run_cell,
)

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("notebook_stack")]

CATCH_UP = "from labkit.catch_up import"


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
        starts = _catch_up_cells(read_notebook(path))
        cases += [pytest.param(path, start, id=f"{path.stem}-cell{start}") for start in starts]
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

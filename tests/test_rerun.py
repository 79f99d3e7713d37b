"""A learner re-runs cells: every notebook must take it without a traceback.

Two ways a person repeats work, each on every notebook of the course:

- each code cell run twice in a row (Shift+Enter, then Shift+Enter again on the same
  cell: starting something already started reuses it, closing something closed is a
  no-op, a self-check checks what its own cell did);
- Run All twice in one kernel (the second run finds the first one's objects, servers
  and connections still there).

The notebooks run with nbclient in this process, on one stack started here
(tests/notebook_kernels.py): every notebook's `Stack().ensure(...)` reuses it, so no
kernel waits for a stack of its own.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from tests.notebook_kernels import NOTEBOOKS, notebook_client, read_notebook, run_cell

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("notebook_stack")]


# Long (every notebook, each cell twice): in `make soak`, which CI runs after `make test`.
@pytest.mark.soak
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_every_cell_run_twice_in_a_row(path: Path) -> None:
    notebook = read_notebook(path)
    client = notebook_client(notebook)
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            run_cell(client, cell, index, "the first time")
            run_cell(client, cell, index, "run again at once")


# 08 (two 3-node clusters, twice) is the long one: in `make soak`, which CI runs too.
@pytest.mark.parametrize(
    "path",
    [
        pytest.param(path, marks=pytest.mark.soak) if path.stem.startswith("08_") else path
        for path in NOTEBOOKS
    ],
    ids=[path.stem for path in NOTEBOOKS],
)
def test_run_all_twice_in_one_kernel(path: Path) -> None:
    notebook = read_notebook(path)
    client = notebook_client(notebook)
    with client.setup_kernel():
        for round_ in ("first Run All", "second Run All"):
            cells = copy.deepcopy(notebook.cells)
            for index, cell in enumerate(cells):
                if cell.cell_type == "code":
                    run_cell(client, cell, index, f"in the {round_}")

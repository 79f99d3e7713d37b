"""A learner re-runs cells: every notebook must take it without a traceback.

Two ways a person repeats work, each on every notebook of the course:

- each code cell run twice in a row (Shift+Enter, then Shift+Enter again on the same
  cell: starting something already started reuses it, closing something closed is a
  no-op, a self-check checks what its own cell did);
- Run All twice in one kernel (the second run finds the first one's objects, servers
  and connections still there).

The notebooks run with nbclient in this process, on one stack started here: every
notebook's `Stack().ensure(...)` reuses it, so no kernel waits for a stack of its own.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 180  # seconds one cell may take (the caching lab waits out its TTL)

pytestmark = pytest.mark.slow
HOME = "LABKIT_HOME"
REGISTRATIONS = "LABKIT_AUTH_REGISTRATIONS_PER_ADDRESS"


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One stack for every notebook here, in a data directory of its own, stopped at the end.

    Its own directory: notebook 08 leaves its cluster size in the data directory it used.
    """
    from labkit.stack import Stack

    saved = {name: os.environ.get(name) for name in (HOME, REGISTRATIONS)}
    # Kernels inherit it (and run in notebooks/: it must be absolute).
    os.environ[HOME] = str(tmp_path_factory.mktemp("rerun") / "home")
    # Every notebook registers its learners at every run, all from 127.0.0.1: more than
    # the auth service's limit per address (30 per window) allows one classroom machine.
    os.environ[REGISTRATIONS] = "10000"
    try:
        with Stack() as stack:
            stack.ensure()
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _plain(text: str) -> str:
    """`text` without the colour codes of IPython's tracebacks."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _read(path: Path) -> Any:
    import nbformat

    return nbformat.read(path, as_version=4)


def _client(notebook: Any) -> Any:
    from nbclient import NotebookClient

    return NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
        allow_errors=False,
    )


def _errors(cell: Any) -> list[str]:
    """Error outputs of `cell`, and tracebacks written to its stderr."""
    found = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            found.append(f"{output['ename']}: {output['evalue']}")
        elif output.get("name") == "stderr" and "Traceback" in output.get("text", ""):
            found.append(output["text"][-1500:])
    return found


def _run_cell(client: Any, cell: Any, index: int, when: str) -> None:
    from nbclient.exceptions import CellExecutionError

    try:
        client.execute_cell(cell, index)
    except CellExecutionError as exc:
        source = "".join(cell.source)[:300]
        pytest.fail(
            f"cell {index}, {when}, failed:\n{source}\n---\n{_plain(str(exc))}", pytrace=False
        )
    errors = _errors(cell)
    assert not errors, f"cell {index}, {when}, shows an error: {errors}"


# Long (every notebook, each cell twice): in `make soak`, which CI runs after `make test`.
@pytest.mark.soak
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_every_cell_run_twice_in_a_row(shared_stack: None, path: Path) -> None:
    notebook = _read(path)
    client = _client(notebook)
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            _run_cell(client, cell, index, "the first time")
            _run_cell(client, cell, index, "run again at once")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_run_all_twice_in_one_kernel(shared_stack: None, path: Path) -> None:
    notebook = _read(path)
    client = _client(notebook)
    with client.setup_kernel():
        for round_ in ("first Run All", "second Run All"):
            cells = copy.deepcopy(notebook.cells)
            for index, cell in enumerate(cells):
                if cell.cell_type == "code":
                    _run_cell(client, cell, index, f"in the {round_}")

"""Notebooks run cell by cell in kernels of this process (nbclient), on one stack.

Shared by tests/test_rerun.py (cells run again) and tests/test_catch_up.py (sections
after a kernel restart): reading a notebook, a client for it, running one cell and
failing with its source and error, and `notebook_stack`, the module's stack.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
CELL_TIMEOUT = 180  # seconds one cell may take (the caching lab waits out its TTL)

# What the kernels inherit. The home must be absolute: kernels run in notebooks/.
# Every notebook registers its learners at every run, all from 127.0.0.1: more than the
# auth service's limit per address (30 per window) allows one classroom machine.
# No browser shows notebook 09's page here: it must not wait for one.
KERNEL_ENV = {
    "LABKIT_AUTH_REGISTRATIONS_PER_ADDRESS": "10000",
    "LABKIT_PAGE_WAIT": "0",
}


@pytest.fixture(scope="module")
def notebook_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One stack for every kernel of a test module, in a data directory of its own.

    Its own directory: notebook 08 leaves its cluster size in the data directory it used.
    Stopped at the end, and the environment put back.
    """
    from labkit.stack import Stack

    env = {"LABKIT_HOME": str(tmp_path_factory.mktemp("notebooks") / "home"), **KERNEL_ENV}
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
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


def plain(text: str) -> str:
    """`text` without the colour codes of IPython's tracebacks."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def read_notebook(path: Path) -> Any:
    import nbformat

    return nbformat.read(path, as_version=4)


def notebook_client(notebook: Any) -> Any:
    from nbclient import NotebookClient

    return NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
        allow_errors=False,
    )


def cell_errors(cell: Any) -> list[str]:
    """Error outputs of `cell`, and tracebacks written to its stderr."""
    found = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            found.append(f"{output['ename']}: {output['evalue']}")
        elif output.get("name") == "stderr" and "Traceback" in output.get("text", ""):
            found.append(output["text"][-1500:])
    return found


def run_cell(client: Any, cell: Any, index: int, when: str) -> None:
    """Run `cell`; fail the test with its source and error if it raises or shows an error."""
    from nbclient.exceptions import CellExecutionError

    try:
        client.execute_cell(cell, index)
    except CellExecutionError as exc:
        source = "".join(cell.source)[:300]
        pytest.fail(
            f"cell {index}, {when}, failed:\n{source}\n---\n{plain(str(exc))}", pytrace=False
        )
    errors = cell_errors(cell)
    assert not errors, f"cell {index}, {when}, shows an error: {errors}"

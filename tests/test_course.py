"""`python -m labkit run`: notebooks run headless in order, with a pass/fail table."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from labkit.course import CourseError, run_course
from labkit.stack import Stack


@pytest.fixture(autouse=True)
def own_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A data directory of its own on free ports (run_course starts the stack there)."""
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    for port in ("LABKIT_NATS_PORT", "LABKIT_NATS_MONITOR_PORT", "LABKIT_NSC_SERVICE_PORT"):
        monkeypatch.setenv(port, "0")


def write_notebook(path: Path, *sources: str) -> Path:
    notebook = new_notebook(cells=[new_code_cell(source) for source in sources])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, path)
    return path


def test_a_passing_notebook_returns_0_and_is_written_executed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notebook = write_notebook(tmp_path / "00_tiny.ipynb", "answer = 6 * 7", "print(answer)")
    output_dir = tmp_path / "out"
    with Stack() as already_up:  # as if the learner had run `python -m labkit up nats`
        already_up.ensure("nats")

        assert run_course([str(notebook)], output_dir=output_dir) == 0

        # The run stopped what it started, and left alone what was running before.
        after = already_up.status()
        assert after["nats"].running
        assert not after["nsc"].running

    executed = nbformat.read(output_dir / "00_tiny.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "42\n"
    table = capsys.readouterr().out
    assert "00_tiny.ipynb" in table
    assert "1 of 1 notebooks ran without errors" in table


def test_a_failing_notebook_returns_1_and_the_table_says_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_notebook(tmp_path / "00_good.ipynb", "pass")
    bad = write_notebook(tmp_path / "01_bad.ipynb", "x = 1", "assert x == 2, 'x is not 2'")

    assert run_course([str(good), str(bad)], output_dir=tmp_path / "out") == 1

    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if ".ipynb  " in line}
    assert rows == {"00_good.ipynb": "ok", "01_bad.ipynb": "failed"}
    assert "01_bad.ipynb failed: cell 1: AssertionError: x is not 2" in out
    # The executed copy is written even on failure, with the error in it.
    assert (tmp_path / "out" / "01_bad.ipynb").is_file()


def test_without_a_notebooks_folder_the_error_says_where_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CourseError, match="no notebooks/ folder"):
        run_course(None)

"""`python -m labkit run`: notebooks run headless in order, with a pass/fail table."""

from __future__ import annotations

import os
from html.parser import HTMLParser
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
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = write_notebook(
        tmp_path / "00_tiny.ipynb",
        "answer = 6 * 7",
        "print(answer)",
        "import os\nprint(os.environ['LABKIT_PAGE_WAIT'])",
    )
    output_dir = tmp_path / "out"
    monkeypatch.setenv("LABKIT_PAGE_WAIT", "15")
    with Stack() as already_up:  # as if the learner had run `python -m labkit up nats`
        already_up.ensure("nats")

        assert run_course([str(notebook)], output_dir=output_dir) == 0

        # The run stopped what it started, and left alone what was running before.
        after = already_up.status()
        assert after["nats"].running
        assert not after["nsc"].running

    executed = nbformat.read(output_dir / "00_tiny.ipynb", as_version=4)
    assert executed.cells[1].outputs[0]["text"] == "42\n"
    # No browser shows a page under `run`: notebook 09 must not wait for one.
    assert executed.cells[2].outputs[0]["text"] == "0\n"
    assert os.environ["LABKIT_PAGE_WAIT"] == "15", "the run's setting must not outlive it"
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


class _ReportRows(HTMLParser):
    """The report's table rows: each row's cell texts and the links in it."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[list[str], list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self.rows.append(([], []))
        elif tag == "td":
            self._cell = []
        elif tag == "a" and self.rows:
            self.rows[-1][1].append(dict(attrs)["href"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1][0].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_the_report_lists_each_notebook_with_its_result_and_a_working_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_notebook(tmp_path / "00_good.ipynb", "print('the good one ran')")
    bad = write_notebook(tmp_path / "01_bad.ipynb", "assert 1 == 2, 'one is not two'")
    build = tmp_path / "build"

    assert run_course([str(good), str(bad)], output_dir=build / "notebooks") == 1

    report = build / "report.html"
    assert f"report: {report}" in capsys.readouterr().out
    parser = _ReportRows()
    parser.feed(report.read_text())
    rows = {cells[0]: (cells, links) for cells, links in parser.rows if cells}
    assert list(rows) == ["00_good.ipynb", "01_bad.ipynb"]
    assert rows["00_good.ipynb"][0][1] == "ok"
    assert rows["01_bad.ipynb"][0][1] == "failed"
    assert "one is not two" in rows["01_bad.ipynb"][0][3]
    for name, (_, links) in rows.items():
        assert links == [f"notebooks/{Path(name).stem}.html"], "relative to the report"
        page = (report.parent / links[0]).read_text()
        assert page.startswith("<!DOCTYPE html>")
    assert "the good one ran" in (build / "notebooks" / "00_good.html").read_text()
    assert "one is not two" in (build / "notebooks" / "01_bad.html").read_text()

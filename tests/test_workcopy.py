"""`make lab` serves the learner's own copy (work/); `python -m labkit reset` restores one."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit import course
from labkit.cli import main
from labkit.workcopy import ResetError, prepare_work_copy, reset_notebook


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    notebooks = tmp_path / "notebooks"
    (notebooks / "images").mkdir(parents=True)
    (notebooks / "00_start_here.ipynb").write_text("course 00")
    (notebooks / "03_identified_echo.ipynb").write_text("course 03")
    (notebooks / "images" / "sample.png").write_bytes(b"png")
    return tmp_path


def test_the_first_start_copies_the_course_and_later_ones_keep_the_learners_work(
    repo: Path,
) -> None:
    work = repo / "work"
    first = prepare_work_copy(repo / "notebooks", work)
    assert sorted(first.copied) == [
        "00_start_here.ipynb",
        "03_identified_echo.ipynb",
        "images/sample.png",
    ]
    assert (work / "images" / "sample.png").read_bytes() == b"png"
    (work / "03_identified_echo.ipynb").write_text("the learner's answers")
    (repo / "notebooks" / "04_caching_echo.ipynb").write_text("course 04")  # a new lab

    again = prepare_work_copy(repo / "notebooks", work)

    assert again.copied == ["04_caching_echo.ipynb"]
    assert (work / "03_identified_echo.ipynb").read_text() == "the learner's answers"
    assert (repo / "notebooks" / "03_identified_echo.ipynb").read_text() == "course 03"


def test_reset_restores_one_notebook_by_name_or_number(repo: Path) -> None:
    work = repo / "work"
    prepare_work_copy(repo / "notebooks", work)
    for name in (
        "03",
        "03_identified_echo",
        "03_identified_echo.ipynb",
        "work/03_identified_echo.ipynb",
    ):
        (work / "03_identified_echo.ipynb").write_text("changed")
        (work / "00_start_here.ipynb").write_text("changed too")
        assert reset_notebook(repo / "notebooks", work, name) == work / "03_identified_echo.ipynb"
        assert (work / "03_identified_echo.ipynb").read_text() == "course 03"
        assert (work / "00_start_here.ipynb").read_text() == "changed too"
    with pytest.raises(ResetError, match="no notebook '09' in the course; one of: 00_start"):
        reset_notebook(repo / "notebooks", work, "09")


def test_the_reset_command(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    prepare_work_copy(repo / "notebooks", repo / "work")
    (repo / "work" / "00_start_here.ipynb").write_text("changed")
    assert main(["reset", "00"]) == 0
    assert (repo / "work" / "00_start_here.ipynb").read_text() == "course 00"
    assert "restored" in capsys.readouterr().out
    assert main(["reset", "nope"]) == 1
    assert "no notebook 'nope' in the course" in capsys.readouterr().err


@pytest.mark.slow
def test_make_lab_serves_the_copy_and_says_what_runs_until_ctrl_c(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    monkeypatch.setenv("LABKIT_HOME", str(repo / "home"))
    started: list[list[str]] = []

    class JupyterLabStandIn:  # JupyterLab itself is driven by tests/browser
        def __init__(self, argv: list[str]) -> None:
            started.append(argv)

        def wait(self) -> int:
            return 0

    monkeypatch.setattr(course, "_start_jupyterlab", JupyterLabStandIn)

    assert course.run_lab(port=8899) == 0

    (argv,) = started
    assert f"--ServerApp.root_dir={repo / 'work'}" in argv
    assert (repo / "work" / "00_start_here.ipynb").read_text() == "course 00"
    out = capsys.readouterr().out
    for component in ("nats", "nsc", "auth", "server", "objects"):
        assert f"  {component} " in out, out
    assert "nats://127.0.0.1:" in out
    assert f"your copy of the notebooks: {repo / 'work'}" in out
    assert "http://127.0.0.1:8899/lab" in out
    assert "until you press Ctrl+C" in out

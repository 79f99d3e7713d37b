"""The progress cell at the top of each lab notebook (labkit.classroom.progress_cell).

Alone it shows this kernel's checks; in a class, what the real application server
recorded for the learner (their own records only); with the stack away, this
kernel's checks and a note, never an error.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from labkit.classroom.progress import report_check, wait_for_report
from labkit.classroom.progress_cell import NOT_STARTED, PASSED, TRYING, lab_exercises, show_progress
from tests.classroom.conftest import ClassStack, login_answer, write_learner_file

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def _states(lab: str) -> dict[str, tuple[str, int]]:
    shown = asyncio.run(show_progress(lab))
    return {row.exercise.exercise_id: (row.state, row.attempts) for row in shown.rows}


def test_every_lab_notebook_opens_with_its_progress_cell() -> None:
    for number in range(1, 9):
        (path,) = NOTEBOOKS.glob(f"0{number}_*.ipynb")
        cells = json.loads(path.read_text())["cells"]
        parameters = next(
            i for i, cell in enumerate(cells) if "parameters" in cell["metadata"].get("tags", [])
        )
        code_before = [c for c in cells[:parameters] if c["cell_type"] == "code"]
        assert len(code_before) == 1, f"{path.name}: one progress cell before the parameters"
        assert f'show_progress("lab0{number}")' in "".join(code_before[0]["source"]), path.name
        assert lab_exercises(f"lab0{number}"), f"lab0{number} has exercises to show"


def test_a_lab_that_is_none_says_how_to_name_one() -> None:
    with pytest.raises(ValueError, match="name one as `lab03`"):
        lab_exercises("03")
    with pytest.raises(ValueError, match="lab01 to lab08"):
        lab_exercises("lab42")


def test_alone_it_shows_this_kernels_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_LEARNER_FILE", raising=False)
    ex1, ex2 = lab_exercises("lab07")
    before = _states("lab07")
    assert before[ex1.exercise_id][0] in (NOT_STARTED, TRYING, PASSED)
    attempts = before[ex2.exercise_id][1]
    assert wait_for_report(report_check(ex2.exercise_id, False)) is None  # alone: not sent
    assert _states("lab07")[ex2.exercise_id] == (TRYING, attempts + 1)
    wait_for_report(report_check(ex2.exercise_id, True))
    wait_for_report(report_check(ex2.exercise_id, False))  # a pass stays a pass
    assert _states("lab07")[ex2.exercise_id] == (PASSED, attempts + 3)
    shown = asyncio.run(show_progress("lab07"))
    assert "alone" in shown._repr_markdown_() and ex2.title in shown._repr_markdown_()


def test_in_a_class_it_shows_what_the_server_recorded(
    class_stack: ClassStack, learner: dict[str, Any]
) -> None:
    ex1, ex2 = lab_exercises("lab05")
    # Records the server stored for this learner in an earlier kernel (or day).
    for passed in (False, False, True):
        assert wait_for_report(report_check(ex1.exercise_id, passed)) is not None
    states = _states("lab05")
    assert states[ex1.exercise_id][0] == PASSED and states[ex1.exercise_id][1] >= 3
    assert states[ex2.exercise_id] == (NOT_STARTED, 0)
    shown = asyncio.run(show_progress("lab05"))
    assert "recorded" in shown.source and shown.passed == 1 and not shown.note


def test_in_a_class_with_the_stack_away_it_says_so_and_shows_the_kernels_checks(
    class_stack: ClassStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    email, answer = login_answer(class_stack, "away")
    answer["nats"]["servers"] = ["nats://127.0.0.1:9"]  # nothing listens there
    path = write_learner_file(tmp_path / "learner.json", answer, email, "http://127.0.0.1:9")
    monkeypatch.setenv("LABKIT_LEARNER_FILE", str(path))
    shown = asyncio.run(show_progress("lab04"))
    assert "could not be read" in shown.note and "run this cell again" in shown.note
    assert len(shown.rows) == len(lab_exercises("lab04"))

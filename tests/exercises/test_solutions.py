"""Every exercise: its solution passes on the real stack, its untouched placeholder never does."""

from __future__ import annotations

import pytest

from labkit.exercises import lab01, lab02, lab03, lab04, lab05, lab06, lab07, lab08
from labkit.exercises.base import Exercise, ____
from labkit.settings import Settings
from tests.exercises.checking import assert_correct, assert_not_answered, run_check

LABS = (lab01, lab02, lab03, lab04, lab05, lab06, lab07, lab08)
TEMPLATES = [exercise for lab in LABS for exercise in lab.EXERCISES]
# Checks that ask the application server's routes (the files lab, the stream echo).
NEED_LAB_SERVER = (lab06.GreyThumbnail, lab07.SendOffline, lab07.AfterTheCrash)


def _id(exercise: Exercise) -> str:
    return f"{type(exercise).__module__.rsplit('.', 1)[-1]}-{exercise.name}"


@pytest.fixture(params=TEMPLATES, ids=_id)
def exercise(request: pytest.FixtureRequest, stack_settings: Settings) -> Exercise:
    """The exercise, checked against the test stack."""
    template: Exercise = request.param
    return type(template)(stack_settings)


def test_the_solution_passes(exercise: Exercise) -> None:
    result = run_check(
        exercise, exercise.solved(), with_lab_server=isinstance(exercise, NEED_LAB_SERVER)
    )
    assert_correct(result)


def test_the_solution_shown_is_the_code_that_passes(exercise: Exercise) -> None:
    shown = exercise.solution()
    assert shown.code == exercise.solution_code
    assert f"```python\n{exercise.solution_code}" in shown._repr_markdown_()


def test_the_untouched_placeholder_cell_is_not_answered(exercise: Exercise) -> None:
    assert_not_answered(run_check(exercise, exercise.blank()))


@pytest.mark.parametrize("blank", [____, None, ...], ids=["____", "None", "Ellipsis"])
def test_a_blank_answer_is_not_answered(exercise: Exercise, blank: object) -> None:
    assert_not_answered(run_check(exercise, blank))


def test_each_lab_numbers_its_exercises_from_one() -> None:
    for lab in LABS:
        assert [exercise.name for exercise in lab.EXERCISES] == [
            f"ex{number}" for number in range(1, len(lab.EXERCISES) + 1)
        ]
        assert [lab.ex1, lab.ex2] == list(lab.EXERCISES)

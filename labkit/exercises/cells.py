"""The "Exercises" section of each lab notebook, made from the exercise definitions.

The exercise modules are the one source of each task, placeholder and check
call; this writes them into the notebooks, just before "## What you saw", so
the final check stays last. Run it after changing an exercise:

    python -m labkit.exercises.cells          # every notebook that has exercises

(tests/exercises/test_notebooks.py fails while a notebook is out of date).
"""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
from nbformat.notebooknode import NotebookNode

from labkit.exercises.base import Exercise

SECTION_BEFORE = "## What you saw"
INTRO = """\
## Exercises

Your turn. Replace `____` in each answer cell with your own code and run it;
the cell after it checks your answer on the real system and says **Correct**,
or **Not yet** and why. Stuck? The cell after each check gives a hint
(`ex1.hint()`) or shows one answer (`ex1.solution()`): uncomment a line and run it.
It works even when your answer cell stopped with an error."""
HELP = (
    "# Stuck? Uncomment one line and run this cell (it works even if your answer raised).\n"
    "# {name}.hint()\n"
    "# {name}.solution()"
)


def lab_module(number: str) -> ModuleType | None:
    """`labkit.exercises.lab03` for notebook `03`, or None when that lab has none yet."""
    try:
        return importlib.import_module(f"labkit.exercises.lab{number}")
    except ModuleNotFoundError:
        return None


def exercises_of(module: ModuleType) -> tuple[Exercise, ...]:
    exercises: tuple[Exercise, ...] = module.EXERCISES
    return exercises


def section(number: str, exercises: Sequence[Exercise]) -> list[NotebookNode]:
    """The cells of notebook `number`'s exercise section; each cell id starts `<number>-ex`."""
    names = ", ".join(exercise.name for exercise in exercises)
    cells = [
        _cell("markdown", f"{number}-exercises", INTRO),
        _cell(
            "code",
            f"{number}-exercises-import",
            f"from labkit.exercises import ____\nfrom labkit.exercises.lab{number} import {names}",
        ),
    ]
    for exercise in exercises:
        prefix = f"{number}-{exercise.name}"
        task = f"### Exercise {exercise.number} · {exercise.title}\n\n" + textwrap.fill(
            exercise.prompt, 80, break_long_words=False, break_on_hyphens=False
        )
        # Hints get a cell of their own: a check cell stops at a NameError when the
        # answer cell raised, before it reaches any line after the check.
        cells += [
            _cell("markdown", f"{prefix}-task", task),
            _cell("code", f"{prefix}-answer", exercise.placeholder_code),
            _cell("code", f"{prefix}-check", exercise.check_code),
            _cell("code", f"{prefix}-help", HELP.format(name=exercise.name)),
        ]
    return cells


def is_exercise_cell(cell: NotebookNode, number: str) -> bool:
    return str(cell.get("id", "")).startswith(f"{number}-ex")


def install(path: Path) -> bool:
    """Write (or rewrite) the exercise section of the notebook at `path`; True if it changed."""
    number = path.name[:2]
    module = lab_module(number)
    if module is None:
        return False
    # nbformat has no annotations on these.
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    kept = [cell for cell in notebook.cells if not is_exercise_cell(cell, number)]
    before = next(
        (
            index
            for index, cell in enumerate(kept)
            if cell.cell_type == "markdown" and cell.source.startswith(SECTION_BEFORE)
        ),
        len(kept),
    )
    cells = kept[:before] + section(number, exercises_of(module)) + kept[before:]
    if _sources(cells) == _sources(notebook.cells):
        return False
    notebook.cells = cells
    path.write_text(nbformat.writes(notebook) + "\n")  # type: ignore[no-untyped-call]
    return True


def _cell(kind: str, cell_id: str, source: str) -> NotebookNode:
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    cell: NotebookNode = make(source)  # type: ignore[no-untyped-call]
    cell.id = cell_id
    return cell


def _sources(cells: list[NotebookNode]) -> list[tuple[Any, ...]]:
    return [(cell.cell_type, cell.get("id"), cell.source) for cell in cells]


def main(argv: Sequence[str] | None = None) -> int:
    paths = [Path(arg) for arg in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        paths = sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
    for path in paths:
        print(f"{path}: {'updated' if install(path) else 'up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

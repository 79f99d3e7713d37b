"""The notebooks show each lab's exercises as the exercise modules define them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from labkit.exercises.cells import (
    SECTION_BEFORE,
    exercises_of,
    install,
    is_exercise_cell,
    lab_module,
    section,
)

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
WITH_EXERCISES = [
    path for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if lab_module(path.name[:2])
]


def test_labs_01_to_08_have_exercises() -> None:
    expected = {"01", "02", "03", "04", "05", "06", "07", "08"}
    assert {path.name[:2] for path in WITH_EXERCISES} >= expected


@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda path: path.name)
def test_the_exercise_section_is_up_to_date_and_before_the_summary(path: Path) -> None:
    number = path.name[:2]
    module = lab_module(number)
    assert module is not None
    cells = nbformat.read(path, as_version=4).cells  # type: ignore[no-untyped-call]
    found = [index for index, cell in enumerate(cells) if is_exercise_cell(cell, number)]
    expected = section(number, exercises_of(module))
    shown = [(cells[i].cell_type, cells[i].id, cells[i].source) for i in found]
    assert shown == [(cell.cell_type, cell.id, cell.source) for cell in expected], (
        f"run `python -m labkit.exercises.cells {path.relative_to(NOTEBOOKS.parent)}`"
    )
    assert found == list(range(found[0], found[0] + len(found))), "one block of cells"
    after = cells[found[-1] + 1]
    assert after.cell_type == "markdown" and after.source.startswith(SECTION_BEFORE)
    assert cells[-1].cell_type == "code" and not is_exercise_cell(cells[-1], number)


def test_install_puts_the_section_before_the_summary_once(tmp_path: Path) -> None:
    source = NOTEBOOKS / "03_identified_echo.ipynb"
    notebook = nbformat.read(source, as_version=4)  # type: ignore[no-untyped-call]
    notebook.cells = [cell for cell in notebook.cells if not is_exercise_cell(cell, "03")]
    copy = tmp_path / source.name
    copy.write_text(nbformat.writes(notebook) + "\n")  # type: ignore[no-untyped-call]

    assert install(copy) is True
    assert copy.read_text() == source.read_text()
    assert install(copy) is False


@pytest.mark.slow
def test_the_verdict_stays_visible_when_the_hint_is_uncommented(tmp_path: Path) -> None:
    """Hints live in a cell of their own: uncommenting `hint()` leaves the verdict in view."""
    import nbclient

    from labkit.exercises import lab06

    by_id = {cell.id: cell for cell in section("06", lab06.EXERCISES)}
    answer = nbformat.v4.new_code_cell(lab06.ex1.solution_code)  # type: ignore[no-untyped-call]
    help_cell = by_id["06-ex1-help"].source.replace("# ex1.hint()", "ex1.hint()")
    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    notebook.cells = [
        by_id["06-exercises-import"],
        answer,
        by_id["06-ex1-check"],
        nbformat.v4.new_code_cell(help_cell),  # type: ignore[no-untyped-call]
    ]
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=60, resources={"metadata": {"path": tmp_path}}
    )
    client.execute()

    def shown(cell: Any) -> list[str]:
        return [
            output["data"]["text/plain"]
            for output in cell.outputs
            if output["output_type"] in ("display_data", "execute_result")
        ]

    check, hint = notebook.cells[-2:]
    assert [text.split(":")[0] for text in shown(check)] == ["Correct"], shown(check)
    assert [text.split(":")[0] for text in shown(hint)] == ["Hint (ex1)"], shown(hint)

"""Catch-up by replay: run a notebook's earlier sections again, as the course wrote them.

Some sections use what an earlier section measured or built with code written in the
notebook itself (notebook 08's `Load`, 03's shout handler, 04's timings): labkit could
only rebuild those by copying the notebook. Their catch-up cell instead runs those
sections' code cells again, in the kernel's namespace, from the course's own copy of the
notebook (a known state, whatever the learner edited since): *Run All Above*, limited to
what the section needs, the re-measurement included. In the normal flow every name the
section needs is already there, so it runs nothing.
"""

from __future__ import annotations

import ast
import inspect
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from IPython import get_ipython
from IPython.display import display

from labkit.course_state import CatchUpFailed

COURSE_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
REPLAY_CALL = "replay("  # a replay cell met while replaying is skipped: its names are there


def notebook_file(notebook: str) -> Path:
    """The course's copy of `notebook` (`"08_scaling_out"`), else the one beside the kernel."""
    for folder in (COURSE_NOTEBOOKS, Path.cwd()):
        path = folder / f"{notebook}.ipynb"
        if path.is_file():
            return path
    raise CatchUpFailed(
        f"found no {notebook}.ipynb in {COURSE_NOTEBOOKS} or {Path.cwd()}: run the cells "
        "above this section instead (Run → Run All Above Selected Cell)"
    )


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _heading(cell: dict[str, Any]) -> str | None:
    """The `## ` heading a markdown cell holds, if any."""
    if cell.get("cell_type") != "markdown":
        return None
    for line in _source(cell).splitlines():
        if line.startswith("## "):
            return line[3:].strip()
    return None


def section_cells(notebook: dict[str, Any], title: str) -> list[tuple[int, str]]:
    """(index, source) of the code cells of the section whose heading starts with `title`."""
    cells = notebook.get("cells", [])
    starts = [i for i, cell in enumerate(cells) if (_heading(cell) or "").startswith(title)]
    if not starts:
        raise CatchUpFailed(f"the notebook has no section '{title}'")
    found = []
    for index in range(starts[0] + 1, len(cells)):
        cell = cells[index]
        if _heading(cell) is not None:
            break
        if cell.get("cell_type") == "code":
            found.append((index, _source(cell)))
    return found


def missing(namespace: dict[str, Any], needs: Iterable[str]) -> list[str]:
    """The names in `needs` the namespace lacks; `"load.stopped"` asks for an attribute too."""
    absent = []
    for need in needs:
        name, *attributes = need.split(".")
        value = namespace.get(name)
        present = name in namespace
        for attribute in attributes:
            present = present and hasattr(value, attribute)
            value = getattr(value, attribute, None)
        if not present:
            absent.append(need)
    return absent


async def run_cell_source(source: str, namespace: dict[str, Any], label: str) -> None:
    """Run one cell's code as the kernel would: top-level await, last expression shown."""
    shell = get_ipython()
    if shell is not None:  # %magics and !commands, as IPython reads them
        source = shell.transform_cell(source)
    tree = ast.parse(source, filename=label)
    last = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = ast.Expression(final.value)
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    # A cell with a top-level await compiles to a coroutine; evaluating it starts it.
    result = eval(compile(tree, label, "exec", flags=flags), namespace)
    if inspect.iscoroutine(result):
        await result
    if last is not None:
        value = eval(compile(last, label, "eval", flags=flags), namespace)
        if inspect.iscoroutine(value):
            value = await value
        if value is not None:
            display(value)  # type: ignore[no-untyped-call]


async def replay(
    namespace: dict[str, Any], notebook: str, *sections: str, needs: Iterable[str]
) -> list[str]:
    """Run `sections` of `notebook` again unless `namespace` already has every name it `needs`.

    Returns the sections it ran (none in the normal flow). A replayed cell that fails
    raises its own error, with a note naming the cell.
    """
    needs = list(needs)
    if not missing(namespace, needs):
        return []
    path = notebook_file(notebook)
    content = json.loads(path.read_text())
    for title in sections:
        for index, source in section_cells(content, title):
            if REPLAY_CALL in source:
                continue
            try:
                await run_cell_source(source, namespace, f"<{notebook} cell {index}>")
            except Exception as exc:
                exc.add_note(f"(running again cell {index} of {path.name}, section '{title}')")
                raise
    still = missing(namespace, needs)
    if still:
        raise CatchUpFailed(f"ran {', '.join(sections)} again, yet {still} are still missing")
    print(f"ran again: {' · '.join(sections)}")
    return list(sections)

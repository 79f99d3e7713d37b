"""The learner's own copy of the course: `work/`, what `make lab` serves.

JupyterLab saves a notebook as it is used (autosave, outputs, a learner's answers).
Served from `notebooks/`, it would rewrite the repository's files, and `make run`
would then run the learner's version. So `make lab` serves `work/` (git-ignored):
made on the first start from `notebooks/`, a notebook added later is copied in at the
next start, and nothing already in `work/` is ever overwritten. `python -m labkit
reset NOTEBOOK` puts one notebook back as the course has it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from labkit.errors import LabkitError

WORK_DIR = Path("work")


class ResetError(LabkitError):
    """The notebook to reset is not one of the course's."""


@dataclass
class WorkCopy:
    """What `prepare_work_copy` did: the folder, the files it copied and the ones kept."""

    folder: Path
    copied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def prepare_work_copy(course: Path, work: Path) -> WorkCopy:
    """Copy into `work` every file of `course` it does not have yet; overwrite nothing."""
    result = WorkCopy(work)
    work.mkdir(parents=True, exist_ok=True)
    for source in sorted(course.rglob("*")):
        relative = source.relative_to(course)
        if source.is_dir() or ".ipynb_checkpoints" in relative.parts:
            continue
        target = work / relative
        if target.exists():
            result.kept.append(str(relative))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        result.copied.append(str(relative))
    return result


def reset_notebook(course: Path, work: Path, name: str) -> Path:
    """Put `name` (a file name, a path, or its number: `03`) back in `work` as in `course`."""
    source = _course_notebook(course, name)
    target = work / source.name
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return target


def _course_notebook(course: Path, name: str) -> Path:
    wanted = Path(name).name
    notebooks = sorted(course.glob("[0-9][0-9]_*.ipynb"))
    found = [
        path
        for path in notebooks
        if wanted in (path.name, path.stem) or (wanted.isdigit() and path.name[:2] == wanted)
    ]
    if len(found) != 1:
        names = ", ".join(path.name for path in notebooks)
        raise ResetError(f"no notebook {name!r} in the course; one of: {names}")
    return found[0]

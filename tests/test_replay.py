"""labkit.replay without a kernel: which cells a section holds, and running them again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from labkit import replay as replay_module
from labkit.course_state import CatchUpFailed
from labkit.replay import missing, replay, run_cell_source, section_cells


def _cell(kind: str, source: str) -> dict[str, Any]:
    return {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}


NOTEBOOK = {
    "cells": [
        _cell("markdown", "# 99 · A test\n"),
        _cell("code", "base = 2\n"),
        _cell("markdown", "## Measure\n\nText.\n"),
        _cell("code", "import asyncio\n\nawait asyncio.sleep(0)\nmeasured = [base * 10]\n"),
        _cell("markdown", "More text, no heading.\n"),
        _cell("code", "measured.append(base)\nmeasured[-1]\n"),
        _cell("markdown", "## Check\n"),
        _cell("code", 'from labkit.catch_up import replay\nawait replay(globals(), "99_test")\n'),
        _cell("code", "checked = sum(measured)\n"),
    ]
}


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "99_test.ipynb").write_text(json.dumps(NOTEBOOK))
    monkeypatch.setattr(replay_module, "COURSE_NOTEBOOKS", tmp_path)
    return tmp_path


def test_a_section_is_its_code_cells_up_to_the_next_heading() -> None:
    assert [index for index, _ in section_cells(NOTEBOOK, "Measure")] == [3, 5]
    assert [index for index, _ in section_cells(NOTEBOOK, "Che")] == [7, 8]
    with pytest.raises(CatchUpFailed, match="no section 'Nowhere'"):
        section_cells(NOTEBOOK, "Nowhere")


def test_missing_names_and_attributes() -> None:
    class Load:
        stopped = 1.0

    namespace = {"load": Load(), "other": None}
    assert missing(namespace, ["load", "other", "load.stopped"]) == []
    assert missing(namespace, ["nothing", "load.started", "other.x"]) == [
        "nothing",
        "load.started",
        "other.x",
    ]


def test_a_cell_runs_with_top_level_await_in_the_namespace() -> None:
    namespace: dict[str, Any] = {"base": 3}
    asyncio.run(run_cell_source("".join(NOTEBOOK["cells"][3]["source"]), namespace, "<cell>"))
    assert namespace["measured"] == [30]
    asyncio.run(run_cell_source("shown = measured[0]\nshown + 1", namespace, "<cell>"))
    assert namespace["shown"] == 30


def test_replay_runs_the_sections_once_and_skips_when_nothing_is_missing(
    course: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, Any] = {"base": 2}
    assert asyncio.run(replay(namespace, "99_test", "Measure", needs=["measured"])) == ["Measure"]
    assert namespace["measured"] == [20, 2]
    assert "ran again: Measure" in capsys.readouterr().out
    assert asyncio.run(replay(namespace, "99_test", "Measure", needs=["measured"])) == []
    assert namespace["measured"] == [20, 2], "a normal run changes nothing"


def test_replay_names_the_failing_cell_and_what_stays_missing(course: Path) -> None:
    with pytest.raises(NameError) as failure:  # `base` comes from a cell it was not asked for
        asyncio.run(replay({}, "99_test", "Measure", needs=["measured"]))
    assert "cell 3 of 99_test.ipynb, section 'Measure'" in "".join(failure.value.__notes__)
    with pytest.raises(CatchUpFailed, match=r"\['checked'\] are still missing"):
        asyncio.run(replay({"base": 1}, "99_test", "Measure", needs=["checked"]))


def test_an_unknown_notebook_says_what_to_do(course: Path) -> None:
    with pytest.raises(CatchUpFailed, match="Run All Above"):
        replay_module.notebook_file("98_nowhere")

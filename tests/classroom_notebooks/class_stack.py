"""A class for notebook tests: one shared stack, learners registered through its auth
service, each with the learner file and environment a class's spawner gives them.

The learner file follows the documented format (COMMON.md, issue 14): the auth
service's /login answer verbatim, plus "email" and "auth_url", mode 0600.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from labkit.discovery import nats_urls, nats_ws_urls
from labkit.stack import Stack

NOTEBOOKS_DIR = Path(__file__).parents[2] / "notebooks"
PASSWORD = "correct horse battery staple"
# Settings a learner's kernel must not inherit from the test run: the class's spawner
# gives the shared endpoints and a private home, nothing else of the stack's.
DROPPED_ENV = ("LABKIT_HOME", "LABKIT_NSC_STORE_DIR", "LABKIT_NSC_SERVICE_URL")


@dataclass
class ClassLearner:
    """One learner of the class: their account, private home and learner file."""

    name: str
    email: str
    user_id: str
    home: Path
    learner_file: Path
    env: dict[str, str]


def register_learner(stack: Stack, name: str, root: Path) -> ClassLearner:
    """Register `name` at the shared auth service, log in, write their learner file."""
    auth_url = stack.url("auth")
    email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
    registered = requests.post(
        f"{auth_url}/register", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert registered.status_code == 201, registered.text
    answer = requests.post(
        f"{auth_url}/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    home = root / name
    home.mkdir(parents=True)
    learner_file = root / f"{name}.learner.json"
    learner_file.touch(mode=0o600)
    learner_file.write_text(json.dumps({**answer.json(), "email": email, "auth_url": auth_url}))
    env = spawner_env(stack, home, learner_file)
    return ClassLearner(name, email, answer.json()["user_id"], home, learner_file, env)


def spawner_env(stack: Stack, home: Path, learner_file: Path) -> dict[str, str]:
    """The environment a class's spawner gives a learner's server (and so its kernels)."""
    env = {key: value for key, value in os.environ.items() if key not in DROPPED_ENV}
    objects = stack.record("objects")
    env.update(
        {
            "LABKIT_CLASSROOM": "1",
            "LABKIT_HOME": str(home),
            "LABKIT_LEARNER_FILE": str(learner_file),
            "LABKIT_NATS_URL": ",".join(nats_urls(stack.settings)),
            "LABKIT_NATS_WS_URL": ",".join(nats_ws_urls(stack.settings)),
            "LABKIT_AUTH_URL": stack.url("auth"),
            "LABKIT_S3_ENDPOINT": str(objects["endpoint"]),
        }
    )
    return env


def start_notebook(
    notebook: str, learner: ClassLearner, out_dir: Path, **parameters: Any
) -> subprocess.Popen[str]:
    """Start papermill on `notebook` (e.g. "03") in `learner`'s environment."""
    path = next(NOTEBOOKS_DIR.glob(f"{notebook}_*.ipynb"))
    argv = [
        sys.executable,
        "-m",
        "papermill",
        str(path),
        str(out_dir / f"{learner.name}-{path.name}"),
        "-k",
        "python3",
        "--cwd",
        str(NOTEBOOKS_DIR),
        "--no-progress-bar",
        "--execution-timeout",
        "240",
    ]
    for key, value in parameters.items():
        argv += ["-p", key, str(value)]
    return subprocess.Popen(
        argv, env=learner.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish(run: subprocess.Popen[str], timeout: float = 900) -> tuple[int, str]:
    """Wait for a papermill run; its exit code and output."""
    output, _ = run.communicate(timeout=timeout)
    return run.returncode, output


def users_in_auth_db(stack: Stack) -> int:
    """How many accounts the shared auth service's SQLite database holds."""
    import sqlite3

    with sqlite3.connect(stack.settings.paths.auth_database) as db:
        return int(db.execute("select count(*) from users").fetchone()[0])

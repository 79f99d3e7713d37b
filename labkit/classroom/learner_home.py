"""Prepare a learner's home for their server, done *as the learner*, never as root.

Root writing into a home its learner controls could be led by a symlink to overwrite
any file on the machine; a child process with the learner's own uid can only do what
the learner could. It writes the learner file (0600), makes the private LABKIT_HOME,
and copies the course in on the first spawn (nothing already there is overwritten,
the learner's answers stay: `labkit.workcopy`). The login comes on stdin, never in
arguments or the environment, which other users can read in /proc.

Run by the spawner as `python -m labkit.classroom.learner_home COURSE_DIR`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.classroom.learner import write_learner_file
from labkit.classroom.os_accounts import LearnerAccount
from labkit.errors import LabkitError
from labkit.workcopy import prepare_work_copy

LABKIT_HOME_NAME = ".labkit"
LEARNER_FILE_NAME = "learner.json"
COURSE_COPY_NAME = "course"


class HomeSetupFailed(LabkitError):
    """The learner's home could not be prepared for their server."""


@dataclass(frozen=True)
class LearnerHome:
    """Where a learner's server finds its things, inside the learner's home."""

    home: Path

    @property
    def labkit_home(self) -> Path:
        return self.home / LABKIT_HOME_NAME

    @property
    def learner_file(self) -> Path:
        return self.labkit_home / LEARNER_FILE_NAME

    @property
    def course(self) -> Path:
        return self.home / COURSE_COPY_NAME


def prepare_learner_home(
    account: LearnerAccount, login: dict[str, Any], course: Path, *, python: str = sys.executable
) -> LearnerHome:
    """Run the preparation as `account` (root calls this); returns the paths it made.

    `login` is what the learner file holds: `{"answer": ..., "email": ..., "auth_url": ...}`.
    """
    done = subprocess.run(
        [python, "-m", "labkit.classroom.learner_home", str(course)],
        input=json.dumps(login),
        capture_output=True,
        text=True,
        user=account.uid,
        group=account.gid,
        extra_groups=[],
        cwd=account.home,
        env={"HOME": str(account.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        check=False,
    )
    if done.returncode != 0:
        raise HomeSetupFailed(
            f"preparing {account.home} as {account.name} failed: {done.stderr.strip()[-500:]}"
        )
    return LearnerHome(account.home)


def prepare_own_home(home: Path, login: dict[str, Any], course: Path) -> LearnerHome:
    """The learner's side: LABKIT_HOME (0700), the learner file (0600), the course copy."""
    paths = LearnerHome(home)
    paths.labkit_home.mkdir(mode=0o700, exist_ok=True)
    os.chmod(paths.labkit_home, 0o700)
    write_learner_file(paths.learner_file, login["answer"], login["email"], login["auth_url"])
    prepare_work_copy(course, paths.course)
    return paths


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m labkit.classroom.learner_home COURSE_DIR", file=sys.stderr)
        return 2
    os.umask(0o077)
    prepare_own_home(Path.home(), json.loads(sys.stdin.read()), Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

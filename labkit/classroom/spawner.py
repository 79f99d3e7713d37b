"""One single-user server per learner, each as the learner's own OS account.

LocalProcessSpawner runs a server as the OS user named like the hub user; hub users
here are emails, so this spawner maps each to the account `os_accounts` derives (and
creates it on the first spawn: the hub runs as root). Before the server starts, the
learner's home is prepared as the learner (`learner_home`): the learner file with the
session the authenticator just checked, a private LABKIT_HOME, the course copy.

The server's environment is built from nothing but: the hub's JupyterHub variables,
the few the hub passes through (PATH, LANG, VIRTUAL_ENV...), the stack's public
addresses and this learner's own paths. No stack secret is ever in the hub's
environment to pass on (the crypt key is in the config, the tokens in files).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from tornado import web
from traitlets import Dict, Unicode

from labkit.classroom.authenticator import SESSION_ATTRIBUTE
from labkit.classroom.learner import CLASSROOM_VARIABLE, LEARNER_FILE_VARIABLE
from labkit.classroom.learner_home import LearnerHome, prepare_learner_home
from labkit.classroom.os_accounts import (
    DEFAULT_PREFIX,
    LearnerAccount,
    account_name,
    ensure_account,
    find_account,
)


class LabkitSpawner(LocalProcessSpawner):  # type: ignore[misc]
    """LocalProcessSpawner with one labkit-made OS account per learner."""

    account_prefix = Unicode(DEFAULT_PREFIX, help="start of every learner's OS user name").tag(
        config=True
    )
    home_base = Unicode("/home", help="folder of the learners' homes").tag(config=True)
    course_dir = Unicode(help="the course notebooks copied into each learner's home").tag(
        config=True
    )
    learner_python = Unicode(
        help="the Python learners may run (labkit.classroom.learner_python)"
    ).tag(config=True)
    stack_environment = Dict(
        help="the shared stack's public addresses (LABKIT_NATS_URL, LABKIT_AUTH_URL, ...)"
    ).tag(config=True)

    account: LearnerAccount | None = None

    async def start(self) -> Any:
        session = getattr(self, SESSION_ATTRIBUTE, None)
        if session is None:
            raise web.HTTPError(403, "no checked labkit login for this spawn; log in again")
        # useradd and the preparation (a child process) run in threads: the hub serves
        # everyone else meanwhile.
        self.account = await asyncio.to_thread(
            ensure_account, self.user.name, self.account_prefix, Path(self.home_base)
        )
        home = await asyncio.to_thread(
            prepare_learner_home,
            self.account,
            session,
            Path(self.course_dir),
            python=self.learner_python,
        )
        # The session is in the learner's file now; the hub keeps it only encrypted.
        setattr(self, SESSION_ATTRIBUTE, None)
        self.notebook_dir = str(home.course)
        return await super().start()

    def make_preexec_fn(self, name: str) -> Any:
        return set_user_setuid(self._os_name())

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        account = self._account()
        home = LearnerHome(account.home)
        venv_bin = Path(self.learner_python).parent
        env.update(
            {
                # A terminal's `python` is the one learners can run, not the hub's.
                "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
                "VIRTUAL_ENV": str(venv_bin.parent),
                "USER": account.name,
                "HOME": str(account.home),
                "SHELL": "/bin/bash",
                **{key: str(value) for key, value in self.stack_environment.items()},
                "LABKIT_HOME": str(home.labkit_home),
                LEARNER_FILE_VARIABLE: str(home.learner_file),
                CLASSROOM_VARIABLE: "1",
            }
        )
        return env

    async def move_certs(self, paths: dict[str, str]) -> dict[str, str]:
        raise NotImplementedError("labkit's classroom hub does not use internal_ssl")

    def _os_name(self) -> str:
        return self._account().name

    def _account(self) -> LearnerAccount:
        if self.account is None:
            found = find_account(account_name(self.user.name, self.account_prefix))
            if found is None:
                raise web.HTTPError(500, f"{self.user.name} has no OS account yet")
            self.account = found
        return self.account

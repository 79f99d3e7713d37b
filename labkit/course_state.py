"""Catch-up after a kernel restart: keep what the kernel still holds, rebuild what it lost.

A notebook section that needs earlier state starts with a catch-up cell
(`labkit.catch_up`). Run in the normal top-to-bottom flow it finds every object in
place and changes nothing; after a restart it ensures the stack components, logs the
notebook's learners in again, connects, and rebuilds what the section uses.

The accounts a catch-up registers are remembered in `<data dir>/course/<notebook>.json`
(emails only, never a password or a token), so every later restart logs the same
learners in instead of registering new ones.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from labkit.auth.client import AuthClient, AuthRequestFailed, Login
from labkit.errors import LabkitError
from labkit.settings import Settings
from labkit.stack import Stack


class CatchUpFailed(LabkitError):
    """A catch-up cell could not bring the notebook back; the message says what to do."""


def kept(namespace: Mapping[str, Any], name: str, healthy: Callable[[Any], bool]) -> Any | None:
    """`namespace[name]` when it exists and `healthy` says it still works, else None.

    A health check that raises counts as unhealthy: a half-built object from a cell that
    failed is rebuilt, never trusted.
    """
    value = namespace.get(name)
    if value is None:
        return None
    try:
        return value if healthy(value) else None
    except Exception:
        return None


def is_open(connection: Any) -> bool:
    """True for a NATS connection that is connected and not closed."""
    return bool(getattr(connection, "is_connected", False)) and not getattr(
        connection, "is_closed", True
    )


def ensure_stack(*components: str, settings: Settings | None = None) -> Stack:
    """The stack with `components` (and what they need) running; raises if one does not start."""
    stack = Stack(settings)
    for name, status in stack.ensure(*components).items():
        if not status.running:
            raise CatchUpFailed(
                f"{name} is {status.state}, its log ends:\n{stack.log_tail(name)}\n"
                "start it with `python -m labkit up`, then run this cell again"
            )
    return stack


class Accounts:
    """The learners one notebook's catch-up cells use, remembered in the data directory."""

    def __init__(
        self, notebook: str, *, auth: AuthClient | None = None, settings: Settings | None = None
    ) -> None:
        self.notebook = notebook
        self.auth = auth or AuthClient()
        home = (settings or Settings()).home
        self.file = Path(home) / "course" / f"{notebook}.json"

    def remembered(self) -> dict[str, str]:
        """Learner name -> email of the accounts registered so far (empty if none)."""
        try:
            data = json.loads(self.file.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def login(self, name: str, password: str) -> Login:
        """Log `name` in with its remembered account, or register one first and remember it.

        A remembered account the auth service no longer knows (a new data directory, a
        reset database) is replaced by a new one, never an error. In a class the learner
        is already logged in: every name is the class's login, nothing is registered.
        """
        if Settings().classroom:
            from labkit.classroom.learner import current_login

            return current_login()
        emails = self.remembered()
        email = emails.get(name)
        if email is not None:
            try:
                return self.auth.login(email, password)
            except AuthRequestFailed as exc:
                if exc.status not in (401, 404):
                    raise
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        self.auth.register(email, password)
        emails[name] = email
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(json.dumps(emails, indent=1))
        return self.auth.login(email, password)

    def logged_in(self, login: Any) -> bool:
        """True when `login` is a Login whose access token the auth service still accepts."""
        if not isinstance(login, Login):
            return False
        try:
            self.auth.me(login)
        except AuthRequestFailed:
            return False
        return True

    def reuse_or_login(
        self, namespace: Mapping[str, Any], variable: str, name: str, password: str
    ) -> Login:
        """The notebook's `variable` if it is still logged in, else `name` logged in again."""
        login = kept(namespace, variable, self.logged_in)
        return login if login is not None else self.login(name, password)


async def connection(
    namespace: Mapping[str, Any], variable: str, login: Login, **options: Any
) -> Client:
    """The notebook's open connection `variable`, or a new one for `login`."""
    existing = kept(namespace, variable, is_open)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    return await login.connect(**options)

"""The learner's context inside their own single-user server (classroom mode).

The hub's spawner writes the learner file: the auth service's `/login` answer as it
came, plus `email` and `auth_url`, in a 0600 file in the learner's own home, and points
`LABKIT_LEARNER_FILE` at it. Without that variable the kit runs alone (a learner at
home starts their own stack). The file is read on each call, never cached: a new login
(the hub writes a new file at each spawn) is seen at once.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from labkit.auth.client import Login
from labkit.auth.client import login_from_answer as answer_to_login
from labkit.errors import LabkitError
from labkit.files import write_private

LEARNER_FILE_VARIABLE = "LABKIT_LEARNER_FILE"
CLASSROOM_VARIABLE = "LABKIT_CLASSROOM"


class NotInClassroom(LabkitError):
    """Asked for the classroom login while running alone (or the learner file is unusable)."""


def learner_file() -> Path | None:
    """The learner file the hub gave this server, or None when running alone."""
    value = os.environ.get(LEARNER_FILE_VARIABLE, "").strip()
    return Path(value) if value else None


def write_learner_file(path: Path, answer: dict[str, Any], email: str, auth_url: str) -> None:
    """Write `answer` (the /login JSON) plus `email` and `auth_url` to `path`, mode 0600."""
    content = {**answer, "email": email, "auth_url": auth_url}
    write_private(path, json.dumps(content, indent=2))


def read_learner_file(path: Path) -> dict[str, Any]:
    """The learner file's content (a clear error when it is missing or not JSON)."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotInClassroom(
            f"the learner file {path} is missing; stop and start your server from the "
            "hub's home page (File > Hub Control Panel) to get a new one"
        ) from None
    except (OSError, ValueError) as exc:
        raise NotInClassroom(
            f"the learner file {path} cannot be read ({exc}): log out of the class's hub and "
            "in again, which writes it anew"
        ) from None
    if not isinstance(content, dict):
        raise NotInClassroom(f"the learner file {path} does not hold a login (a JSON object)")
    return content


def current_login() -> Login:
    """This learner's login (tokens and NATS grant), from the file the hub wrote."""
    path = learner_file()
    if path is None:
        raise NotInClassroom(
            f"not in classroom mode ({LEARNER_FILE_VARIABLE} is not set): in a class, open "
            "JupyterLab through the class's hub (it logs you in); alone, log in with "
            "labkit.auth.client.AuthClient().login(email, password)"
        )
    return login_from_answer(read_learner_file(path))


def login_from_answer(content: dict[str, Any]) -> Login:
    """A `Login` from a /login answer (plus `email`), as the learner file holds it."""
    try:
        return answer_to_login(content, str(content["email"]))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise NotInClassroom(
            f"the learner file lacks {exc}; restart your server from the hub's home page"
        ) from None

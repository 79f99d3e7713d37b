"""Which names can be operators, accounts and users: single, safe subject tokens.

A user's name becomes the first token of its subjects (`<user>.echo`), so it must
be one token: no dots, no wildcards, no whitespace, nothing the server would read
as syntax.
"""

from __future__ import annotations

import re

from labkit.nsc.errors import InvalidName

MAX_NAME_LENGTH = 64
_ALLOWED = re.compile(r"[A-Za-z0-9_-]+")


def validate_name(name: object, what: str = "name") -> str:
    """Return `name` when it is a usable subject token, else raise InvalidName saying why."""
    if not isinstance(name, str):
        raise InvalidName(f"{what} must be a string, got {type(name).__name__}")
    if not name:
        raise InvalidName(f"{what} is empty; use letters, digits, '-' or '_'")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"{what} is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}")
    for char, reason in (
        (".", "a dot separates subject tokens"),
        ("*", "'*' is a wildcard"),
        (">", "'>' is a wildcard"),
    ):
        if char in name:
            raise InvalidName(f"{what} {name!r} contains {char!r}: {reason}")
    if any(c.isspace() for c in name):
        raise InvalidName(f"{what} {name!r} contains whitespace, which ends a subject")
    if not _ALLOWED.fullmatch(name):
        bad = sorted({c for c in name if not _ALLOWED.fullmatch(c)})
        raise InvalidName(
            f"{what} {name!r} contains {''.join(bad)!r}; use letters, digits, '-' or '_'"
        )
    if name.startswith("_") and name.upper().startswith("_INBOX"):
        raise InvalidName(f"{what} {name!r} would shadow the reply inboxes (_INBOX)")
    return name

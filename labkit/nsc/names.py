"""Which names can be operators, accounts and users: single, safe subject tokens.

A user's name becomes the first token of its subjects (`<user>.echo`), so it must
be one token: no dots, no wildcards, no whitespace, nothing the server would read
as syntax. A user's name must also not be one the stack uses or keeps for itself
(`reserved_reason`, the one list the wrapper, the NSC service and the stack share):
a learner named `labkit_server` would be handed the server's key, one named
`persist` could read everyone's persisted traffic.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from labkit.nsc.errors import InvalidName, ReservedName
from labkit.settings import NscSettings
from labkit.subjects import PERSIST_PREFIX

MAX_NAME_LENGTH = 64
_ALLOWED = re.compile(r"[A-Za-z0-9_-]+")

# Prefixes no learner's user name may begin with (compared without case), and why.
RESERVED_PREFIXES: tuple[tuple[str, str], ...] = (
    ("labkit_", "names beginning with 'labkit_' belong to the stack's own users"),
    (
        PERSIST_PREFIX,
        f"'{PERSIST_PREFIX}' is the first token of everyone's persisted subjects "
        f"({PERSIST_PREFIX}.<user>.echo.stream)",
    ),
    ("$", "subjects beginning with '$' are the server's ($SYS, $JS, $KV, $SRV)"),
    ("_", "subjects beginning with '_' are reply inboxes (_INBOX) and other internals"),
)


def stack_user_names(settings: NscSettings) -> frozenset[str]:
    """The stack's own users, whatever the settings call them (server and observer)."""
    return frozenset({settings.server_user, settings.observer_user})


def reserved_reason(name: str, stack_users: Collection[str] = ()) -> str | None:
    """Why `name` is kept for the stack, or None when a learner's user may have it."""
    if name in stack_users:
        return f"{name!r} is one of the stack's own users"
    lowered = name.lower()
    for prefix, reason in RESERVED_PREFIXES:
        if lowered.startswith(prefix):
            return reason
    return None


def validate_user_name(name: object, stack_users: Collection[str] = ()) -> str:
    """`validate_name` for a learner's user, also refusing every reserved name."""
    checked = validate_name(name, "user name")
    reason = reserved_reason(checked, stack_users)
    if reason is not None:
        raise ReservedName(f"user name {checked!r} is reserved: {reason}; choose another name")
    return checked


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

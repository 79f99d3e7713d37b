"""Object names and keys: pure functions, no IO.

Every user's objects live under their own prefix in one bucket: `<user>/<name>`.
A name is one safe path segment, so a request can never reach outside its
user's prefix: no `/` or `\\`, no `..`, no control characters, no leading dot.
"""

from __future__ import annotations

import unicodedata

from labkit.objects.errors import InvalidObjectName

MAX_NAME_LENGTH = 128
_ALLOWED_PUNCTUATION = "._- "


# Names of results (`cat.crop-0-0-10-10.png`) may be longer than what a user may choose.
_MAX_DERIVED_LENGTH = MAX_NAME_LENGTH + 64


def validate_object_name(name: object, max_length: int = MAX_NAME_LENGTH) -> str:
    """Return `name` when it is one safe path segment, else raise InvalidObjectName saying why."""
    if not isinstance(name, str):
        raise InvalidObjectName(f"the name must be text, got {type(name).__name__}")
    if not name:
        raise InvalidObjectName("the name is empty; give the file a name such as 'cat.png'")
    if len(name) > max_length:
        raise InvalidObjectName(
            f"the name is {len(name)} characters long; the limit is {max_length}"
        )
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidObjectName(f"the name {name!r} contains control or invisible characters")
    for bad, why in (("/", "it separates folders"), ("\\", "it separates folders on Windows")):
        if bad in name:
            raise InvalidObjectName(
                f"the name {name!r} contains {bad!r}: {why}; a name is a single segment"
            )
    if ".." in name:
        raise InvalidObjectName(
            f"the name {name!r} contains '..', which could climb out of a folder"
        )
    if name.startswith("."):
        raise InvalidObjectName(
            f"the name {name!r} starts with a dot; start with a letter or digit"
        )
    if name != name.strip():
        raise InvalidObjectName(f"the name {name!r} starts or ends with whitespace")
    odd = sorted({c for c in name if not (c.isalnum() or c in _ALLOWED_PUNCTUATION)})
    if odd:
        raise InvalidObjectName(
            f"the name {name!r} contains {''.join(odd)!r}; use letters, digits, "
            "spaces, '.', '_' or '-'"
        )
    return name


def object_key(user: str, name: str) -> str:
    """The key of `user`'s object `name`: `alice/cat.png` (the name is validated)."""
    if not user or "/" in user:
        raise InvalidObjectName(f"user {user!r} cannot own objects")
    return f"{user}/{validate_object_name(name, _MAX_DERIVED_LENGTH)}"


def stem(name: str) -> str:
    """`cat.jpg` -> `cat`; `cat` -> `cat`."""
    base, dot, _extension = name.rpartition(".")
    return base if dot and base else name


def derived_name(name: str, label: str, extension: str = "png") -> str:
    """The name of a result stored next to `name`: `cat.jpg` + `color-BW` -> `cat.color-BW.png`."""
    return validate_object_name(f"{stem(name)}.{label}.{extension}", _MAX_DERIVED_LENGTH)

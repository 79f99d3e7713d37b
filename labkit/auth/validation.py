"""Read and check request bodies: normalised emails, long-enough passwords. No IO."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email

from labkit.auth.errors import InvalidField, MalformedRequest

MAX_PASSWORD_LENGTH = 1024


@dataclass(frozen=True)
class EmailPassword:
    email: str
    password: str


def read_email_password(body: Any, min_password_length: int) -> EmailPassword:
    """The normalised email and the password of a /register or /login body."""
    if not isinstance(body, dict):
        raise MalformedRequest(
            'send a JSON object such as {"email": "...", "password": "..."} '
            "with Content-Type: application/json"
        )
    missing = [field for field in ("email", "password") if field not in body]
    if missing:
        raise MalformedRequest(f"missing field(s): {', '.join(missing)}")
    email, password = body["email"], body["password"]
    if not isinstance(email, str) or not isinstance(password, str):
        raise InvalidField("email and password must both be strings")
    if len(password) < min_password_length:
        raise InvalidField(f"the password must have at least {min_password_length} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidField(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    return EmailPassword(normalise_email(email), password)


def normalise_email(email: str) -> str:
    """The canonical form of an email (lower-cased), or InvalidField saying why."""
    try:
        info = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidField(f"invalid email: {exc}") from exc
    # One mailbox, one account: compare emails without case.
    return info.normalized.lower()

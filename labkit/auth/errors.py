"""Errors the auth service answers with, as JSON `{error, detail}`."""

from __future__ import annotations

from labkit.errors import LabkitError


class AuthError(LabkitError):
    """An error with the HTTP status and machine-readable code it is answered with."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MalformedRequest(AuthError):
    status, code = 400, "malformed_request"


class InvalidField(AuthError):
    status, code = 422, "invalid_field"


class EmailTaken(AuthError):
    status, code = 409, "email_taken"


class BadCredentials(AuthError):
    status, code = 401, "invalid_credentials"


class TooManyAttempts(AuthError):
    status, code = 429, "too_many_attempts"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class CredentialServiceUnavailable(AuthError):
    status, code = 503, "nsc_unavailable"


class NotAnInstructor(AuthError):
    status, code = 403, "forbidden"


class UnknownUser(AuthError):
    status, code = 404, "unknown_user"

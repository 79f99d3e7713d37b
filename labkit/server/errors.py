"""Errors of the application server framework."""

from __future__ import annotations

from labkit.errors import LabkitError


class InvalidHandler(LabkitError, TypeError):
    """A handler declaration labkit cannot serve (found at decoration time)."""


class HandlerError(LabkitError):
    """Raise in a handler to answer the requester with an error reply.

    `code` is machine-readable (`bad_request`, `not_found`, ...); the message is for
    the human reading it.
    """

    status = 400

    def __init__(self, message: str, code: str = "bad_request", status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class RemoteError(LabkitError):
    """The server answered a request with an error reply."""

    def __init__(self, code: str, message: str, subject: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.subject = subject

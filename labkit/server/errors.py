"""Errors of the application server framework.

RemoteError (what a client sees) lives in labkit.error_replies, which clients import;
it is re-exported here for code that already takes it from the server.
"""

from __future__ import annotations

from labkit.error_replies import RemoteError
from labkit.errors import LabkitError

__all__ = ["HandlerError", "InvalidHandler", "RemoteError", "ReplyNotSent", "ReplyTooLarge"]


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


class ReplyNotSent(LabkitError):
    """The bus did not take a reply (connection lost, a stream electing its leader).

    Not the handler's fault: dispatch answers no error for it. A persisted request
    is delivered again later; a core request's requester times out and may retry.
    """


class ReplyTooLarge(LabkitError):
    """A reply larger than the bus (max_payload) or the stream (max_msg_size) accepts.

    It would fail the same way every time, so it becomes a `too_large` error reply.
    """

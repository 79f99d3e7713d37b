"""The error model client and server share: how an error reply looks on the wire.

The server answers a refused or failed request with `ErrorReply{code, message,
subject}` plus headers in the style of the NATS services API; a client turns such
an answer into `RemoteError`. Both import this module, so a client never needs the
server's internals.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from labkit.errors import LabkitError
from labkit.protocol import ErrorReply

Headers = dict[str, str]

# Headers in the style of the NATS services API, so standard tooling sees errors.
ERROR_HEADER = "Nats-Service-Error"
ERROR_CODE_HEADER = "Nats-Service-Error-Code"
LABKIT_CODE_HEADER = "Labkit-Error"

# Codes the framework itself answers with (handlers add their own: not_found, ...).
INVALID_PAYLOAD = "invalid_payload"
INTERNAL_ERROR = "internal_error"
TOO_LARGE = "too_large"
UNDELIVERABLE = "undeliverable"
BUSY = "busy"  # the sender's own queue on the server is full: retry after the hint

# A `busy` reply's retry hint, in milliseconds (the message says it too).
RETRY_AFTER_HEADER = "Labkit-Retry-After-Ms"

# JetStream's answers to a publish a stream will not store (server and clients read them).
JS_MESSAGE_TOO_LARGE = 10054  # "message size exceeds maximum allowed"
JS_STORE_FAILED = 10077  # "maximum messages per subject exceeded", "maximum bytes exceeded"
JS_WRONG_LAST_SEQUENCE = 10071  # a Nats-Expected-Last-Subject-Sequence not met


class RemoteError(LabkitError):
    """The server answered a request with an error reply."""

    def __init__(
        self, code: str, message: str, subject: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.subject = subject
        # Seconds to wait before sending again, when the server gave a hint (`busy`).
        self.retry_after = retry_after


def retry_after_of(headers: Headers | None) -> float | None:
    """The retry hint of an error reply, in seconds, or None without one."""
    value = (headers or {}).get(RETRY_AFTER_HEADER)
    try:
        return int(value) / 1000 if value is not None else None
    except ValueError:
        return None


def error_reply(
    code: str, message: str, subject: str, status: int, retry_after: float | None = None
) -> tuple[bytes, Headers]:
    """The body and headers of an error reply (`retry_after`: seconds, for `busy`)."""
    body = ErrorReply(code=code, message=message, subject=subject).SerializeToString()
    headers = {ERROR_HEADER: message, ERROR_CODE_HEADER: str(status), LABKIT_CODE_HEADER: code}
    if retry_after is not None:
        headers[RETRY_AFTER_HEADER] = str(round(retry_after * 1000))
    return body, headers


def error_from(headers: Headers | None, data: bytes) -> ErrorReply | None:
    """The ErrorReply inside an answer, or None when the answer is not an error."""
    if not headers or (LABKIT_CODE_HEADER not in headers and ERROR_HEADER not in headers):
        return None
    try:
        return ErrorReply.FromString(data)
    except DecodeError:
        return ErrorReply(
            code=headers.get(LABKIT_CODE_HEADER, "error"), message=headers.get(ERROR_HEADER, "")
        )


def raise_for_error(headers: Headers | None, data: bytes) -> None:
    """Raise RemoteError when the answer is an error reply."""
    error = error_from(headers, data)
    if error is not None:
        raise RemoteError(error.code, error.message, error.subject, retry_after_of(headers))

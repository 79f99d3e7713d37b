"""The server's `busy` answer, encoded once: during a burst it is sent thousands of times.

What a requester gets is exactly `dispatch.answer_busy`'s answer (the same body
and headers, see labkit.error_replies): only the requester's subject in the body
varies. Built by nats-py for each one, its four headers alone cost more than
reading the request did (encoding, checks); here the header block and the body
up to the subject are bytes made once, and a protobuf message's fields may be
written one after the other, so the subject is appended as its own field.
"""

from __future__ import annotations

from labkit.error_replies import BUSY, error_reply
from labkit.protocol import ErrorReply


def busy_text(retry_after: float) -> str:
    """What a `busy` answer says: nothing was done, when to send it again."""
    return (
        f"busy: you have too many requests waiting on the server; nothing was done, "
        f"send it again in {round(retry_after * 1000)} ms (and send fewer at once)"
    )


class BusyAnswer:
    """One server's `busy` answer (its retry hint is fixed by the settings)."""

    def __init__(self, retry_after: float) -> None:
        self.text = busy_text(retry_after)
        body, headers = error_reply(BUSY, self.text, "", 429, retry_after)
        self._body_start = body  # code and message; an empty subject is not written
        lines = [b"NATS/1.0\r\n"]
        lines += [f"{key}: {value}\r\n".encode() for key, value in headers.items()]
        self.header_block = b"".join(lines) + b"\r\n"

    def body(self, subject: str) -> bytes:
        """The ErrorReply for a request on `subject`."""
        return self._body_start + ErrorReply(subject=subject).SerializeToString()

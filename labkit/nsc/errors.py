"""Errors raised by the NSC wrapper and reported by the NSC service."""

from labkit.errors import LabkitError


class NscError(LabkitError):
    """A keystore or JWT operation failed."""


class InvalidName(NscError, ValueError):
    """A name that cannot be used as a NATS subject token."""


class ReservedName(InvalidName):
    """A name the stack uses or keeps for itself (its own users, `persist`, `labkit_*`)."""


class NotFound(NscError, LookupError):
    """The operator, account or user does not exist in the store."""


class Conflict(NscError):
    """The request contradicts what the store already holds."""


class InvalidJwt(NscError, ValueError):
    """A token that is not a well-formed, correctly signed NATS JWT."""


class PushFailed(NscError):
    """The running NATS server did not accept an account update."""


class InvalidExpiry(NscError, ValueError):
    """A credential lifetime that is zero or negative."""

"""Errors raised while starting, checking or stopping the stack."""

from labkit.errors import LabkitError


class StackError(LabkitError):
    """A component could not be started, found or stopped."""


class ComponentFailed(StackError):
    """A component exited or never became healthy; the message holds its log's tail."""

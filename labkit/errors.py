"""The base of every labkit error: a message a learner can act on."""


class LabkitError(Exception):
    """Something went wrong in labkit; the message says what to do about it."""

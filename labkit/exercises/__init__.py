"""Exercises at the end of each lab notebook, checked on the real system.

In the spirit of Kaggle's learntools: the learner fills in a blank and runs a
check that serves, connects, sends and compares for real, then says "Correct"
or "Not yet" and why.

    from labkit.exercises import ____
    from labkit.exercises.lab03 import ex1

    reverse_router = ____            # the learner replaces the blank
    await ex1.check(reverse_router)  # Not yet: you have not answered yet ...
    ex1.hint()
    ex1.solution()

One module per lab (`lab01` ... ), each with `ex1`, `ex2`, ... and `EXERCISES`;
`base` is the framework, `live` what checks run on, `cells` writes the
notebooks' exercise sections.
"""

from labkit.exercises.base import (
    NOT_ANSWERED,
    AsyncExercise,
    CheckResult,
    Exercise,
    NotYet,
    SyncExercise,
    ____,
)

__all__ = [
    "NOT_ANSWERED",
    "AsyncExercise",
    "CheckResult",
    "Exercise",
    "NotYet",
    "SyncExercise",
    "____",
]

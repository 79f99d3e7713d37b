"""The exercise framework: a task, a check on the real system, a hint and a solution.

A notebook cell starts with the placeholder `____`; the learner replaces it and
runs the check cell below it:

    reverse_router = ____                 # the learner's cell
    await ex1.check(reverse_router)       # "Not yet: you have not answered yet ..."

A check never raises on the learner's account: an untouched placeholder, a wrong
answer and an answer that crashes all come back as a `CheckResult` saying
"Not yet" and why, so a notebook runs headless (papermill, nbval) with every
exercise unanswered. Only a broken stack (NATS not running) raises.

In classroom mode each answered check also reports its verdict and attempt count
(labkit.classroom.progress) for the instructor; a report that cannot be sent costs
the check at most a short timeout, never its verdict.

Exercises whose check needs no IO are `SyncExercise`s (`ex1.check(answer)`);
the others are `AsyncExercise`s (`await ex1.check(answer)`).
"""

from __future__ import annotations

import asyncio
import html
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeVar

from labkit.errors import LabkitError
from labkit.settings import Settings

NOT_ANSWERED = (
    "you have not answered yet: replace `____` in the cell above with your answer, "
    "run that cell, then run this check again"
)
# How long a learner's async function may run before the check gives up on it.
LEARNER_TIMEOUT = 15.0
# What an exercise id may not hold (a progress record's key token).
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9_-]")

T = TypeVar("T")


class Placeholder:
    """The type of `____`, the blank a learner fills in."""

    _instance: ClassVar[Placeholder | None] = None

    def __new__(cls) -> Placeholder:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "____"


____: Final = Placeholder()


def is_unanswered(value: object) -> bool:
    """True for the blanks a cell may start with: `____`, `None`, `...`, `NotImplemented`."""
    return value is ____ or value is None or value is Ellipsis or value is NotImplemented


class NotYet(LabkitError):
    """Raised by a check: the answer is not right yet; the message says why."""


@dataclass(frozen=True)
class CheckResult:
    """What a check found: `correct`, and a message saying what was tried or what is wrong."""

    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        return f"{'Correct' if self.correct else 'Not yet'}: {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colour, label = ("#1b7f3b", "Correct") if self.correct else ("#b35c00", "Not yet")
        return (
            f'<div style="color: {colour}"><strong>{label}:</strong> '
            f"{_inline_markdown(self.message)}</div>"
        )


@dataclass(frozen=True)
class Shown:
    """Text a notebook shows nicely: a hint, or a solution with its code."""

    title: str
    text: str
    code: str = ""

    def __repr__(self) -> str:
        parts = [f"{self.title}: {self.text}" if self.text else f"{self.title}:"]
        if self.code:
            parts.append(self.code)
        return "\n".join(parts)

    def _repr_markdown_(self) -> str:
        parts = [f"**{self.title}:** {self.text}"]
        if self.code:
            parts.append(f"```python\n{self.code}\n```")
        return "\n\n".join(parts)


class PendingCheck:
    """An asynchronous check, run when awaited: `await ex1.check(answer)`.

    Shown without `await`, it says how to run it (and nothing runs, so no
    "coroutine was never awaited" warning either).
    """

    def __init__(self, name: str, run: Callable[[], Coroutine[Any, Any, CheckResult]]) -> None:
        self._name = name
        self._run = run

    def __await__(self) -> Generator[Any, None, CheckResult]:
        return self._run().__await__()

    def __repr__(self) -> str:
        return f"This check has not run: write `await {self._name}.check(...)`, with `await`."

    def _repr_html_(self) -> str:
        return f"<div>{_inline_markdown(repr(self))}</div>"


@contextmanager
def learner_code(what: str) -> Iterator[None]:
    """Turn an exception raised by the learner's code into a NotYet naming it."""
    try:
        yield
    except NotYet:
        raise
    except Exception as exc:
        raise NotYet(f"{what} raised {type(exc).__name__}: {exc}") from exc


def answered(value: T) -> T:
    """`value`, unless the learner's code handed back the placeholder."""
    if value is ____:
        raise NotYet(NOT_ANSWERED)
    return value


def call_learner(function: object, *args: object, what: str) -> object:
    """Call the learner's function with `args`; its result (NotYet if it fails)."""
    if not callable(function):
        raise NotYet(f"{what} is {kind_of(function)}, not a function: define it with `def`")
    with learner_code(what):
        result = function(*args)
    if asyncio.iscoroutine(result):
        result.close()
        raise NotYet(f"{what} is `async def`; this one should be a plain `def`")
    return answered(result)


async def await_learner(function: object, *args: object, what: str) -> object:
    """Await the learner's async function with `args`; its result (NotYet if it fails)."""
    if not callable(function):
        raise NotYet(f"{what} is {kind_of(function)}, not a function: define it with `async def`")
    with learner_code(what):
        result = function(*args)
        if not isinstance(result, Awaitable):
            answered(result)
            raise NotYet(f"{what} returned {kind_of(result)} at once: make it an `async def`")
        try:
            async with asyncio.timeout(LEARNER_TIMEOUT):
                result = await result
        except TimeoutError:
            raise NotYet(f"{what} did not finish within {LEARNER_TIMEOUT:g} s") from None
    return answered(result)


class Exercise(ABC):
    """One exercise: what to do, a hint, a solution, and the cells a notebook shows.

    `solution_code` is the one copy of the solution: `solution()` shows it, and
    `solved()` runs it (the tests check that it passes).
    """

    number: ClassVar[int]
    title: ClassVar[str]
    # The name the learner's answer has in the notebook (`reverse_router`).
    answer_name: ClassVar[str]
    # The task, in markdown, as the notebook states it.
    prompt: ClassVar[str]
    # The code cell the learner starts from: it sets `answer_name` to `____`.
    placeholder_code: ClassVar[str]
    hint_text: ClassVar[str]
    solution_code: ClassVar[str]
    is_async: ClassVar[bool]

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    # What a check runs on besides NATS; in a class they start on the learner's sandbox.
    sandbox_needs: ClassVar[tuple[str, ...]] = ("nats", "nsc")

    @property
    def settings(self) -> Settings:
        """The stack to check against: the one given, else the environment's (LABKIT_HOME).

        In a class, checks mint credentials and serve routers, which a learner may not do
        on the shared stack: they run on the learner's private sandbox, started here.
        """
        if self._settings is not None:
            return self._settings
        settings = Settings()
        if settings.classroom:
            from labkit.classroom.course_mode import ensure_sandbox

            return ensure_sandbox(*self.sandbox_needs)
        return settings

    @property
    def name(self) -> str:
        return f"ex{self.number}"

    @property
    def check_code(self) -> str:
        """The check cell's call, as the notebook writes it."""
        call = f"{self.name}.check({self.answer_name})"
        return f"await {call}" if self.is_async else call

    def hint(self) -> Shown:
        return Shown(f"Hint ({self.name})", self.hint_text)

    def solution(self) -> Shown:
        return Shown(f"Solution ({self.name})", "one way to do it", self.solution_code)

    def solved(self) -> object:
        """The answer the solution code makes (run in a fresh namespace)."""
        return self._run(self.solution_code, "solution")

    def blank(self) -> object:
        """The answer the untouched placeholder cell makes."""
        return self._run(self.placeholder_code, "placeholder")

    def _run(self, code: str, what: str) -> object:
        # The notebook imports `____` before any answer cell; so does this namespace.
        namespace: dict[str, Any] = {"__name__": f"labkit_{what}_{self.name}", "____": ____}
        exec(compile(code, f"<{what} of {self.name}>", "exec"), namespace)
        return namespace[self.answer_name]

    @property
    def exercise_id(self) -> str:
        """The id progress reports name: `lab03-ex2` (module, then name)."""
        module = type(self).__module__.rsplit(".", 1)[-1]
        return _NOT_IN_ID.sub("-", f"{module}-{self.name}")[:64]

    def _reported(self, result: CheckResult) -> Future[Any]:
        """Count this check and report it (classroom mode only; never raises)."""
        from labkit.classroom.progress import report_check

        return report_check(self.exercise_id, result.correct)

    def __repr__(self) -> str:
        return f"{self.name}: {self.title}"

    def _repr_markdown_(self) -> str:
        return f"**Exercise {self.number} · {self.title}**\n\n{self.prompt}"


class SyncExercise(Exercise):
    """An exercise whose check needs no IO: `ex1.check(answer)` returns the result."""

    is_async = False

    def check(self, answer: object) -> CheckResult:
        if is_unanswered(answer):
            return CheckResult(False, NOT_ANSWERED)  # not an attempt: nothing reported
        try:
            result = CheckResult(True, self.verify(answer))
        except NotYet as exc:
            result = CheckResult(False, str(exc))
        from labkit.classroom.progress import wait_for_report

        wait_for_report(self._reported(result))
        return result

    @abstractmethod
    def verify(self, answer: object) -> str:
        """What was checked, if the answer is right; else raise NotYet saying why."""


class AsyncExercise(Exercise):
    """An exercise checked on the running stack: `await ex1.check(answer)`."""

    is_async = True

    def check(self, answer: object) -> PendingCheck:
        return PendingCheck(self.name, lambda: self._check(answer))

    async def _check(self, answer: object) -> CheckResult:
        if is_unanswered(answer):
            return CheckResult(False, NOT_ANSWERED)  # not an attempt: nothing reported
        try:
            result = CheckResult(True, await self.verify(answer))
        except NotYet as exc:
            result = CheckResult(False, str(exc))
        from labkit.classroom.progress import await_report

        await await_report(self._reported(result))
        return result

    @abstractmethod
    async def verify(self, answer: object) -> str:
        """What was checked, if the answer is right; else raise NotYet saying why."""


def kind_of(value: object) -> str:
    """`a str`, `an int`, `None`: how a message names what the learner gave."""
    if value is None or value is ____:
        return repr(value)
    kind = type(value).__name__
    return f"{'an' if kind[0].lower() in 'aeiou' else 'a'} {kind}"


_CODE_SPAN = re.compile(r"`([^`]+)`")


def _inline_markdown(text: str) -> str:
    """HTML for a message: escaped, with `code` spans as <code>."""
    return _CODE_SPAN.sub(r"<code>\1</code>", html.escape(text))

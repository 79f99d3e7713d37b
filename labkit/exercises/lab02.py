"""Exercises of notebook 02 (the auth service): predict the server's refusals, log in safely."""

from __future__ import annotations

import secrets
import socket

from labkit.auth.client import AuthClient, AuthRequestFailed, Login
from labkit.discovery import auth_url
from labkit.exercises.base import (
    AsyncExercise,
    NotYet,
    SyncExercise,
    answered,
    call_learner,
    kind_of,
)
from labkit.exercises.live import BOB, connect_learner
from labkit.nsc.claims import Permissions

# The user whose publish rights the first exercise predicts.
PREDICTED_USER = "exercise-dave"
SHARED_PATTERN = "shared.*.notes"
PASSWORD = "correct horse battery staple"


def _publish_cases(user: str) -> dict[str, str]:
    """Subjects to try, each with why the server allows or refuses it."""
    return {
        f"{user}.notes": f"`{user}.>` matches it",
        f"{user}.a.b.c": "`>` matches one or more tokens at the end",
        user: f"`>` needs at least one token after `{user}.`",
        f"{BOB}.notes": "no pattern in the list names bob's subjects",
        f"{user}x.notes": f"patterns match whole tokens, and `{user}x` is not `{user}`",
        f"shared.{BOB}.notes": "`*` matches exactly one token",
        "shared.notes": "`*` needs exactly one token there, and there is none",
        "shared.a.b.notes": "`*` matches one token, never two",
        f"_INBOX.{user}.x": "the user may subscribe to its inbox, but no pattern lets it publish",
    }


class MayPublish(AsyncExercise):
    number = 1
    title = "Predict what the server allows"
    answer_name = "may_publish"
    prompt = (
        "A login's `nats.publish` is a list of subject patterns: `*` matches exactly one "
        "token, `>` one or more tokens at the end. Write `may_publish(allowed, subject)`, "
        "`True` when a user with the patterns `allowed` may publish on `subject`. The "
        "check gives a user the patterns `[<user>.>, shared.*.notes]`, publishes on nine "
        "subjects as that user, and compares your answers with the NATS server's."
    )
    placeholder_code = (
        "def may_publish(allowed: list[str], subject: str) -> bool:\n"
        "    return ____  # does one of the patterns in `allowed` match `subject`?"
    )
    hint_text = (
        "Split patterns and subjects into tokens at `.`. Walk a pattern token by token: "
        "`*` matches any one token, `>` (always last) matches whatever remains if at least "
        "one token remains, any other token must be equal. Without `>` the lengths must "
        "be equal too."
    )
    solution_code = """\
def may_publish(allowed: list[str], subject: str) -> bool:
    return any(pattern_matches(pattern, subject) for pattern in allowed)


def pattern_matches(pattern: str, subject: str) -> bool:
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index  # one or more tokens left
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)
"""

    async def verify(self, answer: object) -> str:
        user = PREDICTED_USER
        allowed = [f"{user}.>", SHARED_PATTERN]
        cases = _publish_cases(user)
        predictions: dict[str, bool] = {}
        for subject in cases:  # all before any IO: a blank answer is found at once
            said = call_learner(
                answer, list(allowed), subject, what=f"may_publish(allowed, {subject!r})"
            )
            if not isinstance(said, bool):
                raise NotYet(
                    f"may_publish(allowed, {subject!r}) returned {kind_of(said)}; "
                    "return True or False"
                )
            predictions[subject] = said
        permissions = Permissions(
            publish=tuple(allowed), subscribe=(f"{user}.>", f"_INBOX.{user}.>")
        )
        async with connect_learner(self.settings, user, permissions) as learner:
            for subject, why in cases.items():
                allowed_by_server = await learner.may_publish(subject)
                if predictions[subject] != allowed_by_server:
                    verdict = "let it through" if allowed_by_server else "refused it"
                    raise NotYet(
                        f"may_publish(allowed, {subject!r}) said {predictions[subject]}, but "
                        f"the NATS server {verdict}: {why}"
                    )
        return f"your answers agreed with the NATS server on all {len(cases)} subjects"


class TryLogin(SyncExercise):
    sandbox_needs = ("auth",)
    number = 2
    title = "A login that tells a wrong password from a failure"
    answer_name = "try_login"
    prompt = (
        "Write `try_login(client, email, password)`: the `Login` that `client.login` "
        "returns, or `None` when the auth service answers that the email or password is "
        "wrong (HTTP 401). Any other failure, such as an auth service that cannot be "
        "reached, must still raise. The check tries your function on the real auth "
        "service and on an address where nothing listens."
    )
    placeholder_code = (
        "from labkit.auth.client import AuthClient, AuthRequestFailed, Login\n"
        "\n"
        "\n"
        "def try_login(client: AuthClient, email: str, password: str) -> Login | None:\n"
        "    return ____  # client.login(...), or None for a wrong email or password"
    )
    hint_text = (
        "Catch `AuthRequestFailed` around `client.login(...)` and look at its `status`: "
        "return None for 401, and `raise` it again otherwise (an unreachable service has "
        "status 0)."
    )
    solution_code = """\
from labkit.auth.client import AuthClient, AuthRequestFailed, Login


def try_login(client: AuthClient, email: str, password: str) -> Login | None:
    try:
        return client.login(email, password)
    except AuthRequestFailed as refused:
        if refused.status == 401:  # wrong email or password
            return None
        raise
"""

    def verify(self, answer: object) -> str:
        if not callable(answer):
            raise NotYet(f"try_login is {kind_of(answer)}, not a function: define it with `def`")
        email = f"exercise-{secrets.token_hex(4)}@example.com"
        # First where nothing listens: a blank answer shows before anything is registered.
        unreachable = AuthClient(f"http://127.0.0.1:{_closed_port()}", timeout=2.0)
        try:
            result = answered(answer(unreachable, email, PASSWORD))
        except AuthRequestFailed as exc:
            if exc.status != 0:  # nothing listens there: only "unreachable" can come back
                raise NotYet(
                    f"with the auth service unreachable try_login raised {exc}; let the "
                    "client's own AuthRequestFailed through"
                ) from exc
        except NotYet:
            raise
        except Exception as exc:
            raise NotYet(
                f"with the auth service unreachable try_login raised {type(exc).__name__}: "
                f"{exc}; let the AuthRequestFailed through (`raise`)"
            ) from exc
        else:
            raise NotYet(
                f"try_login returned {kind_of(result)} when the auth service could not be "
                "reached: only a 401 means a wrong email or password, so let other "
                "failures raise"
            )
        client = AuthClient(auth_url(self.settings))
        registered = client.register(email, PASSWORD)
        login = call_learner(
            answer, client, email, PASSWORD, what="try_login(<the right password>)"
        )
        if not isinstance(login, Login) or login.user_id != registered["id"]:
            raise NotYet(
                f"with the right password try_login returned {kind_of(login)}; return the "
                "`Login` that `client.login` gave"
            )
        wrong = call_learner(answer, client, email, "not the password", what="try_login")
        if wrong is not None:
            raise NotYet(f"with a wrong password try_login returned {kind_of(wrong)}; return None")
        return (
            "try_login returned the Login, None for a wrong password, and let the "
            "unreachable service's error through"
        )


def _closed_port() -> int:
    """A local port nothing listens on (the OS just handed it out and took it back)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


ex1 = MayPublish()
ex2 = TryLogin()
EXERCISES = (ex1, ex2)

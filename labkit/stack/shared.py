"""A class's shared stack, seen from a learner's kernel: check that it answers, start nothing.

In classroom mode (`LABKIT_CLASSROOM=1`) the stack's processes belong to the class:
`Stack().ensure(...)` asks each named service whether it answers, at the endpoints
the settings give (`LABKIT_NATS_URL`, `LABKIT_AUTH_URL`, `LABKIT_S3_ENDPOINT`), and
raises naming every one that does not, and what to do. It never starts, stops or
restarts any of them.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from labkit.settings import Settings
from labkit.stack.component import http_ok
from labkit.stack.errors import StackError

CHECK_TIMEOUT = 3.0
# The application server has no address: it answers the learner's own echo on NATS.
PROBE_SUBJECT_SUFFIX = "echo"


class SharedStackUnavailable(StackError):
    """A service of the class's shared stack does not answer; the message says which."""


class SharedStackOnly(StackError):
    """A learner tried to start, stop or restart a part of the class's shared stack."""


def refuse_change(action: str) -> SharedStackOnly:
    return SharedStackOnly(
        f"classroom mode (LABKIT_CLASSROOM=1): the shared stack is the instructor's, so a "
        f"notebook cannot {action} it. Use `Stack().ensure(...)` to check it answers; what "
        "you may run yourself runs on your private sandbox "
        "(labkit.classroom.course_mode.sandbox_settings())"
    )


def check_shared(names: list[str], settings: Settings) -> dict[str, dict[str, Any]]:
    """Each named component's details when it answers; raises naming those that do not."""
    checks: dict[str, Callable[[Settings], tuple[str | None, dict[str, Any]]]] = {
        "nats": _nats,
        "nsc": _nsc,
        "auth": _auth,
        "objects": _objects,
        "server": _server,
    }
    answered: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    for name in names:
        check = checks.get(name.partition("#")[0])
        if check is None:
            failures.append(f"{name}: not part of a shared stack (a learner cannot run it)")
            continue
        problem, details = check(settings)
        if problem is None:
            answered[name] = {**details, "shared": True}
        else:
            failures.append(f"{name}: {problem}")
    if failures:
        raise SharedStackUnavailable(
            "classroom mode (LABKIT_CLASSROOM=1): the class's shared stack does not answer, "
            "and a learner's notebook starts none of it:\n  "
            + "\n  ".join(failures)
            + "\nAsk your instructor to check the class's stack (`python -m labkit status` "
            "on its machine), then run this cell again."
        )
    return answered


def check_each(
    names: list[str], settings: Settings, *, raise_if_silent: bool = True
) -> dict[str, tuple[bool, dict[str, Any]]]:
    """Each component: (answers, details); raises for the silent ones if `raise_if_silent`."""
    if raise_if_silent:
        return {name: (True, details) for name, details in check_shared(names, settings).items()}
    found: dict[str, tuple[bool, dict[str, Any]]] = {}
    for name in names:
        try:
            found[name] = (True, check_shared([name], settings)[name])
        except SharedStackUnavailable as exc:
            found[name] = (False, {"problem": str(exc)})
    return found


def endpoint_env(settings: Settings) -> dict[str, str | None]:
    """The endpoints of `settings`, for the processes a Stack starts (None: unset).

    A kernel in a class has the shared stack's endpoints in its environment; a private
    sandbox it starts must not hand those to its own processes.
    """
    return {
        "LABKIT_CLASSROOM": "1" if settings.classroom else None,
        "LABKIT_NATS_URL": settings.nats.url,
        "LABKIT_NATS_WS_URL": settings.nats.ws_url,
        "LABKIT_AUTH_URL": settings.auth.url,
        "LABKIT_S3_ENDPOINT": settings.s3.endpoint,
        "LABKIT_NSC_SERVICE_URL": settings.nsc.service_url,
    }


def _missing(variable: str) -> tuple[str, dict[str, Any]]:
    return (
        f"{variable} is not set; the class's spawner sets it (open JupyterLab through the "
        "class's hub), or unset LABKIT_CLASSROOM to work alone",
        {},
    )


def _nats(settings: Settings) -> tuple[str | None, dict[str, Any]]:
    if not settings.nats.url:
        return _missing("LABKIT_NATS_URL")
    urls = [url.strip() for url in settings.nats.url.split(",") if url.strip()]
    silent = [url for url in urls if not _nats_answers(url)]
    if len(silent) == len(urls):
        return f"no NATS server answers at {', '.join(urls)}", {}
    ws_urls = [url.strip() for url in (settings.nats.ws_url or "").split(",") if url.strip()]
    details = {"url": urls[0], "urls": urls, "silent": silent}
    return None, {**details, "ws_url": ws_urls[0]} if ws_urls else details


def _nats_answers(url: str) -> bool:
    """True when a NATS server greets a TCP client at `url` with its INFO line."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 4222), timeout=CHECK_TIMEOUT
        ) as conn:
            conn.settimeout(CHECK_TIMEOUT)
            return conn.recv(5).startswith(b"INFO")
    except OSError:
        return False


def _auth(settings: Settings) -> tuple[str | None, dict[str, Any]]:
    if not settings.auth.url:
        return _missing("LABKIT_AUTH_URL")
    url = settings.auth.url.rstrip("/")
    if not http_ok(f"{url}/healthz", timeout=CHECK_TIMEOUT):
        return f"the auth service does not answer at {url}/healthz", {}
    return None, {"url": url}


def _nsc(settings: Settings) -> tuple[str | None, dict[str, Any]]:
    # Learners never reach the NSC service: it answers through the auth service's logins.
    problem, details = _auth(settings)
    if problem is not None:
        return f"checked through the auth service, which issues NATS creds: {problem}", {}
    return None, {"via": "auth", "url": details["url"]}


def _objects(settings: Settings) -> tuple[str | None, dict[str, Any]]:
    from labkit.stack.object_store import s3_answers  # it imports discovery, which needs us

    if not settings.s3.endpoint:
        return _missing("LABKIT_S3_ENDPOINT")
    endpoint = settings.s3.endpoint
    if "://" not in endpoint:
        endpoint = f"{'https' if settings.s3.secure else 'http'}://{endpoint}"
    if not s3_answers(endpoint.rstrip("/"), timeout=CHECK_TIMEOUT):
        return f"no S3 object store answers at {endpoint}", {}
    return None, {"url": endpoint, "endpoint": settings.s3.endpoint}


def _server(settings: Settings) -> tuple[str | None, dict[str, Any]]:
    problem, details = _nats(settings)
    if problem is not None:
        return f"unreachable without NATS: {problem}", {}
    try:
        from labkit.classroom.learner import current_login

        login = current_login()
    except Exception as exc:
        return f"cannot be asked without your login ({exc})", {}
    answered = _in_thread(_echo_probe(login.nats.creds, details["urls"], login.user_id))
    if answered is not None:
        return f"the application server did not answer your echo ({answered})", {}
    return None, {"url": details["url"], "checked_with": f"{login.user_id}.echo"}


async def _echo_probe(creds: str, servers: list[str], user: str) -> str | None:
    """None when the application server answers `<user>.echo`, else what went wrong."""
    from labkit.client import connect_as
    from labkit.labs.echo import send_echo

    try:
        nc = await connect_as(creds, servers=servers, allow_reconnect=False)
    except Exception as exc:
        return f"cannot connect: {type(exc).__name__}: {exc}"
    try:
        await send_echo(nc, user, "classroom check", timeout=CHECK_TIMEOUT)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    finally:
        await nc.close()
    return None


def _in_thread(coroutine: Any) -> str | None:
    """Run `coroutine` to its end on a loop of its own (a kernel's loop is already busy)."""
    result: list[str | None] = []

    def run() -> None:
        result.append(asyncio.run(coroutine))

    worker = threading.Thread(target=run, name="labkit-shared-check", daemon=True)
    worker.start()
    worker.join()
    return result[0] if result else "the check itself failed"

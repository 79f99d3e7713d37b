"""Where a notebook runs: alone on the learner's own stack, or in a class.

In classroom mode (`LABKIT_CLASSROOM=1`, set by the class's spawner) the learner
works on the class's shared stack, already logged in: the notebooks take the login
from the learner file (`current_login()`), never register a second account, and
start none of the shared services. What a learner may not do there (mint
credentials, run an observer, a cluster or a server of their own) runs on a private
*sandbox*: a stack of their own in `<LABKIT_HOME>/sandbox`, on free loopback ports,
inside their own server.

Alone, everything here does what the notebooks always did.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from nats.aio.client import Client

from labkit.auth.client import AuthClient, Login
from labkit.classroom.learner import current_login
from labkit.errors import LabkitError
from labkit.settings import PORT_SETTINGS, Settings

SANDBOX_DIR = "sandbox"

# The settings that point a kernel at a shared stack: a sandbox drops them all.
SHARED_ENV = (
    "LABKIT_CLASSROOM",
    "LABKIT_NATS_URL",
    "LABKIT_NATS_WS_URL",
    "LABKIT_AUTH_URL",
    "LABKIT_S3_ENDPOINT",
    "LABKIT_NSC_SERVICE_URL",
)
# A sandbox takes free ports: the learner's server may run next to others.
SANDBOX_PORTS = PORT_SETTINGS

# Which notebooks run on the sandbox as a whole (they mint, stop or cluster things),
# and the one sentence each notebook says about where its parts run in a class.
WHOLE_SANDBOX = {"00", "01", "02", "07", "08", "09"}
WHERE = {
    "00": "the status panel starts and stops components, so this notebook drives a private "
    "sandbox stack in your own server; the class's shared stack is the instructor's",
    "01": "minting an operator, an account and a user needs the stack's keys, so this "
    "notebook runs on a private sandbox stack in your own server, not the shared one",
    "02": "registering, logging in and out alice and bob happens on a private sandbox in "
    "your own server; the last section proves on the shared stack that you cannot read "
    "a real classmate's inbox",
    "03": "your login, the echoes, your tap and the observer (it reads only what your own "
    "credentials may) use the class's shared stack; your own shout server and the "
    "exercises need the stack's keys, so they run on a private sandbox in your own server",
    "04": "your login, the caching echo, its tap and the observer (it reads only what your "
    "own credentials may) use the class's shared stack; the exercises run on a private "
    "sandbox in your own server",
    "05": "you chat with a real classmate on the class's shared stack and try to speak as "
    "them (the observer reads only what your own credentials may); the exercises run on "
    "a private sandbox in your own server",
    "06": "your login, your files and the observer (it reads only what your own credentials "
    "may) use the class's shared stack and object store; the exercises run on a private "
    "sandbox in your own server",
    "07": "the persistence lab reads the stream as the application server does and logs "
    "its learner out and in, so this notebook runs on a private sandbox stack in your "
    "own server, with learners of its own",
    "08": "a cluster of your own needs the stack's keys and free ports, so this notebook "
    "runs on a private sandbox stack in your own server, not the shared one",
    "09": "the page chats with a second learner of this notebook and logs you out at the "
    "end, so it runs on a private sandbox stack in your own server (its WebSocket port is "
    "on your server's loopback: a browser reaches it only where that port is forwarded)",
}


# Each learner id's sandbox side (own_server_side), kept for a cell that runs again.
_SANDBOX_SIDES: dict[str, tuple[Settings, Client, Any]] = {}
# The shared stack's settings a kernel had before use_sandbox() moved it to the sandbox.
_SHARED_ENV_SAVED: dict[str, str] = {}


def is_classroom(settings: Settings | None = None) -> bool:
    """True when the kernel works on a class's shared stack (`LABKIT_CLASSROOM=1`)."""
    return (settings or Settings()).classroom


def in_a_class() -> bool:
    """True in a class, even after `use_sandbox` moved this kernel to the sandbox."""
    return is_classroom() or bool(_SHARED_ENV_SAVED)


def own_share(subjects: list[str], user: str) -> list[str]:
    """The part of `subjects` a learner's own credentials may read: theirs, and their inbox.

    `*.echo` becomes `<user>.echo`, `_INBOX.>` becomes `_INBOX.<user>.>`; a subject of
    another user, or one no learner may read (`persist.>`), is left out.
    """
    own: list[str] = []
    for subject in subjects:
        first, _, rest = subject.partition(".")
        if first in ("*", user):
            narrowed = f"{user}.{rest}" if rest else user
        elif first == ">":
            own += [f"{user}.>", f"_INBOX.{user}.>"]
            continue
        elif first == "_INBOX" and rest.partition(".")[0] in ("*", ">", user):
            narrowed = f"_INBOX.{user}.>"
        else:
            continue
        if narrowed not in own:
            own.append(narrowed)
    return own


def learner_login(auth: AuthClient, email: str, password: str) -> Login:
    """The notebook's learner: the class's login in a class, else `email` registered now.

    Alone, it registers `email` and logs it in, as the notebooks always did.
    """
    if is_classroom():
        return current_login()
    auth.register(email, password)
    return auth.login(email, password)


def sandbox_home(settings: Settings | None = None) -> Path:
    """The private sandbox's data directory: `<LABKIT_HOME>/sandbox`."""
    home = (settings or Settings()).home
    return home if home.name == SANDBOX_DIR else home / SANDBOX_DIR


def sandbox_settings(settings: Settings | None = None) -> Settings:
    """Settings of the learner's private sandbox (alone: the settings as they are).

    A data directory of its own, free loopback ports, and none of the shared stack's
    endpoints, so everything in it is started, owned and stopped by this kernel.
    """
    settings = settings or Settings()
    if not settings.classroom:
        return settings
    return Settings(
        home=sandbox_home(settings),
        classroom=False,
        nats={"port": 0, "monitor_port": 0, "cluster_port": 0, "ws_port": 0},
        nsc={"service_port": 0},
        auth={"port": 0},
        s3={"port": 0},
        _env_prefix="LABKIT_SANDBOX_",
    )


def ensure_sandbox(*components: str) -> Settings:
    """The private sandbox with `components` running (started by this kernel); its settings."""
    from labkit.stack import Stack

    settings = sandbox_settings()
    stack = Stack(settings)
    for name, status in stack.ensure(*components).items():
        if not status.running:
            raise LabkitError(
                f"your private sandbox's {name} is {status.state}; its log ends:\n"
                f"{stack.log_tail(name)}\nrun this cell again"
            )
    return settings


def use_sandbox(notebook: str) -> bool:
    """Point this kernel at the private sandbox when `notebook` runs there as a whole.

    In a class, notebooks that mint credentials, stop components or run a cluster (see
    WHOLE_SANDBOX) change this kernel's environment once: every `Settings()` after it
    names the sandbox (its data dir, free ports, no shared endpoint). Alone, or for
    another notebook, nothing changes. Returns True when the kernel now uses the sandbox.
    """
    if notebook not in WHOLE_SANDBOX:
        return False
    settings = Settings()
    if not settings.classroom:
        return False
    home = sandbox_home(settings)
    for name in SHARED_ENV:
        value = os.environ.pop(name, None)
        if value is not None:
            _SHARED_ENV_SAVED[name] = value
    for name in SANDBOX_PORTS:
        os.environ[f"LABKIT_{name}"] = "0"
    os.environ["LABKIT_HOME"] = str(home)
    return True


def where_this_runs(notebook: str) -> str:
    """The sentence a notebook shows about where its parts run (alone or in a class).

    In a class, a notebook that runs on the sandbox as a whole moves this kernel there
    first (`use_sandbox`).
    """
    use_sandbox(notebook)
    if not in_a_class():
        return "Alone: every part of this notebook runs on your own stack."
    return f"In a class: {WHERE[notebook]}."


async def own_server_side(nc: Client, me: str, tap: Any) -> tuple[Settings, Client, Any]:
    """Where the notebook's own `Server` runs, and how to reach it: `(settings, nc, tap)`.

    Alone: the stack's settings, the learner's connection and tap, unchanged. In a class a
    server of one's own needs the stack's keys, so it runs on the private sandbox; the
    learner's requests to it go over a sandbox connection with the same user id (creds
    from the sandbox's own NSC store), watched by a tap of its own, shown here.
    """
    if not is_classroom():
        return Settings(), nc, tap
    from labkit.client import connect_as
    from labkit.nsc.wrapper import Nsc
    from labkit.widgets.labs import WireTap

    settings = ensure_sandbox("nats", "nsc")
    kept = _SANDBOX_SIDES.get(me)
    if kept is not None and kept[1].is_connected:  # the cell runs again: the same side
        return kept
    creds = Nsc.from_settings(settings).create_user(me).creds
    sandbox_nc = await connect_as(creds, settings=settings, name=f"sandbox twin of {me}")
    sandbox_tap = WireTap(
        sandbox_nc,
        [f"{me}.>", f"_INBOX.{me}.>"],
        title="your subjects on your private sandbox (where your own server runs)",
    )
    await sandbox_tap.start()
    _display(sandbox_tap)
    _SANDBOX_SIDES[me] = (settings, sandbox_nc, sandbox_tap)
    return settings, sandbox_nc, sandbox_tap


def _display(*objects: Any) -> None:
    from IPython.display import display

    display(*objects)  # type: ignore[no-untyped-call]

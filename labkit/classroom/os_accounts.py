"""One OS account per learner: the name derived from the email, created and removed by root.

Isolation between learners is the kernel's: each single-user server runs as its
learner's own uid, with a 0700 home, so alice's kernel cannot read bob's files, his
/proc/<pid>/environ, or his home. Only accounts labkit made (their comment field says
so) are ever removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError

ACCOUNT_COMMENT = "labkit learner"
DEFAULT_PREFIX = "lk-"
DEFAULT_HOME_BASE = Path("/home")
# useradd's limit is 32 characters; prefix + 12 of the local part + "-" + 8 of hash fits.
_LOCAL_PART_CHARS = 12
_HASH_CHARS = 8
_LOCKED_RETRIES = 8
_accounts_lock = threading.Lock()
_PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,9}$")


class AccountError(LabkitError):
    """A learner's OS account cannot be made, found or removed."""


@dataclass(frozen=True)
class LearnerAccount:
    """A learner's OS account: its name, ids and home."""

    name: str
    uid: int
    gid: int
    home: Path


def account_name(email: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The OS user name for `email`: `<prefix><local part>-<hash>`, safe and unique.

    The local part keeps only a-z and 0-9 (an email may hold characters no user name
    may), and the hash of the whole lower-cased email keeps two emails with the same
    letters apart (`a.b@x` and `ab@x`, `ab@y`).
    """
    check_prefix(prefix)
    email = email.strip().lower()
    if "@" not in email:
        raise AccountError(f"{email!r} is not an email address")
    local = re.sub(r"[^a-z0-9]", "", email.split("@", 1)[0])[:_LOCAL_PART_CHARS]
    digest = hashlib.sha256(email.encode()).hexdigest()[:_HASH_CHARS]
    return f"{prefix}{local}-{digest}" if local else f"{prefix}{digest}"


def check_prefix(prefix: str) -> str:
    """`prefix` when it can start a user name (a-z first, then a-z, 0-9, -; up to 10)."""
    if not _PREFIX_PATTERN.match(prefix):
        raise AccountError(
            f"account prefix {prefix!r} is not usable: a lower-case letter first, then "
            "up to 9 of a-z, 0-9 and -, e.g. lk-"
        )
    return prefix


def find_account(name: str) -> LearnerAccount | None:
    """The account called `name`, or None when there is none."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    return LearnerAccount(entry.pw_name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir))


def ensure_account(email: str, prefix: str, home_base: Path) -> LearnerAccount:
    """The learner's account, created (root only) with a private home when missing."""
    with _accounts_lock:  # two first logins at once: one useradd at a time
        return _ensure_account(email, prefix, home_base)


def _ensure_account(email: str, prefix: str, home_base: Path) -> LearnerAccount:
    name = account_name(email, prefix)
    account = find_account(name)
    if account is None:
        if os.geteuid() != 0:
            raise AccountError(
                f"cannot create the OS account {name} for {email}: the hub must run as root"
            )
        home = home_base / name
        _run(
            [
                "useradd",
                "--create-home",
                "--home-dir",
                str(home),
                "--user-group",
                "--shell",
                "/bin/bash",
                "--comment",
                f"{ACCOUNT_COMMENT} {email}",
                name,
            ],
            f"create the OS account {name} for {email}",
        )
        account = find_account(name)
        if account is None:
            raise AccountError(f"useradd said it made {name}, but it is not there")
    elif not is_labkit_account(name):
        raise AccountError(
            f"the OS account {name} exists and was not made by labkit; choose another "
            "prefix (LABKIT_CLASSROOM_ACCOUNT_PREFIX)"
        )
    # Private whatever useradd's defaults (HOME_MODE, UMASK) say.
    os.chmod(account.home, 0o700)
    return account


def is_labkit_account(name: str) -> bool:
    """True for an account labkit created (its comment field says so)."""
    try:
        return pwd.getpwnam(name).pw_gecos.startswith(ACCOUNT_COMMENT)
    except KeyError:
        return False


def labkit_accounts(prefix: str) -> list[str]:
    """The names of the accounts labkit created with `prefix`."""
    check_prefix(prefix)
    return sorted(
        entry.pw_name
        for entry in pwd.getpwall()
        if entry.pw_name.startswith(prefix) and entry.pw_gecos.startswith(ACCOUNT_COMMENT)
    )


def processes_of(name: str) -> list[int]:
    """The pids of what runs as the OS account `name` now (none if it does not exist).

    Zombies are left out: they hold nothing, and only their parent can reap them.
    """
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):  # (gone while we looked)
            continue
        if stat[stat.rindex(")") + 2 :].split()[0] != "Z":
            found.append(int(entry.name))
    return found


def stop_processes_of(name: str, timeout: float = 5.0) -> list[int]:
    """SIGTERM what still runs as the labkit account `name`, SIGKILL it after `timeout`.

    A learner's kernels can outlive their server when the hub had to kill it; they run
    as the learner's own account, which the classroom created: nothing else runs as it.
    Returns the pids found running.
    """
    if not is_labkit_account(name):
        raise AccountError(f"{name} is not an account labkit created; left alone")
    found = running = processes_of(name)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while (running := processes_of(name)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not running:
            break
    return found


def remove_account(name: str) -> None:
    """Remove a labkit account and its home (its processes must have stopped)."""
    if not is_labkit_account(name):
        raise AccountError(f"{name} is not an account labkit created; left alone")
    # userdel's 12: "could not remove the mail spool", which useradd never made.
    _run(["userdel", "--remove", name], f"remove the OS account {name}", also_fine=(12,))


def _run(argv: list[str], what: str, *, also_fine: tuple[int, ...] = ()) -> None:
    for attempt in range(_LOCKED_RETRIES):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        # Another useradd/userdel on the machine holds /etc/passwd's lock; it passes.
        if "try again later" not in done.stderr:
            break
        time.sleep(0.1 * (attempt + 1))
    if done.returncode != 0 and done.returncode not in also_fine:
        detail = (done.stderr or done.stdout).strip()
        raise AccountError(f"could not {what}: {argv[0]} exited {done.returncode}: {detail}")

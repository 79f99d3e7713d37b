"""A throwaway PostgreSQL server for tests that must run against a real database.

`throwaway_postgres()` creates a fresh cluster in a temporary directory (initdb,
trust authentication, UTF8), starts it on a free port listening on 127.0.0.1
only, creates the database `labkit_test` and yields its SQLAlchemy URL. On exit
the server is stopped and the directory removed.

initdb and postgres refuse to run as root: when the tests run as root (CI, the
containers), the server runs as the `postgres` OS user created by the Debian
package; otherwise as the current user.

The `postgres_url` fixture wraps it for a whole test session. Import it in the
conftest.py of the tests that need it:

    from tests.postgres import postgres_url  # noqa: F401

It skips those tests when PostgreSQL is not installed, except on CI (the `CI`
environment variable set, e.g. `CI=true`), where they must run and fail instead.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

DATABASE = "labkit_test"
SUPERUSER = "postgres"  # the database superuser initdb creates (-U)
OS_USER = "postgres"  # the OS user the server runs as when the tests run as root
PG_LIB = Path("/usr/lib/postgresql")  # Debian/Ubuntu: one <version>/bin per installed server
_TOOLS = ("initdb", "pg_ctl", "postgres", "createdb")
_START_ATTEMPTS = 3  # a free port may be taken between choosing it and binding it


class PostgresUnavailable(Exception):
    """PostgreSQL cannot run here (not installed, no `postgres` user): skip, or fail on CI."""


class PostgresError(RuntimeError):
    """PostgreSQL is installed but failed to initialise, start or create the database."""


def find_bindir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin with the server tools.

    Else `pg_config --bindir` (Debian's pg_config comes with libpq-dev, other
    systems' with the server).
    """
    candidates: list[tuple[tuple[int, ...], Path]] = []
    for bindir in PG_LIB.glob("*/bin"):
        version = bindir.parent.name
        if re.fullmatch(r"\d+(\.\d+)*", version) and _has_tools(bindir):
            candidates.append((tuple(int(part) for part in version.split(".")), bindir))
    if candidates:
        return max(candidates)[1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        bindir = Path(result.stdout.strip())
        if result.returncode == 0 and _has_tools(bindir):
            return bindir
    raise PostgresUnavailable(
        f"PostgreSQL server binaries ({', '.join(_TOOLS)}) not found under "
        f"{PG_LIB}/*/bin or `pg_config --bindir`: install the server, "
        "e.g. `apt-get install postgresql`"
    )


def _has_tools(bindir: Path) -> bool:
    return all(os.access(bindir / tool, os.X_OK) for tool in _TOOLS)


def _server_user() -> pwd.struct_passwd | None:
    """The OS user to run initdb/postgres as: None for the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"the tests run as root, which initdb/postgres refuse, and there is no "
            f"{OS_USER!r} OS user to run them as (the Debian postgresql package creates it)"
        ) from None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env() -> dict[str, str]:
    """This environment without PG* variables (PGDATA, PGPORT, ... would override ours)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"  # stable, untranslated messages from the tools
    return env


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Run a fresh PostgreSQL server; yield `postgresql+psycopg://postgres@127.0.0.1:PORT/labkit_test`.

    Raises PostgresUnavailable when the binaries or the `postgres` OS user are
    missing, PostgresError when they are there but the server does not come up.
    """
    bindir = find_bindir()
    user = _server_user()
    env = _clean_env()

    root = Path(tempfile.mkdtemp(prefix="labkit-postgres-"))
    data, sockets, log = root / "data", root / "sockets", root / "postgres.log"

    def run(*args: str | Path, as_server: bool = True) -> subprocess.CompletedProcess[str]:
        as_user = user if as_server else None
        return subprocess.run(
            [str(arg) for arg in args],
            cwd=root,  # the server user may not be allowed into the current directory
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            user=as_user.pw_uid if as_user else None,
            group=as_user.pw_gid if as_user else None,
            extra_groups=[] if as_user else None,  # drop root's supplementary groups
        )

    def check(result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            raise PostgresError(
                f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}"
                f"\n--- server log (tail) ---\n{_tail(log)}"
            )

    try:
        sockets.mkdir(mode=0o700)
        if user is not None:
            for path in (root, sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        check(
            run(
                bindir / "initdb",
                "-D", data,
                "-U", SUPERUSER,
                "-A", "trust",
                "-E", "UTF8",
                "--no-locale",  # C collation: byte order, like SQLite's default
                "--no-sync",
            ),
            "initdb",
        )  # fmt: skip
        for attempt in range(1, _START_ATTEMPTS + 1):
            port = _free_port()
            options = " ".join(
                [
                    f"-p {port}",
                    f"-k {shlex.quote(str(sockets))}",
                    "-c listen_addresses=127.0.0.1",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c shared_buffers=16MB",
                    "-c max_connections=50",
                ]
            )
            result = run(
                bindir / "pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", log, "-o", options
            )
            if result.returncode == 0:
                break
            if attempt == _START_ATTEMPTS or "could not bind" not in _tail(log):
                check(result, "pg_ctl start")
        check(
            run(
                bindir / "createdb",
                "-h", "127.0.0.1",
                "-p", str(port),
                "-U", SUPERUSER,
                DATABASE,
                as_server=False,
            ),
            "createdb",
        )  # fmt: skip
        yield f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
    finally:
        try:
            if (data / "postmaster.pid").exists():  # also after a failed or timed-out start
                _stop(run, bindir, data)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def _stop(run: Callable[..., subprocess.CompletedProcess[str]], bindir: Path, data: Path) -> None:
    """pg_ctl stop -m fast; if that fails, immediate; if that fails, kill the postmaster."""
    for mode in ("fast", "immediate"):
        if run(bindir / "pg_ctl", "stop", "-m", mode, "-w", "-t", "30", "-D", data).returncode == 0:
            return
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        # Only if that pid is still our postmaster (not a stale file, not a reused pid).
        if str(data).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)  # let it go before its data directory is removed


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a throwaway PostgreSQL database, shared by the whole session."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_postgres())
        except PostgresUnavailable as exc:
            if _on_ci():
                pytest.fail(f"PostgreSQL is required on CI: {exc}", pytrace=False)
            pytest.skip(f"PostgreSQL not available: {exc}")
        yield url

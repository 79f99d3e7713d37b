"""One JupyterLab and one headless Chromium for all the browser tests of a module.

They need Debian's chromium (`sudo apt-get install chromium`) at /usr/bin/chromium,
driven by the `playwright` package (no browser download). Without it they skip, except
under CI (env CI set), where a missing browser is a failure: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.jupyter import NOTEBOOKS, SCREENSHOTS, JupyterLab

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.is_file():
        return (
            f"no {CHROMIUM}: the browser tests need Debian's chromium "
            "(sudo apt-get install chromium)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -r requirements.txt)"
    return None


@pytest.fixture(scope="module")
def lab_settings() -> dict[str, dict[str, Any]]:
    """JupyterLab user settings on top of jupyter.LAB_SETTINGS; a test module may override it."""
    return {}


@pytest.fixture(scope="module")
def lab(
    request: pytest.FixtureRequest, lab_settings: dict[str, dict[str, Any]]
) -> Iterator[JupyterLab]:
    """A JupyterLab on loopback serving a copy of notebooks/, stopped with all it started.

    Its log is kept as build/screenshots/jupyterlab-<test module>.log.
    """
    reason = _missing()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI must run the browser tests, but {reason}", pytrace=False)
        pytest.skip(reason)
    workdir = Path(tempfile.mkdtemp(prefix="labkit-browser-"))
    server = JupyterLab(workdir, NOTEBOOKS, settings=lab_settings)
    module = request.module.__name__.rsplit(".", 1)[-1]
    try:
        server.start()
        yield server
    finally:
        leftovers = server.stop()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        if server.log_path.exists():
            shutil.copyfile(server.log_path, SCREENSHOTS / f"jupyterlab-{module}.log")
        shutil.rmtree(workdir, ignore_errors=True)
    assert not leftovers, f"processes outlived JupyterLab (now killed): {leftovers}"


@pytest.fixture(scope="module")
def page(request: pytest.FixtureRequest, lab: JupyterLab) -> Iterator[Any]:
    """One headless Chromium page, logged in to `lab`.

    What the page logs (its console, and errors nothing caught) is kept as
    build/screenshots/console-<test module>.log, each line with the seconds since start.
    """
    from playwright.sync_api import sync_playwright

    from tests.browser.notebook_page import VIEWPORT

    module = request.module.__name__.rsplit(".", 1)[-1]
    console: list[str] = []
    started = time.monotonic()

    def note(kind: str, text: str) -> None:
        console.append(f"{time.monotonic() - started:8.2f} {kind}: {text}")

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(30_000)
            page.on("console", lambda message: note(message.type, message.text))
            page.on("pageerror", lambda error: note("pageerror", str(error)))
            yield page
        finally:
            browser.close()
    finally:
        playwright.stop()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"console-{module}.log").write_text("\n".join(console) + "\n")


# A Run All in Chromium whose cells never settle: seen in 06_sending_files, twice in
# about eight full runs, never alone. The page kept one cell at [*] ("busy") while the
# server said the kernel had gone idle seconds after it started and the later cells had
# run: the page missed the end of one cell. Such a run gets one more try, on a fresh page
# and kernel (NotebookPage.open); any other failure, a stuck cell's error output
# included, fails at once.
STUCK_RUN_ALL = r"waited \d+ s for its cells to finish"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.flaky(reruns=1, only_rerun=[STUCK_RUN_ALL]))

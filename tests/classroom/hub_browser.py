"""Headless Chromium in a classroom: people logging in through the hub's page, each in
a browser context of their own (their own cookies), and a learner's JupyterLab behind
the hub driven with tests/browser's NotebookPage.

Debian's /usr/bin/chromium driven by playwright, as tests/browser does: without it the
tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, _missing, in_ci
from tests.browser.jupyter import SCREENSHOTS
from tests.browser.notebook_page import VIEWPORT, NotebookPage
from tests.classroom.hub_fixtures import SPAWN_WAIT_SECONDS, ClassroomHub


@dataclass
class Chromium:
    """One headless Chromium; `person()` opens a context (a person's own cookies)."""

    browser: Any
    started: float = field(default_factory=time.monotonic)
    console: list[str] = field(default_factory=list)

    def person(self, who: str) -> Any:
        """A page in a fresh browser context; what its pages log is kept under `who`."""
        context = self.browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("console", lambda message: self._note(who, message.type, message.text))
        page.on("pageerror", lambda error: self._note(who, "pageerror", str(error)))
        return page

    def _note(self, who: str, kind: str, text: str) -> None:
        self.console.append(f"{time.monotonic() - self.started:8.2f} {who} {kind}: {text}")


@pytest.fixture
def chromium(request: pytest.FixtureRequest) -> Iterator[Chromium]:
    """Headless Chromium for one test; its pages' console is kept in build/screenshots/."""
    reason = _missing()
    if reason is not None:
        if in_ci():
            pytest.fail(f"CI must run the browser tests, but {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        running = Chromium(browser)
        try:
            yield running
        finally:
            browser.close()
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            log = SCREENSHOTS / f"console-{request.node.name}.log"
            log.write_text("\n".join(running.console) + "\n")
    finally:
        playwright.stop()


def submit_login(page: Any, hub: ClassroomHub, email: str, password: str, next_path: str) -> None:
    """Fill in and send the hub's login page, as a person does (no waiting for `next`)."""
    page.goto(f"{hub.url}/hub/login?next={next_path}")
    page.fill("input[name=username]", email)
    page.fill("input[name=password]", password)
    page.click("input[type=submit], button[type=submit]")


@dataclass
class LearnerLab:
    """A learner's JupyterLab behind the hub, as NotebookPage reads it: the page's own
    cookies for the server's API (GETs only: no token, no xsrf), the hub's log for why."""

    page: Any
    base_url: str
    hub: ClassroomHub

    @classmethod
    def after_login(cls, page: Any, hub: ClassroomHub) -> LearnerLab:
        """Wait until the hub has spawned the learner's server and the page shows it."""
        page.wait_for_url("**/lab**", timeout=SPAWN_WAIT_SECONDS * 1000)
        me = page.request.get(f"{hub.url}/hub/api/user")
        assert me.ok, f"the hub does not know this page's user: {me.status} {me.text()}"
        server = me.json()["servers"][""]
        assert server["ready"], f"the page shows JupyterLab, the hub says {server}"
        # JupyterLab has loaded once its menu bar is there (NotebookPage opens from it).
        page.locator(".lm-MenuBar-item", has_text="File").first.wait_for(timeout=60_000)
        return cls(page, hub.url + server["url"].rstrip("/"), hub)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}?reset"

    def api(self, method: str, path: str) -> Any:
        answer = self.page.request.fetch(f"{self.base_url}/api/{path}", method=method)
        assert answer.ok, f"{method} {path}: {answer.status} {answer.text()[:300]}"
        return answer.json() if answer.body() else None

    def notebook(self, name: str) -> dict[str, Any]:
        content: dict[str, Any] = self.api("GET", f"contents/{name}?content=1")["content"]
        return content

    def log_tail(self, lines: int = 40) -> str:
        """The end of the hub's log (the learners' servers write there too)."""
        try:
            text = self.hub.paths.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start_run_above(notebook: NotebookPage, index: int) -> None:
    """Select cell `index`; Run → Run All Above Selected Cell. Returns once the cells
    are queued (several learners' notebooks run at once; `wait_until_done()` waits)."""
    cell = notebook.panel.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputPrompt").click()
    cell.and_(notebook.page.locator(".jp-mod-active")).wait_for(timeout=5_000)
    notebook.menu("Run", "notebook:run-all-above")
    # JupyterLab marks the queued cells [*] at once.
    notebook.panel.locator(".jp-InputPrompt", has_text="[*]").first.wait_for(timeout=30_000)


def start_run_all(notebook: NotebookPage) -> None:
    """Run → Run All Cells, returning once the cells are queued (see start_run_above)."""
    notebook.menu("Run", "runmenu:run-all")
    notebook.panel.locator(".jp-InputPrompt", has_text="[*]").first.wait_for(timeout=30_000)


def type_into_cell(notebook: NotebookPage, index: int, code: str) -> None:
    """Replace cell `index`'s source by typing `code` key by key, as a learner does:
    each line without its indentation (the editor indents after a `:` itself; a
    dedent after a block is not handled: the caller compares what was saved)."""
    editor = notebook.panel.locator(".jp-Notebook .jp-Cell").nth(index).locator(".cm-content")
    editor.click()
    keyboard = notebook.page.keyboard
    keyboard.press("ControlOrMeta+a")
    keyboard.press("Delete")
    lines = code.strip("\n").split("\n")
    for number, line in enumerate(lines):
        if number:
            keyboard.press("Enter")
        keyboard.type(line.strip())


def save_screenshot(page: Any, name: str) -> Path:
    path = SCREENSHOTS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=True)
    return path

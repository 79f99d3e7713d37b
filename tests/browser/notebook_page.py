"""Drive one notebook in JupyterLab as a learner would, and read what the page shows.

Everything here goes through the page: the menus to run cells, the DOM to read prompts,
outputs and widgets. The one other source is the notebook as JupyterLab saves it, to
know which outputs are widgets (a widget that failed to render shows its text repr).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, ViewportSize

from tests.browser.jupyter import JupyterLab

VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
MAX_SCREENSHOT_HEIGHT = 16000  # Chromium's limit for one capture is 16384 px
RUN_TIMEOUT = 180.0  # seconds for one notebook's cells
WIDGET_TIMEOUT = 10.0  # seconds a widget may show "Loading widget..."
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
ERROR = "application/vnd.jupyter.error"
STDERR = "application/vnd.jupyter.stderr"
# What the widget renderer shows while it waits for a model, or when it cannot render one.
WIDGET_FAILURES = ("Loading widget...", "Error displaying widget", "Error rendering")
# An ipywidgets repr shown as text: `HBox(children=(Text(value=''...`, `Button(description=...`.
WIDGET_REPR = re.compile(
    r"\b(?:[HV]?Box|GridBox|Button|Text|Textarea|Output|HTML|Label|Image|"
    r"\w+(?:Progress|Slider|Text|Dropdown|Buttons|Upload))"
    r"\((?:children|value|description|layout|options|placeholder|min|max)="
)

_ACTIVE = ".jp-NotebookPanel:not(.lm-mod-hidden)"
_READ_CELLS = """
(panel) => [...panel.querySelectorAll('.jp-Notebook .jp-Cell')].map(cell => {
  const outputs = (selector) => [...cell.querySelectorAll(selector)].map(o => ({
    mime: o.getAttribute('data-mime-type') || '',
    widget: o.querySelector(':scope > .jupyter-widgets') !== null,
    text: o.textContent,
  }));
  return {
    code: cell.classList.contains('jp-CodeCell'),
    prompt: (cell.querySelector('.jp-InputPrompt')?.textContent || '').trim(),
    outputs: outputs('.jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output'),
    nested: outputs('.jp-Cell-outputArea .jp-OutputArea .jp-OutputArea-output'),
    source: (cell.querySelector('.cm-line')?.textContent || '').slice(0, 60),
  };
})
"""
_STATE = """
(panel) => ({
  kernel: panel.querySelector('.jp-KernelName')?.textContent,
  status: panel.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status'),
  running: [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .filter(p => p.textContent.includes('[*]')).length,
  prompts: [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent).join(' '),
})
"""
_LOADING = """
(panel) => [...panel.querySelectorAll('.jp-Cell-outputArea')]
  .some(area => area.textContent.includes('Loading widget...'))
"""
# The notebook index of each cell the page has attached (JupyterLab's data attribute).
_ATTACHED = """
(panel) => [...panel.querySelectorAll('.jp-Notebook .jp-Cell')]
  .map(cell => cell.dataset.windowedListIndex)
"""
_SCROLL_TO_END_AND_BACK = """
(panel) => {
  const outer = panel.querySelector('.jp-WindowedPanel-outer');
  const top = outer.scrollTop;
  outer.scrollTop = outer.scrollHeight;
  outer.scrollTop = top;
}
"""
ATTACH_TIMEOUT = 60.0  # seconds JupyterLab may take to attach a notebook's cells
_FULL_HEIGHT = """
(panel) => {
  const outer = panel.querySelector('.jp-WindowedPanel-outer');
  outer.scrollTop = 0;
  const box = outer.getBoundingClientRect();
  return Math.ceil(box.top + outer.scrollHeight + (window.innerHeight - box.bottom));
}
"""


@dataclass
class Cell:
    """A cell as the page shows it."""

    index: int
    code: bool
    prompt: str
    outputs: list[dict[str, Any]]
    nested: list[dict[str, Any]]  # outputs inside widgets (an Output widget's lines)
    source: str

    @property
    def ran(self) -> bool:
        return re.fullmatch(r"\[\d+\]:", self.prompt) is not None

    def __str__(self) -> str:
        return f"cell {self.index} ({self.prompt or 'markdown'} {self.source!r})"


class NotebookPage:
    """One notebook open in the page: open it, run it, read it, photograph it."""

    def __init__(self, page: Page, lab: JupyterLab, name: str) -> None:
        self.page = page
        self.lab = lab
        self.name = name
        self.panel = page.locator(_ACTIVE)

    def open(self) -> None:
        """Open the notebook in a tab of its own and wait for its kernel to be ready.

        The first one loads JupyterLab (`?reset`: no tabs restored from a workspace);
        later ones come from File → Open from Path…, without loading the page again.
        """
        tab = self.page.locator(".lm-TabBar-tab", has_text=self.name)
        if self.page.url.startswith(self.lab.base_url) and tab.count():
            # Open already: this is the one retry of a Run All that never settled
            # (conftest.STUCK_RUN_ALL). Its page still shows the stuck cells, so the
            # retry starts over: the old kernel shut down, JupyterLab loaded again.
            self._shut_down_kernel()
            self.page.once("dialog", lambda dialog: dialog.accept())  # "leave the page?"
            self.page.goto(self.lab.url(f"lab/tree/{self.name}"))
        elif not self.page.url.startswith(self.lab.base_url):
            self.page.goto(self.lab.url(f"lab/tree/{self.name}"))
        else:
            self.menu("File", "filebrowser:open-path")
            dialog = self.page.locator(".jp-Dialog")
            dialog.locator("input").fill(self.name)
            dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
            tab = self.page.locator(".jp-mod-current.lm-TabBar-tab", has_text=self.name)
            tab.wait_for()
        self.panel.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
        # The indicator says "idle" before there is a kernel ("No Kernel"), too.
        self._wait_for(
            lambda state: state["status"] == "idle" and state["kernel"] not in ("", "No Kernel"),
            60,
            "its kernel to be ready",
        )
        # JupyterLab attaches the cells in the background (idle time) after the kernel is
        # ready; a person waits for the notebook to appear before Run All. A Run All during
        # that attaching has been seen to leave the last cells unattached for good.
        self._wait_for_all_cells(len(self.lab.notebook(self.name)["cells"]), ATTACH_TIMEOUT)
        # Close the file browser: the notebook gets the page's width in the screenshots.
        sidebar = self.page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
        if sidebar.count():
            sidebar.first.click()

    def _shut_down_kernel(self) -> None:
        """End the sessions (and so the kernels) of this notebook on the server."""
        for session in self.lab.api("GET", "sessions"):
            if Path(session.get("path", "")).name == self.name:
                self.lab.api("DELETE", f"sessions/{session['id']}")

    def menu(self, menu: str, command: str) -> None:
        """Click a main menu item by its command id (`runmenu:run-all`)."""
        self.page.locator(".lm-MenuBar-item", has_text=re.compile(rf"^{menu}$")).click()
        self.page.locator(f'.lm-Menu-item[data-command="{command}"]').first.click()

    def run_all(self) -> None:
        """Run → Run All Cells, and wait until every cell has finished."""
        before = self._state()["prompts"]
        self.menu("Run", "runmenu:run-all")
        self._wait_until_started(before)
        self.wait_until_done()

    def restart_and_run_to(self, index: int) -> None:
        """Select cell `index`; Kernel → Restart Kernel and Run up to Selected Cell."""
        cell = self.panel.locator(".jp-Notebook .jp-Cell").nth(index)
        cell.locator(".jp-InputPrompt").click()
        cell.and_(self.page.locator(".jp-mod-active")).wait_for(timeout=5_000)
        before = self._state()["prompts"]
        self.menu("Kernel", "notebook:restart-and-run-to-selected")
        self._wait_until_started(before)
        self.wait_until_done()

    def _state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.panel.evaluate(_STATE)
        if state["status"] is None:
            raise AssertionError("no kernel execution indicator in the notebook toolbar")
        return state

    def _wait_for(self, done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done(state := self._state()):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.name}: waited {timeout:g} s for {what}\n{self._stuck(state)}"
                )
            time.sleep(0.25)

    def _stuck(self, state: dict[str, Any]) -> str:
        """What the page and the server show when a wait runs out: for the report."""
        cells = self.cells()
        running = [str(cell) for cell in cells if "*" in cell.prompt]
        # Every code cell's prompt, in order: whether the cells after a stuck one ran
        # ([n]), wait ([*]) or were dropped ([ ]) tells a lost message from a hung cell.
        prompts = " ".join(
            f"{cell.index}{cell.prompt.removesuffix(':')}" for cell in cells if cell.code
        )
        # The server's view of its kernels: idle there while the page shows [*] means a
        # message lost on the way to the page, busy there a cell that really still runs.
        try:
            kernels = [
                f"{kernel['id'][:8]} {kernel['execution_state']} since {kernel['last_activity']}"
                for kernel in self.lab.api("GET", "kernels")
            ]
        except Exception as exc:  # a report of a failure must not fail itself
            kernels = [f"(the server did not say: {exc})"]
        return (
            f"the page: kernel {state['kernel']!r} {state['status']}, cells still [*]: "
            f"{running}\nthe prompts: {prompts}\nthe server's kernels: {kernels}\n"
            f"JupyterLab's log ends:\n{self.lab.log_tail(25)}"
        )

    def _wait_until_started(self, prompts_before: str) -> None:
        # JupyterLab marks queued cells [*] at once: no [*] means the command did nothing,
        # unless the cells already ran between two looks (their prompts changed).
        self._wait_for(
            lambda state: (
                state["running"] or state["status"] != "idle" or state["prompts"] != prompts_before
            ),
            10,
            "cells to start",
        )

    def wait_until_done(self, timeout: float = RUN_TIMEOUT) -> None:
        """Wait until the kernel is idle and no cell shows [*], twice in a row."""
        quiet = 0

        def settled(state: dict[str, Any]) -> bool:
            nonlocal quiet
            quiet = quiet + 1 if state["status"] == "idle" and not state["running"] else 0
            return quiet >= 2

        self._wait_for(settled, timeout, "its cells to finish")

    def cells(self) -> list[Cell]:
        found = self.panel.evaluate(_READ_CELLS)
        return [Cell(index, **cell) for index, cell in enumerate(found)]

    def _wait_for_all_cells(self, count: int, timeout: float) -> list[Cell]:
        """The page's cells once it shows `count` of them (or what it shows at `timeout`).

        Half way, the notebook is scrolled to its end and back, as a person looking for
        the missing cells would: that asks JupyterLab to lay them out again.
        """
        deadline = time.monotonic() + timeout
        nudge = time.monotonic() + timeout / 2
        while len(cells := self.cells()) != count and time.monotonic() < deadline:
            if nudge and time.monotonic() > nudge:
                self.panel.evaluate(_SCROLL_TO_END_AND_BACK)
                nudge = 0.0
            time.sleep(0.25)
        return cells

    def save(self) -> dict[str, Any]:
        """File → Save Notebook; returns the notebook as JupyterLab saved it."""
        self.menu("File", "docmanager:save")
        dirty = self.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty")
        dirty.wait_for(state="detached", timeout=10_000)
        return self.lab.notebook(self.name)

    def problems(self, upto: int | None = None) -> list[str]:
        """What a learner would see go wrong in cells 0..`upto` (default: all of them)."""
        saved = self.save()["cells"]
        deadline = time.monotonic() + WIDGET_TIMEOUT  # widgets render after the kernel idles
        while self.panel.evaluate(_LOADING) and time.monotonic() < deadline:
            time.sleep(0.25)
        cells = self._wait_for_all_cells(len(saved), WIDGET_TIMEOUT)
        if len(cells) != len(saved):
            shown = {int(index) for index in self.panel.evaluate(_ATTACHED)}
            missing = [index for index in range(len(saved)) if index not in shown]
            return [
                f"the page shows {len(cells)} cells, the notebook has {len(saved)} "
                f"(not attached: {missing})"
            ]
        last = len(cells) - 1 if upto is None else upto
        found = []
        for cell, model in zip(cells[: last + 1], saved[: last + 1], strict=True):
            if cell.code:
                found.extend(_cell_problems(cell, model))
        log = self.page.locator(".jp-LogConsoleStatusItem:not(.lm-mod-hidden)")
        if log.count():
            found.append(f"the log console has messages: {log.first.inner_text()!r}")
        return found

    def screenshot(self, path: Path) -> None:
        """The whole notebook in one image: the page made as tall as the notebook."""
        path.parent.mkdir(parents=True, exist_ok=True)
        height = max(self.panel.evaluate(_FULL_HEIGHT), VIEWPORT["height"])
        height = min(height, MAX_SCREENSHOT_HEIGHT)
        self.page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        try:
            self.page.wait_for_timeout(500)  # JupyterLab lays the panels out again
            self.panel.evaluate(_FULL_HEIGHT)  # and back at the top
            self.page.screenshot(path=path, full_page=True)
        finally:
            self.page.set_viewport_size(VIEWPORT)


def _cell_problems(cell: Cell, model: dict[str, Any]) -> list[str]:
    """A code cell that did not run, shows an error, or shows a widget that did not render."""
    found = [] if cell.ran else [f"{cell} did not run"]
    for output in cell.outputs + cell.nested:
        text = output["text"].strip()
        if output["mime"] == ERROR or (output["mime"] == STDERR and "Traceback" in text):
            found.append(f"{cell} shows an error:\n{text[-1500:]}")
        elif any(failure in text for failure in WIDGET_FAILURES):
            found.append(f"{cell} shows a widget that did not render: {text[:200]!r}")
    for output in cell.outputs:  # (a widget's own lines may be stderr on purpose)
        text = output["text"].strip()
        if output["mime"] == STDERR and "Traceback" not in text:
            found.append(f"{cell} writes to stderr: {text[:500]!r}")
        if output["mime"] == "text/plain" and WIDGET_REPR.search(text):
            found.append(f"{cell} shows a widget as text: {text[:200]!r}")
    # A widget the page cannot render falls back to its text/plain repr: count them.
    expected = sum(WIDGET_VIEW in output.get("data", {}) for output in model.get("outputs", []))
    rendered = sum(output["widget"] for output in cell.outputs)
    if rendered != expected:
        found.append(f"{cell}: {expected} widget output(s), {rendered} rendered as widgets")
    return found

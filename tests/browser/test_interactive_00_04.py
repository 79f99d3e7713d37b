"""Notebooks 00-04 as a person uses them in JupyterLab: every panel clicked, then the cells.

Each test opens a notebook in headless Chromium, runs it up to a panel, drives the
panel through the page (types, presses Enter, clicks Send, Stop, Start, Log, Register,
Log in, Log out), runs more cells, clicks again, then runs the rest, and asserts that no
cell anywhere shows an error. A click in the browser reaches the kernel on a subshell
thread with its own event loop, unlike a click made from code: only these tests prove
that the panels hand their work to the cells' loop. A layout test measures the status
panel's buttons (no overlap, no clipped label) with and without the sidebar.
Screenshots go to build/screenshots/<notebook>-interactive.png.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

import pytest

from tests.browser.jupyter import NOTEBOOKS, SCREENSHOTS, JupyterLab

pytestmark = pytest.mark.browser

STATUS = "00_start_here.ipynb"
NSC = "01_nats_and_nsc.ipynb"
AUTH = "02_auth_service.ipynb"
ECHO = "03_identified_echo.ipynb"
CACHE = "04_caching_echo.ipynb"
UI_TIMEOUT = 20_000  # ms for something clicked to show in the page


# --- a JupyterLab that sends widget messages over kernel subshells -----------------------

# JupyterLab's default, written out: without the setting in the user's settings, this
# JupyterLab (4.6) sent every widget message to the main shell here; with it, from the
# second message of a widget on, to a subshell thread with an event loop of its own (as
# seen in a learner's JupyterLab). The panels must work both ways.
SUBSHELL_SETTINGS = {
    "@jupyterlab/apputils-extension/kernels-settings": {"commsOverSubshells": "perCommTarget"}
}


@pytest.fixture(scope="module")
def lab_settings() -> dict[str, dict[str, Any]]:
    """The `lab` fixture of tests/browser/conftest.py, with SUBSHELL_SETTINGS."""
    return SUBSHELL_SETTINGS


# --- driving a notebook -------------------------------------------------------------------


def _index(lab: JupyterLab, name: str, snippet: str) -> int:
    """The index of the one cell of `name` whose source holds `snippet`."""
    cells = lab.notebook(name)["cells"]
    found = [i for i, cell in enumerate(cells) if snippet in "".join(cell["source"])]
    assert len(found) == 1, f"{name}: {len(found)} cells hold {snippet!r}"
    return found[0]


def _prompts(notebook: Any) -> list[str]:
    return [cell.prompt for cell in notebook.cells()]


def _select(notebook: Any, index: int) -> None:
    cell = notebook.panel.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputPrompt").click()
    cell.and_(notebook.page.locator(".jp-mod-active")).wait_for(timeout=5_000)


def _run(notebook: Any, command: str, index: int, watched: int) -> None:
    """Select cell `index`, Run → `command`; wait until cell `watched` ran anew and all is idle."""
    before = _prompts(notebook)[watched]
    _select(notebook, index)
    notebook.menu("Run", command)
    deadline = time.monotonic() + 180
    while True:
        prompts = _prompts(notebook)
        ran = re.fullmatch(r"\[\d+\]:", prompts[watched]) and prompts[watched] != before
        if ran and "[*]:" not in prompts:
            notebook.wait_until_done()
            return
        if time.monotonic() > deadline:
            stuck = SCREENSHOTS / f"{notebook.name.removesuffix('.ipynb')}-stuck.png"
            notebook.page.screenshot(path=stuck)
            raise AssertionError(
                f"{notebook.name}: cell {watched} did not run (prompts {prompts}); see {stuck}"
            )
        time.sleep(0.2)


def run_cell(notebook: Any, index: int) -> None:
    """Run → Run Selected Cell (without advancing), as Ctrl+Enter does."""
    _run(notebook, "notebook:run-cell", index, index)


def run_range(notebook: Any, first: int, last: int) -> None:
    """Run cells `first`..`last` one by one, as Ctrl+Enter on each would."""
    cells = notebook.cells()
    for index in range(first, last + 1):
        if cells[index].code:
            run_cell(notebook, index)


def run_below(notebook: Any, index: int) -> None:
    """Run → Run Selected Cell and All Below."""
    last_code = max(i for i, cell in enumerate(notebook.cells()) if cell.code)
    _run(notebook, "notebook:run-all-below", index, last_code)


def open_to(page: Any, lab: JupyterLab, name: str, index: int) -> Any:
    """Open `name` and run cells 0..`index` in a fresh kernel; no errors so far."""
    from tests.browser.notebook_page import NotebookPage

    notebook = NotebookPage(page, lab, name)
    notebook.open()
    # Edit → Clear Outputs of All Cells: the prompts of the outputs kept in the file (the
    # checked ones) must not pass for cells that ran (see `_run`).
    notebook.menu("Edit", "editmenu:clear-all")
    notebook.panel.locator(".jp-OutputArea-output").first.wait_for(state="detached")
    notebook.restart_and_run_to(index)
    problems = notebook.problems(upto=index)
    assert not problems, f"{name} up to cell {index}:\n" + "\n".join(problems)
    return notebook


def finish(notebook: Any) -> None:
    """No error anywhere in the notebook; a screenshot either way."""
    try:
        problems = notebook.problems()
    finally:
        notebook.screenshot(SCREENSHOTS / f"{notebook.name.removesuffix('.ipynb')}-interactive.png")
    assert not problems, f"{notebook.name} after using its panels:\n" + "\n".join(problems)


def panel_titled(notebook: Any, title: str) -> Any:
    """The panel (a VBox) whose bold title is `title`."""
    from playwright.sync_api import expect

    heading = notebook.page.locator(".widget-html-content").get_by_text(title, exact=True)
    panel = notebook.panel.locator(".widget-vbox").filter(has=heading)
    expect(panel).to_have_count(1)
    return panel


def type_into(box: Any, text: str) -> None:
    box.click()
    box.fill("")
    box.press_sequentially(text)


def send_with_enter(panel: Any, text: str) -> None:
    box = panel.locator("input[type=text]")
    type_into(box, text)
    box.press("Enter")


def send_with_button(panel: Any, text: str) -> None:
    type_into(panel.locator("input[type=text]"), text)
    panel.get_by_role("button", name="Send").click()


def wait_for_count(panel: Any, text: str, count: int) -> None:
    """Wait until `text` shows `count` times in `panel` (each reply is one line)."""
    deadline = time.monotonic() + UI_TIMEOUT / 1000
    while panel.inner_text().count(text) < count:
        assert time.monotonic() < deadline, (
            f"expected {count} x {text!r} in the panel, it shows:\n{panel.inner_text()}"
        )
        time.sleep(0.2)


def expect_text(locator: Any, text: str | re.Pattern[str]) -> None:
    from playwright.sync_api import expect

    expect(locator).to_contain_text(text, timeout=UI_TIMEOUT)


# --- 00: the status panel ------------------------------------------------------------------


def _button_boxes(panel: Any) -> list[dict[str, Any]]:
    boxes: list[dict[str, Any]] = panel.locator("button").evaluate_all(
        """buttons => buttons.map(b => {
             const r = b.getBoundingClientRect();
             return {label: b.textContent.trim(), title: b.title, x: r.x, y: r.y,
                     w: r.width, h: r.height, clipped: b.scrollWidth > b.clientWidth + 1};
           })"""
    )
    return boxes


def _overlaps(boxes: list[dict[str, Any]]) -> list[str]:
    found = []
    for index, a in enumerate(boxes):
        for b in boxes[index + 1 :]:
            wide = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
            tall = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            if wide > 0.5 and tall > 0.5:
                found.append(f"{a['title'] or a['label']} overlaps {b['title'] or b['label']}")
    return found


def test_status_panel_buttons_never_overlap(lab: JupyterLab, page: Any) -> None:
    """Every button of the status panel whole and apart, with and without the sidebar."""
    panel_cell = _index(lab, STATUS, "panel = StackStatusPanel(stack)")
    notebook = open_to(page, lab, STATUS, panel_cell)
    panel = panel_titled(notebook, "labkit stack")
    sidebar_tab = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab").first
    for sidebar in ("closed", "open"):
        if sidebar == "open":
            sidebar_tab.click()  # the file browser, as JupyterLab opens by default
            page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current").wait_for()
            page.wait_for_timeout(500)  # the notebook lays itself out again
        panel.scroll_into_view_if_needed()
        boxes = _button_boxes(panel)
        assert len(boxes) >= 4 * 2 + 1, f"expected the rows' buttons, found {boxes}"
        assert not _overlaps(boxes), f"sidebar {sidebar}: " + "; ".join(_overlaps(boxes))
        clipped = [f"{b['title']}: {b['label']!r}" for b in boxes if b["clipped"]]
        assert not clipped, f"sidebar {sidebar}: labels cut off: {clipped}"
        page.screenshot(path=SCREENSHOTS / f"00_start_here-panel-sidebar-{sidebar}.png")
    sidebar_tab.click()  # closed again, as the other tests expect


def test_status_panel_clicked_then_the_cells(lab: JupyterLab, page: Any) -> None:
    panel_cell = _index(lab, STATUS, "panel = StackStatusPanel(stack)")
    notebook = open_to(page, lab, STATUS, panel_cell)
    panel = panel_titled(notebook, "labkit stack")

    panel.locator('button[title="stop nsc"]').click()
    expect_text(panel, "stopped nsc")
    panel.locator('button[title="start nsc"]').click()
    expect_text(panel, re.compile(r"started nsc in|nsc was already running"))
    panel.locator('button[title="the end of nsc\'s log"]').click()
    expect_text(panel, "the end of nsc.log")
    panel.locator('button[title="stop nats"]').click()
    expect_text(panel, "stopped nats, and nsc")
    # The next cells stop and start nsc from code: they need nats back, as a person would.
    panel.locator('button[title="start nats"]').click()
    expect_text(panel, "started nats, nsc in")
    run_below(notebook, panel_cell + 1)
    panel.locator('button[title="stop nsc, start it again"]').click()
    expect_text(panel, "restarted nsc")
    run_cell(notebook, len(notebook.cells()) - 1)  # the final check, after the clicks
    finish(notebook)


# --- 01: no panel; a person re-runs cells and the whole notebook ---------------------------


def test_nsc_lab_cells_run_again_and_again(lab: JupyterLab, page: Any) -> None:
    connect = _index(lab, NSC, "nc = await nats.connect(")
    notebook = open_to(page, lab, NSC, connect)
    run_cell(notebook, connect)  # connect again: keeps the connection
    run_below(notebook, connect + 1)
    refuse = _index(lab, NSC, "await nc.publish(forbidden_subject")
    run_cell(notebook, connect)  # after the close: connects anew
    run_cell(notebook, refuse)
    notebook.run_all()  # Run All once more in the same kernel
    finish(notebook)


# --- 02: the auth panel ----------------------------------------------------------------------


# Long (a JupyterLab driven by hand for half a minute): in `make soak`, which CI runs
# after `make test`, to keep `make test` under 15 minutes.
@pytest.mark.soak
def test_auth_panel_clicked_then_the_cells(lab: JupyterLab, page: Any) -> None:
    panel_cell = _index(lab, AUTH, "panel = AuthPanel()")
    notebook = open_to(page, lab, AUTH, panel_cell)
    panel = panel_titled(notebook, "labkit auth service")
    email, password = panel.locator("input[type=text]"), panel.locator("input[type=password]")

    panel.get_by_role("button", name="Register").click()
    expect_text(panel, "nothing sent: type email and password first")
    type_into(email, "notanemail")
    type_into(password, "correct horse battery")
    panel.get_by_role("button", name="Register").click()
    expect_text(panel, "could not register notanemail")
    me = f"learner+{secrets.token_hex(3)}@example.com"
    type_into(email, me)
    type_into(password, "correct horse battery")
    panel.get_by_role("button", name="Register").click()
    expect_text(panel, f"registered {me}")
    type_into(password, "correct horse battery")
    password.press("Enter")  # Enter logs in
    expect_text(panel, f"logged in as {me}")

    # Alice and bob registered, logged in (the panel shows bob) and connected by the cells,
    # refused on each other's subjects; then bob logged out by hand, before his cell does.
    observed = _index(lab, AUTH, "rows = await observer.wait_for(1")
    run_range(notebook, panel_cell + 1, observed)
    panel.get_by_role("button", name="Log out").click()
    expect_text(panel, "logged out bob+")
    type_into(email, me)
    type_into(password, "correct horse battery")
    panel.get_by_role("button", name="Log in").click()
    expect_text(panel, f"logged in as {me}")
    run_below(notebook, observed + 1)
    finish(notebook)


# --- 03: the echo panels -----------------------------------------------------------------------


# Long (a JupyterLab driven by hand for half a minute): in `make soak`, which CI runs
# after `make test`, to keep `make test` under 15 minutes.
@pytest.mark.soak
def test_echo_panels_used_by_hand_between_the_cells(lab: JupyterLab, page: Any) -> None:
    from playwright.sync_api import expect

    clicked_cell = _index(lab, ECHO, 'identified_panel.text.value = "clicked"')
    notebook = open_to(page, lab, ECHO, clicked_cell - 1)
    echo = panel_titled(notebook, "echo")
    identified = panel_titled(notebook, "identified echo")

    send_with_enter(echo, "typed, then Enter")
    expect_text(echo, "“typed, then Enter” -> echo typed, then Enter")
    send_with_button(identified, 'it\'s "quoted"')
    expect_text(identified, '“it\'s "quoted"” -> echo it\'s "quoted" from')
    expect(identified.locator("input[type=text]")).to_have_value("")
    identified.get_by_role("button", name="Send").click()  # nothing typed
    expect_text(identified, "nothing to send: type a message in the box first")

    # The cell that clicks from code and awaits the panel, right after browser clicks.
    run_cell(notebook, clicked_cell)
    send_with_button(identified, "between cells")
    expect_text(identified, "“between cells” -> echo between cells from")
    run_cell(notebook, clicked_cell)

    shout_cell = _index(lab, ECHO, "shout_panel = EchoPanel(send_shout")
    run_range(notebook, clicked_cell + 1, shout_cell)
    shout = panel_titled(notebook, "shout (served by this notebook)")
    for text in ("one", "two", "three"):
        send_with_enter(shout, text)
        expect_text(shout, f"“{text}” -> {text.upper()} from")
    send_with_button(shout, "   ")
    expect_text(shout, "nothing to send")
    run_below(notebook, shout_cell + 1)
    tap_text = notebook.panel.locator(".widget-html-content").filter(has_text="your subjects")
    expect(tap_text.first).to_be_visible()
    outputs = notebook.panel.locator(".jp-OutputArea").all_inner_texts()
    assert not [text for text in outputs if "\\'" in text], "quotes shown escaped somewhere"
    finish(notebook)


# --- 04: the cached echo panel -----------------------------------------------------------------


# Long (a JupyterLab driven by hand for half a minute): in `make soak`, which CI runs
# after `make test`, to keep `make test` under 15 minutes.
@pytest.mark.soak
def test_cached_echo_panel_used_by_hand_then_the_cells(lab: JupyterLab, page: Any) -> None:
    panel_cell = _index(lab, CACHE, "panel = EchoPanel(lambda text: send_cached_echo")
    notebook = open_to(page, lab, CACHE, panel_cell)
    panel = panel_titled(notebook, "cached echo")
    sends = ("cache me", "cache me", "hello cache")
    for index, text in enumerate(sends):
        (send_with_enter if index % 2 else send_with_button)(panel, text)
        wait_for_count(panel, " -> echo ", index + 1)
    first_check = _index(lab, CACHE, "first = await panel.send(hello)")
    run_cell(notebook, first_check)  # two sends of its own: 3 + 2 lines
    wait_for_count(panel, " -> echo ", len(sends) + 2)
    send_with_button(panel, "cache me")
    wait_for_count(panel, " -> echo ", len(sends) + 3)
    run_below(notebook, first_check + 1)
    finish(notebook)


# --- the cell loop: a click on a subshell thread, awaited by a cell ---------------------------

# Here a widget's state changes (a toggle, text typed) reach the kernel on a subshell
# thread, while custom messages (a Button's click, Enter) reach the main thread: a panel
# must be right for both. CellLoop is what the panels use to hand work to the cells' loop.
SUBSHELL_PROBE = [
    """import asyncio, threading
import ipywidgets as widgets
from labkit.widgets.callbacks import CellLoop

cell_loop = CellLoop()
toggled_on, ran_on = [], []


async def slow_work(value):
    ran_on.append(threading.current_thread().name)
    await asyncio.sleep(2)  # still running when the next cell awaits it


def toggled(change):
    toggled_on.append(threading.current_thread().name)
    cell_loop.submit(slow_work(change["new"]))


switch = widgets.ToggleButton(description="Switch")
switch.observe(toggled, "value")
widgets.VBox([widgets.HTML("<b>probe</b>"), switch])""",
    """await cell_loop.wait()
print("RESULT", {"toggled_on": toggled_on, "ran_on": ran_on})""",
]


def test_a_click_on_a_subshell_thread_is_awaited_by_the_next_cell(
    lab: JupyterLab, page: Any
) -> None:
    """A toggle arrives on a subshell thread; its work runs on the cells' loop, awaitable."""
    name = "subshell_probe.ipynb"  # a scratch notebook in the served copy
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"probe-{index}",
            "metadata": {},
            "outputs": [],
            "source": source,
        }
        for index, source in enumerate(SUBSHELL_PROBE)
    ]
    notebook_json = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (lab.root / name).write_text(json.dumps(notebook_json))
    notebook = open_to(page, lab, name, 0)
    switch = panel_titled(notebook, "probe").get_by_role("button", name="Switch")
    for _ in range(3):  # the widget's first message goes to the main shell
        switch.click()
        notebook.page.wait_for_timeout(300)
    run_cell(notebook, 1)  # awaits the work while the last is still sleeping
    finish(notebook)
    result = notebook.panel.locator(".jp-OutputArea-output").filter(has_text="RESULT")
    text = result.inner_text()
    assert "'ran_on': ['MainThread', 'MainThread', 'MainThread']" in text, text
    toggled_on = re.search(r"'toggled_on': \[([^\]]*)\]", text)
    assert toggled_on and "subshell" in toggled_on.group(1), (
        f"expected this JupyterLab to deliver a toggle on a subshell thread: {text}"
    )


def test_the_notebooks_of_this_file_exist() -> None:
    for name in (STATUS, NSC, AUTH, ECHO, CACHE):
        assert (NOTEBOOKS / name).is_file(), f"{name} is missing from notebooks/"

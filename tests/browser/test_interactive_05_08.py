"""Notebooks 05-08 used as a person uses them: panels clicked in the page between cells.

JupyterLab delivers a click in the browser on a kernel subshell's thread and loop,
which a click made from code (papermill, nbval) never does. So each test opens the
notebook in headless Chromium, runs it up to its panel, drives the panel through the
page (types, presses Enter or Send, toggles, uploads, slides), runs the checking cells,
uses the panel again, runs the rest, and then finds no error output anywhere.
Screenshots go to build/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser.jupyter import NOTEBOOKS, SCREENSHOTS, JupyterLab

pytestmark = pytest.mark.browser


def _notebook(page: Any, lab: JupyterLab, name: str) -> Any:
    from tests.browser.notebook_page import NotebookPage

    notebook = NotebookPage(page, lab, name)
    notebook.open()
    return notebook


# Long (a JupyterLab driven by hand for half a minute): in `make soak`, which CI runs
# after `make test`, to keep `make test` under 15 minutes.
@pytest.mark.soak
def test_05_chat_panes_typed_in_between_the_cells(lab: JupyterLab, page: Any) -> None:
    from playwright.sync_api import expect

    from tests.browser.learner import (
        assert_clean,
        cell_index,
        panel_titled,
        run_cells,
        type_and_click,
        type_and_enter,
    )

    notebook = _notebook(page, lab, "05_ping_pong.ipynb")
    panes = cell_index(notebook, containing="alice_pane = ChatPane(")
    forged = cell_index(notebook, containing="bob_nc.publish(user_subject(alice_id, PING)")
    last = len(lab.notebook(notebook.name)["cells"]) - 1
    try:
        notebook.restart_and_run_to(panes)
        alice = panel_titled(notebook, "alice (talks to bob)")
        bob = panel_titled(notebook, "bob (talks to alice)")

        alice.get_by_role("button", name="Send").click()  # nothing typed yet
        expect(alice).to_contain_text("nothing to send")
        type_and_enter(alice, "typed in alice's pane, then Enter")
        type_and_click(bob, 'bob says "hi" with quotes')
        expect(bob).to_contain_text("alice → bob: typed in alice's pane, then Enter")
        expect(alice).to_contain_text('bob → alice: bob says "hi" with quotes')

        run_cells(notebook, panes + 1, forged)
        type_and_enter(bob, "bob again, between the cells")
        expect(alice).to_contain_text("bob again, between the cells")
        run_cells(notebook, forged + 1, last)
        assert_clean(notebook, "with lines typed in both panes between the cells")

        # Run All a second time in the same kernel: the same result, no traceback.
        notebook.run_all()
        assert_clean(notebook, "run again in the same kernel")
    finally:
        notebook.screenshot(SCREENSHOTS / "05_ping_pong-typed.png")


# Long (a JupyterLab driven by hand for half a minute): in `make soak`, which CI runs
# after `make test`, to keep `make test` under 15 minutes.
@pytest.mark.soak
def test_06_files_panel_explored_before_the_cells(
    lab: JupyterLab, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    from tests.browser.learner import assert_clean, cell_index, panel_titled, run_cells

    notebook = _notebook(page, lab, "06_sending_files.ipynb")
    made = cell_index(notebook, containing="panel = FilesPanel(files)")
    last = len(lab.notebook(notebook.name)["cells"]) - 1
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("not a picture")
    try:
        notebook.restart_and_run_to(made)
        panel = panel_titled(notebook, "sending files")
        expect(panel.locator("img")).to_have_count(2)
        for image in panel.locator("img").all():  # no broken-image icon before an upload
            expect(image).to_be_hidden()

        panel.get_by_role("button", name="Transform").click()
        expect(panel).to_contain_text("upload an image first")
        upload = panel.locator("button.jupyter-widgets.widget-upload")
        with page.expect_file_chooser() as chooser:
            upload.click()
        chooser.value.set_files(str(not_an_image))
        expect(panel).to_contain_text("upload of “notes.txt” failed")
        with page.expect_file_chooser() as chooser:
            upload.click()
        chooser.value.set_files(str(NOTEBOOKS / "images" / "sample.png"))
        expect(panel).to_contain_text("uploaded “sample.png”")
        expect(panel.locator("img").first).to_be_visible()

        panel.locator("select").first.select_option("crop")
        handle = panel.locator(".noUi-handle").first  # crop x, left end
        handle.focus()
        for _ in range(5):
            handle.press("ArrowRight")
        panel.get_by_role("button", name="Transform").click()
        expect(panel).to_contain_text(re.compile(r"crop \(\d+, 0, 320, 240\): \d+×240 RGB"))
        expect(panel.locator("img").last).to_be_visible()

        run_cells(notebook, made + 1, last)
        assert_clean(notebook, "with the panel explored before the cells")

        # Run All a second time in the same kernel: the same result, no traceback.
        notebook.run_all()
        assert_clean(notebook, "run again in the same kernel")
    finally:
        notebook.screenshot(SCREENSHOTS / "06_sending_files-explored.png")


# Long (a JupyterLab driven by hand for half a minute): in `make soak`, which CI runs
# after `make test`, to keep `make test` under 15 minutes.
@pytest.mark.soak
def test_07_switch_toggled_in_the_browser_then_the_cells(lab: JupyterLab, page: Any) -> None:
    from playwright.sync_api import expect

    from tests.browser.learner import (
        assert_clean,
        cell_index,
        panel_titled,
        run_cells,
        type_and_click,
        type_and_enter,
    )

    notebook = _notebook(page, lab, "07_persistence.ipynb")
    made = cell_index(notebook, containing="panel = PersistencePanel(")
    offline = cell_index(notebook, containing="panel.toggle.value = False")
    last = len(lab.notebook(notebook.name)["cells"]) - 1
    try:
        notebook.restart_and_run_to(made)
        panel = panel_titled(notebook, "stream echo")
        switch = panel.locator("button.widget-toggle-button")

        panel.get_by_role("button", name="Send").click()
        expect(panel).to_contain_text("nothing to send")
        type_and_enter(panel, "typed, then Enter")
        expect(panel).to_contain_text("reply: echo typed, then Enter from")
        panel.get_by_role("button", name="Stream state").click()
        expect(panel).to_contain_text("(yours: 1 requests, 1 replies)")
        switch.click()
        expect(switch).to_have_text(re.compile("offline"))
        expect(panel).to_contain_text("offline: connection closed")
        type_and_click(panel, "sent while offline")
        expect(panel).to_contain_text("“sent while offline”: saved in the outbox, waiting")
        switch.click()
        expect(switch).to_have_text(re.compile("online"))
        expect(panel).to_contain_text("online: connected again, 1 waiting")
        panel.get_by_role("button", name="Flush").click()
        expect(panel).to_contain_text("flushed 1; 0 waiting")
        expect(panel).to_contain_text("reply: echo sent while offline from")

        run_cells(notebook, made + 1, offline)
        switch.click()  # back online in the browser, while the cells left it offline
        expect(panel).to_contain_text("online: connected again, 4 waiting")
        type_and_enter(panel, "online again")
        expect(panel).to_contain_text("reply: echo online again from")
        run_cells(notebook, offline + 1, last)
        assert_clean(notebook, "with the switch toggled in the browser between the cells")

        # Run All a second time in the same kernel: the same result, no traceback.
        notebook.run_all()
        assert_clean(notebook, "run again in the same kernel")
    finally:
        notebook.screenshot(SCREENSHOTS / "07_persistence-toggled.png")


# Long (a 3-node cluster, twice): in `make soak`, which CI runs after `make test`;
# tests/test_rerun.py runs every notebook twice in one kernel without a browser.
@pytest.mark.soak
def test_08_runs_twice_in_one_kernel(lab: JupyterLab, page: Any) -> None:
    """No panel here: Run All, then Run All again in the same kernel (kills, restarts)."""
    from tests.browser.learner import assert_clean

    notebook = _notebook(page, lab, "08_scaling_out.ipynb")
    try:
        notebook.run_all()
        assert_clean(notebook, "Run All")
        notebook.run_all()
        assert_clean(notebook, "Run All a second time in the same kernel")
    finally:
        notebook.screenshot(SCREENSHOTS / "08_scaling_out-twice.png")

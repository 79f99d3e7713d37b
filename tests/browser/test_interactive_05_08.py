"""Notebooks 05-07 used as a person uses them: panels clicked in the page between cells.

JupyterLab delivers a click in the browser on a kernel subshell's thread and loop,
which a click made from code (papermill, nbval) never does. So each test opens the
notebook in headless Chromium, runs it up to its panel, drives the panel through the
page (types, presses Enter or Send, toggles, uploads, slides), runs the checking cells,
uses the panel again, runs the rest, and then finds no error output anywhere.
Screenshots go to build/screenshots/.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.jupyter import SCREENSHOTS, JupyterLab

pytestmark = pytest.mark.browser


def _notebook(page: Any, lab: JupyterLab, name: str) -> Any:
    from tests.browser.notebook_page import NotebookPage

    notebook = NotebookPage(page, lab, name)
    notebook.open()
    return notebook


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

"""Notebook 09 in Chromium: the page itself is the NATS client (nats.js over WebSocket).

The notebook runs in a real JupyterLab with the widget shown: its cells drive the page
(send to bob, cheat, log out) and assert what bob (nats-py, in the kernel) and the
page saw. Between the cheats and the logout, this test types into the page as a
learner would: a forged origin (bob's pane shows the true one) and bob's subject (the
page shows the refusal). Then the logout closes the page's connection.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.jupyter import SCREENSHOTS, JupyterLab

NOTEBOOK = "09_browser_chat.ipynb"
# A page may take a while to load the bundle on a busy machine; headless runs wait 2 s.
PAGE_WAIT = "120"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def lab(lab_page_wait: None, lab: JupyterLab) -> JupyterLab:
    """The conftest's JupyterLab, whose kernels wait for the page as a learner's do."""
    return lab


@pytest.fixture(scope="module")
def lab_page_wait() -> Iterator[None]:
    before = os.environ.get("LABKIT_PAGE_WAIT")
    os.environ["LABKIT_PAGE_WAIT"] = PAGE_WAIT  # JupyterLab (and its kernels) inherit it
    yield
    if before is None:
        os.environ.pop("LABKIT_PAGE_WAIT", None)
    else:
        os.environ["LABKIT_PAGE_WAIT"] = before


def _cell_index(lab: JupyterLab, code: str) -> int:
    cells = lab.notebook(NOTEBOOK)["cells"]
    found = [
        i
        for i, cell in enumerate(cells)
        if cell["cell_type"] == "code" and code in "".join(cell["source"])
    ]
    assert len(found) == 1, f"{NOTEBOOK}: {len(found)} code cells hold {code!r}"
    return found[0]


def test_the_page_chats_cannot_cheat_and_closes_on_logout(lab: JupyterLab, page: Any) -> None:
    from playwright.sync_api import expect

    from tests.browser.notebook_page import NotebookPage

    logout = _cell_index(lab, "if chat.cut is None:")
    notebook = NotebookPage(page, lab, NOTEBOOK)
    notebook.open()
    try:
        # Everything up to the logout: the kernel has the page send, answer, cheat.
        notebook.restart_and_run_to(logout - 1)
        problems = notebook.problems(upto=logout - 1)
        assert not problems, f"{NOTEBOOK} up to cell {logout - 1}:\n" + "\n".join(problems)

        chat = notebook.panel.locator(".labkit-chat")
        expect(chat).to_have_count(1)
        expect(chat.locator(".labkit-chat-state")).to_have_text("connected")
        lines = chat.locator(".labkit-chat-line")
        # The kernel's lines, as the page showed them: relayed with the server's origin,
        # bob's answer decoded in the page, bob's subject refused.
        expect(lines.filter(has_text='"hello bob, from my browser"')).to_have_count(2)
        expect(
            lines.filter(has_text='✓ relayed by the server: from you to bob: "it\'s bob, honest"')
        ).to_have_count(1)
        expect(lines.filter(has_text='← from bob: "hello browser, bob here"')).to_have_count(1)
        refused = lines.filter(has_text="refused by the NATS server: permissions violation")
        expect(refused).to_have_count(1)

        # A learner types into the page: bob's id as the origin of a line for bob.
        bob = chat.locator("input.labkit-chat-destination").input_value()
        assert re.fullmatch(r"[0-9a-z]{26}", bob), bob
        chat.locator("input.labkit-chat-origin").fill(bob)
        chat.locator("input.labkit-chat-message").fill("typed in chromium, signed bob")
        chat.locator("button.labkit-chat-send").click()
        expect(
            lines.filter(has_text='from you to bob: "typed in chromium, signed bob"')
        ).to_have_count(1)
        # Bob's pane (nats-py in the kernel) shows the true origin: you, not bob.
        bob_pane = notebook.panel.locator(".widget-vbox").filter(
            has=page.get_by_text("bob (in the kernel)", exact=True)
        )
        expect(bob_pane).to_contain_text("you → bob: typed in chromium, signed bob")
        expect(bob_pane).not_to_contain_text("bob → bob: typed in chromium")

        # Then bob's own subject, typed in: the NATS server refuses it, the page says so.
        chat.locator("input.labkit-chat-origin").fill("")
        chat.locator("input.labkit-chat-subject").fill(f"{bob}.ping")
        chat.locator("input.labkit-chat-message").fill("typed on bob's subject")
        chat.locator("button.labkit-chat-send").click()
        expect(refused.filter(has_text=f'publish to "{bob}.ping"')).to_have_count(2)
        expect(chat.locator(".labkit-chat-state")).to_have_text("connected")

        # Log out: the NATS server cuts the page's connection, and the page says why.
        _run_cell(notebook, logout)
        expect(chat.locator(".labkit-chat-state")).to_have_text("closed")
        expect(chat.locator(".labkit-chat-detail")).to_contain_text("revoked")
        expect(lines.filter(has_text="■ connection closed")).to_have_count(1)
        expect(chat.locator("button.labkit-chat-send")).to_be_disabled()
        # The rest: the old credentials are refused, clean up, check.
        _run_from(notebook, logout + 1)
        problems = notebook.problems()
        assert not problems, f"{NOTEBOOK}:\n" + "\n".join(problems)
        last = notebook.cells()[-1]
        assert "ok: the page chatted with bob" in " ".join(o["text"] for o in last.outputs), last
    finally:
        notebook.screenshot(SCREENSHOTS / f"{NOTEBOOK.removesuffix('.ipynb')}.png")


def _select(notebook: Any, index: int) -> None:
    cell = notebook.panel.locator(".jp-Notebook .jp-Cell").nth(index)
    cell.locator(".jp-InputPrompt").click()
    cell.and_(notebook.page.locator(".jp-mod-active")).wait_for(timeout=5_000)


def _run_cell(notebook: Any, index: int) -> None:
    """Select cell `index` and run it alone (Ctrl+Enter); wait until it has run."""
    _select(notebook, index)
    _ran_after(notebook, index, lambda: notebook.page.keyboard.press("Control+Enter"))


def _run_from(notebook: Any, index: int) -> None:
    """Select cell `index`; Run → Run Selected Cell and All Below; wait until all ran."""
    _select(notebook, index)
    last = max(cell.index for cell in notebook.cells() if cell.code)
    _ran_after(notebook, last, lambda: notebook.menu("Run", "notebook:run-all-below"))


def _ran_after(notebook: Any, index: int, run: Any) -> None:
    """Do `run`, then wait until cell `index` shows a new execution count (it ran)."""
    before = notebook.cells()[index].prompt
    run()
    deadline = time.monotonic() + 120
    while True:
        prompt = notebook.cells()[index].prompt
        if prompt != before and re.fullmatch(r"\[\d+\]:", prompt):
            break
        assert time.monotonic() < deadline, f"cell {index} did not run (prompt {prompt!r})"
        time.sleep(0.25)
    notebook.wait_until_done()

"""What a learner does in a notebook page besides Run All: run a few cells, use a panel.

Built on NotebookPage (notebook_page.py) without changing it: these helpers run a
range of cells with Shift+Enter, as a person does, and find a panel by its title.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Locator, expect

from tests.browser.notebook_page import NotebookPage


def cell_index(notebook: NotebookPage, *, containing: str) -> int:
    """The index of the first cell whose source contains `containing` (as JupyterLab saved it)."""
    cells = notebook.lab.notebook(notebook.name)["cells"]
    for index, cell in enumerate(cells):
        if containing in "".join(cell["source"]):
            return index
    raise AssertionError(f"{notebook.name}: no cell contains {containing!r}; was it renamed?")


def run_cells(notebook: NotebookPage, first: int, last: int) -> None:
    """Run cells `first`..`last` one by one with Shift+Enter, then wait until they finish."""
    cell = notebook.panel.locator(".jp-Notebook .jp-Cell").nth(first)
    cell.locator(".jp-InputPrompt").click()
    cell.and_(notebook.page.locator(".jp-mod-active")).wait_for(timeout=5_000)
    for _ in range(first, last):
        notebook.page.keyboard.press("Shift+Enter")
    # Ctrl+Enter for the last: Shift+Enter on a notebook's last cell adds a new cell.
    notebook.page.keyboard.press("Control+Enter")
    notebook.wait_until_done()


def panel_titled(notebook: NotebookPage, title: str) -> Locator:
    """The widget box whose bold title is `title` (a panel: a VBox starting with its title)."""
    heading = notebook.page.locator(
        ".widget-html-content b", has_text=re.compile(f"^{re.escape(title)}$")
    )
    panel = notebook.panel.locator(".widget-vbox").filter(has=heading).last  # the innermost
    expect(panel).to_be_visible()
    return panel


def type_and_enter(panel: Locator, text: str) -> None:
    box = panel.locator("input[type=text]").first
    box.click()
    box.press_sequentially(text)
    box.press("Enter")


def type_and_click(panel: Locator, text: str, button: str = "Send") -> None:
    box = panel.locator("input[type=text]").first
    box.click()
    box.press_sequentially(text)
    panel.get_by_role("button", name=button).click()


def assert_clean(notebook: NotebookPage, what: str, **kwargs: Any) -> None:
    """No cell shows an error, stderr or an unrendered widget (NotebookPage.problems)."""
    problems = notebook.problems(**kwargs)
    assert not problems, f"{notebook.name}, {what}:\n" + "\n".join(problems)

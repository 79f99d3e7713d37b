"""The lab notebooks in a real browser: JupyterLab, headless Chromium, Run All Cells.

Each notebook must run to the end with no error output and with every widget rendered
as a widget; the echo lab's Send button must bring the reply into the page. One
screenshot per notebook goes to build/screenshots/.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.browser.jupyter import NOTEBOOKS, SCREENSHOTS, JupyterLab

LABS = sorted(path.name for path in NOTEBOOKS.glob("0[1-7]_*.ipynb"))
ECHO_LAB = "03_identified_echo.ipynb"

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("name", LABS, ids=[name.removesuffix(".ipynb") for name in LABS])
def test_notebook_runs_clean_in_chromium(lab: JupyterLab, page: Any, name: str) -> None:
    from tests.browser.notebook_page import NotebookPage

    notebook = NotebookPage(page, lab, name)
    notebook.open()
    notebook.run_all()
    try:
        problems = notebook.problems()
    finally:
        notebook.screenshot(SCREENSHOTS / f"{name.removesuffix('.ipynb')}.png")
    assert not problems, f"{name} in Chromium:\n" + "\n".join(problems)


def test_echo_panel_send_button_shows_the_reply(lab: JupyterLab, page: Any) -> None:
    """Type into the echo panel, click Send, and see the server's reply in the page."""
    from playwright.sync_api import expect

    from tests.browser.notebook_page import NotebookPage

    assert (NOTEBOOKS / ECHO_LAB).exists(), f"the echo lab {ECHO_LAB} is missing"
    # The panels need the notebook's connection: run every cell before the one closing it.
    cells = lab.notebook(ECHO_LAB)["cells"]
    closing = next(
        (i for i, cell in enumerate(cells) if "nc.close()" in "".join(cell["source"])), None
    )
    assert closing, f"no cell of {ECHO_LAB} closes the connection (nc.close())"

    notebook = NotebookPage(page, lab, ECHO_LAB)
    notebook.open()
    notebook.restart_and_run_to(closing - 1)
    problems = notebook.problems(upto=closing - 1)
    assert not problems, f"{ECHO_LAB} up to cell {closing - 1}:\n" + "\n".join(problems)

    title = page.locator(".widget-html-content").get_by_text("echo", exact=True)
    panel = notebook.panel.locator(".widget-vbox").filter(has=title)  # EchoPanel(title="echo")
    expect(panel).to_have_count(1)
    message = f"hello from chromium {secrets.token_hex(3)}"
    box = panel.locator("input[type=text]")
    box.click()
    box.press_sequentially(message)
    panel.get_by_role("button", name="Send").click()
    try:
        expect(panel.locator(".widget-output")).to_contain_text(
            f"-> echo {message}", timeout=15_000
        )
        expect(box).to_have_value("")  # a sent message leaves the box
    finally:
        notebook.screenshot(SCREENSHOTS / f"{ECHO_LAB.removesuffix('.ipynb')}-send.png")
    stderr = panel.locator('[data-mime-type="application/vnd.jupyter.stderr"]')
    expect(stderr).to_have_count(0)


def test_a_run_all_that_never_settles_says_what_still_runs(lab: JupyterLab, page: Any) -> None:
    """The report of a stuck Run All: the cell still at [*], and the server's kernel busy."""
    import json

    from tests.browser.notebook_page import NotebookPage

    name = "stuck_probe.ipynb"  # a scratch notebook in the served copy
    sources = ["import asyncio", "await asyncio.sleep(6)  # stuck_probe"]
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"stuck-{index}",
            "metadata": {},
            "outputs": [],
            "source": source,
        }
        for index, source in enumerate(sources)
    ]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook_json = {"cells": cells, "metadata": {"kernelspec": kernelspec}}
    (lab.root / name).write_text(json.dumps({**notebook_json, "nbformat": 4, "nbformat_minor": 5}))
    notebook = NotebookPage(page, lab, name)
    notebook.open()
    notebook.menu("Run", "runmenu:run-all")
    with pytest.raises(AssertionError) as stuck:
        notebook.wait_until_done(timeout=1)
    report = str(stuck.value)
    assert "waited 1 s for its cells to finish" in report, report
    assert "stuck_probe" in report and "busy" in report, report
    assert "the prompts: 0[" in report and " 1[*]" in report, report
    assert "JupyterLab's log ends" in report and "the server did not say" not in report, report
    notebook.wait_until_done()  # the sleep ends: nothing left running for the next test

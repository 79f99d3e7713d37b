"""labkit.report: the report page and the HTML of executed notebooks, without running any."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from labkit.report import WIDGET_VIEW, ReportRow, link, notebook_html, render_report


def test_render_report_has_a_row_per_notebook_in_order() -> None:
    page = render_report(
        [
            ReportRow("00_a.ipynb", True, 1.25, "notebooks/00_a.html"),
            ReportRow("01_<b>.ipynb", False, 2.0, None, "cell 3: AssertionError: <no>"),
        ]
    )
    assert page.index("00_a.ipynb") < page.index("01_&lt;b&gt;.ipynb")
    assert "<a href='notebooks/00_a.html'>00_a.ipynb</a>" in page
    assert "(no executed copy)" in page
    assert "AssertionError: &lt;no&gt;" in page and "<no>" not in page
    assert "1 of 2 notebooks ran without errors, in 3.2 s" in page


def test_links_are_relative_and_quoted(tmp_path: Path) -> None:
    target = tmp_path / "build" / "notebooks" / "00 start.html"
    assert link(target, tmp_path / "build") == "notebooks/00%20start.html"
    assert link(target, tmp_path / "elsewhere") == "../build/notebooks/00%20start.html"


def test_a_widget_without_saved_state_shows_its_text(tmp_path: Path) -> None:
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    output = new_output(
        "execute_result",
        data={WIDGET_VIEW: view, "text/plain": "StackStatusPanel(nats=running)"},
        execution_count=1,
    )
    cell = new_code_cell("panel", outputs=[output], execution_count=1)
    path = tmp_path / "00_panel.ipynb"
    nbformat.write(new_notebook(cells=[cell]), path)

    page = notebook_html(path).read_text()

    assert path.with_suffix(".html").is_file()
    assert "StackStatusPanel(nats=running)" in page
    assert "widget-view+json" not in page


def test_saved_widgets_become_static_html_without_a_cdn_script(tmp_path: Path) -> None:
    """The executed notebook's widgets show in the HTML offline: no widget manager script."""
    state = {
        "box": {
            "model_name": "VBoxModel",
            "state": {"children": ["IPY_MODEL_title", "IPY_MODEL_out", "IPY_MODEL_send"]},
        },
        "title": {"model_name": "HTMLModel", "state": {"value": "<b>echo</b>"}},
        "out": {
            "model_name": "OutputModel",
            "state": {
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": "“hi” -> echo hi\n"},
                    {"output_type": "stream", "name": "stderr", "text": "nothing to <send>\n"},
                ]
            },
        },
        "send": {"model_name": "ButtonModel", "state": {"description": "Send"}},
    }
    view = {"model_id": "box", "version_major": 2, "version_minor": 0}
    output = new_output(
        "display_data", data={WIDGET_VIEW: view, "text/plain": "EchoPanel('echo', replies=1)"}
    )
    notebook = new_notebook(cells=[new_code_cell("panel", outputs=[output], execution_count=1)])
    notebook.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {"state": state, "version_major": 2}
    }
    path = tmp_path / "03_echo.ipynb"
    nbformat.write(notebook, path)

    page = notebook_html(path).read_text()

    assert "<b>echo</b>" in page and "“hi” -&gt; echo hi" in page
    assert "nothing to &lt;send&gt;" in page and ">Send</span>" in page
    assert "html-manager" not in page and "widget-view+json" not in page
    assert "mermaid.js, loaded from cdnjs.cloudflare.com" in page  # said plainly at the top

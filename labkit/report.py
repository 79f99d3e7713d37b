"""The report of a course run: each executed notebook as HTML, and one page that lists them.

`make run` writes `build/report.html` (one row per notebook: result, seconds, a
link) next to `build/notebooks/`, where each executed notebook also gets its
`.html`. The page is built by a pure function (`render_report`); converting a
notebook uses nbconvert's HTMLExporter. `labkit.course.run_course` calls both.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from labkit.files import write_atomic
from labkit.static_widgets import saved_states, widget_html

# papermill saves the widgets' state; the HTML draws each widget from it as static HTML
# (labkit.static_widgets), so it needs no script from a CDN. A widget whose state was not
# saved shows its text/plain repr (our panels summarise themselves there).
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# The one part of the HTML that still needs the internet, said at its top.
OFFLINE_NOTE = (
    "<div style='padding:6px 12px; margin:8px 0; background:#fff8e1; "
    "border-left:4px solid #f0b400; font-family:sans-serif; font-size:90%'>"
    "Saved from a run of the course: the panels show their state at the end of the run. "
    "The diagrams are drawn by mermaid.js, loaded from cdnjs.cloudflare.com: without an "
    "internet connection each diagram shows its source text instead."
    "</div>"
)


def notebook_html(executed: Path) -> Path:
    """Write `executed` (an .ipynb) as HTML beside it; the .html path."""
    import nbformat
    from nbconvert import HTMLExporter

    # nbformat and nbconvert have no annotations on these.
    notebook = nbformat.read(executed, as_version=4)  # type: ignore[no-untyped-call]
    with_static_widgets(notebook)
    exporter = HTMLExporter()  # type: ignore[no-untyped-call]
    body, _resources = exporter.from_notebook_node(notebook)
    body = _with_note(body)
    target = executed.with_suffix(".html")
    write_atomic(target, body)
    return target


def with_static_widgets(notebook: Any) -> None:
    """Each widget view as static HTML from the saved state (else its text); no CDN script."""
    states = saved_states(notebook)
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            if WIDGET_VIEW not in data:
                continue
            drawn = widget_html(str(data[WIDGET_VIEW].get("model_id", "")), states)
            if drawn is not None:
                data["text/html"] = drawn
            if drawn is not None or len(data) > 1:
                del data[WIDGET_VIEW]
    # Without it nbconvert leaves out the widget manager's script (from a CDN) too.
    notebook.get("metadata", {}).pop("widgets", None)


def without_widget_views(notebook: Any) -> None:
    """Kept for callers of the earlier name: `with_static_widgets`."""
    with_static_widgets(notebook)


def _with_note(body: str) -> str:
    """OFFLINE_NOTE right after the page's <body ...> tag."""
    start = body.find("<body")
    end = body.find(">", start) if start >= 0 else -1
    if end < 0:
        return OFFLINE_NOTE + body
    return body[: end + 1] + OFFLINE_NOTE + body[end + 1 :]


def link(target: Path, start: Path) -> str:
    """A relative URL from the folder `start` to `target`, so the report can be moved."""
    return quote(Path(os.path.relpath(target, start)).as_posix())


@dataclass(frozen=True)
class ReportRow:
    """One notebook's line in the report; `href` is relative to the report (None: no copy)."""

    notebook: str
    ok: bool
    seconds: float
    href: str | None
    error: str = ""


def render_report(rows: Sequence[ReportRow], *, title: str = "labkit course run") -> str:
    """The report page: one table row per notebook, with its result, time and link."""
    passed = sum(1 for row in rows if row.ok)
    total = sum(row.seconds for row in rows)
    lines = []
    for row in rows:
        result = "ok" if row.ok else "failed"
        colour = "green" if row.ok else "firebrick"
        name = html.escape(row.notebook)
        notebook = (
            f"<a href='{html.escape(row.href)}'>{name}</a>"
            if row.href
            else f"{name} <i>(no executed copy)</i>"
        )
        lines.append(
            f"<tr class='{result}'><td>{notebook}</td>"
            f"<td style='color:{colour}'>{result}</td>"
            f"<td style='text-align:right'>{row.seconds:.1f}</td>"
            f"<td>{html.escape(row.error)}</td></tr>\n"
        )
    when = datetime.now().strftime("%Y-%m-%d %H:%M")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>{when}: {passed} of {len(rows)} notebooks ran without errors, in {total:.1f} s.</p>
<table>
<tr><th>notebook</th><th>result</th><th>seconds</th><th>error</th></tr>
{"".join(lines)}
</table>
</body>
</html>
"""

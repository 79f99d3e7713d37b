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

# papermill saves the widgets' state, and the HTML draws them from it (with the widget
# manager's script from a CDN). A notebook saved without that state would show empty
# boxes: its widgets' text/plain reprs (our panels summarise themselves there) instead.
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def notebook_html(executed: Path) -> Path:
    """Write `executed` (an .ipynb) as HTML beside it; the .html path."""
    import nbformat
    from nbconvert import HTMLExporter

    # nbformat and nbconvert have no annotations on these.
    notebook = nbformat.read(executed, as_version=4)  # type: ignore[no-untyped-call]
    without_widget_views(notebook)
    exporter = HTMLExporter()  # type: ignore[no-untyped-call]
    body, _resources = exporter.from_notebook_node(notebook)
    target = executed.with_suffix(".html")
    write_atomic(target, body)
    return target


def without_widget_views(notebook: Any) -> None:
    """Drop widget views when the notebook saved no widget state, so their text shows."""
    if notebook.get("metadata", {}).get("widgets"):
        return
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            if WIDGET_VIEW in data and len(data) > 1:
                del data[WIDGET_VIEW]


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

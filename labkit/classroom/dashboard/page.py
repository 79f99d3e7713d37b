"""The dashboard's one HTML page; its script and style are files in `static/`.

The page carries the xsrf token the script sends with every request, and the
service's prefix; everything it shows it builds from the JSON of `api/state` with
text nodes only (a learner's email or message is never read as HTML).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")
# How often the page asks for a new snapshot (milliseconds).
REFRESH_MS = 2000

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>labkit — class dashboard</title>
<link rel="stylesheet" href="{prefix}static/dashboard.css">
</head>
<body data-refreshes="0">
<header>
  <h1>Class dashboard</h1>
  <p>Signed in as <b>{instructor}</b>.
     <span id="status">loading…</span> Last update: <time id="generated-at">never</time></p>
  <form id="export" method="post" action="{prefix}export/progress.csv">
    <input type="hidden" name="_xsrf" value="{xsrf}">
    <button type="submit">Export progress (CSV)</button>
  </form>
</header>
<section id="problems" hidden></section>
<section id="notice" hidden></section>
<h2>Learners × exercises <small>(<span id="online-count">0</span> online)</small></h2>
<table id="grid"><thead></thead><tbody></tbody></table>
<h2>The wire (class-wide tap) <small><span id="tap-seen">0</span> messages seen</small></h2>
<table id="tap"><thead><tr><th>time</th><th>subject</th><th>sender</th><th>message</th>
<th>size</th></tr></thead><tbody></tbody></table>
<script id="dashboard-config" type="application/json">{config}</script>
<script src="{prefix}static/dashboard.js"></script>
</body>
</html>
"""


def page_html(prefix: str, xsrf: str, instructor: str) -> str:
    """The page for `instructor`, under the service's `prefix` (ends with '/')."""
    config = json.dumps({"prefix": prefix, "xsrf": xsrf, "refreshMs": REFRESH_MS})
    return _PAGE.format(
        prefix=html.escape(prefix, quote=True),
        xsrf=html.escape(xsrf, quote=True),
        instructor=html.escape(instructor),
        # Inside <script>, only "</" could end the element early.
        config=config.replace("</", "<\\/"),
    )

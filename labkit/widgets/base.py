"""What every panel shares: it shows as its widget, and as its repr in plain text.

And a message area that keeps its newest line in view (`LogView`): an Output widget
scrolls back to its first line whenever a line is added, so a panel's latest message
ends up below the fold. The Output widget stays the record (what `messages` reads,
written with `append_stdout`/`append_stderr`); an HTML view, scrolled to its end as
the wire taps are, is what the page shows.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

import ipywidgets as widgets

# A reversed flex column starts scrolled to its end, so the newest line stays in view.
# (An HTML widget's text has the line height of a button, 28px: lines get their own.)
FOLLOW_END = (
    "max-height:16em; overflow-y:auto; display:flex; flex-direction:column-reverse; line-height:1.4"
)
# The most lines a log view shows (the record keeps them all).
MAX_LOG_LINES = 500
_LOG_LINE = "margin:0; padding:1px 4px; white-space:pre-wrap; overflow-wrap:anywhere"
_LOG_FONT = (
    "font-family:var(--jp-code-font-family, monospace); font-size:var(--jp-code-font-size, 13px)"
)
_ERROR_LINE = "background:var(--jp-rendermime-error-background, #fdd)"


class Panel:
    """Shows as its `widget` in a notebook, as its repr in plain text (what nbval compares)."""

    widget: Any

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle


def follow_end(max_height: str = "16em") -> str:
    """FOLLOW_END with another height: the inline style of a box that follows its end."""
    return FOLLOW_END.replace("max-height:16em", f"max-height:{max_height}")


def log_html(
    outputs: Iterable[Mapping[str, Any]],
    *,
    max_height: str = "16em",
    max_lines: int = MAX_LOG_LINES,
) -> str:
    """Output-widget stream records as HTML lines, newest last and in view; stderr shaded.

    `outputs` are the records `append_stdout`/`append_stderr` make (`{"name", "text"}`);
    only the last `max_lines` lines are drawn. An empty log draws nothing.
    """
    lines: list[tuple[bool, str]] = []
    for output in outputs:
        error = output.get("name") == "stderr"
        lines.extend((error, line) for line in str(output.get("text", "")).splitlines())
    if not lines:
        return ""
    drawn = "".join(
        f"<div style='{_LOG_LINE}{'; ' + _ERROR_LINE if error else ''}'>{html.escape(line)}</div>"
        for error, line in lines[-max_lines:]
    )
    return f"<div style='{follow_end(max_height)}; {_LOG_FONT}'><div>{drawn}</div></div>"


class LogView:
    """A panel's message area: `out` keeps the lines, `view` shows them, the newest in view.

    Write with `say`/`error`; read with `lines`. Put `view` in the panel, not `out`.
    """

    def __init__(self, max_height: str = "16em") -> None:
        self.max_height = max_height
        self.out = widgets.Output()
        self.view = widgets.HTML()

    @property
    def lines(self) -> list[str]:
        """Every line written so far, oldest first."""
        text = "".join(str(output.get("text", "")) for output in self.out.outputs)
        return text.splitlines()

    def say(self, line: str) -> None:
        self.out.append_stdout(line + "\n")
        self._render()

    def error(self, line: str) -> None:
        self.out.append_stderr(line + "\n")
        self._render()

    def _render(self) -> None:
        self.view.value = log_html(self.out.outputs, max_height=self.max_height)

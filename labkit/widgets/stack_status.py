"""A status panel for the stack: each component's health, its log, and buttons to act.

Everything a click does is also a method (`start`, `stop`, `restart`, `log`,
`refresh`), and the panel's current table is readable (`rows`, `states`,
`messages`), so a later notebook cell can drive the panel and assert on what it shows.
"""

from __future__ import annotations

import contextlib
import html
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from labkit.errors import LabkitError
from labkit.stack import ComponentStatus, Stack
from labkit.widgets.base import Panel

COLUMNS = ("name", "state", "url", "pid")
LOG_LINES = 10
_STATE_COLOURS = {"running": "green", "unhealthy": "darkorange", "stopped": "gray"}
_GRID_COLUMNS = "7em 7em minmax(16em, 1fr) 6em 5em 5em 5.5em 5em"
_LOG_STYLE = "max-height:14em; overflow:auto; font-size:85%; margin:0"


@dataclass(frozen=True)
class _RowWidgets:
    state: Any  # widgets.Label
    url: Any  # widgets.Label
    pid: Any  # widgets.Label
    log: Any  # widgets.HTML, shown while the component's Log button is down


class StackStatusPanel(Panel):
    """Show each stack component's state, url and pid; start, stop, restart; read its log.

    Messages go to an Output widget with `append_stdout`, which lands in the widget
    under papermill, nbval and a browser alike (a `with out:` block does not).
    """

    def __init__(self, stack: Stack | None = None) -> None:
        self.stack = stack or Stack()
        self.out = widgets.Output(layout=widgets.Layout(max_height="12em", overflow="auto"))
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.buttons: dict[str, dict[str, Any]] = {}
        self._rows: dict[str, _RowWidgets] = {}
        self._statuses = self.stack.status()
        cells: list[Any] = [widgets.HTML(f"<b>{column}</b>") for column in COLUMNS]
        cells += [widgets.Label("") for _ in range(4)]
        for name in self._statuses:
            cells += self._make_row(name)
        self.grid = widgets.GridBox(
            cells, layout=widgets.Layout(grid_template_columns=_GRID_COLUMNS, grid_gap="2px 8px")
        )
        self.logs = widgets.VBox([row.log for row in self._rows.values()])
        self.widget = widgets.VBox(
            [
                widgets.HTML("<b>labkit stack</b>"),
                self.grid,
                self.refresh_button,
                self.out,
                self.logs,
            ]
        )
        self._show()

    # what a notebook cell reads
    @property
    def states(self) -> dict[str, str]:
        """Each component's state as last shown: "running", "unhealthy" or "stopped"."""
        return {name: status.state for name, status in self._statuses.items()}

    @property
    def rows(self) -> list[dict[str, str]]:
        """The table as shown: name, state, url and pid of each component, as text."""
        return [
            {
                "name": name,
                "state": status.state,
                "url": status.url or "",
                "pid": str(status.pid) if status.pid else "",
            }
            for name, status in self._statuses.items()
        ]

    @property
    def messages(self) -> list[str]:
        """The lines written to the message area so far."""
        text = "".join(str(output.get("text", "")) for output in self.out.outputs)
        return text.splitlines()

    @property
    def open_logs(self) -> list[str]:
        """The components whose log is shown."""
        return [name for name, buttons in self.buttons.items() if buttons["log"].value]

    # what a click does
    def refresh(self) -> dict[str, ComponentStatus]:
        """Check every component now and update the table (and the logs shown)."""
        self._statuses = self.stack.status()
        self._show()
        return self._statuses

    def log(self, name: str, lines: int = LOG_LINES) -> str:
        """The last `lines` lines of `name`'s log; shows them under the table too."""
        text = self.stack.log_tail(name, lines)
        row = self._rows.get(name)
        if row is not None:
            self.buttons[name]["log"].value = True  # a no-op when it is already down
            self._show_log(name, text)
        return text

    def hide_log(self, name: str) -> None:
        """Hide `name`'s log (what a click on a pressed Log button does)."""
        if name in self.buttons:
            self.buttons[name]["log"].value = False

    def start(self, name: str) -> dict[str, ComponentStatus]:
        """Start `name` (and what it needs) unless it already runs healthy."""
        before = self.states
        began = time.monotonic()
        try:
            started = self.stack.ensure(name)
        except LabkitError as exc:
            self._report_error(f"could not start {name}: {exc}")
            raise
        finally:
            self.refresh()
        fresh = [n for n in started if before.get(n) != "running"]
        if fresh:
            seconds = time.monotonic() - began
            self._say(f"started {', '.join(fresh)} in {seconds:.1f} s")
        else:
            self._say(f"{name} was already running")
        return started

    def restart(self, name: str) -> dict[str, ComponentStatus]:
        """Stop `name` and start it again, with whatever the stop took down."""
        before = {n: status.pid for n, status in self.stack.status().items() if status.running}
        began = time.monotonic()
        try:
            statuses = self.stack.restart(name)
        except LabkitError as exc:
            self._report_error(f"could not restart {name}: {exc}")
            raise
        finally:
            self.refresh()
        seconds = time.monotonic() - began
        fresh = [n for n, status in statuses.items() if status.pid != before.get(n)]
        self._say(f"restarted {', '.join(fresh)} in {seconds:.1f} s")
        return statuses

    def stop(self, name: str) -> list[str]:
        """Stop `name` and whatever needs it (stopping nats stops nsc too)."""
        try:
            stopped = self.stack.down(name)
        except LabkitError as exc:
            self._report_error(f"could not stop {name}: {exc}")
            raise
        finally:
            self.refresh()
        self._say(f"stopped {', '.join(stopped)}" if stopped else f"{name} was not running")
        return stopped

    # display
    def __repr__(self) -> str:
        states = ", ".join(f"{name}={state}" for name, state in self.states.items())
        return f"StackStatusPanel({states})"

    # internals
    def _make_row(self, name: str) -> list[Any]:
        log = widgets.HTML(layout=widgets.Layout(display="none"))
        row = _RowWidgets(widgets.Label(), widgets.Label(), widgets.Label(), log)
        self._rows[name] = row
        start = widgets.Button(description="Start", button_style="success", tooltip=f"start {name}")
        stop = widgets.Button(description="Stop", button_style="danger", tooltip=f"stop {name}")
        restart = widgets.Button(
            description="Restart", button_style="warning", tooltip=f"stop {name}, start it again"
        )
        log_button = widgets.ToggleButton(description="Log", tooltip=f"the end of {name}'s log")
        start.on_click(self._on_click(self.start, name))
        stop.on_click(self._on_click(self.stop, name))
        restart.on_click(self._on_click(self.restart, name))
        log_button.observe(self._on_log_toggle(name), names="value")
        self.buttons[name] = {"start": start, "stop": stop, "restart": restart, "log": log_button}
        return [widgets.Label(name), row.state, row.url, row.pid, start, stop, restart, log_button]

    def _on_log_toggle(self, name: str) -> Callable[[dict[str, Any]], None]:
        def toggle(change: dict[str, Any]) -> None:
            if change["new"]:
                self._show_log(name, self.stack.log_tail(name, LOG_LINES))
            else:
                self._rows[name].log.layout.display = "none"

        return toggle

    def _show_log(self, name: str, text: str) -> None:
        body = html.escape(text) if text else "<i>(empty)</i>"
        view = self._rows[name].log
        file_name = html.escape(self.stack.paths.log_file(name).name)
        view.value = (
            f"<b>{html.escape(name)}</b>: the end of {file_name}"
            f"<pre style='{_LOG_STYLE}'>{body}</pre>"
        )
        view.layout.display = None

    def _on_click(self, action: Callable[[str], object], name: str) -> Callable[[Any], None]:
        def handle(_button: Any) -> None:
            # The error is already in the message area; a click has no caller to raise to.
            with contextlib.suppress(LabkitError):
                action(name)

        return handle

    def _show(self) -> None:
        for row in self.rows:
            name, state = row["name"], row["state"]
            cells = self._rows.get(name)
            if cells is None:
                continue  # a component registered after the panel was built
            cells.state.value = state
            cells.state.style.text_color = _STATE_COLOURS.get(state, "black")
            cells.url.value = row["url"]
            cells.pid.value = row["pid"]
            self.buttons[name]["start"].disabled = state == "running"
            self.buttons[name]["stop"].disabled = state == "stopped"
            if self.buttons[name]["log"].value:
                self._show_log(name, self.stack.log_tail(name, LOG_LINES))

    def _say(self, line: str) -> None:
        self.out.append_stdout(line + "\n")

    def _report_error(self, line: str) -> None:
        self.out.append_stderr(line + "\n")

"""A status panel for the stack: each component's health, its log, and buttons to act.

Everything a click does is also a method (`start`, `stop`, `restart`, `log`,
`refresh`), and the panel's current table is readable (`rows`, `states`,
`messages`), so a later notebook cell can drive the panel and assert on what it shows.

A Stop takes down what needs the component too (`nsc` takes `auth` along); the panel
remembers it, and Start brings them back. A click in the browser runs on the thread
that runs the notebook's cells (`CellLoop`), where the stack ties the processes it
starts to the kernel.
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
from labkit.stack.component import base_name
from labkit.widgets.base import Panel
from labkit.widgets.callbacks import CellLoop

COLUMNS = ("name", "state", "url", "pid")
LOG_LINES = 10
_STATE_COLOURS = {"running": "green", "unhealthy": "darkorange", "stopped": "gray"}
# name, state, url, pid, the row's buttons. The buttons share one cell that wraps when
# the notebook is narrow, each as wide as its label: they never overlap.
_GRID_COLUMNS = "max-content max-content minmax(8em, 1fr) max-content minmax(max-content, auto)"
_BUTTON_LAYOUT = {"width": "auto", "min_width": "max-content", "margin": "0 4px 2px 0"}
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
        # What each Stop took down along with the component: its Start brings them back.
        self.taken_down: dict[str, list[str]] = {}
        self._cell_loop = CellLoop()
        self.out = widgets.Output(layout=widgets.Layout(max_height="12em", overflow="auto"))
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _button: self._cell_loop.call(self.refresh))
        self.buttons: dict[str, dict[str, Any]] = {}
        self._rows: dict[str, _RowWidgets] = {}
        self._statuses = self.stack.status()
        cells: list[Any] = [widgets.HTML(f"<b>{column}</b>") for column in COLUMNS]
        cells += [widgets.HTML("<b>actions</b>")]
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
        """Start `name` (and what it needs) unless it already runs healthy.

        What an earlier Stop of `name` took down with it comes back too.
        """
        before = self.states
        # Replicas (`server#2`) come back with their kind.
        along = list(dict.fromkeys(base_name(n) for n in self.taken_down.get(name, [])))
        began = time.monotonic()
        try:
            started = self.stack.ensure(name, *along)
        except LabkitError as exc:
            self._report_error(f"could not start {name}: {exc}")
            raise
        finally:
            self.refresh()
        self.taken_down.pop(name, None)
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
        self.taken_down.pop(name, None)  # the restart brought them back
        seconds = time.monotonic() - began
        fresh = [n for n, status in statuses.items() if status.pid != before.get(n)]
        self._say(f"restarted {', '.join(fresh)} in {seconds:.1f} s")
        return statuses

    def stop(self, name: str) -> list[str]:
        """Stop `name` and whatever needs it (stopping nats stops nsc too).

        The panel says what else stopped, and `start(name)` brings it back.
        """
        try:
            stopped = self.stack.down(name)
        except LabkitError as exc:
            self._report_error(f"could not stop {name}: {exc}")
            raise
        finally:
            self.refresh()
        if not stopped:
            self._say(f"{name} was not running")
            return stopped
        along = [n for n in stopped if n != name]
        if along:
            self.taken_down[name] = [*self.taken_down.get(name, []), *along]
            for other in along:  # started again on their own, they owe nothing to `name`
                self.taken_down.pop(other, None)
            needs, them = ("needs", "it") if len(along) == 1 else ("need", "them")
            self._say(
                f"stopped {name}, and {', '.join(along)}, which {needs} it: "
                f"Start {name} brings {them} back"
            )
        else:
            self._say(f"stopped {name}")
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
        start = widgets.Button(
            description="Start",
            button_style="success",
            tooltip=f"start {name}",
            layout=widgets.Layout(**_BUTTON_LAYOUT),
        )
        stop = widgets.Button(
            description="Stop",
            button_style="danger",
            tooltip=f"stop {name}",
            layout=widgets.Layout(**_BUTTON_LAYOUT),
        )
        restart = widgets.Button(
            description="Restart",
            button_style="warning",
            tooltip=f"stop {name}, start it again",
            layout=widgets.Layout(**_BUTTON_LAYOUT),
        )
        log_button = widgets.ToggleButton(
            description="Log",
            tooltip=f"the end of {name}'s log",
            layout=widgets.Layout(**_BUTTON_LAYOUT),
        )
        start.on_click(self._on_click(self.start, name))
        stop.on_click(self._on_click(self.stop, name))
        restart.on_click(self._on_click(self.restart, name))
        log_button.observe(self._on_log_toggle(name), names="value")
        self.buttons[name] = {"start": start, "stop": stop, "restart": restart, "log": log_button}
        actions = widgets.HBox(
            [start, stop, restart, log_button],
            layout=widgets.Layout(flex_flow="row wrap", width="auto"),
        )
        return [widgets.Label(name), row.state, row.url, row.pid, actions]

    def _on_log_toggle(self, name: str) -> Callable[[dict[str, Any]], None]:
        def show_or_hide(shown: bool) -> None:
            if shown:
                self._show_log(name, self.stack.log_tail(name, LOG_LINES))
            else:
                self._rows[name].log.layout.display = "none"

        def toggle(change: dict[str, Any]) -> None:
            shown = bool(change["new"])
            self._cell_loop.call(lambda: show_or_hide(shown))

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
        def act() -> None:
            # The error is already in the message area; a click has no caller to raise to.
            with contextlib.suppress(LabkitError):
                action(name)

        def handle(_button: Any) -> None:
            # On the cell loop's thread: processes started there end with the kernel.
            self._cell_loop.call(act)

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

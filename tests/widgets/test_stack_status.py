"""The stack status panel, driven from code as a notebook cell drives it, on a real stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labkit.settings import Settings
from labkit.stack import Stack
from labkit.widgets import StackStatusPanel


@pytest.fixture
def stack(settings: Settings) -> Iterator[Stack]:
    stack = Stack(settings)
    stack.ensure("nats", "nsc")
    yield stack
    stack.down()


def test_restart_gives_a_new_process_and_says_so(stack: Stack) -> None:
    panel = StackStatusPanel(stack)
    pid = panel.rows[1]["pid"]
    assert panel.rows[1]["name"] == "nsc"

    statuses = panel.restart("nsc")

    assert statuses["nsc"].running
    assert panel.states["nsc"] == "running"
    assert panel.rows[1]["pid"] not in ("", pid)
    assert panel.messages[-1].startswith("restarted nsc in ")
    # The button does the same.
    panel.buttons["nats"]["restart"].click()
    assert panel.messages[-1].startswith("restarted nats, nsc in "), panel.messages
    assert panel.states["nats"] == panel.states["nsc"] == "running"


def test_log_returns_and_shows_the_end_of_the_log(stack: Stack) -> None:
    panel = StackStatusPanel(stack)
    assert panel.open_logs == []

    text = panel.log("nsc")

    assert "labkit: starting nsc" in text
    assert len(text.splitlines()) <= 10
    assert panel.open_logs == ["nsc"]
    view = panel.logs.children[list(panel.buttons).index("nsc")]
    assert view.layout.display is None and "labkit: starting nsc" in view.value
    panel.hide_log("nsc")
    assert panel.open_logs == [] and view.layout.display == "none"
    # The Log button is a toggle: pressing it shows the log again.
    panel.buttons["nsc"]["log"].value = True
    assert view.layout.display is None and "starting nsc" in view.value


def test_an_open_log_follows_a_restart(stack: Stack) -> None:
    panel = StackStatusPanel(stack)
    panel.log("nsc")
    view = panel.logs.children[list(panel.buttons).index("nsc")]
    assert view.value.count("labkit: starting nsc") == 1
    panel.restart("nsc")
    assert view.value.count("labkit: starting nsc") == 2, "read again after the restart"


def test_start_brings_back_what_a_stop_took_down(settings: Settings) -> None:
    stack = Stack(settings)
    stack.ensure("auth")
    try:
        panel = StackStatusPanel(stack)
        auth_pid = stack.status()["auth"].pid

        panel.buttons["nsc"]["stop"].click()

        assert panel.states["nsc"] == panel.states["auth"] == "stopped"
        assert panel.messages[-1] == (
            "stopped nsc, and auth, which needs it: Start nsc brings it back"
        )
        panel.buttons["nsc"]["start"].click()
        assert panel.states["nsc"] == panel.states["auth"] == "running", panel.messages
        assert stack.status()["auth"].pid != auth_pid
        assert panel.messages[-1].startswith("started nsc, auth in "), panel.messages
        # Stopped on its own, nothing else: Start nsc then starts only nsc.
        panel.stop("auth")
        assert panel.messages[-1] == "stopped auth"
        panel.start("nsc")
        assert panel.messages[-1] == "nsc was already running"
        assert panel.states["auth"] == "stopped"
    finally:
        stack.down()


def test_every_button_is_as_wide_as_its_label(stack: Stack) -> None:
    """The browser layout test (tests/browser) measures it; here, what makes it so."""
    panel = StackStatusPanel(stack)
    for buttons in panel.buttons.values():
        for button in buttons.values():
            assert button.layout.width == "auto" and button.layout.min_width == "max-content"

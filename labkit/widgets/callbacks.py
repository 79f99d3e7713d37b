"""Widget callbacks that work from a browser and from code: the cell loop, Enter to send.

JupyterLab 4.6 sends widget messages over kernel *subshells*, and ipykernel 7 runs
each subshell on a thread of its own with an event loop of its own. A click in the
browser therefore calls a panel's callback on that thread: a task created there runs
on the wrong loop (a cell that awaits it gets "attached to a different loop"), and a
NATS connection made in a cell must not be used from it. A click made from code
(`button.click()` in a cell), or in a JupyterLab without subshells, calls back on the
cell loop itself.

`CellLoop` is captured when a panel is built (in a cell, where the cell loop runs) and
hands work to that loop from wherever a callback runs: `call(fn)` runs a plain function
there (at once when already on it), `submit(coroutine)` schedules a coroutine there and
returns a future that `wait()` can await from a cell.

`on_enter(text, callback)`: pressing Enter in a Text box calls `callback`, as a Send
button's click does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import warnings
from collections.abc import Callable, Coroutine
from typing import Any


class NoCellLoop(RuntimeError):
    """A coroutine was handed to a panel built where no event loop runs."""


class CellLoop:
    """The loop (and thread) that was running when the panel was built."""

    def __init__(self) -> None:
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None  # built outside a kernel (a script): callbacks run in place
        self.thread = threading.current_thread()
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._lock = threading.Lock()

    @property
    def here(self) -> bool:
        """True when the caller runs on the cell loop's thread."""
        return threading.current_thread() is self.thread

    def call(self, function: Callable[[], object]) -> None:
        """Run `function` on the cell loop's thread: now when already there, else soon."""
        if self.here or self.loop is None or self.loop.is_closed():
            function()
        else:
            self.loop.call_soon_threadsafe(function)

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        """Schedule `coroutine` on the cell loop from any thread; its result as a future."""
        if self.loop is None or self.loop.is_closed():
            coroutine.close()
            raise NoCellLoop(
                "no event loop ran when this panel was built; call its async methods "
                "with `await` in a notebook cell instead"
            )
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    @property
    def busy(self) -> bool:
        """True while work handed over with `submit` is still running."""
        with self._lock:
            return bool(self._pending)

    async def wait(self) -> None:
        """Wait, in a cell, until everything handed over with `submit` has finished."""
        while True:
            with self._lock:
                pending = list(self._pending)
            if not pending:
                return
            await asyncio.gather(*(asyncio.wrap_future(f) for f in pending), return_exceptions=True)

    def _done(self, future: concurrent.futures.Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)


def from_the_page() -> bool:
    """True while the kernel handles a widget message from the page (a click in the
    browser), False for code in a cell (`button.click()`) and outside a kernel.

    A click from the page may have overtaken the text box's last letters (see
    labkit.widgets.typed); a click from code follows the value the code itself set.
    """
    try:
        from ipykernel.kernelbase import Kernel
    except ImportError:  # (a script without Jupyter)
        return False
    if not Kernel.initialized():
        return False
    parent = Kernel.instance().get_parent() or {}  # type: ignore[no-untyped-call]
    return bool(parent.get("header", {}).get("msg_type") == "comm_msg")


# How long the box must stay unchanged after Enter before the callback runs (below).
ENTER_SETTLE_SECONDS = 0.2


def on_enter(text: Any, callback: Callable[[], object], cell_loop: CellLoop | None = None) -> None:
    """Call `callback()` on the cell loop when Enter is pressed in the Text widget `text`.

    The browser sends a "submit" event on Enter (ipywidgets 8 still delivers it through
    `on_submit`, which it marks deprecated in favour of `continuous_update=False`, a
    value change that also fires when the box merely loses focus: not a "send"). That
    event can overtake the box's last value update, which the page holds back while an
    earlier one is unanswered: so the callback runs once the value has stayed the same
    for ENTER_SETTLE_SECONDS, and `cell_loop.wait()` waits for it. Without a running
    loop (a script) it runs at once.
    """
    loop = cell_loop or CellLoop()
    changes = [0]

    def changed(_change: Any) -> None:
        changes[0] += 1

    async def when_settled() -> None:
        while True:
            seen = changes[0]
            await asyncio.sleep(ENTER_SETTLE_SECONDS)
            if changes[0] == seen:
                break
        callback()

    def submitted(_text: Any) -> None:
        try:
            loop.submit(when_settled())
        except NoCellLoop:
            callback()

    text.observe(changed, names="value")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        text.on_submit(submitted)

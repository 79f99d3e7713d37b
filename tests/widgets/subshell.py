"""A widget callback fired the way JupyterLab 4.6 fires it from the browser.

JupyterLab sends widget messages over kernel subshells, and ipykernel 7 runs each
subshell on a thread of its own with an event loop of its own: `click_from_another_loop`
runs the callback inside a running loop on another thread, as a subshell does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable


def click_from_another_loop(action: Callable[[], None]) -> None:
    """Run `action` inside a running event loop on a thread of its own; re-raise its error."""
    failures: list[BaseException] = []

    async def in_subshell() -> None:
        action()

    def thread() -> None:
        try:
            asyncio.run(in_subshell())
        except BaseException as exc:  # re-raised in the test's thread
            failures.append(exc)

    runner = threading.Thread(target=thread)
    runner.start()
    runner.join()
    if failures:
        raise failures[0]

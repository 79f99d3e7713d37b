"""The server process's collector step: garbage is collected, what lives is frozen."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_freezing_collects_start_up_garbage_first_and_freezes_the_rest() -> None:
    # In a process of its own: freezing is for the life of the process.
    script = textwrap.dedent(
        """
        import gc, weakref
        from labkit.server.collector import freeze_startup_objects

        class Node:
            pass

        collected = []
        garbage = Node()
        garbage.me = garbage  # a cycle: only the cyclic collector frees it
        weakref.finalize(garbage, collected.append, "freed")
        del garbage
        kept = [Node() for _ in range(100)]
        assert gc.get_freeze_count() == 0
        frozen = freeze_startup_objects()
        print(collected, frozen >= 100, frozen == gc.get_freeze_count())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.split() == ["['freed']", "True", "True"]

"""Keep Python's cyclic garbage collector from pausing a serving process for long.

A full (oldest-generation) collection walks every object the process holds; in the
application server most of them are what its imports and start created, and will
live as long as the process. Measured in `bench/bench_fairness.py`: one such
collection fell inside alice's 20,000-request burst and held every request, bob's
too, for 24 to 25 ms, more than the whole worst-case bound (50x bob's 0.4 ms).
Freezing what exists once the server has started moves it out of the collector's
sight (`gc.freeze`), so later collections walk only what serving creates.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> int:
    """Collect what is garbage now, then freeze what is left; returns how many froze.

    Call once, after start-up: frozen objects are never collected, so garbage frozen
    with them would stay for the process's life (hence the collection first).
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()

"""Process-wide tuning of Python's garbage collector: the tricks a benchmark showed to pay, in one place.

Use cases and card builders call none of these: the composition root (bot/app.py, bot/cli) switches them on, or
hands them to a use case as a plain context manager. docs/performance.md ("Tuning: kept or removed, and why") gives
what each one buys, measured with and without it; one that buys too little is removed (two card tricks went so).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def freeze_start_up() -> None:
    """What imports and start-up built lives as long as the process: moved out of the collector's sight, so full
    collections do not walk all of it again (a full usage batch triggers several)."""
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """Undo `freeze_start_up` (an app built again in the same process, as tests do, lets the old one go)."""
    gc.unfreeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off while a whole audience is decided: its passes walk every list of
    people and every target made so far, again and again, and cost more than making them; targets hold no cycles
    for it to find. The process's other work goes on meanwhile (the query is awaited) and only finds cycles freed
    a few seconds later.

    Then what was made meanwhile joins the oldest generation without being examined (freeze, then unfreeze at once:
    nothing stays frozen): the first young collection would otherwise walk every one of those targets for nothing.
    A cycle freed meanwhile is found by the next full collection instead of the next young one."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:  # nobody else keeps objects frozen: unfreezing touches only ours
            gc.freeze()
            gc.unfreeze()
        if enabled:
            gc.enable()

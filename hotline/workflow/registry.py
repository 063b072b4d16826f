"""The only conditions and effects a workflow file may name.

`transitions` would import any dotted name a definition gives it; a workflow file
must not be able to call arbitrary code, so names resolve only from these tables.
"""

from collections.abc import Callable
from typing import Any

Rule = Callable[..., Any]
CONDITIONS: dict[str, Rule] = {}
EFFECTS: dict[str, Rule] = {}
# Effects that never change what the performance indicators count (the main assignments'
# facts, callbacks, the unreasonable mark): an event made only of these skips the running
# totals' before-and-after (hotline.indicators.totals). Unless an effect says so, it is assumed to count.
UNCOUNTED: set[str] = set()


def condition(name: str) -> Callable[[Rule], Rule]:
    """Register a guard: `fn(ctx, arg)` raises GuardFailed with the reason, or returns."""

    def register(fn: Rule) -> Rule:
        CONDITIONS[name] = fn
        return fn

    return register


def effect(name: str, *, counted: bool = True) -> Callable[[Rule], Rule]:
    """Register an effect: `fn(ctx, arg)` runs inside the event's transaction.
    `counted=False` promises it leaves every performance fact alone."""

    def register(fn: Rule) -> Rule:
        EFFECTS[name] = fn
        if not counted:
            UNCOUNTED.add(name)
        return fn

    return register

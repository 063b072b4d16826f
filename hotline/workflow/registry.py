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
# Guards whose refusal a ticket page says beside the actions (a rule the user runs into: the
# return window, the extension cap…), not those that only mean the action has nothing to act
# on here (no request to review, no community to pass to, signed already).
EXPLAINED: set[str] = set()


def condition(name: str, *, explained: bool = False) -> Callable[[Rule], Rule]:
    """Register a guard: `fn(ctx, arg)` raises GuardFailed with the reason, or returns.
    `explained=True`: the pages say its reason when it refuses an action (EXPLAINED)."""

    def register(fn: Rule) -> Rule:
        CONDITIONS[name] = fn
        if explained:
            EXPLAINED.add(name)
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

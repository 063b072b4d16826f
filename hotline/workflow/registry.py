"""The only conditions and effects a workflow file may name.

`transitions` would import any dotted name a definition gives it; a workflow file
must not be able to call arbitrary code, so names resolve only from these tables.
"""

from collections.abc import Callable
from typing import Any

Rule = Callable[..., Any]
CONDITIONS: dict[str, Rule] = {}
EFFECTS: dict[str, Rule] = {}


def condition(name: str) -> Callable[[Rule], Rule]:
    """Register a guard: `fn(ctx, arg)` raises GuardFailed with the reason, or returns."""

    def register(fn: Rule) -> Rule:
        CONDITIONS[name] = fn
        return fn

    return register


def effect(name: str) -> Callable[[Rule], Rule]:
    """Register an effect: `fn(ctx, arg)` runs inside the event's transaction."""

    def register(fn: Rule) -> Rule:
        EFFECTS[name] = fn
        return fn

    return register

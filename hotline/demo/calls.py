"""The demo's merged hotlines (一个号码) and its calls (来电).

Half the phone tickets about a merged line's categories (by ticket id: no draw from the
demo's random stream, so the rest of the demo stays as it was) came in on that line: 12315
for 市场监管, 12333 for 劳动社保 (workflows/selection.yaml). The phone tickets of the last
CALL_DAYS days came from a call the telephone system reported to their agent, a few minutes
before; one in five callers had rung once more before without a ticket being logged (hung
up, rang back). The history of a ticket logged from a call leaves the call id out (the demo
plays the engine's intake without one).
"""

from typing import Any

from hotline.demo.district import CATEGORY_NODES, LEAVES, WORKFLOW
from hotline.demo.life import DAY, at, seconds
from hotline.demo.writer import COLUMNS
from hotline.workflow.lines import Lines

CALL_DAYS = 60
# How long before its ticket's intake a call began, and the call before it without a ticket.
RANG_BEFORE = 180
RANG_AGAIN = 1200


def leaf_lines(lines: Lines) -> list[str | None]:
    """The merged line of each leaf of LEAVES (None: 12345's only), among the lines that follow
    the demo's workflow."""
    parents = {code: parent for code, _, parent, _ in CATEGORY_NODES}
    roots = {line.category: line.number for line in lines.all if line.category and line.workflow in (None, WORKFLOW)}
    out: list[str | None] = []
    for leaf in LEAVES:
        code: str | None = leaf.code
        while code is not None and code not in roots:
            code = parents.get(code)
        out.append(roots[code] if code is not None else None)
    return out


def demo_line(merged: str | None, channel: str, ticket_id: int) -> str | None:
    """The merged line a demo ticket came in on, or None (12345)."""
    return merged if merged and channel == "phone" and ticket_id % 2 == 0 else None


class CallRow:
    """A call as the writer inserts it (the columns of hotline.demo.writer.COLUMNS["calls"])."""

    __slots__ = COLUMNS["calls"]

    def __init__(self, **values: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, values.get(name))


def calls_of(life, tk, *, source: str) -> list[CallRow]:
    """The calls a demo ticket was logged from: none for another channel, an anonymous
    caller or an older ticket."""
    created = seconds(tk.created_at)
    if tk.channel != "phone" or not tk.caller_phone or created < life.now - CALL_DAYS * DAY:
        return []
    rows = []
    rang = [(created - RANG_BEFORE, tk.id, "")]
    if tk.id % 5 == 0:
        rang.insert(0, (created - RANG_AGAIN, None, "A"))
    for started, ticket_id, suffix in rang:
        rows.append(
            CallRow(
                id=life.new_id("calls"),
                source=source,
                call_id=f"DEMO-{tk.number}{suffix}",
                caller_phone=tk.caller_phone,
                agent_id=tk.created_by_id,
                dialled=tk.line,
                started_at=at(started),
                created_at=at(started + 1),
                ticket_id=ticket_id,
            )
        )
    return rows

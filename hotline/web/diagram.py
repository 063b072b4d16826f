"""The workflow drawn as an SVG, from the definition a ticket follows."""

from collections import defaultdict
from html import escape

from hotline.workflow.definition import RETURN_FROM, Workflow

BOX_W, BOX_H, COL_W, ROW_H, PAD = 112, 38, 168, 64, 20


def _successors(wf: Workflow) -> dict[str, list[str]]:
    succ: dict[str, list[str]] = defaultdict(list)
    for ev in wf.events.values():
        if ev.dest and ev.dest != RETURN_FROM:
            for src in ev.sources:
                if ev.dest != src and ev.dest not in succ[src]:
                    succ[src].append(ev.dest)
    return succ


def _layout(wf: Workflow) -> dict[str, tuple[int, int]]:
    """(column, row) per state: columns by the longest path from the initial state once
    the edges that lead back are set aside; the longest chain (the usual course of a
    ticket) runs along the first row."""
    succ = _successors(wf)
    back: set[tuple[str, str]] = set()
    on_stack: set[str] = set()
    seen: set[str] = set()

    def visit(state: str) -> None:
        seen.add(state)
        on_stack.add(state)
        # Busier states first: the usual course of a ticket passes through them.
        for nxt in sorted(succ[state], key=lambda n: -len(succ[n])):
            if nxt in on_stack:
                back.add((state, nxt))
            elif nxt not in seen:
                visit(nxt)
        on_stack.discard(state)

    visit(wf.initial)
    column = {wf.initial: 0}
    for _ in wf.states:  # relax: longest path in the acyclic rest
        for src in list(column):
            for nxt in succ[src]:
                if (src, nxt) not in back and column.get(nxt, -1) < column[src] + 1:
                    column[nxt] = column[src] + 1
    for state in wf.states:
        column.setdefault(state, max(column.values()) + 1)
    height: dict[str, int] = {}

    def reach(state: str) -> int:
        if state not in height:
            height[state] = 0
            height[state] = max([reach(n) + 1 for n in succ[state] if (state, n) not in back], default=0)
        return height[state]

    spine, state = [wf.initial], wf.initial
    while True:
        forward = [n for n in succ[state] if (state, n) not in back and column[n] == column[state] + 1]
        if not forward:
            break
        state = max(forward, key=reach)
        spine.append(state)
    rows: dict[int, int] = defaultdict(lambda: 1)
    pos = {}
    for state in wf.states:
        if state in spine:
            pos[state] = (column[state], 0)
        else:
            pos[state] = (column[state], rows[column[state]])
            rows[column[state]] += 1
    return pos


def workflow_svg(wf: Workflow, current: str | None = None) -> str:
    """An SVG of the states and the events between them; the current state is highlighted."""
    grid = _layout(wf)
    pos = {state: (PAD + col * COL_W, PAD + 14 + row * ROW_H) for state, (col, row) in grid.items()}
    width = PAD * 2 + (max(c for c, _ in grid.values()) + 1) * COL_W - (COL_W - BOX_W)
    height = PAD * 2 + 14 + (max(r for _, r in grid.values()) + 1) * ROW_H
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for ev in wf.events.values():
        targets = [ev.dest] if ev.dest and ev.dest != RETURN_FROM else []
        if ev.dest == RETURN_FROM:
            targets = sorted({s for e in wf.events.values() if e.dest == "returned" for s in e.sources})
        for src in ev.sources:
            for dst in targets:
                if dst != src:
                    edges[(src, dst)].append(ev.label)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="流程图：{escape(wf.label)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a96a6"/></marker></defs>',
    ]
    for (src, dst), labels in edges.items():
        x1, y1 = pos[src]
        x2, y2 = pos[dst]
        forward = x2 > x1
        sx = x1 + (BOX_W if forward else 0)
        tx = x2 + (0 if forward else BOX_W)
        sy, ty = y1 + BOX_H / 2, y2 + BOX_H / 2
        if x1 == x2:
            sx = tx = x1 + BOX_W
            bend = BOX_W / 2 + 10
            path = f"M{sx},{sy} C{sx + bend},{sy} {tx + bend},{ty} {tx},{ty}"
            lx, ly = sx + bend * 0.75, (sy + ty) / 2
        else:
            dx = (tx - sx) / 2
            lift = 0 if forward else -28
            path = f"M{sx},{sy} C{sx + dx},{sy + lift} {tx - dx},{ty + lift} {tx},{ty}"
            lx, ly = (sx + tx) / 2, (sy + ty) / 2 + lift * 0.75 - 3
        label = escape("、".join(dict.fromkeys(labels)))
        highlight = src == current
        colour = "#1d4f91" if highlight else "#8a96a6"
        parts.append(
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{1.6 if highlight else 1}" '
            f'marker-end="url(#arrow)"/>'
        )
        parts.append(
            f'<text x="{lx:.0f}" y="{ly:.0f}" font-size="10" text-anchor="middle" fill="{colour}" '
            f'stroke="#fff" stroke-width="3" paint-order="stroke">{label}</text>'
        )
    for state, (x, y) in pos.items():
        d = wf.states[state]
        is_current = state == current
        fill = "#1d4f91" if is_current else ("#eef1f5" if d.final else "#ffffff")
        stroke = "#1d4f91" if is_current else "#9aa6b5"
        text = "#ffffff" if is_current else "#1f2933"
        parts.append(
            f'<g><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="{BOX_H / 2 if d.final else 6}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="{2 if is_current else 1}"/>'
            f'<text x="{x + BOX_W / 2}" y="{y + BOX_H / 2 + 5}" font-size="13" text-anchor="middle" '
            f'fill="{text}" font-weight="{700 if is_current else 400}">{escape(d.label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)

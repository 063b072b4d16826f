"""The workflow drawn as an SVG, from the definition a ticket follows."""

from collections import defaultdict
from html import escape

from hotline.workflow.definition import RETURN_FROM, Workflow

BOX_W, BOX_H, COL_W, ROW_H, PAD = 112, 38, 236, 76, 20
# Edge labels: the font size, and the space one character and one line take.
LABEL_PX, CHAR_W, LINE_H = 12, 12.5, 20
# Where along an edge a label may sit, tried in this order until it overlaps nothing.
LABEL_SPOTS = (0.5, 0.38, 0.62, 0.28, 0.72, 0.2, 0.8, 0.45, 0.55, 0.33, 0.67)


def _bezier(p: tuple[float, ...], t: float) -> tuple[float, float]:
    """The point at t of the cubic curve with control points p = (x0, y0, … x3, y3)."""
    u = 1 - t
    weights = (u**3, 3 * u * u * t, 3 * u * t * t, t**3)
    return sum(w * p[2 * i] for i, w in enumerate(weights)), sum(w * p[2 * i + 1] for i, w in enumerate(weights))


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_label(curve: tuple[float, ...], text: str, taken: list) -> tuple[float, float]:
    """The first spot along the curve (or a line above or below it) where the label's box
    overlaps no state and no other label (the middle when none is free); its box is then taken."""
    half_w, half_h = len(text) * CHAR_W / 2 + 3, LINE_H / 2
    best = None
    spots = [(t, dy) for dy in (0, -LINE_H, LINE_H) for t in LABEL_SPOTS]
    for t, dy in spots:
        x, y = _bezier(curve, t)
        y += dy
        box = (x - half_w, y - half_h, x + half_w, y + half_h)
        if best is None:
            best = (x, y, box)
        if not any(_overlaps(box, other) for other in taken):
            best = (x, y, box)
            break
    taken.append(best[2])
    return best[0], best[1]


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
    # The second level's states (a community's, 二级派单) share a row below the rest.
    below = [s for s in wf.states if s not in spine and wf.states[s].level == "community"]
    for state in wf.states:
        if state in spine:
            pos[state] = (column[state], 0)
        elif state not in below:
            pos[state] = (column[state], rows[column[state]])
            rows[column[state]] += 1
    last = max((r for _, r in pos.values()), default=0)
    for state in below:
        pos[state] = (column[state], last + 1)
    return pos


BAND_TITLE = "社区办理（二级派单）"


def _band(wf: Workflow, pos: dict[str, tuple[float, float]], taken: list) -> str:
    """The frame around the second level's states (社区, 二级派单), labelled; none without them.
    Its title's box is taken: no edge label sits on it."""
    inside = [pos[s] for s, d in wf.states.items() if d.level == "community"]
    if not inside:
        return ""
    x0, y0 = min(x for x, _ in inside) - 10, min(y for _, y in inside) - 24
    x1, y1 = max(x for x, _ in inside) + BOX_W + 10, max(y for _, y in inside) + BOX_H + 10
    taken.append((x0 + 6, y0 + 1, x0 + 10 + len(BAND_TITLE) * CHAR_W, y0 + 19))
    return (
        f'<g class="level-community"><rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" rx="8" '
        f'fill="#f1f8f3" stroke="#5f9e74" stroke-dasharray="5 4"/>'
        f'<text x="{x0 + 8}" y="{y0 + 15}" font-size="12" fill="#2f6b45">{BAND_TITLE}</text></g>'
    )


def workflow_svg(wf: Workflow, current: str | None = None) -> str:
    """An SVG of the states and the events between them; the current state is highlighted."""
    grid = _layout(wf)
    pos = {state: (PAD + col * COL_W, PAD + 14 + row * ROW_H) for state, (col, row) in grid.items()}
    width = PAD * 2 + (max(c for c, _ in grid.values()) + 1) * COL_W - (COL_W - BOX_W)
    height = PAD * 2 + 14 + (max(r for _, r in grid.values()) + 1) * ROW_H + 10
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
    # The states' boxes (and the band's title) are taken first: no label sits on them.
    taken: list = [(x - 2, y - 2, x + BOX_W + 2, y + BOX_H + 2) for x, y in pos.values()]
    parts.append(_band(wf, pos, taken))
    # Edges within the spine first, then the shortest: they have the fewest free spots.
    order = sorted(
        edges.items(), key=lambda e: abs(pos[e[0][0]][0] - pos[e[0][1]][0]) + abs(pos[e[0][0]][1] - pos[e[0][1]][1])
    )
    for (src, dst), labels in order:
        x1, y1 = pos[src]
        x2, y2 = pos[dst]
        forward = x2 > x1
        sx = x1 + (BOX_W if forward else 0)
        tx = x2 + (0 if forward else BOX_W)
        sy, ty = y1 + BOX_H / 2, y2 + BOX_H / 2
        if x1 == x2:
            sx = tx = x1 + BOX_W
            bend = BOX_W / 2 + 10
            curve = (sx, sy, sx + bend, sy, tx + bend, ty, tx, ty)
        else:
            dx = (tx - sx) / 2
            # An edge back along the same row bows above the boxes; one back to another row
            # bows away from the edge forward between the same states.
            lift = 0 if forward else (-44 if y1 == y2 else 22)
            curve = (sx, sy, sx + dx, sy + lift, tx - dx, ty + lift, tx, ty)
        path = "M{:.0f},{:.0f} C{:.0f},{:.0f} {:.0f},{:.0f} {:.0f},{:.0f}".format(*curve)
        text = "、".join(dict.fromkeys(labels))
        lx, ly = _place_label(curve, text, taken)
        label = escape(text)
        highlight = src == current
        colour = "#1d4f91" if highlight else "#8a96a6"
        parts.append(
            f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="{1.6 if highlight else 1}" '
            f'marker-end="url(#arrow)"/>'
        )
        parts.append(
            f'<text x="{lx:.0f}" y="{ly + LABEL_PX / 2 - 1:.0f}" font-size="{LABEL_PX}" text-anchor="middle" '
            f'fill="{colour}" stroke="#fff" stroke-width="3" paint-order="stroke">{label}</text>'
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

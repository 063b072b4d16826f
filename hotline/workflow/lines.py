"""The hotlines merged into 12345 (一个号码), as data: the `lines` of workflows/selection.yaml.

Each merged line (12315, 12333, …) keeps its number, its part of the category tree and its
workflow; its tickets are counted apart. A new ticket's line is the one the caller dialled
(the call's `dialled`), else the one its integration source or channel maps to, else the
first line listed: the default, 12345 itself.
"""

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotline.errors import Invalid
from hotline.models import CHANNELS

_NUMBER = re.compile(r"^[0-9]{3,20}$")
_LINE_KEYS = {"number", "label", "category", "workflow", "channels", "sources"}
DEFAULT_LINE = "12345"
DEFAULT_LABEL = "政务服务便民热线"


@dataclass(frozen=True)
class Line:
    """One hotline number: its label, the root of its categories (None: the whole tree), its
    workflow (None: the selection's rules), the channels and integration sources it takes."""

    number: str
    label: str
    category: str | None = None
    workflow: str | None = None
    channels: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()


class Lines:
    """The lines of a district, the first the default; how a new ticket's line is found."""

    def __init__(self, lines: list[Line]) -> None:
        self.all = tuple(lines)
        self.default = lines[0]
        self.by_number = {line.number: line for line in lines}
        self._by_channel = {c: line for line in lines for c in line.channels}
        self._by_source = {s: line for line in lines for s in line.sources}

    @property
    def merged(self) -> bool:
        """Whether any line besides the default is configured."""
        return len(self.all) > 1

    def get(self, number: str | None) -> Line | None:
        return self.by_number.get(number) if number else None

    def named(self, number: str) -> Line:
        """The line of that number (Invalid naming `line` for a number not configured)."""
        line = self.by_number.get(number)
        if line is None:
            known = ", ".join(x.number for x in self.all)
            raise Invalid(
                f"line: no hotline {number!r} (known: {known})", field="line", zh=f"没有号码为 {number} 的热线"
            )
        return line

    def of_number(self, number: str | None) -> Line:
        """The line of a stored or dialled number; the default for any other number."""
        return self.by_number.get(number or "", self.default)

    def pick(self, *, dialled: str | None = None, source: str | None = None, channel: str | None = None) -> Line:
        """A new ticket's line: the number dialled, else its source's, else its channel's, else the default."""
        if dialled in self.by_number:
            return self.by_number[dialled]
        return self._by_source.get(source or "") or self._by_channel.get(channel or "") or self.default

    def label(self, number: str | None) -> str:
        line = self.by_number.get(number or "")
        return f"{line.number} {line.label}" if line else (number or "")


def parse_lines(raw: Any, path: Path, workflows: set[str]) -> Lines:
    """The `lines` of selection.yaml, validated; raise ValueError naming the file and key."""
    if raw is None:
        return Lines([Line(DEFAULT_LINE, DEFAULT_LABEL)])
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{path}: lines: must be a non-empty list (the first is the default line)")
    lines: list[Line] = []
    seen_channels: dict[str, str] = {}
    seen_sources: dict[str, str] = {}
    for i, item in enumerate(raw):
        where = f"{path}: lines[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: must be a mapping")
        unknown = set(item) - _LINE_KEYS
        if unknown:
            raise ValueError(f"{where}.{sorted(unknown)[0]}: unknown key (known: {', '.join(sorted(_LINE_KEYS))})")
        number = str(item.get("number", ""))
        if not _NUMBER.match(number):
            raise ValueError(f"{where}.number: the hotline's number, 3 to 20 digits (in quotes), not {number!r}")
        if any(line.number == number for line in lines):
            raise ValueError(f"{where}.number: {number!r} is listed twice")
        label = item.get("label")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{where}.label: the line's name, e.g. 市场监管投诉举报热线")
        category = item.get("category")
        if category is not None:
            category = str(category)
            if i == 0:
                raise ValueError(f"{where}.category: the default line takes the whole category tree")
        workflow = item.get("workflow")
        if workflow is not None and workflow not in workflows:
            raise ValueError(f"{where}.workflow: no workflow named {workflow!r}")
        channels = _names(where, "channels", item.get("channels"))
        for c in channels:
            if c not in CHANNELS:
                raise ValueError(f"{where}.channels: unknown channel {c!r} (known: {', '.join(CHANNELS)})")
            if c in seen_channels:
                raise ValueError(f"{where}.channels: {c!r} maps to line {seen_channels[c]} already")
            seen_channels[c] = number
        sources = _names(where, "sources", item.get("sources"))
        for s in sources:
            if s in seen_sources:
                raise ValueError(f"{where}.sources: {s!r} maps to line {seen_sources[s]} already")
            seen_sources[s] = number
        lines.append(Line(number, label.strip(), category, workflow, channels, sources))
    return Lines(lines)


def _names(where: str, key: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(v, str) and v for v in raw):
        raise ValueError(f"{where}.{key}: must be a list of names")
    return tuple(raw)

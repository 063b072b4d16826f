"""Who calls the demo district about what: type, category, place, caller and words."""

import random
from bisect import bisect
from datetime import date
from typing import Any

from hotline.demo.district import (
    CHANNEL_WEIGHTS,
    CONTENT,
    GIVEN,
    LEAVES,
    PHONE_PREFIXES,
    SURNAMES,
    TYPE_WEIGHTS,
    Directory,
    Leaf,
    Place,
)

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def cumulative(weights) -> list[float]:
    """Running sums of the weights (for random.choices' cum_weights)."""
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def pick(rng: random.Random, population, cum: list[float]):
    """`rng.choices(population, cum_weights=cum)[0]`, drawn the same way (one `random()`, the
    same bisection: the same stream of numbers) without the checks and the list around it."""
    return population[bisect(cum, rng.random() * cum[-1], 0, len(population) - 1)]


TYPE_NAMES = [t for t, _ in TYPE_WEIGHTS]
TYPE_CUM = cumulative(w for _, w in TYPE_WEIGHTS)
CHANNEL_NAMES = [c for c, _ in CHANNEL_WEIGHTS]
CHANNEL_CUM = cumulative(w for _, w in CHANNEL_WEIGHTS)


class Callers:
    """The intake side of tickets: type, category, place, caller, words."""

    def __init__(self, rng: random.Random, d: Directory) -> None:
        self.rng = rng
        self.d = d
        # Some communities call more than others.
        self.place_cum = cumulative(rng.uniform(0.4, 2.0) for _ in d.places)
        self.place_range = range(len(d.places))
        self.leaf_tables: dict[tuple[int, bool], tuple[list[int], list[float]]] = {}
        # A few people call again and again (重复来电).
        self.frequent = [(self._name(), self._phone()) for _ in range(200)]

    def _name(self) -> str:
        rng = self.rng
        surname = rng.choice(SURNAMES)
        if rng.random() < 0.45:
            return surname + rng.choice(("先生", "女士"))
        return surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))

    def _phone(self) -> str:
        return f"{self.rng.choice(PHONE_PREFIXES)}{self.rng.randrange(10**9):09d}"

    def leaves_for(self, season: int, consultation: bool) -> tuple[list[int], list[float]]:
        """Leaves and cumulative weights in a season: 0 plain, 1 summer, 2 heating starts, 3 heating."""
        key = (season, consultation)
        table = self.leaf_tables.get(key)
        if table is None:
            index, weights = [], []
            for i, leaf in enumerate(LEAVES):
                weight = leaf.question_weight if consultation else leaf.problem_weight
                if not weight or not (leaf.questions if consultation else leaf.problems):
                    continue
                if "summer" in leaf.flags and season == 1:
                    weight *= 1.8
                if "heating" in leaf.flags:
                    weight *= (0.05, 0.05, 0.8, 3.0)[season]
                index.append(i)
                weights.append(weight)
            table = self.leaf_tables[key] = (index, cumulative(weights))
        return table

    def pick(self, season: int, master: Any) -> dict[str, Any]:
        """A new caller's request, or a repeat of the master's (a duplicate, merged later)."""
        rng, d = self.rng, self.d
        if master is not None:
            ticket_type, leaf_i, place_i, issue, address, lat, lng, urgency = master.request
        else:
            ticket_type = pick(rng, TYPE_NAMES, TYPE_CUM)
            index, cum = self.leaves_for(season, ticket_type == "consultation")
            leaf_i = pick(rng, index, cum)
            leaf = LEAVES[leaf_i]
            issue = rng.randrange(len(leaf.questions if ticket_type == "consultation" else leaf.problems))
            place_i = pick(rng, self.place_range, self.place_cum)
            place = d.places[place_i]
            if rng.random() < 0.5:
                address = f"{rng.choice(place.roads)}{rng.randint(1, 399)}号"
            else:
                address = f"{rng.choice(place.estates)}{rng.randint(1, 32)}栋{rng.randint(1, 4)}单元"
            lat = round(place.lat + rng.gauss(0, 0.003), 6)
            lng = round(place.lng + rng.gauss(0, 0.003), 6)
            urgency = self._urgency(leaf)
        leaf, place = LEAVES[leaf_i], d.places[place_i]
        name, phone = rng.choice(self.frequent) if rng.random() < 0.03 else (self._name(), self._phone())
        anonymous = rng.random() < (0.1 if ticket_type == "report" else 0.03)
        confidential = rng.random() < (0.3 if ticket_type == "report" else 0.03)
        reply_wanted = not (anonymous and rng.random() < 0.5) and rng.random() > 0.03
        caller = "匿名市民" if anonymous else f"市民{name}"
        title, content = self._words(ticket_type, leaf, issue, place, address, caller)
        return {
            "type": ticket_type, "leaf": leaf_i, "place": place_i, "issue": issue, "address": address,
            "lat": lat, "lng": lng, "urgency": urgency,
            "channel": pick(rng, CHANNEL_NAMES, CHANNEL_CUM),
            "caller_name": None if anonymous else name, "caller_phone": phone, "anonymous": anonymous,
            "confidential": confidential, "reply_wanted": reply_wanted, "title": title, "content": content,
        }  # fmt: skip

    def _urgency(self, leaf: Leaf) -> str:
        r = self.rng.random()
        if "danger" in leaf.flags:
            return "critical" if r < 0.2 else "urgent" if r < 0.3 else "normal"
        if "outage" in leaf.flags:
            return "urgent" if r < 0.25 else "normal"
        return "urgent" if r < 0.01 else "critical" if r < 0.013 else "normal"

    def _words(self, ticket_type: str, leaf: Leaf, issue: int, place: Place, address: str, caller: str):
        """Title and content, from the category's phrases."""
        where = f"{place.street}{place.community}"
        if ticket_type == "consultation":
            title, detail = leaf.questions[issue]
            return title, CONTENT["consultation"].format(caller=caller, detail=detail, place=where)
        title, detail = leaf.problems[issue]
        if ticket_type == "suggestion":
            content = CONTENT["suggestion"].format(caller=caller, place=where, title=title)
            return f"关于加强{leaf.name}管理的建议", content
        if ticket_type == "praise":
            dept = self.d.departments[leaf.department][2]
            content = CONTENT["praise"].format(caller=caller, place=where, title=title, dept=dept)
            return f"表扬{dept}工作人员", content
        content = CONTENT[ticket_type].format(caller=caller, place=where + address, detail=detail)
        return f"{place.community}{title}", content


def season(day: int) -> int:
    """The season of a day counted from 1970-01-01: 0 plain, 1 summer, 2 heating starts, 3 heating."""
    d = date.fromordinal(day + _EPOCH_ORDINAL)
    if d.month in (12, 1, 2, 3) or d.month == 11 and d.day >= 15:
        return 3
    if d.month == 11 or d.month == 10 and d.day >= 15:
        return 2
    return 1 if d.month in (6, 7, 8) else 0

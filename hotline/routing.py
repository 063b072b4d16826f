"""Routing by responsibility (按责转办): category and place to department."""

from dataclasses import dataclass

from sqlalchemy import or_
from sqlmodel import Session, select

from hotline.directory import category_path
from hotline.errors import Invalid
from hotline.models import Category, Department, RoutingRule


@dataclass(frozen=True)
class Route:
    """The department routing chose, and why: the rule that matched, or else the default
    department of the category or of its nearest ancestor that has one."""

    department: Department
    rule: RoutingRule | None  # None: a category's default decided
    # The rule's category (None: a rule for any category), or the category whose default decided.
    category: Category | None
    inherited: bool  # that category is an ancestor of the one asked about, not the one itself

    @property
    def how(self) -> str:
        """The choice as the ticket's history records it: "rule:<id>" or "category:<code>"."""
        return f"rule:{self.rule.id}" if self.rule is not None else f"category:{self.category.code}"


class NoRoute(Invalid):
    """Neither a rule nor a category default gives an active department; `stopped` names the
    deactivated departments that one of them would have chosen."""

    def __init__(self, message: str, *, stopped: list[str], **extra) -> None:
        super().__init__(message, **extra)
        self.stopped = stopped


def route(session: Session, *, category_id: int | None, street: str | None, community: str | None) -> Route:
    """The department responsible for a category at a place.

    Rules first, the most specific winning: a rule on the category itself beats one on
    an ancestor, which beats one for any category; then a rule for the community beats
    one for the street, which beats one for anywhere; then the higher priority, then
    the older rule. Without a matching rule, the nearest category default applies.
    """
    chain = category_path(category_id, lambda i: session.get(Category, i))[::-1]  # nearest first
    depth = {c.id: i for i, c in enumerate(chain)}
    rules = session.exec(
        select(RoutingRule).where(
            RoutingRule.active,
            or_(RoutingRule.category_id.is_(None), RoutingRule.category_id.in_(list(depth) or [-1])),
            or_(RoutingRule.street.is_(None), RoutingRule.street == street),
            or_(RoutingRule.community.is_(None), RoutingRule.community == community),
        )
    ).all()

    def specificity(rule: RoutingRule) -> tuple:
        category_rank = -depth[rule.category_id] if rule.category_id is not None else -len(chain) - 1
        place_rank = 2 if rule.community else 1 if rule.street else 0
        return (category_rank, place_rank, rule.priority, -(rule.id or 0))

    # The units passed over, in the order met: deactivated ones, and communities (which get
    # their work from their street office; a rule or default made before that was refused).
    stopped: list[str] = []

    def usable(department: Department | None) -> bool:
        if department is not None and department.active and department.parent_id is None:
            return True
        if department is not None and department.name not in stopped:
            stopped.append(department.name)
        return False

    for rule in sorted(rules, key=specificity, reverse=True):
        department = session.get(Department, rule.department_id)
        if usable(department):
            category = chain[depth[rule.category_id]] if rule.category_id is not None else None
            return Route(department, rule, category, depth.get(rule.category_id, 0) > 0)
    for i, category in enumerate(chain):
        if category.department_id is not None:
            department = session.get(Department, category.department_id)
            if usable(department):
                return Route(department, None, category, i > 0)
    category_text = f"category {chain[0].code!r} ({chain[0].name})" if chain else "no category"
    place = "/".join(p for p in (street, community) if p) or "no place"
    if stopped:
        raise NoRoute(
            f"the routing rules and category defaults for {category_text} at {place} name only "
            f"deactivated departments or communities ({', '.join(stopped)}); give the department",
            stopped=stopped,
            field="department",
            zh=f"匹配的派单规则或分类默认承办单位已停用或为社区（{'、'.join(stopped)}），请手动选择承办单位",
        )
    raise NoRoute(
        f"no routing rule or category default matches {category_text} at {place}; give the department",
        stopped=[],
        field="department",
        zh="派单规则未匹配到承办单位，请手动选择承办单位",
    )

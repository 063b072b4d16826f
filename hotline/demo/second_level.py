"""Second-level dispatch in the demo (二级派单): some of the street offices' tickets in hand
passed to their communities, played through the workflow gateway after the bulk load, each
left at a step of the second level.

The bulk load (hotline.demo.life) plays the centre's loop; these few tickets then go on, through
`fire()` itself, at times between their last event and the demo's now, and the community's own
ladder (hotline.supervision.escalate_part) is taken as the scheduler would have, in office hours,
up to each step and up to the demo's now.
"""

import random
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import exists
from sqlmodel import Session, select

from hotline.demo.district import Directory
from hotline.demo.life import at, next_sweep, seconds
from hotline.models import Approval, Assignment, Department, Ticket
from hotline.supervision import escalate_part
from hotline.workflow.engine import fire

# The showcase of the bulk load (hotline.demo._SHOWCASE) that leaves a street office's ticket
# in hand for this: the request routed to a street office, the life stopped in `in_progress`.
STREET_HELD = "street_held"
# The steps each played ticket takes; where the last one leaves it is a state of the demo (each
# state of the second level among the first three).
PLAYS = (
    ("sub_dispatch", "sub_sign", "sub_reply"),
    ("sub_dispatch", "sub_sign"),
    ("sub_dispatch",),
    ("sub_dispatch", "sub_sign", "sub_reply", "reject_sub_reply"),
    ("sub_dispatch", "sub_sign", "sub_reply", "approve_sub_reply"),
    ("sub_dispatch", "sub_return"),
)
TICKETS_PER_PLAY = 3
# The tickets a street office holds that it may pass down once it has signed.
HELD = ("dispatched", "in_progress")
# The steps of the community's; the rest are the street office's.
BY_COMMUNITY = {"sub_sign", "sub_reply", "sub_return"}
# The played steps fall within this time before the demo's now (after the ticket's last event).
WINDOW = timedelta(days=2)

MESSAGES = ("请社区网格员上门核实并处理", "请社区协调物业处理并回复", "请社区入户了解情况后答复")
RESULTS = (
    "{community}网格员已上门核实，问题已协调解决，已向诉求人说明处理情况。",
    "{community}已联系物业及相关责任人现场处理，现场已恢复，诉求人表示认可。",
    "{community}已入户了解情况，已按政策向诉求人解释并协助办理。",
)
REJECT_REASONS = ("请补充处理前后的现场情况说明", "请写明与诉求人沟通的结果")
RETURN_REASONS = ("经核实，该地址不在本社区辖区", "该事项需街道执法中队处理，社区无执法权限")


def _payload(event: str, community: Department, rng: random.Random) -> dict[str, str]:
    if event == "sub_dispatch":
        return {"community": community.code, "message": rng.choice(MESSAGES)}
    if event == "sub_reply":
        return {"result": rng.choice(RESULTS).format(community=community.name.removesuffix("居民委员会"))}
    if event == "reject_sub_reply":
        return {"reason": rng.choice(REJECT_REASONS)}
    if event == "sub_return":
        return {"reason": rng.choice(RETURN_REASONS)}
    return {}


def _community_for(session: Session, ticket: Ticket, rng: random.Random) -> Department | None:
    """The community office of the ticket's own community, else one of its street office's."""
    communities = session.exec(
        select(Department).where(Department.parent_id == ticket.main_department_id).order_by(Department.code)
    ).all()
    if not communities:
        return None
    own = [c for c in communities if ticket.community and c.name.startswith(ticket.community)]
    return own[0] if own else rng.choice(communities)


def _ladder_until(session: Session, runtime, ticket: Ticket, until: datetime) -> None:
    """The community's own ladder on the ticket before `until`, as a scheduler sweeping once a
    minute would have taken it: at the first sweep at or after the part's next look and the
    ticket's last change (a part passed down after the street's own handle-by is overdue at
    once), waiting for office hours as the sweep does."""
    part = session.exec(
        select(Assignment).where(Assignment.ticket_id == ticket.id, Assignment.next_due_at.is_not(None))
    ).first()
    while part is not None:
        sweep_at = next_sweep(part.next_due_at, seconds(ticket.updated_at))
        if sweep_at is None or at(sweep_at) >= until:
            return
        escalate_part(session, runtime, ticket, part, at(sweep_at))


def pass_down(runtime, d: Directory, now: datetime, rng: random.Random) -> Counter:
    """Play the second level on the latest tickets the street offices hold in hand (with
    communities under them); the count of the states they are left in."""
    streets = {dept_id for dept_id, _, _ in d.departments.values()}
    left: Counter = Counter()
    with runtime.db.session() as session:
        offices = session.exec(select(Department.parent_id).where(Department.parent_id.is_not(None))).all()
        streets &= set(offices)
        waiting = exists().where(Approval.ticket_id == Ticket.id, Approval.status == "pending")
        candidates = session.exec(
            select(Ticket)
            .where(Ticket.state.in_(HELD), Ticket.main_department_id.in_(streets), Ticket.updated_at < now)
            .where(~waiting)
            .order_by(Ticket.id.desc())
            .limit(len(PLAYS) * TICKETS_PER_PLAY)
        ).all()
        for i, ticket in enumerate(candidates):
            community = _community_for(session, ticket, rng)
            if community is None:
                continue
            # A ticket still to sign for: the street office signs first.
            play = (("sign",) if ticket.state == "dispatched" else ()) + PLAYS[i % len(PLAYS)]
            start = max(ticket.updated_at, now - WINDOW)
            step = (now - start) / (len(play) + 1)
            for k, event in enumerate(play, start=1):
                unit = community.id if event in BY_COMMUNITY else ticket.main_department_id
                at = start + step * k
                _ladder_until(session, runtime, ticket, at)
                fire(session, runtime, ticket, event, d.handlers[unit], _payload(event, community, rng), now=at)
            _ladder_until(session, runtime, ticket, now)
            left[ticket.state] += 1
    return left

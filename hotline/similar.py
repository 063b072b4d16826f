"""Similar open tickets (并单): what another caller already reported, found while the agent
logs a call — the same words, the same place, the same category.

Three bounded reads of the last SIMILAR_DAYS, each by an index: the NEWEST_ROWS newest open
tickets (ix_tickets_state_created), and at most SCAN_ROWS open tickets of the place
(ix_tickets_place) and of the category. The text is compared in Python: the words
of what the agent typed (jieba, as the knowledge base segments them; stop words and the
words of asking left out) looked for in each candidate's title and content.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, select

from hotline.directory import clean_place, places
from hotline.knowledge.feedback import QUESTION_WORDS
from hotline.knowledge.text import words
from hotline.models import Category, Ticket
from hotline.words import stop_words

SIMILAR_DAYS = 30
SIMILAR_LIMIT = 5
# Rows read at most: the newest open tickets of the window, and those of the place or category.
NEWEST_ROWS = 200
SCAN_ROWS = 400
# Words read from what the agent typed, at most (the first ones: the title, then the content).
MAX_WORDS = 24
TEXT_CHARS = 300
# A candidate is offered when at least MIN_SHARED of the words are in it (all of them for a
# shorter text) and its score reaches MIN_SCORE: the share of the typed words it contains
# (weighted by their length), plus a bonus for the same category and place.
MIN_SHARED = 2
MIN_SCORE = 0.5
CATEGORY_BONUS = 0.25
STREET_BONUS = 0.15
COMMUNITY_BONUS = 0.1


@dataclass(frozen=True)
class Similar:
    ticket_id: int
    score: float
    shared: tuple[str, ...]  # the typed words the ticket contains
    same_category: bool
    same_place: bool


def key_words(text: str) -> list[str]:
    """The words that say what a text is about: two characters or more, no stop words, no
    words of asking (怎么办, 请问…), no numbers; the first MAX_WORDS."""
    stops = stop_words() | QUESTION_WORDS
    kept = [w for w in words(text[:TEXT_CHARS]) if len(w) > 1 and w not in stops and not w.isdigit()]
    return list(dict.fromkeys(kept))[:MAX_WORDS]


def similar_open_tickets(
    session: Session,
    runtime,
    *,
    text: str,
    street: str = "",
    community: str = "",
    category: str = "",
    now: datetime,
    exclude: set[int] = frozenset(),
    limit: int = SIMILAR_LIMIT,
) -> list[Similar]:
    """Open tickets of the last SIMILAR_DAYS like the one being logged, the most alike first."""
    terms = key_words(text)
    if not terms:
        return []
    since = now - timedelta(days=SIMILAR_DAYS)
    open_states = runtime.workflows.open_states
    street_v, community_v = clean_place(places(session), street, community)
    category_id = None
    if category:
        category_id = session.exec(select(Category.id).where(Category.code == category)).first()
    columns = (Ticket.id, Ticket.title, Ticket.content, Ticket.street, Ticket.community, Ticket.category_id)
    base = select(*columns).where(Ticket.created_at >= since, Ticket.state.in_(open_states))
    reads = [base.order_by(Ticket.created_at.desc()).limit(NEWEST_ROWS)]
    if street_v:
        place = [Ticket.street == street_v] + ([Ticket.community == community_v] if community_v else [])
        reads.append(base.where(*place).order_by(Ticket.created_at.desc()).limit(SCAN_ROWS))
    if category_id is not None:
        reads.append(base.where(Ticket.category_id == category_id).order_by(Ticket.created_at.desc()).limit(SCAN_ROWS))
    candidates = {}
    for stmt in reads:
        for row in session.exec(stmt):
            candidates[row[0]] = row
    total = sum(len(t) for t in terms)
    needed = min(MIN_SHARED, len(terms))
    found = []
    for ticket_id, title, content, t_street, t_community, t_category in candidates.values():
        if ticket_id in exclude:
            continue
        body = f"{title}\n{content}".lower()
        shared = tuple(t for t in terms if t in body)
        if len(shared) < needed:
            continue
        same_category = category_id is not None and t_category == category_id
        same_street = bool(street_v) and t_street == street_v
        same_community = same_street and bool(community_v) and t_community == community_v
        score = (
            sum(len(t) for t in shared) / total
            + CATEGORY_BONUS * same_category
            + STREET_BONUS * same_street
            + COMMUNITY_BONUS * same_community
        )
        if score >= MIN_SCORE:
            found.append(Similar(ticket_id, round(score, 3), shared, same_category, same_street))
    found.sort(key=lambda s: (-s.score, -s.ticket_id))
    return found[:limit]

"""Knowledge flowing back (知识回流): questions nobody could answer (知识缺口), articles
flagged as unhelpful or out of date, departments' answers turned into drafts, and the
owners' warning before an article expires. Services flush; the caller commits."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from hotline import notices
from hotline.db import dialect_insert
from hotline.deadlines.calendar import local_iso
from hotline.errors import Conflict, Invalid, NotFound, NotPermitted
from hotline.knowledge import articles
from hotline.knowledge.articles import EDITORS, ArticleIn
from hotline.knowledge.text import words
from hotline.models import (
    FLAG_REASONS,
    GAP_SOURCES,
    Article,
    ArticleFlag,
    Category,
    Department,
    KnowledgeGap,
    Ticket,
)
from hotline.words import stop_words
from hotline.workflow.engine import Actor

# Owners hear of an article's expiry this many days ahead.
EXPIRY_WARNING_DAYS = 15
GAP_KEY_CHARS = 200
GAP_QUESTION_CHARS = 200
# How a question is asked, not what it asks: left out of a gap's key with the stop words.
_ASKING = (
    "请问 问一下 咨询 想问 如何 怎么 怎么办 怎样 怎么样 咋 咋办 哪里 哪儿 在哪 什么 啥 多少 在哪里 在哪儿 吗 "
    "呢 吧 啊 呀 嘛 么 能否 能不能 可以 可不 可不可以 是否 需要 要 我 我们 你们 您好 你好"
)
QUESTION_WORDS = frozenset(_ASKING.split())


def gap_key(question: str) -> str:
    """What makes two questions the same gap: their words (stop words left out), sorted,
    so that 社保卡怎么补办 and 怎么补办社保卡 count as one."""
    stops = stop_words() | QUESTION_WORDS
    kept = sorted({w for w in words(question) if w not in stops})
    return " ".join(kept)[:GAP_KEY_CHARS].strip()


def record_gap(session: Session, question: str, *, source: str, at: datetime) -> int | None:
    """Count a question the knowledge base had no answer for; the gap's id, or None for a
    question with no words in it. One statement (an upsert): safe under concurrent askers."""
    if source not in GAP_SOURCES:
        raise ValueError(f"unknown gap source {source!r}")
    key = gap_key(question)
    if not key:
        return None
    question = " ".join(question.split())[:GAP_QUESTION_CHARS]
    counter = "by_agents" if source == "agent" else "by_assistant"
    table = KnowledgeGap.__table__
    insert = dialect_insert(session.get_bind().dialect.name)(table).values(
        key=key,
        question=question,
        asked=1,
        by_agents=int(source == "agent"),
        by_assistant=int(source == "assistant"),
        first_at=at,
        last_at=at,
    )
    statement = insert.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "question": insert.excluded.question,
            "asked": table.c.asked + 1,
            counter: table.c[counter] + 1,
            "last_at": insert.excluded.last_at,
            # Asked again after it was closed: open again.
            "closed_at": None,
            "closed_by_id": None,
        },
    ).returning(table.c.id)
    return session.execute(statement).scalar_one()


def gaps(session: Session, *, closed: bool = False, limit: int = 50, offset: int = 0) -> tuple[list[KnowledgeGap], int]:
    """Open gaps (or closed ones), most asked first; and how many there are."""
    where = KnowledgeGap.closed_at.is_not(None) if closed else KnowledgeGap.closed_at.is_(None)
    rows = session.exec(
        select(KnowledgeGap)
        .where(where)
        .order_by(KnowledgeGap.asked.desc(), KnowledgeGap.last_at.desc(), KnowledgeGap.id)
        .limit(limit)
        .offset(offset)
    ).all()
    total = session.exec(select(func.count()).select_from(KnowledgeGap).where(where)).one()
    return list(rows), total


def close_gap(
    session: Session, gap_id: int, actor: Actor, at: datetime, *, article_id: int | None = None
) -> KnowledgeGap:
    """An editor closes a gap, naming the article that now answers it if there is one."""
    gap = session.get(KnowledgeGap, gap_id)
    if gap is None:
        raise NotFound(zh="该知识缺口不存在")
    if gap.closed_at is not None:
        raise Conflict("this gap is already closed", zh="该知识缺口已处理")
    if article_id is not None and session.get(Article, article_id) is None:
        raise Invalid(f"no article {article_id}", field="article_id", zh="知识条目不存在")
    gap.closed_at, gap.closed_by_id, gap.article_id = at, actor.id, article_id
    session.add(gap)
    session.flush()
    return gap


def gap_out(gap: KnowledgeGap) -> dict[str, Any]:
    return {
        "id": gap.id,
        "question": gap.question,
        "asked": gap.asked,
        "by_agents": gap.by_agents,
        "by_assistant": gap.by_assistant,
        "first_at": local_iso(gap.first_at),
        "last_at": local_iso(gap.last_at),
        "closed_at": local_iso(gap.closed_at) if gap.closed_at else None,
        "article_id": gap.article_id,
    }


def flag(
    session: Session,
    article_id: int,
    *,
    reason: str,
    comment: str | None,
    actor: Actor | None,
    at: datetime,
) -> ArticleFlag:
    """Flag an article: by a member of staff (`actor`) who may read it, or by a citizen
    (`actor` None) on a published public article valid today."""
    if reason not in FLAG_REASONS:
        raise Invalid(f"reason must be one of {', '.join(FLAG_REASONS)}", field="reason", zh="请选择反馈原因")
    if actor is None:
        article = articles.get_public(session, article_id, articles.local_today(at))
    else:
        article = articles.get_readable(session, article_id, actor)
    row = ArticleFlag(
        article_id=article.id,
        reason=reason,
        comment=(comment or "").strip()[:500] or None,
        source="citizen" if actor is None else "agent",
        by_id=actor.id if actor else None,
        at=at,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class FlaggedArticle:
    """An article with open flags, for the editors' list."""

    article: Article
    flags: list[ArticleFlag]

    @property
    def count(self) -> int:
        return len(self.flags)


def flagged(session: Session, *, limit: int = 50) -> list[FlaggedArticle]:
    """Articles with open flags, most flagged first; each with its open flags, newest first."""
    counts = (
        select(ArticleFlag.article_id, func.count().label("n"), func.max(ArticleFlag.at).label("last"))
        .where(ArticleFlag.resolved_at.is_(None))
        .group_by(ArticleFlag.article_id)
        .order_by(func.count().desc(), func.max(ArticleFlag.at).desc())
        .limit(limit)
    ).subquery()
    ids = [row[0] for row in session.execute(select(counts.c.article_id))]
    if not ids:
        return []
    by_id = {a.id: a for a in session.exec(select(Article).where(Article.id.in_(ids)))}
    open_flags: dict[int, list[ArticleFlag]] = {i: [] for i in ids}
    for row in session.exec(
        select(ArticleFlag)
        .where(ArticleFlag.article_id.in_(ids), ArticleFlag.resolved_at.is_(None))
        .order_by(ArticleFlag.at.desc(), ArticleFlag.id.desc())
    ):
        open_flags[row.article_id].append(row)
    return [FlaggedArticle(by_id[i], open_flags[i]) for i in ids]


def open_flags(session: Session, article_id: int) -> list[ArticleFlag]:
    """An article's open flags, newest first."""
    return list(
        session.exec(
            select(ArticleFlag)
            .where(ArticleFlag.article_id == article_id, ArticleFlag.resolved_at.is_(None))
            .order_by(ArticleFlag.at.desc(), ArticleFlag.id.desc())
        )
    )


def resolve_flags(session: Session, article_id: int, actor: Actor, at: datetime) -> int:
    """An editor has dealt with an article's open flags; how many were open."""
    articles.get(session, article_id)
    rows = open_flags(session, article_id)
    for row in rows:
        row.resolved_at, row.resolved_by_id = at, actor.id
        session.add(row)
    session.flush()
    return len(rows)


def flag_out(row: ArticleFlag) -> dict[str, Any]:
    return {
        "id": row.id,
        "article_id": row.article_id,
        "reason": row.reason,
        "comment": row.comment,
        "source": row.source,
        "at": local_iso(row.at),
        "resolved_at": local_iso(row.resolved_at) if row.resolved_at else None,
    }


def _may_draft(actor: Actor, ticket: Ticket) -> None:
    if actor.role in EDITORS:
        return
    if actor.role == "leader" and actor.department_id is not None and actor.department_id == ticket.main_department_id:
        return
    raise NotPermitted(
        "only editors, or the leader of the department that answered, draft from a ticket",
        zh="只有知识库管理员或承办单位的负责人可以把工单转为知识",
    )


def draft_from_ticket(session: Session, ticket_id: int, actor: Actor, at: datetime) -> Article:
    """A draft article from a consultation ticket's answer (the department's reply, or the
    agent's direct answer): the citizen's question and the answer, filed under the ticket's
    category, issued by the department that answered. One draft per ticket."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(zh="工单不存在，或您无权查看")
    if actor.role == "leader" and ticket.main_department_id != actor.department_id:
        raise NotFound(zh="工单不存在，或您无权查看")  # a department sees only its own tickets
    _may_draft(actor, ticket)
    if ticket.type != "consultation":
        raise Conflict("only a consultation ticket's answer becomes an article", zh="只有咨询类工单的答复可以转为知识")
    answer = ticket.result or ticket.answer
    if not answer:
        raise Conflict("the ticket has no answer yet", zh="该工单尚无答复")
    existing = session.exec(select(Article).where(Article.source_ticket_id == ticket.id)).first()
    if existing is not None:
        raise Conflict(
            f"article {existing.id} was already drafted from this ticket",
            zh=f"该工单已转为知识条目（条目号 {existing.id}）",
        )
    department = session.get(Department, ticket.main_department_id) if ticket.main_department_id else None
    issuer = department.name if department else "12345热线"
    path = _category_path(session, ticket.category_id) or "其他"
    title = ticket.title.strip()[:128] or ticket.number
    taken = session.exec(select(Article.id).where(Article.department == issuer, Article.title == title)).first()
    if taken is not None:
        title = f"{title[: 128 - len(ticket.number) - 2]}（{ticket.number}）"
    body = f"**问：** {ticket.content.strip()}\n\n**答：** {answer.strip()}"
    data = ArticleIn(
        title=title,
        body=body[: articles.MAX_BODY_CHARS],
        category=path,
        department=issuer,
        kind="常见问题",
        public=False,  # the editor decides whether citizens see it
    )
    article = articles.create(session, data, None, at)
    article.source_ticket_id = ticket.id
    article.created_by_id = article.updated_by_id = actor.id
    session.add(article)
    session.flush()
    return article


def _category_path(session: Session, category_id: int | None) -> str:
    from hotline.directory import category_path

    return "/".join(c.name for c in category_path(category_id, lambda i: session.get(Category, i)))


def warn_expiring(session: Session, now: datetime) -> int:
    """Warn the owners of published articles that expire within EXPIRY_WARNING_DAYS (the
    issuing department's leaders, or the centre's editors for an article of no department),
    once for each last valid day; how many were warned."""
    today = articles.local_today(now)
    due = session.exec(
        select(Article).where(
            Article.status == "published",
            Article.valid_until >= today,
            Article.valid_until <= today + timedelta(days=EXPIRY_WARNING_DAYS),
            (Article.expiry_warned_for.is_(None)) | (Article.expiry_warned_for != Article.valid_until),
        )
    ).all()
    for article in due:
        days = (article.valid_until - today).days
        when = "今天" if days == 0 else f"{days}天后"
        notices.send(
            session,
            kind="knowledge_expiry",
            title=f"知识条目《{article.title}》将于{when}失效",
            body=f"失效日期 {article.valid_until.isoformat()}。如仍有效，请更新内容和失效日期并提交审核。",
            at=now,
            department_id=article.department_id,
            role="leader" if article.department_id else "editor",
        )
        article.expiry_warned_for = article.valid_until
        session.add(article)
    session.flush()
    return len(due)

"""Articles: their fields, who may write them, the lifecycle, every change kept, import.

Lifecycle: draft → under_review → published → retired. Editors (and administrators) edit,
publish, return and retire any article; a department's leader writes drafts of its own
department's articles and submits them for review; everyone else on the staff reads.
Every change writes a version (who, when, what, the fields after it) and the search index,
in the caller's transaction; services only flush.
"""

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, or_, select

from hotline.deadlines.calendar import LOCAL_TZ
from hotline.errors import Conflict, HotlineError, Invalid, NotFound, NotPermitted
from hotline.knowledge import index
from hotline.knowledge.text import render
from hotline.labels import ARTICLE_ACTION_LABELS, ARTICLE_STATUS_LABELS
from hotline.models import ARTICLE_KINDS, ARTICLE_STATUSES, Article, ArticleVersion, Department
from hotline.workflow.engine import Actor

EDITORS = frozenset({"editor", "admin"})
# Who reads the knowledge base inside the centre.
STAFF = ("agent", "handler", "leader", "supervisor", "admin", "editor")
MAX_IMPORT = 1000
MAX_BODY_CHARS = 100_000
MAX_KEYWORD_CHARS = 20
# The fields an article is made of (what a version keeps).
FIELDS = (
    "external_id",
    "title",
    "body",
    "category",
    "keywords",
    "department",
    "kind",
    "region",
    "valid_from",
    "valid_until",
    "public",
    "status",
)
# action: (the states it leaves, the state it reaches)
ACTIONS = {
    "submit": ({"draft"}, "under_review"),
    "publish": ({"draft", "under_review", "retired"}, "published"),
    "return": ({"under_review"}, "draft"),
    "retire": ({"published"}, "retired"),
}
_KEYWORD_SEPARATORS = re.compile(r"[,，、;；\s]+")


class ArticleIn(BaseModel):
    """An article as written by hand (API) or sent by a department (import)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    title: Annotated[str, Field(min_length=1, max_length=128)]
    body: Annotated[str, Field(min_length=1, max_length=MAX_BODY_CHARS)]
    category: Annotated[str, Field(min_length=1, max_length=200)]
    keywords: list[str] | str = Field(default_factory=list)
    department: Annotated[str, Field(min_length=1, max_length=100)]
    kind: Literal[ARTICLE_KINDS]  # type: ignore[valid-type]
    region: Annotated[str, Field(max_length=100)] | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    public: bool = True

    @field_validator("category")
    @classmethod
    def _path(cls, value: str) -> str:
        parts = [p.strip() for p in value.split("/")]
        if not all(parts):
            raise ValueError("a path of names separated by '/', none empty (社会保障/养老保险)")
        return "/".join(parts)

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str] | str) -> list[str]:
        words = _KEYWORD_SEPARATORS.split(value) if isinstance(value, str) else [w.strip() for w in value]
        words = list(dict.fromkeys(w for w in words if w))
        if len(words) > 30:
            raise ValueError("at most 30 keywords")
        long = [w for w in words if len(w) > MAX_KEYWORD_CHARS]
        if long:
            raise ValueError(f"a keyword has at most {MAX_KEYWORD_CHARS} characters: {long[0]}")
        return words

    @model_validator(mode="after")
    def _dates(self) -> "ArticleIn":
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        if self.title in self.keywords:
            raise ValueError("a keyword repeats the title")
        return self


class ImportRow(ArticleIn):
    """One article of an import: its `external_id` is required (upserts go by it); the
    status defaults to draft for a new article and stays as it is for a known one."""

    external_id: Annotated[str, Field(min_length=1, max_length=64)]
    status: Literal[ARTICLE_STATUSES] | None = None  # type: ignore[valid-type]


class ArticlePatch(BaseModel):
    """What changes of an article; a field left out stays."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    external_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    title: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    body: Annotated[str, Field(min_length=1, max_length=MAX_BODY_CHARS)] | None = None
    category: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    keywords: list[str] | str | None = None
    department: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    kind: Literal[ARTICLE_KINDS] | None = None  # type: ignore[valid-type]
    region: Annotated[str, Field(max_length=100)] | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    public: bool | None = None

    @field_validator("category")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else ArticleIn._path(value)

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str] | str | None) -> list[str] | None:
        return None if value is None else ArticleIn._keywords(value)


def local_today(now: datetime) -> date:
    return now.astimezone(LOCAL_TZ).date()


def snapshot(article: Article) -> dict[str, Any]:
    """The article's fields as JSON values (what a version keeps)."""
    out = {name: getattr(article, name) for name in FIELDS}
    for name in ("valid_from", "valid_until"):
        out[name] = out[name].isoformat() if out[name] else None
    return out


def article_out(article: Article, *, public: bool = False) -> dict[str, Any]:
    """An article as the API shows it: its fields, its body also as safe HTML."""
    out = {"id": article.id, **snapshot(article), "body_html": render(article.body)}
    if public:
        for name in ("status", "public", "external_id"):
            out.pop(name)
    else:
        out |= {"version": article.version, "created_at": article.created_at}
    return out | {"updated_at": article.updated_at}


def _department_id(session: Session, name: str) -> int | None:
    """The department an issuing body names (by code or name), if it is one of the district's."""
    return session.exec(
        select(Department.id).where(or_(Department.code == name, Department.name == name)).limit(1)
    ).first()


def _check_title(session: Session, article: Article) -> None:
    """409 when another article of the same issuing body has this title; names it."""
    same_body = Article.department == article.department
    if article.department_id is not None:
        same_body = same_body | (Article.department_id == article.department_id)
    stmt = select(Article).where(Article.title == article.title, same_body)
    if article.id is not None:
        stmt = stmt.where(Article.id != article.id)
    other = session.exec(stmt.limit(1)).first()
    if other is not None:
        raise Conflict(
            f"title: the issuing body already has an article with this title: article {other.id}"
            + (f" (external_id {other.external_id})" if other.external_id else ""),
            field="title",
            article_id=other.id,
            zh=f"该发文单位已有同名的知识条目（条目号 {other.id}）",
        )


def _check_external_id(session: Session, article: Article) -> None:
    if article.external_id is None:
        return
    other = session.exec(
        select(Article.id).where(Article.external_id == article.external_id, Article.id != (article.id or 0))
    ).first()
    if other is not None:
        raise Conflict(
            f"external_id: already used by article {other}",
            field="external_id",
            article_id=other,
            zh=f"编号已被条目号 {other} 的知识使用",
        )


def _may_write(actor: Actor, article: Article) -> None:
    """Editors write any article; a leader writes its own department's drafts."""
    if actor.role in EDITORS:
        return
    if actor.role != "leader":
        raise NotPermitted(
            f"the role {actor.role!r} may not write articles (needs: editor, admin, leader)",
            zh="您的角色不能编写知识条目",
        )
    if article.department_id is None or article.department_id != actor.department_id:
        raise NotPermitted(
            "a leader writes only the articles its own department issues", zh="单位负责人只能编写本单位发文的知识"
        )
    if article.status != "draft":
        raise Conflict(
            f"the article is {article.status}: only the editors change it now",
            field="status",
            zh=f"该条目{ARTICLE_STATUS_LABELS.get(article.status, article.status)}，只有知识库管理员可以修改",
        )


def _record(session: Session, article: Article, action: str, actor: Actor | None, now: datetime) -> None:
    """Keep the change as a version and put the article's words in the index."""
    session.flush()
    session.add(
        ArticleVersion(
            article_id=article.id,
            version=article.version,
            action=action,
            at=now,
            by_id=actor.id if actor else None,
            by_name=actor.username if actor else "system",
            fields=snapshot(article),
        )
    )
    index.write(session, article)


def _apply(session: Session, article: Article, values: dict[str, Any]) -> bool:
    """Set the given fields; True when something changed."""
    changed = False
    for name, value in values.items():
        if getattr(article, name) != value:
            setattr(article, name, value)
            changed = True
    if "department" in values:
        article.department_id = _department_id(session, article.department)
    if article.valid_from and article.valid_until and article.valid_until < article.valid_from:
        raise Invalid("valid_until: before valid_from", field="valid_until", zh="失效日期早于生效日期")
    if article.title in article.keywords:
        raise Invalid("keywords: a keyword repeats the title", field="keywords", zh="关键字不能与标题相同")
    return changed


def create(
    session: Session, data: ArticleIn, actor: Actor | None, now: datetime, *, status: str = "draft", action="create"
) -> Article:
    """A new article (a draft unless an import says otherwise)."""
    article = Article(
        **data.model_dump(exclude={"status"}),
        department_id=_department_id(session, data.department),
        status=status,
        created_at=now,
        updated_at=now,
        created_by_id=actor.id if actor else None,
        updated_by_id=actor.id if actor else None,
    )
    if actor is not None:
        _may_write(actor, article)
    _check_title(session, article)
    _check_external_id(session, article)
    session.add(article)
    _record(session, article, action, actor, now)
    return article


def get(session: Session, article_id: int) -> Article:
    article = session.get(Article, article_id)
    if article is None:
        raise NotFound(zh="知识条目不存在")
    return article


def readable(actor: Actor, article: Article) -> bool:
    """Who on the staff reads an article: a published one everyone; the others the editors
    and the leader of the article's department."""
    return (
        article.status == "published"
        or actor.role in EDITORS
        or (actor.role == "leader" and article.department_id == actor.department_id)
    )


def get_readable(session: Session, article_id: int, actor: Actor, **not_found: object) -> Article:
    """The article, or NotFound (with `not_found`'s message) when the actor may not read it."""
    article = session.get(Article, article_id)
    if article is None or not readable(actor, article):
        raise NotFound(**{"zh": "知识条目不存在，或您无权查看", **not_found})
    return article


def get_public(session: Session, article_id: int, today: date) -> Article:
    """A published, public article valid today; 404 for anything else."""
    from hotline.knowledge.search import visible_today

    article = session.exec(select(Article).where(Article.id == article_id, visible_today(today))).first()
    if article is None:
        raise NotFound(zh="该知识条目不存在或已下线")
    return article


def _change(session: Session, article: Article, values: dict[str, Any], actor: Actor | None, now: datetime, action):
    # The checks read the other articles before the changed one is written.
    with session.no_autoflush:
        if not _apply(session, article, values):
            return False
        _check_title(session, article)
        _check_external_id(session, article)
    article.version += 1
    article.updated_at = now
    article.updated_by_id = actor.id if actor else None
    _record(session, article, action, actor, now)
    return True


def update(session: Session, article_id: int, patch: ArticlePatch, actor: Actor, now: datetime) -> Article:
    """Edit an article: a new version (nothing when nothing changes)."""
    article = get(session, article_id)
    _may_write(actor, article)
    values = patch.model_dump(exclude_unset=True)
    for name in ("title", "body", "category", "department", "kind", "public"):
        if name in values and values[name] is None:
            raise Invalid(f"{name}: may not be null", field=name, zh="必填项不能为空")
    if "keywords" in values and values["keywords"] is None:
        values["keywords"] = []
    _change(session, article, values, actor, now, "edit")
    if actor.role == "leader":
        _may_write(actor, article)  # a leader may not give the article to another department
    return article


def transition(session: Session, article_id: int, action: str, actor: Actor, now: datetime) -> Article:
    """submit, publish, return or retire an article."""
    article = get(session, article_id)
    if action not in ACTIONS:
        raise Invalid(f"action: one of {', '.join(ACTIONS)}", field="action", zh="没有这项操作")
    sources, target = ACTIONS[action]
    if action == "submit":
        _may_write(actor, article)
    elif actor.role not in EDITORS:
        raise NotPermitted(
            f"the role {actor.role!r} may not {action} articles (needs: editor, admin)",
            zh=f"只有知识库管理员可以{ARTICLE_ACTION_LABELS[action]}知识条目",
        )
    if article.status not in sources:
        status = ARTICLE_STATUS_LABELS.get(article.status, article.status)
        raise Conflict(
            f"cannot {action} an article that is {article.status}",
            field="action",
            zh=f"条目当前为“{status}”，不能{ARTICLE_ACTION_LABELS[action]}",
        )
    if target == "published" and article.valid_until and article.valid_until < local_today(now):
        raise Conflict(
            f"the article expired on {article.valid_until}: change valid_until first",
            field="valid_until",
            zh=f"该条目已于 {article.valid_until} 失效：请先修改失效日期",
        )
    _change(session, article, {"status": target}, actor, now, action)
    return article


def versions(session: Session, article_id: int) -> list[ArticleVersion]:
    get(session, article_id)
    return list(
        session.exec(
            select(ArticleVersion).where(ArticleVersion.article_id == article_id).order_by(ArticleVersion.version)
        )
    )


def retire_expired(session: Session, now: datetime) -> int:
    """Retire the published articles whose last valid day has passed; how many."""
    expired = session.exec(
        select(Article).where(Article.status == "published", Article.valid_until < local_today(now))
    ).all()
    for article in expired:
        _change(session, article, {"status": "retired"}, None, now, "expire")
    return len(expired)


def _errors_of(index_: int, exc: ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err.get("loc", ())) or "article"
        message = "unknown field" if err.get("type") == "extra_forbidden" else err.get("msg", "invalid")
        out.append({"index": index_, "field": field, "message": message.removeprefix("Value error, ")})
    return out


def import_rows(
    session: Session, rows: list[Any], actor: Actor | None, now: datetime, *, indexes: list[int] | None = None
) -> dict[str, Any]:
    """Upsert articles by `external_id`: each valid row is written whole, each invalid one
    listed with its field and why. Errors name a row by its position in `rows` from 0, or
    by its entry in `indexes` (a file's line numbers).

    The rows are checked together (a few queries for the whole list: the known articles,
    the departments, the titles their issuing bodies already use) and written together (one
    insert of the new articles, of the versions, of the index); should the database refuse
    that (another writer took a title meanwhile), every row is written again on its own in a
    savepoint, so that only the refused rows are lost."""
    errors: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    valid: list[tuple[int, ImportRow]] = []
    for i, raw in zip(indexes or range(len(rows)), rows, strict=True):
        try:
            row = ImportRow.model_validate(raw)
        except ValidationError as exc:
            errors.extend(_errors_of(i, exc))
            continue
        if row.external_id in seen:
            errors.append({"index": i, "field": "external_id", "message": f"repeats row {seen[row.external_id]}"})
            continue
        seen[row.external_id] = i
        valid.append((i, row))
    if actor is not None and actor.role not in EDITORS:
        counts = _import_each(session, valid, actor, now, errors)
    else:
        try:
            with session.begin_nested():
                counts = _import_together(session, valid, actor, now, errors_found := [])
            errors.extend(errors_found)
        except IntegrityError:
            counts = _import_each(session, valid, actor, now, errors)
    errors.sort(key=lambda e: e["index"])
    return {**counts, "errors": errors}


def _import_each(
    session: Session, valid: list[tuple[int, "ImportRow"]], actor: Actor | None, now: datetime, errors: list
) -> dict[str, int]:
    """The rows one by one, each in its own savepoint."""
    created = updated = unchanged = 0
    for i, row in valid:
        try:
            with session.begin_nested():
                article = session.exec(select(Article).where(Article.external_id == row.external_id)).first()
                if article is None:
                    create(session, row, actor, now, status=row.status or "draft", action="import")
                    created += 1
                else:
                    values = row.model_dump(exclude={"status"} if row.status is None else set())
                    if _change(session, article, values, actor, now, "import"):
                        updated += 1
                    else:
                        unchanged += 1
        except HotlineError as exc:
            errors.append({"index": i, "field": exc.extra.get("field") or "article", "message": exc.message})
        except IntegrityError as exc:
            errors.append({"index": i, "field": "article", "message": f"refused by the database: {exc.orig}"})
    return {"created": created, "updated": updated, "unchanged": unchanged}


def _import_together(
    session: Session, valid: list[tuple[int, "ImportRow"]], actor: Actor | None, now: datetime, errors: list
) -> dict[str, int]:
    """The rows checked and written together, with the same outcome as _import_each."""
    created = updated = unchanged = 0
    ids = [row.external_id for _, row in valid]
    known = {a.external_id: a for a in _chunked(session, select(Article), Article.external_id, ids)}
    names = {row.department for _, row in valid} | {a.department for a in known.values()}
    found = session.exec(
        select(Department.id, Department.code, Department.name).where(
            or_(Department.code.in_(names), Department.name.in_(names))
        )
    ).all()
    department_of: dict[str, int] = {}
    for dept_id, code, name in sorted(found):  # the first department by id, as _department_id finds it
        department_of.setdefault(code, dept_id)
        department_of.setdefault(name, dept_id)
    # Who holds each title, per issuing body: the titles of the rows, as the database has them.
    holders: dict[str, dict[object, Article]] = {}
    titles = {row.title for _, row in valid}
    dept_ids = set(department_of.values())
    same_body = Article.department.in_(names) | Article.department_id.in_(dept_ids)
    for other in _chunked(session, select(Article).where(same_body), Article.title, titles):
        holders.setdefault(other.title, {})[other.id] = other
    with session.no_autoflush:
        new: list[Article] = []
        changed: list[Article] = []
        for i, row in valid:
            article = known.get(row.external_id)
            department_id = department_of.get(row.department)
            if article is None:
                article = Article(
                    **row.model_dump(exclude={"status"}),
                    department_id=department_id,
                    status=row.status or "draft",
                    created_at=now,
                    updated_at=now,
                    created_by_id=actor.id if actor else None,
                    updated_by_id=actor.id if actor else None,
                )
                key: object = ("new", i)
            else:
                values = row.model_dump(exclude={"status"} if row.status is None else set())
                if all(getattr(article, name) == value for name, value in values.items()):
                    article.department_id = department_id
                    unchanged += 1
                    continue
                key = article.id
                values["department_id"] = department_id
            holder = _title_holder(holders.get(row.title, {}), key, row.department, department_id)
            if holder is not None:
                other_key, other = holder
                named = f"article {other.id}" if other.id else f"row {other_key[1]} of this import"
                errors.append(
                    {
                        "index": i,
                        "field": "title",
                        "message": f"title: the issuing body already has an article with this title: {named}"
                        + (f" (external_id {other.external_id})" if other.external_id else ""),
                    }
                )
                continue
            if key == article.id:
                holders.get(article.title, {}).pop(key, None)
                for name, value in values.items():
                    setattr(article, name, value)
                article.version += 1
                article.updated_at = now
                article.updated_by_id = actor.id if actor else None
                changed.append(article)
            else:
                new.append(article)
            holders.setdefault(article.title, {})[key] = article
    session.add_all(new)
    session.flush()
    written = new + changed
    session.add_all(
        ArticleVersion(
            article_id=a.id,
            version=a.version,
            action="import",
            at=now,
            by_id=actor.id if actor else None,
            by_name=actor.username if actor else "system",
            fields=snapshot(a),
        )
        for a in written
    )
    session.flush()
    index.write_many(session, written)
    created, updated = len(new), len(changed)
    return {"created": created, "updated": updated, "unchanged": unchanged}


def _title_holder(
    holders: dict[Any, Article], key: object, department: str, department_id: int | None
) -> tuple[Any, Article] | None:
    """Another article (or an earlier new row: its key is ("new", row)) of the same issuing
    body with the title, if any."""
    for other_key, other in holders.items():
        if other_key == key:
            continue
        if other.department == department or (department_id is not None and other.department_id == department_id):
            return other_key, other
    return None


def _chunked(session: Session, stmt, column, values, size: int = 500) -> list:
    """`stmt` where `column` is one of `values`, asked a few hundred values at a time."""
    values = list(values)
    out = []
    for start in range(0, len(values), size):
        out.extend(session.exec(stmt.where(column.in_(values[start : start + size]))).all())
    return out

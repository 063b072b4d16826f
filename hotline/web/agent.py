"""The agent workbench (话务员): intake of a call, the repeat check, and the callback queue.

Beside the intake form: the knowledge base's articles for what the agent types (to answer
with one, citing it), and the open tickets like the one being logged (to merge into).

Intake logs the ticket and fires its first event (派单, 直接办结 or 并单) in one
transaction, so a call is never half-logged. The form is validated through the API's
`TicketIn`, so the page and the API share one set of rules.
"""

import re
from contextlib import ExitStack
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, select

from hotline import calls
from hotline.api.deps import RuntimeDep
from hotline.api.schemas import TicketIn
from hotline.attachments import files
from hotline.directory import active_departments, category_path, clean_place, places
from hotline.errors import HotlineError, Invalid, NotFound
from hotline.evaluation.ratings import is_satisfied
from hotline.inputs import MAX_ID, IdPath, IdQuery, PageQuery
from hotline.knowledge import feedback, search
from hotline.knowledge.articles import local_today
from hotline.knowledge.text import plain
from hotline.knowledge.text import render as render_markdown
from hotline.models import Article, Category, Department, Ticket
from hotline.routing import NoRoute, route
from hotline.similar import similar_open_tickets
from hotline.ticket_view import Lookups, ticket_out
from hotline.tickets import (
    awaiting_callback,
    awaiting_callback_counts,
    check_place,
    create_ticket,
    get_visible,
    line_categories,
    recent_tickets,
)
from hotline.web.auth import PageUser, role_form_user, role_user
from hotline.web.forms import form_version, page_message, submit
from hotline.web.render import TYPE_LABELS, URGENCY_LABELS, render
from hotline.web.uploads import MAX_INTAKE_FILES, posted_files
from hotline.words import synonym_groups
from hotline.workflow.engine import available_events, fire

router = APIRouter(prefix="/agent", include_in_schema=False)

AgentUser = Annotated[PageUser, role_user("agent", "supervisor")]
AgentForm = Annotated[PageUser, role_form_user("agent", "supervisor")]

CATEGORY_SUGGESTIONS = 12
CALLBACK_PAGE_SIZE = 10
# Articles suggested beside the form, and how much of one 用此答复 puts in the answer.
KNOWLEDGE_SUGGESTIONS = 5
EXTRACT_CHARS = 300

INTAKE_EVENTS = ("dispatch", "answer", "merge")
QUEUE_EVENTS = ("callback", "invite", "close", "rehandle")
TEXT_FIELDS = (
    "type",
    "urgency",
    "category",
    "caller_name",
    "caller_phone",
    "street",
    "community",
    "address",
    "title",
    "content",
    "answer",
    "department",
    "article",
)
SWITCHES = ("confidential", "anonymous", "reply_wanted")
LABELS = {
    "type": "诉求类型",
    "urgency": "紧急程度",
    "category": "问题分类",
    "caller_name": "来电人",
    "caller_phone": "联系电话",
    "street": "街道",
    "community": "社区",
    "address": "详细地址",
    "title": "标题",
    "content": "诉求内容",
    "answer": "答复内容",
    "department": "承办单位",
    "co_departments": "协办单位",
    "article": "引用知识",
    "attachments": "照片和材料",
}
ARTICLE_INVALID = "所引用的知识条目已失效或不存在，请重新选择或取消引用"
DONE = {
    "dispatch": "已派单",
    "answer": "已直接办结，转入待回访",
    "merge": "已并单",
    "callback": "已记录回访",
    "callback_close": "已记录满意回访，工单已归档",
    "close": "已归档",
    "rehandle": "已退回重办",
    "invite": "已发送评价短信",
}


# --- the intake form ------------------------------------------------------------------


def _blank_form() -> dict[str, Any]:
    values: dict[str, Any] = {name: "" for name in TEXT_FIELDS}
    values.update(type="complaint", urgency="normal", reply_wanted=True, confidential=False, anonymous=False)
    values["co_departments"] = []
    values["category_q"] = ""
    return values


def _posted_form(form: Any) -> dict[str, Any]:
    """The entered values as strings and switches, to validate and to show again."""
    values: dict[str, Any] = {name: str(form.get(name) or "").strip() for name in TEXT_FIELDS}
    values["caller_phone"] = re.sub(r"[\s\-]", "", values["caller_phone"])
    for name in SWITCHES:
        values[name] = form.get(name) in ("on", "true", "1")
    values["co_departments"] = [str(v) for v in form.getlist("co_departments") if v]
    values["category_q"] = str(form.get("category_q") or "").strip()
    return values


def _ticket_data(values: dict[str, Any]) -> dict[str, Any]:
    """What TicketIn validates: blanks of optional fields left out."""
    data: dict[str, Any] = {"type": values["type"], "content": values["content"], "channel": "phone"}
    for name in ("urgency", "category", "caller_name", "caller_phone", "street", "community", "address", "title"):
        if values[name]:
            data[name] = values[name]
    for name in SWITCHES:
        data[name] = values[name]
    return data


def _zh_error(err: dict[str, Any]) -> tuple[str, str]:
    """A pydantic error as (field, Chinese message)."""
    field = str(err["loc"][0]) if err.get("loc") else "content"
    label = LABELS.get(field, field)
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind in ("missing", "string_too_short"):
        return field, f"请填写{label}"
    if kind == "string_too_long":
        return field, f"{label}不能超过 {ctx.get('max_length')} 个字"
    if kind == "literal_error":
        return field, f"请选择{label}"
    if kind == "string_pattern_mismatch" and field == "caller_phone":
        return field, "联系电话只能填数字、空格和 + - ( )"
    return field, f"{label}填写有误"


def _place_errors(values: dict[str, Any], known: dict[str, list[str]]) -> dict[str, str]:
    """Street and community must be the district's own, when the district lists its places
    (the API's rule, tickets.check_place), said beside the field."""
    try:
        check_place(known, values["street"], values["community"])
    except Invalid as exc:
        return {exc.field: exc.extra["zh"]}
    return {}


def _fire_error(event: str, exc: HotlineError) -> tuple[str | None, str]:
    """Where an error of creating and firing belongs on the form, and its Chinese text."""
    field = exc.extra.get("field") if isinstance(exc, Invalid) else None
    if field == "category":
        return "category", exc.extra.get("zh") or "请从下拉列表中选择有效的问题分类"
    if field == "department" and event == "dispatch":
        if "no routing rule" in exc.message:
            return "department", "派单规则未匹配到承办单位，请在“承办单位”中手动选择"
        return "department", "承办单位无效，请重新选择"
    if field == "co_departments":
        return "co_departments", "协办单位无效，请重新选择"
    if field == "answer":
        return "answer", "请填写答复内容"
    if field == "article":
        return "article", ARTICLE_INVALID
    if field == "master":
        return None, "要并入的工单不存在"
    return None, page_message(exc)


def _category_paths(session: Session) -> dict[str, tuple[Category, list[str]]]:
    """Active categories by code, each with the names from the root down."""
    cats = {c.id: c for c in session.exec(select(Category)).all()}
    return {c.code: (c, [a.name for a in category_path(c.id, cats.get)]) for c in cats.values() if c.active}


def category_label(names: list[str], code: str) -> str:
    """A category as the agent reads it: 城乡建设 › 物业管理 (0101)."""
    return f"{' › '.join(names)} ({code})"


def route_preview(session: Session, category: str, street: str, community: str) -> dict[str, Any]:
    """The department the routing rules choose for the category and place, or why none."""
    known = places(session)
    street_v, community_v = clean_place(known, street, community)
    category_row = None
    if category:
        category_row = session.exec(select(Category).where(Category.code == category, Category.active)).first()
    if category_row is None and street_v is None:
        return {"state": "idle", "message": "选择问题分类和地点后，这里显示派单规则确定的承办单位"}
    try:
        found = route(
            session, category_id=category_row.id if category_row else None, street=street_v, community=community_v
        )
    except NoRoute as exc:
        if exc.stopped:
            return {
                "state": "none",
                "message": f"派单规则或分类默认的承办单位已停用或为社区（{'、'.join(exc.stopped)}），"
                "派单时请在下方手动选择",
            }
        return {"state": "none", "message": "派单规则未匹配到承办单位，派单时请在下方手动选择"}
    # The rule's own reach (its category, or any; its place, or the whole district), not the ticket's.
    rule = found.rule
    scope = (
        [
            f"#{rule.id}",
            found.category.name if found.category else "任意分类",
            "/".join(p for p in (rule.street, rule.community) if p) or "全区",
        ]
        if rule
        else []
    )
    return {"state": "ok", "route": found, "scope": scope}


def _recent_rows(
    session: Session, runtime, user: PageUser, found: dict[str, Any], values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The repeat check's tickets as the agent reads them: the caller's, the place's, and the
    open tickets like the one being logged (`values`: the form's text, place and category)."""
    lookups = Lookups(session)

    def rows(tickets: list[Ticket] | None) -> list[dict[str, Any]] | None:
        if tickets is None:
            return None
        out = []
        for t in tickets:
            data = ticket_out(t, user.actor, runtime, lookups)
            wf = runtime.workflows.get(t.workflow)
            data["open"] = not wf.states[t.state].final
            out.append(data)
        return out

    similar = None
    text = knowledge_question(values.get("title", ""), values.get("content", "")) if values else ""
    if text:
        shown = {t.id for t in (found["by_phone"] or []) + (found["by_place"] or [])}
        alike = similar_open_tickets(
            session,
            runtime,
            text=text,
            street=values.get("street", ""),
            community=values.get("community", ""),
            category=values.get("category", ""),
            now=runtime.now(),
            exclude=shown,
        )
        by_id = {t.id: t for t in session.exec(select(Ticket).where(Ticket.id.in_([a.ticket_id for a in alike])))}
        similar = rows([by_id[a.ticket_id] for a in alike]) or []
        for a, data in zip(alike, similar, strict=True):
            data.update(shared=a.shared, same_category=a.same_category, same_place=a.same_place)
    return {
        **found,
        "by_phone": rows(found["by_phone"]),
        "by_place": rows(found["by_place"]),
        "similar": similar,
    }


def _can(runtime, event: str, role: str) -> bool:
    wf = runtime.workflows.get(runtime.workflows.default)
    return event in wf.events and role in wf.events[event].roles


def _intake_context(session: Session, runtime, user: PageUser, values: dict[str, Any]) -> dict[str, Any]:
    known = places(session)
    paths = _category_paths(session)
    chosen = paths.get(values["category"])
    found = recent_tickets(
        session,
        phone=values["caller_phone"],
        street=values["street"],
        community=values["community"],
        address=values["address"],
        now=runtime.now(),
    )
    return {
        "v": values,
        "places": known,
        "communities": known.get(values["street"], []),
        "category_text": category_label(chosen[1], values["category"]) if chosen else values["category_q"],
        "departments": active_departments(session, communities=False),
        "preview": route_preview(session, values["category"], values["street"], values["community"]),
        "recent": _recent_rows(session, runtime, user, found, values),
        "cited": _cited(session, values["article"]),
        "can_answer": _can(runtime, "answer", user.role),
        "can_dispatch": _can(runtime, "dispatch", user.role),
        "can_merge": _can(runtime, "merge", user.role),
        "types": TYPE_LABELS,
        "urgencies": URGENCY_LABELS,
        "max_intake_files": MAX_INTAKE_FILES,
        "max_attachment_bytes": runtime.settings.max_attachment_bytes,
        "errors": {},
    }


def _call_line(session: Session, runtime, user: PageUser, call_ref: str):
    """The merged line (hotline.workflow.lines) the agent's call came in on; None for 12345's."""
    if not call_ref:
        return None
    try:
        call = calls.own_call(session, user.actor, int(call_ref))
    except NotFound:
        return None
    return calls.call_line(runtime, call)


def _cited(session: Session, article: str) -> Article | None:
    """The published article the direct answer cites, if the form names one."""
    if not article.isdigit() or int(article) > MAX_ID:
        return None
    found = session.get(Article, int(article))
    return found if found is not None and found.status == "published" else None


def _done_flash(session: Session, user: PageUser, done: str | None, ticket_id: int | None) -> dict[str, Any] | None:
    if done not in DONE or ticket_id is None:
        return None
    try:
        ticket = get_visible(session, user.actor, ticket_id)
    except NotFound:
        return None
    text = DONE[done]
    if done == "dispatch" and ticket.main_department_id:
        dept = session.get(Department, ticket.main_department_id)
        text = f"已派单至{dept.name}" if dept else text
    if done == "merge" and ticket.master_id:
        master = session.get(Ticket, ticket.master_id)
        if master is None:
            return None
        text = f"已将新工单 {ticket.number} 并入工单 {master.number}"
        return {"text": text, "number": master.number, "id": master.id, "merged": {"number": ticket.number}}
    return {"text": text, "number": ticket.number, "id": ticket.id}


@router.get("/intake", response_class=HTMLResponse)
def intake_form(
    request: Request,
    runtime: RuntimeDep,
    user: AgentUser,
    done: Annotated[str | None, Query(max_length=20)] = None,
    ticket: IdQuery = None,
) -> Response:
    with runtime.db.read_session() as session:
        ctx = _intake_context(session, runtime, user, _blank_form())
        ctx["done"] = _done_flash(session, user, done, ticket)
    return render(request, "agent/intake.html", ctx)


def _check_intake(
    values: dict[str, Any], event: str, merge_into: str, known: dict[str, list[str]]
) -> tuple[dict[str, Any] | None, dict[str, str], str | None]:
    """The ticket's data as TicketIn cleans it, the errors by field, and an error of the whole form."""
    errors: dict[str, str] = {}
    data = None
    try:
        data = TicketIn.model_validate(_ticket_data(values)).model_dump()
    except ValidationError as exc:
        for err in exc.errors():
            field, message = _zh_error(err)
            errors.setdefault(field, message)
    if values["category_q"] and not values["category"]:
        errors["category"] = "请从下拉列表中选中一个分类（输入后按 Enter 或点击）"
    errors.update(_place_errors(values, known))
    general = None
    if event not in INTAKE_EVENTS:
        general = "请选择处理方式：派单、直接办结或并入已有工单"
    elif event == "answer" and not values["answer"]:
        errors["answer"] = "直接办结需填写答复内容"
    elif event == "merge" and not merge_into.isdigit():
        general = "要并入的工单不存在"
    if event == "answer" and values["article"] and (not values["article"].isdigit() or int(values["article"]) > MAX_ID):
        errors["article"] = ARTICLE_INVALID
    return data, errors, general


def _first_event_payload(event: str, values: dict[str, Any], merge_into: str) -> dict[str, Any]:
    if event == "answer":
        payload = {"answer": values["answer"]}
        if values["article"]:
            payload["article"] = int(values["article"])
        return payload
    if event == "merge":
        return {"master": int(merge_into)}
    payload: dict[str, Any] = {}
    if values["department"]:
        payload["department"] = values["department"]
    co = [c for c in values["co_departments"] if c != values["department"]]
    if co:
        payload["co_departments"] = co
    return payload


@router.post("/intake", response_class=HTMLResponse)
async def intake_submit(request: Request, runtime: RuntimeDep, user: AgentForm) -> Response:
    """Log the call and fire its first event (派单, 直接办结 or 并单) in one transaction."""
    form = await request.form()
    values = _posted_form(form)
    merge_into = str(form.get("merge_into") or "")
    event = "merge" if merge_into else str(form.get("action") or "")
    uploads = posted_files(form, "attachments")
    call_ref = str(form.get("call") or "")
    if call_ref and (not call_ref.isdigit() or int(call_ref) > MAX_ID):
        call_ref = ""
    with runtime.db.read_session() as session:
        data, errors, general = _check_intake(values, event, merge_into, places(session))
    if len(uploads) > MAX_INTAKE_FILES:
        errors["attachments"] = f"最多上传 {MAX_INTAKE_FILES} 个文件"
    status = 422
    if data is not None and not errors and general is None:
        now, payload = runtime.now(), _first_event_payload(event, values, merge_into)
        try:
            with ExitStack() as kept:
                logged = [(f.filename, kept.enter_context(files.stored(runtime, f.file))) for f in uploads]
                session = kept.enter_context(runtime.db.session())
                call = calls.unlogged_call(session, user.actor, int(call_ref)) if call_ref else None
                ticket, _ = create_ticket(session, runtime, user.actor, data, now=now, call=call)
                fire(session, runtime, ticket.id, event, user.actor, payload, now=now)
                for name, stored in logged:
                    kind = files.intake_kind(stored)
                    files.add(session, runtime, user.actor, ticket.id, kind=kind, name=name, now=now, file=stored)
                if ticket.type == "consultation" and ticket.article_id is None:
                    _count_gap(session, knowledge_question(ticket.title, ticket.content), now)
                ticket_id = ticket.id
        except HotlineError as exc:
            field, message = _fire_error(event, exc)
            if field:
                errors[field] = message
            else:
                general = message
            status = exc.status_code if exc.status_code in (403, 409, 413, 415) else 422
        else:
            return RedirectResponse(f"/agent/intake?{urlencode({'done': event, 'ticket': ticket_id})}", 303)
    with runtime.db.read_session() as session:
        ctx = _intake_context(session, runtime, user, values)
        ctx["line"] = _call_line(session, runtime, user, call_ref)
    ctx["errors"] = errors
    ctx["call"] = call_ref
    ctx["mode"] = event if event in ("dispatch", "answer") else None
    ctx["error"] = general or "请检查标红的项目：" + "、".join(LABELS.get(f, f) for f in errors)
    return render(request, "agent/intake.html", ctx, status)


# --- the knowledge base beside the form ------------------------------------------------


def knowledge_question(title: str, content: str) -> str:
    """What the form asks the knowledge base: the title and the content (the title left out
    where the content begins with it), on one line, at most search.MAX_QUERY_CHARS."""
    title, content = " ".join(title.split()), " ".join(content.split())
    text = content if not title or content.startswith(title) else f"{title} {content}"
    return text[: search.MAX_QUERY_CHARS].strip()


# A space next to a Chinese character or full-width mark: where a Markdown mark was left out.
_CJK_SPACE = re.compile(
    r"\s+(?=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])|(?<=[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef])\s+"
)


def answer_extract(body: str) -> str:
    """The start of an article's body as plain text, for 用此答复 to put in the answer."""
    text = _CJK_SPACE.sub("", plain(body))
    return text if len(text) <= EXTRACT_CHARS else text[:EXTRACT_CHARS] + "…"


def _count_gap(session: Session, question: str, now) -> None:
    """A consultation the knowledge base had nothing for is a knowledge gap (知识缺口),
    counted in the transaction that logs the ticket."""
    if not question:
        return
    hits = search.search(session, question, limit=KNOWLEDGE_SUGGESTIONS, today=local_today(now))
    if not search.answerable(hits):
        feedback.record_gap(session, question, source="agent", at=now)


@router.get("/intake/knowledge", response_class=HTMLResponse)
def knowledge_suggestions(
    request: Request,
    runtime: RuntimeDep,
    user: AgentUser,
    title: Annotated[str, Query(max_length=200)] = "",
    content: Annotated[str, Query(max_length=4000)] = "",
) -> Response:
    """The published articles that answer what the agent has typed so far, best first (htmx)."""
    q = knowledge_question(title, content)
    items: list[dict[str, Any]] = []
    if q:
        with runtime.db.read_session() as session:
            hits = search.search(session, q, limit=KNOWLEDGE_SUGGESTIONS, today=local_today(runtime.now()))
            ids = [h.id for h in hits]
            rows = session.exec(select(Article.id, Article.body, Article.department_id).where(Article.id.in_(ids)))
            found = {i: (body, dept) for i, body, dept in rows}
            names = {d.id: d.name for d in active_departments(session)}
        for h in hits:
            body, dept = found.get(h.id, ("", None))
            # The issuing body as the agent knows it: a department's name rather than its code.
            issuer = names.get(dept, h.department) if dept else h.department
            items.append({"hit": h, "issuer": issuer, "extract": answer_extract(body)})
    return render(request, "agent/_knowledge.html", {"items": items, "q": q})


@router.get("/intake/knowledge/{article_id}", response_class=HTMLResponse)
def knowledge_body(request: Request, runtime: RuntimeDep, user: AgentUser, article_id: IdPath) -> Response:
    """A published article's body, to read beside the form (htmx)."""
    with runtime.db.read_session() as session:
        article = session.get(Article, article_id)
        if article is None or article.status != "published":
            raise NotFound(zh="知识条目不存在或未发布")
        dept = session.get(Department, article.department_id) if article.department_id else None
    issuer = dept.name if dept else article.department
    return render(
        request, "agent/_article.html", {"a": article, "issuer": issuer, "body": render_markdown(article.body)}
    )


@router.post("/intake/knowledge/{article_id}/flag", response_class=HTMLResponse)
def knowledge_flag(request: Request, runtime: RuntimeDep, user: AgentForm, article_id: IdPath) -> Response:
    """没有帮助: the agent flags a suggested article for the editors (htmx)."""
    with runtime.db.session() as session:
        feedback.flag(session, article_id, reason="unhelpful", comment=None, actor=user.actor, at=runtime.now())
    return HTMLResponse('<span class="kb-flagged" role="status">已反馈“没有帮助”</span>')


@router.get("/intake/categories", response_class=HTMLResponse)
def category_suggestions(
    request: Request,
    runtime: RuntimeDep,
    user: AgentUser,
    category_q: Annotated[str, Query(max_length=50)] = "",
    line: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Categories whose name, path or code contains what the agent typed, or a word taken for
    it (hotline/data/category_synonyms.txt), the leaves first (htmx); on a merged line's call
    (`line`), only those of its subtree."""
    q = category_q.strip().lower()
    terms = category_terms(q)
    merged = runtime.workflows.lines.get(line)
    with runtime.db.read_session() as session:
        paths = _category_paths(session)
        allowed = line_categories(session, merged) if merged else None
    parents = {cat.parent_id for cat, _ in paths.values()}
    matches = []
    for code, (cat, names) in paths.items():
        if allowed is not None and cat.id not in allowed:
            continue
        label = category_label(names, code).lower()
        if q and not any(term in label for term in terms):
            continue
        leaf = cat.id not in parents
        name = cat.name.lower()
        fit = 0 if any(name.startswith(t) for t in terms) else 1 if any(t in name for t in terms) else 2
        # A ticket is filed under a leaf: the leaves come first, so Enter takes one; a parent
        # comes first only when its code was typed.
        rank = (code.lower() != q, not leaf, fit if q else 0, code)
        matches.append(
            (
                rank,
                {
                    "code": code,
                    "label": category_label(names, code),
                    "name": cat.name,
                    "path": names[:-1],
                    "leaf": leaf,
                },
            )
        )
    matches.sort(key=lambda m: m[0])
    items = [m[1] for m in matches[:CATEGORY_SUGGESTIONS]]
    return render(request, "agent/_categories.html", {"items": items, "q": q, "more": len(matches) - len(items)})


def category_terms(q: str) -> list[str]:
    """What the agent typed, and the same with each known word put for its synonyms (噪音 → 噪声)."""
    terms = [q] if q else []
    for group in synonym_groups("category_synonyms.txt"):
        for word in group:
            if word in q:
                terms += [q.replace(word, other) for other in group if other != word]
    return list(dict.fromkeys(terms))


@router.get("/intake/communities", response_class=HTMLResponse)
def community_options(
    request: Request, runtime: RuntimeDep, user: AgentUser, street: Annotated[str, Query(max_length=50)] = ""
) -> Response:
    """The community options of a street (htmx)."""
    with runtime.db.read_session() as session:
        communities = places(session).get(street, [])
    return render(request, "agent/_communities.html", {"communities": communities, "selected": ""})


@router.get("/intake/route", response_class=HTMLResponse)
def route_partial(
    request: Request,
    runtime: RuntimeDep,
    user: AgentUser,
    category: Annotated[str, Query(max_length=32)] = "",
    street: Annotated[str, Query(max_length=50)] = "",
    community: Annotated[str, Query(max_length=50)] = "",
) -> Response:
    """The department routing would choose for the form's category and place (htmx)."""
    with runtime.db.read_session() as session:
        preview = route_preview(session, category, street, community)
    return render(request, "agent/_route.html", {"preview": preview})


@router.get("/intake/recent", response_class=HTMLResponse)
def recent_partial(
    request: Request,
    runtime: RuntimeDep,
    user: AgentUser,
    caller_phone: Annotated[str, Query(max_length=30)] = "",
    street: Annotated[str, Query(max_length=50)] = "",
    community: Annotated[str, Query(max_length=50)] = "",
    address: Annotated[str, Query(max_length=200)] = "",
    title: Annotated[str, Query(max_length=200)] = "",
    content: Annotated[str, Query(max_length=4000)] = "",
    category: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    """The caller's and the place's recent tickets, and open tickets like this one, to merge a
    repeat (htmx)."""
    with runtime.db.read_session() as session:
        found = recent_tickets(
            session, phone=caller_phone, street=street, community=community, address=address, now=runtime.now()
        )
        form = {"title": title, "content": content, "street": street, "community": community, "category": category}
        recent = _recent_rows(session, runtime, user, found, form)
    return render(request, "agent/_recent.html", {"recent": recent, "can_merge": _can(runtime, "merge", user.role)})


# --- the callback queue ---------------------------------------------------------------

QUEUE_VIEWS = {"all": "全部", "overdue": "已超期", "warning": "即将到期"}


def _queue_context(session: Session, runtime, user: PageUser, view: str, page: int, q: str = "") -> dict[str, Any]:
    """One page of the callback queue (those matching `q`): the most pressing deadline first."""
    now = runtime.now()
    counts = awaiting_callback_counts(session, runtime, now, q=q)
    total = counts[view]
    pages = max((total + CALLBACK_PAGE_SIZE - 1) // CALLBACK_PAGE_SIZE, 1)
    page = min(page, pages)
    queue = awaiting_callback(
        session, runtime, view, now=now, offset=(page - 1) * CALLBACK_PAGE_SIZE, limit=CALLBACK_PAGE_SIZE, q=q
    )
    lookups = Lookups(session)
    rows = []
    for t, callbacks in queue:
        data = ticket_out(t, user.actor, runtime, lookups)
        events = {ev["name"]: ev for ev in available_events(session, runtime, t, user.actor, now=now)}
        reached = [cb for cb in callbacks if cb.reached]
        last = reached[-1] if reached else None
        data.update(
            callbacks=callbacks,
            attempts=len(callbacks),
            # The cap is on the attempts that did not reach the citizen (then the scheduler closes it).
            unreached=sum(1 for cb in callbacks if not cb.reached),
            max_attempts=runtime.workflows.get(t.workflow).limits.callback_attempts,
            last_reached=last,
            dissatisfied=last is not None and not is_satisfied(runtime, t, last),
            events=events,
            invitation_sent_at=t.invitation_sent_at,
            due_in=(t.due_at - now).total_seconds() if t.due_at else None,
        )
        rows.append(data)
    return {
        "rows": rows,
        "view": view,
        "views": QUEUE_VIEWS,
        "counts": counts,
        "page": page,
        "pages": pages,
        "total": total,
        "error_card": None,
        "posted": {},
        "q": q,
    }


@router.get("/callbacks", response_class=HTMLResponse)
def callback_queue(
    request: Request,
    runtime: RuntimeDep,
    user: AgentUser,
    view: Annotated[str, Query(pattern="^(all|overdue|warning)$")] = "all",
    page: PageQuery = 1,
    done: Annotated[str | None, Query(max_length=20)] = None,
    ticket: IdQuery = None,
    q: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    with runtime.db.read_session() as session:
        ctx = _queue_context(session, runtime, user, view, page, q.strip())
        ctx["done"] = _done_flash(session, user, done, ticket)
    return render(request, "agent/callbacks.html", ctx)


def _callback_payload(event: str, form: Any) -> dict[str, Any]:
    """The payload of a queue form; raises Invalid with the Chinese message."""
    if event == "callback":
        reached = form.get("reached")
        if reached not in ("true", "false"):
            raise Invalid("请选择是否联系上市民", field="reached", zh="请选择是否联系上市民")
        payload: dict[str, Any] = {"reached": reached == "true"}
        if payload["reached"]:
            solved, rating = form.get("solved"), str(form.get("rating") or "")
            if solved not in ("true", "false"):
                raise Invalid("请选择问题是否解决", field="solved", zh="请选择问题是否解决")
            if rating not in ("1", "2", "3", "4", "5"):
                raise Invalid("请选择满意度", field="rating", zh="请选择满意度")
            payload.update(solved=solved == "true", rating=int(rating))
        comment = str(form.get("comment") or "").strip()
        if comment:
            payload["comment"] = comment
        return payload
    reason = str(form.get("reason") or "").strip()
    if event == "rehandle" and not reason:
        raise Invalid("请填写重办理由", field="reason", zh="请填写重办理由")
    return {"reason": reason} if reason else {}


def _archive_after_callback(session: Session, runtime, user: PageUser, fired, now) -> bool:
    """Archive the ticket in the callback's own action when the workflow lets the agent do so
    now (a satisfied callback): no second click, and no stale 归档 button once the scheduler
    would have archived it. A callback that leaves it open (dissatisfied) keeps it queued."""
    wf = runtime.workflows.get(fired.ticket.workflow)
    close = wf.events.get("close")
    if close is None or fired.ticket.state not in close.sources or user.role not in close.roles:
        return False
    try:
        with session.begin_nested():
            fire(session, runtime, fired.ticket, "close", user.actor, {}, now=now)
    except HotlineError:
        return False
    return True


@router.post("/callbacks/{ticket_id}/{event}", response_class=HTMLResponse)
async def callback_action(
    request: Request, ticket_id: IdPath, event: str, runtime: RuntimeDep, user: AgentForm
) -> Response:
    """Record a callback, close the ticket or send it back for rehandling, from the queue."""
    if event not in QUEUE_EVENTS:
        raise NotFound(f"no queue action {event!r}", zh="回访队列中没有这项操作")
    form = await request.form()
    view = str(form.get("view") or "all")
    view = view if view in QUEUE_VIEWS else "all"
    page = int(str(form.get("page"))) if str(form.get("page") or "").isdigit() else 1
    q = str(form.get("q") or "").strip()[:40]

    def change(session: Session) -> str:
        payload = _callback_payload(event, form)
        get_visible(session, user.actor, ticket_id)
        now = runtime.now()
        fired = fire(session, runtime, ticket_id, event, user.actor, payload, now=now, version=form_version(form))
        done = event
        if event == "callback" and payload["reached"] and _archive_after_callback(session, runtime, user, fired, now):
            done = "callback_close"
        query = {"view": view, "page": page, "done": done, "ticket": ticket_id, "q": q}
        return f"/agent/callbacks?{urlencode({k: v for k, v in query.items() if v})}"

    def again(session: Session) -> dict[str, Any]:
        """The queue with this card's error and what was entered on it."""
        ctx = _queue_context(session, runtime, user, view, max(page, 1), q)
        ctx.update(error_card=ticket_id, posted={ticket_id: {"event": event, **{k: str(v) for k, v in form.items()}}})
        return ctx

    return submit(request, runtime, change, template="agent/callbacks.html", context=again)

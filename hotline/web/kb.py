"""The citizens' pages, no sign-in: the knowledge base (/kb: search, categories, an article
with its 这条回答有帮助吗 form) and the assistant (/assistant: a chat that works without
JavaScript, a large-text high-contrast mode for the elderly, the hand-over form).

Only published public articles valid today are shown; anything else is 404. `?embed=1`
gives the page without header and footer, for the district website's iframe; `?mode=elder`
the large-text mode without JavaScript. Pages are cached like the public API
(public, max-age=300); what a form posts is never cached. Forms carry a nonce signed with
the installation's secret and bound to the form and the hour (like the rating page's)."""

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from hotline import filing
from hotline.api.deps import RuntimeDep
from hotline.directory import places
from hotline.errors import HotlineError, Invalid, NotFound
from hotline.inputs import IdPath
from hotline.knowledge import articles, assistant, catalog, feedback, search
from hotline.knowledge.text import render as render_markdown
from hotline.models import ARTICLE_KINDS, FLAG_REASONS, Department
from hotline.ticket_view import mask_phone
from hotline.web import public
from hotline.web.forms import page_message
from hotline.web.public import Flag, Switch

router = APIRouter(include_in_schema=False)
PER_PAGE = 10
ArticleId = IdPath


def _missing(request: Request, runtime, embed: str, mode: str) -> Response:
    ctx = {"heading": "该内容不存在或已下线", "message": "您要找的内容可能已过有效期或尚未公开。"}
    return public.page(request, runtime, "kb/notice.html", ctx, status_code=404, embed=embed, mode=mode)


def _keep(embed: str, mode: str, **params: Any) -> str:
    """A query string that keeps the embedded layout and the large-text mode."""
    values = {k: v for k, v in params.items() if v not in (None, "")}
    if embed == "1":
        values["embed"] = "1"
    if mode == "elder":
        values["mode"] = "elder"
    return ("?" + urlencode(values)) if values else ""


# ------------------------------------------------------------------ the knowledge base


Text = Annotated[str, Query(max_length=2000)]
Short = Annotated[str, Query(max_length=200)]


@router.get("/kb", response_class=HTMLResponse)
def kb_home(
    request: Request,
    runtime: RuntimeDep,
    q: Text = "",
    category: Short = "",
    kind: Short = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    embed: Switch = "",
    mode: Switch = "",
) -> Response:
    """Search (q) or browse by category, a page at a time."""
    if busy := public.limited(request, runtime):
        return busy
    today = articles.local_today(runtime.now())
    kind = kind if kind in ARTICLE_KINDS else ""
    ctx: dict[str, Any] = {"q": q, "category": category.strip("/"), "kind": kind, "kinds": ARTICLE_KINDS}
    status_code = 200
    with runtime.db.read_session() as session:
        if q.strip():
            try:
                ctx["hits"] = search.search(
                    session, q, limit=20, public_only=True, category=category or None, kind=kind or None, today=today
                )
            except Invalid as exc:
                ctx["error"], status_code = page_message(exc), 422
        ctx["nodes"], ctx["crumbs"] = _branch(catalog.category_tree(session, public_today=today), category)
        if "hits" not in ctx:
            ctx["listing"] = catalog.listing(
                session,
                public_today=today,
                category=category or None,
                kind=kind or None,
                page=page,
                per_page=PER_PAGE,
                clamp=True,
            )
    keep = {"embed": embed, "mode": mode}
    ctx["link"] = lambda **params: _keep(embed, mode, **params)
    return public.page(request, runtime, "kb/index.html", ctx, status_code=status_code, **keep)


def _branch(tree: list[catalog.CategoryNode], path: str) -> tuple[list, list[tuple[str, str]]]:
    """The categories to offer under `path` (the top ones without it), and the way there."""
    nodes, crumbs = tree, []
    for name in [p for p in path.strip("/").split("/") if p]:
        node = next((n for n in nodes if n.name == name), None)
        if node is None:
            break
        crumbs.append((node.name, node.path))
        nodes = sorted(node.children.values(), key=lambda n: (-n.count, n.name))
    return nodes, crumbs


def _issuer(session: Session, article) -> str:
    """The issuing body as citizens read it: a department's name rather than its code."""
    if article.department_id is not None:
        dept = session.get(Department, article.department_id)
        if dept is not None:
            return dept.name
    return article.department


def _article_page(
    request: Request, runtime, article_id: int, embed: str, mode: str, *, ctx: dict | None = None, status_code=200
) -> Response:
    now = runtime.now()
    ctx = dict(ctx or {})
    with runtime.db.read_session() as session:
        try:
            article = articles.get_public(session, article_id, articles.local_today(now))
        except NotFound:
            return _missing(request, runtime, embed, mode)
        ctx |= {
            "article": article,
            "issuer": _issuer(session, article),
            "body_html": render_markdown(article.body),
            "nonce": public.nonce(runtime, f"flag:{article.id}", now),
            "reasons": FLAG_REASONS,
        }
    ctx["link"] = lambda **params: _keep(embed, mode, **params)
    cache = not ctx.get("flagged") and not ctx.get("error")
    return public.page(
        request, runtime, "kb/article.html", ctx, status_code=status_code, cache=cache, embed=embed, mode=mode
    )


@router.get("/kb/{article_id}", response_class=HTMLResponse)
def kb_article(
    request: Request, article_id: ArticleId, runtime: RuntimeDep, embed: Switch = "", mode: Switch = ""
) -> Response:
    """A published public article valid today; 404 for any other."""
    if busy := public.limited(request, runtime):
        return busy
    return _article_page(request, runtime, article_id, embed, mode)


@router.post("/kb/{article_id}/flags", response_class=HTMLResponse)
def kb_flag(
    request: Request,
    article_id: ArticleId,
    runtime: RuntimeDep,
    nonce: Annotated[str, Form(max_length=100)] = "",
    reason: Flag = "",
    comment: Annotated[str, Form(max_length=2000)] = "",
    embed: Flag = "",
    mode: Flag = "",
) -> Response:
    """这条回答有帮助吗: a citizen's flag on the article."""
    if busy := public.limited(request, runtime):
        return busy
    now = runtime.now()
    fresh = public.nonce_ok(runtime, f"flag:{article_id}", nonce, now)
    if not fresh:
        stale = {"error": "页面已过期，请刷新后再提交。"}
        return _article_page(request, runtime, article_id, embed, mode, ctx=stale, status_code=403)
    try:
        if len(comment.strip()) > 500:
            raise Invalid("comment: at most 500 characters", field="comment", zh="补充说明请不要超过500个字")
        with runtime.db.session() as session:
            feedback.flag(session, article_id, reason=reason, comment=comment, actor=None, at=now)
    except HotlineError as exc:
        if exc.status_code == 404:
            return _missing(request, runtime, embed, mode)
        message = exc.extra.get("zh") or "提交失败，请稍后再试。"
        return _article_page(
            request, runtime, article_id, embed, mode, ctx={"error": message}, status_code=exc.status_code
        )
    return _article_page(request, runtime, article_id, embed, mode, ctx={"flagged": True})


# ------------------------------------------------------------------ the assistant


def _assistant_page(
    request: Request,
    runtime,
    ctx: dict[str, Any],
    *,
    embed: str,
    mode: str,
    status_code: int = 200,
    cache: bool = False,
) -> Response:
    nonce = public.nonce(runtime, "assistant", runtime.now())
    with runtime.db.read_session() as session:
        ctx = {
            "nonce": nonce,
            "places": list(places(session).items()),
            "max_question": assistant.MAX_QUESTION_CHARS,
            **ctx,
        }
    return public.page(
        request, runtime, "assistant/page.html", ctx, status_code=status_code, cache=cache, embed=embed, mode=mode
    )


def _conversation(roles: list[str], texts: list[str]) -> list[dict[str, str]]:
    """The conversation so far, as the page carried it in hidden fields (the last turns,
    each cut to the longest a turn may be)."""
    cut = (text[: assistant.MAX_TURN_CHARS].strip() for text in texts)
    turns = [
        {"role": role, "text": text}
        for role, text in zip(roles, cut, strict=False)
        if role in assistant.TURN_LABELS and text
    ]
    return turns[-(assistant.MAX_TURNS - 2) :]


Turns = Annotated[list[str], Form(max_length=assistant.MAX_TURNS * 2)]


@router.get("/assistant", response_class=HTMLResponse)
def assistant_page(request: Request, runtime: RuntimeDep, embed: Switch = "", mode: Switch = "") -> Response:
    if busy := public.limited(request, runtime):
        return busy
    return _assistant_page(request, runtime, {"turns": []}, embed=embed, mode=mode, cache=True)


@router.post("/assistant", response_class=HTMLResponse)
def assistant_ask(
    request: Request,
    runtime: RuntimeDep,
    nonce: Annotated[str, Form(max_length=100)] = "",
    question: Annotated[str, Form(max_length=4000)] = "",
    role: Turns = [],  # noqa: B006 (FastAPI copies defaults)
    text: Turns = [],  # noqa: B006
    embed: Flag = "",
    mode: Flag = "",
) -> Response:
    """The page without JavaScript: the question posted, the answer rendered here."""
    if busy := public.limited(request, runtime):
        return busy
    turns = _conversation(role, text)
    fresh = public.nonce_ok(runtime, "assistant", nonce, runtime.now())
    if not fresh:
        ctx = {"turns": turns, "error": "页面已过期，请重新输入您的问题。", "question": question[:200]}
        return _assistant_page(request, runtime, ctx, embed=embed, mode=mode, status_code=403)
    try:
        reply = assistant.ask(runtime, question)
    except Invalid as exc:
        ctx = {"turns": turns, "error": exc.extra.get("zh"), "question": question[:200]}
        return _assistant_page(request, runtime, ctx, embed=embed, mode=mode, status_code=422)
    asked = assistant.clean_question(question)
    turns += [{"role": "citizen", "text": asked}, {"role": "assistant", "text": reply.answer}]
    ctx = {"turns": turns, "reply": reply, "asked": asked}
    return _assistant_page(request, runtime, ctx, embed=embed, mode=mode)


@router.post("/assistant/handoff", response_class=HTMLResponse)
def assistant_handoff(
    request: Request,
    runtime: RuntimeDep,
    nonce: Annotated[str, Form(max_length=100)] = "",
    content: Annotated[str, Form(max_length=4000)] = "",
    caller_phone: Annotated[str, Form(max_length=100)] = "",
    code: Annotated[str, Form(max_length=20)] = "",
    caller_name: Annotated[str, Form(max_length=200)] = "",
    place: Annotated[str, Form(max_length=200)] = "",
    action: Annotated[str, Form(max_length=10)] = "file",
    role: Turns = [],  # noqa: B006
    text: Turns = [],  # noqa: B006
    embed: Flag = "",
    mode: Flag = "",
) -> Response:
    """The hand-over form without JavaScript: `action=code` checks the matter and sends a code
    to the mobile number (the form kept as typed); `action=file` files it with the code, its
    number shown."""
    if busy := public.limited(request, runtime):
        return busy
    turns = _conversation(role, text)
    street, _, community = place.partition("/")
    form = {"content": content, "caller_phone": caller_phone, "caller_name": caller_name, "place": place}
    now = runtime.now()
    ctx: dict[str, Any] = {"turns": turns, "handoff_open": True, "form": form}
    try:
        if not public.nonce_ok(runtime, "assistant", nonce, now):
            raise HotlineError("stale form", status_code=403, zh="页面已过期，请重新提交。")
        if action == "code":
            with runtime.db.read_session() as session:
                assistant.check_matter(session, content, caller_phone, street or None, community or None)
            filing.send_code_now(runtime, caller_phone, now)
            masked = mask_phone(filing.mobile(caller_phone))
            ctx["code_sent"] = f"验证码已发送至 {masked}，{filing.CODE_MINUTES}分钟内有效"
            return _assistant_page(request, runtime, ctx, embed=embed, mode=mode)
        ticket = assistant.hand_over(
            runtime,
            content=content,
            conversation=turns,
            caller_phone=caller_phone,
            code=code,
            caller_name=caller_name or None,
            street=street or None,
            community=community or None,
            now=now,
        )
        number = ticket.number
    except HotlineError as exc:
        ctx.update(handoff_error=page_message(exc), error_field=exc.extra.get("field"))
        response = _assistant_page(request, runtime, ctx, embed=embed, mode=mode, status_code=exc.status_code)
        if retry := exc.extra.get("retry_after"):
            response.headers["Retry-After"] = str(retry)
        return response
    ctx = {"turns": turns, "filed": number, "filed_message": assistant.FILED_MESSAGE}
    return _assistant_page(request, runtime, ctx, embed=embed, mode=mode)

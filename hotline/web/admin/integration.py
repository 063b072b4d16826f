"""对接管理: webhook subscriptions, their health, their dead events."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, select

from hotline.api.deps import RuntimeDep
from hotline.errors import HotlineError
from hotline.integration import delivery, subscriptions
from hotline.integration.events import TOPICS
from hotline.models import Department, Subscription
from hotline.runtime import Runtime
from hotline.web.admin.common import AdminForm, AdminUser, FormError, _done, _name, _page, router
from hotline.web.forms import page_message

SubscriptionId = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
SECRET_COOKIE = "hotline_secret_once"


def _context(session: Session, runtime: Runtime) -> dict[str, Any]:
    stats = subscriptions.health(session, datetime.now(UTC))
    every = session.exec(select(Department).order_by(Department.code)).all()
    departments = [d for d in every if d.active]
    names = {d.id: d.name for d in every}
    rows = [
        {"s": s, "department": names.get(s.department_id), "h": stats.get(s.id, {})}
        for s in session.exec(select(Subscription).order_by(Subscription.id)).all()
    ]
    return {
        "rows": rows,
        "topics": TOPICS,
        "departments": departments,
        "allowed_hosts": runtime.settings.webhook_allowed_hosts,
    }


def _render(request: Request, runtime: Runtime, extra: dict[str, Any], status_code: int = 200) -> Response:
    with runtime.db.read_session() as session:
        ctx = _context(session, runtime)
    return _page(request, "admin/integration.html", {"form": {"topics": list(TOPICS)}, **ctx, **extra}, status_code)


@router.get("/integration", response_class=HTMLResponse)
def integration(request: Request, runtime: RuntimeDep, _: AdminUser) -> Response:
    return _render(request, runtime, {})


@router.post("/integration", response_class=HTMLResponse)
def create_subscription(
    request: Request,
    runtime: RuntimeDep,
    user: AdminForm,
    name: Annotated[str, Form(max_length=200)] = "",
    url: Annotated[str, Form(max_length=600)] = "",
    topics: Annotated[list[str], Form(max_length=10)] = [],  # noqa: B006 (FastAPI reads the default, never mutates it)
    scope: Annotated[str, Form(pattern="^(all|department|source)$")] = "all",
    department: Annotated[str, Form(max_length=32)] = "",
    source: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    form = {"name": name, "url": url, "topics": topics, "scope": scope, "department": department, "source": source}
    try:
        name = _name(name, "名称", "name", max_length=64)
        if scope == "department" and not department:
            raise FormError("请选择单位", "department")
        if scope == "source" and not source.strip():
            raise FormError("请填写来源标识（如 city12345）", "source")
        with runtime.db.session() as session:
            sub = subscriptions.create(
                session,
                name=name,
                url=url,
                topics=topics,
                department=department if scope == "department" else None,
                source=source.strip() if scope == "source" else None,
                allowed_hosts=runtime.settings.webhook_allowed_hosts,
                actor_id=user.actor.id,
                now=datetime.now(UTC),
            )
    except HotlineError as exc:
        return _render(request, runtime, {"error": page_message(exc), "form": form}, exc.status_code)
    return _with_secret(sub, f"已新建对接：{sub.name}")


@router.post("/integration/{subscription_id}/{action}", response_class=HTMLResponse)
def subscription_action(
    request: Request,
    runtime: RuntimeDep,
    _: AdminForm,
    subscription_id: SubscriptionId,
    action: Annotated[str, PathParam(pattern="^(enable|disable|rotate|delete|replay-dead)$")],
) -> Response:
    now = datetime.now(UTC)
    try:
        with runtime.db.session() as session:
            if action in ("enable", "disable"):
                sub = subscriptions.set_enabled(session, subscription_id, action == "enable", reason=None, now=now)
                notice = f"已{'启用' if sub.enabled else '停用'}对接：{sub.name}"
            elif action == "rotate":
                sub = subscriptions.rotate(session, subscription_id, now=now, grace=timedelta(hours=24))
                name = sub.name
            elif action == "delete":
                name = subscriptions.get(session, subscription_id).name
                subscriptions.remove(session, subscription_id)
                notice = f"已删除对接：{name}"
            else:
                n = delivery.replay(session, subscription_id, dead_only=True, now=now)
                notice = f"已重新投递失败消息 {n} 条"
    except HotlineError as exc:
        return _render(request, runtime, {"error": page_message(exc)}, exc.status_code)
    if action == "rotate":
        return _with_secret(sub, f"已为“{name}”生成新密钥，旧密钥 24 小时内仍同时签名")
    return _done("/admin/integration" if action == "delete" else f"/admin/integration/{subscription_id}", notice)


def _with_secret(sub: Subscription, notice: str) -> Response:
    """To the subscription's page, which shows its new secret once: the secret rides in a
    cookie for that page alone, read and cleared by its next rendering (a reload shows no secret
    and posts nothing twice)."""
    response = _done(f"/admin/integration/{sub.id}", notice)
    response.set_cookie(
        SECRET_COOKIE,
        f"{sub.id}:{sub.secret}",
        max_age=60,
        httponly=True,
        samesite="strict",
        path=f"/admin/integration/{sub.id}",
    )
    return response


@router.get("/integration/{subscription_id}", response_class=HTMLResponse)
def subscription_detail(
    request: Request, runtime: RuntimeDep, _: AdminUser, subscription_id: SubscriptionId, status: str = ""
) -> Response:
    wanted = status if status in ("pending", "delivered", "dead") else None
    with runtime.db.read_session() as session:
        sub = subscriptions.get(session, subscription_id)
        health = subscriptions.health(session, datetime.now(UTC)).get(sub.id, {})
        rows = [
            {**row, **{k: datetime.fromisoformat(row[k]) for k in ("last_attempt_at", "next_attempt_at") if row[k]}}
            for row in delivery.deliveries_out(session, sub.id, status=wanted, limit=200)
        ]
        department = session.get(Department, sub.department_id).name if sub.department_id else None
    ctx = {"s": sub, "h": health, "deliveries": rows, "status": wanted or "", "department": department}
    held = request.cookies.get(SECRET_COOKIE, "")
    if held.startswith(f"{sub.id}:"):
        ctx["secret"] = held.split(":", 1)[1]
    response = _page(request, "admin/integration_detail.html", {**ctx, "topics": TOPICS})
    if held:
        response.delete_cookie(SECRET_COOKIE, path=f"/admin/integration/{sub.id}")
    return response

"""Rendering pages: the Jinja2 environment (autoescaped), filters and the navigation by role."""

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from hotline.attachments.files import size_text
from hotline.config import get_settings
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.labels import (  # noqa: F401  (the templates' labels, re-exported)
    CHANNEL_LABELS,
    CLOSE_REASON_LABELS,
    HISTORY_LABELS,
    NOTICE_LABELS,
    ORDER_STATUS_LABELS,
    RATING_LABELS,
    ROLE_LABELS,
    TYPE_LABELS,
    URGENCY_LABELS,
    history_reason,
)
from hotline.web.auth import PageUser

NAV = {
    # 待派单: tickets that came in through the API, Open311 or the city platform wait there.
    "agent": [
        ("/agent/intake", "工单受理"),
        ("/tickets?state=registered", "待派单"),
        ("/agent/callbacks", "待回访"),
        ("/tickets", "工单查询"),
        ("/knowledge", "知识库"),
    ],
    "handler": [
        ("/department/inbox", "部门工作台"),
        ("/tickets", "工单查询"),
        ("/evaluation/rectifications", "差评整改"),
        ("/evaluation/appeals", "申诉"),
        ("/knowledge", "知识库"),
    ],
    "leader": [
        ("/department/inbox", "部门工作台"),
        ("/department/supervision", "督办单"),
        ("/tickets", "工单查询"),
        ("/evaluation/rectifications", "差评整改"),
        ("/evaluation/appeals", "申诉"),
        ("/performance", "绩效考核"),
        ("/analysis", "分析研判"),
        ("/reports", "统计报表"),
        ("/knowledge", "知识库"),
    ],
    "supervisor": [
        ("/supervisor/dashboard", "超期看板"),
        ("/supervisor/reviews", "审核队列"),
        ("/tickets?state=registered", "待派单"),
        ("/evaluation/rectifications", "整改审核"),
        ("/evaluation/appeals", "申诉复核"),
        ("/tickets", "工单查询"),
        ("/performance", "绩效考核"),
        ("/analysis", "分析研判"),
        ("/reports", "统计报表"),
        ("/knowledge", "知识库"),
    ],
    "admin": [
        ("/admin/departments", "单位"),
        ("/admin/users", "用户"),
        ("/admin/categories", "分类"),
        ("/admin/rules", "派单规则"),
        ("/admin/limits", "时限"),
        ("/admin/calendar", "节假日"),
        ("/admin/workflows", "流程"),
        ("/admin/district", "区县设置"),
        ("/admin/integration", "对接"),
        ("/admin/audit", "安全审计"),
        ("/knowledge", "知识库"),
    ],
    # 知识库管理员: the knowledge base, and the tickets it learns from.
    "editor": [
        ("/knowledge", "知识库"),
        ("/knowledge?status=under_review", "待审核"),
        ("/knowledge/gaps", "知识缺口"),
        ("/knowledge/flags", "反馈"),
        ("/knowledge/import", "导入"),
        ("/tickets", "工单查询"),
    ],
}
HOME = {
    "agent": "/agent/intake",
    "handler": "/department/inbox",
    "leader": "/department/inbox",
    "supervisor": "/supervisor/dashboard",
    "admin": "/admin/departments",
    "editor": "/knowledge",
}


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time as Asia/Shanghai wall time."""
    return value.astimezone(LOCAL_TZ).strftime(fmt) if value else ""


def duration_text(seconds: float) -> str:
    """A span of time in Chinese words: 2天3小时, 45分钟."""
    seconds = abs(int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days}天{hours}小时" if hours else f"{days}天"
    if hours:
        return f"{hours}小时{rest // 60}分钟" if rest // 60 else f"{hours}小时"
    return f"{max(rest // 60, 1)}分钟"


# A long list in an audit record (a year's calendar: hundreds of days) shows its first items
# and its length; the record itself keeps every item (the API and the export give them all).
CHANGE_ITEMS_SHOWN = 10


def change_value(value: Any) -> str:
    """A value of an audit record's before or after, for people: text as it is, yes or no, a
    list of texts joined with 、, anything else as JSON with its Chinese unescaped; of a long
    list, the first items and how many there are."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list) and len(value) > CHANGE_ITEMS_SHOWN:
        shown = change_value(value[:CHANGE_ITEMS_SHOWN])
        return f"{shown} …（共 {len(value)} 项，此处列出前 {CHANGE_ITEMS_SHOWN} 项）"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "、".join(value) or "—"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@lru_cache
def templates() -> Jinja2Templates:
    """The page templates; autoescaping is on for every .html file."""
    t = Jinja2Templates(directory=str(get_settings().templates_dir))
    env = t.env
    env.filters["local"] = local_time
    env.filters["duration"] = duration_text
    env.filters["reason"] = history_reason
    env.filters["change"] = change_value
    env.filters["size"] = size_text
    env.globals.update(
        ROLE_LABELS=ROLE_LABELS,
        TYPE_LABELS=TYPE_LABELS,
        URGENCY_LABELS=URGENCY_LABELS,
        CHANNEL_LABELS=CHANNEL_LABELS,
        RATING_LABELS=RATING_LABELS,
        CLOSE_REASON_LABELS=CLOSE_REASON_LABELS,
        NOTICE_LABELS=NOTICE_LABELS,
        HISTORY_LABELS=HISTORY_LABELS,
        ORDER_STATUS_LABELS=ORDER_STATUS_LABELS,
        NAV=NAV,
    )
    return t


def nav_active(role: str, path: str, query: str) -> str | None:
    """The navigation entry of this address: the one it is exactly (待派单 is a search with a
    state), else the longest one its path starts with."""
    here = f"{path}?{query}" if query else path
    hrefs = [href for href, _ in NAV.get(role, [])]
    if here in hrefs:
        return here
    prefixes = [href for href in hrefs if "?" not in href and path.startswith(href)]
    return max(prefixes, key=len, default=None)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    """A page for the signed-in user (request.state.page_user) with the layout's context."""
    user: PageUser | None = getattr(request.state, "page_user", None)
    path = request.url.path
    runtime = request.app.state.runtime
    with runtime.db.read_session() as session:
        district = runtime.district(session)
    ctx = {
        "user": user,
        "district": district,
        # The hotline numbers (一个号码): a ticket's line, the analysis by line.
        "hotlines": runtime.workflows.lines,
        "path": path,
        "nav_active": nav_active(user.role, path, request.url.query) if user else None,
        **(context or {}),
    }
    return templates().TemplateResponse(request, name, ctx, status_code=status_code)

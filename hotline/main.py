"""create_app(): routers, error handlers, the body-size limit, the lifespan."""

import logging
import re
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline import __version__, audit_log
from hotline.api import (
    admin,
    analysis,
    assistant,
    attachments,
    audit,
    calendar,
    calls,
    evaluation,
    integration,
    knowledge,
    open311,
    stats,
    supervision,
    tickets,
)
from hotline.config import Settings, get_settings
from hotline.db import Database
from hotline.errors import HotlineError
from hotline.inputs import refuse_control_characters
from hotline.ops import routes as ops_routes
from hotline.ops.logs import REDACT
from hotline.ops.metrics import RequestTimer
from hotline.runtime import Runtime
from hotline.web import admin as admin_pages
from hotline.web import agent, citizen, department, filing, kb, performance, supervisor, views
from hotline.web import attachments as attachment_pages
from hotline.web import calls as call_pages
from hotline.web import evaluation as evaluation_pages
from hotline.web import knowledge as knowledge_pages
from hotline.web.headers import SecurityHeaders
from hotline.web.uploads import upload_limits

STATIC_DIR = Path(__file__).parent / "web" / "static"

log = logging.getLogger("hotline")


class BodyTooLarge(StarletteHTTPException):
    """A streamed body passed its limit while the application read it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodySizeLimit:
    """Refuse request bodies over the limit with a 413, whether declared or streamed (the
    body is read whole before the application sees it); the paths in `larger` have limits
    of their own (a knowledge-base import of 1,000 articles)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: dict[str, int] | None = None,
        streamed: list[tuple[re.Pattern[str], int]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}
        # Paths whose multipart bodies (uploads) reach the application as they arrive, counted,
        # never held in memory here: past the limit, reading raises BodyTooLarge (a 413). Other
        # bodies to them keep the common limit (a form parser holds those whole).
        self.streamed = streamed or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        headers = dict(scope.get("headers", []))
        multipart = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        streamed = (
            next((limit for pattern, limit in self.streamed if pattern.fullmatch(path)), None) if multipart else None
        )
        limit = streamed or self.larger.get(path, self.max_bytes)
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(send, limit)
                return
        if streamed is not None:
            await self.app(scope, self._counted(receive, limit), send)
            return
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await self._refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    @staticmethod
    def _counted(receive: Receive, limit: int) -> Receive:
        seen = 0

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return counting

    async def _refuse(self, send: Send, limit: int) -> None:
        response = JSONResponse({"detail": f"the request body is larger than {limit} bytes"}, status_code=413)
        await response({"type": "http"}, None, send)  # type: ignore[arg-type]


_REDACT_KEYS = REDACT  # the access log's filter (hotline.ops.logs)


def _field_of(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


# The query and form fields of the pages a person may get wrong, in their words.
_FIELDS_ZH = {
    "q": "搜索内容", "category_q": "分类搜索", "page": "页码", "kind": "类型", "type": "类型", "metric": "指标",
    "state": "状态", "status": "状态", "level": "预警级别", "ticket_id": "工单", "department": "单位",
    "category": "问题分类", "street": "街道", "community": "社区", "address": "地址", "title": "标题",
    "content": "诉求内容", "caller_phone": "来电号码", "line": "热线号码", "channel": "渠道", "urgency": "紧急程度",
    "created_from": "起始日期", "created_to": "截止日期", "since": "起始日期", "until": "截止日期",
    "month": "月份", "day": "日期", "days": "天数", "name": "名称", "code": "编码", "priority": "优先级",
    "reason": "理由", "sort": "排序", "dir": "排序方向", "view": "视图", "tab": "标签页", "edit": "编辑项",
    "test_category": "测试分类", "test_place": "测试地点", "actor": "操作人", "target": "对象",
    "outcome": "结果", "format": "格式", "body": "提交内容",
    # In the pages' addresses.
    "article_id": "条目号", "attachment_id": "附件编号", "appeal_id": "申诉编号", "call_id": "来电记录编号",
    "department_id": "单位编号", "gap_id": "知识缺口编号", "notification_id": "通知编号", "order_id": "督办单编号",
    "rect_id": "整改编号", "report_id": "报表编号", "rule_id": "规则编号", "session_id": "登录会话编号",
    "subscription_id": "订阅编号", "user_id": "用户编号", "year": "年份", "action": "操作", "event": "操作",
    "part": "分析内容", "token": "评价链接", "answered": "答复状态", "apage": "页码", "changed": "修改结果",
    "closed": "是否已关闭", "done": "完成提示", "embed": "嵌入方式", "start": "起始日期", "end": "截止日期",
    "week": "周", "flash": "提示", "gap": "知识缺口", "mode": "显示模式", "next": "返回地址", "number": "工单编号",
    "role": "角色", "signed": "签收状态", "t": "时间戳", "table": "导出表", "ticket": "工单",
    # In the citizens' forms.
    "nonce": "页面校验码", "step": "步骤", "photos": "现场照片", "caller_name": "称呼", "place": "街道、社区",
    "question": "问题", "text": "对话内容", "comment": "补充说明", "rating": "评价", "solved": "是否解决",
}  # fmt: skip


# The citizens' forms that send an SMS code name their `code` field so (elsewhere `code` is a
# category's or a department's 编码).
_SMS_CODE_PATHS = ("/file", "/assistant/handoff")


def _field_zh(field: str, path: str = "") -> str:
    if field == "code" and path in _SMS_CODE_PATHS:
        return "短信验证码"
    return _FIELDS_ZH.get(field, field)


def _validation_zh(error: dict) -> str:
    """What a page says of a value the request's validation refused (pydantic's error types)."""
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "missing":
        return "必须填写"
    if kind == "string_too_long":
        return f"不能超过 {ctx.get('max_length')} 个字符"
    if kind == "string_too_short":
        return f"至少 {ctx.get('min_length')} 个字符"
    if kind.startswith("int_"):
        return "应为整数"
    if kind.startswith("float_") or kind.startswith("decimal_"):
        return "应为数字"
    if kind.startswith("bool_"):
        return "应为“是”或“否”"
    if kind.startswith(("date", "time")):
        return "日期或时间的格式不正确"
    bounds = {"greater_than_equal": ("不能小于", "ge"), "greater_than": ("应大于", "gt"),
              "less_than_equal": ("不能大于", "le"), "less_than": ("应小于", "lt")}  # fmt: skip
    if kind in bounds:
        words, key = bounds[kind]
        return f"{words} {ctx.get(key)}"
    if kind == "string_pattern_mismatch":
        return "格式不正确"
    if kind == "json_invalid":
        return "不是有效的 JSON"
    if kind == "extra_forbidden":
        return "不认识的字段"
    return "取值无效"


def _is_open311(request: Request) -> bool:
    return request.url.path.startswith("/open311/")


# Addresses for machines (probes, the metrics scraper, the schema): their errors are JSON too.
_MACHINE_PATHS = frozenset({"/openapi.json", "/healthz", "/readyz", "/metrics"})


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/open311/", "/public/")) or request.url.path in _MACHINE_PATHS


def _page_error(request: Request, status_code: int, message: str) -> Response:
    from hotline.web.render import render

    if status_code == 401:
        target = f"/login?next={quote(request.url.path)}"
        if request.headers.get("hx-request"):
            # An htmx fragment must not turn into a login form inside the panel it updates.
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    headings = {403: "无权访问", 404: "页面不存在", 405: "无法打开", 409: "操作冲突", 413: "内容过大", 422: "输入有误"}
    if not hasattr(request.state, "page_user"):
        from hotline.web.auth import optional_user

        optional_user(request, request.app.state.runtime)
    return render(
        request,
        "errors/error.html",
        {"status_code": status_code, "heading": headings.get(status_code, "出错了"), "message": message},
        status_code,
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HotlineError)
    async def hotline_error(request: Request, exc: HotlineError) -> Response:
        retry = {"Retry-After": str(exc.extra.get("retry_after", 1))} if exc.status_code == 429 else None
        if _is_open311(request):
            return open311.error_response(request.url.path, exc.status_code, exc.message, retry)
        if not _is_api(request):
            from hotline.web.forms import page_message

            return _page_error(request, exc.status_code, page_message(exc) if exc.status_code != 401 else "")
        body = {"detail": exc.message, **{k: v for k, v in exc.extra.items() if v is not None}}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        if retry:
            headers = retry
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors, raw = [], exc.errors()
        for err in raw:
            field = _field_of(tuple(err.get("loc", ())))
            if err.get("type") == "extra_forbidden":
                message = "unknown field"
            elif err.get("type") == "json_invalid":
                field, message = "body", "the body is not valid JSON"
            else:
                message = err.get("msg", "invalid")
            errors.append({"field": field, "message": message})
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        if _is_open311(request):
            return open311.error_response(request.url.path, 400, f"{first['field']}: {first['message']}")
        if not _is_api(request):
            said = _validation_zh(raw[0] if raw else {})
            return _page_error(request, 422, f"输入有误：{_field_zh(first['field'], request.url.path)}（{said}）")
        return JSONResponse(
            {"detail": f"{first['field']}: {first['message']}", "field": first["field"], "errors": errors},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such address"
        if _is_open311(request):
            return open311.error_response(request.url.path, exc.status_code, detail, exc.headers)
        if exc.status_code == 404 and detail == "no such address" and not _is_api(request):
            return _page_error(request, 404, "您访问的页面不存在")
        if exc.status_code == 405 and not _is_api(request):  # e.g. an upload's address opened in the browser
            page = _page_error(request, 405, "该地址不能这样打开，请从页面上的链接或按钮进入")
            page.headers.update(exc.headers or {})
            return page
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def database_busy(request: Request, exc: OperationalError) -> Response:
        log.exception("database error", exc_info=exc)
        detail, headers = "the database is busy; try again", {"Retry-After": "1"}
        if _is_open311(request):
            return open311.error_response(request.url.path, 503, detail, headers)
        return JSONResponse({"detail": detail}, status_code=503, headers=headers)

    @app.exception_handler(StaleDataError)
    @app.exception_handler(IntegrityError)
    async def changed_meanwhile(request: Request, exc: Exception) -> Response:
        # Two changes of one row at once that the code did not foresee (a row deleted while
        # another request updates it; a unique key taken between check and write): the
        # later one is refused, nothing was written.
        log.warning("a change met another one: %s", exc.__class__.__name__)
        detail = "the data changed meanwhile (another change got there first); reload and try again"
        if _is_open311(request):
            return open311.error_response(request.url.path, 409, detail)
        if not _is_api(request):
            return _page_error(request, 409, "数据刚刚已被他人修改，请刷新后重试")
        return JSONResponse({"detail": detail, "zh": "数据刚刚已被他人修改，请刷新后重试"}, status_code=409)


def _warm_segmenter() -> None:
    from hotline.knowledge.text import words

    try:
        words("预热分词词典")
    except Exception:  # a cold first search is slower, not wrong
        log.exception("loading the segmenter's dictionary failed")


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """The web application: API, pages and (optionally) the embedded scheduler."""
    settings = settings or get_settings()
    if runtime is None:
        runtime = Runtime(Database(settings.database_url, echo=settings.sql_echo), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        scheduler = None
        if settings.embedded_scheduler:
            from hotline.scheduler import build_scheduler

            scheduler = build_scheduler(runtime)
            scheduler.start()
        # The segmenter loads its dictionary (a second or two) on first use: load it now, in
        # the background, not in the first agent's knowledge suggestion or citizen's question.
        threading.Thread(target=_warm_segmenter, name="warm-segmenter", daemon=True).start()
        yield
        if scheduler is not None:
            from hotline.scheduler import stop_scheduler

            stop_scheduler(scheduler)
        runtime.db.dispose()

    app = FastAPI(
        title="hotline",
        version=__version__,
        lifespan=lifespan,
        description="Ticket workflow engine for a 12345 government-service hotline.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(refuse_control_characters)],
    )
    app.state.runtime = runtime
    logging.getLogger("uvicorn.access").addFilter(_REDACT_KEYS)
    # The tickets' routes first: a request is matched against the routes in this order, and
    # intake and the transitions are the busiest calls (behind admin's fifteen routes and the
    # audit's, matched twice over, they cost a tenth of the event loop's work per intake).
    # No route before them serves a path under /api/v1/tickets.
    app.include_router(tickets.router, prefix="/api/v1")
    app.include_router(admin.router, prefix="/api/v1")
    app.include_router(audit.router, prefix="/api/v1")
    app.include_router(supervision.router, prefix="/api/v1")
    app.include_router(calendar.router, prefix="/api/v1")
    app.include_router(evaluation.router, prefix="/api/v1")
    app.include_router(stats.router, prefix="/api/v1")
    app.include_router(analysis.router, prefix="/api/v1")
    app.include_router(integration.router, prefix="/api/v1")
    app.include_router(attachments.router, prefix="/api/v1")
    app.include_router(calls.router, prefix="/api/v1")
    app.include_router(knowledge.router, prefix="/api/v1")
    app.include_router(knowledge.public_router)
    app.include_router(assistant.router)
    app.include_router(open311.router)
    app.include_router(views.router)
    app.include_router(attachment_pages.router)
    app.include_router(call_pages.router)
    app.include_router(citizen.router)
    app.include_router(kb.router)
    app.include_router(filing.router)
    app.include_router(agent.router)
    app.include_router(department.router)
    app.include_router(supervisor.router)
    app.include_router(admin_pages.router)
    app.include_router(performance.router)
    app.include_router(evaluation_pages.router)
    app.include_router(knowledge_pages.router)
    app.include_router(ops_routes.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _install_error_handlers(app)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        larger={
            "/api/v1/knowledge/import": knowledge.MAX_IMPORT_BYTES,
            # The spreadsheet, and the form around it (the page says when the file alone is too large).
            "/knowledge/import": knowledge_pages.MAX_UPLOAD_BYTES + 1024 * 1024,
        },
        streamed=upload_limits(settings.max_attachment_bytes),
    )
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(audit_log.RequestContext)
    app.add_middleware(RequestTimer)  # outermost: the time includes every middleware's
    return app

"""create_app(): routers, error handlers, the body-size limit, the lifespan."""

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline import __version__
from hotline.api import admin, calendar, supervision, tickets
from hotline.config import Settings, get_settings
from hotline.db import Database
from hotline.errors import HotlineError
from hotline.runtime import Runtime

log = logging.getLogger("hotline")


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse request bodies over the limit with a 413, whether declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(send)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse({"detail": f"the request body is larger than {self.max_bytes} bytes"}, status_code=413)
        await response({"type": "http"}, None, send)  # type: ignore[arg-type]


def _field_of(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HotlineError)
    async def hotline_error(_: Request, exc: HotlineError) -> JSONResponse:
        body = {"detail": exc.message, **{k: v for k, v in exc.extra.items() if v is not None}}
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            field = _field_of(tuple(err.get("loc", ())))
            if err.get("type") == "extra_forbidden":
                message = "unknown field"
            elif err.get("type") == "json_invalid":
                field, message = "body", "the body is not valid JSON"
            else:
                message = err.get("msg", "invalid")
            errors.append({"field": field, "message": message})
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return JSONResponse(
            {"detail": f"{first['field']}: {first['message']}", "field": first["field"], "errors": errors},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such address"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def database_busy(_: Request, exc: OperationalError) -> JSONResponse:
        log.exception("database error", exc_info=exc)
        return JSONResponse(
            {"detail": "the database is busy; try again"}, status_code=503, headers={"Retry-After": "1"}
        )


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
        yield
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        runtime.db.dispose()

    app = FastAPI(
        title="hotline",
        version=__version__,
        lifespan=lifespan,
        description="Ticket workflow engine for a 12345 government-service hotline.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.include_router(admin.router, prefix="/api/v1")
    app.include_router(tickets.router, prefix="/api/v1")
    app.include_router(supervision.router, prefix="/api/v1")
    app.include_router(calendar.router, prefix="/api/v1")
    _install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app

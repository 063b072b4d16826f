"""What every citizens' page shares (the knowledge base, the assistant, the rating page): the
layout's context — the district, the hotline number, the embedded layout (`?embed=1`) and
the large-text high-contrast mode (`?mode=elder`) — and its caching."""

import hmac
from datetime import datetime
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from hotline.api.assistant import NO_STORE
from hotline.api.deps import public_client
from hotline.api.knowledge import PUBLIC_CACHE
from hotline.errors import TooManyRequests
from hotline.evaluation.ratings import app_secret, form_nonce
from hotline.models import AppSecret
from hotline.web.render import templates

# `?embed=1`, `?mode=elder` in an address, and the same kept by a form: anything else (up to
# ten characters) is the ordinary page.
Switch = Annotated[str, Query(max_length=10)]
Flag = Annotated[str, Form(max_length=10)]
NONCE_SECONDS = 3600
SECRET_NAME = "public_form"


def page(
    request: Request,
    runtime,
    name: str,
    ctx: dict[str, Any],
    *,
    status_code: int = 200,
    cache: bool = True,
    embed: str = "",
    mode: str = "",
) -> Response:
    """A citizens' page in templates/citizen/layout.html. Cached like the public API when
    `cache` and 200; anything else (a form's answer, a refusal) is never stored."""
    with runtime.db.read_session() as session:
        district = runtime.district(session)
    context = {
        "district": district,
        "phone": runtime.settings.phone,
        "embed": embed == "1",
        "elder": mode == "elder",
        "path": request.url.path,
        # The large-text switch is a GET form to this address: the rest of its query kept.
        "query_items": [(k, v) for k, v in request.query_params.multi_items() if k != "mode"],
        **ctx,
    }
    response = templates().TemplateResponse(request, name, context, status_code=status_code)
    response.headers["Cache-Control"] = PUBLIC_CACHE if cache and status_code == 200 else NO_STORE
    return response


def _secret(runtime, now: datetime) -> bytes:
    """The key of the public forms' nonces: read (a page view takes no write lock), made once."""
    with runtime.db.read_session() as session:
        row = session.get(AppSecret, SECRET_NAME)
        if row is not None:
            return bytes.fromhex(row.value)
    with runtime.db.session() as session:
        return app_secret(session, SECRET_NAME, now)


def nonce(runtime, form: str, now: datetime, hours_ago: int = 0) -> str:
    """A public form's CSRF token: signed with the installation's secret, bound to the form
    and the hour; good that hour and the next (a cached page still carries a good one)."""
    window = int(now.timestamp()) // NONCE_SECONDS - hours_ago
    return form_nonce(_secret(runtime, now), f"{form}:{window}")


def nonce_ok(runtime, form: str, given: str, now: datetime) -> bool:
    return any(hmac.compare_digest(given, nonce(runtime, form, now, ago)) for ago in (0, 1))


def limited(request: Request, runtime) -> Response | None:
    """The public side's rate limit, per client address: a page that says so when it is reached."""
    try:
        public_client(request, runtime)
    except TooManyRequests as exc:
        ctx = {"heading": "访问太频繁", "message": "您的访问太频繁了，请稍等一会儿再试。"}
        response = page(request, runtime, "kb/notice.html", ctx, status_code=429)
        response.headers["Retry-After"] = str(exc.extra.get("retry_after", 1))
        return response
    return None

"""What every citizens' page shares (the knowledge base, the assistant, the rating page): the
layout's context — the district, the hotline number, the embedded layout (`?embed=1`) and
the large-text high-contrast mode (`?mode=elder`) — and its caching."""

from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from hotline.api.assistant import NO_STORE
from hotline.api.knowledge import PUBLIC_CACHE
from hotline.web.render import templates

# `?embed=1`, `?mode=elder` in an address, and the same kept by a form: anything else (up to
# ten characters) is the ordinary page.
Switch = Annotated[str, Query(max_length=10)]
Flag = Annotated[str, Form(max_length=10)]


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

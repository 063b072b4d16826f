"""Calls (来电弹屏): the telephone system reports incoming calls; agents read a caller's history."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field

from hotline import calls
from hotline.api.deps import RuntimeDep, require
from hotline.api.schemas import Body
from hotline.deadlines.calendar import local_iso
from hotline.ticket_view import Lookups, ticket_out
from hotline.workflow.engine import Actor

router = APIRouter(tags=["calls"])

TelephonyActor = Annotated[Actor, require("integration")]
CallTaker = Annotated[Actor, require(*calls.CALL_TAKERS)]


class CallIn(Body):
    """An incoming call: its id in the telephone system, the caller, the agent it rings."""

    call_id: Annotated[str, Field(min_length=1, max_length=64)]
    caller_phone: Annotated[str, Field(min_length=3, max_length=30, pattern=r"^[0-9+\-() ]+$")]
    agent: Annotated[str, Field(min_length=1, max_length=64)]
    started_at: AwareDatetime
    dialled: Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[0-9]+$")] | None = None


@router.post("/calls", status_code=status.HTTP_201_CREATED, response_model=None)
def report_call(body: CallIn, actor: TelephonyActor, runtime: RuntimeDep) -> JSONResponse:
    """A call rings an agent: its open workbench shows the caller at once. The same `call_id`
    again returns the first (200)."""
    with runtime.db.session() as session:
        call, created = calls.receive(
            session, actor, body.model_dump(), source=runtime.settings.call_source, now=runtime.now()
        )
        out = calls.call_out(call)
    return JSONResponse(out, status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@router.get("/callers/{phone}")
def caller(
    phone: Annotated[str, Path(min_length=3, max_length=30, pattern=r"^[0-9+\-() ]+$")],
    actor: CallTaker,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """The caller's tickets, newest first, each marked open and repeat (logged within 30
    days), and the last rating the caller gave."""
    now: datetime = runtime.now()
    with runtime.db.read_session() as session:
        history = calls.caller_history(session, runtime, actor, phone, now=now)
        lookups = Lookups(session)
        rating = history.last_rating
        return {
            "phone": calls.clean_phone(phone),
            "tickets": [
                {
                    **ticket_out(t, actor, runtime, lookups),
                    "open": t.id in history.open_ids,
                    "repeat": t.id in history.repeat_ids,
                }
                for t in history.tickets
            ],
            "open": len(history.open_ids),
            "repeats": len(history.repeat_ids),
            "last_rating": {"ticket": rating.ticket_id, "rating": rating.rating, "at": local_iso(rating.at)}
            if rating
            else None,
        }

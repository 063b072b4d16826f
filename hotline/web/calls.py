"""来电弹屏 on the agent's workbench: a stream of server-sent events that names each call to
this agent as it is reported, and the caller's card the page then asks for."""

import asyncio
import time

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from hotline import calls
from hotline.api.deps import RuntimeDep
from hotline.inputs import MAX_ID, IdPath
from hotline.web.agent import AgentUser
from hotline.web.render import render

router = APIRouter(prefix="/agent", include_in_schema=False)

# How often a stream looks for new calls (every process sees every call this way, whichever
# process the telephone system posted to), and how long one stream lasts before the browser
# reconnects (and its sign-in is checked again).
POLL_SECONDS = 0.3
STREAM_SECONDS = 300.0


def _poll(runtime, agent_id: int, after: int | None) -> tuple[list[int], int]:
    with runtime.db.read_session() as session:
        found = [c.id for c in calls.calls_after(session, agent_id, after, now=runtime.now())]
        if after is None:
            return found, calls.last_call_id(session, agent_id)
    return found, found[-1] if found else after


@router.get("/calls/stream")
async def call_stream(request: Request, runtime: RuntimeDep, user: AgentUser) -> Response:
    """`event: call`, `data:` the call's id, for each call to this agent (`Last-Event-ID` resumes)."""
    last = request.headers.get("last-event-id", "")
    after = int(last) if last.isdigit() and int(last) <= MAX_ID else None
    agent_id = user.actor.id

    async def events():
        nonlocal after
        yield "retry: 1000\n\n"
        ends = time.monotonic() + STREAM_SECONDS
        while time.monotonic() < ends and not await request.is_disconnected():
            found, after = await run_in_threadpool(_poll, runtime, agent_id, after)
            for call_id in found:
                yield f"id: {call_id}\nevent: call\ndata: {call_id}\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )


@router.get("/calls/{call_id}", response_class=HTMLResponse)
def call_card(request: Request, call_id: IdPath, runtime: RuntimeDep, user: AgentUser) -> Response:
    """The caller's card: the number, the line dialled, open tickets, repeats, the last rating."""
    now = runtime.now()
    with runtime.db.read_session() as session:
        call = calls.own_call(session, user.actor, call_id)
        history = calls.caller_history(session, runtime, user.actor, call.caller_phone, now=now)
        return render(
            request,
            "agent/_call.html",
            {
                "call": call,
                "line": calls.call_line(runtime, call),
                "history": history,
                "repeat_days": calls.REPEAT_DAYS,
            },
        )

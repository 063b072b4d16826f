"""The assistant (智能客服) for citizens, no token: a question answered from the published
public articles, and the hand-over that files the matter online (/public/v1/assistant)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import Field

from hotline import filing
from hotline.api.deps import RuntimeDep, public_client
from hotline.api.schemas import Body
from hotline.knowledge import assistant

router = APIRouter(prefix="/public/v1/assistant", tags=["assistant (public)"])
# Answers and tickets are the asker's own: never kept by a cache.
NO_STORE = "no-store"


class QuestionIn(Body):
    # Checked again by the assistant: 1 to 200 characters after trimming, no control characters.
    question: Annotated[str, Field(max_length=2000)]


class TurnIn(Body):
    role: Literal["citizen", "assistant"]
    text: Annotated[str, Field(max_length=assistant.MAX_TURN_CHARS)]


class HandoffIn(Body):
    content: Annotated[str, Field(max_length=assistant.MAX_CONTENT_CHARS)]
    conversation: Annotated[list[TurnIn], Field(max_length=assistant.MAX_TURNS)] = []
    caller_phone: Annotated[str, Field(max_length=30)]
    # The code sent to caller_phone by POST /handoff/code (checked by the assistant: 422 without it).
    code: Annotated[str, Field(max_length=10)] = ""
    caller_name: Annotated[str, Field(max_length=50)] | None = None
    street: Annotated[str, Field(max_length=50)] | None = None
    community: Annotated[str, Field(max_length=50)] | None = None


class CodeIn(Body):
    caller_phone: Annotated[str, Field(max_length=30)]


@router.post("")
def ask(body: QuestionIn, request: Request, response: Response, runtime: RuntimeDep) -> dict[str, Any]:
    """`{answer, articles: [{id, title, url}], handoff, source, next_steps}`: the passage of the
    best published public article (or the model's answer from the passages), or a hand-over."""
    public_client(request, runtime)
    reply = assistant.ask(runtime, body.question)
    response.headers["Cache-Control"] = NO_STORE
    return reply.out()


@router.post("/handoff/code", status_code=status.HTTP_202_ACCEPTED)
def hand_over_code(body: CodeIn, request: Request, response: Response, runtime: RuntimeDep) -> dict[str, Any]:
    """A six-digit code to the mobile phone the matter will be filed under, good for 10 minutes
    (one a minute, five an hour: 429 with Retry-After); 503 if the message gateway refused it."""
    public_client(request, runtime)
    response.headers["Cache-Control"] = NO_STORE
    filing.send_code_now(runtime, body.caller_phone, runtime.now())
    return {"sent": True, "minutes": filing.CODE_MINUTES}


@router.post("/handoff", status_code=status.HTTP_201_CREATED)
def hand_over(body: HandoffIn, request: Request, response: Response, runtime: RuntimeDep) -> dict[str, Any]:
    """File the matter online under the mobile number the code was sent to: a consultation
    ticket of the web channel waiting for dispatch, the conversation attached;
    `{number, state, message}`."""
    public_client(request, runtime)
    ticket = assistant.hand_over(
        runtime,
        content=body.content,
        conversation=[turn.model_dump() for turn in body.conversation],
        caller_phone=body.caller_phone,
        code=body.code,
        caller_name=body.caller_name,
        street=body.street,
        community=body.community,
        now=runtime.now(),
    )
    number, state = ticket.number, ticket.state
    response.headers["Cache-Control"] = NO_STORE
    return {"number": number, "state": state, "message": assistant.FILED_MESSAGE}

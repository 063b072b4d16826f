"""Dependencies: the runtime, the caller, and role checks."""

from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import select

from hotline.errors import NotAuthenticated, NotPermitted
from hotline.models import ApiToken, User
from hotline.runtime import Runtime
from hotline.security import token_digest
from hotline.workflow.engine import Actor


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def current_actor(request: Request, runtime: RuntimeDep) -> Actor:
    """The user behind the request's bearer token.

    The API takes bearer tokens only, never the pages' session cookie, so that no
    other site can make a signed-in browser call it (no CSRF surface here).
    """
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("send 'Authorization: Bearer TOKEN' (get one with `hotline users token`)")
    with runtime.db.read_session() as session:
        user = session.exec(
            select(User)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(
                ApiToken.token_hash == token_digest(token.strip()),
                ApiToken.revoked_at.is_(None),
            )
        ).first()
    if user is None or not user.active:
        raise NotAuthenticated("the token is unknown, revoked, or its user is deactivated")
    runtime.rate_limiter.hit(token_digest(token.strip()))
    return Actor.of(user)


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require(*roles: str):
    """A dependency that admits only the given roles."""

    def check(actor: CurrentActor) -> Actor:
        if actor.role not in roles:
            raise NotPermitted(f"the role {actor.role!r} may not do this (needs: {', '.join(roles)})")
        return actor

    return Depends(check)


AdminActor = Annotated[Actor, require("admin")]
IntakeActor = Annotated[Actor, require("agent", "supervisor")]

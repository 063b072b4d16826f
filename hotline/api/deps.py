"""Dependencies: the runtime, the caller, and role checks.

They are `async def` where they do no I/O, so FastAPI runs them on the event loop
instead of sending each through the thread pool.
"""

import time
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from hotline import audit_log
from hotline.errors import NotAuthenticated, NotPermitted
from hotline.models import ApiToken, User
from hotline.runtime import Runtime
from hotline.security import token_digest
from hotline.workflow.engine import Actor

# A process remembers who a token belongs to for this long. Revoking a token or
# deactivating a user therefore takes effect within these seconds in every process.
TOKEN_CACHE_SECONDS = 5.0
_ACTOR_KEY = "hotline.actor"


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _lookup(runtime: Runtime, digest: str) -> Actor | None:
    with runtime.db.read_session() as session:
        user = session.exec(
            select(User)
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
        ).first()
        return Actor.of(user) if user is not None and user.active else None


async def actor_for_token(runtime: Runtime, token: str) -> Actor | None:
    """The active user behind an API token (remembered a few seconds), counted against
    the token's rate limit; None for an unknown or revoked token."""
    digest = token_digest(token)
    cache = runtime.token_cache
    hit = cache.get(digest)
    now = time.monotonic()
    if hit is not None and hit[1] > now:
        actor = hit[0]
    else:
        actor = await run_in_threadpool(_lookup, runtime, digest)
        if actor is not None:
            if len(cache) > 10000:
                cache.clear()
            cache[digest] = (actor, now + TOKEN_CACHE_SECONDS)
    if actor is not None:
        runtime.rate_limiter.hit(digest)
    return actor


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, if there is one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def current_actor(request: Request) -> Actor:
    """The user behind the request's bearer token.

    The API takes bearer tokens only, never the pages' session cookie, so that no
    other site can make a signed-in browser call it (no CSRF surface here).

    A plain dependency of the request alone (the runtime is the app's): FastAPI solves one
    dependency, not a chain of three, for every API call. The actor is kept in the request's
    scope, so a route that asks for it twice counts one request against the token's limit.
    """
    actor = request.scope.get(_ACTOR_KEY)
    if actor is not None:
        return actor
    token = bearer_token(request)
    if token is None:
        raise NotAuthenticated("send 'Authorization: Bearer TOKEN' (get one with `hotline users token`)")
    actor = await actor_for_token(request.app.state.runtime, token)
    if actor is None:
        raise NotAuthenticated("the token is unknown, revoked, or its user is deactivated")
    audit_log.identify(actor)
    request.scope[_ACTOR_KEY] = actor
    return actor


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require(*roles: str):
    """A dependency that admits only the given roles."""

    async def check(request: Request) -> Actor:
        actor = await current_actor(request)
        if actor.role not in roles:
            raise NotPermitted(f"the role {actor.role!r} may not do this (needs: {', '.join(roles)})")
        return actor

    return Depends(check)


AdminActor = Annotated[Actor, require("admin")]
# Who logs tickets through the API: the centre, and outside platforms' system accounts.
IntakeActor = Annotated[Actor, require("agent", "supervisor", "integration")]


def public_client(request: Request, runtime: Runtime) -> None:
    """The public side's rate limit, per client address: one share for the knowledge base's
    public calls, the assistant and the citizens' pages."""
    runtime.rate_limiter.hit(f"public:{request.client.host if request.client else '-'}")

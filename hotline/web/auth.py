"""Signing in to the pages: server-side sessions, CSRF tokens (the sign-in form's too),
growing delays after failed passwords (hotline.web.throttle)."""

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session, select

from hotline.api.deps import RuntimeDep
from hotline.errors import HotlineError, NotPermitted
from hotline.models import INTEGRATION, Department, User, WebSession
from hotline.security import hash_password, needs_rehash, token_digest, verify_password
from hotline.workflow.engine import Actor

COOKIE = "hotline_session"
SESSION_HOURS = 12
# The sign-in form's CSRF token, before there is a session: a cookie and the same value in
# the form (double submit); a cross-site form cannot read the cookie to copy it.
LOGIN_CSRF_COOKIE = "hotline_login_csrf"


class LoginRequired(HotlineError):
    """No signed-in session: the pages send the browser to /login."""

    status_code = 401


class CsrfFailed(NotPermitted):
    pass


@dataclass(frozen=True)
class PageUser:
    """The signed-in user of a page, with what the layout needs."""

    actor: Actor
    display_name: str
    department_name: str | None
    csrf_token: str

    @property
    def role(self) -> str:
        return self.actor.role


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def check_password(runtime, username: str, password: str) -> tuple[User | None, str | None]:
    """The user if the password is right and the account may sign in, and the password's new
    hash when the old one's parameters are out of date. The slow hashing runs outside any
    write transaction (it would hold up every writer of an SQLite database), and an unknown
    name takes as long as a known one. An integration account (an outside platform's) never
    signs in: it uses API tokens only."""
    with runtime.db.read_session() as session:
        user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        verify_password(_dummy_hash(), password)
        return None, None
    if not verify_password(user.password_hash, password) or not user.active or user.role == INTEGRATION:
        return None, None
    return user, hash_password(password) if needs_rehash(user.password_hash) else None


def check_login_csrf(request: Request, sent: str | None) -> None:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        raise CsrfFailed("登录页面已过期（CSRF 校验失败），请刷新页面后重新登录")


def open_session(session: Session, user_id: int, now: datetime, *, new_hash: str | None = None) -> str:
    """A new web session for the user (and the password's new hash, if any); returns the
    cookie value."""
    token = secrets.token_urlsafe(32)
    if new_hash is not None:
        user = session.get(User, user_id)
        user.password_hash = new_hash
        session.add(user)
    session.add(
        WebSession(
            token_hash=token_digest(token),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS),
        )
    )
    return token


def close_session(session: Session, token: str | None) -> None:
    if token:
        for row in session.exec(select(WebSession).where(WebSession.token_hash == token_digest(token))).all():
            session.delete(row)


def _page_user(request: Request, runtime: RuntimeDep) -> PageUser | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    with runtime.db.read_session() as session:
        row = session.exec(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == token_digest(token))
        ).first()
        if row is None:
            return None
        web, user = row
        if web.expires_at <= runtime.now() or not user.active:
            return None
        dept = session.get(Department, user.department_id) if user.department_id else None
        return PageUser(Actor.of(user), user.display_name or user.username, dept.name if dept else None, web.csrf_token)


def optional_user(request: Request, runtime: RuntimeDep) -> PageUser | None:
    user = _page_user(request, runtime)
    request.state.page_user = user
    return user


def page_user(request: Request, runtime: RuntimeDep) -> PageUser:
    """The signed-in user; without one, the page sends the browser to /login."""
    user = optional_user(request, runtime)
    if user is None:
        raise LoginRequired("请先登录")
    return user


UserDep = Annotated[PageUser, Depends(page_user)]


async def check_csrf(request: Request, user: UserDep) -> PageUser:
    """Every form that changes something carries the session's CSRF token."""
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        sent = form.get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, user.csrf_token):
        raise CsrfFailed("表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试")
    return user


FormUser = Annotated[PageUser, Depends(check_csrf)]


def role_user(*roles: str):
    """A page for these roles only; others get the 403 page."""

    def check(user: UserDep) -> PageUser:
        if user.role not in roles:
            raise NotPermitted("您的角色无权访问此页面")
        return user

    return Depends(check)


def role_form_user(*roles: str):
    """A form post for these roles only, CSRF-checked."""

    def check(user: FormUser) -> PageUser:
        if user.role not in roles:
            raise NotPermitted("您的角色无权执行此操作")
        return user

    return Depends(check)

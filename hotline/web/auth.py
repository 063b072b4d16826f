"""Signing in to the pages: server-side sessions, CSRF tokens, lock-out after failed passwords."""

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
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


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


def authenticate(session: Session, username: str, password: str, now: datetime) -> User | None:
    """The user if the password is right and the account is neither locked nor deactivated.

    Failed passwords count up; the fifth locks the account for a quarter of an hour. An
    integration account (an outside platform's) never signs in: it uses API tokens only.
    """
    user = session.exec(select(User).where(User.username == username)).first()
    if user is None:
        verify_password(_dummy_hash(), password)  # as slow as a real check: no username probing
        return None
    if user.locked_until is not None and user.locked_until > now:
        return None
    if not verify_password(user.password_hash, password) or not user.active or user.role == INTEGRATION:
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILED_LOGINS:
            user.locked_until, user.failed_logins = now + LOCKOUT, 0
        session.add(user)
        return None
    user.failed_logins, user.locked_until = 0, None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.add(user)
    return user


def is_locked(session: Session, username: str, now: datetime) -> bool:
    user = session.exec(select(User).where(User.username == username)).first()
    return bool(user and user.locked_until and user.locked_until > now)


def open_session(session: Session, user: User, now: datetime) -> str:
    """A new web session for the user; returns the cookie value."""
    token = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            token_hash=token_digest(token),
            user_id=user.id,
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

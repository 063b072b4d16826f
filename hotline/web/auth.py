"""Signing in to the pages: server-side sessions, CSRF tokens (the sign-in form's too),
growing delays after failed passwords (hotline.web.throttle), the idle time-out, and the
password change a user must make before anything else when someone else set the password."""

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import func, or_, update
from sqlmodel import Session, select

from hotline import audit_log
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
# A session's last use is written at most this often (one short write a minute per browser,
# in a transaction of its own: never inside the request's, never per request).
TOUCH_EVERY = timedelta(minutes=1)
# The pages a user who must change their password may open (the rest send them there).
PASSWORD_PAGE = "/password"
WHILE_MUST_CHANGE = frozenset({PASSWORD_PAGE, "/logout"})
# What a session keeps of where it was opened from.
MAX_ADDRESS = 64
MAX_USER_AGENT = 200


class LoginRequired(HotlineError):
    """No signed-in session: the pages send the browser to /login."""

    status_code = 401


class PasswordChangeRequired(LoginRequired):
    """The user must change their password first: the pages send the browser to /login, which
    sends a signed-in user of this kind on to the password page."""


class CsrfFailed(NotPermitted):
    pass


@dataclass(frozen=True)
class PageUser:
    """The signed-in user of a page, with what the layout needs."""

    actor: Actor
    display_name: str
    department_name: str | None
    csrf_token: str
    session_id: int
    must_change: bool

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
        # Names are unique whatever their case, and sign-in ignores it.
        user = session.exec(select(User).where(func.lower(User.username) == username.lower())).first()
    if user is None:
        verify_password(_dummy_hash(), password)
        return None, None
    if not verify_password(user.password_hash, password) or not user.active or user.role == INTEGRATION:
        return None, None
    return user, hash_password(password) if needs_rehash(user.password_hash) else None


def check_login_csrf(request: Request, sent: str | None) -> None:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(sent, expected):
        stale = "登录页面已过期（CSRF 校验失败），请刷新页面后重新登录"
        raise CsrfFailed(stale, zh=stale)


def open_session(
    session: Session,
    user_id: int,
    now: datetime,
    *,
    new_hash: str | None = None,
    address: str | None = None,
    user_agent: str | None = None,
    idle: timedelta | None = None,
) -> str:
    """A new web session for the user (and the password's new hash, if any); returns the
    cookie value. The user's sessions that are over (past their lifetime, or unused for
    `idle`) are cleared on the way."""
    token = secrets.token_urlsafe(32)
    if new_hash is not None:
        user = session.get(User, user_id)
        user.password_hash = new_hash
        session.add(user)
    over = WebSession.expires_at <= now
    if idle is not None:
        over = or_(over, WebSession.last_seen_at <= now - idle)
    for old in session.exec(select(WebSession).where(WebSession.user_id == user_id, over)).all():
        session.delete(old)
    session.add(
        WebSession(
            token_hash=token_digest(token),
            user_id=user_id,
            csrf_token=secrets.token_urlsafe(24),
            created_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS),
            last_seen_at=now,
            address=(address or "")[:MAX_ADDRESS] or None,
            user_agent=(user_agent or "")[:MAX_USER_AGENT] or None,
        )
    )
    return token


def close_session(session: Session, token: str | None) -> None:
    if token:
        for row in session.exec(select(WebSession).where(WebSession.token_hash == token_digest(token))).all():
            session.delete(row)


def idle_limit(runtime) -> timedelta | None:
    """How long a session may sit unused (HOTLINE_SESSION_IDLE_MINUTES; None: no limit)."""
    minutes = runtime.settings.session_idle_minutes
    return timedelta(minutes=minutes) if minutes > 0 else None


def _idle_over(web: WebSession, now: datetime, limit: timedelta | None) -> bool:
    return limit is not None and web.last_seen_at + limit <= now


def _session_of(runtime, token: str):
    with runtime.db.read_session() as session:
        row = session.exec(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == token_digest(token))
        ).first()
        if row is None:
            return None
        web, user = row
        dept = session.get(Department, user.department_id) if user.department_id else None
        return web, user, dept


def _touch(runtime, session_id: int, now: datetime) -> None:
    """Mark the session used now, if it was last marked a minute ago or more: one short
    transaction of its own (on SQLite it queues for the write lock like any writer, so not
    per request), and a no-op when another request marked it meanwhile."""
    with runtime.db.session() as session:
        session.execute(
            update(WebSession)
            .where(WebSession.id == session_id, WebSession.last_seen_at <= now - TOUCH_EVERY)
            .values(last_seen_at=now)
        )


def _page_user(request: Request, runtime: RuntimeDep) -> PageUser | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    found = _session_of(runtime, token)
    if found is None:
        return None
    web, user, dept = found
    now = runtime.now()
    if web.expires_at <= now or not user.active or _idle_over(web, now, idle_limit(runtime)):
        return None
    if now - web.last_seen_at >= TOUCH_EVERY:
        _touch(runtime, web.id, now)
    actor = Actor.of(user)
    audit_log.identify(actor)
    return PageUser(
        actor,
        user.display_name or user.username,
        dept.name if dept else None,
        web.csrf_token,
        session_id=web.id,
        must_change=user.must_change_password,
    )


def ended_session_notice(runtime, token: str | None) -> str | None:
    """What the sign-in page says to a browser whose session cookie no longer signs it in:
    that it sat unused too long, or that the session ended (signed out by an administrator,
    a new password, an account stopped). None without a cookie, or with a live session."""
    if not token:
        return None
    found = _session_of(runtime, token)
    now = runtime.now()
    if found is not None:
        web, user, _ = found
        limit = idle_limit(runtime)
        if web.expires_at > now and user.active and _idle_over(web, now, limit):
            return f"登录已超时（{int(limit.total_seconds() // 60)} 分钟未操作），请重新登录"
        if web.expires_at > now and user.active:
            return None
    return "登录已失效，请重新登录"


def optional_user(request: Request, runtime: RuntimeDep) -> PageUser | None:
    user = _page_user(request, runtime)
    request.state.page_user = user
    return user


def page_user(request: Request, runtime: RuntimeDep) -> PageUser:
    """The signed-in user; without one, the page sends the browser to /login (and one who
    must change their password on to the password page, from every page but that one)."""
    user = optional_user(request, runtime)
    if user is None:
        raise LoginRequired("请先登录")
    if user.must_change and request.url.path not in WHILE_MUST_CHANGE:
        raise PasswordChangeRequired("请先修改密码")
    return user


UserDep = Annotated[PageUser, Depends(page_user)]


async def check_csrf(request: Request, user: UserDep) -> PageUser:
    """Every form that changes something carries the session's CSRF token."""
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        sent = form.get("csrf_token")
    if not isinstance(sent, str) or not hmac.compare_digest(sent, user.csrf_token):
        stale = "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试"
        raise CsrfFailed(stale, zh=stale)
    return user


FormUser = Annotated[PageUser, Depends(check_csrf)]


def role_user(*roles: str):
    """A page for these roles only; others get the 403 page."""

    def check(user: UserDep) -> PageUser:
        if user.role not in roles:
            raise NotPermitted("您的角色无权访问此页面", zh="您的角色无权访问此页面")
        return user

    return Depends(check)


def role_form_user(*roles: str):
    """A form post for these roles only, CSRF-checked."""

    def check(user: FormUser) -> PageUser:
        if user.role not in roles:
            raise NotPermitted("您的角色无权执行此操作", zh="您的角色无权执行此操作")
        return user

    return Depends(check)

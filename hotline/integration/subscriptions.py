"""Subscriptions: the outside systems that receive events by webhook, and how each is doing.

A subscription names a URL, its topics and its scope: everything, one department's tickets
(masked as that department reads them) or one source's tickets (the city platform gets the
results of the tickets it sent down). Its secret is shown once; a rotation keeps the old
secret signing beside the new one for a grace period, so the receiver can switch over.
"""

import base64
import re
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import case, func
from sqlmodel import Session, col, delete, select

from hotline.deadlines.calendar import local_iso
from hotline.errors import Invalid, NotFound
from hotline.integration.events import TOPICS
from hotline.models import Delivery, Department, OutboxMessage, Subscription

SOURCE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
# A rotated secret keeps signing this long, unless the administrator says otherwise.
ROTATION_GRACE = timedelta(hours=24)


def new_secret() -> str:
    """A signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_url(url: str, allowed_hosts: str) -> str:
    """An http(s) URL with a host, on the allow-list when the district keeps one."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("url must be an http:// or https:// address with a host", field="url", zh="地址须为 http(s) 网址")
    if parts.username or parts.password:
        raise Invalid("url must not carry a user or password", field="url", zh="地址中不能包含用户名或密码")
    allowed = {h.strip().lower() for h in allowed_hosts.split(",") if h.strip()}
    if allowed and parts.hostname.lower() not in allowed:
        raise Invalid(
            f"the host {parts.hostname!r} is not in HOTLINE_WEBHOOK_ALLOWED_HOSTS",
            field="url",
            zh=f"目标主机 {parts.hostname} 不在允许的对接地址范围内",
        )
    return url.strip()


def check_topics(topics: list[str]) -> list[str]:
    """Known topics, at least one, each once."""
    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        raise Invalid(
            f"unknown topic {unknown[0]!r}; topics are {', '.join(TOPICS)}", field="topics", zh=f"未知主题 {unknown[0]}"
        )
    if not topics:
        raise Invalid("topics must name at least one topic", field="topics", zh="请至少选择一个主题")
    return list(dict.fromkeys(topics))


def create(
    session: Session,
    *,
    name: str,
    url: str,
    topics: list[str],
    department: str | None,
    source: str | None,
    allowed_hosts: str,
    actor_id: int | None,
    now: datetime,
) -> Subscription:
    """A new subscription; its secret is in the returned row (show it once)."""
    department_id = None
    if department and source:
        raise Invalid(
            "a subscription is scoped by department or by source, not both",
            field="source",
            zh="对接范围只能选一种：按单位，或按来源",
        )
    if department:
        dept = session.exec(select(Department).where(Department.code == department)).first()
        if dept is None:
            raise Invalid(f"no department with the code {department!r}", field="department", zh="没有该单位")
        department_id = dept.id
    if source is not None and not SOURCE_PATTERN.match(source):
        raise Invalid(
            "source is lower-case letters, digits, '-' or '_' (at most 32)",
            field="source",
            zh="来源标识须为 1–32 位小写字母、数字、- 或 _",
        )
    if not name.strip():
        raise Invalid("name must not be empty", field="name", zh="请填写名称")
    sub = Subscription(
        name=name.strip(),
        url=check_url(url, allowed_hosts),
        topics=check_topics(topics),
        department_id=department_id,
        source=source,
        secret=new_secret(),
        created_by_id=actor_id,
        created_at=now,
        updated_at=now,
    )
    session.add(sub)
    session.flush()
    return sub


def get(session: Session, subscription_id: int, *, lock: bool = False) -> Subscription:
    query = select(Subscription).where(Subscription.id == subscription_id)
    sub = session.exec(query.with_for_update() if lock else query).first()
    if sub is None:
        raise NotFound(f"subscription {subscription_id} not found", zh="该对接不存在")
    return sub


def set_enabled(
    session: Session, subscription_id: int, enabled: bool, *, reason: str | None, now: datetime
) -> Subscription:
    """Turn a subscription on (its waiting events go out again) or off (they wait)."""
    sub = get(session, subscription_id, lock=True)
    sub.enabled = enabled
    sub.disabled_reason = None if enabled else (reason or "turned off by an administrator")
    sub.updated_at = now
    return sub


def rotate(session: Session, subscription_id: int, *, now: datetime, grace: timedelta = ROTATION_GRACE) -> Subscription:
    """A new secret; the old one keeps signing for `grace` (zero: it stops at once)."""
    sub = get(session, subscription_id, lock=True)
    sub.previous_secret, sub.previous_secret_until = (sub.secret, now + grace) if grace else (None, None)
    sub.secret = new_secret()
    sub.updated_at = now
    return sub


def remove(session: Session, subscription_id: int) -> None:
    """Delete a subscription and what it has still to deliver."""
    sub = get(session, subscription_id, lock=True)
    session.exec(delete(Delivery).where(Delivery.subscription_id == sub.id))
    session.delete(sub)


def signing_secrets(sub: Subscription, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during its grace."""
    keep = sub.previous_secret and sub.previous_secret_until and sub.previous_secret_until > now
    return [sub.secret, sub.previous_secret] if keep else [sub.secret]


def health(session: Session, now: datetime, window: timedelta = timedelta(hours=24)) -> dict[int, dict[str, Any]]:
    """Per subscription: events waiting and dead, the age of its oldest waiting event (its lag,
    in seconds), and in the window the deliveries made and the share of attempts that succeeded."""
    out: dict[int, dict[str, Any]] = {}

    def row(sub_id: int) -> dict[str, Any]:
        return out.setdefault(sub_id, {"pending": 0, "dead": 0, "delivered": 0, "attempts": 0, "lag_seconds": 0.0})

    for sub_id, status, n, oldest in session.exec(
        select(Delivery.subscription_id, Delivery.status, func.count(), func.min(OutboxMessage.recorded_at))
        .join(OutboxMessage, OutboxMessage.id == Delivery.event_id)
        .where(col(Delivery.status).in_(("pending", "dead")))
        .group_by(Delivery.subscription_id, Delivery.status)
    ).all():
        row(sub_id)[status] = n
        if status == "pending" and oldest is not None:
            row(sub_id)["lag_seconds"] = max(0.0, (now - oldest).total_seconds())
    delivered = func.sum(case((Delivery.status == "delivered", 1), else_=0))
    for sub_id, n, attempts in session.exec(
        select(Delivery.subscription_id, delivered, func.sum(Delivery.attempts))
        .where(col(Delivery.last_attempt_at) >= now - window)
        .group_by(Delivery.subscription_id)
    ).all():
        row(sub_id).update(delivered=int(n or 0), attempts=int(attempts or 0))
    for stats in out.values():
        stats["success_rate"] = round(stats["delivered"] / stats["attempts"], 4) if stats["attempts"] else None
    return out


def subscription_out(sub: Subscription, department_code: str | None, stats: dict[str, Any] | None) -> dict[str, Any]:
    """A subscription as the API lists it (never its secret)."""
    stats = stats or {}
    return {
        "id": sub.id,
        "name": sub.name,
        "url": sub.url,
        "topics": sub.topics,
        "department": department_code,
        "source": sub.source,
        "enabled": sub.enabled,
        "disabled_reason": sub.disabled_reason,
        "created_at": local_iso(sub.created_at),
        "secret_rotating_until": local_iso(sub.previous_secret_until) if sub.previous_secret else None,
        "pending": stats.get("pending", 0),
        "dead": stats.get("dead", 0),
        "delivered_24h": stats.get("delivered", 0),
        "lag_seconds": stats.get("lag_seconds", 0.0),
        "success_rate_24h": stats.get("success_rate"),
    }

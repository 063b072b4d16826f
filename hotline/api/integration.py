"""Interconnection (互联互通): webhook subscriptions (administrators) and the pull feed."""

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import AwareDatetime, Field
from sqlmodel import col, select

from hotline.api.deps import AdminActor, CurrentActor, RuntimeDep
from hotline.api.schemas import Body
from hotline.errors import Invalid
from hotline.inputs import MAX_ID
from hotline.integration import delivery, subscriptions
from hotline.integration.events import TOPICS, as_seen_by, feed_scope
from hotline.models import Department, OutboxMessage, Subscription

router = APIRouter(tags=["integration"])

SubscriptionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
FEED_MAX = 500


class SubscriptionIn(Body):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    url: Annotated[str, Field(min_length=1, max_length=500)]
    topics: Annotated[list[str], Field(min_length=1, max_length=len(TOPICS))]
    department: Annotated[str, Field(max_length=32)] | None = None
    source: Annotated[str, Field(max_length=32)] | None = None


class SubscriptionPatch(Body):
    enabled: bool
    reason: Annotated[str, Field(max_length=200)] | None = None


class RotateIn(Body):
    # How long the old secret keeps signing beside the new one (0: it stops at once).
    grace_hours: Annotated[float, Field(ge=0, le=24 * 30)] = 24


class ReplayIn(Body):
    start: Annotated[AwareDatetime | None, Field(alias="from")] = None
    end: Annotated[AwareDatetime | None, Field(alias="to")] = None
    dead: bool = False


def _out(session, sub: Subscription, stats: dict[int, dict[str, Any]]) -> dict[str, Any]:
    code = session.get(Department, sub.department_id).code if sub.department_id else None
    return subscriptions.subscription_out(sub, code, stats.get(sub.id))


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED)
def create_subscription(body: SubscriptionIn, actor: AdminActor, runtime: RuntimeDep) -> dict[str, Any]:
    """A webhook subscription; its secret is in this answer and never again."""
    now = datetime.now(UTC)
    with runtime.db.session() as session:
        sub = subscriptions.create(
            session,
            name=body.name,
            url=body.url,
            topics=body.topics,
            department=body.department,
            source=body.source,
            allowed_hosts=runtime.settings.webhook_allowed_hosts,
            actor_id=actor.id,
            now=now,
        )
        return {**_out(session, sub, {}), "secret": sub.secret}


@router.get("/subscriptions")
def list_subscriptions(_: AdminActor, runtime: RuntimeDep) -> list[dict[str, Any]]:
    with runtime.db.read_session() as session:
        stats = subscriptions.health(session, datetime.now(UTC))
        return [_out(session, s, stats) for s in session.exec(select(Subscription).order_by(Subscription.id)).all()]


@router.get("/subscriptions/{subscription_id}")
def get_subscription(subscription_id: SubscriptionId, _: AdminActor, runtime: RuntimeDep) -> dict[str, Any]:
    with runtime.db.read_session() as session:
        sub = subscriptions.get(session, subscription_id)
        return _out(session, sub, subscriptions.health(session, datetime.now(UTC)))


@router.patch("/subscriptions/{subscription_id}")
def update_subscription(
    subscription_id: SubscriptionId, body: SubscriptionPatch, _: AdminActor, runtime: RuntimeDep
) -> dict[str, Any]:
    """Turn a subscription off (its events wait) or on again."""
    with runtime.db.session() as session:
        now = datetime.now(UTC)
        sub = subscriptions.set_enabled(session, subscription_id, body.enabled, reason=body.reason, now=now)
        return _out(session, sub, {})


@router.delete("/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_subscription(subscription_id: SubscriptionId, _: AdminActor, runtime: RuntimeDep) -> Response:
    with runtime.db.session() as session:
        subscriptions.remove(session, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/subscriptions/{subscription_id}/rotate")
def rotate_secret(subscription_id: SubscriptionId, body: RotateIn, _: AdminActor, runtime: RuntimeDep) -> dict:
    """A new secret (shown once); the old one signs too until the grace period ends."""
    with runtime.db.session() as session:
        sub = subscriptions.rotate(
            session, subscription_id, now=datetime.now(UTC), grace=timedelta(hours=body.grace_hours)
        )
        return {**_out(session, sub, {}), "secret": sub.secret}


@router.get("/subscriptions/{subscription_id}/deliveries")
def list_deliveries(
    subscription_id: SubscriptionId,
    _: AdminActor,
    runtime: RuntimeDep,
    delivery_status: Annotated[str | None, Query(alias="status", pattern="^(pending|delivered|dead)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """The latest deliveries: attempts, last status and error, next try."""
    with runtime.db.read_session() as session:
        return delivery.deliveries_out(session, subscription_id, status=delivery_status, limit=limit)


@router.post("/subscriptions/{subscription_id}/replay")
def replay(subscription_id: SubscriptionId, body: ReplayIn, _: AdminActor, runtime: RuntimeDep) -> dict[str, int]:
    """Send events again with the same `webhook-id`: those between `from` and `to`, or the dead ones."""
    if not (body.dead or body.start or body.end):
        raise Invalid("say which events to send again: from and/or to, or dead: true", field="from")
    if body.start and body.end and body.end < body.start:
        raise Invalid("to is before from", field="to")
    with runtime.db.session() as session:
        n = delivery.replay(
            session, subscription_id, start=body.start, end=body.end, dead_only=body.dead, now=datetime.now(UTC)
        )
    return {"queued": n}


@router.get("/events")
def events_feed(
    actor: CurrentActor,
    runtime: RuntimeDep,
    after: Annotated[
        str | None, Query(max_length=20, pattern=r"^\d{1,18}$", description="the `next` of the last page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=FEED_MAX)] = 100,
    topic: Annotated[str | None, Query(max_length=100, description="one topic, or several separated by commas")] = None,
) -> dict[str, Any]:
    """The events as a feed, oldest first, for systems that pull: a department's users get
    their department's, an integration account its source's. `next` is the cursor to ask with."""
    topics = [t for t in (topic or "").split(",") if t]
    unknown = [t for t in topics if t not in TOPICS]
    if unknown:
        raise Invalid(f"unknown topic {unknown[0]!r}; topics are {', '.join(TOPICS)}", field="topic")
    # Ids are the databases' INTEGER: a cursor beyond the largest has nothing after it.
    cursor = min(int(after or 0), MAX_ID)
    with runtime.db.read_session() as session:
        where = feed_scope(role=actor.role, department_id=actor.department_id, source=actor.source)
        query = select(OutboxMessage).where(OutboxMessage.id > cursor, *where)
        if topics:
            query = query.where(col(OutboxMessage.topic).in_(topics))
        if not runtime.db.is_sqlite:
            settle = timedelta(seconds=runtime.settings.feed_settle_seconds)
            query = query.where(OutboxMessage.recorded_at <= datetime.now(UTC) - settle)
        rows = session.exec(query.order_by(OutboxMessage.id).limit(limit)).all()
    return {
        "events": [{"id": e.uid, **as_seen_by(e, role=actor.role)} for e in rows],
        "next": str(rows[-1].id if rows else cursor),
    }

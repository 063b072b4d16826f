"""Webhook delivery: Standard Webhooks v1, at least once, in order per ticket.

A delivery process claims due deliveries with a lease (on PostgreSQL with `SKIP LOCKED`, so
two processes never take the same row), sends them outside any transaction, and records
each outcome only if it still holds the lease. A process killed mid-delivery leaves its
rows leased; when the lease runs out another process sends them again, with the same
`webhook-id`. A ticket's next event to a subscription waits until the one before it is
delivered (or dead); other tickets and other receivers go on meanwhile.
"""

import base64
import hashlib
import hmac
import json
import logging
import math
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from sqlalchemy import delete, exists, insert, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from hotline.deadlines.calendar import local_iso
from hotline.integration.events import as_seen_by, concerns, receiver_role, scope_clause
from hotline.integration.subscriptions import get as get_subscription
from hotline.integration.subscriptions import signing_secrets
from hotline.models import Delivery, OutboxMessage, Subscription

log = logging.getLogger(__name__)

# A `Retry-After` longer than this is taken as this.
MAX_RETRY_AFTER = timedelta(days=1)
USER_AGENT = "hotline-webhooks/1"


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature: `v1,` and the base64 HMAC-SHA256 of
    `{id}.{timestamp}.{body}` under the secret's base64 part."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def retry_delays(spec: str) -> list[float]:
    """HOTLINE_WEBHOOK_RETRY_SECONDS: the waits before each retry, in seconds."""
    try:
        delays = [float(part) for part in spec.split(",") if part.strip()]
    except ValueError as exc:
        raise ValueError(f"HOTLINE_WEBHOOK_RETRY_SECONDS must be comma-separated seconds, not {spec!r}") from exc
    if any(d < 0 for d in delays):
        raise ValueError("HOTLINE_WEBHOOK_RETRY_SECONDS must not be negative")
    return delays


@dataclass
class Job:
    """One claimed delivery, ready to send."""

    delivery_id: int
    subscription_id: int
    url: str
    headers: dict[str, str]
    body: bytes
    attempts: int


@dataclass
class Outcome:
    """What the receiver made of one delivery."""

    job: Job
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class DeliveryReport:
    """What one round of delivery did."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    disabled: list[int] = field(default_factory=list)
    lost_leases: int = 0

    def add(self, other: "DeliveryReport") -> None:
        self.delivered += other.delivered
        self.failed += other.failed
        self.dead += other.dead
        self.disabled += other.disabled
        self.lost_leases += other.lost_leases

    def line(self) -> str:
        text = f"webhooks: {self.delivered} delivered, {self.failed} to retry, {self.dead} dead"
        if self.disabled:
            text += f"; subscriptions {', '.join(map(str, self.disabled))} disabled (410 Gone)"
        return text


class Deliverer:
    """Sends what is due, for one process: `run_once()` claims, sends and records."""

    def __init__(self, runtime, *, batch: int | None = None, owner: str | None = None) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.delays = retry_delays(settings.webhook_retry_seconds)
        self.timeout = settings.webhook_timeout_seconds
        self.concurrency = max(1, settings.webhook_concurrency)
        self.batch = batch or self.concurrency * 4
        # Long enough for the whole batch to time out, a pool's worth at a time, and once more.
        self.lease = timedelta(seconds=self.timeout * (math.ceil(self.batch / self.concurrency) + 1))
        self.owner = owner or "lease_" + secrets.token_hex(8)
        self.client = httpx.Client(timeout=self.timeout, follow_redirects=False, trust_env=False)
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="webhook")

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()

    def run_once(self, *, now: datetime | None = None) -> DeliveryReport:
        """One round: hand new events to their subscriptions, claim up to a batch of due
        deliveries, send them, record the outcomes."""
        jobs = self.claim(now or datetime.now(UTC))
        if not jobs:
            return DeliveryReport()
        outcomes = list(self.pool.map(self.send, jobs))
        return self.settle(outcomes, datetime.now(UTC))

    def drain(self, *, budget_seconds: float = 30.0) -> DeliveryReport:
        """Rounds until nothing is due or the time budget is spent."""
        report, started = DeliveryReport(), time.monotonic()
        while True:
            done = self.run_once()
            report.add(done)
            if done.delivered + done.failed + done.dead + done.lost_leases < self.batch:
                return report
            if time.monotonic() - started > budget_seconds:
                return report

    def claim(self, now: datetime) -> list[Job]:
        """Hand out the new events, then lease the due deliveries whose earlier events (same
        ticket, same subscription) are out."""
        earlier = aliased(Delivery)
        waiting_behind = exists().where(
            earlier.subscription_id == Delivery.subscription_id,
            earlier.ticket_id == Delivery.ticket_id,
            earlier.sequence < Delivery.sequence,
            earlier.status == "pending",
        )
        with self.runtime.db.session() as session:
            while fan_out(session, locking=not self.runtime.db.is_sqlite) == FAN_OUT_BATCH:
                pass
            enabled = list(session.exec(select(Subscription.id).where(Subscription.enabled)).all())
            if not enabled:
                return []
            # In the order of the due index, so that the database stops at the batch's end.
            query = (
                select(Delivery.id)
                .where(
                    Delivery.status == "pending",
                    col(Delivery.next_attempt_at) <= now,
                    col(Delivery.subscription_id).in_(enabled),
                    or_(col(Delivery.lease_until).is_(None), col(Delivery.lease_until) < now),
                    ~waiting_behind,
                )
                .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
                .limit(self.batch)
            )
            if not self.runtime.db.is_sqlite:
                query = query.with_for_update(of=Delivery, skip_locked=True)
            ids = list(session.exec(query).all())
            if not ids:
                return []
            session.exec(
                update(Delivery)
                .where(col(Delivery.id).in_(ids))
                .values(lease_owner=self.owner, lease_until=now + self.lease)
            )
            rows = session.exec(
                select(Delivery, OutboxMessage, Subscription)
                .join(OutboxMessage, OutboxMessage.id == Delivery.event_id)
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .where(col(Delivery.id).in_(ids))
            ).all()
            return [self._job(delivery, event, sub, now) for delivery, event, sub in rows]

    def _job(self, delivery: Delivery, event: OutboxMessage, sub: Subscription, now: datetime) -> Job:
        body = json.dumps(
            as_seen_by(event, role=receiver_role(sub)), ensure_ascii=False, separators=(",", ":")
        ).encode()
        timestamp = int(time.time())
        signatures = " ".join(sign(s, event.uid, timestamp, body) for s in signing_secrets(sub, now))
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.uid,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures,
        }
        return Job(delivery.id, sub.id, sub.url, headers, body, delivery.attempts)

    def send(self, job: Job) -> Outcome:
        """POST one event; any 2xx is delivered."""
        try:
            response = self.client.post(job.url, content=job.body, headers=job.headers)
        except httpx.TimeoutException:
            return Outcome(job, error=f"no answer within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Outcome(job, error=f"{type(exc).__name__}: {exc}"[:300])
        outcome = Outcome(job, status=response.status_code, retry_after=_retry_after(response))
        if not outcome.ok:
            reason = response.reason_phrase or ""
            if 300 <= response.status_code < 400:
                reason += " (redirects are not followed)"
            outcome.error = f"HTTP {response.status_code} {reason}".strip()[:300]
        return outcome

    def settle(self, outcomes: list[Outcome], now: datetime) -> DeliveryReport:
        """Record the outcomes this process still holds the lease of, in one statement."""
        report = DeliveryReport()
        with self.runtime.db.session() as session:
            ids = [o.job.delivery_id for o in outcomes]
            held = set(
                session.exec(
                    select(Delivery.id)
                    .where(col(Delivery.id).in_(ids), Delivery.lease_owner == self.owner)
                    .with_for_update()
                ).all()
            )
            # The others' leases ran out and another process took them over.
            report.lost_leases = len(ids) - len(held)
            rows = [self._outcome_row(session, o, now, report) for o in outcomes if o.job.delivery_id in held]
            if rows:
                session.execute(update(Delivery), rows)
        return report

    def _outcome_row(self, session: Session, outcome: Outcome, now: datetime, report: DeliveryReport) -> dict:
        """A delivery's new values after one attempt: delivered, to retry (when), or dead."""
        job = outcome.job
        row: dict[str, Any] = {
            "id": job.delivery_id,
            "status": "pending",
            "attempts": job.attempts + 1,
            "last_status": outcome.status,
            "last_error": outcome.error,
            "last_attempt_at": now,
            "delivered_at": None,
            "next_attempt_at": None,
            "lease_owner": None,
            "lease_until": None,
        }
        if outcome.ok:
            row.update(status="delivered", delivered_at=now)
            report.delivered += 1
        elif outcome.status == 410:
            # Gone: the receiver asks for no more. The event waits, should it be turned on again.
            sub = get_subscription(session, job.subscription_id, lock=True)
            if sub.enabled:
                sub.enabled, sub.disabled_reason, sub.updated_at = False, "the receiver answered 410 Gone", now
                report.disabled.append(sub.id)
            row.update(next_attempt_at=now)
        elif job.attempts + 1 > len(self.delays):
            row.update(status="dead")
            report.dead += 1
            log.warning(
                "webhook dead after %d attempts: delivery %d: %s", job.attempts + 1, job.delivery_id, outcome.error
            )
        else:
            wait = self.delays[job.attempts]
            if outcome.retry_after is not None:
                wait = min(outcome.retry_after, MAX_RETRY_AFTER.total_seconds())
            row.update(next_attempt_at=now + timedelta(seconds=wait))
            report.failed += 1
            log.info("webhook failed (attempt %d): delivery %d: %s", job.attempts + 1, job.delivery_id, outcome.error)
        return row


FAN_OUT_BATCH = 2000


def fan_out(session: Session, *, locking: bool = False) -> int:
    """Hand the events not yet handed out to the subscriptions they concern: a delivery row
    each, due now. Returns how many events it took (at most FAN_OUT_BATCH).

    Done here rather than in the change's transaction, so that intake costs the same with
    or without subscribers. Correct on PostgreSQL too, where transactions commit out of id
    order: it takes every event not handed out yet, not those after a cursor; and a ticket's
    events are numbered under its row lock, so a later one never shows before an earlier one.
    With `locking` (PostgreSQL, several delivery processes) it skips events another process
    is handing out.
    """
    query = select(OutboxMessage).where(OutboxMessage.fanned_out == False).order_by(OutboxMessage.id)  # noqa: E712
    query = query.limit(FAN_OUT_BATCH)
    if locking:
        query = query.with_for_update(skip_locked=True)
    events = session.exec(query).all()
    if not events:
        return 0
    subs = session.exec(select(Subscription)).all()
    rows = [
        {
            "subscription_id": sub.id,
            "event_id": event.id,
            "ticket_id": event.ticket_id,
            "sequence": event.sequence,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": event.recorded_at,
            "created_at": event.recorded_at,
        }
        for event in events
        for sub in subs
        # A subscription gets what happens from its creation on (earlier events: replay).
        if sub.created_at <= event.recorded_at and concerns(sub, event)
    ]
    if rows:
        session.execute(insert(Delivery), rows)
    session.exec(update(OutboxMessage).where(col(OutboxMessage.id).in_([e.id for e in events])).values(fanned_out=True))
    return len(events)


def _retry_after(response: httpx.Response) -> float | None:
    """The receiver's `Retry-After`, in seconds (given as seconds or as an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def replay(
    session: Session,
    subscription_id: int,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    dead_only: bool = False,
    now: datetime,
) -> int:
    """Send a subscription's events again (same `webhook-id`): those that went dead, or every
    event of its topics and scope that happened between `start` and `end`. Returns how many."""
    sub = get_subscription(session, subscription_id, lock=True)
    again = {"status": "pending", "attempts": 0, "next_attempt_at": now, "lease_owner": None, "lease_until": None}
    if dead_only:
        result = session.exec(
            update(Delivery).where(Delivery.subscription_id == sub.id, Delivery.status == "dead").values(**again)
        )
        return result.rowcount
    where = [
        col(OutboxMessage.topic).in_(sub.topics),
        *scope_clause(department_id=sub.department_id, source=sub.source),
    ]
    if start is not None:
        where.append(OutboxMessage.created_at >= start)
    if end is not None:
        where.append(OutboxMessage.created_at <= end)
    count, after = 0, 0
    while True:
        events = session.exec(
            select(OutboxMessage.id, OutboxMessage.ticket_id, OutboxMessage.sequence)
            .where(*where, OutboxMessage.id > after)
            .order_by(OutboxMessage.id)
            .limit(1000)
        ).all()
        if not events:
            return count
        after = events[-1][0]
        ids = [e[0] for e in events]
        known = set(
            session.exec(
                select(Delivery.event_id).where(Delivery.subscription_id == sub.id, col(Delivery.event_id).in_(ids))
            ).all()
        )
        session.exec(
            update(Delivery)
            .where(Delivery.subscription_id == sub.id, col(Delivery.event_id).in_(known))
            .values(**again)
        )
        for event_id, ticket_id, sequence in events:
            if event_id not in known:
                session.add(
                    Delivery(
                        subscription_id=sub.id,
                        event_id=event_id,
                        ticket_id=ticket_id,
                        sequence=sequence,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        session.flush()
        count += len(events)


def deliveries_out(session: Session, subscription_id: int, *, status: str | None, limit: int) -> list[dict[str, Any]]:
    """A subscription's latest deliveries: attempts, last status and error, next try."""
    get_subscription(session, subscription_id)
    query = (
        select(Delivery, OutboxMessage.uid, OutboxMessage.topic, OutboxMessage.ticket_number)
        .join(OutboxMessage, OutboxMessage.id == Delivery.event_id)
        .where(Delivery.subscription_id == subscription_id)
    )
    if status:
        query = query.where(Delivery.status == status)
    rows = session.exec(query.order_by(col(Delivery.id).desc()).limit(limit)).all()
    return [
        {
            "id": d.id,
            "event_id": uid,
            "topic": topic,
            "ticket_number": number,
            "sequence": d.sequence,
            "status": d.status,
            "attempts": d.attempts,
            "last_status": d.last_status,
            "last_error": d.last_error,
            "last_attempt_at": local_iso(d.last_attempt_at),
            "next_attempt_at": local_iso(d.next_attempt_at) if d.status == "pending" else None,
            "delivered_at": local_iso(d.delivered_at),
        }
        for d, uid, topic, number in rows
    ]


def prune(session: Session, before: datetime) -> int:
    """Forget deliveries made before `before` (their events stay, and can be replayed)."""
    done = select(Delivery.id).where(Delivery.status == "delivered", col(Delivery.delivered_at) < before).limit(10_000)
    ids = list(session.exec(done).all())
    if ids:
        session.exec(delete(Delivery).where(col(Delivery.id).in_(ids)))
    return len(ids)

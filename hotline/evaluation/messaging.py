"""Text messages to citizens through a pluggable channel.

A message is written to the `messages` table in the same transaction as the change
that caused it (the rating invitation, say), so nothing is lost if the gateway is
down. The channel then delivers it:

- `stored` (the default): keeps the message in the table, where an administrator
  reads it (the pages' message log, or `GET /api/v1/messages`). Nothing leaves.
- `http`: an SMS gateway's HTTP endpoint (`HOTLINE_MESSAGE_GATEWAY_URL`): each message is
  POSTed as JSON `{"to": "1390000…", "body": "…"}`, with `HOTLINE_MESSAGE_GATEWAY_TOKEN` as a
  bearer token when set; an answer other than 2xx, or none within the time-out, fails it.
- a gateway of your own: set `HOTLINE_MESSAGE_CHANNEL=package.module:factory`, where
  `factory(settings)` returns an object with a `name` and a method
  `deliver(to: str, body: str) -> None` that raises on failure. The scheduler's sweep
  hands it every message still `pending`, and records `sent` or `failed` with the error.
"""

import importlib
import logging
from typing import Protocol

import httpx
from sqlmodel import Session, select

from hotline.config import Settings
from hotline.models import Message
from hotline.ticket_view import mask_phone
from hotline.workflow import texts

log = logging.getLogger("hotline.evaluation.messaging")


class MessageChannel(Protocol):
    name: str

    def deliver(self, to: str, body: str) -> None: ...


class StoredChannel:
    """Keeps messages in the database for an administrator to read; sends nothing."""

    name = "stored"

    def deliver(self, to: str, body: str) -> None:  # pragma: no cover - never called
        raise RuntimeError("the stored channel keeps messages; it does not deliver them")


class HttpChannel:
    """An SMS gateway reached over HTTP (most Chinese SMS platforms offer one, or a small
    adapter in front of theirs does)."""

    name = "http"

    def __init__(self, settings: Settings) -> None:
        if not settings.message_gateway_url.startswith(("http://", "https://")):
            raise ValueError("HOTLINE_MESSAGE_CHANNEL=http needs HOTLINE_MESSAGE_GATEWAY_URL (http:// or https://)")
        self.url = settings.message_gateway_url
        self.timeout = settings.message_gateway_timeout_seconds
        self.headers = (
            {"Authorization": f"Bearer {settings.message_gateway_token}"} if settings.message_gateway_token else {}
        )

    def deliver(self, to: str, body: str) -> None:
        response = httpx.post(self.url, json={"to": to, "body": body}, headers=self.headers, timeout=self.timeout)
        response.raise_for_status()


def channel_from_settings(settings: Settings) -> MessageChannel:
    """The channel the settings name: `stored`, `http`, or `module:factory` for a gateway."""
    spec = settings.message_channel
    if spec == "stored":
        return StoredChannel()
    if spec == "http":
        return HttpChannel(settings)
    module_name, _, factory_name = spec.partition(":")
    if not module_name or not factory_name:
        raise ValueError(f"HOTLINE_MESSAGE_CHANNEL={spec!r}: give 'stored', 'http' or 'package.module:factory'")
    factory = getattr(importlib.import_module(module_name), factory_name)
    return factory(settings)


def signature(session: Session, runtime) -> str:
    """The signature of every text message to a citizen: the district's name (as the database
    holds it) and the hotline's number (HOTLINE_PHONE), 【青山区12345】."""
    return texts.sms_signature(runtime.district(session).name, runtime.settings.phone)


def queue(session: Session, channel: MessageChannel, *, to: str, body: str, ticket_id: int | None, now) -> Message:
    """Write a message for the channel; it leaves when the transaction has committed."""
    message = Message(
        channel=channel.name,
        to=to,
        body=body,
        ticket_id=ticket_id,
        created_at=now,
        status="stored" if isinstance(channel, StoredChannel) else "pending",
    )
    session.add(message)
    session.flush()
    return message


def deliver_pending(
    runtime, channel: MessageChannel, *, limit: int = 200, ids: list[int] | None = None
) -> tuple[int, int]:
    """Hand pending messages (of `ids`, or any) to the channel; return (sent, failed).

    The rows are locked while they are handed over (skipping those another process holds;
    on SQLite the write transaction does it), so the sweep and a request that delivers its
    own message at once never send one twice."""
    if isinstance(channel, StoredChannel):
        return 0, 0
    sent = failed = 0
    query = select(Message).where(Message.status == "pending")
    if ids is not None:
        query = query.where(Message.id.in_(ids))
    with runtime.db.session() as session:
        pending = session.exec(query.order_by(Message.id).limit(limit).with_for_update(skip_locked=True))
        for message in pending.all():
            try:
                channel.deliver(message.to, message.body)
                message.status, message.error = "sent", None
                message.body = texts.without_code(message.body)
                sent += 1
            except Exception as exc:  # a gateway's failure is recorded, never fatal
                message.status, message.error = "failed", str(exc)[:500]
                failed += 1
                log.warning("message %s to %s failed: %s", message.id, mask_phone(message.to), exc)
    return sent, failed

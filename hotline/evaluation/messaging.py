"""Text messages to citizens through a pluggable channel.

A message is written to the `messages` table in the same transaction as the change
that caused it (the rating invitation, say), so nothing is lost if the gateway is
down. The channel then delivers it:

- `stored` (the default): keeps the message in the table, where an administrator
  reads it (the pages' message log, or `GET /api/v1/messages`). Nothing leaves.
- a gateway of your own: set `HOTLINE_MESSAGE_CHANNEL=package.module:factory`, where
  `factory(settings)` returns an object with a `name` and a method
  `deliver(to: str, body: str) -> None` that raises on failure. The scheduler's sweep
  hands it every message still `pending`, and records `sent` or `failed` with the error.
"""

import importlib
import logging
from typing import Protocol

from sqlmodel import Session, select

from hotline.config import Settings
from hotline.models import Message
from hotline.ticket_view import mask_phone

log = logging.getLogger("hotline.evaluation.messaging")


class MessageChannel(Protocol):
    name: str

    def deliver(self, to: str, body: str) -> None: ...


class StoredChannel:
    """Keeps messages in the database for an administrator to read; sends nothing."""

    name = "stored"

    def deliver(self, to: str, body: str) -> None:  # pragma: no cover - never called
        raise RuntimeError("the stored channel keeps messages; it does not deliver them")


def channel_from_settings(settings: Settings) -> MessageChannel:
    """The channel the settings name: `stored`, or `module:factory` for a gateway."""
    spec = settings.message_channel
    if spec == "stored":
        return StoredChannel()
    module_name, _, factory_name = spec.partition(":")
    if not module_name or not factory_name:
        raise ValueError(f"HOTLINE_MESSAGE_CHANNEL={spec!r}: give 'stored' or 'package.module:factory'")
    factory = getattr(importlib.import_module(module_name), factory_name)
    return factory(settings)


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


def deliver_pending(runtime, channel: MessageChannel, *, limit: int = 200) -> tuple[int, int]:
    """Hand pending messages to the channel; return (sent, failed)."""
    if isinstance(channel, StoredChannel):
        return 0, 0
    sent = failed = 0
    with runtime.db.session() as session:
        pending = session.exec(select(Message).where(Message.status == "pending").order_by(Message.id).limit(limit))
        for message in pending.all():
            try:
                channel.deliver(message.to, message.body)
                message.status, message.error = "sent", None
                sent += 1
            except Exception as exc:  # a gateway's failure is recorded, never fatal
                message.status, message.error = "failed", str(exc)[:500]
                failed += 1
                log.warning("message %s to %s failed: %s", message.id, mask_phone(message.to), exc)
    return sent, failed

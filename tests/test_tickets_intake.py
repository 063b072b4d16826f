"""A new ticket as intake writes it: the object `new_ticket` builds is the one the model's
constructor builds, and the row is written with its creation's event counted."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect
from sqlmodel import select

from hotline.models import OutboxMessage, Ticket, TicketEvent
from hotline.tickets import new_ticket
from tests.helpers import Api

VALUES = {
    "number": "20261207000001",
    "workflow": "standard",
    "type": "complaint",
    "title": "电梯坏了",
    "content": "小区电梯坏了一周没人修",
    "state": "registered",
    "caller_phone": "13812345678",
    "street": "西城街道",
    "created_at": datetime(2026, 12, 7, 1, 0, tzinfo=UTC),
    "updated_at": datetime(2026, 12, 7, 1, 0, tzinfo=UTC),
    "event_sequence": 1,
}


def _attributes(ticket: Ticket) -> dict:
    return {k: v for k, v in ticket.__dict__.items() if k != "_sa_instance_state"}


def test_new_ticket_is_what_the_constructor_makes():
    built, constructed = new_ticket(**VALUES), Ticket(**VALUES)
    assert _attributes(built) == _attributes(constructed)
    assert set(_attributes(built)) == set(Ticket.model_fields)
    assert built.__pydantic_fields_set__ == constructed.__pydantic_fields_set__ == set(VALUES)
    assert built.__pydantic_extra__ is None and built.__pydantic_private__ is None
    assert inspect(built).transient and not inspect(built).modified
    # Defaults where nothing was given; a default changed on one ticket is not another's.
    assert built.version == 1 and built.confidential is False and built.urgency == "normal"
    built.urgency = "urgent"
    assert new_ticket(**VALUES).urgency == "normal"


def test_new_ticket_refuses_a_field_the_model_does_not_have():
    with pytest.raises(TypeError, match="no field 'colour'"):
        new_ticket(**VALUES, colour="red")


def test_a_new_tickets_row_counts_its_creation_event(client, district, runtime):
    api = Api(client, district, "agent")
    tid = api.create()["id"]
    api.fire(tid, "dispatch", department="housing")
    with runtime.db.read_session() as s:
        ticket = s.get(Ticket, tid)
        events = s.exec(select(OutboxMessage).where(OutboxMessage.ticket_id == tid).order_by(OutboxMessage.id)).all()
        history = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == tid).order_by(TicketEvent.id)).all()
    assert [(e.topic, e.sequence) for e in events][:2] == [("ticket.created", 1), ("ticket.changed", 2)]
    assert ticket.event_sequence == len(events)
    assert [h.event for h in history] == ["create", "dispatch"]

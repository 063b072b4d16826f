"""Turning an event's fields into form inputs, and a posted form back into a payload."""

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from hotline.errors import Invalid
from hotline.models import Department, SupervisionOrder, Ticket
from hotline.web.render import RATING_LABELS
from hotline.workflow.fields import FIELDS, RETURN_REASON_CODES

TEXTAREAS = {"reason", "answer", "result", "basis", "message", "comment"}
INTEGERS = {"days", "rating", "master", "order"}
BOOLEANS = {"reached", "solved"}


@dataclass
class Input:
    name: str
    label: str
    kind: str  # textarea | select | multiselect | number | text
    required: bool
    options: list[tuple[str, str]] = field(default_factory=list)
    hint: str = ""


def event_inputs(session: Session, event: dict[str, Any], ticket: Ticket, department_id: int | None) -> list[Input]:
    """The inputs of one event's form, with choices filled in from the database."""
    inputs = []
    for name in event["required"] + event["optional"]:
        required = name in event["required"]
        label = FIELDS[name].label
        if name in ("department", "co_departments"):
            depts = session.exec(select(Department).where(Department.active).order_by(Department.code)).all()
            options = [(d.code, d.name) for d in depts]
            kind = "select" if name == "department" else "multiselect"
            hint = "不选则按派单规则自动确定" if name == "department" and not required else ""
            inputs.append(
                Input(name, label, kind, required, ([("", "（按规则自动派单）")] if hint else []) + options, hint)
            )
        elif name == "reason_code":
            inputs.append(Input(name, label, "select", required, list(RETURN_REASON_CODES.items())))
        elif name == "rating":
            inputs.append(
                Input(name, label, "select", required, [("", "—")] + [(str(k), v) for k, v in RATING_LABELS.items()])
            )
        elif name in BOOLEANS:
            inputs.append(Input(name, label, "select", required, [("true", "是"), ("false", "否")]))
        elif name == "order":
            orders = session.exec(
                select(SupervisionOrder).where(
                    SupervisionOrder.ticket_id == ticket.id,
                    SupervisionOrder.department_id == department_id,
                    SupervisionOrder.status == "open",
                )
            ).all()
            inputs.append(Input(name, label, "select", required, [(str(o.id), f"督办单 #{o.id}") for o in orders]))
        elif name == "master":
            inputs.append(Input(name, label, "text", required, hint="主工单的工单编号"))
        elif name in TEXTAREAS:
            inputs.append(Input(name, label, "textarea", required))
        elif name in INTEGERS:
            inputs.append(Input(name, label, "number", required))
        else:
            inputs.append(Input(name, label, "text", required))
    return inputs


def payload_from_form(session: Session, event: str, form: Any, fields: list[str]) -> dict[str, Any]:
    """The event's payload from a posted form: types restored, blanks left out."""
    payload: dict[str, Any] = {}
    for name in fields:
        if name == "co_departments":
            values = [v for v in form.getlist(name) if v]
            if values:
                payload[name] = values
            continue
        raw = form.get(name)
        if raw is None or str(raw).strip() == "":
            continue
        raw = str(raw).strip()
        if name in BOOLEANS:
            payload[name] = raw == "true"
        elif name == "master":
            ticket = session.exec(select(Ticket).where(Ticket.number == raw)).first()
            if ticket is None and raw.isdigit() and len(raw) < 10:
                ticket = session.get(Ticket, int(raw))
            if ticket is None:
                raise Invalid(f"没有编号为 {raw} 的工单", field="master")
            payload[name] = ticket.id
        elif name in INTEGERS:
            try:
                payload[name] = int(raw)
            except ValueError:
                raise Invalid(f"“{FIELDS[name].label}”应为整数", field=name) from None
        else:
            payload[name] = raw
    return payload

"""The pages' forms: an event's fields as inputs, a posted form back into a payload, and
what follows a post: the change and a redirect that stays on this site, or the page again
with the reason in Chinese."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session, select

from hotline.directory import active_departments, communities_of
from hotline.errors import HotlineError, Invalid
from hotline.models import Ticket
from hotline.runtime import Runtime
from hotline.supervision import ticket_orders
from hotline.web.render import RATING_LABELS, render
from hotline.workflow.definition import Limits
from hotline.workflow.fields import FIELDS, RETURN_REASON_CODES

TEXTAREAS = {"reason", "answer", "result", "basis", "message", "comment"}
INTEGERS = {"days", "rating", "master", "order"}
BOOLEANS = {"reached", "solved"}
# Asked on the pages even where a workflow leaves them optional: a return records the reason
# its department chose, never one preselected for it.
PAGE_REQUIRED = {"reason_code"}


@dataclass
class Input:
    name: str
    label: str
    kind: str  # textarea | select | checkboxes | number | text
    required: bool
    options: list[tuple[str, str]] = field(default_factory=list)
    hint: str = ""
    max: int | None = None
    # Departments in groups (街道, 区直部门, 企业), for a select with optgroups or a checkbox list.
    groups: list[tuple[str, list[tuple[str, str]]]] = field(default_factory=list)


DEPARTMENT_GROUPS = (("街道（乡镇）", ("街道", "镇", "乡")), ("公共服务企业", ("公司",)))


def department_groups(options: list[tuple[str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Departments grouped as an agent looks for them: streets, district bureaus, utilities."""
    groups: dict[str, list[tuple[str, str]]] = {label: [] for label, _ in DEPARTMENT_GROUPS}
    groups["区直部门"] = []
    for code, name in options:
        group = next((label for label, words in DEPARTMENT_GROUPS if any(w in name for w in words)), "区直部门")
        groups[group].append((code, name))
    order = ["区直部门", *(label for label, _ in DEPARTMENT_GROUPS)]
    return [(label, groups[label]) for label in order if groups[label]]


def event_inputs(
    session: Session, event: dict[str, Any], ticket: Ticket, department_id: int | None, limits: Limits
) -> list[Input]:
    """The inputs of one event's form, with choices filled in from the database and the
    workflow's limits said up front."""
    inputs = []
    for name in event["required"] + event["optional"]:
        required = name in event["required"] or name in PAGE_REQUIRED
        label = FIELDS[name].label
        if name in ("department", "co_departments"):
            options = [(d.code, d.name) for d in active_departments(session, communities=False)]
            # Co-handlers are ticked in a list, not Ctrl-clicked in a multiple select.
            kind = "select" if name == "department" else "checkboxes"
            hint = "不选则按派单规则自动确定（见上方预览）" if name == "department" and not required else ""
            inputs.append(
                Input(
                    name,
                    label,
                    kind,
                    required,
                    ([("", "（按规则自动派单）")] if hint else []) + options,
                    hint,
                    groups=department_groups(options),
                )
            )
        elif name == "community":
            options = [(d.code, d.name) for d in communities_of(session, ticket.main_department_id)]
            inputs.append(Input(name, label, "select", required, [("", "（请选择社区）"), *options]))
        elif name == "reason_code":
            options = [("", "（请选择退单原因）"), *RETURN_REASON_CODES.items()]
            inputs.append(Input(name, label, "select", required, options))
        elif name == "rating":
            inputs.append(
                Input(name, label, "select", required, [("", "—")] + [(str(k), v) for k, v in RATING_LABELS.items()])
            )
        elif name in BOOLEANS:
            inputs.append(Input(name, label, "select", required, [("true", "是"), ("false", "否")]))
        elif name == "order":
            orders = [
                o for o in ticket_orders(session, ticket.id) if o.department_id == department_id and o.status == "open"
            ]
            inputs.append(Input(name, label, "select", required, [(str(o.id), f"督办单 #{o.id}") for o in orders]))
        elif name == "master":
            inputs.append(Input(name, label, "text", required, hint="主工单的工单编号"))
        elif name == "days":
            cap, used = limits.extension_cap_working_days, ticket.extension_days
            left = max(cap - used, 0)
            hint = f"工作日；每件累计不超过 {cap} 个工作日"
            if used:
                hint += f"，已批准 {used} 天，本次最多 {left} 天"
            inputs.append(Input(name, label, "number", required, hint=hint, max=left))
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
                said = f"没有编号为 {raw} 的工单"
                raise Invalid(said, field="master", zh=said)
            payload[name] = ticket.id
        elif name in INTEGERS:
            try:
                payload[name] = int(raw)
            except ValueError:
                said = f"“{FIELDS[name].label}”应为整数"
                raise Invalid(said, field=name, zh=said) from None
        else:
            payload[name] = raw
    return payload


def require_page_fields(fields: list[str], payload: dict[str, Any]) -> None:
    """Refuse a page's form without a choice the pages ask for (PAGE_REQUIRED)."""
    for name in fields:
        if name in PAGE_REQUIRED and name not in payload:
            raise Invalid(f"missing: {name}", field=name, zh=f"请选择{FIELDS[name].label}")


def kept_values(form: Any) -> dict[str, list[str]]:
    """What a refused form held, to show it again as typed (not the hidden bookkeeping)."""
    return {k: [str(v) for v in form.getlist(k)] for k in form if k not in ("csrf_token", "version", "back")}


def form_version(form: Any) -> int | None:
    """The ticket version a form was rendered at (its hidden `version` field), if it sent one."""
    raw = str(form.get("version") or "")
    return int(raw) if raw.isdigit() else None


GENERIC = {
    403: "您的角色无权执行此操作",
    404: "您要查看的内容不存在，或您无权查看",
    409: "该操作在工单当前状态下不能执行",
    422: "填写的内容有误",
}
# A form posted from a page shown before someone else changed the ticket.
STALE = "该工单刚刚已被他人处理（状态已变化），页面已刷新，请核对后再操作"


def page_message(exc: HotlineError, conflict: str | None = None) -> str:
    """What a page tells its user about a refused action: that the ticket changed since the
    page was shown (which is shown afresh), the error's own Chinese text, the page's words
    for a conflict (`conflict`), for a 404 its words alone (the detail names ids, in English),
    or else the status's words with the detail."""
    if exc.status_code == 409 and "version" in exc.extra:
        return STALE
    zh = exc.extra.get("zh")
    if zh:
        return str(zh)
    if exc.status_code == 409 and conflict:
        return conflict
    if exc.status_code == 404:  # the detail would only name ids, in English
        return GENERIC[404]
    return f"{GENERIC.get(exc.status_code, '操作未能完成')}（{exc.message}）"


def safe_path(target: object) -> str | None:
    """`target` when it is a path on this site ("/tickets/3?done=sign"), else None.

    Browsers read a backslash as a slash and drop tabs and newlines, so "/\\evil.com" and
    "/<tab>/evil.com" leave the site as "//evil.com" does. Their percent-encoded forms are
    refused too (decoded until nothing changes), for whatever decodes them on the way.
    """
    if not isinstance(target, str) or not target.startswith("/"):
        return None
    decoded, previous = unquote(target), target
    while decoded != previous:
        decoded, previous = unquote(decoded), decoded
    if decoded.startswith("//") or "\\" in decoded or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in decoded):
        return None
    return target


def submit(
    request: Request,
    runtime: Runtime,
    change: Callable[[Session], str],
    *,
    template: str,
    context: Callable[[Session], dict[str, Any]],
) -> Response:
    """A posted form's change in one transaction, then a redirect (303) to the address that
    `change` returns. Refused, the page again (`template` with `context`), the reason in
    Chinese, with the error's status; a 404 shows the error page, as what the form acted on
    is gone or not the user's."""
    try:
        with runtime.db.session() as session:
            target = change(session)
    except HotlineError as exc:
        if exc.status_code == 404:
            raise
        with runtime.db.read_session() as session:
            ctx = context(session)
        return render(request, template, {**ctx, "error": page_message(exc)}, exc.status_code)
    return RedirectResponse(target, status_code=303)

"""The words of the notices and text messages the engine sends, built in one place.

The workflow's effects, the evaluation (rating links, rectifications) and the scheduler
call these builders, and so does the demo loader, which writes what they would have sent.
"""

import re
from datetime import datetime
from typing import Any

from hotline.deadlines.calendar import LOCAL_TZ

DEADLINE_WORDS = {"sign": "签收", "handle": "办理", "callback": "回访"}

# A notice to send: (role, department id or None, title, body).
Notice = tuple[str | None, int | None, str, str]


def deadline_text(kind: str | None, at: datetime | None) -> str:
    """The running deadline in words: 办理时限（2026-11-27 23:59）."""
    word = DEADLINE_WORDS.get(kind or "", "办理")
    if at is None:
        return f"{word}时限"
    lt = at.astimezone(LOCAL_TZ)
    return f"{word}时限（{lt.year:04d}-{lt.month:02d}-{lt.day:02d} {lt.hour:02d}:{lt.minute:02d}）"


def supervision_message(ticket: Any, now: datetime) -> str:
    """The text of a supervision order (督办单) on the ticket's running deadline."""
    late = ticket.due_at is not None and now >= ticket.due_at
    when = deadline_text(ticket.due_kind, ticket.due_at)
    return f"工单 {ticket.number} {when}{'已超期' if late else '即将到期'}，请单位负责人督促办理并答复。"


def ladder_notices(step: str, ticket: Any, message: str | None = None) -> list[Notice]:
    """The notices of a step of the escalation ladder; `message` replaces the default body."""
    number, department = ticket.number, ticket.main_department_id
    when = deadline_text(ticket.due_kind, ticket.due_at)
    if step == "warn":
        return [("handler", department, f"预警：工单 {number} 即将超期", message or f"{when}将到，请抓紧办理。")]
    if step == "urge":
        return [("handler", department, f"催办：工单 {number}", message or f"{when}已到，请尽快办理。")]
    if step == "supervise":
        return [("leader", department, f"督办单：工单 {number}", message)]
    body = message or f"工单 {number} {when}严重超期，已列入向区领导的通报。"
    return [("supervisor", None, f"通报：工单 {number}", body), ("leader", department, f"通报：工单 {number}", body)]


def community_ladder_notices(step: str, number: str, community: Any, kind: str, deadline: datetime) -> list[Notice]:
    """The notices of a step of a community's own ladder (二级派单): a warning to the community
    and its street office; once overdue, the community is told and its street office urged to
    act first (its leader too), as the community's supervisor."""
    when = f"社区{deadline_text(kind, deadline)}"
    mine, street = community.id, community.parent_id
    if step == "warn":
        title = f"预警：工单 {number} 社区{DEADLINE_WORDS[kind]}即将超期"
        return [
            ("handler", mine, title, f"{when}将到，请抓紧{DEADLINE_WORDS[kind]}。"),
            ("handler", street, title, f"{community.name}的{when}将到，请关注。"),
        ]
    title = f"社区超期：工单 {number}"
    to_street = f"{community.name}的{when}已到，请街道督促社区办理，或收回另行处理。"
    return [
        ("handler", mine, title, f"{when}已到，已报街道督促，请尽快{DEADLINE_WORDS[kind]}。"),
        ("handler", street, title, to_street),
        ("leader", street, title, to_street),
    ]


def sms_signature(district_name: str, phone: str) -> str:
    """The signature every text message to a citizen opens with, 【青山区12345】: the district
    and the hotline's number, as the pages name the hotline (see messaging.signature)."""
    return f"【{district_name}{phone}】"


def code_sms(signature: str, code: str, minutes: int) -> str:
    """The text message that carries an online filing's verification code."""
    return f"{signature}您的验证码是{code}，{minutes}分钟内有效，仅用于网上提交诉求。如非本人操作，请忽略。"


_CODE_IN_TEXT = re.compile(r"(验证码是)\d{6}")


def without_code(body: str) -> str:
    """A message as it is kept once a gateway has taken it: a verification code's digits struck
    out (******), so that nobody reads a live code from the message list."""
    return _CODE_IN_TEXT.sub(r"\1******", body)


def rating_sms(signature: str, number: str, url: str, expires: datetime) -> str:
    """The text message that carries a rating link."""
    lt = expires.astimezone(LOCAL_TZ)
    return (
        f"{signature}您反映的问题（工单号{number}）已办理完毕，"
        f"请点击链接对办理情况进行评价：{url} （{lt.month:02d}月{lt.day:02d}日前有效）"
    )


def rectification_notice(number: str, rating_label: str, due: datetime) -> tuple[str, str]:
    """Title and body of the notice that opens a rectification (差评整改)."""
    body = f"市民评价为“{rating_label}”，请于 {due.astimezone(LOCAL_TZ):%Y-%m-%d} 前完成核实、整改并反馈。"
    return f"差评整改：工单 {number}", body


def rating_review_notice(number: str) -> tuple[str, str]:
    """Title and body of the notice that asks a supervisor to review a citizen's dissatisfied rating."""
    return f"市民不满意评价待审核：工单 {number}", "市民通过评价短信给出不满意评价，请决定重办或说明后归档。"


def rectification_returned_title(number: str) -> str:
    """Title of the notice that sends a rectification report back (the body is the reason)."""
    return f"整改退回：工单 {number}"


def rectification_step_notice(step: str, number: str, due: datetime) -> tuple[str, str]:
    """Title and body of the scheduler's urging (催办) or supervision (督办) of an overdue rectification."""
    word = "催办" if step == "urge" else "督办"
    return f"整改{word}：工单 {number}", f"差评整改已于 {due.astimezone(LOCAL_TZ):%Y-%m-%d} 到期，请尽快完成并反馈。"


def calendar_missing_title(year: int) -> str:
    """The administrators' notice that a year has no holiday data (withdrawn once it has)."""
    return f"缺少 {year} 年节假日数据"


def local_time_from(at: datetime, now: datetime) -> str:
    """A time as the people who read it now want it: 10:30 today, 12-09 10:30 another day."""
    here = at.astimezone(LOCAL_TZ)
    return f"{here:%H:%M}" if here.date() == now.astimezone(LOCAL_TZ).date() else f"{here:%m-%d %H:%M}"


def _minute(at: datetime) -> str:
    lt = at.astimezone(LOCAL_TZ)
    return f"{lt.year:04d}-{lt.month:02d}-{lt.day:02d} {lt.hour:02d}:{lt.minute:02d}"


def dispatch_notices(ticket: Any, main_name: str, co_ids: list[int], sign_by: datetime) -> list[Notice]:
    """The notices of a dispatch (or redispatch): to the main department, and to each co-handler."""
    again = "改派" if ticket.dispatch_count > 1 else "派单"
    about = (ticket.title or ticket.content or "")[:40].rstrip("。，,. ")
    number = ticket.number
    notices: list[Notice] = [
        (
            None,
            ticket.main_department_id,
            f"{again}：工单 {number} 转本单位办理",
            f"{about}。请于 {_minute(sign_by)} 前签收办理。",
        )
    ]
    for department_id in co_ids:
        body = f"{about}。主办单位为{main_name}，请配合办理并答复。"
        notices.append((None, department_id, f"{again}：工单 {number} 请本单位协办", body))
    return notices


_REQUESTS = {"extension": "延期申请", "suspension": "挂起申请", "return": "退单申请"}


def decision_notice(
    number: str, kind: str, approved: bool, reason: str | None, days: int | None = None
) -> tuple[str, str]:
    """Title and body of the notice that tells a department what the centre decided on its request."""
    request = _REQUESTS.get(kind, "申请")
    if not approved:
        title = f"{request}未同意" if kind == "return" else f"{request}未批准"
        body = "工单退回本单位，请继续办理。" if kind == "return" else "请按原时限继续办理。"
    elif kind == "return":
        title, body = f"{request}已同意", "工单已由中心改派，本单位不再承办。"
    elif kind == "extension":
        title, body = f"{request}已批准", f"办理时限延长 {days} 个工作日。"
    else:
        title, body = f"{request}已批准", "办理时限暂停计算，恢复办理后继续计时。"
    return f"{title}：工单 {number}", f"{body}{f'中心意见：{reason}' if reason else ''}"


def reply_rejected_notice(number: str, reason: str | None) -> tuple[str, str]:
    """Title and body of the notice that sends a department's reply back to it."""
    return (
        f"审核退回：工单 {number} 的办结回复未通过",
        f"{f'退回理由：{reason}。' if reason else ''}请重新办理后再次答复。",
    )


def community_notices(
    number: str, step: str, community: str, detail: str | None, at: datetime | None
) -> tuple[str, str]:
    """Title and body of a second-level notice (二级派单): `passed` to the community, `returned`
    or `replied` to the street office, `rejected` (the street sent the reply back) and `recalled`
    (the street took the ticket back, 收回) to the community."""
    reason = f"理由：{detail}。" if detail else ""
    return {
        "passed": (
            f"街道派单：工单 {number} 转本社区办理",
            f"{detail + '。' if detail else ''}请于 {_minute(at) if at else '时限内'} 前签收办理。",
        ),
        "returned": (f"社区退回：工单 {number} 由{community}退回街道", f"{reason}请街道另行办理或改派其他社区。"),
        "replied": (f"社区回复：工单 {number} 已由{community}回复", "请街道审核社区的回复后再答复中心。"),
        "rejected": (f"街道退回：工单 {number} 的社区回复未通过", f"{reason}请重新办理后再次回复街道。"),
        "recalled": (f"街道收回：工单 {number} 已由街道收回", f"{reason}本社区无需再办理此工单。"),
    }[step]

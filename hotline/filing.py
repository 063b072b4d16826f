"""Online filing (网上诉求): a citizen files a matter on the public site and follows it.

Filing takes a verification code sent by text message to the phone given (through the
installation's message channel, hotline.evaluation.messaging), so a matter carries a phone
that its filer holds; no third-party captcha. What keeps abuse down:

- codes: one a minute and CODES_PER_PHONE_HOUR an hour per phone, each good for CODE_TTL
  and CODE_ATTEMPTS wrong tries, used once;
- filings: FILINGS_PER_PHONE_HOUR an hour per phone, counted from the tickets themselves
  (the assistant's hand-overs included), so every server process sees the same count;
- per client address: the public side's rate limit (hotline.api.deps.public_client), which
  the pages apply before any of this.

Neither the phone nor the code is stored with a code: only HMACs with an installation
secret. A filed matter is a ticket of the web channel waiting for dispatch (待派单).

Following a matter takes its number and the phone it was filed with; a wrong pair and an
unknown number get the same answer.
"""

import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from sqlmodel import Session, col, func, select

from hotline.attachments import files
from hotline.attachments.sniff import IMAGES
from hotline.deadlines.calendar import LOCAL_TZ
from hotline.directory import places
from hotline.errors import HotlineError, Invalid, TooManyRequests
from hotline.evaluation.messaging import deliver_pending, queue, signature
from hotline.evaluation.ratings import CITIZEN, app_secret
from hotline.inputs import check_text
from hotline.labels import TYPE_LABELS
from hotline.models import OWN_SOURCE, Department, Ticket, VerificationCode
from hotline.tickets import check_place, create_ticket, same_phone
from hotline.workflow import texts

CODE_TTL = timedelta(minutes=10)
CODE_MINUTES = int(CODE_TTL.total_seconds() // 60)
CODE_GAP = timedelta(seconds=60)
CODES_PER_PHONE_HOUR = 5
CODE_ATTEMPTS = 5
FILINGS_PER_PHONE_HOUR = 5
MAX_CONTENT_CHARS = 2000
# Photos a citizen may add to a matter (each within HOTLINE_MAX_ATTACHMENT_BYTES).
MAX_PHOTOS = 3
# What a citizen may file (表扬 too: thanks reach the department like any matter).
FILING_TYPES = ("consultation", "complaint", "help", "suggestion", "report", "praise")
SECRET_NAME = "verification"
# Mobile: 11 digits from 13 to 19; landline: an area code (0 and 2 or 3 digits) and 7 or 8 digits.
MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}\d{7,8}$")


def clean_text(value: str, name: str, limit: int, *, label: str) -> str:
    """A citizen's text: spaces trimmed, control characters refused, 1 to `limit`
    characters; 422 naming the field and saying why (in Chinese too)."""
    check_text(value, name)
    text = value.strip()
    if not text:
        raise Invalid(f"{name}: empty", field=name, zh=f"请填写{label}")
    if len(text) > limit:
        raise Invalid(
            f"{name}: longer than {limit} characters ({len(text)})", field=name, zh=f"{label}请不要超过{limit}个字"
        )
    return text


def clean_phone(raw: str) -> str:
    """A mobile number (11 digits) or a landline with its area code, as digits; 422 otherwise."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    if not (MOBILE.match(digits) or _LANDLINE.match(digits)):
        raise Invalid(
            "caller_phone: not a mobile number (11 digits) or a landline with its area code",
            field="caller_phone",
            zh="请填写正确的联系电话：11位手机号码，或带区号的固定电话",
        )
    return digits


def _keyed(session: Session, now: datetime, *parts: str) -> str:
    key = app_secret(session, SECRET_NAME, now)
    return hmac.new(key, "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def mobile(raw: str) -> str:
    """A mobile number (a code goes by text message), as digits; 422 otherwise."""
    if not (raw or "").strip():
        raise Invalid("caller_phone: empty", field="caller_phone", zh="请填写手机号码")
    try:
        phone = clean_phone(raw)
    except Invalid:
        # Malformed: said as a mobile number is asked for (clean_phone's words offer a landline).
        raise Invalid(
            "caller_phone: not a mobile number (11 digits)", field="caller_phone", zh="请填写正确的11位手机号码"
        ) from None
    if not MOBILE.match(phone):
        raise Invalid(
            "caller_phone: a verification code goes to a mobile number (11 digits)",
            field="caller_phone",
            zh="验证码只能发送到手机，请填写11位手机号码",
        )
    return phone


def send_code(session: Session, runtime, raw_phone: str, now: datetime) -> int:
    """A new code to the phone by text message (the message's id); 429 (with the wait) when
    asked too often."""
    phone = mobile(raw_phone)
    key = _keyed(session, now, "phone", phone)
    count, last = session.exec(
        select(func.count(), func.max(VerificationCode.created_at)).where(
            VerificationCode.phone_key == key, VerificationCode.created_at > now - timedelta(hours=1)
        )
    ).one()
    if last is not None and now - last < CODE_GAP:
        wait = max(1, math.ceil((last + CODE_GAP - now).total_seconds()))
        raise TooManyRequests(
            "caller_phone: one code a minute", retry_after=wait, field="caller_phone", zh=f"请{wait}秒后再获取验证码"
        )
    if count >= CODES_PER_PHONE_HOUR:
        raise TooManyRequests(
            f"caller_phone: at most {CODES_PER_PHONE_HOUR} codes an hour",
            retry_after=3600,
            field="caller_phone",
            zh=f"同一手机号码每小时最多获取{CODES_PER_PHONE_HOUR}次验证码，请稍后再试或拨打{runtime.settings.phone}",
        )
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(
        VerificationCode(
            phone_key=key,
            code_hash=_keyed(session, now, "code", phone, code),
            created_at=now,
            expires_at=now + CODE_TTL,
        )
    )
    body = texts.code_sms(signature(session, runtime), code, CODE_MINUTES)
    return queue(session, runtime.channel, to=phone, body=body, ticket_id=None, now=now).id


def send_code_now(runtime, raw_phone: str, now: datetime) -> None:
    """send_code in a transaction of its own, the message handed to the gateway at once (not at
    the next sweep); 503 if the gateway refused it. The online filing and the assistant's
    hand-over both send their codes so."""
    with runtime.db.session() as session:
        message_id = send_code(session, runtime, raw_phone, now)
    _, failed = deliver_pending(runtime, runtime.channel, ids=[message_id])
    if failed:
        raise HotlineError(
            "the message gateway refused the code: try again in a minute",
            status_code=503,
            zh=f"验证码发送失败，请一分钟后重试，或拨打{runtime.settings.phone}。",
        )


class WrongCode(Invalid):
    """The code typed is not the phone's latest good one; the try is counted after the
    filing's transaction has rolled back (`count_wrong_try`)."""

    def __init__(self, code_id: int | None, zh: str) -> None:
        super().__init__("code: not the code sent to this phone, or no longer good", field="code", zh=zh)
        self.code_id = code_id


def use_code(session: Session, phone: str, code: str, now: datetime) -> None:
    """Use the phone's latest code, in the caller's transaction (WrongCode: not it, or no longer good)."""
    row = session.exec(
        select(VerificationCode)
        .where(VerificationCode.phone_key == _keyed(session, now, "phone", phone))
        .order_by(col(VerificationCode.created_at).desc(), col(VerificationCode.id).desc())
        .limit(1)
        .with_for_update()
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now or row.attempts >= CODE_ATTEMPTS:
        raise WrongCode(None, "验证码已失效，请重新获取")
    typed = _keyed(session, now, "code", phone, code.strip())
    if not hmac.compare_digest(typed, row.code_hash):
        left = CODE_ATTEMPTS - row.attempts - 1
        raise WrongCode(row.id, f"验证码不正确，还可以再试{left}次" if left else "验证码不正确，请重新获取")
    row.used_at = now


def count_wrong_try(runtime, code_id: int | None) -> None:
    if code_id is None:
        return
    with runtime.db.session() as session:
        row = session.get(VerificationCode, code_id)
        if row is not None:
            row.attempts += 1


def check_filing_rate(session: Session, runtime, phone: str, now: datetime) -> None:
    """At most FILINGS_PER_PHONE_HOUR matters an hour filed online from one phone (429)."""
    count, first = session.exec(
        select(func.count(), func.min(Ticket.created_at)).where(
            same_phone(session, phone),
            Ticket.channel == "web",
            Ticket.source == OWN_SOURCE,
            Ticket.created_at >= now - timedelta(hours=1),
        )
    ).one()
    if count >= FILINGS_PER_PHONE_HOUR:
        wait = max(60, int((first + timedelta(hours=1) - now).total_seconds()))
        raise TooManyRequests(
            f"caller_phone: at most {FILINGS_PER_PHONE_HOUR} matters an hour from one phone number",
            retry_after=wait,
            field="caller_phone",
            zh=f"同一电话号码每小时最多在线提交{FILINGS_PER_PHONE_HOUR}件诉求，请稍后再试或拨打{runtime.settings.phone}。",
        )


@dataclass
class Filing:
    """What the citizen typed, before it is checked."""

    type: str
    content: str
    caller_phone: str
    code: str
    caller_name: str = ""
    street: str = ""
    community: str = ""


# The form's fields in the order the page shows them: what is wrong is listed in this order.
FORM_ORDER = ("type", "street", "community", "content", "caller_name", "caller_phone")


def check(session: Session, filing: Filing) -> dict[str, Any]:
    """The ticket's data from the form, every field checked: one Invalid naming the first
    wrong field (in FORM_ORDER) and, in `errors`, each wrong field with its words, so the
    page can say all of them at once, each by its field."""
    wrong: dict[str, Invalid] = {}

    def checked(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Invalid as exc:
            wrong.setdefault(exc.field or "", exc)
            return None

    if filing.type not in FILING_TYPES:
        wrong["type"] = Invalid(f"type: one of {', '.join(FILING_TYPES)}", field="type", zh="请选择诉求类型")
    content = checked(clean_text, filing.content, "content", MAX_CONTENT_CHARS, label="诉求内容")
    name = filing.caller_name.strip()
    caller_name = checked(clean_text, name, "caller_name", 50, label="称呼") if name else None
    street, community = filing.street.strip() or None, filing.community.strip() or None
    known = places(session)
    if known and street is None:
        wrong["street"] = Invalid("street: the street the matter is in", field="street", zh="请选择事发街道")
    else:
        checked(check_place, known, street, community)
    phone = checked(mobile, filing.caller_phone)
    if wrong:
        listed = sorted(wrong.values(), key=lambda e: FORM_ORDER.index(e.field) if e.field in FORM_ORDER else 99)
        first = listed[0]
        errors = [{"field": e.field, "message": e.message, "zh": e.extra.get("zh")} for e in listed]
        raise Invalid(first.message, field=first.field, zh=first.extra.get("zh"), errors=errors)
    assert content is not None and phone is not None
    return {
        "type": filing.type,
        "channel": "web",
        "caller_name": caller_name,
        "caller_phone": phone,
        "anonymous": False,
        "title": content.splitlines()[0][:40],
        "content": content,
        "street": street,
        "community": community,
    }


def file_matter(runtime, filing: Filing, now: datetime, photos: Sequence[tuple[str | None, BinaryIO]] = ()) -> Ticket:
    """Check the form, then the photos (each stored, its type judged by content), then the
    code, then file: a ticket waiting for dispatch, with its photos. The code is used in the
    filing's transaction (a refused filing keeps it good); a wrong code counts a try in a
    transaction of its own. Photos are taken with the code, never before: nothing a citizen
    sends is kept until the phone is verified, and a refused filing deletes what it stored."""
    if len(photos) > MAX_PHOTOS:
        raise Invalid(f"photos: at most {MAX_PHOTOS}", field="photos", zh=f"最多上传{MAX_PHOTOS}张照片")
    try:
        with ExitStack() as kept:
            logged = [(name, _store_photo(kept, runtime, name, file)) for name, file in photos]
            session = kept.enter_context(runtime.db.session())
            data = check(session, filing)
            check_filing_rate(session, runtime, data["caller_phone"], now)
            use_code(session, data["caller_phone"], filing.code, now)
            ticket, _ = create_ticket(session, runtime, CITIZEN, data, now=now, details={"via": "online"})
            for name, stored in logged:
                files.add(session, runtime, CITIZEN, ticket.id, kind="photo", name=name, now=now, file=stored)
            session.flush()
            session.expunge(ticket)
            return ticket
    except WrongCode as exc:
        count_wrong_try(runtime, exc.code_id)
        raise


def _shown_name(name: str | None) -> str:
    """A photo's file name as its sender chose it, shortened for a message."""
    name = " ".join("".join(c if c.isprintable() else " " for c in name or "").split()) or "照片"
    return name if len(name) <= 40 else name[:18] + "…" + name[-18:]


def _store_photo(kept: ExitStack, runtime, name: str | None, file: BinaryIO) -> files.Stored:
    """The photo stored (deleted again when `kept` unwinds on a failure); a refusal names the
    file the citizen chose, so that they know which one to replace."""
    try:
        stored = kept.enter_context(files.stored(runtime, file))
        if stored.content_type not in IMAGES:
            raise files.UnsupportedType(f"photos: an image (JPEG, PNG, WebP or HEIC), not {stored.content_type}")
    except HotlineError as exc:
        shown = _shown_name(name)
        if exc.status_code == 415:  # not an image, or one that cannot be read
            zh = f"“{shown}”不是可以识别的照片，只能上传 JPG、PNG、WebP、HEIC 格式的照片"
        else:
            zh = f"“{shown}”：{exc.extra.get('zh') or '无法上传'}"
        extra = {**exc.extra, "field": "photos", "zh": zh, "file": name}
        raise HotlineError(f"photos: {name!r}: {exc.message}", status_code=exc.status_code, **extra) from exc
    return stored


# The steps a citizen sees, from the ticket's own times.
STEPS = (
    ("created_at", "已受理"),
    ("dispatched_at", "已转办至承办单位"),
    ("signed_at", "承办单位已签收"),
    ("replied_at", "承办单位已答复"),
    ("closed_at", "已办结"),
)


def progress(session: Session, runtime, number: str, raw_phone: str) -> dict[str, Any] | None:
    """The matter's progress as its filer may read it, or None when the number and the phone
    do not go together (an unknown number answers the same)."""
    try:
        phone = clean_phone(raw_phone)
    except Invalid:
        return None
    ticket = session.exec(select(Ticket).where(Ticket.number == number.strip())).first()
    if ticket is None or not ticket.caller_phone or not hmac.compare_digest(ticket.caller_phone, phone):
        return None
    workflow = runtime.workflows.get(ticket.workflow)
    closed = ticket.state not in runtime.workflows.open_states
    department = session.get(Department, ticket.main_department_id) if ticket.main_department_id else None
    steps = [
        {"label": label, "at": getattr(ticket, name).astimezone(LOCAL_TZ)}
        for name, label in STEPS
        if getattr(ticket, name) is not None
    ]
    steps.sort(key=lambda step: step["at"])
    return {
        "number": ticket.number,
        "type": TYPE_LABELS.get(ticket.type, ticket.type),
        "title": ticket.title,
        "state": workflow.state_label(ticket.state),
        "closed": closed,
        "department": department.name if department else None,
        "handle_by": ticket.handle_by.astimezone(LOCAL_TZ) if ticket.handle_by and not closed else None,
        "steps": steps,
        # What the department or the centre answered, once the matter is closed.
        "outcome": (ticket.result or ticket.answer) if closed else None,
    }

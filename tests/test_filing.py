"""Online filing (网上诉求) on SQLite and PostgreSQL: the code by text message, the matter filed
in 已受理 (the agents' 待派单) with channel 网站, every refusal named and nothing half written, the limits per
phone, the progress by number and phone; and a citizen filing on a phone in Chromium."""

import html
import io
import os
import re

import pytest
from PIL import Image
from sqlmodel import func, select

from hotline import filing
from hotline.directory import create_place
from hotline.evaluation.messaging import deliver_pending
from hotline.models import Attachment, Message, Ticket, TicketEvent, VerificationCode
from tests.helpers import Api, make_dispatched
from tests.receivers import Receiver
from tests.test_attachments import png, stored_files
from tests.test_pages_kb import PHONE_VIEWPORT, SHOTS

NONCE = re.compile(r'name="nonce" value="([^"]+)"')
CODE = re.compile(r"验证码是(\d{6})")
PHONE = "13912345678"


@pytest.fixture
def places(runtime):
    with runtime.db.session() as s:
        create_place(s, street="东城街道", community="和平社区")
        create_place(s, street="东城街道", community="友谊社区")
        create_place(s, street="西城街道")


def nonce(client, path="/file") -> str:
    return html.unescape(NONCE.search(client.get(path).text).group(1))


MATTER = {
    "type": "complaint",
    "place": "东城街道/和平社区",
    "content": "小区门口路灯坏了一个月\n晚上很黑",
    "caller_phone": PHONE,
}


def ask_code(client, **changes):
    return client.post("/file", data={"nonce": nonce(client), "action": "code", **MATTER, **changes})


def last_code(runtime, phone=PHONE) -> str:
    with runtime.db.read_session() as s:  # `to` is sealed: compared once opened
        message = next(m for m in s.exec(select(Message).order_by(Message.id.desc())) if m.to == phone)
    return CODE.search(message.body).group(1)


def file(client, code, **changes):
    return client.post(
        "/file", data={"nonce": nonce(client), "action": "file", "step": "2", **MATTER, "code": code, **changes}
    )


def tickets(runtime) -> list[Ticket]:
    with runtime.db.read_session() as s:
        return s.exec(select(Ticket)).all()


def test_a_matter_filed_with_the_code_sent_to_the_phone(client, runtime, places):
    r = ask_code(client, caller_name="王先生")
    assert r.status_code == 200 and "验证码已发送到 139****5678" in r.text
    with runtime.db.read_session() as s:
        (row,) = s.exec(select(VerificationCode)).all()
    code = last_code(runtime)
    # Neither the phone nor the code is kept beside the code.
    assert PHONE not in row.phone_key and code not in row.code_hash
    r = file(client, code, caller_name="王先生")
    assert r.status_code == 200 and "提交成功" in r.text
    (ticket,) = tickets(runtime)
    assert ticket.number in r.text and "尾号5678" in r.text
    assert (ticket.state, ticket.channel, ticket.type) == ("registered", "web", "complaint")
    assert (ticket.street, ticket.community, ticket.caller_phone, ticket.caller_name) == (
        "东城街道",
        "和平社区",
        PHONE,
        "王先生",
    )
    assert ticket.title == "小区门口路灯坏了一个月"
    # The code is used: once.
    r = file(client, code)
    assert r.status_code == 422 and "验证码已失效" in r.text
    assert len(tickets(runtime)) == 1


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"type": "rumour"}, "type", "请选择诉求类型"),
        ({"place": ""}, "street", "请选择事发街道"),
        ({"place": "南城街道"}, "street", "请从列表中选择街道"),
        ({"place": "西城街道/和平社区"}, "community", "没有这个社区"),
        ({"content": "   "}, "content", "请填写诉求内容"),
        ({"content": "长" * 2001}, "content", "不要超过2000个字"),
        ({"caller_phone": "12345"}, "caller_phone", "请填写正确的11位手机号码"),
        ({"caller_phone": "010-62345678"}, "caller_phone", "验证码只能发送到手机"),
        ({"content": "路灯\x00坏了"}, "content", ""),
    ],
)
def test_what_is_wrong_is_said_before_a_code_goes_out(client, runtime, places, changes, field, words):
    r = ask_code(client, **changes)
    assert r.status_code == 422, r.text
    assert words in r.text
    assert re.search(rf'name="{field}"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*name="{field}"', r.text) or (
        field in ("street", "community", "type", "content")
    )
    with runtime.db.read_session() as s:
        assert s.exec(select(func.count()).select_from(Message)).one() == 0
        assert s.exec(select(func.count()).select_from(VerificationCode)).one() == 0


def said_below(page: str, field: str) -> str:
    """The message shown right below a field's input, which the input is described by and
    marked invalid with (for the type, inside its fieldset, on every radio)."""
    if field == "type":
        group = re.search(r'<fieldset id="type" aria-describedby="type-error">(.*?)</fieldset>', page, re.S)
        assert group, "the type's fieldset is not described by its message"
        radios = re.findall(r'<input type="radio" name="type"[^>]*>', group.group(1))
        assert radios and all('aria-invalid="true"' in radio for radio in radios)
        part = group.group(1)
    else:
        found = re.search(rf'<(input|select|textarea) id="{field}"[^>]*>', page)
        assert found, f"no input {field}"
        described = re.search(r'aria-describedby="([^"]*)"', found.group())
        assert 'aria-invalid="true"' in found.group() and described, found.group()
        assert f"{field}-error" in described.group(1).split()
        # From the input to the next label or the form's own message: nothing in between.
        rest = page[found.end() :]
        part = rest[: min(i for i in (rest.find("<label"), rest.find('id="file-error"'), len(rest)) if i >= 0)]
    message = re.search(rf'<p id="{field}-error" class="field-error">(.*?)</p>', part, re.S)
    assert message, f"no message below {field}"
    return message.group(1)


def test_the_empty_form_says_every_wrong_field_next_to_it(client, runtime, places):
    r = client.post("/file", data={"nonce": nonce(client), "action": "code"})
    assert r.status_code == 422
    assert said_below(r.text, "type") == "请选择诉求类型"
    assert said_below(r.text, "place") == "请选择事发街道"
    assert said_below(r.text, "content") == "请填写诉求内容"
    assert said_below(r.text, "caller_phone") == "请填写手机号码"
    assert 'id="caller_name" name="caller_name" autocomplete="name" maxlength="50" value="">' in r.text  # left alone
    # Listed at the top of the form, in the form's order, each a link to its field.
    summary = re.search(r'<div class="error-summary" role="alert">(.*?)</div>', r.text, re.S).group(1)
    assert "请修改以下4处" in summary
    assert re.findall(r'href="#([a-z_]+)"', summary) == ["type", "place", "content", "caller_phone"]
    # The form's own message (for what concerns no field) says nothing.
    assert re.search(r'<p id="file-error" class="field-error" role="alert" hidden></p>', r.text)
    # Fixed in part, the rest is still said, each where it belongs; what was typed is kept.
    r = ask_code(client, type="", content="   ", caller_phone="12345")
    assert r.status_code == 422 and "请修改以下3处" in r.text
    assert said_below(r.text, "type") == "请选择诉求类型" and said_below(r.text, "content") == "请填写诉求内容"
    assert said_below(r.text, "caller_phone") == "请填写正确的11位手机号码"
    assert 'id="place-error"' not in r.text and 'value="东城街道/和平社区" selected' in r.text


def test_a_refusal_to_send_a_code_is_said_under_the_phone(client, runtime, places):
    ask_code(client)
    r = ask_code(client)
    assert r.status_code == 429 and "秒后再获取验证码" in said_below(r.text, "caller_phone")


def test_a_wrong_code_is_counted_and_the_fifth_ends_it(client, runtime, places):
    ask_code(client)
    good = last_code(runtime)
    wrong = "000000" if good != "000000" else "111111"
    for left in range(filing.CODE_ATTEMPTS - 1, 0, -1):
        r = file(client, wrong)
        assert r.status_code == 422 and f"还可以再试{left}次" in said_below(r.text, "code")
        assert 'id="code"' in r.text  # still on the code's step
    r = file(client, wrong)
    assert "请重新获取" in r.text
    # Even the right code no longer works: a new one must be asked for.
    assert "验证码已失效" in file(client, good).text
    assert tickets(runtime) == []


def test_a_code_expires_and_is_sent_once_a_minute_five_an_hour(client, runtime, places, clock):
    ask_code(client)
    r = ask_code(client)
    assert r.status_code == 429 and "秒后再获取验证码" in r.text and int(r.headers["Retry-After"]) <= 60
    code = last_code(runtime)
    clock.advance(minutes=11)
    assert "验证码已失效" in file(client, code).text
    for _ in range(filing.CODES_PER_PHONE_HOUR - 1):
        assert ask_code(client).status_code == 200
        clock.advance(minutes=2)
    r = ask_code(client)
    assert r.status_code == 429 and "每小时最多获取" in r.text
    # Another phone is not held up.
    assert ask_code(client, caller_phone="13900001111").status_code == 200


def test_a_refused_filing_keeps_its_code_good(client, runtime, places, district):
    """The code is used in the filing's own transaction: a matter refused after the code was
    checked (here: an hour's filings from the phone reached) leaves the code good."""
    ask_code(client)
    code = last_code(runtime)
    make_dispatched(runtime, filing.FILINGS_PER_PHONE_HOUR, now=runtime.now(), caller_phone=PHONE, channel="web")
    with runtime.db.session() as s:  # as if filed online this hour
        for t in s.exec(select(Ticket)).all():
            t.created_at = runtime.now()
    r = file(client, code)
    assert r.status_code == 429 and "每小时最多在线提交" in r.text
    with runtime.db.read_session() as s:
        (row,) = s.exec(select(VerificationCode)).all()
    assert row.used_at is None and row.attempts == 0


def test_a_form_from_elsewhere_is_refused(client, runtime, places):
    r = client.post("/file", data={"nonce": "forged", "action": "code", **MATTER})
    assert r.status_code == 403 and "页面已过期" in r.text
    r = client.post("/progress", data={"nonce": "forged", "number": "1", "caller_phone": PHONE})
    assert r.status_code == 403


def test_progress_by_number_and_phone(client, runtime, places, district):
    ask_code(client)
    file(client, last_code(runtime))
    (ticket,) = tickets(runtime)
    look = lambda number, phone: client.post(  # noqa: E731
        "/progress", data={"nonce": nonce(client, "/progress"), "number": number, "caller_phone": phone}
    )
    r = look(ticket.number, PHONE)
    assert r.status_code == 200 and "当前状态" in r.text and "已受理" in r.text
    assert r.headers["Cache-Control"] == "no-store"
    # A wrong phone, an unknown number: the same answer, nothing told.
    wrong = look(ticket.number, "13900000000")
    unknown = look("20990101000001", PHONE)
    assert wrong.status_code == unknown.status_code == 404
    assert "没有找到" in wrong.text and "没有找到" in unknown.text and ticket.title not in wrong.text
    # The filed page links here with the number filled in.
    assert f'value="{ticket.number}"' in client.get(f"/progress?number={ticket.number}").text


def test_progress_shows_the_department_and_the_outcome_once_closed(client, runtime, district):
    (tid,) = make_dispatched(runtime, 1, now=runtime.now(), caller_phone=PHONE)
    handler = Api(client, district, "housing_h")
    handler.fire(tid, "sign")
    with runtime.db.read_session() as s:
        number = s.get(Ticket, tid).number
    data = {"nonce": nonce(client, "/progress"), "number": number, "caller_phone": PHONE}
    r = client.post("/progress", data=data)
    assert "已签收" in r.text and "办理期限" in r.text and "办理结果" not in r.text
    handler.fire(tid, "reply", result="已更换路灯")
    Api(client, district, "supervisor").fire(tid, "approve_reply")
    r = client.post("/progress", data=data)
    assert "已答复" in r.text
    with runtime.db.read_session() as s:
        closed = s.get(Ticket, tid).state not in runtime.workflows.open_states
    assert ("已更换路灯" in r.text) == closed


def noise() -> bytes:
    """A PNG that does not compress: about 120 kB."""
    out = io.BytesIO()
    Image.frombytes("RGB", (200, 200), os.urandom(120_000)).save(out, "PNG")
    return out.getvalue()


def file_with(client, code, photos, **changes):
    """Step 2 as the browser posts it: multipart, the code and the photos chosen."""
    data = {"nonce": nonce(client), "action": "file", "step": "2", **MATTER, "code": code, **changes}
    return client.post("/file", data=data, files=[("photos", photo) for photo in photos])


def test_photos_are_filed_with_the_matter(client, runtime, places):
    ask_code(client)
    r = file_with(
        client, last_code(runtime), [("路灯.png", png(), "image/png"), ("夜里.jpg", png(40, 30), "image/jpeg")]
    )
    assert r.status_code == 200 and "已随诉求提交照片 2 张" in r.text
    (ticket,) = tickets(runtime)
    with runtime.db.read_session() as s:
        rows = s.exec(select(Attachment).order_by(Attachment.id)).all()
        attached = s.exec(
            select(TicketEvent).where(TicketEvent.ticket_id == ticket.id, TicketEvent.event == "attach")
        ).all()
    # Named by their content (both are PNG), each with its thumbnail, in the ticket's history.
    assert [(a.ticket_id, a.kind, a.name, a.content_type) for a in rows] == [
        (ticket.id, "photo", "路灯.png", "image/png"),
        (ticket.id, "photo", "夜里.png", "image/png"),
    ]
    assert all(a.thumbnail_key and a.created_by_id is None for a in rows)
    assert len(attached) == 2 and len(stored_files(runtime)) == 4
    # A step 2 with the photo input left empty (a nameless part) files the matter alone.
    other = {"content": "第二件事：垃圾没人清运", "caller_phone": "13800001111"}
    ask_code(client, **other)
    r = file_with(client, last_code(runtime, "13800001111"), [("", b"", "application/octet-stream")], **other)
    assert r.status_code == 200 and "已随诉求提交照片" not in r.text
    assert len(tickets(runtime)) == 2 and len(stored_files(runtime)) == 4


@pytest.mark.parametrize(
    ("photos", "status", "words"),
    [
        ([("证明.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf")], 415, "“证明.pdf”不是可以识别的照片"),
        ([("假的.jpg", b"not an image at all", "image/jpeg")], 415, "“假的.jpg”不是可以识别的照片"),
        ([("大.png", noise(), "image/png")], 413, "“大.png”：文件超过 39 KB 上限"),
        ([(f"{n}.png", png(), "image/png") for n in range(4)], 422, "最多上传3张照片"),
    ],
)
def test_a_refused_photo_files_nothing_and_keeps_the_step_and_the_code(client, runtime, places, photos, status, words):
    runtime.settings = runtime.settings.model_copy(update={"max_attachment_bytes": 40_000})
    ask_code(client)
    code = last_code(runtime)
    r = file_with(client, code, [("好的.png", png(), "image/png"), *photos])
    assert r.status_code == status and words in r.text
    assert words in said_below(r.text, "photos")  # under the photos' input, which it describes
    assert "短信验证码" in r.text and 'id="photos"' in r.text  # still on the code's step
    assert tickets(runtime) == [] and stored_files(runtime) == []
    with runtime.db.read_session() as s:
        assert s.exec(select(Attachment)).all() == []
    # The code was not used: the matter files once the photos are right.
    r = file_with(client, code, [("好的.png", png(), "image/png")])
    assert r.status_code == 200 and "已随诉求提交照片 1 张" in r.text


def test_a_refused_photo_is_named_as_the_citizen_chose_it_and_escaped(client, runtime, places):
    ask_code(client)
    name = "<img src=x onerror=alert(1)>现场.pdf"
    r = file_with(client, last_code(runtime), [(name, b"%PDF-1.4\n%%EOF\n", "application/pdf")])
    assert r.status_code == 415
    assert "“&lt;img src=x onerror=alert(1)&gt;现场.pdf”不是可以识别的照片" in said_below(r.text, "photos")
    assert "<img src=x" not in r.text


def test_the_photos_size_limit_is_said_as_people_write_it(client, runtime, places):
    """每张不超过10 MB, not 10.0 MB; a fraction stays."""
    ask_code(client)
    step = file(client, "")  # the code's step again, the code missing
    assert "每张不超过10 MB。" in step.text and "10.0" not in step.text
    runtime.settings = runtime.settings.model_copy(update={"max_attachment_bytes": 5 * 1024 * 1024 // 2})
    assert "每张不超过2.5 MB。" in file(client, "").text


def test_a_wrong_code_keeps_no_photo(client, runtime, places):
    ask_code(client)
    r = file_with(client, "000000" if last_code(runtime) != "000000" else "111111", [("a.png", png(), "image/png")])
    assert r.status_code == 422 and "验证码不正确" in r.text
    assert tickets(runtime) == [] and stored_files(runtime) == []


def test_a_citizen_files_online_on_a_phone_and_follows_it(server, browser, runtime, places):
    context = browser.new_context(viewport=PHONE_VIEWPORT, locale="zh-CN", device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(f"{server}/kb")
    page.get_by_role("link", name="网上诉求").click()
    page.get_by_label("投诉").check()
    page.get_by_label("事发街道、社区").select_option(label="和平社区")
    page.get_by_label("您要反映的事情").fill("小区门口路灯坏了一个月，晚上很黑")
    page.get_by_label("手机号码").fill("139 1234 5678")
    page.screenshot(path=str(SHOTS / "file.png"), full_page=True)
    page.get_by_role("button", name="获取验证码").click()
    page.get_by_text("验证码已发送到").wait_for()
    page.screenshot(path=str(SHOTS / "file-code.png"), full_page=True)
    page.get_by_label("短信验证码").fill(last_code(runtime))
    page.get_by_label("现场照片").set_input_files([{"name": "路灯.png", "mimeType": "image/png", "buffer": png()}])
    page.screenshot(path=str(SHOTS / "file-code-photo.png"), full_page=True)
    page.get_by_label("短信验证码").press("Enter")  # Enter files the matter: the first button of the step
    page.get_by_role("status").get_by_text("提交成功").wait_for()
    assert "已随诉求提交照片 1 张" in page.content()
    (ticket,) = tickets(runtime)
    with runtime.db.read_session() as s:
        assert [a.ticket_id for a in s.exec(select(Attachment)).all()] == [ticket.id]
    assert page.locator(".ticket-number strong").inner_text() == ticket.number
    page.screenshot(path=str(SHOTS / "file-filed.png"), full_page=True)
    page.get_by_role("link", name="查询办理进度").click()
    assert page.get_by_label("工单编号").input_value() == ticket.number
    page.get_by_label("提交时留的手机号码").fill(PHONE)
    page.get_by_role("button", name="查询").click()
    page.get_by_text("当前状态").wait_for()
    assert "当前状态\n已受理" in page.locator("#found").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
    page.screenshot(path=str(SHOTS / "progress.png"), full_page=True)
    context.close()


def test_every_text_to_a_citizen_is_signed_alike(client, runtime, places, district):
    """The code and the rating link: one signature, the district's name and the hotline's
    number (HOTLINE_PHONE) as the pages name the hotline."""
    from tests.test_evaluation import replied_and_approved

    runtime.settings = runtime.settings.model_copy(update={"phone": "96345"})
    ask_code(client)
    tid = replied_and_approved(runtime, lambda username: Api(client, district, username))
    Api(client, district, "agent").post(f"/tickets/{tid}/rating-invitations", {}, expect=201)
    with runtime.db.read_session() as s:
        signature = f"【{runtime.district(s).name}96345】"
        code, rating = (m.body for m in s.exec(select(Message).order_by(Message.id)))
    assert code.startswith(signature + "您的验证码是") and rating.startswith(signature + "您反映的问题")


def test_the_code_reaches_a_real_sms_gateway_at_once_and_only_once(client, runtime, places):
    gateway = Receiver().start()
    try:
        runtime.settings = runtime.settings.model_copy(
            update={"message_channel": "http", "message_gateway_url": gateway.url, "message_gateway_token": "gw-1"}
        )
        runtime._channel = None
        assert ask_code(client).status_code == 200
        (got,) = gateway.got  # before the page answered: no sweep needed
        assert got.json["to"] == PHONE and got.headers["authorization"] == "Bearer gw-1"
        code = CODE.search(got.json["body"]).group(1)
        with runtime.db.read_session() as s:
            (message,) = s.exec(select(Message)).all()
        assert (message.channel, message.status) == ("http", "sent")
        # Once the gateway has it, the stored text keeps no live code.
        assert code not in message.body and "您的验证码是******，" in message.body
        assert deliver_pending(runtime, runtime.channel) == (0, 0)  # the sweep sends nothing again
        assert "提交成功" in file(client, code).text

        # A gateway that fails: the page says so (not "sent"), and the message is marked failed.
        gateway.answer = lambda _: 500
        r = ask_code(client, caller_phone="13900001111")
        assert r.status_code == 503 and "验证码发送失败" in r.text and "验证码已发送" not in r.text
        with runtime.db.read_session() as s:
            assert s.exec(select(Message.status).order_by(Message.id.desc())).first() == "failed"
    finally:
        gateway.stop()

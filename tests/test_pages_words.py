"""What the pages say when they refuse something, and what they show of the scheduler's
reasons: Simplified Chinese, never the English a developer or an integrator reads."""

import re

from sqlmodel import select

from hotline.labels import history_reason
from hotline.models import TicketEvent
from hotline.scheduler import sweep
from hotline.web.forms import page_message
from hotline.workflow import rules
from tests.conftest import local
from tests.helpers import Api, make_dispatched, sign_in

MONDAY = local(2026, 11, 2, 9, 0)
ENGLISH = re.compile(r"[A-Za-z]{4,}")  # a word of English (the page's own code, ids and tags excepted)


def _message(html: str) -> str:
    """The text of an error page's message."""
    found = re.search(r'<div class="card error-card">\s*<h1>.*?</h1>\s*<p>(.*?)</p>', html, re.S)
    assert found, html
    return found.group(1).strip()


def test_a_value_the_request_refuses_is_said_in_chinese(client, district):
    assert sign_in(client, "agent").status_code == 303
    page = client.get("/tickets", params={"q": "查" * 101})
    assert page.status_code == 422
    assert _message(page.text) == "输入有误：搜索内容（不能超过 100 个字符）"
    page = client.get("/tickets", params={"page": "0"})
    assert page.status_code == 422 and "不能小于 1" in _message(page.text)
    page = client.get("/tickets/abc")
    assert page.status_code == 422 and _message(page.text) == "输入有误：工单（应为整数）"
    # The search box says its limit before anything is sent.
    assert 'name="q" value="" maxlength="100"' in client.get("/tickets").text


def test_an_address_opened_the_wrong_way_is_a_page_not_json(client, district, runtime):
    tid = make_dispatched(runtime, 1, now=MONDAY)[0]
    assert sign_in(client, "housing_h").status_code == 303
    page = client.get(f"/tickets/{tid}/attachments")  # where an upload is posted
    assert page.status_code == 405
    assert page.headers["content-type"].startswith("text/html")
    assert "POST" in page.headers["allow"]
    assert not ENGLISH.search(_message(page.text))


def test_refusals_of_the_workflow_carry_chinese_words_for_the_pages(client, district, runtime):
    tid = make_dispatched(runtime, 1, now=MONDAY)[0]
    api = Api(client, district, "supervisor")
    refused = api.fire(tid, "merge", expect=422, master=tid, reason="重复")
    assert refused["zh"] == "工单不能并入其自身"
    other = Api(client, district, "urban_h").get(f"/tickets/{tid}", expect=404)
    assert other["zh"] == "工单不存在，或您无权查看"
    # A page shows the Chinese words, and never the English detail of a 404.
    from hotline.errors import NotFound

    assert page_message(NotFound("appeal 7 not found")) == "您要查看的内容不存在，或您无权查看"


def test_the_scheduler_gives_its_reasons_in_chinese_and_old_english_ones_are_shown_so(client, district, runtime):
    tid = make_dispatched(runtime, 1, now=MONDAY)[0]
    sweep(runtime, now=local(2026, 11, 20, 10, 0))  # overdue: the warning is passed over
    with runtime.db.read_session() as s:
        skipped = s.exec(
            select(TicketEvent).where(TicketEvent.ticket_id == tid, TicketEvent.event == "escalation_skipped")
        ).one()
    assert skipped.details["reason"] == "时限已过，不再发送预警"
    assert sign_in(client, "supervisor").status_code == 303
    assert "理由：时限已过，不再发送预警" in client.get(f"/tickets/{tid}").text
    # What the scheduler recorded in English before: the history keeps it, the page translates it.
    assert history_reason("already overdue: a warning would only be noise") == "时限已过，不再发送预警"
    assert history_reason("the citizen has been reached and has rated already") == "市民已评价，无需再发送评价短信"
    old = "supervision order 12 on this ticket still awaits the department leader's answer"
    assert history_reason(old) == "该工单已有督办单尚待单位负责人答复，未重复下发"
    assert history_reason("来电人要求撤回") == "来电人要求撤回" and history_reason(None) is None
    assert history_reason(rules.ALREADY_RATED) == rules.ALREADY_RATED_ZH  # the refusal's English, kept in step


def test_an_audit_records_values_are_shown_as_people_read_them():
    from hotline.web.render import change_value

    assert change_value(["优待证", "退役军人"]) == "优待证、退役军人"
    assert change_value({"天数": 3, "理由": "施工"}) == '{"天数": 3, "理由": "施工"}'
    assert change_value(None) == "null" and change_value("原文") == "原文" and change_value(5) == "5"
    assert change_value([]) == "—"
    assert (change_value(True), change_value(False)) == ("是", "否")
    # A year's calendar seeded: its first days and how many, not a page of JSON.
    days = [{"day": f"2004-01-{d:02d}", "working": False} for d in range(1, 31)]
    shown = change_value(days)
    assert shown.startswith('[{"day": "2004-01-01", "working": false}') and shown.count('"day"') == 10
    assert shown.endswith("…（共 30 项，此处列出前 10 项）")


def test_every_audited_column_has_a_chinese_name():
    from sqlalchemy import inspect

    from hotline.audit_log import AUDITED, FIELD_LABELS, IGNORED, SECRET_WORDS, SECRETS, shown_value

    columns = {a.key for model in AUDITED for a in inspect(model).column_attrs} - IGNORED
    assert not columns - set(FIELD_LABELS), sorted(columns - set(FIELD_LABELS))
    assert {shown_value(key, word) for key in SECRETS for word in SECRET_WORDS} == set(SECRET_WORDS.values())
    assert shown_value("status", "changed") == "changed"  # only a secret's stand-in is translated


def test_an_audit_records_fields_are_named_in_chinese(client, district, runtime):
    """The audit page names the fields of a change (the key is kept in the title), and says
    what was done in words, the action's code only in the title."""
    from tests.helpers import sign_in

    sign_in(client, "admin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/departments").text).group(1)
    new = {"csrf_token": token, "code": "culture2", "name": "区文化馆"}
    assert client.post("/admin/departments", data=new, follow_redirects=False).status_code == 303
    page = client.get("/admin/audit", params={"kind": "department"}).text
    row = page[page.index("<tbody>") : page.index("</tbody>")]
    assert '<dt title="code">编码</dt>' in row and '<dt title="name">名称</dt>' in row
    assert '<dt title="active">启用</dt><dd>是</dd>' in row
    assert '<td title="department.create">单位新建</td>' in row and ">department.create<" not in row


def test_a_refused_rule_edit_comes_back_open_as_typed(client, district, runtime):
    from hotline import directory

    with runtime.db.session() as s:
        rule = directory.create_rule(s, department="housing", category="0101", street="西城街道")
    assert sign_in(client, "admin").status_code == 303
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/rules").text).group(1)
    data = {"category": "0101", "place": "", "department": "urban", "priority": "七", "csrf_token": token}
    page = client.post(f"/admin/rules/{rule.id}/edit", data=data)
    assert page.status_code == 422 and "优先级应为 -9999 到 9999 之间的整数" in page.text
    form = page.text[page.text.index(f'action="/admin/rules/{rule.id}/edit"') :]
    form = form[: form.index("</form>")]
    assert 'value="urban" selected' in form and 'value="七"' in form
    assert page.text.count('<details class="pop" open>') == 1


def test_the_machines_addresses_answer_a_wrong_method_in_json(client):
    for path in ("/healthz", "/readyz", "/metrics"):
        answer = client.post(path)
        assert answer.status_code == 405 and answer.json() == {"detail": "Method Not Allowed"}, path

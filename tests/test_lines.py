"""One number for the merged hotlines (一个号码): 12315 and 12333 keep their categories and
their workflow, their tickets are counted apart, and the supervisors read the centre's calls."""

import io
import re
import shutil
from datetime import timedelta

import openpyxl
import pytest
from playwright.sync_api import expect
from sqlmodel import select

from hotline.config import ROOT, Settings
from hotline.db import utcnow
from hotline.directory import create_category
from hotline.models import Call, Ticket, TicketEvent
from hotline.workflow.definition import WorkflowError, WorkflowSet, workflow_set
from tests.conftest import local
from tests.helpers import Api, add_accounts
from tests.helpers import sign_in as client_sign_in
from tests.test_pages_agent import choose_place, places  # noqa: F401  (a fixture)
from tests.test_pages_smoke import SHOTS, login

# The test district's categories: 02 市场监管 (0201 食品安全), 03 供水, 01 城乡建设 (0101, 0102).
LINES = """
lines:
  - number: "12345"
    label: 政务服务便民热线
  - number: "12315"
    label: 市场监管投诉举报热线
    category: "02"
    workflow: default
    sources: [cn12315]
  - number: "12333"
    label: 人力资源社会保障服务热线
    category: "03"
    workflow: direct_reply
    channels: [wechat]
"""
PHONE = "13912345678"


def _workflows(tmp_path, lines: str = LINES):
    wdir = tmp_path / "workflows"
    wdir.mkdir(exist_ok=True)
    for f in (ROOT / "workflows").glob("*.yaml"):
        shutil.copy(f, wdir / f.name)
    (wdir / "selection.yaml").write_text("default: default\ntypes: {}\n" + lines, encoding="utf-8")
    return wdir


@pytest.fixture
def settings(database, tmp_path) -> Settings:
    """The district's settings with the lines above (this module's own workflows directory)."""
    return Settings(
        database_url=database.url,
        embedded_scheduler=False,
        attachments_dir=tmp_path / "attachments",
        workflows_dir=_workflows(tmp_path),
    )


@pytest.fixture(autouse=True)
def _fresh_workflow_cache():
    workflow_set.cache_clear()
    yield
    workflow_set.cache_clear()


@pytest.fixture
def lines_district(runtime, district):
    """The telephone system's account, the 12315 platform's, and a second agent."""
    return add_accounts(
        runtime,
        district,
        (("pbx", "integration", "telephony"), ("platform", "integration", "cn12315"), ("agent2", "agent", None)),
    )


def ring(client, district, *, dialled: str | None, agent: str = "agent", call_id: str = "C-1", at=None) -> int:
    """The telephone system reports a call; its id."""
    body = {
        "call_id": call_id,
        "caller_phone": PHONE,
        "agent": agent,
        "started_at": (at or local(2026, 11, 2, 9, 0)).isoformat(),
    }
    if dialled:
        body["dialled"] = dialled
    return Api(client, district, "pbx").post("/calls", body, 201)["id"]


def tickets(runtime) -> int:
    with runtime.db.read_session() as s:
        return len(s.exec(select(Ticket.id)).all())


# --- the lines as data ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lines,where",
    [
        (
            'lines:\n  - {number: "12345", label: 热线}\n  - {number: "12315", label: x, workflow: nope}\n',
            "lines[1].workflow",
        ),
        ('lines:\n  - {number: "12345", label: 热线, category: "01"}\n', "lines[0].category"),
        ('lines:\n  - {number: "12a45", label: 热线}\n', "lines[0].number"),
        ('lines:\n  - {number: "12345", label: 热线}\n  - {number: "12345", label: 又一个}\n', "lines[1].number"),
        (
            'lines:\n  - {number: "12345", label: 热线}\n  - {number: "12315", label: x, channels: [fax]}\n',
            "lines[1].channels",
        ),
        (
            'lines:\n  - {number: "12345", label: 热线}\n  - {number: "12315", label: x, colour: red}\n',
            "lines[1].colour",
        ),
        ('lines:\n  - {number: "12345"}\n', "lines[0].label"),
        ("lines: []\n", "lines:"),
    ],
)
def test_a_bad_lines_file_is_refused_at_load_naming_the_key(tmp_path, lines, where):
    with pytest.raises(WorkflowError, match=re.escape(f"selection.yaml: {where}")):
        WorkflowSet(_workflows(tmp_path, lines))


def test_without_lines_the_district_has_one_line_12345(tmp_path):
    lines = WorkflowSet(_workflows(tmp_path, "")).lines
    assert [x.number for x in lines.all] == ["12345"] and not lines.merged
    shipped = WorkflowSet(ROOT / "workflows").lines
    assert [x.number for x in shipped.all] == ["12345", "12315", "12333"]


# --- intake ------------------------------------------------------------------------------------


def test_the_line_is_the_number_the_citizen_dialled(client, lines_district, runtime):
    agent = Api(client, lines_district, "agent")
    call = ring(client, lines_district, dialled="12315")
    t = agent.create(category="0201", content="超市卖过期食品", call=call)
    assert t["line"] == "12315" and t["workflow"] == "default"
    with runtime.db.read_session() as s:
        assert s.get(Call, call).ticket_id == t["id"]
        create = s.exec(select(TicketEvent).where(TicketEvent.ticket_id == t["id"])).first()
        assert create.details["line"] == "12315" and create.details["call_id"] == "C-1"
    # A call to 12345, or to a number not configured, is 12345's.
    for i, dialled in enumerate(("12345", "96110", None)):
        call = ring(client, lines_district, dialled=dialled, call_id=f"C-{i + 2}")
        assert agent.create(call=call)["line"] == "12345"
    # The same call twice: refused, nothing written.
    before = tickets(runtime)
    agent.create(expect=422, category="0201", call=call)
    assert tickets(runtime) == before


def test_the_line_follows_the_source_or_the_channel_else_12345(client, lines_district):
    agent = Api(client, lines_district, "agent")
    assert agent.create(category="03", channel="wechat")["line"] == "12333"
    assert agent.create(category="0101", channel="web")["line"] == "12345"
    platform = Api(client, lines_district, "platform")
    assert platform.create(category="0201", external_id="P-1")["line"] == "12315"
    # Named outright (an integration that knows the line).
    assert agent.create(category="0201", line="12315")["line"] == "12315"


@pytest.mark.parametrize(
    "fields,field",
    [
        ({"line": "12306"}, "line"),  # not a line of the district
        ({"line": "12x"}, "line"),
        ({"call": 999999}, "call"),  # no such call
    ],
)
def test_a_bad_line_or_call_is_422_naming_the_field(client, lines_district, runtime, fields, field):
    before = tickets(runtime)
    r = client.post(
        "/api/v1/tickets",
        json={"type": "complaint", "content": "诉求", **fields},
        headers=lines_district.headers("agent"),
    )
    assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert tickets(runtime) == before


def test_a_line_other_than_the_calls_and_another_agents_call_are_422(client, lines_district):
    call = ring(client, lines_district, dialled="12315")
    r = client.post(
        "/api/v1/tickets",
        json={"type": "complaint", "content": "诉求", "call": call, "line": "12333"},
        headers=lines_district.headers("agent"),
    )
    assert r.status_code == 422 and r.json()["field"] == "line" and "12315" in r.json()["detail"], r.text
    Api(client, lines_district, "agent2").create(expect=422, call=call)


def test_a_category_outside_the_lines_subtree_is_422_naming_category(client, lines_district, runtime):
    call = ring(client, lines_district, dialled="12315")
    before = tickets(runtime)
    r = client.post(
        "/api/v1/tickets",
        json={"type": "complaint", "category": "0101", "content": "物业不作为", "call": call},
        headers=lines_district.headers("agent"),
    )
    assert r.status_code == 422 and r.json()["field"] == "category", r.text
    assert "12315" in r.json()["detail"]
    assert tickets(runtime) == before
    with runtime.db.read_session() as s:
        assert s.get(Call, call).ticket_id is None  # the call waits for a ticket still
    # The line's root and its subtree are fine; so is no category (classified later).
    agent = Api(client, lines_district, "agent")
    assert agent.create(category="02", call=call)["line"] == "12315"
    assert agent.create(category="03", line="12333")["category"] == "03"
    Api(client, lines_district, "agent").create(expect=422, category="0201", line="12333")
    assert agent.create(line="12333", category=None)["category"] is None


def test_the_line_chooses_the_workflow_after_the_categorys_own(client, lines_district, runtime):
    agent, water = Api(client, lines_district, "agent"), Api(client, lines_district, "water_h")
    t = agent.create(type="consultation", category="03", channel="wechat")
    assert (t["line"], t["workflow"]) == ("12333", "direct_reply")
    agent.fire(t["id"], "dispatch")
    water.fire(t["id"], "sign")
    assert water.fire(t["id"], "reply", result="已电话答复")["state"] == "pending_callback"  # no review
    # A category that names its own workflow comes first.
    with runtime.db.session() as s:
        create_category(s, runtime, code="0301", name="水费", parent="03", workflow="default")
    assert agent.create(category="0301", line="12333")["workflow"] == "default"
    assert agent.create(category="0101")["workflow"] == "default"  # 12345's


# --- counted apart -----------------------------------------------------------------------------


def test_a_lines_tickets_are_counted_apart(client, lines_district, clock):
    agent, market = Api(client, lines_district, "agent"), Api(client, lines_district, "market_h")
    for i in range(3):
        t = agent.create(category="0201", line="12315", content=f"12315诉求{i}")
        agent.fire(t["id"], "dispatch", department="market")
        if i == 0:
            market.fire(t["id"], "sign")
    for i in range(2):
        t = agent.create(category="0101", content=f"12345诉求{i}")
        agent.fire(t["id"], "dispatch", department="market")
    agent.create(category="03", line="12333")
    sup = Api(client, lines_district, "supervisor")
    period = {"from": "2026-11-01", "to": "2026-11-30"}

    by_line = sup.get("/analysis/volume", by="line", **period)
    counts = {r["key"]: (r["count"], r["label"]) for r in by_line["rows"]}
    assert counts == {
        "12315": (3, "12315 市场监管投诉举报热线"),
        "12345": (2, "12345 政务服务便民热线"),
        "12333": (1, "12333 人力资源社会保障服务热线"),
    }
    assert sup.get("/analysis/volume", by="type", line="12315", **period)["total"] == 3
    assert sup.get("/analysis/volume", by="type", **period)["total"] == 6
    sup.get("/analysis/volume", by="type", line="12306", expect=422, **period)

    def market_row(**extra):
        rows = sup.get("/stats/departments", **period, **extra)["departments"]
        return next(r for r in rows if r["department"] == "market")

    clock.advance(hours=1)
    everything, on_12315, on_12345 = market_row(), market_row(line="12315"), market_row(line="12345")
    assert (everything["dispatched"], on_12315["dispatched"], on_12345["dispatched"]) == (5, 3, 2)
    assert (on_12315["signed_on_time"], on_12345["signed_on_time"]) == (1, 0)
    assert market_row(line="12333")["dispatched"] == 0
    sup.get("/stats/departments", line="999", expect=422, **period)


# --- the call analysis -------------------------------------------------------------------------


def test_the_call_analysis_matches_the_figures_worked_out_by_hand(client, lines_district, runtime):
    """Five calls: agent at 9:00 (12315, logged, answered directly), 9:20 (12345, logged,
    dispatched), 14:05 (12315, no ticket); agent2 at 9:40 (12333, logged, answered) and 20:00
    on the day before the period (not counted). And one web ticket, logged by agent, answered."""
    agent, agent2 = Api(client, lines_district, "agent"), Api(client, lines_district, "agent2")

    def logged(api, call, event, **fields):
        t = api.create(call=call, type="consultation", **fields)
        if event == "answer":
            api.fire(t["id"], "answer", answer="已解答")
        else:
            api.fire(t["id"], "dispatch", department="market")
        return t

    at = local(2026, 11, 2, 9, 0)
    logged(agent, ring(client, lines_district, dialled="12315", call_id="A", at=at), "answer", category="0201")
    c = ring(client, lines_district, dialled="12345", call_id="B", at=at + timedelta(minutes=20))
    logged(agent, c, "dispatch", category="0101")
    ring(client, lines_district, dialled="12315", call_id="C", at=local(2026, 11, 2, 14, 5))
    c = ring(client, lines_district, dialled="12333", call_id="D", agent="agent2", at=at + timedelta(minutes=40))
    logged(agent2, c, "answer", category="03")
    ring(client, lines_district, dialled="12345", call_id="E", agent="agent2", at=local(2026, 11, 1, 20, 0))
    web = agent.create(type="consultation", category="0101", channel="web")
    agent.fire(web["id"], "answer", answer="网上答复")

    sup = Api(client, lines_district, "supervisor")
    out = sup.get("/analysis/calls", **{"from": "2026-11-02", "to": "2026-11-02"})
    assert (out["calls"], out["with_ticket"], out["ticket_share"]) == (4, 3, 0.75)
    hours = {h["hour"]: (h["calls"], h["with_ticket"]) for h in out["hours"] if h["calls"]}
    assert hours == {9: (3, 3), 14: (1, 0)}
    assert len(out["hours"]) == 24
    agents = {
        a["agent"]: (a["calls"], a["with_ticket"], a["tickets"], a["answered"], a["answer_rate"]) for a in out["agents"]
    }
    assert agents == {"agent": (3, 2, 3, 2, 0.6667), "agent2": (1, 1, 1, 1, 1.0)}
    lines = {r["line"]: (r["calls"], r["with_ticket"], r["tickets"], r["answered"]) for r in out["lines"]}
    assert lines == {"12345": (1, 1, 2, 1), "12315": (2, 1, 1, 1), "12333": (1, 1, 1, 1)}

    only = sup.get("/analysis/calls", line="12315", **{"from": "2026-11-02", "to": "2026-11-02"})
    assert (only["calls"], only["with_ticket"], only["ticket_share"]) == (2, 1, 0.5)
    assert [(r["line"], r["calls"]) for r in only["lines"]] == [("12315", 2)]
    assert {a["agent"]: a["calls"] for a in only["agents"]} == {"agent": 2}
    # The day before: agent2's evening call only.
    before = sup.get("/analysis/calls", **{"from": "2026-11-01", "to": "2026-11-01"})
    assert before["calls"] == 1 and before["hours"][20]["calls"] == 1 and before["with_ticket"] == 0

    # The same figures in the page's exports: CSV per table, and sheets of the workbook.
    client_sign_in(client, "supervisor")
    day = {"from": "2026-11-02", "to": "2026-11-02"}
    csv = client.get("/analysis/export.csv", params={**day, "table": "call_agents"})
    assert csv.status_code == 200 and ",agent,3,2,3,2,66.7%" in csv.text and ",agent2,1,1,1,1,100.0%" in csv.text
    csv = client.get("/analysis/export.csv", params={**day, "table": "call_hours"})
    assert "09:00—10:00,3,3" in csv.text and "14:00—15:00,1,0" in csv.text
    csv = client.get("/analysis/export.csv", params={**day, "table": "call_lines"})
    assert "12315,市场监管投诉举报热线,2,1,50.0%,1,1,100.0%" in csv.text
    book = openpyxl.load_workbook(io.BytesIO(client.get("/analysis/export.xlsx", params=day).content))
    assert {"话务时段", "坐席工作量", "各热线话务"} <= set(book.sheetnames)
    client.cookies.clear()
    client_sign_in(client, "housing_l")  # a department's leader reads no agent's workload
    assert client.get("/analysis/export.csv", params={**day, "table": "call_agents"}).status_code == 403
    assert (
        "坐席工作量"
        not in openpyxl.load_workbook(io.BytesIO(client.get("/analysis/export.xlsx", params=day).content)).sheetnames
    )


@pytest.mark.parametrize("username,status", [("housing_h", 403), ("housing_l", 403), ("agent", 403), ("admin", 200)])
def test_the_call_analysis_is_the_centres(client, lines_district, username, status):
    Api(client, lines_district, username).get("/analysis/calls", expect=status)


def test_the_analysis_page_shows_the_lines_and_the_calls_apart(client, lines_district):
    agent = Api(client, lines_district, "agent")
    agent.create(category="0201", call=ring(client, lines_district, dialled="12315"))
    agent.create(category="0101")
    client_sign_in(client, "supervisor")
    page = client.get("/analysis", params={"from": "2026-11-01", "to": "2026-11-30"})
    assert page.status_code == 200
    table = re.search(r'<table[^>]*id="line-table".*?</table>', page.text, re.S).group(0)
    assert "12315 市场监管投诉举报热线" in table and '<th scope="row">' in table
    assert 'id="call-table"' in page.text and 'id="agent-table"' in page.text
    only = client.get("/analysis", params={"from": "2026-11-01", "to": "2026-11-30", "line": "12315"})
    assert only.status_code == 200 and 'id="kpi-total"' in only.text
    assert re.search(r'id="kpi-total".*?<span class="n">1<small>', only.text, re.S)
    assert client.get("/analysis", params={"line": "12306"}).status_code == 422
    client.cookies.clear()
    client_sign_in(client, "housing_h")
    assert client.get("/analysis").status_code == 403
    client.cookies.clear()
    client_sign_in(client, "housing_l")
    own = client.get("/analysis")
    assert own.status_code == 200 and 'id="agent-table"' not in own.text  # the centre's figures


def test_the_performance_board_and_its_exports_count_one_line_apart(client, lines_district, clock):
    agent = Api(client, lines_district, "agent")
    for i in range(3):
        agent.fire(
            agent.create(category="0201", line="12315", content=f"12315诉求{i}")["id"], "dispatch", department="market"
        )
    for i in range(2):
        agent.fire(agent.create(category="0101", content=f"12345诉求{i}")["id"], "dispatch", department="market")
    clock.advance(hours=1)
    client_sign_in(client, "supervisor")
    period = {"from": "2026-11-01", "to": "2026-11-30"}

    def dispatched(page: str) -> str:
        row = re.search(r'<tr data-department="market".*?</tr>', page, re.S).group(0)
        return re.search(r'data-metric="dispatched">(?:<a[^>]*>)?(\d+)', row).group(1)

    everything = client.get("/performance", params=period)
    only = client.get("/performance", params={**period, "line": "12315"})
    assert everything.status_code == only.status_code == 200
    assert (dispatched(everything.text), dispatched(only.text)) == ("5", "3")
    assert 'id="line-scope">12315 市场监管投诉举报热线' in only.text
    # The picker keeps the line: the period's shortcuts and the exports carry it.
    export = re.search(r'id="export-csv" href="([^"]+)"', only.text).group(1)
    assert export.endswith("&amp;line=12315")
    csv = client.get("/performance/export.csv", params={**period, "line": "12315"})
    assert csv.status_code == 200 and "_12315_" in csv.headers["content-disposition"]
    assert ",区市场监管局,3," in csv.text  # the line's 3, not the 5 of all lines
    xlsx = client.get("/performance/export.xlsx", params={**period, "line": "12315"})
    assert xlsx.status_code == 200 and "12315" in xlsx.headers["content-disposition"]
    assert client.get("/performance", params={**period, "line": "12306"}).status_code == 422


# --- the workbench -----------------------------------------------------------------------------


def _csrf(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/notifications").text).group(1)


def test_the_intake_page_keeps_a_merged_lines_call_to_its_categories(client, lines_district, runtime):
    call = ring(client, lines_district, dialled="12315")
    client_sign_in(client, "agent")
    card = client.get(f"/agent/calls/{call}").text
    assert 'data-line="12315"' in card and "12315 市场监管投诉举报热线" in card
    narrowed = client.get("/agent/intake/categories", params={"category_q": "", "line": "12315"}).text
    assert set(re.findall(r'data-code="([^"]+)"', narrowed)) == {"02", "0201"}
    everything = client.get("/agent/intake/categories", params={"category_q": ""}).text
    assert "0101" in re.findall(r'data-code="([^"]+)"', everything)

    form = {"csrf_token": _csrf(client), "type": "complaint", "urgency": "normal", "call": str(call)}
    wrong = client.post("/agent/intake", data={**form, "category": "0101", "content": "物业", "action": "dispatch"})
    assert wrong.status_code == 422 and "须在“市场监管”之下" in wrong.text
    assert 'id="line" name="line" value="12315"' in wrong.text
    ok = client.post(
        "/agent/intake",
        data={**form, "category": "0201", "content": "饭店卫生差", "action": "dispatch", "department": "market"},
        follow_redirects=False,
    )
    assert ok.status_code == 303, ok.text
    with runtime.db.read_session() as s:
        ticket = s.exec(select(Ticket).where(Ticket.content == "饭店卫生差")).one()
        assert ticket.line == "12315" and s.get(Call, call).ticket_id == ticket.id
    shown = client.get(f"/tickets/{ticket.id}").text
    assert '<dd data-line="12315">12315 市场监管投诉举报热线</dd>' in shown


@pytest.mark.browser
@pytest.mark.usefixtures("places")
def test_an_agent_with_a_call_on_12315_sees_its_categories_and_logs_on_that_line(page, server, runtime, lines_district):
    import httpx

    login(page, server, "agent")
    page.goto(f"{server}/agent/intake")
    page.wait_for_timeout(500)  # the stream is open
    body = {"call_id": "W-1", "caller_phone": PHONE, "agent": "agent", "started_at": utcnow().isoformat()}
    r = httpx.post(f"{server}/api/v1/calls", json={**body, "dialled": "12315"}, headers=lines_district.headers("pbx"))
    assert r.status_code == 201
    expect(page.locator("#call-card")).to_contain_text("12315 市场监管投诉举报热线", timeout=2000)
    expect(page.locator("#line")).to_have_value("12315")
    page.fill("#category_q", "物业")  # 城乡建设 is not 12315's
    expect(page.locator("#category-suggest")).not_to_contain_text("物业管理")
    page.fill("#category_q", "食品")
    item = page.locator("#category-suggest .suggest-item[data-code='0201']")
    expect(item).to_be_visible()
    expect(page.locator("#category-suggest .suggest-item")).to_have_count(1)
    page.press("#category_q", "Enter")
    expect(page.locator("#category")).to_have_value("0201")
    page.check("#type-complaint")
    choose_place(page, "西城街道", "光明社区", "光明路12号")
    page.fill("#content", "12315来电：饭店后厨卫生差")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "workbench-line-12315.png"), full_page=True)
    page.click("#go-dispatch")
    page.wait_for_url("**/agent/intake?done=dispatch*")
    with runtime.db.read_session() as s:
        ticket = s.exec(select(Ticket).where(Ticket.content == "12315来电：饭店后厨卫生差")).one()
        assert ticket.line == "12315" and ticket.caller_phone == PHONE


def test_the_administrators_see_the_lines_and_a_missing_category(client, lines_district, runtime, tmp_path):
    client_sign_in(client, "admin")
    table = re.search(r'<table[^>]*id="line-config".*?</table>', client.get("/admin/workflows").text, re.S).group(0)
    assert "市场监管投诉举报热线" in table and "cn12315" in table and "全部分类" in table and "微信" in table
    assert "不存在" not in table
    other = tmp_path / "other"
    other.mkdir()
    runtime.workflows = WorkflowSet(_workflows(other, LINES.replace('category: "03"', 'category: "77"')))
    table = re.search(r'<table[^>]*id="line-config".*?</table>', client.get("/admin/workflows").text, re.S).group(0)
    assert "分类 77 不存在" in table
    client.cookies.clear()
    client_sign_in(client, "supervisor")
    assert client.get("/admin/workflows").status_code == 403


def test_an_open311_request_takes_the_line_its_channel_maps_to(client, lines_district, runtime, tmp_path):
    """Open311 requests come in on the `app` channel: a district may map it to a line."""
    from tests.test_open311 import BASE

    other = tmp_path / "other"
    other.mkdir()
    runtime.workflows = WorkflowSet(_workflows(other, LINES.replace("channels: [wechat]", "channels: [app]")))
    form = {"api_key": lines_district.tokens["agent"], "description": "自来水发黄", "address_string": "和平路5号"}
    r = client.post(f"{BASE}/requests.json", data={**form, "service_code": "03"})
    assert r.status_code == 201, r.text
    r = client.post(f"{BASE}/requests.json", data={**form, "service_code": "0101"})
    assert r.status_code == 400 and "12333" in r.text, r.text  # outside 12333's categories
    with runtime.db.read_session() as s:
        assert s.exec(select(Ticket.line, Ticket.channel)).all() == [("12333", "app")]

"""Open311 GeoReport v2: discovery, services, submitting and following service requests."""

from xml.etree import ElementTree

import httpx
import pytest

from hotline.directory import create_place
from tests.helpers import Api

BASE = "/open311/v2"


@pytest.fixture
def places(runtime):
    with runtime.db.session() as s:
        for street, community in [("东城街道", "和平社区"), ("东城街道", "新华社区"), ("西城街道", "光明社区")]:
            create_place(s, street=street, community=community)


def submit(client, district, username="agent", fmt="json", expect=201, **fields):
    form = {
        "api_key": district.tokens[username],
        "service_code": "0101",
        "description": "小区电梯坏了一周没人修",
        "address_string": "东城街道和平社区5号楼",
        "first_name": "三",
        "last_name": "张",
        "phone": "138-1234-5678",
        **fields,
    }
    r = client.post(f"{BASE}/requests.{fmt}", data={k: v for k, v in form.items() if v is not None})
    assert r.status_code == expect, r.text
    return r


def errors_of(r: httpx.Response) -> list[dict]:
    if r.headers["content-type"].startswith("text/xml"):
        root = ElementTree.fromstring(r.content)
        assert root.tag == "errors"
        return [{"code": int(e.findtext("code")), "description": e.findtext("description")} for e in root]
    return r.json()


def test_discovery_names_the_v2_endpoint_in_both_formats(client):
    doc = client.get("/open311/discovery.json").json()
    (endpoint,) = doc["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2")
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    r = client.get("/open311/discovery.xml")
    assert r.headers["content-type"].startswith("text/xml")
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ElementTree.fromstring(r.content)
    assert root.tag == "discovery"
    assert [f.text for f in root.find("endpoints/endpoint/formats")] == ["text/xml", "application/json"]


def test_services_are_the_active_categories_with_their_group(client, district, runtime):
    services = client.get(f"{BASE}/services.json").json()
    by_code = {s["service_code"]: s for s in services}
    assert set(by_code) == {"01", "0101", "0102", "02", "0201", "03", "09"}
    assert by_code["0101"] == {
        "service_code": "0101",
        "service_name": "物业管理",
        "description": "城乡建设 / 物业管理",
        "metadata": True,
        "type": "realtime",
        "keywords": "城乡建设,物业管理",
        "group": "城乡建设",
    }
    root = ElementTree.fromstring(client.get(f"{BASE}/services.xml").content)
    assert root.tag == "services"
    service = next(s for s in root if s.findtext("service_code") == "0201")
    assert (service.findtext("service_name"), service.findtext("group"), service.findtext("metadata")) == (
        "食品安全",
        "市场监管",
        "true",
    )


def test_service_definition_offers_type_and_the_district_places(client, district, places):
    definition = client.get(f"{BASE}/services/0101.json").json()
    attributes = {a["code"]: a for a in definition["attributes"]}
    assert definition["service_code"] == "0101"
    assert [v["key"] for v in attributes["type"]["values"]][:5] == [
        "consultation",
        "complaint",
        "help",
        "suggestion",
        "report",
    ]
    assert [v["key"] for v in attributes["street"]["values"]] == ["东城街道", "西城街道"]
    assert {"key": "西城街道/光明社区", "name": "西城街道 光明社区"} in attributes["community"]["values"]
    root = ElementTree.fromstring(client.get(f"{BASE}/services/0101.xml").content)
    assert root.tag == "service_definition"
    street = next(a for a in root.find("attributes") if a.findtext("code") == "street")
    assert [v.findtext("key") for v in street.find("values")] == ["东城街道", "西城街道"]


def test_unknown_service_and_format_are_errors_in_the_standard_form(client, district):
    r = client.get(f"{BASE}/services/nope.json")
    assert r.status_code == 404
    assert errors_of(r) == [{"code": 404, "description": "service_code 'nope' not found"}]
    r = client.get(f"{BASE}/services/nope.xml")
    assert r.status_code == 404 and errors_of(r)[0]["code"] == 404
    r = client.get(f"{BASE}/services.csv")
    assert r.status_code == 400 and errors_of(r)[0]["code"] == 400


def test_submitted_request_is_a_registered_ticket_with_the_callers_data(server, runtime, district, places):
    form = {
        "api_key": district.tokens["agent"],
        "service_code": "0101",
        "description": "小区电梯坏了一周没人修\n请尽快处理",
        "lat": "31.2304",
        "long": "121.4737",
        "attribute[type]": "complaint",
        "attribute[community]": "新华社区",
        "first_name": "三",
        "last_name": "张",
        "phone": "138-1234-5678",
        "media_url": "https://example.org/photo.jpg",
        "account_id": "acct-7",
    }
    r = httpx.post(f"{server}{BASE}/requests.json", data=form)
    assert r.status_code == 201, r.text
    (receipt,) = r.json()
    number, token = receipt["service_request_id"], receipt["token"]
    assert number in receipt["service_notice"] and receipt["account_id"] == "acct-7"

    api = httpx.Client(base_url=f"{server}/api/v1", headers=district.headers("agent"))
    (ticket,) = api.get("/tickets", params={"q": number}).json()["items"]
    assert ticket["state"] == "registered"
    assert (ticket["type"], ticket["category"], ticket["channel"]) == ("complaint", "0101", "app")
    assert (ticket["caller_name"], ticket["caller_phone"]) == ("张三", "13812345678")
    assert (ticket["street"], ticket["community"]) == ("东城街道", "新华社区")
    assert (ticket["lat"], ticket["lng"], ticket["title"]) == (31.2304, 121.4737, "小区电梯坏了一周没人修")
    created, attached = api.get(f"/tickets/{ticket['id']}/history").json()
    assert created["details"]["open311"] == {"media_url": "https://example.org/photo.jpg"}
    assert attached["details"]["attachment"]["reference"] == "https://example.org/photo.jpg"  # a link, not fetched
    assert created["details"]["contact"] == {"account_id": "acct-7"}
    api.post(f"/tickets/{ticket['id']}/transitions", json={"event": "dispatch"}).raise_for_status()
    housing = httpx.Client(base_url=f"{server}/api/v1", headers=district.headers("housing_h"))
    created = housing.get(f"/tickets/{ticket['id']}/history").json()[0]
    assert "contact" not in created["details"] and created["details"]["open311"]  # the caller's contacts: not theirs

    r = httpx.get(f"{server}{BASE}/requests/{number}.json", params={"api_key": district.tokens["agent"]})
    (request,) = r.json()
    assert request["status"] == "open" and request["status_notes"] == "待签收"
    assert (request["service_code"], request["service_name"]) == ("0101", "物业管理")
    assert request["media_url"] == "https://example.org/photo.jpg"
    assert request["address"] == "东城街道 新华社区" and request["long"] == 121.4737
    assert request["requested_datetime"] == "2026-11-02T09:00:00+08:00" and request["agency_responsible"] == "区住建局"

    r = httpx.get(f"{server}{BASE}/tokens/{token}.xml", headers=district.headers("agent"))
    root = ElementTree.fromstring(r.content)
    assert [(e.findtext("service_request_id"), e.findtext("token")) for e in root] == [(number, token)]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_submissions_say_which_parameter(client, district, places, runtime, fmt):
    with runtime.db.session() as s:
        create_place(s, street="西城街道", community="和平社区")  # a name two streets share
    cases = [
        ({"service_code": None}, "service_code: required"),
        ({"service_code": "9999"}, "service_code: '9999' not found"),
        ({"description": "  "}, "description: required (the request's content)"),
        ({"address_string": None}, "a location is required"),
        ({"lat": "31.2"}, "lat and long: give both or neither"),
        ({"lat": "north", "long": "121"}, "lat: not a number: 'north'"),
        ({"lat": "91", "long": "121"}, "lat: must be between -90 and 90"),
        ({"attribute[type]": "gossip"}, "attribute[type]: 'gossip' is not one of"),
        ({"attribute[street]": "南城街道"}, "attribute[street]: '南城街道' is not a street of the district"),
        (
            {"attribute[street]": "西城街道", "attribute[community]": "新华社区"},
            "attribute[community]: '新华社区' is not a community of '西城街道'",
        ),
        ({"attribute[community]": "和平社区"}, "attribute[community]: '和平社区' is in 东城街道, 西城街道: give"),
        (
            {"attribute[street]": "西城街道", "attribute[community]": "东城街道/新华社区"},
            "attribute[community]: '新华社区' is in '东城街道', not in '西城街道'",
        ),
        ({"description": "长" * 4001}, "description: at most 4000 characters"),
    ]
    for fields, message in cases:
        r = submit(client, district, fmt=fmt, expect=400, **fields)
        (error,) = errors_of(r)
        assert error["code"] == 400 and error["description"].startswith(message), (fields, error)
    agent = Api(client, district, "agent")
    assert agent.get("/tickets")["total"] == 0  # nothing half-made


def test_api_key_is_required_and_only_intake_roles_submit(client, district):
    r = submit(client, district, expect=403, api_key=None)
    assert errors_of(r)[0]["description"].startswith("api_key is required")
    r = submit(client, district, fmt="xml", expect=403, api_key="not-a-token")
    assert errors_of(r) == [{"code": 403, "description": "api_key is unknown, revoked, or its user is deactivated"}]
    for username in ("housing_h", "housing_l", "admin"):
        r = submit(client, district, username, expect=403)
        assert "may not submit service requests" in errors_of(r)[0]["description"]
    assert submit(client, district, "supervisor").json()[0]["service_request_id"]
    r = client.post(
        f"{BASE}/requests.json",
        params={"api_key": district.tokens["agent"]},
        data={"service_code": "0101", "description": "路灯不亮", "address_string": "和平路"},
    )
    assert r.status_code == 201, r.text  # the key in the address, as some clients send it
    # Reading needs no key (the standard); a bad key sent with a read is still refused.
    assert client.get(f"{BASE}/requests.json").status_code == 200
    assert client.get(f"{BASE}/requests.json", params={"api_key": "not-a-token"}).status_code == 403


def test_requests_follow_dispatch_and_close_and_each_role_sees_its_own(client, district, clock):
    agent = Api(client, district, "agent")
    key = {"api_key": district.tokens["agent"]}
    first = submit(client, district).json()[0]["service_request_id"]
    second = submit(client, district, service_code="0201", description="超市卖过期食品").json()[0]["service_request_id"]
    third = submit(client, district, description="重复来电").json()[0]["service_request_id"]
    ids = {n: agent.get("/tickets", q=n)["items"][0]["id"] for n in (first, second, third)}

    agent.fire(ids[first], "dispatch")  # routed by category to housing
    agent.fire(ids[second], "dispatch", department="market")
    agent.fire(ids[third], "cancel", reason="重复诉求，已在前单处理")

    everything = client.get(f"{BASE}/requests.json", params=key).json()
    assert [r["service_request_id"] for r in everything] == [third, second, first]  # newest first
    by_number = {r["service_request_id"]: r for r in everything}
    assert by_number[first]["agency_responsible"] == "区住建局" and by_number[first]["expected_datetime"]
    assert by_number[first]["status_notes"] == "待签收"
    assert by_number[third]["status"] == "closed"
    assert by_number[third]["status_notes"].startswith("已撤销")

    def numbers(**params):
        r = client.get(f"{BASE}/requests.json", params={**key, **params})
        assert r.status_code == 200, r.text
        return [x["service_request_id"] for x in r.json()]

    assert numbers(status="open") == [second, first]
    assert numbers(status="closed") == [third]
    assert numbers(status="open,closed") == [third, second, first]
    assert numbers(service_code="0201") == [second]
    assert numbers(service_code="0101,0201", status="open") == [second, first]
    assert numbers(service_request_id=f"{first},{third}", status="open") == [third, first]  # the id wins
    assert numbers(page_size=2, page=2) == [first]
    assert numbers(start_date="2026-11-02T08:00:00+08:00", end_date="2026-11-02T10:00:00+08:00") == [
        third,
        second,
        first,
    ]
    assert numbers(start_date="2026-11-02T02:00:00Z") == []
    # "+08:00" sent unencoded: its "+" arrives as a space
    r = client.get(f"{BASE}/requests.json?api_key={key['api_key']}&start_date=2026-11-02T10:00:00+08:00")
    assert r.status_code == 200 and r.json() == []
    r = client.get(f"{BASE}/requests.json", params={**key, "start_date": "2026-11-02"})
    assert r.status_code == 400 and "give the time zone" in errors_of(r)[0]["description"]
    r = client.get(f"{BASE}/requests.json", params={**key, "status": "pending"})
    assert r.status_code == 400 and errors_of(r)[0]["description"].startswith("status: pending")

    # The standard's default window: the last 90 days.
    clock.advance(days=91)
    assert numbers() == []
    clock.advance(days=-91)

    # A department sees its own tickets only, here as in the rest of the API.
    housing = {"api_key": district.tokens["housing_h"]}
    seen = client.get(f"{BASE}/requests.json", params=housing).json()
    assert [r["service_request_id"] for r in seen] == [first]
    r = client.get(f"{BASE}/requests/{second}.xml", params=housing)
    assert r.status_code == 404 and errors_of(r)[0]["code"] == 404
    root = ElementTree.fromstring(client.get(f"{BASE}/requests/{first}.xml", params=housing).content)
    assert root.tag == "service_requests" and root.find("request/status").text == "open"
    assert root.find("request/zipcode").text is None


@pytest.mark.browser
def test_agent_finds_a_submitted_request_under_awaiting_dispatch_and_dispatches_it(page, server, district):
    from tests.test_pages_smoke import fire_on_page, login

    r = httpx.post(
        f"{server}{BASE}/requests.json",
        data={"service_code": "0101", "description": "楼顶漏水", "address_string": "和平社区3栋"},
        headers=district.headers("agent"),
    )
    number = r.json()[0]["service_request_id"]
    login(page, server, "agent")
    page.click("nav >> text=待派单")
    page.wait_for_load_state()
    assert page.inner_text("nav a.active") == "待派单" and page.inner_text("main h1") == "待派单"
    page.click(f"text={number}")
    page.wait_for_load_state()
    assert "已受理" in page.inner_text("main") and "移动端" in page.inner_text("main")
    fire_on_page(page, "dispatch")
    assert "待签收" in page.inner_text("main")
    (request,) = httpx.get(f"{server}{BASE}/requests/{number}.json", headers=district.headers("housing_h")).json()
    assert (request["agency_responsible"], request["status_notes"]) == ("区住建局", "待签收")


def test_a_control_character_in_a_ticket_does_not_break_the_xml(client, district, runtime):
    # Refused at the door in the standard's form...
    r = submit(client, district, expect=400, description="电梯坏了\x0b请修\x01")
    assert r.status_code == 400 and "U+000B" in r.json()[0]["description"]
    # ...but a ticket stored before that rule (or by another way in) still makes valid XML.
    number = submit(client, district, description="电梯坏了请修").json()[0]["service_request_id"]
    from sqlmodel import select

    from hotline.models import Ticket

    with runtime.db.session() as s:
        ticket = s.exec(select(Ticket).where(Ticket.number == number)).one()
        ticket.content = "电梯坏了\x0b请修\x01"
        s.add(ticket)
    r = client.get(f"{BASE}/requests/{number}.xml", params={"api_key": district.tokens["agent"]})
    root = ElementTree.fromstring(r.content)
    assert root.find("request/description").text == "电梯坏了请修"
    assert (
        client.get(f"{BASE}/requests/{number}.json", headers=district.headers("agent")).json()[0]["description"]
        == "电梯坏了\x0b请修\x01"
    )  # kept as given; only XML, which cannot carry them, leaves them out


def test_access_log_lines_leave_the_api_key_out():
    import logging

    from hotline.main import _REDACT_KEYS

    path = "/open311/v2/requests.json?api_key=hl_secret&status=open"
    args = ("127.0.0.1:5000", "GET", path, "1.1", 200)
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d', args, None)
    assert _REDACT_KEYS.filter(record)
    redacted = "/open311/v2/requests.json?api_key=***&status=open"
    assert record.getMessage() == f'127.0.0.1:5000 - "GET {redacted} HTTP/1.1" 200'


def test_the_navigation_marks_the_entry_of_the_address():
    from hotline.web.render import nav_active

    assert nav_active("agent", "/tickets", "state=registered") == "/tickets?state=registered"
    assert nav_active("agent", "/tickets", "state=archived") == "/tickets"
    assert nav_active("agent", "/tickets/12", "") == "/tickets"
    assert nav_active("supervisor", "/supervisor/reviews", "tab=returns") == "/supervisor/reviews"
    assert nav_active("handler", "/notifications", "") is None


def test_a_wrong_method_answers_in_the_standards_form(client):
    r = client.delete(f"{BASE}/services.xml")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    assert ElementTree.fromstring(r.content).find("error/code").text == "405"


# ---------------------------------------------------------------- public reads


def _public_tickets(client, district):
    """A plain request, a confidential one, and one whose text names its caller."""
    agent = Api(client, district, "agent")
    plain = submit(client, district, description="路灯不亮，联系我 139 1234 5678 或 zhang@example.com").json()[0]
    secret = agent.create(confidential=True, content="举报某单位违规收费")
    named = agent.create(caller_name="李小明", content="我是李小明，电话13987654321，楼道堆物")
    return plain, secret, named


def test_anyone_reads_requests_without_a_key_as_a_citizen_may_see_them(server, client, district):
    """With the georeport client from PyPI, JSON and XML, over real HTTP, without a key."""
    from georeport import GeoReport

    plain, secret, named = _public_tickets(client, district)
    for fmt in ("json", "xml"):
        geo = GeoReport(f"{server}{BASE}", output_format=fmt)
        listed = geo.get_service_requests()
        listed = listed if isinstance(listed, list) else [listed]  # xmltodict: one item is no list
        numbers = [r["service_request_id"] for r in listed]
        assert numbers == [named["number"], plain["service_request_id"]], fmt  # never the confidential one
        text = repr(listed)
        for private in ("13912345678", "139 1234 5678", "zhang@example.com", "李小明", "13987654321", "张三"):
            assert private not in text, (fmt, private)
        one = geo.get_service_request(named["number"])
        assert one["description"] == "我是李**，电话139****4321，楼道堆物"
        assert geo.get_service_request(plain["service_request_id"])["description"] == (
            "路灯不亮，联系我 139****5678 或 ***@***"
        )
        with pytest.raises(Exception, match="404"):
            geo.get_service_request(secret["number"])
    r = httpx.get(f"{server}{BASE}/tokens/{plain['token']}.json")
    assert r.status_code == 200 and r.json()[0]["service_request_id"] == plain["service_request_id"]


def test_a_key_sent_with_a_read_gets_the_callers_own_view(client, district):
    plain, secret, named = _public_tickets(client, district)
    key = {"api_key": district.tokens["agent"]}
    seen = client.get(f"{BASE}/requests.json", params=key).json()
    assert {r["service_request_id"] for r in seen} == {plain["service_request_id"], secret["number"], named["number"]}
    assert (
        client.get(f"{BASE}/requests/{named['number']}.json", params=key)
        .json()[0]["description"]
        .startswith("我是李小明")
    )


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_request_is_a_404_in_the_standards_form(client, district, fmt):
    r = client.get(f"{BASE}/requests/20990101000001.{fmt}")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/xml" if fmt == "xml" else "application/json")
    assert errors_of(r) == [
        {"code": 404, "description": "service_request_id '20990101000001' not found, or not visible to you"}
    ]
    r = client.get(f"{BASE}/tokens/nosuchtoken.{fmt}")
    assert r.status_code == 404 and errors_of(r)[0]["code"] == 404


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_district_can_turn_public_reads_off(client, runtime, district, fmt):
    plain = submit(client, district).json()[0]
    runtime.settings = runtime.settings.model_copy(update={"open311_public_reads": False})
    for path in ("requests", f"requests/{plain['service_request_id']}", f"tokens/{plain['token']}"):
        r = client.get(f"{BASE}/{path}.{fmt}")
        assert r.status_code == 403, path
        assert errors_of(r)[0]["description"].startswith("this district does not publish service requests")
        assert client.get(f"{BASE}/{path}.{fmt}", params={"api_key": district.tokens["agent"]}).status_code == 200
    assert client.get(f"{BASE}/services.{fmt}").status_code == 200  # the catalogue stays public

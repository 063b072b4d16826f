"""Routing by responsibility (按责转办): the most specific rule wins, then the category default."""

import pytest

from hotline.directory import create_category, create_rule
from hotline.errors import Invalid
from hotline.routing import route
from tests.helpers import Api
from tests.test_pages_agent import places  # noqa: F401  (a fixture)


def _route(runtime, category: str | None, street: str | None = None, community: str | None = None) -> str:
    from hotline.directory import category_by_code

    with runtime.db.read_session() as s:
        cat = category_by_code(s, category) if category else None
        return route(s, category_id=cat.id if cat else None, street=street, community=community).department.code


def test_category_default_when_no_rule_matches(runtime, district):
    assert _route(runtime, "0101", "西城街道") == "housing"


def test_default_is_inherited_down_the_category_tree(runtime, district):
    assert _route(runtime, "0201") == "market"  # 食品安全 has no default; 市场监管 has


def test_street_rule_beats_category_default(runtime, district):
    assert _route(runtime, "0102", "东城街道") == "street_a"
    assert _route(runtime, "0102", "西城街道") == "urban"


def test_most_specific_rule_wins(runtime, district):
    with runtime.db.session() as s:
        create_rule(s, department="market", category="0102", street="东城街道", community="幸福社区")
        create_rule(s, department="water", category="01", street="东城街道", community="幸福社区")
    # Same category: the community rule beats the street rule.
    assert _route(runtime, "0102", "东城街道", "幸福社区") == "market"
    assert _route(runtime, "0102", "东城街道", "光明社区") == "street_a"
    # A rule on the category itself beats one on its parent, even a parent's community rule.
    assert _route(runtime, "0101", "东城街道", "幸福社区") == "water"


def test_higher_priority_breaks_a_tie(runtime, district):
    with runtime.db.session() as s:
        create_rule(s, department="market", category="09", street="南城街道")
        create_rule(s, department="water", category="09", street="南城街道", priority=5)
    assert _route(runtime, "09", "南城街道") == "water"


def test_no_match_is_422_naming_the_category_and_place(runtime, district, client):
    with pytest.raises(Invalid) as err:
        _route(runtime, "09", "西城街道", "和平社区")
    assert "09" in err.value.message and "西城街道/和平社区" in err.value.message
    agent = Api(client, district, "agent")
    tid = agent.create(category="09")["id"]
    r = agent.fire(tid, "dispatch", expect=422)
    assert r["field"] == "department" and "其他" in r["detail"]
    assert agent.get(f"/tickets/{tid}")["state"] == "registered"  # nothing lost, nothing moved


def test_given_department_overrides_routing(client, district):
    agent = Api(client, district, "agent")
    tid = agent.create()["id"]
    assert agent.fire(tid, "dispatch", department="water")["department"] == "water"


def test_inactive_department_is_skipped(runtime, district):
    from sqlmodel import select

    from hotline.models import Department

    with runtime.db.session() as s:
        create_category(s, runtime, code="0103", name="老旧小区改造", parent="01", department="market")
        s.exec(select(Department).where(Department.code == "market")).one().active = False
    # Falls back to the parent's... which has none: no route.
    with pytest.raises(Invalid):
        _route(runtime, "0103")


def test_category_path_runs_from_the_root_and_ends_at_a_loop_or_a_missing_parent():
    from types import SimpleNamespace

    from hotline.directory import category_path

    def tree(**parents: int | None) -> dict:
        return {int(k[1:]): SimpleNamespace(id=int(k[1:]), parent_id=v) for k, v in parents.items()}

    cats = tree(c1=None, c2=1, c3=2)
    assert [c.id for c in category_path(3, cats.get)] == [1, 2, 3]
    assert category_path(None, cats.get) == []
    assert [c.id for c in category_path(3, tree(c2=9, c3=2).get)] == [2, 3]  # the parent 9 is gone
    assert [c.id for c in category_path(3, tree(c1=3, c2=1, c3=2).get)] == [1, 2, 3]  # 1's parent is 3 again


@pytest.mark.usefixtures("places")
def test_a_rule_names_a_place_the_district_lists_and_a_small_priority(client, district):
    """Once the district lists its places, a rule's street and community are among them (as a
    ticket's are), and its priority is a small whole number: each refused naming the field,
    on the API and on the rules page, whose form comes back as typed."""
    from tests.helpers import sign_in

    admin = Api(client, district, "admin")
    r = admin.post("/routing-rules", {"department": "urban", "street": "不存在街道"}, 422)
    assert r["field"] == "street" and r["zh"] == "请从列表中选择街道"
    r = admin.post("/routing-rules", {"department": "urban", "street": "西城街道", "community": "月亮社区"}, 422)
    assert r["field"] == "community"
    admin.post("/routing-rules", {"department": "urban", "street": "西城街道", "priority": 10**6}, 422)
    rule = admin.post("/routing-rules", {"department": "urban", "street": "西城街道", "community": "光明社区"}, 201)
    r = client.patch(f"/api/v1/routing-rules/{rule['id']}", headers=admin.headers, json={"street": "东城"})
    assert r.status_code == 422
    sign_in(client, "admin")
    form = client.get("/admin/rules").text
    token = form.split('name="csrf_token" value="')[1].split('"')[0]
    page = client.post(
        "/admin/rules",
        data={"csrf_token": token, "department": "urban", "place": "西城街道", "priority": "9" * 20},
    )
    assert page.status_code == 422 and "优先级应为 -9999 到 9999 之间的整数" in page.text and "9" * 20 in page.text
    page = client.post("/admin/rules", data={"csrf_token": token, "department": "urban", "place": "不存在街道"})
    assert page.status_code == 422 and "请从列表中选择街道" in page.text


def test_the_routing_test_says_when_only_deactivated_departments_were_found(client, district, runtime):
    """The admin's routing test, when the rule or default that matches names a deactivated
    department, says so (not "no rule matches")."""
    from hotline.directory import update_department
    from tests.helpers import sign_in

    with runtime.db.session() as s:
        create_rule(s, department="market", category="09")
        update_department(s, "market", active=False)
    sign_in(client, "admin")
    page = client.get("/admin/rules", params={"test_category": "09", "test_place": ""}).text
    assert "匹配的派单规则或分类默认承办单位已停用或为社区（区市场监管局）" in page
    with runtime.db.session() as s:
        update_department(s, "market", active=True)
    page = client.get("/admin/rules", params={"test_category": "09", "test_place": ""}).text
    assert "默认承办单位已停用" not in page and "命中派单规则" in page


@pytest.mark.usefixtures("places")
def test_a_rule_made_before_the_place_list_keeps_its_place_when_changed_otherwise(client, district, runtime):
    from hotline.directory import department_by_code
    from hotline.models import RoutingRule
    from tests.helpers import sign_in

    with runtime.db.session() as s:  # as an older version allowed
        rule = RoutingRule(street="旧街道", department_id=department_by_code(s, "urban").id)
        s.add(rule)
        s.flush()
        rule_id = rule.id
    admin = Api(client, district, "admin")
    r = client.patch(f"/api/v1/routing-rules/{rule_id}", headers=admin.headers, json={"priority": 3})
    assert r.status_code == 200 and r.json()["priority"] == 3
    sign_in(client, "admin")
    token = client.get("/admin/rules").text.split('name="csrf_token" value="')[1].split('"')[0]
    data = {"csrf_token": token, "department": "urban", "place": "旧街道", "priority": "4"}
    assert client.post(f"/admin/rules/{rule_id}/edit", data=data, follow_redirects=False).status_code == 303
    r = client.patch(f"/api/v1/routing-rules/{rule_id}", headers=admin.headers, json={"street": "另一个旧街道"})
    assert r.status_code == 422

"""Administrators keep the communities (社区) of the street offices (二级派单): on the admin
departments page and through the API, created under a street, renamed, deactivated, listed per
street; a community's parent is an active street office, one level only; every change audited."""

import re

from sqlmodel import select

from hotline.models import AuditRecord, Department
from tests.communities import add_communities
from tests.helpers import Api, sign_in


def token_of(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/admin/departments").text).group(1)


def audited(runtime, code: str) -> list[tuple[str, dict | None]]:
    with runtime.db.read_session() as s:
        rows = s.exec(select(AuditRecord).where(AuditRecord.target_type == "department").order_by(AuditRecord.id)).all()
    return [(r.action, r.after) for r in rows if r.target_label and r.target_label.startswith(f"{code} ")]


def test_the_admin_creates_renames_and_deactivates_a_community_on_the_page(client, district, runtime):
    add_communities(runtime, district)
    sign_in(client, "admin")
    page = client.get("/admin/departments").text
    section = page[page.index('id="communities"') :]
    # Listed per street office, apart from the units the centre dispatches to.
    east = section[section.index('data-street="street_a"') :]
    east = east[: east.index("</table>")]
    assert "东湖社区居委会" in east and "东岸社区居委会" in east and "西苑社区居委会" not in east
    units = page[page.index('id="departments"') : page.index('id="communities"')]
    assert "东湖社区居委会" not in units
    token = token_of(client)

    new = {"csrf_token": token, "parent": "street_a", "code": "east_3", "name": "东山社区居委会"}
    r = client.post("/admin/departments", data=new, follow_redirects=False)
    assert r.status_code == 303
    assert "已在东城街道办事处下新建社区：东山社区居委会（east_3）" in client.get("/admin/departments").text
    with runtime.db.read_session() as s:
        east_3 = s.exec(select(Department).where(Department.code == "east_3")).one()
        street_a = s.exec(select(Department).where(Department.code == "street_a")).one()
    assert east_3.parent_id == street_a.id

    # Not under a community, nor under an unknown department: 422 naming the field, what was typed kept.
    r = client.post("/admin/departments", data={**new, "code": "east_4", "parent": "east_1"})
    assert r.status_code == 422 and "本身是社区" in r.text and 'value="east_4"' in r.text
    r = client.post("/admin/departments", data={**new, "code": "east_4", "parent": "nowhere"})
    assert r.status_code == 422
    with runtime.db.read_session() as s:
        assert s.exec(select(Department).where(Department.code == "east_4")).first() is None

    # Renamed; a blank name is refused.
    path = f"/admin/departments/{east_3.id}/rename"
    r = client.post(path, data={"csrf_token": token, "name": " "})
    assert r.status_code == 422 and "请填写名称" in r.text
    r = client.post(path, data={"csrf_token": token, "name": "东山社区"}, follow_redirects=False)
    assert r.status_code == 303
    assert "已将“东山社区居委会”更名为“东山社区”" in client.get("/admin/departments").text
    assert client.post("/admin/departments/999999/rename", data={"csrf_token": token, "name": "x"}).status_code == 404
    # A department the centre dispatches to is renamed on its row too (a typo is mended); not
    # to another unit's name, and the form comes back as typed.
    with runtime.db.read_session() as s:
        urban = s.exec(select(Department).where(Department.code == "urban")).one()
    path = f"/admin/departments/{urban.id}/rename"
    r = client.post(path, data={"csrf_token": token, "name": "区住建局"})
    assert r.status_code == 409 and "已有在用的单位名为“区住建局”" in r.text and 'value="区住建局"' in r.text
    r = client.post(path, data={"csrf_token": token, "name": "区城市管理局"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/departments")
    assert "已将“区城管局”更名为“区城市管理局”" in client.get("/admin/departments").text
    # Deactivated: the street can no longer pass it tickets.
    r = client.post(f"/admin/departments/{east_3.id}/deactivate", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    with runtime.db.read_session() as s:
        assert s.get(Department, east_3.id).active is False
    # Without the form's token, or as anyone but an administrator: refused.
    assert client.post(path, data={"name": "伪造"}).status_code == 403
    client.cookies.clear()
    sign_in(client, "street_a_l")
    assert client.post(path, data={"csrf_token": token, "name": "伪造"}).status_code == 403
    with runtime.db.read_session() as s:
        assert s.get(Department, east_3.id).name == "东山社区"
    # Every change in the audit trail.
    assert [action for action, _ in audited(runtime, "east_3")] == [
        "department.create",
        "department.update",
        "department.update",
    ]


def test_the_api_manages_communities_with_the_same_rules(client, district, runtime):
    add_communities(runtime, district)
    admin = Api(client, district, "admin")
    created = admin.post("/departments", {"code": "west_2", "name": "西河社区", "parent": "street_b"}, 201)
    assert created["parent"] == "street_b"
    # Renamed and moved to another street office; then no longer a community.
    r = admin.client.patch("/api/v1/departments/west_2", headers=admin.headers, json={"name": "西河社区居委会"})
    assert r.status_code == 200 and (r.json()["name"], r.json()["parent"]) == ("西河社区居委会", "street_b")
    r = admin.client.patch("/api/v1/departments/west_2", headers=admin.headers, json={"parent": "street_a"})
    assert r.json()["parent"] == "street_a"
    listed = {d["code"]: d["parent"] for d in admin.get("/departments")}
    assert (listed["west_2"], listed["east_1"], listed["street_a"]) == ("street_a", "street_a", None)

    def refused(code: str, body: dict, status: int = 422) -> dict:
        r = admin.client.patch(f"/api/v1/departments/{code}", headers=admin.headers, json=body)
        assert r.status_code == status, r.text
        return r.json()

    # A community's parent is a street office: not a community, not itself, not a street with
    # communities of its own (no cycle, one level only), not a deactivated one.
    assert refused("west_2", {"parent": "east_1"})["field"] == "parent"
    assert refused("street_a", {"parent": "street_a"})["field"] == "parent"
    r = refused("street_a", {"parent": "street_b"})
    assert r["field"] == "parent" and "communities of its own" in r["detail"]
    admin.client.patch("/api/v1/departments/housing", headers=admin.headers, json={"active": False})
    assert "deactivated" in refused("west_2", {"parent": "housing"})["detail"]
    assert refused("west_2", {"parent": "nowhere"})["field"] == "parent"
    assert refused("west_2", {"name": ""})["field"] == "name"
    refused("nowhere", {"name": "x"}, 404)
    assert admin.post("/departments", {"code": "x_1", "name": "x", "parent": "east_1"}, 422)["field"] == "parent"
    # Administrators only.
    r = client.patch("/api/v1/departments/west_2", headers=district.headers("street_a_l"), json={"name": "x"})
    assert r.status_code == 403
    # Deactivated: no longer offered to its street office.
    assert refused("west_2", {"active": False}, 200)["active"] is False
    assert refused("west_2", {"parent": None}, 200)["parent"] is None


def test_the_departments_facts_count_the_units_listed_and_the_communities_apart(client, district, runtime):
    """The figures at the top of the page are of the units the list shows (the centre's); the
    communities are counted on their own, never as units switched off."""
    add_communities(runtime, district)
    sign_in(client, "admin")
    page = client.get("/admin/departments").text
    facts = dict(
        (label, int(number))
        for number, label in re.findall(r'<div class="fact[^"]*"><b>(-?\d+)</b><span>([^<]+)</span>', page)
    )
    with runtime.db.read_session() as s:
        departments = s.exec(select(Department)).all()
    units = [d for d in departments if d.parent_id is None]
    listed = int(re.search(r"共 (\d+) 个", page).group(1))
    assert listed == len(units)
    assert facts["启用中"] + facts["已停用"] == listed and facts["已停用"] == 0
    assert facts["缺信用代码"] == sum(1 for d in units if d.active and not d.org_code)
    assert facts["社区（二级派单）"] == len(departments) - len(units) == 3


def test_no_two_units_in_use_share_a_code_in_any_case_or_a_name(client, district, runtime):
    """The lists show units by name: two in use the centre dispatches to never share one, nor
    two communities of one street; a code differs in more than case. A unit re-formed under a
    new code may keep a deactivated one's name."""
    add_communities(runtime, district)
    admin = Api(client, district, "admin")
    r = admin.post("/departments", {"code": "HOUSING", "name": "区住房保障中心"}, 409)
    assert r["zh"] == "单位编码“HOUSING”已被使用（与“区住建局”的编码“housing”仅大小写不同）"
    r = admin.post("/departments", {"code": "housing2", "name": "区住建局"}, 409)
    assert r["zh"] == "已有在用的单位名为“区住建局”（编码 housing），请换一个名称"
    r = admin.client.patch("/api/v1/departments/urban", headers=admin.headers, json={"name": "区住建局"})
    assert r.status_code == 409
    # Communities of two streets may share a name; two of one street may not.
    admin.post("/departments", {"code": "west_9", "name": "东湖社区居委会", "parent": "street_b"}, 201)
    admin.post("/departments", {"code": "east_9", "name": "东湖社区居委会", "parent": "street_a"}, 409)
    # Re-formed: the old one deactivated, the new one takes its name; the old one cannot come back beside it.
    admin.client.patch("/api/v1/departments/housing", headers=admin.headers, json={"active": False})
    admin.post("/departments", {"code": "housing2", "name": "区住建局"}, 201)
    r = admin.client.patch("/api/v1/departments/housing", headers=admin.headers, json={"active": True})
    assert r.status_code == 409 and "housing2" in r.json()["zh"]


def test_deactivating_a_street_office_says_its_communities_stay_in_use(client, district, runtime):
    add_communities(runtime, district)
    sign_in(client, "admin")
    page = client.get("/admin/departments").text
    row = page[page.index('<tr data-code="street_a"') :]
    row = row[: row.index("</tr>")]
    assert "其下辖的 2 个社区仍为启用" in row
    row = page[page.index('<tr data-code="housing"') :]
    assert "社区仍为启用" not in row[: row.index("</tr>")]


def test_units_that_shared_a_name_before_the_rule_can_still_be_changed(client, district, runtime):
    """Two units in use named alike from before: a change that leaves the name, street and
    switch as they are goes through; the page's 重新启用 refuses a name in use, as the API does."""
    from hotline.db import utcnow

    admin = Api(client, district, "admin")
    with runtime.db.session() as s:  # as an older version allowed
        s.add(Department(code="housing_old", name="区住建局", created_at=utcnow()))
    r = admin.client.patch("/api/v1/departments/housing", headers=admin.headers, json={"parent": None})
    assert r.status_code == 200
    admin.client.patch("/api/v1/departments/housing_old", headers=admin.headers, json={"active": False})
    token = sign_in(client, "admin")
    assert token is not None
    page = client.get("/admin/departments").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    with runtime.db.read_session() as s:
        old = s.exec(select(Department).where(Department.code == "housing_old")).one()
    r = client.post(f"/admin/departments/{old.id}/reactivate", data={"csrf_token": csrf})
    assert r.status_code == 409 and "已有在用的单位名为“区住建局”" in r.text

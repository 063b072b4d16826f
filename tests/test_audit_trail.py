"""The security audit trail (安全审计): sign-ins and administrative changes are recorded with
who, from where, what, before and after, in the transaction of the change, in one hash chain
that `hotline audit verify` checks (SQLite and PostgreSQL)."""

import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import text
from sqlmodel import select

from hotline import audit_log, directory
from hotline.models import AuditHead, AuditRecord, Department
from tests.helpers import PASSWORD, Api, sign_in

NEW_PASSWORD = "Spring-river-2026"


def _records(runtime, after: int = 0, **where) -> list[AuditRecord]:
    with runtime.db.read_session() as s:
        query = select(AuditRecord).where(AuditRecord.id > after).order_by(AuditRecord.id)
        for column, value in where.items():
            query = query.where(getattr(AuditRecord, column) == value)
        return list(s.exec(query).all())


def _last_id(runtime) -> int:
    rows = _records(runtime)
    return rows[-1].id if rows else 0


def _verify(runtime):
    with runtime.db.read_session() as s:
        return audit_log.verify(s, batch=3)  # small pages: the paging is checked too


def _one(runtime, after: int, action: str) -> AuditRecord:
    rows = _records(runtime, after, action=action)
    assert len(rows) == 1, [(r.action, r.target_label) for r in _records(runtime, after)]
    return rows[0]


def _cli_verify(database) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOTLINE_DATABASE_URL": database.url}
    return subprocess.run(
        [sys.executable, "-m", "hotline", "audit", "verify"], capture_output=True, text=True, env=env, timeout=120
    )


def _csrf(client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/notifications").text).group(1)


# ------------------------------------------------------------------------- the API


def test_each_administrative_call_of_the_api_leaves_one_record_with_before_and_after(client, district, runtime):
    admin = Api(client, district, "admin")
    start = _last_id(runtime)
    admin.post("/departments", {"code": "civil", "name": "区民政局"}, 201)
    r = _one(runtime, start, "department.create")
    assert (r.actor_name, r.actor_role, r.actor_id) == ("admin", "admin", district.user_ids["admin"])
    assert r.address == "testclient" and r.outcome == "ok" and r.before is None
    assert r.after == {"code": "civil", "name": "区民政局", "active": True}
    assert r.target_type == "department" and r.target_label == "civil 区民政局"

    at = _last_id(runtime)
    admin.post("/categories", {"code": "0301", "name": "停水", "parent": "03"}, 201)
    r = client.patch("/api/v1/categories/0301", headers=admin.headers, json={"name": "计划停水", "department": "water"})
    assert r.status_code == 200, r.text
    update = _one(runtime, at, "category.update")
    water = client.get("/api/v1/departments", headers=admin.headers).json()
    water_id = next(d["id"] for d in water if d["code"] == "water")
    assert update.before == {"name": "停水", "department_id": None}
    assert update.after == {"name": "计划停水", "department_id": water_id}
    assert client.delete("/api/v1/categories/0301", headers=admin.headers).status_code == 204
    deleted = _one(runtime, at, "category.delete")
    assert deleted.before["code"] == "0301" and deleted.after is None

    at = _last_id(runtime)
    rule = admin.post("/routing-rules", {"department": "urban", "category": "0102", "street": "西城街道"}, 201)
    client.patch(f"/api/v1/routing-rules/{rule['id']}", headers=admin.headers, json={"priority": 5})
    assert _one(runtime, at, "routing_rule.update").after == {"priority": 5}
    assert _one(runtime, at, "routing_rule.create").target_id == str(rule["id"])

    at = _last_id(runtime)
    admin.post("/users", {"username": "clerk", "role": "agent", "password": NEW_PASSWORD}, 201)
    created = _one(runtime, at, "user.create")
    assert created.after["password_hash"] == "set" and created.after["role"] == "agent"
    assert NEW_PASSWORD not in json.dumps([r.after for r in _records(runtime, at)], ensure_ascii=False)
    # Reading changes nothing and records nothing.
    at = _last_id(runtime)
    admin.get("/users")
    assert _records(runtime, at) == []
    assert _verify(runtime)[1] is None


def test_subscriptions_the_calendar_and_articles_are_recorded_and_secrets_never(client, district, runtime):
    admin = Api(client, district, "admin")
    start = _last_id(runtime)
    sub = admin.post(
        "/subscriptions", {"name": "区住建局系统", "url": "http://127.0.0.1:9/hook", "topics": ["ticket.created"]}, 201
    )
    rotated = admin.post(f"/subscriptions/{sub['id']}/rotate", {"grace_hours": 1})
    created = _one(runtime, start, "subscription.create")
    assert created.after["secret"] == "set" and created.target_label == "区住建局系统"
    rotation = _one(runtime, start, "subscription.update")
    assert rotation.after["secret"] == "changed" and rotation.before["secret"] == "(secret)"
    trail = json.dumps([[r.before, r.after] for r in _records(runtime, start)], ensure_ascii=False)
    assert sub["secret"] not in trail and rotated["secret"] not in trail

    at = _last_id(runtime)
    days = [{"date": "2030-10-01", "kind": "holiday", "name": "国庆节"}, {"date": "2030-10-12", "kind": "workday"}]
    r = client.put("/api/v1/calendar/2030", headers=admin.headers, json={"days": days})
    assert r.status_code == 200, r.text
    calendar = _one(runtime, at, "calendar_day.update")
    assert calendar.after == {
        "2030-10-01": {"day": "2030-10-01", "working": False, "name": "国庆节"},
        "2030-10-12": {"day": "2030-10-12", "working": True},
    }
    assert _one(runtime, at, "calendar_year.create").target_label == "2030"

    at = _last_id(runtime)
    body = {"title": "企业注销办事指南", "body": "正文", "category": "市场监管/企业登记", "department": "market"}
    made = Api(client, district, "editor").post("/knowledge/articles", {**body, "kind": "办事指南"}, 201)
    article = _one(runtime, at, "article.create")
    assert (article.actor_name, article.target_id, article.after["title"]) == ("editor", str(made["id"]), body["title"])
    assert _verify(runtime)[1] is None


def test_a_refused_change_leaves_no_record(client, district, runtime):
    admin = Api(client, district, "admin")
    start = _last_id(runtime)
    admin.post("/departments", {"code": "housing", "name": "重复"}, 409)
    # A category in use cannot be deleted: the transaction rolls back, its record with it.
    assert client.delete("/api/v1/categories/01", headers=admin.headers).status_code == 409
    assert _records(runtime, start) == []


def test_a_savepoint_rolled_back_takes_its_records_with_it(runtime):
    """A change inside a savepoint that rolls back (an import skipping a bad row) leaves no
    record, and the records after it still chain."""
    start = _last_id(runtime)
    now = runtime.now()
    with runtime.db.session() as s:
        directory.create_department(s, code="kept1", name="甲", now=now)
        with contextlib.suppress(RuntimeError), s.begin_nested():
            directory.create_department(s, code="gone", name="乙", now=now)
            audit_log.record(s, "user.unlock", target_type="user", target_label="gone")
            raise RuntimeError
        with s.begin_nested():
            directory.create_department(s, code="kept2", name="丙", now=now)
    assert [r.target_label for r in _records(runtime, start)] == ["kept1 甲", "kept2 丙"]
    assert _verify(runtime)[1] is None


def test_the_api_read_is_for_administrators_only(client, district, runtime):
    admin = Api(client, district, "admin")
    admin.post("/departments", {"code": "civil", "name": "区民政局"}, 201)
    for name in ("supervisor", "agent", "housing_h", "editor"):
        Api(client, district, name).get("/audit", 403)
    assert client.get("/api/v1/audit").status_code == 401
    page = admin.get("/audit", kind="department", target="civil")
    assert page["total"] == 1
    item = page["items"][0]
    assert item["action"] == "department.create" and item["actor"]["name"] == "admin"
    assert item["target"] == {"type": "department", "id": item["target"]["id"], "label": "civil 区民政局"}
    admin.get("/audit", 422, kind="nonsense")
    admin.get("/audit", 422, page_size=1000)


# ------------------------------------------------------------------------- the pages


def test_the_pages_record_changes_sessions_ended_and_passwords_reset(client, district, runtime):
    assert sign_in(client, "admin").status_code == 303
    token = _csrf(client)
    start = _last_id(runtime)
    r = client.post(
        "/admin/departments", data={"code": "civil", "name": "区民政局", "csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    created = _one(runtime, start, "department.create")
    assert created.actor_name == "admin" and created.address == "testclient"

    agent = district.user_ids["agent"]
    r = client.post(
        f"/admin/users/{agent}/password",
        data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    reset = _one(runtime, start, "user.reset_password")
    assert reset.before == {"password_hash": "(secret)", "must_change_password": False}
    assert reset.after == {"password_hash": "changed", "must_change_password": True}
    assert reset.target_label == "agent"

    client.post(f"/admin/users/{agent}/sessions/end", data={"csrf_token": token})
    assert _one(runtime, start, "user.end_sessions").after == {"ended": 0}
    client.post(f"/admin/users/{agent}/deactivate", data={"csrf_token": token})
    assert _one(runtime, start, "user.deactivate").after == {"active": False}

    form = {"name": "示范区", "region_code": "330102000000", "csrf_token": token}
    r = client.post("/admin/district", data=form, follow_redirects=False)
    assert r.status_code == 303
    district_row = _one(runtime, start, "district.update")
    assert district_row.after == {"name": "示范区", "region_code": "330102000000"}
    assert all(r.actor_name == "admin" for r in _records(runtime, start))
    assert _verify(runtime)[1] is None


def test_sign_ins_failures_throttling_sign_outs_and_password_changes_are_recorded(client, district, runtime):
    start = _last_id(runtime)
    assert sign_in(client, "agent").status_code == 303
    ok = _one(runtime, start, "login")
    assert (ok.actor_name, ok.outcome, ok.address, ok.target_id) == (
        "agent",
        "ok",
        "testclient",
        str(district.user_ids["agent"]),
    )

    at = _last_id(runtime)
    token = _csrf(client)
    client.post("/logout", data={"csrf_token": token})
    assert _one(runtime, at, "logout").actor_name == "agent"

    at = _last_id(runtime)
    assert sign_in(client, "agent", "Wrong-password-1").status_code == 401
    assert sign_in(client, "no_such_user", "Wrong-password-1").status_code == 401
    failed = _records(runtime, at, action="login")
    assert [r.outcome for r in failed] == ["failed", "failed"]
    assert failed[0].actor_name == "agent" and failed[0].address == "testclient"
    assert failed[1].actor_name == "no_such_user"
    # Three free failures for an account, then a wait: the attempt inside it is refused, recorded.
    # (a slow hash may outlast the first, one-second wait: the waits grow until one refuses)
    codes = [sign_in(client, "agent", "Wrong-password-1").status_code for _ in range(6)]
    assert 429 in codes
    assert [r.outcome for r in _records(runtime, at, action="login")][-1] == "refused"
    trail = json.dumps([[r.before, r.after, r.target_label] for r in _records(runtime)], ensure_ascii=False)
    assert "Wrong-password-1" not in trail and PASSWORD not in trail

    at = _last_id(runtime)
    sign_in(client, "supervisor")
    token = _csrf(client)
    form = {"old_password": "not-it", "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": token}
    assert client.post("/password", data=form).status_code == 422
    assert _one(runtime, at, "user.change_password").outcome == "failed"
    assert client.post("/password", data={**form, "old_password": PASSWORD}, follow_redirects=False).status_code == 303
    changes = _records(runtime, at, action="user.change_password")
    assert [c.outcome for c in changes] == ["failed", "ok"]
    assert changes[1].after == {"password_hash": "changed"} and changes[1].actor_name == "supervisor"
    assert _verify(runtime)[1] is None


def test_the_page_filters_pages_and_exports_and_refuses_everyone_but_admins(client, district, runtime):
    admin = Api(client, district, "admin")
    for i in range(3):
        admin.post("/departments", {"code": f"d{i}", "name": f'=HYPERLINK("x")单位{i}'}, 201)
    sign_in(client, "agent", "Wrong-password-1")
    for name in ("supervisor", "housing_h", "editor"):
        sign_in(client, name)
        assert client.get("/admin/audit").status_code == 403
        assert client.get("/admin/audit/export").status_code == 403
    client.cookies.clear()
    assert client.get("/admin/audit", follow_redirects=False).status_code in (303, 307)

    sign_in(client, "admin")
    page = client.get("/admin/audit", params={"kind": "department", "target": "d1"})
    assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
    assert page.text.count('data-record="') == 1 and "单位新建" in page.text
    failures = client.get("/admin/audit", params={"kind": "login", "outcome": "failed"}).text
    assert failures.count('data-record="') == 1 and "失败" in failures
    by_actor = client.get("/admin/audit", params={"actor": "ADMIN", "kind": "department"}).text
    assert by_actor.count('data-record="') == 3
    assert (
        client.get("/admin/audit", params={"since": "2000-01-01", "until": "2000-01-02"}).text.count('data-record="')
        == 0
    )
    assert client.get("/admin/audit", params={"since": "2026-13-40"}).status_code == 422
    assert client.get("/admin/audit", params={"outcome": "maybe"}).status_code == 422

    export = client.get("/admin/audit/export", params={"kind": "department", "actor": "admin"})
    assert export.status_code == 200 and export.headers["cache-control"] == "no-store"
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["时间", "操作人", "角色", "地址", "操作"]
    assert len(rows) == 4 and all(r[1] == "admin" for r in rows[1:])
    # A name that a spreadsheet would take for a formula stays text.
    assert all(not cell.startswith("=") for row in rows for cell in row)
    xlsx = client.get("/admin/audit/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


# ------------------------------------------------------------------------- the chain


def _some_records(client, district, n: int = 5) -> None:
    admin = Api(client, district, "admin")
    for i in range(n):
        admin.post("/departments", {"code": f"c{i}", "name": f"单位{i}"}, 201)


def test_a_changed_record_is_named_by_verify_and_the_command(client, district, runtime, database):
    _some_records(client, district)
    checked, broken = _verify(runtime)
    assert broken is None and checked == len(_records(runtime))
    victim = _records(runtime, action="department.create")[2]
    with runtime.db.session() as s:
        s.execute(text("UPDATE audit_records SET actor_name = 'someone_else' WHERE id = :id"), {"id": victim.id})
    assert _verify(runtime)[1].row_id == victim.id
    done = _cli_verify(database)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"audit trail: chain broken after {victim.id - 1:,} good rows: audit record {victim.id} does not match" in (
        done.stderr
    )


def test_a_removed_record_is_found_in_the_middle_and_at_the_end(client, district, runtime, database):
    _some_records(client, district)
    rows = _records(runtime)
    with runtime.db.session() as s:
        s.execute(text("DELETE FROM audit_records WHERE id = :id"), {"id": rows[-1].id})
    broken = _verify(runtime)[1]
    assert broken is not None and broken.row_id is None and "end does not match its head" in str(broken)
    with runtime.db.session() as s:
        s.execute(text("DELETE FROM audit_records WHERE id = :id"), {"id": rows[3].id})
    assert _verify(runtime)[1].row_id == rows[4].id
    assert _cli_verify(database).returncode == 1


def test_the_command_passes_on_a_sound_trail_and_records_the_command_line(client, district, runtime, database):
    _some_records(client, district, 2)
    env = {**os.environ, "HOTLINE_DATABASE_URL": database.url}
    created = subprocess.run(
        [sys.executable, "-m", "hotline", "users", "create", "night_shift", "--role", "agent"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    made = _records(runtime, action="user.create", target_label="night_shift")
    assert len(made) == 1 and made[0].actor_role == "cli" and made[0].actor_name.startswith("cli:")
    done = _cli_verify(database)
    assert done.returncode == 0, done.stderr
    assert "the audit trail's chain holds" in done.stdout


def test_concurrent_writers_keep_one_linear_chain(server, district, runtime):
    """Departments created at the same moment over real HTTP, and sign-in failures beside
    them: every record is in the chain once, in id order, and the head is the last."""
    start = len(_records(runtime))
    headers = district.headers("admin")

    def create(i: int) -> int:
        with httpx.Client(base_url=server, headers=headers, timeout=60) as c:
            return c.post("/api/v1/departments", json={"code": f"race{i}", "name": f"并发{i}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(create, range(24)))
    assert codes == [201] * 24
    rows = _records(runtime)
    assert len(rows) == start + 24
    checked, broken = _verify(runtime)
    assert broken is None and checked == len(rows)
    with runtime.db.read_session() as s:
        head = s.get(AuditHead, 1)
        assert (head.chain, head.records) == (rows[-1].chain, len(rows))
        assert len(s.exec(select(Department).where(Department.code.startswith("race"))).all()) == 24

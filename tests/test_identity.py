"""Identity (身份鉴别, 等保 level 3): the password policy, the forced change of a password
someone else set, the idle time-out, Secure cookies behind https, administrators ending a
user's sessions, usernames unique whatever their case."""

import re

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError
from sqlmodel import select

from hotline import directory
from hotline.config import Settings
from hotline.db import Database
from hotline.demo.district import DEMO_PASSWORD, INTEGRATIONS
from hotline.errors import Invalid
from hotline.main import create_app
from hotline.migrate import alembic_config
from hotline.models import User, WebSession
from hotline.security import hash_password
from tests.helpers import PASSWORD, Api, sign_in
from tests.test_cli import env, run  # noqa: F401  (env is a fixture)
from tests.test_pages_admin import NEW_PASSWORD, SHOTS, signed_in_as
from tests.test_pages_admin import sign_in as browser_sign_in
from tests.test_pages_smoke import login

ADMIN_SET = "Given-by-the-centre-1"
OWN = "Mine-and-only-mine-7"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _admin_client(client) -> str:
    """Sign the client in as the administrator; the session's CSRF token."""
    assert sign_in(client, "admin").status_code == 303
    return _csrf(client.get("/admin/users").text)


def _user(runtime, username: str) -> User:
    with runtime.db.read_session() as s:
        return s.exec(select(User).where(User.username == username)).one()


def _row(page: str, username: str) -> str:
    """The users page's row of the user (up to the next user's)."""
    return page.split(f'data-user="{username}"')[1].split('data-user="')[0]


def _sessions(runtime, username: str) -> list[WebSession]:
    user = _user(runtime, username)
    with runtime.db.read_session() as s:
        return list(s.exec(select(WebSession).where(WebSession.user_id == user.id).order_by(WebSession.id)).all())


# ---------------------------------------------------------------- the policy


@pytest.mark.parametrize(
    ("password", "english", "chinese"),
    [
        ("Ab1-xyz", "at least 10 characters", "密码至少需要 10 个字符"),
        ("abcdefghij1", "three of", "至少三类"),  # lower and digits: two kinds
        ("ABCDEFGHIJ-", "three of", "至少三类"),  # upper and others
        ("abcdefghijKLM", "three of", "至少三类"),  # lower and upper
        ("x-WANG.li-2026", "must not contain the username", "密码不得包含用户名"),  # in another case
        ("A" * 200 + "b1-" * 20, "at most 256", "不能超过 256"),
    ],
)
def test_each_rule_of_the_policy_refuses_in_english_and_in_chinese(password, english, chinese):
    with pytest.raises(Invalid) as caught:
        directory.check_password_policy(password, "wang.li")
    assert caught.value.field == "password" and english in caught.value.message
    assert chinese in caught.value.extra["zh"]


@pytest.mark.parametrize("password", ["abcdefgh1-", "ABCDEFGH1-", "Abcdefghi1", "Abcdefghi-", "长城长城长城长城A1"])
def test_three_kinds_of_ten_characters_pass(password):
    directory.check_password_policy(password, "wang.li")


def test_the_demo_password_and_generated_ones_meet_the_policy():
    for username in ("admin", "agent1", "supervisor1", "editor1", "cgj.handler", *INTEGRATIONS):
        directory.check_password_policy(DEMO_PASSWORD, username)
    for _ in range(50):
        directory.check_password_policy(directory.generate_password(), "admin")


def test_the_api_refuses_a_weak_password_with_422_naming_the_field(client, district):
    admin = Api(client, district, "admin")
    body = {"username": "wang.li", "role": "agent"}
    for weak, words in (("short-1A", "at least 10"), ("lowercase-only", "three of"), ("Wang.Li-2026", "username")):
        refused = admin.post("/users", {**body, "password": weak}, 422)
        assert refused["field"] == "password" and words in refused["detail"], refused
    made = admin.post("/users", {**body, "password": ADMIN_SET}, 201)
    assert made["username"] == "wang.li"


def test_the_users_page_says_which_rule_a_password_breaks(client, district, runtime):
    token = _admin_client(client)
    form = {"csrf_token": token, "username": "wang.li", "role": "agent", "password_confirm": "x"}
    r = client.post("/admin/users", data={**form, "password": "abcdefghijk", "password_confirm": "abcdefghijk"})
    assert r.status_code == 422 and "密码须包含小写字母、大写字母、数字、其他符号中的至少三类" in r.text
    r = client.post("/admin/users", data={**form, "password": "Wang.li-2026", "password_confirm": "Wang.li-2026"})
    assert r.status_code == 422 and "密码不得包含用户名" in r.text
    # Reset: the rule, by the user's own name.
    agent_id = _user(runtime, "agent").id
    r = client.post(
        f"/admin/users/{agent_id}/password",
        data={"csrf_token": token, "password": "Agent-2026-x", "password_confirm": "Agent-2026-x"},
    )
    assert r.status_code == 422 and "密码不得包含用户名" in r.text
    r = client.post(
        f"/admin/users/{agent_id}/password", data={"csrf_token": token, "password": "Short1-", "password_confirm": ""}
    )
    assert r.status_code == 422 and "密码至少需要 10 个字符" in r.text
    assert "至少 10 个字符，包含小写字母、大写字母、数字、其他符号中的至少三类" in client.get("/admin/users").text


def test_an_old_password_that_predates_the_policy_still_signs_in(client, district, runtime):
    with runtime.db.session() as s:
        s.add(User(username="old.timer", role="agent", password_hash=hash_password("short"), created_at=runtime.now()))
    r = sign_in(client, "old.timer", "short")
    assert r.status_code == 303 and r.headers["location"] == "/agent/intake"


# ---------------------------------------------------------------- the forced change


def test_a_password_an_administrator_set_must_be_changed_before_anything_else(client, district, runtime):
    admin = Api(client, district, "admin")
    admin.post("/users", {"username": "wang.li", "role": "agent", "password": ADMIN_SET}, 201)
    assert _user(runtime, "wang.li").must_change_password
    with runtime.db.session() as s:
        token = directory.issue_token(s, "wang.li", now=runtime.now())

    r = sign_in(client, "wang.li", ADMIN_SET, next="/tickets")
    assert r.status_code == 303 and r.headers["location"] == "/password?next=%2Ftickets"
    page = client.get("/password?next=%2Ftickets")
    assert page.status_code == 200 and 'id="must-change"' in page.text and 'class="sidebar"' not in page.text
    csrf = _csrf(page.text)
    # Every other page sends the browser to the password page, and forms do nothing.
    for path in ("/tickets", "/agent/intake", "/notifications", "/"):
        r = client.get(path)
        assert r.url.path == "/password" and 'id="must-change"' in r.text, path
    r = client.post("/notifications/read", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    # API tokens are for systems: unaffected.
    assert client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    def change(old: str, new: str, again: str | None = None):
        data = {"csrf_token": csrf, "old_password": old, "password": new, "password_confirm": again or new}
        return client.post("/password", data={**data, "next": "/tickets"}, follow_redirects=False)

    r = change("not-the-password", OWN)
    assert r.status_code == 422 and "原密码不正确" in r.text
    r = change(ADMIN_SET, ADMIN_SET)
    assert r.status_code == 422 and "新密码不能与原密码相同" in r.text
    r = change(ADMIN_SET, "onlylowercase")
    assert r.status_code == 422 and "至少三类" in r.text
    r = change(ADMIN_SET, OWN, "Something-else-1")
    assert r.status_code == 422 and "两次输入的新密码不一致" in r.text
    r = client.post("/password", data={"old_password": ADMIN_SET, "password": OWN, "password_confirm": OWN})
    assert r.status_code == 403  # no CSRF token
    assert _user(runtime, "wang.li").must_change_password

    r = change(ADMIN_SET, OWN)
    assert r.status_code == 303 and r.headers["location"] == "/tickets"
    assert client.get("/tickets").url.path == "/tickets"
    assert not _user(runtime, "wang.li").must_change_password
    client.cookies.clear()
    assert sign_in(client, "wang.li", ADMIN_SET).status_code == 401
    assert sign_in(client, "wang.li", OWN).headers["location"] == "/agent/intake"


def test_a_reset_password_must_be_changed_and_a_user_changes_their_own_any_time(client, district, runtime):
    # Anyone changes their own password from the header; other browsers of theirs sign out.
    other = TestClient(client.app)
    assert sign_in(other, "agent").status_code == 303
    assert sign_in(client, "agent").status_code == 303
    page = client.get("/password")
    assert 'href="/password"' in client.get("/tickets").text and 'id="must-change"' not in page.text
    data = {"csrf_token": _csrf(page.text), "old_password": PASSWORD, "password": OWN, "password_confirm": OWN}
    r = client.post("/password", data=data, follow_redirects=False)
    assert r.headers["location"] == "/password?changed=1" and "密码已修改" in client.get(r.headers["location"]).text
    assert client.get("/tickets").url.path == "/tickets"
    assert other.get("/tickets").url.path == "/login"
    assert len(_sessions(runtime, "agent")) == 1

    # The administrator resets it: must be changed at the next sign-in.
    client.cookies.clear()
    token = _admin_client(client)
    agent_id = _user(runtime, "agent").id
    data = {"csrf_token": token, "password": ADMIN_SET, "password_confirm": ADMIN_SET}
    r = client.post(f"/admin/users/{agent_id}/password", data=data, follow_redirects=False)
    assert r.status_code == 303 and _user(runtime, "agent").must_change_password
    assert _sessions(runtime, "agent") == []
    assert sign_in(client, "agent", ADMIN_SET).headers["location"] == "/password"


def test_the_command_line_makes_passwords_by_the_policy_to_be_changed(env):  # noqa: F811
    run(env, "db", "upgrade")
    out = run(env, "users", "create", "wang", "--role", "agent").stdout
    generated = re.search(r"^password: (\S+)$", out, re.M).group(1)
    directory.check_password_policy(generated, "wang")
    assert "must be changed at the first sign-in" in out
    p = run(env, "users", "create", "li", "--role", "agent", "--password", "too-weak", ok=False)
    assert p.returncode != 0 and "at least 10 characters" in p.stderr
    p = run(env, "users", "create", "WANG", "--role", "agent", "--password", "Strong-enough-1", ok=False)
    assert p.returncode != 0 and "taken" in p.stderr
    # The token command finds a name in any case.
    assert run(env, "users", "token", "Wang").stdout.startswith("hl_")


# ---------------------------------------------------------------- the idle time-out


def test_a_session_unused_for_half_an_hour_is_over(client, district, runtime, clock):
    assert sign_in(client, "agent").status_code == 303
    (web,) = _sessions(runtime, "agent")
    signed_in_at = web.last_seen_at
    # Used within the minute: no write.
    clock.advance(seconds=30)
    assert client.get("/tickets").url.path == "/tickets"
    assert _sessions(runtime, "agent")[0].last_seen_at == signed_in_at
    # Used every 29 minutes, it lives on: each use counts.
    for _ in range(4):
        clock.advance(minutes=29)
        assert client.get("/tickets").url.path == "/tickets"
        assert _sessions(runtime, "agent")[0].last_seen_at == clock()
    clock.advance(minutes=30)
    r = client.get("/tickets")
    assert r.url.path == "/login" and "登录已超时（30 分钟未操作），请重新登录" in r.text
    # Said once: the stale cookie is gone.
    assert "登录已超时" not in client.get("/login").text
    assert sign_in(client, "agent").status_code == 303
    assert len(_sessions(runtime, "agent")) == 1  # the timed-out one was cleared at sign-in


def test_the_absolute_lifetime_stays_and_the_idle_minutes_are_a_setting(database, clock, district):
    from hotline.runtime import Runtime

    for minutes, gap, alive in ((5, 6, False), (5, 4, True), (0, 600, True)):
        settings = Settings(database_url=database.url, embedded_scheduler=False, session_idle_minutes=minutes)
        rt = Runtime(database, settings)
        rt.clock = clock
        with TestClient(create_app(settings, runtime=rt)) as c:
            assert sign_in(c, "agent").status_code == 303
            clock.advance(minutes=gap)
            assert (c.get("/tickets").url.path == "/tickets") is alive, (minutes, gap)
    # Used every 20 minutes, a session still ends 12 hours after sign-in.
    settings = Settings(database_url=database.url, embedded_scheduler=False)
    rt = Runtime(database, settings)
    rt.clock = clock
    with TestClient(create_app(settings, runtime=rt)) as c:
        assert sign_in(c, "agent").status_code == 303
        for _ in range(35):
            clock.advance(minutes=20)
            assert c.get("/tickets").url.path == "/tickets"
        clock.advance(minutes=20)
        assert c.get("/tickets").url.path == "/login"


# ---------------------------------------------------------------- Secure cookies


def _set_cookie(response, name: str) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}="))


@pytest.mark.parametrize(
    ("public_url", "explicit", "secure"),
    [
        ("https://12345.example.gov.cn", None, True),
        ("http://127.0.0.1:8000", None, False),
        ("https://12345.example.gov.cn", False, False),
        ("http://10.0.0.5:8000", True, True),
    ],
)
def test_cookies_are_secure_by_default_when_the_public_url_is_https(database, district, public_url, explicit, secure):
    from hotline.runtime import Runtime

    settings = Settings(
        database_url=database.url, embedded_scheduler=False, public_url=public_url, secure_cookies=explicit
    )
    assert settings.cookies_secure is secure
    with TestClient(create_app(settings, runtime=Runtime(database, settings)), base_url="https://testserver") as c:
        form = c.get("/login")
        assert ("; secure" in _set_cookie(form, "hotline_login_csrf").lower()) is secure
        r = c.post(
            "/login",
            data={"username": "agent", "password": PASSWORD, "csrf_token": _csrf(form.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        cookie = _set_cookie(r, "hotline_session").lower()
        assert ("; secure" in cookie) is secure and "httponly" in cookie


# ---------------------------------------------------------------- administrators and sessions


def test_a_second_sign_in_page_leaves_the_first_ones_form_good(client, district):
    """Two tabs on the sign-in page (or a background request sent on to /login after the
    session ended): the later load keeps the browser's token, so the first tab signs in."""
    first = client.get("/login")
    second = client.get("/login")
    assert _csrf(second.text) == _csrf(first.text)
    r = client.post(
        "/login",
        data={"username": "agent", "password": PASSWORD, "csrf_token": _csrf(first.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/agent/intake"
    # A cookie not of a token's shape is replaced by a fresh token, so a form sent with the
    # old value is refused. (The shape alone proves nothing of where a token came from; the
    # cookie is httponly, kept to /login and same-site strict.)
    client.cookies.clear()
    client.cookies.set("hotline_login_csrf", "chosen-by-someone-else", path="/login")
    page = client.get("/login")
    assert _csrf(page.text) != "chosen-by-someone-else"
    refused = client.post(
        "/login",
        data={"username": "agent", "password": PASSWORD, "csrf_token": "chosen-by-someone-else"},
        follow_redirects=False,
    )
    assert refused.status_code == 403 and "登录页面已过期" in refused.text


def test_an_administrator_sees_a_users_sessions_and_ends_them(client, district, runtime, clock):
    browsers = []
    for agent in ("Firefox/140.0 (office PC)", "Chrome/139.0 (laptop)", "Edge/130 " + "x" * 300):
        b = TestClient(client.app, headers={"User-Agent": agent})
        assert sign_in(b, "agent").status_code == 303
        browsers.append(b)
        clock.advance(minutes=2)
    first, second, third = _sessions(runtime, "agent")
    assert first.address == "testclient" and len(third.user_agent) == 200

    token = _admin_client(client)
    page = client.get("/admin/users").text
    row = _row(page, "agent")
    assert "会话 3" in row and "Firefox/140.0 (office PC)" in row and "testclient" in row
    assert f"/admin/users/{first.user_id}/sessions/{first.id}/end" in row
    assert "2026-11-02 09:00" in row  # signed in at, in Beijing time

    # Another user's session id, or one ended already: 404 in words.
    housing = _user(runtime, "housing_h").id
    r = client.post(f"/admin/users/{housing}/sessions/{first.id}/end", data={"csrf_token": token})
    assert r.status_code == 404 and "该会话已结束或不存在" in r.text
    # Without the CSRF token, or not an administrator: refused.
    assert client.post(f"/admin/users/{first.user_id}/sessions/{first.id}/end").status_code == 403
    csrf_b = _csrf(browsers[1].get("/password").text)
    r = browsers[1].post(f"/admin/users/{first.user_id}/sessions/end", data={"csrf_token": csrf_b})
    assert r.status_code == 403

    r = client.post(f"/admin/users/{first.user_id}/sessions/{first.id}/end", data={"csrf_token": token})
    assert r.status_code == 200 and "已结束 agent（agent）的一个登录会话" in r.text
    ended = browsers[0].get("/tickets")
    assert ended.url.path == "/login" and "登录已失效，请重新登录" in ended.text
    assert browsers[1].get("/tickets").url.path == "/tickets"

    r = client.post(f"/admin/users/{first.user_id}/sessions/end", data={"csrf_token": token})
    assert "已结束 agent（agent）的全部 2 个登录会话" in r.text
    assert [b.get("/tickets").url.path for b in browsers[1:]] == ["/login", "/login"]
    assert _sessions(runtime, "agent") == []
    assert "会话 " not in _row(r.text, "agent")


def test_the_sessions_list_leaves_out_those_timed_out(client, district, runtime, clock):
    assert sign_in(TestClient(client.app), "agent").status_code == 303
    clock.advance(minutes=31)
    _admin_client(client)
    assert "会话" not in _row(client.get("/admin/users").text, "agent")


# ---------------------------------------------------------------- usernames in any case


def test_usernames_are_unique_whatever_their_case(client, district, runtime):
    admin = Api(client, district, "admin")
    refused = admin.post("/users", {"username": "Agent", "role": "agent", "password": ADMIN_SET}, 409)
    assert "taken" in refused["detail"] and "'agent'" in refused["detail"]
    token = _admin_client(client)
    data = {"csrf_token": token, "username": "ADMIN", "role": "admin", "password": OWN}
    r = client.post("/admin/users", data={**data, "password_confirm": OWN})
    assert r.status_code == 409 and "用户名“ADMIN”已被使用（已有“admin”，不区分大小写）" in r.text
    # The database refuses it too, whoever writes.
    with pytest.raises(IntegrityError), runtime.db.session() as s:
        s.add(User(username="Supervisor", role="agent", password_hash="x", created_at=runtime.now()))
    # Non-ASCII names are refused (lower() would differ between the databases).
    refused = admin.post("/users", {"username": "王丽", "role": "agent", "password": ADMIN_SET}, 422)
    assert refused["field"] == "username"


def test_sign_in_takes_the_name_in_any_case(client, district):
    r = sign_in(client, "  AGENT ", PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == "/agent/intake"
    assert 'class="who-name">agent<' in client.get("/agent/intake").text


def test_the_migration_renames_names_that_differ_only_in_case(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0008")
    db = Database(url)
    with db.engine.begin() as conn:
        for name in ("Bob", "bob", "BOB", "carol"):
            conn.exec_driver_sql(
                "INSERT INTO users (username, role, password_hash, active, failed_logins, created_at) "
                f"VALUES ('{name}', 'agent', 'x', 1, 0, '2026-11-01 00:00:00')"
            )
    command.upgrade(cfg, "head")
    with db.read_session() as s:
        names = [u.username for u in s.exec(select(User).order_by(User.id)).all()]
        assert all(not u.must_change_password for u in s.exec(select(User)).all())
    db.dispose()
    assert names == ["Bob", "bob.dup2", "bob.dup3", "carol"]


# ---------------------------------------------------------------- in a browser


@pytest.mark.browser
def test_first_sign_in_in_a_browser_asks_for_a_new_password_first(page, browser, server, district, runtime):
    with runtime.db.session() as s:
        directory.create_user(s, username="wang.li", role="agent", password=NEW_PASSWORD, now=runtime.now())
    pg = browser_sign_in(browser, server, "wang.li", NEW_PASSWORD)
    assert pg.url.endswith("/password") and pg.locator("#must-change").is_visible()
    assert signed_in_as(pg) == "wang.li" and pg.locator("nav.sidebar").count() == 0
    SHOTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(SHOTS / "identity-password.png"), full_page=True)
    pg.goto(f"{server}/tickets")
    assert "/password?next=" in pg.url and pg.locator("#must-change").is_visible()
    pg.fill("#old_password", NEW_PASSWORD)
    pg.fill("#password", "weak")
    pg.fill("#password_confirm", "weak")
    # The browser's own check (minlength) stops it first; the server's rule is the one shown.
    pg.locator("#password").evaluate("e => e.removeAttribute('minlength')")
    pg.locator("#password_confirm").evaluate("e => e.removeAttribute('minlength')")
    pg.click("#password-form button[type=submit]")
    pg.wait_for_load_state()
    assert "密码至少需要 10 个字符" in pg.inner_text(".flash-error")
    pg.fill("#old_password", NEW_PASSWORD)
    pg.fill("#password", OWN)
    pg.fill("#password_confirm", OWN)
    pg.click("#password-form button[type=submit]")
    pg.wait_for_load_state()
    assert pg.url.endswith("/tickets") and pg.locator("nav.sidebar").is_visible()
    again = browser_sign_in(browser, server, "wang.li", OWN)
    assert again.url.endswith("/agent/intake")

    # The administrator sees both browsers and ends the first one.
    login(page, server, "admin")
    page.goto(f"{server}/admin/users")
    row = "tr[data-user='wang.li']"
    page.click(f"{row} summary:has-text('会话 2')")
    assert page.locator(f"{row} .session-list li").count() == 2
    assert "Chrome" in page.inner_text(f"{row} .session-list") and "127.0.0.1" in page.inner_text(
        f"{row} .session-list"
    )
    page.screenshot(path=str(SHOTS / "identity-sessions.png"), full_page=True)
    first = _sessions(runtime, "wang.li")[0].id
    page.click(f"{row} li[data-session='{first}'] button:has-text('结束会话')")
    page.wait_for_load_state()
    assert "已结束 wang.li（wang.li）的一个登录会话" in page.inner_text(".flash-ok")
    pg.goto(f"{server}/tickets")
    assert "/login" in pg.url and "登录已失效" in pg.inner_text(".flash-error")
    again.goto(f"{server}/tickets")
    assert again.url.endswith("/tickets")
    pg.context.close()
    again.context.close()


def test_idle_and_secure_settings_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("HOTLINE_SESSION_IDLE_MINUTES", "15")
    monkeypatch.setenv("HOTLINE_PUBLIC_URL", "https://12345.example.gov.cn")
    settings = Settings()
    assert settings.session_idle_minutes == 15 and settings.cookies_secure
    monkeypatch.setenv("HOTLINE_SECURE_COOKIES", "false")
    assert not Settings().cookies_secure
    monkeypatch.setenv("HOTLINE_SESSION_IDLE_MINUTES", "-1")
    with pytest.raises(ValueError):
        Settings()

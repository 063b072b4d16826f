"""Security headers (docs/security.md): the policy on pages, API answers, exports and static
files; the citizens' pages framed only by the sites named in HOTLINE_EMBED_ORIGINS; no inline
script left in any template; and every role's pages in a browser without a CSP violation."""

import base64
import hashlib
import http.server
import re
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlmodel import select

from hotline.config import Settings
from hotline.indicators.reports import generate_due_reports
from hotline.main import create_app
from hotline.models import Article, Department, Ticket
from hotline.web.headers import OTHER_POLICY
from tests.helpers import Api, sign_in
from tests.test_assistant import ARTICLES
from tests.test_pages_performance import busy  # noqa: F401  (twelve departments and five months of tickets)
from tests.test_pages_smoke import login

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
EMBED = "https://www.example.gov.cn https://*.qingshan.gov.cn"


def app_with(database, runtime, **settings) -> TestClient:
    return TestClient(
        create_app(Settings(database_url=database.url, embedded_scheduler=False, **settings), runtime=runtime)
    )


def assert_common(response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "strict-transport-security" not in response.headers  # the test server is http


def test_a_signed_in_page_is_never_stored_nor_framed(client, district):
    assert sign_in(client, "agent").status_code == 303
    r = client.get("/agent/intake")
    assert r.status_code == 200
    assert_common(r)
    assert r.headers["content-security-policy"] == PAGE_POLICY
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    # The sign-in form, the error pages and the redirects too.
    for path, status in (("/login", 303), ("/no-such-page", 404), ("/admin/users", 403)):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == status, path
        assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY", path


def test_an_api_answer_has_the_minimal_policy(client, district):
    api = Api(client, district, "agent")
    api.create(title="楼道灯坏了", content="三单元楼道灯不亮", caller_phone="13800001234")
    r = client.get("/api/v1/tickets", headers=district.headers("agent"))
    assert r.status_code == 200 and r.json()["items"][0]["caller_phone"] == "13800001234"
    assert_common(r)
    assert r.headers["content-security-policy"] == OTHER_POLICY
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    # Refusals too: a 401, a 422, and the body-size limit's 413 (a middleware inside this one).
    too_large = b"x" * (client.app.state.runtime.settings.max_body_bytes + 1)
    for response, status in (
        (client.get("/api/v1/tickets"), 401),
        (client.get("/api/v1/tickets?page=0", headers=district.headers("agent")), 422),
        (client.post("/api/v1/tickets", content=too_large, headers=district.headers("agent")), 413),
    ):
        assert response.status_code == status
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-security-policy"] == OTHER_POLICY


def test_exports_are_never_stored(client, district, runtime):
    sign_in(client, "supervisor")
    for path in (
        "/performance/export.xlsx?month=2026-10",
        "/analysis/export.xlsx?month=2026-10",
        "/analysis/export.csv?month=2026-10&table=street",
    ):
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        assert "attachment" in r.headers["content-disposition"], path
        assert r.headers["cache-control"] == "no-store", path
        assert r.headers["content-security-policy"] == OTHER_POLICY, path
        assert_common(r)


def test_static_files_may_be_kept_but_not_sniffed(client):
    for path, kind in (
        ("/static/app.css", "text/css"),
        ("/static/forms.js", "javascript"),
        ("/static/vendor/htmx-2.0.11.min.js", "javascript"),
    ):
        r = client.get(path)
        assert r.status_code == 200 and kind in r.headers["content-type"], path
        assert "cache-control" not in r.headers, path  # ETag and Last-Modified decide
        assert r.headers["etag"], path
        assert r.headers["content-security-policy"] == OTHER_POLICY
        assert_common(r)
    # A route's own Cache-Control is kept.
    assert client.get("/favicon.ico").headers["cache-control"] == "public, max-age=86400"


def test_the_citizens_pages_are_framed_by_no_one_by_default(client, district):
    for path in ("/kb", "/kb?embed=1", "/assistant?embed=1"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-security-policy"] == PAGE_POLICY, path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["cache-control"] == "public, max-age=300", path  # the route's own
        assert_common(r)


def test_the_citizens_pages_are_framed_by_the_sites_named(database, runtime, district):
    with app_with(database, runtime, embed_origins="https://www.example.gov.cn/, https://*.QingShan.gov.cn") as c:
        for path in ("/kb", "/kb?embed=1&q=社保", "/kb/999999", "/assistant?embed=1"):
            r = c.get(path)
            assert r.status_code in (200, 404), path
            assert r.headers["content-security-policy"] == PAGE_POLICY.replace(
                "frame-ancestors 'none'", f"frame-ancestors {EMBED}"
            ), path
            assert "x-frame-options" not in r.headers, path
            assert_common(r)
        # The hand-over form's answer is framed too; the staff's pages and /kbx are not.
        r = c.post("/assistant/handoff", data={})
        assert r.headers["content-security-policy"].endswith(f"frame-ancestors {EMBED}")
        for path in ("/login", "/kbx", "/knowledge"):
            r = c.get(path, follow_redirects=False)
            assert r.headers["x-frame-options"] == "DENY", path
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        # What the public API answers is never a page to frame.
        r = c.get("/public/v1/knowledge/search?q=社保")
        assert r.headers["content-security-policy"] == OTHER_POLICY


@pytest.mark.parametrize(
    "value", ["https://x.gov.cn; script-src *", "'unsafe-inline'", "x.gov.cn", "https://x.gov.cn/a b"]
)
def test_a_bad_embed_origin_is_refused_at_start(value):
    with pytest.raises(ValidationError, match="embed_origins"):
        Settings(embed_origins=value)


def test_hsts_when_the_site_is_https(database, runtime, district):
    with app_with(database, runtime, public_url="https://12345.example.gov.cn") as c:
        for path in ("/login", "/kb", "/static/app.css", "/api/v1/tickets"):
            assert c.get(path).headers["strict-transport-security"] == "max-age=31536000", path


def test_the_api_browser_allows_its_own_inline_script_only(client):
    r = client.get("/docs")
    scripts = re.findall(r"<script>(.*?)</script>", r.text, re.DOTALL)
    assert len(scripts) == 1 and "SwaggerUIBundle" in scripts[0]
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = r.headers["content-security-policy"]
    assert f"script-src https://cdn.jsdelivr.net 'sha256-{digest}';" in policy
    assert "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert r.headers["x-frame-options"] == "DENY"
    assert int(r.headers["content-length"]) == len(r.content)


# --- no inline script in the templates ------------------------------------------------------

SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.DOTALL | re.IGNORECASE)
HANDLER = re.compile(r"""\son[a-z]+\s*=""", re.IGNORECASE)
TOJSON_ISLAND = re.compile(r"^\s*\{\{(?:(?!\}\}).)*\|\s*tojson\s*\}\}\s*$", re.DOTALL)
COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)


def templates() -> list[Path]:
    found = sorted(TEMPLATES.rglob("*.html"))
    assert len(found) > 50
    return found


def test_no_template_has_an_inline_script_or_handler():
    problems = []
    for path in templates():
        text = COMMENT.sub("", path.read_text(encoding="utf-8"))
        name = path.relative_to(TEMPLATES)
        for attrs, body in SCRIPT.findall(text):
            if 'type="application/json"' in attrs:
                # A data island is not run; its data goes through tojson (which escapes </script>).
                if not TOJSON_ISLAND.match(body):
                    problems.append(f"{name}: a JSON island not written by |tojson: {body.strip()[:60]}")
            elif body.strip() or "src=" not in attrs:
                problems.append(f"{name}: an inline <script>: {body.strip()[:60]}")
        assert text.lower().count("<script") == len(SCRIPT.findall(text)), f"{name}: an unclosed <script>"
        for m in HANDLER.finditer(text):
            problems.append(f"{name}: an inline handler: {text[m.start() : m.end() + 30]!r}")
        for bad in ("javascript:", "hx-on", "js:", "hx-vars"):
            if bad in text.lower():
                problems.append(f"{name}: {bad}")
    assert not problems, "\n".join(problems)


def test_the_scan_finds_what_it_looks_for(tmp_path, monkeypatch):
    """The scan above fails on each kind of inline script (it is no test that cannot fail)."""
    for sample in (
        "<script>alert(1)</script>",
        '<select onchange="this.form.submit()">',
        '<a href="javascript:void(0)">',
        '<div hx-on:click="x()">',
        '<script type="application/json">{{ data|safe }}</script>',
    ):
        (tmp_path / "x.html").write_text(sample * 60, encoding="utf-8")
        monkeypatch.setattr("tests.test_headers.TEMPLATES", tmp_path)
        for i in range(60):
            (tmp_path / f"ok{i}.html").write_text("<p></p>", encoding="utf-8")
        with pytest.raises(AssertionError):
            test_no_template_has_an_inline_script_or_handler()


# --- every role's pages in a browser, under the policy ---------------------------------------


@pytest.fixture
def articles(client, district):
    editor = Api(client, district, "editor")
    assert editor.post("/knowledge/import", {"articles": ARTICLES})["errors"] == []


class Watch:
    """What the browser said: CSP violations (its console's report and the
    securitypolicyviolation event), script errors, static files that did not load."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        page.add_init_script(
            """document.addEventListener("securitypolicyviolation", function (e) {
                 console.error("securitypolicyviolation: " + e.violatedDirective + " " + e.blockedURI);
               });"""
        )
        page.on("console", self.console)
        page.on("pageerror", lambda error: self.problems.append(f"{page.url}: script error: {error}"))
        page.on("response", self.response)
        page.on("dialog", self.dialog)
        self.page = page

    def console(self, message) -> None:
        text = message.text
        if "Refused to" in text or "Content Security Policy" in text or "securitypolicyviolation" in text:
            self.problems.append(f"{self.page.url}: {text}")

    def response(self, response) -> None:
        if "/static/" in response.url and response.status >= 400:
            self.problems.append(f"{response.url}: {response.status}")

    def dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def visit(self, server: str, path: str, ready: str = "main") -> None:
        response = self.page.goto(f"{server}{path}")
        assert response.status == 200, (path, response.status)
        assert response.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
        self.page.wait_for_selector(ready)
        self.page.wait_for_load_state("networkidle")
        self.check()

    def check(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def charted(page, selector: str) -> None:
    page.wait_for_selector(f"{selector} svg, {selector} canvas")


@pytest.mark.browser
def test_every_roles_pages_run_under_the_policy(page, server, runtime, busy, articles):  # noqa: F811
    watch = Watch(page)
    with runtime.db.read_session() as s:
        ticket = s.exec(select(Ticket).order_by(Ticket.id)).first()
        article = s.exec(select(Article).where(Article.title == "社会保障卡补办")).one()
        housing = s.exec(select(Department).where(Department.code == "housing")).one()
    report = next(r for r in generate_due_reports(runtime, runtime.now()) if r.kind == "weekly")

    # The agent: typing in the intake's fields brings htmx's suggestions.
    login(page, server, "agent")
    watch.visit(server, "/agent/intake", "#intake-form")
    page.fill("#category_q", "物业")
    page.wait_for_selector("#category-suggest .suggest-item")
    # htmx as configured in base.html: no <style> of its own, no eval.
    assert page.evaluate("[htmx.config.includeIndicatorStyles, htmx.config.allowEval]") == [False, False]
    assert page.locator("style").count() == 0
    page.fill("#title", "小区电梯故障停运")
    page.fill("#content", "小区电梯故障停运无人维修，社保卡丢了")
    page.wait_for_load_state("networkidle")
    watch.visit(server, "/agent/callbacks")
    watch.visit(server, f"/tickets/{ticket.id}", "#main h1")
    watch.visit(server, "/tickets?q=电梯")
    watch.visit(server, "/notifications")
    watch.visit(server, "/knowledge")
    watch.visit(server, f"/knowledge/{article.id}", "#body")

    # A department: the inbox and its keyboard.
    page.context.clear_cookies()
    login(page, server, "housing_l")
    watch.visit(server, "/department/inbox")
    page.keyboard.press("j")
    watch.visit(server, "/department/supervision")
    watch.visit(server, "/evaluation/rectifications")

    # The supervisor: the dashboard's chart, the indicators' and the analysis' charts, a report.
    page.context.clear_cookies()
    login(page, server, "supervisor")
    watch.visit(server, "/supervisor/dashboard")
    charted(page, "#trend-chart")
    watch.visit(server, "/supervisor/reviews")
    watch.visit(server, "/performance")
    charted(page, "#score-chart")
    watch.visit(server, "/analysis")
    charted(page, "#chart-day")
    page.wait_for_selector("#hotspot-table")
    page.wait_for_selector("#word-cloud:not(.pf-loading) span")
    watch.visit(server, "/reports")
    watch.visit(server, f"/reports/{report.id}")
    charted(page, "#rp-volume")
    watch.visit(server, "/evaluation/appeals")

    # The administrator: every page; the confirmations and the users form's scripts still work.
    page.context.clear_cookies()
    login(page, server, "admin")
    for path in (
        "/admin/categories",
        "/admin/rules",
        "/admin/limits",
        "/admin/calendar/2026",
        "/admin/workflows",
        "/admin/district",
        "/admin/integration",
    ):
        watch.visit(server, path)
    watch.visit(server, "/admin/departments")
    page.locator(f"form[action='/admin/departments/{housing.id}/deactivate'] button").click()
    assert watch.dialogs and watch.dialogs[-1].startswith("停用“区住建局”")  # asked, and dismissed
    assert page.url.endswith("/admin/departments")
    watch.visit(server, "/admin/users")
    page.select_option("#role", "agent")
    assert page.locator("#department").is_disabled()
    page.select_option("#role", "handler")
    assert page.locator("#department").is_enabled() and page.evaluate("document.getElementById('department').required")
    page.select_option("#role", "integration")
    assert page.evaluate("document.getElementById('source').required")
    with page.expect_navigation():
        page.select_option("#filter-department", "housing")
    assert "department=housing" in page.url

    # The knowledge base's editor: the import page refuses too large a file before sending it.
    page.context.clear_cookies()
    login(page, server, "editor")
    for path in ("/knowledge?status=under_review", "/knowledge/gaps", "/knowledge/flags", f"/knowledge/{article.id}"):
        watch.visit(server, path)
    watch.visit(server, "/knowledge/import", "#import-form")
    limit = int(page.get_attribute("#import-form", "data-max"))
    page.set_input_files(
        "#file", files=[{"name": "big.xlsx", "mimeType": "application/octet-stream", "buffer": b"0" * (limit + 1)}]
    )
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#file-too-large:not([hidden])")
    assert page.url.endswith("/knowledge/import")

    # The citizens: the knowledge base, the large-text mode, the assistant's chat (fetch).
    page.context.clear_cookies()
    watch.visit(server, "/kb")
    watch.visit(server, "/kb?q=社保卡丢了")
    watch.visit(server, f"/kb/{article.id}?embed=1")
    page.get_by_role("button", name="大字模式").click()
    watch.visit(server, "/assistant")
    assert page.evaluate("document.documentElement.classList.contains('elder')")  # elder.js, before drawing
    page.get_by_label("您的问题").fill("社保卡丢了怎么补办")
    page.get_by_role("button", name="发送").click()
    page.get_by_role("log").get_by_text("根据《社会保障卡补办》").wait_for()

    watch.check()


# --- a real frame: the district's site shows /kb, and cannot show the staff's pages ----------


class DistrictSite:
    """The district's website on its own origin (another port on loopback): a page that
    frames the hotline's /kb and, to show it is refused, its sign-in page."""

    def __init__(self) -> None:
        self.hotline = ""
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (the standard library's name)
                body = (
                    f'<!doctype html><title>区政府网站</title><iframe id="kb" src="{site.hotline}/kb?embed=1"></iframe>'
                    f'<iframe id="staff" src="{site.hotline}/login"></iframe>'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve(app) -> tuple[str, uvicorn.Server, threading.Thread]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    port = srv.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", srv, thread


@pytest.mark.browser
@pytest.mark.parametrize("named", [True, False], ids=["named", "not-named"])
def test_the_district_site_frames_the_knowledge_base_only_when_named(page, database, runtime, articles, named):
    site = DistrictSite()
    settings = Settings(database_url=database.url, embedded_scheduler=False, embed_origins=site.origin if named else "")
    url, srv, thread = serve(create_app(settings, runtime=runtime))
    site.hotline = url
    messages: list[str] = []
    page.on("console", lambda m: messages.append(m.text))
    try:
        page.goto(site.origin)
        page.wait_for_load_state("load")
        kb = page.frame_locator("#kb").locator("main#main h1")
        if named:
            assert kb.inner_text() == "政策问答"
        # The staff's sign-in page is never shown in another site's frame.
        assert page.frame_locator("#staff").locator("#username").count() == 0
        deadline = time.monotonic() + 5
        refused = lambda: [m for m in messages if "frame-ancestors" in m]  # noqa: E731
        while len(refused()) < (1 if named else 2) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert len(refused()) == (1 if named else 2), messages
        if not named:
            assert page.frame_locator("#kb").locator("main").count() == 0
    finally:
        srv.should_exit = True
        thread.join(5)
        site.close()

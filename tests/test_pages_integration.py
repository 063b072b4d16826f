"""对接管理 in a real browser: a subscription made on the page receives signed events; its
secret shows once; a dead event is replayed from the page; only administrators get there."""

import pytest
from standardwebhooks import Webhook

from tests.helpers import Api, sign_in
from tests.receivers import Receiver, deliver_all
from tests.test_pages_smoke import login


@pytest.mark.browser
def test_admin_connects_a_department_system_and_replays_what_failed(page, server, client, district, runtime):
    runtime.settings.webhook_retry_seconds = ""
    receiver = Receiver().start()
    try:
        login(page, server, "admin")
        page.goto(f"{server}/admin/integration")
        page.fill("#name", "区住建局业务系统")
        page.fill("#url", "ftp://wrong.example/hook")
        page.select_option("#scope", "department")
        page.select_option("#department", "housing")
        page.click("#new-subscription button[type=submit]")
        page.wait_for_load_state()
        # Refused, naming why, with what was typed kept.
        assert "http(s)" in page.inner_text(".flash-error")
        assert page.input_value("#name") == "区住建局业务系统" and page.input_value("#department") == "housing"
        page.fill("#url", receiver.url)
        page.click("#new-subscription button[type=submit]")
        page.wait_for_load_state()
        secret = page.inner_text("#secret-value")
        assert secret.startswith("whsec_") and "已新建对接：区住建局业务系统" in page.inner_text(".flash-ok")
        page.reload()
        assert page.locator("#secret-value").count() == 0  # shown once
        page.goto(f"{server}/admin/integration")
        row = page.locator("#subscriptions tbody tr")
        assert row.count() == 1 and "区住建局" in row.inner_text() and "启用" in row.inner_text()

        # A ticket for housing reaches the receiver, signed with that secret; the first try fails.
        receiver.answer = lambda _: 503
        agent = Api(client, district, "agent")
        tid = agent.create()["id"]
        agent.fire(tid, "dispatch", department="housing")
        deliver_all(runtime)
        page.goto(f"{server}/admin/integration")
        assert page.inner_text("#subscriptions td.dead") != "0"
        page.click("#subscriptions td.dead a")
        page.wait_for_load_state()
        assert "HTTP 503" in page.inner_text("#deliveries")
        receiver.answer = lambda _: 204
        page.click("#replay-dead")
        page.wait_for_load_state()
        assert "已重新投递失败消息" in page.inner_text(".flash-ok")
        deliver_all(runtime)
        delivered = [g for g in receiver.got if g.json["type"] == "ticket.changed"]
        assert delivered
        for got in receiver.got:
            Webhook(secret).verify(got.body, got.headers)
        page.goto(page.url.split("?")[0] + "?status=delivered")
        assert "已送达" in page.inner_text("#deliveries")
    finally:
        receiver.stop()


def test_only_administrators_reach_the_integration_page(client, district):
    from tests.helpers import PASSWORD

    for username in ("agent", "supervisor", "housing_l"):
        c = client
        c.cookies.clear()
        r = sign_in(c, username, PASSWORD)
        assert r.status_code in (302, 303)
        assert c.get("/admin/integration", follow_redirects=False).status_code in (403, 303, 302)
        assert c.get("/admin/integration").status_code == 403 or "/login" in str(c.get("/admin/integration").url)

"""Webhook delivery to real receivers on loopback: signed (checked by the independent
`standardwebhooks` package), at least once with the same id, in order per ticket, one bad
ticket or receiver holding up no other, retries, Retry-After, 410, dead and replay."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select
from standardwebhooks import Webhook

from hotline.models import Delivery, Subscription
from tests.helpers import Api
from tests.receivers import Receiver, deliver_all

TOPICS = ["ticket.created", "ticket.changed", "ticket.rated", "rating.overturned", "notice"]


@pytest.fixture
def as_(client, district):
    return lambda username: Api(client, district, username)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def subscribe(as_, url: str, **fields) -> dict:
    return as_("admin").post("/subscriptions", {"name": "测试系统", "url": url, "topics": TOPICS, **fields}, 201)


def life_of_a_ticket(as_) -> int:
    """Logged, dispatched to housing, signed: three history rows and the dispatch notices."""
    tid = as_("agent").create()["id"]
    as_("agent").fire(tid, "dispatch", department="housing")
    as_("housing_h").fire(tid, "sign")
    return tid


def test_events_are_signed_and_a_ticket_s_events_arrive_in_order(runtime, as_, receiver):
    sub = subscribe(as_, receiver.url)
    assert sub["secret"].startswith("whsec_")
    assert "secret" not in as_("admin").get("/subscriptions")[0]
    tid = life_of_a_ticket(as_)
    deliver_all(runtime)

    verifier = Webhook(sub["secret"])
    for got in receiver.got:
        verifier.verify(got.body, got.headers)  # raises when the signature does not match
        assert got.headers["content-type"] == "application/json"
    bodies = receiver.bodies()
    number = as_("agent").get(f"/tickets/{tid}")["number"]
    mine = [b for b in bodies if b["data"]["ticket_number"] == number]
    assert [b["data"]["sequence"] for b in mine] == list(range(1, len(mine) + 1))
    assert [b["type"] for b in mine][:2] == ["ticket.created", "ticket.changed"]
    created = mine[0]["data"]["ticket"]
    assert created["caller_phone"] == "13812345678" and created["state"] == "registered"
    changes = [b["data"] for b in mine if b["type"] == "ticket.changed"]
    assert [c["event"] for c in changes] == ["dispatch", "sign"]
    assert changes[0]["actor"] == {"role": "agent", "department": None}
    assert changes[1]["actor"] == {"role": "handler", "department": "housing"} and changes[1]["to"] == "in_progress"
    # The dispatch notices follow the dispatch itself.
    kinds = [(b["type"], b["data"].get("event") or b["data"].get("kind")) for b in mine]
    assert kinds.index(("ticket.changed", "dispatch")) < kinds.index(("notice", "dispatch"))
    assert len({g.id for g in receiver.got}) == len(receiver.got)


def test_a_failing_receiver_gets_the_same_id_again_and_the_ticket_waits(runtime, as_, receiver):
    runtime.settings.webhook_retry_seconds = "0,0,0"
    failures = {"left": 2}

    def answer(got):
        if failures["left"]:
            failures["left"] -= 1
            return 500
        return 200

    receiver.answer = answer
    subscribe(as_, receiver.url, topics=["ticket.created", "ticket.changed"])
    tid = as_("agent").create()["id"]
    as_("agent").fire(tid, "dispatch", department="housing")
    deliver_all(runtime)

    ids = [g.id for g in receiver.got]
    # The created event failed twice and went out a third time with its id; only then the dispatch.
    assert ids[0] == ids[1] == ids[2] and ids[3] != ids[0] and len(ids) == 4
    assert [b["data"]["sequence"] for b in receiver.bodies()] == [1, 1, 1, 2]
    with runtime.db.read_session() as s:
        rows = s.exec(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.status, d.attempts) for d in rows] == [("delivered", 3), ("delivered", 1)]


def test_one_failing_ticket_holds_up_no_other(runtime, as_, receiver):
    runtime.settings.webhook_retry_seconds = "3600"
    subscribe(as_, receiver.url, topics=["ticket.created", "ticket.changed"])
    stuck = as_("agent").create(content="这一件接收方一直处理失败")["number"]
    receiver.answer = lambda got: 500 if got.json["data"]["ticket_number"] == stuck else 204
    others = [as_("agent").create(content=f"另一件诉求{i}")["id"] for i in range(3)]
    for tid in others:
        as_("agent").fire(tid, "dispatch", department="urban")
    deliver_all(runtime)

    delivered = [b["data"]["ticket_number"] for b in receiver.bodies()]
    assert delivered.count(stuck) == 1  # tried once, waits an hour for its retry
    assert len(delivered) == 1 + 3 * 2


def test_a_receiver_that_hangs_past_the_timeout_is_retried(runtime, as_, receiver):
    runtime.settings.webhook_retry_seconds = "0"
    runtime.settings.webhook_timeout_seconds = 0.5
    hangs = {"left": 1}

    def hang(_):
        if hangs["left"]:
            hangs["left"] -= 1
            return 2.0
        return 0.0

    receiver.hang_seconds = hang
    sub = subscribe(as_, receiver.url, topics=["ticket.created"])
    as_("agent").create()
    deliver_all(runtime)
    got = receiver.wait_for(2)
    assert got[0].id == got[1].id
    deliveries = as_("admin").get(f"/subscriptions/{sub['id']}/deliveries")
    assert deliveries[0]["status"] == "delivered" and deliveries[0]["attempts"] == 2


def test_retry_after_is_honoured(runtime, as_, receiver):
    receiver.answer = lambda _: (503, {"Retry-After": "120"})
    sub = subscribe(as_, receiver.url, topics=["ticket.created"])
    as_("agent").create()
    before = datetime.now(UTC)
    deliver_all(runtime)
    assert len(receiver.got) == 1
    (row,) = as_("admin").get(f"/subscriptions/{sub['id']}/deliveries", status="pending")
    next_try = datetime.fromisoformat(row["next_attempt_at"])
    assert before + timedelta(seconds=115) < next_try < before + timedelta(seconds=130)
    assert row["last_status"] == 503 and "503" in row["last_error"]


def test_410_gone_turns_the_subscription_off_and_its_events_wait(runtime, as_, receiver):
    receiver.answer = lambda _: 410
    sub = subscribe(as_, receiver.url, topics=["ticket.created"])
    as_("agent").create()
    deliver_all(runtime)
    as_("agent").create()
    deliver_all(runtime)
    assert len(receiver.got) == 1
    listed = as_("admin").get(f"/subscriptions/{sub['id']}")
    assert listed["enabled"] is False and "410" in listed["disabled_reason"] and listed["pending"] == 2

    receiver.answer = lambda _: 200
    as_("admin").client.patch(
        f"/api/v1/subscriptions/{sub['id']}", json={"enabled": True}, headers=as_("admin").headers
    ).raise_for_status()
    deliver_all(runtime)
    assert len(receiver.got) == 3


def test_dead_after_the_last_retry_listed_with_its_error_and_replayed(runtime, as_, receiver):
    runtime.settings.webhook_retry_seconds = "0"
    receiver.answer = lambda _: 500
    sub = subscribe(as_, receiver.url, topics=["ticket.created"])
    as_("agent").create()
    deliver_all(runtime)
    assert len(receiver.got) == 2
    (dead,) = as_("admin").get(f"/subscriptions/{sub['id']}/deliveries", status="dead")
    assert dead["attempts"] == 2 and dead["last_error"] == "HTTP 500 Internal Server Error"
    assert as_("admin").get(f"/subscriptions/{sub['id']}")["dead"] == 1

    receiver.answer = lambda _: 200
    assert as_("admin").post(f"/subscriptions/{sub['id']}/replay", {"dead": True}) == {"queued": 1}
    deliver_all(runtime)
    assert len(receiver.got) == 3 and receiver.got[2].id == receiver.got[0].id
    assert as_("admin").get(f"/subscriptions/{sub['id']}")["dead"] == 0


def test_replay_by_time_sends_old_events_with_their_ids(runtime, as_, receiver):
    as_("agent").create()  # before any subscription
    sub = subscribe(as_, receiver.url, topics=["ticket.created"])
    as_("agent").create()
    deliver_all(runtime)
    assert len(receiver.got) == 1
    queued = as_("admin").post(f"/subscriptions/{sub['id']}/replay", {"from": "2026-01-01T00:00:00+08:00"})
    assert queued == {"queued": 2}
    deliver_all(runtime)
    assert len(receiver.got) == 3 and receiver.got[0].id in {g.id for g in receiver.got[1:]}


def test_a_department_subscription_gets_its_tickets_as_its_handlers_read_them(runtime, as_, receiver):
    subscribe(as_, receiver.url, department="housing", topics=["ticket.changed", "notice"])
    tid = as_("agent").create(confidential=True)["id"]
    as_("agent").fire(tid, "dispatch", department="housing")
    other = as_("agent").create()["id"]
    as_("agent").fire(other, "dispatch", department="urban")
    deliver_all(runtime)

    numbers = {b["data"]["ticket_number"] for b in receiver.bodies()}
    assert numbers == {as_("agent").get(f"/tickets/{tid}")["number"]}
    changes = [b["data"] for b in receiver.bodies() if b["type"] == "ticket.changed"]
    assert changes and all(c["ticket"]["caller_phone"] is None and c["ticket"]["caller_hidden"] for c in changes)
    assert "13812345678" not in "".join(g.body.decode() for g in receiver.got)


def test_a_rotated_secret_signs_beside_the_new_one_during_the_grace(runtime, as_, receiver):
    sub = subscribe(as_, receiver.url, topics=["ticket.created"])
    rotated = as_("admin").post(f"/subscriptions/{sub['id']}/rotate", {"grace_hours": 1})
    assert rotated["secret"] != sub["secret"]
    as_("agent").create()
    deliver_all(runtime)
    (got,) = receiver.got
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(sub["secret"]).verify(got.body, got.headers)
    Webhook(rotated["secret"]).verify(got.body, got.headers)


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"url": "ftp://example.org/hook"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"topics": ["ticket.deleted"]}, "topics"),
        ({"topics": []}, "topics"),
        ({"department": "nowhere"}, "department"),
    ],
)
def test_a_bad_subscription_is_refused_naming_the_field(as_, fields, field):
    body = {"name": "x", "url": "http://127.0.0.1:9/hook", "topics": ["ticket.created"], **fields}
    r = as_("admin").client.post("/api/v1/subscriptions", json=body, headers=as_("admin").headers)
    assert r.status_code == 422 and field in r.text, r.text


def test_the_allow_list_keeps_webhooks_to_the_named_hosts(runtime, as_):
    runtime.settings.webhook_allowed_hosts = "hooks.example.gov.cn"
    body = {"name": "x", "url": "http://127.0.0.1:9/hook", "topics": ["ticket.created"]}
    r = as_("admin").client.post("/api/v1/subscriptions", json=body, headers=as_("admin").headers)
    assert r.status_code == 422 and "HOTLINE_WEBHOOK_ALLOWED_HOSTS" in r.text
    as_("admin").post("/subscriptions", {**body, "url": "https://hooks.example.gov.cn/12345"}, 201)


def test_only_administrators_manage_subscriptions(as_):
    for user in ("agent", "supervisor", "housing_l"):
        as_(user).get("/subscriptions", expect=403)
        as_(user).post("/subscriptions", {"name": "x", "url": "http://127.0.0.1:9/", "topics": ["notice"]}, 403)


def test_redirects_are_not_followed(runtime, as_, receiver):
    runtime.settings.webhook_retry_seconds = ""
    receiver.answer = lambda _: (302, {"Location": "http://127.0.0.1:9/elsewhere"})
    sub = subscribe(as_, receiver.url, topics=["ticket.created"])
    as_("agent").create()
    deliver_all(runtime)
    (dead,) = as_("admin").get(f"/subscriptions/{sub['id']}/deliveries", status="dead")
    assert "redirects are not followed" in dead["last_error"] and len(receiver.got) == 1


def test_delivery_runs_seconds_after_the_commit_inside_the_scheduler(runtime, as_, receiver):
    from hotline.scheduler import build_scheduler

    runtime.settings.delivery_interval_seconds = 0.2
    subscribe(as_, receiver.url, topics=["ticket.created"])
    scheduler = build_scheduler(runtime)
    for job in scheduler.get_jobs():
        if job.id not in ("delivery", "leadership"):  # it delivers once it leads
            job.remove()
    scheduler.start()
    try:
        started = time.time()
        as_("agent").create()
        (got,) = receiver.wait_for(1, timeout=10)
        assert got.at - started < 3
    finally:
        scheduler.shutdown(wait=True)
    with runtime.db.read_session() as s:
        assert s.exec(select(Subscription)).one().enabled


def test_the_city_platform_gets_the_results_of_its_tickets_back(runtime, client, district, as_, receiver):
    from hotline.db import utcnow
    from hotline.directory import create_user, issue_token
    from tests.helpers import PASSWORD

    runtime.settings.feed_settle_seconds = 0
    with runtime.db.session() as s:
        create_user(s, username="city", role="integration", password=PASSWORD, source="city12345", now=utcnow())
        district.tokens["city"] = issue_token(s, "city", now=utcnow())
    subscribe(as_, receiver.url, source="city12345", topics=["ticket.changed", "ticket.rated"])
    body = {"type": "complaint", "channel": "city", "content": "占道经营，影响通行", "external_id": "SJ-001"}
    tid = as_("city").post("/tickets", body, 201)["id"]
    as_("agent").create()  # the centre's own ticket: not the city's
    agent, handler, supervisor = as_("agent"), as_("housing_h"), as_("supervisor")
    agent.fire(tid, "dispatch", department="housing")
    handler.fire(tid, "sign")
    handler.fire(tid, "reply", result="已清理占道摊位")
    supervisor.fire(tid, "approve_reply")
    agent.fire(tid, "callback", reached=True, solved=True, rating=5)
    deliver_all(runtime)

    bodies = receiver.bodies()
    number = as_("agent").get(f"/tickets/{tid}")["number"]
    assert {b["data"]["ticket_number"] for b in bodies} == {number}
    events = [b["data"].get("event") for b in bodies if b["type"] == "ticket.changed"]
    assert events[:5] == ["dispatch", "sign", "reply", "approve_reply", "callback"]
    assert all(b["data"]["ticket"]["external_id"] == "SJ-001" for b in bodies if "ticket" in b["data"])
    rated = [b["data"] for b in bodies if b["type"] == "ticket.rated"]
    assert rated and rated[0]["case_number"] == number and rated[0]["level"] == 5
    sequences = [b["data"]["sequence"] for b in bodies]
    assert sequences == sorted(sequences)
    # The same through the pull feed, for the city's own account only.
    pulled = as_("city").get("/events", topic="ticket.changed")["events"]
    assert [e["data"]["event"] for e in pulled][:5] == events[:5]
    assert {e["data"]["ticket_number"] for e in pulled} == {number}

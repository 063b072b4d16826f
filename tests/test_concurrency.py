"""Concurrent changes to one ticket, over real HTTP: exactly one wins, the rest get 409."""

from tests.helpers import Api, race


def test_concurrent_signs_one_wins(server, client, district):
    agent = Api(client, district, "agent")
    tid = agent.create()["id"]
    agent.fire(tid, "dispatch")
    codes = race(server, district.headers("housing_h"), f"/api/v1/tickets/{tid}/transitions", [{"event": "sign"}] * 8)
    assert sorted(codes) == [200] + [409] * 7
    history = agent.get(f"/tickets/{tid}/history")
    assert [h["event"] for h in history].count("sign") == 1
    assert agent.get(f"/tickets/{tid}")["state"] == "in_progress"


def test_concurrent_conflicting_events_leave_an_allowed_state(server, client, district):
    agent = Api(client, district, "agent")
    tid = agent.create()["id"]
    version = agent.get(f"/tickets/{tid}")["version"]
    bodies = [
        {"event": "dispatch", "version": version},
        {"event": "cancel", "reason": "撤回", "version": version},
        {"event": "answer", "answer": "已解答", "version": version},
        {"event": "dispatch", "department": "water", "version": version},
    ] * 2
    codes = race(server, district.headers("agent"), f"/api/v1/tickets/{tid}/transitions", bodies)
    assert codes.count(200) == 1 and codes.count(409) == len(bodies) - 1
    history = agent.get(f"/tickets/{tid}/history")
    assert len(history) == 2  # create, and the one winner
    assert agent.get(f"/tickets/{tid}")["state"] == history[-1]["to"]


def test_concurrent_intake_loses_nothing(server, client, district):
    bodies = [{"type": "help", "content": f"第{i}号诉求", "external_id": f"ext-{i % 10}"} for i in range(40)]
    codes = race(server, district.headers("agent"), "/api/v1/tickets", bodies)
    assert codes.count(201) == 10 and codes.count(200) == 30
    tickets = Api(client, district, "agent").get("/tickets", page_size=100)
    assert tickets["total"] == 10
    assert len({t["number"] for t in tickets["items"]}) == 10

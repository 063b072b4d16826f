"""A second workflow works by configuration alone, per category or per ticket type."""

import shutil

import pytest
from fastapi.testclient import TestClient

from hotline.config import ROOT, Settings
from hotline.main import create_app
from hotline.runtime import Runtime
from tests.helpers import Api, build_district


def _loop_without_review(agent: Api, handler: Api, tid: int) -> None:
    agent.fire(tid, "dispatch")
    handler.fire(tid, "sign")
    t = handler.fire(tid, "reply", result="电话答复市民")
    assert t["state"] == "pending_callback"  # no centre review
    assert t["deadlines"]["callback_by"]
    agent.fire(tid, "callback", reached=True, solved=True, rating=5)
    assert agent.fire(tid, "close")["state"] == "archived"


def test_category_selects_the_workflow_without_review(client, district):
    admin, agent, water = (Api(client, district, u) for u in ("admin", "agent", "water_h"))
    admin.post(
        "/categories", {"code": "0301", "name": "水费咨询", "parent": "03", "workflow": "direct_reply"}, expect=201
    )
    admin.post("/categories", {"code": "0302", "name": "x", "workflow": "nope"}, expect=422)
    t = agent.create(type="consultation", category="0301")
    assert t["workflow"] == "direct_reply"
    _loop_without_review(agent, water, t["id"])
    # Other categories keep the default workflow, with the review.
    assert agent.create(category="03")["workflow"] == "default"


def test_ticket_type_selects_the_workflow(database, tmp_path, clock):
    wdir = tmp_path / "workflows"
    wdir.mkdir()
    for f in (ROOT / "workflows").glob("*.yaml"):
        shutil.copy(f, wdir / f.name)
    (wdir / "selection.yaml").write_text("default: default\ntypes:\n  consultation: direct_reply\n")
    settings = Settings(database_url=database.url, workflows_dir=wdir, embedded_scheduler=False)
    rt = Runtime(database, settings)
    rt.clock = clock
    district = build_district(rt)
    with TestClient(create_app(settings, runtime=rt)) as c:
        agent, housing = Api(c, district, "agent"), Api(c, district, "housing_h")
        t = agent.create(type="consultation")
        assert t["workflow"] == "direct_reply"
        _loop_without_review(agent, housing, t["id"])
        assert agent.create(type="complaint")["workflow"] == "default"


@pytest.fixture(autouse=True)
def _fresh_workflow_cache():
    from hotline.workflow.definition import workflow_set

    workflow_set.cache_clear()
    yield
    workflow_set.cache_clear()

"""The district's name and codes live with its data: the settings table, its fallback to
HOTLINE_DISTRICT_NAME, the runtime's copy, the codes' checks, and the demo that names it."""

import os

import pytest

from hotline import directory
from hotline.config import Settings
from hotline.demo.district import DEMO_PASSWORD, DEPARTMENTS, DISTRICT, REGION_CODE, STREETS, org_code
from hotline.directory import District, clean_org_code, clean_region_code
from hotline.errors import Invalid
from hotline.runtime import Runtime
from tests.test_cli import run, serving

# Real organisation codes, as published (their check characters are right).
REAL_ORG_CODES = ("91350100M000100Y43", "91110108551385082Q", "91440300708461136T")


def _runtime(database, name: str) -> Runtime:
    """A runtime of its own, as another process would have, with HOTLINE_DISTRICT_NAME=name."""
    return Runtime(database, Settings(database_url=database.url, embedded_scheduler=False, district_name=name))


def _read(runtime: Runtime) -> District:
    with runtime.db.read_session() as s:
        return runtime.district(s)


def test_without_settings_in_the_database_the_setting_names_the_district(database):
    assert _read(_runtime(database, "测试区")) == District(name="测试区", region_code=None)


def test_once_set_the_database_names_the_district_whatever_the_setting(database, clock):
    with database.session() as s:
        directory.set_district(s, name=" 青山区 ", region_code="330102000000", now=clock())
    assert _read(_runtime(database, "测试区")) == District(name="青山区", region_code="330102000000")
    # A blank region code clears it; the name stays required.
    with database.session() as s:
        directory.set_district(s, name="青山区", region_code="  ", now=clock())
        with pytest.raises(Invalid) as refused:
            directory.set_district(s, name="  ", region_code=None, now=clock())
    assert refused.value.field == "name" and "请填写区县名称" in refused.value.extra["zh"]
    assert _read(_runtime(database, "测试区")) == District(name="青山区", region_code=None)


def test_two_first_saves_at_once_make_one_row_and_no_error(database, clock):
    import threading

    barrier, errors = threading.Barrier(4), []

    def save(name: str) -> None:
        barrier.wait()
        try:
            with database.session() as s:
                directory.set_district(s, name=name, region_code="330102000000", now=clock())
        except Exception as exc:  # noqa: BLE001 - any failure fails the test below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(f"第{i}区",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert _read(_runtime(database, "测试区")).name in {f"第{i}区" for i in range(4)}


def test_the_runtime_keeps_what_it_read_until_this_process_changes_it(database, clock):
    here, elsewhere = _runtime(database, "示范区"), _runtime(database, "示范区")
    assert _read(here).name == "示范区"
    with database.session() as s:
        directory.set_district(s, name="青山区", region_code=None, now=clock())
    assert _read(here).name == "示范区"  # another process changed it: read again after a while
    here.invalidate_district()  # this process changed it: read again now
    assert _read(here).name == "青山区"
    with database.session() as s:
        directory.set_district(s, name="绿水区", region_code=None, now=clock())
    elsewhere.CALENDAR_RECHECK_SECONDS = here.CALENDAR_RECHECK_SECONDS = 0.0
    assert _read(here).name == _read(elsewhere).name == "绿水区"


def test_region_codes_are_twelve_digits():
    assert clean_region_code(" 330102000000 ") == "330102000000"
    assert clean_region_code("") is clean_region_code(None) is None
    for bad in ("33010200000", "3301020000001", "33010200000a", "３３０１０２０００００"):
        with pytest.raises(Invalid) as refused:
            clean_region_code(bad)
        assert refused.value.field == "region_code" and "12 位数字" in refused.value.extra["zh"]


def test_organisation_codes_are_eighteen_characters_with_their_check_character():
    for code in REAL_ORG_CODES:
        assert clean_org_code(code) == code
    assert clean_org_code(" 91350100m000100y43 ") == "91350100M000100Y43"
    assert clean_org_code("") is clean_org_code(None) is None
    for bad, says in (
        ("91350100M000100Y4", "18 位"),
        ("91350100M000100Y431", "18 位"),
        ("91350100M0001O0Y43", "不含 I、O、S、V、Z"),
        ("91350100M000100Y42", "校验位不符"),
        ("91350100M000100Y-3", "18 位"),
    ):
        with pytest.raises(Invalid) as refused:
            clean_org_code(bad)
        assert refused.value.field == "org_code" and says in refused.value.extra["zh"], bad


def test_the_demo_gives_every_department_its_own_valid_organisation_code():
    names = [name for _, name, _ in DEPARTMENTS] + [f"{DISTRICT}{s.name}办事处" for s in STREETS]
    codes = [org_code(number, name) for number, name in enumerate(names, start=1)]
    assert [clean_org_code(c) for c in codes] == codes
    assert len(set(codes)) == len(codes)
    assert all(c[2:8] == REGION_CODE[:6] for c in codes)
    assert org_code(11, "江州青山供水有限公司").startswith("91") and codes[0].startswith("11")
    assert clean_region_code(REGION_CODE) == REGION_CODE


def test_the_api_takes_a_departments_organisation_code_and_refuses_a_bad_one(client, district, runtime):
    h = district.headers("admin")
    r = client.post("/api/v1/departments", json={"code": "culture", "name": "区文旅局", "org_code": "1"}, headers=h)
    assert r.status_code == 422 and "org_code" in r.text
    r = client.post(
        "/api/v1/departments",
        json={"code": "culture", "name": "区文旅局", "org_code": "91350100M000100Y42"},
        headers=h,
    )
    assert r.status_code == 422 and "org_code" in r.text
    r = client.post(
        "/api/v1/departments",
        json={"code": "culture", "name": "区文旅局", "org_code": "91350100m000100y43"},
        headers=h,
    )
    assert r.status_code == 201 and r.json()["org_code"] == "91350100M000100Y43"
    listed = {d["code"]: d["org_code"] for d in client.get("/api/v1/departments", headers=h).json()}
    assert listed["culture"] == "91350100M000100Y43" and listed["housing"] is None


def test_open311_discovery_names_the_district_of_the_database(client, runtime, clock):
    with runtime.db.session() as s:
        directory.set_district(s, name="青山区", region_code=None, now=clock())
    runtime.invalidate_district()
    assert client.get("/open311/discovery.json").json()["contact"] == "青山区12345政务服务便民热线"


@pytest.mark.browser
def test_the_header_names_the_district_the_demo_loaded_without_the_setting(browser, tmp_path):
    """`hotline demo-data`, then `hotline serve` alone, without HOTLINE_DISTRICT_NAME: the
    pages name the demo's district, not the setting's default."""
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_DISTRICT_NAME"}
    env |= {"HOTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}", "HOTLINE_EMBEDDED_SCHEDULER": "false"}
    assert Settings.model_fields["district_name"].default != DISTRICT
    run(env, "demo-data", "--tickets", "0")
    with serving(env, "/login") as (url, _):
        context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(10000)
        page.goto(f"{url}/login")
        assert f"{DISTRICT}政务服务便民热线" in page.inner_text(".brand")
        assert f"{DISTRICT}12345政务服务便民热线" in page.inner_text("main")
        assert f"{DISTRICT}12345热线" in page.title()
        page.fill("#username", "admin")
        page.fill("#password", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.goto(f"{url}/admin/district")
        assert f"{DISTRICT}政务服务便民热线" in page.inner_text(".brand")
        assert REGION_CODE in page.inner_text("#district")
        page.goto(f"{url}/admin/departments")
        assert page.input_value("tr[data-code=cgj] input[name=org_code]") == org_code(2, "青山区城市管理执法局")
        context.close()

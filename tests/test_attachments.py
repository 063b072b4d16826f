"""Attachments (附件): judged by content, size-capped, stored outside the database, read by
exactly those who see the ticket, removed with the retention rule; nothing written half."""

import io
import os
import stat
import zipfile
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import text
from sqlmodel import select

from hotline.attachments.files import remove_expired
from hotline.models import Attachment, OutboxMessage, Ticket
from tests.helpers import Api
from tests.test_open311 import submit
from tests.test_pages_agent import choose_place, pick_category, places  # noqa: F401  (a fixture)
from tests.test_pages_kb import PHONE_VIEWPORT
from tests.test_pages_smoke import SHOTS, login


def png(width: int = 800, height: int = 600) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def stored_files(runtime) -> list[Path]:
    root = Path(runtime.settings.attachments_dir)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def post_file(client, district, user: str, ticket_id: int, data: bytes, name: str = "photo.png", kind: str = "photo"):
    return client.post(
        f"/api/v1/tickets/{ticket_id}/attachments",
        headers=district.headers(user),
        data={"kind": kind},
        files={"file": (name, data, "application/octet-stream")},
    )


@pytest.fixture
def dispatched(client, district) -> int:
    agent = Api(client, district, "agent")
    ticket = agent.create()
    agent.fire(ticket["id"], "dispatch", department="housing")
    return ticket["id"]


def test_a_photo_is_stored_outside_the_database_with_a_thumbnail_and_a_history_row(
    client, runtime, district, dispatched
):
    r = post_file(client, district, "agent", dispatched, png(), name="..\\..\\现场照片.exe")
    assert r.status_code == 201, r.text
    body = r.json()
    assert {k: body[k] for k in ("name", "size", "content_type", "kind")} == {
        "name": "现场照片.png",
        "size": len(png()),
        "content_type": "image/png",
        "kind": "photo",
    }
    files = stored_files(runtime)
    assert len(files) == 2  # the file and its thumbnail, under random names
    assert all(stat.S_IMODE(os.stat(f).st_mode) == 0o600 for f in files)
    assert all("现场" not in str(f) and len(f.name) == 32 for f in files)
    history = Api(client, district, "agent").get(f"/tickets/{dispatched}/history")
    attach = [h for h in history if h["event"] == "attach"]
    assert attach and attach[0]["details"]["attachment"]["url"].endswith(f"/api/v1/attachments/{body['id']}")
    with runtime.db.read_session() as s:
        events = s.exec(select(OutboxMessage).where(OutboxMessage.topic == "ticket.changed")).all()
        linked = [e.payload["details"]["attachment"] for e in events if e.payload["event"] == "attach"]
    assert linked[0]["url"] == body["url"] and linked[0]["thumbnail_url"] == body["thumbnail_url"]


def test_a_download_is_an_attachment_of_the_judged_type_never_sniffed_nor_cached(client, district, dispatched):
    aid = post_file(client, district, "agent", dispatched, png(), name='a"b;c.png').json()["id"]
    r = client.get(f"/api/v1/attachments/{aid}", headers=district.headers("housing_h"))
    assert r.status_code == 200 and r.content == png()
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    disposition = r.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="attachment-{aid}.png"')
    assert '"b' not in disposition.split(";", 2)[2]
    thumb = client.get(f"/api/v1/attachments/{aid}/thumbnail", headers=district.headers("housing_h"))
    assert thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320


def test_files_are_visible_exactly_to_those_who_see_the_ticket(client, district, dispatched):
    aid = post_file(client, district, "agent", dispatched, docx(), name="材料.docx", kind="document").json()["id"]
    for user in ("agent", "supervisor", "housing_h", "housing_l"):
        assert client.get(f"/api/v1/attachments/{aid}", headers=district.headers(user)).status_code == 200
        items = client.get(f"/api/v1/tickets/{dispatched}/attachments", headers=district.headers(user)).json()
        assert [i["id"] for i in items["items"]] == [aid]
    for user in ("urban_h", "market_h"):
        assert client.get(f"/api/v1/attachments/{aid}", headers=district.headers(user)).status_code == 404
        assert (
            client.get(f"/api/v1/tickets/{dispatched}/attachments", headers=district.headers(user)).status_code == 404
        )
    assert client.get(f"/api/v1/attachments/{aid}").status_code == 401


def test_a_file_for_a_ticket_the_caller_cannot_see_is_404_and_nothing_is_stored(client, runtime, district, dispatched):
    assert post_file(client, district, "urban_h", dispatched, png()).status_code == 404
    assert post_file(client, district, "agent", 999999, png()).status_code == 404
    assert stored_files(runtime) == []


@pytest.mark.parametrize(
    "data,name",
    [
        (b"just some text, not a photo", "photo.jpg"),
        (b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 100, "photo.png"),  # a Windows program renamed
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "a.svg"),
        (b"<html><script>alert(1)</script></html>", "page.pdf"),
    ],
)
def test_a_type_not_allowed_is_415_judged_by_content_not_by_name(client, runtime, district, dispatched, data, name):
    r = post_file(client, district, "agent", dispatched, data, name=name)
    assert r.status_code == 415, r.text
    assert "JPEG" in r.json()["detail"]
    assert stored_files(runtime) == []


def test_a_zip_that_is_no_office_document_and_a_broken_image_are_415(client, runtime, district, dispatched):
    plain = io.BytesIO()
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("evil.exe", "MZ")
    assert post_file(client, district, "agent", dispatched, plain.getvalue(), "a.docx", "document").status_code == 415
    broken = png()[:40]
    assert post_file(client, district, "agent", dispatched, broken).status_code == 415
    assert stored_files(runtime) == []


def test_office_pdf_and_audio_files_are_allowed(client, district, dispatched):
    cases = [
        (docx(), "document", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "document", "application/pdf"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504, "document", "application/x-ole-storage"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 100, "recording", "audio/mpeg"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 100, "recording", "audio/wav"),
    ]
    for data, kind, expected in cases:
        r = post_file(client, district, "agent", dispatched, data, name="x.bin", kind=kind)
        assert r.status_code == 201 and r.json()["content_type"] == expected, r.text


def test_a_file_over_the_limit_is_413(client, runtime, district, dispatched):
    runtime.settings.max_attachment_bytes = 1000
    r = post_file(client, district, "agent", dispatched, png(800, 600))
    assert r.status_code == 413 and "1000 bytes" in r.json()["detail"]
    assert stored_files(runtime) == []


def test_a_body_over_the_upload_limit_is_413_before_it_is_read_whole(server, runtime, district, dispatched):
    too_big = runtime.settings.max_attachment_bytes + 512 * 1024
    headers = {**district.headers("agent"), "content-type": "multipart/form-data; boundary=x"}
    declared = httpx.post(
        f"{server}/api/v1/tickets/{dispatched}/attachments", headers=headers, content=b"x" * too_big, timeout=30
    )
    assert declared.status_code == 413

    def chunks():  # no content-length: counted as it streams in
        yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
        for _ in range(too_big // (64 * 1024) + 1):
            yield b"y" * 64 * 1024

    streamed = httpx.post(
        f"{server}/api/v1/tickets/{dispatched}/attachments", headers=headers, content=chunks(), timeout=30
    )
    assert streamed.status_code == 413 and "larger than" in streamed.json()["detail"]
    assert stored_files(runtime) == []


def test_a_body_that_is_no_upload_keeps_the_common_limit_on_the_upload_paths(client, runtime, district, dispatched):
    body = "kind=photo&x=" + "a" * runtime.settings.max_body_bytes
    headers = {**district.headers("agent"), "content-type": "application/x-www-form-urlencoded"}
    r = client.post(f"/api/v1/tickets/{dispatched}/attachments", headers=headers, content=body)
    assert r.status_code == 413 and f"{runtime.settings.max_body_bytes} bytes" in r.json()["detail"]


def test_missing_or_wrong_fields_are_422_naming_the_field(client, district, dispatched):
    h = district.headers("agent")
    r = client.post(f"/api/v1/tickets/{dispatched}/attachments", headers=h, data={"kind": "photo"})
    assert r.status_code == 422 and r.json()["field"] == "file"
    r = client.post(
        f"/api/v1/tickets/{dispatched}/attachments",
        headers=h,
        data={"kind": "selfie"},
        files={"file": ("a.png", png())},
    )
    assert r.status_code == 422 and r.json()["field"] == "kind"
    r = client.post(
        f"/api/v1/tickets/{dispatched}/attachments",
        headers=h,
        data={"kind": "recording", "reference": "file:///etc/passwd"},
    )
    assert r.status_code == 422 and r.json()["field"] == "reference"


def test_a_recording_by_reference_and_who_may_add_which_kind(client, district, dispatched):
    h = district.headers("agent")
    url = "https://pbx.example.gov.cn/recordings/20261102-0001.wav"
    r = client.post(
        f"/api/v1/tickets/{dispatched}/attachments", headers=h, data={"kind": "recording", "reference": url}
    )
    assert r.status_code == 201 and r.json()["reference"] == url and r.json()["url"] is None
    assert client.get(f"/api/v1/attachments/{r.json()['id']}", headers=h).status_code == 404  # no file here
    assert post_file(client, district, "housing_h", dispatched, png(), kind="recording").status_code == 403
    assert post_file(client, district, "agent", dispatched, png(), kind="proof").status_code == 403
    assert post_file(client, district, "housing_h", dispatched, png(), kind="proof").status_code == 201


def test_a_failed_commit_leaves_no_orphan_file(client, runtime, district, dispatched):
    with runtime.db.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_attachments BEFORE INSERT ON attachments"
                    " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_attachment() RETURNS trigger LANGUAGE plpgsql AS"
                    " $$ BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_attachments BEFORE INSERT ON attachments"
                    " FOR EACH ROW EXECUTE FUNCTION refuse_attachment()"
                )
            )
    try:
        with runtime.db.read_session() as s:
            version = s.get(Ticket, dispatched).version
        r = post_file(client, district, "agent", dispatched, png())
        assert r.status_code == 409, r.text
        assert stored_files(runtime) == []
        with runtime.db.read_session() as s:
            assert s.exec(select(Attachment)).first() is None
            assert s.get(Ticket, dispatched).version == version
    finally:
        with runtime.db.engine.begin() as conn:
            conn.execute(
                text("DROP TRIGGER refuse_attachments" + (" ON attachments" if conn.dialect.name != "sqlite" else ""))
            )
            if conn.dialect.name != "sqlite":
                conn.execute(text("DROP FUNCTION refuse_attachment()"))


def test_files_of_a_finished_ticket_are_removed_after_the_retention(client, runtime, district, clock):
    agent = Api(client, district, "agent")
    tid = agent.create()["id"]
    aid = post_file(client, district, "agent", tid, png()).json()["id"]
    agent.fire(tid, "cancel", reason="市民撤回")
    assert post_file(client, district, "agent", tid, png()).status_code == 409  # finished: no more files
    runtime.settings.attachment_retention_days = 30
    assert remove_expired(runtime, now=clock() + timedelta(days=29)) == 0
    assert len(stored_files(runtime)) == 2
    assert remove_expired(runtime, now=clock() + timedelta(days=31)) == 1
    assert stored_files(runtime) == []
    assert client.get(f"/api/v1/attachments/{aid}", headers=district.headers("agent")).status_code == 404
    listed = agent.get(f"/tickets/{tid}/attachments")["items"]
    assert listed[0]["removed"] is True and listed[0]["url"] is None


def test_an_open311_media_url_is_kept_as_a_link_never_fetched(client, runtime, district):
    url = "https://app.example.gov.cn/media/leak.jpg"
    number = submit(client, district, media_url=url).json()[0]["service_request_id"]
    submit(client, district, media_url="file:///etc/passwd")  # not a link to keep: only in the history
    agent = Api(client, district, "agent")
    (ticket,) = agent.get("/tickets", q=number)["items"]
    (item,) = agent.get(f"/tickets/{ticket['id']}/attachments")["items"]
    assert item["reference"] == url and item["kind"] == "photo" and item["url"] is None
    with runtime.db.read_session() as s:
        assert len(s.exec(select(Attachment)).all()) == 1
    assert stored_files(runtime) == []


@pytest.mark.browser
@pytest.mark.usefixtures("places")
def test_an_agent_attaches_a_photo_at_intake_and_the_department_sees_its_thumbnail(
    page, server, runtime, district, tmp_path
):
    photo = tmp_path / "现场.png"
    photo.write_bytes(png(1200, 900))
    login(page, server, "agent")
    page.fill("#caller_phone", "13800001234")
    page.fill("#caller_name", "赵先生")
    page.check("#type-complaint")
    pick_category(page, "物业", "0101")
    choose_place(page, "西城街道", "光明社区", "光明路12号")
    page.fill("#content", "楼道漏水，照片已附")
    page.set_input_files("#attachments", str(photo))
    page.click("#go-dispatch")
    page.wait_for_url("**/agent/intake?done=dispatch*")
    with runtime.db.read_session() as s:
        ticket = s.exec(select(Ticket).where(Ticket.content == "楼道漏水，照片已附")).one()
        assert [a.kind for a in s.exec(select(Attachment).where(Attachment.ticket_id == ticket.id))] == ["photo"]
    page.context.clear_cookies()
    login(page, server, "housing_h")
    page.goto(f"{server}/tickets/{ticket.id}")
    thumb = page.locator("#attachments img.thumbnail")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.naturalWidth") == 320
    expect(page.locator(".timeline")).to_contain_text("上传附件")
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "ticket-attachments.png"), full_page=True)
    # On a phone: the department's page keeps to the screen's width, the photo within it.
    page.set_viewport_size(PHONE_VIEWPORT)
    expect(thumb).to_be_visible()
    page.screenshot(path=str(SHOTS / "ticket-attachments-phone.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
    assert thumb.evaluate("img => img.getBoundingClientRect().right") <= PHONE_VIEWPORT["width"]

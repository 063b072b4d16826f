"""The performance exports (CSV, xlsx) break each street office down by its communities
(二级派单): their rows under their street, unranked, with the rates of their part only."""

import csv
import io

from openpyxl import load_workbook

from hotline.db import utcnow
from hotline.directory import create_department
from tests.communities import add_communities
from tests.helpers import Api, sign_in


def test_the_exports_list_the_communities_under_their_street(runtime, client, district, clock):
    add_communities(runtime, district)
    with runtime.db.session() as s:
        create_department(s, code="east_f", name="=1+1社区", parent="street_a", now=utcnow())
    first = clock().date()
    agent, street = Api(client, district, "agent"), Api(client, district, "street_a_h")
    for community in ("east_1", "east_1", "east_f"):
        tid = agent.create(category="0102")["id"]
        agent.fire(tid, "dispatch", department="street_a")
        street.fire(tid, "sign")
        street.fire(tid, "sub_dispatch", community=community)
    Api(client, district, "east_1_h").fire(tid - 1, "sub_sign")
    period = f"from={first.isoformat()}&to={clock().date().isoformat()}"
    sign_in(client, "supervisor")

    rows = list(csv.reader(io.StringIO(client.get(f"/performance/export.csv?{period}").content.decode("utf-8-sig"))))
    header = rows[0]
    assert header[:3] == ["排名", "承办单位", "所属街道"]
    names = [r[1] for r in rows[1:]]
    at = names.index("东城街道办事处")
    # Right under the street office, in code order; a formula-like name neutralised.
    assert names[at + 1 : at + 4] == ["东湖社区居委会", "东岸社区居委会", "'=1+1社区"]
    east_1 = rows[1 + at + 1]
    assert east_1[0] == "" and east_1[2] == "东城街道办事处"
    col = {h: i for i, h in enumerate(header)}
    assert east_1[col["派单量"]] == "2" and east_1[col["及时签收率"]] == "50.0%"  # one of its two signed
    # The callbacks and ratings, and so the score, are the street office's.
    assert east_1[col["满意率"]] == "" and east_1[col["综合得分"]] == ""
    # A community of another street comes under its own street, and the district total is the units'.
    assert names[names.index("西城街道办事处") + 1] == "西苑社区居委会"
    assert rows[-1][1] == "全区合计" and rows[-1][col["派单量"]] == "3"

    book = load_workbook(io.BytesIO(client.get(f"/performance/export.xlsx?{period}").content))
    sheet = book["绩效考核"]
    values = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    by_name = {v[1]: v for v in values if v[1]}
    assert by_name["东湖社区居委会"][2] == "东城街道办事处" and by_name["东湖社区居委会"][3] == 2
    assert (
        "=1+1社区" in by_name
        and sheet.cell(row=4 + [v[1] for v in values].index("=1+1社区"), column=2).data_type == "s"
    )
    assert any("社区（二级派单）列于所属街道之下" in (v[0] or "") for v in values)

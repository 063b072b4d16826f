"""Test helpers for second-level dispatch (二级派单): communities under the test district's
street office 东城街道 (street_a), a second street office with one of its own, and their people."""

from hotline.db import utcnow
from hotline.directory import create_department, department_by_code
from hotline.runtime import Runtime
from tests.helpers import District, add_user

# (code, name, street office); street_b is a second street office.
COMMUNITIES = [
    ("east_1", "东湖社区居委会", "street_a"),
    ("east_2", "东岸社区居委会", "street_a"),
    ("west_1", "西苑社区居委会", "street_b"),
]
# username, role, department
PEOPLE = [
    ("street_a_l", "leader", "street_a"),
    ("east_1_h", "handler", "east_1"),
    ("east_1_l", "leader", "east_1"),
    ("east_2_h", "handler", "east_2"),
    ("west_1_h", "handler", "west_1"),
]


def add_communities(runtime: Runtime, district: District) -> None:
    """The communities and their people (with API tokens) added to the test district."""
    now = utcnow()
    with runtime.db.session() as s:
        create_department(s, code="street_b", name="西城街道办事处", now=now)
        for code, name, parent in COMMUNITIES:
            create_department(s, code=code, name=name, parent=parent, now=now)
        for username, role, dept in PEOPLE:
            add_user(s, district, username, role, department_by_code(s, dept).id, now)

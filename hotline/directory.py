"""The district's settings, departments, users, tokens, categories and routing rules: what
administrators keep."""

import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, select

from hotline import audit_log
from hotline.db import dialect_insert
from hotline.errors import Conflict, HotlineError, Invalid, NotFound
from hotline.models import (
    DEPARTMENT_ROLES,
    INTEGRATION,
    OWN_SOURCE,
    ROLES,
    SOURCE_PATTERN,
    ApiToken,
    Category,
    Department,
    DistrictSettings,
    Place,
    RoutingRule,
    Ticket,
    User,
    WebSession,
)
from hotline.security import hash_password, new_token, token_digest

# The password policy (等保 身份鉴别): at least this long, three of the four kinds of
# character, and not the username inside it.
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
PASSWORD_CLASSES = 3
PASSWORD_RULE = (
    f"至少 {MIN_PASSWORD_LENGTH} 个字符，包含小写字母、大写字母、数字、其他符号中的至少三类，且不得包含用户名"
)
# A username: ASCII letters, digits and _ . - @, 2 to 64 of them.
USERNAME = re.compile(r"^[A-Za-z0-9_.\-@]{2,64}$")
# A department's or a category's code.
CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
MAX_DISTRICT_NAME = 50
REGION_CODE = re.compile(r"^[0-9]{12}$")
# 统一社会信用代码 (GB 32100-2015): 17 characters of this alphabet (digits and capitals
# without I, O, S, V, Z), then a check character computed from them with these weights.
ORG_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
ORG_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# A category row, or a cached snapshot of one: anything with an id and a parent_id.
C = TypeVar("C")
# A field of an update that was not given (None clears it).
UNSET = object()


def department_by_code(session: Session, code: str, *, field: str = "department") -> Department:
    dept = session.exec(select(Department).where(Department.code == code)).first()
    if dept is None:
        raise Invalid(f"no department with the code {code!r}", field=field, zh=f"没有编码为“{code}”的单位")
    return dept


def centre_department(session: Session, dept: Department, *, field: str = "department") -> Department:
    """The department itself, when the centre may give it work: a community (社区) gets its
    work from its street office (二级派单), never from the centre's dispatch, a routing rule
    or a category's default (422)."""
    if dept.parent_id is not None:
        street = session.get(Department, dept.parent_id)
        raise Invalid(
            f"{dept.code!r} is a community: it gets its work from its street office "
            f"{street.code if street else dept.parent_id!r}, not from the centre",
            field=field,
            zh=f"“{dept.name}”是社区，由所属街道转派（二级派单），中心不能直接派给它"
            + (f"，请选择“{street.name}”" if street else ""),
        )
    return dept


def active_departments(session: Session, *, communities: bool = True) -> list[Department]:
    """The departments that can be given work, in code order; without the communities, those
    the centre dispatches to (a community gets its work from its street office)."""
    stmt = select(Department).where(Department.active)
    if not communities:
        stmt = stmt.where(Department.parent_id.is_(None))
    return list(session.exec(stmt.order_by(Department.code)).all())


def communities_of(session: Session, street_id: int | None) -> list[Department]:
    """The active communities (社区) under a street office, in code order (二级派单)."""
    if street_id is None:
        return []
    stmt = select(Department).where(Department.parent_id == street_id, Department.active)
    return list(session.exec(stmt.order_by(Department.code)).all())


def category_by_code(session: Session, code: str, *, field: str = "category") -> Category:
    category = session.exec(select(Category).where(Category.code == code)).first()
    if category is None:
        raise Invalid(f"no category with the code {code!r}", field=field, zh=f"没有编码为“{code}”的分类")
    return category


def category_path(category_id: int | None, get: Callable[[int], C | None]) -> list[C]:
    """The category and its ancestors, root first. `get` finds a category by id (a dict's
    `get`, or the session's); a parent it does not find, or a loop, ends the path."""
    path: list[C] = []
    seen: set[int] = set()
    while category_id is not None and category_id not in seen:
        seen.add(category_id)
        category = get(category_id)
        if category is None:
            break
        path.append(category)
        category_id = category.parent_id
    return path[::-1]


@dataclass(frozen=True)
class District:
    """The district as its data names it: what the pages, reports and messages call it, and
    its codes for the national rating system."""

    name: str
    region_code: str | None


def district(session: Session, fallback_name: str) -> District:
    """The district's settings; `fallback_name` (HOTLINE_DISTRICT_NAME) when none names it."""
    row = session.get(DistrictSettings, 1)
    if row is None:
        return District(name=fallback_name, region_code=None)
    return District(name=row.name or fallback_name, region_code=row.region_code)


def clean_region_code(value: str | None) -> str | None:
    """An administrative region code (行政区划代码) as entered, blank as None; 422 unless 12 digits."""
    value = (value or "").strip()
    if not value:
        return None
    if not REGION_CODE.match(value):
        raise Invalid(
            f"the region code must be 12 digits, not {value!r}",
            field="region_code",
            zh="行政区划代码应为 12 位数字（如 330102000000）",
        )
    return value


def clean_org_code(value: str | None) -> str | None:
    """An organisation code (统一社会信用代码) as entered, upper-cased, blank as None; 422
    unless 18 characters of its alphabet with the right check character."""
    value = (value or "").strip().upper()
    if not value:
        return None
    if len(value) != 18 or any(ch not in ORG_CODE_ALPHABET for ch in value):
        raise Invalid(
            f"the organisation code must be 18 digits and capital letters (not I, O, S, V, Z), not {value!r}",
            field="org_code",
            zh="统一社会信用代码应为 18 位数字或大写字母（不含 I、O、S、V、Z）",
        )
    if value[17] != org_code_check(value[:17]):
        raise Invalid(
            f"the organisation code {value!r} fails its check character",
            field="org_code",
            zh=f"统一社会信用代码“{value}”的校验位不符，请核对",
        )
    return value


def org_code_check(first17: str) -> str:
    """The check character (the 18th) of an organisation code's first 17 characters."""
    total = sum(ORG_CODE_ALPHABET.index(ch) * w for ch, w in zip(first17, ORG_CODE_WEIGHTS, strict=True))
    return ORG_CODE_ALPHABET[-total % 31]


def set_district(session: Session, *, name: str, region_code: str | None, now: datetime) -> DistrictSettings:
    """Name the district and set its region code (validated; None clears it)."""
    name = name.strip()
    if not name or len(name) > MAX_DISTRICT_NAME:
        raise Invalid(
            f"the district's name needs 1 to {MAX_DISTRICT_NAME} characters",
            field="name",
            zh=f"请填写区县名称（不超过 {MAX_DISTRICT_NAME} 个字）",
        )
    # One statement, so that two first saves at once are one row, the later winning.
    insert = dialect_insert(session.get_bind().dialect.name)(DistrictSettings)
    values = {"name": name, "region_code": clean_region_code(region_code), "updated_at": now}
    was = session.get(DistrictSettings, 1)
    before = {"name": was.name, "region_code": was.region_code} if was else {}
    session.execute(
        insert.values(id=1, **values).on_conflict_do_update(index_elements=["id"], set_=values),
        execution_options={"synchronize_session": False},
    )
    row = session.get(DistrictSettings, 1, populate_existing=True)
    after = {"name": row.name, "region_code": row.region_code}
    changed = [k for k in after if before.get(k) != after[k]]
    if changed:
        audit_log.record(
            session,
            "district.update",
            target_type="district",
            target_id=1,
            target_label=row.name,
            before={k: before.get(k) for k in changed},
            after={k: after[k] for k in changed},
        )
    return row


def create_department(
    session: Session, *, code: str, name: str, org_code: str | None = None, parent: str | None = None, now: datetime
) -> Department:
    """A new department with its organisation code, if given (validated); 409 when the code is
    taken. `parent`: a community's street office, by code (itself no community)."""
    org_code = clean_org_code(org_code)
    taken = session.exec(select(Department).where(func.lower(Department.code) == code.lower())).first()
    if taken is not None:
        same = taken.code == code
        raise Conflict(
            f"a department with the code {taken.code!r} exists already"
            + ("" if same else f" (codes may not differ in case only: {code!r})"),
            zh=f"{'社区' if parent else '单位'}编码“{code}”已被使用"
            + ("" if same else f"（与“{taken.name}”的编码“{taken.code}”仅大小写不同）"),
        )
    parent_id = _street_office(session, parent).id if parent is not None else None
    _name_free(session, name, parent_id)
    dept = Department(code=code, name=name, org_code=org_code, parent_id=parent_id, created_at=now)
    session.add(dept)
    session.flush()
    return dept


def _name_free(session: Session, name: str, parent_id: int | None, itself: Department | None = None) -> None:
    """Two units in use the centre dispatches to never share a name, nor two communities of one
    street (the lists show names, not codes); a deactivated one may (a department re-formed
    under a new code keeps its name). 409 naming the other."""
    stmt = select(Department).where(
        Department.name == name.strip(),
        Department.active,
        Department.parent_id.is_(None) if parent_id is None else Department.parent_id == parent_id,
    )
    if itself is not None:
        stmt = stmt.where(Department.id != itself.id)
    other = session.exec(stmt).first()
    if other is not None:
        raise Conflict(
            f"the department {other.code!r} in use has the name {other.name!r} already",
            zh=f"已有在用的单位名为“{other.name}”（编码 {other.code}），请换一个名称",
        )


def _no_centre_work(session: Session, dept: Department) -> None:
    """A unit becoming a community: no routing rule or category default may name it (the
    centre never gives a community work), 409 saying which."""
    count = select(func.count())
    rules = session.exec(count.select_from(RoutingRule).where(RoutingRule.department_id == dept.id)).one()
    defaults = session.exec(count.select_from(Category).where(Category.department_id == dept.id)).one()
    if rules or defaults:
        raise Conflict(
            f"{dept.code!r} is named by {rules} routing rule(s) and {defaults} category default(s): "
            "point them elsewhere before making it a community",
            zh=f"“{dept.name}”仍是 {rules} 条派单规则、{defaults} 个分类的默认承办单位，请先改为其他单位再设为社区",
        )


def _street_office(session: Session, code: str, community: Department | None = None) -> Department:
    """The street office a community is put under (二级派单): an active department the centre
    dispatches to, itself no community; one level only, so no cycle (422 naming `parent`)."""
    street = department_by_code(session, code, field="parent")
    if community is not None and street.id == community.id:
        raise Invalid(f"{code!r} cannot be its own street office", field="parent", zh="社区不能以自身为所属街道")
    if street.parent_id is not None:
        raise Invalid(
            f"{code!r} is a community itself; a community's parent is a street office",
            field="parent",
            zh=f"“{street.name}”本身是社区，社区只能隶属于街道",
        )
    if not street.active:
        raise Invalid(f"the street office {code!r} is deactivated", field="parent", zh=f"“{street.name}”已停用")
    if community is not None:
        below = session.exec(select(Department.id).where(Department.parent_id == community.id)).first()
        if below is not None:
            raise Invalid(
                f"{community.code!r} has communities of its own: a street office cannot become a community",
                field="parent",
                zh=f"“{community.name}”下辖社区，不能再隶属于其他街道",
            )
    return street


def update_department(
    session: Session, code: str, *, name: str | None = None, parent: object = UNSET, active: bool | None = None
) -> Department:
    """Rename a department, put a community under another street office (None: no longer a
    community), or (de)activate it; what is not given stays. 404 for an unknown code."""
    dept = session.exec(select(Department).where(Department.code == code)).first()
    if dept is None:
        raise NotFound(f"no department with the code {code!r}", zh="单位不存在")
    before = (dept.name, dept.parent_id, dept.active)
    if name is not None:
        name = name.strip()
        if not name or len(name) > 100:
            raise Invalid("the name needs 1 to 100 characters", field="name", zh="请填写名称（不超过 100 个字）")
        dept.name = name
    if parent is not UNSET:
        dept.parent_id = _street_office(session, parent, dept).id if parent is not None else None
        if dept.parent_id is not None and before[1] is None:
            _no_centre_work(session, dept)
    if active is not None:
        dept.active = active
    # Checked when the name, the street or the switch changes (a unit that shared its name
    # before the rule existed can still be changed otherwise).
    if dept.active and (dept.name, dept.parent_id, dept.active) != before:
        _name_free(session, dept.name, dept.parent_id, dept)
    session.add(dept)
    session.flush()
    return dept


def create_category(
    session: Session,
    runtime,
    *,
    code: str,
    name: str,
    parent: str | None = None,
    department: str | None = None,
    workflow: str | None = None,
) -> Category:
    """A new node of the category tree; 409 when the code is taken."""
    if session.exec(select(Category).where(Category.code == code)).first():
        raise Conflict(f"a category with the code {code!r} exists already", zh=f"分类编码“{code}”已被使用")
    parent_row = category_by_code(session, parent, field="parent") if parent else None
    dept = centre_department(session, department_by_code(session, department)) if department else None
    if workflow is not None and workflow not in runtime.workflows.workflows:
        known = ", ".join(sorted(runtime.workflows.workflows))
        raise Invalid(f"no workflow named {workflow!r} (known: {known})", field="workflow", zh="所选流程不存在")
    category = Category(
        code=code,
        name=name,
        parent_id=parent_row.id if parent_row else None,
        department_id=dept.id if dept else None,
        workflow=workflow,
    )
    session.add(category)
    session.flush()
    return category


def create_rule(
    session: Session,
    *,
    department: str,
    category: str | None = None,
    street: str | None = None,
    community: str | None = None,
    priority: int = 0,
) -> RoutingRule:
    """A routing rule: category and place (one the district lists, when it lists its places)
    to department."""
    dept = centre_department(session, department_by_code(session, department))
    check_place(places(session), street, community)
    cat = category_by_code(session, category) if category else None
    rule = RoutingRule(
        category_id=cat.id if cat else None,
        street=street,
        community=community,
        department_id=dept.id,
        priority=priority,
    )
    session.add(rule)
    session.flush()
    return rule


def create_user(
    session: Session,
    *,
    username: str,
    role: str,
    password: str,
    department: str | None = None,
    display_name: str | None = None,
    source: str | None = None,
    must_change: bool = True,
    now: datetime,
) -> User:
    """A new user with an argon2 password hash; department users need their department, an
    integration account (an outside platform's) its source. The password follows the policy
    (check_password_policy) and, set by someone else, must be changed at the first sign-in
    unless `must_change` is false. 409 when the name is taken in any case."""
    if not isinstance(username, str) or not USERNAME.match(username):
        raise Invalid(
            f"the username {username!r} must be 2 to 64 ASCII letters, digits or _ . - @",
            field="username",
            zh="用户名为 2–64 位字母、数字或 _ . - @",
        )
    if role not in ROLES:
        raise Invalid(f"unknown role {role!r} (one of: {', '.join(ROLES)})", field="role", zh="请选择有效的角色")
    if role in DEPARTMENT_ROLES and not department:
        raise Invalid(
            f"a {role} belongs to a department: give 'department'",
            field="department",
            zh="该角色须属于一个单位：请选择所属单位",
        )
    if role not in DEPARTMENT_ROLES and department:
        raise Invalid(
            f"a {role} belongs to the centre, not to a department",
            field="department",
            zh="该角色属于热线中心，不属于任何单位：请不要选择所属单位",
        )
    check_source(role, source)
    check_password_policy(password, username)
    taken = user_by_name(session, username)
    if taken is not None:
        raise Conflict(
            f"the username {username!r} is taken"
            + (f" (as {taken.username!r}: case does not tell names apart)" if taken.username != username else ""),
            zh=f"用户名“{username}”已被使用"
            + (f"（已有“{taken.username}”，不区分大小写）" if taken.username != username else ""),
        )
    dept = department_by_code(session, department) if department else None
    user = User(
        username=username,
        role=role,
        department_id=dept.id if dept else None,
        password_hash=hash_password(password),
        display_name=display_name or username,
        source=source,
        created_at=now,
        notices_read_before=now,
        must_change_password=must_change and role != INTEGRATION,
    )
    session.add(user)
    session.flush()
    return user


def user_by_name(session: Session, username: str) -> User | None:
    """The user of this name, whatever its case (names are unique case-insensitively)."""
    return session.exec(select(User).where(func.lower(User.username) == username.strip().lower())).first()


def check_password_policy(password: str, username: str | None) -> None:
    """422 (field `password`, in English, and in Chinese for the pages) unless the password
    has MIN_PASSWORD_LENGTH characters or more, three kinds of character of lower case, upper
    case, digits and others, and does not contain the username in any case."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(
            f"the password needs at least {MIN_PASSWORD_LENGTH} characters",
            field="password",
            zh=f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise Invalid(
            f"the password may have at most {MAX_PASSWORD_LENGTH} characters",
            field="password",
            zh=f"密码不能超过 {MAX_PASSWORD_LENGTH} 个字符",
        )
    kinds = (
        any(c.islower() for c in password)
        + any(c.isupper() for c in password)
        + any(c.isdigit() for c in password)
        + any(not (c.islower() or c.isupper() or c.isdigit()) for c in password)
    )
    if kinds < PASSWORD_CLASSES:
        raise Invalid(
            "the password needs three of: lower-case letters, upper-case letters, digits, other characters",
            field="password",
            zh="密码须包含小写字母、大写字母、数字、其他符号中的至少三类",
        )
    if username and username.strip().casefold() in password.casefold():
        raise Invalid("the password must not contain the username", field="password", zh="密码不得包含用户名")


def generate_password() -> str:
    """A random password that meets the policy (16 characters, four kinds)."""
    alphabet = string.ascii_letters + string.digits + "-_.!"
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(16))
        kinds = [string.ascii_lowercase, string.ascii_uppercase, string.digits, "-_.!"]
        if all(any(c in kind for c in password) for kind in kinds):
            return password


def check_source(role: str, source: str | None) -> None:
    """An integration account names its platform (SOURCE_PATTERN, not the centre's own); no
    other account has one."""
    if role != INTEGRATION:
        if source:
            raise Invalid(
                f"only an integration account has a source, not a {role}",
                field="source",
                zh="只有系统对接账号有对接平台标识",
            )
        return
    rule = "1–32 位小写字母、数字、- 或 _"
    if not source:
        raise Invalid(
            "an integration account needs its source (e.g. city12345)",
            field="source",
            zh=f"请填写对接平台标识（{rule}）",
        )
    if not re.fullmatch(SOURCE_PATTERN, source):
        raise Invalid(
            f"the source {source!r} must be at most 32 lowercase letters, digits, '-' or '_'",
            field="source",
            zh=f"对接平台标识须为{rule}",
        )
    if source == OWN_SOURCE:
        raise Invalid(
            f"the source {OWN_SOURCE!r} is the centre's own intake",
            field="source",
            zh=f"“{OWN_SOURCE}”是本中心自身受理的来源",
        )


def issue_token(session: Session, username: str, *, now: datetime) -> str:
    """A new API token for the user; only its digest is stored, so it is shown once."""
    user = user_by_name(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=token_digest(token), created_at=now))
    session.flush()
    return token


def create_place(session: Session, *, street: str, community: str | None = None) -> Place:
    """A street, or a community of a street (the street is added when new)."""
    if (
        community
        and session.exec(select(Place).where(Place.street == street, Place.community.is_(None))).first() is None
    ):
        session.add(Place(street=street))
    existing = session.exec(
        select(Place).where(
            Place.street == street, Place.community == community if community else Place.community.is_(None)
        )
    ).first()
    if existing:
        raise Conflict(
            f"the place {street}{'/' + community if community else ''} exists already",
            zh=f"地点“{street}{' / ' + community if community else ''}”已在地点库中",
        )
    place = Place(street=street, community=community)
    session.add(place)
    session.flush()
    return place


# Read by every intake: two columns, not rows built into objects, by a statement built once;
# a Core statement of the table's columns, whose rows the ORM's loading does not go through
# (that built its result's metadata again for every intake). Unlike an ORM select it does not
# autoflush: a place is flushed where it is created (create_place).
_PLACES = Place.__table__.c
_ACTIVE_PLACES = (
    sa_select(_PLACES.street, _PLACES.community).where(_PLACES.active).order_by(_PLACES.street, _PLACES.community)
)


def places(session: Session) -> dict[str, list[str]]:
    """Active streets, each with its active communities, in name order."""
    out: dict[str, list[str]] = {}
    for street, community in session.execute(_ACTIVE_PLACES):
        out.setdefault(street, [])
        if community:
            out[street].append(community)
    return out


def check_place(known: dict[str, list[str]], street: str | None, community: str | None) -> None:
    """The centre's own street and community are the district's, when it lists its places
    (Invalid naming the field otherwise): free text there would reach the analyses and the
    exports as it was typed."""
    if not known:
        return
    if street and street not in known:
        raise Invalid(f"{street!r} is not a street of the district", field="street", zh="请从列表中选择街道")
    if community and not street:
        raise Invalid("a community needs its street", field="street", zh="请先选择街道")
    if community and community not in known[street]:
        raise Invalid(
            f"{community!r} is not a community of {street!r}",
            field="community",
            zh=f"“{street}”下没有这个社区，请从列表中选择",
        )


def clean_place(known: dict[str, list[str]], street: str, community: str) -> tuple[str | None, str | None]:
    """A street and community as entered, blanks as None; the community is dropped when the
    district lists its places (`known`, from `places`) and it is not one of the street's."""
    street_v = street.strip() or None
    community_v = community.strip() or None
    if known and street_v and community_v and community_v not in known.get(street_v, []):
        community_v = None
    return street_v, community_v


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user with the id {user_id}", zh="用户不存在")
    return user


def _department(session: Session, department_id: int) -> Department:
    dept = session.get(Department, department_id)
    if dept is None:
        raise NotFound(f"no department with the id {department_id}", zh="单位不存在")
    return dept


def _sign_out_everywhere(session: Session, user_id: int, *, but: int | None = None) -> int:
    """End the user's web sessions (all, or all but the session `but`); how many ended."""
    ended = 0
    for web in session.exec(select(WebSession).where(WebSession.user_id == user_id)).all():
        if web.id != but:
            session.delete(web)
            ended += 1
    return ended


def set_department_active(session: Session, *, department_id: int, active: bool) -> Department:
    """Deactivate or reactivate a department; routing and dispatch forms skip an inactive one."""
    dept = _department(session, department_id)
    if active and not dept.active:
        _name_free(session, dept.name, dept.parent_id, dept)
    dept.active = active
    session.add(dept)
    session.flush()
    return dept


def set_department_org_code(session: Session, *, department_id: int, org_code: str | None) -> Department:
    """Set a department's organisation code (validated; None clears it)."""
    dept = _department(session, department_id)
    dept.org_code = clean_org_code(org_code)
    session.add(dept)
    session.flush()
    return dept


def set_user_active(session: Session, *, user_id: int, active: bool) -> User:
    """Deactivate or reactivate a user; a deactivated one can neither sign in nor use a token.

    The last active administrator stays active, so that someone can still administer.
    """
    user = _user(session, user_id)
    if not active and user.role == "admin" and user.active:
        others = session.exec(
            select(func.count()).select_from(User).where(User.role == "admin", User.active, User.id != user.id)
        ).one()
        if not others:
            raise Conflict(
                "the last active administrator cannot be deactivated", zh="不能停用最后一个启用中的管理员账号"
            )
    user.active = active
    audit_log.name(session, "user", "user.activate" if active else "user.deactivate")
    if not active:
        _sign_out_everywhere(session, user.id)
    session.add(user)
    session.flush()
    return user


def reset_password(session: Session, *, user_id: int, password: str) -> User:
    """A new password (argon2, by the policy) set by an administrator: old sessions end, and
    the user must choose their own at the next sign-in (the page lifts the sign-in delay too)."""
    user = _user(session, user_id)
    check_password_policy(password, user.username)
    user.password_hash = hash_password(password)
    user.must_change_password = user.role != INTEGRATION
    audit_log.name(session, "user", "user.reset_password")
    _sign_out_everywhere(session, user.id)
    session.add(user)
    session.flush()
    return user


def check_new_password(username: str, old: str, new: str) -> None:
    """A user's own new password (the old one checked already): by the policy, and not the
    old one (422, field `password`)."""
    check_password_policy(new, username)
    if new == old:
        raise Invalid("the new password must differ from the old one", field="password", zh="新密码不能与原密码相同")


def set_own_password(session: Session, *, user_id: int, password_hash: str, session_id: int | None) -> int:
    """Store the password a user chose (hashed by the caller, outside the write lock): it
    need not be changed any more, and the user's other sessions end. How many ended."""
    user = _user(session, user_id)
    user.password_hash = password_hash
    user.must_change_password = False
    audit_log.name(session, "user", "user.change_password")
    session.add(user)
    ended = _sign_out_everywhere(session, user.id, but=session_id)
    session.flush()
    return ended


def sessions_of(
    session: Session, user_ids: list[int], *, live_after: datetime | None, now: datetime
) -> dict[int, list[WebSession]]:
    """Each user's web sessions still in use (not expired, and used after `live_after` when
    given: the idle time-out), most recently used first."""
    query = select(WebSession).where(WebSession.user_id.in_(user_ids), WebSession.expires_at > now)
    if live_after is not None:
        query = query.where(WebSession.last_seen_at > live_after)
    out: dict[int, list[WebSession]] = {}
    for row in session.exec(query.order_by(WebSession.last_seen_at.desc(), WebSession.id.desc())).all():
        out.setdefault(row.user_id, []).append(row)
    return out


def end_session(session: Session, *, user_id: int, session_id: int) -> User:
    """An administrator ends one of a user's web sessions (404 when the user has no such session)."""
    user = _user(session, user_id)
    web = session.get(WebSession, session_id)
    if web is None or web.user_id != user.id:
        raise NotFound(f"no session {session_id} of the user {user_id}", zh="该会话已结束或不存在")
    session.delete(web)
    _ended(session, user, 1)
    session.flush()
    return user


def end_sessions(session: Session, *, user_id: int) -> tuple[User, int]:
    """An administrator ends all of a user's web sessions; the user, and how many ended."""
    user = _user(session, user_id)
    ended = _sign_out_everywhere(session, user.id)
    _ended(session, user, ended)
    session.flush()
    return user, ended


def _ended(session: Session, user: User, ended: int) -> None:
    """Record that an administrator ended the user's web sessions."""
    audit_log.record_user(session, "user.end_sessions", user, after={"ended": ended})


def get_user(session: Session, *, user_id: int) -> User:
    return _user(session, user_id)


def set_rule_active(session: Session, *, rule_id: int, active: bool) -> RoutingRule:
    """Deactivate or reactivate a routing rule; routing reads active rules only."""
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound(f"no routing rule with the id {rule_id}", zh="派单规则不存在")
    rule.active = active
    session.add(rule)
    session.flush()
    return rule


def update_category(
    session: Session,
    runtime,
    code: str,
    *,
    name: str | None = None,
    parent: object = UNSET,
    department: object = UNSET,
    workflow: object = UNSET,
    active: bool | None = None,
) -> Category:
    """Rename, move (never under itself), change the default department or workflow, or
    (de)activate a category; what is not given stays. None for parent, department or
    workflow clears it (a root; inherit from the parent)."""
    category = category_by_code(session, code, field="code")
    if name is not None:
        category.name = name
    if parent is not UNSET:
        new_parent = category_by_code(session, parent, field="parent") if parent else None
        if new_parent is not None:
            cats = {c.id: c for c in session.exec(select(Category)).all()}
            if any(c.id == category.id for c in category_path(new_parent.id, cats.get)):
                raise Invalid(
                    f"{parent!r} is {code!r} or lies under it: a category cannot move under itself",
                    field="parent",
                    zh="不能把分类移到它自己或它的下级分类之下",
                )
        category.parent_id = new_parent.id if new_parent else None
    if department is not UNSET:
        category.department_id = (
            centre_department(session, department_by_code(session, department)).id if department else None
        )
    if workflow is not UNSET:
        if workflow is not None and workflow not in runtime.workflows.workflows:
            known = ", ".join(sorted(runtime.workflows.workflows))
            raise Invalid(f"no workflow named {workflow!r} (known: {known})", field="workflow", zh="所选流程不存在")
        category.workflow = workflow
    if active is not None:
        category.active = active
    session.add(category)
    session.flush()
    return category


CATEGORY_COLUMNS = ("code", "name", "parent", "department", "workflow")


class RowError(Exception):
    """A row of an import refused: its line, the column, and why."""

    def __init__(self, line: int, column: str, message: str) -> None:
        super().__init__(f"line {line}: {column}: {message}")


def import_categories(session: Session, runtime, rows: list[tuple[int, dict[str, str]]]) -> tuple[int, int]:
    """A category tree from rows (line, {code, name, parent, department, workflow}): each
    code created, or changed to what the row says (a column left out of the file stays as it
    is; an empty cell clears parent, department or workflow). A parent may come later in the
    file. RowError names the first row refused; the caller's transaction then writes nothing.
    (created, updated)."""
    by_code: dict[str, tuple[int, dict[str, str]]] = {}
    for line, row in rows:
        code, name = (row.get("code") or "").strip(), (row.get("name") or "").strip()
        if not CODE.fullmatch(code):
            raise RowError(line, "code", f"{code!r} is not a code (1 to 32 letters, digits, '_', '.', '-')")
        if not name or len(name) > 100:
            raise RowError(line, "name", "a name of 1 to 100 characters is needed")
        if code in by_code:
            raise RowError(line, "code", f"{code!r} is on line {by_code[code][0]} already")
        by_code[code] = (line, {k: (v or "").strip() for k, v in row.items() if k in CATEGORY_COLUMNS})
    existing = {c.code: c for c in session.exec(select(Category)).all()}
    created = updated = 0
    done: set[str] = set()

    def place(code: str, trail: tuple[str, ...]) -> None:
        nonlocal created, updated
        if code in done:
            return
        line, row = by_code[code]
        parent = row.get("parent") or None
        if parent in trail:
            raise RowError(line, "parent", f"{parent!r} lies under {code!r} in the file: a cycle")
        if parent is not None and parent in by_code:
            place(parent, (*trail, code))  # the parent first, wherever it stands in the file
        try:
            if code in existing:
                changes: dict[str, Any] = {"name": row["name"]}
                for key in ("parent", "department", "workflow"):
                    if key in row:
                        changes[key] = row[key] or None
                update_category(session, runtime, code, **changes)
                updated += 1
            else:
                create_category(
                    session,
                    runtime,
                    code=code,
                    name=row["name"],
                    parent=parent,
                    department=row.get("department") or None,
                    workflow=row.get("workflow") or None,
                )
                created += 1
        except HotlineError as exc:
            column = exc.extra.get("field") or "code"
            raise RowError(line, column, exc.message) from None
        done.add(code)

    for code in by_code:
        place(code, ())
    return created, updated


def delete_category(session: Session, code: str) -> None:
    """Delete a category nothing uses (no ticket, no sub-category, no routing rule); 409 otherwise."""
    category = category_by_code(session, code, field="code")
    uses = [
        (what, zh)
        for what, zh, model, column in (
            ("tickets", "工单", Ticket, Ticket.category_id),
            ("sub-categories", "下级分类", Category, Category.parent_id),
            ("routing rules", "派单规则", RoutingRule, RoutingRule.category_id),
        )
        if session.exec(select(func.count()).select_from(model).where(column == category.id)).one()
    ]
    if uses:
        raise Conflict(
            f"the category {code!r} is used by {', '.join(w for w, _ in uses)}: deactivate it instead",
            zh=f"分类“{category.name}”已有{'、'.join(z for _, z in uses)}使用，不能删除，可停用",
        )
    session.delete(category)
    session.flush()


def update_rule(
    session: Session,
    rule_id: int,
    *,
    department: str | None = None,
    category: object = UNSET,
    street: object = UNSET,
    community: object = UNSET,
    priority: int | None = None,
    active: bool | None = None,
) -> RoutingRule:
    """Change a routing rule; what is not given stays (None clears category, street, community)."""
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound(f"no routing rule with the id {rule_id}", zh="派单规则不存在")
    if department is not None:
        rule.department_id = centre_department(session, department_by_code(session, department)).id
    if category is not UNSET:
        rule.category_id = category_by_code(session, category).id if category else None
    place_before = (rule.street, rule.community)
    if street is not UNSET:
        rule.street = street
    if community is not UNSET:
        rule.community = community
    if (rule.street, rule.community) != place_before:  # a rule made before the list keeps its place
        check_place(places(session), rule.street, rule.community)
    if priority is not None:
        rule.priority = priority
    if active is not None:
        rule.active = active
    session.add(rule)
    session.flush()
    return rule


def delete_rule(session: Session, rule_id: int) -> None:
    """Delete a routing rule (tickets keep the department they were routed to)."""
    rule = session.get(RoutingRule, rule_id)
    if rule is None:
        raise NotFound(f"no routing rule with the id {rule_id}", zh="派单规则不存在")
    session.delete(rule)
    session.flush()

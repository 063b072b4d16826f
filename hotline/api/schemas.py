"""Request bodies of the API; unknown fields are refused so typos do not pass silently."""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hotline.inputs import MAX_ID
from hotline.models import CHANNELS, MAX_RULE_PRIORITY, ROLES, TICKET_TYPES, URGENCIES

MAX_CONTENT_CHARS = 4000

Code = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Short = Annotated[str, Field(max_length=50)]
# A row's id in a body (a larger number names no row, and is refused with 422).
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DepartmentIn(Body):
    code: Code
    name: Name
    # 统一社会信用代码: 18 characters with a check character (hotline.directory.clean_org_code).
    org_code: Annotated[str, Field(max_length=18)] | None = None
    # A community (社区): its street office's code; the street may pass it tickets (二级派单).
    parent: Code | None = None


class DepartmentPatch(Body):
    """What changes of a department; a field left out stays. `parent` null: no longer a community."""

    name: Name | None = None
    parent: Code | None = None
    active: bool | None = None


class CategoryIn(Body):
    code: Code
    name: Name
    parent: Code | None = None
    department: Code | None = None
    workflow: Annotated[str, Field(max_length=40)] | None = None


Priority = Annotated[int, Field(ge=-MAX_RULE_PRIORITY, le=MAX_RULE_PRIORITY)]


class RoutingRuleIn(Body):
    department: Code
    category: Code | None = None
    street: Short | None = None
    community: Short | None = None
    priority: Priority = 0


class CategoryPatch(Body):
    """What changes of a category; a field left out stays, null clears it."""

    name: Name | None = None
    parent: Code | None = None
    department: Code | None = None
    workflow: Annotated[str, Field(max_length=40)] | None = None
    active: bool | None = None


class RoutingRulePatch(Body):
    """What changes of a routing rule; a field left out stays, null clears it."""

    department: Code | None = None
    category: Code | None = None
    street: Short | None = None
    community: Short | None = None
    priority: Priority | None = None
    active: bool | None = None


class PlaceIn(Body):
    street: Annotated[str, Field(min_length=1, max_length=50)]
    community: Annotated[str, Field(min_length=1, max_length=50)] | None = None


class UserIn(Body):
    username: Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.\-@]+$")]
    role: Literal[ROLES]  # type: ignore[valid-type]
    department: Code | None = None
    password: Annotated[str, Field(min_length=8, max_length=256)]
    display_name: Name | None = None
    # An integration account's platform (required for that role, refused for the others).
    source: Annotated[str, Field(max_length=32)] | None = None


class TicketIn(Body):
    type: Literal[TICKET_TYPES]  # type: ignore[valid-type]
    # A category code; an outside platform may send its own category text (kept when the
    # district does not know it), so the form of a code is not enforced here.
    category: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    urgency: Literal[URGENCIES] = "normal"  # type: ignore[valid-type]
    channel: Literal[CHANNELS] = "phone"  # type: ignore[valid-type]
    caller_name: Short | None = None
    caller_phone: Annotated[str, Field(max_length=30, pattern=r"^[0-9+\-() ]*$")] | None = None
    confidential: bool = False
    anonymous: bool = False
    reply_wanted: bool = True
    title: Annotated[str, Field(max_length=200)] | None = None
    content: Annotated[str, Field(min_length=1, max_length=MAX_CONTENT_CHARS)]
    street: Short | None = None
    community: Short | None = None
    address: Annotated[str, Field(max_length=200)] | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lng: Annotated[float, Field(ge=-180, le=180)] | None = None
    external_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    # The hotline number the ticket came in on (一个号码: 12345, 12315…); without it, the
    # call's, the source's or the channel's line (docs/workflow.md, "Merged hotlines").
    line: Annotated[str, Field(min_length=3, max_length=20, pattern=r"^[0-9]+$")] | None = None
    # The call (its id as POST /calls returned it) the agent logs the ticket from.
    call: RowId | None = None

    @field_validator("caller_phone")
    @classmethod
    def _digits_only(cls, value: str | None) -> str | None:
        """Keep the phone as digits (and a leading +) so the same caller is found again."""
        if value is None:
            return None
        kept = "".join(ch for ch in value if ch.isdigit() or ch == "+")
        return kept or None

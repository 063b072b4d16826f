"""What every request may carry, checked once for the whole application: no control
characters in any text (a NUL is stored by SQLite and refused by PostgreSQL; the others
have no business in a citizen's complaint), and the ranges of ids and page numbers."""

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import AfterValidator

from hotline.errors import Invalid

# A row's id is the databases' INTEGER: a larger number names no row.
MAX_ID = 2**31 - 1
MAX_PAGE = 100_000
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
PageQuery = Annotated[int, Query(ge=1, le=MAX_PAGE)]
# One hotline's figures (一个号码): its number, 12345 or a merged line's (12315…).
LineQuery = Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]+$", description="one hotline (12315…)")]
# The days a query may name: a year 1 or 9999 turned into a local time overflows.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def check_day(value: date, field: str = "date") -> date:
    """A day within FIRST_DAY..LAST_DAY (Invalid naming the field otherwise)."""
    day = value.date() if isinstance(value, datetime) else value
    if not FIRST_DAY <= day <= LAST_DAY:
        raise Invalid(
            f"{field}: a day from {FIRST_DAY} to {LAST_DAY}, not {day}",
            field=field,
            zh=f"日期须在{FIRST_DAY.year}年至{LAST_DAY.year}年之间",
        )
    return value


def _day_in_range(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"a day from {FIRST_DAY} to {LAST_DAY}")
    return value


# A day in a query or a body, within the range.
Day = Annotated[date, AfterValidator(_day_in_range)]

# C0 controls but tab, line feed and carriage return; DEL; the C1 controls; and lone
# surrogates (no character: a JSON "\\ud800" decodes to one, and no database stores it).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_JSON = "application/json"
_FORM = "application/x-www-form-urlencoded"


def check_text(value: str, field: str) -> None:
    """Refuse a text with a control character in it (Invalid naming the field)."""
    m = _CONTROL.search(value)
    if m:
        raise Invalid(
            f"{field}: control character U+{ord(m.group()):04X} is not allowed",
            field=field,
            zh="输入中含有不可见的控制字符",
        )


def _walk(value: Any, field: str) -> None:
    if isinstance(value, str):
        check_text(value, field)
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{field}.{key}" if field else str(key)
            check_text(str(key), name)
            _walk(item, name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, f"{field}.{i}" if field else str(i))


async def refuse_control_characters(request: Request) -> None:
    """An application-wide dependency: every path and query parameter, every string in a JSON
    body, every field of a form (files excepted) is free of control characters."""
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_text(value, name)
    for name, value in request.query_params.multi_items():
        check_text(name, name)
        check_text(value, name)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == _JSON:
        try:
            # The request's parse, kept: a route with a JSON body has FastAPI parse it (the
            # same bytes, the same json.loads) before its dependencies run.
            data = await request.json()
        except ValueError:
            return  # the route's own validation says what is wrong with it
        _walk(data, "")
    elif content_type == _FORM or content_type == "multipart/form-data":
        for name, value in (await request.form()).multi_items():
            if isinstance(value, str):
                check_text(value, name)

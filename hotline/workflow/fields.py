"""The payload fields an event may carry; a workflow names them, the engine types them."""

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, TypeAdapter, ValidationError

from hotline.errors import Invalid

Text = Annotated[str, Field(min_length=1, max_length=4000)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
Code = Annotated[str, Field(min_length=1, max_length=32)]

# Why a department gives a ticket back (docs/workflow.md: 属地不符, 权属不清, 职能交叉, other).
RETURN_REASON_CODES = {
    "territory": "属地不符",
    "ownership": "权属不清",
    "overlap": "职能交叉",
    "other": "其他",
}


@dataclass(frozen=True)
class FieldSpec:
    label: str
    adapter: TypeAdapter[Any]


def _spec(label: str, annotation: Any) -> FieldSpec:
    return FieldSpec(label, TypeAdapter(annotation))


FIELDS: dict[str, FieldSpec] = {
    "answer": _spec("答复内容", Text),
    "article": _spec("知识库条目", Annotated[int, Field(ge=1, le=2**31 - 1)]),  # an article's id
    "basis": _spec("依据", Reason),
    "co_departments": _spec("协办单位", Annotated[list[Code], Field(max_length=10)]),
    "community": _spec("社区", Code),  # a community's department code (二级派单)
    "comment": _spec("评价意见", Reason),
    "days": _spec("延期天数", Annotated[int, Field(ge=1, le=60, strict=True)]),
    "department": _spec("承办单位", Code),
    "master": _spec("主工单", Annotated[int, Field(ge=1, strict=True)]),
    "message": _spec("内容", Reason),
    "order": _spec("督办单", Annotated[int, Field(ge=1, strict=True)]),
    "rating": _spec("满意度", Annotated[int, Field(ge=1, le=5, strict=True)]),
    "reached": _spec("是否联系上", StrictBool),
    "reason": _spec("理由", Reason),
    "reason_code": _spec("退单原因", Literal[tuple(RETURN_REASON_CODES)]),  # type: ignore[misc]
    "result": _spec("办理结果", Text),
    "solved": _spec("是否解决", StrictBool),
}


def validate_payload(
    event: str, required: tuple[str, ...], optional: tuple[str, ...], payload: dict[str, Any]
) -> dict[str, Any]:
    """Check an event's payload; raise Invalid naming the first bad field."""
    allowed = set(required) | set(optional)
    for key in payload:
        if key not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise Invalid(
                f"event {event!r} takes no field {key!r} (it takes: {known})", field=key, zh=f"不支持的字段：{key}"
            )
    clean: dict[str, Any] = {}
    for name in required:
        if payload.get(name) is None:
            raise Invalid(
                f"event {event!r} needs the field {name!r} ({FIELDS[name].label})",
                field=name,
                zh=f"请填写“{FIELDS[name].label}”",
            )
    for name in allowed:
        value = payload.get(name)
        if value is None:
            continue
        try:
            clean[name] = FIELDS[name].adapter.validate_python(value)
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise Invalid(
                f"field {name!r} ({FIELDS[name].label}): {msg}", field=name, zh=f"“{FIELDS[name].label}”填写有误"
            ) from None
        if isinstance(clean[name], str):
            clean[name] = clean[name].strip()
            if not clean[name]:
                raise Invalid(
                    f"field {name!r} ({FIELDS[name].label}) is blank", field=name, zh=f"请填写“{FIELDS[name].label}”"
                )
    return clean

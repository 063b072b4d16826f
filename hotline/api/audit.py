"""The security audit trail, for administrators (安全审计)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from hotline import audit_log
from hotline.api.deps import AdminActor, RuntimeDep
from hotline.inputs import Day, PageQuery

router = APIRouter(tags=["audit"])


@router.get("/audit")
def list_audit(
    _: AdminActor,
    runtime: RuntimeDep,
    since: Annotated[Day | None, Query(description="recorded on or after this day (Asia/Shanghai)")] = None,
    until: Annotated[Day | None, Query(description="recorded on or before this day")] = None,
    actor: Annotated[str | None, Query(max_length=audit_log.MAX_FILTER, description="the actor's username")] = None,
    kind: Annotated[
        Literal[tuple(audit_log.KINDS)] | None,  # type: ignore[valid-type]
        Query(description="the kind of action: login, logout, or what was changed (user, department…)"),
    ] = None,
    target: Annotated[str | None, Query(max_length=audit_log.MAX_FILTER, description="the target's id or name")] = None,
    outcome: Literal[audit_log.OUTCOMES] | None = None,  # type: ignore[valid-type]
    page: PageQuery = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Sign-ins and administrative changes, newest first: who, when, from where, what, the
    changed fields before and after (secrets never)."""
    chosen = audit_log.Filters.of(since, until, actor, kind, target, outcome)
    with runtime.db.read_session() as session:
        rows, total = audit_log.search(session, chosen, page=page, page_size=page_size)
        return {"items": [audit_log.record_out(r) for r in rows], "total": total, "page": page, "page_size": page_size}

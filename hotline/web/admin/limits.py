"""Time limits, as the workflows define them."""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from hotline.api.deps import RuntimeDep
from hotline.config import ROOT
from hotline.models import (
    TICKET_TYPES,
    URGENCIES,
)
from hotline.supervision import urge_interval
from hotline.web.admin.common import (
    AdminUser,
    _page,
    router,
)
from hotline.web.render import TYPE_LABELS, URGENCY_LABELS
from hotline.workflow.definition import Limit, Workflow

# --------------------------------------------------------------------- limits


def limit_text(limit: Limit | None) -> str:
    """A time limit in Chinese: 3 个工作日, 24 小时, 15 分钟."""
    if limit is None:
        return "—"
    if limit.working_days is not None:
        return f"{limit.working_days} 个工作日"
    if limit.hours is not None:
        return f"{_number(limit.hours)} 小时"
    return f"{_number(limit.minutes or 0)} 分钟"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _limits_of(wf: Workflow) -> dict[str, Any]:
    lim = wf.limits
    by_type = [
        {
            "label": TYPE_LABELS[t],
            "sign": limit_text(lim.sign.pick(t, "normal")),
            "handle": limit_text(lim.handle.pick(t, "normal")),
            "sign_set": t in lim.sign.type,
            "handle_set": t in lim.handle.type,
        }
        for t in TICKET_TYPES
    ]
    by_urgency = [
        {
            "label": URGENCY_LABELS[u],
            "sign": limit_text(lim.sign.urgency.get(u)) if u in lim.sign.urgency else "按诉求类型",
            "handle": limit_text(lim.handle.urgency.get(u)) if u in lim.handle.urgency else "按诉求类型",
            "natural": any(
                x is not None and x.working_days is None for x in (lim.sign.urgency.get(u), lim.handle.urgency.get(u))
            ),
        }
        for u in URGENCIES
        if u != "normal"
    ]
    warning = lim.warning
    escalation = lim.escalation
    satisfied = "、".join(
        label
        for value, label in {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}.items()
        if value in lim.satisfied_ratings
    )
    others = [
        ("回访时限", limit_text(lim.callback), "中心审核通过办理结果（或直接办结）后，须在此时限内完成回访"),
        ("差评整改", limit_text(lim.rectification), "收到不满意评价后，承办单位核实、整改或说明并反馈的时限"),
        ("退单时限", limit_text(lim.return_window), "派单后在此时限内可申请退单，逾期须自行办理"),
        ("延期上限", f"累计 {lim.extension_cap_working_days} 个工作日", "一件工单经批准的延期天数合计不超过此数"),
        (
            "中心指定",
            f"第 {lim.designate_after_dispatches} 次派单起",
            "同一工单派单达到此次数后由中心指定承办单位，不得再退单",
        ),
        ("回访次数", f"{lim.callback_attempts} 次", "均未联系上则按“未回访”归档，不计为满意"),
        (
            "催办间隔",
            f"{interval} 分钟" if (interval := urge_interval(wf)) else "不限",
            "同一工单上次催办后此时间内督办员不能再次催办（系统按时限自动催办、市级平台催办不受此限）",
        ),
        ("满意评价", satisfied, "归档时计为满意的评价等级"),
        (
            "停止计时",
            "、".join(st.label for st in wf.states.values() if st.clock_stopped) or "无",
            "处于这些状态时办理时限暂停，恢复后接着计算",
        ),
    ]
    ladder = [
        (
            "预警",
            "yellow",
            f"剩余时限不足 {_number(warning.fraction * 100)}% 或不足 {_number(warning.max_working_days)} 个工作日"
            "（取较小者）时亮黄灯",
        ),
        ("超期", "red", "时限届满当日向承办人发出催办"),
        (
            "督办",
            "red",
            f"超期 {_number(escalation.supervise_after_working_days)} 个工作日后仍未办结，向单位负责人发出督办单",
        ),
        (
            "通报",
            "red",
            f"超期 {_number(escalation.report_after_working_days)} 个工作日后仍未办结，列入向区领导的通报",
        ),
    ]
    return {
        "by_type": by_type,
        "default_sign": limit_text(lim.sign.default),
        "default_handle": limit_text(lim.handle.default),
        "by_urgency": by_urgency,
        "others": others,
        "ladder": ladder,
    }


def workflow_file(wf: Workflow) -> str:
    path = Path(wf.path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


@router.get("/limits", response_class=HTMLResponse)
def limits(request: Request, runtime: RuntimeDep, _: AdminUser) -> Response:
    wfs = runtime.workflows
    default = wfs.get(wfs.default)
    items = [
        {
            "wf": wf,
            "file": workflow_file(wf),
            "same_as_default": wf.name != default.name and wf.limits == default.limits,
            **_limits_of(wf),
        }
        for wf in sorted(wfs.workflows.values(), key=lambda w: w.name != default.name)
    ]
    return _page(request, "admin/limits.html", {"items": items, "default": default})

"""The Chinese labels of the codes the data uses (roles, ticket types, ratings…)."""

import re

ROLE_LABELS = {
    "agent": "话务员",
    "handler": "承办人",
    "leader": "单位负责人",
    "supervisor": "督办员",
    "admin": "管理员",
    "editor": "知识库管理员",
    "integration": "系统对接",
}
TYPE_LABELS = {
    "consultation": "咨询",
    "complaint": "投诉",
    "help": "求助",
    "suggestion": "建议",
    "report": "举报",
    "praise": "表扬",
}
URGENCY_LABELS = {"normal": "一般", "urgent": "紧急", "critical": "特急"}
CHANNEL_LABELS = {
    "phone": "电话",
    "web": "网站",
    "app": "移动端",
    "wechat": "微信",
    "email": "邮件",
    "city": "市级平台",
    "api": "接口",
}
RATING_LABELS = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
CLOSE_REASON_LABELS = {
    "satisfied": "满意归档",
    "not_called_back": "未回访",
    "dissatisfied_closed": "不满意（非部门责任）",
    "no_reply_wanted": "无需回复",
    "cancelled": "已撤销",
    "merged": "已并单",
    "imported": "历史导入",
}
NOTICE_LABELS = {
    "warn": "预警",
    "urge": "催办",
    "supervise": "督办",
    "report": "通报",
    "return": "退单",
    "dispatch": "派单",
    "reply_rejected": "审核退回",
    "extension": "延期",
    "suspension": "挂起",
    "rectification": "差评整改",
    "rating_review": "评价复核",
    "appeal": "申诉",
    "surge": "聚集预警",
    "calendar": "节假日",
    "knowledge_expiry": "知识到期",
    # Second-level dispatch (二级派单): a community's steps, told to its street office.
    "community_returned": "社区退回",
    "community_replied": "社区回复",
    "community_recalled": "街道收回",
}
# History rows that are not workflow events (the workflow's own events carry their labels).
HISTORY_LABELS = {
    "create": "受理登记",
    "import": "历史导入",
    "merge_in": "并入重复件",
    "escalation_skipped": "跳过升级步骤",
    "invite_skipped": "未发送评价短信",
    "deadlines_recomputed": "时限重算",
    "rectification_report": "整改反馈",
    "rectification_accept": "整改通过",
    "rectification_return": "整改退回",
    "rectification_urge": "整改催办",
    "rectification_supervise": "整改督办",
    "appeal_rating": "评价申诉",
    "appeal_unreasonable": "不合理诉求认定申请",
    "appeal_rating_granted": "评价申诉成立",
    "appeal_rating_refused": "评价申诉不成立",
    "appeal_unreasonable_granted": "认定为不合理诉求",
    "appeal_unreasonable_refused": "不认定为不合理诉求",
    "attach": "上传附件",
    "community_warn": "社区时限预警",
    "community_urge": "社区超期报街道督促",
}
ORDER_STATUS_LABELS = {"open": "待答复", "answered": "已答复", "lapsed": "未答复（工单已办结）"}
# A knowledge article's status, and what its versions record (the lifecycle actions and more).
ARTICLE_STATUS_LABELS = {"draft": "草稿", "under_review": "待审核", "published": "已发布", "retired": "已下线"}
ARTICLE_ACTION_LABELS = {
    "create": "新建",
    "edit": "修改",
    "import": "导入",
    "submit": "提交审核",
    "publish": "发布",
    "return": "退回修改",
    "retire": "下线",
    "expire": "到期下线",
}


# Reasons the scheduler recorded in English before it recorded the Chinese ones (a history is
# kept as it was written, hash-chained): the pages show them in Chinese.
_LEGACY_ORDER_WAITS = re.compile(r"supervision order \d+ on this ticket still awaits the department leader's answer")


def history_reason(reason: object) -> object:
    """A history row's reason as the pages show it."""
    if not isinstance(reason, str) or not reason.isascii():  # the old ones are English
        return reason
    from hotline.deadlines.sla import NOISE
    from hotline.workflow.rules import ALREADY_RATED, ALREADY_RATED_ZH

    if reason == "already overdue: a warning would only be noise":  # what sla.NOISE said
        return NOISE
    if reason == ALREADY_RATED:
        return ALREADY_RATED_ZH
    if _LEGACY_ORDER_WAITS.fullmatch(reason):
        return "该工单已有督办单尚待单位负责人答复，未重复下发"
    return reason

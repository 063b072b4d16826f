"""The Chinese labels of the codes the data uses (roles, ticket types, ratings…)."""

ROLE_LABELS = {
    "agent": "话务员",
    "handler": "承办人",
    "leader": "单位负责人",
    "supervisor": "督办员",
    "admin": "管理员",
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
}
NOTICE_LABELS = {
    "warn": "预警",
    "urge": "催办",
    "supervise": "督办",
    "report": "通报",
    "return": "退单",
    "rectification": "差评整改",
    "rating_review": "评价复核",
    "appeal": "申诉",
    "surge": "聚集预警",
    "calendar": "节假日",
}

"""What the knowledge base's pages share: the router, who may do what, the labels,
the services' refusals said in Chinese."""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlmodel import Session

from hotline.errors import HotlineError
from hotline.inputs import IdPath
from hotline.knowledge import catalog, spreadsheet
from hotline.knowledge.articles import ACTIONS, EDITORS, STAFF, get_readable, readable
from hotline.labels import ARTICLE_ACTION_LABELS, ARTICLE_STATUS_LABELS
from hotline.models import ARTICLE_KINDS, FLAG_REASONS, Article
from hotline.web.auth import PageUser, role_form_user, role_user
from hotline.web.render import render

router = APIRouter(prefix="/knowledge", include_in_schema=False)

Staff = Annotated[PageUser, role_user(*STAFF)]
StaffForm = Annotated[PageUser, role_form_user(*STAFF)]
Writer = Annotated[PageUser, role_user(*sorted(EDITORS), "leader")]
WriterForm = Annotated[PageUser, role_form_user(*sorted(EDITORS), "leader")]
Editor = Annotated[PageUser, role_user(*sorted(EDITORS))]
EditorForm = Annotated[PageUser, role_form_user(*sorted(EDITORS))]
ArticleId = IdPath
PageNo = Annotated[int, Query(ge=1, le=100_000)]
Done = Annotated[str | None, Query(max_length=20)]

STATUS_LABELS = ARTICLE_STATUS_LABELS
ACTION_LABELS = ARTICLE_ACTION_LABELS
FIELD_LABELS = {**spreadsheet.COLUMNS, "status": "状态"}
# What the pages say after a change (the redirect's `done`): fixed words, never the address's.
DONE = {
    "created": "已新建知识条目（草稿）",
    "drafted": "已将工单的答复转为知识草稿：请核对、补充后发布",
    "saved": "已保存修改",
    "unchanged": "内容没有变化，未生成新版本",
    "submit": "已提交审核",
    "publish": "已发布",
    "return": "已退回修改",
    "retire": "已下线",
    "flagged": "反馈已提交，知识库管理员会尽快处理",
    "resolved": "已处理该条目的反馈",
    "closed": "已处理该知识缺口",
}
# A spreadsheet may be this large (the body-size limit lets a little more through for the
# form around it, so that the page, not the limit, says so).
MAX_UPLOAD_BYTES = 16 * 1024 * 1024


def _labels(user: PageUser) -> dict[str, Any]:
    """What every knowledge page's template uses: the labels, and whether its user edits."""
    return {
        "STATUS_LABELS": STATUS_LABELS,
        "ACTION_LABELS": ACTION_LABELS,
        "FIELD_LABELS": FIELD_LABELS,
        "FLAG_REASONS": FLAG_REASONS,
        "KINDS": ARTICLE_KINDS,
        "is_editor": user.role in EDITORS,
    }


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """A knowledge page, with the labels every one of them uses."""
    return render(request, name, {**_labels(request.state.page_user), **context}, status_code)


def _done(done: str | None) -> str | None:
    return DONE.get(done or "")


# ------------------------------------------------------------------ who may do what


def _readable(user: PageUser, article: Article) -> bool:
    return readable(user.actor, article)


def _writable(user: PageUser, article: Article) -> bool:
    if user.role in EDITORS:
        return True
    return user.role == "leader" and article.department_id == user.actor.department_id and article.status == "draft"


def _actions(user: PageUser, article: Article) -> list[str]:
    """The lifecycle actions this user may take on the article now."""
    return [
        action
        for action, (sources, _) in ACTIONS.items()
        if article.status in sources and (user.role in EDITORS or (action == "submit" and _writable(user, article)))
    ]


NOT_FOUND = "知识条目不存在，或您无权查看"


def _visible(session: Session, user: PageUser, article_id: int) -> Article:
    """The article, or 404 when this user may not read it."""
    return get_readable(session, article_id, user.actor, zh=NOT_FOUND)


# ------------------------------------------------------------------ messages in Chinese

_KINDS = "、".join(ARTICLE_KINDS)
# The services' and the validators' English, said in Chinese (the field stays the field).
_MESSAGES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), zh)
    for p, zh in (
        (r"^(Field required|String should have at least 1 character)", "必填"),
        (r"^String should have at most (\d+) characters?", "不能超过 {0} 个字"),
        (r"^Input should be '办事指南'", f"应为 {_KINDS} 之一"),
        (r"^Input should be a valid date", "日期无法识别，请写作 2026-11-01"),
        (r"^Input should be a valid boolean", "应为 是 或 否"),
        (r"^a path of names separated by '/'", "应为以“/”分隔的类目名称，如 社会保障/养老保险"),
        (r"^at most (\d+) keywords", "关键字最多 {0} 个"),
        (r"^a keyword has at most (\d+) characters: (.*)", "每个关键字不超过 {0} 个字：{1}"),
        (r"before valid_from", "失效日期早于生效日期"),
        (r"a keyword repeats the title", "关键字不能与标题相同"),
        (r"already has an article with this title: article (\d+)", "该发文单位已有同名的知识条目（条目号 {0}）"),
        (r"^external_id: already used by article (\d+)", "编号已被条目号 {0} 的知识使用"),
        (r"^repeats row (\d+)", "与第 {0} 行重复"),
        (r"^the article is (\w+): only the editors", "该条目{status}，只有知识库管理员可以修改"),
        (r"^a leader writes only the articles its own department issues", "单位负责人只能编写本单位发文的知识"),
        (r"^cannot (\w+) an article that is (\w+)", "条目当前为“{status2}”，不能{action}"),
        (r"^the article expired on (\S+): change valid_until", "该条目已于 {0} 失效：请先修改失效日期"),
        (r"^the role .* may not", "您的角色无权执行此操作"),
        (r"^unknown field", "未知的字段"),
        (r"^refused by the database: (.*)", "数据库拒绝写入：{0}"),
    )
]
# Messages of the whole article that are about one field.
_FIELD_OF = {"before valid_from": "valid_until", "a keyword repeats the title": "keywords"}


def zh_message(field: str, message: str) -> tuple[str, str]:
    """A refusal's field and its message in Chinese (an unknown message as it is)."""
    message = message.removeprefix("Value error, ")
    for hint, name in _FIELD_OF.items():
        if hint in message:
            field = name
    for pattern, zh in _MESSAGES:
        match = pattern.search(message)
        if match:
            groups = match.groups()
            extra = {
                "status": STATUS_LABELS.get(groups[0], "") if groups else "",
                "status2": STATUS_LABELS.get(groups[1], groups[1]) if len(groups) > 1 else "",
                "action": ACTION_LABELS.get(groups[0], "") if groups else "",
            }
            return field, zh.format(*groups, **extra)
    return field, message


def _refusal(exc: HotlineError) -> HotlineError:
    """The error with its message in Chinese for the page (forms.page_message reads `zh`)."""
    if "zh" not in exc.extra:
        chinese = NOT_FOUND if exc.status_code == 404 else zh_message(str(exc.extra.get("field") or ""), exc.message)[1]
        exc.extra["zh"] = chinese
    return exc


def _category_options(session: Session, counted: bool) -> list[tuple[str, str]]:
    """The category paths in use, as a select's options (indented by depth)."""
    out: list[tuple[str, str]] = []

    def walk(nodes: list[catalog.CategoryNode], depth: int) -> None:
        for node in nodes:
            count = f"（{node.count}）" if counted else ""
            out.append((node.path, "\u3000" * depth + node.name + count))
            walk(sorted(node.children.values(), key=lambda n: (-n.count, n.name)), depth + 1)

    walk(catalog.category_tree(session), 0)
    return out

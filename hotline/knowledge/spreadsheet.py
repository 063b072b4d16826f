"""Departments' spreadsheets of articles (.xlsx): the columns they already use, read into
import rows, and the empty template to fill in. Pure functions: bytes in, rows and the
rows' errors out; writing the articles is hotline.knowledge.articles.import_rows'.

The header row is found by its names (in any order, spaces ignored) among the first rows
of the first sheet. A row without 编号 gets an `external_id` made from its 发文单位 and
标题, so that uploading the same sheet again updates the articles instead of adding them
twice."""

import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from io import BytesIO
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils.datetime import from_excel

# The columns as departments name them, for each field of an article.
COLUMNS = {
    "category": "类目",
    "title": "标题",
    "body": "内容",
    "department": "发文单位",
    "kind": "材料性质",
    "keywords": "关键字",
    "external_id": "编号",
    "region": "适用范围",
    "valid_from": "生效日期",
    "valid_until": "失效日期",
    "public": "是否公开",
}
REQUIRED = ("category", "title", "body", "department", "kind", "keywords")
# Other names the same columns go by in departments' sheets.
ALIASES = {"关键词": "keywords", "分类": "category", "正文": "body", "类别": "category"}
MAX_ROWS = 5000
MAX_COLUMNS = 60
# What a workbook may unpack to (its parts' declared sizes, which unzipping holds them to).
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
HEADER_SEARCH_ROWS = 20
YES = frozenset({"是", "公开", "y", "yes", "true", "1"})
NO = frozenset({"否", "不公开", "内部", "n", "no", "false", "0"})
_DATE_TEXT = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_SPACES = re.compile(r"\s+")


class SheetError(ValueError):
    """The file as a whole cannot be read; the message is Chinese, for the page; `status` the
    HTTP status a page answers with."""

    status = 422


class NotSpreadsheet(SheetError):
    status = 415


class SheetTooLarge(SheetError):
    status = 413


@dataclass(frozen=True)
class RowError:
    row: int  # the sheet's row number, as Excel shows it
    field: str  # an article field (COLUMNS' key), or "article" for the row as a whole
    message: str

    @property
    def column(self) -> str:
        return COLUMNS.get(self.field, "整行")


@dataclass
class Sheet:
    """What a sheet holds: import rows (with the sheet row of each) and the rows refused."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    header_row: int = 0


def _name(value: Any) -> str:
    return _SPACES.sub("", str(value)) if value is not None else ""


def _field_of(header: Any) -> str | None:
    name = _name(header)
    by_label = {label: key for key, label in COLUMNS.items()}
    return by_label.get(name) or ALIASES.get(name)


def _text(value: Any) -> str:
    """A cell as text: a whole number without its '.0', a date as its ISO day."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def parse_day(value: Any) -> date:
    """A date cell: an Excel date, an Excel day number, or text such as 2026-11-01,
    2026/11/1, 2026.11.1 or 2026年11月1日. ValueError says why in Chinese."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            day = from_excel(value)
        except (OverflowError, ValueError):
            day = None
        if not isinstance(day, datetime) or not 1900 < day.year < 2200:
            raise ValueError(f"“{_text(value)}”不是日期")
        return day.date()
    text = _text(value)
    match = _DATE_TEXT.match(text)
    if not match:
        raise ValueError(f"“{text}”不是日期，请写作 2026-11-01 或设为日期格式")
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        raise ValueError(f"“{text}”这一天不存在") from None


def parse_public(value: Any) -> bool:
    text = _text(value).lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise ValueError(f"“{_text(value)}”应为 是 或 否")


def derived_external_id(department: str, title: str) -> str:
    """The stable number of a row without 编号: the same issuing body and title, the same number."""
    digest = hashlib.sha256(f"{department.strip()}\x1f{title.strip()}".encode()).hexdigest()
    return f"xlsx-{digest[:24]}"


def _open(data: bytes):
    if not data.startswith(b"PK\x03\x04"):
        raise NotSpreadsheet("文件不是 Excel 工作簿（.xlsx）：请在 Excel 或 WPS 中“另存为 .xlsx”后再上传")
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            unpacked = sum(part.file_size for part in archive.infolist())
        if unpacked > MAX_UNPACKED_BYTES:
            raise SheetTooLarge(f"工作簿解压后超过 {MAX_UNPACKED_BYTES // 1024 // 1024} MB，请分成几个文件上传")
        return load_workbook(BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        if isinstance(exc, SheetError):
            raise

        raise NotSpreadsheet(f"无法读取该工作簿（{exc.__class__.__name__}）：请确认是 .xlsx 格式") from None


def _header(rows) -> tuple[int, dict[int, str]]:
    """The header row's number and its columns (index → field); SheetError names what is missing."""
    best: tuple[int, dict[int, str]] = (0, {})
    for number, cells in enumerate(rows, start=1):
        columns: dict[int, str] = {}
        for i, cell in enumerate(cells):
            key = _field_of(cell)
            if key and key not in columns.values():
                columns[i] = key
        if all(key in columns.values() for key in REQUIRED):
            return number, columns
        if len(columns) > len(best[1]):
            best = (number, columns)
        if number >= HEADER_SEARCH_ROWS:
            break
    if not best[1]:
        raise SheetError(
            "没有找到表头：第一张工作表的前 20 行中应有一行列名："
            + "、".join(COLUMNS[k] for k in REQUIRED)
            + "（可下载模板对照）"
        )
    missing = [COLUMNS[k] for k in REQUIRED if k not in best[1].values()]
    raise SheetError(f"表头（第 {best[0]} 行）缺少必需的列：{'、'.join(missing)}")


def read_sheet(data: bytes, *, max_rows: int = MAX_ROWS) -> Sheet:
    """The articles of a workbook's first sheet as import rows (`ImportRow`'s fields), each
    with its sheet row number; a cell that cannot be read makes its row an error. A sheet of
    more than `max_rows` rows, a file that is not a workbook, or a sheet without the header
    raise SheetError."""
    workbook = _open(data)
    try:
        if not workbook.worksheets:
            raise SheetError("工作簿中没有工作表")
        sheet_rows = workbook.worksheets[0].iter_rows(max_col=MAX_COLUMNS, values_only=True)
        header_row, columns = _header(sheet_rows)
        out = Sheet(header_row=header_row)
        seen: dict[str, int] = {}
        count = 0
        for number, cells in enumerate(sheet_rows, start=header_row + 1):
            values = {key: cells[i] for i, key in columns.items() if i < len(cells)}
            if all(_text(v) == "" for v in values.values()):
                continue
            count += 1
            if count > max_rows:
                raise SheetTooLarge(f"一次最多导入 {max_rows} 行，请分成几个文件上传")
            row, errors = _row(number, values)
            if errors:
                out.errors.extend(errors)
                continue
            first = seen.setdefault(row["external_id"], number)
            if first != number:
                field_name = "external_id" if _text(values.get("external_id")) else "title"
                why = f"与第 {first} 行重复（同一编号，或同一发文单位的同名标题）"
                out.errors.append(RowError(number, field_name, why))
                continue
            out.rows.append(row)
            out.lines.append(number)
        return out
    finally:
        workbook.close()


def _row(number: int, values: dict[str, Any]) -> tuple[dict[str, Any], list[RowError]]:
    row: dict[str, Any] = {}
    errors: list[RowError] = []
    for key, value in values.items():
        if _text(value) == "":
            continue  # left out: required fields are then refused by name, optional ones take their default
        try:
            if key in ("valid_from", "valid_until"):
                row[key] = parse_day(value)
            elif key == "public":
                row[key] = parse_public(value)
            else:
                row[key] = _text(value)
        except ValueError as exc:
            errors.append(RowError(number, key, str(exc)))
    # An empty required cell is named here (a row without 标题 has no number to derive either).
    errors += [RowError(number, key, "必填") for key in REQUIRED if key != "keywords" and key not in row]
    if not errors and "external_id" not in row:
        row["external_id"] = derived_external_id(row["department"], row["title"])
    return row, errors


def template() -> bytes:
    """An empty workbook with the header row, and a second sheet saying what each column holds."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "知识"
    sheet.append([COLUMNS[k] for k in (*REQUIRED, "external_id", "region", "valid_from", "valid_until", "public")])
    for letter, width in zip("ABCDEFGHIJK", (18, 30, 60, 16, 12, 20, 14, 14, 12, 12, 10), strict=True):
        sheet.column_dimensions[letter].width = width
    sheet.freeze_panes = "A2"
    notes = workbook.create_sheet("填写说明")
    notes.append(["列名", "是否必填", "说明"])
    for row in (
        ("类目", "必填", "以“/”分隔的类目路径，如 社会保障/养老保险"),
        ("标题", "必填", "不超过 128 个字；同一发文单位内不能重名"),
        ("内容", "必填", "正文，可用 Markdown（标题、列表、表格）"),
        ("发文单位", "必填", "本区单位的名称或编码，或其他机关的名称"),
        ("材料性质", "必填", "办事指南、政策法规、热点问答、常见问题、通知公告 之一"),
        ("关键字", "必填列", "以逗号或顿号分隔，每个不超过 20 个字；可留空"),
        ("编号", "可选", "原系统中的编号；不填时按“发文单位+标题”识别，重新上传同一表格即为更新"),
        ("适用范围", "可选", "如 全区、某街道"),
        ("生效日期", "可选", "日期格式，或写作 2026-11-01"),
        ("失效日期", "可选", "日期格式，或写作 2027-12-31；不早于生效日期"),
        ("是否公开", "可选", "是 或 否；不填为 是（在网站公开）"),
    ):
        notes.append(list(row))
    notes.column_dimensions["A"].width = 12
    notes.column_dimensions["C"].width = 70
    buffer = BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()

"""The documentation (docs/ and the README's map) held to the code it describes.

Each test reads a page the way a person does (its tables, its headings, the calls and
commands written in backticks) and compares what it says with what the code defines:
the server's OpenAPI description, the command's argument parser, the settings, the
parsed default workflow, the rule registry, the files on disk. A rename on either side
fails here, naming what drifted.
"""

import argparse
import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

from hotline.api.schemas import TicketIn
from hotline.cli import build_parser
from hotline.config import Settings
from hotline.indicators.analysis import AnalysisConfig
from hotline.indicators.stats import Performance
from hotline.main import create_app
from hotline.workflow import rules  # noqa: F401  (fills the registry the docs are compared with)
from hotline.workflow.definition import RETURN_FROM, Limits, Workflow, load_workflow
from hotline.workflow.fields import FIELDS
from hotline.workflow.registry import CONDITIONS, EFFECTS
from tests.helpers import Api

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md"))

# `GET /api/v1/tickets/{ticket_id}` and the like, written in backticks (a query is ignored).
API_CALL = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)")
SERVED_PREFIXES = ("/api/", "/open311/", "/public/")
TICKS = re.compile(r"`([^`]+)`")
BOLD_TICKS = re.compile(r"\*\*`([^`]+)`\*\*")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")
SETTING = re.compile(r"\bHOTLINE_[A-Z0-9_]+\b")
# A page cited by its path from the repository's root (docs/api.md, bench/README.md) or in docs/.
CITED = re.compile(r"(?<![\w./-])((?:[\w-]+/)*[\w-]+\.md)\b")


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of every heading outside code blocks."""
    out = []
    for line in prose_lines(text):
        m = re.match(r"^(#{1,6}) (.+?)\s*$", line)
        if m:
            out.append((len(m.group(1)), m.group(2)))
    return out


def section(text: str, heading: str) -> str:
    """The text under a heading (`## States`), up to the next heading of its level or above."""
    level = len(heading) - len(heading.lstrip("#"))
    lines = text.splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        pytest.fail(f"no heading {heading!r}")
    out, fenced = [], False
    for line in lines[start + 1 :]:
        if line.startswith("```"):
            fenced = not fenced
        m = re.match(r"^(#{1,6}) ", line)
        if m and not fenced and len(m.group(1)) <= level:
            break
        out.append(line)
    return "\n".join(out)


def table(text: str) -> list[list[str]]:
    """The rows (cells stripped, header and rule left out) of the first table in the text."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    assert len(rows) >= 2 and set(rows[1][0]) <= set("-: "), "expected a table with a header row"
    return rows[2:]


def ticks(cell: str) -> list[str]:
    return TICKS.findall(cell)


def first_column(rows: list[list[str]]) -> list[str]:
    """The backticked name that starts each row."""
    names = []
    for row in rows:
        found = ticks(row[0])
        assert found, f"no `name` in the first cell of {row}"
        names.append(found[0])
    return names


def slug(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, title in headings(text):
        base = slug(title)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def missing_and_extra(documented: set, defined: set) -> tuple[list, list]:
    """What the code defines that the page lacks, and what the page names that the code lacks."""
    return sorted(defined - documented), sorted(documented - defined)


# --- the HTTP API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi(tmp_path_factory) -> dict[str, Any]:
    """The server's own description of its API, as /openapi.json serves it."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path_factory.mktemp('docs') / 'hotline.db'}", embedded_scheduler=False
    )
    response = TestClient(create_app(settings)).get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def served_calls(openapi: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in openapi["paths"].items()
        if path.startswith(SERVED_PREFIXES)
        for method in operations
    }


def test_every_api_call_the_docs_name_is_served(openapi):
    served = served_calls(openapi)
    for page in [*PAGES, README]:
        named = set(API_CALL.findall(read(page)))
        if page == README:  # its summary writes paths relative to /api/v1; the full ones are checked
            named = {(method, path) for method, path in named if path.startswith(SERVED_PREFIXES)}
        unknown = sorted(named - served)
        assert not unknown, f"{page.name} names calls the server does not have: {unknown}"


def test_every_served_api_call_is_in_api_md(openapi):
    documented = set(API_CALL.findall(read(DOCS / "api.md")))
    missing = sorted(served_calls(openapi) - documented)
    assert not missing, f"docs/api.md lacks: {missing}"


def test_intake_fields_are_those_of_the_api():
    rows = table(section(read(DOCS / "api.md"), "### Intake: the body of `POST /api/v1/tickets`"))
    missing, extra = missing_and_extra(set(first_column(rows)), set(TicketIn.model_fields))
    assert not missing and not extra, f"intake fields: missing {missing}, not in TicketIn {extra}"
    required = {name for name, field in TicketIn.model_fields.items() if field.is_required()}
    said_required = {first_column([row])[0] for row in rows if row[1] == "yes"}
    assert said_required == required


def test_event_fields_are_those_of_the_engine():
    rows = table(section(read(DOCS / "api.md"), "### Event fields"))
    missing, extra = missing_and_extra(set(first_column(rows)), set(FIELDS))
    assert not missing and not extra, f"event fields: missing {missing}, unknown {extra}"
    for row in rows:
        assert row[1] == FIELDS[first_column([row])[0]].label, f"the label of {row[0]} is {FIELDS[row[0]].label}"


def flatten(value: dict[str, Any], prefix: str = "") -> set[str]:
    """The keys of a JSON object, nested ones as `deadlines.sign_by` and `assignments[].role`."""
    keys = set()
    for key, item in value.items():
        name = f"{prefix}{key}"
        keys.add(name)
        if isinstance(item, dict):
            keys |= flatten(item, f"{name}.")
        elif isinstance(item, list) and item and isinstance(item[0], dict):
            keys |= flatten(item[0], f"{name}[].")
    return keys


def test_the_keys_of_a_ticket_are_those_the_api_answers(client, district):
    agent = Api(client, district, "agent")
    agent.create()
    repeated = agent.create()["id"]  # the same caller about the same category: a repeat
    agent.fire(repeated, "dispatch", co_departments=["urban"])
    ticket = Api(client, district, "supervisor").get(f"/tickets/{repeated}")
    assert ticket["repeats"] and ticket["assignments"]
    rows = table(section(read(DOCS / "api.md"), "### A ticket"))
    documented = {key for row in rows for key in ticks(row[0])}
    missing, extra = missing_and_extra(documented, flatten(ticket))
    assert not missing, f"docs/api.md (A ticket) lacks the keys {missing}"
    assert not extra, f"docs/api.md (A ticket) documents keys a ticket does not have: {extra}"


# --- the command and its settings -----------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser] | None:
    """A parser's sub-commands by name, or None when it has none."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return None


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "hotline") -> dict[str, argparse.ArgumentParser]:
    """Every runnable command line (`hotline stats check`) and its parser."""
    children = subcommands(parser)
    if children is None:
        return {prefix: parser}
    out: dict[str, argparse.ArgumentParser] = {}
    for name, child in children.items():
        out.update(leaf_commands(child, f"{prefix} {name}"))
    return out


def options(parser: argparse.ArgumentParser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings if s.startswith("--") and s != "--help"}


def positionals(parser: argparse.ArgumentParser) -> list[str]:
    return [a.dest for a in parser._actions if not a.option_strings and not isinstance(a, argparse._SubParsersAction)]


def command_sections() -> dict[str, str]:
    """The sections of commands.md whose heading is a command, by command."""
    text = read(DOCS / "commands.md")
    out = {}
    for level, title in headings(text):
        m = re.fullmatch(r"`(hotline [a-z0-9 -]+)`", title)
        if m:
            out[m.group(1)] = section(text, f"{'#' * level} {title}")
    return out


def test_every_command_is_documented_and_every_documented_command_exists():
    missing, extra = missing_and_extra(set(command_sections()), set(leaf_commands(build_parser())))
    assert not missing, f"docs/commands.md has no section for: {missing}"
    assert not extra, f"docs/commands.md documents commands the parser lacks: {extra}"


def test_every_option_of_a_command_is_documented_in_its_section():
    leaves = leaf_commands(build_parser())
    for command, text in command_sections().items():
        parser = leaves[command]
        missing, extra = missing_and_extra(set(OPTION.findall(text)), options(parser))
        assert not missing, f"{command}: options not documented: {missing}"
        assert not extra, f"{command}: documented options the parser lacks: {extra}"
        for dest in positionals(parser):
            assert dest.upper() in text, f"{command}: the argument {dest.upper()} is not documented"


def test_every_command_line_in_the_docs_parses():
    """`hotline …` in backticks anywhere in the docs names a real command and real options."""
    root = build_parser()
    for page in [*PAGES, README]:
        for span in TICKS.findall(read(page)):
            if not span.startswith("hotline "):
                continue
            words = span.split()[1:]
            parser, path = root, ["hotline"]
            while words and (children := subcommands(parser)) is not None and words[0] in children:
                parser = children[words[0]]
                path.append(words.pop(0))
            if subcommands(parser) is not None:
                assert not words, f"{page.name}: `{span}`: no command {' '.join(path)} {words[0]}"
                continue
            unknown = sorted(set(OPTION.findall(" ".join(words))) - options(parser))
            assert not unknown, f"{page.name}: `{span}`: {' '.join(path)} has no option {unknown}"


def test_every_setting_is_documented():
    prefix = Settings.model_config["env_prefix"]
    defined = {f"{prefix}{name.upper()}" for name in Settings.model_fields}
    documented = set(first_column(table(section(read(DOCS / "commands.md"), "## Settings"))))
    missing, extra = missing_and_extra(documented, defined)
    assert not missing, f"docs/commands.md lacks the settings {missing}"
    assert not extra, f"docs/commands.md documents settings that do not exist: {extra}"


def test_every_hotline_variable_the_docs_name_exists():
    defined = {f"HOTLINE_{name.upper()}" for name in Settings.model_fields}
    # The test suite's own variables are read in tests/conftest.py.
    defined |= set(SETTING.findall(read(ROOT / "tests" / "conftest.py")))
    for page in [*PAGES, README]:
        unknown = sorted(set(SETTING.findall(read(page))) - defined)
        assert not unknown, f"{page.name} names variables nothing reads: {unknown}"


# --- the workflow -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default() -> Workflow:
    return load_workflow(ROOT / "workflows" / "default.yaml")


@pytest.fixture(scope="module")
def workflow_md() -> str:
    return read(DOCS / "workflow.md")


def test_the_states_are_those_of_the_default_workflow(default, workflow_md):
    rows = table(section(workflow_md, "## States"))
    missing, extra = missing_and_extra(set(first_column(rows)), set(default.states))
    assert not missing and not extra, f"states: missing {missing}, not in default.yaml {extra}"
    for row in rows:
        state = default.states[ticks(row[0])[0]]
        assert row[1] == state.label, f"{state.name} is labelled {state.label}"
        assert ticks(row[2]) == list(state.deadlines), f"{state.name} runs the clocks {list(state.deadlines)}"
        assert ("stopped" in row[2]) == state.clock_stopped, f"{state.name}: clock stopped is {state.clock_stopped}"
        assert ("final" in row[2]) == state.final, f"{state.name}: final is {state.final}"


def test_the_events_are_those_of_the_default_workflow(default, workflow_md):
    rows = table(section(workflow_md, "## Events"))
    missing, extra = missing_and_extra(set(first_column(rows)), set(default.events))
    assert not missing and not extra, f"events: missing {missing}, not in default.yaml {extra}"
    for name_cell, label, sources, dest, who, fields in rows:
        event = default.events[ticks(name_cell)[0]]
        where = f"docs/workflow.md, event {event.name}"
        assert label == event.label, f"{where}: the label is {event.label}"
        assert set(ticks(sources)) == set(event.sources), f"{where}: from {sorted(event.sources)}"
        if event.dest is None:
            assert dest == "stays", f"{where}: the ticket stays"
        elif event.dest == RETURN_FROM:
            assert not ticks(dest) and "back" in dest, f"{where}: back where the return came from"
        else:
            assert ticks(dest) == [event.dest], f"{where}: to {event.dest}"
        assert set(ticks(who)) == set(event.roles), f"{where}: fired by {sorted(event.roles)}"
        assert ("co-handling" in who) == (event.department == "any"), f"{where}: department {event.department}"
        assert set(BOLD_TICKS.findall(fields)) == set(event.required), f"{where}: required {list(event.required)}"
        optional = set(ticks(fields)) - set(BOLD_TICKS.findall(fields))
        assert optional == set(event.optional), f"{where}: optional {list(event.optional)}"


def test_what_co_handlers_may_fire_is_that_of_the_default_workflow(default, workflow_md):
    rows = table(section(workflow_md, "### Co-handling departments (协办)"))
    documented = {ticks(event)[0]: set(ticks(sources)) for event, sources in rows}
    defined = {e.name: set(e.co_sources) for e in default.events.values() if e.co_sources}
    assert documented == defined


def test_the_guards_and_effects_are_those_of_the_registry(workflow_md):
    for heading, registry in (("## Guards", CONDITIONS), ("## Effects", EFFECTS)):
        names = set(first_column(table(section(workflow_md, heading))))
        missing, extra = missing_and_extra(names, set(registry))
        assert not missing and not extra, f"{heading}: missing {missing}, not registered {extra}"


def test_every_time_limit_key_is_documented(default):
    names = set(first_column(table(section(read(DOCS / "deadlines.md"), "## The limits"))))
    missing, extra = missing_and_extra(names, set(Limits.model_fields))
    assert not missing and not extra, f"limits: missing {missing}, unknown {extra}"


def setting_keys(model: type[BaseModel]) -> set[str]:
    """Every key of a settings file, nested ones included."""
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(name)
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys |= setting_keys(field.annotation)
    return keys


def test_every_performance_and_analysis_setting_is_documented():
    text = read(DOCS / "indicators.md")
    for model in (Performance, AnalysisConfig):
        missing = sorted(key for key in setting_keys(model) if f"`{key}`" not in text)
        assert not missing, f"docs/indicators.md does not name the {model.__name__} keys {missing}"


# --- links and the map ------------------------------------------------------------------------


def test_every_relative_link_resolves():
    for page in [*PAGES, README]:
        for target in LINK.findall("\n".join(prose_lines(read(page)))):
            if re.match(r"^[a-z]+:", target):
                continue
            path_part, _, anchor = target.partition("#")
            path = (page.parent / path_part).resolve() if path_part else page
            assert path.exists(), f"{page.name}: the link {target} leads nowhere"
            if anchor:
                assert path.suffix == ".md", f"{page.name}: {target}: an anchor into a file that is not a page"
                assert anchor in anchors(read(path)), f"{page.name}: {target}: no such heading in {path.name}"


def test_every_document_the_code_cites_is_in_the_repository():
    """A comment or docstring that points to a page points to one the repository has
    (none to documents kept elsewhere)."""
    sources = [
        *(ROOT / "hotline").rglob("*.py"),
        *(ROOT / "workflows").glob("*.yaml"),
        *(ROOT / "tests").glob("*.py"),
        *(ROOT / "bench").glob("*.py"),
        *(ROOT / "templates").rglob("*.html"),
    ]
    for source in sources:
        for cited in CITED.findall(read(source)):
            found = (ROOT / cited).is_file() or (DOCS / cited).is_file()
            assert found, f"{source.relative_to(ROOT)} cites {cited}, which is not in the repository"


def map_paths() -> set[str]:
    """The paths the README's map (the code block under "What is where") names."""
    block = section(read(README), "## What is where").split("```")[1]
    paths, stack = set(), []
    for line in block.splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 2 == 0 and indent // 2 <= len(stack), f"README map: bad indent: {line!r}"
        name = line.split()[0]
        stack = stack[: indent // 2]
        paths.add("".join(stack) + name)
        stack.append(name)
    return paths


def ignored(name: str) -> bool:
    patterns = [p.strip().strip("/") for p in read(ROOT / ".gitignore").splitlines() if p.strip()]
    return any(fnmatch.fnmatch(name, p) for p in patterns if not p.startswith("#"))


def tree_paths() -> set[str]:
    """The top-level folders, every package under hotline/, every module of hotline/ and of
    its packages (the migrations' own files aside)."""
    paths = {
        f"{entry.name}/"
        for entry in ROOT.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and not ignored(entry.name)
    }
    hotline = ROOT / "hotline"
    for init in hotline.rglob("__init__.py"):
        package = init.parent
        paths.add(f"{package.relative_to(ROOT).as_posix()}/")
        if "migrations" in package.relative_to(hotline).parts:
            continue
        paths |= {m.relative_to(ROOT).as_posix() for m in package.glob("*.py") if m.name != "__init__.py"}
    return paths


def test_the_readme_map_names_every_module_and_package():
    missing = sorted(tree_paths() - map_paths())
    assert not missing, f"README.md's map (What is where) does not name: {missing}"


def test_everything_the_readme_map_names_exists():
    gone = sorted(p for p in map_paths() if not (ROOT / p).exists() or p.endswith("/") != (ROOT / p).is_dir())
    assert not gone, f"README.md's map (What is where) names what is not there: {gone}"


def test_the_package_table_names_every_package():
    names = first_column(table(section(read(DOCS / "architecture.md"), "## The packages")))
    hotline = ROOT / "hotline"
    defined = {f"hotline/{p.parent.name}/" for p in hotline.glob("*/__init__.py")}
    missing, extra = missing_and_extra(set(names), defined)
    assert not missing and not extra, f"docs/architecture.md packages: missing {missing}, not there {extra}"

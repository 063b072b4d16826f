"""Workflow definitions as data: load a YAML file, merge `extends`, validate, freeze."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hotline.workflow.fields import FIELDS
from hotline.workflow.lines import Lines, parse_lines
from hotline.workflow.registry import CONDITIONS, EFFECTS

WORKFLOW_ROLES = frozenset({"agent", "handler", "leader", "supervisor", "admin", "system", "citizen", "integration"})
RETURN_FROM = "@return_from_state"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_STATE_KEYS = {"label", "final", "clock", "deadlines", "level"}
DEADLINE_KINDS = ("sign", "handle", "callback")
_EVENT_KEYS = {"label", "from", "to", "roles", "department", "co", "fields", "conditions", "effects"}
_TOP_KEYS = {"name", "label", "initial", "extends", "states", "events", "limits", "description"}
CO_SUFFIX = "_as_co_handler"
# Who among the departments may fire an event: the main department (the default), a
# co-handler too (any), or the community the street office passed the ticket to (二级派单).
DEPARTMENT_PARTS = ("main", "any", "community")
# A state's level: where the ticket is; `community`: with a community, under its street office.
STATE_LEVELS = ("centre", "community")
# Files in workflows/ that configure rather than declare a workflow.
SETTINGS_FILES = frozenset({"selection", "performance", "analysis"})


class WorkflowError(ValueError):
    """A workflow file that cannot be used; the message names the file and the key."""


class Limit(BaseModel):
    """One time limit: working days, or natural hours or minutes."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    working_days: int | None = None
    hours: float | None = None
    minutes: float | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Limit":
        given = [v for v in (self.working_days, self.hours, self.minutes) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of working_days, hours, minutes")
        if given[0] < 0:
            raise ValueError("a time limit cannot be negative")
        return self


class LimitTable(BaseModel):
    """A limit by default, overridden per ticket type and then per urgency."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    default: Limit
    type: dict[str, Limit] = {}
    urgency: dict[str, Limit] = {}

    def pick(self, ticket_type: str, urgency: str) -> Limit:
        """The limit for a ticket: urgency first, then type, then the default."""
        return self.urgency.get(urgency) or self.type.get(ticket_type) or self.default


class WarningRule(BaseModel):
    """Yellow (预警) when this fraction of the limit, or this many working days, is left (the less)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    fraction: float = 0.25
    max_working_days: float = 1


class EscalationRule(BaseModel):
    """After the breach: a supervision order, then the report to district leadership."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    supervise_after_working_days: float = 1
    report_after_working_days: float = 5


class Limits(BaseModel):
    """The time limits and counts of a workflow (docs/deadlines.md, "The limits")."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sign: LimitTable
    handle: LimitTable
    callback: Limit
    rectification: Limit
    return_window: Limit
    extension_cap_working_days: int = 20
    designate_after_dispatches: int = 3
    callback_attempts: int = 3
    agent_rehandles: int = 2
    # A person's urge within this many minutes of the ticket's last urge is refused (0: no
    # such rule; at most a week); the scheduler's and outside platforms' are not held back.
    urge_interval_minutes: int = Field(default=30, ge=0, le=7 * 24 * 60)
    rating_link: Limit = Limit(working_days=3)
    # A community's own clocks (二级派单), from the street's passing the ticket down; never
    # later than the street's handle-by (hotline.deadlines.sla.community_deadlines).
    sub_sign: LimitTable = LimitTable(default=Limit(working_days=1))
    sub_handle: LimitTable = LimitTable(default=Limit(working_days=5))
    satisfied_ratings: tuple[int, ...] = (3, 4, 5)
    warning: WarningRule = WarningRule()
    escalation: EscalationRule = EscalationRule()


@dataclass(frozen=True)
class RuleRef:
    """A condition or effect named in a workflow, with its optional argument."""

    name: str
    arg: Any = None


@dataclass(frozen=True)
class StateDef:
    name: str
    label: str
    final: bool = False
    clock_stopped: bool = False
    # The deadlines that run in this state, the first one still open counting
    # (sign-by counts until the department has signed).
    deadlines: tuple[str, ...] = ()
    # centre (the default) | community: the ticket is with a community (二级派单).
    level: str = "centre"


@dataclass(frozen=True)
class EventDef:
    name: str
    label: str
    sources: tuple[str, ...]
    dest: str | None  # None: stays; RETURN_FROM: back where a return came from
    roles: frozenset[str]
    department: str  # main | any | community
    co_sources: tuple[str, ...] | None
    required: tuple[str, ...]
    optional: tuple[str, ...]
    conditions: tuple[RuleRef, ...]
    effects: tuple[RuleRef, ...]
    # What a co-handling department's form and history call the event (co.label), if not `label`.
    co_label: str | None = None

    def label_for(self, as_co_handler: bool) -> str:
        """The event's name as its actor reads it: a co-handler's reply is not 办结."""
        return (self.co_label or self.label) if as_co_handler else self.label

    @property
    def fields(self) -> tuple[str, ...]:
        return self.required + self.optional


@dataclass(frozen=True)
class Workflow:
    name: str
    label: str
    initial: str
    states: Mapping[str, StateDef]
    events: Mapping[str, EventDef]
    limits: Limits
    path: str = field(default="")

    def state_label(self, state: str) -> str:
        s = self.states.get(state)
        return s.label if s else state

    @property
    def open_states(self) -> tuple[str, ...]:
        return tuple(s for s, d in self.states.items() if not d.final)


def _merge(base: Any, override: Any) -> Any:
    """Deep-merge mappings; lists and scalars replace; None deletes a key."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _merge(merged[key], value)
            else:
                merged[key] = value
        return merged
    return override


def _read(path: Path, directory: Path, seen: tuple[str, ...]) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise WorkflowError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise WorkflowError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise WorkflowError(f"{path}: a workflow file must be a mapping")
    parent = raw.get("extends")
    if parent is None:
        return raw
    if parent in seen:
        raise WorkflowError(f"{path}: extends: circular extension through {parent!r}")
    parent_path = directory / f"{parent}.yaml"
    if not parent_path.exists():
        raise WorkflowError(f"{path}: extends: no workflow {parent!r} in {directory}")
    base = _read(parent_path, directory, (*seen, raw.get("name", path.stem)))
    merged = _merge(base, {k: v for k, v in raw.items() if k != "extends"})
    # States removed by the child vanish from every event that mentioned them.
    removed = {k for k, v in (raw.get("states") or {}).items() if v is None}
    for event in (merged.get("events") or {}).values():
        if isinstance(event, dict) and isinstance(event.get("from"), list):
            event["from"] = [s for s in event["from"] if s not in removed]
    return merged


def _rules(where: str, raw: Any, registry: Mapping[str, Any]) -> tuple[RuleRef, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise WorkflowError(f"{where}: must be a list")
    refs = []
    for item in raw:
        if isinstance(item, str):
            name, arg = item, None
        elif isinstance(item, dict) and len(item) == 1:
            ((name, arg),) = item.items()
        else:
            raise WorkflowError(f"{where}: {item!r} is neither a name nor `name: argument`")
        if name not in registry:
            raise WorkflowError(
                f"{where}: {name!r} is not in the engine's registry (known: {', '.join(sorted(registry))})"
            )
        refs.append(RuleRef(name, arg))
    return tuple(refs)


def _event(where: str, name: str, raw: Any, states: Mapping[str, StateDef]) -> EventDef:
    if not isinstance(raw, dict):
        raise WorkflowError(f"{where}: an event must be a mapping")
    unknown = set(raw) - _EVENT_KEYS
    if unknown:
        raise WorkflowError(f"{where}.{sorted(unknown)[0]}: unknown key (known: {', '.join(sorted(_EVENT_KEYS))})")
    if not _NAME.match(name) or name.endswith(CO_SUFFIX):
        raise WorkflowError(f"{where}: {name!r} is not a valid event name")

    def state_list(key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise WorkflowError(f"{where}.{key}: must be a non-empty list of states")
        for s in value:
            if s not in states:
                raise WorkflowError(f"{where}.{key}: unknown state {s!r}")
            if states[s].final:
                raise WorkflowError(f"{where}.{key}: {s!r} is final; no event leaves it")
        return tuple(value)

    sources = state_list("from", raw.get("from"))
    dest = raw.get("to")
    if dest is not None and dest != RETURN_FROM and dest not in states:
        raise WorkflowError(f"{where}.to: unknown state {dest!r}")
    roles = raw.get("roles")
    if not isinstance(roles, list) or not roles:
        raise WorkflowError(f"{where}.roles: must be a non-empty list of roles")
    for role in roles:
        if role not in WORKFLOW_ROLES:
            raise WorkflowError(f"{where}.roles: unknown role {role!r} (known: {', '.join(sorted(WORKFLOW_ROLES))})")
    department = raw.get("department", "main")
    if department not in DEPARTMENT_PARTS:
        raise WorkflowError(f"{where}.department: must be one of {', '.join(DEPARTMENT_PARTS)}, not {department!r}")
    if department == "community":
        elsewhere = [s for s in sources if states[s].level != "community"]
        if elsewhere:
            raise WorkflowError(
                f"{where}.from: a community's event leaves only states of `level: community`, not {elsewhere[0]!r}"
            )
    co = raw.get("co")
    co_sources = co_label = None
    if co is not None:
        if department != "any" or not isinstance(co, dict) or "from" not in co or not set(co) <= {"from", "label"}:
            raise WorkflowError(f"{where}.co: needs `department: any`, a `from` list and at most a `label`")
        co_sources = state_list("co.from", co["from"])
        co_label = str(co["label"]) if co.get("label") else None
    fields = raw.get("fields") or {}
    if not isinstance(fields, dict):
        raise WorkflowError(f"{where}.fields: must be a mapping of field: required|optional")
    for fname, need in fields.items():
        if fname not in FIELDS:
            raise WorkflowError(f"{where}.fields.{fname}: unknown field (known: {', '.join(sorted(FIELDS))})")
        if need not in ("required", "optional"):
            raise WorkflowError(f"{where}.fields.{fname}: must be 'required' or 'optional'")
    return EventDef(
        name=name,
        label=str(raw.get("label", name)),
        sources=sources,
        dest=dest,
        roles=frozenset(roles),
        department=department,
        co_sources=co_sources,
        co_label=co_label,
        required=tuple(f for f, n in fields.items() if n == "required"),
        optional=tuple(f for f, n in fields.items() if n == "optional"),
        conditions=_rules(f"{where}.conditions", raw.get("conditions"), CONDITIONS),
        effects=_rules(f"{where}.effects", raw.get("effects"), EFFECTS),
    )


def load_workflow(path: Path) -> Workflow:
    """Load and validate one workflow file; raise WorkflowError naming file and key."""
    path = Path(path)
    raw = _read(path, path.parent, ())
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise WorkflowError(f"{path}: {sorted(unknown)[0]}: unknown key (known: {', '.join(sorted(_TOP_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise WorkflowError(f"{path}: name: must be a lower-case identifier")
    if name != path.stem:
        raise WorkflowError(f"{path}: name: {name!r} must match the file name {path.stem!r}")
    raw_states = raw.get("states")
    if not isinstance(raw_states, dict) or not raw_states:
        raise WorkflowError(f"{path}: states: must be a non-empty mapping")
    states: dict[str, StateDef] = {}
    for sname, sraw in raw_states.items():
        where = f"{path}: states.{sname}"
        if not _NAME.match(str(sname)):
            raise WorkflowError(f"{where}: not a valid state name")
        sraw = sraw or {}
        if not isinstance(sraw, dict):
            raise WorkflowError(f"{where}: must be a mapping")
        bad = set(sraw) - _STATE_KEYS
        if bad:
            raise WorkflowError(f"{where}.{sorted(bad)[0]}: unknown key (known: {', '.join(sorted(_STATE_KEYS))})")
        clock = sraw.get("clock", "running")
        if clock not in ("running", "stopped"):
            raise WorkflowError(f"{where}.clock: must be 'running' or 'stopped'")
        deadlines = sraw.get("deadlines") or []
        if not isinstance(deadlines, list) or any(d not in DEADLINE_KINDS for d in deadlines):
            raise WorkflowError(f"{where}.deadlines: a list of {', '.join(DEADLINE_KINDS)}")
        state_level = sraw.get("level", "centre")
        if state_level not in STATE_LEVELS:
            raise WorkflowError(f"{where}.level: must be one of {', '.join(STATE_LEVELS)}")
        states[sname] = StateDef(
            sname,
            str(sraw.get("label", sname)),
            bool(sraw.get("final", False)),
            clock == "stopped",
            tuple(deadlines),
            state_level,
        )
    initial = raw.get("initial")
    if initial not in states:
        raise WorkflowError(f"{path}: initial: unknown state {initial!r}")
    raw_events = raw.get("events")
    if not isinstance(raw_events, dict) or not raw_events:
        raise WorkflowError(f"{path}: events: must be a non-empty mapping")
    events = {ename: _event(f"{path}: events.{ename}", ename, eraw, states) for ename, eraw in raw_events.items()}
    # Every state must be reachable from the initial one.
    reachable, frontier = {initial}, [initial]
    return_sources = {s for e in events.values() if e.dest == "returned" for s in e.sources}
    while frontier:
        current = frontier.pop()
        for e in events.values():
            if current not in e.sources:
                continue
            targets = return_sources if e.dest == RETURN_FROM else {e.dest or current}
            for t in targets - reachable:
                reachable.add(t)
                frontier.append(t)
    unreachable = [s for s in states if s not in reachable]
    if unreachable:
        raise WorkflowError(f"{path}: states.{unreachable[0]}: unreachable from {initial!r}")
    try:
        limits = Limits.model_validate(raw.get("limits") or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise WorkflowError(f"{path}: limits.{loc}: {err['msg']}") from exc
    return Workflow(name, str(raw.get("label", name)), initial, states, events, limits, str(path))


class WorkflowSet:
    """Every workflow of a directory, and the rules that pick one for a new ticket."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.workflows: dict[str, Workflow] = {}
        for path in sorted(self.directory.glob("*.yaml")):
            if path.stem in SETTINGS_FILES:
                continue
            wf = load_workflow(path)
            self.workflows[wf.name] = wf
        sel_path = self.directory / "selection.yaml"
        selection = yaml.safe_load(sel_path.read_text(encoding="utf-8")) if sel_path.exists() else {}
        selection = selection or {}
        self.default = selection.get("default", "default")
        self.by_type: dict[str, str] = selection.get("types") or {}
        for where, wname in [("default", self.default)] + [(f"types.{k}", v) for k, v in self.by_type.items()]:
            if wname not in self.workflows:
                raise WorkflowError(f"{sel_path}: {where}: no workflow named {wname!r}")
        # The hotlines merged into 12345 (hotline.workflow.lines).
        try:
            self.lines: Lines = parse_lines(selection.get("lines"), sel_path, set(self.workflows))
        except ValueError as exc:
            raise WorkflowError(str(exc)) from exc

    def get(self, name: str) -> Workflow:
        """The workflow of that name (tickets keep the workflow they started with)."""
        try:
            return self.workflows[name]
        except KeyError:
            raise WorkflowError(f"no workflow named {name!r} in {self.directory}") from None

    def choose(self, ticket_type: str, category_workflow: str | None, line_workflow: str | None = None) -> Workflow:
        """The workflow a new ticket follows: its category's, its line's, its type's, or the default."""
        name = category_workflow or line_workflow or self.by_type.get(ticket_type) or self.default
        return self.get(name)

    @cached_property
    def open_states(self) -> tuple[str, ...]:
        """The states, in any workflow, that are not final."""
        return tuple(sorted({s for wf in self.workflows.values() for s in wf.open_states}))

    @cached_property
    def community_states(self) -> tuple[str, ...]:
        """The states, in any workflow, in which a ticket is with a community (`level: community`)."""
        return tuple(
            sorted({s.name for wf in self.workflows.values() for s in wf.states.values() if s.level == "community"})
        )


@lru_cache(maxsize=8)
def workflow_set(directory: str) -> WorkflowSet:
    """The parsed workflows of a directory, parsed once per process."""
    return WorkflowSet(Path(directory))

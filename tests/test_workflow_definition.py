"""The workflow loader: workflows are data, and a bad file is refused with file and key."""

import shutil
from pathlib import Path

import pytest
import yaml

from hotline.config import ROOT
from hotline.workflow.definition import WorkflowError, WorkflowSet, load_workflow
from hotline.workflow.engine import machine_for

DEFAULT = ROOT / "workflows" / "default.yaml"


def test_default_workflow_declares_domain_states_and_events():
    wf = load_workflow(DEFAULT)
    assert set(wf.states) == {
        "registered",
        "dispatched",
        "returned",
        "in_progress",
        "suspended",
        "replied",
        "pending_callback",
        "archived",
        "merged",
        "cancelled",
        # Second-level dispatch to communities (二级派单).
        "sub_dispatched",
        "sub_in_progress",
        "sub_replied",
    }
    assert {
        "answer",
        "dispatch",
        "sign",
        "return",
        "redispatch",
        "reject_return",
        "request_extension",
        "approve_extension",
        "reject_extension",
        "request_suspension",
        "approve_suspension",
        "resume",
        "reply",
        "approve_reply",
        "reject_reply",
        "callback",
        "close",
        "rehandle",
        "merge",
        "cancel",
        "urge",
        "supervise",
    } <= set(wf.events)
    assert wf.states["registered"].label == "已受理"
    assert wf.events["sign"].label == "签收"
    assert wf.limits.handle.pick("consultation", "normal").working_days == 3
    assert wf.limits.sign.pick("complaint", "critical").minutes == 15


def test_machine_has_no_auto_transitions():
    machine = machine_for(load_workflow(DEFAULT))
    assert not any(name.startswith("to_") for name in machine.events)


def _broken(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load(DEFAULT.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "default.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda d: d["events"]["sign"].update({"to": "nowhere"}), "events.sign.to: unknown state 'nowhere'"),
        (lambda d: d["events"]["sign"].update({"from": ["limbo"]}), "events.sign.from: unknown state 'limbo'"),
        (lambda d: d["events"]["sign"].update({"roles": ["clerk"]}), "events.sign.roles: unknown role 'clerk'"),
        (lambda d: d["events"]["sign"].update({"conditions": ["os.system"]}), "events.sign.conditions: 'os.system'"),
        (
            lambda d: d["events"]["reply"].update({"effects": ["builtins.exec"]}),
            "events.reply.effects: 'builtins.exec'",
        ),
        (lambda d: d["states"].update({"limbo": {"label": "虚"}}), "states.limbo: unreachable"),
        (lambda d: d["events"]["sign"].update({"colour": "red"}), "events.sign.colour: unknown key"),
        (lambda d: d["states"]["registered"].update({"colour": "red"}), "states.registered.colour: unknown key"),
        (lambda d: d["events"]["reply"].update({"fields": {"reslt": "required"}}), "events.reply.fields.reslt"),
        (lambda d: d.update({"initial": "limbo"}), "initial: unknown state 'limbo'"),
        (lambda d: d["limits"]["handle"]["type"].update({"help": {"days": 5}}), "limits.handle.type.help"),
    ],
)
def test_bad_workflow_is_refused_naming_file_and_key(tmp_path, mutate, key):
    path = _broken(tmp_path, mutate)
    with pytest.raises(WorkflowError) as err:
        load_workflow(path)
    assert str(path) in str(err.value)
    assert key in str(err.value)


def test_extends_merges_and_removes(tmp_path):
    wf = load_workflow(ROOT / "workflows" / "direct_reply.yaml")
    assert "replied" not in wf.states
    assert wf.events["reply"].dest == "pending_callback"
    assert "approve_reply" not in wf.events
    assert wf.events["sign"].label == "签收"  # inherited


def test_selection_names_unknown_workflow(tmp_path):
    for f in (ROOT / "workflows").glob("*.yaml"):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "selection.yaml").write_text("default: default\ntypes: {consultation: nope}\n")
    with pytest.raises(WorkflowError) as err:
        WorkflowSet(tmp_path)
    assert "selection.yaml" in str(err.value) and "types.consultation" in str(err.value)


def test_a_co_handlers_part_may_have_its_own_label_and_nothing_else(tmp_path):
    """`co` takes `from` and, optionally, `label` (what a co-handler's form and history call
    the event); any other key is refused, naming the event."""
    source = (Path(__file__).resolve().parents[1] / "workflows" / "default.yaml").read_text(encoding="utf-8")
    assert "co: {from: [dispatched, in_progress], label: 协办答复}" in source
    path = tmp_path / "default.yaml"
    path.write_text(source, encoding="utf-8")
    reply = load_workflow(path).events["reply"]
    assert (reply.label_for(False), reply.label_for(True)) == ("办结回复", "协办答复")
    path.write_text(source.replace("label: 协办答复}", "label: 协办答复, to: replied}"), encoding="utf-8")
    with pytest.raises(WorkflowError, match=r"reply\.co"):
        load_workflow(path)


def test_the_urge_interval_holds_only_where_the_workflow_names_its_guard(tmp_path):
    """The dashboard and the limits page wait between urges only when the workflow's `urge`
    names the `urge_interval` guard (the limit alone refuses nothing), and the limit is bounded."""
    from hotline.supervision import urge_interval

    assert urge_interval(load_workflow(DEFAULT)) == 30
    shutil.copy(DEFAULT, tmp_path / "default.yaml")
    free = {
        "name": "free_urging",
        "label": "不限催办",
        "extends": "default",
        "events": {"urge": {"conditions": ["has_main_department", "own_source"]}},
    }
    (tmp_path / "free_urging.yaml").write_text(yaml.safe_dump(free, allow_unicode=True), encoding="utf-8")
    assert urge_interval(load_workflow(tmp_path / "free_urging.yaml")) == 0
    raw = yaml.safe_load(DEFAULT.read_text(encoding="utf-8"))
    raw["limits"]["urge_interval_minutes"] = 7 * 24 * 60 + 1
    (tmp_path / "default.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(WorkflowError, match="urge_interval_minutes"):
        load_workflow(tmp_path / "default.yaml")

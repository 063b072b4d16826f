"""The workflow engine: definitions as data (workflows/*.yaml) and the one gateway."""

from hotline.workflow import rules as _rules  # noqa: F401  (fills the registry)
from hotline.workflow.definition import Workflow, WorkflowError, WorkflowSet, load_workflow
from hotline.workflow.engine import SCHEDULER, Actor, available_events, fire

__all__ = [
    "SCHEDULER",
    "Actor",
    "Workflow",
    "WorkflowError",
    "WorkflowSet",
    "available_events",
    "fire",
    "load_workflow",
]

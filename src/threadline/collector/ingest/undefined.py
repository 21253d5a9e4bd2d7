"""Events the workflow definitions do not name: stored as sent, and said so.

An event of a workflow the definitions lack, or of a step its workflow does not define, is never
refused (nothing an integration sends is lost), but no rule can judge it: a transaction of an
undefined workflow never completes, fails, breaches or gets stuck. So the sender is told, as a
warning in the answer of ``POST /v1/events`` (OTLP's partial success is for rejections only), and
operators see it counted on ``/metrics``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..metrics import Metrics
from ..schema import BusinessEvent, Problem
from ..workflows import Workflows

# The metric's reason for each warning's field.
REASONS = {"workflow": "undefined_workflow", "step": "undefined_step"}


def warnings(workflows: Workflows, events: Sequence[BusinessEvent]) -> list[Problem]:
    """One warning per event whose workflow, or else whose step, the definitions do not name."""
    source = Path(workflows.source).name  # the file's name, not where it lives on the server
    found: list[Problem] = []
    for index, event in enumerate(events):
        definition = workflows.get(event.workflow)
        if definition is None:
            reason = (
                f'workflow "{event.workflow}" is not defined in {source}; stored, but its state cannot '
                "be judged"
            )
            found.append(Problem(index=index, field="workflow", reason=reason))
        elif definition.step(event.step) is None:
            reason = (
                f'step "{event.step}" is not a step of workflow "{event.workflow}" in {source}; stored, '
                "but no rule of the definition applies to it"
            )
            found.append(Problem(index=index, field="step", reason=reason))
    return found


def count(metrics: Metrics, endpoint: str, found: Sequence[Problem]) -> None:
    """Count the warnings on ``threadline_events_undefined_total`` by endpoint and reason."""
    for reason, events in Counter(REASONS[problem.field] for problem in found).items():
        metrics.events_undefined.labels(endpoint, reason).inc(events)

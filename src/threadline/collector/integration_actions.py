"""Actions on the owning integrations: the ``actions:`` section of the workflow definitions file.

::

    actions:
      - {name: resend-order, kind: retry, system: netsuite, url_env: NETSUITE_RETRY_URL,
         secret_env: NETSUITE_RETRY_SECRET, timeout: 10s}
      - {name: reactivate-billing, kind: retry, workflow: quote-to-cash,
         step: billing.subscription.activated, url_env: BILLING_RETRY_URL}

An action applies to a transaction's failed or stuck step when the step matches each of its
``workflow``, ``step`` and ``system`` that is set (at least one of ``step`` and ``system`` is). "Request
retry" (``kind: retry``) posts the transaction's keys, the step and the operator to the integration
that owns the step (``state.retry_requests``): a workflow engine can only retry inside itself, while
this reaches whichever integration does the step. The URL comes from the environment, as a
receiver's does, so it stays out of the file; while its variable is not set the action shows as not
configured. With ``secret_env`` the request is signed as Stripe signs its webhooks.

A mistake here stops the load with ``file:line: reason``, like every other definition problem.
"""

from __future__ import annotations

import os
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from yaml.nodes import Node

from .alert_rules import DefinitionReader

ActionKind = Literal["retry"]
ACTION_KINDS: tuple[str, ...] = get_args(ActionKind)
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 60.0  # an operator waits for the answer
_KEYS = frozenset(
    {"name", "kind", "workflow", "step", "system", "url_env", "secret_env", "timeout", "description"}
)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class IntegrationAction:
    """One declared action, and which steps it applies to."""

    name: str
    kind: ActionKind
    url_env: str
    workflow: str | None = None
    step: str | None = None
    system: str | None = None
    secret_env: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    line: int = field(default=0, compare=False)

    def applies_to(self, workflow: str, step: str, system: str | None) -> bool:
        return (
            (self.workflow is None or self.workflow == workflow)
            and (self.step is None or self.step == step)
            and (self.system is None or self.system == system)
        )

    def resolve_url(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The URL to post to now; None while ``url_env`` is not set."""
        return (environ.get(self.url_env) or "").strip() or None

    def secret(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The signing secret, when one is declared and set."""
        if self.secret_env is None:
            return None
        return environ.get(self.secret_env) or None

    def not_configured(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """Why it cannot be asked for now, naming the variable (never a URL); None when it can."""
        if self.resolve_url(environ) is None:
            return f"not configured: ${self.url_env} is not set"
        if self.secret_env and self.secret(environ) is None:
            return f"not configured: ${self.secret_env} (its signing secret) is not set"
        return None


def parse_actions(
    reader: DefinitionReader, node: Node, steps: Mapping[str, Container[str]]
) -> tuple[IntegrationAction, ...]:
    """The actions of an ``actions:`` list; ``steps``: each defined workflow's step names."""
    reader.raw(node)  # refuses unsafe or unknown YAML tags before anything is read
    actions: list[IntegrationAction] = []
    lines: dict[str, int] = {}
    for index, item in enumerate(reader.sequence(node, '"actions"'), 1):
        action = _action(reader, index, item, steps)
        if action.name in lines:
            raise reader.error(
                item, f'duplicate action "{action.name}" (first defined on line {lines[action.name]})'
            )
        lines[action.name] = action.line
        actions.append(action)
    return tuple(actions)


def _action(
    reader: DefinitionReader, index: int, node: Node, steps: Mapping[str, Container[str]]
) -> IntegrationAction:
    entries = reader.mapping(node, f"action {index}")
    if "name" not in entries:
        raise reader.error(node, f"action {index} has no name")
    name = reader.text_of(entries["name"][1], f"action {index}: name")
    what = f'action "{name}"'
    reader.check_keys(entries, _KEYS, what)

    def text(key: str) -> str | None:
        return reader.text_of(entries[key][1], f"{what}: {key}").strip() if key in entries else None

    kind = text("kind")
    if kind is None:
        raise reader.error(node, f"{what} has no kind ({', '.join(ACTION_KINDS)})")
    if kind not in ACTION_KINDS:
        raise reader.error(
            entries["kind"][1], f"{what}: kind must be {', '.join(ACTION_KINDS)}, not {kind!r}"
        )
    for key in ("url_env", "secret_env"):
        value = text(key)
        if value is not None and not _ENV_NAME.match(value):
            raise reader.error(entries[key][1], f"{what}: {key} must be an environment variable name")
    url_env = text("url_env")
    if url_env is None:
        raise reader.error(node, f"{what} has no url_env (the environment variable holding its URL)")
    workflow, step, system = text("workflow"), text("step"), text("system")
    if step is None and system is None:
        raise reader.error(node, f"{what} names neither a step nor a system it applies to")
    if workflow is not None and workflow not in steps:
        raise reader.error(entries["workflow"][1], f'{what}: workflow names unknown workflow "{workflow}"')
    if step is not None:
        among = [steps[workflow]] if workflow is not None else list(steps.values())
        if not any(step in names for names in among):
            where = f'workflow "{workflow}"' if workflow else "any workflow"
            raise reader.error(entries["step"][1], f'{what}: step "{step}" is not a step of {where}')
    if "description" in entries:
        text("description")
    timeout_s = DEFAULT_TIMEOUT_S
    if "timeout" in entries:
        timeout_s = reader.duration(entries["timeout"][1], f"{what}: timeout")
        if timeout_s > MAX_TIMEOUT_S:
            raise reader.error(
                entries["timeout"][1],
                f"{what}: timeout must be at most {MAX_TIMEOUT_S:g}s (an operator waits)",
            )
    return IntegrationAction(
        name=name,
        kind="retry",
        url_env=url_env,
        workflow=workflow,
        step=step,
        system=system,
        secret_env=text("secret_env"),
        timeout_s=timeout_s,
        line=node.start_mark.line + 1,
    )

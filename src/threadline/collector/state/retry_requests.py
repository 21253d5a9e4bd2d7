"""Request retry: ask the integration that owns a failed or stuck step to try it again.

The workflows file declares the actions (``integration_actions``). A transaction offers those that
apply to its *attention steps*: the steps whose errors were never recovered (state ``failed``) and,
while it is stuck, the steps it waits on. Asking posts the transaction's keys, the step and the
operator to the action's URL, once, with the action's timeout (an operator waits for the answer and
may ask again), the way alert deliveries post (``alerts.delivery``: httpx, no redirects, the URL never
in an error, since it may hold a token). The request is signed with Stripe's scheme when the action
declares a secret (``Threadline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">``), and
carries its audit entry's id as ``Idempotency-Key``.

Whatever the answer (a 2xx, another status, none at all), it is recorded in the audit trail as a
``retry`` entry (``exception_groups.record_action``) and shown with the transaction.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable, Mapping
from importlib.metadata import version

import httpx
import orjson

from ..ingest.webhooks import stripe_signature
from ..integration_actions import IntegrationAction
from ..models import AuditEntry, AvailableAction, CommentRequest, RetryOutcome, StepView, WaitingStep
from ..storage import Store
from ..workflows import Workflows
from .exception_groups import audit_entry, record_action

SIGNATURE_HEADER = "threadline-signature"
BODY_EXCERPT = 500  # characters of the integration's answer kept in the audit trail
PAYLOAD_TYPE = "threadline.retry-request/v1"

RETRIES = """
SELECT *
FROM audit_log
WHERE tenant = {tenant:String} AND transaction_id = {transaction:String} AND action = 'retry'
ORDER BY at DESC, action_id DESC
LIMIT 1000
"""


class ActionUnavailable(ValueError):
    """No such action applies to the transaction's failed or stuck steps."""


class ActionNotConfigured(ValueError):
    """The action applies, but its URL (or secret) is not in the environment."""


def attention_steps(
    state: str, steps: list[StepView], waiting_on: list[WaitingStep]
) -> list[tuple[str, str | None]]:
    """(step, system) of the steps an operator may ask to retry: failed ones, then, while the
    transaction is stuck, the ones it waits on."""
    found = [(step.name, step.system or step.expected_system) for step in steps if step.state == "failed"]
    if state == "stuck":
        found += [(waiting.step, waiting.system) for waiting in waiting_on]
    unique: dict[str, str | None] = {}
    for step, system in found:
        unique.setdefault(step, system)
    return list(unique.items())


def applicable(
    workflows: Workflows, workflow: str, steps: list[tuple[str, str | None]]
) -> list[tuple[IntegrationAction, str, str | None]]:
    """Each declared action that applies to one of ``steps``, with the first step it applies to."""
    matched = []
    for action in workflows.actions:
        step = next(((s, system) for s, system in steps if action.applies_to(workflow, s, system)), None)
        if step is not None:
            matched.append((action, *step))
    return matched


def available(
    store: Store,
    workflows: Workflows,
    tenant: str,
    transaction: str,
    workflow: str,
    steps: list[tuple[str, str | None]],
    environ: Mapping[str, str] = os.environ,
) -> list[AvailableAction]:
    """The actions a transaction offers now, each with the last time it was asked for."""
    matched = applicable(workflows, workflow, steps)
    if not matched:
        return []
    latest: dict[str | None, AuditEntry] = {}
    for row in store.rows(RETRIES, {"tenant": tenant, "transaction": transaction}):
        entry = audit_entry(row)
        latest.setdefault(entry.request, entry)  # newest first
    return [
        AvailableAction(
            name=action.name,
            kind=action.kind,
            step=step,
            system=system,
            configured=action.not_configured(environ) is None,
            reason=action.not_configured(environ),
            last=latest.get(action.name),
        )
        for action, step, system in matched
    ]


def request_retry(
    store: Store,
    workflows: Workflows,
    tenant: str,
    actor: str,
    found: tuple[str, str, dict[str, str]],
    key: str,
    steps: list[tuple[str, str | None]],
    name: str,
    request: CommentRequest,
    environ: Mapping[str, str] = os.environ,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> AuditEntry:
    """Post the request to the action's integration and record what it answered.

    ``found``: (transaction id, workflow, aliases). ActionUnavailable when the action does not apply
    to ``steps``, ActionNotConfigured while its variables are not set (then nothing is posted or recorded).
    """
    transaction, workflow, aliases = found
    matched = {
        action.name: (action, step, system) for action, step, system in applicable(workflows, workflow, steps)
    }
    if name not in matched:
        offered = ", ".join(sorted(matched)) or "none"
        raise ActionUnavailable(
            f"no action {name!r} applies to the failed or stuck steps of {key!r} (available: {offered})"
        )
    action, step, system = matched[name]
    if reason := action.not_configured(environ):
        raise ActionNotConfigured(f"action {name!r} is {reason}")
    url = action.resolve_url(environ)
    assert url is not None  # not_configured said so
    request_id = str(uuid.uuid4())
    requested_at = clock()
    body = orjson.dumps(
        {
            "type": PAYLOAD_TYPE,
            "request_id": request_id,
            "action": action.name,
            "transaction_id": transaction,
            "correlation_id": key,
            "keys": {"correlation_id": transaction, **aliases},
            "workflow": workflow,
            "step": step,
            "system": system,
            "operator": request.operator or None,
            "actor": actor,
            "comment": request.comment,
            "requested_at": requested_at.isoformat(),
        }
    )
    outcome = _post(action, url, body, request_id, action.secret(environ))
    details = {"request": action.name, "step": step, "outcome": outcome.model_dump()}
    return record_action(
        store,
        tenant,
        actor,
        "retry",
        action_id=request_id,
        transaction_id=transaction,
        correlation_id=key,
        system=system or "",
        workflow=workflow,
        comment=request.comment,
        operator=request.operator,
        kind=orjson.dumps(details).decode(),
    )


def _post(
    action: IntegrationAction, url: str, body: bytes, request_id: str, secret: str | None
) -> RetryOutcome:
    """One POST, as alert deliveries make them; the answer, or why there was none."""
    headers = {
        "content-type": "application/json",
        "user-agent": f"threadline/{version('threadline')}",
        "idempotency-key": request_id,
    }
    if secret:
        signed_at = int(time.time())
        headers[SIGNATURE_HEADER] = f"t={signed_at},v1={stripe_signature(body, secret, signed_at)}"
    started = time.monotonic()
    status_code: int | None = None
    text = ""
    try:
        with httpx.Client(timeout=action.timeout_s, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=headers)
        status_code = response.status_code
        text = response.text[:BODY_EXCERPT]
        delivered = 200 <= status_code < 300
        error = None if delivered else f"HTTP {status_code}"
    except httpx.HTTPError as failure:  # the URL is left out: it may carry a token
        delivered, error = False, f"{type(failure).__name__}: {failure}"[:BODY_EXCERPT]
    return RetryOutcome(
        delivered=delivered,
        status_code=status_code,
        body=text,
        error=error,
        duration_ms=(time.monotonic() - started) * 1000,
    )

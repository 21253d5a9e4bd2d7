"""Response shapes of the query API (README, "The collector"; docs/architecture.md, "Where each rule
is decided")."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from threadline.contract.event import ErrorKind

State = Literal["completed", "failed", "stuck", "in_progress"]
StepState = Literal["done", "failed", "in_progress", "waiting", "missing", "not_started"]


class EventErrorView(BaseModel):
    kind: str
    message: str
    type: str | None = Field(default=None, description="The exception's type, e.g. OTLP `exception.type`")
    stacktrace: str | None = Field(default=None, description="The exception's stack trace, if one was sent")


class WaitingStep(BaseModel):
    step: str
    system: str | None = Field(description="The system trying the step, else the one expected to")
    expected_system: str | None = Field(default=None, description="The system the definition expects")
    due_since: dt.datetime
    within_seconds: float | None = Field(description="How long the step may take once due, if defined")
    overdue: bool = Field(description="Due for longer than its `within`")


class Sla(BaseModel):
    limit_seconds: float | None
    elapsed_seconds: float
    breached: bool
    breached_by_seconds: float = Field(description="How far past the limit (0 when within it)")


class Violation(BaseModel):
    """A governance violation: a step done out of order, or after the workflow had failed."""

    rule: Literal["out_of_order", "after_failure"] = "out_of_order"
    step: str = Field(description="The step that ran")
    before: str | None = Field(
        default=None, description="out_of_order: the step it must come after, which had not run before it"
    )
    after: str | None = Field(default=None, description="after_failure: the failure step it ran after")

    @classmethod
    def of(cls, rule: str, step: str, other: str) -> Violation:
        if rule == "after_failure":
            return cls(rule="after_failure", step=step, after=other)
        return cls(rule="out_of_order", step=step, before=other)

    def text(self) -> str:
        if self.rule == "after_failure":
            return f"{self.step} ran after the workflow failed at {self.after}"
        return f"{self.step} ran before {self.before}, which it must come after"


class TransactionSummary(BaseModel):
    correlation_id: str = Field(description="The transaction's key (other keys are its aliases)")
    workflow: str
    state: State
    started_at: dt.datetime
    last_activity: dt.datetime
    completed_at: dt.datetime | None
    failed_at: dt.datetime | None
    waiting_on: list[WaitingStep]
    sla: Sla
    missing_steps: list[str]
    violations: list[Violation]
    systems: list[str]
    amount: float | None
    currency: str | None
    event_count: int
    error_count: int
    retry_count: int
    resolved: bool = Field(default=False, description="An operator marked it resolved (see /api/audit)")


class EventView(BaseModel):
    event_id: str
    correlation_id: str
    workflow: str
    step: str
    system: str
    status: str
    timestamp: dt.datetime
    received_at: dt.datetime
    duration_ms: float | None
    attempt: int | None
    error: EventErrorView | None
    amount: float | None
    currency: str | None
    aliases: dict[str, str]
    attributes: dict[str, str]
    trace_id: str | None
    span_id: str | None
    source: str


class StepView(BaseModel):
    name: str
    system: str | None = Field(description="The system that did the step (or tried it last)")
    expected_system: str | None = Field(description="The system the definition expects, if it names one")
    expected: bool = Field(description="Defined in the workflow (False: seen but not defined)")
    state: StepState
    status: str | None = Field(description="Status of the step's latest event; None if never seen")
    attempts: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    duration_ms: float | None
    error: EventErrorView | None


class AliasConflict(BaseModel):
    """An alias one transaction announced that was not linked; shown on both transactions."""

    alias: str
    kind: str = Field(description="The kind it was announced as")
    reason: Literal["already_claimed", "other_kind", "both_started"]
    announced_by: str = Field(description="The key whose event announced it")
    other_transaction: str = Field(description="The transaction on the other side of the conflict")
    message: str
    seen_at: dt.datetime


class TransactionDetail(TransactionSummary):
    as_of: dt.datetime
    workflow_defined: bool = Field(
        description="Its workflow is in the definitions; False: its events are stored and shown, but "
        "its state, SLA, waiting and missing steps cannot be judged"
    )
    aliases: dict[str, str]
    alias_conflicts: list[AliasConflict] = Field(
        description="Aliases announced by or for this transaction that were not linked, and why"
    )
    steps: list[StepView]
    events: list[EventView]


class TransactionPage(BaseModel):
    as_of: dt.datetime
    total: int = Field(description="Transactions matching the filters, over all pages")
    items: list[TransactionSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; None on the last")


class CurrencyAmount(BaseModel):
    currency: str
    amount: float
    transactions: int


class WorkflowFigures(BaseModel):
    workflow: str
    transactions: int
    completed: int
    failed: int
    stuck: int
    in_progress: int
    breached: int
    with_violations: int
    resolved: int = Field(description="Marked resolved by an operator; left out of stuck and value at risk")
    at_risk: int = Field(
        description="Stuck or SLA-breached and not resolved, each counted once: the queue's attention "
        "set less failures and violations"
    )
    completion_rate: float | None
    sla_attainment: float | None = Field(description="Share of SLA-bound transactions not breached")
    cycle_time_p50_seconds: float | None
    cycle_time_p95_seconds: float | None
    value_at_risk: list[CurrencyAmount]


class Bottleneck(BaseModel):
    step: str
    system: str | None
    waiting: int = Field(description="Open transactions waiting on this step")
    stuck: int


class TrendPoint(BaseModel):
    start: dt.datetime
    started: int
    completed: int
    failed: int
    stuck: int
    breached: int


class Overview(BaseModel):
    as_of: dt.datetime
    since: dt.datetime | None
    until: dt.datetime | None
    totals: WorkflowFigures
    workflows: list[WorkflowFigures]
    bottlenecks: list[Bottleneck]
    trend_bucket_seconds: int
    trend: list[TrendPoint]


class StepDefinitionView(BaseModel):
    name: str
    system: str | None
    after: list[str]
    within_seconds: float | None


class WorkflowView(BaseModel):
    name: str
    defined: bool = Field(
        description="In the workflow definitions; False: only seen in stored events, so its "
        "transactions are stored and mapped but their state cannot be judged"
    )
    last_started_at: dt.datetime | None = Field(
        description="When its latest stored transaction started; None: no event yet"
    )
    sla_seconds: float | None
    stuck_after_seconds: float | None = Field(description="None for a workflow that is not defined")
    complete_on: list[str]
    fail_on: list[str]
    steps: list[StepDefinitionView]


class MapNode(BaseModel):
    step: str
    system: str | None
    events: int
    transactions: int
    expected: bool


class MapEdge(BaseModel):
    source: str
    target: str
    count: int
    median_seconds: float
    p95_seconds: float
    expected: bool = Field(
        description="The definition's order allows target directly after source: both are defined "
        "steps, target need not come before source, and no step required between them is skipped "
        "(parallel steps follow each other in either order; a repeated step is expected)"
    )


class Variant(BaseModel):
    steps: list[str]
    transactions: int
    share: float


class ProcessMap(BaseModel):
    workflow: str
    since: dt.datetime | None
    until: dt.datetime | None
    transactions: int
    nodes: list[MapNode]
    edges: list[MapEdge]
    variants: list[Variant]


class SystemPoint(BaseModel):
    start: dt.datetime
    events: int
    errors: int
    retries: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class SystemHealth(BaseModel):
    system: str
    events: int
    errors: int
    error_rate: float
    retries: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    series: list[SystemPoint]


class SystemsReport(BaseModel):
    since: dt.datetime | None
    until: dt.datetime | None
    bucket_seconds: int
    systems: list[SystemHealth]


Attributes = Annotated[
    dict[str, JsonValue],
    Field(
        description="OTLP attribute values with their type: string, boolean, integer, double, an array of "
        "those, a key-value list as an object, bytes as base64; sensitive keys redacted"
    ),
]


class SpanEventView(BaseModel):
    name: str
    time: dt.datetime
    attributes: Attributes


class SpanLinkView(BaseModel):
    trace_id: str
    span_id: str
    attributes: Attributes


class ScopeView(BaseModel):
    name: str = Field(description="The instrumentation scope (library) that made the span")
    version: str
    attributes: Attributes


class SpanView(BaseModel):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    start_time: dt.datetime
    end_time: dt.datetime
    duration_ms: float
    status_code: str
    status_message: str
    attributes: Attributes
    events: list[SpanEventView] = Field(description="Span events as sent (exceptions among them)")
    links: list[SpanLinkView]
    resource: Attributes
    scope: ScopeView


class TraceView(BaseModel):
    trace_id: str
    spans: list[SpanView]
    events: list[EventView] = Field(description="Business events linked to this trace")


# --- Alerts (collector/alerts) ------------------------------------------------------------------

AlertStatus = Literal["firing", "resolved"]
NotificationStatus = Literal["pending", "delivered", "failed", "skipped"]


class DeliveryAttemptView(BaseModel):
    attempt: int
    at: dt.datetime
    ok: bool
    status_code: int | None = Field(description="The receiver's HTTP status; None when it did not answer")
    error: str
    duration_ms: float


class NotificationView(BaseModel):
    id: str = Field(description="Also sent as the Idempotency-Key header, so a receiver can drop a repeat")
    receiver: str
    receiver_type: str
    event: AlertStatus = Field(description="Which notification: the alert firing, or it resolving")
    status: NotificationStatus = Field(
        description="pending (to be sent or retried), delivered, failed (given up after the last attempt), "
        "skipped (the receiver has no URL: its url_env variable is not set)"
    )
    attempts: int
    last_error: str
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None = Field(description="When it is tried next, while pending")
    delivered_at: dt.datetime | None
    history: list[DeliveryAttemptView] = Field(
        default_factory=list, description="Every attempt (only on GET /api/alerts/{id})"
    )


class AlertView(BaseModel):
    id: str
    rule: str
    condition: str
    severity: str
    workflow: str | None
    subject: str = Field(
        description="The transaction, system or currency it is about; empty for the rule's scope"
    )
    status: AlertStatus
    summary: str
    fired_at: dt.datetime
    resolved_at: dt.datetime | None
    resolution: str | None = Field(description="Why it resolved")
    transactions: list[str] = Field(
        description="Correlation ids behind it (the first few for aggregate rules)"
    )
    link: str = Field(description="The dashboard page of the alert's transaction or of the alert")
    notifications: list[NotificationView]


class AlertDetail(AlertView):
    context: dict[str, Any] = Field(description="The payload sent when it fired: rule, figures, transactions")


class AlertPage(BaseModel):
    firing: int = Field(description="Alerts firing now (whatever the filters)")
    resolved: int = Field(description="Alerts resolved so far (whatever the filters)")
    total: int = Field(description="Alerts matching the filters, over all pages")
    items: list[AlertView]
    next_cursor: str | None


class ReceiverView(BaseModel):
    name: str
    type: str
    target: str = Field(description="The url_env variable, never the URL itself (it may carry a token)")
    configured: bool = Field(description="False while its url_env variable is not set")


class AlertRuleView(BaseModel):
    name: str
    when: str
    severity: str
    workflow: str | None
    description: str | None
    per_transaction: bool = Field(
        description="Fires once per transaction (else once per rule/system/currency)"
    )
    parameters: dict[str, float | int | str]
    receivers: list[str]
    watching_since: dt.datetime | None = Field(
        description="When the rule started watching this tenant: it alerts on what happens from then"
    )
    already_holding: int = Field(
        description="Transactions that already met the rule when it started watching: history, not alerted"
    )
    history: str | None = Field(description="What the rule found when it started watching, in words")
    history_transactions: list[str] = Field(description="The first of those transactions")


class AlertRules(BaseModel):
    interval_seconds: float
    last_evaluation: dt.datetime | None
    rules: list[AlertRuleView]
    receivers: list[ReceiverView]


# --- Exceptions and the operators' audit trail (collector/state/exception_groups.py) ------------------------

ExceptionKind = ErrorKind
AuditAction = Literal["acknowledge", "resolve", "reopen"]
Comment = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
OperatorName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)]


class AuditEntry(BaseModel):
    id: str
    at: dt.datetime
    action: AuditAction
    actor: str = Field(description="The name of the API key that did it")
    operator: str | None = Field(description="The person, as the caller named them (e.g. the dashboard user)")
    correlation_id: str | None = Field(description="The transaction (resolve, reopen)")
    kind: str | None = Field(description="The exception kind (acknowledge)")
    system: str | None
    workflow: str | None
    comment: str


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None


class ExceptionItem(BaseModel):
    correlation_id: str
    workflow: str
    state: State
    step: str
    message: str
    error_at: dt.datetime = Field(description="Event time of the step's latest error")
    errors: int = Field(description="Error events of the step")
    acknowledged: bool


class ExceptionGroup(BaseModel):
    kind: str
    system: str
    transactions: int = Field(description="Open transactions with this kind of error in this system")
    exceptions: int = Field(description="Their failing steps (a transaction may fail at several)")
    acknowledged: int = Field(
        description="Exceptions an acknowledgement covers (made after the error arrived)"
    )
    workflows: dict[str, int] = Field(description="Transactions per workflow")
    last_error_at: dt.datetime
    acknowledgement: AuditEntry | None = Field(description="The latest acknowledgement of the group")
    items: list[ExceptionItem] = Field(description="Newest error first, at most `limit`")


class ExceptionsReport(BaseModel):
    as_of: dt.datetime
    transactions: int
    exceptions: int
    groups: list[ExceptionGroup]


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ExceptionKind
    system: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    workflow: Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)] = Field(
        "", description="Only this workflow's exceptions; empty: every workflow"
    )
    comment: Comment
    operator: OperatorName = ""


class AcknowledgeResult(BaseModel):
    entry: AuditEntry
    covered: int = Field(description="Open exceptions this acknowledgement covers now")


class CommentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    comment: Comment
    operator: OperatorName = ""


class KeyView(BaseModel):
    """The calling API key, so a client (the dashboard) can tell what it may do before trying."""

    name: str
    tenant: str = Field(description="Empty: no tenant (a platform key, or no keys configured)")
    roles: list[str] = Field(description="The roles it holds and those they imply, sorted")

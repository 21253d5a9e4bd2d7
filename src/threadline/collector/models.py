"""Response shapes of the query API (README, "The collector"; docs/architecture.md, "Where each rule
is decided")."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    TypeAdapter,
)

from threadline.contract.event import ErrorKind

from .schema import in_storable_range

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


class MismatchStep(BaseModel):
    """What one step's latest event carried of a value that must agree."""

    step: str
    system: str
    value: float | str | None = Field(description="The value; null: the step's latest event carried none")
    currency: str | None = Field(default=None, description="For `amount`: the event's currency")


class Mismatch(BaseModel):
    """A value the workflow's `reconcile:` says must agree, and how it does not."""

    field: str = Field(description="The value, as `reconcile` names it: `amount` or `attributes.<key>`")
    kind: Literal["differs", "missing"] = Field(
        description="differs: the steps' values disagree beyond the tolerance (or in currency); "
        "missing: a step that happened sent no value"
    )
    steps: list[MismatchStep] = Field(
        description="differs: every step that sent one; missing: those that did not"
    )
    tolerance: str = Field(description="`exact`, a difference (`50`) or a percent (`0.5%`)")

    def text(self) -> str:
        if self.kind == "missing":
            return f"{self.field} missing at " + ", ".join(f"{s.step} ({s.system})" for s in self.steps)
        values = ", ".join(
            f"{s.step} ({s.system}) "
            + (f"{s.value:,.2f}".rstrip("0").rstrip(".") if isinstance(s.value, float) else str(s.value))
            + (f" {s.currency}" if s.currency else "")
            for s in self.steps
        )
        return f"{self.field} differs beyond {self.tolerance}: {values}"


# How a transaction's mismatches are stored (``transaction_reconciliations.mismatches``): the API's JSON.
MISMATCHES = TypeAdapter(list[Mismatch])


class Duplicate(BaseModel):
    """Another transaction of the workflow with the same business key (`unique_by`) within its window."""

    correlation_id: str = Field(description="The other transaction")
    field: str = Field(description="The business key, as `unique_by` names it")
    value: str = Field(description="The key's value both carry")


class Forecast(BaseModel):
    """When an open transaction is expected to complete, learned from its workflow's recently
    completed transactions (``state/forecast.py``); no ETA when there is too little history, or when
    a stuck transaction's like seldom completed."""

    eta: dt.datetime | None = Field(description="Expected completion (None: no forecast, or not expected)")
    completion_expected: bool | None = Field(
        description="False: stuck, and most of its workflow's transactions stuck recently never "
        "completed, so it is not expected to complete without intervention (no ETA); None: no forecast",
    )
    breach_expected: bool = Field(
        description="The ETA is after the SLA deadline, or it is not expected to complete at all"
    )
    lead_seconds: float | None = Field(
        description="Seconds from as_of to the SLA deadline, when a breach is expected"
    )
    reason: str = Field(description="Why, in words: the steps to come, their learned times, the SLA clock")


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
    mismatches: list[Mismatch] = Field(
        default_factory=list, description="Values its systems disagree on (`reconcile:`), as last derived"
    )
    duplicates: list[Duplicate] = Field(
        default_factory=list,
        description="Possible duplicates: transactions with its business key (`unique_by:`)",
    )
    forecast: Forecast | None = Field(default=None, description="Its expected completion and SLA outlook")
    dimensions: dict[str, str] = Field(
        default_factory=dict,
        description="Its values of its workflow's `dimensions:` (region, tier, ...), from its latest "
        "events that carry each; a dimension none carries is left out",
    )


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
    actions: list[AvailableAction] = Field(
        default_factory=list,
        description="Declared actions for its failed or stuck steps (POST .../actions/{name}), "
        "each with the last time it was asked for",
    )


class TransactionPage(BaseModel):
    as_of: dt.datetime
    total: int = Field(description="Transactions matching the filters, over all pages")
    items: list[TransactionSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; None on the last")


class CurrencyAmount(BaseModel):
    currency: str
    amount: float
    transactions: int


class Figures(BaseModel):
    """What the overview counts over a set of transactions: a workflow's, a dimension value's, all."""

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
    with_mismatches: int = Field(default=0, description="Transactions whose systems disagree on a value")
    mismatched_values: dict[str, int] = Field(
        default_factory=dict,
        description="Per value (`amount`, `attributes.<key>`): the transactions it is wrong in",
    )
    with_duplicates: int = Field(
        default=0, description="Transactions sharing their business key with another"
    )


class WorkflowFigures(Figures):
    workflow: str = Field(description="The workflow; empty in the totals")


class DimensionFigures(Figures):
    value: str | None = Field(description="The dimension's value; null: the transactions that carry none")


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
    group_by: str | None = Field(default=None, description="The dimension `groups` are by, if asked for")
    groups: list[DimensionFigures] = Field(
        default_factory=list, description="Per value of the `group_by` dimension, most transactions first"
    )
    bottlenecks: list[Bottleneck]
    trend_bucket_seconds: int
    trend: list[TrendPoint]


class DimensionValue(BaseModel):
    value: str
    transactions: int


class DimensionValues(BaseModel):
    """A dimension of the workflows' `dimensions:` and its commonest values (at most 100)."""

    dimension: str
    values: list[DimensionValue] = Field(description="Most transactions first")


class Retention(BaseModel):
    """How far back the tenant's data goes: transactions whose last event is older are deleted."""

    days: int | None = Field(description="days data is kept (null: for ever)")
    kept_since: dt.datetime | None = Field(description="the oldest moment whose data is kept (null: all)")


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
    dimensions: list[str] = Field(
        default_factory=list,
        description="The attribute keys its transactions are sliced by (`dimensions:`): the queue's "
        "`dimension` filter and the overview's `group_by` take them",
    )


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


DeviationKind = Literal["out_of_order", "missing", "undefined_step", "repeated", "after_failure"]
Outcome = Literal["completed", "failed", "open"]


class Deviation(BaseModel):
    kind: DeviationKind = Field(
        description="out_of_order: a step before one it must come after; missing: a step a completed or "
        "failed transaction never did though it must come before one it did; undefined_step: a step the "
        "definition does not name; repeated: a step done again after a step that must follow it (a "
        "repeat with no such step in between is a retry, not a deviation); after_failure: a step done "
        "after a fail_on step"
    )
    step: str
    other: str | None = Field(
        description="out_of_order: the step it came before; repeated: the later step it came back after; "
        "after_failure: the failure step; else None"
    )
    description: str = Field(
        description='In words, e.g. "billing.subscription.activated before erp.order.created"'
    )


class RankedDeviation(Deviation):
    transactions: int = Field(description="Transactions whose variant shows this deviation")
    variants: int = Field(description="Variants that show it")


class Variant(BaseModel):
    steps: list[str]
    transactions: int
    share: float
    outcome: Outcome | None = Field(
        default=None,
        description="completed (a complete_on step and no fail_on step), failed (a fail_on step) or open, "
        "by the steps of the variant; None for a workflow without a definition",
    )
    conforming: bool | None = Field(
        default=None, description="No deviation from the definition; None for a workflow without one"
    )
    deviations: list[Deviation] = Field(default_factory=list)


class Conformance(BaseModel):
    judged: bool = Field(description="False: the workflow has no definition to judge by (note says why)")
    note: str = Field(description="Why nothing is judged, or how open transactions are judged")
    transactions: int
    conforming: int = Field(description="Transactions whose variant has no deviation")
    deviating: int
    open: int = Field(description="Transactions neither completed nor failed: judged on order only")
    conforming_share: float | None = Field(description="conforming / transactions; None without transactions")
    deviations: list[RankedDeviation] = Field(description="Every deviation seen, most transactions first")


class ProcessMap(BaseModel):
    workflow: str
    since: dt.datetime | None
    until: dt.datetime | None
    transactions: int
    nodes: list[MapNode]
    edges: list[MapEdge]
    variants: list[Variant]
    conformance: Conformance = Field(description="The variants judged against the workflow's definition")


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


DriftKind = Literal["missing", "new"]


class DriftExample(BaseModel):
    """An event showing the drift: the first without the attribute, or the first with it."""

    time: dt.datetime
    event_id: str
    correlation_id: str = Field(description="The key the event was sent with: its transaction's page")


class SchemaDrift(BaseModel):
    system: str
    step: str
    attribute: str = Field(description="The attribute key (`amount` and `currency` count as keys)")
    kind: DriftKind = Field(description="missing: the system stopped sending it; new: it started sending it")
    since: dt.datetime = Field(description="The first event without it (missing), or with it (new)")
    events_since: int
    carrying_since: int = Field(description="Of the events since, how many carry it (0 when missing)")
    events_before: int = Field(description="The step's events in the baseline before the change")
    carrying_before: int = Field(description="Of those, how many carried it (0 when new)")
    last_carried: dt.datetime | None = Field(description="missing: the last event that carried it")
    example: DriftExample
    summary: str


class SchemaDriftReport(BaseModel):
    as_of: dt.datetime
    baseline_days: float = Field(description="How far back what a step usually sends is learned")
    min_before: int = Field(description="Events a step needs in its baseline to drift")
    min_since: int = Field(description="Events a step needs since the change to drift")
    drifts: list[SchemaDrift] = Field(description="The newest first")


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
NotificationStatus = Literal["pending", "delivered", "failed", "skipped", "grouped", "silenced"]
# What an alert is known by: what ``group_by`` groups on and silences match (collector/alert_rules.py).
AlertLabel = Literal["rule", "severity", "workflow", "system", "currency", "subject"]
SilenceState = Literal["pending", "active", "expired"]
Comment = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
OperatorName = Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)]
StoredMoment = Annotated[AwareDatetime, AfterValidator(in_storable_range)]  # RFC 3339, with its zone
LabelValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]


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
        description="pending (to be sent or retried, or waiting for its group), delivered, failed (given up "
        "after the last attempt), skipped (the receiver has no URL: its url_env variable is not set), "
        "silenced (a silence matched the alert: nothing was sent)"
    )
    group: str | None = Field(
        description="The notification group (receiver and group_by labels) that told of it"
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
    labels: dict[str, str] = Field(
        description="What group_by groups on and silences match: rule, system, ..."
    )
    silenced_by: list[str] = Field(
        description="The silences in force that match it: its notifications are held back",
    )
    notifications: list[NotificationView]


class AlertDetail(AlertView):
    context: dict[str, Any] = Field(description="The payload sent when it fired: rule, figures, transactions")


class AlertPage(BaseModel):
    firing: int = Field(description="Alerts firing now (whatever the filters)")
    resolved: int = Field(description="Alerts resolved so far (whatever the filters)")
    total: int = Field(description="Alerts matching the filters, over all pages")
    items: list[AlertView]
    next_cursor: str | None


class AlertGroupView(BaseModel):
    """One notification group: a receiver's alerts sharing the values of its ``group_by`` labels."""

    key: str
    receiver: str
    labels: dict[str, str] = Field(description="The group_by labels and their values")
    firing: int = Field(description="Alerts of the group firing as of its last notification")
    firing_alerts: list[str] = Field(description="Their ids")
    notifications: int = Field(description="Notifications sent for the group so far")
    last_notified_at: dt.datetime | None
    group_wait_seconds: float
    group_interval_seconds: float
    repeat_interval_seconds: float


class AlertGroups(BaseModel):
    items: list[AlertGroupView]


class SilenceRequest(BaseModel):
    """A silence: alerts whose labels equal every matcher send nothing from ``starts_at`` (default now)
    until ``ends_at``. A maintenance window for a system: ``{"system": "netsuite"}`` and a future start."""

    model_config = ConfigDict(extra="forbid")

    matchers: dict[AlertLabel, LabelValue] = Field(
        min_length=1, max_length=len(get_args(AlertLabel)), description="label: value, all must equal"
    )
    starts_at: StoredMoment | None = Field(default=None, description="Default: now")
    ends_at: StoredMoment
    comment: Comment
    operator: OperatorName = ""


class SilenceView(BaseModel):
    id: str
    matchers: dict[str, str]
    starts_at: dt.datetime
    ends_at: dt.datetime
    state: SilenceState = Field(description="pending (starts later), active, expired")
    comment: str
    created_by: str = Field(description="The name of the API key that set it")
    operator: str | None = Field(description="The person, as the caller named them")
    created_at: dt.datetime
    expired_by: str | None = Field(description="Who expired it early, if anyone")


class Silences(BaseModel):
    items: list[SilenceView]


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
    dimensions: dict[str, str] = Field(
        default_factory=dict, description="The values a transaction must have, each, for the rule to see it"
    )
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
AuditAction = Literal["acknowledge", "resolve", "reopen", "silence", "expire", "retry"]


class RetryOutcome(BaseModel):
    """What the owning integration answered a retry request (``actions:`` in the workflows file)."""

    delivered: bool = Field(description="The integration answered 2xx")
    status_code: int | None = Field(description="Its HTTP status; None when it did not answer")
    body: str = Field(description="The start of its answer's body")
    error: str | None = Field(description="Why it was not delivered: no answer, or a status but 2xx")
    duration_ms: float


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
    request: str | None = Field(None, description="The declared action asked for (retry)")
    step: str | None = Field(None, description="The step it was asked for (retry)")
    outcome: RetryOutcome | None = Field(None, description="What the integration answered (retry)")


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


# --- Acting on many transactions at once, and on the owning integrations -----------------------------

MAX_BULK_TRANSACTIONS = 500  # a bulk action's transactions per request: one request, one lock turn
BulkActionKind = Literal["resolve", "acknowledge"]
BulkOutcome = Literal["done", "not_found", "conflict"]


class ExceptionGroupSelector(BaseModel):
    """Every transaction behind an exception group's open exceptions (as ``/api/exceptions`` groups)."""

    model_config = ConfigDict(extra="forbid")

    kind: ExceptionKind
    system: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    workflow: Annotated[str, StringConstraints(strip_whitespace=True, max_length=128)] = Field(
        "", description="Only this workflow's transactions; empty: every workflow"
    )


class BulkActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: BulkActionKind
    correlation_ids: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = Field(
        None, description=f"The transactions, by any key; at most {MAX_BULK_TRANSACTIONS}"
    )
    exception_group: ExceptionGroupSelector | None = Field(
        None, description="Instead of correlation_ids: every transaction of this open exception group"
    )
    comment: Comment
    operator: OperatorName = ""


class BulkItemResult(BaseModel):
    correlation_id: str = Field(description="The key as asked")
    outcome: BulkOutcome
    reason: str | None = Field(description="Why it was not done (not_found, conflict)")
    entry: AuditEntry | None = Field(description="Its own audit entry (done)")


class BulkActionResult(BaseModel):
    action: BulkActionKind
    done: int
    not_found: int
    conflict: int
    items: list[BulkItemResult] = Field(description="One per transaction asked for, in the order asked")


class AvailableAction(BaseModel):
    """A declared action (``actions:`` in the workflows file) for a failed or stuck step of a transaction."""

    name: str
    kind: Literal["retry"]
    step: str
    system: str | None
    configured: bool = Field(description="False while its URL's environment variable is not set")
    reason: str | None = Field(description="Why it cannot be asked for now (not configured)")
    last: AuditEntry | None = Field(description="The latest time it was asked for, with the answer")


TransactionDetail.model_rebuild()  # its ``actions`` are declared below it

"""The JSON the collector's query API answers, as the dashboard reads it (collector/models.py).

Typed dictionaries rather than imports from the collector: the dashboard talks to the API over HTTP
only. Each one mirrors the response model of its name (or its name with ``View``): the same fields,
required as the API's OpenAPI schema says (a field with a default is optional there), of the same JSON
types; tests/dashboard/test_schema.py holds them to it. Times are RFC 3339 strings in UTC. The pages
read the fields added late with ``.get()`` and a default, so an older collector's answers show too.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

State = Literal["completed", "failed", "stuck", "in_progress"]
StepState = Literal["done", "failed", "in_progress", "waiting", "missing", "not_started"]
AlertStatus = Literal["firing", "resolved"]
NotificationStatus = Literal["pending", "delivered", "failed", "skipped", "grouped", "silenced"]
AuditAction = Literal["acknowledge", "resolve", "reopen", "silence", "expire", "retry"]
SilenceState = Literal["pending", "active", "expired"]


class EventError(TypedDict):
    kind: str
    message: str
    type: NotRequired[str | None]
    stacktrace: NotRequired[str | None]


class WaitingStep(TypedDict):
    step: str
    system: str | None
    expected_system: NotRequired[str | None]
    due_since: str
    within_seconds: float | None
    overdue: bool


class Sla(TypedDict):
    limit_seconds: float | None
    elapsed_seconds: float
    breached: bool
    breached_by_seconds: float


class Violation(TypedDict):
    rule: NotRequired[Literal["out_of_order", "after_failure"]]
    step: str
    before: NotRequired[str | None]
    after: NotRequired[str | None]


class MismatchStep(TypedDict):
    step: str
    system: str
    value: float | str | None
    currency: NotRequired[str | None]


class Mismatch(TypedDict):
    field: str
    kind: Literal["differs", "missing"]
    steps: list[MismatchStep]
    tolerance: str


class Duplicate(TypedDict):
    correlation_id: str
    field: str
    value: str


class Forecast(TypedDict):
    eta: str | None
    completion_expected: bool | None
    breach_expected: bool
    lead_seconds: float | None
    reason: str


class TransactionSummary(TypedDict):
    correlation_id: str
    workflow: str
    state: State
    started_at: str
    last_activity: str
    completed_at: str | None
    failed_at: str | None
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
    resolved: NotRequired[bool]  # an operator marked it resolved
    mismatches: NotRequired[list[Mismatch]]  # values its systems disagree on (`reconcile:`)
    duplicates: NotRequired[list[Duplicate]]  # transactions with its business key (`unique_by:`)
    forecast: NotRequired[Forecast | None]  # expected completion and SLA outlook (open ones)
    dimensions: NotRequired[dict[str, str]]  # its values of its workflow's `dimensions:`


class Event(TypedDict):
    event_id: str
    correlation_id: str
    workflow: str
    step: str
    system: str
    status: str
    timestamp: str
    received_at: str
    duration_ms: float | None
    attempt: int | None
    error: EventError | None
    amount: float | None
    currency: str | None
    aliases: dict[str, str]
    attributes: dict[str, str]
    trace_id: str | None
    span_id: str | None
    source: str


class Step(TypedDict):
    name: str
    system: str | None
    expected_system: str | None
    expected: bool
    state: StepState
    status: str | None
    attempts: int
    first_at: str | None
    last_at: str | None
    duration_ms: float | None
    error: EventError | None


class AliasConflict(TypedDict):
    alias: str
    kind: str
    reason: Literal["already_claimed", "other_kind", "both_started"]
    announced_by: str
    other_transaction: str
    message: str
    seen_at: str


class TransactionDetail(TransactionSummary):
    as_of: str
    workflow_defined: bool
    aliases: dict[str, str]
    alias_conflicts: list[AliasConflict]
    steps: list[Step]
    events: list[Event]
    actions: NotRequired[list[AvailableAction]]


class TransactionPage(TypedDict):
    as_of: str
    total: int
    items: list[TransactionSummary]
    next_cursor: str | None


class CurrencyAmount(TypedDict):
    currency: str
    amount: float
    transactions: int


class _Figures(TypedDict):
    """What WorkflowFigures and DimensionFigures share (the API's ``Figures``, never a response alone)."""

    transactions: int
    completed: int
    failed: int
    stuck: int
    in_progress: int
    breached: int
    with_violations: int
    resolved: int
    at_risk: int
    completion_rate: float | None
    sla_attainment: float | None
    cycle_time_p50_seconds: float | None
    cycle_time_p95_seconds: float | None
    value_at_risk: list[CurrencyAmount]
    with_mismatches: NotRequired[int]
    mismatched_values: NotRequired[dict[str, int]]
    with_duplicates: NotRequired[int]


class WorkflowFigures(_Figures):
    workflow: str


class DimensionFigures(_Figures):
    value: str | None  # None: the transactions that carry none


class Bottleneck(TypedDict):
    step: str
    system: str | None
    waiting: int
    stuck: int


class TrendPoint(TypedDict):
    start: str
    started: int
    completed: int
    failed: int
    stuck: int
    breached: int


class Overview(TypedDict):
    as_of: str
    since: str | None
    until: str | None
    totals: WorkflowFigures
    workflows: list[WorkflowFigures]
    bottlenecks: list[Bottleneck]
    trend_bucket_seconds: int
    trend: list[TrendPoint]
    group_by: NotRequired[str | None]
    groups: NotRequired[list[DimensionFigures]]  # per value of `group_by`


class Retention(TypedDict):
    days: int | None  # None: kept for ever
    kept_since: str | None


class StepDefinition(TypedDict):
    name: str
    system: str | None
    after: list[str]
    within_seconds: float | None


class Workflow(TypedDict):
    name: str
    defined: bool  # False: only seen in events
    last_started_at: str | None
    sla_seconds: float | None
    stuck_after_seconds: float | None  # None for a workflow that is not defined
    complete_on: list[str]
    fail_on: list[str]
    steps: list[StepDefinition]
    dimensions: NotRequired[list[str]]  # the attribute keys its transactions are sliced by


class DimensionValue(TypedDict):
    value: str
    transactions: int


class DimensionValues(TypedDict):
    dimension: str
    values: list[DimensionValue]  # most transactions first


class MapNode(TypedDict):
    step: str
    system: str | None
    events: int
    transactions: int
    expected: bool


class MapEdge(TypedDict):
    source: str
    target: str
    count: int
    median_seconds: float
    p95_seconds: float
    expected: bool


DeviationKind = Literal["out_of_order", "missing", "undefined_step", "repeated", "after_failure"]
Outcome = Literal["completed", "failed", "open"]


class Deviation(TypedDict):
    kind: DeviationKind
    step: str
    other: str | None
    description: str


class RankedDeviation(Deviation):
    transactions: int
    variants: int


class Variant(TypedDict):
    steps: list[str]
    transactions: int
    share: float
    outcome: NotRequired[Outcome | None]  # None: the workflow is not defined
    conforming: NotRequired[bool | None]
    deviations: NotRequired[list[Deviation]]


class Conformance(TypedDict):
    judged: bool  # False: no definition to judge by (note says why)
    note: str
    transactions: int
    conforming: int
    deviating: int
    open: int
    conforming_share: float | None
    deviations: list[RankedDeviation]


class ProcessMap(TypedDict):
    workflow: str
    since: str | None
    until: str | None
    transactions: int
    nodes: list[MapNode]
    edges: list[MapEdge]
    variants: list[Variant]
    conformance: Conformance  # read with .get(): an older collector's map has none


class SystemPoint(TypedDict):
    start: str
    events: int
    errors: int
    retries: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None


class SystemHealth(TypedDict):
    system: str
    events: int
    errors: int
    error_rate: float
    retries: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    series: list[SystemPoint]


class SystemsReport(TypedDict):
    since: str | None
    until: str | None
    bucket_seconds: int
    systems: list[SystemHealth]


class DriftExample(TypedDict):
    time: str
    event_id: str
    correlation_id: str


class SchemaDrift(TypedDict):
    system: str
    step: str
    attribute: str
    kind: Literal["missing", "new"]
    since: str
    events_since: int
    carrying_since: int
    events_before: int
    carrying_before: int
    last_carried: str | None
    example: DriftExample
    summary: str


class SchemaDriftReport(TypedDict):
    as_of: str
    baseline_days: float
    min_before: int
    min_since: int
    drifts: list[SchemaDrift]


class SpanEvent(TypedDict):
    name: str
    time: str
    attributes: dict[str, Any]


class SpanLink(TypedDict):
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


class Scope(TypedDict):
    name: str
    version: str
    attributes: dict[str, Any]


class Span(TypedDict):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    service: str
    kind: str
    start_time: str
    end_time: str
    duration_ms: float
    status_code: str
    status_message: str
    attributes: dict[str, Any]  # typed values, as sent
    events: list[SpanEvent]
    links: list[SpanLink]
    resource: dict[str, Any]
    scope: Scope


class Trace(TypedDict):
    trace_id: str
    spans: list[Span]
    events: list[Event]


# --- Alerts (/api/alerts) ------------------------------------------------------------------------


class DeliveryAttempt(TypedDict):
    attempt: int
    at: str
    ok: bool
    status_code: int | None
    error: str
    duration_ms: float


class Notification(TypedDict):
    id: str
    receiver: str
    receiver_type: str
    event: AlertStatus
    status: NotificationStatus
    attempts: int
    last_error: str
    created_at: str
    next_attempt_at: str | None
    delivered_at: str | None
    group: str | None  # the notification group that told of it
    history: NotRequired[list[DeliveryAttempt]]  # every attempt, on GET /api/alerts/{id} only


class Alert(TypedDict):
    id: str
    rule: str
    condition: str
    severity: str
    workflow: str | None
    subject: str
    status: AlertStatus
    summary: str
    fired_at: str
    resolved_at: str | None
    resolution: str | None
    transactions: list[str]
    link: str
    labels: dict[str, str]
    silenced_by: list[str]  # the silences in force that match it
    notifications: list[Notification]


class AlertDetail(Alert):
    context: dict[str, Any]  # the payload it fired with: alert, figures, transactions (payloads.py)


class AlertPage(TypedDict):
    firing: int
    resolved: int
    total: int
    items: list[Alert]
    next_cursor: str | None


class AlertGroup(TypedDict):
    key: str
    receiver: str
    labels: dict[str, str]
    firing: int
    firing_alerts: list[str]
    notifications: int
    last_notified_at: str | None
    group_wait_seconds: float
    group_interval_seconds: float
    repeat_interval_seconds: float


class AlertGroups(TypedDict):
    items: list[AlertGroup]


class Silence(TypedDict):
    id: str
    matchers: dict[str, str]
    starts_at: str
    ends_at: str
    state: SilenceState
    comment: str
    created_by: str
    operator: str | None
    created_at: str
    expired_by: str | None


class Silences(TypedDict):
    items: list[Silence]


class Receiver(TypedDict):
    name: str
    type: str
    target: str
    configured: bool


class AlertRule(TypedDict):
    name: str
    when: str
    severity: str
    workflow: str | None
    description: str | None
    per_transaction: bool
    parameters: dict[str, float | int | str]
    dimensions: NotRequired[dict[str, str]]  # the values a transaction must have, each
    receivers: list[str]
    watching_since: str | None
    already_holding: int
    history: str | None
    history_transactions: list[str]


class AlertRules(TypedDict):
    interval_seconds: float
    last_evaluation: str | None
    rules: list[AlertRule]
    receivers: list[Receiver]


# --- Exceptions and the operators' audit trail (/api/exceptions, /api/audit) ---------------------


class AuditEntry(TypedDict):
    id: str
    at: str
    action: AuditAction
    actor: str
    operator: str | None
    correlation_id: str | None
    kind: str | None
    system: str | None
    workflow: str | None
    comment: str
    request: NotRequired[str | None]
    step: NotRequired[str | None]
    outcome: NotRequired[RetryOutcome | None]


class AuditPage(TypedDict):
    items: list[AuditEntry]
    next_cursor: str | None


class ExceptionItem(TypedDict):
    correlation_id: str
    workflow: str
    state: State
    step: str
    message: str
    error_at: str
    errors: int
    acknowledged: bool


class ExceptionGroup(TypedDict):
    kind: str
    system: str
    transactions: int
    exceptions: int
    acknowledged: int
    workflows: dict[str, int]
    last_error_at: str
    acknowledgement: AuditEntry | None
    items: list[ExceptionItem]


class ExceptionsReport(TypedDict):
    as_of: str
    transactions: int
    exceptions: int
    groups: list[ExceptionGroup]


class AcknowledgeResult(TypedDict):
    entry: AuditEntry
    covered: int


class KeyView(TypedDict):
    """``/api/whoami``: the dashboard's own key."""

    name: str
    tenant: str
    roles: list[str]


class RetryOutcome(TypedDict):
    delivered: bool
    status_code: int | None
    body: str
    error: str | None
    duration_ms: float


class AvailableAction(TypedDict):
    """A declared action (request retry) for a failed or stuck step of the transaction."""

    name: str
    kind: Literal["retry"]
    step: str
    system: str | None
    configured: bool
    reason: str | None
    last: AuditEntry | None


class BulkItemResult(TypedDict):
    correlation_id: str
    outcome: Literal["done", "not_found", "conflict"]
    reason: str | None
    entry: AuditEntry | None


class BulkActionResult(TypedDict):
    action: Literal["resolve", "acknowledge"]
    done: int
    not_found: int
    conflict: int
    items: list[BulkItemResult]

"""Response shapes of the query API (DESIGN.md, "Transaction state" and "Public surfaces")."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

State = Literal["completed", "failed", "stuck", "in_progress"]
StepState = Literal["done", "failed", "in_progress", "waiting", "missing", "not_started"]


class EventErrorView(BaseModel):
    kind: str
    message: str


class WaitingStep(BaseModel):
    step: str
    system: str | None
    due_since: dt.datetime
    within_seconds: float | None = Field(description="How long the step may take once due, if defined")
    overdue: bool = Field(description="Due for longer than its `within`")


class Sla(BaseModel):
    limit_seconds: float | None
    elapsed_seconds: float
    breached: bool
    breached_by_seconds: float = Field(description="How far past the limit (0 when within it)")


class Violation(BaseModel):
    step: str = Field(description="The step that ran")
    before: str = Field(description="The step it must come after, which had not run before it")


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
    system: str | None
    expected: bool = Field(description="Defined in the workflow (False: seen but not defined)")
    state: StepState
    status: str | None = Field(description="Status of the step's latest event; None if never seen")
    attempts: int
    first_at: dt.datetime | None
    last_at: dt.datetime | None
    duration_ms: float | None
    error: EventErrorView | None


class TransactionDetail(TransactionSummary):
    as_of: dt.datetime
    aliases: dict[str, str]
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
    sla_seconds: float | None
    stuck_after_seconds: float
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
    expected: bool = Field(description="The workflow defines target as coming after source")


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
    attributes: dict[str, str]


class TraceView(BaseModel):
    trace_id: str
    spans: list[SpanView]
    events: list[EventView] = Field(description="Business events linked to this trace")

"""The query API: transactions, the operations queue, overview, workflows and their process maps,
systems, traces; and the platform's reload of the workflow definitions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool

from ..auth import require
from ..http_errors import ApiError
from ..models import (
    DimensionValues,
    Overview,
    ProcessMap,
    Retention,
    SchemaDriftReport,
    State,
    SystemsReport,
    TraceView,
    TransactionDetail,
    TransactionPage,
    WorkflowView,
)
from ..schema import Problem
from ..state import dimensions, drift, process_map, retry_requests, systems, traces, transactions
from ..state import overview as overview_module
from ..state.timeline import step_views, waiting_on_systems
from ..workflows import WorkflowError, Workflows
from .dependencies import (
    READING,
    SNAPSHOT_CAUGHT_UP,
    TRANSACTION_PATH,
    After,
    AsOf,
    CollectorDep,
    Since,
    TenantDep,
    TransactionKey,
    Until,
    as_of_or_now,
    check_range,
)

router = APIRouter(prefix="/api", tags=["query"], dependencies=READING)
# The workflow definitions are one file every tenant shares: changing them is the platform's to do.
platform = APIRouter(prefix="/api", tags=["platform"], dependencies=[Depends(require("platform"))])
STATES = get_args(State)
ISSUES = ("mismatch", "duplicate")  # the queue's `issue` filter


DimensionQuery = Annotated[
    list[str] | None,
    Query(
        description="`<dimension>:<value>` (a dimension of the workflows' `dimensions:`), e.g. "
        "`region:EMEA`; several: repeat, each must hold"
    ),
]


def dimension_filters(
    workflows: Workflows, values: list[str] | None
) -> tuple[dimensions.DimensionFilter, ...]:
    """The ``dimension`` parameter's filters; a 400 naming the one that is malformed or not declared."""
    known = dimensions.declared(workflows)
    found = []
    for value in values or ():
        try:
            wanted = dimensions.DimensionFilter.parse(value)
        except ValueError as exc:
            reason = str(exc)
        else:
            if wanted.dimension in known:
                found.append(wanted)
                continue
            reason = undeclared(wanted.dimension, known)
        raise bad_parameter("dimension", reason)
    return tuple(found)


def undeclared(dimension: str, known: list[str]) -> str:
    return f"{dimension!r} is not a dimension of any workflow (declared: {', '.join(known) or 'none'})"


def bad_parameter(name: str, reason: str) -> ApiError:
    return ApiError(400, "invalid_request", f"{name}: {reason}", [Problem(field=name, reason=reason)])


@router.get(TRANSACTION_PATH, response_model=TransactionDetail, responses={404: {}})
async def get_transaction(
    collector: CollectorDep, tenant: TenantDep, key: TransactionKey, as_of: AsOf = None
) -> TransactionDetail:
    """One transaction, by its correlation id or any alias, with its state, steps and events."""
    moment = as_of_or_now(as_of)
    workflows = collector.workflows
    model = await run_in_threadpool(collector.forecasts.model, tenant, as_of)
    found = await run_in_threadpool(transactions.find, collector.store, workflows, tenant, key, moment, model)
    if found is None:
        raise ApiError(
            404, "not_found", f"no transaction has the key {key!r}" + (" as of then" if as_of else "")
        )
    definition = workflows.get(found.summary.workflow)
    summary = found.summary.model_copy(
        update={"waiting_on": waiting_on_systems(found.summary.waiting_on, found.events)}
    )
    steps = step_views(definition, found.events, found.summary)
    # The declared actions for its failed or stuck steps (request retry), with their last answers.
    actions = await run_in_threadpool(
        retry_requests.available,
        collector.store,
        workflows,
        tenant,
        summary.correlation_id,
        summary.workflow,
        retry_requests.attention_steps(summary.state, steps, summary.waiting_on),
    )
    return TransactionDetail(
        **summary.model_dump(),
        as_of=moment,
        workflow_defined=definition is not None,
        aliases=found.aliases,
        alias_conflicts=found.alias_conflicts,
        steps=steps,
        events=found.events,
        actions=actions,
    )


@router.get("/transactions", response_model=TransactionPage, dependencies=[SNAPSHOT_CAUGHT_UP])
async def list_transactions(
    collector: CollectorDep,
    tenant: TenantDep,
    after: After,
    workflow: str = "",
    state: Annotated[
        list[str] | None,
        Query(description="completed, failed, stuck or in_progress; several: repeat or use commas"),
    ] = None,
    system: Annotated[
        str, Query(description="Transactions with events from, or waiting on, this system")
    ] = "",
    breached: Annotated[
        bool | None, Query(description="Only SLA-breached (true) or within SLA (false)")
    ] = None,
    violations: Annotated[bool, Query(description="Only transactions with governance violations")] = False,
    attention: Annotated[
        bool, Query(description="Only stuck, failed, breached, violating, mismatched or duplicated ones")
    ] = False,
    issue: Annotated[
        list[str] | None,
        Query(
            description="mismatch: values its systems disagree on (`reconcile:`); duplicate: shares its "
            "business key with another (`unique_by:`); several: each must hold"
        ),
    ] = None,
    predicted_breach: Annotated[
        bool, Query(description="Only open transactions whose forecast says they will breach their SLA")
    ] = False,
    dimension: DimensionQuery = None,
    sort: Annotated[
        transactions.QueueOrder,
        Query(
            description="activity: newest first, by pages; predicted_breach: soonest breach first, one page"
        ),
    ] = "activity",
    since: Since = None,
    until: Until = None,
    as_of: AsOf = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> TransactionPage:
    """The operations queue: transactions matching the filters, newest activity first."""
    check_range(since, until)
    moment = as_of_or_now(as_of)
    states = tuple(part.strip() for value in state or () for part in value.split(",") if part.strip())
    unknown = [value for value in states if value not in STATES]
    if unknown:
        raise bad_parameter("state", f"{unknown[0]!r} is not one of {', '.join(STATES)}")
    issues = {part.strip() for value in issue or () for part in value.split(",") if part.strip()}
    if unknown_issues := sorted(issues - set(ISSUES)):
        raise bad_parameter("issue", f"{unknown_issues[0]!r} is not one of {', '.join(ISSUES)}")
    filters = transactions.ListFilters(
        dimensions=dimension_filters(collector.workflows, dimension),
        workflow=workflow,
        states=states,
        system=system,
        breached=breached,
        with_violations=violations,
        attention=attention,
        with_mismatches="mismatch" in issues,
        with_duplicates="duplicate" in issues,
        since=since,
        until=until,
        predicted_breach=predicted_breach,
        order=sort,
    )
    model = await run_in_threadpool(collector.forecasts.model, tenant, as_of)
    items, total, next_cursor = await run_in_threadpool(
        transactions.page, collector.store, collector.workflows, tenant, filters, moment, limit, after, model
    )
    return TransactionPage(as_of=moment, total=total, items=items, next_cursor=next_cursor)


@router.get("/overview", response_model=Overview, dependencies=[SNAPSHOT_CAUGHT_UP])
async def get_overview(
    collector: CollectorDep,
    tenant: TenantDep,
    workflow: str = "",
    since: Since = None,
    until: Until = None,
    as_of: AsOf = None,
    dimension: DimensionQuery = None,
    group_by: Annotated[
        str | None, Query(description="A dimension of the workflows' `dimensions:`: the figures per value")
    ] = None,
) -> Overview:
    """Volumes, completion, cycle time, SLA attainment, value at risk, trend and bottlenecks."""
    check_range(since, until)
    filters = dimension_filters(collector.workflows, dimension)
    if group_by is not None and group_by not in (known := dimensions.declared(collector.workflows)):
        raise bad_parameter("group_by", undeclared(group_by, known))
    return await run_in_threadpool(
        overview_module.overview,
        collector.store,
        collector.workflows,
        tenant,
        workflow,
        since,
        until,
        as_of_or_now(as_of),
        filters,
        group_by,
    )


@router.get("/dimensions", response_model=list[DimensionValues])
async def list_dimensions(collector: CollectorDep, tenant: TenantDep) -> list[DimensionValues]:
    """The dimensions the workflows declare, each with its commonest values: what to filter by."""
    return await run_in_threadpool(dimensions.values, collector.store, collector.workflows, tenant)


@router.get("/retention", response_model=Retention)
async def get_retention(collector: CollectorDep, tenant: TenantDep) -> Retention:
    """How far back the tenant's data goes (THREADLINE_RETENTION_DAYS)."""
    policy = collector.retention
    now = dt.datetime.now(dt.UTC)
    return Retention(days=policy.days(tenant), kept_since=policy.kept_since(tenant, now))


@router.get("/workflows", response_model=list[WorkflowView])
async def list_workflows(collector: CollectorDep, tenant: TenantDep) -> list[WorkflowView]:
    """The workflow definitions in force, then the workflows seen in stored events but not defined."""
    return await run_in_threadpool(process_map.workflow_views, collector.store, collector.workflows, tenant)


@platform.post("/workflows/reload", response_model=list[WorkflowView], responses={400: {}})
async def reload_workflows(collector: CollectorDep, tenant: TenantDep) -> list[WorkflowView]:
    """Read the definitions file again (as SIGHUP does); on an error the current ones stay."""
    try:
        workflows = await run_in_threadpool(collector.reload_workflows)
    except WorkflowError as error:
        problem = Problem(field="workflows", reason=str(error))
        raise ApiError(400, "invalid_workflows", f"not reloaded: {error}", [problem]) from None
    return await run_in_threadpool(process_map.workflow_views, collector.store, workflows, tenant)


@router.get("/workflows/{name:path}/map", response_model=ProcessMap, responses={404: {}})
async def get_process_map(
    collector: CollectorDep,
    tenant: TenantDep,
    name: str,
    since: Since = None,
    until: Until = None,
    dimension: DimensionQuery = None,
) -> ProcessMap:
    """The process as it really runs: steps, directly-follows edges with timings, and variants."""
    check_range(since, until)
    filters = dimension_filters(collector.workflows, dimension)
    definition = collector.workflows.get(name)
    result = await run_in_threadpool(
        process_map.process_map, collector.store, tenant, name, definition, since, until, filters
    )
    # Not defined, and nothing in the range: a workflow seen only outside it still has a map.
    if (
        result.transactions == 0
        and definition is None
        and not await run_in_threadpool(process_map.seen_workflows, collector.store, tenant, name)
    ):
        raise ApiError(404, "not_found", f"no workflow named {name!r} is defined or has events")
    return result


@router.get("/systems", response_model=SystemsReport)
async def get_systems(
    collector: CollectorDep, tenant: TenantDep, since: Since = None, until: Until = None
) -> SystemsReport:
    """Per system: events, error rate, retries and latency percentiles, overall and over time."""
    check_range(since, until)
    return await run_in_threadpool(systems.report, collector.store, tenant, since, until)


@router.get("/systems/drift", response_model=SchemaDriftReport)
async def get_schema_drift(
    collector: CollectorDep, tenant: TenantDep, as_of: AsOf = None
) -> SchemaDriftReport:
    """Schema drift: per system and step, an attribute its events usually carried and no longer do,
    or a new one most of them now carry; when it started, the counts before and since, an example."""
    return await run_in_threadpool(drift.detect, collector.store, tenant, as_of_or_now(as_of))


@router.get("/traces/{trace_id}", response_model=TraceView, responses={404: {}})
async def get_trace(
    collector: CollectorDep,
    tenant: TenantDep,
    trace_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="32 lowercase hex digits")],
) -> TraceView:
    """The technical spans of a trace, and the business events linked to it."""
    result = await run_in_threadpool(traces.trace, collector.store, tenant, trace_id)
    if not result.spans and not result.events:
        raise ApiError(404, "not_found", f"no span or event of trace {trace_id} is stored")
    return result

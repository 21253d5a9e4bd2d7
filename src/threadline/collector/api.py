"""The query API: transactions, the operations queue, overview, process maps, systems, traces."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, get_args

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, AwareDatetime

from . import overview as overview_module
from . import process_map, systems, traces, transactions
from .admission import admit_read
from .auth import require
from .errors import ApiError
from .models import (
    Overview,
    ProcessMap,
    State,
    StepDefinitionView,
    SystemsReport,
    TraceView,
    TransactionDetail,
    TransactionPage,
    WorkflowView,
)
from .runtime import Collector, get_collector
from .schema import Problem, in_storable_range
from .timeline import step_views, waiting_on_systems
from .workflows import WorkflowError, Workflows

router = APIRouter(
    prefix="/api", tags=["query"], dependencies=[Depends(require("read")), Depends(admit_read)]
)
# The workflow definitions are one file every tenant shares: changing them is the platform's to do.
platform = APIRouter(prefix="/api", tags=["platform"], dependencies=[Depends(require("platform"))])
STATES = get_args(State)

CollectorDep = Annotated[Collector, Depends(get_collector)]
# A time the store can hold (1970 to 2261), with a zone.
Moment = Annotated[AwareDatetime, AfterValidator(in_storable_range)]
AsOf = Annotated[
    Moment | None,
    Query(description="Answer as of this time (RFC 3339 with zone): later events are ignored. Default: now."),
]
# Any stored key, percent-encoded by the client ("SO/2026/00042" as SO%2F2026%2F00042). The server
# decodes %2F before routing, so the key takes the rest of the path (`:path`); a route that goes on
# after it (`/resolve`) ends in a fixed word, and the key is everything before that last word.
TRANSACTION_PATH = "/transactions/{key:path}"
TransactionKey = Annotated[
    str, Path(description="Correlation id or any alias, percent-encoded", min_length=1, max_length=256)
]
Since = Annotated[Moment | None, Query(description="Only transactions started at or after this time")]
Until = Annotated[Moment | None, Query(description="Only transactions started at or before this time")]


def _as_of(value: dt.datetime | None) -> dt.datetime:
    return (value or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def _range(since: dt.datetime | None, until: dt.datetime | None) -> None:
    if since and until and since > until:
        raise ApiError(
            400, "invalid_request", "since is after until", [Problem(field="since", reason="is after until")]
        )


@router.get(TRANSACTION_PATH, response_model=TransactionDetail, responses={404: {}})
async def get_transaction(
    collector: CollectorDep, request: Request, key: TransactionKey, as_of: AsOf = None
) -> TransactionDetail:
    """One transaction, by its correlation id or any alias, with its state, steps and events."""
    moment = _as_of(as_of)
    tenant = collector.tenant_of(request)
    workflows = collector.workflows
    found = await run_in_threadpool(transactions.find, collector.store, workflows, tenant, key, moment)
    if found is None:
        raise ApiError(
            404, "not_found", f"no transaction has the key {key!r}" + (" as of then" if as_of else "")
        )
    definition = workflows.get(found.summary.workflow)
    summary = found.summary.model_copy(
        update={"waiting_on": waiting_on_systems(found.summary.waiting_on, found.events)}
    )
    return TransactionDetail(
        **summary.model_dump(),
        as_of=moment,
        workflow_defined=definition is not None,
        aliases=found.aliases,
        alias_conflicts=found.alias_conflicts,
        steps=step_views(definition, found.events, found.summary),
        events=found.events,
    )


@router.get("/transactions", response_model=TransactionPage)
async def list_transactions(
    collector: CollectorDep,
    request: Request,
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
    attention: Annotated[bool, Query(description="Only stuck, failed, breached or violating ones")] = False,
    since: Since = None,
    until: Until = None,
    as_of: AsOf = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> TransactionPage:
    """The operations queue: transactions matching the filters, newest activity first."""
    _range(since, until)
    moment = _as_of(as_of)
    states = tuple(part.strip() for value in state or () for part in value.split(",") if part.strip())
    unknown = [value for value in states if value not in STATES]
    if unknown:
        reason = f"{unknown[0]!r} is not one of {', '.join(STATES)}"
        raise ApiError(400, "invalid_request", f"state: {reason}", [Problem(field="state", reason=reason)])
    filters = transactions.ListFilters(
        workflow=workflow,
        states=states,
        system=system,
        breached=breached,
        with_violations=violations,
        attention=attention,
        since=since,
        until=until,
    )
    try:
        items, total, next_cursor = await run_in_threadpool(
            transactions.page,
            collector.store,
            collector.workflows,
            collector.tenant_of(request),
            filters,
            moment,
            limit,
            cursor,
        )
    except transactions.BadCursor as error:
        raise ApiError(
            400, "invalid_request", f"cursor {error}", [Problem(field="cursor", reason=str(error))]
        ) from None
    return TransactionPage(as_of=moment, total=total, items=items, next_cursor=next_cursor)


@router.get("/overview", response_model=Overview)
async def get_overview(
    collector: CollectorDep,
    request: Request,
    workflow: str = "",
    since: Since = None,
    until: Until = None,
    as_of: AsOf = None,
) -> Overview:
    """Volumes, completion, cycle time, SLA attainment, value at risk, trend and bottlenecks."""
    _range(since, until)
    return await run_in_threadpool(
        overview_module.overview,
        collector.store,
        collector.workflows,
        collector.tenant_of(request),
        workflow,
        since,
        until,
        _as_of(as_of),
    )


def _workflow_view(workflows: Workflows, seen: list[process_map.WorkflowSeen]) -> list[WorkflowView]:
    """The definitions in file order, then the workflows only seen in stored events, by name."""
    started = {workflow.name: workflow.last_started_at for workflow in seen}
    defined = [
        WorkflowView(
            name=definition.name,
            defined=True,
            last_started_at=started.get(definition.name),
            sla_seconds=definition.sla_s,
            stuck_after_seconds=definition.stuck_after_s,
            complete_on=list(definition.complete_on),
            fail_on=list(definition.fail_on),
            steps=[
                StepDefinitionView(
                    name=s.name, system=s.system, after=list(s.after), within_seconds=s.within_s
                )
                for s in definition.steps
            ],
        )
        for definition in workflows
    ]
    undefined = [
        WorkflowView(
            name=workflow.name,
            defined=False,
            last_started_at=workflow.last_started_at,
            sla_seconds=None,
            stuck_after_seconds=None,
            complete_on=[],
            fail_on=[],
            steps=[],
        )
        for workflow in seen
        if workflows.get(workflow.name) is None
    ]
    return defined + undefined


async def _listing(collector: Collector, request: Request, workflows: Workflows) -> list[WorkflowView]:
    seen = await run_in_threadpool(process_map.seen_workflows, collector.store, collector.tenant_of(request))
    return _workflow_view(workflows, seen)


@router.get("/workflows", response_model=list[WorkflowView])
async def list_workflows(collector: CollectorDep, request: Request) -> list[WorkflowView]:
    """The workflow definitions in force, then the workflows seen in stored events but not defined."""
    return await _listing(collector, request, collector.workflows)


@platform.post("/workflows/reload", response_model=list[WorkflowView], responses={400: {}})
async def reload_workflows(collector: CollectorDep, request: Request) -> list[WorkflowView]:
    """Read the definitions file again (as SIGHUP does); on an error the current ones stay."""
    try:
        workflows = await run_in_threadpool(collector.reload_workflows)
    except WorkflowError as error:
        problem = Problem(field="workflows", reason=str(error))
        raise ApiError(400, "invalid_workflows", f"not reloaded: {error}", [problem]) from None
    return await _listing(collector, request, workflows)


@router.get("/workflows/{name:path}/map", response_model=ProcessMap, responses={404: {}})
async def get_process_map(
    collector: CollectorDep, request: Request, name: str, since: Since = None, until: Until = None
) -> ProcessMap:
    """The process as it really runs: steps, directly-follows edges with timings, and variants."""
    _range(since, until)
    definition = collector.workflows.get(name)
    tenant = collector.tenant_of(request)
    result = await run_in_threadpool(
        process_map.process_map, collector.store, tenant, name, definition, since, until
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
    collector: CollectorDep, request: Request, since: Since = None, until: Until = None
) -> SystemsReport:
    """Per system: events, error rate, retries and latency percentiles, overall and over time."""
    _range(since, until)
    return await run_in_threadpool(
        systems.report, collector.store, collector.tenant_of(request), since, until
    )


@router.get("/traces/{trace_id}", response_model=TraceView, responses={404: {}})
async def get_trace(
    collector: CollectorDep,
    request: Request,
    trace_id: Annotated[str, Path(pattern="^[0-9a-f]{32}$", description="32 lowercase hex digits")],
) -> TraceView:
    """The technical spans of a trace, and the business events linked to it."""
    result = await run_in_threadpool(traces.trace, collector.store, collector.tenant_of(request), trace_id)
    if not result.spans and not result.events:
        raise ApiError(404, "not_found", f"no span or event of trace {trace_id} is stored")
    return result

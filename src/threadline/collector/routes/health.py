"""Liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..auth import require
from ..http_errors import json_response
from ..metrics import TenantMetrics
from .dependencies import CollectorDep, PrincipalDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The store answers", responses={503: {}})
async def readyz(collector: CollectorDep) -> Response:
    # Open to anyone, so it says ready or not and nothing of where the store is.
    if await run_in_threadpool(collector.store.ping):
        return json_response({"status": "ready"})
    return json_response({"status": "unavailable"}, 503, {"Retry-After": "5"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    dependencies=[Depends(require("platform", "admin"))],
)
async def metrics(collector: CollectorDep, principal: PrincipalDep) -> Response:
    """Everything for the platform; a tenant's admin sees its own tenant's series only."""
    registry = collector.metrics.registry
    visible = registry if principal.may("platform") else TenantMetrics(registry, principal.tenant)
    return Response(generate_latest(visible), media_type=CONTENT_TYPE_LATEST)

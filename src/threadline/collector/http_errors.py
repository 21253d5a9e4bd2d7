"""Every error the collector answers has one JSON shape and never a stack trace:

{"error": "invalid_events", "message": "...",
 "problems": [{"index": 3, "field": "timestamp", "reason": "..."}]}

except to an OTLP/HTTP protobuf request, which the OTLP specification answers in its own encoding:
a protobuf ``google.rpc.Status`` with the same message, the code in an ``ErrorInfo`` and the
problems as a ``BadRequest``'s field violations (from ``googleapis-common-protos``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from google.rpc import code_pb2, error_details_pb2, status_pb2
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .ingest.writer import Overloaded
from .schema import Problem
from .storage import CallerGone, ReadTimedOut, StoreUnavailable

logger = logging.getLogger("threadline.collector")

PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
OTLP_PATHS = frozenset({"/v1/traces", "/v1/logs"})
ERROR_DOMAIN = "threadline"
# The OTLP specification leaves google.rpc.Status.code to the server: the gRPC code of each status.
_RPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    401: code_pb2.UNAUTHENTICATED,
    403: code_pb2.PERMISSION_DENIED,
    404: code_pb2.NOT_FOUND,
    405: code_pb2.UNIMPLEMENTED,
    408: code_pb2.DEADLINE_EXCEEDED,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    429: code_pb2.RESOURCE_EXHAUSTED,
    503: code_pb2.UNAVAILABLE,
}


class ErrorBody(BaseModel):
    error: str
    message: str
    problems: list[Problem] = []


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: Sequence[Problem] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(error=code, message=message, problems=list(problems))
        self.headers = headers


def json_response(body: object, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _wants_protobuf(request: Request) -> bool:
    return request.url.path in OTLP_PATHS and media_type(request) in PROTOBUF_TYPES


def rpc_status(error: ApiError) -> status_pb2.Status:
    """The error as the ``google.rpc.Status`` OTLP/HTTP answers a protobuf request with."""
    status = status_pb2.Status(
        code=_RPC_CODES.get(error.status, code_pb2.INTERNAL), message=error.body.message
    )
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=error.body.error, domain=ERROR_DOMAIN))
    if error.body.problems:
        violations = [
            error_details_pb2.BadRequest.FieldViolation(
                field=problem.field if problem.index is None else f"events[{problem.index}].{problem.field}",
                description=problem.reason,
            )
            for problem in error.body.problems
        ]
        status.details.add().Pack(error_details_pb2.BadRequest(field_violations=violations))
    return status


def _answer(error: ApiError, request: Request) -> Response:
    if _wants_protobuf(request):
        return Response(
            rpc_status(error).SerializeToString(),
            status_code=error.status,
            headers=error.headers,
            media_type=media_type(request),
        )
    return json_response(error.body.model_dump(exclude_none=True), error.status, error.headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return _answer(error, request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        problems = []
        for item in error.errors():
            location = [
                str(part) for part in item.get("loc", ()) if part not in ("query", "path", "header", "body")
            ]
            problems.append(
                Problem(field=".".join(location) or "request", reason=str(item.get("msg", "is invalid")))
            )
        reasons = "; ".join(f"{problem.field}: {problem.reason}" for problem in problems)
        return _answer(ApiError(400, "invalid_request", reasons, problems), request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 408: "request_timeout"}.get(
            error.status_code, "http_error"
        )
        return _answer(ApiError(error.status_code, code, str(error.detail), headers=error.headers), request)

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, error: StoreUnavailable) -> Response:
        logger.warning("threadline: store unavailable: %s", error)
        message = "the store is unavailable; nothing of this request was stored, retry later"
        return _answer(ApiError(503, "store_unavailable", message, headers={"Retry-After": "5"}), request)

    @app.exception_handler(ReadTimedOut)
    async def read_timed_out(request: Request, error: ReadTimedOut) -> Response:
        logger.warning("threadline: %s on %s %s", error, request.method, request.url.path)
        message = (
            f"this query was stopped: {error} (THREADLINE_READ_TIMEOUT); "
            "ask for less (a shorter since/until range, one workflow) or retry later"
        )
        return _answer(ApiError(503, "query_timeout", message, headers={"Retry-After": "5"}), request)

    @app.exception_handler(CallerGone)
    async def caller_gone(request: Request, error: CallerGone) -> Response:
        # Nobody reads this answer; 499 is how nginx logs a request whose client closed it.
        logger.info("threadline: %s on %s %s; dropped", error, request.method, request.url.path)
        return _answer(ApiError(499, "client_closed_request", str(error)), request)

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, error: Overloaded) -> Response:
        message = f"the collector is busy ({error}); nothing of this request was stored, retry later"
        return _answer(ApiError(503, "overloaded", message, headers={"Retry-After": "1"}), request)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        logger.exception("threadline: unexpected error on %s %s", request.method, request.url.path)
        return _answer(
            ApiError(500, "internal", "internal error; the collector log has the details"), request
        )

"""Every error the collector answers has one JSON shape and never a stack trace:

{"error": "invalid_events", "message": "...",
 "problems": [{"index": 3, "field": "timestamp", "reason": "..."}]}
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from .schema import Problem
from .storage import StoreUnavailable
from .writer import Overloaded

logger = logging.getLogger("threadline.collector")


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
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorBody(error=code, message=message, problems=list(problems))
        self.headers = headers


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def _answer(error: ApiError) -> Response:
    return json_response(error.body.model_dump(exclude_none=True), error.status, error.headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        return _answer(error)

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
        return _answer(ApiError(400, "invalid_request", reasons, problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return _answer(ApiError(error.status_code, code, str(error.detail), headers=error.headers))

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(request: Request, error: StoreUnavailable) -> Response:
        logger.warning("threadline: store unavailable: %s", error)
        message = "the store is unavailable; nothing of this request was stored, retry later"
        return _answer(ApiError(503, "store_unavailable", message, headers={"Retry-After": "5"}))

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, error: Overloaded) -> Response:
        message = f"the collector is busy ({error}); nothing of this request was stored, retry later"
        return _answer(ApiError(503, "overloaded", message, headers={"Retry-After": "1"}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        logger.exception("threadline: unexpected error on %s %s", request.method, request.url.path)
        return _answer(ApiError(500, "internal", "internal error; the collector log has the details"))

"""How the reader fails: every error is a JSON body ``{"error": {"code", "message"}}``; bad
input is a 4xx that never echoes the input, a database problem a 503 whose body never
carries SQL or driver text (that goes to the log)."""

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}


class ApiError(StarletteHTTPException):
    def __init__(self, status_code: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(status_code, message, headers)
        self.code = code


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    return JSONResponse({"error": body}, status_code=status)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
    response = error_response(exc.status_code, code, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    # The problems without the offending input: never echo what the client sent.
    fields = [
        {"field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("path", "query", "header")),
         "problem": str(e.get("msg", "invalid"))}
        for e in exc.errors()
    ]  # fmt: skip
    return error_response(422, "invalid_request", "the request is invalid", fields=fields)


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("reader: database error on %s: %s: %s", request.url.path, type(exc).__name__, exc)
    return error_response(503, "database_unavailable", "the recommendation store is not reachable; retry later")


def install(app: FastAPI) -> None:
    """Route every error of ``app`` through the handlers above."""
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    for error_type in DB_ERRORS:
        app.add_exception_handler(error_type, database_error)

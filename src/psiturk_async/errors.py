"""Errors with one JSON shape, {"error": code, "detail": text}, and their handlers."""

from __future__ import annotations

import html
import logging
import sqlite3
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .experiment_errors import ExperimentError

logger = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    """The body of every JSON error response."""

    error: str
    detail: str


class ApiError(Exception):
    """An error for a JSON client: a 4xx status, a short code and a sentence for a person."""

    def __init__(self, status_code: int, error: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.extra = extra

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "detail": self.detail, **self.extra},
                            status_code=self.status_code)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the JSON error shape for these status codes."""
    return {code: {"model": ErrorBody} for code in codes}


HTTP_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
                    429: "too_many_requests"}


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "error")
    return JSONResponse({"error": code, "detail": str(exc.detail)}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return JSONResponse({"error": "invalid_request", "detail": "; ".join(problems)}, status_code=422)


def experiment_error_page(exc: ExperimentError, *, templates: Any, settings: Any, path: str) -> HTMLResponse:
    """The project's error.html with psiTurk's number; a plain page if that template itself fails.

    Synchronous: the legacy layer's Flask routes answer with the same page from their threads."""
    logger.info("experiment error %s (%d) on %s", exc.name, exc.kind.code, path)
    context = {"errornum": exc.kind.code, "errordesc": exc.kind.description,
               "contact_address": settings.contact_email_on_error, **exc.context}
    try:
        return templates.render("error.html", status_code=exc.http_status, **context)
    except Exception:
        logger.exception("error.html could not be rendered")
        body = (f"<!doctype html><title>Error</title><p><b>Error</b>: {exc.kind.code}</p>"
                f"<p>{html.escape(exc.kind.description)}</p>")
        return HTMLResponse(body, status_code=exc.http_status)


async def _experiment_error(request: Request, exc: Exception) -> HTMLResponse:
    assert isinstance(exc, ExperimentError)
    return experiment_error_page(exc, templates=request.app.state.templates, settings=request.app.state.settings,
                                 path=request.url.path)


# What "the database cannot be reached" looks like: SQLAlchemy's wrapping, and the drivers' own errors where the
# participant store speaks to them directly (a refused or dropped connection, a pool that gives none in time).
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError, InterfaceError, DBAPIError, ConnectionError, TimeoutError, sqlite3.OperationalError,
    asyncpg.PostgresConnectionError, asyncpg.InterfaceError)


def database_down_response(exc: Exception) -> JSONResponse:
    # The driver's message can name hosts and users: it goes to the log, not to the client.
    logger.error("database unavailable: %s", type(exc).__name__)
    return JSONResponse({"error": "database_unavailable", "detail": "the database cannot be reached; "
                         "try again shortly"}, status_code=503, headers={"Retry-After": "5"})


async def _database_down(_request: Request, exc: Exception) -> JSONResponse:
    return database_down_response(exc)


def install_error_handlers(app: FastAPI) -> None:
    for error in DATABASE_ERRORS:
        app.add_exception_handler(error, _database_down)
    app.add_exception_handler(ExperimentError, _experiment_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)

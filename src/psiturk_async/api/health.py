"""Liveness and readiness: is the database reachable?"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from .. import __version__
from ..deps import EngineDep

logger = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    database: str


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
async def read_health(engine: EngineDep) -> Health | JSONResponse:
    """200 when the database answers, 503 when it does not."""
    kind = engine.dialect.name
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"; the reason goes to the log only
        logger.warning("health check: database unreachable: %s", type(exc).__name__)
        body = Health(status="database unreachable", version=__version__, database=kind)
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", version=__version__, database=kind)

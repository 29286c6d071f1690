"""What a project's custom.py may import: the small, stable surface for custom routes.

    from psiturk_async.custom import APIRouter, DbSession, ExperimentError, Participant, render_template

    custom_code = APIRouter()

    @custom_code.get("/compute_bonus")
    async def compute_bonus(session: DbSession, uniqueId: str | None = None): ...
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from .deps import SessionDep as DbSession
from .deps import SettingsDep
from .experiment_errors import ExperimentError
from .models import Participant, Status


def render_template(request: Request, name: str, **context: Any) -> HTMLResponse:
    """Render one of the project's templates/ pages."""
    return request.app.state.templates.render(name, **context)


__all__ = ["APIRouter", "DbSession", "ExperimentError", "Participant", "SettingsDep", "Status", "render_template"]

"""The admin API under /api: server status, MTurk mode, settings, participants and data export.

Every route needs the admin token (see auth.py). Reads are GET; the only write here, the mode, is PATCH.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import StreamingResponse

from .. import export, reports
from ..auth import admin_router
from ..deps import EngineDep, SessionDep, SettingsDep
from ..errors import ApiError, error_responses
from ..links import ad_url, debug_link
from ..mode import read_mode, set_mode
from ..schemas import (
    EXPORT_MEDIA_TYPES,
    ConfigPublic,
    DebugLink,
    ExportKind,
    ExportQuery,
    ModeChange,
    ModePublic,
    ModeUpdate,
    ParticipantCounts,
    ParticipantDetail,
    ParticipantFilter,
    ParticipantPage,
    ParticipantQuery,
    ServerStatus,
)

router = admin_router()


@router.get("/status", tags=["server"], response_model=ServerStatus)
async def read_status(request: Request, session: SessionDep, settings: SettingsDep) -> ServerStatus:
    """Version, MTurk mode, code version, database kind, participant counts and uptime."""
    return await reports.server_status(session, settings=settings, started_at=request.app.state.started_at)


@router.get("/mode", tags=["server"], response_model=ModePublic)
async def read_mode_setting(session: SessionDep, settings: SettingsDep) -> ModePublic:
    """The MTurk mode every server process uses: launch_in_mode until someone sets it."""
    return ModePublic(mode=await read_mode(session, default=settings.launch_in_mode))


@router.patch("/mode", tags=["server"], response_model=ModeChange, responses=error_responses(422))
async def update_mode(update: ModeUpdate, session: SessionDep, settings: SettingsDep) -> ModeChange:
    """Set the MTurk mode for every server process; answers the mode it replaced too."""
    previous = await set_mode(session, update.mode, default=settings.launch_in_mode)
    return ModeChange(mode=update.mode, previous=previous)


@router.get("/config", tags=["server"], response_model=ConfigPublic)
async def read_config(settings: SettingsDep) -> ConfigPublic:
    """The settings in effect, each with where it came from; secrets are hidden."""
    return reports.config_entries(settings)


@router.get("/debug-link", tags=["server"], response_model=DebugLink)
async def read_debug_link(request: Request, settings: SettingsDep) -> DebugLink:
    """A fresh debug link to the ad: on the public ad URL when configured, else on the address asked."""
    configured = ad_url(settings)
    if configured is not None:
        return DebugLink(url=debug_link(configured), source="ad_url")
    return DebugLink(url=debug_link(str(request.base_url) + "ad"), source="server")


@router.get("/participants", tags=["participants"], response_model=ParticipantPage,
            responses=error_responses(422))
async def list_participants(query: Annotated[ParticipantQuery, Query()], session: SessionDep) -> ParticipantPage:
    """Participants matching the filters, a page at a time in uniqueid order, without their data."""
    return await reports.list_participants(session, query)


@router.get("/participants/counts", tags=["participants"], response_model=ParticipantCounts,
            responses=error_responses(422))
async def count_participants(where: Annotated[ParticipantFilter, Query()],
                             session: SessionDep) -> ParticipantCounts:
    """How many participants match, by condition × counterbalance and by status."""
    return await reports.count_participants(session, where)


@router.get("/participants/{uniqueid}", tags=["participants"], response_model=ParticipantDetail,
            responses=error_responses(404, 422))
async def read_participant(uniqueid: Annotated[str, Path(description="workerId:assignmentId")],
                           session: SessionDep) -> ParticipantDetail:
    """One participant with its stored data parsed."""
    participant = await reports.read_participant(session, uniqueid)
    if participant is None:
        raise ApiError(404, "not_found", f"no participant {uniqueid!r}")
    return participant


@router.get(
    "/export/{kind}",
    tags=["export"],
    response_class=StreamingResponse,
    responses={
        200: {"description": "The file, streamed. csv: psiTurk's layout (no header, CRLF); json: one array of "
                             "records; jsonl: one record a line.",
              "content": {media_type.split(";")[0]: {} for media_type in EXPORT_MEDIA_TYPES.values()}},
        **error_responses(422),
    },
)
async def export_data(kind: ExportKind, query: Annotated[ExportQuery, Query()],
                      engine: EngineDep) -> StreamingResponse:
    """trialdata, eventdata or questiondata of the matching participants (all by default), as a file.

    Participants whose datastring cannot be read are skipped and named in the server log.
    """
    chunks = export.stream(engine, kind=kind, fmt=query.format, where=reports.participant_conditions(query))
    return StreamingResponse(chunks, media_type=EXPORT_MEDIA_TYPES[query.format],
                             headers={"Content-Disposition": f'attachment; filename="{kind}.{query.format}"'})

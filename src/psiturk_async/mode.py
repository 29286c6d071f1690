"""The MTurk mode (sandbox or live), kept in the database so every server process agrees on it."""

from __future__ import annotations

from typing import get_args

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from .db import begin_write
from .models import AppState
from .schemas import Mode

MODE_KEY = "mode"
MODES: tuple[str, ...] = get_args(Mode)


async def read_mode(session: AsyncSession, *, default: Mode) -> Mode:
    """The stored mode, or `default` (the launch_in_mode setting) until someone sets one."""
    value = await session.scalar(select(AppState.value).where(AppState.key == MODE_KEY))
    return value if value in MODES else default  # type: ignore[return-value]


async def set_mode(session: AsyncSession, mode: Mode, *, default: Mode) -> Mode:
    """Store `mode` for every process; returns the mode it replaces."""
    await begin_write(session, lock="psiturk_async.mode")
    row = await session.get(AppState, MODE_KEY)
    previous = row.value if row is not None and row.value in MODES else default
    if row is None:
        session.add(AppState(key=MODE_KEY, value=mode))
    else:
        row.value = mode
    await session.commit()
    return previous  # type: ignore[return-value]

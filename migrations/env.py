"""Alembic environment: runs on the configured database through the async driver."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from psiturk_async.db import advisory_key, create_engine
from psiturk_async.migrate import VERSION_TABLE
from psiturk_async.settings import load_settings

settings = context.config.attributes.get("settings") or load_settings(".")


def run_migrations(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several hosts may start at once; one migrates while the others wait, then find nothing to do.
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": advisory_key("migrations")})
    try:
        context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations(settings=settings)
    finally:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_key("migrations")})
            connection.commit()


async def run_async() -> None:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


asyncio.run(run_async())

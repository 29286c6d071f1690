"""`psiturk.db` and `psiturk.models`: psiTurk's synchronous session and models, on the server's own database.

A psiTurk 3 custom.py works with `Participant.query.filter(...)`, changes attributes and calls
`db_session.commit()`. Those calls run in the WSGI adapter's threads, so they get a synchronous engine of
their own (the standard library's sqlite3, or psycopg2) on the same database and the same rows as the async
app: a `bonus` a legacy route stores is the bonus `worker bonus --auto` pays.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Column, DateTime, Float, Integer, String, Text, create_engine, inspect
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import declarative_base, deferred, scoped_session, sessionmaker

from ..export import ExportReport, csv_text, participant_rows
from ..models import Status, utcnow
from ..settings import Settings

SQLITE_BUSY_TIMEOUT_SECONDS = 30
POOL_SIZE = 5
POOL_OVERFLOW = 5


def sync_database_url(settings: Settings) -> URL:
    """The configured database for a synchronous driver: sqlite3, or psycopg2 for PostgreSQL."""
    url = make_url(settings.async_database_url)
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite")
    return url.set(drivername="postgresql+psycopg2")


def create_sync_engine(settings: Settings) -> Engine:
    """An engine for the legacy routes; it connects on first use, so loading custom.py opens nothing."""
    url = sync_database_url(settings)
    if url.get_backend_name() == "sqlite":
        # The busy timeout makes a legacy write wait its turn behind the async app's writes. sqlite3 begins a
        # transaction only before the first write, so a read-then-write route never has to upgrade a lock.
        return create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    return create_engine(url, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, pool_timeout=60,
                         pool_pre_ping=True, pool_recycle=3600)


def object_as_dict(self: Any, filter_these: list[str] | None = None) -> dict[str, Any]:
    """psiTurk's helper on every model: the column values, less the names in `filter_these`."""
    skipped = set(filter_these or ())
    return {column.key: getattr(self, column.key) for column in inspect(self).mapper.column_attrs
            if column.key not in skipped}


def _csv(kind: str, uniqueid: str, datastring: str | None) -> str:
    rows = participant_rows(kind, uniqueid, datastring, ExportReport(kind, "csv"))  # type: ignore[arg-type]
    return csv_text(kind, rows) if rows else ""  # type: ignore[arg-type]


class LegacyDatabase:
    """What `psiturk.db` and `psiturk.models` provide, bound to one server's settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_sync_engine(settings)
        self.session = scoped_session(sessionmaker(bind=self.engine, autoflush=False))
        self.Base: Any = declarative_base()
        self.Base.query = self.session.query_property()
        self.Base.object_as_dict = object_as_dict
        self.Participant, self.Hit, self.Campaign = declare_models(self.Base, settings)
        self.own_tables = {settings.table_name, settings.hits_table_name, settings.campaigns_table_name}

    def init_db(self) -> None:
        """psiTurk's `init_db()`: create the tables custom.py declared on `Base`.

        psiTurk's own three tables are left to the migrations (`serve` runs them), so they keep the indexes
        and shape psiturk-async gives them.
        """
        tables = [table for table in self.Base.metadata.sorted_tables if table.name not in self.own_tables]
        self.Base.metadata.create_all(bind=self.engine, tables=tables)

    def remove_session(self, _exc: BaseException | None = None) -> None:
        """End the thread's session after each request, as psiTurk did."""
        self.session.remove()

    def close(self) -> None:
        self.session.remove()
        self.engine.dispose()


def declare_models(base: Any, settings: Settings) -> tuple[Any, Any, Any]:
    """psiTurk's Participant, Hit and Campaign, on the configured table names."""

    class Participant(base):  # type: ignore[misc,valid-type]
        """One row per worker and assignment, with psiTurk's constructor and CSV helpers."""

        __tablename__ = settings.table_name

        uniqueid = Column(String(128), primary_key=True)
        assignmentid = Column(String(128), nullable=False)
        workerid = Column(String(128), nullable=False)
        hitid = Column(String(128), nullable=False)
        ipaddress = Column(String(128))
        browser = Column(String(128))
        platform = Column(String(128))
        language = Column(String(128))
        cond = Column(Integer)
        counterbalance = Column(Integer)
        codeversion = Column(String(128))
        beginhit = Column(DateTime)
        beginexp = Column(DateTime)
        endhit = Column(DateTime)
        bonus = Column(Float, default=0)
        status = Column(Integer, default=int(Status.ALLOCATED))
        mode = Column(String(128))
        datastring = deferred(Column(Text))

        def __init__(self, **kwargs: Any) -> None:
            self.uniqueid = "{workerid}:{assignmentid}".format(**kwargs)
            self.status = int(Status.ALLOCATED)
            self.codeversion = settings.experiment_code_version
            # Naive UTC, as the rest of psiturk-async stores it.
            self.beginhit = utcnow()
            for key, value in kwargs.items():
                setattr(self, key, value)

        def __repr__(self) -> str:
            return (f"Subject(uniqueid|{self.uniqueid}, condition|{self.cond}, status|{self.status}, "
                    f"codeversion|{self.codeversion})")

        def get_trial_data(self) -> str:
            return _csv("trialdata", self.uniqueid, self.datastring)

        def get_event_data(self) -> str:
            return _csv("eventdata", self.uniqueid, self.datastring)

        def get_question_data(self) -> str:
            return _csv("questiondata", self.uniqueid, self.datastring)

    class Hit(base):  # type: ignore[misc,valid-type]
        __tablename__ = settings.hits_table_name

        hitid = Column(String(128), primary_key=True)

    class Campaign(base):  # type: ignore[misc,valid-type]
        __tablename__ = settings.campaigns_table_name

        id = Column(Integer, primary_key=True)
        codeversion = Column(String(128), nullable=False)
        mode = Column(String(128), nullable=False)
        goal = Column(Integer, nullable=False)
        minutes_between_rounds = Column(Integer, nullable=False)
        assignments_per_round = Column(Integer, nullable=False)
        hit_reward = Column(Float, nullable=False)
        hit_duration_hours = Column(Float, nullable=False)
        is_active = Column(Boolean, default=True)
        created = Column(DateTime, default=utcnow)
        ended = Column(DateTime)

    return Participant, Hit, Campaign


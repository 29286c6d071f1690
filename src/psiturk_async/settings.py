"""The one Settings object, layered from defaults, ~/.psiturkconfig, config.txt, .env and the environment.

Every key psiTurk 3.3.1 knew keeps its name, section and default; the keys psiturk-async adds sit in the
section a psiTurk user would look in. The layers are read by `load_settings`, lowest to highest:

    built-in defaults < cloud defaults (ON_CLOUD truthy) < ~/.psiturkconfig < config.txt < .env < environment

The merged strings are validated by a pydantic-settings model, so a bad value stops start-up with one line
naming where it came from.
"""

from __future__ import annotations

import configparser
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Key:
    section: str
    name: str
    default: str
    help: str
    secret: bool = False


AWS = "AWS Access"
HIT = "HIT Configuration"
DB = "Database Parameters"
SERVER = "Server Parameters"
TASK = "Task Parameters"
SHELL = "Shell Parameters"

KEYS: tuple[Key, ...] = (
    Key(AWS, "aws_access_key_id", "", "MTurk credentials; empty means boto's usual chain", secret=True),
    Key(AWS, "aws_secret_access_key", "", "MTurk credentials; empty means boto's usual chain", secret=True),
    Key(AWS, "aws_region", "us-east-1", "kept for psiTurk configs; MTurk only exists in us-east-1"),
    Key(AWS, "mturk_endpoint_url", "", "overrides the MTurk endpoint (tests, proxies); empty = AWS's"),
    Key(HIT, "title", "", "HIT title shown to workers"),
    Key(HIT, "description", "", "HIT description shown to workers"),
    Key(HIT, "keywords", "", "comma-separated search keywords"),
    Key(HIT, "lifetime", "24", "hours the HIT stays listed"),
    Key(HIT, "us_only", "true", "only workers in the US"),
    Key(HIT, "approve_requirement", "95", "minimum percentage of approved HITs"),
    Key(HIT, "number_hits_approved", "0", "minimum number of approved HITs"),
    Key(HIT, "require_master_workers", "false", "only MTurk Masters (costs 5% more)"),
    Key(HIT, "require_quals", "", "deprecated: qualification ids required in both modes"),
    Key(HIT, "require_quals_live", "", "comma-separated qualification ids workers must have (live)"),
    Key(HIT, "require_quals_sandbox", "", "comma-separated qualification ids workers must have (sandbox)"),
    Key(HIT, "block_quals", "", "deprecated: qualification ids blocked in both modes"),
    Key(HIT, "block_quals_live", "", "comma-separated qualification ids that block a worker (live)"),
    Key(HIT, "block_quals_sandbox", "", "comma-separated qualification ids that block a worker (sandbox)"),
    Key(HIT, "advanced_quals_path", "", "deprecated: JSON file of extra qualifications, both modes"),
    Key(HIT, "advanced_quals_path_live", "", "JSON list of extra QualificationRequirements (live)"),
    Key(HIT, "advanced_quals_path_sandbox", "", "JSON list of extra QualificationRequirements (sandbox)"),
    Key(HIT, "ad_url", "", "full public ad URL; when set, the ad_url_* keys are not used"),
    Key(HIT, "ad_url_domain", "", "public host name of this server, for the ad URL"),
    Key(HIT, "ad_url_port", "443", "public port, for the ad URL"),
    Key(HIT, "ad_url_protocol", "https", "public protocol, for the ad URL"),
    Key(HIT, "ad_url_route", "pub", "ad route, pub or ad"),
    Key(HIT, "max_spend", "", "refuse HITs and bonuses that take recorded spending (with fees) past this, USD"),
    Key(DB, "database_url", "sqlite:///participants.db", "SQLite file or PostgreSQL URL"),
    Key(DB, "assignments_table_name", "", "preferred name of the participants table (copied to table_name)"),
    Key(DB, "table_name", "assignments", "participants table"),
    Key(DB, "hits_table_name", "amt_hit", "table of HITs created by this study"),
    Key(DB, "campaigns_table_name", "campaign", "recruitment campaigns table"),
    Key(DB, "jobs_table_name", "apscheduler_jobs", "kept for psiTurk databases; unused"),
    Key(SERVER, "host", "localhost", "address to listen on"),
    Key(SERVER, "port", "22362", "port to listen on"),
    Key(SERVER, "accesslog", "/dev/null", "one line per request: - for the console, a file, /dev/null for none"),
    Key(SERVER, "errorlog", "", "preferred over logfile when set"),
    Key(SERVER, "logfile", "server.log", "server log file in the project folder; - for the console"),
    Key(SERVER, "loglevel", "2", "0 debug, 1 info, 2 warning, 3 error, 4 critical"),
    Key(SERVER, "enable_dashboard", "false", "kept for psiTurk configs; the admin API is always on"),
    Key(SERVER, "do_scheduler", "false", "kept for psiTurk configs; unused"),
    Key(SERVER, "login_username", "", "HTTP Basic user for legacy custom.py routes"),
    Key(SERVER, "login_pw", "", "HTTP Basic password for legacy custom.py routes", secret=True),
    Key(SERVER, "threads", "auto", "server processes; auto = 1 on SQLite, the number of CPUs on PostgreSQL"),
    Key(SERVER, "secret_key", "", "signing key for legacy custom.py sessions", secret=True),
    Key(SERVER, "certfile", "", "TLS certificate; with keyfile, serve HTTPS directly"),
    Key(SERVER, "keyfile", "", "TLS private key"),
    Key(SERVER, "server_timeout", "30", "seconds a request may take"),
    Key(SERVER, "admin_token", "", "bearer token of the admin API; empty = generated in .psiturk/", secret=True),
    Key(SERVER, "trusted_proxies", "", "comma-separated proxy addresses whose X-Forwarded-For is believed"),
    Key(SERVER, "max_sync_bytes", "10485760", "largest accepted participant save, in bytes"),
    Key(TASK, "experiment_code_version", "0.0.1", "stored on each participant; partitions counterbalancing"),
    Key(TASK, "num_conds", "1", "number of conditions"),
    Key(TASK, "num_counters", "1", "number of counterbalance levels"),
    Key(TASK, "contact_email_on_error", "youremail@gmail.com", "shown on error pages"),
    Key(TASK, "browser_exclude_rule", "MSIE, mobile, tablet", "comma-separated browsers refused on the ad"),
    Key(TASK, "allow_repeats", "false", "let a worker take part in more than one assignment"),
    Key(TASK, "cutoff_time", "30", "minutes an unfinished participant still counts for counterbalancing"),
    Key(SHELL, "launch_in_mode", "sandbox", "MTurk mode at first start: sandbox or live"),
    Key(SHELL, "persistent_history_file", ".psiturk_history", "kept for psiTurk configs; unused"),
    Key(SHELL, "bonus_message", "", "default reason for worker bonus"),
)
KEYS_BY_NAME = {key.name: key for key in KEYS}

CLOUD_DEFAULTS = {"host": "0.0.0.0", "errorlog": "-", "accesslog": "-", "logfile": "-", "threads": "1"}
# psiTurk copies a preferred key over its legacy names (spec §2.1 step 7).
LEGACY_COPIES = {
    "errorlog": ("logfile",),
    "require_quals": ("require_quals_live", "require_quals_sandbox"),
    "block_quals": ("block_quals_live", "block_quals_sandbox"),
    "advanced_quals_path": ("advanced_quals_path_live", "advanced_quals_path_sandbox"),
    "assignments_table_name": ("table_name",),
}
# Bare environment names psiTurk honoured for these keys; the PSITURK_ form wins over them.
BARE_ENV = {"port": "PORT", "database_url": "DATABASE_URL",
            "aws_access_key_id": "AWS_ACCESS_KEY_ID", "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY"}
TRUTHY = {"1", "true", "yes", "on"}

Count = Annotated[int, Field(gt=0)]


class SettingsError(Exception):
    """A setting could not be read; the message is one line for the person starting the server."""


class Settings(BaseSettings):
    """Every psiTurk key plus psiturk-async's own, validated. Build it with `load_settings`."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    project_dir: Path = Path(".")

    aws_access_key_id: str = ""
    aws_secret_access_key: str = ""
    aws_region: str = "us-east-1"
    mturk_endpoint_url: str = ""

    title: str = ""
    description: str = ""
    keywords: str = ""
    lifetime: Annotated[float, Field(gt=0)] = 24
    us_only: bool = True
    approve_requirement: Annotated[int, Field(ge=0, le=100)] = 95
    number_hits_approved: Annotated[int, Field(ge=0)] = 0
    require_master_workers: bool = False
    require_quals_live: str = ""
    require_quals_sandbox: str = ""
    block_quals_live: str = ""
    block_quals_sandbox: str = ""
    advanced_quals_path_live: str = ""
    advanced_quals_path_sandbox: str = ""
    ad_url: str = ""
    ad_url_domain: str = ""
    ad_url_port: Annotated[int, Field(gt=0, lt=65536)] = 443
    ad_url_protocol: Literal["http", "https"] = "https"
    ad_url_route: str = "pub"
    max_spend: Annotated[float, Field(ge=0)] | None = None

    database_url: str = "sqlite:///participants.db"
    table_name: str = "assignments"
    hits_table_name: str = "amt_hit"
    campaigns_table_name: str = "campaign"
    jobs_table_name: str = "apscheduler_jobs"

    host: str = "localhost"
    port: Annotated[int, Field(ge=0, lt=65536)] = 22362
    accesslog: str = "/dev/null"
    logfile: str = "server.log"
    loglevel: Annotated[int, Field(ge=0, le=4)] = 2
    enable_dashboard: bool = False
    do_scheduler: bool = False
    login_username: str = ""
    login_pw: str = ""
    threads: int | Literal["auto"] = "auto"
    secret_key: str = ""
    certfile: str = ""
    keyfile: str = ""
    server_timeout: Annotated[int, Field(gt=0)] = 30
    admin_token: str = ""
    trusted_proxies: str = ""
    max_sync_bytes: Count = 10 * 1024 * 1024

    experiment_code_version: str = "0.0.1"
    num_conds: Count = 1
    num_counters: Count = 1
    contact_email_on_error: str = "youremail@gmail.com"
    browser_exclude_rule: str = "MSIE, mobile, tablet"
    allow_repeats: bool = False
    cutoff_time: Annotated[float, Field(ge=0)] = 30

    launch_in_mode: Literal["sandbox", "live"] = "sandbox"
    persistent_history_file: str = ".psiturk_history"
    bonus_message: str = ""

    # Where each value came from ("default", a file path, or an environment variable name).
    sources: dict[str, str] = Field(default_factory=dict, exclude=True)

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "auto":
            return "auto"
        if isinstance(value, str) and not value.strip().isdigit():
            raise ValueError("must be 'auto' or a whole number")
        return value

    @field_validator("threads")
    @classmethod
    def _threads_positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator("max_spend", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].lower()
        if scheme.startswith("mysql") or scheme.startswith("mariadb"):
            raise ValueError("MySQL is not supported; use PostgreSQL (postgresql://...) or SQLite")
        if not (scheme.startswith("sqlite") or scheme.startswith("postgres")):
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @property
    def worker_count(self) -> int:
        """`threads`; auto is one process on SQLite and one per CPU on PostgreSQL.

        Measured (benchmarks/README.md), a second process on one SQLite file costs more than it brings: the
        processes take turns on the database's single write lock, and each write by one empties the other's
        page cache."""
        if self.threads != "auto":
            return int(self.threads)
        return 1 if self.async_database_url.startswith("sqlite") else (os.cpu_count() or 1)

    @property
    def async_database_url(self) -> str:
        """The database URL in the form SQLAlchemy's async drivers take, relative SQLite paths resolved."""
        return async_database_url(self.database_url, self.project_dir)

    @property
    def uses_tls(self) -> bool:
        return bool(self.certfile and self.keyfile)

    def trusted_proxy_set(self) -> frozenset[str]:
        return frozenset(split_list(self.trusted_proxies))

    def redacted(self) -> dict[str, Any]:
        """Every known key with its value, secrets and database passwords hidden."""
        shown: dict[str, Any] = {}
        for key in KEYS:
            if not hasattr(self, key.name):
                continue
            value = getattr(self, key.name)
            if key.secret and value:
                value = "********"
            elif key.name == "database_url":
                value = redact_url(value)
            shown[key.name] = value
        return shown


def split_list(value: str) -> list[str]:
    """A comma-separated setting as a list, trimmed, empty pieces dropped (psiTurk kept them: a bug)."""
    return [piece.strip() for piece in value.split(",") if piece.strip()]


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":********@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def async_database_url(url: str, project_dir: Path) -> str:
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme in {"postgres", "postgresql", "postgresql+psycopg2", "postgresql+asyncpg"}:
        return f"postgresql+asyncpg://{rest}"
    if scheme.startswith("sqlite"):
        path = rest[1:] if rest.startswith("/") else rest
        if path in {"", ":memory:"}:
            return "sqlite+aiosqlite://"
        if not Path(path).is_absolute():
            path = str((project_dir / path).resolve())
        return f"sqlite+aiosqlite:///{path}"
    return url


def read_ini(path: Path) -> dict[str, tuple[str, str]]:
    """Keys of an INI file as {key: (value, section)}; a missing file is empty, as in psiTurk."""
    if not path.is_file():
        return {}
    # Interpolation off: psiTurk read titles raw, and a % in a password must not break start-up.
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise SettingsError(f"{path}: cannot be read as an INI file: {exc}".splitlines()[0]) from exc
    found: dict[str, tuple[str, str]] = {}
    for section in parser.sections():
        for name, value in parser.items(section):
            if name not in KEYS_BY_NAME:
                logger.warning("%s: unknown key [%s] %s is ignored", path, section, name)
                continue
            found[name] = (value.strip(), section)
    return found


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=value lines of a .env file (comments, `export` and quotes allowed)."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def global_config_path(environ: Mapping[str, str]) -> Path:
    folder = environ.get("PSITURK_GLOBAL_CONFIG_LOCATION")
    return Path(folder) / ".psiturkconfig" if folder else Path.home() / ".psiturkconfig"


def _env_layer(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Values from an environment: every key as PSITURK_<KEY>, a few also bare; empty values ignored."""
    found: dict[str, tuple[str, str]] = {}
    for key in KEYS:
        for variable in (BARE_ENV.get(key.name), f"PSITURK_{key.name.upper()}"):
            if variable and environ.get(variable):
                found[key.name] = (environ[variable], variable)
    return found


def load_settings(project_dir: Path | str = ".", environ: Mapping[str, str] | None = None) -> Settings:
    """Read every layer for the project in `project_dir` and validate the result."""
    project_dir = Path(project_dir).resolve()
    environ = os.environ if environ is None else environ
    dotenv = read_dotenv(project_dir / ".env")
    # .env fills in what the environment lacks, never overrides it (psiTurk's load_dotenv rule).
    merged_env = {**dotenv, **environ}

    values: dict[str, str] = {key.name: key.default for key in KEYS}
    sources: dict[str, str] = {key.name: "default" for key in KEYS}
    sections: dict[str, str] = {key.name: key.section for key in KEYS}

    def apply(layer: Mapping[str, tuple[str, str]]) -> None:
        for name, (value, source) in layer.items():
            values[name], sources[name] = value, source

    on_cloud = any(merged_env.get(name, "").strip().lower() in TRUTHY for name in ("ON_CLOUD", "ON_HEROKU"))
    if on_cloud:
        apply({name: (value, "ON_CLOUD defaults") for name, value in CLOUD_DEFAULTS.items()})
    for path in (global_config_path(merged_env), project_dir / "config.txt"):
        layer = read_ini(path)
        apply({name: (value, str(path)) for name, (value, _section) in layer.items()})
    apply({name: (value, source if environ.get(source) else f"{source} in {project_dir / '.env'}")
           for name, (value, source) in _env_layer(merged_env).items()})

    for preferred, legacy_names in LEGACY_COPIES.items():
        if values[preferred]:
            for legacy in legacy_names:
                values[legacy], sources[legacy] = values[preferred], sources[preferred]

    try:
        settings = Settings(project_dir=project_dir, sources=sources, **values)
    except ValidationError as exc:
        raise SettingsError(_describe(exc, values, sources, sections)) from None
    if on_cloud and settings.database_url.startswith("sqlite"):
        raise SettingsError("ON_CLOUD is set but database_url is SQLite: a container's disk does not last; "
                            "set DATABASE_URL to a PostgreSQL database")
    return settings


def _describe(exc: ValidationError, values: dict[str, str], sources: dict[str, str],
              sections: dict[str, str]) -> str:
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "?"
    reason = re.sub(r"^Value error, ", "", error["msg"])
    shown = values.get(name, "")
    if name in KEYS_BY_NAME and KEYS_BY_NAME[name].secret:
        shown = "********"
    elif name == "database_url":
        shown = redact_url(shown)
    return (f"invalid setting [{sections.get(name, '?')}] {name} = {shown!r} "
            f"(from {sources.get(name, 'default')}): {reason}")

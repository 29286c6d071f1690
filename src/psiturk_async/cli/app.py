"""The Typer app and its local commands. Imports stay light: no database, models or AWS code here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .. import __version__
from . import mturk, remote
from .client import Connection

app = typer.Typer(
    name="psiturk-async",
    help="Run psiTurk 3 experiments on an async server, and manage them through its admin API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(remote.config_app, name="config")
app.add_typer(remote.participants_app, name="participants")
app.add_typer(mturk.hit_app, name="hit")
app.add_typer(mturk.worker_app, name="worker")
app.add_typer(mturk.qualifications_app, name="qualifications")
app.command("amt-balance")(mturk.amt_balance)
app.command()(remote.status)
app.command()(remote.mode)
app.command()(remote.debug)
app.command("download-datafiles")(remote.download_datafiles)
# psiTurk's spellings keep working.
app.command("download_datafiles", hidden=True)(remote.download_datafiles)
app.command("amt_balance", hidden=True)(mturk.amt_balance)

ProjectOption = Annotated[Path, typer.Option("--project", help="The project folder (config.txt, templates/).")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(1)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"psiturk-async {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(
        "--url", envvar="PSITURK_URL", show_default=False,
        help="The server's address (default: from host and port of the project in this folder).")] = None,
    token: Annotated[str | None, typer.Option(
        "--token", envvar="PSITURK_ADMIN_TOKEN", show_default=False,
        help="The admin token (default: the admin_token setting, else ./.psiturk/admin_token).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """psiturk-async: psiTurk 3 experiments on one async FastAPI service.

    status, mode, config, debug, participants and download-datafiles talk to a running server through its
    admin API; give --url and --token (or PSITURK_URL and PSITURK_ADMIN_TOKEN) to reach one elsewhere.
    """
    connection = ctx.ensure_object(Connection)
    connection.url = url or connection.url
    connection.token = token or connection.token
    connection.json_output = json_output or connection.json_output
    ctx.call_on_close(connection.close)


def _settings(project: Path):  # type: ignore[no-untyped-def]
    from ..settings import SettingsError, load_settings

    try:
        return load_settings(project)
    except SettingsError as exc:
        raise fail(str(exc)) from None


@app.command()
def serve(
    project: ProjectOption = Path("."),
    host: Annotated[str | None, typer.Option(help="Address to listen on [config: host].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [config: port, env PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Server processes [config: threads].")] = None,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", help="Do not upgrade the database first.")] = False,
) -> None:
    """Serve the project in the current folder (or --project) until stopped."""
    from .. import server
    from ..startup import StartupError, prepare

    settings = _settings(project)
    server.configure_logging(settings)
    try:
        prepare(settings, migrate=not no_migrate)
    except StartupError as exc:
        raise fail(str(exc)) from None
    server.run(settings, host=host or settings.host, port=settings.port if port is None else port,
               workers=workers or settings.worker_count)


EXAMPLE_FOLDER = Path("psiturk-example")


@app.command("setup-example")
def setup_example(
    directory: Annotated[Path, typer.Argument(help="Where to write the example project.")] = EXAMPLE_FOLDER,
) -> None:
    """Write a complete example experiment into DIRECTORY (default ./psiturk-example)."""
    from ..project import ProjectExists
    from ..project import setup_example as write_example

    try:
        target = write_example(directory)
    except ProjectExists as exc:
        raise fail(str(exc)) from None
    typer.echo(f"Example project written to {target}. Start it with: cd {target} && psiturk-async serve")


@db_app.command("upgrade")
def db_upgrade(project: ProjectOption = Path(".")) -> None:
    """Create or upgrade the database schema (adopts a psiTurk 3 database in place)."""
    from ..migrate import upgrade
    from ..settings import redact_url

    settings = _settings(project)
    upgrade(settings)
    typer.echo(f"Database {redact_url(settings.database_url)} is up to date.")

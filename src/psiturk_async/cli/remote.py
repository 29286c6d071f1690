"""The commands that work through the admin API: status, mode, config, debug, participants, download-datafiles.

Each one is a thin call to one route; output is a rich table for people, or the API's JSON with --json.
"""

from __future__ import annotations

import functools
import inspect
import json
import webbrowser
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn
from rich.table import Table

from ..schemas import (
    EXPORT_KINDS,
    ConfigPublic,
    DebugLink,
    ModeChange,
    ModePublic,
    ParticipantCounts,
    ParticipantDetail,
    ParticipantFilter,
    ParticipantPage,
    ServerStatus,
)
from .client import CliError, Connection
from .output import duration, pairs, print_json, reports_failures, show

__all__ = ["connection_of", "print_json", "reports_failures", "show"]  # also used by the MTurk commands

config_app = typer.Typer(help="The server's settings.", no_args_is_help=True)
participants_app = typer.Typer(help="Participants: list them, or show one with its data.", no_args_is_help=True)


class ModeChoice(StrEnum):
    sandbox = "sandbox"
    live = "live"


class FileFormat(StrEnum):
    csv = "csv"
    json = "json"
    jsonl = "jsonl"


def connection_of(ctx: typer.Context) -> Connection:
    return ctx.ensure_object(Connection)


@reports_failures
def status(ctx: typer.Context) -> None:
    """The server: version, MTurk mode, code version, database, participants and uptime."""
    connection = connection_of(ctx)
    api = connection.client()
    found = api.get("/api/status", ServerStatus)
    if connection.json_output:
        print_json(found.model_dump(mode="json"))
        return
    console = Console()
    console.print(pairs([
        ("Server", f"{api.where} (psiturk-async {found.version})"),
        ("Mode", found.mode),
        ("Code version", found.codeversion),
        ("Database", found.database),
        ("Uptime", duration(found.uptime_seconds)),
        ("Participants", f"{found.participants} ({found.finished} finished in code version "
                         f"{found.codeversion}, {found.mode})"),
    ]))
    if found.by_status:
        table = Table("status", "participants", box=box.SIMPLE_HEAD)
        for name, count in found.by_status.items():
            table.add_row(name, str(count))
        console.print(table)


@reports_failures
def mode(
    ctx: typer.Context,
    new_mode: Annotated[ModeChoice | None, typer.Argument(
        metavar="[sandbox|live]", help="Switch every server process to this mode; without it, print the mode.",
    )] = None,
) -> None:
    """Print the MTurk mode, or set it (it never toggles)."""
    connection = connection_of(ctx)
    api = connection.client()
    if new_mode is None:
        current = api.get("/api/mode", ModePublic)
        typer.echo(json.dumps(current.model_dump()) if connection.json_output else f"mode: {current.mode}")
        return
    change = api.patch("/api/mode", ModeChange, body={"mode": new_mode.value})
    if connection.json_output:
        print_json(change.model_dump())
    elif change.previous == change.mode:
        typer.echo(f"mode is already {change.mode}")
    else:
        typer.echo(f"Entered {change.mode} mode")


@config_app.command("print")
@reports_failures
def config_print(ctx: typer.Context) -> None:
    """Every setting the server uses, with where it came from; secrets hidden."""
    connection = connection_of(ctx)
    found = connection.client().get("/api/config", ConfigPublic)
    if connection.json_output:
        print_json(found.model_dump(mode="json"))
        return
    table = Table("section", "key", "value", box=box.SIMPLE_HEAD)
    table.add_column("from", overflow="fold")
    section = None
    for entry in found.entries:
        table.add_row(entry.section if entry.section != section else "", entry.key, show(entry.value),
                      entry.source)
        section = entry.section
    Console().print(table)


@reports_failures
def debug(
    ctx: typer.Context,
    print_only: Annotated[bool, typer.Option("-p", "--print-only", help="Print the link; do not open a browser.")]
    = False,
) -> None:
    """A debug link with fresh random ids; opens it in a browser unless -p."""
    connection = connection_of(ctx)
    link = connection.client().get("/api/debug-link", DebugLink)
    if connection.json_output:
        print_json(link.model_dump())
    else:
        typer.echo(link.url)
    if not print_only and not webbrowser.open(link.url):
        typer.echo("No browser could be opened; copy the link above.", err=True)


# The participant filter options: option name -> (the API's query parameter, the option).
FILTER_OPTIONS: dict[str, tuple[str, Any]] = {
    "mode": ("mode", Annotated[str | None, typer.Option(help="Of this mode: sandbox, live or debug.")]),
    "condition": ("condition", Annotated[int | None, typer.Option(help="Of this condition.")]),
    "counterbalance": ("counterbalance", Annotated[int | None, typer.Option(help="Of this counterbalance.")]),
    "codeversion": ("codeversion", Annotated[str | None, typer.Option(help="Of this code version.")]),
    "status": ("status", Annotated[list[str] | None, typer.Option(
        help="Of this status, by number or name (repeat for several).")]),
    "completed": ("completed", Annotated[bool | None, typer.Option(
        "--completed/--not-completed", help="Only finished (statuses 3, 4, 5, 7), or only unfinished.")]),
    "worker": ("worker_id", Annotated[str | None, typer.Option(help="Of this worker id.")]),
    "assignment": ("assignment_id", Annotated[str | None, typer.Option(help="Of this assignment id.")]),
    "hit": ("hit_id", Annotated[str | None, typer.Option(help="Of this HIT id.")]),
}


def with_filter_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command the participant filter options; it receives them, checked, as query parameters `where`."""
    signature = inspect.signature(command, eval_str=True)
    kept = [parameter for name, parameter in signature.parameters.items() if name != "where"]
    options = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
               for name, (_field, annotation) in FILTER_OPTIONS.items()]

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        given = {field: kwargs.pop(name) for name, (field, _annotation) in FILTER_OPTIONS.items()}
        command(*args, where=filter_params(given), **kwargs)

    run.__signature__ = signature.replace(parameters=[*kept, *options])  # type: ignore[attr-defined]
    run.__annotations__ = {parameter.name: parameter.annotation for parameter in [*kept, *options]}
    return run


def filter_params(given: dict[str, Any]) -> dict[str, Any]:
    """The filter options as query parameters, checked (status names become numbers) before sending."""
    given["status"] = given.get("status") or []
    try:
        chosen = ParticipantFilter.model_validate(given)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise CliError(f"--{'-'.join(str(part) for part in error['loc'][:1])}: {error['msg']}") from None
    return chosen.model_dump(exclude_defaults=True)


@participants_app.command("list")
@reports_failures
@with_filter_options
def participants_list(
    ctx: typer.Context,
    where: dict[str, Any],
    limit: Annotated[int, typer.Option(help="At most this many (up to 1000).")] = 100,
    after: Annotated[str | None, typer.Option(help="Start after this uniqueid (for the next page).")] = None,
) -> None:
    """Participants in uniqueid order, a page at a time, with their status, condition and mode."""
    connection = connection_of(ctx)
    params = where | {"limit": limit} | ({"after": after} if after else {})
    page = connection.client().get("/api/participants", ParticipantPage, params=params)
    if connection.json_output:
        print_json(page.model_dump(mode="json"))
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("uniqueid", overflow="fold")
    for heading in ("status", "cond", "cb", "mode", "version", "beginhit (UTC)", "bonus"):
        table.add_column(heading, no_wrap=True)
    for item in page.items:
        table.add_row(item.uniqueid, f"{show(item.status)} {item.status_name}", show(item.cond),
                      show(item.counterbalance), show(item.mode), show(item.codeversion), show(item.beginhit),
                      show(item.bonus))
    console = Console()
    console.print(table)
    console.print(f"{len(page.items)} of {page.total} matching participants shown.")
    if page.next_after:
        console.print(f"Next page: --after '{page.next_after}'", highlight=False)


@participants_app.command("counts")
@reports_failures
@with_filter_options
def participants_counts(ctx: typer.Context, where: dict[str, Any]) -> None:
    """How many participants there are by condition × counterbalance, and by status."""
    connection = connection_of(ctx)
    counts = connection.client().get("/api/participants/counts", ParticipantCounts, params=where)
    if connection.json_output:
        print_json(counts.model_dump(mode="json"))
        return
    cells = Table("cond", "cb", "participants", box=box.SIMPLE_HEAD)
    for cell in counts.cells:
        cells.add_row(show(cell.cond), show(cell.counterbalance), str(cell.count))
    statuses = Table("status", "participants", box=box.SIMPLE_HEAD)
    for status_count in counts.statuses:
        statuses.add_row(f"{show(status_count.status)} {status_count.status_name}", str(status_count.count))
    console = Console()
    console.print(cells, statuses)
    console.print(f"{counts.total} matching participants.")


@participants_app.command("show")
@reports_failures
def participants_show(
    ctx: typer.Context,
    uniqueid: Annotated[str, typer.Argument(help="The participant's uniqueid, workerId:assignmentId.")],
) -> None:
    """One participant: the row, and a summary of its data (the whole of it with --json)."""
    connection = connection_of(ctx)
    participant = connection.client().get(f"/api/participants/{uniqueid}", ParticipantDetail)
    if connection.json_output:
        print_json(participant.model_dump(mode="json"))
        return
    console = Console()
    row = participant.model_dump(exclude={"data", "data_error", "status_name"})
    row["status"] = f"{show(participant.status)} {participant.status_name}"
    console.print(pairs(list(row.items())))
    data = participant.data
    if participant.data_error:
        console.print(f"Data cannot be read: {participant.data_error}", highlight=False)
    elif not isinstance(data, dict):
        console.print("No data saved yet.")
    else:
        console.print(pairs([("trials", len(data.get("data") or [])), ("events", len(data.get("eventdata") or [])),
                             ("questions", len(data.get("questiondata") or {}))]))
        questions = data.get("questiondata")
        if isinstance(questions, dict) and questions:
            table = Table("question", "answer", box=box.SIMPLE_HEAD)
            for key, value in questions.items():
                table.add_row(str(key), show(value))
            console.print(table)


@reports_failures
@with_filter_options
def download_datafiles(
    ctx: typer.Context,
    where: dict[str, Any],
    file_format: Annotated[FileFormat, typer.Option("--format", help="csv: psiTurk's files, exactly; json or "
                                                    "jsonl: one record per trial, event or question.")]
    = FileFormat.csv,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the three files in.")] = Path("."),
) -> None:
    """Write trialdata, eventdata and questiondata files of every participant (or the filtered ones)."""
    connection = connection_of(ctx)
    params = where | {"format": file_format.value}
    api = connection.client()
    out.mkdir(parents=True, exist_ok=True)
    progress_console = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeElapsedColumn())
    written: list[dict[str, Any]] = []
    with Progress(*columns, console=progress_console,
                  disable=connection.json_output or not progress_console.is_terminal) as progress:
        for kind in EXPORT_KINDS:
            target = out / f"{kind}.{file_format.value}"
            task = progress.add_task(target.name, total=None)
            size = download(api.stream(f"/api/export/{kind}", params=params), target,
                            lambda chunk, task=task: progress.advance(task, chunk))
            progress.update(task, total=max(size, 1), completed=max(size, 1))
            written.append({"file": str(target), "bytes": size})
    if connection.json_output:
        print_json({"files": written})
        return
    for item in written:
        typer.echo(f"wrote {item['file']} ({item['bytes']:,} bytes)")


def download(stream: Any, target: Path, advance: Callable[[int], None]) -> int:
    """Stream a response body into `target` through a .part file, so a failure leaves no half file."""
    part = target.with_name(target.name + ".part")
    size = 0
    try:
        with stream as response, part.open("wb") as handle:
            for chunk in response.iter_bytes():
                handle.write(chunk)
                size += len(chunk)
                advance(len(chunk))
        part.replace(target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return size

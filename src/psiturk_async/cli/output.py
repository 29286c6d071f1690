"""How the remote commands print: tables and JSON for success, one line and exit status 1 for any failure."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, ParamSpec

import typer
from rich.table import Table

from .client import CliError

P = ParamSpec("P")


def reports_failures(command: Callable[P, None]) -> Callable[P, None]:
    """Run the command; any failure becomes one line on stderr and exit status 1, never a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except CliError as exc:
            message = str(exc)
        except OSError as exc:
            message = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
        except Exception as exc:
            if os.environ.get("PSITURK_DEBUG"):
                raise
            message = f"unexpected {type(exc).__name__}: {exc} (PSITURK_DEBUG=1 shows the traceback)"
        else:
            return
        typer.echo(f"Error: {message.splitlines()[0] if message else 'failed'}", err=True)
        raise typer.Exit(1)

    return run


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def duration(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def pairs(rows: list[tuple[str, Any]]) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        table.add_row(name, show(value))
    return table

"""MTurk commands through the admin API: amt-balance, hit ..., worker ..., qualifications list.

Every command that moves money first asks the server for a dry run and shows exactly what would be sent; with
--dry-run it stops there. In live mode it then asks before sending (unless --yes). The real request carries
the mode and the total that were shown, and the server refuses it if either has changed meanwhile.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

import click
import typer
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table

from ..mturk.schemas import (
    ActionReport,
    AssignmentList,
    Balance,
    HitActions,
    HitCreated,
    HitExtension,
    HitList,
    QualificationList,
)
from ..schemas import ModePublic
from .client import AdminClient, CliError
from .output import print_json, reports_failures, show
from .remote import connection_of

hit_app = typer.Typer(help="HITs on MTurk: create, extend, expire, delete, list.", no_args_is_help=True)
worker_app = typer.Typer(help="Workers' assignments: list, approve, reject, unreject, bonus.",
                         no_args_is_help=True)
qualifications_app = typer.Typer(help="Qualification types you own on MTurk.", no_args_is_help=True)

DryRun = Annotated[bool, typer.Option("--dry-run", help="Print exactly what would be sent to MTurk; send "
                                                         "nothing.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation in live mode.")]
All = Annotated[bool, typer.Option("--all", help="Every one of this study's that it applies to.")]
HitOption = Annotated[str | None, typer.Option("--hit", help="That HIT only.")]
AssignmentIds = Annotated[list[str] | None, typer.Argument(metavar="ASSIGNMENT_ID", show_default=False)]
HitIds = Annotated[list[str] | None, typer.Argument(metavar="HIT_ID", show_default=False)]
FAILED = ("refused", "unknown")
Model = TypeVar("Model", bound=BaseModel)


def table(*columns: str, title: str | None = None) -> Table:
    """A compact table; a column named with a trailing * holds ids, which fold but are never cut short."""
    found = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True, show_edge=False, title=title,
                  title_justify="left")
    for heading in columns:
        ids = heading.endswith("*")
        found.add_column(heading.rstrip("*"), no_wrap=ids or heading != "detail", overflow="fold",
                         min_width=30 if heading in ("HIT id*", "assignment*") else None)
    return found


def fetched(ctx: typer.Context, path: str, model: type[Model], *,
            body: dict[str, Any] | None = None) -> Model | None:
    """The API's answer (POST when there is a body), or None once it was printed as JSON for --json."""
    connection = connection_of(ctx)
    api = connection.client()
    found = api.get(path, model) if body is None else api.post(path, model, body=body)
    if connection.json_output:
        print_json(found.model_dump(mode="json"))
        return None
    return found


def server_mode(api: AdminClient) -> str:
    return api.get("/api/mode", ModePublic).mode


def confirm(mode: str, total: str, what: str, *, yes: bool) -> None:
    """In live mode, ask before spending (the sandbox's money is not real)."""
    if mode == "live" and not yes:
        try:
            agreed = typer.confirm(f"{what} in LIVE mode, spending up to ${total} of real money. Go ahead?")
        except click.exceptions.Abort:
            agreed = False
        if not agreed:
            raise CliError("not confirmed: nothing was sent (--yes skips the question)")


def plural(count: float, noun: str) -> str:
    return f"{count:g} {noun}{'' if count == 1 else 's'}"


def failed_some(items: list[Any], count: int) -> None:
    """Exit status 1 (and one line on stderr) when MTurk refused some items or did not answer."""
    failed = sum(1 for item in items if item.outcome in FAILED)
    if failed:
        raise CliError(f"{failed} of {count} not done (refused, or no answer from MTurk): see above")


def print_requests(requests: list[dict[str, Any]]) -> None:
    """The MTurk calls a dry run would make, one a line, parameters exactly as they would be sent."""
    typer.echo("Requests that would be sent to MTurk:")
    for request in requests:
        parameters = {key: value for key, value in request.items() if key != "operation"}
        typer.echo(f"  {request.get('operation')} {json.dumps(parameters)}")


def spending_line(spending: Any) -> str:
    line = f"Recorded {spending.mode} spending: ${spending.recorded}"
    if spending.max_spend is not None:
        line += f" of max_spend ${spending.max_spend} (${spending.remaining} left)"
    return line


def selection(all_: bool, hit: str | None, ids: list[str] | None, *, allow_all: bool = True) -> dict[str, Any]:
    chosen = sum([all_, hit is not None, bool(ids)])
    ways = "--all, --hit ID or assignment ids" if allow_all else "--hit ID or assignment ids"
    if chosen != 1 or (all_ and not allow_all):
        raise CliError(f"give exactly one of {ways}")
    if all_:
        return {"all": True}
    return {"hit_id": hit} if hit is not None else {"assignment_ids": list(ids or [])}


@reports_failures
def amt_balance(ctx: typer.Context) -> None:
    """The MTurk account balance in the current mode, and the study's recorded spending."""
    found = fetched(ctx, "/api/mturk/balance", Balance)
    if found is None:
        return
    typer.echo(f"{found.mode} balance: ${found.available}")
    typer.echo(spending_line(found.spending))


@hit_app.command("create")
@reports_failures
def hit_create(
    ctx: typer.Context,
    assignments: Annotated[int | None, typer.Argument(help="Number of workers.")] = None,
    reward: Annotated[str | None, typer.Argument(help="Reward per assignment, e.g. 1.50.")]
    = None,
    duration: Annotated[float | None, typer.Argument(help="Hours a worker has.")] = None,
    require_qualification_id: Annotated[list[str] | None, typer.Option(
        "--require-qualification-id", help="Workers must have this qualification (repeatable).")] = None,
    block_qualification_id: Annotated[list[str] | None, typer.Option(
        "--block-qualification-id", help="Workers with this qualification cannot take it (repeatable).")] = None,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Create a HIT pointing at the ad URL; shows the fee and total first."""
    connection = connection_of(ctx)
    api = connection.client()
    assignments = assignments if assignments is not None else typer.prompt("number of participants?", type=int)
    reward = reward if reward is not None else typer.prompt("reward per HIT?", type=str)
    duration = duration if duration is not None else typer.prompt(
        "duration of hit (in hours, it can be decimals)?", type=float)
    mode = server_mode(api)
    body = {"mode": mode, "assignments": assignments, "reward": reward, "duration_hours": duration,
            "require_qualification_ids": require_qualification_id or [],
            "block_qualification_ids": block_qualification_id or []}
    preview = api.post("/api/mturk/hits", HitCreated, body=body | {"dry_run": True})
    plan = preview.plan
    if connection.json_output and dry_run:
        print_json(preview.model_dump(mode="json"))
        return
    if not connection.json_output:
        typer.echo(f"{'Dry run: would create' if dry_run else 'Creating'} a {mode} HIT")
        for label, value in [("Max workers", plan.assignments), ("Reward", f"${plan.reward}"),
                             ("Duration", plural(plan.duration_hours, "hour")),
                             ("Listed for", plural(plan.lifetime_hours, "hour")), ("Fee", f"${plan.fee}"),
                             ("Total", f"${plan.total}"), ("Ad URL", plan.external_url)]:
            typer.echo(f"  {label}: {value}")
        typer.echo(f"  {spending_line(plan.spending)}")
    if dry_run:
        print_requests(plan.requests)
        typer.echo("Dry run: nothing was sent.")
        return
    confirm(mode, plan.total, f"Create a HIT for {plural(plan.assignments, 'worker')}", yes=yes)
    created = api.post("/api/mturk/hits", HitCreated, body=body | {"expect_total": plan.total})
    if connection.json_output:
        print_json(created.model_dump(mode="json"))
        return
    typer.echo(f"Created {mode} HIT {created.hit_id}")
    typer.echo(f"  Workers find it at: {created.worker_url}")


@hit_app.command("extend")
@reports_failures
def hit_extend(
    ctx: typer.Context,
    hit_id: Annotated[str, typer.Argument(metavar="HIT_ID")],
    assignments: Annotated[int | None, typer.Option("--assignments", help="Assignments to add.")] = None,
    expiration: Annotated[float | None, typer.Option("--expiration", help="Minutes to add to its expiration.")]
    = None,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Add assignments and/or time to a HIT."""
    connection = connection_of(ctx)
    api = connection.client()
    if assignments is None and expiration is None:
        raise CliError("give --assignments N, --expiration MINUTES, or both")
    body = {"mode": server_mode(api), "assignments": assignments, "minutes": expiration}
    path = f"/api/mturk/hits/{hit_id}/extend"
    preview = api.post(path, HitExtension, body=body | {"dry_run": True})
    if dry_run and connection.json_output:
        print_json(preview.model_dump(mode="json"))
        return
    if not connection.json_output:
        typer.echo(f"HIT {hit_id} ({preview.mode}): {preview.max_assignments} assignments, expires "
                   f"{show(preview.expires_at)}; this can cost up to ${preview.total} more (fee ${preview.fee})")
        typer.echo(spending_line(preview.spending))
    if dry_run:
        print_requests(preview.model_dump(mode="json")["requests"])
        typer.echo("Dry run: nothing was sent.")
        return
    confirm(preview.mode, preview.total, f"Extend HIT {hit_id}", yes=yes)
    done = api.post(path, HitExtension, body=body | {"expect_total": preview.total})
    if connection.json_output:
        print_json(done.model_dump(mode="json"))
    else:
        typer.echo(f"Extended {done.mode} HIT {hit_id}: {done.max_assignments} assignments, expires "
                   f"{show(done.expires_at)}")


def hit_action(ctx: typer.Context, action: str, all_: bool, hit_ids: list[str] | None, dry_run: bool) -> None:
    connection = connection_of(ctx)
    api = connection.client()
    if all_ == bool(hit_ids):
        raise CliError("give either --all or HIT ids")
    body = {"mode": server_mode(api), "all": all_, "hit_ids": hit_ids or [], "dry_run": dry_run}
    found = api.post(f"/api/mturk/hits/{action}", HitActions, body=body)
    if connection.json_output:
        print_json(found.model_dump(mode="json"))
    else:
        if not found.results:
            typer.echo(f"No HITs to {action}.")
        for result in found.results:
            typer.echo(f"{result.hit_id}: {result.outcome}: {result.detail}")
        if dry_run:
            typer.echo("Dry run: nothing was sent.")
    failed_some(found.results, len(found.results))


@hit_app.command("expire")
@reports_failures
def hit_expire(ctx: typer.Context, hit_ids: HitIds = None, all_: All = False, dry_run: DryRun = False) -> None:
    """Expire HITs now (--all: every unexpired HIT of this study)."""
    hit_action(ctx, "expire", all_, hit_ids, dry_run)


@hit_app.command("delete")
@reports_failures
def hit_delete(ctx: typer.Context, hit_ids: HitIds = None, all_: All = False, dry_run: DryRun = False) -> None:
    """Delete reviewed HITs (--all: every deletable HIT of this study)."""
    hit_action(ctx, "delete", all_, hit_ids, dry_run)


@hit_app.command("list")
@reports_failures
def hit_list(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Only unexpired HITs.")] = False,
    reviewable: Annotated[bool, typer.Option("--reviewable", help="Only Reviewable or Reviewing HITs.")] = False,
    all_studies: Annotated[bool, typer.Option("--all-studies", help="Every HIT of the account.")] = False,
) -> None:
    """This study's HITs in the current mode, as MTurk lists them."""
    if active and reviewable:
        raise CliError("give --active or --reviewable, not both")
    body = {"active": active, "reviewable": reviewable, "all_studies": all_studies}
    found = fetched(ctx, "/api/mturk/hits/sync", HitList, body=body)
    if found is None:
        return
    if not found.hits:
        typer.echo(f"No {found.mode} HITs.")
        return
    # open: can still be taken; working: accepted; review: submitted, awaiting approval; done: reviewed.
    found_table = table("HIT id*", "status", "reward", "max", "open", "working", "review", "done",
                        "expires (UTC)", title=f"{found.mode} HITs")
    for hit in found.hits:
        found_table.add_row(hit.hit_id + ("" if hit.this_study else " *"), hit.status, f"${hit.reward}",
                            str(hit.max_assignments), str(hit.available), str(hit.pending), str(hit.submitted),
                            str(hit.completed), show(hit.expires_at) + (" expired" if hit.expired else ""))
    Console().print(found_table)
    if any(not hit.this_study for hit in found.hits):
        typer.echo("* not created by this study")


@worker_app.command("list")
@reports_failures
def worker_list(
    ctx: typer.Context,
    submitted: Annotated[bool, typer.Option("--submitted", help="Only submitted (awaiting review).")] = False,
    approved: Annotated[bool, typer.Option("--approved", help="Only approved.")] = False,
    rejected: Annotated[bool, typer.Option("--rejected", help="Only rejected.")] = False,
    hit: HitOption = None,
) -> None:
    """Assignments of this study's HITs from MTurk; local statuses are brought in step with MTurk's."""
    flags = (("Submitted", submitted), ("Approved", approved), ("Rejected", rejected))
    chosen = [name for name, on in flags if on]
    if len(chosen) > 1:
        raise CliError("give at most one of --submitted, --approved, --rejected")
    body = {"status": chosen[0] if chosen else None, "hit_id": hit}
    found = fetched(ctx, "/api/mturk/assignments/sync", AssignmentList, body=body)
    if found is None:
        return
    if not found.assignments:
        typer.echo("No workers match.")
        return
    by_hit: dict[str, list[Any]] = {}
    for item in found.assignments:
        by_hit.setdefault(item.hit_id, []).append(item)
    console = Console()
    for hit_id, items in by_hit.items():
        listing = table("assignment*", "worker*", "MTurk", "local", "bonus", "paid", "synced*",
                        title=f"HIT {hit_id}")
        for item in items:
            listing.add_row(item.assignment_id, item.worker_id, item.mturk_status, show(item.local_status),
                            show(item.bonus), f"${item.bonuses_paid}", show(item.synced))
        console.print(listing)


def print_report(report: ActionReport) -> None:
    found = table("assignment*", "worker*", "amount", "fee", "outcome", "detail",
                  title=f"{report.action} ({report.mode}{', dry run' if report.dry_run else ''})")
    for item in report.items:
        found.add_row(item.assignment_id, show(item.worker_id), f"${item.amount}", f"${item.fee}", item.outcome,
                      item.detail + "".join(f"\nearlier: ${p.amount} ({p.state}, {show(p.at)})"
                                            for p in item.previous))
    Console().print(found)
    typer.echo(f"Total {'to send' if report.dry_run else 'sent'}: ${report.total}")


def act(ctx: typer.Context, path: str, body: dict[str, Any], *, dry_run: bool, yes: bool, what: str,
        spends: bool = True) -> None:
    """Dry run, show, confirm in live mode, send: the shape of every worker command."""
    connection = connection_of(ctx)
    api = connection.client()
    body = {"mode": server_mode(api), **body}
    preview = api.post(path, ActionReport, body=body | {"dry_run": True})
    if dry_run:
        if connection.json_output:
            print_json(preview.model_dump(mode="json"))
            return
        print_report(preview)
        print_requests([i.request for i in preview.items if i.outcome == "planned" and i.request])
        typer.echo("Dry run: nothing was sent.")
        return
    if not any(item.outcome == "planned" for item in preview.items):
        if connection.json_output:
            print_json(preview.model_dump(mode="json"))
        else:
            print_report(preview)
            typer.echo("Nothing to send.")
        failed_some(preview.items, len(preview.items))
        return
    if spends:
        if not connection.json_output and preview.mode == "live" and not yes:
            print_report(preview)
        confirm(preview.mode, preview.total, what, yes=yes)
    done = api.post(path, ActionReport, body=body | {"expect_total": preview.total})
    if connection.json_output:
        print_json(done.model_dump(mode="json"))
    else:
        print_report(done)
        typer.echo(spending_line(done.spending))
    failed_some(done.items, len(done.items))


@worker_app.command("approve")
@reports_failures
def worker_approve(ctx: typer.Context, assignment_ids: AssignmentIds = None, all_: All = False,
                   hit: HitOption = None, dry_run: DryRun = False, yes: Yes = False) -> None:
    """Approve submitted work: --all of this study, --hit ID (that HIT only), or assignment ids."""
    act(ctx, "/api/mturk/assignments/approve", selection(all_, hit, assignment_ids), dry_run=dry_run, yes=yes,
        what="Approve (pays the reward plus MTurk's fee)")


@worker_app.command("reject")
@reports_failures
def worker_reject(ctx: typer.Context, assignment_ids: AssignmentIds = None, hit: HitOption = None,
                  reason: Annotated[str, typer.Option("--reason", help="Feedback the worker sees.")] = "",
                  dry_run: DryRun = False) -> None:
    """Reject submitted work: --hit ID (that HIT only) or assignment ids."""
    body = selection(False, hit, assignment_ids, allow_all=False) | {"reason": reason}
    act(ctx, "/api/mturk/assignments/reject", body, dry_run=dry_run, yes=True, what="Reject", spends=False)


@worker_app.command("unreject")
@reports_failures
def worker_unreject(ctx: typer.Context, assignment_ids: AssignmentIds = None, hit: HitOption = None,
                    dry_run: DryRun = False, yes: Yes = False) -> None:
    """Approve rejected work after all: --hit ID (that HIT only) or assignment ids."""
    act(ctx, "/api/mturk/assignments/unreject", selection(False, hit, assignment_ids, allow_all=False),
        dry_run=dry_run, yes=yes, what="Unreject (pays the reward plus MTurk's fee)")


@worker_app.command("bonus")
@reports_failures
def worker_bonus(
    ctx: typer.Context,
    assignment_ids: AssignmentIds = None,
    amount: Annotated[str | None, typer.Option("--amount", help="The same bonus for each, e.g. 0.50.")] = None,
    auto: Annotated[bool, typer.Option("--auto", help="Each participant's own bonus (set by the experiment).")]
    = False,
    reason: Annotated[str | None, typer.Option(
        "--reason", help="Shown to the worker (default: the bonus_message setting).")]
    = None,
    all_: All = False,
    hit: HitOption = None,
    again: Annotated[bool, typer.Option("--again", help="Pay another bonus to those bonused before.")] = False,
    dry_run: DryRun = False,
    yes: Yes = False,
) -> None:
    """Pay bonuses to approved workers, each at most once (unless --again)."""
    if (amount is None) == (not auto):
        raise CliError("give either --amount X.XX or --auto")
    body = selection(all_, hit, assignment_ids) | {"amount": amount, "auto": auto, "reason": reason,
                                                    "again": again}
    act(ctx, "/api/mturk/bonuses", body, dry_run=dry_run, yes=yes, what="Pay bonuses")


@qualifications_app.command("list")
@reports_failures
def qualifications_list(ctx: typer.Context) -> None:
    """Qualification types you own (for --require-qualification-id and --block-qualification-id)."""
    found = fetched(ctx, "/api/mturk/qualifications", QualificationList)
    if found is None:
        return
    if not found.qualification_types:
        typer.echo("No custom qualifications found.")
        return
    listing = table("QualificationTypeId*", "name*", "description*", "status")
    for item in found.qualification_types:
        listing.add_row(item.qualification_type_id, item.name, show(item.description), show(item.status))
    Console().print(listing)

"""The MTurk commands of the CLI, in-process against a server pointed at the fake MTurk: what they print, the
live-mode confirmation, --dry-run sending nothing, and psiTurk's spellings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner, Result

from admin_data import TOKEN
from fakes.fixtures import FakeMTurk
from mturk_world import fake_settings, take_part
from psiturk_async.cli import app
from psiturk_async.cli.client import Connection
from psiturk_async.main import create_app
from psiturk_async.migrate import upgrade
from psiturk_async.settings import Settings

CLEAN_ENV = {"PSITURK_URL": None, "PSITURK_ADMIN_TOKEN": None, "PSITURK_DEBUG": None, "COLUMNS": "200"}


@pytest.fixture
def settings(make_settings: Any, fake_mturk: FakeMTurk) -> Settings:
    return make_settings(**fake_settings(fake_mturk))


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    upgrade(settings)
    with TestClient(create_app(settings)) as client:
        yield client


def cli(http: TestClient, *args: str, answer: str | None = None) -> Result:
    return CliRunner().invoke(app, ["--token", TOKEN, *args], obj=Connection(http=http), env=CLEAN_ENV,
                              input=answer)


def created_hit(http: TestClient, *args: str) -> str:
    result = cli(http, "--json", "hit", "create", "2", "1.00", "0.5", *args)
    assert result.exit_code == 0, result.output
    return str(json.loads(result.stdout)["hit_id"])


def finished(http: TestClient, fake: FakeMTurk, hit_id: str, worker: str) -> str:
    """A participant who took part and submitted, through the participant routes of the served app."""
    return http.portal.call(take_part, http.app, fake, hit_id, worker)  # type: ignore[union-attr]


def test_amt_balance_and_its_psiturk_spelling(http: TestClient, fake_mturk: FakeMTurk) -> None:
    for command in ("amt-balance", "amt_balance"):
        result = cli(http, command)
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == ["sandbox balance: $10000.00", "Recorded sandbox spending: $0.00"]


def test_hit_create_shows_the_cost_then_creates(http: TestClient, fake_mturk: FakeMTurk) -> None:
    result = cli(http, "hit", "create", "12", "1.00", "1.5", "--require-qualification-id", "REQ1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Creating a sandbox HIT"
    assert "  Fee: $4.80" in lines and "  Total: $16.80" in lines
    assert "  Ad URL: https://example.org:443/pub?mode=sandbox" in lines
    [hit_id] = list(fake_mturk.state.hits)
    assert f"Created sandbox HIT {hit_id}" in lines
    requirements = fake_mturk.calls("CreateHITType")[0]["request"]["QualificationRequirements"]
    assert requirements[-1] == {"QualificationTypeId": "REQ1", "Comparator": "Exists"}


def test_hit_create_prompts_for_what_is_missing(http: TestClient, fake_mturk: FakeMTurk) -> None:
    result = cli(http, "hit", "create", "--dry-run", answer="3\n0.50\n2\n")
    assert result.exit_code == 0, result.output
    assert "number of participants?" in result.stdout and "  Total: $1.80" in result.stdout


def test_dry_runs_send_nothing(http: TestClient, fake_mturk: FakeMTurk) -> None:
    result = cli(http, "hit", "create", "2", "1.00", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("Dry run: nothing was sent.")
    assert "  CreateHITType {" in result.stdout and '"Reward": "1.00"' in result.stdout
    assert fake_mturk.calls() == []

    hit_id = created_hit(http)
    assignment = finished(http, fake_mturk, hit_id, "A1WORKER0000001")
    before = len(fake_mturk.calls())
    for args in (["worker", "approve", "--all"], ["worker", "reject", assignment],
                 ["hit", "expire", "--all"], ["hit", "extend", hit_id, "--assignments", "1"]):
        result = cli(http, *args, "--dry-run")
        assert result.exit_code == 0, (args, result.output)
        assert "Dry run: nothing was sent." in result.stdout
    cli(http, "worker", "approve", assignment)
    planned = cli(http, "worker", "bonus", "--amount", "0.75", "--reason", "Thanks", "--all", "--dry-run")
    assert '"BonusAmount": "0.75"' in planned.stdout and '"WorkerId": "A1WORKER0000001"' in planned.stdout
    sent = [c["operation"] for c in fake_mturk.calls()[before:]]
    assert set(sent) <= {"ListHITs", "ListAssignmentsForHIT", "GetAssignment", "GetHIT", "ApproveAssignment"}
    assert sent.count("ApproveAssignment") == 1 and fake_mturk.bonuses() == []


def test_live_mode_asks_before_spending(make_settings: Any, fake_mturk: FakeMTurk) -> None:
    settings = make_settings(**fake_settings(fake_mturk), launch_in_mode="live")
    upgrade(settings)
    with TestClient(create_app(settings)) as http:
        declined = cli(http, "hit", "create", "1", "2.00", "1", answer="n\n")
        assert declined.exit_code == 1
        assert "in LIVE mode, spending up to $2.40 of real money. Go ahead?" in declined.stdout
        assert declined.stderr == "Error: not confirmed: nothing was sent (--yes skips the question)\n"
        assert fake_mturk.calls() == []
        accepted = cli(http, "hit", "create", "1", "2.00", "1", answer="y\n")
        assert accepted.exit_code == 0 and "Created live HIT" in accepted.stdout
        unasked = cli(http, "hit", "create", "1", "2.00", "1", "--yes")
        assert unasked.exit_code == 0 and "Go ahead?" not in unasked.stdout
    assert len(fake_mturk.state.hits) == 2


def test_worker_commands_print_what_happened(http: TestClient, fake_mturk: FakeMTurk) -> None:
    hit_id = created_hit(http)
    assignment = finished(http, fake_mturk, hit_id, "A1WORKER0000001")
    listed = cli(http, "worker", "list", "--submitted")
    assert listed.exit_code == 0 and assignment in listed.stdout and "Submitted" in listed.stdout
    approved = cli(http, "worker", "approve", "--hit", hit_id)
    assert approved.exit_code == 0, approved.output
    assert "sent" in approved.stdout and "Total sent: $1.20" in approved.stdout
    bonus = cli(http, "worker", "bonus", "--amount", "0.50", "--reason", "Thanks", assignment)
    assert bonus.exit_code == 0 and "paid $0.50" in bonus.stdout
    repeated = cli(http, "worker", "bonus", "--amount", "0.50", "--reason", "Thanks", assignment)
    assert "Nothing to send." in repeated.stdout and "already bonused" in repeated.stdout
    assert len(fake_mturk.bonuses()) == 1
    hits = cli(http, "hit", "list")
    assert hits.exit_code == 0 and hit_id in hits.stdout


def test_failures_are_one_line_and_exit_1(http: TestClient, fake_mturk: FakeMTurk) -> None:
    both = cli(http, "worker", "approve", "--all", "--hit", "H")
    assert both.exit_code == 1 and both.stderr == "Error: give exactly one of --all, --hit ID or assignment ids\n"
    unknown = cli(http, "hit", "extend", "NOSUCHHIT000000000000000000000", "--expiration", "5")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("Error: 502 mturk_error from /api/mturk/hits/NOSUCHHIT")
    assert "AWS.MechanicalTurk.HITDoesNotExist" in unknown.stderr
    refused = cli(http, "worker", "approve", "NOSUCHASSIGNMENT")
    assert refused.exit_code == 1 and "AssignmentDoesNotExist" in refused.stdout
    assert refused.stderr == "Error: 1 of 1 not done (refused, or no answer from MTurk): see above\n"


def test_qualifications_list_says_when_there_are_none(http: TestClient, fake_mturk: FakeMTurk) -> None:
    result = cli(http, "qualifications", "list")
    assert result.exit_code == 0 and result.stdout == "No custom qualifications found.\n"


"""Old databases and old analysis scripts, on SQLite and PostgreSQL.

A database psiTurk 3.3.1 itself wrote (its own Flask app, driven through its routes, in its own venv) with a
participant in every status psiTurk stores is served by psiturk-async in place: returning workers stay
blocked, counterbalancing counts the old rows, exports hold them, and afterwards psiTurk 3.3.1 still reads
and writes the database (a lab can roll back). And the user docs' "Retrieving Data" snippet, run unchanged
in a venv of that time (SQLAlchemy 1.3 or 1.4, pandas, psycopg2), reads a database psiturk-async wrote.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from admin_data import AUTH, TOKEN
from era_venv import ANALYSIS_PINS, cached_venv, run_script, with_postgres_driver
from legacy_project import stroop_record
from participant_flow import arrive, browser, complete, error_number, ids, running_app, start, submit
from psiturk_async.models import Status
from psiturk_async.settings import Settings
from test_psiturk3_compat import PsiTurk3, psiturk3  # noqa: F401  (the session fixture, reused)

# psiTurk 3.3.1's own app writes the participants: /exp, /inexp, PUT /sync, /quitter, /complete and
# /worker_submitted through its test client; CREDITED and BONUSED are set as its MTurk wrapper set them.
WRITE_WITH_PSITURK = '''
import json, sys
from psiturk.experiment import app
from psiturk.db import db_session
from psiturk.models import Participant

CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
client = app.test_client()
for person in json.loads(sys.argv[1]):
    query = {key: person[key] for key in ("hitId", "assignmentId", "workerId", "mode")}
    uid = person["workerId"] + ":" + person["assignmentId"]
    page = client.get("/exp", query_string=query, headers={"User-Agent": CHROME})
    assert page.status_code == 200 and b"<b>Error</b>" not in page.data, page.data
    steps = person["steps"]
    if "inexp" in steps:
        assert client.post("/inexp", data={"uniqueId": uid}).status_code == 200
    if person.get("record"):
        assert client.put("/sync/" + uid, json=person["record"]).status_code == 200
    if "quitter" in steps:
        assert client.post("/quitter", data={"uniqueId": uid}).status_code == 200
    if "complete" in steps:
        assert client.get("/complete", query_string={"uniqueId": uid, "mode": person["mode"]}).status_code == 200
    if "submitted" in steps:
        assert client.get("/worker_submitted", query_string={"uniqueId": uid}).status_code == 200
    row = Participant.query.filter(Participant.uniqueid == uid).one()
    for name, value in person.get("set", {}).items():
        setattr(row, name, value)
    db_session.commit()
'''

# psiTurk 3.3.1 reading the database back after psiturk-async served it, and writing to it again.
READ_WITH_PSITURK = '''
import json, re, sys
from psiturk.experiment import app
from psiturk.models import Participant

asked = json.loads(sys.argv[1])
client = app.test_client()
people = Participant.query.order_by(Participant.uniqueid).all()
answer = {
    "rows": {p.uniqueid: p.object_as_dict() for p in people},
    "sync": client.get("/sync/" + asked["ours"]).get_json(),
    "check": client.get("/check_worker_status", query_string=asked["check"]).get_json(),
    "trialdata": "".join(p.get_trial_data() for p in people),
    "eventdata": "".join(p.get_event_data() for p in people),
    "questiondata": "".join(p.get_question_data() for p in people),
}
blocked = client.get("/ad", query_string=asked["blocked"]).data.decode()
answer["blocked"] = re.search(r"<b>Error</b>: (\\d+)", blocked).group(1)
fresh = client.get("/exp", query_string=asked["fresh"])
answer["fresh"] = [fresh.status_code, "<b>Error</b>" in fresh.data.decode()]
fresh_uid = asked["fresh"]["workerId"] + ":" + asked["fresh"]["assignmentId"]
answer["fresh_row"] = Participant.query.filter(Participant.uniqueid == fresh_uid).one().object_as_dict()
print(json.dumps(answer, default=str))
'''

# The user docs' "Retrieving Data" snippet, unchanged but for the two lines that name the database (its
# comments and blank lines left out); then what it produced, as JSON.
DOCS_SNIPPET = '''
from sqlalchemy import create_engine, MetaData, Table
import json
import pandas as pd

db_url = sys.argv[1]
table_name = sys.argv[2]
data_column_name = 'datastring'
# boilerplate sqlalchemy setup
engine = create_engine(db_url)
metadata = MetaData()
metadata.bind = engine
table = Table(table_name, metadata, autoload=True)
# make a query and loop through
s = table.select()
rows = s.execute()

data = []
#status codes of subjects who completed experiment
statuses = [3,4,5,7]

# if you have workers you wish to exclude, add them here
exclude = []
for row in rows:
    # only use subjects who completed experiment and aren't excluded
    if row['status'] in statuses and row['uniqueid'] not in exclude:
        data.append(row[data_column_name])

data = [json.loads(part)['data'] for part in data]

for part in data:
    for record in part:
        record['trialdata']['uniqueid'] = record['uniqueid']

data = [record['trialdata'] for part in data for record in part]

data_frame = pd.DataFrame(data)
'''
SNIPPET_REPORT = '''
print(json.dumps({"trials": data, "shape": list(data_frame.shape), "columns": sorted(data_frame.columns),
                  "versions": [__import__("sqlalchemy").__version__, pd.__version__]}))
'''

# One participant per status psiTurk stores; the finished and the recent ones fill condition 0.
OLD_PEOPLE: dict[Status, dict[str, Any]] = {
    Status.ALLOCATED: {"steps": []},
    Status.STARTED: {"steps": ["inexp"], "hits": [True]},
    Status.COMPLETED: {"steps": ["inexp", "complete"], "hits": [True, True]},
    Status.SUBMITTED: {"steps": ["inexp", "complete", "submitted"], "hits": [True, False, True]},
    Status.CREDITED: {"steps": ["inexp", "complete", "submitted"], "hits": [False], "set": {"status": 5}},
    Status.QUITEARLY: {"steps": ["inexp", "quitter"], "hits": [True]},
    Status.BONUSED: {"steps": ["inexp", "complete", "submitted"], "hits": [True, True, True],
                     "set": {"status": 7, "bonus": 0.06}},
}


def old_ids(status: Status) -> dict[str, str]:
    return ids(worker=f"OLDW{int(status)}", assignment=f"OLDA{int(status)}", hit="OLDHIT", mode="live")


def people_for_psiturk() -> list[dict[str, Any]]:
    people = []
    for status, plan in OLD_PEOPLE.items():
        person = {**old_ids(status), "steps": plan["steps"], "set": plan.get("set", {})}
        if "hits" in plan:
            person["record"] = stroop_record(f"{person['workerId']}:{person['assignmentId']}", plan["hits"])
        people.append(person)
    return people


def psiturk_python(psiturk3: PsiTurk3) -> Path:  # noqa: F811
    return psiturk3.client_js.parents[5] / "bin" / "python"


@pytest.fixture
def psiturk_project(psiturk3: PsiTurk3, tmp_path: Path) -> Path:  # noqa: F811
    """psiTurk's example project, where psiTurk 3.3.1's app is started from (it reads config.txt there)."""
    target = tmp_path / "psiturk-example"
    shutil.copytree(psiturk3.example, target)
    return target


def psiturk_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "psiturk-home"
    home.mkdir(exist_ok=True)
    return {"DATABASE_URL": database_url, "PSITURK_GLOBAL_CONFIG_LOCATION": str(home), "HOME": str(home)}


def run_psiturk(psiturk3: PsiTurk3, project: Path, database_url: str, tmp_path: Path,  # noqa: F811
                script: str, argument: Any) -> str:
    python = psiturk_python(psiturk3)
    if database_url.startswith("postgresql://"):
        with_postgres_driver(python)
        # psiTurk 3 on PostgreSQL needs the postgres:// spelling (Heroku's): it picks the datastring's column
        # type by that substring, and the other type does not exist in PostgreSQL.
        database_url = "postgres://" + database_url.removeprefix("postgresql://")
    output = run_script(python, script, json.dumps(argument), cwd=project, env=psiturk_env(database_url, tmp_path))
    # psiTurk prints a line of its own for each participant without data; the answer is the last line.
    return output.strip().splitlines()[-1] if output.strip() else ""


@pytest.fixture
def old_database(psiturk3: PsiTurk3, psiturk_project: Path, database_url: str,  # noqa: F811
                 tmp_path: Path) -> str:
    """The test's database, as psiTurk 3.3.1 left it with OLD_PEOPLE in it."""
    run_psiturk(psiturk3, psiturk_project, database_url, tmp_path, WRITE_WITH_PSITURK, people_for_psiturk())
    return database_url


def read_back(psiturk3: PsiTurk3, project: Path, database_url: str, tmp_path: Path,  # noqa: F811
              asked: dict[str, Any]) -> dict[str, Any]:
    return json.loads(run_psiturk(psiturk3, project, database_url, tmp_path, READ_WITH_PSITURK, asked))


async def export(http: httpx.AsyncClient, kind: str) -> str:
    response = await http.get(f"/api/export/{kind}", headers=AUTH)
    assert response.status_code == 200
    return response.text


async def test_a_psiturk_database_is_served_in_place_and_psiturk_can_still_use_it(
        psiturk3: PsiTurk3, psiturk_project: Path, old_database: str, tmp_path: Path,  # noqa: F811
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(num_conds=2, num_counters=1, admin_token=TOKEN)
    asked = {"ours": "", "check": {}, "blocked": {}, "fresh": ids(worker="PSIW1", assignment="PSIA1", mode="live")}
    before = read_back(psiturk3, psiturk_project, old_database, tmp_path,
                       {**asked, "ours": "OLDW4:OLDA4", "check": {"workerId": "OLDW4", "assignmentId": "OLDA4"},
                        "blocked": ids(worker="OLDW3", assignment="AGAIN"),
                        "fresh": ids(worker="PSIW0", assignment="PSIA0", mode="live")})
    assert {row["status"] for row in before["rows"].values()} >= {int(s) for s in OLD_PEOPLE}

    async with running_app(settings) as app, browser(app) as http:
        # Returning workers are still blocked, whatever their old status.
        for status in OLD_PEOPLE:
            again = await http.get("/ad", params={**old_ids(status), "assignmentId": "ANOTHER"})
            assert error_number(again) == 1010, status
        # The old rows fill condition 0, so three new arrivals all go to condition 1.
        new = [await arrive(http, worker=f"NEWW{n}", assignment=f"NEWA{n}") for n in range(3)]
        conditions = [(await http.get(f"/api/participants/{uid}", headers=AUTH)).json()["cond"] for uid in new]
        assert conditions == [1, 1, 1]
        # A new participant finishes, and the old ALLOCATED one comes back and finishes too.
        ours = new[0]
        await start(http, ours)
        assert (await http.put(f"/sync/{ours}", json=stroop_record(ours, [True, False]))).status_code == 200
        await complete(http, ours)
        await submit(http, ours)
        resumed = await arrive(http, worker="OLDW1", assignment="OLDA1", hit="OLDHIT", mode="live")
        await start(http, resumed)
        assert (await http.put(f"/sync/{resumed}", json=stroop_record(resumed, [True]))).status_code == 200
        await complete(http, resumed)
        exported = {kind: await export(http, kind) for kind in ("trialdata", "eventdata", "questiondata")}

    after = read_back(psiturk3, psiturk_project, old_database, tmp_path,
                      {**asked, "ours": ours, "check": {"workerId": "NEWW0", "assignmentId": "NEWA0"},
                       "blocked": ids(worker="NEWW0", assignment="AGAIN")})
    # The exports hold every participant's data exactly as psiTurk's own download_datafiles writes it.
    for kind, text in exported.items():
        assert text == after[kind], kind
    assert all(f"OLDW{int(s)}:OLDA{int(s)}" in exported["trialdata"] for s in OLD_PEOPLE if s != Status.ALLOCATED)
    # Old rows psiturk-async did not move are as psiTurk wrote them, column for column.
    untouched = set(before["rows"]) - {resumed}
    assert {uid: after["rows"][uid] for uid in untouched} == {uid: before["rows"][uid] for uid in untouched}
    assert after["rows"][resumed]["status"] == Status.COMPLETED
    # psiTurk reads what psiturk-async wrote, blocks its workers, and can add participants of its own.
    assert after["sync"] == stroop_record(ours, [True, False])
    assert after["check"] == {"status": int(Status.SUBMITTED)}
    assert after["rows"][ours]["status"] == Status.SUBMITTED and after["rows"][ours]["cond"] == 1
    assert after["blocked"] == "1010"
    assert after["fresh"] == [200, False]
    assert after["fresh_row"]["status"] == Status.ALLOCATED


@pytest.fixture(params=sorted(ANALYSIS_PINS))
def analysis_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(SQLAlchemy version, the python of a venv with it, pandas and psycopg2)."""
    python = cached_venv(request, tmp_path_factory, f"analysis-{request.param}", ANALYSIS_PINS[request.param])
    return request.param.removeprefix("sqlalchemy-"), python


async def test_the_docs_analysis_snippet_reads_a_database_psiturk_async_wrote(
        analysis_stack: tuple[str, Path], make_settings: Callable[..., Settings], database_url: str) -> None:
    version, python = analysis_stack
    settings = make_settings()
    plans = {"FIN1": [True, False], "FIN2": [True], "FIN3": [False, True, True], "MID": [True], "QUIT": [False]}
    async with running_app(settings) as app, browser(app) as http:
        uids = {}
        for name, hits in plans.items():
            uid = uids[name] = await arrive(http, worker=f"W{name}", assignment=f"A{name}")
            await start(http, uid)
            assert (await http.put(f"/sync/{uid}", json=stroop_record(uid, hits))).status_code == 200
        await complete(http, uids["FIN1"])
        await complete(http, uids["FIN2"])
        await submit(http, uids["FIN2"])
        await complete(http, uids["FIN3"])
        assert (await http.post("/quitter", data={"uniqueId": uids["QUIT"]})).status_code == 200

    script = "import sys\n" + DOCS_SNIPPET + SNIPPET_REPORT
    report = json.loads(run_script(python, script, database_url, settings.table_name))

    assert report["versions"][0].startswith(version)
    expected = []
    for name in ("FIN1", "FIN2", "FIN3"):
        for entry in stroop_record(uids[name], plans[name])["data"]:
            expected.append({**entry["trialdata"], "uniqueid": uids[name]})
    key = json.dumps
    assert sorted(report["trials"], key=key) == sorted(expected, key=key)
    assert report["shape"] == [len(expected), len(report["columns"])]
    assert {"phase", "hit", "uniqueid", "word"} <= set(report["columns"])

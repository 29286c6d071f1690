"""The project's custom.py: its router is mounted, its hooks are called, and a broken one stops start-up."""

from __future__ import annotations

import pytest

from participant_flow import arrive, browser, error_number, fixture_record, row, running_app, serve_until_exit
from psiturk_async.extensions import CustomCodeError
from psiturk_async.main import create_app
from psiturk_async.settings import Settings

ROUTER = '''
from sqlalchemy import func, select

from psiturk_async.custom import APIRouter, DbSession, Participant

custom_code = APIRouter()


@custom_code.get("/hello")
async def hello():
    return {"hello": "world"}


@custom_code.post("/participants/count")
async def count(session: DbSession):
    return {"count": await session.scalar(select(func.count()).select_from(Participant))}
'''

BROKEN_IMPORT = '''
from psiturk_async.custom import APIRouter
import a_module_nobody_installed

custom_code = APIRouter()
'''

FLASK_STYLE = '''
class Blueprint:
    """Stands in for flask.Blueprint, which this environment need not have."""

    def __init__(self, name, import_name, **options):
        self.name = name


custom_code = Blueprint("custom_code", __name__, template_folder="templates", static_folder="static")
'''

INIT_APP = '''
def init_app(app):
    app.state.init_app_called = True

    @app.get("/added_by_init_app")
    async def added():
        return {"added": True}
'''


def write_custom(settings: Settings, source: str) -> None:
    (settings.project_dir / "custom.py").write_text(source, encoding="utf-8")


async def test_the_custom_router_is_mounted(settings: Settings) -> None:
    write_custom(settings, ROUTER)

    async with running_app(settings) as app, browser(app) as http:
        response = await http.get("/hello")

    assert response.status_code == 200
    assert response.json() == {"hello": "world"}


async def test_a_custom_route_reaches_the_database(settings: Settings) -> None:
    write_custom(settings, ROUTER)

    async with running_app(settings) as app, browser(app) as http:
        await arrive(http, worker="W1", assignment="A1")
        await arrive(http, worker="W2", assignment="A2")
        response = await http.post("/participants/count")

    assert response.json() == {"count": 2}


def expected_bonus(model: dict) -> float:
    hits = [trial["trialdata"] for trial in model["data"] if isinstance(trial["trialdata"], dict)]
    return round(0.02 * sum(1 for trial in hits if trial.get("phase") == "TEST" and trial.get("hit") is True), 2)


async def test_the_examples_compute_bonus_stores_the_bonus_from_the_saved_trials(client, app) -> None:  # type: ignore[no-untyped-def]
    uid = await arrive(client)
    model = fixture_record()
    await client.put(f"/sync/{uid}", json=model)
    assert expected_bonus(model) > 0

    response = await client.get("/compute_bonus", params={"uniqueId": uid})

    assert response.json() == {"bonusComputed": "success"}
    assert (await row(app, uid))["bonus"] == pytest.approx(expected_bonus(model))


async def test_the_examples_compute_bonus_without_an_id_is_error_1013(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/compute_bonus")

    assert response.status_code == 400
    assert error_number(response) == 1013


async def test_the_examples_compute_bonus_for_an_unknown_id_is_404(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/compute_bonus", params={"uniqueId": "nobody:none"})

    assert response.status_code == 404
    assert set(response.json()) == {"error", "detail"}


async def test_a_project_without_custom_py_runs(settings: Settings) -> None:
    (settings.project_dir / "custom.py").unlink()

    async with running_app(settings) as app, browser(app) as http:
        assert (await http.get("/")).status_code == 200
        assert (await http.get("/compute_bonus")).status_code == 404


def test_an_import_error_in_custom_py_stops_create_app_with_its_cause(settings: Settings) -> None:
    write_custom(settings, BROKEN_IMPORT)

    with pytest.raises(CustomCodeError) as raised:
        create_app(settings)

    assert "a_module_nobody_installed" in str(raised.value)
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)


def test_a_syntax_error_in_custom_py_stops_create_app(settings: Settings) -> None:
    write_custom(settings, "def broken(:\n    pass\n")

    with pytest.raises(CustomCodeError) as raised:
        create_app(settings)

    assert isinstance(raised.value.__cause__, SyntaxError)


def test_serve_exits_with_the_traceback_when_custom_py_fails_to_import(settings: Settings,
                                                                       environ: dict[str, str]) -> None:
    write_custom(settings, BROKEN_IMPORT)

    result = serve_until_exit(settings.project_dir, environ)

    assert result.returncode != 0
    assert "Traceback (most recent call last)" in result.stderr
    assert 'custom.py", line 3' in result.stderr
    assert "ModuleNotFoundError: No module named 'a_module_nobody_installed'" in result.stderr


def test_a_flask_custom_py_gets_the_one_line_legacy_hint(settings: Settings) -> None:
    write_custom(settings, FLASK_STYLE)

    with pytest.raises(CustomCodeError) as raised:
        create_app(settings)

    message = str(raised.value)
    assert "\n" not in message
    assert "Flask" in message and "legacy" in message


def test_serve_gives_only_the_hint_for_a_flask_custom_py(settings: Settings, environ: dict[str, str]) -> None:
    write_custom(settings, FLASK_STYLE)

    result = serve_until_exit(settings.project_dir, environ)

    assert result.returncode != 0
    assert "legacy" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_custom_code_that_is_not_a_router_is_refused(settings: Settings) -> None:
    write_custom(settings, "custom_code = {'routes': []}\n")

    with pytest.raises(CustomCodeError, match="APIRouter"):
        create_app(settings)


async def test_init_app_is_called_with_the_app(settings: Settings) -> None:
    write_custom(settings, INIT_APP)

    async with running_app(settings) as app:
        assert app.state.init_app_called is True


async def test_a_route_added_by_init_app_answers(settings: Settings) -> None:
    write_custom(settings, INIT_APP)

    async with running_app(settings) as app, browser(app) as http:
        response = await http.get("/added_by_init_app")

    assert response.status_code == 200
    assert response.json() == {"added": True}


INIT_APP_MIDDLEWARE = '''
def init_app(app):
    @app.middleware("http")
    async def stamp(request, call_next):
        response = await call_next(request)
        response.headers["X-Seen-By-Project"] = request.url.path
        return response
'''


async def test_middleware_added_by_init_app_sees_the_participant_routes(settings: Settings) -> None:
    # The participant routes are normally answered before FastAPI's middleware; a project's middleware must
    # still see every request.
    write_custom(settings, INIT_APP_MIDDLEWARE)

    async with running_app(settings) as app, browser(app) as http:
        uid = await arrive(http, worker="W1", assignment="A1")
        saved = await http.put(f"/sync/{uid}", json=fixture_record())
        started = await http.post("/inexp", data={"uniqueId": uid})

    assert saved.status_code == 200 and saved.headers["X-Seen-By-Project"] == f"/sync/{uid}"
    assert started.status_code == 200 and started.headers["X-Seen-By-Project"] == "/inexp"


SHADOWING_ROUTER = '''
from psiturk_async.custom import APIRouter

custom_code = APIRouter()


@custom_code.get("/{page}")
async def any_page(page: str):
    return {"page": page}


@custom_code.get("/api/status")
async def not_the_admin_status():
    return {"shadowed": True}


@custom_code.post("/inexp")
async def not_our_inexp():
    return {"shadowed": True}
'''


async def test_a_custom_route_never_shadows_the_health_and_admin_routes(settings: Settings) -> None:
    write_custom(settings, SHADOWING_ROUTER)

    async with running_app(settings) as app, browser(app) as http:
        health = await http.get("/healthz")
        status = await http.get("/api/status")
        other = await http.get("/anything")
        uid = await arrive(http, worker="W1", assignment="A1")
        # A multipart form is read by FastAPI's router rather than at the door: ours must still answer it.
        started = await http.post("/inexp", files={"uniqueId": (None, uid)})

    assert health.json()["status"] == "ok"
    assert status.status_code == 401 and status.json()["error"] == "unauthorized"
    assert other.json() == {"page": "anything"}
    assert started.json() == {"status": "success"}
